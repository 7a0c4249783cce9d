"""Who gets a thread of the server: a flood of expensive SPARQL queries is refused at once beyond
the query processes, slow or silent clients hold none (server/front.py), and pages are served
meanwhile. Each against the real server (`kgpub serve`: gunicorn, two workers, default query
concurrency) on a generated library of 1,500 entries, talking raw sockets on loopback.

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
from urllib.parse import urlencode

import pytest
from fetch import Reply, get
from live import Server, serve_generated
from sparql_http import query

from server.front import REQUEST_TIMEOUT

RUNAWAY = "SELECT (COUNT(*) AS ?n) WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i . ?j ?k ?l . ?m ?n2 ?o }"
WORKERS, CONCURRENCY = 2, 4  # kgpub serve's defaults
PAGE_WITHIN = 5.0  # seconds: served, not queued (it was 40 s behind 20 queries)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("admission")
    settings = {"query_timeout": 4.0, "query_concurrency": CONCURRENCY}
    with serve_generated(folder, 1500, WORKERS, **settings) as running:
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
