"""``netatlas magnify-ssl ssl`` (to become ``netatlas magnify ssl``: see :func:`add_ssl_command`)."""

from __future__ import annotations

from pathlib import Path

import typer

__all__ = ["add_ssl_command", "register"]


def ssl(
    out: Path = typer.Option(None, "--out", help="Run directory (default: a new runs/magnify-ssl-<time>)"),
    data: str = typer.Option(None, "--data", help="digits or mnist_sample (default digits)"),
    seeds: int = typer.Option(None, "--seeds", min=1, help="Number of seeds (default 3; --quick: 1)"),
    first_seed: int = typer.Option(0, "--first-seed", min=0, help="First seed (seeds first..first+N-1)"),
    activation: str = typer.Option("gelu", "--activation", help="Encoder activation: gelu, tanh, sigmoid or relu"),
    quick: bool = typer.Option(False, "--quick", help="A < 1 minute run (digits, small slices, few epochs)"),
    threads: int = typer.Option(1, "--threads", min=1, help="torch CPU threads (small models: 1 is fastest)"),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Training progress bars"),
):
    """Train Barlow Twins, SimCLR, supervised and random encoders; compare where they magnify input space.

    Writes summary.json (per-encoder Spearman correlations of effective volume with linear-probe entropy,
    95% bootstrap CIs, probe accuracies) and report.html.

    Python: ``from netatlas.experiments.zavatoneveth2023 import ssl; ssl.magnify_ssl(ssl.SSLMagnifyConfig(data="digits",
    n_seeds=3))``
    """
    from netatlas._threads import torch_threads
    from netatlas.experiments.zavatoneveth2023.ssl._experiment import SSLMagnifyConfig, magnify_ssl
    from netatlas.experiments.zavatoneveth2023.ssl._report import write_ssl_report
    from netatlas.report import RunDir

    overrides = {"first_seed": first_seed, "activation": activation}
    if data is not None:
        overrides["data"] = data
    if seeds is not None:
        overrides["n_seeds"] = seeds
    config = SSLMagnifyConfig.quick(**overrides) if quick else SSLMagnifyConfig(**overrides)
    run = RunDir.create(out, command="magnify ssl", config={**config.to_dict(), "threads": threads})
    with torch_threads(threads):
        result = magnify_ssl(config, progress=progress)
    report = write_ssl_report(result, run)
    summary = result.summary()
    for kind, entry in summary["per_encoder"].items():
        e = entry["rho_volume_entropy_all"]
        typer.echo(f"{kind:>10}: rho(eff. volume, probe entropy) = {e['mean']:+.3f} "
                   f"[{e['ci_low']:+.3f}, {e['ci_high']:+.3f}]  probe acc {entry['probe_accuracy']['mean']:.3f}")
    typer.echo(f"report: {report}")


def add_ssl_command(magnify_group: typer.Typer) -> None:
    """Add the ``ssl`` command to an existing ``magnify`` typer group (``netatlas magnify ssl``)."""
    magnify_group.command("ssl")(ssl)


def register(app: typer.Typer) -> None:
    """Add the ``magnify-ssl`` group (with its ``ssl`` command) to the root CLI."""
    group = typer.Typer(help="Magnification in self-supervised representations.", no_args_is_help=True)

    @group.callback()
    def _magnify_ssl():
        """Magnification in self-supervised representations."""

    add_ssl_command(group)
    app.add_typer(group, name="magnify-ssl")

