"""The user's own data: labelled inputs from a CSV, NPZ or ``.pt`` file, checked, as a :class:`Dataset`.

Accepted layouts (one sample per row / along the first axis):

- ``.csv``: numbers separated by commas, one sample per line. The label column is the one headed
  ``label``, ``y``, ``target`` or ``class`` when the first line is a header, else the last column; every
  other column is an input coordinate.
- ``.npz``: arrays ``x`` (or ``X``, ``inputs``, ``images``, ``data``) and ``y`` (or ``labels``,
  ``targets``, ``label``); optionally ``x_test`` and ``y_test``.
- ``.pt`` / ``.pth``: a tensor pair ``(x, y)`` or a dict with the keys above, read with
  ``torch.load(weights_only=True)`` (no code is run).

Labels that are whole numbers >= 0 make a classification set (``n_classes = max + 1``); any other labels a
regression set. Every problem is one ``DataFileError`` line (a ``ValueError``) naming the file;
sizes are checked against the memory budget (``NETATLAS_MEMORY_BUDGET``) from the declared shapes before
an array is inflated.
"""

from __future__ import annotations

import csv
import math
import zipfile
from pathlib import Path

import numpy as np
from numpy.lib import format as npy_format

from netatlas._errors import DataFileError, NetatlasError
from netatlas._memory import check_memory
from netatlas.data._dataset import Dataset, make

__all__ = ["load_file", "DATA_SUFFIXES"]

DATA_SUFFIXES = (".csv", ".npz", ".pt", ".pth")
_X_KEYS = ("x", "X", "inputs", "images", "data")
_Y_KEYS = ("y", "labels", "targets", "label")
_LABEL_HEADERS = ("label", "y", "target", "class")


_FLOAT32_MAX = float(np.finfo(np.float32).max)
# Bytes held per input value once read: the float64 copy checked here and the float32 Dataset tensor.
_BYTES_PER_VALUE = 12


def _fail(path, message) -> DataFileError:
    return DataFileError(f"load_file: {path}: {message}")


def _read_csv(path: Path):
    try:
        with path.open(newline="") as f:
            rows = [row for row in csv.reader(f) if row and any(cell.strip() for cell in row)]
    except UnicodeDecodeError:
        raise _fail(path, "is not a text CSV file") from None
    except csv.Error as exc:  # a field over csv.field_size_limit() characters, a NUL byte, ...
        raise _fail(path, f"is not a CSV file of numbers ({exc}); expected one sample per line: inputs..., "
                          "label") from None
    if not rows:
        raise _fail(path, "is empty; expected one sample per line: inputs..., label")

    def numeric(row):
        try:
            [float(cell) for cell in row]
            return True
        except ValueError:
            return False

    header = None if numeric(rows[0]) else [cell.strip().lower() for cell in rows[0]]
    body = rows[1:] if header else rows
    if not body:
        raise _fail(path, "has a header but no data lines")
    width = len(body[0])
    for i, row in enumerate(body):
        if len(row) != width:
            raise _fail(path, f"line {i + 1 + bool(header)} has {len(row)} columns, the first data line {width}")
        if not numeric(row):
            raise _fail(path, f"line {i + 1 + bool(header)} has a value that is not a number: {row[:6]}")
    if width < 2:
        raise _fail(path, "needs at least two columns (inputs..., label)")
    table = np.array(body, dtype=np.float64)
    label = width - 1
    if header:
        named = [i for i, name in enumerate(header) if name in _LABEL_HEADERS]
        label = named[0] if named else label
    return np.delete(table, label, axis=1), table[:, label], None, None


def _pick(mapping, keys, path, what):
    for key in keys:
        if key in mapping:
            return mapping[key]
    raise _fail(path, f"has no {what} array; name it one of {list(keys)} (found {sorted(mapping)})")


def _read_npz(path: Path):
    _check_npz_headers(path)
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except NetatlasError:
        raise
    except Exception as exc:  # BadZipFile, zlib.error, EOFError, ValueError: truncated or corrupt
        raise _fail(path, f"is not a readable .npz archive ({type(exc).__name__}: {_first_line(exc)})") from None
    x, y = _pick(arrays, _X_KEYS, path, "input"), _pick(arrays, _Y_KEYS, path, "label")
    return x, y, arrays.get("x_test"), arrays.get("y_test")


def _check_npz_headers(path: Path):
    """Read each array's header (shape and dtype) and check the sizes against the memory budget, before
    any array is inflated; complex arrays are refused here."""
    total = 0
    try:
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                with zf.open(info) as member:
                    version = npy_format.read_magic(member)
                    read_header = npy_format.read_array_header_1_0 if version == (1, 0) else \
                        npy_format.read_array_header_2_0  # 3.0 differs only in the header's text encoding
                    shape, _, dtype = read_header(member)
                if np.issubdtype(dtype, np.complexfloating):
                    raise _fail(path, f"array {info.filename!r} is complex ({dtype}); netatlas reads real data and "
                                      "never drops an imaginary part")
                # NumPy reads a zip member's bytes (file_size) and copies them into the array (itemsize per
                # value); then come the float64 and float32 copies (_BYTES_PER_VALUE)
                total += math.prod(shape) * (dtype.itemsize + _BYTES_PER_VALUE) + info.file_size
    except NetatlasError:
        raise
    except Exception as exc:  # noqa: BLE001 - not a zip, not .npy members, truncated: one line
        raise _fail(path, f"is not a readable .npz archive ({type(exc).__name__}: {_first_line(exc)})") from None
    check_memory(total, f"load_file: {path}: its arrays (by their declared shapes)")


def _check_zip_members(path: Path):
    """torch.save files are zips: check their declared uncompressed sizes before torch inflates them."""
    try:
        with zipfile.ZipFile(path) as zf:
            declared = sum(i.file_size for i in zf.infolist())
    except (zipfile.BadZipFile, OSError, ValueError):
        return  # a legacy (non-zip) file or a corrupt one: torch.load says which
    # the tensors as stored plus their float64 and float32 copies: 4x for float32 tensors (the usual case)
    check_memory(declared * (1 + _BYTES_PER_VALUE // 4), f"load_file: {path}: its tensors ({declared:,} bytes "
                                                         "inflated)")


def _first_line(exc):
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else ""


def _read_pt(path: Path):
    import torch

    _check_zip_members(path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is one line for the user
        raise _fail(path, f"cannot be read with torch.load(weights_only=True) ({type(exc).__name__}: "
                          f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
    if isinstance(obj, (tuple, list)) and len(obj) == 2:
        obj = {"x": obj[0], "y": obj[1]}
    if not isinstance(obj, dict):
        raise _fail(path, f"holds a {type(obj).__name__}; expected a pair (x, y) or a dict with 'x' and 'y'")

    def array(t):
        if isinstance(t, torch.Tensor) and t.is_meta:
            raise _fail(path, "holds meta tensors (shapes without values); save tensors that hold the data")
        return None if t is None else (t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t))

    x, y = _pick(obj, _X_KEYS, path, "input"), _pick(obj, _Y_KEYS, path, "label")
    return array(x), array(y), array(obj.get("x_test")), array(obj.get("y_test"))


def _check(path, x, y, which):
    for name, a in (("inputs", x), ("labels", y)):
        if np.iscomplexobj(a):
            raise _fail(path, f"{which} {name} are complex ({np.asarray(a).dtype}); netatlas reads real data and "
                              "never drops an imaginary part")
    try:
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
    except (TypeError, ValueError):
        raise _fail(path, f"{which} inputs and labels must be numbers") from None
    if x.ndim < 2:
        raise _fail(path, f"{which} inputs have shape {x.shape}; expected (n_samples, *input_shape)")
    if y.ndim != 1:
        y = y.reshape(-1) if y.ndim == 2 and 1 in y.shape else y
        if y.ndim != 1:
            raise _fail(path, f"{which} labels have shape {y.shape}; expected one label per sample (n,)")
    if len(x) != len(y):
        raise _fail(path, f"{len(x)} {which} inputs but {len(y)} labels")
    if len(x) == 0:
        raise _fail(path, f"has no {which} samples")
    bad = ~np.isfinite(x.reshape(len(x), -1)).all(1) | ~np.isfinite(y)
    if bad.any():
        raise _fail(path, f"{int(bad.sum())} {which} samples have NaN or infinite values (first: "
                          f"sample {int(np.flatnonzero(bad)[0])})")
    large = (np.abs(x.reshape(len(x), -1)) > _FLOAT32_MAX).any(1) | (np.abs(y) > _FLOAT32_MAX)
    if large.any():  # the Dataset holds float32 inputs (and regression labels): these would become infinite
        raise _fail(path, f"{int(large.sum())} {which} samples have values too large for float32 (|x| > "
                          f"{_FLOAT32_MAX:.3g}; first: sample {int(np.flatnonzero(large)[0])}); rescale the data")
    return x, y


def load_file(path, *, float64: bool = False) -> Dataset:
    """Load labelled data from a CSV, NPZ or ``.pt`` file (layouts in the module docstring).

    Parameters
    ----------
    path : str or Path
        The file; its suffix picks the reader (``DATA_SUFFIXES``).
    float64 : bool
        Keep the values in float64 (inputs and regression targets) instead of float32, e.g. for lenses
        that compare with float64 references.

    Returns
    -------
    Dataset
        ``x`` (n, *input_shape) float32 (float64 with ``float64=True``) and ``y`` (n,) from the file;
        ``x_test``/``y_test`` from the file's ``x_test``/``y_test`` arrays when given, else empty.
        ``name`` is the file name and ``params`` records the path.

    Raises
    ------
    DataFileError
        (a ``ValueError``) One line naming the file and the problem: missing, unknown suffix, unreadable, ragged or
        non-numeric rows, missing arrays, a label count that differs from the input count, NaN/inf,
        complex values, values too large for float32.
    MemoryBudgetError
        The arrays, by their declared shapes, would not fit ``NETATLAS_MEMORY_BUDGET``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "points.csv"
    >>> _ = path.write_text("x1,x2,label\\n0.5,1.0,0\\n-1.0,2.0,1\\n")
    >>> data = load_file(path)
    >>> data.x.shape, data.y.tolist(), data.n_classes
    (torch.Size([2, 2]), [0, 1], 2)
    """
    path = Path(path)
    if not path.is_file():
        raise _fail(path, "no such file")
    suffix = path.suffix.lower()
    readers = {".csv": _read_csv, ".npz": _read_npz, ".pt": _read_pt, ".pth": _read_pt}
    if suffix not in readers:
        raise _fail(path, f"unknown data file type {suffix!r}; use one of {', '.join(DATA_SUFFIXES)}")
    x, y, x_test, y_test = readers[suffix](path)
    x, y = _check(path, x, y, "training")
    if (x_test is None) != (y_test is None):
        raise _fail(path, "has x_test without y_test (or the reverse); give both or neither")
    if x_test is not None:
        x_test, y_test = _check(path, x_test, y_test, "test")
        if x_test.shape[1:] != x.shape[1:]:
            raise _fail(path, f"test inputs have shape {x_test.shape[1:]} per sample, training inputs {x.shape[1:]}")
    else:
        x_test, y_test = np.zeros((0, *x.shape[1:])), np.zeros(0)
    labels = np.concatenate([y, y_test])
    classification = bool((labels == np.round(labels)).all() and (labels >= 0).all())
    n_classes = int(labels.max()) + 1 if classification else None
    return make(path.name, f"user data from {path.name}: {len(x)} samples of shape {tuple(x.shape[1:])}",
                {"path": str(path)}, x, y, x_test, y_test, n_classes,
                float_dtype=np.float64 if float64 else np.float32)
