"""Errors raised by netatlas.

Hierarchy::

    NetatlasError                 base of every domain error (the CLI prints these without a traceback)
    ├── UnsupportedLayerError     a layer/op the IR (or a lens) cannot represent exactly
    ├── ModelFileError            a model file that is missing, truncated, corrupt or of the wrong shape
    ├── DataFileError             a data file that cannot be read as labelled samples (also a ValueError)
    ├── DegenerateSliceError      a plane or line whose directions are zero or parallel
    ├── PrecisionError            a result float64 cannot give exactly (beyond its range or resolution)
    ├── MemoryBudgetError         a model or computation estimated to need more memory than the budget
    ├── RunFailedError            a command ran but part of its work failed or nothing was measured
    └── ResumeRefusedError        (also a ValueError) a run folder that cannot be resumed with these settings

Wrong kinds of objects raise ``TypeError`` and wrong values or shapes ``ValueError``, as usual.
"""

__all__ = ["NetatlasError", "UnsupportedLayerError", "ModelFileError", "DataFileError", "DegenerateSliceError",
           "MemoryBudgetError", "RunFailedError", "ResumeRefusedError", "PrecisionError"]


class NetatlasError(Exception):
    """Base class of netatlas's own errors."""


class UnsupportedLayerError(NetatlasError):
    """A layer or op that netatlas cannot represent exactly (never approximated silently)."""


class ModelFileError(NetatlasError):
    """A model file that cannot be loaded; the message names the file and the problem."""


class DataFileError(NetatlasError, ValueError):
    """A data file that cannot be loaded; the message names the file and the problem. A ValueError too,
    as data files were refused with ValueError before this class existed."""


class DegenerateSliceError(NetatlasError):
    """A slice of input space whose directions are zero or parallel."""


class PrecisionError(NetatlasError):
    """A result that float64 cannot give exactly here (values beyond its range, or details below the
    resolution the computation works at), refused rather than approximated; the message says why and
    what would work."""


class MemoryBudgetError(NetatlasError):
    """A model or computation whose estimated size exceeds the memory budget (``NETATLAS_MEMORY_BUDGET``),
    refused before anything is allocated."""


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
