"""Shisher, Ornee & Sun (2022), local geometric analysis of feature extraction: the claim table
(:func:`build`) and the validation sweep behind ``netatlas lowrank validate``. DTMs, optima and
comparisons for any layer are in :mod:`netatlas.lowrank`.
"""

from netatlas._lazy import attach as _attach

# Names are imported from their module on first use (see netatlas._lazy).
__getattr__, __dir__ = _attach(__name__, {
    "_claims": ["PAPER", "TITLE", "PARTS", "configs", "run_part", "build"],
    "_validate": ["ValidationConfig", "ValidationResult", "validate"],
})

__all__ = [
    "PAPER",
    "PARTS",
    "TITLE",
    "build",
    "configs",
    "run_part",
    "validate",
    "ValidationConfig",
    "ValidationResult",
]
