"""The low-rank lens: local geometric analysis of feature extraction (Shisher, Ornee & Sun 2022).

In a local regime (P_{Y|X} within eps of P_Y) the optimal weights of a layer and the optimal features
below it form a rank-k approximation of a matrix fixed by the layer's Bayes action: the divergence
transition matrix (DTM) for softmax regression, the weighted centred conditional mean for MMSE, and a
linearised formula for a hidden layer. This package computes those optima, compares trained layers with
them (products, subspaces, losses, H-scores, locality diagnostics), generates joints with a controlled
eps, and validates the theory on trained torch networks (``netatlas lowrank validate``).
"""

from netatlas._lazy import attach as _attach

# Names are imported from their module on first use (see netatlas._lazy).
__getattr__, __dir__ = _attach(__name__, {
    "_analyze": ["AnalysisResult", "DiscreteData", "analyze_net", "analyze_snapshots", "discretize",
        "layer_agreement"],
    "_compare": ["LayerComparison", "compare_hidden_layer", "compare_mmse_layer", "compare_softmax_layer",
        "principal_angles", "relative_error"],
    "_dtm": ["SVD", "check_joint", "dtm", "dtm_svd", "h_score", "h_score_max", "h_score_population", "low_rank",
        "marginals", "truncated_svd"],
    "_fit": ["TrainedLayer", "exact_softmax_optimum", "hidden_network", "hidden_setup", "softmax_network",
        "train_hidden_networks", "train_mmse_networks", "train_softmax_network", "train_softmax_network_lbfgs",
        "train_softmax_networks"],
    "_generate": ["LocalJoint", "chi2_radius", "default_singular_values", "dirichlet_joint", "local_joint",
        "sample_joint"],
    "_loss": ["mmse_excess_loss", "softmax_excess_derivatives", "softmax_excess_loss", "softmax_excess_loss_torch"],
    "_newton": ["newton_minimize"],
    "_optimum": ["HiddenLayerOptimum", "LayerOptimum", "activation_derivative", "mmse_matrix", "optimal_hidden_layer",
        "optimal_mmse_layer", "optimal_softmax_layer", "pmi_matrix"],
    "_validate": ["ValidationConfig", "ValidationResult", "fit_slope", "validate"],
})

__all__ = [
    "SVD",
    "AnalysisResult",
    "DiscreteData",
    "ValidationConfig",
    "ValidationResult",
    "analyze_net",
    "analyze_snapshots",
    "discretize",
    "fit_slope",
    "layer_agreement",
    "validate",
    "HiddenLayerOptimum",
    "TrainedLayer",
    "LayerComparison",
    "LayerOptimum",
    "LocalJoint",
    "activation_derivative",
    "check_joint",
    "chi2_radius",
    "compare_hidden_layer",
    "compare_mmse_layer",
    "compare_softmax_layer",
    "default_singular_values",
    "dirichlet_joint",
    "dtm",
    "dtm_svd",
    "exact_softmax_optimum",
    "h_score",
    "h_score_max",
    "h_score_population",
    "hidden_network",
    "hidden_setup",
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
    "softmax_network",
    "train_hidden_networks",
    "train_mmse_networks",
    "train_softmax_network",
    "train_softmax_network_lbfgs",
    "train_softmax_networks",
    "truncated_svd",
]
