"""The playground in a real browser: Debian's headless chromium driven by Playwright.

Never runs ``playwright install``: the browser is /usr/bin/chromium (CI installs it with apt-get).
Screenshots go to test-artifacts/ (git-ignored).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is missing (apt-get install chromium)"),
]

FIRST_FRAME = "window.playground.lastFrame !== null"
# the exact boundary when the regions lens provides it, else the predicted class on the heatmap grid
BOUNDARY = ("JSON.stringify(f.layers.boundary && f.layers.boundary.segments ? f.layers.boundary.segments "
            ": f.layers.heatmap.classes)")


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture()
def page(browser, server):
    context = browser.new_context(viewport={"width": 1260, "height": 860})
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.set_default_timeout(90_000)  # generous: a busy machine, first numba compile
    page.base_url = server.url
    yield page
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def shot(page, name):
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"app-{name}.png"))


def frame_value(page, expression):
    return page.evaluate(f"(() => {{ const f = window.playground.lastFrame; return {expression}; }})()")


def test_train_and_see_regions_and_boundary_change(page):
    page.goto(page.base_url + "?n=300&widths=16,16&lr=0.03")
    page.wait_for_function(FIRST_FRAME)
    page.wait_for_function("document.getElementById('region-count').textContent !== '–'")
    count_before = page.inner_text("#region-count")
    boundary_before = frame_value(page, BOUNDARY)
    shot(page, "initial")
    page.click("#play")
    page.wait_for_function("window.playground.lastFrame && window.playground.lastFrame.meta.epoch >= 25")
    page.click("#play")  # pause
    page.wait_for_function("!window.playground.lastFrame.meta.playing")
    # the page's readout and the frame it shows, read in one evaluation: a frame arriving between two reads
    # (the server may send one more after the pause) must not make them disagree
    count_after, n_regions, epoch_shown, epoch = frame_value(
        page, "[document.getElementById('region-count').textContent, f.layers.regions.n_regions, "
              "document.getElementById('epoch').textContent, f.meta.epoch]")
    boundary_after = frame_value(page, BOUNDARY)
    assert boundary_after != boundary_before and boundary_after != "null"
    assert count_after != count_before or frame_value(page, "f.layers.regions.coords.length") > 0
    assert int(count_after.replace(",", "")) == n_regions
    assert epoch_shown == str(epoch)
    shot(page, "trained")
    # scrub back to the first snapshot: the view shows epoch 0 again
    page.eval_on_selector("#scrub", "el => { el.value = 0; el.dispatchEvent(new Event('input')); }")
    page.wait_for_function("window.playground.lastFrame && window.playground.lastFrame.meta.scrubbed "
                           "&& window.playground.lastFrame.meta.epoch === 0")
    assert "epoch 0" in page.inner_text("#scrub-label")


def test_bad_inputs_show_inline_errors(page, tmp_path):
    page.goto(page.base_url)
    page.wait_for_function(FIRST_FRAME)
    bad = tmp_path / "bad.csv"
    bad.write_text("x1,x2,label\n0.1,0.2,a\n0.3,NaN,b\n")
    page.set_input_files("#upload", str(bad))
    page.wait_for_function("document.getElementById('err-upload').textContent.includes('not a finite number')")
    too_many = tmp_path / "classes.csv"
    too_many.write_text("".join(f"{i},{i},{i}\n" for i in range(12)))
    page.set_input_files("#upload", str(too_many))
    page.wait_for_function("document.getElementById('err-upload').textContent.includes('at most 10')")
    page.fill("#n", "1000000000")
    page.dispatch_event("#n", "change")
    page.wait_for_function("document.getElementById('err-n').textContent.includes('outside the accepted range')")
    shot(page, "errors")
    # the server is alive and the page still trains with good settings
    page.fill("#n", "200")
    page.dispatch_event("#n", "change")
    page.wait_for_function("window.playground.data.train.length === 200")
    assert page.inner_text("#err-n") == ""
    good = tmp_path / "good.csv"
    good.write_text("x1,x2,label\n" + "".join(f"{(i % 10) / 5 - 1},{(i // 10) / 5 - 1},{int(i % 10 > i // 10)}\n"
                                              for i in range(100)))
    page.set_input_files("#upload", str(good))
    page.wait_for_function("window.playground.data && window.playground.data.config.dataset === 'upload'")
    page.click("#step")
    page.wait_for_function("window.playground.lastFrame && window.playground.lastFrame.meta.epoch === 1")


def test_regression_mode_shows_the_spline_view(page):
    page.goto(page.base_url)
    page.wait_for_function(FIRST_FRAME)
    page.check("#mode-regress")
    page.fill("#depth", "1")
    page.dispatch_event("#depth", "change")
    page.wait_for_function("window.playground.data.mode === 'regress' && "
                           "window.playground.data.config.widths.length === 1")
    page.click("#play")
    page.wait_for_function("window.playground.lastFrame && window.playground.lastFrame.meta.epoch >= 20")
    page.click("#play")
    layers = frame_value(page, "f.layers")
    assert len(layers["curve"]["x"]) > 100
    spline = layers["spline"]
    assert len(spline["breakpoints"]) == len(spline["delta_slopes"]) == 32
    assert page.is_visible("#function") and not page.is_visible("#dataset")
    shot(page, "regression")


def test_settings_travel_in_the_url(page):
    page.goto(page.base_url + "?dataset=circles&activation=tanh&depth=1&widths=8&v_heatmap=volume")
    page.wait_for_function("window.playground.data && window.playground.data.config.dataset === 'circles'")
    page.wait_for_function(FIRST_FRAME)
    assert page.input_value("#activation") == "tanh"
    config = page.evaluate("window.playground.data.config")
    assert config["activation"] == "tanh" and config["widths"] == [8]
    assert "piecewise-linear" in page.inner_text("#notes")  # tanh: no exact regions, a note says why
    assert "activation=tanh" in page.url
    shot(page, "tanh-volume")


def test_widths_and_depth_stay_in_sync(page):
    page.goto(page.base_url + "?n=100&depth=2&widths=8,8,8")
    page.wait_for_function("window.playground.data && window.playground.lastFrame")
    assert page.evaluate("window.playground.data.config.widths") == [8, 8]
    assert page.input_value("#widths") == "8,8" and page.input_value("#depth") == "2"  # what the server built
    assert "widths=8%2C8&" in page.url
    page.fill("#widths", "8,8,8")
    page.dispatch_event("#widths", "change")  # the widths decide the depth
    page.wait_for_function("window.playground.data.config.widths.length === 3")
    assert page.input_value("#depth") == "3" and "depth=3" in page.url and "widths=8%2C8%2C8" in page.url


def test_high_dpi_canvas_and_narrow_layout(browser, server):
    context = browser.new_context(viewport={"width": 900, "height": 800}, device_scale_factor=2)
    page = context.new_page()
    try:
        page.goto(server.url + "?n=100&widths=8,8")
        page.wait_for_function(FIRST_FRAME)
        css, backing = page.evaluate("(() => { const c = document.getElementById('view'); "
                                     "return [c.getBoundingClientRect().width, c.width]; })()")
        assert backing == round(2 * css)  # drawn at device pixels: sharp on high-DPI screens
        for panel in ("#settings", "#view", "#layers"):  # nothing off-screen at 900 px
            box = page.locator(panel).bounding_box()
            assert box["x"] >= 0 and box["x"] + box["width"] <= 900, (panel, box)
        shot(page, "narrow-900")
    finally:
        context.close()


def test_class_colouring_tanh_boundary_and_branch_notice(page):
    page.goto(page.base_url + "?n=150&widths=8,8&v_colour_by=class&lr=0.05")
    page.wait_for_function(FIRST_FRAME)
    for _ in range(3):
        page.click("#step")
    page.wait_for_function("window.playground.lastFrame.meta.epoch === 3")
    assert frame_value(page, "f.layers.regions.pieces.offsets.length") > frame_value(page, "f.layers.regions.n_regions")
    page.eval_on_selector("#scrub", "el => { el.value = 1; el.dispatchEvent(new Event('input')); }")
    page.wait_for_function("window.playground.lastFrame.meta.scrubbed")
    page.click("#step")
    page.wait_for_function("!document.getElementById('notice').hidden")
    assert "dropped" in page.inner_text("#notice")
    page.goto(page.base_url + "?n=150&widths=8,8&activation=tanh")
    page.wait_for_function("window.playground.lastFrame && window.playground.lastFrame.layers.boundary")
    assert frame_value(page, "f.layers.boundary.sampled") is True
    assert "sampled" in page.inner_text("#lg-boundary-text")


@pytest.mark.parametrize("dataset", ["moons", "circles", "xor", "spirals"])
def test_default_view_screenshots(page, dataset):
    page.goto(page.base_url + f"?dataset={dataset}&lr=0.03")
    page.wait_for_function(FIRST_FRAME)
    page.click("#play")
    page.wait_for_function("window.playground.lastFrame && window.playground.lastFrame.meta.epoch >= 30")
    page.click("#play")
    page.wait_for_function("!window.playground.lastFrame.meta.playing")
    assert page.locator("#class-key .key-item").count() == 2
    assert frame_value(page, "f.layers.boundary.segments.length") > 0
    shot(page, f"default-{dataset}")


def test_network_panel_thumbnails_and_buttons_keep_widths_in_sync(page):
    page.goto(page.base_url + "?n=100&depth=2&widths=8,40")
    page.wait_for_function("window.playground.lastFrame && window.playground.lastFrame.layers.units")
    page.wait_for_function("document.querySelectorAll('#net-layers .net-layer').length === 2")
    page.wait_for_function("document.querySelector('#net-layers .net-tiles').dataset.shown === '8'")
    counts = page.evaluate("[...document.querySelectorAll('#net-layers .net-tiles')].map(c => +c.dataset.shown)")
    assert counts == [8, 32] and "+8 more" in page.inner_text("#net-layers")
    page.click("#net-layers .net-layer:nth-child(1) .unit-add")
    page.wait_for_function("window.playground.data.config.widths.join() === '9,40'")
    page.click("#layer-add")
    page.wait_for_function("window.playground.data.config.widths.join() === '9,40,40'")
    assert page.input_value("#depth") == "3" and "widths=9%2C40%2C40" in page.url
    page.click("#net-layers .net-layer:nth-child(2) .unit-remove")
    page.wait_for_function("window.playground.data.config.widths.join() === '9,39,40'")
    page.click("#layer-remove")
    page.wait_for_function("window.playground.data.config.widths.join() === '9,39'")
    assert page.input_value("#widths") == "9,39" and page.input_value("#depth") == "2"


def test_input_features_travel_in_the_url(page):
    page.goto(page.base_url + "?dataset=circles&n=150&widths=8&depth=1&features=x1^2,x2^2")
    page.wait_for_function("window.playground.lastFrame && window.playground.lastFrame.layers.boundary")
    assert page.evaluate("window.playground.data.config.features") == ["x1^2", "x2^2"]
    assert page.is_checked("[data-feature='x1^2']") and not page.is_checked("[data-feature='x1']")
    assert frame_value(page, "f.layers.boundary.sampled") is True
    page.check("[data-feature='x1']")
    page.wait_for_function("window.playground.data.config.features.length === 3")
    from urllib.parse import parse_qs, urlsplit

    page.wait_for_function("location.search.includes('features=x1%2C')")
    assert parse_qs(urlsplit(page.url).query)["features"] == ["x1,x1^2,x2^2"]


def test_wheel_zoom_and_double_click_reset(page):
    page.goto(page.base_url + "?n=100&widths=8,8")
    page.wait_for_function(FIRST_FRAME)
    full = page.evaluate("window.playground.data.window")
    box = page.locator("#view").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.wheel(0, -100)  # zoom in about the centre
    page.wait_for_function("window.playground.lastFrame.window[1] - window.playground.lastFrame.window[0] < "
                           f"0.9 * {full[1] - full[0]}")
    assert "v_window=" in page.url and "v_window=&" not in page.url
    page.dblclick("#view")
    page.wait_for_function(f"window.playground.lastFrame.window[0] === {full[0]}")


def test_relu_volume_is_drawn_per_region(page):
    page.goto(page.base_url + "?n=200&widths=16,16&v_heatmap=volume&v_metric_layer=2")
    page.wait_for_function("window.playground.lastFrame && window.playground.lastFrame.layers.region_volume")
    n_values = frame_value(page, "f.layers.region_volume.log_volume.length")
    assert n_values == frame_value(page, "f.layers.regions.n_regions")
    shot(page, "relu-volume")


def test_link_with_weights_reopens_the_same_net(page):
    page.goto(page.base_url + "?n=100&widths=8,8&lr=0.05")
    page.wait_for_function(FIRST_FRAME)
    page.click("#step")
    page.click("#step")
    page.wait_for_function("window.playground.lastFrame.meta.epoch === 2")
    page.click("#share-weights")
    page.wait_for_function("location.hash.startsWith('#w=')")
    link, loss = page.url, frame_value(page, "f.meta.metrics.loss")
    page.goto("about:blank")
    page.goto(link)
    page.wait_for_function("window.playground.lastFrame && window.playground.lastFrame.meta.from_link")
    assert abs(frame_value(page, "f.meta.metrics.loss") - loss) <= 1e-6 * max(1.0, abs(loss))
    assert "#w=" not in page.url  # applied once, not again on a reconnect


def test_the_page_shows_why_the_server_closed_the_connection(page):
    page.goto(page.base_url)
    page.wait_for_function(FIRST_FRAME)
    # JSON nested past the parser's depth: the server closes with code 1007 and a reason
    page.evaluate("window.playground.ws.send('['.repeat(200000) + ']'.repeat(200000))")
    page.wait_for_function("document.getElementById('error').textContent.includes('nested too deeply')")
    assert page.is_visible("#error")
    assert "The server closed the connection" in page.text_content("#error")
    # the page reconnects by itself and keeps saying why until the next data set
    page.wait_for_function("window.playground.connected && window.playground.data !== null")
    page.wait_for_function(FIRST_FRAME)
