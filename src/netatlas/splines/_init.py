"""Initialisation in the spline view: breakpoint densities and expected roughness, analytic and sampled.

# NOTE [breakpoint densities]
    beta = -b / w with w, b independent and symmetric, so beta has the law of b / w. With
    w ~ U(-A, A) or N(0, sw^2) and b ~ U(-B, B) or N(0, sb^2) (scale factors cancel in the ratio):

    uniform / uniform, k = B / A:   p(z) = 1 / (4k) for |z| <= k,  k / (4 z^2) outside
    normal / normal, g = sb / sw:   Cauchy(0, g):  p(z) = g / (pi (z^2 + g^2))
    normal b / uniform w:           p(z) = sb / (A sqrt(2 pi) z^2) (1 - exp(-A^2 z^2 / (2 sb^2)))
    uniform b / normal w:           p(z) = sw / (B sqrt(2 pi)) (1 - exp(-B^2 / (2 sw^2 z^2)))

    (each from p(z) = int |y| p_b(z y) p_w(y) dy). b = 0 puts every breakpoint at 0.

# NOTE [expected roughness]
    mu_i = v_i |w_i| with v independent of (w, b):  E sum mu^2 = H E[v^2] E[w^2],
    E sum |mu| = H E|v| E|w|,  E TV(f' on (lo, hi)) <= H E|v| E[|w| 1{lo < beta < hi}] (equality
    when no two knots coincide, almost surely for continuous b), the last by 1-D quadrature over w.
    PyTorch default (w, b ~ U(-1, 1), v ~ U(-1/sqrt(H), 1/sqrt(H))): E sum mu^2 = H (1/(3H)) (1/3) = 1/9,
    E sum|mu| = H (1/(2 sqrt H)) (1/2) = sqrt(H)/4. Glorot-uniform (a^2 = 6/(H+1) in both layers):
    H (2/(H+1))^2 = 4H/(H+1)^2. He-normal (w ~ N(0, 2), v ~ N(0, 2/H)): H 2 (2/H) = 4.
    An overall ``scale`` multiplies every parameter, so E sum mu^2 scales as scale^4, E sum|mu| as scale^2.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import integrate, special

from netatlas.splines._params import ShallowParams

__all__ = ["INIT_SCHEMES", "Distribution", "InitScheme", "BreakpointDensity", "ExpectedRoughness",
           "init_scheme", "sample_init", "breakpoint_density", "expected_roughness", "sampled_roughness"]

INIT_SCHEMES = ("torch", "gaussian", "he", "glorot")


@dataclass(frozen=True)
class Distribution:
    """A symmetric scalar law: ``kind`` "uniform" on (-scale, scale), "normal" N(0, scale^2) or "zero"."""

    kind: Literal["uniform", "normal", "zero"]
    scale: float

    def sample(self, rng: np.random.Generator, shape) -> np.ndarray:
        if self.kind == "uniform":
            return rng.uniform(-self.scale, self.scale, shape)
        if self.kind == "normal":
            return rng.normal(0.0, self.scale, shape)
        return np.zeros(shape)

    @property
    def second_moment(self) -> float:
        return {"uniform": self.scale ** 2 / 3, "normal": self.scale ** 2, "zero": 0.0}[self.kind]

    @property
    def abs_mean(self) -> float:
        return {"uniform": self.scale / 2, "normal": self.scale * math.sqrt(2 / math.pi), "zero": 0.0}[self.kind]

    def cdf(self, x):
        x = np.asarray(x, dtype=np.float64)
        if self.kind == "uniform":
            return np.clip((x + self.scale) / (2 * self.scale), 0.0, 1.0)
        if self.kind == "normal":
            return special.ndtr(x / self.scale)
        return (x >= 0).astype(np.float64)

    def pdf(self, x):
        x = np.asarray(x, dtype=np.float64)
        if self.kind == "uniform":
            return np.where(np.abs(x) <= self.scale, 0.5 / self.scale, 0.0)
        return np.exp(-0.5 * (x / self.scale) ** 2) / (self.scale * math.sqrt(2 * math.pi))

    def to_dict(self) -> dict:
        return {"kind": self.kind, "scale": self.scale}


@dataclass(frozen=True)
class InitScheme:
    """The laws of w, b (first layer), v, c (second layer) of a width-H network, independent entries."""

    name: str
    width: int
    w: Distribution
    b: Distribution
    v: Distribution
    c: Distribution

    def to_dict(self) -> dict:
        return {"name": self.name, "width": self.width, **{k: getattr(self, k).to_dict() for k in "wbvc"}}


def _scaled(d: Distribution, factor: float) -> Distribution:
    return d if d.kind == "zero" else Distribution(d.kind, d.scale * factor)


def init_scheme(name: Literal["torch", "gaussian", "he", "glorot"], width: int, *, scale: float = 1.0,
                bias: bool | float | None = None, first_scale: float = 1.0, second_scale: float = 1.0,
                sigma_w: float = 1.0, sigma_b: float = 1.0, sigma_v: float | None = None) -> InitScheme:
    """The parameter laws of a named initialisation of ``Linear(1, H) - ReLU - Linear(H, 1)``.

    Parameters
    ----------
    name : {"torch", "gaussian", "he", "glorot"}
        ``torch``: PyTorch default, w, b ~ U(-1, 1), v, c ~ U(-1/sqrt H, 1/sqrt H).
        ``gaussian``: w ~ N(0, sigma_w^2), b ~ N(0, sigma_b^2), v ~ N(0, sigma_v^2) (default 1/H),
        c ~ N(0, sigma_b^2) (``netatlas.nets.mlp(init="normal")`` for the defaults).
        ``he``: w ~ N(0, 2), v ~ N(0, 2/H). ``glorot``: w, v ~ U(-a, a), a = sqrt(6/(H+1)).
    width : int
        H >= 1.
    scale : float
        Multiplies every parameter; ``first_scale``/``second_scale`` multiply (w, b) / (v, c) on top
        (their ratio sets the regime of training, see ``netatlas splines regimes``).
    bias : bool or float, optional
        False: b = c = 0. True: biases drawn like the weights of their layer (for torch and
        gaussian, the defaults above). A float: b, c ~ N(0, bias^2). Default: True for torch and
        gaussian, False for he and glorot (their usual zero-bias form).

    Examples
    --------
    >>> init_scheme("glorot", 3).w
    Distribution(kind='uniform', scale=1.224744871391589)
    """
    if name not in INIT_SCHEMES:
        raise ValueError(f"init_scheme: unknown init {name!r}; choose one of {INIT_SCHEMES}")
    width = int(width)
    if width < 1:
        raise ValueError(f"init_scheme: width must be >= 1; got {width}")
    for label, value in (("scale", scale), ("first_scale", first_scale), ("second_scale", second_scale)):
        if not (np.isfinite(value) and value > 0):
            raise ValueError(f"init_scheme: {label} must be positive and finite; got {value}")
    if bias is None:
        bias = name in ("torch", "gaussian")
    if name == "torch":
        w, v = Distribution("uniform", 1.0), Distribution("uniform", 1 / math.sqrt(width))
    elif name == "gaussian":
        sv = 1 / math.sqrt(width) if sigma_v is None else float(sigma_v)
        w, v = Distribution("normal", float(sigma_w)), Distribution("normal", sv)
    elif name == "he":
        w, v = Distribution("normal", math.sqrt(2.0)), Distribution("normal", math.sqrt(2.0 / width))
    else:
        a = math.sqrt(6.0 / (width + 1))
        w, v = Distribution("uniform", a), Distribution("uniform", a)
    if bias is True:
        b, c = (Distribution("normal", float(sigma_b)),) * 2 if name == "gaussian" else (w, v)
    elif bias is False:
        b = c = Distribution("zero", 0.0)
    else:
        b = c = Distribution("normal", float(bias))
    s1, s2 = scale * first_scale, scale * second_scale
    return InitScheme(name, width, _scaled(w, s1), _scaled(b, s1), _scaled(v, s2), _scaled(c, s2))


def sample_init(scheme: InitScheme, *, seed: int = 0, n_networks: int | None = None):
    """Draw network parameters from ``scheme`` (numpy ``default_rng(seed)``).

    Returns
    -------
    ShallowParams, or for ``n_networks = S`` a tuple (w, b, v, c) of arrays (S, H), (S, H), (S, H), (S,).

    Examples
    --------
    >>> sample_init(init_scheme("torch", 5), seed=0).width
    5
    """
    rng = np.random.default_rng(seed)
    shape = (1 if n_networks is None else int(n_networks), scheme.width)
    w, b = scheme.w.sample(rng, shape), scheme.b.sample(rng, shape)
    v, c = scheme.v.sample(rng, shape), scheme.c.sample(rng, shape[:1])
    if n_networks is None:
        return ShallowParams(w[0], b[0], v[0], c[0])
    return w, b, v, c


@dataclass(frozen=True)
class BreakpointDensity:
    """The law of a breakpoint beta = -b/w under an init (see NOTE [breakpoint densities]).

    ``kind`` is "uniform_ratio", "cauchy", "normal_over_uniform", "uniform_over_normal" or
    "point_mass" (b = 0: every breakpoint at 0); ``pdf``/``cdf`` take arrays.
    """

    kind: str
    w: Distribution
    b: Distribution

    def pdf(self, z) -> np.ndarray:
        z = np.asarray(z, dtype=np.float64)
        A, B = self.w.scale, self.b.scale
        with np.errstate(divide="ignore", invalid="ignore"):
            if self.kind == "uniform_ratio":
                k = B / A
                return np.where(np.abs(z) <= k, 1 / (4 * k), k / (4 * z ** 2))
            if self.kind == "cauchy":
                g = B / A
                return g / (np.pi * (z ** 2 + g ** 2))
            if self.kind == "normal_over_uniform":  # b ~ N(0, B^2), w ~ U(-A, A)
                small = A / (B * math.sqrt(2 * math.pi))
                big = B / (A * math.sqrt(2 * math.pi) * z ** 2) * -np.expm1(-(A * z) ** 2 / (2 * B ** 2))
                return np.where(z == 0, small, big)
            if self.kind == "uniform_over_normal":  # b ~ U(-B, B), w ~ N(0, A^2)
                return A / (B * math.sqrt(2 * math.pi)) * -np.expm1(-(B ** 2) / (2 * A ** 2 * z ** 2))
        raise ValueError("BreakpointDensity.pdf: every breakpoint is 0 (b = 0); there is no density")

    def cdf(self, z) -> np.ndarray:
        z = np.asarray(z, dtype=np.float64)
        A, B = self.w.scale, self.b.scale
        with np.errstate(divide="ignore", invalid="ignore"):
            if self.kind == "uniform_ratio":
                u = z / (B / A)
                return np.where(np.abs(u) <= 1, 0.5 + u / 4, np.where(u > 0, 1 - 1 / (4 * u), -1 / (4 * u)))
            if self.kind == "cauchy":
                return 0.5 + np.arctan(z / (B / A)) / np.pi
            if self.kind == "normal_over_uniform":
                return 0.5 + _odd_integral(z, B / (A * math.sqrt(2 * math.pi)), A ** 2 / (2 * B ** 2))
            if self.kind == "uniform_over_normal":
                # |beta| < |z| iff |1/beta| > 1/|z|, and 1/beta = -w/b is normal-over-uniform
                inverse = BreakpointDensity("normal_over_uniform", self.b, self.w)
                with_tail = 1 - inverse.cdf(1 / np.abs(z))  # P(1/beta > 1/|z|) = P(0 < beta < |z|)
                return np.where(z == 0, 0.5, 0.5 + np.sign(z) * with_tail)
        return (z >= 0).astype(np.float64)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "w": self.w.to_dict(), "b": self.b.to_dict()}


def _odd_integral(z, c, a):
    # c * G(z), G(z) = int_0^z (1 - exp(-a t^2)) / t^2 dt = -(1 - exp(-a z^2)) / z + sqrt(pi a) erf(sqrt(a) z)
    with np.errstate(divide="ignore", invalid="ignore"):
        g = np.expm1(-a * z ** 2) / z + math.sqrt(math.pi * a) * special.erf(math.sqrt(a) * z)
    return c * np.where(z == 0, 0.0, g)


def breakpoint_density(scheme: InitScheme) -> BreakpointDensity:
    """The analytic law of the breakpoints beta_i = -b_i / w_i under ``scheme``.

    Examples
    --------
    >>> d = breakpoint_density(init_scheme("torch", 10))
    >>> d.kind, float(d.cdf(1.0) - d.cdf(-1.0)), float(d.pdf(2.0))
    ('uniform_ratio', 0.5, 0.0625)
    >>> breakpoint_density(init_scheme("he", 10)).kind
    'point_mass'
    """
    w, b = scheme.w, scheme.b
    if w.kind == "zero":
        raise ValueError("breakpoint_density: w = 0 has no breakpoints")
    if b.kind == "zero":
        kind = "point_mass"
    else:
        kind = {("uniform", "uniform"): "uniform_ratio", ("normal", "normal"): "cauchy",
                ("uniform", "normal"): "normal_over_uniform", ("normal", "uniform"): "uniform_over_normal"}[
            (w.kind, b.kind)]
    return BreakpointDensity(kind, w, b)


@dataclass(frozen=True)
class ExpectedRoughness:
    """E sum mu^2 (``l2``), E sum |mu| (``l1``), E TV(f') on ``x_range`` (``tv``) and E #breakpoints
    in ``x_range`` (``n_knots_in_range``). ``tv`` is exact for continuous biases (knots a.s. distinct);
    for b = 0 (all knots at 0, TV = |sum mu|) it is the large-H Gaussian value sqrt(2 l2 / pi)."""

    l2: float
    l1: float
    tv: float | None
    n_knots_in_range: float | None
    x_range: tuple[float, float] | None

    def to_dict(self) -> dict:
        return dict(self.__dict__, x_range=list(self.x_range) if self.x_range else None)


def expected_roughness(scheme: InitScheme, *, x_range=None) -> ExpectedRoughness:
    """Analytic expected roughness at initialisation (NOTE [expected roughness]).

    Examples
    --------
    >>> round(expected_roughness(init_scheme("torch", 100)).l2, 12)
    0.111111111111
    >>> round(expected_roughness(init_scheme("he", 7)).l2, 12)
    4.0
    """
    H = scheme.width
    l2 = H * scheme.v.second_moment * scheme.w.second_moment
    l1 = H * scheme.v.abs_mean * scheme.w.abs_mean
    tv = n_in = None
    if x_range is not None:
        lo, hi = (float(t) for t in x_range)
        if not lo < hi:
            raise ValueError(f"expected_roughness: x_range must be (lo, hi) with lo < hi; got {x_range}")
        density = breakpoint_density(scheme)
        n_in = H * float(density.cdf(hi) - density.cdf(lo)) if density.kind != "point_mass" else \
            H * float(lo < 0 < hi)
        # E[|w| 1{lo < -b/w < hi}] = 2 int_0^inf w p_w(w) P(-hi w < b < -lo w) dw  (w, b symmetric)
        w, b = scheme.w, scheme.b

        def integrand(t):
            return 2 * t * float(w.pdf(t)) * float(b.cdf(-lo * t) - b.cdf(-hi * t))

        upper = w.scale if w.kind == "uniform" else 12 * w.scale
        if b.kind == "zero":
            # every knot at 0: TV = |sum_i mu_i|, a sum of H iid symmetric terms; its mean is
            # sqrt(2/pi) sqrt(E sum mu^2) in the Gaussian (large-H) approximation
            tv = math.sqrt(2 / math.pi * l2) * float(lo < 0 < hi)
        else:
            abs_w_in = integrate.quad(integrand, 0.0, upper, limit=200, epsabs=1e-13, epsrel=1e-11)[0]
            tv = H * scheme.v.abs_mean * abs_w_in
    return ExpectedRoughness(l2=l2, l1=l1, tv=tv, n_knots_in_range=n_in,
                             x_range=None if x_range is None else (lo, hi))


@dataclass(frozen=True)
class SampledRoughness:
    """Monte-Carlo roughness over ``n_networks`` draws: per-draw arrays and their means/standard errors."""

    l2: np.ndarray
    l1: np.ndarray
    tv: np.ndarray
    x_range: tuple[float, float] | None
    seed: int

    def mean(self) -> dict:
        return {k: float(getattr(self, k).mean()) for k in ("l2", "l1", "tv")}

    def stderr(self) -> dict:
        n = self.l2.size
        return {k: float(getattr(self, k).std(ddof=1) / math.sqrt(n)) for k in ("l2", "l1", "tv")}

    def to_dict(self) -> dict:
        return {"mean": self.mean(), "stderr": self.stderr(), "n_networks": int(self.l2.size),
                "x_range": list(self.x_range) if self.x_range else None, "seed": self.seed}


def sampled_roughness(scheme: InitScheme, *, n_networks: int = 1000, seed: int = 0,
                      x_range=(-1.0, 1.0)) -> SampledRoughness:
    """Roughness of ``n_networks`` networks drawn from ``scheme`` (vectorised; TV assumes distinct knots,
    true almost surely for continuous biases; for b = 0 all knots sit at 0 and TV is |sum mu|).

    Examples
    --------
    >>> r = sampled_roughness(init_scheme("torch", 50), n_networks=200, seed=0)
    >>> abs(r.mean()["l2"] - 1 / 9) < 4 * r.stderr()["l2"]
    True
    """
    w, b, v, _ = sample_init(scheme, seed=seed, n_networks=n_networks)
    mu = v * np.abs(w)
    lo, hi = x_range if x_range is not None else (-np.inf, np.inf)
    with np.errstate(divide="ignore", invalid="ignore"):
        beta = np.where(w != 0, -b / w, np.inf)
    inside = (beta > lo) & (beta < hi) & (w != 0)
    if scheme.b.kind == "zero":
        tv = np.abs(np.sum(mu * inside, axis=1))
    else:
        tv = np.sum(np.abs(mu) * inside, axis=1)
    return SampledRoughness(l2=np.sum(mu ** 2, axis=1), l1=np.sum(np.abs(mu), axis=1), tv=tv,
                            x_range=None if x_range is None else (float(lo), float(hi)), seed=seed)
