"""What a partition needs of a net that depends on the net alone, computed once per ``Net``.

A small net's partition takes well under a millisecond of kernel time; walking the IR again on every
call (the activation check, the chain's layers, the roundings of NOTE [vanishing units], the sparse
factors, the bytes per region) cost more than that. :func:`prepared` keeps them for as long as the
``Net`` object lives, keyed on its identity through a weak reference (a ``Net`` is not hashable by
value and ``functools.lru_cache`` would keep it alive). A ``Net`` is treated as immutable, as every lens
does: its ops' weights are not changed in place after it is built.

What depends on the net and the plane (the plane in units of its size and its first-layer check, the
chain's layers in their units with the first maps and the bounds of NOTE [vanishing units], a max head's
tie bounds) is kept for the latest plane only (:meth:`PreparedNet.last`, keyed on the plane's numbers):
repeated partitions of one slice start at the kernels, and other planes cost one entry each.
"""

from __future__ import annotations

import weakref

__all__ = ["PreparedNet", "kept_facts", "prepared"]


class PreparedNet:
    """Per-net facts for the partition, each computed on first use.

    Attributes
    ----------
    roundings : list of int
        ``_roundoff.roundings(net)``: K per node.
    bytes_per_region : int
        ``_scale.bytes_per_region(net, net.n_outputs)``.
    """

    def __init__(self, net):
        self._net = weakref.ref(net)
        self._values: dict = {}

    def _get(self, key, compute):
        if key not in self._values:
            self._values[key] = compute(self._net())
        return self._values[key]

    @property
    def piecewise_linear_checked(self) -> bool:
        return self._values.get("checked", False)

    def mark_checked(self) -> None:
        self._values["checked"] = True

    @property
    def roundings(self):
        from netatlas.regions._roundoff import roundings

        return self._get("roundings", roundings)

    @property
    def bytes_per_region(self) -> int:
        from netatlas.regions._scale import bytes_per_region

        return self._get("bytes_per_region", lambda net: bytes_per_region(net, net.n_outputs))

    def cached(self, key, compute):
        """``compute(net)`` once per net under ``key`` (a hashable tuple naming what it is)."""
        return self._get(key, compute)

    def last(self, key, token: bytes, compute):
        """``compute()`` for the inputs ``token`` names (bytes of the arrays it depends on besides the net),
        kept for the latest token only: repeated calls on one plane reuse it, other planes cost one entry."""
        hit = self._values.get(key)
        if hit is not None and hit[0] == token:
            return hit[1]
        value = compute()
        self._values[key] = (token, value)
        return value

    def peek(self, key, token):
        """What :meth:`last` keeps under ``key`` when it was computed for ``token``, else None (nothing is
        computed)."""
        hit = self._values.get(key)
        return hit[1] if hit is not None and hit[0] == token else None


_PREPARED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def prepared(net) -> PreparedNet:
    """The :class:`PreparedNet` of ``net`` (made on first use, dropped with the net).

    >>> from netatlas.nets import from_torch, mlp
    >>> net = from_torch(mlp([2, 8, 3], seed=0))
    >>> prepared(net) is prepared(net), prepared(net).roundings
    (True, [1, 4, 5, 14])
    """
    entry = _PREPARED.get(net)
    if entry is None:
        entry = _PREPARED[net] = PreparedNet(net)
    return entry


def kept_facts(net) -> PreparedNet | None:
    """The :class:`PreparedNet` of ``net`` if an earlier call made one, else None (nothing is made)."""
    return _PREPARED.get(net)
