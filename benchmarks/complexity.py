"""Local complexity and tiled partitions: exact vs sampled LC per second, tiles on 1 and 2 workers.

    python benchmarks/complexity.py                 # both parts, default sizes
    python benchmarks/complexity.py --part lc       # exact vs sampled LC on 1,000 MNIST-sample points
    python benchmarks/complexity.py --part tiles --widths 512,512,512 --tiles 4
    python benchmarks/complexity.py --json out.json
    python benchmarks/complexity.py --part lenet --base /tmp/lc_orig/src --repeats 3

Part "lenet": exact local complexity of a trained LeNet-5 (``nets.zoo.train_lenet5_mnist(seed=0)``, trained
once and cached in ``--model-cache``) around the first ``--points`` MNIST-sample test images, radius
``--radius``, one seeded random plane each, ``max_regions=None``, ``memory_budget=None`` (no pre-run
estimate: the work of the code before limits existed; ``--estimate`` keeps the default memory budget, whose
limits watch the run; ``--defaults``: the call with no options, default ``max_regions`` too). With ``--base
SRC`` (another checkout's ``src``, e.g. ``git worktree add --detach /tmp/lc_orig 3c05cce``, the code when
issue 27 was filed) each repeat times the base and this tree in alternation, each in a fresh process
(kernels compiled and warmed outside the timing), one thread; best of ``--repeats`` CPU and wall seconds,
the counts of both and whether they are equal.

Measured 2026-12-07 (2 cores shared, load 8-14: CPU seconds, best of 2, 3 discs of 3,903, 3,328 and 3,624
regions): the code when issue 27 was filed (3c05cce, no estimate; other counts, 3,373 / 9,038 / 7,401, before
the exact tie rule) 6.9 s; e1f8910 (before the disc pruning) 2.39 s, with its estimate 5.13 s; c4f08a5 1.44 s,
with its estimate 4.14 s; fee5112 1.16-1.24 s, with the estimate 2.66-3.0 s. Branch lenetlc (load 2.5-5, alternated
with 3c05cce in the same runs): 0.515 s vs 6.10 s (11.8x), with the memory-budget watch (``--estimate``) 0.604 s
vs 6.12 s (10.1x), with no options (``--defaults``) 0.590 s vs 6.45 s (10.9x); the same counts as fee5112.

Part "lc": a 784-256-256-10 MLP (seeded init, then ``--train-steps`` Adam steps on the MNIST sample),
1,000 MNIST-sample points, one random plane each; exact LC (regions meeting the disc,
``local_complexity``) and the sampled estimator (``method="sampled"``) at the same radii; the ratio
is exact time / sampled time (the issue's goal: <= 10). Wall and CPU time are both reported (the
machine is shared).

Part "tiles": a 2-W-W-W-10 MLP on [-3, 3]^2: untiled ``partition``, then ``stream_partition`` with
k x k tiles in process and on a LocalCluster of 1 and 2 worker processes. Each configuration runs in
a fresh process; peak memory is the peak resident set size (ru_maxrss) of the process doing the work
(the worker processes' own peaks on Dask).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_lc(radii, train_steps, seed=0):
    import torch

    import netatlas
    from netatlas.regions import local_complexity

    torch.set_num_threads(1)
    data = netatlas.data.mnist_sample(seed=seed, flatten=True)
    model = netatlas.nets.mlp([784, 256, 256, 10], seed=seed)
    if train_steps:
        per_epoch = -(-len(data.x) // 200)
        netatlas.train.fit(model, data, epochs=max(train_steps // per_epoch, 1), lr=1e-3, batch_size=200)
    net = netatlas.nets.from_torch(model)
    pts = data.x[:1000].double().numpy()
    local_complexity(net, pts[:8], radii[0])  # compile the kernels outside the timings
    rows = []
    for r in radii:
        t0, c0 = time.perf_counter(), time.process_time()
        exact = local_complexity(net, pts, r, seed=1)
        te, ce = time.perf_counter() - t0, time.process_time() - c0
        t0, c0 = time.perf_counter(), time.process_time()
        sampled = local_complexity(net, pts, r, seed=1, method="sampled")
        ts, cs = time.perf_counter() - t0, time.process_time() - c0
        rows.append({"radius": r, "mean_exact_regions": float(exact.mean()),
                     "mean_sampled_neurons": float(sampled.mean()), "exact_points_per_s": len(pts) / te,
                     "sampled_points_per_s": len(pts) / ts, "exact_s": te, "sampled_s": ts, "exact_cpu_s": ce,
                     "sampled_cpu_s": cs, "ratio_wall": te / ts, "ratio_cpu": ce / max(cs, 1e-9)})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def _lenet_model(cache):
    """The trained LeNet-5's state dict, trained once into ``cache``."""
    import os

    import torch

    if not os.path.exists(cache):
        from netatlas.nets import zoo

        torch.set_num_threads(1)
        model, _ = zoo.train_lenet5_mnist(seed=0)
        torch.save(model.state_dict(), cache)
    return cache


def _lenet_child(cache, n_points, radius, estimate):
    """Time one local_complexity call (in a fresh process, with whichever netatlas is on the path)."""
    import inspect

    import torch

    import netatlas
    from netatlas.nets import zoo
    from netatlas.regions import local_complexity

    torch.set_num_threads(1)
    model = zoo.lenet5(seed=0)
    model.load_state_dict(torch.load(cache))
    net = netatlas.nets.from_torch(model.eval(), input_shape=(1, 28, 28))
    pts = netatlas.data.mnist_sample(seed=0).x_test[:n_points].double().numpy()
    kw = {}
    if "max_regions" in inspect.signature(local_complexity).parameters and estimate != "defaults":
        # limits exist since 2026-12-07
        kw = {"max_regions": None} if estimate else {"max_regions": None, "memory_budget": None}
    local_complexity(net, pts[:1], radius / 50, **kw)  # compile and load the kernels outside the timing
    t0, c0 = time.perf_counter(), time.process_time()
    counts = local_complexity(net, pts, radius, seed=0, **kw)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(json.dumps({"counts": counts.ravel().tolist(), "wall_s": wall, "cpu_s": cpu, "src": netatlas.__file__,
                      "peak_mb": _peak_mb()}), flush=True)


def bench_lenet(base, n_points, radius, repeats, cache, estimate):
    import os

    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")
    trees = {"this": os.path.abspath(here)}
    if base:
        trees = {"base": os.path.abspath(base), **trees}
    runs: dict = {name: [] for name in trees}
    for _ in range(repeats):
        for name, src in trees.items():  # alternating: both see the same load
            env = {**os.environ, "PYTHONPATH": src, "OMP_NUM_THREADS": "1"}
            cmd = [sys.executable, os.path.abspath(__file__), "--lenet-child",
                   json.dumps([cache, n_points, radius, estimate])]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env).stdout
            runs[name].append(json.loads(out.strip().splitlines()[-1]))
            print(name, out.strip().splitlines()[-1], flush=True)
    rows = {name: {"counts": r[0]["counts"], "best_cpu_s": min(x["cpu_s"] for x in r),
                   "best_wall_s": min(x["wall_s"] for x in r), "src": src}
            for (name, r), src in zip(runs.items(), trees.values(), strict=True)}
    if base:
        rows["speedup_cpu"] = rows["base"]["best_cpu_s"] / rows["this"]["best_cpu_s"]
        rows["speedup_wall"] = rows["base"]["best_wall_s"] / rows["this"]["best_wall_s"]
        rows["counts_equal"] = rows["base"]["counts"] == rows["this"]["counts"]
    rows["load_average"] = os.getloadavg()
    print(json.dumps(rows), flush=True)
    return rows


def _tiles_child(widths, tiles, workers, size):
    """Run one configuration (in a fresh process): prints a JSON line."""
    import netatlas
    from netatlas import Plane
    from netatlas.regions import partition
    from netatlas.regions._tiles import stream_partition

    net = netatlas.nets.from_torch(netatlas.nets.mlp([2, *widths, 10], seed=0, init="torch"))
    plane = Plane.square(size)
    partition(netatlas.nets.mlp([2, 8, 1], seed=0), Plane.square(1.0), tiles=2)  # compile the kernels
    t0, c0 = time.perf_counter(), time.process_time()
    if tiles == 1:
        n = partition(net, plane).num_regions
        peaks = [_peak_mb()]
    else:
        client = None
        if workers:
            import logging

            import distributed

            cluster = distributed.LocalCluster(n_workers=workers, threads_per_worker=1, host="127.0.0.1",
                                               dashboard_address=None, silence_logs=logging.ERROR,
                                               memory_limit=0)
            client = distributed.Client(cluster)
            client.run(lambda: partition(netatlas.nets.mlp([2, 8, 1], seed=0), Plane.square(1.0), tiles=2))
            t0, c0 = time.perf_counter(), time.process_time()
        with tempfile.TemporaryDirectory() as d:
            n = stream_partition(net, plane, tiles, d, tolerance=1e-10, client=client, picture=256)["num_regions"]
        if client is not None:
            peaks = sorted(client.run(_peak_mb).values())
            client.close()
            cluster.close()
        else:
            peaks = [_peak_mb()]
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(json.dumps({"widths": widths, "tiles": tiles, "workers": workers, "regions": n, "wall_s": wall,
                      "parent_cpu_s": cpu, "peak_mb_per_worker": peaks}), flush=True)


def bench_tiles(widths, tiles, size):
    rows = []
    for k, workers in [(1, 0), (tiles, 0), (tiles, 1), (tiles, 2)]:
        cmd = [sys.executable, __file__, "--child", json.dumps([widths, k, workers, size])]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
        rows.append(json.loads(out))
        print(out, flush=True)
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("lc", "tiles", "both", "lenet"), default="both")
    parser.add_argument("--radii", default="0.1,0.5", help="comma-separated radii for part lc")
    parser.add_argument("--train-steps", type=int, default=0, help="Adam steps before measuring LC")
    parser.add_argument("--widths", default="256,256,256", help="hidden widths for part tiles (the issue: 512x3)")
    parser.add_argument("--tiles", type=int, default=4)
    parser.add_argument("--size", type=float, default=3.0, help="half-width of the square window")
    parser.add_argument("--base", default=None, help="part lenet: another checkout's src to time in alternation")
    parser.add_argument("--points", type=int, default=3, help="part lenet: MNIST-sample test images")
    parser.add_argument("--radius", type=float, default=0.05, help="part lenet: disc radius")
    parser.add_argument("--repeats", type=int, default=3, help="part lenet: best of this many runs")
    parser.add_argument("--estimate", action="store_true", help="part lenet: default memory budget (estimate first)")
    parser.add_argument("--defaults", action="store_true",
                        help="part lenet: local_complexity's defaults (max_regions and memory budget)")
    parser.add_argument("--model-cache", default=os.path.join(tempfile.gettempdir(), "netatlas_bench_lenet5_seed0.pt"),
                        help="part lenet: the trained LeNet-5's state dict (trained when missing)")
    parser.add_argument("--json", default=None)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--lenet-child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _tiles_child(*json.loads(args.child))
        return
    if args.lenet_child:
        _lenet_child(*json.loads(args.lenet_child))
        return
    if args.part == "lenet":
        result = {"lenet": bench_lenet(args.base, args.points, args.radius, args.repeats,
                                       _lenet_model(args.model_cache), "defaults" if args.defaults else args.estimate)}
        if args.json:
            with open(args.json, "w") as f:
                json.dump(result, f, indent=2)
        return
    result = {}
    if args.part in ("lc", "both"):
        result["lc"] = bench_lc([float(r) for r in args.radii.split(",")], args.train_steps)
    if args.part in ("tiles", "both"):
        result["tiles"] = bench_tiles([int(w) for w in args.widths.split(",")], args.tiles, args.size)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
