"""Exact linear regions of piecewise-linear networks on 3-D and 2-D slices and 1-D lines: partitions,
activation patterns, per-region affine maps, decision boundaries, level sets, counts and bounds;
local complexity around points (``local_complexity``); tiled partitions streamed to disk
(``partition(..., tiles=k)``, ``stream_partition``); 3-D complexes of a ``Volume`` (``Complex3D``) and
their exact level-set meshes (``Mesh``).

>>> import netatlas
>>> part = netatlas.regions.partition(netatlas.nets.mlp([2, 4, 1], seed=0))
>>> part.num_regions, part.patterns.shape
(10, (10, 4))
"""

from netatlas._lazy import attach as _attach

# Names are imported from their module on first use (see netatlas._lazy).
__getattr__, __dir__ = _attach(__name__, {
    "_boundary": ["SEGMENT_TOLERANCE", "Segments", "decision_boundary", "level_set"],
    "_complexity": ["DISC_TOLERANCE", "MAX_REGIONS", "estimate_discs", "exact_counts", "hyperplanes_crossing",
                    "local_complexity", "local_complexity_1d", "random_directions"],
    "_lines": ["LINE_TOLERANCE", "LinePieces", "along_line"],
    "_entry": ["partition"],
    "_complex3d": ["Complex3D"],
    "_tiles3d": ["TiledComplex3D"],
    "_mesh": ["Mesh"],
    "_partition": ["BOUNDARY_TOLERANCE", "CUT_BY_BOUNDARY", "VERTEX_MERGE_TOLERANCE", "Neighbors", "Partition"],
    "_pieces": ["ClassPieces", "class_pieces"],
    "_plot": ["plot_line_pieces", "plot_partition"],
    "_tiles": ["stream_partition"],
    "_scale": ["RegionLimitError", "estimate_regions"],
}, submodules=("bounds",))

__all__ = [
    "BOUNDARY_TOLERANCE",
    "CUT_BY_BOUNDARY",
    "Complex3D",
    "DISC_TOLERANCE",
    "LINE_TOLERANCE",
    "MAX_REGIONS",
    "SEGMENT_TOLERANCE",
    "VERTEX_MERGE_TOLERANCE",
    "ClassPieces",
    "LinePieces",
    "Mesh",
    "Neighbors",
    "Partition",
    "RegionLimitError",
    "Segments",
    "TiledComplex3D",
    "along_line",
    "bounds",
    "class_pieces",
    "decision_boundary",
    "estimate_discs",
    "exact_counts",
    "hyperplanes_crossing",
    "estimate_regions",
    "level_set",
    "local_complexity",
    "local_complexity_1d",
    "partition",
    "plot_line_pieces",
    "plot_partition",
    "random_directions",
    "stream_partition",
]
