"""Shapes the chain path took over from the graph path, against the graph path on the same nets: a
plain MLP ending in an activation (regioncam's ``Linear, ReLU``), including duplicated units and
leaky slopes; and the per-net facts a partition keeps between calls (``_prepared``)."""

import gc

import numpy as np
import pytest
import torch
from torch import nn

from netatlas import Plane
from netatlas.nets import from_torch
from netatlas.regions import partition
from netatlas.regions._prepared import _PREPARED, prepared


def _same_partition(a, b):
    """Same regions: counts, total area, and the multiset of (pattern, area) pairs up to round-off."""
    assert a.num_regions == b.num_regions
    np.testing.assert_allclose(a.areas.sum(), b.areas.sum(), rtol=1e-12)
    pa = np.packbits(a.patterns, axis=1)
    pb = np.packbits(b.patterns, axis=1)
    ka = sorted(zip(map(bytes, pa), np.round(a.areas, 9), strict=True))
    kb = sorted(zip(map(bytes, pb), np.round(b.areas, 9), strict=True))
    assert [k for k, _ in ka] == [k for k, _ in kb]
    np.testing.assert_allclose([s for _, s in ka], [s for _, s in kb], rtol=1e-9, atol=1e-12)


def _activation_last(seed, widths, act, duplicate=False):
    torch.manual_seed(seed)
    mods = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
        lin = nn.Linear(a, b)
        if duplicate and i == len(widths) - 2:
            with torch.no_grad():  # two equal units and one a positive multiple of another: same lines
                lin.weight[1] = lin.weight[0]
                lin.bias[1] = lin.bias[0]
                lin.weight[3] = 2.0 * lin.weight[2]
                lin.bias[3] = 2.0 * lin.bias[2]
        mods += [lin, nn.ReLU() if act == "relu" else nn.LeakyReLU(0.1)]
    return from_torch(nn.Sequential(*mods), (2,))


@pytest.mark.parametrize(("seed", "widths", "act", "duplicate"),
                         [(0, [2, 100], "relu", False), (1, [2, 12, 9], "relu", True),
                          (2, [2, 16, 8], "leaky_relu", False), (3, [2, 7], "leaky_relu", True)])
def test_mlp_ending_in_an_activation_takes_the_chain_path(seed, widths, act, duplicate):
    net = _activation_last(seed, widths, act, duplicate)
    plane = Plane.square(1.0)
    chain = partition(net, plane)
    graph = partition(net, plane, method="graph")
    assert chain.method == "chain" and graph.method == "graph"
    _same_partition(chain, graph)
    # the output maps are the activation's values: compare with the net at each region's centroid
    points = np.array([chain.polygon(r).mean(axis=0) for r in range(chain.num_regions)])
    want = net(torch.as_tensor(plane.to_input(points))).numpy()
    got = np.einsum("roi,ri->ro", chain.output_linear, points) + chain.output_offset
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def test_prepared_facts_are_per_net_and_dropped_with_it():
    net = _activation_last(0, [2, 5, 3], "relu")
    facts = prepared(net)
    assert prepared(net) is facts
    before = partition(net).num_regions
    assert facts.piecewise_linear_checked and ("partition_chain",) in facts._values
    other = _activation_last(1, [2, 5, 3], "relu")
    assert prepared(other) is not facts
    assert partition(net).num_regions == before  # cached facts give the same run
    n = len(_PREPARED)
    del net, facts
    gc.collect()
    assert len(_PREPARED) == n - 1


def _max_net(seed, widths, n_windows=1, duplicate=False, act="relu"):
    torch.manual_seed(seed)
    mods = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
        mods.append(nn.Linear(a, b))
        if i < len(widths) - 2:
            mods.append(nn.ReLU() if act == "relu" else nn.LeakyReLU(0.2))
    mods = [m.double() for m in mods]
    if duplicate:  # equal output units (an exact tie everywhere), and a unit equal to another up to round-off
        last = mods[-1]
        with torch.no_grad():
            last.weight[1], last.bias[1] = last.weight[0], last.bias[0]
            last.weight[3], last.bias[3] = last.weight[2] * (1 + 2**-50), last.bias[2] * (1 + 2**-50)
    n = widths[-1]
    pool = nn.AdaptiveMaxPool1d(n_windows) if n_windows == 1 else nn.MaxPool1d(n // n_windows)
    return from_torch(nn.Sequential(*mods, nn.Unflatten(1, (1, n)), pool, nn.Flatten()), (2,))


@pytest.mark.parametrize(("seed", "widths", "n_windows", "duplicate", "act"),
                         [(0, [2, 16, 12], 1, False, "relu"), (1, [2, 10, 10, 8], 1, True, "relu"),
                          (2, [2, 12, 8], 4, True, "leaky_relu"), (3, [2, 20, 6], 2, False, "relu"),
                          (4, [2, 8, 8, 16], 1, True, "leaky_relu")])
def test_max_over_a_chains_outputs_takes_the_chain_path(seed, widths, n_windows, duplicate, act):
    net = _max_net(seed, widths, n_windows, duplicate, act)
    plane = Plane.square(1.0)
    chain = partition(net, plane)
    graph = partition(net, plane, method="graph")
    assert chain.method == "chain" and graph.method == "graph"
    assert chain.max_units_per_layer == graph.max_units_per_layer == (n_windows,)
    assert chain.max_layer_names == graph.max_layer_names
    _same_partition(chain, graph)
    key = lambda p: sorted(zip(map(bytes, np.packbits(p.patterns, axis=1)), map(bytes, p.choices[0]),  # noqa: E731
                               np.round(p.areas, 9), strict=True))
    assert [k[:2] for k in key(chain)] == [k[:2] for k in key(graph)]
    if duplicate:  # the first of equal entries wins, so the duplicates' later copies are never chosen
        assert not np.isin(chain.choices[0][:, 0], [1, 3]).any() if n_windows == 1 else True
    points = np.array([chain.polygon(r).mean(axis=0) for r in range(chain.num_regions)])
    want = net(torch.as_tensor(plane.to_input(points))).numpy()
    got = np.einsum("roi,ri->ro", chain.output_linear, points) + chain.output_offset
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def test_first_partition_of_an_mlp_loads_no_sympy():
    """Start-up: building an MLP, importing it and partitioning it in a new process does not load sympy
    (torch's skip_init did: about a second before the first partition)."""
    import subprocess
    import sys

    code = ("import sys, netatlas; net = netatlas.nets.from_torch(netatlas.nets.mlp([2, 8, 8, 2], seed=0)); "
            "netatlas.regions.partition(net); print('sympy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=600)
    assert out.stdout.strip() == "False"
