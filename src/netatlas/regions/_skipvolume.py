"""Residual MLPs in 3-D on the chain path: the box cut layer after layer as ``_volume`` cuts a chain, each
cell also carrying the maps of the values that skip ahead (NOTE [carried skips] in ``_skipchain``), in
place of the graph path's gated forward passes per cell (``_volume_graph``).

# NOTE [carried skips in 3-D]
``_skipchain.skip_chain`` writes a residual MLP (``h + relu(W h + b)``, ``h + W2 relu(W1 h)``, a Linear
projection on the skip, a skip from the input) as layers ``[z'; C'] = W [a; C] + b``: the next
pre-activations z' (n' rows) and the carried values C' (m' rows) from this activation's output a and
the values carried into it. On a cell, with the cell's slopes s (a = s * z), every row is affine, so a
cell holds maps M (4, n + m) — rows d/du, d/dv, d/dw and the value at the box's centre — of its
pre-activations (the first n columns, which cut it: ``_layercut.cut_layer``, as a chain layer's units)
and of its carried values (never cut, never snapped, not in the pattern: the graph path does not snap
them either). After the layer's cut ``M' = W [s_c * Z_c; C_c] + b`` for every cell c (one product per
chunk of cells, the chain's ``_volume._next_maps`` with slope 1 on the carried columns). A
pre-activation zero on a cell up to round-off is snapped to exact zero (NOTE [vanishing units]) with
the magnitude of ``_volume``: this cell's slopes times the previous layer's global bound mu (mu of a
carried value: its own bound, slope 1), K the roundings of the graph path's sums up to that node (the
composed product is rounded once more than the graph path's two products; fan-ins add, as in 2-D).
The level function ``output - value`` is snapped the same way (the output layer's magnitudes on the
cell, one more rounding for the subtraction), so an output equal to a level on a whole cell gives level
side 0 whatever the box's centre — and tiles agree with the whole box (NOTE [tiles in 3-D]).
"""

from __future__ import annotations

import logging

import numpy as np

from netatlas.regions._affine import activation_slopes
from netatlas.regions._complex3d import Complex3D
from netatlas.regions._layercut import cut_layer
from netatlas.regions._roundoff import roundings, snap_vanishing
from netatlas.regions._subdivide import box_state

__all__ = ["level_map", "skip_volume", "skip_volume_chain"]

log = logging.getLogger(__name__)

#: Cells whose next maps are computed at once (bounds the temporaries of ``_next_skip_maps``).
MAP_CHUNK = 16384


def skip_volume_chain(net):
    """``_skipchain.skip_chain(net)`` — ``(layers, units, factors)`` — for a residual MLP the 3-D chain
    path takes, else None (plain chains, other graphs, layers too large to unroll)."""
    from netatlas.regions._prepared import prepared
    from netatlas.regions._skipchain import skip_chain

    return prepared(net).cached(("skip_chain",), skip_chain)  # the 2-D path's entry: made once per net


def skip_steps(skips) -> int:
    """Cuts of the skip path (the progress bar's total, levels aside): the units of its nonlinear layers."""
    layers, units, _ = skips
    return sum(n for n, (_, _, act) in zip(units, layers[:-1], strict=True) if act.name != "identity")


def skip_volume(net, skips, volume, levels, level_output, tol, cap, frame, checker, recorder=None,
                distance=None) -> Complex3D:
    """The exact 3-D complex of a residual MLP (NOTE [carried skips in 3-D]); ``skips`` from
    :func:`skip_volume_chain`, ``frame`` = ``_volume.volume_frame(volume)``, ``checker(M, patterns,
    n_bits)`` what ``_layercut.cut_layer`` calls after each step (the limits, the progress bar:
    ``_volume._step_checker``); the other arguments as ``_volume.build_complex`` takes them."""
    layers, units, _ = skips
    center, half, x_c, directions, diameter = frame
    distance = tol * diameter if distance is None else float(distance)
    state = box_state(half)
    K = roundings(net)
    pre = [net.nodes[i].inputs[0] for i in net.activations] + [len(net.nodes) - 1]
    W0, b0, _ = layers[0]
    M = np.concatenate([directions @ W0.T, (W0 @ x_c + b0)[None]])[None]  # (1, 4, n_0 + m_0)
    # mu (4, n + m): bound on the magnitudes of a layer's maps on every cell (NOTE [vanishing units])
    mu = np.abs(np.concatenate([directions, x_c[None]])) @ np.abs(W0).T
    mu[3] += np.abs(b0)
    snap_vanishing(M[:, :, :units[0]], mu[None, :, :units[0]], K[pre[0]])  # a view: snapped in place
    patterns = np.zeros((1, 0), bool)
    column = 0
    output_magnitude = None
    for k, (_, _, act) in enumerate(layers[:-1]):
        on_slope, off_slope = activation_slopes(act)
        n_k = units[k]
        if act.name != "identity":
            Z = np.ascontiguousarray(M[:, :, :n_k])
            after = checker(M, patterns, n_k)
            origin, sides = cut_layer(state, Z, distance, column, cap, after, recorder)
            del Z
            bits = sides > 0
            del sides
        else:
            origin, bits = np.arange(state.n_cells), np.ones((state.n_cells, n_k), bool)
        patterns = np.concatenate([patterns[origin], bits], axis=1)
        column += n_k
        Wn, bn, _ = layers[k + 1]
        last = k + 1 == len(units)
        n_next = Wn.shape[0] if last else units[k + 1]
        M, output_magnitude = _next_skip_maps(M, origin, bits, (on_slope, off_slope), Wn, bn, mu, n_next,
                                              None if last else K[pre[k + 1]], level_output if last and levels
                                              else None)
        del origin, bits
        mu = mu.copy()
        mu[:, :n_k] *= max(abs(on_slope), abs(off_slope))
        mu = mu @ np.abs(Wn).T
        mu[3] += np.abs(bn)
    M, patterns, level_sides = cut_levels(state, M, patterns, levels, output_magnitude, level_output, K[pre[-1]],
                                          distance, checker, cap, recorder)
    log.debug("3-D complex of a residual MLP: %d cells, %d vertices", state.n_cells, len(state.points))
    return Complex3D(volume=volume, center=center, points=state.points, face_vertices=state.face_vertices,
                     face_offsets=state.face_offsets, face_cells=state.face_cells, face_labels=state.face_labels,
                     patterns=patterns, maps=M, levels=levels, level_output=int(level_output),
                     level_sides=level_sides, units_per_layer=tuple(units),
                     layer_names=tuple(net.nodes[i].name for i in net.activations), tolerance=tol, net=net)


def _next_skip_maps(M, origin, bits, slopes, Wn, bn, mu, n_next, n_roundings, magnitude_output):
    """The next layer's maps (C, 4, n' + m') ``W [s_c * Z[origin[c]]; C[origin[c]]] + b`` of every cell c
    with on/off states ``bits`` (C, n_k): its first ``n_next`` columns (pre-activations) snapped (NOTE
    [vanishing units]) unless ``n_roundings`` is None. Also, when ``magnitude_output`` is an output index,
    that output's magnitudes (C, 4) on every cell (for the level function), else None."""
    on_slope, off_slope = slopes
    n_k = bits.shape[1]
    out = np.empty((len(origin), 4, Wn.shape[0]))
    want = n_roundings is not None or magnitude_output is not None
    rows = slice(0, n_next) if n_roundings is not None else slice(magnitude_output, (magnitude_output or 0) + 1)
    absW = np.abs(Wn[rows]) if want else None
    output_magnitude = np.empty((len(origin), 4)) if magnitude_output is not None else None
    for c0 in range(0, len(origin), MAP_CHUNK):
        chunk = slice(c0, c0 + MAP_CHUNK)
        slope = np.where(bits[chunk], on_slope, off_slope)  # (c, n_k)
        source = M[origin[chunk]]  # a copy: the cells' maps at the layer's start
        source[:, :, :n_k] *= slope[:, None, :]
        m = np.einsum("crn,mn->crm", source, Wn)
        m[:, 3] += bn
        if want:
            # this cell's slopes times the previous layer's bound (the carried values: slope 1), plus |b|
            bound = np.broadcast_to(mu, source.shape).copy()
            bound[:, :, :n_k] *= np.abs(slope)[:, None, :]
            magnitude = np.einsum("crn,mn->crm", bound, absW)
            magnitude[:, 3] += np.abs(bn[rows])
            if n_roundings is not None:
                snap_vanishing(m[:, :, :n_next], magnitude, n_roundings)  # a view: snapped in place
            else:
                output_magnitude[chunk] = magnitude[:, :, 0]
        out[chunk] = m
    return out, output_magnitude


def cut_levels(state, M, patterns, levels, magnitude, output, n_roundings, distance, checker, cap, recorder):
    """Cut the complex ``state`` by each level set of ``output`` (``level_map``) in turn, as one more layer
    of one unit each; returns the cells' maps M, patterns and level sides (C, len(levels)) int8, in the cut
    complex's cell order. ``checker(M, patterns, n_bits)`` gives what ``cut_layer`` calls after each step.
    Both chain paths (``_volume._build`` too) end with it."""
    level_sides = np.zeros((state.n_cells, len(levels)), np.int8)
    origin = np.arange(state.n_cells)
    for i, value in enumerate(levels):
        A = level_map(M, magnitude, output, value, n_roundings)[origin]
        after = checker(M, patterns, len(levels))
        parent, sides = cut_layer(state, A, distance, int(patterns.shape[1]) + i, cap, after, recorder)
        origin, level_sides = origin[parent], level_sides[parent]
        level_sides[:, i] = sides[:, 0]
    return M[origin], patterns[origin], level_sides


def level_map(M, magnitude, output, value, n_roundings):
    """The level function ``output - value`` (C, 4, 1) on every cell from the output's maps M (C, 4, n_out),
    set to exact zero where each row is zero up to the round-off of the output's map (``magnitude`` (C, 4))
    and the subtraction (NOTE [vanishing units]): level side 0 on a cell where the output is the level,
    whatever the box's centre (so tiles agree with the whole box). Both chain paths (``_volume._build``
    too) cut the levels by it (``cut_levels``)."""
    A = M[:, :, output:output + 1].copy()
    A[:, 3] -= value
    bound = magnitude[:, :, None].copy()
    bound[:, 3] += abs(value)
    snap_vanishing(A, bound, n_roundings + (value != 0))
    return A
