"""Results show themselves in a notebook: an HTML card with the headline numbers and a PNG figure."""

import base64
import io
import re
from html import escape as html_escape

import matplotlib
import numpy as np
import pytest
import torch

matplotlib.use("Agg")

import matplotlib.image  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402

import netatlas  # noqa: E402
from netatlas import _notebook  # noqa: E402

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _embedded_png(html: str) -> bytes:
    match = re.search(r"<img [^>]*src='data:image/png;base64,([A-Za-z0-9+/=]+)'", html)
    assert match, "no embedded PNG in the HTML"
    return base64.b64decode(match.group(1))


def _image_shape(png: bytes) -> tuple:
    assert png[:8] == PNG_SIGNATURE
    return matplotlib.image.imread(io.BytesIO(png), format="png").shape


def _cell(html: str, label: str) -> str:
    match = re.search(rf"<th[^>]*>{re.escape(html_escape(label))}</th><td[^>]*>([^<]*)</td>", html)
    assert match, f"no row {label!r}"
    return match.group(1)


def test_partition_shows_its_regions_and_counts():
    part = netatlas.regions.partition(netatlas.nets.mlp([2, 8, 8, 3], seed=0), netatlas.Plane.square(2.0))
    open_before = plt.get_fignums()
    html = part._repr_html_()
    assert int(_cell(html, "regions")) == part.num_regions
    assert int(_cell(html, "hidden units")) == 16
    assert float(_cell(html, "total area")) == pytest.approx(16.0, rel=1e-5)  # 6 significant digits shown
    height, width, _ = _image_shape(_embedded_png(html))
    assert height > 100 and width > 100
    assert _image_shape(part._repr_png_()) == (height, width, 4)
    assert plt.get_fignums() == open_before  # drawn on a detached figure: nothing left open


def test_partition_picture_is_skipped_above_the_limit(monkeypatch):
    part = netatlas.regions.partition(netatlas.nets.mlp([2, 8, 1], seed=0))
    monkeypatch.setattr(_notebook, "MAX_REGIONS_DRAWN", part.num_regions - 1)
    assert part._repr_png_() is None
    html = part._repr_html_()
    assert "<img" not in html and "use .plot()" in html
    assert int(_cell(html, "regions")) == part.num_regions


def test_spline_shows_the_function_and_its_roughness():
    model = torch.nn.Sequential(torch.nn.Linear(1, 6), torch.nn.ReLU(), torch.nn.Linear(6, 1))
    spline = netatlas.splines.to_spline(model)
    html = spline._repr_html_()
    rough = spline.roughness()
    assert int(_cell(html, "width (neurons)")) == 6
    assert float(_cell(html, "sum mu^2")) == pytest.approx(rough.l2, rel=1e-5)
    assert float(_cell(html, "TV(f')")) == pytest.approx(rough.tv, rel=1e-5)
    assert _image_shape(_embedded_png(html))[0] > 100


def test_spline_without_finite_breakpoints_still_draws():
    spline = netatlas.splines.to_spline(([0.0, 0.0], [1.0, 2.0], [1.0, 1.0], 0.5))  # all w = 0: a constant
    assert int(_cell(spline._repr_html_(), "finite breakpoints")) == 0
    assert spline._repr_png_()[:8] == PNG_SIGNATURE


def test_run_dir_shows_summary_numbers_and_first_figure(tmp_path):
    run = netatlas.report.RunDir.create(tmp_path / "run", command="regions", config={"seed": 0})
    run.write_summary({"num_regions": 308, "accuracy": 0.975, "bounds": {"zaslavsky": 500}})
    html = run._repr_html_()
    assert _cell(html, "num_regions") == "308" and _cell(html, "accuracy") == "0.975"
    assert "<img" not in html and run._repr_png_() is None  # no figure yet
    fig, ax = plt.subplots()
    ax.imshow(np.zeros((4, 6)))
    run.save_figure(fig, "first")
    png = run._repr_png_()
    assert png == (tmp_path / "run" / "first.png").read_bytes()
    assert _embedded_png(run._repr_html_()) == png
