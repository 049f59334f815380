"""Exact linear regions of piecewise-linear networks on 2-D slices and 1-D lines: partitions,
activation patterns, per-region affine maps, decision boundaries, level sets, counts and bounds.

>>> import netatlas
>>> part = netatlas.regions.partition(netatlas.nets.mlp([2, 4, 1], seed=0))
>>> part.num_regions, part.patterns.shape
(10, (10, 4))
"""

from netatlas._lazy import attach as _attach

# Names are imported from their module on first use (see netatlas._lazy).
__getattr__, __dir__ = _attach(__name__, {
    "_boundary": ["SEGMENT_TOLERANCE", "Segments", "decision_boundary", "level_set"],
    "_lines": ["LINE_TOLERANCE", "LinePieces", "along_line"],
    "_partition": ["BOUNDARY_TOLERANCE", "VERTEX_MERGE_TOLERANCE", "Neighbors", "Partition", "partition"],
    "_plot": ["plot_line_pieces", "plot_partition"],
}, submodules=("bounds",))

__all__ = [
    "BOUNDARY_TOLERANCE",
    "LINE_TOLERANCE",
    "SEGMENT_TOLERANCE",
    "VERTEX_MERGE_TOLERANCE",
    "LinePieces",
    "Neighbors",
    "Partition",
    "Segments",
    "along_line",
    "bounds",
    "decision_boundary",
    "level_set",
    "partition",
    "plot_line_pieces",
    "plot_partition",
]
