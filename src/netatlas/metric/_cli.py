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
    from netatlas._options import at_least

    at_least("--threads", threads, 1)
    if threads:
        import torch

        torch.set_num_threads(threads)  # for the whole CLI process (see netatlas._threads for a scoped one)


# -- the user's own model ----------------------------------------------------------------------------
_QUANTITY_HELP = ("auto (the in-plane metric on a plane, the effective volume at data points), plane (log sqrt "
                  "det U^T J^T J U), effective (sum log10 sigma_i(J/sqrt m)) or volume (log sqrt det J^T J, "
                  "needs m >= d)")
_MODEL_HELP = "Model file: .pt2 (torch.export) or .pt/.pth/.safetensors state dict with a JSON spec"


def _parse_plane(text, where):
    kind, _, size = (text or "").partition(":")
    try:
        value = float(size)
    except ValueError:
        value = None
    if kind != "square" or value is None or not value > 0:
        raise ValueError(f"{where}: --plane must be square:S with S > 0 (the square [-S, S]^2 in the first two "
                         f"input coordinates); got {text!r}")
    return value


def _load_points(data, n, where):
    """(points, labels, description) from a built-in data set name or a data file."""
    import netatlas.data

    dataset = netatlas.data.load_any(data, where=where)
    x, y = (dataset.x_test, dataset.y_test) if dataset.n_test else (dataset.x, dataset.y)
    split = "test" if dataset.n_test else "training"
    return x[:n], y[:n].numpy(), f"{dataset.name} ({split} split, first {min(n, len(x))})"


def _run_user_model(command, model, spec, layer, data, n, through, plane, grid, quantity, out, threads):
    from netatlas.metric._user import QUANTITIES

    _threads(threads)
    if quantity != "auto" and quantity not in QUANTITIES:
        raise ValueError(f"{command}: --quantity must be one of auto, {', '.join(QUANTITIES)}; got {quantity!r}")
    if n < 1 or grid < 2:
        raise ValueError(f"{command}: need --n >= 1 and --grid >= 2; got --n {n}, --grid {grid}")
    if through and not data:
        raise ValueError(f"{command}: --through A B C picks three of the --data points; give --data too")
    if through and plane:
        raise ValueError(f"{command}: give --through or --plane, not both")
    size = _parse_plane(plane, command) if plane else None

    import numpy as np

    from netatlas.metric import _plot
    from netatlas.metric._user import metric_map
    from netatlas.nets import load
    from netatlas.report import RunDir
    from netatlas.slices import Plane

    net = load(model, spec)
    points = labels = None
    source = None
    if data:
        points, labels, source = _load_points(data, n, command)
    if through:
        bad = [i for i in through if not 0 <= i < len(points)]
        if bad:
            raise ValueError(f"{command}: --through indices {bad} are out of range; there are {len(points)} points")
        the_plane = Plane.through(*(points[i].numpy().astype(np.float64) for i in through))
    elif size is not None:
        if net.n_inputs < 2:
            raise ValueError(f"{command}: --plane needs at least 2 inputs; the model has {net.n_inputs}")
        the_plane = Plane.square(size, dim=net.n_inputs)
    elif points is None:
        if net.n_inputs != 2:
            raise ValueError(f"{command}: give --data, --through A B C or --plane square:S (the model has "
                             f"{net.n_inputs} inputs, so there is no default plane)")
        the_plane = Plane.square(1.0)
    else:
        the_plane = None
    config = {"model": str(model), "spec": None if spec is None else str(spec), "layer": layer, "data": data,
              "data_points": source, "n": n, "through": list(through) if through else None, "plane": plane,
              "grid": grid, "quantity": quantity}
    run_dir = RunDir.create(out, command=command, config=config)
    result = metric_map(net, layer=layer, points=points, labels=labels, plane=the_plane, grid=grid,
                        quantity=None if quantity == "auto" else quantity)
    import matplotlib.pyplot as plt

    if result.plane_values is not None:
        fig, ax = plt.subplots(figsize=(5.5, 4.5), constrained_layout=True)
        _plot.plot_metric_plane(result, ax)
        where = f"the plane through points {list(through)}" if through else f"the plane {the_plane.bounds}"
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
    summary = {"command": command, "model": str(model), "input_shape": list(net.input_shape), **result.summary()}
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


def metric_command(
    model: Path = typer.Argument(..., help=_MODEL_HELP),
    spec: Path = typer.Option(None, help="JSON architecture spec for a state dict (default: MODEL.json)"),
    layer: str = typer.Option(None, help="Features: this layer's output / sqrt(width) (node name; default: output)"),
    data: str = typer.Option(None, help="Data points: a built-in set (e.g. moons, mnist_sample) or a file "
                                        "(.csv/.npz/.pt with labels); the test split if it has one"),
    n: int = typer.Option(200, help="Use the first N data points"),
    through: tuple[int, int, int] = typer.Option(None, help="Plane through three of the data points (indices)"),
    plane: str = typer.Option(None, help="Plane square:S: [-S, S]^2 in the first two input coordinates"),
    grid: int = typer.Option(40, help="Plane grid points per side"),
    quantity: str = typer.Option("auto", help=_QUANTITY_HELP),
    out: Path = typer.Option(None, help="Run directory (default: a new one under runs/)"),
    threads: int = typer.Option(None, help="torch threads (default: torch's choice)"),
):
    """The metric of a model file's features: the in-plane metric on a plane (drawn over its exact linear
    regions for a piecewise-linear net), the effective volume (or volume element) at data points.

    Python: ``netatlas.metric.metric_map(netatlas.nets.load(MODEL), layer=L, points=x, plane=p)``
    """
    _run_user_model("metric", model, spec, layer, data, n, through, plane, grid, quantity, out, threads)


@magnify.command("model")
def magnify_model(
    model: Path = typer.Argument(..., help=_MODEL_HELP),
    spec: Path = typer.Option(None, help="JSON architecture spec for a state dict (default: MODEL.json)"),
    layer: str = typer.Option(None, help="Features: this layer's output / sqrt(width) (node name; default: output)"),
    data: str = typer.Option(None, help="Data points: a built-in set or a file (.csv/.npz/.pt with labels)"),
    n: int = typer.Option(200, help="Use the first N data points"),
    through: tuple[int, int, int] = typer.Option(None, help="Plane through three of the data points (indices)"),
    plane: str = typer.Option(None, help="Plane square:S: [-S, S]^2 in the first two input coordinates"),
    grid: int = typer.Option(40, help="Plane grid points per side"),
    quantity: str = typer.Option("auto", help=_QUANTITY_HELP),
    out: Path = typer.Option(None, help="Run directory (default: a new one under runs/)"),
    threads: int = typer.Option(None, help="torch threads (default: torch's choice)"),
):
    """Your model: does a layer's metric magnify areas near its decision boundaries?

    Reports the in-plane metric on a plane and the effective volume at data points against predictive
    entropy and predicted-class changes (--quantity picks another).
    Python: ``netatlas.metric.metric_map(net, layer=L, points=x, plane=p)``
    """
    _run_user_model("magnify model", model, spec, layer, data, n, through, plane, grid, quantity, out, threads)


def register(app: typer.Typer) -> None:
    """Add the ``magnify`` command group and the ``metric`` command to the root CLI."""
    logging.getLogger("netatlas.metric").addHandler(logging.NullHandler())
    app.add_typer(magnify, name="magnify")
    app.command("metric")(metric_command)
