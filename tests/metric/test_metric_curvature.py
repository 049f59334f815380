"""scalar_curvature (Gauss equation on the embedding) and scalar_curvature_from_metric (Brioschi)."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import netatlas
from netatlas import metric as lens


def _as_torch(fn):
    """The lens returns NumPy arrays (as every lens does); the references in this file are float64 torch
    tensors, so its results are compared as tensors."""
    def call(*args, **kwargs):
        out = fn(*args, **kwargs)
        return torch.from_numpy(out) if isinstance(out, np.ndarray) else out

    return call


metric, scalar_curvature, scalar_curvature_from_metric = map(_as_torch, (
    lens.metric, lens.scalar_curvature, lens.scalar_curvature_from_metric))


def _sphere(radius):
    def fn(x):
        u, v = x[:, 0], x[:, 1]
        return radius * torch.stack([u.sin() * v.cos(), u.sin() * v.sin(), u.cos()], 1)

    return fn


def _points(n=20, seed=0):
    g = torch.Generator().manual_seed(seed)
    u = 0.3 + 2.5 * torch.rand(n, generator=g, dtype=torch.float64)  # polar angle away from the poles
    v = -3 + 6 * torch.rand(n, generator=g, dtype=torch.float64)
    return torch.stack([u, v], 1)


@pytest.mark.parametrize("radius", [1.0, 0.5, 3.0])
def test_sphere(radius):
    R = scalar_curvature(_sphere(radius), _points())
    torch.testing.assert_close(R, torch.full_like(R, 2 / radius**2), rtol=1e-9, atol=1e-9)


def test_sphere_in_other_coordinates():
    # stereographic-like graph chart z = sqrt(1 - x^2 - y^2): still R = 2
    def graph(p):
        return torch.stack([p[:, 0], p[:, 1], torch.sqrt(1 - (p**2).sum(1))], 1)

    x = torch.tensor([[0.1, 0.2], [-0.5, 0.3], [0.0, 0.0]], dtype=torch.float64)
    torch.testing.assert_close(scalar_curvature(graph, x), torch.full((3,), 2.0, dtype=torch.float64))


def test_flat_maps():
    x = _points()
    A = torch.tensor([[1.0, 2.0], [0.5, -1.0], [3.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    torch.testing.assert_close(scalar_curvature(lambda p: p @ A.T, x), torch.zeros(20, dtype=torch.float64))
    # a cylinder is intrinsically flat although curved in R^3
    cyl = lambda p: torch.stack([p[:, 0].cos(), p[:, 0].sin(), p[:, 1]], 1)  # noqa: E731
    torch.testing.assert_close(
        scalar_curvature(cyl, x), torch.zeros(20, dtype=torch.float64), atol=1e-12, rtol=0
    )


def test_torus_both_formulas():
    big, small = 2.0, 0.7

    def torus(p):
        u, v = p[:, 0], p[:, 1]
        rho = big + small * v.cos()
        return torch.stack([rho * u.cos(), rho * u.sin(), small * v.sin()], 1)

    x = _points(30, 1)
    expected = 2 * x[:, 1].cos() / (small * (big + small * x[:, 1].cos()))
    torch.testing.assert_close(scalar_curvature(torus, x), expected, rtol=1e-9, atol=1e-9)

    def g(p):
        J = torch.func.vmap(torch.func.jacfwd(lambda q: torus(q[None])[0]))(p)
        return J.mT @ J

    torch.testing.assert_close(scalar_curvature_from_metric(g, x), expected, rtol=1e-8, atol=1e-8)


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 10_000), act=st.sampled_from(["tanh", "sigmoid", "gelu"]))
def test_network_gauss_equals_brioschi(seed, act):
    model = netatlas.nets.mlp([2, 12, 1], act, seed=seed, scale=2.0)
    net = netatlas.nets.from_torch(model)
    W, b, a = net.as_mlp()[0]
    x = torch.randn(5, 2, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)

    def g(p):  # independent closed form: W^T diag(phi'(z)^2) W / n, differentiable
        s = (
            a.derivative(p @ W.T + b)
            if act != "gelu"
            else torch.func.vmap(torch.func.grad(lambda z: torch.nn.functional.gelu(z)))(
                (p @ W.T + b).reshape(-1)
            ).reshape(len(p), -1)
        )
        return torch.einsum("bn,na,nc->bac", s**2, W, W) / 12

    R1 = scalar_curvature((model, "1"), x)
    R2 = scalar_curvature_from_metric(g, x)
    torch.testing.assert_close(R1, R2, rtol=1e-6, atol=1e-8)
    torch.testing.assert_close(metric((model, "1"), x), g(x))


def test_curvature_needs_2d():
    with pytest.raises(ValueError, match="2-D inputs; got inputs with d=3"):
        scalar_curvature(lambda p: p, torch.zeros(1, 3, dtype=torch.float64))


def test_relu_net_is_flat_inside_regions():
    model = netatlas.nets.mlp([2, 16, 16, 1], "relu", seed=0)
    R = scalar_curvature((model, "3"), _points(10) * 0.2)
    assert torch.all(R.abs() < 1e-10) or torch.isnan(R).any()
    assert math.isfinite(float(R[~R.isnan()].abs().max()))


def test_saddle_negative_curvature_float32_input():
    # the graph z = x y has K = -1 / (1 + x^2 + y^2)^2; float32 inputs are promoted to float64
    x = torch.tensor([[0.0, 0.0], [0.5, -1.0], [2.0, 1.0]])
    R = scalar_curvature(lambda p: torch.stack([p[:, 0], p[:, 1], p[:, 0] * p[:, 1]], 1), x)
    expected = -2 / (1 + (x.double() ** 2).sum(1)) ** 2
    assert R.dtype == torch.float64
    torch.testing.assert_close(R, expected, rtol=1e-10, atol=1e-12)
