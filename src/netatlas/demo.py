"""``netatlas demo``: the main job on a built-in example.

Trains a small ReLU network on a 2-D toy set in seconds and writes a report with the data, the exact
linear regions and decision boundary, the first-layer hyperplanes, the magnification (volume element)
of the first hidden layer and the training curve.
"""

from __future__ import annotations

import time

import numpy as np
import typer

__all__ = ["run_demo", "register"]


def run_demo(out=None, *, dataset: str = "moons", widths=(16, 16), epochs: int = 300, seed: int = 0,
             progress: bool | None = None):
    """Train a small ReLU net on a 2-D toy set and write the demo report.

    Parameters
    ----------
    out : path, optional
        Run directory (default: a new ``runs/demo-<time>``).
    dataset : str
        A 2-D toy set of :mod:`netatlas.data` (moons, circles, xor, spirals, sinusoid, blobs).
    widths : tuple of int
        Hidden widths of the ReLU MLP.

    Returns
    -------
    RunDir
        The run directory; ``summary.json`` has accuracies, region counts and bounds.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    import netatlas
    from netatlas import data as datasets
    from netatlas.report import RunDir
    from netatlas.train import fit

    config = {"dataset": dataset, "widths": list(widths), "epochs": epochs, "seed": seed}
    run = RunDir.create(out, command="demo", config=config)
    data = datasets.load(dataset, seed=seed)
    if tuple(data.x.shape[1:]) != (2,):
        raise ValueError(f"demo: needs a 2-D toy set; {dataset!r} has inputs of shape {tuple(data.x.shape[1:])}")
    n_classes = int(data.n_classes)
    model = netatlas.nets.mlp([2, *widths, n_classes], "relu", seed=seed)
    start = time.perf_counter()
    history = fit(model, data, loss="cross_entropy", optimizer="adam", lr=1e-2, epochs=epochs, seed=seed,
                  progress=progress)
    train_seconds = time.perf_counter() - start
    net = netatlas.nets.from_torch(model)

    x, y = data.x.numpy().astype(np.float64), data.y.numpy()
    lo, hi = x.min(0), x.max(0)
    pad = 0.15 * (hi - lo)
    center, half = (lo + hi) / 2, ((hi - lo) / 2 + pad).max()
    plane = netatlas.Plane(center, [1.0, 0.0], [0.0, 1.0], (-half, half, -half, half))
    summary = {
        "dataset": dataset,
        "train_accuracy": _accuracy(net, x, y),
        "test_accuracy": _accuracy(net, data.x_test.numpy(), data.y_test.numpy()),
        "final_loss": float(history.loss[-1]),
        "train_seconds": train_seconds,
    }

    start = time.perf_counter()
    partition = netatlas.regions.partition(net, plane)
    summary["partition_seconds"] = time.perf_counter() - start
    summary["num_regions"] = int(partition.num_regions)
    bound = netatlas.regions.bounds.serra2018_upper(2, list(widths))
    summary["serra2018_upper_bound"] = bound

    fig, axes = plt.subplots(1, 2, figsize=(13, 6))
    partition.plot(axes[0], color_by="class")
    _draw_data(axes[0], x - center, y)
    axes[0].set_title(f"exact linear regions ({partition.num_regions:,}) coloured by class,\n"
                      "decision boundary in black")
    partition.plot(axes[1], color_by="pattern", boundary=False)
    _draw_hyperplanes(axes[1], net, center, half)
    _draw_data(axes[1], x - center, y)
    axes[1].set_title("regions by activation pattern;\nfirst-layer hyperplanes w.x + b = 0 dashed")
    for ax in axes:
        ax.set_xlim(-half, half)
        ax.set_ylim(-half, half)
        ax.set_aspect("equal")
    run.save_figure(fig, "regions", f"The trained {'-'.join(map(str, [2, *widths, n_classes]))} ReLU network "
                    f"on {dataset} (seed {seed}), in coordinates centred at the data's centre. Left: every "
                    "linear region of the network, computed exactly, coloured by the class it predicts; the "
                    "decision boundary (black) is exact. Right: the same regions coloured by activation "
                    "pattern, with the first layer's hyperplanes dashed.", title="Exact regions and boundary")

    last_hidden = str(2 * len(widths) - 1)  # module name of the last ReLU in mlp()'s Sequential
    summary.update(_magnification(run, model, last_hidden, plane, partition, plt))

    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(history.loss, label="train loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("cross-entropy")
    ax.set_yscale("log")
    ax.legend()
    run.save_figure(fig, "training", "Training loss per epoch (full batch, Adam, lr 1e-2).", title="Training")

    run.add_table("Headline numbers", [summary])
    netatlas.nets.save(model, run.file("model.pt2"), input_shape=(2,))
    run.write_summary(summary)
    run.write_report(f"netatlas demo: a ReLU network on {dataset}",
                     "A small network trained in seconds, and the exact geometry of what it computes. "
                     "The model is saved as model.pt2 (try `netatlas info` and `netatlas regions` on it).")
    return run


def _accuracy(net, x, y) -> float:
    return float((net(np.asarray(x, dtype=np.float64)).argmax(1) == np.asarray(y)).mean())


def _draw_data(ax, x, y):
    ax.scatter(x[:, 0], x[:, 1], c=y, cmap="coolwarm", s=10, edgecolors="k", linewidths=0.3, zorder=5)


def _draw_hyperplanes(ax, net, center, half):
    W, b, _ = net.as_mlp()[0]
    W, b = W.numpy(), b.numpy() + W.numpy() @ center  # in centred coordinates
    t = np.linspace(-3 * half, 3 * half, 2)
    for w, c in zip(W, b, strict=True):
        if abs(w[1]) > abs(w[0]):
            ax.plot(t, -(w[0] * t + c) / w[1], "k--", lw=0.7, alpha=0.7)
        elif w[0] != 0:
            ax.plot(-(w[1] * t + c) / w[0], t, "k--", lw=0.7, alpha=0.7)


def _magnification(run, model, layer, plane, partition, plt):
    """Volume element of a hidden layer's feature map on a grid, with the decision boundary on top."""
    import netatlas

    us, vs = plane.grid(150)
    points = plane.to_input(np.stack([us.ravel(), vs.ravel()], 1))
    # (model, layer): that module's output, scaled by 1/sqrt(width) as in the paper.
    log_volume = netatlas.metric.volume_element((model, layer), points, log=True)
    log_volume = np.asarray(log_volume, dtype=np.float64).reshape(us.shape)
    fig, ax = plt.subplots(figsize=(6.5, 6))
    finite = log_volume[np.isfinite(log_volume)]
    image = ax.pcolormesh(us, vs, log_volume, cmap="magma", shading="auto",
                          vmin=np.percentile(finite, 2) if finite.size else None)
    fig.colorbar(image, ax=ax, label="log volume element of the last hidden layer")
    segments = np.asarray(partition.decision_boundary().segments)
    for seg in segments:
        ax.plot(seg[:, 0], seg[:, 1], "c-", lw=1.2)
    ax.set_aspect("equal")
    ax.set_title("magnification by the last hidden layer")
    run.save_figure(fig, "magnification", "Log volume element log sqrt(det g), g = J^T J, of the last hidden "
                    "layer's feature map (scaled by 1/sqrt(width)) on a 150 x 150 grid, with the exact decision "
                    "boundary (cyan). For a ReLU net it is constant on each linear region; -inf (not drawn) "
                    "where the layer's Jacobian has rank < 2.", title="Magnification")
    return {"magnified_layer": layer,
            "log_volume_element_median": float(np.median(finite)) if finite.size else None}


def register(app: typer.Typer) -> None:
    @app.command()
    def demo(
        out: str = typer.Option(None, "--out", help="Run directory (default: runs/demo-<time>)"),
        dataset: str = typer.Option("moons", help="2-D toy set: moons, circles, xor, spirals, sinusoid, blobs"),
        epochs: int = typer.Option(300, help="Training epochs (full batch)"),
        seed: int = typer.Option(0, help="Seed for data, initialisation and training"),
    ):
        """Train a small ReLU net on a 2-D toy set; report its exact regions, boundary and magnification.

        The report also shows the data and the first layer's hyperplanes; the model is saved as model.pt2.

        Python: ``netatlas.demo.run_demo(out, dataset="moons", seed=0)``
        """
        run = run_demo(out, dataset=dataset, epochs=epochs, seed=seed)
        typer.echo(f"report: {run.file('report.html')}")

    from netatlas._run_guard import add_overwrite_options

    add_overwrite_options(app)  # --overwrite on commands with --out; a failed command marks its run failed
