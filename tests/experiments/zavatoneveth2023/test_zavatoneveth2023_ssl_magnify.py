"""Slices, probes, class means and the per-slice measures against direct references."""

import copy
import math

import numpy as np
import pytest
import torch
from torch import nn

from netatlas.experiments.zavatoneveth2023.ssl import (
    EncoderWithHead,
    SliceMeasures,
    class_means,
    fit_linear_probe,
    make_encoder,
    make_projector,
    make_slices,
    measure_slices,
    nearest_class_mean,
    slice_correlations,
)


@pytest.fixture
def toy():
    rng = np.random.default_rng(0)
    y = np.arange(60) % 4
    x = rng.random((60, 1, 3, 3)) * 0.2 + y[:, None, None, None] / 4
    return x.astype(np.float32), y


def test_make_slices_anchors_and_points(toy):
    x, y = toy
    slices = make_slices(x, y, n_lines=3, n_planes=2, line_points=7, grid=5, seed=3)
    again = make_slices(x, y, n_lines=3, n_planes=2, line_points=7, grid=5, seed=3)
    assert [s.anchors for s in slices] == [s.anchors for s in again]
    for s in slices:
        assert len(set(s.anchor_labels)) == len(s.anchors)  # distinct classes
        assert tuple(y[list(s.anchors)]) == s.anchor_labels
        if s.kind == "line":
            pts = s.points()
            assert np.allclose(pts[0], x[s.anchors[0]]) and np.allclose(pts[-1], x[s.anchors[1]])
        else:
            assert s.points().shape == (25, 1, 3, 3)
            # the anchors sit on the plane at the Plane.through coordinates
            assert np.allclose(s.geometry.to_input(s.geometry.anchors), x[list(s.anchors)], atol=1e-6)
    with pytest.raises(ValueError, match="has 2 classes"):
        make_slices(x[y < 2], y[y < 2], n_lines=1, n_planes=1)


def test_probe_and_nearest_class_mean(toy):
    x, y = toy
    features = x.reshape(60, -1).astype(np.float64)
    probe = fit_linear_probe(features, y)
    p = probe.predict_proba(features)
    assert p.shape == (60, 4) and np.allclose(p.sum(1), 1)
    entropy = probe.entropy(features)
    assert np.allclose(entropy, -(p * np.log(p)).sum(1)) and entropy.max() <= math.log(4)
    assert probe.accuracy(features, y) == 1.0
    means = class_means(features, y, 5)
    assert np.allclose(means[2], features[y == 2].mean(0)) and np.isnan(means[4]).all()
    labels, margin = nearest_class_mean(features, means)
    brute = np.argmin(((features[:, None] - means[None, :4]) ** 2).sum(-1), 1)
    assert np.array_equal(labels, brute) and (margin >= 0).all() and (margin <= 1).all()


def _reference_jacobians(encoder, points):
    """Per-point float64 Jacobians of encoder / sqrt(m) by torch.autograd.functional (the slow way)."""
    enc64 = copy.deepcopy(encoder).double()
    points = torch.as_tensor(points, dtype=torch.float64)
    m = enc64(points[:1]).shape[1]
    return [torch.autograd.functional.jacobian(
        lambda v, p=p: enc64(v.reshape(1, *p.shape)).ravel() / math.sqrt(m), p.ravel()) for p in points]


def test_measure_slices_matches_references(toy):
    x, y = toy
    encoder = make_encoder((1, 3, 3), widths=(12, 6), seed=1)
    model = EncoderWithHead(encoder, make_projector(6, (8, 4), seed=1)).eval()
    features = encoder(torch.from_numpy(x)).detach().double().numpy()
    probe = fit_linear_probe(features, y)
    means = class_means(features, y, 4)
    slices = make_slices(x, y, n_lines=1, n_planes=1, line_points=5, grid=3, seed=0)
    measures = measure_slices(model, slices, probe, means)
    assert not model.training
    for s, m in zip(slices, measures, strict=True):
        pts = s.points()
        jacobians = _reference_jacobians(encoder, pts)
        reference = [torch.log10(torch.linalg.svdvals(J)).sum().item() for J in jacobians]
        assert np.allclose(m.effective_volume, reference, atol=1e-8)
        feats = encoder(torch.from_numpy(pts).float()).detach().double().numpy()
        assert np.allclose(m.entropy, probe.entropy(feats), atol=1e-5)
        assert np.array_equal(m.ncm_label, nearest_class_mean(feats, means)[0])
        if s.kind == "plane":
            U = torch.from_numpy(s.geometry.basis)
            reference = [0.5 * math.log10(float(torch.linalg.det((J @ U).T @ (J @ U)))) for J in jacobians]
            assert np.allclose(m.plane_log_area, reference, atol=1e-8)
        else:
            assert m.plane_log_area is None
    corr = slice_correlations(measures)
    assert corr["volume_entropy"].shape == (2,) and np.isnan(corr["area_entropy"][0])


def test_encoder_with_head_names_and_seeding():
    a, b = make_encoder((1, 4, 4), seed=5), make_encoder((1, 4, 4), seed=5)
    state = torch.get_rng_state()
    make_encoder((1, 4, 4), seed=6)
    assert torch.equal(torch.get_rng_state(), state)  # the global RNG is left alone
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    with pytest.raises(ValueError, match="top_name must be 'projector' or 'head'"):
        EncoderWithHead(a, nn.Identity(), "classifier")
    with pytest.raises(ValueError, match="unknown activation 'swish'"):
        make_encoder((4,), activation="swish")


def test_volume_change_uses_the_reference_at_the_same_points():
    rng = np.random.default_rng(0)
    entropy = rng.random(30)
    trend = np.linspace(0, 50, 30)  # a volume trend the initial network already had, unrelated to entropy
    initial = SliceMeasures(trend, None, entropy, np.zeros(30), np.zeros(30), np.zeros(30))
    trained = SliceMeasures(trend + 0.1 * entropy, None, entropy, np.zeros(30), np.zeros(30), np.zeros(30))
    corr = slice_correlations([trained], [initial])
    assert corr["volume_change_entropy"][0] == pytest.approx(1.0)
    assert abs(corr["volume_entropy"][0]) < 0.5  # the trend hides it without the reference
    assert "volume_change_entropy" not in slice_correlations([trained])
    with pytest.raises(ValueError, match="reference has 2 slices but measures 1"):
        slice_correlations([trained], [initial, initial])
