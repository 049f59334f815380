"""netatlas: map what a neural network does to its input space.

Lenses live in subpackages, imported on first use::

    import netatlas
    net = netatlas.nets.from_torch(model)          # one IR for every lens
    part = netatlas.regions.partition(net, netatlas.Plane.square(1.0))

Subpackages: ``nets`` (IR, import, builders), ``regions`` (exact linear regions), ``metric``
(Riemannian metric), ``splines`` (shallow univariate ReLU nets), ``lowrank`` (local geometric
analysis), ``dynamics`` (training in regions), ``data``, ``train``, ``report``, ``sweep``.
"""

import importlib

from netatlas._errors import (
    DegenerateSliceError,
    MemoryBudgetError,
    ModelFileError,
    NetatlasError,
    UnsupportedLayerError,
)
from netatlas.slices import Line, Plane

__version__ = "0.1.0"

__all__ = [
    "DegenerateSliceError",
    "Line",
    "MemoryBudgetError",
    "ModelFileError",
    "NetatlasError",
    "Plane",
    "UnsupportedLayerError",
    "__version__",
]

_SUBMODULES = frozenset(
    {"nets", "regions", "metric", "splines", "lowrank", "dynamics", "data", "train", "report", "sweep",
     "experiments", "plot"}
)


def __getattr__(name):
    # Lazy subpackages keep `import netatlas` fast (no matplotlib/dask at import time).
    if name in _SUBMODULES:
        return importlib.import_module(f"netatlas.{name}")
    raise AttributeError(f"module 'netatlas' has no attribute {name!r}")
