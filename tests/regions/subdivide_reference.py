"""The 3-D edge subdivision's cut as it was before its steps moved into one compiled kernel
(``netatlas.regions._subdivide.cut_kernel``): NumPy glue around the unchanged per-face kernels. Kept as
the reference the kernel must reproduce bit for bit (test_regions_volume_kernels.py)."""

import numpy as np
from numba import njit

from netatlas.regions._subdivide import ComplexState, UnitValues

__all__ = ["ReferenceComplex", "cut_layer_reference", "cut_reference"]


def cut_reference(state: ComplexState, z, limit, label: int):
    """Split ``state`` in place by the zero set of a function continuous on the complex and affine on
    each cell, given by its values ``z`` (V,) at the vertices (zero where ``|z| <= limit``).

    Returns ``parent`` (C',) the old cell of each new cell (new cells are numbered after the old,
    each old split cell keeping its + part), ``side`` (C',) int8 the sign of the function on each
    new cell (0: zero on the whole cell), the vertex signs (V',) after the cut (the new vertices 0),
    and the new vertices as ``(lo, hi, t)``: each at ``t`` from vertex ``lo`` to vertex ``hi``.
    New faces get ``label``."""
    z = np.where(np.abs(z) <= limit, 0.0, z)
    s = np.sign(z).astype(np.int8)
    new, face_sign = _cut_edges_and_faces(state, z, s)
    s = np.concatenate([s, np.zeros(len(state.points) - len(s), np.int8)])
    parent, side = _split_cells(state, s, face_sign, label)
    return parent, side, s, new


def _cut_edges_and_faces(state, z, s):
    """Steps 2 and 3: a vertex on every edge whose ends have opposite signs (once per edge, inserted in
    every face around it), then every face with vertices of both signs split along its chord (its +
    part keeps its index, its - part is appended). Returns the new vertices ``(lo, hi, t)`` and each
    face's sign (F',) int8 (0: every vertex on the plane)."""
    entry, lo, hi = crossed_entries(state.face_vertices, state.face_offsets, s)
    n_vertices = len(state.points)
    new_id = np.full(len(state.face_vertices), -1, np.int64)
    if len(entry):
        keys, inverse = np.unique(lo * n_vertices + hi, return_inverse=True)
        lo, hi = keys // n_vertices, keys % n_vertices
        new_id[entry] = n_vertices + inverse
        # z is affine along the edge: it vanishes at t = z_lo / (z_lo - z_hi) (z_lo, z_hi of opposite signs)
        t = z[lo] / (z[lo] - z[hi])
        state.points = np.concatenate([state.points, state.points[lo] + t[:, None] * (state.points[hi] -
                                                                                       state.points[lo])])
    else:
        t = np.zeros(0)
    signs = np.concatenate([s, np.zeros(len(state.points) - n_vertices, np.int8)])
    vertices, offsets, face_sign, split, bad = insert_and_split(state.face_vertices, state.face_offsets, signs,
                                                                new_id)
    if bad >= 0:
        raise AssertionError(f"edge subdivision: the signs round face {bad} change more than twice (a non-convex "
                             "face)")
    state.face_vertices, state.face_offsets = vertices, offsets
    state.face_cells = np.concatenate([state.face_cells, state.face_cells[split]])
    state.face_labels = np.concatenate([state.face_labels, state.face_labels[split]])
    return (lo, hi, t), face_sign


def _split_cells(state, s, face_sign, label):
    """Step 4: cells with vertices of both signs split; the new faces between their parts."""
    C = state.n_cells
    # a cell has a + (-) vertex exactly when one of its faces has one
    cells = state.face_cells.ravel()
    inside = cells >= 0
    n_positive = np.bincount(cells[inside], weights=np.repeat(face_sign > 0, 2)[inside], minlength=C)
    n_negative = np.bincount(cells[inside], weights=np.repeat(face_sign < 0, 2)[inside], minlength=C)
    side = np.where(n_positive > 0, 1, np.where(n_negative > 0, -1, 0)).astype(np.int8)
    split = np.flatnonzero((n_positive > 0) & (n_negative > 0))
    if len(split) == 0:
        return np.arange(C), side
    minus_cell = np.full(C, -1, np.int64)
    minus_cell[split] = C + np.arange(len(split))
    sections, section_off = _sections(state, s, split)
    # faces of a split cell go to its part on their side (a face of a split cell has a nonzero sign)
    cells = state.face_cells.copy()
    for j in range(2):
        c = cells[:, j]
        moved = (c >= 0) & (face_sign < 0)
        moved[moved] = minus_cell[c[moved]] >= 0
        cells[moved, j] = minus_cell[c[moved]]
    lengths = np.concatenate([np.diff(state.face_offsets), np.diff(section_off)])
    state.face_vertices = np.concatenate([state.face_vertices, sections])
    state.face_offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    state.face_cells = np.concatenate([cells, np.stack([split, minus_cell[split]], 1)])
    state.face_labels = np.concatenate([state.face_labels, np.full(len(split), label, np.int64)])
    state.n_cells = C + len(split)
    parent = np.concatenate([np.arange(C), split])
    side = np.concatenate([np.where(minus_cell >= 0, 1, side), -np.ones(len(split), np.int8)]).astype(np.int8)
    return parent, side


def _sections(state, s, split):
    """The new face of each split cell: its edges with both ends on the plane, chained into a cycle.
    Flat cycles and offsets (len(split) + 1,)."""
    is_split = np.zeros(state.n_cells, bool)
    is_split[split] = True
    edges = section_edges(state.face_vertices, state.face_offsets, state.face_cells, s, is_split)
    order = np.lexsort((edges[:, 2], edges[:, 1], edges[:, 0]))
    edges = edges[order]
    # each edge of a cell lies on two of its faces: keep one
    first = np.ones(len(edges), bool)
    first[1:] = (edges[1:] != edges[:-1]).any(1)
    edges = edges[first]
    starts = np.searchsorted(edges[:, 0], split)
    ends = np.searchsorted(edges[:, 0], split, side="right")
    cycles, bad = chain_cycles(np.ascontiguousarray(edges[:, 1:]), starts, ends)
    if bad >= 0:
        raise AssertionError(f"edge subdivision: the section of cell {split[bad]} is not one cycle: edges "
                             f"{edges[starts[bad]:ends[bad], 1:].tolist()}")
    return cycles, np.concatenate([[0], np.cumsum(ends - starts)]).astype(np.int64)


@njit
def crossed_entries(vertices, offsets, signs):
    """Face entries whose edge (to the next entry) has ends of opposite signs: their indices and the
    edge's lower and higher vertex."""
    count = 0
    for f in range(len(offsets) - 1):
        o, e = offsets[f], offsets[f + 1]
        for t in range(o, e):
            u = t + 1 if t + 1 < e else o
            if signs[vertices[t]] * signs[vertices[u]] < 0:
                count += 1
    entry = np.empty(count, np.int64)
    lo = np.empty(count, np.int64)
    hi = np.empty(count, np.int64)
    k = 0
    for f in range(len(offsets) - 1):
        o, e = offsets[f], offsets[f + 1]
        for t in range(o, e):
            u = t + 1 if t + 1 < e else o
            a, b = vertices[t], vertices[u]
            if signs[a] * signs[b] < 0:
                entry[k], lo[k], hi[k] = t, min(a, b), max(a, b)
                k += 1
    return entry, lo, hi


@njit
def insert_and_split(vertices, offsets, signs, new_id):
    """Face cycles with the new vertex ``new_id[t]`` (>= 0) inserted after entry t, and faces with + and -
    vertices split (NOTE [edge subdivision in 3-D], step 3): the
    + part in the face's place, the - parts after all faces. Returns the cycles, offsets, each face's
    sign, the split faces, and a face whose signs change more than twice round it (-1 if none).

    Going round a split face, the signs (zeros skipped) change twice; between the two changes lie runs of
    zero vertices (one vertex each, unless round-off put a short edge on the plane). The chord joins the
    first zero of the + -> - run to the last zero of the - -> + run; the - part keeps both runs whole."""
    n_faces = len(offsets) - 1
    n_new = 0
    longest = 0
    for t in range(len(new_id)):
        n_new += new_id[t] >= 0
    for f in range(n_faces):
        longest = max(longest, offsets[f + 1] - offsets[f])
    out = np.empty(len(vertices) + n_new + 2 * n_faces, np.int64)
    lengths = np.empty(2 * n_faces, np.int64)
    extra = np.empty(len(vertices) + n_new + 2 * n_faces, np.int64)
    split = np.empty(n_faces, np.int64)
    face_sign = np.empty(2 * n_faces, np.int8)
    cycle = np.empty(2 * longest + 2, np.int64)
    pos = n_extra = n_split = 0
    for f in range(n_faces):
        k = 0
        has_positive = has_negative = False
        for t in range(offsets[f], offsets[f + 1]):
            cycle[k] = vertices[t]
            k += 1
            if new_id[t] >= 0:
                cycle[k] = new_id[t]
                k += 1
            has_positive |= signs[vertices[t]] > 0
            has_negative |= signs[vertices[t]] < 0
        if not (has_positive and has_negative):
            out[pos:pos + k] = cycle[:k]
            pos += k
            lengths[f] = k
            face_sign[f] = 1 if has_positive else (-1 if has_negative else 0)
            continue
        # the two sign changes going round (zeros skipped): p after the + -> - change, q before - -> +
        p = q = -1
        changes = 0
        last_sign, last_at = 0, -1
        for i in range(k - 1, -1, -1):
            if signs[cycle[i]] != 0:
                last_sign, last_at = signs[cycle[i]], i - k
                break
        for i in range(k):
            sg = signs[cycle[i]]
            if sg == 0:
                continue
            if sg != last_sign:
                changes += 1
                if sg < 0:
                    p = (last_at + 1) % k
                else:
                    q = (i - 1) % k
            last_sign, last_at = sg, i
        if changes != 2:
            return out[:0], offsets[:1], face_sign[:0], split[:0], f
        n = (p - q) % k + 1
        for i in range(n):
            out[pos + i] = cycle[(q + i) % k]
        pos += n
        lengths[f] = n
        face_sign[f] = 1
        n = (q - p) % k + 1
        for i in range(n):
            extra[n_extra + i] = cycle[(p + i) % k]
        n_extra += n
        lengths[n_faces + n_split] = n
        face_sign[n_faces + n_split] = -1
        split[n_split] = f
        n_split += 1
    out[pos:pos + n_extra] = extra[:n_extra]
    n_total = n_faces + n_split
    new_offsets = np.zeros(n_total + 1, np.int64)
    for f in range(n_total):
        new_offsets[f + 1] = new_offsets[f] + lengths[f]
    return out[:pos + n_extra], new_offsets, face_sign[:n_total], split[:n_split], -1


@njit
def section_edges(vertices, offsets, face_cells, signs, is_split):
    """(cell, lower vertex, higher vertex) (k, 3) of every face edge with both ends on the plane, for
    each split cell of its face (so each such edge of a split cell twice: it lies on two of its faces)."""
    count = 0
    for f in range(len(offsets) - 1):
        c0, c1 = face_cells[f, 0], face_cells[f, 1]
        n_cells = (c0 >= 0 and is_split[c0]) + (c1 >= 0 and is_split[c1])
        if n_cells == 0:
            continue
        o, e = offsets[f], offsets[f + 1]
        for t in range(o, e):
            u = t + 1 if t + 1 < e else o
            if signs[vertices[t]] == 0 and signs[vertices[u]] == 0:
                count += n_cells
    out = np.empty((count, 3), np.int64)
    k = 0
    for f in range(len(offsets) - 1):
        c0, c1 = face_cells[f, 0], face_cells[f, 1]
        if not ((c0 >= 0 and is_split[c0]) or (c1 >= 0 and is_split[c1])):
            continue
        o, e = offsets[f], offsets[f + 1]
        for t in range(o, e):
            u = t + 1 if t + 1 < e else o
            a, b = vertices[t], vertices[u]
            if signs[a] == 0 and signs[b] == 0:
                for c in (c0, c1):
                    if c >= 0 and is_split[c]:
                        out[k, 0], out[k, 1], out[k, 2] = c, min(a, b), max(a, b)
                        k += 1
    return out


@njit
def chain_cycles(edges, starts, ends):
    """Undirected edges ``edges[starts[i]:ends[i]]`` forming one cycle each -> the cycles' vertices in
    order (flat, one per edge); and the first i whose edges are not one cycle (-1 if none)."""
    out = np.empty(len(edges), np.int64)
    for i in range(len(starts)):
        e0, e1 = starts[i], ends[i]
        k = e1 - e0
        if k < 3:
            return out, i
        used = np.zeros(k, np.bool_)
        used[0] = True
        start, current = edges[e0, 0], edges[e0, 1]
        out[e0] = start
        for t in range(1, k):
            out[e0 + t] = current
            found = False
            for e in range(1, k):
                if not used[e] and (edges[e0 + e, 0] == current or edges[e0 + e, 1] == current):
                    used[e] = True
                    current = edges[e0 + e, 1] if edges[e0 + e, 0] == current else edges[e0 + e, 0]
                    found = True
                    break
            if not found:
                return out, i
        if current != start:
            return out, i
    return out, -1


class ReferenceComplex:
    """The interface of ``_subdivide.GrowingComplex`` over :func:`cut_reference`."""

    def __init__(self, state, copy=True):
        self.state = ComplexState(state.points, state.face_vertices, state.face_offsets, state.face_cells,
                                  state.face_labels, state.n_cells)

    @property
    def n_cells(self):
        return self.state.n_cells

    def cut(self, z, limit, label):
        n_cells = self.state.n_cells
        parent, side, signs, new = cut_reference(self.state, z, limit, label)
        return side, parent[n_cells:], signs, new

    def nbytes(self):
        return self.state.points.nbytes + self.state.face_vertices.nbytes + 4 * self.state.face_cells.nbytes

    def store(self, state):
        for name in ("points", "face_vertices", "face_offsets", "face_cells", "face_labels", "n_cells"):
            setattr(state, name, getattr(self.state, name))


def cut_layer_reference(state, M, tolerance, column, cap=None, after=None, recorder=None):
    """``_layercut.cut_layer`` as it was: one whole-complex cut (:class:`ReferenceComplex`) per unit, each
    unit's values computed when it cuts (:class:`UnitValues`)."""
    n_start, n_k = state.n_cells, M.shape[2]
    origin, sides = np.arange(n_start), np.ones((n_k, n_start), np.int8)
    values = UnitValues(state, M, tolerance)
    growing = ReferenceComplex(state)
    for j in range(n_k):
        side, split, signs, new = growing.cut(*values.row(j), column + j)
        if recorder is not None:
            recorder(column + j, signs, new)
        values.extend(new, j)
        origin = np.concatenate([origin, origin[split]])
        sides = np.concatenate([sides, sides[:, split]], axis=1)
        sides[j, :growing.n_cells] = side
        if cap is not None and growing.n_cells > cap:
            break
    growing.store(state)
    return origin, sides.T.copy()
