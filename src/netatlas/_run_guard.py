"""The CLI's guard around commands that write a run directory (kept free of numpy/torch so that
``netatlas COMMAND --help`` stays light): ``--overwrite``, and failed runs marked in summary.json.

The root CLI applies ``add_overwrite_options`` to every command group it loads
(``netatlas.cli._load_command``); ``RunDir.create`` reads the context set here.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import inspect

__all__ = ["command_runs", "add_overwrite_options"]

# Whether --overwrite was given, and the runs the current command created (None outside a command).
_OVERWRITE = contextvars.ContextVar("netatlas_overwrite", default=False)
_RUNS = contextvars.ContextVar("netatlas_runs", default=None)


@contextlib.contextmanager
def command_runs(overwrite: bool = False):
    """Context of one CLI command: ``--overwrite`` applies to the runs it creates, and if it fails
    (any exception, Ctrl-C included) each of them is marked failed in summary.json; the exception
    is re-raised unchanged."""
    runs: list = []
    tokens = _OVERWRITE.set(bool(overwrite)), _RUNS.set(runs)
    try:
        yield runs
    except BaseException as exc:
        if not (isinstance(exc, SystemExit) and not exc.code):
            for run in runs:
                with contextlib.suppress(Exception):
                    run.fail(exc if not isinstance(exc, SystemExit) else f"exit status {exc.code}")
        raise
    finally:
        _OVERWRITE.reset(tokens[0])
        _RUNS.reset(tokens[1])


def add_overwrite_options(app) -> None:
    """Give every command of a Typer app (and its sub-apps) that has an ``out`` parameter an
    ``--overwrite`` flag, and run each command inside :func:`command_runs`."""
    import typer

    for info in app.registered_commands:
        info.callback = _with_run_guard(info.callback, typer)
    for group in app.registered_groups:
        if group.typer_instance is not None:
            add_overwrite_options(group.typer_instance)


def _with_run_guard(callback, typer):
    if callback is None or getattr(callback, "_netatlas_run_guard", False):
        return callback
    signature = inspect.signature(callback)
    if "out" not in signature.parameters or "overwrite" in signature.parameters:
        return callback

    @functools.wraps(callback)
    def guarded(*args, overwrite: bool = False, **kwargs):
        with command_runs(overwrite):
            return callback(*args, **kwargs)

    option = typer.Option(False, "--overwrite", help="Allow --out to name a non-empty directory that is not a "
                          "resumable run of this command (its files may be replaced)")
    params = [*signature.parameters.values(),
              inspect.Parameter("overwrite", inspect.Parameter.KEYWORD_ONLY, default=option, annotation=bool)]
    guarded.__signature__ = signature.replace(parameters=params)
    guarded._netatlas_run_guard = True
    return guarded
