"""Sweeps at their limits: a grid or an iterator of configs over the memory budget is refused by its size
before it is built (one line naming the size and the budget), `sweep status` on a folder that is not a
sweep is an error, and sweep files follow the umask."""

import itertools
import json
import os
import tracemalloc

import pytest

from cli_runner import run_cli as _run
from netatlas import MemoryBudgetError
from netatlas.sweep import grid, run, status


def _peak_bytes(call):
    tracemalloc.start()
    try:
        call()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


def test_a_grid_over_the_budget_is_refused_before_it_is_built(monkeypatch):
    monkeypatch.setenv("NETATLAS_MEMORY_BUDGET", "100MB")
    axes = {name: range(1000) for name in "abcd"}  # 10^12 configs

    def build():
        with pytest.raises(MemoryBudgetError, match=r"^grid: 1,000,000,000,000 configs \(1,000 x 1,000 x 1,000 x "
                           r"1,000 values\) need about [0-9.]+ TiB to hold, over the memory budget of 95\.4 MiB "
                           r"\(NETATLAS_MEMORY_BUDGET\); sweep fewer values"):
            grid(**axes)

    assert _peak_bytes(build) < 1_000_000
    # one axis of 10^12 values is not listed either
    assert _peak_bytes(lambda: pytest.raises(MemoryBudgetError, grid, a=range(10**12))) < 1_000_000
    # within the budget the grid is built as before
    assert len(grid(a=range(300), b=range(300))) == 90_000


def test_the_grid_estimate_is_within_a_quarter_of_what_the_list_takes(monkeypatch):
    axes = {"seed": range(2000), "width": [8, 16, 32], "name": ["a", "b"], "lr": [0.1, 0.01]}
    peak = _peak_bytes(lambda: grid(**axes))  # measured by tracemalloc
    monkeypatch.setenv("NETATLAS_MEMORY_BUDGET", str(int(peak * 1.25)))
    assert len(grid(**axes)) == 24_000
    monkeypatch.setenv("NETATLAS_MEMORY_BUDGET", str(int(peak * 0.8)))
    with pytest.raises(MemoryBudgetError, match="grid: 24,000 configs"):
        grid(**axes)


def test_cli_refuses_a_huge_grid_in_one_line_and_makes_no_folder(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("NETATLAS_MEMORY_BUDGET", "100MB")
    values = ",".join(map(str, range(1000)))
    args = ["sweep", "run", "json:dumps", *itertools.chain(*(("--grid", f"{a}={values}") for a in "abcd")),
            "--out", str(tmp_path / "s")]
    code, _, err = _run(args, capsys)
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert err.startswith("MemoryBudgetError: grid: 1,000,000,000,000 configs") and "95.4 MiB" in err
    assert not (tmp_path / "s").exists()


def test_run_reads_an_endless_iterator_only_up_to_the_budget(tmp_path, monkeypatch):
    monkeypatch.setenv("NETATLAS_MEMORY_BUDGET", "2MB")
    read = []

    def configs():
        for x in itertools.count():
            read.append(x)
            yield {"x": x}

    with pytest.raises(MemoryBudgetError, match=r"^sweep.run: more than [0-9,]+ configs \(from an iterator\) need "
                       r"about .* over the memory budget of 1\.9 MiB"):
        run(json.dumps, configs(), tmp_path / "s")
    assert 100 < len(read) < 2_000  # about 2 MB / 1.1 kB per config
    assert not (tmp_path / "s").exists()


def test_run_refuses_a_list_over_the_budget_before_running_any(tmp_path, monkeypatch):
    configs = [{"x": x} for x in range(5000)]
    monkeypatch.setenv("NETATLAS_MEMORY_BUDGET", "1MB")
    with pytest.raises(MemoryBudgetError, match=r"^sweep.run: 5,000 configs need about"):
        run(json.dumps, configs, tmp_path / "s")
    assert not (tmp_path / "s").exists()


def test_status_of_a_folder_that_is_not_a_sweep_is_an_error(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("not a sweep")
    with pytest.raises(ValueError, match=r"is not a sweep directory \(it has no sweep.json, results/ or failed/\)"):
        status(tmp_path)
    code, out, err = _run(["sweep", "status", str(tmp_path)], capsys)
    assert code == 1 and out == "" and len(err.strip().splitlines()) == 1
    assert err.startswith(f"ValueError: status: {tmp_path} is not a sweep directory")
    # a run folder holding a sweep (reproduce writes one in sweep/): the error points to it
    run(json.dumps, grid(x=[1]), tmp_path / "sweep")
    with pytest.raises(ValueError, match=f"did you mean {tmp_path / 'sweep'}"):
        status(tmp_path)
    assert status(tmp_path / "sweep").n_done == 1
    run(json.dumps, [], tmp_path / "empty")  # a sweep of no configs is still a sweep
    assert status(tmp_path / "empty").n_configs == 0


@pytest.mark.parametrize("umask", [0o022, 0o002])
def test_sweep_files_follow_the_umask(tmp_path, umask):
    previous = os.umask(umask)
    try:
        run(json.dumps, grid(x=[1, 2]), tmp_path / "s")
    finally:
        os.umask(previous)
    files = [p for p in (tmp_path / "s").rglob("*") if p.is_file()]
    assert len(files) == 3
    assert {oct(p.stat().st_mode & 0o777) for p in files} == {oct(0o666 & ~umask)}
