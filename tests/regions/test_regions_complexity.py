"""local_complexity, hyperplanes_crossing, local_complexity_1d: against an independent region-growing
reference on the disc's square (polygons within distance r), closed forms for one hyperplane and
parallel hyperplanes, the sampled estimator by hand, conv graphs, Dask, bad input."""

import numpy as np
import pytest
import torch
from regions_reference import reference_regions
from torch import nn

import netatlas
from netatlas import Plane
from netatlas.nets import from_torch, mlp
from netatlas.regions import along_line, hyperplanes_crossing, local_complexity, local_complexity_1d
from netatlas.regions._complexity import random_directions


def _distance_to_polygon(poly):
    """Distance from (0, 0) to a convex polygon (k, 2), plain numpy (0 inside)."""
    k = len(poly)
    inside, best = True, np.inf
    for i in range(k):
        p, q = poly[i], poly[(i + 1) % k]
        e = q - p
        if e[0] * (-p[1]) - e[1] * (-p[0]) < 0:
            inside = False
        t = np.clip(-(p @ e) / (e @ e), 0, 1) if e @ e > 0 else 0.0
        best = min(best, float(np.hypot(*(p + t * e))))
    return 0.0 if inside else best


def _reference(net, p, d1, d2, r):
    """(regions meeting the disc, units crossing it per layer) from the slow reference."""
    shape = net.input_shape
    plane = Plane(p.reshape(shape), d1.reshape(shape), d2.reshape(shape), (-r, r, -r, r))
    regions = reference_regions(net, plane)
    keys = [np.frombuffer(key, dtype=bool) for key, poly in regions.items() if _distance_to_polygon(poly) < r]
    pats = np.array(keys)
    sizes = [net.nodes[i].size for i in net.activations]
    cross, start = [], 0
    for n in sizes:
        block = pats[:, start:start + n]
        cross.append(int((block.any(0) & ~block.all(0)).sum()))
        start += n
    return len(keys), cross


def _trained_moons_net():
    data = netatlas.data.moons(n=128, seed=3)
    model = mlp([2, 12, 12, 2], seed=5)
    netatlas.train.fit(model, data, epochs=150, lr=0.03)
    return from_torch(model), data.x.numpy()


@pytest.mark.parametrize("sizes,seed,r", [([3, 8, 8, 2], 11, 0.4), ([5, 10, 6, 6, 1], 12, 0.6),
                                          ([2, 12, 12, 3], 13, 0.25)])
def test_exact_matches_reference_on_random_nets(sizes, seed, r):
    net = from_torch(mlp(sizes, seed=seed))
    rng = np.random.default_rng(seed)
    pts = rng.normal(size=(4, sizes[0])) * 0.5
    D = random_directions(4, 2, sizes[0], seed=seed + 100)
    lc = local_complexity(net, pts, r, directions=D)
    hc = hyperplanes_crossing(net, pts, r, directions=D)
    assert lc.shape == (4, 2) and hc.shape == (4, 2, len(sizes) - 2)
    for i in range(4):
        for j in range(2):
            count, cross = _reference(net, pts[i], D[i, j, 0], D[i, j, 1], r)
            assert lc[i, j] == count
            assert hc[i, j].tolist() == cross
    assert lc.max() > 2  # the discs are not trivially inside one region


def test_exact_matches_reference_on_trained_net():
    net, x = _trained_moons_net()
    pts = x[:6]
    D = random_directions(6, 1, 2, seed=4)  # in 2-D every plane is the input plane (up to rotation)
    lc = local_complexity(net, pts, 0.3, directions=D)
    for i in range(6):
        count, _ = _reference(net, pts[i], D[i, 0, 0], D[i, 0, 1], 0.3)
        assert lc[i, 0] == count


def test_conv_graph_matches_reference():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8, 3), nn.ReLU(),
                          nn.Linear(3, 2))
    net = from_torch(model, input_shape=(1, 4, 4))
    rng = np.random.default_rng(1)
    pts = rng.uniform(0, 1, size=(3, 1, 4, 4))
    D = random_directions(3, 1, 16, seed=2)
    lc = local_complexity(model, pts, 0.8, directions=D)  # a module: input shape from the points
    hc = hyperplanes_crossing(net, pts, 0.8, directions=D)
    for i in range(3):
        count, cross = _reference(net, pts[i].ravel(), D[i, 0, 0], D[i, 0, 1], 0.8)
        assert lc[i, 0] == count
        assert hc[i, 0].tolist() == cross


def _one_unit_net(w, b):
    """x -> relu(w.x + b) -> identity output: one hyperplane."""
    lin = nn.Linear(len(w), 1)
    out = nn.Linear(1, 1)
    with torch.no_grad():
        lin.weight.copy_(torch.from_numpy(w[None]))
        lin.bias.fill_(b)
        out.weight.fill_(1.0)
        out.bias.zero_()
    return from_torch(nn.Sequential(lin, nn.ReLU(), out).double())


def test_single_hyperplane_closed_form():
    rng = np.random.default_rng(0)
    d = 5
    w = rng.normal(size=d)
    net = _one_unit_net(w, 0.3)
    pts = rng.normal(size=(40, d)) * 0.4
    D = random_directions(40, 3, d, seed=1)
    r = 0.35
    z = pts @ w + 0.3
    a = np.einsum("pmd,d->pm", D[:, :, 0], w)
    b = np.einsum("pmd,d->pm", D[:, :, 1], w)
    dist = np.abs(z)[:, None] / np.hypot(a, b)  # distance of the line to p in the plane
    expected = 1 + (dist < r)
    assert np.array_equal(local_complexity(net, pts, r, directions=D), expected)
    assert np.array_equal(hyperplanes_crossing(net, pts, r, directions=D)[..., 0], expected - 1)
    # sampled: the sign of z(p) +- r a, z(p) +- r b is not constant
    sampled = np.abs(z)[:, None] < r * np.maximum(np.abs(a), np.abs(b))
    assert np.array_equal(local_complexity(net, pts, r, directions=D, method="sampled"), sampled)
    assert 0 < sampled.sum() < expected.sum() - 120  # the estimator misses crossings here
    # 1-D: the segment p + t d1, |t| <= r, is cut when |z(p)| < r |w.d1|
    pieces = local_complexity_1d(net, pts, r, directions=D[:, :, 0])
    assert np.array_equal(pieces, 1 + (np.abs(z)[:, None] < r * np.abs(a)))


def test_parallel_hyperplanes_closed_form():
    # n units with one normal w and biases b_j: the disc meets 1 + #{j : |w.p + b_j| < r |w_plane|} regions
    rng = np.random.default_rng(3)
    n, d = 12, 4
    w = rng.normal(size=d)
    biases = np.linspace(-1.5, 1.5, n)
    lin, out = nn.Linear(d, n), nn.Linear(n, 1)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor(np.tile(w, (n, 1))))
        lin.bias.copy_(torch.tensor(biases))
    net = from_torch(nn.Sequential(lin, nn.ReLU(), out).double())
    pts = rng.normal(size=(30, d)) * 0.5
    D = random_directions(30, 2, d, seed=5)
    r = 0.5
    gw = np.hypot(np.einsum("pmd,d->pm", D[:, :, 0], w), np.einsum("pmd,d->pm", D[:, :, 1], w))
    z = pts @ w
    crossing = (np.abs(z[:, None, None] + biases) < r * gw[..., None]).sum(-1)
    assert np.array_equal(local_complexity(net, pts, r, directions=D), 1 + crossing)
    assert np.array_equal(hyperplanes_crossing(net, pts, r, directions=D)[..., 0], crossing)
    assert crossing.max() >= 3


def test_sampled_matches_forward_by_hand_and_is_below_exact():
    net = from_torch(mlp([6, 16, 16, 16, 3], seed=7))
    rng = np.random.default_rng(7)
    pts = rng.normal(size=(10, 6))
    D = random_directions(10, 2, 6, seed=8)
    r = 0.3
    got = hyperplanes_crossing(net, pts, r, directions=D, method="sampled")
    verts = pts[:, None, None] + r * np.concatenate([D, -D], axis=2)  # (10, 2, 4, 6)
    zs = net.pre_activations(verts.reshape(-1, 6))
    for k, z in enumerate(zs):
        pos = z.numpy().reshape(10, 2, 4, -1) > 0
        assert np.array_equal(got[..., k], (pos.any(2) & ~pos.all(2)).sum(-1))
    exact = hyperplanes_crossing(net, pts, r, directions=D)
    assert np.all(got <= exact)
    assert np.array_equal(local_complexity(net, pts, r, directions=D, method="sampled"), got.sum(-1))


def test_1d_matches_along_line_on_mlp_and_conv():
    net = from_torch(mlp([4, 16, 16, 16, 2], seed=9))
    rng = np.random.default_rng(9)
    pts = rng.normal(size=(8, 4))
    D = random_directions(8, 3, 4, 1, seed=10)[:, :, 0]
    r = 0.7
    got = local_complexity_1d(net, pts, r, directions=D)
    for i in range(8):
        for j in range(3):
            assert got[i, j] == along_line(net, pts[i] - r * D[i, j], pts[i] + r * D[i, j]).num_pieces
    assert got.max() > 3
    torch.manual_seed(1)
    model = nn.Sequential(nn.Conv1d(1, 3, 3), nn.ReLU(), nn.Flatten(), nn.Linear(12, 2))
    conv = from_torch(model, input_shape=(1, 6))
    cpts = rng.normal(size=(3, 1, 6))
    cD = random_directions(3, 1, 6, 1, seed=2)[:, :, 0]
    cgot = local_complexity_1d(conv, cpts, 1.0, directions=cD)
    for i in range(3):
        x0, x1 = cpts[i].ravel() - cD[i, 0], cpts[i].ravel() + cD[i, 0]
        assert cgot[i, 0] == along_line(conv, x0.reshape(1, 6), x1.reshape(1, 6)).num_pieces


def test_random_directions_are_seeded_and_chunking_does_not_matter(monkeypatch):
    net = from_torch(mlp([3, 10, 10, 2], seed=1))
    pts = np.random.default_rng(2).normal(size=(7, 3))
    a = local_complexity(net, pts, 0.5, n_planes=3, seed=4)
    assert np.array_equal(a, local_complexity(net, pts, 0.5, n_planes=3, seed=4))
    assert not np.array_equal(a, local_complexity(net, pts, 0.5, n_planes=3, seed=5))
    import netatlas.regions._complexity as C

    monkeypatch.setattr(C, "CHUNK", 2)
    assert np.array_equal(a, local_complexity(net, pts, 0.5, n_planes=3, seed=4))


def test_dask_client_gives_the_same_counts():
    distributed = pytest.importorskip("dask.distributed")
    net = from_torch(mlp([3, 10, 10, 2], seed=1))
    pts = np.random.default_rng(2).normal(size=(9, 3))
    with distributed.Client(processes=False, n_workers=1, threads_per_worker=1, dashboard_address=None) as client:
        import netatlas.regions._complexity as C

        old, C.TASK = C.TASK, 4  # several tasks
        try:
            got = local_complexity(net, pts, 0.5, n_planes=2, client=client)
            got1 = local_complexity_1d(net, pts, 0.5, n_lines=2, client=client)
        finally:
            C.TASK = old
    assert np.array_equal(got, local_complexity(net, pts, 0.5, n_planes=2))
    assert np.array_equal(got1, local_complexity_1d(net, pts, 0.5, n_lines=2))


def test_bad_input():
    net = mlp([3, 8, 2], seed=0)
    pts = np.zeros((2, 3))
    with pytest.raises(ValueError, match="radius must be a finite number > 0"):
        local_complexity(net, pts, -1.0)
    with pytest.raises(ValueError, match="network takes inputs of 3 numbers"):
        local_complexity(net, np.zeros((2, 4)), 0.1)
    with pytest.raises(ValueError, match="directions must have shape"):
        local_complexity(net, pts, 0.1, directions=np.zeros((2, 1, 3, 3)))
    bad = np.zeros((2, 1, 2, 3))
    bad[..., 0, 0] = 1.0  # second direction zero
    with pytest.raises(ValueError, match="must be orthonormal"):
        local_complexity(net, pts, 0.1, directions=bad)
    bad[..., 1, 0] = 1.0  # parallel
    with pytest.raises(ValueError, match="must be orthonormal"):
        hyperplanes_crossing(net, pts, 0.1, directions=bad)
    with pytest.raises(ValueError, match="method must be"):
        local_complexity(net, pts, 0.1, method="grid")
    with pytest.raises(ValueError, match="n_planes must be an integer >= 1"):
        local_complexity(net, pts, 0.1, n_planes=0)
    with pytest.raises(netatlas.UnsupportedLayerError):
        local_complexity(mlp([3, 8, 2], "tanh"), pts, 0.1)


def test_max_pool_and_hardtanh_graph_against_max_reference():
    from max_reference import reference_regions as max_reference

    torch.manual_seed(3)
    model = nn.Sequential(nn.Conv2d(1, 2, 2), nn.Hardtanh(-0.3, 0.4), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(8, 3), nn.ReLU(), nn.Linear(3, 2))
    net = from_torch(model, input_shape=(1, 5, 5))
    rng = np.random.default_rng(4)
    pts = rng.uniform(0, 1, size=(3, 1, 5, 5))
    D = random_directions(3, 1, 25, seed=6)
    r = 0.9
    lc = local_complexity(net, pts, r, directions=D)
    for i in range(3):
        plane = Plane(pts[i], D[i, 0, 0].reshape(1, 5, 5), D[i, 0, 1].reshape(1, 5, 5), (-r, r, -r, r))
        ref = max_reference(net, plane)
        assert lc[i, 0] == sum(_distance_to_polygon(poly) < r for poly in ref.values())
    # sampled, by hand: (unit, breakpoint) pairs not on one side over the four vertices
    got = hyperplanes_crossing(net, pts, r, directions=D, method="sampled")
    verts = pts.reshape(3, 1, 1, 25) + r * np.concatenate([D, -D], axis=2)
    zs = net.pre_activations(verts.reshape(-1, 25))
    for k, (z, bps) in enumerate(zip(zs, [(-0.3, 0.4), (0.0,)], strict=True)):
        want = 0
        for bp in bps:
            pos = z.numpy().reshape(3, 1, 4, -1) > bp
            want = want + (pos.any(2) & ~pos.all(2)).sum(-1)
        assert np.array_equal(got[..., k], want)


def test_degenerate_directions_raise_degenerate_slice_error():
    net = from_torch(mlp([3, 4, 1], seed=0))
    pts = np.zeros((2, 3))
    parallel = np.zeros((2, 1, 2, 3))
    parallel[..., 0] = 1.0  # both directions e_0
    with pytest.raises(netatlas.DegenerateSliceError, match="zero or parallel directions"):
        local_complexity(net, pts, 0.1, directions=parallel)
    assert issubclass(netatlas.DegenerateSliceError, ValueError)  # callers that caught ValueError still do

