"""The networks of the Shisher et al. validation: closed-form Hessians against torch.func, trained torch
networks against the theory, and the Newton optimiser on them."""

import numpy as np
import pytest
import torch
from torch.func import grad, hessian

import netatlas.lowrank as lr
from netatlas.experiments.shisher2022 import _training as training


@pytest.mark.parametrize("kind", ["softmax", "mmse"])
def test_factorized_hessian_against_torch_func(kind):
    n_x, n_y, k = 5, 4, 2
    j = lr.local_joint(n_x, n_y, k=2, eps_fraction=0.4, seed=2)
    model = training.softmax_network(n_x, n_y, k, seed=3, output_bias=np.log(j.p_y))
    theta = torch.nn.utils.parameters_to_vector(model.parameters()).detach()
    names = [n for n, _ in model.named_parameters()]
    flat = training._Flat(model, names)
    eye = torch.eye(n_x, dtype=torch.float64)
    p = torch.from_numpy(j.p_xy)
    mean = p / p.sum(1, keepdim=True)
    p_x = p.sum(1)

    def loss(t):
        out = flat.call(t, eye)
        if kind == "softmax":
            return lr.softmax_excess_loss_torch(out - torch.log(p.sum(0)), p)
        return (p_x * ((out - mean) ** 2).sum(1)).sum()

    out = training._outputs(theta[None], n_x, n_y, k)
    torch.testing.assert_close(out[0], model(eye))
    if kind == "softmax":
        g, hx = lr.softmax_excess_derivatives(out - torch.log(p.sum(0)), p[None])
    else:
        g = 2 * p_x[None, :, None] * (out - mean)
        hx = 2 * p_x[None, :, None, None] * torch.eye(n_y, dtype=torch.float64)
    gradient, hess = training.factorized_derivatives(theta[None], n_x, n_y, k, g, hx)
    torch.testing.assert_close(gradient[0], grad(loss)(theta))
    torch.testing.assert_close(hess[0], hessian(loss)(theta))


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "softplus", "relu"])
def test_hidden_hessian_against_torch_func(activation):
    j = lr.local_joint(6, 4, k=2, eps_fraction=0.4, seed=2)
    f1, v, d = training.hidden_setup(6, 4, m=3, k=2, activation=activation, center=0.3, p_y=j.p_y, seed=0)
    model = training.hidden_network(3, 2, 4, activation=activation, seed=1)
    flat = training._Flat(model, ["0.weight", "0.bias"])
    theta = flat.flatten(model)
    p = torch.from_numpy(j.p_xy)
    f1_t, v_t, d_t = (torch.from_numpy(a) for a in (f1, v, d))

    def loss(t):
        logits = flat.call(t, f1_t, {"2.weight": v_t, "2.bias": d_t})
        return lr.softmax_excess_loss_torch(logits - torch.log(p.sum(0)), p)

    gradient, hess = training.hidden_derivatives(theta[None], p[None], f1_t[None], v_t[None], d_t[None],
                                             activation, torch.ones(1, dtype=torch.float64))
    torch.testing.assert_close(gradient[0], grad(loss)(theta))
    torch.testing.assert_close(hess[0], hessian(loss)(theta))


def test_trained_networks_reach_the_exact_optimum_and_the_theory():
    joints = [lr.local_joint(10, 5, k=2, eps_fraction=f, seed=3) for f in (1e-3, 1e-2)]
    fits = training.train_softmax_networks([j.p_xy for j in joints], 2, seeds=[0, 1])
    exact = training.train_softmax_networks([j.p_xy for j in joints], 2, init="theory")
    errors = []
    for j, fit, ex in zip(joints, fits, exact, strict=True):
        assert fit.converged and ex.converged
        assert fit.loss == pytest.approx(ex.loss, rel=1e-8)  # random init finds the global optimum
        c = lr.compare_softmax_layer(j.p_xy, fit.features, fit.weights, fit.bias)
        errors.append(c.product_error)
        assert c.excess_loss_ratio == pytest.approx(1.0, abs=0.05)
    # product error O(eps): tenfold eps, about tenfold error
    assert errors[0] < 2e-3
    assert 5 < errors[1] / errors[0] < 20


def test_mmse_network_is_exact_at_any_eps():
    p = lr.dirichlet_joint(8, 4, seed=0)  # far from local
    fit, = training.train_mmse_networks([p], 2, seeds=[5])
    c = lr.compare_mmse_layer(p, fit.features, fit.weights, fit.bias)
    assert c.product_error < 1e-6
    assert c.excess_loss_ratio == pytest.approx(1.0, abs=1e-9)


def test_hidden_network_matches_formula_to_order_eps():
    errors = []
    for frac in (1e-3, 1e-2):
        j = lr.local_joint(12, 5, k=2, eps_fraction=frac, seed=4)
        f1, v, d = training.hidden_setup(12, 5, m=4, k=2, activation="tanh", p_y=j.p_y, seed=0)
        fit, = training.train_hidden_networks([j.p_xy], [f1], [v], [d], activation="tanh", seeds=[0])
        c = lr.compare_hidden_layer(j.p_xy, f1, fit.weights, fit.bias, v, d, activation="tanh", center=0.0)
        errors.append(c.product_error)
    assert errors[0] < 1e-3
    assert 5 < errors[1] / errors[0] < 20


def test_newton_autodiff_and_closed_form_agree():
    j = lr.local_joint(6, 4, k=2, eps_fraction=0.1, seed=0)
    f1, v, d = training.hidden_setup(6, 4, m=3, k=2, activation="sigmoid", p_y=j.p_y, seed=0)
    a, = training.train_hidden_networks([j.p_xy], [f1], [v], [d], seeds=[0])
    b, = training.train_hidden_networks([j.p_xy], [f1], [v], [d], seeds=[0], autodiff=True)
    np.testing.assert_allclose(a.weights, b.weights, rtol=1e-6, atol=1e-9)


def test_training_input_validation():
    with pytest.raises(ValueError, match="same shape"):
        training.train_softmax_networks([np.full((2, 2), 0.25), np.full((3, 2), 1 / 6)], 1)
    with pytest.raises(ValueError, match="one seed per joint"):
        training.train_softmax_networks([np.full((2, 2), 0.25)], 1, seeds=[0, 1])
    with pytest.raises(ValueError, match="init = 'zeros'"):
        training.train_softmax_networks([np.full((2, 2), 0.25)], 1, init="zeros")
