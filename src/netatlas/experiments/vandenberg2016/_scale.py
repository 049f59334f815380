"""Weight scale vs sample density (van den Berg 2016, C5): the gradient-mass table, scaled trained nets,
training from large init scales, and weight decay."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import torch

from netatlas.dynamics import (
    BELL_SHAPED,
    expected_gradient_mass,
    gradient_concentration,
    gradient_mass,
    per_sample_gradient_norms,
    predicted_gradient_mass,
    projected_density,
    scale_model,
    square_projected_density,
    zone_width,
)

__all__ = [
    "GradientMassTable",
    "ScaleStudy",
    "gradient_mass_table",
    "scale_study",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class GradientMassTable:
    """The C5 table: ``sum_i sigma'(w.x_i + b)`` for N uniform samples on [-1, 1]^2, b = 0, at several ``||w||``.

    Attributes
    ----------
    w_norm : ndarray of shape (n_scales,)
    measured : ndarray of shape (n_seeds, n_scales)
        The sum for each seed's sample (seed ``seed + k`` in row k).
    predicted : ndarray of shape (n_scales,)
        Large-scale prediction ``N rho_perp(0)/||w||``.
    expected : ndarray of shape (n_scales,)
        Exact expectation ``N int rho_perp(t) sigma'(||w|| t) dt`` at each scale (quadrature).
    n_samples : int
    direction : ndarray of shape (2,)
        Unit direction of w (the diagonal gives ``rho_perp(0) = 1/sqrt(2)``, as in docs/papers/vandenberg2016.md).
    seed : int
    """

    w_norm: np.ndarray
    measured: np.ndarray
    predicted: np.ndarray
    expected: np.ndarray
    n_samples: int
    direction: np.ndarray
    seed: int

    def rows(self) -> list[dict]:
        """One dict per scale: measured (seed 0, mean, sd), expected, predicted, z-score of the mean."""
        out = []
        for k, w in enumerate(self.w_norm):
            m = self.measured[:, k]
            sd = float(m.std(ddof=1)) if len(m) > 1 else float("nan")
            se = sd / math.sqrt(len(m)) if len(m) > 1 else float("nan")
            out.append({"w_norm": float(w), "measured_first_seed": float(m[0]), "measured_mean": float(m.mean()),
                        "measured_sd": sd, "expected": float(self.expected[k]),
                        "predicted": float(self.predicted[k]),
                        "z_mean_vs_expected": float((m.mean() - self.expected[k]) / se) if se > 0 else None})
        return out

    def to_dict(self) -> dict:
        return {"w_norm": self.w_norm, "measured": self.measured, "predicted": self.predicted,
                "expected": self.expected, "n_samples": self.n_samples, "direction": self.direction,
                "seed": self.seed, "rows": self.rows()}


def gradient_mass_table(w_norms=(16.0, 64.0, 256.0, 1024.0), *, n_samples: int = 2000, n_seeds: int = 10,
                        direction=(1.0, 1.0), seed: int = 0) -> GradientMassTable:
    """Reproduce the C5 table of docs/papers/vandenberg2016.md: gradient mass of one sigmoid unit vs ``||w||``.

    Parameters
    ----------
    w_norms : sequence of float
    n_samples : int
        Samples drawn uniformly on [-1, 1]^2 for each seed.
    n_seeds : int
        Independent samples (seeds ``seed, seed + 1, ...``).
    direction : (2,) array_like
        Direction of w (b = 0).

    Examples
    --------
    >>> t = gradient_mass_table((16.0, 1024.0), n_seeds=2)
    >>> t.predicted.round(1).tolist()
    [88.4, 1.4]
    """
    w_norms = np.asarray(w_norms, dtype=np.float64)
    if np.any(w_norms <= 0):
        raise ValueError(f"gradient_mass_table: w_norms must be positive, got {w_norms.tolist()}")
    if n_seeds < 1 or n_samples < 1:
        raise ValueError(f"gradient_mass_table: n_seeds and n_samples must be >= 1, got {n_seeds}, {n_samples}")
    u = np.asarray(direction, dtype=np.float64)
    u = u / np.linalg.norm(u)
    measured = np.empty((n_seeds, len(w_norms)))
    for k in range(n_seeds):
        x = np.random.default_rng(seed + k).uniform(-1, 1, (n_samples, 2))
        t = x @ u
        measured[k] = [gradient_mass(w * t, "sigmoid") for w in w_norms]
    rho0 = square_projected_density(0.0, u)
    predicted = predicted_gradient_mass(n_samples, rho0, w_norms)
    expected = np.array([expected_gradient_mass(n_samples, lambda s: square_projected_density(s, u), w,
                                                n_grid=400_001, span=2.0) for w in w_norms])
    return GradientMassTable(w_norms, measured, np.atleast_1d(predicted), expected, n_samples, u, seed)


@dataclass(frozen=True)
class ScaleStudy:
    """Scaled copies of a trained net, training from several init scales, and weight decay on/off.

    Attributes
    ----------
    scales : ndarray of shape (n_scales,)
        The factors c applied to every parameter of the trained net (``static_*``) and to the init
        (``init_*``).
    static_w_norm, static_zone_width, static_concentration, static_mean_grad, static_accuracy,
    static_loss : ndarray of shape (n_scales,)
        For the trained net scaled by c: mean first-layer ||w||, mean first-layer zone width (eps),
        fraction of samples carrying 90% of the gradient, mean per-sample gradient norm, training
        accuracy and loss.
    static_concentration_first_layer : ndarray of shape (n_scales,)
        Fraction of samples carrying 90% of the *first layer's* gradient (the zones' own share).
    static_mass_measured, static_mass_predicted : ndarray of shape (n_scales, n_units)
        C5 on the trained net: per first-layer unit, ``sum_i phi'(z_i)`` and its large-scale prediction
        ``N rho_perp(-b/||w||) int phi'/||w||`` with rho_perp a KDE of the training inputs.
    init_loss, init_accuracy : ndarray of shape (n_scales, n_epochs)
        Training curves from an initialisation scaled by c.
    init_concentration : ndarray of shape (n_scales, n_records)
        Gradient concentration during those runs (records at ``record_epochs``).
    init_first_layer_grad : ndarray of shape (n_scales, n_records)
        Mean per-sample gradient norm of the first layer's parameters during those runs.
    init_first_layer_change : ndarray of shape (n_scales,)
        ``||W_end - W_start|| / ||W_start||`` of the first layer: how far its hyperplanes moved (a
        stalled first layer has ~0).
    record_epochs : ndarray of shape (n_records,)
    weight_decays : ndarray of shape (n_decays,)
    decay_w_norm, decay_concentration, decay_zone_width : ndarray of shape (n_decays, n_decay_records)
        Mean first-layer ||w||, concentration and zone width while training with each weight decay.
    decay_first_layer_concentration : ndarray of shape (n_decays, n_decay_records)
        Concentration of the first layer's gradient alone.
    decay_record_epochs : ndarray of shape (n_decay_records,)
    decay_accuracy : ndarray of shape (n_decays,)
        Final test accuracy of each weight-decay run.
    config : dict
    """

    scales: np.ndarray
    static_w_norm: np.ndarray
    static_zone_width: np.ndarray
    static_concentration: np.ndarray
    static_mean_grad: np.ndarray
    static_accuracy: np.ndarray
    static_loss: np.ndarray
    static_concentration_first_layer: np.ndarray
    static_mass_measured: np.ndarray
    static_mass_predicted: np.ndarray
    init_loss: np.ndarray
    init_accuracy: np.ndarray
    init_concentration: np.ndarray
    init_first_layer_grad: np.ndarray
    init_first_layer_change: np.ndarray
    record_epochs: np.ndarray
    weight_decays: np.ndarray
    decay_w_norm: np.ndarray
    decay_concentration: np.ndarray
    decay_zone_width: np.ndarray
    decay_first_layer_concentration: np.ndarray
    decay_record_epochs: np.ndarray
    decay_accuracy: np.ndarray
    config: dict

    def stall_epochs(self, threshold: float = 0.9) -> np.ndarray:
        """(n_scales,) first epoch whose training accuracy reaches ``threshold`` (inf if never): large
        init scales stall."""
        out = np.full(len(self.scales), np.inf)
        for k, acc in enumerate(self.init_accuracy):
            hit = np.flatnonzero(acc >= threshold)
            if len(hit):
                out[k] = hit[0] + 1
        return out

    def mass_ratio(self) -> np.ndarray:
        """(n_scales,) median over first-layer units of measured / predicted gradient mass."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.nanmedian(self.static_mass_measured / self.static_mass_predicted, axis=1)

    def to_dict(self) -> dict:
        out = {k: getattr(self, k) for k in self.__dataclass_fields__}
        out["stall_epochs"] = self.stall_epochs()
        out["mass_ratio"] = self.mass_ratio()
        return out


def _first_layer_stats(model, activation, eps):
    W = model[0].weight.detach().double()
    norms = torch.linalg.vector_norm(W, dim=1).numpy()
    return float(norms.mean()), float(np.mean(zone_width(np.maximum(norms, 1e-300), activation, eps)))


def _c5_per_unit(model, x, activation):
    W = model[0].weight.detach().double().numpy()
    b = model[0].bias.detach().double().numpy()
    x64 = x.double().numpy()
    measured = gradient_mass(x64 @ W.T + b, activation)
    norms = np.linalg.norm(W, axis=1)
    density = np.array([projected_density(x64, W[j], b[j]) for j in range(len(W))])
    return measured, predicted_gradient_mass(len(x64), density, norms, activation)


def scale_study(
    data,
    *,
    activation: str = "sigmoid",
    widths=(16,),
    scales=(0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0),
    epochs: int = 200,
    init_epochs: int = 200,
    optimizer: str = "sgd",
    lr: float = 0.5,
    weight_decays=(0.0, 1e-3),
    decay_epochs: int = 600,
    record_every: int = 10,
    init_layers: str = "first",
    eps: float = 0.1,
    seed: int = 0,
) -> ScaleStudy:
    """How weight scale sets zone width, gradient concentration and trainability (C2, C5).

    Three parts, all on ``data`` (a 2-class or multi-class :class:`netatlas.data.Dataset`):

    1. *static*: train an MLP (Adam, ``epochs``), multiply every parameter by each c, and measure the
       zone width, the fraction of samples carrying 90% of the gradient and the per-unit C5 gradient
       mass against its prediction;
    2. *init*: train from an initialisation whose ``init_layers`` ("first" by default: the zones only)
       are multiplied by c, with ``optimizer`` (plain SGD by default, whose steps shrink with the
       gradient), recording loss, accuracy, first-layer gradient and concentration: large c stalls;
    3. *decay*: train from the default init with each weight decay and follow ``||w||``, zone width and
       concentration.

    Parameters
    ----------
    data : Dataset
    activation : str
        Hidden activation (sigmoid or tanh for the C5 comparison; others skip it).
    widths : sequence of int
        Hidden widths.

    Returns
    -------
    ScaleStudy
    """
    from netatlas.dynamics import GradientTracker
    from netatlas.nets import mlp
    from netatlas.train import fit

    scales = np.asarray(scales, dtype=np.float64)
    if np.any(scales <= 0):
        raise ValueError(f"scale_study: scales must be positive, got {scales.tolist()}")
    x, y = data.x, data.y
    n_classes = int(data.n_classes)
    sizes = [int(np.prod(data.x.shape[1:])), *widths, n_classes]
    base = mlp(sizes, activation, seed=seed)
    fit(base, data, lr=1e-2, epochs=epochs, seed=seed)
    logger.info("scale_study: base net trained")
    smooth = activation in BELL_SHAPED
    static = {k: [] for k in ("w", "zone", "conc", "conc1", "grad", "acc", "loss", "mass_m", "mass_p")}
    for c in scales:
        model = scale_model(base, float(c))
        w_norm, width = _first_layer_stats(model, activation, eps) if smooth or activation not in (
            "relu", "leaky_relu") else (_first_layer_stats(model, "sigmoid", eps)[0], 0.0)
        g = per_sample_gradient_norms(model, x, y)
        with torch.no_grad():
            logits = model(x)
            static["acc"].append(float((logits.argmax(1) == y).float().mean()))
            static["loss"].append(float(torch.nn.functional.cross_entropy(logits, y)))
        static["w"].append(w_norm)
        static["zone"].append(width)
        static["conc"].append(gradient_concentration(g.total))
        static["conc1"].append(gradient_concentration(g.per_layer[:, 0]))
        static["grad"].append(float(g.total.mean()))
        if smooth:
            m, p = _c5_per_unit(model, x, activation)
        else:
            m = p = np.full(widths[0], np.nan)
        static["mass_m"].append(m)
        static["mass_p"].append(p)

    record_epochs = np.arange(0, init_epochs + 1, record_every)
    init_loss, init_acc, init_conc, init_grad, init_change = [], [], [], [], []
    for c in scales:
        model = scale_model(mlp(sizes, activation, seed=seed), float(c), layers=init_layers)
        tracker = GradientTracker(x, y, every=record_every)
        tracker.record(model, 0)
        start = torch.cat([model[0].weight.detach().ravel(), model[0].bias.detach().ravel()]).double()
        history = fit(model, data, optimizer=optimizer, lr=lr, epochs=init_epochs, seed=seed, callbacks=[tracker])
        init_loss.append(history.loss)
        init_acc.append(history.accuracy)
        init_conc.append(tracker.result().concentration)
        init_grad.append(tracker.result().layer_mean_norm[:, 0])
        end = torch.cat([model[0].weight.detach().ravel(), model[0].bias.detach().ravel()]).double()
        init_change.append(float(torch.linalg.vector_norm(end - start) / torch.linalg.vector_norm(start)))
        logger.info("scale_study: init scale %g trained", c)

    decay_record_epochs = np.arange(0, decay_epochs + 1, record_every)
    d_w, d_conc, d_zone, d_acc, d_conc1 = [], [], [], [], []
    for wd in weight_decays:
        model = mlp(sizes, activation, seed=seed)
        tracker = GradientTracker(x, y, every=record_every)
        tracker.record(model, 0)
        history = fit(model, data, lr=1e-2, epochs=decay_epochs, weight_decay=float(wd), seed=seed,
                      callbacks=[tracker])
        trace = tracker.result()
        d_w.append(trace.first_layer_weight_norm)
        d_conc.append(trace.concentration)
        d_conc1.append(trace.first_layer_concentration)
        zone_act = activation if activation not in ("relu", "leaky_relu") else "sigmoid"
        d_zone.append(zone_width(trace.first_layer_weight_norm, zone_act, eps))
        d_acc.append(np.nan if history.test_accuracy is None else float(history.test_accuracy[-1]))
    config = dict(activation=activation, widths=list(widths), scales=scales.tolist(), epochs=epochs,
                  init_epochs=init_epochs, optimizer=optimizer, lr=lr, weight_decays=list(weight_decays),
                  decay_epochs=decay_epochs, record_every=record_every, init_layers=init_layers, eps=eps, seed=seed,
                  dataset=getattr(data, "name", "?"), n_train=len(x))
    return ScaleStudy(
        scales, np.array(static["w"]), np.array(static["zone"]), np.array(static["conc"]),
        np.array(static["grad"]), np.array(static["acc"]), np.array(static["loss"]),
        np.array(static["conc1"]), np.stack(static["mass_m"]), np.stack(static["mass_p"]),
        np.stack(init_loss), np.stack(init_acc), np.stack(init_conc), np.stack(init_grad), np.array(init_change),
        record_epochs,
        np.asarray(weight_decays, dtype=np.float64), np.stack(d_w), np.stack(d_conc), np.stack(d_zone),
        np.stack(d_conc1), decay_record_epochs, np.array(d_acc), config)
