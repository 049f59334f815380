"""Checks of command-line options, run before any work starts: one-line ValueErrors saying what was
given and what is accepted (the CLI prints them as ``ValueError: ...`` and exits 1)."""

from __future__ import annotations

import math

__all__ = ["at_least", "one_of", "number_list", "quick_conflicts"]


def at_least(option: str, value, minimum) -> None:
    """Refuse ``value < minimum`` (None means "not given" and passes).

    >>> at_least("--threads", 0, 1)
    Traceback (most recent call last):
    ...
    ValueError: --threads must be an integer >= 1; got 0
    """
    if value is not None and not value >= minimum:
        raise ValueError(f"{option} must be an integer >= {minimum}; got {value}")


def one_of(option: str, value, choices) -> None:
    """Refuse a value outside ``choices``.

    >>> one_of("--color-by", "bogus", ("pattern", "class"))
    Traceback (most recent call last):
    ...
    ValueError: --color-by must be one of pattern, class; got 'bogus'
    """
    if value not in choices:
        raise ValueError(f"{option} must be one of {', '.join(map(str, choices))}; got {value!r}")


def number_list(option: str, text: str, *, positive: bool = False, integer: bool = False) -> list:
    """``"0.1,1,10"`` -> ``[0.1, 1.0, 10.0]``: finite numbers, at least one; optionally > 0 / whole.

    >>> number_list("--scales", "0.1,-1", positive=True)
    Traceback (most recent call last):
    ...
    ValueError: --scales must list finite numbers > 0, comma-separated; got '0.1,-1' (-1.0)
    """
    kind = ("integers" if integer else "finite numbers") + (" > 0" if positive else "")
    values = []
    for item in (t.strip() for t in str(text).split(",")):
        if not item:
            continue
        try:
            value = float(item)
        except ValueError:
            raise ValueError(f"{option} must list {kind}, comma-separated; got {text!r} ({item!r})") from None
        if not math.isfinite(value) or (positive and value <= 0) or (integer and not value.is_integer()):
            raise ValueError(f"{option} must list {kind}, comma-separated; got {text!r} ({value})")
        values.append(int(value) if integer else value)
    if not values:
        raise ValueError(f"{option} must list at least one number; got {text!r}")
    return values


def quick_conflicts(command: str, quick: bool, **given) -> None:
    """With ``--quick``, refuse options that --quick would override (those given, i.e. not None).

    >>> quick_conflicts("splines regimes", True, scales="1,2", widths=None)
    Traceback (most recent call last):
    ...
    ValueError: splines regimes: --quick sets its own --scales; drop --quick or drop --scales
    """
    clash = [f"--{name.replace('_', '-')}" for name, value in given.items() if value is not None]
    if quick and clash:
        raise ValueError(f"{command}: --quick sets its own {', '.join(clash)}; drop --quick or drop "
                         f"{', '.join(clash)}")
