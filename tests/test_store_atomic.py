"""A remote load is atomic, as a user runs it: `kgpub build --store` (credentials in the
environment) against a private Virtuoso, served by `kgpub serve --store`. A build killed with
SIGKILL during its load, or a store that fails mid-load, leaves the previous release served
byte for byte, and no graph of it behind once the next build has run; two web processes on
one publication folder both take up a rebuild with no failed or mixed answer; the load is
reported in the build's progress and summary."""

from __future__ import annotations

import contextlib
import http.client
import http.server
import itertools
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Self
from urllib.parse import quote

import pytest
from fetch import get
from live import FIXTURES, ROOT, SEED, Server, free_port, mentions
from procs import on_terminal
from virtuoso import Virtuoso

from graph.publication import (
    CURRENT,
    RELEASES,
    BuildOptions,
    build,
    current_release,
    published_releases,
    read_manifest,
)
from graph.store import StoreSettings
from graph.store.protocol import SparqlClient
from server.cli import summary

GEN_LISTING = FIXTURES / "gen_listing.py"
ENTRY = "entry/2018-07-06-1243-becoming-trauma-informed"
OLD_TEXT, NEW_TEXT = "Criminal justice professionals", "Criminal-justice staff"
# Generous: a busy two-core machine builds slowly; every wait polls and ends as soon as it can.
DEADLINE = 120.0


# -- the store and the command --------------------------------------------------------------


@dataclass(frozen=True)
class Endpoints:
    """The three URLs a build is given (some may point at a failing proxy)."""

    query: str
    update: str
    data: str

    def args(self) -> list[str]:
        return ["--store", self.query, "--store-update", self.update, "--store-data", self.data]


def _direct(virtuoso: Virtuoso) -> Endpoints:
    return Endpoints(virtuoso.query_url, virtuoso.update_url, virtuoso.data_url)


def _env(virtuoso: Virtuoso) -> dict[str, str]:
    """A user's environment: no KGPUB_ settings but the store's credentials."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KGPUB_")}
    env["KGPUB_STORE_USER"], env["KGPUB_STORE_PASSWORD"] = virtuoso.user, virtuoso.password
    return env


def _build_command(
    source: Path | list[Path], out: Path, base: str, endpoints: Endpoints
) -> list[str]:
    sources = source if isinstance(source, list) else [source]
    return [
        sys.executable,
        "-m",
        "server.cli",
        "build",
        *map(str, sources),
        "--out",
        str(out),
        "--base-uri",
        base,
        *endpoints.args(),
    ]


def kgpub_build(
    virtuoso: Virtuoso,
    source: Path | list[Path],
    out: Path,
    base: str,
    endpoints: Endpoints | None = None,
    *options: str,
) -> subprocess.CompletedProcess[str]:
    """`kgpub build --store ...` as a user runs it."""
    return subprocess.run(
        _build_command(source, out, base, endpoints or _direct(virtuoso)) + list(options),
        cwd=ROOT,
        env=_env(virtuoso),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def _built(done: subprocess.CompletedProcess[str]) -> None:
    assert done.returncode == 0, done.stderr


def _client(virtuoso: Virtuoso) -> SparqlClient:
    """The anonymous, read-only client a test looks into the store with."""
    return SparqlClient(virtuoso.query_url)


def _graphs(virtuoso: Virtuoso, base: str) -> set[str]:
    """The named graphs under the base IRI that hold a triple."""
    rows = _client(virtuoso).select("SELECT DISTINCT ?g WHERE { GRAPH ?g { ?s ?p ?o } }")
    return {row["g"].value for row in rows if row["g"].value.startswith(base)}


def _count(virtuoso: Virtuoso, graph: str) -> int:
    rows = _client(virtuoso).select(
        f"SELECT (COUNT(*) AS ?n) WHERE {{ GRAPH <{graph}> {{ ?s ?p ?o }} }}"
    )
    return int(rows[0]["n"].value)


def _drop_graphs(virtuoso: Virtuoso, base: str) -> None:
    """Drop every graph under the base IRI: the session's store is shared with other tests,
    some of which read all of its graphs."""
    admin = SparqlClient(virtuoso.update_url, user=virtuoso.user, password=virtuoso.password)
    for graph in _graphs(virtuoso, base):
        admin.update(f"DROP SILENT GRAPH <{graph}>")


def _named(out: Path) -> set[str]:
    """The graphs the releases in the folder name (their manifests' store records)."""
    records = [read_manifest(p)["store"] for p in published_releases(out / RELEASES)]
    return {record[k] for record in records for k in ("graph", "void")}


def _building(out: Path) -> list[Path]:
    return sorted((out / RELEASES).glob(".building-*"))


def _current(out: Path) -> str:
    return os.readlink(out / CURRENT)


def _listing(tmp_path: Path, entries: int, seed: int = 1) -> Path:
    """A synthetic library of `entries` entries (tests/fixtures/gen_listing.py)."""
    path = tmp_path / f"generated-{entries}-{seed}.txt"
    subprocess.run(
        [sys.executable, str(GEN_LISTING), str(entries), "--seed", str(seed), "--out", str(path)],
        check=True,
        timeout=300,
    )
    return path


def _changed_seed(tmp_path: Path) -> Path:
    """The seed with one entry's description changed."""
    path = tmp_path / "changed.txt"
    path.write_text(SEED.read_text(encoding="utf-8").replace(OLD_TEXT, NEW_TEXT, 1))
    return path


def _ledger(out: Path) -> set[str] | None:
    """The library graphs a build in progress names in its store.json, once it is written."""
    for folder in _building(out):
        try:
            doc = json.loads((folder / "store.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        return {doc["graph"]}
    return None


def _poll_value(value: Callable[[], set[str] | None], what: str) -> set[str]:
    end = time.monotonic() + DEADLINE
    while (found := value()) is None:
        if time.monotonic() > end:
            pytest.fail(f"gave up waiting: {what}")
        time.sleep(0.05)
    return found


def _poll(condition: Callable[[], bool], what: str, deadline: float = DEADLINE) -> None:
    end = time.monotonic() + deadline
    while not condition():
        if time.monotonic() > end:
            pytest.fail(f"gave up waiting: {what}")
        time.sleep(0.05)


# -- what a web process answers ---------------------------------------------------------------

MARKER = quote(
    "SELECT (COUNT(*) AS ?n) WHERE { ?e <http://purl.org/dc/terms/description> ?d "
    f'FILTER(CONTAINS(STR(?d), "{NEW_TEXT}")) }}'
)
ALL = quote("SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }")
PATHS = (
    "library",
    "library.ttl",
    "library.jsonld?page=2",
    f"{ENTRY}.ttl",
    f"{ENTRY}.html",
    f"{ENTRY}.nt",
    "category/safeguarding.ttl",
    f"sparql?query={ALL}",
    f"sparql?query={MARKER}",
)
PAGES = tuple(p for p in PATHS if not p.startswith("sparql"))
JSON = {"Accept": "application/sparql-results+json"}


def _fetch(server: Server, path: str) -> tuple[int, bytes]:
    reply = get(server.base + path, JSON if path.startswith("sparql") else None)
    return reply.status, reply.body


def _snapshot(server: Server) -> dict[str, bytes]:
    answers = {path: _fetch(server, path) for path in PATHS}
    for path, (status, _) in answers.items():
        assert status == 200, path
    return {path: body for path, (_, body) in answers.items()}


def _marked(server: Server) -> bool:
    """Whether the server answers from the rebuilt library (one description changed)."""
    status, body = _fetch(server, f"{ENTRY}.nt")
    assert status == 200, body
    return NEW_TEXT.encode() in body


@dataclass
class Hammer:
    """Threads requesting PATHS from servers until stopped, keeping every answer: two per
    server, one of which leaves out the SPARQL queries (graph/store/forward.py parses them
    with rdflib's parser, which two threads of one process must not run at once: reported)."""

    servers: list[Server]
    answers: list[tuple[str, int, bytes]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)

    def __enter__(self) -> Hammer:
        for server in self.servers:
            for paths in (PATHS, PAGES):
                thread = threading.Thread(target=self._run, args=(server, paths), daemon=True)
                thread.start()
                self.threads.append(thread)
        return self

    def _run(self, server: Server, paths: tuple[str, ...]) -> None:
        while not self.stop.is_set():
            for path in paths:
                status, body = _fetch(server, path)
                self.answers.append((path, status, body))

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=60)


@pytest.fixture
def published(tmp_path: Path, virtuoso: Virtuoso) -> Iterator[tuple[Path, Server]]:
    """The seed built into the store by `kgpub build --store`, served by `kgpub serve --store`."""
    port = free_port()
    out, base = tmp_path / "publication", f"http://127.0.0.1:{port}/"
    try:
        _built(kgpub_build(virtuoso, SEED, out, base))
        with Server(
            out, port, workers=2, store=virtuoso.query_url, warm_up=0, page_size=10
        ) as server:
            yield out, server
    finally:
        _drop_graphs(virtuoso, base)


# -- kill -9 during the load ------------------------------------------------------------------


def test_a_build_killed_during_its_load_leaves_the_old_graph_served_and_is_dropped_next(
    tmp_path: Path, virtuoso: Virtuoso, published: tuple[Path, Server]
) -> None:
    """Two web processes on one store and one publication folder, as the README deploys them:
    both answer from the old graph through a load killed midway, and both take up the next
    build."""
    out, server = published
    with Server(
        out, free_port(), workers=2, store=virtuoso.query_url, warm_up=0, page_size=10
    ) as second:
        servers = [server, second]
        before, target = _snapshot(server), _current(out)
        assert _snapshot(second) == before
        big = _listing(tmp_path, 15_000)
        log = tmp_path / "killed-build.log"
        with Hammer(servers) as hammer, log.open("wb") as sink:
            proc = subprocess.Popen(
                _build_command(big, out, server.base, _direct(virtuoso)),
                cwd=ROOT,
                env=_env(virtuoso),
                stdout=sink,
                stderr=sink,
            )
            try:
                # The build names its graphs in its folder before it loads a triple of them.
                killed = _poll_value(lambda: _ledger(out), "a build's store.json")
                graph = next(iter(killed))
                _poll(lambda: proc.poll() is not None or _count(virtuoso, graph) > 0, "a triple")
                assert proc.poll() is None, log.read_text()
                os.kill(proc.pid, signal.SIGKILL)
            finally:
                proc.kill()
                proc.wait(timeout=60)
            assert proc.returncode == -signal.SIGKILL
            loaded = _count(virtuoso, graph)
            time.sleep(1.5)  # past every worker's once-a-second look at `current`
        # Every answer of either process, during the load and after the kill, came from the
        # previous release.
        assert hammer.answers
        for path, status, body in hammer.answers:
            assert (status, body) == (200, before[path]), path
        assert _current(out) == target
        assert _snapshot(server) == before and _snapshot(second) == before
        assert loaded > 0  # the kill landed during the load: a part of the graph was there

        # The next build starts clean: it drops the killed build's graphs and loads its own.
        _built(kgpub_build(virtuoso, _changed_seed(tmp_path), out, server.base))
        assert not _building(out)
        assert not killed & _graphs(virtuoso, server.base)
        assert _graphs(virtuoso, server.base) == _named(out)
        _poll(lambda: all(_marked(s) for s in servers), "the rebuild served by both")


# -- a store failing mid-load -----------------------------------------------------------------


class _Proxy:
    """A proxy on a loopback port of its own, serving from a thread while in a `with`."""

    port: int
    _thread: threading.Thread

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def __enter__(self) -> Self:
        self._thread.start()
        return self


class FailingProxy(_Proxy):
    """A TCP proxy to the store that forwards faithfully until `after` bytes of requests have
    gone through, then fails as `mode` says: "cut" breaks the connection in the middle of the
    request that crossed the line, and every later one at once; "refuse" closes its listening
    socket (connection refused); "503" answers every later request 503. `on_trip` runs once,
    when it starts failing (the test looks into the store then)."""

    def __init__(
        self, upstream: int, after: int, mode: str, on_trip: Callable[[], None] = lambda: None
    ) -> None:
        self.upstream, self.after, self.mode, self.on_trip = upstream, after, mode, on_trip
        self.sent = 0
        self.tripped = threading.Event()
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._closed = False

    def __exit__(self, *exc: object) -> None:
        self._closed = True
        self._close_listener()

    def _close_listener(self) -> None:
        """Stop listening (shutdown wakes the thread blocked in accept; close alone does not)."""
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()

    def _trip(self) -> None:
        with self._lock:
            if self.tripped.is_set():
                return
            self.on_trip()
            self.tripped.set()
        if self.mode == "refuse":
            self._close_listener()

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            if self.tripped.is_set():
                self._fail(conn)
                continue
            threading.Thread(target=self._forward, args=(conn,), daemon=True).start()

    def _fail(self, conn: socket.socket) -> None:
        if self.mode == "503":
            conn.settimeout(5)
            try:
                conn.recv(65536)
                conn.sendall(
                    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
                    b"Content-Length: 12\r\nConnection: close\r\n\r\nout of order"
                )
            except OSError:
                pass
        conn.close()

    def _forward(self, conn: socket.socket) -> None:
        up = socket.create_connection(("127.0.0.1", self.upstream))
        back = threading.Thread(target=self._pump, args=(up, conn, False), daemon=True)
        back.start()
        self._pump(conn, up, True)
        back.join(timeout=60)
        for s in (conn, up):
            s.close()

    def _pump(self, source: socket.socket, sink: socket.socket, request: bool) -> None:
        try:
            while block := source.recv(65536):
                if request:
                    with self._lock:
                        self.sent += len(block)
                        over = self.sent > self.after
                    if over:
                        self._trip()
                        if self.mode == "cut":
                            break
                sink.sendall(block)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)


@pytest.mark.parametrize(
    ("mode", "through"),
    [("cut", "data"), ("refuse", "data"), ("503", "data"), ("cut", "update"), ("cut", "all")],
    ids=[
        "graph-store-cut",
        "graph-store-refuses",
        "graph-store-503",
        "update-cut-while-changing-a-copy",
        "whole-store-gone",
    ],
)
def test_a_store_failing_mid_load_leaves_the_publication_served_and_no_graph_behind(
    tmp_path: Path,
    virtuoso: Virtuoso,
    published: tuple[Path, Server],
    mode: str,
    through: str,
) -> None:
    out, server = published
    library = _listing(tmp_path, 6_000)  # about 13 MiB of N-Triples: four pieces of a load
    if through == "update":
        # A release of the seed and 6,000 entries, then the same without 40 of them (the
        # generator makes the same first entries for a seed): the build copies the current
        # graph and removes their triples by SPARQL Update, about 100 KiB of requests.
        _built(kgpub_build(virtuoso, [SEED, library], out, server.base))
        time.sleep(1.5)  # past every worker's once-a-second look at `current`
        sources, options, after = [SEED, _listing(tmp_path, 5_960)], (), 50 << 10
    else:
        # A full load by the Graph Store Protocol, two pieces of 4 MiB at once, failing past
        # 9 MiB: in the third piece, which starts once one of the first two has been loaded.
        sources, options, after = [SEED, library], ("--full",), 9 << 20
    before, target = _snapshot(server), _current(out)
    graphs = _graphs(virtuoso, server.base)
    seen: set[str] = set()
    proxy = FailingProxy(
        virtuoso.http_port,
        after=after,
        mode=mode,
        on_trip=lambda: seen.update(_graphs(virtuoso, server.base)),
    )
    direct = _direct(virtuoso)
    with proxy:
        endpoints = {
            "data": Endpoints(direct.query, direct.update, proxy.url("/sparql-graph-crud-auth")),
            "update": Endpoints(direct.query, proxy.url("/sparql-auth"), direct.data),
            "all": Endpoints(
                proxy.url("/sparql"),
                proxy.url("/sparql-auth"),
                proxy.url("/sparql-graph-crud-auth"),
            ),
        }[through]
        failed = kgpub_build(virtuoso, sources, out, server.base, endpoints, *options)
        assert proxy.tripped.is_set(), failed.stderr

    assert failed.returncode == 3, failed.stderr
    assert failed.stderr.startswith(f"kgpub: http://127.0.0.1:{proxy.port}/"), failed.stderr
    assert "Traceback" not in failed.stderr + failed.stdout
    assert not mentions(failed.stderr, virtuoso.password)  # no credentials
    assert "previous publication is untouched" in failed.stderr
    # The failed build had a graph of its own in the store when the store failed ...
    partial = seen - graphs
    assert partial
    # ... and `current` still names the previous release, served as before.
    assert _current(out) == target
    time.sleep(1.5)  # past every worker's once-a-second look at `current`
    assert _snapshot(server) == before
    if through == "all":  # nothing answers: its graphs stay named in its folder
        assert partial <= _graphs(virtuoso, server.base)
        assert [p.name for p in _building(out)[0].iterdir()] == ["store.json"]
    else:  # the other endpoint answers: the failed build's graph is dropped at once
        assert _graphs(virtuoso, server.base) == graphs
        assert not _building(out)
    # The next build drops what is left and publishes.
    _built(kgpub_build(virtuoso, _changed_seed(tmp_path), out, server.base))
    assert not partial & _graphs(virtuoso, server.base)
    assert _graphs(virtuoso, server.base) == _named(out)
    assert not _building(out)
    _poll(lambda: _marked(server), "the rebuild served")


# -- two web processes, one rebuild -----------------------------------------------------------


def test_two_web_processes_take_up_one_rebuild_with_no_failed_or_mixed_answer(
    tmp_path: Path, virtuoso: Virtuoso, published: tuple[Path, Server]
) -> None:
    out, first = published
    with Server(
        out, free_port(), workers=2, store=virtuoso.query_url, warm_up=0, page_size=10
    ) as second:
        servers = [first, second]
        old = _snapshot(first)
        assert _snapshot(second) == old
        with Hammer(servers) as hammer:
            start = time.monotonic()
            _built(kgpub_build(virtuoso, _changed_seed(tmp_path), out, first.base))
            built = time.monotonic()
            _poll(lambda: all(_marked(s) for s in servers), "both servers on the rebuild")
            print(f"seen by both {time.monotonic() - built:.1f} s after the build's end")
            time.sleep(2.5)  # every worker of both has looked at `current` since
        new = _snapshot(first)
        assert _snapshot(second) == new
    changed = [path for path in PATHS if new[path] != old[path]]
    assert f"{ENTRY}.ttl" in changed and f"sparql?query={MARKER}" in changed
    assert b'"0"' in old[f"sparql?query={MARKER}"] and b'"1"' in new[f"sparql?query={MARKER}"]
    assert hammer.answers and start < built
    for path, status, body in hammer.answers:
        assert status == 200, (path, body[:300])
        assert body in (old[path], new[path]), path


# -- progress and summary ---------------------------------------------------------------------


def _remote(virtuoso: Virtuoso) -> StoreSettings:
    return StoreSettings(
        virtuoso.query_url,
        virtuoso.update_url,
        virtuoso.data_url,
        virtuoso.user,
        virtuoso.password,
    )


@pytest.fixture
def base(virtuoso: Virtuoso) -> Iterator[str]:
    """A base IRI of the test's own; its graphs are dropped afterwards."""
    base = f"http://127.0.0.1:{free_port()}/atomic/"
    yield base
    _drop_graphs(virtuoso, base)


def test_the_load_is_a_phase_of_the_progress_and_told_in_the_summary(
    tmp_path: Path, virtuoso: Virtuoso, base: str
) -> None:
    events: list[tuple[str, int, int]] = []
    options = BuildOptions(base=base, store=_remote(virtuoso))
    out = tmp_path / "pub"
    source = _listing(tmp_path, 3_000)
    outcome = build([source], out, options, lambda *event: events.append(event))

    # One phase after another: the load, run in the background, reports once validation is
    # done (no event of it comes between those of another phase).
    order = [name for i, (name, _, _) in enumerate(events) if i == 0 or events[i - 1][0] != name]
    assert order == ["parse", "convert", "history", "validate", "load", "write"]
    assert [p.name for p in outcome.phases] == order
    load = [(done, total) for name, done, total in events if name == "load"]
    assert load[-1] == (outcome.triples, outcome.triples)
    assert all(a[0] <= b[0] for a, b in itertools.pairwise(load))

    assert outcome.store is not None
    endpoint = virtuoso.query_url
    assert (outcome.store.how, outcome.store.endpoint) == ("loaded", endpoint)
    text = summary("build", outcome, base)
    assert f"Loaded {outcome.triples:,} triples into the store at {endpoint}." in text

    # An unchanged rebuild reuses the graph; a changed one copies it and applies the chunks.
    again = build([source], out, options, now=datetime(2031, 1, 1, tzinfo=UTC))
    assert again.store is not None and again.store.how == "reused"
    assert f"Reused the current graph in the store at {endpoint}." in summary("build", again, base)
    text = source.read_text(encoding="utf-8")
    changed = tmp_path / "one-changed.txt"
    changed.write_text(re.sub(r"(Added: [^\n]*\n\n)([A-Z])", r"\1Now \2", text, count=1))
    third = build([changed], out, options, now=datetime(2031, 1, 2, tzinfo=UTC))
    assert third.store is not None and third.store.how == "copied"
    assert third.store.chunks >= 1 and 0 < third.store.triples < 100
    said = summary("build", third, base)
    assert f"Copied the current graph in the store at {endpoint} and changed " in said
    assert read_manifest(current_release(out))["store"]["endpoint"] == endpoint


def test_a_terminal_sees_the_load_and_the_summary_names_the_store(
    tmp_path: Path, virtuoso: Virtuoso, base: str
) -> None:
    """`kgpub build --store` on a terminal: a "load" line in triples, and a summary that says
    where the graph went, never with the credentials."""
    command = _build_command(SEED, tmp_path / "pub", base, _direct(virtuoso))
    status, said, shown = on_terminal(command, ROOT, _env(virtuoso), DEADLINE)
    assert status == 0, shown
    lines = shown.replace("\x1b[K", "").split("\r")
    assert any(re.fullmatch(r"load: [\d,]+/377 triples.*", line) for line in lines), lines
    assert any(line.startswith("validate:") for line in lines)
    assert f"Loaded 377 triples into the store at {virtuoso.query_url}." in said
    for secret in (virtuoso.user, virtuoso.password):
        assert not mentions(said, secret) and not mentions(shown, secret)


# -- the load's streams ------------------------------------------------------------------------


def test_a_load_sent_in_one_stream_or_in_four_is_the_same_graph(
    tmp_path: Path, virtuoso: Virtuoso, base: str
) -> None:
    """The pieces of a load go several at once (--store-streams): in whatever order they land,
    the graph holds every triple of the release once, as when they go one by one."""
    source = _listing(tmp_path, 4_000)  # about 9 MiB of N-Triples: three pieces of a load
    graphs: dict[int, str] = {}
    for streams in (1, 4):
        remote = replace(_remote(virtuoso), streams=streams)
        out = tmp_path / f"pub-{streams}"
        outcome = build([SEED, source], out, BuildOptions(base=base, store=remote))
        assert outcome.store is not None and outcome.store.how == "loaded"
        graphs[streams] = read_manifest(current_release(out))["store"]["graph"]
        assert _count(virtuoso, graphs[streams]) == outcome.triples > 35_000
    one, four = graphs[1], graphs[4]
    missing = (
        "ASK {{ GRAPH <{}> {{ ?s ?p ?o }} FILTER NOT EXISTS {{ GRAPH <{}> {{ ?s ?p ?o }} }} }}"
    )
    assert not _client(virtuoso).ask(missing.format(one, four))
    assert not _client(virtuoso).ask(missing.format(four, one))


def test_a_load_of_no_stream_is_refused_before_anything_is_written(
    tmp_path: Path, virtuoso: Virtuoso, base: str
) -> None:
    out = tmp_path / "pub"
    done = kgpub_build(virtuoso, SEED, out, base, None, "--store-streams", "0")
    assert done.returncode == 2, done.stderr
    assert done.stderr == "kgpub: --store-streams must be 1 or more\n"
    assert "Traceback" not in done.stderr + done.stdout
    assert not (out / CURRENT).exists()
    assert not _graphs(virtuoso, base)


class DeadlockingProxy(_Proxy):
    """An HTTP proxy to the store that answers some Graph Store POSTs (`victims`: the 1st, 2nd,
    ... POST that carries credentials) as Virtuoso answers a deadlock's victim, once it has read
    the body, and forwards every other request as it is."""

    def __init__(self, upstream: int, victims: set[int]) -> None:
        self.upstream, self.victims = upstream, victims
        self.posts = 0
        self.refused: list[int] = []
        lock = threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_: object) -> None:
                pass

            def _relay(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.command == "POST" and "Authorization" in self.headers:
                    with lock:
                        proxy.posts += 1
                        victim = proxy.posts in proxy.victims
                        if victim:
                            proxy.refused.append(proxy.posts)
                    if victim:
                        said = b"Virtuoso 40001 Error SR172: Transaction deadlocked\n"
                        self.send_response(500)
                        self.send_header("Content-Type", "text/plain")
                        self.send_header("Content-Length", str(len(said)))
                        self.end_headers()
                        self.wfile.write(said)
                        return
                up = http.client.HTTPConnection("127.0.0.1", proxy.upstream, timeout=120)
                hop = {"connection", "keep-alive", "transfer-encoding", "host"}
                headers = {k: v for k, v in self.headers.items() if k.lower() not in hop}
                up.request(self.command, self.path, body=body or None, headers=headers)
                answer = up.getresponse()
                data = answer.read()
                up.close()
                self.send_response(answer.status)
                for key, value in answer.getheaders():
                    if key.lower() not in hop | {"content-length"}:
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _relay  # noqa: N815

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def test_a_piece_the_store_takes_for_a_deadlocks_victim_is_sent_again(
    tmp_path: Path, virtuoso: Virtuoso, base: str
) -> None:
    """Two Graph Store requests load one graph at once: Virtuoso may roll one back as a
    deadlock's victim (HTTP 500, 40001 SR172). The build sends that piece again and the graph
    is whole; any other failure still fails the build (the tests above)."""
    source = _listing(tmp_path, 6_000)  # about 13 MiB: four pieces
    direct = _direct(virtuoso)
    with DeadlockingProxy(virtuoso.http_port, victims={2, 3}) as proxy:
        remote = replace(_remote(virtuoso), data=proxy.url("/sparql-graph-crud-auth"))
        out = tmp_path / "pub"
        outcome = build([SEED, source], out, BuildOptions(base=base, store=remote))
    assert proxy.refused == [2, 3]  # the second piece twice, or the second and the third
    assert proxy.posts >= 6  # four pieces, two of them again
    assert outcome.store is not None and outcome.store.how == "loaded"
    graph = read_manifest(current_release(out))["store"]["graph"]
    assert _count(virtuoso, graph) == outcome.triples
    assert direct.data == virtuoso.data_url  # the proxy stood only in front of the loads
