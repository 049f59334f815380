"""ONNX import: exports of real torch models and hand-built graphs agree with onnxruntime (float32) and
torch (float64) to round-off bounds; unsupported ops, bad files and symbolic shapes give one-line errors.

Tolerances: the IR evaluates the file's float32 weights in float64, so it differs from onnxruntime only
by onnxruntime's float32 arithmetic (and from a float64 torch model only by the exporter's float32
folding of BatchNorm). A dot product of length K has forward error <= K eps (|W| |x|); summed over
the layers this is S eps times the *envelope* (the net with |weights| on |x|), S = sum of fan-ins.
"""

import copy
import io
import json
import math
import warnings

import numpy as np
import pytest
import torch
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st
from torch import nn

import netatlas
from netatlas.nets import from_onnx, load
from netatlas.nets._ir import (
    Activation,
    AdaptiveAvgPool,
    Add,
    AvgPool,
    ChannelAffine,
    Concat,
    Conv,
    GatherLinear,
    Input,
    Linear,
    Max,
    Pad,
)

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

EPS32 = float(np.finfo(np.float32).eps)


# -- round-off bounds --------------------------------------------------------------------------------
def envelope_and_fan_in(net, x):
    """(B, n_out) envelope |W| ... |W| |x| (+1 per smooth activation's output) and S = sum of fan-ins."""
    values, fan_in = [], 1  # 1: rounding the input to float32
    for node in net.nodes:
        op = node.op
        ins = [values[j] for j in node.inputs]
        if isinstance(op, Input):
            v = torch.as_tensor(x, dtype=torch.float64).reshape(len(x), -1).abs()
        elif isinstance(op, Activation):
            v = ins[0] + (0.0 if op.piecewise_linear else 1.0)  # smooth outputs are O(1) at 0
        elif isinstance(op, Linear):
            v, fan_in = torch.nn.functional.linear(ins[0], op.weight.abs(), op.bias.abs()), fan_in + op.weight.shape[1]
        elif isinstance(op, Conv):
            absolute = Conv(op.weight.abs(), op.bias.abs(), op.stride, op.padding, op.dilation, op.groups, op.in_shape)
            v, fan_in = absolute(ins[0]), fan_in + op.weight[0].numel()
        elif isinstance(op, ChannelAffine):
            v, fan_in = ChannelAffine(op.scale.abs(), op.shift.abs(), op.in_shape)(ins[0]), fan_in + 2
        elif isinstance(op, AvgPool):
            v, fan_in = op(ins[0]), fan_in + math.prod(op.kernel)
        elif isinstance(op, AdaptiveAvgPool):
            v, fan_in = op(ins[0]), fan_in + math.prod(op.in_shape[1:])
        elif isinstance(op, (Add, Concat, Max, Pad)):  # Pad and Max select (exact), Concat copies
            v, fan_in = op(*ins), fan_in + (1 if isinstance(op, Add) else 0)
        elif isinstance(op, GatherLinear):  # k products and sums per output (a selection: exact)
            absolute = GatherLinear(op.index, None if op.weight is None else op.weight.abs(),
                                    None if op.shift is None else op.shift.abs(), op.in_shape, op.output_shape)
            v, fan_in = absolute(ins[0]), fan_in + (0 if op.is_selection else op.index.shape[1] + 1)
        else:
            raise AssertionError(f"no envelope rule for {op.describe()}")
        values.append(v)
    return values[-1], fan_in


def assert_roundoff_close(got, reference, net, x, eps):
    """|got - reference| <= 4 S eps envelope, elementwise (4: smooth activations' Lipschitz constants)."""
    env, fan_in = envelope_and_fan_in(net, x)
    got, reference = (torch.as_tensor(np.asarray(torch.as_tensor(v).detach()), dtype=torch.float64).reshape(env.shape)
                      for v in (got, reference))
    bound = 4 * fan_in * eps * env + 1e-300
    worst = ((got - reference).abs() / bound).max().item()
    assert worst <= 1.0, f"error {worst:.3g} x the round-off bound (S = {fan_in}, eps = {eps:.3g})"


def run_ort(model_or_path, x):
    data = model_or_path if isinstance(model_or_path, str) else model_or_path.SerializeToString()
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    name, batch = session.get_inputs()[0].name, session.get_inputs()[0].shape[0]
    x = np.asarray(x, dtype=np.float32)
    if not isinstance(batch, int) or batch == len(x):
        return session.run(None, {name: x})[0]
    # a file exported with a fixed batch size: run it chunk by chunk (the last one padded with zeros)
    chunks = []
    for start in range(0, len(x), batch):
        part = x[start:start + batch]
        padded = np.concatenate([part, np.zeros((batch - len(part), *x.shape[1:]), np.float32)])
        chunks.append(session.run(None, {name: padded})[0][: len(part)])
    return np.concatenate(chunks)


def export(module, input_shape, path, *, batch=3, dynamo=False, opset=None, **kw):
    module = module.eval()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        kwargs = dict(dynamo=dynamo, **kw)
        if opset is not None:
            kwargs["opset_version"] = opset
        torch.onnx.export(module, (torch.zeros(batch, *input_shape),), str(path), **kwargs)
    return str(path)


def check_against_oracles(path, module, input_shape, *, batch=3, seed=0, scale=1.0):
    """Net(x) vs onnxruntime (float32) and the torch module (float64) on random inputs."""
    net = from_onnx(path)
    assert net.input_shape == tuple(input_shape)
    g = torch.Generator().manual_seed(seed)
    x = (scale * torch.randn(batch, *input_shape, generator=g, dtype=torch.float64)).to(torch.float32).double()
    got = net(x)
    assert_roundoff_close(got, run_ort(path, x.numpy()), net, x, EPS32)
    assert_roundoff_close(got, copy.deepcopy(module).double()(x).reshape(batch, -1), net, x, EPS32)
    return net


def randomize_batchnorm(module, seed=0):
    g = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            with torch.no_grad():
                n = m.num_features
                m.running_mean.copy_(torch.rand(n, generator=g) * 2 - 1)
                m.running_var.copy_(torch.rand(n, generator=g) * 1.5 + 0.5)
                m.weight.copy_(torch.rand(n, generator=g) + 0.5)
                m.bias.copy_(torch.rand(n, generator=g) - 0.5)
    return module.eval()


# -- real torch models --------------------------------------------------------------------------------
class BasicBlock(nn.Module):
    """torchvision's BasicBlock: conv-BN-ReLU-conv-BN + identity or stride-2 1x1 conv-BN downsample, ReLU."""

    def __init__(self, c_in, c_out, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.downsample = None
        if stride != 1 or c_in != c_out:
            self.downsample = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x):
        y = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        return torch.relu(y + (x if self.downsample is None else self.downsample(x)))


class SmallResNet(nn.Module):
    """Stem conv-BN-ReLU-maxpool, an identity block, a stride-2 downsampling block, global average pool."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), nn.ReLU(),
                                  nn.MaxPool2d(3, 2, 1))
        self.layer1, self.layer2 = BasicBlock(4, 4), BasicBlock(4, 8, stride=2)
        self.fc = nn.Linear(8, 3)

    def forward(self, x):
        x = self.layer2(self.layer1(self.stem(x)))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


def lenet():
    return nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.BatchNorm2d(6), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(16 * 5 * 5, 32), nn.ReLU(), nn.Linear(32, 10))


def seeded(factory, seed=0):
    torch.manual_seed(seed)
    return randomize_batchnorm(factory(), seed)


MODELS = {
    "mlp_relu": (lambda: nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(),
                                       nn.Linear(16, 3)), (2,)),
    "mlp_smooth": (lambda: nn.Sequential(nn.Linear(3, 8), nn.Sigmoid(), nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 8),
                                         nn.GELU(), nn.Linear(8, 8), nn.Softplus(), nn.Linear(8, 2)), (3,)),
    "mlp_leaky_relu6_bn": (lambda: nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.LeakyReLU(0.1),
                                                 nn.Dropout(0.3), nn.Linear(8, 8), nn.ReLU6(), nn.Linear(8, 1)), (4,)),
    "lenet_bn_maxpool": (lenet, (1, 28, 28)),
    "resnet_basic_blocks": (SmallResNet, (1, 12, 12)),
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_torch_export_agrees_with_onnxruntime_and_torch(tmp_path, name):
    factory, shape = MODELS[name]
    module = seeded(factory)
    net = check_against_oracles(export(module, shape, tmp_path / "m.onnx"), module, shape, scale=2.0)
    if "bn" in name or "resnet" in name:
        assert not any(isinstance(n.op, ChannelAffine) for n in net.nodes)  # BatchNorm folded
    if name == "resnet_basic_blocks":
        kinds = [type(n.op).__name__ for n in net.nodes]
        assert kinds.count("Add") == 2 and kinds.count("Max") == 1 and net.piecewise_linear


def test_resnet_matches_from_torch(tmp_path):
    """The ONNX route and the torch route build the same graph (same ops up to the kind of global
    average pool, same shapes and units)."""
    module = seeded(SmallResNet)
    via_onnx = from_onnx(export(module, (1, 12, 12), tmp_path / "r.onnx"))
    via_torch = netatlas.nets.from_torch(module, (1, 12, 12))
    kinds = lambda net: [type(n.op).__name__.replace("Adaptive", "") for n in net.nodes]
    assert kinds(via_onnx) == kinds(via_torch)
    assert [n.shape for n in via_onnx.nodes] == [n.shape for n in via_torch.nodes]


@pytest.mark.parametrize("opset", [17, 20])
def test_gelu_as_op_and_as_erf_decomposition(tmp_path, opset):
    """Opset 20 has a Gelu op; before it the exporter writes x * 0.5 * (1 + erf(x / sqrt 2))."""
    module = seeded(lambda: nn.Sequential(nn.Linear(2, 8), nn.GELU(), nn.Linear(8, 2)))
    path = export(module, (2,), tmp_path / "g.onnx", opset=opset)
    ops = {n.op_type for n in onnx.load(path).graph.node}
    assert ("Gelu" in ops) == (opset >= 20) and ("Erf" in ops) == (opset < 20)
    net = check_against_oracles(path, module, (2,), scale=3.0)
    assert [n.op.name for n in net.nodes if isinstance(n.op, Activation)] == ["gelu"]


@pytest.mark.slow
def test_dynamo_exporter(tmp_path):
    """The default (dynamo) exporter: ReduceMean for global pooling, Reshape for flatten, and torch's
    Softplus threshold as Where(x > 20, x, Softplus(x))."""
    module = seeded(SmallResNet)
    check_against_oracles(export(module, (1, 12, 12), tmp_path / "r.onnx", dynamo=True), module, (1, 12, 12))
    soft = seeded(lambda: nn.Sequential(nn.Linear(2, 6), nn.Softplus(), nn.Linear(6, 1)))
    path = export(soft, (2,), tmp_path / "s.onnx", dynamo=True)
    assert "Where" in {n.op_type for n in onnx.load(path).graph.node}
    net = check_against_oracles(path, soft, (2,), scale=20.0)
    assert [n.op.params for n in net.nodes if isinstance(n.op, Activation)] == [{"beta": 1.0, "threshold": 20.0}]


# -- hand-built graphs ----------------------------------------------------------------------------------
def make_model(nodes, in_shape, out_shape, initializers=(), opset=17):
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(in_shape))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, list(out_shape))],
        initializer=[numpy_helper.from_array(_as_initializer(v), k) for k, v in initializers])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def _as_initializer(v):
    """Integer and bool arrays keep their dtype (shapes, axes, flags); everything else is float32."""
    v = np.asarray(v)
    return v if v.dtype.kind in "biu" else v.astype(np.float32)


def check_graph(model, batch_shape, seed=0, scale=1.0):
    net = from_onnx(model)
    x = scale * np.random.default_rng(seed).standard_normal(batch_shape).astype(np.float32).astype(np.float64)
    got = net(x)
    assert_roundoff_close(got, run_ort(model, x), net, x, EPS32)
    return net, x, got


@pytest.mark.parametrize("trans_b", [0, 1])
@pytest.mark.parametrize("alpha,beta", [(1.0, 1.0), (0.5, -2.0)])
@pytest.mark.parametrize("c_shape", [None, (), (4,), (1, 4)])
def test_gemm_attributes(trans_b, alpha, beta, c_shape):
    rng = np.random.default_rng(1)
    b = rng.standard_normal((4, 3) if trans_b else (3, 4)).astype(np.float32)
    inits = [("B", b)]
    inputs = ["x", "B"]
    if c_shape is not None:
        inits.append(("C", rng.standard_normal(c_shape).astype(np.float32)))
        inputs.append("C")
    node = helper.make_node("Gemm", inputs, ["y"], alpha=alpha, beta=beta, transB=trans_b)
    net, x, got = check_graph(make_model([node], ["N", 3], ["N", 4], inits), (5, 3))
    # the closed form, in float64
    weight = b.T.astype(np.float64) if trans_b else b.astype(np.float64)
    expected = alpha * x @ weight + (beta * np.asarray(inits[1][1], dtype=np.float64) if c_shape is not None else 0)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


def test_gemm_trans_a_on_the_input_is_refused():
    node = helper.make_node("Gemm", ["x", "B"], ["y"], transA=1, name="g0")
    model = make_model([node], [3, 2], [2, 4], [("B", np.ones((3, 4)))])
    with pytest.raises(netatlas.UnsupportedLayerError, match=r"transA=1.*'g0'"):
        from_onnx(model)


def test_matmul_add_sub_mul_div():
    rng = np.random.default_rng(2)
    nodes = [helper.make_node("MatMul", ["x", "W"], ["h"]), helper.make_node("Add", ["h", "b"], ["h2"]),
             helper.make_node("Relu", ["h2"], ["r"]), helper.make_node("Sub", ["r", "s"], ["r2"]),
             helper.make_node("Mul", ["k", "r2"], ["r3"]), helper.make_node("Div", ["r3", "d"], ["y"])]
    inits = [("W", rng.standard_normal((3, 5))), ("b", rng.standard_normal(5)), ("s", rng.standard_normal((1, 5))),
             ("k", [2.0]), ("d", [4.0])]
    net, _, _ = check_graph(make_model(nodes, ["N", 3], ["N", 5], inits), (6, 3))
    assert [type(n.op).__name__ for n in net.nodes] == ["Input", "Linear", "Activation", "ChannelAffine"]


@pytest.mark.parametrize("bounds", [(0.0, None), (None, 0.5), (-0.5, 1.5), (None, None), (0.0, 6.0)])
@pytest.mark.parametrize("opset", [6, 13])
def test_clip(bounds, opset):
    lo, hi = bounds
    if opset >= 11:
        inits = [(k, np.float32(v)) for k, v in (("lo", lo), ("hi", hi)) if v is not None]
        names = ["h", "lo" if lo is not None else "", "hi" if hi is not None else ""]
        clip = helper.make_node("Clip", names, ["c"])
    else:
        inits, attrs = [], {k: v for k, v in (("min", lo), ("max", hi)) if v is not None}
        clip = helper.make_node("Clip", ["h"], ["c"], **attrs)
    nodes = [helper.make_node("MatMul", ["x", "W"], ["h"]), clip, helper.make_node("MatMul", ["c", "V"], ["y"])]
    rng = np.random.default_rng(3)
    inits += [("W", rng.standard_normal((2, 6))), ("V", rng.standard_normal((6, 2)))]
    net, _, _ = check_graph(make_model(nodes, ["N", 2], ["N", 2], inits, opset=opset), (64, 2), scale=2.0)
    activations = [n.op for n in net.nodes if isinstance(n.op, Activation)]
    if bounds == (None, None):
        assert activations == []
    elif bounds == (0.0, None):
        assert [a.name for a in activations] == ["relu"]
    else:
        assert [a.name for a in activations] == ["hardtanh"] and net.piecewise_linear


def test_reshape_chain_from_shape_ops_with_symbolic_batch():
    """Shape -> Gather(0) -> Unsqueeze -> Concat(-1) -> Reshape, the flatten torch.onnx writes for
    x.view(x.size(0), -1) without constant folding; and Unsqueeze/Squeeze/Flatten of values."""
    rng = np.random.default_rng(4)
    nodes = [
        helper.make_node("Conv", ["x", "K"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Shape", ["c"], ["s"]),
        helper.make_node("Constant", [], ["zero"], value=numpy_helper.from_array(np.array(0, dtype=np.int64))),
        helper.make_node("Gather", ["s", "zero"], ["n"], axis=0),
        helper.make_node("Unsqueeze", ["n", "axes0"], ["n1"]),
        helper.make_node("Concat", ["n1", "minus1"], ["target"], axis=0),
        helper.make_node("Reshape", ["c", "target"], ["flat"]),
        helper.make_node("Unsqueeze", ["flat", "axes2"], ["u"]),
        helper.make_node("Squeeze", ["u", "axes2"], ["sq"]),
        helper.make_node("Flatten", ["sq"], ["f"], axis=1),
        helper.make_node("Gemm", ["f", "W"], ["y"]),
    ]
    inits = [("K", rng.standard_normal((2, 1, 3, 3))), ("W", rng.standard_normal((2 * 5 * 5, 3)))]
    inits += [("axes0", np.array([0])), ("axes2", np.array([2])), ("minus1", np.array([-1]))]
    model = make_model(nodes, ["N", 1, 5, 5], ["N", 3], inits, opset=13)
    net, _, _ = check_graph(model, (7, 1, 5, 5))
    assert [type(n.op).__name__ for n in net.nodes] == ["Input", "Conv", "Linear"]


def test_reshape_that_mixes_samples_is_refused():
    nodes = [helper.make_node("Reshape", ["x", "t"], ["r"], name="bad_reshape"),
             helper.make_node("Relu", ["r"], ["y"])]
    model = make_model(nodes, [4, 6], [6, 4], [("t", np.array([6, 4]))])
    with pytest.raises(netatlas.UnsupportedLayerError, match=r"'bad_reshape'.*batch"):
        from_onnx(model)


def test_concat_and_pools():
    """Two conv branches concatenated on channels; max and average pools with padding, ceil mode and
    dilation; global pools; a feature-axis concat after flattening."""
    rng = np.random.default_rng(5)
    nodes = [
        helper.make_node("Conv", ["x", "K1", "b1"], ["a"], pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["x", "K2"], ["b"], strides=[1, 1], auto_pad="SAME_UPPER", kernel_shape=[3, 3]),
        helper.make_node("Concat", ["a", "b"], ["c"], axis=1),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("MaxPool", ["r"], ["m"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1],
                         ceil_mode=1),
        helper.make_node("MaxPool", ["r"], ["m2"], kernel_shape=[2, 2], dilations=[2, 2]),
        helper.make_node("AveragePool", ["m2"], ["p"], kernel_shape=[2, 2], pads=[1, 1, 1, 1], count_include_pad=0),
        helper.make_node("GlobalAveragePool", ["m"], ["ga"]),
        helper.make_node("GlobalMaxPool", ["p"], ["gm"]),
        helper.make_node("Flatten", ["ga"], ["fa"]),
        helper.make_node("Flatten", ["gm"], ["fm"]),
        helper.make_node("Concat", ["fa", "fm"], ["f"], axis=-1),
        helper.make_node("Gemm", ["f", "W"], ["y"]),
    ]
    inits = [("K1", rng.standard_normal((3, 2, 3, 3))), ("b1", rng.standard_normal(3)),
             ("K2", rng.standard_normal((2, 2, 3, 3))), ("W", rng.standard_normal((10, 2)))]
    net, _, _ = check_graph(make_model(nodes, ["N", 2, 8, 8], ["N", 2], inits), (5, 2, 8, 8))
    kinds = [type(n.op).__name__ for n in net.nodes]
    assert kinds.count("Concat") == 2 and kinds.count("Max") == 3 and kinds.count("AvgPool") == 2


def test_batch_normalization_node_is_folded():
    rng = np.random.default_rng(6)
    nodes = [helper.make_node("Conv", ["x", "K"], ["c"]),
             helper.make_node("BatchNormalization", ["c", "g", "beta", "mu", "var"], ["n"], epsilon=1e-3),
             helper.make_node("Relu", ["n"], ["r"]), helper.make_node("Flatten", ["r"], ["f"]),
             helper.make_node("Gemm", ["f", "W"], ["h"]),
             helper.make_node("BatchNormalization", ["h", "g2", "beta2", "mu2", "var2"], ["y"])]
    inits = [("K", rng.standard_normal((3, 1, 2, 2))), ("g", rng.uniform(0.5, 1.5, 3)),
             ("beta", rng.standard_normal(3)), ("mu", rng.standard_normal(3)), ("var", rng.uniform(0.5, 2, 3)),
             ("W", rng.standard_normal((27, 2))), ("g2", [1.5, 0.5]), ("beta2", [0.1, -0.2]), ("mu2", [0.3, 0.0]),
             ("var2", [2.0, 0.7])]
    net, _, _ = check_graph(make_model(nodes, ["N", 1, 4, 4], ["N", 2], inits), (5, 1, 4, 4))
    assert [type(n.op).__name__ for n in net.nodes] == ["Input", "Conv", "Activation", "Linear"]


# -- errors -------------------------------------------------------------------------------------------------
def _save(model, path):
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize("op", ["Softmax", "LSTM"])
def test_unsupported_op_names_itself_and_the_supported_set(tmp_path, op):
    rng = np.random.default_rng(7)
    if op == "Softmax":
        middle = helper.make_node("Softmax", ["h"], ["s"], name="the_softmax", axis=1)
        inits = [("W", rng.standard_normal((3, 4))), ("V", rng.standard_normal((4, 2)))]
        nodes = [helper.make_node("Gemm", ["x", "W"], ["h"]), middle, helper.make_node("Gemm", ["s", "V"], ["y"])]
        model = make_model(nodes, ["N", 3], ["N", 2], inits)
    else:
        middle = helper.make_node("LSTM", ["x", "W", "R"], ["", "y"], name="the_lstm", hidden_size=2)
        inits = [("W", rng.standard_normal((1, 8, 3))), ("R", rng.standard_normal((1, 8, 2)))]
        model = make_model([middle], [4, 2, 3], [1, 2, 2], inits)
    with pytest.raises(netatlas.UnsupportedLayerError) as exc:
        load(_save(model, tmp_path / "m.onnx"))
    message = str(exc.value)
    assert f"ONNX op {op}" in message and f"'the_{op.lower()}'" in message and "supported: Gemm" in message
    assert "\n" not in message


def test_corrupt_and_truncated_files_are_one_line_errors(tmp_path):
    (tmp_path / "junk.onnx").write_bytes(b"\x00\xffnot a protobuf at all" * 3)
    module = seeded(MODELS["mlp_relu"][0])
    path = export(module, (2,), tmp_path / "m.onnx")
    data = open(path, "rb").read()
    (tmp_path / "half.onnx").write_bytes(data[: len(data) // 2])
    for name in ("junk.onnx", "half.onnx"):
        with pytest.raises(netatlas.ModelFileError) as exc:
            load(tmp_path / name)
        assert name in str(exc.value) and "ONNX" in str(exc.value) and "\n" not in str(exc.value)
    with pytest.raises(netatlas.ModelFileError, match="nope.onnx: no such file"):
        load(tmp_path / "nope.onnx")
    with pytest.raises(netatlas.ModelFileError, match="load it as a Net"):
        netatlas.nets.load_module(path)


def test_symbolic_input_dims_ask_for_input_shape(tmp_path):
    rng = np.random.default_rng(8)
    nodes = [helper.make_node("Conv", ["x", "K"], ["c"]), helper.make_node("Relu", ["c"], ["y"])]
    model = make_model(nodes, ["N", 1, "H", "W"], ["N", 2, "H2", "W2"], [("K", rng.standard_normal((2, 1, 3, 3)))])
    path = _save(model, tmp_path / "sym.onnx")
    with pytest.raises(ValueError, match=r"symbolic dimensions \(N, 1, H, W\); pass input_shape"):
        from_onnx(path)
    with pytest.raises(ValueError, match="does not fit"):
        from_onnx(path, input_shape=(3, 6, 6))
    net = from_onnx(path, input_shape=(1, 6, 6))
    x = rng.standard_normal((2, 1, 6, 6)).astype(np.float32).astype(np.float64)
    assert_roundoff_close(net(x), run_ort(model, x), net, x, EPS32)
    # through load(): a JSON beside the file (or spec=) gives the shape
    (tmp_path / "sym.json").write_text(json.dumps({"input_shape": [1, 6, 6]}))
    assert load(path).input_shape == (1, 6, 6)
    assert load(path, spec={"input_shape": [1, 5, 5]}).input_shape == (1, 5, 5)


def test_training_mode_nodes_are_refused():
    node = helper.make_node("Dropout", ["x", "ratio", "train"], ["y"], name="drop")
    model = make_model([node], ["N", 3], ["N", 3], [("ratio", np.float32(0.5)), ("train", np.array(True))])
    with pytest.raises(ValueError, match="'drop' is in training mode"):
        from_onnx(model)


def test_model_proto_round_trip_through_bytes():
    module = seeded(MODELS["mlp_relu"][0])
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module.eval(), (torch.zeros(2, 2),), buffer, dynamo=False)
    net = from_onnx(onnx.load_from_string(buffer.getvalue()))
    x = torch.randn(4, 2, dtype=torch.float64)
    assert_roundoff_close(net(x), module.double()(x), net, x, 2 ** -52)
    assert torch.equal(from_onnx(buffer.getvalue())(x), net(x))
    with pytest.raises(netatlas.ModelFileError, match="ONNX bytes: not a readable ONNX model"):
        from_onnx(buffer.getvalue()[:-7])


# -- commands that take a model file -------------------------------------------------------------------------
def test_cli_info_and_regions_take_onnx(tmp_path, capsys):
    import matplotlib

    matplotlib.use("Agg")
    from netatlas.cli import main
    from netatlas.regions import partition

    module = seeded(lambda: nn.Sequential(nn.Linear(2, 10), nn.ReLU(), nn.Linear(10, 10), nn.ReLU(),
                                          nn.Linear(10, 3)))
    path = export(module, (2,), tmp_path / "tiny.onnx")
    for argv in (["info", path], ["regions", path, "--plane", "square:1", "--out", str(tmp_path / "run")]):
        try:
            main(argv)
        except SystemExit as exc:
            assert exc.code in (0, None)
    out = capsys.readouterr().out
    assert "input shape (2,)" in out and "Linear(2 -> 10)" in out and "regions   yes" in out
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["num_regions"] == partition(from_onnx(path), netatlas.Plane.square(1.0)).num_regions
    assert summary["num_regions"] == partition(netatlas.nets.from_torch(module), netatlas.Plane.square(1.0)).num_regions


def test_cli_lowrank_analyze_takes_onnx(tmp_path):
    """The same classifier as .onnx and as .pt2 gives the same analysis."""
    from netatlas.cli import main

    module = netatlas.nets.mlp([64, 12, 10], "relu", seed=0)
    paths = [export(module, (64,), tmp_path / "digits.onnx"), str(tmp_path / "digits.pt2")]
    netatlas.nets.save(module, paths[1], input_shape=(64,))
    summaries = []
    for i, path in enumerate(paths):
        try:
            main(["lowrank", "analyze", path, "--data", "digits", "--n", "200", "--clusters", "8",
                  "--out", str(tmp_path / f"run{i}")])
        except SystemExit as exc:
            assert exc.code in (0, None)
        summaries.append(json.loads((tmp_path / f"run{i}" / "summary.json").read_text()))
    onnx_run, pt2_run = summaries
    assert onnx_run["accuracy"] == pt2_run["accuracy"]
    np.testing.assert_allclose(onnx_run["product_error"], pt2_run["product_error"], rtol=1e-9)


def test_final_softmax_is_kept_as_the_head():
    """Issue 28 turned the old refusal ("export the logits") into the head: net(x) is the logits, the
    head gives onnxruntime's probabilities; a softmax inside the network is still refused by name."""
    rng = np.random.default_rng(9)
    nodes = [helper.make_node("Gemm", ["x", "W"], ["h"]), helper.make_node("Softmax", ["h"], ["y"], name="probs")]
    model = make_model(nodes, ["N", 3], ["N", 4], [("W", rng.standard_normal((3, 4)))])
    net = from_onnx(model)
    x = rng.standard_normal((5, 3)).astype(np.float32).astype(np.float64)
    assert net.head.name == "softmax" and isinstance(net.nodes[-1].op, Linear)
    np.testing.assert_allclose(net.head_output(x), run_ort(model, x), rtol=0, atol=8 * EPS32)
    inside = [*nodes[:1], helper.make_node("Softmax", ["h"], ["p"], name="probs"),
              helper.make_node("Relu", ["p"], ["y"])]
    with pytest.raises(netatlas.UnsupportedLayerError, match=r"Softmax.*\(node 'probs'\).*final"):
        from_onnx(make_model(inside, ["N", 3], ["N", 4], [("W", rng.standard_normal((3, 4)))]))


@pytest.mark.parametrize("dims", [1, 2])
def test_conv_transpose_as_a_convolution(tmp_path, dims):
    conv_t = nn.ConvTranspose1d if dims == 1 else nn.ConvTranspose2d
    shape = (2, 5) if dims == 1 else (2, 4, 3)
    module = seeded(lambda: nn.Sequential(conv_t(2, 4, 3, stride=2, padding=1, output_padding=1, groups=2),
                                          nn.ReLU(), conv_t(4, 1, 2, dilation=2), nn.Flatten(), nn.LazyLinear(2)))
    module(torch.zeros(1, *shape))  # materialise the lazy layer
    net = check_against_oracles(export(module, shape, tmp_path / "t.onnx"), module, shape)
    # issue 28: no dense matrix any more; the strided layer spreads its input (a GatherLinear selection)
    assert [type(n.op).__name__ for n in net.nodes] == ["Input", "GatherLinear", "Conv", "Activation", "Conv", "Linear"]


def test_docs_example_runs():
    import re
    from pathlib import Path

    page = Path(__file__).resolve().parents[2] / "docs" / "onnx.md"
    code = re.search(r"```python\n(.*?)```", page.read_text(), re.S).group(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exec(compile(code, str(page), "exec"), {"__name__": "docs_onnx"})


@pytest.mark.slow
def test_trained_digits_cnn(tmp_path):
    """A LeNet-style CNN (BN, max pooling, ReLU6) trained on the 8x8 digits: dead units and trained
    BatchNorm statistics; the import agrees with both oracles and predicts the same classes as torch."""
    from netatlas.data import load as load_data
    from netatlas.train import fit

    data = load_data("digits", n=400, seed=0)
    torch.manual_seed(0)
    module = nn.Sequential(nn.Conv2d(1, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU6(), nn.MaxPool2d(2),
                           nn.Conv2d(6, 12, 3), nn.ReLU(), nn.Flatten(), nn.Linear(12 * 2 * 2, 10))
    history = fit(module, data, epochs=30, lr=2e-2, seed=0, progress=False)
    module.eval()
    assert history.final_accuracy > 0.9
    path = export(module, (1, 8, 8), tmp_path / "digits_cnn.onnx")
    x = data.x_test[:64].double()
    net = from_onnx(path)
    assert_roundoff_close(net(x), run_ort(path, x.numpy()), net, x, EPS32)
    with torch.no_grad():
        reference = copy.deepcopy(module).double()(x)
    assert_roundoff_close(net(x), reference, net, x, EPS32)
    top2 = reference.topk(2, dim=1).values
    clear = (top2[:, 0] - top2[:, 1]) > 1e-4  # classes agree wherever the top two logits are not tied
    assert torch.equal(net(x).argmax(1)[clear], reference.argmax(1)[clear])
    assert (net(x).argmax(1) == data.y_test[:64]).float().mean() > 0.7
    assert [net.nodes[i].op.name for i in net.activations] == ["hardtanh", "relu"]


@st.composite
def _window_ops(draw):
    """A Conv, MaxPool or AveragePool node with random kernel, stride, padding (asymmetric too, as the
    SAME padding of other frameworks), dilation, ceil mode."""
    op = draw(st.sampled_from(["Conv", "MaxPool", "AveragePool"]))
    size = (draw(st.integers(3, 8)), draw(st.integers(3, 8)))
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    attrs = {"kernel_shape": list(kernel), "strides": [draw(st.integers(1, 3)) for _ in kernel]}
    before = [draw(st.integers(0, k // 2)) for k in kernel]
    after = [draw(st.integers(0, k // 2)) for k in kernel]
    if op != "AveragePool":
        attrs["dilations"] = [draw(st.integers(1, 2)) for _ in kernel]
    if op != "Conv":
        attrs["ceil_mode"] = int(draw(st.booleans()))
    if op == "AveragePool":
        attrs["count_include_pad"] = int(draw(st.booleans()))
        if not attrs["count_include_pad"] or attrs["ceil_mode"]:
            after = before  # refused when asymmetric (test_asymmetric_average_pool_is_refused_where_ambiguous)
    if op == "Conv":
        attrs["group"] = draw(st.sampled_from([1, 2]))
    attrs["pads"] = before + after
    extent = [(k - 1) * attrs.get("dilations", [1, 1])[i] + 1 for i, k in enumerate(kernel)]
    assume(all(n + lo + hi >= e for n, lo, hi, e in zip(size, before, after, extent, strict=True)))
    return op, size, attrs


_WINDOW_EXAMPLES = [
    ("MaxPool", (7, 6), {"kernel_shape": [3, 2], "strides": [2, 1], "pads": [1, 1, 1, 1], "dilations": [2, 1],
                         "ceil_mode": 1}),
    ("AveragePool", (7, 5), {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1], "ceil_mode": 1,
                             "count_include_pad": 1}),
    ("AveragePool", (6, 6), {"kernel_shape": [2, 3], "strides": [3, 2], "pads": [1, 1, 1, 1], "ceil_mode": 0,
                             "count_include_pad": 0}),
    ("Conv", (6, 7), {"kernel_shape": [3, 2], "strides": [2, 3], "pads": [1, 1, 1, 1], "dilations": [2, 1],
                      "group": 2}),
    ("Conv", (8, 7), {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [0, 1, 1, 1], "dilations": [1, 1],
                      "group": 1}),  # TensorFlow's SAME padding with stride 2: more after than before
    ("MaxPool", (7, 8), {"kernel_shape": [2, 3], "strides": [2, 2], "pads": [0, 1, 1, 0], "dilations": [1, 1],
                         "ceil_mode": 0}),
    ("AveragePool", (5, 6), {"kernel_shape": [3, 2], "strides": [2, 2], "pads": [1, 0, 0, 1], "ceil_mode": 0,
                             "count_include_pad": 1}),
    ("MaxPool", (3, 3), {"kernel_shape": [1, 2], "strides": [1, 3], "pads": [0, 0, 0, 1], "dilations": [1, 1],
                         "ceil_mode": 1}),  # a last window starting in the right padding is dropped
]


@settings(max_examples=150, deadline=None)
@given(case=_window_ops(), seed=st.integers(0, 2**16))
@example(case=_WINDOW_EXAMPLES[0], seed=0)
@example(case=_WINDOW_EXAMPLES[1], seed=1)
@example(case=_WINDOW_EXAMPLES[2], seed=2)
@example(case=_WINDOW_EXAMPLES[3], seed=3)
@example(case=_WINDOW_EXAMPLES[4], seed=4)
@example(case=_WINDOW_EXAMPLES[5], seed=5)
@example(case=_WINDOW_EXAMPLES[6], seed=6)
@example(case=_WINDOW_EXAMPLES[7], seed=7)
def test_window_op_attributes_match_onnxruntime(case, seed):
    op, size, attrs = case
    rng = np.random.default_rng(seed)
    inits = []
    inputs = ["x"]
    if op == "Conv":
        kernel = rng.standard_normal((4, 4 // attrs["group"], *attrs["kernel_shape"]))
        inits = [("K", kernel), ("b", rng.standard_normal(4))]
        inputs += ["K", "b"]
    nodes = [helper.make_node(op, inputs, ["w"], **attrs), helper.make_node("Relu", ["w"], ["y"])]
    model = make_model(nodes, ["N", 4, *size], ["N", "C", "H", "W"], inits, opset=19)
    check_graph(model, (2, 4, *size), seed=seed)


def test_elementwise_activations():
    rng = np.random.default_rng(10)
    chain = [("Erf", {}), ("Elu", {"alpha": 0.75}), ("LeakyRelu", {"alpha": 0.25}), ("Softplus", {}),
             ("Sigmoid", {}), ("Tanh", {}), ("Gelu", {"approximate": "tanh"})]
    nodes, inits, current = [], [], "x"
    for i, (op, attrs) in enumerate(chain):
        nodes += [helper.make_node("MatMul", [current, f"W{i}"], [f"h{i}"]),
                  helper.make_node(op, [f"h{i}"], [f"a{i}"], **attrs)]
        inits.append((f"W{i}", rng.standard_normal((3, 3))))
        current = f"a{i}"
    nodes.append(helper.make_node("MatMul", [current, "V"], ["y"]))
    inits.append(("V", rng.standard_normal((3, 2))))
    net, _, _ = check_graph(make_model(nodes, ["N", 3], ["N", 2], inits, opset=20), (50, 3), scale=2.0)
    names = [net.nodes[i].op.describe() for i in net.activations]
    assert names == ["erf", "elu(alpha=0.75)", "leaky_relu(negative_slope=0.25)", "softplus(beta=1.0, threshold=700.0)",
                     "sigmoid", "tanh", "gelu_tanh"]


def test_channels_last_graph_with_transposes():
    """The layout TensorFlow exports write: NHWC input, Transpose to NCHW for Conv, back to NHWC to flatten."""
    rng = np.random.default_rng(11)
    nodes = [helper.make_node("Transpose", ["x"], ["t"], perm=[0, 3, 1, 2]),
             helper.make_node("Conv", ["t", "K"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("Transpose", ["r"], ["back"], perm=[0, 2, 3, 1]),
             helper.make_node("Reshape", ["back", "shape"], ["f"]),
             helper.make_node("Unsqueeze", ["f", "axes"], ["u"]),
             helper.make_node("Transpose", ["u"], ["v"], perm=[0, 2, 1]),  # moves a size-1 axis only: free
             helper.make_node("Flatten", ["v"], ["g"]),
             helper.make_node("MatMul", ["g", "W"], ["y"])]
    inits = [("K", rng.standard_normal((3, 2, 3, 3))), ("shape", np.array([-1, 5 * 4 * 3])), ("axes", np.array([1])),
             ("W", rng.standard_normal((60, 2)))]
    net, _, _ = check_graph(make_model(nodes, ["N", 5, 4, 2], ["N", 2], inits, opset=13), (6, 5, 4, 2))
    # the two real transposes are sparse permutations (issue 28; they were dense Linear maps before)
    assert [type(n.op).__name__ for n in net.nodes] == ["Input", "GatherLinear", "Conv", "Activation", "GatherLinear",
                                                        "Linear"]
    assert all(n.op.is_selection for n in net.nodes if isinstance(n.op, GatherLinear))


def test_random_ops_are_refused():
    nodes = [helper.make_node("RandomNormalLike", ["x"], ["n"], name="noise"),
             helper.make_node("Add", ["x", "n"], ["y"])]
    with pytest.raises(netatlas.UnsupportedLayerError, match="random ONNX op RandomNormalLike"):
        from_onnx(make_model(nodes, ["N", 3], ["N", 3]))


def test_prelu_hardsigmoid_neg_max_min():
    rng = np.random.default_rng(12)
    chain = [("PRelu", ["slope"], {}), ("HardSigmoid", [], {"alpha": 0.5, "beta": 0.25}), ("Neg", [], {}),
             ("Max", ["half"], {}), ("Min", ["one"], {}), ("Max", ["zero"], {})]
    nodes, current = [], "x"
    inits = [("slope", np.full((1, 3), 0.25)), ("half", np.float32(0.5)), ("one", [1.0]), ("zero", np.float32(0))]
    for i, (op, extra, attrs) in enumerate(chain):
        nodes += [helper.make_node("MatMul", [current, f"W{i}"], [f"h{i}"]),
                  helper.make_node(op, [f"h{i}", *extra], [f"a{i}"], **attrs)]
        inits.append((f"W{i}", rng.standard_normal((3, 3))))
        current = f"a{i}"
    nodes.append(helper.make_node("MatMul", [current, "V"], ["y"]))
    inits.append(("V", rng.standard_normal((3, 2))))
    net, _, _ = check_graph(make_model(nodes, ["N", 3], ["N", 2], inits, opset=13), (200, 3), scale=3.0)
    assert net.piecewise_linear
    assert [net.nodes[i].op.describe() for i in net.activations] == [
        "leaky_relu(negative_slope=0.25)", "hardtanh(min_val=0.0, max_val=1.0)",
        "hardtanh(min_val=0.5, max_val=inf)", "hardtanh(min_val=-inf, max_val=1.0)", "relu"]



def test_prelu_with_a_slope_per_channel():
    """relu(x) - a_c relu(-x): per feature after a Gemm, per channel after a Conv; a slope that varies
    along a spatial axis is refused by name."""
    rng = np.random.default_rng(14)
    features = make_model([helper.make_node("PRelu", ["x", "s"], ["y"], name="pr")], ["N", 3], ["N", 3],
                          [("s", [0.1, -0.2, 0.3])])
    net, _, _ = check_graph(features, (100, 3), scale=2.0)
    assert net.piecewise_linear and len(net.activations) == 2
    nodes = [helper.make_node("Conv", ["x", "K"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("PRelu", ["c", "s"], ["y"])]
    conv = make_model(nodes, ["N", 1, 5, 5], ["N", 2, 5, 5], [("K", rng.standard_normal((2, 1, 3, 3))),
                                                             ("s", np.array([0.25, 1.5]).reshape(2, 1, 1))])
    check_graph(conv, (4, 1, 5, 5))
    # a slope that varies along a spatial axis (refused before issue 28) is an elementwise GatherLinear
    spatial = make_model([helper.make_node("PRelu", ["x", "s"], ["y"], name="pr")], ["N", 2, 3], ["N", 2, 3],
                         [("s", [0.1, 0.2, 0.3])])
    net, _, _ = check_graph(spatial, (4, 2, 3))
    assert any(isinstance(n.op, GatherLinear) for n in net.nodes)


@pytest.mark.parametrize("opset", [9, 11, 13, 17])
def test_older_opsets(tmp_path, opset):
    """Clip moved its bounds from attributes to inputs (opset 11), Squeeze/Unsqueeze their axes (13),
    Dropout and BatchNormalization changed signature: each opset's export reads back the same."""
    for name in ("mlp_leaky_relu6_bn", "resnet_basic_blocks"):
        factory, shape = MODELS[name]
        module = seeded(factory)
        path = export(module, shape, tmp_path / f"{name}.onnx", opset=opset)
        assert onnx.load(path).opset_import[0].version == opset
        check_against_oracles(path, module, shape, scale=2.0)


def test_asymmetric_average_pool_is_refused_where_ambiguous():
    """Issue 28 turned the refusal of asymmetric padding with count_include_pad=0 (not ambiguous: each
    window's own divisor) into support: it agrees with onnxruntime; ceil_mode=1 stays refused."""
    nodes = [helper.make_node("AveragePool", ["x"], ["y"], kernel_shape=[2, 2], pads=[0, 0, 1, 1],
                              count_include_pad=0)]
    model = make_model(nodes, ["N", 1, 5, 5], ["N", 1, 3, 3])
    x = np.random.default_rng(0).standard_normal((2, 1, 5, 5)).astype(np.float32).astype(np.float64)
    assert np.abs(from_onnx(model)(x) - run_ort(model, x).reshape(2, -1)).max() <= 4 * EPS32 * np.abs(x).max()
    # onnxruntime drops a last window that starts in the right padding where ONNX's shape inference keeps it
    nodes = [helper.make_node("AveragePool", ["x"], ["y"], kernel_shape=[1, 2], strides=[1, 3], pads=[0, 0, 0, 1],
                              ceil_mode=1, count_include_pad=1)]
    with pytest.raises(netatlas.UnsupportedLayerError, match="ceil_mode=1"):
        from_onnx(make_model(nodes, ["N", 1, 3, 3], ["N", 1, 3, 2]))


@pytest.mark.parametrize("opset", [9, 13, 19])
def test_pad_node_zero_padding_and_cropping(opset):
    """Pad (constant zero) on channels and spatial dims, negative pads (cropping), pads as an attribute
    (opset 9) or an input (opset 11+), with axes (opset 18+); then a conv, so the padding matters."""
    rng = np.random.default_rng(12)
    pads = [0, 1, 2, -1, 0, 0, 1, 2]  # (N, C, H, W) before, then after
    inits = [("K", rng.standard_normal((2, 2, 3, 3)))]
    if opset == 9:
        pad = helper.make_node("Pad", ["x"], ["p"], pads=pads)
    elif opset == 13:
        pad = helper.make_node("Pad", ["x", "pads"], ["p"])
        inits.append(("pads", np.array(pads, np.int64)))
    else:  # only H and W listed in axes
        pad = helper.make_node("Pad", ["x", "pads", "", "axes"], ["p"])
        inits += [("pads", np.array([2, -1, 1, 2], np.int64)), ("axes", np.array([2, 3], np.int64))]
    if opset == 19:  # no channel padding with these axes
        inits[0] = ("K", rng.standard_normal((2, 1, 3, 3)))
    nodes = [pad, helper.make_node("Conv", ["p", "K"], ["c"]), helper.make_node("Relu", ["c"], ["y"])]
    net, _, _ = check_graph(make_model(nodes, ["N", 1, 6, 6], ["N", 2, "H", "W"], inits, opset=opset), (3, 1, 6, 6))
    assert any(type(n.op).__name__ == "Pad" for n in net.nodes)


def test_pad_reflect_reads_back_and_too_wide_reflect_is_refused():
    """Reflect padding (refused before issue 28) is a GatherLinear selection; a reflection wider than
    its dim (which onnxruntime refuses too) is refused by name."""
    nodes = [helper.make_node("Pad", ["x", "pads"], ["y"], mode="reflect")]
    model = make_model(nodes, ["N", 1, 4, 4], ["N", 1, 6, 6], [("pads", np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64))],
                       opset=13)
    check_graph(model, (3, 1, 4, 4))
    wide = make_model(nodes, ["N", 1, 4, 4], ["N", 1, 12, 12],
                      [("pads", np.array([0, 0, 4, 4, 0, 0, 4, 4], np.int64))], opset=13)
    with pytest.raises(netatlas.UnsupportedLayerError, match="reflect"):
        from_onnx(wide)


def test_conv_transpose_with_asymmetric_pads():
    rng = np.random.default_rng(13)
    nodes = [helper.make_node("ConvTranspose", ["x", "K", "b"], ["c"], strides=[2, 2], pads=[0, 1, 1, 0]),
             helper.make_node("Relu", ["c"], ["y"])]
    inits = [("K", rng.standard_normal((2, 3, 3, 3))), ("b", rng.standard_normal(3))]
    check_graph(make_model(nodes, ["N", 2, 4, 4], ["N", 3, "H", "W"], inits), (3, 2, 4, 4))
