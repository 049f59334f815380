"""3-D complexes in tiles (partition(net, volume, tiles=k), issue 29 item 3): the whole complex's
counts, cells' volumes and level-set meshes assembled from the tiles equal the untiled complex's —
on random nets, on a slice through four inputs, and on degenerate integer nets whose planes run
through tile borders, tile edges and tile corners — and the sign vectors they rest on name every
face of a complex exactly once (NOTE [tiles in 3-D])."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import netatlas
from netatlas import Volume
from netatlas.nets import mlp
from netatlas.regions import RegionLimitError, TiledComplex3D, partition
from netatlas.regions._tiles3d import VertexSigns, face_signs, tile_volumes, tiled_volume_partition
from netatlas.regions._volume import build_complex, checked_volume_inputs

CUBE = Volume.cube(1.0)


def torch_mlp(Ws, bs, slope):
    layers = []
    for W, b in zip(Ws, bs, strict=True):
        lin = torch.nn.Linear(W.shape[1], W.shape[0]).double()
        with torch.no_grad():
            lin.weight.copy_(torch.as_tensor(W))
            lin.bias.copy_(torch.as_tensor(b))
        layers += [lin, torch.nn.LeakyReLU(slope) if slope else torch.nn.ReLU()]
    return torch.nn.Sequential(*layers[:-1])


def median_output(model, volume, seed=0):
    """A level the output crosses inside the volume (the median at random points)."""
    points = np.random.default_rng(seed).uniform(-1, 1, (2000, 3)) * (volume.upper - volume.lower) / 2
    points += (volume.upper + volume.lower) / 2
    with torch.no_grad():
        out = model(torch.as_tensor(volume.to_input(points))).numpy()
    return float(np.median(out[:, 0]))


def assert_same_complex(model, volume, tiles, levels, mesh_cells=True):
    """The tiled figures equal the untiled complex's: V, E, F, C exactly, the cells' volumes and the
    level-set area up to the round-off of their sums, watertightness; the tiled complex itself (cut by
    the tile planes) is a subdivided box too. ``mesh_cells``: the meshes' triangles lie in the same cells
    (a polygon on a face between two cells names one of them: on a tile plane, either may be named)."""
    whole = partition(model, volume, levels=levels)
    if tiles == 1:  # partition(..., tiles=1) is the untiled run; the tiled path in one tile
        tiled = tiled_volume_partition(model, volume, 1, levels=levels)
    else:
        tiled = partition(model, volume, levels=levels, tiles=tiles)
    assert isinstance(tiled, TiledComplex3D)
    assert (tiled.n_vertices, tiled.n_edges, tiled.n_faces, tiled.num_cells) == (
        len(whole.vertices), len(whole.edges), len(whole.face_cells), whole.num_cells)
    assert tiled.euler_characteristic() == 1
    V, E, F, C = tiled.tiled_counts
    assert V - E + F - C == 1 and C == tiled.tile_cells.sum() and C >= tiled.num_cells
    # each cell's volume is a sum of at most tiles^3 pieces: round-off of a few terms of the box's volume
    eps = 64 * np.finfo(float).eps * volume.volume
    np.testing.assert_allclose(np.sort(tiled.volumes), np.sort(whole.volumes), rtol=0, atol=eps)
    assert abs(tiled.volumes.sum() - volume.volume) <= eps
    for value in levels:
        mesh, stitched = whole.level_set(value), tiled.level_set(value)
        assert abs(stitched.area - mesh.area) <= 1e-12 * (1 + mesh.area)
        assert stitched.is_watertight() == mesh.is_watertight()
        # every triangle names the cell it lies in: the same cells (by volume) as the untiled mesh's
        assert ((stitched.cells >= 0) & (stitched.cells < tiled.num_cells)).all()
        if mesh_cells:
            np.testing.assert_allclose(tiled.volumes[np.unique(stitched.cells)].sum(),
                                       whole.volumes[np.unique(mesh.cells)].sum(), rtol=1e-12)
    return whole, tiled


# -- degenerate cases first -----------------------------------------------------------------------
def test_one_tile_and_an_affine_net():
    model = mlp([3, 6, 1], seed=0)
    assert_same_complex(model, CUBE, 1, (0.0,))
    affine = torch_mlp([np.array([[1.0, 0.0, 0.0]])], [np.array([-0.2])], 0.0)  # the plane x = 0.2
    whole, tiled = assert_same_complex(affine, CUBE, 3, (0.0,))
    assert tiled.num_cells == 2 and tiled.tiled_counts[3] == 27 + 9  # it cuts the 9 tiles of the middle slab


def test_tile_grid_shares_each_plane():
    vol = Volume.box((-0.3, 0.1, 0.0), (0.4, 0.8, 1.0 / 3))
    tiles = tile_volumes(vol, 3)
    assert len(tiles) == 27 and tiles[1][0] == (1, 0, 0) and tiles[3][0] == (0, 1, 0)
    for (i, j, k), tile in tiles:
        for a, idx in enumerate((i, j, k)):
            if idx < 2:  # the next tile along axis a starts where this one ends, the same float
                step = (1, 3, 9)[a]
                assert tiles[i + 3 * j + 9 * k + step][1].bounds[2 * a] == tile.bounds[2 * a + 1]
    assert sum(t.volume for _, t in tiles) == pytest.approx(vol.volume, rel=1e-14)


def test_units_through_tile_planes_edges_and_corners():
    # planes x = 0, y = 0, x = y, x + y + z = 0 and z = 1/2 (a tile plane for 4 tiles) on [-1, 1]^3
    W1 = np.array([[1, 0, 0], [0, 1, 0], [1, -1, 0], [1, 1, 1], [0, 0, 2]], float)
    b1 = np.array([0, 0, 0, 0, -1], float)
    W2 = np.array([[1, -1, 1, 0, 1], [0, 1, 1, -1, 0], [1, 1, 1, 1, 1]], float)
    b2 = np.array([0, -1, -1], float)
    W3, b3 = np.array([[1, -1, 1]], float), np.array([-0.5])
    model = torch_mlp([W1, W2, W3], [b1, b2, b3], 0.0)
    for tiles in (2, 4):
        assert_same_complex(model, CUBE, tiles, (0.0,))


def test_unit_vanishing_on_whole_tiles():
    # the second layer's first unit is relu(x) - relu(x) = 0 everywhere: it cuts nothing in any tile
    W1, b1 = np.array([[1.0, 0, 0], [1, 0, 0], [0, 1, 0]]), np.zeros(3)
    W2, b2 = np.array([[1.0, -1, 0], [0, 1, 1]]), np.array([0.0, -0.5])
    model = torch_mlp([W1, W2, np.array([[1.0, 1.0]])], [b1, b2, np.array([-0.25])], 0.0)
    assert_same_complex(model, CUBE, 2, (0.0,))


def test_output_flat_at_the_level_in_tiles_off_centre():
    # an integer net whose output is 0 on whole cells: at the tiles' centres (+-2/3) its computed map there is
    # round-off (-2e-16), snapped to an exact zero level function as at the cube's centre (level side 0)
    rng = np.random.default_rng(154)
    sizes = [3, 4, 4, 1]
    Ws = [rng.integers(-1, 2, size=(sizes[i + 1], sizes[i])).astype(float) for i in range(3)]
    bs = [rng.integers(-1, 2, size=sizes[i + 1]).astype(float) for i in range(3)]
    whole, _ = assert_same_complex(torch_mlp(Ws, bs, 0.0), CUBE, 3, (0.0,))
    assert (whole.level_sides[:, 0] == 0).sum() == 2


# -- random and trained-like nets -------------------------------------------------------------------
@pytest.mark.parametrize("seed, widths, tiles", [(0, [3, 10, 10, 10, 1], 2), (1, [3, 10, 10, 10, 1], 3),
                                                 (2, [3, 16, 16, 1], 4), (3, [3, 8, 8, 8, 8, 1], 3)])
def test_random_nets_equal_untiled(seed, widths, tiles):
    model = mlp(widths, seed=seed).double()
    assert_same_complex(model, CUBE, tiles, (median_output(model, CUBE),))


def test_leaky_and_off_centre_box_and_two_levels():
    model = mlp([3, 12, 12, 1], "leaky_relu", seed=4).double()
    vol = Volume.box((-0.7, -0.2, 0.1), (0.5, 0.9, 0.6))
    mid = median_output(model, vol)
    assert_same_complex(model, vol, 3, (mid, mid + 0.05))


def test_volume_through_four_inputs_of_a_wider_net():
    model = mlp([6, 12, 12, 1], seed=5).double()
    vol = Volume.through(*np.random.default_rng(5).normal(size=(4, 6)))
    assert_same_complex(model, vol, 2, (median_output(model, vol),))


def test_without_levels_there_is_no_mesh():
    tiled = partition(mlp([3, 8, 1], seed=0), CUBE, tiles=2)
    assert tiled.levels == () and tiled.meshes == ()
    with pytest.raises(ValueError, match="built without levels"):
        tiled.level_set()
    d = tiled.to_dict()
    assert d["euler_characteristic"] == 1 and d["tiles"] == 2 and d["total_volume"] == pytest.approx(8.0)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31), width=st.integers(1, 6), depth=st.integers(1, 3), thirds=st.booleans(),
       leaky=st.booleans(), tiles=st.sampled_from([2, 3, 4]))
def test_property_degenerate_integer_nets(seed, width, depth, thirds, leaky, tiles):
    # weights and biases in {-1, 0, 1} (or thirds): planes through tile borders (x = 0 for 2 and 4 tiles,
    # x = 1/3 for 3), tile edges and corners, coincident and parallel planes, dead and duplicated units
    rng = np.random.default_rng(seed)
    sizes = [3] + [width] * depth + [1]
    Ws = [rng.integers(-1, 2, size=(sizes[i + 1], sizes[i])) / (3 if thirds else 1) for i in range(depth + 1)]
    bs = [rng.integers(-1, 2, size=sizes[i + 1]) / (3 if thirds else 1) for i in range(depth + 1)]
    assert_same_complex(torch_mlp(Ws, bs, 0.1 if leaky else 0.0), CUBE, tiles, (0.0,), mesh_cells=False)


# -- the sign vectors -----------------------------------------------------------------------------------
def _signs(model, volume, levels=()):
    net, layers, levels, cap, per_cell = checked_volume_inputs(model, volume, levels, 0, 1e-10, None, None, None)
    recorder = VertexSigns(sum(W.shape[0] for W, _, _ in layers[:-1]) + len(levels))
    cx = build_complex(net, layers, volume, levels, 0, 1e-10, cap, per_cell, None, recorder=recorder)
    return cx, face_signs(cx, recorder.packed())


@pytest.mark.parametrize("seed", [0, 1])
def test_sign_vectors_name_every_face_once(seed):
    # on the untiled complex, the distinct sign vectors of each dimension are its V, E, F and C
    model = mlp([3, 8, 8, 1], seed=seed).double()
    cx, rows = _signs(model, CUBE, (median_output(model, CUBE),))
    counts = [len(np.unique(r[:, :-1], axis=0)) for r in rows]
    assert counts == [len(cx.points), len(cx.edges), len(cx.face_cells), cx.num_cells] == [len(r) for r in rows]
    # a cell's positive bits are its pattern (and level side), its negative bits the units off on it
    n_bytes = (rows[3].shape[1] - 2) // 2
    columns = cx.n_units + 1
    positive = np.unpackbits(rows[3][:, :n_bytes], axis=1, bitorder="little")[:, :columns].astype(bool)
    negative = np.unpackbits(rows[3][:, n_bytes:2 * n_bytes], axis=1, bitorder="little")[:, :columns].astype(bool)
    np.testing.assert_array_equal(positive, np.c_[cx.patterns, cx.level_sides > 0])
    np.testing.assert_array_equal(negative, np.c_[~cx.patterns, cx.level_sides < 0])


def test_vertex_signs_follow_the_cuts():
    # a vertex a cut makes is 0 for its unit; for the earlier ones it has its edge's signs (the OR of its ends':
    # never opposite, that edge would have been cut)
    recorder = VertexSigns(3, n_vertices=2)
    recorder(0, np.array([1, 0], np.int8), (np.zeros(0, int), np.zeros(0, int), np.zeros(0)))
    recorder(1, np.array([1, -1, 0], np.int8), (np.array([0]), np.array([1]), np.array([0.5])))
    bits = recorder.packed()  # (V, 2): positive bits, negative bits of columns 0..2
    assert bits.shape == (3, 2)
    assert bits[:, 0].tolist() == [0b11, 0b00, 0b01] and bits[:, 1].tolist() == [0b00, 0b10, 0b00]
    with pytest.raises(AssertionError, match="do not follow"):
        recorder(2, np.zeros(5, np.int8), (np.array([0]), np.array([1]), np.array([0.5])))
    recorder.check(3, [0, 1])
    with pytest.raises(AssertionError, match=r"expected columns \[2\]"):  # a cut the build did not report
        recorder.check(3, [0, 1, 2])


# -- limits and errors --------------------------------------------------------------------------------
def test_max_regions_stops_the_tiled_run():
    model = mlp([3, 16, 16, 1], seed=0)
    n = partition(model, CUBE).num_cells
    with pytest.raises(RegionLimitError, match="max_regions"):
        partition(model, CUBE, tiles=2, max_regions=n // 2)
    assert partition(model, CUBE, tiles=2, max_regions=n).num_cells == n


def test_errors_name_what_is_wrong():
    model = mlp([3, 4, 1], seed=0)
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="tiles must be an integer >= 1"):
            partition(model, CUBE, tiles=bad)
    with pytest.raises(ValueError, match="takes no client or method='graph'"):
        partition(model, CUBE, tiles=2, method="graph")
    tiled = partition(model, CUBE, tiles=2, levels=(0.0,))
    with pytest.raises(ValueError, match=r"one of the levels \[0.0\]"):
        tiled.level_set(0.5)
    assert tiled.level_set(0.0) is tiled.level_set()
    assert "TiledComplex3D(num_cells=" in repr(tiled)
    assert netatlas.regions.TiledComplex3D is TiledComplex3D
