"""The graph path of the exact partition (NOTE [the algorithm] in ``_partition``): any supported graph
(max pooling, hardtanh, residual additions, concatenation), split depth first at each nonlinear node,
``GRAPH_CHUNK_FACES`` faces at a time, each face's maps from a gated forward pass of its state (sparse
updates from face to face through the affine segments, ``_segments``)."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass

import numpy as np
import torch

from netatlas.nets import Max, Net
from netatlas.regions import _kernels as K
from netatlas.regions._affine import (
    activation_slopes,
    carried_nodes,
    carried_rows,
    gated_values,
    gates_from_states,
    state_columns,
)
from netatlas.regions._graphmaps import _VanishingGraph, faces_with_small_columns, gated_columns
from netatlas.regions._maxkernels import split_faces_max, tie_candidates
from netatlas.regions._partition import Partition, assemble_partition, plane_frame
from netatlas.regions._prepared import prepared
from netatlas.regions._roundoff import CANDIDATE_RATIO
from netatlas.regions._segments import (
    REFRESH,
    gather_chosen,
    plan_updates,
    restricted,
    segment,
    update_from_previous,
    update_rows_from_previous,
)
from netatlas.regions._settled import needed_columns, settled_states
from netatlas.regions._sink import RegionSink

__all__ = ["GRAPH_CHUNK_BYTES", "GRAPH_CHUNK_FACES", "graph_partition"]

log = logging.getLogger(__name__)

#: Faces whose per-face maps one step of the depth-first graph partition holds at a time (at most).
GRAPH_CHUNK_FACES = 512
#: Bytes of one such batch's maps of the widest node: wide nets (a ResNet on 32x32 images) get
#: smaller batches, since every level of the depth-first run holds one.
GRAPH_CHUNK_BYTES = 64 * 2**20


@dataclass
class _GraphRun:
    """What every level of the depth-first graph partition shares."""

    net: Net
    ops: list
    is_max: list
    bit_cols: list  # pattern columns per nonlinear node (0 for Max)
    base: list  # first edge label per nonlinear node
    frame: tuple  # x_c, d1, d2
    tol: float
    diam: float
    out: RegionSink
    vanish: _VanishingGraph  # NOTE [vanishing units] in _roundoff
    segments: list  # per nonlinear node, the affine segment before it (``_segments``) or None
    chunk: int = GRAPH_CHUNK_FACES
    within: float | None = None  # faces farther than this from the plane's centre are dropped
    settled: list | None = None  # per nonlinear node, a ``_settled.Settled`` or None (``within`` runs only)
    needed: list | None = None  # per node, (size,) bool: the columns the run reads (``_settled.needed_columns``)
    narrowed: dict = dataclasses.field(default_factory=dict)  # k -> the segment's A for the needed columns
    buffers: dict = dataclasses.field(default_factory=dict)  # k -> level k's maps buffer (``_zeroed``)


def graph_partition(net, plane, tol, limits=None, within=None) -> Partition:
    """The exact partition of ``plane`` by the graph path; ``within``: only the regions closer than this
    to the plane's centre (local complexity's discs): a face farther away is dropped as soon as it is
    split off, with everything it would have become (its children lie inside it). A ``within`` run also
    splits each node by its units that are not settled on the window only (NOTE [settled nodes] in
    ``_settled``: the others cut nothing and have one state on every face), stops splitting once every
    node left is settled, and computes no output maps (the Partition's ``maps`` have 0 columns)."""
    center, xy, off, lab, x_c, d1, d2, diam = plane_frame(plane)
    ops = [net.nodes[i].op for i in net.nonlinear]
    is_max = [isinstance(op, Max) for op in ops]
    # pattern columns per activation node (identity: one per unit, always on); Max outputs are
    # numbered after all pattern columns in the edge labels
    bit_cols = [0 if m else net.nodes[i].size * (1 if op.name == "identity" else state_columns(op))
                for op, m, i in zip(ops, is_max, net.nonlinear, strict=True)]
    base, b_bits, b_max = [], 0, sum(bit_cols)
    for m, op, nb in zip(is_max, ops, bit_cols, strict=True):
        base.append(b_max if m else b_bits)
        b_max += op.size if m else 0
        b_bits += nb
    out = RegionSink(limits)
    chunk = int(np.clip(GRAPH_CHUNK_BYTES // (24 * max(node.size for node in net.nodes)), 16, GRAPH_CHUNK_FACES))
    # the segments' unrolled matrices depend on the net alone: built once per Net (repeated partitions,
    # tiles and local complexity's discs reuse them)
    segments = prepared(net).cached(("graph segments",), lambda net: [segment(net, k) for k in range(len(ops))])
    settled = needed = None
    if within is not None:
        settled = settled_states(net, x_c, d1, d2, tuple(np.abs(xy).max(0)), tol, diam)
        needed = needed_columns(net, settled)
    run = _GraphRun(net, ops, is_max, bit_cols, base, (x_c, d1, d2), tol, diam, out,
                    _VanishingGraph(net, x_c, d1, d2), segments, chunk, within, settled, needed)
    _graph_level(run, 0, xy, off, lab, [])
    states = [rows.array() for rows in out.states] + [None] * (len(ops) - len(out.states))
    act_nodes = [i for i, m in zip(net.nonlinear, is_max, strict=True) if not m]
    max_nodes = [i for i, m in zip(net.nonlinear, is_max, strict=True) if m]
    part = assemble_partition(out, plane, center, [c for c, m in zip(bit_cols, is_max, strict=True) if not m],
                     tuple(net.nodes[i].name for i in act_nodes), tol, "graph",
                     [st for st, m in zip(states, is_max, strict=True) if not m])
    if not max_nodes:
        return part
    return dataclasses.replace(
        part, choices=tuple(st for st, m in zip(states, is_max, strict=True) if m),
        max_units_per_layer=tuple(net.nodes[i].size for i in max_nodes),
        max_layer_names=tuple(net.nodes[i].name for i in max_nodes))


def _unpacked(run, states):
    """States as gate_from_state wants them: pattern bits unpacked (on demand: ``[faces]`` of an
    entry unpacks those rows), arg-maxes as they are."""
    return [st if run.is_max[k] else _Unpacking(st, run.bit_cols[k]) for k, st in enumerate(states)]


class _Unpacking:
    """Packed pattern bits whose rows unpack when indexed (``[faces]`` or ``[:]``)."""

    def __init__(self, packed, count):
        self.packed, self.count = packed, count

    def __getitem__(self, rows):
        return np.unpackbits(self.packed[rows], axis=1, count=self.count)


def _segment_maps(run, k, unpacked, carried, rows):
    """Maps (F, 3, n) of nonlinear node k's input on F faces, and the values their children carry,
    through the affine segment ``run.segments[k]`` by sparse updates from face to face
    (``_segments``). ``carried`` and ``rows`` (F,) as in ``carried_rows``."""
    net, x_c, d1, d2 = run.net, *run.frame
    seg = run.segments[k]
    n_faces = len(rows)
    source = net.nodes[seg.source]
    below = carried.get(source.inputs[0]) if isinstance(source.op, Max) and not seg.extra else None
    if below is not None and below.shape[0] > 1:
        # a max pool's output straight from the parents' values: no copy of its (wider) input per face
        g = gather_chosen(below.numpy(), np.ascontiguousarray(rows, dtype=np.int64), source.op.index.numpy(),
                          np.ascontiguousarray(unpacked[k - 1][:], dtype=np.int16))
        values = {}
    else:
        values = gated_values(net, [seg.source, *seg.extra], x_c, d1, d2, gates_from_states(net, unpacked),
                              carried_rows(carried, rows))
        g = np.ascontiguousarray(values[seg.source].expand(n_faces, -1, -1).numpy())

    def direct(faces):
        return gated_values(net, [seg.target], x_c, d1, d2, None, {seg.source: torch.from_numpy(g[faces])})[
            seg.target].numpy()

    full = plan_updates(g, seg.max_changes, REFRESH)
    columns = _narrowed_columns(run, k)
    if columns is None:
        M = np.empty((n_faces, 3, seg.n_out))
        M[full] = direct(full)
        update_from_previous(g, full, seg.ptr, seg.idx, seg.val, M)
    else:  # only the columns the run reads are updated (the others are stale on updated faces)
        if k not in run.narrowed:
            run.narrowed[k] = restricted(seg, columns)
        M = _buffer(run, k, (n_faces, 3, seg.n_out))
        M[full] = direct(full)
        update_rows_from_previous(g, full, *run.narrowed[k], columns, M)
    again = _may_vanish(run, k, seg.target, M, columns)
    if again.any():  # the snapping rule bounds the round-off of a direct product, not of updates
        M[again] = direct(again)
    return M, {seg.target: torch.from_numpy(M), **{j: values[j] for j in seg.extra}}


def _narrowed_columns(run, k):
    """The columns of nonlinear node k's input a ``within`` run computes (sorted int64), or None for
    all: only an activation with a ``Settled`` is narrowed (its left-out columns are settled units)."""
    if run.needed is None or run.settled[k] is None or run.is_max[k]:
        return None
    need = run.needed[run.net.nodes[run.net.nonlinear[k]].inputs[0]]
    return None if need.all() else np.flatnonzero(need)


def _activation_columns(run, k, unpacked, carried, rows):
    """Nonlinear node k's input maps (F, 3, n) when that input is an activation's output on values the
    faces carry (a max pool after a relu), in the columns a ``within`` run reads only (the others stale,
    read by nothing: ``_settled.needed_columns``), as ``gated_values`` would compute them (slope times
    value, one rounding); None where that does not apply. ``rows`` (F,) the faces' parents."""
    net = run.net
    node = net.nodes[net.nonlinear[k]]
    pre = node.inputs[0]
    act = net.nodes[pre]
    if run.needed is None or pre not in net.nonlinear or set(carried_nodes(net, net.nonlinear[k])) - {pre}:
        return None
    ka = net.nonlinear.index(pre)
    if run.settled[ka] is None or act.op.name not in ("relu", "leaky_relu") or act.inputs[0] not in carried:
        return None
    on, off = activation_slopes(act.op)
    values = carried[act.inputs[0]].numpy()
    rows = rows if values.shape[0] > 1 else np.zeros(len(rows), np.int64)
    M = _buffer(run, ("activation", k), (len(rows), 3, act.size))
    gated_columns(np.ascontiguousarray(values), np.ascontiguousarray(rows, dtype=np.int64),
                  np.ascontiguousarray(unpacked[ka].packed), np.flatnonzero(run.needed[pre]), on, off, M)
    return M


def _buffer(run, k, shape):
    """An array of ``shape`` in level k's buffer, kept across its chunks (one chunk per level is alive at
    a time, depth first): no fresh pages to fault in for every chunk's maps. Zeros when new, else what
    the last chunk left (finite: the columns a run does not compute hold stale values nothing reads)."""
    size = int(np.prod(shape))
    buffer = run.buffers.get(k)
    if buffer is None or buffer.size < size:
        buffer = run.buffers[k] = np.zeros(size)
    return buffer[:size].reshape(shape)


def _may_vanish(run, k, node, M, columns=None):
    """(F,) bool: faces where a unit (or a pair of max-window entries) of M may vanish: the
    candidates of NOTE [vanishing units] in ``_roundoff``; ``columns``: of these units only (an
    activation's; the others settled, never candidates: NOTE [settled nodes] in ``_settled``)."""
    if run.vanish.net is None:
        return np.zeros(len(M), bool)
    mu = np.ascontiguousarray(run.vanish._bound(node)[0])  # (3, n)
    op = run.ops[k]
    if run.is_max[k]:
        return tie_candidates(M, op.index.numpy(), mu, CANDIDATE_RATIO).any(axis=(0, 2))
    out = np.zeros(len(M), bool)
    for bp in op.breakpoints:
        margin = np.array([0.0, 0.0, abs(bp)])[:, None]
        reach = np.ascontiguousarray(CANDIDATE_RATIO * (mu + margin))
        out |= K.faces_with_small_units(M, float(bp), reach) if columns is None else \
            faces_with_small_columns(M, float(bp), reach, columns)
    return out


def _graph_level(run, k, xy, off, lab, states, carried=None, parent=None):
    """Split faces (xy, off, lab; ``states`` per earlier nonlinear node, pattern bits packed) at
    nonlinear node k and recurse, ``run.chunk`` faces at a time, so only one chunk's per-face maps
    per level are ever held. ``carried`` (node -> values, rows ``parent[face]``) are the values the
    faces share with their parents: each face's maps are computed on from there, not from the input."""
    net, x_c, d1, d2 = run.net, *run.frame
    n_faces = len(off) - 1
    carried = carried or {}
    parent = np.arange(n_faces) if parent is None else parent
    if run.settled is not None and all(st is not None and not len(st.free) for st in run.settled[k:]):
        # nothing left cuts a face (a ``within`` run): the faces are final, each node's state the settled one
        rest = [np.repeat(st.state, n_faces, axis=0) for st in run.settled[k:]]
        run.out.add(xy, off, lab, states + rest, np.zeros((n_faces, 3, 0)))
        return
    if k == len(run.ops):
        last = len(net.nodes) - 1
        for c0 in range(0, n_faces, run.chunk):
            c1 = min(c0 + run.chunk, n_faces)
            sub_states = _unpacked(run, [st[c0:c1] for st in states])
            out = gated_values(net, [last], x_c, d1, d2, gates_from_states(net, sub_states),
                               carried_rows(carried, parent[c0:c1]))[last]
            v0, v1 = off[c0], off[c1]
            run.out.add(xy[v0:v1], off[c0:c1 + 1] - v0, lab[v0:v1], [st[c0:c1] for st in states],
                  np.ascontiguousarray(out.expand(c1 - c0, -1, -1).numpy()))
        return
    op, node_index = run.ops[k], net.nonlinear[k]
    if not run.is_max[k] and op.name == "identity":
        ones = np.packbits(np.ones((n_faces, run.bit_cols[k]), np.uint8), axis=1)
        _graph_level(run, k + 1, xy, off, lab, states + [ones], carried, parent)
        return
    pre = net.nodes[node_index].inputs[0]
    keep = carried_nodes(net, node_index)
    for c0 in range(0, n_faces, run.chunk):
        c1 = min(c0 + run.chunk, n_faces)
        v0, v1 = off[c0], off[c1]
        sub_xy, sub_off, sub_lab = xy[v0:v1], off[c0:c1 + 1] - v0, lab[v0:v1]
        sub_states = [st[c0:c1] for st in states]
        unpacked = _unpacked(run, sub_states)
        if run.segments[k] is not None:  # sparse updates through the affine ops before this node
            M, values = _segment_maps(run, k, unpacked, carried, parent[c0:c1])
        elif (M := _activation_columns(run, k, unpacked, carried, parent[c0:c1])) is not None:
            values = {pre: torch.from_numpy(M)}
        else:
            values = gated_values(net, [pre, *keep], x_c, d1, d2, gates_from_states(net, unpacked),
                                  carried_rows(carried, parent[c0:c1]))
            M = np.ascontiguousarray(values[pre].expand(c1 - c0, -1, -1).numpy())
            values = {j: values[j] for j in keep}
        settled = run.settled[k] if run.settled is not None else None
        free = None if settled is None else settled.free  # the columns that may cut (None: all)
        if settled is not None and not len(free):  # nothing cuts here: the faces as they are, the settled state
            cxy, coff, clab, cparent = sub_xy, sub_off, sub_lab, np.arange(c1 - c0)
            cstate = np.repeat(settled.state, c1 - c0, axis=0)
        elif run.is_max[k]:
            index = op.index.numpy() if free is None else op.index.numpy()[free]
            maps, windows = run.vanish.max_ties(pre, M, unpacked, index)  # equal entries tie exactly
            cxy, coff, clab, cparent, cstate = split_faces_max(sub_xy, sub_off, sub_lab, maps, windows,
                                                               run.base[k], run.tol, run.diam)
            del maps
            if free is not None:
                cstate, clab = _with_settled(settled, cstate, clab, run.base[k], packed=False)
        else:
            shifted = run.vanish.shifted(pre, M, unpacked, op.breakpoints, free)
            del M
            cxy, coff, clab, cparent, cbits, _, _ = K.split_faces(sub_xy, sub_off, sub_lab,
                                                                np.ascontiguousarray(shifted), run.base[k],
                                                                run.tol, run.diam)
            del shifted
            cstate = cbits
            if free is not None:
                cstate, clab = _with_settled(settled, cstate, clab, run.base[k], packed=True)
        M = None
        log.debug("nonlinear node %d: %d faces -> %d", k, c1 - c0, len(cparent))
        if run.within is not None:
            cxy, coff, clab, cparent, cstate = _near_centre(run.within, cxy, coff, clab, cparent, cstate)
        _graph_level(run, k + 1, cxy, coff, clab, [st[cparent] for st in sub_states] + [cstate], values, cparent)


def _with_settled(settled, sub_state, lab, base, packed):
    """The children's full states and edge labels after a split by the free columns ``settled.free``
    only: ``sub_state`` (C, free columns; pattern bits packed when ``packed``) goes into the settled
    state's free columns; labels ``base + j`` (the j-th free column's edges) become ``base + free[j]``."""
    free = settled.free
    if packed:
        full = np.repeat(np.unpackbits(settled.state, axis=1, count=settled.state.shape[1] * 8), len(sub_state), 0)
        full[:, free] = np.unpackbits(sub_state, axis=1, count=len(free))
        state = np.packbits(full, axis=1)
    else:
        state = np.repeat(settled.state, len(sub_state), axis=0)
        state[:, free] = sub_state
    new = (lab >= base) & (lab < base + len(free))
    lab = lab.copy()
    lab[new] = base + free[lab[new] - base]
    return state, lab


#: Relative slack on ``within``: a child's clipped vertices may stand outside its parent by round-off,
#: so a face is dropped only when it is clearly farther (the caller's own test on the final regions
#: decides ties).
WITHIN_SLACK = 1e-6


def _near_centre(within, xy, off, lab, parent, state):
    """The faces (xy, off, lab; per face ``parent`` and ``state`` rows) closer than ``within`` to (0, 0)."""
    keep = K.polygon_origin_distance(xy, off) < within * (1 + WITHIN_SLACK)
    if keep.all():
        return xy, off, lab, parent, state
    n_vertices = np.diff(off)
    vertices = np.repeat(keep, n_vertices)
    new_off = np.concatenate([[0], np.cumsum(n_vertices[keep])]).astype(off.dtype)
    return xy[vertices], new_off, lab[vertices], parent[keep], state[keep]
