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

from netatlas.regions._cutkernel import compact, cut_faces
from netatlas.regions._roundoff import EPS

__all__ = ["ComplexState", "EVAL_ROUNDINGS", "GrowingComplex", "box_state", "VertexValues", "cut", "home_cells",
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


def vertex_values(state: ComplexState, A: np.ndarray, tolerance: float) -> tuple[np.ndarray, np.ndarray]:
    """Values (V, n) of the cells' affine functions ``A`` (C, 4, n) at the vertices, each from one cell
    around the vertex, and the limits (V, n) below which a value counts as zero: ``tolerance`` (a
    distance) times the gradient's norm, or the round-off of the evaluation (NOTE [edge subdivision
    in 3-D], step 1). A function that is exactly zero on a cell (a vanishing unit) is zero at all of
    the cell's vertices. For n > 1, both are transposed views of unit-major (n, V) arrays."""
    n_vertices, n = len(state.points), A.shape[2]
    home = home_cells(state)
    if n > 1:
        Z, limit = _evaluate(state.points, home, A, tolerance, EVAL_ROUNDINGS * EPS)
        Z, limit = Z.T, limit.T
    else:  # one function (a level): NumPy's einsum sums its three terms in another order; kept as it was
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


@njit(cache=True)
def _evaluate(points, home, A, tolerance, roundoff):
    """``z = x . a[:3] + a[3]`` (n, V) with ``a = A[home[v], :, j]``, and the limits ``max(tolerance
    |a[:3]|, roundoff (|x| . |a[:3]| + |a[3]|))`` (n, V); sums left to right, as NumPy's einsum does
    them for n > 1 (tests/regions/test_regions_volume_kernels.py)."""
    n = A.shape[2]
    Z = np.empty((n, len(points)))
    limit = np.empty((n, len(points)))
    for v in range(len(points)):
        a = A[home[v]]
        x0, x1, x2 = points[v, 0], points[v, 1], points[v, 2]
        for j in range(n):
            Z[j, v] = x0 * a[0, j] + x1 * a[1, j] + x2 * a[2, j] + a[3, j]
            magnitude = abs(x0) * abs(a[0, j]) + abs(x1) * abs(a[1, j]) + abs(x2) * abs(a[2, j]) + abs(a[3, j])
            gradient = np.sqrt(a[0, j] * a[0, j] + a[1, j] * a[1, j] + a[2, j] * a[2, j])
            limit[j, v] = max(tolerance * gradient, roundoff * magnitude)
    return Z, limit


class VertexValues:
    """A layer's values and zero limits at the vertices, for the units not cut yet: ``row(j)`` gives
    unit j's values (V,) and limits (V,). Held unit-major in buffers that grow by half as cuts add
    vertices; a unit's rows are dropped once it has cut (at the next growth)."""

    def __init__(self, Z, limit):
        """From ``Z``, ``limit`` (V, n)."""
        self.n, self.first = len(Z), 0
        self._Z, self._limit = np.ascontiguousarray(Z.T), np.ascontiguousarray(limit.T)

    def row(self, j: int) -> tuple[np.ndarray, np.ndarray]:
        """Unit j's values (V,) and limits (V,) (j at least every unit passed to :meth:`extend`)."""
        return self._Z[j - self.first, :self.n], self._limit[j - self.first, :self.n]

    def nbytes(self) -> int:
        return self._Z.nbytes + self._limit.nbytes

    def extend(self, new, unit: int) -> None:
        """Rows for the vertices a cut by ``unit`` made (``new`` = (lo, hi, t) from :func:`cut`): the
        functions are affine along the cut edge, so their values interpolate; ``unit`` is 0 there, and
        units up to ``unit`` are not needed any more."""
        lo, hi, t = new
        need = self.n + len(lo)
        if need > self._Z.shape[1]:
            capacity = max(need, self._Z.shape[1] * 3 // 2)
            keep = unit - self.first  # rows of the units that have cut are dropped
            for name in ("_Z", "_limit"):
                old = getattr(self, name)
                grown = np.empty((len(old) - keep, capacity))
                grown[:, :self.n] = old[keep:, :self.n]
                setattr(self, name, grown)
            self.first = unit
        _interpolate_columns(self._Z, self._limit, self.n, lo, hi, t, unit - self.first)
        self.n = need


@njit(cache=True)
def _interpolate_columns(Z, limit, n, lo, hi, t, unit):
    """Entries ``n, n + 1, ...`` of each row of ``Z`` and ``limit`` (n_units, capacity) for the vertices
    at ``t`` from ``lo`` to ``hi`` (in place): ``Z[:, lo] + t (Z[:, hi] - Z[:, lo])``, 0 in row
    ``unit``, the larger of the two limits."""
    for j in range(Z.shape[0]):
        for i in range(len(lo)):
            a, b = lo[i], hi[i]
            Z[j, n + i] = 0.0 if j == unit else Z[j, a] + t[i] * (Z[j, b] - Z[j, a])
            limit[j, n + i] = max(limit[j, a], limit[j, b])


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
