"""Convex windows (issue 29, item 5): partitions of ``Plane.polygon`` and ``Plane.disc`` windows, against the
exact rational reference clipped to the same polygon (regions_exact), grid sampling of the net's own
activation pattern, and the disc's closed-form polygon area."""

import math
from fractions import Fraction as Fr

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from regions_exact import exact_net, exact_regions, min_clearance
from test_regions_degenerate import degenerate_nets
from test_regions_max import _build, three_inputs

from netatlas import Plane
from netatlas.nets import from_torch, mlp
from netatlas.regions import partition, stream_partition

EPS = float(np.finfo(np.float64).eps)
METHODS = ["chain", "graph"]


def _floats(arrays):
    return [np.array(a, dtype=object).astype(float) for a in arrays]


def _exact_area(poly):
    k = len(poly)
    return sum(poly[i][0] * poly[(i + 1) % k][1] - poly[(i + 1) % k][0] * poly[i][1] for i in range(k)) / 2


def assert_window_matches_exact(Ws, bs, window, method, tiles=1):
    """Same regions as the exact reference on the polygon ``window`` (Fractions, counter-clockwise): count,
    patterns, areas and output maps (to 1e-9 of their scale: the float net and window hold the rationals
    rounded to float64), and the areas sum to the polygon's (to the round-off of the shoelace sums);
    ``tiles`` > 1: computed as tiles x tiles tiles of the window's box and merged."""
    exact = exact_regions(Ws, bs, None, window=window)
    net = exact_net(_floats(Ws), _floats(bs))
    part = partition(net, Plane.polygon(np.array(window, dtype=object).astype(float)), method=method, tiles=tiles)
    mine = {row.tobytes(): i for i, row in enumerate(part.patterns.astype(np.uint8))}
    theirs = {bytes(r.pattern): r for r in exact}
    assert part.num_regions == len(exact)
    assert mine.keys() == theirs.keys()
    total = float(_exact_area(window))
    assert sum(r.area for r in exact) == _exact_area(window)  # the reference tiles the polygon exactly
    assert abs(part.areas.sum() - total) <= len(part.xy) * 8 * EPS * part.diameter**2
    scale = 1.0 + max(float(abs(x)) for r in exact for x in [*np.ravel(r.linear), *r.offset])
    for key, r in theirs.items():
        i = mine[key]
        assert abs(part.areas[i] - float(r.area)) <= 1e-9 * total
        np.testing.assert_allclose(part.output_linear[i], np.array(r.linear, float), rtol=0, atol=1e-9 * scale)
        np.testing.assert_allclose(part.output_offset[i], np.array(r.offset, float), rtol=0, atol=1e-9 * scale)
    return part


GENERIC = ([[[1, 2], [-1, 1], [2, -1]], [[1, -1, 1], [0, 1, 1], [1, 1, -1]], [[1, 1, 1]]],
           [[0, Fr(1, 3), Fr(-1, 2)], [Fr(1, 5), 0, -1], [0]])
WINDOWS = {
    "triangle": [(Fr(-1), Fr(-1)), (Fr(3, 2), Fr(-1, 2)), (Fr(0), Fr(1))],
    "pentagon": [(Fr(0), Fr(-1)), (Fr(1), Fr(-1, 3)), (Fr(4, 5), Fr(1)), (Fr(-1, 2), Fr(6, 5)), (Fr(-1), Fr(0))],
    # a side through the origin, where the three first-layer lines of GENERIC meet at no vertex but cross
    "through-lines": [(Fr(0), Fr(0)), (Fr(1), Fr(-1)), (Fr(1), Fr(1)), (Fr(-1, 3), Fr(1))],
}


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("name", sorted(WINDOWS))
def test_polygon_windows_match_the_exact_reference(name, method):
    Ws, bs = GENERIC
    part = assert_window_matches_exact(Ws, bs, WINDOWS[name], method)
    assert part.num_regions > 3
    assert part.plane.outline.shape == (len(WINDOWS[name]), 2)


def _hull(points):
    """Exact convex hull (counter-clockwise) of rational points; Andrew's monotone chain."""
    pts = sorted(set(points))

    def chain(seq):
        out = []
        for p in seq:
            while len(out) >= 2 and ((out[-1][0] - out[-2][0]) * (p[1] - out[-2][1])
                                     - (out[-1][1] - out[-2][1]) * (p[0] - out[-2][0])) <= 0:
                out.pop()
            out.append(p)
        return out

    return chain(pts)[:-1] + chain(pts[::-1])[:-1]


COORD = st.builds(Fr, st.integers(-10, 10), st.sampled_from([5, 10]))


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("tiles", [2, 3])
@pytest.mark.parametrize("name", sorted(WINDOWS))
def test_tiled_polygon_windows_match_the_exact_reference(name, tiles, method):
    Ws, bs = GENERIC
    part = assert_window_matches_exact(Ws, bs, WINDOWS[name], method, tiles=tiles)
    assert part.method == f"tiled-{tiles}x{tiles}"


@pytest.mark.parametrize("method", METHODS)
@settings(max_examples=30, deadline=None)
@given(net=degenerate_nets(), points=st.lists(st.tuples(COORD, COORD), min_size=3, max_size=8),
       tiles=st.sampled_from([1, 2, 3]))
def test_property_any_convex_window_matches_the_exact_reference(net, points, tiles, method):
    Ws, bs, _ = net
    window = _hull(points)
    assume(len(window) >= 3)
    lo = (min(u for u, _ in window), min(v for _, v in window))
    hi = (max(u for u, _ in window), max(v for _, v in window))
    assume(min(hi[0] - lo[0], hi[1] - lo[1]) >= Fr(1, 2))
    assume(min_clearance(Ws, bs, (lo[0], hi[0], lo[1], hi[1])) > 1e-6)  # resolvable in float64 (on the box)
    assert_window_matches_exact(Ws, bs, window, method, tiles=tiles)


def test_disc_is_its_inscribed_polygon_exactly():
    net = from_torch(mlp([2, 16, 16, 3], seed=0))
    n, r, c = 64, 0.8, np.array([0.1, -0.2])
    disc = Plane.disc(c, r, n_sides=n)
    part = partition(net, disc)
    polygon_area = n / 2 * r**2 * math.sin(2 * math.pi / n)  # the closed form of the inscribed polygon
    assert abs(disc.area - polygon_area) <= 64 * n * EPS * r**2
    assert abs(part.areas.sum() - polygon_area) <= 8 * len(part.xy) * EPS * part.diameter**2
    # between the polygon and the circle: outside the window; just inside a side: inside
    mid = np.pi / n + 2 * np.pi * np.arange(n) / n
    direction = np.stack([np.cos(mid), np.sin(mid)], 1)
    apothem = r * math.cos(math.pi / n)
    assert (part.locate(c + (apothem + r) / 2 * direction) == -1).all()
    assert (part.locate(c + 0.999 * apothem * direction) >= 0).all()
    # same regions as the same polygon given by its corners
    same = partition(net, Plane.polygon(disc.outline))
    assert np.array_equal(np.sort(part.areas), np.sort(same.areas)) and part.num_regions == same.num_regions


def _forward_bits(net, x):
    z = np.concatenate([t.numpy() for t in net.pre_activations(x)], axis=1)
    return z > 0, np.abs(z).min(axis=1)


@pytest.mark.parametrize("shape", ["disc", "polygon"])
def test_grid_points_get_the_nets_own_pattern(shape):
    """Every grid point well inside the window lies in a region whose pattern is the net's at the point;
    every point well outside lies in none."""
    net = from_torch(mlp([2, 12, 12, 2], seed=3))
    plane = (Plane.disc((0.2, 0.1), 1.1, n_sides=40) if shape == "disc"
             else Plane.polygon([[-1, -0.5], [0.5, -1.2], [1.3, 0.4], [0.2, 1.1], [-0.9, 0.8]]))
    part = partition(net, plane)
    us, vs = plane.grid(120)
    uv = np.stack([us.ravel(), vs.ravel()], 1)
    corners = plane.outline
    edges = np.roll(corners, -1, axis=0) - corners
    # signed distance to each side (positive inside a counter-clockwise polygon)
    side = ((uv[:, None] - corners[None]) * np.stack([-edges[:, 1], edges[:, 0]], 1)[None]).sum(-1)
    side /= np.hypot(edges[:, 0], edges[:, 1])[None]
    inside, outside = side.min(1) > 1e-6, side.min(1) < -1e-6
    region = part.locate(uv)
    assert (region[outside] == -1).all() and outside.sum() > 100
    bits, clearance = _forward_bits(net, plane.to_input(uv))
    clear = inside & (clearance > 1e-7)
    assert clear.sum() > 0.9 * inside.sum()
    assert (region[clear] >= 0).all()
    assert np.array_equal(part.patterns[region[clear]], bits[clear])
    # and every region holds a grid point, or is small
    hit = np.zeros(part.num_regions, bool)
    hit[region[inside]] = True
    cell = (plane.bounds[1] - plane.bounds[0]) / 120 * (plane.bounds[3] - plane.bounds[2]) / 120
    assert (part.areas[~hit] < 4 * cell * 120).all()


def test_windows_on_a_plane_through_three_images():
    """Any slice: a disc and a triangle in the coordinates of a plane through three images, on the graph path
    (a max-pool CNN); the triangle of the three inputs has area sqrt(3)/4 and holds them."""
    net = _build(1, "maxpool2")
    plane = Plane.through(*[0.35 * a for a in three_inputs((1, 5, 5), 1)])
    tri = Plane.polygon(plane.anchors, plane=plane)
    assert tri.anchors is plane.anchors and abs(tri.area - math.sqrt(3) / 4) <= 16 * EPS
    disc = Plane.disc((0.0, 0.0), 0.6, plane=plane)
    square = partition(net, plane)
    for window in (tri, disc):
        part = partition(net, window)
        assert part.method == "graph"
        assert abs(part.areas.sum() - window.area) <= 8 * len(part.xy) * EPS * part.diameter**2
        # each region of the window lies in one region of the square partition with the same state
        at = square.locate(part.centroids())
        assert np.array_equal(square.patterns[at], part.patterns)
        assert np.array_equal(square.argmax[at], part.argmax)
    centre = partition(net, tri).locate(tri.anchors.mean(0, keepdims=True))
    assert centre[0] >= 0


@pytest.mark.parametrize("shape", ["disc", "polygon"])
@pytest.mark.parametrize("tiles", [2, 3, 5])
def test_tiled_windows_equal_untiled(shape, tiles):
    """Tiles of a disc or polygon window's box, merged: the untiled regions (patterns, areas, maps), and each
    region's window sides keep their labels (a tile's clipped sides map back to the window's or are seams)."""
    net = from_torch(mlp([2, 12, 12, 2], seed=3))
    window = (Plane.disc((0.1, -0.2), 1.3, n_sides=64) if shape == "disc"
              else Plane.polygon([[-1, -1], [1.5, -0.5], [1.2, 1.0], [-0.8, 1.4]]))
    a, b = partition(net, window), partition(net, window, tiles=tiles)
    key_a = {row.tobytes(): i for i, row in enumerate(np.packbits(a.patterns, axis=1))}
    key_b = {row.tobytes(): i for i, row in enumerate(np.packbits(b.patterns, axis=1))}
    assert a.num_regions == b.num_regions and key_a.keys() == key_b.keys()
    ia = np.array(list(key_a.values()))
    ib = np.array([key_b[k] for k in key_a])
    n_vertices = len(a.xy) + len(b.xy)
    assert np.abs(a.areas[ia] - b.areas[ib]).max() <= n_vertices * 8 * EPS * a.diameter**2
    scale = np.abs(a.maps).max()
    assert np.abs(a.maps[ia] - b.maps[ib]).max() <= 1e-12 * scale * 10

    def sides(part, i):
        labels = part.labels[part.offsets[i]:part.offsets[i + 1]]
        return sorted(set(labels[labels < 0].tolist()))

    assert all(sides(a, i) == sides(b, j) for i, j in zip(ia, ib, strict=True))
    assert b.labels.min() >= -len(window.outline)  # no seam label left


def test_streamed_windows_count_like_the_untiled_partition(tmp_path):
    net = from_torch(mlp([2, 12, 12, 2], seed=4))
    window = Plane.disc((0.0, 0.0), 1.0, n_sides=32)
    summary = stream_partition(net, window, 3, tmp_path, tolerance=1e-10, picture=30)
    assert summary["num_regions"] == partition(net, window).num_regions
    assert abs(summary["area"] - window.area) <= 1e-12 * window.area * summary["num_regions"]
    us, vs = Plane.square(1.0).grid(30)
    inside = np.hypot(us, vs) < np.cos(np.pi / 32) - 0.05  # well inside the 32-gon: a region's colour
    outside = np.hypot(us, vs) > 1.05  # outside the circle: no region
    assert np.all(summary["picture"][inside] != 0) and np.all(summary["picture"][outside] == 0)


def test_rectangles_are_unchanged():
    """The rectangle of ``bounds`` and the same rectangle as a polygon: same regions (the polygon's sides are
    the same four lines), so the window code changes nothing for rectangles."""
    net = from_torch(mlp([2, 10, 10, 1], seed=2))
    box = partition(net, Plane.window((-1.0, 0.5, -0.25, 1.0)))
    poly = partition(net, Plane.polygon([[-1.0, -0.25], [0.5, -0.25], [0.5, 1.0], [-1.0, 1.0]]))
    assert box.plane.outline is None and "outline" not in box.plane.to_dict()
    assert np.array_equal(box.xy, poly.xy) and np.array_equal(box.labels, poly.labels)
    assert np.array_equal(box.maps, poly.maps)
