"""Validation of settings and CSV uploads (no server)."""

import math

import pytest

from netatlas.app import DEFAULT_CONFIG, LIMITS, ConfigError, parse_csv, validate_config, validate_view
from netatlas.nets import ACTIVATIONS


def test_defaults_round_trip():
    assert validate_config({}) == {k: v for k, v in DEFAULT_CONFIG.items()}


@pytest.mark.parametrize(("settings", "field", "pattern"), [
    ({"n": 10**9}, "n", r"n: 1000000000 is outside the accepted range \[4, 5000\]"),
    ({"n": "abc"}, "n", "expected a number"),
    ({"lr": float("nan")}, "lr", "finite"),
    ({"lr": "inf"}, "lr", "finite"),
    ({"noise": -1}, "noise", "outside"),
    ({"depth": 2.5}, "depth", "whole number"),
    ({"activation": "swish"}, "activation", "choose one of " + ", ".join(ACTIVATIONS)),  # the registry's list
    ({"widths": [100000, 2]}, "widths", "outside"),
    ({"depth": 6, "widths": [256] * 6}, "widths", "parameters, above the limit"),
    ({"bogus": 1}, "bogus", "unknown setting"),
    ({"seed": True}, "seed", "expected a number"),
])
def test_bad_settings_name_the_field(settings, field, pattern):
    with pytest.raises(ConfigError, match=pattern) as info:
        validate_config(settings)
    assert info.value.field == field


def test_widths_follow_depth():
    assert validate_config({"depth": 3, "widths": "8,4"})["widths"] == [8, 4, 4]
    assert validate_config({"depth": 1, "widths": [8, 4]})["widths"] == [8]
    assert validate_config({"depth": 0})["widths"] == []


def test_view_validation():
    assert validate_view({})["heatmap"] == "confidence"
    with pytest.raises(ConfigError, match="unknown option"):
        validate_view({"nope": 1})
    with pytest.raises(ConfigError, match="subsample_fraction"):
        validate_view({"subsample_fraction": 0})


def test_csv_happy_path_with_header_and_string_labels():
    data = parse_csv("x1,x2,label\n0,1,cat\n1.5,-2e-3,dog\n# comment\n\n3;4;cat\n")
    assert data.x == [[0.0, 1.0], [1.5, -0.002], [3.0, 4.0]]
    assert data.y == [0, 1, 0] and data.n_classes == 2 and data.labels == ["cat", "dog"]


def test_csv_numeric_labels_sort_numerically():
    assert parse_csv("0,0,10\n1,1,2\n2,2,10\n").labels == ["2", "10"]


@pytest.mark.parametrize(("text", "pattern"), [
    ("", "no data rows"),
    ("x1,x2,label\n", "no data rows"),
    ("0,1\n", "expected 3 columns"),
    ("0,1,a\n1,abc,b\n", "line 2: 'abc' is not a finite number"),
    ("0,1,a\n1,nan,b\n", "'nan' is not a finite number"),
    ("0,1,a\n1,inf,b\n", "not a finite number"),
    ("0,1,a\n1,1e300,b\n", "larger in magnitude"),
    ("0,1,a\n1,2,a\n", "only one label"),
    ("".join(f"{i},{i},{i}\n" for i in range(11)), "11 distinct labels; at most 10"),
    ("0,1,\n1,1,a\n", "label is empty"),
])
def test_bad_csv(text, pattern):
    with pytest.raises(ConfigError, match=pattern) as info:
        parse_csv(text)
    assert info.value.field == "upload"


def test_csv_limits():
    rows = "".join(f"{i % 7},{i % 5},{i % 2}\n" for i in range(LIMITS["csv_rows"] + 1))
    with pytest.raises(ConfigError, match="above the limit of 5,000"):
        parse_csv(rows)
    with pytest.raises(ConfigError, match="larger than the limit"):
        parse_csv("0,0,0\n" * (LIMITS["csv_bytes"] // 6 + 10))
    assert not math.isnan(parse_csv("0,0,0\n1,1,1\n").x[1][0])
