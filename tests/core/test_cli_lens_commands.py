"""Lens commands on a user's model file and data file: ``info``, ``splines watch --model``,
``dynamics zones MODEL``; each run's output is checked against the library called directly."""

from __future__ import annotations

from torch import nn
from typer.testing import CliRunner

import netatlas
from netatlas.cli import app


def _invoke(*args):
    out = CliRunner().invoke(app, [str(a) for a in args])
    assert out.exit_code == 0, (out.output, out.exception)
    return out.output


def _lens_lines(output):
    lines = output.splitlines()
    start = lines.index("lenses (yes, or no: why):") + 1
    return [line.strip() for line in lines[start:]]


def test_info_lists_every_lens_with_the_reason(tmp_path):
    models = {
        "sigmoid.pt2": (netatlas.nets.mlp([2, 5, 3], "sigmoid", seed=0), (2,)),
        "shallow.pt2": (netatlas.nets.mlp([1, 8, 1], seed=1), (1,)),
        "pool.pt2": (nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(18, 3)),
                     (1, 8, 8)),
        "relu_out.pt2": (nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 3), nn.ReLU()), (2,)),
    }
    verdicts = {}
    for name, (module, shape) in models.items():
        netatlas.nets.save(module, tmp_path / name, input_shape=shape)
        lenses = netatlas.nets.load(tmp_path / name).lenses()
        assert set(lenses) == {"regions", "metric", "splines", "lowrank", "dynamics", "dynamics zones"}
        assert all(v == "yes" or v.startswith("no: ") for v in lenses.values())
        lines = _lens_lines(_invoke("info", tmp_path / name))
        assert lines == [f"{lens:<9} {verdict}".strip() for lens, verdict in lenses.items()]
        verdicts[name] = lenses
    assert verdicts["sigmoid.pt2"]["regions"].startswith("no: smooth activations ['sigmoid']")
    assert verdicts["shallow.pt2"]["splines"] == "yes" and verdicts["sigmoid.pt2"]["splines"].startswith("no")
    assert verdicts["pool.pt2"]["regions"] == "yes"  # max pooling is piecewise linear
    assert verdicts["pool.pt2"]["dynamics zones"].startswith("no") and verdicts["pool.pt2"]["dynamics"] == "yes"
    assert verdicts["sigmoid.pt2"]["dynamics zones"] == "yes" and verdicts["sigmoid.pt2"]["lowrank"] == "yes"
    assert verdicts["relu_out.pt2"]["lowrank"].startswith("no: the last layer")
