"""The W3C SPARQL 1.1 Protocol and Service Description tests, replayed on the real server.

The manifests are copied unmodified, once, in server/check/w3c/ (w3c/rdf-tests at
SOURCE_COMMIT, W3C test suite licence in LICENSE.md), and read by server/check/w3c.py, as
`kgpub check` reads them; each mf:ProtocolTest becomes one test here. The data
they name (ut:graphData: data1.nt, data2.nt, data3.nt, each under the graph name of its
rdfs:label) is added by this module to the store of a seed publication before the server
starts: kgpub itself has no way to load extra graphs, so the test writes them into the store
with pyoxigraph, the only change made to the built publication. On a SPARQL server kgpub
confines every query to the release's library and VoID graphs, so there the tests run on the
live seed server and the six that read the W3C graphs stay with the embedded store.

As the manifest says, each ht:absolutePath starts with "/sparql/", replaced by this endpoint's
"/sparql". The update tests that expect success (update_*) do not apply to a read-only
endpoint: for them the test asserts that every update request is refused (400) and that the
queries that follow see no change. The bad_update_* tests expect a 4xx and are replayed as
they are.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from urllib.parse import quote

import pyoxigraph
import pytest
import rdflib
from live import SEED, Backend, Server, build_publication, free_port
from rdflib.namespace import RDF
from sparql_http import Reply, boolean, call

from graph.formats import RDF_FORMATS
from graph.namespaces import SD
from graph.query import RESULT_FORMATS
from server.check.cases import SD_INSTANCES, SD_SCHEMA
from server.check.w3c import (
    Expected,
    ProtocolRequest,
    ProtocolTest,
    manifest_tests,
    service_description_tests,
)

TESTS = manifest_tests()
# The update tests that expect success do not apply; the bad_update_* ones (4xx) do.
QUERY_TESTS = [t for t in TESTS if not t.name.startswith("update_")]
UPDATE_TESTS = [t for t in TESTS if t.name.startswith("update_")]
# The query tests that read the W3C graphs, named by the protocol's default-graph-uri and
# named-graph-uri: a release in a SPARQL server offers its library and VoID graphs only, any
# other name being an empty graph of its own (graph/store/forward.py), so they need the
# embedded store, to which this module adds the graphs.
GRAPH_TESTS = [t for t in QUERY_TESTS if t.graphs]
PROTOCOL_TESTS = [t for t in QUERY_TESTS if not t.graphs]
# Where the W3C graphs are, the update tests' last query sees one of them; everywhere the
# library (the default graph) is still there.
LIBRARY_LEFT = "ASK { ?s ?p ?o }"
W3C_GRAPH_LEFT = "ASK { GRAPH <http://kasei.us/2009/09/sparql/data/data1.rdf> { ?s ?p ?o } }"


def test_the_manifest_is_read_whole() -> None:
    assert len(TESTS) == 34
    assert len(QUERY_TESTS) == 27 and len(UPDATE_TESTS) == 7
    assert len(GRAPH_TESTS) == 6
    assert all(t.requests for t in TESTS)


@pytest.fixture(scope="module")
def w3c_server(
    tmp_path_factory: pytest.TempPathFactory, backend: Backend, request: pytest.FixtureRequest
) -> Iterator[Server]:
    """The seed library plus the W3C test graphs (as named graphs) in the embedded store,
    served on loopback; on a SPARQL server, which kgpub gives no other graph, the live server."""
    if backend.is_remote:
        yield request.getfixturevalue("live")
        return
    port = free_port()
    out = tmp_path_factory.mktemp("w3c") / "publication"
    build_publication([SEED], out, f"http://127.0.0.1:{port}/")
    store = pyoxigraph.Store(str(out / "current" / "store"))
    graphs = {name: path for t in TESTS for name, path in t.graphs}
    assert len(graphs) == 3
    for name, path in graphs.items():
        store.load(
            path=str(path),
            format=pyoxigraph.RdfFormat.N_TRIPLES,
            to_graph=pyoxigraph.NamedNode(name),
        )
    store.flush()
    del store
    with Server(out, port) as server:
        yield server


def _send(server: Server, request: ProtocolRequest) -> Reply:
    """The request, to this endpoint ("/sparql/" in the manifest is "/sparql" here)."""
    return call(
        server.base,
        request.method,
        body=request.body,
        headers=dict(request.headers),
        path="sparql" + request.tail,
    )


def _check(reply: Reply, expected: Expected, name: str) -> None:
    assert reply.status // 100 in expected.statuses, (name, reply.status, reply.body[:300])
    if expected.format == "boolean" or expected.boolean is not None:
        assert reply.media_type in RESULT_FORMATS, name
        if expected.boolean is not None:
            assert boolean(reply) is expected.boolean, name
    elif expected.format == "tabular":
        fmt = pyoxigraph.QueryResultsFormat.from_media_type(reply.media_type)
        assert reply.media_type in RESULT_FORMATS and fmt is not None, name
        assert isinstance(
            pyoxigraph.parse_query_results(reply.body, format=fmt), pyoxigraph.QuerySolutions
        )
    elif expected.format == "RDF":
        rdf = next((f for f in RDF_FORMATS if f.media_type == reply.media_type), None)
        assert rdf is not None, (name, reply.media_type)
        rdflib.Graph().parse(data=reply.body, format=rdf.rdflib)


def _replay(server: Server, test: ProtocolTest) -> None:
    for request in test.requests:
        _check(_send(server, request), request.expected, test.name)


@pytest.mark.parametrize("test", PROTOCOL_TESTS, ids=[t.name for t in PROTOCOL_TESTS])
def test_w3c_query_test(w3c_server: Server, test: ProtocolTest) -> None:
    _replay(w3c_server, test)


@pytest.mark.embedded_only(reason="a release in a SPARQL server has no graph but its own two")
@pytest.mark.parametrize("test", GRAPH_TESTS, ids=[t.name for t in GRAPH_TESTS])
def test_w3c_query_test_on_its_graphs(w3c_server: Server, test: ProtocolTest) -> None:
    _replay(w3c_server, test)


@pytest.mark.parametrize("test", UPDATE_TESTS, ids=[t.name for t in UPDATE_TESTS])
def test_w3c_update_test_is_refused(
    w3c_server: Server, backend: Backend, test: ProtocolTest
) -> None:
    """Read-only endpoint: every update is a 400; the queries after it see nothing changed."""
    for request in test.requests:
        reply = _send(w3c_server, request)
        if request.is_update:
            assert reply.status == 400, (test.name, reply.status, reply.body[:200])
            message = json.loads(reply.body)["message"]
            assert "read-only" in message or "not" in message
        else:
            assert reply.status == 200, (test.name, reply.body[:200])
            assert boolean(reply) is False  # the update did not happen
    # CLEAR ALL was refused: what it would have cleared is still there.
    for left in (LIBRARY_LEFT, *(() if backend.is_remote else (W3C_GRAPH_LEFT,))):
        still_there = _send(
            w3c_server,
            ProtocolRequest("GET", "?query=" + quote(left), (), None,
                            Expected(frozenset({2}), "boolean", True)),
        )  # fmt: skip
        assert boolean(still_there) is True, left


# --- Service Description tests (their manifest names them; the checks are the suite's words,
# held to the SD vocabulary's table that `kgpub check` uses) ---
SD_TESTS = service_description_tests()


def _description(server: Server) -> rdflib.Graph:
    reply = call(server.base, headers={"Accept": "text/turtle, application/rdf+xml;q=0.9"})
    assert reply.status == 200 and reply.media_type == "text/turtle"
    return rdflib.Graph().parse(data=reply.body, format="turtle")


@pytest.mark.parametrize("name", SD_TESTS)
def test_w3c_service_description(w3c_server: Server, name: str) -> None:
    g = _description(w3c_server)
    endpoint = rdflib.URIRef(w3c_server.base + "sparql")
    if name == "returns-rdf":
        assert len(g) > 10
    elif name == "has-endpoint-triple":
        assert list(g.subjects(SD.endpoint, endpoint))
    elif name == "conforms-to-schema":
        for s, p, o in g:
            if p in SD_SCHEMA:
                domain, range_ = SD_SCHEMA[p]
                assert (s, RDF.type, domain) in g, (s, p)
                if range_ is not None:
                    assert (o, RDF.type, range_) in g or SD_INSTANCES.get(o) == range_, (p, o)
            elif str(p).startswith(str(SD)):
                raise AssertionError(f"unknown SD property {p}")
    else:
        raise AssertionError(f"unknown Service Description test {name}")
