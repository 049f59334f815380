"""Linear ops as sparse GatherLinear maps (issue 28): Slice, Split, Tile, Expand, Gather, Transpose of
any size, ReduceSum/ReduceMean over any axes, Sum/Mean of n inputs, Pad in every mode. Each against
onnxruntime (float32 round-off bound, ``test_nets_onnx.assert_roundoff_close``) and a float64 NumPy
closed form (exact: a selection makes no rounding), the same through ``from_torch`` against torch in
float64, and exact regions for nets using them (against the same net with each GatherLinear replaced by
its dense Linear, and against the forward pass)."""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from onnx import helper
from test_nets_onnx import check_graph, make_model
from torch import nn

from netatlas import Plane
from netatlas.nets import GatherLinear, Net, Node, from_onnx, from_torch
from netatlas.nets._ir import Linear
from netatlas.regions import partition
from netatlas.regions._affine import affine_matrix

sys.path.insert(0, str(Path(__file__).parents[1] / "regions"))
from test_regions_max import check_exact, three_inputs  # noqa: E402

I64 = lambda *v: np.array(v, dtype=np.int64)  # noqa: E731

# (name, nodes, initializers, per-sample input shape, output shape, float64 closed form of a (B, ...) batch)
CASES = [
    ("slice", [helper.make_node("Slice", ["x", "s", "e", "a", "st"], ["y"])],
     [("s", I64(1, -1)), ("e", I64(3, -100)), ("a", I64(1, 2)), ("st", I64(1, -2))], (4, 5), ["N", 2, 3],
     lambda x: x[:, 1:3, ::-2]),
    ("transpose", [helper.make_node("Transpose", ["x"], ["y"], perm=[0, 3, 1, 2])], [], (3, 4, 2), ["N", 2, 3, 4],
     lambda x: x.transpose(0, 3, 1, 2)),
    ("gather", [helper.make_node("Gather", ["x", "i"], ["y"], axis=2)], [("i", I64(3, -1, 0, 0))], (3, 4),
     ["N", 3, 4], lambda x: x[:, :, [3, 3, 0, 0]]),
    ("gather-scalar", [helper.make_node("Gather", ["x", "i"], ["y"], axis=1)], [("i", np.array(2, np.int64))],
     (3, 4), ["N", 4], lambda x: x[:, 2]),
    ("tile", [helper.make_node("Tile", ["x", "r"], ["y"])], [("r", I64(1, 2, 3))], (3, 4), ["N", 6, 12],
     lambda x: np.tile(x, (1, 2, 3))),
    ("expand", [helper.make_node("Expand", ["x", "r"], ["y"])], [("r", I64(1, 3, 4))], (1, 4), ["N", 3, 4],
     lambda x: np.broadcast_to(x, (len(x), 3, 4))),
    ("reduce-sum", [helper.make_node("ReduceSum", ["x", "a"], ["y"], keepdims=0)], [("a", I64(1, 3))], (3, 4, 2),
     ["N", 4], lambda x: x.sum(axis=(1, 3))),
    ("reduce-mean", [helper.make_node("ReduceMean", ["x"], ["y"], axes=[-1], keepdims=1)], [], (3, 4), ["N", 3, 1],
     lambda x: x.mean(axis=2, keepdims=True)),
    ("split-sum", [helper.make_node("Split", ["x", "s"], ["a", "b", "c"], axis=2),
                   helper.make_node("Sum", ["a", "b", "c", "b"], ["y"])],
     [("s", I64(2, 2, 2))], (3, 6), ["N", 3, 2], lambda x: x[:, :, 0:2] + 2 * x[:, :, 2:4] + x[:, :, 4:6]),
    ("mean-broadcast", [helper.make_node("Split", ["x", "s"], ["a", "b"], axis=1),
                        helper.make_node("Mean", ["a", "b", "c"], ["y"])],
     [("s", I64(1, 2)), ("c", np.array([0.5, -1.0, 2.0, 0.25], np.float32))], (3, 4), ["N", 2, 4],
     lambda x: (x[:, 0:1] + x[:, 1:3] + np.float32([0.5, -1.0, 2.0, 0.25]).astype(np.float64)) / 3),
    ("pad-reflect", [helper.make_node("Pad", ["x", "p"], ["y"], mode="reflect")], [("p", I64(0, 0, 2, 0, 0, 1))],
     (3, 4), ["N", 3, 7], lambda x: np.pad(x, ((0, 0), (0, 0), (2, 1)), mode="reflect")),
    ("pad-edge", [helper.make_node("Pad", ["x", "p"], ["y"], mode="edge")], [("p", I64(0, 1, 2, 0, 3, 1))],
     (3, 4), ["N", 7, 7], lambda x: np.pad(x, ((0, 0), (1, 3), (2, 1)), mode="edge")),
    ("pad-value", [helper.make_node("Pad", ["x", "p", "v"], ["y"], mode="constant")],
     [("p", I64(0, 0, 2, 0, 0, -1)), ("v", np.array(2.5, np.float32))], (3, 4), ["N", 3, 5],
     lambda x: np.pad(x, ((0, 0), (0, 0), (2, 0)), constant_values=2.5)[:, :, :5]),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_linear_op_agrees_with_onnxruntime_and_the_closed_form(case):
    name, nodes, inits, shape, out_shape, closed_form = case
    model = make_model(nodes, ["N", *shape], out_shape, inits, opset=13 if name == "reduce-mean" else 17)
    net, x, got = check_graph(model, (5, *shape))  # onnxruntime, within the float32 round-off bound
    expected = closed_form(x.reshape(5, *shape)).reshape(5, -1)
    if name in ("reduce-sum", "reduce-mean", "split-sum", "mean-broadcast"):  # k additions in float64
        np.testing.assert_allclose(got, expected, rtol=8 * np.finfo(float).eps, atol=1e-15)
    else:  # a selection, with a constant where padded: exact
        assert np.array_equal(got, expected)
    assert all(not isinstance(n.op, Linear) for n in net.nodes)  # nothing dense


def test_channel_shuffle_transpose_beyond_the_old_dense_limit():
    """A ShuffleNet channel shuffle (reshape, transpose, reshape) on 4,224 entries per sample: as a dense
    permutation 17.8M entries (refused before issue 28); as a GatherLinear, 4,224 indices."""
    g, c, h, w = 2, 64, 6, 5
    nodes = [helper.make_node("Reshape", ["x", "s1"], ["r"]),
             helper.make_node("Transpose", ["r"], ["t"], perm=[0, 2, 1, 3, 4]),
             helper.make_node("Reshape", ["t", "s2"], ["y"])]
    inits = [("s1", I64(-1, g, c, h, w)), ("s2", I64(-1, g * c, h, w))]
    net, x, got = check_graph(make_model(nodes, ["N", g * c, h, w], ["N", g * c, h, w], inits), (2, g * c, h, w))
    (op,) = [n.op for n in net.nodes if isinstance(n.op, GatherLinear)]
    assert op.index.numel() == g * c * h * w
    expected = x.reshape(2, g, c, h, w).transpose(0, 2, 1, 3, 4).reshape(2, -1)
    assert np.array_equal(got, expected)


def test_refusals_name_the_op():
    cases = [
        ([helper.make_node("Slice", ["x", "s", "e", "a"], ["y"], name="bs")], [("s", I64(0)), ("e", I64(1)),
                                                                              ("a", I64(0))], "Slice of the batch"),
        ([helper.make_node("Tile", ["x", "r"], ["y"], name="bt")], [("r", I64(2, 1))], "batch repeat"),
        ([helper.make_node("Gather", ["x", "i"], ["y"], axis=0, name="bg")], [("i", I64(0))], "batch axis"),
        ([helper.make_node("ReduceSum", ["x", "a"], ["y"], name="br")], [("a", I64(0))], "over the batch"),
    ]
    for nodes, inits, match in cases:
        with pytest.raises(Exception, match=match):
            from_onnx(make_model(nodes, ["N", 4], ["N", 4], inits))


class _Sliced(nn.Module):
    """x[:, :k], torch.cat of slices, F.pad(reflect), x.sum(dim), permute, flip, repeat, index_select."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv, self.fc = nn.Conv2d(2, 3, 3), nn.Linear(45, 2)

    def forward(self, x):
        x = torch.cat([x[:, 1:], x[:, :1]], dim=1)  # a channel roll by slices
        x = nn.functional.pad(x, (1, 1, 2, 0), mode="reflect")
        x = torch.relu(self.conv(x))  # (3, 5, 4)
        x = x.permute(0, 1, 3, 2).flip(2) + x.sum(dim=2, keepdim=True).transpose(2, 3).repeat(1, 1, 1, 5) / 5
        x = x.index_select(1, torch.tensor([2, 0, 1])).narrow(2, 1, 3) - x[:, :, [0, 3, 1]].mean(dim=(1,),
                                                                                               keepdim=True)
        return self.fc(torch.relu(x).flatten(1))


def test_from_torch_slices_pads_and_sums_agree_with_torch_in_float64():
    model = _Sliced().eval()
    net = from_torch(model, (2, 5, 4))
    assert any(isinstance(n.op, GatherLinear) for n in net.nodes) and net.piecewise_linear
    x = torch.randn(6, 2, 5, 4, dtype=torch.float64)
    assert torch.allclose(net(x), model.double()(x), rtol=1e-13, atol=1e-13)


def _dense_twin(net):
    """The same net with every GatherLinear replaced by the Linear of its (dense) matrix."""
    nodes = []
    for node in net.nodes:
        op = node.op
        if isinstance(op, GatherLinear):
            W, b = affine_matrix([op], node_size(net, node.inputs[0]))
            op = Linear(torch.from_numpy(W.copy()), torch.from_numpy(b.copy()))
        nodes.append(Node(op, node.inputs, node.shape if not isinstance(op, Linear) else (node.size,), node.name))
    return Net(nodes)


def node_size(net, i):
    return net.nodes[i].size


@pytest.mark.parametrize("method", ["chain", "graph"])
def test_regions_of_sparse_linear_ops_are_exact(method):
    """A chain with a slice, a reflect pad, a tile and a transpose (chain path) or a mean subtracted
    (graph path) between its layers: the regions are those of its dense twin, and their maps and
    patterns are the forward pass's."""
    torch.manual_seed(4)
    l1, l2, l3 = nn.Linear(2, 6), nn.Linear(9, 5), nn.Linear(10, 3)

    class Chain(nn.Module):
        def forward(self, x):
            h = torch.relu(l1(x))[:, 1:5]
            h = nn.functional.pad(h[:, None], (2, 3), mode="reflect")[:, 0]  # (9,)
            h = torch.relu(l2(h)).repeat(1, 2)  # (10,)
            if method == "chain":  # a transpose keeps the chain
                return l3(h.reshape(-1, 2, 5).transpose(1, 2).reshape(-1, 10))
            return l3(h - h.mean(dim=1, keepdim=True))  # a residual subtraction: graph path only

    net = from_torch(Chain().eval(), (2,))
    assert sum(isinstance(n.op, GatherLinear) for n in net.nodes) >= 3
    plane = Plane.square(3.0)
    part = partition(net, plane, method=method)
    check_exact(net, plane, part)
    twin = partition(_dense_twin(net), plane, method="graph")  # consecutive Linears: the graph path
    assert part.num_regions == twin.num_regions
    np.testing.assert_allclose(np.sort(part.areas), np.sort(twin.areas), rtol=1e-9, atol=1e-12)


def test_regions_of_a_cnn_with_a_channel_shuffle_and_reflect_padding():
    """Graph path through a transpose (channel shuffle) and reflect padding between convolutions."""
    torch.manual_seed(5)
    conv1, conv2, fc = nn.Conv2d(1, 4, 3), nn.Conv2d(4, 2, 3, groups=2), nn.Linear(2 * 4 * 4, 3)

    class Shuffle(nn.Module):
        def forward(self, x):
            h = torch.relu(conv1(nn.functional.pad(x, (1, 1, 1, 1), mode="reflect")))  # (4, 6, 6)
            h = h.reshape(-1, 2, 2, 6, 6).transpose(1, 2).reshape(-1, 4, 6, 6)
            h = nn.functional.max_pool2d(torch.relu(conv2(h)), 1)
            return fc(h.flatten(1))

    net = from_torch(Shuffle().eval(), (1, 6, 6))
    plane = Plane.through(*three_inputs((1, 6, 6), 3))
    part = partition(net, plane, method="graph")
    check_exact(net, plane, part)
    twin = partition(_dense_twin(net), plane, method="graph")
    assert part.num_regions == twin.num_regions
