"""Transition zones: where each unit switches, how wide that is, and which samples sit there.

A unit ``phi(w.x + b)`` of the first layer switches across its hyperplane ``H = {w.x + b = 0}``
(claim C1 of van den Berg 2016). We call its **switch** the function ``s(z)`` in [0, 1] that goes
from 0 to 1 as the unit turns on, and its **transition zone at level eps** the set of
pre-activations ``z`` with ``eps <= s(z) <= 1 - eps``:

==============  =====================================  ===========================================
activation      switch s(z)                            zone in z (L = ln((1-eps)/eps))
==============  =====================================  ===========================================
sigmoid         sigma(z)                               |z| <= L                 (width 2L)
tanh            (1 + tanh z)/2 = sigma(2z)             |z| <= L/2               (width L)
erf             (1 + erf z)/2                          |z| <= erfinv(1 - 2 eps)
softplus(beta)  softplus'(z) = sigma(beta z)           |z| <= L/beta
gelu, elu       phi'(z) (a smoothed step)              [z_lo, z_hi], found numerically
relu, leaky     the step 1[z > 0]                      {0}: a zone of width zero
==============  =====================================  ===========================================

Divided by ``||w||`` a zone in ``z`` is a slab in input space around H (claim C2): width
``2 L/||w||`` for a sigmoid (4.394/||w|| at eps = 0.1) and ``L/||w||`` for tanh.

**ReLU.** A ReLU zone has width zero, so for piecewise-linear units the zone is defined by
*distance*: sample ``x`` is in unit i's zone of width ``delta`` when its distance to the unit's
(bent) hyperplane ``{z_i = 0}`` is at most ``delta/2``. The distance is ``|z_i(x)|/||grad_x z_i(x)||``:
exact for first-layer units (``|w.x + b|/||w||``) and, for deeper units, the exact distance to the
hyperplane that continues the local affine piece of ``z_i`` through x's linear region (a first-order
estimate of the distance to the bent hyperplane, exact whenever the nearest point of ``{z_i = 0}``
lies in x's region). The same definition is used for smooth units when a width is given.
"""

from __future__ import annotations

import copy
import functools
import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import brentq
from scipy.special import erfinv

from netatlas._deprecate import renamed
from netatlas.nets import Activation, Net, as_net

__all__ = [
    "BELL_SHAPED",
    "UnitDistances",
    "expected_gradient_mass",
    "gradient_mass",
    "hyperplane_distances",
    "predicted_gradient_mass",
    "projected_density",
    "scale_model",
    "square_projected_density",
    "steepest_slope",
    "unit_distances",
    "zone_interval",
    "zone_membership",
    "zone_width",
]

# Activations whose derivative is a bump that integrates to phi(inf) - phi(-inf): the "gradient mass"
# sum_i phi'(z_i) of C5 is defined for these.
BELL_SHAPED = ("sigmoid", "tanh", "erf")
_INTEGRAL_OF_DERIVATIVE = {"sigmoid": 1.0, "tanh": 2.0, "erf": 2.0}
_ZONE_ACTIVATIONS = ("sigmoid", "tanh", "erf", "softplus", "gelu", "gelu_tanh", "elu", "relu", "leaky_relu")


def _activation(activation, where) -> Activation:
    if isinstance(activation, Activation):
        return activation
    if isinstance(activation, str):
        params = {"leaky_relu": {"negative_slope": 0.01}}.get(activation, {})
        if activation in _ZONE_ACTIVATIONS:
            return Activation(activation, params)
    raise ValueError(f"{where}: unknown activation {activation!r}; choose one of {_ZONE_ACTIVATIONS}")


def _derivative(act: Activation, z) -> np.ndarray:
    t = torch.as_tensor(z, dtype=torch.float64)
    return act.derivative(t).numpy()  # gelu, elu: phi' is the smoothed step


@functools.lru_cache(maxsize=64)
def _zone_interval(name: str, params: tuple, eps: float) -> tuple[float, float]:
    act = Activation(name, dict(params))
    logit = math.log((1 - eps) / eps)
    if name == "sigmoid":
        return -logit, logit
    if name == "tanh":
        return -logit / 2, logit / 2
    if name == "erf":
        h = float(erfinv(1 - 2 * eps))
        return -h, h
    if name == "softplus":
        beta = act.params.get("beta", 1.0)
        return -logit / beta, logit / beta
    if name in ("relu", "leaky_relu"):
        return 0.0, 0.0
    # gelu, elu: bracket the crossings of eps and 1 - eps on a grid, then refine.
    z = np.linspace(-60, 60, 240_001)
    s = _derivative(act, z)
    inside = np.flatnonzero((s >= eps) & (s <= 1 - eps))
    lo, hi = inside[0], inside[-1]
    f = lambda v, level: float(_derivative(act, np.array([v]))[0]) - level
    z_lo = brentq(f, z[lo - 1], z[lo], args=(eps,))
    z_hi = brentq(f, z[hi], z[hi + 1], args=(1 - eps,))
    return z_lo, z_hi


def zone_interval(activation="sigmoid", eps: float = 0.1) -> tuple[float, float]:
    """The pre-activation interval ``[z_lo, z_hi]`` of a unit's transition zone at level ``eps``.

    Parameters
    ----------
    activation : str or netatlas.nets.Activation
        sigmoid, tanh, erf, softplus, gelu, gelu_tanh, elu, relu or leaky_relu.
    eps : float in (0, 0.5)

    Returns
    -------
    (float, float)
        See the module docstring for the definitions; (0, 0) for ReLU.

    Examples
    --------
    >>> [round(v, 4) for v in zone_interval("sigmoid", 0.1)]
    [-2.1972, 2.1972]
    >>> zone_interval("relu")
    (0.0, 0.0)
    """
    act = _activation(activation, "zone_interval")
    if not 0 < eps < 0.5:
        raise ValueError(f"zone_interval: eps must be in (0, 0.5), got {eps}")
    return _zone_interval(act.name, tuple(sorted(act.params.items())), float(eps))


def zone_width(w_norm, activation="sigmoid", eps: float = 0.1):
    """Width in input space of a unit's transition zone: ``(z_hi - z_lo)/||w||`` (claim C2).

    Parameters
    ----------
    w_norm : float or array_like
        Norm of the unit's incoming weight vector.
    activation, eps
        As in :func:`zone_interval`.

    Returns
    -------
    float or ndarray like ``w_norm``
        ``2 ln((1-eps)/eps)/||w||`` for a sigmoid, ``ln((1-eps)/eps)/||w||`` for tanh.

    Examples
    --------
    >>> round(zone_width(1.0, "sigmoid", 0.1), 3), round(zone_width(1.0, "tanh", 0.1), 3)
    (4.394, 2.197)
    >>> zone_width([1.0, 2.0], "sigmoid").round(3)
    array([4.394, 2.197])
    """
    z_lo, z_hi = zone_interval(activation, eps)
    w = np.asarray(w_norm, dtype=np.float64)
    if np.any(w <= 0):
        raise ValueError("zone_width: w_norm must be positive")
    out = (z_hi - z_lo) / w
    return float(out) if out.ndim == 0 else out


def steepest_slope(w_norm, activation="sigmoid"):
    """Steepest slope of ``phi(w.x + b)`` along x: ``max_z phi'(z) ||w||`` (claim C3).

    ``||w||/4`` for a sigmoid, ``||w||`` for tanh and ReLU, ``2||w||/sqrt(pi)`` for erf; other
    activations use the maximum of phi' on a fine grid.

    Examples
    --------
    >>> steepest_slope(8.0, "sigmoid"), steepest_slope(8.0, "tanh")
    (2.0, 8.0)
    """
    act = _activation(activation, "steepest_slope") if activation != "identity" else Activation("identity")
    out = act.max_derivative * np.asarray(w_norm, dtype=np.float64)
    return float(out) if out.ndim == 0 else out


def gradient_mass(z, activation="sigmoid"):
    """The gradient mass of each unit: ``sum_i phi'(z_i)`` over samples (claim C5).

    Parameters
    ----------
    z : array_like of shape (n_samples,) or (n_samples, n_units)
        Pre-activations of the units at the samples.
    activation : str or Activation

    Returns
    -------
    float or ndarray of shape (n_units,)

    Examples
    --------
    >>> gradient_mass([0.0, 0.0], "sigmoid")
    0.5
    """
    act = _activation(activation, "gradient_mass")
    z = torch.as_tensor(np.asarray(z, dtype=np.float64))
    out = act.derivative(z).sum(0).numpy()
    return float(out) if out.ndim == 0 else out


def predicted_gradient_mass(n_samples: int, density, w_norm, activation="sigmoid"):
    """Large-scale prediction of the gradient mass: ``N rho_perp(-b/||w||) / ||w|| x int phi'`` (C5).

    For large ``||w||``, ``phi'(||w|| t + b)`` is a spike of area ``(int phi')/||w||`` at
    ``t = -b/||w||``, so summing it over N samples with projected density ``rho_perp`` gives
    ``N rho_perp(-b/||w||) (int phi')/||w||`` (``int phi'`` is 1 for sigmoid, 2 for tanh and erf).

    Parameters
    ----------
    n_samples : int
    density : float or array_like
        ``rho_perp(-b/||w||)``: density of the samples projected on ``w/||w||`` at the hyperplane
        (see :func:`projected_density`).
    w_norm : float or array_like

    Examples
    --------
    >>> round(predicted_gradient_mass(2000, 1 / 2 ** 0.5, 16.0), 1)
    88.4
    """
    act = _activation(activation, "predicted_gradient_mass")
    if act.name not in BELL_SHAPED:
        raise ValueError(f"predicted_gradient_mass: defined for activations with a bump-shaped derivative "
                         f"{BELL_SHAPED}, got {act.name!r}")
    out = n_samples * np.asarray(density, dtype=np.float64) * _INTEGRAL_OF_DERIVATIVE[act.name] / np.asarray(
        w_norm, dtype=np.float64)
    return float(out) if out.ndim == 0 else out


def expected_gradient_mass(n_samples: int, density_fn, w_norm: float, bias: float = 0.0,
                           activation="sigmoid", *, n_grid: int = 200_001, span: float = 10.0) -> float:
    """Exact expectation ``N int rho_perp(t) phi'(||w|| t + b) dt`` at any scale, by quadrature.

    The large-scale prediction (:func:`predicted_gradient_mass`) is its ``||w|| -> inf`` limit; at
    small ``||w||`` the zone is wide enough to see the density vary (e.g. the edges of a square).

    Parameters
    ----------
    density_fn : callable
        ``rho_perp(t)`` for an array of t (vectorised).
    span : float
        Integrate over ``|t| <= span`` (the density should vanish outside).

    Examples
    --------
    >>> box = lambda t: (abs(t) <= 1) / 2.0          # projection of uniform [-1, 1]
    >>> round(expected_gradient_mass(1000, box, 1000.0), 3)
    0.5
    """
    act = _activation(activation, "expected_gradient_mass")
    t = np.linspace(-span, span, n_grid)
    integrand = np.asarray(density_fn(t), dtype=np.float64) * _derivative(act, w_norm * t + bias)
    return float(n_samples * np.trapezoid(integrand, t))


def projected_density(x, w, bias: float = 0.0, *, bandwidth: float | None = None) -> float:
    """Gaussian-KDE estimate of ``rho_perp(-b/||w||)``, the density of ``x . w/||w||`` at the hyperplane.

    Parameters
    ----------
    x : array_like of shape (n_samples, n_inputs)
    w : array_like of shape (n_inputs,)
    bias : float
    bandwidth : float, optional
        KDE bandwidth in projected units (default: Scott's rule).

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(0).uniform(-1, 1, (4000, 2))
    >>> round(projected_density(x, [1.0, 0.0]), 1)            # uniform on [-1, 1]: 1/2
    0.5
    """
    from scipy.stats import gaussian_kde

    x = np.asarray(x, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64).ravel()
    norm = np.linalg.norm(w)
    if norm == 0:
        raise ValueError("projected_density: w must be non-zero")
    t = x.reshape(len(x), -1) @ (w / norm)
    kde = gaussian_kde(t, bw_method=None if bandwidth is None else bandwidth / t.std(ddof=1))
    return float(kde(-bias / norm)[0])


def square_projected_density(t, direction, half_width: float = 1.0):
    """Density of ``u . X`` for X uniform on the square ``[-a, a]^2`` and ``u = direction/||direction||``.

    The sum of two independent uniforms (widths ``A = 2a|u_1|``, ``B = 2a|u_2|``) has the trapezoid density
    ``[r(t + (A+B)/2) - r(t + (A-B)/2) - r(t - (A-B)/2) + r(t - (A+B)/2)]/(A B)``, ``r(s) = max(s, 0)``.

    Examples
    --------
    >>> round(float(square_projected_density(0.0, [1.0, 1.0])), 4)     # 1/sqrt(2): the C5 table's rho
    0.7071
    >>> float(square_projected_density(0.0, [1.0, 0.0]))              # uniform on [-1, 1]
    0.5
    """
    u = np.asarray(direction, dtype=np.float64).ravel()
    if u.shape != (2,) or not np.any(u):
        raise ValueError(f"square_projected_density: direction must be a non-zero 2-vector, got {direction}")
    u = np.abs(u) / np.linalg.norm(u)
    t = np.asarray(t, dtype=np.float64)
    A, B = sorted(2 * half_width * u)[::-1]
    if B < 1e-12 * A:  # one axis only: a box of width A
        out = (np.abs(t) <= A / 2) / A
    else:
        r = lambda s: np.maximum(s, 0.0)
        out = (r(t + (A + B) / 2) - r(t + (A - B) / 2) - r(t - (A - B) / 2) + r(t - (A + B) / 2)) / (A * B)
    return float(out) if out.ndim == 0 else out


@renamed(model="net", x="points")
def hyperplane_distances(net, points) -> np.ndarray:
    """Signed distance of every sample to every first-layer unit's hyperplane: ``(w.x + b)/||w||`` (C1).

    Parameters
    ----------
    net : Net or torch.nn.Module
        Its first activation must follow one affine layer of the input (a Linear layer).
    points : array_like of shape (n_samples, *input_shape)

    Returns
    -------
    ndarray of shape (n_samples, n_units)
        Positive on the side where the unit is on; ``inf`` for a unit with ``w = 0``.

    Examples
    --------
    >>> import torch, netatlas
    >>> model = netatlas.nets.mlp([2, 3, 1], seed=0)
    >>> hyperplane_distances(model, torch.zeros(4, 2)).shape
    (4, 3)
    """
    net = as_net(net)
    W, b = _first_layer(net)
    x64 = _inputs(net, points)
    z = x64 @ W.T + b
    norm = np.linalg.norm(W, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(norm > 0, z / np.where(norm > 0, norm, 1), np.inf)


def _first_layer(net: Net):
    try:
        W, b, _ = net.as_mlp()[0]
    except ValueError as exc:
        raise ValueError(f"hyperplane_distances: needs a chain of Linear layers and activations ({exc})") from None
    return W.numpy(), b.numpy()


def _inputs(net: Net, x) -> np.ndarray:
    t = torch.as_tensor(x).detach().to(torch.float64)
    if t.dim() < 1 or math.prod(t.shape[1:]) != net.n_inputs:
        raise ValueError(f"expected inputs of shape (n_samples, *{net.input_shape}), got {tuple(t.shape)}")
    return t.reshape(len(t), -1).numpy()


@dataclass(frozen=True)
class UnitDistances:
    """Pre-activations of every hidden unit and the distance of every sample to its (bent) hyperplane.

    Attributes
    ----------
    z : ndarray of shape (n_samples, n_units)
        Pre-activations, all hidden layers concatenated.
    distance : ndarray of shape (n_samples, n_units)
        Signed ``z_i(x)/||grad_x z_i(x)||`` (``inf`` where the gradient vanishes, e.g. behind dead ReLUs).
    layer : ndarray of shape (n_units,)
        Hidden-layer index (0 = first) of each unit.
    activations : tuple of str
        Activation name of each hidden layer.
    """

    z: np.ndarray
    distance: np.ndarray
    layer: np.ndarray
    activations: tuple[str, ...]

    def nearest(self) -> np.ndarray:
        """(n_samples,) distance to the nearest unit hyperplane of any layer."""
        return np.abs(self.distance).min(1) if self.distance.shape[1] else np.full(len(self.z), np.inf)

    def to_dict(self) -> dict:
        return {"z": self.z, "distance": self.distance, "layer": self.layer, "activations": list(self.activations)}


@renamed(model="net", x="points")
def unit_distances(net, points, *, chunk_size: int = 256) -> UnitDistances:
    """Distance of each sample to each hidden unit's hyperplane ``{z_i = 0}``, all layers.

    Parameters
    ----------
    net : Net or torch.nn.Module
        A chain of Linear layers and activations (``Net.as_mlp``).
    points : array_like of shape (n_samples, *input_shape)
    chunk_size : int
        Samples per chunk (the input Jacobians take chunk x n_units x n_inputs floats).

    Returns
    -------
    UnitDistances

    Notes
    -----
    With ``J_l = dz_l/dx`` the input Jacobian of layer l's pre-activations,
    ``J_1 = W_1`` and ``J_{l+1} = W_{l+1} diag(phi'(z_l)) J_l`` (closed form, float64). The distance
    ``z_i/||J_i||`` is exact for the first layer; for deeper units it is the distance to the
    hyperplane of the local affine piece (ReLU) or the first-order estimate (smooth units).

    Examples
    --------
    >>> import torch, netatlas
    >>> model = netatlas.nets.mlp([2, 4, 3, 1], seed=0)
    >>> d = unit_distances(model, torch.zeros(5, 2))
    >>> d.distance.shape, d.layer.tolist()
    ((5, 7), [0, 0, 0, 0, 1, 1, 1])
    """
    net = as_net(net)
    try:
        layers = net.as_mlp()
    except ValueError as exc:
        raise ValueError(f"unit_distances: needs a chain of Linear layers and activations ({exc})") from None
    hidden = [(W, b, a) for W, b, a in layers if a is not None and a.name != "identity"]
    x64 = torch.as_tensor(_inputs(net, points))
    zs, ds = [], []
    for start in range(0, max(len(x64), 1), chunk_size):
        xc = x64[start:start + chunk_size]
        h, J = xc, None
        z_chunk, d_chunk = [], []
        for W, b, act in layers:
            z = h @ W.T + b
            J = W.expand(len(xc), *W.shape) if J is None else torch.einsum("ij,bjk->bik", W, J)
            if act is None:
                h = z
                continue
            if act.name != "identity":
                norm = torch.linalg.vector_norm(J, dim=2)
                z_chunk.append(z)
                d_chunk.append(torch.where(norm > 0, z / torch.where(norm > 0, norm, 1.0), torch.inf))
            J = act.derivative(z)[:, :, None] * J
            h = act(z)
        zs.append(torch.cat(z_chunk, 1) if z_chunk else torch.zeros(len(xc), 0, dtype=torch.float64))
        ds.append(torch.cat(d_chunk, 1) if d_chunk else torch.zeros(len(xc), 0, dtype=torch.float64))
    layer_index = np.concatenate([np.full(W.shape[0], i) for i, (W, _, _) in enumerate(hidden)]) if hidden \
        else np.zeros(0, int)
    return UnitDistances(torch.cat(zs).numpy(), torch.cat(ds).numpy(), layer_index.astype(int),
                         tuple(a.name for _, _, a in hidden))


@renamed(model="net", x="points")
def zone_membership(net, points, *, eps: float = 0.1, width: float | None = None) -> np.ndarray:
    """Which samples lie in which hidden unit's transition zone.

    Parameters
    ----------
    net : Net or torch.nn.Module
        A chain of Linear layers and activations.
    points : array_like of shape (n_samples, *input_shape)
    eps : float
        Zone level for smooth units: ``eps <= s(z) <= 1 - eps`` (see the module docstring).
    width : float, optional
        Zone width in input units: a sample is in the zone when its distance to the unit's hyperplane
        is <= width/2. Required for piecewise-linear (ReLU) units, whose eps-zone has width zero;
        when given it is used for every unit.

    Returns
    -------
    ndarray of bool, shape (n_samples, n_units)
        Columns in the order of :func:`unit_distances`.

    Examples
    --------
    >>> import torch, netatlas
    >>> model = netatlas.nets.mlp([2, 3, 1], "sigmoid", seed=0)
    >>> zone_membership(model, torch.zeros(2, 2)).shape
    (2, 3)
    """
    d = unit_distances(net, points)
    if width is not None:
        if width < 0:
            raise ValueError(f"zone_membership: width must be >= 0, got {width}")
        return np.abs(d.distance) <= width / 2
    net = as_net(net)
    hidden = [a for _, _, a in net.as_mlp() if a is not None and a.name != "identity"]
    columns = []
    for i, act in enumerate(hidden):
        if act.piecewise_linear:
            raise ValueError(f"zone_membership: hidden layer {i} is {act.name}, whose transition zone has "
                             "width zero; pass width=... (in input units) to use distance-based zones")
        z_lo, z_hi = zone_interval(act, eps)
        z = d.z[:, d.layer == i]
        columns.append((z >= z_lo) & (z <= z_hi))
    return np.concatenate(columns, 1) if columns else np.zeros((len(d.z), 0), bool)


@renamed(model="net")
def scale_model(net: torch.nn.Module, c: float, *, layers: str = "all") -> torch.nn.Module:
    """A copy of ``net`` with its parameters (weights and biases) multiplied by ``c``.

    First-layer hyperplanes ``{w.x + b = 0}`` do not move; their transition zones narrow by ``1/c``.
    ``layers="first"`` scales only the first layer's parameters (the zones change, the rest does not);
    ``"all"`` scales every parameter.

    Examples
    --------
    >>> import netatlas
    >>> m = netatlas.nets.mlp([2, 3, 1], seed=0)
    >>> float(scale_model(m, 2.0)[0].weight[0, 0].detach() / m[0].weight[0, 0].detach())
    2.0
    """
    if not c > 0:
        raise ValueError(f"scale_model: c must be positive, got {c}")
    if layers not in ("all", "first"):
        raise ValueError(f"scale_model: layers must be 'all' or 'first', got {layers!r}")
    out = copy.deepcopy(net)
    named = list(out.named_parameters())
    first = named[0][0].rsplit(".", 1)[0] if named else ""
    with torch.no_grad():
        for name, p in named:
            if layers == "all" or name.rsplit(".", 1)[0] == first:
                p.mul_(c)
    return out
