"""Exact level sets of a network on a 3-D complex as triangle meshes.

On each cell the output is affine, so ``{output == value}`` meets it in a convex polygon (or a face of
the complex, or nothing). The polygons come from one more edge subdivision of the complex by the
level (``_subdivide.cut``, labels and snapping as for a unit, on a copy of the complex): the new faces
between the parts of the cells it crosses, plus the faces already on the level (all of them when the
complex was built with ``levels=(value,)``: then no face has vertices on both sides, and nothing is
cut or copied); where the output equals the level on whole cells, the boundary of that solid
inside the box. Polygons of neighbouring cells share their edges and vertices, so the mesh is
watertight up to the box's sides; each polygon is fan-triangulated and oriented so that its normal
points to where the output grows.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
from numba import njit

from netatlas.regions._subdivide import ComplexState, cut, vertex_values
from netatlas.slices import Volume

__all__ = ["Mesh", "level_set"]

#: Label of the faces a level set cut makes (never a unit, a level or a box side).
_LEVEL_LABEL = -100


@dataclass(frozen=True, eq=False)
class Mesh:
    """A triangle mesh in volume coordinates: the exact level set of a network on a 3-D complex.

    Attributes
    ----------
    vertices : ndarray of shape (V, 3)
        Vertex positions (u, v, w).
    triangles : ndarray of shape (T, 3) int
        Vertex indices, counter-clockwise seen from where the output is above ``value``.
    cells : ndarray of shape (T,) int
        The complex's cell each triangle lies in (or on a face of).
    volume : Volume
        The slice (its box's sides are where the surface may end).
    value, output : float, int
        The level and the output it is of.

    Examples
    --------
    >>> import netatlas
    >>> cx = netatlas.regions.partition(netatlas.nets.mlp([3, 8, 1], seed=0), netatlas.Volume.cube(1.0))
    >>> mesh = cx.level_set(0.0)
    >>> mesh.triangles.shape[1], mesh.is_watertight(), mesh.area > 0
    (3, True, True)
    """

    vertices: np.ndarray
    triangles: np.ndarray
    cells: np.ndarray
    volume: Volume
    value: float
    output: int

    @property
    def n_triangles(self) -> int:
        return int(len(self.triangles))

    def triangle_areas(self) -> np.ndarray:
        """Area (T,) of each triangle."""
        p = self.vertices[self.triangles]
        return 0.5 * np.linalg.norm(np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0]), axis=1)

    @property
    def area(self) -> float:
        """Total area of the surface in (u, v, w) units."""
        return float(self.triangle_areas().sum())

    def boundary_edges(self) -> np.ndarray:
        """Edges (k, 2) used by one triangle only (the surface's rim)."""
        edges, counts = self._edge_counts()
        return edges[counts == 1]

    def _edge_counts(self):
        t = self.triangles
        pairs = np.concatenate([t[:, [0, 1]], t[:, [1, 2]], t[:, [2, 0]]])
        pairs.sort(axis=1)
        # (lower, higher) as one key: the order of np.unique(pairs, axis=0), sorting plain integers
        n = max(len(self.vertices), 1)
        keys, counts = np.unique(pairs[:, 0].astype(np.int64) * n + pairs[:, 1], return_counts=True)
        return np.stack([keys // n, keys % n], 1).astype(pairs.dtype), counts

    def is_watertight(self, tolerance: float = 1e-9) -> bool:
        """True when every edge is shared by exactly two triangles, except edges on one of the box's
        sides (within ``tolerance`` times the box's diagonal), which the surface may end on.

        >>> import netatlas
        >>> cx = netatlas.regions.partition(netatlas.nets.mlp([3, 8, 1], seed=1), netatlas.Volume.cube(1.0))
        >>> cx.level_set(0.0).is_watertight()
        True
        """
        edges, counts = self._edge_counts()
        lo, hi = self.volume.lower, self.volume.upper
        tol = tolerance * float(np.linalg.norm(hi - lo))
        p, q = self.vertices[edges[:, 0]], self.vertices[edges[:, 1]]
        on_side = (((np.abs(p - lo) <= tol) & (np.abs(q - lo) <= tol))
                   | ((np.abs(p - hi) <= tol) & (np.abs(q - hi) <= tol))).any(1)
        return bool(np.all(counts[~on_side] == 2) and np.all(counts[on_side] <= 2))

    def to_ply(self, path) -> None:
        """Write the mesh as ASCII PLY (vertices as float64 text, faces as vertex triples)."""
        header = ("ply\nformat ascii 1.0\ncomment netatlas exact level set\n"
                  f"element vertex {len(self.vertices)}\nproperty double x\nproperty double y\nproperty double z\n"
                  f"element face {len(self.triangles)}\nproperty list uchar int vertex_indices\nend_header\n")
        body = "".join(f"{x!r} {y!r} {z!r}\n" for x, y, z in self.vertices.tolist())
        body += "".join(f"3 {a} {b} {c}\n" for a, b, c in self.triangles.tolist())
        _write(path, header + body)

    def to_obj(self, path) -> None:
        """Write the mesh as Wavefront OBJ (1-based face indices)."""
        body = "# netatlas exact level set\n"
        body += "".join(f"v {x!r} {y!r} {z!r}\n" for x, y, z in self.vertices.tolist())
        body += "".join(f"f {a + 1} {b + 1} {c + 1}\n" for a, b, c in self.triangles.tolist())
        _write(path, body)

    def to_dict(self) -> dict:
        return {"n_vertices": int(len(self.vertices)), "n_triangles": self.n_triangles, "area": self.area,
                "watertight": self.is_watertight(), "value": self.value, "output": self.output}

    def __repr__(self) -> str:
        return f"Mesh(n_vertices={len(self.vertices)}, n_triangles={self.n_triangles}, area={self.area:.6g})"


def _write(path, text) -> None:
    path = os.fspath(path)
    tmp = f"{path}.tmp"
    with open(tmp, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)


@njit(cache=True)
def _face_sign_range(signs, vertices, offsets):
    """The largest and smallest vertex sign (F,) int8 of each face (CSR cycles)."""
    n_faces = len(offsets) - 1
    top = np.zeros(n_faces, np.int8)
    bottom = np.zeros(n_faces, np.int8)
    for f in range(n_faces):
        hi, lo = -1, 1
        for t in range(offsets[f], offsets[f + 1]):
            hi = max(hi, signs[vertices[t]])
            lo = min(lo, signs[vertices[t]])
        top[f], bottom[f] = hi, lo
    return top, bottom


@njit(cache=True)
def _cell_sign_range(top, bottom, face_cells, n_cells):
    """The largest and smallest vertex sign (C,) int8 of each cell from its faces' (0 for a cell with none)."""
    cell_top = np.zeros(n_cells, np.int8)
    cell_bottom = np.zeros(n_cells, np.int8)
    for f in range(len(top)):
        for side in range(2):
            c = face_cells[f, side]
            if c >= 0:
                cell_top[c] = max(cell_top[c], top[f])
                cell_bottom[c] = min(cell_bottom[c], bottom[f])
    return cell_top, cell_bottom


def _cells_on_one_side(state: ComplexState, signs: np.ndarray) -> np.ndarray | None:
    """Each cell's sign (C,) int8 (0: zero on the whole cell) when no cell has vertices of both signs
    (the complex is cut by the level already: a cut would change nothing); else None. (A cell can have
    both with no face having both: a plane through a cycle of its edges.)"""
    top, bottom = _face_sign_range(signs, state.face_vertices, state.face_offsets)
    cell_top, cell_bottom = _cell_sign_range(top, bottom, state.face_cells, state.n_cells)
    if np.any((cell_top > 0) & (cell_bottom < 0)):
        return None
    return cell_top + cell_bottom  # +1, -1, or 0 where every vertex is on the level


def level_set(complex3d, value: float = 0.0, *, output: int = 0) -> Mesh:
    """The exact level set ``{x : output_k(x) == value}`` of the network on a 3-D complex, triangulated.

    Parameters
    ----------
    complex3d : Complex3D
        From ``netatlas.regions.partition(net, volume)``.
    value : float
        The level.
    output : int
        Which output (default 0).

    Returns
    -------
    Mesh
        Each cell's planar piece of the level set, fan-triangulated; empty when the level is not met.

    Examples
    --------
    >>> import netatlas
    >>> cx = netatlas.regions.partition(netatlas.nets.mlp([3, 8, 1], seed=0), netatlas.Volume.cube(1.0))
    >>> mesh = cx.level_set(0.0)  # the same as level_set(cx, 0.0)
    >>> mesh.n_triangles > 0, cx.level_set(1e6).n_triangles
    (True, 0)
    """
    # duck-typed: _complex3d imports this module (Complex3D.level_set), so importing it back would be a circle
    if not all(hasattr(complex3d, name) for name in ("face_vertices", "face_cells", "maps", "n_outputs")):
        raise TypeError(f"level_set: expected a Complex3D (partition of a Volume), got {type(complex3d).__name__}")
    if not (isinstance(output, (int, np.integer)) and 0 <= output < complex3d.n_outputs):
        raise ValueError(f"level_set: output must be an index in [0, {complex3d.n_outputs}); got {output!r}")
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"level_set: value must be a number, got {type(value).__name__}") from None
    if not np.isfinite(value):
        raise ValueError(f"level_set: value must be finite; got {value}")
    state = ComplexState(complex3d.points, complex3d.face_vertices, complex3d.face_offsets,
                         complex3d.face_cells, complex3d.face_labels, complex3d.num_cells)
    A = complex3d.maps[:, :, output:output + 1].copy()
    A[:, 3] -= value
    Z, limit = vertex_values(state, A, complex3d.tolerance * complex3d.diameter)
    signs = np.where(np.abs(Z[:, 0]) <= limit[:, 0], 0, np.sign(Z[:, 0])).astype(np.int8)  # as the cut takes them
    uncut = _cells_on_one_side(state, signs)
    if uncut is None:  # the level crosses some face: cut a copy of the complex by it
        parent, side, signs, _ = cut(state, Z[:, 0], limit[:, 0], _LEVEL_LABEL)
    else:  # built with levels=(value,): already cut by it, the polygons are its faces (no copy)
        parent, side = np.arange(complex3d.num_cells), uncut
    del Z, limit
    A = A[:, :, 0]
    off, fv = state.face_offsets, state.face_vertices
    top, bottom = _face_sign_range(signs, fv, off)
    on_level = (top == 0) & (bottom == 0)
    # where the output equals the level on whole cells, the level set is a solid: keep only the faces
    # between such a cell and one where the output differs from the level (its boundary inside the box)
    flat = np.concatenate([side == 0, [True]])[state.face_cells]  # the outside (-1) counts as flat
    on_level &= ~flat.all(1)
    faces = np.flatnonzero(on_level)
    lengths = np.diff(off)[faces]
    n_tri = lengths - 2
    face = np.repeat(faces, n_tri)
    k = np.arange(n_tri.sum()) - np.repeat(np.cumsum(n_tri) - n_tri, n_tri) + 1
    tri = np.stack([fv[off[face]], fv[off[face] + k], fv[off[face] + k + 1]], 1)
    cell = parent[state.face_cells[face, 0]]
    # orient each face's triangles along the output's gradient in its cell (Newell's normal of the face)
    points = state.points
    p = points[tri]
    normal = np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0])
    face_normal = np.zeros((len(off) - 1, 3))
    np.add.at(face_normal, face, normal)
    flip = np.einsum("ij,ij->i", face_normal[face], A[cell, :3]) < 0
    tri[flip] = tri[flip][:, ::-1]
    used, tri = np.unique(tri, return_inverse=True)
    tri = tri.reshape(-1, 3)
    return Mesh(vertices=points[used] + complex3d.center, triangles=tri.astype(np.int64), cells=cell,
                volume=complex3d.volume, value=value, output=int(output))
