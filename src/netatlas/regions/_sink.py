"""Where a partition's finished regions go while it runs: each field in one growing array.

Regions are finished a batch at a time, between short-lived per-face maps; kept as a list of small
per-batch arrays, they would pin the heap pages the temporaries are freed into (glibc keeps them), so a
run's resident memory grew to 2-2.5x its results, and joining the lists at the end doubled them again.
Appended into one large block per field instead (doubling when full; the untouched tail of a block is
never resident), the results cost about their own size.
"""

from __future__ import annotations

import numpy as np

from netatlas.regions import _kernels as K

__all__ = ["GrowingRows", "RegionSink"]


class GrowingRows:
    """Rows appended in batches to one array that doubles when full.

    >>> rows = GrowingRows()
    >>> rows.append(np.ones((3, 2))); rows.append(np.zeros((2, 2)))
    >>> rows.array().shape
    (5, 2)
    """

    def __init__(self):
        self.buf, self.n = None, 0

    def append(self, a, owned: bool = False) -> None:
        """Append the rows of ``a``; ``owned``: ``a`` is the caller's to give away (nothing else writes to
        it later), so the first batch is kept as it is instead of copied."""
        a = np.asarray(a)
        if owned and self.buf is None:
            self.buf, self.n = a, len(a)
            return
        need = self.n + len(a)
        if self.buf is None or need > len(self.buf):
            capacity = max(need, 2 * (0 if self.buf is None else len(self.buf)), 1024)
            grown = np.empty((capacity, *a.shape[1:]), a.dtype)
            if self.buf is not None:
                grown[:self.n] = self.buf[:self.n]
            self.buf = grown
        self.buf[self.n:need] = a
        self.n = need

    def array(self) -> np.ndarray:
        """The rows so far (a view: no copy)."""
        return self.buf[:self.n]

    def reserve(self, n_more: int, row_shape, dtype) -> np.ndarray:
        """The whole buffer, with room for at least ``n_more`` rows (of ``row_shape``, ``dtype``) after the ones so
        far (doubling when full), for a compiled kernel to write rows into; ``adopt`` takes it back.

        >>> rows = GrowingRows()
        >>> buf = rows.reserve(3, (2,), np.float64); buf[:3] = 1.0; rows.adopt(buf, 3)
        >>> rows.array().shape
        (3, 2)
        """
        need = self.n + n_more
        if self.buf is None or need > len(self.buf):
            capacity = max(need, 2 * (0 if self.buf is None else len(self.buf)), 1024)
            grown = np.empty((capacity, *row_shape), dtype)
            if self.buf is not None:
                grown[:self.n] = self.buf[:self.n]
            self.buf = grown
        return self.buf

    def adopt(self, buf: np.ndarray, n: int) -> None:
        """The buffer ``reserve`` gave (or the larger copy a kernel grew it into) and its row count now."""
        self.buf, self.n = buf, n


class RegionSink:
    """The finished regions of a partition: polygons (xy, edge labels, vertex counts), per-layer states
    (pattern bits or arg-maxes) and output maps; ``limits`` (``_scale.Limits`` or None) sees every batch."""

    def __init__(self, limits=None):
        self.limits = limits
        self.xy, self.lab, self.counts, self.maps = GrowingRows(), GrowingRows(), GrowingRows(), GrowingRows()
        self.states: list[GrowingRows] = []

    def add(self, xy, off, lab, states, maps, maps_owned: bool = False) -> None:
        """Append finished faces (xy, off, lab as a split kernel returns them), their per-layer states and
        output maps (F, 3, n_outputs) (``maps_owned``: a fresh array the sink may keep, see
        ``GrowingRows.append``); the limits, when set, see their count and total area."""
        self.count(xy, off)
        self.xy.append(xy)
        self.lab.append(lab)
        self.counts.append(np.diff(off))
        self.maps.append(maps, maps_owned)
        while len(self.states) < len(states):
            self.states.append(GrowingRows())
        for rows, st in zip(self.states, states, strict=False):
            rows.append(st)

    def count(self, xy, off) -> None:
        """Let the limits, when set, see a batch of finished faces (their count and total area)."""
        if self.limits is not None:
            self.limits.add(len(off) - 1, float(K.polygon_areas(xy, off).sum()))

    def state_rows(self, k: int) -> GrowingRows:
        """The rows of layer k's states (created empty when none was added yet)."""
        while len(self.states) <= k:
            self.states.append(GrowingRows())
        return self.states[k]

    def offsets(self) -> np.ndarray:
        counts = self.counts.array()
        out = np.zeros(len(counts) + 1, np.int64)
        np.cumsum(counts, out=out[1:])
        return out
