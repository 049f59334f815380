"""Training helpers.

- :func:`fit` trains a torch model in place (seeded, deterministic on CPU) and returns a :class:`History`
  (per-epoch curves, test metrics, parameter snapshots that other lenses replay).
- :func:`fit_ssl` and the self-supervised losses (Barlow Twins, NT-Xent) with torch-op augmentations.
"""

from netatlas.train._augment import Augmentation, gaussian_noise, random_affine, random_shift
from netatlas.train._fit import LOSSES, OPTIMIZERS, fit
from netatlas.train._history import History, StepInfo
from netatlas.train._ssl import OBJECTIVES, SSLHistory, barlow_twins_loss, fit_ssl, nt_xent_loss, ssl_loss

__all__ = [
    "LOSSES",
    "OBJECTIVES",
    "OPTIMIZERS",
    "Augmentation",
    "History",
    "SSLHistory",
    "StepInfo",
    "barlow_twins_loss",
    "fit",
    "fit_ssl",
    "gaussian_noise",
    "nt_xent_loss",
    "random_affine",
    "random_shift",
    "ssl_loss",
]
