"""The low-rank lens: local geometric analysis of feature extraction (Shisher, Ornee & Sun 2022).

In a local regime (P_{Y|X} within eps of P_Y) the optimal weights of a layer and the optimal features
below it form a rank-k approximation of a matrix fixed by the layer's Bayes action: the divergence
transition matrix (DTM) for softmax regression, the weighted centred conditional mean for MMSE, and a
linearised formula for a hidden layer. This package computes those optima, compares trained layers with
them (products, subspaces, losses, H-scores, locality diagnostics), generates joints with a controlled
eps, and analyses trained torch classifiers (``netatlas lowrank analyze``). The validation on networks
trained from joints (``netatlas lowrank validate``) is in :mod:`netatlas.experiments.shisher2022`.
"""

from netatlas._lazy import attach as _attach

# The networks the Shisher et al. validation trains (``netatlas.experiments.shisher2022``); importing them
# from here warns. A string, resolved on use: the lens never imports the paper package.
_MOVED_TO_SHISHER2022 = ("TrainedLayer", "exact_softmax_optimum", "hidden_network", "hidden_setup",
                         "softmax_network", "train_hidden_networks", "train_mmse_networks", "train_softmax_network",
                         "train_softmax_network_lbfgs", "train_softmax_networks")

# Names are imported from their module on first use (see netatlas._lazy).
__getattr__, __dir__ = _attach(__name__, {
    "_analyze": ["AnalysisResult", "DiscreteData", "analyze_net", "analyze_snapshots", "discretize",
        "layer_agreement"],
    "_compare": ["LayerComparison", "compare_hidden_layer", "compare_mmse_layer", "compare_softmax_layer",
        "fit_slope", "principal_angles", "relative_error"],
    "_dtm": ["SVD", "check_joint", "check_k", "dtm", "dtm_svd", "h_score", "h_score_max", "h_score_population",
        "low_rank", "marginals", "truncated_svd"],
    "_generate": ["LocalJoint", "chi2_radius", "default_singular_values", "dirichlet_joint", "local_joint",
        "sample_joint"],
    "_loss": ["check_y_values", "mmse_excess_loss", "softmax_excess_derivatives", "softmax_excess_loss",
        "softmax_excess_loss_torch"],
    "_newton": ["newton_minimize"],
    "_optimum": ["HiddenLayerOptimum", "LayerOptimum", "activation_derivative", "activation_value", "mmse_matrix",
        "optimal_hidden_layer", "optimal_mmse_layer", "optimal_softmax_layer", "pmi_matrix"],
}, deprecated={  # the validation's training helpers moved to the paper's package (kept for one release)
    name: ("netatlas.experiments.shisher2022", name, f"netatlas.experiments.shisher2022.{name}")
    for name in _MOVED_TO_SHISHER2022
})

__all__ = [
    "SVD",
    "AnalysisResult",
    "DiscreteData",
    "analyze_net",
    "analyze_snapshots",
    "discretize",
    "layer_agreement",
    "HiddenLayerOptimum",
    "LayerComparison",
    "LayerOptimum",
    "LocalJoint",
    "activation_derivative",
    "activation_value",
    "check_joint",
    "check_k",
    "check_y_values",
    "chi2_radius",
    "compare_hidden_layer",
    "compare_mmse_layer",
    "compare_softmax_layer",
    "default_singular_values",
    "dirichlet_joint",
    "dtm",
    "dtm_svd",
    "fit_slope",
    "h_score",
    "h_score_max",
    "h_score_population",
    "local_joint",
    "low_rank",
    "marginals",
    "mmse_excess_loss",
    "mmse_matrix",
    "newton_minimize",
    "optimal_hidden_layer",
    "optimal_mmse_layer",
    "optimal_softmax_layer",
    "pmi_matrix",
    "principal_angles",
    "relative_error",
    "sample_joint",
    "softmax_excess_derivatives",
    "softmax_excess_loss",
    "softmax_excess_loss_torch",
    "truncated_svd",
]
