"""Local complexity through training (Humayun, Balestriero & Baraniuk, ICML 2024): a ``fit`` callback
that records exact and sampled local complexity at fixed points and planes. The study behind
``netatlas dynamics complexity`` (MLPs trained from seeds, curves, phase table) is in
:mod:`netatlas.experiments.humayun2024`.

At each recorded step and for each point set (train, test, random) the tracker stores, per point and
plane: the exact number of linear regions meeting the disc of radius r (``exact``), the exact number
of neurons whose hyperplane crosses it (``exact_neurons``) and the sampled estimator's neuron count
(``sampled``, vertices ``p +- r d1, p +- r d2``); see :mod:`netatlas.regions._complexity`.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from netatlas.regions import MAX_REGIONS, exact_counts, hyperplanes_crossing, random_directions

__all__ = ["ComplexityTrace", "ComplexityTracker"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ComplexityTrace:
    """Local complexity recorded during one training run.

    Attributes
    ----------
    steps : ndarray of shape (R,)
        Optimizer steps at the records (0 = before training).
    exact, exact_neurons, sampled : dict of str -> ndarray of shape (R, n_points, n_planes)
        Per point set: regions meeting the disc, neurons crossing it (exact), and the sampled
        estimator (neurons whose sign changes over the cross-polytope's vertices).
    train_loss, train_accuracy, test_loss, test_accuracy : ndarray of shape (R,)
    radius : float
    """

    steps: np.ndarray
    exact: dict
    exact_neurons: dict
    sampled: dict
    train_loss: np.ndarray
    train_accuracy: np.ndarray
    test_loss: np.ndarray
    test_accuracy: np.ndarray
    radius: float

    @property
    def sets(self) -> tuple[str, ...]:
        return tuple(self.exact)

    def to_dict(self) -> dict:
        out = {"steps": self.steps, "radius": self.radius, "train_loss": self.train_loss,
               "train_accuracy": self.train_accuracy, "test_loss": self.test_loss,
               "test_accuracy": self.test_accuracy}
        for kind in ("exact", "exact_neurons", "sampled"):
            out[kind] = {k: v.mean(axis=(1, 2)) for k, v in getattr(self, kind).items()}
        return out


class ComplexityTracker:
    """A ``fit`` callback recording local complexity at chosen steps.

    Parameters
    ----------
    points : dict of str -> array of shape (n, *input_shape)
        Named point sets (e.g. ``{"train": ..., "test": ..., "random": ...}``).
    radius : float
    steps : iterable of int
        Steps to record at. ``fit`` calls back at the end of each epoch, so a step is recorded at the
        first epoch end that reaches it (the actual step is stored); training stops after the last.
        Record step 0 yourself with :meth:`record` before calling ``fit``.
    n_planes : int
        Random planes per point, fixed for the whole run (seeded by ``seed``).
    train, test : (x, y) pairs, optional
        Evaluated (cross-entropy loss, accuracy) at each record.
    client : dask.distributed.Client, optional
        Passed to :func:`netatlas.regions.exact_counts`.
    max_regions : int or None
        The most regions one disc's square may hold (default ``netatlas.regions.MAX_REGIONS``);
        a record that would pass it stops training with :class:`~netatlas.regions.RegionLimitError`.
    memory_budget : int, str or None
        As in :func:`netatlas.regions.local_complexity`.

    Examples
    --------
    >>> import netatlas
    >>> from netatlas.train import fit
    >>> data = netatlas.data.moons(n=64, seed=0)
    >>> model = netatlas.nets.mlp([2, 16, 16, 2], seed=0)
    >>> tracker = ComplexityTracker({"train": data.x[:8]}, 0.2, steps=[0, 5, 10], train=(data.x, data.y))
    >>> tracker.record(model, 0)
    >>> _ = fit(model, data, epochs=100, lr=0.02, callbacks=[tracker])
    >>> trace = tracker.result()
    >>> trace.steps.tolist(), trace.exact["train"].shape
    ([0, 5, 10], (3, 8, 1))
    """

    def __init__(self, points: dict, radius: float, *, steps, n_planes: int = 1, seed: int = 0, train=None,
                 test=None, client=None, max_regions: int | None = MAX_REGIONS, memory_budget="auto"):
        if not points:
            raise ValueError("ComplexityTracker: points must be a non-empty dict of name -> array")
        self.points = {k: np.asarray(torch.as_tensor(v).detach().double().flatten(1)) for k, v in points.items()}
        self.radius = float(radius)
        self.steps = sorted({int(s) for s in steps})
        if not self.steps or self.steps[0] < 0:
            raise ValueError(f"ComplexityTracker: steps must be non-negative integers; got {steps!r}")
        self.directions = {k: random_directions(len(v), n_planes, v.shape[1], seed=seed + i)
                           for i, (k, v) in enumerate(self.points.items())}
        self.train, self.test, self.client = train, test, client
        self.max_regions, self.memory_budget = max_regions, memory_budget
        self._rows: list[dict] = []
        self._next = 0  # index into self.steps of the next step to record

    def record(self, model, step: int) -> None:
        """Record everything for ``model`` now, labelled ``step``."""
        from netatlas.nets import from_torch

        net = from_torch(model) if isinstance(model, torch.nn.Module) else model
        row: dict = {"step": int(step), "exact": {}, "exact_neurons": {}, "sampled": {}}
        for name, pts in self.points.items():
            regions, crossing = exact_counts(net, pts, self.radius, directions=self.directions[name],
                                             client=self.client, max_regions=self.max_regions,
                                             memory_budget=self.memory_budget)
            row["exact"][name] = regions
            row["exact_neurons"][name] = crossing.sum(-1)
            row["sampled"][name] = hyperplanes_crossing(net, pts, self.radius, directions=self.directions[name],
                                                        method="sampled").sum(-1)
        row["train"] = _evaluate(model, self.train)
        row["test"] = _evaluate(model, self.test)
        self._rows.append(row)
        while self._next < len(self.steps) and self.steps[self._next] <= step:
            self._next += 1
        logger.info("complexity: step %d, exact %s", step,
                    {k: float(v.mean()) for k, v in row["exact"].items()})

    def __call__(self, info) -> bool:
        if self._next < len(self.steps) and info.step >= self.steps[self._next]:
            self.record(info.model, info.step)
        return self._next >= len(self.steps)

    def result(self) -> ComplexityTrace:
        """The records as a :class:`ComplexityTrace`."""
        if not self._rows:
            raise ValueError("ComplexityTracker.result: nothing recorded yet (pass it to fit(callbacks=[...]))")
        rows = self._rows

        def stack(kind):
            return {k: np.stack([r[kind][k] for r in rows]) for k in self.points}

        ev = {part: np.array([r[part] for r in rows], dtype=np.float64).reshape(len(rows), 2)
              for part in ("train", "test")}
        return ComplexityTrace(np.array([r["step"] for r in rows]), stack("exact"), stack("exact_neurons"),
                               stack("sampled"), ev["train"][:, 0], ev["train"][:, 1], ev["test"][:, 0],
                               ev["test"][:, 1], self.radius)


def _evaluate(model, pair):
    if pair is None:
        return (math.nan, math.nan)
    x, y = (torch.as_tensor(t) for t in pair)
    param = next(model.parameters())
    was = model.training
    model.eval()
    with torch.no_grad():
        out = model(x.to(param.dtype))
    model.train(was)
    y = y.long()
    return (float(F.cross_entropy(out, y)), float((out.argmax(1) == y).double().mean()))
