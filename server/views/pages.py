"""Blueprint 'pages': what crawlers read first, robots.txt and sitemap.xml.

The sitemap lists every HTML page by its canonical IRI (a browser or crawler asking for
text/html gets the page there): the landing page, the library, the scheme, the dataset, each
category and each entry, with lastmod from the publication's history when it has one (when
what the page shows last changed: graph/history.py View), else the build time. Past 50,000
URLs (the sitemaps.org limit) /sitemap.xml is a sitemap index of /sitemap-<n>.xml files.
The build writes them as files (graph/sitemap.py), served as they are, with their gzip; for
another page size or limit they are made here from the index, a part at a time.
Last-Modified: the sitemaps, the last change of the data; robots.txt, of the base IRI.
"""

from __future__ import annotations

import itertools
from typing import Any

from flask import Blueprint, Response, current_app, request

from graph import history
from graph import sitemap as sitemaps
from graph.errors import PublicationError
from server.current import Release
from server.errors import HttpError
from server.representation import (
    COMPRESS_MIN,
    Representation,
    accepts_gzip,
    make_etag,
    respond,
)

bp = Blueprint("pages", __name__)

SITEMAP_MAX = sitemaps.MAX  # a test lowers it: the files then no longer serve
XML = "application/xml; charset=utf-8"


def _release() -> Release:
    release: Release = current_app.extensions["kgpub"].get()
    return release


@bp.get("/robots.txt")
def robots() -> Response:
    """Crawlers welcome, except on the SPARQL endpoint (each query costs the server)."""
    release = _release()

    def compute() -> tuple[Representation, int]:
        root = release.base_path
        body = (
            "User-agent: *\n"
            f"Disallow: {root}sparql\n"
            f"Allow: {root}\n"
            f"Sitemap: {release.iris.base}sitemap.xml\n"
        ).encode()
        # Its text names the base IRI and nothing else of the data.
        changed = _header(release, "base")
        rep = Representation(
            body, "text/plain; charset=utf-8", make_etag("robots", body), changed=changed
        )
        return rep, rep.size

    rep = release.cache.memo(("robots",), compute)
    return respond(rep, vary_accept=False)


@bp.get("/sitemap.xml")
def sitemap() -> Response:
    """The sitemap, or a sitemap index when there are more than SITEMAP_MAX pages."""
    release = _release()
    if _files(release) is not None:
        return _send_file(release, sitemaps.NAME, "sitemap")

    def compute() -> tuple[Representation, int]:
        total = _count(release)
        if total <= SITEMAP_MAX:
            data = sitemaps.urlset(_urls(release, 0, total))
        else:
            parts = -(-total // SITEMAP_MAX)
            data = sitemaps.sitemap_index(release.iris, parts, _header(release))
        rep = Representation(data, XML, make_etag("sitemap", data), changed=_header(release))
        return rep, rep.size

    # The bytes decide the entity tag, the history the time: a rebuild of the same data
    # answers 304 to a crawler that comes back (RFC 9110 §13.1).
    rep = release.cache.memo(("sitemap",), compute)
    return respond(rep, vary_accept=False)


@bp.get("/sitemap-<int:part>.xml")
def sitemap_part(part: int) -> Response:
    """One part of a sitemap index."""
    release = _release()
    files = _files(release)
    if files is not None:
        if sitemaps.part_name(part) not in files:
            raise HttpError(404, f"no sitemap part {part}; see {release.iris.base}sitemap.xml")
        return _send_file(release, sitemaps.part_name(part), "sitemap", part)

    def compute() -> tuple[Representation | None, int]:
        total = _count(release)
        start, end = sitemaps.part_range(total, part, SITEMAP_MAX)
        if part < 1 or end <= 0 or total <= SITEMAP_MAX:
            return None, 0
        data = sitemaps.urlset(_urls(release, start, end))
        rep = Representation(data, XML, make_etag("sitemap", part, data), changed=_header(release))
        return rep, rep.size

    rep = release.cache.memo(("sitemap", part), compute)
    if rep is None:
        raise HttpError(404, f"no sitemap part {part}; see {release.iris.base}sitemap.xml")
    return respond(rep, vary_accept=False)


def _files(release: Release) -> dict[str, str] | None:
    """The sitemap files the build wrote (name -> SHA-1 of its bytes), when they were made
    for this server's page size and limit (graph/sitemap.py); else None."""

    def compute() -> tuple[dict[str, Any] | None, int]:
        return sitemaps.read_manifest(release.path), 4096

    doc = release.cache.memo(("sitemap-files",), compute)
    page_size = int(current_app.config["KGPUB"]["page_size"])
    if doc is None or (doc.get("max"), doc.get("page_size")) != (SITEMAP_MAX, page_size):
        return None
    files: dict[str, str] = doc["files"]
    return files


def _send_file(release: Release, name: str, *tag: object) -> Response:
    """A sitemap file as the build wrote it, with its gzip when the client takes it: the
    headers and validators of the same document made here (never cached in memory: a part is
    megabytes, and the kernel's page cache keeps it for every worker)."""
    files = _files(release) or {}
    folder = release.path / sitemaps.FOLDER
    try:
        data = (folder / name).read_bytes()
        rep = Representation(data, XML, make_etag(*tag, files[name]), changed=_header(release))
        if len(data) >= COMPRESS_MIN and accepts_gzip(request.headers.get("Accept-Encoding", "")):
            rep._gzipped = (folder / (name + ".gz")).read_bytes()
    except OSError as exc:
        raise PublicationError(f"{folder / name}: cannot read the sitemap: {exc}") from exc
    return respond(rep, vary_accept=False)


def _header(release: Release, what: str = "data") -> str:
    """When the data ('data') or the base IRI ('base') last changed (the history), or the
    build time. Read from entries.json's header once per release and worker."""

    def compute() -> tuple[dict[str, str], int]:
        try:
            state = history.read_state(release.path)
        except (PublicationError, OSError):
            state = None
        data = (state.changed if state is not None else "") or release.built
        base = state.since.base[1] if state is not None and state.since else data
        return {"data": data, "base": base}, 128

    return release.cache.memo(("history-header",), compute)[what]


def _view(release: Release) -> history.View | None:
    try:
        return history.load(release.path)
    except (PublicationError, OSError):
        return None


def _count(release: Release) -> int:
    """How many URLs the sitemap has: four pages, the categories, the entries."""
    library = release.members(release.iris.library, "library")
    return 4 + len(release.concepts()) + len(library)


def _urls(release: Release, start: int, stop: int) -> list[tuple[str, str]]:
    """(canonical IRI, lastmod) of the HTML pages at positions start to stop: when what the
    page shows last changed, as its Last-Modified says (server/views/resources.py), but for
    the code's time. Only the entries of that part are read."""
    iris, built = release.iris, release.built
    page_size = int(current_app.config["KGPUB"]["page_size"])
    view = _view(release)
    head = sitemaps.fixed(view, iris, release.concepts(), built, page_size)
    library = release.members(iris.library, "library")
    offset = max(0, start - len(head))

    def members(skip: int) -> list[str]:
        return list(library[skip:])

    rest = sitemaps.entries(view, members, built, offset)
    urls = itertools.chain(head[start:] if start < len(head) else [], rest)
    return list(itertools.islice(urls, stop - start))
