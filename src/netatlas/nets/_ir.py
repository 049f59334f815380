"""The network IR shared by every lens: a tiny graph of affine ops and elementwise activations.

Every value in the graph is a batch of *flattened* per-sample tensors, shape (B, n); each node also
records its per-sample shape (for convolutions). Flatten/reshape are therefore free, and every
non-activation op is an affine map of its inputs. Evaluation is in float64.

    node 0            the input                              shape = input_shape
    Linear/Conv/...   affine map of one node                 y = A x + c
    Add               sum of two nodes (residual additions)  y = x_a + x_b
    Activation        elementwise nonlinearity of one node   y = phi(x)

A lens that needs piecewise-linear structure walks ``net.activations`` (the activation nodes, in
topological order): the pre-activation of each is a continuous piecewise-linear function of the
input as long as every earlier activation is piecewise linear.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "Activation",
    "Add",
    "AvgPool",
    "ChannelAffine",
    "Conv",
    "Input",
    "Linear",
    "Net",
    "Node",
    "PIECEWISE_LINEAR",
    "SMOOTH",
]

PIECEWISE_LINEAR = ("relu", "leaky_relu", "identity")
SMOOTH = ("sigmoid", "tanh", "gelu", "gelu_tanh", "softplus", "elu", "erf")


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
    """A 1-D or 2-D convolution (zero padding), an affine map of the flattened input."""

    weight: torch.Tensor  # (C_out, C_in/groups, *kernel)
    bias: torch.Tensor  # (C_out,)
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    dilation: tuple[int, ...]
    groups: int
    in_shape: tuple[int, ...]  # (C_in, L) or (C_in, H, W)
    kind = "conv"

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        conv = F.conv1d if self.weight.dim() == 3 else F.conv2d
        y = conv(x.reshape(-1, *self.in_shape), self.weight, self.bias, self.stride, self.padding,
                 self.dilation, self.groups)
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
    """2-D average pooling, an affine (linear) map."""

    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    ceil_mode: bool
    count_include_pad: bool
    in_shape: tuple[int, ...]
    kind = "avgpool"

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        y = F.avg_pool2d(x.reshape(-1, *self.in_shape), self.kernel, self.stride, self.padding,
                         self.ceil_mode, self.count_include_pad)
        return y.flatten(1)

    def out_shape(self, in_shape):
        probe = torch.zeros(1, *in_shape, dtype=torch.float64)
        return tuple(F.avg_pool2d(probe, self.kernel, self.stride, self.padding, self.ceil_mode,
                                  self.count_include_pad).shape[1:])

    def describe(self) -> str:
        return f"AvgPool2d(kernel {self.kernel}, stride {self.stride})"


@dataclass(frozen=True, eq=False)
class Add:
    """y = x_a + x_b (residual addition); both inputs have the same shape."""

    kind = "add"

    def describe(self) -> str:
        return "Add"


@dataclass(frozen=True, eq=False)
class Activation:
    """Elementwise activation. ``name`` is one of PIECEWISE_LINEAR + SMOOTH; ``params`` holds
    e.g. negative_slope (leaky_relu), beta/threshold (softplus), alpha (elu)."""

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
        raise AssertionError(f"unknown activation {self.name}")

    def derivative(self, z: torch.Tensor) -> torch.Tensor:
        """phi'(z), elementwise (at a kink of a piecewise-linear activation: the right derivative)."""
        p = self.params
        match self.name:
            case "relu":
                return (z > 0).to(z.dtype)
            case "leaky_relu":
                return torch.where(z > 0, 1.0, p["negative_slope"]).to(z.dtype)
            case "identity":
                return torch.ones_like(z)
            case "sigmoid":
                s = torch.sigmoid(z)
                return s * (1 - s)
            case "tanh":
                return 1 - torch.tanh(z) ** 2
            case "erf":
                return 2 / math.sqrt(math.pi) * torch.exp(-z * z)
        return torch.func.vmap(torch.func.grad(self.__call__))(z.reshape(-1)).reshape(z.shape)

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
    """

    def __init__(self, nodes):
        self.nodes = tuple(nodes)
        assert isinstance(self.nodes[0].op, Input)
        self.input_shape = self.nodes[0].shape
        self.n_inputs = self.nodes[0].size
        self.n_outputs = self.nodes[-1].size
        self.activations = tuple(i for i, n in enumerate(self.nodes) if isinstance(n.op, Activation))
        for node in self.nodes:  # NaN/inf weights would give silent garbage in every lens
            for t in _tensors(node.op):
                if t.is_floating_point() and not bool(torch.isfinite(t).all()):
                    where = repr(node.name) if node.name else "(the top-level module)"
                    raise ValueError(f"Net: layer {where} ({node.op.describe()}) has non-finite weights "
                                     f"(NaN or infinity); netatlas analyses finite networks only")

    # -- structure ------------------------------------------------------------------------------
    @property
    def piecewise_linear(self) -> bool:
        """True if every activation is piecewise linear (ReLU, LeakyReLU, identity)."""
        return all(self.nodes[i].op.piecewise_linear for i in self.activations)

    @property
    def n_hidden_units(self) -> int:
        """Total number of activation units (all activation nodes)."""
        return sum(self.nodes[i].size for i in self.activations)

    @property
    def n_parameters(self) -> int:
        seen, total = set(), 0
        for node in self.nodes:
            for t in _tensors(node.op):
                if id(t) not in seen:
                    seen.add(id(t))
                    total += t.numel()
        return total

    def lenses(self) -> dict[str, str]:
        """Which lenses apply to this net, with the reason where one does not."""
        smooth = sorted({self.nodes[i].op.name for i in self.activations} - set(PIECEWISE_LINEAR))
        out = {"metric": "yes", "dynamics": "yes"}
        out["regions"] = "yes" if not smooth else f"no: smooth activations {smooth}"
        out["splines"] = "yes" if self.is_shallow_univariate() else "no: needs 1 -> H ReLU -> 1"
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
        """A table of the nodes: index, op, inputs, output shape, source name."""
        rows = [f"{'#':>3}  {'op':<52} {'inputs':<9} {'shape':<16} source"]
        for i, node in enumerate(self.nodes):
            rows.append(f"{i:>3}  {node.op.describe():<52} {str(list(node.inputs)):<9} "
                        f"{str(node.shape):<16} {node.name}")
        rows.append(f"parameters: {self.n_parameters:,}; hidden units: {self.n_hidden_units:,}; "
                    f"piecewise linear: {self.piecewise_linear}")
        return "\n".join(rows)

    def to_dict(self) -> dict:
        return {
            "input_shape": list(self.input_shape),
            "n_outputs": self.n_outputs,
            "n_parameters": self.n_parameters,
            "n_hidden_units": self.n_hidden_units,
            "piecewise_linear": self.piecewise_linear,
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
            elif isinstance(op, Add):
                values.append(values[node.inputs[0]] + values[node.inputs[1]])
            else:
                values.append(op(values[node.inputs[0]]))
        return values

    def __call__(self, x):
        x, is_numpy, unbatched = self._prepare(x)
        y = self.forward_all(x)[-1]
        if unbatched:
            y = y[0]
        return y.numpy() if is_numpy else y

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


def _tensors(op):
    return [v for v in vars(op).values() if isinstance(v, torch.Tensor)]
