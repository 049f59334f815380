"""fit_ssl: learns (loss falls), deterministic on CPU, leaves modes, validates."""

import pytest
import torch
from torch import nn

import netatlas.data
from netatlas.train._ssl import fit_ssl


def _modules(seed=0):
    torch.manual_seed(seed)
    encoder = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.GELU())
    projector = nn.Sequential(nn.Linear(32, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Linear(32, 16))
    return encoder, projector


@pytest.mark.slow  # one of the suite's slowest (--durations, > 15 s on one core)
@pytest.mark.parametrize("objective", ["barlow", "simclr"])
def test_fit_ssl_learns_and_is_deterministic(objective):
    data = netatlas.data.digits(n=400, seed=0)
    runs = []
    for _ in range(2):
        encoder, projector = _modules()
        encoder.eval()
        history = fit_ssl(encoder, projector, data, objective, epochs=6, batch_size=100, lr=3e-3, seed=1)
        runs.append((history, encoder, projector))
    (h1, e1, p1), (h2, e2, p2) = runs
    assert h1.loss.shape == (6,) and h1.n_steps == 18  # 300 train images // 100 per batch x 6 epochs
    assert h1.loss[-1] < h1.loss[0]
    assert all(torch.equal(a, b) for a, b in zip(e1.state_dict().values(), e2.state_dict().values(), strict=True))
    assert all(torch.equal(a, b) for a, b in zip(p1.state_dict().values(), p2.state_dict().values(), strict=True))
    assert not e1.training and p1.training  # modes restored
    assert h1.to_dict()["settings"]["seed"] == 1


def test_fit_ssl_errors():
    encoder, projector = _modules()
    with pytest.raises(ValueError, match=r"shape \(N, C, H, W\); got \(10, 64\)"):
        fit_ssl(encoder, projector, torch.zeros(10, 64))
    with pytest.raises(ValueError, match="batch_size must be an int >= 2; got 1"):
        fit_ssl(encoder, projector, torch.zeros(10, 1, 8, 8), batch_size=1)
    with pytest.raises(TypeError, match="projector must be a torch.nn.Module"):
        fit_ssl(encoder, "mlp", torch.zeros(10, 1, 8, 8))
