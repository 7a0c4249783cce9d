"""Blueprint 'pages': what crawlers read first, robots.txt and sitemap.xml.

The sitemap lists every HTML page by its canonical IRI (a browser or crawler asking for
text/html gets the page there): the landing page, the library, the scheme, the dataset, each
category and each entry, with lastmod from the publication's history when it has one (when
what the page shows last changed: graph/history.py Index), else the build time. Past 50,000
URLs (the sitemaps.org limit) /sitemap.xml is a sitemap index of /sitemap-<n>.xml files.
Last-Modified: the sitemaps, the last change of the data; robots.txt, of the base IRI.
"""

from __future__ import annotations

from xml.sax.saxutils import escape

from flask import Blueprint, Response, current_app

from graph import history
from graph.errors import PublicationError
from server.current import Release
from server.errors import HttpError
from server.representation import Representation, make_etag, respond

bp = Blueprint("pages", __name__)

SITEMAP_MAX = 50_000
XML = "application/xml; charset=utf-8"
SITEMAP_NS = "http://www.sitemaps.org/schemas/sitemap/0.9"


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

    def compute() -> tuple[Representation, int]:
        urls = _urls(release)
        if len(urls) <= SITEMAP_MAX:
            body = _urlset(urls)
        else:
            parts = -(-len(urls) // SITEMAP_MAX)
            lines = [f'<?xml version="1.0" encoding="UTF-8"?>\n<sitemapindex xmlns="{SITEMAP_NS}">']
            for n in range(1, parts + 1):
                loc = escape(f"{release.iris.base}sitemap-{n}.xml")
                lines.append(
                    f"<sitemap><loc>{loc}</loc><lastmod>{_header(release)}</lastmod></sitemap>"
                )
            lines.append("</sitemapindex>\n")
            body = "\n".join(lines)
        data = body.encode("utf-8")
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

    def compute() -> tuple[Representation | None, int]:
        urls = _urls(release)
        chunk = urls[(part - 1) * SITEMAP_MAX : part * SITEMAP_MAX]
        if part < 1 or not chunk or len(urls) <= SITEMAP_MAX:
            return None, 0
        data = _urlset(chunk).encode("utf-8")
        rep = Representation(data, XML, make_etag("sitemap", part, data), changed=_header(release))
        return rep, rep.size

    rep = release.cache.memo(("sitemap", part), compute)
    if rep is None:
        raise HttpError(404, f"no sitemap part {part}; see {release.iris.base}sitemap.xml")
    return respond(rep, vary_accept=False)


def _header(release: Release, what: str = "data") -> str:
    """When the data ('data') or the base IRI ('base') last changed (the history), or the
    build time. Read from entries.json's header once per release and worker: robots.txt need
    not load every entry's state (history.load does, 0.5 s at 100k entries)."""

    def compute() -> tuple[dict[str, str], int]:
        try:
            state = history.read_state(release.path)
        except (PublicationError, OSError):
            state = None
        data = (state.changed if state is not None else "") or release.built
        base = state.since.base[1] if state is not None and state.since else data
        return {"data": data, "base": base}, 128

    return release.cache.memo(("history-header",), compute)[what]


def _urls(release: Release) -> list[tuple[str, str]]:
    """(canonical IRI, lastmod) of every HTML page, cached per release: when what the page
    shows last changed, as its Last-Modified says (server/views/resources.py), but for the
    code's time."""

    def compute() -> tuple[list[tuple[str, str]], int]:
        iris, built = release.iris, release.built
        page_size = int(current_app.config["KGPUB"]["page_size"])
        try:
            changed = history.lastmod(release.path, page_size)
            scheme = history.load(release.path).scheme_changed(counts=True)
        except (PublicationError, OSError):
            changed, scheme = {}, ""
        last = changed.get("", built) or built
        concepts = release.concepts()
        # The landing page shows counts and the dumps; the dataset's description changes with
        # its data (graph/describe.py modified).
        urls = [
            (iris.base, last),
            (iris.library, last),
            (iris.scheme, scheme or last),
            (iris.dataset, last),
        ]
        urls += [(c, changed.get(c, last)) for c in concepts]
        urls += [(e, changed.get(e, last)) for e in release.members(iris.library, "library")]
        return urls, sum(len(u) + 80 for u, _ in urls)

    return release.cache.memo(("sitemap-urls",), compute)


def _urlset(urls: list[tuple[str, str]]) -> str:
    lines = [f'<?xml version="1.0" encoding="UTF-8"?>\n<urlset xmlns="{SITEMAP_NS}">']
    lines += [f"<url><loc>{escape(u)}</loc><lastmod>{m}</lastmod></url>" for u, m in urls]
    lines.append("</urlset>\n")
    return "\n".join(lines)
