"""Paper reproductions: the claim tables, their robustness to failed configs, and one quick run per paper."""

import json

import pytest

import netatlas
from netatlas.experiments import (
    PAPERS,
    Claim,
    describe,
    not_measured,
    reproduce,
    sahs2020,
    shisher2022,
    spread,
    vandenberg2016,
    zavatoneveth2023,
)

MODULES = {"vandenberg2016": vandenberg2016, "sahs2020": sahs2020, "zavatoneveth2023": zavatoneveth2023,
           "shisher2022": shisher2022}
IDS = {
    "vandenberg2016": ["C1", "C2", "C3", "C4", "C5", "C5b", "C6", "C7", "C8", "R1", "R2"],
    "sahs2020": [f"T{i}" for i in range(1, 10)],
    "zavatoneveth2023": [f"Z{i}" for i in range(1, 11)],
    "shisher2022": [f"S{i}" for i in range(1, 11)],
}


def test_papers_listed():
    assert sorted(PAPERS) == sorted(IDS)


def test_claim_row_and_dict():
    c = Claim("X1", "s", "e", "m", False, (1.0, float("nan")))
    assert c.row()["holds"] == "NO"
    assert c.to_dict()["values"] == [1.0, None]
    assert not_measured("X2", "s", "e", "f in netatlas.x").to_dict()["holds"] is None


def test_spread_and_describe():
    assert spread([])["n"] == 0
    assert spread([2.0, 4.0])["sd"] == pytest.approx(2 ** 0.5)
    assert describe([]) == "no finite value"
    assert "n=3" in describe([1, 2, 3])


def test_unknown_paper_and_bad_dask(tmp_path):
    with pytest.raises(ValueError, match="unknown paper 'x'"):
        reproduce("x", tmp_path)
    with pytest.raises(ValueError, match="dask must be"):
        reproduce("sahs2020", tmp_path, dask="cluster")


@pytest.mark.parametrize("paper", sorted(IDS))
def test_build_with_failed_configs_reports_not_measured(paper):
    module = MODULES[paper]
    configs = module.configs([0], quick=True)
    records = [{"key": str(i), "config": c, "status": "failed", "error": "RuntimeError: boom"}
               for i, c in enumerate(configs)]
    result = module.build(records, {"seeds": [0], "quick": True})
    assert [c.id for c in result.claims] == IDS[paper]
    assert all(c.holds is None for c in result.claims)


def test_a_failing_measurement_is_reported_as_not_holding():
    # a spline error of 1e-3 must give T1 = False, whatever else is missing
    records = [{"key": "a", "config": {"part": "coords", "seed": 0}, "status": "done",
                "result": {"width": 4, "spline_error": 1e-3, "linear_form_error": 0.0,
                           "round_trip_error": {"False": 0.0}}}]
    result = sahs2020.build(records, {"seeds": [0], "quick": True})
    assert result.claim("T1").holds is False
    assert result.claim("T2").holds is None


def _check_run(paper, out, result):
    summary = json.loads((out / "summary.json").read_text())
    assert [c["id"] for c in summary["claims"]] == IDS[paper]
    for claim in summary["claims"]:
        assert set(claim) >= {"id", "statement", "expected", "measured", "holds"}
        assert claim["holds"] in (True, False, None)
        assert claim["statement"] and claim["measured"]
    html = (out / "report.html").read_text()
    assert html.index("Claims") < html.index("<img") if "<img" in html else True
    assert list((out / "sweep" / "results").glob("*.json"))
    assert [c.id for c in result.claims] == IDS[paper]


@pytest.mark.slow
def test_reproduce_vandenberg_quick(tmp_path):
    result = reproduce("vandenberg2016", tmp_path, quick=True, seeds=(0, 1))
    _check_run("vandenberg2016", tmp_path, result)
    # held-out: the exact count of 8 lines is Zaslavsky's
    assert result.claim("C7").values[0] == netatlas.regions.bounds.zaslavsky(8, 2)
    assert list(tmp_path.glob("*.png"))


@pytest.mark.slow
def test_reproduce_sahs_quick_and_resume(tmp_path):
    result = reproduce("sahs2020", tmp_path, quick=True, seeds=(0, 1))
    _check_run("sahs2020", tmp_path, result)
    assert result.claim("T1").holds is True  # exactness of the coordinates cannot depend on the seed
    stamps = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "sweep" / "results").glob("*.json")}
    again = reproduce("sahs2020", tmp_path, quick=True, seeds=(0, 1))  # resumes: nothing recomputed
    assert stamps == {p.name: p.stat().st_mtime_ns for p in (tmp_path / "sweep" / "results").glob("*.json")}
    assert [c.measured for c in again.claims] == [c.measured for c in result.claims]


@pytest.mark.slow
def test_reproduce_zavatoneveth_quick(tmp_path):
    result = reproduce("zavatoneveth2023", tmp_path, quick=True, seeds=(0, 1))
    _check_run("zavatoneveth2023", tmp_path, result)
    # held-out: the unit sphere's curvature is +2 in netatlas's convention
    assert result.claim("Z1").values[0] == pytest.approx(2.0, abs=1e-8)
    assert result.claim("Z10").holds is None  # images run only in the full version


@pytest.mark.slow
def test_reproduce_shisher_quick_via_cli(tmp_path):
    from typer.testing import CliRunner

    from netatlas.cli import app

    out = tmp_path / "run"
    res = CliRunner().invoke(app, ["reproduce", "shisher2022", "--quick", "--seeds", "0", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "shisher2022:" in res.output and "S9" in res.output
    summary = json.loads((out / "summary.json").read_text())
    assert [c["id"] for c in summary["claims"]] == IDS["shisher2022"]
