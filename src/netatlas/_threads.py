"""torch thread settings for experiments that train many tiny nets (shared by every lens)."""

from __future__ import annotations

import contextlib

import torch

__all__ = ["one_blas_thread", "torch_threads"]


@contextlib.contextmanager
def torch_threads(n: int | None):
    """Run a block with ``torch.set_num_threads(n)`` and restore the previous setting afterwards.

    The experiments train many tiny nets, for which one thread per process is fastest (intra-op threads
    only add contention, badly so on a shared machine); parallelism comes from sweep workers instead.
    ``None`` leaves the setting alone.

    Examples
    --------
    >>> before = torch.get_num_threads()
    >>> with torch_threads(1):
    ...     torch.get_num_threads()
    1
    >>> torch.get_num_threads() == before
    True
    """
    if n is None:
        yield
        return
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"threads must be an integer >= 1 (or None for torch's choice); got {n!r}")
    previous = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def one_blas_thread():
    """A context with one BLAS thread (numpy's): batches of many small GEMMs only lose to BLAS threads
    (measured 4x slower with two on a shared 2-core machine); parallelism comes from Dask workers.

    >>> with one_blas_thread():
    ...     pass
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        return contextlib.nullcontext()
    return threadpool_limits(1, user_api="blas")
