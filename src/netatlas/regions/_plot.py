"""Plots of partitions and line pieces (matplotlib is imported inside the functions only).

Regions are one ``PolyCollection`` and boundaries one ``LineCollection`` each, so 10^5+ regions
draw in seconds; with ``rasterized=True`` (the default above 20,000 regions) the regions become
one image inside vector output (SVG/PDF), while boundaries stay vectors.
"""

from __future__ import annotations

import numpy as np

__all__ = ["plot_partition", "plot_line_pieces", "region_colors"]

COLOR_BY = ("pattern", "class", "output", "area", "volume", "none")
_RASTER_ABOVE = 20_000


def _pattern_hue(partition, seed, batch=4096):
    """A stable pseudo-random hue per region: the fractional part of a random projection of its
    packed pattern bytes and arg-maxes (in batches: never the unpacked patterns of every region)."""
    rng = np.random.default_rng(seed)
    columns = [*partition.pattern_bits, *partition.choices]
    weights = [rng.random(c.shape[1]) for c in columns]
    h = np.zeros(partition.num_regions)
    for s in range(0, partition.num_regions, batch):
        code = sum((c[s:s + batch].astype(np.float64) @ w for c, w in zip(columns, weights, strict=True)),
                   np.zeros(len(h[s:s + batch])))
        h[s:s + batch] = (code * 7.31) % 1.0
    return h


def region_colors(partition, color_by: str = "pattern", *, output: int = 0, cmap=None, seed: int = 0,
                  layer="output"):
    """RGBA colours (F, 4) of the regions.

    ``pattern``: a pastel colour hashed from the activation pattern (neighbours differ);
    ``class``: the class predicted in the whole region (tab10, light), light grey for a region the decision
    boundary cuts (``Partition.predicted_class``; ``plot_partition`` paints class per pixel instead);
    ``output``: the value of output ``output`` at the centroid (viridis);
    ``area``: log10 of the area (magma); ``volume``: log10 of the exact volume element of
    ``layer`` on the region (``Partition.volume_element``, cividis); ``none``: white.
    """
    import matplotlib as mpl
    from matplotlib.colors import hsv_to_rgb

    F = partition.num_regions
    if color_by == "pattern":
        h = _pattern_hue(partition, seed)
        s = 0.35 + 0.25 * ((h * 13.7) % 1.0)
        v = 0.85 + 0.15 * ((h * 29.3) % 1.0)
        rgb = hsv_to_rgb(np.stack([h, s, v], 1))
        return np.concatenate([rgb, np.ones((F, 1))], 1)
    if color_by == "class":
        cls = partition.predicted_class()
        base = mpl.colormaps[cmap or "tab10"](np.maximum(cls, 0) % 10)
        rgba = 0.55 * base + 0.45 * np.array([1.0, 1.0, 1.0, 1.0])
        rgba[cls < 0] = (0.8, 0.8, 0.8, 1.0)  # cut by the decision boundary: no one class (plot_partition paints it)
        return rgba
    if color_by == "output":
        val = partition.outputs(partition.centroids(), np.arange(F))[:, output]
        lo, hi = np.percentile(val, [1, 99]) if F > 1 else (val.min() - 1, val.max() + 1)
        hi = hi if hi > lo else lo + 1
        return mpl.colormaps[cmap or "viridis"](np.clip((val - lo) / (hi - lo), 0, 1))
    if color_by == "area":
        a = np.log10(np.maximum(partition.areas, 1e-300))
        lo, hi = a.min(), a.max()
        return mpl.colormaps[cmap or "magma"]((a - lo) / (hi - lo if hi > lo else 1.0))
    if color_by == "volume":
        v = partition.volume_element(layer, log=True) / np.log(10)
        finite = np.isfinite(v)
        lo, hi = (v[finite].min(), v[finite].max()) if finite.any() else (0.0, 1.0)
        rgba = mpl.colormaps[cmap or "cividis"](np.clip((v - lo) / (hi - lo if hi > lo else 1.0), 0, 1))
        rgba[~finite] = (0.6, 0.6, 0.6, 1.0)  # the layer collapses these regions
        return rgba
    if color_by == "none":
        return np.ones((F, 4))
    raise ValueError(f"plot_partition: color_by must be one of {COLOR_BY}; got {color_by!r}")


def plot_partition(partition, ax=None, *, color_by: str = "pattern", output: int = 0, boundary: bool = True,
                   level_sets=(), edges: bool | None = None, rasterized: bool | None = None,
                   anchors: bool = True, title: str | None = None, cmap=None, raster_pixels: int = 500,
                   layer="output"):
    """Draw the regions of a :class:`Partition`, with the decision boundary and level sets on top.

    Parameters
    ----------
    partition : Partition
    ax : matplotlib Axes, optional (a new figure when omitted)
    color_by : {"pattern", "class", "output", "area", "volume", "none"}
        "volume": log10 of the exact volume element of ``layer`` per region.
    layer : "output", node index or node name
        The layer of ``color_by="volume"`` (see ``Partition.volume_element``).
    output : int
        The output used by ``color_by="output"`` and by ``level_sets``.
    boundary : bool
        Draw the exact decision boundary (black).
    level_sets : sequence of float
        Levels of output ``output`` to draw (dashed), e.g. logits of p = 0.1 and 0.9.
    edges : bool, optional
        Draw region edges (default: yes below 200,000 regions, thinner as there are more).
    rasterized : bool, optional
        Rasterize the region fill in vector output (default: above 20,000 regions).
    raster_pixels : int
        Pixels per side of the class/output image (these vary inside a region, so they are painted
        per pixel from the regions' exact affine maps).

    Returns
    -------
    matplotlib Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import netatlas
    >>> part = netatlas.regions.partition(netatlas.nets.mlp([2, 8, 8, 3], seed=0))
    >>> ax = netatlas.regions.plot_partition(part, color_by="class")
    >>> len(ax.collections[0].get_paths())
    22
    """
    import matplotlib.pyplot as plt
    from matplotlib.collections import LineCollection, PolyCollection

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 6))
    F = partition.num_regions
    if edges is None:
        edges = F < 200_000
    if rasterized is None:
        rasterized = F > _RASTER_ABOVE
    width = 0.5 if F < 2_000 else 0.25 if F < 20_000 else 0.1
    polys = np.split(partition.xy + partition.center, partition.offsets[1:-1])
    edge_color = (0.25, 0.25, 0.25, 0.45 if color_by in ("class", "output") else 0.6)
    if color_by in ("class", "output"):
        # class and output vary inside a region: paint them per pixel from the exact affine maps
        painted = _paint_pixels(partition, ax, color_by, output, cmap, raster_pixels)
        facecolors = "none"
    else:
        facecolors = region_colors(partition, color_by, output=output, cmap=cmap, layer=layer)
    coll = PolyCollection(polys, facecolors=facecolors, edgecolors=edge_color if edges else "face",
                          linewidths=width if edges else 0.0, rasterized=rasterized, antialiased=F < 50_000)
    ax.add_collection(coll)
    if boundary and partition.n_outputs >= 1:
        db = partition.decision_boundary()
        if len(db):
            ax.add_collection(LineCollection(db.segments, colors="black", linewidths=1.6, zorder=3,
                                             label="decision boundary"))
    for k, value in enumerate(level_sets):
        ls = partition.level_set(value, output=output)
        if len(ls):
            ax.add_collection(LineCollection(ls.segments, colors=plt.cm.coolwarm(k / max(len(level_sets) - 1, 1)),
                                             linewidths=1.1, linestyles="--", zorder=3,
                                             label=f"output {output} = {value:g}"))
    if partition.plane.outline is not None:  # a disc or polygon window: its outline (a rectangle is the axes)
        ring = np.vstack([partition.plane.outline, partition.plane.outline[:1]])
        ax.plot(ring[:, 0], ring[:, 1], color="0.15", linewidth=1.0, zorder=3, label="window")
    if anchors and partition.plane.anchors is not None:
        a = partition.plane.anchors
        ax.scatter(a[:, 0], a[:, 1], s=40, c="white", edgecolors="black", zorder=4)
        for i, (u, v) in enumerate(a):
            ax.annotate("ABC"[i] if i < 3 else str(i), (u, v), textcoords="offset points", xytext=(5, 5),
                        fontsize=9, zorder=5)
    if color_by == "class":  # a key: which colour is which predicted class
        from matplotlib.lines import Line2D
        from matplotlib.patches import Patch

        handles = [Patch(facecolor=colour, edgecolor="0.4", label=f"class {c}") for c, colour in painted]
        if boundary and partition.n_outputs >= 1 and len(partition.decision_boundary()):
            handles.append(Line2D([], [], color="black", linewidth=1.6, label="decision boundary"))
        ax.legend(handles=handles, title="predicted class", loc="upper right", fontsize=7, title_fontsize=7,
                  framealpha=0.85)
    umin, umax, vmin, vmax = partition.plane.bounds
    ax.set_xlim(umin, umax)
    ax.set_ylim(vmin, vmax)
    ax.set_aspect("equal")
    ax.set_xlabel("u")
    ax.set_ylabel("v")
    ax.set_title(title if title is not None else f"{F:,} linear regions")
    return ax


def _paint_pixels(partition, ax, color_by, output, cmap, n):
    import matplotlib as mpl

    umin, umax, vmin, vmax = partition.plane.bounds
    us, vs = partition.plane.grid(n)
    pts = np.stack([us.ravel(), vs.ravel()], 1)
    # a disc or polygon window: pixels of its bounding box outside it stay transparent
    where = partition.locate(pts) if partition.plane.outline is not None else None
    inside = slice(None) if where is None else where >= 0
    y = partition.outputs(pts[inside], None if where is None else where[inside])
    rgba = np.zeros((len(pts), 4))
    if color_by == "class":
        cls = (y[:, 0] > 0).astype(int) if partition.n_outputs == 1 else y.argmax(1)
        rgba[inside] = 0.55 * mpl.colormaps[cmap or "tab10"](cls % 10) + 0.45
    else:
        val = y[:, output]
        lo, hi = np.percentile(val, [1, 99]) if len(val) else (0.0, 1.0)
        hi = hi if hi > lo else lo + 1
        rgba[inside] = mpl.colormaps[cmap or "viridis"](np.clip((val - lo) / (hi - lo), 0, 1))
    ax.imshow(rgba.reshape(*us.shape, 4), origin="lower", extent=(umin, umax, vmin, vmax),
              interpolation="nearest", zorder=0)
    if color_by != "class":
        return []
    # (class, colour) of each class painted, for the key
    return [(int(c), tuple(0.55 * np.array(mpl.colormaps[cmap or "tab10"](c % 10)) + 0.45)) for c in np.unique(cls)]


def plot_line_pieces(pieces, ax=None, *, output: int = 0, n_points: int = 0, title: str | None = None):
    """Plot output ``output`` along the line (exact: the piecewise-linear graph through its
    breakpoints), with the breakpoints as thin vertical lines. Returns the axes.

    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import netatlas
    >>> pieces = netatlas.regions.along_line(netatlas.nets.mlp([2, 8, 1], seed=0), [-1, -1], [1, 1])
    >>> ax = netatlas.regions.plot_line_pieces(pieces)
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3))
    t = pieces.edges
    # each piece is affine: its graph is the segment between its two ends
    left = pieces.output_slope[:, output] * t[:-1] + pieces.output_offset[:, output]
    right = pieces.output_slope[:, output] * t[1:] + pieces.output_offset[:, output]
    xs = np.stack([t[:-1], t[1:]], 1).ravel()
    ys = np.stack([left, right], 1).ravel()
    ax.plot(xs, ys, color="C0", lw=1.4)
    if len(pieces.breakpoints) <= 2000:
        for b in pieces.breakpoints:
            ax.axvline(b, color="0.6", lw=0.4, zorder=0)
    ax.set_xlim(0, 1)
    ax.set_xlabel("t")
    ax.set_ylabel(f"output {output}")
    ax.set_title(title if title is not None else f"{pieces.num_pieces} linear pieces along the line")
    return ax
