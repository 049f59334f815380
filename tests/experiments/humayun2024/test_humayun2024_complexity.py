"""The local-complexity study of Humayun et al. (2024) and `netatlas dynamics complexity`: steps, the phase
table, the region limit, the CLI on a tiny setting."""

import json

import numpy as np
import pytest
import torch

from netatlas.experiments.humayun2024 import complexity_study, parse_steps, phase_table


@pytest.fixture(autouse=True)
def _one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def test_study_and_phase_table():
    s = complexity_study("moons", steps=[0, 10, 40], n_points=5, widths=[8, 8], seeds=(0, 1))
    assert s.curve("exact", "random").shape == (2, 3)
    assert s.pooled("sampled", "test").shape == (3, 10)
    rows = phase_table(s)
    assert len(rows) == 9 and {r["points"] for r in rows} == {"train", "test", "random"}
    for r in rows:
        assert r["min"] <= r["start"] and r["max_after_min"] >= r["min"]
        assert r["falls"] == (r["min"] < 0.95 * r["start"])


def test_parse_steps_and_bad_input():
    assert parse_steps("0,5,5,2", 0) == [0, 2, 5]
    assert parse_steps("log:100:3", 0) == [0, 1, 10, 100]
    with pytest.raises(ValueError, match="log:MAX:N"):
        parse_steps("log:x", 0)
    with pytest.raises(ValueError, match="non-negative"):
        parse_steps("-1,3", 0)
    with pytest.raises(ValueError, match="neither a data file .* nor a built-in data set"):
        complexity_study("cifar")


@pytest.mark.slow  # one of the suite's slowest (--durations, > 15 s on one core)
def test_cli_writes_report(tmp_path):
    from netatlas.cli import main

    out = tmp_path / "run"
    try:
        main(["dynamics", "complexity", "--data", "moons", "--steps", "0,20", "--points", "4", "--widths", "8,8",
              "--out", str(out)])
    except SystemExit as exc:
        assert exc.code in (0, None)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["config"]["steps"] == [0, 20]
    assert (out / "complexity_curves.png").exists() and (out / "report.html").exists()
    arrays = np.load(out / "curves.npz")
    assert arrays["exact_train"].shape == (2, 4)


def test_study_and_command_honour_max_regions(tmp_path, capsys):
    from netatlas.cli import main

    s = complexity_study("moons", steps=[0], n_points=3, widths=[8, 8], max_regions=500)
    assert s.config["max_regions"] == 500
    with pytest.raises(SystemExit) as exc:
        main(["dynamics", "complexity", "--data", "moons", "--steps", "0", "--points", "4", "--widths", "16,16",
              "--radius", "3", "--max-regions", "2", "--out", str(tmp_path / "r")])
    assert exc.value.code == 1
    err = capsys.readouterr().err
    assert "RegionLimitError" in err and "above max_regions=2;" in err and "--max-regions" in err
