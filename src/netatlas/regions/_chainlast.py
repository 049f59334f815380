"""The chain path's last hidden level in one compiled pass over a chunk of its faces (NOTE [last hidden
level] below), for a narrow output layer (``_chain.SMALL_PRODUCT``): what ``_chain._chain_level`` does for
these faces with the separate kernels, in the same order and with the same arithmetic, so its results are
bit for bit theirs."""

from __future__ import annotations

import numpy as np
from numba import njit

from netatlas.regions._chainkernels import child_map_scratch, child_maps, narrow_next_maps
from netatlas.regions._kernels import _grow1, _grow2, split_faces

__all__ = ["last_level"]

# NOTE [last hidden level]
# The faces of the last hidden layer (the children of a chunk of the layer before) have maps of n units each
# (6 KB on a 256-wide layer), each read three times after it is written: by the split, by the output layer's
# product, by the children's rank-1 output maps. Made a batch of faces at a time (``batch``, so that they stay
# in the L2 cache between these passes) inside one compiled call, the chunk's faces cost no pass through
# memory and no Python per chunk of the last level. Each step is the kernel the separate path calls
# (``fused_child_maps``'s ``child_maps``, ``split_faces``, ``narrow_next_maps``) on the same inputs: a face's maps
# chain from its previous sibling's across batches as across the chunk (row 0 of a batch's maps is the face
# before it), and the output maps of the regions break their chains where ``_chain_level``'s chunks of
# ``out_chunk`` regions would.


@njit(cache=True)
def _grow3(a, need):
    if need <= a.shape[0]:
        return a
    out = np.empty((max(need, 2 * a.shape[0]), a.shape[1], a.shape[2]), a.dtype)
    out[: a.shape[0]] = a
    return out


@njit(cache=True)
def last_level(xy, off, lab, G, M, WT, cparent, cbits, ref_bits, slope_on, slope_off, c_start, b, mu, candidate,
               n_roundings, cut_off, cut_units, unit_base, tol, diam, out_on, out_off, W_out, b_out, WT_out, mu_out,
               candidate_out, n_roundings_out, out_chunk, batch, rxy, rlab, rcounts, rbits, rmaps, n_vert, n_regions):
    """The regions inside the chunk's faces (polygons ``xy``/``off``/``lab``: the children ``c_start ..`` of the
    layer before, whose maps ``fused_child_maps(G, M, WT, cparent, cbits, ref_bits, slope_on, slope_off,
    c_start, ..., b, mu, candidate, n_roundings, cut_off, cut_units)`` makes) split by the last hidden layer
    (``split_faces(..., unit_base, tol, diam)``; its slopes ``out_on``/``out_off``), with their output maps
    (``narrow_next_maps`` with ``W_out`` (n_out, n), ``b_out``, then ``fused_child_maps`` with ``WT_out`` and
    the output layer's vanishing bounds). They are written after the first ``n_vert`` vertices and ``n_regions``
    regions of the sink's arrays (``_sink.GrowingRows.reserve``): vertices ``rxy``/``rlab``, vertex counts
    ``rcounts``, bits of the last hidden layer ``rbits`` (R, ceil(n / 8)), output maps ``rmaps`` (R, 3, n_out),
    each grown (doubling) when full. Returns those arrays, the chunk's face of each new region, and the new
    numbers of vertices and regions."""
    n_faces = off.shape[0] - 1
    n = WT.shape[1]
    maps = np.empty((batch + 1, 3, n))  # row 0: the maps of the face before the batch (its chain goes on)
    scratch = child_map_scratch(M.shape[2], cbits.shape[1])
    scratch_out = child_map_scratch(n, (n + 7) // 8)
    rparent = np.empty(3 * n_faces + 16, np.int64)
    first_region = n_regions
    for f0 in range(0, n_faces, batch):
        f1 = min(f0 + batch, n_faces)
        nb = f1 - f0
        child_maps(G, M, WT, cparent, cbits, ref_bits, slope_on, slope_off, c_start + f0, nb, maps, 1, f0 > 0,
                   1 << 62, 1, b, mu, candidate, n_roundings, cut_off, cut_units, scratch)
        face_maps = maps[1:nb + 1]
        v0, v1 = off[f0], off[f1]
        cxy, coff, clab, cpar, cb, c_cut_off, c_cut_units = split_faces(xy[v0:v1], off[f0:f1 + 1] - v0, lab[v0:v1],
                                                                        face_maps, unit_base, tol, diam)
        nc = cpar.shape[0]
        first = np.empty(nb, np.int64)  # each face's first child: its reference pattern (every face has one)
        for c in range(nc - 1, -1, -1):
            first[cpar[c]] = c
        ref_out = np.empty((nb, cb.shape[1]), np.uint8)
        for f in range(nb):
            ref_out[f] = cb[first[f]]
        G_out = narrow_next_maps(face_maps, ref_out, out_on, out_off, W_out, b_out)
        rparent = _grow1(rparent, n_regions - first_region + nc)
        rcounts = _grow1(rcounts, n_regions + nc)
        rbits = _grow2(rbits, n_regions + nc)
        rmaps = _grow3(rmaps, n_regions + nc)
        rxy = _grow2(rxy, n_vert + cxy.shape[0])
        rlab = _grow1(rlab, n_vert + cxy.shape[0])
        child_maps(G_out, face_maps, WT_out, cpar, cb, ref_out, out_on, out_off, 0, nc, rmaps, n_regions, False,
                   out_chunk, n_regions - first_region, b_out, mu_out, candidate_out, n_roundings_out, c_cut_off,
                   c_cut_units, scratch_out)
        for c in range(nc):
            r = n_regions + c
            rparent[r - first_region] = f0 + cpar[c]
            rbits[r] = cb[c]
            rcounts[r] = coff[c + 1] - coff[c]
        rxy[n_vert:n_vert + cxy.shape[0]] = cxy
        rlab[n_vert:n_vert + cxy.shape[0]] = clab
        n_regions += nc
        n_vert += cxy.shape[0]
        maps[0] = maps[nb]
    return rxy, rlab, rcounts, rbits, rmaps, rparent[:n_regions - first_region], n_vert, n_regions
