"""Small synthetic data sets in the plane (and a 1-D regression set), generated in code.

Every loader draws its training set and its (fresh, same-distribution) test set from two independent
NumPy generators spawned from ``seed``; no global RNG is read or written, and the training set does not
depend on the test size. ``n`` is the number of training points; the test set has ``n_test`` points,
by default ``ceil(n * test_fraction / (1 - test_fraction))`` so that it is ``test_fraction`` of all points.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from netatlas.data._dataset import (
    Dataset,
    check_float,
    check_int,
    check_seed,
    check_test_fraction,
    generators,
    make,
    n_test_for,
)

__all__ = ["moons", "circles", "xor", "xor4", "spirals", "sinusoid", "blobs", "regression_1d",
           "REGRESSION_FUNCTIONS"]


def _sizes(where: str, n, n_test, test_fraction) -> tuple[int, int, float]:
    n = check_int(where, "n", n, minimum=1)
    test_fraction = check_test_fraction(where, test_fraction)
    n_test = check_int(where, "n_test", n_test, minimum=0, allow_none=True)
    if n_test is None:
        n_test = n_test_for(n, test_fraction)
    return n, n_test, test_fraction


def _balanced_labels(rng: np.random.Generator, n: int, n_classes: int) -> np.ndarray:
    # Class sizes differ by at most one; order is random so any prefix is roughly balanced too.
    return rng.permutation(np.arange(n) % n_classes)


def _toy(name, description, params, sample, n, n_test, seed, n_classes) -> Dataset:
    rng_train, rng_test = generators(seed)
    x, y = sample(rng_train, n)
    x_test, y_test = sample(rng_test, n_test)
    return make(name, description, params, x, y, x_test, y_test, n_classes)


def moons(n: int = 200, *, noise: float = 0.1, seed: int = 0, test_fraction: float = 0.25,
          n_test: int | None = None) -> Dataset:
    """Two interleaving half circles ("moons"), centred on the origin.

    Class 0 lies on ``(cos t, sin t) - (0.5, 0.25)``, class 1 on ``(1 - cos t, 0.5 - sin t) - (0.5, 0.25)``,
    ``t ~ U(0, pi)``, plus isotropic Gaussian noise; the points fill about ``[-1.5, 1.5] x [-0.8, 0.8]``.

    Parameters
    ----------
    n : int
        Number of training points (classes balanced to within one).
    noise : float
        Standard deviation of the Gaussian noise added to each coordinate.
    seed : int
        Seeds private generators; same seed, same tensors.
    test_fraction : float in [0, 1)
        Fraction of all points that form the (freshly drawn) test set.
    n_test : int, optional
        Test-set size; overrides ``test_fraction``.

    Returns
    -------
    Dataset
        ``x`` of shape (n, 2) float32, ``y`` of shape (n,) int64 in {0, 1}, ``n_classes = 2``.

    Examples
    --------
    >>> data = moons(n=100, noise=0.0, seed=1)
    >>> data.x.shape, data.y.bincount().tolist()
    (torch.Size([100, 2]), [50, 50])
    >>> bool(((data.x[data.y == 0] + data.x.new_tensor([0.5, 0.25])).norm(dim=1) - 1).abs().max() < 1e-6)
    True
    """
    where = "moons"
    n, n_test, test_fraction = _sizes(where, n, n_test, test_fraction)
    noise = check_float(where, "noise", noise)
    seed = check_seed(where, seed)

    def sample(rng, m):
        y = _balanced_labels(rng, m, 2)
        t = rng.uniform(0.0, math.pi, m)
        outer = np.stack([np.cos(t), np.sin(t)], axis=1)
        inner = np.stack([1.0 - np.cos(t), 0.5 - np.sin(t)], axis=1)
        x = np.where(y[:, None] == 0, outer, inner) - np.array([0.5, 0.25])
        return x + noise * rng.standard_normal((m, 2)), y

    params = dict(n=n, noise=noise, seed=seed, test_fraction=test_fraction, n_test=n_test)
    return _toy("moons", f"Two interleaving half circles in 2-D (Gaussian noise sd {noise:g}), 2 classes.",
                params, sample, n, n_test, seed, 2)


def circles(n: int = 200, *, noise: float = 0.05, factor: float = 0.5, seed: int = 0,
            test_fraction: float = 0.25, n_test: int | None = None) -> Dataset:
    """Two concentric circles: class 0 of radius 1, class 1 of radius ``factor``.

    Parameters
    ----------
    n, seed, test_fraction, n_test
        As in :func:`moons`.
    noise : float
        Standard deviation of the Gaussian noise added to each coordinate.
    factor : float in (0, 1)
        Radius of the inner circle (class 1).

    Returns
    -------
    Dataset
        ``x`` of shape (n, 2) float32, ``y`` of shape (n,) int64 in {0, 1}.

    Examples
    --------
    >>> data = circles(n=6, noise=0.0, factor=0.5)
    >>> data.x.norm(dim=1).round(decimals=4).tolist() == [1.0 if c == 0 else 0.5 for c in data.y.tolist()]
    True
    """
    where = "circles"
    n, n_test, test_fraction = _sizes(where, n, n_test, test_fraction)
    noise = check_float(where, "noise", noise)
    factor = check_float(where, "factor", factor, minimum=0.0, maximum=1.0, max_inclusive=False)
    if factor == 0.0:
        raise ValueError(f"circles: factor must be in (0, 1), got {factor}.")
    seed = check_seed(where, seed)

    def sample(rng, m):
        y = _balanced_labels(rng, m, 2)
        angle = rng.uniform(0.0, 2 * math.pi, m)
        radius = np.where(y == 0, 1.0, factor)
        x = radius[:, None] * np.stack([np.cos(angle), np.sin(angle)], axis=1)
        return x + noise * rng.standard_normal((m, 2)), y

    params = dict(n=n, noise=noise, factor=factor, seed=seed, test_fraction=test_fraction, n_test=n_test)
    return _toy("circles", f"Two concentric circles in 2-D, radii 1 and {factor:g} "
                f"(Gaussian noise sd {noise:g}), 2 classes.", params, sample, n, n_test, seed, 2)


_XOR_CORNERS = np.array([[-1.0, -1.0], [-1.0, 1.0], [1.0, -1.0], [1.0, 1.0]])
_XOR_LABELS = np.array([0, 1, 1, 0])


def xor(n: int = 400, *, noise: float = math.sqrt(0.15), label_by: str = "sign", seed: int = 0,
        test_fraction: float = 0.25, n_test: int | None = None) -> Dataset:
    """Noisy XOR: Gaussian clouds around the four corners ``(+-1, +-1)``.

    The label is the XOR of the signs of the two coordinates: 1 in the second and fourth quadrants
    (``x1 * x2 < 0``), 0 otherwise.

    Parameters
    ----------
    n, seed, test_fraction, n_test
        As in :func:`moons`; the four clouds are balanced to within one point.
    noise : float
        Standard deviation of each cloud; the default ``sqrt(0.15)`` gives variance 0.15, as in the
        magnification paper (Hauser & Ray style XOR with 400 points).
    label_by : {"sign", "center"}
        ``"sign"``: XOR of the signs of the point itself (the boundary is exactly the two axes).
        ``"center"``: XOR of the signs of the corner it was drawn around (about 1% of points, those that
        cross an axis, then carry the "wrong" label, as label noise).

    Returns
    -------
    Dataset
        ``x`` of shape (n, 2) float32, ``y`` of shape (n,) int64 in {0, 1}.

    Examples
    --------
    >>> data = xor(n=400, seed=0)
    >>> bool(((data.x[:, 0] * data.x[:, 1] < 0).long() == data.y).all())
    True
    >>> round(float(data.x.abs().mean()), 1)
    1.0
    """
    where = "xor"
    n, n_test, test_fraction = _sizes(where, n, n_test, test_fraction)
    noise = check_float(where, "noise", noise)
    if label_by not in ("sign", "center"):
        raise ValueError(f"xor: label_by must be 'sign' or 'center', got {label_by!r}.")
    seed = check_seed(where, seed)

    def sample(rng, m):
        corner = _balanced_labels(rng, m, 4)
        x = _XOR_CORNERS[corner] + noise * rng.standard_normal((m, 2))
        y = _XOR_LABELS[corner] if label_by == "center" else (x[:, 0] * x[:, 1] < 0).astype(np.int64)
        return x, y

    params = dict(n=n, noise=noise, label_by=label_by, seed=seed, test_fraction=test_fraction, n_test=n_test)
    return _toy("xor", f"Noisy XOR in 2-D: Gaussian clouds (variance {noise ** 2:.3g}) around (+-1, +-1), "
                "label = XOR of the coordinate signs, 2 classes.", params, sample, n, n_test, seed, 2)


def xor4(*, seed: int = 0) -> Dataset:
    """The four XOR points ``(+-1, +-1)`` with label 1 where the signs differ.

    Nothing is random; ``seed`` is accepted for a uniform API and recorded. The test set is the same
    four points (they are the whole distribution).

    Returns
    -------
    Dataset
        ``x`` of shape (4, 2) float32, ``y = [0, 1, 1, 0]`` int64.

    Examples
    --------
    >>> data = xor4()
    >>> data.x.tolist(), data.y.tolist()
    ([[-1.0, -1.0], [-1.0, 1.0], [1.0, -1.0], [1.0, 1.0]], [0, 1, 1, 0])
    """
    seed = check_seed("xor4", seed)
    return make("xor4", "The four XOR points (+-1, +-1), label 1 where the signs differ; test set = train set.",
                dict(seed=seed), _XOR_CORNERS, _XOR_LABELS, _XOR_CORNERS, _XOR_LABELS, 2)


def spirals(n: int = 400, *, noise: float = 0.05, turns: float = 1.5, seed: int = 0,
            test_fraction: float = 0.25, n_test: int | None = None) -> Dataset:
    """Two interleaved spirals in the unit disc.

    A point of class ``c`` at arc parameter ``s ~ sqrt(U(0, 1))`` sits at radius ``s`` and angle
    ``2 pi turns s + pi c`` (so the two arms are point reflections of each other), plus Gaussian noise.

    Parameters
    ----------
    n, seed, test_fraction, n_test
        As in :func:`moons`.
    noise : float
        Standard deviation of the Gaussian noise added to each coordinate.
    turns : float
        Number of turns of each arm (> 0).

    Returns
    -------
    Dataset
        ``x`` of shape (n, 2) float32, ``y`` of shape (n,) int64 in {0, 1}.

    Examples
    --------
    >>> data = spirals(n=50, noise=0.0)
    >>> bool(data.x.norm(dim=1).max() <= 1.0)
    True
    """
    where = "spirals"
    n, n_test, test_fraction = _sizes(where, n, n_test, test_fraction)
    noise = check_float(where, "noise", noise)
    turns = check_float(where, "turns", turns)
    if turns == 0:
        raise ValueError("spirals: turns must be > 0, got 0.0.")
    seed = check_seed(where, seed)

    def sample(rng, m):
        y = _balanced_labels(rng, m, 2)
        s = np.sqrt(rng.uniform(0.0, 1.0, m))  # sqrt: uniform density along the arm's area
        angle = 2 * math.pi * turns * s + math.pi * y
        x = s[:, None] * np.stack([np.cos(angle), np.sin(angle)], axis=1)
        return x + noise * rng.standard_normal((m, 2)), y

    params = dict(n=n, noise=noise, turns=turns, seed=seed, test_fraction=test_fraction, n_test=n_test)
    return _toy("spirals", f"Two interleaved spirals of {turns:g} turns in the unit disc "
                f"(Gaussian noise sd {noise:g}), 2 classes.", params, sample, n, n_test, seed, 2)


def sinusoid(n: int = 400, *, noise: float = 0.0, seed: int = 0, test_fraction: float = 0.25,
             n_test: int | None = None) -> Dataset:
    """Uniform points in ``[-1, 1]^2`` labelled by the sinusoidal boundary ``x2 > 0.6 sin(7 x1 - 1)``.

    The magnification paper's first experiment (400 points, one wide sigmoid layer).

    Parameters
    ----------
    n, seed, test_fraction, n_test
        As in :func:`moons`.
    noise : float in [0, 1]
        Probability that a label is flipped (label noise); 0 gives the exact boundary.

    Returns
    -------
    Dataset
        ``x`` of shape (n, 2) float32 in [-1, 1]^2, ``y`` of shape (n,) int64 in {0, 1}:
        ``y = 1`` iff ``x2 > 0.6 sin(7 x1 - 1)``.

    Examples
    --------
    >>> import torch
    >>> data = sinusoid(n=400, seed=0)
    >>> x1, x2 = data.x.double().T
    >>> bool(((x2 > 0.6 * torch.sin(7 * x1 - 1)).long() == data.y).all())
    True
    """
    where = "sinusoid"
    n, n_test, test_fraction = _sizes(where, n, n_test, test_fraction)
    noise = check_float(where, "noise", noise, maximum=1.0)
    seed = check_seed(where, seed)

    def sample(rng, m):
        # Draw in float64, round to float32 first, then label: labels agree with the stored float32 x.
        x = rng.uniform(-1.0, 1.0, (m, 2)).astype(np.float32).astype(np.float64)
        y = (x[:, 1] > 0.6 * np.sin(7.0 * x[:, 0] - 1.0)).astype(np.int64)
        flip = rng.uniform(0.0, 1.0, m) < noise
        return x, np.where(flip, 1 - y, y)

    params = dict(n=n, noise=noise, seed=seed, test_fraction=test_fraction, n_test=n_test)
    flips = f", labels flipped with probability {noise:g}" if noise else ""
    return _toy("sinusoid", "Uniform points in [-1,1]^2, label 1 above the boundary x2 = 0.6 sin(7 x1 - 1)"
                f"{flips}; 2 classes.", params, sample, n, n_test, seed, 2)


def blobs(n: int = 300, *, n_classes: int = 3, noise: float = 0.2, dim: int = 2, radius: float = 1.0,
          seed: int = 0, test_fraction: float = 0.25, n_test: int | None = None) -> Dataset:
    """Isotropic Gaussian blobs, one per class.

    In 2-D the centres sit evenly on a circle of the given ``radius`` (class ``k`` at angle
    ``2 pi k / n_classes``); in other dimensions they are drawn uniformly on the sphere of that radius
    from a generator seeded by ``seed`` (the same centres for train and test).

    Parameters
    ----------
    n, seed, test_fraction, n_test
        As in :func:`moons`; classes balanced to within one point.
    n_classes : int
        Number of blobs (= classes), >= 1.
    noise : float
        Standard deviation of each blob.
    dim : int
        Input dimension, >= 1.
    radius : float
        Distance of the centres from the origin.

    Returns
    -------
    Dataset
        ``x`` of shape (n, dim) float32, ``y`` of shape (n,) int64 in ``0 .. n_classes - 1``.

    Examples
    --------
    >>> data = blobs(n=30, n_classes=3, noise=0.0)
    >>> data.n_classes, data.y.bincount().tolist(), data.x.unique(dim=0).shape[0]
    (3, [10, 10, 10], 3)
    """
    where = "blobs"
    n, n_test, test_fraction = _sizes(where, n, n_test, test_fraction)
    n_classes = check_int(where, "n_classes", n_classes, minimum=1)
    noise = check_float(where, "noise", noise)
    dim = check_int(where, "dim", dim, minimum=1)
    radius = check_float(where, "radius", radius)
    seed = check_seed(where, seed)

    if dim == 2:
        angle = 2 * math.pi * np.arange(n_classes) / n_classes
        centers = radius * np.stack([np.cos(angle), np.sin(angle)], axis=1)
    else:
        direction = np.random.default_rng(np.random.SeedSequence(seed).spawn(3)[2]).standard_normal(
            (n_classes, dim))
        centers = radius * direction / np.linalg.norm(direction, axis=1, keepdims=True)

    def sample(rng, m):
        y = _balanced_labels(rng, m, n_classes)
        return centers[y] + noise * rng.standard_normal((m, dim)), y

    params = dict(n=n, n_classes=n_classes, noise=noise, dim=dim, radius=radius, seed=seed,
                  test_fraction=test_fraction, n_test=n_test)
    return _toy("blobs", f"{n_classes} isotropic Gaussian blobs (sd {noise:g}) in {dim}-D with centres at "
                f"distance {radius:g} from the origin; {n_classes} classes.", params, sample, n, n_test,
                seed, n_classes)


REGRESSION_FUNCTIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "sin": lambda x: np.sin(math.pi * x),
    "cos": lambda x: np.cos(math.pi * x),
    "abs": np.abs,
    "square": np.square,
    "cubic": lambda x: x ** 3 - x,
    "relu": lambda x: np.maximum(x, 0.0),
    "step": lambda x: (x > 0).astype(np.float64),
    "zero": np.zeros_like,
}
"""Target functions of :func:`regression_1d` by name, each mapping [-1, 1] to roughly [-1, 1]."""

# How each named target reads in descriptions (sin and cos are of pi x).
_FORMULAS = {"sin": "sin(pi x)", "cos": "cos(pi x)", "abs": "|x|", "square": "x^2", "cubic": "x^3 - x",
             "relu": "max(x, 0)", "step": "step(x)", "zero": "0"}


def regression_1d(n: int = 12, *, fn: str | Callable = "sin", noise: float = 0.0, seed: int = 0,
                  spacing: str = "random", test_fraction: float = 0.25, n_test: int | None = None
                  ) -> Dataset:
    """A univariate regression set ``y = fn(x) + noise`` on ``[-1, 1]`` (for the spline lens).

    Parameters
    ----------
    n : int
        Number of training points.
    fn : str or callable
        One of ``REGRESSION_FUNCTIONS`` (sin = sin(pi x), cos = cos(pi x), abs, square, cubic = x^3 - x,
        relu, step, zero) or a function from a float64 array to an array of the same shape.
    noise : float
        Standard deviation of Gaussian noise added to the training targets only.
    seed : int
        Seeds private generators.
    spacing : {"random", "grid"}
        ``"random"``: sorted uniform draws on [-1, 1]; ``"grid"``: ``linspace(-1, 1, n)``.
    test_fraction, n_test
        Size of the test set: sorted uniform draws (``spacing="random"``) or a grid, with the noiseless
        targets ``fn(x)``, so the test loss measures the fit to ``fn``.

    Returns
    -------
    Dataset
        ``x`` of shape (n, 1) float32 (sorted), ``y`` of shape (n,) float32, ``n_classes = None``.

    Examples
    --------
    >>> data = regression_1d(n=5, fn="abs", spacing="grid")
    >>> data.x.shape, data.y.tolist()
    (torch.Size([5, 1]), [1.0, 0.5, 0.0, 0.5, 1.0])
    >>> data.task
    'regression'
    """
    where = "regression_1d"
    n, n_test, test_fraction = _sizes(where, n, n_test, test_fraction)
    if isinstance(fn, str):
        if fn not in REGRESSION_FUNCTIONS:
            raise ValueError(f"regression_1d: unknown fn {fn!r}; choose one of "
                             f"{', '.join(REGRESSION_FUNCTIONS)} or pass a callable.")
        target, fn_name = REGRESSION_FUNCTIONS[fn], fn
    elif callable(fn):
        target, fn_name = fn, getattr(fn, "__name__", "callable")
    else:
        raise TypeError(f"regression_1d: fn must be a name or a callable, got {type(fn).__name__}.")
    noise = check_float(where, "noise", noise)
    if spacing not in ("random", "grid"):
        raise ValueError(f"regression_1d: spacing must be 'random' or 'grid', got {spacing!r}.")
    seed = check_seed(where, seed)
    rng_train, rng_test = generators(seed)

    def inputs(rng, m):
        if spacing == "grid":
            return np.linspace(-1.0, 1.0, m)
        return np.sort(rng.uniform(-1.0, 1.0, m))

    def values(x):
        y = np.asarray(target(x), dtype=np.float64)
        if y.shape != x.shape:
            raise ValueError(f"regression_1d: fn returned shape {y.shape} for inputs of shape {x.shape}; "
                             "it must act elementwise.")
        return y

    # Round x to float32 before evaluating fn so y is exactly fn of the stored inputs (when noiseless).
    x = inputs(rng_train, n).astype(np.float32).astype(np.float64)
    y = values(x) + noise * rng_train.standard_normal(n)
    x_test = inputs(rng_test, n_test).astype(np.float32).astype(np.float64)
    params = dict(n=n, fn=fn_name, noise=noise, seed=seed, spacing=spacing, test_fraction=test_fraction,
                  n_test=n_test)
    formula = _FORMULAS.get(fn_name, f"{fn_name}(x)") if isinstance(fn, str) else f"{fn_name}(x)"
    return make("regression_1d", f"1-D regression y = {formula} + N(0, {noise:g}^2) on [-1, 1], "
                f"{spacing} inputs; test targets noiseless.", params, x[:, None], y, x_test[:, None],
                values(x_test), None)
