"""The layers of a playground frame: binary frames, exact geometry (class pieces, regions past 256
units, the region cap, per-region volume), sampled level sets for smooth nets, unit thumbnails,
penalties, input features, zoom, exports and weights in a link. Mostly in-process (a Session and
compute_layers), no browser."""

from __future__ import annotations

import base64
import copy
import json
import math
import time
import urllib.request

import numpy as np
import pytest
import torch
from app_helpers import SMALL, Tab

import netatlas
from netatlas.app import DEFAULT_VIEW, ConfigError, Session, _lenses, compute_layers, validate_config
from netatlas.app._frames import decode_frame, encode_frame, pack
from netatlas.app._server import render_frame

EPS32 = float(np.finfo(np.float32).eps)
EPS64 = float(np.finfo(np.float64).eps)


def _trained(config, epochs=3):
    session = Session(config)
    session.step(epochs)
    return session


def _net64(model):
    return netatlas.nets.from_torch(model)


# -- binary frames -------------------------------------------------------------------------------
def test_frame_round_trip_keeps_every_array_and_value():
    rng = np.random.default_rng(0)
    arrays = {"a": rng.normal(size=7), "b": rng.integers(0, 9, 5), "c": rng.integers(0, 60000, 3)}
    message = {"type": "frame", "x": pack(arrays["a"]), "nested": [{"k": pack(arrays["b"], "u8")}],
               "big": pack(arrays["c"], "u16"), "i": pack(np.arange(3) - 1, "i32"), "empty": pack([], "f32"),
               "meta": {"loss": math.nan}}
    data = encode_frame(message)
    out = decode_frame(data)
    assert np.array_equal(out["x"], arrays["a"].astype(np.float32))
    assert out["nested"][0]["k"].tolist() == arrays["b"].tolist()
    assert out["big"].tolist() == arrays["c"].tolist() and out["i"].tolist() == [-1, 0, 1]
    assert out["empty"].size == 0 and out["meta"]["loss"] is None  # JSON has no NaN
    with pytest.raises(ValueError, match="magic"):
        decode_frame(b"JSON" + data[4:])


def test_frames_are_binary_and_smaller_than_json():
    session = _trained({"n": 500, "widths": [32, 32]}, 2)
    try:
        data = render_frame(session.capture(), DEFAULT_VIEW, 1)
        frame = decode_frame(data)
        regions = frame["layers"]["regions"]
        assert regions["coords"].dtype == np.float32 and regions["offsets"].dtype == np.int32
        assert regions["colour"].dtype == np.uint8 and regions["colour"].max() < _lenses.PATTERN_COLOURS
        assert frame["layers"]["heatmap"]["classes"].dtype == np.uint8
        as_json = json.dumps(frame, default=lambda a: a.tolist())
        assert len(data) < len(as_json)
    finally:
        session.stop()


# -- exported model: any batch size --------------------------------------------------------------
def test_exported_model_accepts_any_batch_size(server, tmp_path):
    tab = Tab(server.url)
    try:
        tab.send(type="config", config=SMALL)
        tab.recv("data")
        blob = urllib.request.urlopen(f"{server.url}api/export/model?session={tab.hello['session']}",
                                      timeout=60).read()
    finally:
        tab.close()
    path = tmp_path / "m.pt2"
    path.write_bytes(blob)
    module = torch.export.load(str(path)).module()
    for batch in (1, 5, 333):
        x = torch.randn(batch, 2, generator=torch.Generator().manual_seed(batch))
        assert module(x).shape == (batch, 2)
    net = netatlas.nets.load(path)
    x = torch.randn(5, 2, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(net(x), module(x).double(), atol=1e-5)


# -- colour by class: regions split along the exact boundary -------------------------------------
@pytest.mark.parametrize(("config", "n_classes"), [
    ({"dataset": "moons", "n": 200, "widths": [16, 16]}, 2),
    ({"dataset": "blobs", "n_classes": 4, "n": 200, "widths": [12, 12]}, 4),
])
def test_class_colouring_splits_regions_along_the_boundary(config, n_classes):
    session = _trained(config, 4)
    try:
        frame = session.capture()
        layers = decode_frame(render_frame(frame, {**DEFAULT_VIEW, "colour_by": "class"}, 1))["layers"]
        pieces = layers["regions"]["pieces"]
        coords = pieces["coords"].reshape(-1, 2).astype(np.float64)
        offsets, classes = pieces["offsets"], pieces["classes"]
        net = _net64(session.model)
        logits = np.asarray(net(coords), dtype=np.float64)
        own = logits[np.arange(len(coords)), np.repeat(classes, np.diff(offsets))]
        margin = own - logits.max(1)  # <= 0; 0 where the piece's class wins
        # tolerance: the float32 rounding of the vertices (relative eps32 of the window) times the
        # largest slope of a logit difference, plus the round-off of the logits themselves
        umin, umax, vmin, vmax = session.window
        scale = max(abs(umin), abs(umax), abs(vmin), abs(vmax))
        part = netatlas.regions.partition(net, netatlas.Plane(np.zeros(2), [1.0, 0], [0, 1.0], session.window))
        slope = 2 * np.abs(part.output_linear).sum(2).max()
        tol = 4 * EPS32 * scale * slope + 1e-9 * (1 + np.abs(logits).max())
        assert margin.min() >= -tol, (margin.min(), tol)  # no wedge of the wrong colour anywhere
        assert set(np.unique(classes)) <= set(range(n_classes)) and len(np.unique(classes)) >= 2
        q = np.roll(np.arange(len(coords)), -1)  # shoelace, per piece
        nxt = q.copy()
        nxt[offsets[1:] - 1] = offsets[:-1]
        cross = coords[:, 0] * coords[nxt, 1] - coords[nxt, 0] * coords[:, 1]
        areas = 0.5 * np.add.reduceat(cross, offsets[:-1])
        assert np.all(areas > 0)
        assert areas.sum() == pytest.approx((umax - umin) * (vmax - vmin), rel=1e-5)  # they tile the window
        assert len(classes) > layers["regions"]["n_regions"]  # the boundary did cut regions
    finally:
        session.stop()


# -- scrubbing back then stepping branches explicitly --------------------------------------------
def test_step_after_scrubbing_back_says_the_history_was_dropped(tab):
    tab.send(type="config", config=SMALL)
    tab.recv("data")
    for _ in range(3):
        tab.send(type="step")
    tab.frame_where(lambda f: f["meta"]["epoch"] == 3)
    tab.send(type="scrub", index=1)
    tab.frame_where(lambda f: f["meta"]["scrubbed"])
    tab.send(type="step")
    notice = tab.recv("notice")
    assert "branched from the snapshot at epoch 1" in notice["message"] and "dropped" in notice["message"]
    assert "epochs 2..3" in notice["message"]


# -- metric layer field --------------------------------------------------------------------------
def test_metric_layer_the_net_lacks_is_refused(tab):
    tab.send(type="config", config=SMALL)  # two hidden layers
    tab.recv("data")
    tab.send(type="view", view={"heatmap": "volume", "metric_layer": 3})
    error = tab.recv("error")
    assert error["field"] == "metric_layer" and "2 hidden layer" in error["message"]
    tab.send(type="view", view={"heatmap": "volume", "metric_layer": 2})
    tab.send(type="step")
    frame = tab.frame_where(lambda f: f["meta"]["epoch"] == 1 and "volume" in f["layers"])
    assert frame["layers"]["volume"]["layer"] == 2


def test_volume_layer_never_shows_another_layer():
    session = Session({"n": 40, "depth": 1, "widths": [4]})
    try:
        layers = compute_layers(session.capture(), {**DEFAULT_VIEW, "heatmap": "volume", "metric_layer": 2})
        assert "1 hidden layer" in layers["volume"]["unavailable"]
    finally:
        session.stop()


# -- parameter limit counts the real outputs -----------------------------------------------------
def test_parameter_limit_counts_the_real_outputs():
    widths = {"depth": 4, "widths": [256] * 4}
    assert validate_config({**widths, "dataset": "moons"})["widths"] == [256] * 4  # 2 outputs: 198,658
    with pytest.raises(ConfigError, match=r"\[2, 256, 256, 256, 256, 10\].*200,714"):
        validate_config({**widths, "dataset": "blobs", "n_classes": 10})
    assert validate_config({**widths, "mode": "regress"})["widths"] == [256] * 4
    with pytest.raises(ConfigError, match=r"\[2, 256, 256, 256, 256, 10\]"):  # an upload not parsed yet
        validate_config({**widths, "dataset": "upload", "upload": True})
    assert validate_config({**widths, "dataset": "upload", "upload": 2})["dataset"] == "upload"


# -- texts ---------------------------------------------------------------------------------------
def test_regression_text_says_sin_pi_x():
    session = Session({"mode": "regress", "function": "sin", "n": 12, "depth": 1, "widths": [8]})
    try:
        assert "y = sin(pi x)" in session.description and "sin(x)" not in session.description
    finally:
        session.stop()


def test_report_does_not_leak_timing_fields(server, tab):
    tab.send(type="config", config=SMALL)
    tab.recv("data")
    request = urllib.request.Request(f"{server.url}api/export/report?session={tab.hello['session']}",
                                     method="POST", data=b"{}", headers={"Content-Type": "application/json"})
    html = urllib.request.urlopen(request, timeout=120).read().decode()
    assert "serra2018_upper" in html  # the bounds are there
    for field in ("'ms'", '"ms"', "partition_ms", "timing_ms"):
        assert field not in html


# -- coverage: past 256 units, region cap, smooth nets -------------------------------------------
def test_exact_regions_past_256_hidden_units():
    session = _trained({"dataset": "blobs", "n_classes": 3, "n": 100, "depth": 3, "widths": [128, 128, 128]}, 3)
    try:
        frame = session.capture()
        layers = compute_layers(frame, {**DEFAULT_VIEW, "heatmap": "none"})
        part = netatlas.regions.partition(frame.net, netatlas.Plane(np.zeros(2), [1.0, 0], [0, 1.0], frame.window))
        assert layers["regions"]["n_regions"] == part.num_regions > 100
        assert len(layers["boundary"]["segments"]) > 0 and "sampled" not in layers["boundary"]
    finally:
        session.stop()


def test_region_cap_says_so_and_keeps_the_boundary(monkeypatch):
    monkeypatch.setattr(_lenses, "MAX_DRAWN_REGIONS", 5)
    session = Session({"n": 100, "widths": [16, 16]})
    try:
        layers = compute_layers(session.capture(), DEFAULT_VIEW)
        assert layers["regions"]["capped"] and "drawing cap of 5" in layers["regions"]["note"]
        assert "coords" not in layers["regions"] and layers["regions"]["n_regions"] > 5
        assert len(layers["boundary"]["segments"]) > 0
    finally:
        session.stop()


@pytest.mark.parametrize("activation", ["tanh", "sigmoid", "gelu"])
def test_smooth_nets_get_a_sampled_boundary_and_contours(activation):
    session = _trained({"n": 200, "widths": [16, 16], "activation": activation, "lr": 0.03}, 5)
    try:
        frame = session.capture()
        layers = compute_layers(frame, DEFAULT_VIEW)
        boundary = layers["boundary"]
        assert boundary["sampled"] and "sampled" in boundary["note"] and "piecewise-linear" in \
            layers["regions"]["unavailable"]
        ends = np.asarray(boundary["segments"].array, dtype=np.float64).reshape(-1, 2)
        assert len(ends) > 10
        with torch.no_grad():
            logits = frame.model(torch.as_tensor(ends, dtype=torch.float32)).double().numpy()
        diff = logits[:, 1] - logits[:, 0]
        # each end is interpolated on a fine-cell edge whose corners straddle 0: |f| <= h * max |grad f|
        n, refine = _lenses.SAMPLED_GRID
        umin, umax = frame.window[:2]
        h = (umax - umin) / (n * refine)
        x = torch.as_tensor(ends, dtype=torch.float64).requires_grad_(True)
        model64 = session.model.double()
        out = model64(x)
        grad = torch.autograd.grad((out[:, 1] - out[:, 0]).sum(), x)[0].norm(dim=1).max().item()
        assert np.abs(diff).max() <= 2 * h * grad + 1e-5
        lines = layers["contours"]["lines"]
        assert [line["level"] for line in lines] == [0.25, 0.75] and layers["contours"]["sampled"]
    finally:
        session.stop()


def test_closed_session_thread_ends_quickly():
    session = Session({"n": 2000, "widths": [64, 64], "batch_size": 4})
    session.play()
    time.sleep(0.3)
    start = time.monotonic()
    session.stop()
    assert not session.training_thread_alive and time.monotonic() - start < 1.0


def test_unit_thumbnails_are_the_units_activations():
    session = Session({"n": 60, "depth": 2, "widths": [5, 40], "activation": "tanh"})
    try:
        frame = session.capture()
        units = compute_layers(frame, DEFAULT_VIEW)["units"]
        g = units["grid"]
        assert [(la["width"], la["shown"]) for la in units["layers"]] == [(5, 5), (40, _lenses.MAX_UNIT_THUMBNAILS)]
        x = torch.as_tensor(_lenses._grid_points(frame.window, g), dtype=torch.float32)
        with torch.no_grad():
            h1 = frame.model[1](frame.model[0](x)).double().numpy()
        q = np.asarray(units["layers"][0]["values"].array, dtype=np.float64).reshape(5, g * g)
        expected = 127.5 + 127.5 * h1.T / np.abs(h1).max(0)[:, None]
        assert np.abs(q - expected).max() <= 0.5 + 1e-9  # rounding to a byte
    finally:
        session.stop()


def test_l1_l2_penalties_shrink_the_weights_and_leave_the_reported_loss_alone():
    def weights_after(**penalty):
        session = Session({"n": 100, "widths": [16, 16], "batch_size": 0, "lr": 0.02, "seed": 3, **penalty})
        try:
            session.step(30)
            ws = [m.weight.detach() for m in session.model if isinstance(m, torch.nn.Linear)]
            with torch.no_grad():
                data_loss = float(session._loss(session.model(session.x), session.y))
            return sum(float(w.abs().sum()) for w in ws), sum(float((w * w).sum()) for w in ws), \
                session.history["loss"][-1], data_loss
        finally:
            session.stop()

    l1_free, l2_free, _, _ = weights_after()
    l1_pen, _, reported, data_loss = weights_after(l1=0.01)
    _, l2_pen, _, _ = weights_after(l2=0.01)
    assert l1_pen < 0.8 * l1_free and l2_pen < 0.8 * l2_free
    assert reported == pytest.approx(data_loss, rel=1e-6)  # the curve shows the data loss, not the penalty
    with pytest.raises(ConfigError, match="l1"):
        validate_config({"l1": -1})


@pytest.mark.parametrize("fraction", [0.0, 0.5])
def test_train_test_ratio(fraction):
    session = Session({"n": 100, "depth": 1, "widths": [4], "test_fraction": fraction})
    try:
        assert len(session.x) == 100 and len(session.x_test) == math.ceil(100 * fraction / (1 - fraction))
    finally:
        session.stop()


@pytest.mark.parametrize("features", [["x1", "x2", "x1^2", "x2^2"], ["x1x2", "sin_x1"], ["x2"]])
def test_input_features(features):
    session = _trained({"dataset": "circles", "n": 120, "widths": [8, 8], "features": features,
                        "batch_size": 0, "lr": 0.05}, 3)
    try:
        x = session.x[:7]
        columns = {"x1": x[:, 0], "x2": x[:, 1], "x1^2": x[:, 0] ** 2, "x2^2": x[:, 1] ** 2,
                   "x1x2": x[:, 0] * x[:, 1], "sin_x1": torch.sin(x[:, 0])}
        assert torch.allclose(session.model[0](x), torch.stack([columns[f] for f in features], 1))
        layers = compute_layers(session.capture(), {**DEFAULT_VIEW, "heatmap": "volume", "subsample": True,
                                                    "hyperplanes": True})
        assert not {k: v["error"] for k, v in layers.items() if "error" in v}
        if features == ["x2"]:  # a coordinate subset: still piecewise linear, exact regions
            assert layers["regions"]["n_regions"] >= 1 and "sampled" not in layers["boundary"]
        else:
            assert "not coordinates" in layers["regions"]["unavailable"] and layers["boundary"]["sampled"]
        assert "raw inputs" in layers["hyperplanes"]["unavailable"]
        assert layers["units"]["layers"][0]["width"] == 8 and len(layers["gradnorm"]["norms"]) == 120
    finally:
        session.stop()
    with pytest.raises(ConfigError, match="unknown 'x3'"):
        validate_config({"features": "x1,x3"})
    with pytest.raises(ConfigError, match="at least one"):
        validate_config({"features": []})


def test_zoomed_window_gets_its_own_exact_geometry(server, tab):
    tab.send(type="config", config=SMALL)
    tab.recv("data")
    tab.send(type="step")
    tab.frame_where(lambda f: f["meta"]["epoch"] == 1)
    window = [-0.3, 0.2, 0.1, 0.6]
    tab.send(type="view", view={"window": window, "heatmap": "none"})
    frame = tab.frame_where(lambda f: f["window"] == window)
    model = server.server.config.app.state.sessions[tab.hello["session"]].model
    net = netatlas.nets.from_torch(model)
    part = netatlas.regions.partition(net, netatlas.Plane(np.zeros(2), [1.0, 0], [0, 1.0], tuple(window)))
    assert frame["layers"]["regions"]["n_regions"] == part.num_regions
    coords = frame["layers"]["regions"]["coords"].reshape(-1, 2)
    assert coords[:, 0].min() >= window[0] - 1e-6 and coords[:, 0].max() <= window[1] + 1e-6
    tab.send(type="view", view={"window": "1,0,0,1"})
    assert tab.recv("error")["field"] == "window"
    tab.send(type="view", view={"window": None})
    data_window = server.server.config.app.state.sessions[tab.hello["session"]].window
    assert tab.frame_where(lambda f: f["window"] == list(data_window))


def test_region_volume_is_exact_per_region():
    session = _trained({"n": 100, "widths": [8, 8]}, 3)
    try:
        frame = session.capture()
        layers = compute_layers(frame, {**DEFAULT_VIEW, "heatmap": "volume", "metric_layer": 2})
        values = np.asarray(layers["region_volume"]["log_volume"].array, dtype=np.float64)
        part = netatlas.regions.partition(_lenses._logit_difference_net(frame.model),
                                          netatlas.Plane.window(frame.window))
        assert values.size == part.num_regions
        # the constant of each region from a second interior point: the centroid of its first triangle
        xy = np.asarray(part.xy) + part.center
        tri = np.array([xy[a:a + 3].mean(0) for a in part.offsets[:-1]])
        model64 = copy.deepcopy(frame.model).double()
        h = torch.as_tensor(tri, dtype=torch.float64)
        # the metric lens scales features by 1/sqrt(width): g = J^T J / 8 for this 8-unit layer, and
        # log sqrt(det g) = sum_i log sigma_i(J / sqrt 8), from the singular values (no squaring)
        jac = torch.func.vmap(torch.func.jacrev(lambda p: model64[:4](p)))(h) / math.sqrt(8)  # (F, 8, 2)
        sigma = torch.linalg.svdvals(jac.detach()).numpy()  # (F, 2), descending
        expected = np.log(sigma).sum(1)
        # NOTE [conditioning of the region volume]
        # J = D2 W2 D1 W1 / sqrt 8 (D the 0/1 gates at the point) is computed in float64 by both sides
        # with |dJ| <= gamma |J|_abs elementwise, |J|_abs = D2 |W2| D1 |W1| / sqrt 8 and gamma = n eps
        # for the n = 8 + 2 terms of the products. Then |d log sigma_i| <= |dJ|_2 / sigma_i (Weyl), and a
        # side that forms g = J^T J errs by (2 sigma_max |dJ| + eps sigma_max^2) / sigma_i^2 in log
        # sigma_i^2. Regions where this bound passes 0.1 are singular to working precision: both
        # values are round-off there (-45.5 against -27.1 was seen) and are not compared.
        with torch.no_grad():
            W1, b1 = model64[0].weight, model64[0].bias
            W2, b2 = model64[2].weight, model64[2].bias
            d1 = (h @ W1.T + b1 > 0).double()  # (F, 8)
            d2 = (torch.relu(h @ W1.T + b1) @ W2.T + b2 > 0).double()
            jac_abs = d2[:, :, None] * (W2.abs()[None] * d1[:, None, :]) @ W1.abs() / math.sqrt(8)
        delta = 10 * EPS64 * torch.linalg.matrix_norm(jac_abs).numpy()  # Frobenius >= spectral
        smallest, largest = sigma[:, 1], sigma[:, 0]
        with np.errstate(divide="ignore", invalid="ignore"):
            bound = 2 * delta / smallest + (2 * largest * delta + EPS64 * largest ** 2) / smallest ** 2
        conditioned = np.isfinite(expected) & np.isfinite(values) & (bound < 0.1)
        assert conditioned.mean() > 0.5  # most regions are well conditioned: the comparison means something
        error = np.abs(values[conditioned] - expected[conditioned])
        # plus the frame's float32 rounding of the value (half an ulp, relative eps32 / 2)
        tolerance = 4 * bound[conditioned] + EPS32 * np.abs(expected[conditioned])
        assert np.all(error <= tolerance), (error.max(), bound[conditioned].max())
    finally:
        session.stop()


def test_weights_travel_in_a_link(server):
    first, second = Tab(server.url), Tab(server.url)
    try:
        first.send(type="config", config=SMALL)
        first.recv("data")
        for _ in range(3):
            first.send(type="step")
        first.frame_where(lambda f: f["meta"]["epoch"] == 3)
        first.send(type="get_weights")
        weights = first.recv("weights")
        sessions = server.server.config.app.state.sessions
        trained = sessions[first.hello["session"]].model
        assert weights["n"] == sum(p.numel() for p in trained.parameters())
        second.send(type="config", config=SMALL)
        second.recv("data")
        second.send(type="weights", data=weights["data"])
        frame = second.frame_where(lambda f: f["meta"]["from_link"])
        assert frame["meta"]["epoch"] == 0 and frame["meta"]["n_snapshots"] == 1
        loaded = sessions[second.hello["session"]].model
        x = torch.randn(9, 2, generator=torch.Generator().manual_seed(1))
        assert torch.equal(loaded(x), trained(x))  # float32 round trip: the very same net
        target = sessions[second.hello["session"]]
        with torch.no_grad():
            expected_loss = float(torch.nn.functional.cross_entropy(trained(target.x), target.y))
        assert frame["meta"]["metrics"]["loss"] == pytest.approx(expected_loss, rel=1e-6)
        flat = np.frombuffer(base64.urlsafe_b64decode(weights["data"]), dtype="<f4")
        second.send(type="weights", data=base64.urlsafe_b64encode(flat[:-1].tobytes()).decode())  # another net's
        assert "parameters" in second.recv("error")["message"]
        nan = np.full(weights["n"], np.nan, dtype="<f4")
        second.send(type="weights", data=base64.urlsafe_b64encode(nan.tobytes()).decode())
        assert "NaN" in second.recv("error")["message"]
        second.send(type="weights", data="!!not base64!!")
        assert "base64" in second.recv("error")["message"]
    finally:
        first.close()
        second.close()
