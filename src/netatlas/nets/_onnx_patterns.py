"""Exporters' decompositions of one op, recognised in an ONNX graph before import and read as that op.

``torch.onnx.export`` (the dynamo exporter) writes ``nn.LocalResponseNorm`` not as an ONNX ``LRN`` node but
as torch's own formula::

    sq = Mul(x, x);  v = Reshape(sq, (B, 1, C, ...));  p = Pad(v, channels: (size // 2, (size - 1) // 2))
    a = AveragePool(p, kernel (size, 1, ...));  s = Squeeze(a, 1)  [; Reshape back to x's shape]
    y = Div(x, Pow(Add(Mul(s, alpha), k), beta))

which is ``x / (k + alpha/size * sum of x^2 over a window of channels)^beta``: ONNX's LRN with bias ``k``
(the average pool's divisor is ``size`` because the padding is explicit). Each such chain is replaced by
one ``LRN`` node carrying ``torch_channels`` / ``torch_rank`` (what the Reshape assumed), which the
importer checks against the value's shape. Nothing is run: the pass only reads the graph and constants.
"""

from __future__ import annotations

import numpy as np

__all__ = ["fuse_torch_patterns"]


def fuse_torch_patterns(nodes, constants: dict, uses: dict) -> list:
    """The graph's nodes with every torch LocalResponseNorm chain replaced by one LRN node.

    Parameters
    ----------
    nodes : sequence of onnx.NodeProto
        The graph's nodes in order.
    constants : dict
        Initializer name -> NumPy array (Constant nodes are read here).
    uses : dict
        Value name -> number of nodes reading it.

    Returns
    -------
    list of onnx.NodeProto
        ``nodes`` itself when nothing matched.
    """
    nodes = list(nodes)
    if not any(n.op_type == "Div" for n in nodes) or not any(n.op_type == "AveragePool" for n in nodes):
        return nodes
    from onnx import helper, numpy_helper

    producer = {out: n for n in nodes for out in n.output if out}
    known = dict(constants)
    for n in nodes:
        if n.op_type == "Constant" and n.attribute and n.attribute[0].name == "value":
            known[n.output[0]] = numpy_helper.to_array(n.attribute[0].t)
    removed, replaced = set(), {}
    for node in nodes:
        if node.op_type == "Div" and len(node.input) == 2:
            match = _match_lrn(node, producer, known, uses)
            if match is not None:
                chain, attrs = match
                removed.update(id(n) for n in chain)
                replaced[id(node)] = helper.make_node("LRN", [node.input[0]], [node.output[0]], name=node.name,
                                                      **attrs)
    if not replaced:
        return nodes
    return [replaced.get(id(n), n) for n in nodes if id(n) not in removed]


def _match_lrn(div, producer, known, uses):
    """(the chain's nodes other than ``div``, the LRN attributes) or None."""
    x = div.input[0]

    def single(name, op_types):
        node = producer.get(name)
        return node if node is not None and node.op_type in op_types and uses.get(name, 0) == 1 else None

    def scalar(names, value_name):
        (other,) = [n for n in names if n != value_name] or [None]
        c = known.get(other)
        return None if c is None or np.size(c) != 1 else float(np.ravel(c)[0])

    def value_of(node):  # the one input that is not a constant
        names = [i for i in node.input if i and i not in known]
        return names[0] if len(names) == 1 else ""

    power = single(div.input[1], ("Pow",))
    added = power and single(value_of(power), ("Add",))
    scaled = added and single(value_of(added), ("Mul",))
    if not scaled or value_of(power) != power.input[0]:
        return None
    beta = scalar(power.input, power.input[0])
    bias = scalar(added.input, value_of(added))
    alpha = scalar(scaled.input, value_of(scaled))
    inner = single(value_of(scaled), ("Squeeze", "Reshape"))
    back = inner if inner is not None and inner.op_type == "Reshape" else None
    squeeze = single(inner.input[0], ("Squeeze",)) if back is not None else inner
    pool = squeeze and single(squeeze.input[0], ("AveragePool",))
    pad = pool and single(pool.input[0], ("Pad",))
    view = pad and single(pad.input[0], ("Reshape", "Unsqueeze"))
    square = view and single(view.input[0], ("Mul",))
    if not square or list(square.input) != [x, x] or None in (alpha, bias, beta):
        return None
    kernel = _ints(pool, "kernel_shape")
    rank = len(kernel) + 2  # of the padded (B, 1, C, ...) tensor
    squeezed = _ints(squeeze, "axes") or _array(known, squeeze.input[1:])
    unsqueezed = _ints(view, "axes") if view.op_type == "Unsqueeze" else None
    target = _array(known, view.input[1:2]) if view.op_type == "Reshape" else None
    pads = _array(known, pad.input[1:2]) if len(pad.input) > 1 else _ints(pad, "pads")
    fill = _array(known, pad.input[2:3]) if len(pad.input) > 2 and pad.input[2] else [0.0]
    mode = _attr(pad, "mode", b"constant")
    if squeezed is None or list(squeezed) != [1] or (pads is None) or len(pads) != 2 * rank or fill is None:
        return None
    if view.op_type == "Unsqueeze" and list(unsqueezed or _array(known, view.input[1:2]) or []) != [1]:
        return None
    if view.op_type == "Reshape" and (target is None or len(target) != rank or target[1] != 1 or target[2] <= 0):
        return None
    size = kernel[0]
    pads = [int(p) for p in pads]
    window = [pads[i] + pads[rank + i] for i in range(rank)]
    if mode not in (b"constant", "constant") or np.any(np.asarray(fill) != 0) or window[2] != size - 1 \
            or any(window[i] for i in range(rank) if i != 2) or any(k != 1 for k in kernel[1:]) \
            or any(s != 1 for s in (_ints(pool, "strides") or [1])) or any(_ints(pool, "pads") or [0]) \
            or _attr(pool, "auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
        return None
    attrs = {"size": size, "alpha": alpha, "beta": beta, "bias": bias,
             "torch_channels": int(target[2]) if target is not None else 0,
             "torch_rank": 0 if back is not None else rank,
             "torch_before": pads[2]}
    chain = [n for n in (power, added, scaled, back, squeeze, pool, pad, view, square) if n is not None]
    return chain, attrs


def _attr(node, name, default=None):
    from onnx import helper

    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def _ints(node, name):
    value = _attr(node, name)
    return None if value is None else [int(v) for v in value]


def _array(known, names):
    if not names or not names[0] or names[0] not in known:
        return None
    return [v.item() for v in np.ravel(known[names[0]])]
