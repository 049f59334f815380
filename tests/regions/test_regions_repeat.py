"""Repeated partitions of one net: the set-up kept between calls (``_prepared``: the plane in units of its
size, the chain's layers in their units, the vanishing-unit and max-tie bounds, kept for the latest plane)
gives the same partition, bit for bit, as a fresh net's first call, on every plane in any order; and a later
call never changes an earlier result (the sink keeps fresh batches without copying them, the output maps are
scaled in place)."""

import numpy as np
import pytest
import torch
from torch import nn

from netatlas import Plane
from netatlas.nets import from_torch, mlp
from netatlas.regions import partition


def _global_max(seed):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(2, 12), nn.ReLU(), nn.Linear(12, 6), nn.Unflatten(1, (1, 6)),
                         nn.AdaptiveMaxPool1d(1), nn.Flatten())


def _tied_max(seed):
    """A global max whose entries 1 and 4 are the same function (ties everywhere) and entry 2 is constant."""
    model = _global_max(seed)
    with torch.no_grad():
        model[2].weight[4] = model[2].weight[1]
        model[2].bias[4] = model[2].bias[1]
        model[2].weight[2] = 0.0
    return model


def _degenerate(seed):
    """Duplicated units, a unit with no slope, and one whose line passes through the origin with another."""
    torch.manual_seed(seed)
    lin = nn.Linear(2, 7)
    with torch.no_grad():
        lin.weight[3], lin.bias[3] = lin.weight[1], lin.bias[1]
        lin.weight[4] = 0.0
        lin.bias[5] = lin.bias[6] = 0.0
    return nn.Sequential(lin, nn.ReLU(), nn.Linear(7, 3))


BUILDERS = {
    "relu-2-8-3": lambda s: mlp([2, 8, 3], seed=s),
    "leaky-2-10-10-2": lambda s: mlp([2, 10, 10, 2], "leaky_relu", seed=s),
    "relu-output": lambda s: nn.Sequential(nn.Linear(2, 20), nn.ReLU()),  # identity output layer
    "one-layer": lambda s: mlp([2, 3], seed=s),  # no hidden layer: the plane's square alone
    "global-max": _global_max,
    "tied-max": _tied_max,
    "degenerate": _degenerate,
}

PLANES = [Plane.square(1.0), Plane.square(1e-3),
          Plane(np.array([0.3, -0.2]), np.array([1.0, 0.5]), np.array([0.0, 2.0]), (-3.0, 1.0, 0.0, 2.0)),
          Plane.square(1e4)]

FIELDS = ("xy", "offsets", "labels", "maps", "center")


def _arrays(part):
    out = {f: getattr(part, f).copy() for f in FIELDS}
    out.update({f"bits{k}": b.copy() for k, b in enumerate(part.pattern_bits)})
    out.update({f"choices{k}": c.copy() for k, c in enumerate(part.choices)})
    return out


def _assert_same(a, b, what):
    assert a.keys() == b.keys(), what
    for key in a:
        assert a[key].dtype == b[key].dtype and np.array_equal(a[key], b[key]), f"{what}: {key} differs"


@pytest.mark.parametrize("name", list(BUILDERS))
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_repeated_partitions_equal_fresh_ones(name, seed):
    torch.manual_seed(seed)
    model = BUILDERS[name](seed).eval()
    # the reference: each plane's first partition of a net of its own (nothing kept from another call)
    fresh = [_arrays(partition(from_torch(model, (2,)), plane)) for plane in PLANES]
    net = from_torch(model, (2,))
    order = [0, 0, 1, 0, 2, 2, 3, 1, 0]  # repeats, switches and returns
    kept = []
    for k in order:
        part = partition(net, PLANES[k])
        _assert_same(_arrays(part), fresh[k], f"{name} plane {k}")
        kept.append((k, part))
    for k, part in kept:  # earlier results unchanged by the later calls
        _assert_same(_arrays(part), fresh[k], f"{name} plane {k}, kept")
        assert part.areas.sum() == pytest.approx(PLANES[k].area, rel=1e-9)


def test_equal_planes_as_new_objects_reuse_nothing_stale():
    """Planes with the same numbers but a different anchor set or input shape give their own plane back."""
    net = from_torch(mlp([2, 6, 2], seed=0), (2,))
    a = Plane.square(1.0)
    b = Plane(a.origin.copy(), a.d1.copy(), a.d2.copy(), a.bounds)
    pa, pb = partition(net, a), partition(net, b)
    assert pa.plane is a and pb.plane is b
    _assert_same(_arrays(pa), _arrays(pb), "same numbers")
