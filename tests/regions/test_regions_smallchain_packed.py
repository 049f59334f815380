"""A repeated small-net call runs ``rerun_small_chain`` on its plan's four arrays packed into one
(``_smallchain._refill_packed``, kept with the plan as ``plan.refill``): every result equals the chain path's
on a fresh net bit for bit, for nets of no, one and two hidden layers and planes of other frames."""

import numpy as np
import pytest

from netatlas import Plane
from netatlas.nets import from_torch, mlp
from netatlas.regions import _prepared, _smallchain, _untiled, partition
from partition_arrays import arrays

SQUARE, SKEW = Plane.square(1.0), Plane(np.array([0.3, -0.2]), np.array([1.0, 0.5]), np.array([0.0, 2.0]),
                                        (-3.0, 1.0, 0.0, 2.0))


@pytest.mark.parametrize("widths", [[2, 3], [2, 8, 3], [2, 6, 6, 3]])
@pytest.mark.parametrize("plane", [SQUARE, SKEW], ids=["square", "skew"])
def test_the_packed_kernel_gives_the_fresh_result(widths, plane):
    model = mlp(widths, seed=4).eval()
    with pytest.MonkeyPatch.context() as m:  # the chain path's partition (other kernels)
        m.setattr(_untiled, "small_chain", lambda *args: None)
        want = arrays(partition(from_torch(model, (2,)), plane))
    net = from_torch(model, (2,))
    for _ in range(4):
        got = arrays(partition(net, plane))
        assert got.keys() == want.keys()
        for key in want:
            assert got[key].dtype == want[key].dtype and np.array_equal(got[key], want[key]), key
    plan = _smallchain.kept_small_chain(_prepared.kept_facts(net), plane, 1e-10)
    assert plan.refill is not None  # the later calls took the packed kernel's entry point


def test_the_packed_arrays_hold_the_plans_four_bit_for_bit():
    net = from_torch(mlp([2, 6, 6, 3], seed=2).eval(), (2,))
    partition(net, SQUARE)
    plan = _smallchain.kept_small_chain(_prepared.kept_facts(net), SQUARE, 1e-10)
    ints, floats, data, index = plan.args
    head = plan.packed[:3].view(np.int64)
    assert tuple(head) == (len(ints), data.size, index.size)
    at = 3 + ints.size
    assert np.array_equal(plan.packed[3:at].view(np.int64), ints.ravel())
    assert np.array_equal(plan.packed[at:at + floats.size], floats.ravel())
    at += floats.size
    assert np.array_equal(plan.packed[at:at + data.size].view(np.int64), data.view(np.int64))  # NaNs and -0 too
    assert np.array_equal(plan.packed[at + data.size:].view(np.int64), index)
