"""``netatlas regions MODEL``: the exact linear regions of a model on a 2-D slice, as a run directory."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from netatlas import _options as options
from netatlas._options import square_size, zoomed


def parse_plane(net, plane: str | None, through: list[int] | None, data: str | None, split: str = "train"):
    """The slice a CLI call asks for: ``square:SIZE`` (default square:1) or a plane through three inputs
    (indices into the whole ``split`` of ``--data``, a built-in name or a data file)."""
    import numpy as np

    from netatlas._options import OptionValueError, command_data
    from netatlas.slices import Plane

    if through:
        if len(through) != 3:
            raise OptionValueError(f"--through needs three indices A B C; got {through}")
        if not data:
            raise OptionValueError("--through needs --data NAME|FILE (e.g. --data digits) to pick the inputs from")
        _, x, _, _ = command_data(data, where="regions", split=split)
        x = x.detach().numpy()
        if max(through) >= len(x) or min(through) < 0:
            raise OptionValueError(f"--through indices must be in [0, {len(x)}) for the {split} split of {data!r}; "
                                   f"got {through}")
        inputs = [x[i].reshape(net.input_shape) if x[i].size == net.n_inputs else x[i] for i in through]
        if inputs[0].size != net.n_inputs:
            raise ValueError(f"--data {data!r} has inputs of shape {x.shape[1:]} but the model expects "
                             f"{net.input_shape}")
        return Plane.through(*inputs)
    size = square_size(plane)
    if net.n_inputs < 2:
        raise ValueError(f"--plane square needs a model with at least 2 inputs; this one has {net.n_inputs}")
    p = Plane.square(size, dim=net.n_inputs)
    return Plane(np.zeros(net.input_shape), p.d1.reshape(net.input_shape), p.d2.reshape(net.input_shape),
                 p.bounds)


def bounds_for(net, widths) -> tuple[dict, str]:
    """The region-count bounds that apply to ``net`` on a 2-D slice, and a note saying which do not.

    Plain MLPs: all. Chains of conv/avg-pool/batch-norm and ReLU layers are fully connected ReLU nets
    with constrained (shared) weights, so the *upper* bounds for those widths hold while the lower
    bounds (on the largest count any fully connected weights reach) do not. With max pooling or
    residual additions none of the ReLU-network bounds apply; only the number of distinct states
    (2^bits times the product of the window sizes) is an upper bound."""
    import math

    from netatlas.nets import Add, Concat, Conv, Max
    from netatlas.regions import bounds

    kinds = {type(net.nodes[i].op) for i in range(1, len(net.nodes))}
    if kinds & {Max, Add, Concat}:
        bits = sum(net.nodes[i].size * max(len(net.nodes[i].op.breakpoints), 1) for i in net.activations)
        windows = sum(math.log10(int((row >= 0).sum())) for i in net.nonlinear if isinstance(net.nodes[i].op, Max)
                      for row in net.nodes[i].op.index)
        return ({"distinct_states_upper_log10": bits * math.log10(2) + windows},
                "max pooling / residual additions: the ReLU-network bounds (Serra 2018, Montufar 2014/2017) do not "
                "apply; the only bound given is the number of distinct activation states and arg-maxes (log10)")
    if not widths:
        return {}, "no hidden units"
    values = bounds.all_bounds(2, widths)
    if Conv in kinds or len(net.activations) and any(net.nodes[i].op.name == "hardtanh" for i in net.activations):
        upper = {k: v for k, v in values.items() if k.endswith("upper")}
        return upper, ("convolutions: upper bounds for fully connected ReLU layers of these widths hold (a conv layer "
                       "is one with shared weights); the lower bounds (montufar2014_lower, serra2018_lower) do not")
    return values, "bounds for a 2-D input (the slice) and fully connected layers of these widths"


def layer_widths(net) -> list[int]:
    """Hidden widths for the bounds: the unit counts of the activation nodes, in order."""
    return [net.nodes[i].size for i in net.activations if net.nodes[i].op.name != "identity"]


def windowed(slice_, disc, polygon):
    """``--disc`` / ``--polygon``: that window in the slice's own coordinates (``Plane.disc`` /
    ``Plane.polygon`` with ``plane=slice_``; a non-convex polygon is refused there, in one line)."""
    from netatlas._options import OptionValueError
    from netatlas.slices import Plane

    try:
        if disc is not None:
            return Plane.disc(disc[0], disc[1], plane=slice_)
        if polygon is not None:
            return Plane.polygon(polygon, plane=slice_)
    except ValueError as exc:
        raise OptionValueError(f"--{'disc' if disc is not None else 'polygon'}: {exc}") from None
    return slice_


def cut_at(net, upto):
    """``--upto LAYER``: the net cut after that layer (what ``partition(net, plane, upto=LAYER)`` partitions)."""
    from netatlas._options import OptionValueError
    from netatlas.regions._upto import net_upto

    if upto is None:
        return net
    try:
        return net_upto(net, upto)
    except ValueError as exc:
        raise OptionValueError(str(exc).replace("partition: upto:", f"--upto {upto!r}:", 1)) from None


def window_shape(slice_) -> str:
    """"rectangle", "disc" or "polygon": the shape of a slice's window (recorded in summary.json)."""
    return "rectangle" if slice_.outline is None else "disc" if slice_.circle is not None else "polygon"


def _python_line(through, zoom, around, disc=None, polygon=None, upto=None) -> str:
    """The command's one-call Python equivalent (written to the report)."""
    plane = ("plane = netatlas.Plane.through(x[A], x[B], x[C])" if through else
             "plane = netatlas.Plane.square(SIZE, dim=net.n_inputs)")
    if zoom is not None:
        centre = "plane.around_boundary(net, 'A', 'B')" if around == "boundary" else repr(around)
        plane += f"; plane = plane.zoom({zoom}, around={centre})"
    if disc is not None:
        plane += f"; plane = netatlas.Plane.disc({disc[0]!r}, {disc[1]!r}, plane=plane)"
    if polygon is not None:
        plane += f"; plane = netatlas.Plane.polygon({[list(p) for p in polygon]!r}, plane=plane)"
    cut = "" if upto is None else f", upto={upto!r}"
    return f"net = netatlas.nets.load(MODEL); {plane}; netatlas.regions.partition(net, plane{cut})"


def register(app: typer.Typer) -> None:
    """Add the ``regions`` command to the root CLI."""

    from netatlas.regions._complexity_cli import RegionsCommand  # also runs `regions complexity MODEL ...`

    @app.command(cls=RegionsCommand)
    def regions(
        model: Path = typer.Argument(..., help="Model file: .pt2 (torch.export), .onnx or .pt/.pth/.safetensors"),
        spec: Path = typer.Option(None, help="JSON architecture spec for a state dict (default: MODEL.json)"),
        plane: str = options.plane_option(),
        through: list[str] = options.through_option(),
        data: str = options.data_option(what="--through"),
        split: str = options.split_option(),
        zoom: float = options.zoom_option(),
        around: str = options.around_option(),
        max_regions: int = options.max_regions_option(),
        memory_budget: str = options.memory_budget_option(),
        color_by: str = typer.Option("class", help="Region colours: pattern, class, output, area, volume"),
        level: list[float] = typer.Option(None, help="Level sets of output 0 to draw (repeatable)"),
        out: Path = options.out_option(),
        tiles: int = typer.Option(1, help="Split the slice into TILES x TILES tiles and stream each tile's regions "
                                  "to Parquet (bounded memory; rerun with the same --out to resume); with --volume "
                                  "or --through A B C D: TILES^3 tiles, the whole complex's counts and surfaces "
                                  "assembled exactly in about a tile's memory"),
        dask: str = typer.Option(None, "--dask", help="With --tiles: run the tiles on 'local' (a LocalCluster, 2 "
                                 "workers) or tcp://HOST:PORT"),
        disc: list[str] = options.disc_option(),
        polygon: list[str] = options.polygon_option(),
        upto: str = options.upto_option(),
        picture: int = typer.Option(1024, help="With --tiles: pixels per side of the downsampled picture"),
        volume: str = typer.Option(None, "--volume", metavar="cube:SIZE", help="A 3-D slice instead: the cube "
                                   "[-SIZE, SIZE]^3 in the first three input axes (or --through A B C D): the exact "
                                   "3-D complex, surface.ply of each --level, a picture and an offline 3-D view"),
    ):
        """Exact linear regions, decision boundary and counts vs. bounds on a 2-D slice.

        Writes regions.png/svg (by class and by pattern), summary.json (num_regions, bounds, ...)
        and report.html into the run directory.

        Python: ``netatlas.regions.partition(net, netatlas.Plane.square(1.0))``; with --through/--zoom/--around:
        ``plane = netatlas.Plane.through(x[A], x[B], x[C]).zoom(F, around="A")`` (or
        ``around=plane.around_boundary(net, "A", "B")``), then ``partition(net, plane)``

        Other windows and layers: ``--disc CX CY R`` (``Plane.disc((CX, CY), R, plane=plane)``), ``--polygon
        U1,V1 U2,V2 U3,V3 ...`` (a convex ``Plane.polygon``), in the first two input axes or in the plane of
        --through; ``--upto LAYER``: the partition after that layer (``partition(net, plane, upto=LAYER)``).

        Local complexity around data points: ``netatlas regions complexity MODEL --data NAME|FILE --radius R``.

        3-D: ``--volume cube:SIZE`` or ``--through A B C D`` (``netatlas.Volume.cube(SIZE)`` /
        ``Volume.through(...)``, then ``partition(net, volume, levels=(0.0,))``) with ``--level 0`` writes
        the exact zero-level surface.ply; ``--tiles K`` builds it in K^3 tiles (``partition(net, volume,
        levels=(0.0,), tiles=K)``: the same counts and surface in about a tile's memory; chains only); ``--upto
        LAYER`` the complex of the net cut after it.
        """
        if volume is not None or (through and len(options.indices("--through", through)) == 4):
            if disc or polygon:
                raise options.OptionValueError("regions: --disc and --polygon take a 2-D slice (--plane or "
                                               "--through A B C), not --volume / --through A B C D")
            from netatlas.regions._volume_cli import volume_command

            volume_command(model=model, spec=spec, volume=volume, through=through, data=data, split=split,
                           max_regions=max_regions, memory_budget=memory_budget, level=level, out=out, zoom=zoom,
                           tiles=tiles, dask=dask, upto=upto)
            return
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from netatlas.nets import load
        from netatlas.regions import RegionLimitError, partition, plot_partition
        from netatlas.regions._plot import COLOR_BY
        from netatlas.report import RunDir

        # options first: nothing is loaded or partitioned yet
        options.one_of("--color-by", color_by, COLOR_BY)
        options.at_least("--tiles", tiles, 1)
        options.at_least("--max-regions", max_regions, 1)
        options.split_value(split)
        budget = options.memory_budget_value(memory_budget)
        indices = options.through_indices(through)
        if indices and plane is not None:
            raise options.OptionValueError("regions: give --through A B C or --plane square:SIZE, not both")
        if not indices:
            square_size(plane)
        options.zoom_fraction(zoom)
        options.around_value(around)
        disc_window, polygon_window = options.disc_value(disc), options.polygon_value(polygon)
        if disc_window and polygon_window:
            raise options.OptionValueError("regions: give one window, --disc CX CY R or --polygon U,V ..., not both")
        if (disc_window or polygon_window) and (plane is not None or zoom is not None):
            raise options.OptionValueError("regions: --disc / --polygon is the window itself: drop --plane and "
                                           "--zoom (use --through A B C for the slice it lies in)")
        full = load(model, spec)
        net = cut_at(full, upto)
        slice_ = parse_plane(net, plane, indices, data, split)
        if zoom is not None:
            slice_ = zoomed(slice_, zoom, around, net)
        slice_ = windowed(slice_, disc_window, polygon_window)
        run = RunDir.create(out, command="regions", config={
            "model": str(model), "spec": str(spec) if spec else None, "plane": plane, "through": indices,
            "data": data, "split": split, "zoom": zoom, "around": around, "max_regions": max_regions,
            "memory_budget": memory_budget, "color_by": color_by, "level": level, "tiles": tiles, "dask": dask,
            "disc": disc_window and [*disc_window[0], disc_window[1]], "polygon": polygon_window, "upto": upto})
        if tiles > 1 or dask:
            try:
                _stream(run, net, slice_, max(tiles, 2), dask, picture, model, max_regions, budget, upto)
            except RegionLimitError as exc:  # name the command's options, not the library's arguments
                raise RegionLimitError(options.limit_message(str(exc))) from None
            return
        typer.echo(f"partitioning {model} on {slice_.bounds} ...")
        t0 = time.perf_counter()
        try:
            part = partition(net, slice_, max_regions=max_regions, memory_budget=budget)
        except RegionLimitError as exc:  # name the command's options, not the library's arguments
            raise RegionLimitError(options.limit_message(str(exc))) from None
        seconds = time.perf_counter() - t0
        db = part.decision_boundary()
        widths = layer_widths(net)
        bound_values, bounds_note = bounds_for(net, widths)
        summary = {
            "num_regions": part.num_regions,
            "seconds": seconds,
            "regions_per_second": part.num_regions / seconds if seconds > 0 else None,
            "area": float(part.areas.sum()),
            "slice_area": slice_.area,
            "n_units": part.n_units,
            "hidden_widths": widths,
            "bounds": bound_values,
            "bounds_note": bounds_note,
            "decision_boundary_segments": len(db),
            "decision_boundary_length": db.total_length,
            "plane": slice_.to_dict(),
            "window": window_shape(slice_),
            "upto": upto,
            "upto_node": len(net.nodes) - 1,
            "python": _python_line(indices, zoom, around, disc_window, polygon_window, upto),
            "head": None if net.head is None else net.head.name,
        }
        run.write_summary(summary)
        if net.head is not None:
            run.add_text("Note", f"head: {net.head.describe()}")
        run.save_json("partition", part.to_dict())
        run.add_table("Counts vs. bounds", [{"quantity": "regions in the slice (exact)", "value": part.num_regions}]
                      + [{"quantity": k, "value": v} for k, v in bound_values.items()],
                      caption="Bounds count regions of the whole 2-D input space; the slice is a bounded part "
                              f"of it. {bounds_note}.")
        fig, ax = plt.subplots(figsize=(7, 7))
        plot_partition(part, ax, color_by=color_by, level_sets=level or ())
        run.save_figure(fig, "regions", f"{part.num_regions:,} exact linear regions coloured by {color_by}; "
                        "the exact decision boundary in black" + (" and level sets dashed" if level else "") + ".")
        fig, ax = plt.subplots(figsize=(7, 7))
        plot_partition(part, ax, color_by="pattern", boundary=False)
        run.save_figure(fig, "regions_pattern", "The same regions coloured by activation pattern.")
        run.write_report("Exact linear regions", f"{model}: {part.num_regions:,} linear regions in {seconds:.2f} s.")
        typer.echo(f"{part.num_regions:,} regions in {seconds:.2f} s; wrote {run.path}")


def _stream(run, net, slice_, tiles, dask, picture, model, max_regions=None, memory_budget="auto",
            upto=None) -> None:
    """``regions --tiles``: tiles streamed to RUN/tiles/*.parquet, then counts and a downsampled picture."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from netatlas.regions._partition import BOUNDARY_TOLERANCE
    from netatlas.regions._tiles import stream_partition
    from netatlas.sweep import resolve_client

    typer.echo(f"partitioning {model} on {slice_.bounds} as {tiles} x {tiles} tiles ...")
    client, cleanup = resolve_client(dask)
    t0 = time.perf_counter()
    try:
        result = stream_partition(net, slice_, tiles, run.file("tiles"), tolerance=BOUNDARY_TOLERANCE,
                                  client=client, picture=picture, max_regions=max_regions,
                                  memory_budget=memory_budget)
    finally:
        cleanup()
    seconds = time.perf_counter() - t0
    image = result.pop("picture")
    summary = {**result, "seconds": seconds, "hidden_widths": layer_widths(net), "plane": slice_.to_dict(),
               "window": window_shape(slice_), "upto": upto, "upto_node": len(net.nodes) - 1,
               "dask": dask, "tiles_dir": "tiles"}
    run.write_summary(summary)
    run.add_table("Counts", [{"quantity": k, "value": summary[k]} for k in
                             ("num_regions", "complete_in_tiles", "merged_across_borders", "area", "slice_area")],
                  caption="Regions cut by tile borders are merged (same activation pattern); each tile's complete "
                          "regions are in tiles/tile_J_I.parquet, the merged ones in tiles/merged.parquet.")
    rgb = np.stack([(image >> np.uint64(s)) & np.uint64(255) for s in (0, 8, 16)], -1).astype(np.uint8)
    if slice_.outline is not None:  # pixels outside a disc or polygon window (hash 0) are transparent
        rgb = np.concatenate([rgb, np.where(image != 0, 255, 0).astype(np.uint8)[..., None]], -1)
    umin, umax, vmin, vmax = slice_.bounds
    fig, ax = plt.subplots(figsize=(7, 7))
    ax.imshow(rgb, origin="lower", extent=(umin, umax, vmin, vmax), interpolation="nearest")
    ax.set_xlabel("u")
    ax.set_ylabel("v")
    run.save_figure(fig, "regions_pattern", f"{summary['num_regions']:,} linear regions, one colour per activation "
                    f"pattern, sampled on a {image.shape[0]} x {image.shape[1]} grid.")
    plt.close(fig)
    run.write_report("Exact linear regions (tiled)", f"{model}: {summary['num_regions']:,} linear regions in "
                     f"{seconds:.2f} s on {tiles} x {tiles} tiles.")
    typer.echo(f"{summary['num_regions']:,} regions in {seconds:.2f} s; wrote {run.path}")
