"""Narrow versions of the classic ImageNet architectures (tests and benchmarks only), at ImageNet's input
shape (3, 224, 224), random weights: the layer types and the graph structure of each family (VGG,
ResNet-50 bottlenecks, SqueezeNet fire modules, DenseNet-121 dense blocks, Inception branches,
ShuffleNet channel split and shuffle, AlexNet with LRN), with few channels so that a test runs in
seconds. Each ends in a softmax head, as published classifiers do."""

import torch
from torch import nn

SHAPE = (3, 224, 224)


def _bn(c):
    bn = nn.BatchNorm2d(c)
    with torch.no_grad():  # running statistics that are not the identity
        bn.running_mean.uniform_(-0.2, 0.2), bn.running_var.uniform_(0.5, 1.5)
        bn.weight.uniform_(0.5, 1.5), bn.bias.uniform_(-0.2, 0.2)
    return bn


class Head(nn.Module):
    def __init__(self, c, n_classes=5):
        super().__init__()
        self.fc = nn.Linear(c, n_classes)

    def forward(self, x):
        return torch.softmax(self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)), dim=1)


class VGG(nn.Module):
    def __init__(self):
        super().__init__()
        layers, c = [], 3
        for width, n in ((4, 1), (8, 1), (8, 2), (8, 2), (8, 2)):
            for _ in range(n):
                layers += [nn.Conv2d(c, width, 3, padding=1), nn.ReLU()]
                c = width
            layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(8 * 7 * 7, 16), nn.ReLU(), nn.Dropout(),
                                        nn.Linear(16, 5))

    def forward(self, x):
        return torch.softmax(self.classifier(self.features(x)), dim=1)


class Bottleneck(nn.Module):
    def __init__(self, c_in, c_mid, c_out, stride):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(c_in, c_mid, 1, bias=False), _bn(c_mid), nn.ReLU(),
                                  nn.Conv2d(c_mid, c_mid, 3, stride, 1, bias=False), _bn(c_mid), nn.ReLU(),
                                  nn.Conv2d(c_mid, c_out, 1, bias=False), _bn(c_out))
        self.down = None if stride == 1 and c_in == c_out else \
            nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), _bn(c_out))

    def forward(self, x):
        return torch.relu(self.body(x) + (x if self.down is None else self.down(x)))


class ResNet50(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 4, 7, 2, 3, bias=False), _bn(4), nn.ReLU(), nn.MaxPool2d(3, 2, 1))
        self.blocks = nn.Sequential(Bottleneck(4, 2, 8, 1), Bottleneck(8, 2, 8, 1), Bottleneck(8, 4, 8, 2),
                                    Bottleneck(8, 4, 16, 2), Bottleneck(16, 4, 16, 2))
        self.head = Head(16)

    def forward(self, x):
        return self.head(self.blocks(self.stem(x)))


class Fire(nn.Module):
    def __init__(self, c_in, squeeze, expand):
        super().__init__()
        self.squeeze = nn.Sequential(nn.Conv2d(c_in, squeeze, 1), nn.ReLU())
        self.e1, self.e3 = nn.Conv2d(squeeze, expand, 1), nn.Conv2d(squeeze, expand, 3, padding=1)

    def forward(self, x):
        s = self.squeeze(x)
        return torch.relu(torch.cat([self.e1(s), self.e3(s)], 1))


class SqueezeNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, 2), nn.ReLU(), nn.MaxPool2d(3, 2, ceil_mode=True),
                                      Fire(8, 2, 4), Fire(8, 2, 4), nn.MaxPool2d(3, 2, ceil_mode=True),
                                      Fire(8, 4, 8), nn.MaxPool2d(3, 2, ceil_mode=True), Fire(16, 4, 8))
        self.classifier = nn.Sequential(nn.Dropout(), nn.Conv2d(16, 5, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                                        nn.Flatten())

    def forward(self, x):
        return torch.softmax(self.classifier(self.features(x)), dim=1)


class DenseLayer(nn.Module):
    def __init__(self, c_in, growth):
        super().__init__()
        self.body = nn.Sequential(_bn(c_in), nn.ReLU(), nn.Conv2d(c_in, 2 * growth, 1, bias=False), _bn(2 * growth),
                                  nn.ReLU(), nn.Conv2d(2 * growth, growth, 3, padding=1, bias=False))

    def forward(self, x):
        return torch.cat([x, self.body(x)], 1)


class DenseNet121(nn.Module):
    def __init__(self):
        super().__init__()
        c, growth, layers = 4, 2, [nn.Conv2d(3, 4, 7, 2, 3, bias=False), _bn(4), nn.ReLU(), nn.MaxPool2d(3, 2, 1)]
        for i, n in enumerate((2, 2, 2)):
            for _ in range(n):
                layers.append(DenseLayer(c, growth))
                c += growth
            if i < 2:  # transition: BN-ReLU-conv 1x1, average pool
                layers += [_bn(c), nn.ReLU(), nn.Conv2d(c, c // 2, 1, bias=False), nn.AvgPool2d(2)]
                c //= 2
        self.features = nn.Sequential(*layers, _bn(c), nn.ReLU())
        self.head = Head(c)

    def forward(self, x):
        return self.head(self.features(x))


class InceptionBlock(nn.Module):
    def __init__(self, c_in, c):
        super().__init__()
        self.b1 = nn.Sequential(nn.Conv2d(c_in, c, 1), nn.ReLU())
        self.b2 = nn.Sequential(nn.Conv2d(c_in, c, 1), nn.ReLU(), nn.Conv2d(c, c, 3, padding=1), nn.ReLU())
        self.b3 = nn.Sequential(nn.Conv2d(c_in, c, 1), nn.ReLU(), nn.Conv2d(c, c, 5, padding=2), nn.ReLU())
        self.b4 = nn.Sequential(nn.MaxPool2d(3, 1, 1), nn.Conv2d(c_in, c, 1), nn.ReLU())

    def forward(self, x):
        return torch.cat([self.b1(x), self.b2(x), self.b3(x), self.b4(x)], 1)


class Inception(nn.Module):
    """GoogLeNet-style: a stem with LRN, inception blocks with a max-pool branch."""

    def __init__(self, lrn=False):
        super().__init__()
        stem = [nn.Conv2d(3, 4, 7, 2, 3), nn.ReLU(), nn.MaxPool2d(3, 2, ceil_mode=True)]
        stem += [nn.LocalResponseNorm(5)] if lrn else []
        self.stem = nn.Sequential(*stem, nn.Conv2d(4, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, 2, ceil_mode=True))
        self.blocks = nn.Sequential(InceptionBlock(8, 2), nn.MaxPool2d(3, 2, ceil_mode=True), InceptionBlock(8, 2),
                                    nn.MaxPool2d(3, 2, ceil_mode=True))
        self.head = Head(8)

    def forward(self, x):
        return self.head(self.blocks(self.stem(x)))


def channel_shuffle(x, groups):
    b, c, h, w = x.shape
    return x.reshape(b, groups, c // groups, h, w).transpose(1, 2).reshape(b, c, h, w)


class ShuffleUnit(nn.Module):
    """ShuffleNet v2 unit (stride 1): channel split, a branch on one half, concatenation, shuffle."""

    def __init__(self, c):
        super().__init__()
        h = c // 2
        self.branch = nn.Sequential(nn.Conv2d(h, h, 1, bias=False), _bn(h), nn.ReLU(),
                                    nn.Conv2d(h, h, 3, 1, 1, groups=h, bias=False), _bn(h),
                                    nn.Conv2d(h, h, 1, bias=False), _bn(h), nn.ReLU())

    def forward(self, x):
        a, b = x.chunk(2, dim=1)
        return channel_shuffle(torch.cat([a, self.branch(b)], 1), 2)


class ShuffleNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1, bias=False), _bn(8), nn.ReLU(), nn.MaxPool2d(3, 2, 1))
        self.units = nn.Sequential(ShuffleUnit(8), nn.Conv2d(8, 8, 3, 2, 1), nn.ReLU(), ShuffleUnit(8),
                                   nn.Conv2d(8, 8, 3, 2, 1), nn.ReLU(), ShuffleUnit(8))
        self.head = Head(8)

    def forward(self, x):
        return self.head(self.units(self.stem(x)))


class AlexNet(nn.Module):
    def __init__(self, lrn=True):
        super().__init__()
        norm = [nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0)] if lrn else []
        self.features = nn.Sequential(nn.Conv2d(3, 4, 11, 4, 2), nn.ReLU(), *norm, nn.MaxPool2d(3, 2),
                                      nn.Conv2d(4, 8, 5, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
                                      nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1),
                                      nn.ReLU(), nn.MaxPool2d(3, 2))
        self.classifier = nn.Sequential(nn.Dropout(), nn.Flatten(), nn.Linear(8 * 6 * 6, 16), nn.ReLU(),
                                        nn.Linear(16, 5))

    def forward(self, x):
        return torch.softmax(self.classifier(self.features(x)), dim=1)  # features: (8, 6, 6) at 224x224


ARCHITECTURES = {
    "vgg": VGG,
    "resnet50": ResNet50,
    "squeezenet": SqueezeNet,
    "densenet121": DenseNet121,
    "inception": Inception,
    "shufflenet": ShuffleNet,
    "alexnet": lambda: AlexNet(lrn=False),
}


def build(name, seed=0):
    torch.manual_seed(seed)
    return ARCHITECTURES[name]().eval()
