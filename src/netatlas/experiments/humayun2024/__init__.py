"""Humayun, Balestriero & Baraniuk (ICML 2024), local complexity through training: the study behind
``netatlas dynamics complexity`` (:func:`complexity_study`, :func:`run_complexity`, :func:`phase_table`).
The paper's claims are not in ``netatlas reproduce`` yet, so this package has no claim table. The
recorder it uses, :class:`netatlas.dynamics.ComplexityTracker`, works on any ``fit``.
"""

from netatlas._lazy import attach as _attach

# Names are imported from their module on first use (see netatlas._lazy).
__getattr__, __dir__ = _attach(__name__, {
    "_complexity": ["PRESETS", "ComplexityStudy", "complexity_study", "parse_steps", "phase_table",
        "run_complexity"],
})

__all__ = [
    "PRESETS",
    "ComplexityStudy",
    "complexity_study",
    "parse_steps",
    "phase_table",
    "run_complexity",
]
