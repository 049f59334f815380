"""Exact partitions of graphs with max pooling, hardtanh/ReLU6 and residual blocks: areas, per-region
affine maps and arg-maxes against the forward pass, counts against an independent reference and
against equivalent ReLU nets, ties on degenerate nets, and every query on the partition."""

import numpy as np
import pytest
import torch
from max_reference import reference_regions
from regions_reference import area
from torch import nn

import netatlas
from netatlas import Plane
from netatlas.nets import from_torch, zoo
from netatlas.nets._ir import Max
from netatlas.regions import along_line, partition


def forward_state(net, x):
    """Pattern bits (as Partition.patterns) and arg-maxes (first maximal entry) at inputs x."""
    bits, choices, _ = _forward_state(net, x)
    return bits, choices


def _forward_state(net, x):
    values = net.forward_all(torch.as_tensor(x, dtype=torch.float64).reshape(len(x), -1))
    bits, choices, ordered = [], [], []
    for i in net.nonlinear:
        node = net.nodes[i]
        z = values[node.inputs[0]]
        if isinstance(node.op, Max):
            choices.append(node.op.argmax(z).long())
            ordered.append(choices[-1])
        elif node.op.name == "identity":
            bits.append(torch.ones_like(z, dtype=torch.bool))
        else:
            bits += [z > b for b in node.op.breakpoints]
            ordered += [(z > b).long() for b in node.op.breakpoints]
    cat = lambda parts, dtype: (torch.cat(parts, 1).numpy() if parts else np.zeros((len(x), 0), dtype))
    return cat(bits, bool), cat(choices, np.int64), cat(ordered, np.int64)


def margin(net, x):
    """Smallest gap at x: |z - breakpoint| over units, over windows the max minus the largest entry
    that is not equal to it."""
    values = net.forward_all(torch.as_tensor(x, dtype=torch.float64).reshape(len(x), -1))
    gaps = [torch.full((len(x),), np.inf, dtype=torch.float64)]
    for i in net.nonlinear:
        node = net.nodes[i]
        z = values[node.inputs[0]]
        if isinstance(node.op, Max):
            v = torch.cat([z, torch.full((len(z), 1), -np.inf, dtype=z.dtype)], 1)[:, torch.where(
                node.op.index < 0, z.shape[1], node.op.index)]
            best = v.amax(2, keepdim=True)
            # entries exactly equal to the max (e.g. several dead ReLUs before the pool) tie for good
            second = torch.where(v == best, -np.inf, v).amax(2)
            gaps.append((best[..., 0] - second).min(1).values)
        else:
            for b in node.op.breakpoints:
                gaps.append((z - b).abs().min(1).values)
    return torch.stack(gaps, 1).min(1).values.numpy()


def check_exact(net, plane, part, n_points=600, seed=0):
    """Areas tile the slice; at random points the located region's affine map is the forward pass and
    (away from boundaries) its pattern and arg-maxes are the forward pass's."""
    assert (part.areas > 0).all()
    assert abs(part.areas.sum() - plane.area) <= 1e-9 * plane.area
    rng = np.random.default_rng(seed)
    umin, umax, vmin, vmax = plane.bounds
    uv = np.stack([rng.uniform(umin, umax, n_points), rng.uniform(vmin, vmax, n_points)], 1)
    region = part.locate(uv)
    assert (region >= 0).all()
    x = plane.to_input(uv)
    y = net(x)
    y = y.numpy() if isinstance(y, torch.Tensor) else y
    scale = np.abs(y).max() + 1e-300
    assert np.abs(part.outputs(uv, region) - y).max() <= 1e-9 * scale
    bits, choices = forward_state(net, x)
    clear = margin(net, x) > 1e-7 * scale
    assert clear.mean() > 0.9
    assert np.array_equal(part.patterns[region][clear], bits[clear])
    assert np.array_equal(part.argmax[region][clear], choices[clear])


def three_inputs(shape, seed):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(*shape, generator=g).numpy() for _ in range(3)]


def small_cnn(seed, pool):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), pool, nn.Flatten(), nn.LazyLinear(6), nn.ReLU6(),
                         nn.Linear(6, 3))


POOLS = {
    "maxpool2": lambda: nn.MaxPool2d(2),
    "maxpool3-s2-p1-ceil": lambda: nn.MaxPool2d(3, 2, 1, ceil_mode=True),
    "adaptive-max": lambda: nn.AdaptiveMaxPool2d((2, 3)),
}


def _build(seed, pool_name, shape=(1, 5, 5)):
    model = small_cnn(seed, POOLS[pool_name]())
    model(torch.zeros(1, *shape))  # materialise the lazy layer
    return from_torch(model, shape)


@pytest.mark.parametrize("pool_name", sorted(POOLS))
def test_max_pool_cnn_is_exact_and_matches_the_reference(pool_name):
    seed = 1
    net = _build(seed, pool_name)
    plane = Plane.through(*[0.35 * a for a in three_inputs((1, 5, 5), seed)])
    part = partition(net, plane)
    assert part.method == "graph" and part.argmax.shape[1] > 0
    check_exact(net, plane, part, seed=seed)
    ref = reference_regions(net, plane)
    assert abs(sum(area(p) for p in ref.values()) - plane.area) < 1e-9 * plane.area  # reference complete
    assert part.num_regions == len(ref)
    # same regions: each region's centroid has the reference's state (nonlinear nodes in graph order)
    states = {s.tobytes() for s in _forward_state(net, plane.to_input(part.centroids()))[2]}
    assert states == set(ref)


def test_max_of_two_equals_relu_of_the_difference():
    """max(a, b) = b + relu(a - b): a MaxPool1d(2) net and its ReLU rewrite have the same regions."""
    torch.manual_seed(3)
    lin = nn.Linear(2, 8).double()  # float64, so that the rewrite's weight differences are exact enough
    head = nn.Linear(4, 2).double()
    max_net = from_torch(nn.Sequential(lin, nn.Unflatten(1, (1, 8)), nn.MaxPool1d(2), nn.Flatten(), head))
    W, b = lin.weight.detach(), lin.bias.detach()
    diff = nn.Linear(2, 4).double()
    keep = nn.Linear(2, 4).double()
    with torch.no_grad():
        diff.weight.copy_(W[0::2] - W[1::2])
        diff.bias.copy_(b[0::2] - b[1::2])
        keep.weight.copy_(W[1::2])
        keep.bias.copy_(b[1::2])

    class ReluForm(nn.Module):
        def forward(self, x):
            return head(keep(x) + torch.relu(diff(x)))

    relu_net = from_torch(ReluForm(), (2,))
    plane = Plane.square(4.0)
    p_max, p_relu = partition(max_net, plane), partition(relu_net, plane)
    assert p_max.num_regions == p_relu.num_regions
    assert np.allclose(np.sort(p_max.areas), np.sort(p_relu.areas), rtol=1e-9, atol=1e-12)
    # entry 0 of window w wins exactly where a - b > 0
    assert np.array_equal(p_max.argmax[p_max.locate(p_relu.centroids())] == 0, p_relu.patterns)
    check_exact(max_net, plane, p_max)


def test_hardtanh_equals_two_relus():
    """hardtanh(z) = lo + relu(z - lo) - relu(z - hi): same regions, pattern bits (z > lo, z > hi)."""
    torch.manual_seed(4)
    lin, head = nn.Linear(2, 6), nn.Linear(6, 2)
    ht = from_torch(nn.Sequential(lin, nn.Hardtanh(-0.3, 0.5), head))

    class ReluForm(nn.Module):
        def forward(self, x):
            z = lin(x)
            return head(-0.3 + torch.relu(z + 0.3) - torch.relu(z - 0.5))

    rf = from_torch(ReluForm(), (2,))
    plane = Plane.square(1.5)
    p_ht, p_rf = partition(ht, plane), partition(rf, plane)
    assert p_ht.num_regions == p_rf.num_regions
    assert p_ht.patterns.shape[1] == 12
    at = p_ht.locate(p_rf.centroids())
    assert np.array_equal(p_ht.patterns[at], p_rf.patterns)
    check_exact(ht, plane, p_ht)


def test_duplicate_channels_and_padding_never_split_or_lose_regions():
    """A window whose entries repeat (duplicate channels) has the same regions as without the
    duplicate, and the first copy always wins; windows overlapping -inf padding work."""
    torch.manual_seed(5)
    lin = nn.Linear(2, 3)
    dup = nn.Linear(2, 4)
    with torch.no_grad():
        dup.weight.copy_(torch.cat([lin.weight[:2], lin.weight[1:2], lin.weight[2:]]))
        dup.bias.copy_(torch.cat([lin.bias[:2], lin.bias[1:2], lin.bias[2:]]))
    plain = from_torch(nn.Sequential(lin, nn.Unflatten(1, (1, 3)), nn.AdaptiveMaxPool1d(1), nn.Flatten()))
    doubled = from_torch(nn.Sequential(dup, nn.Unflatten(1, (1, 4)), nn.AdaptiveMaxPool1d(1), nn.Flatten()))
    plane = Plane.square(3.0)
    a, b = partition(plain, plane), partition(doubled, plane)
    assert a.num_regions == b.num_regions == 3
    assert np.allclose(np.sort(a.areas), np.sort(b.areas), rtol=1e-9)
    assert 2 not in set(b.argmax[:, 0].tolist())  # the duplicate (position 2) never wins
    check_exact(doubled, plane, b)
    # max pooling whose windows overlap the padding, on a net whose two channels are identical
    conv = nn.Conv2d(1, 2, 3, padding=1)
    with torch.no_grad():
        conv.weight[1] = conv.weight[0]
        conv.bias[1] = conv.bias[0]
    model = nn.Sequential(conv, nn.ReLU(), nn.MaxPool2d(3, 2, 1), nn.Flatten(), nn.Linear(2 * 3 * 3, 2))
    net = from_torch(model, (1, 5, 5))
    plane = Plane.through(*three_inputs((1, 5, 5), 7))
    part = partition(net, plane)
    check_exact(net, plane, part)
    assert part.num_regions == len(reference_regions(net, plane))


def test_resnet_tiny_partition_is_exact():
    model = zoo.resnet_tiny(width=2, seed=0)
    net = from_torch(model, (1, 8, 8))
    x = torch.randn(3, 1, 8, 8, dtype=torch.float64)
    assert torch.allclose(net(x), model.double()(x), rtol=1e-10, atol=1e-12)
    assert {type(n.op).__name__ for n in net.nodes} >= {"Max", "Add", "Conv", "AdaptiveAvgPool"}
    plane = Plane.through(*three_inputs((1, 8, 8), 1))
    part = partition(net, plane)
    check_exact(net, plane, part)
    assert part.num_regions > 10


def test_queries_on_a_max_partition():
    net = _build(0, "maxpool2")
    plane = Plane.through(*three_inputs((1, 5, 5), 0))
    part = partition(net, plane)
    nb = part.neighbors()
    assert len(nb) > 0 and nb.unit.max() < part.n_units + part.argmax.shape[1]
    # across an edge labelled with a Max output, that output's arg-max differs
    is_max = nb.unit >= part.n_units
    assert is_max.any()
    col = nb.unit[is_max] - part.n_units
    i, j = nb.pairs[is_max].T
    assert (part.argmax[i, col] != part.argmax[j, col]).all()
    i, j = nb.pairs[~is_max].T
    assert (part.patterns[i, nb.unit[~is_max]] != part.patterns[j, nb.unit[~is_max]]).all()
    segs = part.decision_boundary()
    assert (len(segs) > 0) == (part.region_classes().any(0).sum() > 1)
    if len(segs):  # the top two outputs tie on the boundary
        top = np.sort(net(plane.to_input(np.asarray(segs).mean(1))), axis=1)
        assert np.abs(top[:, -1] - top[:, -2]).max() < 1e-8 * (1 + np.abs(top).max())
    value = float(np.median(part.outputs(part.centroids())[:, 1]))
    level = part.level_set(value, output=1)
    assert len(level) > 0
    pts = np.asarray(level).mean(1)
    assert np.abs(net(plane.to_input(pts))[:, 1] - value).max() < 1e-8 * (1 + np.abs(part.maps).max())
    import matplotlib

    matplotlib.use("Agg")
    part.plot()
    # along a line through two of the inputs: pieces agree with the forward pass
    a, b, _ = (v.astype(np.float64) for v in three_inputs((1, 5, 5), 0))
    pieces = along_line(net, a, b)
    t = np.linspace(0, 1, 301)
    x = a[None] + t[:, None, None, None] * (b - a)[None]
    assert np.abs(pieces.outputs(t) - net(x)).max() < 1e-9 * (1 + np.abs(net(x)).max())
    bits, choices = forward_state(net, x)
    k = pieces.locate(t)
    clear = margin(net, x) > 1e-7
    assert np.array_equal(pieces.argmax[k][clear], choices[clear])
    assert np.array_equal(pieces.patterns[k][clear], bits[clear])
    # every kept breakpoint changes something
    pat, arg = pieces.patterns, pieces.argmax
    changed = np.any(pat[1:] != pat[:-1], 1) | np.any(arg[1:] != arg[:-1], 1)
    assert changed.all()


def test_amax_over_channels_and_concat_partition():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(2, 6)
            self.b = nn.Linear(2, 3)
            self.head = nn.Linear(5, 2)

        def forward(self, x):
            h = self.a(x).reshape(-1, 3, 2).amax(dim=1)  # (B, 2)
            return self.head(torch.cat([h, torch.relu(self.b(x))], dim=1))

    torch.manual_seed(8)
    net = from_torch(Net(), (2,))
    plane = Plane.square(2.0)
    part = partition(net, plane)
    check_exact(net, plane, part)
    assert part.num_regions == len(reference_regions(net, plane))


def test_lenet5_imports_and_agrees_with_torch():
    model = zoo.lenet5(seed=0)
    net = from_torch(model, (1, 28, 28))
    x = torch.randn(2, 1, 28, 28, dtype=torch.float64)
    assert torch.allclose(net(x), model.double()(x), rtol=1e-10, atol=1e-12)
    assert sum(isinstance(n.op, Max) for n in net.nodes) == 2
    assert netatlas.nets.from_torch(model, (1, 28, 28)).lenses()["regions"] == "yes"


def _volume_by_autograd(net, plane, points, node):
    """sqrt(det(J^T J)) of node ``node``'s value w.r.t. (u, v) at points, by torch autograd."""
    origin = torch.as_tensor(plane.origin.ravel(), dtype=torch.float64)
    basis = torch.as_tensor(plane.basis, dtype=torch.float64)
    out = []
    for p in points:
        f = lambda uv: net.forward_all((origin + uv @ basis.T)[None])[node][0]
        J = torch.autograd.functional.jacobian(f, torch.as_tensor(p, dtype=torch.float64)).numpy()
        out.append(np.sqrt(max(np.linalg.det(J.T @ J), 0.0)))
    return np.array(out)


@pytest.mark.parametrize("build", ["mlp", "cnn"])
def test_volume_element_per_region_matches_autograd(build):
    if build == "mlp":
        net = from_torch(netatlas.nets.mlp([2, 12, 12, 3], seed=0))
        plane = Plane.square(1.5)
    else:
        net = _build(0, "maxpool2")
        plane = Plane.through(*three_inputs((1, 5, 5), 0))
    part = partition(net, plane)
    rng = np.random.default_rng(0)
    regions = rng.choice(part.num_regions, size=min(25, part.num_regions), replace=False)
    pts = part.centroids()[regions]
    for layer in ["output", net.nonlinear[0], net.nodes[net.nonlinear[-1]].name]:
        node = len(net.nodes) - 1 if layer == "output" else (
            layer if isinstance(layer, int) else max(i for i, n in enumerate(net.nodes) if n.name == layer))
        got = part.volume_element(layer)[regions]
        ref = _volume_by_autograd(net, plane, pts, node)
        scale = np.abs(part.layer_maps(layer, regions)[:, :2]).max() ** 2
        assert np.allclose(got, ref, rtol=1e-7, atol=1e-10 * scale)
    logs = part.volume_element("output", log=True)
    assert np.allclose(np.exp(logs[np.isfinite(logs)]), part.volume_element("output")[np.isfinite(logs)])
    import matplotlib

    matplotlib.use("Agg")
    part.plot(color_by="volume", layer=net.nonlinear[0])
    with pytest.raises(ValueError, match="no layer named"):
        part.volume_element("nope")


def lenet_avgpool(size, seed=0):
    """LeNet-style AvgPool CNN (the benchmark's conv case) for (1, size, size) inputs."""
    torch.manual_seed(seed)
    s = ((size - 2) // 2 - 2) // 2
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.AvgPool2d(2), nn.Conv2d(4, 6, 3),
                          nn.ReLU(), nn.AvgPool2d(2), nn.Flatten(), nn.Linear(6 * s * s, 16), nn.ReLU(),
                          nn.Linear(16, 10))
    with torch.no_grad():
        model[1].running_mean.uniform_(-0.2, 0.2)
        model[1].running_var.uniform_(0.5, 1.5)
    return model.eval()


def test_conv_chain_is_unrolled_to_the_fast_path_and_agrees_with_the_graph_path():
    net = from_torch(lenet_avgpool(10), (1, 10, 10))
    plane = Plane.through(*[0.5 * a for a in three_inputs((1, 10, 10), 2)])
    fast = partition(net, plane)
    slow = partition(net, plane, method="graph")
    assert fast.method == "chain" and slow.method == "graph"
    assert fast.num_regions == slow.num_regions
    at = slow.locate(fast.centroids())
    assert np.array_equal(fast.patterns, slow.patterns[at])
    assert np.allclose(fast.maps, slow.maps[at], rtol=1e-9, atol=1e-12 * np.abs(slow.maps).max())
    check_exact(net, plane, fast)
    # a net with max pooling or a residual addition is not a chain: the graph path is used
    assert partition(_build(0, "maxpool2"), Plane.through(*three_inputs((1, 5, 5), 0))).method == "graph"
