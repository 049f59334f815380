"""The graph path's one-pass helpers against the NumPy expressions they replace (bit for bit), and local
complexity's disc pruning (faces far from the centre dropped as they are split off) against the count
over the whole square's partition."""

import numpy as np
import pytest
import torch
from torch import nn

from netatlas import Plane
from netatlas.nets import from_torch
from netatlas.regions import _kernels as K
from netatlas.regions import exact_counts
from netatlas.regions._complexity import DISC_TOLERANCE, random_directions
from netatlas.regions._graph import graph_partition
from netatlas.regions._partition import BOUNDARY_TOLERANCE
from netatlas.regions._prepared import prepared


def test_largest_entries_is_numpys_max_of_abs():
    rng = np.random.default_rng(0)
    M = rng.normal(size=(7, 3, 11)) * 10.0 ** rng.integers(-300, 300, size=(7, 3, 11))
    M[:, :, 4] = 0.0  # a unit that is zero everywhere
    big, finite = K.largest_entries(M)
    assert finite and np.array_equal(big, np.abs(M).max(axis=(0, 1)))
    for bad in (np.nan, np.inf, -np.inf):
        N = M.copy()
        N[3, 2, 5] = bad
        assert not K.largest_entries(N)[1]
    assert K.largest_entries(np.zeros((0, 3, 4)))[0].tolist() == [0.0] * 4


@pytest.mark.parametrize("constant", [0.0, -0.3, 0.4])
def test_faces_with_small_units_is_the_numpy_test(constant):
    rng = np.random.default_rng(1)
    M = rng.normal(size=(40, 3, 25))
    bound = np.abs(rng.normal(size=(3, 25))) * 0.05
    # plant units within the bound on some faces, at the bound exactly on others (<= keeps them)
    M[5, :, 3] = [0.0, 0.0, constant]
    M[9, :, 7] = [bound[0, 7], -bound[1, 7], constant]
    M[12, :2, 2] = 0.0  # small slopes but a large constant: not small
    shift = np.array([0.0, 0.0, constant])[None, :, None]
    want = (np.abs(M - shift) <= bound[None]).all(axis=1).any(axis=1)
    got = K.faces_with_small_units(M, constant, np.ascontiguousarray(bound))
    assert np.array_equal(got, want) and want[5] and want[9]


def _cnn(seed):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(12, 6), nn.ReLU(),
                          nn.Linear(6, 2))
    return from_torch(model, input_shape=(1, 6, 6))


def _square_counts(net, p, D, r):
    """Regions of the whole square's partition meeting the disc, and units crossing it per layer."""
    shape = net.input_shape
    plane = Plane(p.reshape(shape), D[0].reshape(shape), D[1].reshape(shape), (-r, r, -r, r))
    part = graph_partition(net, plane, BOUNDARY_TOLERANCE)
    meets = K.polygon_origin_distance(part.xy + part.center, part.offsets) < r * (1 - DISC_TOLERANCE)
    patterns = part.patterns[meets]
    cross, start = [], 0
    for n in part.units_per_layer:
        block = patterns[:, start:start + n]
        cross.append(int((block.any(0) & ~block.all(0)).sum()))
        start += n
    return int(meets.sum()), cross, part.num_regions


@pytest.mark.parametrize("seed", [0, 1])
def test_disc_pruning_counts_what_the_whole_square_counts(seed):
    net = _cnn(seed)
    rng = np.random.default_rng(seed)
    pts = rng.uniform(0, 1, size=(4, 1, 6, 6))
    pts[0] = 0.0  # a flat image: ties in every max window at the centre
    D = random_directions(4, 1, 36, seed=seed + 10)
    r = 0.7
    regions, crossing = exact_counts(net, pts, r, directions=D, max_regions=None)
    pruned_fewer = False
    for i in range(4):
        count, cross, square_regions = _square_counts(net, pts[i].ravel(), D[i, 0], r)
        assert regions[i, 0] == count and crossing[i, 0].tolist() == cross
        shape = net.input_shape
        plane = Plane(pts[i], D[i, 0, 0].reshape(shape), D[i, 0, 1].reshape(shape), (-r, r, -r, r))
        pruned_fewer |= graph_partition(net, plane, BOUNDARY_TOLERANCE, within=r).num_regions < square_regions
    assert regions.min() > 1 and pruned_fewer  # the discs are not trivial, and corners were dropped


def test_segments_are_built_once_per_net():
    net = _cnn(0)
    plane = Plane(np.zeros((1, 6, 6)), np.eye(36)[0].reshape(1, 6, 6), np.eye(36)[7].reshape(1, 6, 6),
                  (-1, 1, -1, 1))
    first = graph_partition(net, plane, BOUNDARY_TOLERANCE)
    segments = prepared(net).cached(("graph segments",), lambda net: pytest.fail("segments built again"))
    again = graph_partition(net, plane, BOUNDARY_TOLERANCE)
    assert len(segments) == len(net.nonlinear)
    assert first.num_regions == again.num_regions and np.array_equal(first.xy, again.xy)
