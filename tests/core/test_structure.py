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


def _upward_imports(graph):
    upward = [(m, o) for m, outs in graph.items() for o in outs
              if _subpackage(m) in BELOW and _subpackage(o) in ABOVE]
    into_lenses = [(m, o) for m, outs in graph.items() for o in outs
                   if _subpackage(m) == "nets" and _subpackage(o) in LENSES]
    return upward + into_lenses


def test_imports_point_down():
    offenders = _upward_imports(_graph())
    assert not offenders, offenders


def test_a_lens_importing_a_paper_package_is_caught():
    """The check above sees a static import of experiments from a lens, at any depth; the lenses' moved names
    (``_lazy.attach(..., deprecated=...)``) name their new home as a string and are not imports."""
    graph = _graph()
    lowrank = dict(graph, **{"netatlas.lowrank": graph["netatlas.lowrank"] | {"netatlas.experiments.shisher2022"}})
    assert _upward_imports(lowrank) == [("netatlas.lowrank", "netatlas.experiments.shisher2022")]
    assert not {o for m, outs in graph.items() if _subpackage(m) in LENSES for o in outs
                if o.startswith("netatlas.experiments")}


def test_no_importlib_in_lens_code():
    offenders = [str(p.relative_to(SRC)) for pkg in BELOW for p in (SRC / "netatlas" / pkg).rglob("*.py")
                 if "importlib" in p.read_text() and p.name != "_run.py"]  # report/_run.py: package versions
    assert not offenders, offenders


# Paper packages whose paper `reproduce` does not cover (yet): a study and its command, no claim table.
NOT_REPRODUCED = {"humayun2024": "local complexity through training, `netatlas dynamics complexity`"}


def test_every_paper_is_one_package_with_its_claims():
    from netatlas.experiments import PAPERS

    for paper, module_name in PAPERS.items():
        assert (SRC / "netatlas" / "experiments" / paper / "_claims.py").exists(), paper
        module = importlib.import_module(module_name)
        assert all(callable(getattr(module, f)) for f in ("configs", "run_part", "build")), paper
        assert (SRC.parent / "docs" / "papers" / f"{paper}.md").exists(), paper
    # and every package under experiments/ is a paper: reproduced (above) or named in NOT_REPRODUCED
    packages = {p.parent.name for p in (SRC / "netatlas" / "experiments").glob("*/__init__.py")}
    assert packages == set(PAPERS) | set(NOT_REPRODUCED), packages ^ (set(PAPERS) | set(NOT_REPRODUCED))
    assert not set(PAPERS) & set(NOT_REPRODUCED)
    for paper in NOT_REPRODUCED:
        assert not (SRC / "netatlas" / "experiments" / paper / "_claims.py").exists(), paper


# -- the app is a thin face of the library (issue 25) -----------------------------------------------
APP = SRC / "netatlas" / "app"


def _app_modules():
    return sorted(APP.glob("*.py"))


def _imported_modules(path: Path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module


def test_the_app_imports_only_public_names_of_the_library():
    """Lens functions come through their packages' public names: no private module of another package
    (``netatlas.regions._kernels``), no importlib machinery to look them up."""
    private = [(p.name, m) for p in _app_modules() for m in _imported_modules(p)
               if m.startswith("netatlas.") and not m.startswith("netatlas.app")
               and any(part.startswith("_") for part in m.split(".")[1:]) and m != "netatlas._lazy"]
    looked_up = [p.name for p in _app_modules() if "importlib" in p.read_text()]
    assert not private and not looked_up, private + looked_up


def _registries() -> dict[str, set[str]]:
    from netatlas.dynamics import METHODS
    from netatlas.nets import ACTIVATIONS, INITS
    from netatlas.train import LOSSES, OPTIMIZERS

    return {"nets.ACTIVATIONS": set(ACTIVATIONS), "nets.INITS": set(INITS), "train.OPTIMIZERS": set(OPTIMIZERS),
            "train.LOSSES": set(LOSSES), "dynamics.METHODS": set(METHODS)}


def _string_collections(path: Path):
    """(line, strings) of every literal tuple, list, set or dict (its keys) of strings in a module."""
    for node in ast.walk(ast.parse(path.read_text())):
        items = node.keys if isinstance(node, ast.Dict) else getattr(node, "elts", None)
        if isinstance(node, (ast.Tuple, ast.List, ast.Set, ast.Dict)) and items:
            strings = {i.value for i in items if isinstance(i, ast.Constant) and isinstance(i.value, str)}
            if strings:
                yield node.lineno, strings


def test_the_app_defines_no_option_lists_that_the_registries_own():
    """A literal list naming two or more entries of a library registry is a copy of it: take the registry."""
    copies = [(p.name, line, name) for p in _app_modules() for line, strings in _string_collections(p)
              for name, registry in _registries().items() if len(strings & registry) >= 2]
    assert not copies, copies


def test_the_page_takes_the_servers_constants_instead_of_copying_them():
    import re

    from netatlas.app import DEFAULT_CONFIG, DEFAULT_VIEW

    script = (APP / "static" / "app.js").read_text()
    owned = {"DEFAULT_CONFIG": set(DEFAULT_CONFIG), "DEFAULT_VIEW": set(DEFAULT_VIEW), **_registries()}
    arrays = [set(re.findall(r'"([^"]+)"', body)) for body in re.findall(r"\[([^\[\]]*)\]", script)]
    copies = [name for strings in arrays for name, keys in owned.items() if len(strings & keys) >= 3]
    assert not copies, f"app.js copies the server's {copies}; take them from the constants the server sends"


def test_the_app_reimplements_no_geometry():
    """Planes come from ``Plane.window`` (not built by hand); polygons are clipped by the regions lens."""
    built = [(p.name, node.lineno) for p in _app_modules() for node in ast.walk(ast.parse(p.read_text()))
             if isinstance(node, ast.Call) and (getattr(node.func, "attr", None) == "Plane"
                                                or getattr(node.func, "id", None) == "Plane")]
    clippers = [(p.name, node.name) for p in _app_modules() for node in ast.walk(ast.parse(p.read_text()))
                if isinstance(node, ast.FunctionDef) and any(w in node.name for w in ("clip", "area", "pieces"))]
    assert not built and not clippers, built + clippers


def test_every_error_class_is_in_errors_exported_and_documented():
    import netatlas
    from netatlas import _errors

    classes = [c for c in vars(_errors).values() if isinstance(c, type) and issubclass(c, Exception)]
    assert len(classes) >= 8
    api_page = (SRC.parent / "docs" / "api" / "netatlas.md").read_text()
    hierarchy = _errors.__doc__.split("Hierarchy::")[1]
    for cls in classes:
        assert issubclass(cls, _errors.NetatlasError), cls
        assert cls.__name__ in netatlas.__all__ and getattr(netatlas, cls.__name__) is cls, cls
        assert cls.__name__ in hierarchy and cls.__name__ in api_page, cls
    elsewhere = [f"{path.relative_to(SRC)}: {node.name}" for path in SRC.rglob("*.py") if path.name != "_errors.py"
                 for node in ast.walk(ast.parse(path.read_text()))
                 if isinstance(node, ast.ClassDef) and node.name.endswith("Error")
                 and node.name != "OptionValueError"]  # the CLI's usage error (exit 2), kept with _options for now
    assert not elsewhere, f"error classes outside netatlas/_errors.py: {elsewhere}"


def test_moved_errors_keep_their_old_import_paths():
    import netatlas
    from netatlas.app import ConfigError
    from netatlas.app._config import ConfigError as config_error
    from netatlas.regions import RegionLimitError
    from netatlas.regions._scale import RegionLimitError as scale_error

    assert ConfigError is config_error is netatlas.ConfigError and issubclass(ConfigError, ValueError)
    assert RegionLimitError is scale_error is netatlas.RegionLimitError


# -- packages import each other's public names only (issue 25 item 4) ------------------------------
def _private_reach_ins():
    """(importer, imported) for every import of a private module or name from outside the package holding it.

    A private module or name (``_ir``, ``_model_zones``) belongs to the package just above it, and is shared
    inside that package's top unit — a subpackage of netatlas, or a paper package of experiments:
    ``netatlas.nets._ir`` may be imported inside ``netatlas.nets`` only, ``netatlas.sweep._deliver``
    inside ``netatlas.sweep`` only; the root's private modules (``netatlas._errors``) are the library's own."""
    offenders = []
    for path in sorted(SRC.rglob("*.py")):
        importer = _module_name(path)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [a.name.split(".") for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                targets = [node.module.split(".") + [a.name] for a in node.names]
            else:
                continue
            for parts in targets:
                if parts[0] != "netatlas":
                    continue
                first = next((i for i, part in enumerate(parts) if part.startswith("_")), None)
                if first is None or parts[first].startswith("__"):
                    continue
                unit = ".".join(parts[:min(first, 3 if parts[1:2] == ["experiments"] else 2)])
                if importer != unit and not importer.startswith(unit + "."):
                    offenders.append((importer, ".".join(parts)))
    return offenders


def test_packages_import_each_others_public_names_only():
    offenders = _private_reach_ins()
    assert not offenders, "\n".join(f"{m} imports {o}" for m, o in offenders)


def test_note_blocks_have_one_spelling():
    """Long reasoning sits in ``# NOTE [title]`` blocks (in comments and module docstrings alike), cited as
    ``NOTE [title]`` where it matters; a block in another spelling (``NOTE [x]`` alone, ``# Note:``) is not."""
    import re

    block = re.compile(r"^\s*(#\s*)?(NOTE|Note)(:|\s*\[[^\]]*\]\s*:?\s*$)")  # a heading, not a citation
    offenders = [f"{p.relative_to(SRC.parent)}:{i}" for top in (SRC, SRC.parent / "tests")
                 for p in sorted(top.rglob("*.py"))
                 for i, line in enumerate(p.read_text().splitlines(), 1)
                 if block.match(line) and not re.fullmatch(r"\s*# NOTE \[[^\]]+\]", line)]
    assert not offenders, offenders


def test_the_architecture_page_maps_every_module():
    """docs/architecture.md's module map names every module (a package's ``__init__.py`` by its package)."""
    page = (SRC.parent / "docs" / "architecture.md").read_text()
    root = SRC / "netatlas"
    modules = [str(p.relative_to(root)) for p in sorted(root.rglob("*.py"))
               if p.name != "__init__.py" or p.parent == root]
    missing = [m for m in modules if f"    {m} " not in page]
    assert not missing, f"add these modules to the module map of docs/architecture.md: {missing}"
