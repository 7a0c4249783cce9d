"""graph/store/resultset.py: Virtuoso's result-set Turtle read as TSV gives, in every results
format kgpub writes, the bytes of the same answer read from Virtuoso's JSON; what it cannot
tell exactly is given back (None) for the JSON path."""

from __future__ import annotations

import urllib.parse
import urllib.request
from typing import Any

import pyoxigraph
import pytest
from oxigraph_server import OxigraphServer
from virtuoso import Virtuoso

from graph.formats import SPARQL_RESULTS_JSON
from graph.iris import Iris
from graph.query import QueryJob
from graph.store.forward import SparqlRunner, _results, _tsv_results
from graph.store.protocol import RawAnswer, SparqlClient
from graph.store.resultset import TURTLE_ACCEPT, TURTLE_TYPES, as_tsv, is_result_set

XSD = "http://www.w3.org/2001/XMLSchema#"
GRAPH = "http://resultset.test/graph"
PUBLIC = "http://public.test/graph"
FORMATS = [
    pyoxigraph.QueryResultsFormat.JSON,
    pyoxigraph.QueryResultsFormat.XML,
    pyoxigraph.QueryResultsFormat.CSV,
    pyoxigraph.QueryResultsFormat.TSV,
]
# ~100 KB of escapes in one string (Virtuoso refuses so long a constant: "Value of ANY type
# column too long"; it builds one).
PIECE = 'x\\"y\\\\ \\u00e9 ' * 2_000
LONG = "BIND(CONCAT(" + ", ".join([f'"{PIECE}"'] * 4) + ") AS ?x)"

# Answers the Turtle path reads: each must give the JSON path's bytes.
EXACT = {
    "strings": 'SELECT ?x ?y WHERE { VALUES (?x ?y) { ("plain" "a\\"b\\\\c\\nd\\te\\rf")'
    ' ("é 𝄞 \\u2013"@en-gb "ünï"@de) ("" "trailing \\\\") ("tab\\there"@en "\\"") } }',
    "long": f"SELECT ?x WHERE {{ {LONG} }}",
    "unbound": 'SELECT ?x ?y ?z WHERE { VALUES (?x ?y ?z) { ("a" UNDEF UNDEF) } }',
    "iris": "SELECT ?x WHERE { VALUES ?x { <http://ex.org/a> <http://ex.org/x#y> <urn:x:y>"
    " <http://ex.org/a.b.> <http://ex.org/a%20b> <http://ex.org/dt/> } }",
    "datatypes": f'SELECT ?x WHERE {{ VALUES ?x {{ "2020-01-01T00:30:00Z"^^<{XSD}dateTime>'
    f' "2020-01-01T00:30:00.5+01:00"^^<{XSD}dateTime> "2020-01-01"^^<{XSD}date>'
    f' "2020"^^<{XSD}gYear> "x"^^<{XSD}string> "5"^^<{XSD}int> "http://a"^^<{XSD}anyURI>'
    ' "x"^^<http://ex.org/dt#a> "a b"^^<http://ex.org/a.b> "x"^^<http://ex.org/dt/> } }',
    "ordered": 'SELECT ?x WHERE { VALUES ?x { "c" "a" "b" "d"@en } } ORDER BY DESC(STR(?x))',
    "empty": 'SELECT ?x ?y WHERE { VALUES ?x { "a" } FILTER(false) }',
    "holes": 'SELECT ?x ?y WHERE { VALUES (?x ?y) { (UNDEF "b") ("a" UNDEF) (UNDEF UNDEF)'
    ' ("a" "b") } }',
    "one-unbound": 'SELECT ?x WHERE { VALUES ?x { UNDEF "a" UNDEF } }',
    "blank-nodes": f"SELECT ?s ?o WHERE {{ GRAPH <{GRAPH}> {{ ?s ?p ?o }} }} ORDER BY STR(?o)",
    "graph-names": f"SELECT DISTINCT ?g ?s WHERE {{ GRAPH ?g {{ ?s ?p ?o }} FILTER(?g = <{GRAPH}>"
    f" || ?s = <{GRAPH}>) }} ORDER BY ?s",
}
# Answers it gives back: numbers (Virtuoso writes them bare, xsd:double 1.5 as xsd:decimal
# would be, xsd:decimal 2.0 as 2) and booleans ("true" in Turtle, "1" in JSON).
INEXACT = {
    "numbers": "SELECT ?x WHERE { VALUES ?x { 1.5e0 1.5 2.0 7 } }",
    "boolean": "SELECT ?x WHERE { VALUES ?x { true } }",
    "star": "SELECT * WHERE { }",
}


def _ask(server: Virtuoso, query: str, accept: str) -> tuple[str, bytes]:
    data = urllib.parse.urlencode({"query": query}).encode()
    request = urllib.request.Request(server.query_url, data, {"Accept": accept})
    with urllib.request.urlopen(request, timeout=60) as answer:
        return answer.headers.get_content_type(), answer.read()


@pytest.fixture(scope="module")
def virtuoso_with_blanks(virtuoso: Virtuoso) -> Virtuoso:
    """Blank nodes and a graph's name as values (Virtuoso names its blank nodes itself: INSERT
    DATA refuses them)."""
    virtuoso.isql(
        f'SPARQL INSERT {{ GRAPH <{GRAPH}> {{ _:a <http://ex.org/p> "1st" .'
        f' _:b <http://ex.org/p> "2nd" . <{GRAPH}> <http://ex.org/p> "3rd" . }} }} WHERE {{ }};'
    )
    return virtuoso


@pytest.mark.parametrize("name", list(EXACT))
def test_the_turtle_answer_reads_as_the_json_one_in_every_format(
    virtuoso_with_blanks: Virtuoso, name: str
) -> None:
    server, public = virtuoso_with_blanks, {GRAPH: PUBLIC}
    media, turtle = _ask(server, EXACT[name], TURTLE_ACCEPT)
    assert media in TURTLE_TYPES, turtle[:300]
    tsv = as_tsv(turtle, public)
    assert tsv is not None, turtle[:2000]
    _, json = _ask(server, EXACT[name], SPARQL_RESULTS_JSON)
    for fmt in FORMATS:
        want = _results(json, public).serialize(format=fmt)
        assert _tsv_results(tsv).serialize(format=fmt) == want, (fmt, tsv[:2000])
    if name == "graph-names":
        assert GRAPH.encode() not in tsv and PUBLIC.encode() in tsv
    if name == "blank-nodes":
        assert tsv.count(b"_:") == 2


@pytest.mark.parametrize("name", list(INEXACT))
def test_what_the_turtle_cannot_tell_is_left_to_json(virtuoso: Virtuoso, name: str) -> None:
    media, turtle = _ask(virtuoso, INEXACT[name], TURTLE_ACCEPT)
    assert media in TURTLE_TYPES
    assert is_result_set(turtle)
    assert as_tsv(turtle, {}) is None


HEAD = (
    b"@prefix res: <http://www.w3.org/2005/sparql-results#> .\n"
    b"@prefix rdf: <http://www.w3.org/1999/02/22-rdf-syntax-ns#> .\n"
    b"_:_ a res:ResultSet .\n"
    b'_:_ res:resultVariable "x" .\n'
)


def _row(term: bytes) -> bytes:
    return (
        b'_:_ res:solution [\n      res:binding [ res:variable "x" ; res:value '
        + term
        + b" ] ] .\n"
    )


@pytest.mark.parametrize(
    "body",
    [
        HEAD + _row(b'"""long"""'),
        HEAD + _row(b'"raw\x01control"'),
        HEAD + _row(b"undeclared:name"),
        HEAD + b"@prefix p:\t<http://a/> .\n@prefix p:\t<http://b/> .\n" + _row(b"p:x"),
        HEAD + _row(b"<http://ex.org/\\u0041>"),
        HEAD + _row(b'"x" ; res:index 1'),
        HEAD + b"_:_ res:something 1 .\n" + _row(b'"x"'),
        HEAD + _row(b'"x"')[:-1],
        b"@prefix rs: <http://www.w3.org/2001/sw/DataAccess/tests/result-set#> .\n" + _row(b'"x"'),
    ],
)
def test_any_other_text_is_left_to_json(body: bytes) -> None:
    assert as_tsv(body, {}) is None


def test_prefixed_names_are_written_out() -> None:
    body = (
        HEAD
        + b"@prefix ns1:\t<http://ex.org/> .\n"
        + _row(b"ns1:a")
        + _row(b'"v"^^ns1:dt')
        + _row(b'"ns1:a"')
        + _row(b'"tab ns1:a"@en')
    )
    assert as_tsv(body, {"http://ex.org/a": "http://public/a"}) == (
        b'?x\n<http://public/a>\n"v"^^<http://ex.org/dt>\n"ns1:a"\n"tab ns1:a"@en\n'
    )


class _Recording(SparqlClient):
    """A client that notes what each forwarded query asked for."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.accepts: list[str] = []

    def raw(self, query: str, accept: str, **options: Any) -> RawAnswer:
        self.accepts.append(accept)
        return super().raw(query, accept, **options)


def _run(client: SparqlClient, text: str) -> bytes:
    runner = SparqlRunner(client, Iris.from_base("http://ex.org/"), GRAPH, PUBLIC, 60.0, 1)
    return runner.run(QueryJob(text, "SELECT", SPARQL_RESULTS_JSON, store="")).body


@pytest.mark.parametrize(
    ("text", "asked"),
    [
        ("SELECT ?s ?o WHERE { ?s ?p ?o }", [TURTLE_ACCEPT]),
        ("SELECT ?x WHERE { VALUES ?x { 1.5 } }", [TURTLE_ACCEPT, SPARQL_RESULTS_JSON]),
        ("SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }", [SPARQL_RESULTS_JSON]),
        # A LIMIT of TURTLE_ROWS or fewer: JSON at once (a number would be asked twice).
        ("SELECT ?x WHERE { VALUES ?x { 1.5 } } LIMIT 1000", [SPARQL_RESULTS_JSON]),
        ("SELECT ?s ?o WHERE { ?s ?p ?o } LIMIT 1001", [TURTLE_ACCEPT]),
    ],
)
def test_virtuoso_is_asked_turtle_for_a_select_of_variables(
    virtuoso_with_blanks: Virtuoso, text: str, asked: list[str]
) -> None:
    client = _Recording(virtuoso_with_blanks.query_url)
    try:
        body = _run(client, text)
    finally:
        client.close()
    assert client.accepts == asked
    assert b'"bindings":[{' in body


def test_a_server_that_answers_json_is_asked_json_from_then_on(
    oxigraph_server: OxigraphServer,
) -> None:
    client = _Recording(oxigraph_server.query_url)
    runner = SparqlRunner(client, Iris.from_base("http://ex.org/"), GRAPH, PUBLIC, 60.0, 1)
    try:
        for _ in range(2):
            job = QueryJob(
                'SELECT ?x WHERE { VALUES ?x { "a" } }', "SELECT", SPARQL_RESULTS_JSON, ""
            )
            assert b'"value":"a"' in runner.run(job).body
    finally:
        client.close()
    assert client.accepts == [TURTLE_ACCEPT, SPARQL_RESULTS_JSON]
