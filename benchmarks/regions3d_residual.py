"""Exact 3-D complexes of residual MLPs: the chain path with carried skips (``netatlas.regions._skipvolume``)
against the graph path's gated passes per cell (``_volume_graph``, what ``partition`` ran on them before).
Random residual nets (relu blocks, two-layer blocks, a Linear projection on the skip) on the cube
[-1, 1]^3 and a residual SDF net trained on a sphere (seeded, a few seconds), with its zero level set;
cells, vertices and the process's CPU seconds (best of ``--repeats``, robust on a shared machine) after a
warm-up run (numba compiled).

    python benchmarks/regions3d_residual.py [--path auto|graph] [--repeats 3]

``--path graph`` runs the graph path on the same nets (``_volume_graph.graph_volume`` directly), so one tree
gives both; on a tree without ``_skipvolume`` ``auto`` is the graph path. Not collected by pytest; it
asserts nothing about timings.
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
    """``h = relu(W0 x)``, then ``h + relu(W h + b)`` (or ``h + W2 relu(W1 h + b1)``) per block, a Linear
    projection of x added to the stream when ``project``, then a Linear head."""

    def __init__(self, width=32, n_blocks=2, two_layer=False, project=False):
        super().__init__()
        self.first, self.head = nn.Linear(3, width), nn.Linear(width, 1)
        self.project = nn.Linear(3, width) if project else None
        self.blocks = nn.ModuleList([nn.Sequential(nn.Linear(width, width), nn.ReLU(),
                                                   *([nn.Linear(width, width)] if two_layer else []))
                                     for _ in range(n_blocks)])

    def forward(self, x):
        h = torch.relu(self.first(x))
        if self.project is not None:
            h = h + self.project(x)
        for block in self.blocks:
            h = h + block(h)
        return self.head(h)


def trained_sdf(seed=0, steps=400):
    """A residual 3-16-[16]x3-1 net fitted to the signed distance of the sphere of radius 1/2 (Adam, seeded)."""
    torch.manual_seed(seed)
    model = Residual(width=16, n_blocks=3).double()
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    x = torch.rand(4096, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(seed)) * 2 - 1
    target = x.norm(dim=1, keepdim=True) - 0.5
    for _ in range(steps):
        optimiser.zero_grad()
        loss = ((model(x) - target) ** 2).mean()
        loss.backward()
        optimiser.step()
    return model


def run(net, volume, levels, path):
    if path == "auto":
        return netatlas.regions.partition(net, volume, levels=levels)
    from netatlas.regions._volume import checked_volume_inputs, volume_frame
    from netatlas.regions._volume_graph import graph_volume

    net, _, levels, _, _ = checked_volume_inputs(net, volume, levels, 0, 1e-10, None, None, None)
    return graph_volume(net, volume, levels, 0, 1e-10, None, volume_frame(volume), lambda *a: None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--path", choices=("auto", "graph"), default="auto")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    cube = netatlas.Volume.cube(1.0)
    cases = []
    for name, options in [("3-32-[32]x2-1 relu blocks", {}), ("3-24-[24,24]x2-1 two-layer blocks", {
            "width": 24, "two_layer": True}), ("3-24-[24]x3-1 with a projection", {"width": 24, "n_blocks": 3,
                                                                                "project": True})]:
        torch.manual_seed(0)
        cases.append((name, as_net(Residual(**options).double(), input_shape=(3,)), cube, ()))
    cases.append(("trained SDF 3-16-[16]x3-1, levels=(0,)", as_net(trained_sdf(), input_shape=(3,)), cube, (0.0,)))
    for name, net, volume, levels in cases:
        run(net, volume, levels, args.path)  # warm-up: numba's kernels compiled or loaded
        best = np.inf
        for _ in range(args.repeats):
            cpu = time.process_time()
            cx = run(net, volume, levels, args.path)
            best = min(best, time.process_time() - cpu)
        print(f"{args.path:5s} {name}: {cx.num_cells:,} cells, {len(cx.vertices):,} vertices, Euler "
              f"{cx.euler_characteristic()}, volume sum {cx.volumes.sum():.12g}; {best:.3f} CPU-s", flush=True)


if __name__ == "__main__":
    main()
