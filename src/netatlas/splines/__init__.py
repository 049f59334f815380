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
    "_params": ["ShallowParams", "as_params"],
    "_regimes": ["REGIME_DEFAULTS", "KernelFit", "kernel_limit", "linear_interpolant", "min_tv_interpolant",
        "natural_cubic_spline", "regime_data", "regime_init", "regime_run"],
    "_spline": ["Roughness", "Spline", "StepFunction", "merge_coincident", "to_network", "to_spline"],
    "_video": ["render_flow_video"],
})

__all__ = [
    "INIT_SCHEMES",
    "MIN_GAP_DECADES",
    "REGIME_DEFAULTS",
    "BreakpointDensity",
    "CriticalPoint",
    "Distribution",
    "ExpectedRoughness",
    "FlowResult",
    "HessianSpectrum",
    "InitScheme",
    "KernelFit",
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
    "kernel_limit",
    "linear_interpolant",
    "min_tv_interpolant",
    "loss_gradient",
    "loss_hessian",
    "loss_jacobian",
    "loss_value",
    "merge_coincident",
    "natural_cubic_spline",
    "neuron_block",
    "ntk_max_eigenvalue",
    "regime_data",
    "regime_init",
    "regime_run",
    "render_flow_video",
    "sample_init",
    "sampled_roughness",
    "simulate_flow",
    "to_network",
    "to_spline",
]
