"""Subsampling scores (C6 identity, hand-computed values) and subsample()."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import rankdata

import netatlas
from netatlas.dynamics import (
    METHODS,
    forgetting_events,
    per_sample_gradient_norms,
    score,
    subsample,
    unit_distances,
)


def _binary_task(seed=0, n=40):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 2, generator=g)
    y = (x[:, 0] * x[:, 1] > 0).long()
    return x, y


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "gelu", "relu"])
def test_c6_confidence_el2n_and_output_gradient_rank_alike(activation):
    """Binary sigmoid output + cross-entropy: dl/dz = p - y, so all three rankings coincide exactly."""
    x, y = _binary_task(1)
    model = netatlas.nets.mlp([2, 16, 16, 1], activation, seed=2)
    netatlas.train.fit(model, (x, y), loss="bce", epochs=30, lr=0.03)
    conf = score("confidence", model, x, y)
    el2n = score("el2n", model, x, y)
    np.testing.assert_allclose(el2n, math.sqrt(2) * conf, rtol=1e-12)
    frozen = netatlas.nets.mlp([2, 16, 16, 1], activation, seed=2)
    frozen.load_state_dict(model.state_dict())
    for name, p in frozen.named_parameters():
        p.requires_grad_(name == "4.bias")  # gradient w.r.t. the output logit's bias = p - y
    grad = per_sample_gradient_norms(frozen.double(), x.double(), y).total
    np.testing.assert_allclose(grad, conf, rtol=1e-9, atol=1e-15)
    assert np.array_equal(rankdata(conf), rankdata(el2n))


def test_two_logit_softmax_el2n_equals_sqrt2_output_error():
    x, y = _binary_task(3)
    model = netatlas.nets.mlp([2, 8, 2], "tanh", seed=0).double()
    p1 = torch.softmax(model(x.double()).detach(), 1)[:, 1].numpy()
    np.testing.assert_allclose(score("el2n", model, x, y), math.sqrt(2) * np.abs(p1 - y.numpy()), rtol=1e-6)
    np.testing.assert_allclose(score("margin", model, x, y), 1 - 2 * np.where(y.numpy() == 1, p1, 1 - p1),
                               rtol=1e-6, atol=1e-12)


def test_multiclass_values_by_hand():
    from torch import nn

    model = nn.Sequential(nn.Linear(1, 3)).double()
    with torch.no_grad():
        model[0].weight.zero_()
        model[0].bias.copy_(torch.log(torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64)))
    x, y = torch.zeros(3, 1), torch.tensor([0, 1, 2])
    p = np.array([0.5, 0.3, 0.2])
    np.testing.assert_allclose(score("confidence", model, x, y), 1 - p)
    np.testing.assert_allclose(score("margin", model, x, y), [0.3 - 0.5, 0.5 - 0.3, 0.5 - 0.2])
    expected = [np.linalg.norm(p - np.eye(3)[k]) for k in range(3)]
    np.testing.assert_allclose(score("el2n", model, x, y), expected)
    # an ensemble of the same model twice averages to the same numbers
    np.testing.assert_allclose(score("el2n", [model, model], x, y), expected)


def test_grand_is_the_gradient_norm_and_zone_definitions():
    x, y = _binary_task(4, n=25)
    model = netatlas.nets.mlp([2, 6, 2], "sigmoid", seed=0)
    np.testing.assert_allclose(score("grand", model, x, y), per_sample_gradient_norms(model, x, y).total)
    z = model[0](x).detach().double()
    s = torch.sigmoid(z)
    np.testing.assert_allclose(score("zone", model, x, y), (4 * s * (1 - s)).sum(1).numpy(), rtol=1e-6)
    relu = netatlas.nets.mlp([2, 6, 5, 2], "relu", seed=0)
    np.testing.assert_allclose(score("zone", relu, x, y), -unit_distances(relu, x).nearest())
    with pytest.raises(ValueError, match="zone='distance'"):
        score("zone", relu, x, y, zone="mass")


def test_forgetting_and_random():
    history = np.array([[1, 0, 1, 0], [0, 0, 1, 1], [1, 0, 0, 1], [0, 0, 1, 1]], bool)
    np.testing.assert_array_equal(forgetting_events(history), [2, np.inf, 1, 0])
    x, y = torch.zeros(4, 2), torch.zeros(4, dtype=torch.long)
    np.testing.assert_array_equal(score("forgetting", None, x, y, history=history), [2, np.inf, 1, 0])
    with pytest.raises(ValueError, match="pass history="):
        score("forgetting", None, x, y)
    r = score("random", None, x, y, seed=5)
    np.testing.assert_array_equal(r, score("random", None, x, y, seed=5))
    assert not np.array_equal(r, score("random", None, x, y, seed=6))


def test_score_errors():
    x, y = _binary_task()
    model = netatlas.nets.mlp([2, 4, 1], seed=0)
    with pytest.raises(ValueError, match="unknown method 'loss'; choose one of"):
        score("loss", model, x, y)
    with pytest.raises(TypeError, match="needs a model"):
        score("el2n", None, x, y)
    with pytest.raises(ValueError, match="labels must be in 0..1"):
        score("el2n", model, x, y + 2)
    assert set(METHODS) >= {"zone", "confidence", "el2n", "grand", "margin", "forgetting", "random"}


def test_subsample_degenerate_and_ties():
    assert subsample([3.0], 0.1).tolist() == [0]
    assert subsample([1.0, 2.0, 3.0], 1.0).tolist() == [0, 1, 2]
    ties = np.zeros(100)
    a, b = subsample(ties, 0.3, seed=0), subsample(ties, 0.3, seed=1)
    assert len(a) == 30 and not np.array_equal(a, b)
    assert subsample([np.inf, 1.0, -np.inf], 1 / 3, class_balanced=False).tolist() == [0]
    with pytest.raises(ValueError, match="fraction must be in"):
        subsample([1.0], 0.0)
    with pytest.raises(ValueError, match="NaN"):
        subsample([np.nan], 0.5)
    with pytest.raises(ValueError, match="3 scores but 2 labels"):
        subsample([1.0, 2.0, 3.0], 0.5, labels=[0, 1])


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.floats(-10, 10), st.integers(0, 3)), min_size=1, max_size=60),
       st.floats(0.05, 1.0), st.sampled_from(["high", "low"]))
def test_subsample_keeps_the_extremes_of_each_class(pairs, fraction, keep):
    scores = np.array([p[0] for p in pairs])
    labels = np.array([p[1] for p in pairs])
    kept = subsample(scores, fraction, labels=labels, keep=keep)
    assert np.all(np.diff(kept) > 0)
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        mine = np.intersect1d(kept, members)
        assert len(mine) == min(len(members), max(1, round(fraction * len(members))))
        rest = np.setdiff1d(members, mine)
        if len(rest):
            if keep == "high":
                assert scores[mine].min() >= scores[rest].max()
            else:
                assert scores[mine].max() <= scores[rest].min()


@pytest.mark.parametrize(("activation", "kind"), [("tanh", "mass"), ("gelu", "distance"), ("relu", "distance")])
def test_zone_score_for_each_activation(activation, kind):
    x, y = _binary_task(5, n=30)
    model = netatlas.nets.mlp([2, 6, 6, 2], activation, seed=1)
    s = score("zone", model, x, y)
    assert s.shape == (30,) and np.all(np.isfinite(s))
    if kind == "mass":  # tanh' peaks at 1: the score counts units in transition, at most 12
        assert np.all((s > 0) & (s <= 12))
    else:
        np.testing.assert_allclose(s, -unit_distances(model, x).nearest())
