"""``netatlas regions MODEL``: the exact linear regions of a model on a 2-D slice, as a run directory."""

from __future__ import annotations

import math
import time
from pathlib import Path

import typer


def parse_plane(net, plane: str | None, through: list[int] | None, data: str | None):
    """The slice a CLI call asks for: ``square:SIZE`` (default square:1) or a plane through three
    inputs (indices into dataset ``data``'s training inputs)."""
    import numpy as np

    from netatlas.slices import Plane

    if through:
        if len(through) != 3:
            raise ValueError(f"--through needs three indices A B C; got {through}")
        if not data:
            raise ValueError("--through needs --data NAME (e.g. --data digits) to pick the inputs from")
        from netatlas.data import load as load_data

        dataset = load_data(data)
        x = dataset.x.detach().numpy()
        if max(through) >= len(x) or min(through) < 0:
            raise ValueError(f"--through indices must be in [0, {len(x)}) for {data!r}; got {through}")
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


def square_size(plane: str | None) -> float:
    """The SIZE of ``--plane square:SIZE`` (default 1): a finite number > 0, checked before any work."""
    spec = plane or "square:1"
    kind, _, value = spec.partition(":")
    if kind != "square":
        raise ValueError(f"--plane must be 'square:SIZE' (e.g. square:1.5); got {spec!r}")
    try:
        size = float(value or 1.0)
    except ValueError:
        raise ValueError(f"--plane square:SIZE needs a number; got {spec!r}") from None
    if not (0 < size < math.inf):
        raise ValueError(f"--plane square:SIZE needs a finite SIZE > 0; got {spec!r}")
    return size


def bounds_for(net, widths) -> tuple[dict, str]:
    """The region-count bounds that apply to ``net`` on a 2-D slice, and a note saying which do not.

    Plain MLPs: all. Chains of conv/avg-pool/batch-norm and ReLU layers are fully connected ReLU nets
    with constrained (shared) weights, so the *upper* bounds for those widths hold while the lower
    bounds (on the largest count any fully connected weights reach) do not. With max pooling or
    residual additions none of the ReLU-network bounds apply; only the number of distinct states
    (2^bits times the product of the window sizes) is an upper bound."""
    import math

    from netatlas.nets._ir import Add, Concat, Conv, Max
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


def zoomed(plane, fraction: float, around: str = "A", net=None):
    """The plane's window shrunk to ``fraction`` of its size, centred on input A (``around``: one of
    A, B, C, several letters for the mean of those inputs, e.g. AB for the midpoint of A and B, or
    "boundary": where the predicted class first changes on the segment from A to B, found exactly
    with ``along_line``)."""
    import numpy as np

    if not 0 < fraction <= 1:
        raise ValueError(f"--zoom must be in (0, 1]; got {fraction}")
    if plane.anchors is None:
        raise ValueError("--zoom needs a plane through three inputs (--through A B C)")
    if around == "boundary":
        if net is None:
            raise ValueError("--around boundary needs the model")
        from netatlas.regions import along_line

        a, b = plane.to_input(plane.anchors[:2])
        pieces = along_line(net, a.reshape(plane.input_shape), b.reshape(plane.input_shape))
        t = np.sort(np.concatenate([pieces.edges, (pieces.edges[:-1] + pieces.edges[1:]) / 2]))
        y = pieces.outputs(t)
        cls = (y[:, 0] > 0).astype(int) if y.shape[1] == 1 else y.argmax(1)
        change = np.flatnonzero(cls[1:] != cls[:-1])
        if not len(change):
            raise ValueError("--around boundary: the predicted class does not change between A and B")
        # consecutive samples lie in one piece, where the outputs are affine: solve for the crossing
        i = change[0]
        if y.shape[1] == 1:
            g0, g1 = y[i, 0], y[i + 1, 0]
        else:
            g0, g1 = y[i, cls[i]] - y[i, cls[i + 1]], y[i + 1, cls[i]] - y[i + 1, cls[i + 1]]
        t0 = t[i] + (t[i + 1] - t[i]) * g0 / (g0 - g1)
        centre = (1 - t0) * plane.anchors[0] + t0 * plane.anchors[1]
        return _window(plane, fraction, centre)
    letters = around.upper()
    if not letters or any(ch not in "ABC" for ch in letters):
        raise ValueError(f"--around must be letters of ABC (e.g. A or AB); got {around!r}")
    return _window(plane, fraction, plane.anchors[["ABC".index(ch) for ch in letters]].mean(0))


def _window(plane, fraction, centre):
    from netatlas.slices import Plane

    umin, umax, vmin, vmax = plane.bounds
    cu, cv = centre
    hu, hv = fraction * (umax - umin) / 2, fraction * (vmax - vmin) / 2
    return Plane(plane.origin, plane.d1, plane.d2, (cu - hu, cu + hu, cv - hv, cv + hv), anchors=plane.anchors)


def register(app: typer.Typer) -> None:
    """Add the ``regions`` command to the root CLI."""

    from netatlas.regions._complexity_cli import RegionsCommand  # also runs `regions complexity MODEL ...`

    @app.command(cls=RegionsCommand)
    def regions(
        model: Path = typer.Argument(..., help="Model file: .pt2 (torch.export), .onnx or .pt/.pth/.safetensors"),
        spec: Path = typer.Option(None, help="JSON architecture spec for a state dict (default: MODEL.json)"),
        plane: str = typer.Option(None, help="The slice: square:SIZE, i.e. [-SIZE, SIZE]^2 in the first two "
                                  "input axes (default square:1)"),
        through: list[int] = typer.Option(None, help="Three indices A B C of training inputs of --data: the "
                                          "plane through them (repeat the option: --through 0 --through 5 "
                                          "--through 9)"),
        data: str = typer.Option(None, help="Dataset for --through, e.g. digits or mnist_sample"),
        zoom: float = typer.Option(None, help="With --through: a window this fraction of the plane's size, "
                                   "centred on input A (e.g. 0.05 for a close look at a CNN)"),
        around: str = typer.Option("A", help="With --zoom: centre the window on input A, B or C, or on the mean "
                                   "of several (e.g. AB: midway between A and B), or 'boundary': where the predicted "
                                   "class first changes between A and B"),
        max_regions: int = typer.Option(None, help="Stop (with the estimate) when the slice would have more "
                                        "regions than this"),
        memory_budget: str = typer.Option("auto", help="Memory the regions may take, e.g. 8GB (default: half "
                                          "the available memory)"),
        color_by: str = typer.Option("class", help="Region colours: pattern, class, output, area, volume"),
        level: list[float] = typer.Option(None, help="Level sets of output 0 to draw (repeatable)"),
        out: Path = typer.Option(None, help="Run directory (default: a new one under runs/)"),
        tiles: int = typer.Option(1, help="Split the slice into TILES x TILES tiles and stream each tile's regions "
                                  "to Parquet (bounded memory; rerun with the same --out to resume)"),
        dask: str = typer.Option(None, "--dask", help="With --tiles: run the tiles on 'local' (a LocalCluster, 2 "
                                 "workers) or tcp://HOST:PORT"),
        picture: int = typer.Option(1024, help="With --tiles: pixels per side of the downsampled picture"),
    ):
        """Exact linear regions, decision boundary and counts vs. bounds on a 2-D slice.

        Writes regions.png/svg (by class and by pattern), summary.json (num_regions, bounds, ...)
        and report.html into the run directory.

        Python: ``netatlas.regions.partition(netatlas.nets.load(MODEL), netatlas.Plane.square(1.0))``

        Local complexity around data points: ``netatlas regions complexity MODEL --data NAME|FILE --radius R``.
        """
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from netatlas._options import one_of
        from netatlas.nets import load
        from netatlas.regions import partition, plot_partition
        from netatlas.regions._plot import COLOR_BY
        from netatlas.report import RunDir

        one_of("--color-by", color_by, COLOR_BY)  # options first: nothing is loaded or partitioned yet
        if tiles < 1:
            raise ValueError(f"--tiles must be >= 1; got {tiles}")
        if not through:
            square_size(plane)
        net = load(model, spec)
        slice_ = parse_plane(net, plane, through, data)
        if zoom is not None:
            slice_ = zoomed(slice_, zoom, around, net)
        run = RunDir.create(out, command="regions", config={
            "model": str(model), "spec": str(spec) if spec else None, "plane": plane, "through": through,
            "data": data, "zoom": zoom, "around": around, "max_regions": max_regions, "memory_budget": memory_budget,
            "color_by": color_by, "level": level, "tiles": tiles, "dask": dask})
        if tiles > 1 or dask:
            _stream(run, net, slice_, max(tiles, 2), dask, picture, model)
            return
        typer.echo(f"partitioning {model} on {slice_.bounds} ...")
        t0 = time.perf_counter()
        part = partition(net, slice_, max_regions=max_regions,
                         memory_budget=None if memory_budget.lower() == "none" else memory_budget)
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
        }
        run.write_summary(summary)
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


def _stream(run, net, slice_, tiles, dask, picture, model) -> None:
    """``regions --tiles``: tiles streamed to RUN/tiles/*.parquet, then counts and a downsampled picture."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from netatlas.regions._partition import BOUNDARY_TOLERANCE
    from netatlas.regions._tiles import stream_partition
    from netatlas.sweep import _resolve_client

    typer.echo(f"partitioning {model} on {slice_.bounds} as {tiles} x {tiles} tiles ...")
    client, cleanup = _resolve_client(dask)
    t0 = time.perf_counter()
    try:
        result = stream_partition(net, slice_, tiles, run.file("tiles"), tolerance=BOUNDARY_TOLERANCE,
                                  client=client, picture=picture)
    finally:
        cleanup()
    seconds = time.perf_counter() - t0
    image = result.pop("picture")
    summary = {**result, "seconds": seconds, "hidden_widths": layer_widths(net), "plane": slice_.to_dict(),
               "dask": dask, "tiles_dir": "tiles"}
    run.write_summary(summary)
    run.add_table("Counts", [{"quantity": k, "value": summary[k]} for k in
                             ("num_regions", "complete_in_tiles", "merged_across_borders", "area", "slice_area")],
                  caption="Regions cut by tile borders are merged (same activation pattern); each tile's complete "
                          "regions are in tiles/tile_J_I.parquet, the merged ones in tiles/merged.parquet.")
    rgb = np.stack([(image >> np.uint64(s)) & np.uint64(255) for s in (0, 8, 16)], -1).astype(np.uint8)
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
