"""The in-plane metric: plane_volume_element, metric_map's default on a plane (per exact region for
piecewise-linear nets), structurally rank-deficient full-dimensional volumes, summary counts."""

import math
import warnings

import numpy as np
import pytest
import torch
from torch import nn

import netatlas
from netatlas.metric import MetricMap, effective_volume, metric_map, plane_metric, plane_volume_element

EPS = np.finfo(np.float64).eps


def _reference_log_area(fn, plane, uv):
    """log sqrt det(U^T J^T J U) from the full float64 autograd Jacobian and a 2 x 2 eigen-decomposition."""
    x = torch.from_numpy(plane.to_input(np.asarray(uv, dtype=np.float64))).reshape(len(uv), -1)
    U = torch.from_numpy(plane.basis)
    out = []
    for p in x:
        J = torch.autograd.functional.jacobian(lambda q: fn(q[None])[0], p)
        out.append(0.5 * torch.log(torch.linalg.eigvalsh((J @ U).T @ (J @ U))).sum())
    return torch.stack(out).numpy()


def _tanh64(seed=0, d=5):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(d, 7), nn.Tanh(), nn.Linear(7, 4), nn.Tanh()).double()
    return lambda x: model(x)


def test_plane_volume_element_matches_an_autograd_float64_reference():
    fn = _tanh64()
    rng = np.random.default_rng(0)
    plane = netatlas.Plane(rng.normal(size=5), rng.normal(size=5), rng.normal(size=5))
    uv = rng.uniform(-1, 1, size=(6, 2))
    got = np.asarray(plane_volume_element(fn, plane, uv))
    # both are float64 sums of a few products: agreement to ~1e3 eps relative (condition of the 2x2 problem)
    np.testing.assert_allclose(got, _reference_log_area(fn, plane, uv), rtol=0, atol=1e3 * EPS)
    g = np.asarray(plane_metric(fn, plane, uv))
    np.testing.assert_allclose(np.exp(got), np.sqrt(np.linalg.det(g)), rtol=1e-10)


def test_plane_volume_element_matches_central_differences():
    fn = _tanh64(seed=1)
    rng = np.random.default_rng(1)
    plane = netatlas.Plane(rng.normal(size=5), rng.normal(size=5), rng.normal(size=5))
    uv = rng.uniform(-1, 1, size=(4, 2))
    h = 1e-5  # central differences: truncation ~h^2 |f'''|, round-off ~eps/h; both below 1e-9 here
    x = lambda p: torch.from_numpy(plane.to_input(p)).reshape(len(p), -1)  # noqa: E731
    a = (fn(x(uv + [h, 0])) - fn(x(uv - [h, 0]))) / (2 * h)
    b = (fn(x(uv + [0, h])) - fn(x(uv - [0, h]))) / (2 * h)
    area = torch.sqrt((a * a).sum(1) * (b * b).sum(1) - (a * b).sum(1) ** 2).detach().numpy()
    np.testing.assert_allclose(np.asarray(plane_volume_element(fn, plane, uv, log=False)), area, rtol=1e-7)


def test_plane_volume_element_keeps_nearly_parallel_directions_accurate():
    # J d1 = (1, 1), J d2 = (1, 1 + t): sqrt det = t exactly, while g11 g22 - g12^2 = 1 + t^2... cancels to 0
    t = 1e-9
    plane = netatlas.Plane([0.0, 0.0], [1.0, 0.0], [0.0, 1.0])
    features = lambda x: torch.stack([x[:, 0] + x[:, 1], x[:, 0] + (1 + t) * x[:, 1]], 1)  # noqa: E731
    got = float(np.asarray(plane_volume_element(features, plane, [[0.3, -0.2]], log=False))[0])
    assert math.isclose(got, t, rel_tol=1e-6)
    assert np.asarray(plane_volume_element(lambda x: x[:, :1] * 2, plane, [[0.0, 0.0]]))[0] == -math.inf


@pytest.fixture(scope="module")
def relu_net():
    return netatlas.nets.from_torch(netatlas.nets.mlp([2, 8, 8, 3], "relu", seed=0))


def test_in_plane_metric_is_constant_per_region_and_matches_the_grid(relu_net):
    plane = netatlas.Plane.square(1.5)
    by_region = metric_map(relu_net, layer="3", plane=plane, grid=24, regions=True)
    by_point = metric_map(relu_net, layer="3", plane=plane, grid=24, regions=False)
    assert by_region.plane_quantity == "plane" and by_region.partition is not None
    assert by_point.partition is None and by_point.region_values is None
    part = by_region.partition
    # read off the regions or evaluated at each grid point: the same affine map, round-off apart
    np.testing.assert_allclose(by_region.plane_values, by_point.plane_values, rtol=0, atol=1e-10)
    # the region values against the partition's own exact affine maps (another computation): features are
    # the layer / sqrt(8), so the area scales by 1/8 (log: -log 8)
    reference = part.volume_element("3", log=True) - math.log(8)
    np.testing.assert_allclose(by_region.region_values, reference, rtol=0, atol=1e-9)
    # constant per region: random points of each region give the region's value
    rng = np.random.default_rng(0)
    uv = rng.uniform(-1.5, 1.5, size=(300, 2))
    where = part.locate(uv)
    direct = np.asarray(plane_volume_element((relu_net, "3"), plane, uv))
    np.testing.assert_allclose(direct, by_region.region_values[where], rtol=0, atol=1e-10)
    assert by_region.summary()["plane"]["n_regions"] == part.num_regions
    assert "exact linear regions" in by_region.notes[0]


def test_regions_fall_back_to_grid_points_with_a_note(relu_net):
    tanh = netatlas.nets.from_torch(netatlas.nets.mlp([2, 8, 3], "tanh", seed=0))
    smooth = metric_map(tanh, layer="1", plane=netatlas.Plane.square(1.0), grid=5)
    assert smooth.partition is None and "no exact regions" in smooth.notes[0]
    capped = metric_map(relu_net, layer="3", plane=netatlas.Plane.square(1.0), grid=5, max_regions=1)
    assert capped.partition is None and "max_regions" in capped.notes[0]
    with pytest.raises(netatlas.regions.RegionLimitError):
        metric_map(relu_net, layer="3", plane=netatlas.Plane.square(1.0), grid=5, max_regions=1, regions=True)
    with pytest.raises(ValueError, match="regions must be None"):
        metric_map(relu_net, plane=netatlas.Plane.square(1.0), regions="yes")


def _bottleneck():
    """3 inputs -> 1 unit -> 4 outputs: rank J <= 1 < min(m, d) = 3 at every point."""
    return netatlas.nets.from_torch(nn.Sequential(nn.Linear(3, 1), nn.ReLU(), nn.Linear(1, 4), nn.ReLU()))


def test_structurally_rank_deficient_volume_says_so_once():
    net = _bottleneck()
    x = torch.randn(50, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    with warnings.catch_warnings(record=True) as records:
        warnings.simplefilter("always")
        values = np.asarray(effective_volume(net, x, chunk_size=7))
    assert np.isneginf(values).all()
    messages = [str(r.message) for r in records if "rank J <= 1 < min(m, d) = 3 at every point" in str(r.message)]
    assert len(messages) == 1


def test_metric_map_on_a_plane_warns_once_with_the_count():
    net = _bottleneck()
    plane = netatlas.Plane.square(1.0, dim=3)
    with pytest.warns(UserWarning, match="at every point"):
        full = metric_map(net, plane=plane, grid=6, quantity="effective", chunk=5)
    assert len(full.warnings) == 1 and np.isneginf(full.plane_values).all()
    summary = full.summary()
    assert summary["plane"]["n_finite"] == 0 and summary["plane"]["median"] is None
    assert any("36 of 36 values are not finite" in flag for flag in summary["flags"])


def test_summary_counts_and_refuses_a_correlation_from_few_values():
    values = np.full(40, -np.inf)
    values[:5] = [1.0, 2.0, 3.0, 4.0, 5.0]
    entropy = np.linspace(0, 1, 40)
    result = MetricMap("effective", "test", point_values=values, point_entropy=entropy,
                       point_labels=np.repeat([0, 1], 20))
    s = result.summary()
    assert s["points"]["n_finite"] == 5 and s["points"]["n_minus_inf"] == 35
    assert s["points"]["spearman_with_entropy"] is None and s["points"]["spearman_with_entropy_n_finite"] == 5
    assert s["points"]["mean_by_label"] == {"0": 3.0, "1": None}
    assert s["points"]["mean_by_label_n_finite"] == {"0": 5, "1": 0}
    assert any("5 finite pairs (need >= 10)" in flag for flag in s["flags"])
    values[:20] = np.arange(20.0)
    s = MetricMap("effective", "test", point_values=values, point_entropy=entropy).summary()
    assert s["points"]["spearman_with_entropy"] == pytest.approx(1.0) and s["points"]["n_finite"] == 20


def _small_lenet():
    """A LeNet-style CNN (conv-relu-pool twice, two dense layers) small enough to train in a test."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 4, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(4, 8, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(8 * 5 * 5, 32), nn.ReLU(), nn.Linear(32, 10))


def test_in_plane_metric_of_a_trained_lenet_layer_through_three_digits_is_finite():
    data = netatlas.data.load("mnist_sample")
    model = _small_lenet()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(0)
    for _ in range(2):  # two quick epochs: a trained net with some units dead on every input
        for batch in torch.randperm(len(data.x), generator=generator).split(128):
            opt.zero_grad()
            nn.functional.cross_entropy(model(data.x[batch]), data.y[batch]).backward()
            opt.step()
    net = netatlas.nets.from_torch(model.eval(), input_shape=(1, 28, 28))
    hidden = net.nodes[-2].name  # the ReLU of the 32-unit dense layer
    assert net.nodes[-2].op.name == "relu"
    images = [data.x_test[i].numpy().astype(np.float64) for i in (0, 1, 2)]
    plane = netatlas.Plane.through(*images)
    result = metric_map(net, layer=hidden, plane=plane, grid=16, regions=False)
    finite = np.isfinite(result.plane_values)
    assert finite.mean() >= 0.99, f"{(~finite).sum()} of {finite.size} in-plane values not finite"
    # against the per-point float64 autograd reference at a few grid points
    uv = np.stack([result.us.ravel(), result.vs.ravel()], 1)[::37]
    features = netatlas.metric.as_feature_map((net, hidden), net.input_shape)
    reference = _reference_log_area(features.fn, plane, uv)
    np.testing.assert_allclose(result.plane_values.ravel()[::37], reference, rtol=0, atol=1e-9)


def test_max_pooling_net_with_a_dead_layer_is_not_computed_but_said_once():
    # max pooling takes the autodiff route; the structure (a ReLU layer with every unit off) still decides
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8, 6), nn.ReLU())
    with torch.no_grad():
        model[4].bias.fill_(-1e3)  # the 6 output units are dead on these inputs: rank J = 0 < 6
    net = netatlas.nets.from_torch(model, input_shape=(1, 6, 6))
    x = torch.rand(9, 1, 6, 6, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    with warnings.catch_warnings(record=True) as records:
        warnings.simplefilter("always")
        values = np.asarray(effective_volume(net, x))
    assert np.isneginf(values).all()
    assert [str(r.message).count("at every point") for r in records] == [1]
    # with live units the values are the Gram route's, unchanged: J from autograd, log10 of its singular values
    with torch.no_grad():
        model[4].bias.fill_(5.0)
    net = netatlas.nets.from_torch(model, input_shape=(1, 6, 6))
    got = np.asarray(effective_volume(net, x))
    model64 = model.double()
    for i in range(3):
        J = torch.autograd.functional.jacobian(lambda q: model64(q[None])[0], x[i]).reshape(6, 36) / math.sqrt(6)
        assert math.isclose(got[i], float(torch.log10(torch.linalg.svdvals(J)).sum()), rel_tol=0, abs_tol=1e-9)
