"""Cost limits of the partitioning paths of local complexity and lines (NOTE [cost limits] in
regions._complexity): refusal with the estimate above the limit, the same answers under it, the check
during the run, the progress bar; and `netatlas regions complexity MODEL` end to end."""

import json
import re

import numpy as np
import pytest
import torch
from torch import nn

import netatlas
from netatlas.nets import from_torch, mlp
from netatlas.regions import (
    RegionLimitError,
    along_line,
    estimate_discs,
    exact_counts,
    hyperplanes_crossing,
    local_complexity,
    local_complexity_1d,
)
from netatlas.regions._complexity import random_directions


def _mlp_case():
    net = from_torch(mlp([4, 24, 24, 3], seed=7))
    pts = np.random.default_rng(7).normal(size=(6, 4))
    return net, pts, random_directions(6, 2, 4, seed=8)


def _estimate_in(message):
    return float(re.search(r"about ([\d,]+) regions estimated", message).group(1).replace(",", ""))


@pytest.mark.parametrize("fn", [local_complexity, hyperplanes_crossing, exact_counts])
def test_refuses_above_max_regions_with_the_estimate(fn):
    net, pts, D = _mlp_case()
    est = estimate_discs(net, pts, 2.0, directions=D)
    limit = int(est.max()) - 1
    with pytest.raises(RegionLimitError) as info:
        fn(net, pts, 2.0, directions=D, max_regions=limit)
    message = str(info.value)
    assert "\n" not in message and f"max_regions={limit:,}" in message and "method='sampled'" in message
    assert _estimate_in(message) == pytest.approx(est.max(), abs=0.5)
    worst = int(np.argmax(est.ravel())) // 2
    assert f"around point {worst} " in message


def test_same_answers_under_the_limit_and_with_a_tight_memory_budget():
    net, pts, D = _mlp_case()
    free = exact_counts(net, pts, 0.8, directions=D, max_regions=None, memory_budget=None)
    est = estimate_discs(net, pts, 0.8, directions=D)
    limited = exact_counts(net, pts, 0.8, directions=D, max_regions=int(10 * max(est.max(), free[0].max())))
    assert np.array_equal(free[0], limited[0]) and np.array_equal(free[1], limited[1])
    # a budget that fits each disc but not the whole batch: discs run in smaller batches, same counts
    from netatlas.regions._complexity import _DiscLimits, _groups

    squares = np.array([netatlas.regions.partition(net, netatlas.Plane(p, d[0], d[1], (-0.8, 0.8, -0.8, 0.8)))
                        .num_regions for p, d in zip(np.repeat(pts, 2, axis=0), D.reshape(-1, 2, 4), strict=True)])
    limits = _DiscLimits(net, None, None, "t")
    limits.budget = int(limits.per_region * 4.4 * max(squares.max(), est.max()))
    groups = _groups(est.ravel(), limits)
    assert len(groups) > 1 and all(squares[a:b].sum() * limits.per_region <= limits.budget for a, b in groups)
    split = exact_counts(net, pts, 0.8, directions=D, max_regions=None, memory_budget=limits.budget)
    assert np.array_equal(free[0], split[0]) and np.array_equal(free[1], split[1])
    with pytest.raises(RegionLimitError, match="memory budget"):
        exact_counts(net, pts, 0.8, directions=D, max_regions=None,
                     memory_budget=int(limits.per_region * est.max() / 2))


def test_the_run_stops_when_the_estimate_was_low():
    # find (deterministically) a disc the estimate under-counts, then set the limit between the two
    for seed in range(20):
        net = from_torch(mlp([3, 16, 16, 16, 2], seed=seed))
        pts = np.random.default_rng(seed).normal(size=(4, 3))
        D = random_directions(4, 1, 3, seed=seed)
        est = estimate_discs(net, pts, 1.0, directions=D).ravel()
        exact = local_complexity(net, pts, 1.0, directions=D, max_regions=None).ravel()
        # regions in the square (what the limit counts) >= regions meeting the disc
        if exact.max() > est.max() + 2:
            break
    else:
        pytest.fail("no case where the estimate is below the count")
    limit = int(est.max()) + 1
    with pytest.raises(RegionLimitError, match=r"reached [\d,]+ regions at layer \d of 3"):
        local_complexity(net, pts, 1.0, directions=D, max_regions=limit)


def _maxpool_net():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(12, 2)).double()
    return from_torch(model.eval(), input_shape=(1, 6, 6))


def test_graph_path_refuses_with_the_estimate_and_agrees_under_the_limit():
    net = _maxpool_net()
    pts = np.random.default_rng(1).normal(size=(3, 1, 6, 6))
    D = random_directions(3, 1, 36, seed=2)
    free = local_complexity(net, pts, 1.0, directions=D, max_regions=None, memory_budget=None).ravel()
    assert free.max() > 8
    # a limit the largest disc just fits refuses nothing (the chord estimate first put it at 87 regions)
    limited = local_complexity(net, pts, 1.0, directions=D, max_regions=int(free.max()))
    assert np.array_equal(free, limited.ravel())
    # graph discs are not estimated before their partitions (a chord estimate cost more than the exact work
    # on a LeNet-5, NOTE [cost limits]); each partition is watched, and stops with its regions so far
    # extrapolated to the disc: an estimate above the limit, of the disc whose run passed it
    limit = int(free.max()) // 2
    with pytest.raises(RegionLimitError) as info:
        local_complexity(net, pts, 1.0, directions=D, max_regions=limit)
    message = str(info.value)
    assert "\n" not in message and f"max_regions={limit:,}" in message and "method='sampled'" in message
    assert limit < _estimate_in(message) < 10 * free.max()
    point = int(re.search(r"around point (\d+) ", message).group(1))
    assert point <= int(np.argmax(free))  # discs run in order: the largest one cannot pass unnoticed
    assert "extrapolated from the" in message


def test_graph_path_stops_inside_the_partition():
    net = _maxpool_net()
    pts = np.random.default_rng(1).normal(size=(3, 1, 6, 6))
    D = random_directions(3, 1, 36, seed=2)
    from netatlas.regions._complexity import _DiscLimits, _exact_chunk

    P, Dr = pts.reshape(3, 36), D.reshape(3, 2, 36)
    limits = _DiscLimits(net, 1, None, "local_complexity")  # the estimate is skipped: the partition refuses
    with pytest.raises(RegionLimitError, match="passed 1 regions during its partition"):
        _exact_chunk(net, P, Dr, 1.0, 1e-9, False, limits)


def test_sampled_method_has_no_region_limit():
    net, pts, D = _mlp_case()
    a = local_complexity(net, pts, 2.0, directions=D, method="sampled", max_regions=1)
    assert np.array_equal(a, hyperplanes_crossing(net, pts, 2.0, directions=D, method="sampled").sum(-1))


def test_bad_max_regions():
    net, pts, _ = _mlp_case()
    with pytest.raises(ValueError, match="max_regions must be an integer >= 1 or None; got 0"):
        local_complexity(net, pts, 0.5, max_regions=0)


def test_progress_bar_on_request(capsys):
    net, pts, D = _mlp_case()
    local_complexity(net, pts, 0.5, directions=D, progress=True)
    assert "disc" in capsys.readouterr().err
    local_complexity(net, pts, 0.5, directions=D)  # stderr is not a terminal here: no bar
    assert capsys.readouterr().err == ""


def test_estimate_is_an_order_of_magnitude():
    net = from_torch(mlp([2, 32, 32, 2], seed=3))
    pts = np.random.default_rng(3).normal(size=(8, 2)) * 0.5
    D = random_directions(8, 1, 2, seed=3)
    est = estimate_discs(net, pts, 0.7, directions=D).ravel()
    # regions of the whole square, counted by partition on the same planes
    square = np.array([netatlas.regions.partition(net, netatlas.Plane(p, d[0, 0], d[0, 1], (-0.7, 0.7, -0.7, 0.7)))
                       .num_regions for p, d in zip(pts, D, strict=True)])
    assert np.all(est > square / 10) and np.all(est < square * 10)


# -- along_line -------------------------------------------------------------------------------------
def test_along_line_limits():
    net = mlp([3, 16, 16, 1], seed=0)
    a, b = [-20.0, 0.0, 0.5], [20.0, 0.5, -0.5]
    free = along_line(net, a, b, memory_budget=None)
    same = along_line(net, a, b, max_regions=free.num_pieces)
    assert np.array_equal(free.breakpoints, same.breakpoints) and np.array_equal(free.patterns, same.patterns)
    with pytest.raises(RegionLimitError, match=f"above max_regions={free.num_pieces - 1}"):
        along_line(net, a, b, max_regions=free.num_pieces - 1)
    with pytest.raises(RegionLimitError, match="memory budget"):
        along_line(net, a, b, memory_budget=100)
    with pytest.raises(ValueError, match="max_regions must be an integer >= 1"):
        along_line(net, a, b, max_regions=-1)


# -- the command ------------------------------------------------------------------------------------
def _main(args):
    from netatlas.cli import main

    try:
        main(args)
    except SystemExit as exc:
        assert exc.code in (0, None)


def test_cli_complexity_on_a_model_file_and_builtin_data(tmp_path):
    model = tmp_path / "m.pt2"
    netatlas.nets.save(mlp([64, 12, 12, 10], seed=0), model, input_shape=(64,))
    out = tmp_path / "run"
    _main(["regions", "complexity", str(model), "--data", "digits", "--points", "5", "--radius", "0.5",
           "--planes", "2", "--out", str(out)])
    summary = json.loads((out / "summary.json").read_text())
    data = netatlas.data.load("digits")
    index = [p["index"] for p in summary["points"]]
    x = data.x_test.double().numpy()[index].reshape(5, 64)
    direct = local_complexity(netatlas.nets.load(model), x, 0.5, n_planes=2, seed=0)
    assert [p["per_plane"] for p in summary["points"]] == direct.tolist()
    assert [p["label"] for p in summary["points"]] == data.y_test.numpy()[index].tolist()
    assert summary["max"] == direct.max() and summary["unit"] == "regions"
    for name in ("complexity_hist.png", "report.html"):
        assert (out / name).exists()
    assert "Points ranked" in (out / "report.html").read_text()


def test_cli_complexity_on_a_data_file_sampled(tmp_path):
    model = tmp_path / "m.pt2"
    netatlas.nets.save(mlp([3, 8, 8, 2], seed=1), model, input_shape=(3,))
    rng = np.random.default_rng(0)
    data_file = tmp_path / "mine.npz"
    x, y = rng.normal(size=(30, 3)).astype(np.float32), rng.integers(0, 2, 30)
    np.savez(data_file, x=x, y=y)
    out = tmp_path / "run"
    _main(["regions", "complexity", str(model), "--data", str(data_file), "--points", "4", "--radius", "0.3",
           "--method", "sampled", "--split", "train", "--out", str(out)])
    summary = json.loads((out / "summary.json").read_text())
    loaded = netatlas.data.load_file(data_file).x.double().numpy()
    index = [p["index"] for p in summary["points"]]
    direct = local_complexity(netatlas.nets.load(model), loaded[index], 0.3, seed=0, method="sampled")
    assert [p["per_plane"] for p in summary["points"]] == direct.tolist() and summary["unit"] == "neurons"


def test_cli_complexity_limit_is_one_line_naming_the_option(tmp_path, capsys):
    from netatlas.cli import main

    model = tmp_path / "m.pt2"
    netatlas.nets.save(mlp([64, 32, 32, 10], seed=0), model, input_shape=(64,))
    with pytest.raises(SystemExit) as exc:
        main(["regions", "complexity", str(model), "--data", "digits", "--points", "3", "--radius", "30",
              "--max-regions", "5", "--out", str(tmp_path / "r")])
    assert exc.value.code == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("RegionLimitError: local_complexity: about") and "--max-regions" in err
    assert "\n" not in err


def test_cli_regions_model_form_still_works_and_bad_options(tmp_path, capsys):
    from netatlas.cli import main

    model = tmp_path / "m.pt2"
    netatlas.nets.save(mlp([2, 6, 2], seed=0), model, input_shape=(2,))
    _main(["regions", str(model), "--out", str(tmp_path / "plain")])
    assert json.loads((tmp_path / "plain" / "summary.json").read_text())["num_regions"] >= 1
    with pytest.raises(SystemExit) as exc:
        main(["regions", "complexity", str(model), "--data", "moons", "--radius", "0.1", "--method", "bogus"])
    # a value that fails its check is a usage error: exit 2 (issue 24.6), one line
    assert exc.value.code == 2 and "--method must be one of exact, sampled" in capsys.readouterr().err


def test_regions_complexity_help_loads_no_heavy_module():
    import subprocess
    import sys

    probe = ("import sys\nfrom netatlas.cli import main\nsys.argv = ['netatlas', 'regions', 'complexity', '--help']\n"
             "try:\n    main()\nexcept SystemExit as e:\n    assert e.code == 0, e.code\n"
             "print(sorted(m for m in ('torch', 'numba', 'matplotlib', 'dask') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert "Python: " in out and "local_complexity" in out and "--radius" in out
    assert out.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize("make", [lambda: from_torch(mlp([4, 24, 24, 3], seed=7)), _maxpool_net])
def test_local_complexity_1d_limits(make):
    net = make()
    pts = np.random.default_rng(5).normal(size=(3, *net.input_shape))
    free = local_complexity_1d(net, pts, 3.0, n_lines=2, seed=1, memory_budget=None)
    assert free.max() > 2
    assert np.array_equal(free, local_complexity_1d(net, pts, 3.0, n_lines=2, seed=1, max_regions=int(free.max())))
    with pytest.raises(RegionLimitError, match=f"above max_regions={int(free.max()) - 1:,}"):
        local_complexity_1d(net, pts, 3.0, n_lines=2, seed=1, max_regions=int(free.max()) - 1)
    with pytest.raises(RegionLimitError, match="memory budget"):
        local_complexity_1d(net, pts, 3.0, n_lines=2, seed=1, memory_budget=64)


def test_estimate_regions_stops_early_above_max_regions():
    from netatlas.regions import estimate_regions

    net = from_torch(mlp([2, 24, 24, 1], seed=2))
    plane = netatlas.Plane.square(5.0)
    full = estimate_regions(net, plane)
    assert estimate_regions(net, plane, max_regions=int(full) + 1) == full  # under the limit: unchanged
    early = estimate_regions(net, plane, max_regions=int(full / 50))
    assert full / 50 < early <= full  # a lower bound of the full estimate, above the limit
    assert early < full  # it stopped before the last line
