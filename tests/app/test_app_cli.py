"""`netatlas serve` as a user runs it: prints its URL, serves the page, stops cleanly on Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.request

import pytest
from websockets.sync.client import connect

SERVE = [sys.executable, "-c", "from netatlas.cli import main; main()", "serve"]


def _start(*args):
    return subprocess.Popen([*SERVE, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})


def test_serve_prints_url_serves_assets_and_stops_on_ctrl_c():
    process = _start("--port", "0")
    try:
        line = process.stdout.readline()
        assert line.startswith("netatlas playground: http://127.0.0.1:"), line
        url = line.split()[2]
        page = urllib.request.urlopen(url, timeout=60).read().decode()
        assert "/static/app.js" in page and "cdn" not in page.lower()  # assets come from the package
        script = urllib.request.urlopen(url + "static/app.js", timeout=30).read().decode()
        assert "WebSocket" in script
        # Ctrl-C with a tab open and training running
        tab = connect(url.replace("http", "ws") + "ws", open_timeout=30).__enter__()
        tab.send(json.dumps({"type": "config", "config": {"n": 100, "widths": [8, 8]}}))
        while json.loads(tab.recv(timeout=60))["type"] != "data":
            pass
        tab.send(json.dumps({"type": "play"}))
        process.send_signal(signal.SIGINT)
        out, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, out  # interrupted: 130, as every command
    assert "stopped" in out and "Traceback" not in out


def test_serve_on_a_taken_port_is_a_one_line_error(capsys):
    from netatlas.cli import main

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        with pytest.raises(SystemExit) as info:
            main(["serve", "--port", str(port)])
    assert info.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith(f"OSError: serve: cannot listen on 127.0.0.1:{port}") and "--port" in err
