"""Exact at any representable scale (issue 24, item 1): the partition does not change when a unit's
row (w, b) is scaled by a positive 10^k (the next layer's column by 10^-k, the same function), nor when
the plane is scaled with the first layer; nested windows hold nested counts; one hidden layer agrees
with an exact rational count of its line arrangement; and what float64 cannot resolve is refused."""

import math
import warnings
from fractions import Fraction

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from netatlas import Plane, PrecisionError
from netatlas.nets import from_torch
from netatlas.nets._build import mlp
from netatlas.regions import partition

SETTINGS = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def chain(weights, leaky=False):
    """A float64 Sequential of Linear layers [(W, b), ...] with ReLU (or LeakyReLU 0.1) between."""
    layers = []
    for k, (W, b) in enumerate(weights):
        lin = nn.Linear(W.shape[1], W.shape[0]).double()
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(W))
            lin.bias.copy_(torch.from_numpy(b))
        layers.append(lin)
        if k < len(weights) - 1:
            layers.append(nn.LeakyReLU(0.1) if leaky else nn.ReLU())
    return nn.Sequential(*layers)


def random_weights(widths, seed):
    rng = np.random.default_rng(seed)
    return [(rng.normal(size=(n_out, n_in)), rng.normal(size=n_out) * 0.5)
            for n_in, n_out in zip(widths[:-1], widths[1:], strict=True)]


def pattern_set(part):
    rows = np.concatenate([part.patterns.astype(np.uint8), part.argmax.astype(np.uint8)], axis=1)
    return sorted(r.tobytes() for r in rows)


def same_partition(a, b):
    assert a.num_regions == b.num_regions
    assert pattern_set(a) == pattern_set(b)
    if a.plane.bounds == b.plane.bounds:
        np.testing.assert_allclose(np.sort(a.areas), np.sort(b.areas), rtol=1e-6, atol=1e-9 * a.plane.area)


def scaled_unit(weights, layer, unit, factor):
    """Row ``unit`` of ``layer`` (w, b) times ``factor``, the next layer's column over it."""
    out = [(W.copy(), b.copy()) for W, b in weights]
    out[layer][0][unit] *= factor
    out[layer][1][unit] *= factor
    out[layer + 1][0][:, unit] /= factor
    return out


@SETTINGS
@given(seed=st.integers(0, 10**6), k=st.integers(-300, 300), leaky=st.booleans(), where=st.integers(0, 10**6),
       method=st.sampled_from(["chain", "graph"]))
def test_counts_do_not_change_when_a_unit_is_scaled_by_ten_to_the_k(seed, k, leaky, where, method):
    weights = random_weights([2, 5, 4, 1], seed)
    layer = where % 2
    unit = where % weights[layer][0].shape[0]
    plane = Plane.square(2.0)
    base = partition(chain(weights, leaky), plane, method=method)
    scaled = partition(chain(scaled_unit(weights, layer, unit, 10.0 ** k), leaky), plane, method=method)
    same_partition(base, scaled)


def max_net(weights, pool_scale=1.0, k_unit=None):
    """2 -> Linear(2, 6) -> ReLU -> MaxPool1d(2) (3 windows) -> Linear(3, 4) -> ReLU -> Linear(4, 1): the
    graph path. ``pool_scale`` multiplies the two rows feeding window 0 and divides the column of that
    window's output in the next layer (max of positively scaled entries is the scaled max)."""
    (W1, b1), (W2, b2), (W3, b3) = [(W.copy(), b.copy()) for W, b in weights]
    W1[:2] *= pool_scale
    b1[:2] *= pool_scale
    W2[:, 0] /= pool_scale
    first = chain([(W1, b1)])
    rest = chain([(W2, b2), (W3, b3)])
    return from_torch(nn.Sequential(first, nn.ReLU(), nn.Unflatten(1, (1, 6)), nn.MaxPool1d(2), nn.Flatten(), rest),
                      input_shape=(2,))


@SETTINGS
@given(seed=st.integers(0, 10**6), k=st.integers(-300, 300))
def test_max_pool_counts_do_not_change_when_a_window_is_scaled(seed, k):
    rng = np.random.default_rng(seed)
    weights = [(rng.normal(size=(6, 2)), rng.normal(size=6) * 0.5), (rng.normal(size=(4, 3)), rng.normal(size=4) * 0.5),
               (rng.normal(size=(1, 4)), np.zeros(1))]
    plane = Plane.square(2.0)
    base = partition(max_net(weights), plane)
    assert base.method == "graph" and base.argmax.shape[1] == 3
    same_partition(base, partition(max_net(weights, 10.0 ** k), plane))


@SETTINGS
@given(seed=st.integers(0, 10**6), k=st.integers(-300, 300), method=st.sampled_from(["chain", "graph"]))
def test_counts_do_not_change_when_the_plane_is_scaled_with_the_first_layer(seed, k, method):
    weights = random_weights([2, 5, 4, 1], seed)
    s = 10.0 ** k
    moved = [(weights[0][0] / s, weights[0][1])] + weights[1:]
    base = partition(chain(weights), Plane.square(1.0), method=method)
    scaled = partition(chain(moved), Plane.square(s), method=method)
    same_partition(base, scaled)
    # the regions themselves, in units of the plane's size
    np.testing.assert_allclose(np.sort((scaled.xy / s).ravel()), np.sort(base.xy.ravel()), atol=1e-9)


@SETTINGS
@given(seed=st.integers(0, 10**6), small=st.integers(-300, 300), more=st.integers(1, 300))
def test_nested_windows_hold_nested_counts_or_are_refused(seed, small, more):
    """A region of the larger window meets the smaller one in one convex piece, so
    count(square(a)) <= count(square(b)) for a < b; windows too wide for the tolerance are refused."""
    net = chain(random_weights([2, 6, 5, 1], seed))
    counts = []
    for e in (small, min(small + more, 300)):
        try:
            counts.append(partition(net, Plane.square(10.0 ** e)).num_regions)
        except PrecisionError as err:
            assert "boundary tolerance" in str(err)
            counts.append(None)
    if None not in counts:
        assert counts[0] <= counts[1]
    if counts[1] is not None:
        assert counts[0] is not None  # a window that resolves everything has no refused sub-window


def arrangement_regions(lines, half):
    """Regions of the lines a u + b v + c = 0 (Fractions) in the open box (-half, half)^2, exactly: each
    line adds 1 + the distinct points where it crosses earlier lines inside the box."""
    corners = [(sx * half, sy * half) for sx in (-1, 1) for sy in (-1, 1)]
    kept, seen = [], set()
    for a, b, c in lines:
        if a == 0 and b == 0:
            continue
        lead = a if a != 0 else b
        key = (a / lead, b / lead, c / lead)
        values = [a * u + b * v + c for u, v in corners]
        if key in seen or not (max(values) > 0 and min(values) < 0):
            continue
        seen.add(key)
        kept.append((a, b, c))
    count = 1
    for i, (a, b, c) in enumerate(kept):
        points = set()
        for a2, b2, c2 in kept[:i]:
            det = a * b2 - a2 * b
            if det == 0:
                continue
            u, v = (b * c2 - b2 * c) / det, (a2 * c - a * c2) / det
            if -half < u < half and -half < v < half:
                points.add((u, v))
        count += 1 + len(points)
    return count


def smallest_detail(lines, half, tol=1e-10):
    """The smallest detail the boundary tolerance may merge, relative to the box's diagonal (None if
    none is within tol x diagonal): two lines (or a line and a side of the box) crossing that close to
    a third one without lying on it, or two distinct lines staying that close all along one's chord."""
    band2 = Fraction(tol) ** 2 * 8 * half**2
    found = []
    lines = [ln for ln in lines if ln[0] != 0 or ln[1] != 0]
    sides = [(Fraction(1), Fraction(0), -half), (Fraction(1), Fraction(0), half), (Fraction(0), Fraction(1), -half),
             (Fraction(0), Fraction(1), half)]
    every = lines + sides
    for i, (a, b, c) in enumerate(every):
        for a2, b2, c2 in every[:i]:
            det = a * b2 - a2 * b
            if det == 0:
                continue
            u, v = (b * c2 - b2 * c) / det, (a2 * c - a * c2) / det
            if max(abs(u), abs(v)) > half * (1 + Fraction(1, 10**6)):
                continue
            for a3, b3, c3 in every:
                z = a3 * u + b3 * v + c3
                if z != 0 and z * z <= band2 * (a3 * a3 + b3 * b3):
                    found.append(z * z / (a3 * a3 + b3 * b3))
    for a, b, c in lines:  # the chord of each line in the box, and every other line's distance at its ends
        ends = []
        for a2, b2, c2 in sides:
            det = a * b2 - a2 * b
            if det != 0:
                u, v = (b * c2 - b2 * c) / det, (a2 * c - a * c2) / det
                if abs(u) <= half and abs(v) <= half:
                    ends.append((u, v))
        for a3, b3, c3 in lines:
            zs = [a3 * u + b3 * v + c3 for u, v in ends]
            if ends and any(z != 0 for z in zs) and all(z * z <= band2 * (a3 * a3 + b3 * b3) for z in zs):
                found.append(max(z * z for z in zs) / (a3 * a3 + b3 * b3))
    return math.sqrt(min(found) / (8 * half**2)) if found else None


@SETTINGS
@given(data=st.data(), n=st.integers(2, 6), size=st.integers(-300, 300))
def test_one_hidden_layer_matches_an_exact_rational_count(data, n, size):
    """Rows (w, b) with exponents anywhere in +-300 (each line's own scale), some through the centre
    (concurrent), on squares from 1e-300 to 1e300: the count equals the arrangement's, computed in
    Fractions from the same float64 numbers, unless a detail is within the boundary tolerance; such a
    detail is refused, except below ~1e-12 of the diagonal (round-off of float64 geometry: lines that
    close are one line, as duplicated units are), where merging it (a smaller count) is allowed too."""
    half = 10.0**size
    rows = []
    for _ in range(n):
        w = data.draw(st.tuples(*[st.floats(-1, 1, allow_subnormal=False)] * 2))
        offset = data.draw(st.sampled_from([0.0, 0.3, -0.7, 0.05]))
        scale = 10.0 ** data.draw(st.integers(-300, 300))
        rows.append((w[0] * scale, w[1] * scale, offset * half * scale))
    W = np.array([r[:2] for r in rows])
    b = np.array([r[2] for r in rows])
    if not (np.isfinite(W).all() and np.isfinite(b).all()):
        return
    net = chain([(W, b), (np.ones((1, n)), np.zeros(1))])
    lines = [(Fraction(a), Fraction(bb), Fraction(c)) for (a, bb), c in zip(W.tolist(), b.tolist(), strict=True)]
    exact = arrangement_regions(lines, Fraction(half))
    detail = smallest_detail(lines, Fraction(half))
    try:
        got = partition(net, Plane.square(half)).num_regions
    except PrecisionError as err:
        if "exceed float64's range" in str(err):  # the output maps themselves would overflow
            with np.errstate(over="ignore"):
                assert np.sum(np.abs(W).sum(axis=1) * half + np.abs(b)) > 1e300
        else:
            assert detail is not None
        return
    if detail is None:
        assert got == exact
    else:
        assert detail <= 1e-12 and got <= exact


def one_hidden(W, b=None):
    W = np.array(W, dtype=np.float64)
    return chain([(W, np.zeros(len(W)) if b is None else np.array(b, float)), (np.ones((1, len(W))), np.zeros(1))])


def test_the_issue_examples_are_exact():
    # three lines through the centre, one with w = (1e200, -1): six regions (was 4)
    assert partition(one_hidden([[1e200, -1], [2, .5], [.3, .7]])).num_regions == 6
    # one unit's whole (w, b) times 1e300: the same line, the same seven regions (was 4)
    W, b = [[1, -1], [2, .5], [.3, .7]], [0.1, .3, -.2]
    plain = partition(one_hidden(W, b)).num_regions
    big = partition(one_hidden([[1e300, -1e300], [2, .5], [.3, .7]], [0.1e300, .3, -.2])).num_regions
    assert plain == big == 7


def test_a_window_too_wide_for_the_tolerance_is_refused_in_one_line():
    net = mlp([2, 16, 16, 2], seed=0)
    counts = [partition(net, Plane.square(s)).num_regions for s in (1e3, 1e5)]
    assert counts == [572, 572]  # the same regions (all within ~1e3 of the centre)
    for s in (1e7, 1e10, 1e20, 1e300):  # used to say 571, 109, 62, 62
        with pytest.raises(PrecisionError, match=r"^partition: lines of the first layer cross .* within the "
                                                 r"boundary tolerance .* diagonal is under [0-9.e+]+ or a smaller "
                                                 r"tolerance$"):
            partition(net, Plane.square(s))
    assert partition(net, Plane.square(1e10), tolerance=1e-14).num_regions == 572  # as the message says


def test_outputs_beyond_float64_are_refused_with_one_error_and_no_warning():
    """Maps that overflow once in units of the plane's size: a PrecisionError naming the layer, not a
    RuntimeWarning from the rescaling first (warnings are errors here)."""
    net = chain([(np.array([[1e300, 0.0], [0.0, 1.0]]), np.zeros(2)), (np.array([[1e300, 1.0]]), np.zeros(1))])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(PrecisionError, match="layer 1's outputs exceed float64's range"):
            partition(net, Plane.square(1.0))
