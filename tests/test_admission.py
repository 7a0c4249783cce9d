"""Who gets a thread of the server: a flood of expensive SPARQL queries is refused at once beyond
the query processes, slow or silent clients hold none (server/front.py), and pages are served
meanwhile. Each against the real server (`kgpub serve`: gunicorn, two workers, default query
concurrency) on a generated library of 3,000 entries, talking raw sockets on loopback.

The bounds on time are generous (a page within 5 s, where it waited 40 s before): they tell
"served" from "queued behind the flood", not fast from slow; speed is measured in bench/.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from urllib.parse import urlencode

import pytest
from fetch import Reply, get
from live import Server, serve_generated
from sparql_http import query

from server.front import REQUEST_TIMEOUT

RUNAWAY = "SELECT (COUNT(*) AS ?n) WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i . ?j ?k ?l . ?m ?n2 ?o }"
WORKERS, CONCURRENCY = 2, 4  # kgpub serve's defaults
PAGE_WITHIN = 5.0  # seconds: served, not queued (it was 40 s behind 20 queries)
DUMPS, SEND_TIMEOUT = 1, 5.0  # dump transfers at once per worker; seconds (defaults: 2, 30)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("admission")
    settings = {
        "query_timeout": 4.0,
        "query_concurrency": CONCURRENCY,
        "dump_concurrency": DUMPS,
        "send_timeout": SEND_TIMEOUT,
    }
    # 3,000 entries: a library.nt of 6.8 MB, more than a send buffer holds (the dump tests).
    with serve_generated(folder, 3000, WORKERS, **settings) as running:
        yield running


def _timed_page(server: Server, path: str = "library") -> tuple[Reply, float]:
    started = time.monotonic()
    reply = get(server.base + path, {"Accept": "text/turtle"})
    return reply, time.monotonic() - started


def _entry_path(server: Server) -> str:
    reply = get(server.base + "library", {"Accept": "application/n-triples"})
    entry = next(
        line.split()[2].strip("<>")
        for line in reply.body.decode().splitlines()
        if "/terms/hasPart>" in line
    )
    return entry.removeprefix(server.base)


def test_a_flood_of_expensive_queries_is_refused_at_once_and_pages_are_served(
    server: Server,
) -> None:
    """20 runaway queries at once: as many run as there are query processes (2 workers x 4),
    each until its budget; the others are refused at once with 503 and Retry-After, and an
    entry page is answered meanwhile."""
    entry = _entry_path(server)
    flood = 20
    with ThreadPoolExecutor(flood) as executor:
        started = time.monotonic()
        futures = [executor.submit(query, server.base, RUNAWAY) for _ in range(flood)]
        refused_at_once = []
        with contextlib.suppress(TimeoutError):  # the refusals come first, while others run
            for future in as_completed(futures, timeout=PAGE_WITHIN):
                reply = future.result()
                if reply.status == 503 and "queries are running" in reply.body.decode():
                    refused_at_once.append(time.monotonic() - started)
                if len(refused_at_once) == flood - WORKERS * CONCURRENCY:
                    break
        page, seconds = _timed_page(server, entry)
        running = sum(not f.done() for f in futures)
        replies = [f.result() for f in futures]
    assert page.status == 200 and seconds < PAGE_WITHIN, seconds
    assert running > 0  # the page was served while queries ran
    assert all(r.status == 503 and r.header("Retry-After").isdigit() for r in replies)
    messages = [json.loads(r.body)["message"] for r in replies]
    refused = [m for m in messages if "queries are running" in m]
    cut_off = [m for m in messages if "budget" in m]
    assert len(refused) >= flood - WORKERS * CONCURRENCY, messages
    assert len(refused) + len(cut_off) == flood, messages
    # At once: well before any admitted query's budget (4 s) could have freed a place.
    assert len(refused_at_once) == flood - WORKERS * CONCURRENCY
    assert max(refused_at_once) < PAGE_WITHIN
    assert query(server.base, "ASK { ?s ?p ?o }").status == 200


def _connect(server: Server) -> socket.socket:
    assert server.proc is not None
    return socket.create_connection(("127.0.0.1", server.port), timeout=60)


def _read_until_closed(sock: socket.socket) -> bytes:
    """What the server sent before it closed; RESET when the close came as a reset (which may
    discard an answer sent before it: the front's lingering close is there to prevent one)."""
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        return RESET
    return data


RESET = b"(reset)"
_408 = b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
_431 = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\n"
    b"Content-Length: 0\r\n\r\n"
)


# More connections than the server has threads (2 workers x (4 query + 4 page threads)).
SLOW_CLIENTS = 48
SLOW_HEAD = b"GET /library HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: " + b"a" * 200


@pytest.mark.parametrize(
    ("name", "opening", "drip"),
    [
        ("slowloris: a header byte a second", b"", SLOW_HEAD),
        (
            "a POST that announces a body and never sends it",
            b"POST /sparql HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\n"
            b"query=",
            b"",
        ),
    ],
    ids=["slowloris", "unsent-body"],
)
def test_slow_clients_hold_no_thread_and_are_dropped(
    server: Server, name: str, opening: bytes, drip: bytes
) -> None:
    """48 clients that send their request a byte a second, or not at all: pages are served
    meanwhile, and each slow client is answered 408 and dropped after the front's time."""
    clients = [_connect(server) for _ in range(SLOW_CLIENTS)]
    started = time.monotonic()
    for client in clients:
        client.sendall(opening)
    stop = threading.Event()

    def trickle() -> None:
        for byte in drip:
            for client in clients:
                with contextlib.suppress(OSError):  # dropped: what the test waits for
                    client.send(bytes([byte]))
            if stop.wait(1.0):
                return

    dripping = threading.Thread(target=trickle)
    dripping.start()
    try:
        time.sleep(2.0)  # every slow client has its connection and has begun
        for _ in range(3):
            page, seconds = _timed_page(server)
            assert page.status == 200, name
            assert seconds < PAGE_WITHIN, (name, seconds)
        answers = []
        for client in clients:
            answers.append(_read_until_closed(client))
        dropped_after = time.monotonic() - started
    finally:
        stop.set()
        dripping.join()
        for client in clients:
            client.close()
    # Each answered 408, then the end (no reset), even those that go on sending after it: the
    # front closes lingering (RFC 9112 §9.6).
    assert all(a == _408 for a in answers), {a[:40] for a in answers}
    # Dropped once their time was up (the drip would have gone on for minutes).
    assert REQUEST_TIMEOUT - 1 < dropped_after < REQUEST_TIMEOUT + 20, dropped_after


def _exchange(server: Server, *pieces: bytes, pause: float = 0.0) -> bytes:
    """Send the pieces (pausing between them), then read until the server closes."""
    with _connect(server) as sock:
        for piece in pieces:
            sock.sendall(piece)
            time.sleep(pause)
        return _read_until_closed(sock)


ASK = urlencode({"query": "ASK { ?s ?p ?o }"}).encode()
FORM = b"Content-Type: application/x-www-form-urlencoded\r\n"


def _statuses(data: bytes) -> list[int]:
    """The statuses of the responses in a connection's bytes (no body here holds a status line)."""
    return [int(status) for status in re.findall(rb"HTTP/1\.1 (\d{3}) [A-Z]", data)]


def test_requests_that_come_in_pieces_are_answered(server: Server) -> None:
    """The front waits for the whole request, however it is cut, and nothing more."""
    head = b"GET /library HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    assert _statuses(_exchange(server, head[:10], head[10:30], head[30:], pause=0.3)) == [200]
    post = b"POST /sparql HTTP/1.1\r\nHost: x\r\n" + FORM + b"Connection: close\r\n"
    length = f"Content-Length: {len(ASK)}\r\n\r\n".encode()
    assert _statuses(_exchange(server, post + length, ASK[:5], ASK[5:], pause=0.3)) == [200]
    chunked = post + b"Transfer-Encoding: chunked\r\n\r\n"
    chunks = [b"%x\r\n%s\r\n" % (len(ASK[:7]), ASK[:7]), b"%x\r\n%s\r\n" % (len(ASK[7:]), ASK[7:])]
    assert _statuses(_exchange(server, chunked, *chunks, b"0\r\n\r\n", pause=0.3)) == [200]


def test_expect_100_continue_gets_its_interim_answer_first(server: Server) -> None:
    """RFC 9110 §10.1.1: a client that waits for 100 Continue before its body gets it."""
    with _connect(server) as sock:
        sock.sendall(
            b"POST /sparql HTTP/1.1\r\nHost: x\r\n" + FORM + b"Connection: close\r\n"
            b"Expect: 100-continue\r\n" + f"Content-Length: {len(ASK)}\r\n\r\n".encode()
        )
        sock.settimeout(PAGE_WITHIN)
        assert sock.recv(1024).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        sock.settimeout(60)
        sock.sendall(ASK)
        assert _statuses(_read_until_closed(sock))[-1] == 200


def test_pipelined_requests_are_answered_in_order(server: Server) -> None:
    one = b"GET /robots.txt HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    last = b"GET /library HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    assert _statuses(_exchange(server, one * 3 + last)) == [200, 200, 200, 200]


def test_a_head_too_large_is_refused_at_once(server: Server) -> None:
    head = b"GET /library HTTP/1.1\r\nHost: x\r\n" + b"X-Big: " + b"a" * 70_000 + b"\r\n\r\n"
    assert _statuses(_exchange(server, head)) == [431]


def test_a_refused_client_that_sends_on_still_reads_the_refusal(server: Server) -> None:
    """RFC 9112 §9.6: a head too large, and 500 KB more sent on after the 431: the front
    reads and drops them before it closes, so that the client reads the 431, not a reset."""
    head = b"GET /library HTTP/1.1\r\nHost: x\r\n" + b"X-Big: " + b"a" * 600_000
    with _connect(server) as sock:
        with contextlib.suppress(OSError):  # a reset while sending: the test's failure, below
            sock.sendall(head)
        assert _read_until_closed(sock) == _431


def _stalled_dump(server: Server) -> tuple[socket.socket, bytes]:
    """A client that asks for the largest dump, reads the head, and then reads no more (a
    receive buffer of 4 KiB: the server's sends soon wait)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(60)
    sock.connect(("127.0.0.1", server.port))
    sock.sendall(
        b"GET /dumps/library.nt HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Accept-Encoding: identity\r\nConnection: close\r\n\r\n"
    )
    head = b""
    while b"\r\n\r\n" not in head and (chunk := sock.recv(1024)):
        head += chunk
    return sock, head


def _content_length(head: bytes) -> int:
    found = re.search(rb"\r\nContent-Length: (\d+)\r\n", head)
    assert found is not None, head
    return int(found.group(1))


def test_slow_readers_of_dumps_hold_few_threads_and_are_cut_off(server: Server) -> None:
    """Dump transfers that the client does not read: one more than the places of every
    worker (dump_concurrency each) is refused, 503 with Retry-After; pages are served
    meanwhile; each stalled transfer is cut off after send_timeout, and its place freed."""
    readers = [_stalled_dump(server) for _ in range(WORKERS * DUMPS + 1)]
    started = time.monotonic()
    try:
        admitted = [(s, head) for s, head in readers if head.startswith(b"HTTP/1.1 200 ")]
        refused = [
            head + _read_until_closed(s) for s, head in readers if head.startswith(b"HTTP/1.1 503 ")
        ]
        assert len(admitted) + len(refused) == len(readers), [h[:40] for _, h in readers]
        # The server's send buffer grows to tcp_wmem's largest (4 MiB by default) for a client
        # that reads nothing: a smaller dump would go into it whole, and its place come free.
        wmem = int(Path("/proc/sys/net/ipv4/tcp_wmem").read_text().split()[2])
        assert all(_content_length(head) > wmem + (1 << 20) for _, head in admitted)
        assert refused and len(admitted) <= WORKERS * DUMPS
        assert all(b"\r\nRetry-After: 5\r\n" in head for head in refused), refused
        assert all(b"dump transfer" in head for head in refused), refused
        page, seconds = _timed_page(server)
        assert page.status == 200 and seconds < PAGE_WITHIN, seconds
        time.sleep(SEND_TIMEOUT + 2.0)  # the stalled transfers' time is up
        for sock, head in admitted:
            rest = _read_until_closed(sock)
            assert rest != RESET
            got = len(head) - head.index(b"\r\n\r\n") - 4 + len(rest)
            assert got < _content_length(head), got  # cut off
        assert time.monotonic() - started < SEND_TIMEOUT + 30
    finally:
        for sock, _ in readers:
            sock.close()
    # Their places are free again: every worker sends the whole dump.
    for _ in range(WORKERS * DUMPS + 1):
        reply = get(server.base + "dumps/library.nt", {"Accept-Encoding": "identity"})
        assert reply.status == 200 and len(reply.body) == int(reply.header("Content-Length"))
