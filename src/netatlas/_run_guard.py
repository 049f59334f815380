"""The CLI's guard around commands that write a run directory (kept free of numpy/torch so that
``netatlas COMMAND --help`` stays light): ``--overwrite``, SIGTERM handled like Ctrl-C, and failed runs
marked in summary.json.

The root CLI applies ``add_overwrite_options`` to every command group it loads
(``netatlas.cli._load_command``); ``RunDir.create`` reads the context set here.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import inspect
import signal
import threading
from pathlib import Path

from netatlas._errors import ResumeRefusedError

__all__ = ["command_runs", "add_overwrite_options", "Terminated"]

# Whether --overwrite was given, and the runs the current command created (None outside a command).
_OVERWRITE = contextvars.ContextVar("netatlas_overwrite", default=False)
_RUNS = contextvars.ContextVar("netatlas_runs", default=None)


#: Exit status of a command stopped by SIGTERM (128 + the signal's number, as shells report it).
SIGTERM_EXIT_STATUS = 128 + 15


class Terminated(SystemExit):
    """Raised in the main thread when SIGTERM arrives during a command: like Ctrl-C it unwinds the command
    (its ``finally`` blocks and cleanups run, its runs are marked failed), then exits with status 143."""

    def __init__(self):
        super().__init__(SIGTERM_EXIT_STATUS)

    def __str__(self):
        return f"SIGTERM (exit status {SIGTERM_EXIT_STATUS})"


def _raise_terminated(signum, frame):
    raise Terminated


@contextlib.contextmanager
def _sigterm_raises():
    """Within the block, SIGTERM raises :class:`Terminated` (only in the main thread, where Python runs
    signal handlers; elsewhere the process keeps its handler)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _failure_text(exc: BaseException) -> str:
    if isinstance(exc, Terminated):
        return f"Terminated: {exc}"
    if isinstance(exc, SystemExit):
        return f"exit status {exc.code}"
    return f"{type(exc).__name__}: {exc}".rstrip(": ")


def _was_refused(run, exc: BaseException) -> bool:
    """Whether ``exc`` refused to resume ``run``'s folder (or a folder inside it): then the folder must
    stay as it was, so the run is not marked failed."""
    refused = exc.path if isinstance(exc, ResumeRefusedError) else None
    if refused is None:
        return False
    run_path, refused = Path(run.path).absolute(), Path(refused).absolute()
    return refused == run_path or run_path in refused.parents


@contextlib.contextmanager
def command_runs(overwrite: bool = False):
    """Context of one CLI command: ``--overwrite`` applies to the runs it creates, SIGTERM stops it like
    Ctrl-C (raising :class:`Terminated`, exit status 143), and if it fails (any exception, Ctrl-C and
    SIGTERM included) each of its runs is marked failed in summary.json, except a run whose resume was
    refused (``ResumeRefusedError``: its folder is left untouched); the exception is re-raised unchanged."""
    runs: list = []
    tokens = _OVERWRITE.set(bool(overwrite)), _RUNS.set(runs)
    try:
        with _sigterm_raises():
            yield runs
    except BaseException as exc:
        if not (isinstance(exc, SystemExit) and not exc.code):
            for run in runs:
                if not _was_refused(run, exc):
                    with contextlib.suppress(Exception):
                        run.fail(_failure_text(exc))
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
