"""Benchmark: netatlas.metric vs the per-point ``torch.autograd.functional.jacobian`` loop of the
magnification paper's code, on the same points and networks, in float64.

1. Toy: width-250 sigmoid layer (features sigmoid(Wx + b)/sqrt(250)), log volume element on a 200 x 200
   grid over [-1, 1]^2. The loop is timed on a subset (``--loop-points``) and extrapolated to the grid;
   the values are compared on that subset.
2. Images (28 x 28 inputs, 64 test points): a width-2000 sigmoid MLP layer (m = 2000 > d = 784) and a
   small GELU CNN's 64-d penultimate features (m = 64 < d = 784): the effective volume
   sum log10 sigma_i(J / sqrt(m)). Compared with the loop (subset, extrapolated) and with one batched
   vmap of m VJPs (``vmap(jacrev(f))``, the Jacobian alone).

3. Saturated: a 784-30 sigmoid layer scaled so the median over images of max |a| is ~47 (as in a trained
   MNIST MLP): netatlas's log-space effective volume against the closed form
   sum_i log10 sigmoid'(a_i) + 0.5 log10 det(W W^T) - 15 log10(30), and the paper's loop (Gram route),
   which loses these values.

Run:  python benchmarks/metric.py [--quick] [--threads 2]
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import torch

import netatlas
from netatlas.experiments.zavatoneveth2023 import small_cnn
from netatlas.metric import effective_volume, volume_element


def _timed(fn, repeat=1):
    best, out = math.inf, None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def _float64_features(module, upto, scale):
    sub = torch.nn.Sequential(*list(module)[:upto])
    state = {k: v.detach().double() for k, v in sub.state_dict().items()}
    return lambda x: torch.func.functional_call(sub, state, (x,)).flatten(1) * scale


def _loop(fn, points, post):
    """The paper's way: one autograd.functional.jacobian call per point."""
    out = []
    for p in points:
        J = torch.autograd.functional.jacobian(lambda q: fn(q[None])[0], p)
        out.append(post(J.reshape(J.shape[0], -1)))
    return torch.stack(out)


def toy(n_grid, loop_points, rows):
    model = netatlas.nets.mlp([2, 250, 1], "sigmoid", seed=0)
    g = torch.linspace(-1, 1, n_grid, dtype=torch.float64)
    x = torch.stack(torch.meshgrid(g, g, indexing="xy"), -1).reshape(-1, 2)
    t_netatlas, vol = _timed(lambda: torch.from_numpy(volume_element((model, "1"), x)), repeat=3)
    fn = _float64_features(model, 2, 1 / math.sqrt(250))
    subset = x[torch.linspace(0, len(x) - 1, loop_points).long()]

    def log_volume(J):
        return 0.5 * torch.log(torch.linalg.eigvalsh(J.T @ J)).sum()

    t_loop, vol_loop = _timed(lambda: _loop(fn, subset, log_volume))
    t_loop_full = t_loop * len(x) / loop_points
    vol_sub = torch.from_numpy(volume_element((model, "1"), subset))
    t_vmap, vol_vmap = _timed(lambda: torch.from_numpy(volume_element(fn, x)))  # generic autodiff path: vmap(jacfwd)
    t_forward, _ = _timed(lambda: fn(x), repeat=3)
    diff = float((vol_sub - vol_loop).abs().max())
    diff_vmap = float((vol - vol_vmap).abs().max())
    rows.append(
        dict(
            case=f"toy 2-250 sigmoid, {n_grid}x{n_grid} grid, log volume element",
            netatlas_s=t_netatlas,
            loop_s=t_loop_full,
            loop_note=f"timed on {loop_points} points",
            speedup=t_loop_full / t_netatlas,
            max_abs_diff=diff,
        )
    )
    rows.append(
        dict(
            case="  same, generic vmap(jacfwd) path (plain callable)",
            netatlas_s=t_vmap,
            loop_s=t_loop_full,
            loop_note="",
            speedup=t_loop_full / t_vmap,
            max_abs_diff=diff_vmap,
        )
    )
    rows.append(
        dict(
            case="  forward pass of the layer alone",
            netatlas_s=t_forward,
            loop_s=float("nan"),
            loop_note="",
            speedup=float("nan"),
            max_abs_diff=float("nan"),
        )
    )
    assert diff < 1e-8 and diff_vmap < 1e-8, (diff, diff_vmap)


def images(n_points, loop_points, rows):
    data = netatlas.data.mnist_sample()
    x = data.x_test[:n_points].double()
    mlp = netatlas.nets.mlp([784, 2000, 10], "sigmoid", seed=0)
    mlp_flat = torch.nn.Sequential(torch.nn.Flatten(), *mlp)
    cnn = small_cnn(seed=0).eval()
    cases = [
        ("MLP 784-2000 sigmoid layer (m=2000 > d=784)", mlp_flat, "2", 3, 2000),
        ("CNN 64-d GELU penultimate (m=64 < d=784)", cnn, "6", 7, 64),
    ]
    for case in cases:
        _image_case(x, n_points, loop_points, rows, *case)


def _image_case(x, n_points, loop_points, rows, name, model, layer, upto, m):
    t_netatlas, ev = _timed(lambda: torch.from_numpy(effective_volume((model, layer), x)), repeat=2)
    fn = _float64_features(model, upto, 1 / math.sqrt(m))
    flat = x.reshape(len(x), -1)

    def one(p):
        return fn(p.reshape(1, 1, 28, 28))[0]

    t_vmap, J = _timed(lambda: torch.func.vmap(torch.func.jacrev(one))(flat))
    subset = x[:loop_points]

    def post(Jp):
        return torch.log10(torch.linalg.svdvals(Jp)).sum()

    t_loop, ev_loop = _timed(lambda: _loop(fn, subset, post))
    t_loop_full = t_loop * n_points / loop_points
    diff = float((ev[:loop_points] - ev_loop).abs().max())
    ev_vmap = torch.log10(torch.linalg.svdvals(J)).sum(-1)
    diff_vmap = float((ev - ev_vmap).abs().max())
    rows.append(
        dict(
            case=f"{name}, effective volume, {n_points} points",
            netatlas_s=t_netatlas,
            loop_s=t_loop_full,
            loop_note=f"timed on {loop_points} points",
            speedup=t_loop_full / t_netatlas,
            max_abs_diff=diff,
        )
    )
    rows.append(
        dict(
            case="  one batched vmap of m VJPs (Jacobian only)",
            netatlas_s=t_vmap,
            loop_s=float("nan"),
            loop_note=f"netatlas / vmap = {t_netatlas / t_vmap:.2f}",
            speedup=float("nan"),
            max_abs_diff=diff_vmap,
        )
    )
    assert diff < 1e-8 and diff_vmap < 1e-8, (diff, diff_vmap)


def saturated(n_points, loop_points, rows):
    data = netatlas.data.mnist_sample(flatten=True)
    x = data.x_test[:n_points].double()
    layer = torch.nn.Linear(784, 30).double()
    torch.nn.init.normal_(layer.weight, std=1 / 28, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        factor = 47 / float(layer(x).abs().amax(1).median())
        layer.weight.mul_(factor)
        layer.bias.mul_(factor)
    model = torch.nn.Sequential(layer, torch.nn.Sigmoid())
    t_netatlas, ev = _timed(lambda: torch.from_numpy(effective_volume((model, "1"), x)), repeat=2)
    a = layer(x).detach()
    log_d = -a.abs() - 2 * torch.log1p(torch.exp(-a.abs()))  # log sigmoid'(a), stable
    W = layer.weight.detach()
    closed = (log_d.sum(1) + 0.5 * torch.linalg.slogdet(W @ W.T)[1] - 15 * math.log(30)) / math.log(10)
    fn = _float64_features(model, 2, 1 / math.sqrt(30))
    t_loop, ev_loop = _timed(lambda: _loop(fn, x[:loop_points], lambda J: 0.5 * torch.logdet(J @ J.T) / math.log(10)))
    wrong = int((~torch.isfinite(ev_loop) | ((ev_loop - closed[:loop_points]).abs() > 1e-6)).sum())
    rows.append(
        dict(
            case=f"saturated 784-30 sigmoid (max|a| ~47), effective volume, {n_points} points",
            netatlas_s=t_netatlas,
            loop_s=t_loop * n_points / loop_points,
            loop_note=f"loop wrong (-inf or > 1e-6 decades off) at {wrong} of {loop_points}; diff = vs closed form",
            speedup=t_loop * n_points / loop_points / t_netatlas,
            max_abs_diff=float((ev - closed).abs().max()),
        )
    )
    assert torch.isfinite(ev).all() and float((ev - closed).abs().max()) < 1e-6


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small grid and subsets (a smoke test)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    if args.quick:
        toy(50, 50, rows)
        images(8, 2, rows)
        saturated(64, 8, rows)
    else:
        toy(200, 1000, rows)
        images(64, 4, rows)
        saturated(1000, 50, rows)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, float64")
    print(f"{'case':<72} {'netatlas s':>10} {'loop s':>10} {'speed-up':>9} {'max |diff|':>11}  note")
    for r in rows:
        print(
            f"{r['case']:<72} {r['netatlas_s']:>10.3f} {r['loop_s']:>10.2f} {r['speedup']:>9.1f} "
            f"{r['max_abs_diff']:>11.2e}  {r['loop_note']}"
        )
    return rows


if __name__ == "__main__":
    np.set_printoptions(precision=4)
    main()
