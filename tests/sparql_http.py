"""Raw HTTP for the SPARQL tests (exact methods, headers, bytes) and a loopback listener."""

from __future__ import annotations

import http.client
import select
import socket
import threading
from urllib.parse import urlencode, urlsplit

import pyoxigraph
from fetch import Reply


def call(
    base: str,
    method: str = "GET",
    params: list[tuple[str, str]] | None = None,
    body: bytes | str | None = None,
    headers: dict[str, str] | None = None,
    path: str = "sparql",
) -> Reply:
    """Send one request to base + path (+ ?params) and read the whole response."""
    parts = urlsplit(base)
    target = parts.path + path + ("?" + urlencode(params) if params else "")
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=60)
    try:
        data = body.encode("utf-8") if isinstance(body, str) else body
        conn.putrequest(method, target, skip_accept_encoding=True)
        for name, value in (headers or {}).items():
            conn.putheader(name, value)
        if data is not None:
            conn.putheader("Content-Length", str(len(data)))
        conn.endheaders(data)
        response = conn.getresponse()
        return Reply(response.status, response.headers, response.read())
    finally:
        conn.close()


def query(
    base: str, text: str, accept: str | None = None, method: str = "GET", **extra: str
) -> Reply:
    """A query by GET (query=) or POST (form), with an optional Accept header."""
    headers = {"Accept": accept} if accept else {}
    params = [("query", text), *extra.items()]
    if method == "GET":
        return call(base, "GET", params, headers=headers)
    headers["Content-Type"] = "application/x-www-form-urlencoded"
    return call(base, "POST", body=urlencode(params), headers=headers)


def solutions(reply: Reply) -> list[dict[str, str]]:
    """The rows of a SPARQL JSON/XML/TSV answer as {variable: value-as-text}."""
    fmt = pyoxigraph.QueryResultsFormat.from_media_type(reply.media_type)
    assert fmt is not None, reply.media_type
    parsed = pyoxigraph.parse_query_results(reply.body, format=fmt)
    assert isinstance(parsed, pyoxigraph.QuerySolutions), parsed
    names = [v.value for v in parsed.variables]
    return [
        {n: str(getattr(s[n], "value", s[n])) for n in names if s[n] is not None} for s in parsed
    ]


def boolean(reply: Reply) -> bool:
    """The answer of an ASK in SPARQL JSON or XML."""
    fmt = pyoxigraph.QueryResultsFormat.from_media_type(reply.media_type)
    assert fmt is not None, reply.media_type
    parsed = pyoxigraph.parse_query_results(reply.body, format=fmt)
    assert isinstance(parsed, pyoxigraph.QueryBoolean), parsed
    return bool(parsed)


class Listener:
    """A TCP listener on 127.0.0.1 that counts (and drops) every connection made to it."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.setblocking(False)
        self.port = int(self.sock.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}/"
        self.connections = 0
        self._lock = threading.Lock()
        self._closed = False
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        """Accept and drop every pending connection; the caller holds the lock."""
        while True:
            try:
                conn, _ = self.sock.accept()
            except BlockingIOError:
                return
            self.connections += 1
            conn.close()

    def _serve(self) -> None:
        # A client that connected waits for an answer: closing its connection soon lets it
        # fail instead of hanging.
        while True:
            with self._lock:
                if self._closed:
                    return
                self._drain()
            try:
                select.select([self.sock], [], [], 0.05)
            except (OSError, ValueError):  # closed meanwhile
                return

    def settle(self) -> int:
        """The number of connections made so far, those still in the accept queue included:
        exact once the clients have returned, however slowly this thread was scheduled."""
        with self._lock:
            self._drain()
            return self.connections

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self.sock.close()
        self._thread.join()
