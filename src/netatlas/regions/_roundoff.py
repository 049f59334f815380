"""When is a unit's pre-activation zero on a whole face, up to the round-off of its computation?

# NOTE [vanishing units]
On a face every pre-activation is an affine map ``m = (a, b, c)`` (``z = a u + b v + c``), computed
in float64 as sums of products: weights times the previous layer's gated maps, plus a bias. Forward
error analysis of such sums (Higham, *Accuracy and Stability of Numerical Algorithms*, ch. 3) gives,
row by row,

    |m_computed - m_exact| <= gamma_K * S,      gamma_K = K u / (1 - K u),  u = 2**-53,

where S ("the magnitude") is the same computation with every weight, bias, slope and input replaced
by its absolute value (the sum of the magnitudes of all the terms), and K is the number of roundings
along the deepest path from the input to the unit (``roundings``): fan-in + 1 per affine layer, one
per slope multiplication, two per channel affine (scale, shift), none for a ``Max`` (a selection)
or a concatenation. So when a unit vanishes
identically on the face in exact arithmetic, its computed map satisfies ``|m_r| <= K * eps * S_r``
for r = 0, 1, 2 (eps = 2u: a factor 2 of slack, which also covers weights that are themselves
rounded rationals such as 1/3). Conversely a map that small cannot be told apart from zero in
float64. Such a unit **does not cut the face and its pattern bit is 0** (the z <= 0 convention),
exactly as for a unit whose map is exactly zero: its map is replaced by an exact zero before the
face is split.

Computing S for every unit of every face would double the cost of the maps, so it is done in two
steps. A face-independent bound ``mu >= S`` (the magnitude computation with every slope replaced by
the largest one, one pass per layer) selects the candidates, units with ``|m_r| <= CANDIDATE_RATIO
* mu_r`` for r = 0, 1, 2 and not already exactly zero (rare in a generic network). Only for those is
the magnitude computed on the face:

- graph path (``_graphmaps._VanishingGraph``, also used by ``along_line``): its maps are direct
  products (faces whose maps came from sparse updates and have a unit under CANDIDATE_RATIO * mu are
  recomputed first, ``_segments``), so the candidates are only the units the rule can snap at all,
  ``|m_r| <= 2 K eps mu_r`` (S <= mu; 2x for the round-off of mu and S themselves); then S exactly, by
  a gated pass of the net with absolute weights (``_affine.magnitude_net``) on the candidates' faces, with
  absolute slopes and constants (hardtanh's bounds) and the face's own ``Max`` selections; mu
  takes each activation's largest slope and bound and each ``Max`` window's largest entry, row by
  row (``_affine.widest_gate``);
- chain path (``_kernels.child_maps``): the unit is recomputed directly from its parent's maps,
  ``m_i = sum_j W_ij s_j m_j + b_i`` (which also removes the round-off left by the rank-few
  updates), with ``S_r = sum_j |W_ij s_j| mu_{j,r} + |b_i|`` (r = 2): this face's slopes, and the
  previous layer's global bound mu_j in place of its per-face magnitude (mu_j bounds the round-off
  already carried by m_j, so a zero built from rounded inputs is still recognised; S_r >= S).

Kinks other than 0 and max pooling. A hardtanh unit cuts the face where ``z = b`` for each finite
bound b; the rule applies to ``z - b`` (magnitude S + |b| in the offset row, one more rounding):
a unit equal to b on the whole face up to round-off has the same value on both sides of that kink,
so it does not cut the face and its bit for b is 0 (b = 0 is the rule above). A ``Max`` window
is cut where two of its entries are equal, so the rule applies to the difference of two entries
(magnitude S_i + S_j, one more rounding): two entries equal up to round-off on the face (a zero,
constant or duplicated channel whose weights cancel only up to round-off) are made exactly equal
(the later one a copy of the earlier, in a per-window copy of the maps,
``_graphmaps._VanishingGraph.max_ties``), so they never cut the face and the first one wins, as
for entries that are equal bit for bit (``_maxkernels``).
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["EPS", "CANDIDATE_RATIO", "vanishing_tolerance", "roundings", "snap_vanishing"]

#: float64 machine epsilon (2 ** -52), twice the unit round-off.
EPS = float(np.finfo(np.float64).eps)
#: A unit is a candidate when each row of its map is at most this fraction of its magnitude bound
#: ``mu``; far above any accumulated round-off (K * EPS for K up to ~10**7 roundings).
CANDIDATE_RATIO = 2.0 ** -26


@njit(cache=True)
def vanishing_tolerance(magnitude, n_roundings):
    """Largest |value| of a map row that is zero up to round-off: ``n_roundings * EPS * magnitude``
    (scalars or arrays; see NOTE [vanishing units])."""
    return n_roundings * EPS * magnitude


def roundings(net) -> list[int]:
    """K per node of ``net``: the roundings along the deepest path from the input (NOTE [vanishing
    units]). Affine ops add their fan-in + 1 (one rounding per product and per addition, the bias
    included); activations add one (the slope); an addition adds one; ``Max``, concatenation and zero
    padding add none (exact). Ops not listed (average pools) count their whole input as fan-in (an
    upper bound).

    >>> from netatlas.nets import from_torch, mlp
    >>> roundings(from_torch(mlp([2, 8, 3], seed=0)))   # input, Linear, ReLU, Linear
    [1, 4, 5, 14]
    """
    out = []
    for node in net.nodes:
        op = node.op
        kind = getattr(op, "kind", "")
        if kind == "input":
            out.append(1)  # the plane's centre point is rounded
            continue
        depth = max(out[i] for i in node.inputs)
        if kind in ("max", "concat", "pad") or (kind == "gather_linear" and op.is_selection and op.shift is None):
            out.append(depth)  # a selection, a copy, zeros: exact
            continue
        if kind == "gather_linear":  # k products and additions per output, and the shift
            out.append(depth + int(op.index.shape[1]) + 1)
            continue
        if kind in ("linear", "conv"):
            fan_in = op.weight[0].numel()
        elif kind == "activation":
            fan_in = 0
        elif kind in ("add", "channel_affine"):
            fan_in = 1
        else:
            fan_in = int(sum(net.nodes[i].size for i in node.inputs))
        out.append(depth + fan_in + 1)
    return out


def snap_vanishing(maps, magnitude, n_roundings, where=None):
    """Set to exact zero, in place, the units (F, 3, n) ``maps`` whose three rows are within
    :func:`vanishing_tolerance` of 0 given their ``magnitude`` (same shape, or broadcastable).
    ``where`` (F, n) bool restricts the units considered. Returns the (F, n) mask of snapped units."""
    small = (np.abs(maps) <= vanishing_tolerance(magnitude, float(n_roundings))).all(axis=1)
    if where is not None:
        small &= where
    maps[np.broadcast_to(small[:, None, :], maps.shape)] = 0.0
    return small
