"""Which units cannot cut anything in a small window (bounds of every unit over the window), and which
columns of the per-face maps a local-complexity partition then still needs.

# NOTE [settled nodes]
Local complexity partitions small squares ``[-r, r]^2`` around data points; in a LeNet-5 at r = 0.05
the last max pool and the dense layers after it cut none of the faces the first layers made (measured:
10,855 faces in, 10,855 out, on three MNIST discs), yet each face's maps through them cost half of the
run. A unit (an activation's unit, a ``Max``'s window) is *settled* on the window when it provably has
one state on the whole window: then the exact partition neither cuts a face by it nor snaps it, and
every face has that state there. The graph path's ``within`` runs (``_graph``) split each node by its
free (not settled) units only, stop once every node left is settled, and compute only the columns of
the per-face maps that free units read (``needed_columns``): bit for bit the same regions and states.

The proof is a symbolic interval pass (the "symbolic intervals" of Wang et al., ReluVal, 2018) over
the two plane coordinates, on ``BOXES x BOXES`` sub-boxes of the window at once: every node's value is
``a u + b v + c + e`` with an affine part exact in (u, v) and an interval ``e in [lo, hi]`` (n,) for what
the relaxations of free units add. An affine op maps the affine part exactly and the interval by
centre and radius (``|W|`` times the radius); a settled unit keeps its input's form (times its slope);
a free relu keeps the chord's slope times its input plus the range of the rest; a free ``Max`` window
keeps its best entry's form plus the gap to the others' upper bounds. Over a box of half widths
(bu, bv), ``|a u + b v| <= bu |a| + bv |b|``. A unit is settled on the window when every box settles
it the same way.

Round-off: the bounds are computed in float64 without directed rounding, and the partition decides
with tolerances of its own (``tol * diam * |grad|`` for a cut, ``K eps S`` for the snapping rule of
``_roundoff``). A unit counts as settled only when its range clears the breakpoint (or a window's
winner clears the others) by ``SETTLED_MARGIN`` times the magnitude bound ``mu`` of the unit's terms
(``_roundoff``: ``mu >= S``, the sum of the absolute values of everything that went into it, which
bounds every rounding error of both computations by orders of magnitude) plus twice the cut
tolerance. The margin is also far above ``CANDIDATE_RATIO * mu``, so a settled unit is never a
vanishing candidate: columns left out of the maps need no such check.

A ``Max`` window whose present entries are all exact zeros (units settled off: their maps are zero bit
for bit on every face) ties exactly everywhere and settles on its first entry, as the partition's tie
rule picks it (``Max``: the first maximal entry wins).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from netatlas.nets import Activation, Add, Input, Max
from netatlas.regions._affine import (
    _linear_part,
    activation_slopes,
    gated_values,
    is_affine,
    magnitude_net,
    widest_gate,
)

__all__ = ["SETTLED_MARGIN", "Settled", "needed_columns", "settled_states"]

#: A unit is settled when its range over the window clears its breakpoint by this times its magnitude
#: bound (NOTE [settled nodes]): far above round-off (~1e-16 per rounding).
SETTLED_MARGIN = 1e-7


@dataclass(frozen=True)
class Settled:
    """One nonlinear node on a window: ``state`` (1, columns) as the partition stores it (packed pattern
    bits uint8, or ``Max`` arg-max positions int16), right for every settled column on every face (0 in
    the others), and ``free`` (sorted int64) the columns (units, or ``Max`` windows) that are not settled."""

    state: np.ndarray
    free: np.ndarray


#: The window is bounded as BOXES x BOXES sub-boxes (one batched pass): a unit is settled when every box
#: settles it the same way. Smaller boxes have tighter relaxations (LeNet-5 at r = 0.05: 0-5 free units
#: in its dense layers with one box, 0-1 with 4 x 4).
BOXES = 4


def settled_states(net, x_c, d1, d2, half_widths, tol, diam, boxes=BOXES) -> list:
    """Per nonlinear node of ``net`` (``net.nonlinear`` order), a :class:`Settled` for the window
    ``x_c + u d1 + v d2, |u| <= half_widths[0], |v| <= half_widths[1]`` (NOTE [settled nodes]), or None
    for every node from the first one whose bounds this does not know (hardtanh, negative slopes, ops
    other than affine ones, ``Add``, relu / leaky relu / identity and ``Max``). ``tol`` and ``diam`` are
    the partition's: a cut within ``tol * diam * |grad|`` of a breakpoint is no cut, so the margin
    also clears that. The window is bounded as ``boxes x boxes`` sub-boxes, in one batched pass."""
    hu, hv = half_widths
    mags = magnitude_net(net)
    out: list = [None] * len(net.nonlinear)
    if mags is None:
        return out
    position = {node: k for k, node in enumerate(net.nonlinear)}
    # mu: each node's magnitude bound on any face (widest gates), the scale of the margin
    gates = [widest_gate(net.nodes[i].op, net.nodes[i].size) for i in net.nonlinear]
    mu_all = gated_values(mags, list(range(len(net.nodes))), np.abs(x_c), np.abs(d1), np.abs(d2), gates.__getitem__)
    # the boxes' centres (u, v) and half widths (bu, bv)
    bu, bv = hu / boxes, hv / boxes
    steps = 2 * np.arange(boxes) + 1 - boxes
    u, v = (g.ravel() for g in np.meshgrid(steps * bu, steps * bv, indexing="ij"))
    n_boxes = len(u)
    start = np.stack([np.broadcast_to(d1, (n_boxes, len(d1))), np.broadcast_to(d2, (n_boxes, len(d2))),
                      x_c + u[:, None] * d1 + v[:, None] * d2], axis=1)
    zeros = torch.zeros((n_boxes, len(x_c)), dtype=torch.float64)
    forms: dict[int, tuple] = {}  # node -> (affine part (boxes, 3, n): rows a, b, c; lo, hi (boxes, n))
    with torch.no_grad():
        for i, node in enumerate(net.nodes):
            op = node.op
            if isinstance(op, Input):
                forms[i] = (torch.from_numpy(start), zeros, zeros)
                continue
            if any(j not in forms for j in node.inputs):
                return out
            if is_affine(op):  # exact on the affine part, centre and radius on the interval
                A, lo, hi = forms[node.inputs[0]]
                mid = _linear_part(op, (lo + hi) / 2)
                rad = _linear_part(mags.nodes[i].op, (hi - lo) / 2)
                slopes = _linear_part(op, A[:, :2].reshape(2 * n_boxes, -1)).reshape(n_boxes, 2, -1)
                forms[i] = (torch.cat([slopes, op(A[:, 2])[:, None]], dim=1), mid - rad, mid + rad)
                continue
            if isinstance(op, Add):
                (A, lo, hi), (B, lo2, hi2) = forms[node.inputs[0]], forms[node.inputs[1]]
                forms[i] = (A + B, lo + lo2, hi + hi2)
                continue
            if i not in position:
                return out
            A, lo, hi = forms[node.inputs[0]]
            mu = mu_all[node.inputs[0]][0]
            margin = SETTLED_MARGIN * (mu[2] + hu * mu[0] + hv * mu[1]) + 2 * tol * diam * (mu[0] + mu[1])
            reach = bu * A[:, 0].abs() + bv * A[:, 1].abs()
            zlo, zhi = A[:, 2] - reach + lo, A[:, 2] + reach + hi
            if isinstance(op, Max):
                forms[i], out[position[i]] = _settle_max(op, A, lo, hi, zlo, zhi, margin)
                continue
            if not isinstance(op, Activation) or op.name not in ("relu", "leaky_relu", "identity"):
                return out
            if op.name == "identity":  # one column per unit, always on (as the partition stores it)
                forms[i] = (A, lo, hi)
                out[position[i]] = Settled(np.packbits(np.ones((1, node.size), np.uint8), axis=1),
                                           np.zeros(0, np.int64))
                continue
            on, off = activation_slopes(op)
            if off < 0 or off > 1:
                return out
            forms[i], out[position[i]] = _settle_activation(A, lo, hi, zlo, zhi, margin, on, off)
    return out


def _settle_activation(A, lo, hi, zlo, zhi, margin, on, off):
    """The form of ``y = max(z, s z)`` (0 <= s <= 1) on each box and the :class:`Settled` of the window
    (a unit on in every box, or off in every box): in a box a unit is on where ``zlo > margin``, off
    where ``zhi < -margin``. An unsettled one keeps ``lam z`` (lam the slope of the chord over [zl, zh] =
    [min(zlo, 0), max(zhi, 0)]) plus the range of ``y - lam z`` there, spanned by its values at zl, 0 and
    zh (it is piecewise linear with its kink at 0)."""
    is_on, is_off = zlo > margin, zhi < -margin
    free = ~(is_on | is_off)
    zl, zh = zlo.clamp(max=0), zhi.clamp(min=0)
    lam = torch.where(zh > zl, (zh - off * zl) / torch.where(zh > zl, zh - zl, 1.0), on)
    slope = torch.where(free, lam, torch.where(is_on, on, off).to(torch.float64))
    at_low, at_high = (off - lam) * zl, (1 - lam) * zh
    lo2 = lo * slope + torch.where(free, torch.minimum(at_low, at_high).clamp(max=0), 0.0)
    hi2 = hi * slope + torch.where(free, torch.maximum(at_low, at_high).clamp(min=0), 0.0)
    all_on, all_off = is_on.all(0), is_off.all(0)
    state = np.packbits(all_on.numpy()[None].astype(np.uint8), axis=1)
    return (A * slope[:, None], lo2, hi2), Settled(state, np.flatnonzero((~(all_on | all_off)).numpy()))


def _settle_max(op, A, lo, hi, zlo, zhi, margin):
    """The form of a ``Max``'s output on each box and the :class:`Settled` of the window (a window settled
    on the same entry in every box): in a box a window settles on the entry with the largest lower bound
    when that clears every other entry's upper bound by the margin, or on its first entry when all its
    entries are exact zeros (they tie on every face). An unsettled window keeps that best entry's form
    plus ``[0, max upper bound - its lower bound]``."""
    index = op.index
    present = index >= 0
    idx = torch.where(present, index, 0)
    rows = torch.arange(index.shape[0])
    wlo = torch.where(present, zlo[:, idx], -torch.inf)  # (boxes, n_out, k)
    whi = torch.where(present, zhi[:, idx], -torch.inf)
    best = wlo.argmax(2)  # (boxes, n_out)
    top_lo = wlo.gather(2, best[..., None])[..., 0]
    others = whi.scatter(2, best[..., None], -torch.inf)
    clear = top_lo > others.amax(2) + 2 * margin[idx].amax(1)
    zero = (A[:, :, idx] == 0).all(1) & (lo[:, idx] == 0) & (hi[:, idx] == 0)
    all_zero = (zero | ~present).all(2)
    settled = clear | all_zero
    choice = torch.where(clear, best, 0)
    picked = idx[rows, torch.where(settled, choice, best)]  # (boxes, n_out)
    gap = torch.where(settled, 0.0, (whi.amax(2) - top_lo).clamp(min=0))
    form = (A.gather(2, picked[:, None, :].expand(-1, 3, -1)), lo.gather(1, picked), hi.gather(1, picked) + gap)
    same = settled.all(0) & (choice == choice[0]).all(0)
    return form, Settled(choice[0].numpy()[None].astype(np.int16), np.flatnonzero((~same).numpy()))


def needed_columns(net, settled) -> list:
    """Per node of ``net``, (size,) bool: the columns of its per-face maps that a ``within`` run reads
    (NOTE [settled nodes]): those its nonlinear consumers cut by (an activation's free units, all entries
    of a ``Max``'s free windows, everything of a node without a :class:`Settled`), and those later nodes
    read through them, back from the output (whose maps such a run does not compute). A settled unit's
    column is left out when nothing later reads it, so a column left out of an activation's input is
    settled (never a vanishing candidate: ``_graph._may_vanish`` need not look at it). An affine op reads
    all of its input's columns when any of its own is read. The run leaves the other columns stale:
    finite values nothing reads."""
    position = {node: k for k, node in enumerate(net.nonlinear)}
    need = [np.zeros(node.size, bool) for node in net.nodes]
    for i in range(len(net.nodes) - 1, 0, -1):
        node, wanted = net.nodes[i], need[i]
        k = position.get(i)
        s = settled[k] if k is not None else None
        if k is not None and s is None:  # it splits by every unit: all its input
            demand = np.ones(net.nodes[node.inputs[0]].size, bool)
        elif isinstance(node.op, Max):
            demand = np.zeros(net.nodes[node.inputs[0]].size, bool)
            index = node.op.index.numpy()
            windows = np.setdiff1d(np.flatnonzero(wanted), s.free)
            demand[index[windows, s.state[0, windows].astype(np.int64)]] = True
            entries = index[s.free]
            demand[entries[entries >= 0]] = True
        elif isinstance(node.op, Activation):
            # a settled-off unit's output is zero, but its sign of zero is its input's (slope 0 times it):
            # the input column is read whenever the output is
            demand = wanted.copy()
            demand[s.free] = True
        elif isinstance(node.op, Add):
            demand = wanted
        else:  # affine ops, concatenation: all or nothing
            demand = np.full(net.nodes[node.inputs[0]].size if len(node.inputs) == 1 else 0, wanted.any())
        for j in node.inputs:
            if len(node.inputs) > 1 and not isinstance(node.op, Add):
                need[j] |= wanted.any()
            else:
                need[j] |= demand
    return need
