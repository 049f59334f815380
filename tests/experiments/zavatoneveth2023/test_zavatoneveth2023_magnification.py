"""Magnification experiments and the `netatlas magnify` commands (small, fast settings)."""

import json

import numpy as np
import pytest
import torch

import netatlas
from netatlas.experiments.zavatoneveth2023 import magnification_stats, small_cnn, toy_magnification
from netatlas.metric import grid_boundary_distance


def test_boundary_distance_circle():
    g = np.linspace(-1, 1, 301)
    us, vs = np.meshgrid(g, g)
    decision = us**2 + vs**2 - 0.5**2
    pts = np.array([[0.0, 0.0], [0.9, 0.0], [0.3, 0.4], [-0.6, -0.8]])
    np.testing.assert_allclose(grid_boundary_distance(decision, us, vs, pts), [0.5, 0.4, 0.0, 0.5], atol=2e-3)
    assert np.isnan(grid_boundary_distance(decision + 10, us, vs, pts)).all()


def test_magnification_stats_signs():
    rng = np.random.default_rng(0)
    d = rng.uniform(0, 1, 500)
    near_big = magnification_stats(-3 * d + 0.01 * rng.normal(size=500), d, 0.1)
    assert near_big["spearman"] < -0.9 and near_big["ratio"] > 1
    flat = magnification_stats(np.zeros(500), d, 0.1)
    assert flat["ratio"] == pytest.approx(1.0)
    far_big = magnification_stats(3 * d, d, 0.1)
    assert far_big["spearman"] > 0.9 and far_big["ratio"] < 1


def test_toy_magnification_small():
    result = toy_magnification(["xor4-250"], seeds=(0,), n_grid=12, n_fine=60, epochs_scale=0.2)
    (run,) = result.runs
    assert run.log_volume_before.shape == (12, 12) and np.isfinite(run.log_volume_after).all()
    assert run.train_accuracy == 1.0
    # the run's numbers are the metric lens applied to the trained model's features
    assert set(result.summary["xor4-250"]) >= {"ratio_before", "ratio_after", "spearman_after"}
    json.dumps(netatlas.report.to_jsonable(result))
    with pytest.raises(ValueError, match="unknown configs"):
        toy_magnification(["nope"])


def test_small_cnn_features_through_metric():
    model = small_cnn(0).eval()
    x = torch.rand(2, 1, 28, 28, dtype=torch.float64)
    ev = netatlas.metric.effective_volume((model, "6"), x)
    assert isinstance(ev, np.ndarray) and ev.shape == (2,) and np.isfinite(ev).all()
    J = netatlas.metric.jacobian((model, "6"), x)
    assert J.shape == (2, 64, 784)


def test_cli_toy_and_images(tmp_path):
    from typer.testing import CliRunner

    from netatlas.cli import app

    runner = CliRunner()
    res = runner.invoke(
        app,
        [
            "magnify",
            "toy",
            "--quick",
            "--configs",
            "xor4-250",
            "--n-grid",
            "10",
            "--out",
            str(tmp_path / "toy"),
        ],
    )
    assert res.exit_code == 0, res.output
    summary = json.loads((tmp_path / "toy" / "summary.json").read_text())
    assert "ratio_after" in summary["xor4-250"]
    assert (tmp_path / "toy" / "report.html").stat().st_size > 1000
    res = runner.invoke(
        app,
        [
            "magnify",
            "images",
            "--quick",
            "--width",
            "16",
            "--n-plane",
            "3",
            "--n-train",
            "300",
            "--out",
            str(tmp_path / "img"),
        ],
    )
    assert res.exit_code == 0, res.output
    summary = json.loads((tmp_path / "img" / "summary.json").read_text())
    assert len(summary) == 3 and (tmp_path / "img" / "anchors.png").exists()


def test_cli_rejects_unknown_config(capsys, tmp_path):
    from netatlas.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["magnify", "toy", "--configs", "bogus", "--out", str(tmp_path / "x")])
    assert exc.value.code == 2  # an option value that fails its check: a usage error
    assert "unknown --configs ['bogus']" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
