"""The HTTP interface fuzzed (issue 13, hostile input), against the real server.

schemathesis reads the server's own OpenAPI description (/openapi.json: SPARQL, OAI-PMH, the
change feed, the paged collections, the search) and sends generated requests, valid and
invalid: no answer may be a 5xx, and each must conform (a documented status, Content-Type,
and body schema). A short run in the suite; a long one behind the `fuzz` marker.

Then targeted hostile requests, each with the answer a user should get: path traversal on
dump and static URLs, over-long URLs, headers and bodies, malformed Accept and conditional
headers, percent-encoding tricks in IRIs (%2e%2e, %00, overlong UTF-8, double encoding).
"""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from live import SEED, Server, build_publication, free_port
from schemathesis.checks import positive_data_acceptance

from server.views.openapi import OPENAPI_MEDIA_TYPE, document

SHORT_EXAMPLES = 15  # per operation, in the suite
LONG_EXAMPLES = 400  # `pytest -m fuzz`


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The seed publication served by `kgpub serve` on loopback (the embedded store: this is
    about the web layer, which every backend shares)."""
    port = free_port()
    out = tmp_path_factory.mktemp("fuzz") / "publication"
    build_publication([SEED], out, f"http://127.0.0.1:{port}/")
    with Server(out, port) as running:
        yield running


@pytest.fixture(scope="module")
def api(server: Server) -> schemathesis.BaseSchema:
    """The server's own description, as schemathesis reads it."""
    return schemathesis.openapi.from_url(server.base + "openapi.json")


# Every operation the document describes (it is built by a function of the base IRI), one
# test each. (schemathesis' own pytest fixture loader does not run on pytest 9: it sets a
# private attribute of the test item.)
OPERATIONS = [
    (path, method.upper())
    for path, item in document("http://127.0.0.1/")["paths"].items()
    for method in item
]
FUZZ_SETTINGS = settings(
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)


def _fuzz(
    api: schemathesis.BaseSchema, path: str, method: str, examples: int, seed: int | None
) -> None:
    """Generated requests for one operation, each sent and validated: no 5xx, a documented
    status and Content-Type, and a body that fits its schema."""
    operation = api[path][method]

    @given(case=operation.as_strategy())
    @settings(FUZZ_SETTINGS, max_examples=examples, derandomize=seed is not None)
    def run(case: schemathesis.Case) -> None:
        # Schema-valid is not always meaningful (a string is a schema-valid query, but not
        # every string is SPARQL): a 400 for it is right, so positive_data_acceptance is off.
        case.call_and_validate(excluded_checks=[positive_data_acceptance])

    run()


@pytest.mark.parametrize(("path", "method"), OPERATIONS, ids=[f"{m} {p}" for p, m in OPERATIONS])
def test_api_conforms_to_its_description(
    api: schemathesis.BaseSchema, path: str, method: str
) -> None:
    _fuzz(api, path, method, SHORT_EXAMPLES, seed=0)  # the same short run every time


@pytest.mark.fuzz
@pytest.mark.parametrize(("path", "method"), OPERATIONS, ids=[f"{m} {p}" for p, m in OPERATIONS])
def test_api_conforms_to_its_description_long(
    api: schemathesis.BaseSchema, path: str, method: str
) -> None:
    _fuzz(api, path, method, LONG_EXAMPLES, seed=None)


def test_the_description_is_served_and_linked(server: Server) -> None:
    reply = _send(server, "GET", "/openapi.json")
    assert reply.status == 200
    assert reply.getheader("Content-Type") == OPENAPI_MEDIA_TYPE
    doc = json.loads(reply.body)
    assert doc["openapi"].startswith("3.")
    assert doc["servers"] == [{"url": server.base.rstrip("/")}]
    assert {"/sparql", "/oai", "/changes", "/collections/entries", "/search"} <= set(doc["paths"])
    home = _send(server, "GET", "/", {"Accept": "text/html"})
    assert (
        f'<{server.base}openapi.json>; rel="service-desc"; type="{OPENAPI_MEDIA_TYPE}"'
        in home.getheader("Link", "")
    )


# --- targeted hostile requests ------------------------------------------------------------------


class Answer:
    """A raw response: status, headers and body."""

    def __init__(self, response: http.client.HTTPResponse) -> None:
        self.status = response.status
        self.headers = response.msg
        self.body = response.read()

    def getheader(self, name: str, default: str = "") -> str:
        return ", ".join(self.headers.get_all(name) or []) or default


def _send(
    server: Server,
    method: str,
    target: str,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
) -> Answer:
    """One request with the target sent byte for byte as given (no normalisation)."""
    parts = urlsplit(server.base)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=60)
    try:
        conn.putrequest(method, target, skip_accept_encoding=True)
        for name, value in (headers or {}).items():
            conn.putheader(name, value)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        return Answer(conn.getresponse())
    finally:
        conn.close()


def _raw(server: Server, data: bytes) -> bytes:
    """Bytes sent as they are on a fresh connection; the start of the answer."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)


def _status_line(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


# Path traversal: never a file outside what is published. (target, statuses allowed)
TRAVERSAL = [
    ("/dumps/../manifest.json", {404}),
    ("/dumps/..%2fmanifest.json", {404}),
    ("/dumps/%2e%2e%2fmanifest.json", {404}),
    ("/dumps/%2e%2e/%2e%2e/%2e%2e/etc/passwd", {404}),
    ("/dumps/..%252fmanifest.json", {404}),
    ("/dumps/%c0%ae%c0%ae%c0%afmanifest.json", {404}),
    ("/dumps/library.ttl%00.txt", {404}),
    ("/dumps/library.ttl%2500", {404}),
    ("/dumps/.%2fcurrent", {404}),
    ("/static/../server/app.py", {404}),
    ("/static/..%2fapp.py", {404}),
    ("/static/%2e%2e/%2e%2e/pyproject.toml", {404}),
    ("/static/..%5c..%5capp.py", {404}),
    ("/static/%c0%ae%c0%ae/app.py", {404}),
    ("/static/style.css%00.py", {404}),
    ("/../../../../etc/passwd", {404}),
    ("/%2e%2e/%2e%2e/etc/passwd", {404}),
    ("/static//etc/passwd", {308, 404}),  # Werkzeug merges the slashes: /static/etc/passwd
]


@pytest.mark.parametrize(("target", "allowed"), TRAVERSAL, ids=[t for t, _ in TRAVERSAL])
def test_path_traversal_finds_nothing(server: Server, target: str, allowed: set[int]) -> None:
    reply = _send(server, "GET", target, {"Accept": "application/json"})
    assert reply.status in allowed, (target, reply.status, reply.body[:200])
    if reply.status == 308:
        assert urlsplit(reply.getheader("Location")).path.startswith("/static/")
    assert b"root:" not in reply.body
    assert b'"release"' not in reply.body and b"import " not in reply.body


def test_the_published_static_and_dump_files_are_served(server: Server) -> None:
    """The traversal tests would pass on a server that serves nothing: these are served."""
    assert _send(server, "GET", "/dumps/library.ttl").status == 200
    static = Path(__file__).resolve().parent.parent / "server" / "static"
    name = sorted(p.name for p in static.iterdir() if p.is_file())[0]
    assert _send(server, "GET", f"/static/{name}").status == 200


# Percent-encoding tricks in IRIs: a 4xx (the entry is not found), never a 5xx, never
# another resource than the one named.
IRI_TRICKS = [
    "/entry/%2e%2e",
    "/entry/%2e%2e%2fdataset",
    "/entry/..%2f..%2fdataset",
    "/entry/%00",
    "/entry/x%00.ttl",
    "/entry/%c0%ae%c0%ae",
    "/entry/%e0%80%ae",
    "/entry/%ff%fe",
    "/entry/%252e%252e",
    "/entry/%25",
    "/entry/%",
    "/entry/%zz",
    "/entry/%ed%a0%80",
    "/entry/x.%74tl",
    "/category/%2e%2e%2f%2e%2e%2fdumps%2flibrary.ttl",
    "/entry/" + "a" * 4000,
    "/entry/a.b.c.d.ttl",
    "/entry/%0d%0aSet-Cookie:%20x=1",
    "/collections/category/%2e%2e",
    "/collections/category/%00",
    "/search.%00",
]


@pytest.mark.parametrize("target", IRI_TRICKS)
def test_percent_encoding_tricks_get_a_4xx(server: Server, target: str) -> None:
    reply = _send(server, "GET", target, {"Accept": "application/json"})
    assert 400 <= reply.status < 500, (target, reply.status, reply.body[:200])
    assert "Set-Cookie" not in reply.headers
    if reply.getheader("Content-Type").startswith("application/json"):
        assert json.loads(reply.body)["status"] == reply.status


# The same tricks in parameters: answered (200 or 400), never a 5xx.
PARAMETER_TRICKS = [
    "/search?q=%ff%fe",
    "/search?q=%c0%ae%c0%ae",
    "/search?q=%00",
    "/search?category=%2e%2e%2f%2e%2e",
    "/search?q=%25%32%65",
    "/oai?verb=%c0%80Identify",
    "/oai?verb=GetRecord&metadataPrefix=oai_dc&identifier=%2e%2e%2fmanifest.json",
    "/oai?verb=ListRecords&resumptionToken=%ff%00",
    "/sparql?query=%ff%fe",
    "/sparql?query=ASK%7B%7D&default-graph-uri=%00",
    "/changes?before=%00",
    "/changes?before=%d9%a3",
    "/collections/entries?after=%2e%2e%2f%2e%2e",
    "/collections/entries?after=%ed%a0%80",
    "/library?page=%ef%bc%91",
    "/library?format=%00",
]


@pytest.mark.parametrize("target", PARAMETER_TRICKS)
def test_percent_encoding_tricks_in_parameters_are_answered(server: Server, target: str) -> None:
    reply = _send(server, "GET", target)
    assert reply.status in (200, 400, 404), (target, reply.status, reply.body[:200])


def test_an_encoded_dot_in_a_suffix_names_the_same_representation(server: Server) -> None:
    """%2e is "." (RFC 3986 §2.3, unreserved): the entry's Turtle, not another resource."""
    entry = _first_entry(server)
    plain = _send(server, "GET", f"/entry/{entry}.ttl")
    encoded = _send(server, "GET", f"/entry/{entry}%2ettl")
    assert plain.status == encoded.status == 200
    assert encoded.body == plain.body


def _first_entry(server: Server) -> str:
    reply = _send(server, "GET", "/sitemap.xml")
    start = reply.body.index(b"/entry/") + len(b"/entry/")
    return reply.body[start : reply.body.index(b"<", start)].decode()


# Malformed Accept headers: the default representation, a 406 or a 400 (431 for one too
# long), never a 5xx.
ACCEPTS = [
    "text/turtle;q=abc",
    "text/turtle;q=-1",
    "text/turtle;q=1e999",
    "text/turtle;q=NaN",
    "text/turtle;q=",
    ";;;,,,",
    "/",
    "*/",
    "text/",
    "text/turtle;;q=1",
    "text/turtle;q=0.5;q=0.9",
    "a" * 8000,
    ",".join(["text/turtle;q=0.1"] * 500),
    "tëxt/türtle",
    "text/turtle\x7f",
    '"text/turtle"',
    'text/turtle;charset="utf-8',
    "*/*;q=0.0000001",
]


@pytest.mark.parametrize("accept", ACCEPTS, ids=[a[:30] for a in ACCEPTS])
def test_malformed_accept_is_answered(server: Server, accept: str) -> None:
    for target in ("/library", "/sparql?query=ASK%7B%7D", "/changes", "/search?q=x"):
        reply = _send(server, "GET", target, {"Accept": accept})
        assert reply.status in (200, 400, 406, 431), (target, accept[:40], reply.status)


# Malformed conditional headers: ignored (RFC 9110 §13.1.3: an invalid date is ignored),
# so the full answer; never a 5xx.
CONDITIONALS = [
    {"If-None-Match": "not-quoted"},
    {"If-None-Match": '"unterminated'},
    {"If-None-Match": "W/"},
    {"If-None-Match": ","},
    {"If-None-Match": '"' + "x" * 8000 + '"'},
    {"If-Modified-Since": "yesterday"},
    {"If-Modified-Since": "Sun, 99 Foo 99999 99:99:99 GMT"},
    {"If-Modified-Since": "Thu, 01 Jan 1970 00:00:00 GMT"},
    {"If-Modified-Since": "Fri, 31 Dec 9999 23:59:59 GMT"},
    {"If-Modified-Since": "-1"},
    {"If-Modified-Since": "99999999999999999999"},
    {"If-Unmodified-Since": "nonsense"},
    {"If-Match": "nonsense"},
    {"If-Range": "nonsense", "Range": "bytes=0-10"},
    {"Range": "bytes=999999999999999999999-"},
    {"Range": "bytes=-0"},
    {"Range": "bytes=5-1"},
    {"Range": "lines=1-2"},
    {"Range": "bytes=" + ",".join(["0-1"] * 300)},
]


@pytest.mark.parametrize("headers", CONDITIONALS, ids=[str(h)[:40] for h in CONDITIONALS])
def test_malformed_conditional_headers_are_answered(
    server: Server, headers: dict[str, str]
) -> None:
    for target in ("/library", "/dumps/library.nt", "/sitemap.xml", "/changes"):
        reply = _send(server, "GET", target, headers)
        assert reply.status in (200, 206, 304, 400, 412, 416), (target, headers, reply.status)


def test_over_long_url_gets_414(server: Server) -> None:
    answer = _raw(server, b"GET /search?q=" + b"a" * 20_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert _status_line(answer) in (400, 414)


def test_over_long_header_gets_431_or_400(server: Server) -> None:
    answer = _raw(
        server, b"GET /library HTTP/1.1\r\nHost: x\r\nX-Long: " + b"a" * 20_000 + b"\r\n\r\n"
    )
    assert _status_line(answer) in (400, 431)


def test_too_many_headers_get_4xx(server: Server) -> None:
    lines = b"".join(b"X-H%d: v\r\n" % i for i in range(200))
    answer = _raw(server, b"GET /library HTTP/1.1\r\nHost: x\r\n" + lines + b"\r\n")
    assert 400 <= _status_line(answer) < 500


@pytest.mark.parametrize("target", ["/sparql", "/oai"])
def test_over_long_body_gets_413(server: Server, target: str) -> None:
    body = b"query=" + b"a" * (3 << 20)
    reply = _send(
        server, "POST", target, {"Content-Type": "application/x-www-form-urlencoded"}, body
    )
    assert reply.status == 413, (target, reply.status, reply.body[:200])


@pytest.mark.parametrize(
    ("content_length", "status"),
    [("-1", 400), ("abc", 400), ("1, 2", 400), ("99999999999999999999999", 413)],
    ids=["negative", "word", "list", "huge"],
)
def test_a_bad_content_length_gets_4xx(server: Server, content_length: str, status: int) -> None:
    answer = _raw(
        server,
        b"POST /sparql HTTP/1.1\r\nHost: x\r\nContent-Type: application/sparql-query\r\n"
        b"Content-Length: " + content_length.encode() + b"\r\n\r\nASK {}",
    )
    assert _status_line(answer) == status


def test_a_request_line_of_garbage_gets_400(server: Server) -> None:
    assert (
        _status_line(_raw(server, b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\r\n\r\n")) == 400
    )
