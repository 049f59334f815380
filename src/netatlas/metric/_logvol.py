"""Log-space volumes of a Net's Jacobian: log singular values that never underflow.

The Jacobian of a Net's output is a product ``J = A_L D_L ... A_1 D_1 A_0`` of affine ops' linear parts
``A`` and diagonal activation derivatives ``D = diag(phi'(z))``. In a saturated net the entries of ``D``
span more than float64's range (``sigmoid'(47) = 4e-21``; ``s * (1 - s)`` even rounds it to 0), so forming
``J`` or ``J J^T`` and taking a determinant loses the small singular values, and with them the volume.

# NOTE [log-space propagation]
The propagated matrix ``V`` (k rows, one per direction, by the node's width) is carried as ``e^s V`` with a
per-point log-scale ``s``; ``log |phi'(z)|`` is computed stably for each activation
(:func:`log_abs_derivative`) and applied as ``exp(log D - max log D)``, the max going into ``s``.
For a chain (no residual additions), at a point where one layer's derivatives span more than
``1/sqrt(eps)`` (so mixing them next would cost accuracy) ``V`` is re-orthonormalised, as
Lyapunov-exponent codes do: ``D V^T = Q R`` (Householder QR after sorting the rows by decreasing norm,
which keeps it accurate for graded rows: Powell & Reid 1969; Cox & Higham 1998), ``log |det R|`` is added to
the result and ``V = Q^T`` goes on. The product of the ``R`` factors is never formed: ``log |det J_k|`` is
the sum of their log diagonals. The last matrix's determinant comes from a Cholesky factorisation of its
Gram matrix scaled to unit diagonal when an error estimate allows, else from a row-sorted QR.
Directions: forward from the input (k = d, when d <= m) or backward from the output (k = m), so only
``min(m, d)`` directions are carried.

Exact zeros stay exact: a dead ReLU unit gives an exactly zero row, a layer narrower than k gives rank < k,
and both give ``-inf``. Where a finite ``phi'`` is more than ``exp(-708)`` times smaller than the largest of
its layer (so it underflows) or, in a graph with residual additions, where one layer's derivatives span more
than ``1/sqrt(eps)`` (so small contributions may be rounded away when branches mix), the point is marked as
having possibly lost precision; callers warn with the count of such points.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import torch

from netatlas.nets import (
    Activation,
    AdaptiveAvgPool,
    Add,
    AvgPool,
    ChannelAffine,
    Conv,
    GatherLinear,
    Input,
    Linear,
    Net,
    Pad,
)

__all__ = [
    "LogVolume",
    "log_abs_derivative",
    "log_derivative",
    "log_volume",
    "scaled_jacobian",
    "structural_rank",
    "supports",
]

_LOG_TINY = math.log(torch.finfo(torch.float64).tiny)  # exp() below this underflows (~ -708.4)
_EPS = torch.finfo(torch.float64).eps
# Derivatives of one layer spanning more than _GRADED nats (1/sqrt(eps)) are "graded": mixing them in
# float64 could cost more than ~1e-8 relative accuracy, so the chain is re-orthonormalised there.
_GRADED = -0.5 * math.log(_EPS)  # ~ 18.0
_PROBES = 4
_MAX_PENDING = 4
_FINAL_TOLERANCE = 1e-10  # accepted error estimate (nats) of the Cholesky fast path
_LINEAR_OPS = (Linear, Conv, ChannelAffine, AvgPool, AdaptiveAvgPool, Pad, GatherLinear)
_SQRT_HALF_PI = math.sqrt(math.pi / 2)
_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


# -- log |phi'(z)| ---------------------------------------------------------------------------------
def _softplus(t):
    """log(1 + e^t) to full precision (F.softplus returns t itself above t = 20, off by e^-20)."""
    return t.clamp_min(0) + torch.log1p(torch.exp(-t.abs()))


def _gelu_derivative_parts(z):
    """(log |GELU'(z)|, sign). GELU'(z) = Phi(z) + z phi(z); for z < -1 both terms are tiny and of opposite
    sign: |GELU'| = phi(z) (|z| - Phi(z)/phi(z)), the Mills ratio Phi/phi = sqrt(pi/2) erfcx(-z/sqrt 2)."""
    log_pdf = -0.5 * z * z - _LOG_SQRT_2PI
    mills = _SQRT_HALF_PI * torch.special.erfcx(-z / math.sqrt(2))
    tail = log_pdf + torch.log(z.abs() - mills)
    body = torch.special.ndtr(z) + z * torch.exp(log_pdf)
    return torch.where(z < -1, tail, torch.log(body.abs())), torch.where(z < -1, -1.0, torch.sign(body))


def _gelu_tanh_derivative_parts(z):
    # phi(z) = z sigmoid(2u), u = c (z + 0.044715 z^3): phi' = sigmoid(2u) (1 + 2 z u' sigmoid(-2u))
    c = math.sqrt(2 / math.pi)
    u = c * (z + 0.044715 * z**3)
    du = c * (1 + 3 * 0.044715 * z * z)
    factor = 1 + 2 * z * du * torch.sigmoid(-2 * u)
    return -_softplus(-2 * u) + torch.log(factor.abs()), torch.sign(factor)


def log_abs_derivative(act: Activation, z) -> np.ndarray:
    """``log |phi'(z)|`` elementwise, accurate where ``phi'`` itself under- or overflows.

    Parameters
    ----------
    act : Activation
        The IR activation (its ``name`` and ``params``).
    z : ndarray or Tensor
        Pre-activations (any shape; float64 recommended).

    Returns
    -------
    ndarray, same shape and dtype as z
        ``-inf`` exactly where ``phi'(z) = 0`` (a ReLU at ``z <= 0``); piecewise-linear activations give
        the log of their slope (right derivative at a kink, as ``Activation.derivative``).

    Examples
    --------
    >>> import torch
    >>> from netatlas.nets import Activation
    >>> log_abs_derivative(Activation("sigmoid"), torch.tensor([0.0, 800.0], dtype=torch.float64)).round(4)
    array([  -1.3863, -800.    ])
    """
    z = torch.from_numpy(np.asarray(z)) if not isinstance(z, torch.Tensor) else z
    return log_derivative(act, z)[0].detach().cpu().numpy()


def log_derivative(act: Activation, z: torch.Tensor):
    """``(log |phi'(z)|, sign(phi'(z)))``; see :func:`log_abs_derivative`. The sign matters: a negative
    slope (GELU below -0.75) changes how the next layer mixes the units."""
    log_abs, sign = _log_derivative(act, z)
    return log_abs, torch.ones_like(z) if sign is None else sign


def _log_derivative(act: Activation, z: torch.Tensor):
    """As :func:`log_derivative`, with sign None where phi' > 0 everywhere (saves a pass)."""
    p = act.params
    match act.name:
        case "sigmoid":  # s (1 - s) = e^z / (1 + e^z)^2 = e^-|z| / (1 + e^-|z|)^2
            a = z.abs()
            return -a - 2 * torch.log1p(torch.exp(-a)), None
        case "tanh":  # 1 - tanh^2 = 4 / (e^z + e^-z)^2
            a = z.abs()
            return math.log(4) - 2 * a - 2 * torch.log1p(torch.exp(-2 * a)), None
        case "erf":
            return math.log(2 / math.sqrt(math.pi)) - z * z, None
        case "softplus":  # F.softplus is the identity where beta z > threshold
            beta, threshold = p.get("beta", 1.0), p.get("threshold", 20.0)
            log_abs = torch.where(beta * z > threshold, 0.0, -_softplus(-beta * z)).to(z.dtype)
            return log_abs, None if beta > 0 else -torch.ones_like(z)
        case "elu":  # alpha e^z for z <= 0
            alpha = p.get("alpha", 1.0)
            log_alpha = math.log(abs(alpha)) if alpha else -math.inf
            sign = None if alpha >= 0 else torch.where(z > 0, 1.0, -1.0).to(z.dtype)
            return torch.where(z > 0, 0.0, log_alpha + z).to(z.dtype), sign
        case "gelu":
            return _gelu_derivative_parts(z)
        case "gelu_tanh":
            return _gelu_tanh_derivative_parts(z)
    # piecewise-linear activations (relu, leaky_relu, identity and any other the IR gains): their
    # derivative is a slope, exact in float64
    slope = act.derivative(z)
    return torch.log(slope.abs()), torch.sign(slope)


# -- the IR walk -----------------------------------------------------------------------------------
def supports(net: Net) -> bool:
    """True if every op of ``net`` is one the log-space route handles (affine ops, Add, activations)."""
    return all(isinstance(node.op, (Input, Add, Activation, *_LINEAR_OPS)) for node in net.nodes)


def _is_chain(net: Net) -> bool:
    return all(node.inputs == (i - 1,) for i, node in enumerate(net.nodes[1:], start=1))


def _linear_part(op):
    """The op without its bias: a linear map."""
    if isinstance(op, Linear):
        return Linear(op.weight, torch.zeros_like(op.bias))
    if isinstance(op, Conv):
        return replace(op, bias=torch.zeros_like(op.bias))
    if isinstance(op, ChannelAffine):
        return replace(op, shift=torch.zeros_like(op.shift))
    if isinstance(op, GatherLinear):
        return replace(op, shift=None)
    return op  # average pooling and Pad are linear


def _apply(op, V, identity=False):
    """Linear part of op applied to each row of V (b, k, n_in) -> (b, k, n_out)."""
    b, k, n = V.shape
    if isinstance(op, Linear):
        return op.weight.T[None] if identity else V @ op.weight.T
    return _linear_part(op)(V.reshape(b * k, n)).reshape(b, k, -1)


def _apply_transpose(op, V, n_in, identity=False):
    """Transpose of op's linear part applied to each row of V (b, k, n_out) -> (b, k, n_in)."""
    b, k, n = V.shape
    if isinstance(op, Linear):
        return op.weight[None] if identity else V @ op.weight
    lin = _linear_part(op)
    zeros = torch.zeros(b * k, n_in, dtype=V.dtype)
    _, pullback = torch.func.vjp(lin, zeros)
    return pullback(V.reshape(b * k, n))[0].reshape(b, k, n_in)


@dataclass
class _Scaled:
    """``e^s V``: s (b,) log-scales (-inf: the zero matrix), V (b, k, n) with max |entry| 1 (or 0)."""

    s: torch.Tensor
    V: torch.Tensor
    identity: bool = False  # V is the identity (the start): a Linear op's image is its weight
    pending: int = 0  # linear ops applied since V was last normalised

    def after_linear(self, V) -> _Scaled:
        """The state after a linear op; normalised every few ops (entries grow at most by the op's norm)."""
        state = _Scaled(self.s, V, pending=self.pending + 1)
        return state.normalised() if state.pending >= _MAX_PENDING else state

    def normalised(self) -> _Scaled:
        peak = torch.linalg.vector_norm(self.V, ord=math.inf, dim=(1, 2))  # max |entry|, no temporary
        ok = peak > 0
        V = self.V / torch.where(ok, peak, 1.0)[:, None, None]
        return _Scaled(torch.where(ok, self.s + torch.log(torch.where(ok, peak, 1.0)), -math.inf), V)

    def __add__(self, other: _Scaled) -> _Scaled:
        s = torch.maximum(self.s, other.s)
        finite = torch.isfinite(s)
        s0 = torch.where(finite, s, 0.0)

        def weight(t):
            return torch.where(torch.isfinite(t), torch.exp(t - s0), 0.0)[:, None, None]

        V = self.V * weight(self.s) + other.V * weight(other.s)
        return _Scaled(torch.where(finite, s, -math.inf), V).normalised()


def _scale_rows(state: _Scaled, log_d, sign, lost):
    """state * diag(sign * exp(log_d)) on the n axis (sign None: all positive). Returns (state, graded):
    graded (b,) marks points whose finite derivatives span more than _GRADED nats; points whose finite
    derivatives underflow are marked in ``lost``. Exactly zero derivatives (log -inf) are neither."""
    peak = log_d.amax(1)  # (b,); -inf only where every derivative is exactly 0
    peak0 = torch.where(torch.isfinite(peak), peak, 0.0)
    rel = log_d - peak0[:, None]
    low = rel.amin(1)
    graded = low < -_GRADED
    if graded.any():  # look closer: -inf entries (exact zeros) do not count
        rows = graded.nonzero().flatten()
        sub = rel[rows]
        finite_low = torch.where(torch.isfinite(sub), sub, 0.0).amin(1)
        graded[rows] = finite_low < -_GRADED
        lost[rows] |= finite_low < _LOG_TINY
    scale = torch.exp(rel) if sign is None else sign * torch.exp(rel)
    s = state.s + torch.where(torch.isfinite(peak), peak, -math.inf)
    result = _Scaled(s, state.V * scale[:, None, :], pending=state.pending + 1)
    return (result.normalised() if result.pending >= _MAX_PENDING else result), graded


def _sorted_rows(V):
    """V^T (b, n, k) with rows sorted by decreasing norm, and the order."""
    A = V.mT
    order = torch.argsort(A.norm(dim=2), dim=1, descending=True)
    return torch.gather(A, 1, order[:, :, None].expand(-1, -1, A.shape[2])), order


def _orthonormalise(st: _Scaled, which: torch.Tensor, logdet: torch.Tensor) -> _Scaled:
    """At the points ``which``: V^T = Q R (rows sorted), log |det R| + k s into logdet, V = Q^T, s = 0."""
    if not which.any():
        return st
    k = st.V.shape[1]
    A, order = _sorted_rows(st.V[which])
    Q, R = torch.linalg.qr(A)
    logdet[which] += torch.log(torch.diagonal(R, dim1=-2, dim2=-1).abs()).sum(-1) + k * st.s[which]
    V, s = st.V.clone(), st.s.clone()
    V[which] = torch.empty_like(Q).scatter_(1, order[:, :, None].expand(-1, -1, k), Q).mT
    s[which] = 0.0
    return _Scaled(s, V)


def _final_log_det(V: torch.Tensor) -> torch.Tensor:
    """``0.5 log det(V V^T)`` for V (b, k, n), n >= k, entries at most 1 in size.

    Fast path: Cholesky of the Gram matrix scaled to unit diagonal; its error is about
    ``eps sqrt(n) trace(G~^-1)`` (the trace estimated with a few fixed random probes). Where that estimate
    exceeds _FINAL_TOLERANCE (or Cholesky fails), the log |det R| of a Householder QR of the row-sorted V^T
    is used instead (no Gram, no squaring)."""
    b, k, n = V.shape
    G = V @ V.mT
    if k <= 2:
        return _final_log_det_small(V, G)
    diag = torch.diagonal(G, dim1=-2, dim2=-1)
    zero = (diag == 0).any(-1)
    scale = torch.where(diag > 0, diag, 1.0).rsqrt()
    L, info = torch.linalg.cholesky_ex(G * scale[:, :, None] * scale[:, None, :])
    good = (info == 0) & ~zero
    out = torch.full((b,), -math.inf, dtype=V.dtype)
    if good.any():
        Lg = L[good]
        # trace(G~^-1) = ||L~^-1||_F^2, estimated from a few fixed probes (Hutchinson), times a safety factor
        # (cholesky_solve: batched linalg.solve_triangular is ~1000x slower here for few right-hand sides)
        probes = torch.randn(k, _PROBES, generator=torch.Generator().manual_seed(0), dtype=V.dtype)
        solved = torch.cholesky_solve(probes.expand(Lg.shape[0], -1, -1).contiguous(), Lg)  # G~^-1 z
        error = 4 * _EPS * math.sqrt(n) * (probes * solved).sum((1, 2)) / _PROBES
        accurate = torch.zeros(b, dtype=torch.bool)
        accurate[good] = error <= _FINAL_TOLERANCE
        value = torch.log(torch.diagonal(Lg, dim1=-2, dim2=-1)).sum(-1) - torch.log(scale[good]).sum(-1)
        out[good] = torch.where(error <= _FINAL_TOLERANCE, value, out[good])
        good = accurate
    rest = ~good & ~zero
    if rest.any():
        A, _ = _sorted_rows(V[rest])
        R = torch.geqrf(A)[0]
        out[rest] = torch.log(torch.diagonal(R, dim1=-2, dim2=-1).abs()).sum(-1)
    return out


def _final_log_det_small(V, G):
    """k = 1 or 2: the determinant in closed form, same error estimate (trace(G~^-1) = 2 g11 g22 / det)."""
    b, k, n = V.shape
    if k == 1:
        return 0.5 * torch.log(G[:, 0, 0])
    g11, g22, g12 = G[:, 0, 0], G[:, 1, 1], G[:, 0, 1]
    det = g11 * g22 - g12 * g12
    error = 4 * _EPS * math.sqrt(n) * 2 * g11 * g22 / det
    out = torch.where(det > 0, 0.5 * torch.log(det.clamp_min(0)), -math.inf)
    rest = ((det <= 0) | (error > _FINAL_TOLERANCE)) & (g11 > 0) & (g22 > 0)
    if rest.any():
        A, _ = _sorted_rows(V[rest])
        R = torch.geqrf(A)[0]
        out[rest] = torch.log(torch.diagonal(R, dim1=-2, dim2=-1).abs()).sum(-1)
    return out


def _forward(net: Net, x, exact_jacobian: bool = False):
    """Tangents from the input identity: returns (state at the output, log det so far, lost). With
    ``exact_jacobian`` the state is the Jacobian itself (no factor moved into the log det)."""
    b, d = x.shape
    values = net.forward_all(x)
    lost = torch.zeros(b, dtype=torch.bool)
    logdet = torch.zeros(b, dtype=torch.float64)
    chain = _is_chain(net)
    states = [_Scaled(torch.zeros(1, dtype=torch.float64), torch.eye(d, dtype=torch.float64)[None], True)]
    for node in net.nodes[1:]:
        op = node.op
        if isinstance(op, Add):
            st = _expand(states[node.inputs[0]], b) + _expand(states[node.inputs[1]], b)
        elif isinstance(op, Activation):
            st, graded = _scale_rows(_expand(states[node.inputs[0]], b), *_log_derivative(op, values[node.inputs[0]]),
                                     lost)
            if chain:
                if node is not net.nodes[-1] and not exact_jacobian:
                    st = _orthonormalise(st, graded, logdet)
            else:
                lost |= graded
        else:
            prev = states[node.inputs[0]]
            st = prev.after_linear(_apply(op, prev.V, prev.identity))
        states.append(st)
        if chain:
            states[-2] = None  # only the last state is needed
    return _expand(states[-1], b), logdet, lost


def _reverse(net: Net, x, exact_jacobian: bool = False):
    """Adjoints from the output identity: returns (state at the input, log det so far, lost); see
    :func:`_forward` for ``exact_jacobian``."""
    b = x.shape[0]
    values = net.forward_all(x)
    m = net.nodes[-1].size
    lost = torch.zeros(b, dtype=torch.bool)
    logdet = torch.zeros(b, dtype=torch.float64)
    chain = _is_chain(net)
    adjoint: list[_Scaled | None] = [None] * len(net.nodes)
    adjoint[-1] = _Scaled(torch.zeros(1, dtype=torch.float64), torch.eye(m, dtype=torch.float64)[None], True)
    last = len(net.nodes) - 1
    for i in range(last, 0, -1):
        node, st = net.nodes[i], adjoint[i]
        adjoint[i] = None
        if st is None:  # the output does not depend on this node
            continue
        op = node.op
        if isinstance(op, Add):
            contributions = [(node.inputs[0], st), (node.inputs[1], st)]
        elif isinstance(op, Activation):
            log_d, sign = _log_derivative(op, values[node.inputs[0]])
            if i == last and not exact_jacobian:
                # V = I: D is diagonal, so its log |det| is the sum of log |D| (no QR; V stays I)
                logdet = logdet + log_d.sum(1)
                new = _Scaled(torch.zeros(1, dtype=torch.float64), st.V, True)
                if sign is not None and (sign < 0).any():
                    new = _Scaled(torch.zeros(b, dtype=torch.float64), st.V * sign[:, None, :])
            else:
                new, graded = _scale_rows(_expand(st, b), log_d, sign, lost)
                if chain:
                    if not exact_jacobian:
                        new = _orthonormalise(new, graded, logdet)
                else:
                    lost |= graded
            contributions = [(node.inputs[0], new)]
        else:
            n_in = net.nodes[node.inputs[0]].size
            contributions = [(node.inputs[0], st.after_linear(_apply_transpose(op, st.V, n_in, st.identity)))]
        for j, c in contributions:
            adjoint[j] = c if adjoint[j] is None else _expand(adjoint[j], b) + _expand(c, b)
    return adjoint[0], logdet, lost


def _expand(st: _Scaled, b: int) -> _Scaled:
    if st.V.shape[0] == b:
        return st
    return _Scaled(st.s.expand(b), st.V.expand(b, -1, -1), st.identity, st.pending)


@dataclass(frozen=True)
class LogVolume:
    """Result of :func:`log_volume`: ``value`` (B,) natural log of ``prod_{i<=k} sigma_i(J)``
    (``k = min(m, d)``), ``lost`` (B,) bool: points where precision may have been lost."""

    value: torch.Tensor
    lost: torch.Tensor


def log_volume(net: Net, x: torch.Tensor) -> LogVolume:
    """``sum_i log sigma_i(J)`` over all ``min(m, d)`` singular values of the Jacobian of ``net`` at x.

    Parameters
    ----------
    net : Net
        The features (its output, unscaled); every op must satisfy :func:`supports`.
    x : Tensor of shape (B, d)
        Flattened float64 inputs.

    Returns
    -------
    LogVolume
        ``value`` is ``0.5 log det(J^T J)`` when d <= m, else ``0.5 log det(J J^T)``; ``-inf`` exactly
        where J has rank below ``min(m, d)`` for structural reasons (dead units, narrower layers).

    Examples
    --------
    >>> import torch, netatlas
    >>> _ = torch.manual_seed(0)  # the weights are random: fix them so the example is reproducible
    >>> net = netatlas.nets.from_torch(torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Sigmoid()))
    >>> log_volume(net, torch.full((1, 2), 1e3, dtype=torch.float64)).value.isfinite().item()
    True
    """
    m, d = net.n_outputs, net.n_inputs
    k = min(m, d)
    if _is_chain(net) and min(node.size for node in net.nodes) < k:  # rank < k in exact arithmetic
        b = x.shape[0]
        return LogVolume(torch.full((b,), -math.inf, dtype=torch.float64), torch.zeros(b, dtype=torch.bool))
    st, logdet, lost = _forward(net, x) if d <= m else _reverse(net, x)
    st = _expand(st, x.shape[0])
    if st.pending:
        st = st.normalised()
    value = logdet + _final_log_det(st.V) + k * st.s
    value = torch.where(torch.isnan(value), -math.inf, value)  # a zero matrix: -inf scale, -inf det
    return LogVolume(value, lost)


def scaled_jacobian(net: Net, x: torch.Tensor):
    """J = e^s V with stable derivatives: returns (s (B,), V (B, m, d), lost (B,))."""
    m, d = net.n_outputs, net.n_inputs
    if d <= m:
        st, _, lost = _forward(net, x, exact_jacobian=True)
        st = _expand(st, x.shape[0]).normalised()
        return st.s, st.V.mT, lost
    st, _, lost = _reverse(net, x, exact_jacobian=True)
    st = _expand(st, x.shape[0]).normalised()
    return st.s, st.V, lost


def structural_rank(net: Net, x: torch.Tensor) -> torch.Tensor:
    """An upper bound on rank J at each point (B,): the least of m, d, every layer's width, every Linear
    weight's rank and every activation's count of units with non-zero derivative (on a chain; min(m, d)
    on a graph with additions)."""
    b = x.shape[0]
    bound = torch.full((b,), min(net.n_outputs, net.n_inputs), dtype=torch.long)
    if not _is_chain(net):
        return bound
    values = net.forward_all(x)
    for i, node in enumerate(net.nodes[1:], start=1):
        op = node.op
        bound = bound.clamp_max(node.size)
        if isinstance(op, Linear):
            bound = bound.clamp_max(int(torch.linalg.matrix_rank(op.weight)))
        elif isinstance(op, Activation):
            alive = torch.isfinite(log_derivative(op, values[i - 1])[0]).sum(1)
            bound = torch.minimum(bound, alive)
    return bound
