"""Helpers of the playground tests: a server on 127.0.0.1 and a free port (in a background thread,
stops by itself) and a scripted page talking to it.

(A module of its own, not conftest.py, so that test files can import it by a unique name.)
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request

import numpy as np
from websockets.sync.client import connect

from netatlas.app._frames import decode_frame

SMALL = {"n": 120, "depth": 2, "widths": [8, 8], "batch_size": 0, "lr": 0.05}  # a net that trains in ms


class RunningServer:
    def __init__(self, max_sessions=8, workers=0):
        from netatlas.app import bind_socket, make_server

        self.sock = bind_socket("127.0.0.1", 0)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/"
        self.server = make_server(self.sock, max_sessions=max_sessions, workers=workers)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self):
        self.thread.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(self.url + "api/options", timeout=2).read()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("the playground server did not start within 30 s")

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(timeout=15)
        self.sock.close()
        assert not self.thread.is_alive(), "the server did not stop"


class Tab:
    """A scripted page: sends messages, reads until a message type, acknowledges frames."""

    def __init__(self, url):
        self.ws = connect(url.replace("http", "ws") + "ws", max_size=2**25, open_timeout=20).__enter__()
        self.hello = self.recv("hello")

    def send(self, **message):
        self.ws.send(json.dumps(message))

    def recv(self, kind, timeout=60, ack=True):
        deadline = time.monotonic() + timeout
        while True:
            raw = self.ws.recv(timeout=max(0.01, deadline - time.monotonic()))
            message = decode_frame(raw) if isinstance(raw, bytes) else json.loads(raw)
            if message["type"] == "frame" and ack:
                self.send(type="ack", frame=message["frame"])
            if message["type"] == kind:
                return message
            if message["type"] == "error" and kind != "error":
                raise AssertionError(f"server error: {message}")

    def frame_where(self, predicate, timeout=60):
        deadline = time.monotonic() + timeout
        while True:
            frame = self.recv("frame", timeout=max(0.01, deadline - time.monotonic()))
            if predicate(frame):
                return frame

    def close(self):
        self.ws.close()


def unpack(value):
    """An array of a decoded binary frame (already a NumPy array)."""
    assert isinstance(value, np.ndarray)
    return value
