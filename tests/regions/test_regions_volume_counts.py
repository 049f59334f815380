"""The compiled per-cell figures of a 3-D complex (``_cutkernel.cell_vertices``, ``cell_volumes``,
``unique_edges``) against the NumPy code they replace (kept here as the reference): the same arrays,
bit for bit, on random, trained and degenerate nets."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from test_regions_volume_kernels import integer_mlp

from netatlas import Volume
from netatlas.nets import mlp
from netatlas.regions import partition
from netatlas.regions._cutkernel import cell_vertices, cell_volumes, unique_edges

CUBE = Volume.cube(1.0)


def trained_sdf(seed=0, steps=150):
    """A 3-16-16-1 ReLU net fitted (Adam) to the signed distance of a sphere of radius 0.3."""
    torch.manual_seed(seed)
    model = mlp([3, 16, 16, 1], seed=seed).double()
    x = torch.rand(2048, 3, dtype=torch.float64) - 0.5
    target = x.norm(dim=1, keepdim=True) - 0.3
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(steps):
        opt.zero_grad()
        loss = ((model(x) - target) ** 2).mean()
        loss.backward()
        opt.step()
    return model


def incidences_reference(cx):
    """The distinct (cell, vertex) pairs sorted by (cell, vertex): a lexsort of every face entry per cell."""
    face = np.repeat(np.arange(len(cx.face_offsets) - 1), np.diff(cx.face_offsets))
    cells = np.concatenate([cx.face_cells[face, 0], cx.face_cells[face, 1]])
    verts = np.concatenate([cx.face_vertices, cx.face_vertices])
    keep = cells >= 0
    cells, verts = cells[keep], verts[keep]
    order = np.lexsort((verts, cells))
    cells, verts = cells[order], verts[order]
    first = np.ones(len(cells), bool)
    first[1:] = (cells[1:] != cells[:-1]) | (verts[1:] != verts[:-1])
    return np.stack([cells[first], verts[first]], 1)


def volumes_reference(cx, centroids):
    """Cone volumes from the centroids over the faces' fan triangles, NumPy sums (bincount per side)."""
    off, fv = cx.face_offsets, cx.face_vertices
    n_tri = np.diff(off) - 2
    face = np.repeat(np.arange(len(n_tri)), n_tri)
    k = np.arange(n_tri.sum()) - np.repeat(np.cumsum(n_tri) - n_tri, n_tri) + 1
    tri = np.stack([fv[off[face]], fv[off[face] + k], fv[off[face] + k + 1]], 1)
    vol = np.zeros(cx.num_cells)
    for j in range(2):
        c = cx.face_cells[face, j]
        keep = c >= 0
        p = cx.points[tri[keep]] - centroids[c[keep]][:, None, :]
        det = np.abs(np.einsum("ij,ij->i", p[:, 0], np.cross(p[:, 1], p[:, 2]))) / 6
        vol += np.bincount(c[keep], weights=det, minlength=cx.num_cells)
    return vol


def einsum_sums_first_and_third_first():
    """Whether this NumPy sums a three-term dot product as (first + third) + second (its SIMD pairs)."""
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(2, 4096, 3))
    p = a * b
    return np.array_equal(np.einsum("ij,ij->i", a, b), (p[:, 0] + p[:, 2]) + p[:, 1])


def assert_figures_match(cx):
    pairs = cell_vertices(cx.face_vertices, cx.face_offsets, cx.face_cells, cx.num_cells)
    reference = incidences_reference(cx)
    assert pairs.dtype == np.int64 and np.array_equal(pairs, reference)
    assert np.array_equal(cx._incidences(), reference)
    centroids = cx._centroids()
    volumes = cell_volumes(cx.points, cx.face_vertices, cx.face_offsets, cx.face_cells, centroids, cx.num_cells)
    reference = volumes_reference(cx, centroids)
    if einsum_sums_first_and_third_first():
        assert np.array_equal(volumes, reference)
    # on any machine: each cone's determinant differs by the round-off of two orders of three terms
    assert np.allclose(volumes, reference, rtol=1e-12, atol=1e-15)
    assert np.array_equal(cx.volumes, volumes)
    a = cx.face_vertices
    nxt = np.arange(1, len(a) + 1)
    nxt[cx.face_offsets[1:] - 1] = cx.face_offsets[:-1]
    edges = np.unique(np.sort(np.stack([a, a[nxt]], 1), axis=1), axis=0)
    assert np.array_equal(unique_edges(cx.face_vertices, cx.face_offsets, len(cx.points)), edges)


#: Random, leaky with two levels, trained and integer (degenerate) nets on 3 inputs, with their levels.
NETS = [
    (mlp([3, 16, 16, 16, 1], seed=1).double(), (0.0,)),
    (mlp([3, 10, 10, 2], "leaky_relu", seed=2).double(), (-0.1, 0.2)),
    (trained_sdf(), (0.0,)),
    (integer_mlp(4, 6, 3, 3, False), (0.0,)),
    (integer_mlp(9, 7, 2, 1, True), ()),
]


@pytest.mark.parametrize("model, levels", NETS)
def test_cell_figures_match_the_numpy_reference(model, levels):
    cx = partition(model, CUBE, levels=levels)
    assert cx.num_cells > 10
    assert_figures_match(cx)
    assert abs(cx.volumes.sum() - CUBE.volume) < 1e-9 * CUBE.volume


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**31), width=st.integers(1, 7), depth=st.integers(1, 3), scale=st.sampled_from([1, 3]),
       leaky=st.booleans())
def test_property_degenerate_nets_cell_figures_match(seed, width, depth, scale, leaky):
    assert_figures_match(partition(integer_mlp(seed, width, depth, scale, leaky), CUBE, levels=(0.0,)))


def cells_on_one_side_reference(state, signs):
    """The NumPy code ``_mesh._cells_on_one_side`` replaced (reduceat per face, ufunc.at per cell)."""
    off, fv = state.face_offsets, state.face_vertices
    top = np.maximum.reduceat(signs[fv], off[:-1])
    bottom = np.minimum.reduceat(signs[fv], off[:-1])
    cell_top = np.zeros(state.n_cells, np.int8)
    cell_bottom = np.zeros(state.n_cells, np.int8)
    for j in range(2):
        cells = state.face_cells[:, j]
        inside = cells >= 0
        np.maximum.at(cell_top, cells[inside], top[inside])
        np.minimum.at(cell_bottom, cells[inside], bottom[inside])
    if np.any((cell_top > 0) & (cell_bottom < 0)):
        return None
    return cell_top + cell_bottom


@pytest.mark.parametrize("model, levels, value", [
    (trained_sdf(1), (0.0,), 0.0),
    (trained_sdf(2), (), 0.0),
    (mlp([3, 10, 10, 1], seed=3).double(), (0.1,), 0.1),
    (integer_mlp(5, 6, 2, 1, False), (0.0,), 0.0),
    (integer_mlp(6, 5, 2, 3, True), (), 0.0),
])
def test_mesh_steps_match_the_numpy_reference(model, levels, value):
    from netatlas.regions._mesh import _cells_on_one_side
    from netatlas.regions._subdivide import ComplexState, vertex_values

    cx = partition(model, CUBE, levels=levels)
    state = ComplexState(cx.points, cx.face_vertices, cx.face_offsets, cx.face_cells, cx.face_labels, cx.num_cells)
    A = cx.maps[:, :, :1].copy()
    A[:, 3] -= value
    Z, limit = vertex_values(state, A, cx.tolerance * cx.diameter)
    signs = np.where(np.abs(Z[:, 0]) <= limit[:, 0], 0, np.sign(Z[:, 0])).astype(np.int8)
    got, want = _cells_on_one_side(state, signs), cells_on_one_side_reference(state, signs)
    assert (got is None) == (want is None) and (got is None or np.array_equal(got, want))
    if value in levels:  # built with the level: already cut by it
        assert got is not None
    mesh = cx.level_set(value)
    t = mesh.triangles
    pairs = np.sort(np.concatenate([t[:, [0, 1]], t[:, [1, 2]], t[:, [2, 0]]]), axis=1)
    edges, counts = np.unique(pairs, axis=0, return_counts=True)
    got_edges, got_counts = mesh._edge_counts()
    assert np.array_equal(got_edges, edges) and np.array_equal(got_counts, counts)
    assert mesh.is_watertight()
