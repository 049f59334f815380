"""The networks of the Shisher, Ornee & Sun (2022) validation: real torch networks trained full-batch on a
population (or sampled) joint, many at once, and the exact population optimum (no expansion).

Everything runs in float64: the excess loss is O(eps^2) and the product error must be resolved well
below eps. Losses are divided by their scale (1/2 ||B~||_F^2 for the log-loss, ||C||_F^2 for MMSE) so that
tolerances mean the same at every eps. The optimiser is the batched saddle-free Newton method of
:func:`netatlas.lowrank.newton_minimize` (NOTE [saddle-free Levenberg-Marquardt]): full batch, no weight
decay, from PyTorch's default initialisation. First-order optimisers reach the same optimum but need
thousands of steps at small eps (the loss's condition number grows like 1/eps). The theory these networks
are compared with (DTM, optima, comparisons) is in :mod:`netatlas.lowrank`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.func import functional_call

from netatlas.lowrank import (
    activation_value,
    check_joint,
    check_k,
    check_y_values,
    dtm,
    newton_minimize,
    optimal_softmax_layer,
    softmax_excess_derivatives,
    softmax_excess_loss_torch,
)

__all__ = ["TrainedLayer", "exact_softmax_optimum", "hidden_network", "hidden_setup", "softmax_network",
           "train_hidden_networks", "train_mmse_networks", "train_softmax_network",
           "train_softmax_network_lbfgs", "train_softmax_networks"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainedLayer:
    """A fitted layer's parameters and its training record.

    Attributes
    ----------
    features : ndarray of shape (|X|, k)
        The layer's input f(x) for every symbol x (hidden: the fixed features below, shape (|X|, m)).
    weights : ndarray of shape (n_out, k)
        Trained weight (hidden: (k, m)).
    bias : ndarray of shape (n_out,)
        Trained bias (hidden: (k,)).
    loss : float
        Final excess loss (un-normalised, over the Bayes risk).
    n_steps : int
        Optimiser (Newton) iterations.
    converged : bool
    seed : int
        Seed of the initialisation (-1: started from the theory's solution).
    """

    features: np.ndarray
    weights: np.ndarray
    bias: np.ndarray
    loss: float
    n_steps: int
    converged: bool
    seed: int

    def to_dict(self) -> dict:
        return {"loss": self.loss, "n_steps": self.n_steps, "converged": self.converged, "seed": self.seed}


def _energy(p):
    e = 0.5 * float(np.sum(dtm(p) ** 2))
    return e if e > 0 else 1.0


def _seeded_init(model, seed):
    generator = torch.Generator().manual_seed(int(seed))
    with torch.no_grad():
        for layer in model:
            if isinstance(layer, nn.Linear):
                bound = 1.0 / np.sqrt(layer.in_features)  # PyTorch's default U(-1/sqrt(fan_in), ...)
                layer.weight.uniform_(-bound, bound, generator=generator)
                if layer.bias is not None:
                    layer.bias.uniform_(-bound, bound, generator=generator)
    return model


def softmax_network(n_x: int, n_out: int, k: int, *, seed: int = 0, output_bias=None) -> nn.Sequential:
    """One-hot X -> Linear(|X|, k, bias=False) (the features) -> Linear(k, n_out), float64, PyTorch's
    default initialisation drawn from a private generator; the output bias starts at ``output_bias``
    (log P_Y for softmax, so the logits are log P_Y + h; E Y for MMSE).

    >>> softmax_network(5, 3, 2)
    Sequential(
      (0): Linear(in_features=5, out_features=2, bias=False)
      (1): Linear(in_features=2, out_features=3, bias=True)
    )
    """
    model = _seeded_init(nn.Sequential(nn.Linear(n_x, k, bias=False), nn.Linear(k, n_out)).double(), seed)
    if output_bias is not None:
        with torch.no_grad():
            model[1].bias.copy_(torch.as_tensor(np.asarray(output_bias, dtype=np.float64)))
    return model


_TORCH_ACTIVATIONS = {"sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "relu": nn.ReLU, "identity": nn.Identity,
                      "softplus": nn.Softplus}


def hidden_network(m: int, k: int, n_y: int, *, activation: str = "sigmoid", seed: int = 0) -> nn.Sequential:
    """f1 (m features) -> Linear(m, k) -> activation -> Linear(k, |Y|), float64; only the first layer is
    trained by :func:`train_hidden_networks` (the last is fixed).

    >>> hidden_network(4, 2, 3, activation="tanh")
    Sequential(
      (0): Linear(in_features=4, out_features=2, bias=True)
      (1): Tanh()
      (2): Linear(in_features=2, out_features=3, bias=True)
    )
    """
    if activation not in _TORCH_ACTIVATIONS:
        raise ValueError(f"hidden_network: activation {activation!r}; choose one of "
                         f"{sorted(_TORCH_ACTIVATIONS)}")
    layers = nn.Sequential(nn.Linear(m, k), _TORCH_ACTIVATIONS[activation](), nn.Linear(k, n_y))
    return _seeded_init(layers.double(), seed)


class _Flat:
    """Flat parameter vectors <-> a module's named parameters (only ``names`` are trained)."""

    def __init__(self, model, names):
        self.model = model
        params = dict(model.named_parameters())
        self.names = list(names)
        self.shapes = [params[n].shape for n in self.names]
        self.sizes = [params[n].numel() for n in self.names]

    def flatten(self, model) -> torch.Tensor:
        params = dict(model.named_parameters())
        return torch.cat([params[n].detach().reshape(-1) for n in self.names])

    def unflatten(self, theta) -> dict:
        out, offset = {}, 0
        for name, shape, size in zip(self.names, self.shapes, self.sizes, strict=True):
            out[name] = theta[offset : offset + size].reshape(shape)
            offset += size
        return out

    def call(self, theta, inputs, fixed=None):
        return functional_call(self.model, {**(fixed or {}), **self.unflatten(theta)}, (inputs,))


def _stack_joints(joints, caller):
    if isinstance(joints, np.ndarray) and joints.ndim == 2:
        joints = [joints]
    ps = [check_joint(p, caller=caller) for p in joints]
    if not ps:
        raise ValueError(f"{caller}: no joint distributions given")
    if len({p.shape for p in ps}) != 1:
        raise ValueError(f"{caller}: all joints must have the same shape, got "
                         f"{sorted({p.shape for p in ps})}")
    return ps


def _seeds(seeds, n, caller):
    seeds = list(range(n)) if seeds is None else [int(s) for s in seeds]
    if len(seeds) != n:
        raise ValueError(f"{caller}: {len(seeds)} seeds for {n} joints; pass one seed per joint")
    return seeds


def _split(theta, n_x, n_out, k):
    """theta (B, P) in the order of softmax_network's parameters -> F (B, |X|, k), W (B, n_out, k), c."""
    features = theta[:, : k * n_x].reshape(-1, k, n_x).transpose(1, 2)
    weights = theta[:, k * n_x : k * n_x + n_out * k].reshape(-1, n_out, k)
    return features, weights, theta[:, k * n_x + n_out * k :]


def factorized_derivatives(theta, n_x: int, n_out: int, k: int, cell_gradient, cell_hessian):
    """Gradient (B, P) and Hessian (B, P, P) of L(h) with h = F W^T + c (the outputs of
    :func:`softmax_network`) in its parameters (first-layer weight F^T, W, c), from the gradient
    G (B, |X|, n_out) and the per-x Hessian blocks H_x (B, |X|, n_out, n_out) of L in h.

    Notes
    -----
    dh(x, y) = dF_x . W_y + F_x . dW_y + dc_y, and d^2 h / dF[x, i] dW[y, j] = delta_ij, so
    Hess = J^T blockdiag(H_x) J + (the G-weighted cross term between F[x, i] and W[y, i]).
    Checked against ``torch.func.hessian`` in the tests.
    """
    f, w, _ = _split(theta, n_x, n_out, k)
    g, hx = cell_gradient, cell_hessian
    batch = theta.shape[0]
    eye_x = torch.eye(n_x, dtype=theta.dtype)
    eye_k = torch.eye(k, dtype=theta.dtype)
    grad_f = (g @ w).transpose(1, 2)  # (B, k, |X|), the layout of Linear(|X|, k).weight
    grad_w = g.transpose(1, 2) @ f
    gradient = torch.cat([grad_f.reshape(batch, -1), grad_w.reshape(batch, -1), g.sum(1)], dim=1)
    wh = torch.einsum("byi,bxyz->bxiz", w, hx)  # (B, |X|, k, n_out): W^T H_x
    ff = torch.einsum("bxiz,bzj,xu->bixju", wh, w, eye_x)
    fw = torch.einsum("bxiz,bxj->bixzj", wh, f) + torch.einsum("bxz,ij->bixzj", g, eye_k)
    fc = wh.transpose(1, 2)  # (B, k, |X|, n_out)
    ww = torch.einsum("bxi,bxyz,bxj->byizj", f, hx, f)
    wc = torch.einsum("bxi,bxyz->byiz", f, hx)
    cc = hx.sum(1)
    n_f, n_w = k * n_x, n_out * k
    fw, fc = fw.reshape(batch, n_f, n_w), fc.reshape(batch, n_f, n_out)
    wc = wc.reshape(batch, n_w, n_out)
    top = torch.cat([ff.reshape(batch, n_f, n_f), fw, fc], 2)
    mid = torch.cat([fw.transpose(1, 2), ww.reshape(batch, n_w, n_w), wc], 2)
    bottom = torch.cat([fc.transpose(1, 2), wc.transpose(1, 2), cc], 2)
    return gradient, torch.cat([top, mid, bottom], 1)


def _outputs(theta, n_x, n_out, k):
    f, w, c = _split(theta, n_x, n_out, k)
    return f @ w.transpose(1, 2) + c[:, None, :]


def _load(model, theta):
    torch.nn.utils.vector_to_parameters(theta.detach().clone(), model.parameters())
    return model


def train_softmax_networks(joints, k: int, *, seeds=None, init: str = "random", max_iter: int = 200
                           ) -> list[TrainedLayer]:
    """Train one real torch network one-hot X -> k features -> Linear(k, |Y|) per joint, on its
    population soft-label log-loss -sum P_XY log Q (full batch, no weight decay, float64).

    The loss is evaluated as the excess loss (cross-entropy minus H(Y|X): same gradient, no
    cancellation) with logits written as log P_Y + h and the log1p/expm1 form of
    ``softmax_excess_loss_torch``. Pass sampled (empirical) joints to train on data.

    Parameters
    ----------
    joints : sequence of arrays of shape (|X|, |Y|), all the same shape
    k : int
    seeds : sequence of int, optional
        One initialisation seed per joint (default 0, 1, ...).
    init : {"random", "theory"}
        "random": PyTorch's default init (output bias log P_Y). "theory": start at the DTM optimum,
        which makes this the exact population optimum (:func:`exact_softmax_optimum`).
    max_iter : int
        Newton iterations at most.

    Returns
    -------
    list of TrainedLayer
        features = the first layer's outputs on the one-hot inputs (|X|, k), weights (|Y|, k), bias.

    Examples
    --------
    >>> from netatlas.lowrank import local_joint, compare_softmax_layer
    >>> j = local_joint(8, 5, k=2, eps_fraction=0.01, seed=0)
    >>> fit, = train_softmax_networks([j.p_xy], 2, seeds=[0])
    >>> c = compare_softmax_layer(j.p_xy, fit.features, fit.weights, fit.bias)
    >>> fit.converged, bool(c.product_error < 0.01)
    (True, True)
    """
    ps = _stack_joints(joints, "train_softmax_networks")
    n_x, n_y = ps[0].shape
    k = check_k(k, min(n_x, n_y) - 1, caller="train_softmax_networks")
    if init not in ("random", "theory"):
        raise ValueError(f"train_softmax_networks: init = {init!r}; choose 'random' or 'theory'")
    seeds = _seeds(seeds, len(ps), "train_softmax_networks")
    thetas = []
    for p, seed in zip(ps, seeds, strict=True):
        model = softmax_network(n_x, n_y, k, seed=seed, output_bias=np.log(p.sum(0)))
        if init == "theory":
            opt = optimal_softmax_layer(p, k)
            with torch.no_grad():
                model[0].weight.copy_(torch.from_numpy(opt.features.T.copy()))
                model[1].weight.copy_(torch.from_numpy(opt.weights))
        thetas.append(torch.nn.utils.parameters_to_vector(model.parameters()).detach())
    p_t = torch.from_numpy(np.stack(ps))
    log_py = torch.log(p_t.sum(1, keepdim=True))
    energy = torch.tensor([_energy(p) for p in ps], dtype=torch.float64)

    def loss(theta, p, log_prior, e):
        return softmax_excess_loss_torch(_outputs(theta, n_x, n_y, k) - log_prior, p) / e

    def derivatives(theta, p, log_prior, e):
        g, hx = softmax_excess_derivatives(_outputs(theta, n_x, n_y, k) - log_prior, p)
        return factorized_derivatives(theta, n_x, n_y, k, g / e[:, None, None], hx / e[:, None, None, None])

    theta, losses, n_iter, ok = newton_minimize(loss, torch.stack(thetas), (p_t, log_py, energy),
                                                derivatives=derivatives, max_iter=max_iter)
    return [_trained(softmax_network(n_x, n_y, k), theta[b], float(losses[b] * energy[b]), int(n_iter[b]),
                     bool(ok[b]), seed if init == "random" else -1) for b, seed in enumerate(seeds)]


def _trained(model, theta, loss, n_iter, converged, seed):
    """Load the optimised parameters into the torch network and read the layer off it."""
    model = _load(model, theta)
    with torch.no_grad():
        features = model[0](torch.eye(model[0].in_features, dtype=torch.float64)).numpy().copy()
        return TrainedLayer(features, model[1].weight.numpy().copy(), model[1].bias.numpy().copy(), loss,
                            n_iter, converged, seed)


def train_softmax_network(p_xy, k: int, *, seed: int = 0, max_iter: int = 200) -> TrainedLayer:
    """One network of :func:`train_softmax_networks` (random init with ``seed``).

    >>> from netatlas.lowrank import local_joint
    >>> train_softmax_network(local_joint(6, 4, k=1, eps_fraction=0.1).p_xy, 1).weights.shape
    (4, 1)
    """
    return train_softmax_networks([p_xy], k, seeds=[seed], max_iter=max_iter)[0]


def exact_softmax_optimum(p_xy, k: int, *, max_iter: int = 200) -> TrainedLayer:
    """The exact population optimum of a rank-k softmax layer, min over f, W, b of
    E_X D(P_{Y|X} || softmax(W f(X) + b)): Newton's method started at the DTM theory's solution.

    In the local regime this is the global optimum (the theory's solution lies in its basin);
    outside it, a local one.

    >>> from netatlas.lowrank import local_joint, optimal_softmax_layer
    >>> j = local_joint(8, 5, k=2, eps_fraction=0.01, seed=0)
    >>> fit = exact_softmax_optimum(j.p_xy, 2)
    >>> bool(abs(fit.loss / optimal_softmax_layer(j.p_xy, 2).excess_loss - 1) < 0.05)
    True
    """
    return train_softmax_networks([p_xy], k, seeds=[0], init="theory", max_iter=max_iter)[0]


def train_mmse_networks(joints, k: int, *, y_values=None, seeds=None, max_iter: int = 200
                        ) -> list[TrainedLayer]:
    """Train one-hot X -> k features -> Linear(k, d) per joint on the population squared loss; the
    objective is its excess over the Bayes MSE, sum_x P_X(x) ||E[Y|X=x] - a(x)||^2 (full batch, float64).

    Examples
    --------
    >>> from netatlas.lowrank import local_joint, compare_mmse_layer
    >>> j = local_joint(8, 5, k=2, eps_fraction=0.5, seed=0)
    >>> fit, = train_mmse_networks([j.p_xy], 2)
    >>> bool(compare_mmse_layer(j.p_xy, fit.features, fit.weights, fit.bias).product_error < 1e-6)
    True
    """
    ps = _stack_joints(joints, "train_mmse_networks")
    n_x, n_y = ps[0].shape
    values = check_y_values(y_values, n_y, "train_mmse_networks")
    d = values.shape[1]
    k = check_k(k, min(n_x - 1, d), caller="train_mmse_networks")
    seeds = _seeds(seeds, len(ps), "train_mmse_networks")
    thetas, means, p_xs, energies = [], [], [], []
    for p, seed in zip(ps, seeds, strict=True):
        p_x = p.sum(1)
        mean = (p / p_x[:, None]) @ values
        model = softmax_network(n_x, d, k, seed=seed, output_bias=p.sum(0) @ values)
        thetas.append(torch.nn.utils.parameters_to_vector(model.parameters()).detach())
        means.append(mean)
        p_xs.append(p_x)
        energies.append(float(p_x @ np.sum((mean - p_x @ mean) ** 2, axis=1)) or 1.0)
    energy = torch.tensor(energies, dtype=torch.float64)
    data = (torch.from_numpy(np.stack(means)), torch.from_numpy(np.stack(p_xs)), energy)

    def loss(theta, mean, p_x, e):
        return (p_x * ((_outputs(theta, n_x, d, k) - mean) ** 2).sum(-1)).sum(-1) / e

    def derivatives(theta, mean, p_x, e):
        scale = (2 * p_x / e[:, None])[..., None]  # (B, |X|, 1)
        g = scale * (_outputs(theta, n_x, d, k) - mean)
        hx = scale[..., None] * torch.eye(d, dtype=theta.dtype)
        return factorized_derivatives(theta, n_x, d, k, g, hx)

    theta, losses, n_iter, ok = newton_minimize(loss, torch.stack(thetas), data, derivatives=derivatives,
                                                max_iter=max_iter)
    return [_trained(softmax_network(n_x, d, k), theta[b], float(losses[b] * energy[b]), int(n_iter[b]),
                     bool(ok[b]), seed) for b, seed in enumerate(seeds)]


def hidden_setup(n_x: int, n_y: int, *, m: int = 8, k: int = 3, activation: str = "sigmoid",
                 center: float = 0.0, p_y=None, seed: int = 0):
    """Fixed random pieces for the hidden-layer experiment: features below f1 (|X|, m) ~ N(0, 1),
    upper weights V (|Y|, k) ~ N(0, 1), and the upper bias d = log P_Y - V phi(c0) that makes the
    pre-activation centre c0 the Bayes action's.

    Returns
    -------
    (features_below, upper_weights, upper_bias) : ndarrays of shapes (|X|, m), (|Y|, k), (|Y|,)

    Examples
    --------
    >>> f1, v, d = hidden_setup(6, 4, m=3, k=2, p_y=np.full(4, 0.25))
    >>> f1.shape, v.shape, d.shape
    ((6, 3), (4, 2), (4,))
    >>> bool(np.allclose(d + v @ np.full(2, 0.5), np.log(0.25)))  # sigmoid(0) = 1/2: the Bayes action at c0 = 0
    True
    """
    rng = np.random.default_rng(int(seed) + 10_000)
    f1 = rng.normal(size=(n_x, m))
    v = rng.normal(size=(n_y, k))
    c0 = np.full(k, float(center))
    d = (np.log(p_y) if p_y is not None else np.zeros(n_y)) - v @ activation_value(activation, c0)
    return f1, v, d


def train_hidden_networks(joints, features_below, upper_weights, upper_biases, *, activation: str = "sigmoid",
                          seeds=None, init_scale: float = 0.1, max_iter: int = 200, autodiff: bool = False
                          ) -> list[TrainedLayer]:
    """Train the hidden layer u = W f1 + c, s = phi(u) of f1 -> Linear(m, k) -> phi -> Linear(k, |Y|)
    below the fixed top layer (weights V, bias d) on each joint's population log-loss; only W and c
    are trained (full batch, float64).

    Parameters
    ----------
    joints : sequence of arrays of shape (|X|, |Y|)
    features_below : sequence of arrays of shape (|X|, m)
        f1 per joint (fixed).
    upper_weights, upper_biases : sequences of arrays of shapes (|Y|, k), (|Y|,)
        The fixed top layer per joint.
    activation : {"sigmoid", "tanh", "relu", "identity", "softplus"}
    seeds : sequence of int, optional
    init_scale : float
        W starts at init_scale times PyTorch's default init; c starts at 0.
    autodiff : bool
        Take Newton's derivatives from ``torch.func`` on the torch network instead of the closed form
        (:func:`hidden_derivatives`; same values, slower).

    Returns
    -------
    list of TrainedLayer
        features = f1 (|X|, m), weights W (k, m), bias c (k,).
    """
    ps = _stack_joints(joints, "train_hidden_networks")
    n = len(ps)
    seeds = _seeds(seeds, n, "train_hidden_networks")
    f1s = [np.asarray(f, dtype=np.float64) for f in features_below]
    vs = [np.asarray(v, dtype=np.float64) for v in upper_weights]
    ds = [np.asarray(d, dtype=np.float64) for d in upper_biases]
    if not len(f1s) == len(vs) == len(ds) == n:
        raise ValueError(f"train_hidden_networks: need one features_below, upper_weights and upper_bias per "
                         f"joint ({n}), got {len(f1s)}, {len(vs)}, {len(ds)}")
    m, k, n_y = f1s[0].shape[1], vs[0].shape[1], ps[0].shape[1]
    template = hidden_network(m, k, n_y, activation=activation)
    flat = _Flat(template, ["0.weight", "0.bias"])
    thetas = []
    for seed in seeds:
        model = hidden_network(m, k, n_y, activation=activation, seed=seed)
        with torch.no_grad():
            model[0].weight.mul_(init_scale)
            model[0].bias.zero_()
        thetas.append(flat.flatten(model))

    def loss_single(theta, p, e, f1, v, d):  # the torch network itself, for torch.func
        logits = flat.call(theta, f1, {"2.weight": v, "2.bias": d})
        return softmax_excess_loss_torch(logits - torch.log(p.sum(0)), p) / e

    def loss(theta, p, e, f1, v, d):
        u = f1 @ theta[:, : k * m].reshape(-1, k, m).transpose(1, 2) + theta[:, None, k * m :]
        h = _ACTIVATION_DERIVATIVES[activation](u)[0] @ v.transpose(1, 2) + d[:, None, :]
        return softmax_excess_loss_torch(h - torch.log(p.sum(1, keepdim=True)), p) / e

    def derivatives(theta, p, e, f1, v, d):
        return hidden_derivatives(theta, p, f1, v, d, activation, e)

    data = (torch.from_numpy(np.stack(ps)), torch.tensor([_energy(p) for p in ps], dtype=torch.float64),
            torch.from_numpy(np.stack(f1s)), torch.from_numpy(np.stack(vs)), torch.from_numpy(np.stack(ds)))
    if autodiff:
        theta, losses, n_iter, ok = newton_minimize(loss_single, torch.stack(thetas), data, max_iter=max_iter)
    else:
        theta, losses, n_iter, ok = newton_minimize(loss, torch.stack(thetas), data, derivatives=derivatives,
                                                    max_iter=max_iter)
    out = []
    for b, seed in enumerate(seeds):
        params = flat.unflatten(theta[b])
        out.append(TrainedLayer(f1s[b], params["0.weight"].numpy().copy(), params["0.bias"].numpy().copy(),
                                float(losses[b] * data[1][b]), int(n_iter[b]), bool(ok[b]), seed))
    return out


_ACTIVATION_DERIVATIVES = {
    # name -> u -> (phi(u), phi'(u), phi''(u))
    "sigmoid": lambda u: (lambda s: (s, s * (1 - s), s * (1 - s) * (1 - 2 * s)))(torch.sigmoid(u)),
    "tanh": lambda u: (lambda t: (t, 1 - t * t, -2 * t * (1 - t * t)))(torch.tanh(u)),
    "relu": lambda u: (torch.relu(u), (u > 0).to(u.dtype), torch.zeros_like(u)),
    "identity": lambda u: (u, torch.ones_like(u), torch.zeros_like(u)),
    "softplus": lambda u: (lambda s: (torch.nn.functional.softplus(u), s, s * (1 - s)))(torch.sigmoid(u)),
}


def hidden_derivatives(theta, p_xy, features_below, upper_weights, upper_bias, activation, energy):
    """Gradient (B, P) and Hessian (B, P, P) of the normalised excess log-loss of
    f1 -> Linear(m, k) -> phi -> fixed Linear(k, |Y|) in the first layer's parameters (weight, bias).

    Notes
    -----
    With u = W f1 + c, h = V phi(u) + d and f~ = (f1, 1):
    dh(x, y)/d(W, c)[i, j] = V[y, i] phi'(u[x, i]) f~[x, j], and the second derivative is diagonal in
    the unit: V[y, i] phi''(u[x, i]) f~[x, j] f~[x, j'].
    Hess = J^T blockdiag(H_x) J + sum_{x, y} G[x, y] d^2 h(x, y). Checked against torch.func in the tests.
    """
    batch = theta.shape[0]
    m = features_below.shape[2]
    k = upper_weights.shape[2]
    u = features_below @ theta[:, : k * m].reshape(-1, k, m).transpose(1, 2) + theta[:, None, k * m :]
    act, d1, d2 = _ACTIVATION_DERIVATIVES[activation](u)
    h = act @ upper_weights.transpose(1, 2) + upper_bias[:, None, :]
    g, hx = softmax_excess_derivatives(h - torch.log(p_xy.sum(1, keepdim=True)), p_xy)
    g = g / energy[:, None, None]
    hx = hx / energy[:, None, None, None]
    ones = torch.ones(*features_below.shape[:2], 1, dtype=theta.dtype)
    aug = torch.cat([features_below, ones], dim=2)  # (B, |X|, m + 1)
    a = d1[..., None] * aug[:, :, None, :]  # (B, |X|, k, m + 1): dh/dtheta = V[y, i] a[x, i, j]
    gv = g @ upper_weights  # (B, |X|, k): sum_y G[x, y] V[y, i]
    grad_unit = torch.einsum("bxi,bxij->bij", gv, a)  # (B, k, m + 1)
    vhv = upper_weights.transpose(1, 2)[:, None] @ hx @ upper_weights[:, None]  # (B, |X|, k, k)
    first = torch.einsum("bxij,bxil,bxlq->bijlq", a, vhv, a)
    eye_k = torch.eye(k, dtype=theta.dtype)
    second = torch.einsum("bxi,bxj,bxq,il->bijlq", gv * d2, aug, aug, eye_k)
    n = k * (m + 1)
    hess = (first + second).reshape(batch, n, n)
    # reorder (unit, [weights..., bias]) -> the Linear's layout (weight (k, m) row-major, then bias (k,))
    order = torch.tensor([i * (m + 1) + j for i in range(k) for j in range(m)]
                         + [i * (m + 1) + m for i in range(k)])
    gradient = grad_unit.reshape(batch, n)[:, order]
    return gradient, hess[:, order][:, :, order]


def train_softmax_network_lbfgs(p_xy, k: int, *, seed: int = 0, max_steps: int = 1500) -> TrainedLayer:
    """The softmax network of :func:`train_softmax_networks` trained instead with the standard
    ``torch.optim.LBFGS`` (strong-Wolfe line search, full batch, no weight decay) on the same
    energy-normalised excess loss: a first-order cross-check of the Newton-trained networks.

    ``converged`` reports whether the largest gradient entry fell below 1e-8 within ``max_steps``.

    >>> from netatlas.lowrank import local_joint
    >>> fit = train_softmax_network_lbfgs(local_joint(6, 4, k=1, eps_fraction=0.3).p_xy, 1, max_steps=300)
    >>> fit.weights.shape
    (4, 1)
    """
    from netatlas._threads import torch_threads

    p = check_joint(p_xy, caller="train_softmax_network_lbfgs")
    n_x, n_y = p.shape
    k = check_k(k, min(n_x, n_y) - 1, caller="train_softmax_network_lbfgs")
    log_py = torch.log(torch.from_numpy(p.sum(0)))
    model = softmax_network(n_x, n_y, k, seed=seed, output_bias=log_py.numpy())
    p_t = torch.from_numpy(p)
    eye = torch.eye(n_x, dtype=torch.float64)
    energy = _energy(p)
    params = list(model.parameters())
    optimizer = torch.optim.LBFGS(params, lr=1.0, max_iter=int(max_steps), max_eval=int(max_steps) * 2,
                                  tolerance_grad=1e-9, tolerance_change=1e-300, history_size=50,
                                  line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = softmax_excess_loss_torch(model(eye) - log_py, p_t) / energy
        loss.backward()
        return loss

    with torch_threads(1):
        optimizer.step(closure)
        closure()
    n_iter = int(optimizer.state[params[0]].get("n_iter", 0))
    grad_max = max(float(q.grad.abs().max()) for q in params)
    with torch.no_grad():
        loss = float(softmax_excess_loss_torch(model(eye) - log_py, p_t))
    return _trained(model, torch.nn.utils.parameters_to_vector(params).detach(), loss, n_iter,
                    grad_max <= 1e-8, seed)
