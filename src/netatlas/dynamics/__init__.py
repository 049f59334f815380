"""Training in regions (van den Berg 2016): where the gradient comes from, transition zones, weight
scale vs sample density, and boundary-aware subsampling of the training data.

- per-sample gradient norms (total and per layer) and how concentrated they are:
  :func:`per_sample_gradient_norms`, :func:`gradient_concentration`, :class:`GradientTracker`;
- transition zones (definitions in :mod:`netatlas.dynamics._zones`): :func:`zone_interval`,
  :func:`zone_width`, :func:`steepest_slope`, :func:`zone_membership`, :func:`hyperplane_distances`,
  :func:`unit_distances`, :func:`boundary_distance`;
- gradient mass vs scale (C5): :func:`gradient_mass`, :func:`predicted_gradient_mass`,
  :func:`expected_gradient_mass`, :func:`projected_density`;
- subsampling: :func:`score` (zone, boundary, confidence, el2n, grand, margin, forgetting, random) and
  :func:`subsample`;
- experiments (the ``netatlas dynamics`` commands): :func:`gradient_mass_table`, :func:`scale_study`,
  :func:`zone_snapshots`, :func:`prune_one` / :func:`summarize_prune`, and the report writers
  :func:`run_scale`, :func:`run_zones`, :func:`run_prune`; plots in ``plot_*``.
"""

from netatlas._lazy import attach as _attach

# Names are imported from their module on first use (see netatlas._lazy).
__getattr__, __dir__ = _attach(__name__, {
    "netatlas._threads": ["torch_threads"],
    "_boundary": ["BOUNDARY_METHODS", "boundary_distance", "logit_margin", "segment_distance"],
    "_experiments": ["prune_configs", "run_prune", "run_scale", "run_zones"],
    "_gradients": ["LOSSES", "GradientNorms", "gradient_concentration", "per_sample_gradient_norms",
        "per_sample_loss"],
    "_plot": ["plot_decay", "plot_gradient_mass_table", "plot_prune", "plot_scale_init", "plot_scale_static",
        "plot_zone_snapshot"],
    "_prune": ["PRESETS", "PruneStudy", "prune_config", "prune_one", "summarize_prune"],
    "_scale": ["GradientMassTable", "ScaleStudy", "gradient_mass_table", "scale_model", "scale_study"],
    "_scores": ["METHODS", "correct", "forgetting_events", "score"],
    "_snapshots": ["ZoneSnapshots", "zone_snapshots"],
    "_subsample": ["subsample"],
    "_tracking": ["CorrectnessRecorder", "GradientTrace", "GradientTracker"],
    "_zones": ["BELL_SHAPED", "UnitDistances", "as_net", "expected_gradient_mass", "gradient_mass",
        "hyperplane_distances", "predicted_gradient_mass", "projected_density", "square_projected_density",
        "steepest_slope", "unit_distances", "zone_interval", "zone_membership", "zone_width"],
})

__all__ = [
    "BELL_SHAPED",
    "BOUNDARY_METHODS",
    "CorrectnessRecorder",
    "GradientMassTable",
    "GradientNorms",
    "GradientTrace",
    "GradientTracker",
    "LOSSES",
    "METHODS",
    "PRESETS",
    "PruneStudy",
    "ScaleStudy",
    "UnitDistances",
    "ZoneSnapshots",
    "as_net",
    "boundary_distance",
    "correct",
    "expected_gradient_mass",
    "forgetting_events",
    "gradient_concentration",
    "gradient_mass",
    "gradient_mass_table",
    "hyperplane_distances",
    "logit_margin",
    "per_sample_gradient_norms",
    "per_sample_loss",
    "plot_decay",
    "plot_gradient_mass_table",
    "plot_prune",
    "plot_scale_init",
    "plot_scale_static",
    "plot_zone_snapshot",
    "predicted_gradient_mass",
    "projected_density",
    "prune_config",
    "prune_configs",
    "prune_one",
    "run_prune",
    "run_scale",
    "run_zones",
    "scale_model",
    "scale_study",
    "score",
    "segment_distance",
    "square_projected_density",
    "steepest_slope",
    "subsample",
    "summarize_prune",
    "torch_threads",
    "unit_distances",
    "zone_interval",
    "zone_membership",
    "zone_snapshots",
    "zone_width",
]
