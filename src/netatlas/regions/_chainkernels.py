"""Compiled (numba) kernels of the chain path's wide dense layers: a relu layer's next maps over its on
units only, and children's maps by rank-few updates fused into one pass over each child's maps.

Both compute what ``_kernels.gated_product``/BLAS and ``_kernels.child_maps`` compute (the latter bit for
bit: the same products and sums in the same order per entry), in fewer passes over memory:

- ``relu_next_maps``: ``W (s * M[f]) + b`` with s = 0 on a relu's off units, so only the on units' columns
  of W are read (about half of them); four columns per pass over the face's (3, n') accumulators, so
  each accumulator is loaded and stored once per four multiply-adds (the pass is bound by arithmetic, not
  by the L1 stores). The sum is in a different order than BLAS's: equal up to round-off.
- ``fused_child_maps``: a child's maps are its source's (the parent's reference maps or its previous
  sibling's) plus one rank-1 term per flipped unit; the copy and up to four terms are one pass (the
  terms added in the flipped units' order, as ``child_maps`` does), then the vanishing-unit test.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from netatlas.regions._kernels import _bits_differ, _recompute_unit, bit

__all__ = ["relu_next_maps", "fused_child_maps"]


@njit(cache=True, fastmath=True)
def relu_next_maps(M, bits, slope_on, WT, b, out):
    """``out[f] = W (s[f] * M[f]) + b`` (F, 3, n'), s[f, j] = ``slope_on`` where bit j of ``bits[f]`` (packed
    rows, like ``split_faces``'s) is set, else 0 (a relu); ``WT`` is W transposed, (n, n'). Off units are
    skipped (their terms are exact zeros). (fastmath lets the sums run in SIMD order, like BLAS.)"""
    F, _, n = M.shape
    n_next = WT.shape[1]
    idx = np.empty(n, np.int64)
    xs = np.empty((3, n))
    for f in range(F):
        k = 0  # the on units of face f and their gated maps
        for j in range(n):
            if bit(bits[f], j):
                idx[k] = j
                xs[0, k] = slope_on * M[f, 0, j]
                xs[1, k] = slope_on * M[f, 1, j]
                xs[2, k] = slope_on * M[f, 2, j]
                k += 1
        g0, g1, g2 = out[f, 0], out[f, 1], out[f, 2]
        for i in range(n_next):
            g0[i] = 0.0
            g1[i] = 0.0
            g2[i] = b[i]
        q = 0
        while q + 4 <= k:  # four columns per pass over the accumulators
            wa, wb, wc, wd = WT[idx[q]], WT[idx[q + 1]], WT[idx[q + 2]], WT[idx[q + 3]]
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
            wa = WT[idx[q]]
            a0, a1, a2 = xs[0, q], xs[1, q], xs[2, q]
            for i in range(n_next):
                g0[i] += a0 * wa[i]
                g1[i] += a1 * wa[i]
                g2[i] += a2 * wa[i]
            q += 1
    return out


@njit(cache=True)
def fused_child_maps(G, M, WT, cparent, cbits, ref_bits, slope_on, slope_off, c_start, out, group_starts, b, mu,
                     candidate, n_roundings):
    """``_kernels.child_maps`` for a dense W (no sparse columns), bit for bit: the same source (the
    parent's reference maps ``G[p]`` or the previous sibling's, whichever differs in fewer bits), the
    same rank-1 terms added in the same order, the same vanishing-unit rule; the copy and up to four
    terms in one pass over the child's (3, n') maps instead of one pass each."""
    n_next = WT.shape[1]
    n = M.shape[2]
    delta = slope_on - slope_off
    flips = np.empty(n, np.int64)
    coefs = np.empty((n, 3))
    for g in range(group_starts.shape[0] - 1):
        for k in range(group_starts[g], group_starts[g + 1]):
            ch = c_start + k
            p = cparent[ch]
            row = cbits[ch]
            d_ref = _bits_differ(row, ref_bits[p])
            d_prev = 1 << 60
            if k > group_starts[g] and cparent[ch - 1] == p:
                d_prev = _bits_differ(row, cbits[ch - 1])
            use_prev = d_prev < d_ref
            src = out[k - 1] if use_prev else G[p]
            other = cbits[ch - 1] if use_prev else ref_bits[p]
            n_flip = 0
            for byte in range(row.shape[0]):
                x = row[byte] ^ other[byte]
                if x == 0:
                    continue
                for t in range(8):
                    if (x >> (7 - t)) & 1:
                        j = 8 * byte + t
                        coef = delta if (row[byte] >> (7 - t)) & 1 else -delta
                        flips[n_flip] = j
                        coefs[n_flip, 0] = coef * M[p, 0, j]
                        coefs[n_flip, 1] = coef * M[p, 1, j]
                        coefs[n_flip, 2] = coef * M[p, 2, j]
                        n_flip += 1
            dst = out[k]
            for r in range(3):
                _add_terms(src[r], dst[r], WT, flips, coefs[:, r], 0, n_flip, n_next)
            for r in range(3):
                for q in range(4, n_flip, 4):
                    _add_terms(dst[r], dst[r], WT, flips, coefs[:, r], q, n_flip, n_next)
            n_small = 0  # branch-free count first (vectorised): candidates are rare
            for i in range(n_next):
                n_small += ((abs(dst[0, i]) <= candidate[0, i]) & (abs(dst[1, i]) <= candidate[1, i])
                            & (abs(dst[2, i]) <= candidate[2, i]))
            if n_small == 0:
                continue
            for i in range(n_next):
                if (abs(dst[0, i]) <= candidate[0, i] and abs(dst[1, i]) <= candidate[1, i]
                        and abs(dst[2, i]) <= candidate[2, i]
                        and (dst[0, i] != 0.0 or dst[1, i] != 0.0 or dst[2, i] != 0.0)):  # exact zeros stay
                    _recompute_unit(M[p], WT, b, mu, row, slope_on, slope_off, n_roundings, dst, i)
    return out


@njit(cache=True, inline="always")
def _add_terms(src, dst, WT, flips, coefs, q, n_flip, n_next):
    """``dst = src + sum of coefs[q'] WT[flips[q']]`` for up to four terms from q on, added one after
    the other (the order of ``child_maps``'s separate passes, so the same roundings)."""
    m = min(n_flip - q, 4)
    if m == 0:
        for i in range(n_next):
            dst[i] = src[i]
    elif m == 1:
        wa = WT[flips[q]]
        ca = coefs[q]
        for i in range(n_next):
            dst[i] = src[i] + ca * wa[i]
    elif m == 2:
        wa, wb = WT[flips[q]], WT[flips[q + 1]]
        ca, cb = coefs[q], coefs[q + 1]
        for i in range(n_next):
            dst[i] = (src[i] + ca * wa[i]) + cb * wb[i]
    elif m == 3:
        wa, wb, wc = WT[flips[q]], WT[flips[q + 1]], WT[flips[q + 2]]
        ca, cb, cc = coefs[q], coefs[q + 1], coefs[q + 2]
        for i in range(n_next):
            dst[i] = ((src[i] + ca * wa[i]) + cb * wb[i]) + cc * wc[i]
    else:
        wa, wb, wc, wd = WT[flips[q]], WT[flips[q + 1]], WT[flips[q + 2]], WT[flips[q + 3]]
        ca, cb, cc, cd = coefs[q], coefs[q + 1], coefs[q + 2], coefs[q + 3]
        for i in range(n_next):
            dst[i] = (((src[i] + ca * wa[i]) + cb * wb[i]) + cc * wc[i]) + cd * wd[i]

