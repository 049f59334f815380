"""Tiled partitions: a slice split into k x k tiles, each partitioned on its own (in process or on Dask),
and the regions cut by tile borders merged back, so the answer equals the untiled one.

# NOTE [merging]
The set of inputs with one activation pattern is convex (with the earlier layers' pattern fixed,
each unit's sign condition is a half-plane), so within the convex window it is one convex polygon:
pieces of different tiles with the same pattern are pieces of the same region (adjacent across a
border), and their union is the convex hull of their vertices (max pooling: the pattern includes the arg-maxes; a region
with fixed arg-maxes is convex too). Only pieces with an edge on a seam
(an inner tile border, label ``SEAM``) can be cut, so only those are kept for merging; the others
are complete regions. Each tile is partitioned with the window's absolute boundary tolerance (its
relative tolerance scaled by the window's diagonal over the tile's), so snapping matches the
untiled run.

A convex window (``Plane.polygon``, ``Plane.disc``) is tiled by its bounding box: each tile's window is
the polygon clipped to the tile's rectangle (convex again), tiles outside it are empty, and each side of a
clipped window is labelled as the window side it lies on or as a seam (a clipped side lies on an inner
tile border, which no side of a convex window can lie on). The inner borders are moved (all by one
fraction of a tile) where the window would leave a tile a piece far smaller than the tile (a corner of
the polygon just across a border): such a piece's relative tolerance would be out of range.
"""

from __future__ import annotations

import logging
import math

import numpy as np

from netatlas.regions import _kernels as K
from netatlas.regions._partition import VERTEX_MERGE_TOLERANCE, Partition
from netatlas.slices import Plane

__all__ = ["SEAM", "stream_partition", "tile_planes", "tiled_partition"]

logger = logging.getLogger(__name__)

#: Edge label of an inner tile border (slice sides are -1 bottom, -2 right, -3 top, -4 left; a convex
#: window's k sides -1 ... -k): below every window side's label.
SEAM = -(2**31)


def tile_planes(plane: Plane, tiles: int) -> list[tuple[int, int, Plane]]:
    """The k x k tiles of ``plane`` as (i, j, Plane), i along u and j along v, row by row.

    >>> [t[2].bounds for t in tile_planes(Plane.square(1.0), 2)][:2]
    [(-1.0, 0.0, -1.0, 0.0), (0.0, 1.0, -1.0, 0.0)]
    """
    umin, umax, vmin, vmax = plane.bounds
    us, vs = np.linspace(umin, umax, tiles + 1), np.linspace(vmin, vmax, tiles + 1)
    us[0], us[-1], vs[0], vs[-1] = umin, umax, vmin, vmax
    return [(i, j, Plane(plane.origin, plane.d1, plane.d2, (float(us[i]), float(us[i + 1]), float(vs[j]),
                                                             float(vs[j + 1]))))
            for j in range(tiles) for i in range(tiles)]


def _diag(bounds) -> float:
    return math.hypot(bounds[1] - bounds[0], bounds[3] - bounds[2])


def _center(bounds) -> np.ndarray:
    return np.array([(bounds[0] + bounds[1]) / 2, (bounds[2] + bounds[3]) / 2])


def _subset(p: dict, keep: np.ndarray) -> dict:
    """The faces ``keep`` (bool (F,)) of a pieces dict; ``bits`` and ``choices`` may be lists of per-layer
    arrays (F, B_k), joined along axis 1 after the selection (no copy of a whole tile's patterns)."""
    counts = np.diff(p["off"])
    vkeep = np.repeat(keep, counts)
    return {"xy": p["xy"][vkeep], "off": np.concatenate([[0], np.cumsum(counts[keep])]).astype(np.int64),
            "lab": p["lab"][vkeep], "bits": _rows(p["bits"], keep, np.uint8),
            "choices": _rows(p["choices"], keep, np.int16), "maps": p["maps"][keep]}


def _rows(arrays, keep: np.ndarray, dtype) -> np.ndarray:
    """Rows ``keep`` of an array, or of a list of per-layer arrays (F, B_k) joined along axis 1 (as ``dtype``)."""
    if not isinstance(arrays, list):
        return arrays[keep]
    out = np.empty((int(keep.sum()), sum(a.shape[1] for a in arrays)), dtype)
    col = 0
    for a in arrays:  # one layer's selected rows at a time
        out[:, col:col + a.shape[1]] = a[keep]
        col += a.shape[1]
    return out


def _concat(parts: list) -> dict:
    parts = [p for p in parts if len(p["off"]) > 1] or parts[:1]
    counts = np.concatenate([np.diff(p["off"]) for p in parts])
    return {"xy": np.concatenate([p["xy"] for p in parts]),
            "off": np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
            "lab": np.concatenate([p["lab"] for p in parts]), "bits": np.concatenate([p["bits"] for p in parts]),
            "choices": np.concatenate([p["choices"] for p in parts]),
            "maps": np.concatenate([p["maps"] for p in parts])}


def tile_job(net, window: Plane, i: int, j: int, tiles: int, tolerance: float, method: str, *,
             max_regions: int | None = None, memory_budget="auto", lines=None):
    """Partition tile (i, j) of ``window``; return (complete, border, partition) where complete and
    border are pieces dicts (xy centred on the window's centre, off, lab with seams relabelled, bits:
    packed patterns of all layers side by side, maps in the window's centred coordinates); partition is
    None for a tile outside a convex window. ``max_regions`` / ``memory_budget`` guard the tile's own run
    (``partition``'s limits); ``lines``: the tile borders (``tile_lines``, computed once per run)."""
    from netatlas._threads import one_blas_thread
    from netatlas.regions._untiled import untiled_partition

    plane, sides = tile_planes(window, tiles)[j * tiles + i][2], None
    if window.outline is not None:
        plane, sides = tile_window(window, tile_lines(window, tiles) if lines is None else lines, i, j)
        if plane is None:  # the tile's rectangle misses the window
            return _no_pieces(net), _no_pieces(net), None
    with one_blas_thread():  # parallelism comes from tiles on workers; BLAS threads only contend
        part = untiled_partition(net, plane, tolerance=tolerance * _diag(window.bounds) / _diag(plane.bounds),
                                 method=method, max_regions=max_regions, memory_budget=memory_budget)
    shift = part.center - _center(window.bounds)
    lab = part.labels.copy()
    if sides is None:
        seams = [s for s, inner in ((-1, j > 0), (-2, i < tiles - 1), (-3, j < tiles - 1), (-4, i > 0)) if inner]
        lab[np.isin(lab, seams)] = SEAM
    else:  # the clipped window's side -1 - s is the window's side sides[s] or a seam
        lab[lab < 0] = sides[-1 - lab[lab < 0]]
    maps = part.maps.copy()
    maps[:, 2] -= maps[:, 0] * shift[0] + maps[:, 1] * shift[1]  # value at the window centre
    pieces = {"xy": part.xy + shift, "off": part.offsets, "lab": lab, "bits": list(part.pattern_bits),
              "choices": list(part.choices), "maps": maps}
    face = np.repeat(np.arange(part.num_regions), np.diff(part.offsets))
    on_seam = np.bincount(face[lab == SEAM], minlength=part.num_regions) > 0
    return _subset(pieces, ~on_seam), _subset(pieces, on_seam), part


def tile_lines(window: Plane, tiles: int) -> tuple[np.ndarray, np.ndarray]:
    """The tile borders (us, vs), each (tiles + 1,), of a convex window's bounding box: evenly spaced, or
    all inner ones moved by one fraction of a tile where a tile would hold a piece of the window that is
    not empty but smaller than 1e-3 of the tile's diagonal, or has corners too close to be a polygon.

    >>> us, vs = tile_lines(Plane.polygon([[0, 0], [2, 0], [0, 2]]), 2)
    >>> us.tolist(), vs.tolist()
    ([0.0, 1.0, 2.0], [0.0, 1.0, 2.0])
    """
    umin, umax, vmin, vmax = window.bounds
    # u and v borders moved by different fractions: a window side along the box's diagonal stays off the
    # moved corners
    for su, sv in ((0.0, 0.0), (0.0137, -0.0219), (-0.0311, 0.0173), (0.0423, 0.0547), (-0.0661, -0.0389),
                   (0.0789, -0.0712), (-0.0857, 0.0931), (0.0991, 0.0253)):
        us = umin + (np.arange(tiles + 1) + su) * (umax - umin) / tiles
        vs = vmin + (np.arange(tiles + 1) + sv) * (vmax - vmin) / tiles
        us[0], us[-1], vs[0], vs[-1] = umin, umax, vmin, vmax
        if all(_piece_ok(window, (us, vs), i, j) for j in range(tiles) for i in range(tiles)):
            return us, vs
    raise ValueError(f"partition: the window leaves a sliver in a tile for every border tried; use another "
                     f"number of tiles than {tiles}")


def _piece_ok(window, lines, i, j) -> bool:
    poly = _clipped(window, lines, i, j)
    if len(poly) < 3:
        return True  # empty
    (u0, u1), (v0, v1) = lines[0][i:i + 2], lines[1][j:j + 2]
    if math.hypot(*np.ptp(poly, axis=0)) < 1e-3 * math.hypot(u1 - u0, v1 - v0):
        return False
    try:
        Plane(window.origin, window.d1, window.d2, anchors=window.anchors, outline=poly)
    except ValueError:
        return False
    return True


def _clipped(window, lines, i, j) -> np.ndarray:
    """The window's outline clipped to tile (i, j)'s rectangle (k, 2); empty (0, 2) when nothing is left
    or the rest has no area (the window touches the rectangle at a corner)."""
    (u0, u1), (v0, v1) = lines[0][i:i + 2], lines[1][j:j + 2]
    poly = window.outline
    for axis, bound, sign in ((0, u0, 1), (0, u1, -1), (1, v0, 1), (1, v1, -1)):  # Sutherland-Hodgman
        poly = _clip(poly, axis, bound, sign)
        if len(poly) < 3:
            return poly[:0]
    x, y = poly[:, 0] - poly[0, 0], poly[:, 1] - poly[0, 1]
    return poly if (x * np.roll(y, -1) - np.roll(x, -1) * y).sum() > 0 else poly[:0]


def tile_window(window: Plane, lines, i: int, j: int):
    """Tile (i, j) of a convex window, its bounding box cut by ``lines`` = (us, vs) (``tile_lines``): (the
    window clipped to the tile's rectangle, as a Plane with that outline, or None where it holds no area;
    the label of each of its sides (k,): the window side it lies on, -1 - t, or ``SEAM`` on an inner
    tile border).

    >>> w = Plane.polygon([[0, 0], [2, 0], [0, 2]])
    >>> tile, sides = tile_window(w, tile_lines(w, 2), 0, 0)
    >>> tile.outline.tolist(), sides.tolist() == [-1, SEAM, SEAM, -3]
    ([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]], True)
    """
    poly = _clipped(window, lines, i, j)
    if len(poly) < 3:
        return None, None
    tile = Plane(window.origin, window.d1, window.d2, anchors=window.anchors, outline=poly)
    outline, ends = tile.outline, np.roll(tile.outline, -1, axis=0)
    mid = (outline + ends) / 2
    seam = np.zeros(len(outline), bool)
    tiles = len(lines[0]) - 1
    # clipped sides' new corners lie exactly on the border, but a window corner within round-off of it may
    # replace one (the clipped corner beside it dropped as collinear): both ends near the border
    eps = 1e-9 * math.hypot(*np.ptp(outline, axis=0))
    for axis, k in ((0, i), (0, i + 1), (1, j), (1, j + 1)):
        if 0 < k < tiles:  # an inner border (no side of a convex window lies on one)
            seam |= (np.abs(outline[:, axis] - lines[axis][k]) <= eps) & (np.abs(ends[:, axis] - lines[axis][k]) <= eps)
    a, b = window.outline, np.roll(window.outline, -1, axis=0)
    d = b - a
    t = np.clip(((mid[:, None] - a[None]) * d[None]).sum(-1) / (d * d).sum(-1)[None], 0.0, 1.0)
    dist = np.hypot(*(mid[:, None] - a[None] - t[..., None] * d[None]).transpose(2, 0, 1))
    return tile, np.where(seam, SEAM, -1 - np.argmin(dist, axis=1)).astype(np.int64)


def _clip(poly: np.ndarray, axis: int, bound: float, sign: int) -> np.ndarray:
    """The convex polygon (k, 2) cut to sign * (x[axis] - bound) >= 0; new corners lie exactly on the line."""
    if len(poly) == 0:
        return poly
    d = sign * (poly[:, axis] - bound)
    out = []
    for k in range(len(poly)):
        nxt = (k + 1) % len(poly)
        if d[k] >= 0:
            out.append(poly[k])
        if (d[k] > 0 > d[nxt]) or (d[k] < 0 < d[nxt]):
            x = poly[k] + d[k] / (d[k] - d[nxt]) * (poly[nxt] - poly[k])
            x[axis] = bound
            out.append(x)
    return np.array(out).reshape(-1, 2)


def _no_pieces(net) -> dict:
    """The pieces dict of a tile with no regions (outside a convex window)."""
    return {"xy": np.zeros((0, 2)), "off": np.zeros(1, np.int64), "lab": np.zeros(0, np.int64),
            "bits": np.zeros((0, 0), np.uint8), "choices": np.zeros((0, 0), np.int16),
            "maps": np.zeros((0, 3, net.n_outputs))}


def _hull(points: np.ndarray, eps: float) -> np.ndarray:
    """Convex hull (counter-clockwise, from the lowest-then-leftmost point) without vertices within
    ``eps`` of the line through their neighbours (Andrew's monotone chain)."""
    pts = points[np.lexsort((points[:, 1], points[:, 0]))]

    def chain(seq):
        out: list = []
        for p in seq:
            # exact turns here (the differences of nearby floats are exact): a tolerance would let a point
            # a round-off to the right of a near-vertical side pop the true corner before it
            while len(out) >= 2:
                o, a = out[-2], out[-1]
                if (a[0] - o[0]) * (p[1] - o[1]) - (a[1] - o[1]) * (p[0] - o[0]) > 0:
                    break
                out.pop()
            out.append(p)
        return out

    lower, upper = chain(pts), chain(pts[::-1])
    hull = np.array(lower[:-1] + upper[:-1])
    while len(hull) > 3:  # then the near-collinear vertices, flattest first, one at a time
        prev, nxt = np.roll(hull, 1, axis=0), np.roll(hull, -1, axis=0)
        d = nxt - prev
        dist = np.abs(d[:, 0] * (hull[:, 1] - prev[:, 1]) - d[:, 1] * (hull[:, 0] - prev[:, 0]))
        dist /= np.maximum(np.hypot(d[:, 0], d[:, 1]), np.finfo(float).tiny)
        flattest = int(np.argmin(dist))
        if dist[flattest] > eps:
            break
        hull = np.delete(hull, flattest, axis=0)
    return hull


def _edge_labels(hull: np.ndarray, xy: np.ndarray, off: np.ndarray, lab: np.ndarray, eps: float) -> np.ndarray:
    """Label of each hull edge: that of a piece edge (not a seam) lying along it."""
    nxt = np.arange(1, len(xy) + 1)
    nxt[off[1:] - 1] = off[:-1]
    keep = lab != SEAM
    a, b, el = xy[keep], xy[nxt][keep], lab[keep]
    p, q = hull, np.roll(hull, -1, axis=0)
    d = q - p
    length = np.hypot(d[:, 0], d[:, 1])[:, None]
    n = np.stack([-d[:, 1], d[:, 0]], 1)[:, None, :] / length[..., None]

    def dist(x):  # (H, E) distance of piece-edge endpoints x (E, 2) to each hull line
        return np.abs(((x[None] - p[:, None]) * n).sum(-1))

    mid = (a + b) / 2
    t = ((mid[None] - p[:, None]) * d[:, None]).sum(-1) / length**2
    ok = (dist(a) <= eps) & (dist(b) <= eps) & (t > 0) & (t < 1)
    labels = np.full(len(hull), SEAM, np.int64)
    h, e = np.nonzero(ok)
    labels[h[::-1]] = el[e[::-1]]  # first match wins
    return labels


def merge_border(border: dict, diam: float) -> dict:
    """Merge seam pieces with one pattern into one region each (see NOTE [merging])."""
    F = len(border["off"]) - 1
    if F == 0:
        return border
    _, first, group = np.unique(_key(border), axis=0, return_index=True, return_inverse=True)
    group = group.ravel()
    eps = VERTEX_MERGE_TOLERANCE * diam
    order = np.argsort(group, kind="stable")
    bounds = np.concatenate([[0], np.flatnonzero(np.diff(group[order])) + 1, [F]])
    xs, labs, sizes = [], [], []
    off, xy, lab = border["off"], border["xy"], border["lab"]
    for g in range(len(bounds) - 1):
        faces = order[bounds[g]:bounds[g + 1]]
        if len(faces) == 1:
            f = faces[0]
            poly, pl = xy[off[f]:off[f + 1]], lab[off[f]:off[f + 1]]
        else:
            counts = off[faces + 1] - off[faces]
            rows = np.concatenate([np.arange(off[f], off[f + 1]) for f in faces])
            sub_off = np.concatenate([[0], np.cumsum(counts)])
            poly = _hull(xy[rows], eps)
            pl = _edge_labels(poly, xy[rows], sub_off, lab[rows], eps)
        xs.append(poly)
        labs.append(pl)
        sizes.append(len(poly))
    reps = order[bounds[:-1]]
    return {"xy": np.concatenate(xs), "off": np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64),
            "lab": np.concatenate(labs), "bits": border["bits"][reps], "choices": border["choices"][reps],
            "maps": border["maps"][reps]}


def _key(p: dict) -> np.ndarray:
    """A region's identity (F, B) uint8: its pattern bits and its max-pool arg-maxes."""
    if p["choices"].shape[1] == 0:  # no max pooling: the bits alone (no copy of a large tile's patterns)
        return np.ascontiguousarray(p["bits"])
    return np.concatenate([p["bits"], np.ascontiguousarray(p["choices"]).view(np.uint8)], axis=1)


def _run_tiles(net, window, tiles, tolerance, method, client, limits: dict):
    jobs = [(i, j) for j in range(tiles) for i in range(tiles)]
    if client is None:
        for i, j in jobs:
            yield tile_job(net, window, i, j, tiles, tolerance, method, **limits)
        return
    from distributed import as_completed

    remote = client.scatter(net, broadcast=True, hash=False)
    futures = [client.submit(_tile_job_light, remote, window, i, j, tiles, tolerance, method, pure=False, **limits)
               for i, j in jobs]
    for future in as_completed(futures):
        yield future.result()
        future.release()


def _tile_job_light(net, window, i, j, tiles, tolerance, method, **limits):
    complete, border, part = tile_job(net, window, i, j, tiles, tolerance, method, **limits)
    return complete, border, None if part is None else _meta(part)


def _meta(part) -> dict:
    return {"units_per_layer": part.units_per_layer, "layer_names": part.layer_names,
            "max_units_per_layer": part.max_units_per_layer, "max_layer_names": part.max_layer_names}


def whole_slice_limits(net, plane: Plane, tiles: int, max_regions, memory_budget, *, in_memory: bool):
    """The limits of a tiled run on the whole slice (a ``_scale.Limits``), checked first against the estimate
    of the whole slice (``estimate_regions``) when a limit is given: ``max_regions`` on the total count, and
    (``in_memory``: the finished partition is held) the memory budget on the total; streamed to disk
    (``in_memory=False``), the memory budget bounds each tile's run only. Raises RegionLimitError in one line
    with the estimate and the options."""
    from netatlas.regions import _scale

    if max_regions is not None and (isinstance(max_regions, bool) or not isinstance(max_regions, (int, np.integer))
                                    or max_regions < 1):
        raise ValueError(f"partition: max_regions must be a positive int or None; got {max_regions!r}")
    budget = _scale.budget_bytes(memory_budget, "partition")  # checked here in any case
    if not in_memory:
        budget = None  # streamed to disk: applied per tile only
    limits = _scale.Limits(max_regions, budget, _scale.bytes_per_region(net, net.n_outputs), plane.area, False)
    # like an untiled run: the estimate (a few line partitions) only when a limit was asked for
    if limits.cap is not None and (max_regions is not None or memory_budget != "auto"):
        estimate = _scale.estimate_regions(net, plane, max_regions=limits.cap)
        if estimate > limits.cap:
            raise _scale.RegionLimitError(
                f"partition (tiles={tiles}): about {estimate:,.0f} regions estimated in the whole slice (exact "
                f"counts along lines across it), above {limits._limits()}; use a smaller window (Plane bounds), "
                "or raise max_regions / memory_budget")
    return limits


def _guard(limits, n_regions: int, area: float, tiles: int) -> None:
    """Count a finished tile's complete regions against the whole slice's limits (a lower bound of the
    total: seam pieces merge later)."""
    from netatlas.regions import _scale

    try:
        limits.add(n_regions, area)
    except _scale.RegionLimitError as exc:
        raise _scale.RegionLimitError(str(exc).replace("partition:", f"partition (tiles={tiles}):", 1)
                                      .replace("split the slice into tiles, ", "")) from None


def tiled_partition(net, plane: Plane, tiles: int, *, tolerance: float, method: str = "auto",
                    client=None, max_regions: int | None = None, memory_budget="auto") -> Partition:
    """The partition of ``plane`` computed tile by tile (see :func:`netatlas.regions.partition`,
    ``tiles=``): same regions, areas, patterns and maps as the untiled partition, in another order.
    ``max_regions`` and ``memory_budget`` limit the total (estimated first, see :func:`whole_slice_limits`,
    and counted tile by tile) and guard each tile's run."""
    from netatlas.nets import as_net

    net = as_net(net, input_shape=plane.input_shape)
    limits = whole_slice_limits(net, plane, tiles, max_regions, memory_budget, in_memory=True)
    lines = None if plane.outline is None else tile_lines(plane, tiles)
    complete, border, meta = [], [], None
    for c, b, part in _run_tiles(net, plane, tiles, tolerance, method, client,
                                 {"max_regions": max_regions, "memory_budget": memory_budget, "lines": lines}):
        _guard(limits, len(c["off"]) - 1, plane.area / tiles**2, tiles)
        complete.append(c)
        border.append(b)
        if part is not None:  # None: a tile outside a convex window
            meta = part if isinstance(part, dict) else _meta(part)
    merged = merge_border(_concat(border), _diag(plane.bounds))
    _guard(limits, len(merged["off"]) - 1, 0.0, tiles)  # the regions merged across tile borders count too
    allp = _concat(complete + [merged])
    sizes = meta["units_per_layer"]
    nbytes = np.cumsum([0] + [(n + 7) // 8 for n in sizes])
    pattern_bits = tuple(np.ascontiguousarray(allp["bits"][:, nbytes[k]:nbytes[k + 1]]) for k in range(len(sizes)))
    counts = np.diff(allp["off"])
    center = _center(plane.bounds)
    # face-local vertices are stored as offsets from the window centre, like an untiled partition's
    area_check = K.polygon_areas(allp["xy"], allp["off"])
    assert np.all(area_check > -1e-12 * plane.area), "tiled_partition: a merged region is not counter-clockwise"
    max_sizes = meta["max_units_per_layer"]
    cuts = np.cumsum([0, *max_sizes])
    choices = tuple(np.ascontiguousarray(allp["choices"][:, cuts[k]:cuts[k + 1]]) for k in range(len(max_sizes)))
    return Partition(plane=plane, center=center, xy=allp["xy"], offsets=np.concatenate([[0], np.cumsum(counts)]),
                     labels=allp["lab"], pattern_bits=pattern_bits, maps=allp["maps"],
                     units_per_layer=tuple(sizes), layer_names=tuple(meta["layer_names"]), tolerance=tolerance,
                     method=f"tiled-{tiles}x{tiles}", choices=choices, max_units_per_layer=tuple(max_sizes),
                     max_layer_names=tuple(meta["max_layer_names"]))


# -- streaming to disk ------------------------------------------------------------------------------
def _pattern_hash(*parts: np.ndarray) -> np.ndarray:
    """64-bit FNV-1a hash of each packed pattern row (F, B) uint8: one colour per region, across tiles.
    Several parts (F, B_k) hash as their concatenation along axis 1 (without making it)."""
    h = np.full(len(parts[0]), 14695981039346656037, np.uint64)
    for bits in parts:
        for col in range(bits.shape[1]):
            h = (h ^ bits[:, col].astype(np.uint64)) * np.uint64(1099511628211)
    return h


def _write_parquet(path, pieces: dict, center: np.ndarray) -> int:
    """One row per region: area, centroid (u, v), n_vertices, pattern (packed bytes), polygon (u0, v0, ...)."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:  # pragma: no cover - pyarrow is installed with netatlas[tiles]
        raise ImportError("netatlas regions --tiles writes Parquet and needs pyarrow (pip install pyarrow)") from None
    from netatlas.report import atomic_write

    off = pieces["off"]
    counts = np.diff(off)
    xy = pieces["xy"] + center
    areas = K.polygon_areas(pieces["xy"], off)
    cent = np.add.reduceat(xy, off[:-1], axis=0) / np.maximum(counts, 1)[:, None] if len(counts) else np.zeros((0, 2))
    key = _key(pieces)
    width = key.shape[1]
    table = pa.table({
        "area": areas, "centroid_u": cent[:, 0], "centroid_v": cent[:, 1], "n_vertices": counts.astype(np.int32),
        # from the array's buffer: no Python bytes object per region (a tile's patterns can be GBs)
        "pattern": pa.FixedSizeBinaryArray.from_buffers(pa.binary(width), len(key), [None, pa.py_buffer(key)]),
        "polygon": pa.ListArray.from_arrays(pa.array(2 * off, type=pa.int64()), pa.array(xy.ravel())),
    })
    atomic_write(path, lambda tmp: pq.write_table(table, tmp))
    return len(counts)


# NOTE [finished tiles]
# A tile is finished when its record tile_J_I.json exists; it is written last and lists the size and
# SHA-256 of the tile's .parquet and .npz. Every file is written atomically (a temporary file, removed
# on any error, then a rename), so an interrupt or a full disk leaves no partial file; a record whose
# files no longer match it (truncated or changed since) marks a damaged tile, which a resume reports
# in one line and recomputes.
def _tile_name(i: int, j: int) -> str:
    return f"tile_{j:03d}_{i:03d}"


def _file_record(path) -> dict:
    import hashlib

    with open(path, "rb") as stream:
        return {"size": path.stat().st_size, "sha256": hashlib.file_digest(stream, "sha256").hexdigest()}


def stream_tile(net, window: Plane, i: int, j: int, tiles: int, tolerance: float, method: str, directory,
                pixels: int, *, max_regions: int | None = None, memory_budget="auto", lines=None) -> dict:
    """Partition tile (i, j), write its complete regions to ``tile_J_I.parquet``, its seam pieces, counts
    and a pixels x pixels picture block (pattern hashes) to ``tile_J_I.npz``, then the record
    ``tile_J_I.json`` of both files' sizes and checksums (see NOTE [finished tiles]). Returns the npz's
    content. A convex window's tile (borders ``lines``) gives the picture's pixels in its rectangle instead:
    ``picture`` (n,) and their flat indices ``pixel_index`` (n,) in the whole picture."""
    import json
    from pathlib import Path

    from netatlas.report import atomic_write

    directory = Path(directory)
    name = _tile_name(i, j)
    if window.outline is not None and lines is None:
        lines = tile_lines(window, tiles)
    complete, border, part = tile_job(net, window, i, j, tiles, tolerance, method, max_regions=max_regions,
                                      memory_budget=memory_budget, lines=lines)
    center = _center(window.bounds)
    n_complete = _write_parquet(directory / f"{name}.parquet", complete, center)
    extra = {}
    if window.outline is None:
        us, vs = part.plane.grid(pixels)
        points = np.stack([us.ravel(), vs.ravel()], 1)
    else:  # the whole picture's pixels whose centres lie in this tile's rectangle (borders moved: not a block)
        us, vs = window.grid(pixels * tiles)
        (u0, u1), (v0, v1) = lines[0][i:i + 2], lines[1][j:j + 2]
        mine = ((us >= u0) & ((us < u1) | (i == tiles - 1)) & (vs >= v0) & ((vs < v1) | (j == tiles - 1))).ravel()
        extra["pixel_index"] = np.flatnonzero(mine)
        points = np.stack([us.ravel()[mine], vs.ravel()[mine]], 1)
    picture = np.zeros(len(points), np.uint64)  # 0: outside a convex window
    if part is not None:
        region = part.locate(points)
        # hash of the bits then arg-maxes (as _key orders them), layer by layer: no concatenated copy
        choices = [np.ascontiguousarray(c.astype(np.int16)).view(np.uint8) for c in part.choices]
        parts = [*part.pattern_bits, *choices] or [np.zeros((part.num_regions, 0), np.uint8)]
        inside = region >= 0
        picture[inside] = _pattern_hash(*parts)[region[inside]]
    if window.outline is None:
        picture = picture.reshape(pixels, pixels)
    out = {"xy": border["xy"], "off": border["off"], "lab": border["lab"], "bits": border["bits"],
           "choices": border["choices"], "maps": border["maps"], "picture": picture, "n_complete": np.int64(n_complete),
           "area_complete": np.float64(K.polygon_areas(complete["xy"], complete["off"]).sum()),
           "units_per_layer": np.array(() if part is None else part.units_per_layer, np.int64), **extra}
    atomic_write(directory / f"{name}.npz", lambda tmp: np.savez(tmp, **out))
    record = {"tile": [i, j], "files": {f"{name}{suffix}": _file_record(directory / f"{name}{suffix}")
                                        for suffix in (".parquet", ".npz")}}
    atomic_write(directory / f"{name}.json", lambda tmp: tmp.write_text(json.dumps(record, indent=1)))
    return out


def _finished_tile(directory, i: int, j: int) -> tuple[dict | None, str | None]:
    """(content of tile (i, j)'s npz, None) if the tile is finished and intact; (None, why) if its
    record says it finished but a file is missing or differs (damaged); (None, None) if it never finished."""
    import json

    name = _tile_name(i, j)
    try:
        record = json.loads((directory / f"{name}.json").read_text())
        files = record["files"]
        expected = {f"{name}.parquet", f"{name}.npz"}
        if set(files) != expected or not all(isinstance(files[f], dict) for f in expected):
            raise ValueError
    except FileNotFoundError:
        return None, None
    except (OSError, ValueError, KeyError, TypeError):
        return None, f"{name}.json, its record, is unreadable"
    for file_name, wanted in sorted(files.items()):
        path = directory / file_name
        if not path.is_file():
            return None, f"{file_name} is missing"
        found = _file_record(path)
        if found["size"] != wanted.get("size"):
            return None, f"{file_name} has {found['size']} bytes, recorded {wanted.get('size')}"
        if found["sha256"] != wanted.get("sha256"):
            return None, f"{file_name} does not match its recorded SHA-256"
    try:
        with np.load(directory / f"{name}.npz") as z:
            return {k: z[k] for k in z.files}, None
    except (OSError, ValueError) as exc:  # pragma: no cover - the checksum matched the file as written
        return None, f"{name}.npz cannot be read ({exc})"


def _check_fingerprint(directory, fingerprint: dict) -> None:
    """Refuse (before anything is written) a tiles folder made for another model, slice or tiling."""
    import json

    from netatlas._errors import ResumeRefusedError
    from netatlas.report import atomic_write

    meta = directory / "tiles.json"
    if not meta.exists():
        atomic_write(meta, lambda tmp: tmp.write_text(json.dumps(fingerprint)))
        return
    try:
        previous = json.loads(meta.read_text())
    except (OSError, ValueError):
        previous = None
    if not isinstance(previous, dict):
        raise ResumeRefusedError(f"{directory} holds tiles whose settings ({meta.name}) are unreadable; use a "
                                 "new --out", path=directory)
    changed = sorted(k for k in set(previous) | set(fingerprint) if previous.get(k) != fingerprint.get(k))
    if changed:
        names = {"net": "the model's weights", "plane": "the plane's origin or directions"}
        raise ResumeRefusedError(f"{directory} holds tiles of another model, slice or tiling "
                                 f"({', '.join(names.get(k, k) for k in changed)} differ); use a new --out",
                                 path=directory)


def _remove_temporaries(directory) -> None:
    """Temporary files left by a process killed while writing (an interrupt or a full disk removes its own)."""
    for path in directory.glob(".tile_*.tmp.*"):
        path.unlink(missing_ok=True)


def stream_partition(net, plane: Plane, tiles: int, directory, *, tolerance: float, method: str = "auto",
                     client=None, picture: int = 512, max_regions: int | None = None, memory_budget="auto") -> dict:
    """Partition ``plane`` tile by tile without holding it in memory: complete regions go to one
    Parquet file per tile, regions cut by tile borders are merged at the end into ``merged.parquet``.

    Resumable: finished tiles (see NOTE [finished tiles]) are not recomputed; a damaged one (a file
    truncated or changed since its record) is reported in one log line and recomputed. A folder made for
    another model, slice or tiling is refused (``ResumeRefusedError``) before anything in it is changed.
    Returns a summary (counts, area, the picture as an (P, P) array of pattern hashes, P = picture
    rounded down to a multiple of tiles, and ``recomputed_tiles``: why each damaged tile was recomputed).

    ``max_regions`` limits the total count (the whole slice estimated first, then counted tile by tile) and
    each tile's run; ``memory_budget`` each tile's run (the regions go to disk, not to memory).

    Examples
    --------
    >>> import tempfile, netatlas
    >>> s = stream_partition(netatlas.nets.mlp([2, 8, 8, 1], seed=0), Plane.square(1.0), 2, tempfile.mkdtemp(),
    ...                      tolerance=1e-10, picture=8)
    >>> s["num_regions"] == netatlas.regions.partition(netatlas.nets.mlp([2, 8, 8, 1], seed=0)).num_regions
    True
    >>> s["recomputed_tiles"]
    []
    """
    from pathlib import Path

    from netatlas.nets import as_net

    net = as_net(net, input_shape=plane.input_shape)
    limits = whole_slice_limits(net, plane, tiles, max_regions, memory_budget, in_memory=False)
    tile_limits = {"max_regions": max_regions, "memory_budget": memory_budget,
                   "lines": None if plane.outline is None else tile_lines(plane, tiles)}
    directory = Path(directory)
    fingerprint = {"tiles": tiles, "bounds": list(plane.bounds), "tolerance": tolerance, "method": method,
                   "picture": picture, "net": _net_digest(net), "plane": _plane_digest(plane), "seam": SEAM}
    directory.mkdir(parents=True, exist_ok=True)
    _check_fingerprint(directory, fingerprint)
    _remove_temporaries(directory)
    px = max(picture // tiles, 1)
    jobs = [(i, j) for j in range(tiles) for i in range(tiles)]
    results, damaged = {}, []
    for i, j in jobs:
        results[i, j], why = _finished_tile(directory, i, j)
        if why is not None:
            damaged.append(f"{_tile_name(i, j)}: {why}")
            logger.warning("stream_partition: damaged tile in %s: %s; recomputing it", directory, damaged[-1])
    todo = [ij for ij in jobs if results[ij] is None]
    for ij in jobs:  # finished tiles count towards the total too
        if results[ij] is not None:
            _guard(limits, int(results[ij]["n_complete"]), plane.area / tiles**2, tiles)
    if client is None:
        for i, j in todo:
            results[i, j] = stream_tile(net, plane, i, j, tiles, tolerance, method, directory, px, **tile_limits)
            _guard(limits, int(results[i, j]["n_complete"]), plane.area / tiles**2, tiles)
    elif todo:
        from distributed import as_completed

        remote = client.scatter(net, broadcast=True, hash=False)
        futures = {client.submit(stream_tile, remote, plane, i, j, tiles, tolerance, method, str(directory), px,
                                 pure=False, **tile_limits): (i, j) for i, j in todo}
        for future in as_completed(list(futures)):
            results[futures[future]] = future.result()
            _guard(limits, int(results[futures[future]]["n_complete"]), plane.area / tiles**2, tiles)
            future.release()
    border = _concat([{k: results[ij][k] for k in ("xy", "off", "lab", "bits", "choices", "maps")} for ij in jobs])
    merged = merge_border(border, _diag(plane.bounds))
    _guard(limits, len(merged["off"]) - 1, 0.0, tiles)  # the regions merged across tile borders count too
    n_merged = _write_parquet(directory / "merged.parquet", merged, _center(plane.bounds))
    image = np.zeros((tiles * px, tiles * px), np.uint64)
    for (i, j), r in results.items():
        if "pixel_index" in r:  # a convex window's tile: its pixels, wherever its moved borders put them
            image.ravel()[r["pixel_index"]] = r["picture"]
        else:
            image[j * px:(j + 1) * px, i * px:(i + 1) * px] = r["picture"]
    n_complete = int(sum(int(r["n_complete"]) for r in results.values()))
    area = float(sum(float(r["area_complete"]) for r in results.values())
                 + K.polygon_areas(merged["xy"], merged["off"]).sum())
    return {"num_regions": n_complete + n_merged, "complete_in_tiles": n_complete, "merged_across_borders": n_merged,
            "area": area, "slice_area": plane.area, "tiles": tiles, "picture": image,
            "files": sorted(p.name for p in directory.glob("*.parquet")), "recomputed_tiles": damaged}


def _net_digest(net) -> str:
    import hashlib

    import torch

    h = hashlib.sha1()
    for node in net.nodes:
        h.update(node.op.describe().encode())
        for v in vars(node.op).values():
            if isinstance(v, torch.Tensor):
                h.update(v.detach().cpu().numpy().tobytes())
    return h.hexdigest()


def _plane_digest(plane) -> str:
    import hashlib

    outline = b"" if plane.outline is None else np.ascontiguousarray(plane.outline).tobytes()
    return hashlib.sha1(plane.origin.tobytes() + plane.d1.tobytes() + plane.d2.tobytes() + outline).hexdigest()
