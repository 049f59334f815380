"""The metric of the user's own model at data points and on a plane: what ``netatlas metric MODEL`` and
``netatlas magnify model MODEL`` compute, as one library call (:func:`metric_map`)."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch

from netatlas.nets import Net

__all__ = ["MetricMap", "metric_map", "QUANTITIES"]

QUANTITIES = {
    "effective": "effective volume sum_i log10 sigma_i(J / sqrt(m)) (log10)",
    "volume": "log volume element log sqrt(det g), g = J^T J (natural log; needs m >= d)",
}


@dataclass(frozen=True, eq=False)
class MetricMap:
    """The metric quantity at data points and/or on a plane grid.

    Attributes
    ----------
    quantity : str
        ``"effective"`` or ``"volume"`` (see ``QUANTITIES``).
    features : str
        What the features are (layer, width).
    point_values : ndarray of shape (P,) or None
        The quantity at the data points.
    point_labels, point_predicted, point_entropy : ndarray of shape (P,) or None
        The points' labels, the net's predicted class (argmax of its outputs) and predictive entropy
        (nats, softmax of the outputs); the last two only for nets with >= 2 outputs.
    us, vs : ndarray of shape (n, n) or None
        Plane coordinates of the grid (rows follow v).
    plane_values, plane_predicted, plane_entropy : ndarray of shape (n, n) or None
        The quantity, predicted class and entropy on the grid.
    plane : netatlas.Plane or None
    anchors : ndarray of shape (3, 2) or None
        Plane coordinates of the three data points the plane passes through (``through``).
    warnings : list of str
        Precision warnings raised while computing (counts of affected points).
    """

    quantity: str
    features: str
    point_values: np.ndarray | None = None
    point_labels: np.ndarray | None = None
    point_predicted: np.ndarray | None = None
    point_entropy: np.ndarray | None = None
    us: np.ndarray | None = None
    vs: np.ndarray | None = None
    plane_values: np.ndarray | None = None
    plane_predicted: np.ndarray | None = None
    plane_entropy: np.ndarray | None = None
    plane: object = None
    anchors: np.ndarray | None = None
    warnings: list = field(default_factory=list)

    def summary(self) -> dict:
        """JSON-safe numbers: per-set statistics, per-class means, rank correlation with entropy."""
        out = {"quantity": self.quantity, "meaning": QUANTITIES[self.quantity], "features": self.features,
               "warnings": list(self.warnings)}
        if self.point_values is not None:
            out["points"] = _stats(self.point_values, self.point_entropy)
            if self.point_labels is not None and self.point_labels.dtype.kind in "iu":
                out["points"]["mean_by_label"] = {
                    str(int(c)): _finite_mean(self.point_values[self.point_labels == c])
                    for c in np.unique(self.point_labels)
                }
        if self.plane_values is not None:
            out["plane"] = _stats(self.plane_values, self.plane_entropy)
            out["plane"]["grid"] = list(self.plane_values.shape)
            if self.plane_predicted is not None:
                change = _class_change(self.plane_predicted)
                out["plane"]["mean_at_class_change"] = _finite_mean(self.plane_values[change])
                out["plane"]["mean_elsewhere"] = _finite_mean(self.plane_values[~change])
        return out

    def to_dict(self) -> dict:
        return {k: v for k, v in vars(self).items() if k != "plane"} | {
            "plane": None if self.plane is None else self.plane.to_dict()}


def _finite_mean(values) -> float:
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    return float(values.mean()) if values.size else float("nan")


def _stats(values, entropy) -> dict:
    values = np.asarray(values, dtype=np.float64).ravel()
    finite = values[np.isfinite(values)]
    stats = {"n": int(values.size), "n_minus_inf": int(np.isneginf(values).sum()),
             "n_nan": int(np.isnan(values).sum())}
    for name, fn in (("mean", np.mean), ("median", np.median), ("min", np.min), ("max", np.max)):
        stats[name] = float(fn(finite)) if finite.size else float("nan")
    if entropy is not None:
        from scipy.stats import spearmanr

        ok = np.isfinite(values) & np.isfinite(entropy.ravel())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # constant input: no rank correlation (NaN)
            stats["spearman_with_entropy"] = (float(spearmanr(values[ok], entropy.ravel()[ok]).statistic)
                                              if ok.sum() >= 3 else float("nan"))
    return stats


def _class_change(predicted) -> np.ndarray:
    """Grid cells whose predicted class differs from a 4-neighbour's (the decision boundaries)."""
    p = np.asarray(predicted)
    change = np.zeros(p.shape, dtype=bool)
    change[:, 1:] |= p[:, 1:] != p[:, :-1]
    change[:, :-1] |= p[:, 1:] != p[:, :-1]
    change[1:, :] |= p[1:, :] != p[:-1, :]
    change[:-1, :] |= p[1:, :] != p[:-1, :]
    return change


def _quantity(feature_fn, x, quantity, chunk):
    from netatlas.metric._metric import effective_volume, volume_element

    out = []
    for start in range(0, x.shape[0], chunk):
        part = x[start:start + chunk]
        out.append(effective_volume(feature_fn, part) if quantity == "effective" else volume_element(feature_fn, part))
    return torch.cat(out).numpy()


def _predictions(net: Net, x):
    if net.n_outputs < 2:
        return None, None
    with torch.no_grad():
        logits = net(x)
    logp = torch.log_softmax(logits, 1)
    return logits.argmax(1).numpy(), (-(logp.exp() * logp).sum(1)).numpy()


def metric_map(net: Net, *, layer=None, points=None, labels=None, plane=None, grid: int = 40,
               quantity: str = "effective", chunk: int = 256) -> MetricMap:
    """The metric quantity of ``net``'s features at data points and/or on a plane.

    Parameters
    ----------
    net : Net
        The model (e.g. ``netatlas.nets.load(path)``).
    layer : str or int, optional
        A node name or index: the features are that layer's output scaled by ``1/sqrt(width)``; default
        the net's output (unscaled for ``"volume"``; ``"effective"`` divides J by sqrt(m) itself).
    points : Tensor or ndarray of shape (P, *input_shape), optional
        Data points.
    labels : array of shape (P,), optional
        Their labels (summaries by label).
    plane : netatlas.Plane, optional
        A plane slice; evaluated on a ``grid x grid`` grid.
    grid : int
        Points per side of the plane grid.
    quantity : {"effective", "volume"}
        See ``QUANTITIES``.
    chunk : int
        Points per call (bounds memory).

    Returns
    -------
    MetricMap

    Examples
    --------
    >>> import netatlas
    >>> net = netatlas.nets.from_torch(netatlas.nets.mlp([2, 8, 3], "tanh", seed=0))
    >>> result = metric_map(net, layer="1", plane=netatlas.Plane.square(1.0), grid=5)
    >>> result.plane_values.shape, sorted(result.summary()["plane"])[:3]
    ((5, 5), ['grid', 'max', 'mean'])
    """
    from netatlas.slices import Plane

    if quantity not in QUANTITIES:
        raise ValueError(f"metric_map: quantity must be one of {sorted(QUANTITIES)}; got {quantity!r}")
    if points is None and plane is None:
        raise ValueError("metric_map: give data points, a plane, or both")
    if isinstance(grid, bool) or not isinstance(grid, (int, np.integer)) or grid < 2:
        raise ValueError(f"metric_map: grid must be an int >= 2 points per side; got {grid!r}")
    feature_fn = net if layer is None else (net, layer)
    if layer is not None:
        from netatlas.metric._features import as_feature_map

        description = as_feature_map(feature_fn, net.input_shape).description
    else:
        description = f"output of the net (width {net.n_outputs})"
    caught = []
    result = {}
    with warnings.catch_warnings(record=True) as records:
        warnings.simplefilter("always")
        if points is not None:
            x = torch.as_tensor(np.asarray(points, dtype=np.float64)).reshape(len(points), -1)
            if x.shape[1] != net.n_inputs:
                raise ValueError(f"metric_map: the points have {x.shape[1]} values each, the model's inputs "
                                 f"{net.n_inputs} (shape {net.input_shape})")
            result["point_values"] = _quantity(feature_fn, x, quantity, chunk)
            result["point_predicted"], result["point_entropy"] = _predictions(net, x)
            result["point_labels"] = None if labels is None else np.asarray(labels)
        if plane is not None:
            if not isinstance(plane, Plane):
                raise TypeError(f"metric_map: plane must be a netatlas.Plane; got {type(plane).__name__}")
            if math.prod(plane.input_shape) != net.n_inputs:
                raise ValueError(f"metric_map: the plane lives in R^{math.prod(plane.input_shape)}, the model's "
                                 f"inputs in R^{net.n_inputs}")
            us, vs = plane.grid(int(grid))
            x = torch.from_numpy(plane.to_input(np.stack([us.ravel(), vs.ravel()], 1))).reshape(us.size, -1)
            result["us"], result["vs"] = us, vs
            result["plane_values"] = _quantity(feature_fn, x, quantity, chunk).reshape(us.shape)
            predicted, entropy = _predictions(net, x)
            if predicted is not None:
                result["plane_predicted"] = predicted.reshape(us.shape)
                result["plane_entropy"] = entropy.reshape(us.shape)
            result["plane"] = plane
            result["anchors"] = getattr(plane, "anchors", None)
    for record in records:
        if issubclass(record.category, UserWarning):
            caught.append(str(record.message))
            warnings.warn(record.message, stacklevel=2)
    return MetricMap(quantity, description, warnings=caught, **result)
