"""A small net's repeated call writes into an earlier result's arrays when nothing holds them (``_smallchain``,
NOTE [spare arrays]). Every result equals the chain path's on a fresh net bit for bit, whatever was held, dropped or
interleaved (other nets, other planes, threads), and an array a caller still holds, or a view of it, is never
written to (a caller's own writes into it survive later calls)."""

import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from netatlas import Plane
from netatlas.nets import from_torch, mlp
from netatlas.regions import _prepared, _smallchain, _untiled, partition
from partition_arrays import arrays, assert_same, data_address

SQUARE, SKEW = Plane.square(1.0), Plane(np.array([0.3, -0.2]), np.array([1.0, 0.5]), np.array([0.0, 2.0]),
                                        (-3.0, 1.0, 0.0, 2.0))
MODELS = {"2-8-3": mlp([2, 8, 3], seed=0).eval(), "2-6-6-3": mlp([2, 6, 6, 3], seed=1).eval()}


def _pieces(part):
    """Every array of ``part`` a caller could hold alone (a multi-layer net's patterns are views of one block)."""
    return {"xy": part.xy, "offsets": part.offsets, "labels": part.labels, "maps": part.maps,
            "maps view": part.maps[1:], **{f"bits{k}": b for k, b in enumerate(part.pattern_bits)}}


def _fresh(name, plane):
    """The chain path's partition of a fresh net (the small path switched off for the call: its arrays made for it
    alone, by other kernels)."""
    with pytest.MonkeyPatch.context() as m:
        m.setattr(_untiled, "small_chain", lambda *args: None)
        return arrays(partition(from_torch(MODELS[name], (2,)), plane))


@pytest.mark.parametrize("name", sorted(MODELS))
def test_a_dropped_result_lends_its_arrays_to_the_next_call(name):
    net = from_torch(MODELS[name], (2,))
    want = _fresh(name, SQUARE)
    partition(net, SQUARE)  # the first run (the plan's shapes)
    addresses = {key: data_address(a) for key, a in _pieces(partition(net, SQUARE)).items()}  # dropped at once
    part = partition(net, SQUARE)
    assert {key: data_address(a) for key, a in _pieces(part).items()} == addresses  # the dropped result's memory
    assert_same(arrays(part), want, "into a dropped result's arrays")
    plan = _smallchain.kept_small_chain(_prepared.kept_facts(net), SQUARE, 1e-10)
    assert plan is not None and plan.spares[0][0] is plan.shapes


def test_a_loop_holding_its_latest_result_and_one_more_makes_no_arrays():
    """``part = partition(net, plane)`` in a loop holds the previous result during each call, and a benchmark may
    hold its best: the spare sets still give one free set, so the loop settles on arrays made before it."""
    net = from_torch(MODELS["2-8-3"], (2,))
    want = _fresh("2-8-3", SQUARE)
    best = part = partition(net, SQUARE)
    addresses = []
    for _ in range(12):
        part = partition(net, SQUARE)
        assert_same(arrays(part), want, "in the loop")
        assert not np.shares_memory(part.xy, best.xy)
        addresses.append(data_address(part.xy))
    assert len(set(addresses[-6:])) == 2 and addresses[-1] != addresses[-2]  # two sets, taken in turn
    plan = _smallchain.kept_small_chain(_prepared.kept_facts(net), SQUARE, 1e-10)
    assert len(plan.spares) <= _smallchain.SPARE_SETS


@pytest.mark.parametrize("name", sorted(MODELS))
def test_an_array_still_held_is_never_written_to(name):
    """Hold one array (or a view) of a result, mark it, drop the rest: later calls leave the mark and never share
    its memory; every result equals the fresh one."""
    net = from_torch(MODELS[name], (2,))
    want = _fresh(name, SQUARE)
    partition(net, SQUARE)
    for key in list(_pieces(partition(net, SQUARE))):
        held = _pieces(partition(net, SQUARE))[key]  # the Partition and its other arrays are dropped here
        held[...] = 7  # the caller's own values
        for _ in range(3):
            part = partition(net, SQUARE)
            assert_same(arrays(part), want, f"{key} held")
            assert not any(np.shares_memory(held, a) for a in _pieces(part).values()), key
        assert (held == 7).all(), f"{key} was written to"


def test_interleaved_nets_and_planes_give_fresh_results():
    nets = {name: from_torch(model, (2,)) for name, model in MODELS.items()}
    want = {(name, k): _fresh(name, plane) for name in MODELS for k, plane in enumerate((SQUARE, SKEW))}
    kept = []
    for step in range(12):
        name, k = sorted(MODELS)[step % 2], (step // 2) % 2
        part = partition(nets[name], (SQUARE, SKEW)[k])
        assert_same(arrays(part), want[name, k], f"step {step}")
        if step % 3 == 0:
            kept.append((name, k, part))  # held while later calls run
    for name, k, part in kept:
        assert_same(arrays(part), want[name, k], f"{name} plane {k}, kept")


def test_threads_calling_one_small_net_never_share_an_array():
    """Several threads on one net and plane: results held together never share memory (the spare arrays are taken
    out of the plan in one step), and every one equals the fresh result."""
    name = "2-6-6-3"
    want = _fresh(name, SQUARE)
    net = from_torch(MODELS[name], (2,))
    partition(net, SQUARE)

    def run(k):
        kept = []
        for i in range(200):
            part = partition(net, SQUARE)  # dropped at once, except every 50th
            if i % 10 == 0:
                kept.append(part)
        return kept

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads switch between any two steps of the check and the take
    try:
        with ThreadPoolExecutor(4) as pool:
            results = [part for kept in pool.map(run, range(8)) for part in kept]
    finally:
        sys.setswitchinterval(interval)
    for i, part in enumerate(results):
        assert_same(arrays(part), want, f"thread result {i}")
        for other in results[i + 1:]:
            assert not any(np.shares_memory(a, b) for a in _pieces(part).values() for b in _pieces(other).values())
