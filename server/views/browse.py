"""Blueprint 'browse': the people's pages to walk the library by year, from the release's index.

  /years                          the years of the library, newest first, with their counts
  /years/<YYYY>                   the entries added that year, newest first, paged
  /category/<notation>/<YYYY>     the entries of one category added that year, paged
These are pages for people, not resources of the data: HTML only (406 for a client that takes
no HTML), each linking to the same list as data (the search with that year and category, in
JSON and RDF). A year is the year of the Added time as published (UK local time), the year
that begins the entry's IRI and that the search's year facet counts. Bodies are cached per
release like every other page.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Response, current_app, render_template, request

from graph import history
from graph import index as graph_index
from graph.errors import PublicationError
from graph.formats import HTML_MEDIA_TYPE
from graph.index import Index, SearchError
from graph.iris import Iris
from server.conneg import negotiate
from server.current import Release
from server.errors import HttpError
from server.params import whole_number
from server.representation import Representation, make_etag, respond

bp = Blueprint("browse", __name__)

_YEAR = re.compile(r"[0-9]{4}", re.ASCII)
HTML = HTML_MEDIA_TYPE + "; charset=utf-8"


def _release() -> Release:
    release: Release = current_app.extensions["kgpub"].get()
    return release


@bp.get("/years")
def years() -> Response:
    """Every year of the library with its number of entries."""
    release = _release()
    _accepts_html()

    def render() -> str:
        index, iris = _index(release), release.iris
        found = graph_index.list_years(index, iris.library, iris.entry_prefix)
        return render_template(
            "browse/years.html", years=found, iris=iris, href=_hrefs(release), **_common(release)
        )

    return _respond(release, ("years",), render)


@bp.get("/years/<year>")
def year(year: str) -> Response:
    """The entries added in one year, newest first."""
    return _year_page(year, None)


@bp.get("/category/<notation>/<year>")
def category_year(notation: str, year: str) -> Response:
    """The entries of one category added in one year, newest first."""
    return _year_page(year, notation)


def _accepts_html() -> None:
    """NotAcceptable (406) unless the client takes HTML."""
    negotiate(request.headers.get("Accept"), (HTML_MEDIA_TYPE,))


def _index(release: Release) -> Index:
    if release.index is None:
        raise PublicationError("this release has no index (built by an older kgpub: rebuild)")
    return release.index


def _year_page(raw_year: str, notation: str | None) -> Response:
    release = _release()
    iris = release.iris
    if _YEAR.fullmatch(raw_year) is None:
        raise HttpError(404, f"no page {request.path!r}: a year is four digits, as /years/2020")
    year = int(raw_year)
    index = _index(release)
    concept = None
    if notation is not None:
        try:
            concept = next((c for c in index.categories().values() if c.notation == notation), None)
        except PublicationError:
            concept = None
        if concept is None:
            raise HttpError(404, f"no category {notation!r} in this library")
    _accepts_html()
    raw_page = request.args.get("page")
    page = 1 if raw_page is None else whole_number("page", raw_page)
    list_iri = concept.iri if concept is not None else iris.library
    members = graph_index.YearMembers(index, list_iri, iris.entry_prefix, year)
    size = int(current_app.config["KGPUB"]["page_size"])
    total = len(members)
    if total == 0:
        where = f" in {concept.label}" if concept is not None else ""
        raise HttpError(404, f"no entry was added in {year}{where}")
    last = max(1, -(-total // size))
    if page > last:
        raise HttpError(404, f"the entries of {year} have {last} page(s), not {page}")

    def render() -> str:
        start = (page - 1) * size
        rows = graph_index.listed(index, members[start : start + size], iris.entry_prefix)
        here = iris.year(year) if concept is None else iris.category_year(concept.notation, year)
        href = _hrefs(release)
        others = graph_index.list_years(index, list_iri, iris.entry_prefix)
        categories = _year_categories(index, year) if concept is None else []
        search = [("year", str(year)), ("sort", "newest")]
        if concept is not None:
            search.insert(0, ("category", concept.notation))
        return render_template(
            "browse/year.html",
            year=year,
            concept=concept,
            rows=rows,
            total=total,
            page=page,
            last=last,
            start=start,
            others=others,
            categories=categories,
            iris=iris,
            href=href,
            page_url=lambda n: href(here) + (f"?page={n}" if n > 1 else ""),
            canonical=here + (f"?page={page}" if page > 1 else ""),
            search_url=release.base_path + "search?" + urlencode(search),
            search_data=release.base_path + "search.json?" + urlencode(search),
            **_common(release),
        )

    return _respond(release, ("year", year, concept.iri if concept else "", page), render)


def _year_categories(index: Index, year: int) -> list[tuple[str, str, int]]:
    """(notation, label, entries) of the categories with entries added in a year, by label:
    from each category's tally (a row per month), not by counting the year's entries."""
    try:
        concepts = index.categories()
        if all(index.tallies(iri) is not None for iri in concepts):
            out = []
            for c in concepts.values():
                n = sum(k for m, k in index.tallies(c.iri) or () if m[:4] == f"{year:04d}")
                if n:
                    out.append((c.notation, c.label, n))
            return out
        found = index.search(years=[year], size=1)  # an index without tallies
        return [(concepts[c.key].notation, c.label, c.count) for c in found.categories]
    except (SearchError, PublicationError):
        return []


def _common(release: Release) -> dict[str, Any]:
    return {"root": release.base_path, "site_title": release.manifest.get("title", "kgpub")}


def _hrefs(release: Release) -> Any:
    """IRI -> the path a person's click goes to (our IRIs under the base's path)."""
    iris: Iris = release.iris
    root = release.base_path

    def href(iri: str) -> str:
        local = iris.local_path(iri)
        return iri if local is None else root + local

    return href


def _respond(release: Release, key: tuple[object, ...], render: Any) -> Response:
    """The page from the release's cache, rendered once."""

    def compute() -> tuple[Representation, int]:
        body = render().encode("utf-8")
        changed = _changed(release)
        rep = Representation(body, HTML, make_etag("browse", *key, body), changed=changed)
        return rep, rep.size

    rep = release.cache.memo(("browse", *key), compute)
    return respond(rep, vary_accept=True)


def _changed(release: Release) -> str:
    """When the data last changed (the history), else the build time."""
    index = history.load(release.path)
    return index.changed if index.present and index.changed else release.built
