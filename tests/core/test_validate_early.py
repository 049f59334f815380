"""Validate early: non-finite inputs and points are refused naming the index, specs are sized before
anything is allocated, and wrong widths are reported as such."""

import json
import math

import numpy as np
import pytest
import torch

import netatlas
from cli_runner import run_cli as _run
from netatlas import Plane


@pytest.mark.parametrize("bounds", [(-math.inf, 1, -1, 1), (-1, 1, -1, math.nan), (-1, math.inf, -1, 1)])
def test_plane_refuses_non_finite_bounds(bounds):
    with pytest.raises(ValueError, match=r"Plane bounds: entry \d is (nan|-?inf)"):
        Plane(np.zeros(2), [1, 0], [0, 1], bounds)


@pytest.mark.parametrize("size", [math.inf, math.nan, 0.0, -1.0])
def test_plane_square_refuses_non_finite_or_non_positive_sizes(size):
    with pytest.raises(ValueError, match="finite size > 0"):
        Plane.square(size)


def test_plane_names_the_non_finite_input_entry():
    with pytest.raises(ValueError, match=r"Plane d2: entry 1 is nan"):
        Plane(np.zeros(2), [1.0, 0.0], [0.0, math.nan])
    with pytest.raises(ValueError, match=r"uv: entry \(2, 0\) is inf"):
        Plane.square(1.0).to_input([[0, 0], [0.5, 0.5], [math.inf, 0]])


@pytest.fixture(scope="module")
def partition():
    return netatlas.regions.partition(netatlas.nets.mlp([2, 8, 8, 1], seed=0), Plane.square(1.0))


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_locate_refuses_non_finite_points(partition, bad):
    points = np.array([[0.1, 0.2], [0.3, bad], [0.0, 0.0]])
    with pytest.raises(ValueError, match=r"Partition.locate: points: entry \(1, 1\) is"):
        partition.locate(points)
    assert partition.locate(points[[0, 2]]).min() >= 0  # finite points still work


def test_line_locate_refuses_non_finite_parameters():
    pieces = netatlas.regions.along_line(netatlas.nets.mlp([2, 8, 1], seed=0), [-1.0, 0.0], [1.0, 0.0])
    with pytest.raises(ValueError, match=r"t: entry 2 is nan"):
        pieces.locate([0.0, 0.5, math.nan])


@pytest.mark.parametrize("feature", ["net", "module", "layer"])
def test_metric_refuses_non_finite_points_and_wrong_widths(feature):
    model = netatlas.nets.mlp([2, 4, 3], seed=0)
    fn = {"net": netatlas.nets.from_torch(model), "module": model, "layer": (model, "1")}[feature]
    x = torch.zeros(3, 2, dtype=torch.float64)
    x[2, 1] = math.nan
    with pytest.raises(ValueError, match=r"volume_element: x .*entry \(2, 1\) is nan"):
        netatlas.metric.volume_element(fn, x)
    with pytest.raises(ValueError, match=r"x has shape \(4, 3\) but the network's inputs have shape \(2,\)"):
        netatlas.metric.volume_element(fn, torch.zeros(4, 3))


def test_non_finite_weights_do_not_partition():
    model = netatlas.nets.mlp([2, 6, 1], seed=0)
    with torch.no_grad():
        model[0].weight[3, 0] = math.nan
    with pytest.raises(ValueError, match=r"layer '0' .*non-finite"):
        netatlas.regions.partition(model, Plane.square(1.0))


# -- specs are sized before anything is allocated -------------------------------------------------
def test_spec_with_non_object_layers_is_one_line(tmp_path, capsys):
    torch.save({}, tmp_path / "m.pt")
    (tmp_path / "m.json").write_text(json.dumps({"layers": [1, 2]}))
    with pytest.raises(netatlas.ModelFileError, match=r"m.pt: bad architecture spec: model spec layer 0: expected an"):
        netatlas.nets.load(tmp_path / "m.pt")
    code, _, err = _run(["info", str(tmp_path / "m.pt")], capsys)
    assert code == 1 and err.startswith("ModelFileError: ") and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("spec, problem", [
    ({"mlp": {"widths": "2,3"}}, "widths must be a list"),
    ({"mlp": {"widths": [2, 0, 1]}}, "widths must be a list of at least two positive integers"),
    ({"mlp": {"widths": [2, 3], "colour": 1}}, "'mlp' must be an object with 'widths'"),
    ({"layers": [{"type": "linear", "in": 2}]}, "missing the field 'out'"),
    ({"layers": [{"type": "linear", "in": 2, "out": -3}]}, r"out must be an integer >= 1; got -3"),
    ({"layers": [{"type": "conv2d", "in": 1, "out": 2, "kernel": 2.5}]}, "kernel must be an integer"),
    ({"layers": []}, "non-empty list"),
])
def test_bad_specs_are_one_line_model_file_errors(tmp_path, spec, problem):
    torch.save({}, tmp_path / "m.pt")
    with pytest.raises(netatlas.ModelFileError, match=problem):
        netatlas.nets.load(tmp_path / "m.pt", spec=spec)


def test_huge_spec_is_refused_with_the_estimate_before_allocating(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("NETATLAS_MEMORY_BUDGET", "8GiB")
    (tmp_path / "m.pt").write_bytes(b"not even read")
    (tmp_path / "m.json").write_text('{"mlp": {"widths": [2, 1e5, 1e5, 1]}}')
    params = 2 * 10**5 + 10**5 + 10**10 + 10**5 + 10**5 + 1
    with pytest.raises(netatlas.MemoryBudgetError, match=rf"{params:,} parameters.*needs about 111.8 GiB, over "
                                                          r"the memory budget of 8.0 GiB"):
        netatlas.nets.load(tmp_path / "m.pt")
    code, _, err = _run(["info", str(tmp_path / "m.pt")], capsys)
    assert code == 1 and err.startswith("MemoryBudgetError: ") and len(err.strip().splitlines()) == 1


def test_module_from_spec_checks_the_budget(monkeypatch):
    monkeypatch.setenv("NETATLAS_MEMORY_BUDGET", "1MiB")
    with pytest.raises(netatlas.MemoryBudgetError, match="1,004,001 parameters"):
        netatlas.nets.module_from_spec({"mlp": {"widths": [1, 1000, 1000, 1]}})
    assert netatlas.nets.module_from_spec({"mlp": {"widths": [1, 10, 1]}})[0].out_features == 10


@pytest.mark.parametrize("text", ["lots", "-5", "0", "12 parsecs", "inf"])
def test_unreadable_budget_is_one_line(monkeypatch, text):
    monkeypatch.setenv("NETATLAS_MEMORY_BUDGET", text)
    with pytest.raises(netatlas.MemoryBudgetError, match="NETATLAS_MEMORY_BUDGET=.* is not a size"):
        netatlas.nets.module_from_spec({"mlp": {"widths": [1, 2, 1]}})


def test_partition_outputs_are_sized_before_allocating(monkeypatch):
    torch.manual_seed(0)
    part = netatlas.regions.partition(torch.nn.Linear(2, 2000), Plane.square(1.0))
    monkeypatch.setenv("NETATLAS_MEMORY_BUDGET", "16MiB")
    assert part.outputs(np.zeros((10, 2))).shape == (10, 2000)
    with pytest.raises(netatlas.MemoryBudgetError, match=r"Partition.outputs at 10,000 points x 2,000 outputs"):
        part.outputs(np.zeros((10_000, 2)))


def test_regions_on_a_very_wide_output_is_one_line(tmp_path, capsys, monkeypatch):
    netatlas.nets.save(torch.nn.Linear(2, 100_000), tmp_path / "wide.pt2", input_shape=(2,))
    monkeypatch.setenv("NETATLAS_MEMORY_BUDGET", "1GiB")
    code, _, err = _run(["regions", str(tmp_path / "wide.pt2"), "--out", str(tmp_path / "run")], capsys)
    assert code == 1 and err.startswith("MemoryBudgetError: Partition.outputs at ")
    assert len(err.strip().splitlines()) == 1


def test_mlp_builder_checks_the_budget_before_allocating(monkeypatch):
    monkeypatch.setenv("NETATLAS_MEMORY_BUDGET", "1GiB")
    with pytest.raises(netatlas.MemoryBudgetError, match=r"10,000,500,001 float32 parameters needs about 37.3 GiB"):
        netatlas.nets.mlp([2, 100_000, 100_000, 1])


def test_plane_grids_are_sized_before_allocating(monkeypatch):
    monkeypatch.setenv("NETATLAS_MEMORY_BUDGET", "1GiB")
    assert Plane.square(1.0).grid(10)[0].shape == (10, 10)
    with pytest.raises(netatlas.MemoryBudgetError, match=r"Plane.grid\(1000000\) needs about"):
        Plane.square(1.0).grid(1_000_000)
    with pytest.raises(ValueError, match="at least 1 point per side"):
        Plane.square(1.0).grid(0)
