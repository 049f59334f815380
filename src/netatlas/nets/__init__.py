"""What is analysed: the network IR, importers from torch and ONNX, builders and model files.

Every lens takes a :class:`Net` (or a torch module, imported with :func:`from_torch`)."""

from netatlas.nets._build import ACTIVATIONS, INITS, mlp
from netatlas.nets._files import load, load_module, module_from_spec, save
from netatlas.nets._ir import PIECEWISE_LINEAR, SMOOTH, Activation, AdaptiveAvgPool, Concat, Max, Net, Node
from netatlas.nets._onnx import SUPPORTED_ONNX_OPS, from_onnx
from netatlas.nets._torch import SUPPORTED_LAYERS, from_torch

__all__ = [
    "ACTIVATIONS",
    "INITS",
    "PIECEWISE_LINEAR",
    "SMOOTH",
    "SUPPORTED_LAYERS",
    "SUPPORTED_ONNX_OPS",
    "Activation",
    "AdaptiveAvgPool",
    "Concat",
    "Max",
    "Net",
    "Node",
    "from_onnx",
    "from_torch",
    "load",
    "load_module",
    "mlp",
    "module_from_spec",
    "save",
]
