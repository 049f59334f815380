"""``netatlas regions MODEL --volume cube:SIZE | --through A B C D [--level V ...] [--tiles K]``: the exact 3-D complex
of a model on a 3-D slice, its level-set surfaces (``surface.ply``), a static picture and an offline
interactive view (a small self-contained canvas viewer, nothing fetched: inline in report.html and as
``view3d.html``)."""

from __future__ import annotations

import json
import math
import time

import typer

__all__ = ["cube_size", "parse_volume", "volume_command", "viewer_html"]

#: Triangles the interactive view and the static picture draw at most (the PLY files hold them all).
MAX_DRAWN_TRIANGLES = 60_000
#: Complex edges the static picture draws at most.
MAX_DRAWN_EDGES = 20_000


def cube_size(volume: str | None) -> float:
    """The SIZE of ``--volume cube:SIZE`` (default 1): a finite number > 0.

    >>> cube_size("cube:2"), cube_size(None)
    (2.0, 1.0)
    >>> cube_size("ball:1")
    Traceback (most recent call last):
    ...
    netatlas._options.OptionValueError: --volume must be 'cube:SIZE' (e.g. cube:1.5); got 'ball:1'
    """
    from netatlas._options import OptionValueError

    spec = volume or "cube:1"
    kind, _, value = spec.partition(":")
    if kind != "cube":
        raise OptionValueError(f"--volume must be 'cube:SIZE' (e.g. cube:1.5); got {spec!r}")
    try:
        size = float(value or 1.0)
    except ValueError:
        raise OptionValueError(f"--volume cube:SIZE needs a number; got {spec!r}") from None
    if not (0 < size < math.inf):
        raise OptionValueError(f"--volume cube:SIZE needs a finite SIZE > 0; got {spec!r}")
    return size


def parse_volume(net, volume: str | None, through: list[int] | None, data: str | None, split: str = "train"):
    """The 3-D slice a CLI call asks for: ``cube:SIZE`` in the first three input axes, or the volume
    through four inputs (indices into the ``split`` of ``--data``)."""
    import numpy as np

    from netatlas._options import OptionValueError, command_data
    from netatlas.slices import Volume

    if through:
        if not data:
            raise OptionValueError("--through A B C D needs --data NAME|FILE to pick the inputs from")
        _, x, _, _ = command_data(data, where="regions", split=split)
        x = x.detach().numpy()
        if max(through) >= len(x) or min(through) < 0:
            raise OptionValueError(f"--through indices must be in [0, {len(x)}) for the {split} split of {data!r}; "
                                   f"got {through}")
        if x[0].size != net.n_inputs:
            raise ValueError(f"--data {data!r} has inputs of shape {x.shape[1:]} but the model expects "
                             f"{net.input_shape}")
        return Volume.through(*(x[i].reshape(net.input_shape) for i in through))
    size = cube_size(volume)
    if net.n_inputs < 3:
        raise ValueError(f"--volume cube needs a model with at least 3 inputs; this one has {net.n_inputs}")
    cube = Volume.cube(size, dim=net.n_inputs)
    return Volume(np.zeros(net.input_shape), *(d.reshape(net.input_shape) for d in (cube.d1, cube.d2, cube.d3)),
                  cube.bounds)


def volume_command(*, model, spec, volume, through, data, split, max_regions, memory_budget, level, out, zoom,
                   tiles, dask, upto=None) -> None:
    """The ``regions`` command on a 3-D slice (the options checked first, then one partition)."""
    from netatlas import _options as options

    if zoom is not None or dask:
        raise options.OptionValueError("regions: --zoom and --dask apply to 2-D slices, not --volume / "
                                       "--through A B C D")
    options.at_least("--tiles", tiles, 1)
    indices = options.through_indices(through, count=4) if through else None
    if indices and volume is not None:
        raise options.OptionValueError("regions: give --through A B C D or --volume cube:SIZE, not both")
    if not indices:
        cube_size(volume)
    options.at_least("--max-regions", max_regions, 1)
    options.split_value(split)
    budget = options.memory_budget_value(memory_budget)
    levels = tuple(level or ())
    if len(set(levels)) != len(levels) or not all(math.isfinite(v) for v in levels):
        raise options.OptionValueError(f"--level values must be distinct finite numbers; got {list(levels)}")

    import matplotlib

    matplotlib.use("Agg")

    from netatlas.nets import load
    from netatlas.regions import RegionLimitError, partition
    from netatlas.regions._upto import net_upto
    from netatlas.report import RunDir

    net = load(model, spec)
    if upto is not None:  # the net cut after that layer: what partition(net, volume, upto=LAYER) partitions
        try:
            net = net_upto(net, upto)
        except ValueError as exc:
            raise options.OptionValueError(str(exc).replace("partition: upto:", f"--upto {upto!r}:", 1)) from None
    slice_ = parse_volume(net, volume, indices, data, split)
    run = RunDir.create(out, command="regions", config={
        "model": str(model), "spec": str(spec) if spec else None, "volume": volume, "through": indices,
        "data": data, "split": split, "max_regions": max_regions, "memory_budget": memory_budget,
        "level": list(levels), "tiles": tiles, "upto": upto})
    typer.echo(f"partitioning {model} on the volume {slice_.bounds} ...")
    t0 = time.perf_counter()
    try:
        cx = partition(net, slice_, levels=levels, max_regions=max_regions, memory_budget=budget, tiles=tiles)
    except RegionLimitError as exc:
        raise RegionLimitError(options.limit_message(str(exc)).replace("a smaller Volume (bounds)",
                               "a smaller --volume cube:SIZE")) from None
    seconds = time.perf_counter() - t0
    meshes = [cx.level_set(v) for v in levels]
    for i, mesh in enumerate(meshes):
        name = "surface.ply" if i == 0 else f"surface_{i}.ply"
        run._atomic_write(name, mesh.to_ply)
    counts = cx.to_dict()
    summary = {
        "num_cells": cx.num_cells, "n_vertices": counts["n_vertices"], "n_edges": counts["n_edges"],
        "n_faces": counts["n_faces"], "euler_characteristic": counts["euler_characteristic"],
        "seconds": seconds, "total_volume": counts["total_volume"], "slice_volume": slice_.volume,
        "n_units": cx.n_units, "levels": list(levels), "tiles": tiles, "upto": upto,
        "surfaces": [{"file": "surface.ply" if i == 0 else f"surface_{i}.ply", **m.to_dict()}
                     for i, m in enumerate(meshes)],
        "volume": slice_.to_dict(),
        "python": _python_line(indices, levels, tiles, upto),
    }
    run.write_summary(summary)
    run.save_json("complex", counts)
    run.add_table("Counts", [{"quantity": k, "value": summary[k]} for k in
                             ("num_cells", "n_vertices", "n_edges", "n_faces", "euler_characteristic",
                              "total_volume", "slice_volume")],
                  caption="The exact 3-D complex: convex cells on which the network is affine. V - E + F - C = 1 "
                          "for a subdivided box; the cells' volumes sum to the slice's.")
    run.save_figure(_picture(cx, meshes[0] if meshes else None), "complex3d",
                    f"{cx.num_cells:,} cells" + (f"; the exact level set {levels[0]:g} of output 0 shaded"
                                                 if meshes else "; the complex's edges") + ".")
    view = viewer_html(cx, meshes[0] if meshes else None, title=f"{model}")
    run._atomic_write("view3d.html", lambda tmp: tmp.write_text(view))
    run.write_report("Exact 3-D linear regions", f"{model}: {cx.num_cells:,} cells in {seconds:.2f} s.")
    _inline_view(run, view)
    typer.echo(f"{cx.num_cells:,} cells in {seconds:.2f} s; wrote {run.path}")


def _inline_view(run, view: str) -> None:
    """Append the interactive view to report.html, inline (an iframe whose document is the view itself)."""
    import html

    page = run.file("report.html").read_text()
    frame = ("<h2>Interactive view</h2><p class='caption'>Drag to rotate, scroll to zoom (also in view3d.html).</p>"
             f"<iframe title='3-D view' style='width:760px;height:800px;border:0' "
             f"srcdoc='{html.escape(view, quote=True)}'></iframe>")
    page = page.replace("</body>", frame + "</body>", 1)
    run._atomic_write("report.html", lambda tmp: tmp.write_text(page))


def _python_line(through, levels, tiles=1, upto=None) -> str:
    volume = ("volume = netatlas.Volume.through(x[A], x[B], x[C], x[D])" if through else
              "volume = netatlas.Volume.cube(SIZE, dim=net.n_inputs)")
    tiled = (f", tiles={tiles}" if tiles != 1 else "") + (f", upto={upto!r}" if upto is not None else "")
    return (f"net = netatlas.nets.load(MODEL); {volume}; cx = netatlas.regions.partition(net, volume, "
            f"levels={tuple(levels)!r}{tiled}); cx.level_set(LEVEL).to_ply('surface.ply')")


def _picture(cx, mesh):
    """A matplotlib 3-D picture: the level-set surface shaded by its normals (or the complex's edges)."""
    import matplotlib.pyplot as plt
    import numpy as np
    from mpl_toolkits.mplot3d.art3d import Line3DCollection, Poly3DCollection

    fig = plt.figure(figsize=(7, 7))
    ax = fig.add_subplot(projection="3d")
    if mesh is not None and mesh.n_triangles:
        tri = mesh.vertices[mesh.triangles[:MAX_DRAWN_TRIANGLES]]
        normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
        normal /= np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-300)
        shade = 0.35 + 0.65 * np.abs(normal @ np.array([0.4, 0.3, 0.87]))
        colors = plt.cm.viridis(0.25 + 0.5 * shade)
        ax.add_collection3d(Poly3DCollection(tri, facecolors=colors, edgecolors="none"))
    elif hasattr(cx, "edges"):  # a tiled complex (TiledComplex3D) holds no edges: the box alone
        edges = cx.vertices[cx.edges[:MAX_DRAWN_EDGES]]
        ax.add_collection3d(Line3DCollection(edges, colors="0.2", linewidths=0.3, alpha=0.5))
    lo, hi = cx.volume.lower, cx.volume.upper
    ax.set_xlim(lo[0], hi[0])
    ax.set_ylim(lo[1], hi[1])
    ax.set_zlim(lo[2], hi[2])
    ax.set_xlabel("u")
    ax.set_ylabel("v")
    ax.set_zlabel("w")
    ax.set_box_aspect(hi - lo)
    return fig


def viewer_html(cx, mesh=None, *, title: str = "netatlas 3-D view") -> str:
    """A self-contained HTML page drawing the level-set surface (or the complex's edges) and the box on a
    2-D canvas: orthographic, depth-sorted flat-shaded triangles; drag to rotate, scroll to zoom. No
    script or style is fetched.

    >>> import netatlas
    >>> cx = netatlas.regions.partition(netatlas.nets.mlp([3, 6, 1], seed=0), netatlas.Volume.cube(1.0))
    >>> page = viewer_html(cx, cx.level_set(0.0))
    >>> page.startswith("<!doctype html>") and "http" not in page
    True
    """
    import html

    import numpy as np

    lo, hi = cx.volume.lower, cx.volume.upper
    center, scale = (lo + hi) / 2, float(np.max(hi - lo)) / 2
    if mesh is not None and mesh.n_triangles:
        vertices, triangles = mesh.vertices, mesh.triangles[:MAX_DRAWN_TRIANGLES]
        lines = np.zeros((0, 2), np.int64)
    elif hasattr(cx, "edges"):
        vertices, triangles = cx.vertices, np.zeros((0, 3), np.int64)
        lines = cx.edges[:MAX_DRAWN_EDGES]
    else:  # a tiled complex holds no edges: the box alone
        vertices, triangles, lines = np.zeros((0, 3)), np.zeros((0, 3), np.int64), np.zeros((0, 2), np.int64)
    data = {"v": np.round((vertices - center) / scale, 6).ravel().tolist(), "t": triangles.ravel().tolist(),
            "l": lines.ravel().tolist(), "box": ((hi - lo) / 2 / scale).tolist()}
    return _VIEWER.replace("__TITLE__", html.escape(title)).replace("__DATA__", json.dumps(data))


_VIEWER = """<!doctype html><html><head><meta charset='utf-8'><title>__TITLE__</title>
<style>body{margin:0;font-family:sans-serif;background:#fff}canvas{display:block;margin:auto;cursor:grab}
p{text-align:center;color:#555;font-size:13px}</style></head><body>
<p>__TITLE__ &middot; drag to rotate, scroll to zoom</p><canvas id='c' width='720' height='720'></canvas>
<script>
const D=__DATA__;const c=document.getElementById('c');const g=c.getContext('2d');
let yaw=0.6,pitch=-0.4,zoom=1.0,drag=null;
function rot(x,y,z){const cy=Math.cos(yaw),sy=Math.sin(yaw),cp=Math.cos(pitch),sp=Math.sin(pitch);
 const x1=cy*x+sy*y,y1=-sy*x+cy*y;return [x1,cp*y1-sp*z,sp*y1+cp*z];}
function draw(){g.clearRect(0,0,c.width,c.height);const s=0.33*c.width*zoom,ox=c.width/2,oy=c.height/2;
 const n=D.v.length/3,P=new Float64Array(3*n);
 for(let i=0;i<n;i++){const r=rot(D.v[3*i],D.v[3*i+1],D.v[3*i+2]);P[3*i]=ox+s*r[0];P[3*i+1]=oy-s*r[2];P[3*i+2]=r[1];}
 const T=D.t,m=T.length/3,order=[];for(let k=0;k<m;k++)order.push(k);
 const depth=k=>P[3*T[3*k]+2]+P[3*T[3*k+1]+2]+P[3*T[3*k+2]+2];
 order.sort((a,b)=>depth(b)-depth(a));
 for(const k of order){const a=3*T[3*k],b=3*T[3*k+1],d=3*T[3*k+2];
  const ux=P[b]-P[a],uy=P[b+1]-P[a+1],uz=P[b+2]-P[a+2],vx=P[d]-P[a],vy=P[d+1]-P[a+1],vz=P[d+2]-P[a+2];
  const nx=uy*vz-uz*vy,ny=uz*vx-ux*vz,nz=ux*vy-uy*vx,len=Math.hypot(nx,ny,nz)||1;
  const L=0.3+0.7*Math.abs((0.3*nx-0.5*ny+0.8*nz)/len);
  g.fillStyle='rgb('+Math.round(60*L)+','+Math.round(140*L+40)+','+Math.round(200*L+30)+')';
  g.beginPath();g.moveTo(P[a],P[a+1]);g.lineTo(P[b],P[b+1]);g.lineTo(P[d],P[d+1]);g.closePath();g.fill();}
 g.strokeStyle='rgba(40,40,40,0.5)';g.lineWidth=0.5;g.beginPath();
 for(let k=0;k<D.l.length;k+=2){const a=3*D.l[k],b=3*D.l[k+1];g.moveTo(P[a],P[a+1]);g.lineTo(P[b],P[b+1]);}
 g.stroke();
 const B=D.box;g.strokeStyle='#999';g.lineWidth=1;g.beginPath();
 for(const e of [[0,1],[2,3],[4,5],[6,7],[0,2],[1,3],[4,6],[5,7],[0,4],[1,5],[2,6],[3,7]]){
  const q=e.map(i=>{const r=rot((i&1?1:-1)*B[0],(i&2?1:-1)*B[1],(i&4?1:-1)*B[2]);return [ox+s*r[0],oy-s*r[2]];});
  g.moveTo(q[0][0],q[0][1]);g.lineTo(q[1][0],q[1][1]);}
 g.stroke();}
c.onmousedown=e=>{drag=[e.clientX,e.clientY];};window.onmouseup=()=>{drag=null;};
window.onmousemove=e=>{if(!drag)return;yaw+=(e.clientX-drag[0])*0.01;pitch+=(e.clientY-drag[1])*0.01;
 drag=[e.clientX,e.clientY];draw();};
c.onwheel=e=>{e.preventDefault();zoom*=Math.exp(-e.deltaY*0.001);draw();};draw();
</script></body></html>"""
