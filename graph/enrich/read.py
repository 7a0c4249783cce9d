"""The read half of enrichment, for serving: a release's related entries and vectors
(enrich.sqlite, graph/enrich/related.py), and the model to embed a search's text.

Needs numpy for the vectors and the meaning search, and the [enrich] extra's model for the
latter; related entries are plain rows, served without either.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from graph.errors import EnrichmentUnavailable, PublicationError

FILE = "enrich.sqlite"
VECTORS = "enrich-vectors.npy"  # graph/enrich/related.py VECTORS


@dataclass(frozen=True)
class Related:
    """One related entry: its IRI, title and score (cosine of the two entries' texts, 3
    places)."""

    iri: str
    title: str
    score: float


class Enrichment:
    """A release's enrich.sqlite, read-only; thread-safe (a connection per thread)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        self._lock = threading.Lock()
        self._vectors: tuple[list[str], Any] | None = None

    @classmethod
    def of(cls, release: Path) -> Enrichment | None:
        """The release's enrichment, or None when it was built without."""
        path = release / FILE
        return cls(path) if path.is_file() else None

    def _rows(self, sql: str, *args: object) -> list[tuple[Any, ...]]:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        try:
            if db is None:
                uri = self.path.resolve().as_uri() + "?mode=ro&immutable=1"
                db = sqlite3.connect(uri, uri=True, check_same_thread=False)
                self._local.db = db
            return db.execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise PublicationError(f"{self.path}: cannot read related entries: {exc}") from exc

    def related(self, iri: str) -> list[Related]:
        """The entries related to one, closest first."""
        rows = self._rows(
            "SELECT target, title, score FROM related WHERE iri = ? ORDER BY rank", iri
        )
        return [Related(str(t), str(title), float(s)) for t, title, s in rows]

    def vectors(self) -> tuple[list[str], Any]:
        """The IRIs (IRI order) and their int8 vectors (an (N, 384) matrix), read once:
        memory-mapped from VECTORS when the build wrote it (shared by the workers through the
        page cache; float32 values in a release built before 2026-12-03), else read from the
        vector table."""
        with self._lock:
            if self._vectors is None:
                try:
                    import numpy as np
                except ImportError as exc:
                    raise EnrichmentUnavailable(
                        "the meaning search needs the [enrich] extra (numpy)"
                    ) from exc
                mapped = self.path.with_name(VECTORS)
                if mapped.is_file():
                    iris = [str(r[0]) for r in self._rows("SELECT iri FROM vector ORDER BY row")]
                    matrix = np.load(mapped, mmap_mode="r")
                    if matrix.shape[0] != len(iris):
                        raise PublicationError(f"{mapped}: {matrix.shape[0]} rows, not {len(iris)}")
                    self._vectors = (iris, matrix)
                else:  # a release built before VECTORS
                    rows = self._rows("SELECT iri, v FROM vector ORDER BY row")
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
