"""Network coordinates of a shallow univariate ReLU network, f(x) = sum_i v_i relu(w_i x + b_i) + c
(reading them from a module, Net, tuple, dict or Spline is :func:`netatlas.splines.as_params`, in
``_spline.py``, which also holds the Spline: one direction of imports)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

__all__ = ["ShallowParams"]


def _vector(value, name: str, caller: str) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().to(torch.float64).numpy()
    array = np.array(value, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{caller}: {name} has non-finite entries; every parameter must be finite")
    return array


@dataclass(frozen=True, eq=False)
class ShallowParams:
    """Parameters of f(x) = sum_i v_i relu(w_i x + b_i) + c, in float64.

    Attributes
    ----------
    w : ndarray of shape (H,)
        First-layer weights (``Linear(1, H).weight[:, 0]``).
    b : ndarray of shape (H,)
        First-layer biases.
    v : ndarray of shape (H,)
        Second-layer weights (``Linear(H, 1).weight[0]``).
    c : float
        Second-layer bias.

    Examples
    --------
    >>> p = ShallowParams([1.0, -2.0], [0.5, 1.0], [1.0, 3.0], 0.25)
    >>> p.width, p(np.array([0.0, 1.0])).tolist()
    (2, [3.75, 1.75])
    """

    w: np.ndarray
    b: np.ndarray
    v: np.ndarray
    c: float

    def __post_init__(self):
        arrays = [_vector(getattr(self, k), k, "ShallowParams") for k in "wbv"]
        if len({a.shape for a in arrays}) != 1:
            raise ValueError(f"ShallowParams: w, b, v must have one length H; got shapes "
                             f"{[a.shape for a in arrays]}")
        for key, array in zip("wbv", arrays, strict=True):
            array.setflags(write=False)
            object.__setattr__(self, key, array)
        c = _vector(self.c, "c", "ShallowParams")
        c = float(c[0]) if c.size == 1 else None
        if c is None:
            raise ValueError(f"ShallowParams: c must be one finite number; got {self.c!r}")
        object.__setattr__(self, "c", c)

    @property
    def width(self) -> int:
        """Number of hidden neurons H."""
        return int(self.w.shape[0])

    def vector(self) -> np.ndarray:
        """The flat parameter vector (w, b, v, c), shape (3H + 1,): the network coordinates."""
        return np.concatenate([self.w, self.b, self.v, [self.c]])

    @classmethod
    def from_vector(cls, theta) -> ShallowParams:
        """Inverse of :meth:`vector`; ``theta`` has shape (3H + 1,)."""
        theta = np.asarray(theta, dtype=np.float64).reshape(-1)
        if theta.size % 3 != 1:
            raise ValueError(f"ShallowParams.from_vector: length must be 3H + 1; got {theta.size}")
        h = theta.size // 3
        return cls(theta[:h], theta[h:2 * h], theta[2 * h:3 * h], theta[-1])

    def __call__(self, x) -> np.ndarray:
        """f(x) for x of any shape (float64 array of the same shape)."""
        x = np.asarray(x, dtype=np.float64)
        z = np.multiply.outer(x, self.w) + self.b
        return np.maximum(z, 0.0) @ self.v + self.c

    def to_module(self, dtype=torch.float64) -> nn.Sequential:
        """``nn.Sequential(Linear(1, H), ReLU(), Linear(H, 1))`` holding these parameters."""
        model = nn.Sequential(nn.Linear(1, self.width), nn.ReLU(), nn.Linear(self.width, 1)).to(dtype)
        with torch.no_grad():
            model[0].weight.copy_(torch.tensor(self.w).reshape(-1, 1))
            model[0].bias.copy_(torch.tensor(self.b))
            model[2].weight.copy_(torch.tensor(self.v).reshape(1, -1))
            model[2].bias.fill_(self.c)
        return model

    def to_dict(self) -> dict:
        return {"w": self.w.tolist(), "b": self.b.tolist(), "v": self.v.tolist(), "c": self.c}
