"""Loss surface of a shallow univariate ReLU net under the squared loss: exact gradients, dense Hessians
(network and spline coordinates), eigen-spectra with a spectral-gap rank rule, critical points.

# NOTE [loss surface]
    L = 1/2 sum_n r_n^2, r_n = f(x_n) - y_n (``reduction="mean"`` divides by n).

    Network coordinates theta = (w, b, v, c), 3H + 1 numbers, a_ni = 1{w_i x_n + b_i > 0}:
        df_n/dw_i = v_i a_ni x_n,  df_n/db_i = v_i a_ni,  df_n/dv_i = relu(w_i x_n + b_i),  df_n/dc = 1,
        and the only non-zero second derivatives (relu'' = 0 off the kinks) are
        d2f_n/dw_i dv_i = a_ni x_n,  d2f_n/db_i dv_i = a_ni.
    Spline coordinates theta = (beta, mu, offset), 2H + 1 numbers, orientations s fixed,
    A_i = {n : s_i (x_n - beta_i) > 0}:
        df_n/dbeta_i = -mu_i s_i 1{n in A_i},  df_n/dmu_i = relu(s_i (x_n - beta_i)),  df_n/doffset = 1,
        d2f_n/dbeta_i dmu_i = -s_i 1{n in A_i}.
    In both, grad L = J^T r and Hess L = J^T J + sum_n r_n Hess f_n. A data point exactly on a kink
    counts as inactive (relu'(0) = 0, as in torch).

# NOTE [critical points]
    At a critical point the (beta_i, mu_i) block of a neuron with mu_i = 0 is
    [[0, -s_i R_i], [-s_i R_i, sum_{A_i} (x_n - beta_i)^2]], R_i = sum_{A_i} r_n, and the beta_i row has
    no other entry (the beta_i column of J is mu_i times something). If R_i != 0, a congruence splits
    off [[0, a], [a, 0]]: one negative and one positive eigenvalue per such "saddle neuron". Every other
    neuron is critical with R_i = 0 (mu_i != 0) or contributes no cross term, so the rest of the
    Hessian is J_rest^T J_rest, whose rank is that of the class basis
    {1} u {1_A, x 1_A : occupied activation classes A} (neurons with the same activation set A on the
    data - same gap between data points, same orientation - span at most these 2 functions).
    Predicted: n_negative = n_saddle, n_positive = n_saddle + rank_rest,
    n_zero = (2H + 1) - 2 n_saddle - rank_rest in spline coordinates. theta_net -> theta_spline is a
    submersion when every w_i != 0 (H-dimensional fibres: per-neuron rescaling), and at a critical
    point Hess_net = D^T Hess_spline D, so network coordinates have the same numbers of positive and
    negative eigenvalues and exactly H more zeros.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from netatlas._deprecate import renamed
from netatlas.splines._params import ShallowParams
from netatlas.splines._spline import Spline, as_params, to_network, to_spline

__all__ = ["loss_value", "loss_gradient", "loss_hessian", "loss_jacobian", "HessianSpectrum",
           "hessian_spectrum", "CriticalPoint", "classify_critical_point", "neuron_block",
           "MIN_GAP_DECADES", "interpolating_minimum"]

# A spectral gap of at least this many decades separates numerically-zero eigenvalues from the rest.
MIN_GAP_DECADES = 4.0
# Eigenvalues below this fraction of the largest are candidates for zero (float64 round-off is ~1e-15).
ZERO_CANDIDATE_REL = 1e-7

Coords = Literal["network", "spline"]


def _data(x, y, caller):
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    if x.shape != y.shape:
        raise ValueError(f"{caller}: x and y must have the same number of points; got {x.size} and {y.size}")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ValueError(f"{caller}: x and y must be finite")
    return x, y


def _point(model_or_spline, coords, caller):
    if coords not in ("network", "spline"):
        raise ValueError(f"{caller}: coords must be 'network' or 'spline'; got {coords!r}")
    if coords == "spline":
        return to_spline(model_or_spline)
    if isinstance(model_or_spline, Spline):
        return to_network(model_or_spline, output="params")
    return as_params(model_or_spline, caller=caller)


def _network_parts(p: ShallowParams, x):
    z = np.multiply.outer(x, p.w) + p.b  # (n, H)
    active = (z > 0).astype(np.float64)
    relu = np.maximum(z, 0.0)
    jac = np.concatenate([active * p.v * x[:, None], active * p.v, relu, np.ones((x.size, 1))], axis=1)
    return jac, relu @ p.v + p.c, active


def _spline_parts(s: Spline, x):
    finite = s.finite
    beta = np.where(finite, s.breakpoints, 0.0)
    u = s.orientations * (x[:, None] - beta)
    active = ((u > 0) & finite).astype(np.float64)
    relu = np.where(finite, np.maximum(u, 0.0), 0.0)
    jac = np.concatenate([-active * (s.delta_slopes * s.orientations), relu, np.ones((x.size, 1))], axis=1)
    return jac, relu @ s.delta_slopes + s.offset, active


def _parts(point, x):
    return _spline_parts(point, x) if isinstance(point, Spline) else _network_parts(point, x)


@renamed(model_or_spline="net")
def loss_jacobian(net, x, *, coords: Coords = "network") -> np.ndarray:
    """J_nk = d f(x_n) / d theta_k, shape (n, 3H + 1) (network) or (n, 2H + 1) (spline)."""
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    return _parts(_point(net, coords, "loss_jacobian"), x)[0]


@renamed(model_or_spline="net")
def loss_value(net, x, y, *, reduction: Literal["sum", "mean"] = "sum") -> float:
    """L = 1/2 sum_n (f(x_n) - y_n)^2 (``reduction="mean"``: divided by n)."""
    x, y = _data(x, y, "loss_value")
    r = to_spline(net)(x) - y
    return float(0.5 * r @ r / (x.size if reduction == "mean" else 1))


@renamed(model_or_spline="net")
def loss_gradient(net, x, y, *, coords: Coords = "network",
                  reduction: Literal["sum", "mean"] = "sum") -> np.ndarray:
    """Exact gradient of the squared loss, float64 (NOTE [loss surface]).

    Parameters
    ----------
    net : nn.Module, Net, ShallowParams, tuple, dict or Spline
    x, y : array_like of shape (n,)
        Training inputs and targets.
    coords : {"network", "spline"}
        ``network``: (w, b, v, c), shape (3H + 1,); ``spline``: (breakpoints, delta_slopes, offset),
        shape (2H + 1,), orientations fixed. A Spline given with coords="network" is converted with
        ``to_network(spline)`` (alpha_i = 1).

    Examples
    --------
    >>> s = Spline([0.0], [1.0], [1], 0.0)
    >>> loss_gradient(s, [1.0, 2.0], [0.0, 0.0], coords="spline").tolist()  # r = (1, 2)
    [-3.0, 5.0, 3.0]
    """
    x, y = _data(x, y, "loss_gradient")
    jac, f, _ = _parts(_point(net, coords, "loss_gradient"), x)
    return jac.T @ (f - y) / (x.size if reduction == "mean" else 1)


@renamed(model_or_spline="net")
def loss_hessian(net, x, y, *, coords: Coords = "network",
                 reduction: Literal["sum", "mean"] = "sum") -> np.ndarray:
    """Exact dense Hessian of the squared loss, float64, shape (P, P) with P = 3H + 1 or 2H + 1.

    Parameters are as for :func:`loss_gradient`; the closed form is in NOTE [loss surface].

    Examples
    --------
    >>> s = Spline([0.0], [0.0], [1], 0.0)  # mu = 0 neuron, residual r = (0, -1) at x = (-1, 1)
    >>> loss_hessian(s, [-1.0, 1.0], [0.0, 1.0], coords="spline").tolist()
    [[0.0, 1.0, 0.0], [1.0, 1.0, 1.0], [0.0, 1.0, 2.0]]
    """
    x, y = _data(x, y, "loss_hessian")
    point = _point(net, coords, "loss_hessian")
    jac, f, active = _parts(point, x)
    r = f - y
    hess = jac.T @ jac
    h = active.shape[1]
    idx = np.arange(h)
    if isinstance(point, Spline):
        cross = -point.orientations * (r @ active)  # d2L / dbeta_i dmu_i
        hess[idx, h + idx] += cross
        hess[h + idx, idx] += cross
    else:
        cross_w, cross_b = (r * x) @ active, r @ active  # d2L/dw_i dv_i, d2L/db_i dv_i
        hess[idx, 2 * h + idx] += cross_w
        hess[2 * h + idx, idx] += cross_w
        hess[h + idx, 2 * h + idx] += cross_b
        hess[2 * h + idx, h + idx] += cross_b
    return hess / (x.size if reduction == "mean" else 1)


@dataclass(frozen=True)
class HessianSpectrum:
    """Eigenvalues (ascending, shape (P,)) and the counts a spectral-gap rank rule gives.

    ``rank`` eigenvalues (largest |lambda|) are non-zero; ``gap_decades`` is log10 of the ratio across
    the gap used (magnitudes clipped below at eps P |lambda|_max; 0 if no gap: full rank or all zero);
    ``threshold`` the |lambda| below which eigenvalues count as zero.
    """

    eigenvalues: np.ndarray
    rank: int
    n_positive: int
    n_negative: int
    n_zero: int
    gap_decades: float
    threshold: float

    def to_dict(self) -> dict:
        return {"eigenvalues": self.eigenvalues.tolist(), "rank": self.rank, "n_positive": self.n_positive,
                "n_negative": self.n_negative, "n_zero": self.n_zero, "gap_decades": self.gap_decades,
                "threshold": self.threshold}


def hessian_spectrum(hessian, *, min_gap_decades: float = MIN_GAP_DECADES) -> HessianSpectrum:
    """Eigen-spectrum of a symmetric matrix with a spectral-gap rank rule.

    Sort |lambda| decreasingly; among the gaps whose lower side is below ``ZERO_CANDIDATE_REL`` times the
    largest, take the widest (in log10); if it spans at least ``min_gap_decades`` decades, everything
    below it is zero, otherwise nothing is. (A fixed relative cut-off misclassifies small but genuine
    eigenvalues; float64 round-off sits ~8 decades below the smallest of those in our examples.)

    Examples
    --------
    >>> spec = hessian_spectrum(np.diag([3.0, 1e-6, 1e-18, 0.0, -2.0]))
    >>> spec.rank, spec.n_positive, spec.n_negative, spec.n_zero
    (3, 2, 1, 2)
    """
    hessian = np.asarray(hessian, dtype=np.float64)
    if hessian.ndim != 2 or hessian.shape[0] != hessian.shape[1]:
        raise ValueError(f"hessian_spectrum: expected a square matrix; got shape {hessian.shape}")
    eigenvalues = np.linalg.eigvalsh(0.5 * (hessian + hessian.T))
    size = eigenvalues.size
    mags = np.sort(np.abs(eigenvalues))[::-1]
    top = mags[0] if size else 0.0
    if top == 0.0:
        return HessianSpectrum(eigenvalues, 0, 0, 0, size, 0.0, 0.0)
    # below the round-off level eps * P * |lambda|_max eigenvalues are indistinguishable from 0: clip
    # them there, so that exact zeros and round-off zeros form one cluster with no gaps inside
    logs = np.log10(np.maximum(mags, np.finfo(np.float64).eps * size * top))
    gaps = logs[:-1] - logs[1:]
    candidate = mags[1:] <= ZERO_CANDIDATE_REL * top
    rank, gap = size, 0.0
    if candidate.any():
        k = int(np.argmax(np.where(candidate, gaps, -1.0)))
        if gaps[k] >= min_gap_decades:
            rank, gap = k + 1, float(gaps[k])
    threshold = float(mags[rank - 1]) if rank < size else 0.0
    nonzero = np.abs(eigenvalues) >= (mags[rank - 1] if rank else np.inf)
    return HessianSpectrum(eigenvalues, rank, int(np.sum(nonzero & (eigenvalues > 0))),
                           int(np.sum(nonzero & (eigenvalues < 0))), size - rank, gap, threshold)


@renamed(model_or_spline="net")
def neuron_block(net, x, y, neuron: int) -> np.ndarray:
    """Closed-form (beta_i, mu_i) 2x2 block of the spline-coordinate Hessian:
    [[mu^2 |A|, -mu sum_A (x - beta) - s R], [., sum_A (x - beta)^2]], R = sum_A r_n; at mu_i = 0
    this is the saddle block [[0, -s R], [-s R, sum_A (x - beta)^2]].

    Examples
    --------
    >>> neuron_block(Spline([0.0], [0.0], [1], 0.0), [-1.0, 1.0], [0.0, 1.0], 0).tolist()
    [[0.0, 1.0], [1.0, 1.0]]
    """
    x, y = _data(x, y, "neuron_block")
    s = to_spline(net)
    if not 0 <= neuron < s.width:
        raise ValueError(f"neuron_block: neuron must be in [0, {s.width}); got {neuron}")
    beta, mu, sign = s.breakpoints[neuron], s.delta_slopes[neuron], s.orientations[neuron]
    inside = sign * (x - beta) > 0
    r = s(x) - y
    d = x[inside] - beta
    off = -mu * d.sum() - sign * r[inside].sum()
    return np.array([[mu ** 2 * inside.sum(), off], [off, d @ d]])


@dataclass(frozen=True)
class CriticalPoint:
    """What kind of point of the loss surface a network is, with the counts predicted from its structure.

    ``kind`` is "minimum" (no negative eigenvalue; flat directions allowed), "saddle" or "not critical".
    ``spectrum`` is the Hessian's in ``coords``. Neuron sets are index arrays: ``dead_neurons`` (no data
    on the active side), ``saddle_neurons`` (mu_i = 0 with R_i != 0). ``n_classes`` occupied activation
    classes (data-gap, orientation), ``predicted_*`` per NOTE [critical points] (None if not critical,
    or in network coordinates with some w_i = 0).
    """

    kind: str
    coords: str
    loss: float
    grad_norm: float
    spectrum: HessianSpectrum
    dead_neurons: np.ndarray
    saddle_neurons: np.ndarray
    n_classes: int
    rank_bound: int
    predicted_rank: int | None
    predicted_n_positive: int | None
    predicted_n_negative: int | None
    predicted_n_zero: int | None

    @property
    def matches_prediction(self) -> bool:
        s = self.spectrum
        return (self.predicted_rank is not None and (s.n_positive, s.n_negative, s.n_zero) == (
            self.predicted_n_positive, self.predicted_n_negative, self.predicted_n_zero))

    def to_dict(self) -> dict:
        out = {k: getattr(self, k) for k in ("kind", "coords", "loss", "grad_norm", "n_classes", "rank_bound",
                                             "predicted_rank", "predicted_n_positive", "predicted_n_negative",
                                             "predicted_n_zero")}
        spec = self.spectrum.to_dict()
        spec.pop("eigenvalues")
        out.update(spectrum=spec, dead_neurons=self.dead_neurons.tolist(),
                   saddle_neurons=self.saddle_neurons.tolist(), matches_prediction=self.matches_prediction)
        return out


@renamed(model_or_spline="net")
def classify_critical_point(net, x, y, *, coords: Coords = "spline", grad_tol: float = 1e-9,
                            mu_tol: float = 1e-12, min_gap_decades: float = MIN_GAP_DECADES) -> CriticalPoint:
    """Classify a point of the squared-loss surface and predict its Hessian's inertia from the data.

    Parameters
    ----------
    net : nn.Module, Net, ShallowParams, tuple, dict or Spline
    x, y : array_like of shape (n,)
    coords : {"spline", "network"}
        Coordinates of the Hessian whose spectrum is counted.
    grad_tol : float
        Critical if |grad L| <= grad_tol * (1 + |J| |r|) (Frobenius and Euclidean norms).
    mu_tol : float
        |mu_i| <= mu_tol * max(1, max |mu|) counts as mu_i = 0.

    Examples
    --------
    >>> x = np.array([-1.0, 0.0, 1.0]); y = np.array([1.0, 0.0, 1.0])
    >>> cp = classify_critical_point(Spline([0.0, 0.0], [1.0, 1.0], [1, -1], 0.0), x, y)
    >>> cp.kind, cp.spectrum.n_zero, cp.predicted_n_zero
    ('minimum', 2, 2)
    """
    x, y = _data(x, y, "classify_critical_point")
    point = _point(net, coords, "classify_critical_point")
    jac, f, _ = _parts(point, x)
    r = f - y
    grad = jac.T @ r
    grad_norm = float(np.linalg.norm(grad))
    critical = grad_norm <= grad_tol * (1 + np.linalg.norm(jac) * np.linalg.norm(r))
    spectrum = hessian_spectrum(loss_hessian(point, x, y, coords=coords), min_gap_decades=min_gap_decades)
    kind = "not critical" if not critical else ("saddle" if spectrum.n_negative else "minimum")

    s = to_spline(net) if coords == "network" else point
    _, _, active = _spline_parts(s, x)
    on = active.astype(bool)
    dead = np.flatnonzero(~on.any(axis=0))
    mu = s.delta_slopes
    zero_mu = np.abs(mu) <= mu_tol * max(1.0, float(np.max(np.abs(mu), initial=0.0)))
    big_r = r @ active
    scale = 1 + np.abs(r).sum()
    saddle = np.flatnonzero(zero_mu & on.any(axis=0) & (np.abs(big_r) > 1e3 * grad_tol * scale))
    rest = np.setdiff1d(np.flatnonzero(on.any(axis=0)), saddle)
    columns, classes = [np.ones(x.size)], {}
    for i in rest:
        classes.setdefault(on[:, i].tobytes(), []).append(i)
    beta = np.where(s.finite, s.breakpoints, 0.0)
    for members in classes.values():
        ind = on[:, members[0]].astype(np.float64)
        if np.any(~zero_mu[members]):
            columns += [ind, ind * x]
        else:
            columns += [ind * (x - beta[i]) for i in members]
    basis = np.stack(columns, axis=1)
    rank_rest = int(np.linalg.matrix_rank(basis)) if basis.size else 0
    n_params = jac.shape[1]
    n_pos = n_neg = n_zero = predicted_rank = None
    network_ok = coords == "spline" or bool(np.all(point.w != 0))
    if critical and network_ok:
        n_neg, n_pos = saddle.size, saddle.size + rank_rest
        predicted_rank = n_pos + n_neg
        n_zero = n_params - predicted_rank
    return CriticalPoint(kind=kind, coords=coords, loss=float(0.5 * r @ r), grad_norm=grad_norm,
                         spectrum=spectrum, dead_neurons=dead, saddle_neurons=saddle, n_classes=len(classes),
                         rank_bound=min(x.size, 2 * len(classes) + 1) + 2 * saddle.size,
                         predicted_rank=predicted_rank, predicted_n_positive=n_pos,
                         predicted_n_negative=n_neg, predicted_n_zero=n_zero)


def interpolating_minimum(breakpoints, orientations, x, y) -> Spline:
    """The minimum-norm (sum mu^2 + offset^2) spline with the given breakpoints and orientations that
    interpolates (x, y) if it can (least squares otherwise): a global minimum of the loss when it
    interpolates.

    Examples
    --------
    >>> s = interpolating_minimum([-0.5, 0.5], [1, -1], [-1.0, 0.0, 1.0], [0.0, 1.0, 0.0])
    >>> np.round(s([-1.0, 0.0, 1.0]), 12).tolist()
    [0.0, 1.0, 0.0]
    """
    beta = np.asarray(breakpoints, dtype=np.float64).reshape(-1)
    sign = np.asarray(orientations).reshape(-1)
    x, y = _data(x, y, "interpolating_minimum")
    features = np.concatenate([np.maximum(sign * (x[:, None] - beta), 0.0), np.ones((x.size, 1))], axis=1)
    coef = np.linalg.lstsq(features, y, rcond=None)[0]
    return Spline(beta, coef[:-1], sign, coef[-1])
