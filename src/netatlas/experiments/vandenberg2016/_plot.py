"""Plots of the dynamics results (matplotlib is imported here only). Each function returns its axes."""

from __future__ import annotations

import numpy as np
import torch

__all__ = [
    "plot_decay",
    "plot_gradient_mass_table",
    "plot_prune",
    "plot_scale_init",
    "plot_scale_static",
    "plot_zone_snapshot",
]

_METHOD_STYLE = {
    "random": dict(color="black", lw=2.2, ls="-"),
    "zone": dict(color="tab:red", lw=2.2),
    "boundary": dict(color="tab:orange", lw=2.2),
    "el2n": dict(color="tab:blue", lw=1.6),
    "grand": dict(color="tab:green", lw=1.4, ls="--"),
    "confidence": dict(color="tab:cyan", lw=1.2, ls=":"),
    "margin": dict(color="tab:purple", lw=1.4, ls="--"),
    "forgetting": dict(color="tab:brown", lw=1.4, ls="-."),
}


def _axes(ax, n=1, size=(5, 4)):
    import matplotlib.pyplot as plt

    if ax is not None:
        return ax
    _, axes = plt.subplots(1, n, figsize=(size[0] * n, size[1]), squeeze=False)
    return axes[0] if n > 1 else axes[0, 0]


def plot_gradient_mass_table(table, ax=None):
    """Measured gradient mass (mean +- sd over seeds, and each seed) vs the large-scale prediction and
    the exact expectation, log-log."""
    ax = _axes(ax)
    w = table.w_norm
    for row in table.measured:
        ax.scatter(w, row, s=8, color="0.6", zorder=1)
    ax.errorbar(w, table.measured.mean(0), yerr=table.measured.std(0, ddof=1) if len(table.measured) > 1 else None,
                fmt="o", color="tab:red", capsize=3, label=f"measured (mean ± sd, {len(table.measured)} seeds)",
                zorder=3)
    grid = np.geomspace(w.min() / 1.5, w.max() * 1.5, 100)
    ax.plot(grid, table.predicted[0] * w[0] / grid, color="black", label="N ρ⊥(0)/||w|| (large-scale)")
    ax.plot(w, table.expected, "s--", color="tab:blue", mfc="none", label="exact expectation")
    ax.set(xscale="log", yscale="log", xlabel="||w||", ylabel="Σ_i σ'(w·x_i + b)",
           title=f"C5: gradient mass, N={table.n_samples} uniform on [-1,1]²")
    ax.legend(fontsize=8)
    return ax


def plot_scale_static(study, axes=None):
    """Trained net scaled by c: zone width, gradient concentration, C5 measured/predicted ratio."""
    axes = _axes(axes, 3)
    c = study.scales
    axes[0].loglog(c, study.static_zone_width, "o-")
    axes[0].set(xlabel="scale c", ylabel="mean first-layer zone width", title="zone width ∝ 1/c (C2)")
    axes[1].semilogx(c, study.static_concentration, "o-", color="tab:red", label="all parameters")
    axes[1].semilogx(c, study.static_concentration_first_layer, "s--", color="tab:blue", label="first layer")
    axes[1].legend(fontsize=8)
    axes[1].set(xlabel="scale c", ylabel="fraction of samples with 90% of the gradient",
                title="gradient concentrates", ylim=(0, 1.02))
    axes[2].semilogx(c, study.mass_ratio(), "o-", color="tab:green")
    axes[2].axhline(1.0, color="black", lw=0.8)
    axes[2].set(xlabel="scale c", ylabel="median measured / predicted mass", title="C5 on the trained net")
    return axes


def plot_scale_init(study, axes=None):
    """Training from a first layer scaled by c: first-layer gradient, accuracy, how far the first layer moved."""
    import matplotlib.pyplot as plt

    axes = _axes(axes, 3)
    colors = plt.cm.viridis(np.linspace(0, 0.9, len(study.scales)))
    for k, c in enumerate(study.scales):
        axes[0].semilogy(study.record_epochs, study.init_first_layer_grad[k], color=colors[k], label=f"c={c:g}")
        axes[1].plot(np.arange(1, study.init_accuracy.shape[1] + 1), study.init_accuracy[k], color=colors[k])
    axes[0].set(xlabel="epoch", ylabel="mean first-layer gradient norm", title="first-layer gradient vanishes")
    axes[0].legend(fontsize=7)
    axes[1].set(xlabel="epoch", ylabel="training accuracy", title="training curves")
    axes[2].loglog(study.scales, study.init_first_layer_change, "o-", color="tab:purple")
    axes[2].set(xlabel="init scale c of the first layer", ylabel="||W_end − W_0|| / ||W_0||",
                title="the first layer stalls")
    return axes


def plot_decay(study, axes=None):
    """||w|| and gradient concentration while training with each weight decay."""
    axes = _axes(axes, 2)
    for k, wd in enumerate(study.weight_decays):
        axes[0].plot(study.decay_record_epochs, study.decay_w_norm[k], label=f"weight decay {wd:g}")
        line, = axes[1].plot(study.decay_record_epochs, study.decay_concentration[k],
                             label=f"weight decay {wd:g}: all parameters")
        axes[1].plot(study.decay_record_epochs, study.decay_first_layer_concentration[k], ls="--",
                     color=line.get_color(), label=f"weight decay {wd:g}: first layer")
    axes[0].set(xlabel="epoch", ylabel="mean first-layer ||w||", title="weight decay keeps ||w|| small")
    axes[1].set(xlabel="epoch", ylabel="fraction with 90% of the gradient", title="... and the gradient spread")
    axes[0].legend(fontsize=8)
    axes[1].legend(fontsize=7)
    return axes


def plot_zone_snapshot(snapshots, k: int, ax=None, *, region_ax=None, eps: float = 0.1, width=None,
                       resolution: int = 200):
    """One snapshot: samples sized by gradient norm over the shaded transition zones, first-layer
    hyperplanes and the decision boundary; the exact linear regions on ``region_ax`` (ReLU nets, when
    ``netatlas.regions`` works).

    Zones: for smooth units, ``sum_j phi'(z_j)/max phi'`` over the first layer (the gradient mass density);
    for ReLU units, the slabs of half-width ``width/2`` around each hyperplane (default 4% of the window).
    """
    import matplotlib.colors as mcolors

    from netatlas.nets import Activation

    ax = _axes(ax)
    model = snapshots.model(k).double()
    x, y = snapshots.x, snapshots.y
    lo, hi = x.min(0), x.max(0)
    pad = 0.1 * (hi - lo)
    lo, hi = lo - pad, hi + pad
    u, v = np.linspace(lo[0], hi[0], resolution), np.linspace(lo[1], hi[1], resolution)
    uu, vv = np.meshgrid(u, v)
    grid = torch.as_tensor(np.stack([uu.ravel(), vv.ravel()], 1))
    W, b = model[0].weight.detach(), model[0].bias.detach()
    z = grid @ W.T + b
    act = Activation(snapshots.activation)
    if act.piecewise_linear:
        slab = (width if width is not None else 0.04 * float(max(hi - lo))) / 2
        shade = (z.abs() / torch.linalg.vector_norm(W, dim=1) <= slab).sum(1).double()
        label = f"# ReLU zones (|dist| ≤ {slab:.3g})"
    else:
        peak = float(act.derivative(torch.zeros(1, dtype=torch.float64)))
        shade = act.derivative(z).sum(1) / peak
        label = "Σ φ'(z)/max φ' (first layer)"
    image = ax.imshow(shade.reshape(resolution, resolution).numpy(), origin="lower",
                      extent=(lo[0], hi[0], lo[1], hi[1]), cmap="Greys", aspect="auto",
                      norm=mcolors.Normalize(vmin=0))
    with torch.no_grad():
        logits = model(grid)
    margin = (logits[:, 1] - logits[:, 0] if logits.shape[1] == 2 else logits.max(1).values).reshape(
        resolution, resolution).numpy()
    if logits.shape[1] == 2:
        ax.contour(uu, vv, margin, levels=[0], colors="tab:orange", linewidths=2)
    for j in range(len(W)):  # first-layer hyperplanes w.x + b = 0
        w0, w1 = float(W[j, 0]), float(W[j, 1])
        if abs(w1) > abs(w0):
            ax.plot(u, -(w0 * u + float(b[j])) / w1, color="tab:blue", lw=0.6, alpha=0.7)
        elif w0 != 0:
            ax.plot(-(w1 * v + float(b[j])) / w0, v, color="tab:blue", lw=0.6, alpha=0.7)
    g = snapshots.grad_norms[k]
    sizes = 4 + 120 * g / max(float(g.max()), 1e-12)
    ax.scatter(x[:, 0], x[:, 1], s=sizes, c=y, cmap="coolwarm", edgecolors="black", linewidths=0.3, zorder=3)
    ax.set(xlim=(lo[0], hi[0]), ylim=(lo[1], hi[1]),
           title=f"epoch {snapshots.epochs[k]}: {snapshots.concentration[k]:.0%} of samples carry 90% of ∇")
    ax.figure.colorbar(image, ax=ax, shrink=0.7, label=label)
    if region_ax is not None:
        _plot_regions(model, lo, hi, region_ax)
    return ax


def _plot_regions(model, lo, hi, ax):
    from netatlas._errors import UnsupportedLayerError
    from netatlas.nets import as_net
    from netatlas.regions import partition
    from netatlas.slices import Plane

    try:
        net = as_net(model)
        part = partition(net, Plane.window((lo[0], hi[0], lo[1], hi[1])))
        part.plot(ax=ax)
        ax.set_title(f"exact linear regions: {part.num_regions}")
    except UnsupportedLayerError as exc:  # smooth activations have no linear regions: say why it is empty
        ax.text(0.5, 0.5, f"exact regions unavailable:\n{type(exc).__name__}: {exc}"[:200], ha="center",
                va="center", wrap=True, fontsize=8, transform=ax.transAxes)
        ax.set_axis_off()
    return ax


def plot_prune(study, dataset: str, axes=None, *, methods=None):
    """Test accuracy and training time vs fraction kept, per method, with t confidence bands."""
    axes = _axes(axes, 2)
    d = study.datasets.index(dataset)
    methods = methods or study.methods
    rows = [r for r in study.table() if r["dataset"] == dataset]
    for method in methods:
        mine = [r for r in rows if r["method"] == method]
        if not mine:
            continue
        f = np.array([r["fraction"] for r in mine])
        acc = np.array([r["accuracy"] for r in mine])
        ci = np.nan_to_num(np.array([r["ci"] for r in mine]))
        style = _METHOD_STYLE.get(method, {})
        axes[0].plot(f, acc, marker="o", ms=3, label=method, **style)
        axes[0].fill_between(f, np.clip(acc - ci, 0, 1), np.clip(acc + ci, 0, 1), color=style.get("color"),
                             alpha=0.12)
        axes[1].plot(f, [r["seconds"] for r in mine], marker="o", ms=3, label=method, **style)
    full = study.full_accuracy[d]
    axes[0].axhline(np.nanmean(full), color="0.4", ls=":", lw=1, label="all data")
    axes[0].set(xlabel="fraction of training data kept", ylabel="test accuracy", title=f"{dataset}: accuracy")
    axes[1].axhline(np.nanmean(study.full_seconds[d]), color="0.4", ls=":", lw=1, label="all data")
    axes[1].set(xlabel="fraction of training data kept", ylabel="training wall time (s)",
                title=f"{dataset}: wall time")
    axes[0].legend(fontsize=7, ncol=2)
    return axes
