"""A trap: an HTTP server in the checking process that counts every connection made to it.

`kgpub check` names the trap's URL in SERVICE, LOAD, FROM, FROM NAMED, DESCRIBE and the
protocol's dataset parameters; a deployment that fetches what a query names connects here.
It answers any request with a small Turtle document, so that a fetch which succeeded would
also show in the query's answer. On loopback by default: the check is then meaningful for a
deployment on the same machine; for another, give an address it can reach (--trap-host).
"""

from __future__ import annotations

import select
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from graph.formats import TURTLE

BAIT = b"<http://trap.invalid/s> <http://trap.invalid/p> <http://trap.invalid/o> .\n"


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int]) -> None:
        super().__init__(address, _Handler)
        self.connections = 0
        self.requests: list[str] = []
        self.lock = threading.Lock()

    def get_request(self) -> tuple[socket.socket, Any]:
        accepted = super().get_request()
        with self.lock:
            self.connections += 1
        return accepted


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    timeout = 5

    def _answer(self) -> None:
        with self.server.lock:
            self.server.requests.append(f"{self.command} {self.path}")
        self.send_response(200)
        self.send_header("Content-Type", TURTLE.media_type)
        self.send_header("Content-Length", str(len(BAIT)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(BAIT)

    do_GET = do_POST = do_HEAD = _answer  # noqa: N815  (http.server's method names)

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: what it saw is counted, not printed."""


class Trap:
    """The trap server on host (a free port), in a thread; a context manager."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self._server = _Server((host, 0))
        port = self._server.server_address[1]
        name = f"[{host}]" if ":" in host else host
        self.url = f"http://{name}:{port}/"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> Trap:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def settle(self) -> int:
        """The connections made so far, once none waits in the accept queue (up to 2 s)."""
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            readable, _, _ = select.select([self._server.socket], [], [], 0)
            if not readable:
                break
            time.sleep(0.05)
        with self._server.lock:
            return self._server.connections

    @property
    def requests(self) -> list[str]:
        with self._server.lock:
            return list(self._server.requests)
