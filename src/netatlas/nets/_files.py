"""Loading model files safely: torch.export archives (.pt2) and state dicts (.pt/.pth/.safetensors)
with the architecture given as a small JSON spec. No pickle is ever fully unpickled: ``torch.load``
runs with weights_only=True, and a .pt2 archive is checked member by member (``_archive``) before
torch reads it. Sizes are estimated from the spec before anything is allocated."""

from __future__ import annotations

import contextlib
import json
import logging
import zipfile
from pathlib import Path

import torch
from torch import nn

from netatlas._errors import MemoryBudgetError, ModelFileError
from netatlas._memory import check_memory, format_bytes, memory_budget
from netatlas.nets._archive import checked_pt2
from netatlas.nets._build import mlp
from netatlas.nets._ir import Net
from netatlas.nets._torch import eval_mode, from_torch
from netatlas.report import atomic_write

__all__ = ["load", "load_module", "save", "module_from_spec", "spec_parameters"]

_SPEC_LAYERS = {
    "linear": lambda d: nn.Linear(d["in"], d["out"], bias=d.get("bias", True)),
    "conv1d": lambda d: nn.Conv1d(d["in"], d["out"], d["kernel"], d.get("stride", 1), d.get("padding", 0)),
    "conv2d": lambda d: nn.Conv2d(d["in"], d["out"], d["kernel"], d.get("stride", 1), d.get("padding", 0)),
    "batchnorm1d": lambda d: nn.BatchNorm1d(d["n"]),
    "batchnorm2d": lambda d: nn.BatchNorm2d(d["n"]),
    "avgpool2d": lambda d: nn.AvgPool2d(d["kernel"], d.get("stride")),
    "flatten": lambda d: nn.Flatten(),
    "dropout": lambda d: nn.Dropout(d.get("p", 0.5)),
    "identity": lambda d: nn.Identity(),
    "relu": lambda d: nn.ReLU(),
    "leaky_relu": lambda d: nn.LeakyReLU(d.get("negative_slope", 0.01)),
    "sigmoid": lambda d: nn.Sigmoid(),
    "tanh": lambda d: nn.Tanh(),
    "gelu": lambda d: nn.GELU(),
    "softplus": lambda d: nn.Softplus(),
    "elu": lambda d: nn.ELU(),
    # a classifier head, last: kept as the Net's head (the lenses analyse the logits before it)
    "softmax": lambda d: nn.Softmax(dim=1),
    "log_softmax": lambda d: nn.LogSoftmax(dim=1),
}


def module_from_spec(spec: dict) -> nn.Sequential:
    """Build the torch module a JSON spec describes.

    Two forms are accepted::

        {"mlp": {"widths": [2, 32, 32, 1], "activation": "relu"}}
        {"layers": [{"type": "linear", "in": 2, "out": 32}, {"type": "relu"},
                    {"type": "linear", "in": 32, "out": 1}], "input_shape": [2]}

    Layer types: linear, conv1d, conv2d, batchnorm1d, batchnorm2d, avgpool2d, flatten, dropout,
    identity, relu, leaky_relu, sigmoid, tanh, gelu, softplus, elu, and last a classifier head softmax or
    log_softmax (over the classes; kept as the imported Net's ``head``). Parameter names follow the
    ``nn.Sequential`` indices, so ``module.state_dict()`` keys are "0.weight", "0.bias", ...

    Examples
    --------
    >>> module_from_spec({"mlp": {"widths": [2, 4, 1]}})
    Sequential(
      (0): Linear(in_features=2, out_features=4, bias=True)
      (1): ReLU()
      (2): Linear(in_features=4, out_features=1, bias=True)
    )
    """
    n_parameters = spec_parameters(spec)
    check_memory(n_parameters * _BYTES_PER_PARAMETER, f"the model this spec describes ({n_parameters:,} parameters)")
    if "mlp" in spec:
        return mlp(**spec["mlp"])
    return nn.Sequential(*(_SPEC_LAYERS[str(layer["type"]).lower()](layer) for layer in spec["layers"]))


# float32 module + float64 IR copy: what importing a spec'd model holds at once, per parameter
_BYTES_PER_PARAMETER = 12
_INT_FIELDS = {"in": 1, "out": 1, "kernel": 1, "n": 1, "stride": 1, "padding": 0}
_REQUIRED = {"linear": ("in", "out"), "conv1d": ("in", "out", "kernel"), "conv2d": ("in", "out", "kernel"),
             "batchnorm1d": ("n",), "batchnorm2d": ("n",), "avgpool2d": ("kernel",)}
_MLP_FIELDS = {"widths", "activation", "init", "scale", "bias", "seed", "output_activation"}


def spec_parameters(spec) -> int:
    """Check a model spec's structure and count its parameters without building anything.

    Raises ValueError (one line naming the layer and field) for a spec that is not an object with
    'mlp' or 'layers', a layer that is not an object, an unknown type, a missing field, or a size
    that is not a positive integer.

    Examples
    --------
    >>> spec_parameters({"mlp": {"widths": [2, 8, 1]}})
    33
    >>> spec_parameters({"layers": [1, 2]})
    Traceback (most recent call last):
    ...
    ValueError: model spec layer 0: expected an object like {"type": "linear", "in": 2, "out": 8}; got 1
    """
    if not isinstance(spec, dict) or not ({"mlp", "layers"} & set(spec)):
        raise ValueError(f"model spec must be a JSON object with 'mlp' or 'layers'; got {str(spec)[:200]}")
    if "mlp" in spec:
        args = spec["mlp"]
        if not isinstance(args, dict) or "widths" not in args or not set(args) <= _MLP_FIELDS:
            raise ValueError(f"model spec 'mlp' must be an object with 'widths' and optionally "
                             f"{sorted(_MLP_FIELDS - {'widths'})}; got {str(args)[:200]}")
        widths = args["widths"]
        if not isinstance(widths, list) or len(widths) < 2 or not all(_is_count(w, 1, floats=True) for w in widths):
            raise ValueError(f"model spec 'mlp': widths must be a list of at least two positive integers; "
                             f"got {str(widths)[:200]}")
        bias = args.get("bias", True) is not False
        return sum(int(a) * int(b) + (int(b) if bias else 0) for a, b in zip(widths[:-1], widths[1:], strict=False))
    layers = spec["layers"]
    if not isinstance(layers, list) or not layers:
        raise ValueError(f"model spec 'layers' must be a non-empty list of layer objects; got {str(layers)[:200]}")
    total = 0
    for i, layer in enumerate(layers):
        if not isinstance(layer, dict):
            raise ValueError(f'model spec layer {i}: expected an object like {{"type": "linear", "in": 2, '
                             f'"out": 8}}; got {str(layer)[:100]}')
        kind = str(layer.get("type", "")).lower()
        if kind not in _SPEC_LAYERS:
            raise ValueError(f"model spec layer {i}: unknown type {kind!r}; choose one of {sorted(_SPEC_LAYERS)}")
        for key in _REQUIRED.get(kind, ()):
            if key not in layer:
                raise ValueError(f"model spec layer {i} ({kind}) is missing the field {key!r}")
        for key, minimum in _INT_FIELDS.items():
            value = layer.get(key)
            if value is not None and not _is_count(value, minimum):
                raise ValueError(f"model spec layer {i} ({kind}): {key} must be an integer >= {minimum}; "
                                 f"got {value!r}")
        if kind == "linear":
            total += layer["in"] * layer["out"] + (layer["out"] if layer.get("bias", True) else 0)
        elif kind.startswith("conv"):
            total += layer["out"] * (layer["in"] * layer["kernel"] ** int(kind[4]) + 1)
        elif kind.startswith("batchnorm"):
            total += 4 * layer["n"]
    return total


def _is_count(value, minimum, floats=False) -> bool:
    # JSON writes 1e5 as a float; mlp widths go through int(), layer fields straight to torch
    whole = isinstance(value, int) and not isinstance(value, bool)
    whole = whole or (floats and isinstance(value, float) and value.is_integer())
    return whole and value >= minimum


def load_module(path, spec=None):
    """Load a model file into a torch module (eval mode); see :func:`load`.

    Returns
    -------
    (module, input_shape) : (torch.nn.Module, tuple of int or None)
    """
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".onnx":
        raise ModelFileError(f"{path}: an ONNX file has no torch module; load it as a Net with netatlas.nets.load")
    if suffix == ".pt2":
        if not zipfile.is_zipfile(path):
            raise ModelFileError(f"{path}: not a readable torch.export archive (not a zip file: truncated or "
                                 "corrupt)")
        archive = checked_pt2(path, max_bytes=memory_budget())  # before torch reads any byte of it
        try:
            with _quiet("torch.export"):  # torch logs a traceback before re-raising; we report one line
                program = torch.export.load(archive)
        except Exception as exc:
            raise ModelFileError(f"{path}: not a readable torch.export archive ({_first_line(exc)})") from None
        _refuse_complex(path, {**program.state_dict, **program.constants})
        return program, None
    if suffix not in (".pt", ".pth", ".safetensors"):
        raise ModelFileError(f"{path}: unknown model file type {suffix!r}; use .pt2 (torch.export), .onnx, or "
                             ".pt/.pth/.safetensors with a JSON architecture spec")
    spec = _read_spec(path, spec)
    try:
        n_parameters = spec_parameters(spec)
    except (ValueError, RecursionError) as exc:
        raise ModelFileError(f"{path}: bad architecture spec: {exc}") from None
    check_memory(n_parameters * _BYTES_PER_PARAMETER, f"{path}: the model its spec describes "
                 f"({n_parameters:,} parameters)")
    size = path.stat().st_size
    if size > memory_budget():
        raise MemoryBudgetError(f"{path}: the weights file is {format_bytes(size)}, over the memory budget of "
                                f"{format_bytes(memory_budget())} (NETATLAS_MEMORY_BUDGET)")
    state = _read_state_dict(path, suffix)
    try:
        module = module_from_spec(spec)
    except (ValueError, TypeError) as exc:
        raise ModelFileError(f"{path}: bad architecture spec: {exc}") from None
    if any(t.dtype == torch.float64 for t in state.values()):
        # the float64 state, module and IR copy are held at once
        check_memory(24 * n_parameters, f"{path}: the float64 model its spec describes ({n_parameters:,} parameters)")
        module = module.double()  # load_state_dict would cast into float32: 1e-150 -> 0 and 1e150 -> inf
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        problem = " ".join(str(exc).split())[:400]
        raise ModelFileError(f"{path}: weights do not fit the architecture spec ({problem})") from None
    input_shape = tuple(spec["input_shape"]) if "input_shape" in spec else None
    return module.eval(), input_shape


def load(path, spec=None) -> Net:
    """Load a model file safely and import it as a :class:`Net`.

    Parameters
    ----------
    path : str or Path
        ``.pt2`` (a ``torch.export`` archive), ``.onnx`` (see :func:`from_onnx`), or
        ``.pt``/``.pth``/``.safetensors`` (a state dict).
    spec : dict, str or Path, optional
        The architecture of a state dict (see :func:`module_from_spec`), as a dict or a JSON file.
        Defaults to the file next to ``path`` with suffix ``.json``. For ``.onnx`` it may give
        ``{"input_shape": [...]}`` for a file with symbolic input dimensions.

    Raises
    ------
    ModelFileError
        One line naming the file and the problem: missing, truncated, corrupt, not a state dict,
        or weights whose names/shapes do not fit the spec.

    Examples
    --------
    >>> import tempfile, os, netatlas
    >>> d = tempfile.mkdtemp()
    >>> netatlas.nets.save(netatlas.nets.mlp([2, 8, 1]), os.path.join(d, "m.pt2"), input_shape=(2,))
    >>> netatlas.nets.load(os.path.join(d, "m.pt2")).n_hidden_units
    8
    >>> open(os.path.join(d, "bad.pt"), "wb").write(b"junk")
    4
    >>> netatlas.nets.load(os.path.join(d, "bad.pt"), spec={"mlp": {"widths": [2, 8, 1]}})
    Traceback (most recent call last):
    ...
    netatlas._errors.ModelFileError: .../bad.pt: cannot read weights (...)
    """
    if Path(path).suffix.lower() == ".onnx":
        return _load_onnx(Path(path), spec)
    module, input_shape = load_module(path, spec)
    try:
        return from_torch(module, input_shape)
    except (RuntimeError, LookupError, TypeError, AttributeError, ArithmeticError) as exc:
        # torch refusing the shapes a spec or archive declares (a kernel larger than the input, ...);
        # UnsupportedLayerError and ValueError (an identity model, non-finite weights) pass through
        raise ModelFileError(f"{path}: cannot import the model ({_first_line(exc)})") from None


def _load_onnx(path, spec):
    from netatlas.nets._onnx import from_onnx

    if spec is None and path.with_suffix(".json").is_file():
        spec = path.with_suffix(".json")
    spec = _read_spec(path, spec) if spec is not None else {}
    if not isinstance(spec, dict):
        raise ModelFileError(f"{path}: the spec of an ONNX file must be a JSON object like "
                             f'{{"input_shape": [1, 28, 28]}}; got {type(spec).__name__}')
    return from_onnx(path, input_shape=spec.get("input_shape"))


def save(module: nn.Module, path, *, input_shape, spec: dict | None = None) -> None:
    """Save a model: ``.pt2`` as a torch.export archive; ``.pt``/``.safetensors`` as a state dict plus
    ``spec`` written to the ``.json`` file beside it. Files are written atomically (temp file + rename)."""
    path = Path(path)
    if path.suffix == ".pt2":
        with eval_mode(module):
            # a dynamic batch dimension: the saved program runs on any batch size, not only the example's 2
            program = torch.export.export(module, (torch.zeros(2, *input_shape),),
                                          dynamic_shapes=({0: torch.export.Dim("batch", min=1)},))
        atomic_write(path, lambda tmp: torch.export.save(program, str(tmp)))
        return
    if spec is None:
        raise ValueError("save: a state dict needs its architecture; pass spec={...} (see module_from_spec)")
    state = {k: v.detach().contiguous() for k, v in module.state_dict().items()}
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        atomic_write(path, lambda tmp: save_file(state, str(tmp)))
    else:
        atomic_write(path, lambda tmp: torch.save(state, tmp))
    text = json.dumps({**spec, "input_shape": list(input_shape)}, indent=2)
    atomic_write(path.with_suffix(".json"), lambda tmp: tmp.write_text(text))


def _read_spec(path, spec):
    if spec is None:
        spec = path.with_suffix(".json")
        if not spec.is_file():
            raise ModelFileError(f"{path}: a state dict needs an architecture spec; pass --spec FILE.json or "
                                 f"put it at {spec}")
    if isinstance(spec, (str, Path)):
        try:
            spec = json.loads(Path(spec).read_text())
        except (OSError, ValueError, RecursionError) as exc:  # ValueError: bad JSON or UTF-8; deep nesting
            raise ModelFileError(f"{spec}: cannot read the architecture spec ({_first_line(exc)})") from None
    return spec


def _read_state_dict(path, suffix):
    _check_members(path, "the weights file")
    try:
        if suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelFileError(f"{path}: cannot read weights ({_first_line(exc)})") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelFileError(f"{path}: expected a state dict (name -> tensor), got {type(state).__name__}")
    for name, tensor in state.items():
        if tensor.is_meta:
            raise ModelFileError(f"{path}: tensor {name!r} is a meta tensor (a shape without values); save the "
                                 "state dict of a model whose weights are materialised")
    _refuse_complex(path, state)
    return state


def _refuse_complex(path, tensors):
    for name, tensor in tensors.items():
        if isinstance(tensor, torch.Tensor) and tensor.is_complex():
            raise ModelFileError(f"{path}: tensor {name!r} is complex ({tensor.dtype}); netatlas analyses real "
                                 "networks and never drops an imaginary part")


def _check_members(path, what) -> None:
    """Refuse a zip-based file (torch.save) whose members, by their declared uncompressed sizes, would not
    fit the memory budget, before a byte is inflated; a file that is not a zip is left to its reader."""
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return
    # torch holds each member once; a compressed one also passes through an inflated buffer
    held = sum(i.file_size * (2 if i.compress_type != zipfile.ZIP_STORED else 1) for i in infos)
    inflated = sum(i.file_size for i in infos)
    check_memory(held, f"{path}: {what} ({inflated / 1e6:.1f} MB inflated from {Path(path).stat().st_size / 1e6:.1f} "
                       "MB on disk)")


@contextlib.contextmanager
def _quiet(logger_name):
    logger = logging.getLogger(logger_name)
    previous = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(previous)


def _first_line(exc):
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:300]}" if text else type(exc).__name__
