"""The validation sweep, the analysis of classifiers, and the CLI commands, on small settings."""

import json

import numpy as np
import pytest
import torch
from torch import nn

import netatlas.experiments.shisher2022 as shisher
import netatlas.lowrank as lr
from netatlas.cli import main

SMALL = dict(n_x=8, n_y=5, k=1, eps_fractions=(1e-3, 1e-2, 1e-1, 0.9), seeds=(0,), hidden_m=3, hidden_k=2,
             activations=("tanh",), n_dirichlet=1, n_samples=200_000)


@pytest.fixture(scope="module")
def small_result():
    return shisher.validate(shisher.ValidationConfig(**SMALL))


def test_validate_slopes_and_controls(small_result):
    s = small_result.summary
    assert len(s["eps"]) == len(s["product_error"]) == 4
    assert 0.85 < s["slope"] < 1.15  # error linear in eps in the local range
    slopes = s["slopes"]
    assert 0.85 < slopes["hidden_tanh"]["product_error"] < 1.15
    assert slopes["hidden_relu"]["product_error"] < 0.5  # the negative control does not follow the theory
    assert max(s["product_error_mmse"]) < 1e-6  # MMSE: exact at every eps
    # the error grows outside the local range and the Dirichlet joints are far off
    assert s["product_error"][-1] > s["product_error"][0] * 100
    assert min(s["dirichlet_softmax"]["product_error"]) > 0.1
    assert min(s["dirichlet_softmax"]["chi2_radius"]) > 0.5
    assert s["all_converged"]
    json.dumps(small_result.to_dict(), default=float)  # JSON-able


def test_validate_rows_are_consistent(small_result):
    soft = small_result.experiment("softmax")
    exact = small_result.experiment("softmax_exact")
    for a, b in zip(soft, exact, strict=True):
        # random init reaches the exact optimum (global, in the local range)
        assert a["product_error"] == pytest.approx(b["product_error"], rel=1e-4)
        assert b["network_vs_exact"] < 1e-5
    for row in small_result.experiment("softmax_sampled"):
        assert row["sampling_radius"] > 0
    lbfgs = small_result.experiment("softmax_lbfgs")
    assert [r["eps_fraction"] for r in lbfgs] == [0.9]
    assert lbfgs[0]["vs_newton"] < 1e-4  # the standard first-order optimiser finds the same layer


@pytest.mark.parametrize("overrides, match", [
    (dict(eps_fractions=(0.01, 0.1, 0.5)), "two decades"),
    (dict(k=4), "1 <= k <= min"),
    (dict(eps_fractions=(1e-3, 1e-2, 1.5)), r"in \(0, 1\]"),
    (dict(seeds=()), "seeds must not be empty"),
])
def test_validate_config_errors(overrides, match):
    with pytest.raises(ValueError, match=match):
        shisher.ValidationConfig(**{**SMALL, **overrides}).check()


def test_fit_slope():
    assert lr.fit_slope([1, 10, 100], [3, 30, 300]) == pytest.approx(1.0)
    assert np.isnan(lr.fit_slope([1, 10], [0, -1]))


def run_cli(argv):
    """Run the CLI; returns its exit code (0 when main returns normally)."""
    try:
        main(argv)
    except SystemExit as exc:
        return exc.code or 0
    return 0


@pytest.mark.slow  # one of the suite's slowest (--durations, > 15 s on one core)
def test_cli_validate_writes_the_run_directory(tmp_path):
    out = tmp_path / "v"
    assert run_cli(["lowrank", "validate", "--out", str(out), "--n-x", "8", "--n-y", "5", "--k", "1",
                    "--eps-fractions", "0.001,0.01,0.1", "--seeds", "0", "--n-samples", "100000"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert {"eps", "product_error", "slope"} <= set(summary)
    assert len(summary["eps"]) == 3 and 0.8 < summary["slope"] < 1.2
    html = (out / "report.html").read_text()
    assert "product_error" in html and "data:image/png;base64" in html


def test_cli_validate_bad_option_is_one_line(tmp_path, capsys):
    argv = ["lowrank", "validate", "--out", str(tmp_path / "x"), "--eps-fractions", "0.1,0.2,0.3"]
    assert run_cli(argv) == 2  # an option value that fails its check is a usage error (exit 2)
    assert "ValueError: validate: eps_fractions must span at least two decades" in capsys.readouterr().err


# -- analysis of classifiers ----------------------------------------------------------------------
def _theory_model(seed=0):
    """Inputs = 6 well-separated cluster centres with label frequencies from a local joint, and a
    network whose last layer is exactly the theory's optimum on those clusters."""
    j = lr.local_joint(6, 4, k=2, eps_fraction=0.5, seed=seed)
    counts = np.round(j.p_xy * 6000).astype(int)
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(6, 8)) * 20
    xs, ys = [], []
    for cx in range(6):
        for cy in range(4):
            xs += [centres[cx]] * counts[cx, cy]
            ys += [cy] * counts[cx, cy]
    x = np.array(xs)
    y = np.array(ys)
    p_emp = counts / counts.sum()
    opt = lr.optimal_softmax_layer(p_emp, 2)
    design = np.column_stack([centres, np.ones(6)])
    sol = np.linalg.lstsq(design, opt.features, rcond=None)[0]  # exact: 6 points in 9 dims
    model = nn.Sequential(nn.Linear(8, 2), nn.Linear(2, 4)).double()
    with torch.no_grad():
        model[0].weight.copy_(torch.from_numpy(sol[:8].T.copy()))
        model[0].bias.copy_(torch.from_numpy(sol[8].copy()))
        model[1].weight.copy_(torch.from_numpy(opt.weights))
        model[1].bias.copy_(torch.from_numpy(opt.bias))
    return model, x, y, p_emp


def test_analysis_recovers_a_model_built_from_the_theory():
    model, x, y, p_emp = _theory_model()
    data = lr.discretize(x, y, 6, seed=0)
    # clusters are found exactly (up to order): same joint up to a row permutation
    assert sorted(map(tuple, np.round(data.p_xy, 12))) == sorted(map(tuple, np.round(p_emp, 12)))
    result = lr.analyze_snapshots(model, [(0, model.state_dict())], x, y, data=data, layer="0")
    last = result.snapshots[0]["last"]
    assert last["product_error"] < 1e-8
    assert last["max_feature_angle"] < 1e-4
    assert last["h_score_ratio"] == pytest.approx(1.0, abs=1e-8)
    assert result.snapshots[0]["within_cluster_fraction"] == pytest.approx(0.0, abs=1e-12)
    hidden = result.snapshots[0]["hidden"]
    assert hidden["h_score_ratio"] == pytest.approx(1.0, abs=1e-8) and hidden["layer"] == "0"
    # a perturbed last layer is seen as such
    with torch.no_grad():
        noise = torch.randn(4, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
        model[1].weight.add_(0.5 * noise)
    worse = lr.analyze_snapshots(model, [(0, model.state_dict())], x, y, data=data)
    assert worse.snapshots[0]["last"]["product_error"] > 0.05


def test_layer_name_errors():
    model, x, y, _ = _theory_model()
    with pytest.raises(ValueError, match="no layer named 'fc9'"):
        lr.analyze_snapshots(model, [(0, model.state_dict())], x, y, n_clusters=6, layer="fc9")


def test_cli_analyze_train_on_digits(tmp_path):
    out = tmp_path / "a"
    assert run_cli(["lowrank", "analyze", "--train", "--data", "digits", "--n", "300", "--clusters", "12",
                    "--epochs", "5", "--snapshots", "3", "--width", "16", "--layer", "1",
                    "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"][0] == 0 and summary["steps"][-1] == 5
    assert summary["chi2_radius_max"] > 1  # real clusters are far from independence: reported
    assert len(summary["product_error"]) == len(summary["steps"])
    assert (out / "model.pt").exists() and (out / "report.html").exists()
    # the saved model can be analysed again from the file
    out2 = tmp_path / "b"
    assert run_cli(["lowrank", "analyze", str(out / "model.pt"), "--data", "digits", "--n", "300",
                    "--clusters", "12", "--out", str(out2)]) == 0
    again = json.loads((out2 / "summary.json").read_text())
    assert again["product_error"][0] == pytest.approx(summary["product_error"][-1], rel=1e-6)
