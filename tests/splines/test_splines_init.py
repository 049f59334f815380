"""Initialisation in the spline view: breakpoint laws (KS tests) and expected roughness."""

import math

import numpy as np
import pytest
import torch
from scipy import integrate, stats

import netatlas
from netatlas.splines import (
    breakpoint_density,
    expected_roughness,
    init_scheme,
    sample_init,
    sampled_roughness,
    to_spline,
)

SCHEMES = [("torch", {}), ("gaussian", {}), ("gaussian", {"sigma_w": 2.0, "sigma_b": 0.5}),
           ("he", {"bias": True}), ("glorot", {"bias": True}), ("he", {"bias": 0.3}),
           ("glorot", {"bias": 0.7}), ("torch", {"scale": 3.0}), ("torch", {"first_scale": 0.2})]


def _breakpoints(scheme, n_networks, seed):
    w, b, _, _ = sample_init(scheme, seed=seed, n_networks=n_networks)
    return (-b / w).ravel()


@pytest.mark.parametrize("name,kw", SCHEMES)
def test_ks_against_analytic_density(name, kw):
    scheme = init_scheme(name, 50, **kw)
    density = breakpoint_density(scheme)
    beta = _breakpoints(scheme, 100, seed=1)
    assert stats.kstest(beta, density.cdf).pvalue > 1e-3
    # the test can fail: the same sample against a wrongly scaled law is rejected
    wrong = type(density)(density.kind, density.w, type(density.b)(density.b.kind, 3 * density.b.scale))
    assert stats.kstest(beta, wrong.cdf).pvalue < 1e-6


@pytest.mark.parametrize("name,kw", SCHEMES)
def test_pdf_is_the_derivative_of_cdf(name, kw):
    density = breakpoint_density(init_scheme(name, 10, **kw))
    z = np.array([-7.3, -1.9, -0.4, 0.05, 0.3, 0.99, 1.7, 12.0])
    h = 1e-6
    np.testing.assert_allclose((density.cdf(z + h) - density.cdf(z - h)) / (2 * h), density.pdf(z),
                               rtol=1e-5)
    total = integrate.quad(density.pdf, -np.inf, np.inf, limit=400)[0]
    assert abs(total - 1) < 1e-6


def test_torch_default_breakpoint_law_of_real_modules():
    # nn.Linear's own initialiser (global RNG forked, so the caller's state is untouched)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        beta = np.concatenate([to_spline(torch.nn.Sequential(torch.nn.Linear(1, 64), torch.nn.ReLU(),
                                                             torch.nn.Linear(64, 1))).breakpoints
                               for _ in range(60)])
    density = breakpoint_density(init_scheme("torch", 64))
    assert stats.kstest(beta, density.cdf).pvalue > 1e-3
    assert abs(np.mean(np.abs(beta) <= 1) - 0.5) < 4 * math.sqrt(0.25 / beta.size)


def test_zero_bias_inits_put_every_breakpoint_at_zero():
    for init in ("he", "glorot"):
        s = to_spline(netatlas.nets.mlp([1, 32, 1], init=init, seed=2))
        assert np.all(s.breakpoints == 0.0)
        assert breakpoint_density(init_scheme(init, 32)).kind == "point_mass"


@pytest.mark.parametrize("width", [1, 10, 100])
def test_expected_roughness_closed_forms(width):
    H = width
    assert math.isclose(expected_roughness(init_scheme("torch", H)).l2, 1 / 9, rel_tol=1e-12)
    assert math.isclose(expected_roughness(init_scheme("torch", H)).l1, math.sqrt(H) / 4, rel_tol=1e-12)
    assert math.isclose(expected_roughness(init_scheme("glorot", H)).l2, 4 * H / (H + 1) ** 2, rel_tol=1e-12)
    assert math.isclose(expected_roughness(init_scheme("he", H)).l2, 4.0, rel_tol=1e-12)
    assert math.isclose(expected_roughness(init_scheme("torch", H, scale=2.0)).l2, 16 / 9, rel_tol=1e-12)


@pytest.mark.parametrize("name,kw,width", [("torch", {}, 8), ("torch", {}, 200), ("glorot", {}, 50),
                                           ("he", {}, 50), ("gaussian", {}, 30), ("glorot", {"bias": True}, 40),
                                           ("he", {"bias": 0.5}, 20)])
def test_sampled_roughness_within_sampling_error(name, kw, width):
    scheme = init_scheme(name, width, **kw)
    analytic = expected_roughness(scheme, x_range=(-1.0, 1.0))
    sampled = sampled_roughness(scheme, n_networks=4000, seed=11, x_range=(-1.0, 1.0))
    mean, err = sampled.mean(), sampled.stderr()
    for key in ("l2", "l1", "tv"):
        # b = 0: the TV value is a large-H Gaussian approximation (allow 3 % on top of sampling error)
        slack = 0.03 * analytic.tv if (key == "tv" and scheme.b.kind == "zero") else 1e-12
        assert abs(mean[key] - getattr(analytic, key)) < 5 * err[key] + slack, (key, mean, analytic)


def test_torch_default_tv_inside_unit_interval_by_hand():
    # E TV(f' on (-1,1)) = H E|v| E[|w| 1{|b| < |w|}] = H/(2 sqrt H) * int_0^1 w * w dw = sqrt(H)/6
    for H in (4, 25):
        assert math.isclose(expected_roughness(init_scheme("torch", H), x_range=(-1, 1)).tv,
                            math.sqrt(H) / 6, rel_tol=1e-9)


def test_validation_messages():
    with pytest.raises(ValueError, match="unknown init 'xavier'"):
        init_scheme("xavier", 3)
    with pytest.raises(ValueError, match="width must be >= 1"):
        init_scheme("torch", 0)
    with pytest.raises(ValueError, match="no density"):
        breakpoint_density(init_scheme("he", 3)).pdf(0.0)
