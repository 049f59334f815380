"""Counts and bounds on the number of linear regions of ReLU networks.

n0 is the input dimension and ``widths`` the hidden widths n_1..n_L (output layer excluded: it is
affine and does not split regions). All functions return exact Python integers.

Check values (n0 = 2, widths [4, 4]): ``montufar2014_lower`` 44, ``serra2018_upper`` 121,
``montufar2017_upper`` 121, ``serra2018_lower`` 99.

>>> zaslavsky(3, 2), zaslavsky(3, 2, bounded=True)
(7, 1)
>>> montufar2014_lower(2, [4, 4]), serra2018_lower(2, [4, 4]), serra2018_upper(2, [4, 4])
(44, 99, 121)
"""

from __future__ import annotations

import itertools
from math import comb, prod

__all__ = ["zaslavsky", "serra2018_upper", "serra2018_lower", "montufar2017_upper", "montufar2014_lower",
           "all_bounds"]


def _check(n0, widths, where):
    if not isinstance(n0, int) or n0 < 1:
        raise ValueError(f"{where}: n0 (input dimension) must be an int >= 1; got {n0!r}")
    widths = list(widths)
    if not widths or not all(isinstance(w, int) and w >= 1 for w in widths):
        raise ValueError(f"{where}: widths must be a non-empty list of ints >= 1 (hidden layers only); "
                         f"got {widths!r}")
    return widths


def zaslavsky(n: int, d: int, *, bounded: bool = False) -> int:
    """Regions cut by n hyperplanes in general position in R^d (Zaslavsky 1975).

    All regions: ``sum_{i=0..d} C(n, i)``; bounded ones: ``C(n - 1, d)`` (0 when n <= d).

    >>> zaslavsky(8, 2), zaslavsky(8, 2, bounded=True)
    (37, 21)
    """
    if not (isinstance(n, int) and isinstance(d, int) and n >= 0 and d >= 1):
        raise ValueError(f"zaslavsky: need ints n >= 0 and d >= 1; got n={n!r}, d={d!r}")
    if bounded:
        return comb(n - 1, d) if n >= 1 else 0
    return sum(comb(n, i) for i in range(d + 1))


def serra2018_upper(n0: int, widths) -> int:
    """Serra, Tjandraatmadja & Ramalingam (2018), Theorem 1: the sum over (j_1..j_L) in J of
    ``prod_l C(n_l, j_l)``, J = {0 <= j_l <= min(n0, n_1 - j_1, ..., n_{l-1} - j_{l-1}, n_l)}.
    Exact for n0 = 1: ``prod (n_l + 1)``.

    >>> serra2018_upper(1, [3, 5])
    24
    """
    widths = _check(n0, widths, "serra2018_upper")

    def rec(level, cap):
        if level == len(widths):
            return 1
        n = widths[level]
        total = 0
        for j in range(min(cap, n) + 1):
            # the dimension left after this layer is capped by n_l - j_l
            total += comb(n, j) * rec(level + 1, min(cap, n - j))
        return total

    return rec(0, n0)


def serra2018_lower(n0: int, widths) -> int:
    """Serra et al. (2018), Theorem 9 (lower bound on the *maximal* count):
    ``prod_{l<L} (floor(n_l / n0) + 1)^n0 * sum_{j=0..n0} C(n_L, j)``.

    The theorem assumes n_l >= 3 n0 for every layer; the formula is returned for any widths (for
    [4, 4] with n0 = 2 it gives 99, the "Serra LB" of docs/papers/vandenberg2016.md, although 4 < 6 = 3 n0).
    """
    widths = _check(n0, widths, "serra2018_lower")
    return prod((n // n0 + 1) ** n0 for n in widths[:-1]) * sum(comb(widths[-1], j) for j in range(n0 + 1))


def montufar2017_upper(n0: int, widths) -> int:
    """Montufar (2017): ``prod_l sum_{j=0..d_l} C(n_l, j)``, d_l = min(n0, n_1, ..., n_l)."""
    widths = _check(n0, widths, "montufar2017_upper")
    out, d = 1, n0
    for n in widths:
        d = min(d, n)
        out *= sum(comb(n, j) for j in range(d + 1))
    return out


def montufar2014_lower(n0: int, widths) -> int:
    """Montufar, Pascanu, Cho & Bengio (2014) lower bound on the maximal count:
    ``prod_{l<L} floor(n_l / n0)^n0 * sum_{j=0..n0} C(n_L, j)`` (meaningful for n_l >= n0)."""
    widths = _check(n0, widths, "montufar2014_lower")
    return prod((n // n0) ** n0 for n in widths[:-1]) * sum(comb(widths[-1], j) for j in range(n0 + 1))


def all_bounds(n0: int, widths) -> dict:
    """Every bound above in one dict (for reports), plus the trivial ``2 ** sum(widths)``.

    >>> all_bounds(2, [4, 4])["serra2018_upper"]
    121
    """
    widths = _check(n0, widths, "all_bounds")
    return {
        "montufar2014_lower": montufar2014_lower(n0, widths),
        "serra2018_lower": serra2018_lower(n0, widths),
        "serra2018_upper": serra2018_upper(n0, widths),
        "montufar2017_upper": montufar2017_upper(n0, widths),
        "trivial_upper": 2 ** sum(widths),
        "first_layer_zaslavsky": zaslavsky(widths[0], n0),
    }


def _serra_brute(n0, widths):
    # Direct enumeration of J, for tests of the recursion above.
    total = 0
    for js in itertools.product(*[range(n + 1) for n in widths]):
        ok, cap = True, n0
        for j, n in zip(js, widths, strict=True):
            if j > min(cap, n):
                ok = False
                break
            cap = min(cap, n - j)
        if ok:
            total += prod(comb(n, j) for j, n in zip(js, widths, strict=True))
    return total
