"""Zavatone-Veth, Yang, Rubinfien & Pehlevan (2023), "Neural networks learn to magnify areas near
decision boundaries": the closed forms, check values, curvature convention, Monte-Carlo agreement and
the trained-magnification observations of docs/papers/zavatoneveth2023.md, measured with :mod:`netatlas.metric`.

Claims Z1-Z10, in docs/papers/zavatoneveth2023.md's order:

====  ==========================================================================================
Z1    curvature convention: R = 2K, +2 on the unit sphere (the authors' code returns 3x this)
Z2    infinite width, isotropic weights: g = A(r) I + B(r) x x^T (spherical symmetry), erf closed form
Z3    check values of sqrt(det g), s = z = 1: 0.36755, 0.27705, 0.10024 at r = 0, 0.7, 2; 0.08190 (d = 5)
Z4    check values of R: -0.2799, -0.9366, -2.5259, -5.6643 at r = 0.5, 1, 2, 4
Z5    ReLU: g = (s^2/2) I, flat
Z6    Monte Carlo: wide random networks approach the closed forms (metric, volume, curvature)
Z7    sinusoid boundary, width-250 sigmoid: training magnifies areas near the decision boundary
Z8    XOR, width-250 sigmoid: the same
Z9    narrow / deep variants (widths 5, 20; 3 x 8): the same observation
Z10   MNIST: effective volume highest where the predicted class changes (line / plane through digits)
====  ==========================================================================================
"""

from __future__ import annotations

import math

import numpy as np

from netatlas.experiments._claims import Claim, Reproduction, all_true, describe

__all__ = ["PAPER", "TITLE", "configs", "run_part", "build"]

PAPER = "zavatoneveth2023"
TITLE = ("Zavatone-Veth, Yang, Rubinfien & Pehlevan (2023): neural networks learn to magnify areas near "
         "decision boundaries")
QUICK_TOY = ("sinusoid-250", "xor4-250", "sinusoid-5")
FULL_TOY = ("sinusoid-250", "sinusoid-20", "sinusoid-5", "sinusoid-3x8", "xor4-250", "xor400-250")
VOLUME_CHECK = {(2, 0.0): 0.36755, (2, 0.7): 0.27705, (2, 2.0): 0.10024, (5, 0.0): 0.08190}
CURVATURE_CHECK = {0.5: -0.2799, 1.0: -0.9366, 2.0: -2.5259, 4.0: -5.6643}

#: bumped whenever a part's measurement changes, so that resumed sweeps never mix old and new records
VERSION = 2


def configs(seeds, quick: bool) -> list[dict]:
    """The sweep configs of one run: one per part and seed (``quick``: the reduced settings)."""
    from netatlas.sweep import grid

    seeds = [int(s) for s in seeds]
    out = grid(paper=PAPER, part="closed", seed=seeds, quick=bool(quick), version=VERSION)
    out += grid(paper=PAPER, part="toy", config=list(QUICK_TOY if quick else FULL_TOY), seed=seeds,
                quick=bool(quick), version=VERSION)
    if not quick:
        out += grid(paper=PAPER, part="images", seed=seeds[:2], quick=False)
    return out


def run_part(config: dict) -> dict:
    """One sweep config ``{"part", "seed", "quick"}`` -> JSON-able measurements."""
    from netatlas._threads import torch_threads

    with torch_threads(1):
        if config["part"] == "closed":
            return _closed(int(config["seed"]), bool(config["quick"]))
        if config["part"] == "toy":
            return _toy(config["config"], int(config["seed"]), bool(config["quick"]))
        return _images(int(config["seed"]))


def _sphere(uv):
    # the unit sphere in coordinates (theta, phi): a surface of known curvature K = 1, R = 2
    import torch

    theta, phi = uv[:, 0], uv[:, 1]
    return torch.stack([torch.sin(theta) * torch.cos(phi), torch.sin(theta) * torch.sin(phi), torch.cos(theta)], 1)


def _closed(seed, quick):
    import torch

    from netatlas.metric import infinite_width as iw
    from netatlas.metric import metric, scalar_curvature, volume_element

    out = {}
    rng = np.random.default_rng(seed)
    uv = torch.from_numpy(np.stack([rng.uniform(0.4, 2.7, 16), rng.uniform(-3, 3, 16)], 1))
    out["sphere_R"] = scalar_curvature(_sphere, uv).tolist()
    out["volume_check"] = {f"{d},{r}": float(iw.limit_volume_element(torch.tensor([[r] + [0.0] * (d - 1)]))[0])
                           for d, r in VOLUME_CHECK}
    out["curvature_check"] = {f"{r}": float(iw.limit_scalar_curvature(torch.tensor([[0.0, r]]))[0])
                              for r in CURVATURE_CHECK}
    # symmetry: g(Qx) = Q g(x) Q^T for a rotation Q, and g = A I + B x x^T
    angle = rng.uniform(0, 2 * np.pi)
    q = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    x = rng.uniform(-2, 2, (32, 2))
    for act in ("erf", "tanh"):
        g, gq = iw.limit_metric(x, act), iw.limit_metric(x @ q.T, act)
        out[f"rotation_error_{act}"] = float(np.abs(gq - q @ g @ q.T).max() / np.abs(g).max())
    # Monte Carlo: random networks of two widths (16x apart) per seed against the closed forms along a ray;
    # the error of a width-n average is O(1/sqrt n), so it should shrink ~4x
    widths = (2_000, 32_000) if quick else (20_000, 320_000)
    r = np.linspace(0.0, 3.0, 13)
    direction = rng.standard_normal(2)
    direction /= np.linalg.norm(direction)
    ray = torch.from_numpy(r[:, None] * direction[None, :])
    g_cf, vol_cf = iw.limit_metric(ray, "erf"), iw.limit_volume_element(ray, "erf")
    curv_ray = ray[1:]
    r_cf = iw.limit_scalar_curvature(curv_ray, "erf")
    out["mc_widths"] = list(widths)
    out["mc"] = []
    for width in widths:
        phi = iw.random_features(2, width, "erf", seed=seed)
        g_mc = metric(phi, ray)
        vol_mc = volume_element(phi, ray, log=False)
        r_mc = scalar_curvature(phi, curv_ray)
        out["mc"].append({"width": width, "metric_rel_error": float(np.abs(g_mc - g_cf).max() / np.abs(g_cf).max()),
                          "volume_rel_error": float((np.abs(vol_mc - vol_cf) / vol_cf).max()),
                          "curvature_rel_error": float(np.abs(r_mc - r_cf).max() / np.abs(r_cf).max())})
    width = widths[-1]
    out["mc_width"] = width
    relu = iw.random_features(2, width, "relu", seed=seed)
    g_relu = metric(relu, ray[1:])
    out["relu_metric_error"] = float(np.abs(g_relu - 0.5 * np.eye(2)).max())
    out["relu_closed_curvature"] = float(np.abs(iw.limit_scalar_curvature(ray[1:], "relu")).max())
    out["curve"] = {"r": r.tolist(), "volume": vol_cf.tolist(), "volume_mc": vol_mc.tolist(),
                    "curvature": [float("nan")] + r_cf.tolist(), "curvature_mc": [float("nan")] + r_mc.tolist()}
    return out


def _toy(config, seed, quick):
    from netatlas.experiments.zavatoneveth2023._magnification import toy_magnification

    n_grid = 40 if quick else 100
    result = toy_magnification([config], [seed], n_grid=n_grid, n_fine=200 if quick else 400,
                               epochs_scale=0.5 if quick else 1.0)
    run = result.runs[0]
    step = max(1, n_grid // 40)
    half = float(np.abs(run.us).max() + (run.us[0, 1] - run.us[0, 0]) / 2)
    return {**run.to_dict(), "grid": {
        "extent": [-half, half, -half, half], "log_volume_before": run.log_volume_before[::step, ::step].tolist(),
        "log_volume_after": run.log_volume_after[::step, ::step].tolist(),
        "decision_after": run.decision_after[::step, ::step].tolist()},
        "settings": {"n_grid": n_grid, "epochs_scale": 0.5 if quick else 1.0}}


def _images(seed):
    from netatlas.experiments.zavatoneveth2023._magnification import image_magnification

    result = image_magnification(seed=seed, models=("mlp",))
    return result.to_dict()


# -- claims --------------------------------------------------------------------------------------------
def _magnified(runs, ratio_min=1.0):
    """Per run: trained ratio near/far > 1, Spearman(log volume, distance) < 0, and more than at init."""
    return [r["after"]["ratio"] > ratio_min and r["after"]["spearman"] < 0
            and r["after"]["ratio"] > r["before"]["ratio"] for r in runs]


def _toy_claim(id, statement, runs, configs_):
    if not runs:
        return Claim(id, statement, "", "not measured: the toy configs failed or were not run", None)
    ok = _magnified(runs)
    after = [r["after"]["ratio"] for r in runs]
    before = [r["before"]["ratio"] for r in runs]
    rho = [r["after"]["spearman"] for r in runs]
    acc = [r["train_accuracy"] for r in runs]
    per = "; ".join(f"{c}: {sum(_magnified([r for r in runs if r['config'] == c]))}/"
                    f"{sum(r['config'] == c for r in runs)} runs" for c in configs_)
    return Claim(id, statement, "in every run (config x seed): mean volume element within 5% of the domain "
                 "side of the trained boundary / beyond > 1, larger than at init, and Spearman(log volume, "
                 "distance) < 0",
                 f"near/far ratio trained {describe(after, digits=3)} vs init {describe(before, digits=3)}; "
                 f"Spearman {describe(rho, digits=3)}; train acc. {describe(acc, digits=3)}; magnified in {per}",
                 all_true(ok), tuple(after), "metric.toy_magnification (volume_element, grid_boundary_distance, "
                 "magnification_stats)", "Runs that fail the criterion count against the claim.")


def build(records, settings) -> Reproduction:
    """Turn the sweep records into the Z1-Z10 claim table."""
    done = [r for r in records if r.get("status") == "done"]
    closed = [r["result"] for r in done if r["config"]["part"] == "closed"]
    toy = [r["result"] for r in done if r["config"]["part"] == "toy"]
    images = [r["result"] for r in done if r["config"]["part"] == "images"]
    claims = []
    if closed:
        sphere = [v for c in closed for v in c["sphere_R"]]
        dev = [abs(v - 2) for v in sphere]
        claims.append(Claim("Z1", "Curvature convention: scalar curvature R = 2K, so the unit sphere has R = +2 "
                            "(the authors' public code returns 3x this value, +6)", "R = 2 on the unit sphere "
                            "(|R - 2| < 1e-8 at 16 random points per seed)",
                            f"R on the unit sphere {describe(sphere, digits=8)}", all_true([d < 1e-8 for d in dev]),
                            tuple(sphere), "metric.scalar_curvature on the embedding (theta, phi) -> S^2",
                            "netatlas follows R = 2K; a value 3x larger would come from the authors' convention. "
                            "The authors' code itself is not run here (not measured: their 3x)."))
        rot = [max(c["rotation_error_erf"], c["rotation_error_tanh"]) for c in closed]
        claims.append(Claim("Z2", "Isotropic random weights at infinite width give g = A(r) I + B(r) x x^T "
                            "(spherical symmetry); for erf, g = (2 s^2/pi) q^{-1/2} I - (4 s^4/pi) q^{-3/2} x x^T",
                            "g(Qx) = Q g(x) Q^T to 1e-12 for a random rotation Q (erf closed form; tanh by "
                            "quadrature); agreement with random networks is Z6",
                            f"rotation error {describe(rot, digits=3)}", all_true([v < 1e-12 for v in rot]), tuple(rot),
                            "metric.infinite_width.limit_metric"))
        vol = {k: [c["volume_check"][f"{k[0]},{k[1]}"] for c in closed] for k in VOLUME_CHECK}
        ok = all(abs(v - VOLUME_CHECK[k]) < 5e-6 for k, vs in vol.items() for v in vs)
        claims.append(Claim("Z3", "Check values, erf, s = z = 1: sqrt(det g) = 0.36755, 0.27705, 0.10024 at "
                            "r = 0, 0.7, 2 (d = 2); 0.08190 at r = 0 (d = 5)", "equal to 5 decimals",
                            "; ".join(f"d={k[0]}, r={k[1]}: {vs[0]:.5f}" for k, vs in vol.items()), ok,
                            tuple(v[0] for v in vol.values()), "metric.infinite_width.limit_volume_element",
                            "Deterministic (no seed dependence)."))
        cur = {r: [c["curvature_check"][f"{r}"] for c in closed] for r in CURVATURE_CHECK}
        ok = all(abs(v - CURVATURE_CHECK[r]) < 5e-5 for r, vs in cur.items() for v in vs)
        claims.append(Claim("Z4", "Check values of R (erf, s = z = 1, d = 2): -0.2799, -0.9366, -2.5259, -5.6643 "
                            "at r = 0.5, 1, 2, 4 (closed form R = -2 pi s^2 r^2 / ((1 + 2 z^2) sqrt q))",
                            "equal to 4 decimals", "; ".join(f"r={r}: {vs[0]:.4f}" for r, vs in cur.items()), ok,
                            tuple(v[0] for v in cur.values()), "metric.infinite_width.limit_scalar_curvature (Brioschi "
                            "on the closed-form metric, autodiff)"))
        relu = [c["relu_metric_error"] for c in closed]
        claims.append(Claim("Z5", "ReLU: g = (s^2/2) I — flat (curvature needs C^3 activations)",
                            "closed-form R = 0; a wide random ReLU net's metric within 5 / sqrt(width) of I/2",
                            f"|g - I/2| {describe(relu, digits=3)}; closed-form |R| "
                            f"{max(c['relu_closed_curvature'] for c in closed):g}",
                            all_true([v < 5 / math.sqrt(closed[0]["mc_width"]) for v in relu])
                            and all(c["relu_closed_curvature"] == 0 for c in closed), tuple(relu),
                            "metric.infinite_width.random_features('relu'), metric.metric, "
                            "infinite_width.limit_scalar_curvature"))
        small = [c["mc"][0] for c in closed]
        large = [c["mc"][-1] for c in closed]
        keys = ("metric_rel_error", "volume_rel_error", "curvature_rel_error")
        shrink = [s_[k] / l_[k] for s_, l_ in zip(small, large, strict=True) for k in keys]
        worst = [max(l_[k] for k in keys) for l_ in large]
        w0, w1 = closed[0]["mc_widths"]
        claims.append(Claim("Z6", "Monte-Carlo check: finite random erf networks approach the infinite-width "
                            "metric, volume element and curvature (error O(1/sqrt(width)))",
                            f"errors shrink from width {w0} to {w1} (16x) by a factor 2-8 on average (4 expected) "
                            f"and the largest relative error at width {w1} is < 0.05",
                            f"shrink factor {describe(shrink, digits=3)}; largest rel. error at width {w1} "
                            f"{describe(worst, digits=3)} (metric, volume, curvature along a ray r in [0, 3])",
                            2 < float(np.mean(shrink)) < 8 and all(v < 0.05 for v in worst), tuple(worst),
                            "metric.metric, volume_element, scalar_curvature on infinite_width.random_features",
                            "Quick runs use widths 2,000 and 32,000 (full: 20,000 and 320,000), where single seeds "
                            "can exceed the 0.05 bound by Monte-Carlo noise; that is then reported as not holding. "
                            "A first criterion (max entry error < 5/sqrt(width) at one width) was too tight for a "
                            "maximum over 52 entries and was replaced by this convergence check; per-width errors "
                            "are in the sweep records."))
    else:
        for id in ("Z1", "Z2", "Z3", "Z4", "Z5", "Z6"):
            claims.append(Claim(id, "closed forms (see docs/papers/zavatoneveth2023.md)", "",
                                "not measured: the 'closed' configs failed", None))
    claims.append(_toy_claim("Z7", "Sinusoidal boundary y > 0.6 sin(7x - 1), 400 points, one hidden sigmoid layer "
                             "of width 250: training magnifies areas near the decision boundary",
                             [r for r in toy if r["config"] == "sinusoid-250"], ["sinusoid-250"]))
    claims.append(_toy_claim("Z8", "XOR (4 points, or 400 noisy points), width-250 sigmoid, cross-entropy: "
                             "magnification along the decision boundary",
                             [r for r in toy if r["task"] in ("xor4", "xor")],
                             sorted({r["config"] for r in toy if r["task"] in ("xor4", "xor")})))
    small = sorted({r["config"] for r in toy if r["config"] in ("sinusoid-5", "sinusoid-20", "sinusoid-3x8")})
    claims.append(_toy_claim("Z9", "The same magnification with narrow (widths 5-20) and deep (3 x 8) sigmoid "
                             "networks on the sinusoid task", [r for r in toy if r["config"] in small], small))
    z10 = ("MNIST: a width-2000 sigmoid MLP's effective volume on a line / plane through test digits is largest "
           "where the predicted class changes and correlates with the predictive entropy")
    if images:
        stats = [run["stats"] for r in images for run in r["runs"]]
        near = [s["plane_mean_at_class_change"] - s["plane_mean_elsewhere"] for s in stats]
        rho = [s["spearman_plane_entropy"] for s in stats]
        claims.append(Claim("Z10", z10, "effective volume at class changes > elsewhere, and Spearman(effective "
                            "volume, entropy) > 0 on the plane, every seed",
                            f"mean difference (log10 units) {describe(near, digits=3)}; Spearman "
                            f"{describe(rho, digits=3)}",
                            all_true([n > 0 for n in near]) and all(v > 0 for v in rho), tuple(near),
                            "metric.image_magnification (effective_volume on Plane.through)",
                            "On the MNIST sample netatlas ships (5,000 images), not full MNIST."))
    else:
        why = "run without --quick" if settings.get("quick") else "the 'images' configs failed"
        claims.append(Claim("Z10", z10, "effective volume at class changes > elsewhere", f"not measured: {why}",
                            None, note="The image experiment takes minutes; it runs only in the full version."))
    extras = {}
    if toy:
        extras["toy_runs"] = [{"config": r["config"], "seed": r["seed"], "train acc.": r["train_accuracy"],
                               "ratio init": r["before"]["ratio"], "ratio trained": r["after"]["ratio"],
                               "Spearman init": r["before"]["spearman"], "Spearman trained": r["after"]["spearman"]}
                              for r in toy]
    added = ("A correct curvature convention (R = +2 on the unit sphere) with a test; the authors' code returns 3x.",
             "Closed-form infinite-width metric, volume element and curvature for any activation (quadrature), "
             "checked against wide random networks.",
             "Quantitative magnification statistics (near/far volume ratio, rank correlation with the distance to "
             "the boundary) instead of pictures alone, over several seeds.")
    return Reproduction(PAPER, TITLE, tuple(claims), settings, records, extras, added)
