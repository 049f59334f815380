"""Per-face affine maps of any node of a piecewise-linear :class:`~netatlas.nets.Net`, with the
activation pattern of each face frozen ("gated forward pass").

With every activation replaced by multiplication with its slope on the face (1 / 0 for ReLU, 1 /
alpha for LeakyReLU), the network is affine in the input, so along a plane
``x(u, v) = x_c + u d1 + v d2`` every node value is ``A u + B v + c``. The two tangents (A, B) are
pushed through the *linear part* of each op (biases dropped) and the offset c through the op
itself, so nothing is obtained by differencing.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
import torch.nn.functional as F

from netatlas._errors import UnsupportedLayerError
from netatlas.nets._ir import Activation, Add, AvgPool, ChannelAffine, Conv, Input, Linear, Net, Node

__all__ = ["check_piecewise_linear", "activation_slopes", "gated_maps", "magnitude_net"]


def check_piecewise_linear(net, where: str) -> None:
    """Raise UnsupportedLayerError naming the first activation that is not piecewise linear."""
    for position, i in enumerate(net.activations):
        op = net.nodes[i].op
        if not op.piecewise_linear:
            raise UnsupportedLayerError(
                f"{where}: activation {op.name!r} at node {i} ({net.nodes[i].name!r}, activation "
                f"{position}) is not piecewise linear; exact regions need relu, leaky_relu or identity "
                "activations (use netatlas.metric for smooth networks)")


def activation_slopes(op: Activation) -> tuple[float, float]:
    """(slope where z > 0, slope where z <= 0) of a piecewise-linear activation."""
    if op.name == "relu":
        return 1.0, 0.0
    if op.name == "leaky_relu":
        return 1.0, float(op.params["negative_slope"])
    if op.name == "identity":
        return 1.0, 1.0
    raise AssertionError(op.name)


def _linear_part(op, x: torch.Tensor) -> torch.Tensor:
    if isinstance(op, Linear):
        return F.linear(x, op.weight)
    if isinstance(op, Conv):
        conv = F.conv1d if op.weight.dim() == 3 else F.conv2d
        y = conv(x.reshape(-1, *op.in_shape), op.weight, None, op.stride, op.padding, op.dilation, op.groups)
        return y.flatten(1)
    if isinstance(op, ChannelAffine):
        if op.scale.numel() == 1:
            return x * op.scale
        view = (1, -1) + (1,) * (len(op.in_shape) - 1)
        return (x.reshape(-1, *op.in_shape) * op.scale.reshape(view)).flatten(1)
    if isinstance(op, AvgPool):
        return op(x)  # average pooling with zero padding is linear
    raise UnsupportedLayerError(f"regions: op {op.describe()} is not supported")


def gated_maps(net, node_index: int, x_c: np.ndarray, d1: np.ndarray, d2: np.ndarray,
               gates: list[np.ndarray | None]) -> np.ndarray:
    """Affine maps (F, 3, size) of node ``node_index``'s value on F faces.

    Parameters
    ----------
    net : Net
    node_index : int
        The node whose value is wanted (e.g. the input of an activation node, or the output).
    x_c, d1, d2 : ndarray of shape (n_inputs,)
        The reference point (u = v = 0) and the plane directions.
    gates : list of (F, size_k) float arrays, one per activation node before ``node_index``
        (``None`` for the ones after it): the slope of each unit on each face.

    Returns
    -------
    ndarray of shape (F, 3, size): rows ``[d/du, d/dv, value at (0, 0)]``.
    """
    n_faces = next((g.shape[0] for g in gates if g is not None), 1)
    start = torch.from_numpy(np.stack([d1, d2, x_c]))[None]  # (1, 3, n_inputs)
    values: list[torch.Tensor | None] = []
    act_position = {n: k for k, n in enumerate(net.activations)}
    with torch.no_grad():
        for i, node in enumerate(net.nodes[: node_index + 1]):
            op = node.op
            if isinstance(op, Input):
                values.append(start)
                continue
            if isinstance(op, Add):
                a, b = values[node.inputs[0]], values[node.inputs[1]]
                values.append(a + b)
                continue
            x = values[node.inputs[0]]
            if isinstance(op, Activation):
                g = torch.from_numpy(gates[act_position[i]])[:, None, :]  # (F, 1, size)
                values.append(x * g)
                continue
            batch, _, size = x.shape
            flat = x.reshape(batch * 3, size)
            lin = _linear_part(op, flat).reshape(batch, 3, -1)
            offset = op(x[:, 2])  # includes the bias
            values.append(torch.cat([lin[:, :2], offset[:, None]], dim=1))
    out = values[node_index]
    if out.shape[0] != n_faces:
        out = out.expand(n_faces, -1, -1)
    return np.ascontiguousarray(out.numpy())


def magnitude_net(net) -> Net | None:
    """The same graph with every weight, bias, scale and shift replaced by its absolute value, or
    None if it has an op this does not know. Its gated maps at ``|x_c|, |d1|, |d2|`` with slopes
    ``|s|`` are the magnitudes S of the maps' terms (``_roundoff``, NOTE [vanishing units])."""
    nodes = []
    for node in net.nodes:
        op = node.op
        if isinstance(op, (Linear, Conv)):
            op = dataclasses.replace(op, weight=op.weight.abs(), bias=op.bias.abs())
        elif isinstance(op, ChannelAffine):
            op = dataclasses.replace(op, scale=op.scale.abs(), shift=op.shift.abs())
        elif not isinstance(op, (Input, Add, AvgPool, Activation)):  # average pooling has weights >= 0
            return None
        nodes.append(Node(op, node.inputs, node.shape, node.name))
    return Net(nodes)
