"""Sitemaps (sitemaps.org protocol 0.9) of a release, written at publication time as files.

The sitemap lists every HTML page by its canonical IRI: the landing page, the library, the
scheme, the dataset, each category and each entry (newest first), with lastmod when what the
page shows last changed (graph/history.py View), else the build time. Past MAX URLs (10,000,
a fifth of the protocol's limit) sitemap.xml is a sitemap index of sitemap-<n>.xml parts,
counted from the end of the list (part_range): part 1 holds the oldest entries, the last part
the pages before the entries and the newest ones, so that an entry added as the newest moves
no other part (counted from the start, each addition moved every part's first and last entry,
and a one-entry rebuild at 1M entries wrote all 100 parts again: 6.6 s).

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
from graph.ledger import MONTH_IDS, Ledger, first_id, open_ledger

# URLs of one sitemap file. sitemaps.org allows 50,000; parts of 10,000 are what a rebuild
# writes again for a changed month (and the first part, whose pages before the entries show
# the last change): at 100k entries a one-change rebuild wrote 2 parts of 50,000 URLs, 18 MB
# with their gzip; now 2 of 10,000, about 3.6 MB. A crawler reads a few more files.
MAX = 10_000
PAGE_SIZE = 100  # the server's default --page-size (server/config.py): what the files assume
FOLDER = "sitemap"
MANIFEST = "sitemap.json"
NAME = "sitemap.xml"
NS = "http://www.sitemaps.org/schemas/sitemap/0.9"
GZIP_LEVEL = 6


def part_name(n: int) -> str:
    """The file name of part n (1-based) of a sitemap index."""
    return f"sitemap-{n}.xml"


def part_range(total: int, n: int, size: int) -> tuple[int, int]:
    """The places [start, end) in the sitemap's list of total URLs (the pages before the
    entries, then the entries newest first) of part n (1-based) of parts of size URLs, counted
    from the end of the list: part 1 is the last size URLs, the last part what is left at the
    start (it may be shorter)."""
    end = total - (n - 1) * size
    return max(0, end - size), end


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
    view: Ledger,
    iris: Iris,
    concepts: list[str],
    built: str,
    previous: Path | None = None,
) -> None:
    """Write release/sitemap/: sitemap.xml (and its parts past MAX URLs) with their gzip and
    sitemap.json. A part is the previous release's file, linked, when it covers the same
    entries (the same first and last ids), none of whose months changed, with the same times
    of the title and labels (and, for the first, the same pages before the entries); else,
    or when its bytes turn out the same, it is written (only its entries are read)."""
    folder = release / FOLDER
    old = read_manifest(previous) if previous is not None else None
    if old is None or (old.get("max"), old.get("page_size")) != (MAX, PAGE_SIZE):
        old = {"files": {}, "parts": {}}
    changed = _changed_months(view, previous)
    head = fixed(view, iris, concepts, built, PAGE_SIZE)
    context = _digest([view.title_changed, sorted(view.since.labels.items()) if view.since else []])
    files: dict[str, str] = {}
    parts_doc: dict[str, list[Any]] = {}

    def put(name: str, data: bytes) -> None:
        digest = hashlib.sha1(data).hexdigest()
        files[name] = digest
        if (
            previous is not None
            and old["files"].get(name) == digest
            and _link(previous, folder, name)
        ):
            return
        (folder / name).write_bytes(data)
        (folder / (name + ".gz")).write_bytes(gzip.compress(data, GZIP_LEVEL, mtime=0))

    try:
        folder.mkdir()
        count = view.live_count()
        total = len(head) + count
        if total <= MAX:
            put(NAME, urlset(itertools.chain(head, view.live_newest())))
        else:
            parts = -(-total // MAX)
            ranges = [part_range(total, n, MAX) for n in range(1, parts + 1)]
            # Each part's entries: from place a to place b - 1 of the published, newest first.
            cuts = [(max(0, lo - len(head)), max(0, hi - len(head))) for lo, hi in ranges]
            places = sorted({p for a, b in cuts if a < b for p in (a, b - 1)})
            id_at = dict(zip(places, view.live_at(places), strict=True))
            for n, ((a, b), (lo, hi)) in enumerate(zip(cuts, ranges, strict=True), start=1):
                shown = [id_at[a], id_at[b - 1]] if a < b else []
                first = head[lo:hi]
                key = [shown[0], shown[-1], context, _digest(first)] if shown else None
                name = part_name(n)
                parts_doc[name] = key or []
                reusable = (
                    key is not None
                    and previous is not None
                    and old.get("parts", {}).get(name) == key
                    and changed is not None
                    and not any(shown[-1] < high and low <= shown[0] for low, high in changed)
                    and _link(previous, folder, name)
                )
                if reusable:
                    files[name] = old["files"][name]
                    continue
                rows = view.live_between(shown[0], shown[-1]) if shown else iter(())
                put(name, urlset(itertools.chain(first, rows)))
            put(NAME, sitemap_index(iris, parts, (view.changed if view.present else "") or built))
        doc = {"max": MAX, "page_size": PAGE_SIZE, "files": files, "parts": parts_doc}
        (folder / MANIFEST).write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    except OSError as exc:
        raise PublicationError(f"{folder}: cannot write the sitemaps: {exc}") from exc


def _digest(value: object) -> str:
    return hashlib.sha1(json.dumps(value, ensure_ascii=False).encode("utf-8")).hexdigest()


def _link(previous: Path, folder: Path, name: str) -> bool:
    """The previous release's file and its gzip linked into folder (releases never change
    once written); False when they cannot be."""
    try:
        os.link(previous / FOLDER / name, folder / name)
        os.link(previous / FOLDER / (name + ".gz"), folder / (name + ".gz"))
        return True
    except OSError:
        (folder / name).unlink(missing_ok=True)
        return False


def _changed_months(view: Ledger, previous: Path | None) -> list[tuple[int, int]] | None:
    """The id ranges of the months whose rows differ from the previous release's index, or
    None when there is nothing to compare with."""
    if previous is None:
        return None
    before = open_ledger(previous)
    if before is None:
        return None
    old, new = before.month_digests(), view.month_digests()
    names = {n for n in old.keys() | new.keys() if n and old.get(n) != new.get(n)}
    return [(first_id(n), first_id(n) + MONTH_IDS) for n in names]


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
    view = open_ledger(release)
    if view is not None:
        write_files(release, view, iris, concepts, built, previous)
