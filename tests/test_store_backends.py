"""The store seam's backends answer alike: the seed built into the embedded Oxigraph store and
into each remote SPARQL server (a private Virtuoso, tests/virtuoso.py; a private Oxigraph server,
tests/oxigraph_server.py) gives the same descriptions, lists and counts, and a remote load is
atomic: a release's graphs are served only once `current` names them."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from extra import needs_enrich
from live import SEED, mentions
from oxigraph_server import REMOTE_SERVERS

from graph.index import FILE as INDEX_FILE
from graph.index import open_index
from graph.iris import Iris
from graph.namespaces import DCTERMS, KGPUB, SKOS
from graph.publication import (
    RELEASES,
    BuildOptions,
    build,
    current_release,
    published_releases,
    read_manifest,
)
from graph.store import Reader, StoreSettings, open_reader
from graph.store.protocol import SparqlClient
from graph.store.sparql import SparqlReader

BASE = "http://127.0.0.1:8123/lib/"
NOW = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)

pytestmark = pytest.mark.parametrize("remote_server", REMOTE_SERVERS, indirect=True)


def _reader(out: Path, settings: StoreSettings, indexed: bool = False) -> Reader:
    """The reader of out's current release, with its index when indexed (as a server's)."""
    release = current_release(out)
    record = read_manifest(release).get("store") or {}
    index = open_index(release / INDEX_FILE) if indexed else None
    return open_reader(settings, release, record, Iris(BASE), index)


@pytest.fixture(scope="module")
def readers(
    tmp_path_factory: pytest.TempPathFactory, remote_server: StoreSettings
) -> dict[str, Reader]:
    folder = tmp_path_factory.mktemp("backends")
    build([SEED], folder / "embedded", BuildOptions(base=BASE), now=NOW)
    build([SEED], folder / "remote", BuildOptions(base=BASE, store=remote_server), now=NOW)
    return {
        "embedded": _reader(folder / "embedded", StoreSettings()),
        "remote": _reader(folder / "remote", remote_server),
    }


def _iris(reader: Reader) -> list[tuple[str, int, int]]:
    """(IRI, page, size) of every resource, pages of the lists, and IRIs nobody minted."""
    iris = Iris(BASE)
    found = [(e, 1, 100) for e in reader.entries()]
    found += [(c, 1, 100) for c in reader.concepts()] + [(c, 2, 10) for c in reader.concepts()]
    found += [(iris.scheme, 1, 100), (iris.library, 1, 100), (iris.library, 3, 7)]
    found += [(iris.library, 99, 7), (iris.dataset, 1, 100), (iris.void, 1, 100)]
    found += [(BASE + "entry/nothing", 1, 100), ("http://elsewhere.example/x", 1, 100)]
    return [*found, (BASE + "entry/a b>", 1, 100)]


XSD = "http://www.w3.org/2001/XMLSchema#"


def _text(triple: object) -> str:
    """A triple's N-Triples, but that Oxigraph stores every integer-derived datatype as
    xsd:integer (VoID's xsd:nonNegativeInteger byte sizes): the one known difference, in
    which the remote store is the faithful one."""
    return str(triple).replace(f"<{XSD}nonNegativeInteger>", f"<{XSD}integer>")


def test_every_description_is_the_same(readers: dict[str, Reader]) -> None:
    embedded, remote = readers["embedded"], readers["remote"]
    asked = _iris(embedded)
    assert len(asked) > 40
    for iri, page, size in asked:
        mine, theirs = embedded.describe(iri, page, size), remote.describe(iri, page, size)
        if mine is None or theirs is None:
            assert mine is theirs is None, iri
            continue
        assert (theirs.kind, theirs.members, theirs.page) == (mine.kind, mine.members, mine.page)
        assert [_text(t) for t in theirs.triples] == [_text(t) for t in mine.triples], iri


def test_lists_and_counts_are_the_same(readers: dict[str, Reader]) -> None:
    embedded, remote = readers["embedded"], readers["remote"]
    assert remote.entries() == embedded.entries() and len(embedded.entries()) == 35
    assert remote.concepts() == embedded.concepts()
    assert remote.category_counts() == embedded.category_counts()
    iris = Iris(BASE)
    assert remote.members(iris.library, "library") == embedded.members(iris.library, "library")
    for concept in embedded.concepts():
        assert remote.members(concept, "concept") == embedded.members(concept, "concept")
    for iri in (iris.library, embedded.entries()[0], BASE + "nothing", "not an IRI"):
        assert remote.exists(iri) == embedded.exists(iri)
        assert sorted(map(str, remote.triples(iri))) == sorted(map(str, embedded.triples(iri)))


def _graphs(remote: StoreSettings) -> set[str]:
    """The named graphs under BASE that the store holds."""
    client = SparqlClient(remote.query)
    rows = client.select("SELECT DISTINCT ?g WHERE { GRAPH ?g { ?s ?p ?o } }")
    return {row["g"].value for row in rows if row["g"].value.startswith(BASE)}


def test_rebuilds_load_only_what_changed_and_drop_pruned_graphs(
    tmp_path: Path, remote_server: StoreSettings
) -> None:
    remote = remote_server
    out, base = tmp_path / "pub", set(_graphs(remote))
    options = BuildOptions(base=BASE, store=remote)
    build([SEED], out, options, now=NOW)
    first = read_manifest(current_release(out))["store"]
    assert first["backend"] == "sparql" and {first["graph"], first["void"]} <= _graphs(remote)
    for secret in (remote.user, remote.password):  # no credentials in the manifest
        assert not mentions(json.dumps(first), secret)
    # Unchanged: the same graph serves the new release (nothing loaded).
    build([SEED], out, options, now=datetime(2025, 1, 3, tzinfo=UTC))
    again = read_manifest(current_release(out))["store"]
    assert again["graph"] == first["graph"] and again["void"] != first["void"]
    # One description changed: a new graph, the old one still there for the kept releases.
    changed = tmp_path / "changed.txt"
    text = SEED.read_text(encoding="utf-8")
    changed.write_text(text.replace("Criminal justice professionals", "Criminal-justice staff", 1))
    build([changed], out, options, now=datetime(2025, 1, 4, tzinfo=UTC))
    third = read_manifest(current_release(out))["store"]
    assert third["graph"] != first["graph"]
    reader = _reader(out, remote)
    described = [
        t.object.value
        for e in reader.entries()
        for t in reader.triples(e)
        if t.predicate.value.endswith("/description")
    ]
    assert any("Criminal-justice staff" in d for d in described)
    assert not any("Criminal justice professionals" in d for d in described)
    # Two more releases: the first two are pruned, and so are their graphs no release names.
    build([SEED], out, options, now=datetime(2025, 1, 5, tzinfo=UTC))
    build([changed], out, options, now=datetime(2025, 1, 6, tzinfo=UTC))
    kept = [read_manifest(p)["store"] for p in published_releases(out / RELEASES)]
    assert len(kept) == 3
    named = {r[k] for r in kept for k in ("graph", "void")}
    assert _graphs(remote) - base == named


@pytest.fixture(scope="module")
def enriched(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The seed built with related entries (a linkset), into the embedded store."""
    out = tmp_path_factory.mktemp("backends-enriched") / "embedded"
    build([SEED], out, BuildOptions(base=BASE, enrich=True), now=NOW)
    return out


@needs_enrich
def test_an_entrys_labels_are_the_embedded_ones(
    enriched: Path, tmp_path: Path, remote_server: StoreSettings
) -> None:
    """An entry that links to concepts, a publisher and related entries: the store gives its
    own triples, the release's context and index the labels of what it links to (a server
    reads both); those labels are the embedded reader's, and what the store alone gave before
    (one query with the labels, a release without its context; a linked entry's title asked
    of the store, a reader without the index)."""
    remote = tmp_path / "remote"
    build([SEED], remote, BuildOptions(base=BASE, enrich=True, store=remote_server), now=NOW)
    embedded, served = (
        _reader(enriched, StoreSettings(), True),
        _reader(remote, remote_server, True),
    )
    assert isinstance(served, SparqlReader) and served.context is not None
    without_index = _reader(remote, remote_server)
    record = read_manifest(current_release(remote))["store"]
    store_only = SparqlReader(remote_server.client(), Iris(BASE), record["graph"], record["void"])
    own = {str(p): p for p in (DCTERMS.subject, DCTERMS.publisher, KGPUB.related)}

    def links(iri: str) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for t in served.triples(iri):
            found.setdefault(t.predicate.value, []).append(t.object.value)
        return found

    entry = next(e for e in embedded.entries() if all(links(e).get(p) for p in own))
    linked = [o for p in own for o in links(entry)[p]]
    described = served.describe(entry)
    assert described is not None
    labels = {str(SKOS.prefLabel), str(DCTERMS.title)}
    theirs = sorted(str(t) for t in described.triples if t.subject.value in linked)
    mine = sorted(
        str(t) for o in linked for t in embedded.triples(o) if t.predicate.value in labels
    )
    assert theirs == mine and len(theirs) >= len(linked)
    # The embedded description has no linkset (the dump's; the server adds it): the rest is
    # the same triples in the same order.
    related = set(links(entry)[str(KGPUB.related)])
    rest = [
        t
        for t in described.triples
        if t.subject.value not in related and t.predicate.value != str(KGPUB.related)
    ]
    mine_described = embedded.describe(entry)
    assert mine_described is not None
    assert [_text(t) for t in rest] == [_text(t) for t in mine_described.triples]
    for other in (without_index, store_only):
        again = other.describe(entry)
        assert again is not None and [_text(t) for t in again.triples] == [
            _text(t) for t in described.triples
        ]
