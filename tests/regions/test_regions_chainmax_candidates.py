"""The chain path's max over its outputs on each face's arg-max candidates (``_chainmaxkernels``, NOTE [max
candidates]) against the same split by every window entry (``_maxkernels.split_faces_max``, the path it
replaced): the same regions bit for bit (polygons, edge labels, patterns, arg-max positions, output maps) on
random, trained and degenerate nets (integer weights, equal outputs: exact ties; outputs equal up to round-off:
the ties rule), and the kernel alone on random faces, at any scale."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from netatlas import Plane
from netatlas.nets import from_torch
from netatlas.regions import _chainmax as CM
from netatlas.regions import partition
from netatlas.regions._chainmaxkernels import _candidates, split_faces_max_candidates
from netatlas.regions._maxkernels import split_faces_max


def _max_net(linears, pool, act="relu"):
    """``Linear, act, ..., Linear`` (float64, weights as given) then ``pool`` over the outputs."""
    mods = []
    for i, lin in enumerate(linears):
        mods.append(lin.double())
        if i < len(linears) - 1:
            mods.append(nn.ReLU() if act == "relu" else nn.LeakyReLU(0.2))
    n = linears[-1].out_features
    return from_torch(nn.Sequential(*mods, nn.Unflatten(1, (1, n)), pool, nn.Flatten()), (2,))


def _random_net(seed, widths, pool=None, act="relu"):
    torch.manual_seed(seed)
    linears = [nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:], strict=True)]
    return _max_net(linears, pool or nn.AdaptiveMaxPool1d(1), act)


class _Spy:
    """Counts the faces each split kernel of ``_chainmax`` gets (and calls it)."""

    def __init__(self, monkeypatch):
        self.faces = {"candidates": 0, "all entries": 0}
        for name, key in (("split_faces_max_candidates", "candidates"), ("split_faces_max", "all entries")):
            kernel = getattr(CM, name)

            def counted(xy, off, *args, kernel=kernel, key=key):
                self.faces[key] += len(off) - 1
                return kernel(xy, off, *args)

            monkeypatch.setattr(CM, name, counted)


def _both_paths(net, plane, monkeypatch):
    """(partition by every entry, partition on candidates, faces each kernel split on the candidates' run)."""
    monkeypatch.setattr(CM, "CANDIDATE_KERNEL", False)
    every = partition(net, plane)
    monkeypatch.setattr(CM, "CANDIDATE_KERNEL", True)
    spy = _Spy(monkeypatch)
    fast = partition(net, plane)
    assert every.method == fast.method == "chain"
    return every, fast, spy.faces


def _assert_identical(a, b):
    assert a.num_regions == b.num_regions
    for field in ("xy", "offsets", "labels", "maps"):
        assert np.array_equal(getattr(a, field), getattr(b, field)), field
    assert len(a.pattern_bits) == len(b.pattern_bits)
    for pa, pb in zip(a.pattern_bits, b.pattern_bits, strict=True):
        assert np.array_equal(pa, pb)
    assert np.array_equal(a.choices[0], b.choices[0])
    assert np.array_equal(a.areas, b.areas)


@pytest.mark.parametrize(("seed", "widths", "pool", "act"), [
    (0, [2, 64, 64], None, "relu"),  # regioncam's 2-64-relu-64-max shape
    (1, [2, 32, 32, 16], None, "relu"),
    (2, [2, 16, 12], None, "leaky_relu"),
    (3, [2, 12, 8], nn.MaxPool1d(2), "relu"),  # four windows
    (4, [2, 20, 9], nn.MaxPool1d(3, stride=1), "relu"),  # overlapping windows
    (5, [2, 20, 9], nn.MaxPool1d(4, stride=3, padding=2), "leaky_relu"),  # windows padded with -1
])
def test_random_nets_split_like_every_entry(seed, widths, pool, act, monkeypatch):
    net = _random_net(seed, widths, pool, act)
    every, fast, faces = _both_paths(net, Plane.square(1.0), monkeypatch)
    _assert_identical(every, fast)
    # the candidates' kernel split every face: no face needed the ties rule
    assert faces["candidates"] > 0 and faces["all entries"] == 0


@pytest.mark.parametrize("act", ["relu", "leaky_relu"])
def test_a_max_of_activations_splits_like_every_entry(act, monkeypatch):
    """The max of a relu layer's outputs (regioncam's ``Linear, ReLU`` then its max pool): where several
    units are off they are all exactly 0 there (exact ties: the first wins, no split)."""
    torch.manual_seed(5)
    layer = nn.ReLU if act == "relu" else (lambda: nn.LeakyReLU(0.1))
    model = nn.Sequential(nn.Linear(2, 16), layer(), nn.Linear(16, 12), layer(), nn.Unflatten(1, (1, 12)),
                          nn.AdaptiveMaxPool1d(1), nn.Flatten()).double()
    with torch.no_grad():
        model[2].bias -= 0.5  # many units off at once
    every, fast, faces = _both_paths(from_torch(model, (2,)), Plane.square(1.0), monkeypatch)
    _assert_identical(every, fast)
    assert faces["candidates"] > 0


def test_a_trained_net_splits_like_every_entry(monkeypatch):
    """A net trained to score two spirals' classes (its max is of outputs that cross each other often)."""
    torch.manual_seed(0)
    t = torch.linspace(0.5, 3.0, 200, dtype=torch.float64)
    x = torch.cat([torch.stack([t.cos(), t.sin()], 1), -torch.stack([t.cos(), t.sin()], 1)]) * t.repeat(2)[:, None] / 3
    y = torch.cat([torch.zeros(200), torch.ones(200)]).long()
    body = nn.Sequential(nn.Linear(2, 24), nn.ReLU(), nn.Linear(24, 24), nn.ReLU(), nn.Linear(24, 8)).double()
    opt = torch.optim.Adam(body.parameters(), lr=0.02)
    for _ in range(150):  # outputs 0-3 score class 0, 4-7 class 1: a max of each group
        opt.zero_grad()
        scores = body(x).view(-1, 2, 4).amax(2)
        nn.functional.cross_entropy(scores, y).backward()
        opt.step()
    net = _max_net([body[0], body[2], body[4]], nn.MaxPool1d(4))
    every, fast, faces = _both_paths(net, Plane.square(1.0), monkeypatch)
    _assert_identical(every, fast)
    assert faces["candidates"] > 0


def _integer_net(data, widths):
    """Integer weights and biases in [-2, 2] (exact arithmetic: ties are exact), some output rows copies
    of others (equal outputs everywhere) or zero (constant outputs)."""
    linears = []
    for a, b in zip(widths[:-1], widths[1:], strict=True):
        lin = nn.Linear(a, b).double()
        w = data.draw(st.lists(st.integers(-2, 2), min_size=a * b, max_size=a * b))
        c = data.draw(st.lists(st.integers(-2, 2), min_size=b, max_size=b))
        with torch.no_grad():
            lin.weight.copy_(torch.tensor(w, dtype=torch.float64).view(b, a))
            lin.bias.copy_(torch.tensor(c, dtype=torch.float64))
        linears.append(lin)
    last = linears[-1]
    n = last.out_features
    for i in range(1, n):
        kind = data.draw(st.sampled_from(["own", "copy", "zero"]))
        with torch.no_grad():
            if kind == "copy":
                j = data.draw(st.integers(0, i - 1))
                last.weight[i], last.bias[i] = last.weight[j].clone(), last.bias[j].clone()
            elif kind == "zero":
                last.weight[i] = 0.0
    return linears


@settings(max_examples=25, deadline=None)
@given(data=st.data(), widths=st.sampled_from([[2, 3, 4], [2, 5, 6], [2, 4, 3, 5], [2, 6, 8]]),
       windows=st.sampled_from([1, 2]), act=st.sampled_from(["relu", "leaky_relu"]))
def test_property_integer_nets_with_exact_ties_split_like_every_entry(data, widths, windows, act):
    net = _max_net(_integer_net(data, widths), nn.AdaptiveMaxPool1d(1) if windows == 1 else
                   nn.MaxPool1d(widths[-1] // 2), act)
    with pytest.MonkeyPatch.context() as monkeypatch:
        every, fast, _ = _both_paths(net, Plane.square(1.5), monkeypatch)
    _assert_identical(every, fast)


@pytest.mark.parametrize("seed", [0, 2])
def test_outputs_equal_up_to_round_off_take_the_ties_rule(seed, monkeypatch):
    """Output 3 is output 2 times (1 + 2^-50) and output 1 a copy of output 0: the faces where 2 and 3 are
    candidates go to the ties rule (the full split), the others stay on the candidates' kernel."""
    torch.manual_seed(seed)
    linears = [nn.Linear(2, 10).double(), nn.Linear(10, 10).double(), nn.Linear(10, 6).double()]
    last = linears[-1]
    with torch.no_grad():
        last.weight[1], last.bias[1] = last.weight[0], last.bias[0]
        last.bias[2] += 0.4  # so that 2 and 3 are near the max somewhere
        last.weight[3], last.bias[3] = last.weight[2] * (1 + 2**-50), last.bias[2] * (1 + 2**-50)
    net = _max_net(linears, nn.AdaptiveMaxPool1d(1))
    every, fast, faces = _both_paths(net, Plane.square(1.0), monkeypatch)
    _assert_identical(every, fast)
    assert 0 < faces["all entries"] < faces["candidates"]
    assert not np.isin(fast.choices[0][:, 0], [1, 3]).any()  # the first of equal entries wins


@pytest.mark.parametrize("exponent", [-900, -300, 300, 900])
def test_any_scale_splits_like_scale_one(exponent):
    """Outputs scaled by 2^e (exact): the same regions and arg-maxes bit for bit, the maps times 2^e (the
    max's entries in their window's units: no square overflows or underflows), as on the graph path."""
    torch.manual_seed(7)
    linears = [nn.Linear(2, 16).double(), nn.Linear(16, 16).double(), nn.Linear(16, 12).double()]
    base = partition(_max_net(linears, nn.MaxPool1d(4)), Plane.square(1.0))
    with torch.no_grad():
        linears[-1].weight *= 2.0**exponent
        linears[-1].bias *= 2.0**exponent
    net = _max_net(linears, nn.MaxPool1d(4))
    scaled = partition(net, Plane.square(1.0))
    assert scaled.method == "chain"
    assert np.array_equal(np.ldexp(base.maps, exponent), scaled.maps)
    for field in ("xy", "offsets", "labels"):
        assert np.array_equal(getattr(base, field), getattr(scaled, field)), field
    assert np.array_equal(base.choices[0], scaled.choices[0])
    graph = partition(net, Plane.square(1.0), method="graph")
    assert graph.num_regions == scaled.num_regions
    assert sorted(map(bytes, graph.choices[0])) == sorted(map(bytes, scaled.choices[0]))


def _random_faces(rng, n_faces, n_in, ties):
    """Faces (random convex polygons: a rectangle cut by a random line) with random affine maps, some of
    whose columns are exact copies (``ties``) or differ from another column in one row only."""
    polys = []
    for _ in range(n_faces):
        x0, y0 = rng.uniform(-1, 0.5, 2)
        w, h = rng.uniform(0.01, 0.5, 2)
        poly = np.array([[x0, y0], [x0 + w, y0], [x0 + w, y0 + h], [x0, y0 + h]])
        if rng.random() < 0.5:
            poly = np.delete(poly, rng.integers(4), axis=0)  # a triangle
        polys.append(poly)
    off = np.concatenate([[0], np.cumsum([len(p) for p in polys])]).astype(np.int64)
    xy = np.concatenate(polys)
    lab = rng.integers(-4, 0, len(xy)).astype(np.int64)
    M = rng.normal(size=(n_faces, 3, n_in))
    if ties:
        for f in range(n_faces):
            for j in rng.choice(n_in, n_in // 3, replace=False):
                src = rng.integers(n_in)
                M[f, :, j] = M[f, :, src]
                if rng.random() < 0.3:
                    M[f, rng.integers(3), j] += rng.normal()
    return xy, off, lab, M


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10**6), n_in=st.integers(1, 40), n_out=st.integers(1, 3), ties=st.booleans(),
       exponent=st.sampled_from([0, -200, 200]), unbounded=st.booleans())
def test_property_kernel_equals_split_faces_max(seed, n_in, n_out, ties, exponent, unbounded):
    """The kernel alone (no ties test) on random faces and windows (padded rows, repeated entries across
    windows): the same children, bit for bit, as ``split_faces_max``; with bounds past float64's range
    (``unbounded``) every entry is a candidate."""
    rng = np.random.default_rng(seed)
    xy, off, lab, M = _random_faces(rng, 40, n_in, ties)
    M = np.ldexp(M, exponent)
    k = int(rng.integers(1, n_in + 1))
    index = np.full((n_out, k), -1, np.int64)
    for w in range(n_out):
        row = np.sort(rng.choice(n_in, int(rng.integers(1, k + 1)), replace=False))
        index[w, :len(row)] = row
    if n_out == 1 and rng.random() < 0.5:
        index = np.arange(n_in)[None]  # a global max: the contiguous fast read
    bounds = np.abs(M).max(axis=0)[:, index].max(axis=2).T.copy()
    if unbounded:
        bounds[:] = np.inf
    want = split_faces_max(xy, off, lab, M, index, 7, 1e-10, 2.0)
    *got, tied = split_faces_max_candidates(xy, off, lab, M, index, bounds, np.zeros((3, 0)), 0.0, 7, 1e-10, 2.0)
    assert not tied.any()
    for a, b in zip(want, got, strict=True):
        assert np.array_equal(a, b)


def test_kernel_leaves_faces_with_tie_candidates_to_the_caller():
    """A face where two candidates differ by less than the ties test's reach is ``tied`` (no children); the
    others are split as ``split_faces_max`` splits them."""
    rng = np.random.default_rng(3)
    xy, off, lab, M = _random_faces(rng, 20, 6, False)
    M[:, 2, 0] += 10.0  # entry 0 is the max everywhere ...
    M[5, :, 4] = M[5, :, 0] * (1 + 2**-50)  # ... and on face 5 entry 4 equals it up to round-off
    mu = np.abs(M).max(axis=0)
    index = np.arange(6)[None]
    bounds = 2.0 * mu.max(axis=1)[None]
    *got, tied = split_faces_max_candidates(xy, off, lab, M, index, bounds, mu, 64 * 2.0**-52, 7, 1e-10, 2.0)
    assert np.flatnonzero(tied).tolist() == [5]
    keep = np.flatnonzero(~tied)
    want = split_faces_max(*_subset(xy, off, lab, keep), M[keep], index, 7, 1e-10, 2.0)
    assert np.array_equal(keep[want[3]], got[3])
    for a, b in zip(want[:3] + want[4:], got[:3] + got[4:], strict=True):
        assert np.array_equal(a, b)


def _subset(xy, off, lab, faces):
    v = np.concatenate([np.arange(off[f], off[f + 1]) for f in faces])
    return xy[v], np.concatenate([[0], np.cumsum(np.diff(off)[faces])]).astype(np.int64), lab[v]


def test_few_candidates_per_face_on_a_wide_max():
    """What makes the kernel fast: of 256 outputs of a random net, a face has one to a few candidates."""
    net = _random_net(0, [2, 64, 256])
    seen = []

    def spy(xy, off, lab, M, index, bounds, *rest):
        k = index.shape[1]
        scratch = [np.empty(k) for _ in range(5)] + [np.empty(k, np.int64) for _ in range(3)]
        for f in range(len(off) - 1):
            seen.append(_candidates(xy, off[f], off[f + 1] - off[f], M, f, index[0], True, bounds[0], rest[1],
                                    1e-10 * 2**0.5, k, *scratch))
        return split_faces_max_candidates(xy, off, lab, M, index, bounds, *rest)

    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setattr(CM, "split_faces_max_candidates", spy)
        partition(net, Plane.square(1.0))
    assert len(seen) > 100 and min(seen) >= 1 and np.mean(seen) < 3


def test_an_entry_below_every_other_by_less_than_the_band_stays_a_candidate():
    """On a sliver (1e-12 high) entry 0 is below entry 1 everywhere, by 1e-10: less than the band
    ``tol * diam * |grad(z_0 - z_1)|`` (2e-10), so ``split_faces_max`` lets the first of the two win;
    the candidates' margin keeps entry 0 (a margin of zero would drop it and choose entry 1)."""
    xy = np.array([[0.0, 0.0], [1.0, 0.0], [0.5, 1e-12]])
    off = np.array([0, 3])
    lab = np.array([-1, -2, -3])
    c = 0.25
    M = np.array([[[0.0, 0.0, -5.0], [1.0, 0.0, 0.0], [c - 1e-10, c, -1.0]]])  # z_0 = c - 1e-10 + v, z_1 = c
    index = np.arange(3)[None]
    bounds = np.abs(M).max(axis=(0, 2))[None]
    want = split_faces_max(xy, off, lab, M, index, 7, 1e-10, 2.0)
    *got, tied = split_faces_max_candidates(xy, off, lab, M, index, bounds, np.zeros((3, 0)), 0.0, 7, 1e-10, 2.0)
    assert want[4].tolist() == [[0]]
    for a, b in zip(want, got, strict=True):
        assert np.array_equal(a, b)


def test_without_magnitude_bounds_the_maps_own_sizes_bound_the_margin(monkeypatch):
    """A net whose magnitude pass is unknown (``magnitude_net`` None: no ties test on either path) takes its
    bounds from the maps themselves: still the same regions as the split by every entry."""

    class NoMagnitudes(CM._VanishingGraph):
        def __init__(self, *args):
            super().__init__(*args)
            self.net = None

    monkeypatch.setattr(CM, "_VanishingGraph", NoMagnitudes)
    net = _random_net(11, [2, 24, 24, 10], nn.MaxPool1d(5))
    every, fast, faces = _both_paths(net, Plane.square(1.0), monkeypatch)
    _assert_identical(every, fast)
    assert faces["candidates"] > 0 and faces["all entries"] == 0


def test_maps_that_are_not_numbers_take_every_entry():
    """No candidate at all can only come from NaN maps: then every entry goes on, as in ``split_faces_max``."""
    rng = np.random.default_rng(1)
    xy, off, lab, M = _random_faces(rng, 6, 5, False)
    M[2] = np.nan
    index = np.array([[0, 2, 4], [1, 3, -1]])
    bounds = np.ones((2, 3))
    want = split_faces_max(xy, off, lab, M, index, 7, 1e-10, 2.0)
    *got, tied = split_faces_max_candidates(xy, off, lab, M, index, bounds, np.zeros((3, 0)), 0.0, 7, 1e-10, 2.0)
    for a, b in zip(want, got, strict=True):
        assert np.array_equal(a, b)
