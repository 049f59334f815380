"""The memory budget: sizes are estimated from specs and shapes and checked before allocating.

One budget, one meaning everywhere (model loading, regions, plots, ...): ``NETATLAS_MEMORY_BUDGET``,
or half of the machine's physical memory when it is unset. Sizes (the variable, ``partition(...,
memory_budget=...)``, ``--memory-budget``) are read by :func:`parse_bytes`:

- plain bytes: ``1``, ``500000000``, ``2e9``;
- decimal units, powers of 10: ``KB`` = 10^3, ``MB`` = 10^6, ``GB`` = 10^9, ``TB`` = 10^12 bytes;
- binary units, powers of 2: ``KiB`` = 2^10, ``MiB`` = 2^20, ``GiB`` = 2^30, ``TiB`` = 2^40 bytes.

Units are case-insensitive and may follow a space (``512 MiB``); a bare letter (``16G``) is refused as
ambiguous.
"""

from __future__ import annotations

import math
import numbers
import os
import re

from netatlas._errors import MemoryBudgetError

__all__ = ["SIZE_FORMS", "check_memory", "format_bytes", "memory_budget", "parse_bytes"]

#: Bytes per unit: decimal units are powers of 10, binary (``i``) units powers of 2.
UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
         "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}
#: What a size may be, for error messages.
SIZE_FORMS = ("bytes (e.g. 1, 500000000, 2e9) or a number with a unit: KB/MB/GB/TB (powers of 10) or "
              "KiB/MiB/GiB/TiB (powers of 2), e.g. 16GB, 512MiB")
_FALLBACK = 8 * 2**30
_SIZE = re.compile(r"((?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:e\+?[0-9]+)?)\s*([a-z]*)")


def parse_bytes(value, what: str = "size") -> int:
    """A size in bytes from an int (bytes) or a string: plain bytes, or a number with a unit where
    ``KB/MB/GB/TB`` are powers of 10 and ``KiB/MiB/GiB/TiB`` powers of 2.

    Parameters
    ----------
    value : int or str
        The size; must come to at least one byte.
    what : str
        What the size is for, to start the error message (e.g. ``"--memory-budget"``).

    Returns
    -------
    int
        Bytes (rounded down).

    Raises
    ------
    ValueError
        For anything else, naming ``what``, the value and the accepted forms.

    Examples
    --------
    >>> parse_bytes("1"), parse_bytes(500000000), parse_bytes("2e9")
    (1, 500000000, 2000000000)
    >>> parse_bytes("16GB") == 16 * 10**9 and parse_bytes("512 MiB") == 512 * 2**20
    True
    >>> parse_bytes("16G")
    Traceback (most recent call last):
    ...
    ValueError: size: '16G' is not a size; use bytes (e.g. 1, 500000000, 2e9) or a number with a unit: ...
    """
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        m = _SIZE.fullmatch(value.strip().lower())
        number = float(m.group(1)) * UNITS[m.group(2)] if m and m.group(2) in UNITS else math.nan
    else:
        raise ValueError(f"{what}: expected a size, got {type(value).__name__} {value!r}; use {SIZE_FORMS}")
    if 0 <= number < 1:
        raise ValueError(f"{what}: {value!r} is less than one byte; use {SIZE_FORMS}")
    if not 1 <= number < math.inf:
        raise ValueError(f"{what}: {value!r} is not a size; use {SIZE_FORMS}")
    return int(value) if isinstance(value, numbers.Integral) else int(number)


def memory_budget() -> int:
    """The memory budget in bytes: ``NETATLAS_MEMORY_BUDGET`` (read by :func:`parse_bytes`: plain bytes,
    KB/MB/GB/TB = powers of 10, KiB/MiB/GiB/TiB = powers of 2), or half the physical memory.

    Raises
    ------
    MemoryBudgetError
        When the variable is set but is not a size.

    Examples
    --------
    >>> import os
    >>> os.environ["NETATLAS_MEMORY_BUDGET"] = "1.5GiB"
    >>> memory_budget() == 3 * 2**29
    True
    >>> os.environ["NETATLAS_MEMORY_BUDGET"] = "2GB"
    >>> memory_budget()
    2000000000
    >>> del os.environ["NETATLAS_MEMORY_BUDGET"]
    """
    text = os.environ.get("NETATLAS_MEMORY_BUDGET", "").strip()
    if text:
        try:
            return parse_bytes(text, f"NETATLAS_MEMORY_BUDGET={text!r}")
        except ValueError:
            raise MemoryBudgetError(f"NETATLAS_MEMORY_BUDGET={text!r} is not a size; use {SIZE_FORMS}") from None
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2
    except (AttributeError, ValueError, OSError):
        return _FALLBACK


def format_bytes(n: float) -> str:
    """``1536`` -> ``'1.5 KiB'``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError  # pragma: no cover


def check_memory(nbytes: float, what: str) -> None:
    """Raise MemoryBudgetError if ``what`` is estimated to need more than the memory budget.

    Examples
    --------
    >>> check_memory(1e3, "a small array")
    >>> check_memory(1e30, "a 10^29-element array")
    Traceback (most recent call last):
    ...
    netatlas._errors.MemoryBudgetError: a 10^29-element array needs about ... over the memory budget ...
    """
    budget = memory_budget()
    if nbytes > budget:
        raise MemoryBudgetError(f"{what} needs about {format_bytes(nbytes)}, over the memory budget of "
                                f"{format_bytes(budget)}; set NETATLAS_MEMORY_BUDGET (e.g. 64GiB) to allow more")
