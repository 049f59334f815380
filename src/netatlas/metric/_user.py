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
    "plane": "in-plane metric log sqrt det(U^T J^T J U), the area magnification of the plane (natural log; "
             "constant on each linear region of a piecewise-linear net)",
    "effective": "effective volume sum_i log10 sigma_i(J / sqrt(m)) (log10)",
    "volume": "log volume element log sqrt(det g), g = J^T J (natural log; needs m >= d)",
}

# A rank correlation from fewer finite pairs than this is not reported (its sampling spread is ~1/sqrt(n)).
MIN_CORRELATION_PAIRS = 10


@dataclass(frozen=True, eq=False)
class MetricMap:
    """The metric quantity at data points and/or on a plane grid.

    Attributes
    ----------
    quantity : str
        The quantity at the data points: ``"effective"`` or ``"volume"`` (see ``QUANTITIES``).
    features : str
        What the features are (layer, width).
    point_values : ndarray of shape (P,) or None
        The quantity at the data points.
    point_labels, point_predicted, point_entropy : ndarray of shape (P,) or None
        The points' labels, the net's predicted class (argmax of its outputs) and predictive entropy
        (nats, of the model's softmax / log-softmax head if it has one, else the softmax of its outputs);
        the last two only for nets with >= 2 outputs.
    us, vs : ndarray of shape (n, n) or None
        Plane coordinates of the grid (rows follow v).
    plane_values, plane_predicted, plane_entropy : ndarray of shape (n, n) or None
        The quantity, predicted class and entropy on the grid.
    plane : netatlas.Plane or None
    anchors : ndarray of shape (3, 2) or None
        Plane coordinates of the three data points the plane passes through (``through``).
    warnings : list of str
        Warnings raised while computing, each once (with the count of affected points).
    plane_quantity : str or None
        The quantity on the plane: ``"plane"`` (the in-plane metric, default), ``"effective"`` or ``"volume"``.
    partition : netatlas.regions.Partition or None
        The exact linear regions of the plane when the plane values were evaluated once per region.
    region_values : ndarray of shape (n_regions,) or None
        The in-plane quantity on each region of ``partition`` (``plane_values`` is it at the grid points).
    notes : list of str
        How the plane was evaluated (per region or per grid point, and why).
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
    plane_quantity: str | None = None
    partition: object = None
    region_values: np.ndarray | None = None
    notes: list = field(default_factory=list)

    def summary(self) -> dict:
        """JSON-safe numbers: per-set statistics, per-class means, rank correlation with entropy.

        Every statistic comes with the count of finite values it used (``n_finite``,
        ``<statistic>_n_finite``); one that could not be computed from the finite values is ``None`` and
        ``flags`` says why."""
        flags = []
        out = {"quantity": self.quantity, "meaning": QUANTITIES[self.quantity], "features": self.features,
               "warnings": list(self.warnings), "notes": list(self.notes), "flags": flags}
        if self.point_values is not None:
            out["points"] = _stats(self.point_values, self.point_entropy, "points", flags)
            if self.point_labels is not None and self.point_labels.dtype.kind in "iu":
                by_label = {str(int(c)): _finite_mean(self.point_values[self.point_labels == c])
                            for c in np.unique(self.point_labels)}
                out["points"]["mean_by_label"] = {c: mean for c, (mean, _) in by_label.items()}
                out["points"]["mean_by_label_n_finite"] = {c: n for c, (_, n) in by_label.items()}
        if self.plane_values is not None:
            quantity = self.plane_quantity or self.quantity
            out["plane"] = {"quantity": quantity, "meaning": QUANTITIES[quantity],
                            **_stats(self.plane_values, self.plane_entropy, "plane", flags)}
            out["plane"]["grid"] = list(self.plane_values.shape)
            if self.partition is not None:
                out["plane"]["n_regions"] = int(self.partition.num_regions)
            if self.plane_predicted is not None:
                change = _class_change(self.plane_predicted)
                for name, cells in (("mean_at_class_change", change), ("mean_elsewhere", ~change)):
                    out["plane"][name], out["plane"][f"{name}_n_finite"] = _finite_mean(self.plane_values[cells])
        return out

    def to_dict(self) -> dict:
        return {k: v for k, v in vars(self).items() if k not in ("plane", "partition")} | {
            "plane": None if self.plane is None else self.plane.to_dict(),
            "n_regions": None if self.partition is None else int(self.partition.num_regions)}


def _finite_mean(values) -> tuple:
    """(mean of the finite values or None, their count)."""
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    return (float(values.mean()) if values.size else None), int(values.size)


def _stats(values, entropy, name, flags) -> dict:
    values = np.asarray(values, dtype=np.float64).ravel()
    finite = values[np.isfinite(values)]
    stats = {"n": int(values.size), "n_finite": int(finite.size), "n_minus_inf": int(np.isneginf(values).sum()),
             "n_nan": int(np.isnan(values).sum())}
    for statistic, fn in (("mean", np.mean), ("median", np.median), ("min", np.min), ("max", np.max)):
        stats[statistic] = float(fn(finite)) if finite.size else None
    if finite.size < values.size:
        flags.append(f"{name}: {values.size - finite.size} of {values.size} values are not finite; the statistics "
                     f"use the {finite.size} finite ones")
    if entropy is not None:
        from scipy.stats import spearmanr

        ok = np.isfinite(values) & np.isfinite(entropy.ravel())
        n_pairs = int(ok.sum())
        stats["spearman_with_entropy"] = None
        stats["spearman_with_entropy_n_finite"] = n_pairs
        if n_pairs < MIN_CORRELATION_PAIRS:
            flags.append(f"{name}: Spearman with entropy not computed: {n_pairs} finite pairs (need >= "
                         f"{MIN_CORRELATION_PAIRS})")
        elif np.ptp(values[ok]) == 0 or np.ptp(entropy.ravel()[ok]) == 0:
            flags.append(f"{name}: Spearman with entropy not computed: one of the two is constant over the "
                         f"{n_pairs} finite pairs")
        else:
            stats["spearman_with_entropy"] = float(spearmanr(values[ok], entropy.ravel()[ok]).statistic)
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
    """The full-dimensional quantity at points x (P, d), in one call (so each warning comes once)."""
    from netatlas.metric._metric import effective_volume, volume_element

    if quantity == "effective":
        return effective_volume(feature_fn, x, chunk_size=chunk)
    return volume_element(feature_fn, x, chunk_size=chunk)


def _exact_regions(net, plane, regions, max_regions, notes, memory_budget="auto"):
    """The partition of the plane by ``net`` when ``regions`` asks for it and it fits; else None and a note."""
    from netatlas._errors import UnsupportedLayerError
    from netatlas.regions import RegionLimitError, estimate_regions, partition

    if regions is False:
        notes.append("plane: evaluated at each grid point (regions=False)")
        return None
    try:
        if regions is None:
            # one line's exact breakpoints (1/6 of partition's own estimate) rule out a hopeless slice cheaply
            rough = estimate_regions(net, plane, n_lines=1)
            if rough > 4 * max_regions:
                notes.append(f"plane: evaluated at each grid point (about {rough:,.0f} exact regions, from the "
                             f"breakpoints along one line, above max_regions={max_regions:,})")
                return None
        part = partition(net, plane, max_regions=max_regions, memory_budget=memory_budget)
    except UnsupportedLayerError as exc:
        if regions:
            raise
        notes.append(f"plane: evaluated at each grid point (no exact regions: {exc})")
        return None
    except RegionLimitError as exc:
        if regions:
            raise
        notes.append(f"plane: evaluated at each grid point (exact regions over the limit: {exc})")
        return None
    notes.append(f"plane: evaluated once on each of the {part.num_regions:,} exact linear regions of the slice "
                 "(constant there) and read off at the grid points")
    return part


def _plane_values(feature_fn, net, plane, uv, quantity, chunk, regions, max_regions, notes, memory_budget="auto"):
    """(values at uv (P,), partition or None, values per region or None)."""
    from netatlas.metric._metric import plane_volume_element

    if quantity != "plane":
        x = torch.from_numpy(plane.to_input(uv)).reshape(len(uv), -1)
        return _quantity(feature_fn, x, quantity, chunk), None, None
    part = _exact_regions(net, plane, regions, max_regions, notes, memory_budget)
    if part is None:
        return plane_volume_element(feature_fn, plane, uv, chunk_size=chunk), None, None
    # the centroid of a (convex) region lies strictly inside it, where the affine map of the region holds
    region_values = plane_volume_element(feature_fn, plane, part.centroids(), chunk_size=chunk)
    where = part.locate(uv)
    values = region_values[np.maximum(where, 0)]
    outside = where < 0  # grid points the locator puts on no region (the slice's rim): evaluated directly
    if outside.any():
        values[outside] = plane_volume_element(feature_fn, plane, uv[outside], chunk_size=chunk)
    return values, part, region_values


def _predictions(net: Net, x):
    if net.n_outputs < 2:
        return None, None
    with torch.no_grad():
        logits = net(x)
    # a net with a classifier head: its own probabilities; without one the outputs are read as logits
    logp = net.head.log_probabilities(logits) if net.head is not None else torch.log_softmax(logits, 1)
    return logits.argmax(1).numpy(), (-(logp.exp() * logp).sum(1)).numpy()


def metric_map(net: Net, *, layer=None, points=None, labels=None, plane=None, grid: int = 40,
               quantity: str | None = None, chunk: int = 256, regions: bool | None = None,
               max_regions: int = 20_000, memory_budget: int | str | None = "auto") -> MetricMap:
    """The metric of ``net``'s features at data points and/or on a plane.

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
    quantity : {None, "plane", "effective", "volume"}
        See ``QUANTITIES``. None (default): the in-plane metric (``"plane"``) on the plane and the effective
        volume at the data points. ``"plane"``: the same. ``"effective"`` or ``"volume"``: that
        full-dimensional quantity at the points and on the plane (``-inf`` wherever rank J is below
        min(m, d), e.g. on every point of a plane when a layer has dead units; said in one warning).
    chunk : int
        Points per vectorised batch (bounds memory).
    regions : bool or None
        For the in-plane metric of a piecewise-linear net: evaluate once on each exact linear region of the
        plane (``netatlas.regions.partition``) and read the grid off the regions. None (default): when the
        net is piecewise linear and the regions fit under ``max_regions``, else at each grid point (the
        reason is in ``notes``); True: always (raises if not possible); False: at each grid point.
    max_regions : int
        The most regions for ``regions=None``/``True`` (the count is estimated before partitioning).
    memory_budget : int, str or None
        Memory the exact regions may take (as in :func:`netatlas.regions.partition`; "auto": half the memory
        available, None: no limit).

    Returns
    -------
    MetricMap

    Examples
    --------
    >>> import netatlas
    >>> net = netatlas.nets.from_torch(netatlas.nets.mlp([2, 8, 3], "relu", seed=0))
    >>> result = metric_map(net, layer="1", plane=netatlas.Plane.square(1.0), grid=5)
    >>> result.plane_values.shape, result.plane_quantity, result.partition.num_regions == len(result.region_values)
    ((5, 5), 'plane', True)
    >>> summary = result.summary()["plane"]
    >>> summary["n_finite"], summary["spearman_with_entropy_n_finite"]
    (25, 25)
    """
    from netatlas.slices import Plane

    if quantity is not None and quantity not in QUANTITIES:
        raise ValueError(f"metric_map: quantity must be one of {sorted(QUANTITIES)} or None; got {quantity!r}")
    if points is None and plane is None:
        raise ValueError("metric_map: give data points, a plane, or both")
    if isinstance(grid, bool) or not isinstance(grid, (int, np.integer)) or grid < 2:
        raise ValueError(f"metric_map: grid must be an int >= 2 points per side; got {grid!r}")
    if regions not in (None, True, False):
        raise ValueError(f"metric_map: regions must be None (when they fit), True or False; got {regions!r}")
    point_quantity = "effective" if quantity in (None, "plane") else quantity
    plane_quantity = "plane" if quantity is None else quantity
    feature_fn = net if layer is None else (net, layer)
    if layer is not None:
        from netatlas.metric._features import as_feature_map

        description = as_feature_map(feature_fn, net.input_shape).description
    else:
        description = f"output of the net (width {net.n_outputs})"
    result = {}
    notes = []
    if net.head is not None and layer is None:
        description = f"logits of the net (width {net.n_outputs}, before its {net.head.name} head)"
    if net.head is not None:
        notes.append(f"head: {net.head.describe()}; the predicted class and predictive entropy come from the "
                     f"model's {net.head.name} head")
    with warnings.catch_warnings(record=True) as records:
        warnings.simplefilter("always")
        if points is not None:
            x = torch.as_tensor(np.asarray(points, dtype=np.float64)).reshape(len(points), -1)
            if x.shape[1] != net.n_inputs:
                raise ValueError(f"metric_map: the points have {x.shape[1]} values each, the model's inputs "
                                 f"{net.n_inputs} (shape {net.input_shape})")
            result["point_values"] = _quantity(feature_fn, x, point_quantity, chunk)
            result["point_predicted"], result["point_entropy"] = _predictions(net, x)
            result["point_labels"] = None if labels is None else np.asarray(labels)
        if plane is not None:
            if not isinstance(plane, Plane):
                raise TypeError(f"metric_map: plane must be a netatlas.Plane; got {type(plane).__name__}")
            if math.prod(plane.input_shape) != net.n_inputs:
                raise ValueError(f"metric_map: the plane lives in R^{math.prod(plane.input_shape)}, the model's "
                                 f"inputs in R^{net.n_inputs}")
            us, vs = plane.grid(int(grid))
            uv = np.stack([us.ravel(), vs.ravel()], 1)
            values, result["partition"], result["region_values"] = _plane_values(
                feature_fn, net, plane, uv, plane_quantity, chunk, regions, max_regions, notes, memory_budget)
            result["us"], result["vs"] = us, vs
            result["plane_values"] = values.reshape(us.shape)
            predicted, entropy = _predictions(net, torch.from_numpy(plane.to_input(uv)).reshape(us.size, -1))
            if predicted is not None:
                result["plane_predicted"] = predicted.reshape(us.shape)
                result["plane_entropy"] = entropy.reshape(us.shape)
            result["plane"] = plane
            result["anchors"] = getattr(plane, "anchors", None)
    caught = _once(records)
    for message in caught:
        warnings.warn(message, stacklevel=2)
    return MetricMap(point_quantity, description, warnings=caught, notes=notes,
                     plane_quantity=None if plane is None else plane_quantity, **result)


def _once(records) -> list:
    """The UserWarnings' messages, each once (with how many times it was raised when more than once)."""
    counts = {}
    for record in records:
        if issubclass(record.category, UserWarning):
            counts[str(record.message)] = counts.get(str(record.message), 0) + 1
    return [message if n == 1 else f"{message} (raised {n} times)" for message, n in counts.items()]
