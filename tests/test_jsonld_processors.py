"""Every JSON-LD document kgpub serves reads into one graph in a JSON-LD 1.0 processor and in a
JSON-LD 1.1 processor (pyld in each processing mode, JSON-LD 1.1 API §9.2 processingMode), and
that graph is the one the Turtle of the same URL states.

The published @context is JSON-LD 1.0 (JSON-LD 1.0 §8.7, context definitions): it declares no
@version, since a 1.0 processor (jsonld-java, `riot --syntax=jsonld10`) refuses a document whose
context says "@version": 1.1 (JSON-LD 1.1 API §4.1.2 step 5.5.2, processing mode conflict).
Remote contexts are fetched from the live loopback server, or from pyld's bundled copies of W3C
contexts (the change feed's ActivityStreams context); any other URL is refused, so no test
reaches the internet.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import rdflib
from fetch import Page, Reply, get, parse
from live import Server
from pyld import jsonld as pyld
from pyld.documentloader.frozen import FrozenDocumentLoader
from rdfdiff import assert_isomorphic

from graph.formats import GZIP_MEDIA_TYPE, HTML_MEDIA_TYPE, JSONLD, TURTLE

MODES = ("json-ld-1.0", "json-ld-1.1")
CONSTRUCT = "CONSTRUCT WHERE { ?s ?p ?o }"
AS_ORDERED_COLLECTION = rdflib.URIRef("https://www.w3.org/ns/activitystreams#OrderedCollection")

# JSON-LD 1.0 §8.7: the keys of an expanded term definition, and the values of @container.
TERM_KEYS_1_0 = {"@id", "@reverse", "@type", "@language", "@container"}
CONTAINERS_1_0 = {"@list", "@set", "@index", "@language"}
# JSON-LD 1.0 §8.7: the only keywords a context definition may hold as keys.
CONTEXT_KEYWORDS_1_0 = {"@base", "@vocab", "@language"}


@dataclass(frozen=True)
class Served:
    """One JSON-LD document kgpub serves, and the Turtle that states the same graph.

    path    the document's URL below the server's base ("{entry}": the seed's example entry)
    accept  the Accept header that asks for it
    turtle  the URL of its Turtle twin below the base ("": the same URL)
    html    the JSON-LD is the <script type="application/ld+json"> of an HTML page
    """

    path: str
    accept: str = JSONLD.media_type
    turtle: str = ""
    html: bool = False


SERVED: dict[str, Served] = {
    "entry": Served("{entry}"),
    "entry-html-script": Served("{entry}", HTML_MEDIA_TYPE, html=True),
    "category": Served("category/safeguarding"),
    "scheme": Served("categories"),
    "library": Served("library"),
    "dataset": Served("dataset"),
    "void": Served(".well-known/void"),
    "collection-entries": Served("collections/entries"),
    "collection-entries-last": Served("collections/entries?page=last"),
    "collection-category": Served("collections/category/safeguarding"),
    "dump": Served("dumps/library.jsonld", turtle="dumps/library.ttl"),
    "dump-gz": Served("dumps/library.jsonld.gz", turtle="dumps/library.ttl"),
    "sparql-construct": Served("sparql?query=" + quote(CONSTRUCT)),
}
# The change feed is ActivityStreams 2.0 JSON-LD (its context is the W3C one, not kgpub's) and
# has no Turtle: both processing modes must still read one graph from it.
FEED: dict[str, str] = {"changes": "changes", "changes-page": "changes?after=0"}


@pytest.fixture(scope="module")
def entry(live: Server, seed_out: Path) -> str:
    """The seed's example entry (from the manifest), below the base."""
    manifest = json.loads((seed_out / "current" / "manifest.json").read_text())
    example = str(manifest["example"])
    assert example.startswith(live.base), example
    return example[len(live.base) :]


def _loader(live: Server) -> Any:
    """pyld's document loader: the live server's URLs over HTTP, pyld's bundled W3C contexts,
    and nothing else (FrozenDocumentLoader refuses any other URL)."""
    bundled = FrozenDocumentLoader()

    def load(url: str, options: dict[str, Any] | None = None) -> dict[str, Any]:
        if not url.startswith(live.base):
            return dict(bundled(url, options or {}))
        reply = get(url, {"Accept": JSONLD.media_type})
        assert reply.status == 200 and reply.media_type == JSONLD.media_type, url
        return {
            "contentType": JSONLD.media_type,
            "contextUrl": None,
            "documentUrl": url,
            "document": json.loads(reply.body),
        }

    return load


def _document(reply: Reply, html: bool = False) -> Any:
    """The JSON-LD a reply carries: its body (gunzipped for a .gz) or the page's one script."""
    assert reply.status == 200, reply.body[:300]
    if html:
        scripts = [t for kind, t in Page(reply.body.decode()).scripts if kind == JSONLD.media_type]
        assert len(scripts) == 1
        return json.loads(scripts[0])
    if reply.media_type == GZIP_MEDIA_TYPE:
        return json.loads(gzip.decompress(reply.body))
    assert reply.media_type == JSONLD.media_type
    return json.loads(reply.body)


def _to_rdf(doc: Any, url: str, mode: str, live: Server) -> rdflib.Graph:
    """The document expanded and turned into RDF by pyld in one processing mode."""
    options = {"processingMode": mode, "documentLoader": _loader(live), "base": url}
    expanded = pyld.expand(doc, options)
    nquads = pyld.to_rdf(expanded, {**options, "format": "application/n-quads"})
    return rdflib.Graph().parse(data=nquads, format="nt")


def _not_1_0(context: dict[str, Any]) -> list[str]:
    """The keys of a context definition that JSON-LD 1.0 does not allow (§8.7)."""
    wrong = []
    for term, definition in context.items():
        if term.startswith("@"):
            ok = term in CONTEXT_KEYWORDS_1_0
        elif isinstance(definition, dict):
            container = definition.get("@container", "@set")
            ok = (
                set(definition) <= TERM_KEYS_1_0
                and isinstance(container, str)
                and container in CONTAINERS_1_0
                and definition.get("@type") not in ("@json", "@none")
            )
        else:
            ok = definition is None or isinstance(definition, str)
        if not ok:
            wrong.append(term)
    return wrong


# JSON-LD 1.1 features (JSON-LD 1.1 §9.15), each of which the 1.0 check must catch.
FEATURES_1_1: dict[str, dict[str, Any]] = {
    "version": {"@version": 1.1},
    "protected": {"@protected": True},
    "propagate": {"@propagate": False},
    "import": {"@import": "http://example.org/context.jsonld"},
    "direction": {"@direction": "ltr"},
    "scoped-context": {"t": {"@id": "http://example.org/t", "@context": {}}},
    "nest": {"t": {"@id": "http://example.org/t", "@nest": "@nest"}},
    "prefix-flag": {"t": {"@id": "http://example.org/", "@prefix": True}},
    "json-literal": {"t": {"@id": "http://example.org/t", "@type": "@json"}},
    "container-array": {"t": {"@id": "http://example.org/t", "@container": ["@set"]}},
    "container-graph": {"t": {"@id": "http://example.org/t", "@container": "@graph"}},
    "container-id": {"t": {"@id": "http://example.org/t", "@container": "@id"}},
    "container-type": {"t": {"@id": "http://example.org/t", "@container": "@type"}},
}


@pytest.mark.parametrize("context", FEATURES_1_1.values(), ids=FEATURES_1_1.keys())
def test_the_1_0_check_catches_a_1_1_feature(context: dict[str, Any]) -> None:
    assert _not_1_0(context) == list(context)


def test_published_context_is_json_ld_1_0(live: Server) -> None:
    """/context.jsonld holds only what a JSON-LD 1.0 context may hold (§8.7): no @version and
    no 1.1 keyword, container or type."""
    reply = get(live.base + "context.jsonld", {"Accept": JSONLD.media_type})
    assert reply.status == 200 and reply.media_type == JSONLD.media_type
    context = json.loads(reply.body)["@context"]
    assert len(context) > 0
    assert _not_1_0(context) == []


def test_a_1_0_processor_refuses_a_1_1_context() -> None:
    """The 1.0 mode the tests below rely on is strict: "@version": 1.1 is a processing mode
    conflict (JSON-LD 1.1 API §4.1.2 step 5.5.2), as jsonld-java's `invalid term definition`."""
    doc = {"@context": {"@version": 1.1, "title": "http://purl.org/dc/terms/title"}, "title": "x"}
    with pytest.raises(pyld.JsonLdError) as refused:
        pyld.expand(doc, {"processingMode": "json-ld-1.0"})
    assert refused.value.code == "processing mode conflict"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("served", SERVED.values(), ids=SERVED.keys())
def test_each_processing_mode_reads_the_turtle_graph(
    live: Server, entry: str, served: Served, mode: str
) -> None:
    """pyld in this mode reads from the JSON-LD exactly the graph of the Turtle twin."""
    url = live.base + served.path.format(entry=entry)
    doc = _document(get(url, {"Accept": served.accept}), served.html)
    got = _to_rdf(doc, url, mode, live)
    turtle_url = live.base + served.turtle if served.turtle else url
    turtle = get(turtle_url, {"Accept": TURTLE.media_type})
    assert turtle.status == 200, turtle.body[:300]
    expected = parse(turtle, turtle_url)
    assert len(expected) > 0
    assert_isomorphic(got, expected)


@pytest.mark.parametrize("path", FEED.values(), ids=FEED.keys())
def test_both_processing_modes_read_one_feed_graph(live: Server, path: str) -> None:
    """The change feed (ActivityStreams JSON-LD, no Turtle): 1.0 and 1.1 read the same graph."""
    url = live.base + path
    doc = _document(get(url, {"Accept": JSONLD.media_type}))
    old, new = (_to_rdf(doc, url, mode, live) for mode in MODES)
    assert len(new) > 0
    assert_isomorphic(old, new)
    if path == "changes":
        assert (rdflib.URIRef(url), rdflib.RDF.type, AS_ORDERED_COLLECTION) in new
