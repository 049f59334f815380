"""Comparing a trained layer with the theory's optimum: products and subspaces (never single singular
vectors, which are identified only up to an invertible k x k map), losses, H-scores, and the locality
diagnostics that say whether the theory should apply at all."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg

from netatlas.lowrank._dtm import check_joint, check_k, dtm, h_score_population
from netatlas.lowrank._generate import chi2_radius
from netatlas.lowrank._loss import check_y_values, mmse_excess_loss, softmax_excess_loss
from netatlas.lowrank._optimum import (
    _ACTIVATIONS,
    optimal_hidden_layer,
    optimal_mmse_layer,
    optimal_softmax_layer,
)

__all__ = ["LayerComparison", "compare_hidden_layer", "compare_mmse_layer", "compare_softmax_layer",
           "fit_slope", "principal_angles", "relative_error"]


def principal_angles(a, b) -> np.ndarray:
    """Principal angles (degrees, descending) between the column spaces of ``a`` (n, p) and ``b`` (n, q).

    Invariant under a -> a A for invertible A. Uses ``scipy.linalg.subspace_angles``; a rank-deficient
    input contributes fewer angles, padded with 90 to min(p, q) entries.

    >>> principal_angles(np.eye(3)[:, :2], np.eye(3)[:, [1, 2]]).round(6)
    array([90.,  0.])
    >>> principal_angles(np.eye(3)[:, :2] @ [[1.0, 2.0], [0.0, 3.0]], np.eye(3)[:, :2]).round(6)
    array([0., 0.])
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.ndim == 1:
        a = a[:, None]
    if b.ndim == 1:
        b = b[:, None]
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"principal_angles: a and b need the same number of rows, got {a.shape} and "
                         f"{b.shape}")
    n = min(a.shape[1], b.shape[1])
    if not np.any(a) or not np.any(b):
        return np.full(n, 90.0)
    angles = np.degrees(scipy.linalg.subspace_angles(a, b))
    return np.concatenate([angles, np.full(n - angles.size, 90.0)]) if angles.size < n else angles[:n]


def relative_error(estimate, reference) -> float:
    """||estimate - reference||_F / ||reference||_F (inf if the reference is zero and the estimate not).

    >>> relative_error(np.array([1.0, 1.1]), np.array([1.0, 1.0])).__round__(4)
    0.0707
    """
    est = np.asarray(estimate, dtype=np.float64)
    ref = np.asarray(reference, dtype=np.float64)
    num = float(np.linalg.norm(est - ref))
    den = float(np.linalg.norm(ref))
    if den == 0:
        return 0.0 if num == 0 else float("inf")
    return num / den


@dataclass(frozen=True)
class LayerComparison:
    """How a trained layer compares with the theory's optimum.

    Attributes
    ----------
    kind : {"softmax", "mmse", "hidden"}
    k : int
        Number of features (units) of the layer.
    product_error : float
        ||Theta^ - B_k||_F / ||B_k||_F: the trained weighted centred product against the theory's
        rank-k approximation (hidden: the pre-activations Phi1 W^T against the formula's).
    feature_angles : ndarray of shape (k,)
        Principal angles (degrees) between the trained feature subspace and the theory's.
    weight_angles : ndarray of shape (k,)
        The same for the weight subspace (hidden: the logit-deviation row space).
    excess_loss, predicted_excess_loss, excess_loss_ratio : float
        The trained layer's excess loss over the Bayes risk, the theory's minimum, and their ratio.
    h_score, h_score_pair, h_score_max, h_score_ratio : float
        One-sided H-score of the features, two-sided H-score of (features, weights), the maximum
        1/2 sum_{i<=k} sigma_i^2, and h_score / h_score_max.
    bias_error : float
        Size of the bias offset the theory says is zero (softmax: the P_X-mean of the centred logit
        deviation; mmse: E a(X) - E Y; hidden: mean pre-activation - c0), relative to ||B_k||_F.
    eps : float
        ||B~||_F, the root-mean-square chi-square radius of the data.
    chi2_radius : float
        max_x chi-square radius of P_{Y|X=x} from P_Y (data locality).
    model_chi2_radius : float
        max_x chi-square radius of the model's Q_{Y|X=x} from P_Y (model locality; nan for mmse).
    preactivation_spread : float
        max |centred pre-activation| (softmax: centred logit deviation h~; hidden: u - E u).
    gap : float
        Relative singular gap of the theory's matrix after k.
    """

    kind: str
    k: int
    product_error: float
    feature_angles: np.ndarray
    weight_angles: np.ndarray
    excess_loss: float
    predicted_excess_loss: float
    excess_loss_ratio: float
    h_score: float
    h_score_pair: float
    h_score_max: float
    h_score_ratio: float
    bias_error: float
    eps: float
    chi2_radius: float
    model_chi2_radius: float
    preactivation_spread: float
    gap: float

    @property
    def max_feature_angle(self) -> float:
        return float(np.max(self.feature_angles)) if self.feature_angles.size else float("nan")

    @property
    def max_weight_angle(self) -> float:
        return float(np.max(self.weight_angles)) if self.weight_angles.size else float("nan")

    def to_dict(self) -> dict:
        out = {name: getattr(self, name) for name in self.__dataclass_fields__}
        out["feature_angles"] = self.feature_angles.tolist()
        out["weight_angles"] = self.weight_angles.tolist()
        out["max_feature_angle"] = self.max_feature_angle
        out["max_weight_angle"] = self.max_weight_angle
        return out


def _ratio(a, b):
    return float(a / b) if b > 0 else (float("nan") if a == 0 else float("inf"))


def _check_layer(p, features, weights, bias, n_out, caller, *, any_width=False):
    f = np.asarray(features, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    if f.ndim != 2 or f.shape[0] != p.shape[0]:
        raise ValueError(f"{caller}: features must be (|X|, k) = ({p.shape[0]}, k), got shape {f.shape}")
    if w.shape != (n_out, f.shape[1]):
        raise ValueError(f"{caller}: weights must be (n_out, k) = ({n_out}, {f.shape[1]}) (torch "
                         f"Linear.weight convention), got shape {w.shape}")
    b = np.zeros(n_out) if bias is None else np.asarray(bias, dtype=np.float64)
    if b.shape != (n_out,):
        raise ValueError(f"{caller}: bias must have shape ({n_out},), got {b.shape}")
    k = f.shape[1]
    if not any_width and not 1 <= k <= min(p.shape[0] - 1, n_out):
        raise ValueError(f"{caller}: k = {k} features; accepted 1 <= k <= {min(p.shape[0] - 1, n_out)}")
    return f, w, b


def _model_radius(p_y, logits):
    z = logits - logits.max(1, keepdims=True)
    q = np.exp(z)
    q /= q.sum(1, keepdims=True)
    return float(np.max(np.sqrt(np.sum((q - p_y) ** 2 / p_y, axis=1))))


def compare_softmax_layer(p_xy, features, weights, bias=None, *, target: str = "dtm", rank: int | None = None
                          ) -> LayerComparison:
    """Compare a trained softmax layer (logits = features @ weights.T + bias) with the DTM theory.

    Parameters
    ----------
    p_xy : array of shape (|X|, |Y|)
        The joint distribution the layer was trained on (or the data's, e.g. clusters x labels).
    features : array of shape (|X|, k)
        f(x) for each symbol x (the layer's input).
    weights : array of shape (|Y|, k)
        The layer's weight (torch ``Linear.weight``).
    bias : array of shape (|Y|,), optional
    target : {"dtm", "pmi"}
        The matrix whose rank-k approximation is the reference (see :func:`optimal_softmax_layer`).
    rank : int, optional
        The rank r compared; default min(k, min(|X|, |Y|) - 1). A layer wider than the DTM's rank (a
        trained classifier's penultimate layer, say) is compared through its logit matrix: the angles are
        then between the top-r singular subspaces of Theta^ and of B~.

    Returns
    -------
    LayerComparison

    Notes
    -----
    Theta^(x, y) = sqrt(P_X P_Y) h~~(x, y), with h = logits - log P_Y centred over y (weights P_Y) and
    over x (weights P_X): it equals Phi Psi^T exactly, whatever the bias. The bias part, the P_X-mean of
    the y-centred h, should vanish (``bias_error``).

    Examples
    --------
    >>> from netatlas.lowrank import local_joint
    >>> j = local_joint(8, 5, k=2, eps_fraction=0.01, seed=0)
    >>> opt = optimal_softmax_layer(j.p_xy, 2)
    >>> c = compare_softmax_layer(j.p_xy, opt.features @ [[2.0, 1.0], [0.0, 1.0]],
    ...                           opt.weights @ np.linalg.inv([[2.0, 1.0], [0.0, 1.0]]).T, opt.bias)
    >>> round(c.product_error, 12), round(c.max_feature_angle, 6), round(c.bias_error, 12)
    (0.0, 0.0, 0.0)
    """
    p = check_joint(p_xy, caller="compare_softmax_layer")
    f, w, b = _check_layer(p, features, weights, bias, p.shape[1], "compare_softmax_layer", any_width=True)
    width = f.shape[1]
    rank_max = min(p.shape) - 1
    k = min(width, rank_max)
    if rank is not None:
        k = check_k(rank, k, caller="compare_softmax_layer")
    theory = optimal_softmax_layer(p, k, target=target)
    p_x, p_y = p.sum(1), p.sum(0)
    sq = np.sqrt(np.outer(p_x, p_y))
    logits = f @ w.T + b
    h = logits - np.log(p_y)
    h_y = h - (h @ p_y)[:, None]  # softmax ignores row constants
    bias_part = p_x @ h_y
    theta = sq * (h_y - bias_part[None, :])
    phi = np.sqrt(p_x)[:, None] * (f - p_x @ f)
    psi = np.sqrt(p_y)[:, None] * (w - p_y @ w)
    u_k, _, v_k = theory.svd.top(k)
    scale = float(np.linalg.norm(theory.product))
    excess = softmax_excess_loss(p, logits)
    h_one = h_score_population(p, f)
    h_pair = h_score_population(p, f, w)
    big_b = dtm(p)
    if k < width or rank is not None:  # compare the subspaces the logits actually use
        u_t, _, vt_t = np.linalg.svd(theta, full_matrices=False)
        phi, psi = u_t[:, :k], vt_t[:k].T
    return LayerComparison(
        kind="softmax", k=k, product_error=relative_error(theta, theory.product),
        feature_angles=principal_angles(phi, u_k), weight_angles=principal_angles(psi, v_k),
        excess_loss=excess, predicted_excess_loss=theory.excess_loss,
        excess_loss_ratio=_ratio(excess, theory.excess_loss), h_score=h_one, h_score_pair=h_pair,
        h_score_max=theory.h_score, h_score_ratio=_ratio(h_one, theory.h_score),
        bias_error=float(np.linalg.norm(np.sqrt(p_y) * bias_part)) / scale if scale > 0 else float("nan"),
        eps=float(np.linalg.norm(big_b)), chi2_radius=float(np.max(chi2_radius(p))),
        model_chi2_radius=_model_radius(p_y, logits), preactivation_spread=float(np.max(np.abs(h_y))),
        gap=theory.svd.gap(k))


def compare_mmse_layer(p_xy, features, weights, bias=None, *, y_values=None) -> LayerComparison:
    """Compare a trained linear layer under squared loss (outputs = features @ weights.T + bias) with
    the reduced-rank regression optimum (exact, no locality needed).

    Parameters
    ----------
    p_xy : array of shape (|X|, |Y|)
    features : array of shape (|X|, k)
    weights : array of shape (d, k)
    bias : array of shape (d,), optional
    y_values : array of shape (|Y|, d), optional
        Default one-hot.

    Returns
    -------
    LayerComparison
        ``h_score`` is the one-sided H-score of the features for Y (for reference; the MMSE features
        maximise a differently weighted criterion, so ``h_score_ratio`` < 1 is expected).

    Examples
    --------
    >>> p = np.random.default_rng(0).dirichlet(np.ones(12)).reshape(4, 3)
    >>> opt = optimal_mmse_layer(p, 1)
    >>> round(compare_mmse_layer(p, opt.features, opt.weights, opt.bias).product_error, 12)
    0.0
    """
    p = check_joint(p_xy, caller="compare_mmse_layer")
    values = check_y_values(y_values, p.shape[1], "compare_mmse_layer")
    f, w, b = _check_layer(p, features, weights, bias, values.shape[1], "compare_mmse_layer")
    k = f.shape[1]
    theory = optimal_mmse_layer(p, k, y_values=values)
    p_x = p.sum(1)
    a = f @ w.T + b
    a_mean = p_x @ a
    theta = np.sqrt(p_x)[:, None] * (a - a_mean)
    phi = np.sqrt(p_x)[:, None] * (f - p_x @ f)
    u_k, _, v_k = theory.svd.top(k)
    scale = float(np.linalg.norm(theory.product))
    excess = mmse_excess_loss(p, a, values)
    h_one = h_score_population(p, f)
    big_b = dtm(p)
    s = np.linalg.svd(big_b, compute_uv=False)
    h_max = 0.5 * float(np.sum(s[:k] ** 2))
    return LayerComparison(
        kind="mmse", k=k, product_error=relative_error(theta, theory.product),
        feature_angles=principal_angles(phi, u_k), weight_angles=principal_angles(w, v_k),
        excess_loss=excess, predicted_excess_loss=theory.excess_loss,
        excess_loss_ratio=_ratio(excess, theory.excess_loss), h_score=h_one, h_score_pair=float("nan"),
        h_score_max=h_max, h_score_ratio=_ratio(h_one, h_max),
        bias_error=float(np.linalg.norm(a_mean - theory.bias)) / scale if scale > 0 else float("nan"),
        eps=float(np.linalg.norm(big_b)), chi2_radius=float(np.max(chi2_radius(p))),
        model_chi2_radius=float("nan"),
        preactivation_spread=float(np.max(np.abs(theta / np.sqrt(p_x)[:, None]))),
        gap=theory.svd.gap(k))


def compare_hidden_layer(p_xy, features_below, weights, bias, upper_weights, upper_bias, *,
                         activation: str = "sigmoid", center=None) -> LayerComparison:
    """Compare a trained hidden layer (below a fixed softmax layer) with the linearised formula.

    Network: f1(x) -> u = W f1 + c -> s = phi(u) -> logits V s + d.

    Parameters
    ----------
    p_xy : array of shape (|X|, |Y|)
    features_below : array of shape (|X|, m)
        f1(x).
    weights, bias : arrays of shapes (k, m), (k,)
        The trained hidden layer.
    upper_weights, upper_bias : arrays of shapes (|Y|, k), (|Y|,)
        The fixed softmax layer above.
    activation : {"sigmoid", "tanh", "identity", "softplus", "relu"}
    center : float or array of shape (k,), optional
        c0 for the linearisation; default the trained layer's mean pre-activation E u(X).

    Returns
    -------
    LayerComparison
        ``product_error``: the weighted centred pre-activations Phi1 W^T against the formula's;
        ``feature_angles``: between those pre-activation subspaces; ``weight_angles``: between the
        realised and predicted centred logit deviations' column spaces (rank <= k);
        ``preactivation_spread``: max |u(x) - E u| over symbols and units.

    Examples
    --------
    >>> from netatlas.lowrank import local_joint, optimal_hidden_layer
    >>> j = local_joint(10, 5, k=2, eps_fraction=0.001, seed=0)
    >>> rng = np.random.default_rng(0); f1 = rng.normal(size=(10, 4)); v = rng.normal(size=(5, 3))
    >>> opt = optimal_hidden_layer(j.p_xy, f1, v, activation="tanh")
    >>> c = compare_hidden_layer(j.p_xy, f1, opt.weights, opt.bias, v, opt.upper_bias, activation="tanh")
    >>> round(c.product_error, 12)
    0.0
    """
    p = check_joint(p_xy, caller="compare_hidden_layer")
    p_x, p_y = p.sum(1), p.sum(0)
    f1 = np.asarray(features_below, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    c = np.asarray(bias, dtype=np.float64)
    v = np.asarray(upper_weights, dtype=np.float64)
    d = np.asarray(upper_bias, dtype=np.float64)
    if f1.ndim != 2 or f1.shape[0] != p.shape[0]:
        raise ValueError(f"compare_hidden_layer: features_below must be (|X|, m) = ({p.shape[0]}, m), "
                         f"got {f1.shape}")
    if w.ndim != 2 or w.shape[1] != f1.shape[1] or c.shape != (w.shape[0],):
        raise ValueError(f"compare_hidden_layer: weights must be (k, {f1.shape[1]}) and bias (k,), got "
                         f"{w.shape} and {c.shape}")
    k = w.shape[0]
    if v.shape != (p.shape[1], k) or d.shape != (p.shape[1],):
        raise ValueError(f"compare_hidden_layer: upper_weights must be ({p.shape[1]}, {k}) and upper_bias "
                         f"({p.shape[1]},), got {v.shape} and {d.shape}")
    if activation not in _ACTIVATIONS:
        raise ValueError(f"compare_hidden_layer: activation {activation!r}; choose one of "
                         f"{sorted(_ACTIVATIONS)}")
    u = f1 @ w.T + c
    u_mean = p_x @ u
    c0 = u_mean if center is None else np.broadcast_to(np.asarray(center, dtype=np.float64), (k,))
    theory = optimal_hidden_layer(p, f1, v, activation=activation, center=c0)
    pre = np.sqrt(p_x)[:, None] * (u - u_mean)
    logits = _ACTIVATIONS[activation](u) @ v.T + d
    h = logits - np.log(p_y)
    h_y = h - (h @ p_y)[:, None]
    theta = np.sqrt(np.outer(p_x, p_y)) * (h_y - (p_x @ h_y)[None, :])
    scale = float(np.linalg.norm(theory.preactivations))
    excess = softmax_excess_loss(p, logits)
    big_b = dtm(p)
    s = np.linalg.svd(big_b, compute_uv=False)
    h_max = 0.5 * float(np.sum(s[:k] ** 2))
    hidden = _ACTIVATIONS[activation](u)
    h_one = h_score_population(p, hidden)
    h_pair = 0.5 * float(np.sum(big_b**2)) - 0.5 * float(np.sum((big_b - theta) ** 2))
    # column spaces of the centred logit deviations: compare their top-k left singular subspaces (the
    # realised one has small full-rank nonlinear residue that would make every angle 90 degrees)
    top_theta = np.linalg.svd(theta, full_matrices=False)[0][:, :k]
    top_theory = np.linalg.svd(theory.product, full_matrices=False)[0][:, :k]
    return LayerComparison(
        kind="hidden", k=k, product_error=relative_error(pre, theory.preactivations),
        feature_angles=principal_angles(pre, theory.preactivations),
        weight_angles=principal_angles(top_theta, top_theory), excess_loss=excess,
        predicted_excess_loss=theory.excess_loss, excess_loss_ratio=_ratio(excess, theory.excess_loss),
        h_score=h_one, h_score_pair=h_pair, h_score_max=h_max, h_score_ratio=_ratio(h_one, h_max),
        bias_error=float(np.linalg.norm(u_mean - c0)) / scale if scale > 0 else float("nan"),
        eps=float(np.linalg.norm(big_b)), chi2_radius=float(np.max(chi2_radius(p))),
        model_chi2_radius=_model_radius(p_y, logits),
        preactivation_spread=float(np.max(np.abs(u - u_mean))), gap=float("nan"))


def fit_slope(eps, values) -> float:
    """Least-squares slope of log(values) against log(eps) (non-positive or non-finite values dropped).

    >>> round(fit_slope([1e-3, 1e-2, 1e-1], [2e-3, 2e-2, 2e-1]), 6)
    1.0
    """
    x = np.log(np.asarray(eps, dtype=float))
    y = np.asarray(values, dtype=float)
    keep = np.isfinite(x) & np.isfinite(y) & (y > 0)
    if keep.sum() < 2:
        return float("nan")
    return float(np.polyfit(x[keep], np.log(y[keep]), 1)[0])
