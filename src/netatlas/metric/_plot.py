"""Figures of the metric lens (matplotlib is imported here only)."""

from __future__ import annotations

__all__ = [
    "plot_infinite_width",
]


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
