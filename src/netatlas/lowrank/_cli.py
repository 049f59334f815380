"""``netatlas lowrank analyze``: the low-rank analysis of a trained classifier (the validation sweep,
``lowrank validate``, is added from :mod:`netatlas.experiments.shisher2022`)."""

from __future__ import annotations

from pathlib import Path

import typer

from netatlas import _options as options

__all__ = ["register"]

lowrank = typer.Typer(
    help="Low-rank lens: local geometric analysis of feature extraction (Shisher, Ornee & Sun 2022).",
    no_args_is_help=True,
)


def _unwrap(text):
    """Paragraphs of a triple-quoted block: single newlines become spaces."""
    return "\n\n".join(" ".join(p.split()) for p in text.strip().split("\n\n"))


@lowrank.command("analyze")
def analyze_command(
    model: Path = typer.Argument(
        None, help="Trained classifier: .pt2, .onnx, or .pt/.pth/.safetensors with a JSON spec (omit with --train)"
    ),
    data: str = options.data_option("digits", what="the theory (images or vectors with class labels)"),
    split: str = options.split_option(),
    layer: str = options.layer_option("A hidden layer to analyse too"),
    clusters: int = typer.Option(50, help="k-means clusters discretising the inputs (X = cluster)"),
    train: bool = typer.Option(
        False, "--train", help="Train a small MLP on the data and track the agreement over training snapshots"
    ),
    epochs: int = typer.Option(60, help="Epochs for --train (full batch Adam)"),
    width: int = typer.Option(32, help="Hidden width of the --train MLP (two hidden layers)"),
    activation: str = typer.Option("tanh", help="Activation of the --train MLP"),
    n_snapshots: int = typer.Option(8, "--snapshots", help="Snapshots for --train (log-spaced steps)"),
    n: int = options.n_option(None, "inputs"),
    spec: Path = typer.Option(None, help="JSON architecture spec for a state dict (default: MODEL.json)"),
    seed: int = options.seed_option(0, "the data split and sample, k-means and --train"),
    out: Path = options.out_option(),
):
    """Compare a trained classifier's last layer (and a hidden layer) with the theory built from the data.

    Python: ``netatlas.lowrank.analyze_snapshots(module, [(0, module.state_dict())], x, y, n_clusters=50)``
    """
    import numpy as np
    import torch

    import netatlas.data
    from netatlas.lowrank._analyze import analyze_net, analyze_snapshots, discretize
    from netatlas.report import RunDir

    if model is None and not train:
        raise options.OptionValueError("lowrank analyze: give a MODEL file, or --train to train a small MLP on the "
                                       "data")
    for option, value in (("--clusters", clusters), ("--epochs", epochs), ("--width", width),
                          ("--snapshots", n_snapshots)):
        options.at_least(option, value, 1)
    dataset, x, y, source = options.command_data(data, where="lowrank analyze", split=split, n=n, seed=seed)
    if dataset.n_classes is None:
        raise ValueError(f"lowrank analyze: --data {data} has regression targets; the theory needs class labels")
    x = x.flatten(1)  # the theory and the --train MLP take vectors
    config = {
        "model": str(model) if model else None,
        "data": data,
        "samples": source,
        "split": split,
        "layer": layer,
        "clusters": clusters,
        "train": train,
        "epochs": epochs,
        "width": width,
        "activation": activation,
        "n": n,
        "seed": seed,
    }
    run = RunDir.create(out, command="lowrank analyze", config=config)
    discrete = discretize(x, y, clusters, seed=seed)
    if train:
        import netatlas.nets
        import netatlas.train

        module = netatlas.nets.mlp([x.shape[1], width, width, dataset.n_classes], activation, seed=seed)
        steps = sorted(
            {0, epochs, *np.unique(np.geomspace(1, max(epochs, 1), n_snapshots).astype(int)).tolist()}
        )
        history = netatlas.train.fit(module, (x, y), epochs=epochs, lr=1e-2, seed=seed, snapshot_steps=steps)
        result = analyze_snapshots(module, history.snapshots, x, y, layer=layer, data=discrete)
        netatlas.nets.save(
            module,
            run.file("model.pt"),
            input_shape=(x.shape[1],),
            spec={"mlp": {"widths": [x.shape[1], width, width, dataset.n_classes], "activation": activation}},
        )
    elif str(model).lower().endswith((".pt2", ".onnx")):
        from netatlas.lowrank._analyze import AnalysisResult
        from netatlas.lowrank._generate import chi2_radius

        net = netatlas.nets.load(model)
        snap = analyze_net(net, discrete, x, y, layer=layer)
        result = AnalysisResult(discrete, [snap], layer, float(np.max(chi2_radius(discrete.p_xy))))
    else:
        from netatlas.nets import load_module

        module, _ = load_module(model, spec)
        result = analyze_snapshots(module, [(0, module.state_dict())], x, y, layer=layer, data=discrete)
    del torch
    _write_analysis(run, result, data)
    last = result.snapshots[-1]
    typer.echo(
        f"{data}: {discrete.n_clusters} clusters, data chi-square radius (max) {result.chi2_radius:.3g}"
    )
    typer.echo(
        f"last layer: product error {last['last']['product_error']:.3g}, max feature angle "
        f"{last['last']['max_feature_angle']:.1f} deg, H-score ratio {last['last']['h_score_ratio']:.3f}"
    )
    typer.echo(f"report: {run.path / 'report.html'}")


def _write_analysis(run, result, data_name):
    from netatlas.lowrank._plot import plot_analysis, plot_spectrum

    d = result.data.to_dict()
    run.add_text(
        "How the theory is built from the data",
        _unwrap(f"""
        The inputs of {data_name} ({d["n_samples"]} training images) are discretised by k-means
        (scikit-learn, n_init=3, seed {d["seed"]}) into {d["n_clusters"]} clusters; X is the
        cluster, Y the label and P_XY the table of their frequencies. A layer's feature of a cluster
        is the mean of its features over the cluster's images (the within-cluster fraction of the
        feature variance, which the theory ignores, is in the table). The last layer (logits = W f +
        b) is compared with the DTM of P_XY through the weighted, centred logit matrix Theta^ = Phi
        Psi^T and subspaces, never single singular vectors. Locality: the largest chi-square radius
        of P(Y|cluster) from P_Y is {d["max_chi2_radius"]:.3g} (root mean square
        {d["rms_chi2_radius"]:.3g}); the local theory needs it small (the synthetic validation's
        local range ends near 0.05), so disagreement here is an expected outcome, not a failure of
        the code.
"""),
    )
    if result.snapshots[0]["degenerate"]:
        run.add_text(
            "Warning: too few clusters",
            "The number of clusters minus one does not exceed the width of "
            "the penultimate layer, so the centred cluster-mean features span every direction: the "
            "angles and H-score ratios are trivially perfect and only the product error is informative. "
            "Use --clusters well above the layer width.",
        )
    rows = []
    for snap in result.snapshots:
        last = snap["last"]
        row = {
            "step": snap["step"],
            "train accuracy": snap["accuracy"],
            "product error": last["product_error"],
            "max feature angle": last["max_feature_angle"],
            "max weight angle": last["max_weight_angle"],
            "H-score ratio": last["h_score_ratio"],
            "sample H-score": snap["sample_h_score"],
            "excess loss": last["excess_loss"],
            "model chi2 radius": last["model_chi2_radius"],
            "logit spread": last["preactivation_spread"],
            "within-cluster fraction": snap["within_cluster_fraction"],
        }
        if snap["hidden"]:
            h = snap["hidden"]
            row.update(
                {
                    f"{h['layer']}: H-score ratio": h["h_score_ratio"],
                    f"{h['layer']}: max angle": h["max_angle"],
                    f"{h['layer']}: pre-act. spread": h["preactivation_spread"],
                }
            )
        rows.append(row)
    run.add_table(
        "Agreement with the theory over training",
        rows,
        f"Last layer compared at rank {result.snapshots[0]['last']['k']} (min(width, classes - 1)). "
        "Product error: ||Theta^ - B~_r|| / ||B~_r||. Angles: between the top-r singular subspaces of "
        "Theta^ and of the DTM. H-score ratio: the cluster-level features' one-sided H-score over its "
        "maximum 1/2 sum_{i<=r} sigma_i^2. Model chi2 radius: max over clusters of the distance of the "
        "model's mean prediction from P_Y; logit spread: max |logit - log P_Y| (centred).",
    )
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.6, 4.4))
    plot_analysis(result, ax=ax)
    run.save_figure(
        fig,
        "agreement",
        "Agreement over training snapshots (log scale): last-layer product error, "
        "H-score ratio and the model's chi-square radius; dotted: the data's chi-square radius.",
    )
    fig, ax = plt.subplots(figsize=(6.0, 3.6))
    plot_spectrum(result.data.p_xy, ax=ax)
    run.save_figure(
        fig,
        "spectrum",
        "Singular values of the DTM of (cluster, label): the theory's optimal k "
        "features span the top-k left singular vectors.",
    )
    run.save_json("analysis", result)
    last = result.snapshots[-1]
    summary = {
        "data": data_name,
        "n_clusters": d["n_clusters"],
        "chi2_radius_max": d["max_chi2_radius"],
        "chi2_radius_rms": d["rms_chi2_radius"],
        "singular_values": d["singular_values"],
        "steps": [s["step"] for s in result.snapshots],
        "product_error": [s["last"]["product_error"] for s in result.snapshots],
        "max_feature_angle": [s["last"]["max_feature_angle"] for s in result.snapshots],
        "h_score_ratio": [s["last"]["h_score_ratio"] for s in result.snapshots],
        "accuracy": [s["accuracy"] for s in result.snapshots],
        "final": {
            k: last["last"][k]
            for k in (
                "product_error",
                "max_feature_angle",
                "h_score_ratio",
                "excess_loss",
                "model_chi2_radius",
            )
        },
    }
    if last["hidden"]:
        summary["hidden"] = {
            "layer": last["hidden"]["layer"],
            "h_score_ratio": [s["hidden"]["h_score_ratio"] for s in result.snapshots],
            "max_angle": [s["hidden"]["max_angle"] for s in result.snapshots],
        }
    run.write_summary(summary)
    run.write_report(
        "Low-rank lens: a trained classifier against the theory",
        "Shisher, Ornee & Sun (2022): in a local regime the optimal last layer and the features below "
        "it form a rank-k approximation of the DTM. Here the DTM is built from the data (clustered "
        "inputs x labels) and a real classifier is compared with it, with the locality diagnostics "
        "that say whether the theory should apply.",
    )


def register(app: typer.Typer) -> None:
    """Add the ``lowrank`` command group to the root CLI."""
    app.add_typer(lowrank, name="lowrank")

