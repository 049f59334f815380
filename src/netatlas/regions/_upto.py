"""The partition after a layer (``partition(net, plane, upto=layer)``): the net cut after that node, so that
only the activation and max nodes up to it (in ``net.nodes`` order) split faces, and each region's map is
that node's value."""

from __future__ import annotations

from netatlas.nets import Net
from netatlas.regions._prepared import prepared

__all__ = ["net_upto"]


def net_upto(net: Net, layer) -> Net:
    """``net`` ending at node ``layer`` (anything :meth:`Net.layer` takes, or "output"): its nodes up to that
    one, with their names and indices unchanged (a layer of the cut net is named as in ``net``). The net
    itself for its last node; the same cut ``Net`` object for the same layer (so what the partition keeps
    per net is kept for it too).

    Examples
    --------
    >>> import netatlas
    >>> net = netatlas.nets.from_torch(netatlas.nets.mlp([2, 4, 4, 1], seed=0))
    >>> cut = net_upto(net, "1")   # module "1": the first ReLU, node 2
    >>> len(cut.nodes), cut.nodes[-1].op.describe(), net_upto(net, "output") is net
    (3, 'relu', True)
    """
    try:
        index = len(net.nodes) - 1 if isinstance(layer, str) and layer == "output" else net.layer(layer)
    except ValueError as exc:
        raise ValueError(f"partition: upto: {exc}") from None
    if index == len(net.nodes) - 1:
        return net
    return prepared(net).cached(("upto", index), lambda net: Net(net.nodes[:index + 1]))
