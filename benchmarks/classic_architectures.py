"""The classic ImageNet architectures (narrow versions at (3, 224, 224), ``tests/nets/classic_architectures``):
time to export to ONNX, import, agree with onnxruntime, and partition a small window of a plane through
three 224x224 inputs (``max_regions`` set, so the run is bounded)::

    python benchmarks/classic_architectures.py vgg resnet50 --window 0.002 --max-regions 2000
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import sys
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
from netatlas.regions import partition  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", default=sorted(ARCHITECTURES))
    parser.add_argument("--window", type=float, default=0.002, help="half-width of the window (plane units)")
    parser.add_argument("--max-regions", type=int, default=2000)
    args = parser.parse_args()
    import onnxruntime as ort

    for name in args.names:
        model = build(name)
        start = time.perf_counter()
        buffer = io.BytesIO()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(model, (torch.zeros(1, *SHAPE),), buffer, input_names=["x"], output_names=["y"],
                              dynamic_axes={"x": {0: "N"}, "y": {0: "N"}}, dynamo=False, opset_version=17)
        exported = time.perf_counter()
        net = from_onnx(buffer.getvalue())
        imported = time.perf_counter()
        x = torch.randn(2, *SHAPE, generator=torch.Generator().manual_seed(0)).numpy()
        reference = ort.InferenceSession(buffer.getvalue(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
        error = np.abs(net.head_output(x.astype(np.float64)) - reference).max()
        g = torch.Generator().manual_seed(1)
        plane = Plane.through(*(torch.randn(*SHAPE, generator=g).numpy() for _ in range(3)))
        w = args.window
        plane = dataclasses.replace(plane, bounds=(-w, w, -w, w))
        tracemalloc.start()
        begun = time.perf_counter()
        try:
            part = partition(net, plane, max_regions=args.max_regions)
        except RegionLimitError as exc:  # refused before the run, with its estimate: a result too
            print(f"{name:<12} {time.perf_counter() - begun:6.1f} s to refuse: {str(exc)[:160]}", flush=True)
            tracemalloc.stop()
            continue
        took = time.perf_counter() - begun
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        print(f"{name:<12} nodes {len(net.nodes):>4}  export {exported - start:5.1f} s  "
              f"import {imported - exported:5.1f} s  |p - ort| {error:.1e}  "
              f"regions {part.num_regions:>5} in {took:6.1f} s (peak {peak / 2**20:.0f} MiB traced by Python)",
              flush=True)


if __name__ == "__main__":
    main()
