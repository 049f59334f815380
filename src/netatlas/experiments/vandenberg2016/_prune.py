"""The pruning study: train on the kept fraction of the data for each scoring method, seed and fraction.

One sweep config is ``(dataset, seed, method)``: it trains (or reuses, per process) a *scoring run* on the
full training set, scores every sample with ``method``, and for each kept fraction trains a fresh net on
the kept samples and measures test accuracy and wall time. Configs are independent, so
``netatlas.sweep.run`` can resume and distribute them.

Protocol (the same for every method; see :data:`PRESETS` for the per-data-set settings):

- the scoring run trains the architecture below on all training samples for ``epochs`` epochs and
  records per-epoch correctness (forgetting); model-based scores use its snapshot after
  ``score_at x epochs`` epochs (early in training, as EL2N and GraNd prescribe); the full-data
  reference is a separate run trained exactly like the pruned ones;
- :func:`netatlas.dynamics.subsample` keeps the highest-scoring ``fraction`` of each class
  (class-balanced; ``keep`` can flip it), ties broken at random;
- the pruned run trains a freshly initialised net (same seed, same init as the scoring run) on the kept
  samples for the same number of epochs with the same batch size, so its cost is proportional to the
  fraction kept; test accuracy is on the data set's full test split.
"""

from __future__ import annotations

import functools
import logging
import math
import time
from dataclasses import dataclass

import numpy as np

from netatlas._threads import torch_threads

__all__ = ["PRESETS", "PruneStudy", "prune_config", "prune_one", "summarize_prune"]

logger = logging.getLogger(__name__)

PRESETS = {
    # name: loader kwargs, hidden widths, epochs, lr, batch size
    "moons": dict(data=dict(n=400, noise=0.2), widths=[32, 32], epochs=40, lr=1e-2, batch_size=32),
    "circles": dict(data=dict(n=400, noise=0.1), widths=[32, 32], epochs=40, lr=1e-2, batch_size=32),
    "xor": dict(data=dict(n=400), widths=[32, 32], epochs=40, lr=1e-2, batch_size=32),
    "spirals": dict(data=dict(n=400), widths=[64, 64], epochs=100, lr=1e-2, batch_size=32),
    "sinusoid": dict(data=dict(n=400), widths=[32, 32], epochs=40, lr=1e-2, batch_size=32),
    "digits": dict(data=dict(flatten=True), widths=[64], epochs=20, lr=1e-2, batch_size=64),
    "mnist_sample": dict(data=dict(n=1500, flatten=True), widths=[64], epochs=10, lr=2e-3, batch_size=64),
}
"""Per-data-set settings of the pruning study (``--full`` uses the whole MNIST sample)."""


def prune_config(dataset: str, *, full: bool = False) -> dict:
    """The preset for ``dataset`` as a plain dict (``full=True``: the whole MNIST sample, longer runs)."""
    if dataset not in PRESETS:
        raise ValueError(f"prune: unknown data set {dataset!r}; choose one of {sorted(PRESETS)}")
    preset = {k: (dict(v) if isinstance(v, dict) else v) for k, v in PRESETS[dataset].items()}
    if full and dataset == "mnist_sample":
        preset["data"].pop("n")
        preset["epochs"] = 20
        preset["lr"] = 1e-3
    return preset


@functools.lru_cache(maxsize=4)
def _scoring_run(dataset: str, data_kwargs: str, widths: tuple, activation: str, epochs: int, lr: float,
                 batch_size: int, score_at: float, seed: int):
    """Train on the full data once per process and (dataset, seed): the snapshot for scoring, the
    correctness history for forgetting, and the full-data reference numbers."""
    import json

    from netatlas.data import load
    from netatlas.dynamics import CorrectnessRecorder
    from netatlas.nets import mlp
    from netatlas.train import fit

    data = load(dataset, seed=seed, **json.loads(data_kwargs))
    sizes = [int(np.prod(data.x.shape[1:])), *widths, int(data.n_classes)]
    model = mlp(sizes, activation, seed=seed)
    recorder = CorrectnessRecorder(data.x, data.y)
    steps_per_epoch = math.ceil(len(data.x) / batch_size)
    score_step = max(1, round(score_at * epochs)) * steps_per_epoch
    history = fit(model, data, lr=lr, epochs=epochs, batch_size=batch_size, seed=seed, callbacks=[recorder],
                  snapshot_steps=[score_step], eval_every=epochs, progress=False)
    scorer = mlp(sizes, activation, seed=seed)
    scorer.load_state_dict(history.snapshots[0][1])
    # the full-data reference, trained exactly like the pruned runs (no callbacks, no snapshots)
    reference = fit(mlp(sizes, activation, seed=seed), data, lr=lr, epochs=epochs, batch_size=batch_size, seed=seed,
                    eval_every=epochs, progress=False)
    return data, sizes, scorer, recorder.history, float(reference.test_accuracy[-1]), reference.wall_time


def prune_one(config: dict) -> dict:
    """One sweep config: ``{"dataset", "seed", "method", "fractions", ...}`` -> accuracies and times.

    Keys: ``dataset``, ``seed``, ``method`` (a :data:`netatlas.dynamics.METHODS` name), ``fractions``
    (list), ``activation`` (default relu), ``keep`` ("high"), ``score_at`` (0.25), ``full`` (False), and
    optional overrides of the preset: ``data`` (loader kwargs), ``epochs``, ``widths``, ``lr``,
    ``batch_size``.

    Returns
    -------
    dict
        ``test_accuracy``, ``train_seconds``, ``n_kept`` (one per fraction), ``score_seconds``,
        ``full_test_accuracy``, ``full_train_seconds``, plus the config's settings.

    Examples
    --------
    >>> r = prune_one({"dataset": "moons", "seed": 0, "method": "random", "fractions": [0.5], "epochs": 2})
    >>> sorted(r)[:3], len(r["test_accuracy"])
    (['activation', 'batch_size', 'boundary_method'], 1)
    """
    import json

    from netatlas.dynamics import score, subsample
    from netatlas.nets import mlp
    from netatlas.train import fit

    preset = prune_config(config["dataset"], full=bool(config.get("full", False)))
    for key in ("data", "epochs", "widths", "lr", "batch_size"):
        if key in config:
            preset[key] = config[key]
    activation = config.get("activation", "relu")
    keep = config.get("keep", "high")
    score_at = float(config.get("score_at", 0.25))
    seed, method = int(config["seed"]), config["method"]
    with torch_threads(1):
        data, sizes, scorer, history, full_acc, full_seconds = _scoring_run(
            config["dataset"], json.dumps(preset["data"], sort_keys=True), tuple(preset["widths"]), activation,
            int(preset["epochs"]), float(preset["lr"]), int(preset["batch_size"]), score_at, seed)
        started = time.perf_counter()
        if method == "boundary":
            scores, boundary_method = _boundary_scores(scorer, data.x, data.y)
        else:
            scores, boundary_method = score(method, scorer, data.x, data.y, history=history, seed=seed), None
        score_seconds = time.perf_counter() - started
        accuracies, seconds, n_kept = [], [], []
        for fraction in config["fractions"]:
            kept = subsample(scores, float(fraction), labels=data.y.numpy(), keep=keep, seed=seed)
            model = mlp(sizes, activation, seed=seed)
            run = fit(model, (data.x[kept], data.y[kept]), lr=float(preset["lr"]), epochs=int(preset["epochs"]),
                      batch_size=int(preset["batch_size"]), seed=seed, x_test=data.x_test, y_test=data.y_test,
                      eval_every=int(preset["epochs"]), progress=False)
            accuracies.append(float(run.test_accuracy[-1]))
            seconds.append(run.wall_time)
            n_kept.append(len(kept))
    return {"dataset": config["dataset"], "seed": seed, "method": method, "fractions": list(config["fractions"]),
            "test_accuracy": accuracies, "train_seconds": seconds, "n_kept": n_kept,
            "score_seconds": score_seconds, "boundary_method": boundary_method, "full_test_accuracy": full_acc,
            "full_train_seconds": full_seconds,
            "n_train": len(data.x), "activation": activation, "keep": keep, "score_at": score_at,
            "epochs": int(preset["epochs"]), "widths": list(preset["widths"]), "lr": float(preset["lr"]),
            "batch_size": int(preset["batch_size"])}


def _boundary_scores(scorer, x, y):
    """Boundary scores, exact (regions lens) where the net allows it; falls back to first order, and says
    which was used, when the regions lens cannot read one of the net's ops (any other error propagates)."""
    from netatlas._errors import UnsupportedLayerError
    from netatlas.dynamics import score
    from netatlas.nets import as_net

    net = as_net(scorer)
    if net.n_inputs == 2 and net.piecewise_linear:
        try:
            return score("boundary", scorer, x, y, boundary_method="exact"), "exact"
        except UnsupportedLayerError as exc:  # not applicable: record the fallback in the result
            logger.warning("prune: exact boundary distance failed (%s: %s); using first order",
                           type(exc).__name__, exc)
    return score("boundary", scorer, x, y, boundary_method="linear"), "linear"


def _t_interval(values: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """Mean and half-width of the Student-t confidence interval over the first axis."""
    from scipy.stats import t as student

    values = np.asarray(values, dtype=np.float64)
    n = len(values)
    mean = float(values.mean())
    if n < 2:
        return mean, float("nan"), float("nan")
    sd = float(values.std(ddof=1))
    half = float(student.ppf(0.5 + level / 2, n - 1) * sd / math.sqrt(n))
    return mean, half, sd


@dataclass(frozen=True)
class PruneStudy:
    """Aggregated results of the pruning study.

    Attributes
    ----------
    datasets, methods : tuple of str
    fractions : ndarray of shape (n_fractions,)
    seeds : tuple of int
    accuracy : ndarray of shape (n_datasets, n_methods, n_seeds, n_fractions)
        Test accuracy (NaN where a config failed or is missing).
    seconds : ndarray of shape (n_datasets, n_methods, n_seeds, n_fractions)
        Training wall time of the pruned runs.
    score_seconds : ndarray of shape (n_datasets, n_methods, n_seeds)
    full_accuracy, full_seconds : ndarray of shape (n_datasets, n_seeds)
        The full-data reference (the scoring run).
    level : float
        Confidence level of the intervals.
    boundary_methods : dict
        Data set -> sorted list of the boundary-distance methods used ("exact", "linear").
    """

    datasets: tuple[str, ...]
    methods: tuple[str, ...]
    fractions: np.ndarray
    seeds: tuple[int, ...]
    accuracy: np.ndarray
    seconds: np.ndarray
    score_seconds: np.ndarray
    full_accuracy: np.ndarray
    full_seconds: np.ndarray
    level: float = 0.95
    boundary_methods: dict | None = None

    def table(self) -> list[dict]:
        """One row per (dataset, method, fraction): mean test accuracy, CI half-width, mean seconds."""
        rows = []
        for d, name in enumerate(self.datasets):
            for m, method in enumerate(self.methods):
                for f, fraction in enumerate(self.fractions):
                    acc = self.accuracy[d, m, :, f]
                    acc = acc[np.isfinite(acc)]
                    if not len(acc):
                        continue
                    mean, half, _ = _t_interval(acc, self.level)
                    rows.append({"dataset": name, "method": method, "fraction": float(fraction),
                                 "accuracy": mean, "ci": half, "n_seeds": len(acc),
                                 "seconds": float(np.nanmean(self.seconds[d, m, :, f]))})
        return rows

    def paired(self, method: str, baseline: str) -> list[dict]:
        """Per data set: accuracy of ``method`` minus ``baseline``, paired by seed (same data split and
        init), averaged over fractions per seed, with a t interval over seeds, and per fraction."""
        if method not in self.methods or baseline not in self.methods:
            return []
        a, b = self.methods.index(method), self.methods.index(baseline)
        rows = []
        for d, name in enumerate(self.datasets):
            diff = self.accuracy[d, a] - self.accuracy[d, b]  # (n_seeds, n_fractions)
            ok = np.isfinite(diff).all(1)
            if ok.sum() < 1:
                continue
            mean, half, _ = _t_interval(diff[ok].mean(1), self.level)
            per_fraction = [_t_interval(diff[ok, f], self.level)[:2] for f in range(len(self.fractions))]
            if math.isfinite(half) and mean - half > 0:
                verdict = "better"
            elif math.isfinite(half) and mean + half < 0:
                verdict = "worse"
            else:
                verdict = "no significant difference"
            rows.append({"dataset": name, "method": method, "baseline": baseline, "mean_difference": mean,
                         "ci": half, "verdict": verdict, "n_seeds": int(ok.sum()),
                         "per_fraction": [{"fraction": float(f), "difference": m_, "ci": h_}
                                          for f, (m_, h_) in zip(self.fractions, per_fraction, strict=True)]})
        return rows

    def to_dict(self) -> dict:
        return {"datasets": list(self.datasets), "methods": list(self.methods), "fractions": self.fractions,
                "seeds": list(self.seeds), "accuracy": self.accuracy, "seconds": self.seconds,
                "score_seconds": self.score_seconds, "full_accuracy": self.full_accuracy,
                "full_seconds": self.full_seconds, "level": self.level, "boundary_methods": self.boundary_methods,
                "table": self.table()}


def summarize_prune(records, *, level: float = 0.95) -> PruneStudy:
    """Gather ``netatlas.sweep.run`` records of :func:`prune_one` into a :class:`PruneStudy`.

    Failed records are skipped (their cells stay NaN).
    """
    done = [r["result"] for r in records if r.get("status") == "done"]
    if not done:
        raise ValueError("summarize_prune: no finished configs to summarise")
    datasets = tuple(dict.fromkeys(r["dataset"] for r in done))
    methods = tuple(dict.fromkeys(r["method"] for r in done))
    seeds = tuple(sorted({int(r["seed"]) for r in done}))
    fractions = np.array(sorted({float(f) for r in done for f in r["fractions"]}))
    shape = (len(datasets), len(methods), len(seeds), len(fractions))
    accuracy, seconds = np.full(shape, np.nan), np.full(shape, np.nan)
    score_seconds = np.full(shape[:3], np.nan)
    full_accuracy, full_seconds = np.full((len(datasets), len(seeds)), np.nan), np.full((len(datasets), len(seeds)),
                                                                                       np.nan)
    for r in done:
        d, m, s = datasets.index(r["dataset"]), methods.index(r["method"]), seeds.index(int(r["seed"]))
        for fraction, acc, sec in zip(r["fractions"], r["test_accuracy"], r["train_seconds"], strict=True):
            f = int(np.flatnonzero(fractions == float(fraction))[0])
            accuracy[d, m, s, f], seconds[d, m, s, f] = acc, sec
        score_seconds[d, m, s] = r["score_seconds"]
        full_accuracy[d, s], full_seconds[d, s] = r["full_test_accuracy"], r["full_train_seconds"]
    boundary_methods = {}
    for r in done:
        if r.get("boundary_method"):
            boundary_methods.setdefault(r["dataset"], set()).add(r["boundary_method"])
    return PruneStudy(datasets, methods, fractions, seeds, accuracy, seconds, score_seconds, full_accuracy,
                      full_seconds, level, {k: sorted(v) for k, v in boundary_methods.items()})
