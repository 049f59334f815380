"""A max over the outputs of a chain on the chain path: regioncam's global max pool (``nn.AdaptiveMaxPool1d(1)``
on the last layer, ``amax``) and any ``Max`` windows over the last layer's outputs.

The chain's finished faces have affine output maps (F, 3, m); a ``Max`` over them splits each face by
the arg-max's lines and its value on each child is the chosen entry's map. That is the graph path's last
step (``_maxkernels.split_faces_max``), on maps the chain kernels made, and on each face's few arg-max
candidates (``_chainmaxkernels``, NOTE [max candidates]: the same children): the same ties rule (entries
equal up to round-off tie exactly, the first wins: ``_graphmaps._VanishingGraph.max_ties``), the same
edge labels (the ``Max`` outputs numbered after all pattern columns), the same ``Partition`` fields
(``choices``, ``max_units_per_layer``, ``max_layer_names``).
"""

from __future__ import annotations

import dataclasses

import numpy as np
from numba import njit

from netatlas.nets import Max, Net
from netatlas.regions._chain import chain_partition, partition_chain
from netatlas.regions._chainmaxkernels import split_faces_max_candidates
from netatlas.regions._graph import _Unpacking
from netatlas.regions._graphmaps import CANDIDATE_SLACK, _VanishingGraph
from netatlas.regions._maxkernels import split_faces_max
from netatlas.regions._roundoff import EPS
from netatlas.regions._units import SAFE_EXPONENT

__all__ = ["max_tail", "chain_max_partition"]

#: Split each face by its few arg-max candidates (``_chainmaxkernels``, NOTE [max candidates]); False splits
#: every face by every window entry (``_maxkernels.split_faces_max``), e.g. to compare the two.
CANDIDATE_KERNEL = True
#: ``split_faces_max_candidates``'s ``mu`` when no entry can vanish (no ties test).
NO_BOUNDS = np.zeros((3, 0))


def max_tail(net):
    """(the net without its last node, that net's chain layers) when ``net`` is a chain (with at least one
    activation) followed by one ``Max`` over its outputs, else None."""
    last = net.nodes[-1]
    if not isinstance(last.op, Max) or last.inputs != (len(net.nodes) - 2,) or len(net.nodes) < 4:
        return None
    body = Net(net.nodes[:-1])
    if any(isinstance(net.nodes[i].op, Max) for i in body.nonlinear):
        return None
    layers = partition_chain(body)
    if layers is None or len(layers) < 2:
        return None
    return body, layers


def chain_max_partition(net, tail, plane, tol, limits=None, facts=None):
    """The partition of ``net`` (a chain then a ``Max``, ``tail = max_tail(net)``) by the chain kernels."""
    body, layers = tail
    max_node = len(net.nodes) - 1
    op = net.nodes[max_node].op
    index = op.index.numpy()
    n_out = index.shape[0]
    counts = [body.nodes[i].size for i in body.activations]
    base = sum(counts)  # the Max outputs' edge labels follow all pattern columns, as on the graph path

    sink = []
    if facts is None:
        from netatlas.regions._prepared import PreparedNet

        facts = PreparedNet(body)

    def finish(out, frame):
        sink.append(out)
        x_c, d1, d2, tol, diam = frame
        # the bounds depend on (net, frame) alone: kept for the latest frame (``facts`` is the body's)
        token = b"".join(a.tobytes() for a in (x_c, d1, d2))
        vanish, mu, ratio, window_bounds = facts.last(("max_vanishing",), token,
                                                      lambda: _max_vanishing(net, max_node, index, x_c, d1, d2))
        rows = np.arange(n_out)

        def add(xy, off, lab, pat, M):
            if CANDIDATE_KERNEL:
                cxy, coff, clab, cparent, cchoice = _split_on_candidates(xy, off, lab, pat, M)
            else:
                cxy, coff, clab, cparent, cchoice = _split_all_entries(xy, off, lab, pat, M)
            picked = index[rows, cchoice.astype(np.int64)]  # (C, n_out) the chosen input positions
            # (C, 3, n_out): the chosen entries' maps, gathered alone (not every parent's whole map first)
            values = M[cparent[:, None], :, picked].transpose(0, 2, 1)
            out.add(cxy, coff, clab, [p[cparent] for p in pat] + [cchoice], values)

        def tied_maps(M, pat, faces):
            """The graph path's ties rule (``max_ties``) on those faces: (maps, windows) for ``split_faces_max``."""
            states = [_Unpacking(p[faces], n) for p, n in zip(pat, counts, strict=True)]
            return vanish.max_ties(max_node - 1, M[faces], states, index)

        def _split_on_candidates(xy, off, lab, pat, M):
            # each face's few candidates (NOTE [max candidates] in _chainmaxkernels); faces where one of them
            # may tie with another entry up to round-off are split with the tied maps, by every entry
            if mu is None:  # no magnitude bound: the entries' own largest sizes, no ties test
                sizes = np.abs(M).max(axis=0)[:, np.where(index >= 0, index, 0)].max(axis=2).T
                bounds, E = _in_window_units(index, sizes, NO_BOUNDS)
            else:
                bounds, E = window_bounds
            maps, windows = (M, index) if E is None else _windows_scaled(M, index, E)
            children = split_faces_max_candidates(xy, off, lab, maps, windows, *bounds, ratio, base, tol, diam)
            tied = np.flatnonzero(children[-1])
            if not len(tied):
                return children[:-1]
            sub_xy, sub_off, sub_lab = _faces(xy, off, lab, tied)
            *rest, sub_parent, sub_choice = split_faces_max(sub_xy, sub_off, sub_lab, *tied_maps(M, pat, tied), base,
                                                           tol, diam)
            return _in_face_order([children[:-1], (*rest, tied[sub_parent], sub_choice)])

        def _split_all_entries(xy, off, lab, pat, M):
            # every face by every entry: the reference for the candidates' kernel (tests)
            maps, windows = M, index
            faces = np.flatnonzero(faces_with_tie_candidates(M, index, mu, ratio)) if mu is not None else []
            if len(faces):  # the graph path's ties rule on those faces, the others as they are
                tied, windows = tied_maps(M, pat, faces)
                maps = np.ascontiguousarray(M[:, :, np.where(index >= 0, index, 0)].reshape(len(M), 3, -1))
                maps[faces] = tied
            return split_faces_max(xy, off, lab, maps, windows, base, tol, diam)

        return add

    part = chain_partition(body, layers, plane, tol, limits, facts, finish)
    choices = sink[0].states[len(counts)].array()
    return dataclasses.replace(part, choices=(choices,), max_units_per_layer=(n_out,),
                               max_layer_names=(net.nodes[max_node].name,))


def _max_vanishing(net, max_node, index, x_c, d1, d2):
    """(the ``_VanishingGraph`` of ``net`` on the frame, the magnitude bound mu (3, n) of the ``Max``'s input
    or None, the tie ratio, and when mu is known ``_in_window_units``'s bounds from it): the candidates of
    ``max_ties`` (same bound and ratio), found without visiting every pair."""
    vanish = _VanishingGraph(net, x_c, d1, d2)
    if vanish.net is None:
        mu = window_bounds = None
    else:
        mu = np.ascontiguousarray(vanish._bound(max_node - 1)[0])
        # every |a|, |b|, |c| of a window's entries on every face is at most twice its largest mu (2x: the
        # round-off of mu and of the maps)
        window_bounds = _in_window_units(index, 2.0 * mu[:, np.where(index >= 0, index, 0)].max(axis=2).T, mu)
    return vanish, mu, CANDIDATE_SLACK * float(vanish.K[max_node - 1] + 1) * EPS, window_bounds


@njit(cache=True)
def faces_with_tie_candidates(M, index, mu, ratio):
    """(F,) bool: faces where ``_maxkernels.tie_candidates`` finds a pair (same test: ``|z_q - z_p| <=
    ratio (mu_q + mu_p)`` in all three rows, not already equal), found per window by sorting its entries
    by their constant row and comparing only entries within ``2 ratio max(mu)`` of each other there
    (n log n per window instead of n^2 pairs)."""
    F = M.shape[0]
    n_out, k = index.shape
    out = np.zeros(F, np.bool_)
    key = np.empty(k)
    pos = np.empty(k, np.int64)
    for f in range(F):
        for w in range(n_out):
            n = 0
            reach = 0.0
            for j in range(k):
                if index[w, j] >= 0:
                    pos[n] = index[w, j]
                    key[n] = M[f, 2, index[w, j]]
                    reach = max(reach, 2.0 * ratio * mu[2, index[w, j]])
                    n += 1
            order = np.argsort(key[:n])
            for a in range(n):
                ia = pos[order[a]]
                for b in range(a + 1, n):
                    ib = pos[order[b]]
                    if key[order[b]] - key[order[a]] > reach:
                        break
                    close = True
                    differ = False
                    for r in range(3):
                        d = abs(M[f, r, ib] - M[f, r, ia])
                        close = close and d <= ratio * (mu[r, ib] + mu[r, ia])
                        differ = differ or d > 0.0
                    if close and differ:
                        out[f] = True
                        break
                if out[f]:
                    break
            if out[f]:
                break
    return out


def _in_window_units(index, bounds, mu):
    """((bounds, mu) for ``split_faces_max_candidates``, the windows' exponents E (n_out,) or None). As given
    (E None) when every window's bound (``bounds`` (n_out, 3) >= its entries' |a|, |b|, |c|) is within
    2^+-SAFE_EXPONENT; else each window's entries are divided by 2^E, E its bound's exponent, in a per-window
    copy of the maps (``_windows_scaled``), as ``_units.windows_in_own_units`` does for the graph path: the
    same decisions (NOTE [scale-free partitions] in ``_units``), and no square overflows or underflows."""
    big = bounds.max(axis=1)
    E = np.where(big > 0, np.frexp(big)[1], 0).astype(np.int64)
    if (np.abs(E) <= SAFE_EXPONENT).all():
        return (np.ascontiguousarray(bounds), mu), None
    if mu.shape[1]:
        n_out, k = index.shape
        mu = np.ldexp(mu[:, np.where(index >= 0, index, 0)], -E[None, :, None]).reshape(3, n_out * k)
    return (np.ascontiguousarray(np.ldexp(bounds, -E[:, None])), np.ascontiguousarray(mu)), E


def _windows_scaled(M, index, E):
    """(maps (F, 3, n_out * k), windows (n_out, k)): window w's entries of M (F, 3, n_in) times 2^-E[w]."""
    n_out, k = index.shape
    present = index >= 0
    maps = np.ldexp(M[:, :, np.where(present, index, 0)], -E[None, None, :, None]).reshape(len(M), 3, n_out * k)
    return np.ascontiguousarray(maps), np.where(present, np.arange(n_out * k).reshape(n_out, k), -1)


def _faces(xy, off, lab, faces):
    """(xy, off, lab) of the faces ``faces`` (increasing) alone."""
    counts = np.diff(off)[faces]
    vertices = _ranges(off[faces], counts)
    return xy[vertices], np.concatenate([[0], np.cumsum(counts)]), lab[vertices]


def _in_face_order(parts):
    """Children of disjoint sets of faces (each (xy, off, lab, parent, choice), parents increasing) as one
    set, their parents increasing (each face's children in their order)."""
    counts = np.concatenate([np.diff(p[1]) for p in parts])
    starts = np.cumsum(counts) - counts  # each child's first vertex in the joined vertices
    parent = np.concatenate([p[3] for p in parts])
    order = np.argsort(parent, kind="stable")
    vertices = _ranges(starts[order], counts[order])
    xy, lab = np.concatenate([p[0] for p in parts]), np.concatenate([p[2] for p in parts])
    return (xy[vertices], np.concatenate([[0], np.cumsum(counts[order])]), lab[vertices], parent[order],
            np.concatenate([p[4] for p in parts])[order])


def _ranges(starts, counts):
    """The indices ``start, ..., start + count - 1`` of every (start, count), one after the other."""
    ends = np.cumsum(counts)
    return np.repeat(starts - ends + counts, counts) + np.arange(ends[-1] if len(ends) else 0)
