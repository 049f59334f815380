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
from netatlas._options import OptionValueError, greedy_index_options
from netatlas._run_guard import add_overwrite_options

# Command name -> the module(s) whose register(app) define it. A new command group is one line here.
# A lens group can be shared with the papers that study it: each module registers a group of that
# name and the root merges their subcommands (``magnify toy`` comes from the paper's package, ``metric``
# commands from the lens). These modules import only typer at the top (a test checks that `--help`
# loads no torch, numba, matplotlib or Dask); the lens itself is imported inside each command.
COMMANDS: dict[str, str | tuple[str, ...]] = {
    "demo": "netatlas.demo",
    "regions": "netatlas.regions._cli",
    "magnify": ("netatlas.metric._cli", "netatlas.experiments.zavatoneveth2023._cli"),
    "metric": "netatlas.metric._cli",
    "splines": "netatlas.experiments.sahs2020._cli",
    "lowrank": ("netatlas.experiments.shisher2022._cli", "netatlas.lowrank._cli"),
    "dynamics": ("netatlas.experiments.humayun2024._cli", "netatlas.experiments.vandenberg2016._cli"),
    "reproduce": "netatlas.experiments._cli",
    "serve": "netatlas.app._cli",
    "sweep": "netatlas.sweep_cli",
}
# Reachable but not listed (kept for old scripts; `netatlas magnify ssl` is the listed spelling).
HIDDEN_COMMANDS: dict[str, str] = {"magnify-ssl": "netatlas.experiments.zavatoneveth2023.ssl._cli"}


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


def _load_command(modules: str | tuple[str, ...], name: str):
    command = None
    for module_name in (modules,) if isinstance(modules, str) else modules:
        module = importlib.import_module(module_name)
        holder = typer.Typer()
        holder.callback()(lambda: None)  # a callback makes typer build a group even for one command
        module.register(holder)
        add_overwrite_options(holder)  # --overwrite on commands with --out; a failed command marks its run failed
        group = typer.main.get_command(holder)
        greedy_index_options(group)  # --through 0 5 9 in one flag (the repeated form keeps working)
        part = group.commands.get(name)
        if part is None:
            raise RuntimeError(f"{module_name}.register did not add the command {name!r}")
        if command is None:
            command = part
        else:  # the same group from another module: add its subcommands
            for sub_name, sub in part.commands.items():
                command.add_command(sub, sub_name)
    return command


app = typer.Typer(cls=LazyGroup, help="netatlas: map what a neural network does to its input space.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)


@app.callback()
def _root():
    """netatlas: map what a neural network does to its input space."""


@app.command()
def info(
    model: Path = typer.Argument(..., help="Model file: .pt2 (torch.export), .onnx or .pt/.pth/.safetensors"),
    spec: Path = typer.Option(None, help="JSON architecture spec for a state dict (default: MODEL.json)"),
    json_out: bool = typer.Option(False, "--json", help="Print the IR as JSON instead of a table"),
):
    """Load a model file and print its IR: layers, shapes, parameter count, and what each command does on it.

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
    typer.echo("commands on this model (yes: what it does, or no: why):")
    for command, verdict in command_verdicts(net, model).items():
        typer.echo(f"  {command:<9} {verdict}")


def command_verdicts(net, model) -> dict[str, str]:
    """What each command that takes a model does on ``net``: "yes", "yes: what it does", or "no: why" (from
    ``Net.lenses()``, said the way the command acts on it: ``dynamics zones`` runs on any torch model, and
    only its transition-zone part needs a chain of Linear layers)."""
    lenses = net.lenses()
    torch_file = Path(model).suffix.lower() != ".onnx"
    out = {"regions": "yes" if lenses["regions"] == "yes" else lenses["regions"],
           "metric": "yes", "magnify model": "yes"}  # both read the model as a Net (metric_map)
    if lenses["splines"] == "yes":
        out["splines watch"] = "yes"
    else:
        out["splines watch"] = lenses["splines"]
    out["lowrank analyze"] = "yes" if lenses["lowrank"] == "yes" else lenses["lowrank"]
    if not torch_file:
        out["dynamics zones"] = "no: per-sample gradients need a torch model file (.pt2 or a state dict + spec)"
    elif lenses["dynamics zones"] == "yes":
        out["dynamics zones"] = "yes: per-sample gradient norms, transition zones, decision-boundary distance"
    else:  # the command still runs; only the zones part is skipped
        why = lenses["dynamics zones"].removeprefix("no: ")
        out["dynamics zones"] = ("yes: per-sample gradient norms and decision-boundary distance; transition zones "
                                 f"skipped ({why})")
    return out


def main(argv=None):
    """Entry point. Library errors print as one line (``Type: message``) and exit 1; Ctrl-C exits 130;
    usage errors exit 2 (an option value that fails its check, :class:`~netatlas._options.OptionValueError`,
    prints in one line too); a command's own exit code is passed on. ``NETATLAS_DEBUG=1`` shows full
    tracebacks instead of one line."""
    debug = os.environ.get("NETATLAS_DEBUG", "") not in ("", "0")
    try:
        # standalone: click turns Exit(n) into exit status n, usage errors into 2 and Ctrl-C into 130
        app(args=argv, standalone_mode=True)
    except KeyboardInterrupt:  # raised outside a command (while loading one)
        typer.echo("Interrupted.", err=True)
        sys.exit(130)
    except OptionValueError as exc:
        if debug:
            raise
        typer.echo(f"ValueError: {exc}", err=True)
        sys.exit(2)
    except (NetatlasError, ValueError, OSError, TypeError, MemoryError) as exc:
        if debug:
            raise
        typer.echo(f"{type(exc).__name__}: {exc}", err=True)
        sys.exit(1)
