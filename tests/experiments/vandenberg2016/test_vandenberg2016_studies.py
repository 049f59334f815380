"""The experiments behind `netatlas dynamics scale|zones|prune`, on tiny settings."""

import json
import math

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import netatlas
from netatlas._threads import torch_threads
from netatlas.dynamics import (
    gradient_concentration,
    hyperplane_distances,
    per_sample_gradient_norms,
    scale_model,
    zone_width,
)
from netatlas.experiments.vandenberg2016 import (
    gradient_mass_table,
    run_scale,
    run_zones,
    scale_study,
    summarize_prune,
    zone_snapshots,
)


@pytest.fixture(autouse=True)
def _one_thread():
    # tiny nets: one intra-op thread is fastest, and much faster on a shared machine
    with torch_threads(1):
        yield


def test_gradient_mass_table_rows():
    table = gradient_mass_table((16.0, 1024.0), n_samples=500, n_seeds=3, seed=7)
    x = np.random.default_rng(7).uniform(-1, 1, (500, 2))
    z = 16.0 * x @ (np.array([1.0, 1.0]) / math.sqrt(2))
    s = 1 / (1 + np.exp(-z))
    assert table.measured[0, 0] == pytest.approx((s * (1 - s)).sum(), rel=1e-12)
    np.testing.assert_allclose(table.predicted, 500 / math.sqrt(2) / np.array([16.0, 1024.0]))
    assert table.expected[1] == pytest.approx(table.predicted[1], rel=0.01)
    assert table.expected[0] < table.predicted[0]  # the square's projected density peaks at 0
    rows = table.rows()
    assert [r["w_norm"] for r in rows] == [16.0, 1024.0] and rows[0]["measured_first_seed"] == table.measured[0, 0]
    with pytest.raises(ValueError, match="w_norms must be positive"):
        gradient_mass_table((0.0,))


def test_scale_model_keeps_hyperplanes_and_narrows_zones():
    model = netatlas.nets.mlp([2, 5, 2], "sigmoid", seed=0)
    x = torch.randn(7, 2, generator=torch.Generator().manual_seed(0))
    for layers in ("all", "first"):
        scaled = scale_model(model, 8.0, layers=layers)
        np.testing.assert_allclose(hyperplane_distances(scaled, x), hyperplane_distances(model, x), rtol=1e-5)
        w0 = torch.linalg.vector_norm(model[0].weight.detach(), dim=1).numpy()
        w1 = torch.linalg.vector_norm(scaled[0].weight.detach(), dim=1).numpy()
        np.testing.assert_allclose(zone_width(w1), zone_width(w0) / 8, rtol=1e-5)
        same_output_layer = torch.equal(scaled[2].weight, model[2].weight)
        assert same_output_layer == (layers == "first")
    with pytest.raises(ValueError, match="c must be positive"):
        scale_model(model, 0.0)


def test_scale_study_tiny():
    data = netatlas.data.moons(n=80, seed=0)
    study = scale_study(data, scales=(1.0, 64.0), epochs=30, init_epochs=4, decay_epochs=4, record_every=2,
                        weight_decays=(0.0, 0.1))
    np.testing.assert_allclose(study.static_zone_width * study.scales, study.static_zone_width[0], rtol=1e-5)
    np.testing.assert_allclose(study.static_w_norm / study.scales, study.static_w_norm[0], rtol=1e-5)
    assert study.static_concentration_first_layer[1] < study.static_concentration_first_layer[0]
    assert study.init_first_layer_change[1] < study.init_first_layer_change[0]
    assert study.init_concentration.shape == (2, 3) and study.decay_w_norm.shape == (2, 3)
    # at c = 64 the zones (~0.07 wide) are far narrower than the data: the C5 prediction holds per unit
    assert abs(study.mass_ratio()[1] - 1) < 0.35
    assert json.dumps(netatlas.report.to_jsonable(study.to_dict()))


def test_zone_snapshots_match_direct_gradients():
    data = netatlas.data.circles(n=60, seed=1)
    snaps = zone_snapshots(data, activation="tanh", epochs=9, n_snapshots=3)
    assert snaps.epochs.tolist() == [0, 2, 9]
    model = snaps.model(2)
    g = per_sample_gradient_norms(model, data.x, data.y).total
    np.testing.assert_allclose(snaps.grad_norms[2], g, rtol=1e-6)
    assert snaps.concentration[2] == gradient_concentration(g)
    with pytest.raises(ValueError, match="2-D inputs"):
        zone_snapshots(netatlas.data.digits(n=50, flatten=True))


def _record(method, seed, accuracy, fractions=(0.5,)):
    return {"status": "done", "result": {
        "dataset": "toy", "seed": seed, "method": method, "fractions": list(fractions),
        "test_accuracy": list(accuracy), "train_seconds": [0.1] * len(fractions), "score_seconds": 0.0,
        "full_test_accuracy": 0.9, "full_train_seconds": 0.2}}


def test_summarize_prune_paired_intervals():
    records = [_record("random", s, [0.5]) for s in range(3)]
    records += [_record("boundary", s, [0.5 + d]) for s, d in enumerate([0.1, 0.2, 0.3])]
    records += [_record("el2n", s, [0.5 + d]) for s, d in enumerate([0.30, 0.31, 0.32])]
    records.append({"status": "failed", "error": "boom"})
    study = summarize_prune(records)
    assert study.accuracy.shape == (1, 3, 3, 1)
    (row,) = study.paired("boundary", "random")
    half = 4.302652729911275 * 0.1 / math.sqrt(3)  # t_{0.975, 2} sd / sqrt(n)
    assert row["mean_difference"] == pytest.approx(0.2) and row["ci"] == pytest.approx(half)
    assert row["verdict"] == "no significant difference"
    (row,) = study.paired("el2n", "random")
    assert row["verdict"] == "better" and row["mean_difference"] == pytest.approx(0.31)
    (row,) = study.paired("boundary", "el2n")
    assert row["verdict"] == "worse" or row["ci"] > abs(row["mean_difference"])
    table = study.table()
    assert {r["method"] for r in table} == {"random", "boundary", "el2n"}
    with pytest.raises(ValueError, match="no finished configs"):
        summarize_prune([{"status": "failed"}])


def test_prune_cli_writes_report_and_resumes(tmp_path):
    from netatlas.cli import app

    out = tmp_path / "prune"
    args = ["dynamics", "prune", "--out", str(out), "--datasets", "moons", "--methods", "random,boundary,el2n",
            "--fractions", "0.2,0.6", "--seeds", "2", "--epochs", "3"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_seeds"] == 2 and summary["n_failed"] == 0
    assert set(summary["paired_vs_baselines"]["moons"]) == {"boundary_minus_random", "boundary_minus_el2n"}
    assert set(summary["accuracy_mean_ci"]["moons"]["random"]) == {"0.2", "0.6"}
    assert "beat random and EL2N" in (out / "report.html").read_text()
    done = sorted((out / "sweep" / "results").glob("*.json"))
    assert len(done) == 6
    stamps = [p.stat().st_mtime_ns for p in done]
    assert CliRunner().invoke(app, args).exit_code == 0  # resumes: nothing recomputed
    assert [p.stat().st_mtime_ns for p in done] == stamps


def test_prune_cli_errors():
    from netatlas.cli import main

    with pytest.raises(SystemExit) as info:
        main(["dynamics", "prune", "--quick", "--full"])
    assert info.value.code == 2  # conflicting options: a usage error
    with pytest.raises(SystemExit):
        main(["dynamics", "prune", "--methods", "loss", "--out", "/tmp/never-written-by-netatlas-tests"])


@pytest.mark.slow  # one of the suite's slowest (--durations, > 15 s on one core)
def test_run_scale_and_zones_write_reports(tmp_path):
    run = run_scale(tmp_path / "scale", mode="quick", n_seeds=2, n=60, epochs=5, init_epochs=2, decay_epochs=2,
                    record_every=1, scales=(1.0, 8.0))
    summary = json.loads(run.file("summary.json").read_text())
    assert len(summary["c5_table"]) == 4 and set(summary["concentration_vs_scale"]) == {"1", "8"}
    assert run.file("c5_table.png").exists() and run.file("report.html").exists()
    run = run_zones(tmp_path / "zones", activations=("sigmoid", "relu"), mode="quick", n=40, epochs=3,
                    n_snapshots=2)
    summary = json.loads(run.file("summary.json").read_text())
    assert set(summary) == {"sigmoid", "relu"} and summary["relu"]["epochs"] == [0, 3]
    assert run.file("zones_relu.png").exists()
    with pytest.raises(TypeError, match="unknown settings"):
        run_zones(tmp_path / "z2", bogus=1)
