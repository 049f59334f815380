"""``dynamics zones MODEL --data ...``: the dynamics lens on the user's model (per-sample gradient norms, zone
membership, boundary distance), reached through the van den Berg ``dynamics zones`` command."""

from __future__ import annotations

from pathlib import Path

import typer

__all__ = ["model_zones"]


def _samples(data: str, n: int, where: str, split: str = "train", seed: int = 0):
    """(x, y, is_classification, description): a stratified sample of n of the split of a data file or set."""
    from netatlas._options import command_data

    _, x, y, description = command_data(data, where=where, split=split, n=n, seed=seed)
    return x, y, not y.is_floating_point(), description


def model_zones(model, spec, data, n, loss, eps, zone_width, out, threads, split="train", seed=0):
    """``dynamics zones MODEL --data ...``: per-sample gradient norms, zone membership and boundary distance."""
    where = "dynamics zones"
    if data is None:
        raise ValueError(f"{where}: MODEL needs --data NAME|FILE (a built-in data set or a .csv/.npz/.pt file)")
    from netatlas._options import at_least, split_value

    at_least("--threads", threads, 1)
    split_value(split)
    if n < 1 or not 0 < eps < 0.5 or (zone_width is not None and not zone_width >= 0):
        raise ValueError(f"{where}: need --n >= 1, 0 < --eps < 0.5 and --zone-width >= 0; got --n {n}, --eps {eps}, "
                         f"--zone-width {zone_width}")
    if Path(model).suffix.lower() == ".onnx":
        raise ValueError(f"{where}: per-sample gradients need a torch model file (.pt2 or a state dict + spec), "
                         f"not {model}")
    import numpy as np
    from scipy.stats import spearmanr

    from netatlas._threads import torch_threads
    from netatlas.dynamics import (
        boundary_distance,
        gradient_concentration,
        per_sample_gradient_norms,
        unit_distances,
        zone_membership,
    )
    from netatlas.nets import PIECEWISE_LINEAR, load, load_module
    from netatlas.report import RunDir
    from netatlas.train import LOSSES

    net = load(model, spec)
    module, _ = load_module(model, spec)
    module = module.module() if hasattr(module, "graph_signature") else module  # a torch.export program
    x, y, classification, source = _samples(data, n, where, split, seed)
    if x[0].numel() != net.n_inputs:
        raise ValueError(f"{where}: the data has {x[0].numel()} inputs per sample ({tuple(x.shape[1:])}); the model "
                         f"takes {net.n_inputs} ({net.input_shape})")
    x = x.reshape(len(x), *net.input_shape)
    loss = loss or ("cross_entropy" if classification else "mse")
    if loss not in LOSSES:
        raise ValueError(f"{where}: --loss must be one of {', '.join(LOSSES)}; got {loss!r}")
    if classification and int(y.max()) >= max(net.n_outputs, 2):
        raise ValueError(f"{where}: labels go up to {int(y.max())} but the model has {net.n_outputs} outputs")
    config = {"model": str(model), "spec": None if spec is None else str(spec), "data": data, "samples": source,
              "split": split, "seed": seed, "n": len(x), "loss": loss, "eps": eps, "zone_width": zone_width}
    run = RunDir.create(out, command="dynamics zones", config=config)
    with torch_threads(threads):
        g = per_sample_gradient_norms(module, x, y, loss=loss)
    squared = g.total ** 2
    summary = {"command": "dynamics zones", "model": str(model), "samples": source, "n": len(x), "loss": loss,
               "gradient_norm": {"mean": float(g.total.mean()), "median": float(np.median(g.total)),
                                 "max": float(g.total.max()), "concentration_90": gradient_concentration(g.total, 0.9),
                                 "per_layer_mean": dict(zip(g.layer_names, g.per_layer.mean(0).tolist(),
                                                            strict=True))}}
    arrays = {"x": x.numpy(), "y": y.numpy(), "gradient_norm": g.total, "gradient_norm_per_layer": g.per_layer}
    verdict = net.lenses()["dynamics zones"]
    if verdict == "yes":
        units = unit_distances(net, x)
        smooth = not any(a in PIECEWISE_LINEAR for a in units.activations)  # ReLU zones have width zero
        width = zone_width
        if width is None and not smooth:
            flat = x.reshape(len(x), -1).double()
            width = 0.05 * float(np.linalg.norm((flat.max(0).values - flat.min(0).values).numpy()))
        member = zone_membership(net, x, eps=eps, width=width)
        in_any = member.any(1)
        total = float(squared.sum())
        summary["zones"] = {"rule": f"|distance| <= {width:.6g}/2" if width is not None else
                            f"{eps} <= s(z) <= {1 - eps}", "width": width, "eps": eps, "n_units": member.shape[1],
                            "fraction_in_any_zone": float(in_any.mean()),
                            "mean_zones_per_sample": float(member.sum(1).mean()),
                            "gradient_share_in_zones": float(squared[in_any].sum() / total) if total > 0 else None,
                            "median_nearest_unit_distance": float(np.median(units.nearest()))}
        arrays |= {"in_zone": member, "unit_distance": units.distance}
    else:
        summary["zones"] = {"skipped": verdict}
    if classification:
        distance = boundary_distance(net, x)
        finite = np.isfinite(distance)
        rho = spearmanr(distance[finite], g.total[finite]).statistic if finite.sum() > 2 else None
        summary["boundary_distance"] = {"median": float(np.median(distance)), "mean": float(distance.mean()),
                                        "spearman_with_gradient_norm": None if rho is None else float(rho)}
        arrays["boundary_distance"] = distance
    run.save_arrays("samples", **arrays)
    run.write_summary(summary)
    _plot_model_zones(run, net, arrays, summary)
    rows = [{"quantity": f"gradient norm {k}", "value": v} for k, v in summary["gradient_norm"].items()
            if not isinstance(v, dict)]
    rows += [{"quantity": f"zones {k}", "value": v} for k, v in summary["zones"].items()]
    rows += [{"quantity": f"boundary distance {k}", "value": v}
             for k, v in summary.get("boundary_distance", {}).items()]
    run.add_table("Where the gradient comes from", rows, "concentration_90: the fraction of samples that carry 90% "
                  "of the summed squared gradient norm; gradient_share_in_zones: the share of it from samples in "
                  "at least one unit's transition zone.")
    report = run.write_report(f"dynamics zones: {model}", f"Per-sample gradient norms ({loss}), transition zones "
                              f"and decision-boundary distance of {model} on {source}. Numbers are reported "
                              "whatever they are.")
    s = summary["gradient_norm"]
    typer.echo(f"gradient norm: median {s['median']:.4g}, max {s['max']:.4g}, 90% from "
               f"{s['concentration_90']:.1%} of the samples")
    if "fraction_in_any_zone" in summary["zones"]:
        typer.echo(f"zones: {summary['zones']['fraction_in_any_zone']:.1%} of the samples in a zone")
    typer.echo(f"report: {report}")


def _plot_model_zones(run, net, arrays, summary):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    g = arrays["gradient_norm"]
    two_d = net.n_inputs == 2
    fig, axes = plt.subplots(1, 2 if two_d else 1, figsize=(10 if two_d else 5, 4), squeeze=False)
    ax = axes[0, 0]
    if "boundary_distance" in arrays:
        ax.scatter(arrays["boundary_distance"], g, s=6, c="k")
        ax.set_xlabel("distance to the decision boundary")
    else:
        ax.hist(g, bins=40, color="0.4")
        ax.set_xlabel("gradient norm")
    ax.set_ylabel("per-sample gradient norm" if "boundary_distance" in arrays else "samples")
    if two_d:
        xy = arrays["x"].reshape(len(g), 2)
        size = 4 + 60 * g / g.max() if g.max() > 0 else 6
        colour = arrays["in_zone"].any(1) if "in_zone" in arrays else "k"
        axes[0, 1].scatter(xy[:, 0], xy[:, 1], s=size, c=colour, cmap="coolwarm")
        axes[0, 1].set_title("samples sized by gradient norm" + ("; red: in a zone" if "in_zone" in arrays else ""))
    fig.tight_layout()
    run.save_figure(fig, "gradients", "Per-sample gradient norm against the distance to the decision boundary "
                    "(classification) or its histogram; for 2 inputs the samples sized by gradient norm.")
