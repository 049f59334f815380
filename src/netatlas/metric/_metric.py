"""The pullback metric ``g = J^T J`` of a feature map, its volume element and its relatives.

Three different "volumes" live here; each has its own name and they are never mixed:

- :func:`volume_element`: ``sqrt(det g)`` of the full ``d x d`` metric. When the feature dimension
  ``m`` is below the input dimension ``d``, ``det g = 0`` exactly and it says so (a warning).
- :func:`pseudo_volume_element`: ``sqrt`` of the pseudo-determinant of ``g`` (product of its non-zero
  eigenvalues), computed from the smaller Gram matrix (``J J^T``, ``m x m``, when ``m < d``; the
  ``d x d`` metric is never formed then).
- :func:`effective_volume`: the paper's ``sum_{i<=k} log10 sigma_i(J / sqrt(m))`` for image models.

A 2-D slice of input space has its own ``2 x 2`` metric ``U^T J^T J U`` (:func:`plane_metric`), which is
a fourth, different quantity: the metric the plane inherits.

# NOTE [forward or reverse mode]
J has m rows and d columns. Forward mode costs d Jacobian-vector products per point (one per input
direction), reverse mode m vector-Jacobian products; ``mode="auto"`` takes the cheaper (forward when
d <= m). Either is batched over points with ``torch.func.vmap``. When the features are one layer
``Phi(x) = c * phi(W x + b)`` the Jacobian is ``c * diag(phi'(z)) W`` and no autodiff runs at all.

# NOTE [saturated nets]
For a netatlas Net (or a torch module imported into one) every volume below is computed in log space
(:mod:`netatlas.metric._logvol`): stable ``log |phi'(z)|`` per activation and a log-scaled, re-orthonormalised
propagation of the Jacobian, so the values stay finite and accurate where ``sigmoid'(z)`` underflows or
``det(J J^T)`` is below 1e-308. ``-inf`` then means J is rank-deficient in exact arithmetic (dead ReLU
units, a layer narrower than ``min(m, d)``); points where precision may still be lost get a warning with
their count. Plain callables and modules that cannot be imported use autodiff and the Gram route below
(``nn.Sequential`` models import automatically; import any other module once with
``netatlas.nets.from_torch(model, input_shape=...)`` and pass the Net to get the log-space route).

# NOTE [log-determinants]
Batched float64 ``torch.linalg.slogdet`` returned wrong values on some CPUs (oneMKL pivoting bug,
pytorch issue 142815), so log-determinants of the PSD Gram matrices here use a batched Cholesky
factorisation (no pivoting) with a per-matrix ``eigvalsh`` fallback, and ``2 x 2`` ones the closed
form ``g11 g22 - g12^2``.
"""

from __future__ import annotations

import math
import warnings
from typing import Literal

import numpy as np
import torch

from netatlas._checks import require_finite
from netatlas._deprecate import renamed
from netatlas.metric import _logvol
from netatlas.metric._features import FeatureMap, as_feature_map
from netatlas.nets import Net

__all__ = [
    "jacobian",
    "metric",
    "volume_element",
    "pseudo_volume_element",
    "effective_volume",
    "plane_metric",
    "plane_volume_element",
    "RANK_TOLERANCE",
]

# Eigenvalues of a Gram matrix below RANK_TOLERANCE[dtype] * (largest eigenvalue) count as zero in
# pseudo-determinants (the relative round-off of a Gram matrix is ~ machine epsilon).
RANK_TOLERANCE = {torch.float64: 1e-12, torch.float32: 1e-5}

# A singular value sigma_i computed by an SVD of J has absolute error ~ eps * sigma_1; below
# _SVD_RELIABLE * sigma_1 its relative error may exceed ~1e-8 and the point is reported.
_SVD_RELIABLE = 1e-7

# Default bound on the number of Jacobian entries held at once (float64: 8 bytes each).
_MAX_ENTRIES = 2**24

_MODES = ("auto", "forward", "reverse")


# -- input handling --------------------------------------------------------------------------------
def _net_of(feature_fn):
    if isinstance(feature_fn, Net):
        return feature_fn
    if isinstance(feature_fn, tuple) and len(feature_fn) == 2 and isinstance(feature_fn[0], Net):
        return feature_fn[0]
    if isinstance(feature_fn, FeatureMap):
        return feature_fn
    module = feature_fn[0] if isinstance(feature_fn, tuple) and len(feature_fn) == 2 else feature_fn
    if isinstance(module, torch.nn.Sequential) and len(module) and isinstance(module[0], torch.nn.Linear):
        return _InputShape((module[0].in_features,))  # a wrong width is then reported, not a matmul error
    return None


class _InputShape:
    def __init__(self, input_shape):
        self.input_shape = input_shape


def _prepare(feature_fn, x, caller, scale_by_width=None):
    """Validate x, resolve the feature map; returns (FeatureMap, x flattened (B, d))."""
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(np.ascontiguousarray(x))
    if not isinstance(x, torch.Tensor):
        raise TypeError(
            f"{caller}: x must be a torch.Tensor or numpy.ndarray of shape (B, *input_shape); got "
            f"{type(x).__name__}"
        )
    if not x.is_floating_point():
        x = x.to(torch.float64)
    known = _net_of(feature_fn)
    if known is not None:
        shape = tuple(known.input_shape)
        n = math.prod(shape)
        if tuple(x.shape) == shape or (x.dim() == 1 and x.shape[0] == n):
            raise ValueError(
                f"{caller}: x has shape {tuple(x.shape)}, a single input; pass a batch "
                f"(B, *{shape}), e.g. x[None]"
            )
        if x.dim() < 2 or math.prod(x.shape[1:]) != n:
            raise ValueError(
                f"{caller}: x has shape {tuple(x.shape)} but the network's inputs have shape "
                f"{shape}; pass (B, *{shape}) or (B, {n})"
            )
    else:
        if x.dim() < 2:
            raise ValueError(
                f"{caller}: x must be a batch of shape (B, *input_shape); got shape "
                f"{tuple(x.shape)} (use x[None] for one point)"
            )
        shape = tuple(x.shape[1:])
    require_finite(x.reshape(x.shape[0], -1) if x.dim() else x, f"{caller}: x (point, coordinate)")
    fm = as_feature_map(feature_fn, shape, scale_by_width=scale_by_width, caller=caller)
    x = x.detach().reshape(x.shape[0], -1)
    if fm.dtype is not None:
        x = x.to(fm.dtype)
    return fm, x


def to_numpy(t: torch.Tensor) -> np.ndarray:
    """The public boundary: results leave the lens as NumPy arrays (torch stays inside)."""
    return t.detach().cpu().numpy()


def _check_mode(mode, caller):
    if mode not in _MODES:
        raise ValueError(f"{caller}: mode must be one of {_MODES}; got {mode!r}")


def _n_features(fm: FeatureMap, x) -> int:
    if fm.shallow is not None:
        return fm.shallow[0].shape[0]
    with torch.no_grad():
        return int(fm.fn(x[:1]).shape[-1])


def _chunks(n_points: int, per_point: int, chunk_size):
    size = chunk_size or max(1, _MAX_ENTRIES // max(per_point, 1))
    for start in range(0, n_points, size):
        yield slice(start, min(start + size, n_points))


def _derivative(act, z):
    """phi'(z) from the stable log form (s (1 - s) rounds sigmoid'(40) to 0; this does not)."""
    log_abs, sign = _logvol.log_derivative(act, z)
    return sign * torch.exp(log_abs)


# -- Jacobians -------------------------------------------------------------------------------------
def _shallow_jacobian(fm: FeatureMap, x):
    W, b, act = fm.shallow
    W = W.to(x.dtype)
    z = x @ W.T + b.to(x.dtype)
    return fm.scale * _derivative(act, z)[:, :, None] * W  # (B, m, d): J = c diag(phi'(z)) W


def _autodiff_jacobian(fm: FeatureMap, x, mode):
    def one(point):  # (d,) -> (m,)
        return fm.fn(point[None])[0]

    jac = torch.func.jacfwd(one) if mode == "forward" else torch.func.jacrev(one)
    return torch.func.vmap(jac)(x)


def _pick_mode(mode, m, d):
    if mode == "auto":
        return "forward" if d <= m else "reverse"
    return mode


def _jacobian_chunks(fm, x, mode, chunk_size):
    """Yield (slice, J chunk (b, m, d))."""
    m, d = _n_features(fm, x), x.shape[1]
    mode = _pick_mode(mode, m, d)
    per_point = m * d
    if fm.shallow is None and fm.n_intermediate is not None:
        # vmap over min(m, d) JVPs/VJPs keeps that many copies of the forward pass's values
        per_point = max(per_point, min(m, d) * fm.n_intermediate)
    for part in _chunks(x.shape[0], per_point, chunk_size):
        if fm.shallow is not None:
            yield part, _shallow_jacobian(fm, x[part])
        elif fm.net is not None:  # no autodiff: stable derivatives (NOTE [log-space propagation])
            s, V, _ = _logvol.scaled_jacobian(fm.net, x[part])
            yield part, torch.exp(s + math.log(fm.scale))[:, None, None] * V
        else:
            yield part, _autodiff_jacobian(fm, x[part], mode)


@renamed(feature_fn="net", x="points")
def jacobian(
    net,
    points,
    *,
    mode: Literal["auto", "forward", "reverse"] = "auto",
    scale_by_width: bool | None = None,
    chunk_size: int | None = None,
) -> np.ndarray:
    """Jacobian of the feature map at every point, batched.

    Parameters
    ----------
    net : Net, torch module, callable or (model, layer_name)
        The feature map Phi (see :mod:`netatlas.metric`).
    points : Tensor or ndarray of shape (B, *input_shape)
        Points of input space.
    mode : {"auto", "forward", "reverse"}
        Forward mode (d JVPs per point), reverse mode (m VJPs), or the cheaper of the two.
    scale_by_width : bool, optional
        Scale the features by 1/sqrt(m); default True for (model, layer_name), else False.
    chunk_size : int, optional
        Points per vectorised batch (default: bounded by 2^24 Jacobian entries).

    Returns
    -------
    J : ndarray of shape (B, m, d)
        ``J[b, i, mu] = d Phi_i / d x_mu`` at ``x[b]``, inputs flattened; float64 for Nets and torch
        modules, the input's dtype for plain callables.

    Examples
    --------
    >>> import torch
    >>> J = jacobian(lambda x: torch.stack([x[:, 0] * x[:, 1], x[:, 0]], 1), torch.tensor([[2.0, 3.0]]))
    >>> J                                                  # float32 in, float32 out
    array([[[3., 2.],
            [1., 0.]]], dtype=float32)
    """
    _check_mode(mode, "jacobian")
    fm, points = _prepare(net, points, "jacobian", scale_by_width)
    return to_numpy(torch.cat([J for _, J in _jacobian_chunks(fm, points, mode, chunk_size)], 0))


# -- the metric ------------------------------------------------------------------------------------
def _shallow_metric(fm: FeatureMap, x):
    W, b, act = fm.shallow
    W = W.to(x.dtype)
    n, d = W.shape
    weights = _derivative(act, x @ W.T + b.to(x.dtype)) ** 2 * fm.scale**2  # (B, n)
    # g = c^2 W^T diag(phi'(z)^2) W: one (B, n) x (n, d*d) product when the outer products fit
    if n * d * d <= _MAX_ENTRIES:
        outer = (W[:, :, None] * W[:, None, :]).reshape(n, d * d)
        return (weights @ outer).reshape(-1, d, d)
    return torch.einsum("bn,na,nc->bac", weights, W, W)


def _metric(fm: FeatureMap, x, mode, chunk_size):
    if fm.shallow is not None:
        W = fm.shallow[0]
        per_point = W.shape[0] if W.shape[0] * W.shape[1] ** 2 > _MAX_ENTRIES else W.shape[1] ** 2
        return torch.cat(
            [_shallow_metric(fm, x[part]) for part in _chunks(x.shape[0], per_point, chunk_size)]
        )
    out = torch.empty(x.shape[0], x.shape[1], x.shape[1], dtype=x.dtype)
    for part, J in _jacobian_chunks(fm, x, mode, chunk_size):
        out[part] = J.mT @ J
    return out


@renamed(feature_fn="net", x="points")
def metric(
    net,
    points,
    *,
    mode: Literal["auto", "forward", "reverse"] = "auto",
    scale_by_width: bool | None = None,
    chunk_size: int | None = None,
) -> np.ndarray:
    """The metric ``g(x) = J(x)^T J(x)`` that the feature map induces on input space.

    Parameters
    ----------
    net : Net, torch module, callable or (model, layer_name)
        The feature map Phi: R^d -> R^m. For ``(model, layer_name)`` the features are the layer's
        output scaled by ``1/sqrt(width)`` (the paper's ``Phi = n^{-1/2} phi``) unless
        ``scale_by_width=False``.
    points : Tensor or ndarray of shape (B, *input_shape)
        Points of input space.
    mode : {"auto", "forward", "reverse"}
        How J is computed (see NOTE [forward or reverse mode]); the values do not depend on it.
    scale_by_width : bool, optional
        See :func:`jacobian`.
    chunk_size : int, optional
        Points per vectorised batch.

    Returns
    -------
    g : ndarray of shape (B, d, d)
        Symmetric positive semi-definite; rank <= min(m, d).

    Notes
    -----
    ``g_{mu nu}(x) = sum_i d_mu Phi_i(x) d_nu Phi_i(x)``. When the features are one layer
    ``c phi(W x + b)`` the closed form ``g = c^2 W^T diag(phi'(W x + b)^2) W`` is used.

    References
    ----------
    Zavatone-Veth, Yang, Rubinfien, Pehlevan (2023), "Neural networks learn to magnify areas near
    decision boundaries".

    Examples
    --------
    >>> import numpy as np, torch
    >>> layer = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Tanh())
    >>> g = metric((layer, "1"), torch.zeros(4, 2))        # features tanh(Wx + b) / sqrt(3)
    >>> g.shape, g.dtype, bool(np.allclose(g, g.transpose(0, 2, 1)))
    ((4, 2, 2), dtype('float64'), True)
    """
    _check_mode(mode, "metric")
    fm, points = _prepare(net, points, "metric", scale_by_width)
    return to_numpy(_metric(fm, points, mode, chunk_size))


# -- log-space route for Nets (NOTE [log-space propagation] in _logvol) -----------------------------
def _net_chunks(fm: FeatureMap, x, chunk_size):
    """Point slices for the log-space route: bounded by k x (widest node) x 2 entries per point."""
    k = min(fm.net.n_outputs, fm.net.n_inputs)
    widest = max(node.size for node in fm.net.nodes)
    return _chunks(x.shape[0], 2 * k * widest, chunk_size)


def _warn_lost(caller, lost: torch.Tensor, what: str) -> None:
    n = int(lost.sum())
    if n:
        warnings.warn(
            f"{caller}: precision may be lost at {n} of {lost.numel()} points ({what}); their values are "
            "the best float64 estimate, not guaranteed to 1e-8",
            stacklevel=3,
        )


def _log_full_volume(fm: FeatureMap, x, chunk_size, caller):
    """Natural log of prod_{i <= min(m, d)} sigma_i(scale * J) at every point, never underflowing."""
    k = min(fm.net.n_outputs, fm.net.n_inputs)
    out = torch.full((x.shape[0],), -math.inf, dtype=torch.float64)
    lost = torch.zeros(x.shape[0], dtype=torch.bool)
    rank = torch.empty(x.shape[0], dtype=torch.long)
    for part in _net_chunks(fm, x, chunk_size):
        # rank J <= the structural bound (one forward pass): below k the product is exactly 0, so the
        # costly log-space propagation runs only where it can be non-zero
        rank[part] = _logvol.structural_rank(fm.net, x[part])
        full = rank[part] == k
        if full.any():
            result = _logvol.log_volume(fm.net, x[part][full])
            value, flags = out[part], lost[part]
            value[full], flags[full] = result.value + k * math.log(fm.scale), result.lost
            out[part], lost[part] = value, flags
    _warn_rank_deficient(caller, rank, k)
    _warn_lost(caller, lost, "derivatives beyond float64's range or mixed across residual branches")
    return out


def _structurally_full(fm: FeatureMap, x, k, caller):
    """Boolean (B,): points where the structure allows rank J = k (None: unknown, a non-Net feature map).
    Warns once, with the count, about the others (their volume is exactly 0, log -inf)."""
    if fm.graph is None:
        return None
    rank = torch.cat([_logvol.structural_rank(fm.graph, x[part])
                      for part in _chunks(x.shape[0], fm.n_intermediate or 1, None)])
    _warn_rank_deficient(caller, rank, k, stacklevel=4)
    return rank >= k


def _warn_rank_deficient(caller, rank, k, stacklevel=3):
    """One warning with the count of points where rank J < k is structural (the value is exactly -inf)."""
    deficient = rank < k
    n = int(deficient.sum())
    if not n:
        return
    where = "every point" if n == rank.numel() else f"{n} of {rank.numel()} points"
    warnings.warn(
        f"{caller}: rank J <= {int(rank[deficient].max())} < min(m, d) = {k} at {where} (a layer's width, a "
        "weight's rank or units with zero derivative bound it), so the value there is -inf (not computed); "
        "on a plane the in-plane metric (plane_volume_element) is the quantity that stays finite, at points "
        "k='rank' or pseudo_volume_element",
        stacklevel=stacklevel,
    )


def _log_top_singular_values(fm: FeatureMap, x, k, chunk_size, caller):
    """Natural log of prod_{i <= k} sigma_i(scale * J), k < min(m, d), from an SVD of the log-scaled J."""
    out = torch.empty(x.shape[0], dtype=torch.float64)
    lost = torch.zeros(x.shape[0], dtype=torch.bool)
    for part in _net_chunks(fm, x, chunk_size):
        s, V, lost_part = _logvol.scaled_jacobian(fm.net, x[part])
        sv = torch.linalg.svdvals(V)[:, :k]
        value = torch.log(sv).sum(-1) + k * (s + math.log(fm.scale))
        rank = _logvol.structural_rank(fm.net, x[part])
        exact_zero = rank < k
        out[part] = torch.where(exact_zero, -math.inf, value)
        lost[part] = ~exact_zero & (lost_part | (sv[:, -1] < _SVD_RELIABLE * sv[:, 0]))
    _warn_lost(caller, lost, f"the k-th singular value is below {_SVD_RELIABLE:g} x the largest")
    return out


def _log_rank_volume(fm: FeatureMap, x, tol, chunk_size, caller):
    """Natural log of the product of the non-zero singular values of scale * J.

    The rank comes from structure (:func:`_logvol.structural_rank`: widths, weight ranks, active units);
    where it is full the log-space determinant is exact; elsewhere the singular values above
    ``tol * sigma_1`` are summed, and points where fewer than the structural rank are above it are
    reported (genuine small singular values may be dropped there)."""
    n_sv = min(fm.net.n_outputs, fm.net.n_inputs)
    out = torch.empty(x.shape[0], dtype=torch.float64)
    lost = torch.zeros(x.shape[0], dtype=torch.bool)
    dropped = torch.zeros(x.shape[0], dtype=torch.bool)
    for part in _net_chunks(fm, x, chunk_size):
        xp = x[part]
        rank = _logvol.structural_rank(fm.net, xp)
        full = rank == n_sv
        value = torch.empty(xp.shape[0], dtype=torch.float64)
        lost_part = torch.zeros(xp.shape[0], dtype=torch.bool)
        if full.any():
            result = _logvol.log_volume(fm.net, xp[full])
            value[full] = result.value + n_sv * math.log(fm.scale)
            lost_part[full] = result.lost
        if (~full).any():
            s, V, lost_rest = _logvol.scaled_jacobian(fm.net, xp[~full])
            sv = torch.linalg.svdvals(V)
            numeric = (sv > tol * sv[:, :1]).sum(-1)
            r = torch.minimum(numeric, rank[~full])
            keep = torch.arange(sv.shape[1])[None, :] < r[:, None]
            value[~full] = torch.where(keep, torch.log(sv), 0.0).sum(-1) + r * (s + math.log(fm.scale))
            lost_part[~full] = lost_rest
            sub = dropped[part]
            sub[~full] = numeric < rank[~full]
            dropped[part] = sub
        out[part], lost[part] = value, lost_part
    _warn_lost(caller, lost, "derivatives beyond float64's range or mixed across residual branches")
    n = int(dropped.sum())
    if n:
        warnings.warn(
            f"{caller}: at {n} of {x.shape[0]} points fewer singular values exceed {tol:g} x the largest than "
            "the structural rank (widths, weight ranks, active units) allows; genuine small singular values "
            "may be dropped there (pass an int k for a fixed count)",
            stacklevel=3,
        )
    return out


# -- determinants ----------------------------------------------------------------------------------
def _logdet_psd(G: torch.Tensor) -> torch.Tensor:
    """log det of a batch of symmetric PSD matrices (B, k, k) -> (B,); -inf where singular."""
    k = G.shape[-1]
    if k == 1:
        return torch.log(G[:, 0, 0].clamp_min(0))
    if k == 2:
        det = G[:, 0, 0] * G[:, 1, 1] - G[:, 0, 1] * G[:, 1, 0]
        return torch.log(det.clamp_min(0))
    L, info = torch.linalg.cholesky_ex(G)
    out = 2 * torch.log(torch.diagonal(L, dim1=-2, dim2=-1)).sum(-1)
    failed = (info != 0).nonzero().flatten()
    if len(failed):  # not numerically positive definite: eigenvalues decide
        ev = torch.linalg.eigvalsh(G[failed])
        out[failed] = torch.where(
            (ev > 0).all(-1), torch.log(ev.clamp_min(1e-300)).sum(-1), torch.tensor(-math.inf, dtype=G.dtype)
        )
    return out


def _gram_log_volume(fm, x, mode, chunk_size, k, caller):
    """0.5 log det of the smaller Gram matrix at every point; -inf without computing it where the structure
    bounds rank J below k (one forward pass decides)."""
    out = torch.full((x.shape[0],), -math.inf, dtype=x.dtype)
    full = _structurally_full(fm, x, k, caller)
    index = torch.arange(x.shape[0]) if full is None else full.nonzero().flatten()
    if not len(index):
        return out
    for part, G in _gram_chunks(fm, x[index], mode, chunk_size):
        out[index[part]] = 0.5 * _logdet_psd(G)
    return out


def _gram_chunks(fm, x, mode, chunk_size):
    """Yield (slice, smaller Gram matrix (b, k, k)): J^T J when d <= m, else J J^T (never d x d)."""
    for part, J in _jacobian_chunks(fm, x, mode, chunk_size):
        yield part, (J.mT @ J if J.shape[2] <= J.shape[1] else J @ J.mT)


@renamed(feature_fn="net", x="points")
def volume_element(
    net,
    points,
    log: bool = True,
    *,
    mode: Literal["auto", "forward", "reverse"] = "auto",
    scale_by_width: bool | None = None,
    chunk_size: int | None = None,
) -> np.ndarray:
    """The Riemannian volume element ``sqrt(det g(x))`` (or its natural log).

    Parameters
    ----------
    net, points, mode, scale_by_width, chunk_size
        As in :func:`metric`.
    log : bool
        Return ``log sqrt(det g) = 0.5 log det g`` (natural log; default) instead of ``sqrt(det g)``.

    Returns
    -------
    ndarray of shape (B,)
        ``-inf`` (log) or ``0`` where g is singular. When the feature dimension m is below the input
        dimension d, g has rank <= m < d and this is ``-inf``/``0`` everywhere, with a warning that points
        to :func:`pseudo_volume_element` and :func:`effective_volume`.

    Notes
    -----
    Nets are handled in log space (NOTE [saturated nets]); other feature maps use Cholesky, with an
    ``eigvalsh`` fallback (see NOTE [log-determinants]).

    Examples
    --------
    >>> import torch
    >>> scaled = lambda x: 3.0 * x                        # g = 9 I, sqrt(det g) = 9 in 2-D
    >>> volume_element(scaled, torch.zeros(2, 2, dtype=torch.float64), log=False)
    array([9., 9.])
    >>> volume_element(lambda x: x[:, :1], torch.zeros(1, 2))   # m = 1 < d = 2: det g = 0
    array([-inf], dtype=float32)
    """
    _check_mode(mode, "volume_element")
    fm, points = _prepare(net, points, "volume_element", scale_by_width)
    m, d = _n_features(fm, points), points.shape[1]
    if m < d:
        warnings.warn(
            f"volume_element: the features have m={m} < d={d} dimensions, so det g = 0; use "
            "pseudo_volume_element (non-zero eigenvalues) or effective_volume instead",
            stacklevel=3,  # the caller of volume_element, past the @renamed wrapper
        )
        out = torch.full((points.shape[0],), -math.inf, dtype=points.dtype)
    elif fm.net is not None:
        out = _log_full_volume(fm, points, chunk_size, "volume_element")
    elif fm.shallow is not None:
        out = 0.5 * _logdet_psd(_metric(fm, points, mode, chunk_size))
    else:
        out = _gram_log_volume(fm, points, mode, chunk_size, d, "volume_element")
    return to_numpy(out if log else torch.exp(out))


@renamed(feature_fn="net", x="points")
def pseudo_volume_element(
    net,
    points,
    log: bool = True,
    *,
    mode: Literal["auto", "forward", "reverse"] = "auto",
    scale_by_width: bool | None = None,
    chunk_size: int | None = None,
    rank_tolerance: float | None = None,
) -> np.ndarray:
    """``sqrt`` of the pseudo-determinant of g: the product of its non-zero eigenvalues.

    The non-zero eigenvalues of ``g = J^T J`` (d x d) are those of ``J J^T`` (m x m), so when m < d only
    the m x m Gram matrix is formed (m VJPs per point). Equals :func:`volume_element` when g has full rank.

    Parameters
    ----------
    net, points, mode, scale_by_width, chunk_size
        As in :func:`metric`.
    log : bool
        Natural log of the result (default).
    rank_tolerance : float, optional
        Eigenvalues below ``rank_tolerance * max eigenvalue`` count as zero (default
        ``RANK_TOLERANCE[dtype]``).

    Returns
    -------
    ndarray of shape (B,)
        ``0.5 * sum(log(nonzero eigenvalues))`` (log) or its exponential; a zero metric (e.g. every
        ReLU unit off) has no non-zero eigenvalue, and the empty product is 1 (log 0).

    Notes
    -----
    For a Net the rank comes from its structure (widths, Linear weight ranks, units with non-zero
    derivative): where that is ``min(m, d)`` the exact log-space determinant is used whatever the spread
    of the eigenvalues; elsewhere eigenvalues below ``rank_tolerance`` are dropped and points where that
    drops more than the structure allows are reported in a warning.

    Examples
    --------
    >>> import torch
    >>> first = lambda x: 2.0 * x[:, :1]                  # J = [2, 0]: g = diag(4, 0), pdet = 4
    >>> pseudo_volume_element(first, torch.zeros(1, 2, dtype=torch.float64), log=False)
    array([2.])
    """
    _check_mode(mode, "pseudo_volume_element")
    fm, points = _prepare(net, points, "pseudo_volume_element", scale_by_width)
    tol = RANK_TOLERANCE.get(points.dtype, 1e-5) if rank_tolerance is None else float(rank_tolerance)
    if fm.net is not None:
        out = _log_rank_volume(fm, points, math.sqrt(tol), chunk_size, "pseudo_volume_element")
        return to_numpy(out if log else torch.exp(out))
    out = torch.empty(points.shape[0], dtype=points.dtype)
    for part, G in _gram_chunks(fm, points, mode, chunk_size):
        ev = torch.linalg.eigvalsh(G)
        keep = ev > tol * ev[:, -1:].clamp_min(0)
        out[part] = 0.5 * torch.where(keep, torch.log(ev.clamp_min(1e-300)), 0.0).sum(-1)
    return to_numpy(out if log else torch.exp(out))


@renamed(feature_fn="net", x="points")
def effective_volume(
    net,
    points,
    *,
    k: int | Literal["rank"] | None = None,
    scale_by_width: bool = True,
    mode: Literal["auto", "forward", "reverse"] = "auto",
    chunk_size: int | None = None,
) -> np.ndarray:
    """The paper's effective volume ``sum_{i<=k} log10 sigma_i(J / sqrt(m))`` (a log10 quantity).

    Parameters
    ----------
    net, points, mode, chunk_size
        As in :func:`metric`.
    k : int or "rank", optional
        Number of largest singular values summed (default all ``min(m, d)``). ``"rank"`` sums, at each
        point, the non-zero singular values: use it when the features factor through a narrower layer
        (e.g. a projector head wider than its encoder's output), where the smallest singular values are
        exactly zero and the default gives ``-inf``. For a Net the rank is its structural rank (see
        :func:`pseudo_volume_element`), so genuine tiny singular values of a saturated net are kept; for
        other feature maps it counts those above ``sqrt(RANK_TOLERANCE[dtype])`` times the largest.
    scale_by_width : bool
        Divide J by sqrt(m) (default True, as the paper does). For ``(model, layer_name)`` this is the
        usual ``1/sqrt(width)`` feature scaling, applied once.

    Returns
    -------
    ndarray of shape (B,)
        With ``k = min(m, d)`` this is ``log10`` of the pseudo volume element (``-inf`` if J is rank
        deficient).

    Notes
    -----
    For a Net, the sum over all ``min(m, d)`` singular values is computed in log space (NOTE [saturated
    nets]) and never underflows; a partial sum (int ``k``) comes from an SVD of the log-scaled Jacobian and
    warns where the k-th singular value is too small relative to the largest to be accurate. For other
    feature maps the singular values are the square roots of the eigenvalues of the smaller Gram matrix
    (``J J^T`` when m < d); with all of them the sum is ``0.5 log10 det(Gram)``, computed by Cholesky.

    Examples
    --------
    >>> import torch
    >>> feats = lambda x: torch.cat([10 * x, x], 1)       # m = 4, J = [10 I; I]: sigma = sqrt(101) twice
    >>> x = torch.zeros(1, 2, dtype=torch.float64)
    >>> effective_volume(feats, x, scale_by_width=False).round(4)
    array([2.0043])
    >>> effective_volume(feats, x, k=1).round(4)          # largest singular value of J / sqrt(4)
    array([0.7011])
    >>> rank_one = lambda x: torch.cat([x[:, :1], 2 * x[:, :1]], 1)   # J has rank 1: sigma = sqrt(5), 0
    >>> effective_volume(rank_one, x, scale_by_width=False)
    array([-inf])
    >>> effective_volume(rank_one, x, scale_by_width=False, k="rank").round(4)   # log10 sqrt(5)
    array([0.3495])
    """
    _check_mode(mode, "effective_volume")
    fm, points = _prepare(net, points, "effective_volume", scale_by_width)
    n_sv = min(_n_features(fm, points), points.shape[1])
    if k is not None and k != "rank" and not (isinstance(k, (int, np.integer)) and 1 <= k):
        raise ValueError(
            f"effective_volume: k must be a positive integer (at most min(m, d) = {n_sv}) or 'rank'; got {k!r}"
        )
    if k != "rank":
        k = n_sv if k is None else min(int(k), n_sv)
    tol = RANK_TOLERANCE.get(points.dtype, 1e-5)
    if fm.net is not None:
        if k == "rank":
            out = _log_rank_volume(fm, points, math.sqrt(tol), chunk_size, "effective_volume")
        elif k == n_sv:
            out = _log_full_volume(fm, points, chunk_size, "effective_volume")
        else:
            out = _log_top_singular_values(fm, points, k, chunk_size, "effective_volume")
        return to_numpy(out / math.log(10))
    if k == n_sv:
        return to_numpy(_gram_log_volume(fm, points, mode, chunk_size, n_sv, "effective_volume") / math.log(10))
    out = torch.empty(points.shape[0], dtype=points.dtype)
    for part, G in _gram_chunks(fm, points, mode, chunk_size):
        if k == "rank":
            # eigenvalues of the Gram matrix are sigma^2; keep those above tol * largest
            ev = torch.linalg.eigvalsh(G)
            keep = ev > tol * ev[:, -1:].clamp_min(torch.finfo(ev.dtype).tiny)
            out[part] = 0.5 * torch.where(keep, torch.log10(ev.clamp_min(torch.finfo(ev.dtype).tiny)), 0.0).sum(-1)
        else:
            ev = torch.linalg.eigvalsh(G)[:, -k:]
            out[part] = 0.5 * torch.log10(ev.clamp_min(0)).sum(-1)
    return to_numpy(out)


# -- slices ----------------------------------------------------------------------------------------
def _plane_points(plane, grid, caller):
    if isinstance(grid, (int, np.integer)):
        if grid < 1:
            raise ValueError(f"{caller}: grid must be a positive number of points per side; got {grid}")
        us, vs = plane.grid(int(grid))
        return np.stack([us.ravel(), vs.ravel()], 1), us.shape
    if isinstance(grid, tuple) and len(grid) == 2 and not np.isscalar(grid[0]):
        us, vs = (np.asarray(g, dtype=np.float64) for g in grid)
        if us.shape != vs.shape:
            raise ValueError(f"{caller}: grid (us, vs) must have one shape; got {us.shape} and {vs.shape}")
        return np.stack([us.ravel(), vs.ravel()], 1), us.shape
    uv = np.asarray(grid.detach().cpu() if isinstance(grid, torch.Tensor) else grid, dtype=np.float64)
    if uv.ndim != 2 or uv.shape[1] != 2:
        raise ValueError(
            f"{caller}: grid must be an int n (an n x n grid), a tuple (us, vs) from plane.grid, "
            f"or plane coordinates of shape (P, 2); got shape {uv.shape}"
        )
    return uv, (uv.shape[0],)


@renamed(feature_fn="net")
def plane_metric(
    net, plane, grid=64, *, scale_by_width: bool | None = None, chunk_size: int | None = None
) -> np.ndarray:
    """The 2 x 2 metric ``U^T J^T J U`` that a plane slice inherits (2 JVPs per point).

    Parameters
    ----------
    net : Net, torch module, callable or (model, layer_name)
        As in :func:`metric`.
    plane : netatlas.Plane
        The slice ``x(u, v) = origin + u d1 + v d2``; ``U = [d1, d2]`` (flattened) as columns.
    grid : int, (us, vs) or array of shape (P, 2)
        ``n`` for ``plane.grid(n)``; a meshgrid ``(us, vs)``; or plane coordinates.
    scale_by_width, chunk_size
        As in :func:`metric`.

    Returns
    -------
    ndarray of shape (*grid_shape, 2, 2)
        ``(n, n, 2, 2)`` for an int (rows follow v, columns u, as ``plane.grid``), ``(P, 2, 2)`` for points.
        Not the full-input metric: this is the metric of the slice, in (u, v) units.

    Examples
    --------
    >>> import torch, netatlas
    >>> plane = netatlas.Plane([0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 2.0, 0.0])
    >>> plane_metric(lambda x: x, plane, 3).shape
    (3, 3, 2, 2)
    >>> plane_metric(lambda x: x, plane, [[0.0, 0.0]])[0]    # U^T U for d1 = e1, d2 = 2 e2
    array([[1., 0.],
           [0., 4.]])
    """
    uv, shape, fm, x, U = _plane_inputs(net, plane, grid, scale_by_width, "plane_metric")
    out = torch.empty(x.shape[0], 2, 2, dtype=x.dtype)
    for part, JU in _plane_jacobian_chunks(fm, x, U, chunk_size):
        out[part] = JU.mT @ JU
    return to_numpy(out.reshape(*shape, 2, 2))


@renamed(feature_fn="net")
def plane_volume_element(
    net,
    plane,
    grid=64,
    log: bool = True,
    *,
    scale_by_width: bool | None = None,
    chunk_size: int | None = None,
) -> np.ndarray:
    """The area element ``sqrt(det(U^T J^T J U))`` of the in-plane metric (or its natural log).

    How much the feature map magnifies area *within* the plane: unlike :func:`volume_element` (the
    ``d``-dimensional volume, zero wherever ``rank J < d``, e.g. always for a layer narrower than the
    input) it is positive wherever ``J d1`` and ``J d2`` are linearly independent. For a piecewise-linear
    net it is constant on each linear region of the slice.

    Parameters
    ----------
    net, plane, grid, scale_by_width, chunk_size
        As in :func:`plane_metric`.
    log : bool
        Return ``log sqrt(det)`` (natural log; default): ``-inf`` where the plane collapses to a line or a
        point.

    Returns
    -------
    ndarray of shape grid_shape
        ``(n, n)`` for an int grid (rows follow v), ``(P,)`` for plane coordinates.

    Notes
    -----
    With ``a = J d1`` and ``b = J d2`` (2 JVPs per point), ``sqrt(det) = sqrt(|a|^2 |b|^2 - (a.b)^2)`` is
    computed as ``|a| |b - (a.b / |a|^2) a|``, which avoids the cancellation of the closed form when
    ``a`` and ``b`` are nearly parallel.

    Examples
    --------
    >>> import torch, netatlas
    >>> plane = netatlas.Plane([0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 2.0, 0.0])
    >>> plane_volume_element(lambda x: 3.0 * x, plane, [[0.0, 0.0]], log=False)   # 3 * 1 * 3 * 2
    array([18.])
    >>> plane_volume_element(lambda x: x[:, :1], plane, [[0.0, 0.0]])   # the plane folds onto a line
    array([-inf])
    """
    uv, shape, fm, x, U = _plane_inputs(net, plane, grid, scale_by_width, "plane_volume_element")
    out = torch.empty(x.shape[0], dtype=x.dtype)
    for part, JU in _plane_jacobian_chunks(fm, x, U, chunk_size):
        out[part] = _log_plane_area(JU)
    out = out.reshape(shape)
    return to_numpy(out if log else torch.exp(out))


def _log_plane_area(JU: torch.Tensor) -> torch.Tensor:
    """``log |a| |b - proj_a b|`` for the columns ``a, b`` of a batch ``(B, m, 2)``: log sqrt det(JU^T JU)."""
    a, b = JU[..., 0], JU[..., 1]
    aa = (a * a).sum(-1)
    proj = (a * b).sum(-1) / torch.where(aa > 0, aa, 1.0)
    perp = b - proj[..., None] * a
    return 0.5 * (torch.log(aa) + torch.log((perp * perp).sum(-1)))


def _plane_inputs(feature_fn, plane, grid, scale_by_width, caller):
    """Checked (uv (P, 2), grid shape, FeatureMap, points (P, d), U (d, 2)) of a plane and grid."""
    from netatlas.slices import Plane

    if not isinstance(plane, Plane):
        raise TypeError(f"{caller}: plane must be a netatlas.Plane; got {type(plane).__name__}")
    uv, shape = _plane_points(plane, grid, caller)
    points = torch.from_numpy(plane.to_input(uv))
    fm, x = _prepare(feature_fn, points, caller, scale_by_width)
    U = torch.from_numpy(plane.basis).to(x.dtype)  # (d, 2)
    return uv, shape, fm, x, U


def _plane_jacobian_chunks(fm, x, U, chunk_size):
    """Yield (slice, J U chunk (b, m, 2))."""
    m = _n_features(fm, x)
    for part in _chunks(x.shape[0], 2 * m, chunk_size):
        yield part, _plane_jacobian(fm, x[part], U)


def _plane_jacobian(fm, x, U):
    if fm.shallow is not None:
        W, b, act = fm.shallow
        W = W.to(x.dtype)
        return fm.scale * _derivative(act, x @ W.T + b.to(x.dtype))[:, :, None] * (W @ U)
    # The features of one point depend on that point only, so one batched JVP along a direction
    # gives J u at every point at once: 2 JVPs in all.
    columns = [torch.func.jvp(fm.fn, (x,), (U[:, i].expand_as(x),))[1] for i in range(2)]
    return torch.stack(columns, -1)
