"""``netatlas sweep ...``: run a function over a grid of configs and inspect a sweep directory."""

from __future__ import annotations

import importlib
import json
import math
from pathlib import Path

import typer

__all__ = ["register"]


def _parse_axis(text: str) -> tuple[str, list]:
    """``"width=8,16"`` -> ``("width", [8, 16])``; each value is read as JSON, else kept as a string."""
    name, sep, values = text.partition("=")
    if not sep or not name.strip():
        raise ValueError(f"--grid {text!r}: write NAME=V1,V2,... (e.g. --grid seed=0,1,2).")
    parsed = []
    for item in values.split(","):
        try:
            value = json.loads(item, parse_constant=_refuse_constant)
        except ValueError:
            value = item
        if value is _NOT_FINITE or (isinstance(value, float) and not math.isfinite(value)):  # 1e999 too
            raise ValueError(f"--grid {text!r}: {item} is not a finite number; sweep values must be finite")
        parsed.append(value)
    return name.strip(), parsed


_NOT_FINITE = object()


def _refuse_constant(name):
    return _NOT_FINITE  # json would read NaN/Infinity/-Infinity as floats that collapse to None


def _parse_axes(texts) -> dict:
    """``--grid`` options -> {name: values}; a name given twice is refused (write all its values once)."""
    axes = {}
    for text in texts:
        name, values = _parse_axis(text)
        if name in axes:
            raise ValueError(f"--grid {name} is given twice; list all its values in one option, e.g. "
                             f"--grid {name}={','.join(map(str, axes[name] + values))}")
        axes[name] = values
    return axes


def _import_function(spec: str):
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise ValueError(f"FUNCTION {spec!r}: write MODULE:NAME, e.g. mypackage.experiments:train_one.")
    try:
        target = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise ValueError(f"FUNCTION {spec!r}: cannot import {module_name!r} ({exc}).") from None
    for part in attribute.split("."):
        if not hasattr(target, part):
            raise ValueError(f"FUNCTION {spec!r}: {module_name} has no attribute {attribute!r}.")
        target = getattr(target, part)
    if not callable(target):
        raise ValueError(f"FUNCTION {spec!r} is not callable.")
    return target


def register(app: typer.Typer) -> None:
    """Add the ``sweep`` command group (``run``, ``status``) to the root CLI."""
    sweep = typer.Typer(help="Run a function over a grid of configs (resumable; in-process or Dask).",
                        no_args_is_help=True)

    @sweep.command("run")
    def run_command(
        function: str = typer.Argument(..., help="MODULE:NAME of a function config-dict -> JSON-able dict"),
        grid_axes: list[str] = typer.Option([], "--grid", help="An axis NAME=V1,V2,... (repeatable); "
                                            "values are read as JSON, else as strings"),
        out: Path = typer.Option(None, help="Sweep directory (default: a new one under runs/); "
                                 "rerunning into it skips finished configs"),
        dask: str = typer.Option(None, help="'local' (LocalCluster on 127.0.0.1) or tcp://HOST:PORT; "
                                 "default: in-process"),
    ):
        """Run FUNCTION on every config of the grid, writing each result as it finishes.

        Python: ``netatlas.sweep.run(fn, netatlas.sweep.grid(**axes), out, dask=...)``
        """
        from netatlas.report import RunDir
        from netatlas.sweep import grid, run, status

        axes = _parse_axes(grid_axes)
        fn = _import_function(function)
        configs = grid(**axes)
        run_dir = RunDir.create(out, command="sweep run",
                                config={"function": function, "axes": axes, "dask": dask})
        records = run(fn, configs, run_dir.path, dask=dask, progress=None)
        state = status(run_dir.path)
        run_dir.add_table("Configs", [{"key": r["key"], **r["config"], "status": r["status"],
                                       "wall_time_s": round(r.get("wall_time", 0.0), 3)} for r in records],
                          caption="One row per config; results are in results/<key>.json.")
        run_dir.write_summary(state.to_dict())
        run_dir.write_report(f"Sweep of {function}", f"{len(configs)} configs over axes "
                             f"{', '.join(axes) or '(none)'}.")
        typer.echo(f"{run_dir.path}: {state.n_done} done, {state.n_failed} failed of {state.n_configs}")
        if state.n_failed:  # an error, not typer.Exit: the exit status must not depend on how main runs the app
            from netatlas._errors import RunFailedError

            key, error = next(iter(state.failed.items()))
            raise RunFailedError(f"sweep run: {state.n_failed} of {state.n_configs} configs failed (see "
                                 f"{run_dir.path / 'failed'}); first: {key}: {(error or '?').splitlines()[0]}")

    @sweep.command("status")
    def status_command(
        directory: Path = typer.Argument(..., help="A sweep directory (written by `netatlas sweep run` or "
                                         "netatlas.sweep.run)"),
        json_out: bool = typer.Option(False, "--json", help="Print the status as JSON"),
    ):
        """Print how many configs of a sweep are done, failed and pending (and the failures' errors).

        Python: ``netatlas.sweep.status(DIRECTORY)``
        """
        from netatlas.sweep import status

        state = status(directory)
        if json_out:
            typer.echo(json.dumps(state.to_dict(), indent=2))
            return
        typer.echo(f"{directory}: {state.n_configs} configs: {state.n_done} done, {state.n_failed} failed, "
                   f"{state.n_pending} pending")
        for key, error in state.failed.items():
            typer.echo(f"  failed {key}: {error.splitlines()[0] if error else ''}")

    app.add_typer(sweep, name="sweep")

    from netatlas._run_guard import add_overwrite_options

    add_overwrite_options(app)  # --overwrite on commands with --out; a failed command marks its run failed
