"""Import torch modules into the IR: plain (nested) nn.Sequential by walking it, anything else
through ``torch.export``. BatchNorm in eval mode is folded into the affine op before it."""

from __future__ import annotations

import contextlib
import math

import numpy as np
import torch
from torch import nn

from netatlas._errors import UnsupportedLayerError
from netatlas.nets._ir import (
    Activation,
    Add,
    ChannelAffine,
    LocalResponseNorm,
    Net,
    _f64,
)
from netatlas.nets._lowering import Builder, HeadValue, is_value, prune_and_fold

__all__ = ["from_torch", "SUPPORTED_LAYERS"]

SUPPORTED_LAYERS = (
    "Linear, Conv1d/2d/3d (zero padding), ConvTranspose1d/2d/3d (zero padding), BatchNorm1d/2d/3d (eval mode), "
    "ReLU, LeakyReLU, Identity, Dropout (eval), Flatten/Unflatten/reshape, AvgPool1d/2d/3d, mean and sum over any "
    "dims, MaxPool1d/2d/3d, AdaptiveMaxPool1d/2d/3d, AdaptiveAvgPool1d/2d/3d, max/amax over dims, "
    "ReLU6/Hardtanh/clamp (also by tensors), "
    "abs, maximum/minimum, concatenation, slicing/indexing by constants (x[:, :k], select, narrow, index_select), "
    "split/chunk/unbind, permute/transpose/flip, expand/repeat, padding in every mode (ZeroPad, ConstantPad, "
    "ReflectionPad, ReplicationPad, F.pad), residual additions (with broadcasting), addition and multiplication by "
    "constants, Sigmoid, Tanh, GELU, Softplus, ELU, SELU, Softsign, exp, sqrt, erf, LayerNorm, InstanceNorm1d/2d, "
    "LocalResponseNorm (odd size), and a final Softmax/LogSoftmax (kept as the head)"
)

_ACTIVATION_MODULES = {
    nn.ReLU: lambda m: Activation("relu"),
    nn.LeakyReLU: lambda m: Activation("leaky_relu", {"negative_slope": float(m.negative_slope)}),
    nn.Sigmoid: lambda m: Activation("sigmoid"),
    nn.Tanh: lambda m: Activation("tanh"),
    nn.GELU: lambda m: Activation("gelu" if m.approximate == "none" else "gelu_tanh"),
    nn.Softplus: lambda m: Activation("softplus", {"beta": float(m.beta), "threshold": float(m.threshold)}),
    nn.ELU: lambda m: Activation("elu", {"alpha": float(m.alpha)}),
    nn.SELU: lambda m: Activation("selu"),
    nn.Softsign: lambda m: Activation("softsign"),
}
_IDENTITY_MODULES = (nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d)
_RESHAPE_MODULES = (nn.Flatten, nn.Unflatten)
_CONV_MODULES = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_CONV_TRANSPOSE_MODULES = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
_BATCH_NORM_MODULES = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
_MAX_POOL_MODULES = (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d)
_ADAPTIVE_MAX_MODULES = (nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d)
_ADAPTIVE_AVG_MODULES = (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d)
_AVG_POOL_MODULES = (nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d)
_POOL_MODULES = (*_MAX_POOL_MODULES, *_ADAPTIVE_MAX_MODULES, *_ADAPTIVE_AVG_MODULES)
_PAD_MODULES = (nn.ZeroPad1d, nn.ZeroPad2d, nn.ConstantPad1d, nn.ConstantPad2d)
_MODE_PAD_MODULES = {nn.ReflectionPad1d: "reflect", nn.ReflectionPad2d: "reflect", nn.ReplicationPad1d: "edge",
                     nn.ReplicationPad2d: "edge"}
_HEAD_MODULES = {nn.Softmax: "softmax", nn.LogSoftmax: "log_softmax"}
_NORM_MODULES = (nn.LayerNorm, nn.LocalResponseNorm, nn.InstanceNorm1d, nn.InstanceNorm2d)
_LEAF_MODULES = (nn.Linear, *_CONV_MODULES, *_CONV_TRANSPOSE_MODULES, *_BATCH_NORM_MODULES, *_AVG_POOL_MODULES,
                 nn.Hardtanh,
                 *_POOL_MODULES, *_PAD_MODULES, *_ACTIVATION_MODULES, *_IDENTITY_MODULES, *_RESHAPE_MODULES,
                 *_MODE_PAD_MODULES, *_HEAD_MODULES, *_NORM_MODULES)



@contextlib.contextmanager
def eval_mode(module):
    """Put ``module`` in eval mode for the block, then give every submodule back its own mode (``train(flag)``
    is recursive: restoring only the top's flag would switch an eval-mode child, e.g. a BatchNorm, to training)."""
    modes = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        yield module
    finally:
        for m, training in modes:
            m.training = training

def from_torch(module, input_shape=None) -> Net:
    """Import a torch model into the netatlas IR (a :class:`Net`, evaluated in float64).

    Parameters
    ----------
    module : torch.nn.Module, torch.export.ExportedProgram or Net
        A (nested) ``nn.Sequential`` of supported layers, or any module ``torch.export`` can trace
        whose ops are supported (see ``SUPPORTED_LAYERS``). The module is not modified. BatchNorm
        layers must be in eval mode (their running statistics are folded into the layer before).
    input_shape : tuple of int, optional
        Per-sample input shape, e.g. ``(2,)`` or ``(1, 28, 28)``. Inferred from a first Linear layer
        when omitted; required for convolutional models.

    Returns
    -------
    Net
        ``net(x)`` maps (B, *input_shape) to (B, n_outputs) in float64.

    Raises
    ------
    UnsupportedLayerError
        For any other layer or op; the message names the layer type, its path in the module and
        the supported set.

    Examples
    --------
    >>> import torch, netatlas
    >>> model = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    >>> net = netatlas.nets.from_torch(model)
    >>> net(torch.zeros(5, 2)).shape, net.n_hidden_units, net.piecewise_linear
    (torch.Size([5, 3]), 8, True)
    >>> netatlas.nets.from_torch(torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Upsample(2)))
    Traceback (most recent call last):
    ...
    netatlas._errors.UnsupportedLayerError: Upsample at '1' (position 1) is not supported...
    """
    if isinstance(module, Net):
        return module
    if isinstance(module, torch.export.ExportedProgram):
        if input_shape is None:
            input_shape = _shape_from_exported(module)
        return prune_and_fold(*_from_exported(module, tuple(input_shape)))
    if not isinstance(module, nn.Module):
        raise TypeError(f"from_torch: expected a torch.nn.Module, ExportedProgram or Net, got "
                        f"{type(module).__name__}")
    for path, sub in module.named_modules():
        if isinstance(sub, nn.modules.batchnorm._BatchNorm) and (sub.training or sub.running_mean is None):
            raise ValueError(f"from_torch: {type(sub).__name__} at {path!r} is in training mode or has no "
                             "running statistics; call model.eval() first (netatlas folds eval-mode "
                             "BatchNorm into the layer before it)")
    input_shape = tuple(input_shape) if input_shape is not None else _infer_input_shape(module)
    if _is_plain(module):
        builder = _SequentialBuilder(input_shape)
        if isinstance(module, nn.Sequential):
            out = builder.walk(module, builder.input_value, prefix="")
        else:  # a single top-level layer is a one-layer net
            out = builder.layer(module, builder.input_value, "", None)
        nodes = builder.finish(out)
        return prune_and_fold(nodes, builder.head)
    try:
        with eval_mode(module):
            exported = torch.export.export(module, (torch.zeros(2, *input_shape),))
    except UnsupportedLayerError:
        raise
    except Exception as exc:  # torch.export has many failure types; report them as one
        raise UnsupportedLayerError(f"from_torch: torch.export could not trace {type(module).__name__} "
                                    f"({type(exc).__name__}: {str(exc).splitlines()[0][:300]}); netatlas "
                                    f"supports nn.Sequential and traceable modules of: {SUPPORTED_LAYERS}") from None
    return prune_and_fold(*_from_exported(exported, input_shape))


def _infer_input_shape(module):
    for sub in module.modules():
        if isinstance(sub, nn.Linear):
            return (sub.in_features,)
        if isinstance(sub, (*_CONV_MODULES, *_CONV_TRANSPOSE_MODULES)):
            raise ValueError(f"from_torch: pass input_shape for a model that starts with {type(sub).__name__}, "
                             f"e.g. input_shape=({sub.in_channels}, 28, 28)")
    raise ValueError("from_torch: cannot infer the input shape (no Linear layer); pass input_shape")


def _is_plain(module) -> bool:
    # The walker reads a module's layers, never its forward: it may only take modules whose forward
    # is torch's own (no override, no hooks). Anything else goes through torch.export.
    if not _forward_is_torchs(module):
        return False
    if isinstance(module, nn.Sequential):
        return all(_is_plain(child) for child in module)
    return isinstance(module, _LEAF_MODULES) or _is_torch_builtin(module)


def _forward_is_torchs(module) -> bool:
    if module._forward_hooks or module._forward_pre_hooks:
        return False
    builtin = next(c for c in type(module).__mro__ if c.__module__.startswith("torch.nn.modules"))
    return type(module).forward is builtin.forward and type(module).__call__ is builtin.__call__


def _is_torch_builtin(module) -> bool:
    # Builtin torch layers we do not support are reported from the walk with their path; custom
    # modules go through torch.export instead.
    return type(module).__module__.startswith("torch.nn.modules") and not isinstance(module, nn.Sequential)


def _unsupported(kind, path, position=None):
    where = (f"{path!r}" if path else "the top level") + (f" (position {position})" if position is not None else "")
    return UnsupportedLayerError(f"{kind} at {where} is not supported; supported: {SUPPORTED_LAYERS}")


class _SequentialBuilder(Builder):
    """The builder plus the walk of a plain (nested) nn.Sequential, layer by layer."""

    def __init__(self, input_shape):
        super().__init__(input_shape, SUPPORTED_LAYERS)

    # -- nn.Sequential walk ---------------------------------------------------------------------
    def walk(self, module, value, prefix):
        for position, (name, child) in enumerate(module.named_children()):
            path = f"{prefix}.{name}" if prefix else name
            if isinstance(value, HeadValue):
                raise _unsupported(f"{value.name} before {type(child).__name__} (a softmax is only supported as the "
                                   "model's final head)", path, position)
            if isinstance(child, nn.Sequential):
                value = self.walk(child, value, path)
            else:
                value = self.layer(child, value, path, position)
        return value

    def layer(self, m, value, path, position):
        shape = value[1]
        if isinstance(m, _IDENTITY_MODULES):
            return value
        if type(m) in _ACTIVATION_MODULES:
            return self.add(_ACTIVATION_MODULES[type(m)](m), [value], path)
        if isinstance(m, _RESHAPE_MODULES):
            return (value[0], _meta_shape(m, shape))
        if isinstance(m, nn.Linear):
            return self.linear(m.weight, m.bias, value, path)
        if isinstance(m, (*_CONV_MODULES, *_CONV_TRANSPOSE_MODULES)) and m.padding_mode != "zeros":
            raise _unsupported(f"{type(m).__name__} with padding_mode={m.padding_mode!r}", path, position)
        if isinstance(m, _CONV_MODULES):
            return self.conv(m.weight, m.bias, m.stride, m.padding, m.dilation, m.groups, value, path)
        if isinstance(m, _CONV_TRANSPOSE_MODULES):
            return self.conv_transpose(m.weight, m.bias, m.stride, [(p, p) for p in m.padding], m.output_padding,
                                       m.dilation, m.groups, value, path)
        if isinstance(m, _BATCH_NORM_MODULES):
            return self.batch_norm(m.weight, m.bias, m.running_mean, m.running_var, m.eps, value, path)
        if isinstance(m, nn.Hardtanh):  # ReLU6 is a Hardtanh
            return self.add(Activation.hardtanh(m.min_val, m.max_val), [value], path)
        if isinstance(m, _MAX_POOL_MODULES):
            if m.return_indices:
                raise _unsupported(f"{type(m).__name__} with return_indices=True", path, position)
            return self.max_pool(m.kernel_size, m.stride, m.padding, m.dilation, m.ceil_mode, value, path)
        if isinstance(m, _ADAPTIVE_MAX_MODULES):
            if m.return_indices:
                raise _unsupported(f"{type(m).__name__} with return_indices=True", path, position)
            return self.adaptive_max_pool(m.output_size, value, path)
        if isinstance(m, _ADAPTIVE_AVG_MODULES):
            return self.adaptive_avg_pool(m.output_size, value, path)
        if isinstance(m, _PAD_MODULES) or type(m) in _MODE_PAD_MODULES:
            flat = [int(v) for v in m.padding]
            pairs = [(0, 0)] * len(shape)
            for i in range(min(len(flat) // 2, len(shape))):
                pairs[len(shape) - 1 - i] = (flat[2 * i], flat[2 * i + 1])
            mode = _MODE_PAD_MODULES.get(type(m), "constant")
            return self.pad_any(pairs, mode, float(getattr(m, "value", 0.0)), value, path)
        if type(m) in _HEAD_MODULES:
            return self.classifier_head(_HEAD_MODULES[type(m)], m.dim, value, path)
        if isinstance(m, nn.LocalResponseNorm):
            if m.size % 2 == 0:
                raise _unsupported("LocalResponseNorm with an even size", path, position)
            return self.add(LocalResponseNorm(int(m.size), float(m.alpha), float(m.beta), float(m.k), shape), [value],
                            path)
        if isinstance(m, nn.LayerNorm):
            n = len(m.normalized_shape)
            out = self.normalize(range(len(shape) - n, len(shape)), m.eps, value, path)
            if m.weight is not None:
                out = self.times_constant(out, _f64(m.weight).numpy(), path)
            if m.bias is not None:
                out = self.plus_constant(out, _f64(m.bias).numpy(), path)
            return out
        if isinstance(m, (nn.InstanceNorm1d, nn.InstanceNorm2d)):
            if m.track_running_stats:
                raise _unsupported(f"{type(m).__name__} with track_running_stats=True", path, position)
            out = self.normalize(range(1, len(shape)), m.eps, value, path)
            if m.affine:
                out = self.add(ChannelAffine(_f64(m.weight), _f64(m.bias), shape), [out], path)
            return out
        if isinstance(m, _AVG_POOL_MODULES):
            if getattr(m, "divisor_override", None) is not None:
                raise _unsupported(f"{type(m).__name__} with divisor_override", path, position)
            return self.avg_pool(m.kernel_size, m.stride, m.padding, m.ceil_mode, m.count_include_pad,
                                 value, path)
        raise _unsupported(type(m).__name__, path, position)

def _meta_shape(fn, shape):
    # Reshape ops are evaluated on a meta tensor with batch 2 (export specialises batch 1 away).
    out = fn(torch.empty(2, *shape, device="meta"))
    if out.shape[0] != 2 or math.prod(out.shape[1:]) != math.prod(shape):
        raise UnsupportedLayerError(f"a reshape from {shape} to {tuple(out.shape[1:])} mixes samples of a batch")
    return tuple(out.shape[1:])


# -- torch.export -------------------------------------------------------------------------------
def _shape_from_exported(ep):
    user_inputs = ep.graph_signature.user_inputs
    for node in ep.graph.nodes:
        if node.op == "placeholder" and node.name in user_inputs:
            return tuple(node.meta["val"].shape[1:])
    raise ValueError("from_torch: cannot find the input of the exported program; pass input_shape")


def _module_path(node):
    stack = node.meta.get("nn_module_stack") or {}
    if not stack:
        return "<top level>"
    path, cls = list(stack.values())[-1]
    cls_name = cls if isinstance(cls, str) else getattr(cls, "__name__", str(cls))
    return f"{path or '<top level>'} ({cls_name.rsplit('.', 1)[-1]})"


_EXPORT_ACTIVATIONS = {
    "relu": lambda a: Activation("relu"),
    "leaky_relu": lambda a: Activation("leaky_relu", {"negative_slope": float(a[1]) if len(a) > 1 else 0.01}),
    "sigmoid": lambda a: Activation("sigmoid"),
    "tanh": lambda a: Activation("tanh"),
    "erf": lambda a: Activation("erf"),
    "gelu": lambda a: Activation("gelu"),
    "softplus": lambda a: Activation("softplus", {"beta": float(a[1]) if len(a) > 1 else 1.0,
                                                  "threshold": float(a[2]) if len(a) > 2 else 20.0}),
    "elu": lambda a: Activation("elu", {"alpha": float(a[1]) if len(a) > 1 else 1.0}),
}
_PASS_THROUGH = {"clone", "contiguous", "alias", "detach", "lift_fresh_copy", "_to_copy"}
_RESHAPES = {"view", "reshape", "_unsafe_view", "flatten", "unflatten", "squeeze", "unsqueeze"}


def _from_exported(ep, input_shape):
    builder = Builder(input_shape, SUPPORTED_LAYERS)
    sig = ep.graph_signature
    constants = {**ep.state_dict, **getattr(ep, "constants", {})}
    env = {}
    for node in ep.graph.nodes:
        if node.op == "placeholder":
            if node.name in sig.user_inputs:
                if env.get("__input__"):
                    raise UnsupportedLayerError("from_torch: models with several inputs are not supported")
                env[node.name] = builder.input_value
                env["__input__"] = True
            else:
                target = (sig.inputs_to_parameters.get(node.name) or sig.inputs_to_buffers.get(node.name)
                          or sig.inputs_to_lifted_tensor_constants.get(node.name))
                env[node.name] = constants[target]
            continue
        if node.op == "output":
            out = node.args[0]
            out = out[0] if isinstance(out, (tuple, list)) else out
            if isinstance(out, (tuple, list)) or len(node.args[0]) != 1:
                raise UnsupportedLayerError("from_torch: models with several outputs are not supported")
            return builder.finish(env[out.name]), builder.head
        if node.op != "call_function":
            raise _unsupported(f"graph node {node.op}", _module_path(node))
        args = [_lookup(env, a) for a in node.args]
        env[node.name] = _export_op(builder, node, args)
        if _op_name(node).endswith("_") and node.args and isinstance(node.args[0], torch.fx.Node):
            # an in-place op (`out += identity`, ReLU(inplace=True)): later reads of the tensor it mutated
            # see the new value
            env[node.args[0].name] = env[node.name]
    raise AssertionError("exported graph has no output")


def _op_name(node):
    return getattr(node.target, "__name__", str(node.target)).split(".")[0]


def _lookup(env, a):
    if isinstance(a, torch.fx.Node):
        return env[a.name]
    if isinstance(a, (list, tuple)) and any(isinstance(b, torch.fx.Node) for b in a):
        return [_lookup(env, b) for b in a]
    return a


class _ValueAndIndices:
    """The (values, indices) pair of a max op; only the values (element 0) may be used."""

    def __init__(self, value):
        self.value = value



def _export_op(builder, node, args):
    target = node.target
    name = _op_name(node)
    if name.endswith("_") and not name.startswith("_"):
        name = name[:-1]  # an in-place op computes what its functional form does
    path = _module_path(node)
    kw = node.kwargs
    if target is __import__("operator").getitem:
        source, index = args
        if isinstance(source, _BatchNormTuple):
            if index != 0:
                raise _unsupported("use of batch-norm statistics", path)
            return source.value
        if isinstance(source, _ValueAndIndices):
            return source.value if index == 0 else source  # using the indices fails at the consumer
        if isinstance(source, list):  # the parts of a split
            return source[index]
        raise _unsupported("getitem", path)
    if any(isinstance(a, HeadValue) or (isinstance(a, list) and any(isinstance(b, HeadValue) for b in a))
           for a in args):
        raise _unsupported(f"aten.{name} of a softmax's output (a softmax is only supported as the final head)", path)
    out = _export_sparse_op(builder, name, args, kw, path)
    if out is not None:
        return out
    if name in _PASS_THROUGH:
        return args[0]
    if name == "dropout" or name == "feature_dropout":
        if len(args) > 2 and args[2]:
            raise ValueError(f"from_torch: Dropout at {path} is in training mode; call model.eval() first")
        return args[0]
    if name in _EXPORT_ACTIVATIONS:
        if name == "gelu" and kw.get("approximate", args[1] if len(args) > 1 else "none") == "tanh":
            return builder.add(Activation("gelu_tanh"), [args[0]], path)
        if name == "elu" and any(float(v) != 1.0 for v in args[2:4]):
            raise _unsupported("elu with scale/input_scale != 1", path)
        return builder.add(_EXPORT_ACTIVATIONS[name](args), [args[0]], path)
    if name in _RESHAPES:
        value, rest = args[0], args[1:]
        fn = getattr(torch.ops.aten, name)
        new_shape = _meta_shape(lambda t: fn(t, *rest, **kw), value[1])
        return (value[0], new_shape)
    if name == "linear":
        return builder.linear(args[1], args[2] if len(args) > 2 else None, args[0], path)
    if name in ("conv1d", "conv2d", "conv3d", "convolution", "conv_transpose1d", "conv_transpose2d",
                "conv_transpose3d"):
        return _export_conv(builder, name, args, path)
    if name == "batch_norm" or name == "_native_batch_norm_legit_no_training":
        x, weight, bias, mean, var = args[:5]
        if name == "batch_norm":
            if args[5]:
                raise ValueError(f"from_torch: BatchNorm at {path} is in training mode; call model.eval() first")
            return builder.batch_norm(weight, bias, mean, var, float(args[7]), x, path)
        return _BatchNormTuple(builder.batch_norm(weight, bias, mean, var, float(args[6]), x, path))
    if name in ("avg_pool1d", "avg_pool2d", "avg_pool3d"):
        kernel = args[1]
        stride = args[2] if len(args) > 2 and args[2] else kernel
        padding = args[3] if len(args) > 3 else 0
        ceil_mode = args[4] if len(args) > 4 else False
        count_include_pad = args[5] if len(args) > 5 else True
        if len(args) > 6 and args[6] is not None:
            raise _unsupported(f"{name} with divisor_override", path)
        return builder.avg_pool(kernel, stride, padding, ceil_mode, count_include_pad, args[0], path)
    if name == "mean":
        return _export_global_mean(builder, name, args, kw, path)
    if name in ("adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_avg_pool3d", "_adaptive_avg_pool2d",
                "_adaptive_avg_pool3d"):
        return builder.adaptive_avg_pool(list(args[1]), args[0], path)
    if name in ("max_pool1d", "max_pool2d", "max_pool3d", "max_pool1d_with_indices", "max_pool2d_with_indices",
                "max_pool3d_with_indices"):
        n_sp = int(name[len("max_pool")])
        kernel = args[1]
        stride = args[2] if len(args) > 2 and args[2] else kernel
        padding = args[3] if len(args) > 3 else 0
        dilation = args[4] if len(args) > 4 else 1
        ceil_mode = args[5] if len(args) > 5 else kw.get("ceil_mode", False)
        if len(args[0][1]) != n_sp + 1:
            raise _unsupported(f"aten.{name} on a per-sample tensor of shape {args[0][1]}", path)
        out = builder.max_pool(kernel, stride, padding, dilation, ceil_mode, args[0], path)
        return _ValueAndIndices(out) if "indices" in name else out
    if name in ("adaptive_max_pool1d", "adaptive_max_pool2d", "adaptive_max_pool3d"):
        return _ValueAndIndices(builder.adaptive_max_pool(list(args[1]), args[0], path))
    if name == "amax" or (name == "max" and len(args) > 1):
        value = args[0]
        dims = args[1] if len(args) > 1 else kw.get("dim", list(range(1, len(value[1]) + 1)))
        dims = [dims] if isinstance(dims, int) else list(dims)
        if not dims:
            dims = list(range(1, len(value[1]) + 1))
        keepdim = args[2] if len(args) > 2 else kw.get("keepdim", False)
        if any(d % (len(value[1]) + 1) == 0 for d in dims):
            raise _unsupported(f"aten.{name} over the batch dimension", path)
        out = builder.amax([d % (len(value[1]) + 1) - 1 for d in dims], keepdim, value, path)
        return out if name == "amax" else _ValueAndIndices(out)
    if name in ("hardtanh", "relu6", "clamp", "clamp_min", "clamp_max"):
        if name == "relu6":
            lo, hi = 0.0, 6.0
        elif name == "hardtanh":
            lo = args[1] if len(args) > 1 else kw.get("min_val", -1.0)
            hi = args[2] if len(args) > 2 else kw.get("max_val", 1.0)
        elif name == "clamp":
            lo = args[1] if len(args) > 1 else kw.get("min")
            hi = args[2] if len(args) > 2 else kw.get("max")
        else:
            lo, hi = (args[1], None) if name == "clamp_min" else (None, args[1])
        if not all(v is None or isinstance(v, (int, float)) for v in (lo, hi)):
            raise _unsupported(f"aten.{name} with tensor bounds", path)
        if lo is None and hi is None:
            return args[0]
        return builder.hardtanh(lo, hi, args[0], path)
    if name == "cat":
        values = args[0]
        if not all(is_value(v) for v in values):
            raise _unsupported("aten.cat with constant tensors", path)
        dim = args[1] if len(args) > 1 else kw.get("dim", 0)
        return builder.concat(values, dim, path)
    if name in ("constant_pad_nd", "pad"):
        value = args[2] if len(args) > 2 else kw.get("value", 0.0)
        mode = kw.get("mode", args[2] if name == "pad" and len(args) > 2 else "constant")
        if name == "pad":
            value = args[3] if len(args) > 3 else kw.get("value", 0.0)
        if mode != "constant" or (value is not None and float(value) != 0.0):
            raise _unsupported(f"aten.{name} (mode {mode!r}, value {value}; only zero padding is linear)", path)
        return builder.pad(args[1], args[0], path)
    if name in ("add", "sub"):
        return _export_add(builder, name, args, kw, path)
    if name in ("mul", "div") and is_value(args[0]) and isinstance(args[1], (int, float)):
        factor = float(args[1]) if name == "mul" else 1.0 / float(args[1])
        return _scaled(builder, args[0], factor, path)
    raise _unsupported(f"op aten.{name}", path)


_EXPORT_SMOOTH = {"selu": "selu", "exp": "exp", "sqrt": "sqrt"}
_CONSTANT_MAKERS = {"zeros": 0.0, "ones": 1.0}


def _export_sparse_op(builder, name, args, kw, path):
    """The linear ops that move or sum entries (one GatherLinear each, shared with the ONNX importer),
    the piecewise-linear abs/maximum/minimum/clamp by tensors, a few smooth ops and a final softmax;
    None for any other op."""
    value = args[0] if args else None
    if name in _CONSTANT_MAKERS or name == "full":  # constants made in the graph (clamp bounds, ...)
        fill = _CONSTANT_MAKERS.get(name, args[1] if len(args) > 1 else kw.get("fill_value"))
        return torch.full(tuple(args[0]), float(fill), dtype=torch.float64)
    if not is_value(value):
        return None
    shape = value[1]
    rank = len(shape) + 1

    def axis(d):
        d = int(d) % rank
        if d == 0:
            raise _unsupported(f"aten.{name} along the batch dimension", path)
        return d - 1

    if name in ("slice", "narrow"):
        if name == "slice":
            d = int(args[1]) if len(args) > 1 else kw.get("dim", 0)
            start = args[2] if len(args) > 2 else kw.get("start")
            end = args[3] if len(args) > 3 else kw.get("end")
            step = args[4] if len(args) > 4 else kw.get("step", 1)
        else:
            d, start, length = (int(v) for v in args[1:4])
            end, step = start + length if start >= 0 else start + length or None, 1
        if int(d) % rank == 0:
            if range(2)[slice(start, end, step)] != range(2):  # export traces with a batch of 2
                raise _unsupported(f"aten.{name} of the batch dimension", path)
            return value
        a = axis(d)
        taken = np.arange(shape[a])[slice(start, end, step)]
        if not taken.size:
            raise _unsupported(f"aten.{name} to an empty tensor", path)
        return builder.gather(value, lambda p: np.take(p, taken, axis=a), path)
    if name == "select":
        a = axis(args[1])
        return builder.gather(value, lambda p: np.take(p, int(args[2]) % shape[a], axis=a), path)
    if name == "index_select":
        a, index = axis(args[1]), _int_constant(args[2], shape[axis(args[1])], name, path)
        return builder.gather(value, lambda p: np.take(p, index, axis=a), path)
    if name == "index":
        return _export_index(builder, value, args[1], path)
    if name in ("split", "split_with_sizes", "chunk", "unbind"):
        d = args[2] if len(args) > 2 else kw.get("dim", 0)
        if name == "unbind":
            d = args[1] if len(args) > 1 else kw.get("dim", 0)
        a = axis(d)
        n = shape[a]
        if name == "split" and isinstance(args[1], int):
            sizes = [min(args[1], n - i) for i in range(0, n, args[1])]
        elif name in ("split", "split_with_sizes"):
            sizes = [int(v) for v in args[1]]
        elif name == "chunk":
            part = -(-n // int(args[1]))
            sizes = [min(part, n - i) for i in range(0, n, part)]
        else:
            sizes = [1] * n
        bounds = np.cumsum([0, *sizes])
        parts = [builder.gather(value, lambda p, lo=lo, hi=hi: np.take(p, np.arange(lo, hi), axis=a), path)
                 for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)]
        if name == "unbind":
            parts = [(i, s[:a] + s[a + 1:]) for i, s in parts]
        return parts
    if name in ("permute", "transpose", "t", "flip", "numpy_T"):
        if name == "permute":
            dims = [int(v) % rank for v in args[1]]
        elif name == "transpose":
            dims = list(range(rank))
            i, j = int(args[1]) % rank, int(args[2]) % rank
            dims[i], dims[j] = dims[j], dims[i]
        elif name == "flip":
            flipped = [axis(v) for v in args[1]]
            return builder.gather(value, lambda p: np.flip(p, flipped), path)
        else:
            dims = list(range(rank))[::-1] if rank <= 2 else None
            if dims is None:
                return None
        if dims[0] != 0:
            raise _unsupported(f"aten.{name} that moves the batch dimension", path)
        return builder.gather(value, lambda p: np.transpose(p, [d - 1 for d in dims[1:]]), path)
    if name in ("expand", "broadcast_to"):
        sizes = [int(v) for v in args[1]]
        if len(sizes) != rank:
            raise _unsupported(f"aten.{name} to {sizes} (a change of rank would move the batch)", path)
        target = tuple(n if t == -1 else t for t, n in zip(sizes[1:], shape, strict=True))
        return builder.broadcast(value, target, path)
    if name == "repeat":
        reps = [int(v) for v in args[1]]
        if len(reps) != rank or reps[0] != 1:
            raise _unsupported(f"aten.repeat by {reps} (the batch repeat must be 1, the rank kept)", path)
        return builder.gather(value, lambda p: np.tile(p, reps[1:]), path,
                              out_size=math.prod(shape) * math.prod(reps))
    if name in ("sum", "mean") and (len(args) > 1 or "dim" in kw or name == "sum"):
        dims = args[1] if len(args) > 1 else kw.get("dim")
        dims = list(range(1, rank)) if dims is None or (isinstance(dims, (list, tuple)) and not dims) else \
            [dims] if isinstance(dims, int) else list(dims)
        keepdim = args[2] if len(args) > 2 else kw.get("keepdim", False)
        if kw.get("dtype") is not None:
            raise _unsupported(f"aten.{name} with a dtype", path)
        return builder.reduce([axis(d) for d in dims], keepdim, name == "mean", value, path)
    if name == "abs":
        return builder.abs(value, path)
    if name == "neg":
        return builder.scaled(value, -1.0, path)
    if name in ("maximum", "minimum", "fmax", "fmin"):
        other = args[1]
        other = other if is_value(other) else _float_array(other)
        return builder.maximum(value, other, path, lower=name in ("minimum", "fmin"))
    if name in ("clamp", "clamp_min", "clamp_max") and any(isinstance(v, torch.Tensor) or is_value(v)
                                                           for v in [*args[1:], *kw.values()]):
        lo = args[1] if len(args) > 1 else kw.get("min")
        hi = args[2] if len(args) > 2 else kw.get("max")
        if name == "clamp_max":
            lo, hi = None, args[1]
        out = value
        for bound, lower in ((lo, False), (hi, True)):
            if bound is not None:
                out = builder.maximum(out, bound if is_value(bound) else _float_array(bound), path, lower=lower)
        return out
    if name in ("pad", "constant_pad_nd", "reflection_pad1d", "reflection_pad2d", "replication_pad1d",
                "replication_pad2d", "circular_pad1d", "circular_pad2d"):
        flat = [int(v) for v in args[1]]
        if name == "pad":
            mode = args[2] if len(args) > 2 else kw.get("mode", "constant")
            fill = args[3] if len(args) > 3 else kw.get("value", None)
        elif name == "constant_pad_nd":
            mode, fill = "constant", args[2] if len(args) > 2 else kw.get("value", 0.0)
        else:
            mode, fill = name.split("_")[0], 0.0
        mode = {"replicate": "edge", "replication": "edge", "circular": "wrap", "reflection": "reflect"}.get(mode, mode)
        if len(flat) % 2 or len(flat) // 2 > len(shape):
            raise _unsupported(f"padding {tuple(flat)} of a per-sample tensor of shape {shape}", path)
        pairs = [(0, 0)] * len(shape)
        for i in range(len(flat) // 2):
            pairs[len(shape) - 1 - i] = (flat[2 * i], flat[2 * i + 1])
        return builder.pad_any(pairs, mode, float(fill or 0.0), value, path)
    if name in ("softmax", "_softmax", "log_softmax", "_log_softmax"):
        d = args[1] if len(args) > 1 else kw.get("dim")
        return builder.classifier_head(name.lstrip("_"), d, value, path)
    if name in _EXPORT_SMOOTH:
        return builder.add(Activation(_EXPORT_SMOOTH[name]), [value], path)
    if name == "layer_norm":
        normalized, weight = list(args[1]), args[2] if len(args) > 2 else None
        bias, eps = (args[3] if len(args) > 3 else None), float(args[4]) if len(args) > 4 else 1e-5
        out = builder.normalize(range(len(shape) - len(normalized), len(shape)), eps, value, path)
        if weight is not None:
            out = builder.times_constant(out, _float_array(weight), path)
        if bias is not None:
            out = builder.plus_constant(out, _float_array(bias), path)
        return out
    if name in ("mul", "div") and isinstance(args[1], torch.Tensor):
        c = _float_array(args[1])
        return builder.times_constant(value, c if name == "mul" else 1.0 / c, path)
    if name in ("add", "sub") and len(args) > 1 and is_value(args[1]):
        alpha = float(kw.get("alpha", args[2] if len(args) > 2 else 1.0))
        return builder.add_values(value, args[1], path, -alpha if name == "sub" else alpha) \
            if value[1] != args[1][1] else None
    if name in ("add", "sub") and len(args) > 1 and isinstance(args[1], torch.Tensor):
        alpha = float(kw.get("alpha", args[2] if len(args) > 2 else 1.0)) * (-1.0 if name == "sub" else 1.0)
        return builder.plus_constant(value, alpha * _float_array(args[1]), path)
    return None


def _float_array(t):
    a = t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)
    return a.astype(np.float64)


def _int_constant(t, dim, name, path):
    index = t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)
    if is_value(t) or not np.issubdtype(index.dtype, np.integer):
        raise _unsupported(f"aten.{name} with input-dependent or non-integer indices", path)
    if index.size and (index.min() < -dim or index.max() >= dim):
        raise ValueError(f"from_torch: aten.{name} at {path}: indices outside [-{dim}, {dim})")
    return np.where(index < 0, index + dim, index).astype(np.int64)


def _export_index(builder, value, indices, path):
    """``x[:, idx]``-style advanced indexing by constant integer tensors (one adjacent block of them)."""
    shape = value[1]
    indices = list(indices)
    if not indices or indices[0] is not None:
        raise _unsupported("aten.index of the batch dimension", path)
    used = [i for i, t in enumerate(indices) if t is not None]
    if used != list(range(used[0], used[-1] + 1)):
        raise _unsupported("aten.index by non-adjacent index tensors", path)
    key = tuple(slice(None) if t is None else _int_constant(t, shape[i - 1], "index", path)
                for i, t in enumerate(indices) if i > 0)
    return builder.gather(value, lambda p: p[key], path)


class _BatchNormTuple:
    """The tuple _native_batch_norm_legit_no_training returns; only element 0 may be used."""

    def __init__(self, value):
        self.value = value


def _scaled(builder, value, factor, path):
    op = ChannelAffine(torch.tensor([factor], dtype=torch.float64), torch.zeros(1, dtype=torch.float64),
                       value[1])
    return builder.add(op, [value], path)


def _export_conv(builder, name, args, path):
    # trailing arguments left at their defaults are not in the graph (conv2d(x, w) for bias=False, stride 1)
    x, weight = args[:2]
    bias = args[2] if len(args) > 2 else None
    n = weight.dim() - 2
    if name == "convolution":
        stride, padding, dilation, transposed, output_padding, groups = args[3:9]
        if transposed:
            return builder.conv_transpose(weight, bias, stride, [(p, p) for p in padding], output_padding, dilation,
                                          groups, x, path)
    elif name.startswith("conv_transpose"):  # (x, w, bias, stride, padding, output_padding, groups, dilation)
        stride, padding, output_padding, groups, dilation = (
            args[i] if len(args) > i else default for i, default in
            ((3, [1] * n), (4, [0] * n), (5, [0] * n), (6, 1), (7, [1] * n)))
        expand = lambda v: [int(v)] * n if isinstance(v, int) else [int(u) for u in v] * (n if len(v) == 1 else 1)
        return builder.conv_transpose(weight, bias, expand(stride), [(p, p) for p in expand(padding)],
                                      expand(output_padding), expand(dilation), groups, x, path)
    else:
        stride = args[3] if len(args) > 3 else [1] * n
        padding = args[4] if len(args) > 4 else [0] * n
        dilation = args[5] if len(args) > 5 else [1] * n
        groups = args[6] if len(args) > 6 else 1
    return builder.conv(weight, bias, stride, padding, dilation, groups, x, path)


def _export_global_mean(builder, name, args, kw, path):
    value = args[0]
    shape = value[1]
    if len(shape) != 3:
        raise _unsupported(f"aten.{name} on a per-sample tensor of shape {shape}", path)
    if name == "mean":
        dims = sorted(d % 4 for d in args[1])
        keepdim = args[2] if len(args) > 2 else kw.get("keepdim", False)
        if dims != [2, 3]:
            raise _unsupported(f"aten.mean over dims {args[1]} (only spatial global means)", path)
    else:
        if list(args[1]) != [1, 1]:
            raise _unsupported(f"adaptive_avg_pool2d to {args[1]} (only to 1x1)", path)
        keepdim = True
    pooled = builder.avg_pool(shape[1:], shape[1:], 0, False, True, value, path)
    return pooled if keepdim else (pooled[0], (shape[0],))


def _export_add(builder, name, args, kw, path):
    a, b = args[0], args[1]
    alpha = float(kw.get("alpha", args[2] if len(args) > 2 else 1.0))
    if name == "sub":
        alpha = -alpha
    if is_value(a) and is_value(b):
        if math.prod(a[1]) != math.prod(b[1]) or a[1] != b[1]:
            raise _unsupported(f"addition of shapes {a[1]} and {b[1]} (broadcasting)", path)
        if alpha != 1.0:
            b = _scaled(builder, b, alpha, path)
        return builder.add(Add(), [a, b], path)
    if is_value(a) and isinstance(b, (int, float)):
        op = ChannelAffine(torch.ones(1, dtype=torch.float64), torch.tensor([alpha * b], dtype=torch.float64), a[1])
        return builder.add(op, [a], path)
    raise _unsupported(f"aten.{name} with a constant tensor", path)
