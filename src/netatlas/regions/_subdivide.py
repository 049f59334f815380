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
        Z = self._Z
        Z[self.n:need] = Z[lo] + t[:, None] * (Z[hi] - Z[lo])
        Z[self.n:need, unit] = 0.0
        self._limit[self.n:need] = np.maximum(self._limit[lo], self._limit[hi])
        self.n = need


def cut(state: ComplexState, z: np.ndarray, limit: np.ndarray, label: int):
    """Split ``state`` in place by the zero set of a function continuous on the complex and affine on
    each cell, given by its values ``z`` (V,) at the vertices (zero where ``|z| <= limit``).

    Returns ``parent`` (C',) the old cell of each new cell (new cells are numbered after the old,
    each old split cell keeping its + part), ``side`` (C',) int8 the sign of the function on each
    new cell (0: zero on the whole cell), the vertex signs (V',) after the cut (the new vertices 0),
    and the new vertices as ``(lo, hi, t)``: each at ``t`` from vertex ``lo`` to vertex ``hi``.
    New faces get ``label``."""
    z = np.where(np.abs(z) <= limit, 0.0, z)
    s = np.sign(z).astype(np.int8)
    new = _cut_edges(state, z, s)
    s = np.concatenate([s, np.zeros(len(state.points) - len(s), np.int8)])
    face_sign = _split_faces(state, s)
    parent, side = _split_cells(state, s, face_sign, label)
    return parent, side, s, new


def _cut_edges(state, z, s):
    """Step 2: a vertex on every edge whose ends have opposite signs, inserted in every face cycle."""
    a = state.face_vertices
    b = a[state.next_entry()]
    crossed = s[a].astype(np.int64) * s[b] < 0
    if not crossed.any():
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    n_vertices = len(state.points)
    lo, hi = np.minimum(a, b)[crossed], np.maximum(a, b)[crossed]
    keys, inverse = np.unique(lo * n_vertices + hi, return_inverse=True)
    lo, hi = keys // n_vertices, keys % n_vertices
    # z is affine along the edge: it vanishes at t = z_lo / (z_lo - z_hi) (z_lo, z_hi of opposite signs)
    t = z[lo] / (z[lo] - z[hi])
    new_points = state.points[lo] + t[:, None] * (state.points[hi] - state.points[lo])
    counts = 1 + crossed
    pos = np.concatenate([[0], np.cumsum(counts)])
    vertices = np.empty(pos[-1], np.int64)
    vertices[pos[:-1]] = a
    vertices[pos[:-1][crossed] + 1] = n_vertices + inverse
    state.face_offsets = pos[state.face_offsets]
    state.face_vertices = vertices
    state.points = np.concatenate([state.points, new_points])
    return lo, hi, t


def _split_faces(state, s):
    """Step 3: faces with vertices of both signs split along their chord. Returns each face's sign
    (F',) int8 after the split (0: every vertex on the plane)."""
    off = state.face_offsets
    signs = s[state.face_vertices]
    face_sign, split = face_signs(signs, off)
    if len(split) == 0:
        return face_sign
    halves, half_off, bad = split_cycles(state.face_vertices, off, signs, split)
    if bad >= 0:
        f = split[bad]
        raise AssertionError(f"edge subdivision: the signs round face {f} change more than twice (a non-convex "
                             f"face): {signs[off[f]:off[f + 1]].tolist()}")
    keep = np.ones(len(off) - 1, bool)
    keep[split] = False
    lengths = np.concatenate([np.diff(off)[keep], np.diff(half_off)])
    state.face_vertices = np.concatenate([state.face_vertices[keep[state.face_index()]], halves])
    state.face_offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    state.face_cells = np.concatenate([state.face_cells[keep], np.repeat(state.face_cells[split], 2, axis=0)])
    state.face_labels = np.concatenate([state.face_labels[keep], np.repeat(state.face_labels[split], 2)])
    return np.concatenate([face_sign[keep], np.tile(np.array([1, -1], np.int8), len(split))])


@njit(cache=True)
def face_signs(signs, offsets):
    """Each face's sign (F,) int8 (+1 with a + vertex and no -, -1 with a - vertex and no +, 0 with every
    vertex on the plane; +1 for a face with both) and the faces with both (split)."""
    n_faces = len(offsets) - 1
    out = np.zeros(n_faces, np.int8)
    both = np.zeros(n_faces, np.bool_)
    for f in range(n_faces):
        has_positive = has_negative = False
        for t in range(offsets[f], offsets[f + 1]):
            has_positive |= signs[t] > 0
            has_negative |= signs[t] < 0
        out[f] = 1 if has_positive else (-1 if has_negative else 0)
        both[f] = has_positive and has_negative
    return out, np.flatnonzero(both)


@njit(cache=True)
def split_cycles(vertices, offsets, signs, faces):
    """Each of ``faces`` (convex, with + and - vertices) as its + part then its - part: flat cycles and
    their offsets (2 len(faces) + 1,); and the position in ``faces`` of a face whose signs change more
    than twice round it (-1 if none).

    Going round, the signs (zeros skipped) change twice; between the two changes lie runs of zero
    vertices (one vertex each, unless round-off put a short edge on the plane). The chord joins the
    first zero of the + -> - run to the last zero of the - -> + run; the - part keeps both runs whole."""
    total = 0
    for f in faces:
        total += offsets[f + 1] - offsets[f] + 2
    out = np.empty(total, np.int64)
    out_off = np.zeros(2 * len(faces) + 1, np.int64)
    pos = 0
    for n_face in range(len(faces)):
        f = faces[n_face]
        o, k = offsets[f], offsets[f + 1] - offsets[f]
        p = q = -1
        changes = 0
        last_sign, last_at = 0, -1
        # the last nonzero vertex before position 0, going round
        for i in range(k - 1, -1, -1):
            if signs[o + i] != 0:
                last_sign, last_at = signs[o + i], i - k
                break
        for i in range(k):
            sg = signs[o + i]
            if sg == 0:
                continue
            if sg != last_sign:
                changes += 1
                if sg < 0:  # + -> -: the first zero after the last + vertex
                    p = (last_at + 1) % k
                else:  # - -> +: the last zero before this + vertex
                    q = (i - 1) % k
            last_sign, last_at = sg, i
        if changes != 2:
            return out[:0], out_off[:1], n_face
        for a, b, slot in ((q, p, 2 * n_face + 1), (p, q, 2 * n_face + 2)):  # the + part, then the - part
            n = (b - a) % k + 1
            for t in range(n):
                out[pos + t] = vertices[o + (a + t) % k]
            pos += n
            out_off[slot] = pos
    return out[:pos], out_off, -1


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
    a = state.face_vertices
    b = a[state.next_entry()]
    on = (s[a] == 0) & (s[b] == 0)
    face = state.face_index()[on]
    lo, hi = np.minimum(a, b)[on], np.maximum(a, b)[on]
    is_split = np.zeros(state.n_cells, bool)
    is_split[split] = True
    rows = []
    for j in range(2):
        c = state.face_cells[face, j]
        keep = c >= 0
        keep[keep] = is_split[c[keep]]
        rows.append(np.stack([c[keep], lo[keep], hi[keep]], 1))
    edges = np.concatenate(rows)
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
