"""The store seam's backends answer alike: the seed built into the embedded Oxigraph store and
into each remote SPARQL server (a private Virtuoso, tests/virtuoso.py; a private Oxigraph server,
tests/oxigraph_server.py) gives the same descriptions, lists and counts, and a remote load is
atomic: a release's graphs are served only once `current` names them."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from live import SEED, mentions
from oxigraph_server import REMOTE_SERVERS

from graph.iris import Iris
from graph.publication import BuildOptions, build, current_release, read_manifest
from graph.store import Reader, StoreSettings, open_reader
from graph.store.protocol import SparqlClient

BASE = "http://127.0.0.1:8123/lib/"
NOW = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)

pytestmark = pytest.mark.parametrize("remote_server", REMOTE_SERVERS, indirect=True)


def _reader(out: Path, settings: StoreSettings) -> Reader:
    release = current_release(out)
    record = read_manifest(release).get("store") or {}
    return open_reader(settings, release, record, Iris(BASE))


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
    folders = [p for p in (out / "releases").iterdir() if not p.name.startswith(".")]
    kept = [read_manifest(p)["store"] for p in folders]
    assert len(kept) == 3
    named = {r[k] for r in kept for k in ("graph", "void")}
    assert _graphs(remote) - base == named
