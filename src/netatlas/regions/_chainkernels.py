"""Compiled (numba) kernels of the chain path's wide dense layers: a relu layer's next maps over its on
units only or, for the slice's children, by rank-1 terms from their neighbours'; the output layer's maps
four rows at a time; children's maps by rank-few updates fused into one pass over each child's maps.

They compute what ``_kernels.gated_product``/BLAS and ``_kernels.child_maps`` compute (the latter bit for
bit: the same products and sums in the same order per entry), in fewer passes over memory or fewer
multiply-adds:

- ``relu_next_maps``: ``W (s * M[f]) + b`` with s = 0 on a relu's off units, so only the on units' columns
  of W are read (about half of them); four columns per pass over the face's (3, n') accumulators, so
  each accumulator is loaded and stored once per four multiply-adds (the pass is bound by arithmetic, not
  by the L1 stores). The sum is in a different order than BLAS's: equal up to round-off.
- ``sibling_next_maps``: the same maps for faces that are all children of one face (NOTE [sibling next
  maps] in ``_chain``): each face's from its predecessor's by a few rank-1 terms through one product
  W' diag(s*) W, then a few more for its own pattern; equal to the product up to round-off.
- ``narrow_next_maps``: the same product for a narrow next layer (the output layer, n' <= 32), four of W's
  rows at a time against the face's three gated rows: twelve dot products share each load (a compiled
  loop of one dot product at a time is bound by its loads, two per multiply-add).
- ``fused_child_maps``: a child's maps are its source's (the parent's reference maps or its previous
  sibling's) plus one rank-1 term per flipped unit; the copy and up to four terms are one pass over the
  three rows (the terms added in the flipped units' order, as ``child_maps`` does), then the
  vanishing-unit test; the flipped units are looked for among the units that cut the parent only.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from netatlas.regions._kernels import _POPCOUNT, _recompute_unit, bit

__all__ = ["relu_next_maps", "narrow_next_maps", "sibling_next_maps", "fused_child_maps"]


@njit(cache=True, fastmath=True)
def relu_next_maps(M, bits, slope_on, WT, b, out):
    """``out[f] = W (s[f] * M[f]) + b`` (F, 3, n'), s[f, j] = ``slope_on`` where bit j of ``bits[f]`` (packed
    rows, like ``split_faces``'s) is set, else 0 (a relu); ``WT`` is W transposed, (n, n'). Off units are
    skipped (their terms are exact zeros). (fastmath lets the sums run in SIMD order, like BLAS.)"""
    n = M.shape[2]
    idx = np.empty(n + 1, np.int64)
    xs = np.empty((3, n + 1))
    for f in range(M.shape[0]):
        _on_units_product(M[f], bits[f], slope_on, WT, b, idx, xs, out[f])
    return out


@njit(cache=True, inline="always")
def _on_units_product(Mf, row, slope_on, WT, b, idx, xs, dst):
    """``dst (3, n') = W (s * Mf) + b`` for one face, s from the packed ``row`` (a relu: off units skipped)."""
    k = 0  # the on units and their gated maps, compacted without a branch (the bits are random)
    for j in range(Mf.shape[1]):
        idx[k] = j
        xs[0, k] = slope_on * Mf[0, j]
        xs[1, k] = slope_on * Mf[1, j]
        xs[2, k] = slope_on * Mf[2, j]
        k += bit(row, j)
    for i in range(WT.shape[1]):
        dst[0, i] = 0.0
        dst[1, i] = 0.0
        dst[2, i] = b[i]
    _accumulate(dst, WT, idx, xs, k, WT.shape[1])


@njit(cache=True, fastmath=True)
def narrow_next_maps(M, bits, slope_on, slope_off, W, b):
    """``W (s[f] * M[f]) + b`` (F, 3, n') for each face, as ``_kernels.gated_product`` (the slopes s[f] from
    the packed ``bits``; W (n', n)), with the twelve dot products of four of W's rows and the face's three
    gated rows in one pass over them. (fastmath lets the sums run in SIMD order, like BLAS.)"""
    F, _, n = M.shape
    n_next = W.shape[0]
    out = np.empty((F, 3, n_next))
    x0 = np.empty(n)
    x1 = np.empty(n)
    x2 = np.empty(n)
    table = slope_table(slope_on, slope_off)
    slopes = np.empty(8 * bits.shape[1])
    for f in range(F):
        for byte in range(bits.shape[1]):  # the gated rows: each half byte's four slopes from the table (no branch)
            x = bits[f, byte]
            for t in range(4):
                slopes[8 * byte + t] = table[x >> 4, t]
                slopes[8 * byte + 4 + t] = table[x & 15, t]
        for j in range(n):
            x0[j] = slopes[j] * M[f, 0, j]
            x1[j] = slopes[j] * M[f, 1, j]
            x2[j] = slopes[j] * M[f, 2, j]
        i = 0
        while i + 4 <= n_next:
            wa, wb, wc, wd = W[i], W[i + 1], W[i + 2], W[i + 3]
            a0 = a1 = a2 = b0 = b1 = b2 = c0 = c1 = c2 = d0 = d1 = d2 = 0.0
            for j in range(n):
                p, q, r = x0[j], x1[j], x2[j]
                a0 += wa[j] * p
                a1 += wa[j] * q
                a2 += wa[j] * r
                b0 += wb[j] * p
                b1 += wb[j] * q
                b2 += wb[j] * r
                c0 += wc[j] * p
                c1 += wc[j] * q
                c2 += wc[j] * r
                d0 += wd[j] * p
                d1 += wd[j] * q
                d2 += wd[j] * r
            out[f, 0, i], out[f, 1, i], out[f, 2, i] = a0, a1, a2 + b[i]
            out[f, 0, i + 1], out[f, 1, i + 1], out[f, 2, i + 1] = b0, b1, b2 + b[i + 1]
            out[f, 0, i + 2], out[f, 1, i + 2], out[f, 2, i + 2] = c0, c1, c2 + b[i + 2]
            out[f, 0, i + 3], out[f, 1, i + 3], out[f, 2, i + 3] = d0, d1, d2 + b[i + 3]
            i += 4
        while i < n_next:
            wa = W[i]
            a0 = a1 = a2 = 0.0
            for j in range(n):
                a0 += wa[j] * x0[j]
                a1 += wa[j] * x1[j]
                a2 += wa[j] * x2[j]
            out[f, 0, i], out[f, 1, i], out[f, 2, i] = a0, a1, a2 + b[i]
            i += 1
    return out


@njit(cache=True)
def slope_table(slope_on, slope_off):
    """(16, 4): row x holds the slopes of the four units of a half byte x of packed bits (its first unit in the
    top bit)."""
    table = np.empty((16, 4))
    for x in range(16):
        for t in range(4):
            table[x, t] = slope_on if (x >> (3 - t)) & 1 else slope_off
    return table


@njit(cache=True, fastmath=True)
def sibling_next_maps(M, ref_bits, slope_on, WT, star, AT, constant, M_parent, parent_bits, parent_slope, restart,
                      out):
    """``relu_next_maps`` for faces that are siblings (children of one face, maps ``M_parent`` (1, 3, m) of the
    layer before, their bits of that layer ``parent_bits`` (F, ceil(m / 8))), by rank-1 terms instead of a
    product per face (NOTE [sibling next maps] in ``_chain``). Under the pattern ``star`` (packed), whose product
    with the layer before is ``AT`` (m, n'), a face's maps are ``G* = A (t * M_parent) + constant`` (3, n'):
    computed so for every ``restart``-th face (the round-off of a chain stays that of ``restart`` steps), else its
    predecessor's plus ``+-parent_slope * M_parent[j] AT[j]`` per unit j of the layer before whose bit differs.
    Its next maps under its own ``ref_bits[f]`` are that plus ``+-slope_on * M[f, :, k] WT[k]`` per unit k whose
    bit differs from the pattern's (both relus: a slope or 0). (fastmath: the terms are summed four at a time,
    in SIMD order.)"""
    F, _, n = M.shape
    n_next = WT.shape[1]
    m = M_parent.shape[2]
    idx = np.empty(max(n, m) + 1, np.int64)
    xs = np.empty((3, max(n, m) + 1))
    G = np.empty((3, n_next))
    for f in range(F):
        if f % restart == 0:
            _on_units_product(M_parent[0], parent_bits[f], parent_slope, AT, constant, idx, xs, G)
        else:  # the chain: the units of the layer before whose bits differ from the previous sibling's
            k = _differing_terms(parent_bits[f], parent_bits[f - 1], M_parent, 0, parent_slope, idx, xs)
            _accumulate(G, AT, idx, xs, k, n_next)
        k = _differing_terms(ref_bits[f], star, M, f, slope_on, idx, xs)  # the units whose bit differs from s*'s
        dst = out[f]
        for r in range(3):
            for i in range(n_next):
                dst[r, i] = G[r, i]
        _accumulate(dst, WT, idx, xs, k, n_next)
    return out


@njit(cache=True, inline="always")
def _differing_terms(row, other, M, f, slope, idx, xs):
    """The units whose bits differ in the packed rows ``row`` and ``other`` (idx), and their terms'
    coefficients ``+-slope * M[f, :, j]`` (xs, (3, k); + where row's bit is set); returns k."""
    k = 0
    for byte in range(row.shape[0]):
        x = row[byte] ^ other[byte]
        if x == 0:
            continue
        for t in range(8):
            if (x >> (7 - t)) & 1:
                j = 8 * byte + t
                coef = slope if (row[byte] >> (7 - t)) & 1 else -slope
                idx[k] = j
                xs[0, k] = coef * M[f, 0, j]
                xs[1, k] = coef * M[f, 1, j]
                xs[2, k] = coef * M[f, 2, j]
                k += 1
    return k


@njit(cache=True, inline="always")
def _accumulate(dst, T, idx, xs, k, n_next):
    """``dst (3, n') += sum over q < k of xs[:, q] T[idx[q]]``, four rows of T per pass over dst."""
    g0, g1, g2 = dst[0], dst[1], dst[2]
    q = 0
    while q + 4 <= k:
        wa, wb, wc, wd = T[idx[q]], T[idx[q + 1]], T[idx[q + 2]], T[idx[q + 3]]
        a0, b0, c0, d0 = xs[0, q], xs[0, q + 1], xs[0, q + 2], xs[0, q + 3]
        a1, b1, c1, d1 = xs[1, q], xs[1, q + 1], xs[1, q + 2], xs[1, q + 3]
        a2, b2, c2, d2 = xs[2, q], xs[2, q + 1], xs[2, q + 2], xs[2, q + 3]
        for i in range(n_next):
            x, y, z, w = wa[i], wb[i], wc[i], wd[i]
            g0[i] += a0 * x + b0 * y + c0 * z + d0 * w
            g1[i] += a1 * x + b1 * y + c1 * z + d1 * w
            g2[i] += a2 * x + b2 * y + c2 * z + d2 * w
        q += 4
    while q < k:
        wa = T[idx[q]]
        a0, a1, a2 = xs[0, q], xs[1, q], xs[2, q]
        for i in range(n_next):
            g0[i] += a0 * wa[i]
            g1[i] += a1 * wa[i]
            g2[i] += a2 * wa[i]
        q += 1


@njit(cache=True)
def fused_child_maps(G, M, WT, cparent, cbits, ref_bits, slope_on, slope_off, c_start, out, group_starts, b, mu,
                     candidate, n_roundings, cut_off, cut_units):
    """``_kernels.child_maps`` for a dense W (no sparse columns), bit for bit: the same source (the
    parent's reference maps ``G[p]`` or the previous sibling's, whichever differs in fewer bits), the
    same rank-1 terms added in the same order, the same vanishing-unit rule; the copy and up to four
    terms in one pass over the child's (3, n') maps instead of one pass each. The bits compared are
    only those of the units that cut the parent (``split_faces``'s CSR ``cut_off``, ``cut_units``, in
    increasing order): siblings and their reference share every other bit, so these are all the
    differing ones, in the order of the packed rows' scan."""
    child_maps(G, M, WT, cparent, cbits, ref_bits, slope_on, slope_off, c_start, group_starts[-1], out, 0, False,
               1 << 62, 1, b, mu, candidate, n_roundings, cut_off, cut_units,
               child_map_scratch(M.shape[2], cbits.shape[1]))
    return out


@njit(cache=True)
def child_map_scratch(n, n_bytes):
    """``child_maps``'s scratch for parents of n units (packed rows of ``n_bytes``)."""
    return np.empty(n, np.int64), np.empty((n, 3)), -1 - np.arange(n_bytes)  # byte b of the packed rows as -1 - b


@njit(cache=True)
def child_maps(G, M, WT, cparent, cbits, ref_bits, slope_on, slope_off, ch_first, n_children, out, k_first,
               chain_first, period, phase, b, mu, candidate, n_roundings, cut_off, cut_units, scratch):
    """Children ``ch_first ..`` (``n_children`` of them)'s maps into ``out[k_first ..]`` (3, n' each) as
    ``fused_child_maps`` makes them: each from the previous sibling's maps ``out[k - 1]`` or its parent's
    reference maps, whichever differs in fewer bits; the previous sibling's only where the child before is one
    (``chain_first``: also for the first child) and ``(phase + i) % period`` is not 0 for the i-th child (where
    ``_chain_level``'s chunks would start)."""
    flips, coefs, all_units = scratch
    n_next = WT.shape[1]
    delta = slope_on - slope_off
    for i in range(n_children):
        ch = ch_first + i
        k = k_first + i
        p = cparent[ch]
        row = cbits[ch]
        # the units to compare: the parent's cutting units, or every unit (a scan of the packed bytes)
        # when they are more than the bytes (a face cut by many lines, e.g. the first layer's)
        cuts = cut_units[cut_off[p]:cut_off[p + 1]]
        if cuts.shape[0] > row.shape[0]:
            cuts = all_units
        d_ref = _cut_bits_differ(row, ref_bits[p], cuts)
        d_prev = 1 << 60
        if (i > 0 or chain_first) and cparent[ch - 1] == p and (phase + i) % period != 0:
            d_prev = _cut_bits_differ(row, cbits[ch - 1], cuts)
        use_prev = d_prev < d_ref
        src = out[k - 1] if use_prev else G[p]
        other = cbits[ch - 1] if use_prev else ref_bits[p]
        n_flip = 0
        for q in range(cuts.shape[0]):
            j = cuts[q]
            if j < 0:  # all units: a byte at a time, skipping equal bytes
                byte = -1 - j
                x = row[byte] ^ other[byte]
                if x == 0:
                    continue
                for t in range(8):
                    if (x >> (7 - t)) & 1:
                        n_flip = _flip(M, p, 8 * byte + t, (row[byte] >> (7 - t)) & 1, delta, flips, coefs, n_flip)
            elif bit(row, j) != bit(other, j):
                n_flip = _flip(M, p, j, bit(row, j), delta, flips, coefs, n_flip)
        dst = out[k]
        # the vanishing-unit candidates counted in the same passes, branch-free (vectorised): they are rare
        n_small = _add_terms(src, dst, WT, flips, coefs, 0, n_flip, n_next, candidate)
        for q in range(4, n_flip, 4):
            n_small = _add_terms(dst, dst, WT, flips, coefs, q, n_flip, n_next, candidate)
        if n_small == 0:
            continue
        for u in range(n_next):
            if (abs(dst[0, u]) <= candidate[0, u] and abs(dst[1, u]) <= candidate[1, u]
                    and abs(dst[2, u]) <= candidate[2, u]
                    and (dst[0, u] != 0.0 or dst[1, u] != 0.0 or dst[2, u] != 0.0)):  # exact zeros stay
                _recompute_unit(M[p], WT, b, mu, row, slope_on, slope_off, n_roundings, dst, u)


@njit(cache=True, inline="always")
def _cut_bits_differ(x, y, cuts):
    """How many bits of the units ``cuts`` differ in the packed rows x and y (an entry -1 - b: all of byte b)."""
    d = 0
    for j in cuts:
        d += _POPCOUNT[x[-1 - j] ^ y[-1 - j]] if j < 0 else bit(x, j) != bit(y, j)
    return d


@njit(cache=True, inline="always")
def _flip(M, p, j, on, delta, flips, coefs, n_flip):
    """Append unit j's rank-1 term (its coefficient +-delta times the parent's maps of j)."""
    coef = delta if on else -delta
    flips[n_flip] = j
    coefs[n_flip, 0] = coef * M[p, 0, j]
    coefs[n_flip, 1] = coef * M[p, 1, j]
    coefs[n_flip, 2] = coef * M[p, 2, j]
    return n_flip + 1


@njit(cache=True, inline="always")
def _small(x0, x1, x2, k0, k1, k2, i):
    """1 when unit i's three map entries are within its candidate bounds (a vanishing-unit candidate), else 0."""
    return (abs(x0) <= k0[i]) & (abs(x1) <= k1[i]) & (abs(x2) <= k2[i])


@njit(cache=True, inline="always")
def _add_terms(src, dst, WT, flips, coefs, q, n_flip, n_next, candidate):
    """``dst = src + sum of coefs[q', r] WT[flips[q']]`` (3, n') for up to four terms from q on, added one
    after the other (the order of ``child_maps``'s separate passes, so the same roundings); the three rows
    in one pass, so that each of W's entries is loaded once. Returns how many units of ``dst`` are within
    ``candidate`` (3, n') in all three rows."""
    m = min(n_flip - q, 4)
    s0, s1, s2 = src[0], src[1], src[2]
    d0, d1, d2 = dst[0], dst[1], dst[2]
    k0, k1, k2 = candidate[0], candidate[1], candidate[2]
    n_small = 0
    if m == 0:
        for i in range(n_next):
            x0, x1, x2 = s0[i], s1[i], s2[i]
            d0[i], d1[i], d2[i] = x0, x1, x2
            n_small += _small(x0, x1, x2, k0, k1, k2, i)
    elif m == 1:
        wa = WT[flips[q]]
        a0, a1, a2 = coefs[q, 0], coefs[q, 1], coefs[q, 2]
        for i in range(n_next):
            x0 = s0[i] + a0 * wa[i]
            x1 = s1[i] + a1 * wa[i]
            x2 = s2[i] + a2 * wa[i]
            d0[i], d1[i], d2[i] = x0, x1, x2
            n_small += _small(x0, x1, x2, k0, k1, k2, i)
    elif m == 2:
        wa, wb = WT[flips[q]], WT[flips[q + 1]]
        a0, a1, a2 = coefs[q, 0], coefs[q, 1], coefs[q, 2]
        b0, b1, b2 = coefs[q + 1, 0], coefs[q + 1, 1], coefs[q + 1, 2]
        for i in range(n_next):
            x0 = (s0[i] + a0 * wa[i]) + b0 * wb[i]
            x1 = (s1[i] + a1 * wa[i]) + b1 * wb[i]
            x2 = (s2[i] + a2 * wa[i]) + b2 * wb[i]
            d0[i], d1[i], d2[i] = x0, x1, x2
            n_small += _small(x0, x1, x2, k0, k1, k2, i)
    elif m == 3:
        wa, wb, wc = WT[flips[q]], WT[flips[q + 1]], WT[flips[q + 2]]
        a0, a1, a2 = coefs[q, 0], coefs[q, 1], coefs[q, 2]
        b0, b1, b2 = coefs[q + 1, 0], coefs[q + 1, 1], coefs[q + 1, 2]
        c0, c1, c2 = coefs[q + 2, 0], coefs[q + 2, 1], coefs[q + 2, 2]
        for i in range(n_next):
            x0 = ((s0[i] + a0 * wa[i]) + b0 * wb[i]) + c0 * wc[i]
            x1 = ((s1[i] + a1 * wa[i]) + b1 * wb[i]) + c1 * wc[i]
            x2 = ((s2[i] + a2 * wa[i]) + b2 * wb[i]) + c2 * wc[i]
            d0[i], d1[i], d2[i] = x0, x1, x2
            n_small += _small(x0, x1, x2, k0, k1, k2, i)
    else:
        wa, wb, wc, wd = WT[flips[q]], WT[flips[q + 1]], WT[flips[q + 2]], WT[flips[q + 3]]
        a0, a1, a2 = coefs[q, 0], coefs[q, 1], coefs[q, 2]
        b0, b1, b2 = coefs[q + 1, 0], coefs[q + 1, 1], coefs[q + 1, 2]
        c0, c1, c2 = coefs[q + 2, 0], coefs[q + 2, 1], coefs[q + 2, 2]
        e0, e1, e2 = coefs[q + 3, 0], coefs[q + 3, 1], coefs[q + 3, 2]
        for i in range(n_next):
            x0 = (((s0[i] + a0 * wa[i]) + b0 * wb[i]) + c0 * wc[i]) + e0 * wd[i]
            x1 = (((s1[i] + a1 * wa[i]) + b1 * wb[i]) + c1 * wc[i]) + e1 * wd[i]
            x2 = (((s2[i] + a2 * wa[i]) + b2 * wb[i]) + c2 * wc[i]) + e2 * wd[i]
            d0[i], d1[i], d2[i] = x0, x1, x2
            n_small += _small(x0, x1, x2, k0, k1, k2, i)
    return n_small
