"""The conv chain path's sparse shortcuts against their dense forms: packed pattern bits from the
splitting kernel, sparse column updates of child maps, and next-layer maps through a segment's
sparse factors (an unrolled conv segment as a product of per-op matrices)."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from test_regions_max import lenet_avgpool, three_inputs
from torch import nn

from netatlas import Plane
from netatlas.nets import from_torch
from netatlas.regions import _chain, _graph, partition
from netatlas.regions import _kernels as K

EPS = np.finfo(np.float64).eps


def _conv_net(seed, size=10, stride=1, padding=0, bn=True):
    torch.manual_seed(seed)
    layers = [nn.Conv2d(1, 3, 3, stride=stride, padding=padding)]
    layers += [nn.BatchNorm2d(3)] if bn else []
    layers += [nn.ReLU(), nn.AvgPool2d(2), nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2), nn.Flatten()]
    model = nn.Sequential(*layers)
    n = model(torch.zeros(1, 1, size, size)).shape[1]
    model = nn.Sequential(*layers, nn.Linear(n, 8), nn.ReLU(), nn.Linear(8, 3))
    if bn:
        with torch.no_grad():
            model[1].running_mean.uniform_(-0.2, 0.2)
            model[1].running_var.uniform_(0.5, 1.5)
    return from_torch(model.eval(), (1, size, size))


def _product(factors, n_in):
    X = np.eye(n_in)
    for kind, *f in factors:
        if kind == "csr":
            ptr, idx, val, n_out = f
            A = np.zeros((n_out, X.shape[0]))
            for i in range(n_out):
                A[i, idx[ptr[i]:ptr[i + 1]]] = val[ptr[i]:ptr[i + 1]]
        else:
            A = f[0]
        X = A @ X
    return X


def _absolute(factors):
    return [(kind, *f[:2], np.abs(f[2]), f[3]) if kind == "csr" else (kind, np.abs(f[0])) for kind, *f in factors]


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10**6), stride=st.sampled_from([1, 2]), padding=st.sampled_from([0, 1]),
       bn=st.booleans())
def test_segment_factors_multiply_to_the_unrolled_matrix(seed, stride, padding, bn):
    net = _conv_net(seed, 12, stride, padding, bn)
    layers = _chain.unrolled_layers(net)
    factors = _chain.layer_factors(net, layers)
    assert any(f is not None and len(f) > 1 for f in factors)  # the avgpool -> linear segment is factored
    for (W, _, _), f in zip(layers, factors, strict=True):
        if f is None:
            continue
        # both are sums of products of the same entries: round-off within n eps |A| |B| ...
        bound = 4 * W.shape[1] * EPS * _product(_absolute(f), W.shape[1])
        assert np.all(np.abs(_product(f, W.shape[1]) - W) <= bound)


def test_next_maps_through_factors_equal_the_dense_product():
    net = _conv_net(3)
    layers = _chain.unrolled_layers(net)
    factors = _chain.layer_factors(net, layers)
    g = np.random.default_rng(0)
    for k in range(1, len(layers)):
        if factors[k] is None:
            continue
        W, b, _ = layers[k]
        n = W.shape[1]
        M = g.normal(size=(50, 3, n))
        bits = np.packbits(g.integers(0, 2, (50, n)).astype(np.uint8), axis=1)
        dense = K.gated_product(M, bits, 1.0, 0.01, np.ascontiguousarray(W), b)
        fast = _chain.next_maps(M, bits, 1.0, 0.01, W, b, None, 0, factors[k])
        slopes = np.where(np.unpackbits(bits, axis=1, count=n)[:, None, :] == 1, 1.0, 0.01)
        bound = 4 * n * EPS * (np.abs(M * slopes) @ np.abs(W).T + np.outer([0, 0, 1], np.abs(b))[None])
        assert np.all(np.abs(fast - dense) <= 2 * bound)


def test_split_faces_packs_the_bits_of_every_child():
    g = np.random.default_rng(1)
    xy = np.array([[-1.0, -1], [1, -1], [1, 1], [-1, 1]])
    off, lab = np.array([0, 4]), np.array([-1, -2, -3, -4])
    for n in (1, 7, 8, 9, 64, 203):
        M = g.normal(size=(1, 3, n))
        cxy, coff, _, cparent, cbits, _, _ = K.split_faces(xy, off, lab, M, 0, 1e-10, 2 * np.sqrt(2))
        assert cbits.shape == (len(cparent), (n + 7) // 8)
        for c in range(len(cparent)):
            centre = cxy[coff[c]:coff[c + 1]].mean(0)
            expected = (M[0, 0] * centre[0] + M[0, 1] * centre[1] + M[0, 2]) > 0
            assert np.array_equal(np.unpackbits(cbits[c], count=n).astype(bool), expected)
        assert not np.any(np.unpackbits(cbits, axis=1)[:, n:])  # padding bits stay clear


@pytest.mark.parametrize("size", [14, 18])
def test_sparse_column_updates_give_the_dense_path_partition(size, monkeypatch):
    net = from_torch(lenet_avgpool(size), (1, size, size))
    plane = Plane.through(*[0.5 * a for a in three_inputs((1, size, size), 2)])
    fast = partition(net, plane)
    assert fast.method == "chain"
    layers = _chain.unrolled_layers(net)
    assert len(_chain.sparse_columns(layers[1][0])[0]) > 0  # the conv layer's columns are sparse
    monkeypatch.setattr(_chain, "SPARSE_DENSITY", -1.0)  # every layer dense
    monkeypatch.setattr(_chain, "layer_factors", lambda net, layers: [None] * len(layers))
    dense = partition(net, plane)
    assert dense.num_regions == fast.num_regions
    assert np.array_equal(dense.patterns, fast.patterns)
    scale = np.abs(dense.maps).max()
    assert np.allclose(dense.maps, fast.maps, rtol=0, atol=1e-12 * scale)
    assert np.array_equal(dense.offsets, fast.offsets)


def _without_segments(monkeypatch, net, plane):
    with monkeypatch.context() as m:
        m.setattr(_graph, "segment", lambda net, k: None)
        return partition(net, plane, method="graph")


def _same_partition(a, b):
    assert a.num_regions == b.num_regions
    assert np.array_equal(a.offsets, b.offsets)
    assert np.array_equal(a.patterns, b.patterns)
    assert np.array_equal(a.argmax, b.argmax)
    # the updates reach each map by another sum of the same terms: round-off of the widest sums
    assert np.allclose(a.maps, b.maps, rtol=0, atol=1e-11 * np.abs(b.maps).max())


@pytest.mark.parametrize("pool_name", ["maxpool2", "maxpool3-s2-p1-ceil", "adaptive-max"])
def test_graph_segments_give_the_direct_partition(pool_name, monkeypatch):
    from test_regions_max import _build, check_exact

    net = _build(3, pool_name, shape=(1, 6, 6))
    plane = Plane.through(*three_inputs((1, 6, 6), 4))
    assert any(_graph.segment(net, k) is not None for k in range(len(net.nonlinear)))
    fast = partition(net, plane, method="graph")
    _same_partition(fast, _without_segments(monkeypatch, net, plane))
    check_exact(net, plane, fast)


def _digit_window(seed, half_width=0.01):
    """A small window at the centre of the plane through three random 28x28 images."""
    g = np.random.default_rng(seed)
    through = Plane.through(*[g.random((1, 28, 28)) for _ in range(3)])
    u0, u1, v0, v1 = through.bounds
    cu, cv = (u0 + u1) / 2, (v0 + v1) / 2
    return Plane(through.origin, through.d1, through.d2, (cu - half_width, cu + half_width, cv - half_width,
                                                         cv + half_width))


def test_graph_segments_on_lenet5_with_duplicate_channels(monkeypatch):
    # two identical conv channels: their pooled values tie on every face, which the updates must
    # leave to the direct product and the tie rule
    from netatlas.nets import zoo

    model = zoo.lenet5(seed=1)
    with torch.no_grad():
        model[0].weight[1] = model[0].weight[0]
        model[0].bias[1] = model[0].bias[0]
    net = from_torch(model, (1, 28, 28))
    plane = _digit_window(5)
    fast = partition(net, plane)
    assert fast.num_regions > 100
    _same_partition(fast, _without_segments(monkeypatch, net, plane))


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10**6), n_in=st.integers(1, 40), n_out=st.integers(1, 30), density=st.floats(0.05, 1))
def test_sparse_updates_equal_the_direct_product(seed, n_in, n_out, density):
    from netatlas.regions._segments import plan_updates, update_from_previous

    g = np.random.default_rng(seed)
    A = g.normal(size=(n_out, n_in)) * (g.random((n_out, n_in)) < density)
    # a batch of faces whose values change in a few entries from one to the next
    G = np.empty((50, 3, n_in))
    G[0] = g.normal(size=(3, n_in))
    for c in range(1, 50):
        G[c] = G[c - 1]
        changed = g.choice(n_in, size=min(n_in, int(g.integers(0, 4))), replace=False)
        G[c][:, changed] = g.normal(size=(3, len(changed)))
    rows, cols = np.nonzero(A.T)
    ptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=n_in))]).astype(np.int64)
    full = plan_updates(G, 3, 16)
    assert full[0] and not full.all()  # the first is direct, most are updates
    out = np.empty((50, 3, n_out))
    out[full] = G[full] @ A.T
    update_from_previous(G, full, ptr, cols.astype(np.int64), A.T[rows, cols].copy(), out)
    direct = G @ A.T
    # each face is at most 16 updates from a direct product: 16 + n_in roundings of |A| |G| terms
    bound = (16 * 4 + n_in) * EPS * np.maximum.accumulate(np.abs(G) @ np.abs(A).T, axis=0)
    assert np.all(np.abs(out - direct) <= bound + 1e-300)


def test_graph_segments_on_a_resnet_give_the_direct_partition(monkeypatch):
    # the first conv of each BasicBlock is a segment whose source (the block input) is read again by
    # the residual addition: it is passed on with the children's values
    from netatlas.nets import zoo

    net = from_torch(zoo.resnet_tiny(width=2, seed=0), (1, 8, 8))
    plane = Plane.through(*three_inputs((1, 8, 8), 3))
    assert any(_graph.segment(net, k) is not None and _graph.segment(net, k).extra for k in range(len(net.nonlinear)))
    fast = partition(net, plane)
    assert fast.num_regions > 100
    _same_partition(fast, _without_segments(monkeypatch, net, plane))


@pytest.mark.parametrize("case", ["resnet", "duplicated_max"])
def test_tight_vanishing_candidates_change_no_region(case, monkeypatch):
    # the graph path only checks units that the rule could snap (within 2 K eps mu); a filter a million
    # times looser (the order of CANDIDATE_RATIO) must give the same partition
    from netatlas.nets import zoo
    from netatlas.regions import _graphmaps

    if case == "resnet":
        net = from_torch(zoo.resnet_tiny(width=2, seed=1), (1, 8, 8))
        plane = Plane.through(*three_inputs((1, 8, 8), 5))
    else:
        model = zoo.lenet5(seed=2)
        with torch.no_grad():  # channel 1 a copy of channel 0 (exact ties), channel 2 three times it
            model[0].weight[1], model[0].bias[1] = model[0].weight[0], model[0].bias[0]
            model[0].weight[2], model[0].bias[2] = 3 * model[0].weight[0], 3 * model[0].bias[0]
        net = from_torch(model, (1, 28, 28))
        plane = _digit_window(6)
    tight = partition(net, plane, method="graph")
    monkeypatch.setattr(_graphmaps, "CANDIDATE_SLACK", 1e6)
    loose = partition(net, plane, method="graph")
    _same_partition(tight, loose)
