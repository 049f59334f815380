"""Max-pool nets with degenerate channels (NOTE [vanishing units] in ``regions._roundoff``): a channel
that is zero, or a copy of another, only up to round-off (its weights cancel on duplicated input
channels) partitions exactly like the same function written with exact zeros and exact copies,
counted and measured by the independent slow reference ``max_reference``."""

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from max_reference import reference_regions
from regions_reference import area
from torch import nn

from netatlas import Plane
from netatlas.nets import from_torch
from netatlas.regions import partition

SHAPE = (2, 4, 4)  # two input channels; every input on the plane has channel 1 == channel 0


def _pair(seed, bias1, pool_first, hardtanh):
    """(degenerate net, the same function with exact zeros and copies). Output channel 1 is
    ``w x0 - w x1 + bias1`` (random bias1 when None), constant on the plane up to round-off (with
    ``bias1`` 0.75, at the upper kink of the hardtanh); channel 2 is channel 0 with its input
    channels swapped, a copy of it up to round-off."""
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(3, 2, 3, 3, generator=g, dtype=torch.float64)
    b = torch.randn(3, generator=g, dtype=torch.float64)
    w[1, 1] = -w[1, 0]
    w[2] = w[0].flip(0)
    b[2] = b[0]
    if bias1 is not None:
        b[1] = bias1
    clean_w = w.clone()
    clean_w[1] = 0.0
    clean_w[2] = w[0]
    head = nn.Linear(3 * 2 * 2, 2).double()
    with torch.no_grad():
        head.weight.copy_(torch.randn(2, 12, generator=g, dtype=torch.float64))
    nets = []
    for weight in (w, clean_w):
        conv = nn.Conv2d(2, 3, 3, padding=1).double()
        with torch.no_grad():
            conv.weight.copy_(weight)
            conv.bias.copy_(b)
        act = nn.Hardtanh(-0.5, 0.75) if hardtanh else nn.ReLU()
        body = [nn.MaxPool2d(2), act] if pool_first else [act, nn.MaxPool2d(2)]
        nets.append(from_torch(nn.Sequential(conv, *body, nn.Flatten(), head), SHAPE))
    return nets


def _plane(seed):
    g = torch.Generator().manual_seed(seed + 1000)
    points = []
    for _ in range(3):
        one = 0.8 * torch.randn(1, *SHAPE[1:], generator=g, dtype=torch.float64)
        points.append(torch.cat([one, one]).numpy())
    return Plane.through(*points)


@settings(max_examples=16, deadline=None)
@given(seed=st.integers(0, 10_000), bias1=st.sampled_from([None, 0.0, 0.75]), pool_first=st.booleans(),
       hardtanh=st.booleans())
def test_property_degenerate_channels_partition_like_exact_ones(seed, bias1, pool_first, hardtanh):
    net, clean = _pair(seed, bias1, pool_first, hardtanh)
    plane = _plane(seed)
    part = partition(net, plane)
    assert part.method == "graph"
    ref = reference_regions(clean, plane)
    total = sum(area(p) for p in ref.values())
    assert abs(total - plane.area) <= 1e-9 * plane.area  # the reference tiles the slice
    assert part.num_regions == len(ref)
    ref_areas = np.sort([area(p) for p in ref.values()])
    assert np.abs(np.sort(part.areas) - ref_areas).max() <= 1e-9 * plane.area
    # per-region maps are the forward pass, and away from boundaries the states are the exact function's
    rng = np.random.default_rng(seed)
    umin, umax, vmin, vmax = plane.bounds
    uv = np.stack([rng.uniform(umin, umax, 300), rng.uniform(vmin, vmax, 300)], 1)
    region = part.locate(uv)
    y = net(plane.to_input(uv))
    y = y.numpy() if isinstance(y, torch.Tensor) else y
    assert np.abs(part.outputs(uv, region) - y).max() <= 1e-9 * (np.abs(y).max() + 1e-300)
    ref_part = partition(clean, plane)
    inside = ref_part.locate(uv)
    assert np.array_equal(part.patterns[region], ref_part.patterns[inside])
    assert np.array_equal(part.argmax[region], ref_part.argmax[inside])
