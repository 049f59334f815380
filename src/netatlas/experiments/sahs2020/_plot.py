"""Figures of the Sahs et al. regime study (matplotlib is imported only when a figure is drawn)."""

from __future__ import annotations

import numpy as np

from netatlas.experiments._plot import _axes
from netatlas.experiments.sahs2020._regimes import linear_interpolant, natural_cubic_spline

__all__ = ["plot_kernel_limit", "plot_regime_curves"]


def plot_regime_curves(rows, *, key="rel_cubic", x="scale", group=("ratio", "width"), ax=None, title=None,
                       logy=False):
    """Mean +- std over seeds of ``key`` against ``x``, one line per ``group`` value."""
    ax = _axes(ax)
    groups = sorted({tuple(r[g] for g in group) for r in rows})
    for values in groups:
        sub = [r for r in rows if tuple(r[g] for g in group) == values]
        xs = sorted({r[x] for r in sub})
        mean = np.array([np.mean([r[key] for r in sub if r[x] == v]) for v in xs])
        std = np.array([np.std([r[key] for r in sub if r[x] == v]) for v in xs])
        n_seeds = len({r.get("seed") for r in sub})
        ax.errorbar(xs, mean, yerr=std, marker="o", ms=4, capsize=3,
                    label=", ".join(f"{g}={v}" for g, v in zip(group, values, strict=True)) + f" ({n_seeds} seeds)")
    ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(x)
    ax.set_ylabel(key)
    if title:
        ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7)
    return ax


def plot_kernel_limit(x, y, fits, *, ax=None):
    """Data, natural cubic spline, linear interpolant and kernel-limit fits ``{label: callable}``."""
    ax = _axes(ax)
    grid = np.linspace(np.min(x), np.max(x), 801)
    ax.plot(grid, natural_cubic_spline(x, y)(grid), "k-", lw=2, label="natural cubic spline")
    ax.plot(grid, linear_interpolant(x, y)(grid), "k:", lw=1.5, label="linear interpolant")
    for label, fit in fits.items():
        ax.plot(grid, fit(grid), lw=1, label=label)
    ax.plot(x, y, "o", color="tab:green", label="data")
    ax.legend(fontsize=7)
    ax.set_xlabel("x")
    return ax
