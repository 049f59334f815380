"""along_line: exact breakpoints against dense sampling and the forward pass, any input dimension."""

import numpy as np
import pytest
import torch

from netatlas import Line, Plane
from netatlas.nets import from_torch, mlp
from netatlas.regions import along_line, partition


@pytest.mark.parametrize("widths,act", [([2, 12, 12, 2], "relu"), ([5, 16, 16, 16, 3], "leaky_relu"),
                                        ([1, 20, 1], "relu")])
def test_breakpoints_patterns_and_outputs(widths, act):
    net = from_torch(mlp(widths, act, seed=1))
    rng = np.random.default_rng(0)
    x0, x1 = rng.normal(size=(2, widths[0])) * 2
    pieces = along_line(net, x0, x1)
    assert np.all(np.diff(pieces.edges) > 0)
    t = np.sort(rng.uniform(0, 1, 2000))
    x = Line(x0, x1).to_input(t)
    z = np.concatenate([v.numpy() for v in net.pre_activations(x)], axis=1)
    idx = pieces.locate(t)
    assert np.array_equal(pieces.patterns[idx], z > 0)
    y = net(x)
    y = y.numpy() if isinstance(y, torch.Tensor) else y
    assert np.abs(pieces.outputs(t) - y).max() <= 1e-9 * np.abs(y).max()
    # every breakpoint is a zero of some unit's pre-activation
    zb = np.concatenate([v.numpy() for v in net.pre_activations(Line(x0, x1).to_input(pieces.breakpoints))], 1)
    assert np.all(np.abs(zb).min(axis=1) < 1e-9 * (1 + np.abs(zb).max()))
    # consecutive pieces differ in their patterns (no spurious breakpoints)
    assert np.all(np.any(pieces.patterns[1:] != pieces.patterns[:-1], axis=1))


def test_line_count_matches_regions_crossed_in_a_partition():
    net = from_torch(mlp([2, 10, 10, 2], seed=4))
    part = partition(net, Plane.square(1.0))
    a, b = np.array([-0.9, -0.7]), np.array([0.8, 0.95])
    pieces = along_line(net, a, b)
    # sample each piece's midpoint: it must lie in a region with the same pattern
    mids = (pieces.edges[:-1] + pieces.edges[1:]) / 2
    regions = part.locate(a + mids[:, None] * (b - a))
    assert np.array_equal(part.patterns[regions], pieces.patterns)
    assert len(np.unique(regions)) == pieces.num_pieces  # convex regions: each met once


def test_line_object_and_errors():
    net = mlp([3, 4, 1], seed=0)
    pieces = along_line(net, Line(np.zeros(3), np.ones(3)))
    assert pieces.to_dict()["num_pieces"] == pieces.num_pieces
    with pytest.raises(ValueError, match="expects 3"):
        along_line(net, np.zeros(2), np.ones(2))
