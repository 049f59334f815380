"""Responsiveness of the playground: updates per second that reach the page and are drawn.

Starts ``netatlas serve`` in a subprocess (or uses --url) and, by default, opens the page in a real
browser (Debian's /usr/bin/chromium driven by Playwright, headless): sets the config through the
share URL (default: 2-32-32-2 ReLU net on 500 moons points), presses play and counts, for --seconds
seconds, the frames the page decoded *and drew* (``window.playground.stats``), with the time the
page spent drawing each and the frame sizes. ``--no-browser`` drives the websocket from Python
instead (a page that draws instantly: the server's own rate). Run with ``taskset -c 0,1`` to pin it
to 2 cores::

    python benchmarks/app.py --seconds 20                                       # 2-32-32-2, browser
    python benchmarks/app.py --seconds 20 --config '{"widths": [64, 64, 64], "depth": 3}'  # ~12k regions
    python benchmarks/app.py --seconds 20 --no-browser --view '{"heatmap": "volume"}'
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time


def _message(raw) -> dict:
    """A server message: JSON text, or a binary frame (netatlas.app._frames)."""
    if isinstance(raw, bytes):
        from netatlas.app._frames import decode_frame

        return decode_frame(raw)
    return json.loads(raw)


def cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU time of a process (Linux /proc), or None."""
    if pid is None:
        return None
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def drive(url: str, seconds: float, config: dict, view: dict, pid: int | None = None) -> dict:
    import websockets

    async with websockets.connect(url.replace("http", "ws") + "ws", max_size=2**25) as ws:
        hello = _message(await ws.recv())
        assert hello["type"] == "hello", hello
        await ws.send(json.dumps({"type": "config", "config": config, "view": view}))
        while True:
            msg = _message(await ws.recv())
            if msg["type"] == "error":
                raise SystemExit(f"server error: {msg['message']}")
            if msg["type"] == "data":
                break
        while True:  # warm-up, not timed: the first frame may compile the regions kernels (numba)
            msg = _message(await ws.recv())
            if msg["type"] == "frame":
                await ws.send(json.dumps({"type": "ack", "frame": msg["frame"]}))
                break
        await ws.send(json.dumps({"type": "play"}))
        cpu_start = cpu_seconds(pid)
        frames, timings, epochs, sizes, layer_names, layer_ms = 0, [], [], [], set(), {}
        start = time.perf_counter()
        while time.perf_counter() - start < seconds:
            try:
                text = await asyncio.wait_for(ws.recv(), timeout=max(0.01, seconds - (time.perf_counter() - start)))
            except TimeoutError:
                break
            msg = _message(text)
            if msg["type"] != "frame":
                continue
            await ws.send(json.dumps({"type": "ack", "frame": msg["frame"]}))
            if not msg["meta"]["playing"]:
                continue
            frames += 1
            timings.append(msg["timing_ms"])
            epochs.append(msg["meta"]["epoch"])
            sizes.append(len(text))
            layer_names |= {k for k, v in msg["layers"].items() if "unavailable" not in v and "error" not in v}
            for k, v in msg["layers"].items():
                for key in ("ms", "partition_ms"):
                    if key in v:
                        layer_ms.setdefault(k if key == "ms" else "partition", []).append(v[key])
            last = msg
        elapsed = time.perf_counter() - start
        cpu = cpu_seconds(pid)
        cpu = None if cpu is None or cpu_start is None else cpu - cpu_start
        await ws.send(json.dumps({"type": "pause"}))
    regions = last["layers"].get("regions", {}) if frames else {}
    return {
        "updates_per_s": frames / elapsed,
        "epochs_per_s": (epochs[-1] - epochs[0]) / elapsed if len(epochs) > 1 else 0.0,
        "geometry_ms_median": statistics.median(timings) if timings else None,
        "frame_kb_median": statistics.median(sizes) / 1024 if sizes else None,
        "n_regions_last": regions.get("n_regions"),
        "layers_drawn": sorted(layer_names),
        "layer_ms_median": {k: statistics.median(v) for k, v in sorted(layer_ms.items())},
        "seconds": elapsed,
        "frames": frames,
        # CPU time the server used (training + geometry + I/O): on a machine where it is not competing
        # with other processes, one interpreter's worth of CPU gives about frames / server_cpu_s updates/s
        "server_cpu_s": cpu,
        "server_cpu_share": cpu / elapsed if cpu is not None else None,
        "updates_per_server_cpu_s": frames / cpu if cpu else None,
    }


CHROMIUM = "/usr/bin/chromium"


def drive_browser(url: str, seconds: float, config: dict, view: dict, pid: int | None = None) -> dict:
    """Updates/s drawn by the real page: Playwright + chromium, the settings in the share URL."""
    from urllib.parse import urlencode

    from playwright.sync_api import sync_playwright

    query = {k: ",".join(map(str, v)) if isinstance(v, list) else v for k, v in config.items()}
    query.update({f"v_{k}": ("1" if v is True else "0" if v is False else v) for k, v in view.items()})
    args = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=args)
        page = browser.new_page(viewport={"width": 1260, "height": 860})
        page.set_default_timeout(120_000)
        page.goto(url + "?" + urlencode(query))
        page.wait_for_function("window.playground.lastFrame !== null")
        page.click("#play")
        page.wait_for_function("window.playground.stats.frames >= 1")
        start_frames = page.evaluate("window.playground.stats.frames")
        start_epoch = page.evaluate("window.playground.lastFrame.meta.epoch")
        cpu_start = cpu_seconds(pid)
        start = time.perf_counter()
        time.sleep(seconds)
        stats = page.evaluate("(() => { const s = window.playground.stats, f = window.playground.lastFrame; "
                              "return {frames: s.frames, draw: s.drawMs.slice(-500), bytes: s.bytes.slice(-500), "
                              "epoch: f.meta.epoch, timing: f.timing_ms, "
                              "regions: f.layers.regions ? f.layers.regions.n_regions : null}; })()")
        elapsed = time.perf_counter() - start
        cpu = cpu_seconds(pid)
        page.click("#play")
        browser.close()
    frames = stats["frames"] - start_frames
    return {
        "updates_per_s_in_page": frames / elapsed,
        "epochs_per_s": (stats["epoch"] - start_epoch) / elapsed,
        "page_draw_ms_median": statistics.median(stats["draw"]) if stats["draw"] else None,
        "frame_kb_median": statistics.median(stats["bytes"]) / 1024 if stats["bytes"] else None,
        "geometry_ms_last": stats["timing"],
        "n_regions_last": stats["regions"],
        "seconds": elapsed,
        "frames": frames,
        "server_cpu_s": None if cpu is None or cpu_start is None else cpu - cpu_start,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--url", default=None, help="an already running server, e.g. http://127.0.0.1:8765/")
    parser.add_argument("--config", default="{}", help="JSON settings over the default 2-32-32-2 ReLU, 500 moons")
    parser.add_argument("--view", default="{}", help="JSON view options (which layers are computed)")
    parser.add_argument("--workers", type=int, default=0, help="geometry worker processes (netatlas serve --workers)")
    parser.add_argument("--no-browser", action="store_true", help="drive the websocket from Python instead of "
                        "a real page (the server's own rate)")
    args = parser.parse_args(argv)
    config = {"dataset": "moons", "n": 500, "depth": 2, "widths": [32, 32], "activation": "relu",
              "batch_size": 32, **json.loads(args.config)}
    view = json.loads(args.view)
    server = None
    url = args.url
    if url is None:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        command = [sys.executable, "-c", "from netatlas.cli import main; main()", "serve", "--port", str(port),
                   "--workers", str(args.workers)]
        server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                  env={**os.environ, "PYTHONUNBUFFERED": "1"})
        line = server.stdout.readline()
        if "http://" not in line:
            server.kill()
            raise SystemExit(f"server did not start: {line}{server.stdout.read()}")
        url = line.split()[2]
    try:
        pid = server.pid if server else None
        if args.no_browser or not os.path.exists(CHROMIUM):
            result = {"mode": "websocket (no browser)",
                      **asyncio.run(drive(url, args.seconds, config, view, pid))}
        else:
            result = {"mode": "chromium page", **drive_browser(url, args.seconds, config, view, pid)}
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=10)
    cpus = len(os.sched_getaffinity(0))
    load = os.getloadavg()[0]  # the machine is shared: say how busy it was
    print(json.dumps({"config": config, "view": view, "workers": args.workers, "cpus": cpus,
                      "load_average_1min": round(load, 2), **result}, indent=2))


if __name__ == "__main__":
    main()
