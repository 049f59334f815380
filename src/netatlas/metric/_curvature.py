"""Scalar curvature of the metric a feature map induces on a 2-D input space.

Convention: in 2-D the scalar curvature is ``R = 2 K`` with K the Gaussian curvature, so the unit sphere
has ``R = +2`` and a sphere of radius r has ``R = 2 / r^2``. (The magnification paper's public code
returns 3x this value; docs/papers/zavatoneveth2023.md.)

# NOTE [curvature of an embedded surface]
The features embed the input plane as a surface in flat R^m with the induced metric g = J^T J. By
Gauss's equation its curvature needs only second derivatives of Phi:

    R_1212 = <P d11 Phi, P d22 Phi> - |P d12 Phi|^2,    P = I - J g^{-1} J^T (projection on normals)

and K = R_1212 / det g. Writing the tangential part through ``J^T H_ab`` (a 2-vector) avoids forming P:
``<P a, P b> = a.b - (J^T a)^T g^{-1} (J^T b)``. For a metric given directly (no embedding, e.g. an
infinite-width closed form), :func:`scalar_curvature_from_metric` uses Brioschi's formula with
autodiff derivatives of g.
"""

from __future__ import annotations

import numpy as np
import torch

from netatlas._deprecate import renamed
from netatlas.metric._metric import _prepare, to_numpy

__all__ = ["scalar_curvature", "scalar_curvature_from_metric"]


def _check_2d(x, caller):
    if x.shape[1] != 2:
        raise ValueError(
            f"{caller}: curvature is implemented for 2-D inputs; got inputs with d={x.shape[1]} "
            "(slice a higher-dimensional input with a netatlas.Plane and a 2-D wrapper)"
        )


@renamed(feature_fn="net", x="points")
def scalar_curvature(net, points, *, scale_by_width: bool | None = None) -> np.ndarray:
    """Scalar curvature ``R = 2K`` of the induced metric at each point of a 2-D input space.

    Parameters
    ----------
    net : Net, torch module, callable or (model, layer_name)
        The feature map Phi: R^2 -> R^m (see :func:`netatlas.metric.metric`); it must be twice
        differentiable (piecewise-linear networks are flat, R = 0, inside each linear region).
    points : Tensor or ndarray of shape (B, 2)
        Points of input space.
    scale_by_width : bool, optional
        Scale the features by 1/sqrt(m) (does not change R's sign; R scales by m).

    Returns
    -------
    R : ndarray of shape (B,), float64
        ``NaN`` where the metric is singular.

    Notes
    -----
    Computed in float64 by Gauss's equation (NOTE [curvature of an embedded surface]):
    ``K = (<P H_11, P H_22> - |P H_12|^2) / det g`` with ``H_ab = d_a d_b Phi``.

    Examples
    --------
    >>> import torch
    >>> def sphere(x):                                    # unit sphere in (polar, azimuth) coordinates
    ...     u, v = x[:, 0], x[:, 1]
    ...     return torch.stack([u.sin() * v.cos(), u.sin() * v.sin(), u.cos()], 1)
    >>> scalar_curvature(sphere, torch.tensor([[1.0, 0.3], [2.0, -1.0]], dtype=torch.float64))
    array([2., 2.])
    >>> scalar_curvature(lambda x: 5 * x, torch.zeros(1, 2, dtype=torch.float64))   # flat
    array([0.])
    """
    fm, points = _prepare(net, points, "scalar_curvature", scale_by_width)
    _check_2d(points, "scalar_curvature")
    points = points.to(torch.float64)

    def one(point):
        return fm.fn(point[None])[0]

    first = torch.func.jacfwd(one)
    J = torch.func.vmap(first)(points)  # (B, m, 2)
    H = torch.func.vmap(torch.func.jacfwd(first))(points)  # (B, m, 2, 2)
    g = J.mT @ J
    det = g[:, 0, 0] * g[:, 1, 1] - g[:, 0, 1] ** 2
    g_inv = (
        torch.stack(
            [torch.stack([g[:, 1, 1], -g[:, 0, 1]], -1), torch.stack([-g[:, 1, 0], g[:, 0, 0]], -1)], -2
        )
        / det[:, None, None]
    )
    h11, h22, h12 = H[..., 0, 0], H[..., 1, 1], H[..., 0, 1]  # (B, m)

    def normal_inner(a, b):  # <P a, P b> = a.b - (J^T a)^T g^{-1} (J^T b)
        ta, tb = (J.mT @ a[..., None]), (J.mT @ b[..., None])
        return (a * b).sum(-1) - (ta.mT @ g_inv @ tb)[:, 0, 0]

    r1212 = normal_inner(h11, h22) - normal_inner(h12, h12)
    return to_numpy(torch.where(det > 0, 2 * r1212 / det, torch.nan))


def scalar_curvature_from_metric(metric_fn, x) -> np.ndarray:
    """Scalar curvature ``R = 2K`` of a 2-D metric given as a differentiable function.

    Parameters
    ----------
    metric_fn : callable
        Batched ``(B, 2) -> (B, 2, 2)`` metric tensor, differentiable twice with ``torch.func``.
    x : Tensor or ndarray of shape (B, 2)
        Points.

    Returns
    -------
    R : ndarray of shape (B,), float64

    Notes
    -----
    Brioschi's formula with ``E = g_11, F = g_12, G = g_22`` and subscripts for partial derivatives::

        K = (det [[-E_vv/2 + F_uv - G_uu/2, E_u/2, F_u - E_v/2], [F_v - G_u/2, E, F], [G_v/2, F, G]]
             - det [[0, E_v/2, G_u/2], [E_v/2, E, F], [G_u/2, F, G]]) / (E G - F^2)^2

    Examples
    --------
    >>> import torch
    >>> sphere = lambda x: torch.diag_embed(torch.stack([torch.ones_like(x[:, 0]), x[:, 0].sin() ** 2], 1))
    >>> scalar_curvature_from_metric(sphere, torch.tensor([[1.0, 0.0]], dtype=torch.float64)).round(10)
    array([2.])
    """
    return to_numpy(_curvature_from_metric(metric_fn, x))


def _curvature_from_metric(metric_fn, x) -> torch.Tensor:
    """:func:`scalar_curvature_from_metric` as a float64 tensor (for callers inside the lens)."""
    x = torch.as_tensor(x, dtype=torch.float64)
    if x.dim() != 2:
        raise ValueError(f"scalar_curvature_from_metric: x must have shape (B, 2); got {tuple(x.shape)}")
    _check_2d(x, "scalar_curvature_from_metric")

    def one(point):
        return metric_fn(point[None])[0]

    g = torch.func.vmap(one)(x)
    dg = torch.func.vmap(torch.func.jacfwd(one))(x)  # (B, 2, 2, 2): dg[..., i, j, a] = d_a g_ij
    d2g = torch.func.vmap(torch.func.jacfwd(torch.func.jacfwd(one)))(x)  # (B, 2, 2, 2, 2)
    E, F, G = g[:, 0, 0], g[:, 0, 1], g[:, 1, 1]
    E_u, E_v = dg[:, 0, 0, 0], dg[:, 0, 0, 1]
    F_u, F_v = dg[:, 0, 1, 0], dg[:, 0, 1, 1]
    G_u, G_v = dg[:, 1, 1, 0], dg[:, 1, 1, 1]
    E_vv, F_uv, G_uu = d2g[:, 0, 0, 1, 1], d2g[:, 0, 1, 0, 1], d2g[:, 1, 1, 0, 0]
    zero = torch.zeros_like(E)
    A = torch.stack(
        [
            torch.stack([-E_vv / 2 + F_uv - G_uu / 2, E_u / 2, F_u - E_v / 2], -1),
            torch.stack([F_v - G_u / 2, E, F], -1),
            torch.stack([G_v / 2, F, G], -1),
        ],
        -2,
    )
    B = torch.stack(
        [
            torch.stack([zero, E_v / 2, G_u / 2], -1),
            torch.stack([E_v / 2, E, F], -1),
            torch.stack([G_u / 2, F, G], -1),
        ],
        -2,
    )
    det = E * G - F**2
    # 3 x 3 determinants by cofactors (no pivoting LU, see NOTE [log-determinants] in _metric.py)
    return 2 * (_det3(A) - _det3(B)) / det**2


def _det3(M):
    return (
        M[:, 0, 0] * (M[:, 1, 1] * M[:, 2, 2] - M[:, 1, 2] * M[:, 2, 1])
        - M[:, 0, 1] * (M[:, 1, 0] * M[:, 2, 2] - M[:, 1, 2] * M[:, 2, 0])
        + M[:, 0, 2] * (M[:, 1, 0] * M[:, 2, 1] - M[:, 1, 1] * M[:, 2, 0])
    )
