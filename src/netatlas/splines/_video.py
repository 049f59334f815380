"""Animations of training in the spline view: MP4 through ffmpeg when it is on PATH, else a GIF."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np

__all__ = ["render_flow_video"]


def _frames(run, indices, size):
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from netatlas.splines._plot import plot_flow_frame

    fig, ax = plt.subplots(figsize=size, dpi=100)
    values = np.concatenate([run.function[:, (run.grid >= run.x[0]) & (run.grid <= run.x[-1])].ravel(), run.y])
    lo, hi = np.percentile(values, [0.5, 99.5])
    pad = 0.15 * (hi - lo + 1e-12)
    ylim = (lo - pad - 0.25 * (hi - lo), hi + pad)
    mu_scale = float(np.percentile(np.abs(run.delta_slopes[-1]), 99)) or None
    frames = []
    for index in indices:
        plot_flow_frame(run, index, ax=ax, ylim=ylim, mu_scale=mu_scale)
        fig.canvas.draw()
        frames.append(np.asarray(fig.canvas.buffer_rgba())[..., :3].copy())
    plt.close(fig)
    return frames


def render_flow_video(run, path, *, fps: int = 10, max_frames: int = 120, size=(7.0, 4.5),
                      fmt: str | None = None) -> Path:
    """Write an animation of ``run`` (a FlowResult): data, f, breakpoints sized by |mu| and their paths.

    Parameters
    ----------
    path : str or Path
        Target without or with suffix; the suffix is set to .mp4 or .gif.
    fmt : {"mp4", "gif"}, optional
        Default: mp4 if ``shutil.which("ffmpeg")`` finds ffmpeg, else gif (imageio + pillow).

    Returns
    -------
    Path of the written file.
    """
    fmt = fmt or ("mp4" if shutil.which("ffmpeg") else "gif")
    if fmt not in ("mp4", "gif"):
        raise ValueError(f"render_flow_video: fmt must be 'mp4' or 'gif'; got {fmt!r}")
    n = run.times.size
    indices = np.unique(np.linspace(0, n - 1, min(n, max_frames)).round().astype(int))
    frames = _frames(run, indices, size)
    path = Path(path).with_suffix(f".{fmt}")
    if fmt == "gif":
        import imageio.v2 as imageio

        imageio.mimsave(path, frames, duration=1000 / fps, loop=0)
        return path
    height, width = frames[0].shape[:2]
    height, width = height - height % 2, width - width % 2  # yuv420p needs even sizes
    command = [shutil.which("ffmpeg"), "-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s",
               f"{width}x{height}", "-r", str(fps), "-i", "-", "-pix_fmt", "yuv420p", "-vcodec", "libx264",
               str(path)]
    data = b"".join(np.ascontiguousarray(f[:height, :width]).tobytes() for f in frames)
    subprocess.run(command, input=data, check=True)
    return path
