"""The read half of enrichment, for serving and for the next build: a release's related
entries and vectors (enrich.sqlite and its month parts, written by graph/enrich/related.py),
and the model to embed a search's text.

A release's enrichment is a small head, enrich.sqlite (meta, and a `part` row per month of
entries), and per month two immutable files in enrich/, named by the month and the SHA-256
of their bytes, which the next release hard-links when that month did not change:
  <month>-<sha256>.sqlite   vector(row, iri, digest): the month's entries, row in IRI order
                            within the month; related(iri, rank, target, dot, score, title)
  <month>-<sha256>.npy      the month's (rows, 384) int8 vectors, rows as `vector`
The months' rows, in month order, are the release's rows in IRI order (a month is the
'YYYY-MM' its entries' IRIs open with: graph/enrich/linkset.py month_of). A release built
before 2026-12-04 has one enrich.sqlite holding the vector and related tables itself (and
enrich-vectors.npy beside it): read as one part.

Needs numpy for the vectors and the meaning search, and the [enrich] extra's model for the
latter; related entries are plain rows, served without either.
"""

from __future__ import annotations

import sqlite3
import threading
from bisect import bisect_right
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from graph.errors import EnrichmentUnavailable, PublicationError

FILE = "enrich.sqlite"
FOLDER = "enrich"  # the months' parts, beside FILE
VECTORS = "enrich-vectors.npy"  # one file of every vector, before the months' parts
CONNECTIONS = 16  # parts' connections kept open per thread (108 months at 100k generated)


@dataclass(frozen=True)
class Part:
    """One month of a release's enrichment: the first IRI of its entries, how many, and its
    two files in FOLDER (graph/enrich/related.py writes them)."""

    month: str
    first: str
    rows: int
    db: str
    vectors: str


def connect(path: Path) -> sqlite3.Connection:
    """A read-only connection to an enrichment file (a release never changes one)."""
    uri = path.resolve().as_uri() + "?mode=ro&immutable=1"
    return sqlite3.connect(uri, uri=True, check_same_thread=False)


def read_parts(head: Path) -> list[Part] | None:
    """The months' parts the head (a release's FILE) lists, in IRI order; None for a head
    that holds its rows itself (built before the parts); sqlite3.Error when unreadable."""
    db = connect(head)
    try:
        tables = {str(r[0]) for r in db.execute("SELECT name FROM sqlite_master")}
        if "part" not in tables:
            return None
        rows = db.execute("SELECT month, first, rows, db, vectors FROM part ORDER BY month")
        return [Part(str(m), str(f), int(n), str(d), str(v)) for m, f, n, d, v in rows]
    finally:
        db.close()


def databases(head: Path) -> list[Path]:
    """The SQLite files that hold a release's vector and related rows, in IRI order: its
    months' parts, or the head itself (built before the parts)."""
    listed = read_parts(head)
    if listed is None:
        return [head]
    return [head.with_name(FOLDER) / p.db for p in listed]


def rows_of(head: Path, table: str) -> list[tuple[Any, ...]]:
    """Every row of the vector or related table of a release's enrichment, in IRI order (the
    vector rows numbered from 0 across the months, without a vector blob): what a full build
    and a rebuild must agree on (tests, bench)."""
    out: list[tuple[Any, ...]] = []
    for path in databases(head):
        db = connect(path)
        try:
            if table == "vector":
                found = db.execute("SELECT iri, digest FROM vector ORDER BY row").fetchall()
                out += [(len(out) + n, iri, digest) for n, (iri, digest) in enumerate(found)]
            else:
                out += db.execute(f"SELECT * FROM {table} ORDER BY iri, rank").fetchall()
        finally:
            db.close()
    return out


@dataclass(frozen=True)
class Related:
    """One related entry: its IRI, title and score (cosine of the two entries' texts, 3
    places)."""

    iri: str
    title: str
    score: float


class Enrichment:
    """A release's enrichment (FILE and its months' parts), read-only; thread-safe (a
    connection per thread and file)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        self._lock = threading.Lock()
        self._vectors: tuple[list[str], Any] | None = None
        self._parts: list[Part] | None = None
        self._read = False

    @classmethod
    def of(cls, release: Path) -> Enrichment | None:
        """The release's enrichment, or None when it was built without."""
        path = release / FILE
        return cls(path) if path.is_file() else None

    def parts(self) -> list[Part] | None:
        """The months' parts (read.py read_parts), read once."""
        with self._lock:
            if not self._read:
                try:
                    self._parts = read_parts(self.path)
                except sqlite3.Error as exc:
                    raise PublicationError(
                        f"{self.path}: cannot read related entries: {exc}"
                    ) from exc
                self._read = True
            return self._parts

    def _rows(self, path: Path, sql: str, *args: object) -> list[tuple[Any, ...]]:
        """Rows of one of the release's files, through this thread's connection to it (the
        last CONNECTIONS kept)."""
        kept: dict[Path, sqlite3.Connection] | None = getattr(self._local, "db", None)
        if kept is None:
            kept = self._local.db = {}
        try:
            db = kept.pop(path, None)
            if db is None:
                db = connect(path)
                if len(kept) >= CONNECTIONS:
                    kept.pop(next(iter(kept))).close()
            kept[path] = db  # the most recent last
            return db.execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise PublicationError(f"{path}: cannot read related entries: {exc}") from exc

    def _file_of(self, iri: str) -> Path | None:
        """The file that holds an entry's rows: its month's part (by the parts' first IRIs),
        or the head itself (built before the parts)."""
        listed = self.parts()
        if listed is None:
            return self.path
        at = bisect_right([p.first for p in listed], iri) - 1
        return self.path.with_name(FOLDER) / listed[at].db if at >= 0 else None

    def related(self, iri: str) -> list[Related]:
        """The entries related to one, closest first."""
        path = self._file_of(iri)
        if path is None:
            return []
        rows = self._rows(
            path, "SELECT target, title, score FROM related WHERE iri = ? ORDER BY rank", iri
        )
        return [Related(str(t), str(title), float(s)) for t, title, s in rows]

    def vectors(self) -> tuple[list[str], Any]:
        """The IRIs (IRI order) and their int8 vectors (an (N, 384) matrix), read once: the
        months' vector files memory-mapped (shared by the workers through the page cache)
        and read as one matrix (graph/enrich/stacked.py Stacked); in a release built before
        the parts, VECTORS memory-mapped (float32 values before 2026-12-03), else the vector
        table's blobs."""
        listed = self.parts()
        with self._lock:
            if self._vectors is None:
                try:
                    import numpy as np

                    from graph.enrich.stacked import Stacked
                except ImportError as exc:
                    raise EnrichmentUnavailable(
                        "the meaning search needs the [enrich] extra (numpy)"
                    ) from exc
                mapped = self.path.with_name(VECTORS)
                if listed is not None:
                    folder = self.path.with_name(FOLDER)
                    iris, pieces = [], []
                    for part in listed:
                        path = folder / part.db
                        found = self._rows(path, "SELECT iri FROM vector ORDER BY row")
                        iris += [str(r[0]) for r in found]
                        piece = np.load(folder / part.vectors, mmap_mode="r")
                        if piece.shape[0] != part.rows or len(found) != part.rows:
                            raise PublicationError(f"{path}: not the {part.rows} rows listed")
                        pieces.append(piece)
                    self._vectors = (iris, Stacked(pieces))
                elif mapped.is_file():
                    rows = self._rows(self.path, "SELECT iri FROM vector ORDER BY row")
                    iris = [str(r[0]) for r in rows]
                    matrix = np.load(mapped, mmap_mode="r")
                    if matrix.shape[0] != len(iris):
                        raise PublicationError(f"{mapped}: {matrix.shape[0]} rows, not {len(iris)}")
                    self._vectors = (iris, matrix)
                else:  # a release built before VECTORS
                    rows = self._rows(self.path, "SELECT iri, v FROM vector ORDER BY row")
                    iris = [str(r[0]) for r in rows]
                    raw = b"".join(r[1] for r in rows)
                    self._vectors = (iris, np.frombuffer(raw, dtype=np.int8).reshape(len(iris), -1))
            return self._vectors


_ENCODER: Any = None
_ENCODER_LOCK = threading.Lock()


def encoder() -> Any:
    """This process's model (graph/enrich/model.py Encoder), made on first use;
    EnrichmentUnavailable without the extra."""
    global _ENCODER
    with _ENCODER_LOCK:
        if _ENCODER is None:
            try:
                from graph.enrich.model import Encoder
            except ImportError as exc:
                raise EnrichmentUnavailable(
                    f"the meaning search needs the [enrich] extra: {exc}"
                ) from exc
            _ENCODER = Encoder()
        return _ENCODER
