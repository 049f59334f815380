"""Fixtures of the playground tests: a server on 127.0.0.1 and a free port, and a scripted tab on it
(see app_helpers)."""

from __future__ import annotations

import pytest
from app_helpers import RunningServer, Tab


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


@pytest.fixture()
def tab(server):
    t = Tab(server.url)
    yield t
    t.close()
