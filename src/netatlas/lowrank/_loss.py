"""Excess (population) losses of a layer's outputs over the Bayes risk, computed without cancellation.

The log-loss of a classifier minus the conditional entropy H(Y|X) is O(eps^2) while both are O(1):
subtracting them loses every digit for small eps. Writing P(y|x) = P_Y(y)(1 + r), Q(y|x) = P_Y(y)(1 + q)
and l = log(Q / P_Y) = h - log E_{P_Y} exp(h) for logits log P_Y + h, and using E_{P_Y} r = E_{P_Y} q = 0::

    D(P_{Y|X=x} || Q_x) = sum_y P_Y(y) [ ((1 + r) log1p(r) - r) + (q - l) - r l ]

where each bracket is O(eps^2) (~ (r - l)^2 / 2) and no O(eps) terms cancel.
"""

from __future__ import annotations

import numpy as np
import torch

from netatlas.lowrank._dtm import check_joint

__all__ = ["check_y_values", "mmse_excess_loss", "softmax_excess_derivatives", "softmax_excess_loss",
           "softmax_excess_loss_torch"]


def softmax_excess_loss_torch(h: torch.Tensor, p_xy: torch.Tensor) -> torch.Tensor:
    """E_X D(P_{Y|X} || softmax(log P_Y + h)) for logit deviations ``h`` (..., |X|, |Y|): a tensor of
    the leading (batch) shape, differentiable in ``h``. ``p_xy`` (..., |X|, |Y|) is a validated float64
    tensor (same dtype as ``h``).

    Its gradient is dL/dh(x, y) = P_X(x) P_Y(y) (q - r) = P_X(x) (Q(y|x) - P(y|x)).
    """
    p_x = p_xy.sum(-1, keepdim=True)
    p_y = p_xy.sum(-2, keepdim=True)
    r = p_xy / (p_x * p_y) - 1.0
    l = h - torch.logsumexp(h + torch.log(p_y), dim=-1, keepdim=True)
    q = torch.expm1(l)
    a = torch.special.xlogy(1 + r, 1 + r) - r  # (1 + r) log1p(r) - r, = 1 at r = -1
    per_cell = p_y * (a + (q - l) - r * l)
    return (p_x[..., 0] * per_cell.sum(-1)).sum(-1)


def softmax_excess_derivatives(h: torch.Tensor, p_xy: torch.Tensor):
    """Gradient (..., |X|, |Y|) and per-x Hessian blocks (..., |X|, |Y|, |Y|) of
    :func:`softmax_excess_loss_torch` in h: G = P_X P_Y (q - r), H_x = P_X(x) (diag Q_x - Q_x Q_x^T)."""
    p_x = p_xy.sum(-1, keepdim=True)
    p_y = p_xy.sum(-2, keepdim=True)
    r = p_xy / (p_x * p_y) - 1.0
    l = h - torch.logsumexp(h + torch.log(p_y), dim=-1, keepdim=True)
    q = torch.expm1(l)
    g = p_x * p_y * (q - r)
    big_q = p_y * (1 + q)
    blocks = torch.diag_embed(big_q) - big_q.unsqueeze(-1) * big_q.unsqueeze(-2)
    return g, p_x.unsqueeze(-1) * blocks


def softmax_excess_loss(p_xy, logits) -> float:
    """The excess log-loss E_X D(P_{Y|X} || Q_{Y|X}) of logits z(x, y) (Q = softmax(z) per row).

    Equals the cross-entropy -sum P_XY log Q minus H(Y|X), computed without cancellation (module notes).

    Parameters
    ----------
    p_xy : array of shape (|X|, |Y|)
    logits : array of shape (|X|, |Y|)
        Any logits; only their differences within a row matter.

    Returns
    -------
    float (>= 0; 0 iff Q = P_{Y|X} on every x)

    Examples
    --------
    >>> p = np.array([[0.3, 0.2], [0.1, 0.4]])
    >>> softmax_excess_loss(p, np.log(p))  # the Bayes logits
    0.0
    >>> ce = -(p * np.log(np.full((2, 2), 0.5))).sum(); h = -(p * np.log(p / p.sum(1, keepdims=True))).sum()
    >>> bool(np.isclose(softmax_excess_loss(p, np.zeros((2, 2))), ce - h))
    True
    """
    p = check_joint(p_xy, caller="softmax_excess_loss")
    z = np.asarray(logits, dtype=np.float64)
    if z.shape != p.shape:
        raise ValueError(f"softmax_excess_loss: logits must have the shape of p_xy {p.shape}, got {z.shape}")
    h = z - np.log(p.sum(0))
    h = h - h.max(1, keepdims=True)  # softmax is row-shift invariant; keeps exp finite
    value = softmax_excess_loss_torch(torch.from_numpy(h), torch.from_numpy(p))
    return max(float(value), 0.0)


def mmse_excess_loss(p_xy, predictions, y_values=None) -> float:
    """The excess squared loss E ||Y - a(X)||^2 - E ||Y - E[Y|X]||^2 = E_X ||E[Y|X] - a(X)||^2.

    Parameters
    ----------
    p_xy : array of shape (|X|, |Y|)
    predictions : array of shape (|X|, d)
        a(x) for each symbol x.
    y_values : array of shape (|Y|, d), optional
        The vector value of each symbol y; default one-hot (d = |Y|), so E[Y|X=x] = P_{Y|X=x}.

    Examples
    --------
    >>> p = np.array([[0.3, 0.2], [0.1, 0.4]])
    >>> mmse_excess_loss(p, p / p.sum(1, keepdims=True))
    0.0
    """
    p = check_joint(p_xy, caller="mmse_excess_loss")
    values = check_y_values(y_values, p.shape[1], "mmse_excess_loss")
    a = np.asarray(predictions, dtype=np.float64)
    p_x = p.sum(1)
    mean = (p / p_x[:, None]) @ values
    if a.shape != mean.shape:
        raise ValueError(f"mmse_excess_loss: predictions must be (|X|, d) = {mean.shape}, got {a.shape}")
    return float(p_x @ np.sum((mean - a) ** 2, axis=1))


def check_y_values(y_values, n_y: int, caller: str = "lowrank") -> np.ndarray:
    """The values of Y as an array of shape (|Y|, d): ``None`` means one-hot (the identity), a vector
    of shape (|Y|,) means d = 1; anything else must be (|Y|, d).

    >>> check_y_values(None, 2)
    array([[1., 0.],
           [0., 1.]])
    >>> check_y_values([0.5, 2.0], 2).shape
    (2, 1)
    """
    if y_values is None:
        return np.eye(n_y)
    v = np.asarray(y_values, dtype=np.float64)
    if v.ndim == 1:
        v = v[:, None]
    if v.ndim != 2 or v.shape[0] != n_y:
        raise ValueError(f"{caller}: y_values must be (|Y|, d) with |Y| = {n_y}, got shape {v.shape}")
    return v
