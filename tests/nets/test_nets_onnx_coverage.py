"""The public ONNX test models (``benchmarks/onnx_coverage.py``) on a sample: every model is imported
correctly or refused by name -- none mis-imported, none crashing -- and the harness does catch wrong numbers."""

import shutil
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

sys.path.insert(0, str(Path(__file__).parents[2] / "benchmarks"))
import onnx_coverage  # noqa: E402

SAMPLE = ("pytorch-operator", "simple", "pytorch-converted")


@pytest.mark.slow
def test_sample_has_no_mis_import_and_no_crash():
    outcomes = onnx_coverage.run(SAMPLE)
    assert len(outcomes) > 100
    bad = [o for o in outcomes if o.status in ("MIS-IMPORTED", "crashed")]
    assert not bad, onnx_coverage.report(bad)
    status = {o.name: o.status for o in outcomes}
    # models issue 28 made importable: softsign as exported, a head-only file, a reshape-only file, Shrink
    for name in ("pytorch-converted/test_Softsign", "pytorch-converted/test_Softmax",
                 "pytorch-operator/test_operator_flatten", "simple/test_shrink"):
        assert status[name] == "correct", name
    refused = [o for o in outcomes if o.status == "refused"]
    assert all(o.reason for o in refused)


def test_wrong_stored_numbers_are_reported_as_mis_imports(tmp_path):
    source = onnx_coverage.data_root() / "pytorch-converted" / "test_Linear"
    case = tmp_path / "test_Linear"
    shutil.copytree(source, case)
    assert onnx_coverage.classify("test_Linear", case).status == "correct"
    stored = case / "test_data_set_0" / "output_0.pb"
    y = numpy_helper.to_array(onnx.load_tensor(str(stored)))
    y = y + np.float32(1e-3) * (1 + np.abs(y).max())  # a small but real error, above float32 round-off
    onnx.save_tensor(numpy_helper.from_array(y.astype(np.float32)), str(stored))
    outcome = onnx_coverage.classify("test_Linear", case)
    assert outcome.status == "MIS-IMPORTED" and outcome.error > outcome.bound
