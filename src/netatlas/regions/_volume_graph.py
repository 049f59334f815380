"""The exact 3-D complex of a piecewise-linear graph that is not a chain: residual additions (a Linear
projection on a skip, skips from the input), max pooling and a max over outputs, hardtanh, concatenation,
nets that end in an activation. The volume counterpart of the 2-D graph path (``_graph``): the box is cut
node after node of ``net.nonlinear`` with the 3-D machinery of ``_subdivide``.

# NOTE [graph cells in 3-D]
Before nonlinear node k every cell has fixed states at the nodes before it (on/off bits, arg-max
choices), so the node's input is affine on the cell; its maps (C, 4, n) come from a gated forward pass
of the cell's states (``_affine.gated_values`` with a third direction). That pass carries every value the
graph uses later, skips included: a residual stream or a Linear projection of it reaches the node's
input through the same products as in the net, cell by cell (the same sums as the 2-D graph path, whose
faces carry their skips' maps the same way).

* An activation node cuts the complex unit after unit, breakpoint after breakpoint (``z - b``; 0 for
  relu), as ``_volume`` does for a chain layer; a unit zero on a cell up to the round-off of its gated
  pass (magnitudes from a gated pass of ``_affine.magnitude_net``) is set to exact zero there (NOTE
  [vanishing units] in ``_roundoff``): it does not cut the cell and its bit is 0.
* A ``Max`` node splits every cell by the arg-max of each window. Within a window the entries are run
  as a tournament: entry q cuts the complex by ``z_q - z_c`` with c the cell's current winner (a
  continuous function on the complex, affine on every cell: on a face between two winners they are
  equal), and the cells where it is positive beyond the cut's band take q as winner; cells where it is
  zero keep the earlier entry (the tie rule of the 2-D kernel ``_maxkernels``: the first entry of the row
  wins a tie, an entry that is the max only on a face, an edge or a point gets no cell). Candidates
  that cannot win on a cell (``z_q - z_c <= 0`` at all its vertices, the bound test) do not cut it.
  A tournament over-splits: the plane between two earlier winners runs on through the part of the cell
  where a later entry beats both. So after each window the cells of one cell of the window's start with
  the same winner (pieces of one convex set, ``{winner beats all} ∩ cell``) are merged again
  (``merge_cells``): the faces between them go, the faces they then share with one neighbour become
  one, and the vertices left on a straight edge (two edges) or on no face go. The result is the
  complex the window's true arg-max cells make, with the Euler characteristic 1 of a subdivided box.
  Entries of a window that agree on a cell up to the round-off of their gated passes are made exactly
  equal there first (the later takes the earlier's map), so duplicated channels tie exactly.

Faces get the pattern column of their unit as label (as for chains), ``n_units + j`` for the j-th max
output of the net (windows numbered across Max nodes, as the 2-D edge labels number them), and
``n_units + n_max_outputs + i`` for ``levels[i]``.
"""

from __future__ import annotations

import logging

import numpy as np
from numba import njit

from netatlas.nets import Activation, Add, Concat, Input, Max
from netatlas.regions._affine import (
    gate_from_state,
    gated_values,
    is_affine,
    magnitude_gate,
    magnitude_net,
    state_columns,
    widest_gate,
)
from netatlas.regions._complex3d import Complex3D
from netatlas.regions._graphmaps import CANDIDATE_SLACK
from netatlas.regions._roundoff import roundings, snap_vanishing, vanishing_tolerance
from netatlas.regions._subdivide import ComplexState, GrowingComplex, UnitValues, box_state, vertex_values

__all__ = ["graph_columns", "graph_supported", "graph_steps", "graph_volume", "merge_cells"]

log = logging.getLogger(__name__)

#: Bytes of one gated pass's widest value over a batch of cells (bounds the pass's temporaries).
PASS_BYTES = 32 * 2**20


def graph_supported(net) -> bool:
    """Whether the 3-D graph path takes ``net``: affine ops, additions, concatenations, ``Max`` and
    relu/leaky_relu/identity/hardtanh activations (what the gated passes know)."""
    for node in net.nodes[1:]:
        op = node.op
        if isinstance(op, Activation):
            if op.name not in ("relu", "leaky_relu", "identity", "hardtanh"):
                return False
        elif not (isinstance(op, (Add, Concat, Max)) or (is_affine(op) and len(node.inputs) == 1)):
            return False
        if isinstance(op, Input):
            return False
    return True


def _columns(net, i) -> int:
    """Pattern columns of activation node i: one per unit and breakpoint (identity: one per unit)."""
    op = net.nodes[i].op
    return net.nodes[i].size * (1 if op.name == "identity" else state_columns(op))


def graph_steps(net) -> int:
    """Cuts the 3-D graph path makes at most (the progress bar's total, levels aside): one per
    activation unit and breakpoint, one per entry of each window after its first."""
    steps = 0
    for i in net.nonlinear:
        op = net.nodes[i].op
        if isinstance(op, Max):
            steps += int((op.index.numpy() >= 0).sum() - op.index.shape[0])
        elif op.name != "identity":
            steps += _columns(net, i)
    return steps


def graph_columns(net) -> tuple[int, int, list[int]]:
    """The columns a ``recorder`` of :func:`graph_volume` sees (a ``_tiles3d.VertexSigns``): ``(n_units,
    n_entries, cut)`` with columns ``0..n_units`` the activations' units and breakpoints (as the pattern
    columns), then one per entry of every window (``n_units + offset + w k + q`` for entry q of window w of
    a ``Max`` node whose ``index`` is (n_out, k), ``offset`` the entries of the Max nodes before it), then the
    levels; ``cut`` the unit and entry columns that a build cuts by (not identity units, not a window's
    first or absent entries)."""
    n_units = sum(_columns(net, i) for i in net.nonlinear if not isinstance(net.nodes[i].op, Max))
    cut, column, entry = [], 0, n_units
    for i in net.nonlinear:
        op = net.nodes[i].op
        if isinstance(op, Max):
            index = op.index.numpy()
            cut += [entry + c for c in np.flatnonzero(index >= 0) if c % index.shape[1]]
            entry += index.size
        else:
            if op.name != "identity":
                cut += range(column, column + _columns(net, i))
            column += _columns(net, i)
    return n_units, entry - n_units, cut


class _Passes:
    """Gated forward passes over the cells (NOTE [graph cells in 3-D]), in batches of cells."""

    def __init__(self, net, frame):
        self.net, self.frame = net, frame  # frame: x_c, d1, d2, d3
        self.ops = [net.nodes[i].op for i in net.nonlinear]
        self.sizes = [net.nodes[i].size for i in net.nonlinear]
        self.magnitude = magnitude_net(net)
        self.abs_frame = tuple(np.abs(f) for f in frame)
        self.batch = int(max(1, PASS_BYTES // (32 * max(node.size for node in net.nodes))))

    def maps(self, node, states, n_cells, magnitude=False) -> np.ndarray:
        """Maps (n_cells, 4, size) of ``node`` on every cell (rows d/du, d/dv, d/dw, value at the box's
        centre), or their magnitudes (the pass of ``magnitude_net``). ``states``: per earlier nonlinear
        node, (n_cells, columns) bits or (n_cells, n_out) choices."""
        net = self.magnitude if magnitude else self.net
        x_c, d1, d2, d3 = self.abs_frame if magnitude else self.frame
        out = np.empty((n_cells, 4, self.net.nodes[node].size))
        for c0 in range(0, max(n_cells, 1), self.batch):
            c1 = min(c0 + self.batch, n_cells)

            def gate(k, c0=c0, c1=c1):
                g = gate_from_state(self.ops[k], states[k][c0:c1], self.sizes[k])
                return magnitude_gate(self.ops[k], g) if magnitude else g

            values = gated_values(net, [node], x_c, d1, d2, gate, d3=d3)[node].numpy()
            out[c0:c1] = values  # a batch of one (no gate on the way) broadcasts
        return out

    def bound(self, node) -> np.ndarray:
        """mu (4, size) >= the magnitudes of ``node``'s maps on every cell: the magnitude pass with each
        nonlinear node's widest gate (``_affine.widest_gate``)."""
        widest = [widest_gate(op, size) for op, size in zip(self.ops, self.sizes, strict=True)]
        return gated_values(self.magnitude, [node], *self.abs_frame[:3], widest.__getitem__,
                            d3=self.abs_frame[3])[node].numpy()[0]

    def magnitudes(self, node, states, cells) -> np.ndarray:
        """The magnitudes (len(cells), 4, size) of ``node``'s maps on ``cells`` only."""
        return self.maps(node, [s[cells] for s in states], len(cells), magnitude=True)


def graph_volume(net, volume, levels, level_output, tol, bar, frame, check_size, recorder=None,
                 distance=None) -> Complex3D:
    """The exact 3-D complex of a graph ``net`` (NOTE [graph cells in 3-D]); arguments as ``_volume._build``
    takes them, ``frame`` = ``_volume.volume_frame(volume)`` and ``check_size(growing, n_new_bits)`` the
    limits (max_regions, the memory budget), called after every cut. ``recorder`` (a
    ``_tiles3d.VertexSigns``), when given, sees every cut's vertex signs in the columns of
    :func:`graph_columns` (NOTE [graph tiles in 3-D]); ``distance``: the boundary tolerance as a distance
    (default ``tol`` times the volume's diagonal)."""
    center, half, x_c, directions, diameter = frame
    state = box_state(half)
    passes = _Passes(net, (x_c, *directions))
    K = roundings(net)
    band = tol * diameter if distance is None else float(distance)
    act_nodes = [i for i in net.nonlinear if not isinstance(net.nodes[i].op, Max)]
    max_nodes = [i for i in net.nonlinear if isinstance(net.nodes[i].op, Max)]
    n_units = sum(_columns(net, i) for i in act_nodes)
    entry_column = n_units  # the recorder's column of the next window's first entry (graph_columns)
    column, window_label = 0, n_units
    states: list[np.ndarray] = []
    for i in net.nonlinear:
        op, pre = net.nodes[i].op, net.nodes[i].inputs[0]
        n_cells = state.n_cells
        if isinstance(op, Max):
            W = _tied_windows(passes, pre, states, n_cells, op.index.numpy(), K[pre])
            origin, choice = _split_max(state, W, op.index.numpy(), window_label, band, bar, check_size, recorder,
                                        entry_column)
            window_label += op.index.shape[0]
            entry_column += op.index.numpy().size
            states = [s[origin] for s in states] + [choice]
            continue
        n_cols = _columns(net, i)
        if op.name == "identity":
            states.append(np.ones((n_cells, n_cols), bool))
            column += n_cols
            continue
        M = passes.maps(pre, states, n_cells)
        mu = passes.bound(pre)
        parts = []
        for bp in op.breakpoints:  # z - b for each breakpoint b: one more rounding where b != 0
            part = M - np.array([0.0, 0.0, 0.0, bp])[None, :, None] if bp else M.copy()
            shift = np.array([0.0, 0.0, 0.0, abs(bp)])[:, None]
            # only a unit within K eps S <= K eps mu can vanish (2x for the round-off of mu and S): the
            # magnitudes S of those cells' maps by a gated pass
            reach = CANDIDATE_SLACK * vanishing_tolerance(mu + shift, float(K[pre] + (bp != 0)))
            candidate = (np.abs(part) <= reach).all(axis=1) & (part != 0).any(axis=1)
            cells = np.flatnonzero(candidate.any(axis=1))
            if len(cells):
                sub = part[cells]
                snap_vanishing(sub, passes.magnitudes(pre, states, cells) + shift, K[pre] + (bp != 0),
                               candidate[cells])
                part[cells] = sub
            parts.append(part)
        del M
        origin, bits = _cut_units(state, np.concatenate(parts, axis=2), column, band, bar, check_size, recorder)
        column += n_cols
        states = [s[origin] for s in states] + [bits]
    out = len(net.nodes) - 1
    M = passes.maps(out, states, state.n_cells)  # the output's maps: not snapped
    level_maps = [_level_map(passes, M, states, out, level_output, value, K[out]) for value in levels]
    level_sides = np.zeros((state.n_cells, len(levels)), np.int8)
    origin = np.arange(state.n_cells)
    for i, level_map in enumerate(level_maps):
        A = level_map[origin]
        Z, limit = vertex_values(state, A, band)
        growing = GrowingComplex(state, copy=False)
        side, split, signs, new = growing.cut(Z[:, 0], limit[:, 0], window_label + i)
        growing.store(state)
        if recorder is not None:
            recorder(entry_column + i, signs, new)
        origin = np.concatenate([origin, origin[split]])
        level_sides = np.concatenate([level_sides, level_sides[split]])
        level_sides[:, i] = side
        check_size(growing, len(levels))
        if bar is not None:
            bar.update(1)
    M = M[origin]
    states = [s[origin] for s in states]
    is_max = [isinstance(net.nodes[i].op, Max) for i in net.nonlinear]
    bits = [s for s, m in zip(states, is_max, strict=True) if not m]
    patterns = np.concatenate(bits, axis=1).astype(bool) if bits else np.zeros((state.n_cells, 0), bool)
    log.debug("3-D complex of a graph: %d cells, %d vertices", state.n_cells, len(state.points))
    return Complex3D(volume=volume, center=center, points=state.points, face_vertices=state.face_vertices,
                     face_offsets=state.face_offsets, face_cells=state.face_cells, face_labels=state.face_labels,
                     patterns=patterns, maps=M, levels=levels, level_output=int(level_output),
                     level_sides=level_sides, units_per_layer=tuple(_columns(net, i) for i in act_nodes),
                     layer_names=tuple(net.nodes[i].name for i in act_nodes), tolerance=tol, net=net,
                     choices=tuple(s.astype(np.int64) for s, m in zip(states, is_max, strict=True) if m),
                     max_units_per_layer=tuple(net.nodes[i].size for i in max_nodes),
                     max_layer_names=tuple(net.nodes[i].name for i in max_nodes))


def _level_map(passes, M, states, node, output, value, n_roundings):
    """The level function ``output - value`` (C, 4, 1) on every cell from the output's maps M (C, 4, n_out),
    set to exact zero on the cells where it is zero up to the round-off of its gated pass and the
    subtraction (NOTE [vanishing units]): the output equals the level on the whole cell (level side 0),
    whatever the box's centre (so tiles agree with the whole box: NOTE [graph tiles in 3-D])."""
    A = M[:, :, output:output + 1].copy()
    A[:, 3] -= value
    shift = np.array([0.0, 0.0, 0.0, abs(value)])[:, None]
    n_roundings = float(n_roundings + (value != 0))
    mu = passes.bound(node)[:, output:output + 1]
    reach = CANDIDATE_SLACK * vanishing_tolerance(mu + shift, n_roundings)
    candidate = (np.abs(A) <= reach).all(axis=1) & (A != 0).any(axis=1)  # (C, 1)
    cells = np.flatnonzero(candidate[:, 0])
    if len(cells):
        sub = A[cells]
        magnitude = passes.magnitudes(node, states, cells)[:, :, output:output + 1] + shift
        snap_vanishing(sub, magnitude, n_roundings, candidate[cells])
        A[cells] = sub
    return A


def _cut_units(state: ComplexState, M, column, band, bar, check_size, recorder=None):
    """Cut ``state`` (in place) by each unit of the maps M (C, 4, n) in turn, as ``_volume._build`` cuts a
    layer (the children keep their parent's maps). Returns ``origin`` (C',) each new cell's cell at the
    start and ``bits`` (C', n) its units' on states."""
    n_start, n = state.n_cells, M.shape[2]
    origin = np.arange(n_start)
    bits = np.ones((n_start, n), bool)
    values = UnitValues(state, M, band)
    growing = GrowingComplex(state, copy=False)
    for j in range(n):
        side, split, signs, new = growing.cut(*values.row(j), column + j)
        values.extend(new, j)
        if recorder is not None:
            recorder(column + j, signs, new)
        origin = np.concatenate([origin, origin[split]])
        bits = np.concatenate([bits, bits[split]])
        bits[:, j] = side > 0
        check_size(growing, n)
        if bar is not None:
            bar.update(1)
            bar.set_postfix_str(f"{growing.n_cells:,} cells", refresh=False)
    growing.store(state)
    return origin, bits


def _tied_windows(passes, pre, states, n_cells, index, n_roundings):
    """Each window's entries (C, 4, n_out, k) from the maps of the Max node's input ``pre``, with an entry
    that agrees with an earlier one of its row on a cell up to round-off (the difference within K + 1
    roundings of the magnitudes S_p + S_q, in every row) replaced there by an exact copy of it: they tie
    exactly and the earlier wins (as ``_graphmaps._VanishingGraph.max_ties`` does for faces). The
    magnitudes S are computed on the cells where some pair is within that of the bound mu only."""
    present = index >= 0
    idx = np.where(present, index, 0)
    W = passes.maps(pre, states, n_cells)[:, :, idx]
    mu = passes.bound(pre)[:, idx]  # (4, n_out, k)
    k = index.shape[1]
    tolerance = float(n_roundings + 1)
    pairs = [(p, q) for q in range(1, k) for p in range(q) if (present[:, p] & present[:, q]).any()]
    near = {}
    for p, q in pairs:
        reach = CANDIDATE_SLACK * vanishing_tolerance(mu[..., q] + mu[..., p], tolerance)
        close = (np.abs(W[..., q] - W[..., p]) <= reach).all(axis=1) & (W[..., q] != W[..., p]).any(axis=1)
        near[p, q] = close & (present[:, p] & present[:, q])[None]
    cells = np.flatnonzero(np.any([c.any(axis=1) for c in near.values()], axis=0)) if near else []
    if not len(cells):
        return W
    S = passes.magnitudes(pre, states, cells)[:, :, idx]
    Wc = W[cells]
    done = np.zeros((len(cells), index.shape[0], k), bool)
    for p, q in pairs:  # entry p is final before any q > p
        tie = near[p, q][cells] & ~done[..., q]
        tie &= (np.abs(Wc[..., q] - Wc[..., p]) <= vanishing_tolerance(S[..., q] + S[..., p], tolerance)).all(axis=1)
        Wc[..., q] = np.where(tie[:, None, :], Wc[..., p], Wc[..., q])
        done[..., q] |= tie
    W[cells] = Wc
    return W


def _split_max(state: ComplexState, W, index, first_label, band, bar, check_size, recorder=None, first_column=0):
    """Split every cell of ``state`` (in place) by each window's arg-max (NOTE [graph cells in 3-D]): the
    tournament, then the merge of each window's pieces. ``W`` (C, 4, n_out, k) the windows' entries on
    the cells at the start; ``recorder`` sees entry q of window w as column ``first_column + w k + q``
    (NOTE [graph tiles in 3-D]). Returns ``origin`` (C',) each cell's cell at the start and ``choice``
    (C', n_out) int16 the position in its row of each window's arg-max."""
    n_out, k = index.shape
    origin = np.arange(state.n_cells)
    choice = np.zeros((state.n_cells, n_out), np.int16)
    for w in range(n_out):
        start = np.arange(state.n_cells)  # each cell's cell at the window's start
        winner = np.zeros(state.n_cells, np.int64)
        changed = False
        for q in range(1, k):
            if index[w, q] < 0:
                continue
            entries = W[origin, :, w, :]  # (C, 4, k)
            A = entries[:, :, q] - np.take_along_axis(entries, winner[:, None, None], axis=2)[:, :, 0]
            Z, limit = vertex_values(state, A[:, :, None], band)
            if bar is not None:
                bar.update(1)
            if not (Z[:, 0] > limit[:, 0]).any():  # q beats no winner anywhere: nothing to cut
                if recorder is not None:  # its signs still say where it ties the winner
                    no_new = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0))
                    recorder(first_column + w * k + q, np.where(np.abs(Z[:, 0]) <= limit[:, 0], 0, -1).astype(np.int8),
                             no_new)
                continue
            growing = GrowingComplex(state, copy=False)
            side, split, signs, new = growing.cut(Z[:, 0], limit[:, 0], first_label + w)
            growing.store(state)
            if recorder is not None:
                recorder(first_column + w * k + q, signs, new)
            parent = np.concatenate([np.arange(len(side) - len(split)), split])
            origin, start, winner, choice = origin[parent], start[parent], winner[parent], choice[parent]
            winner[side > 0] = q
            changed = True
            check_size(growing, 1)
        choice[:, w] = winner
        if recorder is not None:
            recorder.settle_window(first_column + w * k + np.arange(k), index[w] >= 0)
        if changed:
            keys = start * k + winner
            _, group = np.unique(keys, return_inverse=True)
            group = group.ravel()
            if group.max() + 1 < state.n_cells:
                first = np.full(group.max() + 1, len(group))
                np.minimum.at(first, group, np.arange(len(group)))
                alive = merge_cells(state, group)
                origin, choice = origin[first], choice[first]
                if recorder is not None:
                    recorder.keep(alive)
    return origin, choice


def merge_cells(state: ComplexState, group: np.ndarray) -> np.ndarray:
    """Merge the cells of ``state`` (in place) into the groups ``group`` (C,) (0..G-1; each group's
    union a convex polyhedron): faces between cells of one group are dropped, the faces a merged cell
    shares with one neighbour (or with one side of the box) become one polygon, and vertices on no face
    or on exactly two edges (inside a straight edge) are dropped. Cell g of the result is group g. Only
    the faces of merged cells and their vertices are looked at again. Returns the vertices kept (V,) bool
    (the others dropped, the kept ones renumbered in order)."""
    n_groups = int(group.max()) + 1
    merged = np.bincount(group, minlength=n_groups)[group] > 1  # (C,) cells whose group has several
    cells, offsets, cycles, labels = state.face_cells, state.face_offsets, state.face_vertices, state.face_labels
    touched = ((cells >= 0) & merged[np.maximum(cells, 0)]).any(axis=1)
    fc = np.where(cells >= 0, group[np.maximum(cells, 0)], -1)
    faces = np.flatnonzero(touched & (fc[:, 0] != fc[:, 1]))
    untouched = np.flatnonzero(~touched)
    pair = np.sort(fc[faces], axis=1) + 1  # the outside is 0
    # one face per (cell pair, box side): a convex cell meets a convex neighbour (or a side) in one face
    side = np.where(pair[:, 0] == 0, -labels[faces], 0)  # 1..6 on the box's sides
    key = (pair[:, 0] * (n_groups + 1) + pair[:, 1]) * 8 + side
    order = np.argsort(key, kind="stable")
    starts = np.flatnonzero(np.concatenate([[True], key[order][1:] != key[order][:-1]]))
    counts = np.diff(np.concatenate([starts, [len(order)]]))
    single = np.sort(np.concatenate([untouched, faces[order[starts[counts == 1]]]]))
    multi = counts > 1
    members = faces[order[np.repeat(multi, counts)]]  # the faces to unite, group after group
    group_offsets = np.concatenate([[0], np.cumsum(counts[multi])])
    united, united_lengths, bad = _union_cycles(_gathered(cycles, offsets, members),
                                                np.concatenate([[0], np.cumsum(np.diff(offsets)[members])]),
                                                group_offsets)
    assert bad < 0, "merge_cells: the faces to unite do not bound one polygon"
    representative = faces[order[starts[multi]]]
    lengths = np.concatenate([np.diff(offsets)[single], united_lengths])
    flat = np.concatenate([_gathered(cycles, offsets, single), united])
    # vertices of the faces looked at that are left inside a straight edge (two distinct neighbours) or on no
    # face are dropped (every edge at such a vertex lies on a face that contains it)
    n_points = len(state.points)
    candidate = np.zeros(n_points, bool)
    candidate[_gathered(cycles, offsets, np.flatnonzero(touched))] = True
    ends = np.cumsum(lengths)
    nxt = np.arange(1, len(flat) + 1)
    nxt[ends - 1] = ends - lengths
    near = candidate[flat] | candidate[flat[nxt]]
    lo, hi = np.minimum(flat, flat[nxt])[near], np.maximum(flat, flat[nxt])[near]
    edges = np.unique(lo * n_points + hi)
    degree = np.bincount(np.concatenate([edges // n_points, edges % n_points]), minlength=n_points)
    alive = ~candidate | (degree >= 3)
    keep_entry = alive[flat]
    face_of = np.repeat(np.arange(len(lengths)), lengths)
    lengths = np.bincount(face_of[keep_entry], minlength=len(lengths))
    assert (lengths >= 3).all(), "merge_cells: a face lost its corners"
    renumber = np.cumsum(alive) - 1
    state.points = state.points[alive]
    state.face_vertices = renumber[flat[keep_entry]].astype(np.int64)
    state.face_offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    new_cells = np.concatenate([fc[single], fc[representative]]).astype(np.int64)
    state.face_cells = np.where(new_cells[:, :1] < 0, new_cells[:, ::-1], new_cells)  # the outside second
    state.face_labels = np.concatenate([labels[single], labels[representative]]).astype(np.int64)
    state.n_cells = n_groups
    return alive


def _gathered(cycles, offsets, faces) -> np.ndarray:
    """The vertex cycles of ``faces``, concatenated (CSR gather)."""
    lengths = np.diff(offsets)[faces]
    starts = np.repeat(offsets[faces] - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths)
    return cycles[starts + np.arange(lengths.sum())]


@njit(cache=True)
def _union_cycles(flat, face_offsets, group_offsets):
    """For each group of faces (``group_offsets`` into the faces, ``face_offsets`` into their cycles ``flat``):
    the boundary cycle of the coplanar convex polygons that tile one convex polygon, the edges that only one
    of them has, chained. Returns the cycles (concatenated), their lengths and a group whose boundary is not
    one cycle (-1 if none)."""
    n_groups = len(group_offsets) - 1
    out = np.empty(len(flat), np.int64)
    lengths = np.zeros(n_groups, np.int64)
    n_out = 0
    for g in range(n_groups):
        e0, e1 = face_offsets[group_offsets[g]], face_offsets[group_offsets[g + 1]]
        m = e1 - e0
        lo = np.empty(m, np.int64)
        hi = np.empty(m, np.int64)
        for f in range(group_offsets[g], group_offsets[g + 1]):
            s, e = face_offsets[f], face_offsets[f + 1]
            for t in range(s, e):
                a, b = flat[t], flat[t + 1] if t + 1 < e else flat[s]
                lo[t - e0], hi[t - e0] = min(a, b), max(a, b)
        free = np.zeros(m, np.bool_)
        n_free = 0
        for i in range(m):
            count = 0
            for j in range(m):
                count += lo[j] == lo[i] and hi[j] == hi[i]
            if count == 1:
                free[i] = True
                n_free += 1
        if n_free < 3:
            return out[:n_out], lengths, g
        first = np.argmax(free)
        free[first] = False
        start, current = lo[first], hi[first]
        out[n_out] = start
        n = 1
        while current != start:
            out[n_out + n] = current
            n += 1
            found = -1
            for j in range(m):
                if free[j] and (lo[j] == current or hi[j] == current):
                    found = j
                    break
            if found < 0 or n > n_free:
                return out[:n_out], lengths, g
            free[found] = False
            current = hi[found] if lo[found] == current else lo[found]
        if n != n_free:
            return out[:n_out], lengths, g
        lengths[g] = n
        n_out += n
    return out[:n_out], lengths, -1
