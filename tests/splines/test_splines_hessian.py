"""Loss surface: closed-form gradients/Hessians vs torch.func, spectra, critical points."""

import numpy as np
import pytest
import torch

from netatlas.splines import (
    ShallowParams,
    Spline,
    classify_critical_point,
    hessian_spectrum,
    interpolating_minimum,
    loss_gradient,
    loss_hessian,
    neuron_block,
    to_spline,
)


def _torch_loss(coords, x, y, sign=None):
    x, y = torch.tensor(x), torch.tensor(y)

    def network(theta):
        h = (theta.numel() - 1) // 3
        w, b, v, c = theta[:h], theta[h:2 * h], theta[2 * h:3 * h], theta[-1]
        f = torch.relu(x[:, None] * w + b) @ v + c
        return 0.5 * ((f - y) ** 2).sum()

    def spline(theta):
        h = (theta.numel() - 1) // 2
        beta, mu, c = theta[:h], theta[h:2 * h], theta[-1]
        f = torch.relu(torch.tensor(sign, dtype=torch.float64) * (x[:, None] - beta)) @ mu + c
        return 0.5 * ((f - y) ** 2).sum()

    return network if coords == "network" else spline


def _problem(seed, n=15, width=9):
    rng = np.random.default_rng(seed)
    x, y = rng.uniform(-2, 2, n), rng.normal(size=n)
    return ShallowParams(*rng.normal(size=(3, width)), rng.normal()), x, y


@pytest.mark.parametrize("seed", range(4))
def test_closed_forms_match_autograd(seed):
    p, x, y = _problem(seed)
    theta = torch.tensor(p.vector())
    f = _torch_loss("network", x, y)
    np.testing.assert_allclose(loss_gradient(p, x, y), torch.func.grad(f)(theta).numpy(), atol=1e-12)
    np.testing.assert_allclose(loss_hessian(p, x, y), torch.func.hessian(f)(theta).numpy(), atol=1e-12)
    s = to_spline(p)
    theta_s = torch.tensor(np.concatenate([s.breakpoints, s.delta_slopes, [s.offset]]))
    g = _torch_loss("spline", x, y, s.orientations.astype(np.float64))
    np.testing.assert_allclose(loss_gradient(s, x, y, coords="spline"), torch.func.grad(g)(theta_s).numpy(),
                               atol=1e-12)
    np.testing.assert_allclose(loss_hessian(p, x, y, coords="spline"), torch.func.hessian(g)(theta_s).numpy(),
                               atol=1e-12)
    np.testing.assert_allclose(loss_hessian(p, x, y, reduction="mean"), loss_hessian(p, x, y) / x.size)


def test_spectrum_degenerate_cases():
    assert hessian_spectrum(np.zeros((3, 3))).n_zero == 3
    full = hessian_spectrum(np.diag([1.0, 1e-3, 2e-6]))
    assert (full.rank, full.n_zero) == (3, 0)
    with pytest.raises(ValueError, match="square matrix"):
        hessian_spectrum(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="coords must be 'network' or 'spline'; got 'beta'"):
        loss_hessian(Spline([0.0], [1.0], [1], 0.0), [0.0], [0.0], coords="beta")


@pytest.mark.parametrize("seed", [0, 1, 7, 21])
def test_interpolating_minimum_n12_h40(seed):
    # docs/papers/sahs2020.md: n = 12, H = 40, breakpoints uniform on [-1.2, 1.2]: rank 12, 69 zeros, 0 negative;
    # network coordinates 109 zeros (= 69 + H)
    rng = np.random.default_rng(seed)
    x = np.linspace(-1, 1, 12)
    y = np.sin(3 * x) + 0.3 * rng.normal(size=12)
    spline = interpolating_minimum(rng.uniform(-1.2, 1.2, 40), rng.choice([-1, 1], 40), x, y)
    assert np.max(np.abs(spline(x) - y)) < 1e-12
    spec = hessian_spectrum(loss_hessian(spline, x, y, coords="spline"))
    assert (spec.rank, spec.n_zero, spec.n_negative) == (12, 69, 0)
    net = hessian_spectrum(loss_hessian(spline, x, y, coords="network"))
    assert (net.rank, net.n_zero, net.n_negative) == (12, 109, 0)
    for coords in ("spline", "network"):
        cp = classify_critical_point(spline, x, y, coords=coords)
        assert cp.kind == "minimum" and cp.matches_prediction


def _saddle_point():
    # offset + one mu = 0 neuron at beta = 0 (s = +1), residual r chosen with sum r = 0,
    # sum_{x > 0} r x = 0 but R = sum_{x > 0} r != 0: a critical point with a negative direction
    x = np.linspace(-1, 1, 12)
    pos = x > 0
    r = np.zeros(12)
    lam = x[pos].sum() / (x[pos] ** 2).sum()
    r[pos] = 1 - lam * x[pos]
    r[~pos] = -r[pos].sum() / (~pos).sum()
    offset = 0.3
    y = offset - r
    return Spline([0.0, 5.0], [0.0, 0.7], [1, 1], offset), x, y, r[pos].sum()


def test_saddle_block():
    spline, x, y, big_r = _saddle_point()
    assert np.linalg.norm(loss_gradient(spline, x, y, coords="spline")) < 1e-12
    hess = loss_hessian(spline, x, y, coords="spline")
    block = hess[np.ix_([0, 2], [0, 2])]  # (beta_0, mu_0)
    expected = np.array([[0.0, -big_r], [-big_r, np.sum(x[x > 0] ** 2)]])
    np.testing.assert_allclose(block, expected, atol=1e-12)
    np.testing.assert_allclose(neuron_block(spline, x, y, 0), expected, atol=1e-12)
    assert np.linalg.det(block) < 0
    cp = classify_critical_point(spline, x, y)
    assert cp.kind == "saddle" and cp.saddle_neurons.tolist() == [0] and cp.dead_neurons.tolist() == [1]
    assert cp.spectrum.n_negative == 1 and cp.matches_prediction
    cpn = classify_critical_point(spline, x, y, coords="network")
    assert cpn.kind == "saddle" and cpn.spectrum.n_negative == 1
    assert cpn.spectrum.n_zero == cp.spectrum.n_zero + spline.width


def test_dead_neurons_and_shared_classes_are_flat():
    x = np.linspace(-1, 1, 6)
    y = np.abs(x) + 0.1 * x
    # 3 neurons share the gap (0.6, 1) with s = +1; 2 dead neurons right of the data
    beta = np.array([-0.5, 0.0, 0.65, 0.7, 0.75, 1.5, 2.0, -0.3, 0.4])
    sign = np.array([1, -1, 1, 1, 1, 1, 1, -1, -1])
    spline = interpolating_minimum(beta, sign, x, y)
    assert np.max(np.abs(spline(x) - y)) < 1e-12
    cp = classify_critical_point(spline, x, y)
    assert cp.dead_neurons.tolist() == [5, 6]
    assert cp.n_classes == 5
    assert cp.kind == "minimum" and cp.matches_prediction
    # 2H + 1 = 19 parameters; rank <= min(n, 2K + 1) = 6
    assert cp.spectrum.rank == 6 and cp.spectrum.n_zero == 13


def test_not_critical_is_reported():
    p, x, y = _problem(3)
    cp = classify_critical_point(p, x, y)
    assert cp.kind == "not critical" and cp.predicted_n_zero is None
    assert cp.to_dict()["kind"] == "not critical"
