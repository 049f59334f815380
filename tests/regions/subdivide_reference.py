"""The 3-D edge subdivision's cut as it was before its steps moved into one compiled kernel
(``netatlas.regions._subdivide.cut_kernel``): NumPy glue around the unchanged per-face kernels. Kept as
the reference the kernel must reproduce bit for bit (test_regions_volume_kernels.py)."""

import numpy as np

from netatlas.regions._subdivide import ComplexState, chain_cycles, crossed_entries, insert_and_split, section_edges

__all__ = ["cut_reference", "extend_reference"]


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


def extend_reference(self, new, unit: int) -> None:
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
