"""Closed forms for the metric of random shallow networks at infinite width.

Features ``Phi(x) = phi(W x + b) / sqrt(n)`` with ``W_ij ~ N(0, sigma_w^2)``, ``b_j ~ N(0, sigma_b^2)``.
As n -> infinity, ``g(x) = E[phi'(u)^2 w w^T]`` with ``u = w.x + b``. Conditioning w on u
(``Cov(w, u) = sigma_w^2 x``, ``Var u = v = sigma_w^2 |x|^2 + sigma_b^2``) gives, for any activation,

    g(x) = A(r) I + B(r) x x^T,
    A = sigma_w^2 E[phi'(u)^2],
    B = sigma_w^4 (E[phi'(u)^2 u^2] - v E[phi'(u)^2]) / v^2,       u ~ N(0, v),

so the geometry is spherically symmetric (it depends on x only through r = |x|). Its eigenvalues are
A (d - 1 times, orthogonal to x) and ``A + B r^2`` (along x), hence
``sqrt(det g) = A^{(d-1)/2} sqrt(A + B r^2)``.

- ``"erf"``: ``phi(z) = erf(z / sqrt 2)`` (note the ``1/sqrt 2``; netatlas's IR activation ``erf`` is
  ``erf(z)``), ``q = 1 + 2 sigma_b^2 + 2 sigma_w^2 r^2``:
  ``A = (2 sigma_w^2 / pi) q^{-1/2}``, ``B = -(4 sigma_w^4 / pi) q^{-3/2}`` and, in d = 2,
  ``R(r) = -2 pi sigma_w^2 r^2 / ((1 + 2 sigma_b^2) sqrt q)``.
- ``"relu"``: ``g = (sigma_w^2 / 2) I`` (flat, R = 0).
- anything else (a name or an elementwise torch callable): the two expectations by 1-D Gauss-Hermite
  quadrature (``n_quadrature`` nodes) while ``v <= HERMITE_MAX_VARIANCE``, and by a composite
  Gauss-Legendre rule beyond (Gauss-Hermite misses the narrow peak of phi'(u)^2 when v is large);
  both are differentiable in x, so the curvature follows by autodiff.

These formulas are our derivation (docs/papers/zavatoneveth2023.md), checked against Monte Carlo in the
tests.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from netatlas.metric._curvature import _curvature_from_metric
from netatlas.metric._features import FeatureMap
from netatlas.metric._metric import to_numpy

__all__ = [
    "limit_metric",
    "limit_volume_element",
    "limit_scalar_curvature",
    "random_features",
    "ACTIVATIONS",
    "HERMITE_MAX_VARIANCE",
]

_QUADRATURE_ACTIVATIONS = {
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "gelu": F.gelu,
    "softplus": F.softplus,
    "elu": F.elu,
    "identity": lambda z: z,
    "sin": torch.sin,
    "erf_unscaled": torch.erf,
}
ACTIVATIONS = ("erf", "relu", *_QUADRATURE_ACTIVATIONS)


# Gauss-Hermite with n nodes resolves E[f(u)], u ~ N(0, v), only while f varies slowly on the scale of
# the node spacing times sqrt(2 v); activations saturate on a scale ~1, so for v > HERMITE_MAX_VARIANCE
# (where 96 nodes lose ~1e-8 relative accuracy) a composite Gauss-Legendre rule over +-12 standard
# deviations (256 panels x 8 nodes) takes over. Both are 1-D rules in y = u / sqrt(v).
HERMITE_MAX_VARIANCE = 2.0
_LEGENDRE_PANELS, _LEGENDRE_ORDER, _LEGENDRE_RANGE = 256, 8, 12.0
_SMALL_VARIANCE = 1e-6


@lru_cache(maxsize=8)
def _hermgauss(n: int):
    """Nodes y and weights for E[f(y)], y ~ N(0, 1)."""
    t, w = np.polynomial.hermite.hermgauss(n)
    return torch.from_numpy(t * math.sqrt(2)), torch.from_numpy(w / math.sqrt(math.pi))


@lru_cache(maxsize=1)
def _composite_legendre():
    """Nodes y and weights for E[f(y)], y ~ N(0, 1), on [-12, 12] (tail mass < 1e-32)."""
    t, w = np.polynomial.legendre.leggauss(_LEGENDRE_ORDER)
    edges = np.linspace(-_LEGENDRE_RANGE, _LEGENDRE_RANGE, _LEGENDRE_PANELS + 1)
    half = np.diff(edges)[:, None] / 2
    y = (edges[:-1, None] + half * (t + 1)).ravel()
    weights = (half * w).ravel() * np.exp(-(y**2) / 2) / math.sqrt(2 * math.pi)
    return torch.from_numpy(y), torch.from_numpy(weights)


def _gaussian_expectations(v, slope2_fn, n_quadrature):
    """E[phi'(u)^2] and E[phi'(u)^2 u^2] for u ~ N(0, v), v of shape (B,); differentiable in v."""
    out = []
    for y, w in (_hermgauss(int(n_quadrature)), _composite_legendre()):
        u = torch.sqrt(v)[:, None] * y  # (B, n_nodes)
        slope2 = slope2_fn(u.reshape(-1)).reshape(u.shape)
        out.append((slope2 @ w, (slope2 * u**2) @ w))
    small = v <= HERMITE_MAX_VARIANCE
    return torch.where(small, out[0][0], out[1][0]), torch.where(small, out[0][1], out[1][1])


def _check(x, activation, sigma_w, sigma_b, n_quadrature, caller):
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(np.ascontiguousarray(x))
    if not isinstance(x, torch.Tensor):
        raise TypeError(
            f"infinite_width.{caller}: x must be a tensor or array of shape (B, d); got {type(x).__name__}"
        )
    if x.dim() != 2:
        raise ValueError(f"infinite_width.{caller}: x must have shape (B, d); got {tuple(x.shape)}")
    if not (isinstance(activation, str) and activation in ACTIVATIONS) and not callable(activation):
        raise ValueError(
            f"infinite_width.{caller}: activation must be one of {ACTIVATIONS} or an elementwise "
            f"torch callable; got {activation!r}"
        )
    if not sigma_w > 0 or not sigma_b >= 0:
        raise ValueError(
            f"infinite_width.{caller}: need sigma_w > 0 and sigma_b >= 0; got sigma_w={sigma_w}, "
            f"sigma_b={sigma_b}"
        )
    if int(n_quadrature) < 2:
        raise ValueError(f"infinite_width.{caller}: n_quadrature must be >= 2; got {n_quadrature}")
    return x.to(torch.float64)


def _coefficients(r2, activation, sigma_w, sigma_b, n_quadrature):
    """A(r), B(r) of g = A I + B x x^T, for r2 = |x|^2 of shape (B,); differentiable in r2."""
    s2, z2 = sigma_w**2, sigma_b**2
    if activation == "erf":
        q = 1 + 2 * z2 + 2 * s2 * r2
        return 2 * s2 / math.pi * q**-0.5, -4 * s2**2 / math.pi * q**-1.5
    if activation == "relu":
        return torch.full_like(r2, s2 / 2), torch.zeros_like(r2)
    phi = _QUADRATURE_ACTIVATIONS[activation] if isinstance(activation, str) else activation
    dphi = torch.func.vmap(torch.func.grad(lambda z: phi(z)))
    v = s2 * r2 + z2  # (B,)
    slope2 = lambda u: dphi(u) ** 2  # noqa: E731
    # B = s^4 (e2 - v e0) / v^2 cancels catastrophically as v -> 0 (e2 - v e0 = O(v^2)); below
    # _SMALL_VARIANCE take B at _SMALL_VARIANCE (it multiplies x x^T with |x|^2 <= v / s^2 there).
    v_b = torch.where(v < _SMALL_VARIANCE, _SMALL_VARIANCE, v)
    e0, e2 = _gaussian_expectations(torch.cat([v, v_b]), slope2, n_quadrature)
    n = v.shape[0]
    return s2 * e0[:n], s2**2 * (e2[n:] - v_b * e0[n:]) / v_b**2


def limit_metric(
    x,
    activation: str | Callable = "erf",
    sigma_w: float = 1.0,
    sigma_b: float = 1.0,
    *,
    n_quadrature: int = 96,
) -> np.ndarray:
    """Infinite-width metric ``g(x) = A(|x|) I + B(|x|) x x^T`` of a random shallow network.

    Parameters
    ----------
    x : Tensor or ndarray of shape (B, d)
        Points.
    activation : str or callable
        ``"erf"`` (``erf(z/sqrt 2)``, closed form), ``"relu"`` (closed form), one of ``ACTIVATIONS``
        or an elementwise differentiable torch function (Gauss-Hermite quadrature).
    sigma_w, sigma_b : float
        Standard deviations of the weights (per entry) and biases.
    n_quadrature : int
        Gauss-Hermite nodes for activations without a closed form.

    Returns
    -------
    g : ndarray of shape (B, d, d), float64

    Examples
    --------
    >>> import torch
    >>> limit_metric(torch.zeros(1, 2)).round(4)   # (2/pi) / sqrt(3) I at the origin
    array([[[0.3676, 0.    ],
            [0.    , 0.3676]]])
    """
    x = _check(x, activation, sigma_w, sigma_b, n_quadrature, "limit_metric")
    A, B = _coefficients((x * x).sum(-1), activation, sigma_w, sigma_b, n_quadrature)
    eye = torch.eye(x.shape[1], dtype=x.dtype)
    return to_numpy(A[:, None, None] * eye + B[:, None, None] * x[:, :, None] * x[:, None, :])


def limit_volume_element(
    x,
    activation: str | Callable = "erf",
    sigma_w: float = 1.0,
    sigma_b: float = 1.0,
    *,
    log: bool = False,
    n_quadrature: int = 96,
) -> np.ndarray:
    """Infinite-width volume element ``sqrt(det g) = A^{(d-1)/2} sqrt(A + B r^2)``.

    Parameters
    ----------
    x, activation, sigma_w, sigma_b, n_quadrature
        As in :func:`metric`.
    log : bool
        Return the natural log instead (default False here: the check values are ``sqrt(det g)``).

    Returns
    -------
    ndarray of shape (B,), float64

    Examples
    --------
    >>> import torch
    >>> limit_volume_element(torch.tensor([[0.0, 0.0], [0.7, 0.0], [0.0, 2.0]])).round(4)
    array([0.3676, 0.277 , 0.1002])
    >>> limit_volume_element(torch.zeros(1, 5)).round(4)
    array([0.0819])
    """
    x = _check(x, activation, sigma_w, sigma_b, n_quadrature, "limit_volume_element")
    r2 = (x * x).sum(-1)
    A, B = _coefficients(r2, activation, sigma_w, sigma_b, n_quadrature)
    d = x.shape[1]
    log_vol = 0.5 * (d - 1) * torch.log(A) + 0.5 * torch.log(A + B * r2)
    return to_numpy(log_vol if log else torch.exp(log_vol))


def limit_scalar_curvature(
    x,
    activation: str | Callable = "erf",
    sigma_w: float = 1.0,
    sigma_b: float = 1.0,
    *,
    n_quadrature: int = 96,
) -> np.ndarray:
    """Infinite-width scalar curvature ``R = 2K`` for 2-D inputs (unit sphere: R = +2).

    Parameters
    ----------
    x : Tensor or ndarray of shape (B, 2)
        Points.
    activation, sigma_w, sigma_b, n_quadrature
        As in :func:`metric`; the activation must be three times differentiable (ReLU gives 0).

    Returns
    -------
    R : ndarray of shape (B,), float64

    Notes
    -----
    Brioschi's formula on :func:`metric` with autodiff derivatives
    (:func:`netatlas.metric.scalar_curvature_from_metric`); for erf it equals the closed form
    ``R = -2 pi sigma_w^2 r^2 / ((1 + 2 sigma_b^2) sqrt(1 + 2 sigma_b^2 + 2 sigma_w^2 r^2))``.

    Examples
    --------
    >>> import torch
    >>> limit_scalar_curvature(torch.tensor([[0.5, 0.0], [1.0, 0.0], [0.0, 2.0], [4.0, 0.0]])).round(4)
    array([-0.2799, -0.9366, -2.5259, -5.6643])
    """
    x = _check(x, activation, sigma_w, sigma_b, n_quadrature, "limit_scalar_curvature")
    if x.shape[1] != 2:
        raise ValueError(f"infinite_width.limit_scalar_curvature: needs 2-D inputs; got d={x.shape[1]}")
    if activation == "relu":
        return np.zeros(x.shape[0], dtype=np.float64)

    def g(points):
        A, B = _coefficients((points * points).sum(-1), activation, sigma_w, sigma_b, n_quadrature)
        eye = torch.eye(2, dtype=points.dtype)
        return A[:, None, None] * eye + B[:, None, None] * points[:, :, None] * points[:, None, :]

    return to_numpy(_curvature_from_metric(g, x))


def random_features(
    n_inputs: int,
    width: int,
    activation: str = "erf",
    sigma_w: float = 1.0,
    sigma_b: float = 1.0,
    *,
    seed: int = 0,
) -> FeatureMap:
    """A finite random network ``Phi(x) = phi(W x + b) / sqrt(width)`` drawn as in this module.

    Use it as ``feature_fn`` for :func:`netatlas.metric.metric` to compare with the infinite-width
    limit (the closed-form shallow Jacobian is used, so widths of 10^5 are cheap).

    Parameters
    ----------
    n_inputs, width : int
        d and n.
    activation : str
        ``"erf"`` (``erf(z/sqrt 2)``) or an activation of the netatlas IR (relu, tanh, sigmoid, gelu, ...).
    sigma_w, sigma_b : float
        Standard deviations of weights and biases.
    seed : int
        Seeds a private generator.

    Returns
    -------
    FeatureMap

    Examples
    --------
    >>> import numpy as np, torch, netatlas
    >>> phi = random_features(2, 20000, seed=0)
    >>> g = netatlas.metric.metric(phi, torch.zeros(1, 2))
    >>> bool(np.allclose(g, limit_metric(torch.zeros(1, 2)), atol=0.01))
    True
    """
    from netatlas.nets import SMOOTH, Activation

    if activation != "erf" and activation not in ("relu", "leaky_relu", "identity", *SMOOTH):
        raise ValueError(
            f"random_features: activation must be 'erf' or an IR activation "
            f"{('relu', 'identity', *SMOOTH)}; got {activation!r}"
        )
    generator = torch.Generator().manual_seed(seed)
    W = torch.randn(width, n_inputs, generator=generator, dtype=torch.float64) * sigma_w
    b = torch.randn(width, generator=generator, dtype=torch.float64) * sigma_b
    if activation == "erf":  # erf((W x + b)/sqrt 2) = IR erf of the rescaled layer
        W, b, act = W / math.sqrt(2), b / math.sqrt(2), Activation("erf")
    else:
        act = Activation(activation, {"negative_slope": 0.01} if activation == "leaky_relu" else {})
    scale = 1 / math.sqrt(width)

    def fn(x):
        return act(x @ W.T + b) * scale

    return FeatureMap(
        fn, (n_inputs,), scale, torch.float64, (W, b, act), f"random {activation} layer, width {width}"
    )


_RENAMED = {"metric": "limit_metric", "volume_element": "limit_volume_element",
            "scalar_curvature": "limit_scalar_curvature"}  # distinct from netatlas.metric's own (issue 25.2)


def __getattr__(name: str):
    """The old names, kept for one release with a DeprecationWarning."""
    if name in _RENAMED:
        from netatlas._deprecate import warn_moved

        warn_moved(f"netatlas.metric.infinite_width.{name}", f"netatlas.metric.infinite_width.{_RENAMED[name]}")
        return globals()[_RENAMED[name]]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
