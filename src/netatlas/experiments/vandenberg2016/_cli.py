"""``netatlas dynamics scale|zones|prune``: the van den Berg (2016) studies as commands (the root CLI merges
them with ``dynamics complexity`` of :mod:`netatlas.experiments.humayun2024` into one ``dynamics`` group)."""

from __future__ import annotations

from pathlib import Path

import typer

from netatlas import _options as options

__all__ = ["register"]

_QUICK_PRUNE = dict(datasets=("moons",), methods=("random", "zone", "boundary", "el2n"), fractions=(0.3, 0.7),
                    seeds=(0, 1), epochs=15)


def _mode(quick: bool, full: bool) -> str:
    if quick and full:
        raise options.OptionValueError("choose at most one of --quick and --full")
    return "quick" if quick else "full" if full else "default"


def _split(text: str | None) -> list[str] | None:
    return None if text is None else [t.strip() for t in text.split(",") if t.strip()]


def register(app: typer.Typer) -> None:
    """Add the ``dynamics`` group with ``scale``, ``zones`` and ``prune`` (the root merges it with the lens's)."""
    group = typer.Typer(help="Training in regions (van den Berg 2016): gradient concentration, transition "
                        "zones, weight scale, training-data subsampling.", no_args_is_help=True)

    @group.command("scale")
    def scale(
        out: str = options.out_option("dynamics scale"),
        dataset: str = typer.Option("moons", help="2-D toy set for the trained nets"),
        activation: str = typer.Option("sigmoid", help="Hidden activation (sigmoid or tanh for C5)"),
        seed: int = options.seed_option(0, "data, inits and training; the C5 table uses seeds seed.."),
        quick: bool = typer.Option(False, "--quick", help="Small settings, < 1 minute"),
        full: bool = typer.Option(False, "--full", help="More seeds, scales and epochs"),
        threads: int = options.threads_option(1),
    ):
        """Scale weights by c (and weight decay on/off): gradient concentration, zone widths, when training
        stalls; reproduces the C5 table and extends it to trained nets.

        Python: ``netatlas.experiments.vandenberg2016.run_scale(OUT, dataset=..., activation=..., mode="default")``
        """
        from netatlas._options import at_least
        from netatlas.experiments.vandenberg2016._run import run_scale

        at_least("--threads", threads, 1)

        run = run_scale(out, dataset=dataset, activation=activation, mode=_mode(quick, full), seed=seed,
                        threads=threads)
        typer.echo(f"report: {run.file('report.html')}")

    @group.command("zones")
    def zones(
        model: Path = typer.Argument(None, help="Optional model file (.pt2 or state dict + spec): zones and "
                                     "gradient norms of YOUR model on --data instead of the training snapshots"),
        data: str = options.data_option(what="MODEL's samples"),
        split: str = options.split_option(),
        spec: Path = typer.Option(None, help="With MODEL: JSON spec of a state dict (default: MODEL.json)"),
        n: int = options.n_option(1000, "samples (with MODEL)"),
        loss: str = typer.Option(None, help="With MODEL: cross_entropy, bce or mse (default: cross_entropy for "
                                 "integer labels, mse otherwise)"),
        eps: float = typer.Option(0.1, help="With MODEL: zone level of smooth units, eps <= s(z) <= 1 - eps"),
        zone_width: float = typer.Option(None, help="With MODEL: zone width in input units (needed for ReLU "
                                         "units; default 5% of the data's bounding-box diagonal)"),
        out: str = options.out_option("dynamics zones"),
        dataset: str = typer.Option("moons", help="2-D toy set: moons, circles, xor, spirals, sinusoid, blobs"),
        activations: str = typer.Option("sigmoid,relu", help="Comma-separated hidden activations"),
        seed: int = options.seed_option(0, "the data (with MODEL: the stratified sample), init and training"),
        quick: bool = typer.Option(False, "--quick", help="Small settings, < 1 minute"),
        full: bool = typer.Option(False, "--full", help="Longer training, more snapshots"),
        threads: int = options.threads_option(1),
    ):
        """Snapshots during training on a 2-D task: samples sized by gradient norm, zones shaded, next to the
        exact linear regions (ReLU).

        Python: ``netatlas.experiments.vandenberg2016.run_zones(OUT, dataset=..., activations=("sigmoid", "relu"))``
        """
        if model is not None:  # the user's model: the dynamics lens's command
            from netatlas.experiments.vandenberg2016._model_zones import model_zones

            model_zones(model, spec, data, n, loss, eps, zone_width, out, threads, split, seed)
            return
        if data is not None:
            raise options.OptionValueError("dynamics zones: --data goes with a MODEL file; without one use "
                                           "--dataset NAME")
        options.at_least("--threads", threads, 1)
        from netatlas.experiments.vandenberg2016._run import run_zones

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

        Python: ``netatlas.experiments.vandenberg2016.run_prune(OUT, datasets=[...], seeds=range(5), dask="local")``
        """
        from netatlas.experiments.vandenberg2016._run import DEFAULT_PRUNE_DATASETS, FULL_PRUNE_DATASETS, run_prune

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

    app.add_typer(group, name="dynamics")
