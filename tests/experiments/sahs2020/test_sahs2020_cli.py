"""`netatlas splines regimes|watch`, the regime study and its kernel limit (Sahs et al.; small and fast)."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from netatlas.cli import app
from netatlas.experiments.sahs2020 import (
    kernel_limit,
    linear_interpolant,
    natural_cubic_spline,
    regime_data,
    regime_init,
    regime_run,
)
from netatlas.splines import init_scheme, render_flow_video, sample_init, simulate_flow


def test_kernel_limit_approaches_the_natural_cubic_spline():
    x, y = regime_data(8)
    grid = np.linspace(-1, 1, 801)
    cubic, linear = natural_cubic_spline(x, y)(grid), linear_interpolant(x, y)(grid)
    dist = [np.max(np.abs(kernel_limit(x, y, h, spacing="random", seed=1)(grid) - cubic)) for h in (50, 500, 5000)]
    assert dist[0] > dist[1] > dist[2] and dist[2] < 0.02
    assert np.max(np.abs(cubic - linear)) > 0.1
    fit = kernel_limit(x, y, 500)
    assert np.max(np.abs(fit(x) - y)) < 1e-9


def test_regime_init_is_symmetric():
    p = regime_init(10, scale=0.5, ratio=4.0)
    assert np.max(np.abs(p(np.linspace(-3, 3, 50)))) < 1e-15
    assert np.allclose(np.abs(p.w), 0.5 * 2.0) and np.allclose(p.b[:5], p.b[5:])
    with pytest.raises(ValueError, match="width must be even"):
        regime_init(7)


@pytest.mark.slow  # one of the suite's slowest (--durations, > 15 s on one core)
def test_kernel_and_adaptive_regimes_differ():
    # kernel regime (large scale, first layer 10x the second): frozen breakpoints, near the cubic spline;
    # adaptive regime (first layer 100x smaller): breakpoints move, TV(f') the least of any interpolant
    lazy = regime_run({"scale": 3.0, "ratio": 10.0, "width": 100, "max_steps": 200_000})
    rich = regime_run({"scale": 1.0, "ratio": 0.01, "width": 400, "max_steps": 100_000})
    assert lazy["converged"] and rich["converged"]
    assert lazy["breakpoint_shift"] < 1e-3 < 0.01 < rich["breakpoint_shift"]
    assert lazy["rel_cubic"] < 0.5 * lazy["rel_linear"]
    assert rich["tv_over_min"] < 1.1 < 1.3 < lazy["tv_over_min"]


def test_video_gif(tmp_path):
    p = sample_init(init_scheme("torch", 12), seed=0)
    x, y = regime_data(5)
    run = simulate_flow(p, x, y, n_steps=300, n_records=4)
    path = render_flow_video(run, tmp_path / "flow", fmt="gif", max_frames=4)
    assert path.suffix == ".gif" and path.stat().st_size > 1000


@pytest.mark.slow  # one of the suite's slowest (--durations, > 15 s on one core)
def test_cli_regimes_and_watch(tmp_path):
    runner = CliRunner()
    out = tmp_path / "regimes"
    result = runner.invoke(app, ["splines", "regimes", "--scales", "0.3,3", "--ratios", "10", "--widths", "20",
                                 "--seeds", "1", "--max-steps", "2000", "--out", str(out)])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_runs"] == 2 and (out / "report.html").exists()
    out = tmp_path / "watch"
    result = runner.invoke(app, ["splines", "watch", "--width", "10", "--steps", "200", "--frames", "3",
                                 "--format", "gif", "--samples", "20", "--out", str(out)])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["video"] == "flow.gif"
    example = [r for r in summary["hessian"] if r["point"].startswith("n=12")]
    assert [(r["rank"], r["n_zero"]) for r in example] == [(12, 69), (12, 109)]
