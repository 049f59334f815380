"""Scale control for exact partitions: an estimate of the region count before a run, a limit on
regions and on memory, and a progress bar on long runs.

The estimate counts the exact pieces of the network along a few lines across the slice (cheap:
1-D) and uses the cell density of an isotropic random line tessellation: a line crossing ``lambda``
boundaries per unit length on average sees ``pi lambda^2 / 4`` cells per unit area. On nets with a
node of ``SAMPLED_WIDTH`` units or more (ImageNet-sized CNNs) it instead samples the exact affine maps
of every unit at a few points of the window (NOTE [sampled estimate]). Either is an order of
magnitude, not a bound; the run itself also stops as soon as it passes ``max_regions``.
"""

from __future__ import annotations

import math
import sys
from typing import Literal

import numpy as np

from netatlas._errors import RegionLimitError
from netatlas._memory import format_bytes, memory_budget, parse_bytes

__all__ = ["RegionLimitError", "estimate_regions", "budget_bytes", "bytes_per_region", "Limits", "SAMPLED_WIDTH"]

#: Widest node (units, the input included) from which ``estimate_regions`` samples per-unit maps at a few
#: points instead of walking lines: each piece of a line holds ~72 bytes per unit of the widest node and
#: each ``along_line`` call repeats a magnitude pass per node, so on a 3 x 224 x 224 input the walk took
#: minutes; CIFAR- and MNIST-sized nets (32 x 32 x 16 = 16,384 units) keep the line walk.
SAMPLED_WIDTH = 2**16


def budget_bytes(budget, where: str) -> int | None:
    """A regions ``memory_budget`` argument in bytes: "auto" is netatlas's one budget
    (``_memory.memory_budget()``: ``NETATLAS_MEMORY_BUDGET``, else half the physical memory), None no
    limit, anything else read by ``_memory.parse_bytes`` (plain bytes; KB/MB/GB/TB powers of 10,
    KiB/MiB/GiB/TiB powers of 2); ``where`` starts its error message.

    >>> budget_bytes("1GB", "partition"), budget_bytes(None, "partition")
    (1000000000, None)
    """
    if isinstance(budget, str) and budget == "auto":
        return memory_budget()
    return None if budget is None else parse_bytes(budget, f"{where}: memory_budget")


def bytes_per_region(net, n_outputs: int) -> int:
    """Memory one finished region holds: packed pattern bits, arg-maxes, output map, ~6 vertices
    (coordinates and labels), offsets; times 1.5 for the moment a result array doubles (``_sink``:
    measured 1.27 on a VGG-style net at 361k regions)."""
    from netatlas.nets import Max

    bits = choices = 0
    for i in net.nonlinear:
        op = net.nodes[i].op
        if isinstance(op, Max):
            choices += op.size * 2
        else:
            bits += net.nodes[i].size * max(len(op.breakpoints), 1)
    one = math.ceil(bits / 8) + choices + 3 * n_outputs * 8 + 6 * (16 + 8) + 8
    return math.ceil(1.5 * one)


def estimate_regions(net, plane, n_lines: int = 6, *, max_regions: int | None = None,
                     method: Literal["auto", "lines", "samples"] = "auto") -> float:
    """Estimated number of regions of ``net`` in ``plane`` from exact counts along ``n_lines``
    lines through the slice (axis-parallel and diagonal), or from each unit's exact affine map at a
    few sample points (NOTE [sampled estimate]).

    With ``max_regions``, the walk stops as soon as the lines counted so far put the estimate above it
    (the lines left can only add crossings): the value returned is then a lower bound of the full
    estimate, already above ``max_regions``, and the cost stays bounded on a slice far over the limit.
    ``method``: "lines" walks the lines; "samples" samples maps at 3 x 3 points of the window (one
    gated forward pass, whatever the window); "auto" samples on nets with a node of ``SAMPLED_WIDTH``
    units or more, where a line's pieces each hold megabytes of maps.

    >>> import netatlas
    >>> net = netatlas.nets.from_torch(netatlas.nets.mlp([2, 16, 16, 1], seed=0))
    >>> part = netatlas.regions.partition(net)
    >>> est = estimate_regions(net, netatlas.Plane.square(1.0))
    >>> 0.2 < est / part.num_regions < 5
    True
    >>> bool(estimate_regions(net, netatlas.Plane.square(100.0), max_regions=10) > 10)
    True
    >>> 0.2 < estimate_regions(net, netatlas.Plane.square(1.0), method="samples") / part.num_regions < 5
    True
    """
    if method not in ("auto", "lines", "samples"):
        raise ValueError(f"estimate_regions: method must be 'auto', 'lines' or 'samples'; got {method!r}")
    if method == "samples" or (method == "auto" and max(node.size for node in net.nodes) >= SAMPLED_WIDTH):
        return _estimate_from_samples(net, plane)
    from netatlas.regions import along_line  # the package, not _lines: _lines imports this module

    umin, umax, vmin, vmax = plane.bounds
    per_kind = math.ceil(n_lines / 3)
    ends = []
    for k in range(n_lines):
        kind, f = k % 3, (k // 3 + 0.5) / per_kind
        if kind == 0:  # horizontal
            a, b = (umin, vmin + f * (vmax - vmin)), (umax, vmin + f * (vmax - vmin))
        elif kind == 1:  # vertical
            a, b = (umin + f * (umax - umin), vmin), (umin + f * (umax - umin), vmax)
        elif (k // 3) % 2 == 0:  # the diagonals, alternately
            a, b = (umin, vmin), (umax, vmax)
        else:
            a, b = (umin, vmax), (umax, vmin)
        ends.append((np.array(a, float), np.array(b, float)))
    lengths = sum(math.hypot(*(b - a)) for a, b in ends)
    crossings = 0
    for a, b in ends:
        crossings += _breakpoints_along(net, plane, a, b, along_line)
        estimate = max(1.0, math.pi * (crossings / lengths) ** 2 / 4 * plane.area)
        if max_regions is not None and estimate > max_regions:
            break
    return estimate


#: Memory the region estimate lets one ``along_line`` call use for its pieces' maps.
ESTIMATE_BYTES = 128 * 2**20


def _breakpoints_along(net, plane, a, b, along_line) -> int:
    """Breakpoints of ``net`` on the segment a -> b (plane coordinates), in consecutive sub-segments
    sized so that each ``along_line`` call holds about ESTIMATE_BYTES of per-piece maps (it keeps every
    piece's maps of the widest layer: on a wide CNN a whole line at once could itself exhaust memory)."""
    per_piece = 72 * max(node.size for node in net.nodes)  # 3 rows x 8 bytes, ~3 such arrays at a time
    step = 1.0 if per_piece * 4096 <= ESTIMATE_BYTES else 1 / 64  # a fraction of the segment
    t, count = 0.0, 0
    while t < 1.0 - 1e-9:
        h = min(step, 1.0 - t) if 1.0 - t - step > 1e-9 else 1.0 - t  # no sliver left at the end
        ends = plane.to_input(np.array([a + t * (b - a), a + (t + h) * (b - a)]))
        pieces = along_line(net, ends[0].reshape(plane.input_shape), ends[1].reshape(plane.input_shape))
        count += pieces.num_pieces - 1
        t += h
        # next sub-segment: aim at the budget from this one's count (within a factor 4 per step)
        step = h * min(4.0, max(0.25, ESTIMATE_BYTES / (per_piece * max(pieces.num_pieces, 1))))
    return count


# NOTE [sampled estimate]
# At a point p of the window every unit's pre-activation z is exactly affine on p's region, with the
# map a u + b v + c given by one gated forward pass under p's activation pattern (``_affine``). Its
# kink z = b' (each breakpoint b') is then a line; read as a straight line over the whole window it
# either crosses the window or not. An arrangement of m lines crossing a convex window in general
# position has 1 + m + I cells, I the pairs meeting inside it. The estimate is the mean of that count
# over a 3 x 3 grid of sample points, each with its own pattern. A Max window adds, per sample, the tie
# line of its arg-max there with each entry that wins at a corner of the window. Exact for the first
# nonlinear node (affine on the whole slice, so all samples agree), which dominates in small windows;
# deeper units' kinks bend at earlier kinks, so there it is an order of magnitude. Beyond
# SAMPLED_PAIRS lines the pairs are counted on a seeded random subset of lines and scaled.

#: Lines per sample point whose pairs the sampled estimate counts exactly (a seeded subset beyond it).
SAMPLED_PAIRS = 2048


def _estimate_from_samples(net, plane, n_side: int = 3) -> float:
    """NOTE [sampled estimate]: the mean over ``n_side`` x ``n_side`` sample points of the cells of the
    arrangement of the kink lines of every unit's affine map under the point's pattern."""
    from netatlas.nets import Max
    from netatlas.regions._affine import carried_nodes, gated_values, gates_from_states

    umin, umax, vmin, vmax = plane.bounds
    f = (np.arange(n_side) + 0.5) / n_side
    uu, vv = np.meshgrid(umin + f * (umax - umin), vmin + f * (vmax - vmin), indexing="ij")
    uv = np.stack([uu.ravel(), vv.ravel()], axis=1)  # (S, 2)
    corners = np.array([[umin, vmin], [umax, vmin], [umin, vmax], [umax, vmax]])
    x_c, d1, d2 = (np.asarray(a, np.float64).ravel() for a in (plane.origin, plane.d1, plane.d2))
    n_samples = len(uv)
    lines: list[list[np.ndarray]] = [[] for _ in range(n_samples)]  # per sample: (m, 3) rows a, b, c
    states: list[np.ndarray] = []
    carried: dict = {}
    for node_index in net.nonlinear:
        op = net.nodes[node_index].op
        pre = net.nodes[node_index].inputs[0]
        keep = carried_nodes(net, node_index)
        values = gated_values(net, [pre, *keep], x_c, d1, d2, gates_from_states(net, states), carried)
        M = values[pre].expand(n_samples, -1, -1).numpy()  # (S, 3, n): z = M[0] u + M[1] v + M[2]
        z = M[:, 0] * uv[:, :1] + M[:, 1] * uv[:, 1:] + M[:, 2]  # (S, n) at the sample points
        if isinstance(op, Max):
            state = _max_lines(M, z, op.index.numpy(), corners, lines)
        else:
            bits = []
            for b in op.breakpoints:
                shifted = M - np.array([0.0, 0.0, b])[None, :, None]
                _add_crossing(shifted, corners, lines)
                bits.append(z > b)
            state = (np.concatenate(bits, axis=1) if bits else np.ones_like(z, bool)).astype(np.uint8)
        states.append(state)
        carried = {j: values[j] for j in keep}
    rng = np.random.default_rng(0)
    counts = [_cells(np.concatenate(rows) if rows else np.zeros((0, 3)), plane.bounds, rng) for rows in lines]
    return max(1.0, float(np.mean(counts)))


def _add_crossing(maps, corners, lines) -> None:
    """Append to ``lines[s]`` the rows (a, b, c) of ``maps`` (S, 3, n) whose zero line crosses the
    window (the map takes both signs at its corners)."""
    at = maps[:, None, 0] * corners[None, :, :1] + maps[:, None, 1] * corners[None, :, 1:] + maps[:, None, 2]
    crossing = (at.min(axis=1) < 0) & (at.max(axis=1) > 0)  # (S, n)
    for s in range(len(maps)):
        lines[s].append(maps[s][:, crossing[s]].T)


def _max_lines(M, z, index, corners, lines) -> np.ndarray:
    """The arg-max positions (S, n_out) of the ``Max`` windows ``index`` (n_out, k) at the samples;
    appends the tie lines of each sample's arg-max with the entries that win at a corner."""
    present = index >= 0
    idx = np.where(present, index, 0)
    rows = np.arange(len(index))
    choice = np.where(present[None], z[:, idx], -np.inf).argmax(axis=2)  # (S, n_out), first of ties
    at = M[:, None, 0] * corners[None, :, :1] + M[:, None, 1] * corners[None, :, 1:] + M[:, None, 2]  # (S, 4, n)
    at_corner = np.where(present[None, None], at[:, :, idx], -np.inf).argmax(axis=3)  # (S, 4, n_out)
    for s in range(len(M)):
        winner = idx[rows, choice[s]]
        pairs = set()
        for c in range(len(corners)):
            other = idx[rows, at_corner[s, c]]
            pairs.update((w, o) for w, o in zip(winner[winner != other], other[winner != other], strict=True))
        if pairs:
            w, o = np.array(sorted(pairs)).T
            tie = M[s][:, w] - M[s][:, o]  # (3, m)
            _add_crossing(tie[None], corners, lines[s:s + 1])
    return choice.astype(np.int64)


def _cells(rows, bounds, rng) -> float:
    """Cells 1 + m + I of the arrangement of the m lines ``rows`` (m, 3) (a u + b v + c = 0) in the
    window ``bounds``, I the pairs meeting strictly inside it (on a subset of SAMPLED_PAIRS lines,
    scaled by the pairs' ratio, beyond that)."""
    m = len(rows)
    sub = rows[rng.choice(m, SAMPLED_PAIRS, replace=False)] if m > SAMPLED_PAIRS else rows
    umin, umax, vmin, vmax = bounds
    inside = 0
    with np.errstate(divide="ignore", invalid="ignore"):
        for i0 in range(0, len(sub), 256):
            a, b, c = (sub[i0:i0 + 256, j, None] for j in range(3))
            det = a * sub[None, :, 1] - sub[None, :, 0] * b  # Cramer's rule for each pair
            u = (b * sub[None, :, 2] - sub[None, :, 1] * c) / det
            v = (sub[None, :, 0] * c - a * sub[None, :, 2]) / det
            hit = (u > umin) & (u < umax) & (v > vmin) & (v < vmax)
            inside += int(np.triu(hit, k=i0 + 1).sum())  # each pair once: column j > row i0 + r
    n = len(sub)
    pairs = inside * (m * (m - 1) / (n * (n - 1)) if n > 1 else 0.0)
    return 1.0 + m + pairs


class Limits:
    """Counts emitted regions during a run; stops it past ``max_regions`` and shows progress."""

    def __init__(self, max_regions, budget_bytes, per_region, total_area, progress):
        self.max_regions = max_regions
        self.budget = budget_bytes
        self.per_region = per_region
        self.count = 0
        self.area = 0.0
        self.total_area = total_area
        self.bar = None
        if progress is None:
            progress = sys.stderr.isatty()
        if progress:
            from tqdm import tqdm

            self.bar = tqdm(total=100.0, desc="regions", unit="% area", bar_format="{l_bar}{bar}| {n:.1f}% "
                            "[{elapsed}<{remaining}] {postfix}")

    @property
    def cap(self) -> int | None:
        caps = [c for c in (self.max_regions, self.budget // self.per_region if self.budget else None)
                if c is not None]
        return min(caps) if caps else None

    def add(self, n_regions: int, area: float) -> None:
        self.count += n_regions
        self.area += area
        cap = self.cap
        if cap is not None and self.count > cap:
            self.close()
            raise RegionLimitError(
                f"partition: passed {cap:,} regions with {100 * self.area / self.total_area:.1f}% of the slice "
                f"done ({self._limits()}); use a smaller window (Plane bounds), split the slice into tiles, or "
                "raise max_regions / memory_budget")
        if self.bar is not None:
            self.bar.n = 100.0 * self.area / self.total_area
            self.bar.set_postfix_str(f"{self.count:,} regions", refresh=False)
            self.bar.refresh()

    def _limits(self) -> str:
        parts = []
        if self.max_regions is not None:
            parts.append(f"max_regions={self.max_regions:,}")
        if self.budget:
            parts.append(f"memory budget {format_bytes(self.budget)} at ~{self.per_region:,} bytes per region")
        return ", ".join(parts)

    def check_estimate(self, estimate: float) -> None:
        cap = self.cap
        if cap is not None and estimate > cap:
            raise RegionLimitError(
                f"partition: about {estimate:,.0f} regions estimated (estimate_regions: exact counts along lines "
                f"across the slice, or each unit's map at sample points on wide nets), "
                f"above {self._limits()} (~{format_bytes(estimate * self.per_region)}); use a smaller window "
                "(Plane bounds), split the slice into tiles, or raise max_regions / memory_budget")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
