"""Same-origin guard of the playground server: only its own page may drive it.

A web page the user happens to visit can open a websocket to ``ws://127.0.0.1:8765`` (browsers do
not apply the same-origin policy to websockets) or POST to the API; with DNS rebinding it can even
make its requests look same-origin by pointing its own host name at 127.0.0.1. So every HTTP and
websocket request must

- name the server by an address it is bound to (the ``Host`` header: an IP literal, or
  ``localhost`` / this machine's name; any other name is a rebinding attempt), and
- when the browser says where the request comes from (``Origin``, ``Sec-Fetch-Site``), come from
  that same origin.

Requests without an ``Origin`` (command-line clients, top-level navigations) pass: the browser
always sends one for websockets and cross-site ``fetch``.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

__all__ = ["SameOriginGuard", "allowed_host_names"]

LOOPBACK_NAMES = ("localhost",)


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return False
    return True


def allowed_host_names(host: str) -> tuple[frozenset, bool]:
    """(names accepted in the Host header, whether any IP literal is accepted) for a bound address.

    >>> names, any_ip = allowed_host_names("127.0.0.1")
    >>> sorted(names), any_ip
    (['127.0.0.1', 'localhost'], False)
    """
    host = host.strip("[]").lower()
    names = {host, *LOOPBACK_NAMES}
    wildcard = host in ("0.0.0.0", "::", "")
    if wildcard or not (_is_ip(host) and ipaddress.ip_address(host).is_loopback):
        try:  # reachable from the network: this machine's own names too
            names |= {socket.gethostname().lower(), socket.getfqdn().lower()}
        except OSError:
            pass
    return frozenset(names), wildcard


def _split_host(value: str) -> tuple[str, int | None]:
    """('name', port or None) of a Host header value (IPv6 literals keep no brackets)."""
    parts = urlsplit("//" + value)
    try:
        port = parts.port
    except ValueError:
        port = -1  # an invalid port: never matches
    return (parts.hostname or "").lower(), port


class SameOriginGuard:
    """ASGI middleware refusing requests whose Host or Origin is not this server (403).

    Parameters
    ----------
    app : ASGI application
    host : str
        The address the server is bound to (``127.0.0.1``, ``::1``, ``0.0.0.0``, ...).
    port : int or None
        The bound port; None accepts any (an app not yet bound, as in unit tests).
    """

    def __init__(self, app, host: str = "127.0.0.1", port: int | None = None):
        self.app = app
        self.port = port
        self.names, self.any_ip = allowed_host_names(host)

    def refusal(self, headers: dict) -> str | None:
        """Why a request with these (lower-case) headers is refused, or None if it may pass."""
        raw_host = headers.get("host", "")
        name, port = _split_host(raw_host)
        if not name:
            return "the request has no Host header"
        if not (name in self.names or (self.any_ip and _is_ip(name))):
            return (f"Host {raw_host[:80]!r} is not this server (DNS rebinding?); open the playground by its IP "
                    "address or as localhost")
        if self.port is not None and port not in (self.port, None):
            return f"Host {raw_host[:80]!r} names another port"
        origin = headers.get("origin")
        if origin is not None:
            parts = urlsplit(origin)
            try:
                origin_port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
            except ValueError:
                origin_port = -1
            host_port = port or 80
            if (parts.scheme not in ("http", "https") or (parts.hostname or "").lower() != name
                    or origin_port != host_port):
                return f"cross-origin request from {origin[:80]!r} refused; open the playground's own page"
        if headers.get("sec-fetch-site") == "cross-site":
            return "cross-site request refused; open the playground's own page"
        return None

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        reason = self.refusal(headers)
        if reason is None:
            return await self.app(scope, receive, send)
        if scope["type"] == "websocket":
            await receive()  # websocket.connect; closing before accepting answers HTTP 403
            await send({"type": "websocket.close", "code": 1008, "reason": reason[:120]})
            return
        body = f"403 Forbidden: {reason}\n".encode()
        await send({"type": "http.response.start", "status": 403,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
