"""Edge subdivision of a 3-D polyhedral complex by one plane per cell: the step that the exact 3-D
partition (``_volume``) repeats for every hidden unit and level, and that ``_mesh`` uses for level sets.

# NOTE [edge subdivision in 3-D]
The complex is held globally: vertices (V, 3), faces as vertex cycles (each convex, each with its
two cells, -1 for the outside of the box) and cells as the faces that bound them. A cut gives each
cell c an affine function ``z_c(x) = A[c, :3] . x + A[c, 3]`` that is continuous across the complex
(a unit's pre-activation on the cells of the layers before it), and

1. takes one value per *vertex*, so that every face and cell around a vertex sees the same sign.
   At the start of a layer every unit is evaluated at every vertex with the map of one cell around
   it (``vertex_values``; a unit exactly zero on a cell is zero at all its vertices); a vertex a cut
   makes gets the layer's other units by interpolation along its edge (``VertexValues``: the edge
   lies in one cell of the earlier layers, where they are affine). A value within ``tolerance`` of
   the plane (``|z| <= tolerance * |grad z|``) or zero up to the round-off of its evaluation
   (``|z| <= EVAL_ROUNDINGS * eps * (|grad z| . |x| + |z_0|)``, which also holds with
   ``tolerance=0``; the larger limit of the two ends for an interpolated value) gives sign 0: the
   vertex is on the plane, so a plane through a vertex, a duplicated unit or a unit zero on a cell
   never makes slivers or inconsistent signs;
2. cuts every edge whose ends have opposite signs, once: the new vertex is shared by every face
   around the edge, so shared faces of neighbouring cells keep matching;
3. splits every face with vertices of both signs along the chord between its two sign changes (its
   zero vertices); faces are shared by two cells, so both see the same chord;
4. splits every cell with vertices of both signs into its + and - parts; the new face between them
   is the cycle of the cell's edges whose ends are both on the plane.

This is the edge-subdivision algorithm (Berzins, ICML 2023) with the vanishing-unit and snapping rules
of the 2-D partition (``_roundoff``), which keep the combinatorics consistent where the arrangement
is not generic: signs come from vertices, never from a cell's own view of them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from netatlas.regions._roundoff import EPS

__all__ = ["ComplexState", "EVAL_ROUNDINGS", "box_state", "VertexValues", "cut", "home_cells", "vertex_values"]

#: A vertex's value is zero when within this many eps of the magnitude of its evaluation's terms: the
#: vertex itself carries the round-off of its interpolation (relative to |x|), the dot product 3 more.
EVAL_ROUNDINGS = 8


@dataclass
class ComplexState:
    """The mutable complex while it is built (centred volume coordinates).

    points : (V, 3); face_vertices : (T,) vertex cycles, face ``f`` is
    ``face_vertices[face_offsets[f]:face_offsets[f + 1]]``; face_cells : (F, 2) the two cells (-1: the
    outside); face_labels : (F,) what made the face (-1..-6 a box side, else a unit or level number);
    n_cells : C."""

    points: np.ndarray
    face_vertices: np.ndarray
    face_offsets: np.ndarray
    face_cells: np.ndarray
    face_labels: np.ndarray
    n_cells: int

    def face_index(self) -> np.ndarray:
        """The face (T,) of each entry of ``face_vertices``."""
        return np.repeat(np.arange(len(self.face_offsets) - 1), np.diff(self.face_offsets))

    def next_entry(self) -> np.ndarray:
        """Index (T,) of the next entry of each face cycle (the edge ``entry -> next``)."""
        nxt = np.arange(1, len(self.face_vertices) + 1)
        nxt[self.face_offsets[1:] - 1] = self.face_offsets[:-1]
        return nxt

    def incidences(self) -> tuple[np.ndarray, np.ndarray]:
        """(cell, vertex) pairs of every face entry and each of its cells (duplicates included)."""
        face = self.face_index()
        cells = self.face_cells[face]
        inc_cell = np.concatenate([cells[:, 0], cells[:, 1]])
        inc_vertex = np.concatenate([self.face_vertices, self.face_vertices])
        keep = inc_cell >= 0
        return inc_cell[keep], inc_vertex[keep]


# Corner k of the box sits at (bit 0, bit 1, bit 2 of k) -> (u, v, w); its six faces as corner cycles.
_BOX_FACES = np.array([[0, 2, 6, 4], [1, 3, 7, 5], [0, 1, 5, 4], [2, 3, 7, 6], [0, 1, 3, 2], [4, 5, 7, 6]])


def box_state(half: np.ndarray) -> ComplexState:
    """One cell: the box ``[-half, half]`` (centred coordinates), its faces labelled -1 (u = -half_u),
    -2 (u = +half_u), -3, -4 (v), -5, -6 (w)."""
    k = np.arange(8)
    bits = np.stack([k & 1, (k >> 1) & 1, (k >> 2) & 1], axis=1).astype(bool)
    points = np.where(bits, half, -half).astype(np.float64)
    return ComplexState(points, _BOX_FACES.ravel().astype(np.int64), np.arange(0, 25, 4, dtype=np.int64),
                        np.stack([np.zeros(6, np.int64), -np.ones(6, np.int64)], 1),
                        -np.arange(1, 7, dtype=np.int64), 1)


def home_cells(state: ComplexState) -> np.ndarray:
    """One cell (V,) around each vertex (the one whose map gives the vertex its values)."""
    cells = state.face_cells[state.face_index()]
    home = np.empty(len(state.points), np.int64)
    home[state.face_vertices] = np.where(cells[:, 0] >= 0, cells[:, 0], cells[:, 1])
    return home


#: Vertices evaluated per chunk by ``vertex_values`` (bounds its gathered maps).
VALUE_CHUNK = 8192


def vertex_values(state: ComplexState, A: np.ndarray, tolerance: float) -> tuple[np.ndarray, np.ndarray]:
    """Values (V, n) of the cells' affine functions ``A`` (C, 4, n) at the vertices, each from one cell
    around the vertex, and the limits (V, n) below which a value counts as zero: ``tolerance`` (a
    distance) times the gradient's norm, or the round-off of the evaluation (NOTE [edge subdivision
    in 3-D], step 1). A function that is exactly zero on a cell (a vanishing unit) is zero at all of
    the cell's vertices."""
    home = home_cells(state)
    n_vertices, n = len(state.points), A.shape[2]
    Z, limit = np.empty((n_vertices, n)), np.empty((n_vertices, n))
    for v0 in range(0, n_vertices, VALUE_CHUNK):
        a = A[home[v0:v0 + VALUE_CHUNK]]
        x = state.points[v0:v0 + VALUE_CHUNK]
        Z[v0:v0 + VALUE_CHUNK] = np.einsum("vd,vdn->vn", x, a[:, :3]) + a[:, 3]
        magnitude = np.einsum("vd,vdn->vn", np.abs(x), np.abs(a[:, :3])) + np.abs(a[:, 3])
        gradient = np.sqrt(np.einsum("vdn,vdn->vn", a[:, :3], a[:, :3]))
        limit[v0:v0 + VALUE_CHUNK] = np.maximum(tolerance * gradient, EVAL_ROUNDINGS * EPS * magnitude)
    vanished = (A == 0).all(axis=1)  # (C, n)
    if vanished.any():
        cell, vertex = state.incidences()
        hit = vanished[cell].any(1)
        zero = np.zeros((n_vertices, n), bool)
        np.logical_or.at(zero, vertex[hit], vanished[cell[hit]])
        Z[zero] = 0.0
    return Z, limit


class VertexValues:
    """A layer's values ``Z`` (V, n) and zero limits ``limit`` (V, n) at the vertices, in buffers that
    grow (doubling) as cuts add vertices."""

    def __init__(self, Z, limit):
        self._Z, self._limit, self.n = Z, limit, len(Z)

    @property
    def Z(self) -> np.ndarray:
        return self._Z[:self.n]

    @property
    def limit(self) -> np.ndarray:
        return self._limit[:self.n]

    def extend(self, new, unit: int) -> None:
        """Rows for the vertices a cut by ``unit`` made (``new`` = (lo, hi, t) from :func:`cut`): the
        functions are affine along the cut edge, so their values interpolate; ``unit`` is 0 there."""
        lo, hi, t = new
        if len(lo) == 0:
            return
        need = self.n + len(lo)
        if need > len(self._Z):
            capacity = max(need, 2 * len(self._Z))
            for name in ("_Z", "_limit"):
                grown = np.empty((capacity, self._Z.shape[1]))
                grown[:self.n] = getattr(self, name)[:self.n]
                setattr(self, name, grown)
        _interpolate_rows(self._Z, self._limit, self.n, lo, hi, t, unit)
        self.n = need


@njit(cache=True)
def _interpolate_rows(Z, limit, n, lo, hi, t, unit):
    """Rows ``n, n + 1, ...`` of ``Z`` and ``limit`` for the vertices at ``t`` from ``lo`` to ``hi``
    (in place): ``Z[lo] + t (Z[hi] - Z[lo])``, 0 in column ``unit``, the larger of the two limits."""
    for i in range(len(lo)):
        a, b = lo[i], hi[i]
        for j in range(Z.shape[1]):
            Z[n + i, j] = Z[a, j] + t[i] * (Z[b, j] - Z[a, j])
            limit[n + i, j] = max(limit[a, j], limit[b, j])
        Z[n + i, unit] = 0.0


def cut(state: ComplexState, z: np.ndarray, limit: np.ndarray, label: int):
    """Split ``state`` in place by the zero set of a function continuous on the complex and affine on
    each cell, given by its values ``z`` (V,) at the vertices (zero where ``|z| <= limit``).

    Returns ``parent`` (C',) the old cell of each new cell (new cells are numbered after the old,
    each old split cell keeping its + part), ``side`` (C',) int8 the sign of the function on each
    new cell (0: zero on the whole cell), the vertex signs (V',) after the cut (the new vertices 0),
    and the new vertices as ``(lo, hi, t)``: each at ``t`` from vertex ``lo`` to vertex ``hi``.
    New faces get ``label``. Steps 2-4 of NOTE [edge subdivision in 3-D] run in one compiled kernel
    (:func:`cut_kernel`)."""
    (points, vertices, offsets, face_cells, face_labels, parent, side, signs, lo, hi, t,
     bad_face, bad_cell) = cut_kernel(state.points, state.face_vertices, state.face_offsets, state.face_cells,
                                      state.face_labels, state.n_cells, z, limit, label)
    if bad_face >= 0:
        raise AssertionError(f"edge subdivision: the signs round face {bad_face} change more than twice (a "
                             "non-convex face)")
    if bad_cell >= 0:
        raise AssertionError(f"edge subdivision: the section of cell {bad_cell} is not one cycle")
    state.points, state.face_vertices, state.face_offsets = points, vertices, offsets
    state.face_cells, state.face_labels, state.n_cells = face_cells, face_labels, len(parent)
    return parent, side, signs, (lo, hi, t)


@njit(cache=True)
def cut_kernel(points, vertices, offsets, face_cells, face_labels, n_cells, z, limit, label):
    """:func:`cut` on the complex's arrays (the state is not changed): the new points, face cycles,
    offsets, face cells and labels, then ``parent``, ``side``, the vertex signs, the new vertices
    ``lo``, ``hi``, ``t``, and a face whose signs change more than twice or a split cell whose section
    is not one cycle (-1 if none). New vertices are ordered by their edge (lo, hi); faces and cells
    are numbered as in NOTE [edge subdivision in 3-D]: a split face's or cell's + part keeps its
    index, its - part is appended, and each split cell's section face comes after all faces."""
    n_vertices = len(points)
    signs = np.zeros(n_vertices, np.int8)
    zs = np.empty(n_vertices)
    for v in range(n_vertices):
        value = 0.0 if abs(z[v]) <= limit[v] else z[v]
        zs[v] = value
        signs[v] = 1 if value > 0 else (-1 if value < 0 else 0)
    # step 2: one vertex per crossed edge, ordered by (lo, hi); z is affine along the edge, so it
    # vanishes at t = z_lo / (z_lo - z_hi)
    entry, entry_lo, entry_hi = crossed_entries(vertices, offsets, signs)
    entry_keys = entry_lo * n_vertices + entry_hi
    keys = np.unique(entry_keys)
    lo, hi = keys // n_vertices, keys % n_vertices
    new_id = np.full(len(vertices), -1, np.int64)
    for i in range(len(entry)):
        new_id[entry[i]] = n_vertices + np.searchsorted(keys, entry_keys[i])
    t = np.empty(len(keys))
    n_total = n_vertices + len(keys)
    new_points = np.empty((n_total, 3))
    new_points[:n_vertices] = points
    for i in range(len(keys)):
        t[i] = zs[lo[i]] / (zs[lo[i]] - zs[hi[i]])
        for d in range(3):
            new_points[n_vertices + i, d] = points[lo[i], d] + t[i] * (points[hi[i], d] - points[lo[i], d])
    all_signs = np.zeros(n_total, np.int8)
    all_signs[:n_vertices] = signs
    # step 3: faces
    cycles, cycle_offsets, face_sign, split_faces, bad_face = insert_and_split(vertices, offsets, all_signs, new_id)
    if bad_face >= 0:
        return (points, vertices, offsets, face_cells, face_labels, np.zeros(0, np.int64), np.zeros(0, np.int8),
                all_signs, lo, hi, t, bad_face, -1)
    n_faces = len(cycle_offsets) - 1
    cells = np.empty((n_faces, 2), np.int64)
    labels = np.empty(n_faces, np.int64)
    cells[:len(face_cells)] = face_cells
    labels[:len(face_labels)] = face_labels
    for i in range(len(split_faces)):
        cells[len(face_cells) + i] = face_cells[split_faces[i]]
        labels[len(face_labels) + i] = face_labels[split_faces[i]]
    # step 4: a cell has a + (-) vertex exactly when one of its faces has one
    positive = np.zeros(n_cells, np.bool_)
    negative = np.zeros(n_cells, np.bool_)
    for f in range(n_faces):
        for j in range(2):
            c = cells[f, j]
            if c >= 0:
                positive[c] |= face_sign[f] > 0
                negative[c] |= face_sign[f] < 0
    minus_cell = np.full(n_cells, -1, np.int64)
    n_split = 0
    for c in range(n_cells):
        if positive[c] and negative[c]:
            minus_cell[c] = n_cells + n_split
            n_split += 1
    side = np.empty(n_cells + n_split, np.int8)
    parent = np.empty(n_cells + n_split, np.int64)
    split = np.empty(n_split, np.int64)
    for c in range(n_cells):
        parent[c] = c
        side[c] = 1 if positive[c] else (-1 if negative[c] else 0)
        if minus_cell[c] >= 0:
            split[minus_cell[c] - n_cells] = c
            parent[minus_cell[c]] = c
            side[minus_cell[c]] = -1
    if n_split == 0:
        return (new_points, cycles, cycle_offsets, cells, labels, parent, side, all_signs, lo, hi, t, -1, -1)
    sections, section_offsets, bad_cell = _sections(cycles, cycle_offsets, cells, all_signs, minus_cell, n_cells,
                                                    n_split, n_total)
    if bad_cell >= 0:
        return (points, vertices, offsets, face_cells, face_labels, parent, side, all_signs, lo, hi, t, -1,
                split[bad_cell])
    # faces of a split cell go to its part on their side (a face of a split cell has a nonzero sign)
    for f in range(n_faces):
        if face_sign[f] < 0:
            for j in range(2):
                c = cells[f, j]
                if c >= 0 and minus_cell[c] >= 0:
                    cells[f, j] = minus_cell[c]
    out_vertices = np.empty(len(cycles) + len(sections), np.int64)
    out_vertices[:len(cycles)] = cycles
    out_vertices[len(cycles):] = sections
    out_offsets = np.empty(n_faces + n_split + 1, np.int64)
    out_offsets[:n_faces + 1] = cycle_offsets
    out_offsets[n_faces + 1:] = cycle_offsets[n_faces] + section_offsets[1:]
    out_cells = np.empty((n_faces + n_split, 2), np.int64)
    out_cells[:n_faces] = cells
    out_labels = np.full(n_faces + n_split, label, np.int64)
    out_labels[:n_faces] = labels
    for i in range(n_split):
        out_cells[n_faces + i, 0], out_cells[n_faces + i, 1] = split[i], n_cells + i
    return (new_points, out_vertices, out_offsets, out_cells, out_labels, parent, side, all_signs, lo, hi, t, -1, -1)


@njit(cache=True)
def _sections(vertices, offsets, face_cells, signs, minus_cell, n_cells, n_split, n_vertices):
    """The new face of each split cell (in the order of ``minus_cell``): its edges with both ends on the
    plane, sorted by (lower, higher vertex), each once, chained into a cycle from the first. Flat
    cycles, offsets (n_split + 1,), and the first split cell whose edges are not one cycle (-1)."""
    is_split = minus_cell >= 0
    edges = section_edges(vertices, offsets, face_cells, signs, is_split)
    # group by split cell (counting sort, stable), then sort each group by its edges' (lo, hi) keys
    counts = np.zeros(n_split + 1, np.int64)
    for i in range(len(edges)):
        counts[minus_cell[edges[i, 0]] - n_cells + 1] += 1
    starts = np.cumsum(counts)
    fill = starts[:-1].copy()
    keys = np.empty(len(edges), np.int64)
    for i in range(len(edges)):
        r = minus_cell[edges[i, 0]] - n_cells
        keys[fill[r]] = edges[i, 1] * n_vertices + edges[i, 2]
        fill[r] += 1
    # each edge of a cell lies on two of its faces: keep one
    grouped = np.empty((len(edges), 2), np.int64)
    group_starts = np.empty(n_split, np.int64)
    group_ends = np.empty(n_split, np.int64)
    k = 0
    for r in range(n_split):
        group = np.sort(keys[starts[r]:starts[r + 1]])
        group_starts[r] = k
        for i in range(len(group)):
            if i == 0 or group[i] != group[i - 1]:
                grouped[k, 0], grouped[k, 1] = group[i] // n_vertices, group[i] % n_vertices
                k += 1
        group_ends[r] = k
    cycles, bad = chain_cycles(grouped[:k], group_starts, group_ends)
    section_offsets = np.zeros(n_split + 1, np.int64)
    for r in range(n_split):
        section_offsets[r + 1] = section_offsets[r] + group_ends[r] - group_starts[r]
    return cycles[:k], section_offsets, bad


@njit(cache=True)
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


@njit(cache=True)
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


@njit(cache=True)
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


@njit(cache=True)
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
