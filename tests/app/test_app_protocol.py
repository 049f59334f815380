"""The websocket protocol, exports and robustness, driven without a browser."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import numpy as np
import pytest
import torch
from app_helpers import SMALL, RunningServer, Tab, unpack
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

import netatlas


def _session(server, tab):
    return server.server.config.app.state.sessions[tab.hello["session"]]


def test_hello_lists_choices_and_constants(tab):
    from netatlas.app import DEFAULT_CONFIG, DEFAULT_VIEW
    from netatlas.dynamics import METHODS
    from netatlas.nets import ACTIVATIONS, INITS
    from netatlas.train import OPTIMIZERS

    assert tab.hello["defaults"]["activation"] == "relu"
    assert "moons" in tab.hello["choices"]["dataset"]
    choices = tab.hello["choices"]  # the library's registries, not copies
    assert choices["activation"] == list(ACTIVATIONS) and choices["init"] == list(INITS)
    assert choices["optimizer"] == list(OPTIMIZERS)
    assert choices["subsample_method"] == [m for m in METHODS if m != "forgetting"]  # needs a history
    constants = tab.hello["constants"]
    assert constants["config_keys"] == list(DEFAULT_CONFIG) and constants["view_keys"] == list(DEFAULT_VIEW)


def test_config_data_frame_and_training(tab):
    tab.send(type="config", config={**SMALL, "dataset": "circles"})
    data = tab.recv("data")
    assert data["config"]["dataset"] == "circles" and len(data["train"]) == 120
    umin, umax, vmin, vmax = data["window"]
    assert umax - umin == pytest.approx(vmax - vmin)  # square window: true angles and widths
    first = tab.recv("frame")
    assert first["meta"]["epoch"] == 0 and not first["meta"]["playing"]
    tab.send(type="play")
    later = tab.frame_where(lambda f: f["meta"]["epoch"] >= 3)
    assert later["meta"]["playing"]
    tab.send(type="pause")
    paused = tab.frame_where(lambda f: not f["meta"]["playing"])
    assert len(paused["meta"]["curves"]["loss"]) == paused["meta"]["epoch"] + 1


def test_regions_and_boundary_are_the_librarys(server, tab):
    tab.send(type="config", config={**SMALL, "dataset": "moons"}, view={"heatmap": "none"})
    tab.recv("data")
    tab.send(type="step")
    frame = tab.frame_where(lambda f: f["meta"]["epoch"] == 1)
    session = _session(server, tab)
    window = tuple(session.window)
    plane = netatlas.Plane(np.zeros(2), [1.0, 0.0], [0.0, 1.0], window)
    net = netatlas.nets.from_torch(session.model)
    part = netatlas.regions.partition(net, plane)
    assert frame["layers"]["regions"]["n_regions"] == part.num_regions
    assert len(frame["layers"]["regions"]["offsets"]) == part.num_regions + 1
    # region classes: the arg-max of the network at a point inside each region
    coords = unpack(frame["layers"]["regions"]["coords"]).reshape(-1, 2).astype(np.float64)
    offsets = frame["layers"]["regions"]["offsets"]
    inside = np.array([coords[a:b].mean(0) for a, b in zip(offsets[:-1], offsets[1:], strict=True)])
    def shoelace(p):
        q = np.roll(p, -1, 0)
        return 0.5 * abs((p[:, 0] * q[:, 1] - q[:, 0] * p[:, 1]).sum())

    areas = [shoelace(coords[a:b]) for a, b in zip(offsets[:-1], offsets[1:], strict=True)]
    (umin, umax, vmin, vmax) = window
    assert sum(areas) == pytest.approx((umax - umin) * (vmax - vmin), rel=1e-4)  # the regions tile the window
    classes = net(inside).argmax(1)
    sent = np.array(frame["layers"]["regions"]["classes"])
    whole = sent != 255  # 255: a region the decision boundary cuts (its pieces carry the classes)
    agree = np.mean(sent[whole] == classes[whole])
    assert agree > 0.99  # float32 vertices: a sliver region's centroid may fall across an edge
    expected = part.predicted_class()  # exact (issue 26.6): the one class of a whole region, -1 for a cut one
    assert np.array_equal(np.sort(np.where(expected < 0, 255, expected)), np.sort(sent))
    segments = frame["layers"]["boundary"]["segments"]  # the exact layer, never a note
    if segments.size:  # both ends of every boundary segment: the two logits are equal there
        ends = unpack(segments).reshape(-1, 2).astype(np.float64)
        logits = net(ends)
        assert np.abs(logits[:, 1] - logits[:, 0]).max() < 1e-3


def test_bad_config_is_an_inline_error_and_the_session_survives(tab):
    tab.send(type="config", config=SMALL)
    tab.recv("data")
    tab.send(type="config", config={**SMALL, "n": 10**9})
    error = tab.recv("error")
    assert error["field"] == "n" and "outside the accepted range" in error["message"]
    tab.send(type="config", config={**SMALL, "lr": "NaN"})
    assert tab.recv("error")["field"] == "lr"
    tab.send(type="step")
    assert tab.frame_where(lambda f: f["meta"]["epoch"] == 1)


@pytest.mark.parametrize("raw", ["not json", "[1, 2]", json.dumps({"type": "launch"}),
                                 json.dumps({"type": "scrub", "index": "x"}),
                                 json.dumps({"type": "view", "view": {"heatmap": "psychedelic"}})])
def test_garbage_messages(tab, raw):
    tab.send(type="config", config=SMALL)
    tab.recv("data")
    tab.ws.send(raw)
    assert tab.recv("error")["message"]
    tab.send(type="step")
    assert tab.frame_where(lambda f: f["meta"]["epoch"] == 1)


def test_upload_bad_then_good_csv(tab):
    tab.send(type="config", config=SMALL)
    tab.recv("data")
    tab.send(type="upload", name="bad.csv", text="x1,x2,label\n0,1,a\n1,oops,b\n")
    error = tab.recv("error")
    assert error["field"] == "upload" and "line 3" in error["message"]
    text = "x1,x2,label\n" + "".join(f"{np.cos(t):.4f},{np.sin(t):.4f},{'in' if i % 2 else 'out'}\n"
                                     for i, t in enumerate(np.linspace(0, 6, 60)))
    tab.send(type="upload", name="ring.csv", text=text)
    data = tab.recv("data")
    assert data["config"]["dataset"] == "upload" and len(data["train"]) == 60 and data["labels"] == ["in", "out"]
    assert tab.recv("uploaded")["n_classes"] == 2


def test_divergence_pauses_with_a_message(tab):
    tab.send(type="config", config={**SMALL, "mode": "regress", "optimizer": "sgd", "lr": 10, "init_scale": 10})
    tab.recv("data")
    tab.send(type="play")
    frame = tab.frame_where(lambda f: f["meta"]["error"] is not None)
    assert "diverged" in frame["meta"]["error"] and not frame["meta"]["playing"]
    tab.send(type="play")  # refused until reset: the error stays, training stays paused
    frame = tab.recv("frame")
    assert frame["meta"]["error"] and not frame["meta"]["playing"]
    tab.send(type="reset")
    tab.recv("data")
    assert tab.recv("frame")["meta"]["error"] is None


def test_scrub_back_and_resume(tab):
    tab.send(type="config", config=SMALL)
    tab.recv("data")
    for _ in range(4):
        tab.send(type="step")
    frame = tab.frame_where(lambda f: f["meta"]["epoch"] == 4)
    assert frame["meta"]["n_snapshots"] == 5
    tab.send(type="scrub", index=1)
    scrubbed = tab.frame_where(lambda f: f["meta"]["scrubbed"])
    assert scrubbed["meta"]["epoch"] == 1 and len(scrubbed["meta"]["curves"]["loss"]) == 2
    tab.send(type="step")  # training continues from the snapshot, later history is dropped
    resumed = tab.frame_where(lambda f: not f["meta"]["scrubbed"])
    assert resumed["meta"]["epoch"] == 2 and resumed["meta"]["n_snapshots"] == 3
    tab.send(type="scrub", index=99)
    assert tab.recv("error")["field"] == "scrub"


def test_frames_are_dropped_not_queued(tab):
    tab.send(type="config", config=SMALL)
    tab.recv("data")
    tab.recv("frame", ack=False)
    tab.send(type="play")
    with pytest.raises(TimeoutError):  # no ack: nothing more is sent however far training runs
        tab.ws.recv(timeout=1.0)
    tab.send(type="ack", frame=0)
    frame = tab.recv("frame")
    assert frame["meta"]["epoch"] > 1  # the newest weights, not the next queued epoch
    tab.send(type="pause")


def test_regression_mode_spline_view(server, tab):
    tab.send(type="config", config={"mode": "regress", "function": "abs", "n": 12, "depth": 1, "widths": [16],
                                    "noise": 0.0})
    data = tab.recv("data")
    assert data["mode"] == "regress" and len(data["train"][0]) == 2
    frame = tab.recv("frame")
    assert frame["layers"]["curve"]["x"].size == frame["layers"]["curve"]["y"].size > 100
    spline = frame["layers"]["spline"]
    assert "unavailable" not in spline and "error" not in spline, spline  # a shallow ReLU net has a spline
    beta = unpack(spline["breakpoints"])
    assert beta.size == 16
    hidden = _session(server, tab).model[0]
    with torch.no_grad():
        expected = (-hidden.bias / hidden.weight[:, 0]).numpy()
    assert np.allclose(beta, expected, rtol=1e-5, atol=1e-6)
    # the breakpoints are -b/w of the hidden layer
    tab.send(type="config", config={"mode": "regress", "depth": 2, "widths": [8, 8]})
    tab.recv("data")
    assert "needs a shallow net" in tab.recv("frame")["layers"]["spline"]["unavailable"]


def test_smooth_activation_has_notes_not_regions(tab):
    tab.send(type="config", config={**SMALL, "activation": "tanh"}, view={"heatmap": "volume", "hyperplanes": True})
    tab.recv("data")
    frame = tab.recv("frame")
    assert "piecewise-linear" in frame["layers"]["regions"]["unavailable"]
    assert frame["layers"]["hyperplanes"]["zone"][1] > 0  # tanh has a transition zone of positive width
    volume = frame["layers"]["volume"]
    assert volume["log_volume"].size == volume["n"] ** 2  # the volume element applies to smooth nets too


def test_export_model_and_report(server, tab, tmp_path):
    tab.send(type="config", config=SMALL)
    tab.recv("data")
    tab.send(type="step")
    tab.frame_where(lambda f: f["meta"]["epoch"] == 1)
    sid = tab.hello["session"]
    blob = urllib.request.urlopen(f"{server.url}api/export/model?session={sid}", timeout=60).read()
    (tmp_path / "m.pt2").write_bytes(blob)
    net = netatlas.nets.load(tmp_path / "m.pt2")
    x = torch.randn(16, 2, generator=torch.Generator().manual_seed(0))
    expected = _session(server, tab).model(x).detach().double()
    assert torch.allclose(net(x), expected, atol=1e-5)
    png = ("data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9Q"
           "DwADhgGAWjR9awAAAABJRU5ErkJggg==")
    request = urllib.request.Request(f"{server.url}api/export/report?session={sid}", method="POST",
                                     data=json.dumps({"image": png}).encode(),
                                     headers={"Content-Type": "application/json"})
    html = urllib.request.urlopen(request, timeout=120).read().decode()
    assert "netatlas playground report" in html and "data:image/png;base64" in html
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(f"{server.url}api/export/model?session=nope", timeout=10)
    assert info.value.code == 404


def test_closed_and_too_many_tabs():
    with RunningServer(max_sessions=2) as srv:
        sessions = srv.server.config.app.state.sessions
        a, b = Tab(srv.url), Tab(srv.url)
        a.send(type="config", config=SMALL)
        a.recv("data")
        a.send(type="play")
        c = connect(srv.url.replace("http", "ws") + "ws", open_timeout=20).__enter__()
        message = json.loads(c.recv(timeout=20))
        assert message["type"] == "error" and "too many open tabs" in message["message"]
        with pytest.raises(ConnectionClosed):
            c.recv(timeout=20)
        a.ws.close()  # a tab closed while training: its session and thread go away
        deadline = time.monotonic() + 20
        while a.hello["session"] in sessions and time.monotonic() < deadline:
            time.sleep(0.05)
        assert a.hello["session"] not in sessions
        d = Tab(srv.url)
        d.send(type="config", config=SMALL)
        assert d.recv("data")["config"]["n"] == 120
        b.close()
        d.close()


def test_oversized_message_closes_only_that_connection(server):
    big = Tab(server.url)
    big.ws.send(json.dumps({"type": "upload", "name": "huge.csv", "text": "0,0,0\n" * 600_000}))
    with pytest.raises(ConnectionClosed):  # above the websocket size limit: uvicorn closes it (1009)
        big.recv("data", timeout=30)
    other = Tab(server.url)  # the server lives on
    other.send(type="config", config=SMALL)
    assert other.recv("data")["config"]["n"] == 120
    other.close()


def test_geometry_in_a_worker_process_and_big_nets():
    with RunningServer(workers=1) as srv:
        tab = Tab(srv.url)
        tab.send(type="config", config=SMALL)
        tab.recv("data")
        tab.send(type="step")
        frame = tab.frame_where(lambda f: f["meta"]["epoch"] == 1, timeout=120)
        assert frame["layers"]["heatmap"]["n"] == 64 and "gradnorm" in frame["layers"]
        # past 256 hidden units the regions and the boundary are still exact (the cap is on regions)
        tab.send(type="config", config={**SMALL, "dataset": "blobs", "n_classes": 3, "depth": 3,
                                        "widths": [128, 128, 128]})
        tab.recv("data")
        tab.send(type="step")
        frame = tab.frame_where(lambda f: f["meta"]["epoch"] == 1, timeout=120)
        regions = frame["layers"]["regions"]
        assert regions["n_regions"] > 1
        assert regions.get("capped") or regions["offsets"].size == regions["n_regions"] + 1
        assert frame["layers"]["boundary"]["segments"].size > 0
        assert frame["layers"]["gradnorm"]["norms"].size == 120
        tab.close()


@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "tanh", "sigmoid", "gelu"])
def test_every_layer_works_for_every_activation(tab, activation):
    view = {"heatmap": "volume", "subsample": True, "subsample_method": "el2n", "metric_layer": 2}
    tab.send(type="config", config={**SMALL, "activation": activation, "dataset": "blobs", "n_classes": 3},
             view=view)
    tab.recv("data")
    tab.send(type="step")
    frame = tab.frame_where(lambda f: f["meta"]["epoch"] == 1)
    errors = {k: v["error"] for k, v in frame["layers"].items() if "error" in v}
    assert not errors
    layers = frame["layers"]
    assert layers["volume"]["log_volume"].size == layers["volume"]["n"] ** 2
    assert 0 < len(layers["subsample"]["kept"]) < 120
    if activation in ("relu", "leaky_relu"):
        assert layers["regions"]["n_regions"] >= 1 and layers["boundary"]["segments"].size > 0
        assert "two classes" in layers["contours"]["unavailable"]
    else:
        assert "piecewise-linear" in layers["regions"]["unavailable"]
