"""Fixtures of the playground tests: a server on 127.0.0.1 and a free port (see app_server_helper)."""

from __future__ import annotations

import pytest
from app_server_helper import RunningServer


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
