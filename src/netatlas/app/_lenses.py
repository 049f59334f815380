"""The geometry of one frame, computed by netatlas's public lenses.

The playground never re-implements a lens: each layer below calls the library function that
computes it (``netatlas.regions.partition``, ``netatlas.metric.volume_element``,
``netatlas.dynamics.per_sample_gradient_norms``, ``netatlas.splines.to_spline``, ...) and only
converts the result to JSON-ready lists. When a lens is not importable (yet) the layer carries an
``unavailable`` note instead, and one failing layer never breaks the others.

The only things computed here are evaluations of the model itself (probabilities on a grid, the
function of a 1-D net) and the first-layer hyperplanes ``w.x + b = 0``, read off the weights.
"""

from __future__ import annotations

import base64
import importlib
import logging
import math
import time

import numpy as np
import torch

logger = logging.getLogger(__name__)

__all__ = ["Unavailable", "compute_layers", "lens", "lens_status"]

GRID = 64  # cells per side of the confidence heatmap
METRIC_GRID = 40  # cells per side of the volume-element heatmap
CURVE_POINTS = 241  # samples of a 1-D function
MAX_REGION_UNITS = 256  # exact regions live only up to this many hidden units (frames stay ~1 s)
GRADIENT_CHUNK_FLOATS = 4_000_000  # per-sample gradients held at once (memory of one chunk)
MAX_DRAWN_REGIONS = 20_000  # above this the count is shown but the polygons are not sent
CONTOUR_LEVELS = (0.25, 0.75)  # confidence contours (probability of the predicted class / of class 1)
ZONE_EPS = 0.1  # transition zone: eps <= switch <= 1 - eps

# Public functions each layer needs: (module, attribute).
NEEDS = {
    "regions": [("netatlas.regions", "partition")],
    "boundary": [("netatlas.regions", "partition")],
    "contours": [("netatlas.regions", "partition")],
    "bounds": [("netatlas.regions.bounds", None)],
    "volume": [("netatlas.metric", "volume_element")],
    "gradnorm": [("netatlas.dynamics", "per_sample_gradient_norms")],
    "subsample": [("netatlas.dynamics", "score"), ("netatlas.dynamics", "subsample")],
    "zones": [("netatlas.dynamics", "zone_interval")],
    "spline": [("netatlas.splines", "to_spline")],
}


class Unavailable(Exception):  # noqa: N818 - a note for the page, not an error
    """A layer that cannot be drawn; the message is shown on the page as a note."""


def lens(module: str, attribute: str | None = None):
    """The public function ``module.attribute`` (or the module), or raise :class:`Unavailable`."""
    try:
        mod = importlib.import_module(module)
    except ImportError:
        raise Unavailable(f"{module} is not available yet") from None
    if attribute is None:
        return mod
    fn = getattr(mod, attribute, None)
    if fn is None:
        raise Unavailable(f"{module}.{attribute} is not available yet")
    return fn


def lens_status() -> dict:
    """For each layer: True, or the note saying which library function is missing.

    >>> sorted(lens_status())[:4]
    ['boundary', 'bounds', 'contours', 'gradnorm']
    """
    out = {}
    for layer, needs in NEEDS.items():
        try:
            for module, attribute in needs:
                lens(module, attribute)
            out[layer] = True
        except Unavailable as note:
            out[layer] = str(note)
    return out


# -- helpers --------------------------------------------------------------------------------------
def _round(values, digits=4) -> list:
    arr = np.round(np.asarray(values, dtype=np.float64).ravel(), digits)
    finite = np.isfinite(arr)
    if finite.all():
        return arr.tolist()
    return [v if ok else None for v, ok in zip(arr.tolist(), finite.tolist(), strict=True)]  # JSON has no NaN


def _pack(values) -> dict:
    """A large float array as base64 float32 (NaN for missing values): ~20x cheaper to encode and
    decode than a JSON list; the page turns it into a Float32Array."""
    arr = np.ascontiguousarray(np.asarray(values, dtype=np.float32).ravel())
    return {"f32": base64.b64encode(arr.tobytes()).decode("ascii"), "n": int(arr.size)}


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
    return {"n": GRID, "classes": p.argmax(1).tolist(), "confidence": _pack(p.max(1))}


def _logit_difference_net(model):
    """For two classes, the net computing f1 - f0 (same hidden layers): p(class 1) = sigmoid(f1 - f0),
    so its zero set is the decision boundary and its level logit(p) the contour where p(class 1) = p."""
    import netatlas.nets

    last = model[-1]
    diff = torch.nn.Linear(last.in_features, 1)
    with torch.no_grad():
        diff.weight.copy_(last.weight[1:2] - last.weight[0:1])
        diff.bias.copy_(last.bias[1:2] - last.bias[0:1])
    return netatlas.nets.from_torch(torch.nn.Sequential(*list(model)[:-1], diff))


def partition_layers(frame, view) -> dict:
    """Exact regions, decision boundary and confidence contours from ``netatlas.regions.partition``."""
    out = {}
    if not frame.net.piecewise_linear:
        note = (f"exact regions need a piecewise-linear net (relu or leaky_relu); this one uses "
                f"{frame.config['activation']}")
        return {"regions": {"unavailable": note}, "boundary": {"unavailable": note},
                "contours": {"unavailable": note}}
    try:
        partition = lens("netatlas.regions", "partition")
    except Unavailable as note:
        return {k: {"unavailable": str(note)} for k in ("regions", "boundary", "contours")}
    if frame.net.n_hidden_units > MAX_REGION_UNITS:
        note = (f"exact regions are computed live for nets of at most {MAX_REGION_UNITS} hidden units (this one "
                f"has {frame.net.n_hidden_units}); call netatlas.regions.partition on the exported model")
        return {k: {"unavailable": note} for k in ("regions", "boundary", "contours")}
    import netatlas

    plane = netatlas.Plane(np.zeros(2), np.array([1.0, 0.0]), np.array([0.0, 1.0]), tuple(frame.window))
    binary = frame.n_classes == 2
    start = time.perf_counter()
    part = partition(_logit_difference_net(frame.model) if binary else frame.net, plane)
    n_regions = int(part.num_regions)
    out["regions"] = {"n_regions": n_regions, "partition_ms": round(1000 * (time.perf_counter() - start), 1)}
    if view["regions"] and n_regions > MAX_DRAWN_REGIONS:
        out["regions"]["note"] = (f"{n_regions:,} regions are too many to draw (limit {MAX_DRAWN_REGIONS:,}); "
                                  "the count is exact")
    elif view["regions"]:
        out["regions"].update(_layer(lambda: _polygons(part)))
    if view["boundary"]:
        out["boundary"] = _layer(lambda: {"segments": _segments(part.decision_boundary())})
    if view["contours"]:
        out["contours"] = _layer(lambda: _contours(part, binary))
    return out


def _segments(segments) -> dict:
    segments = getattr(segments, "segments", segments)  # a netatlas.regions Segments result
    return _pack(np.asarray(segments, dtype=np.float64).reshape(-1))


def _polygons(part) -> dict:
    coords = np.asarray(part.xy, dtype=np.float64) + np.asarray(part.center, dtype=np.float64)
    patterns = np.packbits(np.asarray(part.patterns, dtype=bool), axis=1).astype(np.int64)
    # a colour key per activation pattern: the same pattern keeps its colour from frame to frame
    weights = np.random.default_rng(12345).integers(1, 2**20, size=patterns.shape[1])
    keys = (patterns * weights).sum(1) % 16_777_213 if patterns.size else np.zeros(len(patterns), np.int64)
    return {"coords": _pack(coords), "offsets": np.asarray(part.offsets).tolist(),
            "pattern_keys": keys.tolist(), "classes": np.asarray(part.predicted_class()).tolist()}


def _contours(part, binary: bool) -> dict:
    if not binary:
        raise Unavailable("confidence contours are drawn for two classes (the level sets of p(class 1))")
    lines = [{"level": p, "segments": _segments(part.level_set(math.log(p / (1 - p)), output=0))}
             for p in CONTOUR_LEVELS]
    return {"lines": lines}


def hyperplanes(frame) -> dict:
    """First-layer hyperplanes ``w.x + b = 0`` (read off the weights) and their transition zones."""
    first = next(m for m in frame.model if isinstance(m, torch.nn.Linear))
    W = first.weight.detach().double().numpy()
    b = first.bias.detach().double().numpy()
    out = {"w": _round(W.reshape(-1), 6), "b": _round(b, 6)}
    try:
        zone_interval = lens("netatlas.dynamics", "zone_interval")
        lo, hi = zone_interval(frame.config["activation"] if frame.config["activation"] != "leaky_relu"
                               else "leaky_relu", ZONE_EPS)
        out["zone"] = [float(lo), float(hi)]
    except Unavailable as note:
        out["zone_note"] = str(note)
    return out


def volume(frame, view) -> dict:
    """log volume element of a hidden layer's features on a METRIC_GRID x METRIC_GRID grid."""
    volume_element = lens("netatlas.metric", "volume_element")
    hidden = [name for name, m in frame.model.named_children()
              if not isinstance(m, torch.nn.Linear)]  # activation modules = hidden layers
    if not hidden:
        raise Unavailable("the network has no hidden layer; add one to see its volume element")
    layer = min(view["metric_layer"], len(hidden))
    x = torch.as_tensor(_grid_points(frame.window, METRIC_GRID), dtype=torch.float64)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        values = volume_element((frame.model, hidden[layer - 1]), x, log=True)
    values = np.asarray(torch.as_tensor(values).detach(), dtype=np.float64)
    finite = values[np.isfinite(values)]
    return {"n": METRIC_GRID, "layer": layer, "log_volume": _pack(np.where(np.isfinite(values), values, np.nan)),
            "range": _round([finite.min(), finite.max()] if finite.size else [0, 0], 4)}


def gradnorm(frame) -> dict:
    per_sample_gradient_norms = lens("netatlas.dynamics", "per_sample_gradient_norms")
    loss = "mse" if frame.mode == "regress" else "cross_entropy"
    n_parameters = sum(p.numel() for p in frame.model.parameters())
    chunk = max(8, GRADIENT_CHUNK_FLOATS // max(1, n_parameters))
    norms = per_sample_gradient_norms(frame.model, frame.x, frame.y, loss=loss, chunk_size=chunk)
    total = np.asarray(norms.total, dtype=np.float64)
    return {"norms": _pack(total), "max": float(np.nanmax(total)) if total.size else 0.0}


def subsample(frame, view) -> dict:
    score = lens("netatlas.dynamics", "score")
    keep = lens("netatlas.dynamics", "subsample")
    scores = score(view["subsample_method"], frame.model, frame.x, frame.y, seed=frame.config["seed"])
    kept = keep(scores, view["subsample_fraction"], labels=frame.y.numpy(), seed=frame.config["seed"])
    return {"kept": np.asarray(kept, dtype=np.int64).ravel().tolist(), "method": view["subsample_method"],
            "fraction": view["subsample_fraction"]}


def region_bounds(frame) -> dict:
    """Bounds on the number of linear regions of a ReLU net of these widths (in all of R^2), from
    ``netatlas.regions.bounds.all_bounds``."""
    bounds = lens("netatlas.regions.bounds")
    all_bounds = getattr(bounds, "all_bounds", None)
    if all_bounds is None:
        raise Unavailable("netatlas.regions.bounds.all_bounds is not available yet")
    widths = list(frame.config["widths"])
    if not widths:
        raise Unavailable("no hidden layer: the network is affine, one region")
    if not frame.net.piecewise_linear:
        raise Unavailable("region-count bounds are for piecewise-linear (ReLU) nets")
    return {name: float(value) for name, value in all_bounds(2, widths).items()}


# -- regression (1-D) layers ----------------------------------------------------------------------
def curve(frame) -> dict:
    umin, umax = frame.window[:2]
    xs = np.linspace(umin, umax, CURVE_POINTS)
    with torch.no_grad():
        ys = frame.model(torch.as_tensor(xs[:, None], dtype=torch.float32)).double().numpy().ravel()
    return {"x": _pack(xs), "y": _pack(ys)}


def spline(frame) -> dict:
    to_spline = lens("netatlas.splines", "to_spline")
    if not frame.net.is_shallow_univariate():
        raise Unavailable("the spline view needs a shallow net: 1 hidden ReLU layer (depth 1, relu)")
    sp = to_spline(frame.model)
    beta = np.asarray(_field(sp, "breakpoints"), dtype=np.float64).ravel()
    mu = np.asarray(_field(sp, "delta_slopes"), dtype=np.float64).ravel()
    finite = np.isfinite(beta)
    values = np.where(finite, np.asarray(sp(np.where(finite, beta, 0.0)), dtype=np.float64), np.nan)
    return {"breakpoints": _pack(beta), "delta_slopes": _pack(mu), "values": _pack(values)}


def _field(obj, name):
    value = getattr(obj, name, None)
    if value is None and isinstance(obj, dict):
        value = obj.get(name)
    if value is None:
        raise Unavailable(f"the spline result has no field {name!r}")
    return torch.as_tensor(value).detach().numpy() if isinstance(value, torch.Tensor) else value


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

    Large float arrays are packed as ``{"f32": base64, "n": n}`` (see :func:`_pack`); a layer that
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
    if view["gradnorm"]:
        layers["gradnorm"] = _layer(lambda: gradnorm(frame))
    if view["subsample"]:
        layers["subsample"] = _layer(lambda: subsample(frame, view))
    return layers
