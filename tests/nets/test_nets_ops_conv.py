"""Issue 28: transposed convolutions of any size (a convolution of the input with zeros inserted, never a
dense matrix) and 3-D Conv / MaxPool / AveragePool, in both importers: against onnxruntime (float32
round-off bound of the op), torch (float64 round-off bound), random shapes, exact derivatives in the
metric lens, and refusals by name."""

import copy
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st
from onnx import helper
from test_nets_onnx import assert_roundoff_close, check_against_oracles, check_graph, export, make_model
from torch import nn

import netatlas
from netatlas import Plane
from netatlas.nets import Net, Node, from_onnx, from_torch
from netatlas.nets._ir import Conv, GatherLinear, Linear
from netatlas.regions import partition

sys.path.insert(0, str(Path(__file__).parents[1] / "regions"))
from max_reference import reference_regions  # noqa: E402
from regions_reference import area  # noqa: E402
from test_regions_max import _forward_state, check_exact, three_inputs  # noqa: E402

EPS64 = float(np.finfo(np.float64).eps)
CONV_TRANSPOSE = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}


def against_torch(module, net, shape, seed=0, batch=3):
    """net(x) against the float64 torch module, within the float64 round-off bound of the net."""
    x = torch.randn(batch, *shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    reference = copy.deepcopy(module).double().eval()(x).reshape(batch, -1)
    assert_roundoff_close(net(x), reference, net, x, EPS64)


class Wrapped(nn.Module):
    """A custom forward: from_torch goes through torch.export instead of walking the layers."""

    def __init__(self, body):
        super().__init__()
        self.body = body

    def forward(self, x):
        return self.body(x)


# -- ConvTranspose -------------------------------------------------------------------------------
@st.composite
def _conv_transpose_cases(draw):
    """A ConvTranspose node with 1-3 spatial dims and random kernel, strides, pads (asymmetric, and wider
    than the kernel's reach: they crop), output_padding, dilations and groups."""
    n = draw(st.integers(1, 3))
    size = [draw(st.integers(1, 4 if n == 3 else 6)) for _ in range(n)]
    kernel = [draw(st.integers(1, 3)) for _ in range(n)]
    strides = [draw(st.integers(1, 3)) for _ in range(n)]
    dilations = [draw(st.integers(1, 2)) for _ in range(n)]
    reach = [d * (k - 1) for k, d in zip(kernel, dilations, strict=True)]
    pads = [draw(st.integers(0, r + 1)) for r in reach] + [draw(st.integers(0, r + 1)) for r in reach]
    extra = [draw(st.integers(0, s - 1)) for s in strides]
    group = draw(st.sampled_from([1, 2]))
    out = [(m - 1) * s + r + 1 + e - lo - hi for m, s, r, e, lo, hi in
           zip(size, strides, reach, extra, pads[:n], pads[n:], strict=True)]
    assume(min(out) > 0)
    attrs = {"kernel_shape": kernel, "strides": strides, "dilations": dilations, "pads": pads,
             "output_padding": extra, "group": group}
    return size, attrs


def conv_transpose_model(size, attrs, seed):
    rng = np.random.default_rng(seed)
    group, kernel = attrs["group"], attrs["kernel_shape"]
    weight = rng.standard_normal((2 * group, 3, *kernel))  # (C_in, C_out / group, *kernel)
    nodes = [helper.make_node("ConvTranspose", ["x", "K", "b"], ["c"], **attrs),
             helper.make_node("Relu", ["c"], ["y"])]
    n = len(size)
    return make_model(nodes, ["N", 2 * group, *size], ["N", "C", *("S" + str(i) for i in range(n))],
                      [("K", weight), ("b", rng.standard_normal(3 * group))]), (2, 2 * group, *size)


@settings(max_examples=60, deadline=None)
@given(case=_conv_transpose_cases(), seed=st.integers(0, 2**16))
@example(case=([4, 3], {"kernel_shape": [3, 3], "strides": [2, 2], "dilations": [1, 1], "pads": [0, 1, 1, 0],
                        "output_padding": [1, 0], "group": 1}), seed=0)
@example(case=([3, 2, 3], {"kernel_shape": [2, 3, 1], "strides": [3, 1, 2], "dilations": [2, 1, 1],
                           "pads": [3, 0, 0, 0, 2, 0], "output_padding": [2, 0, 1], "group": 2}), seed=1)
def test_conv_transpose_matches_onnxruntime(case, seed):
    size, attrs = case
    model, batch_shape = conv_transpose_model(size, attrs, seed)
    net, _, _ = check_graph(model, batch_shape, seed=seed)
    assert all(isinstance(node.op, (Conv, GatherLinear)) for node in net.nodes[1:-1])
    assert all(node.op.is_selection for node in net.nodes if isinstance(node.op, GatherLinear))


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 3), kernel=st.integers(1, 3), stride=st.integers(1, 3), dilation=st.integers(1, 2),
       groups=st.sampled_from([1, 2]), data=st.data())
def test_conv_transpose_modules_match_torch_in_float64(n, kernel, stride, dilation, groups, data):
    padding = data.draw(st.integers(0, dilation * (kernel - 1)))
    extra = data.draw(st.integers(0, max(stride, dilation) - 1))
    size = tuple(data.draw(st.integers(1, 4)) for _ in range(n))
    assume(all((m - 1) * stride - 2 * padding + dilation * (kernel - 1) + extra + 1 > 0 for m in size))
    torch.manual_seed(data.draw(st.integers(0, 2**16)))
    layer = CONV_TRANSPOSE[n](2 * groups, 2 * groups, kernel, stride, padding, extra, groups, True, dilation)
    module = nn.Sequential(layer, nn.ReLU())
    against_torch(module, from_torch(module, (2 * groups, *size)), (2 * groups, *size))


@pytest.mark.parametrize("n", [1, 2, 3])
def test_conv_transpose_through_torch_export_and_onnx_export(tmp_path, n):
    """The exported program (aten.convolution, transposed) and the ONNX file of the same module import to
    the same net; a BatchNorm after the transposed convolution folds into its Conv."""
    shape = (4, *(3,) * n)
    torch.manual_seed(n)
    bn = getattr(nn, f"BatchNorm{n}d")(2).eval()
    with torch.no_grad():
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
    body = nn.Sequential(CONV_TRANSPOSE[n](4, 2, 3, stride=2, padding=1, output_padding=1, groups=2), bn,
                         nn.ReLU(), CONV_TRANSPOSE[n](2, 1, 2, dilation=2), nn.Flatten(), nn.LazyLinear(3))
    body(torch.zeros(1, *shape))
    body.eval()
    walked = from_torch(body, shape)
    exported = from_torch(Wrapped(body), shape)  # (leaves body in training mode: from_torch restores the wrapper's)
    for net in (exported, walked):
        assert [type(node.op).__name__ for node in net.nodes] == \
            ["Input", "GatherLinear", "Conv", "Activation", "Conv", "Linear"]
        against_torch(body, net, shape)
    check_against_oracles(export(body, shape, tmp_path / "t.onnx"), body, shape)


def test_large_conv_transpose_is_sparse():
    """A U-Net-sized upsampling (64 x 56 x 56 -> 32 x 112 x 112), refused before issue 28 as a dense matrix of
    8e10 entries, imports as a selection of one entry per spread position and a Conv."""
    rng = np.random.default_rng(0)
    weight = rng.standard_normal((64, 32, 2, 2)) / 16
    nodes = [helper.make_node("ConvTranspose", ["x", "K"], ["y"], strides=[2, 2])]
    net = from_onnx(make_model(nodes, ["N", 64, 56, 56], ["N", 32, 112, 112], [("K", weight)]))
    gather, conv = net.nodes[1].op, net.nodes[2].op
    assert gather.is_selection and gather.index.numel() == 64 * 113 * 113
    assert isinstance(conv, Conv) and conv.weight.numel() == weight.size
    x = torch.randn(1, 64, 56, 56, dtype=torch.float64)
    reference = torch.nn.functional.conv_transpose2d(x, torch.tensor(weight, dtype=torch.float32).double(),
                                                     stride=2)
    assert_roundoff_close(net(x), reference.reshape(1, -1), net, x, EPS64)


def test_conv_transpose_refusals_name_what_is_unsupported():
    rng = np.random.default_rng(1)
    inits = [("K", rng.standard_normal((2, 2, 3, 3)))]
    for attrs, match in [({"auto_pad": "SAME_UPPER", "strides": [2, 2]}, "ConvTranspose with SAME_UPPER"),
                         ({"auto_pad": "SAME_LOWER"}, "ConvTranspose with SAME_LOWER"),
                         ({"output_shape": [8, 8], "strides": [2, 2]}, "ConvTranspose with output_shape"),
                         ({"pads": [3, 3, 3, 3]}, r"pads \(\(3, 3\), \(3, 3\)\) crop the whole output")]:
        nodes = [helper.make_node("ConvTranspose", ["x", "K"], ["y"], name="up", **attrs)]
        with pytest.raises(netatlas.UnsupportedLayerError, match=match):
            from_onnx(make_model(nodes, ["N", 2, 2, 2], ["N", 2, "H", "W"], inits))
    four_d = [helper.make_node("ConvTranspose", ["x", "K"], ["y"], name="up")]
    with pytest.raises(netatlas.UnsupportedLayerError, match=r"ConvTranspose4d .*1-D/2-D/3-D only"):
        from_onnx(make_model(four_d, ["N", 2, 2, 2, 2, 2], ["N", 1, 2, 2, 2, 2],
                             [("K", rng.standard_normal((2, 1, 1, 1, 1, 1)))]))


# -- 3-D windows ---------------------------------------------------------------------------------
@st.composite
def _window_ops_3d(draw):
    """A 3-D Conv, MaxPool or AveragePool node with random kernel, stride, padding (asymmetric too),
    dilation, ceil mode, count_include_pad and groups."""
    op = draw(st.sampled_from(["Conv", "MaxPool", "AveragePool"]))
    size = [draw(st.integers(2, 5)) for _ in range(3)]
    kernel = [draw(st.integers(1, 3)) for _ in range(3)]
    attrs = {"kernel_shape": kernel, "strides": [draw(st.integers(1, 3)) for _ in kernel]}
    before = [draw(st.integers(0, k // 2)) for k in kernel]
    after = [draw(st.integers(0, k // 2)) for k in kernel]
    if op != "AveragePool":
        attrs["dilations"] = [draw(st.integers(1, 2)) for _ in kernel]
    if op != "Conv":
        attrs["ceil_mode"] = int(draw(st.booleans()))
    if op == "AveragePool":
        attrs["count_include_pad"] = int(draw(st.booleans()))
        if not attrs["count_include_pad"] or attrs["ceil_mode"]:
            after = before  # refused when asymmetric (as in 2-D)
    if op == "Conv":
        attrs["group"] = draw(st.sampled_from([1, 2]))
    attrs["pads"] = before + after
    extent = [(k - 1) * attrs.get("dilations", [1, 1, 1])[i] + 1 for i, k in enumerate(kernel)]
    assume(all(n + lo + hi >= e for n, lo, hi, e in zip(size, before, after, extent, strict=True)))
    assume(op != "AveragePool" or all(k <= n for k, n in zip(kernel, size, strict=True)))  # refused (see below)
    return op, size, attrs


@settings(max_examples=60, deadline=None)
@given(case=_window_ops_3d(), seed=st.integers(0, 2**16))
@example(case=("MaxPool", [5, 4, 5], {"kernel_shape": [3, 2, 3], "strides": [2, 1, 2], "pads": [1, 0, 1, 1, 1, 1],
                                       "dilations": [1, 2, 1], "ceil_mode": 1}), seed=0)
@example(case=("AveragePool", [4, 5, 3], {"kernel_shape": [2, 3, 3], "strides": [2, 2, 1], "pads": [1, 1, 1] * 2,
                                           "ceil_mode": 1, "count_include_pad": 0}), seed=1)
@example(case=("Conv", [5, 5, 4], {"kernel_shape": [3, 3, 2], "strides": [2, 2, 1], "pads": [0, 1, 1, 1, 1, 0],
                                    "dilations": [1, 1, 2], "group": 2}), seed=2)
def test_3d_window_ops_match_onnxruntime(case, seed):
    op, size, attrs = case
    rng = np.random.default_rng(seed)
    inits, inputs = [], ["x"]
    if op == "Conv":
        inits = [("K", rng.standard_normal((4, 4 // attrs["group"], *attrs["kernel_shape"]))),
                 ("b", rng.standard_normal(4))]
        inputs += ["K", "b"]
    nodes = [helper.make_node(op, inputs, ["w"], **attrs), helper.make_node("Relu", ["w"], ["y"])]
    model = make_model(nodes, ["N", 4, *size], ["N", "C", "D", "H", "W"], inits, opset=19)
    check_graph(model, (2, 4, *size), seed=seed)


def cnn3d():
    return nn.Sequential(nn.Conv3d(2, 4, 3, padding=1, groups=2), nn.BatchNorm3d(4), nn.ReLU(),
                         nn.MaxPool3d(2, stride=(1, 2, 2), padding=(1, 0, 1), dilation=(1, 1, 2), ceil_mode=True),
                         nn.Conv3d(4, 3, (1, 2, 2), stride=2), nn.ReLU(), nn.AvgPool3d(2, 1, 1, ceil_mode=True,
                                                                                      count_include_pad=False),
                         nn.Flatten(), nn.LazyLinear(5))


def test_3d_cnn_through_the_walk_torch_export_and_onnx():
    shape = (2, 5, 8, 9)
    torch.manual_seed(0)
    module = cnn3d()
    module(torch.zeros(1, *shape))
    with torch.no_grad():
        module[1].running_mean.uniform_(-1, 1)
        module[1].running_var.uniform_(0.5, 2)
    module.eval()
    walked = from_torch(module, shape)
    exported = from_torch(Wrapped(module), shape)
    kinds = [type(node.op).__name__ for node in walked.nodes]
    assert kinds == ["Input", "Conv", "Activation", "Max", "Conv", "Activation", "AvgPool", "Linear"]
    assert [type(node.op).__name__ for node in exported.nodes] == kinds
    for net in (walked, exported):
        against_torch(module, net, shape)


def test_3d_cnn_exported_to_onnx(tmp_path):
    shape = (2, 5, 8, 9)
    torch.manual_seed(1)
    module = cnn3d()
    module(torch.zeros(1, *shape))
    module.eval()
    net = check_against_oracles(export(module, shape, tmp_path / "c3.onnx"), module, shape)
    assert sum(isinstance(node.op, Conv) and node.op.weight.dim() == 5 for node in net.nodes) == 2


@pytest.mark.parametrize("layer", [nn.AdaptiveAvgPool3d((2, 1, 3)), nn.AdaptiveMaxPool3d((1, 2, 2)),
                                   nn.AvgPool1d(3, 2, 1)])
def test_adaptive_3d_pools_and_avg_pool_1d(layer):
    shape = (2, 4, 5, 6) if "3d" in type(layer).__name__ else (2, 9)
    module = nn.Sequential(nn.ReLU(), layer, nn.Flatten())
    for net in (from_torch(module, shape), from_torch(Wrapped(module), shape)):
        against_torch(module, net, shape)


def test_global_pools_in_3d_match_onnxruntime():
    for op in ("GlobalAveragePool", "GlobalMaxPool"):
        nodes = [helper.make_node(op, ["x"], ["y"])]
        check_graph(make_model(nodes, ["N", 3, 2, 3, 4], ["N", 3, 1, 1, 1]), (2, 3, 2, 3, 4))


def test_3d_refusals_name_what_is_unsupported():
    rng = np.random.default_rng(2)
    conv4 = [helper.make_node("Conv", ["x", "K"], ["y"], name="c4")]
    with pytest.raises(netatlas.UnsupportedLayerError, match=r"Conv4d \(netatlas has 1-D, 2-D and 3-D"):
        from_onnx(make_model(conv4, ["N", 1, 2, 2, 2, 2], ["N", 1, 2, 2, 2, 2],
                             [("K", rng.standard_normal((1, 1, 1, 1, 1, 1)))]))
    pool4 = [helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[1, 1, 1, 1], name="p4")]
    with pytest.raises(netatlas.UnsupportedLayerError, match=r"MaxPool with kernel \(1, 1, 1, 1\)"):
        from_onnx(make_model(pool4, ["N", 1, 2, 2, 2, 2], ["N", 1, 2, 2, 2, 2]))
    dilated = [helper.make_node("AveragePool", ["x"], ["y"], kernel_shape=[2, 2, 2], dilations=[2, 1, 1])]
    with pytest.raises(netatlas.UnsupportedLayerError, match="AveragePool with dilations"):
        from_onnx(make_model(dilated, ["N", 1, 4, 4, 4], ["N", 1, 2, 3, 3], opset=19))
    wide = [helper.make_node("AveragePool", ["x"], ["y"], kernel_shape=[3, 1, 1], pads=[1, 0, 0, 1, 0, 0])]
    with pytest.raises(netatlas.UnsupportedLayerError, match=r"kernel \(3, 1, 1\) wider than its unpadded input"):
        from_onnx(make_model(wide, ["N", 1, 2, 2, 2], ["N", 1, 2, 2, 2]))
    with pytest.raises(netatlas.UnsupportedLayerError, match="AvgPool3d with divisor_override"):
        from_torch(nn.Sequential(nn.AvgPool3d(2, divisor_override=3)), (1, 4, 4, 4))


# -- derivatives in the metric lens --------------------------------------------------------------
@pytest.mark.parametrize("name", ["conv_transpose", "conv3d"])
def test_metric_jacobian_and_volume_element_match_autograd(name):
    """The metric lens's Jacobian and log volume element (its log-space route now takes the spreading
    GatherLinear) against torch autograd of the float64 module."""
    torch.manual_seed(3)
    if name == "conv_transpose":
        shape = (2, 2, 2)
        module = nn.Sequential(nn.ConvTranspose2d(2, 3, 3, stride=2, padding=1, output_padding=1), nn.Tanh(),
                               nn.Flatten(), nn.Linear(3 * 16, 12), nn.Tanh(), nn.Linear(12, 10))
    else:
        shape = (1, 2, 2, 2)
        module = nn.Sequential(nn.Conv3d(1, 4, 3, padding=1), nn.Tanh(), nn.AvgPool3d(2, 1, 1), nn.Flatten(),
                               nn.Linear(4 * 27, 10))
    module = module.double().eval()
    net = from_torch(module, shape)
    x = torch.randn(4, *shape, dtype=torch.float64)
    reference = torch.stack([torch.autograd.functional.jacobian(lambda v: module(v[None])[0], p).reshape(10, -1)
                             for p in x])
    got = netatlas.metric.jacobian(net, x)
    # round-off of a chain: about 4 x its summed fan-in (<= 250 here) x eps x the largest entry
    np.testing.assert_allclose(got, reference.numpy(), rtol=0, atol=1e3 * EPS64 * reference.abs().max().item())
    log_volume = 0.5 * torch.linalg.slogdet(reference.transpose(1, 2) @ reference)[1]
    np.testing.assert_allclose(netatlas.metric.volume_element(net, x), log_volume.numpy(), rtol=1e-8, atol=1e-8)


# -- exact regions -------------------------------------------------------------------------------
def dense_twin(module, net, shape):
    """``net`` with its first (transposed) convolution layer -- the nodes up to the first activation --
    replaced by one dense Linear built independently: torch's own layer applied to the unit inputs."""
    first = next(i for i, node in enumerate(net.nodes) if node.op.kind == "activation")
    n_in = int(np.prod(shape))
    basis = torch.eye(n_in, dtype=torch.float64).reshape(n_in, *shape)
    layer = copy.deepcopy(module[0]).double()
    with torch.no_grad():
        bias = layer(torch.zeros(1, *shape, dtype=torch.float64)).reshape(-1)
        weight = (layer(basis).reshape(n_in, -1) - bias).T.contiguous()  # the bias of torch's layer taken out
    nodes = [Node(net.nodes[0].op, (), net.nodes[0].shape, "input"),
             Node(Linear(weight, bias), (0,), (weight.shape[0],), "dense")]
    shift = first - 2  # nodes 1 .. first - 1 became node 1
    for node in net.nodes[first:]:
        nodes.append(Node(node.op, tuple(j - shift for j in node.inputs), node.shape, node.name))
    return Net(nodes)


@pytest.mark.parametrize("n", [1, 2, 3])
def test_regions_through_a_conv_transpose_equal_its_dense_twin(n):
    """A strided, padded, grouped transposed convolution (a spreading GatherLinear and a Conv) gives the
    regions of the same net with the layer as torch's dense matrix; maps and patterns are the forward pass's."""
    shape = (2, *(2,) * n)
    torch.manual_seed(10 + n)
    module = nn.Sequential(CONV_TRANSPOSE[n](2, 2, 3, stride=2, padding=1, output_padding=1, groups=2), nn.ReLU(),
                           nn.Flatten(), nn.LazyLinear(6), nn.ReLU(), nn.Linear(6, 3))
    module(torch.zeros(1, *shape))
    module = module.double().eval()
    net = from_torch(module, shape)
    assert any(isinstance(node.op, GatherLinear) for node in net.nodes)
    plane = Plane.through(*three_inputs(shape, n))
    part = partition(net, plane)
    check_exact(net, plane, part, seed=n)
    twin = partition(dense_twin(module, net, shape), plane)
    assert part.num_regions == twin.num_regions > 1
    np.testing.assert_allclose(np.sort(part.areas), np.sort(twin.areas), rtol=1e-9, atol=1e-12 * plane.area)


def test_regions_through_3d_conv_and_average_pool_equal_the_dense_twin():
    shape = (1, 3, 3, 3)
    torch.manual_seed(20)
    module = nn.Sequential(nn.Conv3d(1, 2, 2, padding=1), nn.ReLU(), nn.AvgPool3d(2, 1), nn.Flatten(),
                           nn.LazyLinear(5), nn.ReLU(), nn.Linear(5, 2))
    module(torch.zeros(1, *shape))
    module = module.double().eval()
    net = from_torch(module, shape)
    plane = Plane.through(*three_inputs(shape, 20))
    part = partition(net, plane)
    check_exact(net, plane, part, seed=20)
    twin = partition(dense_twin(module, net, shape), plane)
    assert part.num_regions == twin.num_regions > 1
    np.testing.assert_allclose(np.sort(part.areas), np.sort(twin.areas), rtol=1e-9, atol=1e-12 * plane.area)


@pytest.mark.parametrize("pool", ["maxpool3d", "adaptive-max3d"])
def test_regions_through_3d_max_pooling_match_the_reference(pool):
    """3-D max-pool windows follow the 2-D max-window rule: the partition has the independent reference's
    regions (region growing with autograd, one state per arg-max), each centroid with its state."""
    shape = (1, 2, 4, 4)
    torch.manual_seed(30)
    layer = nn.MaxPool3d((2, 2, 2), stride=(1, 2, 2), padding=(1, 0, 0)) if pool == "maxpool3d" else \
        nn.AdaptiveMaxPool3d((1, 2, 1))
    module = nn.Sequential(nn.Conv3d(1, 2, (1, 2, 2)), nn.ReLU(), layer, nn.Flatten(), nn.LazyLinear(4), nn.ReLU(),
                           nn.Linear(4, 3))
    module(torch.zeros(1, *shape))
    net = from_torch(module.eval(), shape)
    plane = Plane.through(*[0.4 * a for a in three_inputs(shape, 30)])
    part = partition(net, plane)
    assert part.argmax.shape[1] > 0
    check_exact(net, plane, part, seed=30)
    ref = reference_regions(net, plane)
    assert abs(sum(area(p) for p in ref.values()) - plane.area) < 1e-9 * plane.area  # the reference is complete
    assert part.num_regions == len(ref) > 1
    states = {s.tobytes() for s in _forward_state(net, plane.to_input(part.centroids()))[2]}
    assert states == set(ref)
