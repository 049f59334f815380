"""What is analysed: the network IR, importers from torch and ONNX, builders and model files.

Every lens takes a :class:`Net` (or a torch module, imported with :func:`from_torch`): :func:`as_net` is
the one way in. The IR's op classes (:class:`Input`, :class:`Linear`, :class:`Conv`, :class:`ChannelAffine`,
:class:`AvgPool`, :class:`AdaptiveAvgPool`, :class:`Pad`, :class:`Add`, :class:`Concat`, :class:`Max`,
:class:`Activation`) are public: lenses dispatch on them by type."""

from netatlas._lazy import attach as _attach

# Names are imported from their module on first use (see netatlas._lazy).
__getattr__, __dir__ = _attach(__name__, {
    "_build": ["ACTIVATIONS", "INITS", "mlp"],
    "_convert": ["as_net"],
    "_files": ["load", "load_module", "module_from_spec", "save"],
    "_ir": ["PIECEWISE_LINEAR", "SMOOTH", "Activation", "AdaptiveAvgPool", "Add", "AvgPool", "ChannelAffine", "Concat",
        "Conv", "GatherLinear", "Head", "Input", "Linear", "LocalResponseNorm", "Max", "Net", "Node", "Normalize",
        "Pad"],
    "_onnx": ["SUPPORTED_ONNX_OPS", "from_onnx"],
    "_torch": ["SUPPORTED_LAYERS", "from_torch"],
})

__all__ = [
    "ACTIVATIONS",
    "INITS",
    "PIECEWISE_LINEAR",
    "SMOOTH",
    "SUPPORTED_LAYERS",
    "SUPPORTED_ONNX_OPS",
    "Activation",
    "AdaptiveAvgPool",
    "Add",
    "AvgPool",
    "ChannelAffine",
    "Concat",
    "Conv",
    "GatherLinear",
    "Head",
    "Input",
    "Linear",
    "LocalResponseNorm",
    "Max",
    "Net",
    "Node",
    "Normalize",
    "Pad",
    "as_net",
    "from_onnx",
    "from_torch",
    "load",
    "load_module",
    "mlp",
    "module_from_spec",
    "save",
]
