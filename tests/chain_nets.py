"""Nets the chain-path tests share: a briefly trained 2-40-40-2 MLP and a degenerate 2-48-48-3 one."""

import torch
from torch import nn


def trained_chain(seed):
    """A 2-40-40-2 ReLU MLP after 60 Adam steps on a sine boundary in [-1, 1]^2."""
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(2, 40), nn.ReLU(), nn.Linear(40, 40), nn.ReLU(), nn.Linear(40, 2))
    x = torch.rand(256, 2) * 2 - 1
    y = ((x[:, 0] * 3).sin() > x[:, 1]).long()
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    for _ in range(60):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    return model.eval()


def degenerate_chain(seed):
    """A 2-48-48-3 ReLU MLP with duplicated units, units with no slope, a zero unit, an exact zero row and
    lines through one point."""
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(2, 48), nn.ReLU(), nn.Linear(48, 48), nn.ReLU(), nn.Linear(48, 3))
    with torch.no_grad():
        for lin in (model[0], model[2]):
            lin.weight[3], lin.bias[3] = lin.weight[1], lin.bias[1]
            lin.weight[4] = 0.0
            lin.weight[7], lin.bias[7] = 0.0, 0.0
        model[0].bias[10:14] = 0.0
        model[2].weight[20] = model[2].weight[21] - model[2].weight[21]  # exact zero row
    return model.eval()
