"""Distance to a decision boundary sampled on a 2-D grid (where magnification is compared against)."""

from __future__ import annotations

import numpy as np

__all__ = ["grid_boundary_distance"]


def grid_boundary_distance(decision, us, vs, points) -> np.ndarray:
    """Distance from each point to the zero level set of ``decision`` sampled on a fine grid.

    (Not :func:`netatlas.dynamics.boundary_distance`, which measures the distance to a network's own decision
    boundary per sample; this one reads a boundary off decision values on a grid.)

    Parameters
    ----------
    decision : ndarray of shape (n_v, n_u)
        Decision function (logit) on the grid ``(us, vs)`` (meshgrid 'xy').
    us, vs : ndarray of shape (n_v, n_u)
        Grid coordinates.
    points : ndarray of shape (P, 2)
        Where to measure the distance.

    Returns
    -------
    ndarray of shape (P,)
        Distance to the nearest boundary point (sign changes between grid neighbours, located by
        linear interpolation, so accurate to ~ grid spacing^2 for smooth nets); NaN if no boundary.

    Examples
    --------
    >>> us, vs = np.meshgrid(np.linspace(-1, 1, 201), np.linspace(-1, 1, 201))
    >>> grid_boundary_distance(us - 0.25, us, vs, np.array([[0.0, 0.0], [1.0, 0.5]])).round(6)
    array([0.25, 0.75])
    """
    from scipy.spatial import cKDTree

    found = []
    for axis in (0, 1):
        a, b = decision, np.roll(decision, -1, axis=axis)
        ua, ub = us, np.roll(us, -1, axis=axis)
        va, vb = vs, np.roll(vs, -1, axis=axis)
        sl = (slice(None, -1), slice(None)) if axis == 0 else (slice(None), slice(None, -1))
        a, b, ua, ub, va, vb = (t[sl] for t in (a, b, ua, ub, va, vb))
        cross = (a == 0) | (np.sign(a) * np.sign(b) < 0)
        t = np.where(a == b, 0.0, a / np.where(a == b, 1.0, a - b))[cross]
        found.append(
            np.stack([ua[cross] + t * (ub[cross] - ua[cross]), va[cross] + t * (vb[cross] - va[cross])], 1)
        )
    boundary = np.concatenate(found)
    if len(boundary) == 0:
        return np.full(len(points), np.nan)
    return cKDTree(boundary).query(points)[0]
