"""Start-up of a script whose first partition is a small MLP: seconds from after ``import torch`` to the first
partition returned, in fresh processes (numba's cache warm), best of N.

    python benchmarks/startup.py                # 2-64-64-2 on [-1, 1]^2, best of 5
    python benchmarks/startup.py --repeat 9 --widths 2-8-3

Each run is a new interpreter (``sys.executable``) executing::

    import torch
    t0 = time.perf_counter()
    import netatlas
    netatlas.regions.partition(netatlas.nets.mlp([2, 64, 64, 2], seed=0), netatlas.Plane.square(1.0))

and the figure is ``time.perf_counter() - t0`` (wall) beside the process's CPU seconds over the same span; the
split between importing numba, its first-call start-up (the registries it loads, scipy.linalg among them) and
the rest is printed too. The first run of the set is a warm-up (it also fills numba's cache when it is cold)
and is not counted. On a shared machine, CPU seconds are the steadier figure.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

#: What each fresh process runs; it prints one JSON line of timings.
SCRIPT = """
import json, sys, time
import torch
t0, c0 = time.perf_counter(), time.process_time()
import netatlas
t1 = time.perf_counter()
import numba
t2 = time.perf_counter()
part = netatlas.regions.partition(netatlas.nets.mlp({widths}, seed=0), netatlas.Plane.square(1.0))
t3, c3 = time.perf_counter(), time.process_time()
print(json.dumps({{"wall": t3 - t0, "cpu": c3 - c0, "netatlas": t1 - t0, "numba": t2 - t1, "partition": t3 - t2,
                  "regions": part.num_regions, "scipy_linalg": "scipy.linalg" in sys.modules}}))
"""


def run_once(widths) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    out = subprocess.run([sys.executable, "-c", SCRIPT.format(widths=list(widths))], capture_output=True, text=True,
                         env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="fresh processes timed (best of N), after one warm-up")
    parser.add_argument("--widths", default="2-64-64-2", help="the MLP's widths, dash-separated")
    args = parser.parse_args(argv)
    widths = [int(w) for w in args.widths.split("-")]
    run_once(widths)  # warm-up: numba's cache, the OS's file cache
    runs = [run_once(widths) for _ in range(args.repeat)]
    best = min(runs, key=lambda r: r["wall"])
    cpu = min(r["cpu"] for r in runs)
    print(f"first partition of a {args.widths} MLP ({best['regions']:,} regions), after import torch, best of "
          f"{args.repeat} fresh processes: {best['wall']:.3f} s wall, {cpu:.3f} s CPU (best)")
    print(f"  of the best run: import netatlas {best['netatlas']:.3f} s, import numba {best['numba']:.3f} s, "
          f"first partition {best['partition']:.3f} s (numba's first-call start-up and kernel loading included); "
          f"scipy.linalg loaded: {best['scipy_linalg']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
