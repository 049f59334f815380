"""The partition after any layer (issue 29, item 5): ``partition(net, plane, upto=layer)`` against the exact
rational reference of the net cut there, grid sampling of the net's patterns up to that layer, and the
refinement by later layers."""

from fractions import Fraction as Fr

import numpy as np
import pytest
import torch
from regions_exact import exact_net, exact_regions
from test_regions_max import _build, three_inputs
from test_regions_topology import roundoff_bound

from netatlas import Plane
from netatlas.nets import from_torch, mlp
from netatlas.regions import partition

METHODS = ["chain", "graph"]
Ws = [[[1, 2], [-1, 1], [2, -1]], [[1, -1, 1], [0, 1, 1], [1, 1, -1]], [[1, -2, 1], [1, 1, 1]], [[1, -1]]]
bs = [[0, Fr(1, 3), Fr(-1, 2)], [Fr(1, 5), 0, -1], [Fr(1, 7), Fr(-1, 4)], [0]]
BOUNDS = (Fr(-1), Fr(1), Fr(-1, 2), Fr(3, 2))


def _net():
    return exact_net([np.array(W, dtype=object).astype(float) for W in Ws],
                     [np.array(b, dtype=object).astype(float) for b in bs])


def _identity(n):
    return [[int(i == j) for j in range(n)] for i in range(n)], [0] * n


def _assert_same(part, exact, n_out):
    """Same regions, patterns, areas and maps as the exact reference (to 1e-9 of their scale, as in
    test_regions_degenerate: the float net holds the rationals rounded to float64)."""
    mine = {row.tobytes(): i for i, row in enumerate(part.patterns.astype(np.uint8))}
    theirs = {bytes(r.pattern): r for r in exact}
    assert part.num_regions == len(exact) and mine.keys() == theirs.keys()
    assert part.output_linear.shape[1] == n_out
    scale = 1.0 + max(float(abs(x)) for r in exact for x in [*np.ravel(r.linear), *r.offset])
    for key, r in theirs.items():
        i = mine[key]
        assert abs(part.areas[i] - float(r.area)) <= 1e-9 * part.plane.area
        np.testing.assert_allclose(part.output_linear[i], np.array(r.linear, float), rtol=0, atol=1e-9 * scale)
        np.testing.assert_allclose(part.output_offset[i], np.array(r.offset, float), rtol=0, atol=1e-9 * scale)


@pytest.mark.parametrize("method", METHODS)
def test_after_each_activation_matches_the_exact_cut_net(method):
    """After the k-th ReLU (modules "1", "3", "5"; nodes 2, 4, 6) the regions are those of the first k layers
    and each region's map is that ReLU's output: the exact reference with an identity output layer."""
    net = _net()
    plane = Plane.window(tuple(float(b) for b in BOUNDS))
    for k, name in enumerate(["1", "3", "5"], start=1):
        eye, zero = _identity(len(bs[k - 1]))
        exact = exact_regions(Ws[:k] + [eye], bs[:k] + [zero], BOUNDS)
        part = partition(net, plane, upto=name, method=method)
        assert part.net.nodes[-1].name == name and len(part.units_per_layer) == k
        _assert_same(part, exact, len(bs[k - 1]))


@pytest.mark.parametrize("method", METHODS)
def test_after_an_affine_layer_gives_the_pre_activations(method):
    """After the second Linear (module "2", node 3): only the first layer's units split, the maps are the
    second layer's pre-activations (exactly the reference with that layer as output)."""
    net = _net()
    plane = Plane.window(tuple(float(b) for b in BOUNDS))
    for upto in ("2", 3, "#3"):
        part = partition(net, plane, upto=upto, method=method)
        _assert_same(part, exact_regions(Ws[:2], bs[:2], BOUNDS), 3)
    first = partition(net, plane, upto="0")  # the first Linear: no unit splits the window
    assert first.num_regions == 1 and first.areas[0] == plane.area


def test_output_is_the_whole_net():
    net = _net()
    whole, out = partition(net), partition(net, upto="output")
    assert out.net is net and np.array_equal(whole.patterns, out.patterns) and np.array_equal(whole.maps, out.maps)
    last = partition(net, upto="6")  # the last Linear by name: the net itself
    assert last.net is net


def test_earlier_partitions_are_coarsenings_and_match_grid_patterns():
    """Each region of the full partition lies in the region of the partition after layer k whose pattern is
    its own first columns; on a grid, every clear point's region has the net's pattern up to layer k."""
    net = from_torch(mlp([2, 10, 10, 10, 2], seed=4))
    plane = Plane.disc((0.0, 0.0), 1.2)
    full = partition(net, plane)
    counts = []
    for k, node in enumerate(net.activations, start=1):
        part = partition(net, plane, upto=node)
        n = part.patterns.shape[1]
        assert n == 10 * k
        at = part.locate(full.centroids())
        assert np.array_equal(part.patterns[at], full.patterns[:, :n])
        np.testing.assert_allclose(np.bincount(at, weights=full.areas, minlength=part.num_regions), part.areas,
                                   rtol=0, atol=64 * np.finfo(float).eps * plane.area)
        us, vs = plane.grid(60)
        uv = np.stack([us.ravel(), vs.ravel()], 1)
        region = part.locate(uv)
        z = np.concatenate([t.numpy() for t in net.pre_activations(plane.to_input(uv))[:k]], axis=1)
        clear = (region >= 0) & (np.abs(z).min(1) > 1e-7)
        assert clear.sum() > 1000
        assert np.array_equal(part.patterns[region[clear]], z[clear] > 0)
        # the regions' maps are the k-th activation's values
        values = net.forward_all(torch.as_tensor(plane.to_input(uv[clear])))[node].numpy()
        bound = roundoff_bound(net, plane, uv[clear], node)
        assert (np.abs(part.outputs(uv[clear], region[clear]) - values) <= bound).all()
        counts.append(part.num_regions)
    assert counts == sorted(counts) and counts[-1] == full.num_regions


def test_upto_on_the_graph_path_and_tiles():
    net = _build(1, "maxpool2")
    plane = Plane.through(*[0.35 * a for a in three_inputs((1, 5, 5), 1)])
    pool = [i for i in net.nonlinear if type(net.nodes[i].op).__name__ == "Max"][0]
    part = partition(net, plane, upto=pool)
    assert part.method == "graph" and part.argmax.shape[1] > 0 and len(part.net.nodes) == pool + 1
    full = partition(net, plane)
    at = part.locate(full.centroids())
    assert np.array_equal(part.patterns[at], full.patterns[:, :part.patterns.shape[1]])
    mlp_net = from_torch(mlp([2, 8, 8, 1], seed=0))
    tiled, whole = partition(mlp_net, upto="1", tiles=2), partition(mlp_net, upto="1")
    assert tiled.num_regions == whole.num_regions and tiled.net is whole.net


def test_upto_names_are_checked():
    net = _net()
    with pytest.raises(ValueError, match="partition: upto: no layer named 'fc9'; layers: "):
        partition(net, upto="fc9")
    with pytest.raises(ValueError, match="partition: upto: no layer named 0"):
        partition(net, upto=0)  # the input is no layer


def test_upto_on_a_volume():
    """A 3-D complex after the second Linear: cut by the first layer's units only, the coarsening of the
    whole complex; a cut ending in an activation (the 3-D graph path) has the same cells, its maps the
    activation's outputs."""
    from netatlas import Volume

    net = from_torch(mlp([3, 6, 6, 1], seed=0))
    first, whole = partition(net, Volume.cube(1.0), upto="2"), partition(net, Volume.cube(1.0))
    assert first.patterns.shape[1] == 6 and first.num_cells < whole.num_cells
    at = first.locate(whole.centroids())
    assert np.array_equal(first.patterns[at], whole.patterns[:, :6])
    after_relu = partition(net, Volume.cube(1.0), upto="1")
    assert after_relu.num_cells == first.num_cells and after_relu.n_outputs == 6
    points = np.random.default_rng(0).uniform(-1, 1, (300, 3))
    hidden = np.maximum(points @ net.nodes[1].op.weight.numpy().T + net.nodes[1].op.bias.numpy(), 0.0)
    np.testing.assert_allclose(after_relu.outputs(points), hidden, rtol=0, atol=1e-13 * (1 + hidden.max()))
