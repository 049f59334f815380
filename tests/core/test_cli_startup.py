"""The newcomer's path: a light `import netatlas`, a CLI that starts without the heavy stack, honest
exit codes, and `serve` that names its extra when the server packages are missing."""

import importlib
import subprocess
import sys
import textwrap

import pytest
import typer

import netatlas
from netatlas import cli

HEAVY = ("torch", "numba", "matplotlib", "dask", "fastapi", "scipy")
PACKAGES = ("nets", "regions", "metric", "splines", "lowrank", "dynamics", "experiments", "ssl", "app")


def _loaded_after(code: str) -> list[str]:
    probe = code + f"\nimport sys\nprint(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    return eval(out.strip().splitlines()[-1])


def _help(*args: str) -> str:
    return (f"import sys\nfrom netatlas.cli import main\nsys.argv = ['netatlas', *{list(args)!r}, '--help']\n"
            "try:\n    main()\nexcept SystemExit as e:\n    assert e.code == 0, e.code\n")


def test_import_netatlas_loads_no_heavy_module():
    assert _loaded_after("import netatlas, netatlas.regions, netatlas.metric, netatlas.nets") == []


def test_root_help_loads_no_heavy_module():
    assert _loaded_after(_help()) == []


@pytest.mark.parametrize("command", [*cli.COMMANDS, "info"])
def test_every_command_help_loads_no_heavy_module(command):
    probe = _help(command) + textwrap.dedent(f"""
        import typer
        from netatlas.cli import app
        group = typer.main.get_command(app).get_command(None, {command!r})
        for sub in getattr(group, "commands", {{}}):  # and each subcommand's --help
            sys.argv = ['netatlas', {command!r}, sub, '--help']
            try:
                main()
            except SystemExit as e:
                assert e.code == 0, (sub, e.code)
        """)
    assert _loaded_after(probe) == []


@pytest.mark.parametrize("package", PACKAGES)
def test_lazy_exports_resolve_and_match_all(package):
    module = importlib.import_module(f"netatlas.{package}")
    for name in module.__all__:
        assert getattr(module, name) is not None, name
    assert set(module.__all__) <= set(dir(module))
    with pytest.raises(AttributeError, match="no attribute 'not_a_name'"):
        module.not_a_name  # noqa: B018


def test_top_level_lazy_names():
    assert netatlas.Plane.square(1.0).bounds == (-1.0, 1.0, -1.0, 1.0)
    assert {"Plane", "Line", "regions", "nets"} <= set(dir(netatlas))


def _run_main(app_extra_commands, argv):
    # register throwaway commands on the real root app, then remove them again
    before = list(cli.app.registered_commands)
    for name, fn in app_extra_commands.items():
        cli.app.command(name)(fn)
    try:
        with pytest.raises(SystemExit) as exit_info:
            cli.main(argv)
        return exit_info.value.code
    finally:
        cli.app.registered_commands[:] = before


def test_exit_codes_are_passed_on():
    def exit3():
        raise typer.Exit(3)

    def interrupted():
        raise KeyboardInterrupt

    def returns_three():
        return 3  # a return value is not an exit code

    def fails():
        raise netatlas.NetatlasError("what was wrong")

    cases = {"exit3": exit3, "interrupted": interrupted, "returns-three": returns_three, "fails": fails}
    assert _run_main(cases, ["exit3"]) == 3
    assert _run_main(cases, ["interrupted"]) == 130
    assert _run_main(cases, ["returns-three"]) == 0
    assert _run_main(cases, ["fails"]) == 1
    assert _run_main({}, ["no-such-command"]) == 2


def test_library_error_is_one_line(capsys):
    def fails():
        raise netatlas.ModelFileError("model.pt2: truncated")

    assert _run_main({"fails": fails}, ["fails"]) == 1
    assert capsys.readouterr().err.strip() == "ModelFileError: model.pt2: truncated"


def test_serve_without_the_app_extra_says_what_to_install():
    # A finder that reports the server stack as not installed, as on a plain `pip install netatlas`.
    code = textwrap.dedent("""
        import sys
        class NoServerStack:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("fastapi", "uvicorn", "starlette"):
                    raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        sys.meta_path.insert(0, NoServerStack())
        from netatlas.cli import main
        main(["serve", "--port", "0"])
        """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "pip install 'netatlas[app]'" in lines[0] and "fastapi" in lines[0]
