"""Per-face maps through an affine segment of a graph by sparse updates (the graph path's fast step).

Between two nonlinear nodes of a graph there is often a chain of affine ops (a conv after a max
pool, a linear layer after a flatten): the maps of its last node are ``A g + b``, g the maps of the
nonlinear node on the face. Consecutive faces of a depth-first batch are mostly siblings, whose g
differ in a few entries (the units that flipped, the windows whose arg-max changed), so

    A g[c] + b = (A g[c - 1] + b) + sum_{j: g[c, :, j] != g[c - 1, :, j]} A[:, j] (g[c, :, j] - g[c - 1, :, j])

costs a few kernel-sized columns of A (a conv unit feeds a patch of the next layer) instead of the
whole product. Faces that differ from the previous one in many entries, the first of a batch and
every ``REFRESH``-th one are computed directly, which also bounds the round-off the updates add up;
faces where a unit may vanish (NOTE [vanishing units] in ``_roundoff``) are recomputed directly
before the snapping rule looks at them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from netatlas.regions._affine import affine_matrix, carried_nodes, csr_rows, is_affine

__all__ = ["Segment", "gather_chosen", "gather_picked", "plan_updates", "restricted", "segment", "update_from_previous",
           "update_rows_from_previous"]

#: A face is computed directly at least every this many faces (bounds the updates' round-off).
REFRESH = 64
#: Largest matrix (entries) a segment is unrolled to.
SEGMENT_MAX_ENTRIES = 2 * 10**7


@dataclass(frozen=True)
class Segment:
    """The affine chain from nonlinear node ``source`` to node ``target`` (the next nonlinear
    node's input): A's columns as CSR (``ptr`` (n_in + 1,), ``idx``, ``val``), the largest number
    of changed entries worth updating, and the nodes up to ``source`` that later nodes read (a residual
    block's input), passed on unchanged."""

    source: int
    target: int
    ptr: np.ndarray
    idx: np.ndarray
    val: np.ndarray
    n_out: int
    max_changes: int
    extra: tuple


def segment(net, k: int) -> Segment | None:
    """The segment before the k-th nonlinear node (k >= 1), or None when the nodes between the
    previous nonlinear node and its input are not a chain of affine ops."""
    if k < 1:
        return None
    source, node_index = net.nonlinear[k - 1], net.nonlinear[k]
    target = net.nodes[node_index].inputs[0]
    if target <= source:
        return None
    ops = []
    for i in range(source + 1, target + 1):
        node = net.nodes[i]
        if node.inputs != (i - 1,) or not is_affine(node.op):
            return None
        ops.append(node.op)
    extra = tuple(j for j in carried_nodes(net, node_index) if j != target)
    if any(j > source for j in extra):  # a value from inside the segment is read later on
        return None
    unrolled = affine_matrix(ops, net.nodes[source].size, SEGMENT_MAX_ENTRIES)
    if unrolled is None:
        return None
    ptr, idx, val = csr_rows(unrolled[0].T)  # row j: A's column j
    # an update per changed entry costs its column; a direct product about a quarter of A's entries
    # per entry (torch's conv/GEMM against this loop of scattered adds)
    n_in, nnz = len(ptr) - 1, len(idx)
    max_changes = int(nnz / (4 * max(nnz / max(n_in, 1), 1.0)))
    return Segment(source, target, ptr, idx, val, unrolled[0].shape[0], max_changes, extra)


@njit(cache=True)
def plan_updates(g, max_changes, refresh):
    """(C,) bool: the faces whose maps are computed directly: the first, every ``refresh``-th, and
    those whose g (C, 3, n) differs from the previous face's in more than ``max_changes`` entries."""
    C, _, n = g.shape
    full = np.zeros(C, np.bool_)
    since = 0
    for c in range(C):
        if c == 0 or since >= refresh:
            full[c] = True
            since = 0
            continue
        changed = 0
        for j in range(n):
            if g[c, 0, j] != g[c - 1, 0, j] or g[c, 1, j] != g[c - 1, 1, j] or g[c, 2, j] != g[c - 1, 2, j]:
                changed += 1
                if changed > max_changes:
                    break
        if changed > max_changes:
            full[c] = True
            since = 0
        else:
            since += 1
    return full


@njit(cache=True)
def _add_changes(g, c, ptr, idx, val, out):
    """``out[c] += A (g[c] - g[c - 1])`` by the columns j of A (``ptr, idx, val``) whose entry of g changed,
    in column order: the one sum both updates below share, so they add the same terms in the same order."""
    for j in range(g.shape[2]):
        d0 = g[c, 0, j] - g[c - 1, 0, j]
        d1 = g[c, 1, j] - g[c - 1, 1, j]
        d2 = g[c, 2, j] - g[c - 1, 2, j]
        if d0 == 0.0 and d1 == 0.0 and d2 == 0.0:
            continue
        for e in range(ptr[j], ptr[j + 1]):
            i = idx[e]
            w = val[e]
            out[c, 0, i] += w * d0
            out[c, 1, i] += w * d1
            out[c, 2, i] += w * d2


@njit(cache=True)
def update_from_previous(g, full, ptr, idx, val, out):
    """Fill ``out[c]`` (C, 3, n_out) for every face not ``full`` (whose rows are already filled)
    from the previous face's by the columns of the entries of g that changed."""
    C = g.shape[0]
    n_out = out.shape[2]
    for c in range(C):
        if full[c]:
            continue
        for r in range(3):
            for i in range(n_out):
                out[c, r, i] = out[c - 1, r, i]
        _add_changes(g, c, ptr, idx, val, out)


@njit(cache=True)
def gather_picked(values, rows, picked):
    """``out[f, r, o] = values[rows[f], r, picked[f, o]]``: a max pool's outputs (F, 3, n_out) on F faces
    from their parents' input maps ``values`` (P, 3, n_in), without a per-face copy of the input."""
    F, m = picked.shape
    out = np.empty((F, 3, m))
    for f in range(F):
        p = rows[f]
        for r in range(3):
            for o in range(m):
                out[f, r, o] = values[p, r, picked[f, o]]
    return out


def restricted(seg: Segment, rows: np.ndarray):
    """A's columns (``seg.ptr``, ``seg.idx``, ``seg.val``) with only the entries of output ``rows``, in
    the same order: updates by them add to those outputs the same terms in the same order."""
    keep = np.zeros(seg.n_out, bool)
    keep[rows] = True
    kept = keep[seg.idx]
    column = np.repeat(np.arange(len(seg.ptr) - 1), np.diff(seg.ptr))[kept]
    ptr = np.concatenate([[0], np.cumsum(np.bincount(column, minlength=len(seg.ptr) - 1))]).astype(np.int64)
    return ptr, np.ascontiguousarray(seg.idx[kept]), np.ascontiguousarray(seg.val[kept])


@njit(cache=True)
def update_rows_from_previous(g, full, ptr, idx, val, rows, out):
    """``update_from_previous`` for the outputs ``rows`` only (``ptr, idx, val`` from ``restricted``):
    ``out[c, :, rows]`` for every face not ``full``, bit for bit as the full update leaves them; the
    other outputs of those faces are left as they are."""
    C = g.shape[0]
    for c in range(C):
        if full[c]:
            continue
        for r in range(3):
            for i in rows:
                out[c, r, i] = out[c - 1, r, i]
        _add_changes(g, c, ptr, idx, val, out)


@njit(cache=True)
def gather_chosen(values, rows, index, choice):
    """``gather_picked`` with the picks as a ``Max`` state: ``out[f, r, o] = values[rows[f], r, index[o,
    choice[f, o]]]`` (``index`` (n_out, k) the windows, ``choice`` (F, n_out) positions in them), without
    the (F, n_out) array of input positions."""
    F, m = choice.shape
    out = np.empty((F, 3, m))
    for f in range(F):
        p = rows[f]
        for r in range(3):
            for o in range(m):
                out[f, r, o] = values[p, r, index[o, choice[f, o]]]
    return out
