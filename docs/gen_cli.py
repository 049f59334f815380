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

# The shared options (netatlas/_options.py): (option, meaning, Python); `|` is escaped for the table.
VOCABULARY = [
    ("--data NAME|FILE", "a built-in data set (digits, mnist_sample, moons, ...) or your .csv/.npz/.pt",
     "netatlas.data.load_any(NAME_OR_FILE)"),
    ("--split train|test", "which split indices and samples refer to (default train; test in metric, magnify model "
     "and regions complexity, which use train, said in one line, when the data has no test split)",
     "dataset.x / dataset.x_test"),
    ("--n N", "a stratified sample of N of the split (one line of warning if it holds one class)",
     "netatlas.data.stratified_sample(y, N, seed=SEED)"),
    ("--through A B C", "the plane through inputs A, B, C: indices into the whole split (also --through A,B,C "
     "or --through A --through B --through C)", "netatlas.Plane.through(x[A], x[B], x[C])"),
    ("--plane square:S", "the square [-S, S]^2 in the first two input axes", "netatlas.Plane.square(S, dim=...)"),
    ("--zoom F --around A|AB", "a window F of the plane's size centred on an input or a mean of inputs",
     'plane.zoom(F, around="A")'),
    ("--zoom F --around boundary", "... centred where the predicted class first changes from A to B",
     'plane.zoom(F, around=plane.around_boundary(net, "A", "B"))'),
    ("--max-regions N --memory-budget SIZE", "stop, with the estimate, above N regions or SIZE (bytes such as 2e9, "
     "or 512MiB, 8GB: KB/MB/GB powers of 10, KiB/MiB/GiB of 2; auto; none); with --tiles, N is the whole slice's "
     "count (estimated first) and both also limit each tile",
     "partition(net, plane, max_regions=N, memory_budget=SIZE)"),
    ("--seed, --threads, --out, --overwrite", "the seed of the command's randomness, torch threads (>= 1), the run "
     "directory, and leave to reuse a non-empty one", ""),
]


def vocabulary() -> str:
    """The shared-options section of the page."""
    rows = ["| option | meaning | Python |", "|---|---|---|"]
    for option, meaning, python in VOCABULARY:
        code = f"`{python}`" if python else ""
        rows.append(f"| `{option.replace('|', chr(92) + '|')}` | {meaning} | {code} |")
    return ("\n## One vocabulary\n\nThese options are defined once (`netatlas/_options.py`) and mean the same in "
            "every command that takes them. A value that fails its check (`--tiles 0`, `--plane square:`, `--zoom 2`) "
            "stops the command before any work with one line, `ValueError: ...`, and exit status 2, like an unknown "
            "option or an unparsable value.\n\n" + "\n".join(rows) + "\n")


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
    return f"{HEADER}{vocabulary()}\n{toc}\n\n" + "\n".join(sections)


def _anchor(name: str) -> str:
    return name.replace(" ", "-")


if __name__ == "__main__":
    print(render())
