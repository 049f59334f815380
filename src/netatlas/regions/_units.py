"""Units for an exact partition at any representable scale: the plane in units of its size, every
unit's map of a chain in units of its magnitude, and a refusal where float64 cannot resolve the slice.

# NOTE [scale-free partitions]
Which side of its zero line a point lies on does not change when a unit's map ``(a, b, c)`` is
multiplied by a positive number, and ReLU / LeakyReLU commute with that scaling (the next layer's
column takes the inverse factor). So the partition only sees:

- the plane in units of its size: (u, v) -> (u, v) / h, ``d1, d2 -> h d1, h d2`` (``in_size_units``),
  with h = 2^e near its half-width; the result is scaled back (``from_size_units``);
- a chain's layers with every hidden unit's row divided by 2^E, E the exponent of its magnitude bound
  (the sum of the absolute values of its terms), the next layer's column multiplied by it
  (``normalised_chain``); the output layer keeps its scale, so the output maps are the net's. A
  residual net's carried values (a skip, the stream) are rows of the same layers and get exponents of
  their own, so an addition adds two power-of-two multiples (NOTE [carried skips] in ``_skipchain``).

Every factor is a power of two, so at ordinary scales each product, sum and comparison is the same
as without them bit for bit (only exponents move): results are unchanged, while at 1e-300 or 1e300
nothing overflows (``a^2 + b^2`` in the kernels' distance tests, the magnitude bounds of NOTE
[vanishing units]) and nothing underflows. A scaling that would push a nonzero weight out of
float64's range (the terms of one unit spanning more than ~1e300) is refused (``PrecisionError``).

What powers of two cannot fix is the boundary tolerance: a vertex within ``tolerance x diagonal``
of a line is on it, so details smaller than that (a net whose lines meet about 1 apart, seen in a
window 1e10 wide) would be merged silently. ``check_resolution`` finds such details among the first
nonlinear node's lines and the slice's sides (exact lines, cheap: neighbouring crossings along each
line, and pairs of lines that stay that close all across the slice) and refuses, naming the window
or tolerance that would resolve them. Details within round-off of nothing are accepted as
coincidences, as everywhere else in the partition (concurrent, duplicated units): the round-off of
the lines' own maps (K eps times their terms' magnitudes, local to the crossing, so a detail of
size 1 at the centre of a 1e300 window is still seen) and of this check's arithmetic (eps times
the distance from the centre, about 1e-14 of the diagonal at the sides).

Not covered: details made by deeper layers (their lines are known only per face) and first
nonlinear nodes wider than RESOLUTION_MAX_UNITS or behind a ``Max``; in those the tolerance still
merges what it merges, as before.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from netatlas._errors import PrecisionError
from netatlas.regions._roundoff import EPS

__all__ = ["size_exponent", "in_size_units", "from_size_units", "normalised_chain", "check_resolution"]

#: Largest first nonlinear node checked by ``check_resolution`` (the check sorts n^2 crossings).
RESOLUTION_MAX_UNITS = 1024
#: Safety factor on the round-off bound of a crossing's distance to a line.
RESOLUTION_SLACK = 64.0


def size_exponent(bounds) -> int:
    """e such that the plane's half-width (the larger side) is within a factor 2 of 2^e.

    >>> size_exponent((-1.0, 1.0, -1.0, 1.0)), size_exponent((0.0, 1e300, 0.0, 1.0))
    (1, 996)
    """
    umin, umax, vmin, vmax = bounds
    half = max(umax / 2 - umin / 2, vmax / 2 - vmin / 2)  # halves first: no overflow near 1e308
    return int(math.frexp(half)[1])


def in_size_units(plane, e: int):
    """The same slice with plane coordinates divided by 2^e (directions multiplied by it). Built
    without ``Plane``'s checks, which square the directions (they may overflow or underflow here;
    the plane was checked as given)."""
    scaled = object.__new__(type(plane))
    for f in dataclasses.fields(plane):
        object.__setattr__(scaled, f.name, getattr(plane, f.name))
    object.__setattr__(scaled, "d1", np.ldexp(plane.d1, e))
    object.__setattr__(scaled, "d2", np.ldexp(plane.d2, e))
    object.__setattr__(scaled, "bounds", tuple(math.ldexp(b, -e) for b in plane.bounds))
    if plane.anchors is not None:
        object.__setattr__(scaled, "anchors", np.ldexp(plane.anchors, -e))
    if getattr(plane, "outline", None) is not None:  # a convex window: its corners in the same units
        object.__setattr__(scaled, "outline", np.ldexp(plane.outline, -e))
        if plane.circle is not None:
            object.__setattr__(scaled, "circle", tuple(math.ldexp(c, -e) for c in plane.circle))
    if not (np.isfinite(scaled.d1).all() and np.isfinite(scaled.d2).all()):
        raise PrecisionError(f"partition: the plane's directions times its size ({2.0 ** e:.3g}) exceed float64's "
                             "range; use a smaller window or shorter directions")
    return scaled


def from_size_units(part, plane, e: int, **changes):
    """A partition computed on ``in_size_units(plane, e)`` in ``plane``'s own coordinates (and ``changes``
    to its other fields). ``part`` is changed in place and returned: it is the run's intermediate result,
    which the caller drops (copying its maps, (F, 3, n_outputs), cost more than a small net's whole run)."""
    np.ldexp(part.maps[:, :2], -e, out=part.maps[:, :2])
    np.ldexp(part.xy, e, out=part.xy)
    changes.update(plane=plane, center=np.ldexp(part.center, e))
    for name, value in changes.items():
        object.__setattr__(part, name, value)  # a frozen dataclass, not yet anyone else's
    part._cache.clear()
    return part


_NONE = -(1 << 20)


def _exponent(x):
    """The binary exponent of |x| (frexp's: |x| in [2^(e-1), 2^e)); a very small number for 0."""
    m, e = np.frexp(x)
    return np.where(m == 0, _NONE, e)


def normalised_chain(layers, frame, slopes):
    """The chain ``layers`` [(W (n', n), b (n',), activation), ...] with each hidden unit's map in units
    of its magnitude (NOTE [scale-free partitions]): returns the new layers, per layer the exponents
    E (n',) its rows were divided by (0 for the output layer), and the frame to apply them to.

    ``frame`` (3, n_inputs) are the rows [d1, d2, x_c] the first layer is applied to (each input is
    divided by a power of two near its largest entry, the first layer's columns multiplied); ``slopes`` per
    hidden layer the largest |slope| of its activation. Exponents are handled as integers, so no
    intermediate product overflows.

    >>> W = np.array([[1e200, -1.0], [2.0, 0.5]]); b = np.zeros(2)
    >>> (W1, b1, _), _ = normalised_chain([(W, b, "relu"), (np.ones((1, 2)), np.zeros(1), None)],
    ...                                   np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]), [1.0])[0]
    >>> bool(0.25 <= abs(W1).max() <= 1)   # the row of 1e200 in units of its magnitude
    True
    """
    frame = np.asarray(frame, np.float64)
    big = np.abs(frame).max(axis=0)
    shift = np.where(big > 0, _exponent(big), 0).astype(np.int64)  # exponents the inputs are divided by
    frame = np.ldexp(frame, -shift[None, :])
    mag = np.abs(frame).max(axis=0)  # magnitudes of the (divided) inputs
    out, exps = [], []
    for k, (W, b, act) in enumerate(layers):
        last = k == len(layers) - 1
        E = np.zeros(len(b), np.int64)
        if not last:
            terms = _exponent(np.abs(W)) + shift[None, :] + _exponent(mag)[None, :]
            E = np.maximum(terms.max(axis=1, initial=_NONE), _exponent(np.abs(b)))
            E = np.where(E <= _NONE // 2, 0, E).astype(np.int64)
        with np.errstate(over="ignore", under="ignore"):  # _check_range refuses what left float64's range
            Wn = np.ldexp(W, (shift[None, :] - E[:, None]).astype(np.int64))
            bn = np.ldexp(b, -E)
        _check_range(W, Wn, b, bn, k, last, shift)
        out.append((Wn, bn, act))
        exps.append(E)
        if not last:
            mag = (np.abs(Wn) @ mag + np.abs(bn)) * max(slopes[k], 1.0)
            shift = E
    return out, exps, frame


def _check_range(W, Wn, b, bn, k, last, shift):
    # a weight pushed below float64's normal range, where its term in true units was a normal number
    # (a term that is itself below it is no better in the original computation)
    tiny = np.finfo(np.float64).tiny
    lost = ((W != 0) & (np.abs(Wn) < tiny) & (_exponent(np.abs(W)) + shift[None, :] > -1021)).any()
    lost |= ((np.abs(b) >= tiny) & (np.abs(bn) < tiny)).any()
    if not (np.isfinite(Wn).all() and np.isfinite(bn).all()):
        raise PrecisionError(f"partition: layer {k}'s {'outputs' if last else 'maps'} exceed float64's range "
                             "on this plane (in units of the plane's size); netatlas cannot count its regions "
                             "exactly")
    if lost:
        raise PrecisionError(f"partition: layer {k} combines terms whose sizes differ by more than float64's "
                             "range (~1e308) once each unit is in units of its magnitude; netatlas cannot count "
                             "its regions exactly")


def check_resolution(maps, mu, n_roundings, bounds, tol, scale=1.0):
    """Refuse when two of the lines ``maps`` (3, n) (zero lines of a first nonlinear node, exact
    everywhere on the plane, in centred coordinates with half-widths from ``bounds``) or of the sides
    cross closer to a third one than the boundary tolerance ``tol x diagonal`` but farther than
    round-off, or two lines stay that close across the slice: the partition would merge the regions
    between them (NOTE [scale-free partitions]). ``mu`` (3, n)
    bounds the magnitudes of the maps' terms (``n_roundings`` roundings each); ``scale`` converts
    lengths to plane units for the message.

    >>> lines = np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0], [0.0, 0.0, -1e-3]])  # x = 0, y = 0, x + y = 1e-3
    >>> check_resolution(lines, np.abs(lines), 3, (-1, 1, -1, 1), 1e-10)
    >>> check_resolution(lines, np.abs(lines), 3, (-1, 1, -1, 1), 1e-2)
    Traceback (most recent call last):
    ...
    netatlas._errors.PrecisionError: partition: lines of the first layer cross 0.000707 from a third one, ...
    """
    a, b, c = (np.asarray(r, np.float64) for r in maps)
    g = np.hypot(a, b)
    keep = g > 0
    n = int(keep.sum())
    if n < 1 or n > RESOLUTION_MAX_UNITS:
        return
    hu, hv = (bounds[1] - bounds[0]) / 2, (bounds[3] - bounds[2]) / 2
    diam = 2 * math.hypot(hu, hv)
    band = tol * diam
    # the lines, and the slice's four sides (exact lines: no round-off), with unit normals
    a = np.concatenate([a[keep] / g[keep], [1.0, 1.0, 0.0, 0.0]])
    b = np.concatenate([b[keep] / g[keep], [0.0, 0.0, 1.0, 1.0]])
    c = np.concatenate([c[keep] / g[keep], [-hu, hu, -hv, hv]])
    m = np.concatenate([np.asarray(mu, np.float64)[:, keep] / g[keep], np.zeros((3, 4))], axis=1)  # in distance units
    # along line j (foot point p0 = -c n, direction t = (-b, a)) its chord in the slice (grown by the
    # band): x = px - s b in [-hu, hu], y = py + s a in [-hv, hv]; lines that miss it are dropped
    px, py = -c * a, -c * b
    lo, hi = _chord(a, b, px, py, hu + band, hv + band)
    meets = lo < hi
    meets[n:] = True
    units = int(meets[:n].sum())
    a, b, c, m, px, py, lo, hi = a[meets], b[meets], c[meets], m[:, meets], px[meets], py[meets], lo[meets], hi[meets]
    # every pair: line k at line j's foot point, and the sine of their angle
    z_k_at_p0 = a[None, :] * px[:, None] + b[None, :] * py[:, None] + c[None, :]  # (j, k)
    sin = a[None, :] * -b[:, None] + b[None, :] * a[:, None]  # n_k . t_j
    _parallel_check(z_k_at_p0[:units, :units], sin[:units, :units], a[:units], b[:units], m[:, :units], px[:units],
                    py[:units], *_chord(a[:units], b[:units], px[:units], py[:units], hu, hv), n_roundings, band, tol,
                    scale)
    # the crossing of line j with line k at s_jk, inside the slice (and band)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        s = -z_k_at_p0 / sin
        inside = (s >= lo[:, None]) & (s <= hi[:, None])
    s = np.where(inside, s, np.inf)
    order = np.argsort(s, axis=1)
    s_sorted = np.take_along_axis(s, order, axis=1)
    ok = np.isfinite(s_sorted[:, 1:])
    s_k = np.where(ok, s_sorted[:, :-1], 0.0)
    sin_l = np.abs(np.take_along_axis(sin, order[:, 1:], axis=1))
    dist = np.abs(np.where(ok, s_sorted[:, 1:], 0.0) - s_k) * sin_l  # crossing (j, k) to the next line l
    # only the (rare) candidates within the band need their round-off bound
    jj, q = np.nonzero(ok & (dist <= band))
    if not len(jj):
        return
    k, l_, s_k, dist = order[jj, q], order[jj, q + 1], s_k[jj, q], dist[jj, q]
    # round-off of the three lines' positions at the crossing p (the maps' own round-off, NOTE
    # [vanishing units]: K eps times the magnitudes of the terms there), of p itself (over the sines
    # of the angles), and of the arithmetic here (eps |p|)
    cx, cy = np.abs(px[jj] - s_k * b[jj]), np.abs(py[jj] + s_k * a[jj])

    def at_p(i):
        return n_roundings * EPS * (m[0][i] * cx + m[1][i] * cy + m[2][i])

    e_j, e_k, e_l = at_p(jj), at_p(k), at_p(l_)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        bound = RESOLUTION_SLACK * ((e_j + e_k) / np.abs(sin[jj, k]) + (e_j + e_l) / np.abs(sin[jj, l_]) + e_l
                                    + EPS * (cx + cy + np.abs(px[jj]) + np.abs(py[jj])))
    lost = dist > bound  # NaN bounds (parallel lines) never refuse
    if lost.any():
        d = float(dist[lost].min()) * scale
        raise PrecisionError(
            f"partition: lines of the first layer cross {d:.3g} from a third one, within the boundary tolerance "
            f"({tol:g} x the slice's diagonal = {band * scale:.3g}), so regions would be merged and the count would "
            f"not be exact; use a window whose diagonal is under {d / tol:.3g} or a smaller tolerance")


def scaled_factors(factors, exps):
    """``_chain.layer_factors`` of the original chain made to match ``normalised_chain``'s layers:
    per layer, the first factor's columns times 2^(previous layer's E), the last factor's rows over
    2^E (``exps`` as ``normalised_chain`` returns them)."""
    out = []
    for k, fs in enumerate(factors):
        if fs is None:
            out.append(None)
            continue
        fs = list(fs)
        shift = exps[k - 1] if k else None
        if shift is not None and shift.any():
            fs[0] = _scale_factor(fs[0], cols=shift)
        if exps[k].any():
            fs[-1] = _scale_factor(fs[-1], rows=-exps[k])
        out.append(fs)
    return out


def _scale_factor(factor, rows=None, cols=None):
    kind, *f = factor
    if kind == "dense":
        A = f[0]
        if cols is not None:
            A = np.ldexp(A, cols[None, :].astype(np.int64))
        if rows is not None:
            A = np.ldexp(A, rows[:, None].astype(np.int64))
        return ("dense", np.ascontiguousarray(A))
    ptr, idx, val, n_out = f
    if cols is not None:
        val = np.ldexp(val, cols[idx].astype(np.int64))
    if rows is not None:
        val = np.ldexp(val, np.repeat(rows, np.diff(ptr)).astype(np.int64))
    return ("csr", ptr, idx, np.ascontiguousarray(val), n_out)


def first_layer_check(net, plane, tol, scale, first=None):
    """``check_resolution`` on the zero lines of ``net``'s first activation node (its input is affine
    on the whole plane), when it comes before any ``Max`` node; ``first``: that layer as a chain's
    (W, b, activation), whose maps are then one small product (no gated pass)."""
    from netatlas.nets import Max
    from netatlas.regions._affine import gated_maps, magnitude_net
    from netatlas.regions._roundoff import roundings

    if not net.nonlinear or isinstance(net.nodes[net.nonlinear[0]].op, Max):
        return
    node = net.nodes[net.nonlinear[0]]
    pre = node.inputs[0]
    if net.nodes[pre].size > RESOLUTION_MAX_UNITS or node.op.name == "identity":
        return
    umin, umax, vmin, vmax = plane.bounds
    d1, d2 = plane.d1.ravel(), plane.d2.ravel()
    x_c = plane.origin.ravel() + (umin + umax) / 2 * d1 + (vmin + vmax) / 2 * d2
    with np.errstate(over="ignore", invalid="ignore"):
        if first is not None:  # in units of its inputs' and its units' sizes, as the chain path has it
            layers, _, frame = normalised_chain([first, (np.zeros((1, len(first[1]))), np.zeros(1), None)],
                                                np.stack([d1, d2, x_c]), [1.0])
            W, b, _ = layers[0]
            maps, mu = frame @ W.T, np.abs(frame) @ np.abs(W).T
            maps[2] += b
            mu[2] += np.abs(b)
        else:
            none = [None] * len(net.nonlinear)
            maps = gated_maps(net, pre, x_c, d1, d2, none)[0]
            mags = magnitude_net(net)
            mu = (gated_maps(mags, pre, np.abs(x_c), np.abs(d1), np.abs(d2), none)[0] if mags is not None
                  else np.abs(maps))
    K = roundings(net)[pre]
    for bp in node.op.breakpoints:
        lines = maps - np.array([0.0, 0.0, bp])[:, None]
        ok = np.isfinite(lines).all(axis=0) & np.isfinite(mu).all(axis=0)
        check_resolution(lines[:, ok], (mu + np.array([0.0, 0.0, abs(bp)])[:, None])[:, ok], K + (bp != 0),
                         plane.bounds, tol, scale)


#: Maps whose units' largest entries are all within 2^+-SAFE_EXPONENT go to the kernels as they are
#: (their squares, which the distance tests form, stay far inside float64's range).
SAFE_EXPONENT = 256


def _largest_entries(maps):
    """(largest |entry| per unit (n,), all finite) of maps (F, 3, n): one compiled pass, no |maps| copy."""
    from netatlas.regions._kernels import largest_entries  # numba: loaded with the kernels, not with _units

    return largest_entries(maps)


def in_own_units(maps):
    """``maps`` (F, 3, n) with each unit divided by a power of two near its largest entry over the
    faces, when some unit is outside 2^+-SAFE_EXPONENT (else ``maps`` itself): the same zero lines,
    signs and kernel decisions bit for bit (NOTE [scale-free partitions]).

    >>> m = np.array([[[1e300, 2.0]], [[-1e300, 0.0]], [[0.0, 1.0]]]).transpose(1, 0, 2)
    >>> float(np.abs(in_own_units(m)).max()) <= 1.0
    True
    """
    if maps.size == 0:
        return maps
    big, finite = _largest_entries(maps)
    if not finite:
        raise PrecisionError("partition: a layer's values exceed float64's range on this plane; netatlas cannot "
                             "count its regions exactly")
    E = np.where(big > 0, _exponent(big), 0)
    if (np.abs(E) <= SAFE_EXPONENT).all():
        return maps
    return np.ascontiguousarray(np.ldexp(maps, -E[None, None, :].astype(np.int64)))


def windows_in_own_units(M, index):
    """``(maps, index)`` for the ``Max`` kernel with each window's entries divided by one power of two
    near the window's largest entry, when some window is outside 2^+-SAFE_EXPONENT (else as given):
    entries of one window are compared with one another, so they share a factor; windows differ.
    ``M`` (F, 3, n_in), ``index`` (n_out, k) positions in M (-1: none); scaled windows get their own
    copy of the maps (F, 3, n_out * k), as ``_graphmaps._VanishingGraph.max_ties`` makes for ties.

    >>> M = np.array([[[1e300, 3e299, 1.0, 2.0]] * 3]); index = np.array([[0, 1], [2, 3]])
    >>> maps, windows = windows_in_own_units(M, index)
    >>> windows.tolist(), float(np.abs(maps[0, 0, 2:]).max()), bool(0.5 <= np.abs(maps[0, 0, :2]).max() < 1)
    ([[0, 1], [2, 3]], 0.5, True)
    """
    if M.size == 0:
        return M, index
    present = index >= 0
    big, finite = _largest_entries(M)
    if not finite:
        raise PrecisionError("partition: a layer's values exceed float64's range on this plane; netatlas cannot "
                             "count its regions exactly")
    window_big = np.where(present, big[np.where(present, index, 0)], 0.0).max(axis=1)
    E = np.where(window_big > 0, _exponent(window_big), 0).astype(np.int64)
    if (np.abs(E) <= SAFE_EXPONENT).all():
        return M, index
    n_out, k = index.shape
    W = M[:, :, np.where(present, index, 0)]  # (F, 3, n_out, k)
    W = np.ldexp(W, -E[None, None, :, None])
    windows = np.where(present, np.arange(n_out * k).reshape(n_out, k), -1)
    return np.ascontiguousarray(W.reshape(len(M), 3, n_out * k)), windows


def _chord(a, b, px, py, hu, hv):
    """The parameters [lo, hi] (lo >= hi: none) of the part of each line p0 + s t (t = (-b, a)) in
    |x| <= hu, |y| <= hv."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        lo = np.maximum(np.where(b != 0, np.minimum((px - hu) / b, (px + hu) / b), -np.inf),
                        np.where(a != 0, np.minimum((-hv - py) / a, (hv - py) / a), -np.inf))
        hi = np.minimum(np.where(b != 0, np.maximum((px - hu) / b, (px + hu) / b), np.inf),
                        np.where(a != 0, np.maximum((-hv - py) / a, (hv - py) / a), np.inf))
    miss = ~(np.isfinite(lo) & np.isfinite(hi)) | ((b == 0) & (np.abs(px) > hu)) | ((a == 0) & (np.abs(py) > hv))
    return np.where(miss, np.inf, lo), np.where(miss, -np.inf, hi)


def _parallel_check(z0, sin, a, b, m, px, py, lo, hi, n_roundings, band, tol, scale):
    """Refuse when two lines (unit normals; ``z0`` (j, k) line k at line j's foot point (px, py),
    ``sin`` their angles, [lo, hi] line j's chord in the slice) stay within ``band`` of each other
    all along that chord, without agreeing up to round-off: the thin region between them (nearly
    parallel lines, or crossing at a tiny angle) would be merged."""
    idx = np.flatnonzero(lo < hi)
    if len(idx) < 2:
        return
    z0, sin = z0[idx], sin[idx]
    meets = np.zeros(len(a), bool)
    meets[idx] = True
    ends = [(lo[idx], np.abs(z0 + lo[idx, None] * sin)), (hi[idx], np.abs(z0 + hi[idx, None] * sin))]
    worst = np.maximum(ends[0][1], ends[1][1])
    near = meets[None, :] & (worst <= band)
    near[np.arange(len(idx)), idx] = False
    jj, kk = np.nonzero(near)  # rare: their round-off bounds only
    if not len(jj):
        return
    j = idx[jj]
    worst = worst[jj, kk]
    bound = np.zeros(len(jj))
    for s_end, _ in ends:
        s_end = s_end[jj]
        x, y = np.abs(px[j] - s_end * b[j]), np.abs(py[j] + s_end * a[j])
        err = n_roundings * EPS * ((m[0][kk] + m[0][j]) * x + (m[1][kk] + m[1][j]) * y + m[2][kk] + m[2][j])
        bound = np.maximum(bound, RESOLUTION_SLACK * (err + EPS * (x + y + np.abs(px[j]) + np.abs(py[j]))))
    close = worst > bound
    if close.any():
        d = float(worst[close].min()) * scale
        raise PrecisionError(
            f"partition: two lines of the first layer stay within {d:.3g} of each other across the slice, within the "
            f"boundary tolerance ({tol:g} x the slice's diagonal = {band * scale:.3g}), so the region between them "
            f"would be merged and the count would not be exact; use a smaller tolerance")
