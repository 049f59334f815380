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


def load_any(data: str, *, where: str = "load_any") -> Dataset:
    """A built-in data set by name (:func:`load`, default arguments) or a data file (:func:`load_file`):
    what a command's ``--data NAME|FILE`` names.

    Raises ValueError (prefixed by ``where``) when ``data`` is neither.

    >>> load_any("xor4").name
    'xor4'
    """
    from pathlib import Path

    path = Path(data)
    if path.suffix.lower() in DATA_SUFFIXES or path.exists():
        return load_file(path)
    key = data.strip().lower().replace("-", "_")
    if key not in LOADERS:
        raise ValueError(f"{where}: --data {data!r} is neither a data file ({', '.join(DATA_SUFFIXES)}) nor a "
                         f"built-in data set ({', '.join(LOADERS)})")
    return load(key)
