"""The metric lens on encoders users bring: (model, "encoder"), (model, "projector") with BatchNorm heads,
nested layer names and plain callables, against slow float64 autograd references."""

import copy
import math
import warnings

import numpy as np
import pytest
import torch

import netatlas
import netatlas.metric
from netatlas.experiments.zavatoneveth2023.ssl import EncoderWithHead, make_encoder, make_projector


class _TorchView:
    """netatlas.metric with array results as tensors: the lens returns NumPy arrays, the float64 references
    in this file are torch tensors."""

    def __getattr__(self, name):
        fn = getattr(netatlas.metric, name)

        def call(*args, **kwargs):
            out = fn(*args, **kwargs)
            return torch.from_numpy(out) if isinstance(out, np.ndarray) else out

        return call


metric = _TorchView()


def _randomize_batchnorm(module, seed=0):
    g = torch.Generator().manual_seed(seed)
    for sub in module.modules():
        if isinstance(sub, torch.nn.BatchNorm1d):
            with torch.no_grad():
                sub.running_mean.copy_(torch.rand(sub.num_features, generator=g) - 0.5)
                sub.running_var.copy_(torch.rand(sub.num_features, generator=g) + 0.5)
                sub.weight.copy_(torch.rand(sub.num_features, generator=g) + 0.5)
    return module


@pytest.fixture
def ssl_model():
    encoder = make_encoder((1, 4, 4), widths=(10, 5), seed=0)
    projector = _randomize_batchnorm(make_projector(5, (12, 7), seed=0))
    return EncoderWithHead(encoder, projector, "projector").eval()


def _reference(fn, points):
    """Per-point Jacobians (P, m, d) of fn on flattened float64 inputs, by autograd.functional."""
    points = torch.as_tensor(points, dtype=torch.float64)
    return torch.stack([torch.autograd.functional.jacobian(lambda v, p=p: fn(v.reshape(1, *p.shape)).ravel(),
                                                           p.ravel()) for p in points])


def _points(n=4, seed=0):
    return torch.rand(n, 1, 4, 4, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_projector_feature_map_through_metric_api(ssl_model):
    model64 = copy.deepcopy(ssl_model).double()
    x = _points()
    J = _reference(lambda v: model64(v) / math.sqrt(7), x)  # projector output, 1/sqrt(width) scaling
    sv = torch.linalg.svdvals(J)  # (P, 7): rank <= 5 (the encoder's width), lower where ReLUs are off
    ranks = (sv > 1e-10 * sv[:, :1]).sum(1)
    assert (ranks <= 5).all()

    g = metric.metric((ssl_model, "projector"), x)
    assert torch.allclose(g, J.mT @ J, atol=1e-12)
    # k = the numerical rank: finite and equal to the sum of the top-k log10 singular values
    for i, k in enumerate(ranks.tolist()):
        ev = metric.effective_volume((ssl_model, "projector"), x[i:i + 1], k=k)
        assert torch.allclose(ev, torch.log10(sv[i, :k]).sum(), atol=1e-8)
        # the pseudo volume element (non-zero eigenvalues only) is the same number in natural-log units
        pv = metric.pseudo_volume_element((ssl_model, "projector"), x[i:i + 1])
        assert torch.allclose(pv, ev * math.log(10), atol=1e-7)
    # GAP (reported): the default k = min(m, d) = 7 counts the 2 zero singular values, so -inf
    assert torch.isinf(metric.effective_volume((ssl_model, "projector"), x)).all()


def test_encoder_layer_nested_names_and_callables_agree(ssl_model):
    model64 = copy.deepcopy(ssl_model).double()
    x = _points(3, seed=1)
    J = _reference(lambda v: model64.encoder(v) / math.sqrt(5), x)
    reference = torch.log10(torch.linalg.svdvals(J)).sum(1)
    assert torch.allclose(metric.effective_volume((ssl_model, "encoder"), x), reference, atol=1e-8)
    # the encoder module itself, and a plain callable (scaled by effective_volume's own 1/sqrt(m))
    assert torch.allclose(metric.effective_volume(ssl_model.encoder, x), reference, atol=1e-8)
    assert torch.allclose(metric.effective_volume(lambda v: model64.encoder(v), x), reference, atol=1e-8)
    # a nested layer: the ReLU inside the projector (width 12, rank <= 5)
    J_hidden = _reference(lambda v: torch.relu(model64.projector[1](model64.projector[0](model64.encoder(v))))
                          / math.sqrt(12), x)
    g = metric.metric((ssl_model, "projector.2"), x)
    assert torch.allclose(g, J_hidden.mT @ J_hidden, atol=1e-12)
    # the supervised twin's naming: (model, "encoder") with a "head"
    twin = EncoderWithHead(ssl_model.encoder, torch.nn.Linear(5, 3), "head").eval()
    assert torch.allclose(metric.effective_volume((twin, "encoder"), x), reference, atol=1e-8)


def test_plane_metric_of_projector_and_scaling_switch(ssl_model):
    model64 = copy.deepcopy(ssl_model).double()
    images = _points(3, seed=2)
    plane = netatlas.Plane.through(*images.numpy())
    uv = np.array([[0.0, 0.0], [0.3, -0.2], [-0.5, 0.5]])
    J = _reference(lambda v: model64(v), plane.to_input(uv))
    U = torch.from_numpy(plane.basis)
    reference = (J @ U).mT @ (J @ U)
    unscaled = metric.plane_metric((ssl_model, "projector"), plane, uv, scale_by_width=False)
    assert torch.allclose(unscaled, reference, atol=1e-12)
    scaled = metric.plane_metric((ssl_model, "projector"), plane, uv)
    assert torch.allclose(scaled, reference / 7, atol=1e-12)  # (1/sqrt(7))^2


def test_batchnorm_projector_in_train_mode_is_refused(ssl_model):
    ssl_model.train()
    with pytest.raises(ValueError, match=r"BatchNorm1d at 'projector.1' is in training mode.*model.eval\(\)"):
        metric.effective_volume((ssl_model, "projector"), _points(2))
    with pytest.raises(ValueError, match="has no submodule 'projecter'"):
        metric.metric((ssl_model.eval(), "projecter"), _points(2))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        metric.effective_volume((ssl_model, "encoder"), _points(2))  # eval mode again: no warning
