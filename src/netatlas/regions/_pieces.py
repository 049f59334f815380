"""Regions split exactly along the decision boundary: the convex cells where one class wins.

Inside a linear region every output is affine, so the set where class k wins is the region cut by
the half-planes ``f_k >= f_j`` (j != k): a convex polygon, computed with the same clip (and the same
boundary tolerance) as :func:`netatlas.regions.decision_boundary`, whose segments are these cells'
shared edges.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from netatlas.regions._boundary import SEGMENT_TOLERANCE
from netatlas.regions._kernels import _clip_piece, _grow1, _grow2

__all__ = ["ClassPieces", "class_pieces"]

#: A cell thinner than this share of its region's area is round-off of the clip, not a piece.
MIN_PIECE_AREA = 1e-14


@dataclass(frozen=True, eq=False)
class ClassPieces:
    """Convex pieces of the regions, each wholly in one predicted class.

    Attributes
    ----------
    xy : ndarray of shape (T, 2)
        Vertices in plane coordinates, counter-clockwise per piece.
    offsets : ndarray of shape (P + 1,)
        Piece p is ``xy[offsets[p]:offsets[p + 1]]``.
    classes : ndarray of shape (P,)
        The class that wins in each piece (one output: 1 where it is > 0, else 0).
    region : ndarray of shape (P,)
        The region each piece lies in; a region the boundary does not cross is one whole piece.
    """

    xy: np.ndarray
    offsets: np.ndarray
    classes: np.ndarray
    region: np.ndarray

    @property
    def n_pieces(self) -> int:
        return len(self.classes)

    def to_dict(self) -> dict:
        return {"n_pieces": self.n_pieces, "xy": self.xy.tolist(), "offsets": self.offsets.tolist(),
                "classes": self.classes.tolist(), "region": self.region.tolist()}


def class_pieces(partition) -> ClassPieces:
    """Split every region of ``partition`` along the decision boundary (see :class:`ClassPieces`).

    Regions whose vertices all predict one class lie wholly in that class (they are convex and the
    outputs affine) and stay whole; only the regions the boundary crosses are cut. A single output
    predicts class 1 where it is > 0 (a two-class net's logit difference).

    Examples
    --------
    >>> import netatlas
    >>> part = netatlas.regions.partition(netatlas.nets.mlp([2, 6, 3], seed=1))
    >>> pieces = part.class_pieces()
    >>> pieces.n_pieces > part.num_regions, bool(set(pieces.classes) <= {0, 1, 2})
    (True, True)
    >>> import numpy as np
    >>> area = lambda p: 0.5 * abs(sum(a[0] * b[1] - b[0] * a[1] for a, b in zip(p, np.roll(p, -1, 0))))
    >>> float(round(sum(area(pieces.xy[a:b]) for a, b in zip(pieces.offsets[:-1], pieces.offsets[1:])), 9))
    4.0
    """
    maps = np.asarray(partition.maps, dtype=np.float64)  # (F, 3, K) in centred coordinates
    if maps.shape[2] == 1:  # f1 - f0 with f0 = 0
        maps = np.concatenate([np.zeros_like(maps), maps], axis=2)
    xy, offsets, classes, region = _split(np.ascontiguousarray(partition.xy, dtype=np.float64),
                                          np.asarray(partition.offsets, dtype=np.int64),
                                          np.ascontiguousarray(maps), SEGMENT_TOLERANCE, MIN_PIECE_AREA)
    return ClassPieces(xy + np.asarray(partition.center, dtype=np.float64), offsets, classes, region)


@njit(cache=True)
def _area(pxy, n):
    acc = 0.0
    for i in range(1, n - 1):
        acc += ((pxy[i, 0] - pxy[0, 0]) * (pxy[i + 1, 1] - pxy[0, 1])
                - (pxy[i + 1, 0] - pxy[0, 0]) * (pxy[i, 1] - pxy[0, 1]))
    return 0.5 * abs(acc)


@njit(cache=True)
def _split(xy, off, maps, tol_rel, min_area):
    F = off.shape[0] - 1
    K = maps.shape[2]
    out_xy = np.empty((xy.shape[0] + 16, 2))
    out_off = np.zeros(F + 1, np.int64)
    out_cls = np.empty(F, np.int64)
    out_region = np.empty(F, np.int64)
    n_pieces, n_xy = 0, 0
    size = 64
    # a class's cell, clipped class after class: ping-pong between (bxy, bl) and (cxy, cl)
    bxy, bl, cxy, cl = np.empty((size, 2)), np.empty(size, np.int64), np.empty((size, 2)), np.empty(size, np.int64)
    zbuf = np.empty(size)
    for f in range(F):
        s, e = off[f], off[f + 1]
        k = e - s
        if 2 * (k + K) + 4 > size:
            size = 4 * (k + K) + 8
            bxy, bl, cxy, cl = _grow2(bxy, size), _grow1(bl, size), _grow2(cxy, size), _grow1(cl, size)
            zbuf = _grow1(zbuf, size)
        # the class of each vertex (first maximum); one class at every vertex: the region is whole
        first, pure = -1, True
        for i in range(s, e):
            best, arg = -np.inf, 0
            for c in range(K):
                z = maps[f, 0, c] * xy[i, 0] + maps[f, 1, c] * xy[i, 1] + maps[f, 2, c]
                if z > best:
                    best, arg = z, c
            if first < 0:
                first = arg
            elif arg != first:
                pure = False
        if pure:
            out_xy = _grow2(out_xy, n_xy + k)
            out_xy[n_xy:n_xy + k] = xy[s:e]
            n_xy += k
            out_cls = _grow1(out_cls, n_pieces + 1)
            out_region = _grow1(out_region, n_pieces + 1)
            out_off = _grow1(out_off, n_pieces + 2)
            out_cls[n_pieces], out_region[n_pieces] = first, f
            n_pieces += 1
            out_off[n_pieces] = n_xy
            continue
        diam = 0.0
        for i in range(s, e):
            for i2 in range(i + 1, e):
                diam = max(diam, np.hypot(xy[i, 0] - xy[i2, 0], xy[i, 1] - xy[i2, 1]))
        for i in range(k):
            bxy[i, 0], bxy[i, 1] = xy[s + i, 0], xy[s + i, 1]
        whole = _area(bxy, k)
        for c in range(K):
            n = k
            for i in range(k):
                bxy[i, 0], bxy[i, 1], bl[i] = xy[s + i, 0], xy[s + i, 1], -1
            for j in range(K):
                if j == c or n < 3:
                    continue
                A = maps[f, 0, c] - maps[f, 0, j]
                B = maps[f, 1, c] - maps[f, 1, j]
                C = maps[f, 2, c] - maps[f, 2, j]
                # the kernels' one clipper, as argmax_segments calls it (the same cells as the boundary)
                n = _clip_piece(bxy, bl, 0, n, A, B, C, tol_rel * diam * np.hypot(A, B), j, cxy, cl, 0, zbuf, True)
                bxy, cxy = cxy, bxy
                bl, cl = cl, bl
            if n < 3 or _area(bxy, n) <= min_area * whole:
                continue
            out_xy = _grow2(out_xy, n_xy + n)
            for i in range(n):
                out_xy[n_xy + i, 0], out_xy[n_xy + i, 1] = bxy[i, 0], bxy[i, 1]
            n_xy += n
            out_cls = _grow1(out_cls, n_pieces + 1)
            out_region = _grow1(out_region, n_pieces + 1)
            out_off = _grow1(out_off, n_pieces + 2)
            out_cls[n_pieces], out_region[n_pieces] = c, f
            n_pieces += 1
            out_off[n_pieces] = n_xy
    return out_xy[:n_xy].copy(), out_off[:n_pieces + 1].copy(), out_cls[:n_pieces].copy(), \
        out_region[:n_pieces].copy()
