"""`netatlas regions complexity` speaks the shared option vocabulary (issue 26.2): --data NAME|FILE through the
one resolver, --split, --seed (a stratified sample), --memory-budget sizes, --max-regions, --out/--overwrite;
option values that fail their check exit 2 in one line; limit errors name the options."""

from __future__ import annotations

import json

import numpy as np
import pytest

import netatlas
from cli_runner import run_cli as _run
from netatlas.nets import mlp


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    path = tmp_path_factory.mktemp("m") / "m.pt2"
    netatlas.nets.save(mlp([64, 12, 10], seed=0), path, input_shape=(64,))
    return path


def test_points_are_a_stratified_sample_of_the_split_seeded(tmp_path, capsys, model):
    out = tmp_path / "run"
    code, _, err = _run(["regions", "complexity", model, "--data", "digits", "--split", "train", "--points", 20,
                         "--seed", 3, "--radius", 0.2, "--method", "sampled", "--out", out], capsys)
    assert code == 0, err
    summary = json.loads((out / "summary.json").read_text())
    y = netatlas.data.load("digits", seed=3).y  # a built-in set's split follows --seed
    rows = netatlas.data.stratified_sample(y, 20, seed=3)
    assert [p["index"] for p in summary["points"]] == list(map(int, rows))
    assert [p["label"] for p in summary["points"]] == y.numpy()[rows].tolist()
    assert len({p["label"] for p in summary["points"]}) == 10  # every class, not the first rows' classes


def test_data_file_falls_back_to_its_train_split_and_overwrite(tmp_path, capsys, model):
    data = netatlas.data.load("digits")
    npz = tmp_path / "mine.npz"
    np.savez(npz, x=data.x_test.numpy().reshape(-1, 64)[:50], y=data.y_test.numpy()[:50])
    out = tmp_path / "run"
    args = ["regions", "complexity", model, "--data", npz, "--points", 5, "--radius", 0.1, "--method", "sampled",
            "--out", out]
    code, _, err = _run(args, capsys)
    assert code == 0, err
    assert "no test split; using its train split" in err
    assert json.loads((out / "summary.json").read_text())["split"] == "train"
    code, _, err = _run([*args[:-2], "--radius", 0.2, "--out", out], capsys)
    assert code != 0 and "--overwrite" in err
    code, _, err = _run([*args[:-2], "--radius", 0.2, "--out", out, "--overwrite"], capsys)
    assert code == 0, err


def test_memory_budget_reaches_the_discs_and_limit_errors_name_the_options(tmp_path, capsys, model):
    code, _, err = _run(["regions", "complexity", model, "--data", "digits", "--points", 2, "--radius", 5,
                         "--memory-budget", "1KB", "--out", tmp_path / "r"], capsys)
    assert code == 1, err
    line = err.strip().splitlines()[-1]
    assert line.startswith("RegionLimitError:") and "--memory-budget" in line


@pytest.mark.parametrize(("args", "message"), [
    (["--memory-budget", "lots"], "--memory-budget must be"),
    (["--split", "val"], "--split must be one of train, test"),
    (["--max-regions", "0"], "--max-regions must be an integer >= 1"),
    (["--points", "0"], "--points must be an integer >= 1"),
    (["--radius", "0"], "--radius must be a finite number > 0"),
    (["--points", "5000"], "--points 5000 is more than the"),
])
def test_option_value_errors_exit_2_in_one_line(tmp_path, capsys, model, args, message):
    argv = ["regions", "complexity", model, "--data", "digits", "--radius", "0.1", *args, "--out", tmp_path / "r"]
    code, _, err = _run(argv, capsys)
    assert code == 2, err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()


def test_help_shows_the_vocabulary(capsys):
    code, out, _ = _run(["regions", "complexity", "--help"], capsys)
    assert code == 0
    text = " ".join(out.split())
    for piece in ("NAME|FILE", "--split", "train|test", "--seed", "--max-regions", "--memory-budget", "512MiB",
                  "--out", "--overwrite"):
        assert piece in text, piece
