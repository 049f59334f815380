"""Tests for netatlas.train.fit."""

import numpy as np
import pytest
import torch
from torch import nn

import netatlas.data as nd
from netatlas.nets import mlp
from netatlas.train import History, fit


@pytest.fixture(autouse=True)
def _one_torch_thread():
    # Tiny models: on a shared 2-core machine, OpenMP hand-offs between threads dominate (40 s vs 9 s).
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _params(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_loss_decreases_on_moons_and_accuracy_is_high():
    data = nd.moons(n=200, seed=0)
    model = mlp([2, 32, 32, 2], seed=0)
    history = fit(model, data, epochs=200, lr=0.02)
    assert isinstance(history, History)
    assert history.loss.shape == (200,) and history.accuracy.shape == (200,)
    assert history.final_loss < 0.5 * history.loss[0]
    assert history.loss[-10:].mean() < history.loss[:10].mean()
    assert history.final_accuracy > 0.95
    assert history.test_loss.shape == (200,) and history.test_accuracy[-1] > 0.9  # Dataset's test split
    assert history.n_steps == 200 and not history.stopped_early


def test_two_runs_with_the_same_seed_give_identical_parameters():
    data = nd.spirals(n=100, seed=1)
    results = []
    for _ in range(2):
        model = mlp([2, 16, 2], seed=3)
        history = fit(model, data, epochs=5, batch_size=16, seed=7, momentum=0.9, optimizer="sgd", lr=0.1)
        results.append((_params(model), history.step_loss))
    (a, la), (b, lb) = results
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert np.array_equal(la, lb)
    # another shuffling seed changes the trajectory
    model = mlp([2, 16, 2], seed=3)
    fit(model, data, epochs=5, batch_size=16, seed=8, momentum=0.9, optimizer="sgd", lr=0.1)
    assert not all(torch.equal(a[k], v) for k, v in _params(model).items())


def test_fit_does_not_touch_the_global_torch_rng():
    model, data = mlp([2, 4, 2], seed=0), nd.moons(n=20)
    state = torch.get_rng_state()
    fit(model, data, epochs=3, batch_size=5)
    assert torch.equal(torch.get_rng_state(), state)


def test_snapshots_equal_the_parameters_at_their_steps():
    data = nd.xor(n=40, seed=0)
    model = mlp([2, 8, 2], seed=0)
    initial = _params(model)
    history = fit(model, data, epochs=4, batch_size=10, snapshot_steps=[0, 3, 16], optimizer="sgd", lr=0.1)
    assert history.snapshot_steps == [0, 3, 16]
    assert all(torch.equal(history.snapshot(0)[k], initial[k]) for k in initial)
    final = _params(model)
    assert all(torch.equal(history.snapshot(16)[k], final[k]) for k in final)
    # replay: 3 updates from the start, same batches, reach snapshot 3
    replay = mlp([2, 8, 2], seed=0)
    opt = torch.optim.SGD(replay.parameters(), lr=0.1)
    order = torch.randperm(40, generator=torch.Generator().manual_seed(0))
    for i in range(3):
        index = order[10 * i:10 * (i + 1)]
        opt.zero_grad()
        nn.functional.cross_entropy(replay(data.x[index]), data.y[index]).backward()
        opt.step()
    snap = history.snapshot(3)
    assert all(torch.allclose(snap[k], v, rtol=0, atol=1e-7) for k, v in replay.state_dict().items())
    # snapshots are copies: later training does not change them
    assert not torch.equal(history.snapshot(3)["0.weight"], final["0.weight"])
    with pytest.raises(KeyError, match="no snapshot at step 5"):
        history.snapshot(5)


def test_snapshot_every_epoch_and_warning_for_late_steps():
    history = fit(mlp([2, 4, 2]), nd.moons(n=30), epochs=3, batch_size=10, snapshot_steps="epoch")
    assert history.snapshot_steps == [0, 3, 6, 9]
    with pytest.warns(UserWarning, match=r"snapshot_steps \[100\] are after the last step \(3\)"):
        fit(mlp([2, 4, 2]), nd.moons(n=30), epochs=3, snapshot_steps=[1, 100])


def test_callback_stops_early_and_sees_info():
    seen = []

    def stop_at_three(info):
        seen.append((info.epoch, info.step, info.loss, info.model))
        return info.epoch == 3

    model = mlp([2, 4, 2])
    history = fit(model, nd.moons(n=30), epochs=50, callbacks=stop_at_three)
    assert history.n_epochs == 3 and history.stopped_early and len(history.loss) == 3
    assert [s[:2] for s in seen] == [(1, 1), (2, 2), (3, 3)] and seen[0][3] is model
    assert seen[0][2] == pytest.approx(history.loss[0])


def test_losses_bce_mse_and_callable_and_tuple_data():
    x = nd.sinusoid(n=100, seed=0)
    model = mlp([2, 16, 1], seed=0)
    history = fit(model, (x.x.numpy(), x.y.numpy()), loss="bce", epochs=30)
    assert history.final_accuracy is not None and history.test_loss is None
    assert history.final_loss < history.loss[0]
    reg = nd.regression_1d(n=20, fn="abs")
    model = mlp([1, 16, 1], seed=0)
    history = fit(model, reg, loss="mse", epochs=100)
    assert history.accuracy is None and history.final_accuracy is None and history.final_loss < history.loss[0]
    model = mlp([2, 8, 3], seed=0)
    blobs = nd.blobs(n=30)
    history = fit(model, blobs, loss="mse", epochs=20)  # one-hot targets
    assert history.accuracy is not None
    manual = fit(mlp([2, 8, 3], seed=0), blobs, epochs=20,
                 loss=lambda out, y: nn.functional.mse_loss(out, nn.functional.one_hot(y, 3).float()))
    assert manual.final_loss == pytest.approx(history.final_loss, rel=1e-6)


def test_model_dtype_is_kept_and_mode_restored():
    model = mlp([2, 8, 2], seed=0).double().eval()
    history = fit(model, nd.moons(n=20), epochs=2)
    assert next(model.parameters()).dtype == torch.float64 and not model.training
    assert history.settings["dtype"] == "float64"


def test_optimizer_class_and_factory():
    data = nd.moons(n=20)
    fit(mlp([2, 4, 2]), data, optimizer=torch.optim.RMSprop, epochs=2, lr=1e-3)
    history = fit(mlp([2, 4, 2]), data, optimizer=lambda p: torch.optim.SGD(p, lr=0.01), epochs=2)
    assert history.settings["optimizer"] == "SGD"


def test_progress_bar_only_when_asked(capsys):
    fit(mlp([2, 4, 2]), nd.moons(n=20), epochs=2)
    assert capsys.readouterr().err == ""  # stderr is not a terminal under pytest
    fit(mlp([2, 4, 2]), nd.moons(n=20), epochs=2, progress=True)
    assert "fit" in capsys.readouterr().err


def test_history_to_dict_is_json_safe():
    import json

    history = fit(mlp([2, 4, 2]), nd.moons(n=20), epochs=2, snapshot_steps="epoch")
    out = json.loads(json.dumps(history.to_dict()))
    assert out["snapshot_steps"] == [0, 1, 2] and len(out["loss"]) == 2 and out["settings"]["epochs"] == 2


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(loss="hinge"), ValueError, r"unknown loss 'hinge'; choose one of 'cross_entropy', 'bce', 'mse'"),
        (dict(optimizer="lbfgs"), ValueError, r"unknown optimizer 'lbfgs'; choose one of 'adam', 'adamw'"),
        (dict(lr=0), ValueError, r"lr must be > 0.0, got 0"),
        (dict(epochs=-1), ValueError, r"epochs must be >= 0, got -1"),
        (dict(batch_size=0), ValueError, r"batch_size must be >= 1, got 0"),
        (dict(snapshot_steps="step"), ValueError, r"snapshot_steps must be an iterable of ints, 'epoch'"),
        (dict(snapshot_steps=[-1]), ValueError, r"snapshot_steps must be non-negative ints, got -1"),
        (dict(loss="bce"), ValueError, r"'bce' needs one logit per example"),
        (dict(x_test=np.zeros((3, 2))), ValueError, r"give both x_test and y_test"),
    ],
)
def test_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        fit(mlp([2, 4, 2]), nd.moons(n=10), **{"epochs": 1, **kwargs})


def test_bad_data_and_models():
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        fit(lambda x: x, nd.moons(n=10))
    with pytest.raises(TypeError, match=r"data must be a netatlas.data.Dataset or an \(x, y\) pair"):
        fit(mlp([2, 2]), torch.zeros(3, 2))
    with pytest.raises(ValueError, match="has 3 inputs but 2 targets"):
        fit(mlp([2, 2]), (torch.zeros(3, 2), torch.zeros(2, dtype=torch.long)))
    with pytest.raises(ValueError, match=r"labels must be in 0..1 .* got labels in 0..4"):
        fit(mlp([2, 2]), (torch.zeros(5, 2), torch.arange(5)))
    with pytest.raises(ValueError, match=r"model fails on inputs of shape \(3,\)"):
        fit(mlp([2, 2]), (torch.zeros(5, 3), torch.zeros(5, dtype=torch.long)))
    with pytest.raises(ValueError, match="no trainable parameters"):
        fit(nn.ReLU(), nd.moons(n=10))


def test_explicit_test_data_and_eval_every():
    data = nd.moons(n=40, seed=0)
    other = nd.moons(n=40, seed=1)
    history = fit(mlp([2, 8, 2]), data, epochs=5, eval_every=2, x_test=other.x.numpy(), y_test=other.y)
    assert history.settings["n_test"] == 40
    assert np.isnan(history.test_loss[[0, 2]]).all() and np.isfinite(history.test_loss[[1, 3, 4]]).all()
    # the reported test loss is the loss of the trained model on the given test data
    model = mlp([2, 8, 2])
    history = fit(model, data, epochs=3, x_test=other.x, y_test=other.y)
    with torch.no_grad():
        expected = nn.functional.cross_entropy(model(other.x), other.y).item()
    assert history.test_loss[-1] == pytest.approx(expected, rel=1e-6)


def test_zero_epochs_changes_nothing():
    model = mlp([2, 4, 2], seed=1)
    before = _params(model)
    history = fit(model, nd.moons(n=10), epochs=0, snapshot_steps="epoch")
    assert history.n_steps == 0 and history.loss.shape == (0,) and history.snapshot_steps == [0]
    assert all(torch.equal(before[k], v) for k, v in _params(model).items())
    assert np.isfinite(history.final_loss)


def test_full_batch_epoch_loss_is_the_loss_before_the_update():
    data = nd.circles(n=30, seed=0)
    model = mlp([2, 8, 2], seed=0)
    with torch.no_grad():
        initial = nn.functional.cross_entropy(model(data.x), data.y).item()
    history = fit(model, data, epochs=2)
    assert history.loss[0] == pytest.approx(initial, rel=1e-6) and history.step_loss.shape == (2,)


def test_all_is_complete():
    import netatlas.train as train

    public = {name for name in dir(train) if name.isidentifier() and not name.startswith("_")}
    assert set(train.__all__) == public
