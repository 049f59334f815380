"""The memory budget: sizes are estimated from specs and shapes and checked before allocating.

``NETATLAS_MEMORY_BUDGET`` sets it (bytes, or with a unit: ``512MiB``, ``16GB``, ``2e9``); the default
is half of the machine's physical memory.
"""

from __future__ import annotations

import os
import re

from netatlas._errors import MemoryBudgetError

__all__ = ["memory_budget", "check_memory", "format_bytes"]

_UNITS = {"": 1, "b": 1, "k": 2**10, "kb": 10**3, "kib": 2**10, "m": 2**20, "mb": 10**6, "mib": 2**20,
          "g": 2**30, "gb": 10**9, "gib": 2**30, "t": 2**40, "tb": 10**12, "tib": 2**40}
_FALLBACK = 8 * 2**30


def memory_budget() -> int:
    """The memory budget in bytes: ``NETATLAS_MEMORY_BUDGET``, or half the physical memory.

    Examples
    --------
    >>> import os
    >>> os.environ["NETATLAS_MEMORY_BUDGET"] = "1.5GiB"
    >>> memory_budget() == 3 * 2**29
    True
    >>> del os.environ["NETATLAS_MEMORY_BUDGET"]
    """
    text = os.environ.get("NETATLAS_MEMORY_BUDGET", "").strip()
    if text:
        m = re.fullmatch(r"([0-9.]+(?:e[0-9]+)?)\s*([a-z]*)", text.lower())
        try:
            value = float(m.group(1)) * _UNITS[m.group(2)] if m else -1.0
        except (KeyError, ValueError):
            value = -1.0
        if not 0 < value < float("inf"):
            raise MemoryBudgetError(f"NETATLAS_MEMORY_BUDGET={text!r} is not a size; use bytes or a number "
                                    "with a unit, e.g. 512MiB, 16GB, 2e9")
        return int(value)
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
