"""`netatlas metric` and `netatlas magnify model` speak the shared option vocabulary (issue 26.2): --through A B C
in one flag (and the repeated and comma forms) as indices into the whole --split, --data NAME|FILE, --zoom/--around,
--max-regions/--memory-budget, --seed, --overwrite; option values that fail their check exit 2 in one line."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import netatlas
from cli_runner import run_cli as _run
from netatlas.metric import metric_map
from netatlas.slices import Plane


@pytest.fixture(scope="module")
def digits_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("m") / "digits.pt2"
    netatlas.nets.save(netatlas.nets.mlp([64, 12, 10], seed=0), path, input_shape=(64,))
    return path


def _plane_values(out):
    return np.load(out / "plane.npz")["values"]


@pytest.mark.parametrize("command", [["metric"], ["magnify", "model"]])
@pytest.mark.parametrize("form", [["379", "1122", "1300"], ["379,1122,1300"],
                                  ["379", "--through", "1122", "--through", "1300"]])
def test_through_indexes_the_whole_split_in_any_form(tmp_path, capsys, digits_model, command, form):
    out = tmp_path / "run"
    code, _, err = _run([*command, digits_model, "--data", "digits", "--split", "train", "--n", "20",
                         "--through", *form, "--grid", "4", "--out", out], capsys)
    assert code == 0, err  # was "out of range; there are 200 points": only the first --n were indexed
    x = netatlas.data.load("digits").x.double().numpy()
    plane = Plane.through(x[379], x[1122], x[1300])
    direct = metric_map(netatlas.nets.load(digits_model), plane=plane, grid=4)
    np.testing.assert_allclose(_plane_values(out), direct.plane_values, rtol=1e-9, atol=1e-9)
    config = json.loads((out / "config.json").read_text())
    assert config["through"] == [379, 1122, 1300] and config["split"] == "train"


def test_split_test_is_the_default_and_indexes_the_test_split(tmp_path, capsys, digits_model):
    out = tmp_path / "run"
    code, _, err = _run(["metric", digits_model, "--data", "digits", "--through", 0, 1, 448, "--grid", 3, "--n", 5,
                         "--out", out], capsys)
    assert code == 0, err
    x = netatlas.data.load("digits").x_test.double().numpy()
    direct = metric_map(netatlas.nets.load(digits_model), plane=Plane.through(x[0], x[1], x[448]), grid=3)
    np.testing.assert_allclose(_plane_values(out), direct.plane_values, rtol=1e-9, atol=1e-9)
    code, _, err = _run(["metric", digits_model, "--data", "digits", "--through", 0, 1, 449, "--out",
                         tmp_path / "r2"], capsys)
    assert code == 2 and "[0, 449)" in err and "test split" in err


def test_n_is_a_stratified_sample_seeded_by_seed(tmp_path, capsys, digits_model):
    labels = {}
    for seed in (0, 1):
        out = tmp_path / f"run{seed}"
        code, _, err = _run(["metric", digits_model, "--data", "digits", "--n", 30, "--seed", seed, "--out", out],
                            capsys)
        assert code == 0, err
        labels[seed] = np.load(out / "points.npz")["labels"]
        y = netatlas.data.load("digits", seed=seed).y_test.numpy()  # a built-in set's split follows --seed too
        rows = netatlas.data.stratified_sample(torch.as_tensor(y), 30, seed=seed)
        assert np.array_equal(labels[seed], y[rows])
        assert len(set(labels[seed].tolist())) == 10  # every class, not the first 30 rows' classes


def test_zoom_around_boundary_is_plane_zoom(tmp_path, capsys, digits_model):
    net = netatlas.nets.load(digits_model)
    x = netatlas.data.load("digits").x_test.double().numpy()
    predicted = net(x.reshape(len(x), -1)).argmax(1)
    b = int(np.flatnonzero(predicted != predicted[0])[0])  # A and B of different predicted classes
    out = tmp_path / "run"
    code, _, err = _run(["metric", digits_model, "--data", "digits", "--through", 0, b, b + 1, "--zoom", 0.1,
                         "--around", "boundary", "--grid", 3, "--n", 5, "--out", out], capsys)
    assert code == 0, err
    plane = Plane.through(x[0], x[b], x[b + 1])
    plane = plane.zoom(0.1, around=plane.around_boundary(net, "A", "B"))
    direct = metric_map(net, plane=plane, grid=3)
    np.testing.assert_allclose(_plane_values(out), direct.plane_values, rtol=1e-9, atol=1e-9)


def test_max_regions_given_stops_with_the_estimate_naming_the_options(tmp_path, capsys, digits_model):
    code, _, err = _run(["metric", digits_model, "--data", "digits", "--through", 0, 1, 2, "--max-regions", 2,
                         "--out", tmp_path / "run"], capsys)
    assert code == 1
    line = err.strip().splitlines()[-1]
    assert line.startswith("RegionLimitError:") and "--max-regions" in line and "max_regions" not in line


def test_memory_budget_reaches_the_partition(tmp_path, capsys, digits_model):
    code, _, err = _run(["metric", digits_model, "--data", "digits", "--through", 0, 1, 2, "--max-regions", 10**6,
                         "--memory-budget", "1", "--out", tmp_path / "run"], capsys)
    assert code == 1 and "RegionLimitError" in err and "--memory-budget" in err


@pytest.mark.parametrize(("args", "message"), [
    (["--through", "0", "1"], "--through needs 3 indices"),
    (["--through", "0,1,x"], "--through takes integers"),
    (["--plane", "square:"], "--plane square:SIZE needs a SIZE"),
    (["--zoom", "0", "--through", "0", "1", "2"], "--zoom must be a fraction"),
    (["--zoom", "0.5"], "--zoom needs a plane through three inputs"),
    (["--around", "Q", "--through", "0", "1", "2"], "--around must be letters of ABC"),
    (["--memory-budget", "lots"], "--memory-budget must be"),
    (["--max-regions", "0"], "--max-regions must be an integer >= 1"),
    (["--threads", "0"], "--threads must be an integer >= 1"),
    (["--split", "val"], "--split must be one of train, test"),
    (["--n", "0"], "--n must be an integer >= 1"),
    (["--quantity", "area"], "--quantity must be one of"),
    (["--plane", "square:1", "--through", "0", "1", "2"], "not both"),
])
def test_option_value_errors_exit_2_in_one_line(tmp_path, capsys, digits_model, args, message):
    code, _, err = _run(["metric", digits_model, "--data", "digits", *args, "--out", tmp_path / "r"], capsys)
    assert code == 2, err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()


def test_overwrite_and_data_file(tmp_path, capsys, digits_model):
    data = netatlas.data.load("digits")
    npz = tmp_path / "mine.npz"
    np.savez(npz, x=data.x_test.numpy()[:60], y=data.y_test.numpy()[:60])
    out = tmp_path / "run"
    code, _, err = _run(["metric", digits_model, "--data", npz, "--through", 3, 40, 59, "--grid", 3, "--out", out],
                        capsys)
    assert code == 0, err
    assert "no test split; using its train split" in err
    x = data.x_test.double().numpy()
    direct = metric_map(netatlas.nets.load(digits_model), plane=Plane.through(x[3], x[40], x[59]), grid=3)
    np.testing.assert_allclose(_plane_values(out), direct.plane_values, rtol=1e-6, atol=1e-6)
    code, _, err = _run(["metric", digits_model, "--data", npz, "--through", 3, 40, 58, "--grid", 3, "--out", out],
                        capsys)
    assert code != 0 and "--overwrite" in err
    code, _, err = _run(["metric", digits_model, "--data", npz, "--through", 3, 40, 58, "--grid", 3, "--out", out,
                         "--overwrite"], capsys)
    assert code == 0, err


def test_help_shows_the_vocabulary_and_the_python_recipe(capsys):
    for command in (["metric"], ["magnify", "model"]):
        code, out, _ = _run([*command, "--help"], capsys)
        assert code == 0
        text = " ".join(out.split())
        assert "<int,int,int>" not in text and "Python:" in text
        for piece in ("Plane.through", ".zoom(", "around_boundary", "--split", "--zoom", "--around", "--max-regions",
                      "--memory-budget", "--seed", "--threads", "--overwrite", "NAME|FILE", "A B C"):
            assert piece in text, piece
