"""Errors raised by netatlas: every class lives here and is exported from ``netatlas``.

Hierarchy::

    NetatlasError                 base of every domain error (the CLI prints these without a traceback)
    ├── UnsupportedLayerError     a layer/op the IR (or a lens) cannot represent exactly
    ├── ModelFileError            a model file that is missing, truncated, corrupt or of the wrong shape
    ├── DataFileError             a data file that cannot be read as labelled samples (also a ValueError)
    ├── DegenerateSliceError      a plane or line whose directions are zero or parallel (also a ValueError)
    ├── PrecisionError            a result float64 cannot give exactly (beyond its range or resolution)
    ├── MemoryBudgetError         a model or computation estimated to need more memory than the budget
    ├── RegionLimitError          a partition estimated (or found) to exceed max_regions or the memory budget
    ├── RunFailedError            a command ran but part of its work failed or nothing was measured
    ├── ResumeRefusedError        a run folder that cannot be resumed with these settings (also a ValueError)
    └── ConfigError               a playground setting or upload that is refused (also a ValueError)

Wrong kinds of objects raise ``TypeError`` and wrong values or shapes ``ValueError``, as usual. The
classes marked "also a ValueError" are bad values of a kind that callers caught as ``ValueError`` before
they had a class of their own; they still are.
"""

__all__ = ["NetatlasError", "UnsupportedLayerError", "ModelFileError", "DataFileError", "DegenerateSliceError",
           "MemoryBudgetError", "RegionLimitError", "RunFailedError", "ResumeRefusedError", "ConfigError",
           "PrecisionError"]


class NetatlasError(Exception):
    """Base class of netatlas's own errors."""


class UnsupportedLayerError(NetatlasError):
    """A layer or op that netatlas cannot represent exactly (never approximated silently)."""


class ModelFileError(NetatlasError):
    """A model file that cannot be loaded; the message names the file and the problem."""


class DataFileError(NetatlasError, ValueError):
    """A data file that cannot be loaded; the message names the file and the problem. A ValueError too,
    as data files were refused with ValueError before this class existed."""


class DegenerateSliceError(NetatlasError, ValueError):
    """A slice of input space whose directions are zero or parallel (or, where orthonormal directions
    are required, not orthonormal). A ``ValueError`` too, so ``except ValueError`` still catches it."""


class PrecisionError(NetatlasError):
    """A result that float64 cannot give exactly here (values beyond its range, or details below the
    resolution the computation works at), refused rather than approximated; the message says why and
    what would work."""


class MemoryBudgetError(NetatlasError):
    """A model or computation whose estimated size exceeds the memory budget (``NETATLAS_MEMORY_BUDGET``),
    refused before anything is allocated."""


class RegionLimitError(NetatlasError):
    """A partition would exceed ``max_regions`` or the memory budget (raised with the estimate, before the
    run, or as soon as the run passes the limit); the message names the options that allow more."""


class RunFailedError(NetatlasError):
    """A command that ran but did not do all it should: failed sweep configs (how many, and the first
    cause) or nothing measured. Its run directory is marked failed; the CLI exits 1."""


class ResumeRefusedError(NetatlasError, ValueError):
    """A run folder (``--out``) that holds something this run cannot resume: another command, other
    settings, files that are not a run, tiles of another model. Nothing in it has been changed, and the
    CLI does not mark it failed. ``path`` is the folder that was refused."""

    def __init__(self, message: str, path=None):
        super().__init__(message)
        self.path = path


class ConfigError(NetatlasError, ValueError):
    """A setting or upload the playground rejects; ``field`` names the control it belongs to. A
    ``ValueError`` too, so ``except ValueError`` still catches it."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
