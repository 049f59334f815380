"""Small MLPs in one compiled call (``_smallchain``, NOTE [small chain]) against the general chain path
(``_chain.chain_partition``, which the small path replaces): every field of the Partition bit for bit on
random, trained and degenerate nets and several windows, on the first call (through ``untiled_partition``)
and on repeated calls (``partition``'s kept plan); the small path engages where it applies, falls back to
the chain path when a level outgrows a chunk, and keeps the memory budget."""

import dataclasses

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from netatlas import Plane, RegionLimitError
from netatlas.nets import from_torch, mlp
from netatlas.regions import _chain, _smallchain, _untiled, partition


def _reference(model, plane, monkeypatch):
    """The chain path's partition of a fresh net (the small path switched off for the call)."""
    with monkeypatch.context() as m:
        m.setattr(_untiled, "small_chain", lambda *args: None)
        return partition(from_torch(model, (2,)), plane)


def _assert_identical(got, want):
    """Every dataclass field equal: arrays bit for bit with their dtypes and shapes, the rest by value."""
    assert set(vars(got)) == {f.name for f in dataclasses.fields(want)}
    for f in dataclasses.fields(want):
        a, b = getattr(got, f.name), getattr(want, f.name)
        if f.name in ("plane", "net", "_cache"):
            continue
        if isinstance(b, np.ndarray):
            assert a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b), f.name
        elif f.name in ("pattern_bits", "choices"):
            assert len(a) == len(b), f.name
            for x, y in zip(a, b, strict=True):
                assert x.dtype == y.dtype and x.shape == y.shape and np.array_equal(x, y), f.name
        else:
            assert a == b, f.name
    assert np.array_equal(got.areas, want.areas)


class _Counter:
    """Counts the calls of a real function (it still runs)."""

    def __init__(self, fn):
        self.fn, self.calls = fn, 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return self.fn(*args, **kwargs)


class _Runs(_Counter):
    """Counts the calls of ``rerun_small_chain`` that gave a partition or met an overflow (not a first run's
    call for the shapes, which returns ``RESIZED``, NOTE [refill])."""

    def __call__(self, *args):
        result = self.fn(*args)
        self.calls += result[0] != _smallchain.RESIZED
        return result


class _Counters:
    """The calls of several real functions together."""

    def __init__(self, *counters):
        self.counters = counters

    @property
    def calls(self):
        return sum(c.calls for c in self.counters)


def _spies(monkeypatch):
    """Counters of the small path's kernel runs (``run_small_chain``, or ``rerun_small_chain`` into arrays of
    known shapes) and of the chain path's runs."""
    run, rerun = _Counter(_smallchain.run_small_chain), _Runs(_smallchain.rerun_small_chain)
    chain = _Counter(_untiled.chain_partition)
    monkeypatch.setattr(_smallchain, "run_small_chain", run)
    monkeypatch.setattr(_smallchain, "rerun_small_chain", rerun)
    monkeypatch.setattr(_untiled, "chain_partition", chain)
    return _Counters(run, rerun), chain


def _trained(seed, widths=(2, 12, 12, 2)):
    torch.manual_seed(seed)
    model = mlp(list(widths), seed=seed)
    x = torch.rand(200, 2) * 2 - 1
    y = ((x[:, 0] * 3).sin() > x[:, 1]).long()
    opt = torch.optim.Adam(model.parameters(), lr=0.03)
    for _ in range(40):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    return model.eval()


def _degenerate(seed):
    """Duplicated units, a unit with no slope, a zero unit, lines through one point, a dead second layer unit."""
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(2, 9), nn.ReLU(), nn.Linear(9, 6), nn.ReLU(), nn.Linear(6, 3))
    with torch.no_grad():
        model[0].weight[3], model[0].bias[3] = model[0].weight[1], model[0].bias[1]
        model[0].weight[4] = 0.0
        model[0].weight[7], model[0].bias[7] = 0.0, 0.0
        model[0].bias[5] = model[0].bias[6] = 0.0
        model[2].weight[2] = model[2].weight[1] - model[2].weight[1]
        model[2].bias[2] = -10.0
    return model.eval()


NETS = {
    "2-8-3": lambda s: mlp([2, 8, 3], init="torch", seed=s),
    "2-100 relu": lambda s: nn.Sequential(nn.Linear(2, 100), nn.ReLU()),  # identity output: gated children
    "leaky-2-10-10-2": lambda s: mlp([2, 10, 10, 2], "leaky_relu", seed=s),
    "relu-2-40-40-3": lambda s: mlp([2, 40, 40, 3], seed=s),  # on-units next maps, fused child maps
    "deep-2-6x5-2": lambda s: mlp([2, 6, 6, 6, 6, 6, 2], seed=s),
    "one-layer": lambda s: mlp([2, 3], seed=s),  # no hidden layer
    "trained": _trained,
    "degenerate": _degenerate,
}
PLANES = {
    "square": Plane.square(1.0),
    "tiny": Plane.square(1e-3),
    "skew": Plane(np.array([0.3, -0.2]), np.array([1.0, 0.5]), np.array([0.0, 2.0]), (-3.0, 1.0, 0.0, 2.0)),
    "disc": Plane.disc((0.1, -0.2), 0.8),
}


@pytest.mark.parametrize("plane", list(PLANES))
@pytest.mark.parametrize("name", list(NETS))
def test_small_path_equals_chain_path_bit_for_bit(name, plane, monkeypatch):
    torch.manual_seed(0)
    model = NETS[name](0).eval()
    want = _reference(model, PLANES[plane], monkeypatch)
    kernel, chain = _spies(monkeypatch)
    net = from_torch(model, (2,))
    first, again = partition(net, PLANES[plane]), partition(net, PLANES[plane])
    assert (kernel.calls, chain.calls) == (2, 0)  # engaged on both calls, the chain path not run
    for got in (first, again):
        assert got.plane is PLANES[plane] and got.net is net
        _assert_identical(got, want)
    assert not np.shares_memory(first.maps, again.maps) and not np.shares_memory(first.xy, again.xy)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(widths=st.lists(st.integers(1, 24), min_size=1, max_size=3), n_out=st.integers(1, 4),
       activation=st.sampled_from(["relu", "leaky_relu"]), seed=st.integers(0, 2**16),
       half=st.sampled_from([1e-2, 1.0, 30.0]))
def test_small_path_equals_chain_path_on_random_nets(widths, n_out, activation, seed, half, monkeypatch):
    model = mlp([2, *widths, n_out], activation, seed=seed).eval()
    plane = Plane(np.array([0.1, -0.3]), np.array([1.0, 0.2]), np.array([-0.3, 1.0]), (-half, half, -half, 0.5 * half))
    want = _reference(model, plane, monkeypatch)
    net = from_torch(model, (2,))
    _assert_identical(partition(net, plane), want)
    _assert_identical(partition(net, plane), want)


def test_nets_whose_next_maps_take_blas_keep_the_chain_path(monkeypatch):
    """A leaky relu before a layer of more than SMALL_PRODUCT units: ``_chain`` multiplies by BLAS, which the
    kernel does not do (it may round otherwise inside numba), so no plan is made."""
    kernel, chain = _spies(monkeypatch)
    net = from_torch(mlp([2, 8, 48, 2], "leaky_relu", seed=0), (2,))
    partition(net, Plane.square(1.0)), partition(net, Plane.square(1.0))
    assert (kernel.calls, chain.calls) == (0, 2)


def test_a_level_past_one_chunk_falls_back_to_the_chain_path(monkeypatch):
    """Chunks of 4 children: the first layer's children overflow the kernel (NOTE [small chain]), the chain
    path (depth first, chunk by chunk) gives the result, and the plan is not tried again for that plane."""
    monkeypatch.setattr(_chain, "CHUNK_FACES", 4)
    model = mlp([2, 8, 6, 2], seed=1).eval()
    want = _reference(model, Plane.square(1.0), monkeypatch)
    kernel, chain = _spies(monkeypatch)
    net = from_torch(model, (2,))
    _assert_identical(partition(net, Plane.square(1.0)), want)
    assert (kernel.calls, chain.calls) == (1, 1)
    _assert_identical(partition(net, Plane.square(1.0)), want)
    assert (kernel.calls, chain.calls) == (1, 2)


def test_chain_kernels_switched_off_make_their_own_plan(monkeypatch):
    """``_chain.FUSED_KERNELS = False`` (the general child maps) changes the plan, not the result."""
    model = mlp([2, 8, 8, 3], seed=0).eval()
    net = from_torch(model, (2,))
    fused = partition(net, Plane.square(1.0))
    monkeypatch.setattr(_chain, "FUSED_KERNELS", False)
    want = _reference(model, Plane.square(1.0), monkeypatch)
    kernel, chain = _spies(monkeypatch)
    _assert_identical(partition(net, Plane.square(1.0)), want)
    _assert_identical(fused, want)
    assert (kernel.calls, chain.calls) == (1, 0)


def test_memory_budget_still_applies_to_small_nets(monkeypatch):
    """A budget that the first run of a plan exceeds stops every later run too (``SMALL_RESULT_BYTES``)."""
    kernel, _ = _spies(monkeypatch)
    net = from_torch(mlp([2, 8, 3], seed=0), (2,))
    monkeypatch.setenv("NETATLAS_MEMORY_BUDGET", "100")
    for _ in range(2):
        with pytest.raises(RegionLimitError, match="memory budget"):
            partition(net, Plane.square(1.0))
    assert kernel.calls == 2  # the small path ran and was stopped, both times
    monkeypatch.delenv("NETATLAS_MEMORY_BUDGET")
    assert partition(net, Plane.square(1.0)).num_regions > 0
    with pytest.raises(RegionLimitError, match="max_regions"):
        partition(net, Plane.square(1.0), max_regions=2)


@pytest.mark.parametrize("model", [mlp([2, 8, 8, 3], seed=0),  # the small path
                                   mlp([2, 8, 48, 2], "leaky_relu", seed=0),  # the chain path (BLAS next maps)
                                   nn.Sequential(nn.Linear(2, 6), nn.ReLU(), nn.Unflatten(1, (1, 6)),
                                                 nn.MaxPool1d(2), nn.Flatten(), nn.Linear(3, 2))])  # the graph path
def test_a_disc_after_a_square_of_the_same_bounding_box(model):
    """The kept set-up is keyed on the window's outline too: a disc inscribed in a square (the same bounds,
    origin and directions) right after the square gets its own regions, not the square's."""
    square, disc = Plane.square(1.0), Plane.disc((0.0, 0.0), 1.0, n_sides=64)
    assert square.bounds == disc.bounds
    model = model.eval()
    net = from_torch(model, (2,))
    partition(net, square)
    got, want = partition(net, disc), partition(from_torch(model, (2,)), disc)
    assert got.areas.sum() == pytest.approx(disc.area, rel=1e-12)
    _assert_identical(got, want)
