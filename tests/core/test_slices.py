"""Planes and lines: mapping both ways, grids, the paper's through-three-points convention."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import netatlas
from netatlas import Line, Plane


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000), st.integers(2, 6))
def test_plane_round_trip(seed, dim):
    g = np.random.default_rng(seed)
    plane = Plane(g.normal(size=dim), g.normal(size=dim), g.normal(size=dim))
    uv = g.uniform(-1, 1, size=(9, 2))
    assert np.allclose(plane.to_plane(plane.to_input(uv)), uv, atol=1e-9)


def test_through_images_puts_anchors_at_the_paper_coordinates():
    g = np.random.default_rng(0)
    a, b, c = g.normal(size=(3, 1, 4, 4))
    plane = Plane.through(a, b, c)
    images = plane.to_input(plane.anchors)
    assert images.shape == (3, 1, 4, 4)
    assert np.allclose(images, [a, b, c])
    assert plane.bounds == (-1.0, 1.0, -1.0, 1.0)
    wide = Plane.through(a, b, c, margin=0.5)
    assert wide.bounds[0] == pytest.approx(-1.0) and wide.bounds[1] == pytest.approx(1.0)


def test_square_grid_and_corners():
    plane = Plane.square(2.0, dim=3)
    us, vs = plane.grid((4, 3))
    assert us.shape == (3, 4) and us.min() > -2 and us.max() < 2
    assert plane.area == 16.0
    x = plane.to_input(plane.corners())
    assert np.allclose(x[:, 2], 0) and np.allclose(np.abs(x[:, :2]), 2)


def test_degenerate_planes_and_lines_are_refused():
    with pytest.raises(netatlas.DegenerateSliceError, match="zero or parallel"):
        Plane.through([0, 0], [1, 1], [2, 2])
    with pytest.raises(netatlas.DegenerateSliceError, match="x0 and x1 are equal"):
        Line([1, 2], [1, 2])
    with pytest.raises(ValueError, match="bounds must be"):
        Plane([0, 0], [1, 0], [0, 1], bounds=(1, -1, 0, 1))
    with pytest.raises(ValueError, match="NaN"):
        Plane([0, np.nan], [1, 0], [0, 1])


def test_line_maps_both_ways():
    g = np.random.default_rng(1)
    x0, x1 = g.normal(size=(2, 1, 3, 3))
    line = Line(x0, x1)
    t = np.array([0.0, 0.25, 1.0])
    assert np.allclose(line.to_line(line.to_input(t)), t)
    assert line.grid(5).tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]


def test_window_plane_coordinates_are_the_first_two_inputs():
    g = np.random.default_rng(3)
    for dim in (2, 5):
        plane = Plane.window((-2.0, 1.0, 0.5, 3.0), dim=dim)
        assert plane.bounds == (-2.0, 1.0, 0.5, 3.0) and plane.input_shape == (dim,)
        uv = g.uniform(-2, 3, size=(7, 2))
        x = plane.to_input(uv)
        np.testing.assert_array_equal(x[:, :2], uv)
        np.testing.assert_array_equal(x[:, 2:], 0.0)
        np.testing.assert_array_equal(plane.to_plane(x), uv)
    with pytest.raises(ValueError, match="umin < umax"):
        Plane.window((1.0, 0.0, 0.0, 1.0))


# -- Plane.zoom and Plane.around_boundary: the Python of the CLI's --zoom / --around ---------------------------

def test_zoom_shrinks_the_window_around_anchors_or_a_point():
    rng = np.random.default_rng(0)
    plane = Plane.through(*rng.standard_normal((3, 5)))
    for around, centre in (("A", plane.anchors[0]), ("bc", plane.anchors[1:].mean(0)),
                           ("ABC", plane.anchors.mean(0)), ((0.1, -0.2), np.array([0.1, -0.2]))):
        zoomed = plane.zoom(0.2, around=around)
        umin, umax, vmin, vmax = zoomed.bounds
        np.testing.assert_allclose([(umin + umax) / 2, (vmin + vmax) / 2], centre, rtol=0, atol=1e-15)
        assert zoomed.area == pytest.approx(0.04 * plane.area, rel=1e-12)
        assert np.array_equal(zoomed.origin, plane.origin) and np.array_equal(zoomed.anchors, plane.anchors)
    assert plane.zoom(1.0).area == pytest.approx(plane.area, rel=1e-12)


@pytest.mark.parametrize("kwargs, message", [
    (dict(fraction=0), "fraction must be in"), (dict(fraction=1.5), "fraction must be in"),
    (dict(fraction=0.5, around="AD"), "letters of ABC"), (dict(fraction=0.5, around=(1, 2, 3)), "two plane"),
])
def test_zoom_refuses_bad_values(kwargs, message):
    plane = Plane.through([0.0, 0.0], [1.0, 0.0], [0.0, 1.0])
    with pytest.raises(ValueError, match=message):
        plane.zoom(**kwargs)


def test_zoom_around_letters_needs_anchors():
    with pytest.raises(ValueError, match="needs a plane through three inputs"):
        Plane.square(1.0).zoom(0.5, around="A")


def test_around_boundary_is_on_the_decision_boundary_between_a_and_b():
    import netatlas

    rng = np.random.default_rng(3)
    found = 0
    for seed in range(30):
        net = netatlas.nets.from_torch(netatlas.nets.mlp([4, 8, 8, 3], seed=seed))
        plane = Plane.through(*rng.standard_normal((3, 4)) * 3)
        a, b = plane.to_input(plane.anchors[:2])
        ends = net(np.stack([a, b])).argmax(1)
        if ends[0] == ends[1]:
            continue
        uv = plane.around_boundary(net, "A", "B")
        # on the segment from A to B ...
        t = (uv - plane.anchors[0]) @ (plane.anchors[1] - plane.anchors[0]) / np.sum(
            (plane.anchors[1] - plane.anchors[0]) ** 2)
        np.testing.assert_allclose(uv, (1 - t) * plane.anchors[0] + t * plane.anchors[1], atol=1e-12)
        # ... where the two largest outputs tie (float64 round-off of the outputs' size)
        y = np.asarray(net(plane.to_input([uv])))[0]
        top = np.sort(y)[-2:]
        assert abs(top[1] - top[0]) <= 1e-9 * (1 + np.abs(y).max())
        # and before it, the class is still A's
        before = plane.to_input([plane.anchors[0] + 0.999 * t * (plane.anchors[1] - plane.anchors[0])])
        assert np.asarray(net(before)).argmax(1)[0] == ends[0]
        found += 1
    assert found >= 3


def test_around_boundary_says_when_there_is_no_change():
    import netatlas

    net = netatlas.nets.from_torch(netatlas.nets.mlp([2, 1], seed=0))  # one affine output w.x + c
    w, c = net.nodes[1].op.weight[0].numpy(), float(net.nodes[1].op.bias[0])
    s = 10 * (1 + abs(c)) / (w @ w)  # the output is > 0 at s w and at 2 s w (class 1 at both)
    plane = Plane.through(s * w, 2 * s * w, s * (w + np.array([w[1], -w[0]])))
    with pytest.raises(ValueError, match="does not change from A to B"):
        plane.around_boundary(net, "A", "B")
    with pytest.raises(ValueError, match="anchor letters"):
        plane.around_boundary(net, "A", "D")
    with pytest.raises(ValueError, match="needs a plane through three inputs"):
        Plane.square(1.0).around_boundary(net)


# -- convex windows (issue 29, item 5) ---------------------------------------------------------------
def test_polygon_window_is_stored_counter_clockwise_without_repeats_or_collinear_corners():
    # clockwise, a repeated corner and a point in the middle of a side
    p = Plane.polygon([[0, 0], [0, 2], [0, 2], [3, 2], [3, 1], [3, 0]])
    assert p.outline.tolist() == [[3.0, 0.0], [3.0, 2.0], [0.0, 2.0], [0.0, 0.0]]
    assert p.bounds == (0.0, 3.0, 0.0, 2.0) and p.area == 6.0
    assert np.array_equal(p.window_vertices(), p.outline)
    assert Plane.square(1.0).window_vertices().tolist() == Plane.square(1.0).corners().tolist()
    assert p.to_dict()["outline"] == p.outline.tolist() and "outline" not in Plane.square(1.0).to_dict()


def test_two_corners_a_round_off_apart_keep_the_corner():
    """Both look flat (each turn is ~1e-15 of the size squared); dropping one leaves a true corner, so the
    square keeps its area (dropping both would cut the corner off: area 0.5)."""
    p = Plane.polygon([[0, 0], [1, 0], [1, 1], [1 + 1e-15, 1], [0, 1]])
    assert len(p.outline) == 4 and abs(p.area - 1.0) <= 1e-14


@pytest.mark.parametrize("vertices, match", [
    ([[0, 0], [2, 0], [1, 0.5], [1, 2]], "not convex"),  # a dent
    ([[np.cos(a), np.sin(a)] for a in 4 * np.pi * np.arange(5) / 5], "not convex"),  # a pentagram: left turns only
    ([[0, 0], [1, 1], [2, 2]], "span no area"),
    ([[0, 0], [1, 0]], "span no area"),
    ([0, 1, 2], r"must have shape \(k, 2\)"),
    ([[0, 0], [1, np.nan], [0, 1]], r"entry \(1, 1\) is nan"),
])
def test_polygon_window_refuses_what_is_not_a_convex_polygon(vertices, match):
    with pytest.raises(ValueError, match=match):
        Plane.polygon(vertices)


def test_disc_window_is_the_inscribed_regular_polygon():
    d = Plane.disc((1.0, -2.0), 0.5, n_sides=7)
    assert d.circle == (1.0, -2.0, 0.5)
    np.testing.assert_allclose(np.hypot(*(d.outline - [1.0, -2.0]).T), 0.5, rtol=4 * np.finfo(float).eps)
    assert d.area == pytest.approx(7 / 2 * 0.25 * np.sin(2 * np.pi / 7), rel=1e-14)
    big = Plane.disc((0, 0), 1.0)
    assert 0 < np.pi - big.area <= np.pi * (2 * np.pi / 512) ** 2 / 6  # the documented gap to pi r^2
    for bad, match in [({"radius": 0.0}, "radius must be a finite number > 0"),
                       ({"n_sides": 2}, r"n_sides must be an integer in \[3, 10000\]"),
                       ({"center": (0, 0, 0)}, "center must be two plane coordinates")]:
        with pytest.raises(ValueError, match=match):
            Plane.disc(**{"center": (0, 0), "radius": 1.0, **bad})


def test_windows_on_any_plane_and_their_zoom():
    p = Plane.through(np.zeros((2, 2)), np.eye(2), np.ones((2, 2)))
    tri = Plane.polygon(p.anchors, plane=p)
    assert tri.anchors is p.anchors and np.array_equal(tri.d1, p.d1) and np.array_equal(tri.origin, p.origin)
    assert tri.area == pytest.approx(np.sqrt(3) / 4, rel=1e-14)
    corners = tri.to_input(tri.outline)  # the three inputs themselves, in some order
    assert sorted(map(tuple, corners.reshape(3, -1).round(12).tolist())) == [(0, 0, 0, 0), (1, 0, 0, 1), (1, 1, 1, 1)]
    assert Plane.disc((0, 0), 1.0, dim=5).input_shape == (5,)
    with pytest.raises(TypeError, match="plane must be a netatlas.Plane"):
        Plane.disc((0, 0), 1.0, plane="square")
    z = Plane.disc((0.5, 0.0), 2.0, n_sides=16).zoom(0.25, around=(1.0, 1.0))
    assert z.circle == pytest.approx((1.0, 1.0, 0.5)) and z.area == pytest.approx(
        Plane.disc((0, 0), 2.0, n_sides=16).area / 16, rel=1e-12)
