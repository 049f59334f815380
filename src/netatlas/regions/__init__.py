"""Exact linear regions of piecewise-linear networks on 2-D slices and 1-D lines: partitions,
activation patterns, per-region affine maps, decision boundaries, level sets, counts and bounds.

>>> import netatlas
>>> part = netatlas.regions.partition(netatlas.nets.mlp([2, 4, 1], seed=0))
>>> part.num_regions, part.patterns.shape
(10, (10, 4))
"""

from netatlas.regions import bounds
from netatlas.regions._boundary import SEGMENT_TOLERANCE, Segments, decision_boundary, level_set
from netatlas.regions._lines import LINE_TOLERANCE, LinePieces, along_line
from netatlas.regions._partition import (
    BOUNDARY_TOLERANCE,
    VERTEX_MERGE_TOLERANCE,
    Neighbors,
    Partition,
    partition,
)
from netatlas.regions._plot import plot_line_pieces, plot_partition
from netatlas.regions._scale import RegionLimitError, estimate_regions

__all__ = [
    "BOUNDARY_TOLERANCE",
    "LINE_TOLERANCE",
    "SEGMENT_TOLERANCE",
    "VERTEX_MERGE_TOLERANCE",
    "LinePieces",
    "Neighbors",
    "Partition",
    "RegionLimitError",
    "Segments",
    "along_line",
    "bounds",
    "decision_boundary",
    "estimate_regions",
    "level_set",
    "partition",
    "plot_line_pieces",
    "plot_partition",
]
