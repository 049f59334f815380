"""A real region of area 3.5e-16 in a residual MLP, checked in exact rational arithmetic.

The net is the ``--peer`` case ``res 2-64-[64]x3-10`` of ``benchmarks/regions.py`` (seed 0, PyTorch's default
init): ``h = relu(W0 x + b0)``, three blocks ``h = h + relu(Wk h + bk)``, a linear head, on [-1, 1]^2. netatlas
finds 8,306 regions and regioncam (float32) 8,305: the smallest netatlas region is a triangle with sides of
~3e-8 where three zero lines (units 57, 65 and 173: one per layer) nearly meet. Which tool is right?

The reference here shares nothing with ``netatlas.regions``: the float32 weights are taken exactly
(``Fraction(float)``), the pre-activations of the region's pattern P are exact affine maps, and the square is
clipped by every unit's half-plane (z > 0 where P says on, z <= 0 where off). A pattern's set of points is
convex, and where every unit has the sign P gives it, the network *is* P's affine maps (induction over the
layers), so a positive exact area means the region exists. Its exact interior point is checked once more by
a plain forward pass (``max(z, 0)`` on Fractions). At the crossing of two of the three lines the third
unit's value is ~2e-9 with a magnitude ~1, far below float32's round-off (2**-23 ~ 1.2e-7): a float32 tool
cannot tell on which side of that line the crossing lies and collapses the triangle into one vertex.
"""

from fractions import Fraction

import numpy as np
import pytest
import torch
from torch import nn

from netatlas import Plane
from netatlas.nets import from_torch
from netatlas.regions import BOUNDARY_TOLERANCE, partition

WIDTH, N_BLOCKS, N_OUT = 64, 3, 10
FLOAT32_EPS = 2.0 ** -23


class _ResidualMLP(nn.Module):
    """``benchmarks/regions.py``'s residual case: Linear, ReLU, blocks ``h + relu(Linear(h))``, Linear."""

    def __init__(self):
        super().__init__()
        self.first = nn.Linear(2, WIDTH)
        self.blocks = nn.ModuleList(nn.Linear(WIDTH, WIDTH) for _ in range(N_BLOCKS))
        self.head = nn.Linear(WIDTH, N_OUT)

    def forward(self, x):
        h = self.first(x).relu()
        for lin in self.blocks:
            h = h + lin(h).relu()
        return self.head(h)


@pytest.fixture(scope="module")
def residual():
    """(torch model, exact weights [(W, b)] per hidden layer as Fractions)."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = _ResidualMLP().eval()
    layers = [model.first, *model.blocks]
    exact = [([[Fraction(float(w)) for w in row] for row in lin.weight.tolist()],
              [Fraction(float(c)) for c in lin.bias.tolist()]) for lin in layers]
    return model, exact


def _maps_under(exact, pattern):
    """Exact (a, b, c) of every hidden unit's pre-activation z = a u + b v + c where the pattern is ``pattern``."""
    zero = (Fraction(0),) * 3
    h, out = None, []
    for k, (W, b) in enumerate(exact):
        bits = pattern[k * WIDTH:(k + 1) * WIDTH]
        if k == 0:  # the plane is the input space itself: x = (u, v)
            z = [(row[0], row[1], c) for row, c in zip(W, b, strict=True)]
            h = [m if on else zero for m, on in zip(z, bits, strict=True)]
        else:
            z = [tuple(sum(w * m[r] for w, m in zip(row, h, strict=True)) + (c if r == 2 else 0) for r in range(3))
                 for row, c in zip(W, b, strict=True)]
            h = [tuple(hr + (zr if on else 0) for hr, zr in zip(hm, zm, strict=True))
                 for hm, zm, on in zip(h, z, bits, strict=True)]
        out += z
    return out


def _value(m, p):
    return m[0] * p[0] + m[1] * p[1] + m[2]


def _clip(polygon, m, keep_positive):
    """The part of convex ``polygon`` where ``m`` is >= 0 (``keep_positive``) or <= 0, exactly."""
    sign = 1 if keep_positive else -1
    out = []
    for p, q in zip(polygon, polygon[1:] + polygon[:1], strict=True):
        zp, zq = sign * _value(m, p), sign * _value(m, q)
        if zp >= 0:
            out.append(p)
        if zp * zq < 0:
            t = zp / (zp - zq)
            out.append((p[0] + t * (q[0] - p[0]), p[1] + t * (q[1] - p[1])))
    return out


def _area(polygon):
    pairs = zip(polygon, polygon[1:] + polygon[:1], strict=True)
    return sum(p[0] * q[1] - q[0] * p[1] for p, q in pairs) / 2


def _exact_region(exact, pattern):
    """(vertices, maps): the closure of {x in [-1, 1]^2 : the net's pattern at x is ``pattern``}, exactly."""
    one = Fraction(1)
    polygon = [(-one, -one), (one, -one), (one, one), (-one, one)]
    maps = _maps_under(exact, pattern)
    for m, on in zip(maps, pattern, strict=True):
        polygon = _clip(polygon, m, bool(on))
        if not polygon:
            break
    return polygon, maps


def _forward_pattern(exact, point):
    """The pattern at ``point`` by a plain exact forward pass, the pre-activations, and their magnitudes
    (each pre-activation's sum of |terms|: the scale of its round-off in floating point)."""
    h, zs, magnitudes = list(point), [], []
    for k, (W, b) in enumerate(exact):
        z = [sum(w * x for w, x in zip(row, h, strict=True)) + c for row, c in zip(W, b, strict=True)]
        magnitudes += [sum(abs(w * x) for w, x in zip(row, h, strict=True)) + abs(c)
                       for row, c in zip(W, b, strict=True)]
        h = [max(v, 0) for v in z] if k == 0 else [x + max(v, 0) for x, v in zip(h, z, strict=True)]
        zs += z
    return tuple(int(v > 0) for v in zs), zs, magnitudes


@pytest.mark.parametrize("method", ["graph", "chain"])
def test_smallest_region_of_the_residual_peer_case_is_real(residual, method):
    model, exact = residual
    plane = Plane.square(1.0)
    part = partition(from_torch(model, (2,)), plane, method=method)
    i = int(np.argmin(part.areas))
    assert part.areas[i] < 1e-15, "the sliver this test is about is gone: did the seed's weights change?"
    pattern = tuple(int(x) for x in part.patterns[i])

    polygon, maps = _exact_region(exact, pattern)
    area = _area(polygon)
    assert area > 0  # a region with this pattern exists, with positive area

    # its edges lie on the zero lines netatlas labelled, and its vertices are where netatlas put them (a vertex
    # moves by at most the boundary tolerance when it is snapped onto a line: NOTE [tolerances])
    on_edges = {u for u, m in enumerate(maps) for p, q in zip(polygon, polygon[1:] + polygon[:1], strict=True)
                if _value(m, p) == 0 and _value(m, q) == 0}
    labels = part.labels[part.offsets[i]:part.offsets[i + 1]]
    assert on_edges == set(labels.tolist())
    slack = BOUNDARY_TOLERANCE * part.diameter
    got = part.polygon(i)
    want = np.array([[float(c) for c in p] for p in polygon])
    assert len(got) == len(want)
    assert all(np.hypot(*(want - v).T).min() <= slack for v in got)
    # moving each vertex by <= slack changes the area by <= perimeter * slack (+ O(slack^2))
    perimeter = float(np.hypot(*(np.roll(want, -1, axis=0) - want).T).sum())
    assert abs(part.areas[i] - float(area)) <= perimeter * slack + slack ** 2

    # an interior point (the exact centroid) has the pattern by a plain forward pass, strictly
    centroid = tuple(sum(p[r] for p in polygon) / len(polygon) for r in range(2))
    at_centroid, z, _ = _forward_pattern(exact, centroid)
    assert at_centroid == pattern
    assert all(v != 0 for u, v in enumerate(z) if u in on_edges)


def test_the_region_is_below_float32_resolution(residual):
    """Why regioncam (float32) merges it: at each vertex the third line's unit is within float32 round-off
    of zero (relative to the unit's magnitude), and the triangle is narrower than 2**-23 x the diagonal."""
    model, exact = residual
    part = partition(from_torch(model, (2,)), Plane.square(1.0))
    i = int(np.argmin(part.areas))
    pattern = tuple(int(x) for x in part.patterns[i])
    polygon, maps = _exact_region(exact, pattern)
    assert len(polygon) == 3
    units = sorted(set(part.labels[part.offsets[i]:part.offsets[i + 1]].tolist()))
    for p in polygon:
        values = [abs(_value(maps[u], p)) for u in units]
        assert sorted(values)[:2] == [0, 0]  # a crossing of two of the lines
        third = units[int(np.argmax(values))]
        _, _, magnitudes = _forward_pattern(exact, p)
        assert 0 < max(values) < FLOAT32_EPS * magnitudes[third]  # the third unit: zero up to float32 round-off
    a, b, c = (np.array([float(x) for x in p]) for p in polygon)
    longest = max(np.hypot(*(b - a)), np.hypot(*(c - b)), np.hypot(*(a - c)))
    width = 2 * float(_area(polygon)) / longest  # the triangle's smallest height
    assert width < FLOAT32_EPS * part.diameter
