"""van den Berg (2016), training in regions: the claim table (:func:`build`) and the studies behind
``netatlas dynamics scale|zones|prune``: the C5 gradient-mass table and weight-scale study, zone snapshots
through training, the training-data pruning study, their figures and report writers. The maths they use
(gradient norms, zones, scores, subsampling) is in :mod:`netatlas.dynamics`.
"""

from netatlas._lazy import attach as _attach

# Names are imported from their module on first use (see netatlas._lazy).
__getattr__, __dir__ = _attach(__name__, {
    "_claims": ["PAPER", "TITLE", "PARTS", "configs", "run_part", "build"],
    "_run": ["DEFAULT_PRUNE_DATASETS", "FULL_PRUNE_DATASETS", "prune_configs", "run_prune", "run_scale", "run_zones"],
    "_scale": ["GradientMassTable", "ScaleStudy", "gradient_mass_table", "scale_study"],
    "_snapshots": ["ZoneSnapshots", "zone_snapshots"],
    "_prune": ["PRESETS", "PruneStudy", "prune_config", "prune_one", "summarize_prune"],
    "_plot": ["plot_decay", "plot_gradient_mass_table", "plot_prune", "plot_scale_init", "plot_scale_static",
        "plot_zone_snapshot"],
})

__all__ = [
    "DEFAULT_PRUNE_DATASETS",
    "FULL_PRUNE_DATASETS",
    "PAPER",
    "PARTS",
    "PRESETS",
    "TITLE",
    "build",
    "configs",
    "gradient_mass_table",
    "GradientMassTable",
    "plot_decay",
    "plot_gradient_mass_table",
    "plot_prune",
    "plot_scale_init",
    "plot_scale_static",
    "plot_zone_snapshot",
    "prune_config",
    "prune_configs",
    "prune_one",
    "PruneStudy",
    "run_part",
    "run_prune",
    "run_scale",
    "run_zones",
    "scale_study",
    "ScaleStudy",
    "summarize_prune",
    "zone_snapshots",
    "ZoneSnapshots",
]
