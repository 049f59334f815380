"""Sahs et al. (2020/2022), "Shallow univariate ReLU networks as splines": the claims T1-T9 of
docs/papers/sahs2020.md, measured with :mod:`netatlas.splines` over several seeds.

Mapping of the claim ids to docs/papers/sahs2020.md (in the order it states them):

====  =====================================================================================
T1    spline coordinates: f = c + sum mu relu(s (x - beta)), the linear-part form, back to a network
T2    Gaussian init: beta ~ Cauchy(0, sb/sw)
T3    PyTorch default init: p(beta) = 1/4 on [-1, 1] (half the breakpoints there); zero-bias inits: beta = 0
T4    roughness at init: E sum mu^2 = 1/9 (PyTorch), 4H/(H+1)^2 (Glorot, b = 0), 4 (He, b = 0);
      E sum |mu| = sqrt(H)/4 (PyTorch)
T5    Hessian at an interpolating minimum (n = 12, H = 40): rank 12, 69 zero, 0 negative eigenvalues in
      spline coordinates, 109 zero in network coordinates; same inertia in both coordinates
T6    saddle: mu_i = 0 with R_i != 0 gives a (beta_i, mu_i) block with negative determinant
T7    gradient flow in spline terms: d beta/dt and d mu/dt formulas
T8    v_i^2 - w_i^2 - b_i^2 is conserved under gradient flow
T9    kernel limit: min-norm mu on fixed uniform breakpoints -> natural cubic spline as H grows; small
      init trained to ~zero loss -> close to the linear interpolant
====  =====================================================================================

Every number comes from a library call (the ``source`` of each claim); the only computations here
are reductions (max, mean), scipy's KS test, scipy's natural cubic spline and numpy's linear
interpolant used as the references the paper names.
"""

from __future__ import annotations

import logging
import math

import numpy as np

from netatlas.experiments._claims import Claim, Reproduction, all_true, describe, spread

__all__ = ["PAPER", "TITLE", "run_part", "configs", "build", "PARTS"]

log = logging.getLogger(__name__)

PAPER = "sahs2020"
TITLE = ("Sahs et al. (2020/2022): shallow univariate ReLU networks as splines — initialisation, "
         "loss surface, Hessian and gradient flow")
PARTS = ("coords", "init", "hessian", "saddle", "flow", "kernel")

#: KS tests "hold" when no seed's p-value is below this (several seeds: p-values are uniform under H0).
KS_ALPHA = 1e-3
#: |z| below which a Monte-Carlo mean agrees with its expectation.
Z_MAX = 4.0

#: bumped whenever a part's measurement changes, so that resumed sweeps never mix old and new records
VERSION = 2


def configs(seeds, quick: bool) -> list[dict]:
    """The sweep configs of one run: one per part and seed (``quick``: the reduced settings)."""
    from netatlas.sweep import grid

    return grid(paper=PAPER, part=list(PARTS), seed=[int(s) for s in seeds], quick=bool(quick), version=VERSION)


def run_part(config: dict) -> dict:
    """One sweep config ``{"part", "seed", "quick"}`` -> JSON-able measurements."""
    from netatlas._threads import torch_threads

    part, seed, quick = config["part"], int(config["seed"]), bool(config["quick"])
    with torch_threads(1):
        return {"coords": _coords, "init": _init, "hessian": _hessian, "saddle": _saddle, "flow": _flow,
                "kernel": _kernel}[part](seed, quick)


# -- parts ---------------------------------------------------------------------------------------------
def _coords(seed, quick):
    import torch

    from netatlas.splines import init_scheme, sample_init, to_network, to_spline

    width = 64 if quick else 512
    params = sample_init(init_scheme("torch", width), seed=seed)
    module = params.to_module(torch.float64)  # the network itself, evaluated by torch
    x = np.linspace(-4, 4, 4001)
    with torch.no_grad():
        f_net = module(torch.from_numpy(x)[:, None])[:, 0].numpy()
    spline = to_spline(module)
    scale = float(np.max(np.abs(f_net)))
    a, d = spline.affine_part()
    beta, mu = spline.breakpoints, spline.delta_slopes
    linear_form = a * x + d + np.maximum(x[:, None] - beta, 0.0) @ mu
    round_trip = {}
    for balance in (False, True, "norm"):
        back = to_network(spline, balance)
        with torch.no_grad():
            f_back = back(torch.from_numpy(x)[:, None])[:, 0].numpy()
        round_trip[str(balance)] = float(np.max(np.abs(f_back - f_net)) / scale)
    return {"width": width, "spline_error": float(np.max(np.abs(spline(x) - f_net)) / scale),
            "linear_form_error": float(np.max(np.abs(linear_form - f_net)) / scale),
            "round_trip_error": round_trip}


def _ks(sample, cdf) -> float:
    from scipy.stats import kstest

    return float(kstest(sample, cdf).pvalue)


def _init(seed, quick):
    from netatlas.splines import breakpoint_density, expected_roughness, init_scheme, sample_init, sampled_roughness

    n_networks = 400 if quick else 4000
    width = 50
    out = {"n_networks": n_networks, "width": width}
    # T2: Gaussian, two scale ratios
    gauss = []
    for sw, sb in ((1.0, 1.0), (2.0, 0.5)):
        scheme = init_scheme("gaussian", width, sigma_w=sw, sigma_b=sb)
        w, b, _, _ = sample_init(scheme, seed=seed, n_networks=n_networks)
        beta = (-b / w).ravel()
        density = breakpoint_density(scheme)
        gauss.append({"sigma_w": sw, "sigma_b": sb, "kind": density.kind, "ks_p": _ks(beta, density.cdf),
                      "median_abs": float(np.median(np.abs(beta))), "predicted_scale": sb / sw})
    out["gaussian"] = gauss
    # T3: PyTorch default and zero-bias inits
    scheme = init_scheme("torch", width)
    w, b, _, _ = sample_init(scheme, seed=seed, n_networks=n_networks)
    beta = (-b / w).ravel()
    density = breakpoint_density(scheme)
    inside = np.abs(beta) <= 1
    out["torch"] = {"kind": density.kind, "ks_p": _ks(beta, density.cdf), "fraction_in": float(inside.mean()),
                    "n": int(beta.size), "density_in": float(inside.mean() / 2),
                    "lens_density_in": float(density.pdf(0.3)), "lens_density_2": float(density.pdf(2.0))}
    zero = {}
    for name in ("he", "glorot"):
        w, b, _, _ = sample_init(init_scheme(name, width), seed=seed, n_networks=n_networks)
        zero[name] = float(np.max(np.abs(-b / w)))
    out["zero_bias_max_abs_beta"] = zero
    # T4: roughness, sampled vs the closed forms of docs/papers/sahs2020.md and the lens's expectation
    rough = []
    for name, h in (("torch", 10), ("torch", 200), ("glorot", 10), ("glorot", 200), ("he", 10), ("he", 200)):
        scheme = init_scheme(name, h)
        r = sampled_roughness(scheme, n_networks=n_networks, seed=seed)
        stated = {"torch": 1 / 9, "glorot": 4 * h / (h + 1) ** 2, "he": 4.0}[name]
        rough.append({"init": name, "width": h, "l2_mean": r.mean()["l2"], "l2_se": r.stderr()["l2"],
                      "l1_mean": r.mean()["l1"], "l1_se": r.stderr()["l1"], "l2_stated": stated,
                      "l1_stated": math.sqrt(h) / 4 if name == "torch" else None,
                      "l2_lens": expected_roughness(scheme).l2, "l1_lens": expected_roughness(scheme).l1,
                      "tv_mean": r.mean()["tv"]})
    out["roughness"] = rough
    return out


def _data(rng, n):
    x = np.sort(rng.uniform(-1, 1, n))
    return x, np.sin(3 * x) + 0.3 * rng.standard_normal(n)


def _hessian(seed, quick):
    from netatlas.splines import classify_critical_point, interpolating_minimum, to_network

    rng = np.random.default_rng(seed)
    n, width = 12, 40
    x = np.linspace(-1, 1, n)  # docs/papers/sahs2020.md's example: 12 points, 40 breakpoints uniform on [-1.2, 1.2]
    y = np.sin(3 * x) + 0.3 * rng.standard_normal(n)
    beta = rng.uniform(-1.2, 1.2, width)
    s = rng.choice([-1, 1], width)
    spline = interpolating_minimum(beta, s, x, y)
    out = {"n": n, "width": width, "loss": float(0.5 * np.sum((spline(x) - y) ** 2))}
    for coords, point in (("spline", spline), ("network", to_network(spline, output="params"))):
        cp = classify_critical_point(point, x, y, coords=coords)
        ev = cp.spectrum.eigenvalues
        top = float(np.max(np.abs(ev)))
        out[coords] = {"kind": cp.kind, "rank": cp.spectrum.rank, "n_zero": cp.spectrum.n_zero,
                       "n_negative": cp.spectrum.n_negative, "n_positive": cp.spectrum.n_positive,
                       "predicted_zero": cp.predicted_n_zero, "gap_decades": cp.spectrum.gap_decades,
                       "n_params": int(ev.size), "rank_rel_1e-7": int(np.sum(np.abs(ev) > 1e-7 * top)),
                       "eigenvalues": ev.tolist()}
    return out


def _saddle(seed, quick):
    from netatlas.splines import (
        ShallowParams,
        init_scheme,
        loss_hessian,
        neuron_block,
        sample_init,
        to_spline,
    )

    rng = np.random.default_rng(seed)
    x, y = _data(rng, 16)
    p = sample_init(init_scheme("torch", 20), seed=seed)
    active = (np.multiply.outer(x, p.w) + p.b > 0).sum(0)
    i = int(np.argmax(active))  # the neuron with most data on its active side
    v = np.array(p.v)
    v[i] = 0.0  # mu_i = 0
    q = ShallowParams(p.w, p.b, v, p.c)
    spline = to_spline(q)
    h = spline.width
    block = neuron_block(q, x, y, i)
    hessian = loss_hessian(spline, x, y, coords="spline")
    sub = hessian[np.ix_([i, h + i], [i, h + i])]
    return {"neuron": i, "n_active": int(active[i]), "R": float(-spline.orientations[i] * block[0, 1]),
            "block": block.tolist(), "block_vs_hessian": float(np.max(np.abs(block - sub))),
            "det": float(np.linalg.det(block)), "block_min_eig": float(np.linalg.eigvalsh(block)[0]),
            "hessian_min_eig": float(np.linalg.eigvalsh(hessian)[0])}


def _flow(seed, quick):
    from netatlas.splines import conserved_quantity, flow_velocity, init_scheme, sample_init, simulate_flow

    rng = np.random.default_rng(seed)
    x, y = _data(rng, 16)
    p = sample_init(init_scheme("torch", 32), seed=seed)
    dbeta, dmu = flow_velocity(p, x, y)
    # one plain GD step of size h gives the velocity up to O(h); Richardson's 2 fd(h/2) - fd(h) removes the
    # O(h) term (a neuron with tiny w, beta = -b/w far out, has a large one: 2e-4 at h = 1e-7 for seed 4)
    fd = {}
    for step in (1e-7, 5e-8):
        one = simulate_flow(p, x, y, n_steps=1, lr=step, n_records=1)
        fd[step] = ((one.breakpoints[-1] - one.breakpoints[0]) / step,
                    (one.delta_slopes[-1] - one.delta_slopes[0]) / step)
    fd_beta = 2 * fd[5e-8][0] - fd[1e-7][0]
    fd_mu = 2 * fd[5e-8][1] - fd[1e-7][1]
    ok = np.isfinite(dbeta)
    rel = lambda a, b: float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))
    out = {"beta_rel_error": rel(dbeta[ok], fd_beta[ok]), "mu_rel_error": rel(dmu, fd_mu),
           "forward_difference_error": max(rel(dbeta[ok], fd[1e-7][0][ok]), rel(dmu, fd[1e-7][1])),
           "max_speed_beta": float(np.max(np.abs(dbeta[ok])))}
    # conservation: GD with step lr tracks the flow with O(lr) error, so the drift of the conserved
    # quantity over a fixed flow time must shrink linearly with lr (an ODE solve stiffens unpredictably as
    # breakpoints gather, so fixed-step GD at three step sizes is the robust check)
    t_max = 0.5
    drift = {}
    for lr in (1e-3, 1e-4, 1e-5):
        run = simulate_flow(p, x, y, n_steps=int(round(t_max / lr)), lr=lr, n_records=5, record="linear")
        q = np.stack([conserved_quantity(run.params(k)) for k in range(run.times.size)])
        drift[f"{lr:g}"] = float(np.max(np.abs(q - q[0])) / max(np.max(np.abs(q[0])), 1e-300))
        drift["loss_ratio"] = float(run.loss[-1] / run.loss[0])
    out["drift"] = drift
    out["t_max"] = t_max
    return out


def _kernel(seed, quick):
    from scipy.interpolate import CubicSpline

    from netatlas.splines import init_scheme, interpolating_minimum, sample_init, simulate_flow, to_spline

    rng = np.random.default_rng(seed)
    x, y = _data(rng, 10)
    cubic = CubicSpline(x, y, bc_type="natural")
    grid = np.linspace(x[0], x[-1], 2001)
    linear = np.interp(grid, x, y)
    widths = (200, 2000, 20000)
    dev = []
    for width in widths:
        beta = rng.uniform(-2, 2, width)
        s = rng.choice([-1, 1], width)
        f = interpolating_minimum(beta, s, x, y)(grid)
        f_largest = f
        dev.append({"width": width, "vs_cubic": float(np.max(np.abs(f - cubic(grid)))),
                    "vs_linear": float(np.max(np.abs(f - linear)))})
    # adaptive regime: small initial scale, trained to ~zero loss
    width = 64
    p = sample_init(init_scheme("torch", width, scale=1e-2), seed=seed)
    run = simulate_flow(p, x, y, n_steps=50_000 if quick else 300_000, n_records=20, loss_tol=1e-10)
    f = to_spline(run.params())(grid)
    spline = run.spline()
    big = np.abs(spline.delta_slopes) > 0.05 * np.max(np.abs(spline.delta_slopes))
    knot_dist = np.min(np.abs(spline.breakpoints[big][:, None] - x[None, :]), axis=1)
    spacing = float(np.min(np.diff(x)))
    return {"widths": list(widths), "deviation": dev, "cubic_vs_linear": float(np.max(np.abs(cubic(grid) - linear))),
            "small_init": {"scale": 1e-2, "width": width, "final_loss": float(run.loss[-1]),
                           "initial_loss": float(run.loss[0]), "steps": int(run.steps[-1]),
                           "vs_linear": float(np.max(np.abs(f - linear))),
                           "vs_cubic": float(np.max(np.abs(f - cubic(grid)))),
                           "median_knot_to_data": float(np.median(knot_dist)), "min_data_spacing": spacing,
                           "n_big_knots": int(big.sum())},
            "data": {"x": x.tolist(), "y": y.tolist()},
            "curves": {"grid": grid[::10].tolist(), "kernel": f_largest[::10].tolist(),
                       "cubic": cubic(grid[::10]).tolist(), "linear": linear[::10].tolist(),
                       "small_init": f[::10].tolist()}}


# -- claims --------------------------------------------------------------------------------------------
def _by_part(records):
    out = {}
    for r in records:
        if r.get("status") == "done":
            out.setdefault(r["config"]["part"], []).append(r["result"])
    return out


def _failed(records, part):
    errs = [r.get("error", "") for r in records if r["config"]["part"] == part and r.get("status") != "done"]
    return errs[0] if errs else ""


def build(records, settings) -> Reproduction:
    """Turn the sweep records into the T1-T9 claim table."""
    parts = _by_part(records)
    claims = []

    def missing(id, statement, expected, part):
        claims.append(Claim(id, statement, expected, f"not measured: the {part!r} configs failed "
                            f"({_failed(records, part)})", None))

    stmt = ("Spline coordinates: f(x) = c + sum mu_i relu(s_i (x - beta_i)) with beta = -b/w, mu = v|w|, "
            "s = sign w; equivalently (a x + d) + sum mu_i (x - beta_i)_+; back to a network with any "
            "alpha_i > 0 (alpha = 1, balanced) gives the same f")
    exp = "exact up to float64 rounding: max relative error < 1e-12"
    if "coords" in parts:
        c = parts["coords"]
        errs = [max(r["spline_error"], r["linear_form_error"], *r["round_trip_error"].values()) for r in c]
        claims.append(Claim("T1", stmt, exp, f"max relative error {describe(errs, digits=3)} "
                            f"(H = {c[0]['width']}, x in [-4, 4])", all_true([e < 1e-12 for e in errs]),
                            tuple(errs), "splines.to_spline, Spline.affine_part, splines.to_network",
                            "Compared with the torch network evaluated directly (float64)."))
    else:
        missing("T1", stmt, exp, "coords")

    stmt = "Gaussian init w ~ N(0, sw^2), b ~ N(0, sb^2): breakpoints beta ~ Cauchy(0, sb/sw)"
    exp = f"KS test against the Cauchy cdf: no seed with p < {KS_ALPHA}; median |beta| = sb/sw"
    if "init" in parts:
        g = [e for r in parts["init"] for e in r["gaussian"]]
        ps = [e["ks_p"] for e in g]
        med = [e["median_abs"] / e["predicted_scale"] for e in g]
        claims.append(Claim("T2", stmt, exp, f"KS p {describe(ps, digits=3)}; median|beta|/(sb/sw) "
                            f"{describe(med, digits=4)} over (sw, sb) = (1, 1), (2, 0.5) and seeds",
                            all(p > KS_ALPHA for p in ps) and all(e["kind"] == "cauchy" for e in g), tuple(ps),
                            "splines.init_scheme, sample_init, breakpoint_density",
                            f"{parts['init'][0]['n_networks']} networks x H = 50 per seed."))
        t = [r["torch"] for r in parts["init"]]
        zero = [max(r["zero_bias_max_abs_beta"].values()) for r in parts["init"]]
        frac = [e["fraction_in"] for e in t]
        n = t[0]["n"]
        se = math.sqrt(0.25 / n)
        ok = (all(e["ks_p"] > KS_ALPHA for e in t) and all(abs(f - 0.5) < Z_MAX * se for f in frac)
              and all(z == 0 for z in zero) and all(abs(e["lens_density_in"] - 0.25) < 1e-12 for e in t))
        claims.append(Claim(
            "T3", "PyTorch default init (w, b ~ U(-1, 1)): p(beta) = 1/4 on [-1, 1] and 1/(4 beta^2) outside, so "
            "half the breakpoints lie in [-1, 1]; zero-bias inits (He, Glorot with b = 0) put every beta at 0",
            f"fraction in [-1, 1] = 0.5 (|z| < {Z_MAX}, binomial se {se:.2g}); KS p > {KS_ALPHA}; max |beta| = 0 "
            "for b = 0", f"fraction in [-1, 1] {describe(frac, digits=4)}; KS p "
            f"{describe([e['ks_p'] for e in t], digits=3)}; "
            f"max |beta| under He/Glorot b = 0: {max(zero):g}", ok, tuple(frac),
            "splines.init_scheme, sample_init, breakpoint_density"))
        rows = [e for r in parts["init"] for e in r["roughness"]]
        z_l2, z_l1, lens = [], [], []
        for e in rows:
            z_l2.append((e["l2_mean"] - e["l2_stated"]) / e["l2_se"])
            lens.append(abs(e["l2_lens"] - e["l2_stated"]) / e["l2_stated"])
            if e["l1_stated"] is not None:
                z_l1.append((e["l1_mean"] - e["l1_stated"]) / e["l1_se"])
        claims.append(Claim(
            "T4", "Roughness at init: E sum mu^2 = 1/9 for PyTorch default (any width), 4H/(H+1)^2 -> 0 for "
            "Glorot-uniform with b = 0 (flat), 4 for He-normal with b = 0; E sum |mu| = sqrt(H)/4 (PyTorch)",
            f"Monte-Carlo means within {Z_MAX} standard errors of the stated values (H = 10, 200); the lens's "
            "expected_roughness equals them", f"z of sum mu^2 {describe(z_l2, digits=3)}; z of sum|mu| "
            f"{describe(z_l1, digits=3)}; lens vs stated max rel. diff {max(lens):.2g}",
            all(abs(z) < Z_MAX for z in z_l2 + z_l1) and max(lens) < 1e-9, tuple(z_l2),
            "splines.sampled_roughness, expected_roughness",
            "Per-init numbers are in the roughness table below; TV(f') inside [-1, 1] is reported there too."))
    else:
        for id in ("T2", "T3", "T4"):
            missing(id, "initialisation law (see docs/papers/sahs2020.md)", "", "init")

    stmt = ("At an interpolating minimum the spline-coordinate Hessian is J^T J with rank <= min(n, 2K+1); "
            "n = 12, H = 40, breakpoints uniform on [-1.2, 1.2]: rank 12, 69 zero and 0 negative eigenvalues; "
            "network coordinates: 109 zeros (= 69 + H), same numbers of positive and negative eigenvalues")
    exp = "spline (rank, zero, negative) = (12, 69, 0); network zero = 109, negative = 0"
    if "hessian" in parts:
        h = parts["hessian"]
        ok = [r["spline"]["rank"] == 12 and r["spline"]["n_zero"] == 69 and r["spline"]["n_negative"] == 0
              and r["network"]["n_zero"] == 109 and r["network"]["n_negative"] == 0
              and r["network"]["n_positive"] == r["spline"]["n_positive"] for r in h]
        meas = "; ".join(f"seed {s}: spline ({r['spline']['rank']}, {r['spline']['n_zero']}, "
                         f"{r['spline']['n_negative']}), network zeros {r['network']['n_zero']}"
                         for s, r in zip(settings["seeds"], h, strict=False))
        naive = [r["spline"]["rank_rel_1e-7"] for r in h]
        claims.append(Claim("T5", stmt, exp, meas, all_true(ok), tuple(r["spline"]["rank"] for r in h),
                            "splines.interpolating_minimum, classify_critical_point, hessian_spectrum",
                            "Spectral-gap rank rule (gap "
                            f"{describe([r['spline']['gap_decades'] for r in h], digits=3)} "
                            f"decades); a fixed relative 1e-7 cut-off would give rank {describe(naive, digits=3)}."))
    else:
        missing("T5", stmt, exp, "hessian")

    stmt = ("Saddle: a neuron with mu_i = 0 and R_i = sum_{A_i} r_n != 0 has the (beta_i, mu_i) Hessian block "
            "[[0, -s_i R_i], [-s_i R_i, sum_{A_i} (x_n - beta_i)^2]] with negative determinant, so lambda_min < 0")
    exp = "block = closed form (to 1e-12 of its largest entry), det < 0 and lambda_min(full Hessian) < 0 in every seed"
    if "saddle" in parts:
        s = parts["saddle"]
        # round-off of the dense Hessian scales with its largest entry (sum_A (x - beta)^2), not with R
        ok = [r["block_vs_hessian"] < 1e-12 * np.max(np.abs(r["block"])) and r["det"] < 0 and r["hessian_min_eig"] < 0
              for r in s]
        claims.append(Claim("T6", stmt, exp, f"det {describe([r['det'] for r in s], digits=3)}; lambda_min "
                            f"{describe([r['hessian_min_eig'] for r in s], digits=3)}; block vs Hessian max diff "
                            f"{max(r['block_vs_hessian'] for r in s):.2g}", all_true(ok), tuple(r["det"] for r in s),
                            "splines.neuron_block, loss_hessian",
                            "Measured on PyTorch-default networks with one neuron's output weight set to 0 "
                            "(mu_i = 0): the block's sign pattern needs no critical point. The block-vs-Hessian "
                            "tolerance was first scaled by |R| and failed at one seed (39) by round-off of the "
                            "Hessian's large entries; it is now 1e-12 of the block's largest entry."))
    else:
        missing("T6", stmt, exp, "saddle")

    stmt = ("Gradient flow in spline terms: d beta_i/dt = (v_i/w_i) sum_{A_i} r_n (1 + beta_i x_n), "
            "d mu_i/dt = -s_i [w_i^2 sum_{A_i} r_n (x_n - beta_i) + v_i^2 sum_{A_i} r_n x_n]")
    exp = "equal to the finite-difference velocity of tiny GD steps (rel. error < 1e-4)"
    stmt8 = "v_i^2 - w_i^2 - b_i^2 is conserved per neuron under gradient flow"
    exp8 = ("GD at step lr over a fixed flow time: relative drift < 1e-5 at lr = 1e-5 and proportional to lr "
            "(slope 0.8-1.2)")
    if "flow" in parts:
        f = parts["flow"]
        errs = [max(r["beta_rel_error"], r["mu_rel_error"]) for r in f]
        claims.append(Claim("T7", stmt, exp, f"max rel. error {describe(errs, digits=3)}",
                            all_true([e < 1e-4 for e in errs]), tuple(errs), "splines.flow_velocity, simulate_flow",
                            "Richardson extrapolation of one GD step of 1e-7 and 5e-8 in network coordinates. The "
                            "plain forward difference at 1e-7 gave "
                            f"{describe([r['forward_difference_error'] for r in f], digits=3)}: it fails the "
                            "criterion where a neuron has a tiny w (a far breakpoint moving fast), an O(step) "
                            "truncation error of the check, not of the formula."))
        lrs = (1e-3, 1e-4, 1e-5)
        slopes = [float(np.polyfit(np.log(lrs), np.log([max(r["drift"][f"{lr:g}"], 1e-300) for lr in lrs]), 1)[0])
                  for r in f]
        small = [r["drift"]["1e-05"] for r in f]
        claims.append(Claim("T8", stmt8, exp8, f"drift at lr 1e-5 {describe(small, digits=3)}; log-log slope of "
                            f"drift vs lr (1e-3..1e-5) {describe(slopes, digits=3)}",
                            all_true([d < 1e-5 for d in small]) and all(0.8 < s_ < 1.2 for s_ in slopes),
                            tuple(small), "splines.simulate_flow, conserved_quantity",
                            f"Flow time {f[0]['t_max']} (H = 32, 16 points); the loss fell to "
                            f"{describe([r['drift']['loss_ratio'] for r in f], digits=3)} of its initial value. "
                            "Slope 1: GD's drift is its O(lr) discretisation error, so the flow itself conserves it."))
    else:
        missing("T7", stmt, exp, "flow")
        missing("T8", stmt8, exp8, "flow")

    stmt = ("Kernel limit: with breakpoints fixed uniform on [-2, 2] and minimum-norm mu (affine part free) the "
            "fit approaches scipy's natural cubic spline as H grows (0.038 / 0.027 / 0.006 at H = 200 / 2000 / "
            "20000, linear interpolant ~0.21 away); a small init trained to ~zero loss ends close to the linear "
            "interpolant with breakpoints near the data")
    exp = ("deviation from the cubic spline decreases with H and at the largest H is < 1/4 of the "
           "cubic-vs-linear distance; small-init fit nearer the linear interpolant than the cubic spline")
    if "kernel" in parts:
        k = parts["kernel"]
        widths = k[0]["widths"]
        per_w = {w: [r["deviation"][i]["vs_cubic"] for r in k] for i, w in enumerate(widths)}
        cl = [r["cubic_vs_linear"] for r in k]
        decreasing = [all(r["deviation"][i + 1]["vs_cubic"] < r["deviation"][i]["vs_cubic"]
                          for i in range(len(widths) - 1)) for r in k]
        close = [r["deviation"][-1]["vs_cubic"] < 0.25 * r["cubic_vs_linear"] for r in k]
        small = [r["small_init"] for r in k]
        adaptive = [s_["vs_linear"] < s_["vs_cubic"] for s_ in small]
        meas = ("max |f - cubic| " + "; ".join(f"H={w}: {describe(v, digits=3)}" for w, v in per_w.items())
                + f"; cubic vs linear {describe(cl, digits=3)}; small init: |f - linear| "
                f"{describe([s_['vs_linear'] for s_ in small], digits=3)} vs |f - cubic| "
                f"{describe([s_['vs_cubic'] for s_ in small], digits=3)}, final loss "
                f"{describe([s_['final_loss'] for s_ in small], digits=2)}")
        verdicts = (f"kernel part {'holds' if all_true(decreasing + close) else 'FAILS'}; adaptive part "
                    f"{'holds' if all_true(adaptive) else 'FAILS'} ({sum(adaptive)}/{len(adaptive)} seeds nearer "
                    "the linear interpolant)")
        meas = verdicts + ". " + meas
        claims.append(Claim("T9", stmt, exp, meas, all_true(decreasing + close + adaptive),
                            tuple(per_w[widths[-1]]), "splines.interpolating_minimum, simulate_flow, to_spline",
                            "The small-init run is GD (lr auto) for 50k (quick) / 300k steps; where it has not "
                            "reached ~zero loss it is not yet the interpolant the claim describes, and the claim "
                            "is scored as measured. Data: 10 points x ~ U(-1, 1), y = sin 3x + 0.3 noise "
                            "(docs/papers/sahs2020.md does not give its "
                            "data, so its absolute numbers are not comparable; the trend is). Orientations "
                            "are random signs, which makes the affine part nearly free at large H "
                            "(interpolating_minimum penalises offset^2 and every mu). Median distance of the "
                            "small-init fit's large knots to the nearest data point: "
                            f"{describe([s_['median_knot_to_data'] for s_ in small], digits=3)} (min data spacing "
                            f"{describe([s_['min_data_spacing'] for s_ in small], digits=3)})."))
    else:
        missing("T9", stmt, exp, "kernel")

    extras = {}
    if "init" in parts:
        rows = {}
        for r in parts["init"]:
            for e in r["roughness"]:
                rows.setdefault((e["init"], e["width"]), []).append(e)
        extras["roughness"] = [{"init": k[0], "H": k[1], "sum mu^2 (MC)": spread([e["l2_mean"] for e in v])["mean"],
                                "stated": v[0]["l2_stated"], "lens expected": v[0]["l2_lens"],
                                "sum|mu| (MC)": spread([e["l1_mean"] for e in v])["mean"],
                                "lens E sum|mu|": v[0]["l1_lens"],
                                "TV(f') in [-1,1] (MC)": spread([e["tv_mean"] for e in v])["mean"]}
                               for k, v in rows.items()]
    if "kernel" in parts:
        extras["kernel"] = [{"seed": s, **{f"H={d['width']}": d["vs_cubic"] for d in r["deviation"]},
                             "cubic vs linear": r["cubic_vs_linear"],
                             "small init vs linear": r["small_init"]["vs_linear"]}
                            for s, r in zip(settings["seeds"], parts["kernel"], strict=False)]
    added = ("Exact Hessian spectra with a spectral-gap rank rule, and the predicted inertia from the data "
             "(classify_critical_point), in both coordinate systems.",
             "Finite-difference and ODE checks of the flow equations and the conserved quantity.",
             "KS tests of the breakpoint laws over several seeds and Monte-Carlo z-scores for the roughness.")
    return Reproduction(PAPER, TITLE, tuple(claims), settings, records, extras, added)
