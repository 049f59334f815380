"""Residual MLPs on the chain path (``regions._skipchain``, NOTE [carried skips]) against the graph path
(``method="graph"``) on the same nets: random and trained residual nets of several block shapes, units that
vanish on faces, lines through vertices, and extreme unit scales; and the layers' own forward pass."""

import numpy as np
import pytest
import torch
from torch import nn

from netatlas import Plane
from netatlas.nets import from_torch
from netatlas.regions import partition
from netatlas.regions._chain import GATHER_COST
from netatlas.regions._skipchain import skip_chain


class Residual(nn.Module):
    """A residual MLP: ``first`` then blocks, then an optional ``head``. Each block is ``kind``:
    "relu": h + act(Linear(h)); "two": h + Linear(act(Linear(h))); "project": Linear(h) + act(Linear(h))
    (a projection on the skip, to another width); "input": h + x-skip from the net's input."""

    def __init__(self, widths, kinds, n_out=None, leaky=False, end_activation=False):
        super().__init__()
        self.act = nn.LeakyReLU(0.1) if leaky else nn.ReLU()
        self.first = nn.Linear(2, widths[0])
        self.kinds = kinds
        self.blocks = nn.ModuleList()
        self.skips = nn.ModuleList()
        for k, kind in enumerate(kinds):
            w_in, w_out = widths[k], widths[k + 1]
            if kind in ("relu", "input"):
                assert w_in == w_out
                self.blocks.append(nn.Linear(w_in, w_out))
                self.skips.append(nn.Linear(2, w_out) if kind == "input" else nn.Identity())
            elif kind == "two":
                assert w_in == w_out
                self.blocks.append(nn.Sequential(nn.Linear(w_in, 2 * w_in), self.act, nn.Linear(2 * w_in, w_out)))
                self.skips.append(nn.Identity())
            else:
                self.blocks.append(nn.Linear(w_in, w_out))
                self.skips.append(nn.Linear(w_in, w_out))
        self.head = nn.Linear(widths[-1], n_out) if n_out else None
        self.end_activation = end_activation

    def forward(self, x):
        h = self.act(self.first(x))
        for kind, block, skip in zip(self.kinds, self.blocks, self.skips, strict=True):
            if kind == "relu":
                h = h + self.act(block(h))
            elif kind == "two":
                h = h + block(h)
            elif kind == "input":
                h = h + skip(x) + self.act(block(h))
            else:
                h = skip(h) + self.act(block(h))
        if self.head is not None:
            h = self.head(h)
        return self.act(h) if self.end_activation else h


def _net(seed, *args, **kwargs):
    torch.manual_seed(seed)
    return from_torch(Residual(*args, **kwargs).double().eval(), (2,))


def _same_partition(a, b):
    """Same regions: count, patterns, areas, vertices (per region, sorted), output maps."""
    assert a.num_regions == b.num_regions
    ka = {bytes(p): i for i, p in enumerate(np.packbits(a.patterns, axis=1))}
    kb = {bytes(p): i for i, p in enumerate(np.packbits(b.patterns, axis=1))}
    assert len(ka) == a.num_regions and ka.keys() == kb.keys()
    ia = np.array([ka[k] for k in ka])
    ib = np.array([kb[k] for k in ka])
    scale = a.plane.area
    np.testing.assert_allclose(a.areas[ia], b.areas[ib], rtol=1e-9, atol=1e-12 * scale)
    diam = a.diameter
    for i, j in zip(ia, ib, strict=True):
        pa, pb = a.polygon(i), b.polygon(j)
        assert len(pa) == len(pb)
        np.testing.assert_allclose(np.sort(pa, axis=0), np.sort(pb, axis=0), rtol=0, atol=1e-9 * diam)
    big = np.abs(b.maps).max()
    np.testing.assert_allclose(a.maps[ia], b.maps[ib], rtol=1e-9, atol=1e-12 * big)


def _check_against_graph(net, plane=None):
    plane = Plane.square(1.0) if plane is None else plane
    chain = partition(net, plane)
    graph = partition(net, plane, method="graph")
    assert chain.method == "chain" and graph.method == "graph"
    _same_partition(chain, graph)
    # the output maps are the net's values: at each region's centroid
    points = chain.centroids()
    want = net(torch.as_tensor(plane.to_input(points))).numpy()
    got = np.einsum("roi,ri->ro", chain.output_linear, points) + chain.output_offset
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9 * np.abs(want).max())
    return chain


CASES = {
    "regioncam 2-16-[res 16]x3-3": ([16] * 4, ["relu"] * 3, 3, False, False),
    "two-layer blocks, leaky": ([12] * 3, ["two"] * 2, 4, True, False),
    "projection skips 2-10-14-8-2": ([10, 14, 8], ["project"] * 2, 2, False, False),
    "skip from the input": ([9] * 3, ["input", "relu"], 1, False, False),
    "no head, ends in the add": ([11] * 3, ["relu", "relu"], None, False, False),
    "ends in an activation, leaky": ([8] * 3, ["relu", "project"], 5, True, True),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("seed", [0, 1])
def test_random_residual_nets_match_the_graph_path(case, seed):
    _check_against_graph(_net(seed, *CASES[case]))


def test_the_chain_layers_compute_the_net():
    # each layer maps [activation; carried] to [next pre-activation; carried]: run them as a chain
    for case in CASES.values():
        net = _net(3, *case)
        layers, units, factors = skip_chain(net)
        x = np.random.default_rng(0).normal(size=(50, 2))
        h = x
        for k, (W, b, act) in enumerate(layers):
            h = h @ W.T + b
            if act is not None:
                z = torch.as_tensor(h[:, :units[k]])
                h = np.concatenate([act(z).numpy(), h[:, units[k]:]], axis=1)
        np.testing.assert_allclose(h, net(torch.as_tensor(x)).numpy(), rtol=1e-12, atol=1e-12)
        for k, factor in enumerate(factors):  # a factor gives the same pre-activations as the layer
            if factor is not None:
                s0, s1, Wf, bf = factor
                W, b, _ = layers[k + 1]
                n = units[k + 1] if k + 1 < len(units) else W.shape[0]
                u = np.random.default_rng(k).normal(size=(7, W.shape[1]))
                t = (u @ W.T + b)[:, n + s0:n + s1]
                np.testing.assert_allclose(t @ Wf.T + bf, (u @ W.T + b)[:, :n], rtol=1e-12, atol=1e-12)


def test_plain_chains_and_other_graphs_are_not_skip_chains():
    torch.manual_seed(0)
    assert skip_chain(from_torch(nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 1)), (2,))) is None
    hard = Residual([6] * 2, ["relu"], 1)
    hard.act = nn.Hardtanh()
    assert skip_chain(from_torch(hard.eval(), (2,))) is None
    net = _net(0, *CASES["two-layer blocks, leaky"])
    assert skip_chain(net) is not None
    assert partition(net, method="chain").method == "chain"
    with pytest.raises(ValueError, match="method='chain' needs"):
        partition(from_torch(hard.eval(), (2,)), method="chain")


def test_a_trained_residual_net_matches_the_graph_path():
    # two interleaved spirals, 300 Adam steps: saturated and dead units, as after real training
    torch.manual_seed(0)
    t = torch.rand(400, 1) * 3 * np.pi
    label = torch.randint(0, 2, (400,))
    sign = (2 * label - 1).unsqueeze(1).double()
    x = torch.cat([t * torch.cos(t), t * torch.sin(t)], 1).double() * sign / 10
    model = Residual([16] * 4, ["relu"] * 3, 2).double()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(300):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), label).backward()
        opt.step()
    net = from_torch(model.eval(), (2,))
    part = _check_against_graph(net, Plane.square(1.2))
    assert part.num_regions > 50


def test_vanishing_units_and_lines_through_vertices():
    # first layer: three lines through the origin (concurrent) and a duplicated unit; block 0: a unit
    # reading two equal units with opposite weights (zero wherever both have one state) and a dead
    # unit (zero row); block 1: a unit equal to a first-layer unit's line (same zero line, deeper)
    model = Residual([6] * 3, ["relu", "relu"], 2).double()
    with torch.no_grad():
        model.first.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [1.0, 1.0], [0.5, -1.0],
                                               [-1.0, 0.25]]))
        model.first.bias.copy_(torch.tensor([0.0, 0.0, 0.0, 0.0, 0.3, -0.2]))
        w = model.blocks[0].weight
        w.normal_(generator=torch.Generator().manual_seed(0))
        w[0] = 0.0
        w[0, 2], w[0, 3] = 0.7, -0.7  # h2 == h3 (duplicates): unit 0 vanishes identically
        w[1] = 0.0  # a dead unit
        model.blocks[0].bias[0] = model.blocks[0].bias[1] = 0.0
        model.blocks[1].weight.normal_(generator=torch.Generator().manual_seed(1))
    net = from_torch(model.eval(), (2,))
    _check_against_graph(net)
    _check_against_graph(net, Plane(np.zeros(2), np.array([1.0, 0.0]), np.array([0.0, 1.0]), (-0.5, 1.0, -1.0, 0.5)))


@pytest.mark.parametrize("exponent", [-150, -30, 30, 150])
def test_units_and_skips_at_extreme_scales(exponent):
    # scale the first layer by 10^k and undo it in the head: the same partition (the stream carries
    # the scale through every block); and the same against the graph path
    base = _net(5, [10] * 4, ["relu"] * 3, 2)
    torch.manual_seed(5)
    model = Residual([10] * 4, ["relu"] * 3, 2).double()
    with torch.no_grad():
        f = 10.0 ** exponent
        model.first.weight.mul_(f)
        model.first.bias.mul_(f)
        for block in model.blocks:
            block.bias.mul_(f)
        model.head.weight.div_(f)
    scaled = from_torch(model.eval(), (2,))
    a = partition(base)
    b = _check_against_graph(scaled)
    assert a.num_regions == b.num_regions
    assert sorted(map(bytes, np.packbits(a.patterns, axis=1))) == sorted(map(bytes, np.packbits(b.patterns, axis=1)))
    np.testing.assert_allclose(np.sort(a.areas), np.sort(b.areas), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("size", [1e-100, 1e100])
def test_tiny_and_huge_windows(size):
    net = _net(6, [12] * 3, ["relu", "relu"], 3)
    # a window of width `size` around a point, with the first layer scaled to see details there
    torch.manual_seed(6)
    model = Residual([12] * 3, ["relu", "relu"], 3).double()
    with torch.no_grad():
        model.first.weight.div_(size)
    scaled = from_torch(model.eval(), (2,))
    plane = Plane(np.zeros(2), np.array([1.0, 0.0]), np.array([0.0, 1.0]), (-size, size, -size, size))
    a = partition(net)
    b = _check_against_graph(scaled, plane)
    assert a.num_regions == b.num_regions


class ConvResidual(nn.Module):
    """1x7x7 images: conv, relu, two blocks h + relu(conv(h)) (unrolled convs, sparse), pool, linear."""

    def __init__(self):
        super().__init__()
        self.first = nn.Conv2d(1, 2, 3, padding=1)
        self.blocks = nn.ModuleList(nn.Conv2d(2, 2, 3, padding=1) for _ in range(2))
        self.head = nn.Sequential(nn.AvgPool2d(2), nn.Flatten(), nn.Linear(18, 3))

    def forward(self, x):
        h = self.first(x).relu()
        for conv in self.blocks:
            h = h + conv(h).relu()
        return self.head(h)


def test_a_conv_residual_net_matches_the_graph_path():
    torch.manual_seed(0)
    model = ConvResidual().eval()
    net = from_torch(model, (1, 7, 7))
    _, _, factors = skip_chain(net)
    # the blocks' convs read the stream: sparse factors (CSR products in ``_skip_level``)
    assert all(GATHER_COST * np.count_nonzero(W) < W.size for _, _, W, _ in factors[:2])
    rng = np.random.default_rng(0)
    plane = Plane.through(*rng.uniform(0, 1, size=(3, 1, 7, 7)))
    _check_against_graph(net, plane)


def test_tiles_and_limits_on_a_residual_net():
    from netatlas import RegionLimitError

    net = _net(7, [10] * 3, ["relu", "relu"], 2)
    whole = partition(net)
    tiled = partition(net, tiles=2)
    assert tiled.num_regions == whole.num_regions
    np.testing.assert_allclose(np.sort(tiled.areas), np.sort(whole.areas), rtol=1e-9, atol=1e-12)
    with pytest.raises(RegionLimitError):
        partition(net, max_regions=whole.num_regions // 2)

