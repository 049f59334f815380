"""Scale control for exact partitions: an estimate of the region count before a run, a limit on
regions and on memory, and a progress bar on long runs.

The estimate counts the exact pieces of the network along a few lines across the slice (cheap:
1-D) and uses the cell density of an isotropic random line tessellation: a line crossing ``lambda``
boundaries per unit length on average sees ``pi lambda^2 / 4`` cells per unit area. It is an order
of magnitude, not a bound; the run itself also stops as soon as it passes ``max_regions``.
"""

from __future__ import annotations

import math
import sys

import numpy as np

from netatlas._errors import RegionLimitError
from netatlas._memory import format_bytes, memory_budget, parse_bytes

__all__ = ["RegionLimitError", "estimate_regions", "budget_bytes", "bytes_per_region", "Limits"]


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


def estimate_regions(net, plane, n_lines: int = 6, *, max_regions: int | None = None) -> float:
    """Estimated number of regions of ``net`` in ``plane`` from exact counts along ``n_lines``
    lines through the slice (axis-parallel and diagonal).

    With ``max_regions``, the walk stops as soon as the lines counted so far put the estimate above it
    (the lines left can only add crossings): the value returned is then a lower bound of the full
    estimate, already above ``max_regions``, and the cost stays bounded on a slice far over the limit.

    >>> import netatlas
    >>> net = netatlas.nets.from_torch(netatlas.nets.mlp([2, 16, 16, 1], seed=0))
    >>> part = netatlas.regions.partition(net)
    >>> est = estimate_regions(net, netatlas.Plane.square(1.0))
    >>> 0.2 < est / part.num_regions < 5
    True
    >>> bool(estimate_regions(net, netatlas.Plane.square(100.0), max_regions=10) > 10)
    True
    """
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
                f"partition: about {estimate:,.0f} regions estimated (exact counts along lines across the slice), "
                f"above {self._limits()} (~{format_bytes(estimate * self.per_region)}); use a smaller window "
                "(Plane bounds), split the slice into tiles, or raise max_regions / memory_budget")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
