"""Griffe extensions for netatlas's API reference (loaded by mkdocs.yml).

- :class:`LazyExports`: packages export their public names with
  ``__getattr__, __dir__ = _attach(__name__, {"_module": [names]})`` (``netatlas._lazy``), which static
  analysis cannot follow. This reads that call's literal mapping and adds each name to the package as an
  alias of ``package._module.name`` — what ``from ._module import name`` would have produced — so
  ``::: netatlas.regions`` documents ``netatlas.regions.partition`` and cross-references resolve.
- :class:`ReadableDocstrings`: doctest lines outside a NumPy ``Examples`` section (in a module's or a
  function's description) become fenced code, instead of Markdown block quotes; and a module-level
  constant's ``#`` comment right above it becomes its docstring (other undocumented names are not
  rendered: a class's dataclass fields are described in its ``Attributes`` table instead).
"""

from __future__ import annotations

import ast
import re

import griffe

_SECTION = re.compile(r"^\s*-{3,}\s*$")


class LazyExports(griffe.Extension):
    def on_module_members(self, *, node, mod, agent, **kwargs) -> None:
        if not isinstance(node, ast.Module):
            return
        for statement in node.body:
            call = getattr(statement, "value", None)
            if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name)
                    and call.func.id in ("attach", "_attach") and len(call.args) >= 2):
                continue
            exports = ast.literal_eval(call.args[1])
            for module, names in exports.items():
                target = module if module.startswith("netatlas.") else f"{mod.path}.{module}"
                for name in names:
                    if name not in mod.members:
                        mod.set_member(name, griffe.Alias(name, f"{target}.{name}", parent=mod))


class ReadableDocstrings(griffe.Extension):
    def on_object(self, *, obj, **kwargs) -> None:
        if obj.docstring is not None:
            obj.docstring.value = fence_doctests(obj.docstring.value)

    def on_package(self, *, pkg, **kwargs) -> None:
        for module in _modules(pkg):
            for attribute in module.members.values():
                if not attribute.is_alias and attribute.is_attribute and attribute.docstring is None:
                    # A module constant is documented by the comment above it, else by its value alone.
                    comment = _comment_above(module.lines, attribute.lineno) or "A constant: see its value."
                    attribute.docstring = griffe.Docstring(comment, parent=attribute)


def _modules(module):
    yield module
    for member in list(module.members.values()):
        if not member.is_alias and member.is_module:
            yield from _modules(member)


def _comment_above(lines: list[str], lineno: int | None) -> str:
    """The ``#`` comment lines right above line ``lineno`` (1-based), as text."""
    if not lineno:
        return ""
    i, text = lineno - 2, []
    while i >= 0 and lines[i].lstrip().startswith("#"):
        text.insert(0, lines[i].lstrip()[1:].lstrip(":").strip())  # "# text" or Sphinx "#: text"
        i -= 1
    return " ".join(text)


def fence_doctests(text: str) -> str:
    """Wrap each run of doctest lines (``>>>`` up to the next blank line) in a ```` ```pycon ```` fence,
    except inside an ``Examples`` section (the NumPy parser renders those itself)."""
    lines, out, i, section = text.split("\n"), [], 0, None
    while i < len(lines):
        line = lines[i]
        if i + 1 < len(lines) and line.strip() and _SECTION.match(lines[i + 1]):
            section = line.strip()
        if line.lstrip().startswith(">>>") and section != "Examples":
            indent = line[: len(line) - len(line.lstrip())]
            j = i
            while j < len(lines) and lines[j].strip():
                j += 1
            out += [f"{indent}```pycon", *lines[i:j], f"{indent}```"]
            i = j
            continue
        out.append(line)
        i += 1
    return "\n".join(out)
