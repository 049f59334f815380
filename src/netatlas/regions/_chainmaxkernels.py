"""Compiled (numba) kernel of the chain path's ``Max`` over its outputs (``_chainmax``): the arg-max split of
``_maxkernels.split_faces_max``, on each face's few candidates instead of every window entry.

# NOTE [max candidates]
On a face with vertices V, entry j of a window takes values in ``[lo_j, hi_j]`` (its min and max over V:
affine maps are extreme at vertices). Let ``L = max_j lo_j``. An entry with ``hi_j < L - margin`` is below
entry ``argmax lo`` by more than ``margin`` everywhere on the face, so ``split_faces_max`` never keeps it, and
it never decides another entry's fate there either:

- ``_maxkernels._winners``'s exact pass kills an entry q when some entry p still alive beats q (``z_p - z_q
  >= -t`` at every vertex of the piece, ``t = tol * diam * |grad(z_p - z_q)|``). Start from ``argmax lo``
  (or, if the cheap pass dropped it, from the centre's best, which beats it): each entry that kills the
  previous one has its minimum at most ``t + delta`` lower, and the chain of killers runs through at most k
  entries (their positions increase) to one alive when q is checked. So with ``margin > (k + 2)(t_max +
  delta)`` (``delta``: the round-off of evaluating a difference at a vertex, and of the pieces' vertices
  that clipping computes), an entry that low is beaten by an alive entry at its check (it dies), and every
  entry it beats is as low (dies too, by the same chain): the entries kept and every decision about them
  are those of the full row. The cheap pass's best (the first largest value at the piece's centroid, which
  lies in the face) is a candidate, so its tests on the candidates are the same too.
- The ties rule (``_chainmax``; ``_graphmaps._VanishingGraph.max_ties``) only matters for a pair with a
  candidate in it (a replaced low entry stays low). The margin also covers the test's reach (``ratio (mu_p
  + mu_q)`` per row), so both entries of such a pair are candidates: the pairs of candidates are tested
  here, by the same test as ``_maxkernels.tie_candidates``, and a face with one is left to the caller
  (``tied``), which splits it as before, with the tied maps and every entry.

So the children, their arg-max positions (in the full row) and their edges are those of ``split_faces_max``
bit for bit: the candidates keep their order in the row (the first of equal entries still wins) and are
clipped against each other in the same order. The margin takes face-independent bounds of the entries' |a|,
|b|, |c| (twice the magnitude bound mu of NOTE [vanishing units] in ``_roundoff``; the caller puts each
window in its own units at extreme scales) and needs no squares (``|ga| + |gb| >= sqrt(ga^2 + gb^2)``); it
is about ``k * 1e-10`` of the entries' sizes: almost always one to three candidates of hundreds. ``lo, hi``
over the vertices are found only for the entries near the top on the face's bounding box (one value per
entry: a superset of the candidates, so the same candidates for a quarter of the work).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from netatlas.regions._kernels import _clip_piece, _disc, _emit_child, _grow1, _grow2  # shared with ReLU kernels
from netatlas.regions._maxkernels import _winners  # the arg-max rule itself, shared with the graph path
from netatlas.regions._roundoff import EPS

__all__ = ["split_faces_max_candidates"]


@njit(cache=True)
def _candidates(xy, s, nv, maps, f, row, contiguous, bound, tie_ratio, scale, depth, ga, gb, gc, lo, hi, near,
                cand_pos, cand_row):
    """The candidates of window ``row`` on face f (NOTE [max candidates]): their positions in the row
    (``cand_pos``, increasing) and input positions (``cand_row``); returns how many. ``bound`` (3,): the
    largest |a|, |b|, |c| of the window's entries on any face; ``ga, gb, gc, lo, hi, near`` (k,): scratch."""
    k = row.shape[0]
    if contiguous:  # a global max: a run of consecutive outputs, read in place
        r0 = row[0]
        a = maps[f, 0, r0:r0 + k]
        b = maps[f, 1, r0:r0 + k]
        c = maps[f, 2, r0:r0 + k]
        n = k
    else:
        n = 0
        for p in range(k):
            if row[p] >= 0:
                ga[n] = maps[f, 0, row[p]]
                gb[n] = maps[f, 1, row[p]]
                gc[n] = maps[f, 2, row[p]]
                cand_pos[n] = p  # (the present entries first, then the candidates among them)
                n += 1
        a, b, c = ga[:n], gb[:n], gc[:n]
    cu = 0.0
    cv = 0.0
    u_max = 0.0
    v_max = 0.0
    for i in range(s, s + nv):
        cu += xy[i, 0]
        cv += xy[i, 1]
        u_max = max(u_max, abs(xy[i, 0]))
        v_max = max(v_max, abs(xy[i, 1]))
    cu /= nv
    cv /= nv
    hu = 0.0
    hv = 0.0
    for i in range(s, s + nv):
        hu = max(hu, abs(xy[i, 0] - cu))
        hv = max(hv, abs(xy[i, 1] - cv))
    # t_max <= 2 scale (|a| + |b|)_max; delta: a few eps of |a u| + |b v| + |c| per rounding, the clipped
    # vertices' round-off growing with each nested clip of the face (at most ``depth``); an entry within
    # the ties test's reach of a candidate is a candidate too
    size = bound[0] * u_max + bound[1] * v_max + bound[2]
    t_max = 2.0 * scale * (bound[0] + bound[1])
    delta = (depth + 16) * 4.0 * EPS * size
    margin = (n + 2) * (t_max + delta) + 2.0 * tie_ratio * size
    # first the entries near the top on the face's bounding box (one value per entry, at the centroid, and
    # |a| hu + |b| hv either side: lo, hi widened), with 32 eps of slack for their own round-off: a
    # superset of the candidates, whose exact bounds (over the vertices) are then found and tested
    for j in range(n):  # (the loops over j are elementwise: the compiler vectorises them)
        z = a[j] * cu + b[j] * cv + c[j]
        r = abs(a[j]) * hu + abs(b[j]) * hv
        lo[j] = z - r
        hi[j] = z + r
    threshold = _largest(lo, n) - (margin + 32.0 * EPS * size)
    if not threshold > -np.inf:  # (a bound past float64's range: every entry is a candidate)
        threshold = -np.inf
    n_near = 0
    for j in range(n):
        if hi[j] >= threshold:
            near[n_near] = j
            n_near += 1
    floor = -np.inf
    u0, v0 = xy[s, 0], xy[s, 1]
    for q in range(n_near):
        j = near[q]
        z = a[j] * u0 + b[j] * v0 + c[j]
        lo_j = z
        hi_j = z
        for i in range(s + 1, s + nv):
            z = a[j] * xy[i, 0] + b[j] * xy[i, 1] + c[j]
            lo_j = min(lo_j, z)
            hi_j = max(hi_j, z)
        lo[j] = lo_j
        hi[j] = hi_j
        floor = max(floor, lo_j)
    threshold = floor - margin
    if not threshold > -np.inf:
        threshold = -np.inf
    m = 0
    for q in range(n_near):
        j = near[q]
        if hi[j] >= threshold:
            p = j if contiguous else cand_pos[j]
            cand_pos[m] = p
            cand_row[m] = row[p]
            m += 1
    if m == 0:  # only with values that are not numbers: every entry, as ``split_faces_max`` takes them
        for j in range(n):
            p = j if contiguous else cand_pos[j]
            cand_pos[m] = p
            cand_row[m] = row[p]
            m += 1
    return m


@njit(cache=True, inline="always")
def _largest(x, n):
    """max(x[:n]) by four running maxima (independent chains: four times the throughput of one)."""
    m0 = m1 = m2 = m3 = -np.inf
    j = 0
    while j + 4 <= n:
        m0 = max(m0, x[j])
        m1 = max(m1, x[j + 1])
        m2 = max(m2, x[j + 2])
        m3 = max(m3, x[j + 3])
        j += 4
    while j < n:
        m0 = max(m0, x[j])
        j += 1
    return max(max(m0, m1), max(m2, m3))


@njit(cache=True)
def _has_tie_candidate(maps, f, cand_row, n_cand, mu, ratio):
    """True when two candidates pass ``_maxkernels.tie_candidates``'s test on face f: ``|z_q - z_p| <= ratio
    (mu_q + mu_p)`` in all three rows, not already the same function."""
    for q in range(1, n_cand):
        iq = cand_row[q]
        for p in range(q):
            ip = cand_row[p]
            close = True
            differ = False
            for r in range(3):
                d = abs(maps[f, r, iq] - maps[f, r, ip])
                if not d <= ratio * (mu[r, iq] + mu[r, ip]):
                    close = False
                    break
                differ = differ or d > 0.0
            if close and differ:
                return True
    return False


@njit(cache=True)
def split_faces_max_candidates(xy, off, lab, maps, index, bounds, mu, ratio, unit_base, tol, diam):
    """``_maxkernels.split_faces_max(xy, off, lab, maps, index, unit_base, tol, diam)`` on each face's
    candidates (NOTE [max candidates]), with the tie candidates' test of ``_chainmax`` (``mu`` (3, n_in)
    magnitude bounds and ``ratio``; ``mu`` with no columns: no test). ``bounds`` (n_out, 3): the largest
    |a|, |b|, |c| of each window's entries on any face.

    Returns (cxy, coff, clab, cparent, cchoice, tied): the children of every face but the ``tied`` ones
    ((F,) bool: a candidate has a tie candidate there; those faces have no children here), as
    ``split_faces_max`` returns them.
    """
    n_faces = off.shape[0] - 1
    n_out, k = index.shape
    scale = tol * diam
    test_ties = mu.shape[1] > 0
    tie_ratio = ratio if test_ties else 0.0
    contiguous = np.zeros(n_out, np.bool_)
    for w in range(n_out):
        contiguous[w] = True
        for p in range(k):
            if index[w, p] != index[w, 0] + p:
                contiguous[w] = False
    depth = n_out * k
    tied = np.zeros(n_faces, np.bool_)
    cxy = np.empty((xy.shape[0] * 2 + 16, 2))
    clab = np.empty(xy.shape[0] * 2 + 16, np.int64)
    coff = np.zeros(n_faces * 2 + 17, np.int64)
    cparent = np.empty(n_faces * 2 + 16, np.int64)
    cchoice = np.empty((n_faces * 2 + 16, n_out), np.int16)
    face_choice = np.empty(n_out, np.int16)
    alive = np.empty(k, np.uint8)
    cutting = np.empty(n_out, np.int64)
    n_cand = np.empty(n_out, np.int64)
    cand_pos = np.empty((n_out, k), np.int64)
    cand_row = np.empty((n_out, k), np.int64)
    ga, gb, gc, lo, hi = np.empty(k), np.empty(k), np.empty(k), np.empty(k), np.empty(k)
    near = np.empty(k, np.int64)
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
        for w in range(n_out):
            n_cand[w] = _candidates(xy, s, nv, maps, f, index[w], contiguous[w], bounds[w], tie_ratio, scale, depth,
                                    ga, gb, gc, lo, hi, near, cand_pos[w], cand_row[w])
            if test_ties and _has_tie_candidate(maps, f, cand_row[w], n_cand[w], mu, ratio):
                tied[f] = True
                break
        if tied[f]:
            continue
        n_cut = 0
        cu, cv, R = _disc(xy, s, nv)
        for w in range(n_out):
            n_alive = 1
            if n_cand[w] > 1:
                n_alive = _winners(xy, s, nv, cu, cv, R, a, b, c, cand_row[w, :n_cand[w]], scale, alive)
            else:
                alive[0] = 1
            if n_alive == 1:
                for p in range(n_cand[w]):
                    if alive[p]:
                        face_choice[w] = cand_pos[w, p]
            else:
                cutting[n_cut] = w
                n_cut += 1
        # pieces of this face, refined window after window (``split_faces_max``'s loop on the candidates)
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
            kc = n_cand[w]
            row = cand_row[w, :kc]
            n_next = 0
            m_next = 0
            for pi in range(n_pieces):
                s0, n0 = ps_a[pi], pn_a[pi]
                pu, pv, pR = _disc(pool_a, s0, n0)
                n_alive = _winners(pool_a, s0, n0, pu, pv, pR, a, b, c, row, scale, alive)
                for i in range(kc):
                    if alive[i] == 0:
                        continue
                    # the cell of entry i: clip by z_i - z_j >= 0 for the other live entries
                    need = n0 + 2 * kc + 4
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
                        for j in range(kc):
                            if j == i or alive[j] == 0:
                                continue
                            ii, jj = row[i], row[j]
                            dga = a[ii] - a[jj]
                            dgb = b[ii] - b[jj]
                            dgc = c[ii] - c[jj]
                            t = scale * np.sqrt(dga * dga + dgb * dgb)
                            if m + 2 > zbuf.shape[0]:
                                zbuf = _grow1(zbuf, 2 * m + 4)
                            if t2.shape[0] < m + 4:
                                t2 = _grow2(t2, 2 * m + 4)
                                l2 = _grow1(l2, 2 * m + 4)
                            m = _clip_piece(t1, l1, 0, m, dga, dgb, dgc, t, unit_base + w, t2, l2, 0, zbuf)
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
                    pc_b[n_next, q] = cand_pos[w, i]
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
            cparent[:n_children].copy(), cchoice[:n_children].copy(), tied)
