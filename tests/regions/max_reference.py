"""An independent, slow reference for exact regions of graphs with max pooling and hardtanh (tests only).

Region growing as in ``regions_reference``: the state at a point p is the sign of every
pre-activation minus every breakpoint of its activation, and the arg-max (first maximal entry) of
every window of every ``Max`` node; the region of p is the slice rectangle clipped by the half-planes
``s (z(p) - b + J (q - p)) >= 0`` of every unit and breakpoint and ``z_c(p) - z_j(p) + (J_c - J_j)(q - p)
>= 0`` of every window entry j against the window's arg-max c, with z and J from torch autograd.
Pure numpy, nothing shared with netatlas.regions.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from regions_reference import clip

from netatlas.nets._ir import Max


def _breakpoints(op):
    if op.name == "identity":
        return []
    if op.name == "hardtanh":
        return [v for v in (op.params["min_val"], op.params["max_val"]) if math.isfinite(v)]
    return [0.0]


def _functions(net, plane):
    origin = torch.as_tensor(plane.origin.ravel(), dtype=torch.float64)
    basis = torch.as_tensor(plane.basis, dtype=torch.float64)

    def f(uv):  # (B, 2) -> (B, N): pre-activations minus breakpoints, then window entries
        values = net.forward_all(origin + uv @ basis.T)
        parts = []
        for i in net.nonlinear:
            node = net.nodes[i]
            z = values[node.inputs[0]]
            if isinstance(node.op, Max):
                index = node.op.index
                parts.append(z[:, index.clamp_min(0)].reshape(len(z), -1))
            else:
                parts += [z - b for b in _breakpoints(node.op)]
        return torch.cat(parts, dim=1)

    return f


def _layout(net):
    """Per nonlinear node: ('bits', n_columns) or ('max', index ndarray)."""
    out = []
    for i in net.nonlinear:
        op = net.nodes[i].op
        if isinstance(op, Max):
            out.append(("max", op.index.numpy()))
        else:
            out.append(("bits", net.nodes[i].size * len(_breakpoints(op))))
    return out


def _local(f, points):
    uv = torch.as_tensor(np.asarray(points, dtype=np.float64))
    with torch.no_grad():
        z = f(uv)
        cols = [torch.func.jvp(f, (uv,), (torch.zeros_like(uv).index_fill_(1, torch.tensor([k]), 1.0),))[1]
                for k in range(2)]
    return z.numpy(), torch.stack(cols, dim=2).numpy()


def _state_and_halfplanes(layout, zp, Jp, p):
    key, planes, col = [], [], 0
    for kind, info in layout:
        if kind == "bits":
            z, J = zp[col:col + info], Jp[col:col + info]
            key.append((z > 0).astype(np.int64))
            for j in range(info):
                s = 1.0 if z[j] > 0 else -1.0
                planes.append((s * J[j], s * (z[j] - J[j] @ p)))
            col += info
        else:
            n_out, k = info.shape
            z = zp[col:col + n_out * k].reshape(n_out, k)
            J = Jp[col:col + n_out * k].reshape(n_out, k, 2)
            z = np.where(info >= 0, z, -np.inf)
            choice = np.argmax(z == z.max(1, keepdims=True), axis=1)  # first maximal entry
            key.append(choice)
            for w in range(n_out):
                c = choice[w]
                for j in range(k):
                    if j != c and info[w, j] >= 0:
                        g = J[w, c] - J[w, j]
                        planes.append((g, z[w, c] - z[w, j] - g @ p))
            col += n_out * k
    return np.concatenate(key).tobytes(), planes


def reference_regions(net, plane, *, eps=1e-7, max_regions=5000):
    """Dict state (bytes) -> polygon (k, 2) of every region."""
    f = _functions(net, plane)
    layout = _layout(net)
    umin, umax, vmin, vmax = plane.bounds
    rect = np.array([[umin, vmin], [umax, vmin], [umax, vmax], [umin, vmax]], float)
    diam = np.hypot(umax - umin, vmax - vmin)
    wave = np.array([[(umin + umax) / 2, (vmin + vmax) / 2]])
    regions = {}
    while len(wave):
        z, J = _local(f, wave)
        nxt = []
        for p, zp, Jp in zip(wave, z, J, strict=True):
            key, planes = _state_and_halfplanes(layout, zp, Jp, p)
            if key in regions:
                continue
            poly = rect.copy()
            for (a, b), c in planes:
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
                normal = np.array([d[1], -d[0]]) / length
                q = (e0 + e1) / 2 + eps * diam * normal
                if umin < q[0] < umax and vmin < q[1] < vmax:
                    nxt.append(q)
        if len(regions) > max_regions:
            raise RuntimeError("too many regions for the reference")
        wave = np.array(nxt).reshape(-1, 2)
    return regions
