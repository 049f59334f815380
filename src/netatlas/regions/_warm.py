"""Compile (or load) every numba kernel of the regions lens once, so that later processes only load
them from numba's cache. ``scripts/setup.sh`` runs ``python -m netatlas.regions._warm`` after
installing; the cache lives in ``__pycache__`` beside ``_kernels.py`` (or in ``NUMBA_CACHE_DIR`` when
that is set or the package directory is read-only)."""

from __future__ import annotations

import time

__all__ = ["warm_kernels"]


def warm_kernels() -> float:
    """Run a tiny partition through every kernel (the small-net kernel and the chain path's: split, child maps;
    areas, locate, boundary, level set, lines, max pooling, a global max, conv layers, local complexity, the
    3-D cut, locate and level-set mesh, 3-D tiles); return the seconds it took.

    >>> warm_kernels() >= 0
    True
    """
    import numpy as np
    import torch

    from netatlas.nets import mlp
    from netatlas.regions import along_line, local_complexity, partition
    from netatlas.slices import Plane, Volume

    start = time.perf_counter()
    for activation in ("relu", "leaky_relu"):
        part = partition(mlp([2, 6, 6, 3], activation, seed=0))  # small nets: one compiled call (_smallchain)
        partition(mlp([2, 6, 6, 3], activation, seed=0), memory_budget=None)  # the chain path's own kernels
        part.areas, part.neighbors()
        part.locate(np.zeros((2, 2)))
        part.decision_boundary()
        part.level_set(0.0, output=0)
        along_line(mlp([2, 6, 1], activation, seed=0), np.zeros(2), np.ones(2))
        local_complexity(mlp([2, 6, 6, 2], activation, seed=0), np.zeros((2, 2)), 0.5)
        complex3d = partition(mlp([3, 6, 6, 1], activation, seed=0), Volume.cube(1.0), levels=(0.0,))
        complex3d.locate(np.zeros((2, 3))), complex3d.euler_characteristic()
        complex3d.level_set(0.0)
        partition(mlp([3, 6, 6, 1], activation, seed=0), Volume.cube(1.0), levels=(0.0,), tiles=2)  # _tiles3d
    nn = torch.nn
    with torch.random.fork_rng():  # the global RNG is left alone
        torch.manual_seed(0)
        # max pooling then a linear layer: arg-max kernels and the graph path's sparse updates
        max_cnn = nn.Sequential(nn.Conv2d(1, 2, 2), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(2, 2),
                                nn.ReLU(), nn.Linear(2, 2))
        # average pooling then a conv and a wide linear layer: the chain path's sparse columns and factors
        avg_cnn = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.AvgPool2d(2), nn.Conv2d(2, 2, 3), nn.ReLU(),
                                nn.AvgPool2d(2), nn.Flatten(), nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 2))
        # a max over a chain's outputs (a global max pool): the chain path's arg-max split on candidates
        # (``_chainmaxkernels``) with its ties test
        global_max = nn.Sequential(nn.Linear(2, 6), nn.ReLU(), nn.Linear(6, 4), nn.Unflatten(1, (1, 4)),
                                   nn.AdaptiveMaxPool1d(1), nn.Flatten())
        relu_last = nn.Sequential(nn.Linear(2, 6), nn.ReLU())  # an activation last: the gated output maps
    for budget in ("auto", None):  # wide relu layers (_chainkernels: on-units product, fused child maps), both paths
        partition(mlp([2, 40, 40, 2], seed=0), memory_budget=budget)
    partition(mlp([2, 40, 40, 40, 2], seed=0))  # a third one: the sibling next maps (NOTE [sibling next maps])
    partition(global_max)
    partition(relu_last)
    rng = np.random.default_rng(0)
    partition(max_cnn, Plane.through(*rng.normal(size=(3, 1, 3, 3)))).decision_boundary()
    partition(avg_cnn, Plane.through(*0.05 * rng.normal(size=(3, 1, 16, 16))))
    along_line(max_cnn, np.zeros((1, 3, 3)), rng.normal(size=(1, 3, 3)))  # the arg-max kernels along a line
    local_complexity(max_cnn, rng.normal(size=(2, 1, 3, 3)), 0.5)  # graph discs: estimate chords, pruned split
    # a max over outputs on a Volume: the 3-D graph path's tournament and merge (``_volume_graph``)
    global_max_3d = nn.Sequential(nn.Linear(3, 3), nn.Unflatten(1, (1, 3)), nn.AdaptiveMaxPool1d(1), nn.Flatten())
    partition(global_max_3d, Volume.cube(1.0))
    return time.perf_counter() - start


if __name__ == "__main__":
    print(f"netatlas: regions kernels ready ({warm_kernels():.1f} s)")
