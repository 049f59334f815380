"""The `netatlas regions` command and the plots."""

import json

import matplotlib
import pytest

matplotlib.use("Agg")

import netatlas  # noqa: E402
from netatlas.regions import along_line, partition, plot_line_pieces, plot_partition  # noqa: E402


def test_cli_writes_run_directory(tmp_path):
    from netatlas.cli import main

    model = tmp_path / "m.pt2"
    netatlas.nets.save(netatlas.nets.mlp([2, 12, 12, 3], seed=0), model, input_shape=(2,))
    out = tmp_path / "run"
    try:
        main(["regions", str(model), "--plane", "square:1.5", "--out", str(out)])
    except SystemExit as exc:
        assert exc.code in (0, None)
    summary = json.loads((out / "summary.json").read_text())
    direct = partition(netatlas.nets.load(model), netatlas.Plane.square(1.5))
    assert summary["num_regions"] == direct.num_regions
    assert summary["bounds"]["serra2018_upper"] >= summary["num_regions"]
    assert (out / "regions.png").exists() and (out / "report.html").exists()


def test_cli_bad_plane_is_one_line_error(tmp_path, capsys):
    from netatlas.cli import main

    model = tmp_path / "m.pt2"
    netatlas.nets.save(netatlas.nets.mlp([2, 4, 1], seed=0), model, input_shape=(2,))
    with pytest.raises(SystemExit) as exc:
        main(["regions", str(model), "--plane", "disc:2", "--out", str(tmp_path / "r")])
    assert exc.value.code == 2  # an option value that fails its check: a usage error
    assert "--plane must be 'square:SIZE'" in capsys.readouterr().err


@pytest.mark.parametrize("color_by", ["pattern", "class", "output", "area", "none"])
def test_plot_partition_color_modes(color_by):
    import matplotlib.pyplot as plt

    part = partition(netatlas.nets.mlp([2, 10, 10, 3], seed=1))
    fig, ax = plt.subplots()
    plot_partition(part, ax, color_by=color_by, level_sets=[0.0])
    assert len(ax.collections[0].get_paths()) == part.num_regions
    plt.close(fig)
    with pytest.raises(ValueError, match="color_by must be one of"):
        plot_partition(part, color_by="rainbow")


def test_plot_line_pieces():
    import matplotlib.pyplot as plt

    pieces = along_line(netatlas.nets.mlp([2, 8, 1], seed=0), [-1.0, -1.0], [1.0, 1.0])
    ax = plot_line_pieces(pieces)
    assert len(ax.lines[0].get_xdata()) == 2 * pieces.num_pieces
    plt.close("all")
