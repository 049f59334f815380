"""Magnification experiments of Zavatone-Veth et al. (2023): does training magnify areas near the
decision boundary?

- :func:`toy_magnification`: 2-D tasks (sinusoid boundary, XOR); the log volume element of the last hidden
  layer's (scaled) features on a grid, before and after training, against the distance to the trained
  net's decision boundary.
- :func:`image_magnification`: a width-2000 sigmoid MLP and a small GELU CNN on the MNIST sample; the
  effective volume on a line between two test images and on a plane through three, against the
  predicted class and the predictive entropy.

Both return frozen dataclasses of numpy arrays with ``to_dict()``; plotting is in ``_plot.py``.
"""

from __future__ import annotations

import logging
import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from netatlas.metric import effective_volume, grid_boundary_distance, volume_element

__all__ = [
    "TOY_CONFIGS",
    "ToyRun",
    "ToyMagnification",
    "ImageModelRun",
    "ImageMagnification",
    "toy_magnification",
    "image_magnification",
    "magnification_stats",
    "small_cnn",
]

log = logging.getLogger(__name__)

# name -> (task, hidden widths, epochs, learning rate); sigmoid activations, Adam, full batch
TOY_CONFIGS = {
    "sinusoid-250": ("sinusoid", (250,), 3000, 0.01),
    "sinusoid-20": ("sinusoid", (20,), 3000, 0.02),
    "sinusoid-5": ("sinusoid", (5,), 3000, 0.02),
    "sinusoid-3x8": ("sinusoid", (8, 8, 8), 3000, 0.01),
    "xor4-250": ("xor4", (250,), 1000, 0.01),
    "xor400-250": ("xor", (250,), 1000, 0.01),
}
QUICK_CONFIGS = ("sinusoid-250", "sinusoid-5", "xor4-250")
_DOMAINS = {"sinusoid": 1.0, "xor4": 2.0, "xor": 2.0}


# -- distances and statistics ----------------------------------------------------------------------
def magnification_stats(log_volume, distance, radius) -> dict:
    """Spearman correlation of log volume element with boundary distance, and the ratio of the mean
    volume element within ``radius`` of the boundary to the mean beyond (> 1: magnified near it).

    Examples
    --------
    >>> d = np.linspace(0, 1, 50)
    >>> s = magnification_stats(-d, d, 0.2)
    >>> round(s["spearman"], 3), s["ratio"] > 1
    (-1.0, True)
    """
    from scipy.stats import spearmanr

    log_volume, distance = np.asarray(log_volume).ravel(), np.asarray(distance).ravel()
    ok = np.isfinite(log_volume) & np.isfinite(distance)
    if ok.sum() < 3:
        return {"spearman": float("nan"), "ratio": float("nan"), "fraction_near": float("nan")}
    lv, dist = log_volume[ok], distance[ok]
    near = dist <= radius
    vol = np.exp(lv - lv.max())  # the ratio does not depend on the common factor
    ratio = float(vol[near].mean() / vol[~near].mean()) if near.any() and (~near).any() else float("nan")
    with warnings.catch_warnings():  # a constant input (e.g. a linear net) has no rank correlation: NaN
        warnings.simplefilter("ignore")
        spearman = float(spearmanr(lv, dist).statistic)
    return {"spearman": spearman, "ratio": ratio, "fraction_near": float(near.mean())}


# -- toy tasks -------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class ToyRun:
    """One toy configuration and seed.

    Attributes
    ----------
    config, task : str
        Configuration name (key of ``TOY_CONFIGS``) and data set.
    hidden : tuple of int
        Hidden widths (sigmoid); the features are the last hidden layer / sqrt(width).
    seed : int
        Seeds the initialisation and the data.
    us, vs : ndarray of shape (n, n)
        Evaluation grid (meshgrid 'xy').
    log_volume_before, log_volume_after : ndarray of shape (n, n)
        Natural log of sqrt(det g) on the grid at initialisation and after training.
    decision_before, decision_after : ndarray of shape (n, n)
        The logit on the grid (decision boundary: 0).
    distance : ndarray of shape (n, n)
        Distance to the trained net's decision boundary (from a fine grid).
    x_train, y_train : ndarray of shape (N, 2), (N,)
    train_accuracy : float
    before, after : dict
        :func:`magnification_stats` at initialisation and after training (same distances).
    before_own : dict
        Stats at initialisation against the untrained net's own boundary (NaN if it has none here).
    change : dict
        Stats of the change ``log_volume_after - log_volume_before`` (where training grew the volume;
        this removes the radial profile the random initialisation already has).
    radius : float
        Distance threshold of the ratio.
    """

    config: str
    task: str
    hidden: tuple
    seed: int
    us: np.ndarray
    vs: np.ndarray
    log_volume_before: np.ndarray
    log_volume_after: np.ndarray
    decision_before: np.ndarray
    decision_after: np.ndarray
    distance: np.ndarray
    x_train: np.ndarray
    y_train: np.ndarray
    train_accuracy: float
    before: dict
    after: dict
    before_own: dict
    change: dict
    radius: float

    def to_dict(self) -> dict:
        return {
            "config": self.config,
            "task": self.task,
            "hidden": list(self.hidden),
            "seed": self.seed,
            "train_accuracy": self.train_accuracy,
            "radius": self.radius,
            "before": self.before,
            "after": self.after,
            "before_own_boundary": self.before_own,
            "change": self.change,
        }


@dataclass(frozen=True, eq=False)
class ToyMagnification:
    """All toy runs, with per-configuration means and standard deviations over seeds."""

    runs: tuple
    summary: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"summary": self.summary, "runs": [r.to_dict() for r in self.runs]}


def _toy_data(task, seed):
    from netatlas import data

    if task == "sinusoid":
        return data.sinusoid(400, seed=seed)
    if task == "xor4":
        return data.xor4(seed=seed)
    return data.xor(400, seed=seed)


def _decision(model, points):
    with torch.no_grad():
        return model(torch.as_tensor(points, dtype=torch.float32)).double().reshape(-1).numpy()


def _toy_run(config, seed, *, n_grid, n_fine, radius_fraction, epochs_scale):
    from netatlas.nets import mlp
    from netatlas.train import fit

    task, hidden, epochs, lr = TOY_CONFIGS[config]
    half = _DOMAINS[task]
    data = _toy_data(task, seed)
    model = mlp([2, *hidden, 1], "sigmoid", seed=seed)
    feature = (model, str(2 * len(hidden) - 1))  # the last hidden activation, scaled by 1/sqrt(width)
    grid = (np.arange(n_grid) + 0.5) / n_grid * 2 * half - half
    us, vs = np.meshgrid(grid, grid)
    points = np.stack([us.ravel(), vs.ravel()], 1)
    fine = np.linspace(-half, half, n_fine)
    fus, fvs = np.meshgrid(fine, fine)
    fine_points = np.stack([fus.ravel(), fvs.ravel()], 1)
    x_points = torch.from_numpy(points)
    log_before = volume_element(feature, x_points).reshape(us.shape)
    decision_before = _decision(model, points).reshape(us.shape)
    own_distance = grid_boundary_distance(_decision(model, fine_points).reshape(fus.shape), fus, fvs, points)
    n_epochs = max(1, int(epochs * epochs_scale))
    history = fit(
        model, data, loss="bce", lr=lr, epochs=n_epochs, seed=seed, progress=False, eval_every=n_epochs
    )
    log_after = volume_element(feature, x_points).reshape(us.shape)
    decision_after = _decision(model, points).reshape(us.shape)
    distance = grid_boundary_distance(_decision(model, fine_points).reshape(fus.shape), fus, fvs, points)
    radius = radius_fraction * 2 * half
    x_train, y_train = data.x.numpy().astype(np.float64), data.y.numpy()
    with torch.no_grad():
        accuracy = float(((model(data.x).reshape(-1) > 0).long() == data.y).double().mean())
    log.info(
        "%s seed %d: train accuracy %.3f after %d epochs (final loss %.4g)",
        config,
        seed,
        accuracy,
        len(history.loss),
        history.loss[-1] if len(history.loss) else float("nan"),
    )
    return ToyRun(
        config,
        task,
        tuple(hidden),
        seed,
        us,
        vs,
        log_before,
        log_after,
        decision_before,
        decision_after,
        distance.reshape(us.shape),
        x_train,
        y_train,
        accuracy,
        magnification_stats(log_before, distance, radius),
        magnification_stats(log_after, distance, radius),
        magnification_stats(log_before, own_distance, radius),
        magnification_stats(log_after - log_before, distance, radius),
        radius,
    )


def _mean_sd(values):
    arr = np.asarray([v for v in values if v is not None and np.isfinite(v)], dtype=np.float64)
    if len(arr) == 0:
        return {"mean": float("nan"), "sd": float("nan"), "n": 0}
    return {"mean": float(arr.mean()), "sd": float(arr.std(ddof=1)) if len(arr) > 1 else 0.0, "n": len(arr)}


def toy_magnification(
    configs=None,
    seeds=(0, 1, 2),
    *,
    n_grid: int = 100,
    n_fine: int = 400,
    radius_fraction: float = 0.05,
    epochs_scale: float = 1.0,
    callback=None,
) -> ToyMagnification:
    """Train the toy configurations over seeds and measure magnification near the decision boundary.

    Parameters
    ----------
    configs : sequence of str, optional
        Keys of ``TOY_CONFIGS`` (default all).
    seeds : sequence of int
        One run per seed (initialisation and data).
    n_grid : int
        Evaluation grid is n_grid x n_grid over the task's square domain.
    n_fine : int
        Fine grid for locating the decision boundary.
    radius_fraction : float
        "Near the boundary" means within this fraction of the domain's side length.
    epochs_scale : float
        Multiplies every configuration's number of epochs (e.g. 0.3 for a quick run).
    callback : callable, optional
        Called with each finished :class:`ToyRun` (progress reporting).

    Returns
    -------
    ToyMagnification
        ``summary[config]`` has mean/sd over seeds of the Spearman correlation and the near/far
        volume ratio, before and after training, and the training accuracy.
    """
    configs = tuple(TOY_CONFIGS) if configs is None else tuple(configs)
    unknown = [c for c in configs if c not in TOY_CONFIGS]
    if unknown:
        raise ValueError(f"toy_magnification: unknown configs {unknown}; choose from {list(TOY_CONFIGS)}")
    if n_grid < 4 or n_fine < 10:
        raise ValueError(f"toy_magnification: need n_grid >= 4 and n_fine >= 10; got {n_grid}, {n_fine}")
    runs = []
    for config in configs:
        for seed in seeds:
            run = _toy_run(
                config,
                int(seed),
                n_grid=n_grid,
                n_fine=n_fine,
                radius_fraction=radius_fraction,
                epochs_scale=epochs_scale,
            )
            runs.append(run)
            if callback is not None:
                callback(run)
    summary = {}
    for config in configs:
        mine = [r for r in runs if r.config == config]
        summary[config] = {
            "train_accuracy": _mean_sd([r.train_accuracy for r in mine]),
            "spearman_before": _mean_sd([r.before["spearman"] for r in mine]),
            "spearman_after": _mean_sd([r.after["spearman"] for r in mine]),
            "ratio_before": _mean_sd([r.before["ratio"] for r in mine]),
            "ratio_after": _mean_sd([r.after["ratio"] for r in mine]),
            "spearman_before_own_boundary": _mean_sd([r.before_own["spearman"] for r in mine]),
            "ratio_before_own_boundary": _mean_sd([r.before_own["ratio"] for r in mine]),
            "spearman_change": _mean_sd([r.change["spearman"] for r in mine]),
            "ratio_change": _mean_sd([r.change["ratio"] for r in mine]),
        }
    return ToyMagnification(tuple(runs), summary)


# -- images ----------------------------------------------------------------------------------------
def small_cnn(seed: int = 0) -> nn.Sequential:
    """A small GELU CNN for 1 x 28 x 28 inputs; layer "6" is its 64-d penultimate feature layer.

    Examples
    --------
    >>> small_cnn()(torch.zeros(2, 1, 28, 28)).shape
    torch.Size([2, 10])
    """
    generator = torch.Generator().manual_seed(seed)
    model = nn.Sequential(
        nn.Conv2d(1, 8, 5, stride=2, padding=2),
        nn.GELU(),  # 0, 1 -> 8 x 14 x 14
        nn.Conv2d(8, 16, 5, stride=2, padding=2),
        nn.GELU(),  # 2, 3 -> 16 x 7 x 7
        nn.Flatten(),  # 4
        nn.Linear(16 * 7 * 7, 64),
        nn.GELU(),  # 5, 6 (features)
        nn.Linear(64, 10),  # 7
    )
    with torch.no_grad():
        for module in model:
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                fan_in = module.weight[0].numel()
                bound = 1 / math.sqrt(fan_in)
                module.weight.uniform_(-bound, bound, generator=generator)
                module.bias.uniform_(-bound, bound, generator=generator)
    return model


@dataclass(frozen=True, eq=False)
class ImageModelRun:
    """One image model on the line and the plane.

    Attributes
    ----------
    model : str
    test_accuracy : float
    line_t : ndarray of shape (L,)
        Line parameters (0 and 1 are the two anchor images).
    line_effective_volume, line_entropy : ndarray of shape (L,)
        sum log10 sigma_i(J / sqrt(m)) of the feature layer, and the predictive entropy (nats).
    line_class : ndarray of shape (L,)
        Predicted class.
    plane_us, plane_vs : ndarray of shape (n, n)
    plane_effective_volume, plane_entropy, plane_class : ndarray of shape (n, n)
    stats : dict
        Spearman correlations of effective volume with entropy (line, plane), and the mean effective
        volume where the predicted class changes between neighbours vs elsewhere (plane).
    """

    model: str
    feature: str
    n_features: int
    test_accuracy: float
    line_t: np.ndarray
    line_effective_volume: np.ndarray
    line_entropy: np.ndarray
    line_class: np.ndarray
    plane_us: np.ndarray
    plane_vs: np.ndarray
    plane_effective_volume: np.ndarray
    plane_entropy: np.ndarray
    plane_class: np.ndarray
    stats: dict

    def to_dict(self) -> dict:
        return {
            "model": self.model,
            "feature": self.feature,
            "n_features": self.n_features,
            "test_accuracy": self.test_accuracy,
            "stats": self.stats,
        }


@dataclass(frozen=True, eq=False)
class ImageMagnification:
    """Both image models, with the anchor images and their labels."""

    runs: tuple
    anchors: np.ndarray  # (3, 28, 28)
    anchor_labels: tuple
    anchor_plane_coords: np.ndarray  # (3, 2)
    settings: dict

    def to_dict(self) -> dict:
        return {
            "settings": self.settings,
            "anchor_labels": list(self.anchor_labels),
            "runs": [r.to_dict() for r in self.runs],
        }


def _entropy_and_class(model, x):
    with torch.no_grad():
        logits = model(torch.as_tensor(x, dtype=torch.float32)).double()
    logp = torch.log_softmax(logits, -1)
    return (-(logp.exp() * logp).sum(-1)).numpy(), logits.argmax(-1).numpy()


def _class_change(classes):
    change = np.zeros(classes.shape, dtype=bool)
    change[:, :-1] |= classes[:, :-1] != classes[:, 1:]
    change[:, 1:] |= classes[:, :-1] != classes[:, 1:]
    change[:-1] |= classes[:-1] != classes[1:]
    change[1:] |= classes[:-1] != classes[1:]
    return change


def image_magnification(
    *,
    width: int = 2000,
    n_train: int | None = None,
    epochs: int = 8,
    cnn_epochs: int = 4,
    n_line: int = 41,
    n_plane: int = 15,
    anchor_classes=(1, 6, 0),
    seed: int = 0,
    models=("mlp", "cnn"),
) -> ImageMagnification:
    """Effective volume of trained image models on a line between two test images and a plane
    through three, against predicted class and predictive entropy.

    Parameters
    ----------
    width : int
        Hidden width of the sigmoid MLP (features: its hidden layer / sqrt(width)).
    n_train : int, optional
        Number of MNIST-sample images used (default all 5,000: 3,750 train).
    epochs, cnn_epochs : int
        Adam epochs (mini-batch 128) for the MLP and the CNN.
    n_line : int
        Points on the line, t in [-0.25, 1.25] (the anchors at 0 and 1).
    n_plane : int
        The plane grid is n_plane x n_plane over [-1, 1]^2 (``Plane.through`` convention).
    anchor_classes : 3 ints
        Classes of the anchor test images (the line joins the first two).
    seed : int
        Initialisation, data subset and training order.
    models : subset of ("mlp", "cnn")

    Returns
    -------
    ImageMagnification
    """
    from netatlas import data as datasets
    from netatlas.nets import mlp
    from netatlas.slices import Line, Plane
    from netatlas.train import fit

    if len(anchor_classes) != 3:
        raise ValueError(f"image_magnification: anchor_classes needs 3 classes; got {anchor_classes!r}")
    unknown = set(models) - {"mlp", "cnn"}
    if unknown:
        raise ValueError(f"image_magnification: unknown models {sorted(unknown)}; choose from ('mlp', 'cnn')")
    data = datasets.mnist_sample(n_train, seed=seed)
    anchors_idx = []
    for c in anchor_classes:
        hits = (data.y_test == c).nonzero().flatten()
        if len(hits) == 0:
            raise ValueError(f"image_magnification: no test image of class {c}")
        anchors_idx.append(int(hits[0]))
    anchors = data.x_test[anchors_idx].double().numpy()  # (3, 1, 28, 28)
    line = Line(anchors[0], anchors[1])
    line_t = np.linspace(-0.25, 1.25, n_line)
    plane = Plane.through(*anchors)
    us, vs = plane.grid(n_plane)
    line_x = torch.from_numpy(line.to_input(line_t))
    plane_x = torch.from_numpy(plane.to_input(np.stack([us.ravel(), vs.ravel()], 1)))
    runs = []
    for name in models:
        if name == "mlp":
            model = nn.Sequential(nn.Flatten(), *mlp([784, width, 10], "sigmoid", seed=seed))
            feature, n_features, n_epochs, description = "2", width, epochs, f"MLP 784-{width}-10 sigmoid"
        else:
            model = small_cnn(seed)
            feature, n_features, n_epochs, description = "6", 64, cnn_epochs, "CNN (2 conv + 64 GELU)"
        history = fit(
            model,
            data,
            lr=1e-3,
            epochs=n_epochs,
            batch_size=128,
            seed=seed,
            progress=False,
            eval_every=max(n_epochs, 1),
        )
        model.eval()
        with torch.no_grad():
            test_accuracy = float((model(data.x_test).argmax(-1) == data.y_test).double().mean())
        log.info("%s: test accuracy %.3f after %d epochs", description, test_accuracy, len(history.loss))
        ev_line = effective_volume((model, feature), line_x)
        ev_plane = effective_volume((model, feature), plane_x).reshape(us.shape)
        ent_line, cls_line = _entropy_and_class(model, line_x)
        ent_plane, cls_plane = _entropy_and_class(model, plane_x)
        ent_plane, cls_plane = ent_plane.reshape(us.shape), cls_plane.reshape(us.shape)
        runs.append(
            ImageModelRun(
                description,
                f"layer {feature} / sqrt({n_features})",
                n_features,
                test_accuracy,
                line_t,
                ev_line,
                ent_line,
                cls_line,
                us,
                vs,
                ev_plane,
                ent_plane,
                cls_plane,
                _image_stats(ev_line, ent_line, ev_plane, ent_plane, cls_plane),
            )
        )
    settings = {
        "width": width,
        "n_train": n_train,
        "epochs": epochs,
        "cnn_epochs": cnn_epochs,
        "n_line": n_line,
        "n_plane": n_plane,
        "anchor_classes": list(anchor_classes),
        "seed": seed,
        "anchor_test_indices": anchors_idx,
    }
    return ImageMagnification(
        tuple(runs), anchors[:, 0], tuple(int(c) for c in data.y_test[anchors_idx]), plane.anchors, settings
    )


def _image_stats(ev_line, ent_line, ev_plane, ent_plane, cls_plane):
    from scipy.stats import spearmanr

    change = _class_change(cls_plane)
    finite = np.isfinite(ev_plane)
    near = ev_plane[change & finite]
    far = ev_plane[~change & finite]
    return {
        "spearman_line_entropy": float(spearmanr(ev_line, ent_line).statistic),
        "spearman_plane_entropy": float(spearmanr(ev_plane[finite], ent_plane[finite]).statistic),
        "plane_mean_at_class_change": float(near.mean()) if len(near) else float("nan"),
        "plane_mean_elsewhere": float(far.mean()) if len(far) else float("nan"),
        "plane_fraction_class_change": float(change.mean()),
    }
