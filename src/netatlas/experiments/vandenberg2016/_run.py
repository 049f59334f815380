"""The three experiments behind ``netatlas dynamics scale|zones|prune``: each runs the library functions and
writes a run directory (config, arrays, figures, summary.json, report.html)."""

from __future__ import annotations

import logging
import time

import numpy as np

from netatlas._threads import torch_threads

__all__ = ["DEFAULT_PRUNE_DATASETS", "FULL_PRUNE_DATASETS", "prune_configs", "run_prune", "run_scale", "run_zones"]

logger = logging.getLogger(__name__)

DEFAULT_PRUNE_DATASETS = ("moons", "sinusoid", "digits", "mnist_sample")
# "confidence" ranks binary tasks exactly like EL2N (C6), so the default leaves it out; --full keeps it
FULL_PRUNE_DATASETS = ("moons", "circles", "xor", "spirals", "sinusoid", "digits", "mnist_sample")


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _override(settings: dict, overrides: dict, where: str) -> dict:
    unknown = sorted(set(overrides) - set(settings))
    if unknown:
        raise TypeError(f"{where}: unknown settings {unknown}; it takes {sorted(settings)}")
    return {**settings, **overrides}


# ---------------------------------------------------------------------------------------------------------
# scale


def run_scale(out=None, *, dataset: str = "moons", activation: str = "sigmoid", mode: str = "default",
              seed: int = 0, threads: int | None = 1, **overrides):
    """Weight scale vs sample density: the C5 table, scaled trained nets, large inits, weight decay.

    ``mode``: "quick" (< 1 min), "default" (a couple of minutes) or "full" (more seeds, scales, epochs);
    ``overrides`` replace single settings of the mode (n_seeds, n, epochs, init_epochs, decay_epochs,
    record_every, scales). Returns the :class:`netatlas.report.RunDir`.
    """
    from netatlas.data import load
    from netatlas.experiments.vandenberg2016._plot import (
        plot_decay,
        plot_gradient_mass_table,
        plot_scale_init,
        plot_scale_static,
    )
    from netatlas.experiments.vandenberg2016._scale import gradient_mass_table, scale_study
    from netatlas.report import RunDir

    settings = {
        "quick": dict(n_seeds=5, n=200, epochs=60, init_epochs=40, decay_epochs=60, record_every=10,
                      scales=(0.25, 1.0, 4.0, 16.0)),
        "default": dict(n_seeds=20, n=300, epochs=200, init_epochs=200, decay_epochs=400, record_every=20,
                        scales=(0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 64.0)),
        "full": dict(n_seeds=100, n=1000, epochs=500, init_epochs=500, decay_epochs=1500, record_every=25,
                     scales=(0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 256.0)),
    }
    if mode not in settings:
        raise ValueError(f"dynamics scale: unknown mode {mode!r}; choose one of {sorted(settings)}")
    s = _override(settings[mode], overrides, "dynamics scale")
    config = dict(dataset=dataset, activation=activation, mode=mode, seed=seed, **s)
    run = RunDir.create(out, command="dynamics scale", config=config)
    plt = _plt()
    started = time.perf_counter()
    with torch_threads(threads):
        table = gradient_mass_table(n_seeds=s["n_seeds"], seed=seed)
        data = load(dataset, n=s["n"], seed=seed)
        study = scale_study(data, activation=activation, scales=s["scales"], epochs=s["epochs"],
                            init_epochs=s["init_epochs"], decay_epochs=s["decay_epochs"],
                            record_every=s["record_every"], seed=seed)
    run.save_json("gradient_mass_table", table)
    run.save_json("scale_study", study)
    rows = table.rows()
    run.add_table("C5: gradient mass of one sigmoid unit vs ||w||", [
        {"||w||": r["w_norm"], f"measured (seed {seed})": r["measured_first_seed"],
         "measured mean": r["measured_mean"], "sd": r["measured_sd"], "exact expectation": r["expected"],
         "large-scale prediction": r["predicted"], "z (mean vs exact)": r["z_mean_vs_expected"]} for r in rows],
        caption=f"N = {table.n_samples} samples uniform on [-1,1]^2, b = 0, w along the diagonal "
                f"(rho_perp(0) = 1/sqrt 2), {table.measured.shape[0]} seeds. The large-scale prediction "
                "N rho(0)/||w|| ignores the kink of the projected density at 0 (the square's corners), so at "
                "||w|| = 16 it overestimates the exact expectation by ~6%; z is the seed-mean's distance "
                "from the exact expectation in standard errors.")
    fig, ax = plt.subplots(figsize=(6, 4.5))
    plot_gradient_mass_table(table, ax)
    run.save_figure(fig, "c5_table", "Gradient mass sum_i sigma'(w.x_i) against ||w||: grey dots are single "
                    "seeds, red the mean +- sd; it follows N rho(0)/||w|| once the zone is narrow.")
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    plot_scale_static(study, axes)
    run.save_figure(fig, "scaled_trained_net", f"A {activation} net trained on {dataset}, then every "
                    "parameter multiplied by c (hyperplanes fixed): zones narrow as 1/c, the gradient "
                    "concentrates on fewer samples (the first layer's share most: only samples in its zones; "
                    "the total also keeps the misclassified samples, whose output error grows with c), and "
                    "the per-unit gradient mass approaches its C5 "
                    "prediction (KDE of the data's projection) once c is large (ratio -> 1).")
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    plot_scale_init(study, axes)
    run.save_figure(fig, "large_init", f"Training ({study.config['optimizer']}, lr {study.config['lr']}) from "
                    "an init whose first layer is multiplied by c: its gradient vanishes and its "
                    "hyperplanes stop moving (right), whatever the output layer manages on its own.")
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    plot_decay(study, axes)
    run.save_figure(fig, "weight_decay", "Adam with and without weight decay: decay keeps ||w|| (and so the "
                    "zones) bounded and more samples in the gradient.")
    static_rows = [{"c": float(c), "mean ||w||": float(study.static_w_norm[k]),
                    "zone width": float(study.static_zone_width[k]),
                    "fraction with 90% of grad": float(study.static_concentration[k]),
                    "... of layer-1 grad": float(study.static_concentration_first_layer[k]),
                    "C5 ratio (median)": float(study.mass_ratio()[k]), "train acc": float(study.static_accuracy[k]),
                    "init run: first-layer change": float(study.init_first_layer_change[k]),
                    "init run: final train acc": float(study.init_accuracy[k, -1])}
                   for k, c in enumerate(study.scales)]
    run.add_table("Scaled nets", static_rows, caption="Left columns: the trained net scaled by c. Right: a "
                  "fresh run whose first layer started scaled by c.")
    summary = {
        "c5_table": [{k: r[k] for k in ("w_norm", "measured_first_seed", "measured_mean", "measured_sd",
                                        "expected", "predicted")} for r in rows],
        "concentration_vs_scale": dict(zip([f"{c:g}" for c in study.scales],
                                           study.static_concentration.tolist(), strict=True)),
        "first_layer_concentration_vs_scale": dict(zip([f"{c:g}" for c in study.scales],
                                                       study.static_concentration_first_layer.tolist(), strict=True)),
        "c5_ratio_vs_scale": dict(zip([f"{c:g}" for c in study.scales], study.mass_ratio().tolist(), strict=True)),
        "first_layer_change_vs_init_scale": dict(zip([f"{c:g}" for c in study.scales],
                                                     study.init_first_layer_change.tolist(), strict=True)),
        "weight_decay_final_w_norm": dict(zip([f"{w:g}" for w in study.weight_decays],
                                              study.decay_w_norm[:, -1].tolist(), strict=True)),
        "weight_decay_final_concentration": dict(zip([f"{w:g}" for w in study.weight_decays],
                                                     study.decay_concentration[:, -1].tolist(), strict=True)),
        "weight_decay_final_first_layer_concentration": dict(zip(
            [f"{w:g}" for w in study.weight_decays], study.decay_first_layer_concentration[:, -1].tolist(),
            strict=True)),
        "weight_decay_test_accuracy": dict(zip([f"{w:g}" for w in study.weight_decays],
                                               study.decay_accuracy.tolist(), strict=True)),
        "seconds": time.perf_counter() - started,
    }
    run.write_summary(summary)
    run.write_report("Weight scale vs sample density (van den Berg 2016, C2-C5)",
                     "A unit phi(w.x + b) passes gradient only to samples in its transition zone, a slab of width "
                     "~1/||w|| around its hyperplane. As weights grow the zones narrow, fewer samples carry the "
                     "gradient, and the first layer stops learning; weight decay counteracts it.")
    return run


# ---------------------------------------------------------------------------------------------------------
# zones


def run_zones(out=None, *, dataset: str = "moons", activations=("sigmoid", "relu"), mode: str = "default",
              seed: int = 0, threads: int | None = 1, **overrides):
    """Snapshots of where the gradient comes from during training on a 2-D task, for each activation.

    ``overrides`` replace single settings of the mode (n, epochs, n_snapshots, widths)."""
    from netatlas.data import load
    from netatlas.experiments.vandenberg2016._plot import plot_zone_snapshot
    from netatlas.experiments.vandenberg2016._snapshots import zone_snapshots
    from netatlas.report import RunDir

    settings = {"quick": dict(n=150, epochs=60, n_snapshots=3, widths=(8,)),
                "default": dict(n=300, epochs=400, n_snapshots=4, widths=(8,)),
                "full": dict(n=600, epochs=2000, n_snapshots=6, widths=(16,))}
    if mode not in settings:
        raise ValueError(f"dynamics zones: unknown mode {mode!r}; choose one of {sorted(settings)}")
    s = _override(settings[mode], overrides, "dynamics zones")
    config = dict(dataset=dataset, activations=list(activations), mode=mode, seed=seed, **s)
    run = RunDir.create(out, command="dynamics zones", config=config)
    plt = _plt()
    summary = {}
    with torch_threads(threads):
        data = load(dataset, n=s["n"], seed=seed)
        for activation in activations:
            snaps = zone_snapshots(data, activation=activation, widths=s["widths"], epochs=s["epochs"],
                                   n_snapshots=s["n_snapshots"], seed=seed)
            run.save_json(f"snapshots_{activation}", snaps)
            run.save_arrays(f"snapshots_{activation}", epochs=snaps.epochs, grad_norms=snaps.grad_norms,
                            x=snaps.x, y=snaps.y)
            relu = activation in ("relu", "leaky_relu")
            n = len(snaps.epochs)
            fig, axes = plt.subplots(2 if relu else 1, n, figsize=(4.6 * n, 8.4 if relu else 4.2), squeeze=False)
            for k in range(n):
                plot_zone_snapshot(snaps, k, axes[0, k], region_ax=axes[1, k] if relu else None)
            zone_text = ("grey: how many first-layer ReLU hyperplanes lie within a thin slab (zone) of the point"
                         if relu else "grey: sum of phi'(z)/max phi' over first-layer units (the zones)")
            run.save_figure(fig, f"zones_{activation}", f"{activation} net on {dataset}: samples sized by their "
                            f"gradient norm; {zone_text}; blue lines: first-layer hyperplanes; orange: decision "
                            "boundary." + (" Bottom: the exact linear regions (netatlas.regions)." if relu else ""))
            summary[activation] = {"epochs": snaps.epochs.tolist(), "concentration": snaps.concentration.tolist(),
                                   "accuracy": snaps.accuracy.tolist(),
                                   "first_layer_w_norm": snaps.first_layer_w_norm.tolist()}
            run.add_table(f"{activation}: gradient concentration during training", [
                {"epoch": int(e), "train accuracy": a, "fraction with 90% of grad": c, "mean ||w|| (layer 1)": w}
                for e, a, c, w in zip(snaps.epochs, snaps.accuracy, snaps.concentration, snaps.first_layer_w_norm,
                                      strict=True)])
    run.write_summary(summary)
    run.write_report("Where the gradient comes from (van den Berg 2016, C4)",
                     "During training the per-sample gradient gathers on samples near the transition zones of "
                     "the first-layer units and near the decision boundary; samples far from every zone "
                     "contribute little.")
    return run


# ---------------------------------------------------------------------------------------------------------
# prune


def prune_configs(datasets, methods, fractions, seeds, *, activation="relu", keep="high", score_at=0.25,
                  full=False, epochs=None) -> list[dict]:
    """The sweep configs of the pruning study, one per (dataset, seed, method), in that nesting order (so
    consecutive configs share a scoring run)."""
    from netatlas.dynamics import METHODS
    from netatlas.experiments.vandenberg2016._prune import prune_config

    for method in methods:
        if method not in METHODS:
            raise ValueError(f"dynamics prune: unknown method {method!r}; choose from {METHODS}")
    for dataset in datasets:
        prune_config(dataset)  # validates the name
    fractions = [float(f) for f in fractions]
    if not fractions or any(not 0 < f <= 1 for f in fractions):
        raise ValueError(f"dynamics prune: fractions must be in (0, 1], got {fractions}")
    configs = []
    for dataset in datasets:
        for seed in seeds:
            for method in methods:
                # the resolved preset is part of the config (and so of its sweep key): a rerun after the
                # presets change recomputes instead of mixing old and new results
                preset = prune_config(dataset, full=full)
                if epochs is not None:
                    preset["epochs"] = int(epochs)
                configs.append({"dataset": dataset, "seed": int(seed), "method": method, "fractions": fractions,
                                "activation": activation, "keep": keep, "score_at": score_at, "full": bool(full),
                                **preset})
    return configs


def run_prune(out=None, *, datasets=DEFAULT_PRUNE_DATASETS, methods=None, fractions=(0.1, 0.3, 0.5, 0.7, 0.9),
              seeds=(0, 1, 2, 3, 4), activation: str = "relu", keep: str = "high", score_at: float = 0.25,
              full: bool = False, epochs: int | None = None, dask=None, progress=None):
    """The pruning study through ``netatlas.sweep.run`` (resumable: rerun with the same ``out``)."""
    from netatlas import sweep
    from netatlas.dynamics import METHODS
    from netatlas.experiments.vandenberg2016._plot import plot_prune
    from netatlas.experiments.vandenberg2016._prune import summarize_prune
    from netatlas.report import RunDir

    methods = tuple(methods or [m for m in METHODS if m != "confidence" or full])
    configs = prune_configs(datasets, methods, fractions, seeds, activation=activation, keep=keep,
                            score_at=score_at, full=full, epochs=epochs)
    config = dict(datasets=list(datasets), methods=list(methods), fractions=list(fractions), seeds=list(seeds),
                  activation=activation, keep=keep, score_at=score_at, full=full, epochs=epochs, dask=dask)
    run = RunDir.create(out, command="dynamics prune", config=config)
    started = time.perf_counter()
    from netatlas.experiments.vandenberg2016._prune import prune_one

    records = sweep.run(prune_one, configs, run.path / "sweep", dask=dask, progress=progress)
    study = summarize_prune(records)
    run.save_json("prune_study", study)
    plt = _plt()
    verdicts = []
    for name in study.datasets:
        fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
        plot_prune(study, name, axes)
        run.save_figure(fig, f"prune_{name}", f"{name}: test accuracy (mean and {study.level:.0%} t-interval over "
                        f"{len(study.seeds)} seeds) and training wall time against the fraction of training data "
                        "kept, per scoring method; dotted: all data.")
    for method in ("boundary", "zone"):
        for baseline in ("random", "el2n"):
            verdicts += study.paired(method, baseline)
    if verdicts:
        run.add_table("Does boundary-aware subsampling beat random and EL2N?", [
            {"dataset": v["dataset"], "method": v["method"], "vs": v["baseline"],
             "accuracy difference (mean over fractions)": v["mean_difference"], f"{study.level:.0%} CI ±": v["ci"],
             "verdict": v["verdict"], "seeds": v["n_seeds"]} for v in verdicts],
            caption="Paired by seed (same split, same init): for each seed the accuracy difference is averaged over "
                    "the kept fractions, then a t-interval is taken over seeds. 'better'/'worse' only when the "
                    "interval excludes 0.")
        per_fraction = []
        for v in verdicts:
            row = {"dataset": v["dataset"], "method - baseline": f"{v['method']} - {v['baseline']}"}
            for pf in v["per_fraction"]:
                row[f"{pf['fraction']:.0%}"] = (f"{pf['difference']:+.3f} ± {pf['ci']:.3f}"
                                                if np.isfinite(pf["ci"]) else f"{pf['difference']:+.3f}")
            per_fraction.append(row)
        run.add_table("Paired differences per kept fraction", per_fraction,
                      caption="Accuracy difference ± half-width of the t-interval over seeds.")
    run.add_table("Test accuracy by method and fraction", [
        {k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()} for r in study.table()],
        caption=f"Mean over seeds and {study.level:.0%} t-interval half-width; seconds = mean training wall time.")
    failed = [r for r in records if r.get("status") != "done"]
    if failed:
        run.add_text("Failed configs", "\n\n".join(f"{r['key']}: {r.get('error')}" for r in failed))
    run.add_text("Protocol", _protocol_text(activation, keep, score_at) + "\n\nBoundary distance used per data "
                 f"set: {study.boundary_methods or 'none'} (exact = segments of netatlas.regions; linear = "
                 "|m(x)|/||grad m(x)||).")
    headline = {}
    for v in verdicts:
        headline.setdefault(v["dataset"], {})[f"{v['method']}_minus_{v['baseline']}"] = {
            "mean": v["mean_difference"], "ci": v["ci"], "verdict": v["verdict"]}
    accuracy_at = {}
    for r in study.table():
        accuracy_at.setdefault(r["dataset"], {}).setdefault(r["method"], {})[f"{r['fraction']:g}"] = [
            r["accuracy"], r["ci"]]
    summary = {"paired_vs_baselines": headline, "accuracy_mean_ci": accuracy_at,
               "full_data_accuracy": {n: float(np.nanmean(study.full_accuracy[d]))
                                      for d, n in enumerate(study.datasets)},
               "boundary_method": study.boundary_methods,
               "n_seeds": len(study.seeds), "n_failed": len(failed), "seconds": time.perf_counter() - started}
    run.write_summary(summary)
    run.write_report("Training-data subsampling: boundary-aware scores vs random, EL2N and others",
                     "van den Berg (2016) suggests dropping training samples far from every transition zone. "
                     "'zone' keeps samples closest to a hidden unit's hyperplane (ReLU: nearest distance; "
                     "sigmoid/tanh: sum of phi'), 'boundary' those closest to the decision boundary (exact "
                     "segments for 2-D ReLU nets when netatlas.regions is available, first-order distance "
                     "otherwise). They are compared with random subsets, EL2N, GraNd, forgetting, margin and "
                     "output confidence, at each kept fraction, over several seeds.")
    return run


def _protocol_text(activation, keep, score_at):
    from netatlas.experiments.vandenberg2016._prune import PRESETS

    lines = [f"Hidden activation {activation}; keep the {keep}est scores per class (class-balanced); scores from "
             f"the scoring run's snapshot after {score_at:.0%} of its epochs (forgetting: its whole run). "
             "Every pruned run starts from the same initialisation as the scoring run and trains for the same "
             "number of epochs with the same batch size (Adam), so its cost is proportional to the fraction kept."]
    for name, p in PRESETS.items():
        lines.append(f"{name}: loader {p['data']}, hidden widths {p['widths']}, {p['epochs']} epochs, lr {p['lr']}, "
                     f"batch {p['batch_size']}.")
    return "\n\n".join(lines)
