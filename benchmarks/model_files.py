"""Cost of loading a .pt2 safely: netatlas's member-by-member check (``nets/_archive.py``) and the
in-memory copy it hands torch, side by side with a bare ``torch.export.load`` (the anchor), as a ratio.

    python benchmarks/model_files.py                      # MLP 784-2000-2000-10 (22 MB)
    python benchmarks/model_files.py --widths 2,64,64,1
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def best_of(fn, repeats):
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", default="784,2000,2000,10")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    import torch

    import netatlas
    from netatlas.nets import load_module

    widths = [int(w) for w in args.widths.split(",")]
    path = Path(tempfile.mkdtemp()) / "model.pt2"
    netatlas.nets.save(netatlas.nets.mlp(widths), path, input_shape=(widths[0],))
    anchor = best_of(lambda: torch.export.load(str(path)), args.repeats)
    checked = best_of(lambda: load_module(path), args.repeats)
    size = path.stat().st_size / 2**20
    print(f"{path.name}: {size:.1f} MiB, widths {widths}")
    print(f"torch.export.load (unchecked)   {anchor:.3f} s")
    print(f"netatlas.nets.load_module       {checked:.3f} s   ratio {checked / anchor:.2f}")


if __name__ == "__main__":
    main()
