"""Ops as torch.onnx.export writes them (issue 28): Softsign as ``x / (1 + |x|)`` (both exporters) and
LocalResponseNorm as torch's own formula (Mul, Reshape, Pad, AveragePool, Squeeze, Mul, Add, Pow, Div: the
dynamo exporter) import as one op and agree with torch in float64 and with onnxruntime within float32
round-off; the forms that cannot be read exactly (an even LRN size, the legacy exporter's If) are refused by
name. Also the ops the ONNX coverage table asked for: Shrink, AveragePool with asymmetric padding and
count_include_pad=0, and files that only reshape their input or only apply a head."""

import io
import logging
import warnings

import numpy as np
import onnx
import pytest
import torch
from onnx import helper
from test_nets_onnx import make_model, run_ort
from torch import nn

import netatlas
from netatlas.nets import LocalResponseNorm, from_onnx

EPS32 = float(np.finfo(np.float32).eps)


def _export(module, shape, dynamo):
    module.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logging.disable(logging.WARNING)
        try:
            if dynamo:
                return torch.onnx.export(module, (torch.zeros(2, *shape),), dynamo=True, verbose=False).model_proto
            buffer = io.BytesIO()
            torch.onnx.export(module, (torch.zeros(2, *shape),), buffer, dynamo=False, opset_version=17)
            return onnx.load_from_string(buffer.getvalue())
        finally:
            logging.disable(logging.NOTSET)


class _ManualSoftsign(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, 5)

    def forward(self, x):
        z = self.linear(x)
        return z / (1 + z.abs())


def _check(module, model, shape):
    net = from_onnx(model)
    x = np.random.default_rng(0).standard_normal((2, *shape)).astype(np.float32).astype(np.float64)
    got = net(x)
    expected = module.double()(torch.as_tensor(x)).detach().reshape(2, -1)
    assert torch.allclose(torch.as_tensor(got), expected, rtol=1e-12, atol=1e-13)  # the same function
    module.float()
    return net, x, got


@pytest.mark.parametrize("dynamo", [False, True])
@pytest.mark.parametrize("kind", ["module", "formula"])
def test_exported_softsign_imports_as_softsign(dynamo, kind):
    torch.manual_seed(0)
    module = nn.Sequential(nn.Linear(4, 5), nn.Softsign()) if kind == "module" else _ManualSoftsign()
    model = _export(module, (4,), dynamo)
    assert {"Abs", "Div"} <= {n.op_type for n in model.graph.node}  # the x / (1 + |x|) form
    net, x, got = _check(module, model, (4,))
    assert [n.op.name for n in net.nodes if hasattr(n.op, "name")] == ["softsign"]  # |x|'s ReLUs are gone
    # softsign is 1-Lipschitz and |x| / (1 + |x|) < 1: a few float32 roundings beyond the Linear's own
    assert np.abs(got - run_ort(model, x)).max() <= 8 * 5 * EPS32 * (1 + np.abs(x).sum(1).max())


def test_other_quotients_of_abs_stay_refused():
    rng = np.random.default_rng(1)
    for shift, numerator in ((2.0, "x"), (1.0, "w")):  # x / (2 + |x|), and w / (1 + |x|) with w != x
        nodes = [helper.make_node("Neg", ["x"], ["w"]), helper.make_node("Abs", ["x"], ["a"]),
                 helper.make_node("Add", ["a", "one"], ["d"]), helper.make_node("Div", [numerator, "d"], ["y"])]
        model = make_model(nodes, ["N", 3], ["N", 3], [("one", np.array(shift)), ("r", rng.standard_normal(1))])
        with pytest.raises(netatlas.UnsupportedLayerError, match="Div by an input-dependent value"):
            from_onnx(model)


@pytest.mark.parametrize("case", [("conv2d", 3, (3, 7, 7)), ("conv2d", 5, (3, 7, 7)), ("conv1d", 3, (3, 9))],
                         ids=["2d-size3", "2d-size5", "1d-size3"])
def test_dynamo_exported_local_response_norm_imports_as_lrn(case):
    conv, size, shape = case
    torch.manual_seed(2)
    layer = nn.Conv2d(3, 6, 3) if conv == "conv2d" else nn.Conv1d(3, 6, 3)
    module = nn.Sequential(layer, nn.LocalResponseNorm(size, alpha=0.25, beta=0.75, k=1.5))  # float32-exact
    model = _export(module, shape, dynamo=True)
    assert "LRN" not in {n.op_type for n in model.graph.node} and "AveragePool" in {n.op_type for n in model.graph.node}
    net, x, got = _check(module, model, shape)
    assert sum(isinstance(n.op, LocalResponseNorm) for n in net.nodes) == 1
    # float32 round-off: the conv's, <= fan_in eps (|W| |x| + |b|) per output (Higham's gamma_n), passed on by
    # the LRN with a gain <= 2 (its divisor is >= k^beta >= 1), plus a few roundings of the LRN itself
    envelope = nn.functional.conv2d if conv == "conv2d" else nn.functional.conv1d
    magnitude = envelope(torch.as_tensor(x).abs(), layer.weight.double().abs(), layer.bias.double().abs())
    fan_in = layer.weight[0].numel() + 1
    bound = 2 * fan_in * EPS32 * magnitude.detach().reshape(2, -1).numpy() + 16 * EPS32 * np.abs(got)
    assert (np.abs(got - run_ort(model, x).reshape(2, -1)) <= bound).all()


def test_exported_local_response_norm_that_cannot_be_read_is_refused_by_name():
    module = nn.Sequential(nn.Conv2d(3, 6, 3), nn.LocalResponseNorm(4))
    with pytest.raises(netatlas.UnsupportedLayerError, match="LocalResponseNorm with the even size 4"):
        from_onnx(_export(module, (3, 7, 7), dynamo=True))
    with pytest.raises(netatlas.UnsupportedLayerError, match="If .*export with dynamo=True"):
        from_onnx(_export(nn.Sequential(nn.Conv2d(3, 6, 3), nn.LocalResponseNorm(3)), (3, 7, 7), dynamo=False))


def test_shrink_with_bias_equal_to_lambd_is_two_relus():
    model = make_model([helper.make_node("Shrink", ["x"], ["y"], bias=0.75, lambd=0.75)], ["N", 6], ["N", 6])
    net = from_onnx(model)
    x = np.linspace(-2, 2, 60).reshape(10, 6)
    assert np.array_equal(net(x), np.sign(x) * np.maximum(np.abs(x) - 0.75, 0))  # soft shrinkage, exact
    assert np.abs(net(x) - run_ort(model, x)).max() <= 2 * EPS32 * 2  # one float32 rounding of |x| <= 2
    assert net.piecewise_linear
    jumpy = make_model([helper.make_node("Shrink", ["x"], ["y"], lambd=0.5)], ["N", 6], ["N", 6])
    with pytest.raises(netatlas.UnsupportedLayerError, match="Shrink with bias 0 and lambd 0.5"):
        from_onnx(jumpy)


@pytest.mark.parametrize("pads", [{"auto_pad": "SAME_UPPER"}, {"pads": [0, 1, 2, 1]}, {"pads": [1, 1, 1, 1]}])
def test_average_pool_excluding_asymmetric_padding_agrees_with_onnxruntime(pads):
    node = helper.make_node("AveragePool", ["x"], ["y"], kernel_shape=[3, 3], strides=[2, 2], count_include_pad=0,
                            **pads)
    model = make_model([node], ["N", 2, 6, 7], ["N", 2, "H", "W"])
    net = from_onnx(model)
    x = np.random.default_rng(3).standard_normal((3, 2, 6, 7)).astype(np.float32).astype(np.float64)
    ref = run_ort(model, x).reshape(3, -1)
    # a mean of <= 9 float32 values: <= 9 roundings of values of size <= max |x|
    assert np.abs(net(x) - ref).max() <= 10 * EPS32 * np.abs(x).max()
    assert net.piecewise_linear


@pytest.mark.parametrize("nodes, shape", [
    ([helper.make_node("Flatten", ["x"], ["y"])], (2, 3)),
    ([helper.make_node("Transpose", ["x"], ["y"], perm=[0, 2, 1])], (2, 3)),
    ([helper.make_node("Softmax", ["x"], ["y"])], (5,)),
    ([helper.make_node("LogSoftmax", ["x"], ["y"], axis=1)], (5,)),
], ids=["flatten", "transpose", "softmax", "log-softmax"])
def test_files_that_only_reshape_or_apply_a_head_import_as_the_identity(nodes, shape):
    out_shape = shape[::-1] if nodes[0].op_type == "Transpose" else (int(np.prod(shape)),)
    model = make_model(nodes, ["N", *shape], ["N", *out_shape], opset=13)
    net = from_onnx(model)
    x = np.random.default_rng(4).standard_normal((3, *shape)).astype(np.float32).astype(np.float64)
    ref = run_ort(model, x).reshape(3, -1)
    assert np.abs(net.head_output(x) - ref).max() <= 4 * EPS32 * (1 + np.abs(x).max())
    assert net.piecewise_linear and len(net.nodes) == 2
