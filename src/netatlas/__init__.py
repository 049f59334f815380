"""netatlas: map what a neural network does to its input space.

Lenses live in subpackages, imported on first use::

    import netatlas
    net = netatlas.nets.from_torch(model)          # one IR for every lens
    part = netatlas.regions.partition(net, netatlas.Plane.square(1.0))

Subpackages: ``nets`` (IR, import, builders), ``regions`` (exact linear regions), ``metric``
(Riemannian metric), ``splines`` (shallow univariate ReLU nets), ``lowrank`` (local geometric
analysis), ``dynamics`` (training in regions), ``data``, ``train``, ``report``, ``sweep``; paper
studies and reproductions in ``experiments.<paper>``.
"""

from netatlas._errors import (
    ConfigError,
    DataFileError,
    DegenerateSliceError,
    MemoryBudgetError,
    ModelFileError,
    NetatlasError,
    PrecisionError,
    RegionLimitError,
    ResumeRefusedError,
    RunFailedError,
    UnsupportedLayerError,
)
from netatlas._lazy import attach as _attach

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "DataFileError",
    "DegenerateSliceError",
    "Line",
    "MemoryBudgetError",
    "ModelFileError",
    "NetatlasError",
    "Plane",
    "PrecisionError",
    "RegionLimitError",
    "ResumeRefusedError",
    "RunFailedError",
    "UnsupportedLayerError",
    "Volume",
    "__version__",
]

# Subpackages (and Plane/Line/Volume) load on first use: `import netatlas` imports no torch, numba, matplotlib
# or Dask.
__getattr__, __dir__ = _attach(__name__, {"slices": ["Line", "Plane", "Volume"]}, submodules=(
    "nets", "regions", "metric", "splines", "lowrank", "dynamics", "data", "train", "report", "sweep",
    "experiments", "slices", "app"))
