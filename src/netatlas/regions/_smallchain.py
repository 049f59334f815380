"""Small MLPs on the chain path in one compiled call: the whole of ``_chain._chain_level`` (split, next maps,
child maps, every layer) and ``_units.from_size_units``'s rescaling in one numba kernel, so a net of a few
hundred regions pays one dispatch instead of ~20 Python, NumPy and numba calls (which cost ten times
the kernels' own work on regioncam's 2-8-3).

NOTE [small chain]: the kernel runs the very kernels ``_chain_level`` runs, with the same arguments, in the
same order, so the result is the chain path's bit for bit. ``_chain_level`` goes depth first in chunks of
``chunk`` children per level; while every level has at most one chunk of children, depth first is level by
level, which is what the kernel does. A level with more children stops the kernel (``OVERFLOW``): the caller
then runs ``_chain.chain_partition`` and remembers, in the plan, not to try again for that plane. A plan
(:class:`SmallChain`) packs what ``_chain._ChainSetup`` holds for one (net, plane) into a few flat arrays
(one kernel signature for every depth); levels whose next maps ``_chain`` would take from BLAS or from sparse
factors are not in this kernel (BLAS may round differently inside numba), and such nets keep the general path.
"""

from __future__ import annotations

import math
import os

import numpy as np
from numba import njit

from netatlas.regions import _chain, _scale
from netatlas.regions import _chainkernels as CK
from netatlas.regions import _kernels as K
from netatlas.regions._affine import activation_slopes
from netatlas.regions._partition import Partition

__all__ = ["OVERFLOW", "SMALL_RESULT_BYTES", "SmallChain", "kept_small_chain", "plane_key",
           "run_small_chain", "small_chain", "small_chain_partition", "small_chain_plan"]

#: ``run_small_chain``'s status when a level has more children than one chunk (see NOTE [small chain]).
OVERFLOW = 1

# level modes: how the next layer's maps are made
_GATED_PRODUCT, _RELU_NEXT_MAPS, _OUTPUT_GATE = 0, 1, 2
# columns of a plan's ``ints`` (n_levels, _N_INTS) and ``floats`` (n_levels, 3)
(_MODE, _N, _N_NEXT, _BASE, _CHUNK, _FUSED, _WT, _W, _B, _MU, _CANDIDATE, _SCALE, _PTR, _IDX, _VAL, _NNZ,
 _N_INTS) = range(17)


class SmallChain:
    """One (net, plane) of the chain path packed for :func:`run_small_chain`.

    Attributes
    ----------
    xy, off, lab, M : ndarray
        The window as one face (``plane_frame``) and the first layer's maps (1, 3, n_0).
    ints : ndarray of shape (n_levels, 16) int64
        Per hidden layer: mode, widths, unit base, chunk, fused child maps, and the
        offsets of its arrays in ``data``/``index``.
    floats : ndarray of shape (n_levels, 3)
        Per hidden layer: on and off slopes, the next layer's roundings K (NOTE [vanishing units]).
    data, index : ndarray
        The layers' matrices (W^T, W, b, magnitude bounds, candidate thresholds, output scales, sparse
        values) and sparse indices, flat.
    tol, diam, exponent : float, float, int
        The boundary tolerance, the unit plane's diameter, and e (the plane in units of 2^e).
    center : ndarray of shape (2,)
        The window's centre in the plane's own coordinates.
    bytes_per_layer : tuple of int
        Packed pattern bytes per activation layer (``layer_bytes``: the same as an array).
    bytes_per_region : int
        ``_scale.bytes_per_region`` of the net (for the memory budget).
    overflowed : bool
        Set when a run met a level of more than one chunk: this plane takes the general path.
    """

    def __init__(self, setup, tol: float, exponent: int, levels, bytes_per_layer, bytes_per_region: int):
        self.xy, self.off, self.lab, self.M = setup.xy, setup.off, setup.lab, setup.M
        self.tol, self.diam, self.exponent = float(tol), float(setup.diam), int(exponent)
        self.center = np.ldexp(setup.center, exponent)
        self.sizes, self.names = tuple(int(s) for s in setup.sizes), setup.names
        self.bytes_per_layer = bytes_per_layer
        self.layer_bytes = np.array(bytes_per_layer, np.int64)
        self.bytes_per_region = bytes_per_region
        self.ints, self.floats, self.data, self.index = levels
        self.overflowed = False


def small_chain_plan(setup, tol: float, exponent: int, fused_kernels: bool,
                     bytes_per_region: int) -> SmallChain | None:
    """The :class:`SmallChain` of ``setup`` (a ``_chain._ChainSetup``), or None when a level's next maps
    would come from BLAS or sparse factors (``_chain._chain_level``'s choices, made here once)."""
    from netatlas.regions._chain import CHUNK_BYTES, CHUNK_FACES, ON_UNITS_MAX_ENTRIES, SMALL_PRODUCT
    layers, work = setup.layers, setup.work
    data, index, rows, floats = [], [], [], []
    n_data = n_index = 0

    def put(a, into):
        nonlocal n_data, n_index
        a = np.ascontiguousarray(a).ravel()
        into.append(a)
        if into is data:
            n_data += a.size
            return n_data - a.size
        n_index += a.size
        return n_index - a.size

    for level in range(len(layers) - 1):
        W, _, act = layers[level]
        if act.name == "identity":  # no split (rare: from ONNX graphs): the chain path's own branch
            return None
        on, off_slope = activation_slopes(act)
        n = W.shape[0]
        row = np.zeros(_N_INTS, np.int64)
        row[_N], row[_BASE] = n, setup.base[level]
        rounding = 0.0
        if level + 2 == len(layers) and "output_scale" in work:
            row[_MODE], row[_N_NEXT], row[_SCALE] = _OUTPUT_GATE, n, put(work["output_scale"], data)
        else:
            Wn, bn, _ = layers[level + 1]
            n_next = Wn.shape[0]
            if work["factors"][level + 1] is not None:
                return None
            ptr, idx, val = work["sparse", level]
            fused = fused_kernels and len(ptr) == 0
            if fused and off_slope == 0.0 and SMALL_PRODUCT < n_next and Wn.size <= ON_UNITS_MAX_ENTRIES:
                row[_MODE] = _RELU_NEXT_MAPS
            elif n_next <= SMALL_PRODUCT:
                row[_MODE] = _GATED_PRODUCT
            else:
                return None
            _, candidate, rounding = work["vanish"][level + 1]
            row[_N_NEXT], row[_FUSED] = n_next, fused
            row[_CHUNK] = min(max(CHUNK_BYTES // (24 * n_next), 256), CHUNK_FACES)
            row[_WT], row[_W], row[_B] = put(work["WT", level], data), put(Wn, data), put(bn, data)
            row[_MU], row[_CANDIDATE] = put(work["vanish"][level][0], data), put(candidate, data)
            row[_PTR], row[_IDX], row[_VAL], row[_NNZ] = put(ptr, index), put(idx, index), put(val, data), len(val)
        rows.append(row)
        floats.append((on, off_slope, rounding))
    ints = np.array(rows, np.int64).reshape(-1, _N_INTS)
    levels = (ints, np.array(floats, np.float64).reshape(-1, 3),
              np.concatenate(data) if data else np.zeros(0), np.concatenate(index) if index else np.zeros(0, np.int64))
    bytes_per_layer = tuple((s + 7) // 8 for s in setup.sizes)
    return SmallChain(setup, tol, exponent, levels, bytes_per_layer, bytes_per_region)


@njit(cache=True)
def _with_layer(pattern, parent, bits):
    """The earlier layers' packed patterns of each child (its parent's row) followed by its own bits."""
    n_old = pattern.shape[1]
    out = np.empty((parent.shape[0], n_old + bits.shape[1]), np.uint8)
    for c in range(parent.shape[0]):
        out[c, :n_old] = pattern[parent[c]]
        out[c, n_old:] = bits[c]
    return out


@njit(cache=True)
def _layer_blocks(pattern, bytes_per_layer):
    """The (C, sum of bytes) patterns as each layer's (C, bytes) block, the blocks one after the other."""
    C = pattern.shape[0]
    out = np.empty(pattern.size, np.uint8)
    at = 0
    col = 0
    for k in range(bytes_per_layer.shape[0]):
        nb = bytes_per_layer[k]
        for c in range(C):
            for j in range(nb):
                out[at + c * nb + j] = pattern[c, col + j]
        at += C * nb
        col += nb
    return out


@njit(cache=True)
def run_small_chain(xy, off, lab, M, ints, floats, data, index, tol, diam, exponent, bytes_per_layer):
    """The chain path on one plan (NOTE [small chain]): (status, xy, offsets, labels, pattern blocks, maps)
    in the plane's own coordinates (``from_size_units``'s power-of-two rescaling applied); status
    ``OVERFLOW`` (and empty arrays) when a level has more children than one chunk. Nothing the caller
    passes is written to."""
    pattern = np.zeros((1, 0), np.uint8)
    maps = M
    for level in range(ints.shape[0]):
        mode, n, n_next = ints[level, _MODE], ints[level, _N], ints[level, _N_NEXT]
        slope_on, slope_off = floats[level, 0], floats[level, 1]
        n_faces = off.shape[0] - 1
        cxy, coff, clab, cparent, cbits, _, _ = K.split_faces(xy, off, lab, maps, ints[level, _BASE], tol, diam)
        n_children = cparent.shape[0]
        pattern = cbits if level == 0 else _with_layer(pattern, cparent, cbits)
        if mode == _OUTPUT_GATE:
            scale = data[ints[level, _SCALE]:ints[level, _SCALE] + n]
            maps = K.gate_children(maps, cparent, cbits, slope_on, slope_off, scale)
            xy, off, lab = cxy, coff, clab
            break
        if n_children > ints[level, _CHUNK]:
            return OVERFLOW, xy[:0], off[:0], lab[:0], np.zeros(0, np.uint8), maps[:0]
        ref = cbits[np.searchsorted(cparent, np.arange(n_faces))]
        WT = data[ints[level, _WT]:ints[level, _WT] + n * n_next].reshape((n, n_next))
        b = data[ints[level, _B]:ints[level, _B] + n_next]
        if mode == _RELU_NEXT_MAPS:
            G = CK.relu_next_maps(maps, ref, slope_on, WT, b, np.empty((n_faces, 3, n_next)))
        else:
            W = data[ints[level, _W]:ints[level, _W] + n * n_next].reshape((n_next, n))
            G = K.gated_product(maps, ref, slope_on, slope_off, W, b)
        groups = np.empty(n_children + 1, np.int64)  # runs of siblings, closed by n_children
        n_groups = 1
        groups[0] = 0
        for c in range(1, n_children):
            if cparent[c] != cparent[c - 1]:
                groups[n_groups] = c
                n_groups += 1
        groups[n_groups] = n_children
        mu = data[ints[level, _MU]:ints[level, _MU] + 3 * n].reshape((3, n))
        candidate = data[ints[level, _CANDIDATE]:ints[level, _CANDIDATE] + 3 * n_next].reshape((3, n_next))
        child = np.empty((n_children, 3, n_next))
        if ints[level, _FUSED]:
            CK.fused_child_maps(G, maps, WT, cparent, cbits, ref, slope_on, slope_off, 0, child, groups[:n_groups + 1],
                                b, mu, candidate, floats[level, 2])
        else:
            nnz = ints[level, _NNZ]
            ptr = index[ints[level, _PTR]:ints[level, _PTR] + (n + 1 if nnz else 0)]
            idx = index[ints[level, _IDX]:ints[level, _IDX] + nnz]
            val = data[ints[level, _VAL]:ints[level, _VAL] + nnz]
            K.child_maps(G, maps, WT, ptr, idx, val, cparent, cbits, ref, slope_on, slope_off, 0, child,
                         groups[:n_groups + 1], b, mu, candidate, floats[level, 2])
        xy, off, lab, maps = cxy, coff, clab, child
    # from_size_units: xy times 2^e, the maps' two slopes times 2^-e (exact: powers of two)
    if ints.shape[0] == 0:  # no hidden layer: the plan's window and first maps, copied
        xy, off, lab, maps = xy.copy(), off.copy(), lab.copy(), M.copy()
    if -1022 <= exponent <= 1022:  # 2^e and 2^-e are normal floats: a product by them is ldexp, rounding included
        up, down = math.ldexp(1.0, exponent), math.ldexp(1.0, -exponent)
        for i in range(xy.shape[0]):
            xy[i, 0] *= up
            xy[i, 1] *= up
        for f in range(maps.shape[0]):
            for r in range(2):
                for j in range(maps.shape[2]):
                    maps[f, r, j] *= down
    else:
        for i in range(xy.shape[0]):
            xy[i, 0] = math.ldexp(xy[i, 0], exponent)
            xy[i, 1] = math.ldexp(xy[i, 1], exponent)
        for f in range(maps.shape[0]):
            for r in range(2):
                for j in range(maps.shape[2]):
                    maps[f, r, j] = math.ldexp(maps[f, r, j], -exponent)
    blocks = pattern.ravel() if bytes_per_layer.shape[0] == 1 else _layer_blocks(pattern, bytes_per_layer)
    return 0, xy, off, lab, blocks, maps


#: Results up to this size skip the "auto" memory budget when NETATLAS_MEMORY_BUDGET is unset (the budget is
#: then half the physical memory, read from the system on each call: far more than this on any machine).
SMALL_RESULT_BYTES = 1 << 20


def plane_key(plane, tolerance) -> tuple:
    """What a partition depends on of the plane and the tolerance, as a hashable tuple (the plan's key):
    the frame, the bounds and the window's outline (a disc and a square of one bounding box differ)."""
    outline = plane.outline
    return (plane.origin.tobytes(), plane.d1.tobytes(), plane.d2.tobytes(), plane.bounds,
            None if outline is None else outline.tobytes(), tolerance)


def small_chain(facts, key, setup, tol: float, exponent: int) -> SmallChain | None:
    """The plan of the latest plane (``key``: :func:`plane_key`) from ``setup()`` (the chain set-up), kept in
    ``facts`` (``_prepared.PreparedNet``); None when the net or the plane takes the general chain path."""
    fused = _chain.FUSED_KERNELS
    plan = facts.last(("small_chain", fused), key, lambda: small_chain_plan(setup(), tol, exponent, fused,
                                                                                   facts.bytes_per_region))
    return None if plan is None or plan.overflowed else plan


def kept_small_chain(facts, key) -> SmallChain | None:
    """The plan :func:`small_chain` made for ``key`` on an earlier call, without building one (None then)."""
    plan = facts.peek(("small_chain", _chain.FUSED_KERNELS), key)
    return None if plan is None or plan.overflowed else plan


def small_chain_partition(plan: SmallChain, net, plane, limits=None):
    """The :class:`~netatlas.regions.Partition` of ``plan`` on ``plane`` (the plane as the caller gave it), or
    None when a level outgrew one chunk (``plan.overflowed`` is set: take ``_chain.chain_partition``).
    ``limits`` (``_scale.Limits``) sees the count; without it, results over ``SMALL_RESULT_BYTES`` are checked
    against the "auto" memory budget, and every result when NETATLAS_MEMORY_BUDGET is set."""
    status, xy, off, lab, blocks, maps = run_small_chain(plan.xy, plan.off, plan.lab, plan.M, plan.ints, plan.floats,
                                                         plan.data, plan.index, plan.tol, plan.diam, plan.exponent,
                                                         plan.layer_bytes)
    if status == OVERFLOW:
        plan.overflowed = True
        return None
    n_regions = len(off) - 1
    if limits is None and (n_regions * plan.bytes_per_region > SMALL_RESULT_BYTES
                           or os.environ.get("NETATLAS_MEMORY_BUDGET")):
        limits = _scale.Limits(None, _scale.budget_bytes("auto", "partition"), plan.bytes_per_region, 1.0, False)
    if limits is not None:
        limits.add(n_regions, limits.total_area)
    if len(plan.bytes_per_layer) == 1:
        bits = (blocks.reshape(n_regions, -1),)
    else:
        at = np.cumsum((0, *plan.bytes_per_layer)) * n_regions
        bits = tuple(blocks[at[k]:at[k + 1]].reshape(n_regions, -1) for k in range(len(plan.bytes_per_layer)))
    part = object.__new__(Partition)  # Partition(...) sets its 16 fields one object.__setattr__ at a time: that
    # took more than the kernel of a 2-8-3 net; the fields are set at once (test_regions_smallchain checks all)
    object.__setattr__(part, "__dict__", {
        "plane": plane, "center": plan.center.copy(), "xy": xy, "offsets": off, "labels": lab, "pattern_bits": bits,
        "maps": maps, "units_per_layer": plan.sizes, "layer_names": plan.names, "tolerance": plan.tol,
        "method": "chain", "choices": (), "max_units_per_layer": (), "max_layer_names": (), "net": net, "_cache": {}})
    return part
