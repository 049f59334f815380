"""Settings of a playground session and uploaded data: defaults, limits and validation.

Everything a browser sends passes through :func:`validate_config`, :func:`validate_view` or
:func:`parse_csv` before any work; each raises :class:`ConfigError` naming the field, the bad value
and what is accepted, and the page shows that message inline next to the field.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

from netatlas import ConfigError

__all__ = [
    "CLASSIFICATION_SETS",
    "ConfigError",
    "DEFAULT_CONFIG",
    "DEFAULT_VIEW",
    "LIMITS",
    "REGRESSION_FUNCTIONS",
    "UploadedData",
    "check_port",
    "choices",
    "parse_csv",
    "validate_config",
    "validate_view",
]

CLASSIFICATION_SETS = ("moons", "circles", "xor", "spirals", "sinusoid", "blobs")
REGRESSION_FUNCTIONS = ("sin", "cos", "abs", "square", "cubic", "relu", "step")
MODES = ("classify", "regress")
TRAINING_LOSS = {"classify": "cross_entropy", "regress": "mse"}  # names of netatlas.train.LOSSES
# "forgetting" scores need a correctness history over training, which the playground does not record
SUBSAMPLE_EXCLUDED = ("forgetting",)

# Caps that keep one session's work per frame bounded (the page says which cap was hit).
LIMITS = {
    "n": (4, 5000),
    "noise": (0.0, 2.0),
    "depth": (0, 6),
    "width": (1, 256),
    "n_parameters": 200_000,
    "init_scale": (1e-3, 100.0),
    "weight_decay": (0.0, 1.0),
    "l1": (0.0, 1.0),
    "l2": (0.0, 1.0),
    "test_fraction": (0.0, 0.9),
    "lr": (1e-6, 10.0),
    "batch_size": (0, 5000),  # 0 = full batch
    "seed": (0, 2**31 - 1),
    "n_classes": (2, 10),
    "csv_bytes": 1_000_000,
    "csv_rows": 5000,
    "csv_abs_value": 1e6,
    "csv_classes": 10,
}

DEFAULT_CONFIG = {
    "mode": "classify",
    "dataset": "moons",
    "function": "sin",
    "n": 500,
    "noise": 0.1,
    "n_classes": 3,
    "features": ["x1", "x2"],  # what the net sees of a point (TF Playground's input features)
    "depth": 2,
    "widths": [32, 32],
    "activation": "relu",
    "init": "torch",
    "init_scale": 1.0,
    "weight_decay": 0.0,
    "l1": 0.0,  # penalties on the weights (not the biases) added to the training loss, as in TF Playground
    "l2": 0.0,
    "test_fraction": 0.25,  # share of all points held out for testing (built-in data sets)
    "optimizer": "adam",
    "lr": 0.01,
    "batch_size": 32,
    "seed": 0,
}

DEFAULT_VIEW = {
    "regions": True,
    "colour_by": "none",  # none (thin outlines over the confidence shading) | pattern | class
    "boundary": True,
    "contours": True,
    "heatmap": "confidence",  # confidence | volume | none
    "metric_layer": 1,  # hidden layer whose volume element is shown (1-based)
    "hyperplanes": False,  # off by default: the boundary and the shading read first
    "show_test": True,  # drawn by the page only
    "units": True,  # the network panel's per-unit thumbnails
    "gradnorm": True,
    "subsample": False,
    "subsample_method": "zone",
    "subsample_fraction": 0.3,
    "window": None,  # [xmin, xmax, ymin, ymax] zoomed/panned to; None: the data's own window
}


@lru_cache(maxsize=1)
def choices() -> dict:
    """The accepted values of each choice setting; those the library owns come from its registries
    (``netatlas.nets.ACTIVATIONS``, ``INITS``, ``netatlas.train.OPTIMIZERS``, ``netatlas.dynamics.METHODS``).

    Imported on first use, so that ``netatlas serve --port`` is checked before torch loads.

    >>> from netatlas.train import OPTIMIZERS
    >>> choices()["optimizer"] == OPTIMIZERS
    True
    """
    from netatlas.dynamics import METHODS
    from netatlas.nets import ACTIVATIONS, INITS
    from netatlas.train import OPTIMIZERS

    return {"dataset": CLASSIFICATION_SETS, "function": REGRESSION_FUNCTIONS, "activation": tuple(ACTIVATIONS),
            "init": tuple(INITS), "optimizer": tuple(OPTIMIZERS),
            "subsample_method": tuple(m for m in METHODS if m not in SUBSAMPLE_EXCLUDED)}


def _number(config, key, lo, hi, *, integer=False):
    value = config.get(key, DEFAULT_CONFIG.get(key))
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ConfigError(key, f"{key}: expected a number, got {value!r}")
    try:
        value = float(value)
    except ValueError:
        raise ConfigError(key, f"{key}: expected a number, got {value!r}") from None
    if not math.isfinite(value):
        raise ConfigError(key, f"{key}: expected a finite number, got {value!r}")
    if integer:
        if value != int(value):
            raise ConfigError(key, f"{key}: expected a whole number, got {value!r}")
        value = int(value)
    if not lo <= value <= hi:
        raise ConfigError(key, f"{key}: {value!r} is outside the accepted range [{lo}, {hi}]")
    return value


def _choice(config, key, choices, default=None):
    value = config.get(key, DEFAULT_CONFIG.get(key, default))
    if value not in choices:
        raise ConfigError(key, f"{key}: unknown value {value!r}; choose one of {', '.join(choices)}")
    return value


def validate_config(config) -> dict:
    """Check and normalise session settings; missing keys take ``DEFAULT_CONFIG`` values.

    Examples
    --------
    >>> validate_config({"depth": 1, "widths": [8]})["widths"]
    [8]
    >>> validate_config({"n": 10**9})
    Traceback (most recent call last):
    ...
    netatlas._errors.ConfigError: n: 1000000000 is outside the accepted range [4, 5000]
    """
    if not isinstance(config, dict):
        raise ConfigError("config", f"config: expected an object of settings, got {type(config).__name__}")
    unknown = sorted(set(config) - set(DEFAULT_CONFIG) - {"upload"})
    if unknown:
        raise ConfigError(unknown[0], f"config: unknown setting(s) {unknown}; accepted: {sorted(DEFAULT_CONFIG)}")
    out = {"mode": _choice(config, "mode", MODES)}
    out["dataset"] = _choice(config, "dataset", CLASSIFICATION_SETS + ("upload",))
    out["function"] = _choice(config, "function", REGRESSION_FUNCTIONS)
    out["n"] = _number(config, "n", *LIMITS["n"], integer=True)
    out["noise"] = _number(config, "noise", *LIMITS["noise"])
    out["n_classes"] = _number(config, "n_classes", *LIMITS["n_classes"], integer=True)
    out["features"] = _features(config.get("features", DEFAULT_CONFIG["features"]))
    out["depth"] = _number(config, "depth", *LIMITS["depth"], integer=True)
    widths = config.get("widths", DEFAULT_CONFIG["widths"])
    if isinstance(widths, str):
        widths = [w for w in widths.replace(" ", "").split(",") if w]
    if not isinstance(widths, (list, tuple)):
        raise ConfigError("widths", f"widths: expected a list of layer widths, got {widths!r}")
    widths = list(widths)
    if len(widths) < out["depth"]:  # repeat the last width so depth alone can grow the net
        widths += [widths[-1] if widths else 16] * (out["depth"] - len(widths))
    widths = [_number({"widths": w}, "widths", *LIMITS["width"], integer=True) for w in widths[: out["depth"]]]
    out["widths"] = widths
    n_in = 1 if out["mode"] == "regress" else len(out["features"])
    sizes = [n_in, *widths, n_outputs(out, config.get("upload"))]
    n_parameters = sum((a + 1) * b for a, b in zip(sizes[:-1], sizes[1:], strict=True))
    if n_parameters > LIMITS["n_parameters"]:
        raise ConfigError("widths", f"widths: {sizes} (inputs, hidden widths, outputs) gives {n_parameters:,} "
                          f"parameters, above the "
                          f"limit {LIMITS['n_parameters']:,}; use fewer or narrower layers")
    out["activation"] = _choice(config, "activation", choices()["activation"])
    out["init"] = _choice(config, "init", choices()["init"])
    out["init_scale"] = _number(config, "init_scale", *LIMITS["init_scale"])
    out["weight_decay"] = _number(config, "weight_decay", *LIMITS["weight_decay"])
    out["l1"] = _number(config, "l1", *LIMITS["l1"])
    out["l2"] = _number(config, "l2", *LIMITS["l2"])
    out["test_fraction"] = _number(config, "test_fraction", *LIMITS["test_fraction"])
    out["optimizer"] = _choice(config, "optimizer", choices()["optimizer"])
    out["lr"] = _number(config, "lr", *LIMITS["lr"])
    out["batch_size"] = _number(config, "batch_size", *LIMITS["batch_size"], integer=True)
    out["seed"] = _number(config, "seed", *LIMITS["seed"], integer=True)
    if out["mode"] == "classify" and out["dataset"] == "upload" and not config.get("upload"):
        raise ConfigError("dataset", "dataset: 'upload' needs a CSV file; choose one with the upload control")
    return out


def _features(value) -> list:
    from netatlas.app._features import FEATURES

    if isinstance(value, str):
        value = [f for f in value.replace(" ", "").split(",") if f]
    if not isinstance(value, (list, tuple)) or not all(isinstance(f, str) for f in value):
        raise ConfigError("features", f"features: expected a list of feature names, got {value!r}")
    unknown = [f for f in value if f not in FEATURES]
    if unknown:
        raise ConfigError("features", f"features: unknown {unknown[0]!r}; choose from {', '.join(FEATURES)}")
    if not value:
        raise ConfigError("features", "features: choose at least one input feature")
    return list(dict.fromkeys(value))  # in order, without repeats


def n_outputs(config: dict, upload=None) -> int:
    """Outputs of the session's net: 1 for regression, else its data set's classes.

    ``upload`` is the uploaded data's number of classes (None/False: not known yet, 10 at most).

    >>> n_outputs({"mode": "classify", "dataset": "blobs", "n_classes": 4})
    4
    """
    if config["mode"] == "regress":
        return 1
    if config["dataset"] == "blobs":
        return int(config["n_classes"])
    if config["dataset"] == "upload":
        return int(upload) if isinstance(upload, int) and not isinstance(upload, bool) and upload > 1 \
            else LIMITS["csv_classes"]
    return 2  # every other built-in set has two classes


def check_port(port) -> int:
    """``port`` if it is a TCP port number (0 picks a free one); else a one-line ValueError.

    >>> check_port(8765)
    8765
    """
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ValueError(f"serve: --port must be a whole number in 0..65535 (0 picks a free port), got {port!r}")
    return port


def validate_view(view) -> dict:
    """Check and normalise what the page wants drawn; missing keys take ``DEFAULT_VIEW`` values.

    >>> validate_view({"subsample_fraction": 0.5})["subsample_fraction"]
    0.5
    """
    if not isinstance(view, dict):
        raise ConfigError("view", f"view: expected an object, got {type(view).__name__}")
    out = dict(DEFAULT_VIEW)
    for key, value in view.items():
        if key not in DEFAULT_VIEW:
            raise ConfigError(key, f"view: unknown option {key!r}; accepted: {sorted(DEFAULT_VIEW)}")
        out[key] = value
    for key in ("regions", "boundary", "contours", "hyperplanes", "show_test", "units", "gradnorm", "subsample"):
        out[key] = bool(out[key])
    out["colour_by"] = _choice(out, "colour_by", ("none", "pattern", "class"))
    out["heatmap"] = _choice(out, "heatmap", ("confidence", "volume", "none"))
    out["metric_layer"] = _number(out, "metric_layer", 1, LIMITS["depth"][1], integer=True)
    out["subsample_method"] = _choice(out, "subsample_method", choices()["subsample_method"])
    out["subsample_fraction"] = _number(out, "subsample_fraction", 0.01, 1.0)
    out["window"] = _window(out["window"])
    return out


def _window(value):
    """None, or a zoom window [xmin, xmax, ymin, ymax] of finite numbers with positive extent."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        value = value.split(",")
    message = (f"window: expected [xmin, xmax, ymin, ymax], finite, xmin < xmax, ymin < ymax, extents in "
               f"[1e-6, 1e6]; got {str(value)[:80]}")
    if not isinstance(value, (list, tuple)) or len(value) != 4:
        raise ConfigError("window", message)
    try:
        w = [float(v) for v in value]
    except (TypeError, ValueError):
        raise ConfigError("window", message) from None
    if not all(math.isfinite(v) and abs(v) <= 1e6 for v in w):
        raise ConfigError("window", message)
    if not (1e-6 <= w[1] - w[0] <= 1e6 and 1e-6 <= w[3] - w[2] <= 1e6):
        raise ConfigError("window", message)
    return w


@dataclass(frozen=True)
class UploadedData:
    """A validated CSV upload: ``x`` (n, 2) float64 rows, ``y`` (n,) labels 0..n_classes-1."""

    x: list
    y: list
    n_classes: int
    labels: list  # the original label of each class index

    def to_dict(self) -> dict:
        return {"n": len(self.y), "n_classes": self.n_classes, "labels": self.labels}


def parse_csv(text) -> UploadedData:
    """Parse an uploaded ``x1,x2,label`` CSV (an optional header line is skipped).

    Labels may be any strings or numbers (at most 10 distinct ones); coordinates must be finite
    numbers of magnitude at most 1e6.

    Examples
    --------
    >>> parse_csv("x1,x2,label\\n0,1,a\\n1,0,b\\n").n_classes
    2
    >>> parse_csv("0,1,a\\n1,nan,b\\n")
    Traceback (most recent call last):
    ...
    netatlas._errors.ConfigError: CSV line 2: 'nan' is not a finite number (columns x1, x2 must be numbers)
    """
    if not isinstance(text, str):
        raise ConfigError("upload", f"CSV: expected text, got {type(text).__name__}")
    if len(text.encode("utf-8", "replace")) > LIMITS["csv_bytes"]:
        raise ConfigError("upload", f"CSV: the file is larger than the limit of {LIMITS['csv_bytes']:,} bytes")
    lines = [(i, line.strip()) for i, line in enumerate(text.splitlines(), start=1)]
    lines = [(i, line) for i, line in lines if line and not line.startswith("#")]
    if lines and not _is_number(lines[0][1].replace(";", ",").split(",")[0].strip()):
        lines = lines[1:]  # a header such as "x1,x2,label"
    if not lines:
        raise ConfigError("upload", "CSV: no data rows; expected lines 'x1,x2,label'")
    if len(lines) > LIMITS["csv_rows"]:
        raise ConfigError("upload", f"CSV: {len(lines):,} rows is above the limit of {LIMITS['csv_rows']:,}")
    xs, raw_labels = [], []
    for i, line in lines:
        fields = [f.strip() for f in line.replace(";", ",").split(",")]
        if len(fields) != 3:
            raise ConfigError("upload", f"CSV line {i}: expected 3 columns x1,x2,label, got {len(fields)}")
        row = []
        for value in fields[:2]:
            if not _is_number(value) or not math.isfinite(float(value)):
                raise ConfigError("upload", f"CSV line {i}: {value[:30]!r} is not a finite number "
                                  "(columns x1, x2 must be numbers)")
            if abs(float(value)) > LIMITS["csv_abs_value"]:
                raise ConfigError("upload", f"CSV line {i}: {value[:30]} is larger in magnitude than "
                                  f"{LIMITS['csv_abs_value']:g}; rescale the data")
            row.append(float(value))
        if not fields[2]:
            raise ConfigError("upload", f"CSV line {i}: the label is empty")
        xs.append(row)
        raw_labels.append(fields[2][:40])
    labels = sorted(set(raw_labels), key=_label_key)
    if len(labels) > LIMITS["csv_classes"]:
        raise ConfigError("upload", f"CSV: {len(labels)} distinct labels; at most {LIMITS['csv_classes']} "
                          "classes are accepted")
    if len(labels) < 2:
        raise ConfigError("upload", f"CSV: only one label ({labels[0]!r}); a classifier needs at least 2 classes")
    index = {label: k for k, label in enumerate(labels)}
    return UploadedData(xs, [index[label] for label in raw_labels], len(labels), labels)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _label_key(label: str):
    return (0, float(label), "") if _is_number(label) else (1, 0.0, label)
