"""Where we look: 3-D volumes, 2-D planes and 1-D lines through input space, and grids over them.

A :class:`Plane` maps plane coordinates (u, v) to inputs ``x = origin + u d1 + v d2``; a
:class:`Volume` maps (u, v, w) to ``x = origin + u d1 + v d2 + w d3``; a
:class:`Line` maps t in [0, 1] to ``x = x0 + t (x1 - x0)``. Inputs may have any shape (images
included); directions are stored flattened, and mapped back to ``input_shape``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from netatlas._checks import require_finite
from netatlas._errors import DegenerateSliceError
from netatlas._memory import check_memory

__all__ = ["Line", "Plane", "Volume"]

# Directions whose Gram determinant is below this (relative) are treated as parallel.
PARALLEL_TOLERANCE = 1e-12
#: Sides of the regular polygon :meth:`Plane.disc` inscribes in its circle (its area is within
#: (2 pi / n)^2 / 6 = 2.5e-5 of the disc's, its boundary within r (1 - cos(pi / n)) = 1.9e-5 r of the circle).
DISC_SIDES = 512
#: Consecutive outline vertices whose turn (cross product) is below this, relative to the squared size of
#: the outline, are on one line: the middle one is dropped.
COLLINEAR_TOLERANCE = 1e-12



def _slice_to_input(slice_, coords, name: str) -> np.ndarray:
    """Plane or Volume coordinates (P, k) to inputs (P, *input_shape): origin + coords @ basis.T."""
    coords = _as_array(coords, name).reshape(-1, slice_.basis.shape[1])
    x = slice_.origin.ravel() + coords @ slice_.basis.T
    return x.reshape(len(coords), *slice_.input_shape)


def _input_to_slice(slice_, x) -> np.ndarray:
    """Inputs (P, *input_shape) to Plane or Volume coordinates (P, k): least squares (exact on the slice)."""
    x = _as_array(x, "x").reshape(-1, slice_.origin.size) - slice_.origin.ravel()
    coords, *_ = np.linalg.lstsq(slice_.basis, x.T, rcond=None)
    return coords.T

def _as_array(x, name) -> np.ndarray:
    if hasattr(x, "detach"):  # a torch tensor (torch is not imported here: `import netatlas` stays light)
        x = x.detach().cpu().numpy()
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be an array of numbers, got {type(x).__name__}") from None
    require_finite(arr, name)
    return arr


@dataclass(frozen=True, eq=False)
class Plane:
    """A bounded 2-D slice of input space: ``x(u, v) = origin + u d1 + v d2``.

    Parameters
    ----------
    origin, d1, d2 : array_like of shape input_shape
        Base point and the two directions (need not be orthonormal; they must not be parallel).
    bounds : (umin, umax, vmin, vmax)
        The rectangle in plane coordinates; areas are measured in (u, v) units. With an ``outline``,
        its bounding box (any bounds given are replaced).
    anchors : ndarray of shape (k, 2), optional
        Plane coordinates of the inputs the plane was built through (see :meth:`through`).
    outline : ndarray of shape (k, 2), optional
        A convex window in plane coordinates instead of the rectangle (see :meth:`polygon`, :meth:`disc`):
        stored counter-clockwise, repeated and collinear vertices dropped; None for the rectangle ``bounds``.
    circle : (u, v, radius), optional
        Set by :meth:`disc`: the circle whose inscribed regular polygon the ``outline`` is.

    Examples
    --------
    >>> p = Plane.square(1.0)
    >>> p.bounds, p.area, p.input_shape
    ((-1.0, 1.0, -1.0, 1.0), 4.0, (2,))
    >>> p.to_input([[0.5, -0.5]])
    array([[ 0.5, -0.5]])
    """

    origin: np.ndarray
    d1: np.ndarray
    d2: np.ndarray
    bounds: tuple[float, float, float, float] = (-1.0, 1.0, -1.0, 1.0)
    anchors: np.ndarray | None = None
    outline: np.ndarray | None = None
    circle: tuple[float, float, float] | None = None

    def __post_init__(self):
        origin = _as_array(self.origin, "Plane origin")
        d1, d2 = _as_array(self.d1, "Plane d1"), _as_array(self.d2, "Plane d2")
        if not (origin.shape == d1.shape == d2.shape):
            raise ValueError(f"Plane: origin, d1 and d2 must have the same shape; got {origin.shape}, "
                             f"{d1.shape}, {d2.shape}")
        if self.outline is not None:
            outline = _convex_outline(self.outline, "Plane outline")
            object.__setattr__(self, "outline", outline)
            lo, hi = outline.min(0), outline.max(0)
            object.__setattr__(self, "bounds", (float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1])))
        if self.circle is not None:
            object.__setattr__(self, "circle", tuple(float(c) for c in self.circle))
        bounds = tuple(float(b) for b in self.bounds)
        require_finite(np.array(bounds), "Plane bounds")
        if len(bounds) != 4 or not (bounds[0] < bounds[1] and bounds[2] < bounds[3]):
            raise ValueError(f"Plane: bounds must be (umin, umax, vmin, vmax) with umin < umax and "
                             f"vmin < vmax; got {self.bounds}")
        a, b = d1.ravel(), d2.ravel()
        gram = np.array([[a @ a, a @ b], [a @ b, b @ b]])
        if a @ a == 0 or b @ b == 0 or np.linalg.det(gram) <= PARALLEL_TOLERANCE * (a @ a) * (b @ b):
            raise DegenerateSliceError("Plane: the directions d1 and d2 are zero or parallel; pick three "
                                       "inputs that are not on one line")
        object.__setattr__(self, "origin", origin)
        object.__setattr__(self, "d1", d1)
        object.__setattr__(self, "d2", d2)
        object.__setattr__(self, "bounds", bounds)

    @classmethod
    def square(cls, size: float = 1.0, dim: int = 2) -> Plane:
        """The square [-size, size]^2 in the span of the first two axes of R^dim (half-width ``size``)."""
        if not (0 < size < math.inf) or dim < 2:
            raise ValueError(f"Plane.square: need a finite size > 0 and dim >= 2; got size={size}, dim={dim}")
        e = np.eye(dim)
        return cls(np.zeros(dim), e[0], e[1], (-size, size, -size, size))

    @classmethod
    def window(cls, bounds, dim: int = 2) -> Plane:
        """The window ``bounds = (xmin, xmax, ymin, ymax)`` of the first two input coordinates of R^dim:
        plane coordinates (u, v) are those two inputs themselves (the view of a 2-D model's input space).

        >>> Plane.window((-2, 1, 0, 3)).to_input([[0.5, 2.0]])
        array([[0.5, 2. ]])
        """
        if dim < 2:
            raise ValueError(f"Plane.window: need dim >= 2; got dim={dim}")
        e = np.eye(dim)
        return cls(np.zeros(dim), e[0], e[1], tuple(bounds))

    @classmethod
    def polygon(cls, vertices, *, dim: int = 2, plane: Plane | None = None) -> Plane:
        """A convex polygonal window: the partition and its areas are those of the polygon, exactly.

        Parameters
        ----------
        vertices : array_like of shape (k, 2)
            The polygon's corners in plane coordinates (u, v), k >= 3, in either orientation (stored
            counter-clockwise; repeated and collinear vertices are dropped). Must be convex.
        dim : int
            Without ``plane``: the window lies in the span of the first two axes of R^dim, (u, v) being
            those two inputs (as :meth:`window`).
        plane : Plane, optional
            Any slice (e.g. :meth:`through` three inputs): its origin, directions and anchors are kept and
            ``vertices`` are in its own coordinates (u, v).

        Returns
        -------
        Plane
            ``outline`` the polygon, ``bounds`` its bounding box, ``area`` its area.

        Raises
        ------
        ValueError
            If the vertices are not (k, 2) finite numbers, fewer than three distinct non-collinear points,
            or not convex.

        Examples
        --------
        >>> tri = Plane.polygon([[0, 0], [2, 0], [0, 1]])
        >>> tri.bounds, tri.area
        ((0.0, 2.0, 0.0, 1.0), 1.0)
        >>> p = Plane.through([0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0])
        >>> round(Plane.polygon(p.anchors, plane=p).area, 6)   # the triangle of the three inputs: sqrt(3) / 4
        0.433013
        >>> Plane.polygon([[0, 0], [1, 1], [2, 2]])
        Traceback (most recent call last):
        ...
        ValueError: Plane.polygon: the vertices span no area (fewer than 3 corners that are not on one line); ...
        """
        outline = _convex_outline(vertices, "Plane.polygon")
        return cls._with_outline(outline, None, dim, plane, "Plane.polygon")

    @classmethod
    def disc(cls, center=(0.0, 0.0), radius: float = 1.0, *, n_sides: int = DISC_SIDES, dim: int = 2,
             plane: Plane | None = None) -> Plane:
        """A disc window, as the regular polygon of ``n_sides`` sides inscribed in the circle.

        The partition of a slice is exact on polygons, so the disc is represented by a polygon whose
        corners lie on the circle at angles ``2 pi k / n_sides``: its area is
        ``n/2 r^2 sin(2 pi / n)`` (``area``; the regions' areas sum to it), short of ``pi r^2`` by a relative
        ``1 - sin(2 pi / n) / (2 pi / n) <= (2 pi / n)^2 / 6`` (2.5e-5 for the default 512 sides), and its
        boundary is at most ``r (1 - cos(pi / n))`` inside the circle. Raise ``n_sides`` for a closer disc.

        Parameters
        ----------
        center : array_like of shape (2,)
            The centre in plane coordinates (u, v).
        radius : float
            The radius (> 0) in plane units.
        n_sides : int
            Sides of the inscribed polygon (>= 3).
        dim, plane
            As in :meth:`polygon`: the first two axes of R^dim, or any slice's own coordinates.

        Returns
        -------
        Plane
            ``outline`` the polygon (n_sides, 2), ``circle`` = (u, v, radius), ``bounds`` the polygon's box.

        Examples
        --------
        >>> d = Plane.disc((0.0, 0.0), 1.0)
        >>> d.outline.shape, d.circle
        ((512, 2), (0.0, 0.0, 1.0))
        >>> bool(abs(d.area - np.pi) < np.pi * (2 * np.pi / 512) ** 2 / 6)
        True
        >>> round(Plane.disc((1.0, 2.0), 1.0, n_sides=4).area, 12)   # the inscribed square
        2.0
        """
        c = _as_array(center, "Plane.disc center").reshape(-1)
        if c.shape != (2,):
            raise ValueError(f"Plane.disc: center must be two plane coordinates (u, v); got shape {c.shape}")
        if isinstance(radius, bool) or not isinstance(radius, (int, float, np.floating, np.integer)) or \
                not 0 < radius < math.inf:
            raise ValueError(f"Plane.disc: radius must be a finite number > 0; got {radius!r}")
        if isinstance(n_sides, bool) or not isinstance(n_sides, (int, np.integer)) or not 3 <= n_sides <= 10**4:
            raise ValueError(f"Plane.disc: n_sides must be an integer in [3, 10000]; got {n_sides!r}")
        angle = 2 * np.pi * np.arange(n_sides) / n_sides
        outline = c + float(radius) * np.stack([np.cos(angle), np.sin(angle)], axis=1)
        return cls._with_outline(outline, (float(c[0]), float(c[1]), float(radius)), dim, plane, "Plane.disc")

    @classmethod
    def _with_outline(cls, outline, circle, dim, plane, where) -> Plane:
        if plane is None:
            if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim < 2:
                raise ValueError(f"{where}: need dim >= 2; got dim={dim!r}")
            e = np.eye(int(dim))
            return cls(np.zeros(int(dim)), e[0], e[1], outline=outline, circle=circle)
        if not isinstance(plane, Plane):
            raise TypeError(f"{where}: plane must be a netatlas.Plane (e.g. Plane.through(a, b, c)); got "
                            f"{type(plane).__name__}")
        return cls(plane.origin, plane.d1, plane.d2, anchors=plane.anchors, outline=outline, circle=circle)

    def window_vertices(self) -> np.ndarray:
        """The window's corners (k, 2), counter-clockwise: the ``outline``, or the rectangle's four ``corners()``.

        >>> Plane.polygon([[0, 0], [0, 1], [1, 0]]).window_vertices()   # stored counter-clockwise
        array([[0., 0.],
               [1., 0.],
               [0., 1.]])
        """
        return self.corners() if self.outline is None else self.outline.copy()

    @classmethod
    def through(cls, a, b, c, *, margin: float | None = None) -> Plane:
        """The plane through three inputs of any shape (images included).

        Uses the magnification paper's convention: origin = centroid, d1 = b - a,
        d2 = 2 sqrt(3) ((a + b)/2 - centroid); the anchors then sit at (-1/2, 1/(2 sqrt 3)),
        (1/2, 1/(2 sqrt 3)) and (0, -1/sqrt 3), and the bounds are [-1, 1]^2. With ``margin``,
        the bounds are instead the anchors' bounding box widened by ``margin`` times its size.

        Examples
        --------
        >>> import numpy as np
        >>> p = Plane.through(np.zeros((2, 2)), np.eye(2), np.ones((2, 2)))
        >>> np.round(p.anchors, 4)
        array([[-0.5   ,  0.2887],
               [ 0.5   ,  0.2887],
               [ 0.    , -0.5774]])
        >>> np.allclose(p.to_input(p.anchors)[2], np.ones((2, 2)))
        True
        """
        a, b, c = (_as_array(p, name) for p, name in ((a, "a"), (b, "b"), (c, "c")))
        if not (a.shape == b.shape == c.shape):
            raise ValueError(f"Plane.through: the three inputs must have one shape; got {a.shape}, {b.shape}, "
                             f"{c.shape}")
        centroid = (a + b + c) / 3
        d1 = b - a
        d2 = 2 * math.sqrt(3) * ((a + b) / 2 - centroid)
        s = 1 / (2 * math.sqrt(3))
        anchors = np.array([[-0.5, s], [0.5, s], [0.0, -2 * s]])
        bounds = (-1.0, 1.0, -1.0, 1.0)
        if margin is not None:
            lo, hi = anchors.min(0), anchors.max(0)
            pad = margin * (hi - lo)
            bounds = (lo[0] - pad[0], hi[0] + pad[0], lo[1] - pad[1], hi[1] + pad[1])
        return cls(centroid, d1, d2, bounds, anchors)

    def zoom(self, fraction: float, *, around="A") -> Plane:
        """The same plane with its window shrunk to ``fraction`` of its size (each side), centred on ``around``.

        Parameters
        ----------
        fraction : float in (0, 1]
            Side of the new window over the side of this one (the CLI's ``--zoom``).
        around : str or array_like of shape (2,)
            The centre: letters of ``"ABC"`` for the inputs the plane was built through (several letters: the
            mean of those, e.g. ``"AB"`` midway between A and B; needs a plane from :meth:`through`), or plane
            coordinates (u, v), e.g. from :meth:`around_boundary` (the CLI's ``--around``).

        Returns
        -------
        Plane
            Same origin, directions and anchors; bounds ``centre +- fraction * half-size``.

        Examples
        --------
        >>> p = Plane.through([0.0, 0.0], [1.0, 0.0], [0.0, 1.0])
        >>> z = p.zoom(0.1, around="A")
        >>> np.allclose([(z.bounds[0] + z.bounds[1]) / 2, (z.bounds[2] + z.bounds[3]) / 2], p.anchors[0])
        True
        >>> round(z.area / p.area, 6)
        0.01
        >>> Plane.square(1.0).zoom(0.5, around=(0.5, 0.5)).bounds
        (0.0, 1.0, 0.0, 1.0)
        """
        if not isinstance(fraction, (int, float)) or not 0 < fraction <= 1:
            raise ValueError(f"Plane.zoom: fraction must be in (0, 1]; got {fraction!r}")
        if isinstance(around, str):
            letters = around.strip().upper()
            if not letters or any(ch not in "ABC" for ch in letters):
                raise ValueError(f"Plane.zoom: around must be letters of ABC (e.g. 'A' or 'AB') or plane "
                                 f"coordinates (u, v); got {around!r}")
            if self.anchors is None:
                raise ValueError(f"Plane.zoom: around={around!r} needs a plane through three inputs "
                                 "(Plane.through(a, b, c)); give plane coordinates (u, v) instead")
            centre = self.anchors[["ABC".index(ch) for ch in letters]].mean(0)
        else:
            centre = _as_array(around, "Plane.zoom around").reshape(-1)
            if centre.shape != (2,):
                raise ValueError(f"Plane.zoom: around must be two plane coordinates (u, v); got shape {centre.shape}")
        umin, umax, vmin, vmax = self.bounds
        hu, hv = fraction * (umax - umin) / 2, fraction * (vmax - vmin) / 2
        cu, cv = float(centre[0]), float(centre[1])
        if self.outline is not None:  # the same shape, scaled about its box's centre and moved to the new one
            old = np.array([(umin + umax) / 2, (vmin + vmax) / 2])
            outline = np.array([cu, cv]) + fraction * (self.outline - old)
            circle = None if self.circle is None else (
                cu + fraction * (self.circle[0] - old[0]), cv + fraction * (self.circle[1] - old[1]),
                fraction * self.circle[2])
            return Plane(self.origin, self.d1, self.d2, anchors=self.anchors, outline=outline, circle=circle)
        return Plane(self.origin, self.d1, self.d2, (cu - hu, cu + hu, cv - hv, cv + hv), anchors=self.anchors)

    def around_boundary(self, net, a="A", b="B") -> np.ndarray:
        """Plane coordinates (u, v) of the first point on the segment from anchor ``a`` to anchor ``b`` where
        the predicted class of ``net`` changes (the CLI's ``--around boundary``; pass it to :meth:`zoom`).

        Found exactly: the segment is cut into the net's linear pieces (``netatlas.regions.along_line``), and
        within the piece where the class changes the outputs are affine in t, so the crossing is solved for.
        A single output is read as binary (class 1 where it is > 0), several by arg-max.

        Parameters
        ----------
        net : Net or torch module
            A piecewise-linear network (ReLU, LeakyReLU, max pooling, ...) on this plane's inputs.
        a, b : str
            Anchor letters (``"A"``, ``"B"`` or ``"C"``) of a plane from :meth:`through`.

        Returns
        -------
        ndarray of shape (2,)

        Raises
        ------
        ValueError
            If the plane has no anchors, a letter is not A, B or C, or the class does not change from a to b.

        Examples
        --------
        >>> import netatlas
        >>> net = netatlas.nets.from_torch(netatlas.nets.mlp([2, 1], seed=0))  # one affine output
        >>> w, c = net.nodes[1].op.weight[0].numpy(), float(net.nodes[1].op.bias[0])
        >>> s = 10 * (1 + abs(c)) / (w @ w)  # the output is -s |w|^2 + c < 0 at A and s |w|^2 + c > 0 at B
        >>> p = Plane.through(-s * w, s * w, s * np.array([w[1], -w[0]]))
        >>> uv = p.around_boundary(net, "A", "B")
        >>> x = p.to_input([uv])[0]
        >>> abs(float(w @ x) + c) < 1e-12   # on the decision boundary
        True
        """
        if self.anchors is None:
            raise ValueError("Plane.around_boundary: needs a plane through three inputs (Plane.through(a, b, c))")
        ends = []
        for letter in (a, b):
            if not isinstance(letter, str) or letter.strip().upper() not in ("A", "B", "C"):
                raise ValueError(f"Plane.around_boundary: a and b must be anchor letters A, B or C; got {letter!r}")
            ends.append(self.anchors["ABC".index(letter.strip().upper())])
        # regions is a lens that imports slices; imported here, when the method is called
        from netatlas.regions import along_line

        start, end = self.to_input(np.array(ends))
        pieces = along_line(net, start, end)
        t = np.sort(np.concatenate([pieces.edges, (pieces.edges[:-1] + pieces.edges[1:]) / 2]))
        y = pieces.outputs(t)
        cls = (y[:, 0] > 0).astype(int) if y.shape[1] == 1 else y.argmax(1)
        change = np.flatnonzero(cls[1:] != cls[:-1])
        if not len(change):
            raise ValueError(f"Plane.around_boundary: the predicted class does not change from {a} to {b}")
        # consecutive samples lie in one piece, where the outputs are affine in t: solve for the crossing
        i = change[0]
        if y.shape[1] == 1:
            g0, g1 = y[i, 0], y[i + 1, 0]
        else:
            g0, g1 = y[i, cls[i]] - y[i, cls[i + 1]], y[i + 1, cls[i]] - y[i + 1, cls[i + 1]]
        t0 = t[i] + (t[i + 1] - t[i]) * g0 / (g0 - g1)
        return (1 - t0) * ends[0] + t0 * ends[1]

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self.origin.shape

    @property
    def area(self) -> float:
        """The window's area in (u, v) units: the rectangle's, or the ``outline`` polygon's."""
        umin, umax, vmin, vmax = self.bounds
        if self.outline is not None:
            return _polygon_area(self.outline - [(umin + umax) / 2, (vmin + vmax) / 2])
        return (umax - umin) * (vmax - vmin)

    @property
    def basis(self) -> np.ndarray:
        """The directions as columns, shape (n_inputs, 2)."""
        return np.stack([self.d1.ravel(), self.d2.ravel()], axis=1)

    def to_input(self, uv) -> np.ndarray:
        """Map plane coordinates (P, 2) to inputs (P, *input_shape)."""
        return _slice_to_input(self, uv, "uv")

    def to_plane(self, x) -> np.ndarray:
        """Map inputs (P, *input_shape) to plane coordinates (P, 2): the least-squares (u, v) whose
        image is nearest to x (exact for points on the plane)."""
        return _input_to_slice(self, x)

    def corners(self) -> np.ndarray:
        """The four corners, counter-clockwise, shape (4, 2)."""
        umin, umax, vmin, vmax = self.bounds
        return np.array([[umin, vmin], [umax, vmin], [umax, vmax], [umin, vmax]])

    def grid(self, n: int | tuple[int, int] = 200) -> tuple[np.ndarray, np.ndarray]:
        """A regular grid of cell centres: ``(us, vs)``, each of shape (n_v, n_u) (meshgrid 'xy'), over
        ``bounds`` (with an ``outline``, its bounding box: some points lie outside the window).

        Use ``np.stack([us.ravel(), vs.ravel()], 1)`` for a (n_v * n_u, 2) array of points.
        """
        n_u, n_v = (n, n) if isinstance(n, int) else n
        if not (n_u >= 1 and n_v >= 1):
            raise ValueError(f"Plane.grid: need at least 1 point per side; got {n}")
        check_memory(3 * 8 * n_u * n_v, f"Plane.grid({n})")  # us, vs and their meshgrid temporaries
        umin, umax, vmin, vmax = self.bounds
        u = umin + (np.arange(n_u) + 0.5) * (umax - umin) / n_u
        v = vmin + (np.arange(n_v) + 0.5) * (vmax - vmin) / n_v
        return np.meshgrid(u, v, indexing="xy")

    def to_dict(self) -> dict:
        out = {"input_shape": list(self.input_shape), "bounds": list(self.bounds),
               "anchors": None if self.anchors is None else self.anchors.tolist()}
        if self.outline is not None:  # rectangles keep their dict as it was
            out["outline"] = self.outline.tolist()
            out["circle"] = None if self.circle is None else list(self.circle)
            out["area"] = self.area
        return out


def _polygon_area(xy: np.ndarray) -> float:
    """Shoelace area of a polygon (k, 2), positive when counter-clockwise."""
    u, v = xy[:, 0], xy[:, 1]
    return float((u * np.roll(v, -1) - np.roll(u, -1) * v).sum() / 2)


def _convex_outline(vertices, where) -> np.ndarray:
    """``vertices`` (k, 2) as a convex polygon, counter-clockwise, without repeated or collinear vertices;
    ValueError naming what is wrong otherwise."""
    xy = _as_array(vertices, f"{where} vertices")
    if xy.ndim != 2 or xy.shape[1] != 2:
        raise ValueError(f"{where}: vertices must have shape (k, 2) in plane coordinates (u, v); got {xy.shape}")
    xy = xy[np.any(xy != np.roll(xy, 1, axis=0), axis=1)] if len(xy) > 1 else xy  # repeated vertices
    size = float(np.ptp(xy, axis=0).max()) if len(xy) else 0.0
    if len(xy) >= 3 and _polygon_area(xy) < 0:
        xy = xy[::-1]
    while len(xy) >= 3:  # drop vertices on the line through their neighbours (exactly or nearly)
        turn = np.abs(_turns(xy))
        flattest = int(np.argmin(turn))
        if turn[flattest] > COLLINEAR_TOLERANCE * size * size:
            break
        # one at a time: of two corners a round-off apart both look flat, yet one of them is a corner
        xy = np.delete(xy, flattest, axis=0)
    if len(xy) < 3:
        raise ValueError(f"{where}: the vertices span no area (fewer than 3 corners that are not on one line); "
                         "give the corners of a convex polygon, e.g. [[0, 0], [1, 0], [0, 1]]")
    if np.any(_turns(xy) < 0) or not _simple_turning(xy):
        raise ValueError(f"{where}: the polygon is not convex; give the corners of a convex polygon in order "
                         "(for any other shape, partition its convex hull or convex pieces)")
    return np.ascontiguousarray(xy)


def _turns(xy: np.ndarray) -> np.ndarray:
    """Cross product of the edges into and out of each vertex (k,): > 0 for a left (convex) turn."""
    e_in, e_out = xy - np.roll(xy, 1, axis=0), np.roll(xy, -1, axis=0) - xy
    return e_in[:, 0] * e_out[:, 1] - e_in[:, 1] * e_out[:, 0]


def _simple_turning(xy: np.ndarray) -> bool:
    """True when the edges turn once around (total angle 2 pi): left turns alone may wind several times
    (a pentagram's corners)."""
    e = np.roll(xy, -1, axis=0) - xy
    angle = np.arctan2(e[:, 1], e[:, 0])
    step = np.mod(np.roll(angle, -1) - angle, 2 * np.pi)
    return bool(abs(step.sum() - 2 * np.pi) < 1e-6)


@dataclass(frozen=True, eq=False)
class Line:
    """The segment ``x(t) = x0 + t (x1 - x0)``, t in [0, 1], between two inputs of any shape.

    Examples
    --------
    >>> line = Line([0.0, 0.0], [2.0, 0.0])
    >>> line.to_input([0.0, 0.5, 1.0])
    array([[0., 0.],
           [1., 0.],
           [2., 0.]])
    >>> line.length
    2.0
    """

    x0: np.ndarray
    x1: np.ndarray

    def __post_init__(self):
        x0, x1 = _as_array(self.x0, "Line x0"), _as_array(self.x1, "Line x1")
        if x0.shape != x1.shape:
            raise ValueError(f"Line: x0 and x1 must have the same shape; got {x0.shape} and {x1.shape}")
        if np.array_equal(x0, x1):
            raise DegenerateSliceError("Line: x0 and x1 are equal; a line needs two distinct inputs")
        object.__setattr__(self, "x0", x0)
        object.__setattr__(self, "x1", x1)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self.x0.shape

    @property
    def direction(self) -> np.ndarray:
        return self.x1 - self.x0

    @property
    def length(self) -> float:
        return float(np.linalg.norm(self.direction))

    def to_input(self, t) -> np.ndarray:
        """Map parameters t (P,) to inputs (P, *input_shape)."""
        t = _as_array(t, "t").reshape(-1)
        return self.x0[None] + t.reshape(-1, *([1] * self.x0.ndim)) * self.direction[None]

    def to_line(self, x) -> np.ndarray:
        """The parameter t of the point on the (infinite) line nearest to each input (P,)."""
        d = self.direction.ravel()
        x = _as_array(x, "x").reshape(-1, d.size) - self.x0.ravel()
        return x @ d / (d @ d)

    def grid(self, n: int = 200) -> np.ndarray:
        """n evenly spaced parameters in [0, 1], endpoints included."""
        return np.linspace(0.0, 1.0, n)

    def to_dict(self) -> dict:
        return {"input_shape": list(self.input_shape), "length": self.length}


@dataclass(frozen=True, eq=False)
class Volume:
    """A bounded 3-D slice of input space: ``x(u, v, w) = origin + u d1 + v d2 + w d3``.

    Parameters
    ----------
    origin, d1, d2, d3 : array_like of shape input_shape
        Base point and the three directions (need not be orthonormal; they must be linearly independent).
    bounds : (umin, umax, vmin, vmax, wmin, wmax)
        The box in volume coordinates; volumes are measured in (u, v, w) units.
    anchors : ndarray of shape (k, 3), optional
        Volume coordinates of the inputs the volume was built through (see :meth:`through`).

    Examples
    --------
    >>> vol = Volume.cube(1.0)
    >>> vol.bounds, vol.volume, vol.input_shape
    ((-1.0, 1.0, -1.0, 1.0, -1.0, 1.0), 8.0, (3,))
    >>> vol.to_input([[0.5, -0.5, 0.25]])
    array([[ 0.5 , -0.5 ,  0.25]])
    """

    origin: np.ndarray
    d1: np.ndarray
    d2: np.ndarray
    d3: np.ndarray
    bounds: tuple[float, float, float, float, float, float] = (-1.0, 1.0, -1.0, 1.0, -1.0, 1.0)
    anchors: np.ndarray | None = None

    def __post_init__(self):
        origin = _as_array(self.origin, "Volume origin")
        ds = [_as_array(d, f"Volume d{k}") for k, d in enumerate((self.d1, self.d2, self.d3), start=1)]
        if not all(d.shape == origin.shape for d in ds):
            raise ValueError(f"Volume: origin, d1, d2 and d3 must have the same shape; got {origin.shape}, "
                             f"{ds[0].shape}, {ds[1].shape}, {ds[2].shape}")
        bounds = tuple(float(b) for b in self.bounds)
        require_finite(np.array(bounds), "Volume bounds")
        if len(bounds) != 6 or not all(bounds[2 * k] < bounds[2 * k + 1] for k in range(3)):
            raise ValueError(f"Volume: bounds must be (umin, umax, vmin, vmax, wmin, wmax) with each min < max; "
                             f"got {self.bounds}")
        basis = np.stack([d.ravel() for d in ds], axis=1)
        norms = np.linalg.norm(basis, axis=0)
        # the directions scaled to unit length are independent when their Gram determinant is not ~0
        if np.any(norms == 0) or np.linalg.det((basis / norms).T @ (basis / norms)) <= PARALLEL_TOLERANCE:
            raise DegenerateSliceError("Volume: the directions d1, d2, d3 are zero or linearly dependent; pick "
                                       "four inputs that are not on one plane")
        object.__setattr__(self, "origin", origin)
        for name, d in zip(("d1", "d2", "d3"), ds, strict=True):
            object.__setattr__(self, name, d)
        object.__setattr__(self, "bounds", bounds)

    @classmethod
    def cube(cls, size: float = 1.0, dim: int = 3) -> Volume:
        """The cube [-size, size]^3 in the span of the first three axes of R^dim (half-width ``size``).

        >>> Volume.cube(2.0).bounds
        (-2.0, 2.0, -2.0, 2.0, -2.0, 2.0)
        """
        if not (0 < size < math.inf) or dim < 3:
            raise ValueError(f"Volume.cube: need a finite size > 0 and dim >= 3; got size={size}, dim={dim}")
        return cls.box((-size,) * 3, (size,) * 3, dim=dim)

    @classmethod
    def box(cls, lo, hi, dim: int = 3) -> Volume:
        """The box ``lo <= x <= hi`` (each of length 3) of the first three input coordinates of R^dim:
        volume coordinates (u, v, w) are those three inputs themselves.

        >>> Volume.box((0, 0, 0), (1, 2, 3)).volume
        6.0
        """
        lo, hi = np.asarray(lo, dtype=np.float64).ravel(), np.asarray(hi, dtype=np.float64).ravel()
        if lo.shape != (3,) or hi.shape != (3,) or dim < 3:
            raise ValueError(f"Volume.box: lo and hi need 3 numbers each and dim >= 3; got lo={lo.tolist()}, "
                             f"hi={hi.tolist()}, dim={dim}")
        e = np.eye(dim)
        return cls(np.zeros(dim), e[0], e[1], e[2], (lo[0], hi[0], lo[1], hi[1], lo[2], hi[2]))

    @classmethod
    def through(cls, a, b, c, d, *, margin: float | None = None) -> Volume:
        """The affine 3-D slice through four inputs of any shape (images included).

        The four inputs sit at alternate corners of the cube [-1/2, 1/2]^3 (a regular tetrahedron
        centred at the origin, the centroid of the inputs): ``a`` at (1, 1, 1)/2, ``b`` at (1, -1, -1)/2,
        ``c`` at (-1, 1, -1)/2, ``d`` at (-1, -1, 1)/2; the bounds are [-1, 1]^3. With ``margin``, the
        bounds are instead the anchors' bounding box widened by ``margin`` times its size.

        Examples
        --------
        >>> import numpy as np
        >>> vol = Volume.through(np.zeros(4), np.eye(4)[0], np.eye(4)[1], np.eye(4)[2])
        >>> vol.anchors[0], vol.bounds[:2]
        (array([0.5, 0.5, 0.5]), (-1.0, 1.0))
        >>> np.allclose(vol.to_input(vol.anchors), [np.zeros(4), *np.eye(4)[:3]])
        True
        """
        points = [_as_array(p, name) for p, name in ((a, "a"), (b, "b"), (c, "c"), (d, "d"))]
        if len({p.shape for p in points}) != 1:
            raise ValueError(f"Volume.through: the four inputs must have one shape; got "
                             f"{', '.join(str(p.shape) for p in points)}")
        shape = points[0].shape
        X = np.stack([p.ravel() for p in points])  # (4, n)
        centroid = X.mean(0)
        anchors = 0.5 * np.array([[1.0, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]])
        # x_i - centroid = D anchors_i for the (n, 3) directions D; anchors^T anchors = I, so D = (X - c)^T A
        D = (X - centroid).T @ anchors
        bounds = (-1.0, 1.0, -1.0, 1.0, -1.0, 1.0)
        if margin is not None:
            pad = margin * 1.0
            bounds = tuple(float(v) for k in range(3) for v in (-0.5 - pad, 0.5 + pad))
        try:
            return cls(centroid.reshape(shape), *(D[:, k].reshape(shape) for k in range(3)), bounds, anchors)
        except DegenerateSliceError:
            raise DegenerateSliceError("Volume.through: the four inputs lie on one plane (or a line); pick four "
                                       "inputs that span a 3-D slice") from None

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self.origin.shape

    @property
    def volume(self) -> float:
        umin, umax, vmin, vmax, wmin, wmax = self.bounds
        return (umax - umin) * (vmax - vmin) * (wmax - wmin)

    @property
    def basis(self) -> np.ndarray:
        """The directions as columns, shape (n_inputs, 3)."""
        return np.stack([self.d1.ravel(), self.d2.ravel(), self.d3.ravel()], axis=1)

    @property
    def lower(self) -> np.ndarray:
        """The box's lower corner (umin, vmin, wmin), shape (3,)."""
        return np.array(self.bounds[0::2])

    @property
    def upper(self) -> np.ndarray:
        """The box's upper corner (umax, vmax, wmax), shape (3,)."""
        return np.array(self.bounds[1::2])

    def to_input(self, uvw) -> np.ndarray:
        """Map volume coordinates (P, 3) to inputs (P, *input_shape)."""
        return _slice_to_input(self, uvw, "uvw")

    def to_volume(self, x) -> np.ndarray:
        """Map inputs (P, *input_shape) to volume coordinates (P, 3): the least-squares (u, v, w) whose
        image is nearest to x (exact for points in the slice)."""
        return _input_to_slice(self, x)

    def corners(self) -> np.ndarray:
        """The eight corners of the box, shape (8, 3), corner k at (bit 0, bit 1, bit 2 of k) -> (u, v, w)."""
        k = np.arange(8)
        bits = np.stack([k & 1, (k >> 1) & 1, (k >> 2) & 1], axis=1).astype(bool)
        return np.where(bits, self.upper, self.lower)

    def grid(self, n: int | tuple[int, int, int] = 50) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """A regular grid of cell centres ``(us, vs, ws)``, each of shape (n_u, n_v, n_w) (meshgrid 'ij').

        Use ``np.stack([us.ravel(), vs.ravel(), ws.ravel()], 1)`` for a (n_u * n_v * n_w, 3) array of points.
        """
        sizes = (n, n, n) if isinstance(n, (int, np.integer)) else tuple(n)
        if len(sizes) != 3 or min(sizes) < 1:
            raise ValueError(f"Volume.grid: need at least 1 point per side on 3 sides; got {n}")
        check_memory(4 * 8 * math.prod(sizes), f"Volume.grid({n})")
        axes = [lo + (np.arange(m) + 0.5) * (hi - lo) / m
                for lo, hi, m in zip(self.lower, self.upper, sizes, strict=True)]
        return tuple(np.meshgrid(*axes, indexing="ij"))

    def to_dict(self) -> dict:
        return {"input_shape": list(self.input_shape), "bounds": list(self.bounds),
                "anchors": None if self.anchors is None else self.anchors.tolist()}
