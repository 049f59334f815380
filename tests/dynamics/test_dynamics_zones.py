"""Transition zones (C1-C3), gradient mass vs scale (C5), distances to hyperplanes and to the boundary."""

import math

import numpy as np
import pytest
import torch
from torch import nn

import netatlas
from netatlas.dynamics import (
    boundary_distance,
    expected_gradient_mass,
    gradient_mass,
    hyperplane_distances,
    predicted_gradient_mass,
    projected_density,
    segment_distance,
    square_projected_density,
    steepest_slope,
    unit_distances,
    zone_interval,
    zone_membership,
    zone_width,
)


def _single_unit(w, b, activation):
    layer = nn.Linear(len(w), 1).double()
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([w], dtype=torch.float64))
        layer.bias.fill_(b)
    return layer.requires_grad_(False), {"sigmoid": torch.sigmoid, "tanh": torch.tanh}[activation]


@pytest.mark.parametrize("activation", ["sigmoid", "tanh"])
@pytest.mark.parametrize("eps", [0.1, 0.01])
@pytest.mark.parametrize("w", [[3.0, 4.0], [0.5, -2.0, 1.0]])
def test_zone_width_matches_brute_force_slab(activation, eps, w):
    """C2: walk along the normal and measure where the unit is between eps and 1 - eps (tanh: |tanh| <= 1-2eps)."""
    layer, phi = _single_unit(w, 0.7, activation)
    normal = torch.tensor(w, dtype=torch.float64) / np.linalg.norm(w)
    t = torch.linspace(-20, 20, 400_001, dtype=torch.float64)
    out = phi(layer(t[:, None] * normal))[:, 0]
    inside = (out >= eps) & (out <= 1 - eps) if activation == "sigmoid" else out.abs() <= 1 - 2 * eps
    measured = float(t[inside].max() - t[inside].min())
    logit = math.log((1 - eps) / eps)
    closed = (2 * logit if activation == "sigmoid" else logit) / np.linalg.norm(w)
    assert measured == pytest.approx(closed, abs=2e-4)
    assert zone_width(np.linalg.norm(w), activation, eps) == pytest.approx(closed, rel=1e-12)


def test_zone_width_values_and_errors():
    assert zone_width(1.0, "sigmoid", 0.1) == pytest.approx(4.394449, abs=1e-6)
    assert zone_interval("relu") == (0.0, 0.0)
    lo, hi = zone_interval("gelu", 0.1)
    z = torch.tensor([lo, hi], dtype=torch.float64)
    d = netatlas.nets.Activation("gelu").derivative(z)
    np.testing.assert_allclose(d.numpy(), [0.1, 0.9], atol=1e-9)
    lo, hi = zone_interval("elu", 0.1)
    assert (lo, hi) == pytest.approx((math.log(0.1), math.log(0.9)))
    with pytest.raises(ValueError, match="eps must be in"):
        zone_interval("sigmoid", 0.5)
    with pytest.raises(ValueError, match="unknown activation 'swish'"):
        zone_width(1.0, "swish")
    with pytest.raises(ValueError, match="w_norm must be positive"):
        zone_width(0.0)


@pytest.mark.parametrize(("activation", "factor"), [("sigmoid", 0.25), ("tanh", 1.0)])
def test_steepest_slope_against_finite_differences(activation, factor):
    """C3: the largest slope of phi(w.x + b) along the normal."""
    layer, phi = _single_unit([1.2, -0.9], -0.3, activation)
    normal = torch.tensor([1.2, -0.9], dtype=torch.float64) / 1.5
    t = torch.linspace(-3, 3, 600_001, dtype=torch.float64)
    out = phi(layer(t[:, None] * normal))[:, 0]
    slope = float((out.diff() / t.diff()).max())
    assert slope == pytest.approx(steepest_slope(1.5, activation), rel=1e-6)
    assert steepest_slope(1.5, activation) == factor * 1.5


def test_c5_table_prediction_matches_papers_md():
    """The large-scale prediction N rho(0)/||w|| of docs/papers/vandenberg2016.md (uniform square, diagonal w,
    b = 0)."""
    rho = square_projected_density(0.0, [1.0, 1.0])
    assert rho == pytest.approx(1 / math.sqrt(2))
    got = [round(predicted_gradient_mass(2000, rho, s), 1) for s in (16, 64, 256, 1024)]
    assert got == [88.4, 22.1, 5.5, 1.4]


def test_c5_measured_gradient_mass_within_sampling_error():
    """Mean over 40 seeds of sum_i sigma'(w.x_i) agrees with the exact expectation within 4 standard errors,
    and the exact expectation tends to the large-scale prediction as ||w|| grows."""
    direction = np.array([1.0, 1.0]) / math.sqrt(2)
    rng = np.random.default_rng(123)
    for w_norm in (16.0, 64.0, 256.0, 1024.0):
        masses = []
        for _ in range(40):
            x = rng.uniform(-1, 1, (2000, 2))
            masses.append(gradient_mass(x @ (w_norm * direction), "sigmoid"))
        expected = expected_gradient_mass(2000, lambda t: square_projected_density(t, direction), w_norm,
                                          n_grid=400_001, span=2.0)
        se = np.std(masses, ddof=1) / math.sqrt(len(masses))
        assert abs(np.mean(masses) - expected) < 4 * se
        predicted = predicted_gradient_mass(2000, 1 / math.sqrt(2), w_norm)
        # finite-scale correction: the projected density has a kink at 0, -rho''-free but |t|-shaped
        assert abs(expected - predicted) / predicted < 7 / w_norm


def test_projected_density_and_square_density():
    x = np.random.default_rng(0).uniform(-1, 1, (20_000, 2))
    assert projected_density(x, [1.0, 1.0]) == pytest.approx(1 / math.sqrt(2), rel=0.05)
    t = np.linspace(-2, 2, 40_001)
    for u in ([1.0, 0.0], [1.0, 2.0], [3.0, -1.0]):
        dens = square_projected_density(t, u)
        assert np.trapezoid(dens, t) == pytest.approx(1.0, abs=1e-4)


def test_hyperplane_distances_closed_form_and_projection():
    model = netatlas.nets.mlp([3, 5, 2], seed=2)
    x = torch.randn(11, 3, generator=torch.Generator().manual_seed(0))
    d = hyperplane_distances(model, x)
    W, b = model[0].weight.detach().double().numpy(), model[0].bias.detach().double().numpy()
    norm = np.linalg.norm(W, axis=1)
    np.testing.assert_allclose(d, (x.double().numpy() @ W.T + b) / norm, rtol=1e-12)
    # stepping back by the signed distance along the unit normal lands on the hyperplane
    foot = x.double().numpy() - d[:, :1] * W[0] / norm[0]
    np.testing.assert_allclose(foot @ W[0] + b[0], 0, atol=1e-12)


def test_unit_distances_first_layer_and_deeper_relu():
    model = netatlas.nets.mlp([2, 6, 5, 1], "relu", seed=3).double()
    x = torch.rand(40, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 2 - 1
    d = unit_distances(model, x, chunk_size=7)
    np.testing.assert_allclose(d.distance[:, :6], hyperplane_distances(model, x), rtol=1e-12)
    # deeper units: gradient norms from autograd, one sample at a time
    for i in range(5):
        xi = x[i].clone().requires_grad_(True)
        z2 = model[2](model[1](model[0](xi)))
        for j in range(5):
            (grad,) = torch.autograd.grad(z2[j], xi, retain_graph=True)
            norm = float(grad.norm())
            expected = float(z2[j].detach()) / norm if norm > 0 else math.inf
            assert d.distance[i, 6 + j] == pytest.approx(expected, rel=1e-10)
    assert d.layer.tolist() == [0] * 6 + [1] * 5
    assert d.nearest().shape == (40,)


def test_zone_membership_smooth_and_relu():
    model = netatlas.nets.mlp([2, 4, 1], "sigmoid", scale=3.0, seed=0).double()
    x = torch.rand(50, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 2 - 1
    s = torch.sigmoid(model[0](x)).detach().numpy()
    np.testing.assert_array_equal(zone_membership(model, x, eps=0.2), (s >= 0.2) & (s <= 0.8))
    relu = netatlas.nets.mlp([2, 4, 1], "relu", seed=0)
    with pytest.raises(ValueError, match="width zero; pass width="):
        zone_membership(relu, x)
    inside = zone_membership(relu, x, width=0.2)
    np.testing.assert_array_equal(inside, np.abs(hyperplane_distances(relu, x)) <= 0.1)


def test_segment_distance_against_dense_sampling():
    rng = np.random.default_rng(0)
    segments = rng.uniform(-1, 1, (6, 2, 2))
    points = rng.uniform(-1.5, 1.5, (30, 2))
    t = np.linspace(0, 1, 20_001)
    dense = (segments[:, None, 0] + t[None, :, None] * (segments[:, None, 1] - segments[:, None, 0])).reshape(-1, 2)
    brute = np.sqrt(((points[:, None] - dense[None]) ** 2).sum(2)).min(1)
    np.testing.assert_allclose(segment_distance(points, segments), brute, atol=1e-4)
    assert np.isinf(segment_distance(points, np.zeros((0, 2, 2)))).all()


def test_boundary_distance_linear_is_exact_for_affine_nets():
    model = nn.Sequential(nn.Linear(3, 1)).double()
    x = torch.randn(10, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    w, b = model[0].weight.detach()[0], model[0].bias.detach()[0]
    expected = ((x @ w + b).abs() / w.norm()).numpy()
    np.testing.assert_allclose(boundary_distance(model, x, method="linear"), expected, rtol=1e-12)
    # three classes, two of them never winning: the boundary is where logits 0 and 1 tie
    three = nn.Sequential(nn.Linear(2, 3)).double()
    with torch.no_grad():
        three[0].weight.copy_(torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 0.0]]))
        three[0].bias.copy_(torch.tensor([0.0, 0.0, -100.0]))
    pts = torch.tensor([[0.5, 3.0], [-2.0, 1.0]], dtype=torch.float64)
    np.testing.assert_allclose(boundary_distance(three, pts, method="linear"), [0.5, 2.0])
    with pytest.raises(ValueError, match="method='exact' needs a network with 2 inputs"):
        boundary_distance(model, x, method="exact")


def test_boundary_distance_multiclass_uses_the_nearest_tie_not_the_runner_up():
    # at the origin class 0 wins; class 2 is the runner-up by logit (-0.5) but its tie is 5 away, while
    # class 1 (logit -1) ties at distance 0.1: the affine classifier's region is a convex polygon
    model = nn.Sequential(nn.Linear(2, 3)).double()
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.1, 0.3]]))
        model[0].bias.copy_(torch.tensor([0.0, -1.0, -0.5]))
    pts = torch.tensor([[0.0, 0.0], [-0.3, 0.2], [0.05, -0.4]], dtype=torch.float64)
    got = boundary_distance(model, pts, method="linear")
    n = 1601
    u = np.linspace(-2, 2, n)
    grid = np.stack(np.meshgrid(u, u), -1).reshape(-1, 2)
    cls = model(torch.as_tensor(grid)).argmax(1).numpy()
    own = model(pts).argmax(1).numpy()
    brute = [np.sqrt(((grid[cls != c] - p) ** 2).sum(1)).min() for p, c in zip(pts.numpy(), own, strict=True)]
    np.testing.assert_allclose(got, brute, atol=2 * (u[1] - u[0]))
    assert abs(got[0] - 0.1) < 1e-12


def test_boundary_distance_exact_against_a_fine_grid():
    from netatlas.dynamics._boundary import WINDOW_MARGIN

    model = netatlas.nets.mlp([2, 8, 8, 1], "relu", seed=4).double()
    x = torch.rand(60, 2, generator=torch.Generator().manual_seed(2), dtype=torch.float64) * 2 - 1
    exact = boundary_distance(model, x, method="exact")
    lo, hi = x.min(0).values.numpy(), x.max(0).values.numpy()
    pad = WINDOW_MARGIN * (hi - lo)
    n = 1201
    u = np.linspace(lo[0] - pad[0], hi[0] + pad[0], n)
    v = np.linspace(lo[1] - pad[1], hi[1] + pad[1], n)
    uu, vv = np.meshgrid(u, v)
    grid = np.stack([uu.ravel(), vv.ravel()], 1)
    sign = (model(torch.as_tensor(grid)).detach().numpy()[:, 0] > 0).reshape(n, n)
    flips = np.concatenate([((grid.reshape(n, n, 2)[:, 1:] + grid.reshape(n, n, 2)[:, :-1]) / 2)[
        sign[:, 1:] != sign[:, :-1]], ((grid.reshape(n, n, 2)[1:] + grid.reshape(n, n, 2)[:-1]) / 2)[
        sign[1:] != sign[:-1]]])
    assert len(flips) > 0
    brute = np.sqrt(((x.numpy()[:, None] - flips[None]) ** 2).sum(2)).min(1)
    spacing = max(u[1] - u[0], v[1] - v[0])
    np.testing.assert_allclose(exact, brute, atol=spacing)
    assert np.all(np.isfinite(exact))


def test_c4_sigmoid_derivative_bound_and_first_layer_backprop():
    """C4: sigma'(z) <= exp(-|z|), and a first-layer unit's weight gradient of sample i is
    sigma'(z_i) x (downstream error) x x_i."""
    z = torch.linspace(-30, 30, 10_001, dtype=torch.float64)
    derivative = torch.sigmoid(z) * torch.sigmoid(-z)  # sigma' without the cancellation of s (1 - s)
    assert bool((derivative <= torch.exp(-z.abs()) * (1 + 1e-12)).all())
    model = netatlas.nets.mlp([2, 3, 1], "sigmoid", seed=0).double()
    x = torch.tensor([[0.3, -0.7]], dtype=torch.float64)
    out = model(x)
    out.sum().backward()
    zi = model[0](x).detach()[0]
    expected = (torch.sigmoid(zi) * (1 - torch.sigmoid(zi)) * model[2].weight.detach()[0])[:, None] * x[0][None]
    torch.testing.assert_close(model[0].weight.grad, expected)


def test_public_names():
    import netatlas.dynamics as dyn

    public = {n for n in dir(dyn) if not n.startswith("_") and n not in {"annotations"}}
    modules = {n for n in public if type(getattr(dyn, n)).__name__ == "module"}
    assert set(dyn.__all__) == public - modules
