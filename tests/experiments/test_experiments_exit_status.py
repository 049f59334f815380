"""reproduce exits 1 when configs failed or nothing was measured (the reports are still written)."""

import warnings

import pytest

from netatlas import RunFailedError
from netatlas.experiments._claims import Claim, Reproduction
from netatlas.experiments._cli import _exit_status
from netatlas.sweep import grid, run


def _half_fails(config):
    if config["seed"] == 1:
        raise RuntimeError("diverged at seed 1")
    return {"value": config["seed"]}


def _reproduction(sweep_dir, holds):
    claims = tuple(Claim(f"C{i}", "s", "e", "m", h) for i, h in enumerate(holds))
    return Reproduction("sahs2020", "t", claims, {"sweep_dir": str(sweep_dir)}, [])


def test_failed_configs_and_nothing_measured_raise_with_counts_and_cause(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run(_half_fails, grid(seed=[0, 1, 2]), tmp_path / "bad")
    run(_half_fails, grid(seed=[0, 2]), tmp_path / "good")
    _exit_status([_reproduction(tmp_path / "good", [True, False, None])])  # all ran, something measured
    with pytest.raises(RunFailedError, match=r"sahs2020: 1 of 3 configs failed, 1 of 2 claims measured; "
                                             r"first: RuntimeError: diverged at seed 1"):
        _exit_status([_reproduction(tmp_path / "bad", [True, None])])
    with pytest.raises(RunFailedError, match=r"0 of 2 configs failed, 0 of 2 claims measured"):
        _exit_status([_reproduction(tmp_path / "good", [None, None])])
