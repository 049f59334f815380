"""The documentation site stays true: the CLI reference covers every command, the API pages cover every
public name, the code on the pages runs, the tutorial runner records what it runs, and library plotting
code never calls ``plt.show()``."""

import ast
import importlib
import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
# module -> API page; every name in the module's __all__ must be rendered there.
API_PAGES = {"netatlas": "netatlas", "netatlas.nets": "nets", "netatlas.regions": "regions",
             "netatlas.metric": "metric", "netatlas.splines": "splines", "netatlas.lowrank": "lowrank",
             "netatlas.dynamics": "dynamics", "netatlas.experiments": "experiments",
             "netatlas.experiments.vandenberg2016": "experiments", "netatlas.experiments.sahs2020": "experiments",
             "netatlas.experiments.zavatoneveth2023": "experiments",
             "netatlas.experiments.zavatoneveth2023.ssl": "experiments",
             "netatlas.experiments.shisher2022": "experiments", "netatlas.experiments.humayun2024": "experiments",
             "netatlas.app": "app", "netatlas.data": "support", "netatlas.train": "support",
             "netatlas.report": "support", "netatlas.sweep": "support"}


def _load(name):
    spec = importlib.util.spec_from_file_location(f"_docs_{name}", DOCS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -- command-line reference --------------------------------------------------------------------------
def test_cli_reference_has_every_command_with_its_help():
    from typer.testing import CliRunner

    from netatlas.cli import app

    gen_cli = _load("gen_cli")
    page = gen_cli.render()
    runner = CliRunner()

    def listed(args):
        # The command names a --help lists (independent of the generator's walk): rich help tables
        # show each command as the first word of a row.
        text = runner.invoke(app, [*args, "--help"], env={"COLUMNS": "120"}, terminal_width=120).output
        section = text.split("Commands", 1)[1] if "Commands" in text else ""
        return re.findall(r"^│ (\S+) ", section, re.M)

    top = listed([])
    assert {"info", "demo", "regions", "magnify", "splines", "lowrank", "dynamics", "reproduce", "serve",
            "sweep"} <= set(top)
    expected = [f"netatlas {name}" for name in top]
    for name in top:
        expected += [f"netatlas {name} {sub}" for sub in listed([name])]
    assert "netatlas magnify toy" in expected and "netatlas sweep run" in expected
    for full in expected:
        assert f"## `{full}`" in page, f"{full} has no section in the CLI reference"
        assert f"Usage: {full} " in page, f"{full}: its --help text is missing"
        help_text = runner.invoke(app, [*full.split()[1:], "--help"], env={"COLUMNS": "100"}, prog_name="netatlas",
                                  terminal_width=100).output
        lines = [line.strip() for line in help_text.splitlines()]
        first_line = next(line for line in lines[lines.index("") + 1:] if line and not line.startswith("Usage"))
        assert first_line in page, f"{full}: help '{first_line}' missing"


# -- API reference (the strict mkdocs build) ---------------------------------------------------------
@pytest.fixture(scope="module")
def built_site(tmp_path_factory):
    pytest.importorskip("mkdocstrings_handlers.python")
    site = tmp_path_factory.mktemp("site")
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "NETATLAS_DOCS_SKIP_TUTORIALS": "1", "NO_MKDOCS_2_WARNING": "1"}
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stderr[-4000:]}"
    return site


@pytest.mark.slow
def test_strict_build_has_an_api_entry_for_every_public_name(built_site):
    missing = []
    for module_name, page in API_PAGES.items():
        module = importlib.import_module(module_name)
        html = (built_site / "api" / f"{page}.html").read_text()
        anchors = set(re.findall(r'id="(netatlas[\w.]*)"', html))
        missing += [f"{module_name}.{name}" for name in module.__all__
                    if f"{module_name}.{name}" not in anchors and name != "__version__"]
    assert not missing, f"public names without an API reference entry: {missing}"


@pytest.mark.slow
def test_strict_build_has_every_page(built_site):
    for page in ("index", "install", "concepts", "cli", "gallery", "benchmarks", "changelog",
                 "lenses/regions", "papers/sahs2020", "tutorials/cnn_regions"):
        assert (built_site / f"{page}.html").exists(), page
    cli = (built_site / "cli.html").read_text()
    assert "netatlas regions" in cli and "Usage:" in cli


# -- code on the pages -------------------------------------------------------------------------------
@pytest.mark.parametrize("page", ["index.md", "lenses/regions.md", "lenses/metric.md", "lenses/splines.md",
                                  "lenses/lowrank.md", "lenses/dynamics.md", "regions-3d.md"])
def test_page_code_runs(page):
    import matplotlib.pyplot as plt

    text = (DOCS / page).read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert blocks, f"{page} has no Python example"
    namespace = {}
    for block in blocks:
        exec(compile(block, str(DOCS / page), "exec"), namespace)
    plt.close("all")


# -- tutorials -------------------------------------------------------------------------------------
TUTORIAL = '''# %% [markdown]
# # A tiny tutorial
# Some *text*.

# %%
import matplotlib.pyplot as plt
print("hello", 6 * 7)

# %%
fig, ax = plt.subplots()
ax.plot([0, 1], [0, 1])
ax.set_title("a line")
'''


def test_tutorial_cells_split_markdown_and_code():
    cells = _load("run_tutorials").cells(TUTORIAL)
    assert [kind for kind, _ in cells] == ["markdown", "code", "code"]
    assert cells[0][1] == "# A tiny tutorial\nSome *text*."
    assert cells[1][1].endswith('print("hello", 6 * 7)')


def test_tutorial_runner_records_output_and_figures(tmp_path):
    runner = _load("run_tutorials")
    source = tmp_path / "tiny.py"
    source.write_text(TUTORIAL)
    out = tmp_path / "gallery"
    env = {**os.environ, "MPLBACKEND": "Agg"}
    proc = subprocess.run([sys.executable, str(DOCS / "run_tutorials.py"), "--one", str(source), "--out", str(out)],
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    record = json.loads((out / "tiny" / "outputs.json").read_text())
    assert record["source_hash"] == runner.source_hash(TUTORIAL)
    assert record["cells"][0]["stdout"] == "hello 42\n"
    [figure] = record["cells"][1]["figures"]
    assert figure["caption"] == "a line"
    assert (out / "tiny" / figure["file"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_tutorial_runner_fails_on_an_error(tmp_path):
    source = tmp_path / "broken.py"
    source.write_text("# %%\nraise RuntimeError('tutorial broke')\n")
    proc = subprocess.run([sys.executable, str(DOCS / "run_tutorials.py"), "--one", str(source),
                           "--out", str(tmp_path / "g")], capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and "tutorial broke" in proc.stderr


def test_every_tutorial_is_in_the_nav():
    nav = (ROOT / "mkdocs.yml").read_text()
    for path in sorted((DOCS / "tutorials").glob("*.py")):
        assert f"tutorials/{path.stem}.md" in nav, f"{path.name} is not in mkdocs.yml's nav"


# -- library plotting code -------------------------------------------------------------------------
def _library_functions():
    for path in sorted((ROOT / "src" / "netatlas").rglob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef):
                yield path, node


def test_library_never_calls_plt_show():
    calls = [f"{path.relative_to(ROOT)}:{node.lineno}" for path, fn in _library_functions()
             for node in ast.walk(fn) if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
             and node.func.attr == "show" and isinstance(node.func.value, ast.Name)
             and node.func.value.id in ("plt", "pyplot")]
    assert not calls, f"plt.show() in library code: {sorted(set(calls))}"


def test_plot_functions_return_what_they_drew():
    silent = [f"{path.relative_to(ROOT)}:{fn.name}" for path, fn in _library_functions()
              if fn.name.startswith("plot")
              and not any(isinstance(n, ast.Return) and n.value is not None for n in ast.walk(fn))]
    assert not silent, f"plot functions returning nothing (return the Axes or Figure): {silent}"


def test_tutorial_runner_records_a_final_rich_expression(tmp_path):
    source = tmp_path / "rich.py"
    source.write_text("# %%\nimport netatlas\npart = netatlas.regions.partition(netatlas.nets.mlp([2, 4, 1], seed=0))\n"
                      "part\n\n# %%\n1 + 1\n")
    proc = subprocess.run([sys.executable, str(DOCS / "run_tutorials.py"), "--one", str(source), "--out",
                           str(tmp_path / "g")], env={**os.environ, "MPLBACKEND": "Agg"}, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    first, second = json.loads((tmp_path / "g" / "rich" / "outputs.json").read_text())["cells"]
    assert "<img" in first["html"] and ">10</td>" in first["html"]   # 10 regions (the regions doctest)
    assert "html" not in second  # plain values are not displayed


def test_bare_doctests_are_fenced_but_examples_sections_are_left_to_the_parser():
    pytest.importorskip("griffe")
    fence = _load("griffe_lazy").fence_doctests
    text = "Summary.\n\n>>> x = [1]\n>>> x[0]\n1\n\nExamples\n--------\n>>> 2 + 2\n4"
    assert fence(text) == ("Summary.\n\n```pycon\n>>> x = [1]\n>>> x[0]\n1\n```\n\nExamples\n--------\n"
                           ">>> 2 + 2\n4")
    assert fence("No doctest here.") == "No doctest here."
