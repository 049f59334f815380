"""Input features of the 2-D classifier, as in TensorFlow Playground: the net sees chosen functions of
the point (x1, x2) instead of the point itself.

Features linear in the input (a subset of x1, x2) enter as a fixed linear layer, so the net stays
piecewise linear in the plane and its regions stay exact. Any other feature (x1^2, x1 x2, sin x1, ...)
makes the net's pieces curved in the plane: there are no polygons to compute, and the page draws the
decision boundary as a sampled level set instead.
"""

from __future__ import annotations

import torch

__all__ = ["DEFAULT_FEATURES", "FEATURES", "InputFeatures", "feature_layer", "is_linear"]

# name -> (label on the page, function of the (B, 2) input)
FEATURES = {
    "x1": ("x1", lambda x: x[:, 0]),
    "x2": ("x2", lambda x: x[:, 1]),
    "x1^2": ("x1²", lambda x: x[:, 0] ** 2),
    "x2^2": ("x2²", lambda x: x[:, 1] ** 2),
    "x1x2": ("x1·x2", lambda x: x[:, 0] * x[:, 1]),
    "sin_x1": ("sin x1", lambda x: torch.sin(x[:, 0])),
    "sin_x2": ("sin x2", lambda x: torch.sin(x[:, 1])),
}
DEFAULT_FEATURES = ["x1", "x2"]
LINEAR = ("x1", "x2")


def is_linear(features) -> bool:
    """Whether every feature is a coordinate (the net stays piecewise linear in the plane).

    >>> is_linear(["x2"]), is_linear(["x1", "x1x2"])
    (True, False)
    """
    return all(f in LINEAR for f in features)


class InputFeatures(torch.nn.Module):
    """(B, 2) points -> (B, k) features, in the order given (no parameters)."""

    def __init__(self, features):
        super().__init__()
        self.features = list(features)

    def forward(self, x):
        return torch.stack([FEATURES[f][1](x) for f in self.features], dim=1)

    def extra_repr(self) -> str:
        return ", ".join(self.features)


def feature_layer(features) -> torch.nn.Module | None:
    """The first module of a net on these features: None for (x1, x2) itself, a frozen selection
    Linear for other coordinate subsets, else a :class:`InputFeatures`.

    >>> feature_layer(["x1", "x2"]) is None, type(feature_layer(["x2"])).__name__
    (True, 'Linear')
    """
    if list(features) == DEFAULT_FEATURES:
        return None
    if is_linear(features):
        select = torch.nn.Linear(2, len(features), bias=False)
        with torch.no_grad():
            select.weight.zero_()
            for row, f in enumerate(features):
                select.weight[row, LINEAR.index(f)] = 1.0
        select.weight.requires_grad_(False)  # a fixed choice of inputs, never trained
        return select
    return InputFeatures(features)
