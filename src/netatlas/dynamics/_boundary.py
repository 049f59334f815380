"""Distance of each sample to the decision boundary: exact for 2-D piecewise-linear nets (through
``netatlas.regions``), first-order ``|m(x)|/||grad m(x)||`` otherwise.

Kept small and isolated on purpose: the exact branch is the only place in ``netatlas.dynamics`` that
depends on the regions lens.
"""

from __future__ import annotations

import warnings
from typing import Literal

import numpy as np
import torch

from netatlas._deprecate import renamed
from netatlas._errors import UnsupportedLayerError
from netatlas.dynamics._zones import _inputs
from netatlas.nets import as_net

__all__ = ["BOUNDARY_METHODS", "boundary_distance", "logit_margin", "segment_distance"]

BOUNDARY_METHODS = ("auto", "exact", "linear")
# Fraction of the data's bounding box added on each side of the window the exact boundary is computed in.
WINDOW_MARGIN = 0.25


def logit_margin(logits: torch.Tensor) -> torch.Tensor:
    """The logit margin whose zero set is the decision boundary, shape (B,).

    One output: the logit itself. Several: top logit minus the runner-up (>= 0; it is 0 exactly where
    the predicted class changes).

    Examples
    --------
    >>> logit_margin(torch.tensor([[2.0, 0.5, 1.0]]))
    tensor([1.])
    """
    if logits.shape[1] == 1:
        return logits[:, 0]
    top2 = logits.topk(2, dim=1).values
    return top2[:, 0] - top2[:, 1]


def segment_distance(points, segments, *, chunk_size: int = 2048) -> np.ndarray:
    """Euclidean distance from each point to the nearest of a set of segments.

    Parameters
    ----------
    points : array_like of shape (n_points, 2)
    segments : array_like of shape (n_segments, 2, 2)
        Each segment as its two end points.

    Returns
    -------
    ndarray of shape (n_points,)
        ``inf`` if there are no segments.

    Examples
    --------
    >>> segment_distance([[0.0, 1.0], [3.0, 0.0]], [[[-1.0, 0.0], [1.0, 0.0]]])
    array([1., 2.])
    """
    p = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    s = np.asarray(segments, dtype=np.float64).reshape(-1, 2, 2)
    if len(s) == 0:
        return np.full(len(p), np.inf)
    a, ab = s[:, 0], s[:, 1] - s[:, 0]
    length2 = np.maximum((ab * ab).sum(1), 1e-300)
    out = np.empty(len(p))
    for start in range(0, len(p), chunk_size):
        ap = p[start:start + chunk_size, None, :] - a[None]  # (P, S, 2)
        t = np.clip((ap * ab[None]).sum(2) / length2, 0.0, 1.0)
        d2 = ((ap - t[..., None] * ab[None]) ** 2).sum(2)
        out[start:start + chunk_size] = np.sqrt(d2.min(1))
    return out


def _exact(net, x64: np.ndarray) -> np.ndarray:
    from netatlas.regions import partition
    from netatlas.slices import Plane

    lo, hi = x64.min(0), x64.max(0)
    pad = WINDOW_MARGIN * np.maximum(hi - lo, 1e-3)
    plane = Plane.window((lo[0] - pad[0], hi[0] + pad[0], lo[1] - pad[1], hi[1] + pad[1]))
    boundary = partition(net, plane).decision_boundary()
    segments = np.asarray(getattr(boundary, "segments", boundary))  # a Segments result or a plain (S, 2, 2)
    return segment_distance(x64, segments)


def _linear(net, x64: np.ndarray) -> np.ndarray:
    x = torch.as_tensor(x64).clone().requires_grad_(True)
    logits = net.forward_all(x)[-1]
    if logits.shape[1] == 1:
        margin = logits[:, 0]
        (grad,) = torch.autograd.grad(margin.sum(), x)  # samples are independent: row i is grad m(x_i)
        norm = torch.linalg.vector_norm(grad, dim=1)
        d = torch.where(norm > 0, margin.abs() / torch.where(norm > 0, norm, 1.0), torch.inf)
        return d.detach().numpy()
    # several classes: the predicted class c's region is bounded by the ties l_c = l_j for every j != c, so
    # the first-order distance is the least over j of (l_c - l_j) / ||grad (l_c - l_j)||, not only the
    # runner-up's (a close logit can belong to a boundary that is far away in input space)
    grads = torch.stack([torch.autograd.grad(logits[:, j].sum(), x, retain_graph=j < logits.shape[1] - 1)[0]
                         for j in range(logits.shape[1])], 1)  # (B, K, d)
    logits, grads = logits.detach(), grads.detach()
    top = logits.argmax(1)
    rows = torch.arange(len(top))
    margins = logits[rows, top][:, None] - logits  # (B, K), >= 0
    norms = torch.linalg.vector_norm(grads[rows, top][:, None, :] - grads, dim=2)
    d = torch.where(norms > 0, margins / torch.where(norms > 0, norms, 1.0), torch.inf)
    d[rows, top] = torch.inf
    return d.amin(1).numpy()


@renamed(model="net", x="points")
def boundary_distance(net, points, *, method: Literal["auto", "exact", "linear"] = "auto") -> np.ndarray:
    """Distance of each sample to the network's decision boundary (unsigned).

    Parameters
    ----------
    net : Net or torch.nn.Module
    points : array_like of shape (n_samples, *input_shape)
    method : {"auto", "exact", "linear"}
        ``exact``: the boundary segments of ``netatlas.regions.partition`` over a window around the data
        (the data's bounding box plus ``WINDOW_MARGIN`` of it per side); needs 2 inputs, piecewise-linear
        activations and the regions lens. ``linear``: the first-order distance ``|m(x)|/||grad_x m(x)||``,
        m the logit for one output; with several classes the least over the other classes j of
        ``(l_c - l_j)/||grad_x (l_c - l_j)||`` (c the predicted class), since any tie bounds c's region.
        Exact for affine nets, and when the boundary's nearest point lies in x's linear region.
        ``auto``: exact when possible, else linear.

    Returns
    -------
    ndarray of shape (n_samples,)
        ``inf`` where no boundary is found (a constant classifier).

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> model = nn.Sequential(nn.Linear(2, 1))
    >>> with torch.no_grad():
    ...     _ = model[0].weight.copy_(torch.tensor([[3.0, 4.0]])); _ = model[0].bias.zero_()
    >>> boundary_distance(model, torch.tensor([[1.0, 2.0]]), method="linear")
    array([2.2])
    """
    if method not in BOUNDARY_METHODS:
        raise ValueError(f"boundary_distance: unknown method {method!r}; choose one of {BOUNDARY_METHODS}")
    net = as_net(net)
    x64 = _inputs(net, points)
    exact_ok = net.n_inputs == 2 and net.piecewise_linear
    if method == "exact" and not exact_ok:
        raise ValueError("boundary_distance: method='exact' needs a network with 2 inputs and piecewise-linear "
                         f"activations (this one has {net.n_inputs} inputs, piecewise linear: "
                         f"{net.piecewise_linear}); use method='linear'")
    if method == "exact":
        return _exact(net, x64)
    if method == "auto" and exact_ok:
        try:
            return _exact(net, x64)
        except UnsupportedLayerError as exc:  # an op the regions lens cannot read: not applicable
            warnings.warn(f"boundary_distance: exact boundary unavailable ({type(exc).__name__}: {exc}); "
                          "using the first-order distance", stacklevel=3)  # past @renamed
    return _linear(net, x64)
