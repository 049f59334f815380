"""What is analysed: the network IR, importers from torch, builders and model files.

Every lens takes a :class:`Net` (or a torch module, imported with :func:`from_torch`)."""

from netatlas._lazy import attach as _attach

# Names are imported from their module on first use (see netatlas._lazy).
__getattr__, __dir__ = _attach(__name__, {
    "_build": ["ACTIVATIONS", "INITS", "mlp"],
    "_files": ["load", "load_module", "module_from_spec", "save"],
    "_ir": ["PIECEWISE_LINEAR", "SMOOTH", "Activation", "Net", "Node"],
    "_torch": ["SUPPORTED_LAYERS", "from_torch"],
})

__all__ = [
    "ACTIVATIONS",
    "INITS",
    "PIECEWISE_LINEAR",
    "SMOOTH",
    "SUPPORTED_LAYERS",
    "Activation",
    "Net",
    "Node",
    "from_torch",
    "load",
    "load_module",
    "mlp",
    "module_from_spec",
    "save",
]
