"""Time to import a ResNet-18-shaped model (BasicBlocks, BatchNorm, stem max pool, global average pool)
from an ONNX file, side by side with importing the same torch module (``from_torch`` goes through
``torch.export``), and the largest difference between the two nets' outputs::

    python benchmarks/onnx_import.py --size 64
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

import torch
from torch import nn

from netatlas.nets import from_onnx, from_torch


class BasicBlock(nn.Module):
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


class ResNet18(nn.Module):
    def __init__(self, n_classes=10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
                                  nn.MaxPool2d(3, 2, 1))
        blocks, c = [], 64
        for c_out, stride in [(64, 1), (64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1)]:
            blocks.append(BasicBlock(c, c_out, stride))
            c = c_out
        self.blocks, self.fc = nn.Sequential(*blocks), nn.Linear(512, n_classes)

    def forward(self, x):
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(self.blocks(self.stem(x)), 1), 1))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64, help="input height and width")
    parser.add_argument("--repeats", type=int, default=3, help="best of this many imports")
    args = parser.parse_args()
    torch.manual_seed(0)
    model = ResNet18().eval()
    shape = (3, args.size, args.size)
    path = Path(tempfile.mkdtemp()) / "resnet18.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.zeros(1, *shape),), str(path), dynamo=False)
    times = {}
    for name, load in (("from_onnx", lambda: from_onnx(path)), ("from_torch", lambda: from_torch(model, shape))):
        best = float("inf")
        for _ in range(args.repeats):
            start = time.perf_counter()
            net = load()
            best = min(best, time.perf_counter() - start)
        times[name] = (best, net)
    x = torch.randn(4, *shape, dtype=torch.float64)
    diff = (times["from_onnx"][1](x) - times["from_torch"][1](x)).abs().max().item()
    print(f"ResNet-18 shape, input {shape}, {times['from_onnx'][1].n_parameters:,} parameters")
    print(f"{'importer':<12} {'seconds':>8}")
    for name, (seconds, _) in times.items():
        print(f"{name:<12} {seconds:>8.2f}")
    print(f"ratio from_torch / from_onnx: {times['from_torch'][0] / times['from_onnx'][0]:.1f}x; "
          f"max |difference| of outputs {diff:.1e} (the exporter folds BatchNorm in float32)")


if __name__ == "__main__":
    main()
