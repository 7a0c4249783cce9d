"""Sitemaps (sitemaps.org protocol 0.9) of a release, written at publication time as files.

The sitemap lists every HTML page by its canonical IRI: the landing page, the library, the
scheme, the dataset, each category and each entry (newest first), with lastmod when what the
page shows last changed (graph/history.py View), else the build time. Past MAX URLs (the
protocol's limit) sitemap.xml is a sitemap index of sitemap-<n>.xml parts.

A build writes them into the release's sitemap/ folder, each with its gzip (level 6, mtime 0:
the bytes the server would make), and sitemap.json: the limit and the page size they were
made for (a category's lastmod is that of its first page, so it depends on the page size) and
the SHA-1 of each file's bytes, from which the server derives its entity tags without reading
them. A part whose bytes equal the previous release's is that file, hard-linked. The server
serves these files as they are; for another page size or limit it makes the same documents
from the index, a part at a time (the same functions below).
"""

from __future__ import annotations

import gzip
import hashlib
import itertools
import json
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from graph.errors import PublicationError
from graph.history import View
from graph.iris import Iris

MAX = 50_000  # URLs of one sitemap file (sitemaps.org)
PAGE_SIZE = 100  # the server's default --page-size (server/config.py): what the files assume
FOLDER = "sitemap"
MANIFEST = "sitemap.json"
NAME = "sitemap.xml"
NS = "http://www.sitemaps.org/schemas/sitemap/0.9"
GZIP_LEVEL = 6


def part_name(n: int) -> str:
    """The file name of part n (1-based) of a sitemap index."""
    return f"sitemap-{n}.xml"


def fixed(
    view: View | None, iris: Iris, concepts: Iterable[str], built: str, page_size: int
) -> list[tuple[str, str]]:
    """(IRI, lastmod) of the pages before the entries: the landing page, the library, the
    scheme, the dataset (the landing page shows counts and the dumps; the dataset's
    description changes with its data), then each category (its first page's lastmod)."""
    present = view is not None and view.present
    last = (view.changed if view is not None and present else "") or built
    scheme = view.scheme_changed(counts=True) if view is not None and present else ""
    out = [
        (iris.base, last),
        (iris.library, last),
        (iris.scheme, scheme or last),
        (iris.dataset, last),
    ]
    for concept in concepts:
        lastmod = last
        if view is not None and present and concept in view.categories:
            shown = view.newest_members(concept, page_size)
            if shown:
                lastmod = view.list_changed(concept, shown)
        out.append((concept, lastmod))
    return out


def entries(
    view: View | None, members: Callable[[int], Iterable[str]], built: str, offset: int = 0
) -> Iterator[tuple[str, str]]:
    """(IRI, lastmod) of every published entry newest first, from offset on: from the history
    when there is one, else the members (from an offset) with the build time."""
    if view is not None and view.present:
        yield from view.live_newest(offset)
        return
    last = (view.changed if view is not None else "") or built
    for iri in members(offset):
        yield iri, last


def urlset(urls: Iterable[tuple[str, str]]) -> bytes:
    """A sitemap document of these URLs."""
    lines = [f'<?xml version="1.0" encoding="UTF-8"?>\n<urlset xmlns="{NS}">']
    lines += [f"<url><loc>{escape(u)}</loc><lastmod>{m}</lastmod></url>" for u, m in urls]
    lines.append("</urlset>\n")
    return "\n".join(lines).encode("utf-8")


def sitemap_index(iris: Iris, parts: int, lastmod: str) -> bytes:
    """A sitemap index of parts sitemap-1.xml ... sitemap-<parts>.xml."""
    lines = [f'<?xml version="1.0" encoding="UTF-8"?>\n<sitemapindex xmlns="{NS}">']
    for n in range(1, parts + 1):
        loc = escape(f"{iris.base}{part_name(n)}")
        lines.append(f"<sitemap><loc>{loc}</loc><lastmod>{lastmod}</lastmod></sitemap>")
    lines.append("</sitemapindex>\n")
    return "\n".join(lines).encode("utf-8")


def write_files(
    release: Path,
    view: View,
    iris: Iris,
    concepts: list[str],
    built: str,
    count: int,
    previous: Path | None = None,
) -> None:
    """Write release/sitemap/: sitemap.xml (and its parts past MAX URLs) for count published
    entries, with their gzip and sitemap.json; a file whose bytes the previous release's
    sitemap/ has already is linked."""
    folder = release / FOLDER
    old = read_manifest(previous) if previous is not None else None
    reusable = (
        old["files"]
        if old is not None and (old["max"], old["page_size"]) == (MAX, PAGE_SIZE)
        else {}
    )
    files: dict[str, str] = {}

    def put(name: str, data: bytes) -> None:
        digest = hashlib.sha1(data).hexdigest()
        files[name] = digest
        target = folder / name
        if previous is not None and reusable.get(name) == digest:
            try:  # releases never change once written
                os.link(previous / FOLDER / name, target)
                os.link(previous / FOLDER / (name + ".gz"), folder / (name + ".gz"))
                return
            except OSError:
                target.unlink(missing_ok=True)
        target.write_bytes(data)
        (folder / (name + ".gz")).write_bytes(gzip.compress(data, GZIP_LEVEL, mtime=0))

    try:
        folder.mkdir()
        head = fixed(view, iris, concepts, built, PAGE_SIZE)
        total = len(head) + count
        urls = itertools.chain(head, entries(view, lambda _: (), built))
        if total <= MAX:
            put(NAME, urlset(urls))
        else:
            parts = -(-total // MAX)
            for n in range(1, parts + 1):
                put(part_name(n), urlset(itertools.islice(urls, MAX)))
            put(NAME, sitemap_index(iris, parts, (view.changed if view.present else "") or built))
        doc = {"max": MAX, "page_size": PAGE_SIZE, "files": files}
        (folder / MANIFEST).write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    except OSError as exc:
        raise PublicationError(f"{folder}: cannot write the sitemaps: {exc}") from exc


def read_manifest(release: Path) -> dict[str, Any] | None:
    """A release's sitemap.json, or None when it has none (or an unreadable one)."""
    try:
        doc = json.loads((release / FOLDER / MANIFEST).read_bytes())
        if isinstance(doc, dict) and isinstance(doc.get("files"), dict):
            return doc
    except (OSError, ValueError):
        pass
    return None


def write_release_sitemaps(
    release: Path, iris: Iris, built: str, concepts: list[str], previous: Path | None
) -> None:
    """The sitemaps of a release being built, from its index and history (written already);
    none when its index does not carry the history (the server then makes them)."""
    from graph.ledger import open_ledger  # it reads the index: graph/index.py imports this

    view = open_ledger(release)
    if view is None:
        return
    count = len(view.index.members(iris.library))
    write_files(release, view, iris, concepts, built, count, previous)
