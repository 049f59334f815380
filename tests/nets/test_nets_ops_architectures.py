"""The classic ImageNet architectures (narrow versions at (3, 224, 224), ``classic_architectures``) import
from ONNX (``torch.onnx.export``) and from torch, and agree with onnxruntime and with torch in float64.
Before issue 28 only DenseNet-121 exported without its head imported. Partitioning a window of a plane
through three 224x224 inputs is timed in ``benchmarks/classic_architectures.py``."""

import io

import numpy as np
import pytest
import torch

from classic_architectures import ARCHITECTURES, SHAPE, build
from netatlas.nets import from_onnx, from_torch

EPS32 = float(np.finfo(np.float32).eps)


def run_ort(data, x):
    import onnxruntime as ort

    return ort.InferenceSession(data, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]


def export(model):
    buffer = io.BytesIO()
    torch.onnx.export(model, (torch.zeros(1, *SHAPE),), buffer, input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {0: "N"}, "y": {0: "N"}}, dynamo=False, opset_version=17)
    return buffer.getvalue()


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_classic_architecture_imports_and_agrees(name):
    model = build(name)
    data = export(model)
    net = from_onnx(data)
    assert net.head is not None and net.head.name == "softmax"
    x = torch.randn(2, *SHAPE, generator=torch.Generator().manual_seed(0)).numpy()
    # probabilities of 5 classes from O(1) logits: float32 round-off through ~10^3-term sums per layer,
    # a dozen layers; 1e-4 is ~10^3 eps32, far below any structural mistake (a wrong permutation or
    # padding changes the probabilities at the 1e-2 level for these random weights)
    np.testing.assert_allclose(net.head_output(x.astype(np.float64)), run_ort(data, x), rtol=0, atol=1e-4)
    assert net.piecewise_linear, net.lenses()["regions"]
    traced = from_torch(model, SHAPE)
    x64 = torch.as_tensor(x, dtype=torch.float64)
    expected = model.double()(x64)
    assert torch.allclose(traced.head_output(x64), expected, rtol=1e-10, atol=1e-12)
    assert torch.allclose(torch.as_tensor(net.head_output(x64.numpy())), expected, rtol=0, atol=1e-4)


@pytest.mark.slow
def test_alexnet_with_local_response_normalisation():
    """AlexNet's LRN (an ONNX LRN node after the first ReLU: torch's TorchScript exporter writes
    nn.LocalResponseNorm as a branch, which is refused by name) imports as a smooth op: the regions lens
    refuses the net by name, the others take it."""
    import onnx
    from onnx import helper

    from classic_architectures import AlexNet

    torch.manual_seed(0)
    model = onnx.load_from_string(export(AlexNet(lrn=False).eval()))
    nodes = list(model.graph.node)
    first = next(i for i, n in enumerate(nodes) if n.op_type == "Relu")
    relu_out = nodes[first].output[0]
    lrn = helper.make_node("LRN", [relu_out], ["lrn_out"], size=5, alpha=1e-4, beta=0.75, bias=2.0)
    for n in nodes[first + 1:]:
        n.input[:] = ["lrn_out" if name == relu_out else name for name in n.input]
    model.graph.ClearField("node")
    model.graph.node.extend([*nodes[: first + 1], lrn, *nodes[first + 1:]])
    data = model.SerializeToString()
    net = from_onnx(data)
    x = torch.randn(2, *SHAPE, generator=torch.Generator().manual_seed(1)).numpy()
    np.testing.assert_allclose(net.head_output(x.astype(np.float64)), run_ort(data, x), rtol=0, atol=1e-4)
    assert net.lenses()["regions"].startswith("no: smooth ops ['LocalResponseNorm']")
