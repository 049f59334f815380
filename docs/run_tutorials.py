"""Execute the tutorials (jupytext percent-format ``docs/tutorials/*.py``) and keep their outputs.

    python docs/run_tutorials.py                 # all tutorials, outputs into docs/gallery/
    python docs/run_tutorials.py cnn_regions     # one tutorial (by file stem)

Each tutorial runs in a fresh Python process with ``MPLBACKEND=Agg`` (and one BLAS thread unless
``OMP_NUM_THREADS`` is set), cell by cell in one namespace.
After each code cell its printed output, every open matplotlib figure (saved as PNG, then closed) and,
when the cell ends with a bare expression whose value has a ``_repr_html_`` (a Partition, a Spline, a
RunDir), that HTML are recorded in ``docs/gallery/<stem>/outputs.json``, with a hash of the source so that the site
build can refuse stale outputs. The mkdocs hook (``docs/hooks.py``) renders each tutorial as a page
with these outputs and collects the figures into the gallery. Exit status 1 if any tutorial fails.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import io
import json
import os
import subprocess
import sys
import time
from contextlib import redirect_stdout
from pathlib import Path

DOCS = Path(__file__).resolve().parent
TUTORIALS = DOCS / "tutorials"
GALLERY = DOCS / "gallery"


def cells(source: str) -> list[tuple[str, str]]:
    """Split percent-format source into ``[(kind, text)]``, kind ``"markdown"`` or ``"code"``.

    A cell starts at a line ``# %%`` (code) or ``# %% [markdown]``; markdown lines lose their
    leading ``# ``. Text before the first marker (a module docstring or header) is skipped.
    """
    out, kind, lines = [], None, []

    def flush():
        text = "\n".join(lines).strip("\n")
        if kind is not None and text.strip():
            out.append((kind, text))

    for line in source.splitlines():
        if line.startswith("# %%"):
            flush()
            kind, lines = ("markdown" if "[markdown]" in line else "code"), []
        elif kind == "markdown":
            lines.append(line[2:] if line.startswith("# ") else line.lstrip("#"))
        elif kind == "code":
            lines.append(line)
    flush()
    return out


def source_hash(source: str) -> str:
    return hashlib.sha256(source.encode()).hexdigest()[:16]


def tutorials() -> list[Path]:
    return sorted(TUTORIALS.glob("*.py"))


def run_one(path: Path, out: Path) -> None:
    """Execute one tutorial in this process (called in a fresh subprocess by :func:`main`)."""
    source = path.read_text()
    target = out / path.stem
    target.mkdir(parents=True, exist_ok=True)
    for old in target.glob("*.png"):
        old.unlink()
    namespace = {"__name__": "__main__", "__file__": str(path)}
    records = []
    start = time.perf_counter()
    for index, (kind, text) in enumerate(cells(source)):
        if kind != "code":
            continue
        buffer = io.StringIO()
        with redirect_stdout(buffer):
            value = _execute(text, f"{path.name} (cell {index})", namespace)
        figures = []
        if "matplotlib.pyplot" in sys.modules:
            import matplotlib.pyplot as plt

            for k, number in enumerate(plt.get_fignums()):
                fig = plt.figure(number)
                name = f"cell{index:02d}-{k}.png"
                fig.savefig(target / name, dpi=90, bbox_inches="tight")
                figures.append({"file": name, "caption": _caption(fig)})
                plt.close(fig)
        record = {"cell": index, "stdout": buffer.getvalue(), "figures": figures}
        if hasattr(value, "_repr_html_") and not type(value).__module__.startswith("matplotlib"):
            record["html"] = value._repr_html_()
        records.append(record)
    seconds = time.perf_counter() - start
    (target / "outputs.json").write_text(json.dumps(
        {"tutorial": path.stem, "source_hash": source_hash(source), "seconds": round(seconds, 2),
         "cells": records}, indent=1))


def _execute(text: str, filename: str, namespace: dict):
    """Run a cell; like a notebook, return the value of a final bare expression (else None)."""
    tree = ast.parse(text, filename)
    last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
    exec(compile(tree, filename, "exec"), namespace)
    return None if last is None else eval(compile(ast.Expression(last.value), filename, "eval"), namespace)


def _caption(fig) -> str:
    if fig._suptitle is not None and fig._suptitle.get_text():
        return fig._suptitle.get_text()
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    return " / ".join(titles[:3])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="tutorial file stems (default: all)")
    parser.add_argument("--out", type=Path, default=GALLERY, help="output folder (default docs/gallery)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds allowed per tutorial")
    parser.add_argument("--one", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one is not None:
        run_one(args.one, args.out)
        return 0
    paths = tutorials()
    if args.names:
        known = {p.stem: p for p in paths}
        unknown = sorted(set(args.names) - set(known))
        if unknown:
            parser.error(f"unknown tutorial(s) {unknown}; known: {sorted(known)}")
        paths = [known[n] for n in args.names]
    # One BLAS/torch thread unless asked otherwise: the tutorials are small, and extra threads on a
    # busy machine (CI runs tests beside the build) cost more than they gain.
    env = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", **os.environ, "MPLBACKEND": "Agg"}
    failed = []
    for path in paths:
        start = time.perf_counter()
        try:
            proc = subprocess.run([sys.executable, __file__, "--one", str(path), "--out", str(args.out)],
                                  env=env, capture_output=True, text=True, timeout=args.timeout)
            ok, detail = proc.returncode == 0, proc.stderr[-3000:]
        except subprocess.TimeoutExpired:
            ok, detail = False, f"timed out after {args.timeout:.0f} s"
        print(f"{path.stem:<24} {'ok' if ok else 'FAILED'}  {time.perf_counter() - start:6.1f} s", flush=True)
        if not ok:
            print(detail, file=sys.stderr)
            failed.append(path.stem)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
