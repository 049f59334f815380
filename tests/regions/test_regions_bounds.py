"""Bounds on region counts: check values of docs/papers/vandenberg2016.md, the recursion against brute force,
Zaslavsky."""

from math import comb

import pytest

from netatlas.regions import bounds


def test_check_values_from_papers():
    assert bounds.montufar2014_lower(2, [4, 4]) == 44
    assert bounds.serra2018_upper(2, [4, 4]) == 121
    assert bounds.montufar2017_upper(2, [4, 4]) == 121
    # The "Serra LB 99" of docs/papers/vandenberg2016.md is Serra et al.'s lower-bound formula (their Theorem 9 assumes
    # n_l >= 3 n0, which [4, 4] violates): (floor(4/2) + 1)^2 * (1 + 4 + 6) = 99
    assert bounds.serra2018_lower(2, [4, 4]) == 99


@pytest.mark.parametrize("n0,widths", [(1, [3, 5]), (2, [4, 4]), (2, [3, 6, 2]), (3, [5, 4, 6]),
                                       (2, [1, 5]), (4, [3, 3])])
def test_serra_recursion_matches_brute_force(n0, widths):
    assert bounds.serra2018_upper(n0, widths) == bounds._serra_brute(n0, widths)
    assert bounds.serra2018_upper(n0, widths) <= bounds.montufar2017_upper(n0, widths)


def test_one_dimensional_input_is_exact_product():
    assert bounds.serra2018_upper(1, [3, 5, 2]) == 4 * 6 * 3


def test_zaslavsky():
    assert bounds.zaslavsky(8, 2) == 37 and bounds.zaslavsky(8, 2, bounded=True) == comb(7, 2)
    assert bounds.zaslavsky(3, 3) == 8 and bounds.zaslavsky(2, 3, bounded=True) == 0
    assert bounds.zaslavsky(0, 2) == 1
    assert bounds.serra2018_upper(2, [8]) == bounds.zaslavsky(8, 2)


def test_validation_messages():
    with pytest.raises(ValueError, match="widths must be a non-empty list"):
        bounds.serra2018_upper(2, [])
    with pytest.raises(ValueError, match="n0 .input dimension. must be an int >= 1"):
        bounds.montufar2014_lower(0, [3])
    with pytest.raises(ValueError, match="zaslavsky: need ints"):
        bounds.zaslavsky(-1, 2)
    assert set(bounds.all_bounds(2, [4, 4])) >= {"serra2018_upper", "montufar2014_lower"}


def test_public_api_is_complete():
    import netatlas.regions as R

    for name in R.__all__:
        assert hasattr(R, name), name
    for name in ("partition", "Partition", "along_line", "bounds", "plot_partition", "decision_boundary"):
        assert name in R.__all__
