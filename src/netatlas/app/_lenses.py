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

import importlib
import logging
import math
import time

import numpy as np
import torch

from netatlas._errors import UnsupportedLayerError
from netatlas.app._features import FeatureMap
from netatlas.app._frames import pack

logger = logging.getLogger(__name__)

__all__ = ["Unavailable", "compute_layers", "lens", "lens_status"]

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
    try:
        partition = lens("netatlas.regions", "partition")
    except Unavailable as note:
        return {k: {"unavailable": str(note)} for k in ("regions", "boundary", "contours")}
    import netatlas

    plane = netatlas.Plane(np.zeros(2), np.array([1.0, 0.0]), np.array([0.0, 1.0]), tuple(frame.window))
    binary = frame.n_classes == 2
    start = time.perf_counter()
    part = partition(_logit_difference_net(frame.model) if binary else frame.net, plane)
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
    to frame) and ``classes``; with ``by_class`` also the regions split along the decision boundary
    (``pieces``, see :func:`class_pieces`)."""
    coords = np.asarray(part.xy, dtype=np.float64) + np.asarray(part.center, dtype=np.float64)
    bits = [np.asarray(b, dtype=np.int64) for b in part.pattern_bits]
    patterns = np.concatenate(bits, axis=1) if bits else np.zeros((part.num_regions, 0), np.int64)
    weights = np.random.default_rng(12345).integers(1, 2**20, size=patterns.shape[1])
    keys = (patterns * weights).sum(1) % 16_777_213 if patterns.size else np.zeros(len(patterns), np.int64)
    out = {"coords": _pack(coords), "offsets": pack(part.offsets, "i32"),
           "colour": pack(keys % PATTERN_COLOURS, "u8"), "classes": pack(part.predicted_class(), "u8")}
    if by_class:
        xy, offsets, classes = class_pieces(part)
        out["pieces"] = {"coords": _pack(xy), "offsets": pack(offsets, "i32"), "classes": pack(classes, "u8")}
    return out


def region_volume(frame, view, part) -> dict:
    """log volume element of hidden layer ``metric_layer`` on each region (F,): the layer's map is
    affine on every region of the net (they refine its own regions), so one interior point per
    region (the vertex mean) gives the exact constant."""
    volume_element = lens("netatlas.metric", "volume_element")
    hidden = [name for name, m in frame.model.named_children()
              if not isinstance(m, (torch.nn.Linear, FeatureMap))]
    layer = view["metric_layer"]
    if not hidden or layer > len(hidden):
        raise Unavailable(f"metric of layer {layer}: this network has {len(hidden)} hidden layer(s)")
    import warnings

    x = torch.as_tensor(part.centroids(), dtype=torch.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        values = np.asarray(torch.as_tensor(volume_element((frame.model, hidden[layer - 1]), x, log=True)).detach(),
                            dtype=np.float64)
    finite = values[np.isfinite(values)]
    return {"layer": layer, "log_volume": _pack(np.where(np.isfinite(values), values, np.nan)),
            "range": _round([finite.min(), finite.max()] if finite.size else [0, 0], 4)}


def _clip(poly: np.ndarray, a: np.ndarray, c: float) -> np.ndarray:
    """The part of a convex polygon (n, 2) where ``a . p + c >= 0`` (Sutherland-Hodgman, one plane)."""
    d = poly @ a + c
    out = []
    n = len(poly)
    for i in range(n):
        j = (i + 1) % n
        if d[i] >= 0:
            out.append(poly[i])
        if (d[i] >= 0) != (d[j] >= 0):
            t = d[i] / (d[i] - d[j])
            out.append(poly[i] + t * (poly[j] - poly[i]))
    return np.array(out).reshape(-1, 2)


def class_pieces(part):
    """Regions split exactly along the decision boundary: (coords (T, 2), offsets (P+1,), classes (P,)).

    In each region the outputs are affine, so the set where class k wins is the region cut by the
    half-planes ``l_k >= l_j``: a convex polygon. Regions whose vertices all predict one class lie
    wholly in that class (convexity) and stay whole; only the regions the boundary crosses are cut.
    A single output (the logit difference of a two-class net) predicts class 1 where it is > 0.

    >>> import netatlas
    >>> net = netatlas.nets.from_torch(netatlas.nets.mlp([2, 6, 3], seed=1))
    >>> part = netatlas.regions.partition(net, netatlas.Plane.square(1.0))
    >>> xy, offsets, classes = class_pieces(part)
    >>> len(classes) >= part.num_regions
    True
    """
    xy = np.asarray(part.xy, dtype=np.float64)  # centred coordinates, as the maps are
    offsets = np.asarray(part.offsets, dtype=np.int64)
    maps = np.asarray(part.maps, dtype=np.float64)  # (F, 3, K): l = u * m0 + v * m1 + m2
    if maps.shape[2] == 1:  # l1 - l0 with l0 = 0
        maps = np.concatenate([np.zeros_like(maps), maps], axis=2)
    face = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))
    m = maps[face]
    values = xy[:, :1] * m[:, 0] + xy[:, 1:] * m[:, 1] + m[:, 2]
    vertex_class = values.argmax(1)
    lo = np.minimum.reduceat(vertex_class, offsets[:-1])
    hi = np.maximum.reduceat(vertex_class, offsets[:-1])
    polys, classes = [], []
    pure = lo == hi
    for f in range(len(offsets) - 1):
        poly = xy[offsets[f]:offsets[f + 1]]
        if pure[f]:
            polys.append(poly)
            classes.append(int(lo[f]))
            continue
        mf = maps[f]
        for k in range(mf.shape[1]):
            piece = poly
            for j in range(mf.shape[1]):
                if j != k and len(piece) >= 3:  # l_k - l_j >= 0
                    piece = _clip(piece, mf[:2, k] - mf[:2, j], mf[2, k] - mf[2, j])
            if len(piece) >= 3 and _area(piece) > 1e-14 * _area(poly):
                polys.append(piece)
                classes.append(k)
    sizes = np.array([len(p) for p in polys], dtype=np.int64)
    return (np.concatenate(polys) + np.asarray(part.center, dtype=np.float64),
            np.concatenate([[0], np.cumsum(sizes)]), np.array(classes, dtype=np.int64))


def _area(poly: np.ndarray) -> float:
    q = np.roll(poly, -1, axis=0)
    return 0.5 * abs(float((poly[:, 0] * q[:, 1] - q[:, 0] * poly[:, 1]).sum()))


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
            if isinstance(module, (torch.nn.Linear, FeatureMap)):
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
              if not isinstance(m, (torch.nn.Linear, FeatureMap))]  # activation modules = hidden layers
    if not hidden:
        raise Unavailable("the network has no hidden layer; add one to see its volume element")
    layer = view["metric_layer"]
    if layer > len(hidden):  # never silently show another layer
        raise Unavailable(f"metric of layer {layer}: this network has {len(hidden)} hidden layer(s); "
                          f"choose 1..{len(hidden)}")
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
    try:
        scores = score(view["subsample_method"], frame.model, frame.x, frame.y, seed=frame.config["seed"])
    except UnsupportedLayerError:
        if frame.net is not None:
            raise
        raise Unavailable(f"subsampling by {view['subsample_method']!r} needs the net's layers, and input features "
                          "that are not coordinates hide them; only 'random' works on such a net") from None
    kept = keep(scores, view["subsample_fraction"], labels=frame.y.numpy(), seed=frame.config["seed"])
    return {"kept": pack(kept, "i32"), "method": view["subsample_method"],
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
        layers["subsample"] = _layer(lambda: subsample(frame, view))
    return layers
