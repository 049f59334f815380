"""One option vocabulary (issue 26.2, 24.6): ``--through A B C`` in one flag (and the repeated and comma forms),
indices into the whole ``--split``, ``--data NAME|FILE`` through one resolver, option values that fail their
check exit 2 in one line, limit errors name the CLI's options, and the counts asked for are honoured or said."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import netatlas
from cli_runner import run_cli as _run
from netatlas.regions import partition
from netatlas.slices import Plane


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    path = tmp_path_factory.mktemp("m") / "m.pt2"
    netatlas.nets.save(netatlas.nets.mlp([2, 6, 6, 3], seed=0), path, input_shape=(2,))
    return path


def _summary(path):
    return json.loads((path / "summary.json").read_text())


@pytest.mark.parametrize("form", [["0", "5", "9"], ["0,5,9"], ["0", "--through", "5", "--through", "9"],
                                  ["0 5 9"]])
def test_through_takes_three_indices_in_any_form(tmp_path, capsys, model, form):
    out = tmp_path / "run"
    code, _, err = _run(["regions", model, "--data", "moons", "--through", *form, "--out", out], capsys)
    assert code == 0, err
    x = netatlas.data.load("moons").x.numpy()
    expected = partition(netatlas.nets.load(model), Plane.through(x[0], x[5], x[9])).num_regions
    assert _summary(out)["num_regions"] == expected
    assert json.loads((out / "config.json").read_text())["through"] == [0, 5, 9]


def test_through_indexes_the_whole_split_chosen_by_split(tmp_path, capsys, model):
    data = netatlas.data.load("moons")
    last = data.n_test - 1  # an index into the test split, past any default sample size
    code, _, err = _run(["regions", model, "--data", "moons", "--split", "test", "--through", 0, 1, last,
                         "--out", tmp_path / "run"], capsys)
    assert code == 0, err
    x = data.x_test.numpy()
    expected = partition(netatlas.nets.load(model), Plane.through(x[0], x[1], x[last])).num_regions
    assert _summary(tmp_path / "run")["num_regions"] == expected
    code, _, err = _run(["regions", model, "--data", "moons", "--split", "test", "--through", 0, 1, data.n_test,
                         "--out", tmp_path / "r2"], capsys)
    assert code == 2 and f"must be in [0, {data.n_test}) for the test split" in err


def test_data_takes_a_file_everywhere_through_one_resolver(tmp_path, capsys, model):
    x = np.random.default_rng(0).standard_normal((12, 2))
    np.savez(tmp_path / "mine.npz", x=x, y=np.arange(12) % 3)
    code, _, err = _run(["regions", model, "--data", tmp_path / "mine.npz", "--through", 2, 7, 11,
                         "--out", tmp_path / "run"], capsys)
    assert code == 0, err
    expected = partition(netatlas.nets.load(model), Plane.through(x[2], x[7], x[11])).num_regions
    assert _summary(tmp_path / "run")["num_regions"] == expected
    code, _, err = _run(["regions", model, "--data", tmp_path / "nope.npz", "--through", 0, 1, 2,
                         "--out", tmp_path / "r2"], capsys)
    assert code == 1 and err.startswith("ValueError: regions: --data ") and "no such file" in err


@pytest.mark.parametrize("argv, message", [
    (["--tiles", "0"], "--tiles must be an integer >= 1; got 0"),
    (["--plane", "square:"], "--plane square:SIZE needs a SIZE"),
    (["--plane", "circle:2"], "--plane must be 'square:SIZE'"),
    (["--memory-budget", "lots"], "--memory-budget must be auto, none or a size"),
    (["--max-regions", "0"], "--max-regions must be an integer >= 1"),
    (["--data", "moons", "--through", "0", "1"], "--through needs 3 indices A B C"),
    (["--data", "moons", "--through", "0", "1", "2", "--zoom", "0"], "--zoom must be a fraction in (0, 1]"),
    (["--data", "moons", "--through", "0", "1", "2", "--zoom", "0.5", "--around", "AD"], "--around must be"),
    (["--data", "moons", "--through", "0", "1", "2", "--split", "valid"], "--split must be one of train, test"),
    (["--data", "moons", "--through", "0", "1", "2", "--plane", "square:1"], "not both"),
])
def test_option_values_that_fail_their_check_exit_2_in_one_line(tmp_path, capsys, model, argv, message):
    out = tmp_path / "run"
    code, _, err = _run(["regions", model, *argv, "--out", out], capsys)
    assert code == 2 and err.startswith("ValueError: ") and message in err, (code, err)
    assert len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_an_unparsable_value_exits_2_too(tmp_path, capsys, model):
    code, _, _ = _run(["regions", model, "--tiles", "x", "--out", tmp_path / "r"], capsys)
    assert code == 2


def test_memory_budget_takes_bytes_and_the_limit_names_the_cli_options(tmp_path, capsys, model):
    from netatlas._options import memory_budget_value

    assert memory_budget_value("1") == 1 and memory_budget_value("2e9") == 2 * 10**9
    assert memory_budget_value("512MiB") == 512 * 2**20 and memory_budget_value("none") is None
    code, _, err = _run(["regions", model, "--plane", "square:50", "--memory-budget", "1",
                         "--out", tmp_path / "r"], capsys)
    assert code == 1 and err.startswith("RegionLimitError: ") and len(err.strip().splitlines()) == 1
    assert "--zoom" in err and "--memory-budget" in err and "Plane bounds" not in err and "max_regions" not in err


def test_zoom_around_in_the_cli_is_the_python_recipe(tmp_path, capsys, model):
    out = tmp_path / "run"
    code, _, err = _run(["regions", model, "--data", "moons", "--through", 0, 5, 9, "--zoom", "0.25", "--around",
                         "BC", "--out", out], capsys)
    assert code == 0, err
    x = netatlas.data.load("moons").x.numpy()
    plane = Plane.through(x[0], x[5], x[9]).zoom(0.25, around="BC")
    summary = _summary(out)
    assert summary["num_regions"] == partition(netatlas.nets.load(model), plane).num_regions
    assert summary["plane"]["bounds"] == list(plane.bounds)
    assert "zoom(0.25, around='BC')" in summary["python"]


def test_help_names_the_python_of_zoom_and_around(capsys):
    code, out, _ = _run(["regions", "--help"], capsys)
    text = " ".join(out.split())
    assert code == 0 and "zoom(F" in text and "around_boundary(net" in text
    assert "[default: train]" in text  # --split's default is shown


def test_n_is_a_stratified_sample_and_one_class_warns_once(tmp_path, capsys):
    from netatlas._options import command_data

    x = np.random.default_rng(1).standard_normal((40, 2))
    y = np.repeat([0, 1], 20)  # sorted by class, like many files: the first N are one class
    np.savez(tmp_path / "sorted.npz", x=x, y=y)
    _, xs, ys, description = command_data(str(tmp_path / "sorted.npz"), where="t", n=10)
    assert sorted(ys.tolist()) == [0] * 5 + [1] * 5 and "stratified sample of 10 of 40" in description
    assert capsys.readouterr().err == ""
    np.savez(tmp_path / "one.npz", x=x, y=np.zeros(40, dtype=int))
    command_data(str(tmp_path / "one.npz"), where="t", n=10)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("Warning: t: the 10 samples hold one class only")


def test_dynamics_zones_samples_are_stratified(tmp_path, capsys):
    torch.manual_seed(0)
    netatlas.nets.save(netatlas.nets.mlp([2, 5, 2], seed=0), tmp_path / "m.pt2", input_shape=(2,))
    x = np.random.default_rng(2).standard_normal((60, 2))
    np.savez(tmp_path / "d.npz", x=x, y=np.repeat([0, 1], 30))
    code, _, err = _run(["dynamics", "zones", tmp_path / "m.pt2", "--data", tmp_path / "d.npz", "--n", 20,
                         "--out", tmp_path / "run"], capsys)
    assert code == 0, err
    y = np.load(tmp_path / "run" / "samples.npz")["y"]
    assert np.bincount(y).tolist() == [10, 10]


def test_lowrank_analyze_takes_a_data_file(tmp_path, capsys):
    data = netatlas.data.load("digits", flatten=True)
    np.savez(tmp_path / "digits.npz", x=data.x.numpy(), y=data.y.numpy())
    module = netatlas.nets.mlp([64, 12, 10], "relu", seed=0)
    netatlas.nets.save(module, tmp_path / "m.pt2", input_shape=(64,))
    runs = {}
    for name, source in (("file", tmp_path / "digits.npz"), ("name", "digits")):
        code, _, err = _run(["lowrank", "analyze", tmp_path / "m.pt2", "--data", source, "--n", 300,
                             "--clusters", 8, "--out", tmp_path / name], capsys)
        assert code == 0, err
        runs[name] = _summary(tmp_path / name)
    # the file holds the built-in set's training split: the same stratified sample, the same analysis
    np.testing.assert_allclose(runs["file"]["product_error"], runs["name"]["product_error"], rtol=1e-6)


def test_dynamics_complexity_says_which_steps_it_recorded(tmp_path, capsys):
    code, _, err = _run(["dynamics", "complexity", "--data", "moons", "--steps", "0,30", "--points", 2,
                         "--widths", "4", "--out", tmp_path / "run"], capsys)
    assert code == 0, err
    recorded = _summary(tmp_path / "run")["steps_recorded"]
    assert recorded[0] == 0 and recorded[1] >= 30
    if recorded != [0, 30]:
        assert f"recorded at steps 0, {recorded[1]} (asked 0, 30)" in err


def test_class_coloured_plots_have_a_key():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    net = netatlas.nets.from_torch(netatlas.nets.mlp([2, 8, 8, 3], seed=1))
    part = partition(net, Plane.square(3.0))
    ax = netatlas.regions.plot_partition(part, color_by="class", raster_pixels=64)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    us, vs = part.plane.grid(64)
    shown = np.unique(np.asarray(net(np.stack([us.ravel(), vs.ravel()], 1))).argmax(1))
    assert labels[: len(shown)] == [f"class {c}" for c in shown]
    assert labels[len(shown):] == (["decision boundary"] if len(part.decision_boundary()) else [])
    assert netatlas.regions.plot_partition(part, color_by="pattern").get_legend() is None
    plt.close("all")
