"""graph/resources.py on the seed publication's store: what one description holds."""

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


@pytest.fixture(scope="module")
def store(seed_out: Path) -> Iterator[pyoxigraph.Store]:
    yield pyoxigraph.Store.read_only(str(seed_out / "current" / "store"))


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
    store: pyoxigraph.Store, iris: Iris, manifest: dict[str, object]
) -> None:
    entry = str(manifest["example"])
    d = resources.describe(store, iris, entry)
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
    store: pyoxigraph.Store, iris: Iris
) -> None:
    concept = iris.concept("Safeguarding")
    everyone = resources.members_of(store, concept, "concept")
    assert len(everyone) == 35  # every seed entry is on the Safeguarding page
    when = pyoxigraph.NamedNode(str(DCTERMS.created))
    created = [
        next(store.quads_for_pattern(pyoxigraph.NamedNode(e), when, None)).object.value
        for e in everyone
    ]
    assert created == sorted(created, reverse=True)  # newest first
    pages = [resources.describe(store, iris, concept, n, 10) for n in (1, 2, 3, 4)]
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
    beyond = resources.describe(store, iris, concept, 5, 10)
    assert beyond is not None and beyond.members == []


def test_library_pages_its_parts_instead_of_listing_all(
    store: pyoxigraph.Store, iris: Iris
) -> None:
    d = resources.describe(store, iris, iris.library, 1, 5)
    assert d is not None and d.kind == "library"
    parts = d.objects(str(DCTERMS.hasPart))
    assert set(parts) == set(d.members) and len(parts) == 5
    assert d.page is not None and d.page.total == 35
    assert d.value(str(DCTERMS.title), iris.scheme)  # the scheme it links to, labelled


def test_scheme_labels_its_concepts(store: pyoxigraph.Store, iris: Iris) -> None:
    d = resources.describe(store, iris, iris.scheme)
    assert d is not None and d.kind == "scheme"
    concepts = d.objects(str(SKOS.hasTopConcept))
    assert len(concepts) == 9 and concepts == resources.concepts(store, iris)
    assert all(d.label(c) != c for c in concepts)


@pytest.mark.parametrize("which", ["dataset", "void"])
def test_dataset_and_void_are_the_void_graph(
    store: pyoxigraph.Store, iris: Iris, which: str
) -> None:
    d = resources.describe(store, iris, getattr(iris, which))
    assert d is not None and d.kind == "dataset"
    graph = list(store.quads_for_pattern(None, None, None, pyoxigraph.NamedNode(iris.void)))
    assert len(d.triples) == len(graph)
    assert d.value(str(VOID.triples), iris.dataset) == "365"
    assert str(VOID.Dataset) in d.objects(str(RDF.type), iris.dataset)


def test_unknown_iri_has_no_description(store: pyoxigraph.Store, iris: Iris) -> None:
    assert resources.describe(store, iris, iris.base + "entry/nothing-here") is None
    assert resources.describe(store, iris, "http://elsewhere.example/x") is None
    assert resources.describe(store, iris, iris.base + "entry/a b>") is None  # not an IRI
    assert resources.exists(store, iris.library) and resources.exists(store, iris.scheme)
    assert not resources.exists(store, iris.base + "category/nope")
    assert not resources.exists(store, "not an IRI")
    assert resources.members_of(store, iris.base + "category/x> ?p ?o", "concept") == []


def test_counts_per_category(store: pyoxigraph.Store, iris: Iris) -> None:
    counts = resources.category_counts(store)
    assert counts[iris.concept("Safeguarding")] == 35
    for concept in resources.concepts(store, iris):
        assert counts[concept] == len(resources.members_of(store, concept, "concept"))


# rdflib's JSON-LD parser builds a ConjunctiveGraph, which rdflib 7 itself deprecates.
JSONLD_WARNING = "ignore:ConjunctiveGraph is deprecated:DeprecationWarning"


@pytest.mark.filterwarnings(JSONLD_WARNING)
@pytest.mark.parametrize("fmt", RDF_FORMATS, ids=lambda f: f.key)
def test_every_format_round_trips(
    store: pyoxigraph.Store, iris: Iris, manifest: dict[str, object], fmt: RdfFormat
) -> None:
    """Serialize each kind of description, parse it back with rdflib: the same graph."""
    for iri in (
        str(manifest["example"]),
        iris.concept("Safeguarding"),
        iris.scheme,
        iris.library,
        iris.dataset,
    ):
        d = resources.describe(store, iris, iri, 1, 7)
        assert d is not None
        body = resources.serialize(d, fmt, iris)
        if fmt.key == "jsonld":  # parse offline: inline the published context
            doc = json.loads(body)
            assert doc["@context"] == iris.context
            doc["@context"] = jsonld.context()
            body = json.dumps(doc).encode()
        assert_isomorphic(rdflib.Graph().parse(data=body, format=fmt.rdflib), _graph(d))


def test_turtle_is_deterministic_and_prefixed(
    store: pyoxigraph.Store, iris: Iris, manifest: dict[str, object]
) -> None:
    turtle = next(f for f in RDF_FORMATS if f.key == "turtle")
    d1 = resources.describe(store, iris, str(manifest["example"]))
    d2 = resources.describe(store, iris, str(manifest["example"]))
    assert d1 is not None and d2 is not None
    a, b = resources.serialize(d1, turtle, iris), resources.serialize(d2, turtle, iris)
    assert a == b
    text = a.decode()
    assert text.startswith("@prefix category: ")  # sorted prefixes, only those used
    assert "@prefix sh:" not in text and "entry:" in text
