"""Figures of the metric lens (matplotlib is imported here only)."""

from __future__ import annotations

import numpy as np

__all__ = [
    "plot_infinite_width",
    "plot_metric_plane",
    "plot_metric_points",
]

_LABELS = {"effective": "effective volume (log10)", "volume": "log sqrt(det g)",
           "plane": "in-plane log sqrt det(U^T g U)"}


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
    """The plane quantity of a :class:`~netatlas.metric.MetricMap` (by default the in-plane metric), filled
    region by region when the map holds the exact regions (else per grid cell), with the predicted-class
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
    label = _LABELS.get(result.plane_quantity or result.quantity, result.plane_quantity or result.quantity)
    if result.partition is not None:
        im = _draw_regions(ax, result.partition, result.region_values)
        bounds = result.plane.bounds
        ax.set_xlim(bounds[0], bounds[1])
        ax.set_ylim(bounds[2], bounds[3])
    else:
        values = np.where(np.isfinite(result.plane_values), result.plane_values, np.nan)
        im = ax.imshow(values, origin="lower", extent=_extent(result.us, result.vs), cmap="viridis",
                       aspect="auto", interpolation="nearest")
    plt.colorbar(im, ax=ax, shrink=0.85, label=label)
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


def _draw_regions(ax, partition, region_values):
    """Each exact region filled with its value (regions where it is not finite left blank)."""
    from matplotlib.collections import PolyCollection

    finite = np.isfinite(region_values)
    polygons = [partition.polygon(i) for i in np.flatnonzero(finite)]
    collection = PolyCollection(polygons, array=region_values[finite], cmap="viridis", edgecolors="face",
                                linewidths=0.2)
    ax.add_collection(collection)
    return collection


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
