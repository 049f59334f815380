"""Report figures of the van den Berg reproduction (``netatlas reproduce vandenberg2016``): drawn from the sweep
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
