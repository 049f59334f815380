"""Zavatone-Veth et al. (2023), networks magnify areas near decision boundaries: the claim table
(:func:`build`), the toy and image magnification studies behind ``netatlas magnify toy|images`` and, in
:mod:`~netatlas.experiments.zavatoneveth2023.ssl`, the self-supervised study behind ``netatlas magnify ssl``.
The metric itself (volume element, effective volume, curvature, infinite width) is in :mod:`netatlas.metric`.
"""

from netatlas._lazy import attach as _attach

# Names are imported from their module on first use (see netatlas._lazy).
__getattr__, __dir__ = _attach(__name__, {
    "_claims": ["PAPER", "TITLE", "configs", "run_part", "build"],
    "_magnification": ["TOY_CONFIGS", "ToyRun", "ToyMagnification", "ImageModelRun", "ImageMagnification",
        "toy_magnification", "image_magnification", "magnification_stats", "small_cnn"],
}, submodules=("ssl",))

__all__ = [
    "PAPER",
    "TITLE",
    "TOY_CONFIGS",
    "build",
    "configs",
    "image_magnification",
    "ImageMagnification",
    "ImageModelRun",
    "magnification_stats",
    "run_part",
    "small_cnn",
    "toy_magnification",
    "ToyMagnification",
    "ToyRun",
    "ssl",
]
