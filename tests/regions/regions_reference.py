"""An independent, slow reference for exact regions (tests only).

Region growing: the region containing a point p is the slice rectangle intersected with the
half-planes ``s_j (z_j(p) + J_j (q - p)) >= 0`` of *every* unit, where z and its Jacobian J with
respect to (u, v) come from torch autograd at p (this set is the closure of p's linear region: the
first unit to change sign along a segment leaving the region does so on its own local affine
extension). Starting from the centre, each region's edges are crossed at their midpoints to find
the neighbouring regions, until no new pattern appears. Pure numpy clipping, no numba, nothing
shared with netatlas.regions.
"""

from __future__ import annotations

import numpy as np
import torch


def _pre_activation_fn(net, plane):
    origin = torch.as_tensor(plane.origin.ravel(), dtype=torch.float64)
    basis = torch.as_tensor(plane.basis, dtype=torch.float64)

    def f(uv):  # (B, 2) -> (B, N)
        x = origin + uv @ basis.T
        values = net.forward_all(x)
        return torch.cat([values[net.nodes[i].inputs[0]] for i in net.activations], dim=1)

    return f


def local_affine(net, plane, points):
    """z (P, N) and dz/d(u, v) (P, N, 2) at points (P, 2), by forward-mode autograd."""
    f = _pre_activation_fn(net, plane)
    uv = torch.as_tensor(np.asarray(points, dtype=np.float64))
    with torch.no_grad():
        z = f(uv)
        cols = [torch.func.jvp(f, (uv,), (torch.zeros_like(uv).index_fill_(1, torch.tensor([k]), 1.0),))[1]
                for k in range(2)]
    return z.numpy(), torch.stack(cols, dim=2).numpy()


def clip(poly, a, b, c):
    """Part of convex polygon (k, 2) where a u + b v + c >= 0."""
    out = []
    k = len(poly)
    z = poly @ np.array([a, b]) + c
    for i in range(k):
        p, q, zp, zq = poly[i], poly[(i + 1) % k], z[i], z[(i + 1) % k]
        if zp >= 0:
            out.append(p)
        if (zp > 0 > zq) or (zp < 0 < zq):
            out.append(p + zp / (zp - zq) * (q - p))
    return np.array(out).reshape(-1, 2)


def area(poly):
    if len(poly) < 3:
        return 0.0
    u, v = poly[:, 0], poly[:, 1]
    return 0.5 * float(np.sum(u * np.roll(v, -1) - np.roll(u, -1) * v))


def reference_regions(net, plane, *, eps=1e-7, max_regions=5000):
    """Dict pattern (bytes) -> polygon (k, 2) of every linear region."""
    umin, umax, vmin, vmax = plane.bounds
    rect = np.array([[umin, vmin], [umax, vmin], [umax, vmax], [umin, vmax]], float)
    diam = np.hypot(umax - umin, vmax - vmin)
    wave = np.array([[(umin + umax) / 2, (vmin + vmax) / 2]])
    regions = {}
    while len(wave):
        z, J = local_affine(net, plane, wave)  # one batched evaluation per wave of points
        new = {}
        for p, zp, Jp in zip(wave, z, J, strict=True):
            key = (zp > 0).tobytes()
            if key not in regions and key not in new:
                new[key] = (p, zp, Jp)
        nxt = []
        for key, (p, zp, Jp) in new.items():
            poly = rect.copy()
            for j in range(len(zp)):
                s = 1.0 if zp[j] > 0 else -1.0
                a, b = s * Jp[j]
                c = s * (zp[j] - Jp[j] @ p)
                if a == 0 and b == 0:
                    continue
                poly = clip(poly, a, b, c)
            regions[key] = poly
            k = len(poly)
            for i in range(k):
                e0, e1 = poly[i], poly[(i + 1) % k]
                d = e1 - e0
                length = np.hypot(*d)
                if length < 1e-12 * diam:
                    continue
                normal = np.array([d[1], -d[0]]) / length  # outward for a counter-clockwise polygon
                q = (e0 + e1) / 2 + eps * diam * normal
                if umin < q[0] < umax and vmin < q[1] < vmax:
                    nxt.append(q)
        if len(regions) > max_regions:
            raise RuntimeError("too many regions for the reference")
        wave = np.array(nxt).reshape(-1, 2)
    return regions
