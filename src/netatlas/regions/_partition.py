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
in chunks, so memory stays bounded however many regions there are. Residual additions of such layers
stay on the chain path, each face carrying the maps of the values that skip ahead (``_skipchain``,
NOTE [carried skips]). Any other graph (max pooling, hardtanh, concatenation) gets its maps from a
gated forward pass (``_affine.gated_maps``).

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

import math
from dataclasses import dataclass, field

import numpy as np

from netatlas._checks import require_finite
from netatlas._memory import check_memory
from netatlas._notebook import PartitionDisplay
from netatlas.nets import Max
from netatlas.regions import _kernels as K
from netatlas.regions._graphmaps import _maps_chunked
from netatlas.slices import Plane

__all__ = ["BOUNDARY_TOLERANCE", "CUT_BY_BOUNDARY", "VERTEX_MERGE_TOLERANCE", "Neighbors", "Partition",
           "assemble_partition", "plane_frame"]

#: A vertex within this distance (relative to the slice's diagonal) of a unit's zero line is on it.
BOUNDARY_TOLERANCE = 1e-10
#: Face-local copies of one vertex closer than this (relative to the diagonal) are the same vertex.
VERTEX_MERGE_TOLERANCE = 1e-9
#: What :meth:`Partition.predicted_class` reports for a region the decision boundary cuts: no single class
#: is predicted there (:meth:`Partition.region_classes` says which classes are).
CUT_BY_BOUNDARY = -1


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
    edges, edge_faces, edge_unit, edge_layer : ndarray of shape (E, 2), (E, 2), (E,), (E,)
        The planar graph of the regions (V - E + F = 1): each edge's two vertices, the regions on its left and
        right (-1 outside the window), its unit and the node of that unit's layer (-1 for the window's sides);
        ``vertex_edges`` and ``face_edges`` list the edges around each vertex and region. With
        :meth:`vertex_activations` and :meth:`edge_length`, any layer's values at the vertices and the edges'
        lengths in its feature space.
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
        _, _, _, _, x_c, d1, d2, _ = plane_frame(self.plane)
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

    # -- topology: the planar graph of the regions (``_topology``, NOTE [T-junctions]) -------------
    def _half_edges(self):
        if "half_edges" not in self._cache:
            from netatlas.regions._topology import half_edges

            vertices, index = self._dedupe()
            self._cache["half_edges"] = half_edges(vertices, index, self.offsets, self.labels,
                                                   VERTEX_MERGE_TOLERANCE * self.diameter)
        return self._cache["half_edges"]

    @property
    def edges(self) -> np.ndarray:
        """Edges (E, 2) of the planar graph of the regions, as vertex indices into ``vertices``: the boundary
        pieces between consecutive vertices (a face's side is split where a neighbour has a vertex on it).
        ``edges[e, 0] -> edges[e, 1]`` runs counter-clockwise around the face ``edge_faces[e, 0]``.

        >>> import netatlas
        >>> part = netatlas.regions.partition(netatlas.nets.mlp([2, 8, 8, 1], seed=0))
        >>> len(part.vertices) - len(part.edges) + part.num_regions   # V - E + F of a window
        1
        """
        return self._half_edges().edges

    @property
    def edge_faces(self) -> np.ndarray:
        """The two regions (E, 2) on either side of each edge: left and right of ``edges[e, 0] -> edges[e, 1]``;
        -1 on the right of an edge of the window (the outside).

        >>> import netatlas
        >>> part = netatlas.regions.partition(netatlas.nets.mlp([2, 8, 1], seed=0))
        >>> faces = part.edge_faces
        >>> bool((faces[:, 0] >= 0).all()), int((faces[:, 1] == -1).sum()) == int((part.edge_layer == -1).sum())
        (True, True)
        """
        return self._half_edges().edge_faces

    @property
    def edge_unit(self) -> np.ndarray:
        """The unit (E,) whose zero line each edge lies on: its pattern column (then arg-max column, as
        ``neighbors().unit``); for an edge of the window, -1 - the window's side (sides counter-clockwise from
        0; the rectangle's -1 bottom, -2 right, -3 top, -4 left)."""
        return self._half_edges().edge_unit

    @property
    def edge_layer(self) -> np.ndarray:
        """The layer (E,) whose unit made each edge: the node index in ``net.nodes`` (what
        :meth:`netatlas.nets.Net.layer` returns) of its activation or max node; -1 for the window's edges.
        Across an edge the edge's own unit (``edge_unit``) changes; generically no unit of another layer does
        (one that is zero all along the edge may: it vanishes on a whole region on one side, NOTE [vanishing
        units] in ``_roundoff``, or its zero line is the edge's).

        >>> import netatlas
        >>> net = netatlas.nets.from_torch(netatlas.nets.mlp([2, 8, 8, 1], seed=0))
        >>> sorted(set(netatlas.regions.partition(net).edge_layer.tolist()))   # window, ReLU nodes 2 and 4
        [-1, 2, 4]
        """
        if "edge_layer" not in self._cache:
            from netatlas.regions._topology import edge_nodes

            if self.net is None:
                raise ValueError("Partition.edge_layer: this partition does not hold its network")
            self._cache["edge_layer"] = edge_nodes(self, self.edge_unit)
        return self._cache["edge_layer"]

    @property
    def vertex_edges(self) -> list:
        """Per vertex, the edges (indices into ``edges``) meeting it, counter-clockwise by direction (CSR
        arrays: ``regions._topology.HalfEdges.vertex_offsets`` / ``vertex_edge_ids``)."""
        graph = self._half_edges()
        return np.split(graph.vertex_edge_ids, graph.vertex_offsets[1:-1])

    @property
    def face_edges(self) -> list:
        """Per region, its edges (indices into ``edges``) counter-clockwise; they include the pieces of its
        sides that a neighbour's vertices split (so there may be more edges than ``faces[i]`` has vertices)."""
        graph = self._half_edges()
        return np.split(graph.face_edge_ids, graph.face_offsets[1:-1])

    def euler_characteristic(self) -> int:
        """V - E + F of the planar graph (1 for any window: the regions tile a convex polygon)."""
        return len(self.vertices) - len(self.edges) + self.num_regions

    def vertex_activations(self, layer="output") -> np.ndarray:
        """The value of a layer at every vertex: shape (V, n_units of that layer), rows as ``vertices``.

        ``layer``: "output" or anything :meth:`netatlas.nets.Net.layer` takes (a module path, a node index, or
        "#index"); an activation node gives post-activation values, the affine node before it the
        pre-activations. Exact in float64: each vertex's value is the affine map of the layer on a region the
        vertex belongs to (``layer_maps``), evaluated at the vertex (the layer is continuous, so every region
        at the vertex gives the same value up to round-off). For a partition ``upto`` a layer, layers up to
        that one.

        >>> import netatlas, numpy as np
        >>> net = netatlas.nets.from_torch(netatlas.nets.mlp([2, 8, 8, 1], seed=0))
        >>> part = netatlas.regions.partition(net)
        >>> z = part.vertex_activations("2")   # module "2": the second Linear, the pre-activations of ReLU 4
        >>> z.shape == (len(part.vertices), 8)
        True
        >>> on = part.edge_layer == 4           # every edge of layer 4 lies on a zero of one of its units
        >>> units = part.edge_unit[on] - 8
        >>> bool(np.abs(z[part.edges[on, 0], units]).max() < 1e-12)
        True
        """
        from netatlas.regions._topology import resolve_layer, vertex_values

        node = resolve_layer(self, layer, "vertex_activations")
        key = ("vertex_activations", node)
        if key not in self._cache:
            self._cache[key] = vertex_values(self, node)
        return self._cache[key]

    def edge_length(self, layer="output") -> np.ndarray:
        """The length (E,) of each edge in a layer's feature space: ``|J (p_b - p_a)|``, J (n, 2) the linear
        part of the layer's affine map on the edge (``layer_maps`` of ``edge_faces[e, 0]``; the edge lies in
        the closure of that region, where the layer is affine), so the image of the edge is the segment between
        the layer's values at its ends. ``layer`` as in :meth:`vertex_activations`.

        >>> import netatlas, numpy as np
        >>> part = netatlas.regions.partition(netatlas.nets.mlp([2, 8, 8, 1], seed=0))
        >>> length = part.edge_length("1")     # in the first ReLU's feature space
        >>> a = part.vertex_activations("1")
        >>> bool(np.allclose(length, np.linalg.norm(a[part.edges[:, 1]] - a[part.edges[:, 0]], axis=1)))
        True
        """
        from netatlas.regions._topology import edge_lengths, resolve_layer

        node = resolve_layer(self, layer, "edge_length")
        key = ("edge_length", node)
        if key not in self._cache:
            self._cache[key] = edge_lengths(self, node)
        return self._cache[key]

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

    def class_pieces(self):
        """The regions split exactly along the decision boundary, each piece in one class; see
        :func:`netatlas.regions._pieces.class_pieces`."""
        from netatlas.regions._pieces import class_pieces

        if "class_pieces" not in self._cache:
            self._cache["class_pieces"] = class_pieces(self)
        return self._cache["class_pieces"]

    def region_classes(self) -> np.ndarray:
        """Every class predicted somewhere in each region: ``present`` of shape (F, n_classes) bool,
        ``present[i, k]`` when class k wins on a piece of region i of positive area (n_classes = n_outputs,
        or 2 for one output: class 1 where it is > 0). Exact: read from :meth:`class_pieces`, the regions
        split along the decision boundary.

        >>> import netatlas
        >>> part = netatlas.regions.partition(netatlas.nets.mlp([2, 6, 3], seed=1))
        >>> present = part.region_classes()
        >>> present.shape, int((present.sum(1) > 1).sum())  # 5 of the 16 regions hold two classes or more
        ((16, 3), 5)
        """
        if "region_classes" not in self._cache:
            pieces = self.class_pieces()
            present = np.zeros((self.num_regions, max(self.n_outputs, 2)), bool)
            present[pieces.region, pieces.classes] = True
            self._cache["region_classes"] = present
        return self._cache["region_classes"]

    def predicted_class(self) -> np.ndarray:
        """The class (F,) predicted everywhere in each region (arg-max, or output > 0 for one output), or
        ``CUT_BY_BOUNDARY`` (-1) for a region the decision boundary cuts: several classes win in it, see
        :meth:`region_classes` (which) and :meth:`class_pieces` (where). Exact, not the class at one point.

        >>> import netatlas
        >>> part = netatlas.regions.partition(netatlas.nets.mlp([2, 6, 3], seed=1))
        >>> cls = part.predicted_class()
        >>> sorted(set(cls.tolist()))  # -1: the regions the boundary cuts
        [-1, 0, 2]
        """
        present = self.region_classes()
        return np.where(present.sum(1) == 1, present.argmax(1), CUT_BY_BOUNDARY).astype(np.int64)

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



def plane_frame(plane: Plane):
    """The window as the one face the partition starts from: its centre (the bounds' centre), the face
    (xy centred, counter-clockwise; offsets; edge labels -1, -2, ... one per side of the window: for the
    rectangle -1 bottom, -2 right, -3 top, -4 left), the slice's frame (x_c, d1, d2) and its diameter."""
    umin, umax, vmin, vmax = plane.bounds
    center = np.array([(umin + umax) / 2, (vmin + vmax) / 2])
    hu, hv = (umax - umin) / 2, (vmax - vmin) / 2
    if getattr(plane, "outline", None) is not None:  # a convex window (Plane.polygon, Plane.disc)
        xy = np.ascontiguousarray(plane.outline - center)
        off = np.array([0, len(xy)], np.int64)
        lab = -1 - np.arange(len(xy), dtype=np.int64)
    else:
        xy = np.array([[-hu, -hv], [hu, -hv], [hu, hv], [-hu, hv]])
        off = np.array([0, 4], np.int64)
        lab = np.array([-1, -2, -3, -4], np.int64)
    d1, d2 = plane.d1.ravel(), plane.d2.ravel()
    x_c = plane.origin.ravel() + center[0] * d1 + center[1] * d2
    diam = math.hypot(umax - umin, vmax - vmin)
    return center, xy, off, lab, x_c, d1, d2, diam



def assemble_partition(out, plane, center, sizes, names, tol, method, pattern_bits=None) -> Partition:
    """The Partition of the regions in ``out`` (a RegionSink); ``pattern_bits`` per activation layer
    when they are not ``out``'s states (the graph path keeps arg-maxes there too)."""
    if pattern_bits is None:
        pattern_bits = tuple(rows.array() for rows in out.states[:len(sizes)])
    return Partition(plane=plane, center=center, xy=out.xy.array(), offsets=out.offsets(),
                     labels=out.lab.array(), pattern_bits=tuple(pattern_bits), maps=out.maps.array(),
                     units_per_layer=tuple(int(s) for s in sizes), layer_names=names, tolerance=tol,
                     method=method)
