"""`kgpub serve --store` on each remote SPARQL server (a private Virtuoso, a private Oxigraph
server) answers as the embedded default does: the same bodies and headers for every
representation, list, page, harvesting response and SPARQL query, and a query never reaches
another graph of the server."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from urllib.parse import quote

import pytest
from fetch import Reply, get, parse
from live import SEED, Server, free_port, mentions
from oxigraph_server import REMOTE_SERVERS
from rdfdiff import assert_isomorphic

from graph.publication import BuildOptions, build, current_release, read_manifest
from graph.store import StoreSettings
from graph.store.forward import DESCRIBE_SOLUTIONS
from graph.store.protocol import SparqlClient

NOW = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
SECRET = "http://secret.example/graph"
OTHER = "http://other.example/graph"  # a graph no store holds

pytestmark = pytest.mark.parametrize("remote_server", REMOTE_SERVERS, indirect=True)


@pytest.fixture(scope="module")
def servers(
    tmp_path_factory: pytest.TempPathFactory, remote_server: StoreSettings
) -> Iterator[tuple[Server, Server]]:
    """The seed under one base IRI, built into each backend, served on two ports."""
    remote = remote_server
    folder = tmp_path_factory.mktemp("store-serve")
    port = free_port()
    base = f"http://127.0.0.1:{port}/"
    build([SEED], folder / "embedded", BuildOptions(base=base), now=NOW)
    build([SEED], folder / "remote", BuildOptions(base=base, store=remote), now=NOW)
    # A graph of the server that no query through kgpub may read, written through its update
    # endpoint (with the build's credentials, where it has any).
    admin = SparqlClient(remote.update, user=remote.user, password=remote.password)
    admin.update(f'INSERT DATA {{ GRAPH <{SECRET}> {{ <{SECRET}#s> <{SECRET}#p> "SECRET" }} }}')
    # A query budget no busy machine reaches: the nested DESCRIBE below took over 9 s of
    # Virtuoso's at a load average of 16 (the default budget is 10 s); no test here is
    # about the budget.
    settings = {"page_size": 10, "warm_up": 0, "query_timeout": 120}
    with (
        Server(folder / "embedded", port, workers=1, **settings) as embedded,
        Server(folder / "remote", free_port(), workers=1, store=remote.query, **settings) as served,
    ):
        yield embedded, served


def _paths(server: Server) -> list[str]:
    """Every page of the sitemap and the other resources, in each representation."""
    sitemap = get(server.base + "sitemap.xml").body.decode()
    pages = re.findall(r"<loc>([^<]+)</loc>", sitemap)
    parts = [u for u in pages if "sitemap-" in u]
    for part in parts:
        pages += re.findall(r"<loc>([^<]+)</loc>", get(part).body.decode())
    paths = sorted({p[len(server.base) - 1 :] for p in pages if "sitemap" not in p})
    out = [p + s for p in paths for s in ("", ".ttl", ".jsonld", ".nt", ".rdf", ".html")]
    out += ["/library?page=2", "/library.ttl?page=4", "/changes", "/changes.html"]
    out += ["/collections/entries", "/oai?verb=ListSets", "/robots.txt", "/sitemap.xml"]
    out += ["/oai?verb=ListIdentifiers&metadataPrefix=oai_dc"]
    out += ["/entry/nothing-here", "/category/nope.ttl", "/library?page=99"]
    return out


HEADERS = ("Content-Type", "Link", "Vary", "Content-Location", "ETag", "Last-Modified")


def _same(a: Reply, b: Reply, path: str) -> None:
    assert b.status == a.status, path
    mine, theirs = a.body, b.body
    times = ("ETag", "Last-Modified")
    if "oai" in path:
        # Its responseDate is the time of the request, and a datestamp the second each
        # publication went live (its `current` swap): times of the two folders, not backends.
        strip = re.compile(rb"<(responseDate|datestamp)>[^<]*</(responseDate|datestamp)>")
        mine, theirs = strip.sub(b"", mine), strip.sub(b"", theirs)
        times = ()
    if theirs != mine:
        diff = difflib.unified_diff(
            mine.decode(errors="replace").splitlines(),
            theirs.decode(errors="replace").splitlines(),
            lineterm="",
        )
        pytest.fail(f"{path}: the bodies differ\n" + "\n".join(list(diff)[:40]))
    for name in HEADERS:
        if name not in times:
            assert b.headers.get(name) == a.headers.get(name), (path, name)


def test_every_page_is_the_same_on_both_backends(servers: tuple[Server, Server]) -> None:
    embedded, remote = servers
    paths = _paths(embedded)
    assert len(paths) > 250
    for path in paths:
        _same(get(embedded.base + path[1:]), get(remote.base + path[1:]), path)


QUERIES = {
    "counts": "SELECT ?c (COUNT(?e) AS ?n) WHERE { ?e <http://purl.org/dc/terms/subject> ?c }"
    " GROUP BY ?c ORDER BY ?c",
    "latest": "SELECT ?e ?t WHERE { ?e <http://purl.org/dc/terms/title> ?t } ORDER BY DESC(?e)"
    " LIMIT 5",
    "construct": "CONSTRUCT { ?e ?p ?o } WHERE { ?e ?p ?o FILTER(?e = <entry/"
    "2018-07-06-1243-becoming-trauma-informed>) }",
    "ask": "ASK { ?e a <http://purl.org/dc/dcmitype/Text> }",
    "graphs": "SELECT DISTINCT ?g WHERE { GRAPH ?g { ?s ?p ?o } }",
    "void-graph": "SELECT (COUNT(*) AS ?n) WHERE { GRAPH <.well-known/void> { ?s ?p ?o } }",
    "from-void": "SELECT (COUNT(*) AS ?n) FROM <.well-known/void> WHERE { ?s ?p ?o }",
    "from-secret": f"SELECT ?o FROM <{SECRET}> WHERE {{ ?s ?p ?o }}",
    "from-named-secret": f"SELECT ?g ?o FROM NAMED <{SECRET}> WHERE {{ GRAPH ?g {{ ?s ?p ?o }} }}",
    "graph-secret": f"SELECT ?o WHERE {{ GRAPH <{SECRET}> {{ ?s ?p ?o }} }}",
    "ask-graph-secret": f"ASK {{ GRAPH <{SECRET}> {{ ?s ?p ?o }} }}",
    # The names of the dataset's graphs, as the query or the store names them: never those
    # the remote store holds them under, and no graph when the dataset names none.
    "graph-names": "SELECT ?g WHERE { GRAPH ?g { } }",
    "from-named-other": f"SELECT ?g FROM NAMED <{OTHER}> WHERE {{ GRAPH ?g {{ }} }}",
    "from-other": f"SELECT ?g FROM <{OTHER}> WHERE {{ GRAPH ?g {{ }} }}",
    "construct-graph-name": f"CONSTRUCT {{ ?g ?g ?g }} FROM NAMED <{OTHER}>"
    " WHERE { GRAPH ?g { } }",
    # SELECTs of variables only, which a Virtuoso answers in Turtle (graph/store/resultset.py):
    # escapes, characters past the BMP, language tags, datatypes, unbound variables, order.
    "values": "SELECT ?x ?y ?z WHERE { VALUES (?i ?x ?y ?z) {"
    ' ("1" "a\\"b\\\\c\\nd\\te" "é 𝄞"@en UNDEF) ("2" UNDEF UNDEF <http://ex.org/a>)'
    ' ("3" UNDEF "2020-01-01T00:30:00Z"^^<http://www.w3.org/2001/XMLSchema#dateTime> UNDEF)'
    ' ("4" UNDEF UNDEF UNDEF) } } ORDER BY DESC(?i)',
    "created": "SELECT ?e ?d WHERE { ?e <http://purl.org/dc/terms/created> ?d } ORDER BY ?d ?e",
    "void-values": "SELECT ?s ?p WHERE { GRAPH <.well-known/void> { ?s ?p ?o } FILTER(isIRI(?o)) }"
    " ORDER BY ?s ?p ?o",
}
# Where Virtuoso 7.2 answers otherwise, as measured (its own evaluation, not kgpub's text):
# strict xfails, so that a Virtuoso that gets them right is noticed.
EMPTY_GRAPH_PATTERN = "Virtuoso answers GRAPH ?g { } with one empty solution or none"
# (GRAPH <iri> over a graph outside the dataset, which Virtuoso answers as an empty group, is
# never sent: graph/store/forward.py.)
VIRTUOSO_ANSWERS_OTHERWISE = {
    "graph-names": EMPTY_GRAPH_PATTERN,
    "from-named-other": EMPTY_GRAPH_PATTERN,
    "from-other": EMPTY_GRAPH_PATTERN,
    "construct-graph-name": EMPTY_GRAPH_PATTERN,
}


CASES = [
    (name, accept)
    for name, text in QUERIES.items()
    for accept in (
        ("text/turtle", "application/n-triples")
        if text.startswith("CONSTRUCT")
        else (
            "application/sparql-results+json",
            "application/sparql-results+xml",
            "text/csv",
            "text/tab-separated-values",
        )
    )
]


@pytest.mark.parametrize(("name", "accept"), CASES, ids=[f"{n}-{a}" for n, a in CASES])
def test_sparql_answers_are_the_same(
    servers: tuple[Server, Server], name: str, accept: str, request: pytest.FixtureRequest
) -> None:
    embedded, remote = servers
    known = VIRTUOSO_ANSWERS_OTHERWISE.get(name)
    if known and request.node.callspec.params["remote_server"] == "virtuoso":
        request.applymarker(pytest.mark.xfail(reason=known, strict=True))
    text = QUERIES[name]
    is_graph = text.startswith("CONSTRUCT")
    url = "sparql?query=" + quote(text)
    mine = get(embedded.base + url, {"Accept": accept})
    theirs = get(remote.base + url, {"Accept": accept})
    assert mine.status == 200, mine.body
    if is_graph:  # a graph's triples come in each store's own order: the same graph
        assert theirs.status == 200, theirs.body
        assert_isomorphic(parse(theirs, embedded.base), parse(mine, embedded.base))
    else:
        _same(mine, theirs, name)
    assert b"SECRET" not in theirs.body and SECRET.encode() not in theirs.body


# A DESCRIBE whose WHERE clause has more solutions than graph/store/forward.py lists by VALUES
# (each subject of an entry joined with every triple: 62 x 377 on the seed) is sent as one
# nested CONSTRUCT: its entries and categories, described as the embedded store does.
MANY = (
    "PREFIX dcterms: <http://purl.org/dc/terms/>\n{} WHERE {{ ?e dcterms:subject ?c . ?x ?p ?y }}"
)


def test_a_describe_past_the_listed_solutions_is_the_embedded_stores(
    servers: tuple[Server, Server],
) -> None:
    embedded, remote = servers
    count = get(
        embedded.base + "sparql?query=" + quote(MANY.format("SELECT (COUNT(*) AS ?n)")),
        {"Accept": "text/csv"},
    )
    assert count.status == 200, count.body
    assert int(count.body.split()[-1]) > DESCRIBE_SOLUTIONS  # so the nested form is sent
    url = "sparql?query=" + quote(MANY.format("DESCRIBE ?e ?c"))
    mine = get(embedded.base + url, {"Accept": "application/n-triples"})
    theirs = get(remote.base + url, {"Accept": "application/n-triples"})
    assert mine.status == 200, mine.body
    assert theirs.status == 200, theirs.body
    want = parse(mine, embedded.base)
    assert len(want) > 300  # every entry's triples and every category's
    assert_isomorphic(parse(theirs, embedded.base), want)


@pytest.mark.parametrize(
    "text",
    [
        'PREFIX bif: <bif:> SELECT (bif:file_to_string("/etc/passwd") AS ?x) WHERE {}',
        "SELECT (<sql:now>() AS ?x) WHERE {}",
        "define input:default-graph-uri <http://secret.example/graph> SELECT * WHERE { ?s ?p ?o }",
        "SELECT (<http://example.org/f>(1) AS ?x) WHERE {}",
    ],
    ids=["bif", "sql", "define", "custom-function"],
)
def test_what_only_a_virtuoso_would_run_is_refused(
    servers: tuple[Server, Server], text: str
) -> None:
    _, remote = servers
    accept = {"Accept": "application/sparql-results+json"}
    reply = get(remote.base + "sparql?query=" + quote(text), accept)
    assert reply.status == 400, reply.body
    assert b"SECRET" not in reply.body and b"root:" not in reply.body


def test_the_manifest_names_the_release_graphs_without_credentials(
    servers: tuple[Server, Server], remote_server: StoreSettings
) -> None:
    _, remote = servers
    record = read_manifest(current_release(remote.out))["store"]
    assert record["backend"] == "sparql"
    for secret in (remote_server.user, remote_server.password):
        assert not mentions(str(record), secret), record
    assert not (current_release(remote.out) / "store").exists()


# SPARQL 1.1 §17.3: 1/0 is an error that leaves ?x unbound (the embedded store answers one
# solution without it); Virtuoso 7.2 fails the whole query instead, with HTTP 500 ("Virtuoso
# 22012 Error SR084: Division by 0."). That is the store failing, not the user's query.
DIVIDED_BY_ZERO = "SELECT (1/0 AS ?x) WHERE {}"


@pytest.mark.parametrize(
    ("accept", "media_type"),
    [
        ("application/sparql-results+json", "application/json"),
        ("text/html", "text/html"),
        ("text/csv", "application/json"),  # an error has no CSV: JSON
    ],
)
def test_a_query_the_store_fails_on_is_a_bad_gateway_in_the_negotiated_format(
    servers: tuple[Server, Server],
    remote_server: StoreSettings,
    request: pytest.FixtureRequest,
    accept: str,
    media_type: str,
) -> None:
    embedded, remote = servers
    url = "sparql?query=" + quote(DIVIDED_BY_ZERO)
    mine = get(embedded.base + url, {"Accept": "application/sparql-results+json"})
    assert mine.status == 200, mine.body
    theirs = get(remote.base + url, {"Accept": accept})
    if request.node.callspec.params["remote_server"] != "virtuoso":
        assert theirs.status == 200, theirs.body  # Oxigraph's server answers as the embedded
        return
    # RFC 9110 §15.6.3: the server, acting as a gateway, received an invalid response.
    assert theirs.status == 502, theirs.body
    assert theirs.media_type == media_type
    assert "Division by 0" in theirs.body.decode()
    assert "Retry-After" not in theirs.headers
    # Neither the store's address nor its copy of the query (with the release's graphs).
    said = theirs.body.decode()
    assert remote_server.query.split("//")[1].split("/")[0] not in said
    assert "SPARQL query" not in said and ".well-known/graph/" not in said
