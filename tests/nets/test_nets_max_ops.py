"""Max pooling, adaptive pools, hardtanh/clamps, concatenation and amax in the IR agree with torch in
float64 (walk and torch.export), and bad pooling arguments are refused with a clear message."""

import copy

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from netatlas.nets import from_torch
from netatlas.nets._ir import Activation, Max

RTOL = 1e-12


def assert_agrees(module, input_shape, n=5, seed=0):
    net = from_torch(module, input_shape)
    x = torch.randn(n, *input_shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    with torch.no_grad():
        reference = copy.deepcopy(module).double().eval()(x).reshape(n, -1)
    got = net(x)
    assert got.shape == reference.shape
    assert ((got - reference).abs().max() / reference.abs().max().clamp_min(1e-300)).item() < RTOL
    return net


SEQUENTIAL = {
    "maxpool2d": (lambda: nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                                        nn.Linear(3 * 4 * 4, 2)), (1, 8, 8)),
    "maxpool2d-ceil-pad-dil": (lambda: nn.Sequential(nn.Conv2d(2, 3, 3), nn.MaxPool2d(3, 2, 1, dilation=(1, 2),
                                                                                        ceil_mode=True)), (2, 9, 10)),
    "maxpool1d": (lambda: nn.Sequential(nn.Conv1d(1, 2, 3), nn.ReLU(), nn.MaxPool1d(3, 2, 1, ceil_mode=True)),
                  (1, 12)),
    "adaptive": (lambda: nn.Sequential(nn.Conv2d(1, 2, 3), nn.AdaptiveMaxPool2d((3, 2)), nn.AdaptiveAvgPool2d((2, 1)),
                                       nn.Flatten(), nn.Linear(4, 1)), (1, 9, 7)),
    "adaptive1d": (lambda: nn.Sequential(nn.Conv1d(1, 2, 2), nn.AdaptiveMaxPool1d(4), nn.AdaptiveAvgPool1d(3)),
                   (1, 11)),
    "relu6-hardtanh": (lambda: nn.Sequential(nn.Linear(3, 8), nn.ReLU6(), nn.Linear(8, 8), nn.Hardtanh(-0.3, 0.4),
                                             nn.Linear(8, 2)), (3,)),
}


@pytest.mark.parametrize("case", sorted(SEQUENTIAL))
def test_sequential_max_layers_agree_with_torch(case):
    build, shape = SEQUENTIAL[case]
    torch.manual_seed(0)
    assert_agrees(build(), shape)


class Functional(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)

    def forward(self, x):
        h = self.conv(x)
        a = F.max_pool2d(h, 2, ceil_mode=True)
        b = F.adaptive_max_pool2d(h, (2, 3))
        c = F.adaptive_avg_pool2d(h, (2, 3))
        d = torch.clamp(h, -1, 2) + F.relu6(h) + F.hardtanh(h) + torch.clamp(h, min=0.5) + h.clamp_max(0.1)
        e = torch.cat([b, c], 1).amax(dim=(2,))
        f = torch.max(h, dim=1)[0]
        g = F.max_pool1d(h.flatten(2), 3)
        return torch.cat([a.flatten(1), d.flatten(1), e.flatten(1), f.flatten(1), g.flatten(1)], 1)


def test_exported_max_ops_agree_with_torch():
    torch.manual_seed(0)
    net = assert_agrees(Functional(), (1, 8, 8))
    kinds = {type(n.op).__name__ for n in net.nodes}
    assert {"Max", "Concat", "AdaptiveAvgPool"} <= kinds
    assert net.piecewise_linear


def test_max_pool_with_indices_is_refused_in_a_walk():
    with pytest.raises(Exception, match="return_indices"):
        from_torch(nn.Sequential(nn.Conv2d(1, 1, 3), nn.MaxPool2d(2, return_indices=True)), (1, 6, 6))


@settings(max_examples=40, deadline=None)
@given(c=st.integers(1, 2), h=st.integers(3, 9), w=st.integers(3, 9), k=st.integers(1, 4), s=st.integers(1, 3),
       p=st.integers(0, 2), d=st.integers(1, 2), ceil=st.booleans(), seed=st.integers(0, 99))
def test_max_pool_matches_torch_for_any_arguments(c, h, w, k, s, p, d, ceil, seed):
    if 2 * p > k or d * (k - 1) + 1 > min(h, w) + 2 * p:
        with pytest.raises(ValueError):
            Max.pool((c, h, w), k, s, p, d, ceil)
            if 2 * p > k:
                return
            F.max_pool2d(torch.zeros(1, c, h, w), k, s, p, d, ceil)  # torch refuses too
        return
    op = Max.pool((c, h, w), k, s, p, d, ceil)
    x = torch.randn(3, c, h, w, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    x = x.round(decimals=1)  # ties are frequent
    ref = F.max_pool2d(x, k, s, p, d, ceil)
    assert op.output_shape == tuple(ref.shape[1:])
    assert torch.equal(op(x.flatten(1)), ref.flatten(1))
    # the arg-max is the first (lowest input index) maximal entry of each window
    choice = op.argmax(x.flatten(1))
    rows = op.index[torch.arange(op.size)[None].expand(3, -1), choice.long()]
    assert torch.equal(x.flatten(1).gather(1, rows), ref.flatten(1))
    ties = (x.flatten(1)[:, op.index.clamp_min(0)] == ref.flatten(1)[:, :, None]) & (op.index >= 0)
    assert torch.equal(choice.long(), ties.to(torch.int8).argmax(2))


def test_max_rows_are_sorted_and_padding_is_absent():
    op = Max.pool((1, 3, 3), 2, 2, 1)  # windows at the corners overlap the padding
    assert op.output_shape == (1, 2, 2)
    assert op.index.tolist()[0] == [0, -1, -1, -1]
    assert op.index.tolist()[3] == [4, 5, 7, 8]


def test_hardtanh_breakpoints_and_validation():
    assert Activation.hardtanh(0, 6).breakpoints == (0.0, 6.0)
    assert Activation.hardtanh(0.5, float("inf")).breakpoints == (0.5,)
    with pytest.raises(ValueError, match="min_val"):
        Activation.hardtanh(1.0, 1.0)
    z = torch.tensor([-1.0, 0.0, 3.0, 6.0, 7.0])
    assert Activation.hardtanh(0, 6).derivative(z).tolist() == [0.0, 1.0, 1.0, 0.0, 0.0]


def test_bad_max_index_is_refused():
    with pytest.raises(ValueError, match="index"):
        Max(torch.tensor([[-1, 0]]), (2,), (1,))
    with pytest.raises(ValueError, match="index"):
        Max(torch.tensor([[0, 5]]), (2,), (1,))


def test_n_parameters_counts_weights_not_max_pool_windows():
    from netatlas.nets import zoo

    model = zoo.lenet5()
    net = from_torch(model, (1, 28, 28))
    assert any(isinstance(node.op, Max) for node in net.nodes)
    assert net.n_parameters == sum(p.numel() for p in model.parameters())
