"""Sahs et al. (2020/2022), shallow univariate ReLU networks as splines: the claim table (:func:`build`)
and the training-regime study behind ``netatlas splines regimes`` (kernel limit, min-TV interpolant,
regime runs). Spline coordinates, initialisation, Hessians and flows are in :mod:`netatlas.splines`.
"""

from netatlas._lazy import attach as _attach

# Names are imported from their module on first use (see netatlas._lazy).
__getattr__, __dir__ = _attach(__name__, {
    "_claims": ["PAPER", "TITLE", "run_part", "configs", "build", "PARTS"],
    "_regimes": ["KernelFit", "kernel_limit", "min_tv_interpolant", "natural_cubic_spline", "linear_interpolant",
        "regime_data", "regime_init", "regime_run", "REGIME_DEFAULTS"],
})

__all__ = [
    "PAPER",
    "PARTS",
    "REGIME_DEFAULTS",
    "TITLE",
    "build",
    "configs",
    "kernel_limit",
    "KernelFit",
    "linear_interpolant",
    "min_tv_interpolant",
    "natural_cubic_spline",
    "regime_data",
    "regime_init",
    "regime_run",
    "run_part",
]
