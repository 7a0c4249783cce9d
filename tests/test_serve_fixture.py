"""`kgpub serve` on a small hostile library published under another base IRI, as behind a
proxy (https://data.example.org/lib/): path-wise dereferencing, escaping of data in HTML,
paging of long lists (page size 2), and the licence and publisher in VoID/DCAT."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import rdflib
from fetch import BROWSER, Page, get, parse
from live import FIXTURES, Server, free_port

from graph.iris import Iris
from graph.namespaces import DCTERMS, FOAF, VOID
from graph.publication import BuildOptions, build

BASE = "https://data.example.org/lib/"
LICENSE = "https://creativecommons.org/licenses/by/4.0/"
PUBLISHER = 'Hostile <Publisher> & "Co"'
TITLE = 'The <i>Hostile</i> Library & "Friends"'
LISTING = FIXTURES / "serve" / "hostile.txt"
SCRIPT_TITLE = '<script>alert("title")</script> Report & "Quotes"'


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    out = tmp_path_factory.mktemp("hostile") / "publication"
    options = BuildOptions(base=BASE, title=TITLE, license=LICENSE, publisher=PUBLISHER)
    build([LISTING], out, options)
    with Server(out, free_port(), workers=1, page_size=2) as running:
        yield running


@pytest.fixture(scope="module")
def iris() -> Iris:
    return Iris(BASE)


def _local(server: Server, iri: str, prefix: str = "lib/") -> str:
    """The URL on the test server for a public IRI, with the proxy's path prefix or not."""
    return server.base + prefix + iri.removeprefix(BASE)


def _entry(server: Server, title_start: str) -> str:
    graph = rdflib.Graph()
    for page in (1, 2, 3):
        graph += parse(get(f"{server.base}lib/library?page={page}"), BASE)
    for s, o in graph.subject_objects(DCTERMS.title):
        if str(o).startswith(title_start):
            return str(s)
    raise AssertionError(f"no entry titled {title_start!r}")


@pytest.mark.parametrize("prefix", ["lib/", ""], ids=["path-kept", "prefix-stripped"])
def test_public_iris_dereference_by_path(server: Server, iris: Iris, prefix: str) -> None:
    """A proxy that forwards /lib/... unchanged and one that strips /lib both work; the
    RDF speaks of the public IRIs and the Link headers point at them."""
    for iri in (iris.library, iris.scheme, iris.concept("Safeguarding"), iris.dataset, iris.void):
        reply = get(_local(server, iri, prefix))
        assert reply.status == 200, iri
        assert reply.link("canonical") == iri
        assert reply.header("Content-Location") == iri + ".ttl"
        assert (rdflib.URIRef(iri), None, None) in parse(reply, iri) or iri == iris.void
    entry = _entry(server, "Annual review")
    reply = get(_local(server, entry, prefix), {"Accept": "application/ld+json"})
    assert reply.status == 200
    assert json.loads(reply.body)["@context"] == BASE + "context.jsonld"


def test_html_links_are_paths_under_the_public_base(server: Server, iris: Iris) -> None:
    page = Page(get(server.base + "lib/", {"Accept": BROWSER}).body.decode())
    internal = [a for a in page.anchors if a.startswith("/")]
    assert internal and all(a.startswith("/lib/") for a in internal)
    assert "/lib/.well-known/void" in page.anchors and "/lib/sparql" in page.anchors
    css = next(link["href"] for link in page.head_links if link.get("rel") == "stylesheet")
    assert css == "/lib/static/kgpub.css"
    assert get(server.base + "lib/static/kgpub.css").status == 200
    robots = get(server.base + "robots.txt").body.decode()
    assert f"Sitemap: {BASE}sitemap.xml" in robots and "Disallow: /lib/sparql" in robots


def test_data_is_escaped_in_html(server: Server, iris: Iris) -> None:
    """A title holding <script> shows as text; the JSON-LD island cannot be closed early."""
    entry = _entry(server, "<script>")
    reply = get(_local(server, entry), {"Accept": BROWSER})
    html = reply.body.decode()
    page = Page(html)
    assert [kind for kind, _ in page.scripts] == ["application/ld+json"]
    assert html.count("<script") == 1 and html.count("</script>") == 1
    assert "<!--" not in html
    assert SCRIPT_TITLE in " ".join(page.text)  # shown as text, exactly
    assert "&lt;script&gt;alert(" in html
    assert "<b>Bold</b>" not in html and "&lt;b&gt;Bold&lt;/b&gt;" in html
    assert "<i>x</i>" not in html and "<i>Hostile</i>" not in html
    embedded = json.loads(page.scripts[0][1])
    node = next(n for n in embedded["@graph"] if n["id"] == entry)
    assert node["title"] == SCRIPT_TITLE
    assert "</script><script>alert(1)</script>" in node["description"]
    for url in (server.base + "lib/", _local(server, iris.concept("<b>Bold</b> Category"))):
        other = get(url, {"Accept": BROWSER}).body.decode()
        assert other.count("<script") == 1 and "<b>Bold</b>" not in other


def test_long_lists_are_paged(server: Server, iris: Iris) -> None:
    """Safeguarding holds 5 entries: 3 pages of 2, newest first, Link first/prev/next/last,
    in the URL style the client used."""
    concept = iris.concept("Safeguarding")
    seen: list[str] = []
    url = _local(server, concept)
    pages = 0
    while url:
        reply = get(url, {"Accept": "text/turtle"})
        assert reply.status == 200, url
        pages += 1
        graph = parse(reply, concept)
        members = sorted(
            (str(s) for s in graph.subjects(DCTERMS.subject, rdflib.URIRef(concept))),
            reverse=True,
        )
        assert len(members) == (2 if pages < 3 else 1)
        seen += members
        assert reply.link("first") == concept
        assert reply.link("last") == concept + "?page=3"
        assert reply.link("canonical") == (concept if pages == 1 else f"{concept}?page={pages}")
        assert (reply.link("prev") != "") == (pages > 1)
        nxt = reply.link("next")
        url = _local(server, nxt) if nxt else ""
    assert pages == 3 and len(seen) == len(set(seen)) == 5
    assert seen == sorted(seen, reverse=True)  # newest first across pages
    by_suffix = get(_local(server, concept) + ".ttl?page=2")
    assert by_suffix.link("next") == concept + ".ttl?page=3"
    assert by_suffix.link("prev") == concept + ".ttl"
    by_param = get(_local(server, concept) + "?format=nt&page=2")
    assert by_param.media_type == "application/n-triples"
    assert by_param.link("next") == concept + "?format=nt&page=3"
    html = Page(get(_local(server, concept) + "?page=2", {"Accept": BROWSER}).body.decode())
    assert {"/lib/category/safeguarding", "/lib/category/safeguarding?page=3"} <= set(html.anchors)
    assert get(_local(server, concept) + "?page=4").status == 404


def test_library_is_paged_too(server: Server, iris: Iris) -> None:
    first = get(_local(server, iris.library))
    graph = parse(first, iris.library)
    assert len(list(graph.objects(rdflib.URIRef(iris.library), DCTERMS.hasPart))) == 2
    assert first.link("last") == iris.library + "?page=3"


def test_licence_and_publisher_from_settings(server: Server, iris: Iris) -> None:
    void = parse(get(_local(server, iris.void)), iris.void)
    ds = rdflib.URIRef(iris.dataset)
    assert void.value(ds, DCTERMS.license) == rdflib.URIRef(LICENSE)
    publisher = void.value(ds, DCTERMS.publisher)
    assert str(void.value(publisher, FOAF.name)) == PUBLISHER
    assert str(void.value(ds, VOID.uriSpace)) == BASE
    html = get(_local(server, iris.dataset), {"Accept": BROWSER}).body.decode()
    assert LICENSE in html and "Hostile &lt;Publisher&gt; &amp; &#34;Co&#34;" in html
    assert re.search(r"<title>[^<]*&lt;i&gt;Hostile", html)


def test_non_ascii_base_iri(tmp_path: Path) -> None:
    """A base IRI with a non-ASCII path: requests arrive percent-encoded, headers carry the
    IRIs as URIs (RFC 3987 §3.1), the RDF keeps the IRIs."""
    base = "https://data.example.org/bibliothèque/"
    out = tmp_path / "publication"
    build([FIXTURES / "serve" / "reload-a.txt"], out, BuildOptions(base=base))
    with Server(out, free_port(), workers=1) as running:
        reply = get(running.base + "biblioth%C3%A8que/categories")
        assert reply.status == 200
        assert reply.link("canonical") == "https://data.example.org/biblioth%C3%A8que/categories"
        graph = parse(reply, base + "categories")
        assert (rdflib.URIRef(base + "categories"), None, None) in graph
        html = Page(get(running.base + "biblioth%C3%A8que/", {"Accept": BROWSER}).body.decode())
        assert "/bibliothèque/categories" in html.anchors
