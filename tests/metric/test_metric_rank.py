"""effective_volume(k="rank") on features that factor through a narrower layer."""

import numpy as np
import torch
from torch import nn

import netatlas


def test_rank_effective_volume_matches_svd_reference():
    torch.manual_seed(0)
    # 6 inputs -> 3-d representation -> 8-d projector: J (8 x 6) has rank 3, so min(m, d) = 6 sums zeros
    model = nn.Sequential(nn.Linear(6, 3), nn.Tanh(), nn.Linear(3, 8)).double()
    x = torch.randn(5, 6, dtype=torch.float64)
    full = netatlas.metric.effective_volume(model, x)
    assert np.isneginf(full).all()
    got = netatlas.metric.effective_volume(model, x, k="rank")
    for i in range(5):
        J = torch.autograd.functional.jacobian(model, x[i : i + 1]).reshape(8, 6) / np.sqrt(8)
        sigma = torch.linalg.svdvals(J)
        expected = torch.log10(sigma[:3]).sum()
        assert np.isclose(got[i], float(expected), rtol=1e-10, atol=1e-10)
        assert sigma[3] < 1e-12 * sigma[0]
