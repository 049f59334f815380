"""Exact degeneracy (issue 14, item 2): units that vanish on a whole face do not split it and are
recorded as inactive. Both partition methods are compared with the exact rational reference
(regions_exact.py) on small nets with integer and rational weights, duplicated, negated, scaled and
zero rows, and units whose inputs are all dead on a face."""

from fractions import Fraction as Fr

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from regions_exact import exact_net, exact_regions, min_clearance

from netatlas import Plane
from netatlas.nets import from_torch, mlp
from netatlas.regions import partition
from netatlas.regions._roundoff import EPS, roundings, snap_vanishing, vanishing_tolerance

METHODS = ["chain", "graph"]


def _plane(bounds, plane=None):
    origin, d1, d2 = (np.array(a, dtype=object).astype(float) for a in (plane or ((0, 0), (1, 0), (0, 1))))
    return Plane(origin, d1, d2, tuple(float(b) for b in bounds))


def _floats(arrays):
    return [np.array(a, dtype=object).astype(float) for a in arrays]


def assert_matches_exact(Ws, bs, bounds, negative_slope=Fr(0), method="chain", plane=None, tiles=1):
    """Same regions as the exact reference: count, patterns, areas and output maps (the float net
    and plane hold the rationals rounded to float64, so areas and maps agree to 1e-9 of their scale);
    ``tiles`` > 1: computed tile by tile and merged."""
    exact = exact_regions(Ws, bs, bounds, negative_slope, plane)
    net = exact_net(_floats(Ws), _floats(bs), float(negative_slope))
    part = partition(net, _plane(bounds, plane), method=method, tiles=tiles)
    mine = {row.tobytes(): i for i, row in enumerate(part.patterns.astype(np.uint8))}
    theirs = {bytes(r.pattern): r for r in exact}
    assert part.num_regions == len(exact), (method, part.num_regions, len(exact))
    assert mine.keys() == theirs.keys(), method
    total = float((bounds[1] - bounds[0]) * (bounds[3] - bounds[2]))
    scale = 1.0 + max(float(abs(x)) for r in exact for x in [*np.ravel(r.linear), *r.offset])
    for key, r in theirs.items():
        i = mine[key]
        assert abs(part.areas[i] - float(r.area)) <= 1e-9 * total
        np.testing.assert_allclose(part.output_linear[i], np.array(r.linear, float), rtol=0, atol=1e-9 * scale)
        np.testing.assert_allclose(part.output_offset[i], np.array(r.offset, float), rtol=0, atol=1e-9 * scale)


# -- the exact reference itself -----------------------------------------------------------------
def _exact_forward_pattern(Ws, bs, point, negative_slope):
    h = [Fr(point[0]), Fr(point[1])]
    bits = []
    for W, b in zip(Ws[:-1], bs[:-1], strict=True):
        z = [sum((Fr(w) * x for w, x in zip(row, h, strict=True)), Fr(0)) + Fr(bias) for row, bias in zip(W, b,
                                                                                                       strict=True)]
        bits += [1 if v > 0 else 0 for v in z]
        h = [v if v > 0 else Fr(negative_slope) * v for v in z]
    return tuple(bits)


def test_exact_reference_is_a_partition_with_forward_patterns():
    Ws = [[[1, 2], [-1, 1], [2, -1]], [[1, -1, 1], [0, 1, 1], [1, 1, -1]], [[1, 1, 1]]]
    bs = [[0, Fr(1, 3), Fr(-1, 2)], [Fr(1, 5), 0, -1], [0]]
    bounds = (Fr(-1), Fr(1), Fr(-1, 2), Fr(3, 2))
    for alpha in (Fr(0), Fr(1, 4)):
        regions = exact_regions(Ws, bs, bounds, alpha)
        assert sum(r.area for r in regions) == 4  # exactly the rectangle
        assert all(r.area > 0 for r in regions)
        assert len({r.pattern for r in regions}) == len(regions)
        for r in regions:  # the exact forward pass at the vertex mean has the region's pattern
            centre = (sum(p[0] for p in r.polygon) / len(r.polygon), sum(p[1] for p in r.polygon) / len(r.polygon))
            assert _exact_forward_pattern(Ws, bs, centre, alpha) == r.pattern


def test_exact_reference_rule_for_units_vanishing_on_a_face():
    # unit 3 = relu(u) - relu(u): identically zero, never cuts, always inactive;
    # unit 4 = relu(-u) + 1 is constant 1 on u > 0 and cuts nothing
    Ws = [[[1, 0], [1, 0], [-1, 0]], [[1, -1, 0], [0, 0, 1]], [[1, 1]]]
    bs = [[0, 0, 0], [0, 1], [0]]
    regions = exact_regions(Ws, bs, (-1, 1, -1, 1))
    assert sorted((r.pattern, r.area) for r in regions) == [((0, 0, 1, 0, 1), 2), ((1, 1, 0, 0, 1), 2)]


# -- regressions found by search (small rational 2-2-4-4-1 nets) ----------------------------------
CASES = {
    # every layer-1 unit dead on a face: the layer-2 maps there are their biases exactly, but the
    # rank-few updates of the chain left 1e-17 residues that switched three zero units on
    "dead-inputs": (
        [[[-2, -2], [0, -1]], [[2, 0], [-1, 2], [-2, -1], [-2, -1]],
         [[0, 2, -1, 1], [2, -2, 1, 2], [-1, 2, 2, -2], [-2, 1, 0, -2]], [[2, -1, -2, 0]]],
        [[-1, 0], [-1, 0, 0, 0], [2, -1, 0, 1], [2]],
        (Fr(-7, 10), Fr(9, 10), Fr(-1, 10), Fr(3, 10))),
    # a layer-3 unit is -h1 + h3 + 2 h4 = 0 on a face where the layer-2 maps are constants whose
    # gradients carry round-off from non-dyadic layer-1 weights
    "cancelling-constants": (
        [[[Fr(3, 5), 3], [Fr(-2, 5), 0]], [[0, 0], [-3, 1], [-3, 0], [-3, 1]],
         [[-1, 0, Fr(-1, 2), 1], [1, 1, -3, -1], [Fr(-1, 3), 0, Fr(-1, 6), Fr(1, 3)], [-1, -1, 1, 2]],
         [[Fr(-2, 5), 2, Fr(1, 5), 1]]],
        [[Fr(-2, 5), 0], [3, 0, 1, 1], [0, 0, 0, 0], [Fr(-2, 3)]],
        (Fr(-1), Fr(1), Fr(-1), Fr(1))),
    # both methods gave 7 regions (exact: 6): a rational combination vanishing on a face split it
    "rational-combination": (
        [[[3, Fr(2, 5)], [Fr(-1, 2), Fr(-1, 5)]], [[1, 0], [0, Fr(-2, 5)], [Fr(2, 3), -1], [Fr(-2, 3), 1]],
         [[0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0], [Fr(-1, 9), Fr(-1, 2), Fr(1, 6), Fr(2, 15)]],
         [[Fr(2, 5), -1, Fr(3, 2), -2]]],
        [[0, 0], [0, 0, 0, 0], [Fr(-1, 3), 0, Fr(-1, 5), 0], [Fr(-1, 5)]],
        (Fr(-1, 5), Fr(4, 5), Fr(-1, 5), Fr(4, 5))),
}


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("case", list(CASES))
def test_2_2_4_4_1_regressions(case, method):
    Ws, bs, bounds = CASES[case]
    assert min_clearance(Ws, bs, bounds) > 1e-4  # every exact region is resolvable in float64
    assert_matches_exact(Ws, bs, bounds, method=method)


# -- property tests -------------------------------------------------------------------------------
SMALL = st.builds(Fr, st.integers(-3, 3), st.sampled_from([1, 1, 2, 3, 5]))


@st.composite
def degenerate_nets(draw):
    """Small rational MLPs whose rows are often copies, negations, rational multiples of earlier
    rows (with or without the matching bias), or zero, and whose biases are often zero."""
    widths = draw(st.sampled_from([[2, 2, 4, 4, 1], [2, 3, 3, 3, 2], [2, 4, 4, 1], [2, 2, 3, 2, 3, 1]]))
    Ws, bs = [], []
    for n_in, n_out in zip(widths[:-1], widths[1:], strict=True):
        rows, bias = [], []
        for _ in range(n_out):
            kind = draw(st.sampled_from(["new", "new", "copy", "zero"])) if rows else "new"
            if kind == "copy":
                k = draw(st.integers(0, len(rows) - 1))
                factor = draw(st.sampled_from([Fr(1), Fr(-1), Fr(1, 3), Fr(-2, 5), Fr(2)]))
                rows.append([factor * w for w in rows[k]])
                bias.append(factor * bias[k] if draw(st.booleans()) else draw(SMALL))
            else:
                rows.append([Fr(0)] * n_in if kind == "zero" else [draw(SMALL) for _ in range(n_in)])
                bias.append(draw(st.one_of(st.just(Fr(0)), SMALL)))
        Ws.append(rows)
        bs.append(bias)
    # mostly non-dyadic bounds: the maps' offsets then carry round-off
    half = draw(st.sampled_from([Fr(7, 10), Fr(1), Fr(1, 2), Fr(3, 2)]))
    cu, cv = draw(st.sampled_from([Fr(1, 10), Fr(-3, 10), Fr(1, 3), Fr(0)])), draw(st.sampled_from([Fr(1, 5), Fr(0)]))
    return Ws, bs, (cu - half, cu + half, cv - half, cv + half)


@st.composite
def rational_planes(draw):
    """None (the input space itself) or (origin, d1, d2) with non-dyadic rational directions, so
    that the maps' gradients carry round-off too."""
    if draw(st.booleans()):
        return None
    d1 = (Fr(draw(st.integers(1, 3)), 3), Fr(draw(st.integers(-2, 2)), 5))
    d2 = (Fr(draw(st.integers(-2, 2)), 7), Fr(draw(st.integers(1, 3)), 3))
    origin = (Fr(draw(st.integers(-3, 3)), 10), Fr(draw(st.integers(-3, 3)), 10))
    return origin, d1, d2


@pytest.mark.parametrize("method", METHODS)
@settings(max_examples=50, deadline=None)
@given(net=degenerate_nets(), plane=rational_planes())
def test_property_relu_nets_match_exact_reference(net, method, plane):
    Ws, bs, bounds = net
    assume(min_clearance(Ws, bs, bounds, 0, plane) > 1e-6)  # regions a float partition can resolve
    assert_matches_exact(Ws, bs, bounds, method=method, plane=plane)


@pytest.mark.parametrize("method", METHODS)
@settings(max_examples=30, deadline=None)
@given(net=degenerate_nets(), tiles=st.sampled_from([2, 3]))
def test_property_tiled_partitions_match_exact_reference(net, method, tiles):
    """Tiles merged along seams that the nets' lines cross, touch and run along (integer weights on a
    rational box): the exact regions still."""
    Ws, bs, bounds = net
    assume(min_clearance(Ws, bs, bounds, 0) > 1e-6)
    assert_matches_exact(Ws, bs, bounds, method=method, tiles=tiles)


@pytest.mark.parametrize("method", METHODS)
@settings(max_examples=25, deadline=None)
@given(net=degenerate_nets(), alpha=st.sampled_from([Fr(1, 4), Fr(1, 10)]))
def test_property_leaky_nets_match_exact_reference(net, method, alpha):
    Ws, bs, bounds = net
    assume(min_clearance(Ws, bs, bounds, alpha) > 1e-6)
    assert_matches_exact(Ws, bs, bounds, alpha, method=method)


# -- the round-off rule ---------------------------------------------------------------------------
@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(SMALL, SMALL.filter(bool)), min_size=1, max_size=40), st.randoms(use_true_random=False))
def test_vanishing_tolerance_bounds_the_roundoff_of_exact_zeros(pairs, rnd):
    # sum_j w_j m_j + b with rational w, m chosen so the exact sum is 0, computed in float64 from the
    # rounded rationals: the result is within K EPS S (K = n + 2: n products, the bias, rounded inputs)
    exact = sum((w * m for w, m in pairs), Fr(0))
    terms = [(float(w), float(m)) for w, m in pairs]
    rnd.shuffle(terms)
    b = float(-exact)
    value, magnitude = b, abs(b)
    for w, m in terms:
        value += w * m
        magnitude += abs(w * m)
    assert abs(value) <= vanishing_tolerance(magnitude, len(pairs) + 2)


def test_snap_vanishing_keeps_resolvable_small_maps():
    maps = np.array([[[1e-17, 1e-12, 0.0], [0.0, 0.0, 1e-3], [2e-17, 0.0, 0.0]]])  # (1, 3, 3)
    snapped = snap_vanishing(maps, np.ones((3, 3)), 10)
    assert snapped.tolist() == [[True, False, False]]
    assert maps[0, :, 0].tolist() == [0.0, 0.0, 0.0] and maps[0, 0, 1] == 1e-12
    assert vanishing_tolerance(1.0, 10) == 10 * EPS


def test_roundings_follow_the_graph():
    assert roundings(from_torch(mlp([3, 5, 4, 2], seed=0))) == [1, 5, 6, 12, 13, 18]


@pytest.mark.parametrize("method", METHODS)
def test_generic_nets_are_unchanged_by_the_rule(method, monkeypatch):
    # no unit of a generic net vanishes on a face: disabling the rule changes nothing, bit for bit
    from netatlas.regions import _chain, _graph

    net = from_torch(mlp([2, 16, 16, 16, 2], "leaky_relu", seed=3))
    with_rule = partition(net, method=method)
    monkeypatch.setattr(_chain, "CANDIDATE_RATIO", -1.0)
    monkeypatch.setattr(_graph, "CANDIDATE_RATIO", -1.0)
    without = partition(net, method=method)
    assert with_rule.num_regions == without.num_regions > 100
    np.testing.assert_array_equal(with_rule.xy, without.xy)
    np.testing.assert_array_equal(with_rule.patterns, without.patterns)


# -- locate -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_locate_refuses_non_finite_points(bad):
    part = partition(from_torch(mlp([2, 4, 1], seed=0)))
    with pytest.raises(ValueError, match=r"entry \(1, 0\) is -?(nan|inf)"):
        part.locate([[0.0, 0.0], [bad, 0.5], [0.1, 0.1]])
    with pytest.raises(ValueError, match=r"entry \(0, 1\) is -?(nan|inf)"):
        part.outputs([[0.0, bad]])


# -- along a segment ------------------------------------------------------------------------------
@settings(max_examples=40, deadline=None)
@given(net=degenerate_nets())
def test_property_along_line_patterns_are_exact(net):
    # along the rectangle's diagonal: every piece carries the exact pattern at its midpoint and
    # neighbouring pieces differ (no breakpoint invented by a unit that vanishes on a piece)
    from netatlas.regions import along_line

    Ws, bs, (umin, umax, vmin, vmax) = net
    assume(min_clearance(Ws, bs, (umin, umax, vmin, vmax)) > 1e-6)
    pieces = along_line(exact_net(_floats(Ws), _floats(bs)), [float(umin), float(vmin)], [float(umax), float(vmax)])
    assert (np.diff(pieces.edges) > 0).all()
    for i, pattern in enumerate(pieces.patterns.astype(int)):
        t = Fr((pieces.edges[i] + pieces.edges[i + 1]) / 2)
        point = (umin + t * (umax - umin), vmin + t * (vmax - vmin))
        assert tuple(pattern) == _exact_forward_pattern(Ws, bs, point, 0)
    assert (pieces.patterns[1:] != pieces.patterns[:-1]).any(axis=1).all()


def test_along_line_regression():
    # before the rule, a rational combination vanishing on a piece gave it the wrong pattern
    from netatlas.regions import along_line

    Ws, bs, _ = CASES["rational-combination"]
    p0, p1 = (Fr(4, 5), Fr(-1, 5)), (Fr(0), Fr(4, 5))
    pieces = along_line(exact_net(_floats(Ws), _floats(bs)), [float(x) for x in p0], [float(x) for x in p1])
    for i, pattern in enumerate(pieces.patterns.astype(int)):
        t = Fr((pieces.edges[i] + pieces.edges[i + 1]) / 2)
        point = (p0[0] + t * (p1[0] - p0[0]), p0[1] + t * (p1[1] - p0[1]))
        assert tuple(pattern) == _exact_forward_pattern(Ws, bs, point, 0)


def _as_conv_model(Ws, bs):
    """The MLP as a 1-D conv net on inputs of shape (1, 2): a kernel of length 2 over the two
    inputs, then 1x1 convolutions (the same affine maps, through the graph path's Conv ops)."""
    import torch
    from torch import nn

    layers = []
    for k, (W, b) in enumerate(zip(_floats(Ws), _floats(bs), strict=True)):
        if k == 0:
            conv = nn.Conv1d(1, W.shape[0], 2).double()
            weight = W[:, None, :]
        else:
            conv = nn.Conv1d(W.shape[1], W.shape[0], 1).double()
            weight = W[:, :, None]
        with torch.no_grad():
            conv.weight.copy_(torch.as_tensor(weight))
            conv.bias.copy_(torch.as_tensor(b))
        layers += [conv, nn.ReLU()] if k < len(Ws) - 1 else [conv, nn.Flatten()]
    return nn.Sequential(*layers)


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("method", ["graph", "auto"])  # auto: a conv chain unrolled to the chain path
def test_conv_graph_path_regressions(case, method):
    Ws, bs, bounds = CASES[case]
    exact = {bytes(r.pattern): r for r in exact_regions(Ws, bs, bounds)}
    plane = _plane(bounds)
    conv_plane = Plane(plane.origin.reshape(1, 2), plane.d1.reshape(1, 2), plane.d2.reshape(1, 2), plane.bounds)
    part = partition(_as_conv_model(Ws, bs), conv_plane, method=method)
    assert part.method == ("graph" if method == "graph" else "chain")
    mine = {row.tobytes(): a for row, a in zip(part.patterns.astype(np.uint8), part.areas, strict=True)}
    assert mine.keys() == exact.keys()
    for key, r in exact.items():
        assert abs(mine[key] - float(r.area)) <= 1e-9 * plane.area


@pytest.mark.parametrize("bias", [True, False])
def test_trained_saturated_nets(bias):
    # trained with a large step (many dead units; without biases a unit whose inputs are all dead is
    # exactly zero): both methods agree, areas tile the square, located patterns match the forward
    # signs wherever the forward value is not zero up to round-off
    import torch

    from netatlas.data import moons
    from netatlas.train import fit

    model = mlp([2, 12, 12, 12, 2], bias=bias, seed=5)
    fit(model, moons(200, seed=0), lr=0.05, epochs=60, progress=False)
    net = from_torch(model)
    plane = Plane.square(2.0)
    parts = [partition(net, plane, method=m) for m in METHODS]
    assert parts[0].num_regions == parts[1].num_regions
    assert {r.tobytes() for r in parts[0].patterns} == {r.tobytes() for r in parts[1].patterns}
    rng = np.random.default_rng(0)
    uv = rng.uniform(-2, 2, size=(2000, 2))
    x = torch.as_tensor(plane.to_input(uv))
    z = np.concatenate([t.numpy() for t in net.pre_activations(x)], axis=1)
    clear = np.abs(z) > 1e-9 * (1 + np.abs(z).max())
    for part in parts:
        assert abs(part.areas.sum() - plane.area) <= 1e-9 * plane.area
        located = part.patterns[part.locate(uv)]
        assert np.array_equal(located[clear], (z > 0)[clear])
