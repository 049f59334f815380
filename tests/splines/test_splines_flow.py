"""Gradient flow: fast gradient, flow equations in spline terms vs autograd, conservation, GD/ODE runs."""

import numpy as np
import pytest
import torch

import netatlas
from netatlas.splines import (
    ShallowParams,
    conserved_quantity,
    fast_gradient,
    flow_velocity,
    init_scheme,
    loss_gradient,
    sample_init,
    simulate_flow,
)
from netatlas.splines._flow import _gd_kernel


def _problem(seed, width=30, n=17):
    rng = np.random.default_rng(seed)
    x, y = rng.uniform(-2, 2, n), rng.normal(size=n)
    w, b, v = rng.normal(size=(3, width))
    w[:2] = 0.0  # constant neurons (one active, b > 0, or not)
    b[:2] = [0.7, -0.4]
    return ShallowParams(w, b, v, rng.normal()), x, y


@pytest.mark.parametrize("seed", range(5))
def test_fast_gradient_matches_dense_closed_form(seed):
    p, x, y = _problem(seed)
    grad, loss = fast_gradient(p, x, y)
    np.testing.assert_allclose(grad, loss_gradient(p, x, y), rtol=1e-12, atol=1e-12)
    assert np.isclose(loss, 0.5 * np.sum((p(x) - y) ** 2), rtol=1e-13)


@pytest.mark.parametrize("seed", range(4))
def test_flow_equations_match_autograd(seed):
    p, x, y = _problem(seed)
    p = ShallowParams(p.w[2:], p.b[2:], p.v[2:], p.c)  # w != 0 for beta
    xt, yt = torch.tensor(x), torch.tensor(y)
    theta = torch.tensor(p.vector())
    h = p.width

    def loss(th):
        f = torch.relu(xt[:, None] * th[:h] + th[h:2 * h]) @ th[2 * h:3 * h] + th[-1]
        return 0.5 * ((f - yt) ** 2).sum()

    def spline_coords(th):
        w, b, v = th[:h], th[h:2 * h], th[2 * h:3 * h]
        return torch.cat([-b / w, v * w.abs()])

    velocity = -torch.func.grad(loss)(theta)
    _, d = torch.func.jvp(spline_coords, (theta,), (velocity,))
    dbeta, dmu = flow_velocity(p, x, y)
    np.testing.assert_allclose(dbeta, d[:h].numpy(), rtol=1e-11, atol=1e-12)
    np.testing.assert_allclose(dmu, d[h:].numpy(), rtol=1e-11, atol=1e-12)
    # and d/dt (v^2 - w^2 - b^2) = 0 along -grad L
    _, dq = torch.func.jvp(lambda th: th[2 * h:3 * h] ** 2 - th[:h] ** 2 - th[h:2 * h] ** 2, (theta,), (velocity,))
    assert np.max(np.abs(dq.numpy())) < 1e-12 * (1 + np.abs(velocity.numpy()).max())


def test_gd_kernel_equals_numpy_steps():
    p, x, y = _problem(9, width=200)
    order = np.argsort(x)
    xs, ys = x[order], y[order]
    ref = p
    for _ in range(30):
        g, _ = fast_gradient(ref, x, y)
        ref = ShallowParams.from_vector(ref.vector() - 1e-5 * g)
    w, b, v = p.w.copy(), p.b.copy(), p.v.copy()
    c, loss, taken = _gd_kernel(w, b, v, p.c, xs, ys, 1e-5, 30, 0.0)
    assert taken == 30
    np.testing.assert_allclose(np.concatenate([w, b, v, [c]]), ref.vector(), atol=1e-12)
    assert np.isclose(loss, 0.5 * np.sum((ref(x) - y) ** 2), rtol=1e-10)


def test_conservation_under_the_ode():
    p = sample_init(init_scheme("torch", 40), seed=1)
    x = np.linspace(-1, 1, 10)
    y = np.sin(3 * x)
    # RK45 at rtol 1e-6 (tighter tolerances crawl where a breakpoint slides along a data point: the
    # vector field is discontinuous there)
    run = simulate_flow(p, x, y, method="ode", t_max=2.0, n_records=5, rtol=1e-6, atol=1e-8)
    q0 = conserved_quantity(run.params(0))
    q1 = conserved_quantity(run.params(-1))
    assert run.loss[-1] < 0.5 * run.loss[0]
    assert np.max(np.abs(run.w[-1] - run.w[0])) > 1e-3  # the parameters did move
    np.testing.assert_allclose(q1, q0, atol=2e-5)
    # plain GD conserves it only up to O(lr^2) per step: the drift shrinks with lr
    drift = []
    for lr in (8e-3, 2e-3):
        gd = simulate_flow(p, x, y, n_steps=int(2.0 / lr), lr=lr, n_records=3)
        drift.append(np.max(np.abs(conserved_quantity(gd.params(-1)) - q0)))
    assert drift[1] < 0.5 * drift[0]


def test_gd_tracks_the_ode():
    p = sample_init(init_scheme("torch", 25), seed=2)
    x = np.linspace(-1, 1, 8)
    y = np.abs(x)
    ode = simulate_flow(p, x, y, method="ode", t_max=1.0, n_records=4, record="linear", rtol=1e-7, atol=1e-9)
    gd = simulate_flow(p, x, y, n_steps=4000, lr=2.5e-4, n_records=4, record="linear")
    np.testing.assert_allclose(gd.times, ode.times, rtol=1e-12)
    assert np.max(np.abs(gd.function[-1] - ode.function[-1])) < 1e-3


def test_records_and_stopping():
    p = sample_init(init_scheme("torch", 60), seed=3)
    x = np.linspace(-1, 1, 6)
    y = x ** 2
    run = simulate_flow(p, x, y, n_steps=200_000, loss_tol=1e-6, n_records=30)
    assert run.converged and run.loss[-1] <= 1e-6 and run.steps[-1] < 200_000
    assert run.breakpoints.shape == run.delta_slopes.shape == (run.times.size, 60)
    np.testing.assert_allclose(run.function[-1], run.params(-1)(run.grid), atol=1e-12)
    np.testing.assert_allclose(run.spline(-1)(run.grid), run.function[-1], atol=1e-12)
    assert np.all(np.diff(run.steps) > 0)
    ode = simulate_flow(p, x, y, method="ode", t_max=1e4, loss_tol=1e-3, n_records=10)
    assert ode.converged and ode.loss[-1] <= 1e-3 * (1 + 1e-6)


def test_validation():
    p = sample_init(init_scheme("torch", 5), seed=0)
    with pytest.raises(ValueError, match="method must be 'gd' or 'ode'; got 'adam'"):
        simulate_flow(p, [0.0], [0.0], method="adam")
    with pytest.raises(ValueError, match="needs t_max"):
        simulate_flow(p, [0.0], [0.0], method="ode")
    with pytest.raises(ValueError, match="same length"):
        simulate_flow(p, [0.0, 1.0], [0.0])
    with pytest.raises(FloatingPointError, match="diverged"):
        simulate_flow(p, np.linspace(-1, 1, 5), np.ones(5) * 100, lr=10.0, n_steps=200)


@pytest.mark.parametrize("t_max", [0.5, 1.0, 3.0])
def test_ode_log_schedule_for_any_horizon(t_max):
    # Regression: t_max <= 1 gave repeated record times, which solve_ivp refuses.
    x = np.linspace(-1, 1, 6)
    result = simulate_flow(netatlas.nets.mlp([1, 5, 1], seed=0), x, np.sin(3 * x), method="ode", t_max=t_max,
                           n_records=8)
    assert np.all(np.diff(result.times) > 0) and result.times[-1] == pytest.approx(t_max)
