"""One loss registry: each name means one loss, per sample and averaged, in `fit` and in `dynamics`."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import netatlas
from netatlas.train import LOSSES, fit, mean_loss, per_sample_loss


def _batch(seed, n, n_out, loss):
    g = torch.Generator().manual_seed(seed)
    output = torch.randn(n, n_out, generator=g, dtype=torch.float64) * 3
    classes = 2 if loss == "bce" or n_out == 1 else n_out
    return output, torch.randint(0, classes, (n,), generator=g)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(1, 17), n_out=st.integers(1, 5), loss=st.sampled_from(LOSSES))
def test_batch_loss_is_the_mean_of_the_per_sample_losses(seed, n, n_out, loss):
    if loss == "bce":
        n_out = 1
    output, y = _batch(seed, n, n_out, loss)
    per = per_sample_loss(output, y, loss)
    assert per.shape == (n,)
    # float64 round-off of a mean of n terms of size ~ |per|
    tol = 1e-13 * (1 + float(per.abs().max())) * n
    assert abs(float(mean_loss(output, y, loss)) - float(per.mean())) <= tol


def test_one_logit_cross_entropy_is_binary_cross_entropy():
    output, y = _batch(0, 9, 1, "bce")
    torch.testing.assert_close(per_sample_loss(output, y, "cross_entropy"), per_sample_loss(output, y, "bce"))
    manual = -(y * torch.nn.functional.logsigmoid(output[:, 0]) + (1 - y) * torch.nn.functional.logsigmoid(
        -output[:, 0]))
    torch.testing.assert_close(per_sample_loss(output, y, "bce"), manual)


def test_mse_averages_over_outputs():
    output = torch.tensor([[1.0, 2.0, 0.0], [0.0, 0.0, 0.0]], dtype=torch.float64)
    y = torch.tensor([1, 2])
    # one-hot targets [0, 1, 0] and [0, 0, 1]: (1 + 1 + 0) / 3 and (0 + 0 + 1) / 3
    torch.testing.assert_close(per_sample_loss(output, y, "mse"), torch.tensor([2 / 3, 1 / 3], dtype=torch.float64))


def test_fit_trains_one_logit_cross_entropy_as_bce():
    data = netatlas.data.moons(n=64, seed=0)
    runs = []
    for loss in ("cross_entropy", "bce"):
        model = netatlas.nets.mlp([2, 8, 1], "tanh", seed=0)
        runs.append(fit(model, data, loss=loss, epochs=3, seed=0).loss)
    assert runs[0].tolist() == runs[1].tolist()


def test_fit_loss_is_the_mean_per_sample_loss_dynamics_differentiates():
    data = netatlas.data.blobs(n=60, n_classes=3, seed=0)
    model = netatlas.nets.mlp([2, 6, 3], "tanh", seed=0)
    history = fit(model, data, loss="mse", epochs=2, seed=0)
    dtype = next(model.parameters()).dtype
    with torch.no_grad():
        per = per_sample_loss(model.eval()(data.x.to(dtype)), data.y, "mse")
    # float32 forward pass and mean over 45 samples: relative round-off ~ 1e-6
    assert history.final_loss == pytest.approx(float(per.mean()), rel=1e-5)


def test_unknown_loss_is_one_line():
    with pytest.raises(ValueError, match="unknown loss 'hinge'; choose one of cross_entropy, bce, mse"):
        per_sample_loss(torch.zeros(2, 2), torch.tensor([0, 1]), "hinge")
