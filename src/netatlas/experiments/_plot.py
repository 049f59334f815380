"""Figures of the paper reproductions: ``figures(result)`` -> list of (figure, name, caption).

Only the records of the sweep are plotted (no computation here)."""

from __future__ import annotations

import numpy as np

__all__ = ["figures"]


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _parts(result):
    out = {}
    for r in result.records:
        if r.get("status") == "done":
            out.setdefault(r["config"].get("part", "all"), []).append((r["config"]["seed"], r["result"]))
    return out


def figures(result) -> list:
    """The figures of a :class:`~netatlas.experiments.Reproduction` (none where its parts failed)."""
    fn = {"sahs2020": _sahs, "vandenberg2016": _vandenberg, "zavatoneveth2023": _zavatone,
          "shisher2022": _shisher}[result.paper]
    try:
        return fn(result, _parts(result))
    except (KeyError, IndexError, ValueError, TypeError) as exc:  # a figure must never sink the report
        import logging

        logging.getLogger(__name__).warning("figures for %s incomplete: %s", result.paper, exc)
        return []


def _settings(result) -> str:
    s = result.settings
    return f"seeds {s['seeds']}, {'quick' if s.get('quick') else 'full'} run"


# -- Sahs ------------------------------------------------------------------------------------------------
def _sahs(result, parts):
    plt = _plt()
    out = []
    if "kernel" in parts:
        seed, k = parts["kernel"][0]
        c = k["curves"]
        fig, axes = plt.subplots(1, 2, figsize=(11, 4))
        ax = axes[0]
        ax.plot(c["grid"], c["cubic"], "k-", lw=2, label="natural cubic spline (scipy)")
        ax.plot(c["grid"], c["linear"], "k:", label="linear interpolant")
        ax.plot(c["grid"], c["kernel"], "C0--", label=f"min-norm fit, H = {k['widths'][-1]}")
        ax.plot(c["grid"], c["small_init"], "C3-", alpha=0.8, label="small init (x0.01), trained")
        ax.plot(k["data"]["x"], k["data"]["y"], "ko")
        ax.set_xlabel("x")
        ax.legend(fontsize=8)
        ax.set_title(f"T9 kernel vs adaptive regime (seed {seed})")
        ax = axes[1]
        for s, r in parts["kernel"]:
            ax.loglog([d["width"] for d in r["deviation"]], [d["vs_cubic"] for d in r["deviation"]], "o-",
                      label=f"seed {s}")
        ax.set_xlabel("H (breakpoints uniform on [-2, 2])")
        ax.set_ylabel("max |f - natural cubic spline| on the data range")
        ax.legend(fontsize=8)
        out.append((fig, "sahs_kernel_limit", "T9. Left: the minimum-norm spline on fixed random breakpoints "
                    "(largest H), scipy's natural cubic spline, the linear interpolant and a network trained by "
                    "GD from a x0.01 PyTorch-default init (H = 64). Right: deviation from the cubic spline vs H, "
                    f"per seed. {_settings(result)}."))
    if "hessian" in parts:
        seed, h = parts["hessian"][0]
        fig, ax = plt.subplots(figsize=(6, 4))
        for coords, style in (("spline", "C0o"), ("network", "C1x")):
            ev = np.sort(np.abs(h[coords]["eigenvalues"]))[::-1]
            ax.semilogy(np.arange(1, ev.size + 1), np.maximum(ev, 1e-30), style, ms=3,
                        label=f"{coords} coords (rank {h[coords]['rank']}, zeros {h[coords]['n_zero']})")
        ax.axvline(12.5, color="k", lw=0.5)
        ax.set_xlabel("index")
        ax.set_ylabel("|eigenvalue|")
        ax.legend(fontsize=8)
        out.append((fig, "sahs_hessian_spectrum", "T5. Sorted |eigenvalues| of the loss Hessian at an "
                    f"interpolating minimum (n = 12, H = 40, seed {seed}): the spectral gap after 12 separates "
                    "the rank from the flat directions (69 in spline, 109 in network coordinates)."))
    if "init" in parts:
        rows = [e for _, r in parts["init"] for e in r["roughness"]]
        labels = sorted({(e["init"], e["width"]) for e in rows})
        fig, ax = plt.subplots(figsize=(7, 4))
        for i, key in enumerate(labels):
            sel = [e for e in rows if (e["init"], e["width"]) == key]
            ax.plot([i] * len(sel), [e["l2_mean"] for e in sel], "C0o", ms=4)
            ax.plot([i - 0.3, i + 0.3], [sel[0]["l2_stated"]] * 2, "k-")
        ax.set_xticks(range(len(labels)), [f"{a}\nH={b}" for a, b in labels], fontsize=8)
        ax.set_yscale("log")
        ax.set_ylabel("sum mu^2 at init")
        out.append((fig, "sahs_roughness", "T4. Monte-Carlo mean of sum mu^2 at initialisation per seed (dots) "
                    "against the stated expectation (bars): 1/9 (PyTorch), 4H/(H+1)^2 (Glorot, b = 0), 4 (He, "
                    f"b = 0). {_settings(result)}."))
    return out


# -- van den Berg ------------------------------------------------------------------------------------------
def _vandenberg(result, parts):
    plt = _plt()
    out = []
    if "c5" in parts:
        fig, ax = plt.subplots(figsize=(6, 4))
        for s, r in parts["c5"]:
            t = r["table"]
            ax.loglog(t["w_norm"], np.mean(t["measured"], axis=0), "o", alpha=0.6, label=f"measured (seed {s})")
        t = parts["c5"][0][1]["table"]
        ax.loglog(t["w_norm"], t["predicted"], "k-", label="N rho_perp(0)/||w||")
        ax.loglog(t["w_norm"], t["expected"], "k--", label="exact expectation")
        ax.set_xlabel("||w||")
        ax.set_ylabel("sum_i sigma'(w.x_i)")
        ax.legend(fontsize=8)
        out.append((fig, "vandenberg_c5", "C5. Gradient mass of one sigmoid unit vs weight scale, N = 2000 "
                    f"uniform samples on [-1, 1]^2, b = 0, w along the diagonal. {_settings(result)}."))
    if "regions" in parts:
        fig, ax = plt.subplots(figsize=(6, 4))
        for s, r in parts["regions"]:
            hr = r["hanin_rolnick"]
            ax.plot(hr["n_neurons"], hr["pieces"], "o-", label=f"seed {s}")
        ax.set_xlabel("number of hidden neurons (depth 2)")
        ax.set_ylabel("linear pieces along a line")
        ax.legend(fontsize=8)
        out.append((fig, "vandenberg_line_pieces", "Hanin & Rolnick: exact number of linear pieces along a "
                    "fixed segment of length 2 through the origin for random ReLU nets [2, w, w, 1] at "
                    f"PyTorch-default init, against 2w neurons. {_settings(result)}."))
    if "c7" in parts:
        seed, r = parts["c7"][0]
        if "figure" in r:
            f = r["figure"]
            fig, ax = plt.subplots(figsize=(5, 5))
            for poly in f["polygons"]:
                p = np.asarray(poly)
                ax.fill(p[:, 0], p[:, 1], alpha=0.5, edgecolor="k", lw=0.5)
            ax.set_aspect("equal")
            ax.set_title(f"{len(f['polygons'])} regions of 8 lines (exact)")
            out.append((fig, "vandenberg_c7_arrangement", f"C7. Exact partition by netatlas.regions of a "
                        f"one-hidden-layer ReLU net with 8 units (seed {seed}), window "
                        f"[-{f['size']}, {f['size']}]^2 holding every vertex."))
    return out


# -- Zavatone-Veth -----------------------------------------------------------------------------------------
def _zavatone(result, parts):
    plt = _plt()
    out = []
    if "closed" in parts:
        seed, r = parts["closed"][0]
        c = r["curve"]
        fig, axes = plt.subplots(1, 2, figsize=(10, 4))
        axes[0].plot(c["r"], c["volume"], "k-", label="closed form")
        axes[0].plot(c["r"], c["volume_mc"], "C0o", ms=3, label=f"random net, width {r['mc_width']}")
        axes[0].set_xlabel("r = |x|")
        axes[0].set_ylabel("sqrt(det g)")
        axes[0].legend(fontsize=8)
        axes[1].plot(c["r"], c["curvature"], "k-", label="closed form")
        axes[1].plot(c["r"], c["curvature_mc"], "C0o", ms=3, label=f"random net, width {r['mc_width']}")
        axes[1].set_xlabel("r = |x|")
        axes[1].set_ylabel("scalar curvature R")
        axes[1].legend(fontsize=8)
        out.append((fig, "zavatone_infinite_width", "Erf network, sigma_w = sigma_b = 1, d = 2: infinite-width "
                    "volume element and curvature (netatlas.metric.infinite_width) against one random network "
                    f"(netatlas.metric on random_features, seed {seed}) along a ray."))
    if "toy" in parts:
        for cfg in sorted({r["config"] for _, r in parts["toy"]}):
            seed, r = next((s, r) for s, r in parts["toy"] if r["config"] == cfg)
            if "grid" not in r:
                continue
            g = r["grid"]
            fig, axes = plt.subplots(1, 2, figsize=(10, 4.4))
            ext = g["extent"]
            for ax, key, title in ((axes[0], "log_volume_before", "init"), (axes[1], "log_volume_after", "trained")):
                im = ax.imshow(np.asarray(g[key], dtype=float), origin="lower", extent=ext, cmap="viridis")
                ax.contour(np.asarray(g["decision_after"], dtype=float), levels=[0], colors="w", extent=ext)
                ax.set_title(f"{cfg}: log sqrt(det g), {title}")
                fig.colorbar(im, ax=ax, fraction=0.046)
            out.append((fig, f"zavatone_{cfg}", f"Log volume element of the scaled last hidden layer on the input "
                        f"plane at initialisation and after training ({cfg}, seed {seed}); white: the trained "
                        "decision boundary. Magnification near the boundary shows as a bright band along it."))
    return out


# -- Shisher -----------------------------------------------------------------------------------------------
def _shisher(result, parts):
    plt = _plt()
    out = []
    if "validate" in parts:
        fig, ax = plt.subplots(figsize=(6.5, 4.5))
        first = parts["validate"][0][0]
        for s, r in parts["validate"]:
            c = r["curves"]
            for key, style, label in (("softmax", "C0o-", "softmax, trained"),
                                      ("softmax_exact", "C1s--", "softmax, exact optimum"),
                                      ("hidden_sigmoid", "C2^:", "hidden sigmoid")):
                ax.loglog(c[key]["eps"], c[key]["product_error"], style, alpha=0.6, label=label if s == first else None)
        c = parts["validate"][0][1]["curves"]["softmax"]
        e = np.asarray(c["eps"])
        ax.loglog(e, e / e[0] * c["product_error"][0], "k-", lw=0.7, label="slope 1")
        ax.set_xlabel("eps = ||DTM||_F of the joint (hidden: of its own setup)")
        ax.set_ylabel("relative product error vs rank-k theory")
        ax.legend(fontsize=8)
        out.append((fig, "shisher_validation", "Product error ||Theta - B_k|| / ||B_k|| of trained networks "
                    "against the local-geometry optimum, vs eps, one line per seed "
                    "(netatlas.experiments.shisher2022.validate: "
                    f"|X| = 24, |Y| = 8, k = 2). {_settings(result)}."))
    return out
