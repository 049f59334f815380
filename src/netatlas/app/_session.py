"""One playground session: data, model, optimiser and a background training thread.

Training never waits for drawing: the thread runs epochs while ``playing`` and only bumps a version
counter; the page's frame loop takes a copy of the weights whenever it is ready for a new frame
(:meth:`Session.capture`), so frames the page could not draw in time are dropped, never queued.
Snapshots of the weights are kept (thinned to at most ``MAX_SNAPSHOTS``) for scrubbing back.
"""

from __future__ import annotations

import copy
import logging
import math
import os
import threading
import time
from dataclasses import dataclass

import numpy as np
import torch

from netatlas.app._config import TRAINING_LOSS, UploadedData, validate_config
from netatlas.app._features import feature_layer, is_linear
from netatlas.train import mean_loss

logger = logging.getLogger(__name__)

__all__ = ["FrameInput", "Session"]

MAX_SNAPSHOTS = 300

MAX_CURVE_POINTS = 400  # loss/accuracy history sent per frame (thinned evenly)
# After each epoch the training thread sleeps this fraction of the epoch's duration (at least
# MIN_YIELD_S): Python runs one thread at a time, and without a pause a training loop of tiny torch
# ops would starve the frame thread computing the geometry (and other tabs) of the interpreter.
# NETATLAS_APP_YIELD overrides it (read when a session starts; see :func:`tuning`).
YIELD_FRACTION = 0.5
MIN_YIELD_S = 0.002
# While a frame is being computed the trainer also pauses this long after each optimiser step. It
# never waits for the page (an unacknowledged frame blocks nothing), only lets the geometry run.
# NETATLAS_APP_FRAME_YIELD overrides it.
FRAME_YIELD_S = 0.005
TUNING_ENV = {"NETATLAS_APP_YIELD": (YIELD_FRACTION, 10.0), "NETATLAS_APP_FRAME_YIELD": (FRAME_YIELD_S, 1.0)}


def tuning() -> dict:
    """The trainer's pauses from the environment: {variable: value}, defaults where unset.

    Raises ValueError (one line) for a value that is not a finite number in [0, max]; never at
    import time, so a bad value cannot break commands other than ``serve``.

    >>> tuning()["NETATLAS_APP_YIELD"] >= 0
    True
    """
    out = {}
    for name, (default, top) in TUNING_ENV.items():
        text = os.environ.get(name)
        if text is None or not text.strip():
            out[name] = default
            continue
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and 0 <= value <= top):
            raise ValueError(f"{name}={text[:40]!r}: expected a number of seconds (fraction) in [0, {top:g}]; "
                             "unset it for the default")
        out[name] = value
    return out


@dataclass(frozen=True, eq=False)
class FrameInput:
    """What a frame is computed from: a private copy of the model and the session's data."""

    model: torch.nn.Module
    net: object
    x: torch.Tensor
    y: torch.Tensor
    window: tuple
    config: dict
    mode: str
    n_classes: int
    meta: dict


FUNCTION_TEXT = {"sin": "sin(pi x)", "cos": "cos(pi x)", "abs": "|x|", "square": "x^2", "cubic": "x^3 - x",
                 "relu": "relu(x)", "step": "step(x) (1 for x > 0, else 0)"}


def _window_2d(points: np.ndarray) -> tuple[float, float, float, float]:
    # a square window (equal scales, so slab widths and angles draw true) around the data
    lo, hi = points.min(0), points.max(0)
    centre = (lo + hi) / 2
    half = max(float((hi - lo).max()) / 2 * 1.15, 1e-3)
    if not all(math.isfinite(v) for v in (*centre, half)):
        raise ValueError("data: coordinates are not finite")
    return (centre[0] - half, centre[0] + half, centre[1] - half, centre[1] + half)


def load_data(config: dict, upload: UploadedData | None):
    """(x, y, x_test, y_test, n_classes, description) for a validated config, via netatlas.data."""
    import netatlas.data

    if config["mode"] == "regress":
        data = netatlas.data.regression_1d(config["n"], fn=config["function"], noise=config["noise"],
                                           seed=config["seed"], test_fraction=config["test_fraction"])
        name = config["function"]  # say the function as the form does: sin(pi x), not sin(x)
        description = data.description.replace(f"y = {name}(x)", f"y = {FUNCTION_TEXT.get(name, name + '(x)')}")
        return data.x, data.y.float(), data.x_test, data.y_test.float(), 1, description
    if config["dataset"] == "upload":
        if upload is None:
            raise ValueError("dataset: 'upload' needs a CSV file; choose one with the upload control")
        x = torch.tensor(upload.x, dtype=torch.float32)
        y = torch.tensor(upload.y, dtype=torch.int64)
        return (x, y, x[:0], y[:0], upload.n_classes,
                f"Uploaded CSV: {len(y)} points, {upload.n_classes} classes ({', '.join(upload.labels)}).")
    kwargs = {"n": config["n"], "noise": config["noise"], "seed": config["seed"],
              "test_fraction": config["test_fraction"]}
    if config["dataset"] == "blobs":
        kwargs["n_classes"] = config["n_classes"]
    data = netatlas.data.load(config["dataset"], **kwargs)
    return data.x, data.y, data.x_test, data.y_test, int(data.n_classes), data.description


def _torch_optimizer(name: str) -> type:
    """torch's optimiser class of a name of ``netatlas.train.OPTIMIZERS`` ("adamw" -> torch.optim.AdamW):
    the session steps it one batch at a time, so it builds the optimiser ``fit`` would.

    >>> _torch_optimizer("sgd").__name__
    'SGD'
    """
    return next(cls for cls_name, cls in vars(torch.optim).items()
                if cls_name.lower() == name and isinstance(cls, type) and issubclass(cls, torch.optim.Optimizer))


class Session:
    """Data, model and training state of one browser tab.

    Parameters
    ----------
    config : dict
        Settings (validated by :func:`netatlas.app.validate_config`).
    upload : UploadedData, optional
        The parsed CSV when ``config["dataset"] == "upload"``.

    Examples
    --------
    >>> session = Session({"n": 40, "depth": 1, "widths": [4], "seed": 1})
    >>> session.step(); session.epoch, len(session.snapshots)
    (1, 2)
    >>> frame = session.capture()
    >>> frame.meta["epoch"], frame.net.n_hidden_units
    (1, 4)
    >>> session.stop()
    """

    def __init__(self, config: dict, upload: UploadedData | None = None):
        import netatlas.nets

        pauses = tuning()
        self.yield_fraction = pauses["NETATLAS_APP_YIELD"]
        self.frame_yield_s = pauses["NETATLAS_APP_FRAME_YIELD"]
        self.config = validate_config({**config, "upload": upload.n_classes if upload is not None else False})
        self.upload = upload
        x, y, x_test, y_test, n_classes, description = load_data(self.config, upload)
        self.x, self.y, self.x_test, self.y_test = x, y, x_test, y_test
        self.n_classes = n_classes
        self.description = description
        self.mode = self.config["mode"]
        if self.mode == "regress":
            lo, hi = float(x.min()), float(x.max())
            pad = 0.1 * max(hi - lo, 1e-3)
            self.window = (lo - pad, hi + pad)
            n_in, n_out = 1, 1
        else:
            pts = torch.cat([x, x_test]).double().numpy()
            self.window = _window_2d(pts)
            n_in, n_out = 2, n_classes
        cfg = self.config
        first = feature_layer(cfg["features"]) if self.mode == "classify" else None
        if first is not None:
            n_in = len(cfg["features"])
        self.model = netatlas.nets.mlp([n_in, *cfg["widths"], n_out], cfg["activation"], init=cfg["init"],
                                       scale=cfg["init_scale"], seed=cfg["seed"])
        if first is not None:  # the features come first, inside the model (exports take raw points)
            self.model = torch.nn.Sequential(first, *self.model)
        # the IR (exact geometry) exists while the net is piecewise linear in the plane's coordinates
        self.has_ir = self.mode == "regress" or is_linear(cfg["features"])
        self.optimizer = self._make_optimizer()
        self.lock = threading.RLock()
        self.epoch = 0
        self.n_steps = 0  # optimiser steps
        self.history = {k: [] for k in ("epoch", "loss", "accuracy", "test_loss", "test_accuracy")}
        self.snapshots: list[dict] = []
        self.snapshot_every = 1
        self.viewing: int | None = None  # snapshot shown while scrubbed back
        self.notice: str | None = None  # said once to the page (e.g. that a branch dropped later history)
        self.from_link = False  # started from a share link's weights
        self.playing = False
        self.error: str | None = None
        self.version = 0
        self._record()
        self._snapshot()
        self.frame_busy = False  # set while a frame of this session is being computed
        self._epoch_lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name="netatlas-train", daemon=True)
        self._thread.start()

    # -- controls (called from the server) --------------------------------------------------------
    def play(self):
        with self.lock:
            self._resume_from_view()
            if self.error is None:
                self.playing = True
            self.version += 1
        self._wake.set()

    def pause(self):
        with self.lock:
            self.playing = False
            self.version += 1

    def step(self, n_epochs: int = 1):
        with self.lock:
            self.playing = False
        with self._epoch_lock:  # waits for an epoch the thread is running to end
            with self.lock:
                self._resume_from_view()
            for _ in range(n_epochs):
                if self.error is None:
                    self._train_epoch()
            with self.lock:
                self.version += 1

    def scrub(self, index: int):
        with self.lock:
            if not 0 <= index < len(self.snapshots):
                raise ValueError(f"scrub: snapshot {index} does not exist; there are {len(self.snapshots)}")
            self.playing = False
            self.viewing = None if index == len(self.snapshots) - 1 else index  # the last one = live
            self.version += 1

    def stop(self, wait: bool = True):
        """End the training thread: it checks after every optimiser step, so it ends within one step.

        ``wait=False`` returns at once (the server's event loop must never block on a join)."""
        self._stop.set()
        self._wake.set()
        if wait and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    @property
    def training_thread_alive(self) -> bool:
        return self._thread.is_alive()

    # -- training -----------------------------------------------------------------------------------
    def _make_optimizer(self):
        cfg = self.config
        optimizer = _torch_optimizer(cfg["optimizer"])
        return optimizer(self.model.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])

    def _loss(self, out, y):
        """The batch loss of netatlas.train's registry (what the dynamics lens differentiates per sample)."""
        return mean_loss(out, y, TRAINING_LOSS[self.mode])

    def _penalty(self):
        """L1 and L2 penalties on the weights (biases are free), added to the training loss only."""
        l1, l2 = self.config["l1"], self.config["l2"]
        if not (l1 or l2):
            return 0.0
        weights = [m.weight for m in self.model if isinstance(m, torch.nn.Linear)]
        return (l1 * sum(w.abs().sum() for w in weights) if l1 else 0.0) + \
            (l2 * sum((w * w).sum() for w in weights) if l2 else 0.0)

    def _train_epoch(self):
        n = len(self.x)
        batch = self.config["batch_size"] or n
        generator = torch.Generator().manual_seed(self.config["seed"] * 100_003 + self.epoch)
        order = torch.randperm(n, generator=generator)
        for start in range(0, n, batch):
            if self._stop.is_set():  # a closed tab or Ctrl-C: leave mid-epoch (nothing is recorded)
                return
            idx = order[start:start + batch]
            with self.lock:  # per step, so a frame can take its copy of the weights mid-epoch
                self.model.train()
                self.optimizer.zero_grad(set_to_none=True)
                loss = self._loss(self.model(self.x[idx]), self.y[idx]) + self._penalty()
                loss.backward()
                self.optimizer.step()
                self.n_steps += 1
                self.version += 1  # frames may show the weights after any step, not only per epoch
            if self.frame_busy:  # hand the interpreter to the thread computing this tab's frame
                time.sleep(self.frame_yield_s)
        with self.lock:
            self.epoch += 1
            self._record()
            if self.epoch % self.snapshot_every == 0:
                self._snapshot()

    def _evaluate(self, x, y):
        if len(x) == 0:
            return None, None
        with torch.no_grad():
            out = self.model(x)
            loss = float(self._loss(out, y))
            if self.mode == "regress":
                return loss, None
            return loss, float((out.argmax(1) == y).double().mean())

    def _record(self):
        loss, acc = self._evaluate(self.x, self.y)
        test_loss, test_acc = self._evaluate(self.x_test, self.y_test)
        for key, value in (("epoch", self.epoch), ("loss", loss), ("accuracy", acc), ("test_loss", test_loss),
                           ("test_accuracy", test_acc)):
            self.history[key].append(value)
        if loss is None or not math.isfinite(loss):
            self.playing = False
            self.error = (f"training diverged at epoch {self.epoch} (loss is {loss}); lower the learning "
                          "rate or the init scale, then reset")

    def _snapshot(self):
        self.snapshots.append({
            "epoch": self.epoch,
            "steps": self.n_steps,
            "model": copy.deepcopy(self.model.state_dict()),
            "optimizer": copy.deepcopy(self.optimizer.state_dict()),
            "history": len(self.history["epoch"]),
            "error": self.error,
        })
        if len(self.snapshots) > MAX_SNAPSHOTS:  # keep the first, then every other one
            last = self.snapshots[-1]
            self.snapshots = self.snapshots[::2]
            if self.snapshots[-1] is not last:
                self.snapshots.append(last)
            self.snapshot_every *= 2

    def _resume_from_view(self):
        """Playing or stepping from a scrubbed-back snapshot continues training from it."""
        if self.viewing is None:
            return
        snap = self.snapshots[self.viewing]
        dropped = [s["epoch"] for s in self.snapshots[self.viewing + 1:]]
        if dropped:  # branching is explicit: the page is told what was dropped
            self.notice = (f"branched from the snapshot at epoch {snap['epoch']}: the later history (epochs "
                           f"{snap['epoch'] + 1}..{self.epoch}, {len(dropped)} snapshot(s)) was dropped")
        self.model.load_state_dict(snap["model"])
        self.optimizer.load_state_dict(copy.deepcopy(snap["optimizer"]))
        self.epoch = snap["epoch"]
        self.n_steps = snap["steps"]
        for key in self.history:
            del self.history[key][snap["history"]:]
        del self.snapshots[self.viewing + 1:]
        self.error = snap["error"]
        self.viewing = None

    def _run(self):
        while not self._stop.is_set():
            if not self.playing:
                self._wake.wait(0.25)
                self._wake.clear()
                continue
            start = time.perf_counter()
            try:
                with self._epoch_lock:
                    if self.playing:
                        self._train_epoch()
                        with self.lock:
                            self.version += 1
            except Exception as exc:  # never let the thread die silently
                logger.exception("training failed")
                with self.lock:
                    self.playing = False
                    self.error = f"training failed: {type(exc).__name__}: {str(exc)[:300]}"
                    self.version += 1
            self._stop.wait(max(MIN_YIELD_S, self.yield_fraction * (time.perf_counter() - start)))

    def weights(self) -> np.ndarray:
        """Every parameter of the model shown (live or scrubbed-to), flattened in ``parameters()`` order:
        what a share link carries."""
        with self.lock:
            model = self.model
            if self.viewing is not None:
                model = copy.deepcopy(self.model)
                model.load_state_dict(self.snapshots[self.viewing]["model"])
            return torch.nn.utils.parameters_to_vector(model.parameters()).detach().double().numpy().copy()

    def load_weights(self, flat) -> None:
        """Start again from these weights (a share link's): epoch 0, fresh optimiser, one snapshot.

        Raises ValueError naming what is wrong: the count must match the net, the values be finite."""
        flat = np.asarray(flat, dtype=np.float64).ravel()
        expected = sum(p.numel() for p in self.model.parameters())
        if flat.size != expected:
            raise ValueError(f"weights: the link carries {flat.size:,} numbers but this network has {expected:,} "
                             "parameters; the settings in the link must match")
        if not np.isfinite(flat).all():
            raise ValueError("weights: the link carries NaN or infinite values")
        with self.lock:
            self.playing = False
            torch.nn.utils.vector_to_parameters(torch.as_tensor(flat, dtype=torch.float32),
                                                self.model.parameters())
            self.optimizer = self._make_optimizer()
            self.epoch, self.n_steps, self.viewing, self.error = 0, 0, None, None
            self.from_link = True
            self.history = {k: [] for k in self.history}
            self.snapshots, self.snapshot_every = [], 1
            self._record()
            self._snapshot()
            self.version += 1

    def take_notice(self) -> str | None:
        """The pending notice for the page, once."""
        with self.lock:
            notice, self.notice = self.notice, None
        return notice

    # -- frames ---------------------------------------------------------------------------------------
    def capture(self, *, with_net: bool = True) -> FrameInput:
        """A consistent copy of the state to draw (the live model, or the scrubbed-to snapshot).

        ``with_net=False`` leaves ``net`` None (for sending the frame to a worker process, which
        imports the model itself)."""
        import netatlas.nets

        with self.lock:
            model = copy.deepcopy(self.model)
            epoch = self.epoch
            n_hist = len(self.history["epoch"])
            if self.viewing is not None:
                snap = self.snapshots[self.viewing]
                model.load_state_dict(snap["model"])
                epoch, n_hist = snap["epoch"], snap["history"]
            history = {k: v[:n_hist] for k, v in self.history.items()}
            meta = {
                "version": self.version,
                "epoch": epoch,
                "steps": self.n_steps if self.viewing is None else None,
                "playing": self.playing,
                "n_snapshots": len(self.snapshots),
                "snapshot": len(self.snapshots) - 1 if self.viewing is None else self.viewing,
                "snapshot_epochs": [s["epoch"] for s in self.snapshots],
                "scrubbed": self.viewing is not None,
                "error": self.error,
                "from_link": self.from_link,
            }
        model.eval()
        n = len(history["epoch"])
        keep = np.unique(np.linspace(0, n - 1, min(n, MAX_CURVE_POINTS)).round().astype(int)) if n else []
        meta["curves"] = {k: [v[i] for i in keep] for k, v in history.items()}
        meta["metrics"] = {k: v[-1] if v else None for k, v in history.items()}
        net = netatlas.nets.from_torch(model) if with_net and self.has_ir else None
        return FrameInput(model, net, self.x, self.y, self.window, self.config, self.mode, self.n_classes, meta)

    def data_message(self) -> dict:
        """The data set as the page draws it."""
        def rows(x, y):
            return np.round(torch.cat([x.double(), y.double()[:, None]], 1).numpy(), 5).tolist()

        message = {"type": "data", "mode": self.mode, "config": self.config, "window": list(self.window),
                   "n_classes": self.n_classes, "description": self.description,
                   "train": rows(self.x, self.y), "test": rows(self.x_test, self.y_test),
                   "labels": self.upload.labels if self.upload is not None else None}
        if self.mode == "regress":  # the noiseless target, for reference
            import netatlas.data

            xs = np.linspace(*self.window, 201)
            ys = netatlas.data.REGRESSION_FUNCTIONS[self.config["function"]](xs)
            message["target"] = np.round(np.stack([xs, ys], 1), 5).tolist()
        return message
