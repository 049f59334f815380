"""Spline coordinates of a shallow univariate ReLU network.

# NOTE [spline coordinates]
    f(x) = c + sum_i v_i relu(w_i x + b_i). For w_i != 0, w_i x + b_i = |w_i| s_i (x - beta_i) with
    s_i = sign(w_i) and beta_i = -b_i / w_i, so by positive homogeneity of relu

        f(x) = offset + sum_i mu_i relu(s_i (x - beta_i)),   mu_i = v_i |w_i|,   offset = c,

    and f'' = sum_i mu_i delta(x - beta_i): mu_i is the jump of f' at beta_i (whatever s_i is).
    A neuron with w_i = 0 is the constant v_i relu(b_i): it is folded into the offset and kept as a
    "knot at infinity" (beta_i = +inf, mu_i = 0, s_i = +1) so that neuron i stays neuron i.
    Back to a network, any alpha_i > 0 gives w_i = s_i alpha_i, b_i = -w_i beta_i, v_i = mu_i / alpha_i.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import nn

from netatlas._deprecate import renamed
from netatlas._notebook import SplineDisplay
from netatlas.splines._params import ShallowParams

__all__ = ["Spline", "StepFunction", "Roughness", "as_params", "to_spline", "to_network", "merge_coincident"]


@dataclass(frozen=True, eq=False)
class StepFunction:
    """A right-continuous piecewise-constant function: ``values[k]`` on [knots[k-1], knots[k]).

    Attributes
    ----------
    knots : ndarray of shape (K,)
        Sorted distinct jump positions.
    values : ndarray of shape (K + 1,)
        Value left of the first knot, between consecutive knots, right of the last knot.
    """

    knots: np.ndarray
    values: np.ndarray

    def __call__(self, x) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        return self.values[np.searchsorted(self.knots, x, side="right")]

    def to_dict(self) -> dict:
        return {"knots": self.knots.tolist(), "values": self.values.tolist()}


@dataclass(frozen=True)
class Roughness:
    """Roughness of a spline: ``l2`` = sum mu_i^2, ``l1`` = sum |mu_i|, ``tv`` = total variation of f'
    on the open interval ``x_range`` (None: the whole line), i.e. sum over distinct knots inside of
    |sum of mu at that knot|; ``n_knots_in_range`` counts neurons with a breakpoint inside."""

    l2: float
    l1: float
    tv: float
    n_knots_in_range: int
    x_range: tuple[float, float] | None

    def to_dict(self) -> dict:
        return {"l2": self.l2, "l1": self.l1, "tv": self.tv, "n_knots_in_range": self.n_knots_in_range,
                "x_range": list(self.x_range) if self.x_range is not None else None}


@dataclass(frozen=True, eq=False)
class Spline(SplineDisplay):
    """f(x) = offset + sum_i delta_slopes[i] relu(orientations[i] (x - breakpoints[i])), float64.

    Attributes
    ----------
    breakpoints : ndarray of shape (H,)
        beta_i = -b_i / w_i; ``+inf`` for a constant (w_i = 0) neuron, whose delta slope is 0.
    delta_slopes : ndarray of shape (H,)
        mu_i = v_i |w_i|, the jump of f' at beta_i.
    orientations : ndarray of shape (H,), int
        s_i = sign(w_i) in {+1, -1}: +1 if the neuron is active right of its breakpoint.
    offset : float
        c plus the constants v_i relu(b_i) of w_i = 0 neurons.

    Examples
    --------
    >>> s = Spline([0.0, 1.0], [2.0, -1.0], [1, -1], 0.5)
    >>> s(np.array([-1.0, 0.5, 2.0])).tolist()
    [-1.5, 1.0, 4.5]
    >>> s.derivative(np.array([-1.0, 0.5, 2.0])).tolist()
    [1.0, 3.0, 2.0]
    >>> s.roughness(x_range=(-1, 2)).to_dict()["l2"]
    5.0
    """

    breakpoints: np.ndarray
    delta_slopes: np.ndarray
    orientations: np.ndarray
    offset: float

    def __post_init__(self):
        beta = np.array(self.breakpoints, dtype=np.float64).reshape(-1)
        mu = np.array(self.delta_slopes, dtype=np.float64).reshape(-1)
        s = np.array(self.orientations).reshape(-1)
        if not (beta.shape == mu.shape == s.shape):
            raise ValueError(f"Spline: breakpoints, delta_slopes and orientations must have one length H; "
                             f"got {beta.shape}, {mu.shape}, {s.shape}")
        if not np.all(np.isin(s, (-1, 1))):
            raise ValueError(f"Spline: orientations must be +1 or -1; got values {np.unique(s).tolist()}")
        if not np.all(np.isfinite(mu)) or np.any(np.isnan(beta)):
            raise ValueError("Spline: delta_slopes must be finite and breakpoints not NaN")
        if np.any(~np.isfinite(beta) & (mu != 0)):
            raise ValueError("Spline: an infinite breakpoint (a constant neuron) must have delta slope 0")
        offset = float(self.offset)
        if not np.isfinite(offset):
            raise ValueError(f"Spline: offset must be finite; got {self.offset!r}")
        s = s.astype(np.int8)
        for array in (beta, mu, s):
            array.setflags(write=False)
        object.__setattr__(self, "breakpoints", beta)
        object.__setattr__(self, "delta_slopes", mu)
        object.__setattr__(self, "orientations", s)
        object.__setattr__(self, "offset", offset)

    @property
    def width(self) -> int:
        """Number of neurons H (constant neurons included)."""
        return int(self.breakpoints.shape[0])

    @property
    def finite(self) -> np.ndarray:
        """Boolean mask (H,) of neurons with a finite breakpoint (w_i != 0)."""
        return np.isfinite(self.breakpoints)

    def _units(self, x: np.ndarray) -> np.ndarray:
        # (..., H): relu(s_i (x - beta_i)); constant neurons give 0 (their mu is 0 anyway)
        beta = np.where(self.finite, self.breakpoints, 0.0)
        z = self.orientations * (x[..., None] - beta)
        return np.where(self.finite, np.maximum(z, 0.0), 0.0)

    def __call__(self, x) -> np.ndarray:
        """f(x) for x of any shape; returns float64 of the same shape."""
        x = np.asarray(x, dtype=np.float64)
        return self._units(x) @ self.delta_slopes + self.offset

    def derivative(self, x=None):
        """f'(x) (the right derivative at a knot), or without ``x`` the :class:`StepFunction` f'.

        Parameters
        ----------
        x : array_like, optional
            Points; the result has the same shape.
        """
        knots, jumps = self.knots()
        a, _ = self.affine_part()
        values = a + np.concatenate([[0.0], np.cumsum(jumps)])
        step = StepFunction(knots, values)
        return step if x is None else step(x)

    def knots(self, *, tol: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        """Distinct finite breakpoints (sorted) and the total jump of f' at each.

        Breakpoints closer than ``tol`` to the previous one are merged (their mu summed); knots whose
        total jump is exactly 0 are kept. Returns ``(positions (K,), jumps (K,))``.
        """
        beta, mu = self.breakpoints[self.finite], self.delta_slopes[self.finite]
        order = np.argsort(beta, kind="stable")
        beta, mu = beta[order], mu[order]
        if beta.size == 0:
            return beta, mu
        new = np.concatenate([[True], np.diff(beta) > tol])
        group = np.cumsum(new) - 1
        return beta[new], np.bincount(group, weights=mu)

    def affine_part(self) -> tuple[float, float]:
        """(a, d) of the linear-part form f(x) = a x + d + sum_i mu_i (x - beta_i)_+.

        relu(-(x - beta)) = (x - beta)_+ - (x - beta), so a = -sum_{s_i=-1} mu_i and
        d = offset + sum_{s_i=-1} mu_i beta_i.
        """
        neg = (self.orientations == -1) & self.finite
        mu, beta = self.delta_slopes[neg], self.breakpoints[neg]
        return float(-mu.sum()), float(self.offset + np.sum(mu * beta))

    def roughness(self, *, x_range=None) -> Roughness:
        """Roughness measures: sum mu^2, sum |mu| and TV(f') on the open interval ``x_range``."""
        knots, jumps = self.knots()
        inside = np.ones(knots.shape, bool)
        n_in = int(self.finite.sum())
        if x_range is not None:
            lo, hi = (float(t) for t in x_range)
            if not lo < hi:
                raise ValueError(f"Spline.roughness: x_range must be (lo, hi) with lo < hi; got {x_range}")
            inside = (knots > lo) & (knots < hi)
            n_in = int(np.sum((self.breakpoints > lo) & (self.breakpoints < hi)))
            x_range = (lo, hi)
        return Roughness(l2=float(np.sum(self.delta_slopes ** 2)), l1=float(np.sum(np.abs(self.delta_slopes))),
                         tv=float(np.sum(np.abs(jumps[inside]))), n_knots_in_range=n_in, x_range=x_range)

    def to_dict(self) -> dict:
        return {"breakpoints": [float(b) if np.isfinite(b) else None for b in self.breakpoints],
                "delta_slopes": self.delta_slopes.tolist(), "orientations": self.orientations.tolist(),
                "offset": self.offset}

    def __repr__(self) -> str:
        return f"Spline(width={self.width}, offset={self.offset:.6g})"


@renamed(model_or_params="net")
def to_spline(net) -> Spline:
    """Spline coordinates (breakpoints, delta slopes, orientations, offset) of a shallow ReLU network.

    Parameters
    ----------
    net : nn.Module, Net, tuple (w, b, v, c), dict or ShallowParams
        ``nn.Sequential(Linear(1, H), ReLU(), Linear(H, 1))``, a netatlas ``Net`` with
        ``net.is_shallow_univariate()``, or the parameters themselves.

    Returns
    -------
    Spline
        beta_i = -b_i / w_i, mu_i = v_i |w_i|, s_i = sign(w_i), offset = c; a neuron with w_i = 0 is
        the constant v_i relu(b_i), added to the offset, and becomes (beta = +inf, mu = 0, s = +1).

    Notes
    -----
    Exact up to rounding: f agrees with the network to ~1e-15 relative in float64. Coincident
    breakpoints are kept as separate neurons (see :func:`merge_coincident`).

    Examples
    --------
    >>> import torch
    >>> model = torch.nn.Sequential(torch.nn.Linear(1, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1))
    >>> spline = to_spline(model)
    >>> x = torch.linspace(-2, 2, 7).reshape(-1, 1)
    >>> bool(np.allclose(spline(x[:, 0].numpy()), model(x)[:, 0].detach().numpy(), atol=1e-6))
    True
    >>> to_spline(([0.0], [2.0], [3.0], 1.0)).offset  # a w = 0 neuron is the constant 3 relu(2)
    7.0
    """
    if isinstance(net, Spline):
        return net
    p = as_params(net, caller="to_spline")
    zero = p.w == 0
    safe_w = np.where(zero, 1.0, p.w)
    beta = np.where(zero, np.inf, -p.b / safe_w)
    mu = np.where(zero, 0.0, p.v * np.abs(p.w))
    s = np.where(p.w < 0, -1, 1)
    offset = p.c + float(np.sum(p.v[zero] * np.maximum(p.b[zero], 0.0)))
    return Spline(beta, mu, s, offset)


def _alphas(spline: Spline, balance) -> np.ndarray:
    mu, beta = spline.delta_slopes, np.where(spline.finite, spline.breakpoints, 0.0)
    if isinstance(balance, (bool, str)) or balance is None:
        return _named_alphas(mu, beta, balance)
    alpha = np.asarray(balance, dtype=np.float64).reshape(-1)
    if alpha.shape != mu.shape or not np.all((alpha > 0) & np.isfinite(alpha)):
        raise ValueError(f"to_network: balance as an array must hold H = {mu.size} positive finite "
                         f"scales alpha_i; got shape {alpha.shape}")
    return alpha


def _named_alphas(mu, beta, balance):
    if balance is False or balance is None or balance == "none":
        return np.ones_like(mu)
    if balance is True or balance == "weights":
        alpha = np.sqrt(np.abs(mu))
    elif balance == "norm":
        alpha = (mu ** 2 / (1.0 + beta ** 2)) ** 0.25
    else:
        raise ValueError(f"to_network: unknown balance {balance!r}; choose False/'none', True/'weights', "
                         "'norm' or an array of positive alpha_i")
    return np.where(alpha > 0, alpha, 1.0)  # mu_i = 0: any alpha_i > 0 works; take 1


def to_network(spline: Spline, balance: bool | str | np.ndarray = False, *,
               output: Literal["module", "params"] = "module", dtype=torch.float64):
    """A shallow ReLU network computing ``spline``: w = s alpha, b = -w beta, v = mu / alpha, c = offset.

    Parameters
    ----------
    spline : Spline
    balance : bool, {"none", "weights", "norm"} or ndarray of shape (H,)
        The per-neuron scale alpha_i > 0 (the function does not depend on it): False/"none" alpha = 1;
        True/"weights" alpha = sqrt|mu| (|v_i| = |w_i|); "norm" alpha = (mu^2 / (1 + beta^2))^(1/4)
        (v_i^2 = w_i^2 + b_i^2, the quantity gradient flow conserves, is then 0); or the alphas.
        Neurons with mu_i = 0 get alpha_i = 1.
    output : {"module", "params"}
        A float64 ``nn.Sequential(Linear(1, H), ReLU(), Linear(H, 1))`` or :class:`ShallowParams`.

    Returns
    -------
    nn.Sequential or ShallowParams
        Constant neurons (beta = inf) become w = b = v = 0.

    Examples
    --------
    >>> spline = Spline([-0.5, 0.5], [1.0, -4.0], [1, -1], 0.0)
    >>> p = to_network(spline, balance=True, output="params")
    >>> p.w.tolist(), p.v.tolist()
    ([1.0, -2.0], [1.0, -2.0])
    >>> bool(np.allclose(to_spline(p).breakpoints, spline.breakpoints, atol=1e-15))
    True
    """
    if not isinstance(spline, Spline):
        raise TypeError(f"to_network: expected a Spline (from to_spline); got {type(spline).__name__}")
    if output not in ("module", "params"):
        raise ValueError(f"to_network: output must be 'module' or 'params'; got {output!r}")
    alpha = _alphas(spline, balance)
    finite = spline.finite
    w = np.where(finite, spline.orientations * alpha, 0.0)
    b = np.where(finite, -w * np.where(finite, spline.breakpoints, 0.0), 0.0)
    v = np.where(finite, spline.delta_slopes / alpha, 0.0)
    params = ShallowParams(w, b, v, spline.offset)
    return params if output == "params" else params.to_module(dtype)


def merge_coincident(spline: Spline, *, tol: float = 0.0) -> Spline:
    """The same function with neurons of equal orientation whose breakpoints are within ``tol`` of the
    previous one merged (delta slopes summed, first breakpoint kept) and constant neurons dropped.

    Only the sum of the delta slopes at a shared (breakpoint, orientation) is determined by f; this
    is the canonical representative. With ``tol > 0`` f changes by at most tol * sum |mu| per knot.

    Examples
    --------
    >>> s = merge_coincident(Spline([0.0, 0.0, 1.0], [1.0, 2.0, 3.0], [1, 1, 1], 0.0))
    >>> s.breakpoints.tolist(), s.delta_slopes.tolist()
    ([0.0, 1.0], [3.0, 3.0])
    """
    betas, mus, signs = [], [], []
    for sign in (1, -1):
        keep = spline.finite & (spline.orientations == sign)
        part = Spline(spline.breakpoints[keep], spline.delta_slopes[keep], spline.orientations[keep], 0.0)
        knots, jumps = part.knots(tol=tol)
        betas.append(knots)
        mus.append(jumps)
        signs.append(np.full(knots.shape, sign))
    return Spline(np.concatenate(betas), np.concatenate(mus), np.concatenate(signs), spline.offset)


_ACCEPTED = ("nn.Sequential(Linear(1, H), ReLU(), Linear(H, 1)) or any module netatlas.nets.from_torch "
             "imports to that shape, a netatlas Net with net.is_shallow_univariate(), a tuple (w, b, v, c), "
             "a dict with keys w, b, v, c, ShallowParams or Spline")


def as_params(obj, *, caller: str = "as_params") -> ShallowParams:
    """Network coordinates (w, b, v, c) of any accepted description of a shallow univariate ReLU net.

    Parameters
    ----------
    obj : nn.Module, Net, tuple, dict, ShallowParams or Spline
        ``(w, b, v, c)`` tuples and ``{"w", "b", "v", "c"}`` dicts may hold arrays or tensors; a Spline
        is converted with ``to_network(spline)`` (alpha_i = 1).

    Returns
    -------
    ShallowParams

    Examples
    --------
    >>> import torch
    >>> model = torch.nn.Sequential(torch.nn.Linear(1, 3), torch.nn.ReLU(), torch.nn.Linear(3, 1))
    >>> as_params(model).width
    3
    """
    from netatlas.nets import Net, as_net

    if isinstance(obj, ShallowParams):
        return obj
    if isinstance(obj, Spline):
        return to_network(obj, output="params")
    if isinstance(obj, dict):
        missing = [k for k in "wbvc" if k not in obj]
        if missing:
            raise ValueError(f"{caller}: a parameter dict needs keys w, b, v, c; missing {missing}")
        return ShallowParams(obj["w"], obj["b"], obj["v"], obj["c"])
    if isinstance(obj, (tuple, list)):
        if len(obj) != 4:
            raise ValueError(f"{caller}: a parameter tuple must be (w, b, v, c); got {len(obj)} items")
        return ShallowParams(*obj)
    if isinstance(obj, nn.Module):
        obj = as_net(obj)
    if isinstance(obj, Net):
        if not obj.is_shallow_univariate():
            raise ValueError(f"{caller}: the network is not 1 -> H ReLU -> 1 (net.is_shallow_univariate() is "
                             f"False); layers: {[n.op.describe() for n in obj.nodes]}. Accepted: {_ACCEPTED}")
        (w1, b1, _), (w2, b2, _) = obj.as_mlp()
        return ShallowParams(w1[:, 0], b1, w2[0], b2[0])
    raise TypeError(f"{caller}: cannot read a shallow univariate ReLU network from {type(obj).__name__}; "
                    f"accepted: {_ACCEPTED}")
