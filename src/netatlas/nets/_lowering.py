"""The one lowering both importers share (``from_torch`` and ``from_onnx``): a builder that appends IR
nodes for each op (linear, convolution, pooling, the sparse ops that move or sum entries, piecewise-linear
and smooth ops, a classifier head), and the clean-up pass that drops unused nodes and folds eval-mode
BatchNorm into the layer before it. An importer only reads its format and calls the builder."""

from __future__ import annotations

import math

import numpy as np
import torch

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
    Max,
    Net,
    Node,
    Normalize,
    Pad,
    _f64,
)

__all__ = ["Builder", "HeadValue", "is_value", "prune_and_fold"]


class HeadValue:
    """The output of a final softmax / log-softmax: valid only as the model's output (the Net's head)."""

    def __init__(self, value, name):
        self.value, self.name = value, name


class Builder:
    """Appends IR nodes. A value is (node index, per-sample shape): reshapes only change the shape."""

    def __init__(self, input_shape, supported):
        self.supported = supported  # the importer's list of supported ops, for its error messages
        self.nodes = [Node(Input(tuple(input_shape)), (), tuple(input_shape), "input")]
        self.input_value = (0, tuple(input_shape))
        self.head = None

    def unsupported(self, kind, path):
        where = f"{path!r}" if path else "the top level"
        return UnsupportedLayerError(f"{kind} at {where} is not supported; supported: {self.supported}")

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
        return HeadValue(value, name)

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
        if isinstance(out, HeadValue):
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
        if not is_value(a):
            a, b = b, a
        if not is_value(b):  # max(x, c) = c + relu(x - c); min(x, c) = c - relu(c - x)
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

    def conv_transpose(self, weight, bias, stride, pads, output_padding, dilation, groups, value, path):
        """A transposed convolution (torch ``conv_transpose{1,2,3}d`` / ONNX ConvTranspose), exactly, as a
        convolution of the input with zeros inserted: one zero-filling GatherLinear selection (no
        arithmetic), then a Conv with the flipped kernel; never a dense matrix.

        ``weight`` (C_in, C_out / groups, *kernel); ``pads`` one (before, after) pair per spatial dim (the
        entries cut from the full output; may be asymmetric); ``output_padding`` entries added after."""
        # NOTE [transposed convolution as a convolution]: along each dim the full transposed convolution
        # is out[s i + d t] += x[i] w[t] (length (n - 1) s + d (K - 1) + 1). With z the input spread to
        # stride s (z[s i] = x[i], zeros between), padded by e = d (K - 1) on both sides, it is the
        # convolution of z with the flipped kernel w[K - 1 - t] at dilation d. Cropping ``before`` and
        # ``after`` entries (and adding ``output_padding`` zeros at the end) changes that padding to
        # (e - before, e - after + output_padding); a negative padding crops z. The inserted zeros add
        # exact zeros, so only the order of the float64 sums differs from torch's.
        weight = _f64(weight)
        n_sp = weight.dim() - 2
        shape = value[1]
        groups = int(groups)
        if len(shape) != n_sp + 1 or shape[0] != weight.shape[0]:
            raise ValueError(f"from_torch: ConvTranspose{n_sp}d at {path!r} expects ({weight.shape[0]}, "
                             f"{', '.join('...' for _ in range(n_sp))}) per sample but receives {shape}; "
                             "check input_shape")
        if weight.shape[0] % groups:
            raise ValueError(f"from_torch: ConvTranspose{n_sp}d at {path!r}: {weight.shape[0]} input channels do "
                             f"not split into {groups} groups")
        kernel = tuple(weight.shape[2:])
        widths = [d * (k - 1) for k, d in zip(kernel, dilation, strict=True)]
        spread = [(e - lo, e - hi + extra) for e, (lo, hi), extra in zip(widths, pads, output_padding, strict=True)]
        out = [(n - 1) * s + 1 + lo + hi - e for n, s, (lo, hi), e in zip(shape[1:], stride, spread, widths,
                                                                           strict=True)]
        if min(out) <= 0:
            raise UnsupportedLayerError(f"ConvTranspose{n_sp}d at {path!r}: its pads {tuple(pads)} crop the whole "
                                        f"output of per-sample input {shape}")
        if any(s > 1 for s in stride) or any(lo != hi or lo < 0 for lo, hi in spread):
            size = shape[0] * math.prod((n - 1) * s + 1 + lo + hi for n, s, (lo, hi) in
                                        zip(shape[1:], stride, spread, strict=True))
            value = self.gather(value, lambda p: _spread(p, stride, spread), path, out_size=size)
            padding = (0,) * n_sp
        else:  # stride 1 and symmetric: the Conv's own zero padding
            padding = tuple(lo for lo, _ in spread)
        c_in, c_out_group = weight.shape[0] // groups, weight.shape[1]
        # (C_in, C_out/g, *K) -> (C_out, C_in/g, *K), group by group, each kernel flipped
        w = weight.reshape(groups, c_in, c_out_group, *kernel).transpose(1, 2)
        w = w.reshape(groups * c_out_group, c_in, *kernel).flip(list(range(2, 2 + n_sp))).contiguous()
        b = _f64(bias) if bias is not None else torch.zeros(w.shape[0], dtype=torch.float64)
        op = Conv(w, b, (1,) * n_sp, padding, tuple(int(d) for d in dilation), groups, value[1])
        return self.add(op, [value], path)

    def avg_pool(self, kernel, stride, padding, ceil_mode, count_include_pad, value, path):
        n_sp = len(value[1]) - 1
        per_dim = lambda v: (int(v),) * n_sp if isinstance(v, int) else \
            tuple(int(u) for u in v) * (n_sp if len(tuple(v)) == 1 else 1)
        if n_sp not in (1, 2, 3) or len(per_dim(kernel)) != n_sp:
            raise ValueError(f"from_torch: average pooling at {path!r} with kernel {kernel} needs (C, L), (C, H, W) "
                             f"or (C, D, H, W) per sample with one kernel size per spatial dim, got {value[1]}")
        if n_sp == 3 and any(k > n for k, n in zip(per_dim(kernel), value[1][1:], strict=True)):
            # torch's avg_pool3d (which evaluates the op) refuses windows wider than the unpadded input
            raise UnsupportedLayerError(f"3-D average pooling at {path!r} with kernel {per_dim(kernel)} wider than "
                                        f"its unpadded input {value[1][1:]}")
        stride = per_dim(stride) if stride else per_dim(kernel)
        op = AvgPool(per_dim(kernel), stride, per_dim(padding), bool(ceil_mode), bool(count_include_pad), value[1])
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
        if len(shape) not in (2, 3, 4):
            raise ValueError(f"from_torch: adaptive average pooling at {path!r} needs (C, L), (C, H, W) or "
                             f"(C, D, H, W) per sample, got {shape}")
        n_sp = len(shape) - 1
        size = (output_size,) * n_sp if isinstance(output_size, int) else tuple(output_size)
        size = tuple(n if o is None else int(o) for o, n in zip(size, shape[1:], strict=True))
        return self.add(AdaptiveAvgPool(size, shape), [value], path)

    def pad(self, padding, value, path):
        """Zero padding, torch order: (before, after) pairs from the last dim backwards (F.pad)."""
        shape = value[1]
        flat = [int(v) for v in padding]
        if len(flat) % 2 or len(flat) // 2 > len(shape):
            raise self.unsupported(f"padding {tuple(flat)} of a per-sample tensor of shape {shape}", path)
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
            raise self.unsupported(f"concatenation of shapes {shapes}", path)
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


def _spread(positions, stride, pads):
    """``positions`` (C, *spatial) spread to ``stride`` along each spatial dim (-1, a zero, between), then
    padded by ``pads[d] = (before, after)`` entries of -1 (negative: cropped)."""
    lengths = [(n - 1) * s + 1 for n, s in zip(positions.shape[1:], stride, strict=True)]
    grown = [(max(lo, 0), max(hi, 0)) for lo, hi in pads]
    out = np.full((positions.shape[0], *(m + lo + hi for m, (lo, hi) in zip(lengths, grown, strict=True))), -1,
                  dtype=positions.dtype)
    out[(slice(None), *(slice(lo, lo + m, s) for (lo, _), m, s in zip(grown, lengths, stride, strict=True)))] = \
        positions
    crop = tuple(slice(max(-lo, 0), n - max(-hi, 0)) for (lo, hi), n in zip(pads, out.shape[1:], strict=True))
    return out[(slice(None), *crop)]


def _string_padding(padding, kernel, dilation, path):
    if padding == "valid":
        return (0,) * len(kernel)
    totals = [d * (k - 1) for d, k in zip(dilation, kernel, strict=True)]
    if any(t % 2 for t in totals):
        raise UnsupportedLayerError(f"Conv at {path!r}: padding='same' with an even kernel pads asymmetrically, "
                                    "which netatlas does not support; use explicit symmetric padding")
    return tuple(t // 2 for t in totals)



def is_value(a):
    return isinstance(a, tuple) and len(a) == 2 and isinstance(a[0], int)


# -- clean-up passes ----------------------------------------------------------------------------
def prune_and_fold(nodes, head=None) -> Net:
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
