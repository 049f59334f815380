"""Paper reproductions: one package per paper, each running its experiments through the lenses over
seeds (via :func:`netatlas.sweep.run`) and comparing every claim of its page (docs/papers/<paper>.md)
with the measurement; each package also holds the paper's studies and the commands that run them.

    result = netatlas.experiments.reproduce("sahs2020", "runs/sahs", quick=True)
    [(c.id, c.holds) for c in result.claims]

Modules: :mod:`~netatlas.experiments.vandenberg2016`, :mod:`~netatlas.experiments.sahs2020`,
:mod:`~netatlas.experiments.zavatoneveth2023`, :mod:`~netatlas.experiments.shisher2022`; and
:mod:`~netatlas.experiments.humayun2024`, a paper's study that ``reproduce`` does not cover yet (no claims).
"""

from netatlas._lazy import attach as _attach

# Names are imported from their module on first use (see netatlas._lazy).
__getattr__, __dir__ = _attach(__name__, {
    "_claims": ["Claim", "Reproduction", "describe", "not_measured", "spread"],
    "_reproduce": ["PAPERS", "default_seeds", "reproduce", "write_report"],
})

__all__ = ["PAPERS", "Claim", "Reproduction", "default_seeds", "describe", "not_measured", "reproduce", "spread",
           "write_report"]
