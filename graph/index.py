"""The release's on-disk index (index.sqlite): the lists a page shows, read row by row.

Written once per release at publication time and never changed, it answers what serving asks
of long lists without holding them in a worker: the entries of a category or of the library,
newest first, a page at a time (LIMIT/OFFSET on a covering index), their counts, the concepts.
Every worker opens it read-only and immutable (no locks, no journal), so the kernel's page cache
is the one copy all workers share; whichever store holds the graph (graph/store), the index
answers the same. Entry IRIs start with their Added time (entry/YYYY-MM-DD-HHMM-...), so
descending IRI order is newest first and stable, as graph/store/oxigraph.py orders members.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import overload

from graph.convert import Converted
from graph.errors import PublicationError

FILE = "index.sqlite"
VERSION = 1
_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE concept (iri TEXT PRIMARY KEY, label TEXT NOT NULL, entries INTEGER NOT NULL)
  WITHOUT ROWID;
CREATE TABLE member (list TEXT NOT NULL, iri TEXT NOT NULL, PRIMARY KEY (list, iri))
  WITHOUT ROWID;
"""
_BATCH = 50_000


def write_release_index(folder: Path, converted: Converted) -> Path:
    """Write folder/index.sqlite for a converted library; its path."""
    path = folder / FILE
    path.unlink(missing_ok=True)
    library = converted.iris.library
    try:
        db = sqlite3.connect(path)
        try:
            # A new file written once: no journal to keep, nothing to sync twice (the build
            # syncs every file of the release before the swap).
            db.execute("PRAGMA journal_mode = OFF")
            db.execute("PRAGMA synchronous = OFF")
            db.executescript(_SCHEMA)
            db.execute("INSERT INTO meta VALUES ('version', ?)", (str(VERSION),))
            counts = dict.fromkeys(converted.categories, 0)
            rows: list[tuple[str, str]] = []
            for iri, entry in converted.entries.items():
                rows.append((library, iri))
                for label in entry.categories:
                    concept = converted.iris.concept(label)
                    counts[concept] = counts.get(concept, 0) + 1
                    rows.append((concept, iri))
                if len(rows) >= _BATCH:
                    db.executemany("INSERT INTO member VALUES (?, ?)", rows)
                    rows.clear()
            db.executemany("INSERT INTO member VALUES (?, ?)", rows)
            db.executemany(
                "INSERT INTO concept VALUES (?, ?, ?)",
                ((c.iri, c.label, counts.get(c.iri, 0)) for c in converted.categories.values()),
            )
            db.commit()
        finally:
            db.close()
    except sqlite3.Error as exc:
        raise PublicationError(f"{path}: cannot write the index: {exc}") from exc
    return path


class Index:
    """A release's index, read-only; thread-safe (a connection per thread)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        if not path.is_file():
            raise PublicationError(f"{path}: no index (built by an older kgpub: rebuild)")

    def _db(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            uri = self.path.resolve().as_uri() + "?mode=ro&immutable=1"
            try:
                db = sqlite3.connect(uri, uri=True, check_same_thread=False)
            except sqlite3.Error as exc:
                raise PublicationError(f"{self.path}: cannot open the index: {exc}") from exc
            self._local.db = db
        return db

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
        """How many entries a concept or the library has."""
        rows = self._rows("SELECT COUNT(*) FROM member WHERE list = ?", iri)
        return int(str(rows[0][0]))

    def page(self, iri: str, start: int, size: int) -> list[str]:
        """size entries of a list from position start (0: the newest)."""
        if size <= 0 or start < 0:
            return []
        rows = self._rows(
            "SELECT iri FROM member WHERE list = ? ORDER BY iri DESC LIMIT ? OFFSET ?",
            iri,
            size,
            start,
        )
        return [str(row[0]) for row in rows]


class Members(Sequence[str]):
    """One list of the index as a sequence: its length and slices are each one query."""

    def __init__(self, index: Index, iri: str) -> None:
        self._source, self.iri = index, iri
        self._length: int | None = None

    def __len__(self) -> int:
        if self._length is None:
            self._length = self._source.count(self.iri)
        return self._length

    @overload
    def __getitem__(self, key: int) -> str: ...

    @overload
    def __getitem__(self, key: slice) -> list[str]: ...

    def __getitem__(self, key: int | slice) -> str | list[str]:
        if isinstance(key, slice):
            start, stop, step = key.indices(len(self))
            if step != 1:
                return list(self)[key]
            return self._source.page(self.iri, start, stop - start)
        position = key + len(self) if key < 0 else key
        found = self._source.page(self.iri, position, 1)
        if not found:
            raise IndexError(key)
        return found[0]

    def __iter__(self) -> Iterator[str]:
        size, start = 10_000, 0
        while batch := self._source.page(self.iri, start, size):
            yield from batch
            start += len(batch)
