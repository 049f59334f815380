"""Claims and reproductions: the table every ``netatlas reproduce`` report starts with.

A :class:`Claim` is one checkable statement of a paper (or of the reconstruction of it in docs/papers/<paper>.md), with
the value the paper states, what netatlas measured (with its spread over seeds) and whether it holds.
``holds`` is ``None`` when the claim could not be measured; ``note`` then says what is missing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

__all__ = ["Claim", "Reproduction", "spread", "describe", "not_measured", "all_true"]


@dataclass(frozen=True)
class Claim:
    """One claim of a paper next to what netatlas measured.

    Attributes
    ----------
    id : str
        Short identifier (``C5``, ``T3``, ``Z2``, ``S6``, ...).
    statement : str
        What the paper (or its reconstruction in docs/papers) claims, in one sentence.
    expected : str
        The stated value or expectation, with the criterion used for ``holds``.
    measured : str
        What netatlas measured: mean +- sd over seeds and [min, max] where there are several.
    holds : bool or None
        Whether the measurement agrees with the claim by the stated criterion; None: not measured.
    values : tuple of float
        The per-seed (or per-setting) numbers behind ``measured``.
    source : str
        The library functions the measurement comes from.
    note : str
        Evidence, caveats, and what netatlas adds beyond the paper.
    """

    id: str
    statement: str
    expected: str
    measured: str
    holds: bool | None
    values: tuple = ()
    source: str = ""
    note: str = ""

    def to_dict(self) -> dict:
        return {"id": self.id, "statement": self.statement, "expected": self.expected,
                "measured": self.measured, "holds": self.holds, "values": [_num(v) for v in self.values],
                "source": self.source, "note": self.note}

    def row(self) -> dict:
        """The report's table row."""
        verdict = {True: "yes", False: "NO", None: "not measured"}[self.holds]
        return {"id": self.id, "statement": self.statement, "expected": self.expected,
                "measured": self.measured, "holds": verdict}


def _num(v):
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    try:
        f = float(v)
    except (TypeError, ValueError):
        return v
    return f if math.isfinite(f) else None


def spread(values) -> dict:
    """Mean, sample standard deviation, min, max and count of the finite values.

    >>> spread([1.0, 2.0, 3.0, float("nan")])
    {'mean': 2.0, 'sd': 1.0, 'min': 1.0, 'max': 3.0, 'n': 3}
    """
    arr = np.asarray([v for v in values if v is not None], dtype=np.float64).ravel()
    arr = arr[np.isfinite(arr)]
    if arr.size == 0:
        return {"mean": float("nan"), "sd": float("nan"), "min": float("nan"), "max": float("nan"), "n": 0}
    return {"mean": float(arr.mean()), "sd": float(arr.std(ddof=1)) if arr.size > 1 else 0.0,
            "min": float(arr.min()), "max": float(arr.max()), "n": int(arr.size)}


def _g(x: float, digits: int) -> str:
    return "nan" if not math.isfinite(x) else f"{x:.{digits}g}"


def describe(values, *, digits: int = 4, unit: str = "") -> str:
    """``mean +- sd [min, max] (n)`` of per-seed values, or the single value.

    >>> describe([0.5, 0.7])
    '0.6 ± 0.1414 [0.5, 0.7] (n=2)'
    >>> describe([3.0], unit=" deg")
    '3 deg'
    """
    s = spread(values)
    if s["n"] == 0:
        return "no finite value"
    if s["n"] == 1:
        return f"{_g(s['mean'], digits)}{unit}"
    return (f"{_g(s['mean'], digits)} ± {_g(s['sd'], digits)} [{_g(s['min'], digits)}, "
            f"{_g(s['max'], digits)}]{unit} (n={s['n']})")


def not_measured(id: str, statement: str, expected: str, need: str) -> Claim:
    """A claim netatlas cannot measure yet because a lens lacks ``need``.

    >>> not_measured("X1", "s", "e", "foo in netatlas.bar").holds is None
    True
    """
    return Claim(id, statement, expected, f"not measured: needs {need}", None, note=f"needs {need}")


def all_true(flags: Sequence) -> bool:
    """True if every flag is true (and there is at least one).

    >>> all_true([True, np.True_]), all_true([])
    (True, False)
    """
    return len(flags) > 0 and all(bool(f) for f in flags)


@dataclass(frozen=True, eq=False)
class Reproduction:
    """The outcome of reproducing one paper.

    Attributes
    ----------
    paper : str
        ``vandenberg2016``, ``sahs2020``, ``zavatoneveth2023`` or ``shisher2022``.
    title : str
    claims : tuple of Claim
        In the order docs/papers/<paper>.md states them.
    settings : dict
        Seeds, quick/full and the experiment parameters.
    records : list of dict
        The sweep records (one per config) the claims were computed from.
    extras : dict
        Further numbers for the report (tables beyond the claims).
    added : tuple of str
        What netatlas adds beyond the paper.
    """

    paper: str
    title: str
    claims: tuple
    settings: dict
    records: list = field(repr=False)
    extras: dict = field(default_factory=dict, repr=False)
    added: tuple = ()

    @property
    def counts(self) -> dict:
        return {"n_claims": len(self.claims), "n_hold": sum(c.holds is True for c in self.claims),
                "n_fail": sum(c.holds is False for c in self.claims),
                "n_not_measured": sum(c.holds is None for c in self.claims)}

    def claim(self, id: str) -> Claim:
        for c in self.claims:
            if c.id == id:
                return c
        raise KeyError(f"Reproduction.claim: no claim {id!r}; have {[c.id for c in self.claims]}")

    def summary(self) -> dict:
        """The content of ``summary.json``."""
        return {"paper": self.paper, "title": self.title, **self.counts,
                "claims": [c.to_dict() for c in self.claims], "settings": self.settings,
                "added_by_netatlas": list(self.added), "extras": self.extras}

    def to_dict(self) -> dict:
        return {**self.summary(), "records": self.records}
