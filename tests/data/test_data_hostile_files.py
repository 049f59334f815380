"""Crafted data files (issue 24): one DataFileError line for every failure, the memory budget from declared
shapes before inflating, complex values and values too large for float32 refused."""

import io
import zipfile

import numpy as np
import pytest
import torch

from netatlas._errors import DataFileError, MemoryBudgetError
from netatlas.data import load_file


def test_csv_field_over_the_csv_limit_is_one_line(tmp_path):
    path = tmp_path / "long.csv"
    path.write_text("x,label\n" + "1" * 200_000 + ",0\n")  # the csv module's limit is 131,072 characters
    with pytest.raises(DataFileError, match=r"long\.csv: is not a CSV file of numbers \(field larger than field"):
        load_file(path)


def test_truncated_npz_is_one_line(tmp_path):
    buffer = io.BytesIO()
    np.savez(buffer, x=np.zeros((50, 2)), y=np.zeros(50))
    path = tmp_path / "cut.npz"
    path.write_bytes(buffer.getvalue()[:-200])
    with pytest.raises(DataFileError, match=r"cut\.npz: is not a readable \.npz archive \(BadZipFile"):
        load_file(path)


def test_compressed_npz_is_checked_by_declared_shape(tmp_path, monkeypatch):
    path = tmp_path / "zeros.npz"
    np.savez_compressed(path, x=np.zeros((1000, 1000)), y=np.zeros(1000))  # 8 MB of float64 in a few kB
    assert path.stat().st_size < 100_000
    # held: the array (8 B per value) plus the float64 and float32 copies (12 B): 20 MB
    monkeypatch.setenv("NETATLAS_MEMORY_BUDGET", "10MB")
    with pytest.raises(MemoryBudgetError, match=r"zeros\.npz: its arrays"):
        load_file(path)
    monkeypatch.setenv("NETATLAS_MEMORY_BUDGET", "30MB")
    assert load_file(path).x.shape == (1000, 1000)


def test_compressed_pt_is_checked_by_declared_size(tmp_path, monkeypatch):
    buffer = io.BytesIO()
    torch.save({"x": torch.zeros(500, 1000), "y": torch.zeros(500)}, buffer)  # 2 MB of float32
    path = tmp_path / "zeros.pt"
    with zipfile.ZipFile(buffer) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info))
    assert path.stat().st_size < 100_000
    monkeypatch.setenv("NETATLAS_MEMORY_BUDGET", "4MB")  # the tensors, float64 and float32 copies: 8 MB
    with pytest.raises(MemoryBudgetError, match=r"zeros\.pt: its tensors"):
        load_file(path)
    monkeypatch.setenv("NETATLAS_MEMORY_BUDGET", "20MB")
    assert load_file(path).x.shape == (500, 1000)


def test_meta_tensors_are_refused(tmp_path):
    torch.save({"x": torch.empty(4, 2, device="meta"), "y": torch.empty(4, device="meta")}, tmp_path / "meta.pt")
    with pytest.raises(DataFileError, match=r"meta\.pt: holds meta tensors"):
        load_file(tmp_path / "meta.pt")


def test_complex_data_is_refused(tmp_path):
    np.savez(tmp_path / "c.npz", x=np.ones((4, 2)) * (1 + 2j), y=np.arange(4))
    with pytest.raises(DataFileError, match=r"c\.npz: array 'x\.npy' is complex \(complex128\)"):
        load_file(tmp_path / "c.npz")
    torch.save((torch.ones(4, 2, dtype=torch.complex64), torch.arange(4)), tmp_path / "c.pt")
    with pytest.raises(DataFileError, match=r"c\.pt: training inputs are complex \(complex64\)"):
        load_file(tmp_path / "c.pt")


def test_values_too_large_for_float32_are_refused_by_that_name(tmp_path):
    x = np.ones((4, 2))
    x[2, 1] = 1e300  # finite in the file, infinite as the Dataset's float32
    np.savez(tmp_path / "big.npz", x=x, y=np.arange(4))
    with pytest.raises(DataFileError, match=r"1 training samples have values too large for float32 .*sample 2"):
        load_file(tmp_path / "big.npz")
    np.savez(tmp_path / "big_labels.npz", x=np.ones((4, 2)), y=np.array([0.5, 1e300, 2.5, 3.5]))
    with pytest.raises(DataFileError, match=r"values too large for float32 .*sample 1"):
        load_file(tmp_path / "big_labels.npz")


def test_data_file_errors_are_still_value_errors(tmp_path):
    with pytest.raises(ValueError, match="no such file"):
        load_file(tmp_path / "missing.csv")
