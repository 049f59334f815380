"""Exact linear pieces of a network along a segment ``x(t) = x0 + t (x1 - x0)``, t in [0, 1], in
any input dimension (Hanin & Rolnick count regions this way).

Activation nodes are processed in order; on each piece every earlier node has a fixed pattern, so
node k's pre-activation is affine in t there (``_affine.gated_maps`` with d2 = 0) and each unit's
zero is one breakpoint. A breakpoint within ``LINE_TOLERANCE`` (in t) of another or of a piece's
end is merged with it. A unit that vanishes on a piece up to round-off (NOTE [vanishing units] in
``_roundoff``) has no breakpoint there and is off.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from netatlas.regions._affine import activation_slopes, check_piecewise_linear, gated_maps
from netatlas.regions._partition import _VanishingGraph, as_net
from netatlas.slices import Line

__all__ = ["LINE_TOLERANCE", "LinePieces", "along_line"]

#: Breakpoints closer than this in t (the segment has length 1 in t) are one breakpoint.
LINE_TOLERANCE = 1e-10


@dataclass(frozen=True, eq=False)
class LinePieces:
    """The linear pieces of a network along a segment.

    Attributes
    ----------
    breakpoints : ndarray of shape (B,)
        Interior breakpoints, sorted, in (0, 1).
    edges : ndarray of shape (B + 2,)
        ``[0, *breakpoints, 1]``: piece i is ``[edges[i], edges[i + 1]]``.
    patterns : ndarray of shape (B + 1, N) bool
        On/off state of every hidden unit on each piece (``net.activations`` order).
    output_slope, output_offset : ndarray of shape (B + 1, n_outputs)
        On piece i the output is ``output_slope[i] * t + output_offset[i]``.
    line : Line
    """

    breakpoints: np.ndarray
    patterns: np.ndarray
    output_slope: np.ndarray
    output_offset: np.ndarray
    line: Line

    @property
    def edges(self) -> np.ndarray:
        return np.concatenate([[0.0], self.breakpoints, [1.0]])

    @property
    def num_pieces(self) -> int:
        return len(self.breakpoints) + 1

    def locate(self, t) -> np.ndarray:
        """Piece index of each t (P,) in [0, 1]."""
        t = np.asarray(t, dtype=np.float64)
        return np.clip(np.searchsorted(self.breakpoints, t, side="right"), 0, len(self.breakpoints))

    def outputs(self, t) -> np.ndarray:
        """Network outputs (P, n_outputs) at parameters t, from the pieces' affine maps."""
        t = np.asarray(t, dtype=np.float64).reshape(-1)
        i = self.locate(t)
        return self.output_slope[i] * t[:, None] + self.output_offset[i]

    def to_dict(self) -> dict:
        return {"num_pieces": self.num_pieces, "breakpoints": self.breakpoints.tolist(),
                "n_units": int(self.patterns.shape[1]), "length": self.line.length}


def along_line(net, x0, x1=None, *, tolerance: float = LINE_TOLERANCE) -> LinePieces:
    """Exact breakpoints and activation patterns of a network along the segment from x0 to x1.

    Parameters
    ----------
    net : Net or torch.nn.Module
    x0, x1 : array_like of the network's input shape, or a :class:`~netatlas.Line` as ``x0``
    tolerance : float
        Breakpoint merge tolerance in t.

    Returns
    -------
    LinePieces

    Examples
    --------
    >>> import netatlas
    >>> net = netatlas.nets.mlp([3, 16, 16, 1], seed=0)
    >>> pieces = netatlas.regions.along_line(net, [-1.0, 0.0, 0.5], [1.0, 0.5, -0.5])
    >>> pieces.num_pieces == len(pieces.breakpoints) + 1, pieces.patterns.shape[1]
    (True, 32)
    """
    line = x0 if isinstance(x0, Line) and x1 is None else Line(x0, x1)
    net = as_net(net, line.input_shape, "along_line")
    if line.x0.size != net.n_inputs:
        raise ValueError(f"along_line: the line's inputs have {line.x0.size} numbers but the network "
                         f"expects {net.n_inputs} (shape {net.input_shape})")
    check_piecewise_linear(net, "along_line")
    x_c = line.x0.ravel().astype(np.float64)
    d1 = line.direction.ravel().astype(np.float64)
    d2 = np.zeros_like(d1)
    slopes = [activation_slopes(net.nodes[i].op) for i in net.activations]
    edges = np.array([0.0, 1.0])
    bits: list[np.ndarray] = []
    vanish = _VanishingGraph(net, x_c, d1, d2, slopes)  # NOTE [vanishing units] in _roundoff
    for node_index in net.activations:
        pre = net.nodes[node_index].inputs[0]
        M = np.array(_maps(net, pre, x_c, d1, d2, bits, slopes, len(edges) - 1))
        vanish.snap(pre, M, bits)
        a, c = M[:, 0], M[:, 2]  # z(t) = a t + c on each piece, (P, n)
        if net.nodes[node_index].op.name == "identity":
            bits.append(np.ones(a.shape, bool))
            continue
        lo, hi = edges[:-1, None], edges[1:, None]
        za, zb = a * lo + c, a * hi + c
        tol = tolerance * np.abs(a)
        cross = ((za > tol) & (zb < -tol)) | ((za < -tol) & (zb > tol))
        p_idx, j_idx = np.nonzero(cross)
        t_new = -c[p_idx, j_idx] / a[p_idx, j_idx]
        inner = np.unique(np.concatenate([edges[1:-1], t_new]))
        inner = inner[(inner > tolerance) & (inner < 1 - tolerance)]
        if len(inner):
            inner = inner[np.concatenate([[True], np.diff(inner) > tolerance])]
        t_all = np.concatenate([[0.0], inner, [1.0]])
        mids = (t_all[:-1] + t_all[1:]) / 2
        parent = np.clip(np.searchsorted(edges, mids, side="right") - 1, 0, len(edges) - 2)
        z_mid = a[parent] * mids[:, None] + c[parent]
        bits = [b[parent] for b in bits] + [z_mid > 0]
        edges = t_all
    out = _maps(net, len(net.nodes) - 1, x_c, d1, d2, bits, slopes, len(edges) - 1)
    patterns = np.concatenate(bits, axis=1) if bits else np.zeros((len(edges) - 1, 0), bool)
    return LinePieces(edges[1:-1].copy(), patterns, out[:, 0].copy(), out[:, 2].copy(), line)


def _maps(net, node_index, x_c, d1, d2, bits, slopes, n_pieces):
    gates = [np.where(b, on, off) for b, (on, off) in zip(bits, slopes, strict=False)]
    gates += [None] * (len(slopes) - len(gates))
    m = gated_maps(net, node_index, x_c, d1, d2, gates)
    return np.broadcast_to(m, (n_pieces, *m.shape[1:]))
