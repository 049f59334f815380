"""Self-supervised objectives against slow float64 references and closed forms."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from netatlas.train._ssl import barlow_twins_loss, nt_xent_loss, ssl_loss


def slow_barlow(z1, z2, lambda_offdiag, eps):
    z1, z2 = np.asarray(z1, dtype=np.float64), np.asarray(z2, dtype=np.float64)
    n, d = z1.shape
    a = (z1 - z1.mean(0)) / np.sqrt(z1.var(0) + eps)
    b = (z2 - z2.mean(0)) / np.sqrt(z2.var(0) + eps)
    total = 0.0
    for i in range(d):
        for j in range(d):
            c = sum(a[k, i] * b[k, j] for k in range(n)) / n
            total += (1 - c) ** 2 if i == j else lambda_offdiag * c**2
    return total


def slow_nt_xent(z1, z2, t):
    u = np.concatenate([np.asarray(z1, np.float64), np.asarray(z2, np.float64)])
    u = u / np.linalg.norm(u, axis=1, keepdims=True)
    n2 = len(u)
    n = n2 // 2
    losses = []
    for a in range(n2):
        positive = (a + n) % n2
        denominator = sum(math.exp(u[a] @ u[b] / t) for b in range(n2) if b != a)
        losses.append(-math.log(math.exp(u[a] @ u[positive] / t) / denominator))
    return float(np.mean(losses))


def _pair(seed, n, d):
    g = torch.Generator().manual_seed(seed)
    z1 = torch.randn(n, d, generator=g, dtype=torch.float64)
    return z1, z1 + 0.3 * torch.randn(n, d, generator=g, dtype=torch.float64)


@given(seed=st.integers(0, 10_000), n=st.integers(2, 9), d=st.integers(1, 5),
       lam=st.sampled_from([0.0, 5e-3, 1.0]))
@settings(max_examples=25, deadline=None)
def test_barlow_matches_slow_reference(seed, n, d, lam):
    z1, z2 = _pair(seed, n, d)
    fast = float(barlow_twins_loss(z1, z2, lambda_offdiag=lam))
    assert fast == pytest.approx(slow_barlow(z1, z2, lam, 1e-5), rel=1e-10, abs=1e-12)


@given(seed=st.integers(0, 10_000), n=st.integers(2, 8), d=st.integers(1, 5),
       t=st.sampled_from([0.1, 0.5, 2.0]))
@settings(max_examples=25, deadline=None)
def test_nt_xent_matches_slow_reference(seed, n, d, t):
    z1, z2 = _pair(seed, n, d)
    assert float(nt_xent_loss(z1, z2, temperature=t)) == pytest.approx(slow_nt_xent(z1, z2, t), rel=1e-10)


@pytest.mark.parametrize("n,d", [(8, 3), (32, 8), (5, 4)])
def test_barlow_zero_for_decorrelated_identical_standardized_views(n, d):
    g = torch.Generator().manual_seed(n)
    raw = torch.randn(n, d, generator=g, dtype=torch.float64)
    q, _ = torch.linalg.qr(raw - raw.mean(0))  # orthonormal columns, each orthogonal to the ones vector
    z = q * math.sqrt(n)                       # mean 0, biased variance 1, uncorrelated: C = I
    assert float(barlow_twins_loss(z, z, eps=0.0)) == pytest.approx(0.0, abs=1e-20 + 1e-12)
    # per-dimension affine maps leave the standardised views, hence the loss, unchanged
    scaled = 3.0 * z + torch.arange(d, dtype=torch.float64)
    assert float(barlow_twins_loss(scaled, z, eps=0.0)) == pytest.approx(0.0, abs=1e-12)
    # correlated dimensions cost lambda * sum of squared off-diagonals
    dup = torch.cat([z[:, :1], z[:, :1]], 1)
    assert float(barlow_twins_loss(dup, dup, eps=0.0, lambda_offdiag=0.5)) == pytest.approx(0.5 * 2, rel=1e-12)


@pytest.mark.parametrize("n,d,t", [(4, 4, 0.5), (3, 7, 0.1), (6, 10, 1.0)])
def test_nt_xent_identical_orthogonal_views_closed_form(n, d, t):
    g = torch.Generator().manual_seed(d)
    q, _ = torch.linalg.qr(torch.randn(d, n, generator=g, dtype=torch.float64))
    z = q.T * torch.rand(n, 1, generator=g, dtype=torch.float64).add(0.5)  # norms do not matter
    expected = math.log(1 + (2 * n - 2) * math.exp(-1 / t))
    assert float(nt_xent_loss(z, z, temperature=t)) == pytest.approx(expected, rel=1e-12)


def test_nt_xent_is_lower_for_aligned_views():
    z1, z2 = _pair(0, 16, 8)
    shuffled = z2[torch.randperm(16, generator=torch.Generator().manual_seed(1))]
    assert nt_xent_loss(z1, z2) < nt_xent_loss(z1, shuffled)


def test_losses_are_differentiable():
    z1, z2 = (t.requires_grad_() for t in _pair(3, 10, 4))
    (barlow_twins_loss(z1, z2) + nt_xent_loss(z1, z2)).backward()
    assert torch.isfinite(z1.grad).all() and z1.grad.abs().sum() > 0


def test_loss_errors():
    z = torch.zeros(4, 3)
    with pytest.raises(ValueError, match=r"must both have shape \(N, D\); got \(4, 3\) and \(4, 2\)"):
        barlow_twins_loss(z, z[:, :2])
    with pytest.raises(ValueError, match="at least 2 examples"):
        nt_xent_loss(z[:1], z[:1])
    with pytest.raises(ValueError, match="temperature must be > 0"):
        nt_xent_loss(z, z, temperature=0.0)
    with pytest.raises(TypeError, match="z1 must be a torch.Tensor"):
        nt_xent_loss(np.zeros((4, 3)), z)
    with pytest.raises(ValueError, match="unknown objective 'byol'"):
        ssl_loss("byol", z, z)
