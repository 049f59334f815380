"""``netatlas dynamics complexity``: the group of the dynamics lens (the van den Berg studies
``scale|zones|prune`` are added from :mod:`netatlas.experiments.vandenberg2016`)."""

from __future__ import annotations

import typer

__all__ = ["register"]


def _split(text: str | None) -> list[str] | None:
    return None if text is None else [t.strip() for t in text.split(",") if t.strip()]


def register(app: typer.Typer) -> None:
    """Add the ``dynamics`` command group to the root CLI."""
    group = typer.Typer(help="Training in regions (van den Berg 2016): gradient concentration, transition "
                        "zones, weight scale, training-data subsampling.", no_args_is_help=True)

    @group.command("complexity")
    def complexity(
        out: str = typer.Option(None, "--out", help="Run directory (default: runs/dynamics-complexity-<time>)"),
        data: str = typer.Option("mnist_sample", "--data", help="mnist_sample, digits or moons"),
        steps: str = typer.Option(None, help="Steps to record: '0,10,100,...' or 'log:MAX:N' (default per data "
                                  "set, e.g. log:3000:16)"),
        seeds: str = typer.Option("0", help="Comma-separated seeds (one training run each)"),
        widths: str = typer.Option(None, help="Comma-separated hidden widths (default per data set)"),
        radius: float = typer.Option(None, help="Disc radius in input units (default per data set)"),
        points: int = typer.Option(100, help="Points per set (train, test, random)"),
        planes: int = typer.Option(1, help="Random planes per point"),
        lr: float = typer.Option(1e-3, help="Adam learning rate"),
        batch_size: int = typer.Option(None, help="Mini-batch size (default per data set)"),
        weight_decay: float = typer.Option(0.0, help="Weight decay"),
        dask: str = typer.Option(None, "--dask", help="'local' (LocalCluster, 2 workers) or tcp://HOST:PORT; "
                                 "default: in-process"),
        threads: int = typer.Option(1, help="torch intra-op threads for training"),
    ):
        """Exact and sampled local complexity (Humayun et al. 2024) at train, test and random points through
        training, with accuracy and loss on the same step axis, and the three-phase check.

        Python: ``netatlas.dynamics.run_complexity(OUT, data="mnist_sample", steps="log:3000:16")``
        """
        from netatlas.dynamics._complexity import run_complexity

        run = run_complexity(out, data=data, dask=dask, steps=steps,
                             seeds=tuple(int(s) for s in _split(seeds)),
                             widths=[int(w) for w in _split(widths)] if widths else None, radius=radius,
                             n_points=points, n_planes=planes, lr=lr, batch_size=batch_size,
                             weight_decay=weight_decay, threads=threads)
        typer.echo(f"report: {run.file('report.html')}")

    app.add_typer(group, name="dynamics")

