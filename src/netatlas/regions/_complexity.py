"""Local complexity: how many linear regions (and neuron hyperplanes) meet a small disc around each
point, exactly, and the sampled estimator of Humayun, Balestriero & Baraniuk (2024) next to it.

# NOTE [what is counted]
For a point p, a radius r and an orthonormal pair (d1, d2), the disc is
``{p + u d1 + v d2 : u^2 + v^2 <= r^2}``. Its bounding square ``[-r, r]^2`` is partitioned exactly
(the same kernels as :func:`netatlas.regions.partition`), and

- ``local_complexity(method="exact")`` counts the regions whose polygon comes closer than r to p
  (the centre inside, or some edge within distance r: polygon-disc intersection). A region that only
  touches the circle at one point is not counted (measure zero; ``DISC_TOLERANCE`` decides ties).
- ``hyperplanes_crossing(method="exact")`` counts, per activation node, the units whose sign changes
  inside the disc: some region meeting the disc has the unit on and another has it off (each unit's
  pre-activation is continuous and the disc connected, so this is exactly "its bent hyperplane
  crosses the disc").
- ``method="sampled"`` is the estimator of Humayun et al.: the vertices ``p +- r d_i`` of the
  cross-polytope spanned by the directions (here the plane's two, so it is the square inscribed in
  the disc) are forwarded through the network, and a unit counts when its pre-activation is not of
  one sign (``> 0`` vs ``<= 0``) over the vertices. It counts neurons, not regions, and misses a unit
  whose hyperplane crosses the disc without separating the vertices; compare it with
  ``hyperplanes_crossing(method="exact").sum(-1)``.
- ``local_complexity_1d`` counts the linear pieces of the segment ``{p + t d : |t| <= r}``.

Neuron counts are per activation node and per breakpoint (one per unit for ReLU/LeakyReLU, two for
a hardtanh with finite bounds, none for identity); max-pooling switches are not neurons and are not
counted there, though they do split regions (``local_complexity`` counts them).

Plain MLPs (``Net.as_mlp``) are batched: the squares of a chunk of points are split together, face
by face, so many tiny partitions cost one kernel call per layer. Other graphs (convolutions, ...)
run the graph path's partition / :func:`~netatlas.regions.along_line` per point; the partition drops a
face as soon as it is split off farther than r from the point (every region it would hold misses the
disc), so the square's corners are never refined, and it splits each node only by the units that are
not provably of one state on the whole square (NOTE [settled nodes] in ``_settled``).

# NOTE [cost limits]
A disc's square may hold more regions than ``max_regions`` (default ``MAX_REGIONS``) or than its working
memory allows under the memory budget; the call then stops with a one-line :class:`RegionLimitError`
that gives an estimate of the disc's regions and the options.

- Batched MLP discs are all estimated before any exact work (``estimate_discs``: exact pieces along
  four chords, read as the density of an isotropic line tessellation, as ``estimate_regions`` does for
  a slice; cheap there, and the batches are sized from it); the estimate is an order of magnitude, so
  the run checks again after every layer.
- Other graphs are watched during each disc's partition instead (``_DiscWatch``): the regions found so
  far, over the share of the disc's area they cover, extrapolate to the disc; once they pass
  ``WATCH_FROM`` of the cap and the extrapolation passes the cap, or they reach the cap, the run stops
  with that estimate (at most the cap's worth of memory is ever held). A chord estimate first cost more
  than the exact partition here and overestimated it tenfold (LeNet-5, r = 0.05: 1.7 s and 30-44k
  estimated against 1.2 s and 3.3-3.9k regions for three discs), refusing discs that fit the default cap.

A progress bar over the discs shows on a terminal when the estimated total passes ``PROGRESS_REGIONS``
(other graphs: whenever there is more than one disc).
"""

from __future__ import annotations

import math
import sys

import numpy as np
import torch

from netatlas._errors import DegenerateSliceError
from netatlas._memory import format_bytes
from netatlas._threads import one_blas_thread
from netatlas.nets import as_net
from netatlas.regions import _kernels as K
from netatlas.regions._affine import activation_slopes, check_piecewise_linear
from netatlas.regions._chain import chain_layers, next_maps, reused_buffer, sparse_columns, vanishing_bounds
from netatlas.regions._entry import partition
from netatlas.regions._graph import graph_partition
from netatlas.regions._lines import LINE_TOLERANCE, along_line
from netatlas.regions._partition import BOUNDARY_TOLERANCE
from netatlas.regions._roundoff import snap_vanishing
from netatlas.regions._scale import Limits, RegionLimitError, budget_bytes, bytes_per_region
from netatlas.slices import Line, Plane

__all__ = ["DISC_TOLERANCE", "MAX_REGIONS", "ORTHONORMAL_TOLERANCE", "estimate_discs", "exact_counts",
           "hyperplanes_crossing", "local_complexity", "local_complexity_1d", "random_directions"]

#: A region meets the disc when its distance to the centre is below ``r (1 - DISC_TOLERANCE)``.
DISC_TOLERANCE = 1e-9
#: Given directions must be orthonormal to this (absolute) accuracy, e.g. float32-normalised ones pass.
ORTHONORMAL_TOLERANCE = 1e-6
#: Points (times planes) handled per batch: bounds the memory of the per-face maps.
CHUNK = 64
#: Point-planes per Dask task (each task runs its rows in batches of CHUNK).
TASK = 4096
#: Vertices forwarded per batch by the sampled estimator.
SAMPLED_CHUNK = 8192
#: Default ``max_regions``: the most regions one disc's square may hold (a trained LeNet-5 at r = 0.05
#: around MNIST digits: 3-4 thousand regions per disc, a fraction of a second each; raise it knowingly).
MAX_REGIONS = 10_000
#: A progress bar shows on a terminal when the estimated regions of all discs pass this (as ``partition``).
PROGRESS_REGIONS = 20_000


# -- validation -----------------------------------------------------------------------------------
def _check_points(net, points, radius, where):
    if isinstance(points, torch.Tensor):
        points = points.detach().cpu().numpy()
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim == 0 or pts.size == 0:
        raise ValueError(f"{where}: points must be an array of shape (n_points, {net.n_inputs}) or "
                         f"(n_points, *{net.input_shape}); got shape {pts.shape}")
    n = pts.shape[0]
    if pts[0].size != net.n_inputs or (pts.ndim > 2 and pts.shape[1:] != net.input_shape):
        raise ValueError(f"{where}: points have shape {pts.shape} but the network takes inputs of "
                         f"{net.n_inputs} numbers (shape {net.input_shape}); pass (n_points, {net.n_inputs})")
    if not np.all(np.isfinite(pts)):
        raise ValueError(f"{where}: points contain NaN or infinite values")
    if isinstance(radius, bool) or not isinstance(radius, (int, float, np.floating, np.integer)) \
            or not math.isfinite(radius) or radius <= 0:
        raise ValueError(f"{where}: radius must be a finite number > 0; got {radius!r}")
    return pts.reshape(n, net.n_inputs), float(radius)


def _check_count(value, name, where):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{where}: {name} must be an integer >= 1; got {value!r}")
    return int(value)


def random_directions(n_points: int, n_planes: int, dim: int, k: int = 2, *, seed: int = 0) -> np.ndarray:
    """Seeded random orthonormal k-frames: shape (n_points, n_planes, k, dim).

    Each frame is the Q factor of a standard Gaussian (dim, k) matrix, i.e. uniform on the Stiefel
    manifold.

    >>> d = random_directions(3, 2, 5, seed=1)
    >>> d.shape, bool(np.allclose(np.einsum("pmid,pmjd->pmij", d, d), np.eye(2)))
    ((3, 2, 2, 5), True)
    """
    if dim < k:
        raise ValueError(f"random_directions: need dim >= {k} for {k} orthonormal directions; got dim={dim}")
    g = np.random.default_rng(seed).standard_normal((n_points, n_planes, dim, k))
    q, _ = np.linalg.qr(g)
    return np.ascontiguousarray(np.swapaxes(q, -1, -2))


def _directions(directions, n, n_planes, d, k, seed, where):
    if directions is None:
        return random_directions(n, n_planes, d, k, seed=seed)
    if isinstance(directions, torch.Tensor):
        directions = directions.detach().cpu().numpy()
    D = np.asarray(directions, dtype=np.float64)
    want = (n, "n_planes", 2, d) if k == 2 else (n, "n_lines", d)
    if k == 1 and D.ndim == 3:
        D = D[:, :, None, :]
    if D.ndim != 4 or D.shape[0] != n or D.shape[2] != k or D.shape[3] != d:
        raise ValueError(f"{where}: directions must have shape {want}; got {np.shape(directions)}")
    if not np.all(np.isfinite(D)):
        raise ValueError(f"{where}: directions contain NaN or infinite values")
    gram = np.einsum("pmid,pmjd->pmij", D, D)
    err = np.abs(gram - np.eye(k)).max()
    if err > ORTHONORMAL_TOLERANCE:
        raise DegenerateSliceError(f"{where}: directions must be orthonormal (unit length, and the two of a plane "
                                   f"perpendicular); the worst Gram entry is off by {err:.3g} (zero or "
                                   f"parallel directions?)")
    return D


# -- exact 2-D: batched chain ----------------------------------------------------------------------
def _chain_discs(net, layers, P, D, r, tol, want_bits=True, work=None, limits=None):
    """Faces of the squares [-r, r]^2 of m planes (P (m, d) centres, D (m, 2, d) directions).

    Vanishing units (NOTE [vanishing units] in ``_roundoff``) are snapped as in ``partition``, with
    magnitude bounds taken over all m planes (elementwise maxima of |P| and |D|: an upper bound for
    each plane, so the rule stays sound; it only widens the tolerance by that ratio).

    Returns (xy, off, owner (F,), bits: per hidden layer (F, ceil(n_k / 8)) packed uint8, or [] when
    ``want_bits`` is False). ``work`` holds map buffers reused across batches."""
    work = {} if work is None else work
    m = len(P)
    square = np.array([[-r, -r], [r, -r], [r, r], [-r, r]])
    xy = np.tile(square, (m, 1))
    off = np.arange(0, 4 * m + 1, 4, dtype=np.int64)
    lab = np.tile(np.array([-1, -2, -3, -4], np.int64), m)
    W0, b0, _ = layers[0]
    M = np.empty((m, 3, W0.shape[0]))
    M[:, 0], M[:, 1], M[:, 2] = D[:, 0] @ W0.T, D[:, 1] @ W0.T, P @ W0.T + b0
    vanish = vanishing_bounds(net, layers, np.abs(P).max(0), np.abs(D[:, 0]).max(0), np.abs(D[:, 1]).max(0))
    snap_vanishing(M, vanish[0][0], vanish[0][2])
    owner = np.arange(m)
    bits: list[np.ndarray] = []
    diam = 2 * math.sqrt(2) * r
    hidden = layers[:-1]
    base = np.concatenate([[0], np.cumsum([W.shape[0] for W, _, _ in hidden])]).astype(np.int64)
    for level, (W, _, act) in enumerate(hidden):
        n_faces = len(off) - 1
        if act.name == "identity":
            cparent = np.arange(n_faces)
            cbits = np.packbits(np.ones((n_faces, W.shape[0]), np.uint8), axis=1)
        else:
            xy, off, lab, cparent, cbits, _, _ = K.split_faces(xy, off, lab, M, base[level], tol, diam)
        owner = owner[cparent]
        if limits is not None:
            limits.check_run(np.bincount(owner, minlength=m).max(), len(owner), r,
                             f"layer {level + 1} of {len(hidden)}")
        if want_bits:
            bits = [b[cparent] for b in bits] + [cbits]
        if level + 1 == len(hidden):
            break
        on, off_slope = activation_slopes(act)
        Wn, bn, _ = layers[level + 1]
        ref = cbits[np.searchsorted(cparent, np.arange(n_faces))]
        G = next_maps(M, ref, on, off_slope, Wn, bn, work, level)
        C = len(cparent)
        Mc = reused_buffer(work, ("children", level), (C, 3, Wn.shape[0]))  # reused: no page faults per batch
        groups = np.concatenate([[0], np.flatnonzero(np.diff(cparent)) + 1, [C]]).astype(np.int64)
        _, candidate, n_roundings = vanish[level + 1]
        K.child_maps(G, M, np.ascontiguousarray(Wn.T), *sparse_columns(Wn), cparent, cbits, ref, on, off_slope, 0,
                     Mc, groups, bn, vanish[level][0], candidate, n_roundings)
        M = Mc
    return xy, off, owner, bits


def _disc_counts(xy, off, owner, bits, m, r):
    """Regions meeting each disc (m,) and units crossing it per layer (m, n_layers); ``bits`` are
    packed patterns per layer (F, ceil(n_k / 8)) uint8."""
    meets = K.polygon_origin_distance(xy, off) < r * (1 - DISC_TOLERANCE)
    owner_in = owner[meets]  # nondecreasing; every disc meets at least the region holding its centre
    regions = np.bincount(owner_in, minlength=m)
    starts = np.concatenate([[0], np.cumsum(regions)[:-1]])
    crossing = np.zeros((m, len(bits)), np.int64)
    for k, b in enumerate(bits):
        if b.shape[1] == 0:
            continue
        b_in = b[meets]
        mixed = np.bitwise_or.reduceat(b_in, starts, axis=0) & ~np.bitwise_and.reduceat(b_in, starts, axis=0)
        crossing[:, k] = np.unpackbits(mixed, axis=1).sum(1)
    return regions, crossing


def _exact_chunk(net, P, D, r, tol, want_crossing=True, limits=None, first_row=0):
    """(regions (m,), crossing (m, n_layers)) for m planes: centres P (m, d), directions D (m, 2, d);
    ``first_row``: the call's row of the first plane (for messages)."""
    layers = chain_layers(net)
    m = len(P)
    if layers is not None:
        if len(layers) == 1:  # affine net: one region, nothing crosses
            return np.ones(m, np.int64), np.zeros((m, 0), np.int64)
        work: dict = {}
        parts = []
        with one_blas_thread():
            for s in range(0, m, CHUNK):
                xy, off, owner, bits = _chain_discs(net, layers, P[s:s + CHUNK], D[s:s + CHUNK], r, tol, want_crossing,
                                                    work, limits)
                parts.append(_disc_counts(xy, off, owner, bits, min(CHUNK, m - s), r))
        return np.concatenate([a for a, _ in parts]), np.concatenate([c for _, c in parts])
    regions = np.empty(m, np.int64)
    crossing = np.zeros((m, len(net.activations)), np.int64)
    shape = net.input_shape
    for i in range(m):
        plane = Plane(P[i].reshape(shape), D[i, 0].reshape(shape), D[i, 1].reshape(shape), (-r, r, -r, r))
        if limits is None:
            part = partition(net, plane, tolerance=tol)
        else:  # the graph path partition, watched by this call's limits (NOTE [cost limits])
            part = graph_partition(net, plane, tol, _DiscWatch(limits, r, first_row + i), within=r)
        # the packed bits as the partition keeps them (no (regions, units) bool copy; a row's padding
        # bits are zero, as np.packbits leaves them)
        reg, cross = _disc_counts(part.xy + part.center, part.offsets, np.zeros(part.num_regions, np.int64),
                                  list(part.pattern_bits), 1, r)
        regions[i], crossing[i, :cross.shape[1]] = reg[0], cross[0]
    return regions, crossing


def _sampled_chunk(net, P, D, r):
    """(unit, breakpoint) pairs whose pre-activation is not on one side of the breakpoint over the 2k
    vertices p +- r d_i (ReLU: sign changes): (m, n_layers)."""
    m, k, d = D.shape
    verts = (P[:, None, None, :] + r * np.stack([D, -D], axis=1)).reshape(m * 2 * k, d)
    out = np.zeros((m, len(net.activations)), np.int64)
    per = 2 * k
    step = max(SAMPLED_CHUNK // per, 1) * per
    with torch.no_grad():
        for s in range(0, len(verts), step):
            zs = net.pre_activations(torch.from_numpy(verts[s:s + step]))
            rows = slice(s // per, (s + step) // per)
            for layer, (z, node) in enumerate(zip(zs, net.activations, strict=True)):
                for bp in net.nodes[node].op.breakpoints:  # relu: 0; hardtanh: min and max; identity: none
                    pos = (z > bp).reshape(-1, per, z.shape[1])
                    out[rows, layer] += (pos.any(1) & ~pos.all(1)).sum(1).numpy()
    return out


def _pieces_chunk(net, P, D, r, tol, max_regions=None, memory_budget=None):
    """Linear pieces (m,) on the segments p + t d, |t| <= r (P (m, d), D (m, d) unit vectors); more than
    ``max_regions`` pieces on a segment, or maps over ``memory_budget``, stop with RegionLimitError."""
    layers = chain_layers(net)
    if layers is None:
        shape = net.input_shape
        return np.array([along_line(net, Line((P[i] - r * D[i]).reshape(shape), (P[i] + r * D[i]).reshape(shape)),
                                    tolerance=tol, max_regions=max_regions, memory_budget=memory_budget).num_pieces
                         for i in range(len(P))], np.int64)
    budget = budget_bytes(memory_budget, "local_complexity_1d")
    return _chain_segments(layers, P, D, r, tol, max_regions, budget)


def _chain_segments(layers, P, D, r, tol, max_regions=None, budget=None):
    """Batched ``along_line`` for plain MLPs: pieces (m,) of the m segments t in [-r, r], stopping when a
    segment passes ``max_regions`` pieces or the pieces' maps (a, c: 16 bytes per unit) pass ``budget``."""
    m = len(P)
    W0, b0, _ = layers[0]
    a, c = D @ W0.T, P @ W0.T + b0  # z = a t + c on each piece, (pieces, n)
    owner, lo, hi = np.arange(m), np.full(m, -r), np.full(m, r)
    merge = tol * 2 * r  # along_line's tolerance in t in [0, 1], scaled to this parametrisation
    for level, (_, _, act) in enumerate(layers[:-1]):
        n_old = len(owner)
        if act.name == "identity":
            parent, bit = np.arange(n_old), np.ones(a.shape, bool)
        else:
            za, zb = a * lo[:, None] + c, a * hi[:, None] + c
            band = merge * np.abs(a)
            piece, unit = np.nonzero(((za > band) & (zb < -band)) | ((za < -band) & (zb > band)))
            inner = lo > -r  # pieces that start at an interior edge
            seg = np.concatenate([owner[inner], owner[piece]])
            t = np.concatenate([lo[inner], -c[piece, unit] / a[piece, unit]])
            order = np.lexsort((t, seg))
            seg, t = seg[order], t[order]
            keep = (t > -r + merge) & (t < r - merge)
            keep[1:] &= ~((seg[1:] == seg[:-1]) & (np.diff(t) <= merge))
            seg, t = seg[keep], t[keep]
            counts = np.bincount(seg, minlength=m) + 1
            new_owner = np.repeat(np.arange(m), counts)
            first = np.zeros(len(new_owner), bool)
            first[np.concatenate([[0], np.cumsum(counts)[:-1]])] = True
            new_lo, new_hi = np.full(len(new_owner), -r), np.full(len(new_owner), r)
            new_lo[~first] = t
            new_hi[np.flatnonzero(~first) - 1] = t
            mids = (new_lo + new_hi) / 2
            # the old piece holding each midpoint: segments laid end to end, 4r apart
            parent = np.searchsorted(owner * 4 * r + lo, new_owner * 4 * r + mids, side="right") - 1
            owner, lo, hi = new_owner, new_lo, new_hi
            most = counts.max()
            if max_regions is not None and most > max_regions:
                raise RegionLimitError(f"local_complexity_1d: a segment (radius {r:g}) has {most:,} pieces at layer "
                                       f"{level + 1} (a lower bound of the final count), above max_regions="
                                       f"{max_regions:,}; use a smaller radius, or raise max_regions / memory_budget")
            need = len(owner) * 16 * max(W.shape[0] for W, _, _ in layers)
            if budget and need > budget:
                raise RegionLimitError(f"local_complexity_1d: {len(owner):,} pieces at layer {level + 1} need "
                                       f"~{format_bytes(need)} of maps, above the memory budget of "
                                       f"{format_bytes(budget)}; use fewer points or a smaller radius, or raise "
                                       "memory_budget")
            bit = a[parent] * mids[:, None] + c[parent] > 0
        on, off_slope = activation_slopes(act)
        s = np.where(bit, on, off_slope)
        Wn, bn, _ = layers[level + 1]
        a, c = (s * a[parent]) @ Wn.T, (s * c[parent]) @ Wn.T + bn
    return np.bincount(owner, minlength=m)


# -- cost limits (NOTE [cost limits]) ---------------------------------------------------------------
class _DiscLimits:
    """``max_regions`` and the memory budget of one call, per disc's square; plain data (goes to Dask)."""

    def __init__(self, net, max_regions, memory_budget, where, n_planes=1):
        if max_regions is not None and (isinstance(max_regions, bool) or not isinstance(max_regions, (int, np.integer))
                                        or max_regions < 1):
            raise ValueError(f"{where}: max_regions must be an integer >= 1 or None; got {max_regions!r}")
        self.where, self.n_planes = where, n_planes  # rows per point: row // n_planes is the point
        self.max_regions = None if max_regions is None else int(max_regions)
        self.memory_budget = memory_budget  # as given: passed on to partition
        self.budget = budget_bytes(memory_budget, where)
        layers = chain_layers(net)
        self.chain = layers is not None
        if layers is None:  # one partition per disc: what partition itself charges per region
            self.per_region = bytes_per_region(net, net.n_outputs)
        else:  # a batch of discs splits together: each face holds maps of two layers (3 rows, float64), bits
            widths = [W.shape[0] for W, _, _ in layers]
            self.per_region = 72 * max(widths) + sum(widths) // 8 + 128
        self.advice = ("use a smaller radius, method='sampled' (neuron counts, no partition), or raise max_regions "
                       "(--max-regions) / memory_budget (--memory-budget)")

    @property
    def cap(self) -> int | None:
        caps = [c for c in (self.max_regions, self.budget // self.per_region if self.budget else None) if c is not None]
        return min(caps) if caps else None

    def describe(self, count) -> str:
        """The limits ``count`` regions (of one square) pass."""
        parts = []
        if self.max_regions is not None and count > self.max_regions:
            parts.append(f"max_regions={self.max_regions:,}")
        if self.budget and count * self.per_region > self.budget:
            parts.append(f"the memory budget of {format_bytes(self.budget)} at ~{self.per_region:,} bytes per region")
        return " and ".join(parts)

    def check_estimates(self, estimates, n_planes, r, first_row=0) -> None:
        """Refuse before a disc's exact work when its estimate passes the cap; ``estimates`` are rows
        ``first_row, first_row + 1, ...`` (point-major: row // n_planes is the point)."""
        cap = self.cap
        if cap is None or not len(estimates) or estimates.max() <= cap:
            return
        worst = int(np.argmax(estimates))
        raise RegionLimitError(
            f"{self.where}: about {estimates[worst]:,.0f} regions estimated in the square of the disc around point "
            f"{(first_row + worst) // n_planes} (radius {r:g}; exact pieces along four chords), above "
            f"{self.describe(estimates[worst])}; {self.advice}")

    def check_run(self, most, n_faces, r, where) -> None:
        """Stop a batch of discs when one square passes the cap, or all their faces pass the budget."""
        cap = self.cap
        if cap is not None and most > cap:
            raise RegionLimitError(f"{self.where}: a disc's square (radius {r:g}) reached {most:,} regions at {where}, "
                                   f"above {self.describe(most)}; {self.advice}")
        if self.budget and n_faces * self.per_region > self.budget:
            raise RegionLimitError(f"{self.where}: a batch of discs (radius {r:g}) passed {n_faces:,} regions at "
                                   f"{where}, ~{format_bytes(n_faces * self.per_region)}, above the memory budget of "
                                   f"{format_bytes(self.budget)}; "
                                   f"{self.advice}")


#: A graph-path disc's partition is stopped early once it holds this share of the cap and its regions so
#: far, extrapolated to the whole disc, pass the cap (NOTE [cost limits]).
WATCH_FROM = 0.25


class _DiscWatch(Limits):
    """One graph-path disc's limits during its partition (NOTE [cost limits]): ``count`` regions found so
    far in ``area`` of the disc (pi r^2) extrapolate to ``count * pi r^2 / area``; past ``WATCH_FROM`` of
    the cap the run stops when that passes the cap, and at the cap in any case, with the estimate and the
    options."""

    def __init__(self, limits, r, row):
        super().__init__(limits.cap, None, 1, math.pi * r * r, False)
        self.limits, self.r, self.row = limits, r, row

    def add(self, n_regions: int, area: float) -> None:
        self.count += n_regions
        self.area += area
        cap = self.max_regions
        if cap is None or self.count < WATCH_FROM * cap:
            return
        share = min(1.0, self.area / self.total_area)
        estimate = self.count / share if share > 0 else math.inf
        if self.count <= cap and estimate <= cap:
            return
        limits = self.limits
        where = (f"about {estimate:,.0f} regions estimated in the disc around point {self.row // limits.n_planes} "
                 f"(radius {self.r:g}; extrapolated from the {self.count:,} regions found in {100 * share:.1f}% of "
                 f"its area)")
        if self.count > cap:
            raise RegionLimitError(f"{limits.where}: a disc's square (radius {self.r:g}) passed {cap:,} regions "
                                   f"during its partition ({where}), above {limits.describe(cap + 1)}; "
                                   f"{limits.advice}")
        raise RegionLimitError(f"{limits.where}: {where}, above {limits.describe(estimate)}; {limits.advice}")


def _estimate_rows(net, P, D, r):
    """Estimated regions (m,) of the squares [-r, r]^2 of m planes (P (m, d), D (m, 2, d)): exact pieces
    along four chords (u = +-r/2 and v = +-r/2, total length 8 r) give the density lambda of boundary
    crossings per unit length; an isotropic line tessellation with that density has pi lambda^2 / 4
    cells per unit area (``_scale.estimate_regions``), here times the area 4 r^2.

    The chords miss the centre on purpose: at a data point many units tie (an image's flat background
    gives equal entries in a max-pool window), so every line through it crosses their boundaries at
    one breakpoint (measured on a LeNet-5 at r = 0.05: ~20 pieces through the centre, ~250 beside it)."""
    m = len(P)
    d1, d2 = D[:, 0], D[:, 1]
    centres = np.concatenate([P + r / 2 * d2, P - r / 2 * d2, P + r / 2 * d1, P - r / 2 * d1])
    lines = np.concatenate([d1, d1, d2, d2])
    pieces = np.zeros((4, 0), np.int64)
    with one_blas_thread():
        for s in range(0, m, CHUNK):
            rows = (np.arange(4)[:, None] * m + np.arange(s, min(s + CHUNK, m))).ravel()
            part = _pieces_chunk(net, centres[rows], lines[rows], r, LINE_TOLERANCE).reshape(4, -1)
            pieces = np.concatenate([pieces, part], axis=1)
    density = (pieces - 1).sum(0) / (8 * r)
    return np.maximum(1.0, math.pi * density**2 * r**2)


def _groups(estimates, limits) -> list[tuple[int, int]]:
    """Rows split as ``CHUNK``-aligned batches (as without limits: the same answers), each cut further
    where its estimated working memory would pass a quarter of the budget (the estimate is an order of
    magnitude; the run itself stops at the budget)."""
    out = []
    budget = limits.budget / 4 if limits is not None and limits.budget else None
    for s in range(0, len(estimates), CHUNK):
        e = min(s + CHUNK, len(estimates))
        need = estimates[s:e] * (limits.per_region if limits is not None else 0)
        if not budget or need.sum() <= budget:
            out.append((s, e))
            continue
        start, total = s, 0.0
        for i in range(s, e):
            if i > start and total + need[i - s] > budget:
                out.append((start, i))
                start, total = i, 0.0
            total += need[i - s]
        out.append((start, e))
    return out


def _exact_rows(net, P, D, estimates, rows, r, tol, want_crossing, limits):
    parts = [_exact_chunk(net, P[a:b], D[a:b], r, tol, want_crossing, limits, int(rows[a]))
             for a, b in _groups(estimates, limits)]
    return np.concatenate([a for a, _ in parts]), np.concatenate([c for _, c in parts])


def _exact(net, P, D, r, tol, want_crossing, limits, progress, client, n_planes):
    """Exact counts of all rows: [(regions, crossing), ...] per batch. Batched MLP discs are all estimated
    and checked before any exact work (cheap, and their batches are sized from it); other discs are
    watched during their partitions (``_DiscWatch``), so the first over the limit stops the call."""
    if client is not None:
        if limits.chain:
            estimates = np.concatenate(_run(_estimate_rows, net, (P, D), (r,), client))
            limits.check_estimates(estimates, n_planes, r)
        else:
            estimates = np.zeros(len(P))
        return _run(_exact_rows, net, (P, D, estimates, np.arange(len(P))), (r, tol, want_crossing, limits), client)
    n = len(P)
    if limits.chain:
        estimates = np.zeros(n)
        for s in range(0, n, CHUNK):
            estimates[s:s + CHUNK] = _estimate_rows(net, P[s:s + CHUNK], D[s:s + CHUNK], r)
            limits.check_estimates(estimates[s:s + CHUNK], n_planes, r, s)
        groups = _groups(estimates, limits)
        big = estimates.sum() > PROGRESS_REGIONS
    else:
        estimates, groups, big = None, [(i, i + 1) for i in range(n)], n > 1
    bar = None
    if progress or (progress is None and big and sys.stderr.isatty()):
        from tqdm import tqdm

        bar = tqdm(total=n, desc=limits.where, unit="disc")
    parts = []
    try:
        for a, b in groups:
            parts.append(_exact_chunk(net, P[a:b], D[a:b], r, tol, want_crossing, limits, a))
            if bar is not None:
                bar.update(b - a)
                bar.set_postfix_str(f"{sum(int(p[0].sum()) for p in parts):,} regions in discs", refresh=False)
    finally:
        if bar is not None:
            bar.close()
    return parts


# -- public API -----------------------------------------------------------------------------------
def _prepare(net, points, radius, directions, n_slices, seed, k, count_name, where):
    shape = tuple(np.shape(points)[1:])
    net = as_net(net, input_shape=shape if len(shape) > 1 else None)
    check_piecewise_linear(net, where)
    P, r = _check_points(net, points, radius, where)
    n_slices = _check_count(n_slices, count_name, where)
    if directions is not None and np.ndim(directions) >= 2:
        n_slices = int(np.shape(directions)[1])
    D = _directions(directions, len(P), n_slices, net.n_inputs, k, seed, where)
    n, m = D.shape[:2]
    return net, np.repeat(P, m, axis=0), D.reshape(n * m, k, net.n_inputs), r, (n, m)


def _run(fn, net, rows, args, client):
    """fn(net, *row_chunks, *args) over chunks of the row arrays ``rows`` (P, D, ...), in process or on a
    Dask client (``TASK`` rows per task, a multiple of ``CHUNK``: batches as in process)."""
    if client is None:
        return [fn(net, *rows, *args)]
    n = len(rows[0])
    bounds = [(s, min(s + TASK, n)) for s in range(0, n, TASK)]
    remote_net = client.scatter(net, broadcast=True, hash=False)
    futures = [client.submit(fn, remote_net, *(x[a:b] for x in rows), *args, pure=False) for a, b in bounds]
    return client.gather(futures)


def _check_method(method, where):
    if method not in ("exact", "sampled"):
        raise ValueError(f"{where}: method must be 'exact' or 'sampled'; got {method!r}")


def hyperplanes_crossing(net, points, radius, *, directions=None, n_planes=1, seed=0, method="exact",
                         client=None, tolerance: float = BOUNDARY_TOLERANCE, max_regions: int | None = MAX_REGIONS,
                         memory_budget: int | str | None = "auto", progress: bool | None = None) -> np.ndarray:
    """Units of each activation node whose zero set crosses the disc of radius r around each point.

    Parameters are those of :func:`local_complexity`. ``method="exact"`` counts the units whose sign
    changes inside the disc (from its exact partition); ``"sampled"`` counts the units whose
    pre-activation is not of one sign over the four vertices ``p +- r d1``, ``p +- r d2`` (Humayun
    et al.'s cross-polytope in the plane), which can only be fewer (and has no region limit: it
    partitions nothing).

    Returns
    -------
    ndarray of shape (n_points, n_planes, n_layers), int64
        One column per activation node, in ``net.activations`` order.

    Examples
    --------
    >>> import numpy as np, netatlas
    >>> net = netatlas.nets.mlp([2, 8, 8, 1], seed=0)
    >>> pts = np.zeros((3, 2))
    >>> exact = hyperplanes_crossing(net, pts, 0.5, seed=1)
    >>> sampled = hyperplanes_crossing(net, pts, 0.5, seed=1, method="sampled")
    >>> exact.shape, bool(np.all(sampled <= exact))
    ((3, 1, 2), True)
    """
    _check_method(method, "hyperplanes_crossing")
    if method == "sampled":
        net, P, D, r, (n, m) = _prepare(net, points, radius, directions, n_planes, seed, 2, "n_planes",
                                        "hyperplanes_crossing")
        parts = _run(_sampled_chunk, net, (P, D), (r,), client)
        return np.concatenate(parts).reshape(n, m, -1)
    return _exact_counts(net, points, radius, directions, n_planes, seed, client, tolerance, max_regions,
                         memory_budget, progress, True, "hyperplanes_crossing")[1]


def exact_counts(net, points, radius, *, directions=None, n_planes=1, seed=0, client=None,
                 tolerance: float = BOUNDARY_TOLERANCE, max_regions: int | None = MAX_REGIONS,
                 memory_budget: int | str | None = "auto",
                 progress: bool | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Both exact counts from one partition per disc: ``(local_complexity (n_points, n_planes),
    hyperplanes_crossing (n_points, n_planes, n_layers))`` (arguments as in :func:`local_complexity`).

    >>> import numpy as np, netatlas
    >>> regions, crossing = exact_counts(netatlas.nets.mlp([2, 8, 1], seed=0), np.zeros((2, 2)), 0.5)
    >>> regions.shape, crossing.shape
    ((2, 1), (2, 1, 1))
    """
    return _exact_counts(net, points, radius, directions, n_planes, seed, client, tolerance, max_regions,
                         memory_budget, progress, True, "exact_counts")


def _exact_counts(net, points, radius, directions, n_planes, seed, client, tolerance, max_regions, memory_budget,
                  progress, want_crossing, where):
    net, P, D, r, (n, m) = _prepare(net, points, radius, directions, n_planes, seed, 2, "n_planes",
                                    "local_complexity")
    limits = _DiscLimits(net, max_regions, memory_budget, where, m)
    parts = _exact(net, P, D, r, tolerance, want_crossing, limits, progress, client, m)
    regions = np.concatenate([a for a, _ in parts]).reshape(n, m)
    return regions, np.concatenate([c for _, c in parts]).reshape(n, m, -1)


def local_complexity(net, points, radius, *, directions=None, n_planes=1, seed=0, method="exact", client=None,
                     tolerance: float = BOUNDARY_TOLERANCE, max_regions: int | None = MAX_REGIONS,
                     memory_budget: int | str | None = "auto", progress: bool | None = None) -> np.ndarray:
    """Local complexity around each point: linear regions meeting a disc of radius ``radius``.

    For each point p and each plane through p spanned by an orthonormal pair (d1, d2), the exact
    number of linear regions meeting ``{p + u d1 + v d2 : u^2 + v^2 <= r^2}`` (see the module's
    NOTE [what is counted]).

    Parameters
    ----------
    net : Net or torch.nn.Module
        Any network :func:`netatlas.regions.partition` takes (plain MLPs are batched across points).
    points : array_like of shape (n_points, n_inputs) or (n_points, *input_shape)
    radius : float
        r > 0, in input units.
    directions : array_like of shape (n_points, n_planes, 2, n_inputs), optional
        The planes, as orthonormal pairs; default ``n_planes`` random ones per point, seeded by
        ``seed`` (:func:`random_directions`).
    method : {"exact", "sampled"}
        "exact": regions meeting the disc. "sampled": Humayun, Balestriero & Baraniuk's local
        complexity on the same plane and radius: the number of *neurons* (all layers) whose
        pre-activation is not of one sign over the cross-polytope vertices ``p +- r d1, p +- r d2``.
        Its exact counterpart is ``hyperplanes_crossing(...).sum(-1)``.
    client : dask.distributed.Client, optional
        Run chunks of ``TASK`` point-planes as Dask tasks.
    tolerance : float
        Boundary tolerance of the partition (relative to the square's diagonal).
    max_regions : int or None
        The most regions one disc's square ``[-r, r]^2`` may hold (default ``MAX_REGIONS`` = 10,000;
        None: no limit). Plain MLPs' squares are estimated before any exact work (:func:`estimate_discs`)
        and checked again during the run; other graphs' discs are watched during their partitions, which
        stop with an estimate (NOTE [cost limits]). Not used by ``method="sampled"``.
    memory_budget : int, str or None
        Bytes (or e.g. "8GB") the discs' working memory may take; "auto" (default): half the memory
        available; None: no limit. A batch of discs that would pass it is split.
    progress : bool, optional
        A progress bar over the discs on stderr; default: when stderr is a terminal and the estimated
        regions of all discs pass ``PROGRESS_REGIONS``.

    Returns
    -------
    ndarray of shape (n_points, n_planes), int64

    Raises
    ------
    ValueError
        radius <= 0, points of the wrong size, directions of the wrong shape or not orthonormal.
    RegionLimitError
        When a disc's square is estimated (or found during the run) to pass ``max_regions`` or the
        memory budget; the message gives the estimate and the options.

    Examples
    --------
    >>> import numpy as np, netatlas
    >>> net = netatlas.nets.mlp([2, 16, 16, 2], seed=0)
    >>> lc = local_complexity(net, np.zeros((4, 2)), 0.3, n_planes=2)
    >>> lc.shape, bool(lc.min() >= 1)
    ((4, 2), True)
    >>> local_complexity(net, np.zeros((4, 2)), 0.0)
    Traceback (most recent call last):
    ...
    ValueError: local_complexity: radius must be a finite number > 0; got 0.0
    >>> local_complexity(net, np.zeros((4, 2)), 100.0, max_regions=50)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    netatlas._errors.RegionLimitError: local_complexity: about ... above max_regions=50; ...
    """
    _check_method(method, "local_complexity")
    if method == "sampled":
        return hyperplanes_crossing(net, points, radius, directions=directions, n_planes=n_planes, seed=seed,
                                    method="sampled", client=client).sum(-1)
    return _exact_counts(net, points, radius, directions, n_planes, seed, client, tolerance, max_regions,
                         memory_budget, progress, False, "local_complexity")[0]


def estimate_discs(net, points, radius, *, directions=None, n_planes=1, seed=0, client=None) -> np.ndarray:
    """Estimated regions in the square ``[-r, r]^2`` of each disc, as :func:`local_complexity` checks
    them before any exact work (arguments as there).

    Exact pieces along four chords of the square (``u = +-r/2`` and ``v = +-r/2``; not through the
    point, where ties of a flat image background meet) give the density lambda of region boundaries
    per unit length; an isotropic line tessellation of that density has ``pi lambda^2 / 4`` cells per
    unit area (as :func:`~netatlas.regions.estimate_regions`), times the square's area 4 r^2. An
    order of magnitude, not a bound.

    Returns
    -------
    ndarray of shape (n_points, n_planes), float64 (>= 1)

    Examples
    --------
    >>> import numpy as np, netatlas
    >>> net = netatlas.nets.mlp([2, 16, 16, 2], seed=0)
    >>> est = estimate_discs(net, np.zeros((2, 2)), 0.5)
    >>> exact = exact_counts(net, np.zeros((2, 2)), 0.5)[0]
    >>> est.shape, bool(np.all((est > exact / 10) & (est < exact * 10)))
    ((2, 1), True)
    """
    net, P, D, r, (n, m) = _prepare(net, points, radius, directions, n_planes, seed, 2, "n_planes",
                                    "estimate_discs")
    return np.concatenate(_run(_estimate_rows, net, (P, D), (r,), client)).reshape(n, m)


def local_complexity_1d(net, points, radius, *, directions=None, n_lines=1, seed=0, client=None,
                        tolerance: float = LINE_TOLERANCE, max_regions: int | None = None,
                        memory_budget: int | str | None = "auto") -> np.ndarray:
    """Linear pieces of the network on the segment ``{p + t d : |t| <= r}`` through each point.

    Parameters
    ----------
    net, points, radius, seed, client
        As in :func:`local_complexity`.
    directions : array_like of shape (n_points, n_lines, n_inputs), optional
        Unit directions; default ``n_lines`` random ones per point.
    tolerance : float
        Breakpoint merge tolerance relative to the segment's length (as in ``along_line``).
    max_regions : int, optional
        The most pieces one segment may have (default: no limit); checked after each layer (a lower
        bound of the final count), as ``along_line`` does.
    memory_budget : int, str or None
        Bytes (or e.g. "8GB") the pieces' maps may take; "auto" (default): half the memory available.

    Returns
    -------
    ndarray of shape (n_points, n_lines), int64: 1 + the breakpoints inside the segment.

    Examples
    --------
    >>> import numpy as np, netatlas
    >>> net = netatlas.nets.mlp([3, 16, 16, 1], seed=0)
    >>> local_complexity_1d(net, np.zeros((2, 3)), 0.5, n_lines=3).shape
    (2, 3)
    """
    net, P, D, r, (n, m) = _prepare(net, points, radius, directions, n_lines, seed, 1, "n_lines",
                                    "local_complexity_1d")
    if max_regions is not None and (isinstance(max_regions, bool) or not isinstance(max_regions, (int, np.integer))
                                    or max_regions < 1):
        raise ValueError(f"local_complexity_1d: max_regions must be an integer >= 1 or None; got {max_regions!r}")
    parts = _run(_pieces_rows, net, (P, D), (r, tolerance, max_regions, memory_budget), client)
    return np.concatenate(parts).reshape(n, m)


def _pieces_rows(net, P, D, r, tol, max_regions=None, memory_budget=None):
    with one_blas_thread():
        parts = [_pieces_chunk(net, P[s:s + CHUNK], D[s:s + CHUNK, 0], r, tol, max_regions, memory_budget)
                 for s in range(0, len(P), CHUNK)]
    return np.concatenate(parts)
