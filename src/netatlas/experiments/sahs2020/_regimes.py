"""Implicit regularisation: which interpolant gradient descent picks, as a function of init scale,
first/second-layer scale ratio and width (kernel regime -> natural cubic spline, adaptive regime ->
linear interpolant with breakpoints at the data).

# NOTE [kernel limit]
    With the first layer frozen, gradient flow from v = 0 converges to the minimum-norm v that
    interpolates. For |w_i| = 1 that minimises sum_i mu_i^2 over splines with breakpoints beta_i; with
    breakpoints spread uniformly (density H / (b - a) on [a, b]) this is a Riemann sum of
    (b - a)/H int f''^2, and the affine part (a few of the many neurons left of the data) costs
    O(1/H): the limit H -> inf minimises int f''^2 among interpolants, i.e. the natural cubic spline
    inside the data range (linear outside). :func:`kernel_limit` computes the finite-H minimiser exactly.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
from scipy.interpolate import CubicSpline

from netatlas.splines import ShallowParams, simulate_flow

__all__ = ["KernelFit", "kernel_limit", "min_tv_interpolant", "natural_cubic_spline", "linear_interpolant",
           "regime_data", "regime_init", "regime_run", "REGIME_DEFAULTS"]

# Defaults of one regime run (the CLI sweeps scale, ratio, width, seed over these).
REGIME_DEFAULTS = {"scale": 1.0, "ratio": 1.0, "width": 200, "seed": 0, "init": "uniform", "n_points": 8,
                   "data_seed": 0, "max_steps": 200_000, "loss_tol_rel": 1e-6, "interval": 2.0}


@dataclass(frozen=True, eq=False)
class KernelFit:
    """f(x) = slope x + intercept + sum_i delta_slopes[i] (x - breakpoints[i])_+ (the linear-part form)."""

    breakpoints: np.ndarray
    delta_slopes: np.ndarray
    slope: float
    intercept: float

    def __call__(self, x) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        return self.slope * x + self.intercept + np.maximum(x[..., None] - self.breakpoints, 0.0) @ self.delta_slopes

    def to_dict(self) -> dict:
        return {"width": int(self.breakpoints.size), "slope": self.slope, "intercept": self.intercept,
                "sum_mu2": float(np.sum(self.delta_slopes ** 2))}


def kernel_limit(x, y, width: int, *, interval=(-2.0, 2.0), spacing: str = "even", seed: int = 0) -> KernelFit:
    """The minimum sum mu^2 interpolant with ``width`` breakpoints on ``interval`` and a free affine part
    (NOTE [kernel limit]); ``spacing`` "even" (midpoints of equal cells) or "random" (uniform draws).

    Examples
    --------
    >>> x = np.linspace(-1, 1, 6); y = x ** 3
    >>> fit = kernel_limit(x, y, 500)
    >>> float(np.max(np.abs(fit(x) - y))) < 1e-10
    True
    """
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    lo, hi = (float(t) for t in interval)
    if spacing == "even":
        beta = lo + (np.arange(width) + 0.5) * (hi - lo) / width
    elif spacing == "random":
        beta = np.sort(np.random.default_rng(seed).uniform(lo, hi, width))
    else:
        raise ValueError(f"kernel_limit: spacing must be 'even' or 'random'; got {spacing!r}")
    phi = np.maximum(x[:, None] - beta, 0.0)  # (n, H)
    affine = np.stack([x, np.ones_like(x)], axis=1)
    # minimise |mu|^2 subject to phi mu + affine (a, d) = y: project out the affine span with an
    # orthonormal basis N of its complement, solve N^T phi mu = N^T y in the least-norm sense
    q, _ = np.linalg.qr(affine, mode="complete")
    null = q[:, 2:]
    mu = np.linalg.lstsq(null.T @ phi, null.T @ y, rcond=None)[0]
    slope, intercept = np.linalg.lstsq(affine, y - phi @ mu, rcond=None)[0]
    return KernelFit(beta, mu, float(slope), float(intercept))


def min_tv_interpolant(x, y, *, n_knots: int = 2001) -> tuple[float, KernelFit]:
    """An interpolant of minimal total variation of f' (sum |mu|) with knots on ``n_knots`` even points
    of the data range and a free affine part (a linear programme); returns ``(TV, fit)``.

    Small-scale (adaptive) training drives sum |mu| down: its solutions are sparse linear splines
    whose TV(f') is near this minimum, below the linear interpolant's when consecutive data chords
    can be extended to meet between the data points.

    Examples
    --------
    >>> tv, fit = min_tv_interpolant([-1.0, 0.0, 1.0], [1.0, 0.0, 1.0], n_knots=201)
    >>> round(tv, 9), round(float(fit(0.5)), 9)
    (2.0, 0.5)
    """
    from scipy.optimize import linprog

    x = np.asarray(x, dtype=np.float64).reshape(-1)
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    beta = np.linspace(x.min(), x.max(), n_knots)
    phi = np.maximum(x[:, None] - beta, 0.0)
    # variables: mu+ (K), mu- (K), a, d ; minimise sum mu+ + mu- s.t. phi (mu+ - mu-) + a x + d = y
    k = beta.size
    a_eq = np.concatenate([phi, -phi, x[:, None], np.ones((x.size, 1))], axis=1)
    cost = np.concatenate([np.ones(2 * k), [0.0, 0.0]])
    bounds = [(0, None)] * (2 * k) + [(None, None)] * 2
    res = linprog(cost, A_eq=a_eq, b_eq=y, bounds=bounds, method="highs")
    if not res.success:
        raise FloatingPointError(f"min_tv_interpolant: the linear programme failed: {res.message}")
    mu = res.x[:k] - res.x[k:2 * k]
    keep = np.abs(mu) > 1e-12
    return float(res.fun), KernelFit(beta[keep], mu[keep], float(res.x[-2]), float(res.x[-1]))


def natural_cubic_spline(x, y) -> CubicSpline:
    """scipy's natural cubic spline through the data (sorted by x)."""
    order = np.argsort(x)
    return CubicSpline(np.asarray(x)[order], np.asarray(y)[order], bc_type="natural")


def linear_interpolant(x, y):
    """The piecewise-linear interpolant of the data (a callable; constant outside the data range)."""
    order = np.argsort(x)
    xs, ys = np.asarray(x, dtype=np.float64)[order], np.asarray(y, dtype=np.float64)[order]
    return lambda t: np.interp(t, xs, ys)


def regime_data(n_points: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The regime experiments' data: ``n_points`` evenly spaced points on [-1, 1] (``seed`` > 0 jitters
    the interior ones by up to 30 % of the spacing) with targets y = sin(2.5 x) + 0.4 cos(6 x); the
    natural cubic spline and the linear interpolant differ by ~0.2-0.3 on them.

    Examples
    --------
    >>> x, y = regime_data(5)
    >>> x.tolist()
    [-1.0, -0.5, 0.0, 0.5, 1.0]
    """
    if n_points < 3:
        raise ValueError(f"regime_data: n_points must be >= 3; got {n_points}")
    x = np.linspace(-1.0, 1.0, n_points)
    if seed:
        spacing = 2.0 / (n_points - 1)
        x[1:-1] += np.random.default_rng(seed).uniform(-0.3, 0.3, n_points - 2) * spacing
    return x, np.sin(2.5 * x) + 0.4 * np.cos(6 * x)


def regime_init(width: int, *, scale: float = 1.0, ratio: float = 1.0, init: str = "uniform",
                interval: float = 2.0, seed: int = 0) -> ShallowParams:
    """A symmetric (f = 0 at init) network for regime experiments.

    Half the neurons are drawn, the other half copies them with v negated, so f0 = 0 whatever the
    scale. First layer (w, b) times a1 = scale sqrt(ratio), second layer v times a2 = scale / sqrt(ratio):
    a1 a2 = scale^2 sets the size of f's features, a2 / a1 = 1 / ratio the speed of the breakpoints.
    ``init="uniform"``: |w| = 1, random sign, breakpoints uniform on [-interval, interval], v ~ N(0, 1/H);
    ``init="torch"``: PyTorch's default laws. ``width`` must be even.
    """
    if width % 2 or width < 2:
        raise ValueError(f"regime_init: width must be even and >= 2 (neurons come in +-v pairs); got {width}")
    rng = np.random.default_rng(seed)
    half = width // 2
    if init == "uniform":
        w = rng.choice([-1.0, 1.0], half)
        b = -w * rng.uniform(-interval, interval, half)
        v = rng.normal(0.0, 1.0 / math.sqrt(width), half)
    elif init == "torch":
        w, b = rng.uniform(-1, 1, (2, half))
        v = rng.uniform(-1 / math.sqrt(width), 1 / math.sqrt(width), half)
    else:
        raise ValueError(f"regime_init: init must be 'uniform' or 'torch'; got {init!r}")
    a1, a2 = scale * math.sqrt(ratio), scale / math.sqrt(ratio)
    return ShallowParams(np.tile(w, 2) * a1, np.tile(b, 2) * a1, np.concatenate([v, -v]) * a2, 0.0)


def regime_run(config: dict) -> dict:
    """Train one network of a regime sweep to (near) zero loss and measure which interpolant it is.

    ``config`` overrides :data:`REGIME_DEFAULTS`. Returns distances (max |f - g| on 801 points of the
    data range) to the natural cubic spline and the linear interpolant, the same relative to their
    mutual distance, the median breakpoint movement of neurons that carry slope, roughness (``tv``:
    TV(f') on the data range from f on the grid, so that cancelling +-mu twins do not count; ``tv_min``:
    the least TV(f') of any interpolant, from :func:`min_tv_interpolant`), steps, and
    ``function``: f on 201 evenly spaced points of the data range.

    Examples
    --------
    >>> out = regime_run({"scale": 1.0, "width": 40, "max_steps": 3000})
    >>> sorted(out)[:3], len(out["function"])
    (['breakpoint_shift', 'converged', 'cubic_linear_gap'], 201)
    """
    cfg = {**REGIME_DEFAULTS, **config}
    x, y = regime_data(int(cfg["n_points"]), int(cfg["data_seed"]))
    p0 = regime_init(int(cfg["width"]), scale=float(cfg["scale"]), ratio=float(cfg["ratio"]), init=cfg["init"],
                     interval=float(cfg["interval"]), seed=int(cfg["seed"]))
    start = time.perf_counter()
    loss_tol = float(cfg["loss_tol_rel"]) * 0.5 * float(y @ y)
    run = simulate_flow(p0, x, y, n_steps=int(cfg["max_steps"]), lr="auto", n_records=2, loss_tol=loss_tol)
    grid = np.linspace(x[0], x[-1], 801)
    spline0, spline1 = run.spline(0), run.spline(-1)
    f = spline1(grid)
    cubic, linear = natural_cubic_spline(x, y)(grid), linear_interpolant(x, y)(grid)
    gap = float(np.max(np.abs(cubic - linear)))
    mu = np.abs(spline1.delta_slopes)
    carry = mu > 1e-3 * max(mu.max(), 1e-300)
    shift = np.abs(spline1.breakpoints - spline0.breakpoints)[carry]
    d_cubic, d_linear = float(np.max(np.abs(f - cubic))), float(np.max(np.abs(f - linear)))
    tv_min, _ = min_tv_interpolant(x, y, n_knots=801)

    def tv_of(values):  # TV of the slope of a function sampled on the fine grid
        return float(np.abs(np.diff(np.diff(values) / np.diff(grid))).sum())

    return {"dist_cubic": d_cubic, "dist_linear": d_linear, "rel_cubic": d_cubic / gap,
            "rel_linear": d_linear / gap, "cubic_linear_gap": gap,
            "breakpoint_shift": float(np.median(shift)) if shift.size else 0.0,
            "l2": spline1.roughness().l2, "tv": tv_of(f), "tv_cubic": tv_of(cubic), "tv_linear": tv_of(linear),
            "tv_min": tv_min, "tv_over_min": tv_of(f) / tv_min,
            "final_loss": float(run.loss[-1]), "steps": int(run.steps[-1]), "converged": run.converged,
            "seconds": time.perf_counter() - start, "function": f[::4].tolist()}
