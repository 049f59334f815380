"""Exact 2-D partitions: netatlas vs regioncam, side by side in one process, same weights and domain.

    python benchmarks/regions.py                # 2-256-256-256-10 and 2-512-512-512-10
    python benchmarks/regions.py --quick        # small sizes only
    python benchmarks/regions.py --json out.json --repeat 3
    python benchmarks/regions.py --conv         # LeNet-style AvgPool CNN, 12x12 and 16x16 inputs
    python benchmarks/regions.py --maxpool      # LeNet-5 with max pooling (netatlas alone)
    python benchmarks/regions.py --peer         # regioncam's own test/example shapes (small, residual, global max)

The ``--conv`` case is a LeNet-style CNN (conv3x3-ReLU-avgpool2, twice, fc 32, fc 10; seeded) on a plane
through three seeded random images in [0, 1]; regioncam gets the same function unrolled to dense
float32 layers on the plane's coordinates (its first layer is the unrolled conv composed with the plane).

Each network is an MLP with PyTorch's default init (``netatlas.nets.mlp(..., init="torch")``, a
fixed seed) on [-1, 1]^2 with 10 outputs. regioncam gets the same float32 weights through its own
API (``Regioncam(size).add(regioncam.nn.convert(model))``); it computes in float32, netatlas in
float64, so counts may differ by a handful of near-degenerate regions: the table shows both and
their relative difference. Where they differ, a note under the row counts the netatlas regions narrower
than float32 resolution (2**-23 x the window's diagonal), which regioncam cannot separate: on
``--peer``'s ``res 2-64-[64]x3-10`` (seed 0) netatlas finds 8,306 regions and regioncam 8,305, the one
missing a triangle of area 3.5e-16 (sides ~3e-8) where three units' zero lines nearly meet; at each of
its corners the third unit is ~1e-8 with magnitude ~1, below float32 round-off, and regioncam collapses
it into one vertex. Exact rational arithmetic shows the region is real and netatlas' vertices are within
1e-16 of the exact ones (``tests/regions/test_regions_residual_exact.py``). On 2-512-512-512-10 (seed 0)
netatlas finds 358,790 regions and regioncam 358,789; the 55 netatlas regions narrower than float32
resolution (areas 3e-17 to 9e-13) all exist in exact arithmetic too (each pattern's half-planes clipped
with dyadic integers); counting faces within 1e-4 of each, regioncam lacks one, a triangle of area 1.6e-14
at (0.0864, -0.3560).

Wall time and CPU time (process time: the machine is shared) are both reported; regions/s and the ratio
use wall time, the CPU ratio is given beside it.

Both run on one thread (``OMP_NUM_THREADS=1`` unless you set it): regioncam is single-threaded, and
idle BLAS threads spinning after a call would count as netatlas CPU time.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before NumPy/torch load their thread pools

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import re  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402


def _time(fn, repeat, budget=None):
    """Best wall time of ``repeat`` runs (stopping early once ``budget`` seconds are spent)."""
    best, spent = None, 0.0
    for _ in range(repeat):
        if budget is not None and spent > budget:
            break
        t0, c0 = time.perf_counter(), time.process_time()
        result = fn()
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        spent += wall
        if best is None or wall < best[1]:
            best = (result, wall, cpu)
    return best


def _warm_up(netatlas):
    """Load the compiled kernels (numba caches them on disk) of both MLP paths before anything is timed: a
    small net runs in one compiled call (``_smallchain``), a wider one level by level (``_chain``), so a
    2-8-8-3 alone left the first wide case's first run loading kernels (~0.8 s)."""
    netatlas.regions.partition(netatlas.nets.mlp([2, 8, 8, 3], seed=0))
    netatlas.regions.partition(netatlas.nets.mlp([2, 128, 128, 10], seed=0))


def run(sizes, repeat=3, seed=0):
    import netatlas

    _warm_up(netatlas)
    rows = []
    for widths in sizes:
        model = netatlas.nets.mlp([2, *widths, 10], init="torch", seed=seed)
        net = netatlas.nets.from_torch(model)
        plane = netatlas.Plane.square(1.0)
        timed = _time(lambda net=net, plane=plane: netatlas.regions.partition(net, plane), repeat)
        row = _compared("2-" + "-".join(map(str, widths)) + "-10", timed, _time_regioncam(model, repeat), plane)
        rows.append(row)
        _print_row(row)
    return rows


def _time_regioncam(model, repeat):
    """(faces, wall, cpu) of regioncam on ``model`` over [-1, 1]^2: best of the same number of runs as
    netatlas, except that a run past 20 s is not repeated."""
    import regioncam
    import torch

    def rc_run():
        cam = regioncam.Regioncam(1.0)
        with torch.no_grad():
            cam.add(regioncam.nn.convert(model))
        return cam.num_faces

    return _time(rc_run, repeat, budget=20.0)


def _compared(name, timed_netatlas, timed_regioncam, plane):
    """One table row: counts, seconds, regions/s and their ratios (wall and CPU)."""
    (part, t_na, c_na), (n_rc, t_rc, c_rc) = timed_netatlas, timed_regioncam
    n_na = part.num_regions
    narrow = _narrower_than_float32(part) if n_na != n_rc else []
    return {"widths": name, "regions_under_float32": len(narrow),
            "areas_under_float32": [float(part.areas[i]) for i in narrow],
            "regions_netatlas": n_na, "regions_regioncam": int(n_rc),
            "count_rel_diff": abs(n_na - n_rc) / max(n_rc, 1), "seconds_netatlas": t_na, "seconds_regioncam": t_rc,
            "cpu_seconds_netatlas": c_na, "cpu_seconds_regioncam": c_rc, "regions_per_s_netatlas": n_na / t_na,
            "regions_per_s_regioncam": n_rc / t_rc, "method": part.method,
            "area_error": abs(float(part.areas.sum()) - plane.area) / plane.area,
            "ratio": (n_na / t_na) / (n_rc / t_rc), "cpu_ratio": (n_na / c_na) / (n_rc / c_rc)}


def lenet_avgpool(size, seed=0):
    """The --conv network for (1, size, size) inputs, in eval mode."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    s = ((size - 2) // 2 - 2) // 2
    return nn.Sequential(nn.Conv2d(1, 6, 3), nn.ReLU(), nn.AvgPool2d(2), nn.Conv2d(6, 12, 3), nn.ReLU(),
                         nn.AvgPool2d(2), nn.Flatten(), nn.Linear(12 * s * s, 32), nn.ReLU(),
                         nn.Linear(32, 10)).eval()


def run_conv(image_sizes, repeat=3, seed=0):
    import torch
    from torch import nn

    import netatlas
    from netatlas.regions._chain import unrolled_layers as _unrolled_layers

    netatlas.regions.partition(netatlas.nets.mlp([2, 8, 8, 3], seed=0))
    rows = []
    for size in image_sizes:
        net = netatlas.nets.from_torch(lenet_avgpool(size, seed), (1, size, size))
        g = np.random.default_rng(seed)
        plane = netatlas.Plane.through(*[g.random((1, size, size)) for _ in range(3)])
        umin, umax, vmin, vmax = plane.bounds
        part, t_na, c_na = _time(lambda net=net, plane=plane: netatlas.regions.partition(net, plane), repeat)
        # the same function on [-1, 1]^2 as dense layers: x = x_c + (cu + hu s) d1 + (cv + hv t) d2
        layers = _unrolled_layers(net)
        cu, cv, hu, hv = (umin + umax) / 2, (vmin + vmax) / 2, (umax - umin) / 2, (vmax - vmin) / 2
        d1, d2 = plane.d1.ravel(), plane.d2.ravel()
        x_c = plane.origin.ravel() + cu * d1 + cv * d2
        W0, b0, _ = layers[0]
        first = (np.stack([W0 @ d1 * hu, W0 @ d2 * hv], 1), W0 @ x_c + b0)
        mods = []
        for k, (W, b) in enumerate([first] + [(W, b) for W, b, _ in layers[1:]]):
            lin = nn.Linear(W.shape[1], W.shape[0])
            with torch.no_grad():
                lin.weight.copy_(torch.as_tensor(W, dtype=torch.float32))
                lin.bias.copy_(torch.as_tensor(b, dtype=torch.float32))
            mods += [lin] + ([nn.ReLU()] if k < len(layers) - 1 else [])
        row = _compared(f"cnn {size}x{size}", (part, t_na, c_na), _time_regioncam(nn.Sequential(*mods), repeat),
                        plane)
        _print_row(row)
        rows.append(row)
    return rows


def run_maxpool(half_widths, repeat=3, seed=0):
    """LeNet-5 with max pooling (``netatlas.nets.zoo.lenet5``, untrained, seeded) on windows of the
    plane through three seeded random 28x28 images: netatlas alone (regioncam has one global max
    pool, not max pooling over windows), regions/s of the graph path."""
    import netatlas
    from netatlas.nets import zoo

    net = netatlas.nets.from_torch(zoo.lenet5(seed=seed), (1, 28, 28))
    g = np.random.default_rng(seed)
    through = netatlas.Plane.through(*[g.random((1, 28, 28)) for _ in range(3)])
    umin, umax, vmin, vmax = through.bounds
    cu, cv = (umin + umax) / 2, (vmin + vmax) / 2
    rows = []
    for h in half_widths:
        plane = netatlas.Plane(through.origin, through.d1, through.d2, (cu - h, cu + h, cv - h, cv + h))
        part, t, c = _time(lambda plane=plane: netatlas.regions.partition(net, plane, memory_budget=None), repeat,
                           budget=60.0)
        row = {"widths": f"lenet5 +-{h:g}", "regions_netatlas": part.num_regions, "seconds_netatlas": t,
               "cpu_seconds_netatlas": c, "regions_per_s_netatlas": part.num_regions / t, "method": part.method,
               "area_error": abs(float(part.areas.sum()) - plane.area) / plane.area}
        print(f"{row['widths']:<20} {row['regions_netatlas']:>12,} {'-':>12} {1e3 * t:>9.4g} {'-':>9} "
              f"{row['regions_per_s_netatlas']:>11,.0f} {'-':>11} {'-':>6} {'-':>9}", flush=True)
        rows.append(row)
    return rows


#: The --peer cases: shapes after regioncam's own tests and examples (``random_nn``: 2-100 relu;
#: ``max_pool``/``argmax_pool``, 2-10-10 and 2-25-10 there: a global max over the last layer; residual
#: blocks ``x + relu(Linear(x))`` through its ``nn.Residual``, which no regioncam test uses) and the wide
#: MLPs of the default table. The weights are torch draws (``torch.manual_seed(seed)``) from the
#: distribution of regioncam's ``Linear::new_uniform``, not its Rust ``SmallRng`` draws, so the counts are
#: those of other nets of the same shapes (over seeds 0-7, res 2-32-[32]x3-3 has 1,534-2,837 regions on
#: [-1, 1]^2, 642-1,073 on [-0.5, 0.5]^2).
PEER_CASES = ("2-8-3", "2-100-relu", "res 2-32-[32]x3-3", "res 2-64-[64]x3-10", "2-64-relu-64-max",
              "2-32-32-16-max", "2-256-relu-256-max", "2-256-256-256-10", "2-512-512-512-10")


def peer_model(name, seed=0):
    """(torch module for netatlas, regioncam layers of the same float32 function, global max at the end)
    for one --peer case, with PyTorch's default init: weights and biases uniform in +-1/sqrt(fan_in), the
    distribution of regioncam's ``Linear::new_uniform`` that its tests use; seeded. A dash between two
    widths is a ReLU, except before the output layer."""
    import regioncam
    import torch
    from torch import nn

    rc = regioncam.nn
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        residual = re.fullmatch(r"res 2-(\d+)-\[\d+\]x(\d+)-(\d+)", name)
        if residual:  # Linear, ReLU, k blocks x + relu(Linear(x)), Linear
            width, n_blocks, n_out = (int(s) for s in residual.groups())
            model = _residual_mlp(width, n_blocks, n_out)
            layers = [rc.convert(model.first), rc.ReLU(),
                      *[rc.Residual(rc.Sequential(rc.convert(lin), rc.ReLU())) for lin in model.blocks],
                      rc.convert(model.head)]
            return model.eval(), layers, False
        pooled = name.endswith("-max")
        parts = name.removesuffix("-max").split("-")
        mods, sizes = [], [int(parts[0])]
        for part in parts[1:]:
            if part == "relu":
                mods.append(nn.ReLU())
                continue
            if len(sizes) > 1 and not isinstance(mods[-1], nn.ReLU):
                mods.append(nn.ReLU())
            sizes.append(int(part))
            mods.append(nn.Linear(sizes[-2], sizes[-1]))
    layers = [rc.convert(m) for m in mods]
    if pooled:
        mods += [nn.Unflatten(1, (1, sizes[-1])), nn.AdaptiveMaxPool1d(1), nn.Flatten()]
    return nn.Sequential(*mods).eval(), layers, pooled


def _residual_mlp(width, n_blocks, n_out):
    from torch import nn

    class ResidualMLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.first = nn.Linear(2, width)
            self.blocks = nn.ModuleList(nn.Linear(width, width) for _ in range(n_blocks))
            self.head = nn.Linear(width, n_out)

        def forward(self, x):
            h = self.first(x).relu()
            for lin in self.blocks:
                h = h + lin(h).relu()
            return self.head(h)

    return ResidualMLP()


def run_peer(names, repeat=3, seed=0):
    """Each --peer case side by side: netatlas (the net imported once, as a user would) and regioncam
    (its layers converted once) over [-1, 1]^2, best of ``repeat``."""
    import regioncam

    import netatlas

    _warm_up(netatlas)
    rows = []
    for name in names:
        model, layers, pooled = peer_model(name, seed)
        net = netatlas.nets.from_torch(model, (2,))
        plane = netatlas.Plane.square(1.0)

        def rc_run(layers=layers, pooled=pooled):
            cam = regioncam.Regioncam(1.0)
            for layer in layers:
                cam.add(layer)
            if pooled:
                cam.max_pool()
            return cam.num_faces

        timed = _time(lambda net=net, plane=plane: netatlas.regions.partition(net, plane), repeat)
        row = _compared(name, timed, _time(rc_run, repeat, budget=20.0), plane)
        rows.append(row)
        _print_row(row)
    return rows


def _print_header():
    print(f"{'network':<20} {'regions (na)':>12} {'regions (rc)':>12} {'ms (na)':>9} {'ms (rc)':>9} "
          f"{'reg/s (na)':>11} {'reg/s (rc)':>11} {'ratio':>6} {'cpu ratio':>9}")


def _narrower_than_float32(part):
    """Regions of ``part`` narrower (smallest width over edge directions) than float32 resolution,
    2**-23 x the window's diagonal: a tool computing in float32 cannot separate their bounding lines.
    Only regions of area < 2**-23 diagonal**2 can be that narrow (area <= width x diameter)."""
    limit = 2.0 ** -23 * part.diameter
    narrow = []
    for i in np.flatnonzero(part.areas < limit * part.diameter):
        poly = part.polygon(int(i))
        edges = np.roll(poly, -1, axis=0) - poly
        lengths = np.hypot(edges[:, 0], edges[:, 1])
        keep = lengths > 0
        # distance of every vertex from each edge's line; the width is the smallest of the largest
        cross = edges[keep, 0, None] * (poly[None, :, 1] - poly[keep, None, 1]) \
            - edges[keep, 1, None] * (poly[None, :, 0] - poly[keep, None, 0])
        if (np.abs(cross).max(axis=1) / lengths[keep]).min() < limit:
            narrow.append(int(i))
    return narrow


def _count_note(r):
    """A line explaining a count difference, or None when the counts are equal."""
    diff = r["regions_netatlas"] - r["regions_regioncam"]
    if diff == 0:
        return None
    k, areas = r["regions_under_float32"], r["areas_under_float32"]
    if diff == k == 1:
        return (f"  {r['widths']}: regioncam misses 1: a region narrower than float32 resolution (2**-23 x "
                f"diagonal; area {areas[0]:.2g}), see the module docstring")
    return (f"  {r['widths']}: counts differ by {diff:+,}; netatlas has {k:,} region(s) narrower than float32 "
            f"resolution (2**-23 x diagonal), where regioncam's float32 lines can merge; see the module docstring")


def _print_row(r):
    print(f"{r['widths']:<20} {r['regions_netatlas']:>12,} {r['regions_regioncam']:>12,} "
          f"{1e3 * r['seconds_netatlas']:>9.4g} {1e3 * r['seconds_regioncam']:>9.4g} "
          f"{r['regions_per_s_netatlas']:>11,.0f} "
          f"{r['regions_per_s_regioncam']:>11,.0f} {r['ratio']:>6.1f} {r['cpu_ratio']:>9.1f}", flush=True)
    note = _count_note(r) if "regions_under_float32" in r else None
    if note:
        print(note, flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes only (2-64-64-64, 2-128-128)")
    parser.add_argument("--sizes", nargs="*", default=None,
                        help="hidden widths as dash-separated lists, e.g. 256-256-256 512-512-512")
    parser.add_argument("--repeat", type=int, default=3,
                        help="best of N runs for each tool (regioncam: not repeated past 20 s)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None, help="write the table as JSON to this path")
    parser.add_argument("--conv", nargs="*", type=int, default=None,
                        help="the LeNet-style AvgPool CNN case on these image sizes (default 12 16)")
    parser.add_argument("--maxpool", nargs="*", type=float, default=None,
                        help="LeNet-5 with max pooling on windows of these half-widths (default 0.02 0.05); "
                             "netatlas only")
    parser.add_argument("--peer", nargs="*", default=None,
                        help="regioncam's test/example shapes (default: all of PEER_CASES), ms and counts")
    args = parser.parse_args(argv)
    if args.sizes:
        sizes = [[int(w) for w in s.split("-")] for s in args.sizes]
    elif args.quick:
        sizes = [[64, 64, 64], [128, 128]]
    else:
        sizes = [[256, 256, 256], [512, 512, 512]]
    _print_header()
    if args.maxpool is not None:
        rows = run_maxpool(args.maxpool or [0.02, 0.05], repeat=args.repeat, seed=args.seed)
        if args.json:
            with open(args.json, "w") as fh:
                json.dump({"rows": rows}, fh, indent=2)
        return 0
    if args.peer is not None:
        rows = run_peer(args.peer or PEER_CASES, repeat=args.repeat, seed=args.seed)
    elif args.conv is not None:
        rows = run_conv(args.conv or [12, 16], repeat=args.repeat, seed=args.seed)
    else:
        rows = run(sizes, repeat=args.repeat, seed=args.seed)
    if args.json:
        import regioncam

        meta = {"python": sys.version.split()[0], "platform": platform.platform(),
                "regioncam": getattr(regioncam, "__version__", "?"), "seed": args.seed,
                "command": " ".join(["python", "benchmarks/regions.py", *(argv or sys.argv[1:])])}
        with open(args.json, "w") as fh:
            json.dump({"meta": meta, "rows": rows}, fh, indent=2)
    # a difference within the regions below regioncam's float32 resolution is regioncam's (see the docstring)
    ok = all(0 <= r["regions_netatlas"] - r["regions_regioncam"] <= r["regions_under_float32"]
             or r["count_rel_diff"] < 1e-3 for r in rows)
    if not ok:
        print("warning: region counts differ by more than 0.1%", file=sys.stderr)
    return 0 if np.isfinite([r["ratio"] for r in rows]).all() else 1


if __name__ == "__main__":
    sys.exit(main())
