"""The playground's web server: static page, one websocket per tab, model and report export.

Websocket protocol (JSON text messages, except frames)::

    page -> server   {"type": "config", "config": {...}, "view": {...}}     (re)build data + model
                     {"type": "upload", "name": "f.csv", "text": "x1,x2,label\\n..."}
                     {"type": "view", "view": {...}}                          what to draw (and the window)
                     {"type": "play"} | {"type": "pause"} | {"type": "step"} | {"type": "reset"}
                     {"type": "scrub", "index": i}                            show snapshot i
                     {"type": "ack", "frame": n}                              frame n is drawn
                     {"type": "get_weights"} | {"type": "weights", "data": b64}  share links with weights
    server -> page   {"type": "hello", "session": id, "defaults": ..., "limits": ..., "choices": ...,
                      "constants": ...}                                       what the page must agree on
                     {"type": "data", ...}                                    points, window, config
                     binary frame (netatlas.app._frames): {"type": "frame", "frame": n, "meta": {...},
                         "layers": {...}, "window": [...], "timing_ms": ...} with typed arrays
                     {"type": "notice", "message": text}                      e.g. a branch dropped history
                     {"type": "error", "field": name, "message": text}        shown inline
                     close frame (code, reason)                               a message too big (1009), JSON
                                                                              nested too deeply (1007), a
                                                                              server failure (1011): the page
                                                                              shows the reason

At most one frame is in flight per tab: the server sends the next frame only after the page
acknowledged the previous one, from the newest weights (computed while the page draws, and
recomputed if the page took long), so slow drawing drops frames instead of queueing them, and
training never waits.

Only the page's own origin may talk to the server (:mod:`netatlas.app._guard`): Host must name the
bound address and Origin, when sent, must be that same origin.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import dataclasses
import json
import logging
import multiprocessing
import secrets
import shutil
import socket
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import numpy as np
from fastapi import FastAPI, HTTPException, Request, WebSocket, WebSocketDisconnect
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.background import BackgroundTask

from netatlas.app._config import (
    DEFAULT_CONFIG,
    DEFAULT_VIEW,
    LIMITS,
    ConfigError,
    check_port,
    choices,
    parse_csv,
    validate_config,
    validate_view,
)
from netatlas.app._features import is_linear
from netatlas.app._frames import encode_frame
from netatlas.app._guard import SameOriginGuard
from netatlas.app._lenses import PAGE_CONSTANTS, compute_layers, window_partition
from netatlas.app._report import save_model, write_report
from netatlas.app._session import Session, tuning
from netatlas.report import to_jsonable

logger = logging.getLogger(__name__)

__all__ = ["create_app", "serve", "bind_socket", "MAX_SESSIONS", "MAX_MESSAGE_BYTES"]

STATIC = Path(__file__).parent / "static"
MAX_SESSIONS = 8  # open tabs at once; one more gets an inline error
MAX_MESSAGE_BYTES = 2_000_000  # websocket messages (the CSV limit plus JSON overhead)
MAX_REPORT_BYTES = 8_000_000  # the picture posted with a report request
CLOSE_TOO_BIG, CLOSE_BAD_DATA, CLOSE_SERVER_ERROR = 1009, 1007, 1011  # websocket close codes (RFC 6455)
MAX_CLOSE_REASON_BYTES = 123  # a close frame's payload is at most 125 bytes, 2 of them the code
CONSTANTS_PLACEHOLDER = "{/*netatlas-constants*/}"  # in static/index.html: replaced by page_constants()
FRAME_POLL_S = 0.004
PREFETCH_MAX_AGE_S = 0.08  # a frame computed ahead is sent only if the page acknowledged within this


def render_frame(frame, view: dict, number: int) -> bytes:
    """The frame message (binary, :mod:`netatlas.app._frames`) for a captured state: every layer the
    view asks for.

    Runs in a geometry worker process (or a thread with ``workers=0``)."""
    start = time.perf_counter()
    if view.get("window") is not None and frame.mode == "classify":  # zoomed or panned: geometry of that window
        frame = dataclasses.replace(frame, window=tuple(view["window"]))
    if frame.net is None and (frame.mode == "regress" or is_linear(frame.config["features"])):
        import netatlas.nets

        frame = dataclasses.replace(frame, net=netatlas.nets.from_torch(frame.model))
    layers = compute_layers(frame, view)
    message = {"type": "frame", "frame": number, "meta": to_jsonable(frame.meta), "layers": layers,
               "window": list(frame.window),
               "timing_ms": round(1000 * (time.perf_counter() - start), 1)}
    return encode_frame(message)


def _frame_in_thread(session: Session, view: dict, number: int) -> bytes:
    session.frame_busy = True  # the trainer yields the interpreter while this runs
    try:
        return render_frame(session.capture(), view, number)
    finally:
        session.frame_busy = False


def _worker_init() -> None:
    """A geometry worker: Ctrl-C is the server's business; one torch thread; kernels loaded early."""
    import signal

    import torch

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(1)
    _warm_up()


def _json_default(obj):
    if hasattr(obj, "tolist"):
        return obj.tolist()
    return str(obj)


class _Tab:
    """The state of one websocket connection."""

    def __init__(self, websocket, sessions: dict, pool=None):
        self.ws = websocket
        self.pool = pool  # a _Pool of geometry worker processes, or None (frames in a thread)
        self.sessions = sessions
        self.id = secrets.token_urlsafe(8)
        self.session: Session | None = None
        self.view = dict(DEFAULT_VIEW)
        self.view_version = 0
        self.ready = True
        self.frame_number = 0
        self.sent = (-1, -1)
        self.upload = None

    async def send(self, message: dict):
        await self.ws.send_text(json.dumps(message, allow_nan=False, default=_json_default))

    async def error(self, field: str, message: str):
        await self.send({"type": "error", "field": field, "message": message})

    def replace_session(self, session: Session | None):
        old, self.session = self.session, session
        if session is not None:
            self.sessions[self.id] = session
        else:
            self.sessions.pop(self.id, None)
        if old is not None:
            old.stop(wait=False)  # ends within one optimiser step; never block the event loop on a join
        self.sent = (-1, -1)

    async def frames(self):
        """Send a frame whenever the page is ready and something changed; never queue.

        While the page draws frame n, frame n+1 is computed from the newest weights and held; it goes
        out the moment the page acknowledges (server and page work side by side), unless by then it
        is older than PREFETCH_MAX_AGE_S (a slow page gets a freshly computed frame instead)."""
        held = None  # (state, session, message bytes, when computed)
        while True:
            await asyncio.sleep(FRAME_POLL_S)
            session = self.session
            if session is None:
                held = None
                continue
            if self.ready and held is not None:
                state, owner, data, made = held
                held = None
                if (owner is session and state[1] == self.view_version
                        and time.monotonic() - made <= PREFETCH_MAX_AGE_S):
                    await self._send_frame(session, state, data)
                    continue
            state = (session.version, self.view_version)
            if state == self.sent or (not self.ready and held is not None):
                continue
            data = await self._render(session, state)
            if data is None or session is not self.session:
                continue  # failed (the page was told), or rebuilt meanwhile
            if self.ready:
                await self._send_frame(session, state, data)
            else:
                held = (state, session, data, time.monotonic())

    async def _render(self, session: Session, state) -> bytes | None:
        self.frame_number += 1
        try:
            if self.pool is None:
                return await asyncio.to_thread(_frame_in_thread, session, dict(self.view), self.frame_number)
            session.frame_busy = True  # the trainer yields, so capture and sending keep pace
            try:
                frame = await asyncio.to_thread(session.capture, with_net=False)
                return await self.pool.run(render_frame, frame, dict(self.view), self.frame_number)
            finally:
                session.frame_busy = False
        except BrokenProcessPool:
            logger.error("a geometry worker died; starting a new one")
            self.pool.restart()
            self.sent = state
            await self.error("frame", "the geometry worker stopped (out of memory?) and was restarted; "
                             "try a smaller network")
        except Exception as exc:
            logger.exception("frame failed")
            self.sent = state
            await self.error("frame", f"could not compute the frame: {type(exc).__name__}: {exc}")
        return None

    async def _send_frame(self, session: Session, state, data: bytes):
        self.sent = state
        self.ready = False
        await self.ws.send_bytes(data)
        notice = session.take_notice()
        if notice:
            await self.send({"type": "notice", "message": notice})

    async def handle(self, message: dict):
        kind = message.get("type")
        if kind == "ack":
            self.ready = True
            return
        if kind == "view":
            self.view = self.checked_view(message.get("view", {}))
            self.view_version += 1
            return
        if kind == "upload":
            upload = await asyncio.to_thread(parse_csv, message.get("text"))
            self.upload = upload
            config = dict(self.session.config if self.session else DEFAULT_CONFIG)
            config.update({"mode": "classify", "dataset": "upload"})
            await self.rebuild(config)
            await self.send({"type": "uploaded", "name": str(message.get("name", ""))[:100], **upload.to_dict()})
            return
        if kind == "config":
            config = dict(message.get("config") or {})
            config.pop("upload", None)
            if "view" in message:
                view = validate_view(message["view"])
            await self.rebuild(config)
            if "view" in message:
                self.view = self.checked_view(view)
                self.view_version += 1
            return
        if kind in ("get_weights", "weights"):
            if self.session is None:
                raise ConfigError("weights", f"{kind}: no network yet; send a config first")
            if kind == "get_weights":  # float32, base64: what a share link carries
                flat = self.session.weights().astype("<f4")
                await self.send({"type": "weights", "n": int(flat.size),
                                 "data": base64.urlsafe_b64encode(flat.tobytes()).decode("ascii")})
                return
            data = message.get("data")
            try:
                raw = base64.urlsafe_b64decode(str(data))
                if len(raw) % 4:
                    raise ValueError
            except (ValueError, binascii.Error):
                raise ConfigError("weights", "weights: expected base64 of float32 values") from None
            try:
                await asyncio.to_thread(self.session.load_weights, np.frombuffer(raw, dtype="<f4"))
            except ValueError as exc:
                raise ConfigError("weights", str(exc)) from None
            return
        if kind in ("play", "pause", "step", "reset", "scrub"):
            if self.session is None:
                raise ConfigError("config", f"{kind}: no network yet; send a config first")
            if kind == "play":
                self.session.play()
            elif kind == "pause":
                self.session.pause()
            elif kind == "step":
                await asyncio.to_thread(self.session.step)
            elif kind == "reset":
                await self.rebuild(dict(self.session.config))
            else:
                index = message.get("index")
                if not isinstance(index, int) or isinstance(index, bool):
                    raise ConfigError("scrub", f"scrub: index must be a whole number, got {index!r}")
                try:
                    self.session.scrub(index)
                except ValueError as exc:
                    raise ConfigError("scrub", str(exc)) from None
            return
        raise ConfigError("message", f"unknown message type {kind!r}; expected one of config, upload, view, "
                          "play, pause, step, reset, scrub, ack, get_weights, weights")

    def checked_view(self, view) -> dict:
        """A validated view that also fits this tab's net (no metric of a layer it lacks)."""
        view = validate_view(view)
        if self.session is not None and self.session.mode == "classify":
            depth = len(self.session.config["widths"])
            if view["metric_layer"] > max(depth, 1):
                raise ConfigError("metric_layer", f"metric_layer: this network has {depth} hidden layer(s); "
                                  f"choose 1..{max(depth, 1)}")
        return view

    async def rebuild(self, config: dict):
        checked = validate_config({**config, "upload": self.upload.n_classes if self.upload is not None else False})
        upload = self.upload if checked["dataset"] == "upload" else None
        session = await asyncio.to_thread(Session, checked, upload)
        self.replace_session(session)
        self.ready = True
        await self.send(session.data_message())


class _Pool:
    """Geometry worker processes: frames are computed beside the training, not in its interpreter."""

    def __init__(self, workers: int):
        self.workers = workers
        self.executor = None

    def start(self):
        context = multiprocessing.get_context("spawn")  # never fork a process with threads
        self.executor = ProcessPoolExecutor(self.workers, mp_context=context, initializer=_worker_init)

    def restart(self):
        old = self.executor
        self.start()
        if old is not None:
            old.shutdown(wait=False, cancel_futures=True)

    async def run(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    def stop(self):
        if self.executor is not None:
            self.executor.shutdown(wait=True, cancel_futures=True)
            self.executor = None


def create_app(*, max_sessions: int = MAX_SESSIONS, workers: int = 0, host: str = "127.0.0.1",
               port: int | None = None):
    """The FastAPI application of the playground (serve it with uvicorn, or :func:`serve`).

    Parameters
    ----------
    max_sessions : int
        Open tabs served at once; one more gets an inline error.
    workers : int
        Processes computing the geometry of frames. 0 (default): a thread of the server process,
        sharing its interpreter with training (the trainer yields while a frame is computed; the
        fastest on 2 cores). 1 or more: separate processes, so that even a very slow frame never
        holds up the server (about a third fewer updates/s on 2 cores: pickling and IPC).
    host, port : str, int or None
        The bound address: requests must name it in their Host header and come from its own page
        (see :mod:`netatlas.app._guard`); ``port=None`` accepts any port.

    Examples
    --------
    >>> app = create_app()
    >>> sorted(r.path for r in app.routes if r.path.startswith("/api"))
    ['/api/export/model', '/api/export/report', '/api/options']
    """
    from contextlib import asynccontextmanager

    sessions: dict[str, Session] = {}
    pool = _Pool(workers) if workers > 0 else None

    @asynccontextmanager
    async def lifespan(app):
        if pool is not None:
            pool.start()  # each worker loads (or compiles) the regions kernels as it starts
        else:
            asyncio.get_running_loop().run_in_executor(None, _warm_up)
        yield
        live = [s for s in sessions.values() if s is not None]
        for session in live:  # Ctrl-C: stop every training thread (each ends within one step)
            session.stop(wait=False)
        for session in live:
            await asyncio.to_thread(session.stop)
        sessions.clear()
        if pool is not None:
            await asyncio.to_thread(pool.stop)
        if app.state.scratch is not None:
            shutil.rmtree(app.state.scratch, ignore_errors=True)

    app = FastAPI(title="netatlas playground", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.sessions = sessions
    app.state.scratch = None  # a private temp folder for exports, made on first use, removed at exit
    app.add_middleware(SameOriginGuard, host=host, port=port)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    def scratch_dir() -> Path:
        if app.state.scratch is None or not app.state.scratch.is_dir():
            app.state.scratch = Path(tempfile.mkdtemp(prefix="netatlas-serve-"))
        return Path(tempfile.mkdtemp(dir=app.state.scratch))

    @app.exception_handler(HTTPException)
    async def one_line(request: Request, exc: HTTPException):
        return PlainTextResponse(_one_line(exc.detail), status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError):
        problems = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}" for e in exc.errors())
        return PlainTextResponse(_one_line(f"{request.url.path}: bad request ({problems})"), status_code=400)

    @app.exception_handler(Exception)
    async def failed(request: Request, exc: Exception):  # never a 500 with a traceback
        logger.exception("request failed")
        return PlainTextResponse(_one_line(f"{request.url.path}: {type(exc).__name__}: {exc}"), status_code=400)

    @app.get("/", response_class=HTMLResponse)
    def index():
        html = (STATIC / "index.html").read_text(encoding="utf-8")
        return HTMLResponse(html.replace(CONSTANTS_PLACEHOLDER, _script_json(page_constants())))

    @app.get("/api/options")
    def options():
        return {"defaults": DEFAULT_CONFIG, "view": DEFAULT_VIEW, "limits": LIMITS, "constants": page_constants()}

    def _session(session_id: str) -> Session:
        session = sessions.get(session_id)
        if session is None:  # unknown, or a tab that has not built its network yet
            raise HTTPException(404, f"no open session {session_id!r}; reload the page")
        return session

    @app.get("/api/export/model")
    async def export_model(session: str):
        s = _session(session)
        frame = s.capture()
        folder = scratch_dir()
        path = folder / "netatlas-model.pt2"
        try:
            await asyncio.to_thread(save_model, frame, path)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return FileResponse(path, filename="netatlas-model.pt2", media_type="application/octet-stream",
                            background=BackgroundTask(shutil.rmtree, folder, ignore_errors=True))

    @app.post("/api/export/report")
    async def export_report(session: str, request: Request):
        s = _session(session)
        body = await _read_limited(request, MAX_REPORT_BYTES, "report: the picture is larger than 8 MB")
        image = None
        if body:
            try:
                payload = json.loads(body)
                data_url = str(payload.get("image") or "")
                if data_url.startswith("data:image/png;base64,"):
                    image = base64.b64decode(data_url.split(",", 1)[1], validate=True)
            except RecursionError:
                raise HTTPException(400, f"report: the JSON is nested deeper than {sys.getrecursionlimit()} "
                                    "levels; expected {\"image\": \"data:image/png;base64,...\"}") from None
            except (ValueError, binascii.Error, AttributeError):
                raise HTTPException(400, "report: expected JSON {\"image\": \"data:image/png;base64,...\"}") from None
        html = await asyncio.to_thread(write_report, s, image, scratch_dir())
        return Response(html, media_type="text/html",
                        headers={"Content-Disposition": 'attachment; filename="netatlas-report.html"'})

    @app.websocket("/ws")
    async def websocket(ws: WebSocket):
        await ws.accept()
        tab = _Tab(ws, sessions, pool)
        if len(sessions) >= max_sessions:
            await tab.error("tabs", f"too many open tabs: this server runs at most {max_sessions} sessions at "
                            "once; close another playground tab and reload")
            await ws.close(code=1013)
            return
        sessions[tab.id] = None  # reserve the slot
        await tab.send({"type": "hello", "session": tab.id, "defaults": DEFAULT_CONFIG, "view": DEFAULT_VIEW,
                        "limits": LIMITS, "choices": choices(), "constants": page_constants()})
        sender = asyncio.create_task(tab.frames())
        try:
            while True:
                received = await ws.receive()
                if received["type"] == "websocket.disconnect":
                    break
                text = received.get("text")
                if text is None:
                    await tab.error("message", "binary websocket messages are not accepted; send JSON text "
                                    "messages such as {\"type\": \"play\"}")
                    continue
                if len(text) > MAX_MESSAGE_BYTES:
                    raise _Closing(CLOSE_TOO_BIG, f"message of {len(text):,} characters is above the limit of "
                                   f"{MAX_MESSAGE_BYTES:,}")
                try:
                    message = json.loads(text)
                    if not isinstance(message, dict):
                        raise ValueError("expected a JSON object")
                except RecursionError:
                    raise _Closing(CLOSE_BAD_DATA, "message: the JSON is nested too deeply; send flat JSON "
                                   "objects such as {\"type\": \"play\"}") from None
                except ValueError as exc:
                    await tab.error("message", f"could not read the message: {exc}")
                    continue
                try:
                    await tab.handle(message)
                except ConfigError as exc:
                    await tab.error(exc.field, str(exc))
                except (ValueError, TypeError) as exc:
                    await tab.error(str(message.get("type", "message")), f"{type(exc).__name__}: {exc}")
                except Exception as exc:  # the server survives anything one tab sends
                    logger.exception("playground message failed")
                    await tab.error(str(message.get("type", "message")), f"{type(exc).__name__}: {exc}")
        except WebSocketDisconnect:
            pass
        except _Closing as closing:  # the page shows the reason of the close frame
            await _close(ws, closing.code, closing.reason)
        except RuntimeError as exc:  # sending on a socket the page has closed
            logger.debug("websocket closed: %s", exc)
        except Exception as exc:
            logger.exception("playground connection failed")
            await _close(ws, CLOSE_SERVER_ERROR, f"server error: {type(exc).__name__}: {exc}")
        finally:
            sender.cancel()
            tab.replace_session(None)  # its training thread ends within one optimiser step
            sessions.pop(tab.id, None)

    return app


class _Closing(Exception):  # noqa: N818 - control flow: close this websocket with a code and a reason
    def __init__(self, code: int, reason: str):
        super().__init__(reason)
        self.code, self.reason = code, reason


async def _close(ws: WebSocket, code: int, reason: str) -> None:
    """Close with a close frame whose reason (at most 123 bytes of UTF-8) the page shows."""
    data = _one_line(reason).encode("utf-8")[:MAX_CLOSE_REASON_BYTES]
    try:
        await ws.close(code=code, reason=data.decode("utf-8", "ignore"))
    except RuntimeError:  # already closed by the page
        pass


def _one_line(text) -> str:
    return " ".join(str(text).split())[:500]


def page_constants() -> dict:
    """What the page must agree on with the server, sent to it once (in the page and in ``hello``)."""
    return {"config_keys": list(DEFAULT_CONFIG), "view_keys": list(DEFAULT_VIEW),
            "max_upload_bytes": LIMITS["csv_bytes"], "max_depth": LIMITS["depth"][1], **PAGE_CONSTANTS}


def _script_json(value) -> str:
    # inside <script>, "</" would end the element: JSON allows "<" written as \u003c
    return json.dumps(value).replace("<", "\\u003c")


async def _read_limited(request: Request, limit: int, message: str) -> bytes:
    """The request body, refused (413) as soon as it is known to pass ``limit`` bytes: from its
    Content-Length before reading anything, else while streaming it."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise HTTPException(400, f"bad Content-Length {declared[:30]!r}")
        if int(declared) > limit:
            raise HTTPException(413, message)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(413, message)
        chunks.append(chunk)
    return b"".join(chunks)


def _warm_up() -> None:
    try:
        import netatlas.nets

        net = netatlas.nets.from_torch(netatlas.nets.mlp([2, 4, 2], seed=0))
        window_partition(net, (-1.0, 1.0, -1.0, 1.0)).class_pieces()  # compiles (or loads) the kernels
    except Exception:  # only a warm-up: the page reports real failures
        logger.debug("warm-up failed", exc_info=True)


def bind_socket(host: str = "127.0.0.1", port: int = 8765) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0 picks a free one); OSError says if it is taken."""
    check_port(port)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise OSError(f"serve: cannot listen on {host}:{port} ({exc.strerror}); pass another --port") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def make_server(sock: socket.socket, *, max_sessions: int = MAX_SESSIONS, workers: int = 0,
                log_level: str = "warning"):
    """A uvicorn Server for the playground on an already bound socket."""
    import uvicorn

    host, port = sock.getsockname()[:2]
    app = create_app(max_sessions=max_sessions, workers=workers, host=host, port=port)
    config = uvicorn.Config(app, log_level=log_level,
                            # twice the cap: between the two the server closes with its own reason;
                            # above, the websocket library closes with code 1009 and its reason
                            ws_max_size=2 * MAX_MESSAGE_BYTES + 1024, timeout_graceful_shutdown=3,
                            ws_ping_interval=20, ws_ping_timeout=20, lifespan="on")
    return uvicorn.Server(config)


def serve(host: str = "127.0.0.1", port: int = 8765, *, workers: int = 0, on_ready=None,
          log_level: str = "warning") -> None:
    """Run the playground until interrupted (Ctrl-C stops it cleanly).

    Parameters
    ----------
    host, port : str, int
        Where to listen; 127.0.0.1 (this machine only) by default. Port 0 picks a free port.
    workers : int
        Geometry worker processes (see :func:`create_app`).
    on_ready : callable, optional
        Called with the page's URL once the socket is bound (the CLI prints it).
    """
    import torch

    check_port(port)
    tuning()  # a bad NETATLAS_APP_YIELD is a one-line error now, not a failure in the first tab
    # The server is its own process: one intra-op thread per torch call. Tiny per-step tensors gain
    # nothing from more, and on a busy 2-core machine their spin-waits made epochs ~50x slower.
    torch.set_num_threads(1)
    sock = bind_socket(host, port)
    actual = sock.getsockname()[1]
    url_host = f"[{host}]" if ":" in host else host
    url = f"http://{url_host}:{actual}/"
    server = make_server(sock, workers=workers, log_level=log_level)
    if on_ready is not None:
        on_ready(url)
    logger.info("netatlas playground on %s", url)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
