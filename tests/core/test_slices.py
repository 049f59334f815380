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
