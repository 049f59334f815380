"""The classic ImageNet architectures (narrow, (3, 224, 224), imported from ONNX) partition a tiny window of
a plane through three 224x224 inputs with ``max_regions`` set: the estimate is cheap (sampled, NOTE [sampled
estimate] in ``regions._scale``), the run is exact (each region's pattern, arg-maxes and output map are the
net's at an interior point), and a window too large is refused before the run with its estimate. Times and
memory for all seven are in ``benchmarks/classic_architectures.py``."""

import dataclasses
import io
import warnings

import numpy as np
import pytest
import torch

from classic_architectures import SHAPE, build
from netatlas import Plane
from netatlas.nets import Max, from_onnx
from netatlas.regions import RegionLimitError, estimate_regions, partition


def imported(name):
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(build(name), (torch.zeros(1, *SHAPE),), buffer, input_names=["x"], output_names=["y"],
                          dynamo=False, opset_version=17)
    return from_onnx(buffer.getvalue())


def window(half_width):
    g = torch.Generator().manual_seed(1)
    plane = Plane.through(*(torch.randn(*SHAPE, generator=g).numpy() for _ in range(3)))
    return dataclasses.replace(plane, bounds=(-half_width, half_width, -half_width, half_width))


def forward_state(net, x):
    """Pattern bits (as Partition.patterns) and arg-maxes (first maximal entry) of the net at inputs x."""
    values = net.forward_all(torch.as_tensor(x, dtype=torch.float64).reshape(len(x), -1))
    bits, choices = [], []
    for i in net.nonlinear:
        node = net.nodes[i]
        z = values[node.inputs[0]]
        if isinstance(node.op, Max):
            choices.append(node.op.argmax(z).long())
        else:
            bits += [z > b for b in node.op.breakpoints]
    return torch.cat(bits, 1).numpy(), torch.cat(choices, 1).numpy()


@pytest.mark.slow
@pytest.mark.parametrize("name", ["alexnet", "resnet50"])
def test_classic_architecture_partitions_a_tiny_window_exactly(name):
    # alexnet: max pooling between convs and a dense head; resnet50: batch norms, residual additions,
    # a strided max pool, global average pooling
    net, plane = imported(name), window(3e-5)
    part = partition(net, plane, max_regions=500)
    assert part.method == "graph" and part.num_regions > 5
    assert abs(part.areas.sum() - plane.area) <= 1e-9 * plane.area
    # an interior point of each region: the mean of its vertices (the regions are convex)
    uv = part.centroids()
    assert np.array_equal(part.locate(uv), np.arange(part.num_regions))
    bits, choices = forward_state(net, plane.to_input(uv))
    assert np.array_equal(part.patterns, bits)
    assert np.array_equal(part.argmax, choices)
    logits = net(plane.to_input(uv))
    logits = logits.numpy() if isinstance(logits, torch.Tensor) else logits
    # the output maps: float64 round-off of a dozen layers of ~10^3-term sums, far below 1e-9 of the logits
    assert np.abs(part.outputs(uv) - logits).max() <= 1e-9 * np.abs(logits).max()
    # the sampled estimate (one gated pass) has the right order of magnitude
    assert 0.25 < estimate_regions(net, plane) / part.num_regions < 4


@pytest.mark.slow
def test_a_window_too_large_is_refused_before_the_run_with_its_estimate():
    net = imported("vgg")
    with pytest.raises(RegionLimitError, match=r"about [\d,]+ regions estimated .* above max_regions=2,000"):
        partition(net, window(2e-3), max_regions=2000)
