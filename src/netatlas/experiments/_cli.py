"""``netatlas reproduce PAPER``: one command per paper, a claims table first."""

from __future__ import annotations

from pathlib import Path

import typer

__all__ = ["register"]


def _seeds(text):
    from netatlas._options import OptionValueError  # a bad option value: a usage error, exit 2

    try:
        seeds = tuple(int(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise OptionValueError(f"--seeds must be comma-separated integers like 0,1,2; got {text!r}") from None
    if not seeds:
        raise OptionValueError(f"--seeds must name at least one seed; got {text!r}")
    if min(seeds) < 0:
        raise OptionValueError(f"--seeds must be integers >= 0; got {text!r}")
    return seeds


def reproduce_command(
    paper: str = typer.Argument(..., help="vandenberg2016, sahs2020, zavatoneveth2023, shisher2022 or all"),
    out: Path = typer.Option(None, help="Run directory (default: a new one under runs/); 'all' writes one "
                                        "sub-directory per paper"),
    quick: bool = typer.Option(False, "--quick", help="Reduced version (CI): fewer settings, 3 seeds"),
    seeds: str = typer.Option(None, help="Comma-separated seeds (default 0,1,2 with --quick, else 0,...,4)"),
    dask: str = typer.Option(None, help="Spread the sweep: 'local' (a LocalCluster) or 'tcp://host:port'"),
):
    """Reproduce a paper's claims: a table of claim, expected, measured (spread over seeds), holds.

    Python: ``netatlas.experiments.reproduce(PAPER, OUT, quick=..., seeds=..., dask=...)``
    """
    from netatlas.experiments._reproduce import PAPERS, reproduce
    from netatlas.report import RunDir

    names = sorted(PAPERS) if paper == "all" else [paper]
    if paper != "all" and paper not in PAPERS:
        raise ValueError(f"reproduce: unknown paper {paper!r}; choose one of {sorted(PAPERS)} or 'all'")
    seed_list = _seeds(seeds) if seeds else None
    results = []
    top = None
    if paper == "all":
        top = RunDir.create(out, command="reproduce all", config={"quick": quick, "seeds": seed_list, "dask": dask})
    for name in names:
        target = top.path / name if top is not None else out
        result = reproduce(name, target, quick=quick, seeds=seed_list, dask=dask, progress=True)
        results.append(result)
        c = result.counts
        typer.echo(f"{name}: {c['n_hold']} of {c['n_claims']} claims hold, {c['n_fail']} do not, "
                   f"{c['n_not_measured']} not measured")
        for claim in result.claims:
            mark = {True: "holds", False: "DOES NOT HOLD", None: "not measured"}[claim.holds]
            typer.echo(f"  {claim.id:<4} {mark:<14} {claim.measured[:110]}")
    if top is not None:
        claims = [{**cl.to_dict(), "id": f"{r.paper}:{cl.id}", "paper": r.paper} for r in results for cl in r.claims]
        top.add_table("Claims of all papers", [{"id": c["id"], "statement": c["statement"], "expected": c["expected"],
                                                "measured": c["measured"], "holds": c["holds"]} for c in claims],
                      "Each paper's full report is in its sub-directory.")
        top.write_summary({"claims": claims, "papers": {r.paper: r.counts for r in results}})
        top.write_report("netatlas reproduce all")
        typer.echo(f"report: {top.path / 'report.html'}")
    else:
        typer.echo(f"report: {Path(results[0].settings['sweep_dir']).parent / 'report.html'}")
    _exit_status(results)


def _exit_status(results):
    """Raise RunFailedError when configs failed or a paper measured nothing: the reports are written,
    but the command did not do all it should."""
    from netatlas._errors import RunFailedError
    from netatlas.sweep import status

    problems = []
    for result in results:
        state = status(result.settings["sweep_dir"])
        measured = result.counts["n_hold"] + result.counts["n_fail"]
        if state.n_failed or not measured:
            first = next(iter(state.failed.values()), None)
            problems.append(f"{result.paper}: {state.n_failed} of {state.n_configs} configs failed, "
                            f"{measured} of {result.counts['n_claims']} claims measured"
                            + (f"; first: {first.splitlines()[0]}" if first else ""))
    if problems:
        raise RunFailedError("reproduce: " + "; ".join(problems))


def register(app: typer.Typer) -> None:
    app.command("reproduce")(reproduce_command)

