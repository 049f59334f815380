"""The network IR shared by every lens: a tiny graph of affine ops and elementwise activations.

Every value in the graph is a batch of *flattened* per-sample tensors, shape (B, n); each node also
records its per-sample shape (for convolutions). Flatten/reshape are therefore free, and every
non-activation op is an affine map of its inputs. Evaluation is in float64.

    node 0            the input                              shape = input_shape
    Linear/Conv/...   affine map of one node                 y = A x + c
    AdaptiveAvgPool   linear map of one node                 y = P x
    Add               sum of two nodes (residual additions)  y = x_a + x_b
    Concat            concatenation of several nodes         y = cat(x_1, ..., x_m) along one dim
    Activation        elementwise nonlinearity of one node   y = phi(x)
    Max               max over index sets of one node        y[j] = max_{i in index[j]} x[i]
    GatherLinear      sparse linear map of one node          y[j] = sum_k w[j, k] x[index[j, k]] + c[j]
    Normalize         (x - mean) / sqrt(var + eps) over axes  smooth (instance / layer normalisation)
    LocalResponseNorm x / (bias + alpha/size sum x^2)^beta    smooth (AlexNet's LRN)

GatherLinear is the one sparse form of every op that moves or sums entries: slices, splits, tiles,
expands, gathers by constant indices, transposes of any size, reflect/edge/constant padding (the
constant as the shift c) and sums/means over any axes; nothing of it is ever a dense matrix. A
transposed convolution is a GatherLinear that spreads its input to the stride (zeros between) followed
by a Conv (1-D, 2-D or 3-D, like the pools).
A final softmax or log-softmax is kept as the Net's ``head`` (:class:`Head`): ``net(x)`` returns the
logits, which every piecewise-linear lens analyses (the head is monotone per sample, so the arg-max,
decision boundaries and linear regions are those of the logits); ``net.head_output(x)`` applies it.

A lens that needs piecewise-linear structure walks ``net.nonlinear`` (the Activation and Max nodes,
in topological order; ``net.activations`` lists the Activation nodes only): the input of each is a
continuous piecewise-linear function of the network input as long as every earlier nonlinear node
is piecewise linear. ``Max`` is always piecewise linear; max pooling, adaptive max pooling and
max/amax over a dimension all lower to it (``Max.pool``, ``Max.adaptive``, ``Max.over_dims``).
Hardtanh/ReLU6/clamp are the activation ``"hardtanh"`` with ``min_val``/``max_val`` (either may be
infinite): a piecewise-linear activation with up to two breakpoints.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "Activation",
    "AdaptiveAvgPool",
    "Add",
    "AvgPool",
    "Concat",
    "ChannelAffine",
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
    "PIECEWISE_LINEAR",
    "SMOOTH",
]

PIECEWISE_LINEAR = ("relu", "leaky_relu", "identity", "hardtanh")
SMOOTH = ("sigmoid", "tanh", "gelu", "gelu_tanh", "softplus", "elu", "erf", "selu", "exp", "sqrt", "softsign")
#: Kinds of ops that are smooth but not elementwise: the smooth lenses take them, the regions lens refuses them.
SMOOTH_OP_KINDS = ("normalize", "lrn")


def _f64(t) -> torch.Tensor:
    return torch.as_tensor(t).detach().to(dtype=torch.float64).clone()


@dataclass(frozen=True, eq=False)
class Input:
    """The network input; ``shape`` is the per-sample shape, e.g. (2,) or (1, 28, 28)."""

    shape: tuple[int, ...]
    kind = "input"

    def describe(self) -> str:
        return f"Input{self.shape}"


@dataclass(frozen=True, eq=False)
class Linear:
    """y = x W^T + b; ``weight`` (n_out, n_in), ``bias`` (n_out,)."""

    weight: torch.Tensor
    bias: torch.Tensor
    kind = "linear"

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight, self.bias)

    def out_shape(self, in_shape):
        return (self.weight.shape[0],)

    def describe(self) -> str:
        return f"Linear({self.weight.shape[1]} -> {self.weight.shape[0]})"


@dataclass(frozen=True, eq=False)
class Conv:
    """A 1-D, 2-D or 3-D convolution (zero padding), an affine map of the flattened input. A transposed
    convolution lowers to one (on its input with zeros inserted, see ``nets._lowering``)."""

    weight: torch.Tensor  # (C_out, C_in/groups, *kernel)
    bias: torch.Tensor  # (C_out,)
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    dilation: tuple[int, ...]
    groups: int
    in_shape: tuple[int, ...]  # (C_in, L), (C_in, H, W) or (C_in, D, H, W)
    kind = "conv"

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.apply(x, self.bias)

    def apply(self, x: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        """The convolution of x (B, n_in) with the given bias (None: the linear part) -> (B, n_out)."""
        conv = _CONV[self.weight.dim() - 2]
        y = conv(x.reshape(-1, *self.in_shape), self.weight, bias, self.stride, self.padding, self.dilation,
                 self.groups)
        return y.flatten(1)

    def out_shape(self, in_shape):
        spatial = [
            (n + 2 * p - d * (k - 1) - 1) // s + 1
            for n, p, d, k, s in zip(in_shape[1:], self.padding, self.dilation, self.weight.shape[2:],
                                     self.stride, strict=True)
        ]
        return (self.weight.shape[0], *spatial)

    def describe(self) -> str:
        k = "x".join(str(s) for s in self.weight.shape[2:])
        return f"Conv{self.weight.dim() - 2}d({self.weight.shape[1] * self.groups} -> {self.weight.shape[0]}, " \
               f"kernel {k}, stride {self.stride}, padding {self.padding})"


@dataclass(frozen=True, eq=False)
class ChannelAffine:
    """y[c, ...] = scale[c] x[c, ...] + shift[c]: a BatchNorm in eval mode that could not be folded,
    or a multiplication by a constant (scale of length 1)."""

    scale: torch.Tensor
    shift: torch.Tensor
    in_shape: tuple[int, ...]
    kind = "channel_affine"

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.scale.numel() == 1:
            return x * self.scale + self.shift
        view = (1, -1) + (1,) * (len(self.in_shape) - 1)  # broadcast over the spatial dims
        y = x.reshape(-1, *self.in_shape) * self.scale.reshape(view) + self.shift.reshape(view)
        return y.flatten(1)

    def out_shape(self, in_shape):
        return tuple(in_shape)

    def describe(self) -> str:
        return f"ChannelAffine({self.scale.shape[0]} channels)"


@dataclass(frozen=True, eq=False)
class AvgPool:
    """1-D, 2-D or 3-D average pooling (torch semantics), an affine (linear) map; one kernel, stride and
    padding value per spatial dim."""

    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    ceil_mode: bool
    count_include_pad: bool
    in_shape: tuple[int, ...]  # (C, L), (C, H, W) or (C, D, H, W)
    kind = "avgpool"

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        pool = _AVG_POOL[len(self.kernel)]
        y = pool(x.reshape(-1, *self.in_shape), self.kernel, self.stride, self.padding, self.ceil_mode,
                 self.count_include_pad)
        return y.flatten(1)

    def out_shape(self, in_shape):
        probe = torch.zeros(1, *in_shape, dtype=torch.float64)
        return tuple(_AVG_POOL[len(self.kernel)](probe, self.kernel, self.stride, self.padding, self.ceil_mode,
                                                 self.count_include_pad).shape[1:])

    def describe(self) -> str:
        return f"AvgPool{len(self.kernel)}d(kernel {self.kernel}, stride {self.stride})"


@dataclass(frozen=True, eq=False)
class AdaptiveAvgPool:
    """1-D, 2-D or 3-D adaptive average pooling to ``output_size`` (any size), a linear map.

    Window i along a dim of length L spans ``[floor(i L / o), ceil((i + 1) L / o))`` as in torch."""

    output_size: tuple[int, ...]  # (o,), (oh, ow) or (od, oh, ow)
    in_shape: tuple[int, ...]  # (C, L), (C, H, W) or (C, D, H, W)
    kind = "adaptive_avgpool"

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        pool = (F.adaptive_avg_pool1d, F.adaptive_avg_pool2d, F.adaptive_avg_pool3d)[len(self.output_size) - 1]
        return pool(x.reshape(-1, *self.in_shape), self.output_size).flatten(1)

    def out_shape(self, in_shape):
        return (in_shape[0], *self.output_size)

    def describe(self) -> str:
        return f"AdaptiveAvgPool{len(self.output_size)}d(output {self.output_size})"


@dataclass(frozen=True, eq=False)
class Pad:
    """Zero padding of every per-sample dim by ``pads[d] = (before, after)`` entries (negative:
    cropping); a linear selection. Asymmetric ("SAME") padding of a conv or pool from ONNX, and
    ``nn.ZeroPad2d``/``nn.ConstantPad2d(value=0)`` from torch, lower to it.

    >>> import torch
    >>> op = Pad(((0, 0), (0, 1), (1, 0)), (1, 2, 2))
    >>> op.out_shape((1, 2, 2)), op(torch.ones(1, 4)).reshape(3, 3).tolist()[2]
    ((1, 3, 3), [0.0, 0.0, 0.0])
    """

    pads: tuple[tuple[int, int], ...]
    in_shape: tuple[int, ...]
    kind = "pad"

    def __post_init__(self):
        if len(self.pads) != len(self.in_shape):
            raise ValueError(f"Pad: one (before, after) pair per per-sample dim {self.in_shape}; got {self.pads}")
        if any(n + lo + hi <= 0 for n, (lo, hi) in zip(self.in_shape, self.pads, strict=True)):
            raise ValueError(f"Pad: padding {self.pads} crops all of the per-sample shape {self.in_shape}")

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        flat = [int(v) for lo_hi in reversed(self.pads) for v in lo_hi]  # F.pad starts at the last dim
        return F.pad(x.reshape(-1, *self.in_shape), flat).flatten(1)

    def out_shape(self, in_shape=None):
        return tuple(n + lo + hi for n, (lo, hi) in zip(self.in_shape, self.pads, strict=True))

    def describe(self) -> str:
        return f"Pad({', '.join(f'{lo}/{hi}' for lo, hi in self.pads)})"


@dataclass(frozen=True, eq=False)
class Concat:
    """Concatenation of several nodes along per-sample dim ``dim`` (0 = channels); linear.

    ``in_shapes`` are the per-sample shapes of the inputs, in order; they agree except along ``dim``."""

    dim: int
    in_shapes: tuple[tuple[int, ...], ...]
    kind = "concat"

    def __call__(self, *xs: torch.Tensor) -> torch.Tensor:
        parts = [x.reshape(-1, *shape) for x, shape in zip(xs, self.in_shapes, strict=True)]
        return torch.cat(parts, dim=self.dim + 1).flatten(1)

    def out_shape(self, in_shape=None):
        shape = list(self.in_shapes[0])
        shape[self.dim] = sum(s[self.dim] for s in self.in_shapes)
        return tuple(shape)

    def describe(self) -> str:
        return f"Concat(dim {self.dim}, {len(self.in_shapes)} inputs)"


@dataclass(frozen=True, eq=False)
class Max:
    """``y[j] = max(x[i] for i in index[j])`` on the flattened input: max pooling, adaptive max
    pooling and max/amax over dims all lower to this op (build it with ``Max.pool``,
    ``Max.adaptive`` or ``Max.over_dims``). It is piecewise linear: on a region every output's
    arg-max is fixed.

    Attributes
    ----------
    index : (n_out, k) int64 tensor
        Row j lists the flattened input positions output j takes the max over, in increasing order,
        padded at the end with -1 (absent entries: a window overlapping -inf padding simply has
        fewer entries). Every row has at least one entry.
    in_shape, output_shape : tuple of int
        Per-sample input and output shapes.

    Ties: the *first* maximal entry of a row (the lowest input index) is the arg-max. Regions
    never depend on it: two entries tie on a region of positive area only when they are the same
    affine function there, and then either choice gives the same map.

    Examples
    --------
    >>> op = Max.pool((1, 4, 4), kernel=2)
    >>> op.output_shape, tuple(op.index.shape)
    ((1, 2, 2), (4, 4))
    >>> op(torch.arange(16.0)[None])
    tensor([[ 5.,  7., 13., 15.]])
    """

    index: torch.Tensor
    in_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    kind = "max"

    def __post_init__(self):
        idx = self.index
        n_in = math.prod(self.in_shape)
        if idx.dim() != 2 or idx.shape[0] != math.prod(self.output_shape) or idx.shape[1] < 1:
            raise ValueError(f"Max: index must be (n_out={math.prod(self.output_shape)}, k >= 1); got "
                             f"{tuple(idx.shape)}")
        if bool((idx[:, 0] < 0).any()) or bool((idx >= n_in).any()) or bool((idx < -1).any()):
            raise ValueError(f"Max: index entries must be in [0, {n_in}) or -1 (absent), each row non-empty")

    @property
    def size(self) -> int:
        return int(self.index.shape[0])

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = x.reshape(x.shape[0], math.prod(self.in_shape))
        pad = torch.full((x.shape[0], 1), -math.inf, dtype=x.dtype)
        idx = torch.where(self.index < 0, x.shape[1], self.index)
        return torch.cat([x, pad], dim=1)[:, idx].amax(dim=2)

    def argmax(self, x: torch.Tensor) -> torch.Tensor:
        """(B, n_out) position within each row of the arg-max (first maximal entry), for x (B, n_in)."""
        pad = torch.full((x.shape[0], 1), -math.inf, dtype=x.dtype)
        idx = torch.where(self.index < 0, x.shape[1], self.index)
        vals = torch.cat([x, pad], dim=1)[:, idx]
        best = vals.amax(dim=2, keepdim=True)
        return (vals == best).to(torch.int8).argmax(dim=2)  # first True

    def out_shape(self, in_shape=None):
        return tuple(self.output_shape)

    def describe(self) -> str:
        return f"Max({math.prod(self.in_shape)} -> {self.size}, windows of <= {self.index.shape[1]})"

    # -- constructors ---------------------------------------------------------------------------
    @classmethod
    def from_windows(cls, windows, in_shape, output_shape) -> Max:
        """From a list (one per output, flattened order) of lists of flattened input positions."""
        k = max(len(w) for w in windows)
        index = torch.full((len(windows), k), -1, dtype=torch.int64)
        for j, w in enumerate(windows):
            w = sorted(set(int(i) for i in w))
            index[j, : len(w)] = torch.tensor(w, dtype=torch.int64)
        return cls(index, tuple(in_shape), tuple(output_shape))

    @classmethod
    def pool(cls, in_shape, kernel, stride=None, padding=0, dilation=1, ceil_mode=False) -> Max:
        """Max pooling (torch MaxPool1d/2d/3d semantics) of a (C, L), (C, H, W) or (C, D, H, W) input.

        ``kernel``, ``stride`` (default: kernel), ``padding`` (implicit -inf, at most half the
        kernel; an int, one value per spatial dim, or one (before, after) pair per spatial dim, as
        ONNX's asymmetric pads), ``dilation``: an int or one value per spatial dim."""
        in_shape = tuple(int(s) for s in in_shape)
        n_sp = len(in_shape) - 1
        if n_sp not in (1, 2, 3):
            raise ValueError(f"Max.pool: input must be (C, L), (C, H, W) or (C, D, H, W) per sample; got {in_shape}")
        per_dim = lambda v, name: _per_dim(v, n_sp, name)
        kernel = per_dim(kernel, "kernel")
        stride = per_dim(stride if stride not in (None, [], ()) else kernel, "stride")
        padding, dilation = per_dim(padding, "padding"), per_dim(dilation, "dilation")
        pairs = tuple(tuple(p) if isinstance(p, (tuple, list)) else (p, p) for p in padding)
        if any(2 * max(p) > k for p, k in zip(pairs, kernel, strict=True)):
            raise ValueError(f"Max.pool: padding {padding} must be at most half the kernel {kernel}")
        starts = []  # per spatial dim: the window starts (in padded coordinates minus padding)
        for n, k, s, (lo, hi), d in zip(in_shape[1:], kernel, stride, pairs, dilation, strict=True):
            span = n + lo + hi - d * (k - 1) - 1
            if span < 0:
                raise ValueError(f"Max.pool: kernel {kernel} (dilation {dilation}) is larger than the padded input "
                                 f"{in_shape[1:]}")
            n_out = (-(-span // s) if ceil_mode else span // s) + 1
            if ceil_mode and (n_out - 1) * s >= n + lo:  # the last window must start inside the input
                n_out -= 1
            starts.append([o * s - lo for o in range(n_out)])
        taps = [[[st + t * d for t in range(k)] for st in sts]
                for sts, k, d in zip(starts, kernel, dilation, strict=True)]
        return cls._from_separable(in_shape, taps)

    @classmethod
    def adaptive(cls, in_shape, output_size) -> Max:
        """Adaptive max pooling (torch AdaptiveMaxPool1d/2d/3d) of a (C, L), (C, H, W) or (C, D, H, W) input."""
        in_shape = tuple(int(s) for s in in_shape)
        n_sp = len(in_shape) - 1
        output_size = _per_dim(output_size, n_sp, "output_size")
        output_size = tuple(n if o is None else o for o, n in zip(output_size, in_shape[1:], strict=True))
        taps = [[list(range((i * n) // o, -(-((i + 1) * n) // o))) for i in range(o)]
                for n, o in zip(in_shape[1:], output_size, strict=True)]
        return cls._from_separable(in_shape, taps)

    @classmethod
    def over_dims(cls, in_shape, dims, keepdim=False) -> Max:
        """``amax`` over per-sample dims ``dims`` (0 = first per-sample dim)."""
        in_shape = tuple(int(s) for s in in_shape)
        dims = sorted({int(d) % len(in_shape) for d in ([dims] if isinstance(dims, int) else dims)})
        positions = torch.arange(math.prod(in_shape)).reshape(in_shape)
        kept = [d for d in range(len(in_shape)) if d not in dims]
        moved = positions.permute(*kept, *dims).reshape(-1, math.prod(in_shape[d] for d in dims))
        out_shape = tuple(1 if d in dims else n for d, n in enumerate(in_shape)) if keepdim else \
            tuple(in_shape[d] for d in kept)
        return cls(moved.sort(dim=1).values.contiguous(), in_shape, out_shape)

    @classmethod
    def _from_separable(cls, in_shape, taps) -> Max:
        # taps[d][o] = input coordinates along spatial dim d that output o takes (out-of-range = padding)
        C, spatial = in_shape[0], in_shape[1:]
        out_shape = (C, *(len(t) for t in taps))
        windows = []
        for c in range(C):
            for out_pos in _product(*[range(len(t)) for t in taps]):
                lists = [[i for i in taps[d][o] if 0 <= i < spatial[d]] for d, o in enumerate(out_pos)]
                flat = [c * math.prod(spatial) + _flat_index(coords, spatial) for coords in _product(*lists)]
                if not flat:
                    raise ValueError(f"Max.pool: a window lies entirely in the padding (input {in_shape})")
                windows.append(flat)
        return cls.from_windows(windows, in_shape, out_shape)


#: The torch function of each op by its number of spatial dims.
_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
_AVG_POOL = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}


def _per_dim(v, n, name):
    if isinstance(v, int):
        return (v,) * n
    v = tuple(v)
    if len(v) == 1:
        return v * n
    if len(v) != n:
        raise ValueError(f"Max: {name} must have {n} values; got {v}")
    return v


def _product(*ranges):
    import itertools

    return itertools.product(*ranges)


def _flat_index(coords, spatial):
    index = 0
    for c, n in zip(coords, spatial, strict=True):
        index = index * n + c
    return index


@dataclass(frozen=True, eq=False)
class Add:
    """y = x_a + x_b (residual addition); both inputs have the same shape."""

    kind = "add"

    def __call__(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a + b

    def describe(self) -> str:
        return "Add"


@dataclass(frozen=True, eq=False)
class GatherLinear:
    """``y[j] = sum_k weight[j, k] x[index[j, k]] + shift[j]`` on the flattened input: a sparse linear
    (affine with ``shift``) map. Slices, splits, tiles, expands, gathers by constant indices,
    transposes, padding in every mode and sums or means over any axes lower to it; build it with
    :meth:`select` (entries moved, copied or padded) or :meth:`reduce` (sums and means).

    Attributes
    ----------
    index : (n_out, k) int64 tensor
        Flattened input positions each output sums, -1 for an absent entry (a padded position).
    weight : (n_out, k) float64 tensor or None
        The coefficients; None means every coefficient is 1 (a selection when k = 1).
    shift : (n_out,) float64 tensor or None
        The constant term (a padding value); None means 0.
    in_shape, output_shape : tuple of int
        Per-sample input and output shapes.

    Examples
    --------
    >>> import numpy as np, torch
    >>> op = GatherLinear.select((2, 3), lambda p: p.T)  # a transpose: positions moved, nothing dense
    >>> op.output_shape, op(torch.arange(6.0)[None]).tolist()
    ((3, 2), [[0.0, 3.0, 1.0, 4.0, 2.0, 5.0]])
    >>> GatherLinear.select((3,), lambda p: np.pad(p, 1, constant_values=-1), fill=7.0)(torch.ones(1, 3))
    tensor([[7., 1., 1., 1., 7.]])
    >>> GatherLinear.reduce((2, 3), dims=[1], mean=True)(torch.arange(6.0, dtype=torch.float64)[None])
    tensor([[1., 4.]], dtype=torch.float64)
    """

    index: torch.Tensor
    weight: torch.Tensor | None
    shift: torch.Tensor | None
    in_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    kind = "gather_linear"

    def __post_init__(self):
        n_out, n_in = math.prod(self.output_shape), math.prod(self.in_shape)
        idx = self.index
        if idx.dim() != 2 or idx.shape[0] != n_out or idx.shape[1] < 1 or idx.dtype != torch.int64:
            raise ValueError(f"GatherLinear: index must be int64 (n_out={n_out}, k >= 1); got "
                             f"{idx.dtype} {tuple(idx.shape)}")
        if idx.numel() and (int(idx.min()) < -1 or int(idx.max()) >= n_in):
            raise ValueError(f"GatherLinear: index entries must be in [0, {n_in}) or -1 (absent)")
        if self.weight is not None and tuple(self.weight.shape) != tuple(idx.shape):
            raise ValueError(f"GatherLinear: weight must have the index's shape {tuple(idx.shape)}")
        if self.shift is not None and tuple(self.shift.shape) != (n_out,):
            raise ValueError(f"GatherLinear: shift must have shape ({n_out},)")

    @property
    def is_selection(self) -> bool:
        """True when every output is one input entry or an absent one (no arithmetic: exact)."""
        return self.index.shape[1] == 1 and self.weight is None

    def linear_part(self, x: torch.Tensor) -> torch.Tensor:
        """The map without its shift, for x (B, n_in) -> (B, n_out)."""
        x = x.reshape(x.shape[0], math.prod(self.in_shape))
        if self.index.shape[1] == 1 and self.weight is None and bool((self.index >= 0).all()):
            return x[:, self.index[:, 0]]
        padded = torch.cat([x, x.new_zeros(x.shape[0], 1)], dim=1)  # -1 reads the appended zero
        gathered = padded[:, self.index]  # (B, n_out, k)
        if self.weight is not None:
            gathered = gathered * self.weight.to(x.dtype)
        return gathered.sum(dim=2)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        y = self.linear_part(x)
        return y if self.shift is None else y + self.shift.to(y.dtype)

    def out_shape(self, in_shape=None):
        return tuple(self.output_shape)

    def describe(self) -> str:
        what = "select" if self.is_selection else f"sum of <= {self.index.shape[1]}"
        extra = ", shifted" if self.shift is not None else ""
        return f"GatherLinear({self.in_shape} -> {self.output_shape}, {what}{extra})"

    @classmethod
    def select(cls, in_shape, move, *, fill: float = 0.0) -> GatherLinear:
        """Each output one input entry: ``move`` maps the (in_shape) array of flattened positions to the
        output's array of positions with NumPy (slicing, ``np.take``, ``np.transpose``, ``np.tile``,
        ``np.broadcast_to``, ``np.pad`` in any mode; -1 marks a padded entry, whose value is ``fill``)."""
        in_shape = tuple(int(s) for s in in_shape)
        positions = np.asarray(move(np.arange(math.prod(in_shape), dtype=np.int64).reshape(in_shape)))
        index = torch.from_numpy(np.ascontiguousarray(positions.reshape(-1, 1), dtype=np.int64))
        shift = None
        if fill != 0.0 and bool((index < 0).any()):
            shift = torch.where(index[:, 0] < 0, float(fill), 0.0).to(torch.float64)
        return cls(index, None, shift, in_shape, tuple(int(s) for s in positions.shape))

    @classmethod
    def reduce(cls, in_shape, dims, *, keepdims: bool = False, mean: bool = False) -> GatherLinear:
        """The sum (or mean) over per-sample dims ``dims`` (0 = the first per-sample dim)."""
        in_shape = tuple(int(s) for s in in_shape)
        dims = sorted({int(d) % len(in_shape) for d in dims})
        kept = [d for d in range(len(in_shape)) if d not in dims]
        k = math.prod(in_shape[d] for d in dims)
        positions = torch.arange(math.prod(in_shape)).reshape(in_shape).permute(*kept, *dims).reshape(-1, k)
        out_shape = tuple(1 if d in dims else n for d, n in enumerate(in_shape)) if keepdims else \
            tuple(in_shape[d] for d in kept)
        weight = torch.full(positions.shape, 1.0 / k, dtype=torch.float64) if mean and k > 1 else None
        return cls(positions.contiguous(), weight, None, in_shape, out_shape)

    def is_identity(self) -> bool:
        """True when the map returns its input unchanged (a reshape at most)."""
        return (self.is_selection and self.shift is None
                and bool((self.index[:, 0] == torch.arange(self.index.shape[0])).all())
                and self.index.shape[0] == math.prod(self.in_shape))


@dataclass(frozen=True, eq=False)
class Normalize:
    """``y = (x - mean) / sqrt(var + eps)``, mean and (biased) variance over per-sample ``axes``
    (0 = first per-sample dim): instance normalisation (axes = the spatial dims) and layer
    normalisation (the last dims); their scale and shift are separate affine nodes. Smooth, not
    elementwise: the metric and dynamics lenses take it, the regions lens refuses it by name."""

    axes: tuple[int, ...]
    eps: float
    in_shape: tuple[int, ...]
    kind = "normalize"

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = x.reshape(-1, *self.in_shape)
        dims = tuple(a + 1 for a in self.axes)
        mean = x.mean(dim=dims, keepdim=True)
        var = ((x - mean) ** 2).mean(dim=dims, keepdim=True)
        return ((x - mean) / torch.sqrt(var + self.eps)).flatten(1)

    def out_shape(self, in_shape=None):
        return tuple(self.in_shape)

    def describe(self) -> str:
        return f"Normalize(axes {self.axes}, eps {self.eps:g})"


@dataclass(frozen=True, eq=False)
class LocalResponseNorm:
    """Local response normalisation across channels (ONNX LRN, ``torch.nn.LocalResponseNorm``):
    ``y[c] = x[c] / (bias + alpha / size * sum_{c' in window(c)} x[c']^2) ** beta``, the window the
    ``size`` channels from ``c - floor((size - 1) / 2)`` to ``c + ceil((size - 1) / 2)``. Smooth."""

    size: int
    alpha: float
    beta: float
    bias: float
    in_shape: tuple[int, ...]
    kind = "lrn"

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = x.reshape(-1, *self.in_shape)
        sq = (x * x).unsqueeze(1).flatten(3) if x.dim() > 2 else (x * x)[:, None, :, None]
        lo, hi = (self.size - 1) // 2, self.size - 1 - (self.size - 1) // 2
        windows = F.pad(sq, (0, 0, lo, hi)).unfold(2, self.size, 1).sum(-1)  # (B, 1, C, spatial)
        total = windows.reshape(x.shape)
        return (x / (self.bias + self.alpha / self.size * total) ** self.beta).flatten(1)

    def out_shape(self, in_shape=None):
        return tuple(self.in_shape)

    def describe(self) -> str:
        return f"LocalResponseNorm(size {self.size}, alpha {self.alpha:g}, beta {self.beta:g}, bias {self.bias:g})"


@dataclass(frozen=True)
class Head:
    """A classifier head on the logits: ``"softmax"`` or ``"log_softmax"`` over the (flattened)
    outputs. It is strictly monotone in each logit given the others and keeps their order, so the
    arg-max, the decision boundaries and the linear regions are those of the logits.

    >>> Head("softmax")(torch.zeros(1, 4)).tolist()
    [[0.25, 0.25, 0.25, 0.25]]
    """

    name: str

    def __post_init__(self):
        if self.name not in ("softmax", "log_softmax"):
            raise ValueError(f"Head: name must be 'softmax' or 'log_softmax'; got {self.name!r}")

    def __call__(self, logits: torch.Tensor) -> torch.Tensor:
        fn = torch.softmax if self.name == "softmax" else torch.log_softmax
        return fn(logits, dim=-1)

    def log_probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """(B, n_classes) log class probabilities the head defines: ``log_softmax(logits)`` for both
        heads (the exact log of softmax's output, without its underflow to ``log 0``).

        >>> Head("softmax").log_probabilities(torch.zeros(1, 2)).exp().tolist()
        [[0.5, 0.5]]
        """
        return torch.log_softmax(logits, dim=-1)

    def describe(self) -> str:
        return f"{self.name} (regions analyse the logits; arg-max unchanged)"


@dataclass(frozen=True, eq=False)
class Activation:
    """Elementwise activation. ``name`` is one of PIECEWISE_LINEAR + SMOOTH; ``params`` holds
    e.g. negative_slope (leaky_relu), beta/threshold (softplus), alpha (elu), min_val/max_val
    (hardtanh: ``clamp(z, min_val, max_val)``, either bound may be +-inf; ReLU6 is hardtanh(0, 6))."""

    @staticmethod
    def hardtanh(min_val: float = -1.0, max_val: float = 1.0) -> Activation:
        """``clamp(z, min_val, max_val)``; ``min_val < max_val``, either may be infinite.

        >>> Activation.hardtanh(0.0, 6.0)(torch.tensor([-1.0, 3.0, 9.0]))
        tensor([0., 3., 6.])
        """
        min_val, max_val = float(min_val), float(max_val)
        if not min_val < max_val:
            raise ValueError(f"hardtanh: min_val must be < max_val; got {min_val}, {max_val}")
        return Activation("hardtanh", {"min_val": min_val, "max_val": max_val})

    @property
    def breakpoints(self) -> tuple[float, ...]:
        """The kinks of a piecewise-linear activation: () for identity, (0,) for relu/leaky_relu,
        the finite ones of (min_val, max_val) for hardtanh."""
        if self.name == "identity":
            return ()
        if self.name == "hardtanh":
            return tuple(v for v in (self.params["min_val"], self.params["max_val"]) if math.isfinite(v))
        if self.name in ("relu", "leaky_relu"):
            return (0.0,)
        raise ValueError(f"activation {self.name!r} is not piecewise linear")

    name: str
    params: dict = field(default_factory=dict)
    kind = "activation"

    @property
    def piecewise_linear(self) -> bool:
        return self.name in PIECEWISE_LINEAR

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        p = self.params
        match self.name:
            case "relu":
                return torch.relu(z)
            case "leaky_relu":
                return F.leaky_relu(z, p["negative_slope"])
            case "identity":
                return z
            case "hardtanh":
                return torch.clamp(z, p["min_val"], p["max_val"])
            case "sigmoid":
                return torch.sigmoid(z)
            case "tanh":
                return torch.tanh(z)
            case "gelu":
                return F.gelu(z)
            case "gelu_tanh":
                return F.gelu(z, approximate="tanh")
            case "softplus":
                return F.softplus(z, p.get("beta", 1.0), p.get("threshold", 20.0))
            case "elu":
                return F.elu(z, p.get("alpha", 1.0))
            case "erf":
                return torch.erf(z)
            case "selu":  # gamma (z if z > 0 else alpha (e^z - 1)); torch's constants by default
                if not p:
                    return torch.selu(z)
                return p["gamma"] * torch.where(z > 0, z, p["alpha"] * torch.expm1(z))
            case "exp":
                return torch.exp(z)
            case "sqrt":  # NaN below 0; Net.__call__ refuses such inputs by name (domain check)
                return torch.sqrt(z)
            case "softsign":
                return z / (1 + z.abs())
        raise AssertionError(f"unknown activation {self.name}")

    def derivative(self, z: torch.Tensor) -> torch.Tensor:
        """phi'(z), elementwise. At a kink a one-sided slope: relu and leaky_relu take the left one (torch's
        autograd convention, 0 resp. the negative slope at 0); hardtanh takes the right one (1 at ``min_val``,
        0 at ``max_val``).

        >>> import torch
        >>> Activation("relu").derivative(torch.tensor([-1.0, 0.0, 2.0])).tolist()
        [0.0, 0.0, 1.0]
        >>> Activation.hardtanh().derivative(torch.tensor([-1.0, 0.0, 1.0])).tolist()
        [1.0, 1.0, 0.0]
        """
        p = self.params
        match self.name:
            case "relu":
                return (z > 0).to(z.dtype)
            case "leaky_relu":
                return torch.where(z > 0, 1.0, p["negative_slope"]).to(z.dtype)
            case "identity":
                return torch.ones_like(z)
            case "hardtanh":
                return ((z >= p["min_val"]) & (z < p["max_val"])).to(z.dtype)
            case "sigmoid":
                s = torch.sigmoid(z)
                return s * (1 - s)
            case "tanh":
                return 1 - torch.tanh(z) ** 2
            case "erf":
                return 2 / math.sqrt(math.pi) * torch.exp(-z * z)
        return torch.func.vmap(torch.func.grad(self.__call__))(z.reshape(-1)).reshape(z.shape)

    @property
    def max_derivative(self) -> float:
        """sup_z phi'(z): the steepest slope of the activation (1/4 for sigmoid, 1 for tanh, relu and identity,
        2/sqrt(pi) for erf, inf for exp and sqrt, whose slopes are unbounded; the others: the maximum of
        :meth:`derivative` on a grid of step 5e-4 over [-60, 60]).

        >>> Activation("sigmoid").max_derivative, Activation("tanh").max_derivative
        (0.25, 1.0)
        """
        # exp and sqrt have no steepest slope (phi' grows without bound as z -> inf, resp. z -> 0+)
        closed_form = {"sigmoid": 0.25, "tanh": 1.0, "erf": 2 / math.sqrt(math.pi), "relu": 1.0, "identity": 1.0,
                       "exp": math.inf, "sqrt": math.inf}
        if self.name in closed_form:
            return closed_form[self.name]
        grid = torch.linspace(-60, 60, 240_001, dtype=torch.float64)
        return float(self.derivative(grid).max())

    def describe(self) -> str:
        extra = ", ".join(f"{k}={v}" for k, v in self.params.items())
        return f"{self.name}({extra})" if extra else self.name


@dataclass(frozen=True, eq=False)
class Node:
    """One node of the graph: an op applied to earlier nodes (by index)."""

    op: object
    inputs: tuple[int, ...]
    shape: tuple[int, ...]  # per-sample output shape
    name: str  # where it came from in the torch module, e.g. "features.3" or "fc1"

    @property
    def size(self) -> int:
        return math.prod(self.shape)


class Net:
    """A network as a graph of affine ops and elementwise activations, evaluated in float64.

    Build one with :func:`netatlas.nets.from_torch`. Calling it on a batch returns the outputs::

        net(x)   # x: (B, *input_shape) or (B, n_inputs), tensor or ndarray -> (B, n_outputs)

    Attributes
    ----------
    nodes : tuple of Node
        The graph in topological order; ``nodes[0]`` is the input, ``nodes[-1]`` the output.
    input_shape : tuple of int
        Per-sample input shape; ``n_inputs`` is its product.
    n_outputs : int
        Size of the (flattened) output.
    activations : tuple of int
        Indices of the activation nodes, in order.
    nonlinear : tuple of int
        Indices of the Activation and Max nodes, in order (what piecewise-linear lenses walk).
    head : Head or None
        A final softmax / log-softmax the model ends in (``net(x)`` returns the logits before it;
        :meth:`head_output` applies it), or None.
    """

    def __init__(self, nodes, head: Head | None = None):
        if head is not None and not isinstance(head, Head):
            raise TypeError(f"Net: head must be a netatlas.nets.Head or None; got {type(head).__name__}")
        self.head = head
        self.nodes = tuple(nodes)
        assert isinstance(self.nodes[0].op, Input)
        self.input_shape = self.nodes[0].shape
        self.n_inputs = self.nodes[0].size
        self.n_outputs = self.nodes[-1].size
        self.activations = tuple(i for i, n in enumerate(self.nodes) if isinstance(n.op, Activation))
        self.nonlinear = tuple(i for i, n in enumerate(self.nodes) if isinstance(n.op, (Activation, Max)))
        for node in self.nodes:  # NaN/inf weights would give silent garbage in every lens
            for t in _tensors(node.op):
                if t.is_floating_point() and not bool(torch.isfinite(t).all()):
                    where = repr(node.name) if node.name else "(the top-level module)"
                    raise ValueError(f"Net: layer {where} ({node.op.describe()}) has non-finite weights "
                                     f"(NaN or infinity); netatlas analyses finite networks only")

    # -- structure ------------------------------------------------------------------------------
    @property
    def piecewise_linear(self) -> bool:
        """True if every activation is piecewise linear (ReLU, LeakyReLU, identity, hardtanh; Max
        nodes always are) and no op is smooth (normalisations, LRN)."""
        return all(self.nodes[i].op.piecewise_linear for i in self.activations) and not self.smooth_ops()

    def smooth_ops(self) -> list[str]:
        """What makes the net smooth besides its activations: the descriptions of its Normalize and
        LocalResponseNorm nodes ([] for most nets)."""
        return [f"{node.op.describe()} at node {i} ({node.name!r})" for i, node in enumerate(self.nodes)
                if getattr(node.op, "kind", "") in SMOOTH_OP_KINDS]

    @property
    def n_hidden_units(self) -> int:
        """Total number of activation units (all activation nodes)."""
        return sum(self.nodes[i].size for i in self.activations)

    @property
    def n_parameters(self) -> int:
        """Number of weights (floating-point tensors, each shared one counted once); index tensors
        such as a max pool's windows are structure, not parameters."""
        seen, total = set(), 0
        for node in self.nodes:
            for t in _tensors(node.op):
                if t.is_floating_point() and id(t) not in seen:
                    seen.add(id(t))
                    total += t.numel()
        return total

    def lenses(self) -> dict[str, str]:
        """Which lenses apply to this net: ``"yes"`` or ``"no: why"`` for each of regions, metric,
        splines, lowrank, dynamics (gradient norms) and dynamics zones.

        Examples
        --------
        >>> import netatlas
        >>> netatlas.nets.from_torch(netatlas.nets.mlp([2, 3, 1], seed=0)).lenses()["lowrank"]
        'yes'
        """
        smooth = sorted({self.nodes[i].op.name for i in self.activations} - set(PIECEWISE_LINEAR))
        ops = sorted({self.nodes[i].op.describe().split("(")[0] for i in range(len(self.nodes))
                      if getattr(self.nodes[i].op, "kind", "") in SMOOTH_OP_KINDS})
        regions = "yes" if self.head is None else f"yes (on the logits before the {self.head.name} head)"
        if smooth or ops:
            regions = f"no: smooth {f'activations {smooth}' if smooth else f'ops {ops}'} (needs piecewise-linear " \
                      "activations or max pooling)"
        out = {"regions": regions, "metric": "yes"}
        out["splines"] = "yes" if self.is_shallow_univariate() else "no: needs 1 input -> one ReLU layer -> 1 output"
        last = self.nodes[-1].op
        out["lowrank"] = "yes" if isinstance(last, Linear) else f"no: the last layer is {last.describe()}, not Linear"
        out["dynamics"] = "yes"  # per-sample gradient norms need only autograd
        try:  # zones are the units' pre-activation bands, walked along the Linear/activation chain
            self.as_mlp()
            out["dynamics zones"] = "yes"
        except ValueError as exc:
            out["dynamics zones"] = f"no: needs a chain of Linear layers and activations ({exc})"
        return out

    def is_shallow_univariate(self) -> bool:
        kinds = [type(n.op).__name__ for n in self.nodes[1:]]
        return (kinds == ["Linear", "Activation", "Linear"] and self.n_inputs == 1 and self.n_outputs == 1
                and self.nodes[2].op.name == "relu")

    def as_mlp(self) -> list[tuple[torch.Tensor, torch.Tensor, Activation | None]]:
        """The net as [(W, b, activation after it or None), ...] if it is a plain chain of Linear
        layers and activations; raises ValueError otherwise.

        Examples
        --------
        >>> import netatlas
        >>> net = netatlas.nets.from_torch(netatlas.nets.mlp([2, 3, 1], seed=0))
        >>> [(tuple(W.shape), a.name if a else None) for W, b, a in net.as_mlp()]
        [((3, 2), 'relu'), ((1, 3), None)]
        """
        layers = []
        for i, node in enumerate(self.nodes[1:], start=1):
            if node.inputs != (i - 1,):
                raise ValueError("as_mlp: the net is not a chain (it has residual additions)")
            if isinstance(node.op, Linear):
                layers.append([node.op.weight, node.op.bias, None])
            elif isinstance(node.op, Activation) and layers and layers[-1][2] is None:
                layers[-1][2] = node.op
            else:
                raise ValueError(f"as_mlp: node {i} ({node.op.describe()} from {node.name!r}) is not a "
                                 "Linear layer followed by at most one activation")
        return [tuple(layer) for layer in layers]

    def summary(self) -> str:
        """A table of the nodes: index, op, inputs, output shape and the layer name (the torch module path)
        that :meth:`layer`, ``(model, layer)`` feature maps and the CLI's ``--layer`` accept."""
        rows = [f"{'#':>3}  {'op':<52} {'inputs':<9} {'shape':<16} layer"]
        for i, node in enumerate(self.nodes):
            rows.append(f"{i:>3}  {node.op.describe():<52} {str(list(node.inputs)):<9} "
                        f"{str(node.shape):<16} {node.name}")
        rows.append(f"parameters: {self.n_parameters:,}; hidden units: {self.n_hidden_units:,}; "
                    f"piecewise linear: {self.piecewise_linear}")
        if self.head is not None:
            rows.append(f"head: {self.head.describe()}")
        rows.append("a layer is named by its 'layer' name, its index # (an int) or '#index' (the CLI spelling)")
        return "\n".join(rows)

    def layer_names(self) -> list[str]:
        """The names :meth:`layer` accepts, node 1 onwards (the torch module paths, without any
        ``" (Type)"`` suffix of torch.export archives)."""
        return list(dict.fromkeys(_short_name(node.name) for node in self.nodes[1:]))

    def layer(self, name_or_index) -> int:
        """The node index of a layer, however it is named: the one resolver for every lens and command.

        Parameters
        ----------
        name_or_index : str or int
            A torch module path as in :meth:`summary`'s ``layer`` column (``"2"``, ``"fc1"``,
            ``"features.3"``; a name shared by several nodes means the last, e.g. after a folded
            BatchNorm), an int node index (1 .. len(nodes) - 1), or ``"#index"`` (the CLI spelling of one).

        Returns
        -------
        int
            The index into :attr:`nodes`.

        Raises
        ------
        ValueError
            One message listing the valid names and index range.

        Examples
        --------
        >>> import netatlas
        >>> net = netatlas.nets.from_torch(netatlas.nets.mlp([2, 4, 4, 1], seed=0))
        >>> net.layer("2"), net.layer(3), net.layer("#3")  # module "2" (the second Linear) is node 3
        (3, 3, 3)
        >>> net.layer_names()
        ['0', '1', '2', '3', '4']
        >>> net.layer("fc9")
        Traceback (most recent call last):
        ...
        ValueError: no layer named 'fc9'; layers: ['0', '1', '2', '3', '4'] (torch module paths), node indices ...
        """
        last = len(self.nodes) - 1
        index = None
        if isinstance(name_or_index, bool):
            pass
        elif isinstance(name_or_index, int):
            index = name_or_index if 0 < name_or_index <= last else None
        elif isinstance(name_or_index, str):
            text = name_or_index.strip()
            matches = [i for i, node in enumerate(self.nodes) if i > 0 and text in (node.name, _short_name(node.name))]
            if matches:
                index = matches[-1]
            elif text.startswith("#") and text[1:].isdigit():
                index = int(text[1:]) if 0 < int(text[1:]) <= last else None
        if index is None:
            raise ValueError(f"no layer named {name_or_index!r}; layers: {self.layer_names()} (torch module paths), "
                             f"node indices 1..{last} or '#index'")
        return index

    def to_dict(self) -> dict:
        return {
            "input_shape": list(self.input_shape),
            "n_outputs": self.n_outputs,
            "n_parameters": self.n_parameters,
            "n_hidden_units": self.n_hidden_units,
            "piecewise_linear": self.piecewise_linear,
            "head": None if self.head is None else self.head.name,
            "nodes": [{"op": n.op.describe(), "inputs": list(n.inputs), "shape": list(n.shape),
                       "source": n.name} for n in self.nodes],
            "lenses": self.lenses(),
        }

    def __repr__(self) -> str:
        return f"Net(input_shape={self.input_shape}, n_outputs={self.n_outputs}, nodes={len(self.nodes)})"

    # -- evaluation -----------------------------------------------------------------------------
    def _prepare(self, x):
        is_numpy = isinstance(x, np.ndarray)
        if not isinstance(x, (torch.Tensor, np.ndarray)):
            raise TypeError(f"Net: expected a torch.Tensor or numpy.ndarray, got {type(x).__name__}")
        x = torch.as_tensor(x)
        if not (x.is_floating_point() or x.dtype in (torch.int32, torch.int64, torch.uint8)):
            raise TypeError(f"Net: expected real numbers, got dtype {x.dtype}")
        unbatched = tuple(x.shape) == self.input_shape
        if unbatched:
            x = x.unsqueeze(0)
        if x.dim() < 1 or math.prod(x.shape[1:]) != self.n_inputs:
            raise ValueError(f"Net: input of shape {tuple(x.shape)} does not match the network's input "
                             f"shape {self.input_shape}; pass (B, *{self.input_shape}) or (B, {self.n_inputs})")
        return x.reshape(x.shape[0], self.n_inputs).to(torch.float64), is_numpy, unbatched

    def forward_all(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Every node's value, flattened: a list of (B, node.size) float64 tensors."""
        values = []
        for node in self.nodes:
            op = node.op
            if isinstance(op, Input):
                values.append(x)
            else:
                values.append(op(*[values[j] for j in node.inputs]))
        return values

    def __call__(self, x):
        x, is_numpy, unbatched = self._prepare(x)
        values = self.forward_all(x)
        self._check_domains(values)
        y = values[-1]
        if unbatched:
            y = y[0]
        return y.numpy() if is_numpy else y

    def head_output(self, x):
        """The model's own output: the head (softmax / log-softmax) applied to ``net(x)``; the logits
        themselves when the net has no head.

        >>> import torch, netatlas
        >>> net = netatlas.nets.from_torch(torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Softmax(dim=1)))
        >>> net.head.name, float(net.head_output(torch.zeros(1, 2)).sum())
        ('softmax', 1.0)
        """
        y = self(x)
        if self.head is None:
            return y
        is_numpy = isinstance(y, np.ndarray)
        out = self.head(torch.as_tensor(y))
        return out.numpy() if is_numpy else out

    def _check_domains(self, values):
        # sqrt is defined on z >= 0 only: a negative input is refused, naming the node (not a silent NaN)
        for i in self.activations:
            node = self.nodes[i]
            if node.op.name == "sqrt":
                z = values[node.inputs[0]]
                if bool((z < 0).any()):
                    raise ValueError(f"Net: the sqrt at node {i} ({node.name!r}) gets a negative input "
                                     f"(min {float(z.min()):.6g}); sqrt is defined for inputs >= 0 only")

    def pre_activations(self, x) -> list[torch.Tensor]:
        """The input of every activation node, in order: a list of (B, n_units) float64 tensors.

        Examples
        --------
        >>> import numpy as np, netatlas
        >>> net = netatlas.nets.from_torch(netatlas.nets.mlp([2, 4, 4, 1], seed=0))
        >>> [tuple(z.shape) for z in net.pre_activations(np.zeros((5, 2)))]
        [(5, 4), (5, 4)]
        """
        x, _, _ = self._prepare(x)
        values = self.forward_all(x)
        return [values[self.nodes[i].inputs[0]] for i in self.activations]


def _short_name(name: str) -> str:
    return name.split(" (")[0]  # torch.export archives name nodes "0 (Linear)"


def _tensors(op):
    return [v for v in vars(op).values() if isinstance(v, torch.Tensor)]
