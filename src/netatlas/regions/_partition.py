"""The exact partition of a 2-D slice of input space into the linear regions of a network.

# NOTE [the algorithm]
Every pre-activation is a continuous piecewise-linear function of the plane coordinates (u, v).
Activation nodes are processed in order. Before node k is processed, every face is a convex polygon
on which all earlier nodes have a fixed on/off pattern, so node k's pre-activation is *affine* on
the face: z = A u + B v + c. The face is cut by the zero line of each unit that changes sign on it
(a numba kernel, faces processed independently, pieces split one unit after the other), and each
child records which side of each line it lies on.

The affine map of node k+1 on a child follows from its parent's map of node k. For a chain of
Linear layers (``Net.as_mlp``), ``M'_child = W diag(s_child) M_parent + b``; all children of a
parent differ only in the bits of the units that cut it, so one GEMM per parent (under a reference
pattern) plus rank-few corrections per child gives all of them. The chain is processed depth first
in chunks, so memory stays bounded however many regions there are. Any other graph (convolutions,
batch norm, residual additions, average pooling) gets its maps from a gated forward pass
(``_affine.gated_maps``).

# NOTE [tolerances]
All arithmetic is float64. A vertex lies *on* a unit's zero line when its distance to the line is at
most ``tolerance * diameter`` (``BOUNDARY_TOLERANCE``, relative to the slice's diagonal): such a
vertex is snapped onto the line, so a line through a vertex, duplicate units and coincident
boundaries never create slivers, and a unit whose map is constant on a face (zero rows, dead units)
never cuts it. A unit whose map on a face is zero up to the round-off of its own computation (its
three coefficients within K eps times the magnitudes of the terms summed; ``_roundoff``, NOTE
[vanishing units]) is set to exact zero: it does not cut the face and counts as off there.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import sys
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch

from netatlas._checks import require_finite
from netatlas._memory import check_memory
from netatlas._notebook import PartitionDisplay
from netatlas.nets import as_net
from netatlas.nets._ir import Max, Net
from netatlas.regions import _kernels as K
from netatlas.regions import _scale
from netatlas.regions._affine import (
    activation_slopes,
    affine_matrix,
    carried_nodes,
    carried_rows,
    check_piecewise_linear,
    csr_rows,
    gate_from_state,
    gated_values,
    gates_from_states,
    is_affine,
    state_columns,
)
from netatlas.regions._graphmaps import _maps_chunked, _VanishingGraph
from netatlas.regions._maxkernels import split_faces_max, tie_candidates
from netatlas.regions._roundoff import CANDIDATE_RATIO, roundings, snap_vanishing
from netatlas.regions._segments import REFRESH, gather_picked, plan_updates, segment, update_from_previous
from netatlas.regions._sink import RegionSink
from netatlas.slices import Plane

__all__ = ["BOUNDARY_TOLERANCE", "VERTEX_MERGE_TOLERANCE", "Partition", "Neighbors", "partition"]

log = logging.getLogger(__name__)

#: A vertex within this distance (relative to the slice's diagonal) of a unit's zero line is on it.
BOUNDARY_TOLERANCE = 1e-10
#: Face-local copies of one vertex closer than this (relative to the diagonal) are the same vertex.
VERTEX_MERGE_TOLERANCE = 1e-9
#: Faces handled per batch of the depth-first chain partition (bounds the memory of per-face maps).
CHUNK_FACES = 4096
#: Bytes of one batch's per-face maps: fewer faces per batch on wide layers, so that the maps the
#: batch writes are still in cache when the next layer reads them.
CHUNK_BYTES = 2 << 20
#: Next layers at most this wide get their maps from a compiled loop instead of a BLAS call.
SMALL_PRODUCT = 32


@dataclass(frozen=True, eq=False)
class Neighbors:
    """Region adjacency: ``pairs`` (E, 2) int regions sharing an edge, ``unit`` (E,) the global
    unit (column of ``Partition.patterns``) whose zero line the shared edge lies on."""

    pairs: np.ndarray
    unit: np.ndarray

    def __len__(self) -> int:
        return len(self.pairs)

    def to_dict(self) -> dict:
        return {"n_pairs": int(len(self.pairs)), "pairs": self.pairs.tolist(), "unit": self.unit.tolist()}


@dataclass(frozen=True, eq=False)
class Partition(PartitionDisplay):
    """The exact linear regions of a network on a 2-D slice (see :func:`partition`).

    Attributes
    ----------
    plane : Plane
        The slice; coordinates are plane coordinates (u, v).
    num_regions : int
        F, the number of linear regions (convex polygons).
    areas : ndarray of shape (F,)
        Area of each region in (u, v) units; they sum to ``plane.area``.
    patterns : ndarray of shape (F, N) bool
        On/off state (pre-activation > 0) of every hidden unit of every activation node, in
        ``net.activations`` order, units flattened per node. Identity activations count as on; a
        hardtanh node has a column per unit and finite bound (``z > min_val`` for every unit, then
        ``z > max_val`` for every unit).
    argmax : ndarray of shape (F, M) int
        For nets with max pooling: the arg-max of every ``Max`` output (``net.nodes`` order, outputs
        flattened per node), as the position in its window (row of ``Max.index``); ties go to the
        first entry (lowest input index). A region is where every pattern bit and arg-max is fixed.
    output_linear : ndarray of shape (F, n_outputs, 2)
    output_offset : ndarray of shape (F, n_outputs)
        In region i the network's output is ``output_linear[i] @ [u, v] + output_offset[i]``.
    vertices : ndarray of shape (V, 2)
        Distinct vertices; ``faces[i]`` lists region i's vertex indices counter-clockwise.
    units_per_layer : tuple of int
        Pattern columns of each activation node; ``layer_names`` their source names.
        ``max_units_per_layer`` / ``max_layer_names``: the same for the ``Max`` nodes (argmax columns).
        Edge labels (``neighbors().unit``) number pattern columns first, then argmax columns.
    tolerance : float
        The boundary tolerance used (relative to the slice's diagonal).
    """

    plane: Plane
    center: np.ndarray  # (2,) internal coordinates are (u, v) - center
    xy: np.ndarray  # (T, 2) face-local vertices, centred, counter-clockwise
    offsets: np.ndarray  # (F + 1,)
    labels: np.ndarray  # (T,) unit (or -1..-4 slice side) of the edge starting at each vertex
    pattern_bits: tuple  # per activation node: (F, ceil(n_k / 8)) uint8 packed bits
    maps: np.ndarray  # (F, 3, n_outputs) output maps in centred coordinates
    units_per_layer: tuple
    layer_names: tuple
    tolerance: float
    method: str
    choices: tuple = ()  # per Max node: (F, n_out) int16 arg-max positions
    max_units_per_layer: tuple = ()
    max_layer_names: tuple = ()
    net: object = None  # the Net partitioned (for per-layer maps: volume_element)
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    # -- geometry ---------------------------------------------------------------------------------
    @property
    def num_regions(self) -> int:
        return len(self.offsets) - 1

    @property
    def n_units(self) -> int:
        return int(sum(self.units_per_layer))

    @property
    def n_outputs(self) -> int:
        return int(self.maps.shape[2])

    @property
    def diameter(self) -> float:
        umin, umax, vmin, vmax = self.plane.bounds
        return math.hypot(umax - umin, vmax - vmin)

    def polygon(self, i: int) -> np.ndarray:
        """Vertices (k, 2) of region i in plane coordinates, counter-clockwise."""
        i = self._check_index(i)
        return self.xy[self.offsets[i]: self.offsets[i + 1]] + self.center

    def _check_index(self, i) -> int:
        if not isinstance(i, (int, np.integer)) or not -self.num_regions <= i < self.num_regions:
            raise IndexError(f"Partition: region index {i!r} out of range for {self.num_regions} regions")
        return int(i) % self.num_regions

    @property
    def areas(self) -> np.ndarray:
        if "areas" not in self._cache:
            self._cache["areas"] = K.polygon_areas(self.xy, self.offsets)
        return self._cache["areas"]

    @property
    def n_vertices_per_region(self) -> np.ndarray:
        return np.diff(self.offsets)

    def _dedupe(self):
        if "dedupe" not in self._cache:
            from scipy.sparse import coo_matrix
            from scipy.sparse.csgraph import connected_components
            from scipy.spatial import cKDTree

            tree = cKDTree(self.xy)
            pairs = tree.query_pairs(VERTEX_MERGE_TOLERANCE * self.diameter, output_type="ndarray")
            T = len(self.xy)
            graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(T, T))
            _, comp = connected_components(graph, directed=False)
            # number the distinct vertices by first appearance
            _, first, inverse = np.unique(comp, return_index=True, return_inverse=True)
            order = np.argsort(first)
            rank = np.empty_like(order)
            rank[order] = np.arange(len(order))
            index = rank[inverse]
            vertices = self.xy[np.sort(first)] + self.center
            self._cache["dedupe"] = (vertices, index)
        return self._cache["dedupe"]

    @property
    def vertices(self) -> np.ndarray:
        """Distinct vertices (V, 2) in plane coordinates (face-local copies merged)."""
        return self._dedupe()[0]

    @property
    def faces(self) -> list:
        """Per region, its vertex indices into ``vertices``, counter-clockwise."""
        index = self._dedupe()[1]
        return np.split(index, self.offsets[1:-1])

    # -- patterns and maps ------------------------------------------------------------------------
    @property
    def patterns(self) -> np.ndarray:
        if "patterns" not in self._cache:
            parts = [np.unpackbits(b, axis=1, count=n).astype(bool)
                     for b, n in zip(self.pattern_bits, self.units_per_layer, strict=True)]
            self._cache["patterns"] = (np.concatenate(parts, axis=1) if parts
                                       else np.zeros((self.num_regions, 0), bool))
        return self._cache["patterns"]

    @property
    def argmax(self) -> np.ndarray:
        if "argmax" not in self._cache:
            self._cache["argmax"] = (np.concatenate(self.choices, axis=1).astype(np.int64) if self.choices
                                     else np.zeros((self.num_regions, 0), np.int64))
        return self._cache["argmax"]

    @property
    def output_linear(self) -> np.ndarray:
        return np.ascontiguousarray(self.maps[:, :2, :].transpose(0, 2, 1))

    @property
    def output_offset(self) -> np.ndarray:
        return self.maps[:, 2, :] - self.center[0] * self.maps[:, 0, :] - self.center[1] * self.maps[:, 1, :]

    def outputs(self, points_uv, regions=None) -> np.ndarray:
        """The network's outputs (P, n_outputs) at points (P, 2), from the regions' affine maps."""
        pts = _points(points_uv, "outputs")
        regions = self.locate(pts) if regions is None else np.asarray(regions)
        if np.any(regions < 0):
            raise ValueError("Partition.outputs: some points lie outside the slice")
        rel = pts - self.center
        # the gathered maps (P, 3, n_outputs) and the result: sized before allocating
        check_memory(4 * 8 * len(pts) * self.maps.shape[2], f"Partition.outputs at {len(pts):,} points x "
                     f"{self.maps.shape[2]:,} outputs")
        m = self.maps[regions]
        return rel[:, :1] * m[:, 0] + rel[:, 1:] * m[:, 1] + m[:, 2]

    # -- queries ----------------------------------------------------------------------------------
    def locate(self, points_uv) -> np.ndarray:
        """Region index (P,) of each point (P, 2) in plane coordinates; -1 outside the slice.

        A point on an edge goes to one of the regions sharing it. Non-finite points raise ValueError
        naming the entry."""
        pts = _points(points_uv, "locate")
        pts = pts - self.center
        if "locator" not in self._cache:
            lo = self.xy.min(0)
            hi = self.xy.max(0)
            n_side = int(min(max(math.sqrt(self.num_regions), 1), 2048))
            cell = np.maximum((hi - lo) / n_side, 1e-300)
            cell_off, cell_faces = K.build_locator(self.xy, self.offsets, lo[0], lo[1], cell[0], cell[1],
                                                   n_side, n_side)
            self._cache["locator"] = (lo, cell, n_side, cell_off, cell_faces)
        lo, cell, n_side, cell_off, cell_faces = self._cache["locator"]
        return K.locate_points(np.ascontiguousarray(pts), self.xy, self.offsets, cell_off, cell_faces,
                               lo[0], lo[1], cell[0], cell[1], n_side, n_side,
                               VERTEX_MERGE_TOLERANCE * self.diameter)

    def layer_maps(self, layer="output", regions=None) -> np.ndarray:
        """Affine maps (R, 3, n) of one node's value on the regions: rows ``[d/du, d/dv, value at the
        centre of the slice]`` (centred coordinates, as ``maps``).

        ``layer``: "output", a node index of ``net.nodes`` or a node name (e.g. "features.3");
        ``regions``: indices (default all). Exact: the gated forward pass of each region's state."""
        if self.net is None:
            raise ValueError("Partition.layer_maps: this partition does not hold its network")
        net = self.net
        node = _node_index(net, layer)
        regions = np.arange(self.num_regions) if regions is None else np.asarray(regions, dtype=np.int64)
        _, _, _, _, x_c, d1, d2, _ = _frame(self.plane)
        ops = [net.nodes[i].op for i in net.nonlinear]
        bits = iter(np.unpackbits(b, axis=1, count=n).astype(np.uint8)
                    for b, n in zip(self.pattern_bits, self.units_per_layer, strict=True))
        choices = iter(self.choices)
        states = [next(choices) if isinstance(op, Max) else next(bits) for op in ops]
        parts = []
        for s in range(0, len(regions), 2048):
            idx = regions[s:s + 2048]
            parts.append(_maps_chunked(net, node, x_c, d1, d2, [st[idx] for st in states], ops, len(idx)))
        return np.concatenate(parts) if parts else np.zeros((0, 3, net.nodes[node].size))

    def volume_element(self, layer="output", *, log: bool = False) -> np.ndarray:
        """The volume element (F,) of a layer on each region: ``sqrt(det(J^T J))`` with J (n_layer, 2)
        the Jacobian of the layer's value with respect to the plane coordinates (u, v), i.e. how much
        the layer magnifies area of the slice. A piecewise-linear net's layer is affine on each region,
        so this is exact and constant per region. ``log=True`` gives its natural log (-inf where the
        layer collapses the region).

        Examples
        --------
        >>> import netatlas
        >>> part = netatlas.regions.partition(netatlas.nets.mlp([2, 8, 3], seed=0))
        >>> part.volume_element("output").shape == (part.num_regions,)
        True
        """
        key = ("volume", layer, log)
        if key not in self._cache:
            m = self.layer_maps(layer)
            a, b = m[:, 0, :], m[:, 1, :]
            aa = np.einsum("fn,fn->f", a, a)
            # |a| |b - proj_a b| is sqrt(|a|^2 |b|^2 - (a.b)^2) without its cancellation
            proj = np.einsum("fn,fn->f", a, b) / np.where(aa > 0, aa, 1.0)
            perp = b - proj[:, None] * a
            vol = np.sqrt(aa) * np.sqrt(np.einsum("fn,fn->f", perp, perp))
            with np.errstate(divide="ignore"):
                self._cache[key] = np.log(vol) if log else vol
        return self._cache[key]

    def neighbors(self) -> Neighbors:
        """Pairs of regions sharing an edge, and the unit whose sign flips across it."""
        if "neighbors" not in self._cache:
            index = self._dedupe()[1]
            nxt = np.arange(1, len(index) + 1)
            nxt[self.offsets[1:] - 1] = self.offsets[:-1]
            a, b = index, index[nxt]
            face = np.repeat(np.arange(self.num_regions), np.diff(self.offsets))
            keep = (self.labels >= 0) & (a != b)
            lo, hi = np.minimum(a, b)[keep], np.maximum(a, b)[keep]
            face, lab = face[keep], self.labels[keep]
            order = np.lexsort((hi, lo))
            lo, hi, face, lab = lo[order], hi[order], face[order], lab[order]
            same = (lo[1:] == lo[:-1]) & (hi[1:] == hi[:-1]) & (face[1:] != face[:-1])
            i = np.flatnonzero(same)
            pairs = np.stack([face[i], face[i + 1]], 1)
            pairs.sort(axis=1)
            self._cache["neighbors"] = Neighbors(pairs.astype(np.int64), lab[i].astype(np.int64))
        return self._cache["neighbors"]

    def decision_boundary(self):
        """Exact segments where the predicted class changes (arg-max of several outputs) or where
        the single output crosses 0; see :func:`netatlas.regions.decision_boundary`."""
        from netatlas.regions._boundary import decision_boundary

        return decision_boundary(self)

    def level_set(self, value: float, output: int = 0):
        """Exact segments where output ``output`` equals ``value``; see
        :func:`netatlas.regions.level_set`."""
        from netatlas.regions._boundary import level_set

        return level_set(self, value, output=output)

    def predicted_class(self) -> np.ndarray:
        """Class (F,) predicted at each region's centroid (arg-max, or output > 0 for one output)."""
        out = self.outputs(self.centroids(), np.arange(self.num_regions))
        return (out[:, 0] > 0).astype(np.int64) if self.n_outputs == 1 else out.argmax(1)

    def centroids(self) -> np.ndarray:
        """Mean of each region's vertices (F, 2): a point strictly inside every region."""
        counts = np.diff(self.offsets)
        sums = np.add.reduceat(self.xy, self.offsets[:-1], axis=0)
        return sums / counts[:, None] + self.center

    def plot(self, ax=None, **kwargs):
        """Draw the regions (see :func:`netatlas.regions.plot_partition`); returns the axes."""
        from netatlas.regions._plot import plot_partition

        return plot_partition(self, ax=ax, **kwargs)

    def to_dict(self, arrays: bool = False) -> dict:
        """JSON-safe summary; with ``arrays=True`` also polygons, patterns (as 0/1) and maps."""
        areas = self.areas
        out = {
            "num_regions": self.num_regions,
            "n_units": self.n_units,
            "units_per_layer": list(self.units_per_layer),
            "layer_names": list(self.layer_names),
            "n_outputs": self.n_outputs,
            "plane": self.plane.to_dict(),
            "area": float(areas.sum()),
            "min_area": float(areas.min()),
            "mean_vertices_per_region": float(np.diff(self.offsets).mean()),
            "tolerance": self.tolerance,
            "method": self.method,
        }
        if arrays:
            out["polygons"] = [self.polygon(i).tolist() for i in range(self.num_regions)]
            out["patterns"] = self.patterns.astype(int).tolist()
            out["output_linear"] = self.output_linear.tolist()
            out["output_offset"] = self.output_offset.tolist()
        return out

    def __repr__(self) -> str:
        return (f"Partition(num_regions={self.num_regions}, n_units={self.n_units}, "
                f"bounds={self.plane.bounds})")


def _node_index(net, layer) -> int:
    if layer == "output":
        return len(net.nodes) - 1
    if isinstance(layer, (int, np.integer)) and not isinstance(layer, bool):
        if not 0 < layer < len(net.nodes):
            raise ValueError(f"Partition: layer index {layer} is out of range; the net has nodes "
                             f"1..{len(net.nodes) - 1}")
        return int(layer)
    matches = [i for i, node in enumerate(net.nodes) if node.name == layer and i > 0]
    if not matches:
        names = sorted({node.name for node in net.nodes[1:]})
        raise ValueError(f"Partition: no layer named {layer!r}; use 'output', a node index or one of {names}")
    return matches[-1]


def _points(points_uv, where) -> np.ndarray:
    pts = np.asarray(points_uv, dtype=np.float64)
    if pts.ndim == 1 and pts.shape == (2,):
        pts = pts[None]
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise ValueError(f"Partition.{where}: points must have shape (P, 2) in plane coordinates; got "
                         f"{pts.shape}")
    require_finite(pts, f"Partition.{where}: points")
    return pts


# -- entry point --------------------------------------------------------------------------------
def checked_inputs(net, plane, tolerance, method) -> tuple[Net, Plane]:
    """``partition``'s arguments checked (one-line errors): the net as a piecewise-linear ``Net`` and the
    plane (default ``Plane.square(1.0)``) with the net's input size."""
    if method not in ("auto", "chain", "graph"):
        raise ValueError(f"partition: method must be 'auto', 'chain' or 'graph'; got {method!r}")
    if not (isinstance(tolerance, (int, float)) and 0 <= tolerance < 1e-3):
        raise ValueError(f"partition: tolerance must be a float in [0, 1e-3); got {tolerance!r}")
    if plane is None:
        plane = Plane.square(1.0)
    if not isinstance(plane, Plane):
        raise TypeError(f"partition: plane must be a netatlas.Plane, got {type(plane).__name__}")
    net = as_net(net, input_shape=plane.input_shape)
    if plane.origin.size != net.n_inputs:
        raise ValueError(f"partition: plane has {plane.origin.size}-dim inputs but the network expects "
                         f"{net.n_inputs}; build the plane with Plane.through(...) on inputs of the "
                         f"network's shape {net.input_shape}")
    check_piecewise_linear(net, "partition")
    return net, plane


def partition(net, plane: Plane | None = None, *, tolerance: float = BOUNDARY_TOLERANCE,
              method: Literal["auto", "chain", "graph"] = "auto", max_regions: int | None = None,
              memory_budget: int | str | None = "auto", progress: bool | None = None) -> Partition:
    """The untiled partition behind :func:`netatlas.regions.partition` (the same parameters but
    ``tiles`` and ``client``; see there)."""
    net, plane = checked_inputs(net, plane, tolerance, method)
    chain = _chain_layers(net)
    if method == "chain" and chain is None:
        raise ValueError("partition: method='chain' needs a chain of affine layers (Linear/Conv/AvgPool/"
                         "BatchNorm), each group followed by one relu/leaky_relu/identity activation, the last "
                         "one affine; use method='graph'")
    if max_regions is not None and not (isinstance(max_regions, (int, np.integer)) and max_regions > 0):
        raise ValueError(f"partition: max_regions must be a positive int or None; got {max_regions!r}")
    budget = _scale.default_memory_budget() if memory_budget == "auto" else _scale.parse_bytes(memory_budget)
    limits = _scale.Limits(max_regions, budget, _scale.bytes_per_region(net, net.n_outputs), plane.area, False)
    # the estimate costs a few line partitions: skip it for plain MLPs under the default budget (the
    # run still stops when the count passes the budget)
    wanted = max_regions is not None or memory_budget != "auto" or chain is None or method == "graph" or progress
    estimate = _scale.estimate_regions(net, plane) if wanted and limits.cap is not None or progress else None
    if estimate is not None:
        limits.check_estimate(estimate)
    if progress or (progress is None and estimate is not None and estimate > 20_000 and sys.stderr.isatty()):
        limits = _scale.Limits(max_regions, budget, limits.per_region, plane.area, True)
    try:
        if method == "graph" or chain is None:
            part = _graph_partition(net, plane, float(tolerance), limits)
        else:
            part = _chain_partition(net, chain, plane, float(tolerance), limits)
    finally:
        limits.close()
    return dataclasses.replace(part, net=net)


#: Largest dense matrix (entries) a conv/pool/batch-norm segment is unrolled to for the chain path.
UNROLL_MAX_ENTRIES = 2 * 10**7


def _chain_layers(net):
    try:
        layers = net.as_mlp()
    except ValueError:
        return _unrolled_layers(net)
    if layers[-1][2] is not None or any(act is None or act.name == "hardtanh" for _, _, act in layers[:-1]):
        return None
    return [(W.numpy(), b.numpy(), act) for W, b, act in layers]


def _segments(net):
    """The net as a chain of segments (affine ops, their input size, the activation after them or
    None for the last), or None when it is not such a chain (see ``_unrolled_layers``)."""
    from netatlas.nets._ir import Activation, Input

    segments, segment, n_in = [], [], net.n_inputs
    for i, node in enumerate(net.nodes[1:], start=1):
        if node.inputs != (i - 1,) or isinstance(node.op, Input):
            return None
        if isinstance(node.op, Activation):
            if node.op.name == "hardtanh" or not segment:
                return None
            segments.append((segment, n_in, node.op))
            segment, n_in = [], node.size
        elif is_affine(node.op):
            segment.append(node.op)
        else:
            return None
    if not segment or not segments:
        return None
    return [*segments, (segment, n_in, None)]


def _unrolled_layers(net):
    """A chain of affine ops (Conv, AvgPool, ChannelAffine, Linear, ...) and relu/leaky/identity
    activations as dense (W, b, activation) layers for the fast chain path: the ops between two
    activations compose into one affine map, whose matrix is the linear part applied to the identity
    (exact, nothing is differenced). None when the graph is not such a chain, or too large."""
    segments = _segments(net)
    if segments is None:
        return None
    layers = []
    for ops, n_in, act in segments:
        dense = affine_matrix(ops, n_in, UNROLL_MAX_ENTRIES)
        if dense is None:
            return None
        layers.append((*dense, act))
    return layers


#: Cost of one multiply-add through a CSR index relative to a dense (vectorised) one.
GATHER_COST = 4


def _factor(A):
    """One factor for ``_next_maps``: ("csr", ptr, idx, val, n_out) when sparse enough that the
    gathers pay, else ("dense", A); and its cost in dense multiply-adds."""
    nnz = np.count_nonzero(A)
    if GATHER_COST * nnz >= A.size:
        return ("dense", np.ascontiguousarray(A, dtype=np.float64)), A.size
    return ("csr", *csr_rows(A), A.shape[0]), GATHER_COST * nnz


def layer_factors(net, layers):
    """Per chain layer, its linear part as a product of factors (one per op, applied first to last,
    sparse ones as CSR) when that costs fewer multiply-adds than the dense matrix, else None. An
    unrolled conv segment ``avgpool -> linear`` is dense as one matrix, but its factors (a sparse
    pool, a small linear) cost a fraction of it; ``_next_maps`` multiplies every face's map by it."""
    segments = _segments(net)
    out = []
    for k, (W, _, _) in enumerate(layers):
        whole, cost = _factor(W)
        best = [whole] if whole[0] == "csr" else None
        ops, n = (segments[k][:2]) if segments is not None and len(segments) == len(layers) else ([], 0)
        if len(ops) > 1:
            factors, c_factors = [], 0
            for op in ops:
                A, _ = affine_matrix([op], n)
                factor, c = _factor(A)
                factors.append(factor)
                c_factors += c
                n = A.shape[0]
            if c_factors < cost:
                best = factors
        out.append(best)
    return out


def _frame(plane: Plane):
    umin, umax, vmin, vmax = plane.bounds
    center = np.array([(umin + umax) / 2, (vmin + vmax) / 2])
    hu, hv = (umax - umin) / 2, (vmax - vmin) / 2
    xy = np.array([[-hu, -hv], [hu, -hv], [hu, hv], [-hu, hv]])
    off = np.array([0, 4], np.int64)
    lab = np.array([-1, -2, -3, -4], np.int64)
    d1, d2 = plane.d1.ravel(), plane.d2.ravel()
    x_c = plane.origin.ravel() + center[0] * d1 + center[1] * d2
    diam = math.hypot(umax - umin, vmax - vmin)
    return center, xy, off, lab, x_c, d1, d2, diam


def _layer_names(net):
    return tuple(net.nodes[i].name for i in net.activations)


def _chain_partition(net, layers, plane, tol, limits=None) -> Partition:
    center, xy, off, lab, x_c, d1, d2, diam = _frame(plane)
    hidden = layers[:-1]
    sizes = [W.shape[0] for W, _, _ in hidden]
    base = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    W0, b0, _ = layers[0]
    M = np.empty((1, 3, W0.shape[0]))
    M[0, 0], M[0, 1], M[0, 2] = W0 @ d1, W0 @ d2, W0 @ x_c + b0
    out = RegionSink(limits)
    if not hidden:
        _emit(out, xy, off, lab, [], M)
    else:
        vanish = _vanishing_bounds(net, layers, x_c, d1, d2)
        snap_vanishing(M, vanish[0][0], vanish[0][2])  # first layer: mu is the exact magnitude
        work = {"vanish": vanish, "factors": layer_factors(net, layers)}
        _chain_level(0, layers, base, xy, off, lab, M, [], out, tol, diam, work)
    return _assemble(out, plane, center, sizes, _layer_names(net), tol, "chain")


def _vanishing_bounds(net, layers, x_c, d1, d2):
    """Per layer (the affine output layer included): (mu (3, n), candidate threshold (3, n), K) for
    vanishing units (``_roundoff``, NOTE [vanishing units]). mu bounds the magnitudes of the layer's
    maps on every face: the map computation in absolute values with every slope replaced by the
    largest one. The output layer is never snapped (threshold -1)."""
    K = roundings(net)
    pre = [net.nodes[i].inputs[0] for i in net.activations] + [len(net.nodes) - 1]
    mu = np.abs(np.stack([d1, d2, x_c]))  # (3, n_inputs)
    out = []
    for k, (W, b, act) in enumerate(layers):
        mu = mu @ np.abs(W).T
        mu[2] += np.abs(b)
        last = k == len(layers) - 1
        out.append((mu, np.full_like(mu, -1.0) if last else CANDIDATE_RATIO * mu, float(K[pre[k]])))
        if not last:
            mu = mu * max(abs(s) for s in activation_slopes(act))
    return out


def split_faces(xy, off, lab, M, unit_base, tol, diam):
    """``_kernels.split_faces`` (one thread: measured faster than two on a shared 2-core machine)."""
    return K.split_faces(xy, off, lab, M, unit_base, tol, diam)


def _buffer(work, key, shape):
    """A view of shape ``shape`` into a per-level buffer that is reused across chunks."""
    size = int(np.prod(shape))
    buf = work.get(key)
    if buf is None or buf.size < size:
        buf = work[key] = np.empty(max(size, CHUNK_FACES * int(np.prod(shape[1:]))))
    return buf[:size].reshape(shape)


def _chain_level(level, layers, base, xy, off, lab, M, pat, out, tol, diam, work):
    W, b, act = layers[level]
    on, off_slope = activation_slopes(act)
    n_faces = len(off) - 1
    n = W.shape[0]
    if act.name == "identity":
        cxy, coff, clab = xy, off, lab
        cparent = np.arange(n_faces)
        cbits = np.packbits(np.ones((n_faces, n), np.uint8), axis=1)
    else:
        cxy, coff, clab, cparent, cbits, _, _ = split_faces(xy, off, lab, M, base[level], tol, diam)
    cpat = [p[cparent] for p in pat] + [cbits]
    first = np.searchsorted(cparent, np.arange(n_faces))
    ref = cbits[first]
    Wn, bn, _ = layers[level + 1]
    G = _next_maps(M, ref, on, off_slope, Wn, bn, work, level, work["factors"][level + 1])
    WT = np.ascontiguousarray(Wn.T)
    if ("sparse", level) not in work:
        work["sparse", level] = sparse_columns(Wn)
    sparse = work["sparse", level]
    n_children = len(cparent)
    log.debug("layer %d: %d faces -> %d", level, n_faces, n_children)
    chunk = int(np.clip(CHUNK_BYTES // (24 * Wn.shape[0]), 256, CHUNK_FACES))
    for c0 in range(0, n_children, chunk):
        c1 = min(c0 + chunk, n_children)
        Mc = _buffer(work, level, (c1 - c0, 3, Wn.shape[0]))
        groups = np.concatenate([[0], np.flatnonzero(np.diff(cparent[c0:c1])) + 1, [c1 - c0]])
        _, candidate, n_roundings = work["vanish"][level + 1]
        K.child_maps(G, M, WT, *sparse, cparent[:c1], cbits[:c1], ref, on, off_slope, c0, Mc,
                     groups.astype(np.int64), bn, work["vanish"][level][0], candidate, n_roundings)
        v0, v1 = coff[c0], coff[c1]
        sub_xy, sub_off, sub_lab = cxy[v0:v1], coff[c0:c1 + 1] - v0, clab[v0:v1]
        sub_pat = [p[c0:c1] for p in cpat]
        if level + 1 == len(layers) - 1:
            _emit(out, sub_xy, sub_off, sub_lab, sub_pat, Mc.copy())
        else:
            _chain_level(level + 1, layers, base, sub_xy, sub_off, sub_lab, Mc, sub_pat, out, tol, diam, work)


#: Largest fraction of nonzero weights for which child maps are updated by sparse columns.
SPARSE_DENSITY = 0.25


def sparse_columns(W):
    """W's columns as CSR (``ptr`` (n + 1,), ``idx``, ``val``: the rows of W^T) when at most
    SPARSE_DENSITY of W (n', n) is nonzero (conv layers unrolled), else three empty arrays."""
    if np.count_nonzero(W) > SPARSE_DENSITY * W.size:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    return csr_rows(W.T)


def _next_maps(M, bits, on, off, W, b, work=None, level=0, factors=None):
    """``W (s * M[f]) + b`` for each face, s = on/off slopes from ``bits`` (F, ceil(n / 8)) packed:
    (F, 3, n) -> (F, 3, n') by one GEMM (a compiled loop for narrow next layers), or through W's
    sparse ``factors`` (``layer_factors``) when given."""
    n_faces, _, n = M.shape
    if factors is not None:
        kind, *first = factors[0]
        G = (K.gated_csr_product(M, bits, on, off, *first) if kind == "csr"
             else K.gated_product(M, bits, on, off, first[0], np.zeros(first[0].shape[0])))
        for kind, *f in factors[1:]:
            G = K.csr_product(G, *f) if kind == "csr" else (G.reshape(-1, G.shape[2]) @ f[0].T).reshape(n_faces, 3, -1)
        G[:, 2, :] += b
        return G
    if W.shape[0] <= SMALL_PRODUCT:
        return K.gated_product(M, bits, on, off, np.ascontiguousarray(W), b)
    work = {} if work is None else work
    X = _buffer(work, ("X", level), (n_faces, 3, n))
    K.gate_into(M, bits, on, off, X)
    G = _buffer(work, ("G", level), (n_faces * 3, W.shape[0]))
    np.matmul(X.reshape(3 * n_faces, n), W.T, out=G)
    G = G.reshape(n_faces, 3, W.shape[0])
    G[:, 2, :] += b
    return G


def _emit(out, xy, off, lab, pat, maps):
    area = float(K.polygon_areas(xy, off).sum()) if out.limits is not None else None
    out.add(xy, off, lab, pat, maps, area)


def _assemble(out, plane, center, sizes, names, tol, method, pattern_bits=None) -> Partition:
    """The Partition of the regions in ``out`` (a RegionSink); ``pattern_bits`` per activation layer
    when they are not ``out``'s states (the graph path keeps arg-maxes there too)."""
    if pattern_bits is None:
        pattern_bits = tuple(rows.array() for rows in out.states[:len(sizes)])
    return Partition(plane=plane, center=center, xy=out.xy.array(), offsets=out.offsets(),
                     labels=out.lab.array(), pattern_bits=tuple(pattern_bits), maps=out.maps.array(),
                     units_per_layer=tuple(int(s) for s in sizes), layer_names=names, tolerance=tol,
                     method=method)


#: Faces whose per-face maps one step of the depth-first graph partition holds at a time (at most).
GRAPH_CHUNK_FACES = 512
#: Bytes of one such batch's maps of the widest node: wide nets (a ResNet on 32x32 images) get
#: smaller batches, since every level of the depth-first run holds one.
GRAPH_CHUNK_BYTES = 64 * 2**20


@dataclass
class _GraphRun:
    """What every level of the depth-first graph partition shares."""

    net: Net
    ops: list
    is_max: list
    bit_cols: list  # pattern columns per nonlinear node (0 for Max)
    base: list  # first edge label per nonlinear node
    frame: tuple  # x_c, d1, d2
    tol: float
    diam: float
    out: RegionSink
    vanish: _VanishingGraph  # NOTE [vanishing units] in _roundoff
    segments: list  # per nonlinear node, the affine segment before it (``_segments``) or None
    chunk: int = GRAPH_CHUNK_FACES


def _graph_partition(net, plane, tol, limits=None) -> Partition:
    center, xy, off, lab, x_c, d1, d2, diam = _frame(plane)
    ops = [net.nodes[i].op for i in net.nonlinear]
    is_max = [isinstance(op, Max) for op in ops]
    # pattern columns per activation node (identity: one per unit, always on); Max outputs are
    # numbered after all pattern columns in the edge labels
    bit_cols = [0 if m else net.nodes[i].size * (1 if op.name == "identity" else state_columns(op))
                for op, m, i in zip(ops, is_max, net.nonlinear, strict=True)]
    base, b_bits, b_max = [], 0, sum(bit_cols)
    for m, op, nb in zip(is_max, ops, bit_cols, strict=True):
        base.append(b_max if m else b_bits)
        b_max += op.size if m else 0
        b_bits += nb
    out = RegionSink(limits)
    chunk = int(np.clip(GRAPH_CHUNK_BYTES // (24 * max(node.size for node in net.nodes)), 16, GRAPH_CHUNK_FACES))
    run = _GraphRun(net, ops, is_max, bit_cols, base, (x_c, d1, d2), tol, diam, out,
                    _VanishingGraph(net, x_c, d1, d2), [segment(net, k) for k in range(len(ops))], chunk)
    _graph_level(run, 0, xy, off, lab, [])
    states = [rows.array() for rows in out.states] + [None] * (len(ops) - len(out.states))
    act_nodes = [i for i, m in zip(net.nonlinear, is_max, strict=True) if not m]
    max_nodes = [i for i, m in zip(net.nonlinear, is_max, strict=True) if m]
    part = _assemble(out, plane, center, [c for c, m in zip(bit_cols, is_max, strict=True) if not m],
                     tuple(net.nodes[i].name for i in act_nodes), tol, "graph",
                     [st for st, m in zip(states, is_max, strict=True) if not m])
    if not max_nodes:
        return part
    return dataclasses.replace(
        part, choices=tuple(st for st, m in zip(states, is_max, strict=True) if m),
        max_units_per_layer=tuple(net.nodes[i].size for i in max_nodes),
        max_layer_names=tuple(net.nodes[i].name for i in max_nodes))


def _unpacked(run, states):
    """States as gate_from_state wants them: pattern bits unpacked (on demand: ``[faces]`` of an
    entry unpacks those rows), arg-maxes as they are."""
    return [st if run.is_max[k] else _Unpacking(st, run.bit_cols[k]) for k, st in enumerate(states)]


class _Unpacking:
    """Packed pattern bits whose rows unpack when indexed (``[faces]`` or ``[:]``)."""

    def __init__(self, packed, count):
        self.packed, self.count = packed, count

    def __getitem__(self, rows):
        return np.unpackbits(self.packed[rows], axis=1, count=self.count)


def _segment_maps(run, k, unpacked, carried, rows):
    """Maps (F, 3, n) of nonlinear node k's input on F faces, and the values their children carry,
    through the affine segment ``run.segments[k]`` by sparse updates from face to face
    (``_segments``). ``carried`` and ``rows`` (F,) as in ``carried_rows``."""
    net, x_c, d1, d2 = run.net, *run.frame
    seg = run.segments[k]
    n_faces = len(rows)
    source = net.nodes[seg.source]
    below = carried.get(source.inputs[0]) if isinstance(source.op, Max) and not seg.extra else None
    if below is not None and below.shape[0] > 1:
        # a max pool's output straight from the parents' values: no copy of its (wider) input per face
        picked = gate_from_state(source.op, unpacked[k - 1][:], source.size)  # (F, n_out) input positions
        g = gather_picked(below.numpy(), np.ascontiguousarray(rows, dtype=np.int64),
                          np.ascontiguousarray(picked, dtype=np.int64))
        values = {}
    else:
        values = gated_values(net, [seg.source, *seg.extra], x_c, d1, d2, gates_from_states(net, unpacked),
                              carried_rows(carried, rows))
        g = np.ascontiguousarray(values[seg.source].expand(n_faces, -1, -1).numpy())

    def direct(faces):
        return gated_values(net, [seg.target], x_c, d1, d2, None, {seg.source: torch.from_numpy(g[faces])})[
            seg.target].numpy()

    full = plan_updates(g, seg.max_changes, REFRESH)
    M = np.empty((n_faces, 3, seg.n_out))
    M[full] = direct(full)
    update_from_previous(g, full, seg.ptr, seg.idx, seg.val, M)
    again = _may_vanish(run, k, seg.target, M)
    if again.any():  # the snapping rule bounds the round-off of a direct product, not of updates
        M[again] = direct(again)
    return M, {seg.target: torch.from_numpy(M), **{j: values[j] for j in seg.extra}}


def _may_vanish(run, k, node, M):
    """(F,) bool: faces where a unit (or a pair of max-window entries) of M may vanish: the
    candidates of NOTE [vanishing units] in ``_roundoff``."""
    if run.vanish.net is None:
        return np.zeros(len(M), bool)
    mu = np.ascontiguousarray(run.vanish._bound(node)[0])  # (3, n)
    op = run.ops[k]
    if run.is_max[k]:
        return tie_candidates(M, op.index.numpy(), mu, CANDIDATE_RATIO).any(axis=(0, 2))
    out = np.zeros(len(M), bool)
    for bp in op.breakpoints:
        shift, margin = np.array([0.0, 0.0, bp])[None, :, None], np.array([0.0, 0.0, abs(bp)])[:, None]
        out |= (np.abs(M - shift) <= CANDIDATE_RATIO * (mu + margin)[None]).all(axis=1).any(axis=1)
    return out


def _graph_level(run, k, xy, off, lab, states, carried=None, parent=None):
    """Split faces (xy, off, lab; ``states`` per earlier nonlinear node, pattern bits packed) at
    nonlinear node k and recurse, ``run.chunk`` faces at a time, so only one chunk's per-face maps
    per level are ever held. ``carried`` (node -> values, rows ``parent[face]``) are the values the
    faces share with their parents: each face's maps are computed on from there, not from the input."""
    net, x_c, d1, d2 = run.net, *run.frame
    n_faces = len(off) - 1
    carried = carried or {}
    parent = np.arange(n_faces) if parent is None else parent
    if k == len(run.ops):
        last = len(net.nodes) - 1
        for c0 in range(0, n_faces, run.chunk):
            c1 = min(c0 + run.chunk, n_faces)
            sub_states = _unpacked(run, [st[c0:c1] for st in states])
            out = gated_values(net, [last], x_c, d1, d2, gates_from_states(net, sub_states),
                               carried_rows(carried, parent[c0:c1]))[last]
            v0, v1 = off[c0], off[c1]
            _emit(run.out, xy[v0:v1], off[c0:c1 + 1] - v0, lab[v0:v1], [st[c0:c1] for st in states],
                  np.ascontiguousarray(out.expand(c1 - c0, -1, -1).numpy()))
        return
    op, node_index = run.ops[k], net.nonlinear[k]
    if not run.is_max[k] and op.name == "identity":
        ones = np.packbits(np.ones((n_faces, run.bit_cols[k]), np.uint8), axis=1)
        _graph_level(run, k + 1, xy, off, lab, states + [ones], carried, parent)
        return
    pre = net.nodes[node_index].inputs[0]
    keep = carried_nodes(net, node_index)
    for c0 in range(0, n_faces, run.chunk):
        c1 = min(c0 + run.chunk, n_faces)
        v0, v1 = off[c0], off[c1]
        sub_xy, sub_off, sub_lab = xy[v0:v1], off[c0:c1 + 1] - v0, lab[v0:v1]
        sub_states = [st[c0:c1] for st in states]
        unpacked = _unpacked(run, sub_states)
        if run.segments[k] is not None:  # sparse updates through the affine ops before this node
            M, values = _segment_maps(run, k, unpacked, carried, parent[c0:c1])
        else:
            values = gated_values(net, [pre, *keep], x_c, d1, d2, gates_from_states(net, unpacked),
                                  carried_rows(carried, parent[c0:c1]))
            M = np.ascontiguousarray(values[pre].expand(c1 - c0, -1, -1).numpy())
            values = {j: values[j] for j in keep}
        if run.is_max[k]:
            maps, windows = run.vanish.max_ties(pre, M, unpacked, op.index.numpy())  # equal entries tie exactly
            cxy, coff, clab, cparent, cstate = split_faces_max(sub_xy, sub_off, sub_lab, maps, windows,
                                                               run.base[k], run.tol, run.diam)
            del maps
        else:
            shifted = run.vanish.shifted(pre, M, unpacked, op.breakpoints)
            del M
            cxy, coff, clab, cparent, cbits, _, _ = split_faces(sub_xy, sub_off, sub_lab,
                                                                np.ascontiguousarray(shifted), run.base[k],
                                                                run.tol, run.diam)
            del shifted
            cstate = cbits
        M = None
        log.debug("nonlinear node %d: %d faces -> %d", k, c1 - c0, len(cparent))
        _graph_level(run, k + 1, cxy, coff, clab, [st[cparent] for st in sub_states] + [cstate], values, cparent)




