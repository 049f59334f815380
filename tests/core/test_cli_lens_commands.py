"""Lens commands on a user's model file and data file: ``info``, ``splines watch --model``,
``dynamics zones MODEL``; each run's output is checked against the library called directly."""

from __future__ import annotations

import torch
from torch import nn
from typer.testing import CliRunner

import netatlas
from netatlas.cli import app, command_verdicts


def _invoke(*args):
    out = CliRunner().invoke(app, [str(a) for a in args])
    assert out.exit_code == 0, (out.output, out.exception)
    return out.output


def _lens_lines(output):
    lines = output.splitlines()
    start = lines.index("commands on this model (yes: what it does, or no: why):") + 1
    return [line.strip() for line in lines[start:]]


def test_info_lists_every_lens_with_the_reason(tmp_path):
    models = {
        "sigmoid.pt2": (netatlas.nets.mlp([2, 5, 3], "sigmoid", seed=0), (2,)),
        "shallow.pt2": (netatlas.nets.mlp([1, 8, 1], seed=1), (1,)),
        "pool.pt2": (nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(18, 3)),
                     (1, 8, 8)),
        "relu_out.pt2": (nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 3), nn.ReLU()), (2,)),
    }
    verdicts, said = {}, {}
    for name, (module, shape) in models.items():
        netatlas.nets.save(module, tmp_path / name, input_shape=shape)
        lenses = netatlas.nets.load(tmp_path / name).lenses()
        assert set(lenses) == {"regions", "metric", "splines", "lowrank", "dynamics", "dynamics zones"}
        assert all(v == "yes" or v.startswith("no: ") for v in lenses.values())
        lines = _lens_lines(_invoke("info", tmp_path / name))
        commands = command_verdicts(netatlas.nets.load(tmp_path / name), tmp_path / name)
        assert lines == [f"{command:<9} {verdict}".strip() for command, verdict in commands.items()]
        assert all(v == "yes" or v.startswith(("yes: ", "no: ")) for v in commands.values())
        verdicts[name] = lenses
        said[name] = commands
    assert verdicts["sigmoid.pt2"]["regions"].startswith("no: smooth activations ['sigmoid']")
    assert verdicts["shallow.pt2"]["splines"] == "yes" and verdicts["sigmoid.pt2"]["splines"].startswith("no")
    assert verdicts["pool.pt2"]["regions"] == "yes"  # max pooling is piecewise linear
    assert verdicts["pool.pt2"]["dynamics zones"].startswith("no") and verdicts["pool.pt2"]["dynamics"] == "yes"
    assert verdicts["sigmoid.pt2"]["dynamics zones"] == "yes" and verdicts["sigmoid.pt2"]["lowrank"] == "yes"
    assert verdicts["relu_out.pt2"]["lowrank"].startswith("no: the last layer")
    # info says what the command does: `dynamics zones` runs on a CNN (gradients, boundary distance), only the
    # zones part is skipped -- the lens table's "no" read as if the command refused it
    assert said["pool.pt2"]["dynamics zones"].startswith("yes: per-sample gradient norms and decision-boundary")
    assert "transition zones skipped (needs a chain of Linear layers" in said["pool.pt2"]["dynamics zones"]
    assert said["sigmoid.pt2"]["regions"].startswith("no: smooth activations")
    assert said["shallow.pt2"]["splines watch"] == "yes" and said["pool.pt2"]["splines watch"].startswith("no")


def test_info_says_dynamics_zones_runs_on_a_cnn_and_it_does(tmp_path):
    module = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(18, 3))
    netatlas.nets.save(module, tmp_path / "cnn.pt2", input_shape=(1, 8, 8))
    x = torch.rand(12, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    y = torch.arange(12) % 3
    torch.save({"x": x, "y": y}, tmp_path / "d.pt")
    assert "dynamics zones yes: per-sample gradient norms" in _invoke("info", tmp_path / "cnn.pt2")
    _invoke("dynamics", "zones", tmp_path / "cnn.pt2", "--data", tmp_path / "d.pt", "--out", tmp_path / "run")
    summary = _summary(tmp_path / "run")
    assert "gradient_norm" in summary and "boundary_distance" in summary and "skipped" in summary["zones"]


def _summary(run_dir):
    import json

    return json.loads((run_dir / "summary.json").read_text())


def test_splines_watch_trains_the_users_model_on_the_users_data(tmp_path):
    import numpy as np

    from netatlas.splines import simulate_flow

    torch.manual_seed(3)
    module = nn.Sequential(nn.Linear(1, 6), nn.ReLU(), nn.Linear(6, 1))
    netatlas.nets.save(module, tmp_path / "shallow.pt2", input_shape=(1,))
    x = np.linspace(-1, 1, 7)
    y = np.abs(x) - 0.3 * x
    rows = "".join(f"{float(a)!r},{float(b)!r}\n" for a, b in zip(x, y, strict=True))
    (tmp_path / "pairs.csv").write_text("x,y\n" + rows)
    out = tmp_path / "run"
    _invoke("splines", "watch", tmp_path / "shallow.pt2", "--data", tmp_path / "pairs.csv", "--steps", 120,
            "--frames", 3, "--format", "gif", "--samples", 20, "--width", 10, "--out", out)
    summary = _summary(out)
    assert summary["n_points"] == 7 and summary["steps"] == 120
    # the initial loss is the user's model on the user's data: 1/2 sum r^2 in float64, independently
    with torch.no_grad():
        r = module.double()(torch.as_tensor(x)[:, None]).numpy()[:, 0] - y
    initial = 0.5 * float(r @ r)
    assert abs(summary["initial_loss"] - initial) <= 1e-12 * (1 + initial) * len(x)
    # and the trained loss is the library's flow from that net, called directly (same deterministic GD)
    flow = simulate_flow(netatlas.nets.load(tmp_path / "shallow.pt2"), x, y, n_steps=120, lr="auto", n_records=3)
    assert summary["final_loss"] == flow.loss[-1] or abs(summary["final_loss"] - flow.loss[-1]) <= 1e-9 * initial
    assert summary["final_loss"] < initial


def test_splines_watch_rejects_bad_models_and_data_in_one_line(tmp_path):
    netatlas.nets.save(netatlas.nets.mlp([2, 4, 1], seed=0), tmp_path / "wide.pt2", input_shape=(2,))
    (tmp_path / "three.csv").write_text("1,2,3\n4,5,6\n")
    (tmp_path / "ok.csv").write_text("0,1\n1,0\n0.5,0.2\n")
    for args, expected in [((tmp_path / "wide.pt2",), "is not a 1 -> H ReLU -> 1 network"),
                           (("--data", tmp_path / "three.csv"), "needs 1-D inputs"),
                           (("--data", tmp_path / "nope.npz"), "no such file")]:
        out = CliRunner().invoke(app, ["splines", "watch", *map(str, args), "--steps", "5", "--out",
                                       str(tmp_path / "r")])
        assert out.exit_code != 0 and isinstance(out.exception, ValueError), out.output
        message = str(out.exception)
        assert expected in message and "\n" not in message and message.startswith("splines watch:")


def _trained(module, x, y, steps=150):
    optimiser = torch.optim.Adam(module.parameters(), lr=0.03)
    for _ in range(steps):
        optimiser.zero_grad()
        nn.functional.cross_entropy(module(x), y).backward()
        optimiser.step()
    return module.eval()


def test_dynamics_zones_on_the_users_model_and_data_file(tmp_path):
    import numpy as np

    from netatlas.dynamics import boundary_distance, per_sample_gradient_norms, zone_membership

    data = netatlas.data.load("moons")
    x, y = data.x[:80], data.y[:80]
    torch.manual_seed(0)
    module = _trained(nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2)), x, y)
    netatlas.nets.save(module, tmp_path / "relu.pt2", input_shape=(2,))
    rows = "".join(f"{float(a)!r},{float(b)!r},{int(c)}\n" for (a, b), c in zip(x.tolist(), y.tolist(), strict=True))
    (tmp_path / "points.csv").write_text("x1,x2,label\n" + rows)
    out = tmp_path / "run"
    _invoke("dynamics", "zones", tmp_path / "relu.pt2", "--data", tmp_path / "points.csv", "--zone-width", 0.2,
            "--out", out)
    summary = _summary(out)
    assert summary["n"] == 80 and summary["loss"] == "cross_entropy"
    # gradient norms: the original torch module (closed form) vs the command (the saved program, vmap);
    # float32 round-off of a few hundred products, relative to the norm
    g = per_sample_gradient_norms(module, x, y)
    assert np.isclose(summary["gradient_norm"]["mean"], g.total.mean(), rtol=1e-5, atol=0)
    assert np.isclose(summary["gradient_norm"]["max"], g.total.max(), rtol=1e-5, atol=0)
    net = netatlas.nets.load(tmp_path / "relu.pt2")
    member = zone_membership(net, x, width=0.2)
    zones = summary["zones"]
    assert zones["n_units"] == 16 and zones["fraction_in_any_zone"] == float(member.any(1).mean())
    assert zones["mean_zones_per_sample"] == float(member.sum(1).mean())
    share = (g.total[member.any(1)] ** 2).sum() / (g.total ** 2).sum()
    assert np.isclose(zones["gradient_share_in_zones"], share, rtol=1e-5)
    distance = boundary_distance(net, x)
    assert np.isclose(summary["boundary_distance"]["median"], np.median(distance), rtol=1e-12)
    saved = np.load(out / "samples.npz")
    assert np.array_equal(saved["in_zone"], member) and np.array_equal(saved["boundary_distance"], distance)
    assert (out / "report.html").is_file() and (out / "gradients.png").is_file()


def test_dynamics_zones_smooth_units_use_eps_zones_and_bad_input_is_one_line(tmp_path):
    import numpy as np

    from netatlas.dynamics import zone_membership

    netatlas.nets.save(netatlas.nets.mlp([2, 6, 1], "sigmoid", seed=2), tmp_path / "sig.pt2", input_shape=(2,))
    out = tmp_path / "run"
    _invoke("dynamics", "zones", tmp_path / "sig.pt2", "--data", "moons", "--n", 50, "--eps", 0.2, "--out", out)
    summary = _summary(out)
    x = netatlas.data.load("moons").x[:50]
    member = zone_membership(netatlas.nets.load(tmp_path / "sig.pt2"), x, eps=0.2)
    assert summary["zones"]["width"] is None and summary["zones"]["fraction_in_any_zone"] == float(member.any(1).mean())
    assert np.isfinite(summary["boundary_distance"]["median"])
    for args, expected in [((tmp_path / "sig.pt2",), "needs --data"),
                           ((tmp_path / "sig.pt2", "--data", "no_such_set"), "neither a data file"),
                           ((tmp_path / "sig.pt2", "--data", "mnist_sample"), "inputs per sample")]:
        result = CliRunner().invoke(app, ["dynamics", "zones", *map(str, args), "--out", str(tmp_path / "r")])
        assert result.exit_code != 0 and isinstance(result.exception, ValueError), result.output
        assert expected in str(result.exception) and "\n" not in str(result.exception)


def test_dynamics_zones_regression_targets_use_mse_and_no_boundary(tmp_path):
    import numpy as np

    from netatlas.dynamics import per_sample_gradient_norms, zone_membership

    module = netatlas.nets.mlp([1, 6, 1], seed=0)
    netatlas.nets.save(module, tmp_path / "r.pt2", input_shape=(1,))
    x = np.linspace(-1, 1, 9)
    y = np.sin(3 * x)
    rows = "".join(f"{float(a)!r},{float(b)!r}\n" for a, b in zip(x, y, strict=True))
    (tmp_path / "p.csv").write_text("x,y\n" + rows)
    out = tmp_path / "run"
    _invoke("dynamics", "zones", tmp_path / "r.pt2", "--data", tmp_path / "p.csv", "--out", out)
    summary = _summary(out)
    assert summary["loss"] == "mse" and "boundary_distance" not in summary
    xt, yt = torch.tensor(x, dtype=torch.float32)[:, None], torch.tensor(y, dtype=torch.float32)
    g = per_sample_gradient_norms(module, xt, yt, loss="mse")
    assert np.isclose(summary["gradient_norm"]["mean"], g.total.mean(), rtol=1e-5, atol=0)
    # ReLU units: distance zones, default width 5 % of the data's extent (here 2)
    assert summary["zones"]["width"] == 0.05 * 2.0
    member = zone_membership(netatlas.nets.load(tmp_path / "r.pt2"), xt, width=0.1)
    assert summary["zones"]["fraction_in_any_zone"] == float(member.any(1).mean())
