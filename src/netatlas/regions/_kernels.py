"""Compiled (numba) kernels of the exact partition: splitting convex faces by the zero lines of
affine functions, rank-few updates of per-face affine maps, and point location.

Conventions shared by every kernel
----------------------------------
- Faces are convex polygons stored face-locally: ``xy`` (T, 2) vertex coordinates, counter-clockwise,
  concatenated; face f owns ``xy[off[f]:off[f + 1]]``. ``lab`` (T,) labels the edge that *starts*
  at each vertex: a global unit index (the edge lies on that unit's zero line) or a negative number
  for a side of the slice (-1 bottom, -2 right, -3 top, -4 left).
- Per-face affine maps of n functions are stored as (F, 3, n): ``z_j(u, v) = M[f, 0, j] u +
  M[f, 1, j] v + M[f, 2, j]`` in the (centred) coordinates of ``xy``.
- A vertex is *on* the zero line of z_j when ``|z_j| <= tol * diam * |grad z_j|``, i.e. within
  ``tol * diam`` of the line (scale-invariant; a constant function never cuts anything).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from netatlas.regions._roundoff import vanishing_tolerance

__all__ = ["split_faces", "child_maps", "gated_product", "gated_csr_product", "csr_product", "gate_into",
           "gate_children", "gate_children_into", "polygon_areas", "polygon_origin_distance",
           "faces_with_small_units", "largest_entries", "build_locator", "locate_points", "clip_segments"]


@njit(cache=True)
def _grow2(a, need):
    if need <= a.shape[0]:
        return a
    out = np.empty((max(need, 2 * a.shape[0]), a.shape[1]), a.dtype)
    out[: a.shape[0]] = a
    return out


@njit(cache=True)
def _grow1(a, need):
    if need <= a.shape[0]:
        return a
    out = np.empty(max(need, 2 * a.shape[0]), a.dtype)
    out[: a.shape[0]] = a
    return out


@njit(cache=True, inline="always")
def bit(row, j):
    """Bit j of a row packed like ``np.packbits`` (big-endian within each byte)."""
    return (row[j >> 3] >> (7 - (j & 7))) & 1


@njit(cache=True, inline="always")
def _set_bit(row, j, value):
    mask = np.uint8(128 >> (j & 7))
    row[j >> 3] = (row[j >> 3] | mask) if value else (row[j >> 3] & ~mask)


@njit(cache=True)
def _slopes(row, slope_on, slope_off, out):
    """The slope of each of the ``out.shape[0]`` units from its packed bit in ``row``."""
    n = out.shape[0]
    for byte in range(row.shape[0]):
        x = row[byte]
        for t in range(min(8, n - 8 * byte)):
            out[8 * byte + t] = slope_on if (x >> (7 - t)) & 1 else slope_off


@njit(cache=True)
def _disc(pxy, s, n):
    cu = 0.0
    cv = 0.0
    for i in range(s, s + n):
        cu += pxy[i, 0]
        cv += pxy[i, 1]
    cu /= n
    cv /= n
    r2 = 0.0
    for i in range(s, s + n):
        du = pxy[i, 0] - cu
        dv = pxy[i, 1] - cv
        r2 = max(r2, du * du + dv * dv)
    return cu, cv, np.sqrt(r2) * (1.0 + 1e-12)


@njit(cache=True)
def _clip_piece(sxy, slab, s, n, ga, gb, gc, t, label, dxy, dlab, d0, zbuf, keep_flat=False):
    """The one half-plane clipper of the regions kernels: append to dxy/dlab at d0 the part of piece
    sxy[s:s+n] where ga u + gb v + gc >= 0, vertices with |z| <= t snapped onto the line; the new edge
    gets ``label``. Return its vertex count: 0 when no vertex is strictly inside, unless ``keep_flat``
    (``argmax_segments``), which keeps the piece's on-line vertices then. ``zbuf`` (>= n,): scratch."""
    inside = False
    for i in range(n):
        z = ga * sxy[s + i, 0] + gb * sxy[s + i, 1] + gc
        if z > t:
            inside = True
        elif z >= -t:
            z = 0.0
        zbuf[i] = z
    if not inside and not keep_flat:
        return 0
    m = d0
    for i in range(n):
        i2 = i + 1 if i + 1 < n else 0
        zi = zbuf[i]
        zn = zbuf[i2]
        li = slab[s + i]
        if zi > 0.0:
            dxy[m, 0] = sxy[s + i, 0]
            dxy[m, 1] = sxy[s + i, 1]
            dlab[m] = li
            m += 1
        elif zi == 0.0:
            dxy[m, 0] = sxy[s + i, 0]
            dxy[m, 1] = sxy[s + i, 1]
            dlab[m] = label if zn < 0.0 else li
            m += 1
        if (zi > 0.0 and zn < 0.0) or (zi < 0.0 and zn > 0.0):
            w = zi / (zi - zn)
            dxy[m, 0] = sxy[s + i, 0] + w * (sxy[s + i2, 0] - sxy[s + i, 0])
            dxy[m, 1] = sxy[s + i, 1] + w * (sxy[s + i2, 1] - sxy[s + i, 1])
            dlab[m] = label if zi > 0.0 else li
            m += 1
    return m - d0


@njit(cache=True, inline="always")  # called once per child: no call overhead in the hot loop
def _emit_child(sxy, slab, s, n, parent, cxy, clab, coff, cparent, cstate, n_vert, n_children):
    """Append the piece ``sxy[s:s + n]`` (edge labels ``slab``) as child ``n_children`` of face ``parent``:
    its vertices at ``n_vert`` of (cxy, clab), its end offset ``coff[n_children + 1]`` and its parent. The
    child arrays (and ``cstate``, one state row per child) double when full. Returns them (new arrays when
    grown) and the new vertex count; the caller writes the child's state row ``cstate[n_children]``."""
    if n_children + 2 > min(cparent.shape[0] + 1, coff.shape[0], cstate.shape[0] + 1):  # full: grow (doubling)
        cparent = _grow1(cparent, n_children + 1)
        coff = _grow1(coff, n_children + 2)
        cstate = _grow2(cstate, n_children + 1)
    if n_vert + n > min(cxy.shape[0], clab.shape[0]):
        cxy = _grow2(cxy, n_vert + n)
        clab = _grow1(clab, n_vert + n)
    for i in range(n):
        cxy[n_vert + i, 0] = sxy[s + i, 0]
        cxy[n_vert + i, 1] = sxy[s + i, 1]
        clab[n_vert + i] = slab[s + i]
    cparent[n_children] = parent
    coff[n_children + 1] = n_vert + n
    return cxy, clab, coff, cparent, cstate, n_vert + n


@njit(cache=True, inline="always")
def _gate_face(M, f, bits, slope_on, slope_off, slopes, out):
    """``out (3, n) = s * M[f]``, the slopes s from face f's packed ``bits`` (``slopes``: scratch)."""
    _slopes(bits[f], slope_on, slope_off, slopes)
    for r in range(3):
        for j in range(M.shape[2]):
            out[r, j] = M[f, r, j] * slopes[j]


#: Multiplied by eight 0/1 bytes (a little-endian uint64), its top byte is the eight bits packed like
#: ``np.packbits`` (first byte in the most significant bit): each byte's bit lands at its own place, no carries.
_PACK_MAGIC = np.uint64(0x8040201008040201)


@njit(cache=True)
def _scan_face(xy, s, e, a, b, c, scale, tols, on_flags, cut_flags, crow, cuts):
    """Which of the n functions cut the face (their indices in ``cuts``, increasing; returns how many), and
    the on/off bit of the others, packed into ``crow`` (0 for those that cut).

    A disc of radius r around the vertex mean contains the face; z_j cannot reach the tolerance band
    inside it when |z_j(centre)| > (r + scale) |grad z_j|, so only the few remaining candidates are
    evaluated at every vertex. The loop over all units is branch-free and vectorises; its 0/1 flags are
    packed eight at a time by one multiplication (``on_flags``, ``cut_flags``: scratch of 8 ceil(n / 8)
    bytes, the tail zero), and the candidates found a word at a time (they are rare)."""
    n = a.shape[0]
    cu, cv, r = _disc(xy, s, e - s)
    R = r + scale
    R2 = R * R
    for j in range(n):
        z = a[j] * cu + b[j] * cv + c[j]
        g2 = a[j] * a[j] + b[j] * b[j]
        on_flags[j] = z > 0.0
        cut_flags[j] = z * z <= R2 * g2
    on_words = on_flags.view(np.uint64)
    cut_words = cut_flags.view(np.uint64)
    n_cut = 0
    for w in range(on_words.shape[0]):
        crow[w] = np.uint8((on_words[w] * _PACK_MAGIC) >> np.uint64(56))
        if cut_words[w] == 0:
            continue
        for j in range(8 * w, min(8 * w + 8, n)):
            if not cut_flags[j]:
                continue
            t = scale * np.sqrt(a[j] * a[j] + b[j] * b[j])
            tols[j] = t
            hi = -np.inf
            lo = np.inf
            for i in range(s, e):
                z = a[j] * xy[i, 0] + b[j] * xy[i, 1] + c[j]
                hi = max(hi, z)
                lo = min(lo, z)
            cut = hi > t and lo < -t
            _set_bit(crow, j, hi > t and not cut)
            if cut:
                cuts[n_cut] = j
                n_cut += 1
    return n_cut


@njit(cache=True, nogil=True)
def split_faces(xy, off, lab, maps, unit_base, tol, diam):
    """Split every face f by the zero lines of the n affine functions ``maps[f]`` (in order).

    Returns (cxy, coff, clab, cparent, cbits, cut_off, cut_units): the children's polygons, the
    parent face of each child, the on/off bit of each function in each child (1 where z > 0 inside
    the child), packed like ``np.packbits(bits, axis=1)``: (C, ceil(n / 8)) uint8 (unpacked rows
    would cost n bytes per child, more than the geometry on wide layers), and per parent the
    functions that cut it (CSR: cut_off (F+1,), cut_units). Edges created by function j get label
    ``unit_base + j``.
    """
    n_faces = off.shape[0] - 1
    n = maps.shape[2]
    cap_v = xy.shape[0] * 2 + 64  # small nets' children mostly fit: no doubling (``_smallchain``'s 2-8-3)
    cap_c = n_faces * 2 + 16
    cxy = np.empty((cap_v, 2))
    clab = np.empty(cap_v, np.int64)
    coff = np.empty(cap_c + 1, np.int64)
    cparent = np.empty(cap_c, np.int64)
    n_bytes = (n + 7) // 8
    cbits = np.empty((cap_c, n_bytes), np.uint8)
    crow = np.empty(n_bytes, np.uint8)  # the packed bits of the piece being split
    cut_off = np.zeros(n_faces + 1, np.int64)
    cut_units = np.empty(max(n_faces, 16), np.int64)
    n_cut_total = 0
    n_children = 0
    n_vert_out = 0
    coff[0] = 0
    tols = np.empty(n)
    on_flags = np.zeros(8 * n_bytes, np.uint8)
    cut_flags = np.zeros(8 * n_bytes, np.uint8)
    face_cuts = np.empty(n, np.int64)
    # scratch for the pieces of one face: their vertices, a stack in the vertex pool pxy/plab
    pxy = np.empty((64, 2))
    plab = np.empty(64, np.int64)
    # NOTE [split stack]: the pieces of one face still to be split, depth first, one slot d per piece
    # (at most n_cut + 1 at a time: each split replaces a slot by two), as seven parallel arrays
    # (numba has no cheap array of records):
    #   st_start[d], st_len[d]  the piece's vertices pxy[st_start : st_start + st_len] (a stack in the pool:
    #                           a slot's vertices lie above those of every slot below it)
    #   l_start[d], l_n[d]      its list of functions that may still cut it, lpool[l_start : l_start + l_n]
    #                           (positions in the face's cut list, cut_units[cut_start + q])
    #   l_i[d]                  how many of that list are done (the next one to try)
    #   fresh[d]                1 while the piece is unvisited: its list is filtered by its disc first
    #   q_neg[d]                for the negative piece of a split, the position of the splitting function
    #                           (its bit is cleared when the piece is visited), else -1
    st_start = np.empty(18, np.int64)
    st_len = np.empty(18, np.int64)
    l_start = np.empty(18, np.int64)
    l_n = np.empty(18, np.int64)
    l_i = np.empty(18, np.int64)
    fresh = np.empty(18, np.uint8)
    q_neg = np.empty(18, np.int64)
    lpool = np.empty(256, np.int64)
    zbuf = np.empty(64)
    for f in range(n_faces):
        s, e = off[f], off[f + 1]
        k = e - s
        a = maps[f, 0]
        b = maps[f, 1]
        c = maps[f, 2]
        cut_start = n_cut_total
        n_cut = _scan_face(xy, s, e, a, b, c, tol * diam, tols, on_flags, cut_flags, crow, face_cuts)
        if n_cut_total + n_cut > cut_units.shape[0]:
            cut_units = _grow1(cut_units, n_cut_total + n_cut)
        for q in range(n_cut):
            cut_units[n_cut_total + q] = face_cuts[q]
        n_cut_total += n_cut
        cut_off[f + 1] = n_cut_total
        if n_cut == 0:
            cxy, clab, coff, cparent, cbits, n_vert_out = _emit_child(xy, lab, s, k, f, cxy, clab, coff, cparent,
                                                                      cbits, n_vert_out, n_children)
            cbits[n_children] = crow
            n_children += 1
            continue
        # depth-first splitting: every piece keeps the list of cutting functions that may still cut
        # it (those whose line meets its enclosing disc), filtered when the piece is first visited;
        # the first function of the list that cuts it splits it into two pieces that continue after
        # it. One bits array serves the whole stack: a subtree writes only the positions of its own
        # list, so the positions an ancestor decided stay valid for its other pieces.
        if st_start.shape[0] < n_cut + 2:
            st_start = np.empty(n_cut + 2, np.int64)
            st_len = np.empty(n_cut + 2, np.int64)
            l_start = np.empty(n_cut + 2, np.int64)
            l_n = np.empty(n_cut + 2, np.int64)
            l_i = np.empty(n_cut + 2, np.int64)
            fresh = np.empty(n_cut + 2, np.uint8)
            q_neg = np.empty(n_cut + 2, np.int64)
        if n_cut > lpool.shape[0]:
            lpool = _grow1(lpool, 4 * n_cut)
        if k > pxy.shape[0]:
            pxy = _grow2(pxy, 4 * k)
            plab = _grow1(plab, 4 * k)
        for i in range(k):
            pxy[i, 0] = xy[s + i, 0]
            pxy[i, 1] = xy[s + i, 1]
            plab[i] = lab[s + i]
        for q in range(n_cut):  # every one of them cuts the face itself
            lpool[q] = q
        n_pool = k
        st_start[0] = 0
        st_len[0] = k
        l_start[0] = 0
        l_n[0] = n_cut
        l_i[0] = 0
        fresh[0] = 0
        top = 1
        while top > 0:
            d = top - 1
            ps = st_start[d]
            pk = st_len[d]
            ls = l_start[d]
            n_pool = ps + pk  # the pieces above this one are done: their vertices are free again
            if fresh[d]:
                if q_neg[d] >= 0:
                    _set_bit(crow, cut_units[cut_start + q_neg[d]], 0)
                # enclosing disc of the piece: functions whose line misses it keep one sign on it
                cu, cv, r = _disc(pxy, ps, pk)
                R = r + tol * diam
                R2 = R * R
                m = 0
                for ii in range(l_i[d], l_n[d]):
                    q = lpool[ls + ii]
                    j = cut_units[cut_start + q]
                    aj, bj, cj = a[j], b[j], c[j]
                    zc = aj * cu + bj * cv + cj
                    if zc * zc > R2 * (aj * aj + bj * bj):
                        _set_bit(crow, j, zc > 0.0)
                    else:
                        lpool[ls + m] = q
                        m += 1
                l_n[d] = m
                l_i[d] = 0
                fresh[d] = 0
            split = False
            if pk > zbuf.shape[0]:
                zbuf = _grow1(zbuf, 2 * pk)
            q = -1
            j = -1
            while l_i[d] < l_n[d]:
                q = lpool[ls + l_i[d]]
                j = cut_units[cut_start + q]
                aj, bj, cj = a[j], b[j], c[j]
                t = tols[j]
                has_pos = False
                has_neg = False
                for i in range(pk):
                    z = aj * pxy[ps + i, 0] + bj * pxy[ps + i, 1] + cj
                    has_pos |= z > t
                    has_neg |= z < -t
                if has_pos and has_neg:
                    split = True
                    break
                _set_bit(crow, j, has_pos)
                l_i[d] += 1
            if not split:  # no function cuts the piece: it is a child
                cxy, clab, coff, cparent, cbits, n_vert_out = _emit_child(pxy, plab, ps, pk, f, cxy, clab, coff,
                                                                          cparent, cbits, n_vert_out, n_children)
                cbits[n_children] = crow
                n_children += 1
                top -= 1
                continue
            # split by function j: the negative piece replaces slot d (its list goes on after j),
            # the positive piece goes on top with a copy of that list (processed first)
            if n_pool + 2 * pk + 4 > pxy.shape[0]:
                pxy = _grow2(pxy, n_pool + 2 * pk + 4)
                plab = _grow1(plab, n_pool + 2 * pk + 4)
            # the negative piece first, so that the vertex pool is a stack in the order of the slots
            start_neg = n_pool
            n_pool += _clip_piece(pxy, plab, ps, pk, -aj, -bj, -cj, t, unit_base + j, pxy, plab, n_pool, zbuf)
            start_pos = n_pool
            n_pool += _clip_piece(pxy, plab, ps, pk, aj, bj, cj, t, unit_base + j, pxy, plab, n_pool, zbuf)
            rest = l_n[d] - l_i[d] - 1
            st_start[d] = start_neg
            st_len[d] = start_pos - start_neg
            l_i[d] += 1
            fresh[d] = 1
            q_neg[d] = q
            ls1 = ls + l_n[d]
            if ls1 + rest > lpool.shape[0]:
                lpool = _grow1(lpool, ls1 + rest)
            for ii in range(rest):
                lpool[ls1 + ii] = lpool[ls + l_i[d] + ii]
            _set_bit(crow, j, 1)
            st_start[d + 1] = start_pos
            st_len[d + 1] = n_pool - start_pos
            l_start[d + 1] = ls1
            l_n[d + 1] = rest
            l_i[d + 1] = 0
            fresh[d + 1] = 1
            q_neg[d + 1] = -1
            top = d + 2
    return (cxy[:n_vert_out].copy(), coff[: n_children + 1].copy(), clab[:n_vert_out].copy(),
            cparent[:n_children].copy(), cbits[:n_children].copy(), cut_off, cut_units[:n_cut_total].copy())


@njit(cache=True)
def child_maps(G, M, WT, wt_ptr, wt_idx, wt_val, cparent, cbits, ref_bits, slope_on, slope_off, c_start, out,
               group_starts, b, mu, candidate, n_roundings):
    """Next-layer maps of children ``c_start ..`` (their rows of cparent/cbits) by rank-few updates.

    ``G[p] = W (s(ref_bits[p]) * M[p]) + b`` (3, n') is the next map of parent p under a reference
    pattern (``cbits`` and ``ref_bits`` are packed rows, like ``split_faces``'s). A child differs
    from it, and from its previous sibling, only in the bits of the units that cut p, so
    ``M'[c] = M'[ref] + sum_{j: bit differs} (s_c(j) - s_ref(j)) M[p, :, j] W[:, j]^T``, starting
    from whichever of G[p] and the previous sibling differs in fewer bits (siblings are emitted by
    the splitting kernel in an order where neighbours mostly differ in 1-3 bits). ``WT`` is W
    transposed, (n, n'); ``wt_ptr, wt_idx, wt_val`` are its rows in CSR form when W is sparse (an
    unrolled conv: a unit feeds a kernel-sized patch), or three empty arrays to use ``WT`` densely
    (skipping zeros changes no sum). Fills ``out`` (C, 3, n') for the C children from c_start on
    (a reused buffer: fresh memory would cost a page fault every 4 KiB). Runs of siblings
    (``group_starts``, relative to c_start, closed by C) are independent.

    Vanishing units (``_roundoff``, NOTE [vanishing units]): a unit i whose three rows are all at
    most ``candidate[:, i]`` (CANDIDATE_RATIO times its magnitude bound; negative to disable) is
    recomputed directly, ``sum_j W[i, j] s_c(j) M[p, :, j] + b[i]``, and set to exact zero when every
    row r is within ``n_roundings * EPS * S_r``, ``S_r = sum_j |W[i, j] s_c(j)| mu[r, j] + |b[i]|``
    (``mu`` (3, n): the magnitude bound of the parent's maps, which bounds their own round-off).
    """
    n_groups = group_starts.shape[0] - 1
    for g in range(n_groups):
        for k in range(group_starts[g], group_starts[g + 1]):
            _child_map_one(G, M, WT, wt_ptr, wt_idx, wt_val, cparent, cbits, ref_bits, slope_on - slope_off,
                           c_start, out, k, k > group_starts[g])
            dst = out[k]
            for i in range(dst.shape[1]):
                if (abs(dst[0, i]) <= candidate[0, i] and abs(dst[1, i]) <= candidate[1, i]
                        and abs(dst[2, i]) <= candidate[2, i]
                        and (dst[0, i] != 0.0 or dst[1, i] != 0.0 or dst[2, i] != 0.0)):  # exact zeros stay
                    _recompute_unit(M[cparent[c_start + k]], WT, b, mu, cbits[c_start + k], slope_on, slope_off,
                                    n_roundings, dst, i)
    return out


@njit(cache=True)
def _recompute_unit(Mp, WT, b, mu, bits, slope_on, slope_off, n_roundings, dst, i):
    """Unit i of the child's map summed directly from the parent's maps ``Mp`` (3, n), snapped to
    exact zero when it vanishes up to round-off (NOTE [vanishing units] in ``_roundoff``)."""
    n = Mp.shape[1]
    vanishes = True
    for r in range(3):
        acc = b[i] if r == 2 else 0.0
        mag = abs(acc)
        for j in range(n):
            ws = WT[j, i] * (slope_on if bit(bits, j) else slope_off)
            acc += ws * Mp[r, j]
            mag += abs(ws) * mu[r, j]
        dst[r, i] = acc
        vanishes = vanishes and abs(acc) <= vanishing_tolerance(mag, n_roundings)
    if vanishes:
        for r in range(3):
            dst[r, i] = 0.0


#: Set bits of each byte value (popcount table).
_POPCOUNT = np.array([bin(v).count("1") for v in range(256)], np.int64)


@njit(cache=True)
def _bits_differ(x, y):
    n = 0
    for i in range(x.shape[0]):
        n += _POPCOUNT[x[i] ^ y[i]]
    return n


@njit(cache=True)
def _child_map_one(G, M, WT, wt_ptr, wt_idx, wt_val, cparent, cbits, ref_bits, delta, c_start, out, k, may_chain):
    # siblings share every bit but those of the units that cut their parent, so the packed rows'
    # difference is exactly the flipped cutting units
    n_next = WT.shape[1]
    ch = c_start + k
    p = cparent[ch]
    row = cbits[ch]
    d_ref = _bits_differ(row, ref_bits[p])
    d_prev = 1 << 60
    if may_chain and cparent[ch - 1] == p:
        d_prev = _bits_differ(row, cbits[ch - 1])
    use_prev = d_prev < d_ref
    src = out[k - 1] if use_prev else G[p]
    other = cbits[ch - 1] if use_prev else ref_bits[p]
    dst = out[k]
    for r in range(3):
        for i in range(n_next):
            dst[r, i] = src[r, i]
    for byte in range(row.shape[0]):
        x = row[byte] ^ other[byte]
        if x == 0:
            continue
        for t in range(8):
            if not (x >> (7 - t)) & 1:
                continue
            j = 8 * byte + t
            coef = delta if (row[byte] >> (7 - t)) & 1 else -delta
            m0 = coef * M[p, 0, j]
            m1 = coef * M[p, 1, j]
            m2 = coef * M[p, 2, j]
            if wt_ptr.shape[0] == 0:
                for i in range(n_next):
                    w = WT[j, i]
                    dst[0, i] += m0 * w
                    dst[1, i] += m1 * w
                    dst[2, i] += m2 * w
            else:  # a sparse column (a conv unit feeds a kernel-sized patch of the next layer)
                for e in range(wt_ptr[j], wt_ptr[j + 1]):
                    i = wt_idx[e]
                    w = wt_val[e]
                    dst[0, i] += m0 * w
                    dst[1, i] += m1 * w
                    dst[2, i] += m2 * w


@njit(cache=True)
def _axpy(m, x, y):
    for i in range(x.shape[0]):
        y[i] += m * x[i]


@njit(cache=True, fastmath=True)
def gated_product(M, bits, slope_on, slope_off, W, b):
    """``W (s[f] * M[f]) + b`` for each face, (F, 3, n) -> (F, 3, n'), for small n'; the slopes
    s[f, j] are ``slope_on`` where bit j of ``bits[f]`` (packed rows, like ``split_faces``'s) is set,
    else ``slope_off``.
    (fastmath only lets the dot products be summed in SIMD order, like BLAS does.)"""
    F, _, n = M.shape
    n_next = W.shape[0]
    out = np.empty((F, 3, n_next))
    rows = np.empty((3, n))
    slopes = np.empty(n)
    for f in range(F):
        _gate_face(M, f, bits, slope_on, slope_off, slopes, rows)
        for r in range(3):
            for i in range(n_next):
                acc = 0.0
                for j in range(n):
                    acc += W[i, j] * rows[r, j]
                out[f, r, i] = acc + (b[i] if r == 2 else 0.0)
    return out


@njit(cache=True, fastmath=True)
def gated_csr_product(M, bits, slope_on, slope_off, ptr, idx, val, n_out):
    """``W (s[f] * M[f])`` for each face, (F, 3, n) -> (F, 3, n_out), W as CSR (``ptr``, ``idx``,
    ``val``), slopes from packed ``bits`` as in ``gated_product`` (no bias)."""
    F, _, n = M.shape
    out = np.empty((F, 3, n_out))
    rows = np.empty((3, n))
    slopes = np.empty(n)
    for f in range(F):
        _gate_face(M, f, bits, slope_on, slope_off, slopes, rows)
        for r in range(3):
            for i in range(n_out):
                acc = 0.0
                for e in range(ptr[i], ptr[i + 1]):
                    acc += val[e] * rows[r, idx[e]]
                out[f, r, i] = acc
    return out


@njit(cache=True, fastmath=True)
def csr_product(X, ptr, idx, val, n_out):
    """``W X[f]`` for each face, (F, 3, n) -> (F, 3, n_out), W as CSR."""
    F = X.shape[0]
    out = np.empty((F, 3, n_out))
    for f in range(F):
        for r in range(3):
            for i in range(n_out):
                acc = 0.0
                for e in range(ptr[i], ptr[i + 1]):
                    acc += val[e] * X[f, r, idx[e]]
                out[f, r, i] = acc
    return out


@njit(cache=True)
def gate_into(M, bits, slope_on, slope_off, X):
    """``X[f] = s[f] * M[f]`` with slopes from packed bits (no float slope array is materialised)."""
    slopes = np.empty(M.shape[2])
    for f in range(M.shape[0]):
        _gate_face(M, f, bits, slope_on, slope_off, slopes, X[f])


@njit(cache=True, nogil=True)
def faces_with_small_units(M, constant, bound):
    """(F,) bool: faces f of maps M (F, 3, n) with a unit j whose map minus ``constant`` (subtracted from
    its constant term) is within ``bound`` (3, n) in all three rows (``|M[f, r, j] - c_r| <= bound[r, j]``);
    one pass, no temporaries, the first row deciding most units."""
    F, _, n = M.shape
    out = np.zeros(F, np.bool_)
    for f in range(F):
        for j in range(n):
            if abs(M[f, 0, j]) <= bound[0, j] and abs(M[f, 1, j]) <= bound[1, j] \
                    and abs(M[f, 2, j] - constant) <= bound[2, j]:
                out[f] = True
                break
    return out


@njit(cache=True, nogil=True)
def largest_entries(M):
    """max |M[f, r, j]| over faces f and rows r, per unit j: (n,) from maps (F, 3, n) in one pass (no
    temporary |M|), and whether every entry is finite."""
    n = M.shape[2]
    out = np.zeros(n)
    for f in range(M.shape[0]):
        for r in range(M.shape[1]):
            for j in range(n):
                x = abs(M[f, r, j])
                out[j] = x if (x > out[j] or x != x) else out[j]  # a NaN stays (nothing is > NaN)
    finite = True
    for j in range(n):
        finite = finite and out[j] < np.inf
    return out, finite


@njit(cache=True)
def gate_children(M, parent, bits, slope_on, slope_off, scale):
    """``X[c] = (s[c] * M[parent[c]]) * scale`` (C, 3, n): each child's gated copy of its parent's maps
    times per-unit ``scale`` (n,), in one pass (no gathered copy of the parents' maps)."""
    return gate_children_into(M, parent, bits, slope_on, slope_off, scale, np.empty((parent.shape[0], 3, M.shape[2])))


@njit(cache=True)
def gate_children_into(M, parent, bits, slope_on, slope_off, scale, X):
    """``gate_children`` written into ``X`` (C, 3, n), which it returns (the small-net path's pooled maps)."""
    n = M.shape[2]
    slopes = np.empty(n)
    for c in range(parent.shape[0]):
        _slopes(bits[c], slope_on, slope_off, slopes)
        p = parent[c]
        for r in range(3):
            for j in range(n):
                X[c, r, j] = (M[p, r, j] * slopes[j]) * scale[j]
    return X


@njit(cache=True)
def polygon_areas(xy, off):
    """Signed shoelace area of each polygon (positive when counter-clockwise)."""
    F = off.shape[0] - 1
    out = np.empty(F)
    for f in range(F):
        s, e = off[f], off[f + 1]
        acc = 0.0
        x0, y0 = xy[s, 0], xy[s, 1]
        for i in range(s + 1, e - 1):
            acc += (xy[i, 0] - x0) * (xy[i + 1, 1] - y0) - (xy[i + 1, 0] - x0) * (xy[i, 1] - y0)
        out[f] = 0.5 * acc
    return out


@njit(cache=True)
def polygon_origin_distance(xy, off):
    """Distance (F,) from (0, 0) to each convex counter-clockwise polygon (0 when inside it)."""
    F = off.shape[0] - 1
    out = np.empty(F)
    for f in range(F):
        s, e = off[f], off[f + 1]
        inside = True
        best = np.inf
        for i in range(s, e):
            i2 = i + 1 if i + 1 < e else s
            x0, y0 = xy[i, 0], xy[i, 1]
            ex, ey = xy[i2, 0] - x0, xy[i2, 1] - y0
            if ex * (-y0) - ey * (-x0) < 0.0:  # origin right of a counter-clockwise edge
                inside = False
            ll = ex * ex + ey * ey
            t = 0.0 if ll == 0.0 else min(max(-(x0 * ex + y0 * ey) / ll, 0.0), 1.0)
            px, py = x0 + t * ex, y0 + t * ey
            best = min(best, np.sqrt(px * px + py * py))
        out[f] = 0.0 if inside else best
    return out


@njit(cache=True)
def build_locator(xy, off, lo_u, lo_v, cell_u, cell_v, n_u, n_v):
    """Bucket faces by the grid cells their bounding boxes overlap (CSR: cell_off, cell_faces)."""
    F = off.shape[0] - 1
    counts = np.zeros(n_u * n_v + 1, np.int64)
    box = np.empty((F, 4), np.int64)
    for f in range(F):
        s, e = off[f], off[f + 1]
        umin = np.inf
        umax = -np.inf
        vmin = np.inf
        vmax = -np.inf
        for i in range(s, e):
            umin = min(umin, xy[i, 0])
            umax = max(umax, xy[i, 0])
            vmin = min(vmin, xy[i, 1])
            vmax = max(vmax, xy[i, 1])
        i0 = min(max(int((umin - lo_u) / cell_u), 0), n_u - 1)
        i1 = min(max(int((umax - lo_u) / cell_u), 0), n_u - 1)
        j0 = min(max(int((vmin - lo_v) / cell_v), 0), n_v - 1)
        j1 = min(max(int((vmax - lo_v) / cell_v), 0), n_v - 1)
        box[f, 0], box[f, 1], box[f, 2], box[f, 3] = i0, i1, j0, j1
        for jj in range(j0, j1 + 1):
            for ii in range(i0, i1 + 1):
                counts[jj * n_u + ii + 1] += 1
    for i in range(n_u * n_v):
        counts[i + 1] += counts[i]
    fill = counts[:-1].copy()
    faces = np.empty(counts[-1], np.int64)
    for f in range(F):
        for jj in range(box[f, 2], box[f, 3] + 1):
            for ii in range(box[f, 0], box[f, 1] + 1):
                cell = jj * n_u + ii
                faces[fill[cell]] = f
                fill[cell] += 1
    return counts, faces


@njit(cache=True)
def locate_points(pts, xy, off, cell_off, cell_faces, lo_u, lo_v, cell_u, cell_v, n_u, n_v, tol):
    """Index of the face containing each point (-1 outside every face). A point within ``tol`` of
    an edge counts as inside; the face whose edges it is farthest inside wins."""
    P = pts.shape[0]
    out = np.full(P, -1, np.int64)
    for p in range(P):
        x, y = pts[p, 0], pts[p, 1]
        ii = int(np.floor((x - lo_u) / cell_u))
        jj = int(np.floor((y - lo_v) / cell_v))
        if ii < 0 or jj < 0 or ii >= n_u or jj >= n_v:
            # allow points on the outer boundary (within tol)
            ii = min(max(ii, 0), n_u - 1)
            jj = min(max(jj, 0), n_v - 1)
        cell = jj * n_u + ii
        best = -np.inf
        for q in range(cell_off[cell], cell_off[cell + 1]):
            f = cell_faces[q]
            s, e = off[f], off[f + 1]
            worst = np.inf  # smallest signed distance to the face's edge lines (positive inside)
            for i in range(s, e):
                i2 = i + 1 if i + 1 < e else s
                ex = xy[i2, 0] - xy[i, 0]
                ey = xy[i2, 1] - xy[i, 1]
                ln = np.sqrt(ex * ex + ey * ey)
                if ln == 0.0:
                    continue
                d = (ex * (y - xy[i, 1]) - ey * (x - xy[i, 0])) / ln
                if d < worst:
                    worst = d
            if worst >= -tol and worst > best:
                best = worst
                out[p] = f
    return out


@njit(cache=True)
def clip_segments(xy, off, A, B, C, tol):
    """Intersect the line ``A[f] u + B[f] v + C[f] = 0`` with each convex face f.

    Returns (seg (S, 2, 2), face (S,)): one segment per face the line crosses (a line along an edge
    or through one vertex only gives nothing)."""
    F = off.shape[0] - 1
    seg = np.empty((F, 2, 2))
    face = np.empty(F, np.int64)
    n = 0
    for f in range(F):
        s, e = off[f], off[f + 1]
        g = np.sqrt(A[f] * A[f] + B[f] * B[f])
        if g == 0.0:
            continue
        t = tol * g
        npts = 0
        px = np.empty(2)
        py = np.empty(2)
        has_pos = False
        has_neg = False
        for i in range(s, e):
            z = A[f] * xy[i, 0] + B[f] * xy[i, 1] + C[f]
            if z > t:
                has_pos = True
            elif z < -t:
                has_neg = True
        if not (has_pos and has_neg):
            continue
        for i in range(s, e):
            i2 = i + 1 if i + 1 < e else s
            zi = A[f] * xy[i, 0] + B[f] * xy[i, 1] + C[f]
            zn = A[f] * xy[i2, 0] + B[f] * xy[i2, 1] + C[f]
            if abs(zi) <= t:
                zi = 0.0
            if abs(zn) <= t:
                zn = 0.0
            if zi == 0.0:
                if npts < 2:
                    px[npts] = xy[i, 0]
                    py[npts] = xy[i, 1]
                npts += 1
            elif (zi > 0.0 and zn < 0.0) or (zi < 0.0 and zn > 0.0):
                w = zi / (zi - zn)
                if npts < 2:
                    px[npts] = xy[i, 0] + w * (xy[i2, 0] - xy[i, 0])
                    py[npts] = xy[i, 1] + w * (xy[i2, 1] - xy[i, 1])
                npts += 1
        if npts >= 2:
            seg[n, 0, 0] = px[0]
            seg[n, 0, 1] = py[0]
            seg[n, 1, 0] = px[1]
            seg[n, 1, 1] = py[1]
            face[n] = f
            n += 1
    return seg[:n].copy(), face[:n].copy()


@njit(cache=True)
def argmax_segments(xy, off, maps, tol_rel):
    """Segments (S, 2, 2) where the arg-max of the K affine functions ``maps[f]`` (3, K) changes
    inside each face, with their face (S,) and the two classes (S, 2) (lower first)."""
    F = off.shape[0] - 1
    K_out = maps.shape[2]
    seg = np.empty((16, 4))  # rows (u0, v0, u1, v1)
    face = np.empty(16, np.int64)
    cls = np.empty((16, 2), np.int64)
    n_seg = 0
    # class c's cell, clipped class after class: ping-pong between (bxy, bl) and (cxy, cl)
    bxy = np.empty((64, 2))
    bl = np.empty(64, np.int64)
    cxy = np.empty((64, 2))
    cl = np.empty(64, np.int64)
    zbuf = np.empty(64)
    for f in range(F):
        s, e = off[f], off[f + 1]
        k = e - s
        if 2 * (k + K_out) + 4 > bxy.shape[0]:  # each clip adds at most one vertex to a convex cell
            size = 4 * (k + K_out) + 8
            bxy = _grow2(bxy, size)
            bl = _grow1(bl, size)
            cxy = _grow2(cxy, size)
            cl = _grow1(cl, size)
            zbuf = _grow1(zbuf, size)
        diam = 0.0
        for i in range(s, e):
            for i2 in range(i + 1, e):
                diam = max(diam, np.hypot(xy[i, 0] - xy[i2, 0], xy[i, 1] - xy[i2, 1]))
        for c in range(K_out):
            # quick rejection: some class beats c at every vertex
            beaten = False
            for j in range(K_out):
                if j == c:
                    continue
                all_below = True
                for i in range(s, e):
                    dz = ((maps[f, 0, c] - maps[f, 0, j]) * xy[i, 0] + (maps[f, 1, c] - maps[f, 1, j]) * xy[i, 1]
                          + maps[f, 2, c] - maps[f, 2, j])
                    if dz >= 0.0:
                        all_below = False
                        break
                if all_below:
                    beaten = True
                    break
            if beaten:
                continue
            n = k
            for i in range(k):
                bxy[i, 0] = xy[s + i, 0]
                bxy[i, 1] = xy[s + i, 1]
                bl[i] = -1
            for j in range(K_out):
                if j == c or n == 0:
                    continue
                A = maps[f, 0, c] - maps[f, 0, j]
                B = maps[f, 1, c] - maps[f, 1, j]
                C = maps[f, 2, c] - maps[f, 2, j]
                g = np.hypot(A, B)
                n = _clip_piece(bxy, bl, 0, n, A, B, C, tol_rel * diam * g, j, cxy, cl, 0, zbuf, True)
                bxy, cxy = cxy, bxy
                bl, cl = cl, bl
            if n < 3:
                continue
            for i in range(n):
                j = bl[i]
                if j <= c:
                    continue
                i2 = i + 1 if i + 1 < n else 0
                if np.hypot(bxy[i2, 0] - bxy[i, 0], bxy[i2, 1] - bxy[i, 1]) <= tol_rel * diam:
                    continue
                if n_seg == seg.shape[0]:
                    seg = _grow2(seg, n_seg + 1)
                    face = _grow1(face, n_seg + 1)
                    cls = _grow2(cls, n_seg + 1)
                seg[n_seg, 0] = bxy[i, 0]
                seg[n_seg, 1] = bxy[i, 1]
                seg[n_seg, 2] = bxy[i2, 0]
                seg[n_seg, 3] = bxy[i2, 1]
                face[n_seg] = f
                cls[n_seg, 0] = c
                cls[n_seg, 1] = j
                n_seg += 1
    return seg[:n_seg].copy().reshape(n_seg, 2, 2), face[:n_seg].copy(), cls[:n_seg].copy()
