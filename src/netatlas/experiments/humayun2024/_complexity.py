"""The local-complexity study of Humayun, Balestriero & Baraniuk (ICML 2024) behind
``netatlas dynamics complexity``: MLPs trained from several seeds with a
:class:`netatlas.dynamics.ComplexityTracker` at train, test and random points, the three-phase check
(fall, rise, fall again), figures and report.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from netatlas._threads import torch_threads
from netatlas.dynamics import ComplexityTracker
from netatlas.regions import MAX_REGIONS

__all__ = ["PRESETS", "ComplexityStudy", "complexity_study", "parse_steps", "phase_table", "run_complexity"]


PRESETS = {
    # data: (loader kwargs, hidden widths, radius, default steps, batch size)
    "moons": (dict(n=400, noise=0.1), [64, 64, 64], 0.05, 4000, 32),
    "digits": (dict(), [128, 128, 128], 0.25, 3000, 128),
    "mnist_sample": (dict(n=1334), [128, 128, 128], 0.25, 3000, 200),
}


@dataclass(frozen=True)
class ComplexityStudy:
    """Local complexity curves of one MLP setup trained from several seeds.

    Attributes
    ----------
    traces : list of ComplexityTrace
        One per seed, same steps.
    seeds : tuple of int
    config : dict
    """

    traces: list
    seeds: tuple
    config: dict = field(default_factory=dict)

    @property
    def steps(self) -> np.ndarray:
        return self.traces[0].steps

    def curve(self, kind: str, name: str) -> np.ndarray:
        """(n_seeds, R) mean over points and planes."""
        return np.stack([getattr(t, kind)[name].mean(axis=(1, 2)) for t in self.traces])

    def pooled(self, kind: str, name: str) -> np.ndarray:
        """(R, n_seeds * n_points * n_planes): every value at each step."""
        return np.concatenate([getattr(t, kind)[name].reshape(len(t.steps), -1) for t in self.traces], axis=1)

    def to_dict(self) -> dict:
        return {"seeds": list(self.seeds), "config": self.config, "steps": self.steps,
                "traces": [t.to_dict() for t in self.traces]}


def parse_steps(spec, max_default: int) -> list[int]:
    """``"0,10,100"`` or ``"log:MAX:N"`` (0 and N log-spaced steps up to MAX) or None (log:max_default:16).

    >>> parse_steps("log:1000:4", 0)
    [0, 1, 10, 100, 1000]
    """
    if spec is None:
        spec = f"log:{max_default}:16"
    if isinstance(spec, str) and spec.startswith("log:"):
        try:
            _, top, n = spec.split(":")
            top, n = int(top), int(n)
        except ValueError:
            raise ValueError(f"steps: 'log:MAX:N' needs two integers, e.g. log:5000:16; got {spec!r}") from None
        if top < 1 or n < 1:
            raise ValueError(f"steps: need MAX >= 1 and N >= 1; got {spec!r}")
        return sorted({0, *np.unique(np.round(np.logspace(0, math.log10(top), n)).astype(int)).tolist()})
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    try:
        steps = sorted({int(s) for s in items})
    except ValueError:
        raise ValueError(f"steps: a comma-separated list of integers or 'log:MAX:N'; got {spec!r}") from None
    if not steps or steps[0] < 0:
        raise ValueError(f"steps: must be non-negative integers; got {spec!r}")
    return steps


def complexity_study(data: str = "mnist_sample", *, seeds=(0,), steps=None, widths=None, radius=None,
                     n_points: int = 100, n_planes: int = 1, lr: float = 1e-3, batch_size=None,
                     weight_decay: float = 0.0, client=None, max_regions: int | None = MAX_REGIONS,
                     memory_budget="auto") -> ComplexityStudy:
    """Train an MLP on ``data`` from each seed and record local complexity at train, test and random
    points (uniform in the training inputs' per-coordinate range) at ``steps``.

    Defaults per data set are in ``PRESETS`` (widths, radius, last step, batch size); Adam, cross-entropy.
    ``max_regions`` and ``memory_budget`` limit each record (as in ``ComplexityTracker``).
    ``data`` may also be a data file (``netatlas.data.load_any``: class labels and a test split); then
    ``radius`` must be given and the defaults are widths 128, 128, 128, batch 128, steps ``log:3000:16``.
    Complexity is recorded at the end of an epoch: at the first epoch end at or after each step asked
    (the ``steps`` of the result say which).

    Examples
    --------
    >>> s = complexity_study("moons", steps=[0, 20], n_points=4, widths=[8, 8])
    >>> s.curve("exact", "train").shape
    (1, 2)
    """
    from netatlas.data import load
    from netatlas.nets import mlp
    from netatlas.train import fit

    file = None
    if data in PRESETS:
        kwargs, p_widths, p_radius, p_steps, p_batch = PRESETS[data]
    else:  # any other name or a data file, through the one resolver; its own split, the seeds vary init and order
        from netatlas.data import load_any

        file = load_any(data, where="complexity_study")
        if file.n_classes is None or not file.n_test:
            raise ValueError(f"complexity_study: {data!r} needs class labels and a test split (x_test/y_test)")
        if radius is None:
            raise ValueError(f"complexity_study: give radius (in input units) for {data!r}; presets exist only for "
                             f"{', '.join(sorted(PRESETS))}")
        kwargs, p_widths, p_radius, p_steps, p_batch = {}, [128, 128, 128], None, 3000, 128
    widths = list(widths or p_widths)
    radius = float(radius if radius is not None else p_radius)
    steps = parse_steps(steps, p_steps)
    batch_size = batch_size or p_batch
    traces = []
    for seed in seeds:
        ds = load(data, seed=seed, **kwargs) if file is None else file
        x, y = ds.x.flatten(1).double(), ds.y
        xt, yt = ds.x_test.flatten(1).double(), ds.y_test
        rng = np.random.default_rng(seed)
        lo, hi = x.min(0).values.numpy(), x.max(0).values.numpy()
        pts = {"train": x[rng.choice(len(x), min(n_points, len(x)), replace=False)],
               "test": xt[rng.choice(len(xt), min(n_points, len(xt)), replace=False)],
               "random": torch.from_numpy(rng.uniform(lo, hi, (n_points, x.shape[1])))}
        model = mlp([x.shape[1], *widths, ds.n_classes], seed=seed).double()
        tracker = ComplexityTracker(pts, radius, steps=steps, n_planes=n_planes, seed=seed, train=(x, y),
                                    test=(xt, yt), client=client, max_regions=max_regions,
                                    memory_budget=memory_budget)
        tracker.record(model, 0)
        per_epoch = math.ceil(len(x) / batch_size)
        epochs = math.ceil(max(steps) / per_epoch)
        if epochs:
            fit(model, (x, y), lr=lr, epochs=epochs, batch_size=batch_size, weight_decay=weight_decay, seed=seed,
                callbacks=[tracker], x_test=xt, y_test=yt, eval_every=max(epochs, 1))
        traces.append(tracker.result())
    config = {"data": data, "widths": widths, "radius": radius, "steps": steps, "n_points": n_points,
              "n_planes": n_planes, "lr": lr, "batch_size": batch_size, "weight_decay": weight_decay,
              "seeds": list(seeds), "max_regions": max_regions}
    return ComplexityStudy(traces, tuple(seeds), config)


def phase_table(study: ComplexityStudy) -> list[dict]:
    """The three-phase check per point set and measure (seed-mean curves): LC first falls (minimum
    below the start), then rises (a later maximum above the minimum), then falls again (the end below
    that maximum). Each change must exceed 5% of the value it is compared with to count."""
    rows = []
    steps = study.steps
    for kind in ("exact", "exact_neurons", "sampled"):
        for name in study.traces[0].sets:
            c = study.curve(kind, name).mean(0)
            i_min = int(np.argmin(c))
            i_max = i_min + int(np.argmax(c[i_min:]))
            rows.append({"measure": kind, "points": name, "start": float(c[0]), "min": float(c[i_min]),
                         "min_step": int(steps[i_min]), "max_after_min": float(c[i_max]),
                         "max_step": int(steps[i_max]), "end": float(c[-1]),
                         "falls": bool(c[i_min] < 0.95 * c[0]), "rises": bool(c[i_max] > 1.05 * c[i_min]),
                         "falls_again": bool(c[-1] < 0.95 * c[i_max])})
    return rows


def run_complexity(out=None, *, data: str = "mnist_sample", dask=None, threads: int | None = 1, **kwargs):
    """``netatlas dynamics complexity``: :func:`complexity_study` (with ``threads`` torch threads),
    curves, phase table and report in a RunDir."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from netatlas.report import RunDir
    from netatlas.sweep import resolve_client

    run = RunDir.create(out, command="dynamics complexity", config={"data": data, "dask": dask, **kwargs})
    client, cleanup = resolve_client(dask)
    try:
        with torch_threads(threads):
            study = complexity_study(data, client=client, **kwargs)
    finally:
        cleanup()
    steps = study.steps
    x = np.maximum(steps, 0.5)  # log axis: step 0 drawn at 0.5
    sets = study.traces[0].sets
    fig, axes = plt.subplots(2, len(sets), figsize=(5 * len(sets), 8), sharex=True, squeeze=False)
    styles = {"exact": ("C0", "-", "regions meeting the disc (exact)"),
              "exact_neurons": ("C2", ":", "neurons crossing the disc (exact)"),
              "sampled": ("C3", "--", "neurons, sampled (cross-polytope)")}
    for j, name in enumerate(sets):
        ax = axes[0, j]
        for kind, (color, ls, label) in styles.items():
            pooled = study.pooled(kind, name)
            q25, q50, q75 = np.percentile(pooled, [25, 50, 75], axis=1)
            ax.plot(x, pooled.mean(1), color=color, ls=ls, label=label + " (mean)")
            ax.fill_between(x, q25, q75, color=color, alpha=0.15)
            for curve in study.curve(kind, name):
                ax.plot(x, curve, color=color, lw=0.5, alpha=0.6)
            del q50
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(f"{name} points")
        ax.set_ylabel("local complexity")
        if j == 0:
            ax.legend(fontsize=7)
        ax2 = axes[1, j]
        tr = study.traces
        ax2.plot(x, np.mean([t.train_accuracy for t in tr], 0), "k-", label="train accuracy")
        ax2.plot(x, np.mean([t.test_accuracy for t in tr], 0), "k--", label="test accuracy")
        ax2.set_ylabel("accuracy")
        ax3 = ax2.twinx()
        ax3.plot(x, np.mean([t.train_loss for t in tr], 0), "C1-", label="train loss")
        ax3.plot(x, np.mean([t.test_loss for t in tr], 0), "C1--", label="test loss")
        ax3.set_yscale("log")
        ax3.set_ylabel("loss", color="C1")
        ax2.set_xlabel("optimizer step (0 drawn at 0.5)")
        if j == 0:
            ax2.legend(fontsize=7, loc="center left")
            ax3.legend(fontsize=7, loc="center right")
    fig.tight_layout()
    run.save_figure(fig, "complexity_curves",
                    f"Local complexity vs step (r = {study.config['radius']}): mean over points and seeds, 25-75% "
                    "band over points, thin lines per seed; accuracy and loss below on the same step axis.")
    plt.close(fig)
    # where exact and sampled disagree: sampled / exact neurons at each step
    fig, ax = plt.subplots(figsize=(6, 4))
    for name in sets:
        ratio = study.pooled("sampled", name) / np.maximum(study.pooled("exact_neurons", name), 1)
        ax.plot(x, ratio.mean(1), label=f"{name}")
    ax.set_xscale("log")
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("sampled / exact neurons crossing")
    ax.legend()
    run.save_figure(fig, "sampled_vs_exact", "Share of the neurons crossing the disc that the sampled estimator "
                    "sees (its four vertices p +- r d_i span the square inscribed in the disc).")
    plt.close(fig)
    phases = phase_table(study)
    run.add_table("Three phases (Humayun et al.): fall, rise, fall again", phases,
                  caption="Seed-mean curves; a change must exceed 5% of the value it is compared with.")
    agree = []
    for name in sets:
        for k, s in enumerate(steps):
            ex, sa = study.pooled("exact_neurons", name)[k], study.pooled("sampled", name)[k]
            rg = study.pooled("exact", name)[k]
            agree.append({"points": name, "step": int(s), "exact_regions": float(rg.mean()),
                          "exact_neurons": float(ex.mean()), "sampled_neurons": float(sa.mean()),
                          "sampled_share": float(sa.sum() / max(ex.sum(), 1)),
                          "rank_corr_sampled_vs_regions": _spearman(sa, rg)})
    run.add_table("Exact vs sampled", agree, caption="Per step: means over points (and seeds); the share of crossing "
                  "neurons the sampled estimator counts; Spearman correlation across points of sampled LC with "
                  "the exact region count.")
    run.save_arrays("curves", steps=steps, **{f"{kind}_{name}": study.pooled(kind, name)
                                              for kind in styles for name in sets})
    summary = {"config": study.config, "phases": phases,
               "steps_recorded": [int(s) for s in steps],  # epoch ends at or after config["steps"]
               "final_test_accuracy": float(np.mean([t.test_accuracy[-1] for t in study.traces])),
               "final_train_accuracy": float(np.mean([t.train_accuracy[-1] for t in study.traces]))}
    run.write_summary(summary)
    run.write_report("Local complexity through training",
                     f"MLP {study.config['widths']} on {data}, seeds {list(study.seeds)}, radius "
                     f"{study.config['radius']}: exact local complexity (regions and neurons meeting a 2-D disc "
                     "through each point) next to the sampled estimator of Humayun, Balestriero & Baraniuk (2024).")
    return run


def _spearman(a, b) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    if ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])
