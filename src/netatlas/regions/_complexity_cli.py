"""``netatlas regions complexity MODEL``: the local complexity of the user's own model around data
points, as a run directory (per-point counts, a histogram, the points ranked).

``regions`` itself is one command taking MODEL first; ``RegionsCommand`` hands ``regions complexity
...`` to this command unless a file named ``complexity`` exists (then it is the MODEL)."""

from __future__ import annotations

from pathlib import Path

import typer
from typer.core import TyperCommand

__all__ = ["RegionsCommand", "register"]


class RegionsCommand(TyperCommand):
    """The ``regions`` command, which also dispatches ``regions complexity ...`` (a group would make
    ``regions MODEL`` look like an unknown subcommand)."""

    def make_context(self, info_name, args, parent=None, **extra):
        if args and args[0] == "complexity" and not Path("complexity").exists():
            return complexity_command().make_context(f"{info_name} complexity", list(args[1:]), parent=parent, **extra)
        return super().make_context(info_name, args, parent=parent, **extra)


def complexity_command():
    """The click command of ``regions complexity`` (with ``--overwrite``, as the root gives every command)."""
    from netatlas._run_guard import add_overwrite_options

    holder = typer.Typer()
    holder.callback()(lambda: None)
    register(holder)
    add_overwrite_options(holder)
    return typer.main.get_command(holder).commands["complexity"]


def register(app: typer.Typer) -> None:
    """Add the ``complexity`` command (reached as ``netatlas regions complexity``)."""

    from netatlas import _options as options

    @app.command("complexity")
    def complexity(
        model: Path = typer.Argument(..., help="Model file: .pt2 (torch.export), .onnx or .pt/.pth/.safetensors"),
        data: str = options.data_option(..., what="the points measured around"),
        points: int = typer.Option(20, "--points", help="Points to measure around: a stratified sample of the "
                                   "split (every class in proportion), seeded by --seed"),
        radius: float = typer.Option(..., "--radius", help="Disc radius r > 0 in input units"),
        method: str = typer.Option("exact", "--method", help="exact: regions meeting the disc (exact partition); "
                                   "sampled: neurons whose sign changes over the disc's cross-polytope (Humayun et "
                                   "al. 2024; cheap, no partition)"),
        split: str = typer.Option("test", "--split", metavar="train|test", show_default=True,
                                  help="Which split of --data the points (and the report's indices) refer to (test "
                                  "falls back to train, said in one line, when the data has none)"),
        planes: int = typer.Option(1, "--planes", help="Random planes (discs) per point"),
        seed: int = options.seed_option(what="the point sample and the planes"),
        max_regions: int = typer.Option(10_000, "--max-regions", help="Stop (with the estimate) when one disc's "
                                        "square would hold more regions than this"),
        memory_budget: str = options.memory_budget_option(),
        spec: Path = typer.Option(None, help="JSON architecture spec for a state dict (default: MODEL.json)"),
        out: Path = options.out_option("regions complexity"),
    ):
        """Local complexity of MODEL around points of --data: regions (exact) or neurons (sampled) meeting
        a disc of radius --radius on random planes through each point.

        Writes summary.json (per-point counts), complexity_hist.png/svg, a table of the points ranked
        and report.html into the run directory.

        Python: ``netatlas.regions.local_complexity(netatlas.nets.load(MODEL), x, R, n_planes=1,
        method="exact", max_regions=10_000)`` with ``x = netatlas.data.load_any(DATA).x_test[idx]``
        """
        # options first: nothing is loaded or partitioned yet (a bad value exits 2)
        options.one_of("--method", method, ("exact", "sampled"))
        options.split_value(split)
        options.at_least("--points", points, 1)
        options.at_least("--planes", planes, 1)
        options.at_least("--max-regions", max_regions, 1)
        if not 0 < radius < float("inf"):
            raise options.OptionValueError(f"--radius must be a finite number > 0; got {radius}")
        budget = options.memory_budget_value(memory_budget)
        _run(model, spec, data, points, radius, method, split, planes, seed, max_regions, budget, out,
             {"model": str(model), "spec": str(spec) if spec else None, "data": data, "points": points,
              "radius": radius, "method": method, "split": split, "planes": planes, "seed": seed,
              "max_regions": max_regions, "memory_budget": memory_budget})


def _split_points(data, split, n_points, seed, where):
    """``(x_split, y_split, index, split)``: the whole ``split`` of ``--data`` (test falls back to train, said
    in one line, when the data has none) and the indices of a stratified sample of ``n_points`` of it."""
    import warnings

    import netatlas.data
    from netatlas._options import OptionValueError, command_data

    try:
        _, x_all, y_all, _ = command_data(data, where=where, split=split, seed=seed)
    except OptionValueError as exc:
        if split != "test" or "has no test split" not in str(exc):
            raise
        split = "train"
        typer.echo(f"{where}: --data {data} has no test split; using its train split", err=True)
        _, x_all, y_all, _ = command_data(data, where=where, split=split, seed=seed)
    if n_points > len(x_all):
        raise OptionValueError(f"{where}: --points {n_points} is more than the {len(x_all)} {split} inputs of "
                               f"{data!r}")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        index = netatlas.data.stratified_sample(y_all, n_points, seed=seed)
    for message in dict.fromkeys(str(w.message) for w in caught):
        typer.echo(f"Warning: {where}: {message}", err=True)
    return x_all, y_all, index, split


def _run(model, spec, data, n_points, radius, method, split, planes, seed, max_regions, budget, out, config):
    import time

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from netatlas._options import limit_message
    from netatlas.nets import load
    from netatlas.regions import RegionLimitError, local_complexity
    from netatlas.report import RunDir

    where = "regions complexity"
    net = load(model, spec)
    x_all, y_all, index, split = _split_points(data, split, n_points, seed, where)
    x_all = x_all.detach().double().numpy()
    y_all = y_all.detach().numpy()
    if x_all[0].size != net.n_inputs:
        raise ValueError(f"{where}: --data {data!r} has inputs of shape {x_all.shape[1:]} but the model expects "
                         f"{net.input_shape}")
    index = np.asarray(index, dtype=np.int64)
    x = x_all[index].reshape(n_points, *net.input_shape)
    config["split"] = split
    run = RunDir.create(out, command="regions complexity", config=config)
    typer.echo(f"local complexity ({method}) of {model} at {n_points} {split} points of {data}, r = {radius:g} ...")
    t0 = time.perf_counter()
    try:
        counts = local_complexity(net, x, radius, n_planes=planes, seed=seed, method=method, max_regions=max_regions,
                                  memory_budget=budget)
    except RegionLimitError as exc:  # name the command's options, not the library's arguments
        raise RegionLimitError(limit_message(str(exc))) from None
    seconds = time.perf_counter() - t0
    per_point = counts.mean(1)
    unit = "regions" if method == "exact" else "neurons"
    rows = [{"index": int(i), "label": _label(y), "count": float(c), "per_plane": k.tolist()}
            for i, y, c, k in zip(index, y_all[index], per_point, counts, strict=True)]
    ranked = sorted(rows, key=lambda row: -row["count"])
    summary = {"method": method, "unit": unit, "radius": radius, "split": split, "n_points": n_points,
               "n_planes": planes, "seconds": seconds, "mean": float(counts.mean()), "median": float(np.median(counts)),
               "min": int(counts.min()), "max": int(counts.max()), "points": rows}
    run.write_summary(summary)
    run.save_arrays("complexity", index=index, counts=counts)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.hist(counts.ravel(), bins=min(30, max(5, len(np.unique(counts)))), color="C0")
    ax.set_xlabel(f"{unit} meeting the disc (r = {radius:g})")
    ax.set_ylabel("discs")
    run.save_figure(fig, "complexity_hist", f"Local complexity ({method}) of {n_points} x {planes} discs of radius "
                    f"{radius:g} around {split} points of {data}.")
    plt.close(fig)
    run.add_table("Points ranked by local complexity", [{k: v for k, v in row.items() if k != "per_plane"}
                                                         for row in ranked],
                  caption=f"Mean {unit} over the {planes} plane(s) of each point; index into the {split} split.")
    run.write_report("Local complexity", f"{model}: local complexity ({method}, {unit}) at {n_points} {split} points "
                     f"of {data}, radius {radius:g}: mean {summary['mean']:.1f}, range {summary['min']}-"
                     f"{summary['max']}, in {seconds:.2f} s.")
    typer.echo(f"mean {summary['mean']:.1f} {unit} per disc (range {summary['min']}-{summary['max']}) in "
               f"{seconds:.2f} s; wrote {run.path}")


def _label(y):
    return int(y) if float(y).is_integer() else float(y)
