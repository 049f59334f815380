"""Callbacks for :func:`netatlas.train.fit` that record where the gradient comes from during training."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from netatlas.dynamics._gradients import gradient_concentration, per_sample_gradient_norms
from netatlas.dynamics._scores import correct

__all__ = ["CorrectnessRecorder", "GradientTrace", "GradientTracker"]


@dataclass(frozen=True)
class GradientTrace:
    """Per-sample gradient statistics recorded during training.

    Attributes
    ----------
    epochs : ndarray of shape (n_records,)
    concentration : ndarray of shape (n_records,)
        Fraction of samples carrying ``mass`` of the gradient (:func:`gradient_concentration`).
    first_layer_concentration : ndarray of shape (n_records,)
        The same for the gradient of the first layer's parameters alone (the transition zones' share).
    mean_norm : ndarray of shape (n_records,)
        Mean per-sample gradient norm.
    layer_mean_norm : ndarray of shape (n_records, n_layers)
        Mean per-sample gradient norm of each layer's parameters.
    first_layer_weight_norm : ndarray of shape (n_records,)
        Mean ``||w||`` of the first layer's units (the scale that sets the zone width).
    layer_names : tuple of str
    mass : float
    norms : ndarray of shape (n_records, n_samples) or None
        The per-sample norms themselves when ``keep_norms=True``.
    """

    epochs: np.ndarray
    concentration: np.ndarray
    first_layer_concentration: np.ndarray
    mean_norm: np.ndarray
    layer_mean_norm: np.ndarray
    first_layer_weight_norm: np.ndarray
    layer_names: tuple[str, ...]
    mass: float
    norms: np.ndarray | None = None

    def to_dict(self) -> dict:
        out = {k: getattr(self, k) for k in ("epochs", "concentration", "first_layer_concentration", "mean_norm",
                                             "layer_mean_norm", "first_layer_weight_norm", "mass")}
        out["layer_names"] = list(self.layer_names)
        return out


class GradientTracker:
    """A ``fit`` callback recording per-sample gradient norms every ``every`` epochs.

    Parameters
    ----------
    x, y : Tensors
        The samples to track (usually the training set or a fixed subset of it).
    loss : str
        As in :func:`per_sample_gradient_norms` (``"cross_entropy"`` also handles one logit).
    every : int
        Record at epochs divisible by ``every`` (call :meth:`record` yourself for epoch 0).
    mass : float
        Gradient share for the concentration statistic.
    keep_norms : bool
        Also keep every per-sample norm (memory: n_records x n_samples).

    Examples
    --------
    >>> import torch, netatlas
    >>> from netatlas.train import fit
    >>> data = netatlas.data.moons(n=64, seed=0)
    >>> model = netatlas.nets.mlp([2, 8, 2], "tanh", seed=0)
    >>> tracker = GradientTracker(data.x, data.y, every=5)
    >>> tracker.record(model, epoch=0)
    >>> _ = fit(model, data, epochs=10, lr=0.05, callbacks=[tracker])
    >>> trace = tracker.result()
    >>> trace.epochs.tolist(), trace.layer_mean_norm.shape
    ([0, 5, 10], (3, 2))
    """

    def __init__(self, x, y, *, loss: str = "cross_entropy", every: int = 1, mass: float = 0.9,
                 keep_norms: bool = False):
        if every < 1:
            raise ValueError(f"GradientTracker: every must be >= 1, got {every}")
        self.x, self.y = torch.as_tensor(x), torch.as_tensor(y)
        self.loss, self.every, self.mass, self.keep_norms = loss, int(every), float(mass), keep_norms
        self._rows: list[tuple] = []

    def record(self, model, epoch: int) -> None:
        """Record the statistics of ``model`` now, labelled ``epoch``."""
        g = per_sample_gradient_norms(model, self.x, self.y, loss=self.loss)
        first = next(p for name, p in model.named_parameters() if name.endswith("weight"))
        w_norm = float(torch.linalg.vector_norm(first.detach().double(), dim=1).mean())
        self._rows.append((epoch, gradient_concentration(g.total, self.mass),
                           gradient_concentration(g.per_layer[:, 0], self.mass), float(g.total.mean()),
                           g.per_layer.mean(0), w_norm, g.layer_names, g.total if self.keep_norms else None))

    def __call__(self, info) -> None:
        if info.epoch % self.every == 0:
            self.record(info.model, info.epoch)

    def result(self) -> GradientTrace:
        """The recorded statistics as a :class:`GradientTrace`."""
        if not self._rows:
            raise ValueError("GradientTracker.result: nothing recorded yet (pass it to fit(callbacks=[...]))")
        cols = list(zip(*self._rows, strict=True))
        return GradientTrace(np.array(cols[0]), np.array(cols[1]), np.array(cols[2]), np.array(cols[3]),
                             np.stack(cols[4]), np.array(cols[5]), cols[6][0], self.mass,
                             np.stack(cols[7]) if self.keep_norms else None)


class CorrectnessRecorder:
    """A ``fit`` callback recording which samples are classified correctly, for forgetting scores.

    After training, ``recorder.history`` is a (n_records, n_samples) bool array to pass to
    ``score("forgetting", None, x, y, history=recorder.history)``.

    Examples
    --------
    >>> import netatlas
    >>> from netatlas.train import fit
    >>> data = netatlas.data.moons(n=32, seed=0)
    >>> recorder = CorrectnessRecorder(data.x, data.y)
    >>> _ = fit(netatlas.nets.mlp([2, 8, 2], seed=0), data, epochs=4, callbacks=[recorder])
    >>> recorder.history.shape
    (4, 32)
    """

    def __init__(self, x, y, *, every: int = 1):
        if every < 1:
            raise ValueError(f"CorrectnessRecorder: every must be >= 1, got {every}")
        self.x, self.y, self.every = torch.as_tensor(x), torch.as_tensor(y), int(every)
        self._rows: list[np.ndarray] = []

    def __call__(self, info) -> None:
        if info.epoch % self.every == 0:
            with torch.no_grad():
                self._rows.append(correct(info.model, self.x, self.y))

    @property
    def history(self) -> np.ndarray:
        if not self._rows:
            return np.zeros((0, len(self.x)), bool)
        return np.stack(self._rows)
