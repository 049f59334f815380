"""Piecewise-linear ops lowered to ReLUs (issue 28): Abs = relu(x) + relu(-x), max(a, b) = a + relu(b - a),
min(a, b) = a - relu(a - b), clamp by tensors = min(max(x, lo), hi). Against onnxruntime (float32
round-off bound) and torch (float64), and exact regions: the same partition as the same function built
from ``Max`` (arg-max regions, an independent kernel), and the forward pass's maps and patterns."""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from onnx import helper
from test_nets_onnx import check_graph, make_model
from torch import nn

from netatlas import Plane
from netatlas.nets import Max, from_torch
from netatlas.nets._ir import Activation, Concat, Linear, Net, Node
from netatlas.regions import partition

sys.path.insert(0, str(Path(__file__).parents[1] / "regions"))
from test_regions_max import check_exact  # noqa: E402


def test_abs_max_min_agree_with_onnxruntime():
    rng = np.random.default_rng(0)
    split = helper.make_node("Split", ["x", "s"], ["a", "b"], axis=1)
    inits = [("s", np.array([2, 2], np.int64))]
    cases = [
        ([helper.make_node("Abs", ["x"], ["y"])], [], ["N", 4]),
        ([split, helper.make_node("Max", ["a", "b"], ["y"])], inits, ["N", 2]),
        ([split, helper.make_node("Min", ["a", "b", "c"], ["y"])], [*inits, ("c", [0.25, -0.5])], ["N", 2]),
        ([helper.make_node("Max", ["x", "c"], ["y"])], [("c", rng.standard_normal(4))], ["N", 4]),
        ([split, helper.make_node("Max", ["a", "b", "c", "d"], ["y"])], [*inits, ("c", [0.1, 0.2]), ("d", [0.3])],
         ["N", 2]),
    ]
    for nodes, extra, out in cases:
        net, x, got = check_graph(make_model(nodes, ["N", 4], out, extra), (64, 4), scale=2.0)
        assert net.piecewise_linear and all(net.nodes[i].op.name == "relu" for i in net.activations)
    # the float64 closed form of the last case
    expected = np.maximum(np.maximum(x[:, :2], x[:, 2:]), np.float32([0.3, 0.3]).astype(float))
    np.testing.assert_allclose(got, expected, rtol=0, atol=4 * np.finfo(float).eps * (1 + np.abs(x).max()))


class _PiecewiseOps(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(1)
        self.fc1, self.fc2 = nn.Linear(2, 6), nn.Linear(3, 2)

    def forward(self, x):
        h = self.fc1(x)
        a, b = h[:, :3], h[:, 3:]
        m = torch.maximum(a, b) - torch.minimum(a, torch.abs(b))
        m = torch.clamp(m, min=torch.tensor([-0.5, 0.0, 0.1]), max=torch.tensor([2.0, 1.0, 3.0]))
        return self.fc2(m)


def test_from_torch_abs_maximum_minimum_clamp_agree_with_torch_in_float64():
    model = _PiecewiseOps().eval()
    net = from_torch(model, (2,))
    assert net.piecewise_linear
    x = torch.randn(50, 2, dtype=torch.float64) * 3
    assert torch.allclose(net(x), model.double()(x), rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("method", ["graph"])
def test_regions_of_max_min_abs_are_exact(method):
    net = from_torch(_PiecewiseOps().eval(), (2,))
    plane = Plane.square(2.0)
    part = partition(net, plane, method=method)
    check_exact(net, plane, part)


def _two_nets(W, b, kind):
    """The same function two ways: lowered to ReLUs (the importer's lowering) and with a ``Max`` op."""
    n = W.shape[0] // 2
    linear = Linear(torch.tensor(W), torch.tensor(b))
    a_sel = Linear(torch.eye(2 * n)[:n].double(), torch.zeros(n, dtype=torch.float64))
    b_sel = Linear(torch.eye(2 * n)[n:].double(), torch.zeros(n, dtype=torch.float64))
    model = _Pair(linear, kind)
    relus = from_torch(model, (2,))
    # Max over windows {a_j, b_j} of the concatenation [a, b]: an independent region rule (arg-maxes)
    nodes = [Node(relus.nodes[0].op, (), (2,), "input"), Node(linear, (0,), (2 * n,), "fc")]
    if kind == "abs":  # |z| = max(z, -z) on the first n units
        neg = Linear(-torch.eye(2 * n)[:n].double(), torch.zeros(n, dtype=torch.float64))
        nodes += [Node(a_sel, (1,), (n,), "a"), Node(neg, (1,), (n,), "b")]
    else:
        nodes += [Node(a_sel, (1,), (n,), "a"), Node(b_sel, (1,), (n,), "b")]
    nodes.append(Node(Concat(0, ((n,), (n,))), (2, 3), (2 * n,), "cat"))
    nodes.append(Node(Max.from_windows([[j, n + j] for j in range(n)], (2 * n,), (n,)), (4,), (n,), "max"))
    nodes.append(Node(Linear(torch.ones(1, n, dtype=torch.float64), torch.zeros(1, dtype=torch.float64)), (5,),
                      (1,), "sum"))
    return relus, Net(nodes)


class _Pair(nn.Module):
    def __init__(self, linear, kind):
        super().__init__()
        self.fc = nn.Linear(2, linear.weight.shape[0]).double()
        with torch.no_grad():
            self.fc.weight.copy_(linear.weight)
            self.fc.bias.copy_(linear.bias)
        self.fc = self.fc.float()
        self.kind = kind

    def forward(self, x):
        h = self.fc(x)
        n = h.shape[1] // 2
        out = torch.abs(h[:, :n]) if self.kind == "abs" else torch.maximum(h[:, :n], h[:, n:])
        return out.sum(dim=1, keepdim=True)


@pytest.mark.parametrize("kind", ["abs", "max"])
def test_relu_lowering_has_the_regions_of_the_max_op(kind):
    """relu(x) + relu(-x) and a + relu(b - a) cut the plane exactly where Max(x, -x) and Max(a, b) do."""
    rng = np.random.default_rng(3)
    W = rng.standard_normal((8, 2)).astype(np.float32).astype(np.float64)
    b = rng.standard_normal(8).astype(np.float32).astype(np.float64)
    relus, maxes = _two_nets(W, b, kind)
    plane = Plane.square(2.0)
    x = plane.to_input(rng.uniform(-2, 2, (100, 2)))
    np.testing.assert_allclose(relus(x), maxes(x), rtol=1e-12, atol=1e-12)
    p_relu, p_max = partition(relus, plane, method="graph"), partition(maxes, plane, method="graph")
    check_exact(relus, plane, p_relu)
    assert p_relu.num_regions == p_max.num_regions
    np.testing.assert_allclose(np.sort(p_relu.areas), np.sort(p_max.areas), rtol=1e-9, atol=1e-12)


def test_max_of_a_value_with_itself_does_not_cut():
    """max(h, h): the difference vanishes identically, so its ReLU never cuts (the vanishing-unit rule)."""
    torch.manual_seed(2)
    fc = nn.Linear(2, 3)

    class Same(nn.Module):
        def forward(self, x):
            h = fc(x)
            return torch.maximum(h, h * 1.0).sum(dim=1, keepdim=True)

    net = from_torch(Same().eval(), (2,))
    assert any(isinstance(n.op, Activation) for n in net.nodes)
    assert partition(net, Plane.square(2.0), method="graph").num_regions == 1
