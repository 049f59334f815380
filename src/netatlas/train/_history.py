"""What :func:`netatlas.train.fit` returns (:class:`History`) and passes to callbacks (:class:`StepInfo`)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

__all__ = ["History", "StepInfo"]


@dataclass(frozen=True)
class StepInfo:
    """What a callback of :func:`netatlas.train.fit` sees at the end of each epoch.

    Attributes
    ----------
    epoch : int
        Epochs completed (1 after the first).
    step : int
        Optimizer updates completed so far.
    loss : float
        Mean training loss over this epoch's batches (each computed before its update).
    accuracy : float or None
        Training accuracy over this epoch's batches (classification only).
    test_loss, test_accuracy : float or None
        On the test data at the end of the epoch, when test data was given.
    model : torch.nn.Module
        The model being trained (live, not a copy).
    """

    epoch: int
    step: int
    loss: float
    accuracy: float | None
    test_loss: float | None
    test_accuracy: float | None
    model: torch.nn.Module


@dataclass(frozen=True)
class History:
    """The record of one :func:`netatlas.train.fit` run.

    Attributes
    ----------
    loss : ndarray of shape (n_epochs,)
        Mean training loss of each epoch, over its batches, each computed before its update
        (for full batch: the loss at the start of the epoch).
    accuracy : ndarray of shape (n_epochs,) or None
        Training accuracy of each epoch, same convention; ``None`` for regression.
    step_loss : ndarray of shape (n_steps,)
        The loss of every batch, in update order.
    test_loss, test_accuracy : ndarray of shape (n_epochs,) or None
        Evaluated (eval mode, no gradient) at the end of every epoch when test data was given.
    final_loss : float
        Training loss on the whole training set after the last update (eval mode).
    final_accuracy : float or None
        Training accuracy after the last update (classification only).
    snapshots : tuple of (int, dict[str, Tensor])
        ``(step, state_dict)`` pairs: detached copies of the model's ``state_dict()`` after ``step``
        updates (step 0 = before training), in increasing step order.
    n_epochs, n_steps : int
        Epochs and updates actually run (fewer than asked when a callback stopped training).
    stopped_early : bool
        True when a callback returned True.
    wall_time : float
        Seconds spent in :func:`fit`.
    settings : dict
        The arguments of the run (loss, optimizer, lr, epochs, batch_size, weight_decay, seed, ...).

    Examples
    --------
    >>> import torch
    >>> from netatlas.train import fit
    >>> model = torch.nn.Linear(2, 2)
    >>> x, y = torch.randn(8, 2, generator=torch.Generator().manual_seed(0)), torch.tensor([0, 1] * 4)
    >>> history = fit(model, (x, y), epochs=3, snapshot_steps=[0, 3])
    >>> history.loss.shape, [step for step, _ in history.snapshots], history.n_steps
    ((3,), [0, 3], 3)
    >>> sorted(history.to_dict())[:3]
    ['accuracy', 'final_accuracy', 'final_loss']
    """

    loss: np.ndarray
    accuracy: np.ndarray | None
    step_loss: np.ndarray
    test_loss: np.ndarray | None
    test_accuracy: np.ndarray | None
    final_loss: float
    final_accuracy: float | None
    snapshots: tuple = ()
    n_epochs: int = 0
    n_steps: int = 0
    stopped_early: bool = False
    wall_time: float = 0.0
    settings: dict = field(default_factory=dict)

    @property
    def snapshot_steps(self) -> list[int]:
        """The steps at which snapshots were taken."""
        return [step for step, _ in self.snapshots]

    def snapshot(self, step: int) -> dict[str, torch.Tensor]:
        """The stored ``state_dict`` copy taken after ``step`` updates (KeyError if none was taken)."""
        for taken, state in self.snapshots:
            if taken == step:
                return state
        raise KeyError(f"History.snapshot: no snapshot at step {step}; taken at {self.snapshot_steps}.")

    def to_dict(self) -> dict:
        """JSON-safe summary: per-epoch curves as lists, the snapshot steps (not the tensors), settings."""

        def as_list(array):
            return None if array is None else [float(v) for v in array]

        return {
            "loss": as_list(self.loss),
            "accuracy": as_list(self.accuracy),
            "test_loss": as_list(self.test_loss),
            "test_accuracy": as_list(self.test_accuracy),
            "final_loss": float(self.final_loss),
            "final_accuracy": None if self.final_accuracy is None else float(self.final_accuracy),
            "snapshot_steps": self.snapshot_steps,
            "n_epochs": self.n_epochs,
            "n_steps": self.n_steps,
            "stopped_early": self.stopped_early,
            "wall_time": self.wall_time,
            "settings": dict(self.settings),
        }

    def __repr__(self) -> str:
        acc = "" if self.final_accuracy is None else f", final_accuracy={self.final_accuracy:.4g}"
        return (f"History(n_epochs={self.n_epochs}, n_steps={self.n_steps}, final_loss={self.final_loss:.4g}"
                f"{acc}, n_snapshots={len(self.snapshots)}, wall_time={self.wall_time:.3g}s)")
