"""The case table of `kgpub check`: what a live deployment must do, as its users meet it.

Each Case has a name (the word the report and the tests use), what it checks, and a function
of the Deployment that returns normally or raises CheckError with one line saying what is
wrong and where. The Deployment finds what it checks from the deployment itself (VoID:
the dataset, its SPARQL endpoint, an example entry, the dumps), as a client would.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from functools import cached_property
from urllib.parse import quote, urlencode, urljoin, urlsplit

import pyoxigraph
import rdflib
from rdflib.namespace import RDF, VOID

from graph.formats import (
    GZIP_MEDIA_TYPE,
    HTML_MEDIA_TYPE,
    JSONLD,
    RDF_FORMATS,
    SPARQL_QUERY,
    SPARQL_RESULTS_JSON,
    SPARQL_UPDATE,
    TURTLE,
    RdfFormat,
)
from graph.namespaces import DCAT, SD, SPDX
from server.check import w3c
from server.check.client import CheckError, Reply, download, fetch
from server.check.trap import Trap

FORM = "application/x-www-form-urlencoded"
BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
AS_MEDIA_TYPE = "application/activity+json"
SITEMAP_NS = "{http://www.sitemaps.org/schemas/sitemap/0.9}"
OAI_NS = "{http://www.openarchives.org/OAI/2.0/}"
SITEMAP_SAMPLE = 12  # pages of the sitemap fetched as a browser would
# W3C Datetime (the sitemap protocol's lastmod): a date, or a time with a zone.
W3C_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2}))?$")
REFERRER_POLICIES = {
    "no-referrer",
    "no-referrer-when-downgrade",
    "same-origin",
    "origin",
    "strict-origin",
    "origin-when-cross-origin",
    "strict-origin-when-cross-origin",
    "unsafe-url",
}


@dataclass(frozen=True)
class Case:
    """One check: its name, what it holds the deployment to, and how."""

    name: str
    what: str
    run: Callable[[Deployment], None]


class Deployment:
    """A live deployment at a base URL, and what the checks learn of it on the way."""

    def __init__(self, base: str, trap: Trap) -> None:
        self.base = base if base.endswith("/") else base + "/"
        self.trap = trap

    def url(self, path: str) -> str:
        return urljoin(self.base, path)

    @cached_property
    def void(self) -> rdflib.Graph:
        """The VoID description at /.well-known/void (RFC 5785 and VoID §6.2), in Turtle."""
        reply = expect(fetch(self.url(".well-known/void"), headers={"Accept": TURTLE.media_type}))
        if reply.media_type != TURTLE.media_type:
            raise CheckError(f"{reply.url}: Content-Type {reply.media_type!r}, asked for Turtle")
        try:
            return rdflib.Graph().parse(data=reply.body, format="turtle", publicID=reply.url)
        except Exception as exc:  # rdflib raises many kinds: any is a broken description
            raise CheckError(f"{reply.url}: the VoID description does not parse: {exc}") from exc

    @cached_property
    def dataset(self) -> rdflib.URIRef:
        found = [
            s for s in self.void.subjects(RDF.type, VOID.Dataset) if isinstance(s, rdflib.URIRef)
        ]
        if not found:
            raise CheckError(f"{self.url('.well-known/void')}: no void:Dataset")
        return found[0]

    @cached_property
    def endpoint(self) -> str:
        """The SPARQL endpoint VoID names (void:sparqlEndpoint)."""
        value = self.void.value(self.dataset, VOID.sparqlEndpoint)
        if value is None:
            raise CheckError(f"{self.url('.well-known/void')}: no void:sparqlEndpoint")
        return str(value)

    @cached_property
    def library(self) -> str:
        value = self.void.value(self.dataset, VOID.rootResource)
        return str(value) if value is not None else self.url("library")

    @cached_property
    def entry(self) -> str:
        """An entry: an example resource of VoID under entry/, else the first SPARQL finds."""
        for example in sorted(map(str, self.void.objects(self.dataset, VOID.exampleResource))):
            if "/entry/" in example:
                return example
        reply = self.query("SELECT ?e WHERE { ?e a <http://purl.org/dc/dcmitype/Text> } LIMIT 1")
        rows = json.loads(reply.body).get("results", {}).get("bindings", [])
        if not rows:
            raise CheckError("no entry found (VoID names none, SPARQL finds no dcmitype:Text)")
        return str(rows[0]["e"]["value"])

    def query(self, text: str) -> Reply:
        """A SELECT by GET, answered in SPARQL JSON."""
        url = self.endpoint + "?" + urlencode({"query": text})
        return expect(fetch(url, headers={"Accept": SPARQL_RESULTS_JSON}))

    def context_of(self, url: str) -> object:
        """A remote JSON-LD @context, fetched from the deployment as a processor would."""
        if not url.startswith(self.base):
            raise CheckError(f"the JSON-LD @context {url} is not the deployment's")
        reply = expect(fetch(url, headers={"Accept": JSONLD.media_type}))
        try:
            return json.loads(reply.body)["@context"]
        except (ValueError, KeyError, TypeError) as exc:
            raise CheckError(f"{url}: not a JSON-LD context document") from exc


def expect(reply: Reply, status: int = 200) -> Reply:
    if reply.status != status:
        raise CheckError(f"{reply.url}: status {reply.status}, expected {status}")
    return reply


def triples(deployment: Deployment, reply: Reply, fmt: RdfFormat) -> set[str]:
    """The reply's triples (N-Triples lines), parsed as the format; a JSON-LD body's remote
    context is fetched from the deployment."""
    data = reply.body
    if fmt is JSONLD:
        try:
            doc = json.loads(data)
        except ValueError as exc:
            raise CheckError(f"{reply.url}: the JSON-LD is not JSON: {exc}") from exc
        if isinstance(doc, dict) and isinstance(doc.get("@context"), str):
            doc["@context"] = deployment.context_of(doc["@context"])
        data = json.dumps(doc).encode()
    try:
        parsed = pyoxigraph.parse(data, format=fmt.oxigraph, base_iri=reply.url)
        return {f"{q.subject} {q.predicate} {q.object} ." for q in parsed}
    except (SyntaxError, ValueError) as exc:
        raise CheckError(f"{reply.url}: the {fmt.label} does not parse: {exc}") from exc


def _type(media_type: str) -> RdfFormat | None:
    return next((f for f in RDF_FORMATS if f.media_type == media_type), None)


# --- content negotiation (RFC 9110 §12.5.1, README "Representations") ---------------------------


def check_default(d: Deployment) -> None:
    """No Accept, an empty one and */* get Turtle."""
    for headers in ({}, {"Accept": ""}, {"Accept": "*/*"}):
        reply = expect(fetch(d.library, headers=headers))
        if reply.media_type != TURTLE.media_type:
            said = f"Accept {headers['Accept']!r}" if headers else "no Accept"
            raise CheckError(f"{d.library} with {said}: {reply.media_type!r}, expected Turtle")
        triples(d, reply, TURTLE)


def check_types(d: Deployment) -> None:
    """Each media type by Accept: that type, parsed; every RDF one the same triples."""
    for iri in (d.library, d.entry):
        graphs: dict[str, set[str]] = {}
        for media_type in (*(f.media_type for f in RDF_FORMATS), HTML_MEDIA_TYPE):
            reply = expect(fetch(iri, headers={"Accept": media_type}))
            if reply.media_type != media_type:
                raise CheckError(f"{iri} Accept {media_type}: got {reply.media_type!r}")
            fmt = _type(media_type)
            if fmt is None:
                if b"<html" not in reply.body[:2000].lower():
                    raise CheckError(f"{iri} as HTML: no <html> element")
                continue
            graphs[fmt.label] = triples(d, reply, fmt)
            if not graphs[fmt.label]:
                raise CheckError(f"{iri} as {fmt.label}: no triples")
        first, *others = graphs.items()
        for label, found in others:
            if found != first[1]:
                missing = len(first[1] - found) + len(found - first[1])
                raise CheckError(f"{iri}: {label} and {first[0]} differ by {missing} triples")


# (Accept, the media type it must get): RFC 9110 §12.5.1 q-values and specificity.
Q_VALUES = (
    ("application/ld+json;q=0.5, text/turtle;q=0.9", TURTLE.media_type),
    ("text/turtle;q=0.5, application/ld+json", JSONLD.media_type),
    ("text/*;q=0.1, text/turtle;q=0", HTML_MEDIA_TYPE),
    ("application/rdf+xml, */*;q=0.1", "application/rdf+xml"),
    ("application/n-triples;q=1.0, text/turtle;q=0.999", "application/n-triples"),
    ("*/*;q=0.5, text/html", HTML_MEDIA_TYPE),
    (BROWSER, HTML_MEDIA_TYPE),
)


def check_q_values(d: Deployment) -> None:
    for accept, wanted in Q_VALUES:
        reply = expect(fetch(d.entry, headers={"Accept": accept}))
        if reply.media_type != wanted:
            raise CheckError(f"Accept {accept!r}: got {reply.media_type!r}, expected {wanted!r}")


def check_not_acceptable(d: Deployment) -> None:
    """Nothing acceptable: 406 naming what there is; q=0 means never."""
    for accept in ("image/png", "text/turtle;q=0, application/ld+json;q=0, */*;q=0"):
        reply = fetch(d.entry, headers={"Accept": accept})
        if reply.status != 406:
            raise CheckError(f"{d.entry} Accept {accept!r}: status {reply.status}, expected 406")
        if TURTLE.media_type not in reply.text():
            raise CheckError(f"{d.entry} 406: the answer does not list the available types")


def check_vary(d: Deployment) -> None:
    """A negotiated answer (and its 406) says it varies with Accept (RFC 9110 §12.5.5)."""
    for iri in (d.library, d.entry, d.url("categories")):
        for headers in ({}, {"Accept": JSONLD.media_type}, {"Accept": BROWSER}):
            reply = expect(fetch(iri, headers=headers))
            if "accept" not in reply.tokens("Vary") and "*" not in reply.tokens("Vary"):
                raise CheckError(
                    f"{iri} ({headers or 'no Accept'}): Vary {reply.header('Vary')!r} lacks Accept"
                )
    reply = fetch(d.entry, headers={"Accept": "image/png"})
    if "accept" not in reply.tokens("Vary"):
        raise CheckError(f"{d.entry} 406: Vary {reply.header('Vary')!r} lacks Accept")


def check_links(d: Deployment) -> None:
    """Link (RFC 8288): an alternate with its type for each representation, each of which
    answers in that type; canonical the IRI; describedby the VoID description."""
    for iri in (d.library, d.entry):
        reply = expect(fetch(iri))
        links = reply.links()
        if not links:
            raise CheckError(f"{iri}: no Link header")
        alternates = {k.params.get("type", ""): k.target for k in links if "alternate" in k.rels}
        for media_type in (*(f.media_type for f in RDF_FORMATS), HTML_MEDIA_TYPE):
            target = alternates.get(media_type)
            if target is None:
                raise CheckError(f"{iri}: no Link rel=alternate with type {media_type!r}")
            got = expect(fetch(target, method="HEAD"))
            if got.media_type != media_type:
                raise CheckError(
                    f"{iri}: alternate {target} is {got.media_type!r}, not {media_type!r}"
                )
        canonical = [k.target for k in links if "canonical" in k.rels]
        if canonical != [iri]:
            raise CheckError(f"{iri}: Link rel=canonical is {canonical}, expected [{iri}]")
        if not any("describedby" in k.rels for k in links):
            raise CheckError(f"{iri}: no Link rel=describedby")


def check_suffixes(d: Deployment) -> None:
    """A suffix URL names its representation whatever Accept says; an unknown one is 404."""
    for fmt_suffix, media_type in (
        *((f.suffix, f.media_type) for f in RDF_FORMATS),
        (".html", HTML_MEDIA_TYPE),
    ):
        url = d.entry + fmt_suffix
        reply = expect(fetch(url, headers={"Accept": "image/png, text/plain;q=0.1"}))
        if reply.media_type != media_type:
            raise CheckError(f"{url}: {reply.media_type!r}, expected {media_type!r}")
    reply = fetch(d.entry + ".docx")
    if reply.status != 404:
        raise CheckError(f"{d.entry}.docx: status {reply.status}, expected 404")
    negotiated = expect(fetch(d.entry, headers={"Accept": JSONLD.media_type}))
    location = urljoin(d.entry, negotiated.header("Content-Location"))
    if location != d.entry + JSONLD.suffix:
        raise CheckError(f"{d.entry} as JSON-LD: Content-Location {location!r}")


# --- conditional requests (RFC 9110 §13) -------------------------------------------------------


def _conditional_urls(d: Deployment) -> list[tuple[str, dict[str, str]]]:
    dumps = sorted(str(u) for u in d.void.objects(d.dataset, VOID.dataDump))
    return [
        (d.entry, {"Accept": TURTLE.media_type}),
        (d.entry, {"Accept": BROWSER}),
        (d.url("sitemap.xml"), {}),
        *([(dumps[0], {})] if dumps else []),
    ]


def check_etag(d: Deployment) -> None:
    """If-None-Match with the ETag (strong, weak or *) gives 304; another tag 200."""
    for url, headers in _conditional_urls(d):
        reply = expect(fetch(url, headers=headers))
        etag = reply.header("ETag")
        if not re.fullmatch(r'(W/)?"[\x21\x23-\x7e\x80-\xff]*"', etag):
            raise CheckError(f"{url}: ETag {etag!r} is not an entity-tag")
        weak = etag if etag.startswith("W/") else "W/" + etag
        for tag in (etag, weak, f'"other", {etag}', "*"):
            again = fetch(url, headers={**headers, "If-None-Match": tag})
            if again.status != 304:
                raise CheckError(f"{url} If-None-Match {tag}: status {again.status}, expected 304")
            if again.body or again.header("ETag") != etag:
                raise CheckError(f"{url}: the 304 has a body or another ETag")
        other = fetch(url, headers={**headers, "If-None-Match": '"not-the-tag"'})
        if other.status != 200:
            raise CheckError(f"{url} If-None-Match another tag: status {other.status}")


def check_last_modified(d: Deployment) -> None:
    """Last-Modified no later than Date; If-Modified-Since it (and, without If-None-Match,
    only then) gives 304; an earlier time 200 (RFC 9110 §13.1.3, §13.2.2)."""
    for url, headers in _conditional_urls(d):
        reply = expect(fetch(url, headers=headers))
        modified, date = reply.date("Last-Modified"), reply.date("Date")
        if modified is None:
            raise CheckError(f"{url}: no valid Last-Modified ({reply.header('Last-Modified')!r})")
        if date is not None and modified > date:
            raise CheckError(f"{url}: Last-Modified {modified} is after Date {date}")
        since = reply.header("Last-Modified")
        again = fetch(url, headers={**headers, "If-Modified-Since": since})
        if again.status != 304:
            raise CheckError(
                f"{url} If-Modified-Since {since}: status {again.status}, expected 304"
            )
        earlier = (modified - timedelta(days=1)).strftime("%a, %d %b %Y %H:%M:%S GMT")
        older = fetch(url, headers={**headers, "If-Modified-Since": earlier})
        if older.status != 200:
            raise CheckError(
                f"{url} If-Modified-Since {earlier}: status {older.status}, expected 200"
            )
        both = fetch(url, headers={**headers, "If-Modified-Since": since, "If-None-Match": '"x"'})
        if both.status != 200:
            raise CheckError(f"{url}: If-None-Match that fails must win over If-Modified-Since")


# --- CORS (Fetch standard §3.2) -----------------------------------------------------------------


def check_cors(d: Deployment) -> None:
    """A preflight of a SPARQL POST is allowed; answers carry Allow-Origin and expose Link."""
    origin = "https://client.example"
    reply = fetch(
        d.endpoint,
        "OPTIONS",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    if reply.status // 100 != 2:
        raise CheckError(f"OPTIONS {d.endpoint} (preflight): status {reply.status}")
    allow_origin = reply.header("Access-Control-Allow-Origin")
    if allow_origin not in ("*", origin):
        raise CheckError(f"preflight: Access-Control-Allow-Origin {allow_origin!r}")
    if "post" not in reply.tokens("Access-Control-Allow-Methods"):
        raise CheckError(
            "preflight: Access-Control-Allow-Methods "
            f"{reply.header('Access-Control-Allow-Methods')!r} lacks POST"
        )
    headers = reply.tokens("Access-Control-Allow-Headers")
    if "content-type" not in headers and "*" not in headers:
        raise CheckError(
            f"preflight: Access-Control-Allow-Headers {sorted(headers)} lacks content-type"
        )
    for url in (d.entry, d.endpoint + "?" + urlencode({"query": "ASK {}"})):
        got = expect(fetch(url, headers={"Origin": origin}))
        if got.header("Access-Control-Allow-Origin") not in ("*", origin):
            raise CheckError(f"{url}: no Access-Control-Allow-Origin")
    exposed = expect(fetch(d.entry, headers={"Origin": origin})).tokens(
        "Access-Control-Expose-Headers"
    )
    if not {"link", "etag"} <= exposed:
        raise CheckError(
            f"{d.entry}: Access-Control-Expose-Headers {sorted(exposed)} lacks Link or ETag"
        )


# --- the SPARQL endpoint ------------------------------------------------------------------------


def _w3c_case(test: w3c.ProtocolTest) -> Case:
    def run(d: Deployment) -> None:
        w3c.replay(d.endpoint, test)

    return Case(f"w3c-{test.name.replace('_', '-')}", f"W3C protocol test: {test.title}", run)


# The SD vocabulary (SPARQL 1.1 Service Description §3.2-3.4): property -> (class of the
# subject, class of the object or None for a literal or any IRI).
SD_SCHEMA = {
    SD.endpoint: (SD.Service, None),
    SD.supportedLanguage: (SD.Service, SD.Language),
    SD.resultFormat: (SD.Service, None),
    SD.defaultEntailmentRegime: (SD.Service, None),
    SD.defaultDataset: (SD.Service, SD.Dataset),
    SD.defaultGraph: (SD.Dataset, SD.Graph),
    SD.namedGraph: (SD.Dataset, SD.NamedGraph),
    SD.name: (SD.NamedGraph, None),
    SD.graph: (SD.NamedGraph, SD.Graph),
    SD.feature: (SD.Service, SD.Feature),
}
SD_INSTANCES = {SD.SPARQL10Query: SD.Language, SD.SPARQL11Query: SD.Language,
                SD.SPARQL11Update: SD.Language}  # fmt: skip


def check_service_description(d: Deployment) -> None:
    """The W3C Service Description tests: returns-rdf, has-endpoint-triple,
    conforms-to-schema (the suite's words), on GET of the endpoint for RDF."""
    reply = expect(fetch(d.endpoint, headers={"Accept": "text/turtle, application/rdf+xml;q=0.9"}))
    fmt = _type(reply.media_type)
    if fmt is None:
        raise CheckError(f"{d.endpoint}: the service description is {reply.media_type!r}")
    g = rdflib.Graph().parse(data="\n".join(triples(d, reply, fmt)), format="nt")
    for name in w3c.service_description_tests():
        if name == "returns-rdf" and len(g) < 3:
            raise CheckError(f"{d.endpoint}: returns-rdf: {len(g)} triples")
        if name == "has-endpoint-triple" and not list(
            g.subjects(SD.endpoint, rdflib.URIRef(d.endpoint))
        ):
            raise CheckError(f"{d.endpoint}: has-endpoint-triple: no sd:endpoint <{d.endpoint}>")
        if name == "conforms-to-schema":
            for s, p, o in g:
                if isinstance(p, rdflib.URIRef) and p in SD_SCHEMA:
                    domain, range_ = SD_SCHEMA[p]
                    if (s, RDF.type, domain) not in g:
                        raise CheckError(f"conforms-to-schema: {s} has {p} but is no {domain}")
                    if (
                        range_ is not None
                        and (o, RDF.type, range_) not in g
                        and SD_INSTANCES.get(rdflib.URIRef(str(o))) != range_
                    ):
                        raise CheckError(f"conforms-to-schema: {o} ({p}) is no {range_}")
                elif str(p).startswith(str(SD)):
                    raise CheckError(f"conforms-to-schema: unknown SD property {p}")
    if SD.SPARQL11Query not in set(g.objects(None, SD.supportedLanguage)):
        raise CheckError(f"{d.endpoint}: no sd:supportedLanguage sd:SPARQL11Query")


def _attempts(target: str) -> list[tuple[str, str, str, bytes | None, dict[str, str]]]:
    """Every way a request may name a URL for the deployment to fetch:
    (name, method, query string, body, headers)."""
    q = "SELECT * WHERE { ?s ?p ?o }"

    def get(*params: tuple[str, str]) -> str:
        return urlencode(params)

    service = f"SELECT * {{ SERVICE <{target}> {{ ?s ?p ?o }} }}"
    silent = f"SELECT * {{ SERVICE SILENT <{target}> {{ ?s ?p ?o }} }}"
    exists = f"ASK {{ FILTER EXISTS {{ SERVICE <{target}> {{}} }} }}"
    variable = f"SELECT * {{ VALUES ?u {{ <{target}> }} SERVICE ?u {{ ?s ?p ?o }} }}"
    named = f"SELECT * FROM NAMED <{target}> WHERE {{ GRAPH ?g {{ ?s ?p ?o }} }}"
    graphs = "SELECT * { GRAPH ?g { ?s ?p ?o } }"
    load = f"LOAD <{target}>".encode()
    return [
        ("SERVICE", "GET", get(("query", service)), None, {}),
        ("SERVICE SILENT", "GET", get(("query", silent)), None, {}),
        ("SERVICE in EXISTS", "GET", get(("query", exists)), None, {}),
        ("SERVICE by variable", "GET", get(("query", variable)), None, {}),
        ("FROM", "GET", get(("query", f"SELECT * FROM <{target}> WHERE {{ ?s ?p ?o }}")), None, {}),
        ("FROM NAMED", "GET", get(("query", named)), None, {}),
        ("default-graph-uri", "GET", get(("query", q), ("default-graph-uri", target)), None, {}),
        ("named-graph-uri", "GET", get(("query", graphs), ("named-graph-uri", target)), None, {}),
        ("DESCRIBE", "GET", get(("query", f"DESCRIBE <{target}>")), None, {}),
        ("LOAD as update=", "POST", "", b"update=" + quote(load).encode(), {"Content-Type": FORM}),
        ("LOAD as sparql-update", "POST", "", load, {"Content-Type": SPARQL_UPDATE}),
        ("LOAD as a query", "POST", "", load, {"Content-Type": SPARQL_QUERY}),
    ]  # fmt: skip


def check_no_remote_fetch(d: Deployment) -> None:
    """SERVICE, LOAD, FROM, FROM NAMED, the dataset parameters and DESCRIBE naming the trap:
    each refused (4xx) or answered from local data, and nothing connects to the trap."""
    before = d.trap.settle()
    target = d.trap.url + "graph"
    for name, method, query, body, headers in _attempts(target):
        url = d.endpoint + ("?" + query if query else "")
        reply = fetch(url, method, {"Accept": SPARQL_RESULTS_JSON, **headers}, body)
        if reply.status // 100 not in (2, 4):
            raise CheckError(f"{name}: status {reply.status}, expected 200 with nothing or 4xx")
        if reply.status == 200 and b"trap.invalid" in reply.body:
            raise CheckError(f"{name}: the answer holds what the trap served")
    made = d.trap.settle() - before
    if made:
        raise CheckError(
            f"the deployment connected to the trap {d.trap.url} {made} time(s): "
            f"{d.trap.requests[:3]}"
        )


# --- the dataset's description and its dumps ----------------------------------------------------


def check_void(d: Deployment) -> None:
    """VoID: a dataset with its endpoint, dumps and a triple count equal to what the
    endpoint's default graph holds."""
    g = d.void
    stated = g.value(d.dataset, VOID.triples)
    if stated is None:
        raise CheckError(f"{d.dataset}: no void:triples")
    rows = json.loads(d.query("SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }").body)
    counted = int(rows["results"]["bindings"][0]["n"]["value"])
    if int(str(stated)) != counted:
        raise CheckError(f"void:triples {stated} but the endpoint's default graph holds {counted}")
    if not list(g.objects(d.dataset, VOID.dataDump)):
        raise CheckError(f"{d.dataset}: no void:dataDump")
    if urlsplit(d.endpoint).netloc == "":
        raise CheckError(f"void:sparqlEndpoint {d.endpoint} is not absolute")


def check_dumps(d: Deployment) -> None:
    """Each DCAT distribution downloads: its media type, byteSize and SHA-256 as stated;
    every VoID dump is one of them."""
    g = d.void
    distributions = list(g.objects(d.dataset, DCAT.distribution))
    if not distributions:
        raise CheckError(f"{d.dataset}: no dcat:distribution")
    urls = set()
    for dist in distributions:
        url = g.value(dist, DCAT.downloadURL)
        if url is None:
            raise CheckError(f"{dist}: no dcat:downloadURL")
        urls.add(str(url))
        got = download(str(url))
        if got.reply.status != 200:
            raise CheckError(f"{url}: status {got.reply.status}")
        media = str(g.value(dist, DCAT.mediaType) or "").rsplit("/media-types/", 1)[-1]
        wanted = GZIP_MEDIA_TYPE if g.value(dist, DCAT.compressFormat) is not None else media
        if got.reply.media_type != wanted:
            raise CheckError(f"{url}: Content-Type {got.reply.media_type!r}, DCAT says {wanted!r}")
        size = g.value(dist, DCAT.byteSize)
        if size is None or int(str(size)) != got.size:
            raise CheckError(f"{url}: {got.size} bytes, dcat:byteSize says {size}")
        length = got.reply.header("Content-Length")
        if length and int(length) != got.size:
            raise CheckError(f"{url}: Content-Length {length}, sent {got.size} bytes")
        checksum = g.value(dist, SPDX.checksum)
        value = g.value(checksum, SPDX.checksumValue) if checksum is not None else None
        if value is None:
            raise CheckError(f"{dist}: no spdx:checksum value")
        if str(value).lower() != got.sha256:
            raise CheckError(f"{url}: SHA-256 {got.sha256}, spdx:checksumValue says {value}")
    dumps = {str(u) for u in g.objects(d.dataset, VOID.dataDump)}
    if dumps - urls:
        raise CheckError(f"void:dataDump without a DCAT distribution: {sorted(dumps - urls)}")


# --- crawlers and harvesters --------------------------------------------------------------------


def _xml(reply: Reply) -> ET.Element:
    try:
        return ET.fromstring(reply.body)
    except ET.ParseError as exc:
        raise CheckError(f"{reply.url}: not well-formed XML: {exc}") from exc


def check_sitemap(d: Deployment) -> None:
    """robots.txt names the sitemap; the sitemap (sitemaps.org 0.9) lists pages under the
    base with W3C Datetime lastmod, and a sample of them answers browsers with HTML."""
    robots = expect(fetch(d.url("robots.txt")))
    named = [
        line.split(":", 1)[1].strip()
        for line in robots.text().splitlines()
        if line.lower().startswith("sitemap:")
    ]
    if not named:
        raise CheckError(f"{robots.url}: no Sitemap: line")
    reply = expect(fetch(named[0]))
    root = _xml(reply)
    if root.tag == SITEMAP_NS + "sitemapindex":
        parts = [loc.text or "" for loc in root.iter(SITEMAP_NS + "loc")]
        if not parts:
            raise CheckError(f"{reply.url}: an empty sitemap index")
        reply = expect(fetch(parts[0]))
        root = _xml(reply)
    if root.tag != SITEMAP_NS + "urlset":
        raise CheckError(f"{reply.url}: root element {root.tag}, expected a sitemaps.org urlset")
    urls = root.findall(SITEMAP_NS + "url")
    if not urls or len(urls) > 50_000:
        raise CheckError(f"{reply.url}: {len(urls)} URLs (1 to 50,000 allowed)")
    locs = []
    for url in urls:
        loc = (url.findtext(SITEMAP_NS + "loc") or "").strip()
        lastmod = (url.findtext(SITEMAP_NS + "lastmod") or "").strip()
        if not loc.startswith(d.base):
            raise CheckError(f"{reply.url}: <loc>{loc}</loc> is not under {d.base}")
        if lastmod and not W3C_DATETIME.match(lastmod):
            raise CheckError(f"{reply.url}: <lastmod>{lastmod}</lastmod> is not a W3C Datetime")
        locs.append(loc)
    step = max(1, len(locs) // SITEMAP_SAMPLE)
    for loc in locs[::step][:SITEMAP_SAMPLE]:
        page = expect(fetch(loc, headers={"Accept": BROWSER}))
        if page.media_type != HTML_MEDIA_TYPE:
            raise CheckError(f"{loc}: {page.media_type!r} for a browser, expected HTML")


def check_feed(d: Deployment) -> None:
    """The change feed (ActivityStreams 2.0): an OrderedCollection whose first page holds
    Create/Update/Delete activities, each with an object."""
    url = d.url("changes")
    reply = expect(fetch(url, headers={"Accept": AS_MEDIA_TYPE}))
    if reply.media_type != AS_MEDIA_TYPE:
        raise CheckError(f"{url}: Content-Type {reply.media_type!r}, asked for {AS_MEDIA_TYPE}")
    try:
        feed = json.loads(reply.body)
    except ValueError as exc:
        raise CheckError(f"{url}: not JSON: {exc}") from exc
    if feed.get("type") != "OrderedCollection" or not isinstance(feed.get("totalItems"), int):
        raise CheckError(f"{url}: not an OrderedCollection with totalItems")
    if "activitystreams" not in json.dumps(feed.get("@context")):
        raise CheckError(f"{url}: no ActivityStreams @context")
    first = feed.get("first")
    if feed["totalItems"] == 0:
        return
    if not isinstance(first, str):
        raise CheckError(f"{url}: {feed['totalItems']} items but no first page")
    page = json.loads(expect(fetch(urljoin(url, first), headers={"Accept": AS_MEDIA_TYPE})).body)
    items = page.get("orderedItems")
    if page.get("type") != "OrderedCollectionPage" or not isinstance(items, list) or not items:
        raise CheckError(f"{first}: not an OrderedCollectionPage with orderedItems")
    for item in items:
        if item.get("type") not in ("Create", "Update", "Delete") or not item.get("object"):
            raise CheckError(
                f"{first}: an item is no Create/Update/Delete with an object: {str(item)[:80]}"
            )


def check_oai(d: Deployment) -> None:
    """OAI-PMH 2.0 Identify (§4.2): its elements, baseURL the URL asked; a bad verb badVerb."""
    url = d.url("oai")
    reply = expect(fetch(url + "?verb=Identify"))
    if reply.media_type != "text/xml":
        raise CheckError(f"{reply.url}: Content-Type {reply.media_type!r}, expected text/xml")
    root = _xml(reply)
    identify = root.find(OAI_NS + "Identify")
    if root.tag != OAI_NS + "OAI-PMH" or identify is None:
        raise CheckError(f"{reply.url}: no OAI-PMH Identify element")
    for name in ("repositoryName", "baseURL", "protocolVersion", "earliestDatestamp",
                 "deletedRecord", "granularity", "adminEmail"):  # fmt: skip
        if not (identify.findtext(OAI_NS + name) or "").strip():
            raise CheckError(f"{reply.url}: Identify has no {name}")
    if identify.findtext(OAI_NS + "baseURL") != url:
        raise CheckError(
            f"{reply.url}: baseURL {identify.findtext(OAI_NS + 'baseURL')}, expected {url}"
        )
    if identify.findtext(OAI_NS + "protocolVersion") != "2.0":
        raise CheckError(f"{reply.url}: protocolVersion is not 2.0")
    bad = _xml(expect(fetch(url + "?verb=Nonsense")))
    error = bad.find(OAI_NS + "error")
    if error is None or error.get("code") != "badVerb":
        raise CheckError(f"{url}?verb=Nonsense: no badVerb error")


# --- what every page must carry -----------------------------------------------------------------


def _security_problems(reply: Reply) -> Iterable[str]:
    csp = reply.header("Content-Security-Policy")
    directives = {part.strip().split(" ")[0].lower() for part in csp.split(";") if part.strip()}
    if not csp:
        yield "no Content-Security-Policy"
    else:
        for needed in ("default-src", "frame-ancestors"):
            if needed not in directives:
                yield f"Content-Security-Policy without {needed}"
    if reply.header("X-Content-Type-Options").lower() != "nosniff":
        yield "no X-Content-Type-Options: nosniff"
    policies = reply.tokens("Referrer-Policy")
    if not policies or not policies <= REFERRER_POLICIES:
        yield f"Referrer-Policy {reply.header('Referrer-Policy')!r} is not a referrer policy"


def check_security_headers(d: Deployment) -> None:
    """A Content-Security-Policy (default-src, frame-ancestors), nosniff and a referrer
    policy on HTML pages, RDF, SPARQL answers, the feed and errors alike."""
    for url, headers in (
        (d.base, {"Accept": BROWSER}),
        (d.entry, {"Accept": BROWSER}),
        (d.entry, {"Accept": TURTLE.media_type}),
        (d.endpoint, {"Accept": BROWSER}),
        (d.endpoint + "?" + urlencode({"query": "ASK {}"}), {}),
        (d.url("changes"), {}),
        (d.url("entry/no-such-entry"), {"Accept": BROWSER}),
    ):
        reply = fetch(url, headers=headers)
        problems = list(_security_problems(reply))
        if problems:
            raise CheckError(f"{url} ({reply.status}): {'; '.join(problems)}")


def check_errors(d: Deployment) -> None:
    """An unknown IRI is 404: JSON {status, error, message} for programs, HTML for browsers."""
    url = d.url("entry/no-such-entry-kgpub-check")
    reply = fetch(url, headers={"Accept": "application/json"})
    if reply.status != 404:
        raise CheckError(f"{url}: status {reply.status}, expected 404")
    try:
        body = json.loads(reply.body)
    except ValueError as exc:
        raise CheckError(f"{url}: the 404 is not JSON for Accept: application/json") from exc
    if not {"status", "error", "message"} <= set(body):
        raise CheckError(f"{url}: the 404's JSON lacks status, error or message")
    html = fetch(url, headers={"Accept": BROWSER})
    if html.status != 404 or html.media_type != HTML_MEDIA_TYPE:
        raise CheckError(f"{url}: a browser gets {html.status} {html.media_type!r}")


def check_openapi(d: Deployment) -> None:
    """The landing page links an OpenAPI 3 description (RFC 8631 service-desc) whose
    operations include the SPARQL endpoint."""
    home = expect(fetch(d.base, headers={"Accept": BROWSER}))
    targets = [k.target for k in home.links() if "service-desc" in k.rels]
    if not targets:
        raise CheckError(f"{d.base}: no Link rel=service-desc")
    reply = expect(fetch(targets[0]))
    try:
        doc = json.loads(reply.body)
    except ValueError as exc:
        raise CheckError(f"{reply.url}: not JSON: {exc}") from exc
    if not str(doc.get("openapi", "")).startswith("3."):
        raise CheckError(f"{reply.url}: not an OpenAPI 3 document")
    servers = [str(s.get("url", "")) for s in doc.get("servers") or [{"url": ""}]]
    operations = {urljoin(reply.url, server + path) for server in servers for path in doc["paths"]}
    if d.endpoint not in operations:
        raise CheckError(f"{reply.url}: no operation on the SPARQL endpoint {d.endpoint}")


def check_reachable(d: Deployment) -> None:
    """The base URL answers, and VoID describes a dataset with a SPARQL endpoint."""
    expect(fetch(d.base, headers={"Accept": TURTLE.media_type}))
    d.endpoint  # noqa: B018  (reads VoID: raises when it is missing or broken)


CASES: tuple[Case, ...] = (
    Case("reachable", "the base URL answers and VoID names a SPARQL endpoint", check_reachable),
    Case("conneg-default", "no Accept, empty or */*: Turtle", check_default),
    Case("conneg-types", "every representation by Accept, the same triples", check_types),
    Case("conneg-q-values", "q-values, wildcards and specificity decide", check_q_values),
    Case("conneg-406", "nothing acceptable: 406 listing the types", check_not_acceptable),
    Case("conneg-vary", "negotiated answers carry Vary: Accept", check_vary),
    Case("conneg-link", "Link alternates, canonical, describedby (RFC 8288)", check_links),
    Case("conneg-suffix", "suffix URLs name their representation", check_suffixes),
    Case("conditional-etag", "If-None-Match gives 304", check_etag),
    Case("conditional-last-modified", "If-Modified-Since gives 304", check_last_modified),
    Case("cors", "CORS preflight and headers", check_cors),
    *(_w3c_case(t) for t in w3c.protocol_tests()),
    Case("service-description", "W3C service description tests", check_service_description),
    Case("no-remote-fetch", "SERVICE, LOAD and remote FROM fetch nothing", check_no_remote_fetch),
    Case("void", "VoID: dataset, endpoint, triples counted", check_void),
    Case("dcat-dumps", "DCAT dumps: present, sizes and SHA-256 right", check_dumps),
    Case("sitemap", "robots.txt and a valid sitemap", check_sitemap),
    Case("feed", "the ActivityStreams change feed", check_feed),
    Case("oai-pmh", "OAI-PMH Identify and badVerb", check_oai),
    Case("errors", "404 in the negotiated format", check_errors),
    Case("openapi", "the linked OpenAPI description", check_openapi),
    Case(
        "security-headers",
        "CSP, nosniff and Referrer-Policy on every answer",
        check_security_headers,
    ),
)
BY_NAME = {case.name: case for case in CASES}
