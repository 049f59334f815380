"""`magnify-ssl ssl --quick` end to end (and the hook that puts it under `magnify`)."""

import json

import pytest
import typer
from typer.testing import CliRunner

from netatlas.experiments.zavatoneveth2023.ssl import ENCODER_KINDS, SSLMagnifyConfig
from netatlas.experiments.zavatoneveth2023.ssl._cli import add_ssl_command, register


def _app():
    app = typer.Typer()

    @app.callback()
    def _root():
        """root"""

    register(app)
    return app


@pytest.mark.slow  # one of the suite's slowest (--durations, > 15 s on one core)
def test_quick_run_writes_summary_and_report(tmp_path):
    out = tmp_path / "run"
    result = CliRunner().invoke(_app(), ["magnify-ssl", "ssl", "--quick", "--out", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert sorted(summary["per_encoder"]) == sorted(ENCODER_KINDS)
    for entry in summary["per_encoder"].values():
        for key in ("rho_volume_entropy_all", "rho_volume_entropy_lines", "rho_volume_entropy_planes",
                    "rho_plane_area_entropy"):
            ci = entry[key]
            assert -1 <= ci["ci_low"] <= ci["mean"] <= ci["ci_high"] <= 1
        assert 0.5 < entry["probe_accuracy"]["mean"] <= 1  # 10 digit classes: far above chance
    assert "1/sqrt" in summary["scaling_convention"] or "sqrt(m)" in summary["scaling_convention"]
    assert "barlow_minus_random" in summary["paired_differences_rho_volume_entropy"]
    html = (out / "report.html").read_text()
    assert "Correlations per encoder" in html and "data:image/png;base64" in html and "Reading" in html
    assert "rho(eff. volume, probe entropy)" in result.output


def test_add_ssl_command_under_a_magnify_group():
    magnify = typer.Typer()

    @magnify.callback()
    def _magnify():
        """magnify"""

    add_ssl_command(magnify)
    app = typer.Typer()

    @app.callback()
    def _root():
        """root"""

    app.add_typer(magnify, name="magnify")
    result = CliRunner().invoke(app, ["magnify", "ssl", "--help"])
    assert result.exit_code == 0 and "--quick" in result.output and "magnify_ssl" in result.output


def test_reading_states_the_sign_of_each_interval():
    from netatlas.experiments.zavatoneveth2023.ssl._report import reading

    entry = lambda m, lo, hi: {"mean": m, "ci_low": lo, "ci_high": hi}  # noqa: E731
    summary = {"per_encoder": {"barlow": {"rho_volume_entropy_all": entry(0.3, 0.1, 0.5)},
                               "random": {"rho_volume_entropy_all": entry(-0.1, -0.3, 0.1)}},
               "paired_differences_rho_volume_entropy": {"barlow_minus_random": entry(-0.4, -0.6, -0.2)}}
    text = reading(summary)
    assert "barlow: rho(effective volume, probe entropy) = +0.300 [+0.100, +0.500]: positive" in text
    assert "random: rho(effective volume, probe entropy) = -0.100 [-0.300, +0.100]: not distinguishable" in text
    assert "barlow minus random: -0.400 [-0.600, -0.200]: negative" in text


def test_config_validation():
    with pytest.raises(ValueError, match=r"unknown data 'cifar'; choose one of \('digits', 'mnist_sample'\)"):
        SSLMagnifyConfig(data="cifar")
    with pytest.raises(ValueError, match="n_seeds must be >= 1"):
        SSLMagnifyConfig.quick(n_seeds=0)
