"""Blueprint 'resources': every IRI the build minted dereferences, in five representations.

Cool URIs with a direct 200 (no 303): the IRI of a thing (/entry/x, /category/x, /categories,
/library, /dataset) answers with a representation chosen by content negotiation, and names
it in Content-Location (the suffix URL). Each representation also has its own URL (suffix
.ttl .jsonld .nt .rdf .html) and a query-parameter override (?format=ttl|jsonld|nt|rdf|html
or a media type). No Accept and */* get Turtle; browsers ask for text/html and get a page.
'/' is the library (the landing page in HTML); /dataset and /.well-known/void both describe
the dataset with the VoID graph. /context.jsonld is the published JSON-LD @context.

Bodies are rendered once per release, path, format, page and URL style, then served from
the release's cache (server/current.py) through server/representation.py, with the time what
each body shows last changed (`_changed`, from the history) as its Last-Modified.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

import pyoxigraph
from flask import Blueprint, Response, current_app, render_template, request
from markupsafe import Markup
from pyoxigraph import NamedNode
from werkzeug.urls import iri_to_uri

from graph import history, jsonld
from graph import index as graph_index
from graph import resources as graph_resources
from graph import vocabulary as graph_vocabulary
from graph.enrich.read import Related
from graph.errors import PublicationError
from graph.formats import HTML_MEDIA_TYPE, HTML_SUFFIX, JSONLD, RDF_FORMATS, by_media_type
from graph.iris import Iris
from graph.namespaces import DCAT, DCTERMS, FOAF, KGPUB, OWL, PREFIXES, RDF, SKOS, SPDX, VOID
from graph.resources import Description, Page
from graph.vocabulary import vocabulary_triples
from server.conneg import REPRESENTATIONS, SUFFIX_OF, NotAcceptable, format_name, select
from server.current import Release
from server.errors import HttpError
from server.params import whole_number
from server.representation import Representation, make_etag, respond

bp = Blueprint("resources", __name__)

LABELS = {**{f.media_type: f.label for f in RDF_FORMATS}, HTML_MEDIA_TYPE: "HTML"}
CONTENT_TYPES = {
    media_type: media_type + ("; charset=utf-8" if media_type.startswith("text/") else "")
    for media_type in REPRESENTATIONS
}
RDF_TYPES = tuple(f.media_type for f in RDF_FORMATS)
CURIE_PREFIXES = sorted(
    {**PREFIXES, "foaf": str(FOAF), "spdx": str(SPDX), "kgpub": str(KGPUB)}.items(),
    key=lambda p: -len(p[1]),
)


class Terms:
    """Predicate IRIs by short name, for templates (d.value(t.title))."""

    type = str(RDF.type)
    title = str(DCTERMS.title)
    description = str(DCTERMS.description)
    created = str(DCTERMS.created)
    modified = str(DCTERMS.modified)
    identifier = str(DCTERMS.identifier)
    subject = str(DCTERMS.subject)
    is_part_of = str(DCTERMS.isPartOf)
    has_part = str(DCTERMS.hasPart)
    issued = str(DCTERMS.issued)
    license = str(DCTERMS.license)
    publisher = str(DCTERMS.publisher)
    theme_taxonomy = str(DCAT.themeTaxonomy)
    pref_label = str(SKOS.prefLabel)
    notation = str(SKOS.notation)
    in_scheme = str(SKOS.inScheme)
    has_top_concept = str(SKOS.hasTopConcept)
    triples = str(VOID.triples)
    entities = str(VOID.entities)
    classes = str(VOID.classes)
    properties = str(VOID.properties)
    class_partition = str(VOID.classPartition)
    property_partition = str(VOID.propertyPartition)
    void_class = str(VOID["class"])
    void_property = str(VOID.property)
    sparql_endpoint = str(VOID.sparqlEndpoint)
    uri_space = str(VOID.uriSpace)
    example_resource = str(VOID.exampleResource)
    vocabulary = str(VOID.vocabulary)
    data_dump = str(VOID.dataDump)
    distribution = str(DCAT.distribution)
    download_url = str(DCAT.downloadURL)
    media_type = str(DCAT.mediaType)
    compress_format = str(DCAT.compressFormat)
    byte_size = str(DCAT.byteSize)
    checksum = str(SPDX.checksum)
    checksum_value = str(SPDX.checksumValue)
    foaf_name = str(FOAF.name)


# --- routes ------------------------------------------------------------------------------------


@bp.get("/")
def home() -> Response:
    """The root: the library (its HTML is the landing page)."""
    return dereference("library", None)


@bp.get("/library", defaults={"ext": None})
@bp.get("/library.<ext>")
def library(ext: str | None) -> Response:
    return dereference("library", _dotted(ext))


@bp.get("/dataset", defaults={"ext": None})
@bp.get("/dataset.<ext>")
def dataset(ext: str | None) -> Response:
    return dereference("dataset", _dotted(ext))


@bp.get("/.well-known/void", defaults={"ext": None})
@bp.get("/.well-known/void.<ext>")
def void(ext: str | None) -> Response:
    return dereference(".well-known/void", _dotted(ext))


@bp.get("/vocabulary", defaults={"ext": None})
@bp.get("/vocabulary.<ext>")
def vocabulary(ext: str | None) -> Response:
    """kgpub's own terms (graph/vocabulary.py), in every representation."""
    return dereference(VOCABULARY, _dotted(ext))


@bp.get("/categories", defaults={"ext": None})
@bp.get("/categories.<ext>")
def scheme(ext: str | None) -> Response:
    return dereference("categories", _dotted(ext))


@bp.get("/category/<name>")
def concept(name: str) -> Response:
    stem, suffix = _split(name)
    return dereference("category/" + stem, suffix)


@bp.get("/entry/<name>")
def entry(name: str) -> Response:
    stem, suffix = _split(name)
    return dereference("entry/" + stem, suffix)


@bp.get("/publisher/<name>")
def publisher(name: str) -> Response:
    stem, suffix = _split(name)
    return dereference("publisher/" + stem, suffix)


@bp.get("/context.jsonld")
def context() -> Response:
    """The JSON-LD @context that every JSON-LD body references (CORS: browsers fetch it)."""
    release = _release()
    rep = release.cache.get(("context",))
    if rep is None:
        body = json.dumps({"@context": jsonld.context()}, ensure_ascii=False, indent=2)
        data = body.encode("utf-8")
        rep = Representation(
            data,
            JSONLD.media_type,
            make_etag("context", data),
            (
                (
                    "Link",
                    f'<{_uri(release.iris.void)}>; rel="describedby"; type="text/turtle"',
                ),
            ),
        )
        release.cache.put(("context",), rep, rep.size)
    return respond(rep, vary_accept=False)  # changed only with the code


def _dotted(ext: str | None) -> str | None:
    return None if ext is None else "." + ext


def _split(name: str) -> tuple[str, str | None]:
    """'x.ttl' -> ('x', '.ttl'). Slugs never hold a dot (graph/iris.py), so the last one
    starts a suffix."""
    stem, dot, ext = name.rpartition(".")
    return (stem, dot + ext) if dot and stem else (name, None)


def _release() -> Release:
    release: Release = current_app.extensions["kgpub"].get()
    return release


# --- dereferencing -----------------------------------------------------------------------------


def dereference(local: str, suffix: str | None) -> Response:
    """Serve the resource at base + local in the representation the request selects."""
    release = _release()
    environ = request.environ
    query = environ.get("QUERY_STRING")  # most requests have none: skip parsing it
    param = request.args.get("format") if query else None
    try:
        media_type, negotiated = select(suffix, param, environ.get("HTTP_ACCEPT"), REPRESENTATIONS)
    except NotAcceptable as exc:
        _describe(release, local, 1)  # an unknown IRI is 404 whatever the Accept
        links = _links(release.iris, local, 1, None, NEGOTIATED)
        raise HttpError(406, str(exc), {"Link": links, "Vary": "Accept"}) from exc
    page = _page(local) if query else 1
    style = (
        Style("s", suffix)
        if suffix
        else Style("p", format_name(media_type))
        if param
        else NEGOTIATED
    )
    key = ("resource", local, media_type, page, style)
    rep: Representation | None = release.cache.get(key)
    if rep is None:
        rep = _render(release, local, media_type, page, style)
        release.cache.put(key, rep, rep.size)
    return respond(rep, vary_accept=negotiated)


@dataclass(frozen=True)
class Style:
    """How the request named the representation: kind 'n' negotiated, 's' by suffix (value
    '.ttl'), 'p' by ?format= (value 'ttl'). Paging links keep the client's style."""

    kind: str
    value: str = ""

    def url(self, iri: str, page: int) -> str:
        """The URL of this representation of iri (ASCII: fit for headers and HTML)."""
        query = []
        if self.kind == "p":
            query.append("format=" + quote(self.value, safe="+/"))
        if page > 1:
            query.append(f"page={page}")
        base = iri + self.value if self.kind == "s" else iri
        return _uri(base + ("?" + "&".join(query) if query else ""))


NEGOTIATED = Style("n")


def _uri(iri: str) -> str:
    """An IRI as a URI (RFC 3987 §3.1) for headers; our IRIs are ASCII already, and
    iri_to_uri costs ~80 us a call."""
    return iri if iri.isascii() else iri_to_uri(iri)


def _page(local: str) -> int:
    """The ?page= number (1 when absent); only the library and concepts are paged."""
    raw = request.args.get("page")
    if raw is None or not _is_paged(local):
        return 1
    return whole_number("page", raw)


def _is_paged(local: str) -> bool:
    return local == "library" or local.startswith(("category/", PUBLISHER))


def _describe(release: Release, local: str, page: int) -> Description:
    """The description of base + local, or 404 (410 for an entry the library removed)."""
    if local.startswith(PUBLISHER):
        organisation = _publisher(release, local, page)
        if organisation.page is not None and page > organisation.page.last:
            last = organisation.page.last
            raise HttpError(404, f"<{organisation.iri}> has {last} page(s), not {page}")
        return organisation
    if local == VOCABULARY:
        iri = release.iris.vocabulary
        return Description(iri, "other", vocabulary_triples(release.iris), [])
    iris = release.iris
    iri = iris.base + local
    reader = release.reader
    members = None
    if _is_paged(local) and reader.exists(iri):  # no query for a 404
        kind: graph_resources.ResourceKind = "library" if local == "library" else "concept"
        members = release.members(iri, kind)
    page_size = int(current_app.config["KGPUB"]["page_size"])
    described = reader.describe(iri, page, page_size, members)
    if described is None:
        if local.startswith("entry/"):
            history.raise_if_deleted(release.path, iri)
        raise HttpError(
            404,
            f"<{iri}> is not a resource of this publication",
            suggestions=_suggestions(release, local),
        )
    if described.page is not None and page > described.page.last:
        raise HttpError(404, f"<{iri}> has {described.page.last} page(s), not {page}")
    return described


def _render(
    release: Release, local: str, media_type: str, page: int, style: Style
) -> Representation:
    described = _with_related(release, _describe(release, local, page))
    iris = release.iris
    iri = iris.base + local
    browse = _browse(release, described) if media_type == HTML_MEDIA_TYPE else {}
    changed = _changed(release, described, media_type, browse)
    if media_type == HTML_MEDIA_TYPE:
        body = _html(release, described, page, browse).encode("utf-8")
    else:
        fmt = by_media_type(media_type)
        assert fmt is not None
        body = graph_resources.serialize(described, fmt, iris)
    headers = [("Link", _links(iris, local, page, described.page, style))]
    if style.kind != "s":
        headers.append(("Content-Location", Style("s", SUFFIX_OF[media_type]).url(iri, page)))
    # From the bytes, not the release: a rebuild that leaves a resource as it was keeps its
    # tag, so a client that comes back gets 304.
    etag = make_etag(local, media_type, page, style.kind, style.value, body)
    return Representation(body, CONTENT_TYPES[media_type], etag, tuple(headers), changed)


PUBLISHER = "publisher/"
VOCABULARY = "vocabulary"
# What the vocabulary's HTML page shows (its RDF: graph/vocabulary.py vocabulary_triples).
VOCABULARY_PAGE = {
    "title": graph_vocabulary.TITLE,
    "description": graph_vocabulary.DESCRIPTION,
    "namespace": str(KGPUB),
    "terms": graph_vocabulary.TERMS,
}


def _publisher(release: Release, local: str, page: int) -> Description:
    """An organisation named in titles (graph/publishers.py): foaf:Organization, its name,
    owl:sameAs its external IRI when the table gives one, and its entries (dcterms:publisher,
    each with its title), newest first and paged as a category's are (at 1M entries a
    publisher names tens of thousands); 404 for one the release lacks."""
    iri = release.iris.base + local
    published = release.publishers
    found = published.found(local[len(PUBLISHER) :]) if published else None
    if found is None:
        raise HttpError(404, f"<{iri}> is not a resource of this publication")
    node = NamedNode(iri)
    triples = [
        pyoxigraph.Triple(node, NamedNode(Terms.type), NamedNode(str(FOAF.Organization))),
        pyoxigraph.Triple(
            node,
            NamedNode(Terms.pref_label),
            pyoxigraph.Literal(found.publisher.name, language="en"),
        ),
    ]
    if found.publisher.sameas:
        triples.append(
            pyoxigraph.Triple(node, NamedNode(str(OWL.sameAs)), NamedNode(found.publisher.sameas))
        )
    size = int(current_app.config["KGPUB"]["page_size"])
    paging = Page(page, size, len(found.entries))
    shown = list(found.entries[paging.start : paging.start + size])
    titles = _titles(release, shown)
    for entry in shown:
        triples.append(pyoxigraph.Triple(NamedNode(entry), NamedNode(Terms.publisher), node))
        if entry in titles:
            triples.append(
                pyoxigraph.Triple(NamedNode(entry), NamedNode(Terms.title), titles[entry])
            )
    return Description(iri, "other", triples, shown, paging)


def _titles(release: Release, entries: Sequence[str]) -> dict[str, pyoxigraph.Literal]:
    """The titles of entries, from the index: the rows of these entries only (a query per
    month of them), not every entry's id."""
    index = release.index
    if index is None:
        return {}
    rows = graph_index.listed(index, entries, release.iris.entry_prefix)
    return {e.iri: pyoxigraph.Literal(e.title, language="en") for e in rows}


def _related(release: Release, d: Description) -> list[Related]:
    """An entry's related entries (graph/enrich), closest first; none for other resources or
    a release built without them."""
    enrichment = release.enrichment
    if d.kind != "entry" or enrichment is None:
        return []
    return enrichment.related(d.iri)


def _with_related(release: Release, d: Description) -> Description:
    """The description of an entry with its publishers (dcterms:publisher, each with its
    name) and related entries (kgpub:related, each with its title) in every representation."""
    related = _related(release, d)
    published = release.publishers if d.kind == "entry" else None
    pids = published.of_entry(d.iri) if published else []
    if not related and not pids:
        return d
    node, prop, title = NamedNode(d.iri), NamedNode(str(KGPUB.related)), NamedNode(Terms.title)
    wanted = []
    for pid, name in pids:
        org = NamedNode(release.iris.publisher(pid))
        # In the graph since graph/convert.py names publishers; a release built before, not.
        wanted.append(pyoxigraph.Triple(node, NamedNode(Terms.publisher), org))
        label = pyoxigraph.Literal(name, language="en")
        wanted.append(pyoxigraph.Triple(org, NamedNode(Terms.pref_label), label))
    # In the store too since the linkset is loaded (graph/enrich/linkset.py).
    for r in related:
        wanted.append(pyoxigraph.Triple(node, prop, NamedNode(r.iri)))
        wanted.append(
            pyoxigraph.Triple(NamedNode(r.iri), title, pyoxigraph.Literal(r.title, language="en"))
        )
    # A graph is a set: each triple once, whether the description already had it (a linked
    # resource's label or title) or not; in a description's order wherever they came from (the
    # embedded reader reads an entry from the dump, which has no linkset: graph/store/files.py).
    merged = graph_resources.ordered([*d.triples, *wanted], d.iri)
    return Description(d.iri, d.kind, merged, d.members, d.page)


def _changed(
    release: Release, d: Description, media_type: str, browse: dict[str, Any] | None = None
) -> str:
    """When what this representation shows last changed (a build time), from the history
    (graph/history.py View): an entry's page, its triples and the labels and title it names;
    a page of a list, its members' titles, who the members are and the label; the scheme,
    the categories and labels (and counts, in HTML); the landing page (counts, dumps, the
    last change) and the rest (the dataset, VoID), the last change of the data (the
    dataset's dcterms:modified). Computed once per body (it is cached), from lists read
    once per release."""
    index = _history(release)
    if index is None:
        return release.built  # a publication without a history: its build is all we know
    if d.kind == "entry":
        own = index.entry_changed(d.iri) or index.changed
        if not browse:
            return own
        # Its page also shows the entries either side in the library and the nearest in each
        # of its categories (with the category's count): who the members are, their titles.
        # (Its own time counts the labels and the library's title.)
        shown = [e.iri for e in (browse.get("newer"), browse.get("older")) if e is not None]
        times = [own, index.members_changed(None)]
        for concept, _, _, rows in browse.get("related", ()):
            times.append(index.members_changed(concept))
            shown += (e.iri for e in rows)
        titled = index.titled_of(shown)
        times += (titled.get(iri, index.changed) for iri in shown)
        return max(times)
    if d.kind == "concept":
        return index.list_changed(d.iri, d.members)
    if d.kind == "library" and (media_type != HTML_MEDIA_TYPE or (d.page and d.page.number > 1)):
        # The landing page (page 1 in HTML) also shows the counts and the last change.
        return index.list_changed(None, d.members)
    if d.kind == "scheme":
        return index.scheme_changed(counts=media_type == HTML_MEDIA_TYPE)
    return index.changed


def _history(release: Release) -> history.View | None:
    index = history.load(release.path)
    return index if index.present and index.changed else None


def _links(iris: Iris, local: str, page: int, paging: Page | None, style: Style) -> str:
    """Link header (RFC 8288): every representation, the canonical IRI, VoID, and pages."""
    iri = iris.base + local
    links = [
        f'<{Style("s", SUFFIX_OF[t]).url(iri, page)}>; rel="alternate"; type="{t}"'
        for t in REPRESENTATIONS
    ]
    links.append(f'<{NEGOTIATED.url(iri, page)}>; rel="canonical"')
    links.append(f'<{_uri(iris.void)}>; rel="describedby"; type="text/turtle"')
    if paging is not None and paging.is_paged:
        links.append(f'<{style.url(iri, 1)}>; rel="first"')
        if page > 1:
            links.append(f'<{style.url(iri, page - 1)}>; rel="prev"')
        if page < paging.last:
            links.append(f'<{style.url(iri, page + 1)}>; rel="next"')
        links.append(f'<{style.url(iri, paging.last)}>; rel="last"')
    return ", ".join(links)


# --- HTML --------------------------------------------------------------------------------------


def _html(release: Release, d: Description, page: int, browse: dict[str, Any]) -> str:
    iris = release.iris
    root = release.base_path
    alternates = [(LABELS[t], t, Style("s", SUFFIX_OF[t]).url(d.iri, page)) for t in RDF_TYPES]
    script = graph_resources.serialize(d, JSONLD, iris).decode("utf-8")
    template: str = d.kind if d.kind != "other" else "resource"
    if d.iri.startswith(release.iris.base + PUBLISHER):
        template = "publisher"
    elif d.iri == release.iris.vocabulary:
        template = "vocabulary"
    return render_template(
        f"resources/{template}.html",
        d=d,
        t=Terms,
        iris=iris,
        manifest=release.manifest,
        root=root,
        site_title=release.manifest.get("title", "kgpub"),
        href=lambda iri: _href(iris, root, iri),
        alternates=alternates,
        canonical=NEGOTIATED.url(d.iri, page),
        page_url=lambda n: _href(iris, root, NEGOTIATED.url(d.iri, n)),
        jsonld=_script_json(script),
        categories=_categories(release) if d.kind in ("library", "scheme") else [],
        browse=browse,
        # When the data last changed, not when it was last built: a rebuild of the same
        # data must give the same bytes (and ETag).
        changed=(index.changed if (index := _history(release)) else release.built),
        html_url=Style("s", HTML_SUFFIX).url(d.iri, page),
        related=_related(release, d),
        vocabulary=VOCABULARY_PAGE,
    )


RELATED = 4  # other entries shown per category on an entry's page
SUGGESTED = 5  # entries a 404 page suggests


def _browse(release: Release, d: Description) -> dict[str, Any]:
    """What a people's page shows besides the resource, from the release's index: the years
    of the library or of a category, an entry's year, its neighbours in the library and the
    entries nearest to it in each of its categories. Empty without an index (an old release)."""
    index, iris = release.index, release.iris
    if index is None:
        return {}
    prefix = iris.entry_prefix
    if d.kind == "library":
        return {"years": _years(release, iris.library)}
    if d.kind == "concept":
        notation = d.value(Terms.notation) or d.iri.rsplit("/", 1)[-1]
        return {"years": _years(release, d.iri), "notation": notation}
    if d.kind != "entry":
        return {}
    newer, older = graph_index.neighbours(index, iris.library, d.iri)
    found = {e.iri: e for e in graph_index.listed(index, [i for i in (newer, older) if i], prefix)}
    counts = release.category_counts()
    related = []
    for concept in sorted(d.objects(Terms.subject), key=lambda c: d.label(c).casefold()):
        near = graph_index.around(index, concept, d.iri, RELATED)
        rows = graph_index.listed(index, near, prefix)
        related.append((concept, d.label(concept), counts.get(concept, 0), rows))
    created = d.value(Terms.created)
    return {
        "year": int(created[:4]) if created[:4].isdigit() else None,
        "newer": found.get(newer or ""),
        "older": found.get(older or ""),
        "related": related,
    }


def _years(release: Release, list_iri: str) -> list[tuple[int, int]]:
    """(year, entries) of the library or a concept, newest first; cached per release."""
    index = release.index
    if index is None:
        return []

    def compute() -> tuple[list[tuple[int, int]], int]:
        found = graph_index.list_years(index, list_iri, release.iris.entry_prefix)
        return found, 64 * len(found) + 64

    return release.cache.memo(("years", list_iri), compute)


def _suggestions(release: Release, local: str) -> list[tuple[str, str]]:
    """(href, title) of what a 404 for a cut-off or mistyped entry or category URL may have
    meant: the entries whose IRI starts with what was asked (cut back a word at a time, down
    to its year), or the categories whose notation does."""
    index, iris, root = release.index, release.iris, release.base_path
    if index is None:
        return []
    kind, _, rest = local.partition("/")
    stem = re.sub(r"[^a-z0-9-].*$", "", rest.lower()).strip("-")
    if kind == "category":
        try:
            concepts = list(index.categories().values())
        except PublicationError:
            return []
        while len(stem) >= 3:  # cut back a letter at a time
            near = [c for c in concepts if c.notation.startswith(stem)]
            if near:
                return [(root + "category/" + c.notation, c.label) for c in near][:SUGGESTED]
            stem = stem[:-1]
        return []
    if kind != "entry" or len(stem) < 4:
        return []
    while len(stem) >= 4:
        found, total = graph_index.starting_with(
            index, iris.library, iris.entry_prefix + stem, SUGGESTED
        )
        if found:
            rows = graph_index.listed(index, found, iris.entry_prefix)
            out = [(_href(iris, root, e.iri), e.title) for e in rows]
            if total > len(found) and stem[:4].isdigit():
                out.append(
                    (_href(iris, root, iris.year(int(stem[:4]))), f"Every entry of {stem[:4]}")
                )
            return out
        cut = stem.rfind("-")
        stem = stem[:cut] if cut > 0 else stem[:4] if len(stem) > 4 else ""
    return []


def _href(iris: Iris, root: str, iri: str) -> str:
    """Where a person's click on an IRI goes: our IRIs by path under the base's path (so the
    page works behind a proxy and on the server's own address), others as they are."""
    local = iris.local_path(iri)
    return iri if local is None else root + local


def _script_json(text: str) -> Markup:
    """JSON for a <script> element: '<', '>' and '&' as \\u escapes, so no '</script>' or
    '<!--' inside the data can end or change the element (HTML §4.12.1.3)."""
    safe = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return Markup(safe)  # escaped above: JSON, not HTML


def _categories(release: Release) -> list[tuple[str, str, int]]:
    """(IRI, label, entries) of every concept of the scheme, by label; cached per release."""

    def compute() -> tuple[list[tuple[str, str, int]], int]:
        reader, iris = release.reader, release.iris
        counts = release.category_counts()
        scheme = reader.describe(iris.scheme)
        concepts = scheme.objects(Terms.has_top_concept) if scheme else []
        rows = sorted(
            ((c, scheme.label(c) if scheme else c, counts.get(c, 0)) for c in concepts),
            key=lambda row: row[1].casefold(),
        )
        return rows, 256 * len(rows) + 64

    return release.cache.memo(("categories",), compute)


@bp.app_template_filter("when")
def when(value: str) -> str:
    """'2020-08-17T09:21:00+01:00' -> '17 August 2020, 09:21' (the time as published)."""
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    return f"{moment.day} {moment:%B %Y, %H:%M}"


@bp.app_template_filter("number")
def number(value: Any) -> str:
    """1234 -> '1,234': the one way people's pages write numbers."""
    return f"{int(value):,}"


@bp.app_template_global("page_numbers")
def page_numbers(current: int, last: int, around: int = 2) -> list[int]:
    """The page numbers a pager shows: the first, the last and `around` either side of the
    current one; 0 where numbers are left out (shown as '…')."""
    shown = sorted({1, last, *range(max(1, current - around), min(last, current + around) + 1)})
    out: list[int] = []
    for n in shown:
        if out and n > out[-1] + 1:
            out.append(out[-1] + 1 if n == out[-1] + 2 else 0)  # '…' for one page is no shorter
        out.append(n)
    return out


@bp.app_template_filter("blocks")
def blocks(text: str) -> list[tuple[str, Any]]:
    """A description's lines as paragraphs and bullet lists: [('p', line) | ('ul', [items])]."""
    out: list[tuple[str, Any]] = []
    for line in text.split("\n"):
        line = line.strip()
        if not line:
            continue
        if line.startswith("•"):
            item = line[1:].strip()
            if out and out[-1][0] == "ul":
                out[-1][1].append(item)
            else:
                out.append(("ul", [item]))
        else:
            out.append(("p", line))
    return out


@bp.app_template_filter("bytesize")
def bytesize(value: Any) -> str:
    """1234567 -> '1.2 MB'."""
    size = float(value)
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:,.0f} {unit}" if unit == "bytes" else f"{size:,.1f} {unit}"
        size /= 1000
    return f"{size:,.1f} GB"


@bp.app_template_filter("term_kind")
def term_kind(term: Any) -> str:
    """'iri', 'literal' or 'bnode': how a template shows an RDF term."""
    if isinstance(term, pyoxigraph.NamedNode):
        return "iri"
    if isinstance(term, pyoxigraph.Literal):
        return "literal"
    return "bnode"


@bp.app_template_filter("curie")
def curie(iri: str) -> str:
    """'http://purl.org/dc/terms/title' -> 'dcterms:title' for the prefixes kgpub uses."""
    for prefix, namespace in CURIE_PREFIXES:
        if iri.startswith(namespace) and len(iri) > len(namespace):
            return f"{prefix}:{iri[len(namespace) :]}"
    return iri
