"""gunicorn's threaded worker with a front: a thread is given a request only once it has arrived.

gunicorn's gthread worker hands each connection to a thread as soon as its first byte is there,
and the thread then reads the rest of the request, blocking. A client that sends its head a byte
a second (slowloris), or announces a body and never sends it, holds the thread for as long as
it likes, and a few such clients hold every thread of the server. Here the worker's event loop,
which costs no thread, reads each request (head and body) into memory as it comes, without
blocking; only a complete request goes to a thread, whose parser then finds every byte it needs
in memory. A request must arrive within REQUEST_TIMEOUT seconds, plus one second for every
MIN_RATE bytes received (Apache's mod_reqtimeout rule: a slow but steady upload finishes, a
trickle does not), else the connection is answered 408 and closed. A head longer than HEAD_LIMIT
is answered 431 at once. Either refusal is closed lingering (RFC 9112 §9.6): the front shuts
its sending side (the client reads the answer, then the end), and reads and discards what the
client still sends, in the event loop, for LINGER_TIME seconds or LINGER_BYTES at most, before
it closes: a close with unread bytes in the socket would send a reset, which may discard the
answer before the client reads it.

A body over BODY_LIMIT is not buffered: the request goes to a thread when its head is in, and
the application refuses it by its Content-Length; a thread that does read it waits at most
RECV_TIMEOUT for each piece (SO_RCVTIMEO).

A thread sending a response waits at most `send_timeout` seconds (the setting) for the client
to take more bytes: a reader that stops reading, or reads a few bytes a minute, would hold the
thread for as long as it likes (a dump of gigabytes). Past it the thread gives up, and the
connection is closed.

What is read ahead of a complete request stays in memory for the next one of a kept-alive
connection (pipelining).
"""

from __future__ import annotations

import contextlib
import errno
import selectors
import socket
import struct
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from gunicorn.workers.gthread import TConn, ThreadWorker

REQUEST_TIMEOUT = 10.0  # seconds for a request to arrive (from its connection or first byte)
MIN_RATE = 16 * 1024  # bytes a second that extend REQUEST_TIMEOUT by one second
HEAD_LIMIT = 64 * 1024  # bytes of request line and header fields (nginx: 4 x 8 KiB)
BODY_LIMIT = 4 * 1024 * 1024  # bytes of body read into memory before a thread takes over
RECV_TIMEOUT = 30  # seconds a thread reading an unbuffered body waits for each piece
LINGER_TIME = 10.0  # seconds a refused client's bytes are read and dropped (nginx: 30 s)
LINGER_BYTES = 1024 * 1024  # bytes read and dropped at most
_READ = 256 * 1024

_408 = b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
_431 = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\n"
    b"Content-Length: 0\r\n\r\n"
)
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


@dataclass
class _Arrival:
    """What has come of one connection's next request, and until when it may take."""

    started: float
    data: bytearray = field(default_factory=bytearray)
    head_end: int = -1  # offset of the body; -1 until the head is complete
    body_length: int | None = None  # Content-Length; None for chunked
    chunk_at: int = 0  # chunked: offset of the next chunk-size line
    continued: bool = False  # "100 Continue" sent

    @property
    def deadline(self) -> float:
        return self.started + REQUEST_TIMEOUT + len(self.data) / MIN_RATE


@dataclass
class _Linger:
    """A refused connection being closed lingering: until when, and what it has sent since."""

    deadline: float
    drained: int = 0


class Verdict:
    """What the front makes of the bytes of a request so far."""

    WAIT, READY, HEAD_TOO_LARGE = "wait", "ready", "head too large"


def _head_fields(head: bytes) -> tuple[bytes, dict[bytes, list[bytes]]]:
    """The request line and the header fields (lower-case names) of a complete head."""
    lines = head.split(b"\r\n")
    fields: dict[bytes, list[bytes]] = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        fields.setdefault(name.strip().lower(), []).append(value.strip())
    return lines[0], fields


def _judge(arrival: _Arrival) -> str:
    """Whether the request in `arrival` is complete (READY: a thread can take it, and its
    parser will find what it needs, or fail at once on what it cannot parse)."""
    data = arrival.data
    if arrival.head_end < 0:
        start = 2 if data[:2] == b"\r\n" else 0  # an empty line before a request is ignored
        end = data.find(b"\r\n\r\n", start)
        if end < 0:
            if data.count(b"\n") != data.count(b"\r\n"):
                return Verdict.READY  # a bare LF: gunicorn refuses the request (400)
            return Verdict.HEAD_TOO_LARGE if len(data) > HEAD_LIMIT else Verdict.WAIT
        if end > HEAD_LIMIT:
            return Verdict.HEAD_TOO_LARGE
        arrival.head_end = end + 4
        line, fields = _head_fields(bytes(data[start:end]))
        coding = b",".join(fields.get(b"transfer-encoding", [])).lower()
        lengths = fields.get(b"content-length", [])
        if coding:
            if b"content-length" in fields or not coding.rstrip().endswith(b"chunked"):
                return Verdict.READY  # gunicorn refuses it (RFC 9112 §6.1, §6.3)
            arrival.body_length, arrival.chunk_at = None, arrival.head_end
        elif lengths:
            if len(set(lengths)) != 1 or not lengths[0].isdigit():
                return Verdict.READY  # gunicorn refuses it
            arrival.body_length = int(lengths[0])
        else:
            arrival.body_length = 0
        expects = b"100-continue" in b",".join(fields.get(b"expect", [])).lower()
        arrival.continued = not (expects and line.endswith(b"HTTP/1.1"))
    if arrival.body_length is not None:
        if arrival.body_length > BODY_LIMIT:
            return Verdict.READY  # the application refuses it by its length, unread
        return (
            Verdict.READY if len(data) - arrival.head_end >= arrival.body_length else Verdict.WAIT
        )
    return _judge_chunks(arrival)


def _judge_chunks(arrival: _Arrival) -> str:
    """A chunked body (RFC 9112 §7.1): READY once its last chunk and trailer section are in."""
    data = arrival.data
    while True:
        if arrival.chunk_at - arrival.head_end > BODY_LIMIT:
            return Verdict.READY
        eol = data.find(b"\r\n", arrival.chunk_at)
        if eol < 0:
            return Verdict.READY if len(data) - arrival.chunk_at > 1024 else Verdict.WAIT
        size_text = bytes(data[arrival.chunk_at : eol]).split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            return Verdict.READY  # gunicorn refuses it
        if size == 0:
            if data[eol + 2 : eol + 4] == b"\r\n":
                return Verdict.READY
            return Verdict.READY if data.find(b"\r\n\r\n", eol) >= 0 else Verdict.WAIT
        following = eol + 2 + size + 2
        if len(data) < following:
            return Verdict.WAIT
        arrival.chunk_at = following


class FrontWorker(ThreadWorker):  # type: ignore[misc]
    """gthread whose threads take only requests that have arrived whole (see the module)."""

    send_timeout = 30.0  # seconds; the setting's value is given by server/wsgi.py (front_worker)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.arriving: dict[Any, _Arrival] = {}  # TConn -> what it has sent of its request
        self.lingering: dict[Any, _Linger] = {}  # TConn -> its lingering close (refused)

    def accept(self, listener: socket.socket) -> None:
        """ThreadWorker.accept, with a receive timeout on the connection (RECV_TIMEOUT)."""
        try:
            client, address = listener.accept()
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        self.nr_conns += 1
        with contextlib.suppress(OSError):
            client.setsockopt(
                socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", RECV_TIMEOUT, 0)
            )
        self.enqueue_req(TConn(self.cfg, client, address, listener.getsockname()))

    def enqueue_req(self, conn: Any) -> None:
        """Every request comes here (a new connection, a kept-alive one that became readable,
        bytes left over from the previous request): it is read in the event loop first."""
        if self.cfg.is_ssl:
            super().enqueue_req(conn)
            return
        arrival = _Arrival(time.monotonic())
        if conn.parser is not None:
            arrival.data += conn.parser.unreader.take_buffered()  # read ahead: the next request
        conn.sock.setblocking(False)
        self.arriving[conn] = arrival
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._readable, conn))
        if arrival.data:
            self._progress(conn, arrival)

    def _readable(self, conn: Any, _sock: Any) -> None:
        arrival = self.arriving[conn]
        while True:
            try:
                chunk = conn.sock.recv(_READ)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                chunk = b""
            if not chunk:  # the client went away before its request was whole
                self._forget(conn)
                self._drop(conn)
                return
            arrival.data += chunk
            if len(chunk) < _READ:
                break
        self._progress(conn, arrival)

    def _progress(self, conn: Any, arrival: _Arrival) -> None:
        """Act on the bytes in: wait for more, refuse, or give the request to a thread."""
        verdict = _judge(arrival)
        if verdict == Verdict.WAIT:
            if not arrival.continued and arrival.head_end >= 0:
                arrival.continued = True  # RFC 9110 §10.1.1: the client waits for this
                with contextlib.suppress(OSError):
                    conn.sock.send(_CONTINUE)
            return
        self._forget(conn)
        if verdict == Verdict.HEAD_TOO_LARGE:
            self._answer_and_drop(conn, _431)
            return
        conn.data_ready = True  # ThreadWorker.handle need not wait for a first byte
        conn.init()  # the HTTP/1 parser (blocking socket): the thread finds the request in it
        conn.parser.unreader.unread(bytes(arrival.data))
        super().enqueue_req(conn)

    def _forget(self, conn: Any) -> None:
        self.arriving.pop(conn, None)
        with contextlib.suppress(OSError, KeyError, ValueError):
            self.poller.unregister(conn.sock)

    def _drop(self, conn: Any) -> None:
        self.nr_conns -= 1
        conn.close()

    def _answer_and_drop(self, conn: Any, response: bytes) -> None:
        """Send a refusal, then close lingering (RFC 9112 §9.6; see the module)."""
        try:
            conn.sock.send(response)  # a few bytes into an empty send buffer: no wait
            conn.sock.shutdown(socket.SHUT_WR)  # the end of the answer: the client reads it
        except OSError:
            self._drop(conn)
            return
        self.lingering[conn] = _Linger(time.monotonic() + LINGER_TIME)
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._drain, conn))

    def _drain(self, conn: Any, _sock: Any) -> None:
        """Read and drop what a refused client sends; close when it is done or over the bound."""
        linger = self.lingering[conn]
        while True:
            try:
                chunk = conn.sock.recv(_READ)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                chunk = b""
            linger.drained += len(chunk)
            if not chunk or linger.drained > LINGER_BYTES:
                self._end_linger(conn)
                return
            if len(chunk) < _READ:
                return

    def _end_linger(self, conn: Any) -> None:
        self.lingering.pop(conn, None)
        with contextlib.suppress(OSError, KeyError, ValueError):
            self.poller.unregister(conn.sock)
        with contextlib.suppress(OSError):
            conn.sock.recv(_READ)  # what came since the last read: a close leaves none unread
        self._drop(conn)

    def handle_request(self, req: Any, conn: Any) -> bool:
        """ThreadWorker.handle_request, each send bounded by send_timeout: the socket's timeout
        (Python's: socket.sendfile waits send_timeout at most for each piece, sendall for each
        write; a body read waits as long for each piece, as RECV_TIMEOUT would)."""
        if not self.cfg.is_ssl:
            conn.sock.settimeout(self.send_timeout)
        try:
            return bool(super().handle_request(req, conn))
        except TimeoutError:
            self.log.info("%s: dropped, it took no bytes for %s s", conn.client, self.send_timeout)
            return False  # the connection is closed (ThreadWorker.finish_request)

    def murder_pending(self) -> None:
        """gunicorn's expiry of connections waiting for data, and of requests too slow to come."""
        super().murder_pending()
        now = time.monotonic()
        for conn, arrival in list(self.arriving.items()):
            if arrival.deadline < now:
                self._forget(conn)
                self._answer_and_drop(conn, _408)
            elif not self.alive and not arrival.data:  # stopping: nothing begun, nothing lost
                self._forget(conn)
                self._drop(conn)
        for conn, linger in list(self.lingering.items()):
            if linger.deadline < now or not self.alive:
                self._end_linger(conn)


def front_worker(send_timeout: float) -> type[FrontWorker]:
    """The worker class for gunicorn, with this send timeout."""
    return type("FrontWorker", (FrontWorker,), {"send_timeout": float(send_timeout)})
