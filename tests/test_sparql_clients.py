"""Real SPARQL clients against the real server: SPARQLWrapper and rdflib's SPARQLStore.

Every query form in every return format SPARQLWrapper offers for it, by GET, URL-encoded POST
and direct POST; answers compared with pyoxigraph run in this process on the same store.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any
from xml.dom.minidom import Document

import pyoxigraph
import pytest
import rdflib
from live import Server
from rdfdiff import assert_isomorphic
from rdflib.plugins.stores.sparqlstore import SPARQLStore
from SPARQLWrapper import (
    CSV,
    GET,
    JSON,
    JSONLD,
    N3,
    POST,
    POSTDIRECTLY,
    RDFXML,
    TSV,
    TURTLE,
    URLENCODED,
    XML,
    SPARQLWrapper,
)

from graph.formats import (
    SPARQL_RESULTS_CSV,
    SPARQL_RESULTS_JSON,
    SPARQL_RESULTS_TSV,
    SPARQL_RESULTS_XML,
)

# SPARQLWrapper and rdflib's JSON-LD and RDF/XML readers build a deprecated ConjunctiveGraph.
pytestmark = pytest.mark.filterwarnings("ignore:ConjunctiveGraph is deprecated:DeprecationWarning")

PER_CATEGORY = (
    "PREFIX dcterms: <http://purl.org/dc/terms/>\n"
    "PREFIX skos: <http://www.w3.org/2004/02/skos/core#>\n"
    "SELECT ?label (COUNT(?e) AS ?n) WHERE { ?e dcterms:subject ?c . ?c skos:prefLabel ?label }\n"
    "GROUP BY ?label ORDER BY ?label"
)
RESULT_TYPES = {
    JSON: SPARQL_RESULTS_JSON,
    XML: SPARQL_RESULTS_XML,
    CSV: SPARQL_RESULTS_CSV,
    TSV: SPARQL_RESULTS_TSV,
}
METHODS = [(GET, URLENCODED), (POST, URLENCODED), (POST, POSTDIRECTLY)]
METHOD_IDS = ["GET", "POST-form", "POST-direct"]


@pytest.fixture(scope="module")
def store(seed_out: Path) -> pyoxigraph.Store:
    return pyoxigraph.Store.read_only(str(seed_out / "current" / "store"))


@pytest.fixture(scope="module")
def expected_rows(store: pyoxigraph.Store) -> list[dict[str, str]]:
    rows = store.query(PER_CATEGORY)
    assert isinstance(rows, pyoxigraph.QuerySolutions)
    found = [{"label": _text(r["label"]), "n": _text(r["n"])} for r in rows]
    assert len(found) == 9
    return found


def _text(term: object) -> str:
    return str(getattr(term, "value", term))


def _entry(store: pyoxigraph.Store) -> str:
    rows = store.query(
        "SELECT ?e { ?e <http://purl.org/dc/terms/created> ?c } ORDER BY DESC(?c) LIMIT 1"
    )
    assert isinstance(rows, pyoxigraph.QuerySolutions)
    return _text(next(iter(rows))["e"])


def _wrapper(live: Server, text: str, fmt: str, method: tuple[str, str]) -> SPARQLWrapper:
    sparql = SPARQLWrapper(live.base + "sparql")
    sparql.setQuery(text)
    sparql.setReturnFormat(fmt)
    sparql.setMethod(method[0])
    sparql.setRequestMethod(method[1])
    return sparql


def _rows(fmt: str, converted: Any) -> list[dict[str, str]]:
    """{variable: value} rows from what SPARQLWrapper's convert() gives for each format."""
    if fmt == JSON:
        return [{k: v["value"] for k, v in b.items()} for b in converted["results"]["bindings"]]
    if fmt == XML:
        assert isinstance(converted, Document)
        rows = []
        for result in converted.getElementsByTagName("result"):
            row = {}
            for binding in result.getElementsByTagName("binding"):
                value = binding.firstChild
                assert value is not None and value.firstChild is not None
                row[binding.getAttribute("name")] = value.firstChild.data  # type: ignore[attr-defined]
            rows.append(row)
        return rows
    if fmt == CSV:
        return list(csv.DictReader(io.StringIO(converted.decode("utf-8"), newline="")))
    parsed = pyoxigraph.parse_query_results(converted, format=pyoxigraph.QueryResultsFormat.TSV)
    assert isinstance(parsed, pyoxigraph.QuerySolutions)
    names = [v.value for v in parsed.variables]
    return [{n: _text(s[n]) for n in names} for s in parsed]


@pytest.mark.parametrize("method", METHODS, ids=METHOD_IDS)
@pytest.mark.parametrize("fmt", [JSON, XML, CSV, TSV])
def test_sparqlwrapper_select(
    live: Server, expected_rows: list[dict[str, str]], fmt: str, method: tuple[str, str]
) -> None:
    result = _wrapper(live, PER_CATEGORY, fmt, method).query()
    assert result.info()["content-type"].split(";")[0] == RESULT_TYPES[fmt]
    assert _rows(fmt, result.convert()) == expected_rows


@pytest.mark.parametrize("method", METHODS, ids=METHOD_IDS)
@pytest.mark.parametrize("fmt", [JSON, XML, CSV, TSV])
@pytest.mark.parametrize("answer", [True, False])
def test_sparqlwrapper_ask(live: Server, fmt: str, method: tuple[str, str], answer: bool) -> None:
    text = "ASK { ?s a <http://www.w3.org/2004/02/skos/core#Concept> }"
    if not answer:
        text = "ASK { ?s a <http://example.org/Nothing> }"
    converted = _wrapper(live, text, fmt, method).queryAndConvert()
    if fmt == JSON:
        got = converted["boolean"]  # type: ignore[index]
    elif fmt == XML:
        assert isinstance(converted, Document)
        node = converted.getElementsByTagName("boolean")[0].firstChild
        got = node.data == "true"  # type: ignore[union-attr]
    else:
        got = converted == b"true"
    assert got is answer


def _graph(fmt: str, converted: Any) -> rdflib.Graph:
    graph = rdflib.Graph()
    if fmt in (TURTLE, N3):  # SPARQLWrapper hands these over as bytes
        return graph.parse(data=converted, format="turtle")
    for triple in converted:
        graph.add(triple)
    return graph


def _local_graph(store: pyoxigraph.Store, text: str) -> rdflib.Graph:
    triples = store.query(text)
    assert isinstance(triples, pyoxigraph.QueryTriples)
    data = pyoxigraph.serialize(triples, format=pyoxigraph.RdfFormat.N_TRIPLES)
    return rdflib.Graph().parse(data=data, format="nt")


@pytest.mark.parametrize("method", METHODS, ids=METHOD_IDS)
@pytest.mark.parametrize("fmt", [TURTLE, N3, XML, RDFXML, JSONLD])
@pytest.mark.parametrize("form", ["CONSTRUCT", "DESCRIBE"])
def test_sparqlwrapper_construct_and_describe(
    live: Server, store: pyoxigraph.Store, form: str, fmt: str, method: tuple[str, str]
) -> None:
    entry = _entry(store)
    text = (
        f"DESCRIBE <{entry}>"
        if form == "DESCRIBE"
        else "CONSTRUCT { ?c ?p ?o } WHERE { ?c a <http://www.w3.org/2004/02/skos/core#Concept>"
        " ; ?p ?o }"
    )
    got = _graph(fmt, _wrapper(live, text, fmt, method).queryAndConvert())
    want = _local_graph(store, text)
    assert len(want) > 5
    assert_isomorphic(got, want)


@pytest.mark.parametrize("method", ["GET", "POST", "POST_FORM"])
@pytest.mark.parametrize("return_format", ["xml", "json"])
def test_rdflib_sparqlstore(
    live: Server,
    store: pyoxigraph.Store,
    expected_rows: list[dict[str, str]],
    return_format: str,
    method: str,
) -> None:
    endpoint = SPARQLStore(live.base + "sparql", returnFormat=return_format, method=method)
    graph = rdflib.Graph(store=endpoint)
    rows = [{"label": str(r[0]), "n": str(r[1])} for r in graph.query(PER_CATEGORY)]  # type: ignore[index]
    assert rows == expected_rows
    assert graph.query("ASK { ?s ?p ?o }").askAnswer is True
    entry = rdflib.URIRef(_entry(store))
    remote = rdflib.Graph()
    for triple in graph.triples((entry, None, None)):
        remote.add(triple)
    assert_isomorphic(remote, _local_graph(store, f"CONSTRUCT WHERE {{ <{entry}> ?p ?o }}"))
    default = pyoxigraph.DefaultGraph()
    assert len(graph) == sum(1 for _ in store.quads_for_pattern(None, None, None, default))
    constructed = graph.query(f"CONSTRUCT WHERE {{ <{entry}> ?p ?o }}").graph
    assert constructed is not None and len(constructed) == len(remote)
