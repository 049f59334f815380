"""Plots of the low-rank lens (matplotlib is imported only here)."""

from __future__ import annotations

import numpy as np

__all__ = ["plot_analysis", "plot_spectrum"]

def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def plot_analysis(result, *, ax=None):
    """Agreement over training snapshots of an :class:`AnalysisResult`: product error, largest feature
    angle and H-score ratio per step (returns the axes)."""
    plt = _plt()
    if ax is None:
        _, ax = plt.subplots(figsize=(6.4, 4.4))
    steps = [s["step"] for s in result.snapshots]
    for metric, style in (("product_error", "o-"), ("h_score_ratio", "s-"), ("model_chi2_radius", "^--")):
        ax.plot(steps, [s["last"][metric] for s in result.snapshots], style, label=f"last layer {metric}")
    if result.snapshots and result.snapshots[0].get("hidden"):
        ax.plot(
            steps,
            [s["hidden"]["h_score_ratio"] for s in result.snapshots],
            "v-",
            label="hidden layer h_score_ratio",
        )
    ax.axhline(result.chi2_radius, color="gray", ls=":", label="data chi-square radius (max)")
    ax.set_yscale("log")
    ax.set_xscale("symlog", linthresh=1)  # snapshots are log-spaced in steps, starting at 0
    if steps:
        ax.set_xlim(0, max(max(steps), 1) * 1.15)
    ax.set_xlabel("training step")
    ax.legend(fontsize=7)
    ax.grid(True, alpha=0.2)
    return ax


def plot_spectrum(p_xy, *, ax=None):
    """Bar plot of the DTM's singular values (returns the axes)."""
    from netatlas.lowrank._dtm import dtm_svd

    plt = _plt()
    if ax is None:
        _, ax = plt.subplots(figsize=(6.0, 3.6))
    s = dtm_svd(p_xy).s
    ax.bar(np.arange(1, s.size + 1), s, color="C0")
    ax.set_xlabel("i")
    ax.set_ylabel("sigma_i (DTM)")
    ax.set_ylim(0, 1.05)
    return ax
