"""Smooth ops for the smooth lenses (issue 28): Selu, Exp, Sqrt (domain checked), Softsign, LRN,
InstanceNormalization, LayerNormalization. Against onnxruntime (float32: each op is a few float32
roundings of an O(1)-conditioned function of an exactly representable input) and torch in float64;
the regions lens refuses them by name; the metric lens differentiates through them."""

import numpy as np
import pytest
import torch
from onnx import helper
from test_nets_onnx import make_model, run_ort
from torch import nn

import netatlas
from netatlas import Plane
from netatlas.nets import LocalResponseNorm, Normalize, from_onnx, from_torch
from netatlas.regions import partition

EPS32 = float(np.finfo(np.float32).eps)

CASES = [
    ("selu", [helper.make_node("Selu", ["x"], ["y"])], [], (5,)),
    ("selu-params", [helper.make_node("Selu", ["x"], ["y"], alpha=0.5, gamma=2.0)], [], (5,)),
    ("exp", [helper.make_node("Exp", ["x"], ["y"])], [], (5,)),
    ("softsign", [helper.make_node("Softsign", ["x"], ["y"])], [], (5,)),
    ("sqrt", [helper.make_node("Abs", ["x"], ["a"]), helper.make_node("Sqrt", ["a"], ["y"])], [], (5,)),
    ("lrn", [helper.make_node("LRN", ["x"], ["y"], size=3, alpha=0.1, beta=0.75, bias=2.0)], [], (6, 3, 3)),
    ("instance-norm", [helper.make_node("InstanceNormalization", ["x", "s", "b"], ["y"])],
     [("s", [1.0, 2.0, -3.0]), ("b", [0.0, 1.0, -1.0])], (3, 4, 5)),
    ("layer-norm", [helper.make_node("LayerNormalization", ["x", "s", "b"], ["y"], axis=-2)],
     [("s", np.arange(15.0).reshape(3, 5) / 7), ("b", np.ones((3, 5)))], (2, 3, 5)),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_smooth_op_agrees_with_onnxruntime(case):
    name, nodes, inits, shape = case
    model = make_model(nodes, ["N", *shape], ["N", *shape], inits)
    x = np.random.default_rng(0).standard_normal((4, *shape)).astype(np.float32).astype(np.float64)
    net = from_onnx(model)
    got, ref = net(x), run_ort(model, x).reshape(4, -1)
    # a handful of float32 roundings (16) of an O(1)-conditioned result; normalisations divide by a
    # standard deviation of O(1) here, so the same bound holds relative to the output's scale
    assert np.abs(got - ref).max() <= 16 * EPS32 * (1 + np.abs(ref).max())
    assert not net.piecewise_linear
    with pytest.raises(netatlas.UnsupportedLayerError, match="not piecewise linear|smooth"):
        partition(net, Plane.through(*np.random.default_rng(1).standard_normal((3, *shape))))


def test_from_torch_smooth_modules_agree_with_torch_in_float64():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 4, 3), nn.LocalResponseNorm(3, alpha=0.2, k=1.5),
                          nn.InstanceNorm2d(4, affine=True), nn.SELU(), nn.Flatten(), nn.LayerNorm(64),
                          nn.Softsign(), nn.Linear(64, 3)).eval()
    with torch.no_grad():  # non-trivial affine parameters
        model[2].weight.normal_(), model[2].bias.normal_(), model[5].weight.normal_(), model[5].bias.normal_()
    net = from_torch(model, (2, 6, 6))
    kinds = {type(n.op).__name__ for n in net.nodes}
    assert {"LocalResponseNorm", "Normalize"} <= kinds
    x = torch.randn(5, 2, 6, 6, dtype=torch.float64)
    assert torch.allclose(net(x), model.double()(x), rtol=1e-12, atol=1e-12)
    assert net.lenses()["regions"].startswith("no: smooth")


def test_exported_exp_sqrt_selu_layer_norm_agree_with_torch():
    class Smooth(nn.Module):
        def __init__(self):
            super().__init__()
            torch.manual_seed(1)
            self.fc, self.norm = nn.Linear(3, 4), nn.LayerNorm(4)

        def forward(self, x):
            h = self.norm(self.fc(x))
            return torch.selu(h) + torch.exp(-h) + torch.sqrt(torch.exp(h))

    model = Smooth().eval()
    net = from_torch(model, (3,))
    x = torch.randn(7, 3, dtype=torch.float64)
    assert torch.allclose(net(x), model.double()(x), rtol=1e-12, atol=1e-12)


def test_sqrt_of_a_negative_input_is_refused_by_name():
    model = make_model([helper.make_node("Sqrt", ["x"], ["y"], name="root")], ["N", 2], ["N", 2])
    net = from_onnx(model)
    assert np.allclose(net(np.array([[4.0, 0.25]])), [[2.0, 0.5]])
    with pytest.raises(ValueError, match="sqrt at node 1 .* negative input"):
        net(np.array([[1.0, -1e-3]]))


def test_metric_lens_differentiates_through_normalisation():
    """The pullback metric of a net with layer normalisation: J from the metric lens equals the float64
    Jacobian of the torch module (autograd on the module itself)."""
    torch.manual_seed(2)
    model = nn.Sequential(nn.Linear(3, 5), nn.LayerNorm(5), nn.Tanh(), nn.Linear(5, 4)).eval()
    net = from_torch(model, (3,))
    x = torch.randn(2, 3, dtype=torch.float64)
    g = torch.as_tensor(np.asarray(netatlas.metric.metric(net, x)))
    ref = torch.stack([torch.autograd.functional.jacobian(model.double(), xi[None])[0, :, 0] for xi in x])
    assert torch.allclose(g, ref.transpose(1, 2) @ ref, rtol=1e-10, atol=1e-12)


def test_ops_validate_their_parameters():
    assert Normalize((1,), 1e-5, (2, 3))(torch.zeros(1, 6)).abs().max() == 0
    op = LocalResponseNorm(3, 1.0, 1.0, 1.0, (3,))  # no spatial dims: the window runs over the channels
    y = op(torch.tensor([[1.0, 2.0, 0.0]], dtype=torch.float64))
    assert torch.allclose(y, torch.tensor([[1 / (1 + 5 / 3), 2 / (1 + 5 / 3), 0.0]], dtype=torch.float64))
