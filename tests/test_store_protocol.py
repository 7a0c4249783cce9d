"""graph/store/protocol.py against a private Virtuoso (tests/virtuoso.py), and against stub
servers for what a real one will not do on demand (other media types, silence, 503).

The literal tables record what Virtuoso 7.2 does to terms, as measured: a parity test between
backends trips on exactly these rows."""

from __future__ import annotations

import gc
import http.server
import io
import pickle
import re
import shutil
import socket
import ssl
import struct
import subprocess
import threading
import time
import urllib.parse
import uuid
import weakref
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import ClassVar

import pyoxigraph
import pytest
from hypothesis import given
from hypothesis import strategies as st
from live import free_port
from virtuoso import Virtuoso

from graph.errors import StoreError, StoreUnavailable
from graph.store import protocol
from graph.store.protocol import RawAnswer, SparqlClient, iri_ref, show_url

XSD = "http://www.w3.org/2001/XMLSchema#"
EX = "http://example.org/"
P = pyoxigraph.NamedNode(f"{EX}p")


def lit(value: str, datatype: str | None = None, language: str | None = None) -> pyoxigraph.Literal:
    if language:
        return pyoxigraph.Literal(value, language=language)
    if datatype:
        return pyoxigraph.Literal(value, datatype=pyoxigraph.NamedNode(XSD + datatype))
    return pyoxigraph.Literal(value)


def fresh_graph() -> str:
    return f"{EX}graph/{uuid.uuid4().hex}"


UNSET = object()


def connect(
    server: Virtuoso, *, data_url: object = UNSET, password: str | None = None, timeout: float = 30
) -> SparqlClient:
    """A client of the private Virtuoso as kgpub's server would make it (dba, digest)."""
    return SparqlClient(
        server.query_url,
        server.update_url,
        server.data_url if data_url is UNSET else data_url,  # type: ignore[arg-type]
        user=server.user,
        password=password or server.password,
        timeout=timeout,
        server_timeout_param="timeout",
    )


def ntriples(count: int, prefix: str = "s") -> bytes:
    return b"".join(f'<{EX}{prefix}{i}> <{EX}p> "value {i}"@en .\n'.encode() for i in range(count))


def count(store: SparqlClient, graph: str) -> int:
    rows = store.select(
        f"SELECT (COUNT(*) AS ?n) WHERE {{ GRAPH {iri_ref(graph)} {{ ?s ?p ?o }} }}"
    )
    return int(rows[0]["n"].value)


@pytest.fixture
def store(virtuoso: Virtuoso) -> SparqlClient:
    return connect(virtuoso)


# -- terms: what goes in (N-Triples text, written by hand) and what comes back -------------------

# (id, object as N-Triples, from SELECT (JSON), from CONSTRUCT (N-Triples)); None: as the column
# before it, or as pyoxigraph reads the N-Triples (what the embedded store would give).
TERMS = [
    ("plain", '"plain"', lit("plain"), lit("plain")),
    ("xsd-string", f'"typed"^^<{XSD}string>', lit("typed"), lit("typed")),
    ("lang-tag-lowercased", '"colour"@en-GB', lit("colour", language="en-gb"), None),
    ("lang", '"chat"@fr', lit("chat", language="fr"), None),
    ("datetime-offset-kept", f'"2024-03-01T10:00:00+01:00"^^<{XSD}dateTime>', None, None),
    ("datetime-z-kept", f'"2024-03-01T10:00:00Z"^^<{XSD}dateTime>', None, None),
    ("datetime-no-zone-kept", f'"2024-03-01T10:00:00"^^<{XSD}dateTime>', None, None),
    ("datetime-fraction-kept", f'"2024-03-01T10:00:00.250Z"^^<{XSD}dateTime>', None, None),
    ("date", f'"2024-03-01"^^<{XSD}date>', None, None),
    ("gyear", f'"2024"^^<{XSD}gYear>', None, None),
    ("integer-canonical", f'"042"^^<{XSD}integer>', lit("42", "integer"), lit("42", "integer")),
    ("decimal-canonical", f'"1.50"^^<{XSD}decimal>', lit("1.5", "decimal"), lit("1.5", "decimal")),
    ("double-not-canonical", f'"1.5E0"^^<{XSD}double>', lit("1.5", "double"), lit("1.5", "double")),
    ("boolean-json-1", f'"true"^^<{XSD}boolean>', lit("1", "boolean"), lit("true", "boolean")),
    ("custom-datatype", f'"abc"^^<{EX}dt>', None, None),
    ("any-uri", f'"http://x/"^^<{XSD}anyURI>', None, None),
    ("escapes-astral", '"a\\nb \\"q\\" \\t \\\\ é 𝄞"', lit('a\nb "q" \t \\ é 𝄞'), None),
    ("empty", '""', lit(""), None),
    ("spaces-kept", '"  both ends  "', lit("  both ends  "), None),
    ("iri-non-ascii", f"<{EX}ü?q=1#f>", pyoxigraph.NamedNode(f"{EX}ü?q=1#f"), None),
]


def parsed(term_nt: str) -> pyoxigraph.NamedNode | pyoxigraph.Literal:
    """The object of an N-Triples line as pyoxigraph reads it: the identity expectation."""
    line = f"<{EX}s> <{EX}p> {term_nt} .\n".encode()
    [quad] = pyoxigraph.parse(line, format=pyoxigraph.RdfFormat.N_TRIPLES)
    obj = quad.object
    assert isinstance(obj, pyoxigraph.NamedNode | pyoxigraph.Literal)
    return obj


@pytest.fixture(scope="module")
def terms_graph(virtuoso: Virtuoso) -> Iterator[tuple[SparqlClient, str]]:
    """One subject per TERMS row, put once by the Graph Store Protocol with digest auth."""
    store = connect(virtuoso)
    graph = fresh_graph()
    lines = [f"<{EX}row/{row[0]}> <{EX}p> {row[1]} ." for row in TERMS]
    store.put_graph(graph, "\n".join(lines).encode() + b"\n")
    yield store, graph
    store.delete_graph(graph)


@pytest.mark.parametrize(
    ("term_nt", "by_select", "by_construct"), [r[1:] for r in TERMS], ids=[r[0] for r in TERMS]
)
def test_terms_come_back_as_virtuoso_keeps_them(
    terms_graph: tuple[SparqlClient, str],
    request: pytest.FixtureRequest,
    term_nt: str,
    by_select: pyoxigraph.NamedNode | pyoxigraph.Literal | None,
    by_construct: pyoxigraph.NamedNode | pyoxigraph.Literal | None,
) -> None:
    store, graph = terms_graph
    row = pyoxigraph.NamedNode(f"{EX}row/{request.node.callspec.id}")
    where = f"WHERE {{ GRAPH {iri_ref(graph)} {{ {row} {P} ?o }} }}"
    [solution] = store.select(f"SELECT ?o {where}")
    [triple] = store.construct(f"CONSTRUCT {{ {row} {P} ?o }} {where}")
    same = parsed(term_nt)
    assert (solution["o"], triple.object) == (by_select or same, by_construct or by_select or same)


# Two spellings of one value in one graph: Virtuoso keeps terms by value, RDF by spelling.
# (id, objects inserted in this order, triples kept, objects CONSTRUCT returns: for one triple
# kept, the values it may be)
SAME_VALUE = [
    ("integer-spellings", [f'"42"^^<{XSD}integer>', f'"042"^^<{XSD}integer>'], 1, None),
    (
        "one-instant-two-zones",
        [
            f'"2024-03-01T09:00:00Z"^^<{XSD}dateTime>',
            f'"2024-03-01T10:00:00+01:00"^^<{XSD}dateTime>',
        ],
        1,
        [lit("2024-03-01T09:00:00Z", "dateTime")],
    ),
    (
        "numbers-of-three-types",
        [f'"1"^^<{XSD}integer>', f'"1.0"^^<{XSD}decimal>', f'"1"^^<{XSD}double>'],
        1,
        # Which of the three it keeps, and how it spells it, varies from run to run
        # (measured: mostly the double).
        [lit(v, t) for v in ("1", "1.0") for t in ("integer", "decimal", "double")],
    ),
    ("boolean-spellings", [f'"true"^^<{XSD}boolean>', f'"1"^^<{XSD}boolean>'], 1, None),
    ("lang-tag-case", ['"a"@en-GB', '"a"@en-gb'], 1, None),
    # RDF 1.1 says these are one term; Virtuoso keeps two (and pyoxigraph reads both as one).
    ("plain-and-xsd-string", ['"x"', f'"x"^^<{XSD}string>'], 2, [lit("x"), lit("x")]),
]


@pytest.mark.parametrize(
    ("objects", "kept", "returned"), [r[1:] for r in SAME_VALUE], ids=[r[0] for r in SAME_VALUE]
)
def test_virtuoso_keeps_one_triple_per_value(
    store: SparqlClient, objects: list[str], kept: int, returned: list[pyoxigraph.Literal] | None
) -> None:
    graph = fresh_graph()
    data = " ".join(f"<{EX}s> <{EX}p> {o} ." for o in objects)
    store.update(f"INSERT DATA {{ GRAPH {iri_ref(graph)} {{ {data} }} }}")
    try:
        assert count(store, graph) == kept
        got = [
            t.object
            for t in store.construct(f"CONSTRUCT WHERE {{ GRAPH {iri_ref(graph)} {{ ?s ?p ?o }} }}")
        ]
        expected = returned or [parsed(objects[0])]
        if kept == 1:
            assert len(got) == 1 and str(got[0]) in set(map(str, expected)), got
        else:
            assert sorted(map(str, got)) == sorted(map(str, expected))
    finally:
        store.delete_graph(graph)


def test_plain_literal_does_not_match_xsd_string(store: SparqlClient) -> None:
    """A pattern with "x"^^xsd:string misses a stored "x" (RDF 1.1 says they are one term)."""
    graph = fresh_graph()
    store.put_graph(graph, f'<{EX}s> <{EX}p> "x" .\n'.encode())
    try:
        g = iri_ref(graph)
        assert store.ask(f'ASK {{ GRAPH {g} {{ ?s ?p "x" }} }}')
        assert not store.ask(f'ASK {{ GRAPH {g} {{ ?s ?p "x"^^<{XSD}string> }} }}')
    finally:
        store.delete_graph(graph)


def test_blank_nodes_keep_their_identity_across_rows(store: SparqlClient) -> None:
    """Virtuoso names blank nodes "nodeID://b…" in JSON: read as _:b…, as in its N-Triples."""
    graph = fresh_graph()
    store.put_graph(
        graph, f'<{EX}a> <{EX}p> _:x .\n<{EX}b> <{EX}p> _:x .\n_:x <{EX}p> "in" .\n'.encode()
    )
    try:
        g = iri_ref(graph)
        rows = store.select(
            f"SELECT ?s ?o WHERE {{ GRAPH {g} {{ ?s {P} ?o FILTER isBlank(?o) }} }}"
        )
        assert len(rows) == 2 and rows[0]["o"] == rows[1]["o"]
        assert isinstance(rows[0]["o"], pyoxigraph.BlankNode)
        triples = store.construct(f"CONSTRUCT WHERE {{ GRAPH {g} {{ ?s ?p ?o }} }}")
        assert {t.object for t in triples if isinstance(t.object, pyoxigraph.BlankNode)} == {
            rows[0]["o"]
        }
    finally:
        store.delete_graph(graph)


def test_isql_bulk_loads_a_file(virtuoso: Virtuoso, store: SparqlClient) -> None:
    """The fixture's isql helper drives Virtuoso's own bulk loader (ld_dir, rdf_loader_run) on a
    file in its DirsAllowed folder."""
    folder = virtuoso.folder / f"bulk-{uuid.uuid4().hex}"
    folder.mkdir()
    (folder / "part.nt").write_bytes(ntriples(50))
    graph = fresh_graph()
    virtuoso.isql(f"ld_dir('{folder}', '*.nt', '{graph}');\nrdf_loader_run();\ncheckpoint;")
    try:
        assert count(store, graph) == 50
    finally:
        store.delete_graph(graph)


# -- Graph Store Protocol and Update ---------------------------------------------------------


class OneWay(io.RawIOBase):
    """A readable stream that cannot seek (a pipe, a decompressor)."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        return self._data.readinto(buffer)


def make_body(kind: str, tmp_path: Path, data: bytes) -> object:
    """The N-Triples `data` as one kind of body put_graph takes."""
    path = tmp_path / "graph.nt"
    path.write_bytes(data)
    if kind == "bytes":
        return data
    if kind == "path":
        return path
    if kind == "file":
        return path.open("rb")
    if kind == "file-not-at-start":
        seeked = io.BytesIO(b"# skipped by seeking\n" + data)
        seeked.seek(len(b"# skipped by seeking\n"))
        return seeked
    if kind == "stream-not-seekable":
        return OneWay(data)
    assert kind == "chunks"
    return (data[i : i + 7000] for i in range(0, len(data), 7000))


BODIES = ["bytes", "path", "file", "file-not-at-start", "stream-not-seekable", "chunks"]


@pytest.mark.parametrize("kind", BODIES)
@pytest.mark.parametrize("with_gsp", [True, False], ids=["graph-store", "insert-data"])
def test_put_graph_sends_every_kind_of_body_whole(
    virtuoso: Virtuoso, tmp_path: Path, kind: str, with_gsp: bool
) -> None:
    """Over 64 KiB, so the body waits for the digest challenge; Virtuoso would keep nothing of a
    chunked body, so a count equal to the lines proves the Content-Length."""
    store = connect(virtuoso) if with_gsp else connect(virtuoso, data_url=None)
    data = ntriples(2000)
    assert len(data) > 64 << 10
    body = make_body(kind, tmp_path, data)
    graph = fresh_graph()
    try:
        store.put_graph(graph, body)  # type: ignore[arg-type]
        assert count(store, graph) == 2000
    finally:
        store.delete_graph(graph)
        if hasattr(body, "close"):
            body.close()


@pytest.mark.parametrize("with_gsp", [True, False], ids=["graph-store", "insert-data"])
def test_put_replaces_post_adds_delete_drops(virtuoso: Virtuoso, with_gsp: bool) -> None:
    store = connect(virtuoso) if with_gsp else connect(virtuoso, data_url=None)
    graph = fresh_graph()
    store.put_graph(graph, ntriples(5, "first"))
    store.put_graph(graph, ntriples(3, "second"))
    assert count(store, graph) == 3
    store.post_graph(graph, ntriples(2, "third"))
    assert count(store, graph) == 5
    store.post_graph(fresh_graph_posted := fresh_graph(), ntriples(1))
    assert count(store, fresh_graph_posted) == 1
    store.delete_graph(graph)
    store.delete_graph(fresh_graph_posted)
    assert count(store, graph) == 0
    store.delete_graph(graph)  # a missing graph is not an error


def test_insert_batches_with_blank_nodes(store: SparqlClient) -> None:
    """Virtuoso refuses blank nodes in INSERT DATA; such a batch goes as INSERT {...} WHERE {}."""
    graph = fresh_graph()
    node = pyoxigraph.BlankNode("n")
    triples = [
        pyoxigraph.Triple(pyoxigraph.NamedNode(f"{EX}s{i}"), P, lit(str(i))) for i in range(7)
    ]
    triples += [
        pyoxigraph.Triple(pyoxigraph.NamedNode(f"{EX}a"), P, node),
        pyoxigraph.Triple(node, P, lit("b")),
    ]
    try:
        store.insert(graph, triples, batch=3)
        assert count(store, graph) == 9
        rows = store.select(
            f"SELECT ?o WHERE {{ GRAPH {iri_ref(graph)} {{ <{EX}a> {P} ?b . ?b {P} ?o }} }}"
        )
        assert rows == [{"o": lit("b")}]
    finally:
        store.delete_graph(graph)


def test_update_insert_and_delete_data(store: SparqlClient) -> None:
    graph = iri_ref(fresh_graph())
    store.update(f'INSERT DATA {{ GRAPH {graph} {{ <{EX}s> {P} "a"@en, "b"@en }} }}')
    store.update(f'DELETE DATA {{ GRAPH {graph} {{ <{EX}s> {P} "a"@en }} }}')
    rows = store.select(f"SELECT ?o WHERE {{ GRAPH {graph} {{ ?s ?p ?o }} }}")
    assert rows == [{"o": lit("b", language="en")}]
    store.update(f"DROP SILENT GRAPH {graph}")


def test_dataset_parameters_confine_the_query(store: SparqlClient) -> None:
    """Protocol §2.1.4: default-graph-uri and named-graph-uri replace the store's dataset (whose
    default graph, on Virtuoso, is every graph including its own system graphs)."""
    one, two = fresh_graph(), fresh_graph()
    store.put_graph(one, ntriples(2))
    store.put_graph(two, ntriples(3))
    try:
        query = "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }"
        assert int(store.select(query, default_graphs=[one])[0]["n"].value) == 2
        assert int(store.select(query, default_graphs=[one, two])[0]["n"].value) == 5
        assert int(store.select(query)[0]["n"].value) > 5
        named = "SELECT DISTINCT ?g WHERE { GRAPH ?g { ?s ?p ?o } }"
        rows = store.select(named, named_graphs=[two])
        assert rows == [{"g": pyoxigraph.NamedNode(two)}]
        assert store.ask("ASK { ?s ?p ?o }", default_graphs=[two])
        assert not store.ask(f"ASK {{ <{EX}s2> ?p ?o }}", default_graphs=[one])
    finally:
        store.delete_graph(one)
        store.delete_graph(two)


def test_raw_streams_the_answer_and_any_status(store: SparqlClient) -> None:
    graph = fresh_graph()
    store.put_graph(graph, ntriples(3))
    try:
        answer = store.raw(
            "SELECT ?s WHERE { ?s ?p ?o } ORDER BY ?s", "text/csv", default_graphs=[graph]
        )
        with answer.body:
            assert (answer.status, answer.content_type.split(";")[0]) == (200, "text/csv")
            assert answer.body.read().decode().splitlines() == [
                '"s"',
                *(f'"{EX}s{i}"' for i in range(3)),
            ]
        bad = store.raw("SELEC ?x", "application/sparql-results+json")
        with bad.body:
            assert bad.status == 400 and b"syntax error" in bad.body.read()
    finally:
        store.delete_graph(graph)


def test_raw_never_authenticates(virtuoso: Virtuoso) -> None:
    """Untrusted queries run as the anonymous account even when the client holds credentials."""
    store = SparqlClient(virtuoso.update_url, user=virtuoso.user, password=virtuoso.password)
    assert store.ask("ASK {}")  # the client's own queries answer the challenge
    answer = store.raw("ASK {}", "application/sparql-results+json")
    with answer.body:
        assert answer.status == 401


# -- the anonymous endpoint reads only ----------------------------------------------------------

READ_ONLY = [
    ("update-by-protocol", lambda v, g: SparqlClient(v.query_url).update(insert(g))),
    (
        "update-in-query-parameter",
        lambda v, g: raise_unless_ok(SparqlClient(v.query_url).raw(insert(g), "*/*")),
    ),
    (
        "graph-store-put",
        lambda v, g: SparqlClient(v.query_url, data_url=f"{v.base}/sparql-graph-crud").put_graph(
            g, ntriples(1)
        ),
    ),
]


def insert(graph: str) -> str:
    return f"INSERT DATA {{ GRAPH {iri_ref(graph)} {{ <{EX}s> {P} 1 }} }}"


def raise_unless_ok(answer: RawAnswer) -> None:
    status, _, body = answer
    body.close()
    if status != 200:
        raise StoreError("test", f"HTTP {status}")


@pytest.mark.parametrize("attempt", [r[1] for r in READ_ONLY], ids=[r[0] for r in READ_ONLY])
def test_anonymous_endpoint_refuses_writes(
    virtuoso: Virtuoso, store: SparqlClient, attempt: Callable[[Virtuoso, str], None]
) -> None:
    graph = fresh_graph()
    with pytest.raises(StoreError):
        attempt(virtuoso, graph)
    assert count(store, graph) == 0


# -- failures -------------------------------------------------------------------------------------

SECRET = "not-the-password-5f3a"


def chain(exc: BaseException | None) -> str:
    """Everything an exception and its causes would print."""
    text = ""
    while exc is not None:
        text += f"{exc!s} {exc!r} {exc.args!r} "
        exc = exc.__cause__ or exc.__context__
    return text


@pytest.mark.parametrize(
    "call",
    [
        lambda s: s.update(insert(fresh_graph())),
        lambda s: s.put_graph(fresh_graph(), ntriples(2000)),
        lambda s: s.post_graph(fresh_graph(), ntriples(1)),
    ],
    ids=["update", "put-large", "post-small"],
)
def test_wrong_password_is_a_store_error_without_the_password(
    virtuoso: Virtuoso, call: Callable[[SparqlClient], None]
) -> None:
    store = connect(virtuoso, password=SECRET)
    with pytest.raises(StoreError) as caught:
        call(store)
    assert not isinstance(caught.value, StoreUnavailable)
    assert "401" in str(caught.value)
    assert SECRET not in chain(caught.value) and SECRET not in repr(store)


def test_non_ascii_password_is_refused_without_quoting_it(virtuoso: Virtuoso) -> None:
    secret = "pässwörd"
    store = connect(virtuoso, password=secret)
    with pytest.raises(StoreError, match="ASCII") as caught:
        store.update(insert(fresh_graph()))
    assert caught.value.__cause__ is None and "ä" not in chain(caught.value)


def test_store_error_pickles_whole() -> None:
    error = StoreUnavailable("http://h/sparql", "no answer within 1 s")
    copy = pickle.loads(pickle.dumps(error))
    assert (type(copy), copy.endpoint, copy.message, str(copy)) == (
        StoreUnavailable,
        error.endpoint,
        error.message,
        str(error),
    )


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://127.0.0.1:8890/sparql?x=1", "http://127.0.0.1:8890/sparql"),
        ("https://[::1]:443/a/b", "https://[::1]:443/a/b"),
        ("http://user:pw@host/sparql", "http://host/sparql"),
    ],
    ids=["query-string", "ipv6", "user-information"],
)
def test_urls_are_shown_without_secrets(url: str, shown: str) -> None:
    assert show_url(url) == shown


@pytest.mark.parametrize(
    "url", ["ftp://host/sparql", "file:///etc/passwd", "http://user:pw@host/sparql", "sparql"]
)
def test_a_bad_endpoint_url_is_refused(url: str) -> None:
    with pytest.raises(StoreError) as caught:
        SparqlClient(url)
    assert "pw" not in str(caught.value)


@pytest.mark.parametrize("iri", ["http://a b/", "no-scheme", "http://x/>{ } DROP ALL #"])
def test_graph_iris_are_checked_before_use(virtuoso: Virtuoso, iri: str) -> None:
    calls: list[Callable[[], object]] = [
        lambda: connect(virtuoso).delete_graph(iri),
        lambda: connect(virtuoso).select("ASK {}", default_graphs=[iri]),
        lambda: connect(virtuoso, data_url=None).put_graph(iri, b""),
    ]
    for call in calls:
        with pytest.raises(StoreError, match="not an IRI"):
            call()


def test_unreachable_store_fails_fast() -> None:
    port = free_port()  # nothing listens there
    store = SparqlClient(f"http://127.0.0.1:{port}/sparql", timeout=5)
    start = time.monotonic()
    with pytest.raises(StoreUnavailable, match=f"127.0.0.1:{port}/sparql: cannot connect"):
        store.ask("ASK {}")
    assert time.monotonic() - start < 1


def test_row_cap_is_not_passed_on_as_whole(store: SparqlClient) -> None:
    """Virtuoso cuts results at ResultSetMaxRows (10,000 packaged) with 200 and a header."""
    query = "SELECT ?a ?d WHERE { ?a ?b ?c . ?d ?e ?f } LIMIT 20000"
    with pytest.raises(StoreError, match="row cap of 10000"):
        store.select(query)
    with pytest.raises(StoreError, match="row cap"):
        store.raw(query, "text/csv")


def test_virtuoso_cuts_a_construct_without_a_word(store: SparqlClient) -> None:
    """A CONSTRUCT past ResultSetMaxRows (10,000) is cut with 200 and no header: a Virtuoso
    quirk this client cannot see, recorded here so that the deployment notes keep it in mind."""
    pairs = "CONSTRUCT { ?a <http://x/p> ?d } WHERE { ?a a ?c . ?d a ?f } LIMIT 200000"
    [row] = store.select(
        "SELECT (COUNT(*) AS ?n) WHERE { SELECT DISTINCT ?a ?d WHERE { ?a a ?c . ?d a ?f } }"
    )
    assert int(row["n"].value) > 20000
    assert len(store.construct(pairs)) == 10001


@pytest.mark.slow
def test_store_budget_cut_is_unavailable_not_a_wrong_count(
    virtuoso: Virtuoso, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Virtuoso answers a query over its budget with 200 and partial results (X-SQL-State:
    S1TAT): a COUNT that would be wrong; or, now and then for the same query, with 500 and
    SR203 (the statement killed). The store is told 1 s (it stops at 2 s); the local budget is
    kept far beyond, so that a busy machine cannot make the local one fire first."""
    monkeypatch.setattr(protocol, "SERVER_MARGIN", 29.0)
    store = connect(virtuoso, timeout=30.0)
    heavy = "SELECT (COUNT(*) AS ?n) WHERE { ?a ?b ?c . ?d ?e ?f FILTER(STR(?c) < STR(?f)) }"
    with pytest.raises(StoreUnavailable, match=r"S1TAT|SR203"):
        store.select(heavy)


# -- stub servers: media types, silence, overload --------------------------------------------------


class Stub(http.server.BaseHTTPRequestHandler):
    """Answers every request with the class's status, headers and body."""

    status = 200
    headers_out: ClassVar[dict[str, str]] = {}
    body = b""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(self.status)
        for name, value in self.headers_out.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def stub(status: int, headers: dict[str, str], body: bytes) -> Iterator[str]:
    handler = type("Handler", (Stub,), {"status": status, "headers_out": headers, "body": body})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/sparql"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


TRIPLE = pyoxigraph.Triple(pyoxigraph.NamedNode(f"{EX}s"), P, lit("1.5", "double"))
NT = f"{TRIPLE} .\n".encode()
# (id, the stub's Content-Type, its body, the triples construct() reads, or the error's words)
CONSTRUCT_ANSWERS = [
    ("n-triples", "application/n-triples; charset=UTF-8", NT, [TRIPLE]),
    ("n-triples-as-text-plain", "text/plain; charset=UTF-8", NT, [TRIPLE]),
    ("turtle", "text/turtle", f'<{EX}s> <{EX}p> "1.5"^^<{XSD}double> .'.encode(), [TRIPLE]),
    (
        "rdf-xml",
        "application/rdf+xml",
        pyoxigraph.serialize([TRIPLE], format=pyoxigraph.RdfFormat.RDF_XML),
        [TRIPLE],
    ),
    ("empty", "application/n-triples", b"# Empty NT\n", []),
    ("html", "text/html", b"<html>hello</html>", "not RDF"),
    ("broken", "application/n-triples", b"<not closed", "unreadable"),
]


@pytest.mark.parametrize(
    ("ctype", "body", "expected"),
    [r[1:] for r in CONSTRUCT_ANSWERS],
    ids=[r[0] for r in CONSTRUCT_ANSWERS],
)
def test_construct_reads_the_rdf_syntax_it_gets(ctype: str, body: bytes, expected: object) -> None:
    with stub(200, {"Content-Type": ctype}, body) as url:
        store = SparqlClient(url)
        if isinstance(expected, str):
            with pytest.raises(StoreError, match=expected):
                store.construct("CONSTRUCT WHERE { ?s ?p ?o }")
        else:
            assert store.construct("CONSTRUCT WHERE { ?s ?p ?o }") == expected


# (id, status, headers, body, the error class, words of its message)
FAILURES = [
    ("overloaded", 503, {"Retry-After": "5"}, b"busy", StoreUnavailable, "HTTP 503: busy"),
    ("gateway", 502, {}, b"", StoreUnavailable, "HTTP 502"),
    (
        "virtuoso-txn-timeout",
        500,
        {"Content-Type": "text/plain"},
        b"Virtuoso S1T00 Error SR171: Transaction timed out",
        StoreUnavailable,
        "SR171",
    ),
    (
        "virtuoso-anytime-killed",
        500,
        {"Content-Type": "text/plain"},
        b"Virtuoso HY008 Error SR203: Async statement killed by SQLCancel.",
        StoreUnavailable,
        "SR203",
    ),
    (
        "server-error",
        500,
        {"Content-Type": "text/plain"},
        b"Virtuoso 42000 Error",
        StoreError,
        "HTTP 500: Virtuoso 42000",
    ),
    (
        "html-error",
        404,
        {"Content-Type": "text/html"},
        b"<html><title>Not</title><p>found</p></html>",
        StoreError,
        "HTTP 404: Not found",
    ),
    ("needs-credentials", 401, {}, b"", StoreError, "asks for credentials"),
    (
        "json-not-json",
        200,
        {"Content-Type": "application/sparql-results+json"},
        b"{",
        StoreError,
        "unreadable SPARQL JSON",
    ),
    ("not-json", 200, {"Content-Type": "text/html"}, b"true", StoreError, "not SPARQL JSON"),
    (
        "cut-by-budget",
        200,
        {"Content-Type": "application/sparql-results+json", "X-SQL-State": "S1TAT"},
        b"{}",
        StoreUnavailable,
        "S1TAT",
    ),
]


@pytest.mark.parametrize(
    ("status", "headers", "body", "error", "words"),
    [r[1:] for r in FAILURES],
    ids=[r[0] for r in FAILURES],
)
def test_failures_are_store_errors(
    status: int, headers: dict[str, str], body: bytes, error: type[StoreError], words: str
) -> None:
    with stub(status, headers, body) as url:
        with pytest.raises(StoreError) as caught:
            SparqlClient(url).select("SELECT * WHERE { ?s ?p ?o }")
        assert type(caught.value) is error
        assert (
            str(caught.value) == f"{url}: {caught.value.message}" and words in caught.value.message
        )


def test_silent_store_times_out_within_the_budget() -> None:
    """A store that accepts the connection and never answers: the local budget stops the call."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        store = SparqlClient(f"http://127.0.0.1:{listener.getsockname()[1]}/sparql", timeout=0.5)
        start = time.monotonic()
        with pytest.raises(StoreUnavailable, match=r"no answer within 0\.5 s"):
            store.ask("ASK {}")
        assert time.monotonic() - start < 1.5


# -- persistent connections ------------------------------------------------------------------


class KeepAliveStub(http.server.BaseHTTPRequestHandler):
    """An HTTP/1.1 store answering every query `true`, counting the connections it accepts;
    with `hang_up`, it closes each connection after one answer without saying so (as a store
    does with an idle connection past its keep-alive timeout)."""

    protocol_version = "HTTP/1.1"
    hang_up = False
    connections: ClassVar[list[int]] = []

    def setup(self) -> None:
        super().setup()
        self.connections.append(1)

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = b'{"head": {}, "boolean": true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/sparql-results+json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = self.hang_up

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def keep_alive_stub(
    hang_up: bool, tls: tuple[Path, Path] | None = None
) -> Iterator[tuple[str, list[int]]]:
    """A store that keeps connections alive (or hangs up after each answer), on https with
    tls's certificate and key."""
    connections: list[int] = []
    handler = type("Handler", (KeepAliveStub,), {"hang_up": hang_up, "connections": connections})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    if tls is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*tls)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    scheme = "https" if tls is not None else "http"
    try:
        yield f"{scheme}://127.0.0.1:{server.server_address[1]}/sparql", connections
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_queries_reuse_one_connection() -> None:
    """One TCP connection for a run of queries, the app's and the public's alike."""
    with keep_alive_stub(hang_up=False) as (url, connections):
        store = SparqlClient(url)
        for _ in range(5):
            assert store.ask("ASK {}") is True
            answer = store.raw("ASK {}", "application/sparql-results+json")
            assert answer.status == 200 and b"true" in answer.body.read()
            answer.body.close()
        store.close()
    assert len(connections) == 1


def test_a_connection_the_store_closed_is_replaced_and_the_query_answered() -> None:
    """A store that drops each connection after one answer: every query is still answered,
    each on a new connection (the one it closed fails once, and the query is sent again)."""
    with keep_alive_stub(hang_up=True) as (url, connections):
        store = SparqlClient(url)
        for _ in range(4):
            assert store.ask("ASK {}") is True
            time.sleep(0.05)  # the store's close has arrived before the next query
        store.close()
    assert len(connections) == 4


def test_a_forwarded_query_keeps_nothing_of_its_request_alive() -> None:
    """Once a query forwarded to the store is answered, nothing holds what its request held.
    rdflib's parser leaves reference cycles through the frames it ran in, which only the
    collector's rare full run frees (graph/store/forward.py's _parse): run on the request's
    thread, they kept its frames alive, and a worker every large answer it had forwarded."""
    from graph.iris import Iris
    from graph.query import QueryJob
    from graph.store.forward import SparqlRunner

    class Held:  # what a request's frames hold: the store's answer, the response
        pass

    def request(runner: SparqlRunner, job: QueryJob, held: Held) -> bytes:
        return runner.run(job).body

    job = QueryJob("ASK { ?s ?p ?o }", "ASK", "application/sparql-results+json", store="")
    with keep_alive_stub(hang_up=False) as (url, _):
        client = SparqlClient(url)
        runner = SparqlRunner(client, Iris.from_base(EX), f"{EX}graph", f"{EX}void", 10.0, 1)
        held = Held()
        alive = weakref.ref(held)
        gc.disable()  # as in a worker between the collector's full runs
        try:
            assert b"true" in request(runner, job, held)
            del held
            assert alive() is None
        finally:
            gc.enable()
            client.close()


def test_an_answer_left_unread_is_not_taken_for_the_next() -> None:
    """A body closed before its end closes its connection: the next query gets its own answer."""
    with keep_alive_stub(hang_up=False) as (url, connections):
        store = SparqlClient(url)
        answer = store.raw("ASK {}", "application/sparql-results+json")
        assert answer.body.read(3) == b'{"h'
        answer.body.close()
        assert store.ask("ASK {}") is True
        store.close()
    assert len(connections) == 2


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        # Virtuoso's time budget stopping a query midway: 500 and the results it had (seen at
        # 1M entries for the queries that outrun the budget on every backend): out of time.
        (500, b'\n{ "head": { "link": [], "vars": ["e"] },\n  "results": { "bindings": [', "busy"),
        (
            500,
            b"Virtuoso S1T00 Error SR171: Transaction timed out\n\nSPARQL query:\nSELECT",
            "busy",
        ),
        (
            500,
            b"Virtuoso HY008 Error SR203: Async statement killed by SQLCancel.\n\nSPARQL query:",
            "busy",
        ),
        (503, b"Service Unavailable", "busy"),
        # The store failing on a query kgpub let through (Virtuoso 7.2 on 1/0): 502.
        (500, b"Virtuoso 22012 Error SR084: Division by 0.\n\nSPARQL query:\nSELECT", "failed"),
        (403, b"Forbidden", "failed"),  # kgpub's anonymous account refused: the store's setup
        (400, b"Virtuoso 37000 Error SP030: syntax error\n\nSPARQL query:\nSELECT", "refused"),
    ],
)
def test_a_store_failing_is_told_from_a_query_it_refuses(
    status: int, body: bytes, error: str
) -> None:
    from graph.errors import QuerySyntaxError, StoreFailed
    from graph.store.forward import _read

    answer = RawAnswer(status, "text/plain", io.BytesIO(body))
    with pytest.raises((StoreError, QuerySyntaxError)) as caught:
        _read(answer, "http://127.0.0.1:1/sparql")
    kind = {StoreUnavailable: "busy", StoreFailed: "failed", QuerySyntaxError: "refused"}
    assert kind[type(caught.value)] == error
    assert "SPARQL query" not in str(caught.value)  # the store's copy, with the release's graphs


@pytest.mark.parametrize(
    "written",
    ["urn:kgpub:release/void", "urn:kgpub:release\\/void", "\\u0075rn:kgpub:release/void"],
    ids=["as-is", "escaped-slash", "escaped-letter"],
)
def test_a_server_graph_in_an_answer_is_shown_by_its_public_name(written: str) -> None:
    """However the store's JSON writes the name of a graph it holds the release's VoID in,
    the user sees the public name (graph/store/forward.py reads such answers term by term)."""
    from graph.store.forward import _results

    body = '{"head":{"vars":["g"]},"results":{"bindings":[{"g":{"type":"uri","value":"%s"}}]}}'
    public = {"urn:kgpub:release/void": f"{EX}.well-known/void"}
    solutions = list(_results((body % written).encode(), public))
    assert [s["g"] for s in solutions] == [pyoxigraph.NamedNode(f"{EX}.well-known/void")]


# -- the exchange on a kept connection (RFC 9112), against a store scripted byte for byte ---------

ASK_TRUE = b'{"head": {}, "boolean": true}'
JSON_TYPE = b"Content-Type: application/sparql-results+json\r\n"


def answer(*fields: bytes, body: bytes = ASK_TRUE, status: bytes = b"HTTP/1.1 200 OK") -> bytes:
    """An answer's bytes: the status line, JSON's media type, the fields given, Content-Length."""
    length = b"Content-Length: %d\r\n" % len(body)
    return (
        status
        + b"\r\n"
        + JSON_TYPE
        + b"".join(f + b"\r\n" for f in fields)
        + length
        + b"\r\n"
        + body
    )


def chunked(*pieces: bytes, head: bytes = b"", trailer: bytes = b"") -> bytes:
    """ASK_TRUE in chunked transfer coding (RFC 9112 §7.1), in the pieces given."""
    body = b"".join(b"%X\r\n%s\r\n" % (len(p), p) for p in pieces)
    return (
        b"HTTP/1.1 200 OK\r\n"
        + JSON_TYPE
        + head
        + b"Transfer-Encoding: chunked\r\n\r\n"
        + body
        + b"0\r\n"
        + trailer
        + b"\r\n"
    )


class Scripted:
    """A store on a loopback socket answering each request with the next of its answers, byte for
    byte. After an answer, `then` says what it does with the connection: "keep" reading it,
    "close" it, or "reset" it (an RST, SO_LINGER 0) when the next request comes on it, unanswered,
    as a store drops an idle connection. It counts the connections it accepts."""

    def __init__(self, script: list[tuple[bytes, str]]) -> None:
        self.script = list(script)
        self.connections = 0
        self.requests: list[bytes] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(5)
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/sparql"
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        open_ones = []
        try:
            while self.script:
                conn, _ = self.listener.accept()
                open_ones.append(conn)
                self.connections += 1
                self._answer(conn)
        except OSError:
            pass  # the test is over (the listener closed) or the client gave up
        finally:
            for conn in open_ones:
                conn.close()

    def _answer(self, conn: socket.socket) -> None:
        reader = conn.makefile("rb")
        doomed = False
        while self.script:
            head = b""
            while (line := reader.readline()) not in (b"\r\n", b""):
                head += line
            if not head:
                return  # the client closed it
            length = re.search(rb"(?i)content-length: *(\d+)", head)
            self.requests.append(head + b"\r\n" + reader.read(int(length[1]) if length else 0))
            if doomed:
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                conn.close()
                return
            raw, then = self.script.pop(0)
            for i, piece in enumerate(raw.split(PAUSE)):
                time.sleep(0.05 if i else 0)  # the client has read what came before
                conn.sendall(piece)
            if then == "close":
                conn.shutdown(socket.SHUT_RDWR)
                return
            doomed = then == "reset"

    def close(self) -> None:
        self.listener.close()
        self.thread.join(5)


@contextmanager
def scripted(*script: tuple[bytes, str]) -> Iterator[Scripted]:
    server = Scripted(list(script))
    try:
        yield server
    finally:
        server.close()


KEEP, CLOSE, RESET = "keep", "close", "reset"
PAUSE = b"<pause>"  # in a scripted answer: the store writes what follows 50 ms later
# (id, the store's two answers and what it does after each, connections the two ASKs take)
EXCHANGES = [
    ("content-length", [(answer(), KEEP), (answer(), KEEP)], 1),
    (
        "chunked-extensions-trailer",
        [(chunked(b'{"head": {}, ', b'"boolean": true}'), KEEP), (answer(), KEEP)],
        1,
    ),
    (
        "chunked-sizes-uppercase-hex-extensions",
        [
            (chunked(b" " * 26 + ASK_TRUE).replace(b"2B\r\n", b'2B ;x=1;y="a"\r\n'), KEEP),
            (answer(), KEEP),
        ],
        1,
    ),
    ("chunked-trailer-fields", [(chunked(ASK_TRUE, trailer=b"X-T: 1\r\n"), KEEP)] * 2, 1),
    # Chunked decides (§6.3 3), and the connection is not used again: the second ASK opens one.
    (
        "chunked-with-content-length",
        [(chunked(ASK_TRUE, head=b"Content-Length: 5\r\n"), KEEP), (answer(), KEEP)],
        2,
    ),
    # The store keeps reading the connection: the client must not use it again (§9.6).
    ("connection-close-said", [(answer(b"Connection: close"), KEEP), (answer(), KEEP)], 2),
    ("connection-close-among-tokens", [(answer(b"Connection: x, Close"), KEEP)] * 2, 2),
    # HTTP/1.0 without a length: the body ends with the connection (§6.3 8).
    (
        "http-1.0-until-close",
        [(b"HTTP/1.0 200 OK\r\n" + JSON_TYPE + b"\r\n" + ASK_TRUE, CLOSE), (answer(), KEEP)],
        2,
    ),
    ("http-1.0-no-keep-alive", [(answer(status=b"HTTP/1.0 200 OK"), KEEP)] * 2, 2),
    (
        "http-1.0-keep-alive",
        [(answer(b"Connection: keep-alive", status=b"HTTP/1.0 200 OK"), KEEP)] * 2,
        1,
    ),
    (
        "interim-100-103-skipped",
        [
            (
                b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </s>\r\n\r\n"
                + answer(),
                KEEP,
            ),
            (answer(), KEEP),
        ],
        1,
    ),
    # The head across two reads: read line by line (a whole head in one read is taken at once).
    (
        "head-in-two-writes",
        [(answer().replace(b"Content-Type", PAUSE + b"Content-Type"), KEEP)] * 2,
        1,
    ),
    ("status-line-in-two-writes", [(answer().replace(b" 200", PAUSE + b" 200"), KEEP)] * 2, 1),
    (
        "chunk-size-line-in-two-writes",
        [(chunked(ASK_TRUE).replace(b"1D", b"1" + PAUSE + b"D"), KEEP)] * 2,
        1,
    ),
    ("no-reason-phrase", [(answer(status=b"HTTP/1.1 200"), KEEP)] * 2, 1),
    ("bare-lf-line-ends", [(answer().replace(b"\r\n", b"\n"), KEEP)] * 2, 1),
    ("repeated-content-length-equal", [(answer(b"Content-Length: 29"), KEEP)] * 2, 1),
    # Closed while idle: FIN, or RST when the next request comes; the query is sent again.
    ("closed-by-the-store-after", [(answer(), CLOSE), (answer(), KEEP)], 2),
    ("reset-by-the-store-when-reused", [(answer(), RESET), (answer(), KEEP)], 2),
]


@pytest.mark.parametrize(
    ("script", "connections"), [r[1:] for r in EXCHANGES], ids=[r[0] for r in EXCHANGES]
)
def test_an_answer_is_read_as_its_framing_says(
    script: list[tuple[bytes, str]], connections: int
) -> None:
    with scripted(*script) as server:
        store = SparqlClient(server.url, timeout=3)
        assert store.ask("ASK {}") is True
        time.sleep(0.05)  # what the store did after its answer has arrived
        assert store.ask("ASK {}") is True
        store.close()
    assert server.connections == connections


# (id, the store's answer, the error class, words of its message)
BROKEN = [
    ("body-cut-short", answer().replace(b"Length: 29", b"Length: 90"), "answer broken off"),
    ("chunk-cut-short", chunked(ASK_TRUE).replace(b"\r\n0\r\n\r\n", b""), "answer broken off"),
    ("chunk-size-not-hex", chunked(ASK_TRUE).replace(b"1D\r\n", b"0x1D\r\n"), "HTTPException"),
    ("chunk-without-crlf", chunked(ASK_TRUE).replace(b"}\r\n0", b"}XX0"), "HTTPException"),
    ("content-lengths-differ", answer(b"Content-Length: 30"), "HTTPException"),
    ("content-length-signed", answer().replace(b"Length: 29", b"Length: +29"), "HTTPException"),
    (
        "gzip-transfer-coding",
        chunked(ASK_TRUE, head=b"Transfer-Encoding: gzip\r\n"),
        "HTTPException",
    ),
    ("http-1.0-chunked", chunked(ASK_TRUE).replace(b"HTTP/1.1", b"HTTP/1.0"), "HTTPException"),
    ("not-http", b"ICY 200 OK\r\n\r\n" + ASK_TRUE, "BadStatusLine"),
    ("space-before-colon", answer(b"X-SQL-State : S1TAT"), "HTTPException"),
    ("switching-protocols", b"HTTP/1.1 101 Switching Protocols\r\n\r\n", "HTTPException"),
    ("head-cut-short", answer()[:40], "IncompleteRead"),
    ("no-answer", b"", "RemoteDisconnected"),
]


@pytest.mark.parametrize(("raw", "words"), [r[1:] for r in BROKEN], ids=[r[0] for r in BROKEN])
def test_a_broken_answer_is_the_store_unavailable(raw: bytes, words: str) -> None:
    """An answer that breaks HTTP/1.1 fails the call (the store is at fault: 503), on a new
    connection, and is not sent again; the connection is not used again."""
    with scripted((raw, CLOSE)) as server:
        store = SparqlClient(server.url, timeout=3)
        with pytest.raises(StoreUnavailable, match=words):
            store.ask("ASK {}")
        assert store._connections._idle.get(("http", "127.0.0.1", None)) in (None, [])
    assert server.connections == 1


def test_a_folded_field_is_unfolded() -> None:
    """Obsolete line folding (RFC 9112 §5.2) is read as one space: a budget cut flagged on a
    folded line is seen."""
    script = (answer(b"X-SQL-State:\r\n S1TAT"), KEEP)
    with scripted(script) as server, pytest.raises(StoreUnavailable, match="S1TAT"):
        SparqlClient(server.url, timeout=3).ask("ASK {}")


@pytest.mark.parametrize(
    ("method", "status"),
    [("HEAD", b"200 OK"), ("POST", b"204 No Content"), ("POST", b"304 Not Modified")],
    ids=["head", "204", "304"],
)
def test_answers_without_a_body_leave_the_connection_ready(method: str, status: bytes) -> None:
    """After HEAD, and in 204 and 304 answers, a Content-Length says nothing of a body (RFC 9112
    §6.3 1): none is read, and the next answer on the connection is read whole."""
    empty = b"HTTP/1.1 " + status + b"\r\nContent-Length: 50\r\n\r\n"
    with scripted((empty, KEEP), (answer(), KEEP)) as server:
        connections = protocol._Connections()
        first = connections.exchange(server.url, b"", {}, 3, method=method)
        assert first.body.read() == b""
        first.close()
        second = connections.exchange(server.url, b"", {}, 3)
        assert (second.status, second.body.read()) == (200, ASK_TRUE)
        second.close()
        connections.close()
    assert server.connections == 1
    assert server.requests[0].startswith(f"{method} /sparql HTTP/1.1\r\n".encode())
    assert (b"Content-Length: 0" in server.requests[0]) == (method == "POST")


def test_the_request_goes_out_whole_with_its_length() -> None:
    with scripted((answer(), KEEP)) as server:
        SparqlClient(server.url, timeout=3).ask("ASK {}")
    [request] = server.requests
    head, _, body = request.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"POST /sparql HTTP/1.1"
    assert f"Host: 127.0.0.1:{server.url.split(':')[2].split('/')[0]}".encode() in lines
    assert b"Content-Type: application/x-www-form-urlencoded" in lines
    assert f"Content-Length: {len(body)}".encode() in lines and body == b"query=ASK+%7B%7D"


def test_a_streamed_chunked_answer_comes_whole_in_small_reads() -> None:
    """raw's body read as a file (readinto, 7 bytes at a time) across chunk boundaries."""
    pieces = [ASK_TRUE[i : i + 5] for i in range(0, len(ASK_TRUE), 5)]
    with scripted((chunked(*pieces), KEEP), (answer(), KEEP)) as server:
        store = SparqlClient(server.url, timeout=3)
        raw = store.raw("ASK {}", "application/sparql-results+json")
        reader = io.BufferedReader(raw.body, buffer_size=7)  # type: ignore[arg-type]
        assert b"".join(iter(lambda: reader.read(7), b"")) == ASK_TRUE
        reader.close()
        assert store.ask("ASK {}") is True
    assert server.connections == 1


def test_a_header_with_a_line_break_is_not_sent() -> None:
    with scripted((answer(), KEEP)) as server:
        store = SparqlClient(server.url, timeout=3)
        with pytest.raises(StoreError, match="line break"):
            store.raw("ASK {}", "text/csv\r\nX-Injected: 1")
    assert server.requests == []


def test_a_digest_challenge_is_read_on_the_kept_connection(virtuoso: Virtuoso) -> None:
    """Virtuoso's authenticated endpoint challenges an anonymous query (401, RFC 7616), read on
    the kept connection; the client then answers the challenge, and raw never does."""
    connections = protocol._Connections()
    data = b"query=ASK+%7B%7D"
    headers = {"Content-Type": protocol.FORM}
    challenge = connections.exchange(virtuoso.update_url, data, headers, 10)
    assert challenge.status == 401
    assert challenge.headers["www-authenticate"].startswith("Digest ")
    assert 'realm="' in challenge.headers["www-authenticate"]
    challenge.body.read()
    challenge.close()
    connections.close()
    store = SparqlClient(virtuoso.update_url, user=virtuoso.user, password=virtuoso.password)
    assert store.ask("ASK {}") is True
    assert store.raw("ASK {}", "application/sparql-results+json").status == 401


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (openssl), and its key."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def tls_store(cert: Path, key: Path) -> AbstractContextManager[tuple[str, list[int]]]:
    return keep_alive_stub(hang_up=False, tls=(cert, key))


def test_https_checks_the_certificate_and_keeps_the_connection(
    certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    cert, key = certificate
    with tls_store(cert, key) as (url, connections):
        with pytest.raises(StoreUnavailable, match="SSLCertVerificationError"):
            SparqlClient(url, timeout=3).ask("ASK {}")
        trusting = ssl.create_default_context(cafile=str(cert))
        monkeypatch.setattr(protocol, "_tls", lambda: trusting)
        store = SparqlClient(url, timeout=3)
        for _ in range(3):
            assert store.ask("ASK {}") is True
        store.close()
    assert len(connections) == 1  # the refused handshake never reached the handler


@given(st.lists(st.tuples(st.text(), st.text()), max_size=4))
def test_a_form_is_encoded_as_urlencode_does(fields: list[tuple[str, str]]) -> None:
    try:
        expected = urllib.parse.urlencode(fields).encode()
    except UnicodeEncodeError:  # a lone surrogate: neither encodes it
        with pytest.raises(UnicodeEncodeError):
            protocol._encode(fields)
        return
    assert protocol._encode(fields) == expected
