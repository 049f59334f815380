"""The ``netatlas`` command line: thin over the library (each command names its one-call Python
equivalent in ``--help``). Lens subpackages add their commands through ``<lens>/_cli.py:register``."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import typer

from netatlas._errors import NetatlasError

app = typer.Typer(help="netatlas: map what a neural network does to its input space.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)

@app.callback()
def _root():
    """netatlas: map what a neural network does to its input space."""


# Each of these modules defines register(app) adding its commands; missing ones are skipped.
_LENS_CLIS = ("netatlas.demo", "netatlas.regions._cli", "netatlas.metric._cli", "netatlas.splines._cli",
              "netatlas.lowrank._cli", "netatlas.dynamics._cli", "netatlas.experiments._cli",
              "netatlas.app._cli", "netatlas.sweep_cli")


@app.command()
def info(
    model: Path = typer.Argument(..., help="Model file: .pt2 (torch.export) or .pt/.pth/.safetensors"),
    spec: Path = typer.Option(None, help="JSON architecture spec for a state dict (default: MODEL.json)"),
    json_out: bool = typer.Option(False, "--json", help="Print the IR as JSON instead of a table"),
):
    """Load a model file and print its IR: layers, shapes, parameter count, which lenses apply.

    Python: ``print(netatlas.nets.load(MODEL).summary())``
    """
    import json

    from netatlas.nets import load

    net = load(model, spec)
    if json_out:
        typer.echo(json.dumps(net.to_dict(), indent=2))
        return
    typer.echo(f"{model}: input shape {net.input_shape}, {net.n_outputs} outputs")
    typer.echo(net.summary())
    for lens, verdict in net.lenses().items():
        typer.echo(f"  {lens:<9} {verdict}")


def _register_lenses():
    for name in _LENS_CLIS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name or (exc.name and name.startswith(exc.name)):
                continue
            raise
        module.register(app)


_register_lenses()


def main(argv=None):
    """Entry point: runs the app, printing library errors as one line without a traceback."""
    try:
        app(args=argv, standalone_mode=False)
    except (NetatlasError, ValueError, OSError, TypeError) as exc:
        typer.echo(f"{type(exc).__name__}: {exc}", err=True)
        sys.exit(1)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        typer.echo("Aborted.", err=True)
        sys.exit(130)
    except Exception as exc:
        if hasattr(exc, "show") and hasattr(exc, "exit_code"):  # click usage errors
            exc.show()
            sys.exit(exc.exit_code)
        raise
