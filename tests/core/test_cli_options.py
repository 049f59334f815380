"""Options are checked before any work starts: out-of-range numbers, unknown choices, non-finite sizes and
--quick conflicts fail at once with one line (``ValueError: ...``) and no run directory, and exit 2 like every
other usage error (an unparsable value or an unknown option)."""

import pytest

import netatlas
from cli_runner import run_cli as _run


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    path = tmp_path_factory.mktemp("m") / "m.pt2"
    netatlas.nets.save(netatlas.nets.mlp([2, 4, 1], seed=0), path, input_shape=(2,))
    return str(path)


CASES = {
    "color-by": (["regions", "{model}", "--color-by", "bogus"], "--color-by must be one of pattern, class"),
    "plane-inf": (["regions", "{model}", "--plane", "square:inf"], "finite SIZE > 0"),
    "plane-nan": (["regions", "{model}", "--plane", "square:nan"], "finite SIZE > 0"),
    "plane-negative": (["regions", "{model}", "--plane", "square:-1"], "finite SIZE > 0"),
    "toy-threads-0": (["magnify", "toy", "--threads", "0"], "--threads must be an integer >= 1; got 0"),
    "toy-threads-neg": (["magnify", "toy", "--threads", "-1"], "--threads must be an integer >= 1; got -1"),
    "toy-n-grid": (["magnify", "toy", "--n-grid", "0"], "--n-grid must be an integer >= 1; got 0"),
    "toy-quick-seeds": (["magnify", "toy", "--quick", "--seeds", "5"], "--quick sets its own --seeds"),
    "images-width": (["magnify", "images", "--width", "0"], "--width must be an integer >= 1"),
    "lowrank-n-samples": (["lowrank", "validate", "--n-samples", "0"], "n_samples must be >= 1, got 0"),
    "scales-negative": (["splines", "regimes", "--scales", "-1"], "--scales must list finite numbers > 0"),
    "scales-inf": (["splines", "regimes", "--scales", "1,inf"], "--scales must list finite numbers > 0"),
    "widths-fraction": (["splines", "regimes", "--widths", "2.5"], "--widths must list integers > 0"),
    "quick-scales": (["splines", "regimes", "--quick", "--scales", "1"],
                     "--quick sets its own --scales; drop --quick or drop --scales"),
    "quick-many": (["splines", "regimes", "--quick", "--widths", "4", "--max-steps", "10"],
                   "--quick sets its own --widths, --max-steps"),
    "reproduce-seeds": (["reproduce", "sahs2020", "--seeds", "-1", "--quick"], "--seeds must be integers >= 0"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_options_fail_at_once_in_one_line(tmp_path, capsys, model, case):
    argv, message = CASES[case]
    out = tmp_path / "run"
    code, _, err = _run([a.format(model=model) for a in argv] + ["--out", str(out)], capsys)
    assert code == 2 and err.startswith("ValueError: ") and message in err, err
    assert len(err.strip().splitlines()) == 1
    assert not out.exists()  # nothing was started


def test_dynamics_threads_are_checked_before_training(tmp_path, capsys):
    code, _, err = _run(["dynamics", "scale", "--quick", "--threads", "0", "--out", str(tmp_path / "run")], capsys)
    assert code == 2 and "threads must be an integer >= 1" in err and len(err.strip().splitlines()) == 1
