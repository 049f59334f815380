"""The experimental validation the paper left to future work: sweep eps, train real networks, compare
them with the theory, fit the log-log slope of the errors in the local range, and break locality.

Experiments (each batched over all (eps, seed) pairs; see docs/papers/shisher2022.md for the protocol)::

    softmax          one-hot X -> k features -> Linear(k, |Y|), population log-loss, random init
    softmax_exact    the exact population optimum (Newton from the theory's solution)
    softmax_sampled  the same network trained on n_samples draws; compared with the empirical DTM B^
                     (and, as product_error_true, with the true one)
    mmse             the same network under squared loss (exact: no eps dependence expected)
    hidden_<act>     f1 (fixed, m-dim) -> Linear(m, k) -> act -> fixed Linear(k, |Y|), act sigmoid/tanh
    hidden_relu      the same with ReLU linearised at its kink (negative control)
    dirichlet_*      softmax and hidden-sigmoid networks on random Dirichlet joints (locality broken)
"""

from __future__ import annotations

import dataclasses
import logging
import math
import warnings
from dataclasses import asdict, dataclass, field

import numpy as np

from netatlas.experiments.shisher2022._training import (
    hidden_setup,
    train_hidden_networks,
    train_mmse_networks,
    train_softmax_network_lbfgs,
    train_softmax_networks,
)
from netatlas.lowrank import (
    compare_hidden_layer,
    compare_mmse_layer,
    compare_softmax_layer,
    dirichlet_joint,
    dtm,
    fit_slope,
    local_joint,
    optimal_softmax_layer,
    relative_error,
    sample_joint,
)

__all__ = ["ValidationConfig", "ValidationResult", "validate"]

logger = logging.getLogger(__name__)

#: Metrics recorded per (experiment, eps, seed) row (from LayerComparison plus training records).
ROW_METRICS = (
    "product_error",
    "max_feature_angle",
    "max_weight_angle",
    "excess_loss",
    "predicted_excess_loss",
    "excess_loss_ratio",
    "h_score",
    "h_score_max",
    "h_score_ratio",
    "bias_error",
    "eps",
    "chi2_radius",
    "model_chi2_radius",
    "preactivation_spread",
    "gap",
)


@dataclass(frozen=True)
class ValidationConfig:
    """Settings of :func:`validate` (the defaults finish in well under a minute on 2 cores).

    Attributes
    ----------
    n_x, n_y, k : int
        |X|, |Y| and the number of features (softmax / MMSE).
    eps_fractions : tuple of float
        eps / eps_max values swept (eps_max keeps P_XY >= 0 for each draw).
    seeds : tuple of int
        Each seed draws a joint (marginals, singular directions) and a network initialisation.
    gap : float
        Relative singular gap after k of the generated DTMs.
    local_fraction : float
        The local range for the slope fit: eps_fraction <= local_fraction.
    n_samples : int
        Samples for the sampled-data experiment.
    hidden_m, hidden_k : int, optional
        Width of the fixed features below and of the hidden layer (default min(8, n_x - 1) and
        min(3, n_y - 1)).
    activations : tuple of str
        Smooth hidden activations to test (the paper's non-vanishing-gradient case).
    relu_center : float
        Where the ReLU control is linearised (0: at the kink).
    lbfgs_min_fraction, lbfgs_steps : float, int
        The first-order cross-check (``torch.optim.LBFGS``, first seed) runs at eps_fractions >= this,
        for at most this many iterations.
    n_dirichlet : int
        Random Dirichlet joints (broken locality), with concentration ``dirichlet_concentration``.
    """

    n_x: int = 24
    n_y: int = 8
    k: int = 2
    eps_fractions: tuple = (1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 0.9)
    seeds: tuple = (0, 1)
    gap: float = 0.6
    local_fraction: float = 0.1
    n_samples: int = 1_000_000
    hidden_m: int | None = None
    hidden_k: int | None = None
    activations: tuple = ("sigmoid", "tanh")
    relu_center: float = 0.0
    lbfgs_min_fraction: float = 0.3
    lbfgs_steps: int = 1500
    n_dirichlet: int = 4
    dirichlet_concentration: float = 1.0

    @classmethod
    def full(cls, **overrides) -> ValidationConfig:
        """A longer sweep: 13 eps values over 3.5 decades, 5 seeds, more Dirichlet joints."""
        base = dict(
            eps_fractions=tuple(float(f) for f in np.geomspace(3e-4, 0.9, 13)),
            seeds=(0, 1, 2, 3, 4),
            n_dirichlet=10,
            n_samples=10_000_000,
        )
        return cls(**{**base, **overrides})

    def check(self) -> ValidationConfig:
        """Validate the settings; returns the config with the defaults that depend on sizes filled in."""
        if self.hidden_m is None or self.hidden_k is None:
            return dataclasses.replace(
                self,
                hidden_m=self.hidden_m or min(8, self.n_x - 1),
                hidden_k=self.hidden_k or min(3, self.n_y - 1),
            ).check()
        if min(self.n_x, self.n_y) < 3 or not 1 <= self.k <= min(self.n_x, self.n_y) - 2:
            raise ValueError(
                f"validate: need n_x, n_y >= 3 and 1 <= k <= min(n_x, n_y) - 2 (a tail after k), "
                f"got n_x={self.n_x}, n_y={self.n_y}, k={self.k}"
            )
        fr = np.asarray(self.eps_fractions, dtype=float)
        if fr.size < 3 or np.any(fr <= 0) or np.any(fr > 1):
            raise ValueError(
                f"validate: eps_fractions must be >= 3 values in (0, 1], got {self.eps_fractions}"
            )
        if fr.max() / fr.min() < 100:
            raise ValueError(
                f"validate: eps_fractions must span at least two decades, got {self.eps_fractions}"
            )
        if np.sum(fr <= self.local_fraction) < 2:
            raise ValueError(f"validate: need >= 2 eps_fractions <= local_fraction = {self.local_fraction}")
        if not self.seeds:
            raise ValueError("validate: seeds must not be empty")
        if not self.n_samples >= 1:
            raise ValueError(f"validate: n_samples must be >= 1, got {self.n_samples}")
        if self.hidden_k > self.n_y - 1 or self.hidden_m >= self.n_x:
            raise ValueError(
                f"validate: need hidden_k <= n_y - 1 and hidden_m < n_x, got hidden_k={self.hidden_k}, "
                f"hidden_m={self.hidden_m}"
            )
        return self

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class ValidationResult:
    """Everything :func:`validate` measured.

    Attributes
    ----------
    config : ValidationConfig
    rows : list of dict
        One per (experiment, eps_fraction, seed): the ``ROW_METRICS`` and the training record.
    slopes : dict
        experiment -> {metric: fitted log-log slope vs eps over the local range}.
    summary : dict
        Headline numbers: ``eps`` and ``product_error`` (softmax, population loss, geometric means over
        seeds per eps_fraction), ``slope`` (of that product error over the local range), and more.
    """

    config: ValidationConfig
    rows: list = field(repr=False)
    slopes: dict
    summary: dict

    def experiment(self, name: str) -> list[dict]:
        """The rows of one experiment."""
        return [r for r in self.rows if r["experiment"] == name]

    def to_dict(self) -> dict:
        return {
            "config": self.config.to_dict(),
            "slopes": self.slopes,
            "summary": self.summary,
            "rows": self.rows,
        }


def _row(name, comparison, fit, *, eps_fraction, seed, **extra):
    d = comparison.to_dict()
    row = {"experiment": name, "eps_fraction": eps_fraction, "seed": seed}
    row.update({m: d[m] for m in ROW_METRICS})
    row.update({"converged": fit.converged, "n_steps": fit.n_steps})
    row.update(extra)
    return row


def validate(config: ValidationConfig | None = None, *, progress=None) -> ValidationResult:
    """Run the validation sweep (see the module docstring) and return every measurement.

    Parameters
    ----------
    config : ValidationConfig, optional
    progress : callable, optional
        Called with the name of each experiment as it starts (the CLI passes a progress bar's update).

    Returns
    -------
    ValidationResult

    Examples
    --------
    >>> cfg = ValidationConfig(n_x=6, n_y=4, k=1, eps_fractions=(1e-3, 1e-2, 1e-1)).check()
    >>> cfg.hidden_m, cfg.hidden_k  # sizes filled in; validate(cfg) runs the sweep (seconds)
    (5, 3)
    """
    cfg = (config or ValidationConfig()).check()
    step = progress or (lambda name: None)
    fractions = [float(f) for f in cfg.eps_fractions]
    pairs = [(f, s) for f in fractions for s in cfg.seeds]
    joints = [local_joint(cfg.n_x, cfg.n_y, k=cfg.k, eps_fraction=f, gap=cfg.gap, seed=s) for f, s in pairs]
    ps = [j.p_xy for j in joints]
    seeds = [s for _, s in pairs]
    rows = []

    step("softmax")
    fits = train_softmax_networks(ps, cfg.k, seeds=seeds)
    for (f, s), p, fit in zip(pairs, ps, fits, strict=True):
        rows.append(
            _row(
                "softmax",
                compare_softmax_layer(p, fit.features, fit.weights, fit.bias),
                fit,
                eps_fraction=f,
                seed=s,
            )
        )

    step("softmax_exact")
    exact = train_softmax_networks(ps, cfg.k, init="theory")
    for (f, s), p, fit, net in zip(pairs, ps, exact, fits, strict=True):
        c = compare_softmax_layer(p, fit.features, fit.weights, fit.bias)
        theta = _theta(p, fit)
        pmi_k = optimal_softmax_layer(p, cfg.k, target="pmi").product
        rows.append(
            _row(
                "softmax_exact",
                c,
                fit,
                eps_fraction=f,
                seed=s,
                product_error_pmi=relative_error(theta, pmi_k),
                network_vs_exact=relative_error(_theta(p, net), theta),
            )
        )

    step("softmax_lbfgs")
    for (f, s), p, net in zip(pairs, ps, fits, strict=True):
        if f < cfg.lbfgs_min_fraction or s != cfg.seeds[0]:
            continue
        fit = train_softmax_network_lbfgs(p, cfg.k, seed=s, max_steps=cfg.lbfgs_steps)
        c = compare_softmax_layer(p, fit.features, fit.weights, fit.bias)
        rows.append(
            _row(
                "softmax_lbfgs",
                c,
                fit,
                eps_fraction=f,
                seed=s,
                vs_newton=relative_error(_theta(p, fit), _theta(p, net)),
                loss_gap=fit.loss / net.loss - 1,
            )
        )

    step("softmax_sampled")
    sampled = []
    for i, p in enumerate(ps):
        q = sample_joint(p, cfg.n_samples, seed=1000 + i)
        if np.any(q.sum(1) == 0) or np.any(q.sum(0) == 0):
            raise ValueError(f"validate: n_samples = {cfg.n_samples} left a symbol unobserved; increase it")
        sampled.append(q)
    fits_s = train_softmax_networks(sampled, cfg.k, seeds=seeds)
    for (f, s), p, q, fit in zip(pairs, ps, sampled, fits_s, strict=True):
        c = compare_softmax_layer(q, fit.features, fit.weights, fit.bias)
        truth = optimal_softmax_layer(p, cfg.k).product
        rows.append(
            _row(
                "softmax_sampled",
                c,
                fit,
                eps_fraction=f,
                seed=s,
                product_error_true=relative_error(_theta(p, fit), truth),
                eps_true=float(np.linalg.norm(dtm(p))),
                sampling_radius=float(np.linalg.norm(dtm(q) - dtm(p))),
            )
        )

    step("mmse")
    fits_m = train_mmse_networks(ps, cfg.k, seeds=seeds)
    for (f, s), p, fit in zip(pairs, ps, fits_m, strict=True):
        rows.append(
            _row(
                "mmse",
                compare_mmse_layer(p, fit.features, fit.weights, fit.bias),
                fit,
                eps_fraction=f,
                seed=s,
            )
        )

    hidden = [(a, 0.0) for a in cfg.activations] + [("relu", cfg.relu_center)]
    for activation, center in hidden:
        name = f"hidden_{activation}"
        step(name)
        setups = [
            hidden_setup(
                cfg.n_x,
                cfg.n_y,
                m=cfg.hidden_m,
                k=cfg.hidden_k,
                activation=activation,
                center=center,
                p_y=j.p_y,
                seed=s,
            )
            for j, s in zip(joints, seeds, strict=True)
        ]
        fits_h = train_hidden_networks(
            ps,
            [u[0] for u in setups],
            [u[1] for u in setups],
            [u[2] for u in setups],
            activation=activation,
            seeds=seeds,
        )
        for (f, s), p, fit, (f1, v, d) in zip(pairs, ps, fits_h, setups, strict=True):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # ReLU at its kink: expected, reported in the text
                c = compare_hidden_layer(
                    p, f1, fit.weights, fit.bias, v, d, activation=activation, center=center
                )
            rows.append(_row(name, c, fit, eps_fraction=f, seed=s))

    step("dirichlet")
    rows += _dirichlet_rows(cfg)
    slopes = _slopes(rows, cfg)
    summary = _summary(rows, slopes, cfg)
    return ValidationResult(cfg, rows, slopes, summary)


def _theta(p, fit):
    """The weighted, double-centred logit matrix of a trained softmax layer."""
    p_x, p_y = p.sum(1), p.sum(0)
    h = fit.features @ fit.weights.T + fit.bias - np.log(p_y)
    h = h - (h @ p_y)[:, None]
    h = h - (p_x @ h)[None, :]
    return np.sqrt(np.outer(p_x, p_y)) * h


def _dirichlet_rows(cfg):
    seeds = [100 + i for i in range(cfg.n_dirichlet)]
    ps = [dirichlet_joint(cfg.n_x, cfg.n_y, concentration=cfg.dirichlet_concentration, seed=s) for s in seeds]
    rows = []
    fits = train_softmax_networks(ps, cfg.k, seeds=seeds)
    for s, p, fit in zip(seeds, ps, fits, strict=True):
        rows.append(
            _row(
                "dirichlet_softmax",
                compare_softmax_layer(p, fit.features, fit.weights, fit.bias),
                fit,
                eps_fraction=float("nan"),
                seed=s,
            )
        )
    setups = [
        hidden_setup(
            cfg.n_x, cfg.n_y, m=cfg.hidden_m, k=cfg.hidden_k, activation="sigmoid", p_y=p.sum(0), seed=s
        )
        for p, s in zip(ps, seeds, strict=True)
    ]
    fits_h = train_hidden_networks(
        ps,
        [u[0] for u in setups],
        [u[1] for u in setups],
        [u[2] for u in setups],
        activation="sigmoid",
        seeds=seeds,
    )
    for s, p, fit, (f1, v, d) in zip(seeds, ps, fits_h, setups, strict=True):
        c = compare_hidden_layer(p, f1, fit.weights, fit.bias, v, d, activation="sigmoid", center=0.0)
        rows.append(_row("dirichlet_hidden_sigmoid", c, fit, eps_fraction=float("nan"), seed=s))
    return rows


def _geomean(values):
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v) & (v > 0)]
    return float(np.exp(np.mean(np.log(v)))) if v.size else float("nan")


def curve(rows, experiment, metric):
    """(eps_fractions, eps, values) with geometric means over seeds per eps_fraction."""
    sel = [r for r in rows if r["experiment"] == experiment]
    fractions = sorted({r["eps_fraction"] for r in sel})
    eps = [_geomean([r["eps"] for r in sel if r["eps_fraction"] == f]) for f in fractions]
    vals = [_geomean([r[metric] for r in sel if r["eps_fraction"] == f]) for f in fractions]
    return fractions, eps, vals


SLOPE_METRICS = (
    "product_error",
    "max_feature_angle",
    "max_weight_angle",
    "bias_error",
    "product_error_true",
    "product_error_pmi",
    "network_vs_exact",
    "excess_ratio_minus_one",
)


def _slopes(rows, cfg):
    out = {}
    for name in dict.fromkeys(r["experiment"] for r in rows):
        # Dirichlet joints have no eps sweep; the sampled runs' own eps (||B^||) is floored by sampling
        # noise, so a slope against it says nothing (their curves are plotted instead)
        if name.startswith("dirichlet") or name in ("softmax_sampled", "softmax_lbfgs"):
            continue
        sel = [r for r in rows if r["experiment"] == name and r["eps_fraction"] <= cfg.local_fraction]
        for r in sel:
            r.setdefault(
                "excess_ratio_minus_one",
                abs(r["excess_loss_ratio"] - 1) if math.isfinite(r["excess_loss_ratio"]) else float("nan"),
            )
        out[name] = {}
        for metric in SLOPE_METRICS:
            if metric not in sel[0]:
                continue
            fractions = sorted({r["eps_fraction"] for r in sel})
            eps = [_geomean([r["eps"] for r in sel if r["eps_fraction"] == f]) for f in fractions]
            vals = [_geomean([r[metric] for r in sel if r["eps_fraction"] == f]) for f in fractions]
            out[name][metric] = fit_slope(eps, vals)
        out[name]["product_error_per_seed"] = [
            fit_slope(
                [r["eps"] for r in sel if r["seed"] == s], [r["product_error"] for r in sel if r["seed"] == s]
            )
            for s in cfg.seeds
        ]
    return out


def _summary(rows, slopes, cfg):
    fractions, eps, pe = curve(rows, "softmax", "product_error")
    summary = {
        "eps": eps,
        "eps_fraction": fractions,
        "product_error": pe,
        "slope": slopes["softmax"]["product_error"],
        "local_range": f"eps_fraction <= {cfg.local_fraction}",
        # beyond the local range: the slope between the last local point and the largest eps
        "slope_outside": fit_slope(
            [
                e
                for f, e in zip(fractions, eps, strict=True)
                if f >= max(x for x in fractions if x <= cfg.local_fraction)
            ],
            [
                v
                for f, v in zip(fractions, pe, strict=True)
                if f >= max(x for x in fractions if x <= cfg.local_fraction)
            ],
        ),
        "slope_per_seed": slopes["softmax"]["product_error_per_seed"],
        "max_feature_angle_deg": curve(rows, "softmax", "max_feature_angle")[2],
        "excess_loss_ratio": curve(rows, "softmax", "excess_loss_ratio")[2],
        "product_error_exact": curve(rows, "softmax_exact", "product_error")[2],
        "product_error_pmi": curve(rows, "softmax_exact", "product_error_pmi")[2],
        "product_error_sampled": curve(rows, "softmax_sampled", "product_error")[2],
        "product_error_sampled_vs_true": curve(rows, "softmax_sampled", "product_error_true")[2],
        "sampling_noise_radius": _geomean(
            [r["sampling_radius"] for r in rows if r["experiment"] == "softmax_sampled"]
        ),
        "product_error_mmse": curve(rows, "mmse", "product_error")[2],
        "all_converged": all(
            r["converged"] for r in rows if r["experiment"] not in ("hidden_relu", "softmax_lbfgs")
        ),
        "lbfgs_check": [
            {
                m: r[m]
                for m in (
                    "eps_fraction",
                    "eps",
                    "product_error",
                    "vs_newton",
                    "loss_gap",
                    "n_steps",
                    "converged",
                )
            }
            for r in rows
            if r["experiment"] == "softmax_lbfgs"
        ],
        "not_converged": {
            name: sum(not r["converged"] for r in rows if r["experiment"] == name)
            for name in dict.fromkeys(r["experiment"] for r in rows)
        },
        "slopes": {
            name: {m: v for m, v in d.items() if m != "product_error_per_seed"} for name, d in slopes.items()
        },
    }
    for name in dict.fromkeys(r["experiment"] for r in rows):
        if name.startswith("hidden"):
            summary[f"product_error_{name}"] = curve(rows, name, "product_error")[2]
    for name in ("dirichlet_softmax", "dirichlet_hidden_sigmoid"):
        sel = [r for r in rows if r["experiment"] == name]
        summary[name] = {
            m: [r[m] for r in sel]
            for m in (
                "eps",
                "chi2_radius",
                "product_error",
                "max_feature_angle",
                "excess_loss_ratio",
                "preactivation_spread",
            )
        }
    return summary
