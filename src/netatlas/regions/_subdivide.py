"""Edge subdivision of a 3-D polyhedral complex by one plane per cell: the step that the exact 3-D
partition (``_volume``) repeats for every hidden unit and level, and that ``_mesh`` uses for level sets.

# NOTE [edge subdivision in 3-D]
The complex is held globally: vertices (V, 3), faces as vertex cycles (each convex, each with its
two cells, -1 for the outside of the box) and cells as the faces that bound them. A cut gives each
cell c an affine function ``z_c(x) = A[c, :3] . x + A[c, 3]`` that is continuous across the complex
(a unit's pre-activation on the cells of the layers before it), and

1. takes one value per *vertex*, so that every face and cell around a vertex sees the same sign.
   A unit is evaluated at every vertex of the layer's start with the map of one cell around it
   (``vertex_values``, ``UnitValues``, ``_layercut``; a unit exactly zero on a cell is zero at all its vertices); a
   vertex an earlier cut of the layer made gets it by interpolation along its edge (the edge lies in
   one cell of the earlier layers, where they are affine). A value within ``tolerance`` of
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

from netatlas.regions._cutkernel import compact, cut_faces
from netatlas.regions._roundoff import EPS

__all__ = ["ComplexState", "EVAL_ROUNDINGS", "GrowingComplex", "UnitValues", "box_state", "cut", "home_cells",
           "vertex_values"]

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
    """One cell (V,) around each vertex (the one whose map gives the vertex its values): a cell of the
    last face listing the vertex."""
    return _home_cells(state.face_vertices, state.face_offsets, state.face_cells, len(state.points))


@njit(cache=True)
def _home_cells(vertices, offsets, face_cells, n_vertices):
    home = np.empty(n_vertices, np.int64)
    for f in range(len(offsets) - 1):
        cell = face_cells[f, 0] if face_cells[f, 0] >= 0 else face_cells[f, 1]
        for t in range(offsets[f], offsets[f + 1]):
            home[vertices[t]] = cell
    return home


#: Vertices evaluated per chunk by ``vertex_values`` (bounds its gathered maps).
VALUE_CHUNK = 8192


def vertex_values(state: ComplexState, A: np.ndarray, tolerance: float, home=None) -> tuple[np.ndarray, np.ndarray]:
    """Values (V, n) of the cells' affine functions ``A`` (C, 4, n) at the vertices, each from one cell
    around the vertex, and the limits (V, n) below which a value counts as zero: ``tolerance`` (a
    distance) times the gradient's norm, or the round-off of the evaluation (NOTE [edge subdivision
    in 3-D], step 1). A function that is exactly zero on a cell (a vanishing unit) is zero at all of
    the cell's vertices. ``home``: ``home_cells(state)`` when the caller has it."""
    home = home_cells(state) if home is None else home
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


class UnitValues:
    """The values and zero limits (V,) of one unit of a layer at the vertices, computed when the unit
    cuts (NOTE [edge subdivision in 3-D], step 1): at the vertices of the layer's start from the map
    ``A`` (C, 4, n) of their home cell (as :func:`vertex_values`), at the vertices the layer's earlier
    cuts made by interpolation along their edges, in the order they were made. The same numbers as
    evaluating all units at the start and interpolating every unit at every cut, holding 24 bytes per
    new vertex instead of 16 per vertex and unit."""

    def __init__(self, state: ComplexState, A: np.ndarray, tolerance: float):
        self.points, self.home, self.A, self.tolerance = state.points, home_cells(state), A, tolerance
        self.single = vertex_values(state, A, tolerance) if A.shape[2] == 1 else None  # NumPy's order for n = 1
        # (vertex, unit) pairs zeroed on cells where the unit vanishes
        vanished = (A == 0).all(axis=1)  # (C, n)
        self.zero_vertex = self.zero_unit = np.zeros(0, np.int64)
        if vanished.any() and self.single is None:
            keys = np.unique(_vanished_keys(state.face_vertices, state.face_offsets, state.face_cells, vanished))
            self.zero_vertex, self.zero_unit = keys // A.shape[2], keys % A.shape[2]
        self.lo, self.hi, self.t, self.n_new = np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0), 0

    def row(self, j: int) -> tuple[np.ndarray, np.ndarray]:
        """Unit j's values (V,) and limits (V,) at every vertex made so far (the cuts before j's)."""
        if self.single is not None:
            return self.single[0][:, 0], self.single[1][:, 0]
        zero = self.zero_vertex[self.zero_unit == j]
        return _unit_values(self.points, self.home, self.A, j, self.tolerance, EVAL_ROUNDINGS * EPS, zero, self.lo,
                            self.hi, self.t, self.n_new)

    def nbytes(self) -> int:
        return self.home.nbytes + self.lo.nbytes + self.hi.nbytes + self.t.nbytes

    def extend(self, new, unit: int) -> None:
        """Record the vertices a cut made (``new`` = (lo, hi, t) from :func:`cut`), growing by half."""
        lo, hi, t = new
        need = self.n_new + len(lo)
        if need > len(self.lo):
            capacity = max(need, len(self.lo) * 3 // 2)
            for name in ("lo", "hi", "t"):
                old = getattr(self, name)
                grown = np.empty(capacity, old.dtype)
                grown[:self.n_new] = old[:self.n_new]
                setattr(self, name, grown)
        self.lo[self.n_new:need], self.hi[self.n_new:need], self.t[self.n_new:need] = lo, hi, t
        self.n_new = need


@njit(cache=True)
def _vanished_keys(vertices, offsets, face_cells, vanished):
    """``vertex * n + unit`` (with repeats) for every vertex of a cell on which the unit vanishes
    (``vanished`` (C, n) bool)."""
    count = _emit_vanished(vertices, offsets, face_cells, vanished, np.zeros(0, np.int64))
    keys = np.empty(count, np.int64)
    _emit_vanished(vertices, offsets, face_cells, vanished, keys)
    return keys


@njit(cache=True)
def _emit_vanished(vertices, offsets, face_cells, vanished, keys):
    """Count the keys of ``_vanished_keys`` (``keys`` empty) or write them; return the count."""
    n = vanished.shape[1]
    count = 0
    for f in range(len(offsets) - 1):
        for side in range(2):
            c = face_cells[f, side]
            if c < 0:
                continue
            for j in range(n):
                if vanished[c, j]:
                    for t in range(offsets[f], offsets[f + 1]):
                        if len(keys):
                            keys[count] = vertices[t] * n + j
                        count += 1
    return count


@njit(cache=True)
def _unit_values(points, home, A, j, tolerance, roundoff, zero, lo, hi, t, n_new):
    """Unit j's ``z = x . a[:3] + a[3]`` and limit ``max(tolerance |a[:3]|, roundoff (|x| . |a[:3]| +
    |a[3]|))`` (``a = A[home[v], :, j]``; sums left to right, as NumPy's einsum does them for several
    functions) at the ``len(home)`` first vertices, 0 at ``zero``; then, for the ``n_new`` vertices at
    ``t`` from ``lo`` to ``hi``, ``z[lo] + t (z[hi] - z[lo])`` and the larger limit of the two."""
    n_start = len(home)
    z = np.empty(n_start + n_new)
    limit = np.empty(n_start + n_new)
    for v in range(n_start):
        c = home[v]
        a0, a1, a2, a3 = A[c, 0, j], A[c, 1, j], A[c, 2, j], A[c, 3, j]
        x0, x1, x2 = points[v, 0], points[v, 1], points[v, 2]
        z[v] = x0 * a0 + x1 * a1 + x2 * a2 + a3
        magnitude = abs(x0) * abs(a0) + abs(x1) * abs(a1) + abs(x2) * abs(a2) + abs(a3)
        limit[v] = max(tolerance * np.sqrt(a0 * a0 + a1 * a1 + a2 * a2), roundoff * magnitude)
    for v in zero:
        z[v] = 0.0
    for i in range(n_new):
        a, b = lo[i], hi[i]
        z[n_start + i] = z[a] + t[i] * (z[b] - z[a])
        limit[n_start + i] = max(limit[a], limit[b])
    return z, limit


def cut(state: ComplexState, z: np.ndarray, limit: np.ndarray, label: int):
    """Split ``state`` in place by the zero set of a function continuous on the complex and affine on
    each cell, given by its values ``z`` (V,) at the vertices (zero where ``|z| <= limit``).

    Returns ``parent`` (C',) the old cell of each new cell (new cells are numbered after the old,
    each old split cell keeping its + part), ``side`` (C',) int8 the sign of the function on each
    new cell (0: zero on the whole cell), the vertex signs (V',) after the cut (the new vertices 0),
    and the new vertices as ``(lo, hi, t)``: each at ``t`` from vertex ``lo`` to vertex ``hi``.
    New faces get ``label``."""
    growing = GrowingComplex(state)
    side, split, signs, new = growing.cut(z, limit, label)
    growing.store(state)
    return np.concatenate([np.arange(len(side) - len(split)), split]), side, signs, new


class GrowingComplex:
    """A :class:`ComplexState` in growable buffers (NOTE [growable complex] in ``_cutkernel``), cut after
    cut without rebuilding its arrays."""

    def __init__(self, state: ComplexState, copy: bool = True):
        """From ``state``; ``copy=False`` takes its arrays over (cuts change them in place)."""
        own = np.copy if copy else np.asarray
        self.points, self.n_points = own(state.points), len(state.points)
        self.pool, self.n_pool = own(state.face_vertices), len(state.face_vertices)
        self.face_start = state.face_offsets[:-1].copy()
        self.face_length = np.diff(state.face_offsets)
        self.face_cells, self.face_labels = own(state.face_cells), own(state.face_labels)
        self.n_faces, self.n_cells = len(state.face_cells), state.n_cells

    def cut(self, z, limit, label: int):
        """Cut by the zero set of ``z`` (see :func:`cut`): ``side`` (C',) int8, ``split`` (S,) the split
        cells (the - part of ``split[i]`` is cell ``C + i``), the vertex signs (V',), ``(lo, hi, t)``."""
        (self.points, self.n_points, self.pool, self.n_pool, self.face_start, self.face_length, self.face_cells,
         self.face_labels, self.n_faces, self.n_cells, side, split, signs, lo, hi, t, bad_face,
         bad_cell) = cut_faces(self.points, self.n_points, self.pool, self.n_pool, self.face_start, self.face_length,
                               self.face_cells, self.face_labels, self.n_faces, self.n_cells,
                               np.ascontiguousarray(z), np.ascontiguousarray(limit), label)
        if bad_face >= 0:
            raise AssertionError(f"edge subdivision: the signs round face {bad_face} change more than twice (a "
                                 "non-convex face)")
        if bad_cell >= 0:
            raise AssertionError(f"edge subdivision: the section of cell {bad_cell} is not one cycle")
        if self.n_pool > 2 * self.face_length[:self.n_faces].sum():  # half holes: rewrite it flat
            self.pool, offsets = compact(self.pool, self.face_start, self.face_length, self.n_faces)
            self.face_start, self.n_pool = offsets[:-1].copy(), len(self.pool)
        return side, split, signs, (lo, hi, t)

    def nbytes(self) -> int:
        """Bytes held by the buffers."""
        return sum(getattr(self, name).nbytes for name in ("points", "pool", "face_start", "face_length",
                                                           "face_cells", "face_labels"))

    def store(self, state: ComplexState) -> None:
        """Write the complex into ``state`` in the flat (CSR) layout."""
        state.face_vertices, state.face_offsets = compact(self.pool, self.face_start, self.face_length, self.n_faces)
        state.points = self.points[:self.n_points].copy()
        state.face_cells = self.face_cells[:self.n_faces].copy()
        state.face_labels = self.face_labels[:self.n_faces].copy()
        state.n_cells = self.n_cells
