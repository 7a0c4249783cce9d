"""The release's on-disk index (index.sqlite): the lists pages show, and the library's search.

Written at publication time and never changed once its release is published, it answers
what serving asks of long lists without holding them in a worker: the entries of a category
or of the library newest first, a page at a time (LIMIT/OFFSET on a covering index), their
counts, the concepts; and full-text searches over titles and descriptions with facets
(categories, publishers and years), matched and paged in SQLite, counted with numpy. Every
worker opens it read-only and immutable (no locks, no journal), so the kernel's page cache
is the one copy all workers share; whichever store holds the graph (graph/store), the index
answers the same. Entry IRIs start with their Added time (entry/YYYY-MM-DD-HHMM-...), so
descending IRI order is newest first and stable, as graph/store/oxigraph.py orders members.

Tables:
  meta      version, base IRI and a digest of this module: what a later build checks before
            it takes this file as the start of its own
  concept   id, IRI, label, notation, number of entries
  member    (list, entry IRI): the library's and each concept's entries
  entry     id, IRI, year, created, modified: narrow, so that the rows of thousands of hits
            stay in a few pages. The id is the entry's month, then its place in the month
            (_month_id): ids follow the IRIs, so newest first is descending id, FTS5's own
            order, and a month's rows are one id range
  document  the same id, title, description and the entry's facet tokens (its categories,
            publishers and year): the text FTS5 indexes (external content, stored once)
            and snippets quote
  subject   (entry id, concept id): the categories of the hits, counted for the facet
  issued    (entry id, publisher id): the publishers of the hits (graph/publishers.py), counted
            for the facet; written month by month with the entries, as subject is
  year      entries per year (the facet of the empty search)
  month     'YYYY-MM' -> a digest of its entries as indexed (records and dcterms:modified)
  publisher, published   the release's publishers.json (graph/publishers.py): each publisher
            named in titles, and (entry IRI, rank, publisher id): an entry's publishers by IRI,
            a publisher's entries by the second index; publishers holds the file's digest, so
            a rebuild writes them again only when the file changed
  tally     (list, 'YYYY-MM') -> entries of that list in that month: a page of a list, its
            years and a year's length are found from these few rows (a list's months are
            one range of member each), never by counting off the rows before them
  facet     a row per month (its number, id >> 20): the categories of its entries as one
            64-bit mask each (bit = concept id), and their publishers as a mask each over
            the month's own list of publisher ids (JSON); NULL where a month has a concept id
            or publishers past 64. A word search counts its facets from these with numpy over
            the matched ids (_FacetRows), as the meaning search does with its masks, instead
            of joining subject and issued to every match (4 s of CPU at 1M for two common
            words, 1.1 s of it in these joins at 100k). The build also writes these rows as
            arrays in index.facets beside the index (write_facets), which every worker maps:
            one copy in the page cache, where each worker read its own (20 MB at 1M)
  search    FTS5 over document, tokenizer "porter unicode61 remove_diacritics 2": case- and
            accent-insensitive ("resume" finds "résumé"), English stems ("exploit" finds
            "exploitation"); a filter by category, publisher or year is one more token to
            intersect
  titles    FTS5 over document's titles alone (same tokenizer): the first tier of relevance
            (_ranked), a few thousand title matches where search has hundreds of thousands;
            2.8 MB at 100k entries (search_data: 24 MB). An index written before it ranks by
            BM25 of every match, as it did
  term      every term of search's index and how many entries hold it, as FTS5's fts5vocab
            'row' lists them (FTS5 §8): the terms a prefix word finds are a range of it
            (_prefix_terms), where fts5vocab counted each term of the range from its whole
            list of entries (63 ms of CPU for a worker's first "child safeguarding" at 1M
            entries, 0.8 ms from this table). A full write copies it from fts5vocab
            (_write_terms: 1.5 s of CPU at 1M entries, 500,000 terms, 7 MB); a rebuild adds
            the counts of the rows it inserts and takes off those of the rows it deletes
            (_changed_terms: 0.11 s a changed month at 1M). An index written before it is
            read through fts5vocab
  common    what a one-word search of a word held by more than COMMON entries needs for its
            first pages, without a facet selected: its total and facet counts, how many
            titles it matches and the first COMMON_RANKED of those in _ranked's order; by
            the terms the word matches (a term, or those a prefix word of it finds). At 1M
            entries "child" took 320 ms of CPU (its 808,000 matches read and counted, its
            115,000 title matches ranked by BM25), 3 from here; 60 words, 0.3 MB, 10 s of
            a full write's CPU (_write_common). A rebuild adds and takes off the facets of
            the rows it inserts and deletes, and ranks again only when a title changed
            (_update_common). An index written before it searches every word
  matched   the entries each common word matches, a bit per entry of each month (by its
            place; a row per month, so that a rebuild writes again only the changed
            months'): a search whose words are all common intersects these (_common_ids)
            instead of reading every match from FTS5 ("child safeguarding" at 1M: 176 ->
            85 ms of CPU, the same answer); a rowid table, each month's bits inline where a
            WITHOUT ROWID table put each on an overflow page (30 MB against 8 at 1M)

A rebuild starts from the previous release's index (graph/publication.py passes its folder):
unchanged, the file is hard-linked (a release never changes its files); otherwise it is copied
and only the months whose digest changed are deleted and inserted again, as the dumps reuse
their chunks. The copy (270 MB at 100k entries, 0.8-3.3 s of a one-change rebuild's write
phase on this project's machine, mostly writing it to disk) is made and synced by a thread of
its own from the start of the build (PreviousCopy), while the build parses, converts and
validates; the write phase then changes a few pages of it. At 100k entries a full write costs
seconds (the FTS index most of them), one month a fraction of one (bench/search.py measures
both).

User text never reaches FTS5's query syntax: it is split into words (letters and digits),
each quoted as an FTS5 string, a prefix too when it is long enough, all of them required
(FTS5 §3.1 strings, §3.3 prefix queries, §3.7 implicit AND); at most MAX_WORDS. Every word
is treated alike, so their order never changes what is found. A prefix word is asked as the
OR of the terms it finds (Index.words_expression: the same matches; FTS5 reads an OR lazily
where it merges a prefix's lists whole first).

Relevance is an order in two tiers (_ranked): the entries whose title holds every word, by
BM25 over the titles (an exact title first; ties newest first), then the other matches
newest first. Neither needs BM25 of every match (~3 us each: 2 s for two common words at 1M
entries); the pages of the second tier are FTS5's rowid order as far as the page goes.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import mmap
import os
import pickle
import re
import shutil
import sqlite3
import struct
import sys
import threading
import unicodedata
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, NamedTuple, cast, overload

from graph.convert import Converted, GraphText, Month, Recognition, format_created
from graph.errors import KgpubError, PublicationError
from graph.iris import Iris
from graph.listing import Entry
from graph.pools import ProcessPool
from graph.publishers import FILE as PUBLISHERS_FILE

if TYPE_CHECKING:
    from concurrent.futures import Future

    import numpy as np
    import numpy.typing as npt

    from graph.history import History

    _U64 = npt.NDArray[np.uint64]

FILE = "index.sqlite"
# The facet table's arrays, written beside the index for the workers to map (write_facets).
FACETS_FILE = "index.facets"
VERSION = 2
TOKENIZE = "porter unicode61 remove_diacritics 2"
SORTS = ("relevance", "newest", "oldest")
MAX_WORDS = 8  # words of one search; more is refused (each one is a doclist to intersect)
MAX_TEXT = 500  # characters of one search's text
MAX_VALUES = 20  # values of one facet in one search
MAX_SIZE = 100  # hits of one page
# Terms one prefix word is matched as (an OR of them), at most; a word finding more stays an
# FTS5 prefix query (the same hits, dearer: _words_expression).
MAX_TERMS = 32
_EXPANSIONS = 10_000  # words whose terms a process keeps per release
# The KiB of pages a reader's connection caches (SQLite's default is 2,000).
READ_CACHE_KIB = 256
# A word this long or longer also matches as a prefix of a word ("exploi", "child" finds
# "children"); shorter ones only as themselves and their stems ("art" does not find "article").
PREFIX_MIN = 4
# bm25 weights of the title, the description and the facet tokens (FTS5 §5.1.1): a word in
# the title counts for more; the facet tokens, only ever asked for by the filters, for nothing.
WEIGHTS = (5.0, 1.0, 0.0)
SNIPPET_TOKENS = 24
# Sentinels around the matches of a snippet; the stored texts never hold them (_clean), so
# the spans read back from them are exactly the matches, and a view escapes every span.
_OPEN, _CLOSE = "\x02", "\x03"
_WORD = re.compile(r"[^\W_]+")
# Facet tokens begin with a private-use character: a token character for unicode61 (FTS5
# §4.3.1, categories L*, N* and Co) that words_of never yields, so no word a person types can
# match one, and the words need no column filter (which would cost each hit its positions).
_FACET = "\ue000"
_MONTH_BITS = 20  # an entry's id: its month, then its place in the month (IRI order)
# A one-word search of a term more entries than this hold is answered from the common table
# (_write_common): at 1M entries a word of 25,000 entries costs 28 ms of CPU searched, one of
# 625,000 180-320 ms (its matches read and counted, its title matches ranked by BM25); at 100k
# entries, the first search of a process for a word of 62,000 entries 81 ms, of 80,000 126 ms.
# Not lower: a rebuild that adds or retitles an entry ranks every common word's title matches
# again (0.09 s of CPU each at 1M), and a library of 100k entries or fewer has none.
COMMON = 100_000
# The first ids of a common word's title tier kept: ten largest pages, and enough for the first
# page of the word with a facet selected that holds 2% of them or more (_ranked; 8 KB a word).
COMMON_RANKED = 10 * MAX_SIZE
# Endings tried on a term for a word the tokenizer makes it of (_surface): Porter's stems are
# not all stems of themselves ("practition" is stemmed "practit"; "practitioner" gives it).
_ENDINGS: tuple[str, ...] = ("", "s", "e", "er", "ers", "es", "ed", "ing", "ion", "ions")
_ENDINGS += ("al", "ly", "ment", "ness", "ity", "ive", "ent", "ence", "ance", "ate", "ation")
_ENDINGS += ("ism", "ist", "ous", "ful", "able", "ible", "ic", "ical", "ize", "ise", "y")
_BATCH = 20_000
# FTS5's defaults for its merge options (FTS5 §6.1, §6.2); and its limit of segments on one
# level (FTS5_MAX_SEGMENT), the crisismerge of a full write: it merges only if that many pile up.
_AUTOMERGE, _CRISISMERGE, _NO_CRISIS = 4, 16, 2000

_SCHEMA = f"""
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE concept (id INTEGER PRIMARY KEY, iri TEXT NOT NULL UNIQUE, label TEXT NOT NULL,
  notation TEXT NOT NULL, entries INTEGER NOT NULL);
CREATE TABLE member (list TEXT NOT NULL, iri TEXT NOT NULL, PRIMARY KEY (list, iri))
  WITHOUT ROWID;
CREATE TABLE entry (id INTEGER PRIMARY KEY, iri TEXT NOT NULL, year INTEGER NOT NULL,
  created TEXT NOT NULL, modified TEXT NOT NULL);
CREATE TABLE document (id INTEGER PRIMARY KEY, title TEXT NOT NULL, description TEXT NOT NULL,
  facets TEXT NOT NULL);
CREATE TABLE subject (entry INTEGER NOT NULL, concept INTEGER NOT NULL,
  PRIMARY KEY (entry, concept)) WITHOUT ROWID;
CREATE TABLE issued (entry INTEGER NOT NULL, publisher TEXT NOT NULL,
  PRIMARY KEY (entry, publisher)) WITHOUT ROWID;
CREATE TABLE year (year INTEGER PRIMARY KEY, entries INTEGER NOT NULL);
CREATE TABLE month (name TEXT PRIMARY KEY, digest TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE tally (list TEXT NOT NULL, month TEXT NOT NULL, entries INTEGER NOT NULL,
  PRIMARY KEY (list, month)) WITHOUT ROWID;
CREATE TABLE publisher (id TEXT PRIMARY KEY, name TEXT NOT NULL, sameas TEXT NOT NULL)
  WITHOUT ROWID;
CREATE TABLE published (iri TEXT NOT NULL, rank INTEGER NOT NULL, publisher TEXT NOT NULL,
  PRIMARY KEY (iri, rank)) WITHOUT ROWID;
CREATE INDEX published_by ON published (publisher, iri);
CREATE TABLE publishers (digest TEXT NOT NULL);
CREATE TABLE facet (month INTEGER PRIMARY KEY, concepts BLOB, publishers TEXT, issued BLOB);
CREATE VIRTUAL TABLE search USING fts5(title, description, facets, content='document',
  content_rowid='id', tokenize='{TOKENIZE}');
CREATE VIRTUAL TABLE titles USING fts5(title, content='document', content_rowid='id',
  tokenize='{TOKENIZE}');
CREATE TABLE term (term TEXT PRIMARY KEY, docs INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE common (words TEXT PRIMARY KEY, asked TEXT NOT NULL, total INTEGER NOT NULL,
  facets TEXT NOT NULL, titled INTEGER NOT NULL, ranked BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE matched (words TEXT NOT NULL, month INTEGER NOT NULL, bits BLOB NOT NULL);
CREATE UNIQUE INDEX matched_by ON matched (words, month);
"""


class SearchError(KgpubError):
    """A search that cannot be answered as asked: an unknown sort or category, a page that is
    not a positive integer, too many words or values (HTTP 400)."""


# --- writing ------------------------------------------------------------------------------------


class PreviousCopy:
    """The previous release's index copied into the release being built, by a thread of its
    own from the start of the build, for write_release_index to start from; synced there as
    soon as convert shows a month changed (decide), so that a rebuild's write phase changes
    a few pages instead of copying and syncing the whole file. Discarded when the index is
    not reusable or nothing changed: the copy stops at the next piece, and a copy never
    synced is dropped from the page cache before it reaches the disk."""

    _PIECE = 16 << 20  # bytes copied between two looks at the cancel flag

    def __init__(self, previous: Path | None, folder: Path, base: str) -> None:
        self.path = folder / f".{FILE}.previous"
        self._cancel = threading.Event()
        self._decided = threading.Event()
        self._sync = False
        self._made = False
        self._old: dict[str, str] | None = None
        self._thread: threading.Thread | None = None
        source = previous / FILE if previous is not None else None
        if source is not None:
            self._old = _reusable(source, base)
        # Whether the index of this release will be written whole (_write_release_index).
        self.whole = self._old is None
        if source is not None and self._old is not None:
            self._thread = threading.Thread(
                target=self._copy, args=(source,), name="kgpub-index-copy"
            )
            self._thread.start()

    def _copy(self, source: Path) -> None:
        try:
            with source.open("rb") as src, self.path.open("wb") as dst:
                size, done = os.fstat(src.fileno()).st_size, 0
                while done < size and not self._cancel.is_set():
                    n = os.copy_file_range(
                        src.fileno(), dst.fileno(), min(self._PIECE, size - done), done, done
                    )
                    if n == 0:
                        return  # shorter than it was: copied on the spot instead
                    done += n
                self._decided.wait()
                if self._cancel.is_set():
                    return
                if self._sync:
                    os.fsync(dst.fileno())
            self._made = True
        except OSError:  # no copy_file_range here, or no room: copied on the spot instead
            return

    def decide(self, converted: Converted) -> None:
        """Sync the copy now if a month of converted changed (the index will be written);
        otherwise leave it unsynced (the release's final sync does it, if it is used)."""
        self._sync = self._old is not None and self._old != _month_digests(converted)
        self._decided.set()

    def take(self) -> Path | None:
        """The copy, once made; None when there is none."""
        if self._thread is not None:
            if not self._decided.is_set():
                self._sync = True
                self._decided.set()
            self._thread.join()
        return self.path if self._made else None

    def discard(self) -> None:
        """Stop the copy and remove it (idempotent)."""
        self._cancel.set()
        self._decided.set()
        if self._thread is not None:
            self._thread.join()
        self._made = False
        self.path.unlink(missing_ok=True)


def write_release_index(
    folder: Path,
    converted: Converted,
    previous: Path | None = None,
    history: History | None = None,
    copied: PreviousCopy | None = None,
    full: Future[str] | None = None,
) -> Path:
    """Write folder/index.sqlite for a converted library; its path. With previous (the folder
    of the release this one replaces), start from its index when it was written by this code
    under the same base IRI: the same file when nothing changed, else a copy (copied's, when
    it made one) in which only the changed months are written again. history: this build's
    (graph/history.py), whose tables graph/ledger.py writes (folder holds its history.jsonl
    already). full: the path of the file of rows the full writer's process writes
    (run_full_write), when the build started one because the index is written whole
    (PreviousCopy.whole)."""
    try:
        path = _write_release_index(folder, converted, previous, history, copied, full)
    finally:
        if copied is not None:
            copied.discard()
    write_facets(path, previous / FACETS_FILE if previous is not None else None)
    return path


def _write_release_index(
    folder: Path,
    converted: Converted,
    previous: Path | None,
    history: History | None,
    copied: PreviousCopy | None,
    full: Future[str] | None = None,
) -> Path:
    from graph import ledger  # it reads the index with this module's reader

    path = folder / FILE
    path.unlink(missing_ok=True)
    digests = _month_digests(converted)
    try:
        source = previous / FILE if previous is not None else None
        old = _reusable(source, converted.iris.base) if source is not None else None
        if old is not None and full is not None:  # not asked for: PreviousCopy.whole
            with contextlib.suppress(PublicationError):
                full.result()
            (folder / FULL_NAME).unlink(missing_ok=True)
            full = None
        publishers = _file_digest(folder / PUBLISHERS_FILE)
        if source is not None and old is not None:
            if (
                old == digests
                and ledger.is_unchanged(source, history)
                and _publishers_digest(source) == publishers
            ):
                os.link(source, path)
                return path
            made = copied.take() if copied is not None else None
            if made is not None:
                os.replace(made, path)
            else:
                shutil.copyfile(source, path)
        written = None
        if old is None and full is not None:
            written = Path(full.result())  # its PublicationError raised here
            os.replace(written, path)
        db = sqlite3.connect(path)
        try:
            _unjournaled(db)
            if written is None:  # else the process wrote the rows
                if old is None:
                    _write_all(db, converted, digests)
                else:
                    _write_changes(db, converted, old, digests)
            ledger.write(db, history, folder, fresh=old is None)
            _write_publishers(db, folder / PUBLISHERS_FILE, publishers)
            db.commit()
        finally:
            db.close()
    except (sqlite3.Error, OSError) as exc:
        raise PublicationError(f"{path}: cannot write the index: {exc}") from exc
    return path


# --- a full write by a process of its own ------------------------------------------------------

# A full write's rows and FTS5 documents (_write_all) are most of a full build's last minute at
# 1M entries, on the build's main thread after everything else; written by a process of its
# own from the end of convert instead, beside validation, the store's load and the dumps. Not
# a thread: executemany takes the GIL back after each row, and waited up to the switch
# interval for it whenever another thread computed in Python (100k documents into FTS5: 1.3 s
# alone, 530 s beside a busy thread).
FULL_WRITER = "graph.index:run_full_write"
# From this many entries (a library of fewer is written whole in a second or less, about the
# time the process takes to start and import this module).
FULL_APART = 10_000
FULL_NAME = f".{FILE}.full"  # the file it writes, in the release's folder


def full_write_feed(converted: Converted, spool: Path, folder: Path) -> Callable[[IO[bytes]], None]:
    """What the full writer's process (run_full_write) reads from its stdin, as a function
    that writes it, a month at a time (a million entries' rows pickled at once were 200 MB
    more of the build's peak): the library without its entries and its text, then each
    month's entries' fields in turn, then None. spool: the file converted.text reads."""
    months = tuple(
        replace(m, text=b"", starts=(), listed=(), recognition=Recognition(), modified={})
        for m in converted.months
    )
    head = (
        str(folder / FULL_NAME),
        str(spool),
        len(converted.text),
        converted.text.extents,
        replace(
            converted,
            text=GraphText(),
            entries={},
            months=months,
            fingerprints={},
            organisations={},
            candidates={},
        ),
    )

    def feed(out: IO[bytes]) -> None:
        # A pickle each, read by a pickle.load each: a Pickler's memo would keep every row
        # it wrote alive (and the Unpickler's indexes its own, clear_memo or not).
        pickle.dump(head, out, protocol=pickle.HIGHEST_PROTOCOL)
        entries = converted.entries
        for month in months:
            rows = [
                (e.title, e.created, e.categories) for e in map(entries.__getitem__, month.iris)
            ]
            pickle.dump(rows, out, protocol=pickle.HIGHEST_PROTOCOL)
        pickle.dump(None, out)

    return feed


def run_full_write() -> None:
    """The full writer's process (graph/publication.py): read full_write_feed's input from
    stdin, write the index's rows into the release's FULL_NAME, write the pickled list of
    its path (or of the PublicationError that stopped it) to stdout."""
    stdin = sys.stdin.buffer
    target, spool, end, extents, bare = pickle.load(stdin)
    result: object
    try:
        entries: dict[str, Entry] = {}
        for month in bare.months:
            rows = pickle.load(stdin)
            for iri, (title, created, categories) in zip(month.iris, rows, strict=True):
                entries[iri] = Entry(title, created, categories, "", ())
        if pickle.load(stdin) is not None:
            raise PublicationError(f"{target}: the full writer was given more months than named")
        with open(spool, "rb") as file:
            text = GraphText(file=file, end=end, extents=extents)
            converted = replace(bare, text=text, entries=entries)
            result = _write_full(Path(target), converted)
    except PublicationError as exc:
        result = exc
    sys.stdout.buffer.write(pickle.dumps([result]))


def _write_full(path: Path, converted: Converted) -> str:
    """A new index file of the converted library's rows, but the history's and the
    publishers' tables (written by _write_release_index into it); its path."""
    path.unlink(missing_ok=True)
    try:
        db = sqlite3.connect(path)
        try:
            _unjournaled(db)
            _write_all(db, converted, _month_digests(converted))
            db.commit()
        finally:
            db.close()
    except (sqlite3.Error, OSError) as exc:
        raise PublicationError(f"{path}: cannot write the index: {exc}") from exc
    return str(path)


def _unjournaled(db: sqlite3.Connection) -> None:
    # Written once, by one build, then never changed: no journal to keep, nothing to sync
    # twice (the build syncs every file of the release before the swap). A build that fails
    # leaves its folder, and this file, to be removed.
    db.execute("PRAGMA journal_mode = OFF")
    db.execute("PRAGMA synchronous = OFF")


def _file_digest(path: Path) -> str:
    """The sha256 of a file, '' when there is none."""
    try:
        with path.open("rb") as f:
            return hashlib.file_digest(f, "sha256").hexdigest()
    except FileNotFoundError:
        return ""


def _publishers_digest(path: Path) -> str | None:
    """The digest of the publishers.json an index holds the rows of (None: unknown)."""
    try:
        db = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True)
        try:
            row = db.execute("SELECT digest FROM publishers").fetchone()
            return str(row[0]) if row else None
        finally:
            db.close()
    except sqlite3.Error:
        return None


def _write_publishers(db: sqlite3.Connection, path: Path, digest: str) -> None:
    """The publisher tables brought to the release's publishers.json (written before the
    index by graph/enrich/build.py): again in full when the file changed, else kept."""
    row = db.execute("SELECT digest FROM publishers").fetchone()
    if row is not None and row[0] == digest:
        return
    for table in ("publisher", "published", "publishers"):
        db.execute(f"DELETE FROM {table}")
    if digest:
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            db.executemany(
                "INSERT INTO publisher VALUES (?, ?, ?)",
                ((pid, p["name"], p["sameas"]) for pid, p in doc["publishers"].items()),
            )
            db.executemany(
                "INSERT INTO published VALUES (?, ?, ?)",
                (
                    (iri, rank, pid)
                    for iri, ids in doc["entries"].items()
                    for rank, pid in enumerate(ids)
                ),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise PublicationError(f"{path}: not a kgpub publishers file: {exc}") from exc
    db.execute("INSERT INTO publishers VALUES (?)", (digest,))


def _code() -> str:
    """A digest of this module and graph/ledger.py (the history's tables): a previous index
    is reused only when written by the same code (the schema, the tokenizer and what each row
    holds)."""
    here = Path(__file__)
    return hashlib.sha256(here.read_bytes() + (here.parent / "ledger.py").read_bytes()).hexdigest()


def _month_digests(converted: Converted) -> dict[str, str]:
    """Each month's digest as indexed: its records' digest and its N-Triples' (the dump
    chunk's key, graph/dumps.py), which hold everything its rows are made of: titles,
    descriptions, times, the dcterms:modified history decided, categories and publishers.
    Both are known without reading the month's entries (a reused month's from the chunk
    index, graph/dumps.py): a digest of every entry's fields here took 0.65 s of a one-change
    rebuild at 100k entries under cProfile."""
    return {
        month.name: hashlib.sha256(f"{month.digest}\x1f{month.key}".encode()).hexdigest()
        for month in converted.months
    }


def _reusable(path: Path, base: str) -> dict[str, str] | None:
    """The month digests of a previous index that this build may start from, or None."""
    if not path.is_file():
        return None
    try:
        db = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True)
        try:
            meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
            if meta != {"version": str(VERSION), "base": base, "code": _code()}:
                return None
            return dict(db.execute("SELECT name, digest FROM month").fetchall())
        finally:
            db.close()
    except sqlite3.Error:
        return None  # damaged or of another kind: written again in full


def _clean(text: str) -> str:
    """A text as stored for search: without the snippet sentinels (control characters no
    listing needs)."""
    if _OPEN in text or _CLOSE in text:
        return text.replace(_OPEN, " ").replace(_CLOSE, " ")
    return text


def _month_id(name: str) -> int:
    """The first entry id of a month ('YYYY-MM'): ids follow the IRIs' order, so the newest
    entries are the highest ids, whatever months a rebuild wrote again."""
    year, month = name.split("-")
    return (int(year) * 12 + int(month) - 1) << _MONTH_BITS


def _concept_token(concept: int) -> str:
    return f"{_FACET}c{concept}"


def _publisher_token(pid: str) -> str:
    # A publisher id is a slug (graph/publishers.py): its hyphens would split the token.
    return f"{_FACET}p{pid.encode('utf-8').hex()}"


def _year_token(year: int) -> str:
    return f"{_FACET}y{year}"


def _write_all(db: sqlite3.Connection, converted: Converted, digests: Mapping[str, str]) -> None:
    db.executescript(_SCHEMA)
    db.executemany(
        "INSERT INTO meta VALUES (?, ?)",
        (("version", str(VERSION)), ("base", converted.iris.base), ("code", _code())),
    )
    ids = {iri: n for n, iri in enumerate(converted.categories, start=1)}
    db.executemany(
        "INSERT INTO concept VALUES (?, ?, ?, ?, 0)",
        ((ids[iri], iri, c.label, c.notation) for iri, c in converted.categories.items()),
    )
    # No merging while the rows go in (FTS5 §6.1 automerge, §6.2 crisismerge): 'optimize'
    # below merges every segment once, where the default merged each level of four as it
    # filled (search's writing at 1M entries: 12 s of CPU against 16-18). Set back before it,
    # so that a rebuild's inserts into a copy of this file merge as they did.
    _merging(db, automerge=0, crisismerge=_NO_CRISIS)
    _insert_months(db, converted, [m.name for m in converted.months], ids)
    _merging(db, automerge=_AUTOMERGE, crisismerge=_CRISISMERGE)
    # Each FTS5 index merged into one segment (FTS5's 'optimize' command), where the batches
    # left eleven at 1M entries: a lookup of one entry (_ranked's page) seeks each term in
    # one b-tree, not in each segment (a page of "child safeguarding": 17 ms of CPU, 0.9
    # merged). 2.6 s of CPU at 1M entries and 14 MB of free pages left in the file, the same
    # hits in the same order; a rebuild adds a segment or two.
    db.execute("INSERT INTO search (search) VALUES ('optimize')")
    db.execute("INSERT INTO titles (titles) VALUES ('optimize')")
    db.executemany("INSERT INTO month VALUES (?, ?)", sorted(digests.items()))
    db.execute(
        "INSERT INTO tally SELECT list, substr(iri, ?, 7) AS m, count(*) FROM member "
        "GROUP BY list, m",
        (len(converted.iris.entry_prefix) + 1,),
    )
    _count(db, converted.iris.library)
    _write_terms(db)
    _write_common(db)


def _merging(db: sqlite3.Connection, automerge: int, crisismerge: int) -> None:
    """Set both FTS5 indexes' merge options (stored in the file, FTS5 §6)."""
    for table in ("search", "titles"):
        for option, value in (("automerge", automerge), ("crisismerge", crisismerge)):
            db.execute(f"INSERT INTO {table} ({table}, rank) VALUES (?, ?)", (option, value))


class _Row(NamedTuple):
    """One entry's rows in the index: entry, document, its concepts' ids (subject rows) and
    publishers (issued rows), each sorted; its lists (member rows, with the library's)."""

    entry: tuple[int, str, int, str, str]
    document: tuple[int, str, str, str]
    concepts: tuple[int, ...]
    publishers: tuple[str, ...]
    lists: tuple[str, ...]


def _month_rows(
    converted: Converted,
    month: Month,
    first: int,
    concept_ids: Mapping[str, int],
    concept_of: Mapping[str, str],
) -> tuple[list[_Row], tuple[object, ...]]:
    """The rows of one month's entries (ids from the month's own), in IRI order; its facet
    row. first: the month's first entry in converted.entries' order."""
    library = converted.iris.library
    name = month.name
    start = _month_id(name)
    iris = month.iris
    if len(iris) >= 1 << _MONTH_BITS:
        raise PublicationError(f"{name}: more entries in one month than the index can number")
    masks: list[int] = []  # the facet row of the month: its entries' concept bits
    named: list[list[str]] = []  # and publishers
    rows: list[_Row] = []
    texts = converted.descriptions(first, first + len(iris))
    for n, iri, description in zip(range(start, start + len(iris)), iris, texts, strict=True):
        entry = converted.entries[iri]
        year = entry.created.year
        concepts = sorted(concept_of[label] for label in entry.categories)
        modified = converted.modified.get(iri, "")
        publishers = sorted(converted.publishers.get(iri, ()))
        masks.append(sum(1 << concept_ids[c] for c in concepts))
        named.append(publishers)
        tokens = [_concept_token(concept_ids[c]) for c in concepts]
        tokens += [_publisher_token(pid) for pid in publishers]
        tokens.append(_year_token(year))
        rows.append(
            _Row(
                (n, iri, year, format_created(entry), modified),
                (n, _clean(entry.title), _clean(description), " ".join(tokens)),
                tuple(sorted(concept_ids[c] for c in concepts)),
                tuple(publishers),
                (library, *concepts),
            )
        )
    return rows, (start >> _MONTH_BITS, *_facet_row(masks, named))


def _month_firsts(converted: Converted) -> dict[str, tuple[Month, int]]:
    """Each month by name, with its first entry in converted.entries' order."""
    firsts: dict[str, tuple[Month, int]] = {}
    at = 0
    for month in converted.months:
        firsts[month.name] = (month, at)
        at += len(month.iris)
    return firsts


def _insert_months(
    db: sqlite3.Connection,
    converted: Converted,
    names: Iterable[str],
    concept_ids: Mapping[str, int],
) -> None:
    """Insert the rows of these months' entries, and their text into the FTS index, in
    batches of about _BATCH entries."""
    concept_of = {c.label: iri for iri, c in converted.categories.items()}
    firsts = _month_firsts(converted)
    pending: list[_Row] = []
    for name in sorted(names):
        rows, facet = _month_rows(converted, *firsts[name], concept_ids, concept_of)
        db.execute("INSERT INTO facet VALUES (?, ?, ?, ?)", facet)
        pending += rows
        if len(pending) >= _BATCH:
            _insert(db, pending)
            pending.clear()
    _insert(db, pending)


def _insert(db: sqlite3.Connection, rows: Iterable[_Row]) -> None:
    """Insert these entries' rows. The member rows go in list by list, each in IRI order:
    appends to the B-tree."""
    entries: list[tuple[object, ...]] = []
    documents: list[tuple[object, ...]] = []
    subjects: list[tuple[int, int]] = []
    issued: list[tuple[int, str]] = []
    lists: dict[str, list[tuple[str, str]]] = {}
    for row in rows:
        n, iri = row.entry[0], row.entry[1]
        entries.append(row.entry)
        documents.append(row.document)
        subjects += [(n, concept) for concept in row.concepts]
        issued += [(n, pid) for pid in row.publishers]
        for list_iri in row.lists:
            lists.setdefault(list_iri, []).append((list_iri, iri))
    _insert_rows(db, entries, documents, subjects, issued)
    _insert_members(db, lists)


def _facet_row(
    masks: list[int], named: list[list[str]]
) -> tuple[bytes | None, str | None, bytes | None]:
    """A month's facet row: its entries' concept masks (uint64, little-endian), the ids of
    the publishers its entries name and each entry's mask over them; NULLs past 64 bits."""
    concepts = None
    if all(m < 1 << 64 for m in masks):
        concepts = _uint64s(masks)
    pids = sorted({pid for found in named for pid in found})
    if len(pids) > 64:
        return concepts, None, None
    bit = {pid: 1 << n for n, pid in enumerate(pids)}
    issued = _uint64s([sum(bit[p] for p in found) for found in named])
    return concepts, json.dumps(pids), issued


def _uint64s(values: list[int]) -> bytes:
    """Integers as unsigned 64-bit little-endian bytes (array: the build imports no numpy)."""
    packed = array("Q", values)
    if sys.byteorder == "big":
        packed.byteswap()
    return packed.tobytes()


def _insert_members(db: sqlite3.Connection, lists: dict[str, list[tuple[str, str]]]) -> None:
    """Insert a batch of member rows, list by list, each in IRI order: as the months come in
    order, each list's rows are appended at the end of its range of the B-tree. A batch at a
    time: a million entries' rows were 3.5 million tuples held at once."""
    for list_iri in sorted(lists):
        db.executemany("INSERT INTO member VALUES (?, ?)", sorted(lists[list_iri]))
        lists[list_iri].clear()


def _insert_rows(
    db: sqlite3.Connection,
    entries: list[tuple[object, ...]],
    documents: list[tuple[object, ...]],
    subjects: list[tuple[int, int]],
    issued: list[tuple[int, str]],
) -> None:
    db.executemany("INSERT INTO entry VALUES (?, ?, ?, ?, ?)", entries)
    db.executemany("INSERT INTO document VALUES (?, ?, ?, ?)", documents)
    # One row per statement, its values given: an INSERT ... SELECT into FTS5 opens a
    # savepoint per statement, and FTS5 writes out its pending terms at each one (a segment
    # per row: 25 times slower for a month of entries).
    db.executemany(
        "INSERT INTO search (rowid, title, description, facets) VALUES (?, ?, ?, ?)", documents
    )
    db.executemany("INSERT INTO titles (rowid, title) VALUES (?, ?)", (d[:2] for d in documents))
    db.executemany("INSERT INTO subject VALUES (?, ?)", subjects)
    db.executemany("INSERT INTO issued VALUES (?, ?)", issued)
    entries.clear()
    documents.clear()
    subjects.clear()
    issued.clear()


def _write_changes(
    db: sqlite3.Connection,
    converted: Converted,
    old: Mapping[str, str],
    digests: Mapping[str, str],
) -> None:
    """Bring a copy of the previous index to this library: the changed months' entries out,
    their new entries in, the concepts and counts made again."""
    library = converted.iris.library
    known = {iri for (iri,) in db.execute("SELECT iri FROM concept")}
    db.executemany(
        "UPDATE concept SET label = ?, notation = ? WHERE iri = ?",
        [(c.label, c.notation, iri) for iri, c in converted.categories.items() if iri in known],
    )
    db.executemany(
        "INSERT INTO concept (iri, label, notation, entries) VALUES (?, ?, ?, 0)",
        [(iri, c.label, c.notation) for iri, c in converted.categories.items() if iri not in known],
    )
    ids: dict[str, int] = dict(db.execute("SELECT iri, id FROM concept").fetchall())
    iri_of = {n: iri for iri, n in ids.items()}
    changed = sorted(n for n in old.keys() | digests.keys() if old.get(n) != digests.get(n))
    db.execute(
        "CREATE TEMP TABLE kgpub_gone (id INTEGER PRIMARY KEY, title TEXT NOT NULL, "
        "description TEXT NOT NULL, facets TEXT NOT NULL)"
    )
    db.execute("CREATE TEMP TABLE kgpub_touched (id INTEGER PRIMARY KEY)")
    concept_of = {c.label: iri for iri, c in converted.categories.items()}
    firsts = _month_firsts(converted)
    for name in changed:
        # Only the entries whose rows differ are taken out and put in again: a month's
        # other entries keep their rows (and their place in the FTS5 indexes), where taking
        # the whole month out and in again was most of a one-change rebuild's index at 1M
        # entries (about 9,300 entries a month).
        start = _month_id(name)
        rows, facet = (
            _month_rows(converted, *firsts[name], ids, concept_of) if name in firsts else ([], None)
        )
        had = _rows_of(db, start, library, iri_of)
        new = {row.entry[0]: row for row in rows}
        touched = sorted(n for n in had.keys() | new.keys() if had.get(n) != new.get(n))
        _delete_rows(db, [had[n] for n in touched if n in had])
        _insert(db, [new[n] for n in touched if n in new])
        db.executemany("INSERT INTO temp.kgpub_touched VALUES (?)", [(n,) for n in touched])
        db.execute("DELETE FROM facet WHERE month = ?", (start >> _MONTH_BITS,))
        if facet is not None:
            db.execute("INSERT INTO facet VALUES (?, ?, ?, ?)", facet)
    gone, made = _changed_rows(db)
    db.execute("DROP TABLE temp.kgpub_touched")
    db.execute("DROP TABLE temp.kgpub_gone")
    _update_terms(db, _changed_terms(db, gone, made))
    db.executemany(
        "DELETE FROM concept WHERE iri = ?",
        [(iri,) for iri in ids if iri not in converted.categories],
    )
    db.executemany("DELETE FROM month WHERE name = ?", [(n,) for n in changed])
    db.executemany(
        "INSERT INTO month VALUES (?, ?)", [(n, digests[n]) for n in changed if n in digests]
    )
    _tally_months(db, converted.iris, changed)
    _count(db, library)
    _update_common(db, gone, made, changed)


def _rows_of(
    db: sqlite3.Connection, start: int, library: str, iri_of: Mapping[int, str]
) -> dict[int, _Row]:
    """The rows the index holds for the month of ids from start, by id (as _month_rows)."""
    span = (start, start + (1 << _MONTH_BITS))
    concepts: dict[int, list[int]] = {}
    for n, concept in db.execute(
        "SELECT entry, concept FROM subject WHERE entry >= ? AND entry < ?", span
    ):
        concepts.setdefault(n, []).append(concept)
    publishers: dict[int, list[str]] = {}
    for n, pid in db.execute(
        "SELECT entry, publisher FROM issued WHERE entry >= ? AND entry < ?", span
    ):
        publishers.setdefault(n, []).append(pid)
    documents = {
        row[0]: row
        for row in db.execute(
            "SELECT id, title, description, facets FROM document WHERE id >= ? AND id < ?", span
        )
    }
    found: dict[int, _Row] = {}
    for row in db.execute(
        "SELECT id, iri, year, created, modified FROM entry WHERE id >= ? AND id < ?", span
    ):
        n = row[0]
        ids = tuple(sorted(concepts.get(n, ())))
        found[n] = _Row(
            row,
            documents[n],
            ids,
            tuple(sorted(publishers.get(n, ()))),
            (library, *sorted(iri_of[c] for c in ids)),
        )
    return found


def _delete_rows(db: sqlite3.Connection, rows: list[_Row]) -> None:
    """Take these entries' rows out of the index, their text out of the FTS5 indexes; their
    documents kept in temp.kgpub_gone (for the term table's counts, _changed_terms: in
    SQLite's temporary file, not in memory, for a rebuild that changes every month)."""
    documents = [row.document for row in rows]
    gone = [(row.entry[0],) for row in rows]
    db.executemany("INSERT INTO temp.kgpub_gone VALUES (?, ?, ?, ?)", documents)
    # External content: FTS5 is told what each row held (FTS5 §4.4.3 'delete').
    db.executemany(
        "INSERT INTO search (search, rowid, title, description, facets) "
        "VALUES ('delete', ?, ?, ?, ?)",
        documents,
    )
    db.executemany(
        "INSERT INTO titles (titles, rowid, title) VALUES ('delete', ?, ?)",
        [document[:2] for document in documents],
    )
    db.executemany(
        "DELETE FROM member WHERE list = ? AND iri = ?",
        [(list_iri, row.entry[1]) for row in rows for list_iri in row.lists],
    )
    db.executemany("DELETE FROM subject WHERE entry = ?", gone)
    db.executemany("DELETE FROM issued WHERE entry = ?", gone)
    db.executemany("DELETE FROM document WHERE id = ?", gone)
    db.executemany("DELETE FROM entry WHERE id = ?", gone)


def _write_terms(db: sqlite3.Connection) -> None:
    """The term table in full: search's terms and their counts as fts5vocab 'row' lists them
    (FTS5 §8), in its order, which is the table's (both compare the terms' UTF-8 bytes):
    1.5 s of CPU at 1M entries, once, where each worker paid 20-60 ms for its first words."""
    db.execute("CREATE VIRTUAL TABLE temp.kgpub_written USING fts5vocab(main, search, 'row')")
    try:
        db.execute("DELETE FROM term")
        db.execute("INSERT INTO term SELECT term, doc FROM temp.kgpub_written")
    finally:
        db.execute("DROP TABLE temp.kgpub_written")


def _changed_terms(
    db: sqlite3.Connection, gone: Iterable[Sequence[object]], made: Iterable[Sequence[object]]
) -> dict[str, int]:
    """Entries more (or fewer) holding each term once a rebuild's changed months are written
    again: the terms of the rows it deleted and of those it inserted (_changed_rows, which
    leaves out a changed month's unchanged entries: all but one or two of its 9,000 at 1M)."""
    counts: dict[str, int] = {}
    _count_terms(db, counts, (row[1:] for row in gone), -1)
    _count_terms(db, counts, (row[1:] for row in made), 1)
    return counts


def _count_terms(
    db: sqlite3.Connection,
    counts: dict[str, int],
    documents: Iterable[Sequence[object]],
    sign: int,
) -> None:
    """Add to counts, times sign, how many of these documents (title, description, facet
    tokens, as search indexes them) hold each term: FTS5's own terms and counts, from a
    temporary FTS5 table of the documents with the same tokenizer (contentless, no
    positions), not a scan of search's vocabulary (1.5 s at 1M entries)."""
    documents = list(documents)
    if not documents:
        return
    db.execute(
        "CREATE VIRTUAL TABLE temp.kgpub_counted USING fts5(title, description, facets, "
        f"content='', detail=none, tokenize='{TOKENIZE}')"
    )
    db.execute(
        "CREATE VIRTUAL TABLE temp.kgpub_counted_terms USING fts5vocab(temp, kgpub_counted, 'row')"
    )
    try:
        db.executemany(
            "INSERT INTO temp.kgpub_counted (title, description, facets) VALUES (?, ?, ?)",
            documents,
        )
        for term, n in db.execute("SELECT term, doc FROM temp.kgpub_counted_terms"):
            counts[term] = counts.get(term, 0) + sign * n
    finally:
        db.execute("DROP TABLE temp.kgpub_counted_terms")
        db.execute("DROP TABLE temp.kgpub_counted")


def _update_terms(db: sqlite3.Connection, counts: Mapping[str, int]) -> None:
    """The term table brought to the rows a rebuild deleted and inserted (counts: entries
    more or fewer holding each term); a term no entry holds any more goes, as fts5vocab no
    longer lists it once FTS5 has been told of the last one's deletion."""
    changed = sorted((term, n) for term, n in counts.items() if n)
    db.executemany(
        "INSERT INTO term VALUES (?, ?) "
        "ON CONFLICT (term) DO UPDATE SET docs = docs + excluded.docs",
        changed,
    )
    db.executemany(
        "DELETE FROM term WHERE term = ? AND docs = 0", [(term,) for term, n in changed if n < 0]
    )


def _changed_rows(db: sqlite3.Connection) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """The document rows (id, title, description, facets) a rebuild deleted
    (temp.kgpub_gone) and those it inserted (the ids in temp.kgpub_touched), but the rows in
    both (an entry whose other rows changed): for the term and common tables
    (_changed_terms, _update_common)."""
    before = set(db.execute("SELECT id, title, description, facets FROM temp.kgpub_gone"))
    after = set(
        db.execute(
            "SELECT id, title, description, facets FROM document "
            "WHERE id IN (SELECT id FROM temp.kgpub_touched)"
        )
    )
    return sorted(before - after), sorted(after - before)


def _common_key(terms: Iterable[str]) -> str:
    """The common table's name of the terms a word matches (any of them)."""
    return " ".join(sorted(terms))


def _surface(db: sqlite3.Connection, term: str) -> str | None:
    """A word the tokenizer makes this term of (the term itself, most often), or None."""
    words = [term + ending for ending in _ENDINGS]
    if term.endswith("i"):
        words.append(term[:-1] + "y")  # Porter's "famili" of "family"
    return next((word for word in words if _tokens(db, word) == [term]), None)


def _common_words(db: sqlite3.Connection) -> dict[str, str]:
    """The words of the common table, as their terms (_common_key) and the FTS5 query of
    their matches: for each term of more than COMMON entries (the term table's counts), the
    term alone (a word shorter than PREFIX_MIN) and the terms a prefix word of it finds
    (_stem_terms), asked as a word the tokenizer makes the term of (_surface; a term with
    none is left out, its searches answered as any other)."""
    found: dict[str, str] = {}
    frequent = db.execute("SELECT term FROM term WHERE docs > ? ORDER BY term", (COMMON,))
    for (term,) in frequent.fetchall():
        word = _surface(db, term) if not term.startswith(_FACET) else None
        if word is None:
            continue
        found[term] = _quoted(word)
        terms = _stem_terms(db, term)
        if terms is not None and terms != [term]:
            asked = " OR ".join(_quoted(word if t == term else t) for t in terms)
            found[_common_key(terms)] = f"({asked})"
    return found


def _write_common(db: sqlite3.Connection) -> None:
    """The common and matched tables in full: each common word's matches read, counted and
    kept as bits, and its title matches ranked (_common_row, _insert_bits). None without
    facet arrays (more than 64 publishers or concept ids): counted in SQL, 60 words would
    take minutes at 1M, and the search that reads them would not take their bits."""
    words = _common_words(db)
    concepts, rows = _concepts_of(db), _facet_rows(db)
    if not words or rows is None:
        return
    for key, asked in words.items():
        ids = _matched_ids(db, asked)
        db.execute(
            "INSERT INTO common VALUES (?, ?, ?, ?, ?, ?)",
            (key, asked, *_common_row(db, asked, concepts, rows, ids)),
        )
        _insert_bits(db, key, ids, rows)


def _insert_bits(
    db: sqlite3.Connection,
    key: str,
    ids: npt.NDArray[np.int64],
    rows: _FacetRows,
    months: Iterable[int] | None = None,
) -> None:
    """The matched rows of a common word: for each month (of months, default all) that
    holds one of these ids (in id order), a bit per entry of the month, by its place (numpy's
    packbits: the first place the high bit of the first byte)."""
    import numpy as np

    wanted = None if months is None else set(months)
    starts = np.searchsorted(ids, rows.months << _MONTH_BITS)
    ends = np.searchsorted(ids, (rows.months + 1) << _MONTH_BITS)
    found = []
    numbers, counts = rows.months.tolist(), rows.counts.tolist()
    for at, (month, count) in enumerate(zip(numbers, counts, strict=True)):
        if (wanted is not None and month not in wanted) or starts[at] == ends[at]:
            continue
        bits = np.zeros(count, dtype=bool)
        bits[ids[starts[at] : ends[at]] & ((1 << _MONTH_BITS) - 1)] = True
        found.append((key, month, np.packbits(bits).tobytes()))
    db.executemany("INSERT INTO matched VALUES (?, ?, ?)", found)


def _concepts_of(db: sqlite3.Connection) -> dict[str, Concept]:
    """The concepts of an index being written, by IRI."""
    rows = db.execute("SELECT id, iri, label, notation, entries FROM concept").fetchall()
    return {str(r[1]): Concept(int(r[0]), str(r[1]), str(r[2]), str(r[3]), int(r[4])) for r in rows}


def _common_row(
    db: sqlite3.Connection,
    asked: str,
    concepts: Mapping[str, Concept],
    rows: _FacetRows | None,
    ids: npt.NDArray[np.int64] | None = None,
) -> tuple[int, str, int, bytes]:
    """A common word's total, facet counts (_facets, as its search counts them; ids: its
    matches, read already), number of title matches and first COMMON_RANKED of them
    (_common_ranking)."""
    query = Search(words=(asked,))
    total, years, counts, publishers = _facets(db, query, concepts, rows, asked, ids)
    return total, _facets_json(years, counts, publishers), *_common_ranking(db, asked)


def _common_ranking(db: sqlite3.Connection, asked: str) -> tuple[int, bytes]:
    """How many titles the words match, and the ids of the first COMMON_RANKED of them in
    _ranked's order (int64, little-endian)."""
    ranked = [n for (n,) in db.execute(_RANKING + " LIMIT ?", (asked, COMMON_RANKED))]
    (titled,) = db.execute("SELECT count(*) FROM titles WHERE titles MATCH ?", (asked,)).fetchone()
    packed = array("q", ranked)
    if sys.byteorder == "big":
        packed.byteswap()
    return int(titled), packed.tobytes()


def _facets_json(
    years: Mapping[int, int], concepts: Mapping[int, int], publishers: Mapping[str, int]
) -> str:
    """Facet counts as the common table holds them (none of zero; the same text for the
    same counts, however they were come to)."""
    counts = {
        "concepts": {str(k): n for k, n in concepts.items() if n},
        "publishers": {str(k): n for k, n in publishers.items() if n},
        "years": {str(k): n for k, n in years.items() if n},
    }
    return json.dumps(counts, sort_keys=True)


def _update_common(
    db: sqlite3.Connection,
    gone: list[tuple[Any, ...]],
    made: list[tuple[Any, ...]],
    names: Iterable[str],
) -> None:
    """The common table brought to the rows a rebuild deleted and inserted (_changed_rows):
    a word kept has the facets of the rows deleted that it matched taken off its counts, and
    those of the rows inserted added (matched by FTS5 itself, in a temporary table of those
    rows with the same tokenizer); its ranking made again only when a title changed (BM25
    weighs each title against all of them, FTS5 §5.1.1); a word new to the table written in
    full, one no longer common taken out; none without facet arrays (_write_common)."""
    rows = _facet_rows(db)
    if rows is None:
        db.execute("DELETE FROM common")
        db.execute("DELETE FROM matched")
        return
    words = _common_words(db)
    old = {
        str(key): (int(total), json.loads(facets), int(titled), bytes(ranked))
        for key, total, facets, titled, ranked in db.execute(
            "SELECT words, total, facets, titled, ranked FROM common"
        )
    }
    db.executemany("DELETE FROM common WHERE words = ?", [(k,) for k in old if k not in words])
    kept = {key: asked for key, asked in words.items() if key in old}
    retitled = {r[:2] for r in gone} != {r[:2] for r in made}
    changes: dict[str, Counter[tuple[str, str]]] = {key: Counter() for key in kept}
    for documents, sign in ((gone, -1), (made, 1)):
        for key, matched in _matching(db, documents, kept).items():
            for row in matched:
                for facet in _row_facets(row):
                    changes[key][facet] += sign
    concepts = _concepts_of(db)
    for key, asked in words.items():
        if key not in old:
            db.execute(
                "INSERT INTO common VALUES (?, ?, ?, ?, ?, ?)",
                (key, asked, *_common_row(db, asked, concepts, rows)),
            )
            continue
        total, facets, titled, ranked = old[key]
        counted = {kind: Counter(facets[kind]) for kind in ("concepts", "publishers", "years")}
        for (kind, value), n in changes[key].items():
            counted[kind][value] += n
            if kind == "years":
                total += n
        if retitled:
            titled, ranked = _common_ranking(db, asked)
        db.execute(
            "UPDATE common SET total = ?, facets = ?, titled = ?, ranked = ? WHERE words = ?",
            (
                total,
                json.dumps({k: dict(+c) for k, c in counted.items()}, sort_keys=True),
                titled,
                ranked,
                key,
            ),
        )
    _update_bits(db, rows, words, set(kept), names)


def _update_bits(
    db: sqlite3.Connection,
    rows: _FacetRows,
    words: Mapping[str, str],
    kept: set[str],
    names: Iterable[str],
) -> None:
    """The matched table brought to a rebuild: the rows of the changed months (names) of
    the words kept matched again (FTS5 seeks to a month's ids), a new word's in full, those
    of the words gone taken out."""
    had = {str(key) for (key,) in db.execute("SELECT DISTINCT words FROM matched")}
    db.executemany("DELETE FROM matched WHERE words = ?", [(k,) for k in had if k not in words])
    months = [_month_id(name) >> _MONTH_BITS for name in names]
    for key, asked in words.items():
        if key in kept and key in had:
            db.executemany(
                "DELETE FROM matched WHERE words = ? AND month = ?", [(key, m) for m in months]
            )
            for month in months:
                low = month << _MONTH_BITS
                ids = _matched_ids(db, asked, low, low + (1 << _MONTH_BITS))
                _insert_bits(db, key, ids, rows, [month])
        else:
            db.execute("DELETE FROM matched WHERE words = ?", (key,))
            _insert_bits(db, key, _matched_ids(db, asked), rows)


def _matching(
    db: sqlite3.Connection, rows: list[tuple[Any, ...]], words: Mapping[str, str]
) -> dict[str, list[tuple[Any, ...]]]:
    """The rows (id, title, description, facets) each of these words matches, as search
    would: FTS5 with the same tokenizer, over a temporary table of these rows alone."""
    if not rows or not words:
        return {}
    db.execute(
        "CREATE VIRTUAL TABLE temp.kgpub_changed USING fts5(title, description, facets, "
        f"content='', tokenize='{TOKENIZE}')"
    )
    try:
        db.executemany(
            "INSERT INTO temp.kgpub_changed (rowid, title, description, facets) "
            "VALUES (?, ?, ?, ?)",
            rows,
        )
        by_id = {row[0]: row for row in rows}
        sql = "SELECT rowid FROM temp.kgpub_changed WHERE kgpub_changed MATCH ?"
        return {
            key: [by_id[n] for (n,) in db.execute(sql, (asked,))] for key, asked in words.items()
        }
    finally:
        db.execute("DROP TABLE temp.kgpub_changed")


def _row_facets(row: tuple[Any, ...]) -> list[tuple[str, str]]:
    """The facet values a document row (id, title, description, facets) counts for, as the
    common table names them: its year (of its id, as the search counts it), concepts (ids)
    and publishers (ids)."""
    found = [("years", str((row[0] >> _MONTH_BITS) // 12))]
    for token in str(row[3]).split():
        if token.startswith(_FACET + "c"):
            found.append(("concepts", token[2:]))
        elif token.startswith(_FACET + "p"):
            found.append(("publishers", bytes.fromhex(token[2:]).decode("utf-8")))
    return found


def _tally_months(db: sqlite3.Connection, iris: Iris, names: Iterable[str]) -> None:
    """The tally rows of these months counted again, list by list (each a range of member)."""
    lists = [str(row[0]) for row in db.execute("SELECT iri FROM concept")]
    lists.append(iris.library)
    for name in names:
        db.execute("DELETE FROM tally WHERE month = ?", (name,))
        low = iris.entry_prefix + name
        db.executemany(
            "INSERT INTO tally SELECT list, ?, count(*) FROM member "
            "WHERE list = ? AND iri >= ? AND iri < ? HAVING count(*) > 0",
            [(name, list_iri, low, _above(low)) for list_iri in lists],
        )


def _count(db: sqlite3.Connection, library: str) -> None:
    """The counts of the empty search and the category pages, entries per concept and year,
    summed from the tally (a row per list and month; an entry's IRI begins with its Added
    time, whose year is the entry's), not counted off member and entry: at 100k entries
    0.03-0.08 s of a rebuild's CPU, and an index on entry (year) of 1.6 MB to write."""
    db.execute(
        "UPDATE concept SET entries = "
        "(SELECT coalesce(sum(entries), 0) FROM tally WHERE tally.list = concept.iri)"
    )
    db.execute("DELETE FROM year")
    db.execute(
        "INSERT INTO year SELECT CAST(substr(month, 1, 4) AS INTEGER) AS y, sum(entries) "
        "FROM tally WHERE list = ? GROUP BY y",
        (library,),
    )


# --- searching ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Span:
    """A piece of a title or snippet: a match of the search, or the text between matches."""

    text: str
    match: bool = False


@dataclass(frozen=True)
class Concept:
    """A category as the index knows it."""

    id: int
    iri: str
    label: str
    notation: str
    entries: int


@dataclass(frozen=True)
class Hit:
    """One entry found: its IRI, title and description snippet (matches marked), times,
    categories (concept IRIs, by label) and publishers (ids, as its title names them)."""

    iri: str
    title: str
    created: str
    modified: str  # '' when never modified
    categories: tuple[str, ...]
    marked_title: tuple[Span, ...]
    snippet: tuple[Span, ...]
    publishers: tuple[str, ...] = ()


@dataclass(frozen=True)
class FacetValue:
    """One value of a facet: a concept IRI, a publisher id or a year, its label, how many
    entries of the current selection it has, and whether the search selects it."""

    key: str
    label: str
    count: int
    selected: bool


@dataclass(frozen=True)
class Search:
    """A search as the index runs it: words, selected categories (IRIs), years and
    publishers (ids), sort, page."""

    words: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    years: tuple[int, ...] = ()
    sort: str = "relevance"
    page: int = 1
    size: int = 20
    publishers: tuple[str, ...] = ()


@dataclass(frozen=True)
class Results:
    """One page of a search: how many entries it found, the page's hits, the facets."""

    search: Search
    total: int
    hits: tuple[Hit, ...]
    categories: tuple[FacetValue, ...]  # by label; counts for the current selection
    years: tuple[FacetValue, ...]  # newest first; counts as if no year were selected
    publishers: tuple[FacetValue, ...] = ()  # by name; counts for the current selection

    @property
    def pages(self) -> int:
        """How many pages the search has (1 when it found nothing)."""
        return max(1, -(-self.total // self.search.size))


def words_of(text: str) -> tuple[str, ...]:
    """The words of a search text (letters and digits, compatibility-normalized, as the
    tokenizer splits them); SearchError past MAX_TEXT characters or MAX_WORDS words."""
    if len(text) > MAX_TEXT:
        raise SearchError(f"the search text is longer than {MAX_TEXT} characters")
    words = tuple(_WORD.findall(unicodedata.normalize("NFKC", text)))
    if len(words) > MAX_WORDS:
        raise SearchError(
            f"a search takes at most {MAX_WORDS} words, not {len(words)}; drop a word"
        )
    return words


def match_expression(words: Sequence[str]) -> str:
    """The FTS5 query for words: each an FTS5 string ("" doubled inside), a prefix too when
    PREFIX_MIN characters or longer, all required (FTS5 §3.1, §3.3)."""
    return " AND ".join(_quoted(w) + (" *" if len(w) >= PREFIX_MIN else "") for w in words)


def _quoted(word: str) -> str:
    """A word as an FTS5 string (FTS5 §3.1: "" doubled inside)."""
    return '"' + word.replace('"', '""') + '"'


# Where _prefix_terms finds the index's terms: its term table, or, in an index written before
# it, FTS5's vocabulary (fts5vocab 'row', which reads every list of entries of the range).
_TERMS, _VOCABULARY = "main.term", "temp.kgpub_vocabulary"


def _prefix_terms(db: sqlite3.Connection, word: str, terms_of: str = _TERMS) -> list[str] | None:
    """What a word of PREFIX_MIN characters or more finds as a prefix (the terms of the index
    that begin with its stem, as FTS5 §3.3 finds them), as words of a query: the word itself
    for its stem, each other term as itself when the tokenizer keeps it as it is; None when
    the word is not one stem, or finds more than MAX_TERMS terms, or a term the tokenizer
    would stem again (Porter's stems are not all stems of themselves: "practition" is
    stemmed "practit"); then the word stays an FTS5 prefix query. terms_of: _TERMS, or
    _VOCABULARY for an index without the term table (the same terms, in the same order)."""
    stems = _tokens(db, word)
    if len(stems) != 1:
        return None
    (stem,) = stems
    terms = _stem_terms(db, stem, terms_of)
    return None if terms is None else [word if t == stem else t for t in terms]


def _word_part(
    db: sqlite3.Connection, word: str, terms_of: str, keyed: bool
) -> tuple[str, str | None]:
    """A word's part of the FTS5 query: its string (match_expression's), or for a prefix
    word the OR of the terms it finds (_prefix_terms); and, when keyed (the index has the
    common table), the terms it matches as that table names them (_common_key), None when
    it is not one term or stays an FTS5 prefix query."""
    part = match_expression([word])
    if len(word) < PREFIX_MIN and not keyed:
        return part, None
    stems = _tokens(db, word)
    if len(stems) != 1:
        return part, None
    (stem,) = stems
    if len(word) < PREFIX_MIN:
        return part, stem
    terms = _stem_terms(db, stem, terms_of)
    if terms is None:
        return part, None
    part = "(" + " OR ".join(_quoted(word if t == stem else t) for t in terms) + ")"
    return part, _common_key(terms) if keyed else None


def _stem_terms(db: sqlite3.Connection, stem: str, terms_of: str = _TERMS) -> list[str] | None:
    """The terms a prefix word of this stem finds (_prefix_terms), the stem as itself."""
    found = db.execute(
        f"SELECT term FROM {terms_of} WHERE term >= ? AND term < ? LIMIT ?",
        (stem, stem + "\U0010ffff", MAX_TERMS + 1),
    )
    terms = [str(t) for (t,) in found if str(t).startswith(stem)]
    others = [t for t in terms if t != stem]
    if not terms or len(terms) > MAX_TERMS or _tokens(db, " ".join(others)) != others:
        return None
    return terms


def _tokens(db: sqlite3.Connection, text: str) -> list[str]:
    """The terms the index's tokenizer makes of text, in order (a row of a temporary FTS5
    table on this connection, read back by fts5vocab, FTS5 §8)."""
    if not db.execute("SELECT 1 FROM temp.sqlite_master WHERE name = 'kgpub_text'").fetchone():
        db.execute(f"CREATE VIRTUAL TABLE temp.kgpub_text USING fts5(text, tokenize='{TOKENIZE}')")
        db.execute(
            "CREATE VIRTUAL TABLE temp.kgpub_terms USING fts5vocab(temp, kgpub_text, 'instance')"
        )
        db.execute(
            "CREATE VIRTUAL TABLE temp.kgpub_vocabulary USING fts5vocab(main, search, 'row')"
        )
    try:
        db.execute("INSERT INTO temp.kgpub_text (rowid, text) VALUES (1, ?)", (text,))
        rows = db.execute("SELECT term FROM temp.kgpub_terms ORDER BY offset").fetchall()
        db.execute("DELETE FROM temp.kgpub_text")
    finally:
        db.commit()
    return [str(t) for (t,) in rows]


def spans(marked: str) -> tuple[Span, ...]:
    """A text with the sentinels of snippet() and highlight() as spans."""
    out: list[Span] = []
    rest = marked
    while rest:
        start = rest.find(_OPEN)
        if start < 0:
            out.append(Span(rest))
            break
        if start:
            out.append(Span(rest[:start]))
        end = rest.find(_CLOSE, start + 1)
        if end < 0:
            end = len(rest)
        if end > start + 1:
            out.append(Span(rest[start + 1 : end], True))
        rest = rest[end + 1 :]
    return tuple(out)


def _opening(description: str, limit: int = 200) -> str:
    """The start of a description, cut at a word, for the hits of a search without words."""
    text = " ".join(description.split())
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(" ", 1)[0] + "…"


class Index:
    """A release's index, read-only; thread-safe (a connection per thread)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        self._concepts: dict[str, Concept] | None = None
        self._publisher_names: dict[str, str] | None = None
        self._months: tuple[str, list[tuple[int, int]]] | None = None
        self._tallies: dict[str, list[tuple[str, int]]] = {}
        self._meta_values: dict[str, str] = {}
        self._records: bool | None = None
        self._publishers: bool | None = None
        self._facets: tuple[_FacetRows | None] | None = None
        self._expansions: dict[str, tuple[str, str | None]] = {}
        self._terms_of: str | None = None
        self._common: bool | None = None
        self._matched: bool | None = None
        if not path.is_file():
            raise PublicationError(f"{path}: no index (built by an older kgpub: rebuild)")

    def _db(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            uri = self.path.resolve().as_uri() + "?mode=ro&immutable=1"
            try:
                db = sqlite3.connect(uri, uri=True, check_same_thread=False)
                # A connection per thread, each caching up to 2 MB of pages at SQLite's
                # default: 16 MiB more at 1M entries than at 10k in a worker of eight threads
                # (84 against 68 MiB of anonymous memory; 66 against 53 with 256 KiB). The
                # pages come from the OS's page cache, which every worker shares. (Mapping the
                # file instead, PRAGMA mmap_size, saved 2 MiB more but counted 450 MiB of the
                # file in each worker's RSS at 1M.)
                db.execute(f"PRAGMA cache_size = -{READ_CACHE_KIB}")
            except sqlite3.Error as exc:
                raise PublicationError(f"{self.path}: cannot open the index: {exc}") from exc
            self._local.db = db
        return db

    def has_table(self, name: str) -> bool:
        """Whether this index has the table name (_has_table)."""
        return bool(self._rows("SELECT 1 FROM sqlite_master WHERE name = ?", name))

    def _rows(self, sql: str, *args: object) -> list[tuple[object, ...]]:
        try:
            return self._db().execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise PublicationError(f"{self.path}: cannot read the index: {exc}") from exc

    def members(self, iri: str) -> Members:
        """The entries of a concept or of the library, newest first, read as they are shown."""
        return Members(self, iri)

    def concepts(self) -> list[str]:
        """The concept IRIs, sorted."""
        return [str(row[0]) for row in self._rows("SELECT iri FROM concept ORDER BY iri")]

    def category_counts(self) -> dict[str, int]:
        """Entries per concept IRI."""
        rows = self._rows("SELECT iri, entries FROM concept ORDER BY iri")
        return {str(iri): int(str(n)) for iri, n in rows}

    def count(self, iri: str) -> int:
        """How many entries a concept or the library has: the counts kept at build time (a
        count of the library's rows would read a million of them)."""
        rows = self._rows("SELECT entries FROM concept WHERE iri = ?", iri)
        if rows:
            return int(str(rows[0][0]))
        if not self._rows("SELECT 1 FROM member WHERE list = ? LIMIT 1", iri):
            return 0
        try:  # the library: every entry (an index of version 1 has no year table)
            return int(self._db().execute("SELECT sum(entries) FROM year").fetchone()[0])
        except (sqlite3.Error, TypeError):
            rows = self._rows("SELECT COUNT(*) FROM member WHERE list = ?", iri)
            return int(str(rows[0][0]))

    def page(self, iri: str, start: int, size: int) -> list[str]:
        """size entries of a list from position start (0: the newest), found from the list's
        tally: the month that holds position start, then its rows (a month of the library by
        the entries' ids, which are consecutive in a month: _month_id; of a category, its
        range of member). Page 5,000 of the library reads its 100 rows, a category's last
        page at most a month's rows before them, not the hundreds of thousands before them."""
        if size <= 0 or start < 0:
            return []
        tallies = self.tallies(iri)
        if tallies is None:
            return self._counted_off(iri, start, size)
        iris = Iris(self._meta("base"))
        for month, count in tallies:
            if start < count:
                if iri == iris.library:
                    rows = self._rows(
                        "SELECT iri FROM entry WHERE id <= ? ORDER BY id DESC LIMIT ?",
                        _month_id(month) + count - 1 - start,
                        size,
                    )
                else:
                    rows = self._rows(
                        "SELECT iri FROM member WHERE list = ? AND iri < ? "
                        "ORDER BY iri DESC LIMIT ? OFFSET ?",
                        iri,
                        _above(iris.entry_prefix + month),
                        size,
                        start,
                    )
                return [str(row[0]) for row in rows]
            start -= count
        return []

    def tallies(self, iri: str) -> list[tuple[str, int]] | None:
        """('YYYY-MM', entries) of each month of a list, newest first: a few hundred rows,
        read once per list and kept; None for an index written before the tally table."""
        found = self._tallies.get(iri)
        if found is None:
            if not self.has_table("tally"):
                return None
            rows = self._rows(
                "SELECT month, entries FROM tally WHERE list = ? ORDER BY month DESC", iri
            )
            found = self._tallies[iri] = [(str(m), int(str(n))) for m, n in rows]
        return found

    def publisher(self, pid: str) -> tuple[str, str, PublisherEntries] | None:
        """A publisher's name, owl:sameAs ('' for none) and entries newest first (read a page
        at a time: at 1M entries a publisher names tens of thousands, and reading them all
        for each page held 5 MiB more in a worker than at 10k), or None when the release
        names no such publisher."""
        rows = self._rows("SELECT name, sameas FROM publisher WHERE id = ?", pid)
        if not rows:
            return None
        return str(rows[0][0]), str(rows[0][1]), PublisherEntries(self, pid)

    def publishers_of(self, iri: str) -> list[tuple[str, str]]:
        """(id, name) of the publishers an entry's title names, in the order found."""
        rows = self._rows(
            "SELECT p.id, p.name FROM published e JOIN publisher p ON p.id = e.publisher "
            "WHERE e.iri = ? ORDER BY e.rank",
            iri,
        )
        return [(str(pid), str(name)) for pid, name in rows]

    def publishers(self) -> dict[str, str]:
        """The name of every publisher of the search's facet by id, in name order (read
        once: a row per publisher); none for an index written before the facet."""
        if self._publisher_names is None:
            rows: list[tuple[object, ...]] = []
            if self.has_table("issued"):
                rows = self._rows("SELECT id, name FROM publisher")
            found = sorted(
                ((str(p), str(n)) for p, n in rows), key=lambda r: (r[1].casefold(), r[0])
            )
            self._publisher_names = dict(found)
        return self._publisher_names

    def has_publishers(self) -> bool:
        """Whether the index holds the release's publishers (written since they are)."""
        if self._publishers is None:
            self._publishers = bool(
                self.has_table("publishers") and self._rows("SELECT 1 FROM publishers")
            )
        return self._publishers

    def has_records(self) -> bool:
        """Whether the index holds the history's records (graph/ledger.py), found by IRI."""
        if self._records is None:
            self._records = bool(
                self.has_table("record") and self._rows("SELECT 1 FROM record LIMIT 1")
            )
        return self._records

    def _meta(self, key: str) -> str:
        if key not in self._meta_values:
            rows = self._rows("SELECT value FROM meta WHERE key = ?", key)
            self._meta_values[key] = str(rows[0][0]) if rows else ""
        return self._meta_values[key]

    def _counted_off(self, iri: str, start: int, size: int) -> list[str]:
        """A page of an index without a tally: the library's by its months' ids, a
        category's counted off."""
        months = self._library_months(iri)
        if months is not None:
            for first, count in months:
                if start < count:
                    rows = self._rows(
                        "SELECT iri FROM entry WHERE id <= ? ORDER BY id DESC LIMIT ?",
                        first + count - 1 - start,
                        size,
                    )
                    return [str(row[0]) for row in rows]
                start -= count
            return []
        rows = self._rows(
            "SELECT iri FROM member WHERE list = ? ORDER BY iri DESC LIMIT ? OFFSET ?",
            iri,
            size,
            start,
        )
        return [str(row[0]) for row in rows]

    def entry_ids(self) -> dict[str, int]:
        """Every entry's id by IRI (for graph/enrich/meaning.py, which ranks by IRI)."""
        return {str(iri): int(str(n)) for n, iri in self._rows("SELECT id, iri FROM entry")}

    def ranked_ids(
        self,
        words: Sequence[str],
        categories: Iterable[str],
        years: Iterable[int],
        limit: int,
        publishers: Iterable[str] = (),
    ) -> list[int]:
        """The ids of at most limit entries a search selects, best first (BM25 with words,
        else newest first); every entry for an empty search."""
        query = _checked(self, words, categories, years, "relevance", 1, 1, publishers)
        selected = _expression(query, self.categories(), years=True)
        if not selected:
            return [int(str(r[0])) for r in self._rows("SELECT id FROM entry ORDER BY id DESC")]
        if query.words:
            weights = ", ".join(str(w) for w in WEIGHTS)
            sql = (
                f"SELECT rowid FROM search WHERE search MATCH ? AND rank MATCH "
                f"'bm25({weights})' ORDER BY rank LIMIT ?"
            )
        else:
            sql = "SELECT rowid FROM search WHERE search MATCH ? ORDER BY rowid DESC LIMIT ?"
        return [int(str(r[0])) for r in self._rows(sql, selected, limit)]

    def facet_counts(
        self, ids: Sequence[int]
    ) -> tuple[dict[str, int], dict[int, int], dict[str, int]]:
        """Entries per concept IRI, per year and per publisher id among the given entries:
        counted with numpy from the facet table's masks (_FacetRows, as the word search
        counts), else in SQL, 500 entries a statement."""
        rows = self._facet_arrays()
        if rows is not None:
            return _counted_ids(rows, ids, self.categories())
        by_id = {c.id: c.iri for c in self.categories().values()}
        issued = bool(self.publishers())
        concepts: dict[str, int] = {}
        publishers: dict[str, int] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            slots = ", ".join("?" * len(chunk))
            for concept, n in self._rows(
                f"SELECT concept, count(*) FROM subject WHERE entry IN ({slots}) GROUP BY concept",
                *chunk,
            ):
                iri = by_id[int(str(concept))]
                concepts[iri] = concepts.get(iri, 0) + int(str(n))
            if not issued:
                continue
            for pid, n in self._rows(
                f"SELECT publisher, count(*) FROM issued WHERE entry IN ({slots}) "
                "GROUP BY publisher",
                *chunk,
            ):
                publishers[str(pid)] = publishers.get(str(pid), 0) + int(str(n))
        years: dict[int, int] = {}
        for n in ids:
            year = (n >> _MONTH_BITS) // 12
            years[year] = years.get(year, 0) + 1
        return concepts, years, publishers

    def hits_by_id(self, ids: Sequence[int]) -> tuple[Hit, ...]:
        """The hits of entries by id, in that order, without marks."""
        if not ids:
            return ()
        slots = ", ".join("?" * len(ids))
        rows = self._rows(
            f"SELECT id, title, description, NULL, NULL FROM document WHERE id IN ({slots})", *ids
        )
        order = {n: at for at, n in enumerate(ids)}
        rows.sort(key=lambda r: order[int(str(r[0]))])
        try:
            return _hits_of_rows(self._db(), rows, self.categories())
        except sqlite3.Error as exc:
            raise PublicationError(f"{self.path}: cannot read the index: {exc}") from exc

    def _library_months(self, iri: str) -> list[tuple[int, int]] | None:
        """(first id, entries) of each month, newest first, when iri is the library's list
        (read once: a row per month); None for another list or an index without them."""
        if self._months is None:
            try:
                db = self._db()
                (base,) = db.execute("SELECT value FROM meta WHERE key = 'base'").fetchone()
                months = []
                for (name,) in db.execute("SELECT name FROM month ORDER BY name DESC").fetchall():
                    first = _month_id(str(name))
                    (top,) = db.execute(
                        "SELECT max(id) FROM entry WHERE id >= ? AND id < ?",
                        (first, first + (1 << _MONTH_BITS)),
                    ).fetchone()
                    if top is not None:
                        months.append((first, int(top) - first + 1))
                self._months = (str(base) + "library", months)
            except (sqlite3.Error, TypeError):
                self._months = ("", [])  # an index of version 1: counted off
        library, found = self._months
        return found if iri == library else None

    def categories(self) -> dict[str, Concept]:
        """Every concept by IRI, in label order (read once: a few rows)."""
        if self._concepts is None:
            (version,) = self._rows("SELECT value FROM meta WHERE key = 'version'")[0]
            if int(str(version)) < VERSION:  # its lists serve; it has no search
                raise PublicationError(f"{self.path}: no search (built by an older kgpub: rebuild)")
            rows = self._rows("SELECT id, iri, label, notation, entries FROM concept")
            found = [
                Concept(int(str(n)), str(iri), str(label), str(notation), int(str(entries)))
                for n, iri, label, notation, entries in rows
            ]
            found.sort(key=lambda c: (c.label.casefold(), c.iri))
            self._concepts = {c.iri: c for c in found}
        return self._concepts

    def search(
        self,
        words: str | Sequence[str] = (),
        categories: Iterable[str] = (),
        years: Iterable[int] = (),
        sort: str = "relevance",
        page: int = 1,
        size: int = 20,
        publishers: Iterable[str] = (),
    ) -> Results:
        """One page of the entries whose title or description holds every word (text is split
        by words_of), in every category given, by every publisher given (ids) and in any of
        the years given, with the facets of that selection; SearchError for what cannot be
        asked.

        Sorts: relevance (the entries whose title holds every word first, by BM25 over the
        titles, then the others newest first: _ranked; without words, newest first), newest
        or oldest (by the Added time, as the library's list)."""
        query = _checked(self, words, categories, years, sort, page, size, publishers)
        concepts = self.categories()
        try:
            # A one-word search of a common word: its row, whatever the facets.
            common = self._common_answer(query) if query.words else None
            faceted = bool(query.categories or query.years or query.publishers)
            if common is not None and not faceted:
                # A common word's counts and first ranks, kept by the build (_write_common).
                total, by_publisher = common.total, common.publishers
                years_found, counts = common.years, common.concepts
                expression = self.words_expression(query.words)
                hits = _hits(self._db(), query, concepts, expression, None, common)
            elif query.words or query.categories or query.years or query.publishers:
                # The counts and the page are two passes over the matches (the page's in
                # rank order): run at once, on this thread's connection and a pool thread's
                # (SQLite releases the GIL), a search costs the longer of the two.
                matched = self.words_expression(query.words) if query.words else None
                rows = self._facet_arrays()
                # A common word with a facet: its ranked ids, the first tier's candidates.
                ranked_by = common
                known = None
                if matched is not None and rows is not None:
                    known = self._common_ids(query, rows)
                if known is not None:
                    # Common words only: their matches from the matched table (_common_ids).
                    hits = _hits(self._db(), query, concepts, matched, rows, ranked_by)
                    total, years_found, counts, by_publisher = _facets(
                        self._db(), query, concepts, rows, matched, known
                    )
                elif matched is not None and rows is not None:
                    # The words' matches read in two halves by id on two pool threads (FTS5
                    # seeks to a rowid bound), while this one reads the page; counted here.
                    pool, middle = _POOL.get(), rows.middle()
                    first = pool.submit(lambda: _matched_ids(self._db(), matched, high=middle))
                    second = pool.submit(lambda: _matched_ids(self._db(), matched, low=middle))
                    hits = _hits(self._db(), query, concepts, matched, rows, ranked_by)
                    ids = _joined(first.result(), second.result())
                    total, years_found, counts, by_publisher = _facets(
                        self._db(), query, concepts, rows, matched, ids
                    )
                else:
                    counting = _POOL.get().submit(
                        lambda: _facets(self._db(), query, concepts, rows, matched)
                    )
                    hits = _hits(self._db(), query, concepts, matched, rows)
                    total, years_found, counts, by_publisher = counting.result()
            else:
                total, years_found, counts, by_publisher = _facets(self._db(), query, concepts)
                hits = _hits(self._db(), query, concepts)
        except sqlite3.Error as exc:
            raise PublicationError(f"{self.path}: cannot read the index: {exc}") from exc
        category_facet = tuple(
            FacetValue(c.iri, c.label, counts.get(c.id, 0), c.iri in query.categories)
            for c in concepts.values()
            if counts.get(c.id, 0) or c.iri in query.categories
        )
        year_facet = tuple(
            FacetValue(str(year), str(year), n, year in query.years)
            for year, n in sorted(
                {**dict.fromkeys(query.years, 0), **years_found}.items(), reverse=True
            )
        )
        return Results(
            query,
            total,
            hits,
            category_facet,
            year_facet,
            self.publisher_facet(by_publisher, query),
        )

    def words_expression(self, words: Sequence[str]) -> str:
        """The FTS5 query of words (match_expression's hits), each prefix word as an OR of
        the terms it finds (_prefix_terms), found once per process and word: FTS5 merges a
        prefix's terms into one list before it returns a row (its positions included: at
        100k entries 16 ms of CPU for "child" *, 4 for "child"), where an OR of the same
        terms is read lazily, as far as a page needs."""
        return " AND ".join(self._word(word)[0] for word in words)

    def _word(self, word: str) -> tuple[str, str | None]:
        """A word's part of the FTS5 query (words_expression) and the terms it matches, as
        the common table names them (_common_key; None: a word not answered from it)."""
        found = self._expansions.get(word)
        if found is None:
            try:
                db = self._db()
                if self._terms_of is None:
                    has = _has_table(db, "term")
                    self._terms_of = _TERMS if has else _VOCABULARY
                if self._common is None:
                    self._common = _has_table(db, "common")
                found = _word_part(db, word, self._terms_of, keyed=self._common)
            except sqlite3.Error as exc:
                raise PublicationError(f"{self.path}: cannot read the index: {exc}") from exc
            if len(self._expansions) >= _EXPANSIONS:
                self._expansions.clear()
            self._expansions[word] = found
        return found

    def _common_answer(self, query: Search) -> _Common | None:
        """What the common table holds of a search of one word, if it does (with a facet
        selected, only its ranked ids answer for it)."""
        if len(query.words) != 1:
            return None
        key = self._word(query.words[0])[1]
        if key is None:
            return None
        rows = self._rows("SELECT total, facets, titled, ranked FROM common WHERE words = ?", key)
        return _Common.of_row(rows[0]) if rows else None

    def _common_ids(self, query: Search, rows: _FacetRows) -> npt.NDArray[np.int64] | None:
        """The ids of the entries every word of a search matches, in id order, when every
        one is a common word: their matched rows intersected (a word of 808,000 entries and
        one of 625,000 at 1M: 9 ms of CPU, where FTS5 read their 550,000 matches in 110);
        None otherwise."""
        import numpy as np

        keys = [self._word(word)[1] for word in query.words]
        if not keys or None in keys:
            return None
        if self._matched is None:
            self._matched = self.has_table("matched")
        if not self._matched:
            return None
        unique = list(dict.fromkeys(keys))
        # Every word common, or none of their bits read (a word of 1 entry with "child": 1.5
        # ms of CPU, 0.6 without reading "child"'s).
        slots = ", ".join("?" * len(unique))
        common = self._rows(f"SELECT count(*) FROM common WHERE words IN ({slots})", *unique)
        if common[0][0] != len(unique):
            return None
        selected: npt.NDArray[np.bool_] | None = None
        for key in unique:
            found = self._rows("SELECT month, bits FROM matched WHERE words = ?", key)
            if not found:
                return None
            bits = _matched_rows(rows, found)
            if bits is None:
                return None
            selected = bits if selected is None else selected & bits
        if selected is None:
            return None
        row = np.flatnonzero(selected)
        month = rows.month_rows[row]
        return cast(
            "npt.NDArray[np.int64]",
            (rows.months[month] << _MONTH_BITS) + (row - rows.starts[month]),
        )

    def _facet_arrays(self) -> _FacetRows | None:
        """The facet table's arrays, mapped from index.facets or else read from the table,
        on the first search, then kept (two threads that both read them first keep either)."""
        if self._facets is None:
            try:
                db = self._db()
                self._facets = (_mapped_facets(self.path, db) or _facet_rows(db),)
            except sqlite3.Error as exc:
                raise PublicationError(f"{self.path}: cannot read the index: {exc}") from exc
        return self._facets[0]

    def publisher_facet(self, counts: Mapping[str, int], query: Search) -> tuple[FacetValue, ...]:
        """The publishers' facet (by name) of a selection's counts per publisher id."""
        return tuple(
            FacetValue(pid, name, counts.get(pid, 0), pid in query.publishers)
            for pid, name in self.publishers().items()
            if counts.get(pid, 0) or pid in query.publishers
        )


@functools.lru_cache(maxsize=4)  # the releases a process serves (a few, immutable)
def open_index(path: Path) -> Index:
    """The index at path, one per process: its lists, search and history (graph/ledger.py)
    share each thread's connection and the connection's page cache."""
    return Index(path)


# The counts of searches, beside their hits.
_POOL = ProcessPool(4, "kgpub-search")


def _checked(
    index: Index,
    words: str | Sequence[str],
    categories: Iterable[str],
    years: Iterable[int],
    sort: str,
    page: int,
    size: int,
    publishers: Iterable[str] = (),
) -> Search:
    """The search normalized, or SearchError."""
    found = words_of(words) if isinstance(words, str) else words_of(" ".join(words))
    if sort not in SORTS:
        raise SearchError(f"unknown sort {sort!r}; use one of {', '.join(SORTS)}")
    if page < 1:
        raise SearchError(f"page must be a positive integer, not {page}")
    if not 1 <= size <= MAX_SIZE:
        raise SearchError(f"a page holds 1 to {MAX_SIZE} hits, not {size}")
    chosen = tuple(dict.fromkeys(categories))
    picked = tuple(sorted(set(years), reverse=True))
    by = tuple(dict.fromkeys(publishers))
    if max(len(chosen), len(picked), len(by)) > MAX_VALUES:
        raise SearchError(f"a search selects at most {MAX_VALUES} categories, years and publishers")
    known = index.categories()
    unknown = [c for c in chosen if c not in known]
    if unknown:
        raise SearchError(f"no category <{unknown[0]}> in this library")
    named = index.publishers()
    missing = [p for p in by if p not in named]
    if missing:
        raise SearchError(f"no publisher {missing[0]!r} in this library")
    return Search(found, chosen, picked, sort, page, size, by)


def _expression(
    query: Search, concepts: Mapping[str, Concept], years: bool, words: str | None = None
) -> str:
    """The FTS5 query of what a search selects ('' for everything): its words (words: their
    expression, Index.words_expression's; else match_expression's), and its facets as tokens
    (every category and publisher, any year); without the year filter unless years."""
    parts = [words or match_expression(query.words)] if query.words else []
    parts += [f'"{_concept_token(concepts[iri].id)}"' for iri in query.categories]
    parts += [f'"{_publisher_token(pid)}"' for pid in query.publishers]
    if years and query.years:
        chosen = " OR ".join(f'"{_year_token(year)}"' for year in query.years)
        parts.append(f"({chosen})" if len(query.years) > 1 else chosen)
    return " AND ".join(parts)


# The year of an entry from its id (_month_id): counted without reading the entry's row.
_YEAR_OF_ID = f"((id >> {_MONTH_BITS}) / 12)"


class _FacetRows:
    """The facet table of an index as arrays, a row per entry in id order: each entry's
    concept mask, publisher mask (over publishers, one bit each) and month. Mapped from the
    release's index.facets (_mapped_facets: pages of the file, which the OS shares between
    workers) or, without one, read whole from the table on a worker's first search (a blob
    per month: 17 MB at 1M entries) and kept."""

    def __init__(
        self,
        months: npt.NDArray[np.int64],
        counts: npt.NDArray[np.int64],
        concepts: _U64,
        issued: _U64,
        publishers: list[str],
        month_rows: npt.NDArray[np.int32],
    ) -> None:
        import numpy as np

        self.months, self.counts = months, counts
        self.starts = np.concatenate(([0], np.cumsum(counts)[:-1])).astype(np.int64)
        self.concepts, self.issued, self.publishers = concepts, issued, publishers
        # Each row's month (its place in months): 4 bytes a row, where a year each took 8.
        self.month_rows = month_rows

    @classmethod
    def of_table(cls, months: list[tuple[int, bytes, str, bytes]]) -> _FacetRows:
        """The arrays of the facet table's rows (month, concepts, publishers, issued): each
        month's publisher masks, over its own list of ids, brought to one list of them all."""
        import numpy as np

        numbers = np.array([m for m, *_ in months], dtype=np.int64)
        counts = np.array([len(c) // 8 for _, c, _, _ in months], dtype=np.int64)
        concepts: _U64 = np.frombuffer(b"".join(c for _, c, _, _ in months), dtype="<u8")
        local = [json.loads(p) for _, _, p, _ in months]
        publishers = sorted({pid for found in local for pid in found})
        month_rows = np.repeat(np.arange(len(counts), dtype=np.int32), counts)
        issued: _U64 = np.zeros(len(concepts), dtype=np.uint64)  # filled below, month by month
        rows = cls(numbers, counts, concepts, issued, publishers, month_rows)
        at = {pid: n for n, pid in enumerate(publishers)}
        for (_, _, _, masks), found, start in zip(months, local, rows.starts, strict=True):
            if not found:
                continue
            bits = np.frombuffer(masks, dtype="<u8")
            part = issued[start : start + len(bits)]
            if found == publishers[: len(found)]:
                part |= bits
                continue
            for n, pid in enumerate(found):
                part |= ((bits >> np.uint64(n)) & np.uint64(1)) << np.uint64(at[pid])
        return rows

    def middle(self) -> int:
        """The first id of the month that holds the middle row: what splits the entries in
        two halves of about as many rows."""
        import numpy as np

        if not len(self.months):
            return 0
        at = int(np.searchsorted(np.cumsum(self.counts), len(self.concepts) // 2))
        return int(self.months[min(at, len(self.months) - 1)]) << _MONTH_BITS

    @property
    def years(self) -> npt.NDArray[np.int64]:
        """Each row's year."""
        return (self.months // 12)[self.month_rows]

    def rows_of(self, ids: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """The rows of entries by id."""
        import numpy as np

        month = np.searchsorted(self.months, ids >> _MONTH_BITS)
        return self.starts[month] + (ids & ((1 << _MONTH_BITS) - 1))


def _matched_rows(
    rows: _FacetRows, found: Sequence[tuple[object, ...]]
) -> npt.NDArray[np.bool_] | None:
    """Which rows of the facet arrays a common word matches, from its matched rows (month,
    bits); None if a month is not one of the arrays' (they are not of the same index)."""
    import numpy as np

    at = {month: n for n, month in enumerate(rows.months.tolist())}
    selected = np.zeros(len(rows.concepts), dtype=bool)
    for month, bits in found:
        n = at.get(int(cast(int, month)))
        if n is None:
            return None
        start, count = int(rows.starts[n]), int(rows.counts[n])
        packed = np.frombuffer(cast(bytes, bits), dtype=np.uint8)
        selected[start : start + count] = np.unpackbits(packed, count=count).view(bool)
    return selected


def _bit(n: int) -> np.uint64:
    """Bit n of a facet mask; none (0) past 63: an id no month's masks hold (_facet_row)."""
    import numpy as np

    return np.uint64(1 << n) if n < 64 else np.uint64(0)


def _facet_rows(db: sqlite3.Connection) -> _FacetRows | None:
    """The facet table as arrays; None for an index without one, or with a month past
    64 concept ids or publishers, or more than 64 publishers in all (counted in SQL)."""
    if not _has_table(db, "facet"):
        return None
    months = db.execute("SELECT month, concepts, publishers, issued FROM facet ORDER BY month")
    found = months.fetchall()
    if any(None in row for row in found):
        return None
    rows = _FacetRows.of_table(found)
    return rows if len(rows.publishers) <= 64 else None


_FACETS_MAGIC = b"KGFACET1"
_FACETS_HEAD = struct.Struct("<8sQ")  # the magic, then the length of the JSON header


def _facets_key(db: sqlite3.Connection) -> str:
    """What an index's facet rows are made of: its code and its months' digests (which hold
    each entry's categories, publishers and time: _month_digests). An index.facets is read
    only for the index whose key it holds."""
    parts = [f"{VERSION}", *(f"{k}={v}" for k, v in db.execute("SELECT key, value FROM meta"))]
    parts += (f"{name} {digest}" for name, digest in db.execute("SELECT name, digest FROM month"))
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def write_facets(path: Path, previous: Path | None = None) -> None:
    """Write the facet table's arrays of the index at path into index.facets beside it, for
    every worker to map instead of reading its own copy (20 MB at 1M entries): a JSON header
    (the index's key, the rows, the months and their counts, the publishers), then the
    concept masks (uint64), the publisher masks (uint64) and each row's month (int32),
    little-endian, 8-byte aligned. previous: the current release's file, hard-linked when it
    holds this index's key. Nothing is written for an index without facet rows."""
    target = path.with_name(FACETS_FILE)
    target.unlink(missing_ok=True)
    try:
        db = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True)
        try:
            key = _facets_key(db)
            if previous is not None and _facets_header(previous, key) is not None:
                os.link(previous, target)
                return
            rows = _facet_rows(db)
        finally:
            db.close()
        if rows is None:
            return
        header = json.dumps(
            {
                "key": key,
                "rows": len(rows.concepts),
                "months": rows.months.tolist(),
                "counts": rows.counts.tolist(),
                "publishers": rows.publishers,
            }
        ).encode()
        head = _FACETS_HEAD.pack(_FACETS_MAGIC, len(header)) + header
        with target.open("wb") as f:
            f.write(head + bytes(-len(head) % 8))
            f.write(rows.concepts.astype("<u8").tobytes())
            f.write(rows.issued.astype("<u8").tobytes())
            f.write(rows.month_rows.astype("<i4").tobytes())
    except (sqlite3.Error, OSError) as exc:
        raise PublicationError(f"{target}: cannot write the facets: {exc}") from exc


def _facets_header(path: Path, key: str) -> tuple[dict[str, Any], int] | None:
    """The JSON header of an index.facets and where its arrays begin, when it holds key and
    is whole; else None."""
    try:
        with path.open("rb") as f:
            magic, length = _FACETS_HEAD.unpack(f.read(_FACETS_HEAD.size))
            header = json.loads(f.read(length)) if magic == _FACETS_MAGIC else None
            size = os.fstat(f.fileno()).st_size
    except (OSError, struct.error, ValueError):
        return None
    if not isinstance(header, dict) or header.get("key") != key:
        return None
    start = _FACETS_HEAD.size + length
    start += -start % 8
    if size != start + 20 * int(header["rows"]):
        return None
    return header, start


def _mapped_facets(path: Path, db: sqlite3.Connection) -> _FacetRows | None:
    """The facet arrays of the index at path from its index.facets, memory-mapped (read-only
    views of the file); None without a file that holds this index's key."""
    import numpy as np

    facets = path.with_name(FACETS_FILE)
    found = _facets_header(facets, _facets_key(db))
    if found is None:
        return None
    header, start = found
    n = int(header["rows"])
    if n == 0:
        return None  # nothing to map: the table's rows are none too
    try:
        with facets.open("rb") as f:
            mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    except (OSError, ValueError):
        return None
    return _FacetRows(
        np.array(header["months"], dtype=np.int64),
        np.array(header["counts"], dtype=np.int64),
        np.frombuffer(mapped, dtype="<u8", count=n, offset=start),
        np.frombuffer(mapped, dtype="<u8", count=n, offset=start + 8 * n),
        list(header["publishers"]),
        np.frombuffer(mapped, dtype="<i4", count=n, offset=start + 16 * n),
    )


def _counted(
    db: sqlite3.Connection,
    rows: _FacetRows,
    query: Search,
    concepts: Mapping[str, Concept],
    words: str | None = None,
    ids: npt.NDArray[np.int64] | None = None,
) -> tuple[int, dict[int, int], dict[int, int], dict[str, int]]:
    """_facets with the facet table's arrays: the words matched once by FTS5 (their ids
    read as one text, 20x fewer rows to Python; ids: read already, _matched_ids), the
    categories, publishers and years selected and counted with numpy over those entries."""
    import numpy as np

    if query.words:
        if ids is None:
            ids = _matched_ids(db, words or match_expression(query.words))
        # The ids come in id order, a month's together: each one's month (its place in
        # rows.months) from where each month starts among them, not looked up one by one
        # (4 ms and two arrays of 4 MB fewer for 550,000 matches).
        starts = np.searchsorted(ids, rows.months << _MONTH_BITS)
        at = np.repeat(np.arange(len(rows.months)), np.diff(starts, append=len(ids)))
        picked = rows.starts[at] + (ids & ((1 << _MONTH_BITS) - 1))
        month: npt.NDArray[np.integer[Any]] = at
        masks, issued = rows.concepts[picked], rows.issued[picked]
    else:
        month, masks, issued = rows.month_rows, rows.concepts, rows.issued
    if not (query.categories or query.publishers or query.years):  # every one counts
        by_concept, by_publisher = _mask_counts(rows, masks, issued, concepts)
        return len(masks), _years(rows, month), by_concept, by_publisher
    keep = np.ones(len(masks), dtype=bool)
    for iri in query.categories:
        keep &= (masks & _bit(concepts[iri].id)) != 0
    for pid in query.publishers:
        if pid not in rows.publishers:
            keep[:] = False
            break
        keep &= (issued & _bit(rows.publishers.index(pid))) != 0
    by_year = _years(rows, month[keep])
    if query.years:
        keep &= np.isin(rows.months // 12, query.years)[month]
    masks, issued = masks[keep], issued[keep]
    by_concept, by_publisher = _mask_counts(rows, masks, issued, concepts)
    return len(masks), by_year, by_concept, by_publisher


def _years(rows: _FacetRows, month: npt.NDArray[np.integer[Any]]) -> dict[int, int]:
    """Entries per year of entries given by the index of their month in rows.months (ids
    come in order, a month's together): counted per month, summed per year."""
    import numpy as np

    by_year: dict[int, int] = {}
    per_month = np.bincount(month, minlength=len(rows.months))
    for number, n in zip(rows.months.tolist(), per_month.tolist(), strict=True):
        if n:
            by_year[number // 12] = by_year.get(number // 12, 0) + n
    return by_year


def _mask_counts(
    rows: _FacetRows, masks: _U64, issued: _U64, concepts: Mapping[str, Concept]
) -> tuple[dict[int, int], dict[str, int]]:
    """Entries per concept id and per publisher id among entries given by their masks (the
    facet table's: a bit a concept, a bit a publisher of rows.publishers); none of zero."""
    import numpy as np

    by_concept = {}
    for concept in concepts.values():
        found = int(np.count_nonzero(masks & _bit(concept.id)))
        if found:
            by_concept[concept.id] = found
    by_publisher = {}
    for n_bit, pid in enumerate(rows.publishers):
        found = int(np.count_nonzero(issued & _bit(n_bit)))
        if found:
            by_publisher[pid] = found
    return by_concept, by_publisher


def _counted_ids(
    rows: _FacetRows, ids: Sequence[int], concepts: Mapping[str, Concept]
) -> tuple[dict[str, int], dict[int, int], dict[str, int]]:
    """Entries per concept IRI, per year and per publisher id among these entries, from
    their facet rows (Index.facet_counts)."""
    import numpy as np

    picked = rows.rows_of(np.asarray(ids, dtype=np.int64))
    by_id, by_publisher = _mask_counts(rows, rows.concepts[picked], rows.issued[picked], concepts)
    iri_of = {c.id: c.iri for c in concepts.values()}
    by_concept = {iri_of[cid]: n for cid, n in by_id.items()}
    return by_concept, _years(rows, rows.month_rows[picked]), by_publisher


def _matched_ids(
    db: sqlite3.Connection, words: str, low: int | None = None, high: int | None = None
) -> npt.NDArray[np.int64]:
    """The ids of the entries the words match (from low, below high), in id order: read as
    one text (group_concat: the cost of a count(*) and its digits, where a row each to
    Python costs 20x more)."""
    import numpy as np

    sql = "SELECT group_concat(rowid) FROM search WHERE search MATCH ?"
    args: list[object] = [words]
    if low is not None:
        sql, args = sql + " AND rowid >= ?", [*args, low]
    if high is not None:
        sql, args = sql + " AND rowid < ?", [*args, high]
    (text,) = db.execute(sql, args).fetchone()
    return np.fromstring(text or "", dtype=np.int64, sep=",")


def _joined(*parts: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Arrays of ids one after the other."""
    import numpy as np

    return np.concatenate(parts)


def _has_table(db: sqlite3.Connection, name: str) -> bool:
    """Whether an index has the table name: those added since VERSION 2 (tally, facet,
    issued, publishers, record, titles, term) are looked for, an older index answers
    without them."""
    return db.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (name,)).fetchone() is not None


def _facets(
    db: sqlite3.Connection,
    query: Search,
    concepts: Mapping[str, Concept],
    rows: _FacetRows | None = None,
    words: str | None = None,
    ids: npt.NDArray[np.int64] | None = None,
) -> tuple[int, dict[int, int], dict[int, int], dict[str, int]]:
    """How many entries the search selects, entries per year (as if no year were selected),
    per concept and per publisher of the selection: from the facet table's rows when given
    (_counted), else in SQL (the words matched once per statement)."""
    selected = _expression(query, concepts, years=True, words=words)
    issued = _has_table(db, "issued")
    if selected and rows is not None:
        return _counted(db, rows, query, concepts, words, ids)
    if not selected:  # the whole library: the counts kept at build time
        years = dict(db.execute("SELECT year, entries FROM year").fetchall())
        publishers: dict[str, int] = {}
        if issued:  # a row per entry that names a publisher, by the table's key
            sql = "SELECT publisher, count(*) FROM issued GROUP BY publisher"
            publishers = dict(db.execute(sql).fetchall())
        concept_counts = {c.id: c.entries for c in concepts.values()}
        return sum(years.values()), years, concept_counts, publishers
    parts = [
        "SELECT 0, 0, count(*) FROM sel",
        "SELECT 2, s.concept, count(*) FROM sel JOIN subject s ON s.entry = sel.id "
        "GROUP BY s.concept",
    ]
    if issued:
        parts.append(
            "SELECT 3, i.publisher, count(*) FROM sel JOIN issued i ON i.entry = sel.id "
            "GROUP BY i.publisher"
        )
    years = {}
    unfiltered = _expression(query, concepts, years=False, words=words)
    if not query.years:
        parts.append(f"SELECT 1, {_YEAR_OF_ID} AS y, count(*) FROM sel GROUP BY y")
    elif not unfiltered:
        years = dict(db.execute("SELECT year, entries FROM year").fetchall())
    else:
        found = db.execute(
            f"SELECT {_YEAR_OF_ID.replace('id', 'rowid')} AS y, count(*) FROM search "
            "WHERE search MATCH ? GROUP BY y",
            (unfiltered,),
        )
        years = dict(found.fetchall())
    sql = (
        "WITH sel(id) AS MATERIALIZED (SELECT rowid FROM search WHERE search MATCH ?) "
        + " UNION ALL ".join(parts)
    )
    total, counts, by_publisher = 0, {}, {}
    for kind, key, n in db.execute(sql, (selected,)):
        if kind == 0:
            total = n
        elif kind == 1:
            years[key] = n
        elif kind == 2:
            counts[key] = n
        else:
            by_publisher[key] = n
    return total, years, counts, by_publisher


def _hits(
    db: sqlite3.Connection,
    query: Search,
    concepts: Mapping[str, Concept],
    words: str | None = None,
    rows: _FacetRows | None = None,
    common: _Common | None = None,
) -> tuple[Hit, ...]:
    """The page's hits. By relevance, _ranked's two tiers; else (and by relevance in an
    index without the titles table) one FTS5 statement that FTS5 itself orders (by rank:
    FTS5 §3.5.1, or by rowid) so that SQLite computes the highlights and snippets of the
    page's rows only, not of every match; then the entries' rows and categories, by id."""
    words = words or match_expression(query.words)
    if query.sort == "relevance" and query.words:
        ranked = _ranked(db, query, concepts, words, rows, common)
        if ranked is not None:
            return _hits_of_rows(db, ranked, concepts)
    selected = _expression(query, concepts, years=True, words=words)
    offset = (query.page - 1) * query.size
    marks = f"char({ord(_OPEN)}), char({ord(_CLOSE)})"
    if not selected:
        order = "id" if query.sort == "oldest" else "id DESC"
        sql = (
            "SELECT d.id, d.title, d.description, NULL, NULL FROM entry e "
            f"JOIN document d ON d.id = e.id ORDER BY e.{order} LIMIT ? OFFSET ?"
        )
        args: tuple[object, ...] = (query.size, offset)
    else:
        if query.words:
            columns = (
                f"highlight(search, 0, {marks}), snippet(search, 1, {marks}, '…', {SNIPPET_TOKENS})"
            )
        else:
            columns = "NULL, NULL"
        if query.sort == "relevance" and query.words:
            # Ties keep FTS5's order: a second key would make SQLite sort every match itself.
            weights = ", ".join(str(w) for w in WEIGHTS)
            rank, order = f" AND rank MATCH 'bm25({weights})'", "rank"
        else:  # ids follow the IRIs, which begin with the Added time
            rank, order = "", "rowid" if query.sort == "oldest" else "rowid DESC"
        sql = (
            f"SELECT rowid, title, description, {columns} FROM search "
            f"WHERE search MATCH ?{rank} ORDER BY {order} LIMIT ? OFFSET ?"
        )
        args = (selected, query.size, offset)
    return _hits_of_rows(db, db.execute(sql, args).fetchall(), concepts)


# The first tier of relevance: the title matches, best first (_ranked).
_RANKING = "SELECT rowid FROM titles WHERE titles MATCH ? ORDER BY rank, rowid DESC"


@dataclass(frozen=True)
class _Common:
    """A row of the common table: a one-word search's total and facet counts, and its
    title matches' number and first ids (_write_common)."""

    total: int
    years: dict[int, int]
    concepts: dict[int, int]
    publishers: dict[str, int]
    titled: int
    ranked: tuple[int, ...]

    @property
    def is_whole(self) -> bool:
        """Whether ranked holds every title match."""
        return len(self.ranked) == self.titled

    @classmethod
    def of_row(cls, row: Sequence[object]) -> _Common:
        """Of (total, facets, titled, ranked)."""
        total, facets, titled, ranked = row
        counts = json.loads(str(facets))
        ids = array("q")
        ids.frombytes(cast(bytes, ranked))
        if sys.byteorder == "big":
            ids.byteswap()
        return cls(
            int(cast(int, total)),
            {int(k): int(n) for k, n in counts["years"].items()},
            {int(k): int(n) for k, n in counts["concepts"].items()},
            {str(k): int(n) for k, n in counts["publishers"].items()},
            int(cast(int, titled)),
            tuple(ids),
        )


def _ranked(
    db: sqlite3.Connection,
    query: Search,
    concepts: Mapping[str, Concept],
    words: str,
    rows: _FacetRows | None,
    common: _Common | None = None,
) -> list[tuple[Any, ...]] | None:
    """The rows of a page by relevance (_hits_of_rows's), in two tiers: first the entries
    whose title holds every word, best first by BM25 over the titles alone (FTS5 §5.1.1: a
    title of fewer words and of rarer ones first, so an exact title first; ties newest
    first), read from the titles table (a few thousand rows where search has hundreds of
    thousands of matches) and held to the facets by their masks; then every other match,
    newest first, which FTS5 reads in rowid order as far as the page needs. Neither tier
    needs BM25 of every match (FTS5's ORDER BY rank: ~3 us a match, 2 s at 1M entries for
    two common words). None without the titles table, or with a facet and no facet rows."""
    faceted = bool(query.categories or query.years or query.publishers)
    if not _has_table(db, "titles") or (faceted and rows is None):
        return None
    import numpy as np

    offset = (query.page - 1) * query.size
    ranking = _RANKING
    want = offset + query.size
    if faceted:  # every title match, to keep those the facets select
        ids = np.array(common.ranked if common is not None else (), dtype=np.int64)
        if rows is not None and len(ids):
            ids = ids[_kept(rows, ids, query, concepts)]
        # A common word's first ids (_common_ranking) are the ranking's first: those of them
        # the facets keep are the first of those it keeps. Enough of them fill the page
        # without ranking every title match (217,000 for "child" at 1M entries: 0.39 s of
        # CPU); the second tier, which needs their number, is then not read.
        if common is None or not (len(ids) >= want or common.is_whole):
            found = db.execute(ranking, (words,)).fetchall()
            ids = np.array([n for (n,) in found], dtype=np.int64)
            if rows is not None and len(ids):
                ids = ids[_kept(rows, ids, query, concepts)]
        titled = len(ids)
    else:
        # The page's rows only: SQLite keeps the best of a LIMIT as it goes, where it sorted
        # every match (100k title matches of a word at 1M entries: 0.35 s of CPU for
        # "child", 0.19 with the limit). Fewer than the limit are all the title matches; as
        # many fill the page, and the second tier, which needs their number, is not read.
        # A common word's first ids are kept (_common_ranking): read, not ranked again.
        if common is not None and (want <= len(common.ranked) or common.is_whole):
            ids = np.array(common.ranked[:want], dtype=np.int64)
        else:
            found = db.execute(ranking + " LIMIT ?", (words, want)).fetchall()
            ids = np.array([n for (n,) in found], dtype=np.int64)
        titled = len(ids)
    marks = f"char({ord(_OPEN)}), char({ord(_CLOSE)})"
    columns = (
        f"rowid, title, description, highlight(search, 0, {marks}), "
        f"snippet(search, 1, {marks}, '…', {SNIPPET_TOKENS})"
    )
    page: list[tuple[Any, ...]] = []
    for n in ids[offset : offset + query.size].tolist():
        # A lookup by rowid within the words' matches: the marks of the whole text.
        page += db.execute(
            f"SELECT {columns} FROM search WHERE search MATCH ? AND rowid = ?", (words, n)
        ).fetchall()
    rest = query.size - len(page)
    if rest:
        selected = _expression(query, concepts, years=True, words=words)
        others = f"({selected}) NOT {{title}} : ({words})"  # FTS5 §3.5 column filter, §3.7 NOT
        page += db.execute(
            f"SELECT {columns} FROM search WHERE search MATCH ? ORDER BY rowid DESC "
            "LIMIT ? OFFSET ?",
            (others, rest, max(0, offset - titled)),
        ).fetchall()
    return page


def _kept(
    rows: _FacetRows, ids: npt.NDArray[np.int64], query: Search, concepts: Mapping[str, Concept]
) -> npt.NDArray[np.bool_]:
    """Which of these entries are in every category and of every publisher selected, and in
    any year selected (their facet rows' masks)."""
    import numpy as np

    picked = rows.rows_of(ids)
    masks, issued = rows.concepts[picked], rows.issued[picked]
    keep = np.ones(len(ids), dtype=bool)
    for iri in query.categories:
        keep &= (masks & _bit(concepts[iri].id)) != 0
    for pid in query.publishers:
        if pid not in rows.publishers:
            keep[:] = False
            break
        keep &= (issued & _bit(rows.publishers.index(pid))) != 0
    if query.years:
        keep &= np.isin(rows.months // 12, query.years)[rows.month_rows[picked]]
    return keep


def _hits_of_rows(
    db: sqlite3.Connection,
    found: Sequence[tuple[Any, ...]],
    concepts: Mapping[str, Concept],
) -> tuple[Hit, ...]:
    """The hits of rows (id, title, description, marked title or NULL, snippet or NULL)."""
    if not found:
        return ()
    ids = [row[0] for row in found]
    slots = ", ".join("?" * len(ids))
    rows = {
        n: (iri, created, modified)
        for n, iri, created, modified in db.execute(
            f"SELECT id, iri, created, modified FROM entry WHERE id IN ({slots})", ids
        )
    }
    by_id = {c.id: c for c in concepts.values()}
    rank_of = {iri: n for n, iri in enumerate(concepts)}
    tags: dict[int, list[str]] = {}
    for entry, concept in db.execute(
        f"SELECT entry, concept FROM subject WHERE entry IN ({slots})", ids
    ):
        tags.setdefault(entry, []).append(by_id[concept].iri)
    issued: dict[int, list[str]] = {}
    if _has_table(db, "issued"):
        for entry, pid in db.execute(
            f"SELECT entry, publisher FROM issued WHERE entry IN ({slots})", ids
        ):
            issued.setdefault(entry, []).append(pid)
    hits = []
    for n, title, description, marked_title, snippet in found:
        iri, created, modified = rows[n]
        if marked_title is not None:
            title_spans, text = spans(marked_title), spans(snippet)
        else:
            title_spans = (Span(title),)
            text = (Span(_opening(description)),) if description else ()
        categories = tuple(sorted(tags.get(n, []), key=rank_of.__getitem__))
        publishers = tuple(issued.get(n, ()))
        hits.append(Hit(iri, title, created, modified, categories, title_spans, text, publishers))
    return tuple(hits)


class _Windowed(Sequence[str]):
    """Entry IRIs read a window at a time: a subclass gives its length (_count, asked once)
    and _window(start, size); an item or a slice is one window."""

    _length: int | None = None

    def __len__(self) -> int:
        if self._length is None:
            self._length = self._count()
        return self._length

    def _count(self) -> int:
        raise NotImplementedError

    @overload
    def __getitem__(self, key: int) -> str: ...

    @overload
    def __getitem__(self, key: slice) -> list[str]: ...

    def __getitem__(self, key: int | slice) -> str | list[str]:
        if isinstance(key, slice):
            start, stop, step = key.indices(len(self))
            if step != 1:
                return list(self)[key]
            return self._window(start, stop - start)
        position = key + len(self) if key < 0 else key
        found = self._window(position, 1)
        if not found:
            raise IndexError(key)
        return found[0]

    def _window(self, start: int, size: int) -> list[str]:
        raise NotImplementedError


class PublisherEntries(_Windowed):
    """The entries a publisher's name is in, newest first, as a sequence: its length and
    slices are each one query (of the published_by index)."""

    def __init__(self, index: Index, pid: str) -> None:
        self._source, self.pid = index, pid

    def _count(self) -> int:
        rows = self._source._rows("SELECT count(*) FROM published WHERE publisher = ?", self.pid)
        return int(cast(int, rows[0][0]))

    def _window(self, start: int, size: int) -> list[str]:
        rows = self._source._rows(
            "SELECT iri FROM published WHERE publisher = ? ORDER BY iri DESC LIMIT ? OFFSET ?",
            self.pid,
            size,
            start,
        )
        return [str(r[0]) for r in rows]


class Members(_Windowed):
    """One list of the index as a sequence: its length and slices are each one query."""

    def __init__(self, index: Index, iri: str) -> None:
        self._source, self.iri = index, iri

    def _count(self) -> int:
        return self._source.count(self.iri)

    def _window(self, start: int, size: int) -> list[str]:
        return self._source.page(self.iri, start, size)

    def __iter__(self) -> Iterator[str]:
        size, start = 10_000, 0
        while batch := self._source.page(self.iri, start, size):
            yield from batch
            start += len(batch)


# --- browsing: what the people's pages show besides the lists (years, neighbours, guesses) -------
#
# Every list of the member table is (list IRI, entry IRI) in a covering index, and an entry's
# IRI begins with its Added time (entry/YYYY-MM-DD-HHMM-...): a year of a list is one range
# of it, the entries either side of one are one step each way, and the entries whose IRI
# starts with a given text are one range too. Titles come from the document table, found by
# the id range of the entry's month (the entry table has no index on IRIs).


@dataclass(frozen=True)
class Listed:
    """An entry as a list on a people's page shows it: its IRI, title and Added time."""

    iri: str
    title: str
    created: str


def _above(text: str) -> str:
    """The least string above every string that starts with text (a range's upper bound)."""
    return text + "\U0010ffff"


def list_years(index: Index, list_iri: str, entry_prefix: str) -> list[tuple[int, int]]:
    """(year, entries) of a list (the library or a concept), newest first; entry_prefix is
    the start of every entry IRI (<base>entry/). From the list's tally (a row per month);
    an index without one counts the list's rows."""
    tallies = index.tallies(list_iri)
    if tallies is not None:
        years: dict[int, int] = {}
        for month, n in tallies:
            if month[:4].isdigit():
                years[int(month[:4])] = years.get(int(month[:4]), 0) + n
        return sorted(years.items(), reverse=True)
    start = len(entry_prefix) + 1
    rows = index._rows(
        "SELECT substr(iri, ?, 4) AS y, count(*) FROM member WHERE list = ? AND iri >= ? "
        "AND iri < ? GROUP BY y ORDER BY y DESC",
        start,
        list_iri,
        entry_prefix,
        _above(entry_prefix),
    )
    return [(int(str(y)), int(str(n))) for y, n in rows if str(y).isdigit()]


class YearMembers(_Windowed):
    """The entries of one year of a list, newest first, as a sequence: its length and
    slices are each one range query."""

    def __init__(self, index: Index, list_iri: str, entry_prefix: str, year: int) -> None:
        self._index, self.iri, self.year = index, list_iri, year
        self._low, self._high = f"{entry_prefix}{year:04d}", f"{entry_prefix}{year + 1:04d}"

    def _count(self) -> int:
        tallies = self._index.tallies(self.iri)
        if tallies is not None:
            return sum(n for _, n in self._months(tallies))
        rows = self._index._rows(
            "SELECT count(*) FROM member WHERE list = ? AND iri >= ? AND iri < ?",
            self.iri,
            self._low,
            self._high,
        )
        return int(str(rows[0][0]))

    def _months(self, tallies: list[tuple[str, int]]) -> list[tuple[str, int]]:
        year = f"{self.year:04d}"
        return [(m, n) for m, n in tallies if m[:4] == year]

    def _window(self, start: int, size: int) -> list[str]:
        if size <= 0 or start < 0:
            return []
        tallies = self._index.tallies(self.iri)
        if tallies is not None:  # the year's rows are the list's, after the later years'
            later = sum(n for m, n in tallies if m[:4] > f"{self.year:04d}")
            size = min(size, len(self) - start)
            return self._index.page(self.iri, later + start, size) if size > 0 else []
        rows = self._index._rows(
            "SELECT iri FROM member WHERE list = ? AND iri >= ? AND iri < ? "
            "ORDER BY iri DESC LIMIT ? OFFSET ?",
            self.iri,
            self._low,
            self._high,
            size,
            start,
        )
        return [str(row[0]) for row in rows]


def neighbours(index: Index, list_iri: str, iri: str) -> tuple[str | None, str | None]:
    """The entries just before and just after iri in a list shown newest first: (the next
    newer, the next older); None at either end."""
    newer = index._rows(
        "SELECT iri FROM member WHERE list = ? AND iri > ? ORDER BY iri LIMIT 1", list_iri, iri
    )
    older = index._rows(
        "SELECT iri FROM member WHERE list = ? AND iri < ? ORDER BY iri DESC LIMIT 1",
        list_iri,
        iri,
    )
    return (str(newer[0][0]) if newer else None, str(older[0][0]) if older else None)


def around(index: Index, list_iri: str, iri: str, size: int) -> list[str]:
    """At most size other entries of a list nearest to iri in its order, newest first: as
    many newer as older, the rest from the other side where one side runs out."""
    newer = [
        str(r[0])
        for r in index._rows(
            "SELECT iri FROM member WHERE list = ? AND iri > ? ORDER BY iri LIMIT ?",
            list_iri,
            iri,
            size,
        )
    ]
    older = [
        str(r[0])
        for r in index._rows(
            "SELECT iri FROM member WHERE list = ? AND iri < ? ORDER BY iri DESC LIMIT ?",
            list_iri,
            iri,
            size,
        )
    ]
    half = size // 2
    take_newer = min(len(newer), max(half, size - len(older)))
    take_older = min(len(older), size - take_newer)
    return [*reversed(newer[:take_newer]), *older[:take_older]]


def starting_with(index: Index, list_iri: str, prefix: str, size: int) -> tuple[list[str], int]:
    """The first size entries of a list (newest first) whose IRI starts with prefix, and how
    many there are in all: the guesses for a cut-off entry URL."""
    rows = index._rows(
        "SELECT iri FROM member WHERE list = ? AND iri >= ? AND iri < ? ORDER BY iri DESC LIMIT ?",
        list_iri,
        prefix,
        _above(prefix),
        size,
    )
    (count,) = index._rows(
        "SELECT count(*) FROM member WHERE list = ? AND iri >= ? AND iri < ?",
        list_iri,
        prefix,
        _above(prefix),
    )[0]
    return [str(r[0]) for r in rows], int(str(count))


def listed(index: Index, iris: Sequence[str], entry_prefix: str) -> list[Listed]:
    """Title and Added time of each entry, in the order given (entries the index does not
    hold are left out): by IRI from the history's records (graph/ledger.py: an index on
    IRIs, so a row per entry asked), else one query per month of the entries (a scan of
    that month's rows)."""
    found: dict[str, Listed] = {}
    if index.has_records():
        for start in range(0, len(iris), 500):
            chunk = iris[start : start + 500]
            slots = ", ".join("?" * len(chunk))
            for found_iri, created, title in index._rows(
                f"SELECT iri, created, title FROM record WHERE iri IN ({slots}) "
                "AND deleted IS NULL",
                *chunk,
            ):
                found[str(found_iri)] = Listed(str(found_iri), str(title), str(created))
        return [found[iri] for iri in iris if iri in found]
    months: dict[str, list[str]] = {}
    for iri in iris:
        month = iri[len(entry_prefix) : len(entry_prefix) + 7]
        if iri.startswith(entry_prefix) and re.fullmatch(r"[0-9]{4}-[0-9]{2}", month):
            months.setdefault(month, []).append(iri)
    for month, wanted in months.items():
        if not 1 <= int(month[5:]) <= 12:
            continue
        first = _month_id(month)
        slots = ", ".join("?" * len(wanted))
        for found_iri, created, title in index._rows(
            "SELECT e.iri, e.created, d.title FROM entry e JOIN document d ON d.id = e.id "
            f"WHERE e.id >= ? AND e.id < ? AND e.iri IN ({slots})",
            first,
            first + (1 << _MONTH_BITS),
            *wanted,
        ):
            found[str(found_iri)] = Listed(str(found_iri), str(title), str(created))
    return [found[iri] for iri in iris if iri in found]
