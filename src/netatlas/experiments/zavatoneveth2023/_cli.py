"""``netatlas magnify toy|images|ssl``: the magnification studies of Zavatone-Veth et al. (2023) as commands
writing a run directory (the root CLI adds them to the ``magnify`` group of :mod:`netatlas.metric`)."""

from __future__ import annotations

from pathlib import Path

import typer

from netatlas import _options as options

__all__ = ["register"]

magnify = typer.Typer(
    help="Magnification near decision boundaries (Zavatone-Veth et al. 2023).", no_args_is_help=True
)


def _threads(threads):
    from netatlas._options import at_least

    at_least("--threads", threads, 1)
    if threads:
        import torch

        torch.set_num_threads(threads)  # for the whole CLI process (see netatlas._threads for a scoped one)


def _fmt(stat):
    return f"{stat['mean']:.3f} +- {stat['sd']:.3f}"


@magnify.command("toy")
def toy(
    out: Path = options.out_option(),
    seeds: int = typer.Option(None, help="Number of seeds (0, 1, ...) per configuration (default 3; --quick 1)"),
    quick: bool = typer.Option(
        False, "--quick", help="Three configurations, 1 seed, short training (< 1 min)"
    ),
    configs: str = typer.Option(None, help="Comma-separated configuration names (default all)"),
    n_grid: int = typer.Option(None, help="Evaluation grid size per side (default 100, quick 40)"),
    threads: int = options.threads_option(),
):
    """2-D tasks: volume element before/after training vs distance to the decision boundary.

    Python: ``netatlas.experiments.zavatoneveth2023.toy_magnification(configs, seeds=range(3))``
    """
    from tqdm import tqdm

    from netatlas.experiments.zavatoneveth2023 import _plot
    from netatlas.experiments.zavatoneveth2023._magnification import QUICK_CONFIGS, TOY_CONFIGS, toy_magnification
    from netatlas.report import RunDir

    _threads(threads)
    from netatlas._options import at_least, quick_conflicts

    at_least("--n-grid", n_grid, 1)
    quick_conflicts("magnify toy", quick, seeds=seeds)
    names = configs.split(",") if configs else list(QUICK_CONFIGS if quick else TOY_CONFIGS)
    unknown = [n for n in names if n not in TOY_CONFIGS]
    if unknown:
        raise options.OptionValueError(f"magnify toy: unknown --configs {unknown}; choose from "
                                       f"{','.join(TOY_CONFIGS)}")
    seeds = 3 if seeds is None else seeds
    if seeds < 1:
        raise ValueError(f"magnify toy: --seeds must be >= 1; got {seeds}")
    seed_list = list(range(1 if quick else seeds))
    grid = n_grid or (40 if quick else 100)
    settings = {
        "configs": names,
        "seeds": seed_list,
        "n_grid": grid,
        "n_fine": 150 if quick else 400,
        "epochs_scale": 0.2 if quick else 1.0,
        "radius_fraction": 0.05,
    }
    run_dir = RunDir.create(
        out,
        command="magnify toy",
        config={**settings, "quick": quick, "toy_configs": {n: TOY_CONFIGS[n] for n in names}},
    )
    bar = tqdm(total=len(names) * len(seed_list), desc="toy runs")
    result = toy_magnification(
        names,
        seed_list,
        n_grid=grid,
        n_fine=settings["n_fine"],
        radius_fraction=0.05,
        epochs_scale=settings["epochs_scale"],
        callback=lambda run: bar.update(),
    )
    bar.close()
    rows = []
    for name, s in result.summary.items():
        rows.append(
            {
                "config": name,
                "train accuracy": _fmt(s["train_accuracy"]),
                "Spearman before": _fmt(s["spearman_before"]),
                "Spearman after": _fmt(s["spearman_after"]),
                "near/far before": _fmt(s["ratio_before"]),
                "near/far after": _fmt(s["ratio_after"]),
                "near/far before (own boundary)": _fmt(s["ratio_before_own_boundary"]),
                "Spearman of change": _fmt(s["spearman_change"]),
                "near/far of change": _fmt(s["ratio_change"]),
            }
        )
    run_dir.add_table(
        "Magnification near the decision boundary (mean +- sd over seeds)",
        rows,
        "Spearman: rank correlation of log sqrt(det g) with the distance to the trained net's "
        "decision boundary (negative = larger volume near the boundary). near/far: mean volume "
        "element within 5% of the domain side of that boundary divided by the mean beyond (> 1 = "
        "magnified). 'Before' uses the same (trained) boundary; '(own boundary)' uses the untrained "
        "net's own boundary, where it crosses the domain (nan: it does not). 'Of change': the same "
        "statistics for log sqrt(det g) after minus before training, i.e. where training grew the "
        "volume; this removes the radial profile a random initialisation already has (which makes "
        "the Spearman correlation negative before training when the boundary passes near the origin).",
    )
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.5), constrained_layout=True)
    _plot.plot_toy_summary(result, ax)
    run_dir.save_figure(
        fig,
        "ratios",
        "Near/far volume ratio per configuration, before and after training "
        "(mean +- sd over seeds; log scale; 1 = no magnification).",
    )
    for run in result.runs:
        if run.seed != seed_list[0]:
            continue
        fig, axes = plt.subplots(1, 2, figsize=(9, 4), constrained_layout=True)
        _plot.plot_toy_run(run, axes)
        run_dir.save_figure(
            fig,
            f"toy-{run.config}",
            f"{run.config}, seed {run.seed}: log volume element "
            "log sqrt(det g) of the last hidden layer's features (scaled by 1/sqrt(width)) at "
            "initialisation and after training; black: the net's decision boundary; white "
            "dashed: the trained boundary; dots: training points.",
        )
        run_dir.save_arrays(
            f"toy-{run.config}-seed{run.seed}",
            us=run.us,
            vs=run.vs,
            log_volume_before=run.log_volume_before,
            log_volume_after=run.log_volume_after,
            decision_before=run.decision_before,
            decision_after=run.decision_after,
            distance=run.distance,
        )
    run_dir.save_json("results", result)
    summary = {"experiment": "magnify toy", "seeds": seed_list}
    for name, s in result.summary.items():
        summary[name] = {k: s[k]["mean"] for k in s} | {f"{k}_sd": s[k]["sd"] for k in s}
    run_dir.write_summary(summary)
    path = run_dir.write_report(
        "Magnification on 2-D toy tasks",
        "Zavatone-Veth et al. (2023): training a classifier magnifies areas near its "
        "decision boundary. Volume element sqrt(det g), g = J^T J of the last hidden "
        "layer's features Phi = phi/sqrt(width), on a grid; distance to the decision "
        "boundary from the zero level set of the logit on a fine grid (the nets are "
        "smooth). Numbers are reported whatever they are.",
    )
    for name, s in result.summary.items():
        typer.echo(
            f"{name:<14} near/far {_fmt(s['ratio_before'])} -> {_fmt(s['ratio_after'])}; Spearman "
            f"{_fmt(s['spearman_before'])} -> {_fmt(s['spearman_after'])}"
        )
    typer.echo(f"report: {path}")


@magnify.command("images")
def images(
    out: Path = options.out_option(),
    quick: bool = typer.Option(
        False, "--quick", help="Narrow MLP, 1,000 images, 1 epoch, coarse slices (< 1 min)"
    ),
    width: int = typer.Option(None, help="MLP hidden width (default 2000, quick 256)"),
    n_plane: int = typer.Option(None, help="Plane grid per side (default 12, quick 5)"),
    n_train: int = typer.Option(
        None, help="MNIST-sample images used, 3/4 for training (default 5000, quick 1000)"
    ),
    seed: int = options.seed_option(0, "initialisation, data subset, training order"),
    threads: int = options.threads_option(),
):
    """Image models: effective volume on a line and a plane through test images vs class and entropy.

    Python: ``netatlas.experiments.zavatoneveth2023.image_magnification(width=2000)``
    """
    import matplotlib.pyplot as plt

    from netatlas.experiments.zavatoneveth2023 import _plot
    from netatlas.experiments.zavatoneveth2023._magnification import image_magnification
    from netatlas.report import RunDir

    _threads(threads)
    from netatlas._options import at_least

    for option, value in (("--width", width), ("--n-plane", n_plane), ("--n-train", n_train)):
        at_least(option, value, 1)
    kw = dict(
        width=width or (256 if quick else 2000),
        n_train=n_train or (1000 if quick else None),
        epochs=2 if quick else 8,
        cnn_epochs=2 if quick else 4,
        n_line=15 if quick else 41,
        n_plane=n_plane or (5 if quick else 12),
        seed=seed,
    )
    run_dir = RunDir.create(out, command="magnify images", config={**kw, "quick": quick})
    typer.echo("training and measuring (MLP, then CNN) ...")
    result = image_magnification(**kw)
    fig, axes = plt.subplots(1, 3, figsize=(5.4, 2), constrained_layout=True)
    _plot.plot_anchors(result.anchors, result.anchor_labels, axes)
    run_dir.save_figure(
        fig,
        "anchors",
        "The three test images: the line joins anchors 1 and 2; the plane passes "
        "through all three (origin at their centroid).",
    )
    rows = []
    for i, run in enumerate(result.runs):
        fig, ax = plt.subplots(figsize=(7, 3.2), constrained_layout=True)
        _plot.plot_image_line(run, ax)
        run_dir.save_figure(
            fig,
            f"line-{i}",
            f"{run.model}: effective volume sum log10 sigma_i(J/sqrt m) of the "
            f"full-input Jacobian of {run.feature} (black) and predictive entropy (red) along the "
            "line x0 + t (x1 - x0); background: predicted class.",
        )
        fig, axes = plt.subplots(1, 3, figsize=(12, 3.6), constrained_layout=True)
        _plot.plot_image_plane(run, result.anchor_plane_coords, axes)
        run_dir.save_figure(
            fig,
            f"plane-{i}",
            f"{run.model}: on the plane through the three anchors (numbered), "
            "effective volume of the full-input Jacobian (not the 2 x 2 plane metric), predicted "
            "class and predictive entropy.",
        )
        run_dir.save_arrays(
            f"image-{i}",
            line_t=run.line_t,
            line_effective_volume=run.line_effective_volume,
            line_entropy=run.line_entropy,
            line_class=run.line_class,
            plane_us=run.plane_us,
            plane_vs=run.plane_vs,
            plane_effective_volume=run.plane_effective_volume,
            plane_entropy=run.plane_entropy,
            plane_class=run.plane_class,
        )
        rows.append({"model": run.model, "test accuracy": run.test_accuracy, **run.stats})
    run_dir.add_table(
        "Effective volume vs prediction",
        rows,
        "spearman_*_entropy: rank correlation of effective volume with predictive entropy; "
        "plane_mean_at_class_change: mean effective volume at grid cells whose predicted class "
        "differs from a neighbour's (the decision boundaries) vs elsewhere.",
    )
    run_dir.save_json("results", result)
    run_dir.write_summary(
        {
            "experiment": "magnify images",
            **{run.model: {"test_accuracy": run.test_accuracy, **run.stats} for run in result.runs},
        }
    )
    path = run_dir.write_report(
        "Magnification in image models",
        "Effective volume (Zavatone-Veth et al. 2023): the sum of log10 singular values of "
        "J/sqrt(m), J the Jacobian of a feature layer with respect to the full 784-pixel "
        "input, on a line between two MNIST test images and on a plane through three.",
    )
    for row in rows:
        typer.echo(
            f"{row['model']}: test acc {row['test accuracy']:.3f}, Spearman(eff. volume, entropy) line "
            f"{row['spearman_line_entropy']:.3f} plane {row['spearman_plane_entropy']:.3f}; mean eff. volume "
            f"at class changes {row['plane_mean_at_class_change']:.2f} vs elsewhere "
            f"{row['plane_mean_elsewhere']:.2f}"
        )
    typer.echo(f"report: {path}")


def register(app: typer.Typer) -> None:
    """Add the ``magnify`` group with ``toy``, ``images`` and ``ssl`` (the root merges it with the lens's)."""
    from netatlas.experiments.zavatoneveth2023.ssl._cli import add_ssl_command

    add_ssl_command(magnify)  # `netatlas magnify ssl` (self-supervised encoders)
    app.add_typer(magnify, name="magnify")
