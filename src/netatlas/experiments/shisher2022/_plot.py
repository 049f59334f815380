"""Figures of the low-rank validation sweep (Shisher et al. 2022): metrics against eps per experiment."""

from __future__ import annotations

import math

import numpy as np

from netatlas.experiments._plot import _plt

__all__ = ["plot_metric_vs_eps", "validation_figures"]

_STYLE = {
    "softmax": dict(color="C0", marker="o", label="softmax net (population)"),
    "softmax_exact": dict(color="C0", marker="x", ls=":", label="exact optimum"),
    "softmax_sampled": dict(color="C1", marker="s", label="softmax net (sampled) vs empirical B^"),
    "mmse": dict(color="C2", marker="^", label="MMSE net"),
    "hidden_sigmoid": dict(color="C3", marker="v", label="hidden sigmoid"),
    "hidden_tanh": dict(color="C4", marker="D", label="hidden tanh"),
    "hidden_relu": dict(color="k", marker="P", ls="--", label="hidden ReLU at kink (control)"),
    "dirichlet_softmax": dict(color="C5", marker="*", ls="none", ms=11, label="Dirichlet joints (softmax)"),
    "dirichlet_hidden_sigmoid": dict(
        color="C3", marker="*", ls="none", ms=11, label="Dirichlet joints (hidden)"
    ),
}


def _points(rows, experiment, metric, x="eps"):
    sel = [r for r in rows if r["experiment"] == experiment and metric in r]
    xs = np.array([r[x] for r in sel], dtype=float)
    ys = np.array([r[metric] if r[metric] is not None else np.nan for r in sel], dtype=float)
    return xs, ys, sel


def plot_metric_vs_eps(
    result,
    metric: str = "product_error",
    *,
    experiments=None,
    ax=None,
    transform=None,
    reference_slope: float | None = 1.0,
):
    """Log-log plot of one metric against eps for several experiments of a :class:`ValidationResult`:
    every (eps, seed) point, a line through the per-eps geometric means, and a slope reference.

    Returns the axes.
    """
    plt = _plt()
    if ax is None:
        _, ax = plt.subplots(figsize=(6.4, 4.6))
    rows = result.rows
    names = experiments or [n for n in _STYLE if any(r["experiment"] == n for r in rows)]
    local = result.config.local_fraction
    anchor = []  # the first plotted experiment's local-range means, where the slope reference starts
    for name in names:
        xs, ys, sel = _points(rows, name, metric)
        if not xs.size:
            continue
        if transform is not None:
            ys = transform(ys)
        style = dict(_STYLE.get(name, {"label": name}))
        ok = np.isfinite(ys) & (ys > 0) & np.isfinite(xs)
        if name.startswith("dirichlet"):
            ax.plot(xs[ok], ys[ok], **style)
            continue
        ax.plot(
            xs[ok],
            ys[ok],
            ls="none",
            marker=style.get("marker", "o"),
            color=style.get("color"),
            alpha=0.35,
            ms=4,
        )
        fracs = sorted({r["eps_fraction"] for r in sel})
        mx, my = [], []
        for f in fracs:
            idx = [i for i, r in enumerate(sel) if r["eps_fraction"] == f and ok[i]]
            if idx:
                mx.append(math.exp(np.mean(np.log(xs[idx]))))
                my.append(math.exp(np.mean(np.log(ys[idx]))))
        style.setdefault("ls", "-")
        ax.plot(mx, my, **style)
        if not anchor:
            anchor = [(x, y) for f, x, y in zip(fracs, mx, my, strict=False) if f <= local]
    if reference_slope is not None and anchor:
        (x0, y0), (x1, _) = anchor[0], anchor[-1]
        ax.plot([x0, x1], [y0 / 3, y0 / 3 * (x1 / x0) ** reference_slope], color="gray", lw=3, alpha=0.4,
                label=f"slope {reference_slope:g}")
    local_eps = [r["eps"] for r in rows if r["experiment"] == "softmax" and r["eps_fraction"] <= local]
    if local_eps:
        ax.axvline(max(local_eps), color="gray", ls=":", lw=1)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("eps = ||DTM||_F (rms chi-square radius)")
    ax.set_ylabel(metric.replace("_", " "))
    ax.grid(True, which="both", alpha=0.2)
    ax.legend(fontsize=7, loc="best")
    return ax


def validation_figures(result):
    """The report's figures: a list of (figure, name, caption)."""
    plt = _plt()
    out = []
    s = result.summary
    fig, ax = plt.subplots(figsize=(7.5, 5.2))
    plot_metric_vs_eps(
        result,
        "product_error",
        ax=ax,
        experiments=[
            "softmax",
            "softmax_exact",
            "mmse",
            "hidden_sigmoid",
            "hidden_tanh",
            "hidden_relu",
            "dirichlet_softmax",
        ],
    )
    ax.set_title("Trained layer vs theory: relative product error")
    out.append(
        (
            fig,
            "product_error",
            f"Relative error of the trained weighted centred product (softmax: Theta^ vs B~_k; hidden: "
            f"pre-activations vs the linearised formula) against eps, every seed as a faint point, geometric "
            f"means joined. Fitted log-log slope of the softmax network over the local range "
            f"({s['local_range']}, left of the dotted line): {s['slope']:.3f}. MMSE is exact at every eps "
            f"(optimiser precision); the ReLU control at its kink does not converge to the formula at any "
            f"eps; "
            f"Dirichlet joints (stars) are far outside the local regime.",
        )
    )
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.4))
    plot_metric_vs_eps(
        result,
        "max_feature_angle",
        ax=axes[0],
        experiments=["softmax", "softmax_sampled", "hidden_sigmoid", "hidden_tanh", "dirichlet_softmax"],
    )
    axes[0].set_ylabel("largest principal angle, features (degrees)")
    plot_metric_vs_eps(
        result,
        "max_weight_angle",
        ax=axes[1],
        experiments=["softmax", "softmax_sampled", "hidden_sigmoid", "hidden_tanh", "dirichlet_softmax"],
    )
    axes[1].set_ylabel("largest principal angle, weights / logits (degrees)")
    out.append(
        (
            fig,
            "angles",
            "Largest principal angle (scipy.linalg.subspace_angles) between the trained feature "
            "(left) and weight (right) subspaces and the theory's top-k singular subspaces. Subspaces, not "
            "single singular vectors: those are identified only up to an invertible k x k map.",
        )
    )
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.4))
    plot_metric_vs_eps(
        result,
        "excess_loss_ratio",
        ax=axes[0],
        transform=lambda y: np.abs(y - 1),
        experiments=["softmax", "hidden_sigmoid", "hidden_tanh", "hidden_relu"],
    )
    axes[0].set_ylabel("|excess-loss ratio - 1|")
    plot_metric_vs_eps(
        result,
        "h_score_ratio",
        ax=axes[1],
        transform=lambda y: np.abs(1 - y),
        experiments=["softmax", "softmax_sampled"],
        reference_slope=2.0,
    )
    axes[1].set_ylabel("1 - H-score / max H-score")
    out.append(
        (
            fig,
            "losses",
            "Left: the trained layer's exact excess loss over the theory's 1/2 sum_{i>k} sigma_i^2 "
            "(hidden: the linearised minimum), minus 1. Right: the features' H-score relative to its maximum "
            "1/2 sum_{i<=k} sigma_i^2, from 1 (the H-score deficit is quadratic in the subspace angle).",
        )
    )
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.4))
    plot_metric_vs_eps(
        result, "bias_error", ax=axes[0], experiments=["softmax", "hidden_sigmoid", "hidden_tanh"]
    )
    axes[0].set_ylabel("bias error (relative)")
    plot_metric_vs_eps(
        result,
        "preactivation_spread",
        ax=axes[1],
        reference_slope=None,
        experiments=["softmax", "hidden_sigmoid", "hidden_tanh", "hidden_relu", "dirichlet_hidden_sigmoid"],
    )
    axes[1].set_ylabel("max |centred pre-activation|")
    out.append(
        (
            fig,
            "locality",
            "Left: bias error (the offset the theory says vanishes, relative to ||B_k||). "
            "Right: locality diagnostic, the largest centred pre-activation (softmax: logit deviation from "
            "log P_Y; hidden: u - E u). The linearisation needs it small compared with the activation's "
            "curvature scale (~1).",
        )
    )
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    plot_metric_vs_eps(result, "product_error", ax=ax, experiments=["softmax_sampled"], reference_slope=None)
    xs, ys, _ = _points(result.rows, "softmax_sampled", "product_error_true", x="eps_true")
    ax.plot(xs, ys, ls="none", marker="s", mfc="none", color="C1",
            label="sampled net vs true B~_k (at true eps)")
    ax.legend(fontsize=7)
    ax.set_title(f"Sampled data ({result.config.n_samples:,} samples)")
    out.append(
        (
            fig,
            "sampled",
            "Networks trained on sampled data: against the empirical DTM B^ (filled; eps here is "
            "||B^||, floored by sampling noise) and against the true B~ (open: the error grows as eps falls "
            "below the sampling noise).",
        )
    )
    return out
