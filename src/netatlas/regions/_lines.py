"""Exact linear pieces of a network along a segment ``x(t) = x0 + t (x1 - x0)``, t in [0, 1], in
any input dimension (Hanin & Rolnick count regions this way).

Activation nodes are processed in order; on each piece every earlier node has a fixed pattern, so
node k's pre-activation is affine in t there (``_affine.gated_values`` with d2 = 0) and each unit's
zero is one breakpoint (hardtanh: one per finite bound). For a ``Max`` node, every crossing of two
entries of a window is a candidate breakpoint; it is kept where the window's arg-max changes (ties
go to the first entry, as in the partition). A breakpoint within ``LINE_TOLERANCE`` (in t) of
another or of a piece's end is merged with it. A unit with ``z - b`` vanishing on a piece up to
round-off (NOTE [vanishing units] in ``_roundoff``; b a breakpoint) has no breakpoint there and
its bit is 0; two entries of a ``Max`` window equal up to round-off tie (the first wins).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from netatlas._checks import require_finite
from netatlas._memory import format_bytes
from netatlas.nets import Max, as_net
from netatlas.regions._affine import (
    carried_nodes,
    carried_rows,
    check_piecewise_linear,
    gated_values,
    gates_from_states,
)
from netatlas.regions._graphmaps import _VanishingGraph
from netatlas.regions._maxkernels import line_first_max, line_max_crossings
from netatlas.regions._scale import RegionLimitError, budget_bytes
from netatlas.slices import Line

__all__ = ["LINE_TOLERANCE", "LinePieces", "along_line"]

#: Breakpoints closer than this in t (the segment has length 1 in t) are one breakpoint.
LINE_TOLERANCE = 1e-10


@dataclass(frozen=True, eq=False)
class LinePieces:
    """The linear pieces of a network along a segment.

    Attributes
    ----------
    breakpoints : ndarray of shape (B,)
        Interior breakpoints, sorted, in (0, 1).
    edges : ndarray of shape (B + 2,)
        ``[0, *breakpoints, 1]``: piece i is ``[edges[i], edges[i + 1]]``.
    patterns : ndarray of shape (B + 1, N) bool
        On/off state of every hidden unit on each piece (``net.activations`` order; columns as in
        ``Partition.patterns``).
    argmax : ndarray of shape (B + 1, M) int
        Arg-max position of every ``Max`` output on each piece (as in ``Partition.argmax``).
    output_slope, output_offset : ndarray of shape (B + 1, n_outputs)
        On piece i the output is ``output_slope[i] * t + output_offset[i]``.
    line : Line
    """

    breakpoints: np.ndarray
    patterns: np.ndarray
    output_slope: np.ndarray
    output_offset: np.ndarray
    line: Line
    argmax: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.int64))

    @property
    def edges(self) -> np.ndarray:
        return np.concatenate([[0.0], self.breakpoints, [1.0]])

    @property
    def num_pieces(self) -> int:
        return len(self.breakpoints) + 1

    def locate(self, t) -> np.ndarray:
        """Piece index of each t (P,) in [0, 1]."""
        t = np.asarray(t, dtype=np.float64)
        require_finite(t, "LinePieces.locate: t")
        return np.clip(np.searchsorted(self.breakpoints, t, side="right"), 0, len(self.breakpoints))

    def outputs(self, t) -> np.ndarray:
        """Network outputs (P, n_outputs) at parameters t, from the pieces' affine maps."""
        t = np.asarray(t, dtype=np.float64).reshape(-1)
        i = self.locate(t)
        return self.output_slope[i] * t[:, None] + self.output_offset[i]

    def to_dict(self) -> dict:
        return {"num_pieces": self.num_pieces, "breakpoints": self.breakpoints.tolist(),
                "n_units": int(self.patterns.shape[1]), "length": self.line.length}


def along_line(net, x0, x1=None, *, tolerance: float = LINE_TOLERANCE, max_regions: int | None = None,
               memory_budget: int | str | None = "auto") -> LinePieces:
    """Exact breakpoints and activation patterns of a network along the segment from x0 to x1.

    Parameters
    ----------
    net : Net or torch.nn.Module
    x0, x1 : array_like of the network's input shape, or a :class:`~netatlas.Line` as ``x0``
    tolerance : float
        Breakpoint merge tolerance in t.
    max_regions : int, optional
        The most pieces (the line's linear regions) to allow: the count after each activation node
        is a lower bound of the final one, so the call stops as soon as it passes (default: no limit).
    memory_budget : int, str or None
        Bytes (or e.g. "8GB") the pieces' maps may take, checked before each node's maps are built;
        "auto" (default): half the memory available; None: no limit.

    Returns
    -------
    LinePieces

    Raises
    ------
    RegionLimitError
        When the pieces pass ``max_regions`` or their maps the memory budget.

    Examples
    --------
    >>> import netatlas
    >>> net = netatlas.nets.mlp([3, 16, 16, 1], seed=0)
    >>> pieces = netatlas.regions.along_line(net, [-1.0, 0.0, 0.5], [1.0, 0.5, -0.5])
    >>> pieces.num_pieces == len(pieces.breakpoints) + 1, pieces.patterns.shape[1]
    (True, 32)
    >>> netatlas.regions.along_line(net, [-50.0, 0.0, 0.5], [50.0, 0.5, -0.5], max_regions=3)
    Traceback (most recent call last):
    ...
    netatlas._errors.RegionLimitError: along_line: ... pieces ... above max_regions=3; ...
    """
    line = x0 if isinstance(x0, Line) and x1 is None else Line(x0, x1)
    net = as_net(net, input_shape=line.input_shape)
    if line.x0.size != net.n_inputs:
        raise ValueError(f"along_line: the line's inputs have {line.x0.size} numbers but the network "
                         f"expects {net.n_inputs} (shape {net.input_shape})")
    check_piecewise_linear(net, "along_line")
    limit = _PieceLimit(net, max_regions, memory_budget)
    x_c = line.x0.ravel().astype(np.float64)
    d1 = line.direction.ravel().astype(np.float64)
    d2 = np.zeros_like(d1)
    ops = [net.nodes[i].op for i in net.nonlinear]
    edges = np.array([0.0, 1.0])
    states: list[np.ndarray] = []
    vanish = _VanishingGraph(net, x_c, d1, d2)  # NOTE [vanishing units] in _roundoff
    carried: dict = {}  # values the pieces share with their parents: each node's maps go on from there
    for k, (op, node_index) in enumerate(zip(ops, net.nonlinear, strict=True)):
        limit.check(len(edges) - 1, k, len(ops))
        pre = net.nodes[node_index].inputs[0]
        keep = carried_nodes(net, node_index)
        values = gated_values(net, [pre, *keep], x_c, d1, d2, gates_from_states(net, states), carried)
        M = np.array(values[pre].expand(len(edges) - 1, -1, -1).numpy())
        if isinstance(op, Max):
            maps, windows = vanish.max_ties(pre, M, states, op.index.numpy())  # equal entries tie exactly
            edges, parent, state = _split_max(edges, maps[:, 0], maps[:, 2], windows, tolerance)
        elif op.name == "identity":
            states.append(np.ones((len(edges) - 1, M.shape[2]), np.uint8))
            carried = {j: values[j] for j in keep}
            continue
        else:
            shifted = vanish.shifted(pre, M, states, op.breakpoints)
            a_all, c_all = shifted[:, 0], shifted[:, 2]  # z(t) - b = a t + c on each piece, (P, n * n_breakpoints)
            edges, parent, mids = _split_zeros(edges, a_all, c_all, tolerance)
            state = (a_all[parent] * mids[:, None] + c_all[parent] > 0).astype(np.uint8)
        states = [st[parent] for st in states] + [state]
        carried = carried_rows({j: values[j] for j in keep}, parent)
    limit.check(len(edges) - 1, len(ops), len(ops))
    last = len(net.nodes) - 1
    out = gated_values(net, [last], x_c, d1, d2, gates_from_states(net, states), carried)[last]
    out = out.expand(len(edges) - 1, -1, -1).numpy()
    n_pieces = len(edges) - 1
    bits = [st.astype(bool) for st, op in zip(states, ops, strict=True) if not isinstance(op, Max)]
    choices = [st.astype(np.int64) for st, op in zip(states, ops, strict=True) if isinstance(op, Max)]
    patterns = np.concatenate(bits, axis=1) if bits else np.zeros((n_pieces, 0), bool)
    argmax = np.concatenate(choices, axis=1) if choices else np.zeros((n_pieces, 0), np.int64)
    return LinePieces(edges[1:-1].copy(), patterns, out[:, 0].copy(), out[:, 2].copy(), line, argmax)


class _PieceLimit:
    """``along_line``'s ``max_regions`` (pieces) and memory budget, checked before each node."""

    def __init__(self, net, max_regions, memory_budget):
        if max_regions is not None and (isinstance(max_regions, bool) or not isinstance(max_regions, (int, np.integer))
                                        or max_regions < 1):
            raise ValueError(f"along_line: max_regions must be an integer >= 1 or None; got {max_regions!r}")
        self.max_regions = max_regions
        self.budget = budget_bytes(memory_budget, "along_line")
        # each piece holds a node's maps (3 rows, float64) in ~3 arrays at a time (as _scale's estimate)
        self.per_piece = 72 * max(node.size for node in net.nodes)

    def check(self, n_pieces, k, n_nodes) -> None:
        where = f"along_line: {n_pieces:,} pieces before activation node {k + 1} of {n_nodes}" if k < n_nodes \
            else f"along_line: {n_pieces:,} pieces after the last activation node"
        advice = "use a shorter segment, or raise max_regions / memory_budget"
        if self.max_regions is not None and n_pieces > self.max_regions:
            raise RegionLimitError(f"{where} (a lower bound of the final count), above "
                                   f"max_regions={self.max_regions:,}; {advice}")
        if self.budget and n_pieces * self.per_piece > self.budget:
            raise RegionLimitError(f"{where}, ~{format_bytes(n_pieces * self.per_piece)} of maps at "
                                   f"~{self.per_piece:,} bytes per piece, above the memory budget of "
                                   f"{format_bytes(self.budget)}; {advice}")


def _split_zeros(edges, a, c, tolerance):
    """Refine the pieces by the zeros of z = a t + c (P, n) that cross inside them."""
    lo, hi = edges[:-1, None], edges[1:, None]
    za, zb = a * lo + c, a * hi + c
    tol = tolerance * np.abs(a)
    cross = ((za > tol) & (zb < -tol)) | ((za < -tol) & (zb > tol))
    p_idx, j_idx = np.nonzero(cross)
    t_new = -c[p_idx, j_idx] / a[p_idx, j_idx]
    return _refine(edges, t_new, tolerance)


def _refine(edges, t_new, tolerance):
    inner = np.unique(np.concatenate([edges[1:-1], t_new]))
    inner = inner[(inner > tolerance) & (inner < 1 - tolerance)]
    if len(inner):
        inner = inner[np.concatenate([[True], np.diff(inner) > tolerance])]
    t_all = np.concatenate([[0.0], inner, [1.0]])
    mids = (t_all[:-1] + t_all[1:]) / 2
    parent = np.clip(np.searchsorted(edges, mids, side="right") - 1, 0, len(edges) - 2)
    return t_all, parent, mids


def _split_max(edges, a, c, index, tolerance):
    """Refine the pieces where a window's arg-max changes; returns (edges, parent, choices)
    (compiled kernels: ``_maxkernels.line_max_crossings`` and ``line_first_max``)."""
    index = np.ascontiguousarray(index, dtype=np.int64)
    a, c = np.ascontiguousarray(a), np.ascontiguousarray(c)
    t_all, parent, mids = _refine(edges, line_max_crossings(edges, a, c, index, tolerance), tolerance)
    choice = line_first_max(a, c, np.ascontiguousarray(parent, dtype=np.int64), mids, index, tolerance)
    # keep only the old edges and the new ones where the arg-max changes
    old = np.isin(t_all[1:-1], edges[1:-1])
    keep = old | np.any(choice[1:] != choice[:-1], axis=1)
    t_kept = np.concatenate([[0.0], t_all[1:-1][keep], [1.0]])
    first = np.concatenate([[0], np.flatnonzero(keep) + 1])
    return t_kept, parent[first], choice[first].astype(np.int16)
