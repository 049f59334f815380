"""How results show themselves in a notebook: a small figure and the headline numbers.

Jupyter calls ``_repr_html_`` (a table of numbers and the figure as an embedded PNG) or ``_repr_png_``
(the figure alone). The mixins here give those methods to :class:`netatlas.regions.Partition`,
:class:`netatlas.splines.Spline` and :class:`netatlas.report.RunDir`; each class only names its mixin
as a base. Figures are drawn on a detached ``matplotlib.figure.Figure`` (no pyplot state, nothing shown
or left open), and matplotlib is imported only when a notebook asks for a picture.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math

# Above this many regions the notebook picture is skipped (drawing would take seconds).
MAX_REGIONS_DRAWN = 200_000


def figure_png(draw, size=(4.2, 3.4), dpi: int = 80) -> bytes:
    """PNG bytes of a new detached figure after ``draw(ax)`` has drawn on its one Axes.

    >>> figure_png(lambda ax: ax.plot([0, 1], [1, 0]))[:8]
    b'\\x89PNG\\r\\n\\x1a\\n'
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, layout="constrained")
    draw(fig.add_subplot())
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def html_card(title: str, numbers: dict, png: bytes | None = None, note: str = "") -> str:
    """A small HTML block: a title, a two-column table of ``numbers`` and the PNG beside it.

    >>> html_card("Run", {"accuracy": 0.975})
    "<div class='netatlas-repr'><strong>Run</strong>...<td style='text-align:left'>0.975</td>...</div>"
    """
    rows = "".join(f"<tr><th style='text-align:left'>{html.escape(str(k))}</th>"
                   f"<td style='text-align:left'>{html.escape(_fmt(v))}</td></tr>" for k, v in numbers.items())
    image = ""
    if png is not None:
        image = (f"<img alt='{html.escape(title)}' style='max-width:340px' "
                 f"src='data:image/png;base64,{base64.b64encode(png).decode()}'>")
    extra = f"<p>{html.escape(note)}</p>" if note else ""
    return (f"<div class='netatlas-repr'><strong>{html.escape(title)}</strong>"
            f"<div style='display:flex;gap:1em;align-items:flex-start'><table>{rows}</table>{image}</div>"
            f"{extra}</div>")


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.6g}" if math.isfinite(value) else str(value)
    if isinstance(value, (list, tuple)):
        return "(" + ", ".join(_fmt(v) for v in value) + ")"
    return str(value)


class PartitionDisplay:
    """Notebook display of a :class:`~netatlas.regions.Partition`: the regions and their counts."""

    def _display_numbers(self) -> dict:
        areas = self.areas
        return {"regions": self.num_regions, "hidden units": self.n_units, "outputs": self.n_outputs,
                "slice bounds (u, v)": tuple(float(b) for b in self.plane.bounds),
                "total area": float(areas.sum()), "smallest area": float(areas.min()),
                "mean vertices per region": float((self.offsets[1:] - self.offsets[:-1]).mean())}

    def _repr_png_(self) -> bytes | None:
        if self.num_regions > MAX_REGIONS_DRAWN:
            return None
        return figure_png(lambda ax: self.plot(ax=ax, color_by="pattern", anchors=False))

    def _repr_html_(self) -> str:
        png = self._repr_png_()
        note = "" if png is not None else f"(no picture above {MAX_REGIONS_DRAWN:,} regions: use .plot())"
        return html_card("Partition", self._display_numbers(), png, note)


class SplineDisplay:
    """Notebook display of a :class:`~netatlas.splines.Spline`: the function, its breakpoints, roughness."""

    def _display_numbers(self) -> dict:
        rough = self.roughness()
        return {"width (neurons)": self.width, "finite breakpoints": int(self.finite.sum()),
                "offset": float(self.offset), "sum mu^2": rough.l2, "sum |mu|": rough.l1, "TV(f')": rough.tv}

    def _display_range(self) -> tuple[float, float]:
        import numpy as np

        beta = self.breakpoints[self.finite]
        if beta.size == 0:
            return -1.0, 1.0
        lo, hi = np.percentile(beta, [5, 95]) if beta.size > 20 else (beta.min(), beta.max())
        pad = max(0.25 * (hi - lo), 0.5)
        return float(lo - pad), float(hi + pad)

    def _draw(self, ax) -> None:
        import numpy as np

        lo, hi = self._display_range()
        x = np.linspace(lo, hi, 400)
        ax.plot(x, self(x), color="k", lw=1.2)
        beta = self.breakpoints[self.finite & (self.breakpoints > lo) & (self.breakpoints < hi)]
        ax.plot(beta, self(beta), "o", ms=3, color="tab:red", label="breakpoints")
        ax.set(xlabel="x", ylabel="f(x)", xlim=(lo, hi))
        ax.legend(fontsize=7, loc="best")

    def _repr_png_(self) -> bytes:
        return figure_png(self._draw)

    def _repr_html_(self) -> str:
        return html_card("Spline", self._display_numbers(), self._repr_png_())


class RunDirDisplay:
    """Notebook display of a :class:`~netatlas.report.RunDir`: its summary numbers and first figure."""

    def _display_numbers(self) -> dict:
        numbers = {"command": self.command, "folder": str(self.path)}
        summary = self.path / "summary.json"
        if summary.exists():
            data = json.loads(summary.read_text())
            scalars = {k: v for k, v in data.items() if isinstance(v, (int, float, str, bool)) or v is None}
            numbers.update(list(scalars.items())[:12])
        return numbers

    def _first_figure(self):
        figures = [payload[0] for kind, _, payload in self.sections
                   if kind in ("figure", "media") and payload[0].suffix.lower() == ".png"]
        figures += sorted(self.path.glob("*.png"))
        return next((f for f in figures if f.exists()), None)

    def _repr_png_(self) -> bytes | None:
        figure = self._first_figure()
        return figure.read_bytes() if figure is not None else None

    def _repr_html_(self) -> str:
        return html_card(f"Run: {self.command}", self._display_numbers(), self._repr_png_())
