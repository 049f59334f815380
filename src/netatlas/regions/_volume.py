"""The exact 3-D complex of a piecewise-linear chain on a :class:`~netatlas.Volume`: the box split unit
after unit, layer after layer, by edge subdivision (``_subdivide``, NOTE [edge subdivision in 3-D]).

Before layer k, every cell has one on/off pattern for the layers before it, so each unit of layer k
is affine on it: ``M[c] (4, n_k)``, rows d/du, d/dv, d/dw and the value at the box's centre. The
units of the layer cut the complex one after the other (the children of a cut keep their parent's
maps: layer k's pre-activations do not depend on its own pattern); then
``M_next[c] = W_{k+1} (s_c * M[c]) + b_{k+1}`` with s_c the cell's slopes. A unit whose map on a cell
is zero up to the round-off of its computation is set to exact zero there (``_roundoff``, NOTE
[vanishing units], the magnitude as on the 2-D chain path: this cell's slopes and the previous
layer's global bound), so it does not cut the cell and its bit is 0. ``levels`` then cut the cells by
the output's level sets.
"""

from __future__ import annotations

import logging
import math

import numpy as np
from numba import njit

from netatlas._memory import check_memory
from netatlas.nets import as_net
from netatlas.regions import _scale
from netatlas.regions._affine import activation_slopes, check_piecewise_linear
from netatlas.regions._chain import chain_layers
from netatlas.regions._complex3d import Complex3D
from netatlas.regions._layercut import cut_layer
from netatlas.regions._partition import BOUNDARY_TOLERANCE
from netatlas.regions._roundoff import EPS, roundings
from netatlas.regions._skipvolume import cut_levels, skip_steps, skip_volume, skip_volume_chain
from netatlas.regions._subdivide import box_state
from netatlas.regions._volume_graph import graph_steps, graph_supported, graph_volume
from netatlas.slices import Volume

__all__ = ["build_complex", "checked_volume_inputs", "estimate_cells", "volume_partition"]

log = logging.getLogger(__name__)

#: Bytes per cell held while a 3-D complex is built, besides the maps (BYTES_PER_CELL_UNIT per unit of
#: the widest layer, held for the cells of a layer's start) and the patterns (a byte per unit): ~4
#: faces of ~3 vertex slots in a pool up to half holes, growing by half, ~1 vertex, the cut's per-face
#: scratch and the layer's new vertices. Measured (benchmarks/regions3d.py, the 3-8x32-1 net on
#: [-1/4, 1/4]^3, 4.36M cells): ~0.85 KB per cell while it is built, under the ~1.8 KB these figures
#: give for that net.
BYTES_PER_CELL = 500
#: Bytes per cell and unit of the widest layer: its maps (4 float64 rows).
BYTES_PER_CELL_UNIT = 32


def volume_partition(net, volume: Volume, *, levels=(), level_output: int = 0,
                     tolerance: float = BOUNDARY_TOLERANCE, max_regions: int | None = None,
                     memory_budget="auto", progress: bool | None = None) -> Complex3D:
    """The exact 3-D complex (see :func:`netatlas.regions.partition` with a Volume)."""
    net, layers, levels, cap, per_cell = checked_volume_inputs(net, volume, levels, level_output, tolerance,
                                                               max_regions, memory_budget, progress)
    skips = skip_volume_chain(net) if layers is None else None  # a residual MLP: ``_skipvolume``
    if skips is not None:
        n_steps = skip_steps(skips) + len(levels)
    elif layers is None:  # a graph that is not a chain: ``_volume_graph``
        n_steps = graph_steps(net) + len(levels)
    else:
        n_steps = sum(W.shape[0] for W, _, act in layers[:-1] if act.name != "identity") + len(levels)
    bar = _progress_bar(n_steps, progress)
    try:
        if skips is not None:
            return skip_volume(net, skips, volume, levels, level_output, float(tolerance), cap, volume_frame(volume),
                               lambda M, patterns, n_bits: _step_checker(M, patterns, n_bits, cap, per_cell, bar))
        if layers is None:
            widest, n_bits = max(node.size for node in net.nodes), graph_steps(net)

            def check_size(growing, n_new_bits):
                _check_size(growing, None, np.zeros((1, 4, widest)), np.zeros((0, n_bits), bool), n_new_bits, cap,
                            per_cell)

            return graph_volume(net, volume, levels, level_output, float(tolerance), bar, volume_frame(volume),
                                check_size)
        return _build(net, layers, volume, levels, level_output, float(tolerance), cap, per_cell, bar)
    finally:
        if bar is not None:
            bar.close()


def checked_volume_inputs(net, volume: Volume, levels, level_output, tolerance, max_regions, memory_budget,
                          progress, n_tiles: int = 1):
    """The arguments of a 3-D partition checked (one-line errors), the net as a chain: ``(net, layers,
    levels, cap, per_cell)`` with ``cap`` the most cells the run may hold (max_regions or the memory
    budget, None: no limit) and ``per_cell`` the bytes a cell takes. When a limit is set explicitly (or
    a progress bar asked for), the count estimated first, per tile of ``n_tiles`` (its share of the
    volume), refuses runs far above it."""
    if not (isinstance(tolerance, (int, float)) and 0 <= tolerance < 1e-3):
        raise ValueError(f"partition: tolerance must be a float in [0, 1e-3); got {tolerance!r}")
    if max_regions is not None and not (isinstance(max_regions, (int, np.integer)) and max_regions > 0):
        raise ValueError(f"partition: max_regions must be a positive int or None; got {max_regions!r}")
    levels = _checked_levels(levels)
    net = as_net(net, input_shape=volume.input_shape)
    if volume.origin.size != net.n_inputs:
        raise ValueError(f"partition: volume has {volume.origin.size}-dim inputs but the network expects "
                         f"{net.n_inputs}; build it with Volume.through(a, b, c, d) on inputs of the "
                         f"network's shape {net.input_shape}")
    check_piecewise_linear(net, "partition")
    layers = chain_layers(net)
    if layers is None and not graph_supported(net):  # other graphs: ``_volume_graph``
        names = sorted({net.nodes[i].op.describe() for i in range(1, len(net.nodes))})
        raise ValueError("partition: 3-D complexes take graphs of affine ops (Linear, Conv, AvgPool, BatchNorm), "
                         "additions, concatenations, max pooling and relu/leaky_relu/identity/hardtanh activations; "
                         f"this net has other ops ({', '.join(names)}); partition it on a 2-D Plane instead")
    if not (isinstance(level_output, (int, np.integer)) and 0 <= level_output < net.n_outputs):
        raise ValueError(f"partition: level_output must be an output index in [0, {net.n_outputs}); "
                         f"got {level_output!r}")
    budget = _scale.budget_bytes(memory_budget, "partition")  # "auto": NETATLAS_MEMORY_BUDGET or half the RAM
    skips = skip_volume_chain(net) if layers is None else None
    if skips is not None:  # each cell holds the maps of a layer's pre-activations and carried values
        widest, n_bits = max(W.shape[0] for W, _, _ in skips[0]), sum(skips[1])
    elif layers is None:
        widest, n_bits = max(node.size for node in net.nodes), graph_steps(net)
    else:
        widest, n_bits = max(W.shape[0] for W, _, _ in layers), sum(W.shape[0] for W, _, _ in layers[:-1])
    per_cell = BYTES_PER_CELL + BYTES_PER_CELL_UNIT * widest + n_bits
    caps = [c for c in (max_regions, None if budget is None else budget // per_cell) if c is not None]
    cap = min(caps) if caps else None
    if cap is not None and (max_regions is not None or memory_budget != "auto" or progress):
        estimate = estimate_cells(net, volume) / n_tiles
        if estimate > cap:
            where = "cells estimated" if n_tiles == 1 else f"cells per tile estimated ({n_tiles} tiles)"
            raise _scale.RegionLimitError(
                f"partition: about {estimate:,.0f} {where} (exact counts along lines across the volume), "
                f"above {cap:,} (max_regions, or the memory budget at ~{per_cell:,} bytes per cell); use a smaller "
                "Volume (bounds)" + (", more tiles" if n_tiles > 1 else "") + ", or raise max_regions / memory_budget")
    return net, layers, levels, cap, per_cell


def estimate_cells(net, volume: Volume) -> float:
    """Estimated number of cells of ``net`` in ``volume`` from the exact breakpoints along 7 lines across
    it (the 3 axes through its centre and the 4 diagonals), with the cell density of an isotropic Poisson
    plane tessellation: ``pi lambda^3 / 6`` cells per unit volume when a line crosses ``lambda`` planes per
    unit length (Schneider & Weil, *Stochastic and Integral Geometry*, thm 10.3.3). An order of magnitude,
    not a bound; the run itself stops as soon as it passes ``max_regions``.

    >>> import netatlas
    >>> net = netatlas.nets.from_torch(netatlas.nets.mlp([3, 16, 16, 1], seed=0))
    >>> cx = netatlas.regions.partition(net, netatlas.Volume.cube(1.0))
    >>> 0.1 < estimate_cells(net, netatlas.Volume.cube(1.0)) / cx.num_cells < 10
    True
    """
    from netatlas.regions._lines import along_line

    center, half, _, _, _ = volume_frame(volume)
    ends = [(center - half * e, center + half * e) for e in np.eye(3)]
    ends += [(center - half * np.array(d), center + half * np.array(d))
             for d in ((1, 1, 1), (1, 1, -1), (1, -1, 1), (-1, 1, 1))]
    crossings, length = 0, 0.0
    for a, b in ends:
        x = volume.to_input(np.stack([a, b]))
        crossings += along_line(net, x[0], x[1]).num_pieces - 1
        length += float(np.linalg.norm(b - a))
    density = crossings / length
    return max(1.0, math.pi * density**3 / 6 * volume.volume)


def _checked_levels(levels) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in np.atleast_1d(np.asarray(levels, dtype=np.float64)))
    except (TypeError, ValueError):
        raise ValueError(f"partition: levels must be a sequence of numbers; got {levels!r}") from None
    if not all(np.isfinite(values)) or len(set(values)) != len(values):
        raise ValueError(f"partition: levels must be distinct finite numbers; got {levels!r}")
    return values


def _progress_bar(n_steps, progress):
    import sys

    if progress is None:
        progress = sys.stderr.isatty() and n_steps > 64
    if not progress:
        return None
    from tqdm import tqdm

    return tqdm(total=n_steps, desc="cells", unit="cut")


def volume_frame(volume: Volume):
    """(centre (3,), half-widths (3,), centre as an input x_c (n,), directions (3, n), diagonal)."""
    center = (volume.lower + volume.upper) / 2
    half = (volume.upper - volume.lower) / 2
    directions = np.stack([volume.d1.ravel(), volume.d2.ravel(), volume.d3.ravel()])
    x_c = volume.origin.ravel() + center @ directions
    return center, half, x_c, directions, float(2 * np.linalg.norm(half))


def _build(net, layers, volume, levels, level_output, tol, cap, per_cell, bar, recorder=None,
           distance=None) -> Complex3D:
    """The complex of ``volume``; ``recorder(column, signs, new)``, when given, sees every cut's vertex
    signs and new vertices (``_layercut.cut_layer``), ``column`` the pattern column (``n_units + i`` for
    ``levels[i]``); ``distance``: the boundary tolerance as a distance (default ``tol`` times the
    volume's diagonal)."""
    center, half, x_c, directions, diameter = volume_frame(volume)
    distance = tol * diameter if distance is None else float(distance)
    state = box_state(half)
    W0, b0, _ = layers[0]
    M = np.concatenate([directions @ W0.T, (W0 @ x_c + b0)[None]])[None]  # (1, 4, n_0)
    hidden = layers[:-1]
    sizes = [W.shape[0] for W, _, _ in hidden]
    patterns = np.zeros((1, 0), bool)
    K = roundings(net)
    pre = [net.nodes[i].inputs[0] for i in net.activations] + [len(net.nodes) - 1]
    # mu (4, n): bound on the magnitudes of a layer's maps on every cell (NOTE [vanishing units])
    mu = np.abs(np.concatenate([directions, x_c[None]])) @ np.abs(W0).T
    mu[3] += np.abs(b0)
    _snap(M, mu[None], K[pre[0]])
    column = 0
    for k, (W, _, act) in enumerate(hidden):
        on_slope, off_slope = activation_slopes(act)
        n_k = W.shape[0]
        # during the layer, cells keep their maps: ``origin`` (C,) is each cell's cell at the layer's start,
        # ``bits`` (C, n_k) the layer's on/off states
        if act.name != "identity":
            after = _step_checker(M, patterns, n_k, cap, per_cell, bar)
            origin, sides = cut_layer(state, M, distance, column, cap, after, recorder)
            bits = sides > 0
            del sides
        else:
            origin, bits = np.arange(state.n_cells), np.ones((state.n_cells, n_k), bool)
        patterns = np.concatenate([patterns[origin], bits], axis=1)
        column += n_k
        Wn, bn, _ = layers[k + 1]
        n_roundings = K[pre[k + 1]] if k + 1 < len(hidden) else None  # the output's maps are not snapped
        M = _next_maps(M, origin, bits, (on_slope, off_slope), Wn, bn, mu, n_roundings)
        del origin, bits
        mu_hidden = mu  # the last hidden layer's bound: the output's magnitudes on the cells (levels)
        mu = mu * max(abs(on_slope), abs(off_slope)) @ np.abs(Wn).T
        mu[3] += np.abs(bn)
    magnitude = _output_magnitude(layers, patterns, mu if not hidden else mu_hidden, level_output) if levels else None
    M, patterns, level_sides = cut_levels(state, M, patterns, levels, magnitude, level_output, K[pre[-1]], distance,
                                          lambda M, patterns, n: _step_checker(M, patterns, n, cap, per_cell, bar),
                                          cap, recorder)
    log.debug("3-D complex: %d cells, %d vertices", state.n_cells, len(state.points))
    return Complex3D(volume=volume, center=center, points=state.points, face_vertices=state.face_vertices,
                     face_offsets=state.face_offsets, face_cells=state.face_cells, face_labels=state.face_labels,
                     patterns=patterns, maps=M, levels=levels, level_output=int(level_output),
                     level_sides=level_sides, units_per_layer=tuple(sizes),
                     layer_names=tuple(net.nodes[i].name for i in net.activations), tolerance=tol, net=net)


build_complex = _build  # the tiled 3-D path (_tiles3d) builds each tile with it


def _output_magnitude(layers, patterns, mu, output):
    """Magnitudes (C, 4) of output ``output``'s maps on the cells (NOTE [vanishing units]): the last hidden
    layer's slopes on each cell (its pattern columns) times that layer's bound ``mu`` (4, n), through
    ``|W_out|``, plus ``|b_out|``; for a net without hidden layers ``mu`` is the output's own (4, n_out)."""
    W, b, _ = layers[-1]
    if len(layers) == 1:
        return np.broadcast_to(mu[:, output], (len(patterns), 4))
    on_slope, off_slope = activation_slopes(layers[-2][2])
    bits = patterns[:, patterns.shape[1] - W.shape[1]:]  # (C, n): the last hidden layer's states
    magnitude = np.empty((len(patterns), 4))
    for c0 in range(0, len(patterns), MAP_CHUNK):  # bounded temporaries, as ``_next_maps``
        slope = np.abs(np.where(bits[c0:c0 + MAP_CHUNK], on_slope, off_slope))
        magnitude[c0:c0 + MAP_CHUNK] = (slope * np.abs(W[output])) @ mu.T
    magnitude[:, 3] += abs(b[output])
    return magnitude


def _snap(M, magnitude, n_roundings):
    """Units whose four rows are zero up to round-off on a cell set to exact zero there (in place)."""
    threshold = n_roundings * EPS
    small = np.abs(M[:, 0]) <= threshold * magnitude[:, 0]  # (C, n)
    for r in range(1, 4):
        small &= np.abs(M[:, r]) <= threshold * magnitude[:, r]
    cells, units = np.nonzero(small)
    M[cells, :, units] = 0.0


#: Cells whose next maps are computed at once (bounds the temporaries of ``_next_maps``).
MAP_CHUNK = 32768


def _next_maps(M, origin, bits, slopes, Wn, bn, mu, n_roundings):
    """The next layer's maps (C, 4, m) ``W_{k+1} (s_c * M[origin[c]]) + b_{k+1}`` of every cell c with
    on/off states ``bits`` (C, n_k), snapped (NOTE [vanishing units]) unless ``n_roundings`` is None;
    chunk by chunk (each cell's result is the same as at once).

    A unit can snap on a cell only where its four rows are within the threshold times the cell's
    magnitudes, which are at most the layer's bound with every slope at its largest (sums of the same
    nonnegative terms, each no larger; ``bound`` takes a margin for einsum's summation order); so the
    cells' own magnitudes are computed only on the cells where some unit passes that test, with the same
    einsum (a cell's numbers do not depend on the cells beside it), and snap as before."""
    on_slope, off_slope = slopes
    out = np.empty((len(origin), 4, Wn.shape[0]))
    if n_roundings is not None:
        threshold = n_roundings * EPS
        largest = np.full((1, 1, Wn.shape[1]), max(abs(on_slope), abs(off_slope)))
        bound = np.einsum("crn,mn->crm", largest * mu[None], np.abs(Wn))[0]
        bound[3] += np.abs(bn)
        bound *= threshold * (1 + 4 * (Wn.shape[1] + 2) * EPS)
    for c0 in range(0, len(origin), MAP_CHUNK):
        chunk = slice(c0, c0 + MAP_CHUNK)
        m = out[chunk]  # written in place (a view)
        np.einsum("crn,mn->crm", _sloped(M, origin[chunk], bits[chunk], float(on_slope), float(off_slope)), Wn, out=m)
        m[:, 3] += bn
        if n_roundings is not None:
            maybe = np.abs(m[:, 0]) <= bound[0]  # (c, m): may snap
            for r in range(1, 4):
                maybe &= np.abs(m[:, r]) <= bound[r]
            cells = np.flatnonzero(maybe.any(1))
            if len(cells):
                # this cell's slopes times the previous layer's bound, plus |b|
                slope = np.abs(np.where(bits[chunk][cells], on_slope, off_slope))  # (k, n_k)
                magnitude = np.einsum("crn,mn->crm", slope[:, None, :] * mu[None], np.abs(Wn))
                magnitude[:, 3] += np.abs(bn)
                part = m[cells]
                _snap(part, magnitude, n_roundings)
                m[cells] = part
    return out


@njit(cache=True)
def _sloped(M, origin, bits, on_slope, off_slope):
    """``M[origin] * slope[:, None, :]`` (c, 4, n) with ``slope = where(bits, on_slope, off_slope)``: one
    product per entry, the numbers of the NumPy broadcast in one pass (NumPy's inner loops of n entries
    cost more than the products)."""
    n = M.shape[2]
    out = np.empty((len(origin), 4, n))
    slope = np.empty(n)
    for c in range(len(origin)):
        o = origin[c]
        for k in range(n):
            slope[k] = on_slope if bits[c, k] else off_slope
        for r in range(4):
            for k in range(n):
                out[c, r, k] = M[o, r, k] * slope[k]
    return out


def _step_checker(M, patterns, n_bits, cap, per_cell, bar):
    """What ``cut_layer`` calls after each step: the limits, then the progress bar."""
    def after(layer, n_done):
        # the next cut at most about doubles the complex's buffers, not the layer's scratch
        _check_held(layer.n_cells, layer.nbytes() + layer.complex_nbytes(), M, patterns, n_bits, cap, per_cell)
        if bar is not None:
            bar.update(n_done)
            bar.set_postfix_str(f"{layer.n_cells:,} cells", refresh=False)

    return after


def _check_size(growing, values, M, patterns, n_bits, cap, per_cell):
    """The limits after a cut of ``growing`` (a ``GrowingComplex``; ``values`` its ``UnitValues`` or None):
    the next cut at most about doubles its buffers."""
    nbytes = 2 * growing.nbytes() + (0 if values is None else values.nbytes())
    _check_held(growing.n_cells, nbytes, M, patterns, n_bits, cap, per_cell)


def _check_held(n_cells, nbytes, M, patterns, n_bits, cap, per_cell):
    """The limits at ``n_cells`` cells with ``nbytes`` held by the cut (room for the next one included)."""
    if cap is not None and n_cells > cap:
        raise _scale.RegionLimitError(
            f"partition: passed {cap:,} cells (max_regions or the memory budget at ~{per_cell:,} bytes per cell); "
            "use a smaller Volume (bounds), or raise max_regions / memory_budget")
    # ``nbytes``: the cut's buffers, with room for the next cut; the layer's end adds maps and patterns
    held = nbytes + M.nbytes
    held += n_cells * (M[0].nbytes + patterns.shape[1] + n_bits + 16)
    check_memory(held, f"the 3-D complex at {n_cells:,} cells")
