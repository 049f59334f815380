"""Figures of the metric lens (matplotlib is imported here only)."""

from __future__ import annotations

import numpy as np

__all__ = [
    "plot_toy_run",
    "plot_toy_summary",
    "plot_image_line",
    "plot_image_plane",
    "plot_anchors",
    "plot_infinite_width",
    "plot_metric_plane",
    "plot_metric_points",
]

_LABELS = {"effective": "effective volume (log10)", "volume": "log sqrt(det g)"}


def _extent(us, vs):
    """imshow extent of a grid of cell centres (edges half a step beyond the outer centres)."""
    du = (us.max() - us.min()) / max(us.shape[1] - 1, 1) / 2
    dv = (vs.max() - vs.min()) / max(vs.shape[0] - 1, 1) / 2
    return (us.min() - du, us.max() + du, vs.min() - dv, vs.max() + dv)


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


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


def plot_infinite_width(r, volume, curvature, ax=None):
    """Infinite-width volume element and curvature against r = |x|."""
    plt = _plt()
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.2), constrained_layout=True)
    ax.plot(r, volume, "C0-", label="sqrt(det g)")
    ax.set_xlabel("r = |x|")
    ax.set_ylabel("sqrt(det g)", color="C0")
    twin = ax.twinx()
    twin.plot(r, curvature, "C1--", label="R")
    twin.set_ylabel("scalar curvature R", color="C1")
    return ax


def plot_metric_plane(result, ax=None):
    """The quantity of a :class:`~netatlas.metric.MetricMap` on its plane, with the predicted-class
    boundaries (black) and the anchors (numbered) when known. Returns the Axes.

    Examples
    --------
    >>> import netatlas
    >>> net = netatlas.nets.from_torch(netatlas.nets.mlp([2, 8, 3], "tanh", seed=0))
    >>> r = netatlas.metric.metric_map(net, layer="1", plane=netatlas.Plane.square(1.0), grid=6)
    >>> plot_metric_plane(r).get_xlabel()
    'u'
    """
    plt = _plt()
    if result.plane_values is None:
        raise ValueError("plot_metric_plane: this MetricMap has no plane (pass plane= to metric_map)")
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 4.2), constrained_layout=True)
    values = np.where(np.isfinite(result.plane_values), result.plane_values, np.nan)
    im = ax.imshow(values, origin="lower", extent=_extent(result.us, result.vs), cmap="viridis", aspect="auto",
                   interpolation="nearest")
    plt.colorbar(im, ax=ax, shrink=0.85, label=_LABELS.get(result.quantity, result.quantity))
    predicted = result.plane_predicted
    if predicted is not None and len(np.unique(predicted)) > 1:
        levels = np.unique(predicted)
        ax.contour(result.us, result.vs, predicted, levels=(levels[:-1] + levels[1:]) / 2, colors="k",
                   linewidths=0.8)
    if result.anchors is not None:
        anchors = np.asarray(result.anchors)
        ax.scatter(anchors[:, 0], anchors[:, 1], c="w", edgecolors="k", s=40, zorder=3)
        for i, (u, v) in enumerate(anchors):
            ax.annotate(str(i + 1), (u, v), xytext=(4, 4), textcoords="offset points", color="w", fontsize=8)
    ax.set_xlabel("u")
    ax.set_ylabel("v")
    ax.set_title(result.features, fontsize=9)
    return ax


def plot_metric_points(result, ax=None):
    """The quantity at the data points of a :class:`~netatlas.metric.MetricMap`, one column of dots per
    label (or one column), against predictive entropy when the net is a classifier. Returns the Axes."""
    plt = _plt()
    if result.point_values is None:
        raise ValueError("plot_metric_points: this MetricMap has no data points (pass points= to metric_map)")
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.6), constrained_layout=True)
    values = result.point_values
    ok = np.isfinite(values)
    if result.point_entropy is not None:
        colour = result.point_labels if result.point_labels is not None else "k"
        ax.scatter(result.point_entropy[ok], values[ok], c=colour if np.ndim(colour) == 0 else colour[ok],
                   cmap="tab10", s=8)
        ax.set_xlabel("predictive entropy (nats)")
    else:
        labels = result.point_labels if result.point_labels is not None else np.zeros(len(values))
        ax.scatter(labels[ok] + np.random.default_rng(0).uniform(-0.2, 0.2, ok.sum()), values[ok], s=8)
        ax.set_xlabel("label")
    ax.set_ylabel(_LABELS.get(result.quantity, result.quantity))
    ax.set_title(f"{result.features}: {int((~ok).sum())} of {len(values)} points not finite", fontsize=9)
    return ax
