"""Deprecations kept for one release: renamed keyword arguments and renamed or moved public names.

Both warn with ``DeprecationWarning`` at the caller's line and then behave exactly as the new spelling."""

from __future__ import annotations

import functools
import inspect
import warnings

__all__ = ["renamed", "warn_moved"]


def renamed(**old_to_new: str):
    """Decorate a function whose keyword arguments were renamed: ``@renamed(model="net", x="points")``.

    A call with an old keyword warns once per call (``DeprecationWarning``) and passes the value under the
    new name; giving both spellings is a ``TypeError``. Positional calls are untouched.

    Examples
    --------
    >>> @renamed(model="net")
    ... def depth(net, *, scale=1):
    ...     return len(net) * scale
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     depth(model=[1, 2])
    2
    >>> str(caught[0].message)
    "depth: the argument 'model' is now called 'net'; 'model=' stops working in the next release"
    """

    def decorate(function):
        names = inspect.signature(function).parameters
        missing = [new for new in old_to_new.values() if new not in names]
        if missing:  # a bug in netatlas: the new names must be the function's own
            raise AssertionError(f"renamed: {function.__qualname__} has no argument {missing}")

        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            for old, new in old_to_new.items():
                if old in kwargs:
                    if new in kwargs:
                        raise TypeError(f"{function.__name__}: got both {old!r} (the old name) and {new!r}; "
                                        f"pass {new!r} only")
                    warnings.warn(f"{function.__name__}: the argument {old!r} is now called {new!r}; "
                                  f"'{old}=' stops working in the next release", DeprecationWarning, stacklevel=2)
                    kwargs[new] = kwargs.pop(old)
            return function(*args, **kwargs)

        return wrapper

    return decorate


def warn_moved(old: str, new: str) -> None:
    """Warn that the public name ``old`` is deprecated in favour of ``new`` (both spelled as users import them).

    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     warn_moved("netatlas.dynamics.torch_threads", "netatlas.threads")
    >>> caught[0].category.__name__
    'DeprecationWarning'
    """
    warnings.warn(f"{old} is deprecated and will be removed in the next release; use {new}",
                  DeprecationWarning, stacklevel=3)
