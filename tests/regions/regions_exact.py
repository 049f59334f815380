"""An exact rational reference for the activation regions of a small MLP on a rectangle (tests only).

``exact_regions(weights, biases, bounds, negative_slope)`` cuts the rectangle recursively with
``fractions.Fraction`` arithmetic, nothing rounded and nothing shared with netatlas.regions:

- Layer by layer, every face is a convex polygon on which all earlier units have a fixed on/off
  state, so each unit's pre-activation restricted to the face is an exact affine map
  ``z = a u + b v + c`` (rational a, b, c).
- A unit cuts a face exactly when z takes both signs at its vertices; the two pieces are the exact
  convex polygons ``z >= 0`` and ``z <= 0``.
- The pattern bit of a unit on a (final) piece is 1 when z > 0 inside it and 0 otherwise. In
  particular **a unit whose restricted map is identically zero on a face (a = b = c = 0) does not
  cut it and is recorded as inactive (bit 0)**, the same as a unit that is <= 0 on the whole face;
  a unit whose zero line only touches a face (through a vertex or along an edge) does not cut it.

Within one face the pieces are the cells of a line arrangement, so distinct pieces have distinct
patterns: the pieces are the activation regions (the maximal convex sets of constant pattern that
the recursive construction produces; netatlas.regions.partition returns the same cells).

``Fraction(x)`` of a float is its exact binary value, so weights given as floats (e.g. read back
from a float64 torch layer) are used exactly as the network stores them.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np

__all__ = ["ExactRegion", "exact_regions", "exact_net", "exact_topology", "min_clearance"]


@dataclass(frozen=True)
class ExactRegion:
    """One activation region: ``pattern`` (N,) tuple of 0/1 over all hidden units (layer order),
    ``polygon`` counter-clockwise vertices (k, 2) of Fractions, ``area`` (Fraction), and the exact
    output map ``linear`` (n_out, 2), ``offset`` (n_out,) of Fractions: y = linear @ (u, v) + offset."""

    pattern: tuple
    polygon: tuple
    area: Fraction
    linear: tuple
    offset: tuple


def _fractions(a):
    return [[Fraction(x) for x in row] for row in np.asarray(a, dtype=object).tolist()]


def _split(poly, m):
    """The parts of convex polygon ``poly`` where ``m`` = (a, b, c) is >= 0 and <= 0 (exact)."""
    a, b, c = m
    z = [a * u + b * v + c for u, v in poly]
    pos, neg = [], []
    k = len(poly)
    for i in range(k):
        p, q, zp, zq = poly[i], poly[(i + 1) % k], z[i], z[(i + 1) % k]
        if zp >= 0:
            pos.append(p)
        if zp <= 0:
            neg.append(p)
        if (zp > 0 > zq) or (zp < 0 < zq):
            w = zp / (zp - zq)
            x = (p[0] + w * (q[0] - p[0]), p[1] + w * (q[1] - p[1]))
            pos.append(x)
            neg.append(x)
    return pos, neg


def _area(poly):
    k = len(poly)
    return sum(poly[i][0] * poly[(i + 1) % k][1] - poly[(i + 1) % k][0] * poly[i][1] for i in range(k)) / 2


def _values(poly, m):
    return [m[0] * u + m[1] * v + m[2] for u, v in poly]


def _affine_layer(W, b, maps, slopes):
    """Maps of ``W (s * h) + b`` from the maps of h (list of (a, b, c)) and slopes s."""
    out = []
    for row, bias in zip(W, b, strict=True):
        acc = [Fraction(0), Fraction(0), bias]
        for w, m, s in zip(row, maps, slopes, strict=True):
            if w and s:
                for r in range(3):
                    acc[r] += w * s * m[r]
        out.append(tuple(acc))
    return out


def exact_regions(weights, biases, bounds, negative_slope=0.0, plane=None, window=None) -> list[ExactRegion]:
    """Exact activation regions of ``x -> W_L phi(... phi(W_1 x + b_1) ...) + b_L`` on the rectangle
    ``bounds`` = (umin, umax, vmin, vmax) of the plane ``x = origin + u d1 + v d2`` (``plane`` =
    (origin, d1, d2), default the 2-D input space itself), phi = ReLU (``negative_slope`` 0) or
    LeakyReLU. ``weights[k]`` (n_k, n_{k-1}) and ``biases[k]`` (n_k,) are ints, Fractions or
    floats (taken exactly); the last layer is affine. ``window``: a convex polygon (k, 2),
    counter-clockwise in plane coordinates, instead of the rectangle (``bounds`` then unused). See the
    module docstring for the rule on units that vanish on a whole face.

    >>> regs = exact_regions([[[1, 0], [1, 0]], [[1, -1]]], [[0, 0], [0]], (-1, 1, -1, 1))
    >>> [(r.pattern, r.area) for r in regs]
    [((1, 1), Fraction(2, 1)), ((0, 0), Fraction(2, 1))]
    """
    Ws = [_fractions(W) for W in weights]
    bs = [[Fraction(x) for x in np.asarray(b, dtype=object).tolist()] for b in biases]
    alpha = Fraction(negative_slope)
    if window is None:
        umin, umax, vmin, vmax = (Fraction(x) for x in bounds)
        square = ((umin, vmin), (umax, vmin), (umax, vmax), (umin, vmax))
    else:
        square = tuple((Fraction(u), Fraction(v)) for u, v in window)
    inputs = _input_maps(plane)
    # faces: (polygon, maps of the current layer's input, pattern so far, slopes of those inputs)
    faces = [(square, inputs, (), [Fraction(1)] * len(inputs))]
    for W, b in zip(Ws[:-1], bs[:-1], strict=True):
        nxt = []
        for poly, maps, pattern, slopes in faces:
            z = _affine_layer(W, b, maps, slopes)
            pieces = [(poly, ())]
            for m in z:
                cut = []
                for piece, bits in pieces:
                    vals = _values(piece, m)
                    if max(vals) > 0 and min(vals) < 0:
                        pos, neg = _split(piece, m)
                        cut += [(pos, bits + (1,)), (neg, bits + (0,))]
                    else:
                        cut.append((piece, bits + (1 if max(vals) > 0 else 0,)))
                pieces = cut
            for piece, bits in pieces:
                nxt.append((tuple(piece), z, pattern + bits, [Fraction(1) if x else alpha for x in bits]))
        faces = nxt
    out = []
    for poly, maps, pattern, slopes in faces:
        y = _affine_layer(Ws[-1], bs[-1], maps, slopes)
        out.append(ExactRegion(pattern, poly, _area(poly), tuple((m[0], m[1]) for m in y),
                               tuple(m[2] for m in y)))
    return out


def _input_maps(plane):
    """Maps (d1_k, d2_k, origin_k) of the input coordinates in plane coordinates (u, v)."""
    if plane is None:
        plane = ((0, 0), (1, 0), (0, 1))
    origin, d1, d2 = ([Fraction(x) for x in np.asarray(a, dtype=object).ravel().tolist()] for a in plane)
    return [(a, b, c) for a, b, c in zip(d1, d2, origin, strict=True)]


def min_clearance(weights, biases, bounds, negative_slope=0.0, plane=None) -> float:
    """The smallest distance (relative to the rectangle's diagonal) between a vertex of an exact
    region and a unit's zero line that does not pass through it, over the units of each face
    (float). Tests assume it is well above netatlas' boundary tolerance, where a float partition
    can resolve every region."""
    umin, umax, vmin, vmax = bounds
    diam = float(np.hypot(float(umax - umin), float(vmax - vmin)))
    best = np.inf
    Ws = [_fractions(W) for W in weights]
    bs = [[Fraction(x) for x in np.asarray(b, dtype=object).tolist()] for b in biases]
    alpha = Fraction(negative_slope)
    for region in exact_regions(weights, biases, bounds, negative_slope, plane):
        # the affine maps of every hidden unit on this region, from its pattern
        maps = _input_maps(plane)
        slopes = [Fraction(1)] * len(maps)
        pos = 0
        for W, b in zip(Ws[:-1], bs[:-1], strict=True):
            z = _affine_layer(W, b, maps, slopes)
            for m in z:
                g = float(m[0]) ** 2 + float(m[1]) ** 2
                if g == 0:
                    continue
                for v in _values(region.polygon, m):
                    if v != 0:
                        best = min(best, abs(float(v)) / np.sqrt(g) / diam)
            bits = region.pattern[pos:pos + len(z)]
            pos += len(z)
            maps, slopes = z, [Fraction(1) if x else alpha for x in bits]
    return best


def exact_net(weights, biases, negative_slope=0.0):
    """The same network as a netatlas Net (float64 torch layers holding the weights exactly when
    they are floats, e.g. small integers or dyadic rationals)."""
    import torch
    from torch import nn

    from netatlas.nets import from_torch

    layers = []
    for k, (W, b) in enumerate(zip(weights, biases, strict=True)):
        W = np.asarray(W, dtype=np.float64)
        lin = nn.Linear(W.shape[1], W.shape[0]).double()
        with torch.no_grad():
            lin.weight.copy_(torch.as_tensor(W))
            lin.bias.copy_(torch.as_tensor(np.asarray(b, dtype=np.float64)))
        layers.append(lin)
        if k < len(weights) - 1:
            layers.append(nn.LeakyReLU(negative_slope) if negative_slope else nn.ReLU())
    return from_torch(nn.Sequential(*layers))


def exact_topology(regions):
    """The planar graph of exact regions: (vertices, runs) with ``vertices`` the sorted distinct polygon
    corners (tuples of Fractions) and ``runs`` {(i, j): pattern} the half-edges: the pieces of each region's
    sides between consecutive vertices (a side is split at every vertex lying inside it, tested exactly),
    i -> j counter-clockwise around the region whose pattern is given. An edge of the window is run one way,
    an interior edge both ways.

    >>> regs = exact_regions([[[1, 0]], [[1]]], [[0], [0]], (-1, 1, -1, 1))
    >>> vertices, runs = exact_topology(regs)
    >>> len(vertices), len({frozenset(r) for r in runs})   # the square cut at u = 0: 6 vertices, 7 edges
    (6, 7)
    """
    vertices = sorted({p for r in regions for p in r.polygon})
    number = {p: i for i, p in enumerate(vertices)}
    runs = {}
    for r in regions:
        poly = r.polygon
        for k in range(len(poly)):
            p, q = poly[k], poly[(k + 1) % len(poly)]
            inside = []
            for w in vertices:  # exactly on the segment, strictly between p and q
                cross = (q[0] - p[0]) * (w[1] - p[1]) - (q[1] - p[1]) * (w[0] - p[0])
                if cross == 0 and w not in (p, q):
                    t = ((w[0] - p[0]) * (q[0] - p[0]) + (w[1] - p[1]) * (q[1] - p[1])) / \
                        ((q[0] - p[0]) ** 2 + (q[1] - p[1]) ** 2)
                    if 0 < t < 1:
                        inside.append((t, w))
            chain = [p] + [w for _, w in sorted(inside)] + [q]
            for a, b in zip(chain[:-1], chain[1:], strict=True):
                assert (number[a], number[b]) not in runs, "exact_topology: two regions run one edge one way"
                runs[(number[a], number[b])] = r.pattern
    return vertices, runs
