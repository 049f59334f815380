"""The chain path of the exact partition (NOTE [the algorithm] in ``_partition``): a chain of affine
layers, each followed by one relu/leaky_relu/identity activation (conv/avg-pool/batch-norm chains
unrolled to dense layers), split depth first in chunks, each child's maps from its parent's by one GEMM
under a reference pattern plus rank-few corrections (the slice's children's by rank-1 terms from their
neighbours', NOTE [sibling next maps]). The helpers here (the chain's layers, the next
layer's maps of many faces, the vanishing-unit bounds) also serve ``_complexity``'s discs."""

from __future__ import annotations

import logging
import math

import numpy as np

from netatlas.regions import _chainkernels as CK
from netatlas.regions import _chainlast
from netatlas.regions import _kernels as K
from netatlas.regions._affine import activation_slopes, affine_matrix, csr_rows, is_affine
from netatlas.regions._partition import Partition, assemble_partition, plane_frame
from netatlas.regions._roundoff import CANDIDATE_RATIO, roundings, snap_vanishing
from netatlas.regions._sink import RegionSink
from netatlas.regions._units import normalised_chain, scaled_factors

__all__ = ["chain_layers", "chain_partition", "chain_setup", "layer_factors", "next_maps", "partition_chain",
           "reused_buffer", "sparse_columns", "unrolled_layers", "vanishing_bounds"]

log = logging.getLogger(__name__)

#: Faces handled per batch of the depth-first chain partition (bounds the memory of per-face maps).
CHUNK_FACES = 4096
#: Bytes of one batch's per-face maps: fewer faces per batch on wide layers, so that the maps the
#: batch writes are still in cache when the next layer reads them.
CHUNK_BYTES = 2 << 20
#: Next layers at most this wide get their maps from a compiled loop instead of a BLAS call.
SMALL_PRODUCT = 32


#: Wide dense relu layers take ``_chainkernels`` (on units only, fused child-map passes); False takes the
#: general kernels (``next_maps``'s BLAS product, ``_kernels.child_maps``), e.g. to compare the two.
FUSED_KERNELS = True
#: Largest W (entries) whose relu next maps skip the off units: W^T (8 bytes an entry) is read once per
#: face, so it must stay in the L2 cache; past it BLAS's blocked product (all units) is faster.
ON_UNITS_MAX_ENTRIES = 512 * 512


#: Largest dense matrix (entries) a conv/pool/batch-norm segment is unrolled to for the chain path.
UNROLL_MAX_ENTRIES = 2 * 10**7


def chain_layers(net):
    try:
        layers = net.as_mlp()
    except ValueError:
        return unrolled_layers(net)
    if layers[-1][2] is not None or any(act is None or act.name == "hardtanh" for _, _, act in layers[:-1]):
        return None
    return [(W.numpy(), b.numpy(), act) for W, b, act in layers]


def partition_chain(net):
    """``chain_layers(net)``, also for a plain MLP whose last layer is followed by a relu/leaky_relu/identity
    activation (regioncam's ``Linear, ReLU``): the activation's output becomes the net's output through an
    exact identity layer (products by 1 and 0, sums with 0), so the partition takes the chain path."""
    layers = chain_layers(net)
    if layers is not None:
        return layers
    try:
        mlp = net.as_mlp()
    except ValueError:
        return None
    if any(act is None or act.name == "hardtanh" for _, _, act in mlp):
        return None
    n = mlp[-1][0].shape[0]
    return [(W.numpy(), b.numpy(), act) for W, b, act in mlp] + [(np.eye(n), np.zeros(n), None)]


def _chain_segments(net):
    """The net as a chain of segments (affine ops, their input size, the activation after them or
    None for the last), or None when it is not such a chain (see ``unrolled_layers``)."""
    from netatlas.nets import Activation, Input

    segments, segment, n_in = [], [], net.n_inputs
    for i, node in enumerate(net.nodes[1:], start=1):
        if node.inputs != (i - 1,) or isinstance(node.op, Input):
            return None
        if isinstance(node.op, Activation):
            if node.op.name == "hardtanh" or not segment:
                return None
            segments.append((segment, n_in, node.op))
            segment, n_in = [], node.size
        elif is_affine(node.op):
            segment.append(node.op)
        else:
            return None
    if not segment or not segments:
        return None
    return [*segments, (segment, n_in, None)]


def unrolled_layers(net):
    """A chain of affine ops (Conv, AvgPool, ChannelAffine, Linear, ...) and relu/leaky/identity
    activations as dense (W, b, activation) layers for the fast chain path: the ops between two
    activations compose into one affine map, whose matrix is the linear part applied to the identity
    (exact, nothing is differenced). None when the graph is not such a chain, or too large."""
    segments = _chain_segments(net)
    if segments is None:
        return None
    layers = []
    for ops, n_in, act in segments:
        dense = affine_matrix(ops, n_in, UNROLL_MAX_ENTRIES)
        if dense is None:
            return None
        layers.append((*dense, act))
    return layers


#: Cost of one multiply-add through a CSR index relative to a dense (vectorised) one.
GATHER_COST = 4


def _factor(A):
    """One factor for ``next_maps``: ("csr", ptr, idx, val, n_out) when sparse enough that the
    gathers pay, else ("dense", A); and its cost in dense multiply-adds."""
    nnz = np.count_nonzero(A)
    if GATHER_COST * nnz >= A.size:
        return ("dense", np.ascontiguousarray(A, dtype=np.float64)), A.size
    return ("csr", *csr_rows(A), A.shape[0]), GATHER_COST * nnz


def layer_factors(net, layers):
    """Per chain layer, its linear part as a product of factors (one per op, applied first to last,
    sparse ones as CSR) when that costs fewer multiply-adds than the dense matrix, else None. An
    unrolled conv segment ``avgpool -> linear`` is dense as one matrix, but its factors (a sparse
    pool, a small linear) cost a fraction of it; ``next_maps`` multiplies every face's map by it."""
    segments = _chain_segments(net)
    out = []
    for k, (W, _, _) in enumerate(layers):
        whole, cost = _factor(W)
        best = [whole] if whole[0] == "csr" else None
        ops, n = (segments[k][:2]) if segments is not None and len(segments) == len(layers) else ([], 0)
        if len(ops) > 1:
            factors, c_factors = [], 0
            for op in ops:
                A, _ = affine_matrix([op], n)
                factor, c = _factor(A)
                factors.append(factor)
                c_factors += c
                n = A.shape[0]
            if c_factors < cost:
                best = factors
        out.append(best)
    return out


def _layer_names(net):
    return tuple(net.nodes[i].name for i in net.activations)


def chain_partition(net, layers, plane, tol, limits=None, facts=None, finish=None) -> Partition:
    """The chain path on ``layers`` (``partition_chain(net)``); ``facts`` (``_prepared.prepared(net)``)
    keeps what depends on the net alone between calls, and the set-up for the latest plane
    (``_ChainSetup``: repeated partitions of one slice start at the kernels). ``finish(out, frame)``, when
    given, returns what takes each batch of finished faces (xy, off, lab, packed patterns, output maps
    (F, 3, n_out), the maps a reused buffer) instead of ``out.add``."""
    if facts is None:
        from netatlas.regions._prepared import PreparedNet

        facts = PreparedNet(net)
    setup = chain_setup(net, layers, plane, facts)
    out = RegionSink(limits)
    if not setup.hidden:
        out.add(setup.xy, setup.off, setup.lab, [], setup.M.copy())
    else:
        work = dict(setup.work)  # the shared set-up, and this run's reused buffers
        if finish is not None:  # the output layer keeps the net's scale: the frame before the inputs' scaling
            work["finish"] = finish(out, (*setup.raw_frame, tol, setup.diam))
        _chain_level(0, setup.layers, setup.base, setup.xy, setup.off, setup.lab, setup.M.copy(), [], out, tol,
                     setup.diam, work)
    return assemble_partition(out, plane, setup.center, setup.sizes, setup.names, tol, "chain")


def chain_setup(net, layers, plane, facts):
    """The ``_ChainSetup`` of (net, plane), kept in ``facts`` for the latest plane (its numbers: frame, bounds
    and the window's outline)."""
    outline = b"" if plane.outline is None else plane.outline.tobytes()
    token = b"".join([np.asarray(a, np.float64).tobytes() for a in (plane.origin, plane.d1, plane.d2, plane.bounds)]
                     + [outline])
    return facts.last(("chain_setup",), token, lambda: _ChainSetup(net, layers, plane, facts))


class _ChainSetup:
    """What ``chain_partition`` needs of (net, plane) before the kernels run: the plane's frame, the
    layers in units of their magnitudes (NOTE [scale-free partitions] in ``_units``), the first layer's
    maps with vanishing units snapped, the bounds of NOTE [vanishing units] and each level's matrices.
    Read only once built (each run copies what the kernels write)."""

    def __init__(self, net, layers, plane, facts):
        self.center, self.xy, self.off, self.lab, x_c, d1, d2, self.diam = plane_frame(plane)
        self.raw_frame = x_c, d1, d2
        # every hidden unit in units of its magnitude, the inputs in units of theirs (NOTE [scale-free
        # partitions] in _units)
        frame = np.stack([d1, d2, x_c])
        slopes = [max(map(abs, activation_slopes(act))) for *_, act in layers[:-1]]
        raw, (layers, exps, (d1, d2, x_c)) = layers, normalised_chain(layers, frame, slopes)
        self.layers = layers
        hidden = layers[:-1]
        self.hidden = bool(hidden)
        self.sizes = [W.shape[0] for W, _, _ in hidden]
        self.base = np.concatenate([[0], np.cumsum(self.sizes)]).astype(np.int64)
        self.names = facts.cached(("layer_names",), _layer_names)
        W0, b0, _ = layers[0]
        M = np.empty((1, 3, W0.shape[0]))
        M[0, 0], M[0, 1], M[0, 2] = W0 @ d1, W0 @ d2, W0 @ x_c + b0
        self.M, self.work = M, {}
        if not hidden:
            return
        vanish = vanishing_bounds(net, layers, x_c, d1, d2, facts.roundings)
        snap_vanishing(M, vanish[0][0], vanish[0][2])  # first layer: mu is the exact magnitude
        work = self.work
        work["vanish"] = vanish
        work["factors"] = scaled_factors(facts.cached(("layer_factors",), lambda net: layer_factors(net, raw)), exps)
        # per level: the next layer's sparse columns and W^T, the same for every call with these unit scalings
        work.update(facts.cached(("level_matrices", *(e.tobytes() for e in exps)),
                                 lambda net: _level_matrices(layers)))
        if facts.cached(("identity_output",), lambda net: _is_identity(*raw[-1][:2])):
            work["output_scale"] = np.diag(layers[-1][0]).copy()  # powers of two (NOTE [scale-free partitions])


def _is_identity(W, b):
    """True for the exact identity output layer ``partition_chain`` appends (or a net's own)."""
    return W.shape[0] == W.shape[1] and not b.any() and np.array_equal(W, np.eye(W.shape[0]))


def _level_matrices(layers):
    out = {}
    for level in range(len(layers) - 1):
        Wn = layers[level + 1][0]
        out["sparse", level] = sparse_columns(Wn)
        out["WT", level] = np.ascontiguousarray(Wn.T)
    return out


def vanishing_bounds(net, layers, x_c, d1, d2, K=None):
    """Per layer (the affine output layer included): (mu (3, n), candidate threshold (3, n), K) for
    vanishing units (``_roundoff``, NOTE [vanishing units]). mu bounds the magnitudes of the layer's
    maps on every face: the map computation in absolute values with every slope replaced by the
    largest one. The output layer is never snapped (threshold -1)."""
    K = roundings(net) if K is None else K
    pre = [net.nodes[i].inputs[0] for i in net.activations] + [len(net.nodes) - 1]
    mu = np.abs(np.stack([d1, d2, x_c]))  # (3, n_inputs)
    out = []
    for k, (W, b, act) in enumerate(layers):
        mu = mu @ np.abs(W).T
        mu[2] += np.abs(b)
        last = k == len(layers) - 1
        out.append((mu, np.full_like(mu, -1.0) if last else CANDIDATE_RATIO * mu, float(K[pre[k]])))
        if not last:
            mu = mu * max(abs(s) for s in activation_slopes(act))
    return out


def reused_buffer(work, key, shape):
    """A view of shape ``shape`` into a per-level buffer that is reused across chunks."""
    size = math.prod(shape)
    buf = work.get(key)
    if buf is None or buf.size < size:
        buf = work[key] = np.empty(max(size, CHUNK_FACES * math.prod(shape[1:])))
    return buf[:size].reshape(shape)


def _chain_level(level, layers, base, xy, off, lab, M, pat, out, tol, diam, work, siblings=None):
    """Split the faces (maps M of layer ``level``) and go on with their children, a chunk at a time, to the
    output. ``siblings``: (maps (1, 3, m), relu slope) of the one face of the layer before whose children
    these faces all are (NOTE [sibling next maps]), or None."""
    W, b, act = layers[level]
    on, off_slope = activation_slopes(act)
    n_faces = len(off) - 1
    n = W.shape[0]
    if act.name == "identity":
        cxy, coff, clab = xy, off, lab
        cparent = np.arange(n_faces)
        cbits = np.packbits(np.ones((n_faces, n), np.uint8), axis=1)
        cut_off, cut_units = np.zeros(n_faces + 1, np.int64), np.zeros(0, np.int64)  # nothing cuts
    else:
        cxy, coff, clab, cparent, cbits, cut_off, cut_units = K.split_faces(xy, off, lab, M, base[level], tol, diam)
    cpat = [p[cparent] for p in pat] + [cbits]
    if level + 2 == len(layers) and "output_scale" in work:
        # the output is this activation's values (an identity output layer, ``partition_chain``): each
        # child's maps are its parent's gated by its pattern, times the layer's power-of-two unit scales
        X = K.gate_children(M, cparent, cbits, on, off_slope, work["output_scale"])
        if "finish" in work:
            work["finish"](cxy, coff, clab, cpat, X)
        else:
            out.add(cxy, coff, clab, cpat, X, maps_owned=True)
        return
    first = np.searchsorted(cparent, np.arange(n_faces))
    ref = cbits[first]
    Wn, bn, _ = layers[level + 1]
    if ("sparse", level) not in work:
        work["sparse", level] = sparse_columns(Wn)
        work["WT", level] = np.ascontiguousarray(Wn.T)
    WT = work["WT", level]
    sparse = work["sparse", level]
    factors = work["factors"][level + 1]
    fused = FUSED_KERNELS and factors is None and len(sparse[0]) == 0
    relu_product = fused and off_slope == 0.0 and SMALL_PRODUCT < Wn.shape[0] and Wn.size <= ON_UNITS_MAX_ENTRIES
    if relu_product and siblings is not None and 3 * n_faces >= SIBLING_FACES_PER_UNIT * siblings[0].shape[2]:
        G = _sibling_next_maps(M, ref, on, W, b, WT, bn, pat[-1], *siblings,
                               reused_buffer(work, ("G", level), (n_faces, 3, Wn.shape[0])))
    elif relu_product:
        G = CK.relu_next_maps(M, ref, on, WT, bn, reused_buffer(work, ("G", level), (n_faces, 3, Wn.shape[0])))
    else:
        G = next_maps(M, ref, on, off_slope, Wn, bn, work, level, factors)
    n_children = len(cparent)
    log.debug("layer %d: %d faces -> %d", level, n_faces, n_children)
    # one face with many children (the slice, cut by the first layer) whose next layer is a wide relu: chunks of
    # its children take the sibling path (NOTE [sibling next maps]), its set-up shared by more faces in larger chunks
    siblings_next = fused and off_slope == 0.0 and n_faces == 1 and _wide_relu_next(layers, level + 1, work)
    chunk = min(max((SIBLING_CHUNK_BYTES if siblings_next else CHUNK_BYTES) // (24 * Wn.shape[0]), 256), CHUNK_FACES)
    last = fused and LAST_LEVEL_KERNEL and _fused_last_level(layers, level + 1, work)
    for c0 in range(0, n_children, chunk):
        c1 = min(c0 + chunk, n_children)
        _, candidate, n_roundings = work["vanish"][level + 1]
        v0, v1 = coff[c0], coff[c1]
        if last:  # the children are the last hidden level's faces: to the output in one call (NOTE [last hidden level])
            maps_args = (G, M, WT, cparent[:c1], cbits[:c1], ref, on, off_slope, c0, bn, work["vanish"][level][0],
                         candidate, n_roundings, cut_off, cut_units)
            _last_level(level + 1, layers, base, cxy[v0:v1], coff[c0:c1 + 1] - v0, clab[v0:v1],
                        [p[c0:c1] for p in cpat], maps_args, out, tol, diam, work)
            continue
        Mc = reused_buffer(work, level, (c1 - c0, 3, Wn.shape[0]))
        groups = np.concatenate([[0], np.flatnonzero(np.diff(cparent[c0:c1])) + 1, [c1 - c0]])
        if fused:
            CK.fused_child_maps(G, M, WT, cparent[:c1], cbits[:c1], ref, on, off_slope, c0, Mc,
                                groups.astype(np.int64), bn, work["vanish"][level][0], candidate, n_roundings, cut_off,
                                cut_units)
        else:
            K.child_maps(G, M, WT, *sparse, cparent[:c1], cbits[:c1], ref, on, off_slope, c0, Mc,
                         groups.astype(np.int64), bn, work["vanish"][level][0], candidate, n_roundings)
        sub_xy, sub_off, sub_lab = cxy[v0:v1], coff[c0:c1 + 1] - v0, clab[v0:v1]
        sub_pat = [p[c0:c1] for p in cpat]
        if level + 1 == len(layers) - 1 and "finish" in work:  # e.g. a max over the outputs (``_chainmax``)
            work["finish"](sub_xy, sub_off, sub_lab, sub_pat, Mc)
        elif level + 1 == len(layers) - 1:
            out.add(sub_xy, sub_off, sub_lab, sub_pat, Mc)  # copied into the sink's block (Mc is reused)
        else:
            siblings = (M[cparent[c0]:cparent[c0] + 1], on) if fused and off_slope == 0.0 \
                and cparent[c0] == cparent[c1 - 1] else None
            _chain_level(level + 1, layers, base, sub_xy, sub_off, sub_lab, Mc, sub_pat, out, tol, diam, work,
                         siblings)


#: The last hidden level's faces take ``_chainlast.last_level`` where it applies (``_fused_last_level``); False
#: takes the separate kernels (``_chain_level`` on each chunk), e.g. to compare the two.
LAST_LEVEL_KERNEL = True
#: Faces of the last hidden level per batch of ``last_level`` (their maps stay in the L2 cache between its passes).
LAST_LEVEL_BATCH = 32


def _fused_last_level(layers, level, work):
    """Whether level ``level``'s faces take ``last_level``: the last hidden level, not an identity activation, with
    a narrow dense output layer whose maps ``_chain_level`` would make with ``narrow_next_maps`` and
    ``fused_child_maps``, its regions going to the sink (no ``finish``, no identity output layer)."""
    if level + 2 != len(layers) or "finish" in work or "output_scale" in work or not FUSED_KERNELS:
        return False
    act = layers[level][2]
    W_out = layers[level + 1][0]
    if ("sparse", level) not in work:
        work["sparse", level] = sparse_columns(W_out)
        work["WT", level] = np.ascontiguousarray(W_out.T)
    return act.name != "identity" and W_out.shape[0] <= SMALL_PRODUCT and work["factors"][level + 1] is None \
        and len(work["sparse", level][0]) == 0


def _last_level(level, layers, base, xy, off, lab, pat, maps_args, out, tol, diam, work):
    """``_chain_level(level, ...)`` on the faces whose maps ``fused_child_maps(*maps_args)`` makes, in one call of
    ``last_level`` (NOTE [last hidden level] in ``_chainlast``): the same regions, patterns and maps, written into
    ``out``'s arrays; its limits see the same batches (a RegionLimitError comes after the chunk, not before)."""
    on, off_slope = activation_slopes(layers[level][2])
    W_out, b_out, _ = layers[level + 1]
    _, candidate_out, n_roundings_out = work["vanish"][level + 1]
    out_chunk = min(max(CHUNK_BYTES // (24 * W_out.shape[0]), 256), CHUNK_FACES)
    n_faces, n_bytes, n_out = len(off) - 1, (layers[level][0].shape[0] + 7) // 8, W_out.shape[0]
    # written straight into the sink's arrays, room for the usual count made first (the kernel grows them past it)
    rows = (out.xy, out.lab, out.counts, out.state_rows(len(pat)), out.maps)
    n_vert, n_regions = out.xy.n, out.counts.n
    bufs = [r.reserve(size, shape, dtype) for r, size, shape, dtype in zip(
        rows, (12 * n_faces, 12 * n_faces, 3 * n_faces, 3 * n_faces, 3 * n_faces),
        ((2,), (), (), (n_bytes,), (3, n_out)), (np.float64, np.int64, np.int64, np.uint8, np.float64), strict=True)]
    *bufs, rparent, n_vert_new, n_regions_new = _chainlast.last_level(
        xy, off, lab, *maps_args, base[level], tol, diam, on, off_slope, np.ascontiguousarray(W_out), b_out,
        work["WT", level], work["vanish"][level][0], candidate_out, n_roundings_out, out_chunk, LAST_LEVEL_BATCH, *bufs,
        n_vert, n_regions)
    for rows_k, buf, n in zip(rows, bufs, (n_vert_new, n_vert_new, n_regions_new, n_regions_new, n_regions_new),
                              strict=True):
        rows_k.adopt(buf, n)
    log.debug("layer %d: %d faces -> %d", level, n_faces, len(rparent))
    for k, p in enumerate(pat):  # the layers before: each region's rows are its face's
        state = out.state_rows(k)
        buf = state.reserve(len(rparent), p.shape[1:], p.dtype)
        np.take(p, rparent, axis=0, out=buf[state.n:state.n + len(rparent)])
        state.adopt(buf, state.n + len(rparent))
    if out.limits is not None:  # the count and area of each batch of ``_chain_level``'s chunks
        offsets = np.zeros(len(rparent) + 1, np.int64)
        np.cumsum(out.counts.array()[n_regions:], out=offsets[1:])
        for r0 in range(0, len(rparent), out_chunk):
            r1 = min(r0 + out_chunk, len(rparent))
            out.count(out.xy.array()[n_vert + offsets[r0]:n_vert + offsets[r1]], offsets[r0:r1 + 1] - offsets[r0])


# NOTE [sibling next maps]
# The next maps of F faces that are children of one face P (maps M_P of layer l - 1, 3 x m), under the reference
# patterns s_f of layer l: G_f = W' diag(s_f) M_f + b', with M_f = W diag(t_f) M_P + b (t_f: the face's bits of
# layer l - 1). A product per face costs 3 n' |s_f| multiply-adds. Under one pattern s* for all of them (the
# majority of the s_f), G*_f = A diag(t_f) M_P + W' diag(s*) b + b' with A = W' diag(s*) W (n' x m, one product
# for the F faces), so G*_f = G*_(f-1) + sum of +-A[:, j] M_P[j] over the few units j whose bits t differ between
# the neighbours, and G_f = G*_f + sum of +-W'[:, k] M_f[k] over the units k where s_f differs from s*: rank-1
# terms of 3 n' each, about (2.5 + 12) per face on 2-256-256-256 against 128 columns of the product. Equal to the
# product up to round-off (a different sum; G* is chained along at most SIBLING_RESTART faces, then computed anew).
# A face's map of a vanishing unit (NOTE [vanishing units]) is an exact zero in M_f but its round-off-small
# value in G*: a difference of the same round-off. The children's maps snap their own vanishing units from M_f.
#: The sibling path pays when the chunk has at least this many faces per unit of the layer before (per 3 faces:
#: A costs m products of the face's length, a face's product 3).
SIBLING_FACES_PER_UNIT = 2
#: Every this many faces the chain of G* restarts from the product (bounds its round-off; costs a product per 256).
SIBLING_RESTART = 256
#: Bytes of one chunk of the maps of the slice's children on the sibling path (A is set up once per chunk).
SIBLING_CHUNK_BYTES = 16 << 20


def _wide_relu_next(layers, level, work):
    """Whether level ``level``'s next maps are a relu's on-units product (``relu_next_maps``, or the sibling path)."""
    if level + 1 >= len(layers) or work["factors"][level + 1] is not None:
        return False
    _, off_slope = activation_slopes(layers[level][2])
    Wn = layers[level + 1][0]
    return layers[level][2].name != "identity" and off_slope == 0.0 and SMALL_PRODUCT < Wn.shape[0] \
        and Wn.size <= ON_UNITS_MAX_ENTRIES


def _sibling_next_maps(M, ref, slope, W, b, WT, bn, parent_bits, M_parent, parent_slope, out):
    """``relu_next_maps`` of sibling faces by ``_chainkernels.sibling_next_maps`` (NOTE [sibling next maps])."""
    star = 2 * np.unpackbits(ref, axis=1, count=W.shape[0]).sum(axis=0) >= len(ref)  # the majority pattern
    units = np.flatnonzero(star)
    AT = (slope * W[units].T) @ WT[units]  # (W' diag(s*) W)^T, (m, n')
    constant = bn + (slope * b[units]) @ WT[units]
    return CK.sibling_next_maps(M, ref, slope, WT, np.packbits(star), np.ascontiguousarray(AT), constant, M_parent,
                                parent_bits, parent_slope, SIBLING_RESTART, out)


#: Largest fraction of nonzero weights for which child maps are updated by sparse columns.
SPARSE_DENSITY = 0.25


def sparse_columns(W):
    """W's columns as CSR (``ptr`` (n + 1,), ``idx``, ``val``: the rows of W^T) when at most
    SPARSE_DENSITY of W (n', n) is nonzero (conv layers unrolled), else three empty arrays."""
    if np.count_nonzero(W) > SPARSE_DENSITY * W.size:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    return csr_rows(W.T)


def next_maps(M, bits, on, off, W, b, work=None, level=0, factors=None):
    """``W (s * M[f]) + b`` for each face, s = on/off slopes from ``bits`` (F, ceil(n / 8)) packed:
    (F, 3, n) -> (F, 3, n') by one GEMM (a compiled loop for narrow next layers), or through W's
    sparse ``factors`` (``layer_factors``) when given."""
    n_faces, _, n = M.shape
    if factors is not None:
        kind, *first = factors[0]
        G = (K.gated_csr_product(M, bits, on, off, *first) if kind == "csr"
             else K.gated_product(M, bits, on, off, first[0], np.zeros(first[0].shape[0])))
        for kind, *f in factors[1:]:
            G = K.csr_product(G, *f) if kind == "csr" else (G.reshape(-1, G.shape[2]) @ f[0].T).reshape(n_faces, 3, -1)
        G[:, 2, :] += b
        return G
    if W.shape[0] <= SMALL_PRODUCT:
        product = CK.narrow_next_maps if FUSED_KERNELS else K.gated_product
        return product(M, bits, on, off, np.ascontiguousarray(W), b)
    work = {} if work is None else work
    X = reused_buffer(work, ("X", level), (n_faces, 3, n))
    K.gate_into(M, bits, on, off, X)
    G = reused_buffer(work, ("G", level), (n_faces * 3, W.shape[0]))
    np.matmul(X.reshape(3 * n_faces, n), W.T, out=G)
    G = G.reshape(n_faces, 3, W.shape[0])
    G[:, 2, :] += b
    return G
