"""Per-sample gradients: how much each training sample pushes each layer.

The batch gradient is the sum of per-sample gradients ``g_i = grad_theta l(f(x_i; theta), y_i)``;
van den Berg (2016) argues that only samples in transition zones contribute. Here ``g_i`` is
computed for every sample at once with ``torch.func`` (``vmap(grad(...))`` over
``functional_call``), never by a loop over samples, and summarised by its norm (total and per
layer) and by how concentrated the norms are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import nn

from netatlas._deprecate import renamed
from netatlas.train import LOSSES, per_sample_loss

__all__ = [
    "GradientNorms",
    "gradient_concentration",
    "per_sample_gradient_norms",
]

@dataclass(frozen=True)
class GradientNorms:
    """Per-sample gradient norms.

    Attributes
    ----------
    total : ndarray of shape (n_samples,)
        ``||grad_theta l(x_i, y_i)||_2`` over all trainable parameters.
    per_layer : ndarray of shape (n_samples, n_layers)
        The same norm restricted to the parameters of each layer (``total**2`` is the row sum of
        ``per_layer**2``).
    layer_names : tuple of str
        The module names the columns belong to (e.g. ``"0"``, ``"2"`` for an ``nn.Sequential``).
    loss : str
        The loss the gradients are of.
    """

    total: np.ndarray
    per_layer: np.ndarray
    layer_names: tuple[str, ...]
    loss: str

    def to_dict(self) -> dict:
        return {"total": self.total, "per_layer": self.per_layer, "layer_names": list(self.layer_names),
                "loss": self.loss, "concentration_90": gradient_concentration(self.total, 0.9)}


def _check_loss(loss, where):
    if not callable(loss) and loss not in LOSSES:
        raise ValueError(f"{where}: unknown loss {loss!r}; choose one of {LOSSES} or pass a callable "
                         "loss(logits (B, n_out), targets (B,)) -> (B,) per-sample losses")


def _layer_of(name: str) -> str:
    return name.rsplit(".", 1)[0] if "." in name else name


@renamed(model="net", x="points")
def per_sample_gradient_norms(
    net: nn.Module,
    points,
    y,
    *,
    loss: Literal["cross_entropy", "bce", "mse"] = "cross_entropy",
    chunk_size: int | None = 1024,
    method: Literal["auto", "vmap", "closed_form"] = "auto",
    head: Literal["auto", "softmax", "log_softmax"] | None = "auto",
) -> GradientNorms:
    """Norms of every sample's loss gradient with respect to the parameters, total and per layer.

    Parameters
    ----------
    net : torch.nn.Module
        Maps (B, *input_shape) -> (B, n_out) logits. Not modified; evaluated in its own dtype
        through ``torch.func.functional_call`` with its current (detached) parameters.
    points : Tensor of shape (n_samples, *input_shape)
    y : Tensor of shape (n_samples,)
        Integer labels (0/1 for a single-logit net).
    loss : {"cross_entropy", "bce", "mse"} or callable
        See :func:`netatlas.train.per_sample_loss` (the loss registry :func:`netatlas.train.fit` uses).
    chunk_size : int or None
        Samples per vectorised chunk (bounds memory: one gradient copy per sample in a chunk).
    method : {"auto", "vmap", "closed_form"}
        ``closed_form`` (for an ``nn.Sequential`` of Linear layers and elementwise activations whose
        parameters all train) uses one batched backward pass; ``vmap`` works for any model; ``auto``
        picks the closed form where it applies.
    head : {"auto", "softmax", "log_softmax"} or None
        What the model's output is: ``None`` logits; ``"softmax"`` / ``"log_softmax"`` a classifier head's
        probabilities / log-probabilities, whose cross-entropy is ``-log p_y`` (not the cross-entropy of
        the probabilities read as logits). ``"auto"``: an ``nn.Sequential`` ending in ``nn.Softmax`` or
        ``nn.LogSoftmax`` over the classes has that head, any other model outputs logits. With
        ``loss="cross_entropy"`` and a head that is a Sequential's last module, the gradients are taken
        through the logits before it (``-log softmax(z)_y = cross_entropy(z, y)``, free of ``log 0``).

    Returns
    -------
    GradientNorms
        ``total`` (n_samples,), ``per_layer`` (n_samples, n_layers); a layer is the module owning
        the parameters (its name without the trailing ``.weight``/``.bias``).

    Notes
    -----
    ``g_i = grad_theta l(f(x_i; theta), y_i)`` is computed as ``vmap(grad(l_i))`` over
    ``functional_call(model, params, x_i[None])``; buffers are passed unchanged. Models whose
    forward mixes samples (BatchNorm in train mode) have no per-sample gradient: put them in eval mode.

    Closed form for a Linear layer ``z = W a + b``: sample i's gradient is ``dW_i = delta_i a_i^T``,
    ``db_i = delta_i`` with ``delta_i = dl_i/dz_i``, so ``||dW_i||^2 + ||db_i||^2 = ||delta_i||^2
    (||a_i||^2 + 1)``; all ``delta_i`` come from one backward pass of ``sum_i l_i`` (the losses are
    independent across samples).

    Examples
    --------
    >>> import torch, netatlas
    >>> model = netatlas.nets.mlp([2, 8, 3], seed=0)
    >>> x, y = torch.randn(5, 2, generator=torch.Generator().manual_seed(0)), torch.tensor([0, 1, 2, 0, 1])
    >>> g = per_sample_gradient_norms(model, x, y)
    >>> g.total.shape, g.per_layer.shape, g.layer_names
    ((5,), (5, 2), ('0', '2'))
    >>> bool(abs((g.per_layer ** 2).sum(1) - g.total ** 2).max() < 1e-5)
    True
    """
    if not isinstance(net, nn.Module):
        raise TypeError(f"per_sample_gradient_norms: model must be a torch.nn.Module, got {type(net).__name__}")
    _check_loss(loss, "per_sample_gradient_norms")
    params = {k: v.detach() for k, v in net.named_parameters() if v.requires_grad}
    if not params:
        raise ValueError("per_sample_gradient_norms: the model has no trainable parameters")
    buffers = {k: v.detach() for k, v in net.named_buffers()}
    dtype = next(iter(params.values())).dtype
    points = torch.as_tensor(points).to(dtype)
    y = torch.as_tensor(y)
    if points.shape[0] != y.shape[0]:
        raise ValueError(f"per_sample_gradient_norms: x has {points.shape[0]} samples but y has {y.shape[0]}")
    if method not in ("auto", "vmap", "closed_form"):
        raise ValueError(f"per_sample_gradient_norms: method must be 'auto', 'vmap' or 'closed_form'; got {method!r}")
    if head not in ("auto", "softmax", "log_softmax", None):
        raise ValueError(f"per_sample_gradient_norms: head must be 'auto', 'softmax', 'log_softmax' or None; "
                         f"got {head!r}")
    loss_name = loss if isinstance(loss, str) else "callable"
    trailing = _trailing_head(net)
    head = trailing if head == "auto" else head
    if head is not None and loss == "cross_entropy":
        if trailing == head:  # differentiate through the logits before the head: exact, no log 0
            net = net[:-1]
        else:  # the model's output is the head's: cross-entropy is the negative log-likelihood of it
            loss = _head_cross_entropy(head)
    closed_form_applies = _is_plain_mlp(net)
    if method == "closed_form" and not closed_form_applies:
        raise ValueError("per_sample_gradient_norms: method='closed_form' needs an nn.Sequential of Linear layers "
                         "and elementwise activations with every parameter trainable; use method='vmap'")
    if method != "vmap" and closed_form_applies and points.shape[0] > 0:
        names, squared = _closed_form_squared_norms(net, points, y, loss)
        return GradientNorms(squared.sum(1).sqrt().double().numpy(), squared.sqrt().double().numpy(),
                             tuple(names), loss_name)

    def sample_loss(p, xi, yi):
        logits = torch.func.functional_call(net, (p, buffers), (xi[None],))
        return per_sample_loss(logits.reshape(1, -1), yi[None], loss)[0]

    grads = torch.func.vmap(torch.func.grad(sample_loss), in_dims=(None, 0, 0), chunk_size=chunk_size)
    names = list(dict.fromkeys(_layer_of(k) for k in params))
    if points.shape[0] == 0:
        return GradientNorms(np.zeros(0), np.zeros((0, len(names))), tuple(names), loss_name)
    g = grads(params, points, y)
    squared = torch.zeros(points.shape[0], len(names), dtype=dtype)
    for k, v in g.items():
        squared[:, names.index(_layer_of(k))] += v.reshape(v.shape[0], -1).pow(2).sum(1)
    per_layer = squared.sqrt().double().numpy()
    total = squared.sum(1).sqrt().double().numpy()
    return GradientNorms(total, per_layer, tuple(names), loss_name)


def _trailing_head(model) -> str | None:
    """"softmax" / "log_softmax" when ``model`` is an nn.Sequential ending in that module over the
    classes (dim 1 or -1), else None."""
    if not isinstance(model, nn.Sequential) or len(model) < 2:
        return None
    last = model[-1]
    if isinstance(last, (nn.Softmax, nn.LogSoftmax)) and last.dim in (1, -1):
        return "softmax" if isinstance(last, nn.Softmax) else "log_softmax"
    return None


def _head_cross_entropy(head: str):
    """Per-sample ``-log p_y`` of a head's output (probabilities or log-probabilities), as a loss callable."""

    def loss(output, y):
        logp = output.log() if head == "softmax" else output
        return -logp.gather(1, y.long().reshape(-1, 1))[:, 0]

    return loss


_ELEMENTWISE = (nn.ReLU, nn.LeakyReLU, nn.Sigmoid, nn.Tanh, nn.GELU, nn.Softplus, nn.ELU, nn.Identity)


def _is_plain_mlp(model) -> bool:
    return (isinstance(model, nn.Sequential) and len(model) > 0
            and all(isinstance(m, (nn.Linear, *_ELEMENTWISE)) for m in model)
            and all(p.requires_grad for p in model.parameters()))


def _closed_form_squared_norms(model, x, y, loss):
    """Per-sample squared gradient norms of each Linear layer, (B, n_linear), from one backward pass."""
    inputs, outputs, names = [], [], []
    with torch.enable_grad():
        h = x
        for name, module in model.named_children():
            if isinstance(module, nn.Linear):
                inputs.append(h.detach())
                h = module(h)
                outputs.append(h)
                names.append(name)
            else:
                h = module(h)
        total = per_sample_loss(h.reshape(h.shape[0], -1), y, loss).sum()
        deltas = torch.autograd.grad(total, outputs)
    squared = torch.stack([
        delta.pow(2).sum(1) * (a.pow(2).sum(1) + (1.0 if model[int(name)].bias is not None else 0.0))
        for name, a, delta in zip(names, inputs, deltas, strict=True)
    ], 1)
    return names, squared.detach()


def gradient_concentration(norms, mass: float = 0.9) -> float:
    """The smallest fraction of samples whose gradient norms add up to ``mass`` of the total.

    Parameters
    ----------
    norms : array_like of shape (n_samples,)
        Non-negative per-sample gradient norms (e.g. ``GradientNorms.total``).
    mass : float in (0, 1]

    Returns
    -------
    float
        ``k / n_samples`` for the smallest k with (sum of the k largest norms) >= mass x (sum of all).
        1.0 means the gradient is spread evenly; 1/n_samples means one sample carries it all.
        NaN if every norm is zero (no gradient at all).

    Notes
    -----
    Norms, not squared norms, are added: ``sum_i ||g_i||`` bounds ``||sum_i g_i||`` and is the
    "gradient mass" each sample brings, whatever the directions.

    Examples
    --------
    >>> gradient_concentration([1, 1, 1, 1])
    1.0
    >>> gradient_concentration([100, 1, 1, 1, 0.0])
    0.2
    """
    norms = np.asarray(norms, dtype=np.float64).ravel()
    if not 0 < mass <= 1:
        raise ValueError(f"gradient_concentration: mass must be in (0, 1], got {mass}")
    if norms.size and (np.any(norms < 0) or not np.all(np.isfinite(norms))):
        raise ValueError("gradient_concentration: norms must be finite and non-negative")
    total = norms.sum()
    if norms.size == 0 or total == 0:
        return float("nan")
    cumulative = np.cumsum(np.sort(norms)[::-1])
    # a relative slack keeps exact ties (mass 0.9 of 10 equal norms) from failing on rounding
    k = int(np.searchsorted(cumulative, mass * total * (1 - 1e-12))) + 1
    return min(k, norms.size) / norms.size
