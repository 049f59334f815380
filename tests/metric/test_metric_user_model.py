"""metric_map and the commands on the user's own model file: `netatlas metric MODEL`, `netatlas magnify model`."""

import json
import math

import numpy as np
import pytest
import torch
import typer
from click.testing import CliRunner
from torch import nn

import netatlas
from netatlas.metric import effective_volume, metric_map


def _app():
    """The metric commands as the root CLI builds them (--through takes the integers after it)."""
    from netatlas._options import greedy_index_options
    from netatlas.metric._cli import register

    app = typer.Typer()
    app.callback()(lambda: None)
    register(app)
    command = typer.main.get_command(app)
    greedy_index_options(command)
    return command


@pytest.fixture(scope="module")
def moons_model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("model")
    model = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 16), nn.Tanh(), nn.Linear(16, 2))
    torch.manual_seed(0)
    data = netatlas.data.moons(n=200, seed=0)
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(100):
        opt.zero_grad()
        nn.functional.cross_entropy(model(data.x), data.y).backward()
        opt.step()
    path = folder / "moons.pt2"
    netatlas.nets.save(model, path, input_shape=(2,))
    csv = folder / "points.csv"
    rows = [f"{a:.6f},{b:.6f},{int(c)}" for (a, b), c in zip(data.x_test.tolist(), data.y_test.tolist(), strict=True)]
    csv.write_text("x1,x2,label\n" + "\n".join(rows) + "\n")
    return path, csv, model.double(), data


def test_metric_map_matches_effective_volume_and_reports_entropy(moons_model):
    path, _, model, data = moons_model
    net = netatlas.nets.load(path)
    x = data.x_test.double()
    result = metric_map(net, layer="3", points=x, labels=data.y_test.numpy(), plane=netatlas.Plane.square(2.0), grid=7)
    np.testing.assert_allclose(result.point_values, effective_volume((model, "3"), x), rtol=1e-7, atol=1e-7)
    assert result.plane_values.shape == (7, 7) and np.isfinite(result.plane_values).all()
    summary = result.summary()
    assert summary["points"]["n"] == len(x) and -1 <= summary["points"]["spearman_with_entropy"] <= 1
    assert set(summary["points"]["mean_by_label"]) == {"0", "1"}
    assert "mean_at_class_change" in summary["plane"]
    json.dumps(summary)  # JSON-safe


def test_metric_map_rejects_bad_input(moons_model):
    net = netatlas.nets.load(moons_model[0])
    with pytest.raises(ValueError, match="give data points, a plane"):
        metric_map(net)
    with pytest.raises(ValueError, match="the points have 3 values each"):
        metric_map(net, points=np.zeros((2, 3)))
    with pytest.raises(ValueError, match="quantity must be one of"):
        metric_map(net, points=np.zeros((2, 2)), quantity="area")


def test_metric_command_on_a_model_file_and_a_csv(moons_model, tmp_path):
    path, csv, model, data = moons_model
    runner = CliRunner()
    res = runner.invoke(_app(), ["metric", str(path), "--layer", "3", "--data", str(csv), "--plane", "square:2",
                                 "--grid", "6", "--out", str(tmp_path / "run")])
    assert res.exit_code == 0, res.output
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    expected = effective_volume((model, "3"), data.x_test.double())
    assert summary["points"]["n"] == len(expected)
    assert math.isclose(summary["points"]["median"], float(np.median(expected)), rel_tol=0, abs_tol=1e-4)
    assert summary["plane"]["grid"] == [6, 6]
    for name in ("plane.png", "points.png", "plane.npz", "points.npz", "report.html"):
        assert (tmp_path / "run" / name).exists(), name


def test_magnify_model_through_three_points(moons_model, tmp_path):
    path, csv, _, _ = moons_model
    res = CliRunner().invoke(_app(), ["magnify", "model", str(path), "--layer", "3", "--data", str(csv),
                                      "--through", "0", "1", "2", "--grid", "5", "--out", str(tmp_path / "m")])
    assert res.exit_code == 0, res.output
    summary = json.loads((tmp_path / "m" / "summary.json").read_text())
    assert summary["command"] == "magnify model" and summary["plane"]["n"] == 25
    assert summary["plane"]["quantity"] == "plane" and summary["quantity"] == "effective"  # the defaults
    arrays = np.load(tmp_path / "m" / "plane.npz")
    assert arrays["values"].shape == (5, 5) and arrays["predicted"].shape == (5, 5)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--through", "0", "1", "2"], "give --data too"),
        (["--plane", "disc:3"], "--plane must be 'square:SIZE'"),
        (["--data", "nonsense"], "neither a data file"),
        (["--quantity", "area"], "--quantity must be one of"),
    ],
)
def test_metric_command_errors_are_one_line_and_leave_no_run(moons_model, tmp_path, args, message):
    res = CliRunner().invoke(_app(), ["metric", str(moons_model[0]), *args, "--out", str(tmp_path / "r")])
    assert res.exit_code != 0
    assert message in str(res.exception)
    assert not (tmp_path / "r").exists()


@pytest.fixture(scope="module")
def relu_model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("relu")
    model = netatlas.nets.mlp([2, 8, 8, 3], "relu", seed=0)
    path = folder / "relu.pt2"
    netatlas.nets.save(model, path, input_shape=(2,))
    return path


def test_metric_command_draws_the_in_plane_metric_over_exact_regions(relu_model, tmp_path):
    res = CliRunner().invoke(_app(), ["metric", str(relu_model), "--layer", "3", "--plane", "square:1.5", "--grid",
                                      "12", "--out", str(tmp_path / "run")])
    assert res.exit_code == 0, res.output
    assert "exact linear regions" in res.output and "144 of 144 values finite" in res.output
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["plane"]["quantity"] == "plane" and summary["plane"]["n_regions"] > 1
    arrays = np.load(tmp_path / "run" / "plane.npz")
    assert arrays["region_values"].shape == (summary["plane"]["n_regions"],)
    # the per-region values read off at the grid equal the in-plane metric evaluated at each grid point
    net = netatlas.nets.load(relu_model)
    direct = metric_map(net, layer="3", plane=netatlas.Plane.square(1.5), grid=12, regions=False)
    np.testing.assert_allclose(arrays["values"], direct.plane_values, rtol=0, atol=1e-10)
    assert (tmp_path / "run" / "plane.png").stat().st_size > 0


def test_metric_command_full_volume_of_a_bottleneck_says_so_once(tmp_path):
    model = nn.Sequential(nn.Linear(3, 1), nn.ReLU(), nn.Linear(1, 4), nn.ReLU())
    path = tmp_path / "bottleneck.pt2"
    netatlas.nets.save(model, path, input_shape=(3,))
    res = CliRunner().invoke(_app(), ["metric", str(path), "--plane", "square:1", "--grid", "8", "--quantity",
                                      "effective", "--out", str(tmp_path / "run")])
    assert res.exit_code == 0, res.output
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert len(summary["warnings"]) == 1 and "at every point" in summary["warnings"][0]
    assert summary["plane"]["n_finite"] == 0 and summary["plane"]["median"] is None
    assert "0 of 64 values finite" in res.output
