"""What the playground exports: the model as a torch.export archive and the report of a session.

The report is a :class:`netatlas.report.RunDir` report like every command's: the numbers, the
settings, the page's picture, the library's own drawing of the exact partition and the training curves.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from netatlas.app._config import DEFAULT_VIEW
from netatlas.app._lenses import compute_layers, window_partition
from netatlas.app._session import Session
from netatlas.report import RunDir

logger = logging.getLogger(__name__)

__all__ = ["save_model", "write_report"]

TIMING_KEYS = ("ms", "partition_ms")  # how long a layer took: for the page's readout, never for reports


def save_model(frame, path: Path) -> None:
    """The model as a torch.export archive whose batch size is free (any batch, not only the example's)."""
    import torch

    n_in = 2 if frame.mode == "classify" else 1
    model = frame.model.eval()
    batch = torch.export.Dim("batch", min=1)
    program = torch.export.export(model, (torch.zeros(2, n_in),), dynamic_shapes=({0: batch},))
    torch.export.save(program, str(path))


def write_report(session: Session, image: bytes | None, folder: Path) -> str:
    """The report's HTML; everything it writes on the way lives in ``folder`` and is removed."""
    try:
        return _report_html(session, image, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _report_html(session: Session, image: bytes | None, out: Path) -> str:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    frame = session.capture()
    layers = compute_layers(frame, {**DEFAULT_VIEW, "heatmap": "none"})
    run = RunDir.create(out, command="netatlas serve (export)", config=session.config)
    metrics = frame.meta["metrics"]
    summary = {"epoch": frame.meta["epoch"], "loss": metrics["loss"], "accuracy": metrics["accuracy"],
               "test_loss": metrics["test_loss"], "test_accuracy": metrics["test_accuracy"],
               "data": session.description}
    regions = layers.get("regions", {})
    if "n_regions" in regions:
        summary["n_regions_in_window"] = regions["n_regions"]
        summary["window"] = list(session.window)
    bounds = layers.get("bounds")
    if isinstance(bounds, dict) and "unavailable" not in bounds and "error" not in bounds:
        summary["region_bounds"] = {k: v for k, v in bounds.items() if k not in TIMING_KEYS}
    run.write_summary(summary)
    run.add_text("Data", session.description)
    run.add_table("Settings", [{"setting": k, "value": v} for k, v in session.config.items()])
    run.add_table("Numbers", [{"quantity": k, "value": v} for k, v in summary.items() if k != "data"])
    if image is not None:
        png = out / "playground.png"
        png.write_bytes(image)
        run.add_media(png, "The playground's view when the report was exported (exact geometry from the library).",
                      title="View")
    if frame.mode == "classify" and frame.net is not None and frame.net.piecewise_linear:
        _partition_figure(run, session, frame)
    curves = frame.meta["curves"]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    axes[0].plot(curves["epoch"], curves["loss"], label="train")
    if any(v is not None for v in curves["test_loss"]):
        axes[0].plot(curves["epoch"], curves["test_loss"], label="test")
    axes[0].set(xlabel="epoch", ylabel="loss", yscale="log")
    axes[0].legend()
    if frame.mode == "classify":
        axes[1].plot(curves["epoch"], curves["accuracy"], label="train")
        if any(v is not None for v in curves["test_accuracy"]):
            axes[1].plot(curves["epoch"], curves["test_accuracy"], label="test")
        axes[1].set(xlabel="epoch", ylabel="accuracy", ylim=(0, 1.02))
        axes[1].legend()
    else:
        axes[1].axis("off")
    run.save_figure(fig, "curves", "Loss (log scale) and accuracy per epoch, train and test.", title="Training")
    return run.write_report("netatlas playground report", "A network trained in the netatlas playground.").read_text()


def _partition_figure(run, session: Session, frame) -> None:
    """The library's own drawing of the exact partition (``Partition.plot``), with the data."""
    import matplotlib.pyplot as plt

    try:
        part = window_partition(frame.net, session.window)
        fig, ax = plt.subplots(figsize=(6, 6))
        part.plot(ax=ax)
        x, y = session.x.numpy(), session.y.numpy()
        ax.scatter(x[:, 0], x[:, 1], c=y, s=8, cmap="coolwarm", edgecolors="white", linewidths=0.3)
        run.save_figure(fig, "regions", f"Exact linear regions of the trained net in the window ({part.num_regions} "
                        "regions), drawn by netatlas.regions, with the training data.", title="Exact regions")
    except Exception:  # the report is still useful without it
        logger.debug("partition figure failed", exc_info=True)
