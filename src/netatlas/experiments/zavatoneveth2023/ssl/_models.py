"""The small encoders the SSL magnification experiment trains, and the module that names their parts.

Every model has a submodule ``encoder`` (images -> representation, what the metric lens analyses) and a
``projector`` (SSL objectives) or ``head`` (the supervised twin's linear classifier), so that
``(model, "encoder")`` and ``(model, "projector")`` are feature maps for :mod:`netatlas.metric`.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["EncoderWithHead", "make_encoder", "make_projector"]

_ACTIVATIONS = {"gelu": nn.GELU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "relu": nn.ReLU}


class EncoderWithHead(nn.Module):
    """``forward(x) = top(encoder(x))``, with ``top`` registered under ``top_name`` ("projector" or "head").

    Examples
    --------
    >>> import torch
    >>> model = EncoderWithHead(make_encoder((1, 8, 8), seed=0), torch.nn.Linear(64, 10), "head")
    >>> model(torch.zeros(2, 1, 8, 8)).shape, [name for name, _ in model.named_children()]
    (torch.Size([2, 10]), ['encoder', 'head'])
    """

    def __init__(self, encoder: nn.Module, top: nn.Module, top_name: str = "projector"):
        super().__init__()
        if top_name not in ("projector", "head"):
            raise ValueError(f"EncoderWithHead: top_name must be 'projector' or 'head'; got {top_name!r}")
        self.encoder = encoder
        self.top_name = top_name
        self.add_module(top_name, top)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return getattr(self, self.top_name)(self.encoder(x))


def make_encoder(input_shape, widths=(256, 64), activation: str = "gelu", *, seed: int = 0) -> nn.Sequential:
    """An MLP encoder ``Flatten -> (Linear -> activation) x len(widths)``; the representation is the last
    activation's output, of width ``widths[-1]``.

    PyTorch's default initialisation, drawn with ``torch.manual_seed(seed)`` inside a forked RNG (the
    global RNG state is restored afterwards).

    Examples
    --------
    >>> encoder = make_encoder((1, 8, 8), widths=(32, 16), seed=0)
    >>> encoder(torch.zeros(3, 1, 8, 8)).shape
    torch.Size([3, 16])
    """
    if activation not in _ACTIVATIONS:
        raise ValueError(f"make_encoder: unknown activation {activation!r}; choose one of {sorted(_ACTIVATIONS)}")
    widths = [int(w) for w in widths]
    if not widths or min(widths) < 1:
        raise ValueError(f"make_encoder: widths must be positive ints; got {widths}")
    sizes = [math.prod(input_shape), *widths]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        layers: list[nn.Module] = [nn.Flatten()]
        for a, b in zip(sizes[:-1], sizes[1:], strict=True):
            layers += [nn.Linear(a, b), _ACTIVATIONS[activation]()]
    return nn.Sequential(*layers)


def make_projector(in_width: int, widths=(128, 128), *, batchnorm: bool = True, seed: int = 0) -> nn.Sequential:
    """The SSL projector head ``(Linear -> [BatchNorm1d] -> ReLU) x (len(widths) - 1) -> Linear``.

    Examples
    --------
    >>> [type(layer).__name__ for layer in make_projector(16, (32, 8), seed=0)]
    ['Linear', 'BatchNorm1d', 'ReLU', 'Linear']
    """
    sizes = [int(in_width), *[int(w) for w in widths]]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed + 1_000_003)
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
            layers.append(nn.Linear(a, b))
            if i < len(sizes) - 2:
                layers += ([nn.BatchNorm1d(b)] if batchnorm else []) + [nn.ReLU()]
    return nn.Sequential(*layers)
