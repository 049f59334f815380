"""Exactness contract of netatlas.regions.partition: areas, patterns, affine maps, counts against an
independent reference, degenerate inputs, Zaslavsky's count, conv/batch-norm/residual graphs."""

from math import comb

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from regions_reference import area, reference_regions
from torch import nn

import netatlas
from netatlas import Plane, UnsupportedLayerError
from netatlas.nets import from_torch, mlp
from netatlas.regions import partition


def _forward_check(net, plane, part, n_points=400, seed=0):
    """Located pattern == forward signs, affine map == forward output (1e-9 relative)."""
    rng = np.random.default_rng(seed)
    umin, umax, vmin, vmax = plane.bounds
    uv = np.stack([rng.uniform(umin, umax, n_points), rng.uniform(vmin, vmax, n_points)], 1)
    region = part.locate(uv)
    assert (region >= 0).all()
    x = plane.to_input(uv)
    z = np.concatenate([t.numpy() for t in net.pre_activations(x)] + [np.zeros((n_points, 0))], axis=1)
    assert np.array_equal(part.patterns[region], z > 0)
    y = net(x).numpy() if isinstance(net(x), torch.Tensor) else net(x)
    mapped = np.einsum("pkd,pd->pk", part.output_linear[region], uv) + part.output_offset[region]
    scale = np.abs(y).max() + 1e-300
    assert np.abs(mapped - y).max() <= 1e-9 * scale


def _check_areas(part, plane):
    assert (part.areas > 0).all()
    assert abs(part.areas.sum() - plane.area) <= 1e-9 * plane.area


NETS = [
    ("relu-2-16-16-3", lambda: mlp([2, 16, 16, 3], seed=0)),
    ("leaky-2-12-12-12-2", lambda: mlp([2, 12, 12, 12, 2], "leaky_relu", seed=1)),
    ("relu-deep-narrow", lambda: mlp([2, 5, 5, 5, 5, 5, 1], seed=2)),
    ("relu-no-bias", lambda: mlp([2, 10, 10, 4], bias=False, seed=3)),
    ("relu-he", lambda: mlp([2, 20, 20, 2], init="he", seed=4)),
]


@pytest.mark.parametrize("name,build", NETS, ids=[n for n, _ in NETS])
@pytest.mark.parametrize("method", ["chain", "graph"])
def test_exactness_contract(name, build, method):
    net = from_torch(build())
    plane = Plane.square(1.5)
    part = partition(net, plane, method=method)
    _check_areas(part, plane)
    _forward_check(net, plane, part)


def test_chain_and_graph_agree():
    net = from_torch(mlp([2, 24, 24, 24, 5], seed=7))
    a, b = partition(net, method="chain"), partition(net, method="graph")
    assert a.num_regions == b.num_regions
    pa = {r.tobytes(): i for i, r in enumerate(a.patterns)}
    pb = {r.tobytes(): i for i, r in enumerate(b.patterns)}
    assert pa.keys() == pb.keys()
    ia = np.array([pa[k] for k in pa])
    ib = np.array([pb[k] for k in pa])
    np.testing.assert_allclose(a.areas[ia], b.areas[ib], rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(a.output_linear[ia], b.output_linear[ib], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("seed,widths,act", [(0, [2, 6, 6, 2], "relu"), (1, [2, 5, 4, 3, 1], "relu"),
                                             (2, [2, 7, 5, 2], "leaky_relu"), (3, [3, 6, 6, 2], "relu")])
def test_counts_match_independent_reference(seed, widths, act):
    net = from_torch(mlp(widths, act, seed=seed))
    rng = np.random.default_rng(seed)
    if widths[0] == 2:
        plane = Plane.square(1.2)
    else:
        plane = Plane.through(*rng.normal(size=(3, widths[0])))
    ref = reference_regions(net, plane)
    assert abs(sum(area(p) for p in ref.values()) - plane.area) < 1e-9 * plane.area  # reference complete
    part = partition(net, plane)
    assert part.num_regions == len(ref)
    mine = {r.tobytes(): a for r, a in zip(part.patterns, part.areas, strict=True)}
    assert mine.keys() == ref.keys()
    for key, poly in ref.items():
        assert abs(mine[key] - area(poly)) <= 1e-9 * plane.area


def test_zaslavsky_count_for_first_layer_in_general_position():
    n = 30
    layer = nn.Linear(2, n)
    with torch.no_grad():
        g = torch.Generator().manual_seed(0)
        layer.weight.copy_(torch.randn(n, 2, generator=g))
        layer.bias.copy_(torch.randn(n, generator=g))
    net = from_torch(nn.Sequential(layer, nn.ReLU(), nn.Linear(n, 1)))
    W, b = layer.weight.detach().double().numpy(), layer.bias.detach().double().numpy()
    # every pairwise intersection point must lie inside the square
    pts = [np.linalg.solve(W[[i, j]], -b[[i, j]]) for i in range(n) for j in range(i + 1, n)]
    size = 1.5 * np.abs(pts).max()
    part = partition(net, Plane.square(size))
    assert part.num_regions == netatlas.regions.bounds.zaslavsky(n, 2) == 1 + n + comb(n, 2)


def _linear(W, b):
    layer = nn.Linear(W.shape[1], W.shape[0])
    with torch.no_grad():
        layer.weight.copy_(torch.as_tensor(W, dtype=torch.float32))
        layer.bias.copy_(torch.as_tensor(b, dtype=torch.float32))
    return layer


def test_degenerate_units():
    # duplicate units, a zero row, a dead unit, a scaled copy (coincident boundary), lines through
    # the origin (all through one point) and through a corner of the square
    W1 = np.array([[1, 0], [1, 0], [0, 0], [0.3, 0.2], [2, 0], [0, 1], [1, 1], [1, -1], [1, 2], [1, 1]], float)
    b1 = np.array([0, 0, 0.5, -10, 0, 0, 0, 0, 0, -2], float)  # the last line passes through (1, 1)
    W2 = np.random.default_rng(0).normal(size=(6, 10))
    W2[3] = 0  # zero row in layer 2
    b2 = np.array([0.1, -0.2, 0.3, 0.0, 0.2, -0.1])
    model = nn.Sequential(_linear(W1, b1), nn.ReLU(), _linear(W2, b2), nn.ReLU(), _linear(np.ones((1, 6)), [0]))
    net = from_torch(model)
    plane = Plane.square(1.0)
    part = partition(net, plane)
    _check_areas(part, plane)
    _forward_check(net, plane, part, seed=1)
    ref = reference_regions(net, plane)
    assert part.num_regions == len(ref)
    # layer 1 alone: 5 distinct lines through the origin (8 x 2 = 10 sectors... counted exactly)
    first = partition(from_torch(nn.Sequential(_linear(W1, b1), nn.ReLU(), _linear(np.ones((1, 10)), [0]))),
                      plane)
    assert first.num_regions == 10  # 5 distinct lines through 0 give 10 sectors; x + y = 2 only touches


def test_single_region_and_identity():
    net = from_torch(nn.Sequential(nn.Linear(2, 3), nn.Identity(), nn.Linear(3, 2)))
    part = partition(net)
    assert part.num_regions == 1 and part.patterns.shape == (1, 0)
    _forward_check(net, Plane.square(1.0), part)


def test_accepts_torch_modules_and_rejects_smooth():
    part = partition(mlp([2, 8, 2], seed=0))
    assert part.num_regions >= 1
    with pytest.raises(UnsupportedLayerError, match=r"'sigmoid' at node 2 \('1'"):
        partition(mlp([2, 8, 2], "sigmoid", seed=0))
    with pytest.raises(ValueError, match="plane has 3-dim inputs but the network expects 2"):
        partition(mlp([2, 8, 2]), Plane.square(1.0, dim=3))
    with pytest.raises(ValueError, match="method must be"):
        partition(mlp([2, 8, 2]), method="fast")
    with pytest.raises(TypeError, match="plane must be a netatlas.Plane"):
        partition(mlp([2, 8, 2]), (-1, 1, -1, 1))


class _ResBlock(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 3, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(3)
        self.conv2 = nn.Conv2d(3, 3, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(3)
        self.pool = nn.AvgPool2d(2)
        self.head = nn.Linear(3 * 3 * 3, 4)

    def forward(self, x):
        h = torch.relu(self.bn1(self.conv1(x)))
        h = torch.nn.functional.leaky_relu(h + self.bn2(self.conv2(h)), 0.1)
        return self.head(self.pool(h).flatten(1))


def test_conv_batchnorm_residual_plane_through_images():
    torch.manual_seed(0)
    model = _ResBlock()
    with torch.no_grad():
        for bn in (model.bn1, model.bn2):
            bn.running_mean.uniform_(-0.2, 0.2)
            bn.running_var.uniform_(0.5, 2.0)
            bn.weight.uniform_(0.5, 1.5)
    model.eval()
    net = from_torch(model, input_shape=(1, 6, 6))
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 1, size=(1, 1, 6, 6)) + 0.05 * rng.normal(size=(3, 1, 6, 6))
    plane = Plane.through(*images)
    part = partition(model, plane)  # a torch module, imported with the plane's input shape
    _check_areas(part, plane)
    _forward_check(net, plane, part)
    ref = reference_regions(net, plane)
    assert part.num_regions == len(ref)


def test_locate_outside_and_outputs():
    part = partition(mlp([2, 8, 3], seed=0))
    assert part.locate([[5.0, 0.0], [0.0, 0.0]])[0] == -1
    with pytest.raises(ValueError, match=r"shape \(P, 2\)"):
        part.locate(np.zeros((3, 3)))
    with pytest.raises(IndexError):
        part.polygon(part.num_regions)


def test_vertices_faces_neighbors():
    net = from_torch(mlp([2, 10, 10, 2], seed=5))
    part = partition(net)
    V, faces = part.vertices, part.faces
    assert len(faces) == part.num_regions
    for i in (0, part.num_regions // 2, part.num_regions - 1):
        np.testing.assert_allclose(V[faces[i]], part.polygon(i), atol=1e-12)
    nb = part.neighbors()
    P = part.patterns
    assert len(nb) > 0
    for (i, j), unit in zip(nb.pairs, nb.unit, strict=True):
        diff = np.flatnonzero(P[i] != P[j])
        assert list(diff) == [unit]
    # planar graph: every interior edge is shared, so Euler's formula V - E + F = 1 holds
    n_edges = sum(len(f) for f in faces)
    boundary_edges = n_edges - 2 * len(nb)
    E = len(nb) + boundary_edges
    assert len(V) - E + part.num_regions == 1


def test_to_dict_is_json_safe():
    import json

    part = partition(mlp([2, 6, 2], seed=0))
    d = part.to_dict(arrays=True)
    json.dumps(d)
    assert d["num_regions"] == part.num_regions and abs(d["area"] - 4.0) < 1e-12


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 10_000), depth=st.integers(1, 3), width=st.integers(1, 12),
       act=st.sampled_from(["relu", "leaky_relu"]), size=st.floats(0.1, 4.0))
def test_property_areas_and_forward(seed, depth, width, act, size):
    net = from_torch(mlp([2] + [width] * depth + [2], act, seed=seed))
    plane = Plane.square(size)
    part = partition(net, plane)
    _check_areas(part, plane)
    _forward_check(net, plane, part, n_points=100, seed=seed)


def test_decision_boundary_is_an_s_by_2_by_2_array():
    import netatlas

    part = netatlas.regions.partition(netatlas.nets.mlp([2, 8, 8, 3], seed=2), netatlas.Plane.square(20.0))
    boundary = part.decision_boundary()
    segments = np.asarray(boundary)
    assert segments.shape == boundary.shape == (len(boundary), 2, 2) and len(boundary) > 0
    assert np.array_equal(boundary[0], segments[0]) and np.array_equal(next(iter(boundary)), segments[0])
    assert boundary.region.shape == (len(boundary),)
