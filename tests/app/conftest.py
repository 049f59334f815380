"""A playground server on 127.0.0.1 and a free port, in a background thread; stops by itself."""

from __future__ import annotations

import threading
import time
import urllib.request

import pytest


class RunningServer:
    def __init__(self, max_sessions=8):
        from netatlas.app import bind_socket, make_server

        self.sock = bind_socket("127.0.0.1", 0)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/"
        self.server = make_server(self.sock, max_sessions=max_sessions)
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


@pytest.fixture(scope="module")
def server():
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as `netatlas serve` does (tiny tensors; a busy 2-core machine)
    try:
        with RunningServer() as running:
            yield running
    finally:
        torch.set_num_threads(threads)
