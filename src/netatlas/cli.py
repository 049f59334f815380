"""The ``netatlas`` command line: thin over the library (each command names its one-call Python
equivalent in ``--help``).

Commands live beside their lens (``<lens>/_cli.py:register(app)``) and are loaded lazily: the root
knows each command's name and module from :data:`COMMANDS` and imports that small module only when
the command is listed or run. So ``netatlas --help`` and ``netatlas COMMAND --help`` import neither
torch, numba, matplotlib nor Dask, and a missing optional extra (the playground's server stack) only
affects its own command."""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

import typer
from typer.core import TyperGroup

from netatlas._errors import NetatlasError

# Command name -> the module whose register(app) defines it. A new command group is one line here.
# These modules import only typer at the top (a test checks that `--help` loads no torch, numba,
# matplotlib or Dask); the lens itself is imported inside each command.
COMMANDS: dict[str, str] = {
    "demo": "netatlas.demo",
    "regions": "netatlas.regions._cli",
    "magnify": "netatlas.metric._cli",
    "splines": "netatlas.splines._cli",
    "lowrank": "netatlas.lowrank._cli",
    "dynamics": "netatlas.dynamics._cli",
    "reproduce": "netatlas.experiments._cli",
    "serve": "netatlas.app._cli",
    "sweep": "netatlas.sweep_cli",
}
# Reachable but not listed (kept for old scripts; `netatlas magnify ssl` is the listed spelling).
HIDDEN_COMMANDS: dict[str, str] = {"magnify-ssl": "netatlas.ssl._cli"}


class LazyGroup(TyperGroup):
    """The root group: built-in commands (``info``) plus the lazily imported lens commands."""

    def list_commands(self, ctx):
        return sorted(set(super().list_commands(ctx)) | set(COMMANDS))

    def get_command(self, ctx, name):
        command = super().get_command(ctx, name)
        if command is not None:
            return command
        module = COMMANDS.get(name) or HIDDEN_COMMANDS.get(name)
        return None if module is None else _load_command(module, name)


def _load_command(module_name: str, name: str):
    module = importlib.import_module(module_name)
    holder = typer.Typer()
    holder.callback()(lambda: None)  # a callback makes typer build a group even for one command
    module.register(holder)
    group = typer.main.get_command(holder)
    command = group.commands.get(name)
    if command is None:
        raise RuntimeError(f"{module_name}.register did not add the command {name!r}")
    return command


app = typer.Typer(cls=LazyGroup, help="netatlas: map what a neural network does to its input space.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)


@app.callback()
def _root():
    """netatlas: map what a neural network does to its input space."""


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


def main(argv=None):
    """Entry point. Library errors print as one line (``Type: message``) and exit 1; Ctrl-C exits 130;
    usage errors exit 2; a command's own exit code is passed on. ``NETATLAS_DEBUG=1`` shows full
    tracebacks instead of one line."""
    debug = os.environ.get("NETATLAS_DEBUG", "") not in ("", "0")
    try:
        # standalone: click turns Exit(n) into exit status n, usage errors into 2 and Ctrl-C into 130
        app(args=argv, standalone_mode=True)
    except KeyboardInterrupt:  # raised outside a command (while loading one)
        typer.echo("Interrupted.", err=True)
        sys.exit(130)
    except (NetatlasError, ValueError, OSError, TypeError, MemoryError) as exc:
        if debug:
            raise
        typer.echo(f"{type(exc).__name__}: {exc}", err=True)
        sys.exit(1)
