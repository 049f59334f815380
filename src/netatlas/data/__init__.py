"""Data that needs no download: 2-D toy sets, a 1-D regression set, and small image sets.

Every loader is one seeded call returning a :class:`Dataset` (``x``, ``y``, ``x_test``, ``y_test``,
``n_classes``, ``name``, ``description``); the same seed gives identical tensors, and no global RNG is
used. :func:`load` dispatches by name::

    >>> import netatlas.data
    >>> netatlas.data.load("sinusoid", n=100, seed=3).x.shape
    torch.Size([100, 2])
    >>> sorted(netatlas.data.LOADERS)[:4]
    ['blobs', 'circles', 'digits', 'mnist1d']

The user's own labelled data (CSV, NPZ, ``.pt``) loads, checked, with :func:`load_file`.
"""

from __future__ import annotations

from netatlas.data._dataset import Dataset
from netatlas.data._files import DATA_SUFFIXES, load_file
from netatlas.data._images import digits, mnist1d, mnist_sample, source_rows
from netatlas.data._toy import (
    REGRESSION_FUNCTIONS,
    blobs,
    circles,
    moons,
    regression_1d,
    sinusoid,
    spirals,
    xor,
    xor4,
)

__all__ = [
    "DATA_SUFFIXES",
    "LOADERS",
    "REGRESSION_FUNCTIONS",
    "Dataset",
    "blobs",
    "circles",
    "digits",
    "load",
    "load_any",
    "load_file",
    "mnist1d",
    "mnist_sample",
    "moons",
    "regression_1d",
    "sinusoid",
    "source_rows",
    "split_of",
    "stratified_sample",
    "spirals",
    "xor",
    "xor4",
]

LOADERS = {
    "moons": moons,
    "circles": circles,
    "xor": xor,
    "xor4": xor4,
    "spirals": spirals,
    "sinusoid": sinusoid,
    "blobs": blobs,
    "regression_1d": regression_1d,
    "digits": digits,
    "mnist_sample": mnist_sample,
    "mnist1d": mnist1d,
}
"""Every loader by the name :func:`load` accepts (also ``Dataset.name``)."""


def load(name: str, **kwargs) -> Dataset:
    """Load a data set by name: ``load("moons", n=200, seed=1)`` is ``moons(n=200, seed=1)``.

    Parameters
    ----------
    name : str
        One of ``LOADERS``: moons, circles, xor, xor4, spirals, sinusoid, blobs, regression_1d, digits,
        mnist_sample, mnist1d (a ``-`` is read as ``_``, case is ignored).
    **kwargs
        Passed to the loader (``n``, ``noise``, ``seed``, ...).

    Returns
    -------
    Dataset

    Raises
    ------
    ValueError
        For an unknown name (the message lists the names).
    TypeError
        For a keyword the loader does not take (the message lists the ones it does).

    Examples
    --------
    >>> load("xor4").y.tolist()
    [0, 1, 1, 0]
    >>> load("Two-Moons")
    Traceback (most recent call last):
    ...
    ValueError: load: unknown data set 'Two-Moons'; choose one of: moons, circles, ...
    """
    if not isinstance(name, str):
        raise TypeError(f"load: name must be a str, got {type(name).__name__}.")
    key = name.strip().lower().replace("-", "_")
    if key not in LOADERS:
        raise ValueError(f"load: unknown data set {name!r}; choose one of: {', '.join(LOADERS)}.")
    loader = LOADERS[key]
    import inspect

    accepted = [p for p in inspect.signature(loader).parameters]
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise TypeError(f"load: {key} does not take {', '.join(unknown)}; it takes {', '.join(accepted)}.")
    return loader(**kwargs)


def load_any(data: str, *, where: str = "load_any", float64: bool = False, **kwargs) -> Dataset:
    """A built-in data set by name (:func:`load`) or a data file (:func:`load_file`): what a command's
    ``--data NAME|FILE`` names. This is the one resolver every command uses.

    Parameters
    ----------
    data : str or path
        A name from :data:`LOADERS` (``-`` read as ``_``, case ignored) or a path to a ``.csv``/``.npz``/``.pt``
        file (an existing path, or one with a data suffix, is always read as a file).
    where : str
        Prefix of the error message (the command).
    float64 : bool
        Inputs (and regression targets) in float64: a file's values as read, a built-in set's converted.
    **kwargs
        Passed to the loader of a built-in set (e.g. ``seed``, ``flatten``); refused for a file.

    Raises
    ------
    ValueError
        When ``data`` is neither (the message lists both kinds), or keywords are given for a file.

    Examples
    --------
    >>> load_any("xor4").name
    'xor4'
    >>> load_any("mnist-sample", flatten=True).x.shape
    torch.Size([3750, 784])
    """
    from pathlib import Path

    path = Path(data)
    if path.suffix.lower() in DATA_SUFFIXES or path.exists():
        if kwargs:
            raise ValueError(f"{where}: {', '.join(kwargs)} apply to built-in data sets, not to the file {data}")
        try:
            return load_file(path, float64=float64)
        except ValueError as exc:  # name the command and its option, not the loader
            raise ValueError(f"{where}: --data {str(exc).removeprefix('load_file: ')}") from None
    key = str(data).strip().lower().replace("-", "_")
    if key not in LOADERS:
        raise ValueError(f"{where}: --data {str(data)!r} is neither a data file ({', '.join(DATA_SUFFIXES)}) nor a "
                         f"built-in data set ({', '.join(LOADERS)})")
    dataset = load(key, **kwargs)
    if not float64:
        return dataset
    import dataclasses

    import torch

    def wide(t):
        return t.to(torch.float64) if t.is_floating_point() else t

    return dataclasses.replace(dataset, x=wide(dataset.x), y=wide(dataset.y), x_test=wide(dataset.x_test),
                               y_test=wide(dataset.y_test))


def split_of(dataset: Dataset, split: str = "train"):
    """``(x, y)`` of the ``"train"`` or ``"test"`` split of a data set (what a command's ``--split`` picks).

    >>> x, y = split_of(load("moons", n=8, seed=0), "test")
    >>> tuple(x.shape)
    (3, 2)
    """
    if split not in ("train", "test"):
        raise ValueError(f"split_of: split must be 'train' or 'test'; got {split!r}")
    return (dataset.x, dataset.y) if split == "train" else (dataset.x_test, dataset.y_test)


def stratified_sample(y, n: int | None, *, seed: int = 0):
    """Indices (sorted) of a seeded sample of ``n`` of the targets ``y``: for class labels (integers) each
    class in proportion to its count, for regression targets a uniform sample; all indices when ``n`` is
    None or at least ``len(y)``.

    Warns (once, one line) when class labels are sampled and the sample holds one class only.

    Parameters
    ----------
    y : array_like or Tensor of shape (n_samples,)
    n : int or None
    seed : int

    Returns
    -------
    ndarray of shape (min(n, n_samples),), int64

    Examples
    --------
    >>> import numpy as np
    >>> y = np.repeat(np.arange(10), 500)  # sorted by class, like the MNIST sample's file
    >>> np.bincount(y[stratified_sample(y, 100)]).tolist() == [10] * 10
    True
    """
    import warnings

    import numpy as np

    from netatlas.data._dataset import check_int, check_seed, stratified_order

    labels = np.asarray(y.detach().cpu().numpy() if hasattr(y, "detach") else y)
    n = check_int("stratified_sample", "n", n, minimum=1, allow_none=True)
    seed = check_seed("stratified_sample", seed)
    rng = np.random.default_rng(seed)
    if n is None or n >= len(labels):
        chosen = np.arange(len(labels))
    elif np.issubdtype(labels.dtype, np.integer):
        chosen = np.sort(stratified_order(labels, rng)[:n])
    else:
        chosen = np.sort(rng.choice(len(labels), size=n, replace=False))
    if np.issubdtype(labels.dtype, np.integer) and len(chosen) and len(np.unique(labels[chosen])) == 1:
        present = len(np.unique(labels))
        warnings.warn(f"the {len(chosen)} samples hold one class only (class {int(labels[chosen[0]])}; the data "
                      f"has {present}): statistics by class cover that class alone", stacklevel=2)
    return chosen
