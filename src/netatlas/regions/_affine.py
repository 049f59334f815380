"""Per-face affine maps of any node of a piecewise-linear :class:`~netatlas.nets.Net`, with the
activation pattern of each face frozen ("gated forward pass").

With every activation replaced by multiplication with its slope on the face (1 / 0 for ReLU, 1 /
alpha for LeakyReLU; hardtanh: slope 1 between its bounds, else 0 plus the bound as a constant) and
every ``Max`` output by the input entry that is its arg-max on the face, the network is affine in
the input, so along a plane
``x(u, v) = x_c + u d1 + v d2`` every node value is ``A u + B v + c``. The two tangents (A, B) are
pushed through the *linear part* of each op (biases dropped) and the offset c through the op
itself, so nothing is obtained by differencing.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
import torch.nn.functional as F

from netatlas._errors import UnsupportedLayerError
from netatlas.nets import (
    Activation,
    AdaptiveAvgPool,
    Add,
    AvgPool,
    ChannelAffine,
    Concat,
    Conv,
    GatherLinear,
    Input,
    Linear,
    Max,
    Net,
    Node,
    Pad,
)

__all__ = ["check_piecewise_linear", "activation_slopes", "gated_maps", "gated_values", "carried_nodes",
           "carried_rows", "gates_from_states", "affine_matrix", "csr_rows", "is_affine", "state_columns",
           "gate_from_state", "magnitude_net", "magnitude_gate", "widest_gate", "ROWWISE_MAX"]

#: A ``Max`` gate for :func:`gated_maps` that takes each row's maximum over the window instead of
#: one selected entry (a bound, over every selection, of a magnitude pass).
ROWWISE_MAX = "rowwise-max"


def check_piecewise_linear(net, where: str) -> None:
    """Raise UnsupportedLayerError naming the first activation that is not piecewise linear, or the
    first smooth op (normalisation, LRN)."""
    for text in net.smooth_ops():
        raise UnsupportedLayerError(
            f"{where}: {text} is smooth, not piecewise linear; exact regions need relu, leaky_relu, hardtanh or "
            "identity activations, affine ops and max pooling (use netatlas.metric for smooth networks)")
    for position, i in enumerate(net.activations):
        op = net.nodes[i].op
        if not op.piecewise_linear:
            raise UnsupportedLayerError(
                f"{where}: activation {op.name!r} at node {i} ({net.nodes[i].name!r}, activation "
                f"{position}) is not piecewise linear; exact regions need relu, leaky_relu, hardtanh or "
                "identity activations and max pooling (use netatlas.metric for smooth networks)")


def activation_slopes(op: Activation) -> tuple[float, float]:
    """(slope where z > 0, slope where z <= 0) of a piecewise-linear activation."""
    if op.name == "relu":
        return 1.0, 0.0
    if op.name == "leaky_relu":
        return 1.0, float(op.params["negative_slope"])
    if op.name == "identity":
        return 1.0, 1.0
    raise AssertionError(op.name)


def state_columns(op) -> int:
    """Columns a nonlinear node contributes to a region's state: one bit per unit and breakpoint
    for an activation (identity: one, always on; hardtanh: ``z > min_val`` for every unit, then
    ``z > max_val`` for every unit, finite bounds only), one arg-max per output for ``Max``."""
    if isinstance(op, Max):
        return op.size
    return 0 if op.name == "identity" else len(op.breakpoints)


def gate_from_state(op, state, size):
    """The gate of a nonlinear node on F faces from its state: for an activation ``(slope, const)``
    (F, size) arrays (const may be None) with ``value = slope * z + const``; for ``Max`` the (F, n_out)
    input positions of the arg-maxes. ``state`` is (F, columns) uint8 bits or (F, n_out) int choices
    (positions within the rows of ``op.index``)."""
    if isinstance(op, Max):
        index = op.index.numpy()
        return index[np.arange(index.shape[0])[None, :], state.astype(np.int64)]
    if op.name == "hardtanh":
        lo, hi = op.params["min_val"], op.params["max_val"]
        bits = state.astype(bool)
        if np.isfinite(lo) and np.isfinite(hi):
            above_lo, above_hi = bits[:, :size], bits[:, size:]
        elif np.isfinite(lo):
            above_lo, above_hi = bits, np.zeros_like(bits)
        else:
            above_lo, above_hi = np.ones_like(bits), bits
        slope = (above_lo & ~above_hi).astype(np.float64)
        const = np.where(above_hi, hi, 0.0) + (np.where(~above_lo, lo, 0.0) if np.isfinite(lo) else 0.0)
        return slope, const
    on, off = activation_slopes(op)
    return np.where(state.astype(bool), on, off), None


def _first(gate):
    return gate[0] if isinstance(gate, tuple) else gate


def _linear_part(op, x: torch.Tensor) -> torch.Tensor:
    if isinstance(op, Linear):
        return F.linear(x, op.weight)
    if isinstance(op, Conv):
        return op.apply(x, None)
    if isinstance(op, ChannelAffine):
        if op.scale.numel() == 1:
            return x * op.scale
        view = (1, -1) + (1,) * (len(op.in_shape) - 1)
        return (x.reshape(-1, *op.in_shape) * op.scale.reshape(view)).flatten(1)
    if isinstance(op, (AvgPool, AdaptiveAvgPool, Pad)):
        return op(x)  # average pooling and zero padding are linear
    if isinstance(op, GatherLinear):
        return op.linear_part(x)
    raise UnsupportedLayerError(f"regions: op {op.describe()} is not supported")


def is_affine(op) -> bool:
    """True for the ops that are affine maps of their (single) input."""
    return isinstance(op, (Linear, Conv, ChannelAffine, AvgPool, AdaptiveAvgPool, Pad, GatherLinear))


#: Rows of the identity :func:`affine_matrix` pushes through the ops at a time (bounds torch's workspace).
AFFINE_BLOCK_ROWS = 256


def affine_matrix(ops, n_in: int, max_entries: int | None = None):
    """The chain of affine ``ops`` on n_in inputs as one dense map: (W (n_out, n_in), b (n_out,)), the
    linear part applied to the identity (exact, nothing is differenced); None when a matrix on the way
    would have more than ``max_entries`` entries."""
    if max_entries is not None and n_in * n_in > max_entries:  # before the identity is allocated
        return None
    with torch.no_grad():
        off = torch.zeros(1, n_in, dtype=torch.float64)
        for op in ops:
            if max_entries is not None and n_in * max(off.shape[1], 1) > max_entries:
                return None
            off = op(off)
        if max_entries is not None and n_in * off.shape[1] > max_entries:
            return None
        # the identity's rows AFFINE_BLOCK_ROWS at a time: a conv's workspace (rows x patch x pixels) on
        # all n_in rows at once took 1.8 GB for a 17M-entry map (AlexNet's second conv at 224 x 224)
        blocks = []
        for start in range(0, max(n_in, 1), AFFINE_BLOCK_ROWS):  # n_in = 0: one empty block, as eye(0)
            rows = torch.arange(start, min(start + AFFINE_BLOCK_ROWS, n_in))
            lin = torch.zeros(len(rows), n_in, dtype=torch.float64)
            lin[torch.arange(len(rows)), rows] = 1.0
            for op in ops:
                lin = _linear_part(op, lin)
            blocks.append(lin.numpy().T)
    return np.ascontiguousarray(np.concatenate(blocks, axis=1)), off[0].numpy().copy()


def csr_rows(A: np.ndarray):
    """A dense matrix (m, n) as compressed sparse rows: (ptr (m + 1,), idx, val) of its nonzeros."""
    rows, cols = np.nonzero(A)
    ptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=A.shape[0]))]).astype(np.int64)
    return ptr, cols.astype(np.int64), np.ascontiguousarray(A[rows, cols], dtype=np.float64)


def gated_maps(net, node_index: int, x_c: np.ndarray, d1: np.ndarray, d2: np.ndarray,
               gates: list[np.ndarray | None]) -> np.ndarray:
    """Affine maps (F, 3, size) of node ``node_index``'s value on F faces.

    Parameters
    ----------
    net : Net
    node_index : int
        The node whose value is wanted (e.g. the input of an activation node, or the output).
    x_c, d1, d2 : ndarray of shape (n_inputs,)
        The reference point (u = v = 0) and the plane directions.
    gates : list, one entry per node of ``net.nonlinear`` before ``node_index`` (``None`` for the
        ones after it). For an activation node: the slopes (F, size_k), or ``(slope, const)`` with
        ``value = slope * z + const`` (const may be None); for a ``Max`` node: (F, n_out) int input
        positions of the arg-maxes (see ``gate_from_state``), or ``ROWWISE_MAX``.

    Returns
    -------
    ndarray of shape (F, 3, size): rows ``[d/du, d/dv, value at (0, 0)]``.
    """
    n_faces = next((_first(g).shape[0] for g in gates if g is not None and not isinstance(g, str)), 1)
    out = gated_values(net, [node_index], x_c, d1, d2, gates.__getitem__)[node_index]
    if out.shape[0] != n_faces:
        out = out.expand(n_faces, -1, -1)
    return np.ascontiguousarray(out.numpy())


def carried_nodes(net, node_index: int) -> list[int]:
    """The nodes before ``node_index`` whose values later nodes read: a face (or piece of a line)
    split at that node passes these values on to its children, which share them."""
    return [j for j in range(node_index)
            if any(j in net.nodes[m].inputs for m in range(node_index, len(net.nodes)))]


def gates_from_states(net, states):
    """``gate(k)`` for :func:`gated_values` from the faces' states, one entry per nonlinear node as
    :func:`gate_from_state` takes them (anything whose ``[:]`` is that array)."""
    def gate(k):
        node = net.nodes[net.nonlinear[k]]
        return gate_from_state(node.op, states[k][:], node.size)

    return gate


def carried_rows(values, rows):
    """The carried values (node -> (P, 3, size) tensors) of children whose parents are ``rows`` (C,)
    of them; values computed before any gate (batch 1) hold for every face as they are."""
    index = torch.as_tensor(rows)
    return {j: v if v.shape[0] == 1 else v[index] for j, v in values.items()}


def gated_values(net, targets, x_c, d1, d2, gate, known=None, d3=None) -> dict:
    """The values (batch, 3, size) torch tensors of the nodes ``targets`` and of every node the pass
    went through, batch F (or 1 where no gate has entered yet). ``gate(k)`` is the gate of the k-th
    node of ``net.nonlinear`` (as in :func:`gated_maps`); it is asked only for the nodes the pass
    goes through. ``known``: node -> values already computed for these faces, where the pass starts
    (a child face shares its parent's values before the node that split it). ``d3``: a third direction
    (a 3-D slice): the values then have 4 rows, d/du, d/dv, d/dw and the value at the reference point."""
    values = dict(known or {})
    need, stack = set(), list(targets)
    while stack:
        i = stack.pop()
        if i not in values and i not in need:
            need.add(i)
            stack.extend(net.nodes[i].inputs)
    act_position = {n: k for k, n in enumerate(net.nonlinear)}
    with torch.no_grad():
        for i in sorted(need):
            node = net.nodes[i]
            op = node.op
            if isinstance(op, Input):
                rows = [d1, d2, x_c] if d3 is None else [d1, d2, d3, x_c]
                values[i] = torch.from_numpy(np.stack(rows))[None]  # (1, 3 or 4, n_inputs)
                continue
            if isinstance(op, Add):
                values[i] = values[node.inputs[0]] + values[node.inputs[1]]
                continue
            if isinstance(op, Concat):
                parts = [values[j] for j in node.inputs]
                batch = max(p.shape[0] for p in parts)
                rows = parts[0].shape[1]
                flat = [p.expand(batch, -1, -1).reshape(batch * rows, -1) for p in parts]
                values[i] = op(*flat).reshape(batch, rows, -1)
                continue
            x = values[node.inputs[0]]
            if isinstance(op, Activation):
                g = gate(act_position[i])
                slope, const = g if isinstance(g, tuple) else (g, None)
                y = x * torch.from_numpy(np.asarray(slope, dtype=np.float64))[:, None, :]  # (F, 3, size)
                if const is not None:
                    y[:, -1] += torch.from_numpy(np.asarray(const, dtype=np.float64))
                values[i] = y
                continue
            if isinstance(op, Max):
                g = gate(act_position[i])
                if isinstance(g, str):  # ROWWISE_MAX
                    batch, rows, size = x.shape
                    values[i] = op(x.reshape(batch * rows, size)).reshape(batch, rows, -1)
                    continue
                picked = torch.from_numpy(np.asarray(g, dtype=np.int64))  # (F, n_out)
                batch = max(x.shape[0], picked.shape[0])
                values[i] = torch.gather(x.expand(batch, -1, -1), 2, picked[:, None, :].expand(batch, x.shape[1], -1))
                continue
            batch, rows, size = x.shape
            lin = _linear_part(op, x.reshape(batch * rows, size)).reshape(batch, rows, -1)
            offset = op(x[:, -1])  # includes the bias
            values[i] = torch.cat([lin[:, :-1], offset[:, None]], dim=1)
    return values


def magnitude_net(net) -> Net | None:
    """The same graph with every weight, bias, scale and shift replaced by its absolute value, or
    None if it has an op this does not know. Its gated maps at ``|x_c|, |d1|, |d2|`` with the gates
    of :func:`magnitude_gate` are the magnitudes S of the maps' terms (``_roundoff``, NOTE
    [vanishing units]). Average pooling (plain or adaptive) already has weights >= 0, and
    concatenation, activations and a gated ``Max`` (a selection) keep their terms as they are.

    >>> from netatlas.nets import from_torch, mlp
    >>> net = magnitude_net(from_torch(mlp([2, 3, 1], seed=0)))
    >>> bool((net.nodes[1].op.weight >= 0).all())
    True
    """
    nodes = []
    for node in net.nodes:
        op = node.op
        if isinstance(op, (Linear, Conv)):
            op = dataclasses.replace(op, weight=op.weight.abs(), bias=op.bias.abs())
        elif isinstance(op, ChannelAffine):
            op = dataclasses.replace(op, scale=op.scale.abs(), shift=op.shift.abs())
        elif isinstance(op, GatherLinear):
            op = dataclasses.replace(op, weight=None if op.weight is None else op.weight.abs(),
                                     shift=None if op.shift is None else op.shift.abs())
        elif not isinstance(op, (Input, Add, AvgPool, AdaptiveAvgPool, Pad, Concat, Activation, Max)):
            return None
        nodes.append(Node(op, node.inputs, node.shape, node.name))
    return Net(nodes)


def magnitude_gate(op, gate):
    """The gate of a magnitude pass (:func:`magnitude_net`) for ``op``'s gate on some faces:
    absolute slopes and constants for an activation; for ``Max`` the same selection."""
    if isinstance(op, Max) or gate is None:
        return gate
    slope, const = gate if isinstance(gate, tuple) else (gate, None)
    return np.abs(slope), None if const is None else np.abs(const)


def widest_gate(op, size):
    """A face-independent gate whose magnitude pass bounds that of every face's gate: the largest
    absolute slope and constant of an activation, each row's largest window entry for ``Max``."""
    if isinstance(op, Max):
        return ROWWISE_MAX
    if op.name == "hardtanh":  # slope 1 between the bounds, or slope 0 plus a bound
        bound = max((abs(v) for v in op.breakpoints), default=0.0)
        return np.ones((1, size)), np.full((1, size), bound)
    return np.full((1, size), max(abs(v) for v in activation_slopes(op))), None
