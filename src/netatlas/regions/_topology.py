"""Half-edge topology of a 2-D partition: its edges, the faces on either side of each, the edges around
each vertex and the layer whose unit made each edge; each vertex's activations and each edge's length
in any layer's feature space (``Partition.edges``, ``edge_faces``, ``vertex_edges``, ``edge_layer``,
``vertex_activations``, ``edge_length``).

# NOTE [T-junctions]
Faces are split independently (NOTE [the algorithm] in ``_partition``), each with its own copies of its
vertices (merged into ``Partition.vertices`` within ``VERTEX_MERGE_TOLERANCE``). In exact arithmetic a
vertex w that a cut made on a side of face A is a vertex of the face B across that side too: the cutting
unit is continuous, zero at w, so its zero line on B passes through w and enters B unless it runs along the
side, and then it is zero along the whole side on A as well, which does not cut A at w. Where the
tolerance decides differently on the two sides (a cut within it of a vertex, regions merged across tiles),
A's side may run a -> w -> b while B's runs b -> a: a T-junction. So every face-local edge is split at the
vertices lying inside it. Such a vertex is itself the end of a face-local edge *with the same label* (the
cut that made w split A's edge into two pieces that keep its label), so candidates are the ends of the
edges of that label only, found by a sort along the edge's main axis and tested by their distance to it
(``VERTEX_MERGE_TOLERANCE`` of the diagonal). Then every interior edge bounds two faces (in opposite
directions), every window edge one, and V - E + F = 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from netatlas._memory import check_memory

__all__ = ["HalfEdges", "edge_lengths", "edge_nodes", "half_edges", "resolve_layer", "vertex_values"]

#: Faces whose layer maps one step of ``vertex_values`` / ``edge_lengths`` holds at a time.
MAP_CHUNK_FACES = 2048


@dataclass(frozen=True, eq=False)
class HalfEdges:
    """The planar graph of a partition (see ``Partition.edges`` and NOTE [T-junctions]).

    Attributes
    ----------
    edges : ndarray of shape (E, 2) int64
        Vertex indices; ``edge_faces[e, 0]``'s counter-clockwise boundary runs ``edges[e, 0] -> edges[e, 1]``.
    edge_faces : ndarray of shape (E, 2) int64
        The face on the left of ``edges[e, 0] -> edges[e, 1]`` and the one on its right (-1: outside the window).
    edge_unit : ndarray of shape (E,) int64
        The pattern column (then arg-max column) whose zero line the edge lies on, as ``Neighbors.unit``; for
        an edge of the window, -1 - its side (the window's sides counter-clockwise from 0; a rectangle's
        -1 bottom, -2 right, -3 top, -4 left).
    face_offsets : ndarray of shape (F + 1,) int64
    face_edge_ids : ndarray of shape (sum of face sizes,) int64
        Face f's edges counter-clockwise: ``face_edge_ids[face_offsets[f]:face_offsets[f + 1]]``.
    vertex_offsets : ndarray of shape (V + 1,) int64
    vertex_edge_ids : ndarray of shape (2 E,) int64
        Vertex v's edges counter-clockwise by angle: ``vertex_edge_ids[vertex_offsets[v]:vertex_offsets[v + 1]]``.
    """

    edges: np.ndarray
    edge_faces: np.ndarray
    edge_unit: np.ndarray
    face_offsets: np.ndarray
    face_edge_ids: np.ndarray
    vertex_offsets: np.ndarray
    vertex_edge_ids: np.ndarray


def half_edges(vertices, index, offsets, labels, eps) -> HalfEdges:
    """The planar graph of faces given face-locally: ``index`` (T,) the distinct vertex (row of ``vertices``
    (V, 2)) of each face-local vertex, ``offsets`` (F + 1,) the faces' runs of them (counter-clockwise),
    ``labels`` (T,) the label of the edge starting at each; ``eps`` the distance within which a vertex lies on
    an edge (NOTE [T-junctions]).

    >>> uv = np.array([[0, 0], [1, 0], [1, 1], [0, 1], [.5, 0], [.5, 1], [1, .5], [.5, .5]])
    >>> # the unit square cut at u = 1/2 (unit 0), its right half at v = 1/2 (unit 1): vertex 7 is a T-junction
    >>> g = half_edges(uv, np.array([0, 4, 5, 3,  4, 1, 6, 7,  7, 6, 2, 5]), np.array([0, 4, 8, 12]),
    ...                np.array([-1, 0, -3, -4,  -1, -2, 1, 0,  1, -2, -3, 0]), 1e-9)
    >>> len(uv) - len(g.edges) + 3   # V - E + F of a window
    1
    >>> g.edges[g.edge_unit == 0].tolist(), g.edge_faces[g.edge_unit == 0].tolist()
    ([[4, 7], [7, 5]], [[0, 1], [0, 2]])
    """
    n_vertices, n_faces = len(vertices), len(offsets) - 1
    nxt = np.arange(1, len(index) + 1)
    nxt[offsets[1:] - 1] = offsets[:-1]
    face = np.repeat(np.arange(n_faces), np.diff(offsets))
    src, dst, lab = index, index[nxt], np.asarray(labels, np.int64)
    keep = src != dst  # an edge shorter than the merge tolerance collapsed into one vertex
    src, dst, lab, face = src[keep], dst[keep], lab[keep], face[keep]
    # split every face-local edge at the vertices lying inside it (NOTE [T-junctions])
    at_edge, at_vertex, at_t = _t_junctions(vertices, src, dst, lab, eps)
    n_half = len(src)
    owner = np.concatenate([np.arange(n_half), at_edge])
    order = np.lexsort((np.concatenate([np.zeros(n_half), at_t]), owner))
    owner, start = owner[order], np.concatenate([src, at_vertex])[order]
    last = np.append(owner[1:] != owner[:-1], True)
    end = np.where(last, dst[owner], np.roll(start, -1))
    face, lab = face[owner], lab[owner]
    # one edge per unordered pair of vertices; its first half-edge sets its direction
    key = np.minimum(start, end).astype(np.int64) * n_vertices + np.maximum(start, end)
    _, first, edge_of = np.unique(key, return_index=True, return_inverse=True)
    edge_of = edge_of.ravel()
    n_edges = len(first)
    count = np.bincount(edge_of, minlength=n_edges)
    assert count.max(initial=0) <= 2, "half_edges: an edge bounds more than two faces"
    other = np.full(n_edges, -1, np.int64)
    second = np.flatnonzero(np.arange(len(edge_of)) != first[edge_of])
    other[edge_of[second]] = face[second]
    assert np.all(start[second] == end[first[edge_of[second]]]), "half_edges: two faces run one edge the same way"
    edges = np.stack([start[first], end[first]], axis=1).astype(np.int64)
    edge_faces = np.stack([face[first], other], axis=1).astype(np.int64)
    face_offsets = np.concatenate([[0], np.cumsum(np.bincount(face, minlength=n_faces))]).astype(np.int64)
    # the edges around each vertex, counter-clockwise by the angle of the edge leaving it
    ends = np.concatenate([edges[:, 0], edges[:, 1]])
    towards = vertices[np.concatenate([edges[:, 1], edges[:, 0]])] - vertices[ends]
    angle = np.arctan2(towards[:, 1], towards[:, 0])
    around = np.lexsort((angle, ends))
    vertex_offsets = np.concatenate([[0], np.cumsum(np.bincount(ends, minlength=n_vertices))]).astype(np.int64)
    return HalfEdges(edges, edge_faces, lab[first].astype(np.int64), face_offsets, edge_of.astype(np.int64),
                     vertex_offsets, (around % max(n_edges, 1)).astype(np.int64))


def _t_junctions(vertices, src, dst, lab, eps):
    """The vertices strictly inside each edge src -> dst: (edge, vertex, t) with t in (0, 1) the position
    along it. Candidates per label are the ends of that label's edges (NOTE [T-junctions]), taken from a sort
    along the edge's main axis (u or v, whichever it spans more of) with an ``eps`` margin."""
    hits_e, hits_v, hits_t = [], [], []
    order = np.argsort(lab, kind="stable")
    cuts = np.flatnonzero(np.diff(lab[order])) + 1
    for group in np.split(order, cuts):
        if len(group) < 2:
            continue
        ends = np.unique(np.concatenate([src[group], dst[group]]))
        pa, pb = vertices[src[group]], vertices[dst[group]]
        d = pb - pa
        axis = (np.abs(d[:, 1]) > np.abs(d[:, 0])).astype(np.int64)
        for ax in (0, 1):
            rows = np.flatnonzero(axis == ax)
            if not len(rows):
                continue
            by = np.argsort(vertices[ends, ax], kind="stable")
            coords = vertices[ends[by], ax]
            lo = np.searchsorted(coords, np.minimum(pa[rows, ax], pb[rows, ax]) - eps, "left")
            hi = np.searchsorted(coords, np.maximum(pa[rows, ax], pb[rows, ax]) + eps, "right")
            n = hi - lo
            if not n.sum():
                continue
            e = np.repeat(rows, n)
            w = ends[by[np.repeat(lo, n) + np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)]]
            g = group[e]
            rel, de = vertices[w] - pa[e], d[e]
            length = np.hypot(de[:, 0], de[:, 1])
            along = (rel * de).sum(1) / length  # distance from the start along the edge
            off_line = np.abs(rel[:, 0] * de[:, 1] - rel[:, 1] * de[:, 0]) / length
            inside = (off_line <= eps) & (along > eps) & (along < length - eps) & (w != src[g]) & (w != dst[g])
            hits_e.append(g[inside])
            hits_v.append(w[inside])
            hits_t.append(along[inside] / length[inside])
    if not hits_e:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    return np.concatenate(hits_e), np.concatenate(hits_v), np.concatenate(hits_t)


def edge_nodes(part, units) -> np.ndarray:
    """The node (index into ``part.net.nodes``) of each pattern or arg-max column in ``units``, -1 for
    negative entries (the window's sides)."""
    from netatlas.nets import Max

    net = part.net
    act = list(net.activations)
    maxes = [i for i in net.nonlinear if isinstance(net.nodes[i].op, Max)]
    if len(act) != len(part.units_per_layer) or len(maxes) != len(part.max_units_per_layer):
        raise ValueError("Partition: its pattern columns do not match its net's activation and max nodes")
    column_node = np.concatenate([np.repeat(np.array(act, np.int64), part.units_per_layer),
                                  np.repeat(np.array(maxes, np.int64), part.max_units_per_layer)]).astype(np.int64)
    units = np.asarray(units, np.int64)
    return np.where(units >= 0, column_node[np.maximum(units, 0)] if len(column_node) else -1, -1)


def resolve_layer(part, layer, where) -> int:
    """The node index of ``layer`` in the partition's net: "output" or what :meth:`Net.layer` takes."""
    if part.net is None:
        raise ValueError(f"Partition.{where}: this partition does not hold its network")
    net = part.net
    if isinstance(layer, str) and layer == "output":
        return len(net.nodes) - 1
    try:
        return net.layer(layer)
    except ValueError as exc:
        raise ValueError(f"Partition.{where}: {exc} (a partition made with upto= holds the layers up to that one "
                         "only: later ones are not affine on its regions)") from None


def _by_face(part, node, faces, evaluate, out, where):
    """``out[rows] = evaluate(maps, rows)`` with ``maps`` (R, 3, n) the layer maps of ``faces[rows]``, a few
    thousand faces at a time (the maps of the whole partition may not fit in memory)."""
    order = np.argsort(faces, kind="stable")
    sorted_faces = faces[order]
    distinct, first = np.unique(sorted_faces, return_index=True)
    first = np.append(first, len(order))
    for s in range(0, len(distinct), MAP_CHUNK_FACES):
        chunk = distinct[s:s + MAP_CHUNK_FACES]
        maps = part.layer_maps(node, regions=chunk)
        rows = order[first[s]:first[min(s + MAP_CHUNK_FACES, len(distinct))]]
        out[rows] = evaluate(maps[np.searchsorted(chunk, faces[rows])], rows)
    return out


def vertex_values(part, node) -> np.ndarray:
    """The value (V, n) of node ``node`` at every vertex, from the affine map of a face the vertex is on."""
    vertices = part.vertices
    index = part._dedupe()[1]
    _, first = np.unique(index, return_index=True)
    faces = np.searchsorted(part.offsets, first, "right") - 1
    n = part.net.nodes[node].size
    check_memory(8 * len(vertices) * n + 24 * MAP_CHUNK_FACES * n, f"Partition.vertex_activations: "
                 f"{len(vertices):,} vertices x {n:,} units")
    rel = vertices - part.center

    def evaluate(m, rows):
        return rel[rows, :1] * m[:, 0] + rel[rows, 1:] * m[:, 1] + m[:, 2]

    return _by_face(part, node, faces, evaluate, np.empty((len(vertices), n)), "vertex_activations")


def edge_lengths(part, node) -> np.ndarray:
    """The length (E,) of the image of every edge under node ``node``'s map, affine on the edge's face."""
    graph = part._half_edges()
    vertices = part.vertices
    step = vertices[graph.edges[:, 1]] - vertices[graph.edges[:, 0]]
    n = part.net.nodes[node].size
    check_memory(24 * MAP_CHUNK_FACES * n * 2, f"Partition.edge_length: maps of {n:,} units")

    def evaluate(m, rows):
        image = step[rows, :1] * m[:, 0] + step[rows, 1:] * m[:, 1]  # J (p_b - p_a): the linear part only
        return np.sqrt(np.einsum("en,en->e", image, image))

    return _by_face(part, node, graph.edge_faces[:, 0], evaluate, np.empty(len(step)), "edge_length")
