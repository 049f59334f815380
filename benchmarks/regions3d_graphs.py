"""Exact 3-D complexes of graphs that are not chains (``netatlas.regions._volume_graph``): a residual MLP
3-32-[32]x2-1 on the cube [-1, 1]^3 and a small max-pool CNN on a ``Volume.through`` slice of four random
8x8 images; cells, Euler characteristic, the volume sum and the time of one partition (the process's CPU
seconds, robust on a shared machine, and wall seconds) after a warm-up run (numba compiled).

    python benchmarks/regions3d_graphs.py [--seed 0] [--tiles K]

``--tiles K`` builds each complex in K^3 tiles (``partition(..., tiles=K)``: the whole complex's counts in about
a tile's memory; the largest tile's cells are printed too).

Not collected by pytest; it asserts nothing about timings.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from torch import nn

import netatlas
from netatlas.nets import as_net


class Residual(nn.Module):
    """``h = relu(W0 x)``, then ``h + relu(W h + b)`` per block, then a Linear head."""

    def __init__(self, width=32, n_blocks=2):
        super().__init__()
        self.first, self.head = nn.Linear(3, width), nn.Linear(width, 1)
        self.blocks = nn.ModuleList([nn.Linear(width, width) for _ in range(n_blocks)])

    def forward(self, x):
        h = torch.relu(self.first(x))
        for block in self.blocks:
            h = h + torch.relu(block(h))
        return self.head(h)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tiles", type=int, default=1)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    residual = Residual().double()
    cnn = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(2 * 3 * 3, 8),
                        nn.ReLU(), nn.Linear(8, 3)).double()
    images = np.random.default_rng(args.seed).normal(size=(4, 1, 8, 8))
    cases = [("residual 3-32-[32]x2-1 on [-1, 1]^3", as_net(residual, input_shape=(3,)), netatlas.Volume.cube(1.0)),
             ("CNN conv(1->2, 3x3)-relu-maxpool(2)-fc8-relu-fc3, Volume.through four 8x8 images",
              as_net(cnn, input_shape=(1, 8, 8)), netatlas.Volume.through(*images))]
    for name, net, volume in cases:
        netatlas.regions.partition(net, volume, tiles=args.tiles)  # warm-up: numba's kernels compiled or loaded
        cpu, wall = time.process_time(), time.perf_counter()
        cx = netatlas.regions.partition(net, volume, tiles=args.tiles)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        n_vertices = len(cx.vertices) if args.tiles == 1 else cx.n_vertices
        largest = "" if args.tiles == 1 else f" (largest tile {int(cx.tile_cells.max()):,} cells)"
        print(f"{name}: {cx.num_cells:,} cells{largest}, {n_vertices:,} vertices, Euler characteristic "
              f"{cx.euler_characteristic()}, volumes sum {cx.volumes.sum():.12g} of {volume.volume:g}; "
              f"{cpu:.2f} CPU-s ({wall:.2f} s wall)")


if __name__ == "__main__":
    main()
