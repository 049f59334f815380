"""Classifier heads (issue 28): a final Softmax/LogSoftmax is kept as the Net's ``head``; ``net(x)`` is
the logits, ``net.head_output(x)`` the model's own output (against onnxruntime and torch); the regions
lens analyses the logits (the same partition as the net without its head); a softmax anywhere else is
refused by name; ``info`` says so."""

import json

import numpy as np
import pytest
import torch
from onnx import helper
from test_nets_onnx import make_model, run_ort
from torch import nn

import netatlas
from netatlas import Plane
from netatlas.cli import main
from netatlas.nets import Head, Net, from_onnx, from_torch
from netatlas.regions import partition

EPS32 = float(np.finfo(np.float32).eps)


@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax"])
@pytest.mark.parametrize("opset", [11, 17])
def test_onnx_head_is_kept_and_reproduces_onnxruntime(op, opset):
    rng = np.random.default_rng(0)
    nodes = [helper.make_node("Gemm", ["x", "W", "b"], ["h"]), helper.make_node("Relu", ["h"], ["r"]),
             helper.make_node("Gemm", ["r", "V"], ["logits"]), helper.make_node(op, ["logits"], ["y"], name="head")]
    inits = [("W", rng.standard_normal((2, 8))), ("b", rng.standard_normal(8)), ("V", rng.standard_normal((8, 3)))]
    model = make_model(nodes, ["N", 2], ["N", 3], inits, opset=opset)
    net = from_onnx(model)
    assert net.head == Head("softmax" if op == "Softmax" else "log_softmax")
    x = rng.standard_normal((20, 2)).astype(np.float32).astype(np.float64)
    logits = net(x)
    # the logits are the graph before the head, bit for bit the same as importing it without the head
    headless = _without_head(nodes, inits, opset)
    assert np.array_equal(logits, headless(x)) and headless.head is None
    # softmax of logits within ~|logit| float32 roundings; log-softmax the same, additively
    bound = 16 * EPS32 * (1 + np.abs(logits).max())
    assert np.abs(net.head_output(x) - run_ort(model, x)).max() <= bound


def _without_head(nodes, inits, opset):
    body = [*nodes[:2], helper.make_node("Gemm", ["r", "V"], ["y"])]
    return from_onnx(make_model(body, ["N", 2], ["N", 3], inits, opset=opset))


def test_softmax_inside_the_network_or_over_a_dim_is_refused():
    rng = np.random.default_rng(1)
    inside = [helper.make_node("Softmax", ["x"], ["s"], name="inner"), helper.make_node("Gemm", ["s", "W"], ["y"])]
    with pytest.raises(netatlas.UnsupportedLayerError, match=r"Softmax.*'inner'.*final softmax"):
        from_onnx(make_model(inside, ["N", 3], ["N", 2], [("W", rng.standard_normal((3, 2)))]))
    per_row = [helper.make_node("Conv", ["x", "K"], ["c"]), helper.make_node("Softmax", ["c"], ["y"], axis=-1)]
    with pytest.raises(netatlas.UnsupportedLayerError, match="flatten the logits"):
        from_onnx(make_model(per_row, ["N", 1, 4, 4], ["N", 2, 2, 2], [("K", rng.standard_normal((2, 1, 3, 3)))]))
    with pytest.raises(netatlas.UnsupportedLayerError, match="only supported as the model's final head"):
        from_torch(nn.Sequential(nn.Linear(2, 3), nn.Softmax(dim=1), nn.Linear(3, 1)))


class _Classifier(nn.Module):
    def __init__(self, log):
        super().__init__()
        torch.manual_seed(3)
        self.body = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 3))
        self.log = log

    def forward(self, x):
        logits = self.body(x)
        return nn.functional.log_softmax(logits, dim=1) if self.log else torch.softmax(logits, -1)


@pytest.mark.parametrize("log", [False, True])
def test_from_torch_head_through_export_and_sequential(log):
    exported = _Classifier(log).eval()
    sequential = nn.Sequential(*exported.body, nn.LogSoftmax(dim=1) if log else nn.Softmax(dim=1)).eval()
    x = torch.randn(30, 2, dtype=torch.float64)
    for model in (exported, sequential):
        net = from_torch(model, (2,))
        assert net.head.name == ("log_softmax" if log else "softmax")
        assert torch.allclose(net(x), exported.body.double()(x), rtol=1e-13, atol=1e-13)  # the logits
        assert torch.allclose(net.head_output(x), model.double()(x), rtol=1e-13, atol=1e-13)
        model.float()


def test_regions_analyse_the_logits_and_info_says_so(tmp_path, capsys):
    model = _Classifier(False).eval()
    net = from_torch(model, (2,))
    bare = Net(net.nodes)  # the same graph without its head
    plane = Plane.square(2.0)
    with_head, without = partition(net, plane), partition(bare, plane)
    assert with_head.num_regions == without.num_regions
    assert np.array_equal(with_head.predicted_class(), without.predicted_class())  # arg-max of the logits
    assert net.lenses()["regions"] == "yes (on the logits before the softmax head)"
    assert "head: softmax" in net.summary() and net.to_dict()["head"] == "softmax"
    path = tmp_path / "clf.onnx"
    torch.onnx.export(model, (torch.zeros(1, 2),), str(path), input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {0: "N"}, "y": {0: "N"}}, dynamo=False)
    with pytest.raises(SystemExit) as exc:
        main(["info", str(path), "--json"])
    assert exc.value.code == 0
    assert json.loads(capsys.readouterr().out)["head"] == "softmax"


@pytest.mark.parametrize("suffix", [".pt2", ".pt", ".safetensors"])
def test_saved_files_keep_the_head_and_files_without_one_load_as_before(tmp_path, suffix):
    torch.manual_seed(4)
    body = [nn.Linear(2, 6), nn.ReLU(), nn.Linear(6, 3)]
    layers = [{"type": "linear", "in": 2, "out": 6}, {"type": "relu"}, {"type": "linear", "in": 6, "out": 3}]
    x = torch.randn(10, 2, dtype=torch.float64)
    for head, spec_head in ((nn.LogSoftmax(dim=1), "log_softmax"), (nn.Softmax(dim=1), "softmax"), (None, None)):
        model = nn.Sequential(*body, *([head] if head is not None else [])).eval()
        path = tmp_path / f"m_{spec_head}{suffix}"
        spec = {"layers": layers + ([{"type": spec_head}] if spec_head else [])}
        netatlas.nets.save(model, path, input_shape=(2,), spec=None if suffix == ".pt2" else spec)
        net = netatlas.nets.load(path)
        assert (net.head is None) if head is None else (net.head.name == spec_head)
        assert torch.allclose(net.head_output(x), model.double()(x), rtol=1e-6, atol=1e-7)  # float32 weights
        model.float()


def test_info_says_the_regions_analyse_the_logits(tmp_path, capsys):
    model = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 3), nn.Softmax(dim=1)).eval()
    netatlas.nets.save(model, tmp_path / "clf.pt2", input_shape=(2,))
    with pytest.raises(SystemExit) as exc:
        main(["info", str(tmp_path / "clf.pt2")])
    assert exc.value.code == 0
    assert "head: softmax (regions analyse the logits; arg-max unchanged)" in capsys.readouterr().out
