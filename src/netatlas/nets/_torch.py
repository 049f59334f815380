"""Import torch modules into the IR: plain (nested) nn.Sequential by walking it, anything else
through ``torch.export``. BatchNorm in eval mode is folded into the affine op before it."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from netatlas._errors import UnsupportedLayerError
from netatlas._memory import check_memory
from netatlas.nets._ir import (
    Activation,
    AdaptiveAvgPool,
    Add,
    AvgPool,
    ChannelAffine,
    Concat,
    Conv,
    GatherLinear,
    Head,
    Input,
    Linear,
    LocalResponseNorm,
    Max,
    Net,
    Node,
    Normalize,
    Pad,
    _f64,
)

__all__ = ["from_torch", "SUPPORTED_LAYERS"]

SUPPORTED_LAYERS = (
    "Linear, Conv1d, Conv2d (zero padding), BatchNorm1d/BatchNorm2d (eval mode), ReLU, LeakyReLU, "
    "Identity, Dropout (eval), Flatten/Unflatten/reshape, AvgPool2d, mean and sum over any dims, MaxPool1d/2d, "
    "AdaptiveMaxPool1d/2d, AdaptiveAvgPool1d/2d, max/amax over dims, ReLU6/Hardtanh/clamp (also by tensors), "
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
_POOL_MODULES = (nn.MaxPool1d, nn.MaxPool2d, nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveAvgPool1d,
                 nn.AdaptiveAvgPool2d)
_PAD_MODULES = (nn.ZeroPad1d, nn.ZeroPad2d, nn.ConstantPad1d, nn.ConstantPad2d)
_MODE_PAD_MODULES = {nn.ReflectionPad1d: "reflect", nn.ReflectionPad2d: "reflect", nn.ReplicationPad1d: "edge",
                     nn.ReplicationPad2d: "edge"}
_HEAD_MODULES = {nn.Softmax: "softmax", nn.LogSoftmax: "log_softmax"}
_NORM_MODULES = (nn.LayerNorm, nn.LocalResponseNorm, nn.InstanceNorm1d, nn.InstanceNorm2d)
_LEAF_MODULES = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.BatchNorm1d, nn.BatchNorm2d, nn.AvgPool2d, nn.Hardtanh,
                 *_POOL_MODULES, *_PAD_MODULES, *_ACTIVATION_MODULES, *_IDENTITY_MODULES, *_RESHAPE_MODULES,
                 *_MODE_PAD_MODULES, *_HEAD_MODULES, *_NORM_MODULES)


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
        return _prune_and_fold(*_from_exported(module, tuple(input_shape)))
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
        builder = _Builder(input_shape)
        if isinstance(module, nn.Sequential):
            out = builder.walk(module, builder.input_value, prefix="")
        else:  # a single top-level layer is a one-layer net
            out = builder.layer(module, builder.input_value, "", None)
        nodes = builder.finish(out)
        return _prune_and_fold(nodes, builder.head)
    was_training = module.training
    try:
        module.eval()
        exported = torch.export.export(module, (torch.zeros(2, *input_shape),))
    except UnsupportedLayerError:
        raise
    except Exception as exc:  # torch.export has many failure types; report them as one
        raise UnsupportedLayerError(f"from_torch: torch.export could not trace {type(module).__name__} "
                                    f"({type(exc).__name__}: {str(exc).splitlines()[0][:300]}); netatlas "
                                    f"supports nn.Sequential and traceable modules of: {SUPPORTED_LAYERS}") from None
    finally:
        module.train(was_training)
    return _prune_and_fold(*_from_exported(exported, input_shape))


def _infer_input_shape(module):
    for sub in module.modules():
        if isinstance(sub, nn.Linear):
            return (sub.in_features,)
        if isinstance(sub, (nn.Conv1d, nn.Conv2d)):
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


class _HeadValue:
    """The output of a final softmax / log-softmax: valid only as the model's output (the Net's head)."""

    def __init__(self, value, name):
        self.value, self.name = value, name


class _Builder:
    """Appends IR nodes. A value is (node index, per-sample shape): reshapes only change the shape."""

    def __init__(self, input_shape):
        self.nodes = [Node(Input(tuple(input_shape)), (), tuple(input_shape), "input")]
        self.input_value = (0, tuple(input_shape))
        self.head = None

    def classifier_head(self, name, dim, value, path):
        """A softmax / log-softmax over the per-sample outputs: kept as the Net's head (it must be the
        last op; ``finish`` checks). ``dim`` counts the batch (torch and ONNX opset >= 13)."""
        shape = value[1]
        if dim is not None and len(shape) != 1 and sum(1 for s in shape if s != 1) > 1:
            raise UnsupportedLayerError(f"{name} at {path!r} over a per-sample tensor of shape {shape}; a head is a "
                                        "softmax over flat outputs (flatten the logits first)")
        if dim is not None and int(dim) % (len(shape) + 1) == 0:
            raise UnsupportedLayerError(f"{name} at {path!r} over the batch dimension")
        n = math.prod(shape)
        if dim is not None and shape[int(dim) % (len(shape) + 1) - 1] != n and n > 1:
            raise UnsupportedLayerError(f"{name} at {path!r} over dim {dim} of per-sample shape {shape}, not over "
                                        "all the outputs")
        return _HeadValue(value, name)

    def add(self, op, inputs, name):
        in_shape = inputs[0][1]
        if isinstance(op, Concat):
            shape = op.out_shape()
        elif isinstance(op, (Activation, ChannelAffine, Add)):
            shape = in_shape
        else:
            shape = tuple(op.out_shape(in_shape))
        self.nodes.append(Node(op, tuple(i for i, _ in inputs), shape, name))
        return (len(self.nodes) - 1, shape)

    def finish(self, out):
        if isinstance(out, _HeadValue):
            self.head = Head(out.name)
            out = out.value
        index, _ = out
        if index == 0:
            raise ValueError("from_torch: the model is the identity; nothing to analyse")
        return self.nodes[: index + 1]

    # -- sparse linear ops (one lowering for both importers) -------------------------------------
    def gather(self, value, move, path, fill=0.0, out_size=None):
        """Entries moved, copied or padded: ``move`` maps the per-sample array of positions with NumPy
        (see ``GatherLinear.select``); free when it only reshapes. ``out_size``: the number of outputs
        when ``move`` makes new entries (padding, tiles), checked against the memory budget first."""
        index, shape = value
        n_out = out_size if out_size is not None else math.prod(_meta_positions_shape(move, shape))
        check_memory(16 * n_out, f"from_torch: the index of the gather at {path!r} ({n_out:,} entries)")
        op = GatherLinear.select(shape, move, fill=fill)
        if op.is_identity():
            return (index, op.output_shape)
        return self.add(op, [value], path)

    def pad_any(self, pairs, mode, fill, value, path):
        """Padding of every per-sample dim by ``pairs[d] = (before, after)`` in NumPy's ``mode``
        (constant ``fill``: an affine shift; reflect, edge, wrap) as a GatherLinear selection; zero
        constant padding stays the Pad op. Negative pads crop (constant mode only)."""
        shape = value[1]
        pairs = [(int(lo), int(hi)) for lo, hi in pairs]
        if mode == "constant" and fill == 0.0:
            return self.pad([v for lo_hi in reversed(pairs) for v in lo_hi], value, path)
        if mode not in ("constant", "reflect", "edge", "wrap"):
            raise UnsupportedLayerError(f"padding in mode {mode!r} at {path!r} (constant, reflect, edge/replicate and "
                                        "wrap/circular are supported)")
        if mode != "constant" and any(lo < 0 or hi < 0 for lo, hi in pairs):
            raise UnsupportedLayerError(f"padding in mode {mode!r} with negative pads {pairs} at {path!r}")
        if mode in ("reflect", "wrap") and any(max(lo, hi) > n - (mode == "reflect") for (lo, hi), n in
                                               zip(pairs, shape, strict=True)):
            raise UnsupportedLayerError(f"padding in mode {mode!r} by {pairs} of a per-sample shape {shape} at "
                                        f"{path!r} (each pad must be smaller than its dim)")
        out_shape = [n + lo + hi for (lo, hi), n in zip(pairs, shape, strict=True)]
        if min(out_shape) <= 0:
            raise UnsupportedLayerError(f"padding by {pairs} at {path!r} crops all of the per-sample shape {shape}")
        grow = [(max(lo, 0), max(hi, 0)) for lo, hi in pairs]
        crop = tuple(slice(max(-lo, 0), max(-lo, 0) + m) for (lo, _), m in zip(pairs, out_shape, strict=True))

        def move(p):
            kw = {"constant_values": -1} if mode == "constant" else {}  # -1: a padded entry, worth ``fill``
            return np.pad(p, grow, mode=mode, **kw)[crop]

        size = math.prod(n + lo + hi for (lo, hi), n in zip(grow, shape, strict=True))
        return self.gather(value, move, path, fill=float(fill), out_size=size)

    def times_constant(self, value, constant, path):
        """``value * constant``, the constant broadcast against the per-sample shape (elementwise weights)."""
        c = np.asarray(constant, dtype=np.float64)
        if c.size == 1:
            return self.scaled(value, float(c.reshape(())), path)
        c = _per_sample_array(c, value[1], path)
        n = math.prod(value[1])
        op = GatherLinear(torch.arange(n).reshape(n, 1), torch.tensor(c.reshape(n, 1).copy()), None, value[1],
                          value[1])
        return self.add(op, [value], path)

    def reduce(self, dims, keepdims, mean, value, path):
        """Sum (mean) over per-sample dims ``dims``; the global spatial mean stays the average pool."""
        shape = value[1]
        dims = sorted({int(d) % len(shape) for d in dims})
        if not dims:
            return value
        if mean and len(shape) == 3 and dims == [1, 2]:
            pooled = self.avg_pool(shape[1:], shape[1:], 0, False, True, value, path)
            return pooled if keepdims else (pooled[0], (shape[0],))
        check_memory(16 * math.prod(shape), f"from_torch: the index of the reduction at {path!r}")
        op = GatherLinear.reduce(shape, dims, keepdims=keepdims, mean=mean)
        return self.add(op, [value], path)

    def broadcast(self, value, shape, path):
        """``value`` expanded to the per-sample ``shape`` (NumPy broadcasting, same rank or fewer dims)."""
        shape = tuple(int(s) for s in shape)
        if value[1] == shape:
            return value
        src = value[1]
        lead = len(shape) - len(src)
        if lead < 0 or any(s not in (1, t) for s, t in zip(src, shape[lead:], strict=True)):
            raise UnsupportedLayerError(f"broadcasting of a per-sample shape {src} to {shape} at {path!r} is not "
                                        "possible")
        return self.gather(value, lambda p: np.broadcast_to(p, shape), path)

    def scaled(self, value, factor, path):
        op = ChannelAffine(torch.tensor([float(factor)], dtype=torch.float64), torch.zeros(1, dtype=torch.float64),
                           value[1])
        return self.add(op, [value], path)

    def plus_constant(self, value, constant, path):
        """``value + constant``, the constant any array broadcast against the per-sample shape: one
        shifted identity gather (a per-channel or scalar constant stays a ChannelAffine)."""
        c = _per_sample_array(constant, value[1], path)
        n = math.prod(value[1])
        op = GatherLinear(torch.arange(n).reshape(n, 1), None, torch.tensor(c.reshape(-1).copy()), value[1], value[1])
        return self.add(op, [value], path)

    def add_values(self, a, b, path, sign=1.0):
        """``a + sign * b`` of two values, broadcast to their common per-sample shape."""
        shape = _broadcast_shapes(a[1], b[1], path)
        a, b = self.broadcast(a, shape, path), self.broadcast(b, shape, path)
        if sign != 1.0:
            b = self.scaled(b, sign, path)
        return self.add(Add(), [a, b], path)

    def relu(self, value, path):
        return self.add(Activation("relu"), [value], path)

    def abs(self, value, path):
        """|x| = relu(x) + relu(-x): two ReLUs with the same kink (no new region rule)."""
        positive = self.relu(value, path)
        negative = self.relu(self.scaled(value, -1.0, path), path)
        return self.add(Add(), [positive, negative], path)

    def maximum(self, a, b, path, lower=False):
        """max(a, b) = a + relu(b - a); min(a, b) = a - relu(a - b). ``a`` or ``b`` may be a constant
        array (NumPy), not both; ties are a ReLU's (a vanishing difference does not cut)."""
        if not _is_value(a):
            a, b = b, a
        if not _is_value(b):  # max(x, c) = c + relu(x - c); min(x, c) = c - relu(c - x)
            c = np.asarray(b, dtype=np.float64)
            diff = self.plus_constant(a, -c, path) if not lower else \
                self.plus_constant(self.scaled(a, -1.0, path), c, path)
            r = self.relu(diff, path)
            return self.plus_constant(r if not lower else self.scaled(r, -1.0, path), c, path)
        shape = _broadcast_shapes(a[1], b[1], path)
        a, b = self.broadcast(a, shape, path), self.broadcast(b, shape, path)
        diff = self.add_values(b, a, path, -1.0) if not lower else self.add_values(a, b, path, -1.0)
        r = self.relu(diff, path)
        return self.add_values(a, r, path, -1.0 if lower else 1.0)

    def normalize(self, axes, eps, value, path):
        return self.add(Normalize(tuple(int(a) for a in axes), float(eps), value[1]), [value], path)

    # -- nn.Sequential walk ---------------------------------------------------------------------
    def walk(self, module, value, prefix):
        for position, (name, child) in enumerate(module.named_children()):
            path = f"{prefix}.{name}" if prefix else name
            if isinstance(value, _HeadValue):
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
        if isinstance(m, (nn.Conv1d, nn.Conv2d)):
            if m.padding_mode != "zeros":
                raise _unsupported(f"{type(m).__name__} with padding_mode={m.padding_mode!r}", path, position)
            return self.conv(m.weight, m.bias, m.stride, m.padding, m.dilation, m.groups, value, path)
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            return self.batch_norm(m.weight, m.bias, m.running_mean, m.running_var, m.eps, value, path)
        if isinstance(m, nn.Hardtanh):  # ReLU6 is a Hardtanh
            return self.add(Activation.hardtanh(m.min_val, m.max_val), [value], path)
        if isinstance(m, (nn.MaxPool1d, nn.MaxPool2d)):
            if m.return_indices:
                raise _unsupported(f"{type(m).__name__} with return_indices=True", path, position)
            return self.max_pool(m.kernel_size, m.stride, m.padding, m.dilation, m.ceil_mode, value, path)
        if isinstance(m, (nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d)):
            if m.return_indices:
                raise _unsupported(f"{type(m).__name__} with return_indices=True", path, position)
            return self.adaptive_max_pool(m.output_size, value, path)
        if isinstance(m, (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d)):
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
        if isinstance(m, nn.AvgPool2d):
            if m.divisor_override is not None:
                raise _unsupported("AvgPool2d with divisor_override", path, position)
            return self.avg_pool(m.kernel_size, m.stride, m.padding, m.ceil_mode, m.count_include_pad,
                                 value, path)
        raise _unsupported(type(m).__name__, path, position)

    # -- ops shared by both importers -----------------------------------------------------------
    def linear(self, weight, bias, value, path):
        idx, shape = value
        if len(shape) != 1:
            raise UnsupportedLayerError(f"Linear at {path!r} is applied to a per-sample tensor of shape "
                                        f"{shape}; flatten it first (nn.Flatten())")
        if shape[0] != weight.shape[1]:
            raise ValueError(f"from_torch: Linear at {path!r} expects {weight.shape[1]} inputs but receives "
                             f"{shape[0]}; check input_shape")
        b = _f64(bias) if bias is not None else torch.zeros(weight.shape[0], dtype=torch.float64)
        return self.add(Linear(_f64(weight), b), [value], path)

    def conv(self, weight, bias, stride, padding, dilation, groups, value, path):
        n_spatial = weight.dim() - 2
        shape = value[1]
        if len(shape) != n_spatial + 1 or shape[0] != weight.shape[1] * groups:
            raise ValueError(f"from_torch: Conv{n_spatial}d at {path!r} expects ({weight.shape[1] * groups}, "
                             f"{', '.join('...' for _ in range(n_spatial))}) per sample but receives {shape}; "
                             "check input_shape")
        expand = lambda v: tuple(v) * (n_spatial if len(tuple(v)) == 1 else 1)
        if isinstance(padding, str):
            padding = _string_padding(padding, weight.shape[2:], expand(dilation), path)
        b = _f64(bias) if bias is not None else torch.zeros(weight.shape[0], dtype=torch.float64)
        op = Conv(_f64(weight), b, expand(stride), expand(padding), expand(dilation), int(groups), shape)
        return self.add(op, [value], path)

    def batch_norm(self, weight, bias, mean, var, eps, value, path):
        scale = 1.0 / torch.sqrt(_f64(var) + eps)
        if weight is not None:
            scale = scale * _f64(weight)
        shift = -_f64(mean) * scale + (_f64(bias) if bias is not None else 0.0)
        return self.add(ChannelAffine(scale, shift, value[1]), [value], path)

    def avg_pool(self, kernel, stride, padding, ceil_mode, count_include_pad, value, path):
        pair = lambda v: (v, v) if isinstance(v, int) else tuple(v)
        stride = pair(stride) if stride else pair(kernel)
        op = AvgPool(pair(kernel), stride, pair(padding), bool(ceil_mode), bool(count_include_pad), value[1])
        if len(value[1]) != 3:
            raise ValueError(f"from_torch: AvgPool2d at {path!r} needs (C, H, W) per sample, got {value[1]}")
        return self.add(op, [value], path)


    def max_pool(self, kernel, stride, padding, dilation, ceil_mode, value, path):
        try:
            op = Max.pool(value[1], kernel, stride, padding, dilation, ceil_mode)
        except ValueError as exc:
            raise ValueError(f"from_torch: max pooling at {path!r}: {exc}") from None
        return self.add(op, [value], path)

    def adaptive_max_pool(self, output_size, value, path):
        try:
            op = Max.adaptive(value[1], output_size)
        except ValueError as exc:
            raise ValueError(f"from_torch: adaptive max pooling at {path!r}: {exc}") from None
        return self.add(op, [value], path)

    def amax(self, dims, keepdim, value, path):
        return self.add(Max.over_dims(value[1], dims, keepdim), [value], path)

    def adaptive_avg_pool(self, output_size, value, path):
        shape = value[1]
        if len(shape) not in (2, 3):
            raise ValueError(f"from_torch: adaptive average pooling at {path!r} needs (C, L) or (C, H, W) per "
                             f"sample, got {shape}")
        n_sp = len(shape) - 1
        size = (output_size,) * n_sp if isinstance(output_size, int) else tuple(output_size)
        size = tuple(n if o is None else int(o) for o, n in zip(size, shape[1:], strict=True))
        return self.add(AdaptiveAvgPool(size, shape), [value], path)

    def pad(self, padding, value, path):
        """Zero padding, torch order: (before, after) pairs from the last dim backwards (F.pad)."""
        shape = value[1]
        flat = [int(v) for v in padding]
        if len(flat) % 2 or len(flat) // 2 > len(shape):
            raise _unsupported(f"padding {tuple(flat)} of a per-sample tensor of shape {shape}", path)
        pairs = [(0, 0)] * len(shape)
        for i in range(len(flat) // 2):
            pairs[len(shape) - 1 - i] = (flat[2 * i], flat[2 * i + 1])
        try:
            return self.add(Pad(tuple(pairs), shape), [value], path)
        except ValueError as exc:
            raise ValueError(f"from_torch: padding at {path!r}: {exc}") from None

    def hardtanh(self, min_val, max_val, value, path):
        lo = -math.inf if min_val is None else float(min_val)
        hi = math.inf if max_val is None else float(max_val)
        return self.add(Activation.hardtanh(lo, hi), [value], path)

    def concat(self, values, dim, path):
        shapes = [v[1] for v in values]
        rank = len(shapes[0])
        dim = dim - 1 if dim > 0 else (dim + rank if dim < 0 else -1)  # torch dims count the batch
        if dim < 0 or any(len(s) != rank or s[:dim] + s[dim + 1:] != shapes[0][:dim] + shapes[0][dim + 1:]
                          for s in shapes):
            raise _unsupported(f"concatenation of shapes {shapes}", path)
        if len(values) == 1:
            return values[0]
        return self.add(Concat(dim, tuple(shapes)), list(values), path)


def _per_sample_array(c, shape, path):
    """A constant broadcast against (batch, *shape) as an array of the per-sample ``shape``."""
    c = np.asarray(c, dtype=np.float64)
    if c.ndim > len(shape):
        if any(d != 1 for d in c.shape[: c.ndim - len(shape)]):
            raise UnsupportedLayerError(f"a constant of shape {c.shape} at {path!r} differs between the samples of "
                                        "a batch")
        c = c.reshape(c.shape[c.ndim - len(shape):])
    try:
        return np.broadcast_to(c, shape)
    except ValueError:
        raise UnsupportedLayerError(f"a constant of shape {c.shape} at {path!r} does not broadcast to the per-sample "
                                    f"shape {shape}") from None


def _broadcast_shapes(a, b, path):
    try:
        return tuple(np.broadcast_shapes(tuple(a), tuple(b)))
    except ValueError:
        raise UnsupportedLayerError(f"an elementwise op of per-sample shapes {a} and {b} at {path!r} (they do not "
                                    "broadcast)") from None


def _meta_positions_shape(move, shape):
    """The shape ``move`` gives an array of per-sample ``shape`` (a zero-stride view: no allocation)."""
    return np.shape(move(np.broadcast_to(np.zeros((), dtype=np.int64), shape)))


def _string_padding(padding, kernel, dilation, path):
    if padding == "valid":
        return (0,) * len(kernel)
    totals = [d * (k - 1) for d, k in zip(dilation, kernel, strict=True)]
    if any(t % 2 for t in totals):
        raise UnsupportedLayerError(f"Conv at {path!r}: padding='same' with an even kernel pads asymmetrically, "
                                    "which netatlas does not support; use explicit symmetric padding")
    return tuple(t // 2 for t in totals)


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
    builder = _Builder(input_shape)
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


def _is_value(a):
    return isinstance(a, tuple) and len(a) == 2 and isinstance(a[0], int)


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
    if any(isinstance(a, _HeadValue) or (isinstance(a, list) and any(isinstance(b, _HeadValue) for b in a))
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
    if name in ("conv1d", "conv2d", "convolution"):
        return _export_conv(builder, name, args, path)
    if name == "batch_norm" or name == "_native_batch_norm_legit_no_training":
        x, weight, bias, mean, var = args[:5]
        if name == "batch_norm":
            if args[5]:
                raise ValueError(f"from_torch: BatchNorm at {path} is in training mode; call model.eval() first")
            return builder.batch_norm(weight, bias, mean, var, float(args[7]), x, path)
        return _BatchNormTuple(builder.batch_norm(weight, bias, mean, var, float(args[6]), x, path))
    if name in ("avg_pool2d",):
        kernel = args[1]
        stride = args[2] if len(args) > 2 and args[2] else kernel
        padding = args[3] if len(args) > 3 else 0
        ceil_mode = args[4] if len(args) > 4 else False
        count_include_pad = args[5] if len(args) > 5 else True
        if len(args) > 6 and args[6] is not None:
            raise _unsupported("avg_pool2d with divisor_override", path)
        return builder.avg_pool(kernel, stride, padding, ceil_mode, count_include_pad, args[0], path)
    if name == "mean":
        return _export_global_mean(builder, name, args, kw, path)
    if name in ("adaptive_avg_pool2d", "adaptive_avg_pool1d", "_adaptive_avg_pool2d"):
        return builder.adaptive_avg_pool(list(args[1]), args[0], path)
    if name in ("max_pool2d", "max_pool1d", "max_pool2d_with_indices", "max_pool1d_with_indices"):
        n_sp = 2 if "2d" in name else 1
        kernel = args[1]
        stride = args[2] if len(args) > 2 and args[2] else kernel
        padding = args[3] if len(args) > 3 else 0
        dilation = args[4] if len(args) > 4 else 1
        ceil_mode = args[5] if len(args) > 5 else kw.get("ceil_mode", False)
        if len(args[0][1]) != n_sp + 1:
            raise _unsupported(f"aten.{name} on a per-sample tensor of shape {args[0][1]}", path)
        out = builder.max_pool(kernel, stride, padding, dilation, ceil_mode, args[0], path)
        return _ValueAndIndices(out) if "indices" in name else out
    if name in ("adaptive_max_pool2d", "adaptive_max_pool1d"):
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
        if not all(_is_value(v) for v in values):
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
    if name in ("mul", "div") and _is_value(args[0]) and isinstance(args[1], (int, float)):
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
    if not _is_value(value):
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
        other = other if _is_value(other) else _float_array(other)
        return builder.maximum(value, other, path, lower=name in ("minimum", "fmin"))
    if name in ("clamp", "clamp_min", "clamp_max") and any(isinstance(v, torch.Tensor) or _is_value(v)
                                                           for v in [*args[1:], *kw.values()]):
        lo = args[1] if len(args) > 1 else kw.get("min")
        hi = args[2] if len(args) > 2 else kw.get("max")
        if name == "clamp_max":
            lo, hi = None, args[1]
        out = value
        for bound, lower in ((lo, False), (hi, True)):
            if bound is not None:
                out = builder.maximum(out, bound if _is_value(bound) else _float_array(bound), path, lower=lower)
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
    if name in ("add", "sub") and len(args) > 1 and _is_value(args[1]):
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
    if _is_value(t) or not np.issubdtype(index.dtype, np.integer):
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
    if name == "convolution":
        stride, padding, dilation, transposed, output_padding, groups = args[3:9]
        if transposed:
            raise _unsupported("transposed convolution", path)
    else:
        n = weight.dim() - 2
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
    if _is_value(a) and _is_value(b):
        if math.prod(a[1]) != math.prod(b[1]) or a[1] != b[1]:
            raise _unsupported(f"addition of shapes {a[1]} and {b[1]} (broadcasting)", path)
        if alpha != 1.0:
            b = _scaled(builder, b, alpha, path)
        return builder.add(Add(), [a, b], path)
    if _is_value(a) and isinstance(b, (int, float)):
        op = ChannelAffine(torch.ones(1, dtype=torch.float64), torch.tensor([alpha * b], dtype=torch.float64), a[1])
        return builder.add(op, [a], path)
    raise _unsupported(f"aten.{name} with a constant tensor", path)


# -- clean-up passes ----------------------------------------------------------------------------
def _prune_and_fold(nodes, head=None) -> Net:
    """Drop nodes the output does not use, then fold each ChannelAffine into a Linear/Conv whose only
    consumer it is (BatchNorm folding)."""
    nodes = list(nodes)
    consumers = [[] for _ in nodes]
    for i, node in enumerate(nodes):
        for j in node.inputs:
            consumers[j].append(i)
    live = [False] * len(nodes)
    live[-1] = True
    for i in range(len(nodes) - 1, -1, -1):
        if live[i]:
            for j in nodes[i].inputs:
                live[j] = True
    remap, kept = {}, []
    for i, node in enumerate(nodes):
        if not live[i]:
            continue
        op, inputs = node.op, tuple(remap[j] for j in node.inputs)
        parent = kept[inputs[0]] if inputs else None
        # Fold only when the affine sees the parent's own output layout (no reshape in between).
        if (isinstance(op, ChannelAffine) and len(consumers[node.inputs[0]]) == 1
                and (op.scale.numel() == 1 or parent.shape == op.in_shape)):
            folded = _fold(parent.op, op)
            if folded is not None:
                kept[inputs[0]] = Node(folded, parent.inputs, parent.shape, f"{parent.name}+{node.name}")
                remap[i] = inputs[0]
                continue
        remap[i] = len(kept)
        kept.append(Node(op, inputs, node.shape, node.name))
    return Net(kept, head)


def _fold(parent, affine):
    if isinstance(parent, Linear):
        scale = affine.scale.expand(parent.weight.shape[0])
        shift = affine.shift.expand(parent.weight.shape[0])
        return Linear(parent.weight * scale[:, None], parent.bias * scale + shift)
    if isinstance(parent, Conv):
        n_out = parent.weight.shape[0]
        scale = affine.scale.expand(n_out)
        shift = affine.shift.expand(n_out)
        view = (-1,) + (1,) * (parent.weight.dim() - 1)
        return Conv(parent.weight * scale.reshape(view), parent.bias * scale + shift, parent.stride,
                    parent.padding, parent.dilation, parent.groups, parent.in_shape)
    return None
