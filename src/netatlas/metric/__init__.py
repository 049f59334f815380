"""The Riemannian lens (Zavatone-Veth, Yang, Rubinfien & Pehlevan, 2023): the metric ``g = J^T J`` a
feature map induces on input space, its volume element, pseudo-determinants, the effective volume of
image models, the 2 x 2 metric of a plane slice, 2-D scalar curvature, and (in
:mod:`netatlas.metric.infinite_width`) closed forms for random shallow networks at infinite width.

The first argument, ``net``, is a netatlas ``Net`` or torch module (features = its output), a plain callable
``(B, *input_shape) -> (B, ...)`` (used exactly as given), or ``(model, layer_name)`` (an intermediate
layer's output, scaled by ``1/sqrt(width)`` unless ``scale_by_width=False``). Points may be NumPy
arrays or torch tensors; every function returns NumPy arrays (torch is used inside).

>>> import torch, netatlas
>>> model = netatlas.nets.mlp([2, 250, 1], "sigmoid", seed=0)
>>> netatlas.metric.volume_element((model, "1"), torch.zeros(3, 2)).shape   # NumPy out, like every lens
(3,)
"""

from netatlas._lazy import attach as _attach

# Names are imported from their module on first use (see netatlas._lazy).
__getattr__, __dir__ = _attach(__name__, {
    "_boundary": ["grid_boundary_distance"],
    "_curvature": ["scalar_curvature", "scalar_curvature_from_metric"],
    "_features": ["FeatureMap", "as_feature_map"],
    "_logvol": ["log_abs_derivative"],
    "_user": ["QUANTITIES", "MetricMap", "metric_map"],
    "_metric": ["RANK_TOLERANCE", "effective_volume", "jacobian", "metric", "plane_metric",
        "plane_volume_element", "pseudo_volume_element", "volume_element"],
}, submodules=("infinite_width",), deprecated={
    "boundary_distance": ("netatlas.metric._boundary", "grid_boundary_distance",
                          "netatlas.metric.grid_boundary_distance (dynamics.boundary_distance is another thing)"),
})

__all__ = [
    "QUANTITIES",
    "RANK_TOLERANCE",
    "MetricMap",
    "FeatureMap",
    "grid_boundary_distance",
    "as_feature_map",
    "effective_volume",
    "infinite_width",
    "jacobian",
    "log_abs_derivative",
    "metric",
    "metric_map",
    "plane_metric",
    "plane_volume_element",
    "pseudo_volume_element",
    "scalar_curvature",
    "scalar_curvature_from_metric",
    "volume_element",
]
