"""`netatlas regions` on a CNN with max pooling through three digits: zoom, limits, and the bounds note."""

import json

import numpy as np
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
    assert len(err) == 1 and "RegionLimitError" in err[0] and "--max-regions 5" in err[0]
    assert "--zoom" in err[0] and "Plane bounds" not in err[0]  # the CLI names its own options


def test_zoom_around_the_boundary_holds_two_classes(tmp_path):
    from netatlas.regions._cli import parse_plane, zoomed

    for seed in range(20):  # a seeded net whose class differs at A and B
        torch.manual_seed(seed)
        net = netatlas.nets.from_torch(nn.Sequential(nn.Flatten(), nn.Linear(64, 8), nn.ReLU(), nn.Linear(8, 3)))
        full = parse_plane(net, None, [0, 1, 2], "digits")
        a, b = full.to_input(full.anchors[:2])
        ends = net(np.stack([a, b])).argmax(1)
        if ends[0] != ends[1]:
            break
    assert ends[0] != ends[1]
    window = zoomed(full, 0.02, "boundary", net)
    assert len(partition(net, window).decision_boundary()) > 0
    with pytest.raises(ValueError, match="--around"):
        zoomed(full, 0.5, "AD")
