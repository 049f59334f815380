"""One slice with over 10^7 exact regions, streamed tile by tile to Parquet in bounded memory.

    /usr/bin/time -v python benchmarks/big_slice.py --out runs/big_slice    # ~1.0e7 regions (estimate first)
    python benchmarks/big_slice.py --out runs/big_slice                     # rerun: resumes, finished tiles kept
    python benchmarks/big_slice.py --widths 2 512 512 512 10 --size 1 --tiles 2 --out /tmp/small   # a quick look

The net is ``netatlas.nets.mlp(WIDTHS, seed=0)`` (PyTorch's default init) on [-SIZE, SIZE]^2; the default
2-2048-2048-2048-10 on [-2, 2]^2 has about 1.0e7 regions by ``estimate_regions`` (counts along lines).
The slice is cut into TILES x TILES tiles (``stream_partition``): each tile's complete regions go to
its own Parquet file, regions cut by tile borders are merged at the end, so the process holds one
tile's partition and the seam pieces at a time. The run folder is resumable: interrupted, the same
command recomputes only the tiles not finished. Prints the count, wall and CPU time of this process and
its peak resident memory (``ru_maxrss``; ``/usr/bin/time -v`` gives the same as "Maximum resident set size").

Measured 2026-12-07 with the defaults, in one uninterrupted run (code of c4f08a5; nice 19 on the shared 2-core
machine, 1-min load 1.7-15, so it got 19% of a core on average): 11,341,705 regions (11,287,406 complete in tiles,
54,299 merged across borders; areas sum to the slice's to 2.7e-13), 1,009 CPU-s (960 user + 52 system), 86.7 min
wall, peak RSS 2.86 GB (2,795,332 KiB, ``/usr/bin/time -v``), 1.4 GB of Parquet. An earlier run, interrupted and
resumed, counted the same regions; its first part, before the tile code stopped copying a tile's patterns
(Python bytes per region for Parquet, concatenated keys for the picture), peaked at 4.48 GB.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before NumPy/torch load their thread pools

import argparse  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import resource  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--widths", type=int, nargs="+", default=[2, 2048, 2048, 2048, 10])
    ap.add_argument("--size", type=float, default=2.0, help="the slice is [-SIZE, SIZE]^2")
    ap.add_argument("--tiles", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, required=True, help="run folder (resumable)")
    ap.add_argument("--estimate", action="store_true", help="print the region estimate and stop")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    import netatlas
    from netatlas.nets import from_torch
    from netatlas.regions._partition import BOUNDARY_TOLERANCE
    from netatlas.regions._scale import estimate_regions
    from netatlas.regions._tiles import stream_partition

    net = from_torch(netatlas.nets.mlp(args.widths, seed=args.seed))
    plane = netatlas.Plane.square(args.size)
    if args.estimate:
        print(json.dumps({"estimate": estimate_regions(net, plane)}))
        return {}
    wall, cpu = time.perf_counter(), time.process_time()
    summary = stream_partition(net, plane, args.tiles, args.out, tolerance=BOUNDARY_TOLERANCE)
    result = {"widths": args.widths, "size": args.size, "tiles": args.tiles, "num_regions": summary["num_regions"],
              "complete_in_tiles": summary["complete_in_tiles"],
              "merged_across_borders": summary["merged_across_borders"],
              "area_error": abs(summary["area"] - summary["slice_area"]) / summary["slice_area"],
              "recomputed_tiles": summary["recomputed_tiles"], "wall_s": round(time.perf_counter() - wall, 1),
              "cpu_s": round(time.process_time() - cpu, 1),
              "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
