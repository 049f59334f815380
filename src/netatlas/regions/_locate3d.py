"""Point location in a 3-D complex of convex cells: a uniform grid of buckets over the box, each
listing the cells whose bounding box meets it; a point is in the first candidate cell whose
half-spaces (one per face, outward normals) all hold it, within a tolerance."""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["build_buckets", "locate_in_cells"]


@njit(cache=True)
def build_buckets(lo, hi, origin, step, n_side):
    """Cells (C,) with bounding boxes ``lo``, ``hi`` (C, 3) per bucket of an ``n_side``^3 grid from
    ``origin`` with bucket size ``step`` (3,): CSR ``(offsets (n_side^3 + 1,), cells)``."""
    n_buckets = n_side ** 3
    counts = np.zeros(n_buckets + 1, np.int64)
    C = lo.shape[0]
    first = np.empty((C, 3), np.int64)
    last = np.empty((C, 3), np.int64)
    for c in range(C):
        for d in range(3):
            a = int(np.floor((lo[c, d] - origin[d]) / step[d]))
            b = int(np.floor((hi[c, d] - origin[d]) / step[d]))
            first[c, d] = min(max(a, 0), n_side - 1)
            last[c, d] = min(max(b, 0), n_side - 1)
        for i in range(first[c, 0], last[c, 0] + 1):
            for j in range(first[c, 1], last[c, 1] + 1):
                for k in range(first[c, 2], last[c, 2] + 1):
                    counts[(i * n_side + j) * n_side + k + 1] += 1
    offsets = np.cumsum(counts)
    cells = np.empty(offsets[-1], np.int64)
    fill = offsets[:-1].copy()
    for c in range(C):
        for i in range(first[c, 0], last[c, 0] + 1):
            for j in range(first[c, 1], last[c, 1] + 1):
                for k in range(first[c, 2], last[c, 2] + 1):
                    b = (i * n_side + j) * n_side + k
                    cells[fill[b]] = c
                    fill[b] += 1
    return offsets, cells


@njit(cache=True)
def locate_in_cells(points, normals, cell_h, bucket_off, bucket_cells, origin, step, n_side, tol):
    """The cell (P,) of each point (P, 3): the first candidate with ``normals[h] . (x, 1) <= tol`` for
    every half-space h in ``cell_h[c]:cell_h[c + 1]`` (normals (H, 4): unit normal, offset); -1 if none."""
    P = points.shape[0]
    out = np.full(P, -1, np.int64)
    for p in range(P):
        b = 0
        inside = True
        for d in range(3):
            i = int(np.floor((points[p, d] - origin[d]) / step[d]))
            if i < -1 or i > n_side:
                inside = False
            b = b * n_side + min(max(i, 0), n_side - 1)
        if not inside:
            continue
        for t in range(bucket_off[b], bucket_off[b + 1]):
            c = bucket_cells[t]
            ok = True
            for h in range(cell_h[c], cell_h[c + 1]):
                v = (normals[h, 0] * points[p, 0] + normals[h, 1] * points[p, 1] + normals[h, 2] * points[p, 2]
                     + normals[h, 3])
                if v > tol:
                    ok = False
                    break
            if ok:
                out[p] = c
                break
    return out
