"""Run an experiment over a grid of configs, in-process or on a Dask cluster, resumably.

::

    configs = grid(seed=[0, 1, 2], width=[16, 64])          # 6 dicts, stable order
    records = run(my_experiment, configs, "runs/widths")   # my_experiment(config) -> JSON-able dict
    records = run(my_experiment, configs, "runs/widths", dask="local")   # same, on a LocalCluster

Layout of ``out``::

    out/sweep.json             the configs of the latest run and their keys (for ``status``)
    out/results/<key>.json     one finished config: {"key", "config", "status": "done", "result", ...}
    out/failed/<key>.json      one failed config: {"key", "config", "status": "failed", "error", ...}

Each file is written atomically (a temporary file, then ``os.replace``) as soon as its config finishes,
so an interrupted sweep loses nothing but the configs that were running. Re-running skips every config
whose ``results/<key>.json`` exists and retries failed ones.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import itertools
import json
import logging
import math
import os
import re
import signal
import socket
import sys
import threading
import time
import traceback
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence, Sized
from dataclasses import dataclass
from pathlib import Path

from netatlas.report import new_temporary, to_jsonable

__all__ = ["grid", "config_key", "run", "load_results", "status", "SweepStatus", "resolve_client"]

logger = logging.getLogger(__name__)

_PREFIX_LENGTH = 48  # characters of the readable part of a key
_VALUE_LENGTH = 12  # characters of each value in the readable part
_HASH_LENGTH = 12  # hex digits of SHA-256: 48 bits, collisions negligible for any real sweep
_RECORD_BYTES = 1024  # a config's record in memory: a dict of ~10 fields (360 B), its strings and numbers


def grid(**axes) -> list[dict]:
    """The Cartesian product of the given axes, as a list of config dicts in a stable order.

    Axes vary in the order given, the last fastest (like nested loops, or ``itertools.product``). The
    size of the product and the memory its list needs are known from the axes' lengths: a grid over the
    memory budget is refused before any config is made.

    Parameters
    ----------
    **axes : iterable or scalar
        Values of each axis; a scalar (or a string) is a single value. Sequences (lists, tuples,
        ranges) are read in place, other iterables listed first.

    Returns
    -------
    list of dict
        ``prod(len(axis))`` configs; ``[{}]`` for no axes, ``[]`` if any axis is empty.

    Raises
    ------
    MemoryBudgetError
        If the list would need more than the memory budget (``NETATLAS_MEMORY_BUDGET``); the message
        gives the number of configs, the estimate and the budget.

    Examples
    --------
    >>> grid(seed=[0, 1], width=[8, 16])
    [{'seed': 0, 'width': 8}, {'seed': 0, 'width': 16}, {'seed': 1, 'width': 8}, {'seed': 1, 'width': 16}]
    >>> grid(dataset="moons", seed=range(2))
    [{'dataset': 'moons', 'seed': 0}, {'dataset': 'moons', 'seed': 1}]
    >>> grid(seed=[])
    []
    >>> grid(a=range(10**6), b=range(10**6))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    netatlas._errors.MemoryBudgetError: grid: 1,000,000,000,000 configs (1,000,000 x 1,000,000 values) need ...
    """
    names = list(axes)
    values = []
    for name in names:
        axis = axes[name]
        if isinstance(axis, (str, bytes, Mapping)) or not isinstance(axis, Iterable):
            axis = [axis]
        values.append(axis if isinstance(axis, Sequence) else list(axis))
    n_configs = math.prod(len(axis) for axis in values)
    if n_configs:
        # one dict per config and its slot in the list (8 bytes, and up to 1/8 more as the list grows);
        # the values themselves are shared with the axes
        first = dict(zip(names, (axis[0] for axis in values), strict=True))
        lengths = " x ".join(f"{len(axis):,}" for axis in values)
        _check_size(n_configs, sys.getsizeof(first) + 16, f"grid: {n_configs:,} configs ({lengths} values)")
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*values)]


def _check_size(n_configs: int, bytes_per_config: int, what: str) -> None:
    """Refuse a sweep whose configs alone would exceed the memory budget, before any is built."""
    from netatlas._errors import MemoryBudgetError
    from netatlas._memory import format_bytes, memory_budget

    nbytes, budget = n_configs * bytes_per_config, memory_budget()
    if nbytes > budget:
        raise MemoryBudgetError(f"{what} need about {format_bytes(nbytes)} to hold, over the memory budget of "
                                f"{format_bytes(budget)} (NETATLAS_MEMORY_BUDGET); sweep fewer values or split "
                                "the grid into several sweeps")


def _non_finite(value, path=""):
    """The path of the first NaN/infinite float in a config value (to_jsonable would turn it into None,
    collapsing distinct configs), or None."""
    if isinstance(value, float) and not (value == value and abs(value) != float("inf")):
        return path or "value"
    if type(value).__module__ == "numpy" and getattr(value, "dtype", None) is not None and value.dtype.kind == "f":
        import numpy as np

        bad = ~np.isfinite(np.asarray(value))
        return path if bad.any() else None
    items = value.items() if isinstance(value, Mapping) else (
        enumerate(value) if isinstance(value, (list, tuple)) else ())
    for key, item in items:
        found = _non_finite(item, f"{path}.{key}" if path else str(key))
        if found:
            return found
    return None


def _canonical_json(config: Mapping) -> str:
    bad = _non_finite(dict(config))
    if bad:
        raise ValueError(f"config_key: config value {bad} is NaN or infinite; sweep configs must be finite "
                         "(JSON has no NaN, so they would collapse into one config)")
    try:
        return json.dumps(to_jsonable(dict(config)), sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"config_key: config must be JSON-serialisable (numbers, strings, lists, dicts); "
                        f"{exc}") from None


def config_key(config: Mapping) -> str:
    """A stable, short, file-name-safe key for a config: a readable prefix plus a hash.

    The hash is the first 12 hex digits of SHA-256 of the config as JSON with sorted keys, so it does not
    depend on key order, process, machine or Python version; numpy scalars hash like Python numbers.

    Parameters
    ----------
    config : mapping
        A JSON-serialisable dict (keys are converted to str).

    Returns
    -------
    str
        ``"<k1>=<v1>_<k2>=<v2>...-<hash>"`` with unsafe characters replaced by ``"-"``, long values cut
        to their last 12 characters and the readable part cut to 48 characters. Only the hash identifies
        the config; the readable part is for people.

    Raises
    ------
    TypeError
        If ``config`` is not a mapping or not JSON-serialisable.

    Examples
    --------
    >>> config_key({"width": 16, "seed": 0})
    'seed=0_width=16-f3f216ef6f38'
    >>> config_key({"seed": 0, "width": 16}) == config_key({"width": 16, "seed": 0})
    True
    >>> config_key({})
    'config-44136fa355b3'
    """
    if not isinstance(config, Mapping):
        raise TypeError(f"config_key: config must be a dict, got {type(config).__name__}.")
    text = _canonical_json(config)
    digest = hashlib.sha256(text.encode()).hexdigest()[:_HASH_LENGTH]
    readable = "_".join(f"{k}={_short(v)}" for k, v in sorted(to_jsonable(dict(config)).items()))
    readable = re.sub(r"[^A-Za-z0-9._=+~-]+", "-", readable)[:_PREFIX_LENGTH].strip("-_.") or "config"
    return f"{readable}-{digest}"


def _short(value) -> str:
    if isinstance(value, (dict, list)):
        value = json.dumps(value, sort_keys=True, separators=(",", ":"))
    value = str(value)
    # Long values (paths) keep their end, which is usually the distinctive part.
    return value if len(value) <= _VALUE_LENGTH else "~" + value[-(_VALUE_LENGTH - 1):]


# ------------------------------------------------------------------------------------------------------
# Running


def _execute(fn: Callable, config: dict, key: str) -> dict:
    """Run one config; never raises for errors of ``fn`` (they become a "failed" record)."""
    started = time.perf_counter()
    record = {"key": key, "config": config}
    try:
        value = fn(dict(config))  # a copy: fn may not change the caller's config
    except Exception as exc:
        record.update(status="failed", error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc())
    else:
        try:
            result = to_jsonable(value)
            json.dumps(result, allow_nan=False)
        except (TypeError, ValueError) as exc:
            record.update(status="failed", error=f"TypeError: fn returned a value that is not "
                          f"JSON-serialisable ({exc}); return numbers, strings, lists and dicts.")
        else:
            record.update(status="done", result=result)
    record.update(wall_time=time.perf_counter() - started, host=socket.gethostname(), pid=os.getpid(),
                  finished=_dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"))
    return record


def _write_atomic(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = new_temporary(path, ".tmp")  # not .json: a temporary left by a killed process is not a record
    try:
        with open(tmp, "w") as stream:
            json.dump(obj, stream, indent=1, allow_nan=False)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(tmp, path)  # atomic on POSIX and Windows: readers see the old file or the new one
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _read_record(path: Path) -> dict | None:
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def _store(out: Path, record: dict) -> None:
    done, failed = out / "results" / f"{record['key']}.json", out / "failed" / f"{record['key']}.json"
    if record["status"] == "done":
        _write_atomic(done, record)
        failed.unlink(missing_ok=True)
    else:
        _write_atomic(failed, record)


@contextlib.contextmanager
def _held_interrupt():
    """Within the block, Ctrl-C (SIGINT), and SIGTERM where Python handles it (a CLI command raises
    ``Terminated``), are recorded instead of raised; yields the list of signals that came. Only in the
    main thread (elsewhere signals cannot be handled)."""
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return
    held = [signal.SIGINT] + ([signal.SIGTERM] if callable(signal.getsignal(signal.SIGTERM)) else [])
    previous = {signum: signal.signal(signum, lambda signum, frame: received.append(signum)) for signum in held}
    try:
        yield received
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _deliver(received: list[int]) -> None:
    """Raise what the first held signal raises now that its handler is back (KeyboardInterrupt for Ctrl-C)."""
    signal.raise_signal(received[0])
    raise KeyboardInterrupt  # its handler returned (it only records): stop as Ctrl-C would


def resolve_client(dask):
    """Return (client, cleanup) for the ``dask`` argument of :func:`run`; cleanup closes what we opened.

    Parameters
    ----------
    dask : None, "local", "tcp://HOST:PORT" or distributed.Client
        None runs in-process (no client); "local" starts a LocalCluster of 2 workers.

    Returns
    -------
    client : distributed.Client or None
    cleanup : callable
        Closes the client and cluster opened here (nothing for a client passed in).

    Examples
    --------
    >>> client, cleanup = resolve_client(None)
    >>> client is None
    True
    >>> cleanup()
    """
    if dask is None:
        return None, lambda: None
    try:
        import distributed
    except ImportError:  # pragma: no cover - dask[distributed] is a dependency
        raise ImportError("sweep.run: dask= needs the 'distributed' package (pip install "
                          "'dask[distributed]').") from None
    if isinstance(dask, distributed.Client):
        return dask, lambda: None
    if isinstance(dask, str) and dask == "local":
        # A LocalCluster interrupted while it starts cannot be closed (distributed then fails at exit
        # with a traceback): hold Ctrl-C until it is up, then close it and raise KeyboardInterrupt.
        with _held_interrupt() as interrupted, warnings.catch_warnings():
            # Worker logs stay quiet (CRITICAL): a failed config is recorded with its error by this process,
            # and a cluster closed under a running task (Ctrl-C) would otherwise print heartbeat tracebacks.
            # With the dashboard off the scheduler still serves health checks over HTTP on 127.0.0.1,
            # preferring port 8787; when another cluster holds it, it picks a free port and warns.
            warnings.filterwarnings("ignore", message=r"Port \d+ is already in use")
            cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1",
                                               dashboard_address=None, silence_logs=logging.CRITICAL)
            try:
                client = distributed.Client(cluster)
            except BaseException:
                with contextlib.suppress(Exception):
                    cluster.close()
                raise
        if interrupted:
            with contextlib.suppress(Exception):
                client.close()
                cluster.close()
            _deliver(interrupted)

        def cleanup():
            client.close()
            cluster.close()

        return client, cleanup
    if isinstance(dask, str) and "://" in dask:
        client = distributed.Client(dask, timeout="20s")
        return client, client.close
    raise ValueError(f"sweep.run: dask must be None (in-process), 'local' (a LocalCluster on 127.0.0.1), "
                     f"a scheduler address like 'tcp://host:8786', or a distributed.Client; got {dask!r}.")


def run(fn: Callable[[dict], dict], configs: Iterable[Mapping], out, *, dask=None,
        progress: bool | None = None) -> list[dict]:
    """Run ``fn`` on every config, writing each result as it finishes; skip configs already done.

    Parameters
    ----------
    fn : callable
        ``fn(config) -> result`` with a JSON-serialisable result (numpy/torch values are converted).
        For Dask it must be picklable: a top-level function of an importable module (or register its
        module with ``cloudpickle.register_pickle_by_value``).
    configs : iterable of dict
        JSON-serialisable configs, e.g. from :func:`grid`. Duplicates run once.
    out : str or Path
        Sweep directory (created). See the module docstring for its layout.
    dask : None, "local", str or distributed.Client
        ``None``: run in this process, in order. ``"local"``: start a ``distributed.LocalCluster``
        (2 workers x 1 thread on 127.0.0.1, no dashboard) and close it at the end. ``"tcp://host:port"``:
        attach to that scheduler (the client is closed at the end, the cluster is left running).
        A ``distributed.Client``: used as is (not closed). Results are written by this process, so ``out``
        need not be visible to remote workers.
    progress : bool, optional
        tqdm bar on stderr; ``None`` shows it only when stderr is a terminal.

    Returns
    -------
    list of dict
        One record per config, in config order: ``{"key", "config", "status": "done", "result", ...}``
        or ``{"key", "config", "status": "failed", "error", "traceback", ...}``. A failure does not stop
        the others; failures are also reported with one ``UserWarning``.

    Examples
    --------
    >>> import tempfile
    >>> def square(config):
    ...     return {"y": config["x"] ** 2}
    >>> out = tempfile.mkdtemp()
    >>> [r["result"]["y"] for r in run(square, grid(x=[1, 2, 3]), out)]
    [1, 4, 9]
    >>> [r["result"]["y"] for r in run(square, grid(x=[1, 2, 3, 4]), out)]  # only x=4 is computed
    [1, 4, 9, 16]
    >>> status(out).n_done
    4
    """
    if not callable(fn):
        raise TypeError(f"sweep.run: fn must be callable, got {type(fn).__name__}.")
    if isinstance(configs, Mapping):
        raise TypeError("sweep.run: configs must be a list of dicts (use grid(...) or [config]), got a dict.")
    configs = _take_configs(configs)
    keys = [config_key(c) for c in configs]
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"sweep.run: out {out} exists and is not a directory.")
    (out / "results").mkdir(parents=True, exist_ok=True)
    _write_atomic(out / "sweep.json", {"fn": _describe(fn), "n_configs": len(configs),
                                       "configs": [{"key": k, "config": to_jsonable(c)}
                                                   for k, c in zip(keys, configs, strict=True)]})

    records: dict[str, dict] = {}
    todo: dict[str, dict] = {}
    for key, config in zip(keys, configs, strict=True):
        if key in records or key in todo:
            continue
        existing = out / "results" / f"{key}.json"
        record = _read_record(existing) if existing.exists() else None
        if record is not None and record.get("status") == "done":
            records[key] = record
        else:
            if existing.exists():
                warnings.warn(f"sweep.run: {existing} is unreadable; recomputing it.", stacklevel=2)
            todo[key] = to_jsonable(config)
    logger.info("sweep.run: %d configs, %d already done, %d to run in %s", len(set(keys)), len(records),
                len(todo), out)

    show = progress if progress is not None else _stderr_is_terminal()
    bar = None
    if show and todo:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(todo), desc="sweep", unit="config", file=sys.stderr)

    def finished(record):
        _store(out, record)
        records[record["key"]] = record
        if bar is not None:
            bar.update(1)
        if record["status"] == "failed":
            logger.warning("sweep.run: config %s failed: %s", record["key"], record["error"])

    try:
        if todo:
            client, cleanup = resolve_client(dask)
            try:
                if client is None:
                    for key, config in todo.items():
                        finished(_execute(fn, config, key))
                else:
                    _run_dask(client, fn, todo, finished)
            except BaseException:
                # Closing a cluster that was interrupted half-way can fail too; the error that stopped
                # the sweep (Ctrl-C: KeyboardInterrupt, exit status 130) is the one to report.
                with contextlib.suppress(Exception):
                    cleanup()
                raise
            cleanup()
    finally:
        if bar is not None:
            bar.close()

    ordered = [records[key] for key in keys]
    failures = {r["key"]: r["error"] for r in ordered if r["status"] == "failed"}
    if failures:
        first = next(iter(failures.items()))
        warnings.warn(f"sweep.run: {len(failures)} of {len(records)} configs failed (recorded in "
                      f"{out / 'failed'}; rerun to retry them); first: {first[0]}: {first[1]}", stacklevel=2)
    return ordered


def _take_configs(configs: Iterable) -> list[dict]:
    """Copies of the configs, read one by one and refused by size before they are all held: a sized
    collection by its length, an iterator as soon as it yields more than the memory budget allows."""
    from netatlas._memory import memory_budget

    listed: list[dict] = []
    n_allowed = per_config = None
    for index, config in enumerate(configs):
        if not isinstance(config, Mapping):
            raise TypeError(f"sweep.run: configs[{index}] must be a dict, got {type(config).__name__}.")
        if per_config is None:
            # per config, run holds: its copy and its JSON-safe copy, its key and its entry in sweep.json
            # (a dict and the JSON text), and its record
            per_config = 3 * sys.getsizeof(dict(config)) + 2 * len(_canonical_json(config)) + _RECORD_BYTES
            if isinstance(configs, Sized):
                _check_size(len(configs), per_config, f"sweep.run: {len(configs):,} configs")
            n_allowed = memory_budget() // per_config
        if index >= n_allowed:  # an iterator, longer than the budget allows: stop reading it
            _check_size(index + 1, per_config, f"sweep.run: more than {index:,} configs (from an iterator)")
        listed.append(dict(config))
    return listed


def _run_dask(client, fn, todo: dict[str, dict], finished: Callable[[dict], None]) -> None:
    from distributed import as_completed

    futures = {client.submit(_execute, fn, config, key, pure=False): key for key, config in todo.items()}
    try:
        for future in as_completed(futures):
            key = futures[future]
            try:
                record = future.result()
            except Exception as exc:  # the worker died or fn could not be unpickled there
                record = {"key": key, "config": todo[key], "status": "failed",
                          "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
            finished(record)
    finally:
        client.cancel(list(futures))


def _describe(fn) -> str:
    return f"{getattr(fn, '__module__', '?')}:{getattr(fn, '__qualname__', type(fn).__name__)}"


def _stderr_is_terminal() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


# ------------------------------------------------------------------------------------------------------
# Reading a sweep directory


def load_results(out, *, include_failed: bool = False) -> list[dict]:
    """The records of a sweep directory: those of ``sweep.json``'s configs first, in its order, then any
    other finished ones sorted by key.

    Parameters
    ----------
    out : str or Path
        A directory written by :func:`run`.
    include_failed : bool
        Also return the records of failed configs (that have no result yet).

    Returns
    -------
    list of dict
        Records as :func:`run` returns them.

    Examples
    --------
    >>> import tempfile
    >>> out = tempfile.mkdtemp()
    >>> _ = run(lambda config: {"twice": 2 * config["x"]}, grid(x=[3, 1]), out)
    >>> [r["result"]["twice"] for r in load_results(out)]
    [6, 2]
    >>> load_results(tempfile.mkdtemp())
    []
    """
    out = Path(out)
    if not out.is_dir():
        raise FileNotFoundError(f"load_results: {out} is not a sweep directory (it does not exist).")
    folders = ["results", "failed"] if include_failed else ["results"]
    found: dict[str, dict] = {}
    for folder in reversed(folders):  # "results" last: a done record wins over a stale failure
        for path in sorted((out / folder).glob("*.json")):
            record = _read_record(path)
            if record is not None and "key" in record:
                found[record["key"]] = record
    order = [entry["key"] for entry in _manifest(out)]
    ranked = {key: i for i, key in enumerate(order)}
    return sorted(found.values(), key=lambda r: (ranked.get(r["key"], len(order)), r["key"]))


def _manifest(out: Path) -> list[dict]:
    manifest = _read_record(out / "sweep.json")
    return list(manifest.get("configs", [])) if manifest else []


@dataclass(frozen=True)
class SweepStatus:
    """How far a sweep directory has got.

    Attributes
    ----------
    n_configs : int
        Configs in ``sweep.json`` (its latest run), or the finished + failed ones if it has none.
    n_done, n_failed, n_pending : int
        Of those: finished, failed (not since finished), neither.
    failed : dict[str, str]
        Key -> error message of each failed config.
    path : str
        The directory.
    """

    n_configs: int
    n_done: int
    n_failed: int
    n_pending: int
    failed: dict
    path: str

    def to_dict(self) -> dict:
        """JSON-safe fields."""
        return {"path": self.path, "n_configs": self.n_configs, "n_done": self.n_done,
                "n_failed": self.n_failed, "n_pending": self.n_pending, "failed": dict(self.failed)}


def status(out) -> SweepStatus:
    """Count finished, failed and pending configs of a sweep directory (reads files only).

    Raises FileNotFoundError if ``out`` does not exist and ValueError if it is not a sweep directory
    (it has none of sweep.json, results/ and failed/).

    Examples
    --------
    >>> import tempfile
    >>> def check(config):
    ...     if config["x"] < 0:
    ...         raise ValueError("negative x")
    ...     return {}
    >>> out = tempfile.mkdtemp()
    >>> import warnings
    >>> with warnings.catch_warnings(record=True):  # run warns that one config failed
    ...     _ = run(check, grid(x=[-1, 1, 2]), out)
    >>> s = status(out); (s.n_configs, s.n_done, s.n_failed, s.n_pending), list(s.failed.values())
    ((3, 2, 1, 0), ['ValueError: negative x'])
    """
    out = Path(out)
    if not out.is_dir():
        raise FileNotFoundError(f"status: {out} is not a sweep directory (it does not exist).")
    if not any((out / name).exists() for name in ("sweep.json", "results", "failed")):
        inner = [p for p in sorted(out.glob("*/sweep.json"))]
        hint = f"; did you mean {inner[0].parent}?" if inner else ""
        raise ValueError(f"status: {out} is not a sweep directory (it has no sweep.json, results/ or failed/); "
                         f"give the --out of `netatlas sweep run` or the out of netatlas.sweep.run{hint}")
    done = {p.stem for p in (out / "results").glob("*.json")}
    failed = {}
    for path in sorted((out / "failed").glob("*.json")):
        if path.stem not in done:
            record = _read_record(path) or {}
            failed[path.stem] = str(record.get("error", "unreadable record"))
    keys = [entry["key"] for entry in _manifest(out)] or sorted(done | set(failed))
    keys = list(dict.fromkeys(keys))
    n_done = sum(key in done for key in keys)
    failed = {key: failed[key] for key in keys if key in failed}
    return SweepStatus(n_configs=len(keys), n_done=n_done, n_failed=len(failed),
                       n_pending=len(keys) - n_done - len(failed), failed=failed, path=str(out))
