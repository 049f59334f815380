"""mkdocs hook: pages generated at build time, so that they cannot go stale.

- ``cli.md``: every command's ``--help`` (``docs/gen_cli.py``);
- ``tutorials/<stem>.md``: each ``docs/tutorials/<stem>.py`` (percent format) with the outputs and
  figures recorded by ``docs/run_tutorials.py`` in ``docs/gallery/<stem>/outputs.json``;
- ``gallery.md``: every tutorial figure, linked to its tutorial.

Missing or stale tutorial outputs are warnings (so ``mkdocs build --strict`` fails) unless
``NETATLAS_DOCS_SKIP_TUTORIALS=1`` (used by the test that checks the reference pages).
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path

from mkdocs.structure.files import File

DOCS = Path(__file__).resolve().parent
sys.path[:0] = [str(DOCS), str(DOCS.parent / "src")]  # document this working tree's netatlas

import gen_cli  # noqa: E402
import run_tutorials  # noqa: E402

log = logging.getLogger("mkdocs.hooks.netatlas")


def on_files(files, config):
    files.append(File.generated(config, "cli.md", content=gen_cli.render()))
    skip = os.environ.get("NETATLAS_DOCS_SKIP_TUTORIALS") == "1"
    gallery = []
    for path in sorted(run_tutorials.tutorials(), key=lambda p: _nav_position(config, f"tutorials/{p.stem}.md")):
        outputs = _outputs(path, skip)
        files.append(File.generated(config, f"tutorials/{path.stem}.md", content=_tutorial_page(path, outputs)))
        for record in (outputs or {}).get("cells", []):
            gallery += [(path, fig) for fig in record["figures"]]
    files.append(File.generated(config, "gallery.md", content=_gallery_page(gallery, skip)))
    return files


def _nav_position(config, page: str) -> int:
    """Where ``page`` appears in the nav (the gallery follows the tutorials' order); unlisted last."""
    def flat(items):
        for item in items or []:
            value = next(iter(item.values())) if isinstance(item, dict) else item
            yield from (flat(value) if isinstance(value, list) else [value])

    pages = list(flat(config["nav"]))
    return pages.index(page) if page in pages else len(pages)


def _outputs(path: Path, skip: bool) -> dict | None:
    manifest = run_tutorials.GALLERY / path.stem / "outputs.json"
    if skip:
        return None
    if not manifest.exists():
        log.warning(f"tutorial {path.name} has not been run: python docs/run_tutorials.py {path.stem}")
        return None
    outputs = json.loads(manifest.read_text())
    if outputs.get("source_hash") != run_tutorials.source_hash(path.read_text()):
        log.warning(f"tutorial {path.name} changed since its outputs were recorded: "
                    f"python docs/run_tutorials.py {path.stem}")
        return None
    return outputs


def _tutorial_page(path: Path, outputs: dict | None) -> str:
    by_cell = {r["cell"]: r for r in (outputs or {}).get("cells", [])}
    parts = []
    for index, (kind, text) in enumerate(run_tutorials.cells(path.read_text())):
        if kind == "markdown":
            parts.append(text)
            continue
        parts.append(f"```python\n{text}\n```")
        record = by_cell.get(index)
        if record is None:
            continue
        if record["stdout"].strip():
            parts.append(f"```text\n{record['stdout'].rstrip()}\n```")
        if record.get("html"):
            parts.append(record["html"])
        for fig in record["figures"]:
            parts.append(f"![{fig['caption'] or path.stem}](../gallery/{path.stem}/{fig['file']})")
    footer = f"*Source: `docs/tutorials/{path.name}`"
    footer += f"; ran in {outputs['seconds']:.1f} s.*" if outputs else " (outputs not recorded in this build).*"
    return "\n\n".join(parts + [footer]) + "\n"


def _gallery_page(gallery, skip: bool) -> str:
    lines = ["# Gallery", "",
             "Every figure the [tutorials](tutorials/index.md) make, regenerated on each documentation build "
             "(`docs/run_tutorials.py`). Click a title to see the code behind it.", ""]
    if skip:
        lines.append("*(Tutorial outputs were skipped in this build.)*")
    titles = {}
    for path, fig in gallery:
        if path.stem not in titles:
            titles[path.stem] = _title(path)
            lines += ["", f"## [{titles[path.stem]}](tutorials/{path.stem}.md)", ""]
        caption = fig["caption"] or path.stem
        lines += [f"![{caption}](gallery/{path.stem}/{fig['file']}){{ width=\"420\" }}", ""]
    return "\n".join(lines) + "\n"


def _title(path: Path) -> str:
    for kind, text in run_tutorials.cells(path.read_text()):
        if kind == "markdown" and text.startswith("# "):
            return text.splitlines()[0][2:].strip()
    return path.stem
