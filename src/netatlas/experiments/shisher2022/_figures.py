"""Report figures of the Shisher et al. reproduction (``netatlas reproduce shisher2022``): drawn from the sweep
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
