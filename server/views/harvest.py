"""Blueprint 'harvest': what harvesters read, all from the current release's history.

  /changes                         the change feed (ActivityStreams 2.0 OrderedCollection)
  /collections/entries             all entries, paged (Hydra PartialCollectionView; RDF, HTML)
  /collections/category/<slug>     the entries of one category, paged the same way
  /oai                             OAI-PMH 2.0 (GET and POST), oai_dc records
and, for the whole app: 410 Gone for the IRI of a removed entry (EntryGone, raised by the
resources view) and a Link header to the change feed on the landing page and the dataset.
Every response carries a weak ETag and Last-Modified derived from the history, so a harvester
that comes back to an unchanged publication (even one rebuilt from the same data) gets 304.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pyoxigraph
from flask import Blueprint, Response, current_app, render_template, request
from pyoxigraph import NamedNode

from graph import harvest, history, jsonld, oai
from graph.errors import EntryGone, PublicationError
from graph.formats import HTML_MEDIA_TYPE, HTML_SUFFIX, JSONLD, RDF_FORMATS, by_key, by_suffix
from graph.iris import Iris
from graph.namespaces import DCTERMS, HYDRA, PREFIXES
from graph.store import Reader
from server.conneg import NotAcceptable, negotiate
from server.current import Release
from server.errors import HttpError
from server.params import whole_number
from server.representation import COMPRESS_MIN, accepts_gzip, make_etag

bp = Blueprint("harvest", __name__)

FEED_TYPES = (harvest.AS_MEDIA_TYPE, JSONLD.media_type, "application/json", HTML_MEDIA_TYPE)
# Turtle first: what a linked-data client gets for no Accept or */*; browsers ask for HTML.
PAGE_TYPES = (*(f.media_type for f in RDF_FORMATS), HTML_MEDIA_TYPE)
GONE_TYPES = (*PAGE_TYPES, "application/json", "text/plain")
# RFC 8288 §2.1.2: an extension relation is a URI. ActivityPub's outbox is "the activities
# an actor has published": here, the Create/Update/Delete activities of the dataset.
FEED_REL = "https://www.w3.org/ns/activitystreams#outbox"
_DESCRIPTION = NamedNode(str(DCTERMS.description))
_CREATED = NamedNode(str(DCTERMS.created))


def _release() -> Release:
    release: Release = current_app.extensions["kgpub"].get()
    return release


def _settings() -> dict[str, Any]:
    settings: dict[str, Any] = current_app.config["KGPUB"]
    return settings


# --- conditional requests ---------------------------------------------------------------------


def _validators(index: history.View, *variant: str) -> tuple[str, datetime | None]:
    """A weak ETag from the history's state digest and what varies; Last-Modified."""
    digest = hashlib.sha256("\0".join((index.state, *variant)).encode("utf-8")).hexdigest()
    changed = history.parse_time(index.changed) if index.changed else None
    return digest[:32], changed


def _is_fresh(etag: str, last_modified: datetime | None) -> bool:
    """RFC 9110 §13.1.2-3: If-None-Match (weak comparison) wins over If-Modified-Since."""
    if request.method not in ("GET", "HEAD"):
        return False
    if request.if_none_match:
        return request.if_none_match.contains_weak(etag)
    since = request.if_modified_since
    return since is not None and last_modified is not None and last_modified <= since


def _finish(
    response: Response, etag: str, last_modified: datetime | None, links: list[str]
) -> Response:
    response.set_etag(etag, weak=True)
    if last_modified is not None:
        response.last_modified = last_modified
    response.headers["Vary"] = "Accept"
    response.headers["Cache-Control"] = "public, no-cache"  # always revalidate: 304s are cheap
    response.headers["Access-Control-Allow-Origin"] = "*"
    response.headers["Access-Control-Expose-Headers"] = "Link, ETag, Last-Modified"
    for link in links:
        response.headers.add("Link", link)
    return response


def _answer(
    body: Any, content_type: str, etag: str, last_modified: datetime | None, links: list[str]
) -> Response:
    """200 with the body (gzip-coded when the client accepts it, RFC 9110 §8.4), or 304."""
    if _is_fresh(etag, last_modified):
        response = _finish(Response(status=304), etag, last_modified, links)
    else:
        data = body()
        data = data.encode("utf-8") if isinstance(data, str) else data
        response = Response(data, content_type=content_type)
        if len(data) >= COMPRESS_MIN and accepts_gzip(request.headers.get("Accept-Encoding", "")):
            response.set_data(gzip.compress(data, compresslevel=6, mtime=0))
            response.headers["Content-Encoding"] = "gzip"
        response = _finish(response, etag, last_modified, links)
    response.headers["Vary"] = "Accept, Accept-Encoding"
    return response


def _link(url: str, rel: str, media_type: str | None = None) -> str:
    return f'<{url}>; rel="{rel}"' + (f'; type="{media_type}"' if media_type else "")


def _int_arg(name: str) -> int | None:
    raw = request.args.get(name)
    if raw is None:
        return None
    return whole_number(name, raw, least=0)


# --- the change feed --------------------------------------------------------------------------


@bp.route("/changes", methods=["GET", "HEAD"])
def changes() -> Response:
    """The change feed, or one page of it (?before=n / ?after=n)."""
    release = _release()
    index = history.load(release.path)
    iris = release.iris
    media_type = negotiate(request.headers.get("Accept"), FEED_TYPES)
    before, after = _int_arg("before"), _int_arg("after")
    etag, last_modified = _validators(index, "changes", request.query_string.decode(), media_type)
    content_type = harvest.AS_JSONLD_MEDIA_TYPE if media_type == JSONLD.media_type else media_type
    title = release.manifest.get("title", "")
    if media_type == HTML_MEDIA_TYPE and before is None and after is None:
        before = index.total + 1  # people see the newest changes at once
    try:
        if before is None and after is None:
            doc = harvest.feed_collection(index, iris, title)
        else:
            doc = harvest.feed_page(index, iris, _settings()["page_size"], before, after)
    except harvest.PageError as exc:
        raise HttpError(400, str(exc)) from exc
    links = [
        _link(doc[rel], name)
        for rel, name in (("first", "first"), ("last", "last"), ("next", "next"), ("prev", "prev"))
        if rel in doc
    ]
    if "partOf" in doc:
        links.append(_link(doc["partOf"], "collection"))
    if media_type == HTML_MEDIA_TYPE:
        return _answer(
            lambda: render_template(
                "harvest/changes.html",
                doc=doc,
                collection=harvest.feed_collection(index, iris, title),
                site_title=title or "kgpub",
                iris=iris,
            ),
            "text/html; charset=utf-8",
            etag,
            last_modified,
            links,
        )
    return _answer(
        lambda: json.dumps(doc, ensure_ascii=False, indent=1) + "\n",
        content_type,
        etag,
        last_modified,
        links,
    )


# --- paged collections ------------------------------------------------------------------------


def _page_media_type() -> str:
    """?format= (a key, suffix or media type, or html) overrides Accept (server/conneg.py)."""
    key = request.args.get("format")
    if key is not None:
        if key in ("html", HTML_SUFFIX.lstrip("."), HTML_MEDIA_TYPE):
            return HTML_MEDIA_TYPE
        fmt = by_key(key)
        if fmt is None:
            raise HttpError(
                404,
                f"no representation {key!r}; use one of "
                + ", ".join([f.key for f in RDF_FORMATS] + ["html"]),
            )
        return fmt.media_type
    return negotiate(request.headers.get("Accept"), PAGE_TYPES)


@bp.route("/collections/entries", methods=["GET", "HEAD"])
def entries_collection() -> Response:
    """All published entries, one page."""
    release = _release()
    return _collection(release, history.load(release.path), None)


@bp.route("/collections/category/<notation>", methods=["GET", "HEAD"])
def category_collection(notation: str) -> Response:
    """The published entries of one category, one page."""
    release = _release()  # one release for the whole request, even if a build swaps meanwhile
    index = history.load(release.path)
    concept = next((iri for iri, c in index.categories.items() if c.notation == notation), None)
    if concept is None:
        raise HttpError(404, f"no category {notation!r}")
    return _collection(release, index, concept)


def _collection(release: Release, index: history.View, concept: str | None) -> Response:
    iris = release.iris
    media_type = _page_media_type()
    library = release.manifest.get("title", "the library")
    title = (
        f"Entries of {library}"
        if concept is None
        else f"Entries of {library} in {index.categories[concept].label}"
    )
    try:
        page = harvest.collection_page(
            index,
            iris,
            _settings()["page_size"],
            concept,
            after=request.args.get("after"),
            before=request.args.get("before"),
            page=request.args.get("page"),
            title=title,
        )
    except harvest.PageError as exc:
        raise HttpError(400, str(exc)) from exc
    etag, last_modified = _page_validators(index, page, media_type)
    links = [_link(page.first, "first"), _link(page.last, "last")]
    if page.next:
        links.append(_link(page.next, "next"))
    if page.previous:
        links.append(_link(page.previous, "prev"))
    links.append(_link(page.collection, "collection"))
    if media_type == HTML_MEDIA_TYPE:
        return _answer(
            lambda: _collection_html(page, index, release),
            "text/html; charset=utf-8",
            etag,
            last_modified,
            links,
        )
    fmt = next(f for f in RDF_FORMATS if f.media_type == media_type)
    triples = harvest.collection_triples(page, index)
    return _answer(
        lambda: _serialize(triples, fmt.key, iris),
        _content_type(media_type),
        etag,
        last_modified,
        links,
    )


def _page_validators(
    index: history.View, page: harvest.CollectionPage, media_type: str
) -> tuple[str, datetime | None]:
    """A weak ETag from what one page of a collection shows, and when that last changed: the
    title and label, who the members are (the count, the links to other pages), and the
    members it lists with their titles, times and categories (named in HTML only). A change
    to an entry that the page does not list leaves its validators as they were (RFC 9110
    §8.8.2, §8.8.3)."""
    states = index.entries_of(page.members)
    rows = [(iri, states[iri]) for iri in page.members]
    named = media_type == HTML_MEDIA_TYPE
    labels = sorted({c for _, s in rows for c in s.categories}) if named else []
    etag = make_etag(
        "collection",
        request.path,
        request.query_string.decode(),
        media_type,
        repr(page),
        [(iri, s.title, s.created, s.modified, s.categories) for iri, s in rows],
        [(c, index.categories[c].label) for c in labels if c in index.categories],
    )
    if not index.changed:
        return etag, None
    times = [index.title_changed, index.members_changed(page.category)]
    if page.category is not None:
        times.append(index.label_changed(page.category))
    times += (s.datestamp for _, s in rows)
    times += (index.label_changed(c) for c in labels)
    return etag, history.parse_time(max(times))


def _collection_html(page: harvest.CollectionPage, index: history.View, release: Release) -> str:
    states = index.entries_of(page.members)
    rows = [(iri, states[iri]) for iri in page.members]
    alternates = [
        (
            f.media_type,
            harvest.page_url(page.view.split("?")[0], **_query(page.view), format=f.key),
            f.label,
        )
        for f in RDF_FORMATS
    ]
    return render_template(
        "harvest/collection.html",
        page=page,
        rows=rows,
        alternates=alternates,
        site_title=release.manifest.get("title", "kgpub"),
        iris=release.iris,
        categories=index.categories,
    )


def _query(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query))


def _content_type(media_type: str) -> str:
    return media_type + ("; charset=utf-8" if media_type.startswith("text/") else "")


def _serialize(triples: list[pyoxigraph.Triple], key: str, iris: Iris) -> bytes:
    fmt = by_key(key)
    assert fmt is not None
    if fmt is JSONLD:
        return jsonld.document(triples).encode("utf-8")
    prefixes = {**PREFIXES, "hydra": str(HYDRA), "entry": iris.base + "entry/"}
    data = pyoxigraph.serialize(triples, format=fmt.oxigraph, prefixes=prefixes)
    return data or b""


# --- OAI-PMH ----------------------------------------------------------------------------------


@bp.route("/oai", methods=["GET", "HEAD", "POST"])
def oai_pmh() -> Response:
    """OAI-PMH 2.0: arguments in the query (GET) or an urlencoded form (POST, §3.1.1.2)."""
    release = _release()
    index = history.load(release.path)
    iris = release.iris
    source = request.form if request.method == "POST" else request.args
    params = {name: source.getlist(name) for name in source}
    variant = json.dumps(sorted(params.items()))
    etag, last_modified = _validators(index, "oai", variant)
    reader = release.reader
    repo = oai.Repository(
        name=release.manifest.get("title", "kgpub library"),
        base_url=iris.oai,
        admin_email=_settings()["admin_email"],
        index=index,
        metadata=lambda iri: _metadata(reader, iri),
        page_size=_settings()["page_size"],
        library=iris.library,
    )
    return _answer(
        lambda: oai.respond(params, repo, datetime.now(UTC)),
        oai.MEDIA_TYPE + "; charset=utf-8",
        etag,
        last_modified,
        [],
    )


def _metadata(reader: Reader, iri: str) -> oai.Metadata:
    """What an oai_dc record needs beyond the history: one Reader call."""
    own = reader.triples(iri)

    def value(predicate: NamedNode) -> str:
        for triple in own:
            if triple.predicate == predicate and isinstance(triple.object, pyoxigraph.Literal):
                return triple.object.value
        return ""

    return oai.Metadata(value(_DESCRIPTION), value(_CREATED))


# --- removed entries: 410 Gone ---------------------------------------------------------------


@bp.app_errorhandler(EntryGone)
def gone(exc: EntryGone) -> Response:
    """The IRI of a removed entry: 410 with when it was removed, in the negotiated format."""
    suffix = PurePosixPath(request.path).suffix
    fmt = by_suffix(suffix)
    if fmt is not None:
        media_type = fmt.media_type
    elif suffix == HTML_SUFFIX:
        media_type = HTML_MEDIA_TYPE
    else:
        try:
            media_type = negotiate(request.headers.get("Accept"), GONE_TYPES)
        except NotAcceptable:  # the removal still has to be said
            media_type = "text/plain"
    message = str(exc)
    try:
        iris = _release().iris
        feed = iris.changes
    except PublicationError:
        iris, feed = None, ""
    if media_type == HTML_MEDIA_TYPE:
        body: str | bytes = render_template("harvest/gone.html", exc=exc, feed=feed)
    elif media_type == "application/json":
        body = (
            json.dumps(
                {
                    "status": 410,
                    "error": "Gone",
                    "message": message,
                    "iri": exc.iri,
                    "deleted": exc.deleted,
                },
                ensure_ascii=False,
            )
            + "\n"
        )
    elif media_type == "text/plain":
        body = f"410 Gone: {message}\n"
    else:
        rdf = next(f for f in RDF_FORMATS if f.media_type == media_type)
        triples = harvest.tombstone_triples(exc.iri, exc.title, exc.deleted)
        body = _serialize(triples, rdf.key, iris or Iris(exc.iri.rsplit("entry/", 1)[0]))
    response = Response(body, status=410, content_type=_content_type(media_type))
    response.headers["Vary"] = "Accept"
    response.headers["Access-Control-Allow-Origin"] = "*"
    if feed:
        response.headers.add("Link", _link(feed, FEED_REL, harvest.AS_MEDIA_TYPE))
    return response


# --- Link to the feed from the landing page and the dataset -----------------------------------


@bp.after_app_request
def link_feed(response: Response) -> Response:
    """Landing page, dataset and VoID: a Link header to the change feed."""
    if response.status_code >= 400 or request.blueprint == bp.name:
        return response
    path = request.path
    last = path.rsplit("/", 1)[-1]
    stem = path.rsplit(".", 1)[0] if "." in last else path
    # Checked before anything else: this runs after every request of the app.
    if stem not in _FEED_LINKED:
        return response
    try:
        iris = _release().iris
    except PublicationError:
        return response
    response.headers.add("Link", _link(iris.changes, FEED_REL, harvest.AS_MEDIA_TYPE))
    return response


def _paths(iris: Iris) -> frozenset[str]:
    return frozenset(
        "/" + (iris.local_path(iri) or "") for iri in (iris.base, iris.dataset, iris.void)
    )


_FEED_LINKED = _paths(Iris("http://any.example/"))  # local paths do not depend on the base
