"""Lazy package attributes (PEP 562): a package names what it exports and from which private module,
and the module is imported on first access. This keeps ``import netatlas.<lens>`` and every
``netatlas COMMAND --help`` free of torch, numba, matplotlib and Dask until a name is actually used."""

from __future__ import annotations

import importlib
import sys

__all__ = ["attach"]


def attach(package: str, exports: dict[str, list[str]], submodules: tuple[str, ...] = (),
           deprecated: dict[str, tuple[str, str, str]] | None = None):
    """Return ``(__getattr__, __dir__)`` for ``package`` that import each exported name on first use.

    Parameters
    ----------
    package : str
        The package's ``__name__``.
    exports : dict of str to list of str
        ``{"_module": ["name", ...]}``: each name is read from ``package._module`` (a key that starts
        with ``netatlas.`` is an absolute module name).
    submodules : tuple of str
        Public submodules reachable as attributes (``package.sub``).
    deprecated : dict of str to (module, name, replacement), optional
        Names kept for one release: reading one warns (``DeprecationWarning``, naming ``replacement``) and
        returns ``name`` from ``module`` (absolute). They are not in ``__dir__``.

    Examples
    --------
    >>> getattr_, dir_ = attach("netatlas", {"_errors": ["NetatlasError"]})
    >>> getattr_("NetatlasError").__name__
    'NetatlasError'
    """
    deprecated = deprecated or {}
    where = {name: module for module, names in exports.items() for name in names}
    public = sorted(set(where) | set(submodules))

    def __getattr__(name: str):
        if name in where:
            module = where[name]
            module = module if module.startswith("netatlas.") else f"{package}.{module}"
            value = getattr(importlib.import_module(module), name)
        elif name in submodules:
            value = importlib.import_module(f"{package}.{name}")
        elif name in deprecated:
            from netatlas._deprecate import warn_moved

            module, attribute, replacement = deprecated[name]
            warn_moved(f"{package}.{name}", replacement)
            return getattr(importlib.import_module(module), attribute)  # not cached: every use warns
        else:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        vars(sys.modules[package])[name] = value  # cache: the next access is a plain attribute read
        return value

    def __dir__():
        return sorted(set(vars(sys.modules[package])) | set(public))

    return __getattr__, __dir__

