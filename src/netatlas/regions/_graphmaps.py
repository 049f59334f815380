"""Per-face affine maps of a graph's nodes (gated forward passes in chunks) and the snapping of
vanishing units on them (NOTE [vanishing units] in ``_roundoff``): shared by the partition's graph path
and ``along_line``, so neither imports the other."""

from __future__ import annotations

import numpy as np
from numba import njit

from netatlas._errors import NetatlasError
from netatlas.regions._affine import (
    carried_nodes,
    gate_from_state,
    gated_maps,
    gated_values,
    magnitude_gate,
    magnitude_net,
    widest_gate,
)
from netatlas.regions._maxkernels import tie_candidates
from netatlas.regions._roundoff import EPS, roundings, snap_vanishing, vanishing_tolerance
from netatlas.regions._units import in_own_units, windows_in_own_units

__all__ = ["_VanishingGraph", "_maps_chunked", "faces_with_small_columns", "gated_columns", "small_units"]

#: Candidates for the vanishing rule are the units within CANDIDATE_SLACK times the largest tolerance
#: it can grant (K eps mu, as S <= mu): 2 covers the round-off of mu and S themselves.
CANDIDATE_SLACK = 2.0


class _VanishingGraph:
    """Snaps vanishing units of a graph's per-face maps to zero (``_roundoff``, NOTE [vanishing
    units]): candidates against the face-independent magnitude bound, then the magnitudes S of the
    candidates' faces by a gated pass of :func:`magnitude_net` (absolute slopes and constants, the
    same ``Max`` selections). ``states`` are as :func:`_maps_chunked` takes them (bits unpacked)."""

    def __init__(self, net, x_c, d1, d2):
        self.net = magnitude_net(net)
        self.ops = [net.nodes[i].op for i in net.nonlinear]
        self.K = roundings(net)
        self.inputs = np.abs(x_c), np.abs(d1), np.abs(d2)
        self.widest = [widest_gate(op, net.nodes[i].size) for op, i in zip(self.ops, net.nonlinear, strict=True)]
        self._bounds: dict[int, np.ndarray] = {}
        self._known: dict = {}  # the magnitude pass's values that later nodes read, where the next pass starts

    def _bound(self, node_index):
        """mu (1, 3, n) >= S on every face. Asked node after node, the magnitude pass goes on from the
        values the last one left (one pass through the net in all, not one from the input per node)."""
        if node_index not in self._bounds:
            values = gated_values(self.net, [node_index], *self.inputs, self.widest.__getitem__, self._known)
            self._bounds[node_index] = np.ascontiguousarray(values[node_index].numpy())
            self._known = {j: values[j] for j in carried_nodes(self.net, node_index + 1) if j in values}
        return self._bounds[node_index]

    def max_ties(self, node_index, M, states, index):
        """(maps, index) to split the faces of M (F, 3, n_in) by the ``Max`` windows ``index``
        (n_out, k): where two entries of a window agree on a face up to round-off (their difference
        vanishes, magnitude S_i + S_j), the later is replaced by an exact copy of the earlier in a
        per-window copy of the maps, so they tie exactly and the first wins. (M, index) as they are
        when no window has such a pair."""
        if self.net is None:
            return windows_in_own_units(M, index)
        present = index >= 0
        n_out, k = index.shape
        # the rule can only tie entries within (K + 1) eps (S_i + S_j) <= (K + 1) eps (mu_i + mu_j); 2x for
        # the round-off of mu and S themselves (maps computed directly: no update residue to allow for)
        ratio = CANDIDATE_SLACK * float(self.K[node_index] + 1) * EPS
        candidates = tie_candidates(M, index, np.ascontiguousarray(self._bound(node_index)[0]), ratio)
        order = [(p, q) for q in range(1, k) for p in range(q)]
        pairs = {pq: c for pq, c in zip(order, candidates, strict=True) if c.any()}
        if not pairs:
            return windows_in_own_units(M, index)
        idx = np.where(present, index, 0)
        W = M[:, :, idx]
        faces = np.flatnonzero(np.any([c.any(axis=1) for c in pairs.values()], axis=0))
        S = _maps_chunked(self.net, node_index, *self.inputs, [st[faces] for st in states], self.ops, len(faces),
                          magnitude=True)[:, :, idx]
        Wf, done = W[faces], np.zeros((len(faces), n_out, k), bool)
        for (p, q) in sorted(pairs, key=lambda pq: (pq[1], pq[0])):  # entry p is final before any q > p
            tie = pairs[p, q][faces] & ~done[..., q]
            tie &= (np.abs(Wf[..., q] - Wf[..., p]) <= vanishing_tolerance(S[..., q] + S[..., p],
                                                                          float(self.K[node_index] + 1))).all(axis=1)
            Wf[..., q] = np.where(tie[:, None, :], Wf[..., p], Wf[..., q])
            done[..., q] |= tie
        W[faces] = Wf
        windows = np.where(present, np.arange(n_out * k).reshape(n_out, k), -1)
        return windows_in_own_units(np.ascontiguousarray(W.reshape(len(W), 3, n_out * k)), windows)

    def shifted(self, node_index, M, states, breakpoints, columns=None):
        """The maps (F, 3, n * len(breakpoints)) of ``z - b`` for every breakpoint b (in order), each
        unit with ``z - b`` vanishing up to round-off set to exact zero: such a unit equals b on the
        whole face, so both sides of the kink agree and it does not cut the face (bit 0); each unit
        in its own units where its size is extreme (``_units.in_own_units``). May be ``M`` itself (a
        single breakpoint 0 and nothing to snap): read it, do not write it. ``columns``: only these
        units of M (n of them)."""
        if not breakpoints:
            return np.zeros((*M.shape[:2], 0))
        if columns is not None:
            M = np.ascontiguousarray(M[:, :, columns])
        parts = [M - np.array([0.0, 0.0, bp])[None, :, None] if bp else M for bp in breakpoints]
        parts = self._snap(node_index, parts, states, breakpoints, columns)
        return in_own_units(parts[0] if len(parts) == 1 else np.ascontiguousarray(np.concatenate(parts, 2)))

    def _snap(self, node_index, parts, states, breakpoints, columns=None):
        """``parts`` with their vanishing units snapped; a part that needs it is copied first (a part may
        be the caller's maps); ``columns``: the node's units the parts hold (None: all)."""
        if self.net is None:
            return parts
        mu = self._bound(node_index)
        if columns is not None:
            mu = np.ascontiguousarray(mu[:, :, columns])
        candidates = []
        for part, bp in zip(parts, breakpoints, strict=True):
            mu_b = mu + np.array([0.0, 0.0, abs(bp)])[None, :, None]
            # only a unit within K eps S <= K eps mu can be snapped (2x for the round-off of mu and S)
            reach = CANDIDATE_SLACK * vanishing_tolerance(mu_b, float(self.K[node_index] + (bp != 0)))
            candidates.append(small_units(part, np.ascontiguousarray(reach[0])))  # exact 0 stays
        faces = np.flatnonzero(np.any([c.any(axis=1) for c in candidates], axis=0))
        if not len(faces):
            return parts
        S = _maps_chunked(self.net, node_index, *self.inputs, [st[faces] for st in states], self.ops, len(faces),
                          magnitude=True)
        if columns is not None:
            S = np.ascontiguousarray(S[:, :, columns])
        out = []
        for part, bp, candidate in zip(parts, breakpoints, candidates, strict=True):
            part = part.copy()
            sub = part[faces]
            S_b = S + np.array([0.0, 0.0, abs(bp)])[None, :, None]  # z - b: one more term, one more rounding
            snap_vanishing(sub, S_b, self.K[node_index] + (bp != 0), candidate[faces])
            part[faces] = sub
            out.append(part)
        return out


@njit(cache=True, nogil=True)
def small_units(maps, reach):
    """(F, n) bool: units whose three rows of ``maps`` (F, 3, n) are within ``reach`` (3, n) in absolute
    value and not all exactly zero (``(|maps| <= reach).all(rows) & (|maps| > 0).any(rows)``, one pass)."""
    F, R, n = maps.shape
    out = np.zeros((F, n), np.bool_)
    for f in range(F):
        for j in range(n):
            small = True
            nonzero = False
            for r in range(R):
                x = abs(maps[f, r, j])
                small = small and x <= reach[r, j]
                nonzero = nonzero or x > 0.0
            out[f, j] = small and nonzero
    return out


def _maps_chunked(net, node_index, x_c, d1, d2, states, ops, n_faces, chunk=2048, magnitude=False):
    """Maps (n_faces, 3, size) of node ``node_index`` on faces with the given ``states`` (one per
    earlier nonlinear node, bits unpacked), ``chunk`` faces per gated pass; ``magnitude``: gates of a
    magnitude pass (:func:`magnitude_gate`)."""
    parts = []
    sizes = [net.nodes[i].size for i in net.nonlinear]
    for s in range(0, n_faces, chunk):
        gates = [gate_from_state(op, st[s:s + chunk], size) for st, op, size in zip(states, ops, sizes,
                                                                                     strict=False)]
        if magnitude:
            gates = [magnitude_gate(op, g) for op, g in zip(ops, gates, strict=False)]
        gates += [None] * (len(ops) - len(gates))
        m = gated_maps(net, node_index, x_c, d1, d2, gates)
        if m.shape[0] != min(chunk, n_faces - s):
            m = np.broadcast_to(m, (min(chunk, n_faces - s), *m.shape[1:]))
        parts.append(np.ascontiguousarray(m))
    if not parts:
        raise NetatlasError("partition: the slice has no faces")
    return np.concatenate(parts)


@njit(cache=True, nogil=True)
def faces_with_small_columns(M, constant, bound, columns):
    """``_kernels.faces_with_small_units`` on the units ``columns`` of M (F, 3, n) only (``bound`` (3, n)):
    (F,) bool, faces with such a unit within ``bound`` of (0, 0, constant) in all three rows."""
    F = M.shape[0]
    out = np.zeros(F, np.bool_)
    for f in range(F):
        for j in columns:
            if abs(M[f, 0, j]) <= bound[0, j] and abs(M[f, 1, j]) <= bound[1, j] \
                    and abs(M[f, 2, j] - constant) <= bound[2, j]:
                out[f] = True
                break
    return out


@njit(cache=True, nogil=True)
def gated_columns(values, rows, packed, columns, on, off, out):
    """An activation's output maps in ``columns`` only: ``out[f, :, j] = values[rows[f], :, j] * slope``
    with slope ``on`` where bit j of ``packed[f]`` (packed pattern bits, as ``np.packbits``) is set, else
    ``off`` (one multiplication, as the gated pass does it); the other columns of ``out`` (F, 3, n) are
    left as they are."""
    F = out.shape[0]
    for f in range(F):
        p = rows[f]
        for j in columns:
            s = on if (packed[f, j >> 3] >> (7 - (j & 7))) & 1 else off
            for r in range(3):
                out[f, r, j] = values[p, r, j] * s
