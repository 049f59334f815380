"""Streamed tiles (``regions --tiles``): each finished tile is recorded with its files' sizes and
checksums; a resume detects a damaged tile (truncated .npz or .parquet), says so in one line,
recomputes it and gives the count of an uninterrupted run; a failed write leaves no temporary file."""

import hashlib
import json
import logging
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import netatlas
from netatlas import Plane
from netatlas.regions import partition
from netatlas.regions._tiles import stream_partition

pq = pytest.importorskip("pyarrow.parquet")

TOLERANCE = 1e-10


def _net():
    return netatlas.nets.mlp([2, 12, 12, 2], seed=3)


@pytest.fixture(scope="module")
def exact():
    """The untiled count of the test slice, the reference for every resume."""
    return partition(_net(), Plane.square(1.0)).num_regions


def _stream(directory):
    return stream_partition(_net(), Plane.square(1.0), 3, directory, tolerance=TOLERANCE, picture=30)


def _sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_each_finished_tile_is_recorded_with_its_sizes_and_checksums(tmp_path, exact):
    summary = _stream(tmp_path)
    assert summary["num_regions"] == exact and summary["recomputed_tiles"] == []
    records = sorted(tmp_path.glob("tile_*.json"))
    assert [p.stem for p in records] == [f"tile_{j:03d}_{i:03d}" for j in range(3) for i in range(3)]
    for path in records:
        files = json.loads(path.read_text())["files"]
        assert sorted(files) == [f"{path.stem}.npz", f"{path.stem}.parquet"]
        for name, wanted in files.items():
            assert wanted == {"size": (tmp_path / name).stat().st_size, "sha256": _sha256(tmp_path / name)}


@pytest.mark.parametrize("suffix", [".npz", ".parquet"])
def test_a_truncated_tile_is_reported_in_one_line_and_recomputed(tmp_path, exact, caplog, suffix):
    _stream(tmp_path)
    damaged = tmp_path / f"tile_001_002{suffix}"
    size = damaged.stat().st_size
    with open(damaged, "r+b") as stream:  # what a full disk or a killed copy leaves
        stream.truncate(size // 2)
    others = {p.name: p.stat().st_mtime_ns for p in tmp_path.glob("tile_*") if not p.name.startswith("tile_001_002")}
    with caplog.at_level(logging.WARNING, logger="netatlas.regions._tiles"):
        summary = _stream(tmp_path)
    why = f"tile_001_002: tile_001_002{suffix} has {size // 2} bytes, recorded {size}"
    assert summary["recomputed_tiles"] == [why]
    assert [r.getMessage() for r in caplog.records] == [
        f"stream_partition: damaged tile in {tmp_path}: {why}; recomputing it"]
    assert summary["num_regions"] == exact
    assert damaged.stat().st_size == size  # rewritten whole
    assert {p.name: p.stat().st_mtime_ns for p in tmp_path.glob("tile_*")
            if not p.name.startswith("tile_001_002")} == others  # the intact tiles are not recomputed
    tables = [pq.read_table(p) for p in tmp_path.glob("*.parquet")]
    assert sum(t.num_rows for t in tables) == exact
    again = _stream(tmp_path)
    assert again["recomputed_tiles"] == [] and again["num_regions"] == exact


def test_a_changed_or_missing_tile_file_or_record_is_recomputed(tmp_path, exact):
    _stream(tmp_path)
    parquet = tmp_path / "tile_000_000.parquet"
    data = bytearray(parquet.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, other bytes
    parquet.write_bytes(bytes(data))
    (tmp_path / "tile_002_001.npz").unlink()
    (tmp_path / "tile_001_001.json").write_text('{"files": ')
    summary = _stream(tmp_path)
    assert summary["recomputed_tiles"] == [
        "tile_000_000: tile_000_000.parquet does not match its recorded SHA-256",
        "tile_001_001: tile_001_001.json, its record, is unreadable",
        "tile_002_001: tile_002_001.npz is missing"]
    assert summary["num_regions"] == exact


_FULL_DISK = """
import resource, signal
import netatlas
from netatlas.regions._tiles import stream_partition
net = netatlas.nets.mlp([2, 12, 12, 2], seed=3)
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit then fail with EFBIG, like a full disk
resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, resource.RLIM_INFINITY))
try:
    stream_partition(net, netatlas.Plane.square(1.0), 3, {out!r}, tolerance={tolerance!r}, picture=900)
    print("WROTE")
except OSError as exc:
    print("FAILED", exc.errno)
"""


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_FSIZE simulates a full disk on Linux")
def test_a_full_disk_leaves_no_temporary_tile_and_the_resume_completes(tmp_path, exact):
    # a tile's picture block is 300 x 300 uint64 (720 kB): its .parquet fits under the limit, its .npz not
    script = _FULL_DISK.format(limit=200_000, out=str(tmp_path), tolerance=TOLERANCE)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True,
                          timeout=300, env=env)
    assert done.stdout.split() == ["FAILED", "27"], done.stderr[-2000:]
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["tile_000_000.parquet", "tiles.json"]  # no .tmp file, no npz, no record
    summary = stream_partition(_net(), Plane.square(1.0), 3, tmp_path, tolerance=TOLERANCE, picture=900)
    assert summary["num_regions"] == exact and summary["recomputed_tiles"] == []
    assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name]


def test_temporaries_of_a_killed_process_are_removed_on_resume(tmp_path, exact):
    _stream(tmp_path)
    stale = [tmp_path / ".tile_000_001.1a2b3c4d.tmp.npz", tmp_path / ".tile_002_002.5e6f7a8b.tmp.parquet"]
    for path in stale:
        path.write_bytes(b"PK\x03\x04 half a file")
    assert _stream(tmp_path)["num_regions"] == exact
    assert not any(path.exists() for path in stale)


def test_cli_resume_reports_a_damaged_tile_and_recomputes_it(tmp_path, capsys):
    from netatlas.cli import main

    model = tmp_path / "m.pt2"
    netatlas.nets.save(_net(), model, input_shape=(2,))
    out = tmp_path / "run"
    args = ["regions", str(model), "--tiles", "3", "--picture", "30", "--out", str(out)]
    for _ in range(2):
        try:
            main(args)
        except SystemExit as exc:
            assert exc.code in (0, None)
        summary = json.loads((out / "summary.json").read_text())
        assert summary.get("status") != "failed"
        if _ == 0:
            first = summary["num_regions"]
            npz = out / "tiles" / "tile_002_002.npz"
            npz.write_bytes(npz.read_bytes()[:100])  # today: BadZipFile on every resume
    assert summary["num_regions"] == first
    assert summary["recomputed_tiles"] == [
        f"tile_002_002: tile_002_002.npz has 100 bytes, recorded {npz.stat().st_size}"]
    np.load(npz).close()


def test_on_dask_only_the_damaged_tile_is_recomputed(tmp_path, exact):
    distributed = pytest.importorskip("dask.distributed")
    _stream(tmp_path)
    (tmp_path / "tile_000_001.npz").write_bytes(b"")
    others = {p.name: p.stat().st_mtime_ns for p in tmp_path.glob("tile_*") if not p.name.startswith("tile_000_001")}
    with distributed.Client(processes=False, n_workers=1, threads_per_worker=1, dashboard_address=None) as client:
        summary = stream_partition(_net(), Plane.square(1.0), 3, tmp_path, tolerance=TOLERANCE, picture=30,
                                   client=client)
    assert summary["num_regions"] == exact
    assert [why.split(":")[0] for why in summary["recomputed_tiles"]] == ["tile_000_001"]
    assert {p.name: p.stat().st_mtime_ns for p in tmp_path.glob("tile_*")
            if not p.name.startswith("tile_000_001")} == others
