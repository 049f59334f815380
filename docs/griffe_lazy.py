"""A Griffe extension so that the API reference sees netatlas's lazily exported names.

Packages export their public names with ``__getattr__, __dir__ = _attach(__name__, {"_module": [names]})``
(``netatlas._lazy``), which static analysis cannot follow. This extension reads that call's literal
mapping and adds each name to the package as an alias of ``package._module.name`` — exactly what an
``from ._module import name`` would have produced — so ``::: netatlas.regions`` documents
``netatlas.regions.partition`` and cross-references to it resolve.
"""

from __future__ import annotations

import ast

import griffe


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
