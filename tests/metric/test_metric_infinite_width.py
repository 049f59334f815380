"""netatlas.metric.infinite_width: check values, quadrature, Monte Carlo, symmetry."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import netatlas
from netatlas.metric import infinite_width


def _as_torch(fn):
    """The lens returns NumPy arrays (as every lens does); the references in this file are float64 torch
    tensors, so its results are compared as tensors."""
    def call(*args, **kwargs):
        out = fn(*args, **kwargs)
        return torch.from_numpy(out) if isinstance(out, np.ndarray) else out

    return call


class _TorchView:
    """``infinite_width`` with array results as tensors (see _as_torch)."""

    def __getattr__(self, name):
        return _as_torch(getattr(infinite_width, name))


iw = _TorchView()


def _radial(rs, d=2):
    x = torch.zeros(len(rs), d, dtype=torch.float64)
    x[:, 0] = torch.tensor(rs, dtype=torch.float64)
    return x


def test_check_values_paper():
    vol = iw.limit_volume_element(_radial([0.0, 0.7, 2.0]))
    np.testing.assert_allclose(vol.numpy(), [0.36755, 0.27705, 0.10024], atol=6e-6)
    np.testing.assert_allclose(iw.limit_volume_element(torch.zeros(1, 5)).numpy(), [0.08190], atol=6e-6)
    R = iw.limit_scalar_curvature(_radial([0.5, 1.0, 2.0, 4.0]))
    np.testing.assert_allclose(R.numpy(), [-0.2799, -0.9366, -2.5259, -5.6643], atol=6e-5)


@pytest.mark.parametrize("s,z", [(1.0, 1.0), (0.5, 2.0), (2.0, 0.3)])
def test_erf_closed_forms(s, z):
    x = torch.randn(9, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 1.5
    r2 = (x**2).sum(1)
    q = 1 + 2 * z**2 + 2 * s**2 * r2
    R = -2 * math.pi * s**2 * r2 / ((1 + 2 * z**2) * torch.sqrt(q))
    torch.testing.assert_close(iw.limit_scalar_curvature(x, "erf", s, z), R, rtol=1e-9, atol=1e-9)
    vol = (2 * s**2 / math.pi) * math.sqrt(1 + 2 * z**2) * q ** (-(2 + 2) / 4)
    torch.testing.assert_close(iw.limit_volume_element(x, "erf", s, z), vol, rtol=1e-12, atol=0)
    g = iw.limit_metric(x, "erf", s, z)
    torch.testing.assert_close(torch.sqrt(torch.linalg.det(g)), vol, rtol=1e-10, atol=0)


@settings(max_examples=20, deadline=None)
@given(s=st.floats(0.2, 3.0), z=st.floats(0.0, 2.0), r=st.floats(0.0, 3.0), d=st.integers(1, 6))
def test_quadrature_equals_erf_closed_form(s, z, r, d):
    x = torch.zeros(1, d, dtype=torch.float64)
    x[0, -1] = r
    erf = lambda u: torch.erf(u / math.sqrt(2))  # noqa: E731
    torch.testing.assert_close(iw.limit_metric(x, erf, s, z), iw.limit_metric(x, "erf", s, z), rtol=1e-7, atol=1e-10)
    torch.testing.assert_close(
        iw.limit_volume_element(x, erf, s, z, log=True),
        iw.limit_volume_element(x, "erf", s, z, log=True),
        rtol=1e-7,
        atol=1e-9,
    )


def test_quadrature_curvature_equals_erf():
    x = _radial([0.5, 1.0, 2.0])
    erf = lambda u: torch.erf(u / math.sqrt(2))  # noqa: E731
    torch.testing.assert_close(
        iw.limit_scalar_curvature(x, erf), iw.limit_scalar_curvature(x, "erf"), rtol=1e-6, atol=1e-8
    )


def _unit_contributions(phi_map, x):
    """Per-unit metric contributions M_j = n * c^2 phi'(z_j)^2 w_j w_j^T (their mean is g)."""
    W, b, act = phi_map.shallow
    s = act.derivative(x @ W.T + b) ** 2  # (B, n)
    return s[:, :, None, None] * W[None, :, :, None] * W[None, :, None, :]  # (B, n, d, d)


@pytest.mark.parametrize(
    "act,s,z",
    [("erf", 1.0, 1.0), ("erf", 1.7, 0.4), ("tanh", 1.0, 0.5), ("relu", 1.3, 1.0), ("sigmoid", 2.0, 1.0)],
)
def test_monte_carlo_finite_width(act, s, z):
    n, d = 40_000, 3
    phi = iw.random_features(d, n, act, s, z, seed=7)
    x = torch.tensor([[0.0, 0.0, 0.0], [0.6, -0.2, 0.3], [1.5, 0.0, -1.0]], dtype=torch.float64)
    g_mc = _as_torch(netatlas.metric.metric)(phi, x)
    contributions = _unit_contributions(phi, x)
    torch.testing.assert_close(g_mc, contributions.mean(1), rtol=1e-10, atol=1e-12)
    se = contributions.std(1) / math.sqrt(n)
    g_inf = iw.limit_metric(x, act, s, z)
    z_scores = ((g_mc - g_inf) / se.clamp_min(1e-12)).abs()
    assert float(z_scores.max()) < 5.0, z_scores
    vol_mc = _as_torch(netatlas.metric.volume_element)(phi, x, log=False)
    torch.testing.assert_close(vol_mc, iw.limit_volume_element(x, act, s, z), rtol=0.06, atol=0)  # ~3 SE


def test_relu_is_flat_and_euclidean():
    x = torch.randn(5, 4, dtype=torch.float64)
    torch.testing.assert_close(
        iw.limit_metric(x, "relu", 2.0, 1.0), 2.0 * torch.eye(4, dtype=torch.float64).expand(5, 4, 4)
    )
    assert torch.all(iw.limit_scalar_curvature(x[:, :2], "relu") == 0)


@pytest.mark.parametrize("act", ["erf", "tanh", "gelu"])
def test_spherical_symmetry(act):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(6, 4, generator=g, dtype=torch.float64)
    Q, _ = torch.linalg.qr(torch.randn(4, 4, generator=g, dtype=torch.float64))
    y = x @ Q.T
    torch.testing.assert_close(iw.limit_volume_element(y, act), iw.limit_volume_element(x, act))
    torch.testing.assert_close(iw.limit_metric(y, act), Q @ iw.limit_metric(x, act) @ Q.T)
    if act != "erf":
        return
    R1 = iw.limit_scalar_curvature(x[:, :2], act)
    c, s_ = math.cos(0.7), math.sin(0.7)
    rot = torch.tensor([[c, -s_], [s_, c]], dtype=torch.float64)
    torch.testing.assert_close(iw.limit_scalar_curvature(x[:, :2] @ rot.T, act), R1)


def test_validation():
    with pytest.raises(ValueError, match="activation must be one of"):
        iw.limit_metric(torch.zeros(1, 2), "swishy")
    with pytest.raises(ValueError, match="sigma_w > 0"):
        iw.limit_volume_element(torch.zeros(1, 2), "erf", 0.0)
    with pytest.raises(ValueError, match="shape \\(B, d\\)"):
        iw.limit_metric(torch.zeros(2))
    with pytest.raises(ValueError, match="needs 2-D inputs"):
        iw.limit_scalar_curvature(torch.zeros(1, 3))


@pytest.mark.parametrize("act", ["erf", "tanh"])
def test_monte_carlo_curvature(act):
    # the curvature of a wide random net's induced metric converges to the infinite-width one
    x = torch.tensor([[0.5, 0.0], [0.7, -0.7]], dtype=torch.float64)
    R = torch.stack(
        [
            _as_torch(netatlas.metric.scalar_curvature)(iw.random_features(2, 50_000, act, 1.2, 0.8, seed=s), x)
            for s in range(4)
        ]
    )
    R_inf = iw.limit_scalar_curvature(x, act, 1.2, 0.8)
    tolerance = 4 * R.std(0) / 2 + 0.01 * R_inf.abs()
    assert torch.all((R.mean(0) - R_inf).abs() < tolerance), (R.mean(0), R_inf, tolerance)
