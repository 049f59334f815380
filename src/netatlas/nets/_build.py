"""Builders of plain torch MLPs with the initialisations the papers analyse."""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import nn

from netatlas._memory import check_memory

__all__ = ["mlp", "ACTIVATIONS", "INITS"]

ACTIVATIONS = {
    "relu": nn.ReLU,
    "leaky_relu": lambda: nn.LeakyReLU(0.1),
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "gelu": nn.GELU,
    "softplus": nn.Softplus,
    "elu": nn.ELU,
}
INITS = ("torch", "he", "glorot", "normal")


def mlp(
    widths,
    activation: str = "relu",
    *,
    init: Literal["torch", "he", "glorot", "normal"] = "torch",
    scale: float = 1.0,
    bias: bool | float = True,
    seed: int = 0,
    output_activation: str | None = None,
) -> nn.Sequential:
    """A fully connected network ``widths[0] -> ... -> widths[-1]`` with the last layer affine.

    Parameters
    ----------
    widths : sequence of int
        Layer sizes including input and output, e.g. ``[2, 32, 32, 1]``.
    activation : str
        One of ``ACTIVATIONS``: relu, leaky_relu (slope 0.1), sigmoid, tanh, gelu, softplus, elu.
    init : {"torch", "he", "glorot", "normal"}
        ``torch``: PyTorch's default, W and b ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
        ``he``: W ~ N(0, 2/fan_in), b = 0. ``glorot``: W ~ U(-a, a), a = sqrt(6/(fan_in+fan_out)),
        b = 0. ``normal``: W ~ N(0, 1/fan_in), b ~ N(0, 1).
        ``bias=False`` removes biases; a float ``bias`` sets b ~ N(0, bias^2) for any init.
    scale : float
        Multiplies every weight and bias after initialisation (the "init scale").
    seed : int
        Seeds a private generator; the global torch RNG is untouched.

    Returns
    -------
    torch.nn.Sequential
        Float32 module: Linear, activation, ..., Linear (+ output_activation if given).

    Examples
    --------
    >>> import netatlas
    >>> model = netatlas.nets.mlp([2, 16, 1], "tanh", init="glorot", seed=0)
    >>> [type(m).__name__ for m in model]
    ['Linear', 'Tanh', 'Linear']
    >>> float(model[0].bias.detach().abs().sum())
    0.0
    """
    widths = [int(w) for w in widths]
    if len(widths) < 2 or min(widths) < 1:
        raise ValueError(f"mlp: widths must list at least an input and an output size, all >= 1; got {widths}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"mlp: unknown activation {activation!r}; choose one of {sorted(ACTIVATIONS)}")
    if init not in INITS:
        raise ValueError(f"mlp: unknown init {init!r}; choose one of {INITS}")
    n_parameters = sum(a * b + b for a, b in zip(widths[:-1], widths[1:], strict=True))
    check_memory(4 * n_parameters, f"mlp({widths}): {n_parameters:,} float32 parameters")  # before allocating
    generator = torch.Generator().manual_seed(seed)
    layers = []
    for i, (fan_in, fan_out) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
        # built on the meta device: nn.Linear's own init would draw from (and advance) the global torch RNG;
        # fresh parameters rather than torch.nn.utils.skip_init, whose to_empty loads sympy (~1 s at start-up)
        linear = nn.Linear(fan_in, fan_out, bias=bias is not False, device="meta")
        linear.weight = nn.Parameter(torch.empty(fan_out, fan_in))
        if linear.bias is not None:
            linear.bias = nn.Parameter(torch.empty(fan_out))
        with torch.no_grad():
            _init_linear(linear, init, bias, generator)
            linear.weight.mul_(scale)
            if linear.bias is not None:
                linear.bias.mul_(scale)
        layers.append(linear)
        if i < len(widths) - 2:
            layers.append(ACTIVATIONS[activation]())
    if output_activation is not None:
        if output_activation not in ACTIVATIONS:
            raise ValueError(f"mlp: unknown output_activation {output_activation!r}; choose one of "
                             f"{sorted(ACTIVATIONS)}")
        layers.append(ACTIVATIONS[output_activation]())
    return nn.Sequential(*layers)


def _init_linear(linear, init, bias, generator):
    fan_out, fan_in = linear.weight.shape
    w, b = linear.weight, linear.bias
    if init == "torch":
        bound = 1.0 / math.sqrt(fan_in)
        w.uniform_(-bound, bound, generator=generator)
        if b is not None:
            b.uniform_(-bound, bound, generator=generator)
    elif init == "he":
        w.normal_(0.0, math.sqrt(2.0 / fan_in), generator=generator)
        if b is not None:
            b.zero_()
    elif init == "glorot":
        bound = math.sqrt(6.0 / (fan_in + fan_out))
        w.uniform_(-bound, bound, generator=generator)
        if b is not None:
            b.zero_()
    else:  # normal
        w.normal_(0.0, 1.0 / math.sqrt(fan_in), generator=generator)
        if b is not None:
            b.normal_(0.0, 1.0, generator=generator)
    if b is not None and not isinstance(bias, bool):
        b.normal_(0.0, float(bias), generator=generator)
