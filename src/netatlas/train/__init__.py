"""Training helpers.

- :data:`LOSSES`, :func:`per_sample_loss` and :func:`mean_loss`: the one loss registry (one meaning per
  name) that :func:`fit` minimises and :mod:`netatlas.dynamics` differentiates per sample.
- :func:`fit` trains a torch model in place (seeded, deterministic on CPU) and returns a :class:`History`
  (per-epoch curves, test metrics, parameter snapshots that other lenses replay).
- :func:`fit_ssl` and the self-supervised losses (Barlow Twins, NT-Xent) with torch-op augmentations.
"""

from netatlas.train._augment import Augmentation, gaussian_noise, random_affine, random_shift
from netatlas.train._fit import OPTIMIZERS, fit
from netatlas.train._history import History, StepInfo
from netatlas.train._losses import LOSSES, mean_loss, per_sample_loss
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
    "mean_loss",
    "nt_xent_loss",
    "per_sample_loss",
    "random_affine",
    "random_shift",
    "ssl_loss",
]
