"""The structure stays as docs/architecture.md states it: no import circles between modules, imports point
down (lenses never import the paper packages, the app or the CLI; nets imports no lens), no importlib
machinery in lens code, and every paper of `reproduce` is one package under experiments/."""

import ast
import importlib
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
LENSES = ("regions", "metric", "splines", "lowrank", "dynamics")
BELOW = LENSES + ("nets", "train", "data", "report")
ABOVE = ("experiments", "app", "cli", "demo", "sweep_cli")


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _graph() -> dict[str, set[str]]:
    """module -> netatlas modules it imports (at any level, including inside functions)."""
    paths = {_module_name(p): p for p in SRC.rglob("*.py")}
    graph = {}
    for name, path in paths.items():
        out = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                out.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = name.split(".")[: len(name.split(".")) - node.level + (path.name == "__init__.py")]
                    base = ".".join(parts + ([base] if base else []))
                out.update(f"{base}.{a.name}" if f"{base}.{a.name}" in paths else base for a in node.names)
        graph[name] = {m for m in out if m in paths and m != name}
    return graph


def _subpackage(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _circles(graph):
    done, on_path, circles = set(), [], []

    def visit(node):
        on_path.append(node)
        for nxt in sorted(graph[node]):
            if nxt in on_path:
                circles.append(on_path[on_path.index(nxt):])
            elif nxt not in done:
                visit(nxt)
        on_path.pop()
        done.add(node)

    for node in sorted(graph):
        if node not in done:
            visit(node)
    return circles


def test_no_import_circles():
    circles = _circles(_graph())
    assert not circles, f"import circles: {circles}"


def test_imports_point_down():
    upward = [(m, o) for m, outs in _graph().items() for o in outs
              if _subpackage(m) in BELOW and _subpackage(o) in ABOVE]
    into_lenses = [(m, o) for m, outs in _graph().items() for o in outs
                   if _subpackage(m) == "nets" and _subpackage(o) in LENSES]
    assert not upward and not into_lenses, upward + into_lenses


def test_no_importlib_in_lens_code():
    offenders = [str(p.relative_to(SRC)) for pkg in BELOW for p in (SRC / "netatlas" / pkg).rglob("*.py")
                 if "importlib" in p.read_text() and p.name != "_run.py"]  # report/_run.py: package versions
    assert not offenders, offenders


def test_every_paper_is_one_package_with_its_claims():
    from netatlas.experiments import PAPERS

    for paper, module_name in PAPERS.items():
        assert (SRC / "netatlas" / "experiments" / paper / "_claims.py").exists(), paper
        module = importlib.import_module(module_name)
        assert all(callable(getattr(module, f)) for f in ("configs", "run_part", "build")), paper
        assert (SRC.parent / "docs" / "papers" / f"{paper}.md").exists(), paper
