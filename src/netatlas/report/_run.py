"""Run directories: every command writes its config, environment, numbers, arrays, figures and a
self-contained ``report.html`` into one directory.

Nothing is lost: a run directory is only written into when it is new, empty, or a run of the same
command with the same settings (a resume); anything else needs ``overwrite=True`` (``--overwrite``).
Every file is written atomically (a temporary file, then ``os.replace``), so a full disk or an
interrupt leaves the previous file or none, never half of one. A command that fails marks its run
``{"status": "failed", "error": ...}`` in summary.json (see :func:`command_runs`).
"""

from __future__ import annotations

import base64
import contextlib
import datetime as _dt
import html
import json
import math
import os
import platform
import secrets
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from netatlas._errors import ResumeRefusedError
from netatlas._notebook import RunDirDisplay
from netatlas._run_guard import _OVERWRITE, _RUNS, add_overwrite_options, command_runs

__all__ = ["RunDir", "to_jsonable", "environment", "atomic_write", "command_runs", "add_overwrite_options"]

# Settings that may change when a run is resumed (where it runs, not what it computes).
_RESUMABLE_CHANGES = frozenset({"dask", "threads", "progress"})


def atomic_write(path, write) -> Path:
    """Call ``write(tmp_path)`` on a temporary file beside ``path``, then rename it to ``path``.

    Readers see the old file or the complete new one; on any error (a full disk, Ctrl-C) the
    temporary file is removed and ``path`` is untouched. The temporary name keeps the suffix, so
    writers that pick a format from it (``savefig``, ``np.savez``) work unchanged.

    Examples
    --------
    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "a.txt"
    >>> atomic_write(p, lambda tmp: tmp.write_text("hello")).read_text()
    'hello'
    """
    path = Path(path)
    tmp = new_temporary(path, f".tmp{path.suffix}")
    try:
        write(tmp)
        with open(tmp, "rb") as stream:
            os.fsync(stream.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def new_temporary(path: Path, suffix: str) -> Path:
    """A new empty file ``.<stem>.<random><suffix>`` beside ``path`` with the permissions of any new
    file: 0o666 less the umask (``tempfile.mkstemp`` makes 0o600, which ``os.replace`` would keep).

    Examples
    --------
    >>> import tempfile
    >>> tmp = new_temporary(Path(tempfile.mkdtemp()) / "a.json", ".tmp")
    >>> tmp.name.startswith(".a.") and tmp.suffix == ".tmp" and tmp.stat().st_size == 0
    True
    """
    for _ in range(100):
        tmp = path.with_name(f".{path.stem}.{secrets.token_hex(4)}{suffix}")
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            continue
        return tmp
    raise FileExistsError(f"atomic_write: no free temporary name beside {path}")  # pragma: no cover


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
    # (name, content) of config.json and environment.json while a resumed run has written nothing: they
    # wait for its first write, so that a resume refused later (tiles of another model) changes nothing
    _unwritten: tuple = field(default=(), repr=False, compare=False)

    @classmethod
    def create(cls, out=None, *, command: str, config: dict | None = None, overwrite: bool = False) -> RunDir:
        """Make ``out`` (default: a new ``runs/<command>-<timestamp>``) and write config.json and
        environment.json into it.

        ``out`` may be new, empty, or a run of the same ``command`` with the same config (a resume;
        only ``dask``/``threads``/``progress`` may differ). Anything else raises ResumeRefusedError (a
        ValueError) unless ``overwrite`` (or the CLI's ``--overwrite``) is given; ``''`` and ``'.'``
        are always refused. A resumed run rewrites config.json and environment.json with its first
        write, not before: a resume refused later leaves the folder as it was.
        """
        config = dict(config or {})
        if out is None:
            stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
            out = Path("runs") / f"{command.replace(' ', '-')}-{stamp}"
            i = 1
            while out.exists():
                out = out.with_name(f"{command.replace(' ', '-')}-{stamp}-{i}")
                i += 1
        if str(out).strip() in ("", "."):
            raise ValueError(f"--out {str(out)!r} would write the run into the current directory; name a run "
                             "directory, e.g. --out runs/my-run")
        path = Path(out)
        if path.exists() and not path.is_dir():
            raise ValueError(f"--out {path} exists and is not a directory")
        if not (overwrite or _OVERWRITE.get()):
            _check_reusable(path, command, config)
        resumed = path.is_dir() and any(path.iterdir())
        path.mkdir(parents=True, exist_ok=True)
        run = cls(path, command, config)
        run._unwritten = (("config", {"command": command, **run.config}), ("environment", environment()))
        if not resumed:
            run._write_unwritten()
        runs = _RUNS.get()
        if runs is not None:
            runs.append(run)
        return run

    def fail(self, error: BaseException | str) -> Path:
        """Mark the run as failed: summary.json gets ``status: "failed"`` and the error (one line),
        keeping any numbers already written."""
        text = error if isinstance(error, str) else f"{type(error).__name__}: {error}".rstrip(": ")
        previous = {}
        with contextlib.suppress(OSError, ValueError):
            previous = json.loads((self.path / "summary.json").read_text())
        summary = {**(previous if isinstance(previous, dict) else {}), "status": "failed",
                   "error": text.strip().splitlines()[0] if text.strip() else text}
        return self.save_json("summary", summary)

    def file(self, name: str) -> Path:
        return self.path / name

    def _write_unwritten(self) -> None:
        unwritten, self._unwritten = self._unwritten, ()
        for name, obj in unwritten:
            self.save_json(name, obj)

    def _atomic_write(self, name: str, write) -> Path:
        """Every file of the run goes through here: first config.json and environment.json if unwritten."""
        self._write_unwritten()
        return atomic_write(self.path / name, write)

    def save_json(self, name: str, obj) -> Path:
        text = json.dumps(to_jsonable(obj), indent=2)
        return self._atomic_write(f"{name}.json", lambda tmp: tmp.write_text(text))

    def save_arrays(self, name: str, **arrays) -> Path:
        """Save arrays to ``name.npz`` (load with ``np.load``)."""
        arrays = {k: np.asarray(to_numpy(v)) for k, v in arrays.items()}
        return self._atomic_write(f"{name}.npz", lambda tmp: np.savez_compressed(tmp, **arrays))

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
        import matplotlib.pyplot as plt

        try:
            png = self._atomic_write(f"{name}.png", lambda tmp: fig.savefig(tmp, dpi=130, bbox_inches="tight"))
            self._atomic_write(f"{name}.svg", lambda tmp: fig.savefig(tmp, bbox_inches="tight"))
        finally:
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
        page = (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
                f"</title><style>{_CSS}</style></head><body>{body}</body></html>")
        return self._atomic_write("report.html", lambda tmp: tmp.write_text(page))


def _check_reusable(path: Path, command: str, config: dict) -> None:
    """Refuse a non-empty directory that is not a run of the same command with the same settings."""
    if not path.is_dir() or not any(path.iterdir()):
        return
    hint = "pass --overwrite (overwrite=True) to write into it anyway, or choose another --out"
    try:
        previous = json.loads((path / "config.json").read_text())
    except (OSError, ValueError):
        raise ResumeRefusedError(f"--out {path} is a non-empty directory that is not a netatlas run; {hint}",
                                 path=path) from None
    if not isinstance(previous, dict) or previous.get("command") != command:
        other = previous.get("command") if isinstance(previous, dict) else None
        raise ResumeRefusedError(f"--out {path} holds a run of {other!r}, not {command!r}; {hint}", path=path)
    new = to_jsonable({"command": command, **config})
    changed = sorted(k for k in set(previous) | set(new)
                     if k not in _RESUMABLE_CHANGES and previous.get(k) != new.get(k))
    if changed:
        raise ResumeRefusedError(f"--out {path} holds a {command!r} run with other settings "
                                 f"({', '.join(changed)} differ), so it cannot be resumed; {hint}", path=path)


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


