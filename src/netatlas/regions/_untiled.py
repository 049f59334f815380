"""One run of the exact partition over the whole window: the arguments checked, the region estimate
and limits (``_scale``) set, then the chain path (``_chain``) or the graph path (``_graph``). The public
:func:`netatlas.regions.partition` runs it once, or once per tile (``_tiles``)."""

from __future__ import annotations

import sys
from typing import Literal

import numpy as np

from netatlas.nets import Net, as_net
from netatlas.regions import _scale
from netatlas.regions._affine import check_piecewise_linear
from netatlas.regions._chain import chain_partition, chain_setup, partition_chain
from netatlas.regions._partition import BOUNDARY_TOLERANCE, Partition
from netatlas.regions._prepared import prepared
from netatlas.regions._smallchain import plane_key, small_chain, small_chain_partition
from netatlas.regions._units import first_layer_check, from_size_units, in_size_units, size_exponent
from netatlas.slices import Plane

__all__ = ["checked_inputs", "untiled_partition"]


def checked_inputs(net, plane, tolerance, method) -> tuple[Net, Plane]:
    """``partition``'s arguments checked (one-line errors): the net as a piecewise-linear ``Net`` and the
    plane (default ``Plane.square(1.0)``) with the net's input size."""
    if method not in ("auto", "chain", "graph"):
        raise ValueError(f"partition: method must be 'auto', 'chain' or 'graph'; got {method!r}")
    if not (isinstance(tolerance, (int, float)) and 0 <= tolerance < 1e-3):
        raise ValueError(f"partition: tolerance must be a float in [0, 1e-3); got {tolerance!r}")
    if plane is None:
        plane = Plane.square(1.0)
    if not isinstance(plane, Plane):
        raise TypeError(f"partition: plane must be a netatlas.Plane, got {type(plane).__name__}")
    net = as_net(net, input_shape=plane.input_shape)
    if plane.origin.size != net.n_inputs:
        raise ValueError(f"partition: plane has {plane.origin.size}-dim inputs but the network expects "
                         f"{net.n_inputs}; build the plane with Plane.through(...) on inputs of the "
                         f"network's shape {net.input_shape}")
    facts = prepared(net)
    if not facts.piecewise_linear_checked:  # the net's activations do not change: checked once per Net
        check_piecewise_linear(net, "partition")
        facts.mark_checked()
    return net, plane


def untiled_partition(net, plane: Plane | None = None, *, tolerance: float = BOUNDARY_TOLERANCE,
                      method: Literal["auto", "chain", "graph"] = "auto", max_regions: int | None = None,
                      memory_budget: int | str | None = "auto", progress: bool | None = None) -> Partition:
    """The whole window in one run (what :func:`partition` does with ``tiles=1``, and what each tile
    runs): the arguments checked, the estimate and limits set, then the chain path (``_chain``) or the
    graph path (``_graph``). Same parameters as :func:`partition` but ``tiles`` and ``client``."""
    net, plane = checked_inputs(net, plane, tolerance, method)
    facts = prepared(net)
    chain = facts.cached(("partition_chain",), partition_chain)
    # a chain then a max over its outputs: the chain kernels, then the max's split (``_chainmax``)
    if chain is None:  # the other paths' modules are imported when a net needs them (start-up of plain MLPs)
        from netatlas.regions._chainmax import chain_max_partition, max_tail
        from netatlas.regions._skipchain import skip_chain, skip_partition
    tail = facts.cached(("max_tail",), max_tail) if chain is None else None
    # residual blocks: a chain whose layers carry the skips (``_skipchain``, NOTE [carried skips])
    skips = facts.cached(("skip_chain",), skip_chain) if chain is None and tail is None else None
    if method == "chain" and chain is None and tail is None and skips is None:
        raise ValueError("partition: method='chain' needs a chain of affine layers (Linear/Conv/AvgPool/"
                         "BatchNorm), each group followed by one relu/leaky_relu/identity activation, the last "
                         "one affine, with residual additions allowed; use method='graph'")
    if max_regions is not None and not (isinstance(max_regions, (int, np.integer)) and max_regions > 0):
        raise ValueError(f"partition: max_regions must be a positive int or None; got {max_regions!r}")
    budget = _scale.budget_bytes(memory_budget, "partition")  # "auto": NETATLAS_MEMORY_BUDGET or half the RAM
    # NOTE [scale-free partitions] in _units: the plane in units of its size, refused where the
    # tolerance would merge details of the first layer; a pure function of (net, plane, tolerance), so
    # repeated partitions of one plane reuse it
    first = chain[0] if chain is not None else tail[1][0] if tail is not None else None
    if skips is not None:  # the first layer's activation units, not its carried values
        W0, b0, act0 = skips[0][0]
        first = (W0[:skips[1][0]], b0[:skips[1][0]], act0)
    token = b"".join([np.asarray(a, np.float64).tobytes() for a in (plane.origin, plane.d1, plane.d2, plane.bounds,
                                                                    (tolerance,))]
                     + [repr(plane.origin.shape).encode(), b"" if plane.anchors is None else plane.anchors.tobytes(),
                        b"" if plane.outline is None else b"outline" + plane.outline.tobytes()])
    e, unit_plane = facts.last(("unit_plane",), token, lambda: _unit_plane(net, plane, float(tolerance), first))
    # the estimate costs a few line partitions: skip it for plain MLPs under the default budget (the
    # run still stops when the count passes the budget)
    on_chain = method != "graph" and (chain is not None or tail is not None or skips is not None)
    wanted = max_regions is not None or memory_budget != "auto" or not on_chain or progress
    limits = _scale.Limits(max_regions, budget, facts.bytes_per_region, unit_plane.area, False)
    estimate = _scale.estimate_regions(net, unit_plane) if wanted and limits.cap is not None or progress else None
    if estimate is not None:
        limits.check_estimate(estimate)
    if progress or (progress is None and estimate is not None and estimate > 20_000 and sys.stderr.isatty()):
        limits = _scale.Limits(max_regions, limits.budget, limits.per_region, unit_plane.area, True)
    try:
        if method != "graph" and chain is not None and not wanted:  # a small MLP in one compiled call
            plan = small_chain(facts, plane_key(plane, float(tolerance)),
                               lambda: chain_setup(net, chain, unit_plane, facts), float(tolerance), e)
            part = None if plan is None else small_chain_partition(plan, net, plane, limits)
            if part is not None:
                return part
        if method != "graph" and tail is not None:
            part = chain_max_partition(net, tail, unit_plane, float(tolerance), limits, prepared(tail[0]))
        elif method != "graph" and skips is not None:
            part = skip_partition(net, skips, unit_plane, float(tolerance), limits, facts)
        elif method == "graph" or chain is None:
            from netatlas.regions._graph import graph_partition

            part = graph_partition(net, unit_plane, float(tolerance), limits)
        else:
            part = chain_partition(net, chain, unit_plane, float(tolerance), limits, facts)
    finally:
        limits.close()
    return from_size_units(part, plane, e, net=net)


def _unit_plane(net, plane, tolerance, first):
    """(e, the plane in units of 2^e near its size) after ``first_layer_check`` passed."""
    e = size_exponent(plane.bounds)
    unit_plane = in_size_units(plane, e)
    first_layer_check(net, unit_plane, tolerance, 2.0 ** e, first)
    return e, unit_plane

