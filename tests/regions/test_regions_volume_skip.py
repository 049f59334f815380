"""Residual MLPs in 3-D on the chain path with carried skips (``_skipvolume``, NOTE [carried skips in 3-D]):
on a plain chain it is the chain path (``_volume.build_complex``); on residual nets — random, trained,
leaky, through four inputs, degenerate integer nets — it gives the graph path's complex (``_volume_graph``,
an independent computation: gated forward passes per cell) cell for cell, and every cell's map reproduces
the float64 forward pass (``check_graph_complex``); limits, memory budget and progress as on the other paths."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from test_regions_volume_graph import Residual, check_graph_complex
from torch import nn

from netatlas import Volume
from netatlas.regions import RegionLimitError, partition
from netatlas.regions._chain import chain_layers
from netatlas.regions._skipvolume import skip_volume, skip_volume_chain
from netatlas.regions._volume import build_complex, checked_volume_inputs, volume_frame
from netatlas.regions._volume_graph import graph_volume

CUBE = Volume.cube(1.0)
EPS = np.finfo(np.float64).eps


def graph_path(model, volume, levels=()):
    """The graph path's complex of ``model`` (what ``partition`` ran on residual nets before the skip path)."""
    net, _, levels, _, _ = checked_volume_inputs(model, volume, levels, 0, 1e-10, None, None, None)
    return graph_volume(net, volume, levels, 0, 1e-10, None, volume_frame(volume), lambda *a: None)


def cells_by_state(cx):
    """{pattern and level sides as bytes: cell}: a cell's state names it (one convex set per state)."""
    rows = np.concatenate([cx.patterns.astype(np.int8), cx.level_sides], axis=1)
    keys = [row.tobytes() for row in rows]
    assert len(set(keys)) == cx.num_cells
    return dict(zip(keys, range(cx.num_cells), strict=True))


def assert_same_as_graph_path(model, volume, levels=()):
    """The skip path (what ``partition`` runs) and the graph path give the same complex: V, E, F, C, the same
    cell states, each cell's volume up to the round-off of its sum and its output map up to the round-off of
    the two computations (the skip path's composed products are rounded once more)."""
    net = checked_volume_inputs(model, volume, levels, 0, 1e-10, None, None, None)[0]
    assert skip_volume_chain(net) is not None
    skip, graph = partition(net, volume, levels=levels), graph_path(net, volume, levels)
    assert (len(skip.vertices), len(skip.edges), len(skip.face_cells), skip.num_cells) == (
        len(graph.vertices), len(graph.edges), len(graph.face_cells), graph.num_cells)
    a, b = cells_by_state(skip), cells_by_state(graph)
    assert a.keys() == b.keys()
    order = np.array([b[key] for key in a])  # the graph path's cell of each skip-path cell
    np.testing.assert_allclose(skip.volumes, graph.volumes[order], rtol=0, atol=64 * EPS * volume.volume)
    scale = 1 + sum(float(p.detach().abs().sum()) for p in model.parameters()) * (1 + np.abs(volume.origin).max())
    np.testing.assert_allclose(skip.maps, graph.maps[order], rtol=0, atol=1e3 * EPS * scale)
    return skip, graph


# -- degenerate cases first -----------------------------------------------------------------------
def test_a_plain_chain_through_the_skip_path_is_the_chain_path():
    # no carried values (m = 0): the same cuts, the same next maps and bounds as ``_volume._build``
    model = nn.Sequential(nn.Linear(3, 10), nn.ReLU(), nn.Linear(10, 10), nn.LeakyReLU(0.1), nn.Linear(10, 1)).double()
    torch.manual_seed(0)
    net, layers, levels, cap, per_cell = checked_volume_inputs(model, CUBE, (), 0, 1e-10, None, None, None)
    layers = chain_layers(net)
    chain = build_complex(net, layers, CUBE, (), 0, 1e-10, cap, per_cell, None)
    skip = skip_volume(net, (layers, tuple(W.shape[0] for W, _, _ in layers[:-1]), None), CUBE, (), 0, 1e-10, cap,
                       volume_frame(CUBE), lambda *args: None)
    for name in ("face_vertices", "face_offsets", "face_cells", "face_labels", "patterns"):
        np.testing.assert_array_equal(getattr(skip, name), getattr(chain, name))
    np.testing.assert_allclose(skip.points, chain.points, rtol=0, atol=16 * EPS)
    np.testing.assert_allclose(skip.maps, chain.maps, rtol=0, atol=1e3 * EPS * (1 + np.abs(chain.maps).max()))


def test_flat_output_is_level_side_zero_on_both_paths():
    # an integer residual net whose output is 0 on whole cells, on a box off centre (its maps carry round-off):
    # both paths snap the level function there (NOTE [carried skips in 3-D], ``_volume_graph._level_map``)
    rng = np.random.default_rng(4)
    model = Residual(width=4, n_blocks=2).double()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.as_tensor(rng.integers(-1, 2, size=p.shape), dtype=torch.float64))
    off = Volume.box((-1 / 3, -0.2, -1.0), (1.0, 1.0, 1 / 3))
    for cx in assert_same_as_graph_path(model, off, (0.0,)):
        linear, offset = cx.output_maps()
        flat = (np.abs(linear[:, 0]).max(axis=1) < 1e-12) & (np.abs(offset[:, 0]) < 1e-12)
        assert flat.any() and ((cx.level_sides[:, 0] == 0) == flat).all()


def test_block_unit_zero_up_to_round_off_cuts_nothing():
    # h = relu(u + 2, v + 2, u + v + 4) (all on in the slice), a block unit 0.1 h1 + 0.1 h2 - 0.1 h3 = 0 exactly;
    # on a slice with oblique directions its computed map is round-off (1e-17), snapped to zero on both paths:
    # the complex is that of the net whose block unit has zero weights
    class Net(nn.Module):
        def __init__(self, scale):
            super().__init__()
            self.first, self.block, self.head = nn.Linear(3, 3), nn.Linear(3, 3), nn.Linear(3, 1)
            with torch.no_grad():
                self.first.weight.copy_(torch.tensor([[1.0, 0, 0], [0, 1, 0], [1, 1, 0]]))
                self.first.bias.copy_(torch.tensor([2.0, 2.0, 4.0]))
                self.block.weight.copy_(torch.tensor([[0.1 * scale, 0.1 * scale, -0.1 * scale], [0.3, -0.7, 0.2],
                                                      [0.0, 0.0, 0.0]]))
                self.block.bias.copy_(torch.tensor([0.0, 0.05, -1.0]))
                self.head.weight.copy_(torch.tensor([[1.0, -2.0, 0.5]]))
                self.head.bias.zero_()

        def forward(self, x):
            h = torch.relu(self.first(x))
            return self.head(h + torch.relu(self.block(h)))

    volume = Volume.through(*(0.3 * np.random.default_rng(0).normal(size=(4, 3))))
    skip, _ = assert_same_as_graph_path(Net(1.0).double(), volume)
    assert skip.num_cells == partition(Net(0.0).double(), volume).num_cells
    assert not skip.patterns[:, 3].any()  # its bit: 0 on every cell


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**31), width=st.integers(2, 4), two_layer=st.booleans(), project=st.booleans(),
       thirds=st.booleans())
def test_property_degenerate_integer_residual_nets(seed, width, two_layer, project, thirds):
    # weights in {-1, 0, 1}: dead and duplicated units, streams that cancel, planes through corners and edges;
    # on a box off centre (thirds) the maps carry round-off that the vanishing rule must see through
    rng = np.random.default_rng(seed)
    model = Residual(width=width, n_blocks=2, two_layer=two_layer, project=project).double()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.as_tensor(rng.integers(-1, 2, size=p.shape), dtype=torch.float64))
    volume = Volume.box((-2 / 3, -1 / 3, -1.0), (1.0, 2 / 3, 1 / 3)) if thirds else CUBE
    skip, _ = assert_same_as_graph_path(model, volume, (0.0,))
    check_graph_complex(model, volume, skip, n_points=400, grid=6, seed=seed % 1000, min_clear=0.0)


# -- random, leaky, trained, sliced ---------------------------------------------------------------------------
@pytest.mark.parametrize("options", [
    {}, {"two_layer": True}, {"project": True}, {"from_input": True, "end_in_add": True}, {"n_blocks": 3},
], ids=["relu-block", "two-layer-block", "projection", "from-input-ends-in-add", "three-blocks"])
def test_random_residual_nets_equal_the_graph_path(options):
    torch.manual_seed(7)
    model = Residual(width=8, **options).double()
    skip, _ = assert_same_as_graph_path(model, CUBE, (0.0,))
    check_graph_complex(model, CUBE, skip, n_points=1000, grid=8)


class LeakyResidual(nn.Module):
    def __init__(self, width=8):
        super().__init__()
        self.first, self.block, self.head = nn.Linear(3, width), nn.Linear(width, width), nn.Linear(width, 1)

    def forward(self, x):
        h = nn.functional.leaky_relu(self.first(x), 0.2)
        return self.head(h + nn.functional.leaky_relu(self.block(h), 0.05))


def test_leaky_residual_net_equals_the_graph_path():
    torch.manual_seed(1)
    model = LeakyResidual().double()
    skip, _ = assert_same_as_graph_path(model, Volume.box((-0.5, -1.0, 0.0), (1.0, 0.25, 0.75)), (0.0,))
    check_graph_complex(model, skip.volume, skip, n_points=1000, grid=8)


def test_trained_residual_sdf_with_its_zero_level_set():
    torch.manual_seed(0)
    model = Residual(width=8, n_blocks=2, two_layer=True).double()
    model.head = nn.Linear(8, 1).double()
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    x = torch.rand(1024, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 2 - 1
    target = x.norm(dim=1, keepdim=True) - 0.6
    for _ in range(150):
        optimiser.zero_grad()
        ((model(x)[:, :1] - target) ** 2).mean().backward()
        optimiser.step()
    skip, graph = assert_same_as_graph_path(model, CUBE, (0.0,))
    mesh = skip.level_set(0.0)
    assert mesh.n_triangles > 0 and mesh.is_watertight()
    assert abs(mesh.area - graph.level_set(0.0).area) <= 1e-12 * mesh.area


def test_residual_net_through_four_inputs():
    torch.manual_seed(2)

    class Wide(nn.Module):
        def __init__(self):
            super().__init__()
            self.first, self.block, self.head = nn.Linear(6, 8), nn.Linear(8, 8), nn.Linear(8, 2)

        def forward(self, x):
            h = torch.relu(self.first(x))
            return self.head(h + torch.relu(self.block(h)))

    model = Wide().double()
    volume = Volume.through(*np.random.default_rng(3).normal(size=(4, 6)))
    skip, _ = assert_same_as_graph_path(model, volume)
    check_graph_complex(model, volume, skip, n_points=1000, grid=8)


# -- limits ---------------------------------------------------------------------------------------------
def test_max_regions_memory_budget_and_progress_on_the_skip_path(capsys, monkeypatch):
    torch.manual_seed(0)
    model = Residual(width=8).double()
    n = partition(model, CUBE).num_cells
    with pytest.raises(RegionLimitError, match="cells"):
        partition(model, CUBE, max_regions=n // 4)
    with pytest.raises(RegionLimitError, match="memory budget"):
        partition(model, CUBE, memory_budget=50_000)
    cx = partition(model, CUBE, progress=True)
    assert "cells" in capsys.readouterr().err and cx.num_cells == n
    tiled = partition(model, CUBE, tiles=2, levels=(0.0,))
    assert tiled.num_cells == partition(model, CUBE, levels=(0.0,)).num_cells


class ResidualConv(nn.Module):
    """conv -> relu -> x + relu(conv(x)) -> linear: a residual CNN without pooling (its convolutions unrolled)."""

    def __init__(self):
        super().__init__()
        self.conv, self.block, self.head = nn.Conv2d(1, 2, 3), nn.Conv2d(2, 2, 3, padding=1), nn.Linear(2 * 4 * 4, 1)

    def forward(self, x):
        h = torch.relu(self.conv(x))
        h = h + torch.relu(self.block(h))
        return self.head(h.flatten(1))


def test_residual_cnn_on_a_slice_through_four_images():
    torch.manual_seed(4)
    model = ResidualConv()  # traced in float32 (weights exact in float64), checked in float64
    volume = Volume.through(*(0.2 * np.random.default_rng(2).normal(size=(4, 1, 6, 6))))
    skip, _ = assert_same_as_graph_path(model, volume, (0.0,))
    assert skip.num_cells > 50
    check_graph_complex(model.double(), volume, skip, n_points=1000, grid=8)
