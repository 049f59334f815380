"""The compiled cut of the 3-D edge subdivision (NOTE [edge subdivision in 3-D] in ``_subdivide``) on a
complex held in growable buffers, so that a cut costs one read-only pass over the faces' vertices plus
work on the faces and cells it splits, instead of rebuilding every array; and the distinct edges of
the finished complex.

# NOTE [growable complex]
Faces are slices ``pool[face_start[f]:face_start[f] + face_length[f]]`` of one vertex pool. A face a cut
changes is written again at the pool's end (its old slice becomes a hole), so its index, and the order
of all faces, cells and vertices, are exactly those of the flat (CSR) layout that ``compact`` returns:
the + part of a split face or cell keeps its index, its - part is numbered after all faces (cells) in
the order of the split ones, each split cell's section face after those, new vertices by their edge
(lower, higher vertex). Buffers grow by half; ``compact`` drops the holes.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["chain_cycles", "compact", "cut_faces", "unique_edges"]


@njit(cache=True)
def _grown(array, need):
    """``array`` with room for at least ``need`` rows (growing by half), its rows kept."""
    if need <= len(array):
        return array
    shape = (max(need, len(array) * 3 // 2),) + array.shape[1:]
    out = np.empty(shape, array.dtype)
    out[:len(array)] = array
    return out


@njit(cache=True)
def cut_faces(points, n_points, pool, n_pool, face_start, face_length, face_cells, face_labels, n_faces, n_cells,
              z, limit, label):
    """Cut the complex (buffers as in NOTE [growable complex]) by the zero set of ``z`` (n_points,)
    (0 where ``|z| <= limit``); new faces get ``label``. The buffers are changed in place or grown.

    Returns the buffers and counts (points, n_points, pool, n_pool, face_start, face_length, face_cells,
    face_labels, n_faces, n_cells), then ``side`` (n_cells',) int8 the sign on each cell (0: zero on
    the whole cell), ``split`` (S,) the split cells (each keeps its + part; its - part is cell
    ``n_cells + i``), the vertex signs (n_points',) int8 (new vertices 0), the new vertices' edges ``lo``,
    ``hi`` and positions ``t`` along them, and a face whose signs change more than twice round it and a
    split cell whose section is not one cycle (-1 if none)."""
    n_vertices = n_points
    signs = np.zeros(n_vertices, np.int8)
    zs = np.empty(n_vertices)
    for v in range(n_vertices):
        value = 0.0 if abs(z[v]) <= limit[v] else z[v]
        zs[v] = value
        signs[v] = 1 if value > 0 else (-1 if value < 0 else 0)
    # one pass over every face: its sign, or mixed (+ and -); faces with two zero vertices in a row (an
    # edge on the plane: a candidate edge of a section); the crossed edges, counted
    face_sign = np.empty(n_faces, np.int8)
    mixed = np.empty(n_faces, np.int64)
    on_plane = np.empty(n_faces, np.int64)
    n_mixed = n_on_plane = n_crossed = 0
    longest = 0
    for f in range(n_faces):
        o, n = face_start[f], face_length[f]
        has_positive = has_negative = has_zero_edge = False
        crossed = 0
        previous = signs[pool[o + n - 1]]
        for i in range(n):
            sign = signs[pool[o + i]]
            has_positive |= sign > 0
            has_negative |= sign < 0
            has_zero_edge |= sign == 0 and previous == 0
            crossed += sign * previous < 0
            previous = sign
        if has_positive and has_negative:
            mixed[n_mixed] = f
            n_mixed += 1
            n_crossed += crossed
            longest = max(longest, n)
            face_sign[f] = 1
        else:
            face_sign[f] = 1 if has_positive else (-1 if has_negative else 0)
            if has_zero_edge:
                on_plane[n_on_plane] = f
                n_on_plane += 1
    # a vertex per crossed edge, numbered by (lo, hi); z is affine along the edge, so it vanishes at
    # t = z_lo / (z_lo - z_hi)
    entry_keys = np.empty(n_crossed, np.int64)
    k = 0
    for m in range(n_mixed):
        o, n = face_start[mixed[m]], face_length[mixed[m]]
        for i in range(n):
            a, b = pool[o + i], pool[o + (i + 1) % n]
            if signs[a] * signs[b] < 0:
                entry_keys[k] = min(a, b) * n_vertices + max(a, b)
                k += 1
    keys = np.unique(entry_keys)
    lo, hi = keys // n_vertices, keys % n_vertices
    t = np.empty(len(keys))
    points = _grown(points, n_vertices + len(keys))
    for i in range(len(keys)):
        t[i] = zs[lo[i]] / (zs[lo[i]] - zs[hi[i]])
        for d in range(3):
            points[n_vertices + i, d] = points[lo[i], d] + t[i] * (points[hi[i], d] - points[lo[i], d])
    n_points = n_vertices + len(keys)
    all_signs = np.zeros(n_points, np.int8)
    all_signs[:n_vertices] = signs
    # every mixed face split along its chord: its + part rewritten at the pool's end, its - part a new face
    total = n_faces + n_mixed
    face_start, face_length = _grown(face_start, total), _grown(face_length, total)
    face_cells, face_labels = _grown(face_cells, total), _grown(face_labels, total)
    face_sign = _grown(face_sign, total)
    pool_need = n_pool + n_crossed + 2 * n_mixed
    for m in range(n_mixed):
        pool_need += face_length[mixed[m]]
    pool = _grown(pool, pool_need)
    cycle = np.empty(2 * longest + 2, np.int64)
    for m in range(n_mixed):
        f = mixed[m]
        o, n = face_start[f], face_length[f]
        length = 0
        for i in range(n):
            a, b = pool[o + i], pool[o + (i + 1) % n]
            cycle[length] = a
            length += 1
            if signs[a] * signs[b] < 0:
                cycle[length] = n_vertices + np.searchsorted(keys, min(a, b) * n_vertices + max(a, b))
                length += 1
        p, q, changes = _sign_changes(cycle, length, all_signs)
        if changes != 2:
            return (points, n_points, pool, n_pool, face_start, face_length, face_cells, face_labels, n_faces,
                    n_cells, face_sign[:0], mixed[:0], all_signs, lo, hi, t, f, -1)
        # the + part runs from q to p, the - part from p to q (the zero runs in both)
        n_plus = (p - q) % length + 1
        for i in range(n_plus):
            pool[n_pool + i] = cycle[(q + i) % length]
        face_start[f], face_length[f] = n_pool, n_plus
        n_pool += n_plus
        g = n_faces + m
        n_minus = (q - p) % length + 1
        for i in range(n_minus):
            pool[n_pool + i] = cycle[(p + i) % length]
        face_start[g], face_length[g] = n_pool, n_minus
        n_pool += n_minus
        face_cells[g] = face_cells[f]
        face_labels[g] = face_labels[f]
        face_sign[g] = -1
    n_faces = total
    # a cell has a + (-) vertex exactly when one of its faces has one
    positive = np.zeros(n_cells, np.bool_)
    negative = np.zeros(n_cells, np.bool_)
    for f in range(n_faces):
        for j in range(2):
            c = face_cells[f, j]
            if c >= 0:
                positive[c] |= face_sign[f] > 0
                negative[c] |= face_sign[f] < 0
    n_split = 0
    for c in range(n_cells):
        n_split += positive[c] and negative[c]
    split = np.empty(n_split, np.int64)
    side = np.empty(n_cells + n_split, np.int8)
    rank = np.full(n_cells, -1, np.int64)  # a split cell's place in ``split``
    s = 0
    for c in range(n_cells):
        side[c] = 1 if positive[c] else (-1 if negative[c] else 0)
        if positive[c] and negative[c]:
            split[s] = c
            rank[c] = s
            s += 1
    side[n_cells:] = -1
    if n_split == 0:
        return (points, n_points, pool, n_pool, face_start, face_length, face_cells, face_labels, n_faces, n_cells,
                side, split, all_signs, lo, hi, t, -1, -1)
    # the section of each split cell: its edges on the plane, from the faces that have such edges
    candidates = np.empty(n_on_plane + 2 * n_mixed, np.int64)
    candidates[:n_on_plane] = on_plane[:n_on_plane]
    for m in range(n_mixed):
        candidates[n_on_plane + 2 * m] = mixed[m]
        candidates[n_on_plane + 2 * m + 1] = n_faces - n_mixed + m
    cycles, section_lengths, bad = _sections(pool, face_start, face_length, face_cells, candidates, all_signs, rank,
                                             n_split, n_points)
    if bad >= 0:
        return (points, n_points, pool, n_pool, face_start, face_length, face_cells, face_labels, n_faces, n_cells,
                side, split, all_signs, lo, hi, t, -1, split[bad])
    # faces of a split cell go to its part on their side (a face of a split cell has a nonzero sign)
    for f in range(n_faces):
        if face_sign[f] < 0:
            for j in range(2):
                c = face_cells[f, j]
                if c >= 0 and rank[c] >= 0:
                    face_cells[f, j] = n_cells + rank[c]
    total = n_faces + n_split
    face_start, face_length = _grown(face_start, total), _grown(face_length, total)
    face_cells, face_labels = _grown(face_cells, total), _grown(face_labels, total)
    pool = _grown(pool, n_pool + len(cycles))
    pool[n_pool:n_pool + len(cycles)] = cycles
    for i in range(n_split):
        g = n_faces + i
        face_start[g], face_length[g] = n_pool, section_lengths[i]
        n_pool += section_lengths[i]
        face_cells[g, 0], face_cells[g, 1] = split[i], n_cells + i
        face_labels[g] = label
    return (points, n_points, pool, n_pool, face_start, face_length, face_cells, face_labels, total,
            n_cells + n_split, side, split, all_signs, lo, hi, t, -1, -1)


@njit(cache=True)
def _sign_changes(cycle, k, signs):
    """Going round ``cycle[:k]`` (zeros skipped): the first zero after the + -> - change (p), the last
    zero before the - -> + change (q), and the number of changes. The chord joins p and q; both parts
    keep the zero runs whole (one vertex each, unless round-off put a short edge on the plane)."""
    p = q = -1
    changes = 0
    last_sign, last_at = 0, -1
    for i in range(k - 1, -1, -1):
        if signs[cycle[i]] != 0:
            last_sign, last_at = signs[cycle[i]], i - k
            break
    for i in range(k):
        sg = signs[cycle[i]]
        if sg == 0:
            continue
        if sg != last_sign:
            changes += 1
            if sg < 0:
                p = (last_at + 1) % k
            else:
                q = (i - 1) % k
        last_sign, last_at = sg, i
    return p, q, changes


@njit(cache=True)
def sort_run(values, a, b):
    """Sort ``values[a:b]`` in place by insertion: the runs sorted here (a cell's edges or vertices, a vertex's
    edge ends) hold a few dozen entries at most, where this beats a sort call and its copy."""
    for i in range(a + 1, b):
        value = values[i]
        h = i - 1
        while h >= a and values[h] > value:
            values[h + 1] = values[h]
            h -= 1
        values[h + 1] = value


@njit(cache=True)
def _sections(pool, face_start, face_length, face_cells, candidates, signs, rank, n_split, n_vertices):
    """The new face of each split cell (``rank`` its place): its edges with both ends on the plane (from
    the ``candidates`` faces), sorted by (lower, higher vertex), each once, chained into a cycle from the
    first. Flat cycles, their lengths (n_split,), and the first split cell whose edges are not one
    cycle (-1 if none)."""
    counts = np.zeros(n_split + 1, np.int64)
    _section_keys(pool, face_start, face_length, face_cells, candidates, signs, rank, n_vertices, counts, counts[:0])
    starts = np.cumsum(counts)
    keys = np.empty(starts[-1], np.int64)
    _section_keys(pool, face_start, face_length, face_cells, candidates, signs, rank, n_vertices, starts[:-1].copy(),
                  keys)
    # each edge of a cell lies on two of its faces: keep one
    edges = np.empty((len(keys), 2), np.int64)
    group_starts = np.empty(n_split, np.int64)
    group_ends = np.empty(n_split, np.int64)
    k = 0
    for r in range(n_split):
        a, b = starts[r], starts[r + 1]
        sort_run(keys, a, b)  # a cell has a handful of edges, each listed twice
        group_starts[r] = k
        for i in range(a, b):
            if i == a or keys[i] != keys[i - 1]:
                edges[k, 0], edges[k, 1] = keys[i] // n_vertices, keys[i] % n_vertices
                k += 1
        group_ends[r] = k
    cycles, bad = chain_cycles(edges[:k], group_starts, group_ends)
    return cycles[:k], group_ends - group_starts, bad


@njit(cache=True)
def _section_keys(pool, face_start, face_length, face_cells, candidates, signs, rank, n_vertices, fill, keys):
    """Edges on the plane of the candidate faces, for each split cell of the face: counted into
    ``fill[rank + 1]`` when ``keys`` is empty, else written as ``lo * n_vertices + hi`` at ``fill[rank]``."""
    count_only = len(keys) == 0
    for f in candidates:
        o, n = face_start[f], face_length[f]
        for j in range(2):
            c = face_cells[f, j]
            if c < 0 or rank[c] < 0:
                continue
            for i in range(n):
                a, b = pool[o + i], pool[o + (i + 1) % n]
                if signs[a] == 0 and signs[b] == 0:
                    if count_only:
                        fill[rank[c] + 1] += 1
                    else:
                        keys[fill[rank[c]]] = min(a, b) * n_vertices + max(a, b)
                        fill[rank[c]] += 1


@njit(cache=True)
def chain_cycles(edges, starts, ends):
    """Undirected edges ``edges[starts[i]:ends[i]]`` forming one cycle each -> the cycles' vertices in
    order (flat, one per edge); and the first i whose edges are not one cycle (-1 if none)."""
    out = np.empty(len(edges), np.int64)
    longest = 0
    for i in range(len(starts)):
        longest = max(longest, ends[i] - starts[i])
    used = np.empty(longest, np.bool_)
    for i in range(len(starts)):
        e0, e1 = starts[i], ends[i]
        k = e1 - e0
        if k < 3:
            return out, i
        used[0] = True
        for e in range(1, k):
            used[e] = False
        start, current = edges[e0, 0], edges[e0, 1]
        out[e0] = start
        for t in range(1, k):
            out[e0 + t] = current
            found = False
            for e in range(1, k):
                if not used[e] and (edges[e0 + e, 0] == current or edges[e0 + e, 1] == current):
                    used[e] = True
                    current = edges[e0 + e, 1] if edges[e0 + e, 0] == current else edges[e0 + e, 0]
                    found = True
                    break
            if not found:
                return out, i
        if current != start:
            return out, i
    return out, -1


@njit(cache=True)
def compact(pool, face_start, face_length, n_faces):
    """The faces' cycles, flat in face order, and their offsets (n_faces + 1,): the CSR layout."""
    offsets = np.zeros(n_faces + 1, np.int64)
    for f in range(n_faces):
        offsets[f + 1] = offsets[f] + face_length[f]
    vertices = np.empty(offsets[n_faces], np.int64)
    for f in range(n_faces):
        vertices[offsets[f]:offsets[f + 1]] = pool[face_start[f]:face_start[f] + face_length[f]]
    return vertices, offsets


@njit(cache=True)
def unique_edges(vertices, offsets, n_vertices):
    """The distinct edges (E, 2) of the face cycles (CSR), lower vertex first, sorted by (lower,
    higher): a counting sort by the lower vertex, then each vertex's few higher ends sorted in place (about 3
    entries per cycle entry of scratch, where a lexsort of all entries needs about 10)."""
    counts = np.zeros(n_vertices + 1, np.int64)
    for f in range(len(offsets) - 1):
        o, e = offsets[f], offsets[f + 1]
        for t in range(o, e):
            u = t + 1 if t + 1 < e else o
            counts[min(vertices[t], vertices[u]) + 1] += 1
    starts = np.cumsum(counts)
    fill = starts[:-1].copy()
    higher = np.empty(starts[-1], np.int64)
    for f in range(len(offsets) - 1):
        o, e = offsets[f], offsets[f + 1]
        for t in range(o, e):
            u = t + 1 if t + 1 < e else o
            lo = min(vertices[t], vertices[u])
            higher[fill[lo]] = max(vertices[t], vertices[u])
            fill[lo] += 1
    lower = np.empty(len(higher), np.int64)
    k = 0
    for v in range(n_vertices):  # sort each bucket in place, keep its distinct ends at the front (k <= starts[v])
        a, b = starts[v], starts[v + 1]
        sort_run(higher, a, b)  # a vertex has a dozen entries
        for i in range(a, b):
            if i == a or higher[i] != higher[i - 1]:
                higher[k] = higher[i]
                lower[k] = v
                k += 1
    edges = np.empty((k, 2), np.int64)
    edges[:, 0] = lower[:k]
    edges[:, 1] = higher[:k]
    return edges


@njit(cache=True)
def cell_faces(face_cells, n_cells):
    """Each cell's faces (CSR): ``starts`` (n_cells + 1,) and ``faces``, cell c's at ``faces[starts[c]:starts[c +
    1]]`` in face order, from ``face_cells`` (F, 2) (-1 the outside)."""
    starts = np.zeros(n_cells + 1, np.int64)
    for f in range(len(face_cells)):
        for side in range(2):
            if face_cells[f, side] >= 0:
                starts[face_cells[f, side] + 1] += 1
    for c in range(n_cells):
        starts[c + 1] += starts[c]
    fill = starts[:-1].copy()
    faces = np.empty(starts[n_cells], np.int64)
    for f in range(len(face_cells)):
        for side in range(2):
            c = face_cells[f, side]
            if c >= 0:
                faces[fill[c]] = f
                fill[c] += 1
    return starts, faces


@njit(cache=True)
def cell_vertices(vertices, offsets, face_cells, n_cells):
    """The distinct (cell, vertex) pairs (P, 2) of the complex's faces (CSR cycles, ``face_cells`` (F, 2),
    -1 the outside), sorted by cell then vertex: each cell's entries gathered from its faces, sorted in
    place (a cell has a few dozen) and kept once."""
    face_starts, faces = cell_faces(face_cells, n_cells)
    starts = np.zeros(n_cells + 1, np.int64)  # each cell's face entries
    for c in range(n_cells):
        starts[c + 1] = starts[c]
        for f in faces[face_starts[c]:face_starts[c + 1]]:
            starts[c + 1] += offsets[f + 1] - offsets[f]
    entries = np.empty(starts[n_cells], np.int64)
    for c in range(n_cells):
        k = starts[c]
        for f in faces[face_starts[c]:face_starts[c + 1]]:
            for t in range(offsets[f], offsets[f + 1]):
                entries[k] = vertices[t]
                k += 1
    pairs = np.empty((len(entries), 2), np.int64)
    k = 0
    for c in range(n_cells):
        a, b = starts[c], starts[c + 1]
        sort_run(entries, a, b)
        for i in range(a, b):
            if i == a or entries[i] != entries[i - 1]:
                pairs[k, 0], pairs[k, 1] = c, entries[i]
                k += 1
    return pairs[:k].copy()


@njit(cache=True)
def cell_volumes(points, vertices, offsets, face_cells, centroids, n_cells):
    """Each cell's volume (C,): the cones from its centroid over its faces' fan triangles
    ``|p0 . (p1 x p2)| / 6`` (corners less the centroid), summed per cell in face order, first over the
    faces where the cell is ``face_cells[:, 0]``, then over those where it is ``face_cells[:, 1]``: the
    order of the NumPy sums this replaces (bincounts of ``np.einsum`` dot products), the same numbers
    where einsum sums three products as (first + third) + second."""
    sums = np.zeros((2, n_cells))
    for side in range(2):
        for f in range(len(offsets) - 1):
            c = face_cells[f, side]
            if c < 0:
                continue
            o = offsets[f]
            g0, g1, g2 = centroids[c, 0], centroids[c, 1], centroids[c, 2]
            v0 = vertices[o]
            a0, a1, a2 = points[v0, 0] - g0, points[v0, 1] - g1, points[v0, 2] - g2
            for k in range(1, offsets[f + 1] - o - 1):
                v1, v2 = vertices[o + k], vertices[o + k + 1]
                b0, b1, b2 = points[v1, 0] - g0, points[v1, 1] - g1, points[v1, 2] - g2
                d0, d1, d2 = points[v2, 0] - g0, points[v2, 1] - g1, points[v2, 2] - g2
                x0 = b1 * d2 - b2 * d1
                x1 = b2 * d0 - b0 * d2
                x2 = b0 * d1 - b1 * d0
                det = (a0 * x0 + a2 * x2) + a1 * x1  # NumPy's einsum order for three terms (x86-64)
                sums[side, c] += abs(det) / 6
    volumes = np.zeros(n_cells)
    volumes += sums[0]
    volumes += sums[1]
    return volumes
