"""Exact regions of ONNX exports through planes of three images: a small ResNet (no max pool) against the
independent reference, a max-pool CNN against the independent max-pool reference, and zoo.resnet_tiny
(stem max pool) against the torch route."""

import warnings

import numpy as np
import pytest
import torch
from regions_reference import reference_regions
from torch import nn

import netatlas
from netatlas.nets import from_onnx
from netatlas.regions import partition

pytest.importorskip("onnx")


class _Block(nn.Module):
    def __init__(self, c_in, c_out, stride=1):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out)
        self.conv2, self.bn2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False), nn.BatchNorm2d(c_out)
        self.down = None
        if stride != 1 or c_in != c_out:
            self.down = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x):
        y = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        return torch.relu(y + (x if self.down is None else self.down(x)))


class _ResNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1, bias=False), nn.BatchNorm2d(3), nn.ReLU())
        self.layer1, self.layer2 = _Block(3, 3), _Block(3, 4, stride=2)
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        x = self.layer2(self.layer1(self.stem(x)))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


@pytest.mark.slow
def test_onnx_resnet_plane_through_images(tmp_path):
    torch.manual_seed(0)
    model = _ResNet()
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5, generator=g)
                m.running_var.uniform_(0.5, 2.0, generator=g)
                m.weight.uniform_(0.5, 1.5, generator=g)
                m.bias.uniform_(-0.3, 0.3, generator=g)
    model.eval()
    path = tmp_path / "resnet.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.zeros(2, 1, 6, 6),), str(path), dynamo=False)
    net = netatlas.nets.load(path)
    assert net.input_shape == (1, 6, 6) and net.piecewise_linear
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 1, size=(1, 1, 6, 6)) + 0.05 * rng.normal(size=(3, 1, 6, 6))
    plane = netatlas.Plane.through(*images)
    part = partition(net, plane)
    assert (part.areas > 0).all() and abs(part.areas.sum() - plane.area) <= 1e-9 * plane.area
    # every sampled point: its region's affine map gives the forward pass of the ONNX graph
    umin, umax, vmin, vmax = plane.bounds
    uv = np.stack([rng.uniform(umin, umax, 300), rng.uniform(vmin, vmax, 300)], 1)
    region = part.locate(uv)
    y = np.asarray(net(plane.to_input(uv)))
    mapped = np.einsum("pkd,pd->pk", part.output_linear[region], uv) + part.output_offset[region]
    assert np.abs(mapped - y).max() <= 1e-9 * np.abs(y).max()
    assert part.num_regions == len(reference_regions(net, plane))
    assert part.num_regions > 1 and from_onnx(path).n_hidden_units == net.n_hidden_units


def _export(model, shape, path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model.eval(), (torch.zeros(1, *shape),), str(path), dynamo=False)
    return path


def _check_tiling_and_outputs(net, plane, part, seed=0):
    assert (part.areas > 0).all() and abs(part.areas.sum() - plane.area) <= 1e-9 * plane.area
    rng = np.random.default_rng(seed)
    umin, umax, vmin, vmax = plane.bounds
    uv = np.stack([rng.uniform(umin, umax, 400), rng.uniform(vmin, vmax, 400)], 1)
    y = np.asarray(net(plane.to_input(uv)))
    assert np.abs(part.outputs(uv, part.locate(uv)) - y).max() <= 1e-9 * np.abs(y).max()


def _three_inputs(shape, seed, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    return [scale * torch.randn(*shape, generator=g, dtype=torch.float64).numpy() for _ in range(3)]


@pytest.mark.slow
def test_onnx_max_pool_cnn_matches_the_max_reference(tmp_path):
    """conv-BN-ReLU-maxpool(3, 2, pad 1, ceil)-fc-ReLU6-fc exported to ONNX: the partition of the imported
    graph equals the independent max-pool reference's and the torch module's."""
    from max_reference import reference_regions as max_reference_regions

    torch.manual_seed(1)
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.BatchNorm2d(2), nn.ReLU(),
                          nn.MaxPool2d(3, 2, 1, ceil_mode=True), nn.Flatten(), nn.Linear(2 * 3 * 3, 6), nn.ReLU6(),
                          nn.Linear(6, 3))
    with torch.no_grad():
        model[1].running_mean.uniform_(-0.3, 0.3)
        model[1].running_var.uniform_(0.5, 1.5)
    model.eval()
    net = netatlas.nets.load(_export(model, (1, 5, 5), tmp_path / "cnn.onnx"))
    assert {type(n.op).__name__ for n in net.nodes} >= {"Max", "Conv"} and net.piecewise_linear
    plane = netatlas.Plane.through(*_three_inputs((1, 5, 5), 1, scale=0.35))
    part = partition(net, plane)
    _check_tiling_and_outputs(net, plane, part)
    assert part.num_regions == len(max_reference_regions(net, plane))
    assert part.num_regions == partition(model, plane).num_regions


@pytest.mark.slow
def test_onnx_resnet_tiny_with_stem_max_pool(tmp_path):
    """netatlas.nets.zoo.resnet_tiny (stem max pool, identity and stride-2 downsampling BasicBlocks, global
    average pool) through ONNX: an exact partition with the same regions as the torch route."""
    from netatlas.nets import zoo

    model = zoo.resnet_tiny(width=2, seed=0)
    net = from_onnx(_export(model, (1, 8, 8), tmp_path / "resnet_tiny.onnx"))
    assert {type(n.op).__name__ for n in net.nodes} >= {"Max", "Add", "Conv"}
    plane = netatlas.Plane.through(*_three_inputs((1, 8, 8), 1))
    part = partition(net, plane)
    _check_tiling_and_outputs(net, plane, part)
    assert part.num_regions == partition(netatlas.nets.from_torch(model, (1, 8, 8)), plane).num_regions > 10


def test_onnx_same_padding_and_prelu_per_channel_partition_exactly():
    """What TensorFlow exports: SAME padding with stride 2 (more after than before) and PRelu with a
    slope per channel (two ReLUs with one kink); areas tile the plane and each region's affine map is
    the forward pass at random points inside it."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    inits = {"K": rng.standard_normal((3, 1, 3, 3)), "s": np.array([0.2, -0.5, 1.5]).reshape(3, 1, 1),
             "W": rng.standard_normal((27, 2))}
    nodes = [helper.make_node("Conv", ["x", "K"], ["c"], strides=[2, 2], pads=[0, 0, 1, 1]),
             helper.make_node("PRelu", ["c", "s"], ["p"]),
             helper.make_node("Flatten", ["p"], ["f"]),
             helper.make_node("MatMul", ["f", "W"], ["y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 6, 6])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2])],
                              initializer=[numpy_helper.from_array(v.astype(np.float32), k) for k, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    net = from_onnx(model)
    plane = netatlas.Plane.through(*rng.standard_normal((3, 1, 6, 6)))
    part = partition(net, plane)
    assert abs(part.areas.sum() - plane.area) <= 1e-9 * plane.area and part.num_regions > 20
    inside = part.centroids()
    x = plane.to_input(inside).reshape(len(inside), -1)
    assert np.allclose(part.outputs(inside), net(x), rtol=1e-9, atol=1e-9 * np.abs(net(x)).max())
