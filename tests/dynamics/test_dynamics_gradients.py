"""Per-sample gradient norms against a per-sample autograd loop; concentration; the fit callbacks."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import netatlas
from netatlas.dynamics import (
    CorrectnessRecorder,
    GradientTracker,
    gradient_concentration,
    per_sample_gradient_norms,
)
from netatlas.train import per_sample_loss


def _loop_reference(model, x, y, loss):
    """One backward pass per sample: the slow, obviously-right reference."""
    total, layers = [], []
    names = list(dict.fromkeys(n.rsplit(".", 1)[0] for n, _ in model.named_parameters()))
    for xi, yi in zip(x, y, strict=True):
        model.zero_grad()
        per_sample_loss(model(xi[None]), yi[None], loss)[0].backward()
        sq = dict.fromkeys(names, 0.0)
        for n, p in model.named_parameters():
            sq[n.rsplit(".", 1)[0]] += float(p.grad.pow(2).sum())
        layers.append([sq[n] ** 0.5 for n in names])
        total.append(sum(sq.values()) ** 0.5)
    return np.array(total), np.array(layers)


@pytest.mark.parametrize(("activation", "widths", "loss"), [
    ("relu", [2, 7, 5, 3], "cross_entropy"),
    ("sigmoid", [2, 6, 1], "cross_entropy"),
    ("tanh", [3, 6, 1], "bce"),
    ("gelu", [2, 5, 4], "mse"),
])
@pytest.mark.parametrize("method", ["vmap", "closed_form"])
def test_gradient_norms_match_per_sample_loop(activation, widths, loss, method):
    model = netatlas.nets.mlp(widths, activation, seed=1).double()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(23, widths[0], generator=g, dtype=torch.float64)
    y = torch.randint(0, max(widths[-1], 2), (23,), generator=g)
    norms = per_sample_gradient_norms(model, x, y, loss=loss, chunk_size=5, method=method)
    assert all(p.grad is None for p in model.parameters())  # nothing accumulated into the model
    total, layers = _loop_reference(model, x, y, loss)
    np.testing.assert_allclose(norms.total, total, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(norms.per_layer, layers, rtol=1e-10, atol=1e-12)
    assert norms.layer_names == tuple(str(i) for i in range(0, 2 * (len(widths) - 1), 2))


def test_closed_form_refuses_models_it_does_not_cover():
    model = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.BatchNorm1d(3).eval(), torch.nn.Linear(3, 2))
    with pytest.raises(ValueError, match="method='closed_form' needs an nn.Sequential"):
        per_sample_gradient_norms(model, torch.zeros(4, 2), torch.zeros(4, dtype=torch.long), method="closed_form")
    auto = per_sample_gradient_norms(model, torch.randn(4, 2), torch.tensor([0, 1, 1, 0]))  # falls back to vmap
    assert auto.total.shape == (4,)


def test_gradient_norms_leave_model_unchanged_and_respect_frozen_parameters():
    model = netatlas.nets.mlp([2, 4, 1], "sigmoid", seed=0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    for name, p in model.named_parameters():
        p.requires_grad_(name == "2.bias")
    x = torch.randn(9, 2, generator=torch.Generator().manual_seed(0))
    y = torch.tensor([0, 1, 1, 0, 1, 0, 0, 1, 1])
    norms = per_sample_gradient_norms(model, x, y)
    # d BCE / d b_out = sigmoid(f) - y exactly
    p = torch.sigmoid(model(x)[:, 0]).detach().numpy()
    np.testing.assert_allclose(norms.total, np.abs(p - y.numpy()), rtol=1e-5, atol=1e-7)
    assert norms.layer_names == ("2",)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_gradient_norms_errors():
    model = netatlas.nets.mlp([2, 3, 2], seed=0)
    with pytest.raises(ValueError, match="unknown loss 'hinge'"):
        per_sample_gradient_norms(model, torch.zeros(2, 2), torch.zeros(2, dtype=torch.long), loss="hinge")
    with pytest.raises(TypeError, match="torch.nn.Module"):
        per_sample_gradient_norms("model", torch.zeros(2, 2), torch.zeros(2))
    with pytest.raises(ValueError, match="3 samples but y has 2"):
        per_sample_gradient_norms(model, torch.zeros(3, 2), torch.zeros(2, dtype=torch.long))


def test_concentration_degenerate_cases():
    assert gradient_concentration([5.0]) == 1.0
    assert gradient_concentration([1.0] * 10, 0.9) == 0.9
    assert gradient_concentration([1.0, 0, 0, 0]) == 0.25
    assert np.isnan(gradient_concentration([0.0, 0.0]))
    with pytest.raises(ValueError, match="mass must be in"):
        gradient_concentration([1.0], 0.0)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0, 1e3), min_size=1, max_size=40), st.floats(0.05, 1.0))
def test_concentration_is_the_smallest_sufficient_set(norms, mass):
    norms = np.array(norms)
    frac = gradient_concentration(norms, mass)
    if norms.sum() == 0:
        assert np.isnan(frac)
        return
    k = round(frac * len(norms))
    top = np.sort(norms)[::-1]
    assert top[:k].sum() >= mass * norms.sum() * (1 - 1e-9)
    assert top[:k - 1].sum() < mass * norms.sum() * (1 + 1e-9) or k == 1


def test_tracker_and_recorder_follow_fit():
    from netatlas.train import fit

    data = netatlas.data.moons(n=48, seed=1)
    model = netatlas.nets.mlp([2, 8, 2], "tanh", seed=0)
    tracker = GradientTracker(data.x, data.y, every=2, keep_norms=True)
    recorder = CorrectnessRecorder(data.x, data.y)
    fit(model, data, epochs=6, lr=0.05, callbacks=[tracker, recorder])
    trace = tracker.result()
    assert trace.epochs.tolist() == [2, 4, 6]
    final = per_sample_gradient_norms(model, data.x, data.y)
    np.testing.assert_allclose(trace.norms[-1], final.total, rtol=1e-6)
    assert trace.concentration[-1] == gradient_concentration(final.total)
    assert recorder.history.shape == (6, 48)
    logits = model(data.x).detach()
    np.testing.assert_array_equal(recorder.history[-1], (logits.argmax(1) == data.y).numpy())
