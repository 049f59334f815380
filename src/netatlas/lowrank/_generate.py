"""Joint distributions for validating the local theory: a controllable distance epsilon from
independence with a prescribed DTM spectrum, random (non-local) Dirichlet joints, and sampling."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from netatlas.lowrank._dtm import check_joint, check_k

__all__ = ["LocalJoint", "chi2_radius", "default_singular_values", "dirichlet_joint", "local_joint",
           "sample_joint"]


def chi2_radius(p_xy) -> np.ndarray:
    """Per-symbol chi-square distance of P_{Y|X=x} from P_Y, as a radius (square root).

    ``r(x) = sqrt( sum_y (P(y|x) - P_Y(y))^2 / P_Y(y) )``, shape (|X|,). Its P_X-weighted root mean
    square equals ||B~||_F (the DTM's Frobenius norm); the local regime is max_x r(x) <= eps.

    Examples
    --------
    >>> chi2_radius([[0.25, 0.25], [0.25, 0.25]])
    array([0., 0.])
    >>> chi2_radius([[0.5, 0.0], [0.0, 0.5]])  # deterministic: sqrt(|Y| - 1)
    array([1., 1.])
    """
    p = check_joint(p_xy, caller="chi2_radius")
    p_x, p_y = p.sum(1), p.sum(0)
    cond = p / p_x[:, None]
    return np.sqrt(np.sum((cond - p_y) ** 2 / p_y, axis=1))


def default_singular_values(rank: int, k: int, *, gap: float = 0.6) -> np.ndarray:
    """A DTM spectrum with ``rank`` values: the top k in [0.7, 1], then a drop by ``gap`` and a
    geometric tail (ratio 0.7), normalised to unit Euclidean norm.

    ``gap`` is the relative gap (s_k - s_{k+1}) / s_k, in (0, 1].

    >>> default_singular_values(4, 2, gap=0.5).round(3)
    array([0.773, 0.541, 0.271, 0.189])
    """
    if not 0 < gap <= 1:
        raise ValueError(f"default_singular_values: gap = {gap} must be in (0, 1]")
    head = np.linspace(1.0, 0.7, k) if k > 1 else np.ones(1)
    tail = head[-1] * (1 - gap) * 0.7 ** np.arange(rank - k)
    s = np.concatenate([head, tail])[:rank]
    return s / np.linalg.norm(s)


@dataclass(frozen=True)
class LocalJoint:
    """A joint distribution P_XY = P_X P_Y (1 + eps Phi0) with DTM exactly eps * B0.

    Attributes
    ----------
    p_xy : ndarray of shape (|X|, |Y|)
        The joint table (sums to 1, marginals exactly p_x, p_y).
    p_x, p_y : ndarray of shapes (|X|,), (|Y|,)
    b0 : ndarray of shape (|X|, |Y|)
        The unit-Frobenius-norm direction, orthogonal to sqrt(P_X) and sqrt(P_Y).
    eps : float
        ||DTM||_F = sqrt(E_X chi2(X)): the root-mean-square chi-square radius.
    eps_max : float
        The largest eps keeping P_XY >= 0 (1 / max(-Phi0)).
    singular_values : ndarray of shape (r,)
        The DTM's singular values (eps times the prescribed unit-norm spectrum).
    k : int
        The rank the spectrum's gap was placed after.
    max_chi2_radius : float
        max_x sqrt(chi2(P_{Y|X=x}, P_Y)).
    seed : int
    """

    p_xy: np.ndarray
    p_x: np.ndarray
    p_y: np.ndarray
    b0: np.ndarray
    eps: float
    eps_max: float
    singular_values: np.ndarray
    k: int
    max_chi2_radius: float
    seed: int

    @property
    def eps_fraction(self) -> float:
        """eps / eps_max."""
        return self.eps / self.eps_max

    def to_dict(self) -> dict:
        return {"shape": list(self.p_xy.shape), "eps": self.eps, "eps_max": self.eps_max,
                "eps_fraction": self.eps_fraction, "k": self.k, "max_chi2_radius": self.max_chi2_radius,
                "singular_values": self.singular_values.tolist(), "seed": self.seed}


def _orthonormal_complement(rng, v, r):
    """r orthonormal columns orthogonal to the unit vector v (random)."""
    n = v.size
    a = np.column_stack([v, rng.normal(size=(n, r))])
    q, _ = np.linalg.qr(a)
    return q[:, 1 : r + 1]


def local_joint(
    n_x: int,
    n_y: int,
    *,
    k: int = 2,
    eps: float | None = None,
    eps_fraction: float | None = None,
    singular_values=None,
    gap: float = 0.6,
    p_x=None,
    p_y=None,
    concentration: float = 5.0,
    seed: int = 0,
) -> LocalJoint:
    """A joint distribution at a controlled distance eps from independence, with a prescribed
    DTM spectrum (a clear gap after k).

    Construction (docs/papers/shisher2022.md): B0 = U diag(s) V^T with U orthonormal and orthogonal to
    sqrt(P_X), V orthonormal and orthogonal to sqrt(P_Y), ||s|| = 1; Phi0 = B0 / sqrt(P_X P_Y);
    P_XY = P_X P_Y (1 + eps Phi0). Then the marginals are exactly P_X and P_Y and DTM(P_XY) = eps B0,
    so its singular values are eps * s. eps_max = 1 / max(-Phi0) keeps P_XY >= 0.

    Parameters
    ----------
    n_x, n_y : int
        |X| and |Y| (>= 2 each).
    k : int
        Where the spectrum's gap is (1 <= k <= min(n_x, n_y) - 1).
    eps, eps_fraction : float
        Exactly one: the absolute eps = ||DTM||_F, or eps / eps_max in (0, 1].
    singular_values : array of shape (r,), optional
        The spectrum's shape (r <= min(n_x, n_y) - 1; rescaled to unit norm). Default
        :func:`default_singular_values` with ``gap``.
    p_x, p_y : arrays, optional
        Marginals (positive, summing to 1). Default: Dirichlet(concentration) draws.
    seed : int

    Returns
    -------
    LocalJoint

    Examples
    --------
    >>> from netatlas.lowrank import dtm
    >>> j = local_joint(6, 4, k=1, eps_fraction=0.1, seed=0)
    >>> bool(np.allclose(np.linalg.svd(dtm(j.p_xy), compute_uv=False)[:3], j.singular_values))
    True
    >>> bool(np.isclose(np.linalg.norm(dtm(j.p_xy)), j.eps))
    True
    """
    n_x, n_y = int(n_x), int(n_y)
    if n_x < 2 or n_y < 2:
        raise ValueError(f"local_joint: need n_x >= 2 and n_y >= 2, got ({n_x}, {n_y})")
    rank_max = min(n_x, n_y) - 1
    k = check_k(k, rank_max, caller="local_joint")
    if (eps is None) == (eps_fraction is None):
        raise ValueError("local_joint: pass exactly one of eps= (absolute, ||DTM||_F) or eps_fraction= "
                         "(eps / eps_max, in (0, 1])")
    rng = np.random.default_rng(seed)
    p_x = _marginal(p_x, n_x, "p_x", rng, concentration)
    p_y = _marginal(p_y, n_y, "p_y", rng, concentration)
    if singular_values is None:
        s = default_singular_values(rank_max, k, gap=gap)
    else:
        s = np.asarray(singular_values, dtype=np.float64)
        if s.ndim != 1 or not 1 <= s.size <= rank_max or np.any(s < 0) or s.sum() == 0:
            raise ValueError(f"local_joint: singular_values must be 1..{rank_max} non-negative numbers, "
                             f"not all zero; got {s}")
        s = np.sort(s)[::-1] / np.linalg.norm(s)
    u = _orthonormal_complement(rng, np.sqrt(p_x), s.size)
    v = _orthonormal_complement(rng, np.sqrt(p_y), s.size)
    b0 = (u * s) @ v.T
    phi0 = b0 / np.sqrt(np.outer(p_x, p_y))
    eps_max = 1.0 / max(float(np.max(-phi0)), 1e-300)
    if eps_fraction is not None:
        if not 0 < eps_fraction <= 1:
            raise ValueError(f"local_joint: eps_fraction = {eps_fraction} must be in (0, 1]")
        eps = eps_fraction * eps_max
    elif not 0 < eps <= eps_max:
        raise ValueError(f"local_joint: eps = {eps} must be in (0, eps_max = {eps_max:.4g}] for this draw "
                         "(larger eps makes probabilities negative); use eps_fraction= to stay in range")
    p_xy = np.outer(p_x, p_y) * (1 + eps * phi0)
    p_xy = np.clip(p_xy, 0.0, None)  # only rounding at eps = eps_max
    radius = float(np.max(chi2_radius(p_xy)))
    return LocalJoint(p_xy, p_x, p_y, b0, float(eps), eps_max, float(eps) * s, k, radius, seed)


def _marginal(p, n, name, rng, concentration):
    if p is None:
        return rng.dirichlet(np.full(n, concentration))
    p = np.asarray(p, dtype=np.float64)
    if p.shape != (n,) or np.any(p <= 0) or abs(p.sum() - 1) > 1e-9:
        raise ValueError(f"local_joint: {name} must be {n} positive numbers summing to 1, got {p}")
    return p


def dirichlet_joint(n_x: int, n_y: int, *, concentration: float = 1.0, seed: int = 0) -> np.ndarray:
    """A random joint table ~ Dirichlet(concentration) over all |X| x |Y| cells: far from
    independence (chi-square radius ~ 1 or more), the *broken-locality* case.

    >>> p = dirichlet_joint(5, 3, seed=1)
    >>> p.shape, round(float(p.sum()), 12)
    ((5, 3), 1.0)
    """
    if concentration <= 0:
        raise ValueError(f"dirichlet_joint: concentration = {concentration} must be > 0")
    rng = np.random.default_rng(seed)
    return rng.dirichlet(np.full(int(n_x) * int(n_y), float(concentration))).reshape(int(n_x), int(n_y))


def sample_joint(p_xy, n_samples: int, *, seed: int = 0) -> np.ndarray:
    """The empirical joint of ``n_samples`` i.i.d. draws from ``p_xy`` (a multinomial draw).

    Symbols that happen to get no sample keep probability zero; the caller decides what to do
    (check_joint rejects zero marginals).

    >>> sample_joint([[0.5, 0.0], [0.0, 0.5]], 10, seed=0).sum()
    np.float64(1.0)
    """
    p = check_joint(p_xy, caller="sample_joint")
    if int(n_samples) < 1:
        raise ValueError(f"sample_joint: n_samples = {n_samples} must be >= 1")
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(int(n_samples), p.ravel() / p.sum())
    return counts.reshape(p.shape) / float(n_samples)
