"""Partition.class_pieces: the regions split along the decision boundary, against a slow float64
reference (Sutherland-Hodgman in Python, one half-plane ``f_k >= f_j`` at a time)."""

from __future__ import annotations

import numpy as np
import pytest

import netatlas


def _area(poly: np.ndarray) -> float:
    q = np.roll(poly, -1, axis=0)
    return 0.5 * abs(float((poly[:, 0] * q[:, 1] - q[:, 0] * poly[:, 1]).sum()))


def _clip(poly, a, c):
    """The part of a convex polygon where a . p + c >= 0."""
    d = poly @ a + c
    out = []
    for i in range(len(poly)):
        j = (i + 1) % len(poly)
        if d[i] >= 0:
            out.append(poly[i])
        if (d[i] >= 0) != (d[j] >= 0):
            out.append(poly[i] + d[i] / (d[i] - d[j]) * (poly[j] - poly[i]))
    return np.array(out).reshape(-1, 2)


def _reference_class_areas(part) -> np.ndarray:
    """(F, K) area of each region where each class wins."""
    maps = np.asarray(part.maps, dtype=np.float64)
    if maps.shape[2] == 1:
        maps = np.concatenate([np.zeros_like(maps), maps], axis=2)
    out = np.zeros((part.num_regions, maps.shape[2]))
    for f in range(part.num_regions):
        poly = part.xy[part.offsets[f]:part.offsets[f + 1]]
        for k in range(maps.shape[2]):
            piece = poly
            for j in range(maps.shape[2]):
                if j != k and len(piece) >= 3:
                    m = maps[f]
                    piece = _clip(piece, m[:2, k] - m[:2, j], m[2, k] - m[2, j])
            out[f, k] = _area(piece) if len(piece) >= 3 else 0.0
    return out


@pytest.mark.parametrize(("n_outputs", "seed"), [(1, 5), (2, 1), (3, 2), (5, 3)])
def test_class_pieces_match_the_reference(n_outputs, seed):
    net = netatlas.nets.from_torch(netatlas.nets.mlp([2, 12, 12, n_outputs], seed=seed))
    part = netatlas.regions.partition(net, netatlas.Plane.square(6.0))
    pieces = part.class_pieces()
    n_classes = max(n_outputs, 2)
    areas = np.array([_area(pieces.xy[a:b]) for a, b in zip(pieces.offsets[:-1], pieces.offsets[1:], strict=True)])
    got = np.zeros((part.num_regions, n_classes))
    np.add.at(got, (pieces.region, pieces.classes), areas)
    expected = _reference_class_areas(part)
    # both clip the same exact polygons by the same lines; they differ by the clip's boundary snap,
    # SEGMENT_TOLERANCE of the region's diameter, over an edge of at most that diameter
    diameter = 2 * np.sqrt(2) * 6.0
    assert np.abs(got - expected).max() <= 4 * netatlas.regions.SEGMENT_TOLERANCE * diameter ** 2
    assert areas.sum() == pytest.approx(part.plane.area, rel=1e-12)  # the pieces tile the slice
    crossed = len(part.decision_boundary().segments) > 0
    assert crossed and pieces.n_pieces > part.num_regions  # the boundary crosses some regions
    # inside each piece its class wins: at the piece's centroid, in float64
    centres = np.add.reduceat(pieces.xy, pieces.offsets[:-1], axis=0) / np.diff(pieces.offsets)[:, None]
    outputs = np.asarray(net(part.plane.to_input(centres)), dtype=np.float64)
    predicted = (outputs[:, 0] > 0).astype(int) if n_outputs == 1 else outputs.argmax(1)
    margin = np.abs(outputs).max() * 1e-9  # a centroid on the boundary only within round-off
    if n_outputs == 1:
        ok = (predicted == pieces.classes) | (np.abs(outputs[:, 0]) <= margin)
    else:
        ok = (predicted == pieces.classes) | (outputs.max(1) - outputs[np.arange(len(outputs)), pieces.classes]
                                              <= margin)
    assert ok.all()


def test_regions_the_boundary_misses_stay_whole():
    net = netatlas.nets.from_torch(netatlas.nets.mlp([2, 8, 3], seed=4))
    part = netatlas.regions.partition(net, netatlas.Plane.square(1.0))
    pieces = part.class_pieces()
    counts = np.bincount(pieces.region, minlength=part.num_regions)
    assert counts.min() >= 1
    whole = np.flatnonzero(counts == 1)
    for f in whole:  # the very same polygon, vertex for vertex
        p = int(np.flatnonzero(pieces.region == f)[0])
        polygon = pieces.xy[pieces.offsets[p]:pieces.offsets[p + 1]]
        assert np.array_equal(polygon, part.polygon(f))
    assert np.array_equal(pieces.classes[np.isin(pieces.region, whole)],
                          part.predicted_class()[pieces.region[np.isin(pieces.region, whole)]])
