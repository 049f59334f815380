"""Zero padding (nn.ZeroPad2d, F.pad, ONNX Pad and asymmetric SAME padding) in the exact lens: the
chain path (unrolled) and the graph path agree, and regions match the forward pass."""

import numpy as np
import pytest
import torch
from test_regions_max import check_exact, three_inputs
from torch import nn

from netatlas import Plane
from netatlas.nets import from_torch
from netatlas.nets._ir import Pad
from netatlas.regions import partition


class _Functional(nn.Module):
    """conv with F.pad (TensorFlow-style SAME padding, more after than before): goes through torch.export."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(2)
        self.conv, self.fc = nn.Conv2d(1, 3, 3, stride=2), nn.Linear(3 * 3 * 3, 2)

    def forward(self, x):
        x = torch.relu(self.conv(nn.functional.pad(x, (0, 1, 0, 1))))
        return self.fc(x.flatten(1))


def test_zero_pad_module_and_functional_pad_import_exactly():
    torch.manual_seed(1)
    walked = nn.Sequential(nn.ZeroPad2d((1, 0, 0, 2)), nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(),
                           nn.Linear(2 * 5 * 4, 2)).eval()
    for model, shape in ((walked, (1, 5, 5)), (_Functional().eval(), (1, 6, 6))):
        net = from_torch(model, shape)
        assert any(isinstance(n.op, Pad) for n in net.nodes)
        x = torch.randn(7, *shape, dtype=torch.float64)
        assert torch.allclose(net(x.reshape(7, -1)), model.double()(x), rtol=1e-12, atol=1e-12)


def test_nonzero_constant_padding_is_an_affine_shift():
    """Refused before issue 28 ("only zero padding"); now a GatherLinear selection with the value as shift."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.ConstantPad2d(1, 0.5), nn.Flatten(), nn.Linear(16, 1)).eval()
    net = from_torch(model, (1, 2, 2))
    x = torch.randn(5, 1, 2, 2, dtype=torch.float64)
    assert torch.allclose(net(x), model.double()(x), rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("pool", [None, "max"])
def test_padded_cnn_partitions_exactly(pool):
    torch.manual_seed(3)
    layers = [nn.ZeroPad2d((0, 1, 0, 1)), nn.Conv2d(1, 2, 3, stride=2), nn.ReLU()]
    layers += [nn.ZeroPad2d((1, 0, 1, 0)), nn.MaxPool2d(2)] if pool else []
    model = nn.Sequential(*layers, nn.Flatten()).eval()
    n = model(torch.zeros(1, 1, 6, 6)).shape[1]
    model = nn.Sequential(*layers, nn.Flatten(), nn.Linear(n, 3)).eval()
    net = from_torch(model, (1, 6, 6))
    plane = Plane.through(*three_inputs((1, 6, 6), 7))
    part = partition(net, plane)
    assert part.method == ("graph" if pool else "chain")
    check_exact(net, plane, part)
    if not pool:  # the unrolled chain and the graph path give the same regions
        slow = partition(net, plane, method="graph")
        assert slow.num_regions == part.num_regions
        assert np.array_equal(part.patterns, slow.patterns[slow.locate(part.centroids())])
