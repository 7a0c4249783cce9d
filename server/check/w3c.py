"""The W3C SPARQL 1.1 Protocol tests, read from their manifest; those that need no data of their
own are check cases.

The manifests are copied unmodified in server/check/w3c/ (README there), the one copy:
tests/test_w3c_protocol.py reads every test (manifest_tests) with the graphs it names. Each
mf:ProtocolTest without ut:graphData and not an update expected to succeed (a public endpoint
is read-only) is replayed against the deployment's endpoint: the manifest's ht:absolutePath
starts with "/sparql/", which becomes the endpoint's URL. Each response is held to the
manifest's mf:expectedStatus class, mf:expectedFormat and mf:expectedBoolean.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pyoxigraph
import rdflib
from rdflib.collection import Collection
from rdflib.namespace import RDF, RDFS

from graph.formats import RDF_FORMATS, SPARQL_UPDATE
from server.check.client import CheckError, Reply, fetch

HERE = Path(__file__).resolve().parent / "w3c"
PROTOCOL_MANIFEST = HERE / "protocol" / "manifest.ttl"
SD_MANIFEST = HERE / "service-description" / "manifest.ttl"
MF = rdflib.Namespace("http://www.w3.org/2001/sw/DataAccess/tests/test-manifest#")
HT = rdflib.Namespace("http://www.w3.org/2011/http#")
CNT = rdflib.Namespace("http://www.w3.org/2011/content#")
UT = rdflib.Namespace("http://www.w3.org/2009/sparql/tests/test-update#")


@dataclass(frozen=True)
class Expected:
    """What the manifest expects of one response."""

    statuses: frozenset[int]  # status classes: 2, 3, 4, 5
    format: str | None  # "boolean", "tabular", "RDF"
    boolean: bool | None


@dataclass(frozen=True)
class ProtocolRequest:
    """One ht:Request: the path after the endpoint, headers, body and what is expected."""

    method: str
    tail: str  # what follows the endpoint's URL ("?query=..." or "")
    headers: tuple[tuple[str, str], ...]
    body: bytes | None
    expected: Expected

    @property
    def is_update(self) -> bool:
        """A SPARQL Update request (SPARQL 1.1 Protocol §2.2): by its body's media type, or
        an `update` form field."""
        content_type = next((v for k, v in self.headers if k.lower() == "content-type"), "")
        form_update = (self.body or b"").startswith(b"update=") or "update=" in self.tail
        return content_type.startswith(SPARQL_UPDATE) or form_update


@dataclass(frozen=True)
class ProtocolTest:
    """One mf:ProtocolTest: its name, title, requests and the graphs it needs (ut:graphData:
    graph name, N-Triples file beside the manifest)."""

    name: str
    title: str
    requests: tuple[ProtocolRequest, ...]
    graphs: tuple[tuple[str, Path], ...] = ()


def _list(g: rdflib.Graph, node: rdflib.term.Node | None) -> Collection:
    if node is None:
        raise ValueError(f"{PROTOCOL_MANIFEST}: a list is missing")
    return Collection(g, node)


def _requests(g: rdflib.Graph, node: rdflib.term.Node) -> tuple[ProtocolRequest, ...]:
    found = []
    connection = g.value(node, MF.action)
    for req in _list(g, g.value(connection, HT.requests)):
        headers = []
        header_list = g.value(req, HT.headers)
        if header_list is not None:
            for header in Collection(g, header_list):
                headers.append(
                    (str(g.value(header, HT.fieldName)), str(g.value(header, HT.fieldValue)))
                )
        body_node = g.value(req, HT.body)
        body = None
        if body_node is not None:
            encoding = str(g.value(body_node, CNT.characterEncoding) or "UTF-8")
            body = str(g.value(body_node, CNT.chars)).encode(encoding)
        resp = g.value(req, HT.resp)
        statuses = frozenset(
            int(str(s).rsplit("StatusCode", 1)[1][0]) for s in g.objects(resp, MF.expectedStatus)
        )
        fmt = g.value(resp, MF.expectedFormat)
        boolean = g.value(resp, MF.expectedBoolean)
        path = str(g.value(req, HT.absolutePath))
        if not path.startswith("/sparql/"):
            raise ValueError(f"{PROTOCOL_MANIFEST}: a request path outside /sparql/: {path}")
        found.append(
            ProtocolRequest(
                str(g.value(req, HT.methodName)),
                path.removeprefix("/sparql/"),
                tuple(headers),
                body,
                Expected(
                    statuses,
                    str(fmt) if fmt is not None else None,
                    str(boolean) == "true" if boolean is not None else None,
                ),
            )
        )
    return tuple(found)


@cache
def manifest_tests() -> tuple[ProtocolTest, ...]:
    """Every test of the protocol manifest, in its order."""
    g = rdflib.Graph().parse(
        PROTOCOL_MANIFEST, format="turtle", publicID=PROTOCOL_MANIFEST.as_uri()
    )
    root = next(g.subjects(RDF.type, MF.Manifest))
    tests = []
    for node in _list(g, g.value(root, MF.entries)):
        graphs = tuple(
            (
                str(g.value(data, RDFS.label)),
                Path(unquote(urlsplit(str(g.value(data, UT.graph))).path)),
            )
            for data in g.objects(node, UT.graphData)
        )
        name = str(node).rsplit("#", 1)[1]
        tests.append(ProtocolTest(name, str(g.value(node, MF.name)), _requests(g, node), graphs))
    return tuple(tests)


def protocol_tests() -> tuple[ProtocolTest, ...]:
    """The manifest's query tests that need no data of their own, in its order (an update
    that should succeed does not apply: this endpoint is read-only)."""
    return tuple(t for t in manifest_tests() if not t.name.startswith("update_") and not t.graphs)


def service_description_tests() -> tuple[str, ...]:
    """The names of the Service Description tests (their manifest says them in words)."""
    g = rdflib.Graph().parse(SD_MANIFEST, format="turtle")
    root = next(g.subjects(RDF.type, MF.Manifest))
    return tuple(str(n).rsplit("#", 1)[1] for n in _list(g, g.value(root, MF.entries)))


def replay(endpoint: str, test: ProtocolTest) -> None:
    """Send the test's requests to the endpoint; CheckError at the first wrong answer."""
    for request in test.requests:
        url = endpoint + request.tail
        reply = fetch(url, request.method, dict(request.headers), request.body)
        why = judge(reply, request.expected)
        if why:
            raise CheckError(f"{request.method} {url}: {why}")


RESULT_TYPES = {
    "application/sparql-results+json": pyoxigraph.QueryResultsFormat.JSON,
    "application/sparql-results+xml": pyoxigraph.QueryResultsFormat.XML,
    "text/csv": pyoxigraph.QueryResultsFormat.CSV,
    "text/tab-separated-values": pyoxigraph.QueryResultsFormat.TSV,
}


def judge(reply: Reply, expected: Expected) -> str:
    """What is wrong with the reply ('' if nothing)."""
    if reply.status // 100 not in expected.statuses:
        classes = "/".join(f"{s}xx" for s in sorted(expected.statuses))
        return f"status {reply.status}, expected {classes}"
    if expected.format in ("boolean", "tabular") or expected.boolean is not None:
        fmt = RESULT_TYPES.get(reply.media_type)
        if fmt is None:
            return f"Content-Type {reply.media_type!r} is not a SPARQL results format"
        try:
            parsed = pyoxigraph.parse_query_results(reply.body, format=fmt)
        except (SyntaxError, ValueError) as exc:
            return f"the {reply.media_type} answer does not parse: {exc}"
        if expected.format == "tabular" and not isinstance(parsed, pyoxigraph.QuerySolutions):
            return "expected solutions, got a boolean"
        if expected.format == "boolean" or expected.boolean is not None:
            if not isinstance(parsed, pyoxigraph.QueryBoolean):
                return "expected a boolean, got solutions"
            if expected.boolean is not None and bool(parsed) is not expected.boolean:
                return f"answered {bool(parsed)}, expected {expected.boolean}"
    elif expected.format == "RDF":
        rdf = next((f for f in RDF_FORMATS if f.media_type == reply.media_type), None)
        if rdf is None:
            return f"Content-Type {reply.media_type!r} is not an RDF format"
        try:
            list(pyoxigraph.parse(reply.body, format=rdf.oxigraph, base_iri=reply.url))
        except (SyntaxError, ValueError, OSError) as exc:
            return f"the {rdf.label} answer does not parse: {exc}"
    return ""
