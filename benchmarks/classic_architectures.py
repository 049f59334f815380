"""The classic ImageNet architectures (narrow versions at (3, 224, 224), ``tests/nets/classic_architectures``):
time to export to ONNX and import, agreement with onnxruntime, and the exact partition of a small window of a
plane through three 224x224 inputs (``max_regions`` set and the default memory budget, so the run is bounded;
the estimate first, then the run, or the refusal with its estimate)::

    python benchmarks/classic_architectures.py vgg resnet50 --window 3e-5 --max-regions 2000

Prints one row per architecture as it finishes, then the table. The numba kernels are loaded first
(``regions._warm``), outside what is measured. Peak memory is the process's resident set
sampled every 10 ms during the partition, above what it held before (torch's tensors included), and
tracemalloc's peak (NumPy and Python objects only).
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import os
import sys
import threading
import time
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parents[1] / "tests" / "nets"))
from classic_architectures import ARCHITECTURES, SHAPE, build  # noqa: E402
from netatlas import Plane, RegionLimitError  # noqa: E402
from netatlas.nets import from_onnx  # noqa: E402
from netatlas.regions import estimate_regions, partition  # noqa: E402
from netatlas.regions._warm import warm_kernels  # noqa: E402

COLUMNS = ("architecture", "nodes", "import s", "max abs(net - ort)", "estimate", "estimate s", "regions",
           "partition s", "peak RSS MiB", "traced MiB")


class PeakRSS:
    """The largest resident set of this process, sampled every 10 ms while in the ``with`` block, minus
    the resident set on entry (bytes)."""

    def __enter__(self):
        self.page = os.sysconf("SC_PAGE_SIZE")
        self.start = self.peak = self._rss()
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()
        return self

    def _rss(self):
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * self.page

    def _watch(self):
        while not self.done.wait(0.01):
            self.peak = max(self.peak, self._rss())

    def __exit__(self, *exc):
        self.done.set()
        self.thread.join()
        self.peak = max(self.peak, self._rss())
        self.extra = self.peak - self.start


def run_one(name, window, max_regions):
    """One architecture: export, import, agreement, estimate, partition; a dict of COLUMNS."""
    import onnxruntime as ort

    model = build(name)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.zeros(1, *SHAPE),), buffer, input_names=["x"], output_names=["y"],
                          dynamic_axes={"x": {0: "N"}, "y": {0: "N"}}, dynamo=False, opset_version=17)
    begun = time.perf_counter()
    net = from_onnx(buffer.getvalue())
    row = {"architecture": name, "nodes": len(net.nodes), "import s": time.perf_counter() - begun}
    x = torch.randn(2, *SHAPE, generator=torch.Generator().manual_seed(0)).numpy()
    reference = ort.InferenceSession(buffer.getvalue(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    row["max abs(net - ort)"] = float(np.abs(net.head_output(x.astype(np.float64)) - reference).max())
    g = torch.Generator().manual_seed(1)
    plane = Plane.through(*(torch.randn(*SHAPE, generator=g).numpy() for _ in range(3)))
    plane = dataclasses.replace(plane, bounds=(-window, window, -window, window))
    begun = time.perf_counter()
    row["estimate"] = estimate_regions(net, plane, max_regions=max_regions)
    row["estimate s"] = time.perf_counter() - begun
    tracemalloc.start()
    with PeakRSS() as rss:
        begun = time.perf_counter()
        try:
            row["regions"] = partition(net, plane, max_regions=max_regions).num_regions
        except RegionLimitError as exc:  # refused (before the run, with its estimate, or during it)
            row["regions"] = "refused"
            row["refusal"] = str(exc)
        row["partition s"] = time.perf_counter() - begun
    row["traced MiB"] = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    row["peak RSS MiB"] = rss.extra / 2**20
    return row


def cell(value):
    if isinstance(value, float):
        return f"{value:.1e}" if value and abs(value) < 1e-2 else f"{value:,.1f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def table(rows):
    """A Markdown table of COLUMNS."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(cell(row.get(c, "")) for c in COLUMNS) + " |" for row in rows]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", default=sorted(ARCHITECTURES), help=", ".join(sorted(ARCHITECTURES)))
    parser.add_argument("--window", type=float, default=3e-5, help="half-width of the window (plane units)")
    parser.add_argument("--max-regions", type=int, default=2000)
    args = parser.parse_args()
    unknown = sorted(set(args.names) - set(ARCHITECTURES))
    if unknown:
        parser.error(f"unknown architectures {unknown}; choose from {sorted(ARCHITECTURES)}")
    warm_kernels()  # numba's kernels loaded (or compiled) once, outside the times and the memory measured
    rows = []
    for name in args.names:
        row = run_one(name, args.window, args.max_regions)
        rows.append(row)
        print("  ".join(f"{c}={cell(row.get(c, ''))}" for c in COLUMNS), flush=True)
        if "refusal" in row:
            print(f"  refused: {row['refusal']}", flush=True)
    print(f"\nwindow [-{args.window:g}, {args.window:g}]^2 of Plane.through three 224x224 inputs, "
          f"max_regions={args.max_regions:,}, memory budget: default\n")
    print(table(rows))


if __name__ == "__main__":
    main()
