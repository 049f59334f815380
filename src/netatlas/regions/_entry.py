"""The one public :func:`partition`: the whole window in one run (``_untiled.untiled_partition``), or
``tiles`` x ``tiles`` tiles merged along their borders (``_tiles``, whose tiles each run
``untiled_partition``). Kept apart so that neither of those modules imports the other."""

from __future__ import annotations

import dataclasses
from typing import Literal

import numpy as np

from netatlas.nets import Net
from netatlas.regions._partition import BOUNDARY_TOLERANCE, Partition
from netatlas.regions._prepared import kept_facts
from netatlas.regions._smallchain import kept_small_chain, small_chain_partition
from netatlas.regions._untiled import checked_inputs, untiled_partition
from netatlas.slices import Plane, Volume

__all__ = ["partition"]


def partition(net, plane: Plane | Volume | None = None, *, upto=None, levels=(), tolerance: float = BOUNDARY_TOLERANCE,
              method: Literal["auto", "chain", "graph"] = "auto", max_regions: int | None = None,
              memory_budget: int | str | None = "auto", progress: bool | None = None, tiles: int = 1,
              client=None, level_output: int = 0) -> Partition:
    """Exact linear regions of a piecewise-linear network on a 2-D slice (or a 3-D one) of its input space.

    Parameters
    ----------
    net : Net or torch.nn.Module
        Linear/Conv/BatchNorm(eval)/AvgPool/residual layers with ReLU, LeakyReLU or identity
        activations (a module is imported with ``netatlas.nets.from_torch``, using the plane's
        input shape).
    plane : Plane or Volume, optional
        The slice; default ``Plane.square(1.0)`` for 2-D inputs. Its inputs must have the network's
        input size. Its window is a rectangle (``bounds``) or a convex polygon (``Plane.polygon``,
        ``Plane.disc``: the regions are clipped to it exactly; tiles cover its bounding box). A
        :class:`~netatlas.Volume` gives the 3-D complex (:class:`Complex3D`, see
        ``netatlas.regions._volume``; chains and residual MLPs layer by layer (``_skipvolume``), other
        piecewise-linear graphs (max pooling, hardtanh) by ``netatlas.regions._volume_graph``; ``client``
        and ``method`` do not apply; ``tiles`` gives a :class:`TiledComplex3D`, for graphs too).
    upto : str or int, optional
        The partition after this layer (named as :meth:`netatlas.nets.Net.layer` takes it, or "output",
        the default): only the activation and max nodes up to it (in ``net.nodes`` order) split the slice,
        and each region's map (``output_linear``, ``layer_maps("output")``) is that layer's value. The
        partition's ``net`` is the net cut after the layer (``regions._upto.net_upto``).
    levels : sequence of float
        Volume only: also split the cells by these level sets of output ``level_output`` (default 0),
        as the edge-subdivision paper does for ``levels=(0.0,)`` (the zero-level surface then consists
        of faces of the complex).
    tolerance : float
        Boundary tolerance relative to the slice's diagonal (see NOTE [tolerances] in ``netatlas.regions._partition``).
    method : {"auto", "chain", "graph"}
        "chain": the fast path for chains of affine layers and relu/leaky_relu/identity activations
        (plain MLPs, also ending in an activation; conv/avg-pool/batch-norm chains are unrolled to dense
        layers first), such a chain followed by a max over its outputs (a global max pool), and residual
        nets of such layers (additions, projections on the skip; each face carries the skips' maps):
        rank-few map updates, depth first, bounded memory; "graph": per-face gated forward passes (any
        supported graph: max pooling, hardtanh, residual additions, concatenation); "auto" picks
        chain when it applies.
    max_regions : int, optional
        Stop with :class:`RegionLimitError` before the run when the estimated count (exact counts
        along lines across the slice, or on nets with a node of 65,536 units or more each
        unit's map at a few sample points, see ``estimate_regions``) exceeds it, and during the run as
        soon as the count does.
    memory_budget : int, str or None
        Bytes (or e.g. "8GB") the finished regions may take, checked like ``max_regions``;
        "auto" (default): half the memory available (for plain MLPs on the chain path checked
        during the run only, to keep small runs fast); None: no limit.
    progress : bool, optional
        A progress bar (share of the slice done) on stderr; default: only when stderr is a
        terminal and the estimate exceeds 20,000 regions.
    tiles : int
        Partition the window as k x k tiles (one at a time, or on Dask with ``client``) and merge
        the regions cut by tile borders: the same regions, areas, patterns and maps in another
        order (``netatlas.regions._tiles``). Bounds the working memory by the tile. ``max_regions`` and
        ``memory_budget`` then limit the total (the whole slice estimated first, then counted tile by tile)
        and guard each tile's run. A Volume in ``tiles``^3 tiles gives a :class:`TiledComplex3D`: the whole
        complex's counts, cell volumes and stitched level-set meshes, exactly, in about a tile's memory
        (``netatlas.regions._tiles3d``).
    client : dask.distributed.Client, optional
        Run the tiles as Dask tasks (``tiles`` defaults to 2 x 2 then).

    Returns
    -------
    Partition, or Complex3D for a Volume (TiledComplex3D with ``tiles``)

    Raises
    ------
    UnsupportedLayerError
        For smooth activations (sigmoid, tanh, ...), naming the layer.
    RegionLimitError
        When the estimate or the run exceeds ``max_regions`` or ``memory_budget``.
    PrecisionError
        When the count could not be exact in float64: the boundary tolerance (relative to the slice's
        diagonal) would merge details of the first layer (a window far larger than the net's
        features), or values leave float64's range. Planes and units are otherwise normalised, so
        counts do not depend on their scale (``regions._units``, NOTE [scale-free partitions]).

    Examples
    --------
    >>> import netatlas
    >>> net = netatlas.nets.from_torch(netatlas.nets.mlp([2, 8, 8, 3], seed=0))
    >>> part = netatlas.regions.partition(net, netatlas.Plane.square(1.0))
    >>> part.num_regions, round(float(part.areas.sum()), 12)
    (22, 4.0)
    >>> part.patterns.shape, part.output_linear.shape
    ((22, 16), (22, 3, 2))
    >>> first = netatlas.regions.partition(net, upto="1")   # after the first ReLU (module "1")
    >>> first.num_regions, first.patterns.shape, first.output_linear.shape
    (8, (8, 8), (8, 8, 2))
    """
    if (upto is None and tiles == 1 and client is None and max_regions is None and not progress and method != "graph"
            and type(plane) is Plane and type(tolerance) is float and isinstance(memory_budget, str)
            and memory_budget == "auto" and type(levels) is tuple and not levels and level_output == 0):
        part = repeated_small_partition(net, plane, tolerance)
        if part is not None:
            return part
    if upto is not None:
        from netatlas.nets import as_net
        from netatlas.regions._upto import net_upto

        shape = plane.input_shape if isinstance(plane, (Plane, Volume)) else None
        net = net_upto(as_net(net, input_shape=shape), upto)
    if isinstance(plane, Volume):
        from netatlas.regions._volume import volume_partition

        if client is not None or method not in ("auto", "chain"):
            raise ValueError("partition: a Volume takes no client or method='graph'")
        if isinstance(tiles, bool) or not isinstance(tiles, (int, np.integer)) or tiles < 1:
            raise ValueError(f"partition: tiles must be an integer >= 1; got {tiles!r}")
        if tiles != 1:
            from netatlas.regions._tiles3d import tiled_volume_partition

            return tiled_volume_partition(net, plane, tiles, levels=levels, tolerance=tolerance,
                                          max_regions=max_regions, memory_budget=memory_budget, progress=progress,
                                          level_output=level_output)
        return volume_partition(net, plane, levels=levels, tolerance=tolerance, max_regions=max_regions,
                                memory_budget=memory_budget, progress=progress, level_output=level_output)
    if len(levels) or level_output != 0:
        raise ValueError("partition: levels and level_output apply to a Volume; for a Plane use "
                         "part.level_set(value)")
    if tiles == 1 and client is None:
        return untiled_partition(net, plane, tolerance=tolerance, method=method, max_regions=max_regions,
                                 memory_budget=memory_budget, progress=progress)
    if isinstance(tiles, bool) or not isinstance(tiles, (int, np.integer)) or tiles < 1:
        raise ValueError(f"partition: tiles must be an integer >= 1; got {tiles!r}")
    net, plane = checked_inputs(net, plane, tolerance, method)
    from netatlas.regions._tiles import tiled_partition  # imported when tiles are asked for (start-up)

    part = tiled_partition(net, plane, max(int(tiles), 2 if client is not None else 1),
                           tolerance=float(tolerance), method=method, client=client, max_regions=max_regions,
                           memory_budget=memory_budget)
    return dataclasses.replace(part, net=net)  # like an untiled partition: per-layer maps, edge layers


def repeated_small_partition(net, plane: Plane, tolerance: float) -> Partition | None:
    """A small MLP's partition of a plane it was partitioned on before, straight from the kept plan
    (``_smallchain``: the arguments were checked then, and what they decide is kept with the plan), or None
    when there is no such plan. What a default ``partition(net, plane)`` call does, in one compiled call."""
    if not isinstance(net, Net) or (facts := kept_facts(net)) is None:
        return None
    plan = kept_small_chain(facts, plane, tolerance)
    return None if plan is None else small_chain_partition(plan, net, plane)
