"""One memory budget with one meaning: ``netatlas._memory.parse_bytes`` reads plain bytes, KB/MB/GB/TB as powers
of 10 and KiB/MiB/GiB/TiB as powers of 2, for ``NETATLAS_MEMORY_BUDGET``, ``partition(memory_budget=...)`` and
``--memory-budget``; the regions "auto" budget is the variable's."""

import pytest

import netatlas
from netatlas._memory import memory_budget, parse_bytes
from netatlas.nets import mlp
from netatlas.regions import partition


@pytest.mark.parametrize(("text", "expected"), [
    ("1", 1), ("500000000", 500_000_000), ("2e9", 2 * 10**9), (" 7 ", 7), ("12B", 12),
    ("1KB", 10**3), ("1MB", 10**6), ("16GB", 16 * 10**9), ("2TB", 2 * 10**12), ("1.5gb", 1_500_000_000),
    ("1KiB", 2**10), ("512 MiB", 512 * 2**20), ("1.5GiB", 3 * 2**29), ("2TiB", 2 * 2**40), ("4gib", 4 * 2**30),
])
def test_sizes_have_one_meaning(text, expected):
    assert parse_bytes(text) == expected


def test_ints_are_bytes():
    import numpy as np

    assert parse_bytes(1) == 1 and parse_bytes(np.int64(10**12)) == 10**12


@pytest.mark.parametrize("bad", ["16G", "1k", "lots", "", "GB", "-5", "1e400", "inf", "nan", "1.2.3", "5 GiBs"])
def test_strings_that_are_not_sizes_name_the_accepted_forms(bad):
    with pytest.raises(ValueError, match=r"--memory-budget: .* is not a size; use bytes .*KB/MB/GB/TB \(powers "
                                         r"of 10\) or KiB/MiB/GiB/TiB \(powers of 2\)"):
        parse_bytes(bad, "--memory-budget")


@pytest.mark.parametrize("bad", [0, -1, "0", "0.5"])
def test_less_than_a_byte_is_refused(bad):
    with pytest.raises(ValueError, match="less than one byte|not a size"):
        parse_bytes(bad)


@pytest.mark.parametrize("bad", [True, 2.5e9, None, [1]])
def test_other_kinds_are_refused(bad):
    with pytest.raises(ValueError, match="expected a size"):
        parse_bytes(bad)


def test_the_variable_reads_decimal_and_binary_units(monkeypatch):
    monkeypatch.setenv("NETATLAS_MEMORY_BUDGET", "2GB")
    assert memory_budget() == 2 * 10**9
    monkeypatch.setenv("NETATLAS_MEMORY_BUDGET", "2GiB")
    assert memory_budget() == 2 * 2**30
    monkeypatch.setenv("NETATLAS_MEMORY_BUDGET", "1")
    assert memory_budget() == 1
    monkeypatch.setenv("NETATLAS_MEMORY_BUDGET", "16G")
    with pytest.raises(netatlas.MemoryBudgetError, match=r"'16G' is not a size; use bytes .*powers of 2"):
        memory_budget()


def test_default_is_half_the_physical_memory(monkeypatch):
    import os

    monkeypatch.delenv("NETATLAS_MEMORY_BUDGET", raising=False)
    assert memory_budget() == os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2


# -- the regions budget is the same budget --------------------------------------------------------------
def test_regions_auto_budget_honours_the_variable(monkeypatch):
    net = mlp([2, 8, 8, 1], seed=0)
    n = partition(net).num_regions  # no variable: half the memory, no limit reached
    monkeypatch.setenv("NETATLAS_MEMORY_BUDGET", "1000")  # far less than n regions take
    with pytest.raises(netatlas.RegionLimitError, match="memory budget"):
        partition(net)
    assert partition(net, memory_budget=None).num_regions == n  # an explicit None still means no limit
    monkeypatch.setenv("NETATLAS_MEMORY_BUDGET", "1GB")
    assert partition(net).num_regions == n


def test_partition_budget_takes_bytes_and_both_unit_kinds():
    net = mlp([2, 8, 8, 1], seed=0)
    with pytest.raises(netatlas.RegionLimitError):
        partition(net, memory_budget="1")  # one byte: parsed, then over the limit
    n = partition(net).num_regions
    assert partition(net, memory_budget="500000000").num_regions == n
    assert partition(net, memory_budget="1GiB").num_regions == n
    with pytest.raises(ValueError, match="partition: memory_budget: 'lots' is not a size"):
        partition(net, memory_budget="lots")


def test_cli_memory_budget_takes_bytes(tmp_path, capsys):
    from netatlas.cli import main

    path = tmp_path / "net.pt2"
    netatlas.nets.save(mlp([2, 8, 8, 2], seed=0), path, input_shape=(2,))
    with pytest.raises(SystemExit) as exc:  # one byte is accepted as a size, then over the regions' memory
        main(["regions", str(path), "--memory-budget", "1", "--out", str(tmp_path / "a")])
    assert exc.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("RegionLimitError:"), err
    try:
        main(["regions", str(path), "--memory-budget", "500000000", "--out", str(tmp_path / "b")])
    except SystemExit as exit_:
        assert exit_.code in (0, None)
    assert (tmp_path / "b" / "summary.json").exists()
