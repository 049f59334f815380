"""Magnification in self-supervised representations (Zavatone-Veth et al. 2023): train Barlow Twins,
SimCLR, supervised and random-init encoders, then compare where their representations magnify input space
(effective volume) with where a linear probe is unsure, on lines and planes through test images.

The training pieces live in :mod:`netatlas.train` (``fit_ssl``, ``barlow_twins_loss``, ``nt_xent_loss``,
``Augmentation``); this package holds the experiment and its analysis helpers.

>>> import netatlas.ssl
>>> netatlas.ssl.ENCODER_KINDS
('barlow', 'simclr', 'supervised', 'random')
"""

from netatlas._lazy import attach as _attach

# Names are imported from their module on first use (see netatlas._lazy).
__getattr__, __dir__ = _attach(__name__, {
    "_experiment": ["ENCODER_KINDS", "SCALING_CONVENTION", "SSLMagnifyConfig", "SSLMagnifyResult", "magnify_ssl"],
    "_magnify": ["LinearProbe", "SliceMeasures", "SliceSpec", "class_means", "encode", "fit_linear_probe",
        "make_slices", "measure_slices", "nearest_class_mean", "slice_correlations"],
    "_models": ["EncoderWithHead", "make_encoder", "make_projector"],
    "_report": ["write_ssl_report"],
    "_stats": ["bootstrap_mean_ci", "spearman"],
})

__all__ = [
    "ENCODER_KINDS",
    "SCALING_CONVENTION",
    "EncoderWithHead",
    "LinearProbe",
    "SSLMagnifyConfig",
    "SSLMagnifyResult",
    "SliceMeasures",
    "SliceSpec",
    "bootstrap_mean_ci",
    "class_means",
    "encode",
    "fit_linear_probe",
    "magnify_ssl",
    "make_encoder",
    "make_projector",
    "make_slices",
    "measure_slices",
    "nearest_class_mean",
    "slice_correlations",
    "spearman",
    "write_ssl_report",
]
