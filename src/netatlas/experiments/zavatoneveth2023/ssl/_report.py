"""Write an :class:`SSLMagnifyResult` into a run directory: summary.json, result.json, arrays, report.html."""

from __future__ import annotations

from pathlib import Path

from netatlas.experiments.zavatoneveth2023.ssl._experiment import SCALING_CONVENTION, SSLMagnifyResult

__all__ = ["write_ssl_report"]

_INTRO = (
    "Does a self-supervised representation magnify input space between classes, as a supervised classifier "
    "does? For every seed, one initial MLP encoder is trained with Barlow Twins, with SimCLR (NT-Xent), and "
    "with labels (encoder + linear head, cross-entropy), and kept untrained (random init). On random lines "
    "between two test images of different classes and planes through three (Plane.through convention: origin "
    "= centroid, grid [-1, 1]^2), we compute the representation's effective volume and, beside it, a linear "
    "probe's predictive entropy (logistic regression on the frozen, standardised representation of the "
    "training set) and the label of the nearest class mean.\n\n"
    "Headline: the Spearman rank correlation of effective volume with probe entropy, taken within each slice "
    "and averaged over slices and seeds; 95% intervals from a two-level bootstrap (resample seeds, then "
    "slices). Positive = magnification concentrates where the probe is unsure, i.e. between classes. "
    "Differences are paired (same slices for every encoder of a seed). Because all trained twins start from the "
    "random twin's weights, we also correlate the change of effective volume that training made (trained minus "
    "initial, at the same points) with entropy, which removes trends the initial network already had.\n\n"
    "Scaling convention: " + SCALING_CONVENTION)


def _ci(entry) -> str:
    return f"{entry['mean']:+.3f} [{entry['ci_low']:+.3f}, {entry['ci_high']:+.3f}]"


def _sign(entry) -> str:
    if entry["ci_low"] > 0:
        return "positive (95% CI above 0)"
    if entry["ci_high"] < 0:
        return "negative (95% CI below 0)"
    return "not distinguishable from 0 (95% CI contains 0)"


def reading(summary: dict) -> str:
    """The comparison in words, generated from the numbers (one line per encoder and per paired difference)."""
    lines = []
    for kind, entry in summary["per_encoder"].items():
        e = entry["rho_volume_entropy_all"]
        lines.append(f"{kind}: rho(effective volume, probe entropy) = {_ci(e)}: {_sign(e)}.")
    for name, entry in summary["paired_differences_rho_volume_entropy"].items():
        lines.append(f"{name.replace('_minus_', ' minus ')}: {_ci(entry)}: {_sign(entry)}.")
    return "\n\n".join(lines)


def write_ssl_report(result: SSLMagnifyResult, run, *, title: str = "Magnification in self-supervised "
                     "representations") -> Path:
    """Save numbers and figures of ``result`` into ``run`` (a :class:`netatlas.report.RunDir`).

    Returns the path of report.html. summary.json holds ``result.summary()``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from netatlas.experiments.zavatoneveth2023.ssl._plot import (
        plot_correlations,
        plot_example_lines,
        plot_example_planes,
        plot_ssl_losses,
    )

    summary = result.summary()
    run.write_summary(summary)
    run.save_json("result", result.to_dict())
    run.save_arrays("correlations", slice_kinds=result.slice_kinds.astype(str),
                    **{f"{kind}_{name}": values for kind, c in result.correlations.items()
                       for name, values in c.items()})
    rows = []
    for kind, entry in summary["per_encoder"].items():
        row = {"encoder": kind}
        for key, label in (("rho_volume_entropy_all", "rho(vol, entropy) all"),
                           ("rho_volume_entropy_lines", "lines"), ("rho_volume_entropy_planes", "planes"),
                           ("rho_plane_area_entropy", "rho(plane area, entropy)"),
                           ("rho_volume_change_entropy", "rho(vol − vol at init, entropy)"),
                           ("rho_volume_between_class_means", "rho(vol, -NCM margin)")):
            if key in entry:
                row[label] = _ci(entry[key])
        row["probe acc."] = f"{entry['probe_accuracy']['mean']:.3f} ± {entry['probe_accuracy']['sd']:.3f}"
        row["NCM acc."] = f"{entry['ncm_accuracy']['mean']:.3f} ± {entry['ncm_accuracy']['sd']:.3f}"
        rows.append(row)
    config = result.config
    run.add_table("Correlations per encoder", rows,
                  f"Mean within-slice Spearman rho [95% bootstrap CI] over {len(result.seeds)} seed(s) x "
                  f"{summary['n_slices_per_seed']['lines']} lines + {summary['n_slices_per_seed']['planes']} "
                  f"planes; test accuracies of the linear probe and the nearest-class-mean rule (mean ± sd over "
                  f"seeds). Data: {config.data}; encoder widths {list(config.widths)} ({config.activation}).")
    differences = [{"comparison": name.replace("_minus_", " − "), "Δ rho(vol, entropy)": _ci(entry)}
                   for name, entry in summary["paired_differences_rho_volume_entropy"].items()]
    run.add_table("Paired differences", differences,
                  "Difference of the within-slice correlation between two encoders on the same slices; an "
                  "interval excluding 0 separates them.")
    run.add_text("Reading", reading(summary))
    fig, ax = plt.subplots(figsize=(8, 4.5))
    plot_correlations(summary, ax)
    run.save_figure(fig, "correlations", "Mean within-slice Spearman correlation with 95% bootstrap CI, per "
                    "encoder (colour) and measure (row). Right of 0: magnification (effective volume, or the "
                    "plane's own area element) is higher where the linear probe is unsure.",
                    title="Where the representations magnify")
    fig = plot_example_planes(result)
    run.save_figure(fig, "example_plane", "First seed, first plane through three test images (cyan, with their "
                    "digit): effective volume log10 (left) and probe entropy (right); white lines separate "
                    "nearest-class-mean regions of the representation.", title="Example plane")
    fig = plot_example_lines(result)
    run.save_figure(fig, "example_line", "First seed, first line between two test images: effective volume "
                    "(solid, log10, left axis) and probe entropy (dashed, nats, right axis); dotted lines where "
                    "the nearest-class-mean label changes.", title="Example line")
    fig, ax = plt.subplots(figsize=(6, 3.5))
    plot_ssl_losses(result, ax)
    run.save_figure(fig, "ssl_loss", "SSL training loss per epoch (normalised by the first epoch), every seed.",
                    title="SSL training")
    run.add_text("Notes", (
        "The supervised twin trains on the plain images (no augmentation), the SSL encoders on augmented views "
        "(shift, rotation +-15 degrees, zoom 0.9-1.1, pixel noise 0.05). All four start from the same "
        "initial encoder weights within a seed. The metric is taken on the encoder output (the representation), "
        "not on the projector; the random twin's probe is fitted on its own random features.\n\n"
        "GELU is not monotone (its derivative vanishes at z = -0.75), so a unit passing through that point "
        "removes one singular value: the speckle in the effective-volume maps. --activation tanh avoids it.\n\n"
        "The plane area is the 2 x 2 metric of the slice (U^T J^T J U), a different quantity from the effective "
        "volume of the full-input Jacobian; both are shown.\n\n"
        f"Wall time {result.wall_time:.1f} s; timings "
        f"{', '.join(f'{k} {v:.1f} s' for k, v in result.timings.items())}."))
    return run.write_report(title, _INTRO)


