"""`netatlas demo` writes a complete report whose numbers agree with the library."""

import json

import numpy as np

import netatlas
from netatlas.demo import run_demo


def test_demo_writes_report_and_consistent_numbers(tmp_path):
    run = run_demo(tmp_path / "demo", epochs=60, seed=1, progress=False)
    summary = json.loads((run.path / "summary.json").read_text())
    for name in ("report.html", "regions.png", "regions.svg", "magnification.png", "training.png", "model.pt2",
                 "config.json", "environment.json"):
        assert (run.path / name).exists(), name
    html = (run.path / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 3
    # The saved model reproduces the reported numbers through the public API.
    net = netatlas.nets.load(run.path / "model.pt2")
    data = netatlas.data.load("moons", seed=1)
    accuracy = float((net(data.x.numpy().astype(np.float64)).argmax(1) == data.y.numpy()).mean())
    assert accuracy == summary["train_accuracy"]
    assert summary["num_regions"] >= 1 and summary["num_regions"] <= summary["serra2018_upper_bound"]
