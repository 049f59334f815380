"""The :class:`Dataset` result and the argument checks shared by every loader."""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field

import numpy as np
import torch

__all__ = ["Dataset"]


@dataclass(frozen=True)
class Dataset:
    """A labelled data set with a train/test split, as returned by every loader in :mod:`netatlas.data`.

    Attributes
    ----------
    x : Tensor of shape (n_train, *input_shape), float32
        Training inputs.
    y : Tensor of shape (n_train,)
        Training targets: int64 class labels in ``0 .. n_classes - 1`` for classification sets,
        float32 values for regression sets (``n_classes`` is ``None``).
    x_test : Tensor of shape (n_test, *input_shape), float32
        Test inputs (``n_test`` may be 0).
    y_test : Tensor of shape (n_test,)
        Test targets, same dtype as ``y``.
    n_classes : int or None
        Number of classes; ``None`` for regression.
    name : str
        The name :func:`netatlas.data.load` knows the set by.
    description : str
        One or two sentences saying what the set is and where it comes from.
    params : dict
        The arguments that produced the set (seed included), JSON-safe.

    Examples
    --------
    >>> from netatlas.data import moons
    >>> data = moons(n=8, seed=0)
    >>> data.x.shape, data.y.dtype, data.input_shape, data.n_train, data.n_test
    (torch.Size([8, 2]), torch.int64, (2,), 8, 3)
    >>> sorted(data.to_dict())[:4]
    ['class_counts', 'description', 'input_shape', 'n_classes']
    """

    x: torch.Tensor
    y: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    n_classes: int | None
    name: str
    description: str
    params: dict = field(default_factory=dict)

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one input, e.g. ``(2,)`` or ``(1, 28, 28)``."""
        return tuple(self.x.shape[1:])

    @property
    def n_train(self) -> int:
        """Number of training examples."""
        return int(self.x.shape[0])

    @property
    def n_test(self) -> int:
        """Number of test examples."""
        return int(self.x_test.shape[0])

    @property
    def task(self) -> str:
        """``"classification"`` or ``"regression"``."""
        return "regression" if self.n_classes is None else "classification"

    def __len__(self) -> int:
        return self.n_train

    def to_dict(self) -> dict:
        """Metadata (not the arrays), JSON-safe: name, description, shapes, class counts, params."""
        out = {
            "name": self.name,
            "description": self.description,
            "task": self.task,
            "n_classes": self.n_classes,
            "input_shape": list(self.input_shape),
            "n_train": self.n_train,
            "n_test": self.n_test,
            "params": dict(self.params),
        }
        if self.n_classes is not None:
            out["class_counts"] = torch.bincount(self.y, minlength=self.n_classes).tolist()
        return out

    def __repr__(self) -> str:
        return (f"Dataset(name={self.name!r}, n_train={self.n_train}, n_test={self.n_test}, "
                f"input_shape={self.input_shape}, n_classes={self.n_classes})")


# ---------------------------------------------------------------------------------------------
# Argument checks (used at every loader's public boundary, before any work).


def check_int(where: str, name: str, value, *, minimum: int = 0, allow_none: bool = False):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{where}: {name} must be an int, got {type(value).__name__} {value!r}.")
    if value < minimum:
        raise ValueError(f"{where}: {name} must be >= {minimum}, got {value}.")
    return int(value)


def check_float(where: str, name: str, value, *, minimum: float = 0.0, maximum: float = math.inf,
                max_inclusive: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{where}: {name} must be a number, got {type(value).__name__} {value!r}.")
    value = float(value)
    too_big = value > maximum if max_inclusive else value >= maximum
    if not math.isfinite(value) or value < minimum or too_big:
        upper = ("" if maximum == math.inf else
                 f" and {'<=' if max_inclusive else '<'} {maximum}")
        raise ValueError(f"{where}: {name} must be a finite number >= {minimum}{upper}, got {value}.")
    return value


def check_seed(where: str, seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"{where}: seed must be a non-negative int, got {type(seed).__name__} {seed!r}.")
    if seed < 0:
        raise ValueError(f"{where}: seed must be a non-negative int, got {seed}.")
    return int(seed)


def check_test_fraction(where: str, test_fraction) -> float:
    return check_float(where, "test_fraction", test_fraction, minimum=0.0, maximum=1.0,
                       max_inclusive=False)


def n_test_for(n: int, test_fraction: float) -> int:
    """Size of a fresh test set so that it is ``test_fraction`` of all points (train + test)."""
    return math.ceil(n * test_fraction / (1.0 - test_fraction) - 1e-9)


def generators(seed: int) -> tuple[np.random.Generator, np.random.Generator]:
    """Independent train and test generators: the training set does not depend on the test size."""
    train_seq, test_seq = np.random.SeedSequence(seed).spawn(2)
    return np.random.default_rng(train_seq), np.random.default_rng(test_seq)


def stratified_order(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A seeded shuffle of ``range(len(labels))`` in which every prefix holds the classes in proportion.

    Each class is shuffled; its j-th member (of k) gets the key (j + u) / k with u uniform in [0, 1), and
    the rows are sorted by key. So the first m rows hold about m k_c / n of class c (the first n_classes
    rows one of each when the classes are of about equal size), and a subsequence that takes, from each
    class, a run of its members in this order is again in proportion.
    """
    labels = np.asarray(labels)
    order = rng.permutation(len(labels))
    key = np.empty(len(labels))
    for c in np.unique(labels):
        members = order[labels[order] == c]  # class c, shuffled
        key[members] = (np.arange(len(members)) + rng.random(len(members))) / len(members)
    return np.argsort(key, kind="stable")


def stratified_split(labels: np.ndarray, rows: np.ndarray, n_test: int) -> tuple[np.ndarray, np.ndarray]:
    """Split ``rows`` (in stratified order) into (train, test) with ``n_test`` test rows, each class in
    proportion: class c gives its first t_c rows to test, t_c from the largest remainders of
    n_c n_test / n. Both parts keep the order of ``rows`` (so stay stratified)."""
    labels = np.asarray(labels)[rows]
    classes, counts = np.unique(labels, return_counts=True)
    ideal = counts * n_test / max(len(rows), 1)
    take = np.floor(ideal).astype(int)
    for i in np.argsort(-(ideal - take), kind="stable")[: n_test - int(take.sum())]:
        take[i] += 1
    rank = np.empty(len(rows), dtype=int)  # each row's position among its class, in order
    for c in classes:
        where = np.flatnonzero(labels == c)
        rank[where] = np.arange(len(where))
    test = rank < take[np.searchsorted(classes, labels)]
    return rows[~test], rows[test]


def make(name, description, params, x, y, x_test, y_test, n_classes, float_dtype=np.float32) -> Dataset:
    """Build a Dataset from NumPy arrays: x float32, y int64 (classification) or float32 (regression)
    (``float_dtype=np.float64`` keeps float64 values)."""
    y_dtype = float_dtype if n_classes is None else np.int64

    def tensor(array, dtype):  # always a fresh, writable copy (cached raw arrays are read-only)
        return torch.from_numpy(np.array(array, dtype=dtype, copy=True, order="C"))

    return Dataset(
        x=tensor(x, float_dtype),
        y=tensor(y, y_dtype),
        x_test=tensor(x_test, float_dtype),
        y_test=tensor(y_test, y_dtype),
        n_classes=n_classes,
        name=name,
        description=description,
        params=params,
    )
