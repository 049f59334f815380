"""Tests for netatlas.sweep: grid, keys, in-process and Dask runs, resuming, status and the CLI."""

import json
import os
import sys
import time
import uuid
import warnings
from pathlib import Path

import numpy as np
import pytest

from netatlas.sweep import config_key, grid, load_results, run, status


def square_and_count(config):
    """Counts its calls through files (Dask runs it in other processes); may fail once or always."""
    calls = Path(config["calls"])
    calls.mkdir(parents=True, exist_ok=True)
    (calls / f"{config['x']}-{uuid.uuid4().hex}").touch()
    armed = calls.parent / f"fail-{config['x']}"
    if config.get("fail") == "always" or (config.get("fail") == "once" and not armed.exists()):
        armed.touch()
        raise RuntimeError(f"boom at x={config['x']}")
    if config.get("interrupt") and not armed.exists():
        armed.touch()
        raise KeyboardInterrupt
    return {"y": np.float64(config["x"]) ** 2, "array": np.arange(2)}


def _calls(tmp_path):
    folder = tmp_path / "calls"
    return sorted(p.name.split("-")[0] for p in folder.iterdir()) if folder.exists() else []


def _configs(tmp_path, xs, extra=None):
    extra = extra or {}
    return [{"x": x, "calls": str(tmp_path / "calls"), **extra.get(x, {})} for x in xs]


def test_grid_is_the_cartesian_product_in_stable_order():
    configs = grid(a=[1, 2], b=["u", "v", "w"], c=0.5)
    assert len(configs) == 6
    assert configs[0] == {"a": 1, "b": "u", "c": 0.5} and configs[1] == {"a": 1, "b": "v", "c": 0.5}
    assert configs[-1] == {"a": 2, "b": "w", "c": 0.5}
    assert grid() == [{}] and grid(a=[]) == [] and grid(a="xy") == [{"a": "xy"}]
    assert grid(a=({"k": 1}, [1, 2])) == [{"a": {"k": 1}}, {"a": [1, 2]}]


def test_config_keys_are_stable_short_and_safe():
    assert config_key({"width": 16, "seed": 0}) == "seed=0_width=16-f3f216ef6f38"  # pinned across versions
    assert config_key({"seed": 0, "width": 16}) == config_key({"width": 16, "seed": 0})
    assert config_key({"seed": np.int64(0), "width": np.int32(16)}) == config_key({"seed": 0, "width": 16})
    assert config_key({"seed": 1}) != config_key({"seed": 2}) != config_key({"seed": "2"})
    weird = config_key({"path": "/a b/c?*", "nested": {"z": [1, 2]}, "long": "x" * 200})
    assert len(weird) <= 48 + 1 + 12 and all(c.isalnum() or c in "._=+~-" for c in weird)
    keys = {config_key(c) for c in grid(a=range(30), b=range(30))}
    assert len(keys) == 900
    with pytest.raises(TypeError, match="config must be JSON-serialisable"):
        config_key({"f": object()})
    with pytest.raises(TypeError, match="config must be a dict, got list"):
        config_key([1])


def test_in_process_run_writes_each_result_with_its_config(tmp_path):
    out = tmp_path / "sweep"
    configs = _configs(tmp_path, [3, 1, 2])
    records = run(square_and_count, configs, out)
    assert [r["result"]["y"] for r in records] == [9.0, 1.0, 4.0]  # config order
    assert [r["config"]["x"] for r in records] == [3, 1, 2] and records[0]["result"]["array"] == [0, 1]
    for config, record in zip(configs, records, strict=True):
        stored = json.loads((out / "results" / f"{config_key(config)}.json").read_text())
        assert stored["config"] == config and stored["status"] == "done" and stored == record
    assert not list(out.rglob("*.tmp"))
    assert json.loads((out / "sweep.json").read_text())["n_configs"] == 3
    assert load_results(out) == records


def test_a_failure_is_recorded_and_a_rerun_computes_only_the_missing(tmp_path):
    out = tmp_path / "sweep"
    configs = _configs(tmp_path, [0, 1, 2, 3], {2: {"fail": "once"}})
    with pytest.warns(UserWarning, match=r"1 of 4 configs failed .* boom at x=2"):
        records = run(square_and_count, configs, out)
    assert [r["status"] for r in records] == ["done", "done", "failed", "done"]
    assert records[2]["error"] == "RuntimeError: boom at x=2" and "Traceback" in records[2]["traceback"]
    state = status(out)
    assert (state.n_configs, state.n_done, state.n_failed, state.n_pending) == (4, 3, 1, 0)
    assert _calls(tmp_path) == ["0", "1", "2", "3"]

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        records = run(square_and_count, configs, out)  # x=2 succeeds now; nothing else is rerun
    assert [r["status"] for r in records] == ["done"] * 4
    assert _calls(tmp_path) == ["0", "1", "2", "2", "3"]
    assert status(out).n_failed == 0 and not list((out / "failed").iterdir())
    # a larger grid computes only the new configs
    run(square_and_count, configs + _configs(tmp_path, [4]), out)
    assert _calls(tmp_path) == ["0", "1", "2", "2", "3", "4"]


def test_an_interrupted_sweep_loses_nothing(tmp_path):
    out = tmp_path / "sweep"
    configs = _configs(tmp_path, [0, 1, 2, 3], {2: {"interrupt": True}})
    with pytest.raises(KeyboardInterrupt):
        run(square_and_count, configs, out)
    state = status(out)
    assert (state.n_done, state.n_failed, state.n_pending) == (2, 0, 2)
    records = run(square_and_count, configs, out)
    assert [r["result"]["y"] for r in records] == [0, 1, 4, 9]
    assert _calls(tmp_path) == ["0", "1", "2", "2", "3"]


def test_duplicates_run_once_and_bad_results_fail_cleanly(tmp_path):
    configs = _configs(tmp_path, [5, 5])
    records = run(square_and_count, configs, tmp_path / "a")
    assert len(records) == 2 and records[0] == records[1] and _calls(tmp_path) == ["5"]
    with pytest.warns(UserWarning, match="1 of 1 configs failed"):
        (record,) = run(lambda config: {"f": object()}, [{}], tmp_path / "b")
    assert record["status"] == "failed" and "not JSON-serialisable" in record["error"]


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match=r"dask must be None \(in-process\), 'local'.*got 'cluster'"):
        run(square_and_count, _configs(tmp_path, [1]), tmp_path / "s", dask="cluster")
    with pytest.raises(TypeError, match="configs must be a list of dicts"):
        run(square_and_count, {"x": 1}, tmp_path / "s")
    with pytest.raises(TypeError, match=r"configs\[1\] must be a dict, got int"):
        run(square_and_count, [{"x": 1}, 2], tmp_path / "s")
    with pytest.raises(TypeError, match="fn must be callable"):
        run(3, [], tmp_path / "s")
    with pytest.raises(FileNotFoundError, match="is not a sweep directory"):
        status(tmp_path / "missing")


@pytest.fixture
def by_value():
    # Dask workers cannot import this test module (it is not on their path): ship the function by value.
    import cloudpickle

    module = sys.modules[__name__]
    cloudpickle.register_pickle_by_value(module)
    yield
    cloudpickle.unregister_pickle_by_value(module)


def _leftover_children():
    """Live child processes, except multiprocessing's own long-lived helpers (resource tracker)."""
    import psutil

    alive = []
    for process in psutil.Process().children(recursive=True):
        try:
            if process.status() == psutil.STATUS_ZOMBIE:
                continue
            command = " ".join(process.cmdline())
        except psutil.Error:  # exited meanwhile
            continue
        if "resource_tracker" not in command and "forkserver" not in command:
            alive.append(process)
    return alive


def test_dask_local_cluster_runs_resumes_and_cleans_up(tmp_path, by_value):
    before = {p.pid for p in _leftover_children()}
    out = tmp_path / "sweep"
    configs = _configs(tmp_path, [0, 1, 2, 3], {1: {"fail": "always"}})
    with pytest.warns(UserWarning, match="1 of 4 configs failed"):
        records = run(square_and_count, configs, out, dask="local")
    assert [r["status"] for r in records] == ["done", "failed", "done", "done"]
    assert [r["result"]["y"] for r in records if r["status"] == "done"] == [0, 4, 9]
    assert records[1]["error"] == "RuntimeError: boom at x=1"
    assert all(r["pid"] != os.getpid() for r in records)  # ran in the cluster's worker processes
    # every finished config is on disk, and the cluster is gone
    assert status(out).n_done == 3
    for _ in range(50):  # worker processes exit asynchronously after close()
        if not [p for p in _leftover_children() if p.pid not in before]:
            break
        time.sleep(0.1)
    assert not [p for p in _leftover_children() if p.pid not in before]
    # resume in-process: only the failed config is recomputed (and fails again)
    with pytest.warns(UserWarning, match="1 of 4 configs failed"):
        run(square_and_count, configs, out)
    assert _calls(tmp_path) == ["0", "1", "1", "2", "3"]


def test_dask_attach_by_address_and_by_client(tmp_path, by_value):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False, host="127.0.0.1", protocol="tcp://",
                                  dashboard_address=None) as cluster:
        records = run(square_and_count, _configs(tmp_path, [2, 3]), tmp_path / "a",
                      dask=cluster.scheduler_address)
        assert cluster.scheduler_address.startswith("tcp://127.0.0.1")
        assert [r["result"]["y"] for r in records] == [4, 9]
        with distributed.Client(cluster) as client:
            records = run(square_and_count, _configs(tmp_path, [4]), tmp_path / "b", dask=client)
            assert records[0]["result"]["y"] == 16
            assert client.status == "running"  # a given client is not closed
    assert _calls(tmp_path) == ["2", "3", "4"]


def test_cli_status_and_run(tmp_path):
    import typer
    from typer.testing import CliRunner

    from netatlas.sweep_cli import register

    app = typer.Typer()

    @app.callback()
    def _root():
        """root"""

    register(app)
    out = tmp_path / "sweep"
    with pytest.warns(UserWarning):
        run(square_and_count, _configs(tmp_path, [0, 1, 2], {0: {"fail": "always"}}), out)
    result = CliRunner().invoke(app, ["sweep", "status", str(out)])
    assert result.exit_code == 0, result.output
    assert "3 configs: 2 done, 1 failed, 0 pending" in result.output and "boom at x=0" in result.output
    result = CliRunner().invoke(app, ["sweep", "status", str(out), "--json"])
    assert json.loads(result.output)["n_done"] == 2

    with pytest.warns(UserWarning, match="1 of 1 configs failed"):
        result = CliRunner().invoke(app, ["sweep", "run", "math:hypot", "--out", str(tmp_path / "r")])
    assert result.exit_code == 1 and "0 done, 1 failed of 1" in result.output  # hypot(dict) fails
    result = CliRunner().invoke(app, ["sweep", "run", "json:dumps", "--grid", "a=1,x", "--grid", "b=[2]",
                                      "--out", str(tmp_path / "r2")])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "r2" / "summary.json").read_text())
    assert summary["n_done"] == 2 and (tmp_path / "r2" / "report.html").exists()
    results = load_results(tmp_path / "r2")
    assert [r["config"] for r in results] == [{"a": 1, "b": [2]}, {"a": "x", "b": [2]}]
    assert results[0]["result"] == '{"a": 1, "b": [2]}'


def test_all_is_complete():
    import netatlas.sweep as sweep

    public = {name for name, value in vars(sweep).items() if not name.startswith("_")
              and getattr(value, "__module__", None) == "netatlas.sweep"}
    assert public == set(sweep.__all__)


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_values = st.one_of(st.integers(-10**6, 10**6), st.floats(allow_nan=False, allow_infinity=False),
                    st.text(max_size=20), st.booleans(), st.none())


@settings(max_examples=50, deadline=None)
@given(config=st.dictionaries(st.text(min_size=1, max_size=10), _values, max_size=6), data=st.data())
def test_config_key_ignores_key_order_and_is_file_safe(config, data):
    shuffled = dict(data.draw(st.permutations(list(config.items()))))
    key = config_key(config)
    assert key == config_key(shuffled)
    assert all(c.isalnum() and c.isascii() or c in "._=+~-" for c in key)
    assert 13 <= len(key) <= 61 and not key.startswith(".")
