"""Residual MLPs on the chain path: a graph of affine ops, relu/leaky_relu/identity activations and
additions (``h + relu(W h + b)``, ``h + W2 relu(W1 h + b1)``, a Linear projection on the skip, a skip
from the input) as a chain whose layers also carry the values that skip ahead.

# NOTE [carried skips]
Between two activation nodes every value is affine in what is alive after the first one: the
activation's output ``a_k`` and the values ``C_k`` computed earlier and still used later (the residual
stream, a skip's source). So the next pre-activation and the next carried values are one affine map
of ``[a_k; C_k]``::

    [z_{k+1}; C_{k+1}] = W_k [a_k; C_k] + b_k        (W_k dense, n_{k+1} + m_{k+1} rows)

and on a face, where ``a_k = s * z_k`` with the face's slopes s, every carried value keeps an affine
map. So each face holds two sets of maps: its pre-activations Z (3, n), which split it, and its
carried values C (3, m), which never split it, are never snapped as vanishing (they are not
pre-activations: the graph path does not snap them either) and are not part of the pattern. A
child's carried maps are ``W_C [s * Z_parent; C_parent] + b_C`` with its own slopes (a few terms per
row: the stream plus an activation). Its pre-activations come from one of two places. When the next
pre-activation is one affine op on a carried value t (a block's Linear reading the stream,
``_factor``), ``z = W t + b`` for a chunk of children is one BLAS product, the graph path's own sum.
Otherwise, as in the plain chain, from the parent's maps under a reference pattern plus rank-few
corrections for the cutting units' bits (``_kernels.child_maps`` on the gated part; the carried part
is the same for every sibling).

Per-unit normalisation (NOTE [scale-free partitions] in ``_units``) needs the skip's scale too: a
unit kept in units of its magnitude, ``a / 2^E``, cannot be added to a stream kept in its own units.
Here every carried entry is a row of ``W_k`` like any hidden unit, so ``normalised_chain`` gives it its
own exponent F (from its magnitude bound) and multiplies the columns that read it by 2^F: the
addition ``h + a`` becomes ``2^(F - F') h~ + 2^(E - F') a~``, two powers of two, so at ordinary scales
the sums are those of the unnormalised stream bit for bit (only exponents move), and at 1e-300 or
1e300 nothing overflows or underflows, as for plain chains.

The matrices are built by pushing an identity through the ops (nothing is differenced); a composed
product (a Linear projection on the skip, read by the next Linear) is rounded once more than the
graph path's two products, which the round-off counts of NOTE [vanishing units] cover (fan-ins add).
"""

from __future__ import annotations

import numpy as np
import torch
from numba import njit

from netatlas.nets import Activation, Add, Input
from netatlas.regions import _kernels as K
from netatlas.regions._affine import _linear_part, activation_slopes, affine_matrix, csr_rows, is_affine
from netatlas.regions._chain import CHUNK_BYTES, CHUNK_FACES, GATHER_COST, reused_buffer, vanishing_bounds
from netatlas.regions._partition import Partition, assemble_partition, plane_frame
from netatlas.regions._roundoff import snap_vanishing, vanishing_tolerance
from netatlas.regions._sink import RegionSink
from netatlas.regions._units import normalised_chain

__all__ = ["skip_chain", "skip_partition"]

#: Largest number of matrix entries (over all layers) a residual graph is unrolled to.
SKIP_MAX_ENTRIES = 2 * 10**7
#: Largest layer (entries of its dense matrix) for the chain path: per face it costs a dense product
#: with that many entries, where the graph path's gated passes run the (sparse) convolutions.
SKIP_MAX_LAYER = 2**22


def skip_chain(net):
    """``(layers, units, factors)`` for a graph of affine ops, additions and relu/leaky_relu/identity
    activations that is not a plain chain (NOTE [carried skips]): ``layers`` [(W (n' + m', n + m), b,
    activation), ..., (W_out, b_out, None)] as ``_chain.chain_layers`` gives them, their outputs the next
    activation's pre-activation then the carried values; ``units`` the activation widths n' of the
    hidden layers; ``factors[k]`` for ``layers[k + 1]``: None, or ``(s0, s1, W, b)`` when its
    pre-activation is ``W t + b`` with t its carried outputs s0:s1 (``_factor``). None for any other
    graph, or when the matrices would exceed SKIP_MAX_ENTRIES."""
    nodes = net.nodes
    acts = net.activations
    if not acts or acts[-1] == 0:
        return None
    for node in nodes[1:]:
        op = node.op
        if isinstance(op, Activation):
            if op.name not in ("relu", "leaky_relu", "identity") or activation_slopes(op)[0] != 1.0:
                return None
        elif isinstance(op, Add):  # (broadcasting additions are left to the graph path)
            if len(node.inputs) != 2 or any(nodes[j].size != node.size for j in node.inputs):
                return None
        elif not (is_affine(op) and len(node.inputs) == 1) or isinstance(op, Input):
            return None
    if not any(isinstance(node.op, Add) for node in nodes):
        return None  # a plain chain: ``_chain`` takes it
    last_use = np.zeros(len(nodes), np.int64)
    for i, node in enumerate(nodes):
        for j in node.inputs:
            last_use[j] = max(last_use[j], i)
    last_use[-1] = len(nodes)  # the output is used after everything
    layers, units, factors, entries = [], [], [], 0
    bounds = [0, *acts]
    for k in range(len(bounds)):
        start = bounds[k]
        # the level's inputs: the activation's (or the input's) value, then the carried values
        carried = _alive(last_use, start)
        if start in carried:
            carried.remove(start)
        head = [start, *carried]
        width = sum(nodes[j].size for j in head)
        env, offset = {}, 0
        with torch.no_grad():
            for j in head:
                n = nodes[j].size
                P = torch.zeros(width, n, dtype=torch.float64)  # P^T: row i is the image of input i
                P[offset:offset + n] = torch.eye(n, dtype=torch.float64)
                env[j] = (P, torch.zeros(1, n, dtype=torch.float64))
                offset += n
            stop = bounds[k + 1] if k + 1 < len(bounds) else len(nodes)
            for i in range(start + 1, stop):
                node = nodes[i]
                if isinstance(node.op, Add):
                    (Pa, qa), (Pb, qb) = (env[j] for j in node.inputs)
                    env[i] = (Pa + Pb, qa + qb)
                else:
                    P, q = env[node.inputs[0]]
                    env[i] = (_linear_part(node.op, P), node.op(q))
                entries += env[i][0].numel()
                if entries > SKIP_MAX_ENTRIES:
                    return None
            factor = None
            if k + 1 < len(bounds):
                pre = nodes[stop].inputs[0]
                outs = [pre, *(j for j in _alive(last_use, stop) if j != stop)]
                act = nodes[stop].op
                units.append(nodes[pre].size)
                factor = _factor(nodes, pre, start, outs)
            else:
                outs, act = [len(nodes) - 1], None
            P = torch.cat([env[j][0] for j in outs], dim=1)
            q = torch.cat([env[j][1] for j in outs], dim=1)
        if P.numel() > SKIP_MAX_LAYER:
            return None
        layers.append((np.ascontiguousarray(P.numpy().T), q[0].numpy().copy(), act))
        factors.append(factor)
    return layers, tuple(units), factors[1:]


def _factor(nodes, pre, start, outs):
    """(s0, s1, W, b) when the pre-activation ``pre`` is one affine op on a carried value (rows s0:s1 of
    the carried part): ``z = W t + b``, cheaper per face than the composed matrix (a residual block's
    Linear reads the stream once, not the stream and the activation separately). Else None."""
    op = nodes[pre].op
    if pre <= start or not is_affine(op):
        return None
    source = nodes[pre].inputs[0]
    offset = 0
    for j in outs[1:]:
        if j == source:
            W, b = affine_matrix([op], nodes[j].size)
            return offset, offset + nodes[j].size, W, b
        offset += nodes[j].size
    return None


def _alive(last_use, position):
    """Nodes computed at or before ``position`` that a later node reads, in node order."""
    return [j for j in range(position + 1) if last_use[j] > position]


def skip_partition(net, skips, plane, tol, limits=None, facts=None) -> Partition:
    """The partition of ``net`` by the chain path on ``skips = skip_chain(net)`` (NOTE [carried skips]):
    depth first in chunks like ``_chain.chain_partition``, each face holding the maps of its
    pre-activations Z (3, n) and of its carried values C (3, m). ``facts``: ``_prepared.prepared(net)``."""
    if facts is None:
        from netatlas.regions._prepared import PreparedNet

        facts = PreparedNet(net)
    layers, units, factors = skips
    center, xy, off, lab, x_c, d1, d2, diam = plane_frame(plane)
    frame = np.stack([d1, d2, x_c])
    work = dict(facts.last(("skip_levels",), frame.tobytes(), lambda: _levels(net, layers, units, factors, frame,
                                                                              facts.roundings)))
    out = RegionSink(limits)
    n0 = units[0]
    W0, b0, _ = work["layers"][0]
    full = work["frame"] @ W0.T  # (3, n0 + m0): rows d/du, d/dv, value at the centre
    full[2] += b0
    Z, C = np.ascontiguousarray(full[None, :, :n0]), np.ascontiguousarray(full[None, :, n0:])
    mu, _, n_roundings = work["vanish"][0]
    snap_vanishing(Z, mu[:, :n0], n_roundings)  # first layer: mu is the exact magnitude
    _skip_level(0, xy, off, lab, Z, C, [], out, tol, diam, work)
    names = facts.cached(("layer_names",), lambda net: tuple(net.nodes[i].name for i in net.activations))
    return assemble_partition(out, plane, center, list(units), names, tol, "chain")


def _levels(net, layers, units, factors, frame, n_roundings):
    """What the levels need for this frame: the normalised layers (NOTE [scale-free partitions]), the
    vanishing bounds, and per level its next layer split into the pre-activations' part (on the gated
    units, dense, transposed for ``child_maps``; on the carried values) and the carried part (CSR)."""
    slopes = [max(map(abs, activation_slopes(act))) for *_, act in layers[:-1]]
    layers_n, exps, frame_n = normalised_chain(layers, frame, slopes)
    vanish = vanishing_bounds(net, layers_n, frame_n[2], frame_n[0], frame_n[1], n_roundings)
    levels = []
    for k, n in enumerate(units):
        W, b, _ = layers_n[k + 1]
        n_next = units[k + 1] if k + 1 < len(units) else W.shape[0]
        mu, candidate, K_next = vanish[k + 1]
        level = {"WzaT": np.ascontiguousarray(W[:n_next, :n].T), "WzcT": np.ascontiguousarray(W[:n_next, n:].T),
                 "bz": b[:n_next].copy(), "carried": csr_rows(W[n_next:]), "bc": b[n_next:].copy(),
                 "mu": np.ascontiguousarray(vanish[k][0]), "candidate": np.ascontiguousarray(candidate[:, :n_next]),
                 "n_roundings": float(K_next), "factor": None, "no_candidates": -np.ones((3, n_next))}
        if factors[k] is not None:
            s0, s1, Wf, bf = factors[k]
            E = exps[k + 1]
            with np.errstate(over="ignore"):
                Wf = np.ldexp(Wf, (E[n_next + s0:n_next + s1][None, :] - E[:n_next, None]).astype(np.int64))
                bf = np.ldexp(bf, -E[:n_next])
            if np.isfinite(Wf).all() and np.isfinite(bf).all():  # a sparse W (a conv) as CSR rows
                sparse = GATHER_COST * np.count_nonzero(Wf) < Wf.size
                level["factor"] = (s0, s1, csr_rows(Wf) if sparse else np.ascontiguousarray(Wf.T), bf)
        levels.append(level)
    base = np.concatenate([[0], np.cumsum(units)]).astype(np.int64)  # edge labels: pattern columns
    return {"layers": layers_n, "frame": frame_n, "vanish": vanish, "levels": levels, "base": base,
            "dense": (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0))}  # child_maps: W dense


def _skip_level(k, xy, off, lab, Z, C, pat, out, tol, diam, work):
    act = work["layers"][k][2]
    on, off_slope = activation_slopes(act)
    n_faces, _, n = Z.shape
    if act.name == "identity":
        cxy, coff, clab = xy, off, lab
        cparent = np.arange(n_faces)
        cbits = np.packbits(np.ones((n_faces, n), np.uint8), axis=1)
    else:
        cxy, coff, clab, cparent, cbits, _, _ = K.split_faces(xy, off, lab, Z, work["base"][k], tol, diam)
    cpat = [p[cparent] for p in pat] + [cbits]
    level = work["levels"][k]
    WzaT, bz, (ptr, idx, val), bc = level["WzaT"], level["bz"], level["carried"], level["bc"]
    n_next, m_next = bz.shape[0], bc.shape[0]
    last = k + 1 == len(work["levels"])
    factor = None if last else level["factor"]
    if factor is None:  # rank-few updates from each parent's maps under a reference pattern
        ref = cbits[np.searchsorted(cparent, np.arange(n_faces))]
        G = _reference_maps(Z, C, ref, on, off_slope, level, work, k)
    n_children = len(cparent)
    chunk = int(np.clip(CHUNK_BYTES // (24 * (n_next + m_next)), 256, CHUNK_FACES))
    for c0 in range(0, n_children, chunk):
        c1 = min(c0 + chunk, n_children)
        v0, v1 = coff[c0], coff[c1]
        sub_xy, sub_off, sub_lab = cxy[v0:v1], coff[c0:c1 + 1] - v0, clab[v0:v1]
        sub_pat = [p[c0:c1] for p in cpat]
        Zc = reused_buffer(work, ("Z", k), (c1 - c0, 3, n_next))
        if not last:
            Cc = reused_buffer(work, ("C", k), (c1 - c0, 3, m_next))
            carried_maps(Z, C, cparent[c0:c1], cbits[c0:c1], on, off_slope, ptr, idx, val, bc, Cc)
        if factor is not None:  # z = W t + b, t carried: one product for all the children (a BLAS call)
            s0, s1, Wf, bf = factor
            t = np.ascontiguousarray(Cc[:, :, s0:s1])
            if isinstance(Wf, tuple):
                Zc[:] = K.csr_product(t, *Wf, n_next)
            else:
                np.matmul(t.reshape(-1, s1 - s0), Wf, out=Zc.reshape(-1, n_next))
            Zc[:, 2, :] += bf
        else:
            groups = np.concatenate([[0], np.flatnonzero(np.diff(cparent[c0:c1])) + 1, [c1 - c0]])
            K.child_maps(G, Z, WzaT, *work["dense"], cparent[:c1], cbits[:c1], ref, on, off_slope, c0, Zc,
                         groups.astype(np.int64), bz, level["mu"], level["no_candidates"], 0.0)
        if last:
            out.add(sub_xy, sub_off, sub_lab, sub_pat, Zc.copy())
            continue
        # vanishing units (NOTE [vanishing units]), with the carried term
        snap_skip_units(Zc, Z, C, cparent, cbits, c0, WzaT, level["WzcT"], bz, level["mu"], level["candidate"],
                        on, off_slope, level["n_roundings"])
        _skip_level(k + 1, sub_xy, sub_off, sub_lab, Zc, Cc, sub_pat, out, tol, diam, work)


def _reference_maps(Z, C, ref, on, off_slope, level, work, k):
    """The next pre-activations' maps (F, 3, n') of every face under its reference pattern ``ref``: the
    composed matrix on the gated units and the carried values (buffers reused per level: fresh memory
    costs a page fault every 4 KiB)."""
    n_faces = Z.shape[0]
    X = reused_buffer(work, ("X", k), Z.shape)
    K.gate_into(Z, ref, on, off_slope, X)
    G = reused_buffer(work, ("G", k), (3 * n_faces, len(level["bz"])))
    np.matmul(X.reshape(3 * n_faces, -1), level["WzaT"], out=G)
    if C.shape[2]:
        G += C.reshape(3 * n_faces, -1) @ level["WzcT"]
    G = G.reshape(n_faces, 3, -1)
    G[:, 2, :] += level["bz"]
    return G


@njit(cache=True)
def carried_maps(Z, C, parents, bits, slope_on, slope_off, ptr, idx, val, b, out):
    """``out[k] = W [s_k * Z[p]; C[p]] + b`` (p = ``parents[k]``, slopes from the packed row ``bits[k]``),
    W (m', n + m) as CSR rows: the carried values' maps of each child (few nonzeros per row: a stream
    plus an activation)."""
    n = Z.shape[2]
    for k in range(parents.shape[0]):
        p = parents[k]
        row = bits[k]
        for i in range(out.shape[2]):
            a0, a1, a2 = 0.0, 0.0, b[i]
            for e in range(ptr[i], ptr[i + 1]):
                j = idx[e]
                if j < n:
                    w = val[e] * (slope_on if K.bit(row, j) else slope_off)
                    a0 += w * Z[p, 0, j]
                    a1 += w * Z[p, 1, j]
                    a2 += w * Z[p, 2, j]
                else:
                    w = val[e]
                    a0 += w * C[p, 0, j - n]
                    a1 += w * C[p, 1, j - n]
                    a2 += w * C[p, 2, j - n]
            out[k, 0, i] = a0
            out[k, 1, i] = a1
            out[k, 2, i] = a2


@njit(cache=True)
def snap_skip_units(out, Z, C, cparent, cbits, c_start, WzaT, WzcT, b, mu, candidate, slope_on, slope_off,
                    n_roundings):
    """``_kernels.child_maps``'s vanishing rule (NOTE [vanishing units]) with the carried term: a unit i of
    child ``c_start + k`` under ``candidate`` in all three rows is summed directly, ``sum_j W_ij s_j
    Z[p, :, j] + sum_l V_il C[p, :, l] + b_i``, and set to exact zero when each row is within
    ``n_roundings * EPS * S_r``, ``S_r = sum_j |W_ij s_j| mu[r, j] + sum_l |V_il| mu[r, n + l] + |b_i|``."""
    n = Z.shape[2]
    m = C.shape[2]
    for k in range(out.shape[0]):
        dst = out[k]
        p = cparent[c_start + k]
        row = cbits[c_start + k]
        for i in range(dst.shape[1]):
            if not (abs(dst[0, i]) <= candidate[0, i] and abs(dst[1, i]) <= candidate[1, i]
                    and abs(dst[2, i]) <= candidate[2, i]
                    and (dst[0, i] != 0.0 or dst[1, i] != 0.0 or dst[2, i] != 0.0)):
                continue
            vanishes = True
            for r in range(3):
                acc = b[i] if r == 2 else 0.0
                mag = abs(acc)
                for j in range(n):
                    ws = WzaT[j, i] * (slope_on if K.bit(row, j) else slope_off)
                    acc += ws * Z[p, r, j]
                    mag += abs(ws) * mu[r, j]
                for q in range(m):
                    acc += WzcT[q, i] * C[p, r, q]
                    mag += abs(WzcT[q, i]) * mu[r, n + q]
                dst[r, i] = acc
                vanishes = vanishes and abs(acc) <= vanishing_tolerance(mag, n_roundings)
            if vanishes:
                for r in range(3):
                    dst[r, i] = 0.0
