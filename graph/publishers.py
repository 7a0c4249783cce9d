"""Publishers named in entry titles, recognised with a curated table (data/publishers.csv).

A title names its publisher in a parenthesis ("… (NPCC)", "… (ADCS Discussion Paper)"),
in a part between dashes ("… – ICO") or as a possessive at its start ("Ofsted's review").
Only the table decides: a candidate that matches no row is never guessed into a publisher;
the title keeps it, and the build summary lists it (Recognised.candidates) so that a
maintainer can extend the table. Years and counts in parentheses ("(2018)", "(2)") are not
candidates. The table's format is documented in its own header.
"""

from __future__ import annotations

import csv
import filecmp
import functools
import hashlib
import json
import os
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from graph.errors import ListingError

TABLE = Path(__file__).resolve().parent.parent / "data" / "publishers.csv"
FILE = "publishers.json"  # in a release: the publishers found and their entries
_SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_PARENTHESIS = re.compile(r"\(([^()]{1,80})\)")
_DASH = re.compile(r"\s[–—-]\s")
_POSSESSIVE = re.compile(r"^(.{2,60}?)[’']s\s")
# Not a publisher: a year, a range of years, a date, a number.
_NOT_A_NAME = re.compile(r"^[\d\s/–.-]+$|^(?:[A-Z][a-z]+ )?\d{4}(?:/\d{2,4})?$")
_ACRONYM = re.compile(r"^[A-Z][A-Za-z]{1,7}$")


@dataclass(frozen=True)
class Publisher:
    """One row of the table."""

    id: str  # slug of its IRI
    name: str  # full name (skos:prefLabel)
    variants: tuple[str, ...]
    sameas: str = ""  # owl:sameAs, or ""


@dataclass(frozen=True)
class Recognised:
    """The publishers found in a set of titles, and the candidates the table lacks."""

    by_title: dict[str, tuple[str, ...]]  # title -> publisher ids (only titles with some)
    candidates: Counter[str] = field(default_factory=Counter)  # unmatched text -> titles


class Table:
    """The publishers table: find(title) -> ids, and the unmatched candidates."""

    def __init__(self, publishers: Sequence[Publisher], key: str = "") -> None:
        self.publishers = {p.id: p for p in publishers}
        # A digest of the table: a month rendered with another table is rendered again
        # (graph/convert.py records_digest).
        self.key = key
        self._exact: dict[str, str] = {}  # acronyms as written
        self._folded: dict[str, str] = {}  # names, case-folded
        for p in publishers:
            for variant in p.variants:
                if _ACRONYM.match(variant) and not variant.istitle():
                    self._exact[variant] = p.id
                else:
                    self._folded[_fold(variant)] = p.id

    def match(self, text: str) -> str | None:
        """The id of the publisher that text names exactly, or None."""
        text = text.strip()
        return self._exact.get(text) or self._folded.get(_fold(text))

    def _match_start(self, text: str) -> str | None:
        """The publisher named by text or by its first words (then more words follow)."""
        found = self.match(text)
        words = text.split()
        for cut in range(len(words) - 1, 0, -1):
            if found:
                break
            found = self.match(" ".join(words[:cut]))
        return found

    def find(self, title: str) -> tuple[tuple[str, ...], list[str]]:
        """The publishers a title names (table order of appearance in the title) and the
        candidates it holds that match no row."""
        if not may_name(title):
            return (), []
        found: list[str] = []
        unmatched: list[str] = []
        for m in _PARENTHESIS.finditer(title):
            inner = m.group(1).strip()
            pid = self._match_start(inner)
            if pid:
                found.append(pid)
            elif not _NOT_A_NAME.match(inner) and _is_candidate(inner):
                unmatched.append(inner)
        parts = _DASH.split(title)
        if len(parts) > 1:
            for part in parts:
                pid = self.match(part)
                if pid:
                    found.append(pid)
                elif _ACRONYM.match(part.strip()) and part.strip().isupper():
                    unmatched.append(part.strip())
        possessive = _POSSESSIVE.match(title)
        if possessive:
            pid = self.match(possessive.group(1))
            if pid:
                found.append(pid)
        return tuple(dict.fromkeys(found)), unmatched

    def recognise(self, titles: Iterable[str]) -> Recognised:
        """Find the publishers of every title."""
        by_title: dict[str, tuple[str, ...]] = {}
        candidates: Counter[str] = Counter()
        for title in titles:
            ids, unmatched = self.find(title)
            if ids:
                by_title[title] = ids
            candidates.update(unmatched)
        return Recognised(by_title, candidates)


def may_name(title: str) -> bool:
    """Whether a title has a parenthesis, a dash or a possessive at all (most have none):
    plain substring tests, ten times faster than the regular expressions."""
    head = title[:64]
    return (
        "(" in title
        or "–" in title
        or "—" in title
        or " - " in title
        or "'s " in head
        or "’s " in head
    )


def _fold(text: str) -> str:
    return " ".join(text.replace("’", "'").casefold().split())


def _is_candidate(text: str) -> bool:
    """A parenthesis that might name an organisation: it starts with a capital letter (not
    "(the department)", "(and associated …)") and is not quoted text."""
    return text[:1].isupper()


def default_table() -> Table:
    """The table of data/publishers.csv, read once per process and per change of the file."""
    try:
        stat = TABLE.stat()
    except OSError as exc:
        raise ListingError(str(TABLE), 0, f"cannot read the publishers table: {exc}") from exc
    return _read_cached(TABLE, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=4)
def _read_cached(path: Path, mtime: int, size: int) -> Table:
    return read_table(path)


def read_table(path: Path = TABLE) -> Table:
    """Read the publishers table; raise ListingError (file:line) for a bad row."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ListingError(str(path), 0, f"cannot read the publishers table: {exc}") from exc
    key = hashlib.sha256(text.encode("utf-8")).hexdigest()
    rows = [(n, line) for n, line in enumerate(text.splitlines(), start=1)]
    body = [(n, line) for n, line in rows if line.strip() and not line.startswith("#")]
    if not body:
        return Table([], key)
    header_line, header = body[0]
    reader = csv.reader([line for _, line in body])
    fields = next(reader)
    if fields != ["id", "name", "variants", "sameas"]:
        raise ListingError(
            str(path), header_line, f"expected the header id,name,variants,sameas, got {header!r}"
        )
    publishers: list[Publisher] = []
    seen_variants: dict[str, str] = {}
    for (line, _), row in zip(body[1:], reader, strict=True):
        if len(row) != 4:
            raise ListingError(str(path), line, f"expected 4 fields, got {len(row)}")
        pid, name, variants, sameas = (c.strip() for c in row)
        if not _SLUG.match(pid):
            raise ListingError(str(path), line, f"id {pid!r} is not a slug (a-z, 0-9, -)")
        if pid in {p.id for p in publishers}:
            raise ListingError(str(path), line, f"id {pid!r} appears twice")
        if not name:
            raise ListingError(str(path), line, "the name is empty")
        if sameas and not re.match(r"^https?://\S+$", sameas):
            raise ListingError(str(path), line, f"sameas {sameas!r} is not an http(s) IRI")
        names = tuple(v.strip() for v in variants.split("|") if v.strip())
        for variant in names:
            other = seen_variants.setdefault(_fold(variant), pid)
            if other != pid:
                raise ListingError(
                    str(path), line, f"variant {variant!r} already names publisher {other!r}"
                )
        publishers.append(Publisher(pid, name, names, sameas))
    return Table(publishers, key)


@dataclass(frozen=True)
class Found:
    """A publisher of a release: its row, and its entries' IRIs, newest first (from the
    index, a sequence read a page at a time: graph/index.py PublisherEntries)."""

    publisher: Publisher
    entries: Sequence[str]


@dataclass(frozen=True)
class Published:
    """The publishers of a release (its publishers.json) and each entry's."""

    publishers: dict[str, Found]  # id -> found
    of_entry: dict[str, tuple[str, ...]]  # entry IRI -> publisher ids


def same_as_before(
    months: Iterable[tuple[str, str, Mapping[str, tuple[str, ...]]]],
    before: Mapping[str, Any],
) -> bool:
    """Whether a build's months, (name, digest, publishers of its entries) each, recognise the
    publishers the current release's did (before: its dumps index's "months", graph/dumps.py):
    the same months, each with the same publishers, and one at least with the same digest,
    which covers the publishers table (its key): then publishers.json is the same file. A
    month of the same digest has the same publishers (taken from before): only the others are
    compared."""
    count = hit = 0
    for name, digest, publishers in months:
        count += 1
        found = before.get(name)
        if not isinstance(found, dict):
            return False
        if found.get("digest") == digest:
            hit += 1
        elif found.get("publishers") != publishers:
            return False
    return hit > 0 and count == len(before)


def write_release(
    work: Path,
    of_entry: Mapping[str, tuple[str, ...]],
    table: Mapping[str, Publisher],
    previous: Path | None = None,
    unchanged: bool = False,
) -> None:
    """Write work/publishers.json: the publishers of a release's entries (entry IRI -> ids,
    as graph/convert.py recognised them; IRIs sort oldest first, as they begin with the Added
    time) and their entries, newest first. When the previous release's file holds the same
    bytes, it is hard-linked instead (a release never changes its files): most rebuilds
    change no publisher, and the file is 4 MB at 100k entries. unchanged: the caller knows
    they are the same (same_as_before): linked without being written and compared (0.6-0.8
    s of a one-change rebuild at 1M entries, 44 MB)."""
    target = work / FILE
    if unchanged and previous is not None:
        try:
            os.link(previous / FILE, target)
            return
        except OSError:
            pass  # none, another file system, too many links: written
    temporary = work / f".{FILE}.{os.getpid()}"
    with temporary.open("wb") as out:
        for piece in _pieces(of_entry, table):
            out.write(piece.encode("utf-8"))
    if previous is not None and _same_file(temporary, previous / FILE):
        try:
            os.link(previous / FILE, target)
            temporary.unlink()
            return
        except OSError:
            pass  # another file system, too many links: written
    os.replace(temporary, target)


def _same_file(path: Path, other: Path) -> bool:
    """Whether two files hold the same bytes (the one just written is in the page cache)."""
    try:
        return filecmp.cmp(path, other, shallow=False)
    except OSError:
        return False


ENTRIES_PIECE = 50_000  # entries per piece of publishers.json's text


def _pieces(
    of_entry: Mapping[str, tuple[str, ...]], table: Mapping[str, Publisher]
) -> Iterator[str]:
    """The text of publishers.json, as json.dumps writes the whole document (no indent: json's
    encoder in C), in pieces: at 1M entries the document and its text made at once held about
    300 MB, at the top of a full build's peak."""
    entries: dict[str, list[str]] = {}
    for iri in sorted(of_entry, reverse=True):
        for pid in of_entry[iri]:
            entries.setdefault(pid, []).append(iri)
    publishers = {
        pid: {"name": table[pid].name, "sameas": table[pid].sameas, "entries": entries[pid]}
        for pid in sorted(entries)
    }
    yield '{"publishers": ' + json.dumps(publishers, ensure_ascii=False) + ', "entries": {'
    del entries, publishers
    items = sorted(of_entry.items())  # (a dict comprehension of lookups was twice as slow)
    for at in range(0, len(items), ENTRIES_PIECE):
        piece = dict(items[at : at + ENTRIES_PIECE])  # the ids are tuples: JSON arrays
        text = json.dumps(piece, ensure_ascii=False)[1:-1]
        yield text if at == 0 else ", " + text
    yield "}}\n"


def read_release(release: Path) -> Published | None:
    """A release's publishers, or None when it was built before them."""
    try:
        doc = json.loads((release / FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return _published(doc)


def _published(doc: dict[str, Any]) -> Published:
    """The publishers of a release from its publishers.json document."""
    publishers = {
        pid: Found(Publisher(pid, p["name"], (), p["sameas"]), tuple(p["entries"]))
        for pid, p in doc["publishers"].items()
    }
    of_entry = {iri: tuple(ids) for iri, ids in doc["entries"].items()}
    return Published(publishers, of_entry)
