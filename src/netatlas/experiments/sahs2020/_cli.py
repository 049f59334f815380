"""``netatlas splines regimes|watch``: the Sahs et al. (2020/2022) studies of shallow ReLU networks as splines
(training regimes; a training run watched in the spline view) as commands writing a run directory."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import typer

from netatlas import _options as options

__all__ = ["register"]


def _tight(fig):
    fig.tight_layout()


def register(app: typer.Typer) -> None:
    sub = typer.Typer(help="Shallow univariate ReLU networks as splines (Sahs et al.).", no_args_is_help=True)
    sub.command("regimes")(regimes)
    sub.command("watch")(watch)
    app.add_typer(sub, name="splines")



def regimes(
    quick: bool = typer.Option(False, "--quick", help="A small grid (< 1 min): scales 0.1,3, ratios 0.01,10, "
                               "width 200, 2 seeds, 100,000 steps (conflicts with those options)."),
    scales: str = typer.Option(None, help="Init scales (comma-separated; default 0.03,0.1,0.3,1,3)."),
    ratios: str = typer.Option(None, help="First-/second-layer scale ratios (default 0.01,1,10)."),
    widths: str = typer.Option(None, help="Widths (even; default 100,400,1600)."),
    seeds: int = typer.Option(None, help="Seeds per config (default 2)."),
    max_steps: int = typer.Option(None, help="GD steps at most (lr = 1/lambda_max(NTK), adaptive; default "
                                  "300,000)."),
    init: str = typer.Option("uniform", help="'uniform' (breakpoints uniform on [-2, 2]) or 'torch'."),
    n_points: int = typer.Option(8, help="Training points (evenly spaced on [-1, 1])."),
    dask: str = typer.Option(None, "--dask", help="Run the grid on Dask: 'local' or tcp://host:port."),
    out: Path = options.out_option(),
):
    """Implicit regularisation: sweep init scale, layer-scale ratio and width; train to ~zero loss; measure
    the distance to the natural cubic spline and to the linear interpolant, breakpoint movement, roughness
    (TV(f') over the least TV of any interpolant).

    Python: ``netatlas.sweep.run(netatlas.experiments.sahs2020.regime_run, netatlas.sweep.grid(scale=..., ratio=...,
    width=..., seed=...), out)``
    """
    from netatlas import sweep
    from netatlas._errors import RunFailedError
    from netatlas._options import at_least, number_list, quick_conflicts
    from netatlas.experiments.sahs2020 import _plot
    from netatlas.experiments.sahs2020._regimes import (
        kernel_limit,
        linear_interpolant,
        min_tv_interpolant,
        natural_cubic_spline,
        regime_data,
        regime_run,
    )
    from netatlas.report import RunDir

    quick_conflicts("splines regimes", quick, scales=scales, ratios=ratios, widths=widths, seeds=seeds,
                    max_steps=max_steps)
    defaults = (("0.1,3", "0.01,10", "200", 2, 100_000) if quick
                else ("0.03,0.1,0.3,1,3", "0.01,1,10", "100,400,1600", 2, 300_000))
    scales, ratios, widths, seeds, max_steps = (given if given is not None else default for given, default in
                                                zip((scales, ratios, widths, seeds, max_steps), defaults, strict=True))
    scale_list = number_list("--scales", scales, positive=True)
    ratio_list = number_list("--ratios", ratios, positive=True)
    width_list = number_list("--widths", widths, positive=True, integer=True)
    at_least("--seeds", seeds, 1)
    at_least("--max-steps", max_steps, 1)
    at_least("--n-points", n_points, 2)
    configs = sweep.grid(scale=scale_list, ratio=ratio_list, width=width_list, seed=list(range(seeds)),
                         max_steps=max_steps, init=init, n_points=n_points)
    run = RunDir.create(out, command="splines regimes", config={
        "scales": scale_list, "ratios": ratio_list, "widths": width_list, "seeds": seeds, "max_steps": max_steps,
        "init": init, "n_points": n_points, "quick": quick, "dask": dask})
    records = sweep.run(regime_run, configs, run.path / "sweep", dask=dask, progress=True)
    rows = [{**r["config"], **{k: v for k, v in r["result"].items() if k != "function"}}
            for r in records if r["status"] == "done"]
    if not rows:
        first = next(r["error"] for r in records if r["status"] == "failed")
        raise RunFailedError(f"splines regimes: all {len(records)} configs failed (see "
                             f"{run.path / 'sweep' / 'failed'}); first: {first.splitlines()[0] if first else '?'}")
    run.save_json("rows", rows)

    x, y = regime_data(n_points, 0)
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    _plot.plot_regime_curves(rows, key="rel_cubic", ax=axes[0], title="max|f - natural cubic| / max|cubic - linear|")
    _plot.plot_regime_curves(rows, key="rel_linear", ax=axes[1], title="max|f - linear interp.| / max|cubic - linear|")
    _plot.plot_regime_curves(rows, key="breakpoint_shift", ax=axes[2], logy=True,
                             title="median |beta_T - beta_0| (neurons carrying slope)")
    _tight(fig)
    run.save_figure(fig, "regimes", "Distances of the trained function to the natural cubic spline and the linear "
                    "interpolant (relative to their mutual distance) and breakpoint movement against init scale, "
                    "one line per (ratio, width); mean +- std over seeds. Small scale: adaptive regime "
                    "(breakpoints move to the data, f near the linear interpolant); large scale/ratio: kernel "
                    "regime (frozen breakpoints, f near the natural cubic spline as width grows).")
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    _plot.plot_regime_curves(rows, key="tv_over_min", ax=axes[0],
                             title="TV(f') on the data range / least TV of any interpolant")
    _plot.plot_regime_curves(rows, key="final_loss", ax=axes[1], logy=True, title="final loss")
    _tight(fig)
    tv_min = rows[0]["tv_min"]
    run.save_figure(fig, "roughness", f"Roughness TV(f') of the trained function over the least TV of any "
                    f"interpolant ({tv_min:.4g}; natural cubic: {rows[0]['tv_cubic'] / tv_min:.3g}x, linear "
                    f"interpolant: {rows[0]['tv_linear'] / tv_min:.3g}x) and final loss.")

    # examples: the trained functions at the extreme scales (largest width, seed 0)
    fig, ax = plt.subplots(figsize=(7, 4))
    grid = np.linspace(x[0], x[-1], 201)
    ax.plot(grid, natural_cubic_spline(x, y)(grid), "k-", lw=2, label="natural cubic")
    ax.plot(grid, linear_interpolant(x, y)(grid), "k:", lw=2, label="linear interpolant")
    for r in records:
        c = r["config"]
        if (r["status"] == "done" and c["seed"] == 0 and c["width"] == max(width_list)
                and (c["scale"], c["ratio"]) in ((min(scale_list), min(ratio_list)),
                                                 (max(scale_list), max(ratio_list)))):
            ax.plot(grid, r["result"]["function"], lw=1, label=f"trained, scale {c['scale']}, ratio {c['ratio']}")
    ax.plot(grid, min_tv_interpolant(x, y)[1](grid), "--", color="0.5", lw=1, label="least-TV(f') interpolant")
    ax.plot(x, y, "o", color="tab:green")
    ax.legend(fontsize=7)
    _tight(fig)
    run.save_figure(fig, "examples", "Trained functions at (smallest scale, smallest ratio) and (largest scale, "
                    "largest ratio), seed 0, largest width.")

    kernel_rows = []
    for width in (200, 2000, 20000):
        even = kernel_limit(x, y, width)
        rand = [kernel_limit(x, y, width, spacing="random", seed=s) for s in range(3)]
        g = np.linspace(x[0], x[-1], 801)
        cubic, linear = natural_cubic_spline(x, y)(g), linear_interpolant(x, y)(g)
        kernel_rows.append({"width": width, "even: max|f - cubic|": float(np.max(np.abs(even(g) - cubic))),
                            "random: max|f - cubic| (mean of 3)": float(np.mean([np.max(np.abs(f(g) - cubic))
                                                                                for f in rand])),
                            "even: max|f - linear|": float(np.max(np.abs(even(g) - linear)))})
    run.add_table("Kernel limit", kernel_rows, "Minimum sum mu^2 interpolant with breakpoints on [-2, 2] (even "
                  "midpoints or uniform draws) and a free affine part, vs the natural cubic spline.")
    fig, ax = plt.subplots(figsize=(7, 4))
    _plot.plot_kernel_limit(x, y, {f"kernel limit H={w}": kernel_limit(x, y, w, spacing="random") for w in (20, 200)},
                            ax=ax)
    _tight(fig)
    run.save_figure(fig, "kernel_limit", "Kernel-limit interpolants (random breakpoints) approach the natural cubic.")
    table = []
    for scale in scale_list:
        for ratio in ratio_list:
            for width in width_list:
                sub = [r for r in rows if (r["scale"], r["ratio"], r["width"]) == (scale, ratio, width)]
                if sub:
                    table.append({"scale": scale, "ratio": ratio, "width": width, "seeds": len(sub),
                                  **{k: float(np.mean([r[k] for r in sub])) for k in (
                                      "dist_cubic", "dist_linear", "breakpoint_shift", "tv_over_min",
                                      "final_loss")},
                                  "converged": sum(bool(r["converged"]) for r in sub)})
    run.add_table("Per config (means over seeds)", table)
    run.add_text("Reading the plots", "Kernel regime (first layer large against the second, large scale): "
                 "breakpoints stay where they were drawn (shift ~1e-6), and as the width grows the trained "
                 "function approaches the natural cubic spline (its TV(f') ratio then matches the cubic's). "
                 "Adaptive regime (small scale or first layer small against the second): breakpoints move by "
                 "O(1) and, when the loss reaches ~0, TV(f') equals the least TV of any interpolant (ratio ~1.00): "
                 "a sparse linear spline. That is not always the linear interpolant pointwise: where the data are "
                 "locally convex or concave every convex (concave) interpolant has the same TV, and the knots can "
                 "sit between data points where neighbouring chords meet. Runs whose final loss stays ~1e-2 or "
                 "~1e-3 are stuck near non-interpolating critical points (see 'converged').")
    big = [r for r in rows if (r["scale"], r["ratio"], r["width"]) == (max(scale_list), max(ratio_list),
                                                                       max(width_list))]
    small = [r for r in rows if (r["scale"], r["ratio"], r["width"]) == (min(scale_list), min(ratio_list),
                                                                         max(width_list))]
    summary = {"n_runs": len(rows), "n_failed": len(records) - len(rows),
               "kernel_limit": kernel_rows,
               "largest_scale_rel_cubic": float(np.mean([r["rel_cubic"] for r in big])),
               "largest_scale_rel_linear": float(np.mean([r["rel_linear"] for r in big])),
               "smallest_scale_rel_cubic": float(np.mean([r["rel_cubic"] for r in small])),
               "smallest_scale_rel_linear": float(np.mean([r["rel_linear"] for r in small])),
               "largest_scale_tv_over_min": float(np.mean([r["tv_over_min"] for r in big])),
               "smallest_scale_tv_over_min": float(np.mean([r["tv_over_min"] for r in small])),
               "smallest_scale_breakpoint_shift": float(np.mean([r["breakpoint_shift"] for r in small])),
               "largest_scale_breakpoint_shift": float(np.mean([r["breakpoint_shift"] for r in big]))}
    run.write_summary(summary)
    report = run.write_report("Spline regimes: implicit regularisation of shallow ReLU networks",
                              "Symmetric init (f = 0 at start), first layer scaled by scale*sqrt(ratio), second by "
                              "scale/sqrt(ratio); GD with lr = 1/lambda_max(NTK) to near-zero loss.")
    typer.echo(f"report: {report}")
    failed = [r for r in records if r["status"] == "failed"]
    if failed:  # the report shows what finished; the exit status says not everything did
        raise RunFailedError(f"splines regimes: {len(failed)} of {len(records)} configs failed (see "
                             f"{run.path / 'sweep' / 'failed'}); first: {failed[0]['error'].splitlines()[0]}")


def _load_pairs(data: str, where: str) -> tuple[np.ndarray, np.ndarray]:
    """Regression pairs (x, y), float64 of shape (n,), of the training split of ``--data NAME|FILE``, read by
    the one resolver (:func:`netatlas.data.load_any`; a file keeps its float64 values): 1-D inputs only."""
    from netatlas.data import load_any

    dataset = load_any(str(data), where=where, float64=True)
    if dataset.input_shape not in ((1,), ()):
        raise ValueError(f"{where}: --data {data}: inputs of shape {dataset.input_shape}; the spline lens needs 1-D "
                         "inputs (a .csv with columns x,y, a .npz with arrays x and y of one length, or regression_1d)")
    x = dataset.x.numpy().astype(np.float64).reshape(-1)
    return x, dataset.y.numpy().astype(np.float64).reshape(-1)


def watch(
    model: Path = typer.Argument(None, help="Optional model file (.pt2, .onnx or state dict + spec) of a 1 -> H "
                                 "ReLU -> 1 net to train instead of a sampled init (--width/--init/--scale/--ratio/"
                                 "--seed then only shape the breakpoint histograms)."),
    data: str = typer.Option(None, "--data", metavar="NAME|FILE", help="Regression pairs to train on: a data file "
                             "(.csv with columns x,y, .npz/.pt with arrays x and y) or a built-in set (regression_1d) "
                             "(default: --n-points regime points)."),
    spec: Path = typer.Option(None, help="JSON architecture spec for a state-dict MODEL (default: MODEL.json)"),
    width: int = typer.Option(100, help="Hidden width H."),
    init: str = typer.Option("torch", help="torch, gaussian, he or glorot."),
    scale: float = typer.Option(1.0, help="Init scale (all parameters)."),
    ratio: float = typer.Option(1.0, help="First-/second-layer scale ratio."),
    steps: int = typer.Option(30_000, help="GD steps."),
    lr: str = typer.Option("auto", help="GD learning rate or 'auto' (1/lambda_max(NTK))."),
    frames: int = typer.Option(90, help="Frames of the animation (log-spaced in steps)."),
    n_points: int = typer.Option(8, help="Training points."),
    seed: int = options.seed_option(1, "the init"),
    samples: int = typer.Option(2000, help="Networks sampled per init for the roughness table (histograms: "
                                "samples / 10)."),
    fmt: str = typer.Option(None, "--format", help="mp4 or gif (default: mp4 if ffmpeg is found)."),
    out: Path = options.out_option(),
):
    """Watch training in the spline view (video), with the Hessian spectrum at the end, the n = 12, H = 40
    interpolating-minimum spectrum and breakpoint histograms of the inits against their analytic densities.

    Python: ``run = netatlas.splines.simulate_flow(params, x, y, n_steps=...);
    netatlas.splines.render_flow_video(run, "flow")``
    """
    import matplotlib.pyplot as plt

    from netatlas.experiments.sahs2020._regimes import regime_data
    from netatlas.report import RunDir
    from netatlas.splines import (
        breakpoint_density,
        classify_critical_point,
        expected_roughness,
        hessian_spectrum,
        init_scheme,
        interpolating_minimum,
        loss_hessian,
        plot_breakpoint_histogram,
        plot_spectrum,
        render_flow_video,
        sample_init,
        sampled_roughness,
        simulate_flow,
    )

    learning_rate = lr if lr == "auto" else float(lr)
    net = None
    if model is not None:
        from netatlas.nets import load

        net = load(model, spec)
        if not net.is_shallow_univariate():
            raise ValueError(f"splines watch: {model} is not a 1 -> H ReLU -> 1 network (input shape "
                             f"{net.input_shape}, {net.n_outputs} outputs; `netatlas info {model}` shows why)")
    x, y = _load_pairs(data, "splines watch") if data is not None else regime_data(n_points, 0)
    run = RunDir.create(out, command="splines watch", config={
        "width": width, "init": init, "scale": scale, "ratio": ratio, "steps": steps, "lr": lr, "frames": frames,
        "n_points": len(x), "seed": seed, "samples": samples, "model": None if model is None else str(model),
        "data": None if data is None else str(data)})
    if net is not None:
        params = net
    else:
        scheme = init_scheme(init, width, scale=scale, first_scale=math.sqrt(ratio),
                             second_scale=1 / math.sqrt(ratio))
        params = sample_init(scheme, seed=seed)
    flow = simulate_flow(params, x, y, n_steps=steps, lr=learning_rate, n_records=frames)
    run.save_arrays("flow", times=flow.times, steps=flow.steps, loss=flow.loss, breakpoints=flow.breakpoints,
                    delta_slopes=flow.delta_slopes, grid=flow.grid, function=flow.function, x=x, y=y)
    video = render_flow_video(flow, run.path / "flow", fmt=fmt)
    run.add_media(video, "Training in the spline view: data (green), f (black), breakpoints at (beta, f(beta)) "
                  "sized by |mu| (blue: active to the right, orange: to the left) and their paths over time "
                  "(grey band at the bottom; time runs upward). Frames are log-spaced in steps.",
                  title="Training video")

    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    axes[0].loglog(np.maximum(flow.steps, 1), flow.loss, "k-")
    axes[0].set_xlabel("step")
    axes[0].set_ylabel("loss")
    beta = np.clip(flow.breakpoints, flow.grid[0], flow.grid[-1])
    axes[1].plot(beta, np.maximum(flow.steps, 1), color="0.4", lw=0.6)
    for xi in x:
        axes[1].axvline(xi, color="tab:green", lw=0.8, alpha=0.6)
    axes[1].set_yscale("log")
    axes[1].set_xlabel("breakpoint beta")
    axes[1].set_ylabel("step")
    _tight(fig)
    run.save_figure(fig, "paths", "Loss and breakpoint paths (green lines: data).")

    final = flow.params(-1)
    rows = []
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    for ax, coords in zip(axes, ("spline", "network"), strict=True):
        spec = hessian_spectrum(loss_hessian(final, x, y, coords=coords))
        cp = classify_critical_point(final, x, y, coords=coords, grad_tol=1e-6)
        plot_spectrum(spec, ax=ax, title=f"end of training, {coords} coordinates")
        rows.append({"point": "end of training", "coords": coords, "kind": cp.kind, "grad_norm": cp.grad_norm,
                     "rank": spec.rank, "n_positive": spec.n_positive, "n_negative": spec.n_negative,
                     "n_zero": spec.n_zero, "predicted_n_zero": cp.predicted_n_zero})
    _tight(fig)
    run.save_figure(fig, "hessian_trained", "Hessian spectrum at the end of training (|lambda| sorted; dashed: "
                    "spectral-gap rank).")

    rng = np.random.default_rng(seed)
    x12 = np.linspace(-1, 1, 12)
    y12 = np.sin(3 * x12) + 0.3 * rng.normal(size=12)
    example = interpolating_minimum(rng.uniform(-1.2, 1.2, 40), rng.choice([-1, 1], 40), x12, y12)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    for ax, coords in zip(axes, ("spline", "network"), strict=True):
        spec = hessian_spectrum(loss_hessian(example, x12, y12, coords=coords))
        cp = classify_critical_point(example, x12, y12, coords=coords)
        plot_spectrum(spec, ax=ax, title=f"n = 12, H = 40 interpolating minimum, {coords}")
        rows.append({"point": "n=12, H=40 minimum", "coords": coords, "kind": cp.kind, "grad_norm": cp.grad_norm,
                     "rank": spec.rank, "n_positive": spec.n_positive, "n_negative": spec.n_negative,
                     "n_zero": spec.n_zero, "predicted_n_zero": cp.predicted_n_zero})
    _tight(fig)
    run.save_figure(fig, "hessian_example", "Hessian spectrum at an interpolating minimum, n = 12, H = 40, "
                    "breakpoints uniform on [-1.2, 1.2] (PAPERS: rank 12; 69 zeros; 109 in network coordinates).")
    run.add_table("Hessian spectra", rows)
    run.add_text("About the spectra", "At an exact critical point the rank rule separates genuine eigenvalues from "
                 "round-off by many decades. A network stopped by a step budget is not exactly critical: every "
                 "neuron with a small delta slope and residual sum R_i != 0 then contributes a +-|R_i| pair, so the "
                 "spectrum has no clean gap; classify_critical_point reports 'not critical' in that case.")

    fig, axes = plt.subplots(2, 3, figsize=(15, 8))
    rough_rows = []
    cases = [("torch", {}), ("gaussian", {}), ("glorot", {"bias": True}), ("he", {"bias": True}),
             ("glorot", {}), ("he", {})]
    for ax, (name, kw) in zip(axes.ravel(), cases, strict=True):
        sch = init_scheme(name, width, **kw)
        w, b, _, _ = sample_init(sch, seed=seed, n_networks=max(samples // 10, 2))
        density = breakpoint_density(sch)
        label = f"{name}" + (" with bias" if kw.get("bias") else (" (b = 0)" if name in ("he", "glorot") else ""))
        plot_breakpoint_histogram((-b / w).ravel(), density, ax=ax, title=f"{label}, H = {width}")
        for h in (10, 100, 1000):
            s2 = init_scheme(name, h, **kw)
            exp = expected_roughness(s2, x_range=(-1, 1))
            smp = sampled_roughness(s2, n_networks=samples, seed=seed)
            rough_rows.append({"init": label, "width": h, "E sum mu^2": exp.l2, "sampled": smp.mean()["l2"],
                               "E sum|mu|": exp.l1, "sampled ": smp.mean()["l1"], "E TV(-1,1)": exp.tv,
                               "sampled  ": smp.mean()["tv"]})
    _tight(fig)
    run.save_figure(fig, "breakpoint_densities", f"Breakpoints of {max(samples // 10, 2)} sampled networks per "
                    "init against the analytic "
                    "densities (PyTorch default: 1/4 on [-1, 1], 1/(4 beta^2) outside; Gaussian: Cauchy; zero "
                    "bias: all at 0).")
    run.add_table(f"Expected roughness at init (analytic vs {samples} sampled networks)", rough_rows)
    summary = {"final_loss": float(flow.loss[-1]), "initial_loss": float(flow.loss[0]),
               "steps": int(flow.steps[-1]), "seconds": flow.seconds, "video": video.name, "hessian": rows,
               "n_points": len(x), "model": None if model is None else str(model),
               "data": None if data is None else str(data)}
    run.write_summary(summary)
    start = (f"Width {width}, init {init} (scale {scale}, ratio {ratio})" if net is None else
             f"Model {model} (width {flow.w.shape[1]}; --width {width} and --init {init} shape only the "
             "breakpoint histograms)")
    report = run.write_report("Spline view of training", f"{start}, {len(x)} points"
                              + (f" from {data}" if data is not None else "")
                              + f", GD for {steps} steps (lr {lr}).")
    typer.echo(f"report: {report}")
