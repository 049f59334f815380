"""The geometry of one frame, computed by netatlas's public lenses.

The playground never re-implements a lens: each layer below calls the library function that
computes it (``netatlas.regions.partition`` and ``Partition.class_pieces``,
``netatlas.metric.volume_element``, ``netatlas.dynamics.per_sample_gradient_norms``,
``netatlas.splines.to_spline``, ...) and only converts the result to JSON-ready lists. A layer that
does not apply to the net carries a note (``unavailable``) instead, and one failing layer never
breaks the others.

The only things computed here are evaluations of the model itself (probabilities on a grid, the
function of a 1-D net) and the first-layer hyperplanes ``w.x + b = 0``, read off the weights.
"""

from __future__ import annotations

import logging
import math
import time
import warnings

import numpy as np
import torch

from netatlas import Plane, UnsupportedLayerError
from netatlas.app._config import TRAINING_LOSS
from netatlas.app._features import InputFeatures
from netatlas.app._frames import pack
from netatlas.dynamics import per_sample_gradient_norms, score, subsample, zone_interval
from netatlas.metric import volume_element
from netatlas.nets import from_torch
from netatlas.regions import partition
from netatlas.regions.bounds import all_bounds
from netatlas.splines import to_spline

logger = logging.getLogger(__name__)

__all__ = ["PAGE_CONSTANTS", "Unavailable", "compute_layers", "window_partition"]

GRID = 64  # cells per side of the confidence heatmap
METRIC_GRID = 40  # cells per side of the volume-element heatmap
CURVE_POINTS = 241  # samples of a 1-D function
GRADIENT_CHUNK_FLOATS = 4_000_000  # per-sample gradients held at once (memory of one chunk)
MAX_DRAWN_REGIONS = 20_000  # the cap is on regions, not units: above it the count and the boundary
# are still exact and shown, but the polygons are not sent (the page says so)
UNIT_GRID = 16  # thumbnail of each hidden unit: its activation on a UNIT_GRID x UNIT_GRID grid
MAX_UNIT_THUMBNAILS = 32  # per layer (the page says how many more there are)
PATTERN_COLOURS = 24  # palette of the page's pattern colouring: one batched fill per colour
CONTOUR_LEVELS = (0.25, 0.75)  # confidence contours (probability of the predicted class / of class 1)
ZONE_EPS = 0.1  # transition zone: eps <= switch <= 1 - eps
PAGE_CONSTANTS = {"pattern_colours": PATTERN_COLOURS}  # what the page must agree on (sent once)


class Unavailable(Exception):  # noqa: N818 - a note for the page, not an error
    """A layer that does not apply to this net; the message is shown on the page as a note."""


def window_partition(net, window):
    """``netatlas.regions.partition`` of ``net`` on the input window ``(xmin, xmax, ymin, ymax)``."""
    return partition(net, Plane.window(tuple(window)))


# -- helpers --------------------------------------------------------------------------------------
def _round(values, digits=4) -> list:
    arr = np.round(np.asarray(values, dtype=np.float64).ravel(), digits)
    finite = np.isfinite(arr)
    if finite.all():
        return arr.tolist()
    return [v if ok else None for v, ok in zip(arr.tolist(), finite.tolist(), strict=True)]  # JSON has no NaN


def _pack(values):
    """A large float array sent as raw float32 in the binary frame (NaN for missing values)."""
    return pack(np.asarray(values, dtype=np.float64), "f32")


def _grid_points(window, n):
    umin, umax, vmin, vmax = window
    u = umin + (np.arange(n) + 0.5) * (umax - umin) / n
    v = vmin + (np.arange(n) + 0.5) * (vmax - vmin) / n
    us, vs = np.meshgrid(u, v, indexing="xy")
    return np.stack([us.ravel(), vs.ravel()], axis=1)


def _probabilities(model, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        logits = model(torch.as_tensor(x, dtype=torch.float32))
    return torch.softmax(logits.double(), dim=1).numpy()


# -- classification layers ------------------------------------------------------------------------
def heatmap(frame) -> dict:
    """Predicted class and its probability on a GRID x GRID grid (an evaluation of the model)."""
    p = _probabilities(frame.model, _grid_points(frame.window, GRID))
    return {"n": GRID, "classes": pack(p.argmax(1), "u8"), "confidence": _pack(p.max(1))}


def _logit_difference_net(model):
    """For two classes, the net computing f1 - f0 (same hidden layers): p(class 1) = sigmoid(f1 - f0),
    so its zero set is the decision boundary and its level logit(p) the contour where p(class 1) = p."""
    last = model[-1]
    diff = torch.nn.Linear(last.in_features, 1)
    with torch.no_grad():
        diff.weight.copy_(last.weight[1:2] - last.weight[0:1])
        diff.bias.copy_(last.bias[1:2] - last.bias[0:1])
    return from_torch(torch.nn.Sequential(*list(model)[:-1], diff))


def partition_layers(frame, view) -> dict:
    """Exact regions, decision boundary and confidence contours from ``netatlas.regions.partition``."""
    out = {}
    if frame.net is None or not frame.net.piecewise_linear:
        if frame.net is None:
            note = ("input features that are not coordinates (x1², x1·x2, sin) curve the net's pieces in the "
                    "plane: no polygons to compute")
        else:
            note = (f"exact regions need a piecewise-linear net (relu or leaky_relu); this one uses "
                    f"{frame.config['activation']}")
        out = {"regions": {"unavailable": note}}
        if view["boundary"] or view["contours"]:
            out.update(_layer(lambda: sampled_layers(frame, view)))
            out.pop("ms", None)
        return out
    binary = frame.n_classes == 2
    start = time.perf_counter()
    part = window_partition(_logit_difference_net(frame.model) if binary else frame.net, frame.window)
    n_regions = int(part.num_regions)
    out["regions"] = {"n_regions": n_regions, "partition_ms": round(1000 * (time.perf_counter() - start), 1)}
    if view["regions"] and n_regions > MAX_DRAWN_REGIONS:
        out["regions"]["note"] = (f"{n_regions:,} regions: above the drawing cap of {MAX_DRAWN_REGIONS:,}, so "
                                  "the polygons are not drawn; the count and the boundary are exact")
        out["regions"]["capped"] = True
    elif view["regions"]:
        out["regions"].update(_layer(lambda: _polygons(part, by_class=view["colour_by"] == "class")))
        if view["heatmap"] == "volume":  # a ReLU net's magnification is constant on each region: exact
            out["region_volume"] = _layer(lambda: region_volume(frame, view, part))
    if view["boundary"]:
        out["boundary"] = _layer(lambda: {"segments": _segments(part.decision_boundary())})
    if view["contours"]:
        out["contours"] = _layer(lambda: _contours(part, binary))
    return out


SAMPLED_GRID = (48, 6)  # coarse cells per side, refinement of the cells the level crosses


def sampled_layers(frame, view) -> dict:
    """Decision boundary and confidence contours of a smooth net, as *sampled* level sets of its logits
    (marching squares on an adaptive grid, :func:`netatlas.app._levels.sampled_level_sets`)."""
    from netatlas.app._levels import sampled_level_sets

    n, refine = SAMPLED_GRID
    how = (f"sampled: marching squares on a {n}x{n} grid refined {refine}x{refine} where the level passes "
           "(not exact)")
    binary = frame.n_classes == 2
    levels = [math.log(p / (1 - p)) for p in CONTOUR_LEVELS] if binary and view["contours"] else []

    def fn(points):
        with torch.no_grad():
            logits = frame.model(torch.as_tensor(points, dtype=torch.float32)).double().numpy()
        if binary:
            diff = logits[:, 1:2] - logits[:, 0:1]
            return np.concatenate([diff, *(diff - level for level in levels)], axis=1)
        columns = []
        for k in range(logits.shape[1]):  # l_k - max_{j != k} l_j: zero on the boundary of class k
            others = np.delete(logits, k, axis=1).max(1)
            columns.append(logits[:, k] - others)
        return np.stack(columns, 1)

    sets = sampled_level_sets(fn, frame.window, n=n, refine=refine)
    out = {}
    if view["boundary"]:
        boundary = sets[0] if binary else np.concatenate(sets)
        out["boundary"] = {"segments": _segments(boundary), "sampled": True, "note": how}
    if view["contours"]:
        if binary:
            out["contours"] = {"lines": [{"level": p, "segments": _segments(sets[1 + i])}
                                         for i, p in enumerate(CONTOUR_LEVELS)], "sampled": True}
        else:
            out["contours"] = {"unavailable": "confidence contours are drawn for two classes (the level sets "
                               "of p(class 1))"}
    return out


def _segments(segments) -> dict:
    segments = getattr(segments, "segments", segments)  # a netatlas.regions Segments result
    return _pack(np.asarray(segments, dtype=np.float64).reshape(-1))


def _polygons(part, by_class: bool = False) -> dict:
    """The regions as flat vertex buffers: ``coords`` (T*2 f32), ``offsets`` (F+1 i32), a palette
    index per region (``colour``, from its activation pattern: a pattern keeps its colour from frame
    to frame) and ``classes`` (the class of each whole region, ``CUT_REGION`` where the decision boundary
    cuts it); with ``by_class`` also the regions split along the decision boundary
    (``pieces``, from :meth:`netatlas.regions.Partition.class_pieces`)."""
    coords = np.asarray(part.xy, dtype=np.float64) + np.asarray(part.center, dtype=np.float64)
    bits = [np.asarray(b, dtype=np.int64) for b in part.pattern_bits]
    patterns = np.concatenate(bits, axis=1) if bits else np.zeros((part.num_regions, 0), np.int64)
    weights = np.random.default_rng(12345).integers(1, 2**20, size=patterns.shape[1])
    keys = (patterns * weights).sum(1) % 16_777_213 if patterns.size else np.zeros(len(patterns), np.int64)
    out = {"coords": _pack(coords), "offsets": pack(part.offsets, "i32"),
           "colour": pack(keys % PATTERN_COLOURS, "u8"), "classes": pack(_region_classes(part), "u8")}
    if by_class:
        pieces = part.class_pieces()
        out["pieces"] = {"coords": _pack(pieces.xy), "offsets": pack(pieces.offsets, "i32"),
                         "classes": pack(pieces.classes, "u8")}
    return out


#: The ``classes`` entry of a region the decision boundary cuts (its pieces say which classes win where).
CUT_REGION = 255


def _region_classes(part) -> np.ndarray:
    """The class predicted in the whole of each region (F,), ``CUT_REGION`` where the decision boundary
    cuts it (exact: :meth:`netatlas.regions.Partition.predicted_class`)."""
    cls = part.predicted_class()
    return np.where(cls < 0, CUT_REGION, cls)


def region_volume(frame, view, part) -> dict:
    """log volume element of hidden layer ``metric_layer`` on each region (F,): the layer's map is
    affine on every region of the net (they refine its own regions), so one interior point per
    region (the vertex mean) gives the exact constant."""
    return _log_volume(frame, view, part.centroids())


def _contours(part, binary: bool) -> dict:
    if not binary:
        raise Unavailable("confidence contours are drawn for two classes (the level sets of p(class 1))")
    lines = [{"level": p, "segments": _segments(part.level_set(math.log(p / (1 - p)), output=0))}
             for p in CONTOUR_LEVELS]
    return {"lines": lines}


def units(frame) -> dict:
    """Each hidden unit's activation over the window (the network panel's thumbnails): per layer,
    ``values`` (shown * UNIT_GRID**2 u8, 128 = 0, 255 = the unit's largest |activation|, rows from
    the bottom of the window up) for its first ``shown`` units."""
    x = torch.as_tensor(_grid_points(frame.window, UNIT_GRID), dtype=torch.float32)
    layers = []
    with torch.no_grad():
        h = x
        for module in frame.model:
            h = module(h)
            if isinstance(module, (torch.nn.Linear, InputFeatures)):
                continue
            shown = min(h.shape[1], MAX_UNIT_THUMBNAILS)
            v = h[:, :shown].double().numpy().T  # (shown, grid^2)
            top = np.abs(v).max(1, keepdims=True)
            q = np.round(127.5 + 127.5 * np.divide(v, top, out=np.zeros_like(v), where=top > 0))
            layers.append({"width": int(h.shape[1]), "shown": shown, "values": pack(np.clip(q, 0, 255), "u8")})
    return {"grid": UNIT_GRID, "layers": layers}


def hyperplanes(frame) -> dict:
    """First-layer hyperplanes ``w.x + b = 0`` (read off the weights) and their transition zones."""
    if frame.config["features"] != ["x1", "x2"]:
        raise Unavailable("first-layer hyperplanes are drawn for the raw inputs (features x1, x2)")
    first = next(m for m in frame.model if isinstance(m, torch.nn.Linear))
    W = first.weight.detach().double().numpy()
    b = first.bias.detach().double().numpy()
    lo, hi = zone_interval(frame.config["activation"], ZONE_EPS)
    return {"w": _round(W.reshape(-1), 6), "b": _round(b, 6), "zone": [float(lo), float(hi)]}


def volume(frame, view) -> dict:
    """log volume element of a hidden layer's features on a METRIC_GRID x METRIC_GRID grid."""
    return {"n": METRIC_GRID, **_log_volume(frame, view, _grid_points(frame.window, METRIC_GRID))}


def _log_volume(frame, view, points) -> dict:
    """``netatlas.metric.volume_element`` (log) of hidden layer ``view["metric_layer"]`` at ``points``
    (n, 2): the values (NaN where the layer collapses the plane) and their finite range."""
    hidden = [name for name, m in frame.model.named_children()
              if not isinstance(m, (torch.nn.Linear, InputFeatures))]  # activation modules = hidden layers
    if not hidden:
        raise Unavailable("the network has no hidden layer; add one to see its volume element")
    layer = view["metric_layer"]
    if layer > len(hidden):  # never silently show another layer
        raise Unavailable(f"metric of layer {layer}: this network has {len(hidden)} hidden layer(s); "
                          f"choose 1..{len(hidden)}")
    x = torch.as_tensor(points, dtype=torch.float64)
    with warnings.catch_warnings():  # a collapsed layer is drawn as missing, not warned about per frame
        warnings.simplefilter("ignore")
        values = volume_element((frame.model, hidden[layer - 1]), x, log=True)
    values = np.asarray(values, dtype=np.float64)  # netatlas.metric returns NumPy arrays
    finite = values[np.isfinite(values)]
    return {"layer": layer, "log_volume": _pack(np.where(np.isfinite(values), values, np.nan)),
            "range": _round([finite.min(), finite.max()] if finite.size else [0, 0], 4)}


def gradnorm(frame) -> dict:
    n_parameters = sum(p.numel() for p in frame.model.parameters())
    chunk = max(8, GRADIENT_CHUNK_FLOATS // max(1, n_parameters))
    norms = per_sample_gradient_norms(frame.model, frame.x, frame.y, loss=TRAINING_LOSS[frame.mode],
                                      chunk_size=chunk)
    total = np.asarray(norms.total, dtype=np.float64)
    return {"norms": _pack(total), "max": float(np.nanmax(total)) if total.size else 0.0}


def subsample_layer(frame, view) -> dict:
    """The training points ``netatlas.dynamics.subsample`` keeps by ``netatlas.dynamics.score``."""
    try:
        scores = score(view["subsample_method"], frame.model, frame.x, frame.y, seed=frame.config["seed"])
    except UnsupportedLayerError:
        if frame.net is not None:
            raise
        raise Unavailable(f"subsampling by {view['subsample_method']!r} needs the net's layers, and input features "
                          "that are not coordinates hide them; only 'random' works on such a net") from None
    kept = subsample(scores, view["subsample_fraction"], labels=frame.y.numpy(), seed=frame.config["seed"])
    return {"kept": pack(kept, "i32"), "method": view["subsample_method"],
            "fraction": view["subsample_fraction"]}


def region_bounds(frame) -> dict:
    """Bounds on the number of linear regions of a ReLU net of these widths (in all of R^2), from
    ``netatlas.regions.bounds.all_bounds``."""
    widths = list(frame.config["widths"])
    if not widths:
        raise Unavailable("no hidden layer: the network is affine, one region")
    if frame.net is None or not frame.net.piecewise_linear:
        raise Unavailable("region-count bounds are for piecewise-linear (ReLU) nets")
    return {name: float(value) for name, value in all_bounds(len(frame.config["features"]), widths).items()}


# -- regression (1-D) layers ----------------------------------------------------------------------
def curve(frame) -> dict:
    umin, umax = frame.window[:2]
    xs = np.linspace(umin, umax, CURVE_POINTS)
    with torch.no_grad():
        ys = frame.model(torch.as_tensor(xs[:, None], dtype=torch.float32)).double().numpy().ravel()
    return {"x": _pack(xs), "y": _pack(ys)}


def spline(frame) -> dict:
    if not frame.net.is_shallow_univariate():
        raise Unavailable("the spline view needs a shallow net: 1 hidden ReLU layer (depth 1, relu)")
    sp = to_spline(frame.model)
    beta = np.asarray(sp.breakpoints, dtype=np.float64).ravel()
    mu = np.asarray(sp.delta_slopes, dtype=np.float64).ravel()
    finite = np.isfinite(beta)
    values = np.where(finite, np.asarray(sp(np.where(finite, beta, 0.0)), dtype=np.float64), np.nan)
    return {"breakpoints": _pack(beta), "delta_slopes": _pack(mu), "values": _pack(values)}


# -- one frame ------------------------------------------------------------------------------------
def _layer(fn):
    """Run one layer: its dict (with "ms", the time it took), or {"unavailable": note}, or
    {"error": message} — never raises."""
    start = time.perf_counter()
    try:
        out = fn()
        if isinstance(out, dict) and not any(isinstance(v, dict) and "ms" in v for v in out.values()):
            out["ms"] = round(1000 * (time.perf_counter() - start), 1)
        return out
    except Unavailable as note:
        return {"unavailable": str(note)}
    except Exception as exc:  # one broken layer must not take the frame down
        logger.debug("playground layer failed", exc_info=True)
        return {"error": f"{type(exc).__name__}: {str(exc)[:300]}"}


def compute_layers(frame, view) -> dict:
    """Every layer the view asks for, as JSON-ready dicts keyed by layer name.

    Arrays are :class:`netatlas.app._frames.Packed` (raw bytes in the binary frame); a layer that
    cannot be drawn is ``{"unavailable": note}`` and one that failed ``{"error": message}``.

    >>> from netatlas.app import DEFAULT_VIEW, Session
    >>> session = Session({"n": 40, "depth": 1, "widths": [4], "activation": "tanh"})
    >>> layers = compute_layers(session.capture(), DEFAULT_VIEW)
    >>> layers["heatmap"]["n"], "piecewise-linear" in layers["regions"]["unavailable"]
    (64, True)
    >>> session.stop()
    """
    layers = {}
    if frame.mode == "regress":
        layers["curve"] = _layer(lambda: curve(frame))
        layers["spline"] = _layer(lambda: spline(frame))
        if view["gradnorm"]:
            layers["gradnorm"] = _layer(lambda: gradnorm(frame))
        return layers
    if view["heatmap"] == "confidence":
        layers["heatmap"] = _layer(lambda: heatmap(frame))
    elif view["heatmap"] == "volume":
        layers["volume"] = _layer(lambda: volume(frame, view))
    part = _layer(lambda: partition_layers(frame, view))
    part.pop("ms", None)  # a dict of layers, not a layer
    if "error" in part or "unavailable" in part:
        part = {"regions": part, "boundary": part, "contours": part}
    layers.update(part)
    layers["bounds"] = _layer(lambda: region_bounds(frame))
    if view["hyperplanes"]:
        layers["hyperplanes"] = _layer(lambda: hyperplanes(frame))
    if view["units"]:
        layers["units"] = _layer(lambda: units(frame))
    if view["gradnorm"]:
        layers["gradnorm"] = _layer(lambda: gradnorm(frame))
    if view["subsample"]:
        layers["subsample"] = _layer(lambda: subsample_layer(frame, view))
    return layers
