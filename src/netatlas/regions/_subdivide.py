"""Edge subdivision of a 3-D polyhedral complex by one plane per cell: the step that the exact 3-D
partition (``_volume``) repeats for every hidden unit and level, and that ``_mesh`` uses for level sets.

# NOTE [edge subdivision in 3-D]
The complex is held globally: vertices (V, 3), faces as vertex cycles (each convex, each with its
two cells, -1 for the outside of the box) and cells as the faces that bound them. A cut gives each
cell c an affine function ``z_c(x) = A[c, :3] . x + A[c, 3]`` that is continuous across the complex
(a unit's pre-activation on the cells of the layers before it), and

1. evaluates it once per *vertex* (with the lowest-numbered cell around the vertex), so that every
   face and cell around a vertex sees the same sign; a vertex within ``tolerance`` of the plane
   (``|z| <= tolerance * |grad z|`` for any cell around it), or whose value is zero up to the
   round-off of its evaluation (``|z| <= EVAL_ROUNDINGS * eps * (|grad z| . |x| + |z_0|)``, which
   also holds with ``tolerance=0``), gets sign 0 and counts as on it, so a plane through a vertex, a
   duplicated unit or a unit zero on a cell never makes slivers or inconsistent signs;
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

from netatlas.regions._roundoff import EPS

__all__ = ["ComplexState", "EVAL_ROUNDINGS", "box_state", "cut"]

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


def vertex_signs(state: ComplexState, A: np.ndarray, tolerance: float) -> tuple[np.ndarray, np.ndarray]:
    """Each vertex's value (V,) of the cells' affine functions ``A`` (C, 4) and its sign (V,) int8, 0
    where any cell around it puts it within ``tolerance`` (a distance) of the plane (NOTE [edge
    subdivision in 3-D], step 1)."""
    inc_cell, inc_vertex = state.incidences()
    grad = A[:, :3]
    z_inc = np.einsum("ij,ij->i", grad[inc_cell], state.points[inc_vertex]) + A[inc_cell, 3]
    magnitude = np.einsum("ij,ij->i", np.abs(grad[inc_cell]), np.abs(state.points[inc_vertex])) + np.abs(A[inc_cell, 3])
    limit = np.maximum(tolerance * np.sqrt(np.einsum("ij,ij->i", grad, grad))[inc_cell],
                       EVAL_ROUNDINGS * EPS * magnitude)
    on_inc = np.abs(z_inc) <= limit
    n_vertices = len(state.points)
    on = np.bincount(inc_vertex[on_inc], minlength=n_vertices) > 0
    order = np.lexsort((inc_cell, inc_vertex))
    sorted_vertex = inc_vertex[order]
    first = np.ones(len(order), bool)
    first[1:] = sorted_vertex[1:] != sorted_vertex[:-1]
    z = np.zeros(n_vertices)
    z[sorted_vertex[first]] = z_inc[order[first]]
    z[on] = 0.0
    return z, np.sign(z).astype(np.int8)


def cut(state: ComplexState, A: np.ndarray, tolerance: float, label: int):
    """Split ``state`` in place by the zero set of the cells' affine functions ``A`` (C, 4).

    Returns ``parent`` (C',) the old cell of each new cell (new cells are numbered after the old,
    each old split cell keeping its + part), ``side`` (C',) int8 the sign of the function on each
    new cell (0: zero on the whole cell), and the vertex signs (V',) after the cut (the new vertices 0).
    New faces get ``label``."""
    z, s = vertex_signs(state, A, tolerance)
    _cut_edges(state, z, s)
    s = np.concatenate([s, np.zeros(len(state.points) - len(s), np.int8)])
    face_sign = _split_faces(state, s)
    parent, side = _split_cells(state, s, face_sign, label)
    return parent, side, s


def _cut_edges(state, z, s):
    """Step 2: a vertex on every edge whose ends have opposite signs, inserted in every face cycle."""
    a = state.face_vertices
    b = a[state.next_entry()]
    crossed = s[a].astype(np.int64) * s[b] < 0
    if not crossed.any():
        return
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


def _split_faces(state, s):
    """Step 3: faces with vertices of both signs split along their chord. Returns each face's sign
    (F',) int8 after the split (0: every vertex on the plane)."""
    off = state.face_offsets
    signs = s[state.face_vertices]
    positive = np.add.reduceat(signs > 0, off[:-1]) > 0
    negative = np.add.reduceat(signs < 0, off[:-1]) > 0
    face_sign = np.where(positive, 1, np.where(negative, -1, 0)).astype(np.int8)
    split = np.flatnonzero(positive & negative)
    if len(split) == 0:
        return face_sign
    halves = []
    for f in split:
        cycle = state.face_vertices[off[f]:off[f + 1]]
        plus, minus = _split_cycle(cycle, signs[off[f]:off[f + 1]])
        halves += [plus, minus]
    keep = np.ones(len(off) - 1, bool)
    keep[split] = False
    lengths = np.concatenate([np.diff(off)[keep], [len(h) for h in halves]])
    state.face_vertices = np.concatenate([state.face_vertices[keep[state.face_index()]], *halves])
    state.face_offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    state.face_cells = np.concatenate([state.face_cells[keep], np.repeat(state.face_cells[split], 2, axis=0)])
    state.face_labels = np.concatenate([state.face_labels[keep], np.repeat(state.face_labels[split], 2)])
    return np.concatenate([face_sign[keep], np.tile(np.array([1, -1], np.int8), len(split))])


def _split_cycle(cycle, signs):
    """A convex face's cycle with + and - vertices -> its + part and its - part.

    Going round, the signs (zeros skipped) change twice; between the two changes lie runs of zero
    vertices (one vertex each, unless round-off put a short edge on the plane). The chord joins the
    first zero of the + -> - run to the last zero of the - -> + run; the - part keeps both runs whole."""
    nonzero = np.flatnonzero(signs)
    nz_signs = signs[nonzero]
    changes = np.flatnonzero(nz_signs != np.roll(nz_signs, 1))
    if len(changes) != 2:
        raise AssertionError(f"edge subdivision: a face's signs change {len(changes)} times round it "
                             f"(a non-convex face); signs {signs.tolist()}")
    k = len(cycle)
    p = q = None
    for i in changes:
        start, end = nonzero[i - 1], nonzero[i]  # nonzero vertices before and after the zero run
        first, last = (start + 1) % k, (end - 1) % k
        if nz_signs[i] < 0:  # + -> -
            p = first
        else:
            q = last
    plus = cycle[_cyclic(q, p, k)]
    minus = cycle[_cyclic(p, q, k)]
    return plus, minus


def _cyclic(i, j, k):
    """Positions i, i+1, ..., j round a cycle of length k."""
    return (i + np.arange((j - i) % k + 1)) % k


def _split_cells(state, s, face_sign, label):
    """Step 4: cells with vertices of both signs split; the new faces between their parts."""
    inc_cell, inc_vertex = state.incidences()
    C = state.n_cells
    n_positive = np.bincount(inc_cell, weights=s[inc_vertex] > 0, minlength=C)
    n_negative = np.bincount(inc_cell, weights=s[inc_vertex] < 0, minlength=C)
    side = np.where(n_positive > 0, 1, np.where(n_negative > 0, -1, 0)).astype(np.int8)
    split = np.flatnonzero((n_positive > 0) & (n_negative > 0))
    if len(split) == 0:
        return np.arange(C), side
    minus_cell = np.full(C, -1, np.int64)
    minus_cell[split] = C + np.arange(len(split))
    sections = _sections(state, s, split)
    # faces of a split cell go to its part on their side (a face of a split cell has a nonzero sign)
    cells = state.face_cells.copy()
    for j in range(2):
        c = cells[:, j]
        moved = (c >= 0) & (face_sign < 0)
        moved[moved] = minus_cell[c[moved]] >= 0
        cells[moved, j] = minus_cell[c[moved]]
    lengths = np.concatenate([np.diff(state.face_offsets), [len(x) for x in sections]])
    state.face_vertices = np.concatenate([state.face_vertices, *sections])
    state.face_offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    state.face_cells = np.concatenate([cells, np.stack([split, minus_cell[split]], 1)])
    state.face_labels = np.concatenate([state.face_labels, np.full(len(split), label, np.int64)])
    state.n_cells = C + len(split)
    parent = np.concatenate([np.arange(C), split])
    side = np.concatenate([np.where(minus_cell >= 0, 1, side), -np.ones(len(split), np.int8)]).astype(np.int8)
    return parent, side


def _sections(state, s, split):
    """The new face of each split cell: its edges with both ends on the plane, chained into a cycle."""
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
    edges = np.unique(np.concatenate(rows), axis=0)  # each edge of a cell lies on two of its faces
    starts = np.searchsorted(edges[:, 0], split)
    ends = np.searchsorted(edges[:, 0], split, side="right")
    return [_chain(edges[i:j, 1:]) for i, j in zip(starts, ends, strict=True)]


def _chain(edges):
    """Undirected edges (k, 2) forming one cycle -> its vertices in order (k,)."""
    neighbours = {}
    for u, v in edges.tolist():
        neighbours.setdefault(u, []).append(v)
        neighbours.setdefault(v, []).append(u)
    if len(edges) < 3 or any(len(n) != 2 for n in neighbours.values()):
        raise AssertionError(f"edge subdivision: a cell's section is not one cycle: edges {edges.tolist()}")
    start = int(edges[0, 0])
    cycle, previous, current = [start], None, start
    while True:
        a, b = neighbours[current]
        nxt = b if a == previous else a
        if nxt == start:
            break
        cycle.append(nxt)
        previous, current = current, nxt
    if len(cycle) != len(edges):
        raise AssertionError(f"edge subdivision: a cell's section is several cycles: edges {edges.tolist()}")
    return np.array(cycle, np.int64)
