"""ComplexityTracker: records equal direct counts on the same snapshots, steps, evaluation, the region
limit."""

import numpy as np
import pytest
import torch

import netatlas
from netatlas.dynamics import ComplexityTracker
from netatlas.regions import exact_counts, hyperplanes_crossing
from netatlas.train import fit


@pytest.fixture(autouse=True)
def _one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def test_tracker_records_equal_direct_counts_on_snapshots():
    data = netatlas.data.moons(n=96, seed=1)
    model = netatlas.nets.mlp([2, 16, 16, 2], seed=2)
    pts = {"train": data.x[:10], "test": data.x_test[:6]}
    tracker = ComplexityTracker(pts, 0.15, steps=[0, 3, 9, 30], n_planes=2, seed=4, train=(data.x, data.y),
                                test=(data.x_test, data.y_test))
    tracker.record(model, 0)
    history = fit(model, data, epochs=200, lr=0.03, batch_size=32, callbacks=[tracker], snapshot_steps=[0, 3, 9, 30])
    trace = tracker.result()
    # 3 batches per epoch: steps 3, 9 and 30 are epoch ends; training stops after the last
    assert trace.steps.tolist() == [0, 3, 9, 30] == history.snapshot_steps
    assert history.stopped_early and history.n_steps == 30
    for k, (_, state) in enumerate(history.snapshots):
        snap = netatlas.nets.mlp([2, 16, 16, 2], seed=2)
        snap.load_state_dict(state)
        net = netatlas.nets.from_torch(snap)
        for name, x in pts.items():
            regions, crossing = exact_counts(net, x.numpy(), 0.15, directions=tracker.directions[name])
            sampled = hyperplanes_crossing(net, x.numpy(), 0.15, directions=tracker.directions[name],
                                           method="sampled").sum(-1)
            assert np.array_equal(trace.exact[name][k], regions)
            assert np.array_equal(trace.exact_neurons[name][k], crossing.sum(-1))
            assert np.array_equal(trace.sampled[name][k], sampled)
        with torch.no_grad():
            out = snap(data.x)
        assert trace.train_accuracy[k] == pytest.approx(float((out.argmax(1) == data.y).double().mean()))
        assert trace.train_loss[k] == pytest.approx(float(torch.nn.functional.cross_entropy(out, data.y)), rel=1e-6)
    assert np.all(trace.sampled["train"] <= trace.exact_neurons["train"])


def test_tracker_bad_input():
    with pytest.raises(ValueError, match="non-empty dict"):
        ComplexityTracker({}, 0.1, steps=[0])
    with pytest.raises(ValueError, match="steps must be non-negative"):
        ComplexityTracker({"a": np.zeros((2, 2))}, 0.1, steps=[-3])
    with pytest.raises(ValueError, match="nothing recorded yet"):
        ComplexityTracker({"a": np.zeros((2, 2))}, 0.1, steps=[0]).result()


def test_max_regions_is_honoured():
    from netatlas.regions import RegionLimitError, estimate_discs

    data = netatlas.data.moons(n=64, seed=0)
    model = netatlas.nets.mlp([2, 16, 16, 2], seed=0)
    x = data.x[:6]
    tracker = ComplexityTracker({"train": x}, 2.0, steps=[0], seed=3)
    est = estimate_discs(netatlas.nets.from_torch(model), x.numpy(), 2.0, directions=tracker.directions["train"])
    # under the limit: the same counts as without one
    tracker.record(model, 0)
    free = exact_counts(netatlas.nets.from_torch(model), x.numpy(), 2.0, directions=tracker.directions["train"],
                        max_regions=None)[0]
    assert np.array_equal(tracker.result().exact["train"][0], free)
    small = ComplexityTracker({"train": x}, 2.0, steps=[0], seed=3, max_regions=int(est.max()) - 1)
    with pytest.raises(RegionLimitError, match=f"above max_regions={int(est.max()) - 1:,}"):
        small.record(model, 0)
