"""`kgpub serve` on the seed library, over HTTP with real clients: every minted IRI
dereferences, every representation parses (rdflib, rapper, the pyld JSON-LD processor) into
the same graph, and the HTTP around it (Link, validators, 304, HEAD, CORS, gzip, errors, dumps,
VoID/DCAT, robots.txt, sitemap, HTML) is what the README promises."""

from __future__ import annotations

import gzip
import hashlib
import json
import urllib.request
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pyoxigraph
import pytest
import rdflib
from fetch import BROWSER, Page, get, parse, rapper_count
from flask.testing import FlaskClient
from live import Server
from pyld import jsonld as pyld
from rdfdiff import assert_isomorphic

from graph.iris import Iris
from graph.namespaces import DCAT, DCTERMS, RDF, SPDX, VOID
from graph.store.oxigraph import OxigraphReader
from server.views import pages

JSONLD_WARNING = "ignore:ConjunctiveGraph is deprecated:DeprecationWarning"
RDF_TYPES = ("text/turtle", "application/ld+json", "application/n-triples", "application/rdf+xml")
ALL_TYPES = (*RDF_TYPES, "text/html")
SUFFIX = {
    "text/turtle": ".ttl",
    "application/ld+json": ".jsonld",
    "application/n-triples": ".nt",
    "application/rdf+xml": ".rdf",
    "text/html": ".html",
}


@pytest.fixture(scope="module")
def manifest(seed_out: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((seed_out / "current" / "manifest.json").read_text())
    return data


@pytest.fixture(scope="module")
def iris(manifest: dict[str, Any]) -> Iris:
    return Iris(manifest["base"])


@pytest.fixture(scope="module")
def minted(seed_out: Path, iris: Iris) -> dict[str, list[str]]:
    """Every IRI the build minted, by kind, read from the store."""
    store = pyoxigraph.Store.read_only(str(seed_out / "current" / "store"))
    return {
        "entry": OxigraphReader(store, iris).entries(),
        "concept": OxigraphReader(store, iris).concepts(),
        "scheme": [iris.scheme],
        "library": [iris.library],
        "dataset": [iris.dataset, iris.void],
    }


@pytest.fixture(scope="module")
def samples(minted: dict[str, list[str]], manifest: dict[str, Any]) -> dict[str, str]:
    """One IRI of each kind."""
    return {
        "entry": manifest["example"],
        "concept": minted["concept"][0],
        "scheme": minted["scheme"][0],
        "library": minted["library"][0],
        "dataset": minted["dataset"][0],
        "void": minted["dataset"][1],
    }


# --- every IRI dereferences -----------------------------------------------------------------


def test_every_minted_iri_dereferences(live: Server, minted: dict[str, list[str]]) -> None:
    """Each entry, concept, the scheme, the library, the dataset and VoID: Turtle by default,
    HTML for a browser, both 200, with Vary: Accept."""
    iris = [iri for group in minted.values() for iri in group]
    assert len(minted["entry"]) == 35 and len(minted["concept"]) == 9
    for iri in iris:
        for accept, media_type in ((None, "text/turtle"), (BROWSER, "text/html")):
            reply = get(iri, {"Accept": accept} if accept else {})
            assert reply.status == 200, (iri, accept, reply.body[:200])
            assert reply.media_type == media_type
            assert "accept" in reply.vary()


def test_root_is_the_library(live: Server, iris: Iris) -> None:
    turtle = get(live.base)
    assert turtle.status == 200 and turtle.media_type == "text/turtle"
    assert turtle.header("Content-Location") == iris.library + ".ttl"
    assert turtle.link("canonical") == iris.library
    assert turtle.body == get(iris.library).body


@pytest.mark.filterwarnings(JSONLD_WARNING)
@pytest.mark.parametrize("kind", ["entry", "concept", "scheme", "library", "dataset", "void"])
def test_every_representation_parses_into_the_same_graph(
    live: Server, samples: dict[str, str], kind: str
) -> None:
    """rdflib parses Turtle, JSON-LD (its @context fetched from the server), N-Triples, RDF/XML
    and the JSON-LD embedded in the HTML page: one graph; rapper agrees on the count."""
    iri = samples[kind]
    turtle = get(iri, {"Accept": "text/turtle"})
    expected = parse(turtle, iri)
    assert len(expected) > 0
    for media_type in RDF_TYPES:
        reply = get(iri, {"Accept": media_type})
        assert reply.status == 200 and reply.media_type == media_type
        assert_isomorphic(parse(reply, iri), expected)
        if media_type in ("text/turtle", "application/n-triples", "application/rdf+xml"):
            assert rapper_count(reply, iri) == len(expected), media_type
    html = get(iri, {"Accept": "text/html"})
    scripts = [
        text for kind_, text in Page(html.body.decode()).scripts if kind_ == "application/ld+json"
    ]
    assert len(scripts) == 1
    embedded = rdflib.Graph().parse(data=scripts[0], format="json-ld", publicID=iri)
    assert_isomorphic(embedded, expected)


def _pyld_loader(url: str, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """pyld's document loader over urllib (the context comes from the server under test)."""
    request = urllib.request.Request(url, headers={"Accept": "application/ld+json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return {
            "contentType": "application/ld+json",
            "contextUrl": None,
            "documentUrl": url,
            "document": json.loads(response.read()),
        }


@pytest.mark.parametrize("kind", ["entry", "concept", "library", "dataset"])
def test_reference_jsonld_processor_reads_the_same_graph(
    live: Server, samples: dict[str, str], kind: str
) -> None:
    """pyld (the reference JSON-LD processor's Python port) turns the JSON-LD into RDF."""
    iri = samples[kind]
    doc = json.loads(get(iri, {"Accept": "application/ld+json"}).body)
    nquads = pyld.to_rdf(
        doc, {"format": "application/n-quads", "documentLoader": _pyld_loader, "base": iri}
    )
    got = rdflib.Graph().parse(data=nquads, format="nt")
    assert_isomorphic(got, parse(get(iri, {"Accept": "text/turtle"}), iri))


def test_jsonld_is_compact_with_a_published_context(live: Server, samples: dict[str, str]) -> None:
    entry = samples["entry"]
    doc = json.loads(get(entry, {"Accept": "application/ld+json"}).body)
    assert doc["@context"] == live.base + "context.jsonld"
    node = next(n for n in doc["@graph"] if n["id"] == entry)
    assert node["type"] == "Text"
    assert isinstance(node["title"], str) and isinstance(node["created"], str)
    assert all(isinstance(s, str) and s.startswith(live.base) for s in node["subject"])
    context = get(live.base + "context.jsonld", {"Origin": "https://app.example"})
    assert context.status == 200 and context.media_type == "application/ld+json"
    assert context.header("Access-Control-Allow-Origin") == "*"
    terms = json.loads(context.body)["@context"]
    assert terms["title"]["@id"] == str(DCTERMS.title)
    assert terms["subject"]["@type"] == "@id"


# --- headers -----------------------------------------------------------------------------------


def test_link_headers_name_every_representation(live: Server, samples: dict[str, str]) -> None:
    iri = samples["entry"]
    reply = get(iri)
    alternates = {p["type"]: t for t, p in reply.links() if p.get("rel") == "alternate"}
    assert alternates == {t: iri + SUFFIX[t] for t in ALL_TYPES}
    assert reply.link("canonical") == iri
    assert reply.link("describedby") == live.base + ".well-known/void"
    assert reply.header("Content-Location") == iri + ".ttl"
    for media_type, url in alternates.items():
        own = get(url, {"Accept": "image/png"})  # the suffix decides, whatever the Accept
        assert own.status == 200 and own.media_type == media_type
        assert "accept" not in own.vary()
        assert own.body == get(iri, {"Accept": media_type}).body or media_type == "text/html"


def test_unknown_suffix_is_404(live: Server, samples: dict[str, str]) -> None:
    for url in (samples["entry"] + ".exe", samples["concept"] + ".txt", live.base + "library.pdf"):
        reply = get(url, {"Accept": "application/json"})
        assert reply.status == 404, url
        assert ".ttl" in json.loads(reply.body)["message"]


def test_conditional_requests(live: Server, samples: dict[str, str]) -> None:
    iri = samples["entry"]
    first = get(iri, {"Accept": "text/turtle"})
    etag, modified = first.header("ETag"), first.header("Last-Modified")
    assert etag.startswith('"') and not etag.startswith("W/")  # strong
    assert modified.endswith(" GMT")
    cases = [
        ({"If-None-Match": etag}, 304),
        ({"If-None-Match": "W/" + etag}, 304),  # weak comparison for If-None-Match
        ({"If-None-Match": f'"nope", {etag}'}, 304),
        ({"If-None-Match": "*"}, 304),
        ({"If-None-Match": '"nope"'}, 200),
        ({"If-Modified-Since": modified}, 304),
        ({"If-Modified-Since": "Sat, 01 Jan 2000 00:00:00 GMT"}, 200),
        ({"If-None-Match": '"nope"', "If-Modified-Since": modified}, 200),  # INM wins
    ]
    for headers, status in cases:
        reply = get(iri, {"Accept": "text/turtle", **headers})
        assert reply.status == status, headers
        assert reply.header("ETag") == etag
        if status == 304:
            assert reply.body == b""
            assert reply.header("Content-Location") == iri + ".ttl"
    other = get(iri, {"Accept": "application/n-triples"})
    assert other.header("ETag") != etag  # each representation its own tag
    again = get(iri, {"Accept": "application/n-triples", "If-None-Match": etag})
    assert again.status == 200


def test_head_gives_gets_headers(live: Server, samples: dict[str, str]) -> None:
    for url, accept in (
        (samples["entry"], "text/turtle"),
        (samples["concept"], "text/html"),
        (live.base + "dumps/library.nt", "*/*"),
        (live.base + "sitemap.xml", "*/*"),
    ):
        got, head = get(url, {"Accept": accept}), get(url, {"Accept": accept}, method="HEAD")
        assert head.status == got.status == 200
        assert head.body == b""
        drop = {"date"}
        assert {k.lower(): v for k, v in head.headers.items() if k.lower() not in drop} == {
            k.lower(): v for k, v in got.headers.items() if k.lower() not in drop
        }
        assert int(head.header("Content-Length")) == len(got.body)


def test_cors_on_get_and_preflight(live: Server, samples: dict[str, str]) -> None:
    iri = samples["entry"]
    reply = get(iri, {"Origin": "https://app.example", "Accept": "application/ld+json"})
    assert reply.header("Access-Control-Allow-Origin") == "*"
    exposed = {h.strip().lower() for h in reply.header("Access-Control-Expose-Headers").split(",")}
    assert {"link", "etag", "content-location", "last-modified"} <= exposed
    preflight = get(
        iri,
        {
            "Origin": "https://app.example",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "accept, if-none-match",
        },
        method="OPTIONS",
    )
    assert preflight.status in (200, 204)
    assert preflight.header("Access-Control-Allow-Origin") == "*"
    methods = {m.strip() for m in preflight.header("Access-Control-Allow-Methods").split(",")}
    assert {"GET", "HEAD", "OPTIONS"} <= methods
    allowed = preflight.header("Access-Control-Allow-Headers").lower()
    assert "accept" in allowed and "if-none-match" in allowed


def test_gzip_when_asked(live: Server, samples: dict[str, str]) -> None:
    iri = samples["concept"]
    plain = get(iri, {"Accept": "text/turtle"})
    zipped = get(iri, {"Accept": "text/turtle", "Accept-Encoding": "gzip, deflate, br"})
    assert plain.header("Content-Encoding") == ""
    assert zipped.header("Content-Encoding") == "gzip"
    assert gzip.decompress(zipped.body) == plain.body
    assert len(zipped.body) < len(plain.body)
    assert zipped.header("ETag") != plain.header("ETag")
    assert "accept-encoding" in zipped.vary() and "accept-encoding" in plain.vary()
    refused = get(iri, {"Accept": "text/turtle", "Accept-Encoding": "gzip;q=0, identity"})
    assert refused.header("Content-Encoding") == "" and refused.body == plain.body
    cond = get(
        iri,
        {
            "Accept": "text/turtle",
            "Accept-Encoding": "gzip",
            "If-None-Match": zipped.header("ETag"),
        },
    )
    assert cond.status == 304


# --- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("accept", "media_type"),
    [
        (None, "application/json"),
        (BROWSER, "text/html"),
        ("text/plain", "text/plain"),
        ("text/turtle", "application/json"),
    ],
    ids=["none", "browser", "text", "rdf-client"],
)
def test_unknown_iri_is_404_in_the_negotiated_format(
    live: Server, accept: str | None, media_type: str
) -> None:
    for url in (
        live.base + "entry/2001-01-01-0000-no-such-entry",
        live.base + "category/nope",
        live.base + "no/such/path",
        live.base + "entry/a%20b",  # not even an IRI: still 404, never a query
        live.base + "category/x%3E%20%3Fp%20%3Fo%20%7D",
        live.base + "category/%3Cscript%3E",
    ):
        reply = get(url, {"Accept": accept} if accept else {})
        assert reply.status == 404, url
        assert reply.media_type == media_type
        if media_type == "application/json":
            assert json.loads(reply.body)["status"] == 404
        if media_type == "text/html":
            page = Page(reply.body.decode())
            assert any(a.endswith(".well-known/void") for a in page.anchors)


def test_wrong_method_is_405_with_allow(live: Server, samples: dict[str, str]) -> None:
    for url in (samples["entry"], live.base + "dumps/library.ttl", live.base + "sitemap.xml"):
        for method in ("POST", "PUT", "DELETE"):
            reply = get(url, {"Accept": "application/json"}, method=method)
            assert reply.status == 405, (url, method)
            allowed = {m.strip() for m in reply.header("Allow").split(",")}
            assert {"GET", "HEAD"} <= allowed and method not in allowed
            assert json.loads(reply.body)["status"] == 405


def test_bad_page_numbers(live: Server, samples: dict[str, str]) -> None:
    concept = samples["concept"]
    assert get(concept + "?page=1", {"Accept": "text/turtle"}).status == 200
    assert get(concept + "?page=2", {"Accept": "text/turtle"}).status == 404  # one page only
    assert get(concept + ".ttl?page=2").status == 404
    assert get(concept + "?page=0", {"Accept": "text/turtle"}).status == 400
    assert get(concept + "?page=abc", {"Accept": "text/turtle"}).status == 400


# --- dumps and the dataset description ---------------------------------------------------------


def test_dumps(live: Server, manifest: dict[str, Any]) -> None:
    for dump in manifest["dumps"]:
        url = live.base + "dumps/" + dump["filename"]
        reply = get(url)
        assert reply.status == 200, url
        expected_type = "application/gzip" if dump["compressed"] else dump["media_type"]
        assert reply.media_type == expected_type
        assert int(reply.header("Content-Length")) == dump["size"] == len(reply.body)
        assert hashlib.sha256(reply.body).hexdigest() == dump["sha256"]
        assert reply.header("ETag") == f'"{dump["sha256"]}"'
        assert reply.header("Accept-Ranges") == "bytes"
        part = get(url, {"Range": "bytes=10-109"})
        assert part.status == 206 and part.body == reply.body[10:110]
        assert part.header("Content-Range") == f"bytes 10-109/{dump['size']}"
        assert get(url, {"Range": f"bytes={dump['size'] + 10}-"}).status == 416
        assert get(url, {"If-None-Match": reply.header("ETag")}).status == 304
        assert get(url, {"If-Modified-Since": reply.header("Last-Modified")}).status == 304
        if dump["compressed"]:
            plain = get(url.removesuffix(".gz"))
            assert gzip.decompress(reply.body) == plain.body


def test_plain_dump_is_gzip_coded_when_asked(live: Server) -> None:
    url = live.base + "dumps/library.ttl"
    plain = get(url)
    coded = get(url, {"Accept-Encoding": "gzip"})
    assert coded.header("Content-Encoding") == "gzip" and coded.media_type == "text/turtle"
    assert gzip.decompress(coded.body) == plain.body
    assert coded.header("ETag") != plain.header("ETag")
    assert "accept-encoding" in coded.vary()


def test_unknown_dump_is_404(live: Server) -> None:
    reply = get(live.base + "dumps/library.exe", {"Accept": "application/json"})
    assert reply.status == 404 and "library.ttl" in json.loads(reply.body)["message"]


def test_void_and_dcat_describe_the_dumps_that_are_served(
    live: Server, manifest: dict[str, Any], iris: Iris
) -> None:
    void = parse(get(live.base + ".well-known/void"), iris.void)
    ds = rdflib.URIRef(iris.dataset)
    for prop in (
        VOID.triples,
        VOID.entities,
        VOID.classPartition,
        VOID.propertyPartition,
        VOID.sparqlEndpoint,
        VOID.uriSpace,
        VOID.exampleResource,
        VOID.vocabulary,
    ):
        assert void.value(ds, prop) is not None, prop
    assert int(void.value(ds, VOID.triples)) == manifest["triples"]  # type: ignore[arg-type]
    dumps = set(void.objects(ds, VOID.dataDump))
    assert len(dumps) == len(manifest["dumps"])
    for dist in void.objects(ds, DCAT.distribution):
        url = str(void.value(dist, DCAT.downloadURL))
        reply = get(url)
        assert reply.status == 200, url
        assert int(reply.header("Content-Length")) == int(void.value(dist, DCAT.byteSize))  # type: ignore[arg-type]
        assert str(void.value(dist, DCAT.mediaType)).endswith("/" + reply.media_type) or (
            reply.media_type == "application/gzip"
        )
        checksum = void.value(dist, SPDX.checksum)
        assert (
            str(void.value(checksum, SPDX.checksumValue)) == hashlib.sha256(reply.body).hexdigest()
        )
    service = rdflib.URIRef(iris.sparql)
    assert (service, RDF.type, DCAT.DataService) in void
    assert (ds, DCAT.accessService, service) in void


def test_robots_and_sitemap(live: Server, minted: dict[str, list[str]], iris: Iris) -> None:
    robots = get(live.base + "robots.txt")
    assert robots.status == 200 and robots.media_type == "text/plain"
    assert f"Sitemap: {live.base}sitemap.xml" in robots.body.decode()
    sitemap = get(live.base + "sitemap.xml")
    assert sitemap.status == 200 and sitemap.media_type == "application/xml"
    ns = {"s": "http://www.sitemaps.org/schemas/sitemap/0.9"}
    root = ET.fromstring(sitemap.body)
    urls = {
        u.findtext("s:loc", namespaces=ns): u.findtext("s:lastmod", namespaces=ns)
        for u in root.findall("s:url", ns)
    }
    expected = {iri for group in minted.values() for iri in group if iri != iris.void}
    assert expected | {live.base} == set(urls)
    assert all(lastmod and lastmod.endswith("Z") for lastmod in urls.values())
    for url in list(urls)[:5] + minted["concept"][:2]:
        assert get(url, {"Accept": BROWSER}).media_type == "text/html"


# --- HTML --------------------------------------------------------------------------------------


def test_every_html_page_links_its_data_and_void(
    live: Server, minted: dict[str, list[str]]
) -> None:
    for iri in [
        *minted["entry"][:3],
        *minted["concept"][:3],
        *minted["scheme"],
        *minted["library"],
        *minted["dataset"],
    ]:
        reply = get(iri, {"Accept": BROWSER})
        page = Page(reply.body.decode())
        assert page.alternates() == {t: iri + SUFFIX[t] for t in RDF_TYPES}, iri
        assert any(
            link.get("rel") == "canonical" and link["href"] == iri for link in page.head_links
        )
        assert [k for k, _ in page.scripts] == ["application/ld+json"]  # no other script
        assert "/.well-known/void" in page.anchors
        assert "/sparql" in page.anchors
        assert reply.body.startswith(b"<!doctype html>")
        assert b'name="viewport"' in reply.body


def test_landing_page(live: Server, minted: dict[str, list[str]], manifest: dict[str, Any]) -> None:
    page = Page(get(live.base, {"Accept": BROWSER}).body.decode())
    text = " ".join(page.text)
    assert manifest["title"] in text and f"{manifest['entries']:,}" in text
    for concept in minted["concept"]:
        assert "/" + concept.removeprefix(live.base) in page.anchors
    for entry in minted["entry"][:10]:  # the latest entries
        assert "/" + entry.removeprefix(live.base) in page.anchors
    for target in ("/sparql", "/.well-known/void", "/dataset", "/categories"):
        assert target in page.anchors, target
    # The linked-data material is one click away, on the page about the data (issue 12).
    about = Page(get(live.base + "dataset", {"Accept": BROWSER}).body.decode())
    for dump in manifest["dumps"]:
        assert "/dumps/" + dump["filename"] in about.anchors
    for target in (
        "/sparql",
        "/.well-known/void",
        "/context.jsonld",
        "/changes",
        "/oai?verb=Identify",
    ):
        assert target in about.anchors, target


def test_entry_page_shows_the_entry(live: Server, samples: dict[str, str], seed_out: Path) -> None:
    iri = samples["entry"]
    graph = parse(get(iri), iri)
    page = Page(get(iri, {"Accept": BROWSER}).body.decode())
    text = " ".join(page.text)
    assert str(graph.value(rdflib.URIRef(iri), DCTERMS.title)) in text
    for concept in graph.objects(rdflib.URIRef(iri), DCTERMS.subject):
        assert "/" + str(concept).removeprefix(live.base) in page.anchors


def test_category_page_lists_its_entries_newest_first(
    live: Server, samples: dict[str, str], seed_out: Path
) -> None:
    iri = samples["concept"]
    page = Page(get(iri, {"Accept": BROWSER}).body.decode())
    listed = [a for a in page.anchors if a.startswith("/entry/")]
    assert listed and listed == sorted(listed, reverse=True)
    store = pyoxigraph.Store.read_only(str(seed_out / "current" / "store"))
    members = OxigraphReader(store, Iris(live.base)).members(iri, "concept")
    assert [live.base + a.lstrip("/") for a in listed] == members


def test_scheme_page_lists_categories_with_counts(
    live: Server, minted: dict[str, list[str]]
) -> None:
    page = Page(get(minted["scheme"][0], {"Accept": BROWSER}).body.decode())
    for concept in minted["concept"]:
        assert "/" + concept.removeprefix(live.base) in page.anchors
    assert "35" in " ".join(page.text)


def test_sitemap_index_past_the_limit(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch, minted: dict[str, list[str]]
) -> None:
    """Past SITEMAP_MAX URLs (graph/sitemap.py MAX) /sitemap.xml is an index of parts; a
    limit of 10 makes the seed's 48 pages five parts (the app in-process: 10,000 pages would
    take a 10k-entry build)."""
    monkeypatch.setattr(pages, "SITEMAP_MAX", 10)
    ns = {"s": "http://www.sitemaps.org/schemas/sitemap/0.9"}
    index = ET.fromstring(client.get("/sitemap.xml").data)
    assert index.tag == "{http://www.sitemaps.org/schemas/sitemap/0.9}sitemapindex"
    parts = [loc.text or "" for loc in index.findall("s:sitemap/s:loc", ns)]
    assert len(parts) == 5
    urls: list[str] = []
    for part in parts:
        reply = client.get("/" + part.split("/", 3)[3])
        assert reply.status_code == 200
        urls += [loc.text or "" for loc in ET.fromstring(reply.data).findall("s:url/s:loc", ns)]
    assert len(urls) == len(set(urls)) == 48
    assert set(minted["entry"]) <= set(urls)
    assert client.get("/sitemap-6.xml").status_code == 404
