"""The excess losses: the stable form against the naive one, its derivatives against autograd."""

import numpy as np
import pytest
import torch
from torch.func import grad, hessian

import netatlas.lowrank as lr


def test_stable_excess_loss_matches_naive_and_is_accurate_at_small_eps():
    j = lr.local_joint(7, 4, k=2, eps_fraction=0.5, seed=0)
    rng = np.random.default_rng(0)
    logits = np.log(j.p_y) + 0.3 * rng.normal(size=(7, 4))
    q = np.exp(logits - logits.max(1, keepdims=True))
    q /= q.sum(1, keepdims=True)
    cond = j.p_xy / j.p_xy.sum(1, keepdims=True)
    naive = float(np.sum(j.p_xy * (np.log(cond) - np.log(q))))
    assert lr.softmax_excess_loss(j.p_xy, logits) == pytest.approx(naive, rel=1e-10)
    # tiny eps: the stable form keeps ~eps^2 accuracy where cross-entropy minus entropy cannot
    j = lr.local_joint(7, 4, k=2, eps_fraction=1e-6, seed=0)
    opt = lr.optimal_softmax_layer(j.p_xy, 2)
    exact = lr.softmax_excess_loss(j.p_xy, opt.logits())
    assert exact == pytest.approx(opt.excess_loss, rel=1e-4)
    # adding a constant per row changes nothing
    shifted = opt.logits() + np.arange(7)[:, None]
    assert lr.softmax_excess_loss(j.p_xy, shifted) == pytest.approx(exact, rel=1e-9)


def test_softmax_derivatives_against_autograd():
    j = lr.local_joint(5, 4, k=2, eps_fraction=0.3, seed=1)
    p = torch.from_numpy(j.p_xy)
    h = torch.randn(5, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 0.2
    g, blocks = lr.softmax_excess_derivatives(h, p)
    g_ref = grad(lambda t: lr.softmax_excess_loss_torch(t, p))(h)
    h_ref = hessian(lambda t: lr.softmax_excess_loss_torch(t, p))(h)
    torch.testing.assert_close(g, g_ref)
    for x in range(5):
        torch.testing.assert_close(blocks[x], h_ref[x, :, x, :])
    h_ref[torch.arange(5), :, torch.arange(5), :] = 0
    assert float(h_ref.abs().max()) == 0  # block diagonal over x


def test_y_values_are_one_hot_by_default_and_checked():
    np.testing.assert_array_equal(lr.check_y_values(None, 3), np.eye(3))
    np.testing.assert_array_equal(lr.check_y_values([1.0, 2.0, 5.0], 3), [[1.0], [2.0], [5.0]])
    with pytest.raises(ValueError, match=r"mmse_matrix: y_values must be \(\|Y\|, d\) with \|Y\| = 3"):
        lr.check_y_values(np.zeros((2, 2)), 3, "mmse_matrix")
