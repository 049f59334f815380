"""Import is all or nothing: a top-level layer is a one-layer net, a module whose forward the
Sequential walker cannot see goes through torch.export (or is refused by name), and non-finite
weights are refused naming the layer."""

import json

import pytest
import torch
from torch import nn

import netatlas
from netatlas.nets import from_torch


def _agrees(module, input_shape, n=7):
    net = from_torch(module, input_shape)
    x = torch.randn(n, *input_shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = module.double()(x.double()).flatten(1)
    got = net(x.double())
    # float64 both ways: round-off of a few dot products
    assert torch.allclose(got, expected, rtol=1e-12, atol=1e-12), (got - expected).abs().max()
    return net


@pytest.mark.parametrize("module, shape", [
    (nn.Linear(2, 3), (2,)),
    (nn.Conv2d(1, 2, 3, padding=1), (1, 5, 5)),
    (nn.Conv1d(2, 3, 2), (2, 6)),
])
def test_a_top_level_layer_is_a_one_layer_net(module, shape):
    torch.manual_seed(0)
    net = _agrees(module, shape)
    assert len(net.nodes) == 2 and net.n_hidden_units == 0


def test_a_top_level_activation_is_a_one_layer_net():
    net = from_torch(nn.ReLU(), (3,))
    x = torch.tensor([[-1.0, 0.5, 2.0]], dtype=torch.float64)
    assert net(x).tolist() == [[0.0, 0.5, 2.0]] and net.n_hidden_units == 3


class _Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(3, 5), nn.Linear(5, 3)

    def forward(self, x):
        return x + self.fc2(torch.relu(self.fc1(x)))


def test_a_custom_block_goes_through_export():
    torch.manual_seed(1)
    net = _agrees(_Block(), (3,))
    assert net.n_hidden_units == 5


def test_multihead_attention_is_refused_by_name():
    with pytest.raises(netatlas.UnsupportedLayerError, match=r"MultiheadAttention at the top level"):
        from_torch(nn.MultiheadAttention(4, 1))
    with pytest.raises(netatlas.UnsupportedLayerError, match=r"MultiheadAttention at '1' \(position 1\)"):
        from_torch(nn.Sequential(nn.Linear(4, 4), nn.MultiheadAttention(4, 1)))


class _DoubledLinear(nn.Linear):
    def forward(self, x):
        return 2 * super().forward(x)


class _ShiftedSequential(nn.Sequential):
    def forward(self, x):
        return super().forward(x) + 1.0


class _PlainLinear(nn.Linear):
    """A subclass that keeps torch's forward: still walked as a Linear."""


@pytest.mark.parametrize("make", [
    lambda: _DoubledLinear(2, 3),
    lambda: nn.Sequential(nn.Linear(2, 4), nn.ReLU(), _DoubledLinear(4, 1)),
    lambda: _ShiftedSequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 1)),
    lambda: _PlainLinear(2, 3),
])
def test_overridden_forwards_are_not_ignored(make):
    torch.manual_seed(2)
    _agrees(make(), (2,))


def test_forward_hooks_are_not_ignored():
    torch.manual_seed(3)
    model = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 1))
    model[2].register_forward_hook(lambda module, inputs, output: 3 * output)
    _agrees(model, (2,))


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_weights_are_refused_naming_the_layer(tmp_path, value):
    model = netatlas.nets.mlp([2, 4, 4, 1], seed=0)
    with torch.no_grad():
        model[2].weight[1, 3] = value
    with pytest.raises(ValueError, match=r"layer '2' \(Linear\(4 -> 4\)\) has non-finite weights"):
        from_torch(model)
    model[2].weight.data[1, 3] = 0.0
    with torch.no_grad():
        model[0].bias[0] = value
    torch.save(model.state_dict(), tmp_path / "m.pt")
    (tmp_path / "m.json").write_text(json.dumps({"mlp": {"widths": [2, 4, 4, 1]}}))
    with pytest.raises(ValueError, match=r"layer '0' .* non-finite"):
        netatlas.nets.load(tmp_path / "m.pt")


def test_non_finite_batchnorm_statistics_are_refused():
    model = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3)).eval()
    model[1].running_var[0] = float("nan")
    with pytest.raises(ValueError, match="non-finite weights"):
        from_torch(model)
