"""Responsiveness of the playground: frames per second over the websocket while training plays.

Starts ``netatlas serve`` in a subprocess (or uses --url), sends a config (default: 2-32-32-2 ReLU
net on 500 moons points), presses play, and acknowledges every frame as soon as it arrives (a page
that draws instantly), for --seconds seconds. Prints updates/s, epochs/s and the server's geometry
time per frame. Run with ``taskset -c 0,1`` to pin it to 2 cores::

    python benchmarks/app.py --seconds 20
    python benchmarks/app.py --seconds 20 --view '{"heatmap": "volume"}'
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
        hello = json.loads(await ws.recv())
        assert hello["type"] == "hello", hello
        await ws.send(json.dumps({"type": "config", "config": config, "view": view}))
        while True:
            msg = json.loads(await ws.recv())
            if msg["type"] == "error":
                raise SystemExit(f"server error: {msg['message']}")
            if msg["type"] == "data":
                break
        while True:  # warm-up, not timed: the first frame may compile the regions kernels (numba)
            msg = json.loads(await ws.recv())
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
            msg = json.loads(text)
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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--url", default=None, help="an already running server, e.g. http://127.0.0.1:8765/")
    parser.add_argument("--config", default="{}", help="JSON settings over the default 2-32-32-2 ReLU, 500 moons")
    parser.add_argument("--view", default="{}", help="JSON view options (which layers are computed)")
    parser.add_argument("--workers", type=int, default=0, help="geometry worker processes (netatlas serve --workers)")
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
        result = asyncio.run(drive(url, args.seconds, config, view, server.pid if server else None))
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=10)
    cpus = len(os.sched_getaffinity(0))
    print(json.dumps({"config": config, "view": view, "workers": args.workers, "cpus": cpus, **result}, indent=2))


if __name__ == "__main__":
    main()
