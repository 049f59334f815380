"""3-D complexes in k x k x k tiles: each tile's complex built on its own (memory bounded by the tile),
the whole complex's counts, cells' volumes and level-set meshes assembled exactly from the tiles,
with no geometry compared across them (NOTE [tiles in 3-D]).

# NOTE [tiles in 3-D]
Every face of the complex (vertex, edge, polygon or cell) has a *sign vector*: for each unit and
level, the sign (+, -, 0) of its pre-activation (of the output minus the level) on the face, and
for each side of the volume whether the face lies on it. A unit is affine on a face and does not
change sign on it (else its cut would have split the face), so the sign is the same all over the
face's relative interior and is its vertices' signs combined: + (-) when some vertex is + (-), 0
when all are 0 — bitwise, the OR of the vertices' (positive, negative) bit sets. Distinct faces
have distinct sign vectors: the points with one sign vector form a convex set (with the signs
fixed, every later unit is affine on it), and a face ends only where a further unit, level or side
becomes zero.

A tile's complex is the whole complex cut by the tile's box. Each of its faces lies in one face of
the whole complex, its *carrier*, and has the carrier's sign vector (the tile's inner sides are not
among the signs), so the whole complex has one face per distinct sign vector, of the largest
dimension among the tile faces that carry it. The vertex signs are those the tile's own cuts used
(``GrowingComplex.cut``; a vertex a cut makes is 0 for its unit and has its edge's signs for the
earlier ones), so the tiles agree wherever the untiled run's signs are not decided by round-off,
and nothing is matched by distance. Each tile snaps with the volume's absolute boundary tolerance
(its relative tolerance times the volume's diagonal), as the untiled run does. The build reports every
cut to a ``VertexSigns`` recorder (``_volume._build(..., recorder=)``: the vertices' signs and the new
vertices' edges); a build that cut without reporting fails ``VertexSigns.check``.

Only a face with a vertex on an inner tile plane can carry pieces in other tiles (a convex face
that leaves the tile crosses its boundary, at one of its own faces); the others are whole faces,
counted in their tile. The former are kept with their sign vector, dimension and *stratum* (for
each axis, the grid plane the face lies on or the slab it crosses) and counted once at the end:
cells of one sign vector sum their pieces' volumes; the tiled complex's own faces are the distinct
(sign vector, stratum) pairs. Level-set polygons are stitched at the vertices with one (sign
vector, stratum); a polygon lying on an inner tile plane that both tiles give is kept once.

# NOTE [graph tiles in 3-D]
Graphs (``_volume_graph``: residual additions, max pooling, hardtanh) are tiled the same way. An
activation's unit (and breakpoint) is a column as in a chain: its input is continuous and affine on
every cell before it. A window of a ``Max`` node gives one column per entry q: its sign is 0 where
z_q is the window's max, - where it is below. On a cell of the complex after the window, which lies in
one cell before it (where every entry is affine) and has one winner p, ``z_q - z_p`` is affine and
<= 0: zero on a face's relative interior exactly when zero at all its vertices, so the OR of the
vertices is again the face's sign; and the points of one (earlier signs, arg-max set) are convex
(``z_q = z_s`` for q, s in the set, ``z_r < z_s`` for the others, all affine there). The tournament
(NOTE [graph cells in 3-D]) cuts by ``z_q - R_{q-1}``, ``R_{q-1} = max_{p<q} z_p`` (continuous on the
complex), and records those running signs s_q (also for an entry that beats no winner and cuts
nothing); a new vertex takes its edge's, as for units (its edge lies in one cell of the running
tournament). After the window ``VertexSigns.settle_window`` turns them into the window's: z_q is the
max at a vertex iff ``s_q >= 0`` (z_q >= R_{q-1}, so R_q = z_q) and ``s_r <= 0`` for every r > q (R
grows no more); then the merge's dropped vertices leave the recorder too (``VertexSigns.keep``).
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass

import numpy as np
from numba import njit

from netatlas._memory import check_memory
from netatlas.regions import _scale
from netatlas.regions._cutkernel import unique_edges
from netatlas.regions._mesh import Mesh
from netatlas.regions._partition import BOUNDARY_TOLERANCE
from netatlas.slices import Volume

__all__ = ["TiledComplex3D", "VertexSigns", "face_signs", "tile_volumes", "tiled_volume_partition"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class TiledComplex3D:
    """The exact 3-D complex of a network on a Volume, built in ``tiles`` x ``tiles`` x ``tiles`` tiles
    (``partition(net, volume, tiles=k)``): the whole complex's counts, its cells' volumes and the
    level-set meshes of ``levels``, assembled exactly from the tiles (NOTE [tiles in 3-D] in
    ``netatlas.regions._tiles3d``). Vertices, faces and maps are not held (that is what bounds the
    memory); partition without tiles for those.

    Attributes
    ----------
    volume : Volume
        The slice.
    tiles : int
        Tiles per axis.
    n_vertices, n_edges, n_faces, num_cells : int
        V, E, F and C of the whole (untiled) complex.
    volumes : ndarray of shape (C,)
        Each cell's volume (cells of no tile border first, tile by tile, then the cells the tile planes
        cut); they sum to ``volume.volume``.
    tiled_counts : tuple of 4 ints
        V, E, F and C of the complex cut by the tile planes too (its Euler characteristic is 1 as well).
    tile_cells : ndarray of shape (tiles, tiles, tiles) int
        Cells (pieces) of each tile's complex, indexed (u, v, w).
    levels : tuple of float
        The level sets the cells were cut by (of output ``level_output``).
    n_units : int
        Hidden units of the net (the cells' pattern columns).
    meshes : tuple of Mesh
        The stitched level-set mesh of each level (``Mesh.cells`` index ``volumes``).
    """

    volume: Volume
    tiles: int
    n_vertices: int
    n_edges: int
    n_faces: int
    num_cells: int
    volumes: np.ndarray
    tiled_counts: tuple
    tile_cells: np.ndarray
    levels: tuple
    level_output: int
    n_units: int
    meshes: tuple

    def euler_characteristic(self) -> int:
        """V - E + F - C of the whole complex: 1 for a subdivided box.

        >>> import netatlas
        >>> cx = netatlas.regions.partition(netatlas.nets.mlp([3, 6, 1], seed=0), netatlas.Volume.cube(1.0),
        ...                                 tiles=2)
        >>> cx.euler_characteristic()
        1
        """
        return int(self.n_vertices - self.n_edges + self.n_faces - self.num_cells)

    def level_set(self, value: float | None = None) -> Mesh:
        """The stitched mesh of ``value`` (one of ``levels``; default the first): the exact level set of
        output ``level_output``."""
        if not self.levels:
            raise ValueError("TiledComplex3D.level_set: the complex was built without levels; partition with "
                             "levels=(value,) to get its mesh")
        value = self.levels[0] if value is None else float(value)
        if value not in self.levels:
            raise ValueError(f"TiledComplex3D.level_set: value must be one of the levels {list(self.levels)} the "
                             f"complex was built with; got {value}")
        return self.meshes[self.levels.index(value)]

    def to_dict(self) -> dict:
        """JSON-safe summary (counts, volumes, settings), the keys of ``Complex3D.to_dict`` where they apply."""
        return {"num_cells": self.num_cells, "n_vertices": self.n_vertices, "n_edges": self.n_edges,
                "n_faces": self.n_faces, "euler_characteristic": self.euler_characteristic(),
                "tiles": self.tiles, "tiled_counts": list(self.tiled_counts),
                "max_tile_cells": int(self.tile_cells.max()), "levels": list(self.levels),
                "level_output": self.level_output, "n_units": self.n_units, "volume": self.volume.to_dict(),
                "total_volume": float(self.volumes.sum()), "min_volume": float(self.volumes.min())}

    def __repr__(self) -> str:
        return (f"TiledComplex3D(num_cells={self.num_cells}, n_vertices={self.n_vertices}, tiles={self.tiles}, "
                f"bounds={self.volume.bounds})")


def tile_volumes(volume: Volume, tiles: int) -> list[tuple[tuple[int, int, int], Volume]]:
    """The ``tiles``^3 tiles of ``volume`` as ((i, j, k), Volume), i along u (fastest), j along v, k along w;
    a grid plane is one float for both tiles beside it.

    >>> [t[1].bounds for t in tile_volumes(Volume.cube(1.0), 2)][:2]
    [(-1.0, 0.0, -1.0, 0.0, -1.0, 0.0), (0.0, 1.0, -1.0, 0.0, -1.0, 0.0)]
    """
    b = volume.bounds
    grids = []
    for a in range(3):
        g = np.linspace(b[2 * a], b[2 * a + 1], tiles + 1)
        g[0], g[-1] = b[2 * a], b[2 * a + 1]
        grids.append([float(x) for x in g])
    out = []
    for k, j, i in np.ndindex(tiles, tiles, tiles):
        bounds = (grids[0][i], grids[0][i + 1], grids[1][j], grids[1][j + 1], grids[2][k], grids[2][k + 1])
        out.append(((int(i), int(j), int(k)), dataclasses.replace(volume, bounds=bounds)))
    return out


class VertexSigns:
    """Every vertex's sign (+, -, 0) for each cut so far, as two packed bit sets (positive, negative):
    a ``recorder`` for ``_volume``'s build. A cut's ``signs`` (V',) give its column; the vertices it
    made (``new`` = (lo, hi, t)) take their edge's signs for the earlier columns (the OR of its ends':
    an edge's ends never have opposite signs for a column already cut)."""

    def __init__(self, n_columns: int, n_vertices: int = 8):
        self.n_bytes = (n_columns + 7) // 8
        self.bits = np.zeros((max(n_vertices, 8), 2 * self.n_bytes), np.uint8)  # [positive | negative]
        self.n_vertices = n_vertices
        self.columns: set[int] = set()

    def __call__(self, column: int, signs: np.ndarray, new) -> None:
        lo, hi, _ = new
        n = len(signs)
        assert n - len(lo) == self.n_vertices, "VertexSigns: a cut's vertices do not follow the last one's"
        if n > len(self.bits):
            grown = np.zeros((max(n, len(self.bits) * 3 // 2), self.bits.shape[1]), np.uint8)
            grown[:self.n_vertices] = self.bits[:self.n_vertices]
            self.bits = grown
        self.bits[self.n_vertices:n] = self.bits[lo] | self.bits[hi]
        byte, bit = divmod(column, 8)
        self.bits[:n, byte] |= (signs > 0).view(np.uint8) << bit
        self.bits[:n, self.n_bytes + byte] |= (signs < 0).view(np.uint8) << bit
        self.n_vertices = n
        self.columns.add(column)

    def keep(self, alive: np.ndarray) -> None:
        """Drop the vertices not ``alive`` (V,) bool, the others renumbered in order (a merge of cells)."""
        assert len(alive) == self.n_vertices, "VertexSigns: a merge's vertices are not the recorded ones"
        kept = self.bits[:self.n_vertices][alive]
        self.bits[:len(kept)] = kept
        self.n_vertices = len(kept)

    def settle_window(self, columns: np.ndarray, present: np.ndarray) -> None:
        """A window's columns (k,) of running tournament signs (s_q of ``z_q - max_{p<q} z_p``; the first
        entry's never cut) made its arg-max signs: 0 where entry q is the window's max at the vertex, -
        elsewhere; ``present`` (k,) bool, absent entries never the max (NOTE [graph tiles in 3-D])."""
        n = self.n_vertices
        running = np.empty((n, len(columns)), np.int8)
        for q, column in enumerate(columns):
            byte, bit = divmod(int(column), 8)
            positive = (self.bits[:n, byte] >> bit) & 1
            negative = (self.bits[:n, self.n_bytes + byte] >> bit) & 1
            running[:, q] = np.where(present[q], positive.astype(np.int8) - negative.astype(np.int8), -1)
        # no later entry rises above the running max: s_r <= 0 for every r > q
        later = np.ones((n, len(columns)), bool)
        later[:, :-1] = np.logical_and.accumulate((running <= 0)[:, :0:-1], axis=1)[:, ::-1]
        is_max = (running >= 0) & later & present
        for q, column in enumerate(columns):
            byte, bit = divmod(int(column), 8)
            self.bits[:n, byte] &= np.uint8(~(1 << bit) & 0xFF)
            self.bits[:n, self.n_bytes + byte] &= np.uint8(~(1 << bit) & 0xFF)
            self.bits[:n, self.n_bytes + byte] |= (~is_max[:, q]).view(np.uint8) << bit
            self.columns.add(int(column))

    def check(self, n_vertices: int, columns) -> None:
        """Assert that every cut of ``columns`` was recorded and every one of the ``n_vertices`` has its signs
        (a build that cuts without reporting to its recorder would give wrong tiled counts, not an error)."""
        missing = set(columns) - self.columns
        assert not missing and n_vertices == self.n_vertices, (
            f"VertexSigns: the 3-D build reported {len(self.columns)} cuts and {self.n_vertices} vertices, expected "
            f"columns {sorted(missing)[:5]}... and {n_vertices} vertices: its cut must call recorder(column, signs, "
            "new) (see _volume._build)")

    def packed(self) -> np.ndarray:
        """(V, 2 * n_bytes) uint8: positive bits, then negative bits."""
        return self.bits[:self.n_vertices]


@njit(cache=True)
def _or_cycles(rows, vertices, offsets):
    """OR of ``rows`` (V, B) over each face cycle (CSR ``vertices``, ``offsets``) -> (F, B)."""
    n_faces = len(offsets) - 1
    out = np.zeros((n_faces, rows.shape[1]), np.uint8)
    for f in range(n_faces):
        for t in range(offsets[f], offsets[f + 1]):
            v = vertices[t]
            for b in range(rows.shape[1]):
                out[f, b] |= rows[v, b]
    return out


@njit(cache=True)
def _or_cells(face_rows, face_cells, n_cells):
    """OR of ``face_rows`` (F, B) over each cell's faces -> (C, B)."""
    out = np.zeros((n_cells, face_rows.shape[1]), np.uint8)
    for f in range(len(face_cells)):
        for j in range(2):
            c = face_cells[f, j]
            if c >= 0:
                for b in range(face_rows.shape[1]):
                    out[c, b] |= face_rows[f, b]
    return out


def face_signs(complex3d, vertex_bits: np.ndarray) -> list[np.ndarray]:
    """Sign rows of the faces of each dimension of a complex: ``[vertices (V, B + 2), edges (E, B + 2),
    faces (F, B + 2), cells (C, B + 2)]`` uint8, edges in ``unique_edges`` order. A face's row is the OR
    of its vertices' rows: ``vertex_bits`` (V, B) (positive bits, then negative bits: NOTE [tiles in
    3-D]), then two bytes: bit a (3 + a) of the first set when some vertex is off the lower (upper)
    side of axis a of the complex's box, of the second when some vertex is on it.

    >>> import netatlas
    >>> from netatlas.regions._tiles3d import VertexSigns, face_signs
    >>> from netatlas.regions._volume import build_complex, checked_volume_inputs
    >>> vol = netatlas.Volume.cube(1.0)
    >>> net, layers, levels, cap, per_cell = checked_volume_inputs(netatlas.nets.mlp([3, 4, 1], seed=0), vol, (),
    ...                                                            0, 1e-10, None, None, None)
    >>> signs = VertexSigns(4)
    >>> cx = build_complex(net, layers, vol, levels, 0, 1e-10, cap, per_cell, None, recorder=signs)
    >>> vertices, edges, faces, cells = face_signs(cx, signs.packed())
    >>> len(np.unique(cells, axis=0)) == cx.num_cells    # one sign vector per cell
    True
    """
    points = complex3d.points
    half = (complex3d.volume.upper - complex3d.volume.lower) / 2
    on = np.zeros(len(points), np.uint8)
    for a in range(3):
        on |= (points[:, a] == -half[a]).view(np.uint8) << a
        on |= (points[:, a] == half[a]).view(np.uint8) << (3 + a)
    vertex_rows = np.concatenate([vertex_bits, (~on & 63)[:, None], on[:, None]], axis=1)
    edges = unique_edges(complex3d.face_vertices, complex3d.face_offsets, len(points))
    edge_rows = vertex_rows[edges[:, 0]] | vertex_rows[edges[:, 1]]
    del edges
    face_rows = _or_cycles(vertex_rows, complex3d.face_vertices, complex3d.face_offsets)
    cell_rows = _or_cells(face_rows, complex3d.face_cells, complex3d.num_cells)
    return [vertex_rows, edge_rows, face_rows, cell_rows]


def _void(rows: np.ndarray) -> np.ndarray:
    """Rows (n, B) as one void item each (compared byte for byte by np.unique)."""
    rows = np.ascontiguousarray(rows)
    return rows.view(np.dtype((np.void, rows.shape[1]))).ravel()


def _bit(rows: np.ndarray, n_bytes: int, column: int) -> np.ndarray:
    """True where the row's sign for ``column`` is nonzero (its positive or negative bit set)."""
    byte, bit = divmod(column, 8)
    return (((rows[:, byte] | rows[:, n_bytes + byte]) >> bit) & 1).astype(bool)


def _tile(cx, bits: np.ndarray, index, tiles: int, level_columns, level_output: int, first_cell: int) -> dict:
    """What a tile gives the whole (NOTE [tiles in 3-D]): the counts of its faces that touch no inner
    tile plane (whole faces of the complex), the (sign vector, dimension, stratum, volume) of the others,
    dimension by dimension, and its level-set polygons (``level_columns``: the levels' sign columns)."""
    n_bytes = bits.shape[1] // 2
    inner = 0  # the tile's sides that are inner tile planes
    for a in range(3):
        inner |= (index[a] > 0) << a
        inner |= (index[a] < tiles - 1) << (3 + a)
    columns = list(level_columns)
    complete, keys, dims, strata, border, touches, rows_of, nonzero = [], [], [], [], [], [], [], []
    n_kept = 0
    for d, rows in enumerate(face_signs(cx, bits)):
        off, on = rows[:, 2 * n_bytes], rows[:, 2 * n_bytes + 1]
        touch = (on & inner) != 0  # a vertex on an inner plane: the face may carry pieces elsewhere
        kept = np.flatnonzero(touch)
        complete.append(len(rows) - len(kept))
        key = rows[kept, :2 * n_bytes + 1]
        key[:, 2 * n_bytes] |= inner  # inner sides are not signs: only the volume's own sides are
        keys.append(key)
        dims.append(np.full(len(kept), d, np.int8))
        stratum = np.empty((len(kept), 3), np.int16)
        for a in range(3):
            lower = (off[kept] >> a) & 1 == 0
            upper = (off[kept] >> (3 + a)) & 1 == 0
            stratum[:, a] = np.where(lower, 2 * index[a], np.where(upper, 2 * index[a] + 2, 2 * index[a] + 1))
        strata.append(stratum)
        border.append(((~off[kept]) & inner) != 0)  # the face lies on an inner plane (in other tiles too)
        row_of = np.full(len(rows), -1, np.int64)  # the row among the kept ones (all dimensions), or -1
        row_of[kept] = n_kept + np.arange(len(kept))
        rows_of.append(row_of)
        touches.append(touch)
        nonzero.append([_bit(rows, n_bytes, c) for c in columns] if d >= 2 else None)
        n_kept += len(kept)
        del rows
    volumes = cx.volumes
    cell_touch = touches[3]
    kept_volumes = np.zeros(n_kept)
    kept_volumes[rows_of[3][cell_touch]] = volumes[cell_touch]
    # cell ids: whole cells numbered from first_cell, cut ones as -1 - their row among the kept
    cell_id = np.where(cell_touch, -1 - rows_of[3], first_cell + np.cumsum(~cell_touch) - 1)
    meshes = [_tile_mesh(cx, nonzero[2][i], nonzero[3][i], touches[0], rows_of[0], rows_of[2], cell_id,
                         level_output) for i in range(len(columns))]
    return {"complete": np.array(complete), "volumes": volumes[~cell_touch], "keys": np.concatenate(keys),
            "dims": np.concatenate(dims), "strata": np.concatenate(strata), "border": np.concatenate(border),
            "kept_volumes": kept_volumes, "meshes": meshes, "n_cells": cx.num_cells}


def _tile_mesh(cx, face_nonzero, cell_nonzero, seam_vertex, vertex_row, face_row, cell_id, level_output) -> dict:
    """A tile's level-set polygons, chosen as ``_mesh.level_set`` does, from the signs the cuts used:
    faces zero on the level (not ``face_nonzero``), not between two cells (or a cell and the outside)
    where the output is the level throughout; fan-triangulated, oriented along the output's gradient."""
    flat = np.concatenate([~cell_nonzero, [True]])  # the outside (-1) counts as flat
    fc = cx.face_cells
    faces = np.flatnonzero(~face_nonzero & ~(flat[fc[:, 0]] & flat[fc[:, 1]]))
    off, fv = cx.face_offsets, cx.face_vertices
    n_tri = np.diff(off)[faces] - 2
    face = np.repeat(faces, n_tri)
    k = np.arange(n_tri.sum()) - np.repeat(np.cumsum(n_tri) - n_tri, n_tri) + 1
    tri = np.stack([fv[off[face]], fv[off[face] + k], fv[off[face] + k + 1]], 1)
    cell = np.where(flat[fc[face, 0]], fc[face, 1], fc[face, 0])  # a cell where the output is not flat
    p = cx.points[tri]
    normal = np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0])
    face_normal = np.zeros((len(fc), 3))
    np.add.at(face_normal, face, normal)
    flip = np.einsum("ij,ij->i", face_normal[face], cx.maps[cell, :3, level_output]) < 0
    tri[flip] = tri[flip][:, ::-1]
    used, tri = np.unique(tri, return_inverse=True)
    seam = seam_vertex[used]  # on an inner plane: named by (sign vector, stratum) when stitched
    return {"vertices": cx.points[used] + cx.center, "triangles": tri.reshape(-1, 3), "seam_vertex": seam,
            "vertex_rows": vertex_row[used[seam]], "face_rows": face_row[face], "cells": cell_id[cell]}


def _named(keys: np.ndarray, strata: np.ndarray) -> np.ndarray:
    """(sign vector, stratum) rows as void items."""
    return _void(np.concatenate([keys, strata.astype("<i2").view(np.uint8).reshape(len(strata), 6)], axis=1))


def tiled_volume_partition(net, volume: Volume, tiles: int, *, levels=(), level_output: int = 0,
                           tolerance: float = BOUNDARY_TOLERANCE, max_regions: int | None = None,
                           memory_budget="auto", progress: bool | None = None) -> TiledComplex3D:
    """The exact 3-D complex of ``net`` on ``volume`` in ``tiles``^3 tiles (see
    :func:`netatlas.regions.partition` with a Volume and ``tiles``; NOTE [tiles in 3-D]).

    Parameters
    ----------
    net, volume, levels, level_output, tolerance, max_regions, memory_budget, progress
        As for ``partition(net, volume)``; the limits apply to each tile's run, ``max_regions`` also
        to the whole count.
    tiles : int
        Tiles per axis (>= 1): the working memory is about a tile's.

    Returns
    -------
    TiledComplex3D
        V, E, F, C of the whole complex, its cells' volumes, the stitched level-set meshes.

    Examples
    --------
    >>> import netatlas
    >>> net = netatlas.nets.mlp([3, 8, 8, 1], seed=0)
    >>> whole = netatlas.regions.partition(net, netatlas.Volume.cube(1.0), levels=(0.0,))
    >>> tiled = netatlas.regions.partition(net, netatlas.Volume.cube(1.0), levels=(0.0,), tiles=3)
    >>> (tiled.num_cells, tiled.n_vertices, tiled.n_edges) == (whole.num_cells, len(whole.vertices), len(whole.edges))
    True
    >>> tiled.euler_characteristic(), round(float(tiled.volumes.sum()), 9), tiled.level_set(0.0).is_watertight()
    (1, 8.0, True)
    """
    from netatlas.regions._skipvolume import skip_volume, skip_volume_chain
    from netatlas.regions._volume import (
        _progress_bar,
        _step_checker,
        build_complex,
        checked_volume_inputs,
        volume_frame,
    )

    if isinstance(tiles, bool) or not isinstance(tiles, (int, np.integer)) or tiles < 1:
        raise ValueError(f"partition: tiles must be an integer >= 1; got {tiles!r}")
    tiles = int(tiles)
    net, layers, levels, cap, per_cell = checked_volume_inputs(net, volume, levels, level_output, tolerance,
                                                               max_regions, memory_budget, progress, tiles**3)
    distance = float(tolerance) * float(np.linalg.norm(volume.upper - volume.lower))
    skips = skip_volume_chain(net) if layers is None else None
    if skips is not None:  # a residual MLP: the chain path with carried skips (``_skipvolume``)
        n_units = n_columns = sum(skips[1])
        cut_columns, column = [], 0
        for n, (_, _, act) in zip(skips[1], skips[0][:-1], strict=True):
            if act.name != "identity":
                cut_columns += range(column, column + n)
            column += n

        def build(tile, signs):
            return skip_volume(net, skips, tile, levels, level_output, float(tolerance), cap, volume_frame(tile),
                               lambda M, patterns, n_bits: _step_checker(M, patterns, n_bits, cap, per_cell, None),
                               recorder=signs, distance=distance)
    elif layers is None:  # a graph (NOTE [graph tiles in 3-D])
        build, n_units, n_columns, cut_columns = _graph_builder(net, levels, level_output, float(tolerance), cap,
                                                                per_cell, distance)
    else:
        n_units = n_columns = sum(W.shape[0] for W, _, _ in layers[:-1])
        cut_columns, column = [], 0  # the columns the build cuts by: units of nonlinear layers, then the levels
        for W, _, act in layers[:-1]:
            if act.name != "identity":
                cut_columns += range(column, column + W.shape[0])
            column += W.shape[0]

        def build(tile, signs):
            return build_complex(net, layers, tile, levels, level_output, float(tolerance), cap, per_cell, None,
                                 recorder=signs, distance=distance)
    level_columns = list(range(n_columns, n_columns + len(levels)))
    n_columns += len(levels)
    cut_columns += level_columns
    bar = _progress_bar(tiles**3, progress)
    if bar is not None:
        bar.set_description("tiles")
        bar.unit = "tile"
    parts, n_complete_cells = [], 0
    tile_cells = np.zeros((tiles, tiles, tiles), np.int64)
    try:
        for index, tile in tile_volumes(volume, tiles):
            signs = VertexSigns(n_columns)
            cx = build(tile, signs)
            signs.check(len(cx.points), cut_columns)
            part = _tile(cx, signs.packed(), index, tiles, level_columns, level_output, n_complete_cells)
            del cx, signs
            log.debug("tile %s: %d cells, %d faces touching inner tile planes kept", index, part["n_cells"],
                      len(part["dims"]))
            tile_cells[index] = part["n_cells"]
            n_complete_cells += len(part["volumes"])
            if max_regions is not None and n_complete_cells > max_regions:
                raise _scale.RegionLimitError(f"partition: passed {max_regions:,} cells (max_regions) after "
                                              f"{len(parts) + 1} of {tiles**3} tiles; use a smaller Volume "
                                              "(bounds), or raise max_regions")
            parts.append(part)
            if bar is not None:
                bar.update(1)
                bar.set_postfix_str(f"{n_complete_cells:,} whole cells", refresh=False)
    finally:
        if bar is not None:
            bar.close()
    result = _assemble(parts, volume, tiles, levels, level_output, tile_cells, n_units)
    if max_regions is not None and result.num_cells > max_regions:
        raise _scale.RegionLimitError(f"partition: {result.num_cells:,} cells, above max_regions={max_regions:,}; "
                                      "use a smaller Volume (bounds), or raise max_regions")
    return result


def _graph_builder(net, levels, level_output, tolerance, cap, per_cell, distance):
    """``(build(tile, signs), n_units, n_columns, cut_columns)`` for a graph net: each tile's complex by
    ``_volume_graph.graph_volume`` with its limits, its cuts reported to ``signs`` in the columns of
    ``graph_columns`` (levels not counted)."""
    from netatlas.regions._volume import _check_size, volume_frame
    from netatlas.regions._volume_graph import graph_columns, graph_steps, graph_volume

    n_units, n_entries, cut_columns = graph_columns(net)
    widest, n_bits = max(node.size for node in net.nodes), graph_steps(net)

    def check_size(growing, n_new_bits):
        _check_size(growing, None, np.zeros((1, 4, widest)), np.zeros((0, n_bits), bool), n_new_bits, cap, per_cell)

    def build(tile, signs):
        return graph_volume(net, tile, levels, level_output, tolerance, None, volume_frame(tile), check_size,
                            recorder=signs, distance=distance)

    return build, n_units, n_units + n_entries, list(cut_columns)


def _assemble(parts, volume, tiles, levels, level_output, tile_cells, n_units) -> TiledComplex3D:
    """The whole complex's figures from the tiles' (NOTE [tiles in 3-D])."""
    n_kept = sum(len(p["dims"]) for p in parts)
    width = parts[0]["keys"].shape[1]
    check_memory(3 * n_kept * (width + 24), f"the {n_kept:,} faces on tile borders")
    keys = np.concatenate([p["keys"] for p in parts])
    dims = np.concatenate([p["dims"] for p in parts])
    carriers, carrier_of = np.unique(_void(keys), return_inverse=True)
    carrier_of = carrier_of.ravel()
    top = np.zeros(len(carriers), np.int8)  # the carrier's dimension: its largest piece's
    np.maximum.at(top, carrier_of, dims)
    complete = sum(p["complete"] for p in parts)
    counts = complete + np.bincount(top, minlength=4)
    # cells cut by tile planes: their pieces' volumes summed
    piece_volumes = np.concatenate([p["kept_volumes"] for p in parts])
    cut_cells = np.flatnonzero(top == 3)
    merged = np.bincount(carrier_of, weights=piece_volumes, minlength=len(carriers))[cut_cells]
    volumes = np.concatenate([p["volumes"] for p in parts] + [merged])
    # the tiled complex: faces on inner planes once per (sign vector, stratum), the others once
    strata = np.concatenate([p["strata"] for p in parts])
    border = np.concatenate([p["border"] for p in parts])
    named, first = np.unique(_named(keys[border], strata[border]), return_index=True)
    tiled = complete + np.bincount(dims[~border], minlength=4) + np.bincount(dims[border][first], minlength=4)
    del named
    cell_index = np.full(len(carriers), -1, np.int64)
    cell_index[cut_cells] = sum(len(p["volumes"]) for p in parts) + np.arange(len(cut_cells))
    row_start = np.cumsum([0] + [len(p["dims"]) for p in parts])
    meshes = tuple(_stitch([p["meshes"][i] for p in parts], row_start, keys, strata, border, carrier_of, cell_index,
                           volume, levels[i], level_output) for i in range(len(levels)))
    return TiledComplex3D(volume=volume, tiles=tiles, n_vertices=int(counts[0]), n_edges=int(counts[1]),
                          n_faces=int(counts[2]), num_cells=int(counts[3]), volumes=volumes,
                          tiled_counts=tuple(int(c) for c in tiled), tile_cells=tile_cells, levels=tuple(levels),
                          level_output=int(level_output), n_units=int(n_units), meshes=meshes)


def _stitch(pieces, row_start, keys, strata, border, carrier_of, cell_index, volume, value, level_output) -> Mesh:
    """One mesh from the tiles' level-set polygons: vertices on inner planes merged by (sign vector,
    stratum), a polygon on an inner plane that two tiles give kept from the first."""
    vertices, seam_points, seam_rows, triangles, cells, face_rows = [], [], [], [], [], []
    n_plain = n_seam = 0
    for t, piece in enumerate(pieces):
        seam = piece["seam_vertex"]
        local = np.empty(len(seam), np.int64)  # plain vertices numbered in order, seam ones as -1 - slot
        local[~seam] = n_plain + np.arange(int((~seam).sum()))
        local[seam] = -1 - (n_seam + np.arange(int(seam.sum())))
        n_plain, n_seam = n_plain + int((~seam).sum()), n_seam + int(seam.sum())
        vertices.append(piece["vertices"][~seam])
        seam_points.append(piece["vertices"][seam])
        seam_rows.append(row_start[t] + piece["vertex_rows"])
        triangles.append(local[piece["triangles"]].reshape(-1, 3))
        c = piece["cells"].copy()
        cut = c < 0  # a cell the tile planes cut: its carrier's index
        c[cut] = cell_index[carrier_of[row_start[t] - 1 - c[cut]]]
        cells.append(c)
        face_rows.append(np.where(piece["face_rows"] >= 0, row_start[t] + piece["face_rows"], -1))
    rows = np.concatenate(seam_rows)
    _, first, slot_of = np.unique(_named(keys[rows], strata[rows]), return_index=True, return_inverse=True)
    points = np.concatenate(vertices + [np.concatenate(seam_points)[first]])
    tri = np.concatenate(triangles)
    seam = tri < 0
    tri[seam] = n_plain + slot_of.ravel()[-1 - tri[seam]]
    cell = np.concatenate(cells)
    # a polygon on an inner plane (its row a border face) may come from both tiles: keep the first copy
    face_row = np.concatenate(face_rows)
    tile = np.repeat(np.arange(len(pieces)), [len(p["triangles"]) for p in pieces])
    keep = np.ones(len(tri), bool)
    shared = np.flatnonzero(face_row >= 0)
    shared = shared[border[face_row[shared]]]
    if len(shared):
        _, name_of = np.unique(_named(keys[face_row[shared]], strata[face_row[shared]]), return_inverse=True)
        name_of = name_of.ravel()
        first_tile = np.full(name_of.max() + 1, len(pieces))
        np.minimum.at(first_tile, name_of, tile[shared])
        keep[shared] = tile[shared] == first_tile[name_of]
    return Mesh(vertices=points, triangles=tri[keep], cells=cell[keep], volume=volume, value=float(value),
                output=int(level_output))
