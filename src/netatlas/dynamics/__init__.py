"""Training in regions (van den Berg 2016): where the gradient comes from, transition zones, weight
scale vs sample density, and boundary-aware subsampling of the training data.

- per-sample gradient norms (total and per layer) and how concentrated they are:
  :func:`per_sample_gradient_norms`, :func:`gradient_concentration`, :class:`GradientTracker`;
- transition zones (definitions in :mod:`netatlas.dynamics._zones`): :func:`zone_interval`,
  :func:`zone_width`, :func:`steepest_slope`, :func:`zone_membership`, :func:`hyperplane_distances`,
  :func:`unit_distances`, :func:`boundary_distance`;
- gradient mass vs scale (C5): :func:`gradient_mass`, :func:`predicted_gradient_mass`,
  :func:`expected_gradient_mass`, :func:`projected_density`;
- local complexity through training (Humayun et al. 2024): :class:`ComplexityTracker` (the study
  behind ``netatlas dynamics complexity`` is in :mod:`netatlas.experiments.humayun2024`);
- subsampling: :func:`score` (zone, boundary, confidence, el2n, grand, margin, forgetting, random) and
  :func:`subsample`;
- weights scaled by c (zones narrow by 1/c): :func:`scale_model`.

The van den Berg studies built on these (the C5 table, the scale and pruning studies, zone snapshots,
``netatlas dynamics scale|zones|prune``) live in :mod:`netatlas.experiments.vandenberg2016`.
"""

from netatlas._lazy import attach as _attach

# Names are imported from their module on first use (see netatlas._lazy).
__getattr__, __dir__ = _attach(__name__, {
    "_boundary": ["BOUNDARY_METHODS", "boundary_distance", "logit_margin", "segment_distance"],
    "_complexity": ["ComplexityTrace", "ComplexityTracker"],
    "_gradients": ["GradientNorms", "gradient_concentration", "per_sample_gradient_norms"],
    "_scores": ["METHODS", "correct", "forgetting_events", "score"],
    "_subsample": ["subsample"],
    "_tracking": ["CorrectnessRecorder", "GradientTrace", "GradientTracker"],
    "_zones": ["BELL_SHAPED", "UnitDistances", "expected_gradient_mass", "gradient_mass",
        "hyperplane_distances", "predicted_gradient_mass", "projected_density", "square_projected_density",
        "scale_model", "steepest_slope", "unit_distances", "zone_interval", "zone_membership", "zone_width"],
}, deprecated={
    "torch_threads": ("netatlas._threads", "torch_threads", "torch.set_num_threads (a helper of the library, "
                      "not of the dynamics lens)"),
    # the local-complexity study moved to its paper's package; a string, resolved on use: the lens
    # never imports experiments
    **{name: ("netatlas.experiments.humayun2024", name, f"netatlas.experiments.humayun2024.{name}")
       for name in ("ComplexityStudy", "complexity_study", "phase_table", "run_complexity")},
})

__all__ = [
    "BELL_SHAPED",
    "BOUNDARY_METHODS",
    "ComplexityTrace",
    "ComplexityTracker",
    "CorrectnessRecorder",
    "GradientNorms",
    "GradientTrace",
    "GradientTracker",
    "METHODS",
    "UnitDistances",
    "boundary_distance",
    "correct",
    "expected_gradient_mass",
    "forgetting_events",
    "gradient_concentration",
    "gradient_mass",
    "hyperplane_distances",
    "logit_margin",
    "per_sample_gradient_norms",
    "predicted_gradient_mass",
    "projected_density",
    "scale_model",
    "score",
    "segment_distance",
    "square_projected_density",
    "steepest_slope",
    "subsample",
    "unit_distances",
    "zone_interval",
    "zone_membership",
    "zone_width",
]
