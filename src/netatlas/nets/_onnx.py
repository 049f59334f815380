"""Import ONNX models into the IR by reading the graph with the ``onnx`` package (no runtime).

Every graph value is either a *constant* (initializers, Constant nodes, and anything computed from
constants only, such as the Shape -> Gather -> Unsqueeze -> Concat chains exporters emit for
reshapes; these are folded here with NumPy) or a *value* that depends on the input, tracked as in
the torch importer: (IR node index, per-sample shape), with the batch always on axis 0.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from netatlas._errors import MemoryBudgetError, ModelFileError, NetatlasError, UnsupportedLayerError
from netatlas._memory import check_memory
from netatlas.nets._ir import Activation, Add, ChannelAffine, GatherLinear, LocalResponseNorm, Net, Node, _f64
from netatlas.nets._lowering import Builder, HeadValue, prune_and_fold
from netatlas.nets._onnx_patterns import fuse_torch_patterns

__all__ = ["from_onnx", "SUPPORTED_ONNX_OPS"]

SUPPORTED_ONNX_OPS = (
    "Gemm (transA=0), MatMul (by a constant), Add/Sub/Mul/Div (by a constant, or Add/Sub of two values), Sum/Mean, "
    "Conv (1-D/2-D/3-D, any padding), ConvTranspose (1-D/2-D/3-D, explicit pads), BatchNormalization (inference), "
    "Relu, LeakyRelu, PRelu (one slope, or one per channel), Sigmoid, Tanh, Erf, Gelu (and its Erf decomposition), "
    "Softplus, Elu, Selu, Exp, Sqrt, Softsign (and torch's x / (1 + |x|)), HardSigmoid, Shrink (bias = lambd), "
    "Clip (scalar bounds), Abs, Max/Min (of values and constants), Neg, LRN (odd size; and torch's export of "
    "LocalResponseNorm), InstanceNormalization, LayerNormalization, "
    "Identity, Dropout (inference), Cast, MaxPool (1-D/2-D/3-D), GlobalMaxPool, ReduceMax, AveragePool "
    "(1-D/2-D/3-D; asymmetric padding only with ceil_mode=0), "
    "Pad (constant, reflect, edge, wrap), GlobalAveragePool, ReduceMean and ReduceSum (any axes but the batch), "
    "Concat (of values), Split, Slice, Tile, "
    "Expand, Gather (constant indices), Flatten, Reshape/Squeeze/Unsqueeze/Transpose (batch kept on axis 0), a final "
    "Softmax/LogSoftmax (kept as the head), and ops on constants only (Shape, Gather, Unsqueeze, Concat, Slice, Cast, "
    "...)"
)

_ACTIVATIONS = {
    "Relu": lambda a: Activation("relu"),
    "LeakyRelu": lambda a: Activation("leaky_relu", {"negative_slope": float(a.get("alpha", 0.01))}),
    "Sigmoid": lambda a: Activation("sigmoid"),
    "Tanh": lambda a: Activation("tanh"),
    "Erf": lambda a: Activation("erf"),
    # ONNX Softplus is log(1 + exp(x)) with no threshold; float64 exp overflows only past 709.
    "Softplus": lambda a: Activation("softplus", {"beta": 1.0, "threshold": 700.0}),
    "Elu": lambda a: Activation("elu", {"alpha": float(a.get("alpha", 1.0))}),
}
_RANDOM_OPS = {"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Bernoulli", "Multinomial"}
# Control flow runs a subgraph a data-dependent number of times (a Loop with trip count 1e15 would be
# folded for ever); netatlas's nets are straight-line graphs, so these are refused by name, unread.
_CONTROL_FLOW = {"Loop", "If", "Scan", "SequenceMap"}
_WEIGHT_OPS = ("Gemm", "MatMul", "Conv", "ConvTranspose")
# Multiply-adds allowed to fold one constant node (a few seconds of NumPy): exporters' constant subgraphs
# are shape arithmetic and weight reshuffles, far below it; a crafted 10^4 x 10^4 MatMul chain is not.
_FOLD_STEPS = 10**9


def from_onnx(path_or_model, *, input_shape=None) -> Net:
    """Import an ONNX model (a file or an ``onnx.ModelProto``) into the netatlas IR.

    The graph is read with the ``onnx`` package and rebuilt from the IR's ops (weights become float64);
    nothing is executed. Eval-mode BatchNormalization is folded into the layer before it, as in
    :func:`from_torch`.

    Parameters
    ----------
    path_or_model : str, Path, bytes or onnx.ModelProto
        A ``.onnx`` file, its contents, or a loaded model with one input and one output; axis 0 of the
        input is the batch.
    input_shape : tuple of int, optional
        Per-sample input shape, e.g. ``(1, 28, 28)``. Needed when the file leaves some input dimension
        (other than the batch) symbolic; otherwise read from the file (and checked against it if given).

    Returns
    -------
    Net
        ``net(x)`` maps (B, *input_shape) to (B, n_outputs) in float64.

    Raises
    ------
    ModelFileError
        The file is missing, truncated or not a valid ONNX model (one line).
    UnsupportedLayerError
        An op the IR cannot represent exactly; the message names the op type and node, and lists
        ``SUPPORTED_ONNX_OPS``.

    Examples
    --------
    >>> import numpy as np, onnx
    >>> from onnx import helper, numpy_helper, TensorProto
    >>> W = numpy_helper.from_array(np.array([[1.0, -1.0], [2.0, 0.5]], dtype=np.float32), "W")
    >>> graph = helper.make_graph(
    ...     [helper.make_node("Gemm", ["x", "W"], ["h"], transB=1), helper.make_node("Relu", ["h"], ["y"])],
    ...     "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 2])],
    ...     [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 2])], initializer=[W])
    >>> net = from_onnx(helper.make_model(graph))
    >>> net(np.array([[1.0, 2.0]]))
    array([[0., 3.]])
    """
    onnx = _import_onnx()
    model = _read_model(onnx, path_or_model)
    try:
        return _Importer(onnx, model, input_shape).run()
    except (ModelFileError, MemoryBudgetError) as exc:
        if isinstance(path_or_model, (str, Path)):  # name the file, as every loader's error does
            raise type(exc)(f"{path_or_model}: {exc}") from None
        raise
    except NetatlasError:
        raise
    except ValueError as exc:
        if str(exc).startswith(_OWN_MESSAGES):  # a wrong input_shape, a model in training mode, ...
            raise
        raise ModelFileError(f"{_where(path_or_model)}: cannot import the ONNX graph ({_first_line(exc)})") from None
    except (ArithmeticError, LookupError, TypeError, AttributeError, RuntimeError, MemoryError) as exc:
        # NumPy/torch refusing what a crafted graph asks (RecursionError is a RuntimeError): the file's fault
        raise ModelFileError(f"{_where(path_or_model)}: cannot import the ONNX graph ({_first_line(exc)})") from None


_OWN_MESSAGES = ("from_onnx", "from_torch", "Net")


def _where(source):
    return str(source) if isinstance(source, (str, Path)) else "ONNX model"


def _import_onnx():
    try:
        import onnx
    except ImportError:
        raise ImportError("reading .onnx files needs the onnx package: pip install onnx") from None
    return onnx


def _read_model(onnx, source):
    if isinstance(source, onnx.ModelProto):
        model, where = source, "ONNX model"
    elif isinstance(source, (bytes, bytearray)):
        where = "ONNX bytes"
        try:
            model = onnx.load_from_string(bytes(source))
        except Exception as exc:
            raise ModelFileError(f"{where}: not a readable ONNX model (truncated or corrupt: {_first_line(exc)})") \
                from None
    else:
        path = Path(source)
        if not path.is_file():
            raise ModelFileError(f"{path}: no such file")
        where = str(path)
        # the file's bytes and the parsed protobuf are held together while it is read
        check_memory(2 * path.stat().st_size, f"{path}: reading the ONNX file")
        try:
            model = onnx.load(str(path))
        except Exception as exc:
            raise ModelFileError(f"{path}: not a readable ONNX model (truncated or corrupt: {_first_line(exc)})") \
                from None
    try:
        onnx.checker.check_model(model)
    except Exception as exc:
        raise ModelFileError(f"{where}: not a valid ONNX model ({_first_line(exc)})") from None
    return model


def _first_line(exc):
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:300]}" if text else type(exc).__name__


def _unsupported(node, what=None, hint=""):
    where = f"node {node.name!r}" if node.name else f"the node computing {node.output[0]!r}"
    what = what or f"ONNX op {node.op_type}"
    return UnsupportedLayerError(f"{what} ({where}) is not supported; {hint}supported: {SUPPORTED_ONNX_OPS}")


class _Value:
    """An input-dependent tensor: the IR node holding it and its per-sample shape."""

    __slots__ = ("index", "shape")

    def __init__(self, index, shape):
        self.index, self.shape = index, tuple(int(s) for s in shape)

    @property
    def pair(self):
        return (self.index, self.shape)


class _Compare:
    """``Greater(value, constant)``: only used as the condition of torch's Softplus threshold Where."""

    def __init__(self, value, threshold):
        self.value, self.threshold = value, threshold


class _Importer:
    def __init__(self, onnx, model, input_shape):
        from onnx import numpy_helper

        self.onnx, self.graph = onnx, model.graph
        self.to_array = lambda t: np.array(numpy_helper.to_array(t))  # a writable copy (torch warns otherwise)
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)
        self._refuse_control_flow(onnx)
        self.env = {init.name: self._initializer(init) for init in self.graph.initializer}
        inputs = [i for i in self.graph.input if i.name not in self.env]
        if len(inputs) != 1 or len(self.graph.output) != 1:
            raise UnsupportedLayerError(f"from_onnx: the graph has {len(inputs)} inputs and {len(self.graph.output)} "
                                        "outputs; netatlas imports models with one input and one output")
        self.input_name = inputs[0].name
        elem_type = inputs[0].type.tensor_type.elem_type
        if elem_type in (onnx.TensorProto.COMPLEX64, onnx.TensorProto.COMPLEX128):
            raise UnsupportedLayerError(f"from_onnx: the input {self.input_name!r} is complex; netatlas analyses "
                                        "real networks of real inputs")
        shape = self._input_shape(inputs[0], input_shape)
        # every pass through the net holds at least one float64 sample of the input (the shape probes too)
        check_memory(8 * math.prod(shape), f"from_onnx: the input {self.input_name!r} of per-sample shape {shape} "
                                           f"({math.prod(shape):,} values per sample)")
        self.builder = Builder(shape, SUPPORTED_ONNX_OPS)
        self.env[self.input_name] = _Value(0, shape)
        self.uses = {}
        for node in self.graph.node:
            for name in node.input:
                self.uses[name] = self.uses.get(name, 0) + 1

    def _refuse_control_flow(self, onnx):
        for node in self.graph.node:
            graphs = [a.name for a in node.attribute if a.type in (onnx.AttributeProto.GRAPH,
                                                                   onnx.AttributeProto.GRAPHS)]
            if node.op_type in _CONTROL_FLOW or graphs:
                torch_if = ("torch.onnx.export(..., dynamo=False) writes an If where it cannot prove a squeezed "
                            "dimension is 1 (nn.LocalResponseNorm, for one): export with dynamo=True; "
                            if node.op_type == "If" else "")
                raise _unsupported(node, f"ONNX control flow {node.op_type}",
                                   hint="netatlas imports straight-line graphs and never runs loops or branches "
                                        f"of a file; export the model with its control flow unrolled; {torch_if}")

    def _initializer(self, tensor):
        dtype = self.onnx.helper.tensor_dtype_to_np_dtype(tensor.data_type)
        check_memory(math.prod(tensor.dims) * dtype.itemsize, f"from_onnx: the initializer {tensor.name!r} of "
                                                              f"shape {tuple(tensor.dims)}")
        if np.issubdtype(dtype, np.complexfloating):
            raise ModelFileError(f"ONNX graph: the initializer {tensor.name!r} is complex ({dtype}); netatlas "
                                 "analyses real networks and never drops an imaginary part")
        return self.to_array(tensor)

    def _input_shape(self, info, given):
        dims = info.type.tensor_type.shape.dim
        declared = [d.dim_value if d.HasField("dim_value") else None for d in dims]
        names = [d.dim_param or "?" for d in dims]
        # The batch size is folded into Shape chains (the file's own, or 2 when it is symbolic); a reshape
        # is accepted when it keeps that size on axis 0 and the per-sample size unchanged.
        self.batch = declared[0] if declared and declared[0] else 2
        if given is not None:
            given = tuple(int(s) for s in given)
            known = declared[1:]
            if known and (len(known) != len(given)
                          or any(k is not None and k != g for k, g in zip(known, given, strict=True))):
                raise ValueError(f"from_onnx: input_shape={given} does not fit the file's input "
                                 f"{info.name!r} of shape {_show_dims(declared, names)} (batch first)")
            return given
        if len(declared) < 2:
            raise ValueError(f"from_onnx: the input {info.name!r} has shape {_show_dims(declared, names)}; netatlas "
                             "needs (batch, ...); pass input_shape")
        if any(d is None for d in declared[1:]):
            raise ValueError(f"from_onnx: the input {info.name!r} has symbolic dimensions "
                             f"{_show_dims(declared, names)}; pass input_shape (the per-sample shape, without "
                             "the batch), e.g. input_shape=(1, 28, 28); on the command line put "
                             "{\"input_shape\": [1, 28, 28]} in MODEL.json beside the file or pass --spec FILE.json")
        return tuple(declared[1:])

    def run(self) -> Net:
        constants = dict(self.env)
        for node in fuse_torch_patterns(self.graph.node, constants, self.uses):
            self._node(node)
        out = self.env.get(self.graph.output[0].name)
        if not isinstance(out, (_Value, HeadValue)):
            raise UnsupportedLayerError("from_onnx: the graph output does not depend on the input")
        # a file that only reshapes or permutes its input (or only applies a head) is the identity map of
        # its input: one explicit identity node gives the Net a layer (the IR drops reshapes)
        if isinstance(out, _Value) and out.index == 0:
            out = self._identity(out)
        elif isinstance(out, HeadValue) and out.value[0] == 0:
            out = HeadValue(self._identity(_Value(*out.value)).pair, out.name)
        nodes = self.builder.finish(out.pair if isinstance(out, _Value) else out)
        return prune_and_fold(_merge_affine_chains(nodes), self.builder.head)

    def _identity(self, value):
        op = ChannelAffine(torch.ones(1, dtype=torch.float64), torch.zeros(1, dtype=torch.float64), value.shape)
        return _Value(*self.builder.add(op, [value.pair], "identity"))

    # -- dispatch ---------------------------------------------------------------------------------
    def _node(self, node):
        if node.domain not in ("", "ai.onnx"):
            raise _unsupported(node, f"ONNX op {node.domain}.{node.op_type}")
        for name in node.input:
            if name and name not in self.env:
                raise ModelFileError(f"ONNX graph: node {node.name!r} reads {name!r}, which nothing produces")
        inputs = [self.env[name] if name else None for name in node.input]
        attrs = {a.name: self.onnx.helper.get_attribute_value(a) for a in node.attribute}
        if any(isinstance(v, HeadValue) for v in inputs):
            raise _unsupported(node, f"ONNX {node.op_type} of the output of a Softmax/LogSoftmax",
                               hint="a softmax is supported only as the model's final head; ")
        if node.op_type in _RANDOM_OPS:
            raise _unsupported(node, f"random ONNX op {node.op_type}")
        if node.op_type == "Constant":
            outputs = [self._constant(node, attrs)]
        elif all(not isinstance(v, (_Value, _Compare)) for v in inputs if v is not None):
            try:
                n_values = _folded_size(node.op_type, inputs, attrs)
                check_memory(8 * n_values, f"from_onnx: folding the constant {node.op_type} node "
                                           f"{_node_name(node)!r} ({n_values:,} values)")
                n_steps = _folded_steps(node.op_type, inputs, attrs)
                if n_steps > _FOLD_STEPS:
                    raise _unsupported(node, f"ONNX {node.op_type} on constants of shapes "
                                             f"{[np.shape(v) for v in inputs if v is not None]} ({n_steps:,} "
                                             f"multiply-adds to fold; the limit is {_FOLD_STEPS:,})")
                outputs = self._fold(node, inputs, attrs)
            except (NetatlasError, MemoryError):
                raise
            except Exception as exc:  # an index out of range, shapes that do not broadcast, ...
                raise ModelFileError(f"ONNX graph: the constant {node.op_type} node {_node_name(node)!r} cannot "
                                     f"be evaluated ({_first_line(exc)})") from None
        else:
            if node.op_type in _WEIGHT_OPS:
                self._require_float_weights(node, inputs)
            handler = getattr(self, f"_op_{node.op_type}", None)
            if handler is None or (node.op_type != "Where" and any(isinstance(v, _Compare) for v in inputs)):
                raise _unsupported(node)
            outputs = handler(node, inputs, attrs)
            outputs = outputs if isinstance(outputs, list) else [outputs]
        for name, value in zip(node.output, outputs, strict=False):
            if name:
                self.env[name] = value

    def _require_float_weights(self, node, inputs):
        for name, value in zip(node.input[1:], inputs[1:], strict=True):
            if isinstance(value, np.ndarray) and not np.issubdtype(value.dtype, np.floating):
                raise _unsupported(node, f"ONNX {node.op_type} with {value.dtype} weights {name!r}",
                                   hint="netatlas imports floating-point layers (integer and quantised weights "
                                        "are not exact in its float64 IR); ")

    def _constant(self, node, attrs):
        if "value" in attrs:
            return self.to_array(attrs["value"])
        for key, dtype in (("value_float", np.float32), ("value_floats", np.float32), ("value_int", np.int64),
                           ("value_ints", np.int64)):
            if key in attrs:
                return np.array(attrs[key], dtype=dtype)
        raise _unsupported(node, f"Constant with {sorted(attrs)}")

    def _fold(self, node, inputs, attrs):
        """Evaluate a node whose inputs are all constants (NumPy for shape arithmetic, else the
        onnx reference evaluator)."""
        op = node.op_type
        a = inputs[0] if inputs else None
        if op == "Shape" and isinstance(a, np.ndarray):
            return [_shape_slice(np.array(a.shape, dtype=np.int64), attrs)]
        simple = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Equal": np.equal}
        if op in simple:
            return [simple[op](*inputs)]
        if op == "Div":
            return [np.floor_divide(*inputs) if np.issubdtype(a.dtype, np.integer) else np.divide(*inputs)]
        if op == "Gather":
            return [np.take(a, inputs[1], axis=attrs.get("axis", 0))]
        if op == "Unsqueeze":
            axes = attrs["axes"] if "axes" in attrs else inputs[1]
            return [_unsqueeze(a, axes)]
        if op == "Squeeze":
            axes = attrs.get("axes", inputs[1] if len(inputs) > 1 else None)
            return [np.squeeze(a, axis=None if axes is None else tuple(int(x) for x in np.ravel(axes)))]
        if op == "Concat":
            return [np.concatenate([np.atleast_1d(v) for v in inputs], axis=attrs["axis"])]
        if op in ("Identity", "Dropout"):
            return [a]
        if op == "Cast":
            return [a.astype(self.onnx.helper.tensor_dtype_to_np_dtype(attrs["to"]))]
        if op == "Reshape":
            return [a.reshape(_reshape_target(a.shape, inputs[1], attrs.get("allowzero", 0)))]
        try:
            from onnx.reference import ReferenceEvaluator

            feeds = {name: v for name, v in zip(node.input, inputs, strict=True) if name}
            return list(ReferenceEvaluator(node, opsets={"": self.opset}).run(None, feeds))
        except Exception as exc:
            raise _unsupported(node, f"ONNX op {node.op_type} on constants ({_first_line(exc)})") from None

    # -- helpers ----------------------------------------------------------------------------------
    def add(self, op, value, node):
        return _Value(*self.builder.add(op, [value.pair], _node_name(node)))

    def affine(self, value, scale, shift, node):
        """y = scale * x + shift with constants broadcast against (batch, *value.shape)."""
        per_channel = self._per_channel(value, scale, node), self._per_channel(value, shift, node)
        if any(c is None for c in per_channel):  # varies within a channel: one elementwise GatherLinear
            weight = self._per_sample(value, scale, node).reshape(-1, 1)
            offset = self._per_sample(value, shift, node).reshape(-1)
            n = math.prod(value.shape)
            op = GatherLinear(torch.arange(n).reshape(n, 1), torch.tensor(weight.copy()), torch.tensor(offset.copy()),
                              value.shape, value.shape)
            return self.add(op, value, node)
        scale, shift = per_channel
        n = max(scale.numel(), shift.numel())
        if scale.numel() != n:
            scale = scale.expand(n).clone()
        if shift.numel() != n:
            shift = shift.expand(n).clone()
        return self.add(ChannelAffine(scale, shift, value.shape), value, node)

    def _per_channel(self, value, c, node):
        """A constant broadcast against (batch, *shape) as a scalar or per-channel tensor (channel = axis 1)."""
        c = np.asarray(c, dtype=np.float64)
        full = (self.batch, *value.shape)
        if c.ndim > len(full) or any(s not in (1, f) for s, f in zip(c.shape[::-1], full[::-1], strict=False)):
            raise _unsupported(node, f"{node.op_type} of a value of shape {value.shape} and a constant of shape "
                               f"{c.shape} (broadcasting)")
        c = c.reshape((1,) * (len(full) - c.ndim) + c.shape)
        if c.shape[0] != 1:
            raise _unsupported(node, f"{node.op_type} with a constant that differs between samples of a batch")
        per_sample = c[0]
        if per_sample.size == 1:
            return torch.tensor(per_sample.reshape(1))
        if len(value.shape) == 1 or all(s == 1 for s in per_sample.shape[1:]):
            channels = np.broadcast_to(per_sample.reshape(per_sample.shape[0], -1)[:, 0], (value.shape[0],))
            return torch.tensor(np.ascontiguousarray(channels))
        return None  # varies within a channel

    def _per_sample(self, value, c, node):
        """A constant broadcast against (batch, *shape) as a per-sample array of ``value.shape``."""
        c = np.asarray(c, dtype=np.float64)
        full = (self.batch, *value.shape)
        if c.ndim > len(full) or (c.ndim == len(full) and c.shape[0] != 1):
            raise _unsupported(node, f"{node.op_type} with a constant of shape {c.shape} that differs between "
                                     "samples of a batch")
        if c.ndim == len(full):
            c = c[0]
        try:
            return np.ascontiguousarray(np.broadcast_to(c, value.shape), dtype=np.float64)
        except ValueError:
            raise _unsupported(node, f"{node.op_type} of a value of shape {value.shape} and a constant of shape "
                                     f"{c.shape} (it would broadcast the value)") from None

    # -- ops on values ----------------------------------------------------------------------------
    def _op_Identity(self, node, inputs, attrs):
        return inputs[0]

    def _op_Dropout(self, node, inputs, attrs):
        training = inputs[2] if len(inputs) > 2 else None
        if training is not None and (isinstance(training, _Value) or bool(np.asarray(training))):
            raise ValueError(f"from_onnx: Dropout node {node.name!r} is in training mode; export the model in "
                             "eval mode")
        return inputs[0]

    def _op_Cast(self, node, inputs, attrs):
        if not np.issubdtype(self.onnx.helper.tensor_dtype_to_np_dtype(attrs["to"]), np.floating):
            raise _unsupported(node, "Cast of an input-dependent value to a non-float type")
        return inputs[0]

    def _activation(self, node, inputs, attrs):
        return self.add(_ACTIVATIONS[node.op_type](attrs), inputs[0], node)

    _op_Relu = _op_LeakyRelu = _op_Sigmoid = _op_Tanh = _op_Erf = _op_Softplus = _op_Elu = _activation

    def _op_PRelu(self, node, inputs, attrs):
        x, slope = inputs
        if isinstance(slope, _Value):
            raise _unsupported(node, "PRelu with an input-dependent slope")
        if np.unique(np.asarray(slope)).size == 1:
            alpha = float(np.ravel(slope)[0])
            return self.add(Activation("leaky_relu", {"negative_slope": alpha}), x, node)
        # a slope a_c per channel: relu(x) - a_c relu(-x), two ReLUs with the same kink (exact, graph path)
        positive = self.add(Activation("relu"), x, node)
        negative = self.add(Activation("relu"), self.affine(x, -1.0, 0.0, node), node)
        scaled = self.affine(negative, -np.asarray(slope, dtype=np.float64), 0.0, node)
        return _Value(*self.builder.add(Add(), [positive.pair, scaled.pair], _node_name(node)))

    def _op_HardSigmoid(self, node, inputs, attrs):
        """clamp(alpha x + beta, 0, 1): an affine map, then a hardtanh."""
        z = self.affine(inputs[0], float(attrs.get("alpha", 0.2)), float(attrs.get("beta", 0.5)), node)
        return _Value(*self.builder.hardtanh(0.0, 1.0, z.pair, _node_name(node)))

    def _op_Shrink(self, node, inputs, attrs):
        """Shrink with bias = lambd (torch's softshrink) is continuous: relu(x - l) - relu(-x - l)."""
        bias, lambd = float(attrs.get("bias", 0.0)), float(attrs.get("lambd", 0.5))
        if bias != lambd or lambd < 0:
            raise _unsupported(node, f"Shrink with bias {bias:g} and lambd {lambd:g} (it jumps by lambd - bias at "
                                     "+-lambd; only the continuous bias = lambd >= 0, a soft shrink, is piecewise "
                                     "linear)")
        x, path = inputs[0].pair, _node_name(node)
        upper = self.builder.relu(self.builder.plus_constant(x, -lambd, path), path)
        lower = self.builder.relu(self.builder.plus_constant(self.builder.scaled(x, -1.0, path), -lambd, path), path)
        return _Value(*self.builder.add_values(upper, lower, path, sign=-1.0))

    def _op_Neg(self, node, inputs, attrs):
        return self.affine(inputs[0], -1.0, 0.0, node)

    def _op_Max(self, node, inputs, attrs, upper=False):
        """Max/Min of a value and a scalar constant is a one-sided clamp; of several values or tensor
        constants, a chain of max(a, b) = a + relu(b - a) (min(a, b) = a - relu(a - b))."""
        values = [v for v in inputs if isinstance(v, _Value)]
        constants = [v for v in inputs if not isinstance(v, _Value)]
        if len(values) != 1 or len(inputs) != 2 or np.size(constants[0]) != 1:
            return self._extremum(node, values, constants, upper)
        bound = float(np.ravel(constants[0])[0])
        lo, hi = (None, bound) if upper else (bound, None)
        if lo == 0.0:
            return self.add(Activation("relu"), values[0], node)
        return _Value(*self.builder.hardtanh(lo, hi, values[0].pair, _node_name(node)))

    def _extremum(self, node, values, constants, lower):
        if any(c is None for c in constants):
            raise _unsupported(node, f"{node.op_type} with an empty input")
        out = values[0].pair
        for other in values[1:]:
            out = self.builder.maximum(out, other.pair, _node_name(node), lower=lower)
        if constants:  # the constants first reduce to one (NumPy), then broadcast against the value
            c = np.asarray(constants[0], dtype=np.float64)
            for d in constants[1:]:
                c = (np.minimum if lower else np.maximum)(c, np.asarray(d, dtype=np.float64))
            c = self._per_sample(_Value(*out), c, node)
            out = self.builder.maximum(out, c, _node_name(node), lower=lower)
        return _Value(*out)

    def _op_Min(self, node, inputs, attrs):
        return self._op_Max(node, inputs, attrs, upper=True)

    def _op_Gelu(self, node, inputs, attrs):
        approximate = attrs.get("approximate", "none")
        approximate = approximate.decode() if isinstance(approximate, bytes) else approximate
        return self.add(Activation("gelu" if approximate == "none" else "gelu_tanh"), inputs[0], node)

    def _op_Gemm(self, node, inputs, attrs):
        a, b = inputs[0], inputs[1]
        c = inputs[2] if len(inputs) > 2 else None
        if not isinstance(a, _Value) or isinstance(b, _Value) or isinstance(c, _Value):
            raise _unsupported(node, "Gemm whose B or C depends on the input")
        if attrs.get("transA", 0):
            raise _unsupported(node, "Gemm with transA=1 on the input-dependent operand (it would move the batch)")
        if len(a.shape) != 1:
            raise _unsupported(node, f"Gemm on a per-sample tensor of shape {a.shape} (flatten it first)")
        weight = np.asarray(b, dtype=np.float64)
        weight = weight if attrs.get("transB", 0) else weight.T  # (n_out, n_in)
        weight = weight * float(attrs.get("alpha", 1.0))
        bias = np.zeros(weight.shape[0])
        if c is not None:
            bias = self._bias(c, weight.shape[0], node) * float(attrs.get("beta", 1.0))
        return _Value(*self.builder.linear(torch.tensor(weight), torch.tensor(bias), a.pair, _node_name(node)))

    def _bias(self, c, n, node):
        c = np.asarray(c, dtype=np.float64)
        if c.ndim > 2 or (c.ndim == 2 and c.shape[0] != 1) or c.size not in (1, n):
            raise _unsupported(node, f"Gemm with a bias of shape {c.shape} that is not (N,), (1, N) or scalar")
        return np.broadcast_to(c.reshape(-1), (n,)).copy()

    def _op_MatMul(self, node, inputs, attrs):
        a, b = inputs
        if not isinstance(a, _Value) or isinstance(b, _Value) or np.ndim(b) != 2 or len(a.shape) != 1:
            raise _unsupported(node, "MatMul other than (batch, K) @ constant (K, N)")
        weight = torch.tensor(np.asarray(b, dtype=np.float64).T.copy())
        bias = torch.zeros(weight.shape[0], dtype=torch.float64)
        return _Value(*self.builder.linear(weight, bias, a.pair, _node_name(node)))

    def _op_Add(self, node, inputs, attrs, sign=1.0):
        a, b = inputs
        if isinstance(a, _Value) and isinstance(b, _Value):
            if a.shape == b.shape and sign != 1.0:
                b = self.affine(b, -1.0, 0.0, node)
                sign = 1.0
            return _Value(*self.builder.add_values(a.pair, b.pair, _node_name(node), sign))
        if isinstance(a, _Value):
            return self.affine(a, 1.0, sign * np.asarray(b, dtype=np.float64), node)
        if not isinstance(b, _Value):
            raise _unsupported(node)
        return self.affine(b, sign, np.asarray(a, dtype=np.float64), node)

    def _op_Sub(self, node, inputs, attrs):
        return self._op_Add(node, inputs, attrs, sign=-1.0)

    def _op_Mul(self, node, inputs, attrs):
        a, b = inputs
        if isinstance(a, _Value) and isinstance(b, _Value):
            return self._gelu_product(node, a, b)
        value, c = (a, b) if isinstance(a, _Value) else (b, a)
        return self.affine(value, np.asarray(c, dtype=np.float64), 0.0, node)

    def _op_Div(self, node, inputs, attrs):
        a, b = inputs
        if isinstance(a, _Value) and isinstance(b, _Value) and self._is_one_plus_abs(b, a):
            return self.add(Activation("softsign"), a, node)  # x / (1 + |x|): torch's export of Softsign
        if not isinstance(a, _Value) or isinstance(b, _Value):
            raise _unsupported(node, "Div by an input-dependent value")
        return self.affine(a, 1.0 / np.asarray(b, dtype=np.float64), 0.0, node)

    def _op_Greater(self, node, inputs, attrs):
        a, b = inputs
        if isinstance(a, _Value) and not isinstance(b, _Value) and np.size(b) == 1:
            return _Compare(a, float(np.asarray(b).reshape(())))
        raise _unsupported(node)

    def _op_Where(self, node, inputs, attrs):
        """torch's Softplus(beta=1, threshold=t): Where(x > t, x, Softplus(x))."""
        cond, x, soft = inputs
        if isinstance(cond, _Compare) and isinstance(x, _Value) and isinstance(soft, _Value) \
                and x.index == cond.value.index:
            producer = self.builder.nodes[soft.index]
            op = producer.op
            if isinstance(op, Activation) and op.name == "softplus" and producer.inputs == (x.index,):
                return self.add(Activation("softplus", {"beta": 1.0, "threshold": cond.threshold}), x, node)
        raise _unsupported(node, "Where (other than the threshold of a Softplus)")

    def _gelu_product(self, node, a, b):
        """x * (s * erf(x / sqrt 2) + s) = 2 s gelu(x): the Erf decomposition of GELU (older opsets)."""
        for x, other in ((a, b), (b, a)):
            base, scale, shift = self._scalar_affine_chain(other.index)
            producer = self.builder.nodes[base]
            if not (isinstance(producer.op, Activation) and producer.op.name == "erf"):
                continue
            inner, s_in, t_in = self._scalar_affine_chain(producer.inputs[0])
            if inner == x.index and math.isclose(s_in, 2 ** -0.5, rel_tol=1e-6) and t_in == 0.0 \
                    and math.isclose(scale, shift, rel_tol=1e-6) and scale != 0:
                gelu = self.add(Activation("gelu"), x, node)
                return self.affine(gelu, 2.0 * shift, 0.0, node)
        raise _unsupported(node, "Mul of two input-dependent values (other than the Erf form of GELU)")

    def _is_one_plus_abs(self, b, x):
        """Is ``b`` = 1 + |x|, with |x| lowered as relu(x) + relu(-x) (``builder.abs``)?"""
        base, scale, shift = self._scalar_affine_chain(b.index)
        node = self.builder.nodes[base]
        if b.shape != x.shape or (scale, shift) != (1.0, 1.0) or not isinstance(node.op, Add) \
                or len(node.inputs) != 2:
            return False
        positive, negative = (self.builder.nodes[i] for i in node.inputs)
        relu = lambda n: isinstance(n.op, Activation) and n.op.name == "relu"  # noqa: E731
        return relu(positive) and relu(negative) and positive.inputs == (x.index,) \
            and self._scalar_affine_chain(negative.inputs[0]) == (x.index, -1.0, 0.0)

    def _scalar_affine_chain(self, index):
        """Walk back through scalar ChannelAffine nodes: node ``index`` = scale * node(base) + shift."""
        scale, shift = 1.0, 0.0
        while True:
            node = self.builder.nodes[index]
            op = node.op
            if not (isinstance(op, ChannelAffine) and op.scale.numel() == 1 and op.shift.numel() == 1):
                return index, scale, shift
            s, t = float(op.scale), float(op.shift)
            scale, shift = scale * s, scale * t + shift
            index = node.inputs[0]

    def _op_Conv(self, node, inputs, attrs):
        x, w = inputs[0], inputs[1]
        b = inputs[2] if len(inputs) > 2 else None
        if not isinstance(x, _Value) or isinstance(w, _Value) or isinstance(b, _Value):
            raise _unsupported(node, "Conv with input-dependent weights")
        w = np.asarray(w, dtype=np.float64)
        n = w.ndim - 2
        if n not in (1, 2, 3):
            raise _unsupported(node, f"Conv{n}d (netatlas has 1-D, 2-D and 3-D convolutions)")
        strides = tuple(attrs.get("strides", [1] * n))
        dilations = tuple(attrs.get("dilations", [1] * n))
        padding, x = self._symmetric(node, x, self._padding(node, attrs, x.shape[1:], w.shape[2:], strides,
                                                              dilations))
        bias = torch.tensor(np.asarray(b, dtype=np.float64)) if b is not None else None
        return _Value(*self.builder.conv(torch.tensor(w), bias, strides, padding, dilations,
                                         int(attrs.get("group", 1)), x.pair, _node_name(node)))

    def _symmetric(self, node, x, pads):
        """(symmetric padding, input): asymmetric pads (SAME padding from other frameworks) become an
        explicit zero Pad before the op, which then pads nothing."""
        if all(lo == hi for lo, hi in pads):
            return tuple(lo for lo, _ in pads), x
        padded = self.builder.pad([v for lo_hi in reversed(pads) for v in lo_hi], x.pair, _node_name(node))
        return (0,) * len(pads), _Value(*padded)

    def _padding(self, node, attrs, spatial, kernel, strides, dilations):
        """Per-axis (before, after) padding from pads / auto_pad."""
        n = len(kernel)
        auto = attrs.get("auto_pad", b"NOTSET")
        auto = auto.decode() if isinstance(auto, bytes) else auto
        if auto in ("SAME_UPPER", "SAME_LOWER"):
            pads = []
            for size, k, s, d in zip(spatial, kernel, strides, dilations, strict=True):
                total = max((math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size, 0)
                lo = total // 2 if auto == "SAME_UPPER" else total - total // 2
                pads.append((lo, total - lo))
        elif auto == "VALID":
            pads = [(0, 0)] * n
        else:
            flat = list(attrs.get("pads", [0] * (2 * n)))
            pads = list(zip(flat[:n], flat[n:], strict=True))
        if any(lo < 0 or hi < 0 for lo, hi in pads):
            raise _unsupported(node, f"{node.op_type} with negative padding {pads}")
        return tuple((int(lo), int(hi)) for lo, hi in pads)

    def _op_BatchNormalization(self, node, inputs, attrs):
        x, scale, bias, mean, var = inputs[:5]
        if attrs.get("training_mode", 0) or len([o for o in node.output if o]) > 1:
            raise ValueError(f"from_onnx: BatchNormalization node {node.name!r} is in training mode; export the "
                             "model in eval mode")
        if not isinstance(x, _Value) or any(isinstance(v, _Value) for v in (scale, bias, mean, var)):
            raise _unsupported(node, "BatchNormalization with input-dependent statistics")
        if any(np.ndim(v) != 1 or np.size(v) != x.shape[0] for v in (scale, bias, mean, var)) \
                or attrs.get("spatial", 1) != 1:
            raise _unsupported(node, f"BatchNormalization whose statistics are not one per channel ({x.shape[0]})")
        pair = self.builder.batch_norm(_f64(scale), _f64(bias), _f64(mean), _f64(var),
                                       float(attrs.get("epsilon", 1e-5)), x.pair, _node_name(node))
        return _Value(*pair)

    def _op_ConvTranspose(self, node, inputs, attrs):
        """A transposed convolution (1-D/2-D/3-D, any strides, pads, output_padding, dilations, groups): a
        convolution of the input with zeros inserted (``Builder.conv_transpose``), exact and sparse."""
        x, w = inputs[0], inputs[1]
        b = inputs[2] if len(inputs) > 2 else None
        if not isinstance(x, _Value) or isinstance(w, _Value) or isinstance(b, _Value):
            raise _unsupported(node, "ConvTranspose with input-dependent weights")
        w = torch.tensor(np.asarray(w, dtype=np.float64))
        n = w.dim() - 2
        if n not in (1, 2, 3) or len(x.shape) != n + 1:
            raise _unsupported(node, f"ConvTranspose{n}d on per-sample shape {x.shape} (1-D/2-D/3-D only)")
        auto = attrs.get("auto_pad", b"NOTSET")
        auto = auto.decode() if isinstance(auto, bytes) else auto
        if attrs.get("output_shape") or auto not in ("NOTSET", "VALID", ""):
            # runtimes have disagreed on where SAME_UPPER/SAME_LOWER put the odd pad of a transposed conv
            raise _unsupported(node, f"ConvTranspose with {'output_shape' if attrs.get('output_shape') else auto} "
                                     "(give pads and output_padding explicitly)")
        flat = [0] * (2 * n) if auto == "VALID" else [int(v) for v in attrs.get("pads", [0] * (2 * n))]
        if any(v < 0 for v in flat):
            raise _unsupported(node, f"ConvTranspose with negative pads {flat}")
        strides = tuple(int(v) for v in attrs.get("strides", [1] * n))
        dilations = tuple(int(v) for v in attrs.get("dilations", [1] * n))
        extra = tuple(int(v) for v in attrs.get("output_padding", [0] * n))
        if any(v < 0 for v in (*strides, *dilations, *extra)) or 0 in strides or 0 in dilations:
            raise _unsupported(node, f"ConvTranspose with strides {strides}, dilations {dilations}, output_padding "
                                     f"{extra} (strides and dilations >= 1, output_padding >= 0)")
        bias = torch.tensor(np.asarray(b, dtype=np.float64).reshape(-1)) if b is not None else None
        pair = self.builder.conv_transpose(w, bias, strides, list(zip(flat[:n], flat[n:], strict=True)), extra,
                                           dilations, int(attrs.get("group", 1)), x.pair, _node_name(node))
        return _Value(*pair)

    def _op_Pad(self, node, inputs, attrs):
        x = inputs[0]
        mode = attrs.get("mode", b"constant")
        mode = mode.decode() if isinstance(mode, bytes) else mode
        pads = attrs.get("pads") if len(inputs) < 2 or inputs[1] is None else inputs[1]  # an input from opset 11
        value = inputs[2] if len(inputs) > 2 and inputs[2] is not None else attrs.get("value", 0.0)
        if any(isinstance(v, _Value) for v in (pads, value)):
            raise _unsupported(node, "Pad with input-dependent pads or value")
        if mode not in ("constant", "reflect", "edge", "wrap"):
            raise _unsupported(node, f"Pad in mode {mode!r} (constant, reflect, edge and wrap are supported)")
        if np.size(value) != 1:
            raise _unsupported(node, f"Pad with a non-scalar value of shape {np.shape(value)}")
        rank = len(x.shape) + 1
        axes = list(range(rank))
        if len(inputs) > 3 and inputs[3] is not None:
            axes = [int(a) % rank for a in np.asarray(inputs[3]).ravel()]
        pads = [int(v) for v in np.asarray(pads).ravel()]
        before, after = dict(zip(axes, pads[:len(axes)], strict=True)), dict(zip(axes, pads[len(axes):], strict=True))
        if before.get(0, 0) or after.get(0, 0):
            raise _unsupported(node, "Pad along the batch axis")
        fill = float(np.asarray(value, dtype=np.float64).reshape(()))
        if mode == "constant" and fill == 0.0:  # zero padding keeps the Pad op every lens knows
            torch_order = [v for d in reversed(range(1, rank)) for v in (before.get(d, 0), after.get(d, 0))]
            return _Value(*self.builder.pad(torch_order, x.pair, _node_name(node)))
        pairs = [(before.get(d, 0), after.get(d, 0)) for d in range(1, rank)]
        try:
            return _Value(*self.builder.pad_any(pairs, mode, fill, x.pair, _node_name(node)))
        except UnsupportedLayerError as exc:
            raise _unsupported(node, f"ONNX Pad ({exc})") from None

    def _op_AveragePool(self, node, inputs, attrs):
        x = inputs[0]
        kernel = tuple(attrs["kernel_shape"])
        n = len(kernel)
        if n not in (1, 2, 3) or len(x.shape) != n + 1:
            raise _unsupported(node, f"AveragePool with kernel {kernel} on per-sample shape {x.shape} (1-D/2-D/3-D "
                                     "only)")
        strides = tuple(attrs.get("strides", [1] * n))
        if attrs.get("dilations") and any(d != 1 for d in attrs["dilations"]):
            raise _unsupported(node, "AveragePool with dilations")
        pads = self._padding(node, attrs, x.shape[1:], kernel, strides, (1,) * n)
        count_include_pad = bool(attrs.get("count_include_pad", 0))
        asymmetric = any(lo != hi for lo, hi in pads)
        if asymmetric and attrs.get("ceil_mode", 0):
            raise _unsupported(node, f"AveragePool with asymmetric padding {pads} and ceil_mode=1 (a last window "
                                     "that starts in the padding is dropped or kept depending on the runtime)")
        padding, x = self._symmetric(node, x, pads)
        pair = self.builder.avg_pool(kernel, strides, padding, bool(attrs.get("ceil_mode", 0)),
                                     count_include_pad or asymmetric, x.pair, _node_name(node))
        if asymmetric and not count_include_pad:
            # the explicit pad made every window's divisor prod(kernel); ONNX divides by the window's count of
            # real entries: rescale each output position by prod(kernel) / count (a mask pooled the same way)
            mask = torch.nn.functional.pad(torch.ones(1, 1, *inputs[0].shape[1:], dtype=torch.float64),
                                           [v for lo_hi in reversed(pads) for v in lo_hi])
            share = getattr(torch.nn.functional, f"avg_pool{n}d")(mask, kernel, strides)  # count / prod(kernel)
            if not bool((share > 0).all()):
                raise _unsupported(node, f"AveragePool with padding {pads} wider than its kernel {kernel} (a window "
                                         "of padding only has no entries to average)")
            return self.affine(_Value(*pair), (1.0 / share).numpy(), 0.0, node)
        return _Value(*pair)

    def _op_MaxPool(self, node, inputs, attrs):
        x = inputs[0]
        if len(node.output) > 1 and node.output[1] and self.uses.get(node.output[1]):
            raise _unsupported(node, "MaxPool whose indices output is used")
        kernel = tuple(attrs["kernel_shape"])
        if len(kernel) not in (1, 2, 3) or len(x.shape) != len(kernel) + 1:
            raise _unsupported(node, f"MaxPool with kernel {kernel} on per-sample shape {x.shape} (1-D/2-D/3-D "
                                     "only)")
        n = len(kernel)
        strides = tuple(attrs.get("strides", [1] * n))
        dilations = tuple(attrs.get("dilations", [1] * n))
        padding = self._padding(node, attrs, x.shape[1:], kernel, strides, dilations)  # -inf padding: in the windows
        pair = self.builder.max_pool(kernel, strides, padding, dilations, bool(attrs.get("ceil_mode", 0)), x.pair,
                                     _node_name(node))
        return _Value(*pair)

    def _op_GlobalMaxPool(self, node, inputs, attrs):
        x = inputs[0]
        if len(x.shape) not in (2, 3, 4):
            raise _unsupported(node, f"GlobalMaxPool on per-sample shape {x.shape} (1-D/2-D/3-D only)")
        return _Value(*self.builder.adaptive_max_pool((1,) * (len(x.shape) - 1), x.pair, _node_name(node)))

    def _op_Clip(self, node, inputs, attrs):
        x = inputs[0]
        bounds = [inputs[i] if len(inputs) > i else None for i in (1, 2)]
        if self.opset < 11:
            bounds = [attrs.get("min"), attrs.get("max")]
        if any(isinstance(b, _Value) or (b is not None and np.size(b) != 1) for b in bounds):
            # the ONNX spec makes min and max scalars (onnxruntime refuses others); tensor bounds are torch's
            raise _unsupported(node, "Clip with input-dependent or non-scalar bounds (ONNX Clip takes scalars)")
        lo, hi = (None if b is None else float(np.asarray(b).reshape(())) for b in bounds)
        if (lo is None or lo == -math.inf) and (hi is None or hi == math.inf):
            return x
        if lo is not None and hi is not None and not lo < hi:
            raise _unsupported(node, f"Clip with min {lo} >= max {hi} (a constant output)")
        if lo == 0.0 and (hi is None or hi == math.inf):
            return self.add(Activation("relu"), x, node)
        return _Value(*self.builder.hardtanh(lo, hi, x.pair, _node_name(node)))

    def _op_Concat(self, node, inputs, attrs):
        if not all(isinstance(v, _Value) for v in inputs):
            raise _unsupported(node, "Concat of input-dependent values with constants")
        return _Value(*self.builder.concat([v.pair for v in inputs], int(attrs["axis"]), _node_name(node)))

    def _op_GlobalAveragePool(self, node, inputs, attrs):
        x = inputs[0]
        if len(x.shape) not in (2, 3, 4):
            raise _unsupported(node, f"GlobalAveragePool on per-sample shape {x.shape} (1-D/2-D/3-D only)")
        if len(x.shape) >= 3:  # the plain AvgPool every lens knows
            pair = self.builder.avg_pool(x.shape[1:], x.shape[1:], 0, False, True, x.pair, _node_name(node))
        else:
            pair = self.builder.adaptive_avg_pool((1,), x.pair, _node_name(node))
        return _Value(*pair)

    def _reduce_axes(self, node, inputs, attrs):
        x = inputs[0]
        axes = attrs.get("axes", inputs[1] if len(inputs) > 1 else None)
        rank = len(x.shape) + 1
        if isinstance(axes, _Value):
            raise _unsupported(node, f"{node.op_type} over input-dependent axes")
        if (axes is None or np.size(axes) == 0) and attrs.get("noop_with_empty_axes", 0):
            return x, None, True  # the identity
        axes = list(range(1, rank)) if axes is None or np.size(axes) == 0 else \
            sorted(int(a) % rank for a in np.ravel(axes))
        if 0 in axes:
            raise _unsupported(node, f"{node.op_type} over the batch axis")
        return x, axes, bool(attrs.get("keepdims", 1))

    def _op_ReduceMean(self, node, inputs, attrs):
        x, axes, keepdims = self._reduce_axes(node, inputs, attrs)
        if axes is None:
            return x
        if len(x.shape) not in (2, 3) or axes != list(range(2, len(x.shape) + 1)):
            return _Value(*self.builder.reduce([a - 1 for a in axes], keepdims, True, x.pair, _node_name(node)))
        pooled = self._op_GlobalAveragePool(node, inputs, attrs)
        return pooled if keepdims else _Value(pooled.index, (x.shape[0],))

    def _op_ReduceSum(self, node, inputs, attrs):
        x, axes, keepdims = self._reduce_axes(node, inputs, attrs)
        if axes is None:
            return x
        return _Value(*self.builder.reduce([a - 1 for a in axes], keepdims, False, x.pair, _node_name(node)))

    def _op_ReduceMax(self, node, inputs, attrs):
        x, axes, keepdims = self._reduce_axes(node, inputs, attrs)
        if axes is None:
            return x
        return _Value(*self.builder.amax([a - 1 for a in axes], keepdims, x.pair, _node_name(node)))

    # -- sparse linear ops: one GatherLinear each (``Builder.gather``), never a dense matrix -----------
    def gather(self, x, move, node, fill=0.0, out_size=None):
        return _Value(*self.builder.gather(x.pair, move, _node_name(node), fill=fill, out_size=out_size))

    def _constants(self, node, *values):
        if any(isinstance(v, (_Value, HeadValue)) for v in values):
            raise _unsupported(node, f"{node.op_type} with input-dependent indices, shapes or sizes")
        return values

    def _sample_axis(self, node, axis, x):
        """An ONNX axis (counting the batch) as a per-sample axis; the batch axis is refused."""
        rank = len(x.shape) + 1
        if not -rank <= int(axis) < rank:
            raise ModelFileError(f"ONNX graph: {node.op_type} node {_node_name(node)!r} has axis {axis} for rank "
                                 f"{rank}")
        if int(axis) % rank == 0:
            raise _unsupported(node, f"{node.op_type} along the batch axis")
        return int(axis) % rank - 1

    def _op_Slice(self, node, inputs, attrs):
        x = inputs[0]
        if self.opset < 10:
            starts, ends, axes, steps = attrs["starts"], attrs["ends"], attrs.get("axes"), None
        else:
            starts, ends = inputs[1], inputs[2]
            axes = inputs[3] if len(inputs) > 3 else None
            steps = inputs[4] if len(inputs) > 4 else None
        self._constants(node, starts, ends, axes, steps)
        starts, ends = [int(v) for v in np.ravel(starts)], [int(v) for v in np.ravel(ends)]
        rank = len(x.shape) + 1
        axes = list(range(len(starts))) if axes is None else [int(a) % rank for a in np.ravel(axes)]
        steps = [1] * len(starts) if steps is None else [int(v) for v in np.ravel(steps)]
        picks = [range(n) for n in x.shape]
        for axis, start, end, step in zip(axes, starts, ends, steps, strict=True):
            if step == 0:
                raise ModelFileError(f"ONNX graph: Slice node {_node_name(node)!r} has step 0")
            dim = self.batch if axis == 0 else x.shape[axis - 1]
            taken = _onnx_slice(start, end, step, dim)
            if axis == 0:
                if taken != range(dim):
                    raise _unsupported(node, "Slice of the batch axis")
                continue
            if not len(taken):
                raise _unsupported(node, f"Slice to an empty tensor (axis {axis}, {start}:{end}:{step})")
            picks[axis - 1] = taken
        return self.gather(x, lambda p: p[np.ix_(*[np.asarray(r, dtype=np.int64) for r in picks])], node)

    def _op_Split(self, node, inputs, attrs):
        x = inputs[0]
        axis = self._sample_axis(node, attrs.get("axis", 0), x)
        sizes = inputs[1] if len(inputs) > 1 and inputs[1] is not None else attrs.get("split")
        self._constants(node, sizes)
        n, dim = len(node.output), x.shape[axis]
        if sizes is None or np.size(sizes) == 0:
            part = -(-dim // attrs.get("num_outputs", n))  # equal parts, the last one smaller (opset 18)
            sizes = [min(part, dim - i * part) for i in range(n)]
        sizes = [int(v) for v in np.ravel(sizes)]
        if sum(sizes) != dim or len(sizes) != n or min(sizes) <= 0:
            raise ModelFileError(f"ONNX graph: Split node {_node_name(node)!r} splits a dim of {dim} into {sizes} "
                                 f"for {n} outputs")
        outputs, start = [], 0
        for size in sizes:
            taken = np.arange(start, start + size)
            outputs.append(self.gather(x, lambda p, t=taken: np.take(p, t, axis=axis), node))
            start += size
        return outputs

    def _op_Tile(self, node, inputs, attrs):
        x, repeats = inputs
        self._constants(node, repeats)
        repeats = [int(r) for r in np.ravel(repeats)]
        if len(repeats) != len(x.shape) + 1 or repeats[0] != 1 or min(repeats) < 1:
            raise _unsupported(node, f"Tile by {repeats} of a value of per-sample shape {x.shape} (the batch repeat "
                                     "must be 1, every repeat at least 1)")
        return self.gather(x, lambda p: np.tile(p, repeats[1:]), node, out_size=math.prod(x.shape) * math.prod(repeats))

    def _op_Expand(self, node, inputs, attrs):
        x, shape = inputs
        self._constants(node, shape)
        target = [int(v) for v in np.ravel(shape)]
        full = (self.batch, *x.shape)
        if len(target) > len(full):
            raise _unsupported(node, f"Expand of shape {full} to {target} (it would move the batch axis)")
        target = [1] * (len(full) - len(target)) + target
        if any(t not in (1, f) and f != 1 for t, f in zip(target, full, strict=True)) or target[0] not in (1, full[0]):
            raise _unsupported(node, f"Expand of shape {full} to {target} (not a broadcast, or over the batch)")
        out = tuple(max(t, f) for t, f in zip(target[1:], full[1:], strict=True))
        check_memory(16 * math.prod(out), f"from_onnx: the Expand node {_node_name(node)!r} to {out}")
        return _Value(*self.builder.broadcast(x.pair, out, _node_name(node)))

    def _op_Gather(self, node, inputs, attrs):
        x, indices = inputs
        self._constants(node, indices)
        axis = self._sample_axis(node, attrs.get("axis", 0), x)
        indices = np.asarray(indices)
        if not np.issubdtype(indices.dtype, np.integer):
            raise ModelFileError(f"ONNX graph: Gather node {_node_name(node)!r} has {indices.dtype} indices")
        dim = x.shape[axis]
        if indices.size and (indices.min() < -dim or indices.max() >= dim):
            raise ModelFileError(f"ONNX graph: Gather node {_node_name(node)!r} has indices outside [-{dim}, {dim})")
        if indices.size == 0:
            raise _unsupported(node, "Gather of no indices (an empty tensor)")
        indices = np.where(indices < 0, indices + dim, indices).astype(np.int64)
        return self.gather(x, lambda p: np.take(p, indices, axis=axis), node,
                           out_size=math.prod(x.shape) // max(dim, 1) * indices.size)

    def _op_Sum(self, node, inputs, attrs, mean=False):
        """Sum (Mean) of n inputs: a chain of additions (broadcasting), constants as one shift."""
        values = [v for v in inputs if isinstance(v, _Value)]
        constants = [np.asarray(v, dtype=np.float64) for v in inputs if v is not None and not isinstance(v, _Value)]
        out = values[0].pair
        for other in values[1:]:
            out = self.builder.add_values(out, other.pair, _node_name(node))
        out = _Value(*out)
        if constants:
            out = self.affine(out, 1.0, sum(constants[1:], constants[0]), node)
        return self.affine(out, 1.0 / len(inputs), 0.0, node) if mean and len(inputs) > 1 else out

    def _op_Mean(self, node, inputs, attrs):
        return self._op_Sum(node, inputs, attrs, mean=True)

    def _op_Abs(self, node, inputs, attrs):
        return _Value(*self.builder.abs(inputs[0].pair, _node_name(node)))

    # -- smooth ops ----------------------------------------------------------------------------------
    def _op_Selu(self, node, inputs, attrs):
        params = {"alpha": float(attrs.get("alpha", 1.67326319217681884765625)),
                  "gamma": float(attrs.get("gamma", 1.05070102214355468750))}
        return self.add(Activation("selu", params), inputs[0], node)

    def _op_Exp(self, node, inputs, attrs):
        return self.add(Activation("exp"), inputs[0], node)

    def _op_Sqrt(self, node, inputs, attrs):
        return self.add(Activation("sqrt"), inputs[0], node)

    def _op_Softsign(self, node, inputs, attrs):
        return self.add(Activation("softsign"), inputs[0], node)

    def _op_LRN(self, node, inputs, attrs):
        x = inputs[0]
        if "torch_before" in attrs:  # torch's LocalResponseNorm formula, fused (``_onnx_patterns``)
            self._check_torch_lrn(node, x, attrs)
        if int(attrs["size"]) % 2 == 0 or int(attrs["size"]) < 1:
            raise _unsupported(node, f"LRN with size {attrs['size']} (odd sizes only: runtimes place an even "
                                     "window differently)")
        op = LocalResponseNorm(int(attrs["size"]), float(attrs.get("alpha", 1e-4)), float(attrs.get("beta", 0.75)),
                               float(attrs.get("bias", 1.0)), x.shape)
        return self.add(op, x, node)

    def _check_torch_lrn(self, node, x, attrs):
        size, before = int(attrs["size"]), int(attrs["torch_before"])
        if attrs["torch_channels"] not in (0, x.shape[0]) or attrs["torch_rank"] not in (0, len(x.shape) + 2):
            raise _unsupported(node, f"torch's LocalResponseNorm formula whose Reshape does not put the {x.shape[0]} "
                                     f"channels of a per-sample shape {x.shape} on axis 2")
        if before != (size - 1) // 2:
            raise _unsupported(node, f"torch's LocalResponseNorm with the even size {size} (its window starts "
                                     f"{before} channels before, ONNX LRN's {(size - 1) // 2}; odd sizes only)")

    def _op_InstanceNormalization(self, node, inputs, attrs):
        x, scale, bias = inputs
        self._constants(node, scale, bias)
        if len(x.shape) < 2:
            raise _unsupported(node, f"InstanceNormalization of a per-sample shape {x.shape} (needs (C, ...))")
        normed = _Value(*self.builder.normalize(range(1, len(x.shape)), attrs.get("epsilon", 1e-5), x.pair,
                                                _node_name(node)))
        per_channel = (-1,) + (1,) * (len(x.shape) - 1)
        return self.affine(normed, np.asarray(scale).reshape(per_channel), np.asarray(bias).reshape(per_channel),
                           node)

    def _op_LayerNormalization(self, node, inputs, attrs):
        x, scale = inputs[0], inputs[1]
        bias = inputs[2] if len(inputs) > 2 and inputs[2] is not None else 0.0
        self._constants(node, scale, bias)
        if any(name for name in node.output[1:]) and any(self.uses.get(n) for n in node.output[1:]):
            raise _unsupported(node, "LayerNormalization whose mean or inverse deviation outputs are used")
        first = self._sample_axis(node, attrs.get("axis", -1), x)
        normed = _Value(*self.builder.normalize(range(first, len(x.shape)), attrs.get("epsilon", 1e-5), x.pair,
                                                _node_name(node)))
        return self.affine(normed, scale, bias, node)

    # -- a classifier head ---------------------------------------------------------------------------
    def _op_Softmax(self, node, inputs, attrs):
        if node.output[0] != self.graph.output[0].name:
            raise _unsupported(node, f"ONNX op {node.op_type} before the output",
                               hint="a final softmax is kept as the model's head; one inside the network is not "
                                    "supported; ")
        name = "softmax" if node.op_type == "Softmax" else "log_softmax"
        x = inputs[0]
        # before opset 13 the op flattens from ``axis`` (default 1) on: over every per-sample entry at axis 1
        axis = attrs.get("axis", 1 if self.opset < 13 else -1)
        dim = None if self.opset < 13 and int(axis) % (len(x.shape) + 1) == 1 else axis
        try:
            return self.builder.classifier_head(name, dim, x.pair, _node_name(node))
        except UnsupportedLayerError as exc:
            raise _unsupported(node, f"ONNX {node.op_type} ({exc})") from None

    _op_LogSoftmax = _op_Softmax

    # -- reshapes: free in the IR, as long as the batch stays on axis 0 -----------------------------
    def _reshaped(self, node, x, full):
        full = tuple(int(s) for s in full)
        if not full or full[0] != self.batch or math.prod(full[1:]) != math.prod(x.shape):
            raise _unsupported(node, f"{node.op_type} of per-sample shape {x.shape} to {full} (it mixes samples "
                               "of a batch; the batch must stay on axis 0)")
        return _Value(x.index, full[1:])

    def _op_Transpose(self, node, inputs, attrs):
        """A permutation of per-sample axes (e.g. NHWC -> NCHW from TensorFlow exports, a channel shuffle): free
        when it only moves axes of size 1, else a GatherLinear selection (sparse, any size)."""
        x = inputs[0]
        perm = [int(p) for p in attrs.get("perm", range(len(x.shape), -1, -1))]
        if perm[0] != 0:
            raise _unsupported(node, f"Transpose with perm {perm} (it moves the batch axis)")
        axes = [p - 1 for p in perm[1:]]
        out_shape = tuple(x.shape[a] for a in axes)
        moved = [a for a in axes if x.shape[a] != 1]
        if moved == sorted(moved):
            return _Value(x.index, out_shape)
        return self.gather(x, lambda p: np.transpose(p, axes), node)  # a permutation: sparse, any size

    def _op_Flatten(self, node, inputs, attrs):
        x = inputs[0]
        full = (self.batch, *x.shape)
        axis = attrs.get("axis", 1)
        axis = axis + len(full) if axis < 0 else axis
        return self._reshaped(node, x, (math.prod(full[:axis]), math.prod(full[axis:])))

    def _op_Shape(self, node, inputs, attrs):
        return _shape_slice(np.array((self.batch, *inputs[0].shape), dtype=np.int64), attrs)

    def _op_Reshape(self, node, inputs, attrs):
        x, target = inputs
        if isinstance(target, _Value):
            raise _unsupported(node, "Reshape to an input-dependent shape")
        full = (self.batch, *x.shape)
        return self._reshaped(node, x, _reshape_target(full, target, attrs.get("allowzero", 0)))

    def _op_Unsqueeze(self, node, inputs, attrs):
        x = inputs[0]
        axes = attrs["axes"] if "axes" in attrs else inputs[1]
        return self._reshaped(node, x, _unsqueezed_shape((self.batch, *x.shape), axes))

    def _op_Squeeze(self, node, inputs, attrs):
        x = inputs[0]
        axes = attrs.get("axes", inputs[1] if len(inputs) > 1 else None)
        if axes is None:
            raise _unsupported(node, "Squeeze without axes (it may drop the batch axis)")
        full = (self.batch, *x.shape)
        drop = {int(a) % len(full) for a in np.ravel(axes)}  # shape arithmetic: nothing of this size is allocated
        if any(full[a] != 1 for a in drop):
            raise _unsupported(node, f"Squeeze of axes {sorted(drop)} of shape {full} (only axes of size 1)")
        return self._reshaped(node, x, tuple(d for i, d in enumerate(full) if i not in drop))


def _merge_affine_chains(nodes):
    """Compose ChannelAffine -> ChannelAffine (Sub, Mul, Div by constants in a row) into one node when
    the first has no other consumer; the first is then dead and pruned."""
    nodes = list(nodes)
    consumers = [0] * len(nodes)
    for node in nodes:
        for j in node.inputs:
            consumers[j] += 1
    for i, node in enumerate(nodes):
        if not isinstance(node.op, ChannelAffine):
            continue
        parent = nodes[node.inputs[0]]
        if isinstance(parent.op, ChannelAffine) and consumers[node.inputs[0]] == 1 \
                and parent.op.in_shape == node.op.in_shape:
            first, second = parent.op, node.op
            n = max(first.scale.numel(), second.scale.numel())
            scale = (first.scale * second.scale).expand(n).clone()
            shift = (first.shift * second.scale + second.shift).expand(n).clone()
            nodes[i] = Node(ChannelAffine(scale, shift, first.in_shape), parent.inputs, node.shape,
                            f"{parent.name}+{node.name}")
    return nodes


def _onnx_slice(start, end, step, dim):
    """The indices ONNX Slice takes along a dim of length ``dim`` (starts/ends clamped as the spec says)."""
    start = start + dim if start < 0 else start
    end = end + dim if end < 0 else end
    if step > 0:
        start, end = min(max(start, 0), dim), min(max(end, 0), dim)
    else:
        start, end = min(max(start, 0), dim - 1), min(max(end, -1), dim - 1)
    return range(start, end, step)


def _node_name(node):
    return node.name or node.output[0]


def _show_dims(declared, names):
    return "(" + ", ".join(str(d) if d is not None else n for d, n in zip(declared, names, strict=True)) + ")"


def _shape_slice(shape, attrs):
    start, end = attrs.get("start", 0), attrs.get("end", None)
    return shape[start:end]


def _unsqueezed_shape(shape, axes):
    axes = sorted(int(x) % (len(shape) + len(np.ravel(axes))) for x in np.ravel(axes))
    shape = list(shape)
    for axis in axes:
        shape.insert(axis, 1)
    return tuple(shape)


def _folded_size(op, inputs, attrs) -> int:
    """The number of values folding ``op`` on these constants makes, computed from shapes and the constant
    shape operands before anything is allocated (ConstantOfShape [15000, 15000], a Range to 1e12, ...)."""
    arrays = [np.asarray(v) for v in inputs if v is not None]
    sizes = [a.size for a in arrays]
    largest = max(sizes, default=1)

    def ints(a):
        return [int(v) for v in np.ravel(a)] if np.size(a) <= 64 else [2**62]

    if op in ("Shape", "Size"):
        return max((a.ndim for a in arrays), default=1)
    if op == "ConstantOfShape" and arrays:
        return math.prod(max(d, 0) for d in ints(arrays[0]))
    if op == "Expand" and len(arrays) == 2:
        target = ints(arrays[1])
        shape = arrays[0].shape
        rank = max(len(shape), len(target))
        a = (1,) * (rank - len(shape)) + shape
        b = (1,) * (rank - len(target)) + tuple(target)
        return math.prod(max(x, y, 0) for x, y in zip(a, b, strict=True))
    if op == "Gather" and len(arrays) == 2 and arrays[0].ndim:  # every index picks a slice of the data
        axis = int(attrs.get("axis", 0)) % arrays[0].ndim
        return arrays[0].size // max(arrays[0].shape[axis], 1) * arrays[1].size
    if op == "OneHot" and len(arrays) >= 2:
        return arrays[0].size * max(ints(arrays[1])[0], 0)
    if op == "Pad" and len(arrays) >= 2 and len(ints(arrays[1])) == 2 * arrays[0].ndim:
        pads, n = ints(arrays[1]), arrays[0].ndim
        return math.prod(max(d + pads[i] + pads[i + n], 0) for i, d in enumerate(arrays[0].shape))
    if op == "Tile" and len(arrays) == 2:
        return arrays[0].size * math.prod(max(r, 0) for r in ints(arrays[1]))
    if op == "Range" and len(arrays) == 3:
        start, limit, delta = (float(np.ravel(a)[0]) if a.size else 0.0 for a in arrays)
        return int(min(max(math.ceil((limit - start) / delta), 0), 2**62)) if delta and math.isfinite(
            (limit - start) / delta) else 2**62
    if op in ("MatMul", "Gemm") and len(arrays) >= 2 and arrays[0].ndim >= 1 and arrays[1].ndim >= 1:
        return largest + _matmul_dims(op, arrays[0].shape, arrays[1].shape)[0]
    if op == "Concat":
        return sum(sizes)
    if op in ("Resize", "Upsample"):  # output = input dims times scales, or the sizes given
        sizes_input = arrays[3] if op == "Resize" and len(arrays) > 3 and arrays[3].size else None
        scales = arrays[2] if op == "Resize" and len(arrays) > 2 else arrays[1] if len(arrays) > 1 else None
        if sizes_input is not None:
            return math.prod(max(d, 0) for d in ints(sizes_input))
        if scales is not None and scales.size == arrays[0].ndim:
            return math.prod(math.ceil(d * min(max(float(s), 0.0), 2.0**62)) for d, s in
                             zip(arrays[0].shape, np.ravel(scales), strict=True))
        return 2**62  # a Resize whose size cannot be read is refused by size
    if op == "Einsum":
        return _einsum_size(attrs, arrays, output_only=True)
    if len(arrays) > 1:  # elementwise ops broadcast: (n, 1) + (1, n) makes n^2 values
        rank = max(a.ndim for a in arrays)
        shapes = [(1,) * (rank - a.ndim) + a.shape for a in arrays]
        return max(largest, math.prod(max(dims) for dims in zip(*shapes, strict=True)))
    return largest


def _einsum_size(attrs, arrays, output_only):
    """Entries of an Einsum's output (or of its whole iteration space): the product of its letters' sizes."""
    equation = attrs.get("equation", b"")
    equation = (equation.decode() if isinstance(equation, bytes) else equation).replace(" ", "")
    if "..." in equation or len(equation) > 200:
        return math.prod(a.size for a in arrays)  # an upper bound of any output and of the work
    left, _, right = equation.partition("->")
    sizes = {}
    for term, a in zip(left.split(","), arrays, strict=False):
        for letter, d in zip(term, a.shape, strict=False):
            sizes[letter] = max(sizes.get(letter, 1), d)
    letters = right if output_only and "->" in equation else sizes
    return math.prod(sizes.get(letter, 1) for letter in letters)


def _matmul_dims(op, a, b):
    """(entries of the product, length of the contraction) of operands of shapes ``a`` and ``b``."""
    if op == "Gemm":  # 2-D, either operand possibly transposed: bounded by the longer axis of each
        return max(a, default=1) * max(b, default=1), min(max(a, default=1), max(b, default=1))
    batch = np.broadcast_shapes(a[:-2], b[:-2])  # NumPy-style batched MatMul
    m = a[-2] if len(a) >= 2 else 1
    n = b[-1] if len(b) >= 2 else 1
    return math.prod(batch) * m * n, a[-1]


def _folded_steps(op, inputs, attrs) -> int:
    """Multiply-adds to fold a contraction on constants (MatMul, Gemm, Conv, Einsum); 0 for other ops,
    whose work is proportional to the values they make (bounded by the memory budget)."""
    arrays = [np.asarray(v) for v in inputs if v is not None]
    if op in ("MatMul", "Gemm") and len(arrays) >= 2 and arrays[0].ndim >= 1 and arrays[1].ndim >= 1:
        n_out, k = _matmul_dims(op, arrays[0].shape, arrays[1].shape)
        return n_out * k
    if op in ("Conv", "ConvTranspose") and len(arrays) >= 2:
        return arrays[0].size * arrays[1].size  # every input value meets every weight at most once
    if op == "Einsum":
        return _einsum_size(attrs, arrays, output_only=False)
    return 0


def _unsqueeze(a, axes):
    axes = sorted(int(x) % (np.ndim(a) + len(np.ravel(axes))) for x in np.ravel(axes))
    for axis in axes:
        a = np.expand_dims(a, axis)
    return a


def _reshape_target(shape, target, allowzero):
    target = [int(t) for t in np.ravel(target)]
    if not allowzero:
        target = [shape[i] if t == 0 else t for i, t in enumerate(target)]
    if -1 in target:
        known = math.prod(t for t in target if t != -1)
        target[target.index(-1)] = math.prod(shape) // known if known else 0
    return tuple(target)
