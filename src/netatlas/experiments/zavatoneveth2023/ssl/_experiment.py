"""The SSL magnification experiment: does a self-supervised representation magnify input space between
classes, as supervised classifiers do (Zavatone-Veth et al. 2023, section on Barlow Twins / SimCLR)?

For every seed it trains, from one and the same initial encoder, a Barlow Twins encoder, a SimCLR encoder
and a supervised twin (encoder + linear head, cross-entropy), and keeps an untrained random-init twin.
Each representation gets a linear probe and class means from the training set, and is measured on the
same random lines and planes through test images (:mod:`._magnify`). The headline number per
encoder is the mean within-slice Spearman correlation of effective volume with the probe's predictive
entropy, with a two-level (seeds, slices) bootstrap interval.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import torch
from torch import nn

from netatlas.experiments.zavatoneveth2023.ssl._magnify import (
    SliceMeasures,
    SliceSpec,
    class_means,
    encode,
    fit_linear_probe,
    make_slices,
    measure_slices,
    nearest_class_mean,
    slice_correlations,
)
from netatlas.experiments.zavatoneveth2023.ssl._models import EncoderWithHead, make_encoder, make_projector
from netatlas.experiments.zavatoneveth2023.ssl._stats import bootstrap_mean_ci

__all__ = ["ENCODER_KINDS", "SSLMagnifyConfig", "SSLMagnifyResult", "magnify_ssl"]

logger = logging.getLogger(__name__)

ENCODER_KINDS = ("barlow", "simclr", "supervised", "random")
"""The encoders compared: two self-supervised objectives, a supervised twin, an untrained twin."""

DATASETS = ("digits", "mnist_sample")

# SSL needs a few hundred steps: the 1,347 training digits get smaller batches and more epochs.
_SSL_DEFAULTS = {"digits": {"ssl_epochs": 60, "ssl_batch_size": 128},
                 "mnist_sample": {"ssl_epochs": 25, "ssl_batch_size": 256}}

SCALING_CONVENTION = ("Features are the encoder's output divided by sqrt(m) (m = representation width): "
                      "Phi = m^(-1/2) phi. Effective volume = sum over the k = min(m, d) singular values of "
                      "log10 sigma_i(J / sqrt(m)) of the full-input Jacobian; the plane area element is "
                      "log10 sqrt(det(U^T J^T J U)) with the same scaling, U = the plane's directions.")


@dataclass(frozen=True)
class SSLMagnifyConfig:
    """Settings of :func:`magnify_ssl` (defaults: a few minutes on 2 cores; :meth:`quick`: < 1 minute).

    Attributes
    ----------
    data : {"digits", "mnist_sample"}
    n_train : int or None
        Images drawn from the set before the 75/25 train/test split (None: all).
    n_seeds, first_seed : int
        Seeds ``first_seed .. first_seed + n_seeds - 1``; each seeds initialisation, training order,
        augmentations and the test images the slices go through.
    widths : tuple of int
        Encoder MLP widths; the representation has ``widths[-1]`` dimensions.
    activation : str
        Encoder activation (smooth, so the metric is smooth).
    projector_widths : tuple of int
        SSL projector (Linear-BN-ReLU-Linear).
    ssl_epochs, ssl_batch_size, ssl_lr : training of both SSL objectives (None: 60 epochs of 128 images
        for digits, 25 of 256 for mnist_sample, a few hundred steps either way).
    supervised_epochs, supervised_lr : training of the supervised twin (batch 128, no augmentation).
    n_lines, n_planes, line_points, grid : the slices per seed (``grid x grid`` points per plane).
    n_boot : int
        Bootstrap replicates for the intervals.
    """

    data: str = "digits"
    n_train: int | None = None
    n_seeds: int = 3
    first_seed: int = 0
    widths: tuple = (256, 64)
    activation: str = "gelu"
    projector_widths: tuple = (128, 128)
    ssl_epochs: int | None = None
    ssl_batch_size: int | None = None
    ssl_lr: float = 2e-3
    temperature: float = 0.5
    lambda_offdiag: float = 5e-3
    supervised_epochs: int = 15
    supervised_lr: float = 1e-3
    n_lines: int = 12
    n_planes: int = 6
    line_points: int = 33
    grid: int = 20
    n_boot: int = 2000

    def __post_init__(self):
        if self.data not in DATASETS:
            raise ValueError(f"magnify_ssl: unknown data {self.data!r}; choose one of {DATASETS}")
        for name, value in _SSL_DEFAULTS[self.data].items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, value)
        for name in ("n_seeds", "ssl_epochs", "line_points", "grid", "n_boot"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"magnify_ssl: {name} must be >= 1; got {getattr(self, name)!r}")
        if self.n_lines + self.n_planes < 1:
            raise ValueError("magnify_ssl: needs at least one line or plane (n_lines + n_planes >= 1)")
        if self.activation not in ("gelu", "tanh", "sigmoid", "relu"):
            raise ValueError(f"magnify_ssl: unknown activation {self.activation!r}; choose one of "
                             "('gelu', 'tanh', 'sigmoid', 'relu')")
        object.__setattr__(self, "widths", tuple(int(w) for w in self.widths))
        object.__setattr__(self, "projector_widths", tuple(int(w) for w in self.projector_widths))

    @classmethod
    def quick(cls, **overrides) -> SSLMagnifyConfig:
        """A < 1 minute configuration (digits, one seed, few epochs, small slices) for tests and demos."""
        settings = dict(data="digits", n_train=800, n_seeds=1, widths=(64, 32), projector_widths=(64, 64),
                        ssl_epochs=6, ssl_batch_size=128, supervised_epochs=20, n_lines=6, n_planes=2,
                        line_points=17, grid=10, n_boot=300)
        return cls(**{**settings, **overrides})

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


@dataclass(frozen=True, eq=False)
class SSLMagnifyResult:
    """What :func:`magnify_ssl` measured.

    Attributes
    ----------
    config : SSLMagnifyConfig
    seeds : tuple of int
    correlations : dict kind -> dict name -> ndarray of shape (n_seeds, n_slices)
        Within-slice Spearman correlations (names as :func:`slice_correlations`; ``volume_change_entropy``
        uses the random twin, the trained encoders' common initialisation, as reference); slices ordered
        lines first, then planes, identical across kinds for one seed (paired).
    slice_kinds : ndarray of str, shape (n_slices,)
        "line" or "plane" for every slice column.
    probe_accuracy, ncm_accuracy : dict kind -> ndarray of shape (n_seeds,)
        Test accuracy of the linear probe and of the nearest-class-mean rule on the representation.
    ssl_loss : dict kind -> list (per seed) of per-epoch loss arrays (SSL kinds only)
    supervised_accuracy : ndarray of shape (n_seeds,)
        Test accuracy of the supervised twin's own head.
    examples : dict kind -> dict of arrays
        First seed's first line and first plane (effective volume, entropy, labels), for the figures.
    slices : list of dict
        The first seed's slices (anchors and labels), for the report.
    wall_time : float
    """

    config: SSLMagnifyConfig
    seeds: tuple
    correlations: dict
    slice_kinds: np.ndarray
    probe_accuracy: dict
    ncm_accuracy: dict
    ssl_loss: dict
    supervised_accuracy: np.ndarray
    examples: dict
    slices: list
    wall_time: float
    timings: dict = field(default_factory=dict)

    def summary(self, *, level: float = 0.95) -> dict:
        """Headline numbers: per kind, mean correlation with bootstrap CI (all slices, lines, planes), the
        plane-metric and label-free variants, accuracies; and paired differences against the random and
        supervised twins."""
        n_boot, out = self.config.n_boot, {}
        masks = {"all": np.ones(len(self.slice_kinds), bool), "lines": self.slice_kinds == "line",
                 "planes": self.slice_kinds == "plane"}

        def ci(values):
            mean, low, high = bootstrap_mean_ci(values, n_boot=n_boot, level=level, seed=0)
            return {"mean": mean, "ci_low": low, "ci_high": high}

        for kind, corr in self.correlations.items():
            entry = {f"rho_volume_entropy_{name}": ci(corr["volume_entropy"][:, mask])
                     for name, mask in masks.items() if mask.any()}
            if masks["planes"].any():
                entry["rho_plane_area_entropy"] = ci(corr["area_entropy"][:, masks["planes"]])
            if "volume_change_entropy" in corr:
                entry["rho_volume_change_entropy"] = ci(corr["volume_change_entropy"])
            entry["rho_volume_between_class_means"] = ci(corr["volume_between"])
            entry["probe_accuracy"] = _mean_sd(self.probe_accuracy[kind])
            entry["ncm_accuracy"] = _mean_sd(self.ncm_accuracy[kind])
            out[kind] = entry
        differences = {}
        for kind in self.correlations:
            for reference in ("random", "supervised"):
                if kind not in (reference, "random") and reference in self.correlations:
                    diff = self.correlations[kind]["volume_entropy"] - self.correlations[reference]["volume_entropy"]
                    differences[f"{kind}_minus_{reference}"] = ci(diff)
        return {"per_encoder": out, "paired_differences_rho_volume_entropy": differences,
                "supervised_head_accuracy": _mean_sd(self.supervised_accuracy), "seeds": list(self.seeds),
                "n_slices_per_seed": {"lines": int(masks["lines"].sum()), "planes": int(masks["planes"].sum())},
                "confidence_level": level, "n_boot": n_boot, "scaling_convention": SCALING_CONVENTION,
                "wall_time_s": self.wall_time}

    def to_dict(self) -> dict:
        return {"config": self.config.to_dict(), "seeds": list(self.seeds),
                "correlations": {k: {n: v.tolist() for n, v in c.items()} for k, c in self.correlations.items()},
                "slice_kinds": self.slice_kinds.tolist(),
                "probe_accuracy": {k: v.tolist() for k, v in self.probe_accuracy.items()},
                "ncm_accuracy": {k: v.tolist() for k, v in self.ncm_accuracy.items()},
                "ssl_loss": {k: [np.asarray(c).tolist() for c in v] for k, v in self.ssl_loss.items()},
                "supervised_accuracy": self.supervised_accuracy.tolist(), "slices": self.slices,
                "wall_time": self.wall_time, "timings": self.timings}


def _mean_sd(values) -> dict:
    values = np.asarray(values, dtype=np.float64)
    return {"mean": float(values.mean()), "sd": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
            "per_seed": values.tolist()}


def _load(config: SSLMagnifyConfig):
    import netatlas.data

    loader = getattr(netatlas.data, config.data)
    return loader(n=config.n_train, seed=0)


def _train_models(config, data, seed, progress):
    """The four encoders of one seed, all from the same initial encoder weights."""
    from netatlas.train import fit, fit_ssl

    input_shape = tuple(data.x.shape[1:])
    m = config.widths[-1]
    models, losses, timings = {}, {}, {}
    for objective in ("barlow", "simclr"):
        started = time.perf_counter()
        encoder = make_encoder(input_shape, config.widths, config.activation, seed=seed)
        projector = make_projector(m, config.projector_widths, seed=seed)
        history = fit_ssl(encoder, projector, data.x, objective, epochs=config.ssl_epochs,
                          batch_size=config.ssl_batch_size, lr=config.ssl_lr, temperature=config.temperature,
                          lambda_offdiag=config.lambda_offdiag, seed=seed, progress=progress)
        models[objective] = EncoderWithHead(encoder, projector, "projector").eval()
        losses[objective] = history.loss
        timings[f"train_{objective}"] = time.perf_counter() - started
    started = time.perf_counter()
    encoder = make_encoder(input_shape, config.widths, config.activation, seed=seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed + 7)
        head = nn.Linear(m, int(data.n_classes))
    supervised = EncoderWithHead(encoder, head, "head")
    history = fit(supervised, data, loss="cross_entropy", optimizer="adam", lr=config.supervised_lr,
                  epochs=config.supervised_epochs, batch_size=128, seed=seed, progress=progress)
    models["supervised"] = supervised.eval()
    timings["train_supervised"] = time.perf_counter() - started
    head_accuracy = float(history.test_accuracy[-1]) if history.test_accuracy is not None else float("nan")
    random_encoder = make_encoder(input_shape, config.widths, config.activation, seed=seed)
    models["random"] = EncoderWithHead(random_encoder, make_projector(m, config.projector_widths, seed=seed),
                                       "projector").eval()
    return models, losses, head_accuracy, timings


def _example(slices: list[SliceSpec], measures: list[SliceMeasures]) -> dict:
    out = {}
    for kind in ("line", "plane"):
        index = next((i for i, s in enumerate(slices) if s.kind == kind), None)
        if index is None:
            continue
        s, m = slices[index], measures[index]
        shape = s.grid_shape
        out[kind] = {"coords": s.coords, "anchor_labels": np.array(s.anchor_labels),
                     "effective_volume": m.effective_volume.reshape(shape), "entropy": m.entropy.reshape(shape),
                     "ncm_label": m.ncm_label.reshape(shape), "probe_label": m.probe_label.reshape(shape)}
        if s.kind == "plane":
            out[kind]["anchors_uv"] = s.geometry.anchors
            out[kind]["plane_log_area"] = m.plane_log_area.reshape(shape)
    return out


def magnify_ssl(config: SSLMagnifyConfig | None = None, *, progress: bool = False, **overrides) -> SSLMagnifyResult:
    """Train SSL, supervised and random encoders and compare where their representations magnify space.

    Parameters
    ----------
    config : SSLMagnifyConfig, optional
        Default ``SSLMagnifyConfig()``; keyword ``overrides`` replace single fields
        (``magnify_ssl(n_seeds=5)``).
    progress : bool
        tqdm bars for the training loops (the CLI turns them on).

    Returns
    -------
    SSLMagnifyResult
        ``.summary()`` has the correlations with confidence intervals; ``.to_dict()`` everything.

    Notes
    -----
    The scaling convention: ``Phi = m^{-1/2} encoder(x)``, i.e. effective volume
    ``sum_{i <= min(m, d)} log10 sigma_i(J / sqrt(m))``. Spearman correlations are taken within each
    slice (so per-slice offsets of the volume do not matter) and averaged; intervals resample seeds,
    then slices.

    Examples
    --------
    >>> result = magnify_ssl(SSLMagnifyConfig.quick(ssl_epochs=1, supervised_epochs=1, n_lines=2, n_planes=1,
    ...                                            grid=4, n_train=300, n_boot=50))   # doctest: +SKIP
    >>> sorted(result.summary()["per_encoder"])                                      # doctest: +SKIP
    ['barlow', 'random', 'simclr', 'supervised']
    """
    config = SSLMagnifyConfig() if config is None else config
    if not isinstance(config, SSLMagnifyConfig):
        raise TypeError(f"magnify_ssl: config must be an SSLMagnifyConfig; got {type(config).__name__}")
    if overrides:
        config = replace(config, **overrides)
    started = time.perf_counter()
    data = _load(config)
    seeds = tuple(range(config.first_seed, config.first_seed + config.n_seeds))
    n_classes = int(data.n_classes)
    correlations = {k: {"volume_entropy": [], "area_entropy": [], "volume_between": []} for k in ENCODER_KINDS}
    for kind in ENCODER_KINDS:
        if kind != "random":  # the change of effective volume from the shared random initialisation
            correlations[kind]["volume_change_entropy"] = []
    probe_accuracy = {k: [] for k in ENCODER_KINDS}
    ncm_accuracy = {k: [] for k in ENCODER_KINDS}
    ssl_losses = {"barlow": [], "simclr": []}
    supervised_accuracy, examples, first_slices, timings = [], {}, [], {}
    y_train, y_test = data.y.numpy(), data.y_test.numpy()
    slice_kinds = None
    for seed in seeds:
        models, losses, head_accuracy, seed_timings = _train_models(config, data, seed, progress)
        for name, seconds in seed_timings.items():
            timings[name] = timings.get(name, 0.0) + seconds
        supervised_accuracy.append(head_accuracy)
        for objective, loss in losses.items():
            ssl_losses[objective].append(loss)
        slices = make_slices(data.x_test, data.y_test, n_lines=config.n_lines, n_planes=config.n_planes,
                             line_points=config.line_points, grid=config.grid, seed=seed)
        slice_kinds = np.array([s.kind for s in slices])
        if seed == seeds[0]:
            first_slices = [s.to_dict() for s in slices]
        measured = {}
        for kind in ENCODER_KINDS:
            measure_started = time.perf_counter()
            model = models[kind]
            train_features, test_features = encode(model.encoder, data.x), encode(model.encoder, data.x_test)
            probe = fit_linear_probe(train_features, y_train, n_classes=n_classes)
            means = class_means(train_features, y_train, n_classes)
            probe_accuracy[kind].append(probe.accuracy(test_features, y_test))
            ncm_accuracy[kind].append(float((nearest_class_mean(test_features, means)[0] == y_test).mean()))
            measures = measured[kind] = measure_slices(model, slices, probe, means)
            if seed == seeds[0]:
                examples[kind] = _example(slices, measures)
            timings[f"measure_{kind}"] = timings.get(f"measure_{kind}", 0.0) + time.perf_counter() - measure_started
            logger.info("magnify_ssl: seed %d %s probe accuracy %.3f", seed, kind, probe_accuracy[kind][-1])
        # every twin starts from the random twin's weights: it is the reference for the change training made
        for kind, measures in measured.items():
            reference = measured["random"] if kind != "random" else None
            for name, values in slice_correlations(measures, reference).items():
                correlations[kind][name].append(values)
    return SSLMagnifyResult(
        config=config, seeds=seeds,
        correlations={k: {n: np.stack(v) for n, v in c.items()} for k, c in correlations.items()},
        slice_kinds=slice_kinds,
        probe_accuracy={k: np.array(v) for k, v in probe_accuracy.items()},
        ncm_accuracy={k: np.array(v) for k, v in ncm_accuracy.items()},
        ssl_loss=ssl_losses, supervised_accuracy=np.array(supervised_accuracy), examples=examples,
        slices=first_slices, wall_time=time.perf_counter() - started, timings=timings)
