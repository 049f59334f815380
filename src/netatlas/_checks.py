"""Checks of user-given numbers shared by the lenses: finite values, named by their index."""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["require_finite"]


def require_finite(values, what: str) -> None:
    """Raise ValueError naming the first NaN or infinite entry of ``values`` (array or tensor).

    Examples
    --------
    >>> require_finite([[0.0, 1.0], [2.0, float("nan")]], "points")
    Traceback (most recent call last):
    ...
    ValueError: points: entry (1, 1) is nan; only finite numbers (no NaN or infinity)
    """
    if isinstance(values, torch.Tensor):
        if not values.is_floating_point() and not values.is_complex():
            return
        ok = bool(torch.isfinite(values).all())
        if ok:
            return
        values = values.detach().cpu().numpy()
    arr = np.asarray(values)
    if arr.dtype.kind not in "fc":
        return
    bad = ~np.isfinite(arr)
    if not bad.any():
        return
    index = tuple(int(i) for i in np.unravel_index(int(np.argmax(bad.ravel())), arr.shape))
    where = f"entry {index[0]}" if len(index) == 1 else (f"entry {index}" if index else "the value")
    raise ValueError(f"{what}: {where} is {float(np.real(arr[index]))}; only finite numbers (no NaN or infinity)")
