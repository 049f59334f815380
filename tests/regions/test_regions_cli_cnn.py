"""`netatlas regions` on a CNN with max pooling through three digits: zoom, limits, and the bounds note."""

import json

import pytest
import torch
from torch import nn

import netatlas
from netatlas.regions import partition


def _cnn(tmp_path, pool=True):
    torch.manual_seed(0)
    layers = [nn.Conv2d(1, 2, 3, padding=1), nn.ReLU()]
    layers += [nn.MaxPool2d(2)] if pool else [nn.AvgPool2d(2)]
    model = nn.Sequential(*layers, nn.Flatten(), nn.Linear(2 * 4 * 4, 10)).eval()
    path = tmp_path / "cnn.pt2"
    netatlas.nets.save(model, path, input_shape=(1, 8, 8))
    return path


def _run(args):
    from netatlas.cli import main

    try:
        main(args)
    except SystemExit as exc:
        assert exc.code in (0, None)


@pytest.mark.parametrize("pool", [True, False])
def test_cli_cnn_through_three_digits_with_zoom(tmp_path, pool):
    path = _cnn(tmp_path, pool)
    out = tmp_path / "run"
    _run(["regions", str(path), "--data", "digits", "--through", "0", "--through", "1", "--through", "2",
          "--zoom", "0.5", "--out", str(out)])
    summary = json.loads((out / "summary.json").read_text())
    net = netatlas.nets.load(path)
    from netatlas.regions._cli import parse_plane, zoomed

    plane = zoomed(parse_plane(net, None, [0, 1, 2], "digits"), 0.5)
    assert summary["num_regions"] == partition(net, plane).num_regions
    assert abs(summary["area"] - plane.area) <= 1e-9 * plane.area
    if pool:
        assert "max pooling" in summary["bounds_note"]
        assert set(summary["bounds"]) == {"distinct_states_upper_log10"}
    else:
        assert "lower bounds" in summary["bounds_note"] and "serra2018_lower" not in summary["bounds"]
        assert summary["bounds"]["serra2018_upper"] >= summary["num_regions"]


def test_cli_max_regions_is_a_one_line_error(tmp_path, capsys):
    from netatlas.cli import main

    path = _cnn(tmp_path)
    with pytest.raises(SystemExit) as exc:
        main(["regions", str(path), "--data", "digits", "--through", "0", "--through", "1", "--through", "2",
              "--max-regions", "5", "--out", str(tmp_path / "r")])
    assert exc.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "RegionLimitError" in err[0] and "max_regions=5" in err[0]
