"""A playground server on 127.0.0.1 and a free port, in a background thread; stops by itself.

(A module of its own, not conftest.py, so that test files can import it by a unique name.)
"""

from __future__ import annotations

import threading
import time
import urllib.request


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
