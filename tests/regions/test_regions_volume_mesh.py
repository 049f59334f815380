"""Exact level-set meshes of 3-D complexes (issue 29, item 2): closed forms, the torch forward pass at
the mesh's points, watertightness, files, and marching cubes (scikit-image) converging to the mesh."""

import math

import numpy as np
import pytest
import torch
from regions_exact import exact_net
from scipy.spatial import cKDTree

from netatlas import Volume
from netatlas.nets import mlp
from netatlas.regions import Mesh, partition

CUBE = Volume.cube(1.0)


def octahedron_net(radius=0.5):
    """|u| + |v| + |w| - radius as a ReLU net: |t| = relu(t) + relu(-t)."""
    W1 = np.concatenate([np.eye(3), -np.eye(3)])
    return exact_net([W1, np.ones((1, 6))], [np.zeros(6), [-radius]])


def output_at(model, points):
    with torch.no_grad():
        return model(torch.as_tensor(points, dtype=torch.float64)).numpy()


def mesh_euler(mesh):
    edges = np.unique(np.sort(np.concatenate([mesh.triangles[:, [0, 1]], mesh.triangles[:, [1, 2]],
                                              mesh.triangles[:, [2, 0]]]), axis=1), axis=0)
    return len(mesh.vertices) - len(edges) + len(mesh.triangles)


@pytest.mark.parametrize("levels", [(), (0.0,)])
def test_octahedron_closed_form(levels):
    cx = partition(octahedron_net(0.5), CUBE, levels=levels)
    mesh = cx.level_set(0.0)
    # eight equilateral triangles of side 0.5 sqrt 2
    assert mesh.area == pytest.approx(8 * math.sqrt(3) / 4 * 0.5, rel=1e-12)
    assert mesh.is_watertight() and len(mesh.boundary_edges()) == 0
    assert mesh_euler(mesh) == 2  # a sphere
    np.testing.assert_allclose(np.abs(mesh.vertices).sum(1), 0.5, rtol=0, atol=1e-15)
    # oriented outwards: the output grows away from the origin
    p = mesh.vertices[mesh.triangles]
    normal = np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0])
    assert np.all(np.einsum("ij,ij->i", normal, p.mean(1)) > 0)


@pytest.mark.parametrize("seed", [0, 1, 5])
def test_level_set_is_exact_and_watertight(seed):
    model = mlp([3, 16, 16, 1], seed=seed).double()
    samples = output_at(model, np.random.default_rng(0).uniform(-1, 1, (500, 3)))
    value = float(np.median(samples))  # a level the output crosses
    cx = partition(model, CUBE)
    mesh = cx.level_set(value)
    assert mesh.n_triangles > 0 and mesh.is_watertight()
    scale = 1 + float(sum(p.detach().abs().sum() for p in model.parameters()))
    atol = 1e3 * np.finfo(float).eps * scale
    np.testing.assert_allclose(output_at(model, mesh.vertices)[:, 0], value, rtol=0, atol=atol)
    np.testing.assert_allclose(output_at(model, mesh.vertices[mesh.triangles].mean(1))[:, 0], value, rtol=0, atol=atol)
    # the same surface from the complex refined by the level (then made of the complex's faces)
    refined = partition(model, CUBE, levels=(value,))
    again = refined.level_set(value)
    assert again.area == pytest.approx(mesh.area, rel=1e-9) and again.is_watertight()
    assert len(again.vertices) == len(mesh.vertices)
    # the rim lies on the box
    rim = mesh.vertices[np.unique(mesh.boundary_edges())]
    assert np.all(np.isclose(np.abs(rim), 1.0, rtol=0, atol=1e-12).any(1))


def test_empty_level_and_bad_arguments():
    cx = partition(octahedron_net(0.5), CUBE)
    mesh = cx.level_set(100.0)
    assert isinstance(mesh, Mesh) and mesh.n_triangles == 0 and mesh.area == 0.0 and mesh.is_watertight()
    with pytest.raises(ValueError, match="output must be an index"):
        cx.level_set(0.0, output=1)
    with pytest.raises(ValueError, match="finite"):
        cx.level_set(float("nan"))


def test_ply_and_obj_round_trip(tmp_path):
    mesh = partition(octahedron_net(0.5), CUBE).level_set(0.0)
    mesh.to_ply(tmp_path / "s.ply")
    mesh.to_obj(tmp_path / "s.obj")
    lines = (tmp_path / "s.ply").read_text().splitlines()
    end = lines.index("end_header")
    assert f"element vertex {len(mesh.vertices)}" in lines and f"element face {mesh.n_triangles}" in lines
    verts = np.array([[float(x) for x in line.split()] for line in lines[end + 1:end + 1 + len(mesh.vertices)]])
    tris = np.array([[int(x) for x in line.split()] for line in lines[end + 1 + len(mesh.vertices):]])
    np.testing.assert_array_equal(verts, mesh.vertices)
    np.testing.assert_array_equal(tris[:, 1:], mesh.triangles)
    assert np.all(tris[:, 0] == 3)
    obj = (tmp_path / "s.obj").read_text().splitlines()
    faces = np.array([[int(x) for x in line.split()[1:]] for line in obj if line.startswith("f ")])
    np.testing.assert_array_equal(faces - 1, mesh.triangles)


def _surface_samples(vertices, triangles, spacing, rng):
    """Points on the triangles, at most ``spacing`` from every point of them (a barycentric grid)."""
    p = vertices[triangles]
    longest = np.linalg.norm(p - np.roll(p, 1, axis=1), axis=2).max(1)
    out = []
    for tri, length in zip(p, longest, strict=True):
        n = max(1, math.ceil(length / spacing))
        i, j = np.meshgrid(np.arange(n + 1), np.arange(n + 1), indexing="ij")
        keep = i + j <= n
        a, b = i[keep] / n, j[keep] / n
        out.append(tri[0] + a[:, None] * (tri[1] - tri[0]) + b[:, None] * (tri[2] - tri[0]))
    return np.concatenate(out)


def test_marching_cubes_converges_to_the_exact_surface():
    measure = pytest.importorskip("skimage.measure")
    model = mlp([3, 24, 24, 1], seed=7).double()
    value = float(np.median(output_at(model, np.random.default_rng(0).uniform(-1, 1, (500, 3)))))
    exact = partition(model, CUBE, levels=(value,)).level_set(value)
    rng = np.random.default_rng(0)
    spacing = 0.004
    exact_points = _surface_samples(exact.vertices, exact.triangles, spacing, rng)
    distances = []
    for n in (12, 24, 48):
        g = np.linspace(-1, 1, n)
        h = g[1] - g[0]
        grid = np.stack(np.meshgrid(g, g, g, indexing="ij"), -1).reshape(-1, 3)
        f = output_at(model, grid)[:, 0].reshape(n, n, n)
        verts, faces, _, _ = measure.marching_cubes(f, value, spacing=(h, h, h))
        verts -= 1.0
        mc_points = _surface_samples(verts, faces, spacing, rng)
        # symmetric Hausdorff distance, each side measured to points within `spacing` of the surface
        d = max(cKDTree(exact_points).query(verts)[0].max(), cKDTree(mc_points).query(exact.vertices)[0].max())
        # every marching-cubes vertex lies on a grid edge of a grid cube the surface crosses, and every
        # point of the surface in a grid cube with a sign change: within one cube diagonal both ways
        # (up to features smaller than a cube, which the grid misses)
        assert d <= math.sqrt(3) * h + spacing, (n, d, h)
        distances.append(d)
    assert distances[-1] < distances[0] / 2


def test_level_set_of_a_flat_region_is_its_boundary():
    # relu(-u) is 0 on the whole half-box u >= 0: the level set 0 is that solid, meshed as its boundary
    # inside the box (the square u = 0), not as every face inside it
    net = exact_net([[[-1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], [[1.0, 0.0]]], [[0.0, 0.0], [0.0]])
    cx = partition(net, CUBE, levels=(0.0,))
    assert (cx.level_sides[:, 0] == 0).sum() == 2  # u >= 0 is split by relu(v) into two flat cells
    mesh = cx.level_set(0.0)
    assert mesh.area == pytest.approx(4.0, rel=1e-12) and mesh.is_watertight()
    np.testing.assert_array_equal(mesh.vertices[:, 0], 0.0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_level_set_of_a_complex_cut_by_it_needs_no_cut(seed, monkeypatch):
    # built with levels=(value,), the complex is cut by the level already: the mesh comes from its faces
    # without cutting a copy, and equals the mesh of a cut (forced here)
    import netatlas.regions._mesh as mesh_module

    model = mlp([3, 16, 16, 1], seed=seed).double()
    value = float(np.median(output_at(model, np.random.default_rng(seed).uniform(-1, 1, (500, 3)))))
    cx = partition(model, CUBE, levels=(value,))
    cuts = []
    real_cut = mesh_module.cut
    monkeypatch.setattr(mesh_module, "cut", lambda *a: cuts.append(1) or real_cut(*a))
    fast = cx.level_set(value)
    assert not cuts and fast.n_triangles > 0
    monkeypatch.setattr(mesh_module, "_cells_on_one_side", lambda state, signs: None)
    slow = cx.level_set(value)
    assert cuts
    np.testing.assert_array_equal(fast.triangles, slow.triangles)
    np.testing.assert_array_equal(fast.vertices, slow.vertices)
    np.testing.assert_array_equal(fast.cells, slow.cells)
    # a level the complex was not cut by still cuts (a copy): the plane through a cycle of a cell's edges too
    other = cx.level_set(value + 0.01)
    assert other.is_watertight() and other.n_triangles > 0


def test_a_cell_with_both_signs_and_no_face_with_both_is_cut():
    # an octahedron cell whose equator (a cycle of its edges) is on the level: every face has vertices of one
    # sign and zeros, the cell both signs, so the level still cuts it
    from netatlas.regions._mesh import _cells_on_one_side
    from netatlas.regions._subdivide import ComplexState

    points = np.array([[1, 0, 0], [0, 1, 0], [-1, 0, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]], float)
    ring = [(0, 1), (1, 2), (2, 3), (3, 0)]
    faces = [(a, b, 4) for a, b in ring] + [(b, a, 5) for a, b in ring]
    state = ComplexState(points, np.array(faces).ravel(), np.arange(0, 25, 3), np.tile([0, -1], (8, 1)),
                         -np.ones(8, np.int64), 1)
    signs = np.array([0, 0, 0, 0, 1, -1], np.int8)
    assert _cells_on_one_side(state, signs) is None
    assert _cells_on_one_side(state, np.array([0, 0, 0, 0, 1, 0], np.int8)).tolist() == [1]
    assert _cells_on_one_side(state, np.zeros(6, np.int8)).tolist() == [0]
