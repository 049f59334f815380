"""The 3-D edge subdivision's compiled layer cut (``_layercut.cut_layer``, hidden layers and levels)
against the unit-by-unit NumPy path (``subdivide_reference.cut_layer_reference``): the same complex
bit for bit — vertices, face cycles and their order, face cells and labels, patterns, maps, level
sides — on random, degenerate and trained-like nets, with levels; and the level-set mesh built by the
compiled cut against the reference's."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from subdivide_reference import cut_layer_reference, cut_reference

import netatlas.regions._layercut as layercut_module
import netatlas.regions._mesh as mesh_module
import netatlas.regions._volume as volume_module
from netatlas import Volume
from netatlas.nets import mlp
from netatlas.regions import partition
from netatlas.regions._subdivide import ComplexState, UnitValues, home_cells, vertex_values

CUBE = Volume.cube(1.0)
FIELDS = ("points", "face_vertices", "face_offsets", "face_cells", "face_labels", "patterns", "maps", "level_sides")


def integer_mlp(seed, width, depth, scale, leaky):
    """A float64 MLP with weights and biases in {-1, 0, 1} / scale: coincident and parallel planes, planes
    through the box's corners, edges and faces, dead and duplicated units."""
    rng = np.random.default_rng(seed)
    sizes = [3] + [width] * depth + [1]
    layers = []
    for i in range(depth + 1):
        lin = torch.nn.Linear(sizes[i], sizes[i + 1]).double()
        with torch.no_grad():
            lin.weight.copy_(torch.as_tensor(rng.integers(-1, 2, size=(sizes[i + 1], sizes[i])) / scale))
            lin.bias.copy_(torch.as_tensor(rng.integers(-1, 2, size=sizes[i + 1]) / scale))
        layers += [lin, torch.nn.LeakyReLU(0.1) if leaky else torch.nn.ReLU()]
    return torch.nn.Sequential(*layers[:-1])


def both_paths(model, volume, levels, monkeypatch):
    """The complex from the compiled cut and from the reference cut."""
    fast = partition(model, volume, levels=levels)
    with monkeypatch.context() as patch:
        patch.setattr(volume_module, "cut_layer", cut_layer_reference)
        slow = partition(model, volume, levels=levels)
    return fast, slow


def assert_same_complex(fast, slow):
    for name in FIELDS:
        a, b = getattr(fast, name), getattr(slow, name)
        assert a.dtype == b.dtype and np.array_equal(a, b), name
    assert np.array_equal(fast.volumes, slow.volumes)


@pytest.mark.parametrize("widths, activation, levels", [
    ([3, 16, 16, 16, 1], "relu", (0.0,)),
    ([3, 24, 1], "relu", ()),
    ([3, 10, 10, 2], "leaky_relu", (-0.1, 0.2)),
])
def test_random_nets_match_the_reference_bit_for_bit(widths, activation, levels, monkeypatch):
    model = mlp(widths, activation, seed=3).double()
    fast, slow = both_paths(model, Volume.box((-1.0, -0.5, -2.0), (1.5, 0.5, 0.0)), levels, monkeypatch)
    assert fast.num_cells > 20
    assert_same_complex(fast, slow)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31), width=st.integers(1, 7), depth=st.integers(1, 3), scale=st.sampled_from([1, 3]),
       leaky=st.booleans())
def test_property_degenerate_nets_match_the_reference(seed, width, depth, scale, leaky):
    model = integer_mlp(seed, width, depth, scale, leaky)
    with pytest.MonkeyPatch.context() as monkeypatch:
        fast, slow = both_paths(model, CUBE, (0.0,), monkeypatch)
    assert_same_complex(fast, slow)


@pytest.mark.parametrize("model", [mlp([3, 12, 12, 2], "leaky_relu", seed=5).double(), integer_mlp(11, 6, 3, 3, False)])
def test_unit_by_unit_steps_and_lazy_start_values_match_the_reference(model, monkeypatch):
    # the paths large complexes take: the layer cut one unit per call (limits and progress between), and
    # each unit's start values computed when its cut meets them instead of kept for the layer
    with monkeypatch.context() as patch:
        patch.setattr(layercut_module, "STEPWISE_WORK", 0)
        patch.setattr(layercut_module, "START_VALUE_BYTES", 1)
        fast, slow = both_paths(model, CUBE, (0.0, 0.1), monkeypatch)
    assert fast.num_cells > 20
    assert_same_complex(fast, slow)


@pytest.mark.parametrize("model", [mlp([3, 12, 12, 1], seed=4).double(), integer_mlp(7, 5, 2, 1, True)])
def test_level_set_mesh_matches_the_reference(model, monkeypatch):
    cx = partition(model, CUBE)
    fast = cx.level_set(0.0)
    monkeypatch.setattr(mesh_module, "cut", cut_reference)
    slow = cx.level_set(0.0)
    assert len(fast.triangles) > 10
    assert np.array_equal(fast.vertices, slow.vertices) and np.array_equal(fast.triangles, slow.triangles)
    assert np.array_equal(fast.cells, slow.cells)


def real_state(seed=1):
    """The state of a small real complex."""
    cx = partition(mlp([3, 12, 12, 1], seed=seed).double(), CUBE)
    return cx, ComplexState(cx.points, cx.face_vertices, cx.face_offsets, cx.face_cells, cx.face_labels,
                            cx.num_cells)


@pytest.mark.parametrize("n", [1, 2, 5, 32])
def test_unit_values_match_numpy_and_interpolation_bit_for_bit(n):
    # each unit's values and limits, computed when it cuts, against NumPy's evaluation of all units at once
    # (vertex_values, as before) and the interpolation of every unit at every cut (as before)
    cx, state = real_state()
    rng = np.random.default_rng(n)
    A = rng.normal(size=(cx.num_cells, 4, n))
    A[::7, :, 0] = 0.0  # a unit vanishing on some cells: zero at all their vertices
    Z, limit = vertex_values(state, A, 1e-9)
    assert np.all(Z[cx._incidences()[cx._incidences()[:, 0] % 7 == 0, 1], 0] == 0)
    values = UnitValues(state, A, 1e-9)
    for unit in range(n):
        z, lim = values.row(unit)
        assert np.array_equal(z, Z[:, unit]) and np.array_equal(lim, limit[:, unit])
        lo, hi = rng.integers(0, len(Z), size=(2, 6))
        t = rng.random(6)
        values.extend((lo, hi, t), unit)
        new_Z = Z[lo] + t[:, None] * (Z[hi] - Z[lo])
        new_Z[:, unit] = 0.0
        Z, limit = np.concatenate([Z, new_Z]), np.concatenate([limit, np.maximum(limit[lo], limit[hi])])


def test_home_cells_are_a_cell_of_the_last_face_listing_the_vertex():
    cx, state = real_state(2)
    cells = cx.face_cells[np.repeat(np.arange(len(cx.face_cells)), np.diff(cx.face_offsets))]
    home = np.empty(len(cx.points), np.int64)
    home[cx.face_vertices] = np.where(cells[:, 0] >= 0, cells[:, 0], cells[:, 1])  # the last write wins
    assert np.array_equal(home_cells(state), home)


def test_edges_match_a_lexsort_of_every_face_edge():
    cx = partition(integer_mlp(3, 7, 2, 3, True), CUBE, levels=(0.0,))
    a = cx.face_vertices
    nxt = np.arange(1, len(a) + 1)
    nxt[cx.face_offsets[1:] - 1] = cx.face_offsets[:-1]
    pairs = np.unique(np.sort(np.stack([a, a[nxt]], 1), axis=1), axis=0)  # sorted by (lower, higher)
    assert len(pairs) > 50 and np.array_equal(cx.edges, pairs) and cx.edges.dtype == np.int64


@pytest.mark.parametrize("model", [mlp([3, 8, 8, 1], seed=6).double(), integer_mlp(5, 5, 2, 1, False)])
def test_recorded_vertex_signs_match_the_reference(model, monkeypatch):
    # the tiles' recorder sees, after every unit's cut, the same vertex signs and new vertices
    from netatlas.regions._tiles3d import VertexSigns
    from netatlas.regions._volume import build_complex, checked_volume_inputs

    net, layers, levels, cap, per_cell = checked_volume_inputs(model, CUBE, (0.0,), 0, 1e-10, None, None, None)
    n_columns = sum(W.shape[0] for W, _, _ in layers[:-1]) + len(levels)
    packed = []
    for reference in (False, True):
        with monkeypatch.context() as patch:
            if reference:
                patch.setattr(volume_module, "cut_layer", cut_layer_reference)
            recorder = VertexSigns(n_columns)
            build_complex(net, layers, CUBE, levels, 0, 1e-10, cap, per_cell, None, recorder=recorder)
            packed.append(recorder.packed())
    assert packed[0].shape[0] > 20 and np.array_equal(packed[0], packed[1])
