"""Report figures of the Sahs et al. reproduction (``netatlas reproduce sahs2020``): drawn from the sweep
records only."""

from __future__ import annotations

import numpy as np

from netatlas.experiments._plot import _plt, _settings

__all__ = ["figures"]


def figures(result, parts) -> list:
    """The report figures of one reproduction: a list of (figure, name, caption); ``parts`` maps each
    part to its ``(seed, result)`` records."""
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
