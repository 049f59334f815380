"""Exact decision boundaries and level sets of a partition: straight segments inside regions.

Inside a linear region every output is affine, so the set where output k equals a value is one
straight segment per region (or nothing), and the set where the arg-max class changes is made of
the edges between the convex cells ``{f_c >= f_j for all j}`` of the region.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from netatlas.regions import _kernels as K

__all__ = ["Segments", "decision_boundary", "level_set"]

#: Boundary tolerance for clipping, relative to a region's diameter (see _partition's NOTE).
SEGMENT_TOLERANCE = 1e-10


@dataclass(frozen=True, eq=False)
class Segments:
    """Straight segments in plane coordinates.

    Attributes
    ----------
    segments : ndarray of shape (S, 2, 2)
        Endpoints ``segments[s] = [[u0, v0], [u1, v1]]``.
    region : ndarray of shape (S,)
        The region each segment lies in.
    classes : ndarray of shape (S, 2)
        For a multi-class decision boundary, the two classes on either side (lower first);
        -1 otherwise.
    kind : str
        "decision_boundary" or "level_set".
    output : int or None
        The output of a level set (or of a single-output decision boundary).
    value : float or None
        The level of a level set (0.0 for a single-output decision boundary).
    """

    segments: np.ndarray
    region: np.ndarray
    classes: np.ndarray
    kind: str
    output: int | None
    value: float | None

    # Array protocol: the object behaves as the (S, 2, 2) array of endpoints the API promises
    # (np.asarray(b), b.shape, b[i], iteration), while region/classes stay attached.
    def __len__(self) -> int:
        return len(self.segments)

    def __array__(self, dtype=None, copy=None):
        return np.asarray(self.segments, dtype=dtype)

    def __getitem__(self, index):
        return self.segments[index]

    def __iter__(self):
        return iter(self.segments)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.segments.shape

    @property
    def lengths(self) -> np.ndarray:
        return np.linalg.norm(self.segments[:, 1] - self.segments[:, 0], axis=1)

    @property
    def total_length(self) -> float:
        return float(self.lengths.sum())

    def to_dict(self, arrays: bool = False) -> dict:
        out = {"kind": self.kind, "output": self.output, "value": self.value, "n_segments": len(self),
               "total_length": self.total_length}
        if arrays:
            out.update(segments=self.segments.tolist(), region=self.region.tolist(),
                       classes=self.classes.tolist())
        return out


def decision_boundary(partition) -> Segments:
    """Exact segments where the predicted class changes.

    With several outputs: where the arg-max changes (``classes`` names the two sides). With one
    output: where it is 0 (logit 0, i.e. p = 0.5 for a sigmoid output).

    Examples
    --------
    >>> import netatlas
    >>> part = netatlas.regions.partition(netatlas.nets.mlp([2, 6, 3], seed=1))
    >>> db = part.decision_boundary()
    >>> db.segments.shape[1:], bool((db.classes[:, 0] < db.classes[:, 1]).all())
    ((2, 2), True)
    """
    if partition.n_outputs == 1:
        seg = level_set(partition, 0.0, output=0)
        return Segments(seg.segments, seg.region, seg.classes, "decision_boundary", 0, 0.0)
    seg, face, cls = K.argmax_segments(partition.xy, partition.offsets, partition.maps, SEGMENT_TOLERANCE)
    return Segments(seg + partition.center, face, cls, "decision_boundary", None, None)


def level_set(partition, value: float, output: int = 0) -> Segments:
    """Exact segments where output ``output`` equals ``value`` (one per region it crosses).

    For a sigmoid output, the confidence contour p is the level set of the logit at log(p/(1-p)).

    Examples
    --------
    >>> import netatlas
    >>> part = netatlas.regions.partition(netatlas.nets.mlp([2, 5, 1], seed=0))
    >>> ls = part.level_set(0.1)
    >>> bool(np.allclose(part.outputs(ls.segments[:, 0], ls.region)[:, 0], 0.1))
    True
    """
    if not isinstance(output, (int, np.integer)) or not 0 <= output < partition.n_outputs:
        raise ValueError(f"level_set: output must be an int in [0, {partition.n_outputs}); got {output!r}")
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"level_set: value must be a number, got {type(value).__name__}") from None
    m = partition.maps[:, :, output]
    A, B, C = np.ascontiguousarray(m[:, 0]), np.ascontiguousarray(m[:, 1]), np.ascontiguousarray(m[:, 2] - value)
    seg, face = K.clip_segments(partition.xy, partition.offsets, A, B, C,
                                SEGMENT_TOLERANCE * partition.diameter)
    return Segments(seg + partition.center, face, np.full((len(face), 2), -1, np.int64), "level_set",
                    int(output), value)
