"""Blueprint 'search': the library's search, for people and programs, from the release's index.

  /search?q=&category=&year=&publisher=&sort=&page=     one page of results, content-negotiated:
      HTML (a results page: hits with their matches marked, facets, sort, pages), JSON
      (application/json: total, hits, facets, links) and RDF (Turtle, JSON-LD, N-Triples,
      RDF/XML: a hydra:Collection with its PartialCollectionView and the IRI template that
      VoID also gives, graph/describe.py); /search.<suffix> and ?format= name one.
A category is its notation (the slug in its IRI) or its IRI, a publisher its id or IRI
(<base>publisher/<id>, graph/publishers.py); several categories, publishers or years are
repeated or comma-separated (RFC 6570 form-style expansion of the template). Words in any
order must all match (graph/index.py); categories and publishers combine (entries of every
one), years widen (entries of any). Sorts: relevance (the default with words), newest
(without), oldest.
A bad parameter is 400 in the negotiated error format (server/errors.py); a page past the
last, 404. Bodies are cached per release like every other representation.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlencode

# Imported with the worker, not on its first search: graph/index.py counts the word search's
# facets with numpy and imports it only there (a build never needs it).
import numpy  # noqa: F401
import pyoxigraph
from flask import Blueprint, Response, current_app, render_template, request
from pyoxigraph import Literal, NamedNode, Triple
from werkzeug.urls import iri_to_uri

from graph import history, jsonld
from graph.describe import SEARCH_MAPPINGS, SEARCH_TEMPLATE, search_iri
from graph.errors import PublicationError
from graph.formats import HTML_MEDIA_TYPE, HTML_SUFFIX, JSONLD, RDF_FORMATS, by_media_type
from graph.index import (
    SORTS,
    Concept,
    FacetValue,
    Hit,
    Index,
    Results,
    SearchError,
    Span,
    words_of,
)
from graph.iris import Iris
from graph.namespaces import DCMITYPE, DCTERMS, HYDRA, KGPUB, PREFIXES, RDF, RDFS, XSD
from server.conneg import format_name, media_type_of_param, media_type_of_suffix, negotiate
from server.current import Release
from server.errors import HttpError
from server.params import whole_number
from server.representation import Representation, make_etag, respond

bp = Blueprint("search", __name__)

PAGE_SIZE = 20
JSON = "application/json"
# The server's order of preference: as for every resource, no Accept and */* get Turtle;
# browsers name text/html; application/json names the plain JSON body.
OFFERED: tuple[str, ...] = (*(f.media_type for f in RDF_FORMATS), HTML_MEDIA_TYPE, JSON)
JSON_SUFFIX = ".json"
SUFFIXES = {**{f.media_type: f.suffix for f in RDF_FORMATS}, HTML_MEDIA_TYPE: HTML_SUFFIX}
SUFFIXES[JSON] = JSON_SUFFIX
LABELS = {**{f.media_type: f.label for f in RDF_FORMATS}, HTML_MEDIA_TYPE: "HTML", JSON: "JSON"}
_YEAR = re.compile(r"[0-9]{4}")
MODES = ("words", "meaning")
# How a hit of a meaning search was found, and its closeness (graph/enrich/meaning.py).
Marks = Mapping[str, tuple[str, float | None]]


@dataclass(frozen=True)
class Style:
    """How the request named its representation: 'n' negotiated, 's' a suffix ('.ttl'),
    'p' ?format= ('ttl'). Links to other pages keep it."""

    kind: str = "n"
    value: str = ""


NEGOTIATED = Style()


@dataclass(frozen=True)
class Params:
    """A search as the URL states it, checked."""

    text: str  # q, as given (spaces trimmed)
    words: tuple[str, ...]
    categories: tuple[Concept, ...]
    years: tuple[int, ...]
    sort: str  # as used: relevance only with words
    page: int
    mode: str = "words"  # or "meaning": words first, then entries close in meaning (MODES)
    publishers: tuple[str, ...] = ()  # ids (graph/publishers.py)

    @property
    def default_sort(self) -> str:
        return "relevance" if self.words else "newest"


# --- the route ----------------------------------------------------------------------------------


@bp.route("/search", defaults={"ext": None}, methods=["GET", "HEAD"])
@bp.route("/search.<ext>", methods=["GET", "HEAD"])
def search(ext: str | None) -> Response:
    """One page of a search in the representation the request selects."""
    release: Release = current_app.extensions["kgpub"].get()
    index = release.index
    if index is None:
        raise PublicationError(f"{release.id}: built without a search index; rebuild it")
    media_type, negotiated, style = _representation(ext)
    params = _params(index, release.iris)
    key = ("search", _query(params, page=params.page), media_type, style)
    rep: Representation | None = release.cache.get(key)
    if rep is None and params.mode == "meaning":
        results, marks = _meaning(release, index, params)
        rep = _render(release, index, params, results, media_type, style, marks)
        release.cache.put(key, rep, rep.size)
    if rep is None:
        try:
            results = index.search(
                params.words,
                [c.iri for c in params.categories],
                params.years,
                params.sort,
                params.page,
                PAGE_SIZE,
                params.publishers,
            )
        except SearchError as exc:
            raise HttpError(400, str(exc)) from exc
        if params.page > results.pages:
            raise HttpError(404, f"this search has {results.pages} page(s), not {params.page}")
        rep = _render(release, index, params, results, media_type, style)
        release.cache.put(key, rep, rep.size)
    return respond(rep, vary_accept=negotiated)


def _meaning(release: Release, index: Index, params: Params) -> tuple[Results, Marks]:
    """A page of the meaning search (graph/enrich/meaning.py), and each hit's mark."""
    enrichment = release.enrichment
    if enrichment is None:
        raise HttpError(
            400, "this publication was built without the meaning search (kgpub build --enrich)"
        )
    from graph.enrich import meaning  # the [enrich] extra's numpy, only when asked for

    try:
        found = meaning.search(
            index,
            enrichment,
            params.text,
            [c.iri for c in params.categories],
            params.years,
            params.page,
            PAGE_SIZE,
            params.publishers,
        )
    except SearchError as exc:
        raise HttpError(400, str(exc)) from exc
    results = found.results
    if params.page > results.pages:
        raise HttpError(404, f"this search has {results.pages} page(s), not {params.page}")
    return results, {f.hit.iri: (f.match, f.score) for f in found.found}


def _representation(ext: str | None) -> tuple[str, bool, Style]:
    """The media type asked for (suffix > ?format= > Accept), whether Accept chose it, and
    how the request named it."""
    if ext is not None:
        suffix = "." + ext
        media_type = JSON if suffix == JSON_SUFFIX else media_type_of_suffix(suffix)
        return media_type, False, Style("s", suffix)
    param = request.args.get("format")
    if param:
        if param.strip().lower() in ("json", JSON):
            return JSON, False, Style("p", "json")
        media_type = media_type_of_param(param)
        return media_type, False, Style("p", format_name(media_type))
    return negotiate(request.headers.get("Accept"), OFFERED), True, NEGOTIATED


def _values(name: str) -> list[str]:
    """A repeated or comma-separated parameter's values."""
    return [v.strip() for raw in request.args.getlist(name) for v in raw.split(",") if v.strip()]


def _params(index: Index, iris: Iris) -> Params:
    """The search the URL asks for, or 400 (HttpError) saying what is wrong."""
    args = request.args
    text = " ".join(t.strip() for t in args.getlist("q") if t.strip())
    try:
        words = words_of(text)
    except SearchError as exc:
        raise HttpError(400, str(exc)) from exc
    concepts = index.categories()
    by_name = {c.notation: c for c in concepts.values()} | concepts
    chosen: list[Concept] = []
    for value in _values("category"):
        concept = by_name.get(value)
        if concept is None:
            raise HttpError(400, f"no category {value!r} in this library; see its categories")
        if concept not in chosen:
            chosen.append(concept)
    named = index.publishers()
    prefix = iris.publisher("")
    publishers: list[str] = []
    for value in _values("publisher"):
        pid = value[len(prefix) :] if value.startswith(prefix) else value
        if pid not in named:
            raise HttpError(400, f"no publisher {value!r} in this library; see its publishers")
        if pid not in publishers:
            publishers.append(pid)
    years: list[int] = []
    for value in _values("year"):
        if not _YEAR.fullmatch(value):
            raise HttpError(400, f"year must be four digits (2020), not {value!r}")
        if int(value) not in years:
            years.append(int(value))
    sort = args.get("sort", "").strip() or ("relevance" if words else "newest")
    if sort not in SORTS:
        raise HttpError(400, f"unknown sort {sort!r}; use one of {', '.join(SORTS)}")
    if sort == "relevance" and not words:
        sort = "newest"  # nothing to rank by: the newest first, as the empty search
    page = whole_number("page", args.get("page", "1").strip())
    mode = args.get("mode", "").strip() or "words"
    if mode not in MODES:
        raise HttpError(400, f"unknown mode {mode!r}; use one of {', '.join(MODES)}")
    if mode == "meaning" and sort != ("relevance" if words else "newest"):
        raise HttpError(400, "a meaning search has one order: words first, then by meaning")
    years_chosen = tuple(sorted(years, reverse=True))
    return Params(text, words, tuple(chosen), years_chosen, sort, page, mode, tuple(publishers))


# --- URLs ---------------------------------------------------------------------------------------


def _query(params: Params, page: int = 1, force_page: bool = False) -> str:
    """The query string of a search: q, categories (notations), years, publishers (ids), the
    sort unless it is the default, the page unless it is the first (or force_page)."""
    pairs: list[tuple[str, str]] = []
    if params.text:
        pairs.append(("q", params.text))
    pairs += [("category", c.notation) for c in params.categories]
    pairs += [("year", str(y)) for y in params.years]
    pairs += [("publisher", p) for p in params.publishers]
    if params.sort != params.default_sort:
        pairs.append(("sort", params.sort))
    if params.mode != "words":
        pairs.append(("mode", params.mode))
    if page > 1 or force_page:
        pairs.append(("page", str(page)))
    return urlencode(pairs)


def _url(base: str, params: Params, style: Style, page: int = 1, force_page: bool = False) -> str:
    """The URL of a page of a search, under base (the search's IRI or path), in a style."""
    query = _query(params, page, force_page)
    if style.kind == "s":
        base += style.value
    elif style.kind == "p":
        query = "&".join(q for q in (query, urlencode({"format": style.value})) if q)
    url = base + ("?" + query if query else "")
    return url if url.isascii() else iri_to_uri(url)


def _toggled(
    params: Params,
    concept: Concept | None = None,
    year: int | None = None,
    publisher: str | None = None,
) -> Params:
    """The same search with a category, year or publisher added, or removed when it is
    selected; from its first page."""
    if concept is not None:
        chosen = [c for c in params.categories if c != concept]
        if len(chosen) == len(params.categories):
            chosen.append(concept)
        params = replace(params, categories=tuple(chosen))
    if year is not None:
        years = [y for y in params.years if y != year]
        if len(years) == len(params.years):
            years.append(year)
        params = replace(params, years=tuple(sorted(years, reverse=True)))
    if publisher is not None:
        publishers = [p for p in params.publishers if p != publisher]
        if len(publishers) == len(params.publishers):
            publishers.append(publisher)
        params = replace(params, publishers=tuple(publishers))
    return replace(params, page=1)


def _without_word(params: Params, word: str) -> Params:
    words = tuple(w for w in params.words if w != word)
    sort = params.sort if words or params.sort != "relevance" else "newest"
    return replace(params, text=" ".join(words), words=words, sort=sort, page=1)


# --- rendering ----------------------------------------------------------------------------------


def _render(
    release: Release,
    index: Index,
    params: Params,
    results: Results,
    media_type: str,
    style: Style,
    marks: Marks | None = None,
) -> Representation:
    iris = release.iris
    base = search_iri(iris)
    if media_type == HTML_MEDIA_TYPE:
        body = _html(release, index, params, results, marks).encode("utf-8")
    elif media_type == JSON:
        body = _json(iris, index, params, results, style, marks).encode("utf-8")
    else:
        fmt = by_media_type(media_type)
        assert fmt is not None
        triples = _triples(release, index, params, results, marks)
        if fmt is JSONLD:
            body = jsonld.document(triples).encode("utf-8")
        else:
            prefixes = {**PREFIXES, "hydra": str(HYDRA), "entry": iris.base + "entry/"}
            if marks is not None:
                prefixes["kgpub"] = str(KGPUB)
            body = pyoxigraph.serialize(triples, format=fmt.oxigraph, prefixes=prefixes) or b""
    headers = [("Link", _links(iris, params, results, style))]
    if style.kind != "s":
        location = _url(base, params, Style("s", SUFFIXES[media_type]), params.page)
        headers.append(("Content-Location", location))
    charset = "; charset=utf-8" if media_type.startswith("text/") or media_type == JSON else ""
    etag = make_etag("search", media_type, style.kind, style.value, body)
    return Representation(body, media_type + charset, etag, tuple(headers), _changed(release))


def _changed(release: Release) -> str:
    """When the data last changed (every search may show any entry): from the history's
    header, read once per release and worker; the build time without a history."""

    def compute() -> tuple[str, int]:
        try:
            state = history.read_state(release.path)
        except (PublicationError, OSError):
            state = None
        return (state.changed if state is not None else "") or release.built, 64

    return release.cache.memo(("search-changed",), compute)


def _links(iris: Iris, params: Params, results: Results, style: Style) -> str:
    """Link header (RFC 8288): every representation, the canonical URL, VoID, the pages."""
    base = search_iri(iris)
    page = params.page
    links = [
        f'<{_url(base, params, Style("s", SUFFIXES[t]), page)}>; rel="alternate"; type="{t}"'
        for t in OFFERED
    ]
    links.append(f'<{_url(base, params, NEGOTIATED, page)}>; rel="canonical"')
    void = iris.void if iris.void.isascii() else iri_to_uri(iris.void)
    links.append(f'<{void}>; rel="describedby"; type="text/turtle"')
    links.append(f'<{_url(base, params, style, 1)}>; rel="first"')
    if page > 1:
        links.append(f'<{_url(base, params, style, page - 1)}>; rel="prev"')
    if page < results.pages:
        links.append(f'<{_url(base, params, style, page + 1)}>; rel="next"')
    links.append(f'<{_url(base, params, style, results.pages)}>; rel="last"')
    return ", ".join(links)


def _title(release: Release, params: Params, names: Mapping[str, str]) -> str:
    """What the search is, in words: 'Entries matching “county lines” in Safeguarding, 2020'."""
    parts = [f"matching “{params.text}”"] if params.words else []
    if params.categories:
        parts.append("in " + " and ".join(c.label for c in params.categories))
    if params.publishers:
        parts.append("by " + " and ".join(names.get(p, p) for p in params.publishers))
    if params.years:
        parts.append("added in " + " or ".join(str(y) for y in sorted(params.years)))
    library = release.manifest.get("title", "the library")
    return f"Entries of {library}" + (" " + ", ".join(parts) if parts else "")


def _spans(spans: Sequence[Span]) -> list[dict[str, Any]]:
    return [{"text": s.text, "match": s.match} for s in spans]


def _json(
    iris: Iris,
    index: Index,
    params: Params,
    results: Results,
    style: Style,
    marks: Marks | None = None,
) -> str:
    base = search_iri(iris)
    concepts = index.categories()
    names = index.publishers()
    by_iri = {c.iri: c for c in concepts.values()}
    page = params.page
    links: dict[str, str] = {
        "self": _url(base, params, style, page),
        "first": _url(base, params, style, 1),
        "last": _url(base, params, style, results.pages),
    }
    if page > 1:
        links["prev"] = _url(base, params, style, page - 1)
    if page < results.pages:
        links["next"] = _url(base, params, style, page + 1)
    doc = {
        "search": {
            "q": params.text,
            "words": list(params.words),
            "category": [c.notation for c in params.categories],
            "year": list(params.years),
            "publisher": list(params.publishers),
            "sort": params.sort,
            "mode": params.mode,
            "page": page,
            "size": PAGE_SIZE,
        },
        "total": results.total,
        "pages": results.pages,
        "hits": [_hit_json(iris, hit, concepts, names, marks) for hit in results.hits],
        # Each value with the URL of the same search with it chosen, or no longer chosen.
        "facets": {
            "category": [
                {
                    "iri": f.key,
                    "notation": by_iri[f.key].notation,
                    "label": f.label,
                    "count": f.count,
                    "selected": f.selected,
                    "url": _url(base, _toggled(params, concept=by_iri[f.key]), style),
                }
                for f in results.categories
            ],
            "year": [
                {
                    "year": int(f.key),
                    "count": f.count,
                    "selected": f.selected,
                    "url": _url(base, _toggled(params, year=int(f.key)), style),
                }
                for f in results.years
            ],
            "publisher": [
                {
                    "id": f.key,
                    "iri": iris.publisher(f.key),
                    "label": f.label,
                    "count": f.count,
                    "selected": f.selected,
                    "url": _url(base, _toggled(params, publisher=f.key), style),
                }
                for f in results.publishers
            ],
        },
        "links": links,
        "alternates": {
            t: _url(base, params, Style("s", SUFFIXES[t]), page) for t in OFFERED if t != JSON
        },
        "template": base + SEARCH_TEMPLATE,
    }
    return json.dumps(doc, ensure_ascii=False, indent=1) + "\n"


def _hit_json(
    iris: Iris,
    hit: Hit,
    concepts: dict[str, Concept],
    names: Mapping[str, str],
    marks: Marks | None,
) -> dict[str, Any]:
    out: dict[str, Any] = {"iri": hit.iri, "title": hit.title, "created": hit.created}
    if marks is not None:  # a meaning search: how the hit was found, and how close it is
        match, score = marks[hit.iri]
        out["match"] = match
        out["score"] = score
    if hit.modified:
        out["modified"] = hit.modified
    out["categories"] = [
        {"iri": c, "label": concepts[c].label, "notation": concepts[c].notation}
        for c in hit.categories
    ]
    out["publishers"] = [
        {"iri": iris.publisher(p), "id": p, "label": names.get(p, p)} for p in hit.publishers
    ]
    out["title_spans"] = _spans(hit.marked_title)
    out["snippet"] = _spans(hit.snippet)
    return out


# RDF terms of the Hydra page.
_TYPE = NamedNode(str(RDF.type))
_TITLE = NamedNode(str(DCTERMS.title))
_CREATED = NamedNode(str(DCTERMS.created))
_MODIFIED = NamedNode(str(DCTERMS.modified))
_SUBJECT = NamedNode(str(DCTERMS.subject))
_PUBLISHER = NamedNode(str(DCTERMS.publisher))
_DATETIME = NamedNode(str(XSD.dateTime))


def _hydra(name: str) -> NamedNode:
    return NamedNode(str(HYDRA) + name)


def _triples(
    release: Release, index: Index, params: Params, results: Results, marks: Marks | None = None
) -> list[Triple]:
    """The page as Hydra (Hydra Core §5): the collection of the search's entries (the search
    without a page), its view (this page) with first, previous, next and last, the IRI
    template of the search, and each entry with its title, times, categories and publishers."""
    iris = release.iris
    base = search_iri(iris)
    collection = NamedNode(_url(base, params, NEGOTIATED))
    view = NamedNode(_url(base, params, NEGOTIATED, params.page, force_page=True))
    template = NamedNode(base + "#template")
    out = [
        Triple(collection, _TYPE, _hydra("Collection")),
        Triple(
            collection, _TITLE, Literal(_title(release, params, index.publishers()), language="en")
        ),
        Triple(
            collection,
            _hydra("totalItems"),
            Literal(str(results.total), datatype=NamedNode(str(XSD.nonNegativeInteger))),
        ),
        Triple(collection, _hydra("search"), template),
        Triple(collection, _hydra("view"), view),
    ]
    out += [Triple(collection, _hydra("member"), NamedNode(hit.iri)) for hit in results.hits]
    out.append(Triple(view, _TYPE, _hydra("PartialCollectionView")))
    for name, page in (("first", 1), ("last", results.pages)):
        out.append(
            Triple(view, _hydra(name), NamedNode(_url(base, params, NEGOTIATED, page, True)))
        )
    if params.page > 1:
        previous = _url(base, params, NEGOTIATED, params.page - 1, True)
        out.append(Triple(view, _hydra("previous"), NamedNode(previous)))
    if params.page < results.pages:
        following = _url(base, params, NEGOTIATED, params.page + 1, True)
        out.append(Triple(view, _hydra("next"), NamedNode(following)))
    out += [
        Triple(template, _TYPE, _hydra("IriTemplate")),
        Triple(template, _hydra("template"), Literal(base + SEARCH_TEMPLATE)),
        Triple(template, _hydra("variableRepresentation"), _hydra("BasicRepresentation")),
    ]
    for variable, prop, comment in SEARCH_MAPPINGS:
        mapping = NamedNode(f"{base}#{variable}")
        out += [
            Triple(template, _hydra("mapping"), mapping),
            Triple(mapping, _TYPE, _hydra("IriTemplateMapping")),
            Triple(mapping, _hydra("variable"), Literal(variable)),
            Triple(mapping, _hydra("property"), NamedNode(prop)),
            Triple(
                mapping, _hydra("required"), Literal("false", datatype=NamedNode(str(XSD.boolean)))
            ),
            Triple(mapping, NamedNode(str(RDFS.comment)), Literal(comment, language="en")),
        ]
    if marks is not None:
        out += _ranking(iris, results, marks)
    for hit in results.hits:
        node = NamedNode(hit.iri)
        out.append(Triple(node, _TYPE, NamedNode(str(DCMITYPE.Text))))
        out.append(Triple(node, _TITLE, Literal(hit.title, language="en")))
        out.append(Triple(node, _CREATED, Literal(hit.created, datatype=_DATETIME)))
        if hit.modified:
            out.append(Triple(node, _MODIFIED, Literal(hit.modified, datatype=_DATETIME)))
        out += [Triple(node, _SUBJECT, NamedNode(c)) for c in hit.categories]
        out += [Triple(node, _PUBLISHER, NamedNode(iris.publisher(p))) for p in hit.publishers]
    return out


def _ranking(iris: Iris, results: Results, marks: Marks) -> list[Triple]:
    """A meaning search's order and marks in RDF (kgpub's vocabulary, graph/namespaces.py):
    each hit's place in the list (kgpub:searchRank, from 1 over the whole list), how it was
    found (kgpub:matchedBy "words" or "meaning") and its closeness (kgpub:score)."""
    first = (results.search.page - 1) * results.search.size
    out = []
    decimal = NamedNode(str(XSD.decimal))
    for at, hit in enumerate(results.hits, start=first + 1):
        node = NamedNode(hit.iri)
        match, score = marks[hit.iri]
        out.append(
            Triple(node, NamedNode(str(KGPUB.searchRank)), Literal(str(at), datatype=_INTEGER))
        )
        out.append(Triple(node, NamedNode(str(KGPUB.matchedBy)), Literal(match)))
        if score is not None:
            out.append(
                Triple(node, NamedNode(str(KGPUB.score)), Literal(f"{score:.3f}", datatype=decimal))
            )
    return out


_INTEGER = NamedNode(str(XSD.integer))


def _html(
    release: Release, index: Index, params: Params, results: Results, marks: Marks | None = None
) -> str:
    iris = release.iris
    root = release.base_path
    path = root + "search"
    concepts = index.categories()

    def href(iri: str) -> str:
        local = iris.local_path(iri)
        return iri if local is None else root + local

    def link(p: Params, page: int = 1) -> str:
        return _url(path, p, NEGOTIATED, page)

    by_iri = {c.iri: c for c in concepts.values()}
    names = index.publishers()
    hits = [
        {
            "href": href(hit.iri),
            "title": hit.marked_title,
            "created": hit.created,
            "categories": [(href(c), concepts[c].label) for c in hit.categories],
            "publishers": [(href(iris.publisher(p)), names.get(p, p)) for p in hit.publishers],
            "snippet": hit.snippet,
            "match": marks[hit.iri] if marks is not None else None,
        }
        for hit in results.hits
    ]

    def facet(f: FacetValue, toggled: Params) -> dict[str, Any]:
        return {"label": f.label, "count": f.count, "selected": f.selected, "url": link(toggled)}

    category_facet = [facet(f, _toggled(params, concept=by_iri[f.key])) for f in results.categories]
    year_facet = [facet(f, _toggled(params, year=int(f.key))) for f in results.years]
    publisher_facet = [facet(f, _toggled(params, publisher=f.key)) for f in results.publishers]
    selected = [(c.label, link(_toggled(params, concept=c))) for c in params.categories]
    selected += [(names.get(p, p), link(_toggled(params, publisher=p))) for p in params.publishers]
    selected += [(str(y), link(_toggled(params, year=y))) for y in params.years]
    sorts = [
        (name, link(replace(params, sort=name, page=1)), name == params.sort)
        for name in SORTS
        if (params.words or name != "relevance") and params.mode == "words"
    ]
    dropping = [(w, link(_without_word(params, w))) for w in params.words]
    alternates = [
        (LABELS[t], t, _url(path, params, Style("s", SUFFIXES[t]), params.page))
        for t in OFFERED
        if t != HTML_MEDIA_TYPE
    ]
    return render_template(
        "search/results.html",
        params=params,
        results=results,
        title=_title(release, params, index.publishers()),
        hits=hits,
        category_facet=category_facet,
        year_facet=year_facet,
        publisher_facet=publisher_facet,
        selected=selected,
        sorts=sorts,
        dropping=dropping,
        alternates=alternates,
        canonical=link(params, params.page),
        page_url=lambda n: link(params, n),
        search_path=path,
        params_size=PAGE_SIZE,
        meaning_offered=release.enrichment is not None,
        meaning_url=link(replace(params, mode="meaning", sort=params.default_sort, page=1)),
        words_url=link(replace(params, mode="words", page=1)),
    )
