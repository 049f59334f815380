"""Activation derivatives live in one place (issue 25.2): ``Activation.derivative`` and
``Activation.max_derivative``; the lenses' slopes and linearisations come from them."""

import math
import warnings

import numpy as np
import pytest
import torch

from netatlas.nets import PIECEWISE_LINEAR, SMOOTH, Activation

NAMES = PIECEWISE_LINEAR + SMOOTH


def _activation(name):
    if name == "hardtanh":
        return Activation.hardtanh(-1.0, 1.0)
    return Activation(name, {"negative_slope": 0.1} if name == "leaky_relu" else {})


UNBOUNDED = {"exp": 30.0, "sqrt": 1e-12}  # where autograd's slope is already huge


@pytest.mark.parametrize("name", [n for n in NAMES if n not in UNBOUNDED])
def test_max_derivative_is_the_supremum_of_the_autograd_derivative(name):
    act = _activation(name)
    z = torch.linspace(-30, 30, 600_001, dtype=torch.float64, requires_grad=True)
    (slope,) = torch.autograd.grad(act(z).sum(), z)
    # a grid of step 1e-4 finds the peak of a smooth phi' to within (1e-4)^2 |phi'''| / 8 (relative 1e-8)
    assert act.max_derivative == pytest.approx(float(slope.max()), rel=1e-7, abs=1e-12)


@pytest.mark.parametrize("name", sorted(UNBOUNDED))
def test_unbounded_slopes_have_an_infinite_max_derivative(name):
    act = _activation(name)
    z = torch.tensor([UNBOUNDED[name]], dtype=torch.float64, requires_grad=True)
    (slope,) = torch.autograd.grad(act(z).sum(), z)
    assert slope.item() > 1e5 and act.max_derivative == math.inf


def test_max_derivative_closed_forms():
    assert Activation("sigmoid").max_derivative == 0.25
    assert Activation("erf").max_derivative == 2 / math.sqrt(math.pi)
    assert Activation.hardtanh(0.0, 6.0).max_derivative == 1.0


@pytest.mark.parametrize("name", ["sigmoid", "tanh", "identity", "softplus", "relu"])
def test_lowrank_linearisation_takes_the_activations_derivative(name):
    from netatlas.lowrank import activation_derivative

    c = np.linspace(-25, 25, 1001)
    c = c[c != 0]
    with torch.no_grad():
        t = torch.as_tensor(c, dtype=torch.float64).requires_grad_(True)
    phi = {"softplus": lambda u: torch.logaddexp(torch.zeros_like(u), u)}.get(name, _activation(name))
    (expected,) = torch.autograd.grad(phi(t).sum(), t)
    np.testing.assert_allclose(activation_derivative(name, c), expected.numpy(), rtol=1e-12, atol=1e-15)
    if name == "relu":  # the right derivative at the kink, with a warning
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert activation_derivative("relu", np.zeros(1))[0] == 1.0
        assert "kink" in str(caught[0].message)


@pytest.mark.parametrize("name", ["sigmoid", "tanh", "erf", "relu", "gelu", "softplus"])
def test_dynamics_steepest_slope_is_max_derivative_times_the_weight_norm(name):
    from netatlas.dynamics import steepest_slope

    assert steepest_slope(3.0, name) == pytest.approx(3.0 * Activation(name).max_derivative, rel=1e-15)
