"""`netatlas regions --disc / --polygon / --upto`: the CLI equals the library's partition on the same window
and layer, and bad values are one-line usage errors."""

import json

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

import netatlas  # noqa: E402
from netatlas import Plane  # noqa: E402
from netatlas.regions import partition, plot_partition  # noqa: E402


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    path = tmp_path_factory.mktemp("cliwin") / "m.pt2"
    netatlas.nets.save(netatlas.nets.mlp([2, 12, 12, 3], seed=0), path, input_shape=(2,))
    return path


def run(args, out):
    from netatlas.cli import main

    try:
        main(["regions", *map(str, args), "--out", str(out)])
    except SystemExit as exc:
        assert exc.code in (0, None)
    return json.loads((out / "summary.json").read_text()), json.loads((out / "partition.json").read_text())


def same_partition(summary, written, direct):
    assert summary["num_regions"] == direct.num_regions
    assert summary["area"] == pytest.approx(float(direct.areas.sum()), rel=1e-12)
    assert summary["slice_area"] == pytest.approx(direct.plane.area, rel=1e-12)
    assert summary["n_units"] == direct.n_units
    assert summary["decision_boundary_segments"] == len(direct.decision_boundary())
    assert written["num_regions"] == direct.num_regions


@pytest.mark.parametrize("disc_args", [["0", "-0.5", "1"], ["0,-0.5,1"]])
def test_disc_with_upto_equals_library(model, tmp_path, disc_args):
    summary, written = run([model, "--disc", *disc_args, "--upto", "1"], tmp_path / "r")
    direct = partition(netatlas.nets.load(model), Plane.disc((0.0, -0.5), 1.0), upto="1")
    same_partition(summary, written, direct)
    assert summary["window"] == "disc" and summary["upto"] == "1" and summary["upto_node"] == 2
    # --upto is honoured: the whole net cuts the disc into more regions
    assert partition(netatlas.nets.load(model), Plane.disc((0.0, -0.5), 1.0)).num_regions > direct.num_regions
    assert summary["plane"]["circle"] == [0.0, -0.5, 1.0]
    assert len(summary["plane"]["outline"]) == 512
    assert "upto='1'" in summary["python"] and "Plane.disc" in summary["python"]
    # the window is a disc, not its bounding box: the whole area is the inscribed 512-gon's
    assert summary["area"] == pytest.approx(256 * np.sin(2 * np.pi / 512), rel=1e-12)
    assert (tmp_path / "r" / "regions.png").exists()


def test_polygon_with_negative_corners_equals_library(model, tmp_path):
    corners = [(-1.0, -1.0), (1.2, -0.8), (0.3, 1.1)]
    summary, written = run([model, "--polygon", *[f"{u},{v}" for u, v in corners]], tmp_path / "r")
    direct = partition(netatlas.nets.load(model), Plane.polygon(corners))
    same_partition(summary, written, direct)
    assert summary["window"] == "polygon" and summary["upto"] is None
    assert summary["plane"]["circle"] is None
    # semicolon form in one token: the same window
    again, _ = run([model, "--polygon", ";".join(f"{u},{v}" for u, v in corners)], tmp_path / "r2")
    assert again["plane"]["outline"] == summary["plane"]["outline"]


@pytest.mark.parametrize("layer", ["2", "#4", "3"])
def test_upto_on_the_square_equals_library(model, tmp_path, layer):
    summary, written = run([model, "--plane", "square:1.5", "--upto", layer], tmp_path / "r")
    net = netatlas.nets.load(model)
    direct = partition(net, Plane.square(1.5), upto=layer)
    same_partition(summary, written, direct)
    assert summary["window"] == "rectangle" and summary["upto_node"] == net.layer(layer)
    whole = partition(net, Plane.square(1.5))
    # only the first ReLU splits the slice up to module "2" (node 3); the second one too up to "#4" and "3"
    assert (direct.num_regions < whole.num_regions) if layer == "2" else (direct.num_regions == whole.num_regions)


def test_upto_with_tiles_equals_library(model, tmp_path):
    from netatlas.cli import main

    out = tmp_path / "r"
    try:
        main(["regions", str(model), "--upto", "1", "--tiles", "2", "--out", str(out)])
    except SystemExit as exc:
        assert exc.code in (0, None)
    summary = json.loads((out / "summary.json").read_text())
    direct = partition(netatlas.nets.load(model), Plane.square(1.0), upto="1")
    assert summary["num_regions"] == direct.num_regions and summary["upto"] == "1"


@pytest.mark.parametrize("args, message", [
    (["--polygon", "0,0", "1,1", "1,0", "0,1"], "--polygon: Plane.polygon: the polygon is not convex"),
    (["--polygon", "0,0", "1,1", "2,2"], "--polygon: Plane.polygon: the vertices span no area"),
    (["--polygon", "0,0;1"], "--polygon takes corners U,V"),
    (["--polygon", "0,0", "1,0"], "--polygon needs at least three corners"),
    (["--disc", "0,0,0"], "--disc CX CY R needs a finite radius R > 0; got 0.0"),
    (["--disc", "0", "0", "-1"], "--disc CX CY R needs a finite radius R > 0; got -1.0"),
    (["--disc", "0,0"], "--disc takes three finite numbers CX CY R"),
    (["--disc", "a,b,c"], "--disc takes three numbers CX CY R"),
    (["--upto", "fc9"], "--upto 'fc9': no layer named 'fc9'; layers: ['0', '1', '2', '3', '4']"),
    (["--polygon", "0,0", "1,0", "0,1", "--disc", "0,0,1"], "give one window"),
    (["--disc", "0,0,1", "--plane", "square:2"], "--disc / --polygon is the window itself"),
    (["--disc", "0,0,1", "--volume", "cube:1"], "--disc and --polygon take a 2-D slice"),
])
def test_bad_window_or_layer_is_one_line_usage_error(model, tmp_path, capsys, args, message):
    from netatlas.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["regions", str(model), *args, "--out", str(tmp_path / "r")])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "r").exists()  # refused before any run directory is written


def test_plot_draws_the_window_outline_and_paints_only_inside():
    import matplotlib.pyplot as plt

    disc = Plane.disc((0.5, 0.0), 0.8, n_sides=64)
    part = partition(netatlas.nets.mlp([2, 8, 8, 3], seed=0), disc)
    fig, ax = plt.subplots()
    plot_partition(part, ax, color_by="class")
    outline = [line for line in ax.lines if line.get_label() == "window"]
    assert len(outline) == 1
    xy = outline[0].get_xydata()
    assert np.array_equal(xy[:-1], disc.outline) and np.array_equal(xy[-1], disc.outline[0])
    image = ax.images[0].get_array()
    # the pixel nearest the box corner lies outside the disc: transparent; the centre pixel is painted
    assert image[0, 0, 3] == 0 and image[image.shape[0] // 2, image.shape[1] // 2, 3] > 0
    plt.close(fig)
    # a rectangle gets no outline line (its frame is the axes)
    fig, ax = plt.subplots()
    plot_partition(partition(netatlas.nets.mlp([2, 8, 8, 3], seed=0)), ax, color_by="class")
    assert not [line for line in ax.lines if line.get_label() == "window"]
    plt.close(fig)


def test_polygon_and_upto_on_a_plane_through_three_inputs(tmp_path):
    """Any slice: the polygon's corners are in the plane of --through A B C (Plane.polygon(..., plane=))."""
    from netatlas._options import command_data

    model = tmp_path / "m3.pt2"
    netatlas.nets.save(netatlas.nets.mlp([3, 10, 10, 2], seed=3), model, input_shape=(3,))
    rng = np.random.default_rng(0)
    data = tmp_path / "points.npz"
    np.savez(data, x=rng.normal(size=(40, 3)).astype(np.float32), y=np.arange(40) % 2)
    corners = [(-0.5, -0.5), (1.5, -0.2), (1.0, 1.4), (-0.3, 1.0)]
    summary, written = run([model, "--data", data, "--through", "0", "1", "2", "--polygon",
                            *[f"{u},{v}" for u, v in corners], "--upto", "#2"], tmp_path / "r")
    _, x, _, _ = command_data(str(data), where="regions", split="train")
    x = x.detach().numpy()
    through = Plane.through(x[0], x[1], x[2])
    direct = partition(netatlas.nets.load(model), Plane.polygon(corners, plane=through), upto="#2")
    same_partition(summary, written, direct)
    assert summary["window"] == "polygon" and summary["upto_node"] == 2
    assert np.allclose(summary["plane"]["anchors"], through.anchors, rtol=0, atol=1e-12)
