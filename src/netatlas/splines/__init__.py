"""The spline lens: shallow univariate ReLU networks f(x) = sum_i v_i relu(w_i x + b_i) + c as
continuous piecewise-linear splines (Sahs et al. 2020/2022) — coordinates, initialisation,
loss surface and Hessian, gradient flow, implicit regularisation.

    spline = netatlas.splines.to_spline(model)        # breakpoints, delta_slopes, orientations, offset
    model2 = netatlas.splines.to_network(spline, balance=True)
"""

from netatlas._lazy import attach as _attach

# Names are imported from their module on first use (see netatlas._lazy).
__getattr__, __dir__ = _attach(__name__, {
    "_flow": ["FlowResult", "conserved_quantity", "fast_gradient", "flow_velocity", "ntk_max_eigenvalue",
        "simulate_flow"],
    "_hessian": ["MIN_GAP_DECADES", "CriticalPoint", "HessianSpectrum", "classify_critical_point", "hessian_spectrum",
        "interpolating_minimum", "loss_gradient", "loss_hessian", "loss_jacobian", "loss_value", "neuron_block"],
    "_init": ["INIT_SCHEMES", "BreakpointDensity", "Distribution", "ExpectedRoughness", "InitScheme",
        "SampledRoughness", "breakpoint_density", "expected_roughness", "init_scheme", "sample_init",
        "sampled_roughness"],
    "_params": ["ShallowParams"],
    "_plot": ["plot_breakpoint_histogram", "plot_flow_frame", "plot_spectrum"],
    "_spline": ["Roughness", "Spline", "StepFunction", "as_params", "merge_coincident", "to_network", "to_spline"],
    "_video": ["render_flow_video"],
})

__all__ = [
    "INIT_SCHEMES",
    "MIN_GAP_DECADES",
    "BreakpointDensity",
    "CriticalPoint",
    "Distribution",
    "ExpectedRoughness",
    "FlowResult",
    "HessianSpectrum",
    "InitScheme",
    "Roughness",
    "SampledRoughness",
    "ShallowParams",
    "Spline",
    "StepFunction",
    "as_params",
    "breakpoint_density",
    "classify_critical_point",
    "conserved_quantity",
    "expected_roughness",
    "fast_gradient",
    "flow_velocity",
    "hessian_spectrum",
    "init_scheme",
    "interpolating_minimum",
    "loss_gradient",
    "loss_hessian",
    "loss_jacobian",
    "loss_value",
    "merge_coincident",
    "neuron_block",
    "ntk_max_eigenvalue",
    "render_flow_video",
    "sample_init",
    "sampled_roughness",
    "simulate_flow",
    "to_network",
    "to_spline",
    "plot_breakpoint_histogram",
    "plot_flow_frame",
    "plot_spectrum",
]
