"""Render the command-line reference from the typer app itself, so it never goes stale.

    python docs/gen_cli.py > cli.md        # the mkdocs hook (docs/hooks.py) calls render()

Each section is the command's own ``--help`` output, captured with typer's test runner at a fixed width.
"""

from __future__ import annotations

HEADER = """# Command line

Generated from the commands themselves (`docs/gen_cli.py`): each section is exactly what
`netatlas COMMAND --help` prints. Every command that writes results takes `--out DIR` and writes
`config.json`, `environment.json`, `summary.json`, figures and a self-contained `report.html`
(see [Concepts](concepts.md#runs)).
"""

WIDTH = 100


def walk(command, ctx=None, path: tuple = ()):
    """Yield the argument path of ``command`` and of every visible subcommand, depth first, in the
    order the app lists them. Goes through ``list_commands``/``get_command`` (not ``.commands``) so
    that lazily loaded commands are found too."""
    import typer

    yield path
    if not hasattr(command, "list_commands"):
        return
    ctx = typer.Context(command, info_name=path[-1] if path else "netatlas", parent=ctx)
    for name in command.list_commands(ctx):
        sub = command.get_command(ctx, name)
        if sub is not None and not getattr(sub, "hidden", False):
            yield from walk(sub, ctx, (*path, name))


def commands(app=None) -> list[tuple[str, str]]:
    """``[(full command, --help text)]`` for every command of the netatlas CLI (or of ``app``)."""
    import typer
    from typer.testing import CliRunner

    if app is None:
        from netatlas.cli import app
    runner = CliRunner()
    env = {"COLUMNS": str(WIDTH), "TERM": "dumb", "NO_COLOR": "1"}
    out = []
    for path in walk(typer.main.get_command(app)):
        result = runner.invoke(app, [*path, "--help"], env=env, terminal_width=WIDTH, prog_name="netatlas")
        if result.exit_code != 0:
            raise RuntimeError(f"netatlas {' '.join(path)} --help failed: {result.output}")
        text = "\n".join(line.rstrip() for line in result.output.splitlines()).strip("\n")
        out.append((" ".join(("netatlas", *path)), text))
    return out


def render(app=None) -> str:
    """The Markdown page: a list of commands, then one section per command with its help."""
    items = commands(app)
    toc = "\n".join(f"- [`{name}`](#{_anchor(name)})" for name, _ in items)
    sections = [f"## `{name}` {{#{_anchor(name)}}}\n\n```text\n{text}\n```\n" for name, text in items]
    return f"{HEADER}\n{toc}\n\n" + "\n".join(sections)


def _anchor(name: str) -> str:
    return name.replace(" ", "-")


if __name__ == "__main__":
    print(render())
