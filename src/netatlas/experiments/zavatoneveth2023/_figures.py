"""Report figures of the Zavatone-Veth et al. reproduction (``netatlas reproduce zavatoneveth2023``): drawn
from the sweep records only."""

from __future__ import annotations

import numpy as np

from netatlas.experiments._plot import _plt

__all__ = ["figures"]


def figures(result, parts) -> list:
    """The report figures of one reproduction: a list of (figure, name, caption); ``parts`` maps each
    part to its ``(seed, result)`` records."""
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
