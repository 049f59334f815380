"""Keep a fraction of the training set by score, optionally class by class."""

from __future__ import annotations

from typing import Literal

import numpy as np

__all__ = ["subsample"]


def subsample(
    scores,
    fraction: float,
    labels=None,
    class_balanced: bool = True,
    keep: Literal["high", "low"] = "high",
    seed: int = 0,
) -> np.ndarray:
    """Indices of the samples to keep: the highest (or lowest) scores, within each class if balanced.

    Parameters
    ----------
    scores : array_like of shape (n_samples,)
        From :func:`netatlas.dynamics.score` (``inf`` allowed, NaN not).
    fraction : float in (0, 1]
        Fraction of the samples to keep.
    labels : array_like of shape (n_samples,), optional
        Class labels; needed for ``class_balanced``.
    class_balanced : bool
        With labels: keep ``round(fraction x n_c)`` samples (at least 1) of every class c, so the class
        proportions stay as they were. Without labels this has no effect.
    keep : {"high", "low"}
        Keep the highest scores (hard / informative samples, the usual choice) or the lowest.
    seed : int
        Breaks ties at random (so equal scores, e.g. many zeros, do not keep samples by index).

    Returns
    -------
    ndarray of int64, shape (n_kept,)
        Sorted indices into the training set.

    Examples
    --------
    >>> subsample([0.1, 0.9, 0.5, 0.3], 0.5, class_balanced=False)
    array([1, 2])
    >>> subsample([0.1, 0.9, 0.5, 0.3], 0.5, labels=[0, 0, 1, 1])       # one per class
    array([1, 2])
    >>> subsample([0.1, 0.9, 0.5, 0.3], 0.5, labels=[0, 0, 1, 1], keep="low")
    array([0, 3])
    """
    s = np.asarray(scores, dtype=np.float64).ravel()
    if np.isnan(s).any():
        raise ValueError("subsample: scores contain NaN; replace them (e.g. with -inf to drop those samples)")
    if not (isinstance(fraction, (int, float, np.floating)) and 0 < fraction <= 1):
        raise ValueError(f"subsample: fraction must be in (0, 1], got {fraction!r}")
    if keep not in ("high", "low"):
        raise ValueError(f"subsample: keep must be 'high' or 'low', got {keep!r}")
    n = len(s)
    if labels is not None:
        labels = np.asarray(labels).ravel()
        if len(labels) != n:
            raise ValueError(f"subsample: {n} scores but {len(labels)} labels")
    rng = np.random.default_rng(seed)
    key = -s if keep == "high" else s
    order = np.lexsort((rng.random(n), key))  # by key, ties in random order
    if labels is None or not class_balanced:
        k = min(n, max(1, round(fraction * n))) if n else 0
        return np.sort(order[:k]).astype(np.int64)
    kept = []
    ranked_labels = labels[order]
    for c in np.unique(labels):
        members = order[ranked_labels == c]
        k = min(len(members), max(1, round(fraction * len(members))))
        kept.append(members[:k])
    return np.sort(np.concatenate(kept)).astype(np.int64)
