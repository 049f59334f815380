"""The theory's optimal layers: softmax regression (the DTM), MMSE (reduced-rank regression of the
conditional mean), and a hidden layer below fixed upper layers (the linearised Bayes action).

# NOTE [local expansion]
Setting (Shisher, Ornee & Sun 2022; reconstruction in docs/papers/shisher2022.md, re-derived here): discrete
X with one free feature vector f(x) in R^k per symbol (a one-hot input followed by anything), a layer
z = W f(x) + b, output a = g(z), loss l(y, a). With P_{Y|X=x} within eps of P_Y, the excess risk is
1/2 ||B - Phi W^T M^{1/2}||_F^2 + (a bias term) + o(eps^2), where Phi has rows sqrt(P_X(x))(f(x) - E f),
B rows -sqrt(P_X(x)) (M^{-1/2} grad R_x(z0))^T and M the Hessian of the risk at the Bayes action z0.
The optimum is Eckart-Young: Phi W^T M^{1/2} = B_k, the best rank-k approximation of B. f and W are
identified only up to f -> A f, W -> W A^{-1} (A invertible k x k): compare products and subspaces.

Softmax (log-loss): z0 = log P_Y, M = diag(P_Y) - P_Y P_Y^T, and B becomes the DTM B~. Writing the
logits as log P_Y + h and h~ = h - E_{P_Y} h (softmax ignores row constants), the excess loss is
1/2 sum_x P_X(x) sum_y P_Y(y) (r(x,y) - h~(x,y))^2 + o(eps^2) with r = P_XY / (P_X P_Y) - 1, i.e.
1/2 ||B~ - Theta||_F^2 with Theta(x, y) = sqrt(P_X P_Y) h~. Theta = Phi Psi^T + sqrt(P_X) v^T where
Psi has rows sqrt(P_Y(y))(w_y - E_{P_Y} w) and v_y = sqrt(P_Y(y)) (centred bias offset). Because
sqrt(P_X)^T B~ = 0 and sqrt(P_X)^T Phi = 0 the bias part separates: its optimum is v = 0, i.e.
b_y = log P_Y(y) - w_y^T E f + const; the rest is minimal at Phi Psi^T = B~_k with value
1/2 sum_{i>k} sigma_i(B~)^2.

MMSE: exact for any eps when g is the identity: E||Y - a(X)||^2 = E||Y - E[Y|X]||^2 +
sum_x P_X(x) ||E[Y|X=x] - a(x)||^2; with a = W f + b this is reduced-rank regression of the conditional
mean, optimum Phi W^T = C_k with C rows sqrt(P_X(x)) (E[Y|X=x] - E Y) (PAPERS' B = sqrt(2) C, M = 2 I).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import scipy.special

from netatlas.lowrank._dtm import SVD, check_joint, check_k, dtm, truncated_svd
from netatlas.lowrank._loss import check_y_values

__all__ = ["HiddenLayerOptimum", "LayerOptimum", "activation_derivative", "activation_value", "mmse_matrix",
           "optimal_hidden_layer", "optimal_mmse_layer", "optimal_softmax_layer", "pmi_matrix"]

#: |phi'(c)| below this (relative to max |phi'|) counts as a vanishing gradient (J not invertible).
VANISHING_GRADIENT = 1e-8

SOFTMAX_ASSUMPTIONS = (
    "Discrete X with free k-dim features f(x); logits z = W f + b; log-loss. Local regime: "
    "P_{Y|X=x} within eps of P_Y (chi-square radius), the model's logits within O(eps) of log P_Y. "
    "The optimum is exact to second order: the true optimum's product differs by O(eps^2) (relative O(eps)), "
    "its excess loss by O(eps^3).")
MMSE_ASSUMPTIONS = (
    "Discrete X with free k-dim features f(x); linear output a = W f + b; squared loss. No locality needed: "
    "exact for every joint (reduced-rank regression of E[Y|X]).")
HIDDEN_ASSUMPTIONS = (
    "Fixed features below (F1) and fixed softmax layer above (weights V, bias d = log P_Y - V phi(c0) "
    "+ const). "
    "The hidden layer u = W f1 + c, s = phi(u) is linearised at the centre c0: J = diag phi'(c0) must be "
    "invertible (non-vanishing gradient; fails for ReLU at or below its kink). Local regime as for softmax, "
    "and pre-activations must stay within the range where phi is close to linear.")


@dataclass(frozen=True)
class LayerOptimum:
    """The theory's optimal layer: a rank-k approximation of the matrix the Bayes action fixes.

    Attributes
    ----------
    kind : {"softmax", "mmse"}
    k : int
    matrix : ndarray of shape (|X|, n_out)
        B: the DTM (softmax; or the weighted double-centred PMI matrix, target="pmi"), or C (mmse).
    svd : SVD
        Its SVD.
    features : ndarray of shape (|X|, k)
        Optimal f(x) (balanced: Phi = U_k S_k^{1/2} / sqrt(P_X)); E f = 0.
    weights : ndarray of shape (n_out, k)
        Optimal W (torch ``Linear.weight`` convention: output = features @ weights.T + bias).
    bias : ndarray of shape (n_out,)
        Optimal b: log P_Y (softmax) or E Y (mmse), since E f = 0.
    product : ndarray of shape (|X|, n_out)
        Phi W^T in the weighted, centred coordinates = B_k.
    excess_loss : float
        Predicted minimal excess loss: 1/2 sum_{i>k} sigma_i^2 (softmax, 2nd order) or sum_{i>k} sigma_i^2
        (mmse, exact).
    h_score : float
        1/2 sum_{i<=k} sigma_i^2 (the largest H-score of k features; softmax/dtm only, else nan).
    target : str
    assumptions : str
    """

    kind: str
    k: int
    matrix: np.ndarray
    svd: SVD
    features: np.ndarray
    weights: np.ndarray
    bias: np.ndarray
    product: np.ndarray
    excess_loss: float
    h_score: float
    target: str
    assumptions: str = field(repr=False)

    @property
    def singular_values(self) -> np.ndarray:
        """The singular values of ``matrix``, descending."""
        return self.svd.s

    @property
    def predicted_excess_loss(self) -> float:
        """Alias of ``excess_loss``: the theory's minimal excess loss."""
        return self.excess_loss

    def logits(self) -> np.ndarray:
        """Outputs features @ weights.T + bias, shape (|X|, n_out)."""
        return self.features @ self.weights.T + self.bias

    def to_dict(self) -> dict:
        return {"kind": self.kind, "k": self.k, "target": self.target, "excess_loss": self.excess_loss,
                "h_score": self.h_score, "singular_values": self.svd.s.tolist(), "gap": self.svd.gap(self.k),
                "assumptions": self.assumptions}


def pmi_matrix(p_xy) -> np.ndarray:
    """The weighted, double-centred pointwise mutual information matrix
    sqrt(P_X P_Y) * centre_X centre_Y log(P_XY / (P_X P_Y)) (centring weighted by P_X and P_Y).

    To first order in eps it equals the DTM; it is the weighted centred version of the unconstrained
    Bayes logits, so its rank-k SVD tracks the exact softmax optimum more closely (an extension, not
    in the paper). Needs P_XY > 0 everywhere.

    >>> p = np.array([[0.3, 0.2], [0.1, 0.4]])
    >>> pmi_matrix(p).shape
    (2, 2)
    """
    p = check_joint(p_xy, caller="pmi_matrix")
    if np.any(p <= 0):
        raise ValueError("pmi_matrix: p_xy has zero cells; the PMI target needs P_XY > 0 everywhere "
                         "(use target='dtm')")
    p_x, p_y = p.sum(1), p.sum(0)
    pmi = np.log(p) - np.log(p_x)[:, None] - np.log(p_y)[None, :]
    pmi = pmi - (pmi @ p_y)[:, None]
    pmi = pmi - (p_x @ pmi)[None, :]
    return np.sqrt(np.outer(p_x, p_y)) * pmi


def _factor(svd: SVD, k: int, p_x: np.ndarray, p_out_weight: np.ndarray):
    u, s, v = svd.top(k)
    phi = u * np.sqrt(s)
    psi = v * np.sqrt(s)
    return phi / np.sqrt(p_x)[:, None], psi / p_out_weight[:, None]


def optimal_softmax_layer(p_xy, k: int, *, target: str = "dtm") -> LayerOptimum:
    """The theory's optimal k-feature softmax layer for a joint distribution.

    Parameters
    ----------
    p_xy : array of shape (|X|, |Y|)
    k : int
        Number of features, 1 <= k <= min(|X|, |Y|) - 1.
    target : {"dtm", "pmi"}
        "dtm" (the paper): the rank-k SVD of the DTM. "pmi": of :func:`pmi_matrix` (our extension).

    Returns
    -------
    LayerOptimum
        features f (|X|, k), weights W (|Y|, k), bias b = log P_Y, logits f W^T + b; the predicted
        excess loss 1/2 sum_{i>k} sigma_i(B~)^2 (for both targets: the second-order minimum).

    Notes
    -----
    See the module's NOTE [local expansion]. Assumptions: ``SOFTMAX_ASSUMPTIONS``.

    Examples
    --------
    >>> from netatlas.lowrank import local_joint, softmax_excess_loss
    >>> j = local_joint(8, 5, k=2, eps_fraction=0.01, seed=0)
    >>> opt = optimal_softmax_layer(j.p_xy, 2)
    >>> opt.features.shape, opt.weights.shape
    ((8, 2), (5, 2))
    >>> bool(np.isclose(softmax_excess_loss(j.p_xy, opt.logits()), opt.excess_loss, rtol=0.05))
    True
    """
    p = check_joint(p_xy, caller="optimal_softmax_layer")
    k = check_k(k, min(p.shape) - 1, caller="optimal_softmax_layer")
    if target not in ("dtm", "pmi"):
        raise ValueError(f"optimal_softmax_layer: target = {target!r}; choose 'dtm' or 'pmi'")
    p_x, p_y = p.sum(1), p.sum(0)
    b = dtm(p)
    matrix = b if target == "dtm" else pmi_matrix(p)
    svd = truncated_svd(matrix)
    features, weights = _factor(svd, k, p_x, np.sqrt(p_y))
    s_dtm = svd.s if target == "dtm" else truncated_svd(b).s
    return LayerOptimum(
        kind="softmax", k=k, matrix=matrix, svd=svd, features=features, weights=weights, bias=np.log(p_y),
        product=svd.low_rank(k), excess_loss=0.5 * float(np.sum(s_dtm[k:] ** 2)),
        h_score=0.5 * float(np.sum(s_dtm[:k] ** 2)), target=target, assumptions=SOFTMAX_ASSUMPTIONS)


def mmse_matrix(p_xy, y_values=None) -> np.ndarray:
    """C with rows sqrt(P_X(x)) (E[Y|X=x] - E Y), shape (|X|, d)."""
    p = check_joint(p_xy, caller="mmse_matrix")
    values = check_y_values(y_values, p.shape[1], "mmse_matrix")
    p_x = p.sum(1)
    mean = (p / p_x[:, None]) @ values
    return np.sqrt(p_x)[:, None] * (mean - p_x @ mean)


def optimal_mmse_layer(p_xy, k: int, *, y_values=None) -> LayerOptimum:
    """The optimal k-feature linear layer under squared loss: reduced-rank regression of E[Y|X].

    Parameters
    ----------
    p_xy : array of shape (|X|, |Y|)
    k : int
        1 <= k <= min(|X| - 1, d).
    y_values : array of shape (|Y|, d), optional
        The value of each y; default one-hot (then C = B~ diag(sqrt(P_Y))).

    Returns
    -------
    LayerOptimum
        features (|X|, k), weights (d, k), bias E Y; excess_loss = sum_{i>k} s_i(C)^2, exact.

    Examples
    --------
    >>> from netatlas.lowrank import mmse_excess_loss
    >>> p = np.random.default_rng(0).dirichlet(np.ones(12)).reshape(4, 3)
    >>> opt = optimal_mmse_layer(p, 1)
    >>> bool(np.isclose(mmse_excess_loss(p, opt.logits()), opt.excess_loss))
    True
    """
    p = check_joint(p_xy, caller="optimal_mmse_layer")
    values = check_y_values(y_values, p.shape[1], "optimal_mmse_layer")
    k = check_k(k, min(p.shape[0] - 1, values.shape[1]), caller="optimal_mmse_layer")
    p_x = p.sum(1)
    c = mmse_matrix(p, values)
    svd = truncated_svd(c)
    features, weights = _factor(svd, k, p_x, np.ones(values.shape[1]))
    mean_y = p.sum(0) @ values
    return LayerOptimum(
        kind="mmse", k=k, matrix=c, svd=svd, features=features, weights=weights, bias=mean_y,
        product=svd.low_rank(k), excess_loss=float(np.sum(svd.s[k:] ** 2)), h_score=float("nan"),
        target="conditional_mean", assumptions=MMSE_ASSUMPTIONS)


_ACTIVATIONS = {
    "sigmoid": scipy.special.expit,
    "tanh": np.tanh,
    "identity": lambda c: c,
    "softplus": lambda c: np.logaddexp(0, c),
    "relu": lambda c: np.maximum(c, 0),
}


def activation_value(activation: str, center) -> np.ndarray:
    """phi(c) for a named activation (sigmoid, tanh, identity, softplus, relu), elementwise, in float64
    (softplus exactly log(1 + e^c), with no linear tail).

    >>> activation_value("sigmoid", np.zeros(2))
    array([0.5, 0.5])
    """
    if activation not in _ACTIVATIONS:
        raise ValueError(f"activation_value: activation {activation!r}; choose one of {sorted(_ACTIVATIONS)}")
    return _ACTIVATIONS[activation](np.asarray(center, dtype=np.float64))


def activation_derivative(activation: str, center) -> np.ndarray:
    """phi'(c) for a named activation (sigmoid, tanh, identity, softplus, relu), elementwise.

    ReLU at its kink (c = 0) gets the right derivative 1 with a warning: the linearisation does not
    hold for any eps there, since the kink stays inside the pre-activations' spread as eps -> 0.

    >>> activation_derivative("sigmoid", np.zeros(2))
    array([0.25, 0.25])
    """
    if activation not in _ACTIVATIONS:
        raise ValueError(f"activation_derivative: activation {activation!r}; choose one of "
                         f"{sorted(_ACTIVATIONS)}")
    import torch

    from netatlas.nets import Activation

    c = np.asarray(center, dtype=np.float64)
    # softplus without torch's linear tail above threshold 20: phi = log(1 + e^c) exactly, as in _ACTIVATIONS
    params = {"threshold": float("inf")} if activation == "softplus" else {}
    derivative = Activation(activation, params).derivative(torch.as_tensor(c)).numpy()
    if activation == "relu" and np.any(c == 0):
        warnings.warn("ReLU linearised at its kink (centre 0): using the right derivative 1; the local "
                      "theory does not apply there for any eps", stacklevel=2)
        derivative = np.where(c == 0, 1.0, derivative)  # Activation.derivative takes relu'(0) = 0
    return derivative


@dataclass(frozen=True)
class HiddenLayerOptimum:
    """The linearised optimum of a hidden layer u = W f1 + c, s = phi(u) below a fixed softmax layer.

    Attributes
    ----------
    weights : ndarray of shape (k, m)
        W (torch ``Linear.weight`` convention).
    bias : ndarray of shape (k,)
        c = c0 - W E f1 (the pre-activations are centred at c0).
    center : ndarray of shape (k,)
        c0, where phi is linearised.
    jacobian : ndarray of shape (k,)
        phi'(c0), the diagonal of J.
    preactivations : ndarray of shape (|X|, k)
        Predicted weighted, centred pre-activations sqrt(P_X)(u(x) - E u) = Phi1 W^T.
    product : ndarray of shape (|X|, |Y|)
        Predicted weighted, centred logit deviations: P_Phi1 B~ P_Psi (projections on the column spaces of
        Phi1 and Psi).
    upper_bias : ndarray of shape (|Y|,)
        The bias d = log P_Y - V phi(c0) that makes c0 the Bayes action's centre.
    excess_loss : float
        Predicted (second-order) excess loss 1/2 ||B~ - product||^2.
    identifiable : bool
        Phi1 and Psi have full column rank, so W itself (not only Phi1 W^T) is determined.
    """

    weights: np.ndarray
    bias: np.ndarray
    center: np.ndarray
    jacobian: np.ndarray
    preactivations: np.ndarray
    product: np.ndarray
    upper_bias: np.ndarray
    excess_loss: float
    identifiable: bool
    activation: str
    assumptions: str = field(repr=False)

    def to_dict(self) -> dict:
        return {"activation": self.activation, "center": self.center.tolist(),
                "jacobian": self.jacobian.tolist(), "excess_loss": self.excess_loss,
                "identifiable": self.identifiable, "assumptions": self.assumptions}


def optimal_hidden_layer(p_xy, features_below, upper_weights, *, activation: str = "sigmoid",
                         center=0.0) -> HiddenLayerOptimum:
    """The linearised Bayes-action formula for a hidden layer below a fixed softmax layer.

    Network: x -> f1(x) (fixed, m-dim) -> u = W f1 + c -> s = phi(u) (k units) -> logits V s + d (fixed).

    Parameters
    ----------
    p_xy : array of shape (|X|, |Y|)
    features_below : array of shape (|X|, m)
        f1(x), the fixed features feeding the layer.
    upper_weights : array of shape (|Y|, k)
        V, the fixed softmax layer's weight.
    activation : {"sigmoid", "tanh", "identity", "softplus", "relu"}
    center : float or array of shape (k,)
        c0, where phi is linearised (the centre of the pre-activations).

    Returns
    -------
    HiddenLayerOptimum

    Raises
    ------
    ValueError
        If phi'(c0) vanishes for some unit (J not invertible: the non-vanishing gradient condition).

    Notes
    -----
    Linearising s = phi(c0) + J (u - c0), the centred weighted logit deviation is
    Theta = Phi1 W^T J Psi^T, Phi1 rows sqrt(P_X)(f1 - E f1), Psi rows sqrt(P_Y)(v_y - E_{P_Y} v), and
    min_W ||B~ - Phi1 W^T J Psi^T||_F gives (least squares, full column ranks)::

        W = J^{-1} (Psi^T Psi)^{-1} Psi^T B~^T Phi1 (Phi1^T Phi1)^{-1}          (k x m)

    (a reconstruction that writes ``Psi^T B~ Phi1`` is wrong: the shapes require the transpose B~^T.) In general
    W = J^{-1} pinv(Psi) B~^T pinv(Phi1)^T, the minimum-norm solution. Assumptions: ``HIDDEN_ASSUMPTIONS``.

    Examples
    --------
    >>> from netatlas.lowrank import local_joint
    >>> j = local_joint(10, 5, k=2, eps_fraction=0.01, seed=0)
    >>> rng = np.random.default_rng(0)
    >>> f1, v = rng.normal(size=(10, 4)), rng.normal(size=(5, 3))
    >>> opt = optimal_hidden_layer(j.p_xy, f1, v, activation="tanh")
    >>> opt.weights.shape, opt.identifiable
    ((3, 4), True)
    """
    p = check_joint(p_xy, caller="optimal_hidden_layer")
    p_x, p_y = p.sum(1), p.sum(0)
    f1 = np.asarray(features_below, dtype=np.float64)
    v = np.asarray(upper_weights, dtype=np.float64)
    if f1.ndim != 2 or f1.shape[0] != p.shape[0]:
        raise ValueError(f"optimal_hidden_layer: features_below must be (|X|, m) = ({p.shape[0]}, m), "
                         f"got {f1.shape}")
    if v.ndim != 2 or v.shape[0] != p.shape[1]:
        raise ValueError(f"optimal_hidden_layer: upper_weights must be (|Y|, k) = ({p.shape[1]}, k), "
                         f"got {v.shape}")
    k = v.shape[1]
    c0 = np.broadcast_to(np.asarray(center, dtype=np.float64), (k,)).copy()
    jac = activation_derivative(activation, c0)
    if np.any(np.abs(jac) <= VANISHING_GRADIENT * max(1.0, float(np.max(np.abs(jac))))):
        dead = np.flatnonzero(np.abs(jac) <= VANISHING_GRADIENT).tolist()
        raise ValueError(f"optimal_hidden_layer: phi'(c0) vanishes for units {dead[:10]} ({activation} at "
                         f"centre {c0[dead[:3]]}); the linearised formula needs an invertible J "
                         "(non-vanishing gradient)")
    b = dtm(p)
    phi1 = np.sqrt(p_x)[:, None] * (f1 - p_x @ f1)
    psi = np.sqrt(p_y)[:, None] * (v - p_y @ v)
    pinv_phi1 = np.linalg.pinv(phi1)
    pinv_psi = np.linalg.pinv(psi)
    x_opt = pinv_phi1 @ b @ pinv_psi.T  # (m, k): argmin ||B~ - Phi1 X Psi^T||, X = W^T J
    weights = (x_opt / jac[None, :]).T
    bias = c0 - weights @ (p_x @ f1)
    product = phi1 @ x_opt @ psi.T
    identifiable = bool(np.linalg.matrix_rank(phi1) == f1.shape[1] and np.linalg.matrix_rank(psi) == k)
    upper_bias = np.log(p_y) - v @ _ACTIVATIONS[activation](c0)
    return HiddenLayerOptimum(
        weights=weights, bias=bias, center=c0, jacobian=jac, preactivations=phi1 @ weights.T, product=product,
        upper_bias=upper_bias, excess_loss=0.5 * float(np.sum((b - product) ** 2)), identifiable=identifiable,
        activation=activation, assumptions=HIDDEN_ASSUMPTIONS)
