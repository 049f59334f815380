"""Exact 3-D complexes: netatlas vs the edge-subdivision reference code (Berzins, ICML 2023) on its own
trained bunny SDF nets, with the zero level set (``levels=(0.0,)``; its output neuron is its last cut).

The peer is run from its own checkout, never copied here: pass the folder holding its ``NN.py``,
``edge_subdivision.py``, ``utils.py`` and ``models/`` (github.com/arturs-berzins/relu_edge_subdivision).
Both run on one CPU thread on the box [-1/2, 1/2]^3 its script uses; the peer in float32 (its code),
netatlas in float64. Times are the process's CPU seconds (robust on a shared machine), netatlas's the
best of ``--repeats`` after a warm-up (numba compiled), the peer's the best of ``--repeats`` too (its
first call includes torch's warm-up); netatlas's partition is timed alone and with its edges (the peer
returns vertices and edges; netatlas's edges are computed on first access), then Euler characteristic
and volumes, then the zero-level mesh. Counts compared: vertices and edges of the whole
complex (the peer keeps every vertex and edge, box included, as netatlas does).

    python benchmarks/regions3d.py PEER_DIR [--models 3,3x16,relu,bunny ...] [--skip-peer] [--half-width H]
        [--tiles K]

``--tiles K`` builds netatlas's complex in K^3 tiles (``partition(..., tiles=K)``: the same counts in about
a tile's memory). The deep 3-8x32-1 net on the whole box with ``--skip-peer --repeats 1 --tiles 4``
(2-core shared machine, nice 10): 9,932,101 cells, 9,967,597 vertices, 29,866,980 edges, Euler 1, a
watertight zero-level mesh of 233,696 triangles, 317 CPU-s, 3.1 GiB peak (the untiled run would need
~10 GB).

Not collected by pytest; it asserts nothing about timings.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch

import netatlas


def load_bunny(peer: Path, name: str) -> torch.nn.Sequential:
    """The peer's state dict (``fcs.K.weight`` / ``fcs.K.bias``) as a float64 ReLU Sequential."""
    state = torch.load(peer / "models" / name, map_location="cpu", weights_only=True)
    layers = []
    k = 0
    while f"fcs.{k}.weight" in state:
        W, b = state[f"fcs.{k}.weight"].double(), state[f"fcs.{k}.bias"].double()
        lin = torch.nn.Linear(W.shape[1], W.shape[0]).double()
        with torch.no_grad():
            lin.weight.copy_(W)
            lin.bias.copy_(b)
        layers += [lin, torch.nn.ReLU()]
        k += 1
    return torch.nn.Sequential(*layers[:-1])


def run_netatlas(model, repeats=1, half_width=0.5, progress=False, tiles=1):
    """Best-of-``repeats`` CPU seconds of (the partition, its edges -- the figures the peer returns --, the
    rest of the counted figures: Euler characteristic and volumes, the zero-level mesh), each the best over
    the runs, and the last run's complex and mesh."""
    volume = netatlas.Volume.box((-half_width,) * 3, (half_width,) * 3)
    # compile/warm up
    netatlas.regions.partition(netatlas.nets.mlp([3, 4, 1], seed=0), volume, levels=(0.0,), tiles=min(tiles, 2))
    best, cx, mesh = [float("inf")] * 4, None, None
    for _ in range(repeats):
        t0 = time.process_time()
        cx = netatlas.regions.partition(model, volume, levels=(0.0,), progress=progress or None, tiles=tiles)
        t1 = time.process_time()
        counts(cx)
        t2 = time.process_time()
        cx.euler_characteristic(), cx.volumes.sum()
        t3 = time.process_time()
        mesh = cx.level_set(0.0)
        mesh.is_watertight()
        t4 = time.process_time()
        best = [min(b, t) for b, t in zip(best, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True)]
    return best, cx, mesh


def counts(cx):
    """(cells, vertices, edges) of a Complex3D or a TiledComplex3D."""
    if isinstance(cx, netatlas.regions.TiledComplex3D):
        return cx.num_cells, cx.n_vertices, cx.n_edges
    return cx.num_cells, len(cx.vertices), len(cx.edges)


def run_peer(peer: Path, name: str, repeats: int = 1):
    """The peer's best-of-``repeats`` CPU seconds (its first call includes torch's warm-up), its counts
    (vertices, edges), its non-generic warnings, and all its times."""
    sys.path.insert(0, str(peer))
    try:
        from edge_subdivision import skeletal_subdivision
        from NN import NetBunny
    finally:
        sys.path.pop(0)
    dim, rest = name.split(",", 1)
    depth, width = rest.split(",")[0].split("x")
    cwd = Path.cwd()
    import os

    os.chdir(peer)  # it loads models/ relative to the working directory
    times = []
    try:
        f = NetBunny(dim=int(dim), depth=int(depth), width=int(width))
        for _ in range(repeats):
            log = io.StringIO()
            t0 = time.process_time()
            with torch.no_grad(), contextlib.redirect_stdout(log):
                vs, edges, _ = skeletal_subdivision(f, device="cpu", plot=0, prune=0, bbox=(-0.5, 0.5),
                                                    verbose=False)
            times.append(time.process_time() - t0)
    finally:
        os.chdir(cwd)
    warnings = log.getvalue().count("not generic")
    return min(times), len(vs), len(edges), warnings, times


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("peer", type=Path, help="folder with the peer's NN.py, edge_subdivision.py, utils.py, models/")
    parser.add_argument("--models", nargs="+", default=["3,3x16,relu,bunny"])
    parser.add_argument("--skip-peer", action="store_true", help="only netatlas (the peer's deep net takes long)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--half-width", type=float, default=0.5,
                        help="netatlas's box is [-h, h]^3 (default 0.5, the peer's; a smaller box for the deep net "
                             "where the whole one exceeds this machine's memory); the peer always runs on 0.5")
    parser.add_argument("--progress", action="store_true", help="netatlas's progress bar")
    parser.add_argument("--tiles", type=int, default=1,
                        help="netatlas in tiles^3 tiles (partition(..., tiles=k)): the same counts in about a "
                             "tile's memory, for the deep net on the whole box")
    args = parser.parse_args(argv)
    if args.half_width != 0.5:
        args.skip_peer = True
    torch.set_num_threads(1)
    for name in args.models:
        model = load_bunny(args.peer, name)
        (seconds, edge_seconds, rest_seconds, mesh_seconds), cx, mesh = run_netatlas(
            model, args.repeats, args.half_width, args.progress, args.tiles)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux
        n_cells, n_vertices, n_edges = counts(cx)
        print(f"{name}: netatlas {seconds:.4f} CPU s (partition, best of {args.repeats}), +{edge_seconds:.4f} s "
              f"its edges, +{rest_seconds:.4f} s Euler and volumes, +{mesh_seconds:.4f} s the zero-level mesh; "
              f"peak memory {peak:.2f} GiB (the process), box half-width "
              f"{args.half_width}, tiles {args.tiles}^3, {n_cells:,} cells, {n_vertices:,} vertices, "
              f"{n_edges:,} edges, Euler {cx.euler_characteristic()}, volume {cx.volumes.sum():.12f} "
              f"(box {(2 * args.half_width) ** 3:g}), zero-level mesh {mesh.n_triangles:,} triangles, "
              f"area {mesh.area:.6f}, watertight {mesh.is_watertight()}")
        if args.tiles > 1:
            V, E, F, C = cx.tiled_counts
            print(f"{name}: tiles {args.tiles}^3: at most {cx.tile_cells.max():,} cells in a tile; the complex cut by "
                  f"the tile planes has {C:,} cells, Euler {V - E + F - C}; {len(cx.volumes):,} cell volumes, the "
                  f"smallest {cx.volumes.min():.3g}")
        if args.skip_peer:
            continue
        peer_seconds, n_vertices, n_edges, warnings, peer_times = run_peer(args.peer, name, args.repeats)
        same = (n_vertices, n_edges) == counts(cx)[1:]
        with_edges = seconds + edge_seconds
        print(f"{name}: peer {peer_seconds:.4f} CPU s (best of {args.repeats}; all runs "
              f"{', '.join(f'{t:.4f}' for t in peer_times)}), {n_vertices:,} vertices, {n_edges:,} edges "
              f"({warnings} non-generic warnings); same counts: {same}; speed-up {peer_seconds / seconds:.1f}x "
              f"(partition), {peer_seconds / with_edges:.1f}x (partition and its edges, what the peer returns)")


if __name__ == "__main__":
    np.set_printoptions(precision=4)
    main()
