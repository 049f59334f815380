"""Spearman against scipy, bootstrap intervals on known cases."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import spearmanr

from netatlas.experiments.zavatoneveth2023.ssl import bootstrap_mean_ci, spearman


@given(seed=st.integers(0, 10_000), n=st.integers(3, 40), ties=st.booleans())
@settings(max_examples=30, deadline=None)
def test_spearman_matches_scipy(seed, n, ties):
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=n), rng.normal(size=n)
    if ties:
        a, b = np.round(a), np.round(b)
    expected = spearmanr(a, b).statistic
    got = spearman(a, b)
    if np.isnan(expected):
        assert np.isnan(got)
    else:
        assert got == pytest.approx(expected, abs=1e-12)


def test_spearman_degenerate_and_monotone():
    assert np.isnan(spearman([1.0, 2.0], [2.0, 1.0]))  # fewer than 3 points
    assert np.isnan(spearman([1.0, 1.0, 1.0, 1.0], [1.0, 2.0, 3.0, 4.0]))
    x = np.linspace(0, 1, 20)
    assert spearman(x, np.exp(5 * x)) == pytest.approx(1.0)
    assert spearman(x, -x**3) == pytest.approx(-1.0)
    assert spearman([1, 2, np.nan, 4, 5], [1, 2, 3, 4, 5]) == pytest.approx(1.0)  # NaN pairs dropped
    with pytest.raises(ValueError, match="one length"):
        spearman([1, 2, 3], [1, 2])


def test_bootstrap_constant_and_coverage():
    mean, low, high = bootstrap_mean_ci(np.full((3, 5), 0.4), n_boot=200)
    assert mean == low == high == pytest.approx(0.4)
    # the interval for a mean of 200 normal draws covers the true mean and has about the normal width
    values = np.random.default_rng(1).normal(0.3, 1.0, size=(1, 200))
    mean, low, high = bootstrap_mean_ci(values, n_boot=4000)
    assert low < 0.3 < high
    assert high - low == pytest.approx(2 * 1.96 / np.sqrt(200), rel=0.2)
    # seeds are the outer level: a seed offset widens the interval beyond the within-seed spread
    shifted = np.random.default_rng(2).normal(size=(4, 50)) * 0.01 + np.array([[0.0], [1.0], [0.0], [1.0]])
    _, low, high = bootstrap_mean_ci(shifted, n_boot=2000)
    assert high - low > 0.3
    with pytest.raises(ValueError, match="level must be in"):
        bootstrap_mean_ci(values, level=1.5)
