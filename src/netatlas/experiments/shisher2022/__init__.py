"""Shisher, Ornee & Sun (2022), local geometric analysis of feature extraction: the claim table
(:func:`build`), the validation sweep behind ``netatlas lowrank validate`` and the networks it trains
(:func:`train_softmax_networks`, :func:`train_mmse_networks`, :func:`train_hidden_networks`, the exact
optimum :func:`exact_softmax_optimum`, an L-BFGS cross-check). DTMs, optima and comparisons for any layer
are in :mod:`netatlas.lowrank`.
"""

from netatlas._lazy import attach as _attach

# Names are imported from their module on first use (see netatlas._lazy).
__getattr__, __dir__ = _attach(__name__, {
    "_claims": ["PAPER", "TITLE", "PARTS", "configs", "run_part", "build"],
    "_validate": ["ValidationConfig", "ValidationResult", "validate"],
    "_training": ["TrainedLayer", "exact_softmax_optimum", "hidden_network", "hidden_setup", "softmax_network",
        "train_hidden_networks", "train_mmse_networks", "train_softmax_network", "train_softmax_network_lbfgs",
        "train_softmax_networks"],
})

__all__ = [
    "PAPER",
    "PARTS",
    "TITLE",
    "TrainedLayer",
    "build",
    "configs",
    "exact_softmax_optimum",
    "hidden_network",
    "hidden_setup",
    "run_part",
    "softmax_network",
    "train_hidden_networks",
    "train_mmse_networks",
    "train_softmax_network",
    "train_softmax_network_lbfgs",
    "train_softmax_networks",
    "validate",
    "ValidationConfig",
    "ValidationResult",
]
