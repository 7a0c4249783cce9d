"""The store seam's Reader (graph/store) on the seed publication: what one description holds.

A contract: every backend gives the same answers (the embedded Oxigraph store here)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pyoxigraph
import pytest
import rdflib
from rdfdiff import assert_isomorphic

from graph import jsonld, resources
from graph.formats import RDF_FORMATS, RdfFormat
from graph.iris import Iris
from graph.namespaces import DCTERMS, RDF, SKOS, VOID
from graph.store import Reader
from graph.store.oxigraph import OxigraphReader


@pytest.fixture(scope="module")
def store(seed_out: Path) -> Iterator[pyoxigraph.Store]:
    """The release's store itself, as an oracle of what it holds."""
    yield pyoxigraph.Store.read_only(str(seed_out / "current" / "store"))


@pytest.fixture(scope="module")
def reader(store: pyoxigraph.Store, iris: Iris) -> Reader:
    return OxigraphReader(store, iris)


@pytest.fixture(scope="module")
def manifest(seed_out: Path) -> dict[str, object]:
    data: dict[str, object] = json.loads((seed_out / "current" / "manifest.json").read_text())
    return data


@pytest.fixture(scope="module")
def iris(manifest: dict[str, object]) -> Iris:
    return Iris(str(manifest["base"]))


def _graph(d: resources.Description) -> rdflib.Graph:
    nt = resources.serialize(d, next(f for f in RDF_FORMATS if f.key == "ntriples"), Iris("x:/"))
    return rdflib.Graph().parse(data=nt, format="nt")


def test_entry_has_its_triples_and_the_labels_of_what_it_links_to(
    store: pyoxigraph.Store, reader: Reader, iris: Iris, manifest: dict[str, object]
) -> None:
    entry = str(manifest["example"])
    d = reader.describe(entry)
    assert d is not None and d.kind == "entry" and d.page is None
    own = [q.triple for q in store.quads_for_pattern(pyoxigraph.NamedNode(entry), None, None)]
    assert set(own) <= set(d.triples)
    subjects = d.objects(str(DCTERMS.subject))
    assert subjects
    for concept in subjects:
        assert d.value(str(SKOS.prefLabel), concept)  # one request shows the category names
    assert d.value(str(DCTERMS.title), iris.library)
    assert d.subjects()[0] == entry
    extra = {t.subject.value for t in d.triples} - {entry}
    assert extra == {*subjects, iris.library}  # labels only, not the whole neighbours


def test_concept_lists_its_entries_newest_first_and_pages(
    store: pyoxigraph.Store, reader: Reader, iris: Iris
) -> None:
    concept = iris.concept("Safeguarding")
    everyone = reader.members(concept, "concept")
    assert len(everyone) == 35  # every seed entry is on the Safeguarding page
    when = pyoxigraph.NamedNode(str(DCTERMS.created))
    created = [
        next(store.quads_for_pattern(pyoxigraph.NamedNode(e), when, None)).object.value
        for e in everyone
    ]
    assert created == sorted(created, reverse=True)  # newest first
    pages = [reader.describe(concept, n, 10) for n in (1, 2, 3, 4)]
    shown = [m for p in pages if p for m in p.members]
    assert shown == everyone  # every entry once, in order, across the pages
    first = pages[0]
    assert first is not None and first.page == resources.Page(1, 10, 35)
    assert first.page.last == 4 and first.page.is_paged
    subject = str(DCTERMS.subject)
    listed = {t.subject.value for t in first.triples if t.predicate.value == subject}
    assert listed == set(first.members)
    for member in first.members:
        assert first.value(str(DCTERMS.title), member) and first.value(str(DCTERMS.created), member)
    beyond = reader.describe(concept, 5, 10)
    assert beyond is not None and beyond.members == []


def test_library_pages_its_parts_instead_of_listing_all(
    store: pyoxigraph.Store, reader: Reader, iris: Iris
) -> None:
    d = reader.describe(iris.library, 1, 5)
    assert d is not None and d.kind == "library"
    parts = d.objects(str(DCTERMS.hasPart))
    assert set(parts) == set(d.members) and len(parts) == 5
    assert d.page is not None and d.page.total == 35
    assert d.value(str(DCTERMS.title), iris.scheme)  # the scheme it links to, labelled


def test_scheme_labels_its_concepts(store: pyoxigraph.Store, reader: Reader, iris: Iris) -> None:
    d = reader.describe(iris.scheme)
    assert d is not None and d.kind == "scheme"
    concepts = d.objects(str(SKOS.hasTopConcept))
    assert len(concepts) == 9 and concepts == reader.concepts()
    assert all(d.label(c) != c for c in concepts)


@pytest.mark.parametrize("which", ["dataset", "void"])
def test_dataset_and_void_are_the_void_graph(
    store: pyoxigraph.Store, reader: Reader, iris: Iris, which: str
) -> None:
    d = reader.describe(getattr(iris, which))
    assert d is not None and d.kind == "dataset"
    graph = list(store.quads_for_pattern(None, None, None, pyoxigraph.NamedNode(iris.void)))
    assert len(d.triples) == len(graph)
    # 365 of the model, 12 of its publishers: 4 dcterms:publisher, 4 organisations x 2
    assert d.value(str(VOID.triples), iris.dataset) == "377"
    assert str(VOID.Dataset) in d.objects(str(RDF.type), iris.dataset)


def test_unknown_iri_has_no_description(
    store: pyoxigraph.Store, reader: Reader, iris: Iris
) -> None:
    assert reader.describe(iris.base + "entry/nothing-here") is None
    assert reader.describe("http://elsewhere.example/x") is None
    assert reader.describe(iris.base + "entry/a b>") is None  # not an IRI
    assert reader.exists(iris.library) and reader.exists(iris.scheme)
    assert not reader.exists(iris.base + "category/nope")
    assert not reader.exists("not an IRI")
    assert reader.members(iris.base + "category/x> ?p ?o", "concept") == []


def test_counts_per_category(store: pyoxigraph.Store, reader: Reader, iris: Iris) -> None:
    counts = reader.category_counts()
    assert counts[iris.concept("Safeguarding")] == 35
    for concept in reader.concepts():
        assert counts[concept] == len(reader.members(concept, "concept"))


# rdflib's JSON-LD parser builds a ConjunctiveGraph, which rdflib 7 itself deprecates.
JSONLD_WARNING = "ignore:ConjunctiveGraph is deprecated:DeprecationWarning"


@pytest.mark.filterwarnings(JSONLD_WARNING)
@pytest.mark.parametrize("fmt", RDF_FORMATS, ids=lambda f: f.key)
def test_every_format_round_trips(
    store: pyoxigraph.Store, reader: Reader, iris: Iris, manifest: dict[str, object], fmt: RdfFormat
) -> None:
    """Serialize each kind of description, parse it back with rdflib: the same graph."""
    for iri in (
        str(manifest["example"]),
        iris.concept("Safeguarding"),
        iris.scheme,
        iris.library,
        iris.dataset,
    ):
        d = reader.describe(iri, 1, 7)
        assert d is not None
        body = resources.serialize(d, fmt, iris)
        if fmt.key == "jsonld":  # parse offline: inline the published context
            doc = json.loads(body)
            assert doc["@context"] == iris.context
            doc["@context"] = jsonld.context()
            body = json.dumps(doc).encode()
        assert_isomorphic(rdflib.Graph().parse(data=body, format=fmt.rdflib), _graph(d))


def test_turtle_is_deterministic_and_prefixed(
    store: pyoxigraph.Store, reader: Reader, iris: Iris, manifest: dict[str, object]
) -> None:
    turtle = next(f for f in RDF_FORMATS if f.key == "turtle")
    d1 = reader.describe(str(manifest["example"]))
    d2 = reader.describe(str(manifest["example"]))
    assert d1 is not None and d2 is not None
    a, b = resources.serialize(d1, turtle, iris), resources.serialize(d2, turtle, iris)
    assert a == b
    text = a.decode()
    assert text.startswith("@prefix category: ")  # sorted prefixes, only those used
    assert "@prefix sh:" not in text and "entry:" in text
