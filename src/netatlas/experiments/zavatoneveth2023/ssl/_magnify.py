"""Magnification of a representation on lines and planes through test images, next to class structure.

For an encoder ``Phi`` (images -> R^m) this measures, at every point of a slice of input space,

- the effective volume ``sum_{i<=k} log10 sigma_i(J / sqrt(m))`` of the full-input Jacobian
  (:func:`netatlas.metric.effective_volume`, through ``(model, "encoder")``: features scaled by
  ``1/sqrt(m)``, ``k = min(m, d)``);
- on planes also ``log10 sqrt(det(U^T J^T J U))``, the area element of the plane's own 2 x 2 metric
  (:func:`netatlas.metric.plane_metric`), a different quantity;
- a linear probe's predictive entropy (logistic regression on frozen, standardised features, in nats)
  and its label;
- the label of the nearest class mean in feature space and its relative margin
  ``(d_2 - d_1) / (d_2 + d_1)`` (distances to the nearest and second-nearest class mean).

Magnification "concentrates between classes" when effective volume rises where the probe is unsure;
:func:`slice_correlations` summarises that by Spearman rank correlations within every slice.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from netatlas.experiments.zavatoneveth2023.ssl._stats import spearman
from netatlas.slices import Line, Plane

__all__ = [
    "LinearProbe",
    "SliceMeasures",
    "SliceSpec",
    "class_means",
    "encode",
    "fit_linear_probe",
    "make_slices",
    "measure_slices",
    "nearest_class_mean",
    "slice_correlations",
]


def encode(encoder: nn.Module, images, *, batch_size: int = 2048) -> np.ndarray:
    """Representations ``encoder(images)`` as a float64 array (N, m), in eval mode, without gradients.

    The encoder's mode is restored afterwards.

    Examples
    --------
    >>> import torch
    >>> encode(torch.nn.Flatten(), torch.zeros(3, 1, 2, 2)).shape
    (3, 4)
    """
    images = torch.as_tensor(images)
    dtype = next((p.dtype for p in encoder.parameters()), torch.float32)
    was_training = encoder.training
    encoder.eval()
    try:
        with torch.no_grad():
            parts = [encoder(images[i:i + batch_size].to(dtype)).reshape(min(batch_size, len(images) - i), -1)
                     for i in range(0, len(images), batch_size)]
    finally:
        encoder.train(was_training)
    return torch.cat(parts).double().numpy()


@dataclass(frozen=True, eq=False)
class LinearProbe:
    """Logistic regression on standardised frozen features (scikit-learn, lbfgs, L2 with ``C``).

    Attributes
    ----------
    pipeline : sklearn Pipeline
        StandardScaler -> LogisticRegression.
    n_classes : int
    train_accuracy : float
    C : float
    """

    pipeline: object
    n_classes: int
    train_accuracy: float
    C: float

    def predict_proba(self, features) -> np.ndarray:
        """Class probabilities (N, n_classes) (columns for classes absent in training are 0)."""
        proba = self.pipeline.predict_proba(np.asarray(features, dtype=np.float64))
        out = np.zeros((len(proba), self.n_classes))
        out[:, self.pipeline.classes_] = proba
        return out

    def entropy(self, features) -> np.ndarray:
        """Predictive entropy ``-sum_c p_c log p_c`` in nats, shape (N,); at most log(n_classes)."""
        p = self.predict_proba(features)
        return -(p * np.log(np.clip(p, 1e-300, None))).sum(1)

    def predict(self, features) -> np.ndarray:
        return self.predict_proba(features).argmax(1)

    def accuracy(self, features, labels) -> float:
        return float((self.predict(features) == np.asarray(labels)).mean())

    def to_dict(self) -> dict:
        return {"n_classes": self.n_classes, "train_accuracy": self.train_accuracy, "C": self.C}


def fit_linear_probe(features, labels, *, n_classes: int | None = None, C: float = 1.0,
                     max_iter: int = 2000) -> LinearProbe:
    """Fit a multinomial logistic-regression probe on frozen features (deterministic: lbfgs).

    Parameters
    ----------
    features : array of shape (N, m)
    labels : int array of shape (N,)
    n_classes : int, optional
        Number of classes (default ``labels.max() + 1``).
    C : float
        Inverse L2 strength (scikit-learn's convention).

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([[0.0], [0.1], [1.0], [1.1]]); y = np.array([0, 0, 1, 1])
    >>> probe = fit_linear_probe(x, y)
    >>> probe.accuracy(x, y), bool(probe.entropy([[0.55]])[0] > probe.entropy([[0.0]])[0])
    (1.0, True)
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    features = np.asarray(features, dtype=np.float64)
    labels = np.asarray(labels).astype(np.int64)
    if features.ndim != 2 or len(features) != len(labels):
        raise ValueError(f"fit_linear_probe: features must be (N, m) and labels (N,); got {features.shape} and "
                         f"{labels.shape}")
    n_classes = int(labels.max()) + 1 if n_classes is None else int(n_classes)
    pipeline = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=max_iter))
    pipeline.fit(features, labels)
    train_accuracy = float((pipeline.predict(features) == labels).mean())
    return LinearProbe(pipeline, n_classes, train_accuracy, float(C))


def class_means(features, labels, n_classes: int) -> np.ndarray:
    """Mean feature vector of every class, shape (n_classes, m) (NaN rows for absent classes).

    >>> class_means([[0.0], [2.0], [5.0]], [0, 0, 1], 2)
    array([[1.],
           [5.]])
    """
    features, labels = np.asarray(features, dtype=np.float64), np.asarray(labels)
    return np.stack([features[labels == c].mean(0) if (labels == c).any() else np.full(features.shape[1], np.nan)
                     for c in range(n_classes)])


def nearest_class_mean(features, means) -> tuple[np.ndarray, np.ndarray]:
    """Label of the nearest class mean and the relative margin ``(d2 - d1) / (d2 + d1)`` in [0, 1].

    A margin near 0 means the point is about as far from two class means: between clusters.

    >>> labels, margin = nearest_class_mean([[0.0], [0.5], [0.9]], [[0.0], [1.0]])
    >>> labels.tolist(), margin.round(2).tolist()
    ([0, 0, 1], [1.0, 0.0, 0.8])
    """
    features, means = np.asarray(features, dtype=np.float64), np.asarray(means, dtype=np.float64)
    distance = np.sqrt(((features[:, None, :] - means[None]) ** 2).sum(-1))
    distance = np.where(np.isnan(distance), np.inf, distance)
    order = np.argsort(distance, axis=1)
    d1 = np.take_along_axis(distance, order[:, :1], 1)[:, 0]
    d2 = np.take_along_axis(distance, order[:, 1:2], 1)[:, 0]
    with np.errstate(invalid="ignore", divide="ignore"):
        margin = np.where(d1 + d2 > 0, (d2 - d1) / (d2 + d1), 0.0)
    return order[:, 0], margin


@dataclass(frozen=True, eq=False)
class SliceSpec:
    """One line between two test images, or one plane through three (``Plane.through`` convention).

    Attributes
    ----------
    kind : {"line", "plane"}
    anchors : tuple of int
        Indices into the test set (2 for a line, 3 for a plane).
    anchor_labels : tuple of int
    geometry : Line or Plane
    coords : ndarray of shape (P,) for a line (t in [0, 1]) or (P, 2) for a plane (u, v in [-1, 1])
    grid_shape : tuple of int
        ``(P,)`` for a line, ``(n, n)`` for a plane (rows follow v, as ``Plane.grid``).
    """

    kind: str
    anchors: tuple
    anchor_labels: tuple
    geometry: object
    coords: np.ndarray
    grid_shape: tuple

    def points(self) -> np.ndarray:
        """Inputs at the slice's coordinates, shape (P, *input_shape)."""
        return self.geometry.to_input(self.coords)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "anchors": list(self.anchors), "anchor_labels": list(self.anchor_labels),
                "grid_shape": list(self.grid_shape)}


def make_slices(x_test, y_test, *, n_lines: int, n_planes: int, line_points: int = 33, grid: int = 20,
                seed: int = 0) -> list[SliceSpec]:
    """Random lines between two test images of different classes and planes through three test images of
    three different classes (seeded; the same seed gives the same images).

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(0).random((30, 1, 4, 4)); y = np.arange(30) % 3
    >>> slices = make_slices(x, y, n_lines=2, n_planes=1, line_points=5, grid=3, seed=0)
    >>> [(s.kind, s.points().shape, len(set(s.anchor_labels))) for s in slices]
    [('line', (5, 1, 4, 4), 2), ('line', (5, 1, 4, 4), 2), ('plane', (9, 1, 4, 4), 3)]
    """
    x_test = np.asarray(x_test.detach().cpu() if isinstance(x_test, torch.Tensor) else x_test, dtype=np.float64)
    y_test = np.asarray(y_test.detach().cpu() if isinstance(y_test, torch.Tensor) else y_test).astype(np.int64)
    classes = np.unique(y_test)
    if len(classes) < (3 if n_planes else 2):
        raise ValueError(f"make_slices: the test set has {len(classes)} classes; lines need 2 and planes 3")
    rng = np.random.default_rng(seed)

    def pick(k):
        chosen = rng.choice(classes, size=k, replace=False)
        return tuple(int(rng.choice(np.flatnonzero(y_test == c))) for c in chosen)

    slices = []
    t = np.linspace(0.0, 1.0, line_points)
    for _ in range(n_lines):
        a, b = pick(2)
        slices.append(SliceSpec("line", (a, b), (int(y_test[a]), int(y_test[b])), Line(x_test[a], x_test[b]), t,
                                (line_points,)))
    for _ in range(n_planes):
        a, b, c = pick(3)
        plane = Plane.through(x_test[a], x_test[b], x_test[c])
        us, vs = plane.grid(grid)
        uv = np.stack([us.ravel(), vs.ravel()], 1)
        slices.append(SliceSpec("plane", (a, b, c), tuple(int(y_test[i]) for i in (a, b, c)), plane, uv,
                                (grid, grid)))
    return slices


@dataclass(frozen=True)
class SliceMeasures:
    """What :func:`measure_slices` found on one slice; every array has shape (P,) (the slice's points).

    Attributes
    ----------
    effective_volume : ndarray
        ``sum log10 sigma_i(J / sqrt(m))`` of the full-input Jacobian (log10 units).
    plane_log_area : ndarray or None
        ``log10 sqrt(det(U^T J^T J U))`` of the plane's 2 x 2 metric (planes only; J scaled 1/sqrt(m)).
    entropy : ndarray
        Linear probe's predictive entropy (nats).
    probe_label, ncm_label : int ndarrays
    ncm_margin : ndarray
        Relative nearest-class-mean margin (0 = equidistant from two class means).
    """

    effective_volume: np.ndarray
    plane_log_area: np.ndarray | None
    entropy: np.ndarray
    probe_label: np.ndarray
    ncm_label: np.ndarray
    ncm_margin: np.ndarray


def measure_slices(model: nn.Module, slices: list[SliceSpec], probe: LinearProbe, means: np.ndarray, *,
                   layer: str = "encoder", chunk_size: int | None = None) -> list[SliceMeasures]:
    """Effective volume, plane metric, probe entropy and nearest-class-mean label on every slice.

    Parameters
    ----------
    model : torch.nn.Module
        Has a submodule ``layer`` whose output is the representation (e.g. :class:`EncoderWithHead`).
        Put in eval mode for the measurement and restored afterwards.
    slices : list of SliceSpec
    probe : LinearProbe
        Fitted on ``model.<layer>`` features.
    means : ndarray of shape (n_classes, m)
        Class means of the training features.
    layer : str
        The representation's submodule name; the metric lens sees ``(model, layer)`` (scaled 1/sqrt(m)).

    Returns
    -------
    list of SliceMeasures, one per slice
    """
    from netatlas.metric import effective_volume, plane_metric

    representation = model.get_submodule(layer)
    was_training = model.training
    model.eval()
    try:
        points = np.concatenate([s.points() for s in slices])
        volume = effective_volume((model, layer), torch.from_numpy(points), chunk_size=chunk_size)
        features = encode(representation, torch.from_numpy(points))
        entropy, probe_label = probe.entropy(features), probe.predict(features)
        ncm_label, margin = nearest_class_mean(features, means)
        out, start = [], 0
        for s in slices:
            part = slice(start, start + len(s.coords))
            start = part.stop
            log_area = None
            if s.kind == "plane":
                g = plane_metric((model, layer), s.geometry, s.coords, chunk_size=chunk_size)
                det = g[:, 0, 0] * g[:, 1, 1] - g[:, 0, 1] * g[:, 1, 0]
                with np.errstate(divide="ignore"):
                    log_area = 0.5 * np.log10(np.clip(det, 0, None))
            out.append(SliceMeasures(volume[part], log_area, entropy[part], probe_label[part], ncm_label[part],
                                     margin[part]))
    finally:
        model.train(was_training)
    return out


def slice_correlations(measures: list[SliceMeasures], reference: list[SliceMeasures] | None = None
                       ) -> dict[str, np.ndarray]:
    """Spearman correlations within every slice, shape (n_slices,) each:

    - ``volume_entropy``: effective volume vs probe entropy;
    - ``area_entropy``: plane-metric log area vs probe entropy (NaN on lines);
    - ``volume_between``: effective volume vs ``-ncm_margin`` (label-free "between class means");
    - ``volume_change_entropy`` (with ``reference``, the same slices measured on the encoder the training
      started from): the change of effective volume that training made, ``effective_volume -
      reference.effective_volume``, vs probe entropy. This removes what the initial network already did
      (e.g. a volume trend across the slice shared by all twins).

    Examples
    --------
    >>> import numpy as np
    >>> m = SliceMeasures(np.arange(5.0), None, np.arange(5.0) ** 2, np.zeros(5), np.zeros(5), -np.arange(5.0))
    >>> slice_correlations([m])["volume_entropy"]
    array([1.])
    """
    out = {
        "volume_entropy": np.array([spearman(m.effective_volume, m.entropy) for m in measures]),
        "area_entropy": np.array([spearman(m.plane_log_area, m.entropy) if m.plane_log_area is not None
                                  else math.nan for m in measures]),
        "volume_between": np.array([spearman(m.effective_volume, -m.ncm_margin) for m in measures]),
    }
    if reference is not None:
        if len(reference) != len(measures):
            raise ValueError(f"slice_correlations: reference has {len(reference)} slices but measures {len(measures)}")
        out["volume_change_entropy"] = np.array([spearman(m.effective_volume - r.effective_volume, m.entropy)
                                                 for m, r in zip(measures, reference, strict=True)])
    return out
