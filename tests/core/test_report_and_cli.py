"""Run directories, reports and the CLI's error handling."""

import json
import subprocess
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

import netatlas
from netatlas.report import RunDir


def test_run_directory_writes_everything(tmp_path):
    run = RunDir.create(tmp_path / "run", command="test", config={"seed": 3})
    run.save_arrays("grid", values=np.arange(4.0))
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    run.save_figure(fig, "line", "A falling line.")
    run.add_table("Numbers", [{"a": 1.23456789, "b": "x"}])
    run.write_summary({"value": np.float64(0.5), "nan": float("nan")})
    report = run.write_report("Test report").read_text()
    assert json.loads((run.path / "config.json").read_text()) == {"command": "test", "seed": 3}
    assert json.loads((run.path / "summary.json").read_text()) == {"value": 0.5, "nan": None}
    assert "data:image/png;base64," in report and "A falling line." in report and "1.235" in report
    assert (run.path / "line.svg").exists() and np.load(run.path / "grid.npz")["values"].tolist() == [0, 1, 2, 3]
    assert "torch" in json.loads((run.path / "environment.json").read_text())["packages"]


def _cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "netatlas", *args], capture_output=True, text=True, cwd=cwd)


def test_cli_info_prints_the_ir(tmp_path):
    netatlas.nets.save(netatlas.nets.mlp([2, 6, 3], seed=0), tmp_path / "m.pt2", input_shape=(2,))
    out = _cli("info", str(tmp_path / "m.pt2"))
    assert out.returncode == 0, out.stderr
    assert "Linear(2 -> 6)" in out.stdout and "parameters: 39" in out.stdout and "regions   yes" in out.stdout


def test_cli_errors_are_one_line_without_traceback(tmp_path):
    (tmp_path / "bad.pt2").write_bytes(b"junk")
    out = _cli("info", str(tmp_path / "bad.pt2"))
    assert out.returncode == 1
    assert out.stderr.startswith("ModelFileError: ") and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_every_command_has_help():
    # In-process (CliRunner): a subprocess per command would re-import torch and every lens each time.
    from typer.main import get_command
    from typer.testing import CliRunner

    from netatlas.cli import app

    root = get_command(app)
    names = []

    def walk(group, prefix):
        for name in group.list_commands(None):  # the root loads its lens commands lazily
            command = group.get_command(None, name)
            if hasattr(command, "commands"):
                walk(command, prefix + [name])
            else:
                names.append(prefix + [name])

    walk(root, [])
    assert ["info"] in names
    runner = CliRunner()
    for name in names:
        out = runner.invoke(app, [*name, "--help"])
        assert out.exit_code == 0 and "Usage" in out.output, name
