"""Spline coordinates: conversions both ways, degenerate neurons, evaluation, roughness."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import netatlas
from netatlas.splines import (
    ShallowParams,
    Spline,
    as_params,
    merge_coincident,
    to_network,
    to_spline,
)


def _random_params(seed, width=20, zero_w=0):
    rng = np.random.default_rng(seed)
    w, b, v = rng.normal(size=(3, width))
    w[:zero_w] = 0.0
    return ShallowParams(w, b, v, rng.normal())


def _net_reference(p, x):
    # independent float64 torch evaluation of the network
    model = p.to_module()
    with torch.no_grad():
        return model(torch.as_tensor(x).reshape(-1, 1))[:, 0].numpy()


def test_degenerate_zero_width():
    s = to_spline(ShallowParams([], [], [], 1.5))
    assert s.width == 0
    assert s(np.array([0.0, 3.0])).tolist() == [1.5, 1.5]
    assert s.roughness().l2 == 0.0
    assert to_network(s, output="params").width == 0


def test_zero_weight_neurons_fold_into_offset():
    p = ShallowParams([0.0, 0.0, 1.0], [2.0, -1.0, 0.5], [3.0, 5.0, -1.0], 0.25)
    s = to_spline(p)
    assert s.offset == 0.25 + 3.0 * 2.0  # relu(-1) = 0 for the second constant neuron
    assert np.isinf(s.breakpoints[:2]).all() and (s.delta_slopes[:2] == 0).all()
    x = np.linspace(-3, 3, 101)
    np.testing.assert_allclose(s(x), _net_reference(p, x), rtol=0, atol=1e-12)
    back = to_network(s, output="params")
    np.testing.assert_allclose(back(x), p(x), rtol=0, atol=1e-12)
    assert back.w[:2].tolist() == [0.0, 0.0]


@pytest.mark.parametrize("balance", [False, True, "norm"])
def test_round_trip_random_networks(balance):
    x = np.linspace(-5, 5, 1001)
    for seed in range(5):
        p = _random_params(seed, width=50, zero_w=seed % 2)
        s = to_spline(p)
        np.testing.assert_allclose(s(x), _net_reference(p, x), rtol=0, atol=1e-12)
        model = to_network(s, balance)
        assert isinstance(model, torch.nn.Sequential) and model[0].weight.dtype == torch.float64
        with torch.no_grad():
            y = model(torch.as_tensor(x).reshape(-1, 1))[:, 0].numpy()
        np.testing.assert_allclose(y, p(x), rtol=0, atol=1e-12)
        s2 = to_spline(model)
        np.testing.assert_allclose(s2.breakpoints, s.breakpoints, rtol=1e-14, atol=0)
        np.testing.assert_allclose(s2.delta_slopes, s.delta_slopes, rtol=1e-14, atol=1e-300)
        assert (s2.orientations == s.orientations).all() and abs(s2.offset - s.offset) < 1e-12


def test_balance_options_hold_their_identity():
    s = to_spline(_random_params(3))
    p = to_network(s, balance=True, output="params")
    np.testing.assert_allclose(np.abs(p.v), np.abs(p.w), rtol=1e-13)
    q = to_network(s, balance="norm", output="params")
    np.testing.assert_allclose(q.v ** 2, q.w ** 2 + q.b ** 2, rtol=1e-12)
    with pytest.raises(ValueError, match="unknown balance 'bogus'"):
        to_network(s, balance="bogus")
    with pytest.raises(ValueError, match="positive finite"):
        to_network(s, balance=-np.ones(s.width))


def test_coincident_breakpoints_and_merge():
    p = ShallowParams([1.0, 2.0, -1.0, 1.0], [-1.0, -2.0, 1.0, 0.0], [1.0, 0.5, 2.0, -1.0], 0.0)
    s = to_spline(p)
    assert s.breakpoints[:3].tolist() == [1.0, 1.0, 1.0]
    knots, jumps = s.knots()
    assert knots.tolist() == [0.0, 1.0] and jumps.tolist() == [-1.0, 1.0 + 1.0 + 2.0]
    m = merge_coincident(s)
    assert m.width == 3
    x = np.linspace(-3, 3, 61)
    np.testing.assert_allclose(m(x), s(x), atol=1e-12)
    assert s.roughness(x_range=(-2, 2)).tv == 1.0 + 4.0
    assert s.roughness(x_range=(0.5, 2)).tv == 4.0


def test_netatlas_net_and_module_inputs_agree():
    model = netatlas.nets.mlp([1, 16, 1], seed=3)
    net = netatlas.nets.from_torch(model)
    assert net.is_shallow_univariate()
    s1, s2 = to_spline(model), to_spline(net)
    np.testing.assert_array_equal(s1.breakpoints, s2.breakpoints)
    x = torch.linspace(-3, 3, 50).reshape(-1, 1)
    np.testing.assert_allclose(s1(x[:, 0].numpy()), net(x)[:, 0].numpy(), atol=1e-12)
    nobias = torch.nn.Sequential(torch.nn.Linear(1, 4, bias=False), torch.nn.ReLU(),
                                 torch.nn.Linear(4, 1, bias=False))
    assert np.all(to_spline(nobias).breakpoints == 0.0)
    d = as_params({"w": [1.0], "b": [0.0], "v": [2.0], "c": 0.0})
    assert to_spline(d).delta_slopes.tolist() == [2.0]


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="not 1 -> H ReLU -> 1"):
        to_spline(netatlas.nets.mlp([2, 4, 1]))
    with pytest.raises(TypeError, match="cannot read a shallow univariate ReLU network from str"):
        to_spline("model.pt")
    with pytest.raises(ValueError, match="orientations must be"):
        Spline([0.0], [1.0], [0], 0.0)
    with pytest.raises(ValueError, match="one length H"):
        ShallowParams([1.0, 2.0], [1.0], [1.0], 0.0)


def test_derivative_is_the_slope_and_tv_matches_a_grid():
    s = to_spline(_random_params(7, width=30))
    x = np.sort(np.random.default_rng(0).uniform(-4, 4, 400))
    h = 1e-7
    fd = (s(x + h) - s(x - h)) / (2 * h)
    near = np.min(np.abs(x[:, None] - s.breakpoints[None]), axis=1) < 2 * h
    np.testing.assert_allclose(s.derivative(x)[~near], fd[~near], atol=1e-6)
    # TV of f' on (-2, 2) from a fine grid of the step function f'
    grid = np.linspace(-2, 2, 200001)
    tv_grid = np.abs(np.diff(s.derivative(grid))).sum()
    np.testing.assert_allclose(s.roughness(x_range=(-2, 2)).tv, tv_grid, rtol=1e-12)
    a, d = s.affine_part()
    knots, jumps = s.knots()
    linear_form = a * x + d + np.maximum(x[:, None] - knots[None], 0) @ jumps
    np.testing.assert_allclose(linear_form, s(x), atol=1e-12)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 40))
def test_round_trip_property(seed, width):
    p = _random_params(seed, width=width, zero_w=seed % 3)
    x = np.linspace(-3, 3, 64)
    for balance in (False, True):
        q = to_network(to_spline(p), balance, output="params")
        np.testing.assert_allclose(q(x), p(x), rtol=0, atol=1e-12)


def test_all_is_complete_and_importable():
    import netatlas.splines as splines

    for name in splines.__all__:
        assert hasattr(splines, name), name
    public = {n for n in dir(splines) if not n.startswith("_") and callable(getattr(splines, n))}
    assert public <= set(splines.__all__), public - set(splines.__all__)
