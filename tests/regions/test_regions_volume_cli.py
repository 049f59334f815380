"""`netatlas regions MODEL --volume cube:S | --through A B C D [--level V]` (issue 29, item 4)."""

import json

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

import netatlas  # noqa: E402
from netatlas.regions import partition  # noqa: E402


def _main(args):
    from netatlas.cli import main

    try:
        main(args)
    except SystemExit as exc:
        assert exc.code in (0, None)


def test_cli_volume_writes_counts_surface_and_views(tmp_path):
    model = tmp_path / "sdf.pt2"
    netatlas.nets.save(netatlas.nets.mlp([3, 12, 12, 1], seed=2), model, input_shape=(3,))
    out = tmp_path / "run"
    _main(["regions", str(model), "--volume", "cube:1.5", "--level", "0", "--out", str(out)])
    summary = json.loads((out / "summary.json").read_text())
    direct = partition(netatlas.nets.load(model), netatlas.Volume.cube(1.5), levels=(0.0,))
    assert summary["num_cells"] == direct.num_cells and summary["euler_characteristic"] == 1
    mesh = direct.level_set(0.0)
    assert summary["surfaces"][0]["n_triangles"] == mesh.n_triangles
    lines = (out / "surface.ply").read_text().splitlines()
    assert f"element face {mesh.n_triangles}" in lines
    for name in ("complex3d.png", "report.html", "view3d.html"):
        assert (out / name).exists()
    page = (out / "view3d.html").read_text()
    assert "<canvas" in page and "http://" not in page and "https://" not in page and "src=" not in page
    report = (out / "report.html").read_text()
    assert "<iframe" in report and "srcdoc=" in report and "&lt;canvas" in report


def test_cli_volume_through_four_inputs(tmp_path):
    model = tmp_path / "m.pt2"
    netatlas.nets.save(netatlas.nets.mlp([64, 8, 10], seed=0), model, input_shape=(64,))
    out = tmp_path / "run"
    _main(["regions", str(model), "--through", "0", "1", "2", "3", "--data", "digits", "--out", str(out)])
    summary = json.loads((out / "summary.json").read_text())
    assert summary["euler_characteristic"] == 1 and summary["num_cells"] >= 1
    assert np.isclose(summary["total_volume"], summary["slice_volume"])
    assert not (out / "surface.ply").exists()


def test_cli_volume_tiles_give_the_untiled_counts_and_surface(tmp_path):
    model = tmp_path / "sdf.pt2"
    netatlas.nets.save(netatlas.nets.mlp([3, 12, 12, 1], seed=2), model, input_shape=(3,))
    out = tmp_path / "run"
    _main(["regions", str(model), "--volume", "cube:1.5", "--level", "0", "--tiles", "2", "--out", str(out)])
    summary = json.loads((out / "summary.json").read_text())
    direct = partition(netatlas.nets.load(model), netatlas.Volume.cube(1.5), levels=(0.0,))
    assert (summary["num_cells"], summary["n_vertices"], summary["n_edges"], summary["n_faces"]) == (
        direct.num_cells, len(direct.vertices), len(direct.edges), len(direct.face_cells))
    assert summary["euler_characteristic"] == 1 and summary["tiles"] == 2 and "tiles=2" in summary["python"]
    surface = summary["surfaces"][0]
    assert surface["watertight"] and np.isclose(surface["area"], direct.level_set(0.0).area, rtol=1e-12)
    assert f"element face {surface['n_triangles']}" in (out / "surface.ply").read_text().splitlines()
    for name in ("complex3d.png", "report.html", "view3d.html"):
        assert (out / name).exists()


def test_cli_volume_upto_an_affine_layer(tmp_path):
    model = tmp_path / "m.pt2"
    netatlas.nets.save(netatlas.nets.mlp([3, 8, 8, 1], seed=0), model, input_shape=(3,))
    out = tmp_path / "run"
    _main(["regions", str(model), "--volume", "cube:1", "--upto", "2", "--out", str(out)])
    summary = json.loads((out / "summary.json").read_text())
    direct = partition(netatlas.nets.load(model), netatlas.Volume.cube(1.0), upto="2")
    assert summary["num_cells"] == direct.num_cells and summary["n_units"] == 8 and summary["upto"] == "2"
    assert "upto='2'" in summary["python"]
    # after an activation (the 3-D graph path takes nets ending in one): the same cells as after the Linear
    # that follows it
    first = tmp_path / "first"
    _main(["regions", str(model), "--volume", "cube:1", "--upto", "1", "--out", str(first)])
    after_relu = json.loads((first / "summary.json").read_text())
    assert after_relu["num_cells"] == partition(netatlas.nets.load(model), netatlas.Volume.cube(1.0),
                                                upto="1").num_cells == summary["num_cells"]


@pytest.mark.parametrize(("args", "message"), [
    (["--volume", "ball:1"], "--volume must be 'cube:SIZE'"),
    (["--volume", "cube:1", "--zoom", "0.5"], "--zoom and --dask apply to 2-D slices"),
    (["--volume", "cube:1", "--tiles", "0"], "--tiles"),
    (["--volume", "cube:1", "--upto", "nope"], "--upto 'nope'"),
    (["--volume", "cube:1", "--disc", "0", "0", "1"], "--disc and --polygon take a 2-D slice"),
    (["--volume", "cube:1", "--level", "0", "--level", "0"], "--level values must be distinct"),
])
def test_cli_volume_bad_options_are_one_line_errors(tmp_path, capsys, args, message):
    from netatlas.cli import main

    model = tmp_path / "m.pt2"
    netatlas.nets.save(netatlas.nets.mlp([3, 4, 1], seed=0), model, input_shape=(3,))
    with pytest.raises(SystemExit) as exc:
        main(["regions", str(model), *args, "--out", str(tmp_path / "r")])
    assert exc.value.code != 0
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "r").exists()
