"""Training helper: :func:`fit` trains a torch model in place (seeded, deterministic on CPU) and returns
a :class:`History` (per-epoch curves, test metrics, parameter snapshots that other lenses replay)."""

from netatlas.train._fit import LOSSES, OPTIMIZERS, fit
from netatlas.train._history import History, StepInfo

__all__ = ["LOSSES", "OPTIMIZERS", "History", "StepInfo", "fit"]
