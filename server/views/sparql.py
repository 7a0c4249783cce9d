"""Blueprint 'sparql': the SPARQL 1.1 Protocol query operation at /sparql, read-only.

  GET  /sparql?query=Q                          §2.1.1 query via GET
  POST /sparql   form body query=Q              §2.1.2 query via URL-encoded POST
  POST /sparql   application/sparql-query body  §2.1.3 query via POST directly
  default-graph-uri / named-graph-uri (URL or form) set the dataset and override FROM (§2.1.4)
  GET  /sparql   with no query: the query page (HTML) or the Service Description (RDF)
  OPTIONS /sparql                               CORS preflight
SELECT and ASK answer in SPARQL Results JSON (the default), XML, CSV or TSV; CONSTRUCT and
DESCRIBE in Turtle (the default), N-Triples, JSON-LD or RDF/XML; browsers get an HTML table.
Updates are refused (400): the endpoint is read-only. Queries run through graph/query.py.
"""

from __future__ import annotations

import gzip
import json
import math
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pyoxigraph
from flask import Blueprint, Response, abort, current_app, render_template, request, url_for
from pyoxigraph import NamedNode

from graph.describe import describe_service
from graph.dumps import dump_prefixes
from graph.errors import KgpubError, QueryError, QueryRefused, QuerySyntaxError, QueryTooLarge
from graph.formats import (
    HTML_MEDIA_TYPE,
    JSONLD,
    NTRIPLES,
    RDF_FORMATS,
    RDFXML,
    SPARQL_QUERY,
    SPARQL_RESULTS_CSV,
    SPARQL_RESULTS_JSON,
    SPARQL_RESULTS_TSV,
    SPARQL_RESULTS_XML,
    SPARQL_UPDATE,
)
from graph.namespaces import DCTERMS, SKOS
from graph.query import QueryJob, QueryPool, inspect_query, offered_types, parse_graph_names
from graph.store import Runner
from graph.xmlchars import code_point, find_non_xml_utf8
from server.conneg import NotAcceptable, negotiate
from server.current import Release
from server.errors import HttpError, retry_after, status_of
from server.params import whole_number
from server.representation import COMPRESS_MIN, Representation, accepts_gzip, make_etag, respond

bp = Blueprint("sparql", __name__)

FORM_TYPE = "application/x-www-form-urlencoded"
METHODS = "GET, HEAD, POST, OPTIONS"
# What GET /sparql without a query offers: the page for browsers, the description for RDF.
DESCRIPTION_TYPES = (HTML_MEDIA_TYPE, *(f.media_type for f in RDF_FORMATS))
# ?format= names (also sent by SPARQLWrapper) -> media type, per kind of result.
RESULT_KEYS = {
    "json": SPARQL_RESULTS_JSON,
    "xml": SPARQL_RESULTS_XML,
    "csv": SPARQL_RESULTS_CSV,
    "tsv": SPARQL_RESULTS_TSV,
    "html": HTML_MEDIA_TYPE,
}
GRAPH_KEYS = {
    **{f.key: f.media_type for f in RDF_FORMATS},
    **{f.suffix.lstrip("."): f.media_type for f in RDF_FORMATS},
    "json-ld": JSONLD.media_type,
    "json": JSONLD.media_type,
    "xml": RDFXML.media_type,
    "rdf+xml": RDFXML.media_type,
    "html": HTML_MEDIA_TYPE,
}
HTML_ROWS = 100  # rows per page of the HTML table; the whole result is a download away
# The SPARQL page's editor (editor/sparql.js), bundled at install time (setup.py): the page
# loads it only when it is there, and works as a plain form without it.
EDITOR = Path(__file__).resolve().parent.parent / "static" / "editor" / "sparql.js"
_editor: dict[float, Representation] = {}
_pools_lock = threading.Lock()
_descriptions: dict[tuple[str, str], bytes] = {}


def _settings() -> dict[str, Any]:
    settings: dict[str, Any] = current_app.config["KGPUB"]
    return settings


def _release() -> Release:
    release: Release = current_app.extensions["kgpub"].get()
    return release


def _pool() -> QueryPool:
    """This worker process's query children (per app and process: gunicorn forks the app)."""
    pools: dict[int, QueryPool] = current_app.extensions.setdefault("kgpub.query_pools", {})
    pid = os.getpid()
    pool = pools.get(pid)
    if pool is None:
        with _pools_lock:
            pool = pools.get(pid)
            if pool is None:
                settings = _settings()
                # No child before a query: each starts with the first query that finds none
                # idle, and opens that query's store (QueryJob.store, the current release's).
                pool = QueryPool(
                    int(settings["query_concurrency"]),
                    float(settings["query_timeout"]),
                    int(settings["query_memory"]),
                    started=0,
                )
                pools[pid] = pool
    return pool


# --- Reading a protocol request ---------------------------------------------------------------
@dataclass(frozen=True)
class ProtocolRequest:
    """A query operation as read from HTTP: the query text and the protocol dataset."""

    query: str | None
    default_graphs: tuple[str, ...] | None
    named_graphs: tuple[str, ...] | None


def _one_query(values: list[str]) -> str | None:
    if len(values) > 1:
        raise QuerySyntaxError("the request carries more than one query (SPARQL 1.1 Protocol §2.1)")
    return values[0] if values else None


def _read_request() -> ProtocolRequest:
    """The query and dataset of this request, or the 400 the protocol asks for."""
    settings = _settings()
    limit = int(settings["query_max_length"])
    params: dict[str, list[str]] = {k: request.args.getlist(k) for k in request.args}
    if request.method == "POST":
        mimetype = request.mimetype
        if mimetype == FORM_TYPE:
            if (request.content_length or 0) > 3 * limit + 65536:  # %-encoding triples the size
                raise QueryTooLarge(f"the query is longer than {limit:,} bytes")
            for key in request.form:
                params.setdefault(key, []).extend(request.form.getlist(key))
        elif mimetype == SPARQL_QUERY:
            charset = request.mimetype_params.get("charset", "utf-8").lower()
            if charset not in ("utf-8", "utf8"):
                raise QuerySyntaxError(
                    f"a query sent as {SPARQL_QUERY} must be UTF-8, not {charset} (§2.1.3)"
                )
            if (request.content_length or 0) > limit:
                raise QueryTooLarge(f"the query is longer than {limit:,} bytes")
            data = request.stream.read(limit + 1)
            if len(data) > limit:  # a body sent without Content-Length
                raise QueryTooLarge(f"the query is longer than {limit:,} bytes")
            try:
                body = data.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise QuerySyntaxError(f"the query is not UTF-8 text: {exc}") from None
            params.setdefault("query", []).append(body)
        elif mimetype == SPARQL_UPDATE:
            raise _read_only()
        else:
            raise QuerySyntaxError(
                f"a POST needs Content-Type {FORM_TYPE} or {SPARQL_QUERY}"
                + (f", not {mimetype}" if mimetype else "")
                + " (SPARQL 1.1 Protocol §2.1.2, §2.1.3)"
            )
    if "update" in params or any(k.startswith("using-") for k in params):
        raise _read_only()
    return ProtocolRequest(
        _one_query(params.get("query", [])),
        parse_graph_names(params, "default-graph-uri"),
        parse_graph_names(params, "named-graph-uri"),
    )


def _read_only() -> QueryRefused:
    return QueryRefused("this endpoint is read-only: SPARQL Update requests are not accepted")


# --- Choosing the response format -------------------------------------------------------------
def _requested(offered: tuple[str, ...], keys: dict[str, str]) -> str:
    """?format= when it names an offered type (the first that does), else the Accept header."""
    for value in request.values.getlist("format"):
        media_type = keys.get(value.strip().lower(), value.strip().lower())
        if media_type in offered:
            return media_type
    return negotiate(request.headers.get("Accept"), offered)


def _prefers_html() -> bool:
    try:
        return _requested((SPARQL_RESULTS_JSON, HTML_MEDIA_TYPE), RESULT_KEYS) == HTML_MEDIA_TYPE
    except NotAcceptable:
        return False


# --- The view ---------------------------------------------------------------------------------
@bp.route("/sparql", methods=["GET", "POST", "OPTIONS"])
def endpoint() -> Response:
    """The SPARQL endpoint: query, query page, service description or CORS preflight."""
    if request.method == "OPTIONS":
        return _preflight()
    html = request.method != "POST" and _prefers_html()
    try:
        protocol = _read_request()
        if protocol.query is None:
            if protocol.default_graphs is not None or protocol.named_graphs is not None:
                raise QuerySyntaxError("missing query parameter (SPARQL 1.1 Protocol §2.1)")
            return _description()
        return _answer(protocol)
    except (QueryError, NotAcceptable) as exc:
        if not html:
            raise
        status, _ = status_of(exc)
        query = request.values.get("query", "")
        response = _html(_page(query, error=str(exc)), status)
        seconds = retry_after(exc)
        if seconds:
            response.headers["Retry-After"] = seconds
        return response


def _answer(protocol: ProtocolRequest) -> Response:
    settings = _settings()
    assert protocol.query is not None
    form = inspect_query(protocol.query, int(settings["query_max_length"]))
    offered = (*offered_types(form), HTML_MEDIA_TYPE)
    keys = RESULT_KEYS if form in ("SELECT", "ASK") else GRAPH_KEYS
    try:
        media_type = _requested(offered, keys)
    except NotAcceptable:
        # A SPARQL client that sends one Accept for every query (rdflib's SPARQLStore asks for
        # SPARQL JSON even for CONSTRUCT) gets the graph in Turtle: RFC 9110 §12.5.1 lets a
        # server disregard Accept rather than answer 406. Other clients get the 406.
        accept = request.headers.get("Accept", "")
        if form in ("SELECT", "ASK") or not any(t in accept for t in offered_types("SELECT")):
            raise
        media_type = offered[0]
    html = media_type == HTML_MEDIA_TYPE
    page = _page_number() if html else 1
    release = _release()
    job = QueryJob(
        text=protocol.query,
        form=form,
        media_type=(
            (SPARQL_RESULTS_JSON if form in ("SELECT", "ASK") else NTRIPLES.media_type)
            if html
            else media_type
        ),
        store=str(release.store_path),
        base_iri=release.iris.sparql,  # relative IRIs resolve against the endpoint (§2.1.4)
        default_graphs=protocol.default_graphs,
        named_graphs=protocol.named_graphs,
        max_results=int(settings["query_max_results"]),
        prefixes=tuple(dump_prefixes(release.iris).items()),
    )
    # gunicorn gives the client's socket: a query whose client hangs up is stopped at once.
    client = request.environ.get("gunicorn.socket")
    runner: Runner = (
        release.runner(float(settings["query_timeout"]), int(settings["query_concurrency"]))
        if release.is_remote
        else _pool()
    )
    result = runner.run(job, watch=client.fileno() if client is not None else None)
    if html:
        table = _table(form, job.media_type, result.body, dict(job.prefixes), protocol.query, page)
        return _html(_page(protocol.query, table=table))
    if media_type in XML_TYPES:
        _refuse_non_xml(result.body, form)
    content_type = media_type + ("; charset=utf-8" if media_type.startswith("text/") else "")
    return Response(result.body, content_type=content_type)


XML_TYPES = (SPARQL_RESULTS_XML, RDFXML.media_type)


def _refuse_non_xml(body: bytes, form: str) -> None:
    """A result holding a character XML 1.0 cannot carry ("\\u0001" in a literal) would be
    a body no XML parser reads: 406, naming a format that can carry it (graph/xmlchars.py)."""
    char = find_non_xml_utf8(body)
    if char is not None:
        other = "application/sparql-results+json" if form in ("SELECT", "ASK") else "text/turtle"
        raise HttpError(
            406,
            f"the result holds the character {code_point(char)}, which XML cannot carry; "
            f"ask for {other}",
        )


def _description() -> Response:
    """GET /sparql without a query: the query page, or the Service Description (SD §3)."""
    media_type = _requested(DESCRIPTION_TYPES, GRAPH_KEYS)
    if media_type == HTML_MEDIA_TYPE:
        return _html(_page(""))
    iris = _release().iris
    key = (iris.base, media_type)
    body = _descriptions.get(key)
    if body is None:
        offered = (*offered_types("SELECT"), *offered_types("CONSTRUCT"))
        rdf = next(f for f in RDF_FORMATS if f.media_type == media_type)
        body = describe_service(iris, offered).serialize(format=rdf.rdflib, encoding="utf-8")
        _descriptions[key] = body
    content_type = media_type + ("; charset=utf-8" if media_type.startswith("text/") else "")
    return Response(body, content_type=content_type)


def _preflight() -> Response:
    """CORS preflight (Fetch standard): any origin may query, e.g. POST application/sparql-query."""
    response = Response(status=204)
    response.headers["Allow"] = METHODS
    response.headers["Access-Control-Allow-Methods"] = METHODS
    requested = request.headers.get("Access-Control-Request-Headers", "")
    response.headers["Access-Control-Allow-Headers"] = requested or "Accept, Content-Type"
    response.headers["Access-Control-Max-Age"] = "86400"
    return response


@bp.after_request
def _cors(response: Response) -> Response:
    """Every answer of the endpoint, errors included, is readable from any origin."""
    response.headers["Access-Control-Allow-Origin"] = "*"
    response.headers["Access-Control-Expose-Headers"] = "Retry-After"
    response.vary.add("Accept")
    return response


# --- The HTML page ----------------------------------------------------------------------------
def _html(page: str, status: int = 200) -> Response:
    """The page, gzip-coded for clients that accept it, as every other page is."""
    body = page.encode("utf-8")
    response = Response(status=status, content_type="text/html; charset=utf-8")
    if len(body) >= COMPRESS_MIN:
        response.vary.add("Accept-Encoding")
        if accepts_gzip(request.headers.get("Accept-Encoding", "")):
            body = gzip.compress(body, compresslevel=6, mtime=0)
            response.headers["Content-Encoding"] = "gzip"
    response.set_data(body)
    return response


def _page_number() -> int:
    """?page= of the HTML table (1 when absent; 400 unless a positive integer); past the last
    page, the last."""
    return whole_number("page", request.values.get("page", "1"))


@bp.route("/static/editor/sparql.js")
def editor() -> Response:
    """The editor's bundle, with validators and gzip like every representation."""
    try:
        mtime = EDITOR.stat().st_mtime
    except OSError:
        abort(404)
    rep = _editor.get(mtime)
    if rep is None:
        body = EDITOR.read_bytes()
        rep = Representation(body, "text/javascript; charset=utf-8", make_etag("editor", body))
        _editor.clear()
        _editor[mtime] = rep
    return respond(rep, vary_accept=False)


@dataclass(frozen=True)
class Cell:
    """One term in the HTML result table."""

    text: str
    href: str | None = None
    note: str = ""
    title: str = ""


@dataclass(frozen=True)
class Table:
    """A result for the HTML page: a boolean, or column names and one page of rows of cells."""

    form: str
    columns: tuple[str, ...]
    rows: list[tuple[Cell | None, ...]]
    total: int
    boolean: bool | None = None
    page: int = 1
    first: int = 1  # the number of the page's first row

    @property
    def is_graph(self) -> bool:
        return self.form in ("CONSTRUCT", "DESCRIBE")

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / HTML_ROWS))

    @property
    def last(self) -> int:
        return self.first + len(self.rows) - 1


_SAFE_LINK = re.compile(r"https?://", re.IGNORECASE)


def _cell(kind: str, value: str, prefixes: dict[str, str], lang: str = "", dt: str = "") -> Cell:
    """A term as the page shows it: IRIs compacted with the usual prefixes and linked."""
    if kind == "uri":
        text = value
        for prefix, namespace in prefixes.items():
            if value.startswith(namespace) and len(value) > len(namespace):
                candidate = f"{prefix}:{value[len(namespace) :]}"
                text = candidate if text == value or len(candidate) < len(text) else text
        return Cell(text, value if _SAFE_LINK.match(value) else None, title=value)
    if kind == "bnode":
        return Cell("_:" + value)
    if lang:
        return Cell(value, note="@" + lang)
    return Cell(value, note=dt.rsplit("#", 1)[-1] if dt else "")


def _cell_from_json(term: dict[str, Any], prefixes: dict[str, str]) -> Cell:
    kind, value = str(term.get("type")), str(term.get("value", ""))
    return _cell(
        kind, value, prefixes, str(term.get("xml:lang", "")), str(term.get("datatype", ""))
    )


def _cell_from_term(term: Any, prefixes: dict[str, str]) -> Cell:
    if isinstance(term, NamedNode):
        return _cell("uri", term.value, prefixes)
    if isinstance(term, pyoxigraph.Literal):
        return _cell("literal", term.value, prefixes, term.language or "", term.datatype.value)
    return Cell(str(term))


# What a query's text says outside its strings, IRIs and comments: its variables, in order.
_SKIPPED = (
    r"'''(?:[^'\\]|\\.|'(?!''))*'''"
    r'|"""(?:[^"\\]|\\.|"(?!""))*"""'
    r"|'(?:[^'\\\n]|\\.)*'"
    r'|"(?:[^"\\\n]|\\.)*"'
    r'|<[^<>"{}|^`\\\s]*>'
    r"|#[^\n]*"
)
_TOKENS = re.compile(_SKIPPED + r"|[?$]([A-Za-z0-9_\u00b7\u00c0-\ufffd]+)")
_SELECT = re.compile(r"\bSELECT\b", re.IGNORECASE)
_STAR = re.compile(r"SELECT\s+(?:(?:DISTINCT|REDUCED)\s+)?\*", re.IGNORECASE)


def query_variables(query: str) -> list[str]:
    """The variables of a query in the order they first appear (SPARQL 1.1 §19: strings,
    IRI references and comments hold none)."""
    seen: dict[str, None] = {}
    for match in _TOKENS.finditer(query):
        name = match.group(1)
        if name:
            seen.setdefault(name, None)
    return list(seen)


def _columns(query: str, columns: tuple[str, ...]) -> tuple[str, ...]:
    """SELECT * (the query's own, not a subquery's): the columns in the query's order (the
    stores list them sorted by name)."""
    code = _TOKENS.sub(lambda m: m.group(0) if m.group(1) else " ", query)
    select = _SELECT.search(code)
    if select is None or not _STAR.match(code, select.start()):
        return columns
    order = {name: i for i, name in enumerate(query_variables(query))}
    return tuple(sorted(columns, key=lambda c: order.get(c, len(order))))


def _table(
    form: str, media_type: str, body: bytes, prefixes: dict[str, str], query: str, page: int
) -> Table:
    """The page of rows the HTML table shows: HTML_ROWS of them."""
    if media_type == SPARQL_RESULTS_JSON:
        data = json.loads(body)
        if "boolean" in data:
            return Table(form, (), [], 1, bool(data["boolean"]))
        columns = _columns(query, tuple(data["head"]["vars"]))
        bindings = data["results"]["bindings"]
        page = _within(page, len(bindings))
        start = (page - 1) * HTML_ROWS
        rows = [
            tuple(_cell_from_json(b[c], prefixes) if c in b else None for c in columns)
            for b in bindings[start : start + HTML_ROWS]
        ]
        return Table(form, columns, rows, len(bindings), page=page, first=start + 1)
    triples = list(pyoxigraph.parse(body, format=NTRIPLES.oxigraph))
    page = _within(page, len(triples))
    start = (page - 1) * HTML_ROWS
    rows = [
        tuple(_cell_from_term(term, prefixes) for term in (t.subject, t.predicate, t.object))
        for t in triples[start : start + HTML_ROWS]
    ]
    columns = ("subject", "predicate", "object")
    return Table(form, columns, rows, len(triples), page=page, first=start + 1)


def _within(page: int, total: int) -> int:
    """A page past the last shows the last."""
    return min(page, max(1, math.ceil(total / HTML_ROWS)))


@dataclass(frozen=True)
class Example:
    """An example query shown on the page."""

    title: str
    text: str


_examples: dict[str, list[Example]] = {}


def _examples_for(release: Release) -> list[Example]:
    """Example queries that work on this library (the year, word and category come from it)."""
    cached = _examples.get(release.id)
    if cached is not None:
        return cached
    iris = release.iris
    prefixes = (
        "PREFIX dcterms: <http://purl.org/dc/terms/>\n"
        "PREFIX dcmitype: <http://purl.org/dc/dcmitype/>\n"
        "PREFIX skos: <http://www.w3.org/2004/02/skos/core#>\n"
    )
    year, word, category, label, example = _sample(release)
    examples = [
        Example(
            "Entries per category",
            prefixes + "SELECT ?category ?label (COUNT(?entry) AS ?entries) WHERE {\n"
            "  ?entry dcterms:subject ?category .\n  ?category skos:prefLabel ?label .\n"
            "}\nGROUP BY ?category ?label\nORDER BY DESC(?entries)",
        ),
        Example(
            "The 20 latest entries",
            prefixes + "SELECT ?entry ?title ?created WHERE {\n"
            "  ?entry a dcmitype:Text ; dcterms:title ?title ; dcterms:created ?created .\n"
            "}\nORDER BY DESC(?created)\nLIMIT 20",
        ),
        Example(
            f"Entries with the word “{word}” in their title",
            prefixes + "SELECT ?entry ?title WHERE {\n  ?entry dcterms:title ?title .\n"
            f'  FILTER(CONTAINS(LCASE(STR(?title)), "{word}"))\n}}\nORDER BY ?title',
        ),
        Example(
            f"The entries of {year}",
            prefixes + "SELECT ?entry ?title ?created WHERE {\n"
            "  ?entry dcterms:created ?created ; dcterms:title ?title .\n"
            f"  FILTER(YEAR(?created) = {year})\n}}\nORDER BY ?created",
        ),
    ]
    if category:
        examples.append(
            Example(
                "The 20 latest entries in one category",
                prefixes + "SELECT ?entry ?title ?created WHERE {\n"
                f"  ?entry dcterms:subject <{category}> ;\n"
                "         dcterms:title ?title ; dcterms:created ?created .\n"
                "}\nORDER BY DESC(?created)\nLIMIT 20",
            )
        )
        examples.append(
            Example(
                f"The entries of {year} in “{label or 'one category'}”",
                prefixes + "SELECT ?entry ?title ?created WHERE {\n"
                f"  ?entry dcterms:subject <{category}> ;\n"
                "         dcterms:title ?title ; dcterms:created ?created .\n"
                f"  FILTER(YEAR(?created) = {year})\n"
                "}\nORDER BY ?created",
            )
        )
    if example:
        examples.append(Example("Everything about one entry", f"DESCRIBE <{example}>"))
    examples.append(
        Example(
            "The VoID description (a named graph)",
            f"SELECT ?property ?value WHERE {{\n  GRAPH <{iris.void}> {{\n"
            f"    <{iris.dataset}> ?property ?value .\n  }}\n}}",
        )
    )
    _examples[release.id] = examples
    return examples


def _text(term: object) -> str:
    return str(getattr(term, "value", term))


def _sample(release: Release) -> tuple[int, str, str | None, str, str | None]:
    """A year, a title word, a category with its label and an entry of this library, for the
    examples (the category is one of the entry's, so that it has entries of that year)."""
    example = release.manifest.get("example")
    year, word, category, label = 2020, "report", None, ""
    try:
        reader = release.reader
        if example:
            for triple in reader.triples(str(example)):
                predicate = triple.predicate.value
                if predicate == str(DCTERMS.created):
                    year = int(_text(triple.object)[:4])
                elif predicate == str(DCTERMS.title):
                    words = re.findall(r"[a-z]{4,}", _text(triple.object).lower())
                    word = max(words, key=len) if words else word
                elif predicate == str(DCTERMS.subject) and category is None:
                    category = _text(triple.object)
        if category is None:
            category = next(iter(release.concepts()), None)
        if category is not None:
            for triple in reader.triples(category):
                if triple.predicate.value == str(SKOS.prefLabel):
                    label = _text(triple.object)
    except (KgpubError, OSError, ValueError):
        pass  # the examples still work, with less fitting values
    return year, word, category, label, str(example) if example else None


# A SELECT or ASK result's downloads: ?format= key, label, file suffix.
RESULT_DOWNLOADS = (
    ("json", "JSON", ".srj"),
    ("xml", "XML", ".srx"),
    ("csv", "CSV", ".csv"),
    ("tsv", "TSV", ".tsv"),
)


def _page(query: str, table: Table | None = None, error: str = "") -> str:
    release = _release()
    examples = _examples_for(release)
    settings = _settings()
    endpoint_url = url_for("sparql.endpoint")

    def link(**params: str) -> str:
        return endpoint_url + "?" + urlencode(params)

    downloads: list[tuple[str, str, str]] = []
    share = ""
    if query and table is not None:
        offered = (
            [(f.key, f.label, f.suffix) for f in RDF_FORMATS]
            if table.is_graph
            else RESULT_DOWNLOADS
        )
        downloads = [
            (label, link(query=query, format=key), "results" + suffix)
            for key, label, suffix in offered
        ]
        share = link(query=query)
    return render_template(
        "sparql/query.html",
        query=query or examples[0].text,
        chosen=request.values.get("format", "html"),
        table=table,
        error=error,
        examples=[(e, link(query=e.text)) for e in examples],
        iris=release.iris,
        downloads=downloads,
        share=share,
        page_url=lambda number: link(query=query, page=str(number)),
        HTML_ROWS=HTML_ROWS,
        editor=EDITOR.exists(),
        timeout=settings["query_timeout"],
        max_results=settings["query_max_results"],
        description_links=[(f.media_type, f.label, link(format=f.key)) for f in RDF_FORMATS],
    )
