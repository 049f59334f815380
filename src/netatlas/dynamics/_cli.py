"""``netatlas dynamics scale|zones|prune|complexity``: thin over :mod:`netatlas.dynamics`."""

from __future__ import annotations

import typer

__all__ = ["register"]

_QUICK_PRUNE = dict(datasets=("moons",), methods=("random", "zone", "boundary", "el2n"), fractions=(0.3, 0.7),
                    seeds=(0, 1), epochs=15)


def _mode(quick: bool, full: bool) -> str:
    if quick and full:
        raise ValueError("choose at most one of --quick and --full")
    return "quick" if quick else "full" if full else "default"


def _split(text: str | None) -> list[str] | None:
    return None if text is None else [t.strip() for t in text.split(",") if t.strip()]


def register(app: typer.Typer) -> None:
    """Add the ``dynamics`` command group to the root CLI."""
    group = typer.Typer(help="Training in regions (van den Berg 2016): gradient concentration, transition "
                        "zones, weight scale, training-data subsampling.", no_args_is_help=True)

    @group.command("scale")
    def scale(
        out: str = typer.Option(None, "--out", help="Run directory (default: runs/dynamics-scale-<time>)"),
        dataset: str = typer.Option("moons", help="2-D toy set for the trained nets"),
        activation: str = typer.Option("sigmoid", help="Hidden activation (sigmoid or tanh for C5)"),
        seed: int = typer.Option(0, help="Seed of data, inits and training; the C5 table uses seeds seed.."),
        quick: bool = typer.Option(False, "--quick", help="Small settings, < 1 minute"),
        full: bool = typer.Option(False, "--full", help="More seeds, scales and epochs"),
        threads: int = typer.Option(1, help="torch intra-op threads (1 is fastest for these small nets)"),
    ):
        """Scale weights by c (and weight decay on/off): gradient concentration, zone widths, when training
        stalls; reproduces the C5 table and extends it to trained nets.

        Python: ``netatlas.dynamics.run_scale(OUT, dataset=..., activation=..., mode="default")``
        """
        from netatlas.dynamics._experiments import run_scale

        run = run_scale(out, dataset=dataset, activation=activation, mode=_mode(quick, full), seed=seed,
                        threads=threads)
        typer.echo(f"report: {run.file('report.html')}")

    @group.command("zones")
    def zones(
        out: str = typer.Option(None, "--out", help="Run directory (default: runs/dynamics-zones-<time>)"),
        dataset: str = typer.Option("moons", help="2-D toy set: moons, circles, xor, spirals, sinusoid, blobs"),
        activations: str = typer.Option("sigmoid,relu", help="Comma-separated hidden activations"),
        seed: int = typer.Option(0, help="Seed of data, init and training"),
        quick: bool = typer.Option(False, "--quick", help="Small settings, < 1 minute"),
        full: bool = typer.Option(False, "--full", help="Longer training, more snapshots"),
        threads: int = typer.Option(1, help="torch intra-op threads"),
    ):
        """Snapshots during training on a 2-D task: samples sized by gradient norm, zones shaded, next to the
        exact linear regions (ReLU).

        Python: ``netatlas.dynamics.run_zones(OUT, dataset=..., activations=("sigmoid", "relu"))``
        """
        from netatlas.dynamics._experiments import run_zones

        run = run_zones(out, dataset=dataset, activations=tuple(_split(activations)), mode=_mode(quick, full),
                        seed=seed, threads=threads)
        typer.echo(f"report: {run.file('report.html')}")

    @group.command("prune")
    def prune(
        out: str = typer.Option(None, "--out", help="Run directory (default: runs/dynamics-prune-<time>); "
                                "rerun with the same --out to resume"),
        datasets: str = typer.Option(None, help="Comma-separated data sets (default: moons,sinusoid,digits,"
                                     "mnist_sample; --full: all 2-D toy sets too)"),
        methods: str = typer.Option(None, help="Comma-separated scoring methods (default: all but "
                                    "'confidence', which ranks binary tasks exactly like el2n; --full: all)"),
        fractions: str = typer.Option(None, help="Comma-separated kept fractions (default 0.1,0.3,0.5,0.7,0.9; "
                                      "--full: 0.1..0.9 by 0.1)"),
        seeds: int = typer.Option(None, help="Number of seeds (default 5; --full: 10)"),
        activation: str = typer.Option("relu", help="Hidden activation of the MLPs"),
        keep: str = typer.Option("high", help="Keep the 'high' (hard) or 'low' (easy) scores"),
        score_at: float = typer.Option(0.25, help="Score with the scoring run's snapshot after this share of "
                                       "its epochs"),
        epochs: int = typer.Option(None, help="Override the per-data-set epochs (all runs)"),
        dask: str = typer.Option(None, "--dask", help="'local' (LocalCluster, 2 workers) or tcp://HOST:PORT; "
                                 "default: in-process"),
        quick: bool = typer.Option(False, "--quick", help="One data set, 4 methods, 2 fractions, 2 seeds (< 1 min)"),
        full: bool = typer.Option(False, "--full", help="All data sets, 9 fractions, 10 seeds, whole MNIST sample"),
    ):
        """Each scoring method x kept fraction x seed: test accuracy and wall time vs fraction kept, with
        confidence intervals, and whether boundary-aware subsampling beats random and EL2N.

        Python: ``netatlas.dynamics.run_prune(OUT, datasets=[...], seeds=range(5), dask="local")``
        """
        from netatlas.dynamics._experiments import DEFAULT_PRUNE_DATASETS, FULL_PRUNE_DATASETS, run_prune

        mode = _mode(quick, full)
        settings = dict(_QUICK_PRUNE) if mode == "quick" else {
            "datasets": FULL_PRUNE_DATASETS if mode == "full" else DEFAULT_PRUNE_DATASETS,
            "methods": None,
            "fractions": (tuple(round(0.1 * k, 1) for k in range(1, 10)) if mode == "full"
                          else (0.1, 0.3, 0.5, 0.7, 0.9)),
            "seeds": tuple(range(10 if mode == "full" else 5)),
            "epochs": None,
        }
        if datasets is not None:
            settings["datasets"] = tuple(_split(datasets))
        if methods is not None:
            settings["methods"] = tuple(_split(methods))
        if fractions is not None:
            settings["fractions"] = tuple(float(f) for f in _split(fractions))
        if seeds is not None:
            settings["seeds"] = tuple(range(seeds))
        if epochs is not None:
            settings["epochs"] = epochs
        run = run_prune(out, activation=activation, keep=keep, score_at=score_at, full=mode == "full", dask=dask,
                        **settings)
        typer.echo(f"report: {run.file('report.html')}")

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

