"""A running server picks up a new publication without a restart or a dropped request, and
keeps serving the one it has when a rebuild fails."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import rdflib
from fetch import get, parse
from live import FIXTURES, Server, build_publication, free_port

from graph.errors import ListingError
from graph.iris import Iris
from graph.namespaces import DCTERMS

A, B, BAD = (FIXTURES / "serve" / f"reload-{n}.txt" for n in ("a", "b", "bad"))


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    port = free_port()
    out = tmp_path / "publication"
    build_publication([A], out, f"http://127.0.0.1:{port}/")
    with Server(out, port, workers=2) as running:
        yield running


def _titles(server: Server) -> dict[str, str]:
    iri = server.base + "library"
    graph = parse(get(iri, {"Accept": "text/turtle"}), iri)
    entries = server.base + "entry/"
    return {
        str(s): str(o)
        for s, o in graph.subject_objects(DCTERMS.title)
        if str(s).startswith(entries)
    }


def _description(server: Server, entry: str) -> str:
    graph = parse(get(entry, {"Accept": "text/turtle"}), entry)
    return str(graph.value(rdflib.URIRef(entry), DCTERMS.description))


def test_rebuild_is_served_without_restart_and_without_dropped_requests(server: Server) -> None:
    iris = Iris(server.base)
    before = _titles(server)
    assert len(before) == 2
    first = next(iri for iri, title in before.items() if title == "First report")
    assert _description(server, first) == "The first report."
    old_etag = get(first).header("ETag")

    statuses: list[int] = []
    stop = threading.Event()

    def hammer() -> None:  # requests all through the rebuild and the swap
        while not stop.is_set():
            statuses.append(get(iris.library, {"Accept": "text/turtle"}).status)
            statuses.append(get(first, {"Accept": "text/html"}).status)

    threads = [threading.Thread(target=hammer) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        build_publication([B], server.out, server.base)
        deadline = time.monotonic() + 60
        while len(_titles(server)) != 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.5)  # past every worker's once-a-second check
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert statuses and set(statuses) == {200}, sorted(set(statuses))
    after = _titles(server)
    assert sorted(after.values()) == ["First report", "Second report", "Third report"]
    for _ in range(6):  # each worker: the new description, a new validator
        assert _description(server, first) == "The first report, revised."
        assert get(first).header("ETag") != old_etag
    assert get(iris.concept("Education"), {"Accept": "text/turtle"}).status == 200


def test_failed_rebuild_leaves_the_publication_served(server: Server) -> None:
    iris = Iris(server.base)
    before = {iri: get(iri).body for iri in (iris.library, iris.scheme)}
    with pytest.raises(ListingError):
        build_publication([BAD], server.out, server.base)
    time.sleep(1.5)
    for iri, body in before.items():
        for _ in range(4):
            reply = get(iri)
            assert reply.status == 200 and reply.body == body
    assert len(_titles(server)) == 2


def test_server_started_before_the_first_build(tmp_path: Path) -> None:
    """No publication yet: 503 with Retry-After in the negotiated format; the first build is
    then served without a restart."""
    port = free_port()
    out = tmp_path / "publication"
    out.mkdir()
    with Server(out, port, workers=1) as running:
        reply = get(running.base + "library", {"Accept": "application/json"})
        assert reply.status == 503 and reply.header("Retry-After")
        assert "kgpub build" in reply.body.decode()
        page = get(running.base, {"Accept": "text/html"})
        assert page.status == 503 and page.media_type == "text/html"
        build_publication([A], out, running.base)
        deadline = time.monotonic() + 60
        while get(running.base + "library").status != 200 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(_titles(running)) == 2
