"""The exact 3-D complex of a piecewise-linear network on a :class:`~netatlas.Volume`: vertices, edges,
faces (each with its two cells), cells with volumes, activation patterns and affine output maps."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from netatlas._checks import require_finite
from netatlas._memory import check_memory
from netatlas.regions._partition import VERTEX_MERGE_TOLERANCE, Neighbors
from netatlas.slices import Volume

__all__ = ["Complex3D"]

@dataclass(frozen=True, eq=False)
class Complex3D:
    """The exact linear regions (cells) of a network on a 3-D slice, as a polyhedral complex (see
    :func:`netatlas.regions.partition` with a :class:`~netatlas.Volume`).

    Coordinates are volume coordinates (u, v, w). Every cell is a convex polyhedron on which the
    network is affine; two cells meet in whole faces (the complex is face-to-face), so its Euler
    characteristic V - E + F - C is 1 (a subdivided ball).

    Attributes
    ----------
    volume : Volume
        The slice.
    vertices : ndarray of shape (V, 3)
        Distinct vertices.
    edges : ndarray of shape (E, 2) int
        Vertex pairs (lower index first), each once.
    faces : list of F int arrays
        Each face's vertex indices in cyclic order (a convex polygon); ``face_cells`` (F, 2) its two
        cells (-1: the outside of the box), ``face_labels`` (F,) the pattern column (unit) whose zero
        set it lies on, ``n_units + j`` for the j-th max output (windows of the ``Max`` nodes in
        order), ``n_units + n_max_outputs + i`` for ``levels[i]``, or -1..-6 for the box's sides (u =
        min, u = max, v = min, ...).
    num_cells : int
        C, the number of cells.
    volumes : ndarray of shape (C,)
        Volume of each cell in (u, v, w) units; they sum to ``volume.volume``.
    patterns : ndarray of shape (C, N) bool
        On/off state (pre-activation > 0) of every hidden unit, in ``net.activations`` order.
    level_sides : ndarray of shape (C, n_levels) int8
        For each of ``levels``: +1 where output ``level_output`` is above it on the cell, -1 below, 0
        where it equals it on the whole cell.
    choices : tuple of ndarrays of shape (C, n_out_k) int
        For each ``Max`` node (max pooling, a max over outputs), in order: the position within its
        window (a row of the node's ``index``) of each output's arg-max on the cell; () without them.
        ``max_units_per_layer`` and ``max_layer_names`` give their sizes and node names.
    maps : ndarray of shape (C, 4, n_outputs)
        Output maps in centred coordinates: rows d/du, d/dv, d/dw and the value at the box's centre
        (see :meth:`output_maps` for maps in volume coordinates).
    tolerance : float
        The boundary tolerance (relative to the box's diagonal).
    """

    volume: Volume
    center: np.ndarray  # (3,) internal coordinates are (u, v, w) - center
    points: np.ndarray  # (V, 3) centred vertices
    face_vertices: np.ndarray  # (T,) face cycles, flat
    face_offsets: np.ndarray  # (F + 1,)
    face_cells: np.ndarray  # (F, 2)
    face_labels: np.ndarray  # (F,)
    patterns: np.ndarray
    maps: np.ndarray
    levels: tuple
    level_output: int
    level_sides: np.ndarray
    units_per_layer: tuple
    layer_names: tuple
    tolerance: float
    net: object = None
    choices: tuple = ()
    max_units_per_layer: tuple = ()
    max_layer_names: tuple = ()
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    # -- counts -----------------------------------------------------------------------------------
    @property
    def num_cells(self) -> int:
        return int(self.maps.shape[0])

    @property
    def n_units(self) -> int:
        return int(sum(self.units_per_layer))

    @property
    def n_outputs(self) -> int:
        return int(self.maps.shape[2])

    @property
    def diameter(self) -> float:
        return float(np.linalg.norm(self.volume.upper - self.volume.lower))

    # -- geometry ---------------------------------------------------------------------------------
    @property
    def vertices(self) -> np.ndarray:
        return self.points + self.center

    @property
    def faces(self) -> list:
        return np.split(self.face_vertices, self.face_offsets[1:-1])

    @property
    def edges(self) -> np.ndarray:
        if "edges" not in self._cache:
            from netatlas.regions._cutkernel import unique_edges

            check_memory(3 * 8 * len(self.face_vertices), f"the edges of a complex of {self.num_cells:,} cells")
            self._cache["edges"] = unique_edges(self.face_vertices, self.face_offsets, len(self.points))
        return self._cache["edges"]

    def _next_entry(self) -> np.ndarray:
        nxt = np.arange(1, len(self.face_vertices) + 1)
        nxt[self.face_offsets[1:] - 1] = self.face_offsets[:-1]
        return nxt

    def _face_index(self) -> np.ndarray:
        return np.repeat(np.arange(len(self.face_offsets) - 1), np.diff(self.face_offsets))

    def cell_faces(self, i: int) -> np.ndarray:
        """Indices into ``faces`` of the faces bounding cell i."""
        i = self._check_index(i)
        offsets, faces = self._cell_face_csr()
        return faces[offsets[i]:offsets[i + 1]]

    def _cell_face_csr(self):
        if "cell_faces" not in self._cache:
            cells = self.face_cells.ravel()
            faces = np.repeat(np.arange(len(self.face_cells)), 2)
            keep = cells >= 0
            order = np.argsort(cells[keep], kind="stable")
            offsets = np.concatenate([[0], np.cumsum(np.bincount(cells[keep], minlength=self.num_cells))])
            self._cache["cell_faces"] = (offsets, faces[keep][order])
        return self._cache["cell_faces"]

    def _check_index(self, i) -> int:
        if not isinstance(i, (int, np.integer)) or not -self.num_cells <= i < self.num_cells:
            raise IndexError(f"Complex3D: cell index {i!r} out of range for {self.num_cells} cells")
        return int(i) % self.num_cells

    def _incidences(self):
        """Distinct (cell, vertex) pairs, sorted by cell."""
        if "incidences" not in self._cache:
            from netatlas.regions._cutkernel import cell_vertices

            # every face entry twice (its two cells), then as pairs
            check_memory(6 * 8 * len(self.face_vertices), f"the cells' vertices of {self.num_cells:,} cells")
            self._cache["incidences"] = cell_vertices(self.face_vertices, self.face_offsets, self.face_cells,
                                                      self.num_cells)
        return self._cache["incidences"]

    def centroids(self) -> np.ndarray:
        """Mean of each cell's vertices (C, 3): a point inside every cell (volume coordinates)."""
        return self._centroids() + self.center

    def _centroids(self) -> np.ndarray:
        if "centroids" not in self._cache:
            pairs = self._incidences()
            counts = np.bincount(pairs[:, 0], minlength=self.num_cells)
            sums = np.stack([np.bincount(pairs[:, 0], weights=self.points[pairs[:, 1], d], minlength=self.num_cells)
                             for d in range(3)], 1)
            self._cache["centroids"] = sums / counts[:, None]
        return self._cache["centroids"]

    @property
    def volumes(self) -> np.ndarray:
        if "volumes" not in self._cache:
            from netatlas.regions._cutkernel import cell_volumes

            # a convex cell is the union of the cones from its centroid over its faces' fan triangles
            self._cache["volumes"] = cell_volumes(self.points, self.face_vertices, self.face_offsets,
                                                  self.face_cells, self._centroids(), self.num_cells)
        return self._cache["volumes"]

    def euler_characteristic(self) -> int:
        """V - E + F - C: 1 for a complex that subdivides the box (a ball).

        >>> import netatlas
        >>> cx = netatlas.regions.partition(netatlas.nets.mlp([3, 6, 1], seed=0), netatlas.Volume.cube(1.0))
        >>> cx.euler_characteristic()
        1
        """
        return int(len(self.points) - len(self.edges) + len(self.face_cells) - self.num_cells)

    # -- maps -------------------------------------------------------------------------------------
    def output_maps(self) -> tuple[np.ndarray, np.ndarray]:
        """Each cell's affine output map in volume coordinates: ``linear`` (C, n_outputs, 3) and
        ``offset`` (C, n_outputs), the output at (u, v, w) in cell i being ``linear[i] @ [u, v, w] +
        offset[i]``."""
        linear = np.ascontiguousarray(self.maps[:, :3, :].transpose(0, 2, 1))
        offset = self.maps[:, 3, :] - np.einsum("d,cdo->co", self.center, self.maps[:, :3, :])
        return linear, offset

    def outputs(self, points, cells=None) -> np.ndarray:
        """The network's outputs (P, n_outputs) at points (P, 3) from the cells' affine maps."""
        pts = _points(points, "outputs")
        cells = self.locate(pts) if cells is None else np.asarray(cells)
        if np.any(cells < 0):
            raise ValueError("Complex3D.outputs: some points lie outside the volume")
        check_memory(5 * 8 * len(pts) * self.n_outputs, f"Complex3D.outputs at {len(pts):,} points")
        m = self.maps[cells]
        rel = pts - self.center
        return np.einsum("pd,pdo->po", rel, m[:, :3]) + m[:, 3]

    # -- queries ----------------------------------------------------------------------------------
    def locate(self, points) -> np.ndarray:
        """Cell index (P,) of each point (P, 3) in volume coordinates; -1 outside the box.

        A point on a face goes to one of the cells sharing it (within ``VERTEX_MERGE_TOLERANCE``
        times the diagonal). Non-finite points raise ValueError naming the entry.

        >>> import netatlas
        >>> cx = netatlas.regions.partition(netatlas.nets.mlp([3, 6, 1], seed=0), netatlas.Volume.cube(1.0))
        >>> cells = cx.locate(cx.centroids())
        >>> bool((cells == range(cx.num_cells)).all()), int(cx.locate([[2.0, 0, 0]])[0])
        (True, -1)
        """
        from netatlas.regions._locate3d import build_buckets, locate_in_cells

        pts = _points(points, "locate") - self.center
        if "locator" not in self._cache:
            normals, cell_h = self._halfspaces()
            pairs = self._incidences()
            lo = np.full((self.num_cells, 3), np.inf)
            hi = np.full((self.num_cells, 3), -np.inf)
            for d in range(3):
                np.minimum.at(lo[:, d], pairs[:, 0], self.points[pairs[:, 1], d])
                np.maximum.at(hi[:, d], pairs[:, 0], self.points[pairs[:, 1], d])
            tol = VERTEX_MERGE_TOLERANCE * self.diameter
            n_side = int(min(max(round(self.num_cells ** (1 / 3)), 1), 64))
            origin = self.points.min(0) - tol
            step = np.maximum((self.points.max(0) + tol - origin) / n_side, 1e-300)
            bucket_off, bucket_cells = build_buckets(lo - tol, hi + tol, origin, step, n_side)
            self._cache["locator"] = (normals, cell_h, bucket_off, bucket_cells, origin, step, n_side, tol)
        normals, cell_h, bucket_off, bucket_cells, origin, step, n_side, tol = self._cache["locator"]
        return locate_in_cells(np.ascontiguousarray(pts), normals, cell_h, bucket_off, bucket_cells, origin, step,
                               n_side, tol)

    def _halfspaces(self):
        """Per (cell, face): the face's plane as (unit outward normal, offset) (H, 4), CSR by cell."""
        offsets, faces = self._cell_face_csr()
        cell = np.repeat(np.arange(self.num_cells), np.diff(offsets))
        # Newell's normal of each face, about the face's vertex mean
        face_of = self._face_index()
        n_faces = len(self.face_cells)
        counts = np.diff(self.face_offsets)
        mean = np.stack([np.bincount(face_of, weights=self.points[self.face_vertices, d], minlength=n_faces)
                         for d in range(3)], 1) / counts[:, None]
        p = self.points[self.face_vertices] - mean[face_of]
        q = p[self._next_entry()]
        cross = np.cross(p, q)
        normal = np.stack([np.bincount(face_of, weights=cross[:, d], minlength=n_faces) for d in range(3)], 1)
        norm = np.linalg.norm(normal, axis=1)
        normal = normal / np.where(norm > 0, norm, 1.0)[:, None]
        n = normal[faces]
        d = -np.einsum("ij,ij->i", n, mean[faces])
        outward = np.einsum("ij,ij->i", n, self._centroids()[cell]) + d <= 0
        sign = np.where(outward, 1.0, -1.0)
        return np.ascontiguousarray(np.concatenate([n * sign[:, None], (d * sign)[:, None]], 1)), offsets

    def neighbors(self) -> Neighbors:
        """Pairs of cells sharing a face (E, 2), and the unit (pattern column; ``n_units + i`` for
        ``levels[i]``) whose zero set the face lies on."""
        inner = (self.face_cells >= 0).all(1)
        pairs = np.sort(self.face_cells[inner], axis=1)
        return Neighbors(pairs.astype(np.int64), self.face_labels[inner].astype(np.int64))

    def level_set(self, value: float = 0.0, output: int = 0):
        """The exact level set ``{output == value}`` as a triangle :class:`~netatlas.regions.Mesh`: each
        cell's planar piece, fan-triangulated, sharing edges with its neighbours (watertight up to the
        box's sides); see ``netatlas.regions._mesh.level_set``.

        >>> import netatlas
        >>> cx = netatlas.regions.partition(netatlas.nets.mlp([3, 8, 1], seed=0), netatlas.Volume.cube(1.0),
        ...                                 levels=(0.0,))
        >>> mesh = cx.level_set(0.0)
        >>> mesh.is_watertight(), round(mesh.area, 6) == round(cx.level_set(0.0).area, 6)
        (True, True)
        """
        from netatlas.regions._mesh import level_set

        return level_set(self, value, output=output)

    def to_dict(self) -> dict:
        """JSON-safe summary (counts, volumes, settings)."""
        vol = self.volumes
        return {
            "num_cells": self.num_cells,
            "n_vertices": int(len(self.points)),
            "n_edges": int(len(self.edges)),
            "n_faces": int(len(self.face_cells)),
            "euler_characteristic": self.euler_characteristic(),
            "n_units": self.n_units,
            "n_max_outputs": int(sum(self.max_units_per_layer)),
            "units_per_layer": list(self.units_per_layer),
            "layer_names": list(self.layer_names),
            "n_outputs": self.n_outputs,
            "levels": list(self.levels),
            "level_output": self.level_output,
            "volume": self.volume.to_dict(),
            "total_volume": float(vol.sum()),
            "min_volume": float(vol.min()),
            "tolerance": self.tolerance,
        }

    def __repr__(self) -> str:
        return (f"Complex3D(num_cells={self.num_cells}, n_vertices={len(self.points)}, n_units={self.n_units}, "
                f"bounds={self.volume.bounds})")


def _points(points, where) -> np.ndarray:
    pts = np.asarray(points, dtype=np.float64)
    if pts.shape == (3,):
        pts = pts[None]
    if pts.ndim != 2 or pts.shape[1] != 3:
        raise ValueError(f"Complex3D.{where}: points must have shape (P, 3) in volume coordinates; got {pts.shape}")
    require_finite(pts, f"Complex3D.{where}: points")
    return pts


