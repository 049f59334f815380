"""Half-edge topology, vertex activations and edge lengths of a 2-D partition (issue 29, item 5): the planar
graph against the exact rational reference's (vertices, edges and the regions on either side, Fractions),
Euler's V - E + F = 1 on every kind of partition, the units that change across each edge, and each
vertex's activations and edge's length against forward passes at the vertices (to their round-off)."""

import math
from fractions import Fraction as Fr

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from regions_exact import exact_net, exact_regions, exact_topology, min_clearance
from test_regions_chain_residual import _max_net
from test_regions_degenerate import _plane, degenerate_nets, rational_planes
from test_regions_max import _build, three_inputs
from test_regions_skipchain import CASES as SKIP_CASES
from test_regions_skipchain import _net as _residual

from netatlas import Plane
from netatlas.nets import from_torch, mlp, zoo
from netatlas.regions import VERTEX_MERGE_TOLERANCE, partition
from netatlas.regions._affine import magnitude_net
from netatlas.regions._roundoff import EPS, roundings


def roundoff_bound(net, plane, uv, node):
    """Bound (P, n) on the round-off of node ``node``'s value at plane points ``uv`` (P, 2), however it is
    computed (a forward pass, or a region's affine map evaluated there): K eps S with K the roundings along
    the deepest path (``_roundoff.roundings``) plus the three of the map's evaluation, and S the magnitude
    of the terms summed (the net with absolute weights on |x_c| + |u| |d1| + |v| |d2|); times 2 for the two
    computations compared."""
    mags = magnitude_net(net)
    umin, umax, vmin, vmax = plane.bounds
    centre = np.array([(umin + umax) / 2, (vmin + vmax) / 2])
    d1, d2 = np.abs(plane.d1.ravel()), np.abs(plane.d2.ravel())
    x_c = np.abs(plane.origin.ravel() + centre[0] * plane.d1.ravel() + centre[1] * plane.d2.ravel())
    rel = np.abs(uv - centre)
    x = x_c + rel[:, :1] * d1 + rel[:, 1:] * d2 + np.abs(plane.to_input(uv).reshape(len(uv), -1))
    S = mags.forward_all(torch.as_tensor(x))[node].numpy()
    return 2 * (roundings(net)[node] + 3) * EPS * S


def check_graph(part):
    """What every partition's planar graph satisfies, whatever the net."""
    edges, faces = part.edges, part.edge_faces
    V, E, F = len(part.vertices), len(edges), part.num_regions
    assert V - E + F == 1 == part.euler_characteristic()
    assert (edges[:, 0] != edges[:, 1]).all()
    assert len({tuple(sorted(e)) for e in edges.tolist()}) == E  # no edge twice
    # window edges and only they have the outside on their right
    assert np.array_equal(faces[:, 1] == -1, part.edge_unit < 0)
    assert np.array_equal(part.edge_layer == -1, part.edge_unit < 0)
    # each region's edges run around it counter-clockwise: consecutive, closed, and enclosing its area
    xy = part.vertices
    for f, ids in enumerate(part.face_edges):
        runs = np.where((faces[ids, 0] == f)[:, None], edges[ids], edges[ids][:, ::-1])
        assert np.array_equal(runs[:, 1], np.roll(runs[:, 0], -1))
        p, q = xy[runs[:, 0]], xy[runs[:, 1]]
        area = float((p[:, 0] * q[:, 1] - q[:, 0] * p[:, 1]).sum() / 2)
        assert abs(area - part.areas[f]) <= 16 * len(ids) * EPS * part.diameter**2
    # the edges around each vertex: each edge at both of its ends, counter-clockwise by direction
    around = part.vertex_edges
    assert sum(len(a) for a in around) == 2 * E
    for v in range(0, V, max(1, V // 50)):
        ids = around[v]
        assert ((edges[ids] == v).sum(1) == 1).all()
        other = np.where(edges[ids, 0] == v, edges[ids, 1], edges[ids, 0])
        angle = np.arctan2(*(xy[other] - xy[v]).T[::-1])
        assert (np.diff(angle) >= 0).all()
    # neighbors() pairs are edges' pairs
    pairs = {tuple(sorted(p)) for p in faces[faces[:, 1] >= 0].tolist()}
    assert {tuple(p) for p in part.neighbors().pairs.tolist()} <= pairs


def check_edge_units(part, plane):
    """Across an edge its own unit's bit (or arg-max) changes; a unit of another layer changes only where it
    vanishes along the edge (its zero set contains the edge: it vanishes on a whole region on one side, NOTE
    [vanishing units], or shares the edge's line), never on generic nets. Returns how many such changes."""
    from netatlas.regions._topology import edge_nodes

    net = part.net
    inner = np.flatnonzero(part.edge_faces[:, 1] >= 0)
    a, b = part.edge_faces[inner].T
    unit, layer = part.edge_unit[inner], part.edge_layer[inner]
    state = np.concatenate([part.patterns.astype(np.int64), part.argmax], axis=1)
    differ = state[a] != state[b]
    assert differ[np.arange(len(unit)), unit].all()
    column_layer = edge_nodes(part, np.arange(state.shape[1]))
    edge, column = np.nonzero(differ & (column_layer[None, :] != layer[:, None]))
    if not len(edge):
        return 0
    # the unit is 0 at the edge's midpoint (a max's two arg-maxes tie there): to round-off, plus its slope
    # over the distance within which the midpoint is on the edge's line (the vertices' merge tolerance)
    middle = part.vertices[part.edges[inner[edge]]].mean(axis=1)
    values = net.forward_all(torch.as_tensor(plane.to_input(middle)))
    n_bits = part.patterns.shape[1]
    for node in np.unique(column_layer[column]):
        pick = column_layer[column] == node
        rows, col = np.flatnonzero(pick), column[pick]
        pre = net.nodes[node].inputs[0]
        bound = roundoff_bound(net, plane, middle[rows], pre)
        z = values[pre].numpy()[rows]
        r, within = np.arange(len(rows)), col - np.flatnonzero(column_layer == node)[0]  # unit of that node
        if col[0] < n_bits:  # an activation: the unit's pre-activation
            gap, tol = np.abs(z[r, within]), bound[r, within]
        else:  # a Max: the entries its two arg-maxes pick
            index = net.nodes[node].op.index.numpy()
            pa = index[within, part.argmax[a[edge[pick]], col - n_bits]]
            pb = index[within, part.argmax[b[edge[pick]], col - n_bits]]
            gap, tol = np.abs(z[r, pa] - z[r, pb]), bound[r, pa] + bound[r, pb]
        slope = tol / (2 * EPS)  # S bounds the terms of the slope too
        assert (gap <= tol + VERTEX_MERGE_TOLERANCE * part.diameter * slope).all(), node
    return len(edge)


# -- the exact reference --------------------------------------------------------------------------
def assert_graph_matches_exact(Ws, bs, bounds, method, plane=None):
    """Vertices, edges and the regions on either side of each equal the exact reference's: each float vertex
    within 1e-9 of the diagonal of one exact vertex (one to one), and the half-edges (i -> j with the region
    on their left) the same."""
    exact = exact_regions(Ws, bs, bounds, 0, plane)
    vertices, runs = exact_topology(exact)
    net = exact_net([np.array(W, dtype=object).astype(float) for W in Ws],
                    [np.array(b, dtype=object).astype(float) for b in bs])
    part = partition(net, _plane(bounds, plane), method=method)
    check_graph(part)
    check_edge_units(part, part.plane)
    exact_xy = np.array(vertices, dtype=object).astype(float)
    gap = np.linalg.norm(part.vertices[:, None] - exact_xy[None], axis=2)
    match = gap.argmin(1)
    assert len(part.vertices) == len(vertices) and len(set(match.tolist())) == len(vertices)
    assert (gap.min(1) <= 1e-9 * part.diameter).all()
    pattern = [bytes(p) for p in part.patterns.astype(np.uint8)]
    mine = {}
    for (i, j), (left, right) in zip(part.edges.tolist(), part.edge_faces.tolist(), strict=True):
        mine[(match[i], match[j])] = pattern[left]
        if right >= 0:
            mine[(match[j], match[i])] = pattern[right]
    assert mine == {k: bytes(p) for k, p in runs.items()}
    return part


GENERIC = ([[[1, 2], [-1, 1], [2, -1]], [[1, -1, 1], [0, 1, 1], [1, 1, -1]], [[1, 1, 1]]],
           [[0, Fr(1, 3), Fr(-1, 2)], [Fr(1, 5), 0, -1], [0]], (Fr(-1), Fr(1), Fr(-1, 2), Fr(3, 2)))


@pytest.mark.parametrize("method", ["chain", "graph"])
def test_graph_of_a_small_net_is_the_exact_one(method):
    part = assert_graph_matches_exact(*GENERIC, method)
    assert len(part.edges) > 20 and set(part.edge_layer.tolist()) == {-1, 2, 4}
    # unit 4 = relu(z_2) + relu(z_3) vanishes where both are off: it changes across their edges there
    assert check_edge_units(part, part.plane) > 0


@pytest.mark.parametrize("method", ["chain", "graph"])
@settings(max_examples=30, deadline=None)
@given(net=degenerate_nets(), plane=rational_planes())
def test_property_graphs_of_degenerate_nets_are_the_exact_ones(net, method, plane):
    """Duplicated, negated, zero and dead units (NOTE [vanishing units]): still the exact graph."""
    Ws, bs, bounds = net
    assume(min_clearance(Ws, bs, bounds, 0, plane) > 1e-6)
    assert_graph_matches_exact(Ws, bs, bounds, method, plane)


# -- Euler and the units across edges on every kind of partition ----------------------------------
def _mlp():
    return from_torch(mlp([2, 16, 16, 16, 3], seed=0))


def _leaky_hardtanh():
    return from_torch(torch.nn.Sequential(torch.nn.Linear(2, 12), torch.nn.LeakyReLU(0.2), torch.nn.Linear(12, 12),
                                          torch.nn.Hardtanh(), torch.nn.Linear(12, 2)).double())


def _cnn_plane():
    return _build(1, "maxpool2"), Plane.through(*[0.35 * a for a in three_inputs((1, 5, 5), 1)])


PARTITIONS = {
    "mlp": lambda: partition(_mlp()),
    "mlp-graph": lambda: partition(_mlp(), method="graph"),
    "mlp-tiles": lambda: partition(_mlp(), Plane.square(1.3), tiles=3),
    "mlp-disc": lambda: partition(_mlp(), Plane.disc((0.2, 0.1), 0.8, n_sides=100)),
    "mlp-polygon": lambda: partition(_mlp(), Plane.polygon([[0, -1], [1, 0], [0.2, 1], [-1, 0.3]])),
    "mlp-upto": lambda: partition(_mlp(), upto="3"),
    "leaky-hardtanh": lambda: partition(_leaky_hardtanh()),
    # a max over the chain's outputs (node 6), on the chain path
    "chain-max": lambda: partition(_max_net(0, [2, 8, 8, 6], n_windows=2), Plane.square(4.0)),
    # residual MLPs (regioncam's 2-16-[res 16]x3-3; skips from the input): the skip-chain path
    "residual": lambda: partition(_residual(0, *SKIP_CASES["regioncam 2-16-[res 16]x3-3"])),
    "residual-input-skip": lambda: partition(_residual(1, *SKIP_CASES["skip from the input"]),
                                             Plane.disc((0, 0), 1.0, n_sides=60)),
    "maxpool": lambda: partition(*_cnn_plane()),
    "maxpool-disc": lambda: (lambda net, plane: partition(net, Plane.disc((0, 0), 0.5, n_sides=64, plane=plane)))(
        *_cnn_plane()),
    "resnet": lambda: partition(from_torch(zoo.resnet_tiny(width=2, seed=0), (1, 8, 8)),
                                Plane.through(*three_inputs((1, 8, 8), 1)).zoom(0.3)),
}


@pytest.mark.parametrize("name", sorted(PARTITIONS))
def test_every_partition_is_a_planar_graph(name):
    part = PARTITIONS[name]()
    check_graph(part)
    changes = check_edge_units(part, part.plane)
    # generic nets: no other unit changes across an edge; a max pool after ReLUs ties where they are all 0
    assert changes == 0 or name == "resnet"
    layers = set(part.edge_layer.tolist())
    assert -1 in layers and layers - {-1} <= set(part.net.nonlinear)
    if name == "chain-max":
        assert part.method == "chain" and 6 in layers


def test_tiled_graph_is_the_untiled_one():
    net = from_torch(mlp([2, 16, 16, 3], seed=1))
    whole, tiled = partition(net), partition(net, tiles=3)
    assert len(tiled.vertices) == len(whole.vertices) and len(tiled.edges) == len(whole.edges)
    np.testing.assert_allclose(np.sort(whole.edge_length("1")), np.sort(tiled.edge_length("1")), rtol=0,
                               atol=1e-12)
    assert np.array_equal(np.sort(whole.edge_layer), np.sort(tiled.edge_layer))


# -- per-vertex activations and edge lengths ------------------------------------------------------
def _mlp_case():
    net = from_torch(mlp([4, 12, 12, 12, 3], seed=5))
    g = torch.Generator().manual_seed(0)
    plane = Plane.through(*(torch.randn(4, generator=g, dtype=torch.float64).numpy() for _ in range(3)))
    return net, Plane.disc((0.05, 0.0), 0.9, n_sides=48, plane=plane)


@pytest.mark.parametrize("method", ["chain", "graph"])
def test_vertex_activations_are_the_forward_values(method):
    net, plane = _mlp_case()
    part = partition(net, plane, method=method)
    x = torch.as_tensor(plane.to_input(part.vertices))
    values = net.forward_all(x)
    for layer in ["0", "1", "2", "3", 6, "#7", "output"]:
        node = len(net.nodes) - 1 if layer == "output" else net.layer(layer)
        mine = part.vertex_activations(layer)
        assert mine.shape == (len(part.vertices), net.nodes[node].size)
        bound = roundoff_bound(net, plane, part.vertices, node)
        assert (np.abs(mine - values[node].numpy()) <= bound).all(), layer
    # the pre-activation of an edge's unit vanishes at both its ends: they lie on its zero line up to the
    # merge of the vertices' copies (VERTEX_MERGE_TOLERANCE of the diagonal, times the unit's gradient)
    for k, node in enumerate(net.activations):
        pre = net.nodes[node].inputs[0]
        on = np.flatnonzero(part.edge_layer == node)
        unit = part.edge_unit[on] - sum(part.units_per_layer[:k])
        grad = np.linalg.norm(part.layer_maps(pre, part.edge_faces[on, 0])[np.arange(len(on)), :2, unit], axis=1)
        z, bound = part.vertex_activations(pre), roundoff_bound(net, plane, part.vertices, pre)
        for v in part.edges[on].T:
            assert (np.abs(z[v, unit]) <= bound[v, unit] + VERTEX_MERGE_TOLERANCE * part.diameter * grad).all()


@pytest.mark.parametrize("method", ["chain", "graph"])
def test_edge_length_is_the_distance_of_the_ends_images(method):
    """The image of an edge under an affine map is the segment between its ends' images: its length is the
    norm of the difference of the layer's values at the ends (forward passes), to their round-off."""
    net, plane = _mlp_case()
    part = partition(net, plane, method=method)
    x = torch.as_tensor(plane.to_input(part.vertices))
    values = net.forward_all(x)
    a, b = part.edges.T
    for layer in ["1", "3", "5", "output"]:
        node = len(net.nodes) - 1 if layer == "output" else net.layer(layer)
        y = values[node].numpy()
        ref = np.linalg.norm(y[b] - y[a], axis=1)
        bound = roundoff_bound(net, plane, part.vertices, node)
        tol = np.linalg.norm(bound[a], axis=1) + np.linalg.norm(bound[b], axis=1)
        length = part.edge_length(layer)
        assert length.shape == (len(part.edges),)
        assert (np.abs(length - ref) <= 2 * tol).all(), layer
    # in input space (the plane's own directions), lengths are the edges' lengths times the map's stretch
    step = part.vertices[b] - part.vertices[a]
    native = np.linalg.norm(step @ plane.basis.T, axis=1)
    first = net.nodes[1].op  # the first Linear: W (x_b - x_a)
    np.testing.assert_allclose(part.edge_length(1), np.linalg.norm((step @ plane.basis.T) @ first.weight.numpy().T,
                                                                   axis=1), rtol=1e-12, atol=1e-15 * native.max())


def test_edge_length_in_input_units_on_the_input_plane():
    """On the input space itself, the first Linear of an identity-first net measures Euclidean length."""
    lin = torch.nn.Linear(2, 2).double()
    with torch.no_grad():
        lin.weight.copy_(torch.eye(2))
        lin.bias.zero_()
    net = from_torch(torch.nn.Sequential(lin, torch.nn.Linear(2, 6), torch.nn.ReLU(), torch.nn.Linear(6, 1)).double())
    part = partition(net, Plane.disc((0, 0), 1.0, n_sides=30))
    a, b = part.edges.T
    np.testing.assert_allclose(part.edge_length("0"), np.linalg.norm(part.vertices[b] - part.vertices[a], axis=1),
                               rtol=4 * EPS, atol=0)
    window = part.edge_layer == -1  # the window's 30 sides, split where units meet them
    assert math.isclose(part.edge_length("0")[window].sum(), 30 * 2 * math.sin(math.pi / 30), rel_tol=1e-13)


def test_layers_after_an_upto_partition_are_refused():
    net = from_torch(mlp([2, 4, 4, 1], seed=0))
    part = partition(net, upto="1")
    assert part.vertex_activations("1").shape == (len(part.vertices), 4)
    with pytest.raises(ValueError, match=r"Partition.edge_length: no layer named '3'.*made with upto= holds the"):
        part.edge_length("3")
    with pytest.raises(ValueError, match="Partition.vertex_activations: no layer named 'fc'"):
        part.vertex_activations("fc")


def test_t_junctions_split_the_longer_side():
    """Faces given with a T-junction (vertex 7 on face 0's side 4 -> 5, not one of its corners): the side is
    two edges, one per face across it, and every count follows (NOTE [T-junctions])."""
    from netatlas.regions._topology import half_edges

    uv = np.array([[0, 0], [1, 0], [1, 1], [0, 1], [.5, 0], [.5, 1], [1, .5], [.5, .5]])
    index = np.array([0, 4, 5, 3, 4, 1, 6, 7, 7, 6, 2, 5])
    labels = np.array([-1, 0, -3, -4, -1, -2, 1, 0, 1, -2, -3, 0])
    g = half_edges(uv, index, np.array([0, 4, 8, 12]), labels, 1e-9)
    assert len(g.edges) == 10 and len(uv) - len(g.edges) + 3 == 1
    assert np.diff(g.face_offsets).tolist() == [5, 4, 4]  # face 0 runs 0 -> 4 -> 7 -> 5 -> 3
    runs = g.edges[g.face_edge_ids[:5]]
    assert [set(r) for r in runs.tolist()] == [{0, 4}, {4, 7}, {7, 5}, {5, 3}, {3, 0}]
    around = g.vertex_edge_ids[g.vertex_offsets[7]:g.vertex_offsets[8]]  # to 6 (east), 5 (north), 4 (south)
    other = [int(e[0] if e[1] == 7 else e[1]) for e in g.edges[around]]
    assert other == [4, 6, 5]  # counter-clockwise by angle from -pi: south, east, north
