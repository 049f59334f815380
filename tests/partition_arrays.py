"""Comparing partitions array by array, as the small path's memory tests do."""

import numpy as np

#: The Partition fields a run writes (its pattern bits are compared too).
FIELDS = ("xy", "offsets", "labels", "maps", "center")


def arrays(part):
    """Copies of every array of ``part`` a run writes, by name (``bits{k}`` per nonlinear layer)."""
    out = {f: getattr(part, f).copy() for f in FIELDS}
    out.update({f"bits{k}": b.copy() for k, b in enumerate(part.pattern_bits)})
    return out


def assert_same(got, want, what=""):
    """Two ``arrays`` results equal bit for bit, with the same dtypes and shapes."""
    assert got.keys() == want.keys()
    for key in want:
        assert got[key].dtype == want[key].dtype and got[key].shape == want[key].shape, f"{what} {key}"
        assert np.array_equal(got[key], want[key]), f"{what}: {key} differs"


def data_address(a):
    """Where ``a``'s data starts in memory (to see whether a call reused an array)."""
    return a.__array_interface__["data"][0]
