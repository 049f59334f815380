"""Exact 3-D complexes (issue 29): netatlas.Volume and partition(net, volume) against independent
references — the count of a generic plane arrangement in a box from rational arithmetic, dense
sampling of activation patterns and Monte Carlo volumes, the torch forward pass in float64 — and the
whole-complex invariants (Euler characteristic 1, volumes summing to the box, shared faces)."""

import itertools
import math
from fractions import Fraction as Fr

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from regions_exact import exact_net

import netatlas
from netatlas import DegenerateSliceError, Volume
from netatlas.nets import from_torch, mlp
from netatlas.regions import Complex3D, RegionLimitError, partition

CUBE = Volume.cube(1.0)


# -- references ---------------------------------------------------------------------------------
def forward(model, points):
    """Outputs (P, n_out) and hidden pre-activations (P, N) of a float64 Sequential MLP."""
    h = torch.as_tensor(points, dtype=torch.float64)
    pre = []
    with torch.no_grad():
        for m in model:
            h = m(h)
            if isinstance(m, torch.nn.Linear):
                z = h
            else:
                pre.append(z)
    return h.numpy(), (torch.cat(pre, 1).numpy() if pre else np.zeros((len(points), 0)))


def arrangement_count(W, b, lo, hi):
    """Cells of the generic arrangement of planes ``W x + b = 0`` (integer rows) inside the open box
    (lo, hi), in exact rational arithmetic: for planes in general position, every subset of at most 3
    planes whose intersection meets the box's interior adds one cell (the count of a simple
    arrangement restricted to a convex set). Raises if the arrangement is not generic."""
    W = [[Fr(int(x)) for x in row] for row in W]
    b = [Fr(int(x)) for x in b]
    lo, hi = [Fr(x) for x in lo], [Fr(x) for x in hi]
    n = len(W)
    corners = list(itertools.product(*zip(lo, hi, strict=True)))
    count = 1
    for i in range(n):  # a plane meets the open box when the corners are on both sides
        values = [sum(W[i][d] * c[d] for d in range(3)) + b[i] for c in corners]
        assert 0 not in values, "a plane through a box corner"
        count += min(values) < 0 < max(values)
    for i, j in itertools.combinations(range(n), 2):
        direction = _cross(W[i], W[j])
        assert any(direction), "parallel planes"
        count += _line_meets_box(W[i], b[i], W[j], b[j], direction, lo, hi)
    for triple in itertools.combinations(range(n), 3):
        A = [W[t] for t in triple]
        det = _det3(A)
        assert det != 0, "three planes through one line"
        x = _solve3(A, [-b[t] for t in triple], det)
        assert all(x[d] != lo[d] and x[d] != hi[d] for d in range(3)), "a vertex on the box"
        count += all(lo[d] < x[d] < hi[d] for d in range(3))
    for quad in itertools.combinations(range(n), 4):
        A, rhs = [W[t] for t in quad[:3]], [-b[t] for t in quad[:3]]
        x = _solve3(A, rhs, _det3(A))
        assert sum(W[quad[3]][d] * x[d] for d in range(3)) + b[quad[3]] != 0, "four planes through a point"
    return count


def _cross(a, b):
    return [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]]


def _det3(A):
    return sum(A[0][k] * _cross(A[1], A[2])[k] for k in range(3))


def _solve3(A, rhs, det):
    # Cramer's rule
    out = []
    for k in range(3):
        Ak = [[rhs[r] if c == k else A[r][c] for c in range(3)] for r in range(3)]
        out.append(_det3(Ak) / det)
    return out


def _line_meets_box(a, alpha, c, gamma, direction, lo, hi):
    """Does the line {a x + alpha = 0, c x + gamma = 0} meet the open box? Clip its parameter range."""
    # a point on the line: the one with x . direction = 0
    x0 = _solve3([a, c, direction], [-alpha, -gamma, Fr(0)], _det3([a, c, direction]))
    t_lo, t_hi = None, None
    for d in range(3):
        if direction[d] == 0:
            if not lo[d] < x0[d] < hi[d]:
                return False
            continue
        t1, t2 = (lo[d] - x0[d]) / direction[d], (hi[d] - x0[d]) / direction[d]
        t1, t2 = min(t1, t2), max(t1, t2)
        t_lo = t1 if t_lo is None else max(t_lo, t1)
        t_hi = t2 if t_hi is None else min(t_hi, t2)
    return t_lo is None or t_lo < t_hi


def assert_complex_invariants(cx, box_volume):
    assert cx.euler_characteristic() == 1
    assert abs(cx.volumes.sum() - box_volume) <= 1e-12 * box_volume
    assert cx.volumes.min() > 0
    # a face-to-face complex: every face has two cells or lies on the box (one cell and the outside)
    outside = (cx.face_cells < 0).sum(1)
    assert np.all((outside == 0) | ((outside == 1) & (cx.face_labels < 0) & (cx.face_labels >= -6)))
    # every edge lies on at least 3 faces (2 for edges on the box's 12 edges ... at least 2), and every
    # face has at least 3 distinct vertices
    assert all(len(set(f.tolist())) == len(f) >= 3 for f in cx.faces)


def assert_matches_forward(model, cx, n_points=20_000, seed=0):
    """Every sampled activation pattern is a cell's; ``locate`` + the cell's map reproduce the net."""
    rng = np.random.default_rng(seed)
    lo, hi = cx.volume.lower, cx.volume.upper
    points = lo + (hi - lo) * rng.random((n_points, 3))
    out, pre = forward(model, cx.volume.to_input(points))
    cells = cx.locate(points)
    assert np.all(cells >= 0)
    # round-off of the forward pass and of the composed maps: a few eps times the sum of magnitudes
    scale = 1 + np.abs(out).max() + float(sum(p.detach().abs().sum() for p in model.parameters()))
    np.testing.assert_allclose(cx.outputs(points, cells), out, rtol=0, atol=1e3 * np.finfo(float).eps * scale)
    linear, offset = cx.output_maps()
    np.testing.assert_allclose(np.einsum("pod,pd->po", linear[cells], points) + offset[cells], out, rtol=0,
                               atol=1e3 * np.finfo(float).eps * scale)
    # the sampled point's pattern is its cell's, except for units within round-off of their plane
    clear = np.abs(pre) > 1e-9 * scale
    assert np.all(((pre > 0) == cx.patterns[cells]) | ~clear)
    return points, cells


def torch_mlp(Ws, bs, negative_slope=0.0):
    """A float64 Sequential with exactly these weights (relu, or leaky relu with this slope)."""
    layers = []
    for k, (W, b) in enumerate(zip(Ws, bs, strict=True)):
        lin = torch.nn.Linear(W.shape[1], W.shape[0]).double()
        with torch.no_grad():
            lin.weight.copy_(torch.as_tensor(np.asarray(W, float)))
            lin.bias.copy_(torch.as_tensor(np.asarray(b, float)))
        layers.append(lin)
        if k < len(Ws) - 1:
            layers.append(torch.nn.LeakyReLU(negative_slope) if negative_slope else torch.nn.ReLU())
    return torch.nn.Sequential(*layers)


# -- Volume ---------------------------------------------------------------------------------------
def test_volume_constructors():
    assert Volume.cube(2.0).volume == 64.0
    box = Volume.box((0, -1, 2), (1, 1, 5))
    assert box.bounds == (0.0, 1.0, -1.0, 1.0, 2.0, 5.0) and box.volume == 6.0
    np.testing.assert_array_equal(box.to_input([[0.5, 0, 3]]), [[0.5, 0, 3]])
    corners = box.corners()
    assert corners.shape == (8, 3) and {tuple(c) for c in corners} == set(itertools.product((0, 1), (-1, 1), (2, 5)))
    us, vs, ws = box.grid((2, 3, 4))
    assert us.shape == (2, 3, 4) and np.isclose(vs.mean(), 0) and np.isclose(ws.mean(), 3.5)
    assert Volume.cube(1.0, dim=5).input_shape == (5,)


def test_volume_through_images():
    rng = np.random.default_rng(0)
    inputs = rng.normal(size=(4, 2, 3, 3))
    vol = Volume.through(*inputs)
    assert vol.input_shape == (2, 3, 3)
    np.testing.assert_allclose(vol.to_input(vol.anchors), inputs, atol=1e-12)
    np.testing.assert_allclose(vol.to_volume(inputs), vol.anchors, atol=1e-9)
    assert vol.bounds == (-1.0, 1.0) * 3
    wide = Volume.through(*inputs, margin=0.5)
    assert wide.bounds == (-1.0, 1.0) * 3 and Volume.through(*inputs, margin=0.1).bounds[1] == pytest.approx(0.6)


def test_volume_refuses_degenerate_and_bad_input():
    with pytest.raises(DegenerateSliceError, match="lie on one plane"):
        Volume.through([0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 1, 0])
    with pytest.raises(DegenerateSliceError, match="linearly dependent"):
        Volume(np.zeros(3), [1, 0, 0], [0, 1, 0], [1, 1, 0])
    with pytest.raises(ValueError, match="each min < max"):
        Volume(np.zeros(3), *np.eye(3), bounds=(0, 1, 0, 1, 1, 1))
    with pytest.raises(ValueError, match="one shape"):
        Volume.through(np.zeros(3), np.ones(3), np.ones(4), np.ones(3))
    with pytest.raises(ValueError, match="must be finite|not finite|NaN"):
        Volume.cube(1.0).to_input([[np.nan, 0, 0]])


# -- degenerate and simple complexes --------------------------------------------------------------
def test_affine_net_is_one_cell():
    cx = partition(exact_net([[[1.0, 2.0, 3.0]]], [[0.5]]), CUBE)
    assert cx.num_cells == 1 and len(cx.vertices) == 8 and len(cx.edges) == 12 and len(cx.faces) == 6
    assert_complex_invariants(cx, 8.0)
    linear, offset = cx.output_maps()
    np.testing.assert_array_equal(linear, [[[1.0, 2.0, 3.0]]])
    np.testing.assert_array_equal(offset, [[0.5]])


@pytest.mark.parametrize("seed", range(6))
def test_one_hidden_layer_counts_its_arrangement(seed):
    rng = np.random.default_rng(seed)
    for _ in range(100):  # draw until the arrangement is generic (checked exactly)
        W = rng.integers(-4, 5, size=(7, 3))
        b = rng.integers(-3, 4, size=7)
        try:
            expected = arrangement_count(W, b, (-2, -2, -2), (2, 2, 2))
            break
        except AssertionError:
            continue
    net = exact_net([W, np.ones((1, 7))], [b, [0.0]])
    cx = partition(net, Volume.cube(2.0))
    assert cx.num_cells == expected
    assert_complex_invariants(cx, 64.0)
    assert len({row.tobytes() for row in cx.patterns}) == cx.num_cells  # a pattern is one convex cell


def test_arrangement_reference_counts_a_known_case():
    # three coordinate planes through the box's centre: 8 octants; shifting one out of the box: 4
    assert arrangement_count(np.eye(3, dtype=int), [0, 0, 0], (-1, -1, -1), (1, 1, 1)) == 8
    assert arrangement_count(np.eye(3, dtype=int), [0, 0, 5], (-1, -1, -1), (1, 1, 1)) == 4


@pytest.mark.parametrize("tolerance", [1e-10, 0.0])
def test_duplicated_negated_and_scaled_units_add_no_cells(tolerance):
    # thirds: the units' maps are rounded, and the cuts' vertices lie on the planes only up to round-off
    W = np.array([[1.0, 2.0, -1.0], [0.5, -1.0, 1.0], [-1.0, 0.25, 0.5]]) / 3
    b = np.array([0.25, -0.5, 0.125]) / 3
    base = partition(exact_net([W, np.ones((1, 3))], [b, [0.0]]), CUBE)
    Wd = np.concatenate([W, W, -W, 4 * W])
    bd = np.concatenate([b, b, -b, 4 * b])
    degenerate = partition(exact_net([Wd, np.ones((1, 12))], [bd, [0.0]]), CUBE, tolerance=tolerance)
    assert degenerate.num_cells == base.num_cells
    assert_complex_invariants(degenerate, 8.0)
    # the duplicates' bits follow their originals; the negated ones are the complement
    p = degenerate.patterns
    assert np.array_equal(p[:, 3:6], p[:, :3]) and np.array_equal(p[:, 6:9], ~p[:, :3])
    assert np.array_equal(p[:, 9:12], p[:, :3])


def test_planes_through_box_corners_and_edges_and_one_line():
    # u + v + w = 1 passes through three corners' neighbours; u - v = 0 contains two box edges; the
    # three planes u = 0, v = 0 and u + v = 0 share a line (not generic); w = 1 is a box side
    W = np.array([[1.0, 1, 1], [1, -1, 0], [1, 0, 0], [0, 1, 0], [1, 1, 0], [0, 0, 1], [1, 1, 1]])
    b = np.array([-1.0, 0, 0, 0, 0, -1, 3])
    cx = partition(exact_net([W, np.ones((1, 7))], [b, [0.0]]), CUBE)
    assert_complex_invariants(cx, 8.0)
    # u = 0, v = 0, u - v = 0 and u + v = 0 make 8 wedges about the w axis, each cut by u + v + w = 1
    # or not: counted by sampling, every sampled pattern being a cell's and every cell sampled
    model = torch.nn.Sequential(torch.nn.Linear(3, 7).double(), torch.nn.ReLU(), torch.nn.Linear(7, 1).double())
    with torch.no_grad():
        model[0].weight.copy_(torch.as_tensor(W))
        model[0].bias.copy_(torch.as_tensor(b))
        model[2].weight.fill_(1.0)
        model[2].bias.zero_()
    points, cells = assert_matches_forward(model, cx, n_points=40_000)
    assert np.unique(cells).size == cx.num_cells and cx.volumes.min() > 1e-2  # no invented cells
    assert cx.patterns[:, 5].sum() == 0 and cx.patterns[:, 6].all()  # w = 1 and u+v+w = -3: never/always


def test_vanishing_second_layer_unit_does_not_cut():
    # the second layer's first unit is h0 - h1 for two identical first-layer units whose weights are
    # thirds (rounded): zero on every cell up to round-off, so it never cuts and its bit is 0
    third = 1 / 3
    W1 = np.array([[third, -third, 2 * third], [third, -third, 2 * third], [1.0, 0.5, -0.25]])
    b1 = np.array([0.1, 0.1, -0.2])
    W2 = np.array([[1.0, -1.0, 0.0], [0.5, 0.5, 1.0]])
    b2 = np.array([0.0, -0.3])
    net = exact_net([W1, W2, np.ones((1, 2))], [b1, b2, [0.0]])
    with_zero = partition(net, CUBE)
    without = partition(exact_net([W1, W2[1:], np.ones((1, 1))], [b1, b2[1:], [0.0]]), CUBE)
    assert with_zero.num_cells == without.num_cells
    assert not with_zero.patterns[:, 3].any()
    assert_complex_invariants(with_zero, 8.0)


# -- random networks against sampling ----------------------------------------------------------------
@pytest.mark.parametrize(("widths", "activation"), [([3, 8, 8, 1], "relu"), ([3, 12, 6, 6, 2], "relu"),
                                                    ([3, 8, 8, 1], "leaky_relu")])
def test_random_nets_match_sampling_and_monte_carlo(widths, activation):
    model = mlp(widths, activation, seed=3).double()
    box = Volume.box((-1, -0.5, 0), (1.5, 1, 1))
    cx = partition(model, box)
    assert isinstance(cx, Complex3D)
    assert_complex_invariants(cx, box.volume)
    points, cells = assert_matches_forward(model, cx, n_points=40_000)
    # every sampled pattern is a cell's, and every cell of volume >= 1e-3 of the box was sampled
    big = cx.volumes >= 1e-3 * box.volume
    assert np.isin(np.flatnonzero(big), cells).all()
    # Monte Carlo volumes: each count is binomial; 6 standard deviations
    share = np.bincount(cells, minlength=cx.num_cells) / len(points)
    p = cx.volumes / box.volume
    assert np.all(np.abs(share - p) <= 6 * np.sqrt(p * (1 - p) / len(points)) + 1e-12)
    # cells' centroids are inside them, with their pattern
    assert np.array_equal(cx.locate(cx.centroids()), np.arange(cx.num_cells))


def test_neighbors_share_one_flipped_unit():
    model = mlp([3, 8, 8, 1], seed=1).double()
    cx = partition(model, CUBE)
    nb = cx.neighbors()
    assert len(nb) == int(((cx.face_cells >= 0).all(1)).sum())
    diff = cx.patterns[nb.pairs[:, 0]] != cx.patterns[nb.pairs[:, 1]]
    # across a face the unit that made it flips (and, in deeper layers, possibly others that vanish there)
    assert np.all(diff[np.arange(len(nb)), nb.unit])


def test_levels_refine_by_the_output_level_sets():
    model = mlp([3, 16, 16, 1], seed=2).double()
    samples, _ = forward(model, np.random.default_rng(5).uniform(-1, 1, (1000, 3)))
    levels = tuple(float(np.quantile(samples, q)) for q in (0.3, 0.7))  # two levels the output crosses
    plain = partition(model, CUBE)
    refined = partition(model, CUBE, levels=levels)
    assert refined.num_cells >= plain.num_cells
    assert_complex_invariants(refined, 8.0)
    points, cells = assert_matches_forward(model, refined)
    out, _ = forward(model, points)
    clear = np.abs(out[:, 0:1] - np.array(levels)) > 1e-9
    assert np.all((np.sign(out[:, 0:1] - np.array(levels)) == refined.level_sides[cells]) | ~clear)
    # (pattern, level sides) is one convex cell
    keys = {np.concatenate([r, s]).tobytes() for r, s in zip(refined.patterns.astype(np.int8),
                                                              refined.level_sides, strict=True)}
    assert len(keys) == refined.num_cells
    assert set(refined.face_labels) >= {refined.n_units, refined.n_units + 1}


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 10_000), width=st.integers(1, 7), depth=st.integers(1, 3),
       leaky=st.booleans(), size=st.floats(0.2, 5.0))
def test_property_complex_is_a_subdivided_box(seed, width, depth, leaky, size):
    model = mlp([3] + [width] * depth + [1], "leaky_relu" if leaky else "relu", seed=seed).double()
    vol = Volume.cube(size)
    cx = partition(model, vol, levels=(0.0,))
    assert_complex_invariants(cx, vol.volume)
    assert_matches_forward(model, cx, n_points=2000, seed=seed)


# -- scale control and errors ---------------------------------------------------------------------------
def test_max_regions_stops_the_run(monkeypatch):
    # an estimate under the limit (the real one is tested below): the run itself stops once it passes
    monkeypatch.setattr("netatlas.regions._volume.estimate_cells", lambda net, volume: 1.0)
    with pytest.raises(RegionLimitError, match="passed 10 cells"):
        partition(mlp([3, 16, 16, 1], seed=0), CUBE, max_regions=10)


def test_memory_budget_stops_the_run(monkeypatch):
    monkeypatch.setenv("NETATLAS_MEMORY_BUDGET", "2KiB")
    with pytest.raises(netatlas.MemoryBudgetError, match="3-D complex"):
        partition(mlp([3, 16, 16, 1], seed=0), CUBE, memory_budget=None)


def test_errors_name_what_is_wrong():
    with pytest.raises(ValueError, match="volume has 3-dim inputs but the network expects 2"):
        partition(mlp([2, 4, 1], seed=0), CUBE)
    with pytest.raises(ValueError, match="levels and level_output apply to a Volume"):
        partition(mlp([2, 4, 1], seed=0), netatlas.Plane.square(1.0), levels=(0.0,))
    with pytest.raises(ValueError, match="levels must be distinct finite numbers"):
        partition(mlp([3, 4, 1], seed=0), CUBE, levels=(0.0, 0.0))
    with pytest.raises(ValueError, match="no client or method='graph'"):  # tiles apply (test_regions_tiles3d)
        partition(mlp([3, 4, 1], seed=0), CUBE, method="graph")
    with pytest.raises(ValueError, match="level_output must be an output index"):
        partition(mlp([3, 4, 1], seed=0), CUBE, levels=(0.0,), level_output=1)
    cx = partition(mlp([3, 4, 1], seed=0), CUBE)
    with pytest.raises(ValueError, match=r"shape \(P, 3\)"):
        cx.locate([[0.0, 0.0]])
    with pytest.raises(IndexError, match="out of range"):
        cx.cell_faces(cx.num_cells)


def test_graph_nets_take_the_graph_path_and_smooth_nets_are_refused_by_name():
    # residual graphs were refused here before the 3-D graph path (tests/regions/test_regions_volume_graph.py)
    class Residual(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = torch.nn.Linear(3, 3), torch.nn.Linear(3, 1)

        def forward(self, x):
            return self.b(torch.relu(self.a(x)) + x)

    model = Residual().double()
    cx = partition(model, CUBE)
    assert_complex_invariants(cx, 8.0)
    points = np.random.default_rng(0).uniform(-1, 1, (500, 3))
    with torch.no_grad():
        out = model(torch.as_tensor(points)).numpy()
    np.testing.assert_allclose(cx.outputs(points), out, rtol=0, atol=1e-12 * (1 + np.abs(out).max()))
    with pytest.raises(netatlas.UnsupportedLayerError, match="'tanh' .* is not piecewise linear"):
        partition(torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.Tanh(), torch.nn.Linear(3, 1)), CUBE)


def test_volume_through_on_a_wider_net_matches_forward():
    model = mlp([5, 10, 10, 2], seed=4).double()
    rng = np.random.default_rng(1)
    vol = Volume.through(*rng.normal(size=(4, 5)))
    cx = partition(model, vol)
    assert_complex_invariants(cx, vol.volume)
    assert_matches_forward(model, cx, n_points=5000)
    assert cx.to_dict()["euler_characteristic"] == 1 and math.isclose(cx.to_dict()["total_volume"], 8.0)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31), width=st.integers(1, 6), depth=st.integers(1, 3), thirds=st.booleans(),
       leaky=st.booleans())
def test_property_degenerate_integer_nets(seed, width, depth, thirds, leaky):
    # weights and biases in {-1, 0, 1} (or thirds of them, rounded): coincident and parallel planes,
    # planes through the box's corners, edges and faces, dead and duplicated units everywhere
    rng = np.random.default_rng(seed)
    sizes = [3] + [width] * depth + [1]
    Ws = [rng.integers(-1, 2, size=(sizes[i + 1], sizes[i])) / (3 if thirds else 1) for i in range(depth + 1)]
    bs = [rng.integers(-1, 2, size=sizes[i + 1]) / (3 if thirds else 1) for i in range(depth + 1)]
    model = torch_mlp(Ws, bs, 0.1 if leaky else 0.0)
    cx = partition(model, CUBE, levels=(0.0,))
    assert_complex_invariants(cx, 8.0)
    assert_matches_forward(model, cx, n_points=500, seed=seed % 1000)
    mesh = cx.level_set(0.0)
    # watertight unless the output is 0 on whole cells (then the level set is a solid, and a sheet of it
    # may meet the solid's boundary along an edge) or on a face where it does not change sign (a sheet the
    # output touches from one side: part of the level set, with a free rim)
    if mesh.is_watertight() or (cx.level_sides[:, 0] == 0).any() or _has_touching_sheet(cx):
        return
    # else sheets cross: where four cells of alternating sign meet along an edge, the level set is not a
    # manifold there (four triangles on the edge); it still bounds {output > 0}: an even number on every edge
    edges, counts = mesh._edge_counts()
    lo, hi, tol = cx.volume.lower, cx.volume.upper, 1e-9 * float(np.linalg.norm(cx.volume.upper - cx.volume.lower))
    p, q = mesh.vertices[edges[:, 0]], mesh.vertices[edges[:, 1]]
    on_side = (((np.abs(p - lo) <= tol) & (np.abs(q - lo) <= tol))
               | ((np.abs(p - hi) <= tol) & (np.abs(q - hi) <= tol))).any(1)
    assert np.all(counts[~on_side] % 2 == 0) and counts[~on_side].max() > 2, counts[~on_side]


def _has_touching_sheet(cx):
    sides = cx.level_sides[:, 0]
    for face, (a, b) in enumerate(cx.face_cells):
        if a < 0 or b < 0 or sides[a] != sides[b]:
            continue
        corners = cx.points[cx.face_vertices[cx.face_offsets[face]:cx.face_offsets[face + 1]]]
        values = np.c_[corners, np.ones(len(corners))] @ cx.maps[a][:, 0]
        if np.abs(values).max() <= 1e-9 * (1 + np.abs(cx.maps[a]).max()):
            return True
    return False


def test_conv_chain_through_four_images():
    # conv/avg-pool chains are unrolled to dense layers; the slice goes through four 1x6x6 images
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.ReLU(), torch.nn.AvgPool2d(2),
                                torch.nn.Flatten(), torch.nn.Linear(8, 4), torch.nn.ReLU(),
                                torch.nn.Linear(4, 1)).double()
    images = np.random.default_rng(0).normal(size=(4, 1, 6, 6))
    vol = Volume.through(*images)
    cx = partition(model, vol, levels=(0.0,))
    assert_complex_invariants(cx, vol.volume)
    points = np.random.default_rng(1).uniform(-1, 1, (2000, 3))
    with torch.no_grad():
        out = model(torch.as_tensor(vol.to_input(points))).numpy()
    np.testing.assert_allclose(cx.outputs(points), out, rtol=0, atol=1e-11 * (1 + np.abs(out).max()))


def test_progress_bar_goes_to_stderr(capsys):
    partition(mlp([3, 6, 1], seed=0), CUBE, progress=True)
    captured = capsys.readouterr()
    assert "cells" in captured.err and captured.out == ""


def test_estimate_refuses_before_the_run():
    from netatlas.regions._volume import estimate_cells

    model = mlp([3, 32, 32, 1], seed=0)
    estimate = estimate_cells(from_torch(model), CUBE)
    cells = partition(model, CUBE).num_cells
    assert 0.1 < estimate / cells < 10  # an order of magnitude
    with pytest.raises(RegionLimitError, match="cells estimated"):
        partition(model, CUBE, max_regions=int(estimate / 20))
