"""partition(..., tiles=k): the same regions (patterns), areas, affine maps, polygons and adjacency as
the untiled partition, in process and on Dask, for MLPs and a conv graph; the streaming CLI."""

import json

import numpy as np
import pytest
import torch
from torch import nn

import netatlas
from netatlas import Plane
from netatlas.nets import from_torch, mlp
from netatlas.regions import partition


def _by_pattern(part):
    packed = np.packbits(part.patterns, axis=1)
    return {row.tobytes(): i for i, row in enumerate(packed)}


def _assert_same(a, b):
    ka, kb = _by_pattern(a), _by_pattern(b)
    assert a.num_regions == b.num_regions == len(ka) == len(kb)
    assert set(ka) == set(kb)
    ia = np.array(list(ka.values()))
    ib = np.array([kb[k] for k in ka])
    scale = a.plane.area
    assert np.abs(a.areas[ia] - b.areas[ib]).max() <= 1e-12 * scale * 10
    out_scale = np.abs(a.maps).max()
    assert np.abs(a.output_linear[ia] - b.output_linear[ib]).max() <= 1e-12 * out_scale * 10
    assert np.abs(a.output_offset[ia] - b.output_offset[ib]).max() <= 1e-12 * out_scale * 10
    # same polygons: vertex counts and vertex sets (within the merge tolerance of the diagonal)
    assert np.array_equal(np.diff(a.offsets)[ia], np.diff(b.offsets)[ib])
    tol = 1e-9 * a.diameter
    for i, j in zip(ia[:200], ib[:200], strict=True):
        pa, pb = a.polygon(int(i)), b.polygon(int(j))
        d = np.abs(pa[:, None] - pb[None]).max(-1)
        assert d.min(1).max() <= tol and d.min(0).max() <= tol
    # same adjacency and boundary units
    na, nb = a.neighbors(), b.neighbors()
    inv = np.empty(b.num_regions, np.int64)
    inv[ib] = ia
    pairs_b = np.sort(inv[nb.pairs], axis=1)
    assert {tuple(p) + (u,) for p, u in zip(na.pairs.tolist(), na.unit.tolist(), strict=True)} == \
        {tuple(p) + (u,) for p, u in zip(pairs_b.tolist(), nb.unit.tolist(), strict=True)}
    assert set(np.unique(b.labels)) <= set(range(-4, a.n_units))  # no seam left


@pytest.mark.parametrize("sizes,seed,k", [([2, 24, 24, 3], 0, 2), ([2, 16, 16, 16, 1], 1, 3),
                                          ([5, 20, 20, 2], 2, 4)])
def test_tiled_equals_untiled_mlp(sizes, seed, k):
    net = from_torch(mlp(sizes, seed=seed))
    plane = Plane.square(1.7, dim=sizes[0]) if sizes[0] > 2 else Plane(np.zeros(2), [1.0, 0.2], [0.1, 1.0],
                                                                       (-1.5, 2.0, -1.0, 1.3))
    a = partition(net, plane)
    b = partition(net, plane, tiles=k)
    assert b.method == f"tiled-{k}x{k}"
    _assert_same(a, b)


def test_tiled_equals_untiled_trained_net():
    data = netatlas.data.moons(n=128, seed=0)
    model = mlp([2, 32, 32, 2], seed=3)
    netatlas.train.fit(model, data, epochs=200, lr=0.02)
    plane = Plane.square(1.5)
    _assert_same(partition(model, plane), partition(model, plane, tiles=3))


def test_tiled_equals_untiled_conv_graph():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8, 4), nn.ReLU(), nn.Linear(4, 2))
    net = from_torch(model, input_shape=(1, 4, 4))
    rng = np.random.default_rng(0)
    plane = Plane.through(*rng.uniform(0, 1, size=(3, 1, 4, 4)))
    _assert_same(partition(net, plane), partition(net, plane, tiles=2))


def test_tiled_on_dask():
    distributed = pytest.importorskip("dask.distributed")
    net = from_torch(mlp([2, 16, 16, 2], seed=4))
    plane = Plane.square(1.0)
    with distributed.Client(processes=False, n_workers=1, threads_per_worker=1, dashboard_address=None) as client:
        b = partition(net, plane, tiles=3, client=client)
    _assert_same(partition(net, plane), b)


def test_tiles_bad_input():
    with pytest.raises(ValueError, match="tiles must be an integer >= 1"):
        partition(mlp([2, 4, 1]), tiles=0)


def test_cli_tiles_streams_parquet_and_resumes(tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    from netatlas.cli import main

    model = tmp_path / "m.pt2"
    netatlas.nets.save(mlp([2, 16, 16, 3], seed=0), model, input_shape=(2,))
    out = tmp_path / "run"
    args = ["regions", str(model), "--plane", "square:1.5", "--tiles", "3", "--picture", "60", "--out", str(out)]
    for _ in range(2):  # the second run resumes: no tile is recomputed
        try:
            main(args)
        except SystemExit as exc:
            assert exc.code in (0, None)
        if _ == 0:
            stamps = {p.name: p.stat().st_mtime_ns for p in (out / "tiles").glob("tile_*")}
    assert {p.name: p.stat().st_mtime_ns for p in (out / "tiles").glob("tile_*")} == stamps
    summary = json.loads((out / "summary.json").read_text())
    direct = partition(netatlas.nets.load(model), Plane.square(1.5))
    assert summary["num_regions"] == direct.num_regions
    assert summary["area"] == pytest.approx(9.0, rel=1e-12)
    tables = [pq.read_table(p) for p in sorted((out / "tiles").glob("*.parquet"))]
    assert len(tables) == 10 and sum(t.num_rows for t in tables) == direct.num_regions
    areas = np.concatenate([t.column("area").to_numpy() for t in tables])
    patterns = sorted(b for t in tables for b in t.column("pattern").to_pylist())
    assert patterns == sorted(_by_pattern(direct))
    assert np.sort(areas) == pytest.approx(np.sort(direct.areas), rel=1e-9, abs=1e-12)
    assert (out / "regions_pattern.png").exists()


def test_tiled_equals_untiled_max_pool_hardtanh():
    torch.manual_seed(2)
    model = nn.Sequential(nn.Conv2d(1, 2, 2), nn.Hardtanh(-0.3, 0.4), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(8, 4), nn.ReLU(), nn.Linear(4, 2))
    net = from_torch(model, input_shape=(1, 5, 5))
    rng = np.random.default_rng(5)
    plane = Plane.through(*rng.uniform(0, 1, size=(3, 1, 5, 5)))
    a, b = partition(net, plane), partition(net, plane, tiles=3)
    assert a.argmax.shape[1] > 0
    key_a = {(p.tobytes(), m.tobytes()): i for i, (p, m) in enumerate(zip(np.packbits(a.patterns, axis=1), a.argmax,
                                                                          strict=True))}
    key_b = {(p.tobytes(), m.tobytes()): i for i, (p, m) in enumerate(zip(np.packbits(b.patterns, axis=1), b.argmax,
                                                                          strict=True))}
    assert a.num_regions == b.num_regions == len(key_a) and set(key_a) == set(key_b)
    ia = np.array(list(key_a.values()))
    ib = np.array([key_b[k] for k in key_a])
    assert np.abs(a.areas[ia] - b.areas[ib]).max() <= 1e-11 * plane.area
    assert np.abs(a.output_offset[ia] - b.output_offset[ib]).max() <= 1e-11 * np.abs(a.maps).max()


def test_streamed_picture_colours_are_the_untiled_regions_pattern_hashes(tmp_path):
    # each pixel of the streamed picture: the FNV-1a hash of the packed pattern bits then the int16
    # arg-max bytes (the merge key) of the untiled region at that pixel; a max-pool net so both parts count
    from netatlas.regions._tiles import _pattern_hash, stream_partition, tile_planes

    torch.manual_seed(2)
    model = nn.Sequential(nn.Conv2d(1, 2, 2), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8, 5), nn.ReLU(),
                          nn.Linear(5, 2))
    net = from_torch(model, input_shape=(1, 5, 5))
    plane = Plane.through(*np.random.default_rng(5).uniform(0, 1, size=(3, 1, 5, 5)))
    whole = partition(net, plane)
    key = np.concatenate([np.concatenate(whole.pattern_bits, axis=1),
                          np.concatenate(whole.choices, axis=1).astype(np.int16).view(np.uint8)], axis=1)
    assert whole.argmax.shape[1] > 0 and key.shape[1] > 0
    px, tiles = 7, 2
    picture = stream_partition(net, plane, tiles, tmp_path, tolerance=1e-10, picture=px * tiles)["picture"]
    for i, j, tile in tile_planes(plane, tiles):
        us, vs = tile.grid(px)
        region = whole.locate(np.stack([us.ravel(), vs.ravel()], 1))
        expected = _pattern_hash(key[region]).reshape(px, px)
        assert np.array_equal(picture[j * px:(j + 1) * px, i * px:(i + 1) * px], expected)
