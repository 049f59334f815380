"""3-D complexes of graphs that are not chains (issue 29 item 1): residual nets, max pooling and a max over
outputs, hardtanh, nets ending in an activation. Against independent references: the float64 forward pass
(every cell's map at random points), the net's own states (on/off bits and arg-maxes from
``Net.forward_all``) at every cell's centroid and on a dense grid (every state seen on the grid is a cell's,
and no two cells share a state: a tournament piece left unmerged would), slices at w = const against the 2-D
partition of that plane; the whole-complex invariants; degenerate integer nets (ties, duplicated channels,
dead units) with hypothesis."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from test_regions_max import forward_state, margin
from test_regions_volume import assert_complex_invariants
from torch import nn

import netatlas
from netatlas import Plane, UnsupportedLayerError, Volume
from netatlas.regions import partition
from netatlas.regions._volume_graph import merge_cells

CUBE = Volume.cube(1.0)
EPS = np.finfo(np.float64).eps


class Residual(nn.Module):
    """``x -> [proj](x) or relu(W0 x)``, then blocks ``h + relu(W h + b)`` (or ``h + W2 relu(W1 h)``), then
    a Linear head, or the last block's sum as the output (a net ending in the addition)."""

    def __init__(self, width=6, n_blocks=2, two_layer=False, project=False, from_input=False, end_in_add=False):
        super().__init__()
        self.first = None if from_input else nn.Linear(3, width)
        self.project = nn.Linear(3, width) if project else None
        w = 3 if from_input else width
        self.blocks = nn.ModuleList([nn.Sequential(nn.Linear(w, w), nn.ReLU(), *([nn.Linear(w, w)] if two_layer
                                                                                  else []))
                                     for _ in range(n_blocks)])
        self.head = None if end_in_add else nn.Linear(w, 2)

    def forward(self, x):
        h = x if self.first is None else torch.relu(self.first(x))
        if self.project is not None:
            h = h + self.project(x)  # a Linear projection on the skip from the input
        for block in self.blocks:
            h = h + block(h)
        return h if self.head is None else self.head(h)


def max_pool_net():
    # 3 -> 8 relu -> 2x4 -> max pool over pairs -> 4 -> relu -> 3 -> global max (amax)
    return nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Unflatten(1, (2, 4)), nn.MaxPool1d(2), nn.Flatten(),
                         nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 3), GlobalMax())


class GlobalMax(nn.Module):
    def forward(self, x):
        return x.amax(dim=1, keepdim=True)


def keys_of(cx):
    """Each cell's state as bytes: pattern bits, arg-maxes, level sides."""
    parts = [cx.patterns.astype(np.int64), *cx.choices, cx.level_sides.astype(np.int64)]
    rows = np.concatenate(parts, axis=1)
    return [row.tobytes() for row in rows]


def state_keys(net, x, n_levels=0):
    bits, choices = forward_state(net, x)
    rows = np.concatenate([bits.astype(np.int64), choices, np.zeros((len(x), n_levels), np.int64)], axis=1)
    return [row.tobytes() for row in rows]


def stable(net, vol, points, scale, delta=1e-6):
    """(P,) points (volume coordinates) whose state is the same at the point and a step ``delta`` along each
    axis either way (a point on a kink or a tie between two different entries has a step that changes it;
    identical entries, e.g. duplicated channels, keep tying), and no unit or window within round-off of a kink."""
    keys = state_keys(net, vol.to_input(points))
    same = margin(net, vol.to_input(points)) > 1e-9 * scale
    for step in np.concatenate([np.eye(3), -np.eye(3)]) * delta:
        moved = state_keys(net, vol.to_input(points + step))
        same &= np.array([a == b for a, b in zip(keys, moved, strict=True)])
    return same


def check_graph_complex(model, vol, cx, n_points=3000, grid=14, seed=0, min_clear=0.5):
    """The invariants, maps against the forward pass, states at centroids and grid points, one cell per state."""
    net = cx.net  # the net the partition read (a float32 module traced, weights exact in float64)
    assert_complex_invariants(cx, vol.volume)
    rng = np.random.default_rng(seed)
    lo, hi = vol.lower, vol.upper
    points = lo + (hi - lo) * rng.random((n_points, 3))
    with torch.no_grad():
        out = model(torch.as_tensor(vol.to_input(points))).numpy().reshape(n_points, -1)
    cells = cx.locate(points)
    assert (cells >= 0).all()
    # round-off of the forward pass and of the gated passes: a few eps per term, summed over the weights
    scale = 1 + np.abs(out).max() + float(sum(p.detach().abs().sum() for p in model.parameters())) * (
        1 + np.abs(vol.to_input(points)).max())
    np.testing.assert_allclose(cx.outputs(points, cells), out, rtol=0, atol=1e3 * EPS * scale)
    # one cell per state: a fixed state is a convex set (each constraint linear once the earlier ones are fixed)
    keys = keys_of(cx)
    assert len(set(keys)) == cx.num_cells
    # the net's own state at each cell's centroid (away from ties and kinks) is the cell's
    centroids = cx.centroids()
    x = vol.to_input(centroids)
    clear = stable(net, vol, centroids, scale)
    assert clear.mean() >= min_clear
    got = state_keys(net, x)
    assert all(got[c] == keys[c] for c in np.flatnonzero(clear) if not cx.levels)
    # every state seen on a dense grid is a cell's (the brute-force reference), the one that holds the point
    t = (np.arange(grid) + 0.5) / grid
    g = lo + (hi - lo) * np.stack(np.meshgrid(t, t, t, indexing="ij"), -1).reshape(-1, 3)
    xg = vol.to_input(g)
    clear_g = stable(net, vol, g, scale)
    located = cx.locate(g)
    seen = state_keys(net, xg)
    if not cx.levels:
        assert all(seen[p] == keys[located[p]] for p in np.flatnonzero(clear_g))
        assert {seen[p] for p in np.flatnonzero(clear_g)} <= set(keys)
    return net


def slice_count(cx, w0):
    """Cells the plane w = w0 crosses: each meets it in one convex region."""
    pairs = cx._incidences()
    w = cx.vertices[pairs[:, 1], 2]
    lo = np.full(cx.num_cells, np.inf)
    hi = np.full(cx.num_cells, -np.inf)
    np.minimum.at(lo, pairs[:, 0], w)
    np.maximum.at(hi, pairs[:, 0], w)
    return int(((lo < w0) & (w0 < hi)).sum())


def plane_at(vol, w0):
    return Plane(vol.origin + w0 * vol.d3, vol.d1, vol.d2, tuple(vol.bounds[:4]))


# -- residual nets ----------------------------------------------------------------------------------
@pytest.mark.parametrize("options", [
    {}, {"two_layer": True}, {"project": True}, {"from_input": True}, {"from_input": True, "end_in_add": True},
    {"two_layer": True, "end_in_add": True},
], ids=["relu-block", "two-layer-block", "projection", "from-input", "ends-in-add", "two-layer-ends-in-add"])
def test_residual_nets_cells_reproduce_the_net(options):
    torch.manual_seed(3)
    model = Residual(**options).double()
    cx = partition(model, CUBE)
    assert cx.choices == () and cx.num_cells > 5
    check_graph_complex(model, CUBE, cx)


def test_residual_slices_match_the_2d_partition_of_their_plane():
    # an independent count: the 2-D graph/skip-chain path on the plane w = w0 meets one region per cell it crosses
    torch.manual_seed(5)
    model = Residual(width=8, two_layer=True, project=True).double()
    cx = partition(model, CUBE)
    for w0 in (-0.61803, 0.1234567, 0.7071):
        assert slice_count(cx, w0) == partition(model, plane_at(CUBE, w0)).num_regions


# -- max pooling and a max over outputs ----------------------------------------------------------------
def test_max_pool_and_global_max_cells_reproduce_the_net():
    torch.manual_seed(0)
    model = max_pool_net().double()
    cx = partition(model, CUBE)
    assert [c.shape[1] for c in cx.choices] == [4, 1] and cx.max_units_per_layer == (4, 1)
    assert cx.to_dict()["n_max_outputs"] == 5
    check_graph_complex(model, CUBE, cx)
    # the faces made by window j are labelled n_units + j
    labels = set(cx.face_labels.tolist())
    assert labels & set(range(cx.n_units, cx.n_units + 5))
    for w0 in (-0.3333, 0.2718):
        assert slice_count(cx, w0) == partition(model, plane_at(CUBE, w0)).num_regions


def test_max_of_three_planes_through_one_line_is_three_cells():
    # max(u, v, w - u - v ...) pieces meeting on a line inside the box: a tournament over-splits (the plane
    # u = v runs on where the third entry wins); the merge must leave exactly one cell per winner
    model = nn.Sequential(nn.Linear(3, 3), GlobalMax()).double()
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[1.0, 0, 0], [0, 1, 0], [-1, -1, 0.5]]))
        model[0].bias.zero_()
    cx = partition(model, CUBE)
    assert cx.num_cells == 3 and cx.euler_characteristic() == 1
    assert sorted(cx.choices[0][:, 0].tolist()) == [0, 1, 2]
    check_graph_complex(model, CUBE, cx)


def test_duplicated_channels_tie_and_the_first_wins():
    # two identical channels in every window: no cut between them, the earlier entry is the arg-max
    lin = nn.Linear(3, 2)
    model = nn.Sequential(nn.Linear(3, 4), nn.Unflatten(1, (1, 4)), nn.MaxPool1d(2), nn.Flatten(), nn.ReLU(),
                          nn.Linear(2, 1)).double()
    with torch.no_grad():
        model[0].weight.copy_(torch.cat([lin.weight, lin.weight]).double()[[0, 0, 1, 1]])
        model[0].bias.copy_(torch.cat([lin.bias, lin.bias]).double()[[0, 0, 1, 1]])
    cx = partition(model, CUBE)
    assert (cx.choices[0] == 0).all()
    relu_only = nn.Sequential(nn.Linear(3, 2), nn.ReLU(), nn.Linear(2, 1)).double()
    with torch.no_grad():
        relu_only[0].weight.copy_(model[0].weight[[0, 2]])
        relu_only[0].bias.copy_(model[0].bias[[0, 2]])
    assert cx.num_cells == partition(relu_only, CUBE).num_cells
    check_graph_complex(model, CUBE, cx)


def test_max_pool_cnn_on_a_slice_through_four_images():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8, 4), nn.ReLU(),
                          nn.Linear(4, 2)).double()
    images = np.random.default_rng(0).normal(size=(4, 1, 6, 6))
    vol = Volume.through(*images)
    cx = partition(model, vol, levels=(0.0,))
    assert cx.choices[0].shape[1] == 8
    check_graph_complex(model, vol, cx, n_points=2000, grid=10)
    mesh = cx.level_set(0.0)
    assert mesh.n_triangles > 0 and mesh.is_watertight()


def test_hardtanh_and_a_net_ending_in_relu():
    torch.manual_seed(2)
    for model in (nn.Sequential(nn.Linear(3, 6), nn.Hardtanh(-0.5, 0.5), nn.Linear(6, 1)).double(),
                  nn.Sequential(nn.Linear(3, 6), nn.ReLU6(), nn.Linear(6, 4), nn.ReLU()).double()):
        cx = partition(model, CUBE)
        check_graph_complex(model, CUBE, cx)


def test_levels_on_a_max_net_are_labelled_after_the_windows():
    torch.manual_seed(0)
    model = max_pool_net().double()
    cx = partition(model, CUBE, levels=(0.0,))
    level_faces = cx.face_labels == cx.n_units + 5
    assert level_faces.any()
    assert cx.level_set(0.0).is_watertight()
    check_graph_complex(model, CUBE, cx, grid=8)


def test_smooth_nets_are_refused_by_name():
    with pytest.raises(UnsupportedLayerError, match="not piecewise linear"):
        partition(nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1)), CUBE)


def test_merge_cells_of_a_box_cut_twice():
    # the box cut by u = 0 and v = 0 (4 cells); merging the two cells with v > 0 leaves 3 cells, with the
    # chord on the u = 0 plane and the vertices it left on straight edges gone
    from netatlas.regions._subdivide import box_state, cut

    state = box_state(np.ones(3))
    for axis in range(2):
        z = state.points[:, axis].copy()
        cut(state, z, np.full(len(z), 1e-12), axis)
    v_sign = np.array([np.sign(state.points[state.face_vertices[state.face_offsets[f]:state.face_offsets[f + 1]],
                                             1].sum()) for f in range(len(state.face_cells))])
    cell_v = np.zeros(state.n_cells)
    for f, (a, b) in enumerate(state.face_cells):
        for c in (a, b):
            if c >= 0 and v_sign[f] != 0:
                cell_v[c] = v_sign[f]
    group = np.where(cell_v > 0, 0, 1 + np.arange(state.n_cells))
    _, group = np.unique(group, return_inverse=True)
    merge_cells(state, group.ravel())
    assert state.n_cells == 3
    V, F = len(state.points), len(state.face_cells)
    edges = set()
    for f in range(F):
        cyc = state.face_vertices[state.face_offsets[f]:state.face_offsets[f + 1]].tolist()
        edges |= {tuple(sorted(e)) for e in zip(cyc, cyc[1:] + cyc[:1], strict=True)}
    assert V - len(edges) + F - state.n_cells == 1
    # the box (8 corners) + the v = 0 cut's 4 box-edge vertices + the u = 0 cut's vertices with v < 0: 2 on
    # box edges and 1 on the v = 0 line at each of w = +-1 (the u = 0, v > 0 ones are gone)
    assert V == 8 + 4 + 4


# -- degenerate nets --------------------------------------------------------------------------------
def integer_graph(seed, width, duplicate, residual):
    """A residual MLP (2 blocks) or a max-pool net ending in a global max, on 3 inputs, with weights and biases
    in {-1, 0, 1} (``duplicate``: the first layer's odd units copy the even ones)."""
    rng = np.random.default_rng(seed)
    if residual:
        model = Residual(width=width, n_blocks=2, two_layer=bool(seed % 2)).double()
    else:
        model = nn.Sequential(nn.Linear(3, 2 * width), nn.ReLU(), nn.Unflatten(1, (2, width)), nn.MaxPool1d(2, 1),
                              nn.Flatten(), nn.Linear(2 * (width - 1), 3), GlobalMax()).double()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.as_tensor(rng.integers(-1, 2, size=p.shape), dtype=torch.float64))
        if duplicate:
            first = next(m for m in model.modules() if isinstance(m, nn.Linear))
            first.weight[1::2] = first.weight[0::2][:len(first.weight[1::2])]
            first.bias[1::2] = first.bias[0::2][:len(first.bias[1::2])]
    return model


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**31), width=st.integers(2, 4), duplicate=st.booleans(), residual=st.booleans())
def test_property_degenerate_integer_graphs(seed, width, duplicate, residual):
    # weights and biases in {-1, 0, 1}: ties between window entries, duplicated channels, dead units,
    # planes through the box's corners and edges
    model = integer_graph(seed, width, duplicate, residual)
    cx = partition(model, CUBE)
    check_graph_complex(model, CUBE, cx, n_points=500, grid=8, seed=seed % 1000, min_clear=0.0)


def test_cli_volume_takes_a_max_pool_model(tmp_path):
    import json

    from netatlas.cli import main

    model = tmp_path / "m.pt2"
    torch.manual_seed(0)
    netatlas.nets.save(max_pool_net(), model, input_shape=(3,))
    out = tmp_path / "run"
    try:
        main(["regions", str(model), "--volume", "cube:1", "--level", "0", "--out", str(out)])
    except SystemExit as exc:
        assert exc.code in (0, None)
    summary = json.loads((out / "summary.json").read_text())
    direct = partition(netatlas.nets.load(model), CUBE, levels=(0.0,))
    assert summary["num_cells"] == direct.num_cells and summary["euler_characteristic"] == 1


def test_max_regions_and_progress_on_the_graph_path(capsys):
    from netatlas.regions import RegionLimitError

    torch.manual_seed(0)
    model = max_pool_net().double()
    with pytest.raises(RegionLimitError, match="cells"):
        partition(model, CUBE, max_regions=5)
    cx = partition(model, CUBE, progress=True)
    assert "cells" in capsys.readouterr().err and cx.num_cells > 5


class ResidualCNN(nn.Module):
    """conv -> relu -> x + relu(conv(x)) -> overlapping max pool (3x3, stride 1) -> linear: a residual stream
    and windows that share entries."""

    def __init__(self):
        super().__init__()
        self.conv, self.block = nn.Conv2d(1, 2, 3), nn.Conv2d(2, 2, 3, padding=1)
        self.pool, self.head = nn.MaxPool2d(3, stride=1), nn.Linear(2 * 2 * 2, 1)

    def forward(self, x):
        h = torch.relu(self.conv(x))
        h = h + torch.relu(self.block(h))
        return self.head(self.pool(h).flatten(1))


def test_residual_cnn_with_overlapping_windows_on_a_slice():
    torch.manual_seed(4)
    model = ResidualCNN()  # traced in float32 (weights exact in float64), checked in float64
    vol = Volume.through(*np.random.default_rng(2).normal(size=(4, 1, 6, 6)))
    cx = partition(model, vol)
    model = model.double()
    assert cx.choices[0].shape[1] == 8 and cx.num_cells > 50
    check_graph_complex(model, vol, cx, n_points=2000, grid=10)


def test_tiles_of_a_graph_give_the_whole_complex():
    # graphs in tiles (tests/regions/test_regions_tiles3d_graph.py has the full comparisons)
    torch.manual_seed(0)
    model = max_pool_net().double()
    tiled = partition(model, CUBE, tiles=2)
    assert tiled.num_cells == partition(model, CUBE).num_cells and tiled.euler_characteristic() == 1
