"""Small reference CNNs written out in torch (no torchvision): LeNet-5 with max pooling and a tiny
ResNet with torchvision-style BasicBlocks. Both import into the IR with ``from_torch`` and are
piecewise linear, so the exact regions lens applies to them.

>>> import torch, netatlas
>>> net = netatlas.nets.from_torch(netatlas.nets.zoo.lenet5(seed=0), input_shape=(1, 28, 28))
>>> tuple(net(torch.zeros(2, 1, 28, 28)).shape)
(2, 10)
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["BasicBlock", "ResNetTiny", "lenet5", "resnet_tiny", "train_lenet5_mnist"]


def lenet5(n_classes: int = 10, *, in_channels: int = 1, width: int = 1, seed: int = 0) -> nn.Sequential:
    """LeNet-5 (LeCun et al. 1998) with ReLU and 2x2 max pooling, for (in_channels, 28, 28) inputs:
    conv5x5(pad 2) -> ReLU -> maxpool2 -> conv5x5 -> ReLU -> maxpool2 -> fc 120 -> fc 84 -> fc n_classes.

    ``width`` multiplies the channels (6, 16). Seeded privately (the global torch RNG is untouched).

    >>> sum(p.numel() for p in lenet5().parameters())
    61706
    """
    if not (isinstance(width, int) and width >= 1):
        raise ValueError(f"lenet5: width must be an int >= 1; got {width!r}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        c1, c2 = 6 * width, 16 * width
        return nn.Sequential(
            nn.Conv2d(in_channels, c1, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 5), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(c2 * 5 * 5, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
            nn.Linear(84, n_classes))


class BasicBlock(nn.Module):
    """torchvision's ResNet BasicBlock: conv3x3-BN-ReLU-conv3x3-BN, plus the identity or (stride 2 or
    a change of width) a 1x1 conv-BN downsample, then ReLU."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.downsample = None
        if stride != 1 or c_in != c_out:
            self.downsample = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNetTiny(nn.Module):
    """Stem conv3x3-BN-ReLU-maxpool(3, 2, pad 1), BasicBlock(c), BasicBlock(c -> 2c, stride 2,
    downsample), global average pooling, fc."""

    def __init__(self, in_channels: int = 1, width: int = 4, n_classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, width, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.layer1 = BasicBlock(width, width)
        self.layer2 = BasicBlock(width, 2 * width, stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(2 * width, n_classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer2(self.layer1(x))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def resnet_tiny(in_channels: int = 1, width: int = 4, n_classes: int = 10, *, seed: int = 0) -> ResNetTiny:
    """A seeded :class:`ResNetTiny` in eval mode whose BatchNorm layers have non-trivial running
    statistics (drawn from the seed), so that folding them is exercised without training.

    >>> import netatlas
    >>> net = netatlas.nets.from_torch(resnet_tiny(seed=0), input_shape=(1, 12, 12))
    >>> tuple(net(torch.zeros(1, 1, 12, 12)).shape), net.piecewise_linear
    ((1, 10), True)
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = ResNetTiny(in_channels, width, n_classes)
        g = torch.Generator().manual_seed(seed + 1)
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                n = m.num_features
                with torch.no_grad():
                    m.running_mean.copy_(torch.rand(n, generator=g) * 0.4 - 0.2)
                    m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
                    m.weight.copy_(torch.rand(n, generator=g) + 0.5)
                    m.bias.copy_(torch.rand(n, generator=g) * 0.4 - 0.2)
    return model.eval()


def train_lenet5_mnist(*, epochs: int = 4, seed: int = 0, width: int = 1, progress: bool = False):
    """LeNet-5 (max pooling) trained on the offline MNIST sample (``netatlas.data.mnist_sample``,
    3,750 training images), seeded; returns ``(model, history)``. About a minute on two CPU cores.

    Adam, lr 2e-3, batch 64. The model is returned in eval mode."""
    from netatlas.data import mnist_sample
    from netatlas.train import fit

    data = mnist_sample(seed=seed)
    model = lenet5(seed=seed, width=width)
    history = fit(model, data, lr=2e-3, epochs=epochs, batch_size=64, seed=seed, progress=progress)
    return model.eval(), history
