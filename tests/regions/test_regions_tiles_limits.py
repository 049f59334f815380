"""partition(..., tiles=k), stream_partition and `regions --tiles` honour max_regions and the memory budget
(issue 26.3): the whole slice is estimated first and refused in one line with the estimate; the count is
guarded tile by tile (and with the regions merged across tile borders); each tile's run has the limits too."""

from __future__ import annotations

import json

import pytest

import netatlas
from netatlas import Plane
from netatlas.nets import from_torch, mlp
from netatlas.regions import RegionLimitError, estimate_regions, partition, stream_partition


@pytest.fixture(scope="module")
def net():
    return from_torch(mlp([2, 16, 16, 16, 1], seed=1))


def test_tiles_refuse_with_the_whole_slice_estimate(net):
    plane = Plane.square(1.0)
    with pytest.raises(RegionLimitError, match=r"^partition \(tiles=3\): about [\d,]+ regions estimated in the "
                       r"whole slice .* above max_regions=20") as info:
        partition(net, plane, tiles=3, max_regions=20)
    assert "\n" not in str(info.value)


def test_tiles_under_the_limit_give_the_untiled_answer(net):
    plane = Plane.square(1.0)
    exact = partition(net, plane)
    tiled = partition(net, plane, tiles=3, max_regions=10 * exact.num_regions, memory_budget="1GB")
    assert tiled.num_regions == exact.num_regions


def test_tiles_stop_when_the_count_passes_a_limit_the_estimate_was_under(net):
    plane = Plane.square(1.0)
    exact = partition(net, plane).num_regions
    estimate = estimate_regions(net, plane)
    limit = int(estimate) + 1
    assert limit < exact  # this net's estimate is low: only the guard during the run can stop it
    with pytest.raises(RegionLimitError, match=rf"^partition \(tiles=2\): passed {limit:,} regions"):
        partition(net, plane, tiles=2, max_regions=limit)
    partition(net, plane, tiles=2, max_regions=exact)  # exactly at the limit: allowed


def test_tiles_memory_budget_is_the_total(net):
    plane = Plane.square(1.0)
    with pytest.raises(RegionLimitError, match=r"memory budget"):
        partition(net, plane, tiles=2, memory_budget=2000)
    with pytest.raises(ValueError, match="max_regions must be a positive int"):
        partition(net, plane, tiles=2, max_regions=0)


def test_stream_partition_limits_the_total_and_each_tile(net, tmp_path):
    plane = Plane.square(1.0)
    with pytest.raises(RegionLimitError, match=r"estimated in the whole slice"):
        stream_partition(net, plane, 2, tmp_path / "a", tolerance=1e-10, max_regions=20)
    assert not (tmp_path / "a").exists()  # refused before anything is written
    # streamed to disk, the memory budget bounds each tile's run (its estimate is over 200 bytes)
    with pytest.raises(RegionLimitError, match=r"memory budget"):
        stream_partition(net, plane, 2, tmp_path / "b", tolerance=1e-10, memory_budget=200)
    exact = partition(net, plane).num_regions
    summary = stream_partition(net, plane, 2, tmp_path / "c", tolerance=1e-10, max_regions=exact, picture=8)
    assert summary["num_regions"] == exact


def test_cli_tiles_refuse_in_one_line_naming_the_options(tmp_path, capsys):
    from netatlas.cli import main

    model = tmp_path / "m.pt2"
    netatlas.nets.save(mlp([2, 16, 16, 16, 1], seed=1), model, input_shape=(2,))
    out = tmp_path / "run"
    with pytest.raises(SystemExit) as exc:
        main(["regions", str(model), "--tiles", "3", "--max-regions", "20", "--out", str(out)])
    assert exc.value.code == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("RegionLimitError: partition (tiles=3): about") and "\n" not in err
    assert "--max-regions" in err and "max_regions" not in err and "--zoom" in err
    assert not (out / "tiles").exists()
    main_args = ["regions", str(model), "--tiles", "2", "--max-regions", "1000", "--picture", "8", "--out",
                 str(tmp_path / "ok")]
    try:
        main(main_args)
    except SystemExit as exit_:
        assert exit_.code in (0, None)
    exact = partition(netatlas.nets.load(model), Plane.square(1.0)).num_regions
    assert json.loads((tmp_path / "ok" / "summary.json").read_text())["num_regions"] == exact
