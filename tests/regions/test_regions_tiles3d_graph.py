"""3-D complexes of graphs in tiles (partition(graph_net, volume, tiles=k), issue 29 item 1): the whole
complex's counts, cells' volumes and level-set meshes assembled from the tiles equal the untiled graph
complex's — residual nets, max pooling and a max over outputs, hardtanh, a CNN and a residual CNN on
slices through four images, degenerate integer nets whose planes and ties run through tile borders —
and the sign vectors they rest on (a window's arg-max set per entry: NOTE [graph tiles in 3-D]) name
every face of a graph complex exactly once."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from test_regions_tiles3d import assert_same_complex, median_output
from test_regions_volume_graph import GlobalMax, Residual, ResidualCNN, integer_graph, max_pool_net
from torch import nn

from netatlas import Volume
from netatlas.nets import Max
from netatlas.regions import RegionLimitError, partition
from netatlas.regions._tiles3d import VertexSigns, face_signs
from netatlas.regions._volume import checked_volume_inputs, volume_frame
from netatlas.regions._volume_graph import graph_columns, graph_volume

CUBE = Volume.cube(1.0)


def small_cnn():
    torch.manual_seed(1)
    return nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8, 4), nn.ReLU(),
                         nn.Linear(4, 2)).double()


# -- degenerate cases first -----------------------------------------------------------------------
def test_max_of_three_planes_meeting_on_the_tiles_corner_line():
    # max(u, v, w/2 - u - v): three cells whose planes meet on the line u = v = ..., through the centre of the
    # cube, where the 2 x 2 x 2 tiles' planes meet: the tournament's over-split and merge in every tile
    model = nn.Sequential(nn.Linear(3, 3), GlobalMax()).double()
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[1.0, 0, 0], [0, 1, 0], [-1, -1, 0.5]]))
        model[0].bias.zero_()
    for tiles in (2, 3):
        whole, tiled = assert_same_complex(model, CUBE, tiles, (0.25,))
        assert tiled.num_cells == 3 * 2  # three arg-max cells, each cut by the level


def test_duplicated_channels_tie_in_every_tile():
    # identical channels in each window: no cut between them in any tile, as in the untiled run
    lin = nn.Linear(3, 2)
    model = nn.Sequential(nn.Linear(3, 4), nn.Unflatten(1, (1, 4)), nn.MaxPool1d(2), nn.Flatten(), nn.ReLU(),
                          nn.Linear(2, 1)).double()
    with torch.no_grad():
        model[0].weight.copy_(torch.cat([lin.weight, lin.weight]).double()[[0, 0, 1, 1]])
        model[0].bias.copy_(torch.cat([lin.bias, lin.bias]).double()[[0, 0, 1, 1]])
    assert_same_complex(model, CUBE, 2, (median_output(model, CUBE),))


def test_a_window_entry_that_only_ties_cuts_nothing():
    # entry 1 = entry 0 on the half u < 0 and below it elsewhere (max(u, 0) - u >= 0): it never wins, it is the max
    # only where it ties, and its tie region's border u = 0 is the tiles' plane
    model = nn.Sequential(nn.Linear(3, 2), nn.ReLU(), nn.Linear(2, 2), nn.Unflatten(1, (1, 2)), nn.MaxPool1d(2),
                          nn.Flatten(), nn.Linear(1, 1)).double()
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[1.0, 0, 0], [0, 1, 1]]))
        model[0].bias.copy_(torch.tensor([0.0, -0.5]))
        model[2].weight.copy_(torch.tensor([[1.0, 1.0], [0.0, 1.0]]))  # z0 = relu(u) + r, z1 = r
        model[2].bias.zero_()
        model[6].weight.fill_(1.0)
        model[6].bias.fill_(-0.2)
    whole, _ = assert_same_complex(model, CUBE, 2, (0.0,))
    assert (whole.choices[0] == 0).all()


def test_output_flat_at_the_level_is_level_side_zero_in_every_tile():
    # a residual integer net whose output is 0 on whole cells: with the tiles' centres at +-2/3 its computed map
    # there is round-off (1e-16), snapped to exact zero as the untiled run's (centre 0) is exactly
    rng = np.random.default_rng(4)
    model = Residual(width=4, n_blocks=2).double()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.as_tensor(rng.integers(-1, 2, size=p.shape), dtype=torch.float64))
    whole, _ = assert_same_complex(model, CUBE, 3, (0.0,))
    flat = (whole.level_sides[:, 0] == 0)
    assert flat.sum() == 3 and (whole.maps[flat, :, 0] == 0).all()
    off = Volume.box((-1 / 3, -0.2, -1.0), (1.0, 1.0, 1 / 3))  # off centre: the maps carry round-off
    cx = partition(model, off, levels=(0.0,))
    linear, offset = cx.output_maps()
    flat = (np.abs(linear[:, 0]).max(axis=1) < 1e-12) & (np.abs(offset[:, 0]) < 1e-12)
    assert flat.any() and ((cx.level_sides[:, 0] == 0) == flat).all()


# -- graph nets against their untiled complexes ---------------------------------------------------------
@pytest.mark.parametrize("options, tiles", [
    ({}, 2), ({"two_layer": True, "project": True}, 3), ({"from_input": True, "end_in_add": True}, 2),
], ids=["relu-block", "two-layer-projection", "ends-in-add"])
def test_residual_nets_equal_untiled(options, tiles):
    torch.manual_seed(3)
    model = Residual(**options).double()
    assert_same_complex(model, CUBE, tiles, (median_output(model, CUBE),))


@pytest.mark.parametrize("tiles", [2, 3])
def test_max_pool_and_global_max_equal_untiled(tiles):
    torch.manual_seed(0)
    model = max_pool_net().double()
    mid = median_output(model, CUBE)
    assert_same_complex(model, Volume.box((-0.9, -0.5, -1.0), (0.7, 1.0, 0.3)), tiles, (mid, mid + 0.1))


def test_hardtanh_equals_untiled():
    torch.manual_seed(2)
    model = nn.Sequential(nn.Linear(3, 6), nn.Hardtanh(-0.5, 0.5), nn.Linear(6, 1)).double()
    assert_same_complex(model, CUBE, 2, (median_output(model, CUBE),))


def test_cnn_and_residual_cnn_on_slices_through_four_images():
    model = small_cnn()
    vol = Volume.through(*(0.3 * np.random.default_rng(0).normal(size=(4, 1, 6, 6))))
    whole, _ = assert_same_complex(model, vol, 2, (0.0,))
    assert whole.choices[0].shape[1] == 8 and whole.num_cells > 100
    torch.manual_seed(4)
    model = ResidualCNN()  # traced in float32, weights exact in float64
    vol = Volume.through(*(0.1 * np.random.default_rng(2).normal(size=(4, 1, 6, 6))))
    whole, _ = assert_same_complex(model, vol, 2, ())
    assert whole.num_cells > 100


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**31), width=st.integers(2, 4), duplicate=st.booleans(), residual=st.booleans(),
       tiles=st.sampled_from([2, 3]))
def test_property_degenerate_integer_graphs(seed, width, duplicate, residual, tiles):
    # weights and biases in {-1, 0, 1}: ties between window entries, duplicated channels, dead units, planes
    # through the box's corners and the tiles' planes (u = 0 for 2 tiles)
    model = integer_graph(seed, width, duplicate, residual)
    assert_same_complex(model, CUBE, tiles, (0.0,), mesh_cells=False)


# -- the sign vectors -----------------------------------------------------------------------------------
def _graph_signs(model, volume, levels=()):
    net, layers, levels, _, _ = checked_volume_inputs(model, volume, levels, 0, 1e-10, None, None, None)
    assert layers is None
    n_units, n_entries, cut = graph_columns(net)
    recorder = VertexSigns(n_units + n_entries + len(levels))
    cx = graph_volume(net, volume, levels, 0, 1e-10, None, volume_frame(volume), lambda *a: None, recorder=recorder)
    recorder.check(len(cx.points), cut + [n_units + n_entries + i for i in range(len(levels))])
    return cx, face_signs(cx, recorder.packed()), n_units, n_entries


def test_graph_sign_vectors_name_every_face_once():
    torch.manual_seed(0)
    model = max_pool_net().double()
    cx, rows, n_units, n_entries = _graph_signs(model, CUBE, (median_output(model, CUBE),))
    assert n_entries == 4 * 2 + 1 * 3  # the pool's 4 windows of 2, the global max's one window of 3
    counts = [len(np.unique(r[:, :-1], axis=0)) for r in rows]
    assert counts == [len(cx.points), len(cx.edges), len(cx.face_cells), cx.num_cells] == [len(r) for r in rows]
    # a cell's window columns: 0 for the entries that are the window's max on it (its choice, and entries that
    # tie it on the whole cell: two relu units off), - for the others, never +: as the forward pass at its centroid
    n_bytes = (rows[3].shape[1] - 2) // 2
    bits = np.unpackbits(rows[3][:, :2 * n_bytes], axis=1, bitorder="little")
    positive, negative = bits[:, :8 * n_bytes].astype(bool), bits[:, 8 * n_bytes:].astype(bool)
    entries = slice(n_units, n_units + n_entries)
    assert not positive[:, entries].any()
    values = cx.net.forward_all(torch.as_tensor(CUBE.to_input(cx.centroids())))
    is_max = []
    for node in (cx.net.nodes[i] for i in cx.net.nonlinear if isinstance(cx.net.nodes[i].op, Max)):
        z = values[node.inputs[0]].numpy()[:, node.op.index.numpy()]  # (C, n_out, k)
        is_max.append((z >= z.max(axis=2, keepdims=True) - 1e-12).reshape(len(z), -1))
    chosen = np.concatenate([np.eye(2, dtype=bool)[cx.choices[0]].reshape(-1, 8),
                             np.eye(3, dtype=bool)[cx.choices[1]].reshape(-1, 3)], axis=1)
    np.testing.assert_array_equal(negative[:, entries], ~np.concatenate(is_max, axis=1))
    assert not (negative[:, entries] & chosen).any() and (negative[:, entries] != ~chosen).any()  # ties seen
    np.testing.assert_array_equal(positive[:, :n_units], cx.patterns)


def test_settle_window_turns_running_signs_into_arg_max_sets():
    # brute force: entries z (V, k) at 5 vertices; running signs sign(z_q - max_{p<q} z_p), entry 2 absent
    z = np.array([[0.0, 1.0, 9.0, 1.0], [2.0, 1.0, 9.0, 2.0], [1.0, 1.0, 9.0, 0.0], [0.0, -1.0, 9.0, -1.0],
                  [3.0, 3.0, 9.0, 3.0]])
    present = np.array([True, True, False, True])
    recorder = VertexSigns(6, n_vertices=5)
    no_new = (np.zeros(0, int), np.zeros(0, int), np.zeros(0))
    for q in (1, 3):
        running = np.max(np.where(present[:q], z[:, :q], -np.inf), axis=1)
        recorder(2 + q, np.sign(z[:, q] - running).astype(np.int8), no_new)
    recorder.settle_window(2 + np.arange(4), present)
    bits = np.unpackbits(recorder.packed(), axis=1, bitorder="little")  # (5, 16): positive, negative
    top = np.max(np.where(present, z, -np.inf), axis=1, keepdims=True)
    is_max = (z == top) & present
    assert not bits[:, :8].any()
    np.testing.assert_array_equal(bits[:, 8 + 2:8 + 6].astype(bool), ~is_max)
    recorder.keep(np.array([True, False, True, False, True]))
    assert recorder.n_vertices == 3
    np.testing.assert_array_equal(np.unpackbits(recorder.packed(), axis=1, bitorder="little")[:, 8 + 2:8 + 6],
                                  ~is_max[[0, 2, 4]])


# -- limits ---------------------------------------------------------------------------------------------
def test_max_regions_and_progress_on_tiled_graphs(capsys):
    torch.manual_seed(0)
    model = max_pool_net().double()
    n = partition(model, CUBE).num_cells
    with pytest.raises(RegionLimitError, match="max_regions"):
        partition(model, CUBE, tiles=2, max_regions=n // 2)
    tiled = partition(model, CUBE, tiles=2, max_regions=n, progress=True)
    assert tiled.num_cells == n and "tiles" in capsys.readouterr().err
