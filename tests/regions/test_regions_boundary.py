"""Decision boundaries and level sets: endpoints on the right lines, right classes, complete."""

import numpy as np

from netatlas import Plane
from netatlas.nets import from_torch, mlp
from netatlas.regions import partition


def test_multiclass_boundary_segments_are_ties_of_the_max():
    net = from_torch(mlp([2, 16, 16, 4], seed=2))
    part = partition(net, Plane.square(2.0))
    db = part.decision_boundary()
    assert len(db) > 0
    for ends, (c, j), r in zip(db.segments, db.classes, db.region, strict=True):
        mid = ends.mean(0)
        y = part.outputs(np.vstack([ends, mid[None]]), np.full(3, r))
        scale = np.abs(y).max() + 1e-12
        assert np.all(np.abs(y[:, c] - y[:, j]) <= 1e-9 * scale)
        assert np.all(y[:, c] >= y.max(1) - 1e-9 * scale)
        # the forward pass agrees at the midpoint
        fy = net(part.plane.to_input(mid[None]))
        fy = fy.numpy() if hasattr(fy, "numpy") else fy
        assert abs(fy[0, c] - fy[0, j]) <= 1e-9 * scale


def test_boundary_is_complete_on_a_grid():
    # wherever the predicted class differs between neighbouring grid points, a boundary segment
    # crosses the grid edge between them
    net = from_torch(mlp([2, 12, 12, 3], seed=5))
    part = partition(net, Plane.square(1.0))
    db = part.decision_boundary()
    us, vs = Plane.square(1.0).grid(40)
    pts = np.stack([us.ravel(), vs.ravel()], 1)
    y = net(pts)
    cls = (y.numpy() if hasattr(y, "numpy") else y).argmax(1).reshape(us.shape)
    changes = np.argwhere(cls[:, 1:] != cls[:, :-1])
    seg = db.segments
    for i, j in changes[:50]:
        p, q = np.array([us[i, j], vs[i, j]]), np.array([us[i, j + 1], vs[i, j + 1]])
        # does any segment cross pq?
        d1 = np.cross(seg[:, 1] - seg[:, 0], p - seg[:, 0])
        d2 = np.cross(seg[:, 1] - seg[:, 0], q - seg[:, 0])
        d3 = np.cross(q - p, seg[:, 0] - p)
        d4 = np.cross(q - p, seg[:, 1] - p)
        assert np.any((d1 * d2 <= 0) & (d3 * d4 <= 0))


def test_single_output_and_level_sets():
    net = from_torch(mlp([2, 10, 10, 1], seed=3))
    part = partition(net, Plane.square(1.0))
    db = part.decision_boundary()
    vals = part.outputs(part.centroids(), np.arange(part.num_regions))[:, 0]
    levels = np.percentile(vals, [25, 50])
    cases = [(0.0, db)] + [(v, part.level_set(v)) for v in levels]
    assert all(len(seg) > 0 for _, seg in cases[1:])
    for value, seg in cases:
        if not len(seg):
            continue
        y = part.outputs(seg.segments.reshape(-1, 2), np.repeat(seg.region, 2))[:, 0]
        assert np.abs(y - value).max() < 1e-9 * (1 + np.abs(part.output_offset).max())
    assert db.to_dict()["n_segments"] == len(db)
