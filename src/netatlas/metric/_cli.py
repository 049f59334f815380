"""``netatlas magnify model MODEL`` (the metric of the user's own model) and ``netatlas metric MODEL`` (the
in-plane metric of a model file on a plane, the effective volume / volume element at data points): commands writing a
run directory. The Zavatone-Veth et al. studies ``magnify toy|images|ssl`` are added to the ``magnify``
group from :mod:`netatlas.experiments.zavatoneveth2023`."""

from __future__ import annotations

import logging
from pathlib import Path

import typer

__all__ = ["register"]

magnify = typer.Typer(
    help="Magnification near decision boundaries (Zavatone-Veth et al. 2023).", no_args_is_help=True
)


def _threads(threads):
    if threads:
        import torch

        torch.set_num_threads(threads)  # for the whole CLI process (see netatlas._threads for a scoped one)


# -- the user's own model ----------------------------------------------------------------------------
_QUANTITY_HELP = ("auto (the in-plane metric on a plane, the effective volume at data points), plane (log sqrt "
                  "det U^T J^T J U), effective (sum log10 sigma_i(J/sqrt m)) or volume (log sqrt det J^T J, "
                  "needs m >= d)")
_MODEL_HELP = "Model file: .pt2 (torch.export) or .pt/.pth/.safetensors state dict with a JSON spec"


_PYTHON = ('plane = netatlas.Plane.through(x[A], x[B], x[C]) (or Plane.square(SIZE, dim=net.n_inputs)); '
           'with --zoom F --around X: plane = plane.zoom(F, around="X") (--around boundary: '
           'around=plane.around_boundary(net, "A", "B")); then netatlas.metric.metric_map(netatlas.nets.load(MODEL), '
           'layer=L, points=x, plane=plane)')


def _points_of(command, data, split, n, seed):
    """``(x_split, x, y, description, split)``: the whole ``--split`` of ``--data`` (``--through`` indexes it)
    and a stratified sample of ``--n`` of it (the points measured). ``--split test`` falls back to train, said
    in one line, when the data has no test split (a data file)."""
    import netatlas.data
    from netatlas._options import OptionValueError, command_data

    try:
        dataset, x, y, source = command_data(data, where=command, split=split, n=n, seed=seed)
    except OptionValueError as exc:
        if split != "test" or "has no test split" not in str(exc):
            raise
        split = "train"
        typer.echo(f"{command}: --data {data} has no test split; using its train split", err=True)
        dataset, x, y, source = command_data(data, where=command, split=split, n=n, seed=seed)
    x_split, _ = netatlas.data.split_of(dataset, split)
    return x_split, x, y.numpy(), source, split


def _through_plane(net, x_split, through, data, split):
    """``Plane.through`` the inputs ``through`` (indices into the whole split)."""
    import numpy as np

    from netatlas._options import OptionValueError
    from netatlas.slices import Plane

    bad = [i for i in through if not 0 <= i < len(x_split)]
    if bad:
        raise OptionValueError(f"--through indices must be in [0, {len(x_split)}) for the {split} split of "
                               f"{data!r}; got {through}")
    inputs = [x_split[i].detach().numpy().astype(np.float64) for i in through]
    if inputs[0].size != net.n_inputs:
        raise ValueError(f"--data {data!r} has inputs of shape {tuple(x_split.shape[1:])} but the model expects "
                         f"{net.input_shape}")
    return Plane.through(*(a.reshape(net.input_shape) for a in inputs))


def _run_user_model(command, model, spec, layer, data, split, n, seed, through, plane, zoom, around, grid, quantity,
                    max_regions, memory_budget, out, threads):
    from netatlas import _options as options
    from netatlas.metric._user import QUANTITIES

    # options first: nothing is loaded or computed yet (a bad value exits 2)
    if quantity != "auto" and quantity not in QUANTITIES:
        raise options.OptionValueError(f"{command}: --quantity must be one of auto, {', '.join(QUANTITIES)}; got "
                                       f"{quantity!r}")
    options.at_least("--n", n, 1)
    options.at_least("--grid", grid, 2)
    options.at_least("--max-regions", max_regions, 1)
    options.at_least("--threads", threads, 1)
    options.split_value(split)
    budget = options.memory_budget_value(memory_budget)
    indices = options.through_indices(through)
    if indices and not data:
        raise options.OptionValueError(f"{command}: --through A B C picks three inputs of --data; give --data too")
    if indices and plane is not None:
        raise options.OptionValueError(f"{command}: give --through A B C or --plane square:SIZE, not both")
    size = options.square_size(plane) if plane is not None else None
    options.zoom_fraction(zoom)
    around = options.around_value(around)
    if zoom is not None and not indices:
        raise options.OptionValueError("--zoom needs a plane through three inputs (--through A B C)")
    _threads(threads)

    from netatlas._options import zoomed
    from netatlas.metric import _plot
    from netatlas.metric._user import metric_map
    from netatlas.nets import load
    from netatlas.regions import RegionLimitError
    from netatlas.report import RunDir
    from netatlas.slices import Plane

    net = load(model, spec)
    points = labels = source = None
    if data:
        x_split, points, labels, source, split = _points_of(command, data, split, n, seed)
    if indices:
        the_plane = _through_plane(net, x_split, indices, data, split)
        if zoom is not None:
            the_plane = zoomed(the_plane, zoom, around, net)
    elif size is not None:
        if net.n_inputs < 2:
            raise ValueError(f"{command}: --plane needs at least 2 inputs; the model has {net.n_inputs}")
        the_plane = Plane.square(size, dim=net.n_inputs)
    elif points is None:
        if net.n_inputs != 2:
            raise ValueError(f"{command}: give --data, --through A B C or --plane square:SIZE (the model has "
                             f"{net.n_inputs} inputs, so there is no default plane)")
        the_plane = Plane.square(1.0)
    else:
        the_plane = None
    config = {"model": str(model), "spec": None if spec is None else str(spec), "layer": layer, "data": data,
              "split": split, "data_points": source, "n": n, "seed": seed, "through": indices, "plane": plane,
              "zoom": zoom, "around": around, "grid": grid, "quantity": quantity, "max_regions": max_regions,
              "memory_budget": memory_budget}
    run_dir = RunDir.create(out, command=command, config=config)
    # --max-regions given: the slice's exact regions must fit or the command stops with the estimate (as in
    # `regions`); not given: up to 20,000 regions, else the metric at each grid point (said in a note)
    exact = None if max_regions is None or not _piecewise_linear(net) else True
    try:
        result = metric_map(net, layer=layer, points=points, labels=labels, plane=the_plane, grid=grid,
                            quantity=None if quantity == "auto" else quantity, regions=exact,
                            max_regions=20_000 if max_regions is None else max_regions, memory_budget=budget)
    except RegionLimitError as exc:  # name the command's options, not the library's arguments
        raise RegionLimitError(options.limit_message(str(exc))) from None
    import matplotlib.pyplot as plt

    if result.plane_values is not None:
        fig, ax = plt.subplots(figsize=(5.5, 4.5), constrained_layout=True)
        _plot.plot_metric_plane(result, ax)
        where = (f"the plane through inputs {indices} of the {split} split" if indices
                 else f"the plane {the_plane.bounds}")
        drawn = (f"drawn on its {result.partition.num_regions:,} exact linear regions" if result.partition is not None
                 else "at each grid point")
        run_dir.save_figure(fig, "plane", f"{QUANTITIES[result.plane_quantity]} of {result.features} on {where}, "
                            f"{drawn}; black: boundaries between predicted classes; numbered: the anchor points.")
        run_dir.save_arrays("plane", us=result.us, vs=result.vs, values=result.plane_values,
                            **({"predicted": result.plane_predicted, "entropy": result.plane_entropy}
                               if result.plane_predicted is not None else {}),
                            **({"region_values": result.region_values} if result.region_values is not None else {}))
    if result.point_values is not None:
        fig, ax = plt.subplots(figsize=(6, 3.8), constrained_layout=True)
        _plot.plot_metric_points(result, ax)
        run_dir.save_figure(fig, "points", f"{QUANTITIES[result.quantity]} of {result.features} at {source}.")
        run_dir.save_arrays("points", values=result.point_values, labels=result.point_labels,
                            **({"predicted": result.point_predicted, "entropy": result.point_entropy}
                               if result.point_predicted is not None else {}))
    summary = {"command": command, "model": str(model), "input_shape": list(net.input_shape),
               "head": None if net.head is None else net.head.name, **result.summary(),
               "python": _PYTHON}
    run_dir.write_summary(summary)
    for name in ("points", "plane"):
        if name in summary:
            quantity_name = summary[name].get("quantity", summary["quantity"])
            rows = [{"set": name, **{k: v for k, v in summary[name].items() if not isinstance(v, (dict, list, str))}}]
            run_dir.add_table(f"{name}: {QUANTITIES[quantity_name]}", rows, "n_finite: the values every statistic "
                              "uses (statistic_n_finite where it differs); n_minus_inf: points where J is "
                              "rank-deficient in exact arithmetic; spearman_with_entropy: rank correlation with "
                              "the predictive entropy.")
    for heading, messages in (("Note", result.notes), ("Warning", result.warnings), ("Flag", summary["flags"])):
        for message in messages:
            run_dir.add_text(heading, message)
    path = run_dir.write_report(f"{command}: {model}", f"Features: {result.features}. Values are computed in "
                                "log space (exact for saturated nets); numbers are reported whatever they are.")
    for message in result.notes:
        typer.echo(message)
    for name in ("points", "plane"):
        if name in summary:
            typer.echo(_summary_line(name, summary[name], summary.get("quantity")))
    typer.echo(f"report: {path}")


def _number(value) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def _summary_line(name, s, quantity) -> str:
    """One line per set: the statistics with the count of finite values they used."""
    line = (f"{name} ({s.get('quantity', quantity)}): {s['n_finite']} of {s['n']} values finite, median "
            f"{_number(s['median'])} (min {_number(s['min'])}, max {_number(s['max'])})")
    if "spearman_with_entropy" in s:
        rho = s["spearman_with_entropy"]
        line += (f", Spearman with entropy {rho:.3f} over {s['spearman_with_entropy_n_finite']} points" if rho is not
                 None else f", no Spearman with entropy ({s['spearman_with_entropy_n_finite']} finite points)")
    return line


def _command(command: str):
    """The function of ``netatlas metric`` or ``netatlas magnify model`` (the same options, from
    :mod:`netatlas._options`)."""
    from netatlas import _options as options

    def run(
        model: Path = typer.Argument(..., help=_MODEL_HELP),
        spec: Path = typer.Option(None, help="JSON architecture spec for a state dict (default: MODEL.json)"),
        layer: str = options.layer_option("Features: this layer's output / sqrt(width) (default: the output)"),
        data: str = options.data_option(what="the points measured and --through"),
        split: str = typer.Option("test", "--split", metavar="train|test", show_default=True,
                                  help="Which split of --data the indices (--through) and the points refer to "
                                  "(test falls back to train, said in one line, when the data has none)"),
        n: int = options.n_option(200, "points"),
        seed: int = options.seed_option(what="the sample of --n points"),
        through: list[str] = options.through_option(),
        plane: str = options.plane_option(),
        zoom: float = options.zoom_option(),
        around: str = options.around_option(),
        grid: int = typer.Option(40, help="Plane grid points per side"),
        quantity: str = typer.Option("auto", help=_QUANTITY_HELP),
        max_regions: int = typer.Option(None, "--max-regions", help="Stop (with the estimate) when the slice "
                                        "would have more exact regions than this (default: draw over up to 20,000 "
                                        "regions, else evaluate at each grid point, said in a note)"),
        memory_budget: str = options.memory_budget_option(),
        out: Path = options.out_option(),
        threads: int = options.threads_option(),
    ):
        _run_user_model(command, model, spec, layer, data, split, n, seed, through, plane, zoom, around, grid,
                        quantity, max_regions, memory_budget, out, threads)

    return run


_METRIC_HELP = ("The metric of a model file's features: the in-plane metric on a plane (drawn over its exact linear "
                "regions for a piecewise-linear net), the effective volume (or volume element) at data points.\n\n"
                f"Python: ``{_PYTHON}``")

_MAGNIFY_HELP = ("Your model: does a layer's metric magnify areas near its decision boundaries?\n\n"
                 "Reports the in-plane metric on a plane and the effective volume at data points against predictive "
                 "entropy and predicted-class changes (--quantity picks another).\n\n"
                 f"Python: ``{_PYTHON}``")

metric_command = _command("metric")
magnify.command("model", help=_MAGNIFY_HELP)(_command("magnify model"))


def _piecewise_linear(net) -> bool:
    return net.piecewise_linear  # every activation piecewise linear (Max always is): exact regions apply


def register(app: typer.Typer) -> None:
    """Add the ``magnify`` command group and the ``metric`` command to the root CLI."""
    logging.getLogger("netatlas.metric").addHandler(logging.NullHandler())
    app.add_typer(magnify, name="magnify")
    app.command("metric", help=_METRIC_HELP)(metric_command)
