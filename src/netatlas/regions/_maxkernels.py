"""Compiled (numba) kernels of ``Max`` nodes: convex faces split by the arg-max of max windows, and the
arg-max crossings and first maxima along a line (``along_line``).

Conventions are those of ``_kernels`` (face-local vertices, edge labels, (F, 3, n) affine maps,
``tol * diam`` bands). A ``Max`` node has windows ``index`` (n_out, k), rows of input positions in
increasing order padded with -1. On a face, window w's inputs are affine functions z_p; the face is
cut into the cells ``{z_i >= z_j for all j}`` of its upper envelope.

Ties: entry i *beats* entry j on a piece when ``z_i - z_j >= -t`` at every vertex and either
``z_i - z_j > t`` at some vertex or ``i`` comes first in the row (``t`` is the band of the
difference). So two entries that are the same affine function on the piece (duplicate channels)
never split it and the first (lowest input index) wins; an entry that is the max only on a line or
at a point gets no region. The cells of the entries nobody beats tile the piece; every other
entry is dominated by one of them, so clipping against those entries alone is exact.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from netatlas.regions._kernels import _clip_piece, _disc, _emit_child, _grow1, _grow2  # shared with ReLU kernels

__all__ = ["line_max_crossings", "line_first_max", "split_faces_max", "tie_candidates"]


@njit(cache=True)
def tie_candidates(M, index, mu, ratio):
    """Window entry pairs that may tie on a face: (n_pairs, F, n_out) bool, pairs (p, q), p < q, in
    the order q = 1.., p = 0..q-1; True where ``|z_q - z_p| <= ratio (mu_q + mu_p)`` in all three
    rows of the maps M (F, 3, n_in) and the two are not already the same function (``mu`` (3, n_in):
    magnitude bounds; ``index`` (n_out, k) windows padded with -1)."""
    F = M.shape[0]
    n_out, k = index.shape
    out = np.zeros((k * (k - 1) // 2, F, n_out), np.bool_)
    for f in range(F):
        for w in range(n_out):
            pair = 0
            for q in range(1, k):
                iq = index[w, q]
                for p in range(q):
                    ip = index[w, p]
                    if iq >= 0 and ip >= 0:
                        close = True
                        differ = False
                        for r in range(3):
                            d = abs(M[f, r, iq] - M[f, r, ip])
                            if not d <= ratio * (mu[r, iq] + mu[r, ip]):
                                close = False
                                break  # most pairs differ in their first row already
                            differ = differ or d > 0.0
                        out[pair, f, w] = close and differ
                    pair += 1
    return out


@njit(cache=True)
def _winners(pxy, s, n, cu, cv, R, a, b, c, row, scale, alive):
    """Mark in ``alive`` (k,) the row entries nobody beats on the piece (enclosing disc: centre
    (cu, cv), radius R); return how many."""
    k = row.shape[0]
    best = -1
    zbest = -np.inf
    for p in range(k):
        alive[p] = 0
        if row[p] < 0:
            continue
        z = a[row[p]] * cu + b[row[p]] * cv + c[row[p]]
        if z > zbest:
            zbest = z
            best = p
    # cheap pass: entries the centre's best beats on the whole enclosing disc
    n_alive = 0
    for p in range(k):
        if row[p] < 0:
            continue
        if p == best:
            alive[p] = 1
            n_alive += 1
            continue
        i, j = row[best], row[p]
        ga = a[i] - a[j]
        gb = b[i] - b[j]
        d = ga * cu + gb * cv + c[i] - c[j]
        g = np.sqrt(ga * ga + gb * gb)
        if not d > (R + scale) * g:
            alive[p] = 1
            n_alive += 1
    if n_alive == 1:
        return 1
    # exact pass on the vertices among the remaining entries
    for q in range(k):
        if alive[q] == 0:
            continue
        for p in range(k):
            if p == q or alive[p] == 0 or row[p] < 0:
                continue
            i, j = row[p], row[q]
            ga = a[i] - a[j]
            gb = b[i] - b[j]
            gc = c[i] - c[j]
            t = scale * np.sqrt(ga * ga + gb * gb)
            above = False
            below = False
            for v in range(s, s + n):
                d = ga * pxy[v, 0] + gb * pxy[v, 1] + gc
                if d > t:
                    above = True
                elif d < -t:
                    below = True
            if not below and (above or p < q):  # p beats q
                alive[q] = 0
                n_alive -= 1
                break
    return n_alive


@njit(cache=True, inline="always")
def _sole_winner(cu, cv, R, a, b, c, index, w, scale):
    """The entry of window w that ``_winners`` leaves alone when its cheap pass settles the window (the
    centre's best beats every other on the whole enclosing disc, or is the same function as it: the best
    is the first such copy, which the exact pass lets beat the others), or -1: the same arithmetic, so
    the same answer when it answers."""
    k = index.shape[1]
    best = -1
    zbest = -np.inf
    for p in range(k):
        ip = index[w, p]
        if ip < 0:
            continue
        z = a[ip] * cu + b[ip] * cv + c[ip]
        if z > zbest:
            zbest = z
            best = p
    if best < 0:
        return -1
    i = index[w, best]
    for p in range(k):
        j = index[w, p]
        if j < 0 or p == best:
            continue
        if a[j] == a[i] and b[j] == b[i] and c[j] == c[i]:
            continue  # the same function (units off on the face: zero maps): the exact pass gives it to the best
        ga = a[i] - a[j]
        gb = b[i] - b[j]
        d = ga * cu + gb * cv + c[i] - c[j]
        if not d > (R + scale) * np.sqrt(ga * ga + gb * gb):
            return -1
    return best


@njit(cache=True)
def split_faces_max(xy, off, lab, maps, index, unit_base, tol, diam):
    """Split every face f by the arg-max of every window of ``index`` (n_out, k) applied to the
    affine functions ``maps[f]`` (3, n_in).

    Returns (cxy, coff, clab, cparent, cchoice): the children's polygons (edges on a boundary
    between two cells of window w get label ``unit_base + w``), each child's parent face, and
    (C, n_out) int16 the position in its row of each window's arg-max on the child.
    """
    n_faces = off.shape[0] - 1
    n_out, k = index.shape
    scale = tol * diam
    cxy = np.empty((xy.shape[0] * 2 + 16, 2))
    clab = np.empty(xy.shape[0] * 2 + 16, np.int64)
    coff = np.zeros(n_faces * 2 + 17, np.int64)
    cparent = np.empty(n_faces * 2 + 16, np.int64)
    cchoice = np.empty((n_faces * 2 + 16, n_out), np.int16)
    face_choice = np.empty(n_out, np.int16)
    alive = np.empty(k, np.uint8)
    cutting = np.empty(n_out, np.int64)
    zbuf = np.empty(64)
    # per-face piece pools (ping-pong: current pieces, next pieces) and clipping scratch
    pool_a = np.empty((256, 2))
    plab_a = np.empty(256, np.int64)
    pool_b = np.empty((256, 2))
    plab_b = np.empty(256, np.int64)
    ps_a = np.empty(16, np.int64)
    pn_a = np.empty(16, np.int64)
    pc_a = np.empty((16, 1), np.int16)
    ps_b = np.empty(16, np.int64)
    pn_b = np.empty(16, np.int64)
    pc_b = np.empty((16, 1), np.int16)
    t1 = np.empty((64, 2))
    l1 = np.empty(64, np.int64)
    t2 = np.empty((64, 2))
    l2 = np.empty(64, np.int64)
    n_children = 0
    n_vert = 0
    for f in range(n_faces):
        s, e = off[f], off[f + 1]
        nv = e - s
        a, b, c = maps[f, 0], maps[f, 1], maps[f, 2]
        n_cut = 0
        cu, cv, R = _disc(xy, s, nv)
        for w in range(n_out):
            best = _sole_winner(cu, cv, R, a, b, c, index, w, scale)
            if best >= 0:  # most windows: _winners's cheap pass alone, without its bookkeeping
                face_choice[w] = best
                continue
            n_alive = _winners(xy, s, nv, cu, cv, R, a, b, c, index[w], scale, alive)
            if n_alive == 1:
                for p in range(k):
                    if alive[p]:
                        face_choice[w] = p
            else:
                cutting[n_cut] = w
                n_cut += 1
        # pieces of this face, refined window after window
        if pool_a.shape[0] < nv:
            pool_a = _grow2(pool_a, nv)
            plab_a = _grow1(plab_a, nv)
        for i in range(nv):
            pool_a[i, 0] = xy[s + i, 0]
            pool_a[i, 1] = xy[s + i, 1]
            plab_a[i] = lab[s + i]
        if pc_a.shape[1] < n_cut:
            pc_a = np.empty((pc_a.shape[0], n_cut), np.int16)
            pc_b = np.empty((pc_b.shape[0], n_cut), np.int16)
        n_pieces = 1
        ps_a[0] = 0
        pn_a[0] = nv
        for q in range(n_cut):
            w = cutting[q]
            row = index[w]
            n_next = 0
            m_next = 0
            for pi in range(n_pieces):
                s0, n0 = ps_a[pi], pn_a[pi]
                pu, pv, pR = _disc(pool_a, s0, n0)
                best = _sole_winner(pu, pv, pR, a, b, c, index, w, scale)
                if best >= 0:
                    for i in range(k):
                        alive[i] = 1 if i == best else 0
                    n_alive = 1
                else:
                    n_alive = _winners(pool_a, s0, n0, pu, pv, pR, a, b, c, row, scale, alive)
                for i in range(k):
                    if alive[i] == 0:
                        continue
                    # the cell of entry i: clip by z_i - z_j >= 0 for the other live entries
                    need = n0 + 2 * k + 4
                    if t1.shape[0] < need:
                        t1 = _grow2(t1, need)
                        l1 = _grow1(l1, need)
                        t2 = _grow2(t2, need)
                        l2 = _grow1(l2, need)
                        zbuf = _grow1(zbuf, need)
                    for v in range(n0):
                        t1[v, 0] = pool_a[s0 + v, 0]
                        t1[v, 1] = pool_a[s0 + v, 1]
                        l1[v] = plab_a[s0 + v]
                    m = n0
                    if n_alive > 1:
                        for j in range(k):
                            if j == i or alive[j] == 0:
                                continue
                            ii, jj = row[i], row[j]
                            ga = a[ii] - a[jj]
                            gb = b[ii] - b[jj]
                            gc = c[ii] - c[jj]
                            t = scale * np.sqrt(ga * ga + gb * gb)
                            if m + 2 > zbuf.shape[0]:
                                zbuf = _grow1(zbuf, 2 * m + 4)
                            if t2.shape[0] < m + 4:
                                t2 = _grow2(t2, 2 * m + 4)
                                l2 = _grow1(l2, 2 * m + 4)
                            m = _clip_piece(t1, l1, 0, m, ga, gb, gc, t, unit_base + w, t2, l2, 0, zbuf)
                            if m == 0:
                                break
                            t1, t2 = t2, t1
                            l1, l2 = l2, l1
                    if m < 3:
                        continue
                    # append the cell as a next piece
                    if pool_b.shape[0] < m_next + m:
                        pool_b = _grow2(pool_b, m_next + m)
                        plab_b = _grow1(plab_b, m_next + m)
                    if ps_b.shape[0] < n_next + 1:
                        ps_b = _grow1(ps_b, n_next + 1)
                        pn_b = _grow1(pn_b, n_next + 1)
                        pc_b = _grow2(pc_b, n_next + 1)
                    for v in range(m):
                        pool_b[m_next + v, 0] = t1[v, 0]
                        pool_b[m_next + v, 1] = t1[v, 1]
                        plab_b[m_next + v] = l1[v]
                    ps_b[n_next] = m_next
                    pn_b[n_next] = m
                    for qq in range(q):
                        pc_b[n_next, qq] = pc_a[pi, qq]
                    pc_b[n_next, q] = i
                    m_next += m
                    n_next += 1
            pool_a, pool_b = pool_b, pool_a
            plab_a, plab_b = plab_b, plab_a
            ps_a, ps_b = ps_b, ps_a
            pn_a, pn_b = pn_b, pn_a
            pc_a, pc_b = pc_b, pc_a
            n_pieces = n_next
        # emit the pieces
        for pi in range(n_pieces):
            cxy, clab, coff, cparent, cchoice, n_vert = _emit_child(pool_a, plab_a, ps_a[pi], pn_a[pi], f, cxy, clab,
                                                                    coff, cparent, cchoice, n_vert, n_children)
            cchoice[n_children] = face_choice
            for q in range(n_cut):
                cchoice[n_children, cutting[q]] = pc_a[pi, q]
            n_children += 1
    return (cxy[:n_vert].copy(), coff[: n_children + 1].copy(), clab[:n_vert].copy(),
            cparent[:n_children].copy(), cchoice[:n_children].copy())


# -- along a line (``_lines.along_line``): pieces [t_i, t_i+1] of [0, 1], each entry z = a t + c ----------------
@njit(cache=True)
def line_max_crossings(edges, a, c, index, tolerance):
    """Where two entries of a window cross inside a piece: the t (unordered, each crossing once per
    ordered pair) with ``z_i - z_j`` beyond ``tolerance |a_i - a_j|`` of zero, of opposite signs, at
    the piece's two ends. ``edges`` (P + 1,), ``a``, ``c`` (P, n_in), ``index`` (n_out, k) padded with -1.
    Bit for bit the NumPy form it replaced (kept in tests/regions/test_regions_line_max.py)."""
    P = edges.shape[0] - 1
    n_out, k = index.shape
    out = np.empty(64)
    n = 0
    for p in range(P):
        lo, hi = edges[p], edges[p + 1]
        for w in range(n_out):
            for i in range(k):
                ii = index[w, i]
                if ii < 0:
                    continue
                for j in range(k):
                    jj = index[w, j]
                    if jj < 0:
                        continue
                    dA = a[p, ii] - a[p, jj]
                    dC = c[p, ii] - c[p, jj]
                    da = dA * lo + dC
                    db = dA * hi + dC
                    tol = tolerance * abs(dA)
                    if (da > tol and db < -tol) or (da < -tol and db > tol):
                        if n == out.shape[0]:
                            grown = np.empty(2 * n)
                            grown[:n] = out
                            out = grown
                        out[n] = -dC / dA
                        n += 1
    return out[:n].copy()


@njit(cache=True)
def line_first_max(a, c, parent, mids, index, tolerance):
    """(Q, n_out) int64: per piece q (maps of piece ``parent[q]`` evaluated at ``mids[q]``), the
    position of the first entry within round-off (or ``tolerance`` times the slope difference) of each
    window's max (absent entries: z = -inf, slope of position 0); bit for bit the NumPy form it replaced
    (kept in tests/regions/test_regions_line_max.py)."""
    Q = parent.shape[0]
    n_out, k = index.shape
    eps8 = 8 * np.finfo(np.float64).eps
    out = np.zeros((Q, n_out), np.int64)
    z = np.empty(k)
    slope = np.empty(k)
    for q in range(Q):
        p = parent[q]
        m = mids[q]
        for w in range(n_out):
            best = -np.inf
            arg = 0
            nan = False
            for i in range(k):
                ii = index[w, i]
                jj = ii if ii >= 0 else 0
                slope[i] = a[p, jj]
                z[i] = a[p, jj] * m + c[p, jj] if ii >= 0 else -np.inf
                if nan:
                    continue
                if z[i] != z[i]:  # NumPy's max and argmax stop at the first NaN
                    nan = True
                    best = z[i]
                    arg = i
                elif z[i] > best:
                    best = z[i]
                    arg = i
            at_best = slope[arg]
            for i in range(k):
                if index[w, i] < 0:
                    continue
                band = tolerance * abs(slope[i] - at_best) + eps8 * (abs(best) + abs(z[i]))
                if z[i] >= best - band:
                    out[q, w] = i
                    break
    return out
