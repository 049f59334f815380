"""The guarded server (issue 14.7 and 14.9): only its own page drives it, closed tabs stop, uploads are
size-checked while streaming, exports leave nothing behind, bad options are one-line errors."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from app_helpers import SMALL, RunningServer
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from netatlas.app._guard import SameOriginGuard

SERVE = [sys.executable, "-c", "from netatlas.cli import main; main()", "serve"]


def _ws_url(server):
    return server.url.replace("http", "ws") + "ws"


def _recv(ws, kind, timeout=60):
    deadline = time.monotonic() + timeout
    while True:
        message = json.loads(ws.recv(timeout=max(0.01, deadline - time.monotonic())))
        if message["type"] == "frame":
            ws.send(json.dumps({"type": "ack", "frame": message["frame"]}))
        if message["type"] == kind:
            return message


def _request(server, method, path, headers=None, body=None):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read().decode(errors="replace")
    finally:
        conn.close()


# -- same origin -----------------------------------------------------------------------------------
def test_websocket_from_another_origin_is_refused(server):
    with pytest.raises(InvalidStatus) as info:
        connect(_ws_url(server), origin="http://evil.example", open_timeout=20)
    assert info.value.response.status_code == 403
    with pytest.raises(InvalidStatus):  # same host name, another port: another origin
        connect(_ws_url(server), origin="http://127.0.0.1:1", open_timeout=20)
    with connect(_ws_url(server), origin=server.url.rstrip("/"), open_timeout=20) as ws:  # the page's own
        assert json.loads(ws.recv(timeout=30))["type"] == "hello"
    with connect(f"ws://localhost:{server.port}/ws", origin=f"http://localhost:{server.port}",
                 open_timeout=20) as ws:  # the page opened as localhost
        assert json.loads(ws.recv(timeout=30))["type"] == "hello"


def test_rebinding_host_is_refused_for_pages_api_and_websocket(server):
    evil = {"Host": f"evil.example:{server.port}"}
    assert _request(server, "GET", "/", evil)[0] == 403
    status, text = _request(server, "GET", "/api/options", evil)
    assert status == 403 and "rebinding" in text
    assert _request(server, "GET", "/api/options")[0] == 200
    assert _request(server, "GET", "/api/options", {"Host": f"localhost:{server.port}"})[0] == 200
    # a websocket handshake naming the rebinding host
    handshake = {**evil, "Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
                 "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}
    assert _request(server, "GET", "/ws", handshake)[0] == 403


def test_cross_site_api_requests_are_refused(server):
    status, text = _request(server, "POST", "/api/export/report?session=x",
                            {"Origin": "http://evil.example", "Content-Type": "application/json"}, b"{}")
    assert status == 403 and "cross-origin" in text
    status, _ = _request(server, "GET", "/api/options", {"Sec-Fetch-Site": "cross-site"})
    assert status == 403


@pytest.mark.parametrize(("bound", "host", "origin", "ok"), [
    ("127.0.0.1", "127.0.0.1:8765", None, True),
    ("127.0.0.1", "127.0.0.1:8765", "http://127.0.0.1:8765", True),
    ("127.0.0.1", "localhost:8765", "http://localhost:8765", True),
    ("127.0.0.1", "127.0.0.1:8765", "http://localhost:8765", False),
    ("127.0.0.1", "127.0.0.1:8765", "null", False),
    ("127.0.0.1", "attacker.test:8765", None, False),
    ("127.0.0.1", "10.0.0.5:8765", None, False),
    ("127.0.0.1", "127.0.0.1:9999", None, False),
    ("0.0.0.0", "192.168.1.20:8765", "http://192.168.1.20:8765", True),
    ("0.0.0.0", "rebind.attacker.test:8765", None, False),
    ("::1", "[::1]:8765", "http://[::1]:8765", True),
])
def test_guard_rules(bound, host, origin, ok):
    guard = SameOriginGuard(None, host=bound, port=8765)
    headers = {"host": host, **({"origin": origin} if origin else {})}
    assert (guard.refusal(headers) is None) == ok


# -- tabs and training threads ---------------------------------------------------------------------
def test_closed_tab_stops_its_long_epoch_within_a_second():
    with RunningServer() as srv:
        sessions = srv.server.config.app.state.sessions
        ws = connect(_ws_url(srv), open_timeout=20).__enter__()
        sid = _recv(ws, "hello")["session"]
        # long epochs: 5000 points in batches of 8, a wide net (hundreds of steps per epoch)
        ws.send(json.dumps({"type": "config", "config": {"n": 5000, "depth": 2, "widths": [128, 128],
                                                         "batch_size": 8}}))
        _recv(ws, "data")
        session = sessions[sid]
        ws.send(json.dumps({"type": "play"}))
        deadline = time.monotonic() + 30
        while session.n_steps < 20 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert session.n_steps >= 20 and session.epoch == 0  # mid-way through the first epoch
        ws.close()
        closed = time.monotonic()
        while session.training_thread_alive and time.monotonic() - closed < 5:
            time.sleep(0.02)
        assert not session.training_thread_alive
        assert time.monotonic() - closed < 1.0
        # the server answers at once meanwhile
        start = time.monotonic()
        assert _request(srv, "GET", "/api/options")[0] == 200
        assert time.monotonic() - start < 1.0


def test_binary_websocket_message_is_a_clear_error(server):
    with connect(_ws_url(server), open_timeout=20) as ws:
        _recv(ws, "hello")
        ws.send(b"\x00\x01binary")
        error = _recv(ws, "error")
        assert error["field"] == "message" and "binary" in error["message"] and "Traceback" not in error["message"]
        ws.send(json.dumps({"type": "config", "config": SMALL}))  # the tab lives on
        assert _recv(ws, "data")["config"]["n"] == 120


# -- uploads and exports ---------------------------------------------------------------------------
def _session_id(server):
    ws = connect(_ws_url(server), open_timeout=20).__enter__()
    sid = _recv(ws, "hello")["session"]
    ws.send(json.dumps({"type": "config", "config": SMALL}))
    _recv(ws, "data")
    return ws, sid


def test_oversized_report_upload_is_refused_before_it_is_read(server):
    ws, sid = _session_id(server)
    try:
        # declares 300 MB and sends 1 MB: the answer comes at once, without waiting for the rest
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=20)
        conn.putrequest("POST", f"/api/export/report?session={sid}")
        conn.putheader("Content-Type", "application/json")
        conn.putheader("Content-Length", str(300_000_000))
        conn.endheaders()
        conn.send(b"x" * 1_000_000)
        response = conn.getresponse()
        assert response.status == 413 and "8 MB" in response.read().decode()
        conn.close()
        # chunked, no length: refused once 8 MB have streamed in, before the body ends
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=20)
        conn.putrequest("POST", f"/api/export/report?session={sid}")
        conn.putheader("Transfer-Encoding", "chunked")
        conn.endheaders()
        chunk = b"y" * 1_000_000
        try:
            for _ in range(9):
                conn.send(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        except OSError:  # the server may already have answered and closed
            pass
        response = conn.getresponse()  # no final chunk was sent: only a streaming check can answer
        assert response.status == 413
        conn.close()
    finally:
        ws.close()


def test_exports_leave_no_files_behind(server):
    ws, sid = _session_id(server)
    try:
        status, _ = _request(server, "GET", f"/api/export/model?session={sid}")
        assert status == 200
        status, html = _request(server, "POST", f"/api/export/report?session={sid}",
                                {"Content-Type": "application/json"}, b"{}")
        assert status == 200 and "netatlas playground report" in html
        scratch = server.server.config.app.state.scratch
        assert scratch is not None and scratch.is_dir()
        deadline = time.monotonic() + 10  # the model file goes once its response is sent
        while any(scratch.iterdir()) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert list(scratch.iterdir()) == []
    finally:
        ws.close()


@pytest.mark.parametrize(("body", "said"), [
    (b"[" * 100_000 + b"]" * 100_000, "nested deeper than"),  # json.loads: RecursionError, once a 500
    (b"{not json", "expected JSON"),
    (b"[1, 2]", "expected JSON"),
    (b'{"image": "data:image/png;base64,!!!"}', "expected JSON"),
])
def test_bad_report_requests_are_400_with_one_line(server, body, said):
    ws, sid = _session_id(server)
    try:
        status, text = _request(server, "POST", f"/api/export/report?session={sid}",
                                {"Content-Type": "application/json"}, body)
        assert status == 400 and said in text
        assert "\n" not in text.strip() and "Traceback" not in text and not text.startswith("{")
    finally:
        ws.close()
    status, text = _request(server, "POST", "/api/export/report")  # no session: 400, not FastAPI's 422 JSON
    assert status == 400 and "session" in text and "\n" not in text.strip()
    status, text = _request(server, "GET", "/api/export/model?session=nope")
    assert status == 404 and text == "no open session 'nope'; reload the page"  # one line, not JSON


@pytest.mark.parametrize(("message", "code", "said"), [
    ("[" * 200_000 + "]" * 200_000, 1007, "nested too deeply"),
    ("0" * 3_000_000, 1009, "above the limit of 2,000,000"),  # the server's own cap
    ("0" * 5_000_000, 1009, "exceeds limit"),  # past the websocket library's cap: its close frame
])
def test_websocket_errors_close_with_a_reason(server, message, code, said):
    with connect(_ws_url(server), open_timeout=20, max_size=2**25) as ws:
        _recv(ws, "hello")
        ws.send(message)
        with pytest.raises(ConnectionClosed) as info:
            while True:
                ws.recv(timeout=30)
    close = info.value.rcvd  # the close frame the server sent (None: dropped without one)
    assert close is not None and close.code == code and said in close.reason
    with connect(_ws_url(server), open_timeout=20) as ws:  # the server lives on
        _recv(ws, "hello")
        ws.send(json.dumps({"type": "config", "config": SMALL}))
        assert _recv(ws, "data")["config"]["n"] == 120


# -- the command line ------------------------------------------------------------------------------
def _serve(*args, env=None):
    return subprocess.run([*SERVE, *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})


@pytest.mark.parametrize("port", ["-1", "70000"])
def test_bad_port_is_a_one_line_error(port):
    result = _serve("--port", port)
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0 and "0..65535" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_unparsable_yield_setting_is_one_line_and_breaks_nothing_else():
    bad = {"NETATLAS_APP_YIELD": "lots"}
    result = _serve("--port", "0", env=bad)
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0 and "NETATLAS_APP_YIELD='lots'" in result.stderr
    other = subprocess.run([sys.executable, "-c", "import netatlas.app; from netatlas.cli import main; "
                            "main(['--help'])"], capture_output=True, text=True, timeout=120,
                           env={**os.environ, **bad})
    assert other.returncode == 0 and "serve" in other.stdout


def test_ctrl_c_during_a_long_epoch_exits_130_cleanly():
    process = subprocess.Popen([*SERVE, "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        url = process.stdout.readline().split()[2]
        ws = connect(url.replace("http", "ws") + "ws", open_timeout=60).__enter__()
        _recv(ws, "hello")
        ws.send(json.dumps({"type": "config", "config": {"n": 5000, "depth": 2, "widths": [128, 128],
                                                         "batch_size": 8}}))
        _recv(ws, "data")
        ws.send(json.dumps({"type": "play"}))
        time.sleep(1.5)  # well inside the first (long) epoch
        process.send_signal(signal.SIGINT)
        out, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, (process.returncode, out)  # not -6 (SIGABRT)
    assert "stopped" in out and "Traceback" not in out and "terminate" not in out
