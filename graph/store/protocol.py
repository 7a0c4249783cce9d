"""A typed SPARQL 1.1 client over HTTP (stdlib only): queries by the Protocol, SPARQL Update and
the Graph Store HTTP Protocol, with basic or digest authentication and a time budget on every call.

Measured against Virtuoso 7.2 (Debian's virtuoso-opensource), whose quirks shape it:
- A body sent with chunked transfer coding is silently dropped (201 Created, nothing stored), so
  every body carries a Content-Length: a file is measured, an iterable of chunks spooled first.
- Its authenticated endpoints use digest authentication; a body sent before the challenge goes
  out twice, so a large body waits until the endpoint's challenge is known (a HEAD first).
- Its own time budget (the `timeout` parameter, "anytime" queries) answers 200 with incomplete
  results flagged only by `X-SQL-State: S1TAT`; a result cut at ResultSetMaxRows is flagged only
  by `X-SPARQL-MaxRows`. Both raise here: an answer that may be cut is never passed on as whole.
  A CONSTRUCT cut at ResultSetMaxRows carries no flag at all: keep that setting above every cap
  kgpub applies itself.
- JSON results name blank nodes "nodeID://b10003" (no valid label) and use "typed-literal".

Queries go over persistent connections (RFC 9112 §9.3, HTTP/1.1 keep-alive; a pool per process,
shared by its threads): a new TCP connection per query cost Virtuoso a thread start and the
client a handshake on every page view. Their exchange is this module's own, on a socket, as
RFC 9112 says (_Connections says why and what it reads). A query is read-only, so one sent on
a connection the store had closed meanwhile (Virtuoso's KeepAliveTimeout, 10 s as packaged) is
sent once more on a new one. A query endpoint that asks for credentials is asked from then on
through urllib, as are updates and Graph Store requests, rare and large (authentication).

Credentials are given to the client (the server's settings read them) and never appear in a
message, a repr or an exception's cause. Untrusted queries (`raw`) never authenticate.
"""

from __future__ import annotations

import contextlib
import email.message
import functools
import hashlib
import http.client
import io
import itertools
import json
import os
import re
import socket
import ssl
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Any, NamedTuple, cast

import pyoxigraph

from graph.errors import StoreError, StoreUnavailable
from graph.formats import (
    NTRIPLES,
    RDF_FORMATS,
    SPARQL_RESULTS_JSON,
    SPARQL_UPDATE,
    TURTLE,
)

Term = pyoxigraph.NamedNode | pyoxigraph.BlankNode | pyoxigraph.Literal
Solution = dict[str, Term]
# What put_graph and post_graph take: N-Triples as bytes, a file (path or binary file object),
# or an iterable of byte chunks.
Body = bytes | os.PathLike[str] | IO[bytes] | Iterable[bytes]

DEFAULT_TIMEOUT = 30.0
FORM = "application/x-www-form-urlencoded"
# N-Triples first: Virtuoso's Turtle writes an xsd:double as a bare `1.5`, which reads back as
# xsd:decimal. Older servers (Virtuoso before 7.2) label N-Triples text/plain.
CONSTRUCT_ACCEPT = f"{NTRIPLES.media_type}, text/plain;q=0.9, {TURTLE.media_type};q=0.8"
RDF_PARSERS: dict[str, pyoxigraph.RdfFormat] = {
    **{f.media_type: f.oxigraph for f in RDF_FORMATS},
    "text/plain": pyoxigraph.RdfFormat.N_TRIPLES,
    "text/ntriples": pyoxigraph.RdfFormat.N_TRIPLES,
}
BLOCK = 64 << 10
SPOOL_IN_MEMORY = 8 << 20  # an iterable body is spooled to disk past this size
PROBE_ABOVE = 64 << 10  # a body larger than this is never sent into an authentication challenge
# Triples per INSERT DATA when the store has no Graph Store endpoint. Virtuoso refuses ~1,500
# ("generated SQL text has exceeded 10000 lines"); 250-500 is its fastest (4k-12k triples/s).
INSERT_BATCH = 500
SERVER_MARGIN = 2.0  # seconds; see server_budget_ms
SERVER_MINIMUM_MS = 1000
EXCERPT = 300  # characters of a store's error body kept in a message
VIRTUOSO_BNODE = "nodeID://"


class RawAnswer(NamedTuple):
    """A store's answer to a forwarded query: status, media type and the body, unread (the caller
    reads and closes it)."""

    status: int
    content_type: str
    body: IO[bytes]


def server_budget_ms(budget: float) -> int:
    """The budget sent to the store, in milliseconds: SERVER_MARGIN less than the local one, as
    Virtuoso stops an "anytime" query only at the next multiple of 2 s (measured: 100 ms and 2 s
    both answer after 2.0 s, 3 s after 4.0 s), so that its flagged answer comes before ours."""
    return max(SERVER_MINIMUM_MS, int((budget - SERVER_MARGIN) * 1000))


def out_of_time(status: int, said: str) -> bool:
    """Whether a store's 5xx answer says it ran out of time, not that it failed: a gateway's
    502/503/504, or Virtuoso's 500 with SQL state S1T00 (its transaction timeout) or SR203 (a
    statement its own "anytime" budget killed instead of cutting its results short, as it
    does for some plans: openlink/virtuoso-opensource#983; seen here for a COUNT)."""
    return status in (502, 503, 504) or (status >= 500 and ("S1T00" in said or "SR203" in said))


def iri_ref(iri: str) -> str:
    """`<iri>` for a query text, once pyoxigraph accepts it as an IRI (so nothing can break out of
    the brackets); ValueError otherwise."""
    return str(pyoxigraph.NamedNode(iri))


@functools.lru_cache(maxsize=64)  # a client's few endpoints, shown in every error it raises
def show_url(url: str) -> str:
    """A URL as it may appear in a message: no user information, no query string."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))


@dataclass
class _Response:
    """One HTTP answer, whatever its status; headers with lowercase names."""

    status: int
    headers: dict[str, str]
    body: IO[bytes]

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")

    @property
    def media_type(self) -> str:
        return self.content_type.split(";", 1)[0].strip().lower()

    def close(self) -> None:
        self.body.close()


class _Replayable:
    """A request body of known length read from a seekable file, sent again from its start if an
    authentication challenge makes urllib send the request twice."""

    def __init__(self, file: IO[bytes], start: int, length: int) -> None:
        self.file, self.start, self.length = file, start, length

    def rewound(self) -> IO[bytes]:
        """The file at the body's start (read to its end, for a parser)."""
        self.file.seek(self.start)
        return self.file

    def __iter__(self) -> Iterator[bytes]:
        self.file.seek(self.start)
        left = self.length
        while left > 0:
            block = self.file.read(min(BLOCK, left))
            if not block:
                return
            left -= len(block)
            yield block


class _DigestAuth(urllib.request.HTTPDigestAuthHandler):
    """Digest authentication (RFC 7616) that, once an endpoint has challenged, answers its next
    requests with that challenge at once (a new nonce count, §3.4.5), so each body is sent once."""

    def __init__(self, passwords: urllib.request.HTTPPasswordMgr) -> None:
        super().__init__(passwords)
        self.challenges: dict[str, dict[str, str]] = {}

    def get_authorization(self, req: urllib.request.Request, chal: Mapping[str, str]) -> str | None:
        self.challenges[_endpoint(req.full_url)] = dict(chal)
        auth: str | None = super().get_authorization(req, chal)
        return auth

    def http_request(self, req: urllib.request.Request) -> urllib.request.Request:
        chal = self.challenges.get(_endpoint(req.full_url))
        if chal is not None and not req.has_header("Authorization"):
            auth = super().get_authorization(req, chal)
            if auth:
                req.add_unredirected_header("Authorization", f"Digest {auth}")
        return req

    https_request = http_request

    def http_error_401(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: email.message.Message,
    ) -> Any:
        return _closing_challenge(super().http_error_401, req, fp, code, msg, headers)


class _BasicAuth(urllib.request.HTTPBasicAuthHandler):
    """Basic authentication (RFC 7617), sent unasked once accepted (with PriorAuth)."""

    def http_error_401(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: email.message.Message,
    ) -> Any:
        return _closing_challenge(super().http_error_401, req, fp, code, msg, headers)


def _closing_challenge(
    answer: Callable[..., Any],
    req: urllib.request.Request,
    fp: IO[bytes],
    code: int,
    msg: str,
    headers: email.message.Message,
) -> Any:
    """Answer a 401 and close the challenge's own response once it is answered (urllib leaves
    that socket open); an unanswered one stays open, as the error that carries it."""
    try:
        retry = answer(req, fp, code, msg, headers)
    except BaseException:
        fp.close()
        raise
    if retry is not None:
        fp.close()
    return retry


def _endpoint(url: str) -> str:
    return url.split("?", 1)[0]


# Idle connections kept per store origin (Virtuoso bounds those it keeps open by MaxKeepAlives,
# 10 as packaged: one it has closed is replaced on its next use).
IDLE_CONNECTIONS = 8
_Origin = tuple[str, str, int | None]  # scheme, host, port
# A connection the store closed while it was idle fails this way when it is used again: the
# request cannot be sent, or the connection ends before the first byte of an answer
# (http.client.RemoteDisconnected is both a ConnectionResetError and a BadStatusLine).
_STALE = (ConnectionResetError, BrokenPipeError, ConnectionAbortedError, http.client.BadStatusLine)
# Limits on an answer's head, as http.client's: bytes of a line, field lines.
MAX_LINE = 65536
MAX_FIELDS = 100
# How a body's end is found (RFC 9112 §6.3), besides a length.
CHUNKED = -1
UNTIL_CLOSE = -2
_STATUS_LINE = re.compile(r"HTTP/([0-9])\.([0-9]) ([1-9][0-9][0-9])(?: .*)?", re.DOTALL)
_CHUNK_SIZE = re.compile(rb"([0-9A-Fa-f]+)[ \t]*(?:;[^\r\n]*)?\r?\n")
_UNSAFE_HEADER = re.compile(r"[\r\n\0]")


class _Target(NamedTuple):
    """What each request to one URL shares: its origin, path, Host field and shown name."""

    origin: _Origin
    path: str
    host: str  # the Host field (RFC 9110 §7.2)
    endpoint: str


@functools.lru_cache(maxsize=64)
def _target(url: str) -> _Target:
    parts = urllib.parse.urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    if re.search(r"[\x00-\x20\x7f]", path):  # as http.client refuses: it would split the line
        raise StoreError(show_url(url), "a URL with spaces or control characters")
    host = parts.hostname or ""
    shown = f"[{host}]" if ":" in host else host
    default = 443 if parts.scheme == "https" else 80
    field = f"{shown}:{parts.port}" if parts.port and parts.port != default else shown
    return _Target((parts.scheme, host, parts.port), path, field, show_url(url))


@functools.cache
def _tls() -> ssl.SSLContext:
    """The TLS settings of an https store: the system's trusted certificates, as http.client."""
    context = ssl.create_default_context()
    context.set_alpn_protocols(["http/1.1"])
    return context


QUICKACK: int | None = getattr(socket, "TCP_QUICKACK", None)  # Linux only


class _Connection:
    """One HTTP/1.1 connection to a store: its socket, and a buffered reader of its answers."""

    __slots__ = ("reader", "sock", "timeout")

    def __init__(self, origin: _Origin, timeout: float) -> None:
        scheme, host, port = origin
        sock = socket.create_connection(
            (host, port or (443 if scheme == "https" else 80)), timeout=timeout
        )
        try:
            # The request goes out in one segment: nothing to wait for (as http.client).
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if scheme == "https":
                sock = _tls().wrap_socket(sock, server_hostname=host)
        except BaseException:
            sock.close()
            raise
        self.sock, self.timeout = sock, timeout
        self.reader = sock.makefile("rb")

    def ack_at_once(self) -> None:
        """Acknowledge the answer's segments as they come (Linux's TCP_QUICKACK, which the
        kernel turns off again by itself: so set before each answer). A store that writes an
        answer's head and then a body of less than a segment, with Nagle's algorithm on (as
        Virtuoso 7.2 does), holds the body until the head is acknowledged, and a delayed
        acknowledgement comes 40 ms later: every answer of 34-64 KB took 44 ms on loopback
        (bench/README.md, 2026-12-06)."""
        if QUICKACK is not None:
            with contextlib.suppress(OSError):  # a TLS socket over a transport without it
                self.sock.setsockopt(socket.IPPROTO_TCP, QUICKACK, 1)

    def settimeout(self, timeout: float) -> None:
        if timeout != self.timeout:
            self.sock.settimeout(timeout)
            self.timeout = timeout

    def close(self) -> None:
        self.reader.close()
        self.sock.close()


class _Connections:
    """Persistent HTTP/1.1 connections to one store (RFC 9112 §9.3), shared by a process's
    threads: a connection is taken for one exchange and given back once its answer has been
    read to its end.

    The exchange is this module's own, on a socket: http.client parsed each answer's head with
    the `email` package and sent a request in two segments: 0.13 ms of CPU per query, a third
    of SparqlReader.describe's in the web tier (bench/README.md, 2026-12-05). It sends a request
    whole in one write, and reads answers as RFC 9112 says a client reads them: the status line
    (§4), field lines (§5; obsolete folding unfolded, §5.2), 1xx interim answers skipped (RFC
    9110 §15.2), no body after HEAD, 204 or 304, a body framed by chunked coding, by
    Content-Length or by the connection's end (§6.3), and a connection kept only when both
    the version and Connection allow it (§9.3)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: dict[_Origin, list[_Connection]] = {}
        self._pid = os.getpid()

    def exchange(
        self,
        url: str,
        data: bytes,
        headers: Mapping[str, str],
        budget: float,
        method: str = "POST",
    ) -> _Response:
        """Send data to url; any HTTP status comes back as an answer, no answer raises."""
        target = _target(url)
        endpoint = target.endpoint
        request = _request(target, method, headers, data)
        while True:
            conn = self._take(target.origin)
            reused = conn is not None
            try:
                if conn is None:
                    conn = _Connection(target.origin, budget)
                else:
                    conn.settimeout(budget)
                conn.sock.sendall(request)
                conn.ack_at_once()
                status, fields, length, keep = _read_head(conn.reader, method)
            except TimeoutError as exc:
                _close(conn)
                raise StoreUnavailable(endpoint, f"no answer within {budget:g} s") from exc
            except _STALE as exc:
                _close(conn)
                if reused:
                    continue  # closed by the store while idle: a query can be sent again
                raise StoreUnavailable(
                    endpoint, f"connection failed: {type(exc).__name__}"
                ) from exc
            except ConnectionError as exc:
                _close(conn)
                raise StoreUnavailable(endpoint, f"cannot connect: {exc}") from exc
            except (OSError, http.client.HTTPException) as exc:
                _close(conn)
                raise StoreUnavailable(
                    endpoint, f"connection failed: {type(exc).__name__}"
                ) from exc
            give_back = functools.partial(self._give_back, target.origin, conn)
            body = _Body(conn, length, give_back if keep else None)
            return _Response(status, fields, cast(IO[bytes], body))

    def close(self) -> None:
        """Close the idle connections (one in use closes when its answer does)."""
        with self._lock:
            idle, self._idle = self._idle, {}
        if self._pid == os.getpid():
            for conns in idle.values():
                for conn in conns:
                    conn.close()

    def __del__(self) -> None:
        self.close()

    def _take(self, key: _Origin) -> _Connection | None:
        with self._lock:
            if self._pid != os.getpid():  # a forked worker: the parent's sockets are not ours
                self._idle, self._pid = {}, os.getpid()
            idle = self._idle.get(key)
            return idle.pop() if idle else None

    def _give_back(self, key: _Origin, conn: _Connection) -> None:
        with self._lock:
            idle = self._idle.setdefault(key, [])
            if self._pid != os.getpid() or len(idle) >= IDLE_CONNECTIONS:
                conn.close()
            else:
                idle.append(conn)


def _close(conn: _Connection | None) -> None:
    if conn is not None:
        conn.close()


def _request(target: _Target, method: str, headers: Mapping[str, str], data: bytes) -> bytes:
    """A request's bytes, head and body (RFC 9112 §3): sent in one write."""
    lines = [
        f"{method} {target.path} HTTP/1.1",
        f"Host: {target.host}",
        "Accept-Encoding: identity",  # the body as the store has it (RFC 9110 §12.5.3)
        *(
            f"{name}: {value}"
            for name, value in headers.items()
            if name.lower() != "content-length"
        ),
    ]
    if data or method == "POST":  # none on a bodiless HEAD or GET (RFC 9110 §8.6)
        lines.append(f"Content-Length: {len(data)}")
    if _UNSAFE_HEADER.search("".join(lines)):  # a line break would start a field of its own
        raise StoreError(target.endpoint, "a request header with a line break")
    head = "\r\n".join(lines)
    try:
        return head.encode("latin-1") + b"\r\n\r\n" + data
    except UnicodeEncodeError as exc:
        raise StoreError(target.endpoint, "a request header outside ISO-8859-1") from exc


def _read_head(reader: io.BufferedReader, method: str) -> tuple[int, dict[str, str], int, bool]:
    """An answer's status, its fields (names in lowercase, repeated ones joined by ", ", RFC 9110
    §5.3), its body's length (or CHUNKED, UNTIL_CLOSE) and whether the connection stays open."""
    while True:
        lines = _read_lines(reader, status_line=True)
        match = _STATUS_LINE.fullmatch(lines[0])
        if match is None:
            raise http.client.BadStatusLine(lines[0][:80])
        status = int(match[3])
        if status >= 200:
            break
        if status == 101:  # never asked for (no Upgrade is sent): the exchange cannot go on
            raise http.client.HTTPException("101 Switching Protocols")
        # 1xx interim answers (100 Continue, 103 Early Hints): the final one follows.
    fields = _fields(lines, 1)
    connection = fields.get("connection", "").lower()
    tokens = {token.strip() for token in connection.split(",")} if connection else set()
    modern = match[1] == "1" and match[2] != "0"  # HTTP/1.1 (the minor version is at least 1)
    keep = "close" not in tokens if modern else "keep-alive" in tokens and "close" not in tokens
    coding = fields.get("transfer-encoding")
    if method == "HEAD" or status in (204, 304):
        return status, fields, 0, keep
    if coding is not None:
        if not modern:  # RFC 9112 §6.1: an HTTP/1.0 message with it has faulty framing
            raise http.client.HTTPException("Transfer-Encoding in an HTTP/1.0 answer")
        if coding.strip().lower() != "chunked":  # no TE was sent: chunked is all it may use
            raise http.client.HTTPException(f"unsupported transfer coding {coding!r}")
        # With a Content-Length too, chunked decides, and the connection is not used again.
        return status, fields, CHUNKED, keep and "content-length" not in fields
    length = fields.get("content-length")
    if length is None:
        return status, fields, UNTIL_CLOSE, False
    values = {value.strip() for value in length.split(",")}
    value = values.pop()
    if values or not (value.isascii() and value.isdigit()):  # §6.3: an unrecoverable error
        raise http.client.HTTPException(f"invalid Content-Length {length!r}")
    return status, fields, int(value), keep


def _read_lines(reader: io.BufferedReader, status_line: bool = False) -> list[str]:
    """The lines of a head up to the empty line that ends it (RFC 9112 §2.1), without their
    ends, as ISO-8859-1 text; also a chunked body's trailer section (§7.1.2). A head that is
    all in the reader's buffer (most: one read brings a store's answer) is taken at once."""
    buffered = reader.peek(1)
    if not status_line and buffered.startswith(b"\r\n"):  # no trailer fields
        reader.read(2)
        return []
    end = buffered.find(b"\r\n\r\n")
    if end >= 0 and buffered.count(b"\n", 0, end) == buffered.count(b"\r\n", 0, end):
        lines = reader.read(end + 4)[:end].decode("latin-1").split("\r\n")
        if len(lines) > MAX_FIELDS + 1:
            raise http.client.HTTPException(f"more than {MAX_FIELDS} fields")
        return lines
    # Lines one at a time: a head across reads, or with bare LF line ends (tolerated, §2.2).
    lines = []
    while True:
        line = reader.readline(MAX_LINE + 1)
        if not line.endswith(b"\n"):
            if len(line) > MAX_LINE:
                raise http.client.LineTooLong("header line")
            if status_line and not lines and not line:
                raise http.client.RemoteDisconnected("the connection closed without an answer")
            raise http.client.IncompleteRead(line)
        if line in (b"\r\n", b"\n") and (lines or not status_line):
            return lines
        lines.append(line.rstrip(b"\r\n").decode("latin-1"))
        if len(lines) > MAX_FIELDS + 1:
            raise http.client.HTTPException(f"more than {MAX_FIELDS} fields")


def _fields(lines: list[str], start: int) -> dict[str, str]:
    """Field lines (RFC 9112 §5) from lines[start:]."""
    fields: dict[str, str] = {}
    name = ""
    for line in itertools.islice(lines, start, None):
        if line[0] in " \t":  # obsolete line folding (§5.2): one space for the line break
            if not name:
                raise http.client.HTTPException("a folded line before any field")
            fields[name] += " " + line.strip(" \t")
            continue
        raw, colon, value = line.partition(":")
        name = raw.lower()
        if not colon or not name or name != name.strip():  # no space before the colon (§5.1)
            raise http.client.HTTPException(f"malformed field line {line[:80]!r}")
        text = value.strip(" \t")
        fields[name] = f"{fields[name]}, {text}" if name in fields else text
    return fields


class _Body(io.RawIOBase):
    """An answer's body on a persistent connection, read as its framing says: closed once read
    to its end, it gives the connection back for the next exchange (give_back; None when the
    answer said it would be the last); closed before, it closes the connection (what is left
    unread would be taken for the next answer)."""

    def __init__(
        self, conn: _Connection, length: int, give_back: Callable[[], None] | None
    ) -> None:
        super().__init__()
        self._conn, self._reader, self._give_back = conn, conn.reader, give_back
        self._chunked = length == CHUNKED
        # Bytes left: of the body (a length), of the current chunk, or -1 (to the end).
        self._left = 0 if self._chunked else -1 if length == UNTIL_CLOSE else length
        self._done = length == 0

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            size = -1
        if self._done or size == 0:
            return b""
        if self._chunked:
            return self._read_chunked(size)
        if self._left < 0:  # to the connection's end
            data = self._reader.read(size)
            if not data or size < 0:
                self._done = True
            return data
        want = self._left if size < 0 else min(size, self._left)
        data = self._exact(want)
        self._left -= want
        self._done = not self._left
        return data

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self.read(len(view))
        view[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            if self._done and self._give_back is not None:
                self._give_back()
            else:
                self._conn.close()
        super().close()

    def _exact(self, size: int) -> bytes:
        data = self._reader.read(size)
        if len(data) < size:
            raise http.client.IncompleteRead(data, size - len(data))
        return data

    def _read_chunked(self, size: int) -> bytes:
        """Chunked transfer coding (RFC 9112 §7.1): at most size bytes, all with -1."""
        pieces: list[bytes] = []
        while not self._done:
            if not self._left:
                line = self._reader.readline(MAX_LINE + 1)
                match = _CHUNK_SIZE.fullmatch(line)
                if match is None:
                    if not line.endswith(b"\n"):
                        raise http.client.IncompleteRead(b"".join(pieces))
                    raise http.client.HTTPException(f"bad chunk size line {line[:80]!r}")
                self._left = int(match[1], 16)
                if not self._left:  # the last chunk, then trailer fields (ignored)
                    _read_lines(self._reader)
                    self._done = True
                continue
            want = self._left if size < 0 else min(size, self._left)
            data = self._exact(want)
            self._left -= want
            if not self._left and self._exact(2) != b"\r\n":
                raise http.client.HTTPException("a chunk not followed by CRLF")
            if size >= 0:
                return data
            pieces.append(data)
        return b"".join(pieces)


class SparqlClient:
    """One SPARQL 1.1 store over HTTP. Thread-safe: each thread keeps its own authentication
    state; a call's `timeout` (seconds, default the client's) bounds its connection, each read
    and, for the answers parsed here, the whole exchange."""

    def __init__(
        self,
        query_url: str,
        update_url: str | None = None,
        data_url: str | None = None,
        *,
        user: str | None = None,
        password: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        server_timeout_param: str | None = None,
    ) -> None:
        """`server_timeout_param` names the query parameter through which the store takes a time
        budget in milliseconds (Virtuoso: "timeout"); None sends none."""
        self.query_url = _check_url(query_url)
        self.update_url = _check_url(update_url or query_url)
        self.data_url = _check_url(data_url) if data_url else None
        if (user is None) != (password is None):
            raise StoreError(show_url(self.update_url), "give both a user and a password, or none")
        self.user = user
        self._password = password
        self.timeout = timeout
        self.server_timeout_param = server_timeout_param
        self._local = threading.local()
        # Queries go over persistent connections that send no credentials: untrusted ones
        # always; the app's own until the query endpoint asks for credentials (a 401), and
        # from then on through this thread's opener that has them.
        self._connections = _Connections()
        self._challenged = False

    def __repr__(self) -> str:
        user = ", user=..." if self.user is not None else ""
        return (
            f"SparqlClient({show_url(self.query_url)!r}, {show_url(self.update_url)!r}, "
            f"{show_url(self.data_url) if self.data_url else None!r}{user})"
        )

    def close(self) -> None:
        """Close the idle persistent connections (the client stays usable: it opens others)."""
        self._connections.close()

    # -- queries (SPARQL 1.1 Protocol §2.1) ------------------------------------------------

    def select(
        self,
        query: str,
        *,
        default_graphs: Sequence[str] = (),
        named_graphs: Sequence[str] = (),
        timeout: float | None = None,
    ) -> list[Solution]:
        """The solutions of a SELECT query, each a dict from variable name to pyoxigraph term."""
        document = self._json(query, default_graphs, named_graphs, timeout)
        try:
            bindings = document["results"]["bindings"]
            blanks: dict[str, pyoxigraph.BlankNode] = {}
            return [{name: _term(value, blanks) for name, value in row.items()} for row in bindings]
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise StoreError(show_url(self.query_url), f"unreadable SELECT results: {exc}") from exc

    def ask(
        self,
        query: str,
        *,
        default_graphs: Sequence[str] = (),
        named_graphs: Sequence[str] = (),
        timeout: float | None = None,
    ) -> bool:
        """The answer of an ASK query."""
        answer = self._json(query, default_graphs, named_graphs, timeout).get("boolean")
        if not isinstance(answer, bool):
            raise StoreError(show_url(self.query_url), "an ASK answer without a boolean")
        return answer

    def construct(
        self,
        query: str,
        *,
        default_graphs: Sequence[str] = (),
        named_graphs: Sequence[str] = (),
        timeout: float | None = None,
    ) -> list[pyoxigraph.Triple]:
        """The triples of a CONSTRUCT or DESCRIBE query (N-Triples asked, any RDF syntax read)."""
        budget, deadline = self._budget(timeout)
        endpoint = show_url(self.query_url)
        response = self._query(query, CONSTRUCT_ACCEPT, default_graphs, named_graphs, budget)
        body = self._answer(response, endpoint, deadline, budget)
        fmt = RDF_PARSERS.get(response.media_type)
        if fmt is None:
            raise StoreError(endpoint, f"answered {response.content_type!r}, not RDF")
        try:
            return [quad.triple for quad in pyoxigraph.parse(body, format=fmt)]
        except (SyntaxError, ValueError) as exc:
            raise StoreError(endpoint, f"unreadable {response.media_type}: {exc}") from exc

    def raw(
        self,
        query: str,
        accept: str,
        *,
        default_graphs: Sequence[str] = (),
        named_graphs: Sequence[str] = (),
        timeout: float | None = None,
    ) -> RawAnswer:
        """Forward an already inspected query without credentials and hand back the store's
        answer unread, whatever its status. Raises when there is no answer, or an answer the
        store's own budget or row cap may have cut short."""
        budget, _ = self._budget(timeout)
        response = self._query(query, accept, default_graphs, named_graphs, budget, anonymous=True)
        if 200 <= response.status < 300:
            try:
                self._check_whole(response, show_url(self.query_url))
            except StoreError:
                response.close()
                raise
        return RawAnswer(response.status, response.content_type, response.body)

    # -- SPARQL 1.1 Update (Protocol §2.2.2: POST application/sparql-update) ------------------

    def update(self, text: str, *, timeout: float | None = None) -> None:
        """Run a SPARQL Update request on the update endpoint."""
        budget, deadline = self._budget(timeout)
        data = text.encode()
        request = urllib.request.Request(
            self.update_url,
            data=data,
            method="POST",
            headers={"Content-Type": SPARQL_UPDATE, "Content-Length": str(len(data))},
        )
        self._authenticate(self.update_url, len(data), budget)
        response = self._exchange(request, budget, self._opener())
        self._answer(response, show_url(self.update_url), deadline, budget)

    def insert(
        self,
        graph_iri: str,
        triples: Iterable[pyoxigraph.Triple],
        *,
        batch: int | None = None,
        timeout: float | None = None,
    ) -> None:
        """Add triples to a graph by INSERT DATA requests of `batch` triples each. Each request
        scopes its own blank nodes: one shared across two batches becomes two."""
        graph = self._iri(graph_iri, self.update_url)
        size = batch or INSERT_BATCH
        lines: list[str] = []
        blank = False
        for triple in triples:
            lines.append(f"{triple} .")
            blank = blank or _has_blank(triple)
            if len(lines) >= size:
                self.update(_insert_data(graph, lines, blank), timeout=timeout)
                lines, blank = [], False
        if lines:
            self.update(_insert_data(graph, lines, blank), timeout=timeout)

    # -- Graph Store HTTP Protocol (§5.3 PUT, §5.5 POST, §5.4 DELETE; indirect ?graph=) ---------

    def put_graph(self, graph_iri: str, data: Body, *, timeout: float | None = None) -> None:
        """Replace a graph's content with N-Triples. Without a Graph Store endpoint: DROP, then
        INSERT DATA batches (not atomic: load into a graph nobody reads yet)."""
        if self.data_url is None:
            graph = self._iri(graph_iri, self.update_url)
            self.update(f"DROP SILENT GRAPH {graph}", timeout=timeout)
            self.insert(graph_iri, _triples(data, show_url(self.update_url)), timeout=timeout)
        else:
            self._graph_store("PUT", graph_iri, data, timeout)

    def post_graph(self, graph_iri: str, data: Body, *, timeout: float | None = None) -> None:
        """Add N-Triples to a graph (created if missing)."""
        if self.data_url is None:
            self.insert(graph_iri, _triples(data, show_url(self.update_url)), timeout=timeout)
        else:
            self._graph_store("POST", graph_iri, data, timeout)

    def delete_graph(self, graph_iri: str, *, timeout: float | None = None) -> None:
        """Drop a graph; a graph that does not exist is not an error."""
        if self.data_url is None:
            self.update(
                f"DROP SILENT GRAPH {self._iri(graph_iri, self.update_url)}", timeout=timeout
            )
            return
        budget, deadline = self._budget(timeout)
        url = self._graph_url(graph_iri)
        request = urllib.request.Request(url, method="DELETE")
        response = self._exchange(request, budget, self._opener())
        if response.status == 404:
            response.close()
            return
        self._answer(response, show_url(url), deadline, budget)

    def _graph_store(self, method: str, graph_iri: str, data: Body, timeout: float | None) -> None:
        budget, deadline = self._budget(timeout)
        url = self._graph_url(graph_iri)
        with _sized(data, show_url(url)) as (payload, length):
            self._authenticate(url, length, budget)
            request = urllib.request.Request(
                url,
                data=payload,
                method=method,
                headers={"Content-Type": NTRIPLES.media_type, "Content-Length": str(length)},
            )
            response = self._exchange(request, budget, self._opener())
            self._answer(response, show_url(url), deadline, budget)

    def _graph_url(self, graph_iri: str) -> str:
        assert self.data_url is not None
        self._iri(graph_iri, self.data_url)
        joiner = "&" if "?" in self.data_url else "?"
        return f"{self.data_url}{joiner}{urllib.parse.urlencode({'graph': graph_iri})}"

    # -- HTTP ---------------------------------------------------------------------------------

    def _budget(self, timeout: float | None) -> tuple[float, float]:
        budget = self.timeout if timeout is None else timeout
        return budget, time.monotonic() + budget

    def _iri(self, iri: str, url: str) -> str:
        try:
            return iri_ref(iri)
        except ValueError as exc:
            raise StoreError(show_url(url), f"not an IRI: {iri!r} ({exc})") from exc

    def _opener(self) -> urllib.request.OpenerDirector:
        """This thread's opener with the credentials (urllib's auth handlers keep state)."""
        opener: urllib.request.OpenerDirector | None = getattr(self._local, "opener", None)
        if opener is None:
            if self.user is None or self._password is None:
                opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
            else:
                passwords = urllib.request.HTTPPasswordMgrWithPriorAuth()
                urls = [
                    self.query_url,
                    self.update_url,
                    *([self.data_url] if self.data_url else []),
                ]
                passwords.add_password(None, urls, self.user, self._password)
                self._local.digest = _DigestAuth(passwords)
                self._local.passwords = passwords
                opener = urllib.request.build_opener(
                    urllib.request.ProxyHandler({}),
                    _BasicAuth(passwords),
                    self._local.digest,
                )
            self._local.opener = opener
            self._local.probed = set()
        return opener

    def _authenticate(self, url: str, length: int, budget: float) -> None:
        """Before a large body, learn the endpoint's challenge with a bodiless HEAD, so that the
        body goes out once, already authenticated (a wrong password fails here, cheaply)."""
        if self.user is None or length <= PROBE_ABOVE:
            return
        self._opener()
        endpoint = _endpoint(url)
        if endpoint in self._local.probed or endpoint in self._local.digest.challenges:
            return
        response = self._exchange(
            urllib.request.Request(url, method="HEAD"), budget, self._opener()
        )
        response.close()
        if response.status == 401:
            raise StoreError(show_url(url), "HTTP 401: the store refused the credentials")
        self._local.probed.add(endpoint)

    def _query(
        self,
        query: str,
        accept: str,
        default_graphs: Sequence[str],
        named_graphs: Sequence[str],
        budget: float,
        anonymous: bool = False,
    ) -> _Response:
        """POST the query as a form (Protocol §2.1.2), its dataset as default-graph-uri and
        named-graph-uri parameters; anonymous: never with credentials."""
        fields = [("query", query)]
        fields += [("default-graph-uri", g) for g in default_graphs]
        fields += [("named-graph-uri", g) for g in named_graphs]
        for _, graph in fields[1:]:
            self._iri(graph, self.query_url)
        if self.server_timeout_param:
            fields.append((self.server_timeout_param, str(server_budget_ms(budget))))
        data = _form(tuple(fields)) if len(query) <= FORM_CACHED_CHARS else _encode(fields)
        headers = {"Content-Type": FORM, "Accept": accept, "Content-Length": str(len(data))}
        credentials = not anonymous and self.user is not None
        if not (credentials and self._challenged):
            response = self._connections.exchange(self.query_url, data, headers, budget)
            if response.status != 401 or not credentials:
                return response
            response.close()
            self._challenged = True  # the endpoint wants credentials: from now on, send them
        request = urllib.request.Request(self.query_url, data=data, method="POST", headers=headers)
        return self._exchange(request, budget, self._opener())

    def _json(
        self,
        query: str,
        default_graphs: Sequence[str],
        named_graphs: Sequence[str],
        timeout: float | None,
    ) -> dict[str, Any]:
        budget, deadline = self._budget(timeout)
        endpoint = show_url(self.query_url)
        response = self._query(query, SPARQL_RESULTS_JSON, default_graphs, named_graphs, budget)
        body = self._answer(response, endpoint, deadline, budget)
        if response.media_type != SPARQL_RESULTS_JSON:
            raise StoreError(endpoint, f"answered {response.content_type!r}, not SPARQL JSON")
        try:
            document = json.loads(body)
        except ValueError as exc:
            raise StoreError(endpoint, f"unreadable SPARQL JSON: {exc}") from exc
        if not isinstance(document, dict):
            raise StoreError(endpoint, "unreadable SPARQL JSON: not an object")
        return document

    def _exchange(
        self, request: urllib.request.Request, budget: float, opener: urllib.request.OpenerDirector
    ) -> _Response:
        """Send a request; any HTTP status comes back as an answer, no answer raises."""
        endpoint = show_url(request.full_url)
        try:
            response = opener.open(request, timeout=budget)
        except urllib.error.HTTPError as exc:
            # The error itself is the body: its collection would close the socket under us.
            body: IO[bytes] = exc if exc.fp is not None else io.BytesIO()
            return _Response(exc.code, _headers(exc.headers), body)
        except urllib.error.URLError as exc:
            reason = exc.reason
            if isinstance(reason, TimeoutError):
                raise StoreUnavailable(endpoint, f"no answer within {budget:g} s") from exc
            raise StoreUnavailable(endpoint, f"cannot connect: {reason}") from exc
        except TimeoutError as exc:
            raise StoreUnavailable(endpoint, f"no answer within {budget:g} s") from exc
        except (OSError, http.client.HTTPException) as exc:
            raise StoreUnavailable(endpoint, f"connection failed: {type(exc).__name__}") from exc
        except UnicodeError:
            # Digest hashes the user and password as ASCII, and the error quotes them: raised
            # outside this block, so that it is not even the new error's context.
            failure = "digest credentials must be ASCII"
        except ValueError as exc:  # a digest algorithm urllib lacks, a header it refuses
            failure = f"cannot send the request ({type(exc).__name__})"
        else:
            return _Response(response.status, _headers(response.headers), response)
        raise StoreError(endpoint, failure)

    def _answer(self, response: _Response, endpoint: str, deadline: float, budget: float) -> bytes:
        """The whole body of a successful, complete answer, read within the deadline."""
        try:
            if not 200 <= response.status < 300:
                raise self._failure(response, endpoint)
            self._check_whole(response, endpoint)
            chunks = []
            while block := response.body.read(BLOCK):
                chunks.append(block)
                if time.monotonic() > deadline:
                    raise StoreUnavailable(endpoint, f"no complete answer within {budget:g} s")
            return b"".join(chunks)
        except TimeoutError as exc:
            raise StoreUnavailable(endpoint, f"no complete answer within {budget:g} s") from exc
        except (OSError, http.client.HTTPException) as exc:
            raise StoreUnavailable(endpoint, f"answer broken off: {type(exc).__name__}") from exc
        finally:
            response.close()

    def _check_whole(self, response: _Response, endpoint: str) -> None:
        """Refuse an answer the store flags as cut short (Virtuoso's anytime budget, row cap)."""
        if response.headers.get("x-sql-state", "").strip() == "S1TAT":
            raise StoreUnavailable(
                endpoint, "the store's time budget cut the answer short (X-SQL-State: S1TAT)"
            )
        cap = response.headers.get("x-sparql-maxrows")
        if cap is not None:
            raise StoreError(
                endpoint,
                f"the answer reached the store's row cap of {cap.strip()} (X-SPARQL-MaxRows) and "
                "may be cut; raise the store's ResultSetMaxRows above kgpub's result cap",
            )

    def _failure(self, response: _Response, endpoint: str) -> StoreError:
        """The error for a non-2xx answer, with a short excerpt of the store's message."""
        try:
            text = response.body.read(4 * EXCERPT).decode("utf-8", "replace")
        except (OSError, http.client.HTTPException):
            text = ""
        if response.media_type == "text/html" or text.lstrip().startswith("<"):
            text = re.sub(r"<[^>]*>", " ", text)
        excerpt = " ".join(text.split())[:EXCERPT]
        status = response.status
        if status == 401:
            said = "refused the credentials" if self.user is not None else "asks for credentials"
            return StoreError(endpoint, f"HTTP 401: the store {said}")
        message = f"HTTP {status}: {excerpt}" if excerpt else f"HTTP {status}"
        if out_of_time(status, text):
            return StoreUnavailable(endpoint, message)
        return StoreError(endpoint, message)


# A form's bytes as urllib.parse.urlencode writes them (quote_plus: letters, digits and "_.-~"
# kept, a space "+", every other UTF-8 byte "%XX"), each byte looked up in this table by map()
# instead of urlencode's list comprehension: 12 against 22 us for a description's query (211
# characters), and every description's query is new.
_FORM_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~")
_FORM_BYTE = [chr(b) if b in _FORM_SAFE else "+" if b == 0x20 else f"%{b:02X}" for b in range(256)]


def _quote(text: str) -> str:
    return "".join(map(_FORM_BYTE.__getitem__, text.encode("utf-8")))


def _encode(fields: Sequence[tuple[str, str]]) -> bytes:
    """application/x-www-form-urlencoded fields (the bytes urlencode gives)."""
    return "&".join(f"{_quote(name)}={_quote(value)}" for name, value in fields).encode("ascii")


# The app's queries and the public's repeated ones (the same text, dataset and budget) are
# encoded once.
FORM_CACHED_CHARS = 4096
_form = functools.lru_cache(maxsize=512)(_encode)


def _check_url(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise StoreError(show_url(url), "not an http(s) URL")
    if parts.username is not None or parts.password is not None:
        raise StoreError(show_url(url), "credentials belong in user and password, not the URL")
    return url


def _headers(message: Any) -> dict[str, str]:
    return {str(k).lower(): str(v) for k, v in message.items()} if message is not None else {}


def _term(value: dict[str, str], blanks: dict[str, pyoxigraph.BlankNode]) -> Term:
    """A SPARQL 1.1 JSON results term (§3.2.2; "typed-literal" as Virtuoso still writes)."""
    kind, text = value["type"], value["value"]
    if kind == "uri":
        return pyoxigraph.NamedNode(text)
    if kind == "bnode":
        node = blanks.get(text)
        if node is None:
            node = blanks[text] = _blank(text)
        return node
    if kind in ("literal", "typed-literal"):
        if "xml:lang" in value:
            return pyoxigraph.Literal(text, language=value["xml:lang"])
        if "datatype" in value:
            return pyoxigraph.Literal(text, datatype=pyoxigraph.NamedNode(value["datatype"]))
        return pyoxigraph.Literal(text)
    raise ValueError(f"unknown term type {kind!r}")


def _blank(label: str) -> pyoxigraph.BlankNode:
    """A blank node for a result's label: Virtuoso's "nodeID://b10003" becomes _:b10003 (as in
    its N-Triples); any other invalid label a stable hash of it."""
    if label.startswith(VIRTUOSO_BNODE):
        label = label[len(VIRTUOSO_BNODE) :]
    try:
        return pyoxigraph.BlankNode(label)
    except ValueError:
        return pyoxigraph.BlankNode("h" + hashlib.sha256(label.encode()).hexdigest()[:32])


def _insert_data(graph: str, lines: list[str], blank: bool) -> str:
    """INSERT DATA (Update §3.1.1); with blank nodes, the equivalent INSERT {...} WHERE {}, as
    Virtuoso refuses blank nodes in INSERT DATA (SP031 "not allowed in a constant clause")."""
    body = "\n".join(lines)
    if blank:
        return f"INSERT {{ GRAPH {graph} {{\n{body}\n}} }} WHERE {{}}"
    return f"INSERT DATA {{ GRAPH {graph} {{\n{body}\n}} }}"


def _has_blank(triple: pyoxigraph.Triple) -> bool:
    return isinstance(triple.subject, pyoxigraph.BlankNode) or isinstance(
        triple.object, pyoxigraph.BlankNode
    )


@contextmanager
def _sized(data: Body, endpoint: str) -> Iterator[tuple[bytes | _Replayable, int]]:
    """A body and its length, for a Content-Length (Virtuoso drops chunked bodies)."""
    if isinstance(data, bytes | bytearray | memoryview):
        payload = bytes(data)
        yield payload, len(payload)
    elif isinstance(data, os.PathLike):
        with open(data, "rb") as file:
            length = os.fstat(file.fileno()).st_size
            yield _Replayable(file, 0, length), length
    elif isinstance(data, io.IOBase) and data.seekable():
        # A seekable binary file, measured from where it stands.
        start = data.tell()
        length = data.seek(0, io.SEEK_END) - start
        data.seek(start)
        yield _Replayable(cast(IO[bytes], data), start, length), length
    else:
        with tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY) as spool:
            for chunk in _chunks(data):
                if not isinstance(chunk, bytes | bytearray | memoryview):
                    raise StoreError(endpoint, f"a body chunk is {type(chunk).__name__}, not bytes")
                spool.write(chunk)
            length = spool.tell()
            yield _Replayable(spool, 0, length), length


def _chunks(data: IO[bytes] | Iterable[bytes]) -> Iterator[bytes]:
    if isinstance(data, io.IOBase):
        yield from iter(lambda: cast(IO[bytes], data).read(BLOCK), b"")
    else:
        yield from data


def _triples(data: Body, endpoint: str) -> Iterator[pyoxigraph.Triple]:
    """The triples of an N-Triples body, parsed (a malformed line cannot reach a query text)."""
    with _sized(data, endpoint) as (payload, _):
        source: bytes | IO[bytes] = payload if isinstance(payload, bytes) else payload.rewound()
        try:
            for quad in pyoxigraph.parse(source, format=pyoxigraph.RdfFormat.N_TRIPLES):
                yield quad.triple
        except (SyntaxError, ValueError) as exc:
            raise StoreError(endpoint, f"unreadable N-Triples: {exc}") from exc
