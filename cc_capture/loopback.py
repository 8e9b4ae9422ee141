"""Listening on this machine only: a free port on 127.0.0.1, and an HTTP server that binds a
loopback address (refusing any other) and serves in a thread while used as a context manager.

The one home of both, for the library (calibrate's Messages API recorder, `ccd browse`'s port) and
the tests' doubles (Ollama's API, ports nothing listens on). `http.server` is imported only when a
server is made, so finding a free port stays cheap.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from http.server import BaseHTTPRequestHandler

HOST = "127.0.0.1"
Served = TypeVar("Served", bound="LoopbackServer")


class NotLoopback(ValueError):
    """An address outside this machine was asked for: cc-capture listens on loopback only."""


def check_loopback(host: str) -> None:
    """NotLoopback unless `host` is an IPv4 loopback address (127.0.0.0/8): what cc-capture listens on."""
    try:
        loopback = ipaddress.IPv4Address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise NotLoopback(f"{host!r} is not an IPv4 loopback address (such as {HOST}): cc-capture listens on "
                          "this machine only")


def free_port() -> int:
    """A port nothing listens on now on 127.0.0.1 (the OS picks it), for a server started elsewhere."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class LoopbackServer:
    """`with LoopbackServer(Handler) as server:` answers HTTP requests with `Handler` on `server.url`
    until the block ends. Bound when made, at `host` (a loopback address, else NotLoopback) on a port
    the OS picks, so the URL is known before serving starts. Each request is handled in
    a thread of its own; one still being answered when the block ends does not hold it up. A
    subclass (a recorder, a test double) passes its handler class to `__init__`."""

    def __init__(self, handler: type[BaseHTTPRequestHandler], host: str = HOST) -> None:
        from http.server import ThreadingHTTPServer

        check_loopback(host)
        self.server = ThreadingHTTPServer((host, 0), handler)
        self.server.daemon_threads = True
        self.port: int = self.server.server_address[1]
        self.url = f"http://{host}:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, name=f"loopback-{self.port}", daemon=True)

    def __enter__(self: Served) -> Served:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()
