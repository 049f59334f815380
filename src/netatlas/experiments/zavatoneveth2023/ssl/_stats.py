"""Rank correlations per slice and hierarchical bootstrap confidence intervals (seeds, then slices)."""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

__all__ = ["bootstrap_mean_ci", "spearman"]


def spearman(a, b) -> float:
    """Spearman rank correlation of two 1-D samples (average ranks for ties); NaN when either is constant
    or fewer than 3 finite pairs remain.

    Examples
    --------
    >>> spearman([1, 2, 3, 4], [10, 20, 30, 25])
    0.8
    >>> spearman([1, 1, 1], [1, 2, 3])
    nan
    """
    a, b = np.asarray(a, dtype=np.float64).ravel(), np.asarray(b, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"spearman: a and b must have one length; got {a.shape} and {b.shape}")
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep], b[keep]
    if len(a) < 3:
        return float("nan")
    ra, rb = rankdata(a) - (len(a) + 1) / 2, rankdata(b) - (len(b) + 1) / 2
    denominator = np.sqrt((ra @ ra) * (rb @ rb))
    return float(ra @ rb / denominator) if denominator > 0 else float("nan")


def bootstrap_mean_ci(values, *, n_boot: int = 2000, level: float = 0.95, seed: int = 0) -> tuple[float, float, float]:
    """Mean of ``values`` (n_seeds, n_slices) with a two-level percentile bootstrap interval.

    Each replicate resamples seeds with replacement, then slices with replacement within every chosen
    seed, and takes the mean (NaNs ignored). Seeds are the outer level because slices of one seed share a
    trained encoder.

    Returns
    -------
    (mean, low, high) : floats

    Examples
    --------
    >>> import numpy as np
    >>> mean, low, high = bootstrap_mean_ci(np.array([[0.1, 0.3, 0.2], [0.4, 0.2, 0.3]]), n_boot=500)
    >>> round(mean, 3), low <= mean <= high
    (0.25, True)
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 1:
        values = values[None]
    if values.ndim != 2 or values.size == 0:
        raise ValueError(f"bootstrap_mean_ci: values must have shape (n_seeds, n_slices); got {values.shape}")
    if not 0 < level < 1:
        raise ValueError(f"bootstrap_mean_ci: level must be in (0, 1); got {level}")
    if not np.isfinite(values).any():
        return float("nan"), float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    n_seeds, n_slices = values.shape
    seeds = rng.integers(0, n_seeds, size=(n_boot, n_seeds))
    slices = rng.integers(0, n_slices, size=(n_boot, n_seeds, n_slices))
    replicates = np.nanmean(values[seeds[:, :, None], slices].reshape(n_boot, -1), axis=1)
    alpha = (1 - level) / 2
    low, high = np.nanquantile(replicates, [alpha, 1 - alpha])
    return float(np.nanmean(values)), float(low), float(high)
