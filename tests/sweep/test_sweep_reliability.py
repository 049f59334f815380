"""Sweeps: non-finite and repeated grid values are refused, failures exit 1 saying how many and the first
cause, and Ctrl-C under Dask raises KeyboardInterrupt cleanly (no traceback from the cluster's cleanup)."""

import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from cli_runner import run_cli as _run
from netatlas.sweep import config_key, grid, run


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_config_values_are_refused_not_collapsed(tmp_path, value):
    with pytest.raises(ValueError, match=r"config value lr is NaN or infinite"):
        config_key({"lr": value})
    with pytest.raises(ValueError, match=r"config value opt.lr is NaN or infinite"):
        run(json.dumps, grid(opt=[{"lr": value}, {"lr": 1.0}]), tmp_path / "s")
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize("text", ["x=NaN", "x=1,Infinity", "x=-Infinity", "x=1e999"])
def test_cli_grid_refuses_non_finite_values(tmp_path, capsys, text):
    code, _, err = _run(["sweep", "run", "json:dumps", "--grid", text, "--out", str(tmp_path / "s")], capsys)
    assert code == 1 and err.startswith("ValueError: --grid ") and "not a finite number" in err
    assert not (tmp_path / "s").exists()


def test_cli_grid_refuses_a_repeated_axis(tmp_path, capsys):
    code, _, err = _run(["sweep", "run", "json:dumps", "--grid", "x=1", "--grid", "x=2",
                         "--out", str(tmp_path / "s")], capsys)
    assert code == 1 and "--grid x is given twice" in err and "--grid x=1,2" in err
    assert not (tmp_path / "s").exists()


def test_cli_sweep_with_failures_exits_1_saying_how_many_and_the_first_cause(tmp_path, capsys):
    # math:sqrt fails on a dict config: every config fails
    with pytest.warns(UserWarning, match="2 of 2 configs failed"):
        code, out, err = _run(["sweep", "run", "math:sqrt", "--grid", "x=1,2", "--out", str(tmp_path / "s")],
                              capsys)
    assert code == 1 and "0 done, 2 failed of 2" in out
    assert err.startswith("RunFailedError: sweep run: 2 of 2 configs failed") and "first: x=1-" in err
    assert "TypeError" in err and len(err.strip().splitlines()) == 1
    summary = json.loads((tmp_path / "s" / "summary.json").read_text())
    assert summary["status"] == "failed" and summary["n_failed"] == 2


_INTERRUPTED_SWEEP = """
import os, signal, sys, threading, time
import distributed  # imported before the timer: the interrupt lands while the cluster starts or runs
from netatlas.report import command_runs
from netatlas.sweep import grid, run
sys.path.insert(0, {here!r})
from test_sweep_reliability import sleepy

threading.Timer({delay}, os.kill, (os.getpid(), signal.{signal})).start()
try:
    with command_runs():  # as in a CLI command: SIGTERM raises Terminated (SystemExit 143)
        run(sleepy, grid(x=[1, 2, 3]), {out!r}, dask="local")
except KeyboardInterrupt:
    print("INTERRUPTED", flush=True)
    sys.exit(130)
except SystemExit:
    print("TERMINATED", flush=True)
    raise
print("FINISHED")
"""


def sleepy(config):
    import time

    time.sleep(60)
    return {"x": config["x"]}


@pytest.mark.parametrize("delay,signal_name,code,said", [(0.2, "SIGINT", 130, "INTERRUPTED"),
                                                        (4.0, "SIGINT", 130, "INTERRUPTED"),
                                                        (0.2, "SIGTERM", 143, "TERMINATED"),
                                                        (4.0, "SIGTERM", 143, "TERMINATED")])
def test_ctrl_c_or_sigterm_under_dask_local_stops_cleanly(tmp_path, delay, signal_name, code, said):
    script = _INTERRUPTED_SWEEP.format(here=os.path.dirname(__file__), delay=delay, out=str(tmp_path / "s"),
                                       signal=signal_name)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True,
                          timeout=120, env=env)
    assert done.returncode == code and said in done.stdout, done.stderr[-2000:]
    assert "Traceback" not in done.stderr and "Exception ignored" not in done.stderr, done.stderr[-2000:]


def test_held_interrupt_defers_sigint():
    from netatlas.sweep import _held_interrupt

    with _held_interrupt() as received:
        os.kill(os.getpid(), signal.SIGINT)
    assert received == [signal.SIGINT]
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # SIGTERM is held only where Python handles it
    with pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(1)  # the handler is restored: the signal interrupts this
