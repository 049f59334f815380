"""Nothing lost: --out is refused when it would clobber something else, files are written atomically
(a full disk leaves the old file, not half a new one), and a failed command marks its run failed."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

import netatlas
from cli_runner import run_cli as _run
from netatlas.report import RunDir, command_runs


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    path = tmp_path_factory.mktemp("m") / "m.pt2"
    netatlas.nets.save(netatlas.nets.mlp([2, 4, 1], seed=0), path, input_shape=(2,))
    return path


@pytest.mark.parametrize("out", ["", "."])
def test_out_naming_the_current_directory_is_refused(tmp_path, capsys, monkeypatch, model, out):
    monkeypatch.chdir(tmp_path)
    code, _, err = _run(["regions", str(model), "--out", out], capsys)
    assert code == 1 and err.startswith("ValueError: --out ") and "current directory" in err
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match="current directory"):
        RunDir.create("", command="x")


def test_out_into_a_foreign_non_empty_directory_needs_overwrite(tmp_path, capsys, model):
    target = tmp_path / "precious"
    target.mkdir()
    (target / "thesis.tex").write_text("years of work")
    code, _, err = _run(["regions", str(model), "--out", str(target)], capsys)
    assert code == 1 and "non-empty directory that is not a netatlas run" in err and "--overwrite" in err
    assert sorted(p.name for p in target.iterdir()) == ["thesis.tex"]
    code, _, err = _run(["regions", str(model), "--out", str(target), "--overwrite"], capsys)
    assert code == 0, err
    assert (target / "report.html").exists() and (target / "thesis.tex").read_text() == "years of work"


def test_out_holding_another_command_or_other_settings_is_refused(tmp_path, capsys, model):
    out = tmp_path / "run"
    assert _run(["regions", str(model), "--out", str(out)], capsys)[0] == 0
    # the same command and settings: a rerun (resume) is allowed
    assert _run(["regions", str(model), "--out", str(out)], capsys)[0] == 0
    before = (out / "summary.json").read_text()
    code, _, err = _run(["regions", str(model), "--out", str(out), "--plane", "square:2"], capsys)
    assert code == 1 and "other settings (plane differ)" in err
    code, _, err = _run(["sweep", "run", "json:dumps", "--out", str(out)], capsys)
    assert code == 1 and "holds a run of 'regions', not 'sweep run'" in err
    assert (out / "summary.json").read_text() == before


def test_a_failed_command_marks_its_run_failed(tmp_path, capsys, monkeypatch):
    path = tmp_path / "wide.pt2"
    netatlas.nets.save(netatlas.nets.mlp([2, 3000], seed=0), path, input_shape=(2,))
    monkeypatch.setenv("NETATLAS_MEMORY_BUDGET", "64MiB")  # the plot's outputs do not fit
    code, _, err = _run(["regions", str(path), "--out", str(tmp_path / "run")], capsys)
    assert code == 1 and err.startswith("MemoryBudgetError")
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["status"] == "failed" and summary["error"].startswith("MemoryBudgetError: Partition.outputs")
    assert not (tmp_path / "run" / "report.html").exists()


def test_command_runs_marks_interrupted_runs_and_keeps_numbers(tmp_path):
    with pytest.raises(KeyboardInterrupt), command_runs():
        run = RunDir.create(tmp_path / "r", command="test")
        run.write_summary({"num_regions": 12})
        raise KeyboardInterrupt
    assert json.loads((tmp_path / "r" / "summary.json").read_text()) == {
        "num_regions": 12, "status": "failed", "error": "KeyboardInterrupt"}
    with command_runs():  # success: the summary is left alone
        RunDir.create(tmp_path / "ok", command="test").write_summary({"a": 1})
    assert json.loads((tmp_path / "ok" / "summary.json").read_text()) == {"a": 1}


_FULL_DISK = """
import resource, signal, sys
import numpy as np
from netatlas.report import RunDir
run = RunDir.create({out!r}, command="test", config={{}})
run.add_text("Small", "x")
run.write_report("first")
first = open({out!r} + "/report.html").read()
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit then fail with EFBIG, like a full disk
resource.setrlimit(resource.RLIMIT_FSIZE, (len(first) + 1000, resource.RLIM_INFINITY))
run.add_text("Big", "y" * 100_000)
for step in (lambda: run.write_report("second"), lambda: run.write_summary({{"big": "z" * 100_000}}),
             lambda: run.save_arrays("a", x=np.random.default_rng(0).normal(size=100_000))):
    try:
        step()
        print("WROTE")
    except OSError as exc:
        print("FAILED", exc.errno)
"""


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_FSIZE simulates a full disk on Linux")
def test_a_full_disk_leaves_the_previous_report_not_half_a_new_one(tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(_FULL_DISK.format(out=str(out)))],
                          capture_output=True, text=True, timeout=120, env=env)
    assert done.stdout.split() == ["FAILED", "27", "FAILED", "27", "FAILED", "27"], done.stderr[-2000:]
    report = (out / "report.html").read_text()
    assert report.endswith("</html>") and "first" in report and "Big" not in report
    assert not (out / "summary.json").exists() and not (out / "a.npz").exists()
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "environment.json", "report.html"]


def _snapshot(folder):
    """Every file under ``folder``: its bytes, mode and modification time."""
    return {str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mode, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("change", ["picture", "model"])
def test_a_refused_resume_touches_nothing(tmp_path, capsys, change):
    pytest.importorskip("pyarrow")
    model = tmp_path / "m.pt2"
    netatlas.nets.save(netatlas.nets.mlp([2, 6, 1], seed=0), model, input_shape=(2,))
    out = tmp_path / "run"
    args = ["regions", str(model), "--tiles", "2", "--picture", "16", "--out", str(out)]
    code, _, err = _run(args, capsys)
    assert code == 0, err
    assert json.loads((out / "summary.json").read_text()).get("status") != "failed"
    before = _snapshot(out)
    if change == "picture":  # not in the run's config, but the tiles were made for another picture
        args[args.index("--picture") + 1] = "24"
    else:  # the same file name, another model: its tiles cannot be reused
        netatlas.nets.save(netatlas.nets.mlp([2, 6, 1], seed=1), model, input_shape=(2,))
    code, _, err = _run(args, capsys)
    assert code == 1 and err.startswith("ResumeRefusedError: ") and len(err.strip().splitlines()) == 1, err
    assert "use a new --out" in err
    assert _snapshot(out) == before


def test_sigterm_marks_the_run_failed_and_exits_143(tmp_path):
    def outside(signum, frame):  # the process's own handler, in place before and after the command
        raise RuntimeError("SIGTERM reached the handler from outside the command")

    previous = signal.signal(signal.SIGTERM, outside)
    try:
        with pytest.raises(SystemExit) as info, command_runs():
            run = RunDir.create(tmp_path / "r", command="test")
            run.write_summary({"num_regions": 12})
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler raises here
        assert signal.getsignal(signal.SIGTERM) is outside
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert info.value.code == 143
    assert json.loads((tmp_path / "r" / "summary.json").read_text()) == {
        "num_regions": 12, "status": "failed", "error": "Terminated: SIGTERM (exit status 143)"}


_SLOW = """
import pathlib, time

def slow(config):
    pathlib.Path(config["started"]).touch()
    time.sleep(60)
    return {}
"""


@pytest.mark.skipif(sys.platform == "win32", reason="SIGTERM is POSIX")
def test_sigterm_on_the_cli_marks_the_run_failed_and_exits_143(tmp_path):
    (tmp_path / "slow_module.py").write_text(_SLOW)
    started = tmp_path / "started"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *(p for p in sys.path if p)])}
    proc = subprocess.Popen([sys.executable, "-m", "netatlas", "sweep", "run", "slow_module:slow", "--grid",
                             f"started={json.dumps(str(started))}", "--out", str(tmp_path / "run")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 120
        while not started.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert started.exists(), proc.communicate(timeout=5)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 143, err[-2000:]
    assert "Traceback" not in err, err[-2000:]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary == {"status": "failed", "error": "Terminated: SIGTERM (exit status 143)"}


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_run_files_follow_the_umask(tmp_path, umask):
    previous = os.umask(umask)
    try:
        run = RunDir.create(tmp_path / "r", command="test", config={"a": 1})
        run.write_summary({"b": 2})
        run.save_arrays("x", y=[1.0, 2.0])
        run.write_report("t")
    finally:
        os.umask(previous)
    files = sorted(p for p in (tmp_path / "r").iterdir())
    assert [p.name for p in files] == ["config.json", "environment.json", "report.html", "summary.json", "x.npz"]
    assert {p.name: oct(p.stat().st_mode & 0o777) for p in files} == {p.name: oct(0o666 & ~umask) for p in files}
