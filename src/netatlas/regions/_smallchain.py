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

NOTE [refill]: a repeated call knows the shapes of its result (its plan's previous run: a run is a function of the
plan), so it makes the five arrays itself and the kernel fills them (:func:`rerun_small_chain`): numba hands an
array it made to Python at ~0.4 us, against 0.1 us for ``np.empty``. The plan's first run takes the same kernel
twice when the result is small for sure (``SmallChain.bounded``): once for the shapes and once into the arrays;
machine code that has not run since the plan was built costs the next call more than that second run (a 2-8-3
net's second call: ~16 us after another kernel's first run, ~12 us after this kernel's). Both take the plan's four
arrays packed into one (:func:`_refill_packed`: each array crossing into numba costs the call ~50 ns).

NOTE [maps pool]: fresh memory costs a page fault per 4 KiB page on its first write, and glibc hands large freed
blocks back to the system, so every call of a net with large output maps paid them again (a 2-100 relu net's
4.5 MB of maps: ~1,100 faults, ~2 ms, twice the kernel's run). A net keeps output maps of earlier runs
(``POOL_BUFFERS`` arrays of ``POOL_MIN_BYTES`` to ``POOL_MAX_BYTES``, any plane; fresh maps take a free slot)
and the kernel writes the next run's maps into one that nothing else holds any more: the pool's reference is
the only one left (``sys.getrefcount``; the Partition, any view of its maps and any other holder of the array or
of a view count). A result that is still held is never written to; one that was dropped lends its memory to the
next run.

NOTE [spare arrays]: the same for the five small arrays of a refilled run (NOTE [refill]): a plan keeps its latest
results' arrays (``SPARE_SETS`` sets), and a run writes into a set when nothing else holds any of its arrays
(``sys.getrefcount``, as in NOTE [maps pool]), else into five new ones. A loop that drops each result, or holds only
the latest, then makes no arrays at all (five ``np.empty``: ~0.45 us of a 2-8-3 net's ~8 us call); a result that is
still held, or any array or view of it, is never written to. The sets are taken out of the plan in one step
(``dict.pop`` under the GIL), so two threads never both find one free.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import threading

import numpy as np
from numba import njit

from netatlas.regions import _chain, _scale
from netatlas.regions import _chainkernels as CK
from netatlas.regions import _kernels as K
from netatlas.regions._affine import activation_slopes
from netatlas.regions._partition import Partition

__all__ = ["OVERFLOW", "POOL_BUFFERS", "POOL_MAX_BYTES", "POOL_MIN_BYTES", "RESIZED", "SMALL_RESULT_BYTES",
           "SPARE_MAX_BYTES", "SPARE_SETS", "MapsPool", "SmallChain", "kept_small_chain", "plane_key",
           "rerun_small_chain", "run_small_chain", "small_chain", "small_chain_partition", "small_chain_plan"]

#: ``run_small_chain``'s status when a level has more children than one chunk (see NOTE [small chain]).
OVERFLOW = 1
#: ``rerun_small_chain``'s status when the result's shapes are not those of the plan's previous run.
RESIZED = 2
#: Repeated runs of a plan whose results take up to this size skip the "auto" memory budget once a run passed
#: it (reading it costs a tenth of a 2-8-3 run: NETATLAS_MEMORY_BUDGET from the environment, or half the physical
#: memory); a NETATLAS_MEMORY_BUDGET below this set later in the process applies to new plans only.
SMALL_RESULT_BYTES = 1 << 20
#: Output maps of at least this size are written into a pooled array a dropped result held (NOTE [maps pool]);
#: smaller ones into arrays of the known shapes made for each call (NOTE [refill]).
POOL_MIN_BYTES = 1 << 20
#: Output maps over this size are not kept for reuse (the pool holds memory as long as the net lives).
POOL_MAX_BYTES = 1 << 25
#: Sets of a plan's five arrays kept for later runs (NOTE [spare arrays]): three, so that a loop holding its
#: latest result (``part = partition(net, plane)``) and one more (the best so far) still finds one free.
SPARE_SETS = 3
#: Output maps up to this size are kept with their arrays for later runs (above it, making them costs little
#: next to the run).
SPARE_MAX_BYTES = 1 << 16
#: Arrays a net's pool keeps. One: a second would keep more memory from the rest of the process while the net
#: lives (measured: regioncam run after netatlas in one process took 5.0 ms instead of 2.6 ms on 2-100 relu).
POOL_BUFFERS = 1
_refcount = sys.getrefcount
_NO_BUFFER = np.empty(0)  # run_small_chain's ``out`` when the maps are small or no pooled array is free
_INT64, _UINT8 = np.dtype(np.int64), np.dtype(np.uint8)
# rerun_small_chain's arrays when the shapes are not known yet (a plan's first run)
_NO_ARRAYS = (np.empty((0, 2)), np.empty(0, _INT64), np.empty(0, _INT64), np.empty((0, 0), _UINT8), np.empty((0, 3, 0)))

# level modes: how the next layer's maps are made
_GATED_PRODUCT, _RELU_NEXT_MAPS, _OUTPUT_GATE, _NARROW_PRODUCT = 0, 1, 2, 3
# columns of a plan's ``ints`` (n_levels, _N_INTS) and ``floats`` (n_levels, 3)
(_MODE, _N, _N_NEXT, _BASE, _CHUNK, _FUSED, _WT, _W, _B, _MU, _CANDIDATE, _SCALE, _PTR, _IDX, _VAL, _NNZ,
 _N_INTS) = range(17)


class SmallChain:
    """One (net, plane) of the chain path packed for :func:`run_small_chain`.

    Attributes
    ----------
    args : tuple
        :func:`run_small_chain`'s arguments: ``ints`` (n_levels, 16) int64, per hidden layer its mode, widths,
        unit base, chunk, fused child maps and the offsets of its arrays in ``data``/``index``; ``floats``
        (n_levels, 3), per hidden layer the on and off slopes and the next layer's roundings K (NOTE
        [vanishing units]); ``data`` (float64) and ``index`` (int64): a header (the tolerance and diameter, the
        window as one face, the first layer's maps, the plane's exponent e, the pattern bytes per layer) and the
        layers' matrices (W^T, W, b, magnitude bounds, candidate thresholds, output scales, sparse columns), flat.
    tol : float
        The boundary tolerance.
    center : ndarray of shape (2,)
        The window's centre in the plane's own coordinates.
    bytes_per_layer : tuple of int
        Packed pattern bytes per activation layer.
    bytes_per_region : int
        ``_scale.bytes_per_region`` of the net (for the memory budget).
    overflowed : bool
        Set when a run met a level of more than one chunk: this plane takes the general path.
    within_budget : bool
        Set when a run's results, at most ``SMALL_RESULT_BYTES``, passed the "auto" memory budget.
    maps_size : int
        Entries of the latest run's output maps (0 before the first run).
    shapes : tuple or None
        The shapes of the latest run's (xy, offsets, labels, patterns, maps) when its maps are smaller than
        ``POOL_MIN_BYTES`` (the next run then fills arrays of these shapes, :func:`rerun_small_chain`), else None.
    bounded : bool
        Whether every run's maps are smaller than ``POOL_MIN_BYTES`` (the last level's children fit one chunk):
        the first run then takes :func:`rerun_small_chain` too (NOTE [refill]).
    pool : MapsPool
        The net's pooled output maps (NOTE [maps pool]), shared by the plans of one net.
    spares : tuple
        Up to ``SPARE_SETS`` refilled runs' ``shapes`` and (xy, offsets, labels, patterns, maps), newest first,
        written again by a later run when ``shapes`` is still the plan's and nothing else holds them (NOTE [spare
        arrays]); absent while a run has taken them.
    """

    def __init__(self, setup, tol: float, exponent: int, levels, bytes_per_layer, bytes_per_region: int,
                 pool: MapsPool | None = None):
        self.tol = float(tol)
        self.center = np.ldexp(setup.center, exponent)
        self.sizes, self.names = tuple(int(s) for s in setup.sizes), setup.names
        self.bytes_per_layer = bytes_per_layer
        self.bytes_per_region = bytes_per_region
        self.small_regions = SMALL_RESULT_BYTES // bytes_per_region  # results of at most this many regions are small
        self.one_layer = len(bytes_per_layer) == 1
        # every field of a Partition in order, those that are the same on every run filled in: a copy of a dict
        # of the final size is filled faster than a dict is built (a tenth of a 2-8-3 net's run)
        self.fields = dict.fromkeys(f.name for f in dataclasses.fields(Partition))
        self.fields.update(units_per_layer=self.sizes, layer_names=self.names, tolerance=self.tol, method="chain",
                           choices=(), max_units_per_layer=(), max_layer_names=())
        self.args = levels  # run_small_chain's arguments: ints, floats, data, index
        self.overflowed = False
        self.within_budget = False  # a run's results (up to SMALL_RESULT_BYTES) passed the "auto" budget
        self.maps_size = 0
        self.shapes = None
        self.cuts = (-1, ())  # see _cuts
        self.refill = None  # see _rerun
        self.packed = _packed(*levels)  # see _refill_packed
        self.spares = ()
        ints = levels[0]  # the last level's children fit its chunk unless it gates the output (no check there)
        self.bounded = len(ints) == 0 or (ints[-1, _MODE] != _OUTPUT_GATE
                                          and 24 * int(ints[-1, _CHUNK] * ints[-1, _N_NEXT]) < POOL_MIN_BYTES)
        self.pool = MapsPool() if pool is None else pool


def small_chain_plan(setup, tol: float, exponent: int, fused_kernels: bool,
                     bytes_per_region: int, pool: MapsPool | None = None) -> SmallChain | None:
    """The :class:`SmallChain` of ``setup`` (a ``_chain._ChainSetup``), or None when a level's next maps
    would come from BLAS or sparse factors (``_chain._chain_level``'s choices, made here once); ``pool``: the
    net's pooled maps (NOTE [maps pool])."""
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

    # the header (see run_small_chain): the window as one face, the first maps, the pattern bytes per layer
    bytes_per_layer = tuple((s + 7) // 8 for s in setup.sizes)
    n_vertices, n_first = len(setup.xy), setup.M.shape[2]
    put(np.array([tol, setup.diam]), data), put(setup.xy, data), put(setup.M, data)
    put(np.array([exponent, n_vertices, n_first, len(bytes_per_layer)]), index)
    put(setup.off, index), put(setup.lab, index), put(np.array(bytes_per_layer, np.int64), index)

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
                if level == 1 and activation_slopes(layers[0][2])[1] == 0.0:
                    return None  # the slice's children: _chain_level may take the sibling path (not in this kernel)
                row[_MODE] = _RELU_NEXT_MAPS
            elif n_next <= SMALL_PRODUCT:
                row[_MODE] = _NARROW_PRODUCT if fused_kernels else _GATED_PRODUCT  # as _chain.next_maps
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
    levels = (ints, np.array(floats, np.float64).reshape(-1, 3), np.concatenate(data).astype(np.float64),
              np.concatenate(index).astype(np.int64))
    return SmallChain(setup, tol, exponent, levels, bytes_per_layer, bytes_per_region, pool)


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
def _first_child_bits(cbits, cparent, n_faces):
    """``cbits[np.searchsorted(cparent, np.arange(n_faces))]`` (each face's first child's bits; the parents are
    sorted and every face has a child: ``split_faces`` covers each face) in one allocation instead of three."""
    ref = np.empty((n_faces, cbits.shape[1]), np.uint8)
    c, last = 0, cparent.shape[0] - 1
    for f in range(n_faces):
        while c < last and cparent[c] < f:
            c += 1
        ref[f] = cbits[c]
    return ref


@njit(cache=True)
def _room(out, n_faces, n):
    """(n_faces, 3, n) maps in the front of the free buffer ``out`` when it holds them, else fresh ones."""
    if out.shape[0] >= n_faces * 3 * n:
        return out[:n_faces * 3 * n].reshape((n_faces, 3, n))
    return np.empty((n_faces, 3, n))


@njit(cache=True)
def run_small_chain(ints, floats, data, index, out):
    """The chain path on one plan (``SmallChain.args``, NOTE [small chain]): see :func:`_run`."""
    return _run(ints, floats, data, index, out)


@njit(cache=True)
def _run(ints, floats, data, index, out):
    """The chain path on one plan (``SmallChain.args``, NOTE [small chain]): (status, xy, offsets, labels,
    patterns, maps) in the plane's own coordinates (``from_size_units``'s power-of-two rescaling applied);
    status ``OVERFLOW`` (and empty arrays) when a level has more children than one chunk. The output maps are
    written to the front of ``out`` (float64, flat; a buffer no result holds, see NOTE [maps pool]) when it
    holds them, else to fresh memory; nothing else the caller passes is written to. (Few arguments: each one
    costs the call ~50 ns, a tenth of a 2-8-3 net's run.)"""
    tol, diam = data[0], data[1]
    exponent, n_vertices, n_first, n_layers = index[0], index[1], index[2], index[3]
    xy = data[2:2 + 2 * n_vertices].reshape((n_vertices, 2))
    M = data[2 + 2 * n_vertices:2 + 2 * n_vertices + 3 * n_first].reshape((1, 3, n_first))
    off = index[4:6]
    lab = index[6:6 + n_vertices]
    bytes_per_layer = index[6 + n_vertices:6 + n_vertices + n_layers]
    pattern = np.zeros((1, 0), np.uint8)
    maps = M
    for level in range(ints.shape[0]):
        mode, n, n_next = ints[level, _MODE], ints[level, _N], ints[level, _N_NEXT]
        slope_on, slope_off = floats[level, 0], floats[level, 1]
        n_faces = off.shape[0] - 1
        cxy, coff, clab, cparent, cbits, cut_off, cut_units = K.split_faces(xy, off, lab, maps, ints[level, _BASE],
                                                                            tol, diam)
        n_children = cparent.shape[0]
        pattern = cbits if level == 0 else _with_layer(pattern, cparent, cbits)
        if mode == _OUTPUT_GATE:
            scale = data[ints[level, _SCALE]:ints[level, _SCALE] + n]
            maps = K.gate_children_into(maps, cparent, cbits, slope_on, slope_off, scale, _room(out, n_children, n))
            xy, off, lab = cxy, coff, clab
            break
        if n_children > ints[level, _CHUNK]:
            return OVERFLOW, xy[:0], off[:0], lab[:0], np.zeros((0, 0), np.uint8), maps[:0]
        ref = _first_child_bits(cbits, cparent, n_faces)
        WT = data[ints[level, _WT]:ints[level, _WT] + n * n_next].reshape((n, n_next))
        b = data[ints[level, _B]:ints[level, _B] + n_next]
        if mode == _RELU_NEXT_MAPS:
            G = CK.relu_next_maps(maps, ref, slope_on, WT, b, np.empty((n_faces, 3, n_next)))
        elif mode == _NARROW_PRODUCT:
            W = data[ints[level, _W]:ints[level, _W] + n * n_next].reshape((n_next, n))
            G = CK.narrow_next_maps(maps, ref, slope_on, slope_off, W, b)
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
        child = _room(out, n_children, n_next) if level == ints.shape[0] - 1 else np.empty((n_children, 3, n_next))
        if ints[level, _FUSED]:
            CK.fused_child_maps(G, maps, WT, cparent, cbits, ref, slope_on, slope_off, 0, child, groups[:n_groups + 1],
                                b, mu, candidate, floats[level, 2], cut_off, cut_units)
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
        xy, off, lab, maps = xy.copy(), off.copy(), lab.copy(), _room(out, 1, n_first)
        maps[:] = M
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
    # one layer: its (C, bytes) patterns; more: the layers' blocks one after the other, as one row
    blocks = pattern if bytes_per_layer.shape[0] == 1 else _layer_blocks(pattern, bytes_per_layer).reshape((1, -1))
    return 0, xy, off, lab, blocks, maps


@njit(cache=True)
def rerun_small_chain(ints, floats, data, index, xy, off, lab, blocks, maps):
    """:func:`_run` into the arrays ``xy, off, lab, blocks, maps`` of the shapes the plan's run returns (a run
    is a function of the plan: the same shapes every time); (status, n_vertices, n_regions, the patterns' two
    sizes, n_outputs): the status ``RESIZED`` when the shapes differ (then nothing of use is written; the
    numbers give the shapes). Made by the caller, these arrays cost the call less than five made here (numba
    hands each array it made to Python at ~0.4 us, ten times an allocation)."""
    status, cxy, coff, clab, cblocks, cmaps = _run(ints, floats, data, index, maps.reshape(-1))
    sizes = (cxy.shape[0], coff.shape[0] - 1, cblocks.shape[0], cblocks.shape[1], cmaps.shape[2])
    if status != 0:
        return (status, *sizes)
    if (cxy.shape != xy.shape or coff.shape != off.shape or clab.shape != lab.shape or cblocks.shape != blocks.shape
            or cmaps.shape != maps.shape):
        return (RESIZED, *sizes)
    xy[:] = cxy  # (the maps were written into ``maps`` itself: it holds them exactly)
    off[:] = coff
    lab[:] = clab
    blocks[:] = cblocks
    return (0, *sizes)


@njit(cache=True)
def _refill_packed(packed, xy, off, lab, blocks, maps):
    """``rerun_small_chain`` on the plan's four arrays packed into one (``_packed``): each array the call hands over
    costs it ~50 ns (numba makes a reference record for each), a twentieth of a 2-8-3 net's call."""
    head = packed[:3].view(np.int64)
    n_levels, n_data, n_index = head[0], head[1], head[2]
    at = 3 + n_levels * _N_INTS
    ints = packed[3:at].view(np.int64).reshape((n_levels, _N_INTS))
    floats = packed[at:at + 3 * n_levels].reshape((n_levels, 3))
    at += 3 * n_levels
    data = packed[at:at + n_data]
    index = packed[at + n_data:at + n_data + n_index].view(np.int64)
    return rerun_small_chain(ints, floats, data, index, xy, off, lab, blocks, maps)


def _packed(ints, floats, data, index):
    """A plan's four arrays in one float64 array for :func:`_refill_packed` (the integers' bytes as they are)."""
    head = np.array([len(ints), data.size, index.size], np.int64)
    return np.concatenate([head.view(np.float64), np.ascontiguousarray(ints, np.int64).ravel().view(np.float64),
                           np.ascontiguousarray(floats, np.float64).ravel(), data, index.view(np.float64)])


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
    plan = facts.last(("small_chain", fused), key, lambda: small_chain_plan(
        setup(), tol, exponent, fused, facts.bytes_per_region, facts.cached(("maps_pool",), lambda net: MapsPool())))
    return None if plan is None or plan.overflowed else plan


def kept_small_chain(facts, plane, tolerance) -> SmallChain | None:
    """The plan :func:`small_chain` made for ``plane_key(plane, tolerance)`` on an earlier call, without
    building one (None then)."""
    plan = facts.peek(("small_chain", _chain.FUSED_KERNELS), plane_key(plane, tolerance))
    return None if plan is None or plan.overflowed else plan


def small_chain_partition(plan: SmallChain, net, plane, limits=None):
    """The :class:`~netatlas.regions.Partition` of ``plan`` on ``plane`` (the plane as the caller gave it), or
    None when a level outgrew one chunk (``plan.overflowed`` is set: take ``_chain.chain_partition``).
    ``limits`` (``_scale.Limits``) sees the count; without it, results over ``SMALL_RESULT_BYTES`` are checked
    against the "auto" memory budget, and so is every run until one passed it (see ``SMALL_RESULT_BYTES``)."""
    shapes = plan.shapes
    if shapes is None and plan.bounded:  # a first run whose maps are small for sure: the kernel gives the shapes
        # (and runs again below: the code the next runs take runs now, not cold in the second call, NOTE [refill])
        status, *sizes = _rerun(plan, *_NO_ARRAYS)
        if status == OVERFLOW:
            plan.overflowed = True
            return None
        shapes = plan.shapes = _shapes(*sizes)
    if shapes is not None:  # small maps, shapes known: arrays made here (or a dropped result's), filled by the kernel
        # an earlier result's arrays when nothing else holds any of them (NOTE [spare arrays]), taken in one step
        spares = plan.__dict__.pop("spares", ())
        for spare in spares:
            if spare[0] is shapes and _refcount(spare[1]) == _refcount(spare[2]) == _refcount(spare[3]) == \
                    _refcount(spare[4]) == _refcount(spare[5]) == 2:  # the set's reference and the argument's
                _, xy, off, lab, blocks, maps = spare
                break
        else:
            empty = np.empty
            xy, off, lab = empty(shapes[0]), empty(shapes[1], _INT64), empty(shapes[2], _INT64)
            blocks, maps = empty(shapes[3], _UINT8), empty(shapes[4])
            if maps.nbytes <= SPARE_MAX_BYTES:  # newest first, the oldest set let go
                spares = ((shapes, xy, off, lab, blocks, maps), *spares[:SPARE_SETS - 1])
        refill = plan.refill  # _refill_packed's compiled entry point once it ran (see _rerun)
        if refill is not None:
            status = refill(plan.packed, xy, off, lab, blocks, maps)[0]
        else:
            status = _rerun(plan, xy, off, lab, blocks, maps)[0]
        if status == RESIZED:
            plan.shapes = shapes = None
        else:
            plan.spares = spares
    if shapes is None:
        size, pool = plan.maps_size, plan.pool  # size 0: the plan's first run (any free array may fit)
        buffer = pool.take(size) if pool and (size == 0 or POOL_MIN_BYTES <= 8 * size <= POOL_MAX_BYTES) else None
        status, xy, off, lab, blocks, maps = run_small_chain(*plan.args, _NO_BUFFER if buffer is None else buffer)
        if status == 0:
            plan.maps_size = maps.size
            if maps.nbytes < POOL_MIN_BYTES:
                plan.shapes = (xy.shape, off.shape, lab.shape, blocks.shape, maps.shape)
            elif (buffer is None or buffer.size < maps.size) and maps.nbytes <= POOL_MAX_BYTES:
                pool.keep(maps)  # fresh memory: lent to a later run once this result is dropped
    if status == OVERFLOW:
        plan.overflowed = True
        return None
    n_regions = len(off) - 1
    small = n_regions <= plan.small_regions
    if limits is None and not (small and plan.within_budget):
        limits = _scale.Limits(None, _scale.budget_bytes("auto", "partition"), plan.bytes_per_region, 1.0, False)
    if limits is not None:
        limits.add(n_regions, limits.total_area)  # raises RegionLimitError past the budget
        plan.within_budget = small
    if plan.one_layer:
        bits = (blocks,)
    else:  # the layers' blocks one after the other in one row
        cuts = plan.cuts if plan.cuts[0] == n_regions else _cuts(plan, n_regions)
        bits = tuple([blocks[0, a:b].reshape(n_regions, n) for a, b, n in cuts[1]])
    part = object.__new__(Partition)  # Partition(...) sets its 16 fields one object.__setattr__ at a time: that
    # took more than the kernel of a 2-8-3 net; the fields are set at once (test_regions_smallchain checks all)
    fields = plan.fields.copy()
    fields["plane"], fields["center"], fields["xy"], fields["offsets"] = plane, plan.center.copy(), xy, off
    fields["labels"], fields["pattern_bits"], fields["maps"], fields["net"] = lab, bits, maps, net
    fields["_cache"] = {}
    object.__setattr__(part, "__dict__", fields)
    return part


def _rerun(plan: SmallChain, *arrays) -> tuple:
    """``rerun_small_chain(*plan.args, *arrays)``; when that is the compiled kernel (not a test's stand-in), run as
    :func:`_refill_packed`, whose compiled entry point is then kept with the plan for the next runs (``plan.refill``:
    numba's type dispatch skipped, ~0.2 us of a 2-8-3 net's ~8 us call; the first run takes it twice, so that a new
    process loads one compiled function, not two)."""
    if getattr(rerun_small_chain, "overloads", None) is None:  # a test replaced it
        return rerun_small_chain(*plan.args, *arrays)
    result = _refill_packed(plan.packed, *arrays)
    if plan.refill is None:
        from numba import typeof

        compiled = _refill_packed.overloads.get(tuple(typeof(a) for a in (plan.packed, *arrays)))
        if compiled is not None:
            plan.refill = compiled.entry_point
    return result


def _cuts(plan: SmallChain, n_regions: int) -> tuple:
    """(n_regions, per layer (start, stop, bytes)): where each layer's patterns lie in a run's one row of blocks,
    kept with the plan (a repeated run has the same count)."""
    at = n_regions * np.cumsum((0, *plan.bytes_per_layer))
    plan.cuts = (n_regions, tuple((int(a), int(b), n) for a, b, n in zip(at[:-1], at[1:], plan.bytes_per_layer,
                                                                         strict=True)))
    return plan.cuts


def _shapes(n_vertices, n_regions, block_rows, block_columns, n_outputs) -> tuple:
    """The shapes of a run's (xy, offsets, labels, patterns, maps) from :func:`rerun_small_chain`'s numbers."""
    return ((n_vertices, 2), (n_regions + 1,), (n_vertices,), (block_rows, block_columns), (n_regions, 3, n_outputs))


class MapsPool:
    """A net's pooled output maps (NOTE [maps pool]): at most ``POOL_BUFFERS`` arrays, taken and kept under a lock
    (two threads partitioning one net must not both find one array free)."""

    def __init__(self):
        self.arrays: list = []
        self._lock = threading.Lock()

    def __bool__(self) -> bool:
        return bool(self.arrays)

    def take(self, size: int):
        """A flat view of a pooled array of at least ``size`` entries that only the pool holds, or None; the view
        holds the array, so it is no longer free."""
        with self._lock:
            for k in range(len(self.arrays)):
                maps = self.arrays[k]
                # three references: the pool's, ``maps`` and getrefcount's argument
                if maps.size >= size and sys.getrefcount(maps) == 3:
                    return maps.reshape(-1)
        return None

    def keep(self, maps) -> None:
        """Pool fresh output ``maps``: in the place of a free array, else in a new place while there are fewer
        than ``POOL_BUFFERS``."""
        with self._lock:
            for k in range(len(self.arrays)):
                if sys.getrefcount(self.arrays[k]) == 2:  # the pool's and getrefcount's argument: free
                    self.arrays[k] = maps
                    return
            if len(self.arrays) < POOL_BUFFERS:
                self.arrays.append(maps)
