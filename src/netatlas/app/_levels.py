"""Sampled level sets of smooth functions on a 2-D window: marching squares on an adaptive grid.

For nets without exact linear regions (tanh, sigmoid, GELU) the decision boundary and the confidence
contours are drawn as level sets of the network's outputs, *sampled*: the function is evaluated on
an ``n x n`` grid of cells, and every cell whose corners straddle the level is evaluated again on a
``refine x refine`` grid of its own before marching squares draws the segments. Features smaller
than a coarse cell that do not change a corner's sign can be missed, which is why the page labels
these layers as sampled, never as exact.
"""

from __future__ import annotations

import numpy as np

__all__ = ["marching_squares", "sampled_level_sets"]


def marching_squares(values: np.ndarray, x0: np.ndarray, y0: np.ndarray, dx, dy) -> np.ndarray:
    """Segments (S, 4) ``[x_a, y_a, x_b, y_b]`` of the zero set of a function sampled on cells.

    Parameters
    ----------
    values : ndarray of shape (C, 4)
        The function at each cell's corners in the order (x0, y0), (x0+dx, y0), (x0+dx, y0+dy),
        (x0, y0+dy).
    x0, y0 : ndarray of shape (C,)
        Lower-left corner of each cell.
    dx, dy : float or ndarray of shape (C,)
        Cell sizes.

    A saddle cell (opposite corners of equal sign) is split by the sign of the mean of its corners.

    Examples
    --------
    >>> seg = marching_squares(np.array([[-1.0, 1.0, 1.0, -1.0]]), np.zeros(1), np.zeros(1), 1.0, 1.0)
    >>> seg.tolist()
    [[0.5, 0.0, 0.5, 1.0]]
    """
    v = np.asarray(values, dtype=np.float64)
    dx = np.broadcast_to(np.asarray(dx, dtype=np.float64), x0.shape)
    dy = np.broadcast_to(np.asarray(dy, dtype=np.float64), x0.shape)
    corner_x = np.stack([x0, x0 + dx, x0 + dx, x0], 1)
    corner_y = np.stack([y0, y0, y0 + dy, y0 + dy], 1)
    pos = v > 0
    # the four edges in order bottom (0-1), right (1-2), top (3-2), left (0-3)
    ends = ((0, 1), (1, 2), (3, 2), (0, 3))
    cross = np.stack([pos[:, a] != pos[:, b] for a, b in ends], 1)  # (C, 4)
    px = np.empty((len(v), 4))
    py = np.empty((len(v), 4))
    with np.errstate(divide="ignore", invalid="ignore"):
        for e, (a, b) in enumerate(ends):
            t = np.clip(v[:, a] / (v[:, a] - v[:, b]), 0.0, 1.0)
            t = np.where(np.isfinite(t), t, 0.5)
            px[:, e] = corner_x[:, a] + t * (corner_x[:, b] - corner_x[:, a])
            py[:, e] = corner_y[:, a] + t * (corner_y[:, b] - corner_y[:, a])
    n_cross = cross.sum(1)
    segments = []
    two = np.flatnonzero(n_cross == 2)
    if two.size:
        edges = np.argsort(~cross[two], axis=1, kind="stable")[:, :2]  # the two crossed edges, in order
        rows = two[:, None]
        segments.append(np.stack([px[rows, edges[:, :1]][:, 0], py[rows, edges[:, :1]][:, 0],
                                  px[rows, edges[:, 1:]][:, 0], py[rows, edges[:, 1:]][:, 0]], 1))
    four = np.flatnonzero(n_cross == 4)
    if four.size:
        centre_like_00 = (v[four].mean(1) > 0) == pos[four, 0]
        # corner 0 joined to corner 2 through the centre: cut off corners 1 and 3, else 0 and 2
        pairs = np.where(centre_like_00[:, None, None], np.array([[0, 1], [2, 3]])[None],
                         np.array([[0, 3], [1, 2]])[None])
        for k in range(2):
            ea, eb = pairs[:, k, 0], pairs[:, k, 1]
            segments.append(np.stack([px[four, ea], py[four, ea], px[four, eb], py[four, eb]], 1))
    return np.concatenate(segments) if segments else np.zeros((0, 4))


def _cells(x_lo, y_lo, dx, dy, nx, ny):
    """Lower-left corners (C,) of an nx x ny grid of cells per parent cell, and the sub-cell size."""
    i = np.arange(nx)
    j = np.arange(ny)
    sx, sy = dx / nx, dy / ny
    xs = (x_lo[:, None, None] + i[None, None, :] * sx[:, None, None])
    ys = (y_lo[:, None, None] + j[None, :, None] * sy[:, None, None])
    xs, ys = np.broadcast_arrays(xs, ys)
    return xs.reshape(-1), ys.reshape(-1), np.repeat(sx, nx * ny), np.repeat(sy, nx * ny)


def _corner_values(fn, x0, y0, dx, dy):
    """fn at the 4 corners of every cell: (C, 4, K)."""
    pts = np.stack([np.stack([x0, x0 + dx, x0 + dx, x0], 1), np.stack([y0, y0, y0 + dy, y0 + dy], 1)], 2)
    out = np.asarray(fn(pts.reshape(-1, 2)), dtype=np.float64)
    return out.reshape(len(x0), 4, -1)


def sampled_level_sets(fn, window, n: int = 48, refine: int = 6) -> list[np.ndarray]:
    """Zero sets of each column of ``fn`` on ``window``, sampled adaptively: one (S, 4) array per column.

    Parameters
    ----------
    fn : callable
        Points (P, 2) -> values (P, K); each column's zero set is traced.
    window : (xmin, xmax, ymin, ymax)
    n : int
        Coarse cells per side.
    refine : int
        Each coarse cell whose corners change sign in some column is split ``refine x refine``.

    Examples
    --------
    >>> circle = lambda p: (p ** 2).sum(1, keepdims=True) - 0.25
    >>> (segments,) = sampled_level_sets(circle, (-1, 1, -1, 1), n=16, refine=4)
    >>> radii = np.hypot(segments[:, 0], segments[:, 1])
    >>> bool(np.abs(radii - 0.5).max() < 0.01)
    True
    """
    xmin, xmax, ymin, ymax = (float(v) for v in window)
    dx, dy = (xmax - xmin) / n, (ymax - ymin) / n
    gx = xmin + np.arange(n + 1) * dx
    gy = ymin + np.arange(n + 1) * dy
    px, py = np.meshgrid(gx, gy, indexing="xy")
    grid = np.asarray(fn(np.stack([px.ravel(), py.ravel()], 1)), dtype=np.float64).reshape(n + 1, n + 1, -1)
    corners = np.stack([grid[:-1, :-1], grid[:-1, 1:], grid[1:, 1:], grid[1:, :-1]], 2).reshape(n * n, 4, -1)
    signs = corners > 0
    straddle = (signs.any(1) & ~signs.all(1)).any(1)
    cells = np.flatnonzero(straddle)
    x_lo = xmin + (cells % n) * dx
    y_lo = ymin + (cells // n) * dy
    x0, y0, sx, sy = _cells(x_lo, y_lo, np.full(len(cells), dx), np.full(len(cells), dy), refine, refine)
    values = _corner_values(fn, x0, y0, sx, sy) if len(x0) else np.zeros((0, 4, corners.shape[2]))
    return [marching_squares(values[:, :, k], x0, y0, sx, sy) for k in range(corners.shape[2])]
