"""The SHACL shapes: each rule rejects a graph that breaks it, with the exact focus node, path
and constraint component; both engines (pyshacl-turbo, the default, and pyshacl, the
reference) and the by-parts validation of the build give the same report on every graph."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import pyoxigraph
import pytest
import rdflib
from dumpfiles import read_dump
from live import ROOT, SEED
from rdflib.compare import graph_diff, to_isomorphic
from rdflib.namespace import DCMITYPE, RDF, SH

from graph import shacl
from graph.convert import Converted, convert, library_title
from graph.iris import Iris
from graph.listing import read_listings

PREFIXES = """\
@prefix dcterms: <http://purl.org/dc/terms/> .
@prefix dcmitype: <http://purl.org/dc/dcmitype/> .
@prefix dcat: <http://www.w3.org/ns/dcat#> .
@prefix skos: <http://www.w3.org/2004/02/skos/core#> .
@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .
@prefix kg: <http://example.org/> .
@prefix entry: <http://example.org/entry/> .
@prefix category: <http://example.org/category/> .
"""
NAMESPACES = {
    "dcterms": "http://purl.org/dc/terms/",
    "dcat": "http://www.w3.org/ns/dcat#",
    "skos": "http://www.w3.org/2004/02/skos/core#",
    "kg": "http://example.org/",
    "entry": "http://example.org/entry/",
    "category": "http://example.org/category/",
}

# A small library that conforms: every case below breaks one rule of it.
VALID = """
kg:library a dcmitype:Collection ;
    dcterms:title "Library"@en ;
    dcterms:description "What the library holds"@en ;
    dcat:themeTaxonomy kg:categories ;
    dcterms:hasPart entry:a , entry:b .
kg:categories a skos:ConceptScheme ;
    dcterms:title "Categories of Library"@en ;
    skos:hasTopConcept category:x , category:y .
category:x a skos:Concept ; skos:prefLabel "X"@en ; skos:notation "x" ;
    skos:inScheme kg:categories ; skos:topConceptOf kg:categories .
category:y a skos:Concept ; skos:prefLabel "Y"@en ; skos:notation "y" ;
    skos:inScheme kg:categories ; skos:topConceptOf kg:categories .
entry:a a dcmitype:Text ;
    dcterms:identifier "a" ;
    dcterms:title "A"@en ;
    dcterms:created "2020-01-01T10:00:00+00:00"^^xsd:dateTime ;
    dcterms:description "About A"@en ;
    dcterms:subject category:x ;
    dcterms:isPartOf kg:library .
entry:b a dcmitype:Text ;
    dcterms:identifier "b" ;
    dcterms:title "B"@en ;
    dcterms:created "2020-07-01T10:00:00+01:00"^^xsd:dateTime ;
    dcterms:modified "2021-02-03T04:05:06Z"^^xsd:dateTime ;
    dcterms:subject category:x , category:y ;
    dcterms:isPartOf kg:library .
"""


@dataclass(frozen=True)
class Case:
    """A graph breaking one rule: VALID without drop, with add; the results expected."""

    id: str
    drop: str
    add: str
    expected: list[tuple[str, str, str]]  # (focus, path, component), prefixed names


def case(id: str, expected: list[tuple[str, str, str]], drop: str = "", add: str = "") -> Case:
    return Case(id, drop, add, expected)


CASES = [
    # Entries (shapes/entry.ttl)
    case(
        "entry-missing-title",
        [("entry:a", "dcterms:title", "MinCount")],
        drop='entry:a dcterms:title "A"@en .',
    ),
    case(
        "entry-two-titles",
        [("entry:a", "dcterms:title", "MaxCount")],
        add='entry:a dcterms:title "A, again"@en .',
    ),
    case(
        "entry-empty-title",
        [("entry:a", "dcterms:title", "MinLength"), ("entry:a", "dcterms:title", "Pattern")],
        drop='entry:a dcterms:title "A"@en .',
        add='entry:a dcterms:title ""@en .',
    ),
    case(
        "entry-blank-title",
        [("entry:a", "dcterms:title", "Pattern")],
        drop='entry:a dcterms:title "A"@en .',
        add='entry:a dcterms:title " \\t "@en .',
    ),
    case(
        "entry-title-without-language",
        [("entry:a", "dcterms:title", "Datatype")],
        drop='entry:a dcterms:title "A"@en .',
        add='entry:a dcterms:title "A" .',
    ),
    case(
        "entry-missing-created",
        [("entry:a", "dcterms:created", "MinCount")],
        drop='entry:a dcterms:created "2020-01-01T10:00:00+00:00"^^xsd:dateTime .',
    ),
    case(
        "entry-created-without-time-zone",
        [("entry:a", "dcterms:created", "Pattern")],
        drop='entry:a dcterms:created "2020-01-01T10:00:00+00:00"^^xsd:dateTime .',
        add='entry:a dcterms:created "2020-01-01T10:00:00"^^xsd:dateTime .',
    ),
    case(
        "entry-created-not-a-datetime",
        [("entry:a", "dcterms:created", "Datatype")],
        drop='entry:a dcterms:created "2020-01-01T10:00:00+00:00"^^xsd:dateTime .',
        add='entry:a dcterms:created "2020-01-01T10:00:00+00:00" .',
    ),
    case(
        "entry-created-a-date",
        [("entry:a", "dcterms:created", "Datatype"), ("entry:a", "dcterms:created", "Pattern")],
        drop='entry:a dcterms:created "2020-01-01T10:00:00+00:00"^^xsd:dateTime .',
        add='entry:a dcterms:created "2020-01-01"^^xsd:date .',
    ),
    case(
        "entry-two-created",
        [("entry:a", "dcterms:created", "MaxCount")],
        add='entry:a dcterms:created "2020-01-01T11:00:00+00:00"^^xsd:dateTime .',
    ),
    case(
        "entry-two-modified",
        [("entry:b", "dcterms:modified", "MaxCount")],
        add='entry:b dcterms:modified "2022-01-01T00:00:00Z"^^xsd:dateTime .',
    ),
    case(
        "entry-modified-without-time-zone",
        [("entry:b", "dcterms:modified", "Pattern")],
        drop='entry:b dcterms:modified "2021-02-03T04:05:06Z"^^xsd:dateTime .',
        add='entry:b dcterms:modified "2021-02-03T04:05:06"^^xsd:dateTime .',
    ),
    case(
        "entry-two-descriptions",
        [("entry:a", "dcterms:description", "MaxCount")],
        add='entry:a dcterms:description "More about A"@en .',
    ),
    case(
        "entry-description-without-language",
        [("entry:a", "dcterms:description", "Datatype")],
        drop='entry:a dcterms:description "About A"@en .',
        add='entry:a dcterms:description "About A" .',
    ),
    case(
        "entry-no-subject",
        [("entry:a", "dcterms:subject", "MinCount")],
        drop="entry:a dcterms:subject category:x .",
    ),
    case(
        "entry-subject-not-a-concept",
        [("entry:a", "dcterms:subject", "Class"), ("entry:a", "dcterms:subject", "Node")],
        drop="entry:a dcterms:subject category:x .",
        add="entry:a dcterms:subject kg:library .",
    ),
    case(
        "entry-subject-concept-in-no-scheme",
        [("entry:a", "dcterms:subject", "Node"), ("category:z", "skos:inScheme", "MinCount")],
        add="entry:a dcterms:subject category:z . category:z a skos:Concept ; "
        'skos:prefLabel "Z"@en ; skos:notation "z" .',
    ),
    case(
        "entry-subject-concept-of-no-concept-scheme",
        [("entry:a", "dcterms:subject", "Node"), ("category:z", "skos:inScheme", "Class")],
        add="entry:a dcterms:subject category:z . category:z a skos:Concept ; "
        'skos:prefLabel "Z"@en ; skos:notation "z" ; skos:inScheme kg:elsewhere .',
    ),
    case(
        "entry-not-part-of-the-library",
        [("entry:a", "dcterms:isPartOf", "MinCount")],
        drop="entry:a dcterms:isPartOf kg:library .",
    ),
    case(
        "entry-part-of-no-collection",
        [("entry:a", "dcterms:isPartOf", "Class")],
        drop="entry:a dcterms:isPartOf kg:library .",
        add="entry:a dcterms:isPartOf kg:categories .",
    ),
    case(
        "entry-missing-identifier",
        [("entry:a", "dcterms:identifier", "MinCount")],
        drop='entry:a dcterms:identifier "a" .',
    ),
    case(
        "entry-two-identifiers",
        [("entry:a", "dcterms:identifier", "MaxCount")],
        add='entry:a dcterms:identifier "a2" .',
    ),
    case(
        "entry-blank-node",
        [("_:", "", "NodeKind")],
        add='[] a dcmitype:Text ; dcterms:identifier "c" ; dcterms:title "C"@en ; '
        'dcterms:created "2020-01-01T10:00:00Z"^^xsd:dateTime ; '
        "dcterms:subject category:x ; dcterms:isPartOf kg:library .",
    ),
    # Concepts and their scheme (shapes/concept.ttl)
    case(
        "concept-two-preflabels-in-one-language",
        [("category:x", "skos:prefLabel", "UniqueLang")],
        add='category:x skos:prefLabel "Ex"@en .',
    ),
    case(
        "concept-missing-preflabel",
        [("category:x", "skos:prefLabel", "MinCount")],
        drop='category:x skos:prefLabel "X"@en .',
    ),
    case(
        "concept-empty-preflabel",
        [("category:x", "skos:prefLabel", "MinLength")],
        drop='category:x skos:prefLabel "X"@en .',
        add='category:x skos:prefLabel ""@en .',
    ),
    case(
        "concept-preflabel-also-altlabel",
        [("category:x", "skos:prefLabel", "Disjoint")],
        add='category:x skos:altLabel "X"@en .',
    ),
    case(
        "concept-preflabel-also-hiddenlabel",
        [("category:x", "skos:prefLabel", "Disjoint")],
        add='category:x skos:hiddenLabel "X"@en .',
    ),
    case(
        "concept-altlabel-also-hiddenlabel",
        [("category:x", "skos:altLabel", "Disjoint")],
        add='category:x skos:altLabel "Ex"@en ; skos:hiddenLabel "Ex"@en .',
    ),
    case(
        "concept-duplicate-notation-in-the-scheme",
        [("category:x", "", "SPARQL"), ("category:y", "", "SPARQL")],
        drop='category:y skos:notation "y" .',
        add='category:y skos:notation "x" .',
    ),
    case(
        "concept-missing-notation",
        [("category:y", "skos:notation", "MinCount")],
        drop='category:y skos:notation "y" .',
    ),
    case(
        "concept-empty-notation",
        [("category:y", "skos:notation", "MinLength")],
        drop='category:y skos:notation "y" .',
        add='category:y skos:notation "" .',
    ),
    case(
        "concept-blank-node",
        [("_:", "", "NodeKind")],
        add='[] a skos:Concept ; skos:prefLabel "W"@en ; skos:notation "w" ; '
        "skos:inScheme kg:categories .",
    ),
    case(
        "concept-two-notations",
        [("category:y", "skos:notation", "MaxCount")],
        add='category:y skos:notation "y2" .',
    ),
    case(
        "concept-not-in-the-scheme",
        [("category:y", "skos:inScheme", "MinCount"), ("entry:b", "dcterms:subject", "Node")],
        drop="category:y skos:inScheme kg:categories .",
    ),
    case(
        "concept-in-no-concept-scheme",
        [("category:y", "skos:inScheme", "Class"), ("entry:b", "dcterms:subject", "Node")],
        drop="category:y skos:inScheme kg:categories .",
        add="category:y skos:inScheme kg:library .",
    ),
    case(
        "concept-top-concept-of-no-scheme",
        [("category:y", "skos:topConceptOf", "Class")],
        add="category:y skos:topConceptOf kg:library .",
    ),
    case(
        "scheme-missing-title",
        [("kg:categories", "dcterms:title", "MinCount")],
        drop='kg:categories dcterms:title "Categories of Library"@en .',
    ),
    case(
        "scheme-top-concept-not-a-concept",
        [("kg:categories", "skos:hasTopConcept", "Class")],
        add="kg:categories skos:hasTopConcept kg:library .",
    ),
    # The library (shapes/library.ttl)
    case(
        "library-missing-title",
        [("kg:library", "dcterms:title", "MinCount")],
        drop='kg:library dcterms:title "Library"@en .',
    ),
    case(
        "library-two-titles",
        [("kg:library", "dcterms:title", "MaxCount")],
        add='kg:library dcterms:title "Bibliothèque"@fr .',
    ),
    case(
        "library-missing-description",
        [("kg:library", "dcterms:description", "MinCount")],
        drop='kg:library dcterms:description "What the library holds"@en .',
    ),
    case(
        "library-missing-theme-taxonomy",
        [("kg:library", "dcat:themeTaxonomy", "MinCount")],
        drop="kg:library dcat:themeTaxonomy kg:categories .",
    ),
    case(
        "library-theme-taxonomy-not-a-scheme",
        [("kg:library", "dcat:themeTaxonomy", "Class")],
        drop="kg:library dcat:themeTaxonomy kg:categories .",
        add="kg:library dcat:themeTaxonomy kg:library .",
    ),
]
# Graphs that bend the model without breaking a rule.
CONFORMING = {
    "valid": ("", ""),
    "concept-preflabels-in-two-languages": ("", 'category:x skos:prefLabel "Ix"@fr .'),
    "entry-without-description": ('entry:a dcterms:description "About A"@en .', ""),
    "entry-created-in-utc": (
        'entry:a dcterms:created "2020-01-01T10:00:00+00:00"^^xsd:dateTime .',
        'entry:a dcterms:created "2020-01-01T10:00:00Z"^^xsd:dateTime .',
    ),
}


def build_graph(drop: str, add: str) -> rdflib.Graph:
    graph = rdflib.Graph().parse(data=PREFIXES + VALID, format="turtle")
    for triple in rdflib.Graph().parse(data=PREFIXES + drop, format="turtle"):
        assert triple in graph, f"the valid graph has no {triple}"
        graph.remove(triple)
    graph.parse(data=PREFIXES + add, format="turtle")
    return graph


def ntriples(graph: rdflib.Graph) -> bytes:
    """Sorted N-Triples of an rdflib graph, as pyoxigraph writes them."""
    data: bytes = graph.serialize(format="nt", encoding="utf-8")
    triples = pyoxigraph.parse(data, pyoxigraph.RdfFormat.N_TRIPLES)
    return pyoxigraph.serialize(triples, format=pyoxigraph.RdfFormat.N_TRIPLES) or b""


def partition(data: bytes) -> shacl.Partition:
    """Cut any graph as the build cuts a library: entries (typed dcmitype:Text), links to
    them, and the rest."""
    triples = list(pyoxigraph.parse(data, pyoxigraph.RdfFormat.N_TRIPLES))
    text_class = pyoxigraph.NamedNode(str(DCMITYPE.Text))
    type_ = pyoxigraph.NamedNode(str(RDF.type))
    entries = {t.subject for t in triples if t.predicate == type_ and t.object == text_class}
    blocks: dict[object, list[pyoxigraph.Triple]] = {e: [] for e in entries}
    context, links = [], []
    for t in triples:
        if t.subject in entries:
            blocks[t.subject].append(t)
        elif t.object in entries:
            links.append(t)
        else:
            context.append(t)

    def nt(ts: list[pyoxigraph.Triple]) -> bytes:
        return pyoxigraph.serialize(ts, format=pyoxigraph.RdfFormat.N_TRIPLES) or b""

    parts = [nt(b) for b in blocks.values()]
    starts = [0]
    for part in parts:
        starts.append(starts[-1] + len(part))
    return shacl.Partition(nt(context), nt(links), b"".join(parts), starts)


def expand(name: str) -> str:
    prefix, _, local = name.partition(":")
    return NAMESPACES.get(prefix, "") + local if prefix in NAMESPACES else name


def found(report: shacl.Report) -> list[tuple[str, str, str]]:
    """(focus, path, component) of each result, blank nodes as '_:'."""
    out = []
    for focus, path, component, *_ in shacl.result_keys(report.graph):
        out.append((focus, path, component))
    return sorted(out)


def wanted(c: Case) -> list[tuple[str, str, str]]:
    return sorted((expand(f), expand(p), f"{SH}{k}ConstraintComponent") for f, p, k in c.expected)


def assert_same_report(actual: shacl.Report, reference: shacl.Report) -> None:
    """Same results, key by key, and isomorphic report graphs (with the difference shown)."""
    assert shacl.result_keys(actual.graph) == shacl.result_keys(reference.graph)
    assert actual.conforms == reference.conforms
    iso_a, iso_r = to_isomorphic(actual.graph), to_isomorphic(reference.graph)
    if iso_a != iso_r:
        _, only_a, only_r = graph_diff(iso_a, iso_r)
        raise AssertionError(
            f"reports differ\nonly in actual:\n{only_a.serialize(format='nt')}"
            f"\nonly in reference:\n{only_r.serialize(format='nt')}"
        )


@pytest.fixture(scope="module")
def shapes() -> rdflib.Graph:
    return shacl.load_shapes()


@pytest.mark.parametrize("c", CASES, ids=[c.id for c in CASES])
def test_each_rule_rejects_a_graph_that_breaks_it(c: Case, shapes: rdflib.Graph) -> None:
    report = shacl.validate(ntriples(build_graph(c.drop, c.add)), shapes=shapes)
    assert not report.conforms
    assert found(report) == wanted(c)


@pytest.mark.parametrize("name", sorted(CONFORMING), ids=sorted(CONFORMING))
def test_graphs_that_keep_the_rules_conform(name: str, shapes: rdflib.Graph) -> None:
    for engine in shacl.ENGINES:
        report = shacl.validate(
            ntriples(build_graph(*CONFORMING[name])), shapes=shapes, engine=engine
        )
        assert (engine, report.conforms, found(report)) == (engine, True, [])


GRAPHS = {c.id: (c.drop, c.add) for c in CASES} | CONFORMING


@pytest.mark.parametrize("name", sorted(GRAPHS), ids=sorted(GRAPHS))
def test_engines_and_parts_give_pyshacls_report(name: str, shapes: rdflib.Graph) -> None:
    data = ntriples(build_graph(*GRAPHS[name]))
    reference = shacl.validate(data, shapes=shapes, engine="pyshacl")
    assert_same_report(shacl.validate(data, shapes=shapes, engine="turbo"), reference)
    # By parts, as the build validates: one entry a chunk, then all entries in one chunk.
    for chunk in (1, 100):
        assert_same_report(shacl.validate(partition(data), shapes=shapes, chunk=chunk), reference)


@pytest.fixture(scope="module")
def seed() -> tuple[bytes, shacl.Partition]:
    pages, entries, _ = read_listings([SEED])
    converted = convert(entries, Iris.from_base("http://example.org/"), library_title(pages))
    return converted.ntriples, shacl.Partition.of(converted)


def test_the_seed_conforms_and_both_engines_and_parts_agree(
    seed: tuple[bytes, shacl.Partition], shapes: rdflib.Graph
) -> None:
    data, parts = seed
    reference = shacl.validate(data, shapes=shapes, engine="pyshacl")
    assert reference.conforms
    assert_same_report(shacl.validate(data, shapes=shapes), reference)
    for chunk in (1, 4, 1000):
        assert_same_report(shacl.validate(parts, shapes=shapes, chunk=chunk), reference)
    assert sorted(parts.ntriples.splitlines()) == sorted(data.splitlines())
    assert sorted(partition(data).ntriples.splitlines()) == sorted(data.splitlines())


@pytest.mark.parametrize(
    "extra",
    [
        "kgs:PartsShape a sh:NodeShape ; sh:targetClass dcmitype:Collection ;"
        ' sh:property [ sh:path dcterms:hasPart ; sh:maxCount 3 ; sh:message "few" ] .',
        "kgs:ClosedShape a sh:NodeShape ; sh:targetClass dcmitype:Collection ; sh:closed true ;"
        " sh:ignoredProperties ( rdf:type dcterms:title dcterms:description"
        ' dcat:themeTaxonomy ) ; sh:message "closed" .',
        "kgs:Many a sh:NodeShape ; sh:targetClass dcmitype:Collection ; sh:sparql [ a"
        ' sh:SPARQLConstraint ; sh:message "many" ; sh:prefixes kgs:prefixes ; sh:select'
        ' "SELECT $this ?value WHERE { $this dcterms:hasPart ?value }" ] .',
        "kgs:Any a sh:NodeShape ; sh:targetClass dcmitype:Collection ; sh:sparql [ a"
        ' sh:SPARQLConstraint ; sh:message "any" ; sh:select'
        ' "SELECT $this ?value WHERE { $this ?p ?value . FILTER (isIRI(?value) &&'
        " CONTAINS(STR(?value), '/entry/')) }\" ] .",
    ],
    ids=["path", "closed", "sparql", "sparql-any-predicate"],
)
def test_a_shape_that_reads_the_links_sees_them_by_parts(
    seed: tuple[bytes, shacl.Partition], shapes: rdflib.Graph, extra: str
) -> None:
    """The library's hasPart links are left out of the parts unless a shape may read them:
    one that names hasPart, or a closed shape, finds them as pyshacl does on the whole. (A
    shape that targets entries through the links is not local: see graph/shacl.py.)"""
    data, parts = seed
    more = rdflib.Graph()
    for triple in shapes:
        more.add(triple)
    prefixes = "".join(f"@prefix {p}: <{ns}> .\n" for p, ns in shapes.namespaces())
    more.parse(data=prefixes + extra, format="turtle")
    reference = shacl.validate(data, shapes=more, engine="pyshacl")
    assert not reference.conforms
    for chunk in (4, 1000):
        assert_same_report(shacl.validate(parts, shapes=more, chunk=chunk), reference)


SHORT_TITLES = (
    "kgs:Short a sh:NodeShape ; sh:targetClass dcmitype:Text ; sh:property [ sh:path"
    ' dcterms:title ; sh:maxLength 50 ; sh:message "a short title" ] .'
)


def converted_ahead(ahead: shacl.Ahead, spool: BinaryIO) -> Converted:
    """The seed converted into a spool, as a build does, ahead validating it meanwhile."""
    pages, entries, _ = read_listings([SEED])
    return convert(
        entries,
        Iris.from_base("http://example.org/"),
        library_title(pages),
        spool=spool,
        written=ahead.written,
    )


@pytest.mark.parametrize("settled", [True, False], ids=["all-ahead", "some-under-way"])
def test_entries_validated_ahead_as_convert_writes_them_give_pyshacls_report(
    tmp_path: Path, shapes: rdflib.Graph, settled: bool
) -> None:
    """A full build validates the chunks of entries convert has written while it writes the
    next (shacl.Ahead): the report is pyshacl's on the whole graph, the violations found
    ahead in it. A shape that long titles break puts violations in most chunks."""
    more = rdflib.Graph()
    for triple in shapes:
        more.add(triple)
    prefixes = "".join(f"@prefix {p}: <{ns}> .\n" for p, ns in shapes.namespaces())
    more.parse(data=prefixes + SHORT_TITLES, format="turtle")
    for chunk in (1, 4):
        ahead = shacl.Ahead(more, chunk)
        with (tmp_path / f"spool-{chunk}").open("w+b") as spool:
            converted = converted_ahead(ahead, spool)
            reference = shacl.validate(converted.ntriples, shapes=more, engine="pyshacl")
            assert len(found(reference)) > 10
            if settled:
                ahead.settle()
            try:
                report = shacl.validate(
                    shacl.Partition.of(converted), shapes=more, chunk=chunk, ahead=ahead
                )
            finally:
                ahead.close()
        assert_same_report(report, reference)
        whole = len(converted.entries) // chunk
        if settled:  # every whole chunk's report was the thread's
            assert ahead.taken == whole
        else:
            assert 0 <= ahead.taken <= whole


@pytest.mark.parametrize(
    ("cut", "chunk", "same_shapes"),
    [(True, 4, True), (False, 3, True), (False, 4, False)],
    ids=["cut-otherwise", "other-chunks", "other-shapes"],
)
def test_entries_validated_ahead_are_not_taken_for_another_text(
    tmp_path: Path, shapes: rdflib.Graph, cut: bool, chunk: int, same_shapes: bool
) -> None:
    """Chunks validated ahead are taken only for the text they were read from, in the same
    chunks, with the same shapes: otherwise validate() does them itself."""
    ahead = shacl.Ahead(shapes, 4)
    with (tmp_path / "spool").open("w+b") as spool:
        converted = converted_ahead(ahead, spool)
        ahead.settle()
        data = converted.ntriples
        reference = shacl.validate(data, shapes=shapes, engine="pyshacl")
        other = partition(data) if cut else shacl.Partition.of(converted)
        with_shapes = shapes if same_shapes else shacl.load_shapes()
        try:
            report = shacl.validate(other, shapes=with_shapes, chunk=chunk, ahead=ahead)
        finally:
            ahead.close()
    assert_same_report(report, reference)
    assert ahead.taken == 0


def test_our_shapes_do_not_read_the_links(shapes: rdflib.Graph) -> None:
    """Nothing in shapes/ looks at the library's hasPart (the SPARQL constraint on notations
    reads other predicates), so validation by parts leaves 100k links out."""
    links = b"<http://example.org/library> <http://purl.org/dc/terms/hasPart> <http://e/1> .\n"
    assert not shacl._links_matter(shapes, links)


def test_the_seed_with_broken_entries_by_parts_matches_pyshacl(
    seed: tuple[bytes, shacl.Partition], shapes: rdflib.Graph
) -> None:
    """Violations in several chunks, at entries and at a concept, merge into one report."""
    data, _ = seed
    lines = data.splitlines(keepends=True)
    titles = [i for i, line in enumerate(lines) if b"/terms/title>" in line and b"/entry/" in line]
    broken = [line for i, line in enumerate(lines) if i not in titles[::5]]
    # The concepts' labels (not the publishers', which have their own shape).
    broken = [
        line.replace(b'"@en', b'" ', 1)
        if b"skos/core#prefLabel" in line and b"/category/" in line.split(b" ", 1)[0]
        else line
        for line in broken
    ]
    text = b"".join(broken)
    reference = shacl.validate(text, shapes=shapes, engine="pyshacl")
    assert len(found(reference)) == len(titles[::5]) + 9 > 9
    for chunk in (1, 3):
        assert_same_report(shacl.validate(partition(text), shapes=shapes, chunk=chunk), reference)


def test_result_keys_keep_repeats_and_name_blank_shapes(shapes: rdflib.Graph) -> None:
    """Two results that differ only by their source shape stay two keys."""
    graph = build_graph("", 'category:x skos:altLabel "X"@en ; skos:hiddenLabel "X"@en .')
    keys = shacl.result_keys(shacl.validate(ntriples(graph), shapes=shapes).graph)
    pref = [k for k in keys if k[1].endswith("#prefLabel")]
    assert len(pref) == 2
    assert pref[0][:5] == pref[1][:5]
    assert {k[5] for k in pref} == {
        "a prefLabel is never also an altLabel",
        "a prefLabel is never also a hiddenLabel",
    }
    assert {k[6].split(" ; ")[0] for k in pref} == {
        "[<http://www.w3.org/ns/shacl#disjoint> <http://www.w3.org/2004/02/skos/core#altLabel>",
        "[<http://www.w3.org/ns/shacl#disjoint> <http://www.w3.org/2004/02/skos/core#hiddenLabel>",
    }


# The CLI on a library that breaks the shapes. No listing can: the parser rules out every
# defect the shapes catch. So a test-only launcher damages two entries after parsing (no
# subject; a blank title) and runs the real `kgpub` main in that process.
LAUNCHER = """
import sys
from dataclasses import replace
import graph.publication as publication
import graph.shacl
from server.cli import main

graph.shacl.CHUNK = 4  # chunks the seed fills: a full validation takes some ahead of convert

read = publication.read_listings

def damaged(paths, **options):
    pages, entries, warnings = read(paths, **options)
    entries[0] = replace(entries[0], categories=())
    entries[1] = replace(entries[1], title="   ")
    return pages, entries, warnings

publication.read_listings = damaged
sys.exit(main(sys.argv[1:]))
"""


def kgpub(*args: str, damaged: bool = False) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KGPUB_")}
    cmd = ["-c", LAUNCHER] if damaged else ["-m", "server.cli"]
    return subprocess.run(
        [sys.executable, *cmd, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def snapshot(out: Path) -> dict[str, bytes]:
    files = {"current": os.readlink(out / "current").encode()}
    for path in sorted(out.rglob("*")):
        if path.is_file():
            files[str(path.relative_to(out))] = path.read_bytes()
    return files


@pytest.mark.parametrize("command", ["build", "validate", "first build"])
def test_cli_prints_each_violation_and_publishes_nothing(tmp_path: Path, command: str) -> None:
    """A rebuild validates the changed chunks; validate and a first build every entry, some
    while convert writes the others (graph/shacl.py Ahead)."""
    out = tmp_path / "pub"
    base = ["--base-uri", "http://example.org/", "--out", str(out)]
    if command != "first build":
        assert kgpub("build", str(SEED), *base, "-q").returncode == 0
    before = snapshot(out) if out.exists() else {}
    args = [command.split()[-1], str(SEED), "--base-uri", "http://example.org/"]
    result = kgpub(*args, *(["--out", str(out)] if command != "validate" else []), damaged=True)
    assert result.returncode == 1, result.stderr
    assert result.stdout == ""
    _, entries, _ = read_listings([SEED])
    first, second = entries[0], entries[1]
    iris = Iris.from_base("http://example.org/")
    lines = result.stderr.splitlines()
    expected = [
        (
            first.places[0].line,
            f"{first.places[0]}: {first.title!r} "
            f"<{iris.entry(first.title, first.created)}>: subject: an entry has at least one "
            "subject, a concept of the library's scheme [MinCountConstraintComponent]",
        ),
        (
            second.places[0].line,
            f"{second.places[0]}: '   ' "
            f"<{iris.entry('   ', second.created)}>: title: an entry has exactly one non-empty "
            "title [PatternConstraintComponent]",
        ),
    ]
    assert lines[:2] == [text for _, text in sorted(expected)]  # in source order
    assert lines[2:] == [
        "2 violations of the SHACL shapes",
        "nothing was published; the previous publication is untouched",
    ]
    assert "Traceback" not in result.stderr
    if before:
        assert snapshot(out) == before
    else:
        assert not (out / "current").exists()
    assert not list((out / "releases").glob(".building-*"))


def test_cli_with_the_reference_engine_publishes_the_same(tmp_path: Path) -> None:
    """--shacl-engine pyshacl (slow, the reference) works end to end and agrees."""
    releases = {}
    for engine in shacl.ENGINES:
        out = tmp_path / engine
        result = kgpub(
            "build",
            str(SEED),
            "--base-uri",
            "http://example.org/",
            "--out",
            str(out),
            "--shacl-engine",
            engine,
        )
        assert result.returncode == 0, result.stderr
        releases[engine] = out / "current"
    turbo, pyshacl = releases["turbo"], releases["pyshacl"]
    assert (turbo / "validation.ttl").read_bytes() == (pyshacl / "validation.ttl").read_bytes()
    for name in ("library.nt", "library.ttl", "library.jsonld"):
        assert read_dump(turbo, name) == read_dump(pyshacl, name)
    damaged = kgpub("validate", str(SEED), "--shacl-engine", "pyshacl", damaged=True)
    assert damaged.returncode == 1
    assert damaged.stderr.splitlines()[-2] == "2 violations of the SHACL shapes"
