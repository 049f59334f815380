"""The cut of a 3-D complex by all the units of a layer, in order, in one compiled call: the same complex,
bit for bit, as cutting by each unit in turn with ``_cutkernel.cut_faces``, with each unit's work on the
faces of the start cells it may cross (NOTE [layer cut]).

# NOTE [layer cut]
During a layer every cell keeps the maps of its cell at the layer's start (its *origin*), and each
unit's values at the vertices are those of the unit-by-unit cut (NOTE [edge subdivision in 3-D]): at
the layer's start from the map of the vertex's home cell, at a vertex made by the layer's cuts
``z[lo] + t (z[hi] - z[lo])`` along its edge, with the larger of the two limits. A new vertex lies on
an edge of the closure of its cell's origin, so its value is a chain of such interpolations of the
origin's own vertices: with ``t`` in [0, 1] each step stays within the range of its two ends up to
``5 eps`` times their magnitude, and a chain is at most n steps long (n units). Hence when every
vertex of an origin has ``z > L_max + (8 n + 8) eps max|z|`` (``L_max`` its largest limit), every
vertex that any later cut of the layer makes in it is strictly positive for every unit it meets, and
likewise for negative: the unit splits none of the origin's descendants, makes no vertex, face or
section there, and each descendant's sign is the origin's. So unit j reads the vertices of only the
faces whose cells descend from origins it may cross (each face knows its cells' origins), computes
values there lazily (start values kept per unit when they fit), and numbers what it makes exactly as a
whole-complex cut does: split faces and cells in index order, new vertices by their edge (lower,
higher vertex). The levels' cuts are one-unit layers.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from netatlas._memory import memory_budget
from netatlas.regions._cutkernel import _sections, _sign_changes, cell_faces, compact

__all__ = ["LayerCut", "start_signs", "start_values"]

#: Bytes of start values (16 per vertex and unit) computed at once (at most a quarter of the memory budget,
#: NETATLAS_MEMORY_BUDGET); kept for the cuts when one block holds the whole layer, else each unit's start
#: values are computed when its cut meets them.
START_VALUE_BYTES = 1 << 30

#: A start vertex is beyond a unit's plane, for every chain of interpolations of the layer, by this many
#: eps (times the number of units, plus this) of the largest magnitude of the unit's values on its cell.
CHAIN_ROUNDINGS = 8


@njit(cache=True)
def _evaluate(points, home, M, v, j, tolerance, roundoff):
    """Unit j's value and limit at start vertex v from its home cell's map (the sums of ``_unit_values``)."""
    c = home[v]
    a0, a1, a2, a3 = M[c, 0, j], M[c, 1, j], M[c, 2, j], M[c, 3, j]
    x0, x1, x2 = points[v, 0], points[v, 1], points[v, 2]
    z = x0 * a0 + x1 * a1 + x2 * a2 + a3
    magnitude = abs(x0) * abs(a0) + abs(x1) * abs(a1) + abs(x2) * abs(a2) + abs(a3)
    return z, max(tolerance * np.sqrt(a0 * a0 + a1 * a1 + a2 * a2), roundoff * magnitude)


@njit(cache=True)
def start_values(points, home, M, j0, j1, tolerance, roundoff, zero_off, zero_vertex):
    """Values and limits (V, j1 - j0) of units j0..j1 at the start vertices (0 at a vertex of a cell where
    the unit vanishes: ``zero_vertex[zero_off[j]:zero_off[j + 1]]``)."""
    n_vertices = len(home)
    Z = np.empty((n_vertices, j1 - j0))
    L = np.empty((n_vertices, j1 - j0))
    for v in range(n_vertices):
        for j in range(j0, j1):
            Z[v, j - j0], L[v, j - j0] = _evaluate(points, home, M, v, j, tolerance, roundoff)
    for j in range(j0, j1):
        for i in range(zero_off[j], zero_off[j + 1]):
            Z[zero_vertex[i], j - j0] = 0.0
    return Z, L


#: Float scratch (bytes) above which start signs are taken cell by cell rather than face by face.
SIGNS_BY_FACE_BYTES = 1 << 25


def start_signs(Z, L, vertices, offsets, face_cells, n_cells, n_units):
    """Per cell and unit (C, n) int8: +1 (-1) where every vertex of the cell is beyond the unit's plane on
    the + (-) side for every chain of the layer's interpolations (NOTE [layer cut]), else 0. Face by face
    (faces read once) while its scratch, four floats per cell and unit, is small; else cell by cell (faces
    read twice, scratch of n): the same signs (extremes do not depend on the order they are met in)."""
    if 32 * n_cells * Z.shape[1] <= SIGNS_BY_FACE_BYTES:
        return _signs_by_face(Z, L, vertices, offsets, face_cells, n_cells, n_units)
    return _signs_by_cell(Z, L, vertices, offsets, face_cells, n_cells, n_units)


@njit(cache=True)
def _signs_by_face(Z, L, vertices, offsets, face_cells, n_cells, n_units):
    """``start_signs`` face by face (each face's extremes once, then into its two cells): (C, n) float
    scratch four times over."""
    n = Z.shape[1]
    low = np.full((n_cells, n), np.inf)
    high = np.full((n_cells, n), -np.inf)
    size = np.zeros((n_cells, n))
    limit = np.zeros((n_cells, n))
    face_low, face_high, face_size, face_limit = np.empty(n), np.empty(n), np.empty(n), np.empty(n)
    for f in range(len(offsets) - 1):  # each face's range once, then into its two cells
        for j in range(n):
            face_low[j], face_high[j], face_size[j], face_limit[j] = np.inf, -np.inf, 0.0, 0.0
        for t in range(offsets[f], offsets[f + 1]):
            v = vertices[t]
            for j in range(n):
                z = Z[v, j]
                face_low[j] = min(face_low[j], z)
                face_high[j] = max(face_high[j], z)
                face_size[j] = max(face_size[j], abs(z))
                face_limit[j] = max(face_limit[j], L[v, j])
        for side in range(2):
            c = face_cells[f, side]
            if c < 0:
                continue
            for j in range(n):
                low[c, j] = min(low[c, j], face_low[j])
                high[c, j] = max(high[c, j], face_high[j])
                size[c, j] = max(size[c, j], face_size[j])
                limit[c, j] = max(limit[c, j], face_limit[j])
    signs = np.zeros((n_cells, n), np.int8)
    for c in range(n_cells):
        for j in range(n):
            signs[c, j] = _start_sign(low[c, j], high[c, j], size[c, j], limit[c, j], n_units)
    return signs


@njit(cache=True)
def _signs_by_cell(Z, L, vertices, offsets, face_cells, n_cells, n_units):
    """``start_signs`` cell by cell over its faces' vertices (each face read twice), with scratch of n
    entries; the largest magnitude is that of the lowest or highest value."""
    n = Z.shape[1]
    starts, faces = cell_faces(face_cells, n_cells)
    low, high, limit = np.empty(n), np.empty(n), np.empty(n)
    signs = np.zeros((n_cells, n), np.int8)
    for c in range(n_cells):
        for j in range(n):
            low[j], high[j], limit[j] = np.inf, -np.inf, 0.0
        for k in range(starts[c], starts[c + 1]):
            f = faces[k]
            for t in range(offsets[f], offsets[f + 1]):
                v = vertices[t]
                for j in range(n):
                    z = Z[v, j]
                    low[j] = min(low[j], z)
                    high[j] = max(high[j], z)
                    limit[j] = max(limit[j], L[v, j])
        for j in range(n):
            signs[c, j] = _start_sign(low[j], high[j], max(abs(low[j]), abs(high[j])), limit[j], n_units)
    return signs


@njit(cache=True)
def _start_sign(low, high, size, limit, n_units):
    """A unit's sign on a whole cell from its lowest and highest value there, the largest magnitude and the
    vertices' limits: 1 or -1 when clear of zero by the limit and the round-off of n_units' layer, else 0."""
    margin = limit + (CHAIN_ROUNDINGS * n_units + CHAIN_ROUNDINGS) * np.finfo(np.float64).eps * size
    if low > margin:
        return 1
    if high < -margin:
        return -1
    return 0


@njit(cache=True)
def _numbered(keys, n_vertices):
    """``np.unique(keys)`` (keys ``lo * n_vertices + hi``) and, for each entry, the index of its key there:
    the entries bucketed by ``lo`` (a counting sort), each bucket's few entries sorted in place."""
    starts = np.zeros(n_vertices + 1, np.int64)
    for key in keys:
        starts[key // n_vertices + 1] += 1
    for v in range(n_vertices):
        starts[v + 1] += starts[v]
    fill = starts[:-1].copy()
    order = np.empty(len(keys), np.int64)
    for i in range(len(keys)):
        lo = keys[i] // n_vertices
        order[fill[lo]] = i
        fill[lo] += 1
    distinct = np.empty(len(keys), np.int64)
    index = np.empty(len(keys), np.int64)
    n = 0
    for lo in range(n_vertices):
        a, b = starts[lo], starts[lo + 1]
        for i in range(a + 1, b):  # insertion sort by key
            entry = order[i]
            h = i - 1
            while h >= a and keys[order[h]] > keys[entry]:
                order[h + 1] = order[h]
                h -= 1
            order[h + 1] = entry
        for i in range(a, b):
            key = keys[order[i]]
            if i == a or key != distinct[n - 1]:
                distinct[n] = key
                n += 1
            index[order[i]] = n - 1
    return distinct[:n], index


@njit(cache=True)
def _grown(array, need, fill):
    """``array`` with room for at least ``need`` rows (growing by half), new rows set to ``fill``."""
    if need <= len(array):
        return array
    shape = (max(need, len(array) * 3 // 2),) + array.shape[1:]
    out = np.empty(shape, array.dtype)
    out[:len(array)] = array
    out[len(array):] = fill
    return out


@njit(cache=True)
def _value(v, j, points, home, M, pre_z, pre_l, tolerance, roundoff, n_start, lo, hi, t, val, lim, sign, stamp,
           stack):
    """Make ``val[v]``, ``lim[v]``, ``sign[v]`` unit j's value, limit and sign (0 within the limit) at vertex
    v (``stamp[v] == j``): a start vertex's from its home map (or ``pre_z[v, j]``, ``pre_l[v, j]`` when given:
    (V, n), else (0, 0)), a new
    vertex's by interpolation along its edge, its ends first (a chain at most as long as the layer's cuts
    so far)."""
    if stamp[v] == j:
        return
    depth = 0
    stack[0] = v
    while depth >= 0:
        u = stack[depth]
        if stamp[u] == j:
            depth -= 1
            continue
        if u < n_start:
            if pre_z.shape[0]:
                val[u], lim[u] = pre_z[u, j], pre_l[u, j]
            else:
                val[u], lim[u] = _evaluate(points, home, M, u, j, tolerance, roundoff)
            sign[u] = 0 if abs(val[u]) <= lim[u] else (1 if val[u] > 0 else -1)
            stamp[u] = j
            depth -= 1
            continue
        a, b = lo[u - n_start], hi[u - n_start]
        if stamp[a] != j:
            depth += 1
            stack[depth] = a
        elif stamp[b] != j:
            depth += 1
            stack[depth] = b
        else:
            val[u] = val[a] + t[u - n_start] * (val[b] - val[a])
            lim[u] = max(lim[a], lim[b])
            sign[u] = 0 if abs(val[u]) <= lim[u] else (1 if val[u] > 0 else -1)
            stamp[u] = j
            depth -= 1


@njit(cache=True)
def _all_signs(j, n_points, points, home, M, pre_z, pre_l, tolerance, roundoff, lo, hi, t, val, lim, sign, stamp):
    """Unit j's sign (0 within its limit) at every vertex after its cut (its new vertices 0)."""
    stack = np.empty(j + 3, np.int64)
    out = np.empty(n_points, np.int8)
    for v in range(n_points):
        if stamp[v] != j:
            _value(v, j, points, home, M, pre_z, pre_l, tolerance, roundoff, len(home), lo, hi, t, val, lim,
                   sign, stamp, stack)
        out[v] = sign[v]
    return out


@njit(cache=True)
def _cut_units(j0, j1, column, cap, counts, points, pool, face_start, face_length, face_cells, face_labels,
               origin, sides, face_origin, crossing, home, M, pre_z, pre_l, tolerance, roundoff,
               zero_off, zero_vertex, lo_rec, hi_rec, t_rec, val, lim, vstamp, vsign, fsign, cstamp, cpos,
               cneg, rank):
    """Cut by units j0..j1 of the layer (NOTE [layer cut]); ``counts`` = [n_points, n_pool, live pool
    entries, n_faces, n_cells, n_new, status, what] is updated in place (status -1: done; 0: face
    ``what``'s signs change more than twice; 1: the section of cell ``what`` is not one cycle; 2: the
    cells passed ``cap``). Returns the grown buffers."""
    n_points, n_pool, live, n_faces, n_cells, n_new = counts[0], counts[1], counts[2], counts[3], counts[4], counts[5]
    n_start = len(home)
    n_start_cells = crossing.shape[1] - 1
    stack = np.empty(j1 + 2, np.int64)
    scanned = np.empty(64, np.int64)
    mixed = np.empty(64, np.int64)
    on_plane = np.empty(64, np.int64)
    touched = np.empty(64, np.int64)
    counts[6] = -1
    for j in range(j0, j1):
        for i in range(zero_off[j], zero_off[j + 1]):  # a unit vanishing on a cell is zero at its vertices
            v = zero_vertex[i]
            _value(v, j, points, home, M, pre_z, pre_l, tolerance, roundoff, n_start, lo_rec, hi_rec, t_rec, val, lim,
                   vsign, vstamp, stack)
            val[v], vsign[v] = 0.0, 0
        # the faces of the descendants of the origins j may cross: signs, mixed faces, faces with an edge on
        # the plane, each cell's + and - vertices
        if len(scanned) < n_faces:  # a face is scanned at most once per unit
            scanned = np.empty(n_faces * 3 // 2, np.int64)
            mixed = np.empty(n_faces * 3 // 2, np.int64)
            on_plane = np.empty(n_faces * 3 // 2, np.int64)
        if len(touched) < n_cells:
            touched = np.empty(n_cells * 3 // 2, np.int64)
        n_scanned = n_mixed = n_on_plane = n_touched = n_crossed = 0
        longest = 0
        crossing_j = crossing[j]  # (C_start + 1,): the origins j may cross (the last: the outside, never)
        for f in range(n_faces):
            if not (crossing_j[face_origin[f, 0]] or crossing_j[face_origin[f, 1]]):
                continue
            o, n = face_start[f], face_length[f]
            has_positive = has_negative = has_zero_edge = False
            crossed = 0
            previous = 0
            for i in range(-1, n):
                v = pool[o + (i if i >= 0 else n - 1)]
                if vstamp[v] != j:
                    _value(v, j, points, home, M, pre_z, pre_l, tolerance, roundoff, n_start, lo_rec, hi_rec, t_rec,
                           val, lim, vsign, vstamp, stack)
                sign = vsign[v]
                if i >= 0:
                    has_positive |= sign > 0
                    has_negative |= sign < 0
                    has_zero_edge |= sign == 0 and previous == 0
                    crossed += sign * previous < 0
                previous = sign
            scanned[n_scanned] = f
            n_scanned += 1
            if has_positive and has_negative:
                mixed[n_mixed] = f
                n_mixed += 1
                n_crossed += crossed
                longest = max(longest, n)
                fsign[f] = 1
            else:
                fsign[f] = 1 if has_positive else (-1 if has_negative else 0)
                if has_zero_edge:
                    on_plane[n_on_plane] = f
                    n_on_plane += 1
            for side in range(2):
                c = face_cells[f, side]
                if c < 0 or not crossing_j[face_origin[f, side]]:
                    continue
                if cstamp[c] != j:
                    cstamp[c] = j
                    cpos[c] = cneg[c] = False
                    touched[n_touched] = c
                    n_touched += 1
                cpos[c] |= has_positive
                cneg[c] |= has_negative
        mixed_sorted = mixed[:n_mixed]  # in index order
        # a vertex per crossed edge, numbered by (lo, hi); z vanishes at t = z_lo / (z_lo - z_hi)
        entry_keys = np.empty(n_crossed, np.int64)
        k = 0
        for m in range(n_mixed):
            o, n = face_start[mixed_sorted[m]], face_length[mixed_sorted[m]]
            for i in range(n):
                a, b = pool[o + i], pool[o + i + 1 if i + 1 < n else o]
                if vsign[a] * vsign[b] < 0:
                    entry_keys[k] = min(a, b) * n_points + max(a, b)
                    k += 1
        # the distinct keys, sorted (np.unique's), and each crossed entry's new vertex, in the order met
        keys, entry_new = _numbered(entry_keys, n_points)
        n_vertices = n_points
        n_points = n_vertices + len(keys)
        points = _grown(points, n_points, 0.0)
        val, lim = _grown(val, n_points, 0.0), _grown(lim, n_points, 0.0)
        vstamp, vsign = _grown(vstamp, n_points, -1), _grown(vsign, n_points, 0)
        lo_rec, hi_rec = _grown(lo_rec, n_new + len(keys), 0), _grown(hi_rec, n_new + len(keys), 0)
        t_rec = _grown(t_rec, n_new + len(keys), 0.0)
        for i in range(len(keys)):
            a, b = keys[i] // n_vertices, keys[i] % n_vertices
            za = 0.0 if abs(val[a]) <= lim[a] else val[a]
            zb = 0.0 if abs(val[b]) <= lim[b] else val[b]
            ti = za / (za - zb)
            for d in range(3):
                points[n_vertices + i, d] = points[a, d] + ti * (points[b, d] - points[a, d])
            lo_rec[n_new + i], hi_rec[n_new + i], t_rec[n_new + i] = a, b, ti
            vstamp[n_vertices + i], vsign[n_vertices + i] = j, 0
        n_new += len(keys)
        # every mixed face split along its chord: its + part rewritten at the pool's end, its - part a new face
        total = n_faces + n_mixed
        face_start, face_length = _grown(face_start, total, 0), _grown(face_length, total, 0)
        face_cells, face_labels = _grown(face_cells, total, -1), _grown(face_labels, total, 0)
        fsign = _grown(fsign, total, 0)
        face_origin = _grown(face_origin, total, n_start_cells)
        pool_need = n_pool + n_crossed + 2 * n_mixed
        for m in range(n_mixed):
            pool_need += face_length[mixed_sorted[m]]
        pool = _grown(pool, pool_need, 0)
        cycle = np.empty(2 * longest + 2, np.int64)
        k = 0
        for m in range(n_mixed):
            f = mixed_sorted[m]
            o, n = face_start[f], face_length[f]
            length = 0
            for i in range(n):
                a, b = pool[o + i], pool[o + i + 1 if i + 1 < n else o]
                cycle[length] = a
                length += 1
                if vsign[a] * vsign[b] < 0:
                    cycle[length] = n_vertices + entry_new[k]
                    k += 1
                    length += 1
            p, q, changes = _sign_changes(cycle, length, vsign)
            if changes != 2:
                counts[6], counts[7] = 0, f
                return (points, pool, face_start, face_length, face_cells, face_labels, origin, sides, face_origin,
                        lo_rec, hi_rec, t_rec, val, lim, vstamp, vsign, fsign, cstamp, cpos, cneg, rank)
            n_plus = (p - q) % length + 1
            for i in range(n_plus):
                pool[n_pool + i] = cycle[q + i if q + i < length else q + i - length]
            live += n_plus - n
            face_start[f], face_length[f] = n_pool, n_plus
            n_pool += n_plus
            g = n_faces + m
            n_minus = (q - p) % length + 1
            for i in range(n_minus):
                pool[n_pool + i] = cycle[p + i if p + i < length else p + i - length]
            live += n_minus
            face_start[g], face_length[g] = n_pool, n_minus
            n_pool += n_minus
            face_cells[g, 0], face_cells[g, 1] = face_cells[f, 0], face_cells[f, 1]
            face_labels[g] = face_labels[f]
            fsign[g] = -1
            face_origin[g, 0], face_origin[g, 1] = face_origin[f, 0], face_origin[f, 1]
        n_faces = total
        # the split cells, in index order
        n_split = 0
        for i in range(n_touched):
            n_split += cpos[touched[i]] and cneg[touched[i]]
        split = np.empty(n_split, np.int64)
        s = 0
        for i in range(n_touched):
            if cpos[touched[i]] and cneg[touched[i]]:
                split[s] = touched[i]
                s += 1
        split.sort()
        for s in range(n_split):
            rank[split[s]] = s
        if n_split:
            candidates = np.empty(n_on_plane + 2 * n_mixed, np.int64)
            candidates[:n_on_plane] = on_plane[:n_on_plane]
            for m in range(n_mixed):
                candidates[n_on_plane + 2 * m] = mixed_sorted[m]
                candidates[n_on_plane + 2 * m + 1] = n_faces - n_mixed + m
            cycles, section_lengths, bad = _sections(pool, face_start, face_length, face_cells, candidates, vsign,
                                                     rank, n_split, n_points)
            if bad >= 0:
                counts[6], counts[7] = 1, split[bad]
                return (points, pool, face_start, face_length, face_cells, face_labels, origin, sides, face_origin,
                        lo_rec, hi_rec, t_rec, val, lim, vstamp, vsign, fsign, cstamp, cpos, cneg, rank)
            # faces of a split cell go to its part on their side (a face of a split cell has a nonzero sign)
            for i in range(n_scanned + n_mixed):
                f = scanned[i] if i < n_scanned else n_faces - n_mixed + i - n_scanned
                if fsign[f] < 0:
                    for side in range(2):
                        c = face_cells[f, side]
                        if c >= 0 and rank[c] >= 0:
                            face_cells[f, side] = n_cells + rank[c]
            total = n_faces + n_split
            face_start, face_length = _grown(face_start, total, 0), _grown(face_length, total, 0)
            face_cells, face_labels = _grown(face_cells, total, -1), _grown(face_labels, total, 0)
            fsign = _grown(fsign, total, 0)
            face_origin = _grown(face_origin, total, n_start_cells)
            pool = _grown(pool, n_pool + len(cycles), 0)
            pool[n_pool:n_pool + len(cycles)] = cycles
            live += len(cycles)
            n_cells_new = n_cells + n_split
            origin, sides = _grown(origin, n_cells_new, 0), _grown(sides, n_cells_new, 0)
            cstamp, rank = _grown(cstamp, n_cells_new, -1), _grown(rank, n_cells_new, -1)
            cpos, cneg = _grown(cpos, n_cells_new, False), _grown(cneg, n_cells_new, False)
            for i in range(n_split):
                g = n_faces + i
                face_start[g], face_length[g] = n_pool, section_lengths[i]
                n_pool += section_lengths[i]
                parent = split[i]
                face_cells[g, 0], face_cells[g, 1] = parent, n_cells + i
                face_labels[g] = column + j
                root = origin[parent]
                face_origin[g, 0], face_origin[g, 1] = root, root
                origin[n_cells + i] = root
                sides[n_cells + i] = sides[parent]
                sides[n_cells + i, j] = -1
                rank[parent] = -1
            n_faces = total
        for i in range(n_touched):
            c = touched[i]
            sides[c, j] = 1 if cpos[c] else (-1 if cneg[c] else 0)
        n_cells += n_split
        if n_pool > 2 * live:  # half holes: rewrite it flat
            pool, offsets = compact(pool, face_start, face_length, n_faces)
            face_start[:n_faces] = offsets[:-1]
            n_pool = len(pool)
        if cap >= 0 and n_cells > cap:
            counts[6] = 2
            break
    counts[0], counts[1], counts[2], counts[3], counts[4], counts[5] = n_points, n_pool, live, n_faces, n_cells, n_new
    return (points, pool, face_start, face_length, face_cells, face_labels, origin, sides, face_origin, lo_rec, hi_rec,
            t_rec, val, lim, vstamp, vsign, fsign, cstamp, cpos, cneg, rank)


class LayerCut:
    """One layer's cut of a :class:`~netatlas.regions._subdivide.ComplexState` by its units (NOTE [layer
    cut]): ``run(j0, j1)`` cuts by units j0..j1, ``store(state)`` writes the complex back and returns each
    cell's origin (C,) and the units' signs on the cells (C, n) int8 (0: zero on the whole cell)."""

    def __init__(self, state, M, tolerance: float, column: int, roundoff: float, home, zero_vertex, zero_unit,
                 pre=None, cap: int | None = None):
        """``M`` (C, 4, n) the units' maps on the start cells, ``home`` (V,) each start vertex's cell, the
        (vertex, unit) pairs zeroed by vanishing units, ``pre`` (values, limits) (V, n) given for n = 1."""
        n = M.shape[2]
        self.M, self.home, self.tolerance, self.roundoff, self.column = M, home, tolerance, roundoff, column
        self.cap = -1 if cap is None else int(cap)
        order = np.argsort(zero_unit, kind="stable")
        self.zero_vertex = np.ascontiguousarray(zero_vertex[order], dtype=np.int64)
        self.zero_off = np.concatenate([[0], np.cumsum(np.bincount(zero_unit, minlength=n))]).astype(np.int64)
        C, V, F = state.n_cells, len(state.points), len(state.face_cells)
        # each start cell's sign per unit, a block of units at a time (bounded scratch); the start values
        # kept (V, n) when one block holds them all
        block = max(1, int(min(START_VALUE_BYTES, memory_budget() // 4) // max(16 * V, 1)))
        self.signs = np.empty((C, n), np.int8)
        self.pre_z = self.pre_l = np.zeros((0, 0))  # (V, n) when kept
        for j0 in range(0, n, block):
            j1 = min(n, j0 + block)
            if pre is not None:
                Z, L = pre[0][:, j0:j1], pre[1][:, j0:j1]
            else:
                Z, L = start_values(state.points, home, M, j0, j1, tolerance, roundoff, self.zero_off, self.zero_vertex)
            Z, L = np.ascontiguousarray(Z), np.ascontiguousarray(L)
            self.signs[:, j0:j1] = start_signs(Z, L, state.face_vertices, state.face_offsets, state.face_cells, C, n)
            if j1 - j0 == n:
                self.pre_z, self.pre_l = Z, L
        # (n, C + 1): the start cells each unit may cross; the last column stands for the outside
        self.crossing = np.zeros((n, C + 1), np.bool_)
        self.crossing[:, :C] = self.signs.T == 0
        face_origin = np.where(state.face_cells >= 0, state.face_cells, C)
        total = int(state.face_offsets[-1])
        self.counts = np.array([V, total, total, F, C, 0, -1, -1], np.int64)
        # the kernel writes vertices and face cycles only past their ends (a grown copy), faces' cells in place
        self.buffers = (state.points, state.face_vertices, state.face_offsets[:-1].copy(),
                        np.diff(state.face_offsets), state.face_cells.copy(), state.face_labels.copy(),
                        np.arange(C, dtype=np.int64), self.signs.copy(), face_origin,
                        np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0), np.zeros(V), np.zeros(V),
                        np.full(V, -1, np.int32), np.zeros(V, np.int8), np.zeros(F, np.int8),
                        np.full(C, -1, np.int32), np.zeros(C, np.bool_), np.zeros(C, np.bool_),
                        np.full(C, -1, np.int64))

    @property
    def n_cells(self) -> int:
        return int(self.counts[4])

    def run(self, j0: int, j1: int) -> None:
        """Cut by units j0..j1 (in order)."""
        b = self.buffers
        self.buffers = _cut_units(j0, j1, self.column, self.cap, self.counts, b[0], b[1], b[2], b[3], b[4], b[5],
                                  b[6], b[7], b[8], self.crossing, self.home,
                                  self.M, self.pre_z, self.pre_l, self.tolerance, self.roundoff, self.zero_off,
                                  self.zero_vertex, *b[9:])
        status, what = int(self.counts[6]), int(self.counts[7])
        if status == 0:
            raise AssertionError(f"edge subdivision: the signs round face {what} change more than twice (a "
                                 "non-convex face)")
        if status == 1:
            raise AssertionError(f"edge subdivision: the section of cell {what} is not one cycle")

    @property
    def passed_cap(self) -> bool:
        """Whether the last run stopped because the cells passed ``cap``."""
        return int(self.counts[6]) == 2

    def signs_after(self, j: int, n_new_before: int):
        """After unit j's cut (the last run): its sign (V',) int8 at every vertex (0 at the vertices it
        made) and the vertices it made ``(lo, hi, t)``, as ``_subdivide.cut`` gives them."""
        b = self.buffers
        n_new = int(self.counts[5])
        signs = _all_signs(j, int(self.counts[0]), b[0], self.home, self.M, self.pre_z, self.pre_l, self.tolerance,
                           self.roundoff, b[9], b[10], b[11], b[12], b[13], b[15], b[14])
        return signs, (b[9][n_new_before:n_new].copy(), b[10][n_new_before:n_new].copy(),
                       b[11][n_new_before:n_new].copy())

    def nbytes(self) -> int:
        """Bytes held by the buffers."""
        return sum(a.nbytes for a in self.buffers) + self.crossing.nbytes + self.signs.nbytes + self.pre_z.nbytes * 2

    def complex_nbytes(self) -> int:
        """Bytes of the complex's own buffers (vertices, face cycles, faces' cells and labels): what a cut
        can at most about double."""
        return sum(a.nbytes for a in self.buffers[:6])

    def store(self, state):
        """Write the complex into ``state`` (flat layout); return the cells' origins (C,) and signs (C, n)."""
        points, pool, face_start, face_length, face_cells, face_labels, origin, sides = self.buffers[:8]
        n_points, _, _, n_faces, n_cells = (int(x) for x in self.counts[:5])
        state.face_vertices, state.face_offsets = compact(pool, face_start, face_length, n_faces)
        state.points = points[:n_points].copy()
        state.face_cells = face_cells[:n_faces].copy()
        state.face_labels = face_labels[:n_faces].copy()
        state.n_cells = n_cells
        return origin[:n_cells].copy(), sides[:n_cells].copy()


#: A layer is cut unit by unit (limits and progress seen after each) from this many cells times units.
STEPWISE_WORK = 1 << 20


def cut_layer(state, M, tolerance: float, column: int, cap: int | None = None, after=None, recorder=None):
    """Cut ``state`` in place by the zero sets of the units of a layer, in order (unit j's new faces get
    label ``column + j``), ``M`` (C, 4, n) their maps on its cells; return each new cell's origin (C',)
    and the units' signs on the new cells (C', n) int8 (0: zero on the whole cell; the pre-activation
    is > 0 where it is 1). ``after(layer_cut, n_done)`` is called after each
    step (the whole layer at once on small complexes, else unit by unit); cutting stops at the first
    step that passes ``cap`` cells (the caller raises). ``recorder(column + j, signs, new)``, when given,
    sees every unit's vertex signs after its cut and its new vertices (unit by unit)."""
    from netatlas.regions._roundoff import EPS
    from netatlas.regions._subdivide import EVAL_ROUNDINGS, _vanished_keys, home_cells, vertex_values

    n = M.shape[2]
    home = home_cells(state)
    pre = vertex_values(state, M, tolerance, home) if n == 1 else None  # NumPy's sums for one unit, as UnitValues
    vanished = (M == 0).all(axis=1)  # (C, n)
    keys = np.zeros(0, np.int64)
    if vanished.any() and pre is None:
        keys = np.unique(_vanished_keys(state.face_vertices, state.face_offsets, state.face_cells, vanished))
    layer = LayerCut(state, M, tolerance, column, EVAL_ROUNDINGS * EPS, home, keys // n, keys % n,
                     pre=pre, cap=cap)
    step = max(n, 1) if state.n_cells * n < STEPWISE_WORK and recorder is None else 1
    for j0 in range(0, n, step):
        n_new_before = int(layer.counts[5])
        layer.run(j0, min(n, j0 + step))
        if recorder is not None and not layer.passed_cap:
            recorder(column + j0, *layer.signs_after(j0, n_new_before))
        if after is not None:
            after(layer, min(n, j0 + step) - j0)
        if layer.passed_cap:
            break
    return layer.store(state)
