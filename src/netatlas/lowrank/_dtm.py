"""The divergence transition matrix (DTM) of a discrete joint distribution, its SVD, and the H-score.

For discrete X (|X| symbols) and Y (|Y| symbols) with joint P_XY and marginals P_X, P_Y::

    B~(x, y) = (P_XY(x, y) - P_X(x) P_Y(y)) / sqrt(P_X(x) P_Y(y))

``B~`` is orthogonal to sqrt(P_X) on the left and to sqrt(P_Y) on the right. Without the subtraction
the matrix ``P_XY / sqrt(P_X P_Y)`` has one more singular pair, sigma = 1 with vectors (sqrt(P_X),
sqrt(P_Y)); the others are the DTM's, all <= 1 (sigma_1 is the Hirschfeld-Gebelein-Renyi maximal
correlation; it equals 1 only when X and Y share a non-constant deterministic function).

References
----------
Huang, Makur, Wornell, Zheng, "On universal features for high-dimensional learning and inference".
Xu, Huang, Zheng, Wornell, "An information theoretic interpretation to deep neural networks", ISIT 2019.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "SVD",
    "check_joint",
    "check_k",
    "dtm",
    "dtm_svd",
    "h_score",
    "h_score_max",
    "h_score_population",
    "low_rank",
    "marginals",
    "truncated_svd",
]

#: |sum(p_xy) - 1| accepted for a joint distribution (float64 rounding of user-normalised tables).
JOINT_SUM_TOLERANCE = 1e-6


def check_joint(p_xy, name: str = "p_xy", *, caller: str = "lowrank") -> np.ndarray:
    """Validate a joint distribution table and return it as a float64 array of shape (|X|, |Y|).

    Accepts a numpy array, a nested list or a torch tensor. Entries must be finite and non-negative,
    the table must sum to 1 (within ``JOINT_SUM_TOLERANCE``), and every symbol of X and of Y must have
    positive probability (the DTM divides by sqrt(P_X P_Y)).

    Examples
    --------
    >>> check_joint([[0.25, 0.25], [0.25, 0.25]]).shape
    (2, 2)
    >>> check_joint([[0.5, 0.5], [0.0, 0.0]])
    Traceback (most recent call last):
    ...
    ValueError: lowrank: p_xy has rows (X symbols) with zero probability: [1]; drop those symbols ...
    """
    if type(p_xy).__module__.startswith("torch"):
        p_xy = p_xy.detach().cpu().numpy()
    try:
        p = np.asarray(p_xy, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{caller}: {name} must be a 2-D array of probabilities, "
                        f"got {type(p_xy).__name__}") from None
    if p.ndim != 2:
        raise ValueError(f"{caller}: {name} must be 2-D (|X|, |Y|), got shape {p.shape}")
    if p.shape[0] < 2 or p.shape[1] < 2:
        raise ValueError(f"{caller}: {name} needs at least 2 symbols of X and of Y, got shape {p.shape}")
    if not np.all(np.isfinite(p)):
        raise ValueError(f"{caller}: {name} has non-finite entries (NaN or inf)")
    if np.any(p < 0):
        i, j = np.argwhere(p < 0)[0]
        raise ValueError(f"{caller}: {name} has negative entries, e.g. {name}[{i}, {j}] = {p[i, j]:.3g}; "
                         "probabilities must be >= 0")
    total = p.sum()
    if abs(total - 1.0) > JOINT_SUM_TOLERANCE:
        raise ValueError(f"{caller}: {name} sums to {total:.8g}, not 1; normalise it ({name} / {name}.sum())")
    zero_rows = np.flatnonzero(p.sum(1) <= 0)
    if zero_rows.size:
        raise ValueError(f"{caller}: {name} has rows (X symbols) with zero probability: "
                         f"{zero_rows.tolist()[:10]}; drop those symbols (the DTM divides by sqrt(P_X))")
    zero_cols = np.flatnonzero(p.sum(0) <= 0)
    if zero_cols.size:
        raise ValueError(f"{caller}: {name} has columns (Y symbols) with zero probability: "
                         f"{zero_cols.tolist()[:10]}; drop those symbols (the DTM divides by sqrt(P_Y))")
    return p


def check_k(k, n_max: int, *, caller: str = "lowrank") -> int:
    """Validate a rank ``k`` in 1..n_max (an int; ``caller`` starts the error message).

    >>> check_k(2, 3)
    2
    >>> check_k(4, 3, caller="low_rank")
    Traceback (most recent call last):
    ...
    ValueError: low_rank: k = 4 is out of range; accepted 1 <= k <= 3 (min(|X|, |Y|) - 1, the rank of the DTM at most)
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise TypeError(f"{caller}: k must be an int, got {type(k).__name__}")
    if not 1 <= k <= n_max:
        raise ValueError(f"{caller}: k = {k} is out of range; accepted 1 <= k <= {n_max} "
                         "(min(|X|, |Y|) - 1, the rank of the DTM at most)")
    return int(k)


def marginals(p_xy) -> tuple[np.ndarray, np.ndarray]:
    """The marginals (P_X of shape (|X|,), P_Y of shape (|Y|,)) of a joint table.

    >>> marginals([[0.1, 0.2], [0.3, 0.4]])
    (array([0.3, 0.7]), array([0.4, 0.6]))
    """
    p = check_joint(p_xy, caller="marginals")
    return p.sum(1), p.sum(0)


def dtm(p_xy, *, centered: bool = True) -> np.ndarray:
    """The divergence transition matrix of a joint distribution.

    Parameters
    ----------
    p_xy : array of shape (|X|, |Y|)
        Joint probabilities: non-negative, summing to 1, with positive marginals.
    centered : bool
        True (default): ``(P_XY - P_X P_Y) / sqrt(P_X P_Y)``. False: ``P_XY / sqrt(P_X P_Y)``, which has
        the extra trivial singular pair (1, sqrt(P_X), sqrt(P_Y)).

    Returns
    -------
    ndarray of shape (|X|, |Y|), float64

    Examples
    --------
    >>> b = dtm([[0.3, 0.2], [0.1, 0.4]])
    >>> b.round(4)
    array([[ 0.2236, -0.1826],
           [-0.2236,  0.1826]])
    >>> np.linalg.svd(dtm([[0.3, 0.2], [0.1, 0.4]], centered=False), compute_uv=False).round(4)
    array([1.    , 0.4082])
    >>> dtm([[0.25, 0.25], [0.25, 0.25]])  # independent X, Y: the zero matrix
    array([[0., 0.],
           [0., 0.]])
    """
    p = check_joint(p_xy, caller="dtm")
    p_x, p_y = p.sum(1), p.sum(0)
    scale = np.sqrt(np.outer(p_x, p_y))
    if centered:
        return (p - np.outer(p_x, p_y)) / scale
    return p / scale


@dataclass(frozen=True)
class SVD:
    """A (thin) singular value decomposition ``matrix = u @ diag(s) @ vt``.

    Attributes
    ----------
    u : ndarray of shape (m, r)
        Left singular vectors (columns), orthonormal.
    s : ndarray of shape (r,)
        Singular values, descending.
    vt : ndarray of shape (r, n)
        Right singular vectors (rows), orthonormal.
    """

    u: np.ndarray
    s: np.ndarray
    vt: np.ndarray

    def top(self, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(u_k (m, k), s_k (k,), v_k (n, k)): the top-k singular triples."""
        return self.u[:, :k], self.s[:k], self.vt[:k].T

    def low_rank(self, k: int) -> np.ndarray:
        """The best rank-k approximation (Eckart-Young), shape (m, n)."""
        return (self.u[:, :k] * self.s[:k]) @ self.vt[:k]

    def gap(self, k: int) -> float:
        """Relative gap after k: (s_k - s_{k+1}) / s_k (1 when s_{k+1} is absent or 0)."""
        if k >= self.s.size:
            return 1.0
        return float((self.s[k - 1] - self.s[k]) / self.s[k - 1]) if self.s[k - 1] > 0 else 0.0

    def to_dict(self) -> dict:
        return {"singular_values": self.s.tolist()}


def truncated_svd(matrix) -> SVD:
    """The thin SVD of a matrix, as an :class:`SVD` (float64).

    >>> truncated_svd(np.diag([1.0, 3.0])).s
    array([3., 1.])
    """
    a = np.asarray(matrix, dtype=np.float64)
    if a.ndim != 2:
        raise ValueError(f"truncated_svd: expected a 2-D matrix, got shape {a.shape}")
    u, s, vt = np.linalg.svd(a, full_matrices=False)
    return SVD(u, s, vt)


def dtm_svd(p_xy) -> SVD:
    """The SVD of the (centred) DTM of ``p_xy``: singular values sigma_1 >= sigma_2 >= ... (< 1).

    >>> dtm_svd([[0.3, 0.2], [0.1, 0.4]]).s.round(4)
    array([0.4082, 0.    ])
    """
    return truncated_svd(dtm(p_xy))


def low_rank(matrix, k: int) -> np.ndarray:
    """The best rank-k approximation of ``matrix`` in Frobenius norm (Eckart-Young).

    >>> low_rank(np.diag([3.0, 1.0]), 1)
    array([[3., 0.],
           [0., 0.]])
    """
    a = np.asarray(matrix, dtype=np.float64)
    k = check_k(k, min(a.shape), caller="low_rank")
    return truncated_svd(a).low_rank(k)


def h_score_max(p_xy, k: int) -> float:
    """The largest H-score of k-dimensional features: 1/2 sum_{i<=k} sigma_i(B~)^2.

    >>> round(h_score_max([[0.3, 0.2], [0.1, 0.4]], 1), 6)
    0.083333
    """
    p = check_joint(p_xy, caller="h_score_max")
    k = check_k(k, min(p.shape), caller="h_score_max")
    s = dtm_svd(p).s
    return 0.5 * float(np.sum(s[:k] ** 2))


def _weighted_stats(f, w):
    mean = w @ f
    centred = f - mean
    cov = (centred * w[:, None]).T @ centred
    return mean, centred, cov


def h_score(features, labels_or_g, *, sample_weight=None, ridge: float = 0.0) -> float:
    """The H-score of features f (Xu, Huang, Zheng & Wornell 2019), estimated from samples.

    Two forms::

        h_score(f, labels)   one-sided, g optimal:  1/2 tr( cov(f)^{-1} cov(E[f | Y]) )
        h_score(f, g)        two-sided:             E[f^T g] - E f^T E g - 1/2 tr(cov f cov g)

    For a discrete joint with weighted centred features Phi (rows sqrt(P_X)(f(x) - E f)) and G (rows
    sqrt(P_Y)(g(y) - E g)) the two-sided score is 1/2 ||B~||^2 - 1/2 ||B~ - Phi G^T||^2; the one-sided
    score is the maximum of that over g. Both depend on f only through span(f - E f) (invariant under
    invertible k x k maps, also for the two-sided form when g is mapped by the inverse transpose), and
    the maximum over k-dimensional f is 1/2 sum_{i<=k} sigma_i(B~)^2 (:func:`h_score_max`).

    Parameters
    ----------
    features : array of shape (n_samples, k)
        f(x_i) for each sample.
    labels_or_g : array of shape (n_samples,) of int, or (n_samples, k) of float
        The labels y_i (one-sided score) or g(y_i) for each sample (two-sided score).
    sample_weight : array of shape (n_samples,), optional
        Non-negative weights (normalised internally); pass P_XY(x_i, y_i) over all pairs to get the
        population score.
    ridge : float
        Added to the diagonal of cov(f) before inverting (one-sided form), for rank-deficient features.

    Returns
    -------
    float

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 2, 20000)
    >>> f = (y[:, None] + 0.5 * rng.normal(size=(20000, 1)))
    >>> round(h_score(f, y), 2)  # 1/2 * var(E[f|Y]) / var(f) = 1/2 * 0.25 / 0.5
    0.25
    >>> round(h_score(f, y) - h_score(3 * f + 1, y), 12)  # invariant under invertible maps
    0.0
    """
    f = np.asarray(features, dtype=np.float64)
    if f.ndim == 1:
        f = f[:, None]
    if f.ndim != 2:
        raise ValueError(f"h_score: features must be (n_samples, k), got shape {f.shape}")
    n = f.shape[0]
    second = np.asarray(labels_or_g)
    if second.shape[0] != n:
        raise ValueError(f"h_score: features have {n} samples but labels_or_g has {second.shape[0]}")
    if sample_weight is None:
        w = np.full(n, 1.0 / n)
    else:
        w = np.asarray(sample_weight, dtype=np.float64)
        if w.shape != (n,) or np.any(w < 0) or not np.isfinite(w).all() or w.sum() <= 0:
            raise ValueError(f"h_score: sample_weight must be {n} non-negative finite numbers "
                             "with a positive sum")
        w = w / w.sum()
    _, f_centred, cov_f = _weighted_stats(f, w)
    if second.ndim == 1:
        if not np.issubdtype(second.dtype, np.integer):
            raise TypeError(f"h_score: 1-D labels_or_g must hold integer labels, got dtype {second.dtype}; "
                            "pass g as a 2-D (n_samples, k) float array for the two-sided score")
        classes, inverse = np.unique(second, return_inverse=True)
        p_y = np.bincount(inverse, weights=w, minlength=classes.size)
        # rows sqrt(P_Y(y)) (E[f|y] - E f): their Gram matrix is cov(E[f|Y])
        sums = np.zeros((classes.size, f.shape[1]))
        np.add.at(sums, inverse, f_centred * w[:, None])
        keep = p_y > 0
        cond = sums[keep] / np.sqrt(p_y[keep])[:, None]
        cov_cond = cond.T @ cond
        cov_f = cov_f + ridge * np.eye(cov_f.shape[0])
        return 0.5 * float(np.trace(np.linalg.lstsq(cov_f, cov_cond, rcond=None)[0]))
    g = second.astype(np.float64)
    if g.ndim != 2 or g.shape[1] != f.shape[1]:
        raise ValueError(f"h_score: g must have shape (n_samples, k) = ({n}, {f.shape[1]}), got {g.shape}")
    _, g_centred, cov_g = _weighted_stats(g, w)
    cross = float(np.sum(w[:, None] * f_centred * g_centred))
    return cross - 0.5 * float(np.trace(cov_f @ cov_g))


def h_score_population(p_xy, features, g=None) -> float:
    """The population H-score of features f(x) (and optionally g(y)) under a joint table.

    Parameters
    ----------
    p_xy : array of shape (|X|, |Y|)
    features : array of shape (|X|, k)
        f(x) for every symbol x.
    g : array of shape (|Y|, k), optional
        g(y) for every symbol y; omitted: the one-sided score (best g).

    Notes
    -----
    With Phi rows sqrt(P_X(x))(f(x) - E f) and G rows sqrt(P_Y(y))(g(y) - E g)::

        one-sided: 1/2 tr(B~^T Phi (Phi^T Phi)^+ Phi^T B~)   two-sided: 1/2||B~||^2 - 1/2||B~ - Phi G^T||^2

    Examples
    --------
    >>> p = np.array([[0.3, 0.2], [0.1, 0.4]])
    >>> round(h_score_population(p, np.array([[1.0], [0.0]])), 6) == round(h_score_max(p, 1), 6)
    True
    """
    p = check_joint(p_xy, caller="h_score_population")
    p_x, p_y = p.sum(1), p.sum(0)
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2 or f.shape[0] != p.shape[0]:
        raise ValueError(f"h_score_population: features must be (|X|, k) = ({p.shape[0]}, k), got {f.shape}")
    b = dtm(p)
    phi = np.sqrt(p_x)[:, None] * (f - p_x @ f)
    if g is None:
        proj = phi @ np.linalg.pinv(phi)
        return 0.5 * float(np.sum((proj @ b) ** 2))
    g = np.asarray(g, dtype=np.float64)
    if g.shape != (p.shape[1], f.shape[1]):
        raise ValueError(f"h_score_population: g must be (|Y|, k) = ({p.shape[1]}, {f.shape[1]}), "
                         f"got {g.shape}")
    psi = np.sqrt(p_y)[:, None] * (g - p_y @ g)
    return 0.5 * float(np.sum(b**2)) - 0.5 * float(np.sum((b - phi @ psi.T) ** 2))
