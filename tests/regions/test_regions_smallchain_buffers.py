"""The small path's memory between calls (``_smallchain``, NOTE [maps pool]): a repeated call fills arrays of the
shapes its plan's previous run returned (``rerun_small_chain``), and nets with large output maps write them into a
pooled array that no result holds any more. Every result equals a fresh net's first call bit for bit, and no call
changes a result returned earlier, whatever is still held (the Partition, a view of its maps, nothing)."""

import dataclasses
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from torch import nn

from netatlas import Plane
from netatlas.nets import from_torch, mlp
from netatlas.regions import _prepared, _smallchain, _untiled, partition
from partition_arrays import arrays, assert_same, data_address

SQUARE, SKEW = Plane.square(1.0), Plane(np.array([0.3, -0.2]), np.array([1.0, 0.5]), np.array([0.0, 2.0]),
                                        (-3.0, 1.0, 0.0, 2.0))


def _relu_output(seed):
    """2-100 relu: no output layer, so the maps are the 100 units' (over 1,000 regions: a few MB, pooled)."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(2, 100), nn.ReLU()).eval()


def _plan(net, plane):
    return _smallchain.kept_small_chain(_prepared.kept_facts(net), plane, 1e-10)


def test_large_maps_are_pooled_and_a_dropped_result_lends_its_memory():
    model = _relu_output(0)
    want = arrays(partition(from_torch(model, (2,)), SQUARE))
    assert want["maps"].nbytes >= _smallchain.POOL_MIN_BYTES  # the case this test is about
    net = from_torch(model, (2,))
    first = partition(net, SQUARE)
    second = partition(net, SQUARE)  # the first is held: fresh memory
    assert not np.shares_memory(first.maps, second.maps)
    assert_same(arrays(first), want, "first")
    assert_same(arrays(second), want, "second")
    address = data_address(first.maps)
    del first  # nothing holds the first result's maps now
    third = partition(net, SQUARE)
    assert data_address(third.maps) == address  # written into the dropped result's array
    assert_same(arrays(third), want, "third")
    assert_same(arrays(second), want, "second, after the third")
    # a view of maps that were written into the pooled array holds it too (numba's result keeps its buffer)
    column = third.maps[:, 1]
    del third
    fourth = partition(net, SQUARE)
    assert not np.shares_memory(fourth.maps, column)
    assert np.array_equal(column, want["maps"][:, 1])
    del column, fourth
    assert data_address(partition(net, SQUARE).maps) == address  # free again once the view and the result are gone


@pytest.mark.parametrize("hold", ["view", "maps", "partition copy"])
def test_a_held_view_or_array_keeps_its_memory_from_later_calls(hold):
    model = _relu_output(1)
    net = from_torch(model, (2,))
    first = partition(net, SQUARE)
    want = arrays(first)
    kept = {"view": lambda p: p.maps[:, 0], "maps": lambda p: p.maps,
            "partition copy": dataclasses.replace}[hold](first)
    before = np.array(kept.maps if hold == "partition copy" else kept)
    del first
    results = [partition(net, SQUARE) for _ in range(2 * _smallchain.POOL_BUFFERS + 1)]
    held = kept.maps if hold == "partition copy" else kept
    assert np.array_equal(held, before)
    for part in results:
        assert not np.shares_memory(part.maps, held)
        assert_same(arrays(part), want, hold)


def test_two_nets_and_two_planes_interleaved_equal_fresh_calls():
    """Pooled (large maps) and refilled (small maps) nets, on alternating planes; every result kept and checked
    again at the end, so that no later call has changed an earlier result."""
    models = {"wide": _relu_output(2), "small": mlp([2, 8, 8, 3], seed=2).eval()}
    fresh = {(m, k): arrays(partition(from_torch(models[m], (2,)), plane))
             for m in models for k, plane in enumerate((SQUARE, SKEW))}
    nets = {m: from_torch(model, (2,)) for m, model in models.items()}
    kept = []
    for step, (m, k) in enumerate([("wide", 0), ("small", 0), ("wide", 1), ("small", 1), ("wide", 0), ("wide", 0),
                                   ("small", 0), ("small", 0), ("wide", 1), ("small", 1), ("wide", 0)]):
        part = partition(nets[m], (SQUARE, SKEW)[k])
        assert_same(arrays(part), fresh[m, k], f"step {step}")
        if step % 2 == 0:
            kept.append((m, k, part))  # every other result kept, the rest dropped at once
    for m, k, part in kept:
        assert_same(arrays(part), fresh[m, k], f"{m} plane {k}, kept")


def test_a_repeated_call_fills_arrays_of_the_previous_shapes_and_survives_other_shapes(monkeypatch):
    model = mlp([2, 8, 3], seed=0).eval()
    want = arrays(partition(from_torch(model, (2,)), SQUARE))
    calls = []
    rerun = _smallchain.rerun_small_chain
    monkeypatch.setattr(_smallchain, "rerun_small_chain", lambda *args: calls.append(args[4].shape) or rerun(*args))
    net = from_torch(model, (2,))
    assert_same(arrays(partition(net, SQUARE)), want, "first")
    plan = _plan(net, SQUARE)
    assert plan.shapes == (want["xy"].shape, want["offsets"].shape, want["labels"].shape, want["bits0"].shape,
                           want["maps"].shape)
    assert_same(arrays(partition(net, SQUARE)), want, "refilled")
    # the first run: the shapes (empty arrays), then into arrays of them; the repeated call: into arrays of them
    assert calls == [(0, 2), want["xy"].shape, want["xy"].shape]
    # shapes that are not the run's (as if the plan's result had changed): the kernel says so, the plan runs again
    plan.shapes = ((1, 2), (2,), (1,), (1, 1), (1, 3, 3))
    status = rerun(*plan.args, *(np.empty(s, d) for s, d in zip(plan.shapes, (float, np.int64, np.int64, np.uint8,
                                                                               float), strict=True)))[0]
    assert status == _smallchain.RESIZED
    assert_same(arrays(partition(net, SQUARE)), want, "after other shapes")
    assert plan.shapes[4] == want["maps"].shape


@pytest.mark.parametrize(("model", "bounded"), [(mlp([2, 8, 3], seed=0), True), (mlp([2, 3], seed=0), True),
                                                (nn.Sequential(nn.Linear(2, 100), nn.ReLU()), False)])
def test_a_first_run_takes_the_refill_kernel_when_its_maps_are_small_for_sure(model, bounded, monkeypatch):
    """NOTE [refill]: a bounded plan's first call asks the refill kernel for the shapes, then fills arrays of
    them; a plan whose last layer gates the output (no bound on its children) runs the allocating kernel."""
    calls = []
    for name in ("run_small_chain", "rerun_small_chain"):
        kernel = getattr(_smallchain, name)
        monkeypatch.setattr(_smallchain, name, lambda *args, k=kernel, n=name: calls.append(n) or k(*args))
    model = model.eval()
    part = partition(from_torch(model, (2,)), SQUARE)
    assert calls == (["rerun_small_chain"] * 2 if bounded else ["run_small_chain"])
    monkeypatch.undo()
    with monkeypatch.context() as m:  # the chain path's partition
        m.setattr(_untiled, "small_chain", lambda *args: None)
        want = partition(from_torch(model, (2,)), SQUARE)
    assert_same(arrays(part), arrays(want), "first run")


def test_threads_partitioning_one_pooled_net_never_share_an_array():
    """Calls from several threads on one net (as Dask's threaded tiles make): every result equal to the fresh one,
    no two results that are held at the same time in one array (the pool's check and take are one step)."""
    model = _relu_output(3)
    want = arrays(partition(from_torch(model, (2,)), SQUARE))
    net = from_torch(model, (2,))

    def run(k):
        kept = [partition(net, SQUARE) for _ in range(3)]  # held together
        for part in kept[1:]:
            assert not np.shares_memory(part.maps, kept[0].maps)
        return kept[-1] if k % 2 else None  # every other thread's last result outlives the threads

    with ThreadPoolExecutor(4) as pool:
        results = [r for r in pool.map(run, range(8)) if r is not None]
    for i, part in enumerate(results):
        assert_same(arrays(part), want, f"thread result {i}")
        assert not any(np.shares_memory(part.maps, other.maps) for other in results[i + 1:])
