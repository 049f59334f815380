"""Figures of the SSL magnification experiment (matplotlib is imported only here)."""

from __future__ import annotations

import numpy as np

__all__ = ["plot_correlations", "plot_example_lines", "plot_example_planes", "plot_ssl_losses"]

_COLORS = {"barlow": "tab:blue", "simclr": "tab:orange", "supervised": "tab:green", "random": "tab:gray"}


def plot_correlations(summary: dict, ax=None):
    """Forest plot: mean within-slice Spearman correlation with its bootstrap interval, per encoder and
    per measure (effective volume vs entropy on all slices / lines / planes; plane area vs entropy)."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 4.5))
    per = summary["per_encoder"]
    measures = [m for m in ("rho_volume_entropy_all", "rho_volume_entropy_lines", "rho_volume_entropy_planes",
                            "rho_plane_area_entropy", "rho_volume_change_entropy", "rho_volume_between_class_means")
                if any(m in entry for entry in per.values())]
    labels = {"rho_volume_entropy_all": "eff. volume vs entropy (all)",
              "rho_volume_entropy_lines": "eff. volume vs entropy (lines)",
              "rho_volume_entropy_planes": "eff. volume vs entropy (planes)",
              "rho_plane_area_entropy": "plane area vs entropy (planes)",
              "rho_volume_change_entropy": "eff. volume change from init vs entropy",
              "rho_volume_between_class_means": "eff. volume vs -NCM margin"}
    kinds = list(per)
    height = 0.8 / len(kinds)
    for j, kind in enumerate(kinds):
        rows = [i for i, m in enumerate(measures) if m in per[kind]]
        ys = np.array(rows) + (j - (len(kinds) - 1) / 2) * height
        means = np.array([per[kind][measures[i]]["mean"] for i in rows])
        low = np.array([per[kind][measures[i]]["ci_low"] for i in rows])
        high = np.array([per[kind][measures[i]]["ci_high"] for i in rows])
        ax.errorbar(means, ys, xerr=[means - low, high - means], fmt="o", color=_COLORS.get(kind), capsize=3,
                    label=kind)
    ax.axvline(0, color="k", lw=0.8)
    ax.set_yticks(np.arange(len(measures)))
    ax.set_yticklabels([labels[m] for m in measures])
    ax.invert_yaxis()
    ax.set_xlabel("Spearman correlation within a slice (mean, 95% CI)")
    ax.legend(loc="best", fontsize=8)
    return ax


def plot_example_planes(result, fig=None):
    """One row per encoder on the first seed's first plane: effective volume with nearest-class-mean
    regions outlined and the three anchor images marked, and the linear probe's entropy."""
    import matplotlib.pyplot as plt

    kinds = [k for k in result.examples if "plane" in result.examples[k]]
    if fig is None:
        fig = plt.figure(figsize=(8, 3.2 * len(kinds)))
    axes = fig.subplots(len(kinds), 2, squeeze=False)
    for row, kind in enumerate(kinds):
        ex = result.examples[kind]["plane"]
        n = ex["effective_volume"].shape[0]
        extent = (-1, 1, -1, 1)
        for col, (name, label) in enumerate((("effective_volume", "effective volume (log10)"),
                                             ("entropy", "probe entropy (nats)"))):
            ax = axes[row, col]
            image = ax.imshow(ex[name], origin="lower", extent=extent, cmap="magma" if col == 0 else "viridis")
            fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
            coords = np.linspace(-1 + 1 / n, 1 - 1 / n, n)  # cell centres, as Plane.grid
            for c in np.unique(ex["ncm_label"]):  # outline every nearest-class-mean region once
                region = (ex["ncm_label"] == c).astype(float)
                if 0 < region.mean() < 1:
                    ax.contour(coords, coords, region, levels=[0.5], colors="w", linewidths=0.8)
            anchors = ex["anchors_uv"]
            ax.scatter(anchors[:, 0], anchors[:, 1], c="cyan", s=25, edgecolors="k", zorder=3)
            for (u, v), digit in zip(anchors, ex["anchor_labels"], strict=True):
                ax.annotate(str(int(digit)), (u, v), color="cyan", fontsize=9, xytext=(4, 4),
                            textcoords="offset points")
            ax.set_title(f"{kind}: {label}", fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
    fig.tight_layout()
    return fig


def plot_example_lines(result, fig=None):
    """One panel per encoder on the first seed's first line: effective volume (solid, left axis, log10) and
    the probe's entropy (dashed, right axis, nats); dotted verticals where the nearest-class-mean label
    changes."""
    import matplotlib.pyplot as plt

    kinds = [k for k in result.examples if "line" in result.examples[k]]
    if fig is None:
        fig = plt.figure(figsize=(10, 2.2 * ((len(kinds) + 1) // 2) + 0.6))
    axes = fig.subplots((len(kinds) + 1) // 2, 2, squeeze=False).ravel()
    for ax, kind in zip(axes, kinds, strict=False):
        ex = result.examples[kind]["line"]
        t = ex["coords"]
        ax.plot(t, ex["effective_volume"], "-", color=_COLORS.get(kind))
        ax.set_ylabel("eff. volume", fontsize=8)
        other = ax.twinx()
        other.plot(t, ex["entropy"], "--", color="k", lw=1)
        other.set_ylabel("entropy", fontsize=8)
        for i in np.flatnonzero(np.diff(ex["ncm_label"]) != 0):
            ax.axvline((t[i] + t[i + 1]) / 2, color="k", ls=":", lw=0.8)
        digits = ex["anchor_labels"]
        ax.set_title(f"{kind}: test '{int(digits[0])}' (t=0) to test '{int(digits[1])}' (t=1)", fontsize=9)
    for ax in axes[len(kinds):]:
        ax.set_visible(False)
    fig.tight_layout()
    return fig


def plot_ssl_losses(result, ax=None):
    """Per-epoch SSL training loss of every seed (each objective normalised by its first epoch)."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    for kind, curves in result.ssl_loss.items():
        for i, curve in enumerate(curves):
            curve = np.asarray(curve)
            ax.plot(np.arange(1, len(curve) + 1), curve / curve[0], color=_COLORS.get(kind),
                    label=kind if i == 0 else None)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss / first-epoch loss")
    ax.legend()
    return ax
