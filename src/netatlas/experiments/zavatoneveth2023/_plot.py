"""Figures of the magnification studies (toy tasks, image models): matplotlib is imported here only."""

from __future__ import annotations

import numpy as np

from netatlas.experiments._plot import _extent, _plt

__all__ = ["plot_anchors", "plot_image_line", "plot_image_plane", "plot_toy_run", "plot_toy_summary"]


def plot_toy_run(run, axes=None):
    """Log volume element before / after training, each net's decision boundary (black) drawn on top;
    the trained boundary is dashed on the 'before' panel. Returns the two axes."""
    plt = _plt()
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(9, 4), constrained_layout=True)
    extent = _extent(run.us, run.vs)
    both = np.concatenate(
        [
            run.log_volume_before[np.isfinite(run.log_volume_before)],
            run.log_volume_after[np.isfinite(run.log_volume_after)],
        ]
    )
    for ax, lv, dec, title, stats in (
        (axes[0], run.log_volume_before, run.decision_before, "initialisation", run.before),
        (axes[1], run.log_volume_after, run.decision_after, "after training", run.after),
    ):
        lo, hi = (
            np.percentile(lv[np.isfinite(lv)], [1, 99]) if np.isfinite(lv).any() else (both.min(), both.max())
        )
        im = ax.imshow(lv, origin="lower", extent=extent, cmap="magma", vmin=lo, vmax=hi, aspect="equal")
        plt.colorbar(im, ax=ax, shrink=0.8, label="log sqrt(det g)")
        if dec.min() < 0 < dec.max():
            ax.contour(run.us, run.vs, dec, levels=[0], colors="k", linewidths=1.2)
        if ax is axes[0] and run.decision_after.min() < 0 < run.decision_after.max():
            ax.contour(
                run.us, run.vs, run.decision_after, levels=[0], colors="w", linewidths=0.8, linestyles="--"
            )
        ax.scatter(
            run.x_train[:, 0],
            run.x_train[:, 1],
            c=run.y_train,
            cmap="coolwarm",
            s=6 if len(run.x_train) > 20 else 40,
            edgecolors="k",
            linewidths=0.3,
        )
        ax.set_xlim(extent[:2])
        ax.set_ylim(extent[2:])
        ax.set_title(
            f"{run.config} seed {run.seed}, {title}\nSpearman {stats['spearman']:.2f}, "
            f"near/far {stats['ratio']:.2f}",
            fontsize=9,
        )
    return axes


def plot_toy_summary(result, ax=None):
    """Near/far volume ratio before and after training per configuration (mean +- sd over seeds)."""
    plt = _plt()
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.5), constrained_layout=True)
    names = list(result.summary)
    x = np.arange(len(names))
    for offset, key, label in ((-0.18, "ratio_before", "initialisation"), (0.18, "ratio_after", "trained")):
        mean = [result.summary[n][key]["mean"] for n in names]
        sd = [result.summary[n][key]["sd"] for n in names]
        ax.bar(x + offset, mean, 0.36, yerr=sd, label=label, capsize=3)
    ax.axhline(1.0, color="k", lw=0.8)
    ax.set_xticks(x, names, rotation=20, fontsize=8)
    ax.set_ylabel("mean vol. element near / far")
    ax.set_yscale("log")
    ax.legend(fontsize=8)
    return ax


def plot_image_line(run, ax=None):
    """Effective volume and predictive entropy along the line; background coloured by predicted class."""
    plt = _plt()
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.2), constrained_layout=True)
    t = run.line_t
    cmap = plt.get_cmap("tab10")
    edges = np.concatenate([[t[0]], (t[1:] + t[:-1]) / 2, [t[-1]]])
    for i, c in enumerate(run.line_class):
        ax.axvspan(edges[i], edges[i + 1], color=cmap(int(c)), alpha=0.18, lw=0)
    ax.plot(t, run.line_effective_volume, "k-", lw=1.5, label="effective volume")
    ax.set_xlabel("t (anchors at 0 and 1)")
    ax.set_ylabel("sum log10 sigma_i(J/sqrt m)")
    for anchor in (0.0, 1.0):
        ax.axvline(anchor, color="k", ls=":", lw=0.8)
    twin = ax.twinx()
    twin.plot(t, run.line_entropy, "C3--", lw=1.2, label="entropy")
    twin.set_ylabel("predictive entropy (nats)", color="C3")
    for c in np.unique(run.line_class):
        ax.plot([], [], "s", color=cmap(int(c)), alpha=0.5, label=f"class {int(c)}")
    ax.legend(fontsize=7, loc="upper left")
    ax.set_title(f"{run.model}: line between two test images (background = predicted class)", fontsize=9)
    return ax


def plot_image_plane(run, anchor_coords, axes=None):
    """Effective volume, predicted class and entropy on the plane through three images (anchors marked)."""
    plt = _plt()
    if axes is None:
        _, axes = plt.subplots(1, 3, figsize=(12, 3.6), constrained_layout=True)
    extent = _extent(run.plane_us, run.plane_vs)
    panels = (
        (run.plane_effective_volume, "viridis", "effective volume (log10)"),
        (run.plane_class, "tab10", "predicted class"),
        (run.plane_entropy, "magma", "predictive entropy"),
    )
    for ax, (values, cmap, title) in zip(axes, panels, strict=True):
        kw = {"vmin": -0.5, "vmax": 9.5} if cmap == "tab10" else {}
        im = ax.imshow(
            values, origin="lower", extent=extent, cmap=cmap, aspect="equal", interpolation="nearest", **kw
        )
        plt.colorbar(im, ax=ax, shrink=0.8)
        ax.scatter(anchor_coords[:, 0], anchor_coords[:, 1], c="w", edgecolors="k", s=40, marker="o")
        for i, (u, v) in enumerate(anchor_coords):
            ax.annotate(str(i + 1), (u, v), xytext=(4, 4), textcoords="offset points", color="w", fontsize=8)
        ax.set_title(f"{run.model}\n{title}", fontsize=9)
    return axes


def plot_anchors(images, labels, axes=None):
    """The anchor images, numbered as on the plane panels."""
    plt = _plt()
    if axes is None:
        _, axes = plt.subplots(1, len(images), figsize=(1.8 * len(images), 2), constrained_layout=True)
    for i, (ax, img, label) in enumerate(zip(axes, images, labels, strict=True)):
        ax.imshow(img, cmap="gray_r")
        ax.set_title(f"anchor {i + 1}: label {label}", fontsize=8)
        ax.axis("off")
    return axes
