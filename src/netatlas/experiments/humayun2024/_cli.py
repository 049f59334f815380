"""``netatlas dynamics complexity``: the local-complexity study of Humayun et al. (2024) as a command (the
root CLI merges it with the van den Berg studies ``scale|zones|prune`` into the ``dynamics`` group)."""

from __future__ import annotations

import typer

from netatlas import _options as options

__all__ = ["register"]


def _split(text: str | None) -> list[str] | None:
    return None if text is None else [t.strip() for t in text.split(",") if t.strip()]


def _say_steps_used(run, asked) -> None:
    """Say which steps were recorded when they differ from those asked (records fall on epoch ends)."""
    import json

    if asked is None:
        return
    used = json.loads(run.file("summary.json").read_text())["steps_recorded"]
    if [int(s) for s in used] != [int(s) for s in asked]:
        typer.echo(f"dynamics complexity: recorded at steps {', '.join(map(str, used))} (asked "
                   f"{', '.join(map(str, asked))}): each record is taken at the end of the first epoch at or after "
                   "the step asked", err=True)


def register(app: typer.Typer) -> None:
    """Add the ``dynamics`` group with ``complexity`` (the root merges it with the van den Berg studies')."""
    group = typer.Typer(help="Training in regions (van den Berg 2016): gradient concentration, transition "
                        "zones, weight scale, training-data subsampling.", no_args_is_help=True)

    @group.command("complexity")
    def complexity(
        out: str = options.out_option("dynamics complexity"),
        data: str = typer.Option("mnist_sample", "--data", metavar="NAME|FILE", help="mnist_sample, digits or "
                                 "moons (tuned presets), or a data file (.csv/.npz/.pt with class labels and a test "
                                 "split; give --radius)"),
        steps: str = typer.Option(None, help="Steps to record: '0,10,100,...' or 'log:MAX:N' (default per data "
                                  "set, e.g. log:3000:16); recorded at the end of the first epoch at or after each, "
                                  "and the command says which"),
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
        threads: int = options.threads_option(1),
        max_regions: int = typer.Option(10_000, "--max-regions", help="The most regions one disc's square may hold "
                                        "at a record (estimated first; the run stops with the estimate)"),
    ):
        """Exact and sampled local complexity (Humayun et al. 2024) at train, test and random points through
        training, with accuracy and loss on the same step axis, and the three-phase check.

        Python: ``netatlas.experiments.humayun2024.run_complexity(OUT, data="mnist_sample", steps="log:3000:16")``
        """
        from netatlas.experiments.humayun2024._complexity import parse_steps, run_complexity

        options.at_least("--threads", threads, 1)
        options.at_least("--points", points, 1)
        options.at_least("--planes", planes, 1)
        options.at_least("--batch-size", batch_size, 1)
        options.at_least("--max-regions", max_regions, 1)
        seed_list = tuple(options.number_list("--seeds", seeds, integer=True))
        width_list = options.number_list("--widths", widths, positive=True, integer=True) if widths else None
        if radius is not None and not 0 < radius < float("inf"):
            raise options.OptionValueError(f"--radius must be a finite number > 0; got {radius}")
        try:
            asked = parse_steps(steps, 1) if steps else None
        except ValueError as exc:
            raise options.OptionValueError(f"--steps: {exc}") from None
        run = run_complexity(out, data=data, dask=dask, steps=steps, seeds=seed_list, widths=width_list,
                             radius=radius, n_points=points, n_planes=planes, lr=lr, batch_size=batch_size,
                             weight_decay=weight_decay, threads=threads,
                             max_regions=max_regions)
        _say_steps_used(run, asked)
        typer.echo(f"report: {run.file('report.html')}")

    app.add_typer(group, name="dynamics")

