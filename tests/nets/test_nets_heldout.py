"""Models written the way their authors wrote them, not for netatlas: the PyTorch tutorial's LeNet
(``F.max_pool2d``, ``x.view(-1, self.num_flat_features(x))``), torchvision's ResNet (BasicBlock with
``ReLU(inplace=True)`` and ``out += identity``, a stride-2 1x1 downsample, a stem max pool, adaptive average
pooling, ``torch.flatten``), a VGG-style net (``x.view(x.size(0), -1)``, Dropout) and a MobileNet-style block
(depthwise conv, ReLU6, convs without bias at default stride, ``mean([2, 3])``). They import through
torch.export and ONNX, agree with torch and onnxruntime, and partition exactly through a plane of three
inputs."""

import warnings

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import netatlas
from netatlas.nets import from_onnx, from_torch
from netatlas.regions import partition


class TutorialLeNet(nn.Module):  # the PyTorch "Neural Networks" tutorial
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)
    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), (2, 2))
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = x.view(-1, self.num_flat_features(x))
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)
    def num_flat_features(self, x):
        size = x.size()[1:]
        n = 1
        for s in size:
            n *= s
        return n

def conv3x3(i, o, stride=1):
    return nn.Conv2d(i, o, kernel_size=3, stride=stride, padding=1, groups=1, bias=False, dilation=1)
def conv1x1(i, o, stride=1):
    return nn.Conv2d(i, o, kernel_size=1, stride=stride, bias=False)

class BasicBlock(nn.Module):
    expansion = 1
    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample
        self.stride = stride
    def forward(self, x):
        identity = x
        out = self.conv1(x)
        out = self.bn1(out)
        out = self.relu(out)
        out = self.conv2(out)
        out = self.bn2(out)
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        out = self.relu(out)
        return out

class ResNet(nn.Module):
    def __init__(self, layers=(1, 1, 1, 1), width=2, num_classes=10):
        super().__init__()
        self.inplanes = width
        self.conv1 = nn.Conv2d(3, width, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(width, layers[0])
        self.layer2 = self._make_layer(2 * width, layers[1], stride=2)
        self.layer3 = self._make_layer(4 * width, layers[2], stride=2)
        self.layer4 = self._make_layer(8 * width, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(8 * width, num_classes)
        for m in self.modules():
            if isinstance(m, nn.BatchNorm2d):
                nn.init.uniform_(m.weight, 0.5, 1.5)
                nn.init.uniform_(m.bias, -0.2, 0.2)
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    def _make_layer(self, planes, blocks, stride=1):
        downsample = None
        if stride != 1 or self.inplanes != planes:
            downsample = nn.Sequential(conv1x1(self.inplanes, planes, stride), nn.BatchNorm2d(planes))
        layers = [BasicBlock(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes
        for _ in range(1, blocks):
            layers.append(BasicBlock(self.inplanes, planes))
        return nn.Sequential(*layers)
    def forward(self, x):
        x = self.conv1(x)
        x = self.bn1(x)
        x = self.relu(x)
        x = self.maxpool(x)
        x = self.layer1(x)
        x = self.layer2(x)
        x = self.layer3(x)
        x = self.layer4(x)
        x = self.avgpool(x)
        x = torch.flatten(x, 1)
        return self.fc(x)


class VGGish(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(inplace=True),
                                      nn.MaxPool2d(kernel_size=2, stride=2), nn.Conv2d(8, 16, 3, padding=1),
                                      nn.ReLU(inplace=True), nn.MaxPool2d(2, 2))
        self.avgpool = nn.AdaptiveAvgPool2d((2, 2))
        self.classifier = nn.Sequential(nn.Linear(16 * 4, 32), nn.ReLU(True), nn.Dropout(), nn.Linear(32, 10))
    def forward(self, x):
        x = self.features(x)
        x = self.avgpool(x)
        x = x.view(x.size(0), -1)
        return self.classifier(x)

class MobileBlock(nn.Module):
    def __init__(self):
        super().__init__()
        self.dw = nn.Conv2d(4, 4, 3, padding=1, groups=4, bias=False)
        self.bn = nn.BatchNorm2d(4)
        self.pw = nn.Conv2d(4, 8, 1, bias=False)  # exported as conv2d(x, w): defaults left out
        self.bn2 = nn.BatchNorm2d(8)
        self.stem = nn.Conv2d(3, 4, 3, stride=2, padding=1)
        self.fc = nn.Linear(8, 5)
    def forward(self, x):
        x = F.relu6(self.stem(x))
        y = F.relu6(self.bn(self.dw(x)))
        y = y + x
        y = F.relu(self.bn2(self.pw(y)), inplace=True)
        y = y.mean([2, 3])
        return self.fc(y)


MODELS = {"lenet": (TutorialLeNet, (1, 32, 32), 0.01), "resnet": (ResNet, (3, 16, 16), 0.3),
          "vgg": (VGGish, (3, 16, 16), 0.01), "mobile": (MobileBlock, (3, 16, 16), 0.05)}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_held_out_models_import_agree_and_partition_exactly(name, tmp_path):
    torch.manual_seed(0)
    factory, shape, h = MODELS[name]
    model = factory().eval()
    for m in model.modules():  # BatchNorm with statistics of its own, not the identity
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    net = from_torch(model, shape)
    x = torch.randn(4, *shape)
    with torch.no_grad():
        reference = model.double()(x.double())
    assert torch.allclose(net(x.double().reshape(4, -1)), reference, rtol=1e-10, atol=1e-10)
    model.float()
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    path = tmp_path / f"{name}.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.randn(2, *shape),), str(path), dynamo=False, input_names=["x"],
                          dynamic_axes={"x": {0: "N"}})
    onet = from_onnx(path)
    expected = ort.InferenceSession(str(path)).run(None, {"x": x.numpy()})[0]
    got = onet(x.numpy().astype(np.float64).reshape(4, -1))
    assert np.allclose(got, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())  # float32 runtime
    g = np.random.default_rng(1)
    through = netatlas.Plane.through(*g.random((3, *shape)))
    u0, u1, v0, v1 = through.bounds
    cu, cv = (u0 + u1) / 2, (v0 + v1) / 2
    plane = netatlas.Plane(through.origin, through.d1, through.d2, (cu - h, cu + h, cv - h, cv + h))
    part = partition(net, plane, memory_budget=None)
    assert part.num_regions > 50
    assert abs(part.areas.sum() - plane.area) <= 1e-9 * plane.area
    # every region's affine map is the forward pass at points inside it (its centroid, and vertices pulled in)
    inside = part.centroids()
    values = net(plane.to_input(inside).reshape(len(inside), -1))
    assert np.allclose(part.outputs(inside), values, rtol=1e-9, atol=1e-9 * np.abs(values).max())
    assert partition(onet, plane, memory_budget=None).num_regions == part.num_regions
