"""Run directories: every command writes its config, environment, numbers, arrays, figures and a
self-contained ``report.html`` into one directory."""

from __future__ import annotations

import base64
import datetime as _dt
import html
import json
import math
import platform
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from netatlas._notebook import RunDirDisplay

__all__ = ["RunDir", "to_jsonable", "environment"]


def to_jsonable(obj):
    """Convert numpy/torch scalars and arrays, dataclasses with ``to_dict`` and paths to JSON types.
    Non-finite floats become None (JSON has no NaN).

    >>> to_jsonable({"a": np.float64(1.5), "b": np.arange(3), "c": float("nan")})
    {'a': 1.5, 'b': [0, 1, 2], 'c': None}
    """
    if hasattr(obj, "to_dict") and callable(obj.to_dict):
        return to_jsonable(obj.to_dict())
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if type(obj).__module__ == "torch":
        obj = obj.detach().cpu().numpy()
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


def environment() -> dict:
    """Versions of Python, the platform and the numerical packages, for reproducibility."""
    import importlib.metadata as md

    versions = {}
    for name in ("netatlas", "torch", "numpy", "scipy", "matplotlib", "dask"):
        try:
            versions[name] = md.version(name)
        except md.PackageNotFoundError:
            versions[name] = None
    return {"python": sys.version.split()[0], "platform": platform.platform(), "packages": versions,
            "time": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")}


@dataclass
class RunDir(RunDirDisplay):
    """A run directory. Create with :meth:`create`; everything written is listed in the report.

    Examples
    --------
    >>> import tempfile
    >>> run = RunDir.create(tempfile.mkdtemp() + "/r", command="example", config={"seed": 0})
    >>> run.save_json("numbers", {"x": np.float64(2.0)}).name
    'numbers.json'
    >>> run.write_summary({"accuracy": 0.9}).name
    'summary.json'
    >>> run.write_report("Example").name
    'report.html'
    """

    path: Path
    command: str
    config: dict
    sections: list = field(default_factory=list)

    @classmethod
    def create(cls, out=None, *, command: str, config: dict | None = None) -> RunDir:
        """Make ``out`` (default: a new ``runs/<command>-<timestamp>``) and write config.json and
        environment.json into it."""
        if out is None:
            stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
            out = Path("runs") / f"{command.replace(' ', '-')}-{stamp}"
            i = 1
            while out.exists():
                out = out.with_name(f"{command.replace(' ', '-')}-{stamp}-{i}")
                i += 1
        path = Path(out)
        if path.exists() and not path.is_dir():
            raise ValueError(f"--out {path} exists and is not a directory")
        path.mkdir(parents=True, exist_ok=True)
        run = cls(path, command, dict(config or {}))
        run.save_json("config", {"command": command, **run.config})
        run.save_json("environment", environment())
        return run

    def file(self, name: str) -> Path:
        return self.path / name

    def save_json(self, name: str, obj) -> Path:
        target = self.path / f"{name}.json"
        tmp = target.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(to_jsonable(obj), indent=2))
        tmp.replace(target)  # atomic: an interrupted run never leaves half a file
        return target

    def save_arrays(self, name: str, **arrays) -> Path:
        """Save arrays to ``name.npz`` (load with ``np.load``)."""
        target = self.path / f"{name}.npz"
        np.savez_compressed(target, **{k: np.asarray(to_numpy(v)) for k, v in arrays.items()})
        return target

    def write_summary(self, summary: dict) -> Path:
        """``summary.json``: the headline numbers of the run."""
        return self.save_json("summary", summary)

    def add_text(self, title: str, text: str) -> None:
        """A section of plain text (paragraphs separated by blank lines) in the report."""
        self.sections.append(("text", title, text))

    def add_table(self, title: str, rows: list[dict], caption: str = "") -> None:
        """A table section; ``rows`` is a list of dicts sharing keys (the columns)."""
        self.sections.append(("table", title, (rows, caption)))

    def save_figure(self, fig, name: str, caption: str = "", *, title: str | None = None) -> Path:
        """Save a matplotlib figure as PNG and SVG and add it to the report with its caption."""
        png = self.path / f"{name}.png"
        fig.savefig(png, dpi=130, bbox_inches="tight")
        fig.savefig(self.path / f"{name}.svg", bbox_inches="tight")
        import matplotlib.pyplot as plt

        plt.close(fig)
        self.sections.append(("figure", title or name, (png, caption)))
        return png

    def add_media(self, path, caption: str = "", *, title: str | None = None) -> None:
        """Embed an image or animation file (PNG, GIF, MP4) written into the run directory."""
        self.sections.append(("media", title or Path(path).name, (Path(path), caption)))

    def write_report(self, title: str, intro: str = "") -> Path:
        """Write the self-contained ``report.html`` (figures embedded as data URIs)."""
        parts = [f"<h1>{html.escape(title)}</h1>"]
        if intro:
            parts += [f"<p>{html.escape(p)}</p>" for p in intro.split("\n\n")]
        parts.append(f"<p class='meta'>command: <code>{html.escape(self.command)}</code> &middot; "
                     f"config: <code>{html.escape(json.dumps(to_jsonable(self.config)))}</code></p>")
        for kind, heading, payload in self.sections:
            parts.append(f"<h2>{html.escape(heading)}</h2>")
            if kind == "text":
                parts += [f"<p>{html.escape(p)}</p>" for p in payload.split("\n\n")]
            elif kind == "table":
                parts.append(_html_table(*payload))
            else:
                media, caption = payload
                parts.append(_embed(media))
                if caption:
                    parts.append(f"<p class='caption'>{html.escape(caption)}</p>")
        body = "\n".join(parts)
        target = self.path / "report.html"
        target.write_text(f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
                          f"</title><style>{_CSS}</style></head><body>{body}</body></html>")
        return target


def to_numpy(v):
    if type(v).__module__ == "torch":
        return v.detach().cpu().numpy()
    return v


def _embed(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    suffix = path.suffix.lower()
    if suffix == ".mp4":
        return f"<video controls loop src='data:video/mp4;base64,{data}'></video>"
    mime = {".png": "image/png", ".gif": "image/gif", ".svg": "image/svg+xml", ".jpg": "image/jpeg"}[suffix]
    return f"<img alt='{html.escape(path.name)}' src='data:{mime};base64,{data}'>"


def _html_table(rows, caption):
    if not rows:
        return "<p>(empty)</p>"
    columns = list(dict.fromkeys(k for row in rows for k in row))
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_fmt(row.get(c, '')))}</td>" for c in columns) + "</tr>"
                   for row in rows)
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _fmt(v) -> str:
    if isinstance(v, (float, np.floating)):
        return f"{v:.4g}"
    return str(to_jsonable(v))


_CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
img,video{max-width:100%;border:1px solid #ddd}table{border-collapse:collapse;margin:1em 0}
td,th{border:1px solid #ccc;padding:4px 8px;font-size:14px;text-align:left}th{background:#f3f3f3}
.caption{color:#555;font-size:14px}.meta{color:#666;font-size:13px}caption{caption-side:bottom;color:#555}"""


