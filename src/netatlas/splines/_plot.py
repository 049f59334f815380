"""Plots of the spline lens (matplotlib; numerics never import this module)."""

from __future__ import annotations

import numpy as np

__all__ = ["plot_breakpoint_histogram", "plot_spectrum", "plot_flow_frame"]


def _axes(ax, figsize=(6, 4)):
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def plot_breakpoint_histogram(breakpoints, density=None, *, ax=None, window=(-4.0, 4.0), bins=60, title=None):
    """Histogram of sampled breakpoints inside ``window`` (normalised as a density of all samples)
    with the analytic density on top; returns the axes."""
    ax = _axes(ax)
    beta = np.asarray(breakpoints, dtype=np.float64)
    beta = beta[np.isfinite(beta)]
    lo, hi = window
    inside = beta[(beta >= lo) & (beta <= hi)]
    edges = np.linspace(lo, hi, bins + 1)
    counts, _ = np.histogram(inside, edges)
    ax.bar(edges[:-1], counts / (beta.size * np.diff(edges)), width=np.diff(edges), align="edge", alpha=0.5,
           label=f"sampled ({beta.size} breakpoints)")
    if density is not None and density.kind != "point_mass":
        z = np.linspace(lo, hi, 801)
        ax.plot(z, density.pdf(z), "k-", lw=1.5, label=f"analytic ({density.kind})")
    elif density is not None:
        ax.axvline(0.0, color="k", lw=1.5, label="analytic: all at 0")
    ax.set_xlabel("breakpoint beta = -b/w")
    ax.set_ylabel("density")
    if title:
        ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    return ax


def plot_spectrum(spectrum, *, ax=None, title=None):
    """|eigenvalues| on a log scale, sorted, coloured by sign, with the zero threshold of the rank rule."""
    ax = _axes(ax)
    lam = spectrum.eigenvalues
    order = np.argsort(-np.abs(lam))
    mags = np.maximum(np.abs(lam[order]), 1e-300)
    idx = np.arange(lam.size)
    pos = lam[order] > 0
    ax.semilogy(idx[pos], mags[pos], "o", ms=3, color="tab:blue", label="positive")
    ax.semilogy(idx[~pos], mags[~pos], "s", ms=3, color="tab:red", label="negative / zero")
    if spectrum.rank < lam.size:
        ax.axvline(spectrum.rank - 0.5, color="k", ls="--", lw=1,
                   label=f"rank {spectrum.rank} (gap {spectrum.gap_decades:.1f} decades)")
    ax.set_xlabel("eigenvalue index (by |lambda|)")
    ax.set_ylabel("|lambda|")
    ax.set_ylim(bottom=max(mags.min() * 0.1, mags.max() * 1e-22))
    if title:
        ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    return ax


def plot_flow_frame(run, index, *, ax=None, trail=None, ylim=None, xlim=None, mu_scale=None):
    """One frame of a training run in the spline view: data, f, breakpoints at f(beta) as markers sized
    by |mu| (blue s = +1, orange s = -1), and their paths (beta over records so far) below the axis."""
    ax = _axes(ax, figsize=(7, 4.5))
    ax.clear()
    beta_all, mu_all = run.breakpoints, np.abs(run.delta_slopes)
    beta, mu, sign = beta_all[index], mu_all[index], run.orientations[index]
    spline = run.spline(index)
    ax.plot(run.grid, run.function[index], color="k", lw=1.5, label="f")
    ax.plot(run.x, run.y, "o", color="tab:green", ms=6, zorder=5, label="data")
    lo, hi = xlim if xlim is not None else (run.grid[0], run.grid[-1])
    scale = mu_scale if mu_scale is not None else max(mu_all.max(), 1e-300)
    shown = np.isfinite(beta) & (beta >= lo) & (beta <= hi)
    sizes = 4 + 120 * mu[shown] / scale
    colours = np.where(sign[shown] > 0, "tab:blue", "tab:orange")
    ax.scatter(beta[shown], spline(beta[shown]), s=sizes, c=colours, alpha=0.7, zorder=4,
               label="breakpoints (size ~ |mu|)")
    ylo, yhi = ylim if ylim is not None else ax.get_ylim()
    # paths: breakpoint positions over the records so far, drawn in a band under the function
    start = 0 if trail is None else max(0, index - trail)
    band = ylo + (yhi - ylo) * np.linspace(0.02, 0.18, index - start + 1)
    paths = beta_all[start:index + 1]
    for neuron in np.flatnonzero(shown)[:400]:
        ax.plot(np.clip(paths[:, neuron], lo, hi), band, color="0.6", lw=0.5, alpha=0.6)
    ax.set_xlim(lo, hi)
    ax.set_ylim(ylo, yhi)
    ax.set_xlabel("x")
    ax.set_title(f"t = {run.times[index]:.3g}, step {run.steps[index]}, loss {run.loss[index]:.3g}", fontsize=10)
    ax.legend(fontsize=7, loc="upper right")
    return ax
