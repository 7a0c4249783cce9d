"""Related entries: each entry's nearest neighbours by meaning, and the files a release keeps.

An entry's text (its title, then its description) is embedded by graph/enrich/model.py into
a unit vector, stored quantised to int8 (v * 127, rounded). Two entries' relatedness is the
dot product of their int8 vectors: every product is at most 127² and a sum of 384 of them
stays below 2^24, so float32 matrix products compute it exactly, in any order and any
blocking. That makes the neighbours the same from run to run and an incremental relinking
equal to a full one; the score published is that dot / 127² rounded to 3 places, and ties
go to the smaller IRI.

Vectors are kept per text (sha256 of the text embedded): a rebuild embeds only the entries
whose text is new (a text's vector is the same bits whatever texts it is embedded with:
model.py embed_ids), and relinks only the entries whose neighbours may have changed
(``relink``).

A release's files (written by ``write``, read by graph/enrich/read.py, which describes
them): ``enrich.sqlite``, a head (meta: model, neighbours, minimum score, scale; a row per
month's part), and per month of entries, in enrich/, its vector rows (row, iri, digest), its
related rows (iri, rank, target, dot, score, title: rank 1 is the closest; score in
[MIN_SCORE, 1]; the target's title, for pages) and its int8 vectors (.npy). A rebuild writes
the months whose rows changed and hard-links the others' files from the previous release:
at 100k entries a one-change rebuild wrote 233 MB of SQLite and 38 MB of vectors again
before the months' parts (bench/README.md, issue 14).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import multiprocessing
import os
import shutil
import sqlite3
import time
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from graph.enrich.linkset import month_of, month_tag
from graph.enrich.model import DIMENSIONS, MODEL_NAME, Encoder, blas_threads
from graph.enrich.read import FILE as FILE  # a release's enrichment head (bench, tests)
from graph.enrich.read import FOLDER, VECTORS, Part, connect, databases, read_parts
from graph.errors import PublicationError
from graph.iris import Iris

NEIGHBOURS = 5  # related entries published per entry
SCALE = 127  # int8 quantisation of unit vectors
MIN_SCORE = 0.5  # below this, two entries are not called related (cosine, all-MiniLM-L6-v2)
_MIN_DOT = int(MIN_SCORE * SCALE * SCALE)
POOL_MIN = 200  # new texts below which one process embeds them (a worker starts in ~2 s)
CHUNK_CHARS = 50_000  # characters a worker process embeds at a time (some 90 texts)
WORKERS = min(2, os.cpu_count() or 1)  # processes that embed a build's new texts
BLOCK = 2048  # rows of the similarity matrix computed at once (BLOCK x N float32)

Int8 = npt.NDArray[np.int8]
Links = dict[str, list[tuple[str, int]]]  # IRI -> [(target IRI, dot)], closest first
LinksOf = Mapping[str, list[tuple[str, int]]]  # the same, as a release's files or relink give it


def text_of(title: str, description: str) -> str:
    """What is embedded for an entry."""
    return f"{title}. {description}" if description else title


def digest_of(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def quantise(vectors: npt.NDArray[np.float32]) -> Int8:
    """Unit vectors as int8 (v * 127, rounded)."""
    result: Int8 = np.clip(np.rint(vectors * SCALE), -SCALE, SCALE).astype(np.int8)
    return result


def score_of(dot: int) -> float:
    """The published score of a dot product of two int8 vectors."""
    return round(dot / (SCALE * SCALE), 3)


@dataclass
class Vectors:
    """The int8 vectors of a library, rows in IRI order."""

    iris: list[str]
    digests: list[str]
    matrix: Int8  # (len(iris), DIMENSIONS)


Progress = Callable[[int, int], None]


_WORKER: list[Encoder] = []


def _embed_chunk(texts: list[str]) -> list[bytes]:
    """The int8 vectors of texts (in a worker process, the model made once)."""
    if not _WORKER:
        _WORKER.append(Encoder())
    return [v.tobytes() for v in quantise(_WORKER[0].encode(texts))]


def _chunks(texts: list[str]) -> list[list[int]]:
    """The positions of the texts in chunks of about CHUNK_CHARS characters, by length.
    Each text is a run of its own (model.py embed_ids); chunks of a like cost keep the
    worker processes busy alike to the end."""
    order = sorted(range(len(texts)), key=lambda i: (len(texts[i]), i))
    chunks: list[list[int]] = [[]]
    size = 0
    for i in order:
        if size >= CHUNK_CHARS:
            chunks.append([])
            size = 0
        chunks[-1].append(i)
        size += len(texts[i])
    return chunks


def _embed_all(
    encoder: Callable[[], Encoder], texts: list[str], workers: int, progress: Progress | None
) -> list[bytes]:
    """The texts' int8 vectors, in order, embedded in chunks (_chunks) by `workers`
    processes (spawned: a build runs threads, which a fork would copy mid-flight) when there
    are at least POOL_MIN texts, else by this one's encoder (made only then). A worker
    tokenises its own chunks: 0.3 ms of CPU a text, which this process would spend alone
    before the pool starts (30 s at 100k). A text's vector is the same bits whoever embeds
    it with whichever others (model.py embed_ids)."""
    chunks = _chunks(texts)
    found: list[bytes] = [b""] * len(texts)
    done = 0

    def take(chunk: list[int], vectors: list[bytes]) -> None:
        nonlocal done
        for i, vector in zip(chunk, vectors, strict=True):
            found[i] = vector
        done += len(chunk)
        if progress:
            progress(done, len(texts))

    if workers > 1 and len(texts) >= POOL_MIN:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(workers, mp_context=context) as pool:
            for chunk, vectors in zip(
                chunks,
                pool.map(_embed_chunk, [[texts[i] for i in c] for c in chunks]),
                strict=True,
            ):
                take(chunk, vectors)
    else:
        model = encoder()
        for chunk in chunks:
            take(chunk, [v.tobytes() for v in quantise(model.encode([texts[i] for i in chunk]))])
    return found


def embed(
    texts: Mapping[str, str],
    previous: Mapping[str, bytes],
    encoder: Callable[[], Encoder],
    progress: Progress | None = None,
    workers: int = 1,
) -> tuple[Vectors, int]:
    """The vectors of every entry (IRI -> text), taken from previous (digest -> int8 bytes)
    when the same text was embedded before; the encoder is made only when some text is new
    (with workers > 1 and at least POOL_MIN new texts, each worker process makes its own
    instead). Returns the vectors and how many texts were embedded."""
    iris = sorted(texts)
    digests = [digest_of(texts[i]) for i in iris]
    matrix = np.zeros((len(iris), DIMENSIONS), dtype=np.int8)
    missing: dict[str, list[int]] = {}
    if isinstance(previous, _ByDigest):  # a previous release's matrix: gathered at once
        at = np.array([previous.rows.get(d, -1) for d in digests], dtype=np.int64)
        known_rows = at >= 0
        matrix[known_rows] = previous.matrix[at[known_rows]]
        for row in np.flatnonzero(~known_rows).tolist():
            missing.setdefault(digests[row], []).append(row)
    else:
        for row, digest in enumerate(digests):
            known = previous.get(digest)
            if known is not None:
                matrix[row] = np.frombuffer(known, dtype=np.int8)
            else:
                missing.setdefault(digest, []).append(row)
    if missing:
        todo = [(rows, texts[iris[rows[0]]]) for rows in missing.values()]
        found = _embed_all(encoder, [t for _, t in todo], workers, progress)
        for (rows, _), vector in zip(todo, found, strict=True):
            matrix[rows] = np.frombuffer(vector, dtype=np.int8)
    return Vectors(iris, digests, matrix), len(missing)


def _top(dots: npt.NDArray[np.float32], k: int, exclude: int | None) -> list[tuple[int, int]]:
    """The k best (row, dot) of one row of dot products, dot >= _MIN_DOT, ties to the lower
    row (IRI order)."""
    if exclude is not None:
        dots[exclude] = -1
    candidates = np.flatnonzero(dots >= _MIN_DOT)
    if len(candidates) > k * 8:
        values = dots[candidates]
        kth = np.partition(values, len(values) - k)[len(values) - k]
        candidates = candidates[values >= kth]
    chosen = sorted(((int(dots[c]), int(c)) for c in candidates), key=lambda p: (-p[0], p[1]))
    return [(row, dot) for dot, row in chosen[:k]]


def neighbours(
    vectors: Vectors,
    rows: Iterable[int] | None = None,
    k: int = NEIGHBOURS,
    matrix: npt.NDArray[np.float32] | None = None,
) -> Links:
    """The k nearest neighbours of the given rows (all rows by default); matrix: the vectors
    as float32, when the caller has them."""
    if matrix is None:
        matrix = vectors.matrix.astype(np.float32)
    wanted = list(range(len(vectors.iris))) if rows is None else sorted(set(rows))
    links: Links = {}
    for start in range(0, len(wanted), BLOCK):
        block = wanted[start : start + BLOCK]
        dots = matrix[block] @ matrix.T
        for at, row in enumerate(block):
            top = _top(dots[at], k, row)
            links[vectors.iris[row]] = [(vectors.iris[r], d) for r, d in top]
    return links


PART = 256  # rows of the int8 matrix converted to float32 at a time by _against (96 KB)


def _against(matrix: Int8, rows: list[int]) -> npt.NDArray[np.float32]:
    """The dot products of every row of the int8 matrix with the given rows' ((N, len(rows))
    float32, exact: int8 products), the matrix converted to float32 PART rows at a time into
    a buffer that stays in the cache: a few rows against all without the whole float32 copy
    (154 MB at 100k entries, made and paged in: most of a one-change relink's time)."""
    few = np.ascontiguousarray(matrix[rows].astype(np.float32).T)
    out = np.empty((len(matrix), len(rows)), dtype=np.float32)
    part = np.empty((min(PART, len(matrix)), matrix.shape[1]), dtype=np.float32)
    for start in range(0, len(matrix), PART):
        end = min(start + PART, len(matrix))
        np.copyto(part[: end - start], matrix[start:end], casting="unsafe")
        np.dot(part[: end - start], few, out=out[start:end])
    return out


def relink(
    vectors: Vectors, previous: LinksOf, old: Mapping[str, str], k: int = NEIGHBOURS
) -> Relinked:
    """The neighbours of every entry, from the previous release's (previous, old: IRI ->
    digest of its text then), equal to neighbours(vectors): only the entries that are new or
    whose text changed, and those whose neighbours were among them or are gone, are computed
    again in full; every other keeps its list, where a new or changed entry closer than its
    last neighbour (or any, while it has fewer than k) is merged in. The result reads the
    lists it did not change from previous when asked (Relinked): a previous release's links
    (Stored) are read only for the entries that name a stale one and those merged into."""
    index = {iri: row for row, iri in enumerate(vectors.iris)}
    changed = {row for row, iri in enumerate(vectors.iris) if old.get(iri) != vectors.digests[row]}
    stale = {iri for iri in old if iri not in index or index[iri] in changed}
    full = set(changed)
    if isinstance(previous, Stored):
        full |= {index[iri] for iri in previous.naming(stale, k) if iri in index}
        full |= {row for iri, row in index.items() if iri not in previous}
    else:
        for iri, row in index.items():
            if iri not in previous or any(t in stale for t, _ in previous[iri]):
                full.add(row)
    few = len(full) < BLOCK
    # A few rows against all: products of a few columns, where a second BLAS thread mostly
    # waits (on a busy machine, for long: bench/enrich.py relink), and without the whole
    # float32 copy of the matrix (_against).
    matrix = None if few else vectors.matrix.astype(np.float32)
    with blas_threads(1) if few else contextlib.nullcontext():
        if matrix is None:
            rows = sorted(full)
            columns = _against(vectors.matrix, rows)
            links = {
                vectors.iris[row]: [
                    (vectors.iris[r], d) for r, d in _top(columns[:, at].copy(), k, row)
                ]
                for at, row in enumerate(rows)
            }
        else:
            links = neighbours(vectors, full, k, matrix)
    result = Relinked(index, previous, links)
    if not changed:
        return result
    new_rows = sorted(changed)
    with blas_threads(1) if len(new_rows) < BLOCK else contextlib.nullcontext():
        # (N, len(changed)): each against the new texts
        dots = _against(vectors.matrix, new_rows) if matrix is None else matrix @ matrix[new_rows].T
    dots[new_rows, range(len(new_rows))] = -1  # not its own neighbour
    # Only the rows some new text comes close enough to can change: merged one by one. A
    # previous release's rows only when a new text reaches their floor (Stored), as it must
    # to enter their list: their lists are read.
    near = (dots >= _MIN_DOT).any(axis=1)
    if isinstance(previous, Stored):
        then = np.array([previous.rows.get(iri, -1) for iri in vectors.iris], dtype=np.int64)
        floor = np.where(then >= 0, previous.floors(k)[then], -1)
        near &= (dots >= floor[:, None]).any(axis=1)
    for row in np.flatnonzero(near).tolist():
        iri = vectors.iris[row]
        if row in full:
            continue
        merged = dict(previous[iri])
        for at in np.flatnonzero(dots[row] >= _MIN_DOT).tolist():
            merged[vectors.iris[new_rows[at]]] = int(dots[row, at])
        ranked = sorted(merged.items(), key=lambda p: (-p[1], index[p[0]]))
        links[iri] = ranked[:k]
    return result


class Relinked(LinksOf):
    """relink's result: the lists it computed or merged (updated), and for every other entry
    its previous list, read from previous when asked."""

    def __init__(self, index: Mapping[str, int], previous: LinksOf, updated: Links) -> None:
        self.index = index  # the entries, IRI -> row
        self.previous = previous
        self.updated = updated

    def __getitem__(self, iri: str) -> list[tuple[str, int]]:
        if iri in self.updated:
            return self.updated[iri]
        if iri not in self.index:
            raise KeyError(iri)
        return self.previous.get(iri, [])

    def __iter__(self) -> Iterator[str]:
        return iter(self.index)

    def __len__(self) -> int:
        return len(self.index)

    def __contains__(self, iri: object) -> bool:
        return iri in self.index


# --- the release's files --------------------------------------------------------------------


class _ByDigest(Mapping[str, bytes]):
    """A previous release's vectors by the digest of their text: rows of its matrix."""

    def __init__(self, rows: dict[str, int], matrix: Int8) -> None:
        self.rows = rows
        self.matrix = matrix

    def __getitem__(self, digest: str) -> bytes:
        vector: bytes = self.matrix[self.rows[digest]].tobytes()
        return vector

    def __iter__(self) -> Iterator[str]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)


class Stored(LinksOf):
    """A previous release's links, read from its files an entry at a time when asked for
    (its month's file, by the primary key), with its vectors: a rebuild that changed one
    entry reads the lists that may name it and those it may enter, not the 500,000 links of
    100k entries into Python (Previous.read: 1.4 s of CPU). Which lists may: an entry names
    another only when their dot product reaches its floor, the dot of its k-th link (or
    _MIN_DOT while it has fewer): products of a few columns (_against) and each entry's
    floor (floors, one SQL pass) find them, and their lists are then read to be sure. Its
    entries are every IRI of the release (an entry without links: [])."""

    def __init__(
        self,
        files: Sequence[Path],
        firsts: Sequence[str],
        entries: Mapping[str, str],
        iris: Sequence[str],
        matrix: Int8,
    ):
        self.files = list(files)
        self.firsts = list(firsts)  # the first IRI of each file's entries (IRI order)
        self.entries = entries
        self.iris = list(iris)  # the rows of matrix
        self.rows = {iri: row for row, iri in enumerate(self.iris)}
        self.matrix = matrix
        self.open: dict[int, sqlite3.Connection] = {}
        self._floors: dict[int, npt.NDArray[np.int64]] = {}

    def _rows(self, at: int, sql: str, *args: object) -> list[tuple[Any, ...]]:
        try:
            db = self.open.get(at)
            if db is None:
                db = self.open[at] = connect(self.files[at])
            return db.execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            path = self.files[at]
            raise PublicationError(f"{path}: cannot read the previous links: {exc}") from exc

    def __getitem__(self, iri: str) -> list[tuple[str, int]]:
        if iri not in self.entries:
            raise KeyError(iri)
        at = bisect_right(self.firsts, iri) - 1
        sql = "SELECT target, dot FROM related WHERE iri = ? ORDER BY rank"
        return [(str(t), int(d)) for t, d in self._rows(at, sql, iri)]

    def __iter__(self) -> Iterator[str]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def __contains__(self, iri: object) -> bool:
        return iri in self.entries

    def lists(self, iri: str) -> Links:
        """Every list of the file that holds iri's, in one pass."""
        found: Links = {}
        sql = "SELECT iri, target, dot FROM related ORDER BY iri, rank"
        for entry, target, dot in self._rows(bisect_right(self.firsts, iri) - 1, sql):
            found.setdefault(str(entry), []).append((str(target), int(dot)))
        return found

    def floors(self, k: int) -> npt.NDArray[np.int64]:
        """Each row's floor: the dot of its k-th link, or -1 with fewer than k links (any
        dot of at least _MIN_DOT enters then)."""
        found = self._floors.get(k)
        if found is None:
            found = np.full(len(self.iris), -1, dtype=np.int64)
            sql = "SELECT iri, dot FROM related WHERE rank = ?"
            for at in range(len(self.files)):
                for iri, dot in self._rows(at, sql, k):
                    found[self.rows[iri]] = dot
            self._floors[k] = found
        return found

    def naming(self, targets: set[str], k: int = NEIGHBOURS) -> set[str]:
        """The entries whose lists name one of the targets."""
        rows = sorted(self.rows[t] for t in targets if t in self.rows)
        if not rows:
            return set()
        if len(rows) > NAMING:  # as many as the lists: read them all
            sql = "SELECT iri, target FROM related"
            return {
                str(iri)
                for at in range(len(self.files))
                for iri, target in self._rows(at, sql)
                if target in targets
            }
        reach = np.maximum(self.floors(k), _MIN_DOT)[:, None]
        hit = np.zeros(len(self.iris), dtype=bool)
        with blas_threads(1):
            for start in range(0, len(rows), BLOCK):
                hit |= (_against(self.matrix, rows[start : start + BLOCK]) >= reach).any(axis=1)
        maybe = (self.iris[r] for r in np.flatnonzero(hit).tolist())
        return {iri for iri in maybe if any(t in targets for t, _ in self[iri])}

    def count(self) -> int:
        """How many links."""
        sql = "SELECT count(*) FROM related"
        return sum(int(self._rows(at, sql)[0][0]) for at in range(len(self.files)))

    def close(self) -> None:
        for db in self.open.values():
            db.close()
        self.open.clear()


NAMING = 500  # stale entries above which Stored.naming reads every list


@dataclass
class Previous:
    """What the previous release's files hold: vectors by digest, links, digests by IRI; its
    IRIs and matrix in row order, and its months' parts (none when it was built before
    them), for a rebuild that links the months it did not change."""

    vectors: Mapping[str, bytes]
    links: LinksOf
    digests: dict[str, str]
    iris: list[str] = field(default_factory=list)
    matrix: Int8 = field(default_factory=lambda: np.zeros((0, DIMENSIONS), dtype=np.int8))
    path: Path | None = None
    parts: dict[str, Part] = field(default_factory=dict)

    @classmethod
    def read(cls, release: Path | None) -> Previous:
        """The release's files, read (empty when there are none, or they were made with
        another model or settings). The matrix comes from the months' vector files, or in a
        release built before them from VECTORS when it is int8 and of the file's rows, else
        from the vector table."""
        empty = cls({}, {}, {})
        if release is None or not (release / FILE).is_file():
            return empty
        head = release / FILE
        try:
            db = connect(head)
            try:
                meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
            finally:
                db.close()
            if meta != _meta():
                return empty  # another model or other settings: nothing to reuse
            listed = read_parts(head)
            files = databases(head)
            rows: list[tuple[str, str]] = []
            pieces: list[Int8] = []
            for path in files:
                db = connect(path)
                try:
                    found = db.execute("SELECT iri, digest FROM vector ORDER BY row").fetchall()
                    rows += [(str(iri), str(digest)) for iri, digest in found]
                    if listed is None:
                        matrix = _matrix_file(release / VECTORS, len(rows))
                        if matrix is None:
                            blobs = b"".join(
                                v for (v,) in db.execute("SELECT v FROM vector ORDER BY row")
                            )
                            matrix = np.frombuffer(blobs, dtype=np.int8).reshape(
                                len(rows), DIMENSIONS
                            )
                        pieces.append(matrix)
                finally:
                    db.close()
            for part in listed or ():
                piece = _matrix_file(release / FOLDER / part.vectors, part.rows)
                if piece is None:
                    return empty
                pieces.append(piece)
        except (sqlite3.Error, OSError, ValueError):
            return empty
        matrix = np.concatenate(pieces) if pieces else np.zeros((0, DIMENSIONS), dtype=np.int8)
        if len(matrix) != len(rows):
            return empty
        iris = [iri for iri, _ in rows]
        digests = dict(rows)
        by_digest = {digest: row for row, (_, digest) in enumerate(rows)}
        firsts = [""] if listed is None else [p.first for p in listed]
        links = Stored(files, firsts, digests, iris, matrix)
        by_month = {p.month: p for p in listed or ()}
        return cls(_ByDigest(by_digest, matrix), links, digests, iris, matrix, head, by_month)


def _matrix_file(path: Path, rows: int) -> Int8 | None:
    """A vectors file, memory-mapped, when it is int8 and has the rows said, else None."""
    if not path.is_file():
        return None
    matrix = np.load(path, mmap_mode="r")
    if matrix.dtype != np.int8 or matrix.shape != (rows, DIMENSIONS):
        return None  # float32, before 2026-12-03
    result: Int8 = matrix
    return result


def _meta() -> dict[str, str]:
    return {
        "model": MODEL_NAME,
        "neighbours": str(NEIGHBOURS),
        "min_score": str(MIN_SCORE),
        "scale": str(SCALE),
    }


@dataclass(frozen=True)
class Summary:
    """What enrichment did in a build."""

    entries: int
    embedded: int  # texts embedded (the others reused)
    relinked: int  # entries whose neighbours were computed in full
    links: int
    seconds: float
    # The entries whose links differ from the previous release's (those gone included),
    # when there was one to compare with (write); None when written without.
    changed: tuple[str, ...] | None = None
    months: tuple[int, int] = (0, 0)  # the months' parts written, and linked


def enrich_release(
    work: Path,
    texts: Mapping[str, str],
    previous_release: Path | None,
    iris: Iris,
    encoder: Callable[[], Encoder] = Encoder,
    progress: Progress | None = None,
    titles: Mapping[str, str] | None = None,
) -> Summary:
    """Embed, link and write work/enrich.sqlite and its months' parts, reusing the previous
    release's vectors, links and files for what did not change."""
    start = time.perf_counter()
    previous = Previous.read(previous_release)
    vectors, embedded = embed(texts, previous.vectors, encoder, progress, WORKERS)
    links: LinksOf
    if previous.digests:
        links = relink(vectors, previous.links, previous.digests)
    else:
        links = neighbours(vectors)
    relinked = len(vectors.iris) if not previous.digests else _count_full(vectors, previous)
    try:
        written = write(work / FILE, vectors, links, titles or {}, iris, previous)
        count = _count_links(links, previous)
    finally:
        if isinstance(previous.links, Stored):
            previous.links.close()
    return Summary(
        len(vectors.iris),
        embedded,
        relinked,
        count,
        time.perf_counter() - start,
        written.changed,
        (written.written, written.linked),
    )


def _count_links(links: LinksOf, previous: Previous) -> int:
    """How many links: the previous release's count and the lists relink changed, when it
    started from the previous release's files (their lists are not read for it)."""
    if not (isinstance(links, Relinked) and isinstance(previous.links, Stored)):
        return sum(len(v) for v in links.values())
    before = previous.links
    total = before.count()
    total -= sum(len(before[iri]) for iri in before if iri not in links)  # gone
    for iri, now in links.updated.items():
        total += len(now) - len(before.get(iri, []))
    return total


def _count_full(vectors: Vectors, previous: Previous) -> int:
    return sum(
        1
        for row, iri in enumerate(vectors.iris)
        if previous.digests.get(iri) != vectors.digests[row]
    )


@dataclass(frozen=True)
class Written:
    """What write did: the entries whose links differ from the previous release's (None
    without one), and how many months' parts it wrote and linked."""

    changed: tuple[str, ...] | None
    written: int
    linked: int


def _month_spans(names: list[str], iris: Iris) -> Iterator[tuple[str, int, int]]:
    """The months of IRIs in IRI order, each with its rows [start, end)."""
    start = 0
    for end in range(1, len(names) + 1):
        month = month_of(names[start], iris)
        if end == len(names) or month_of(names[end], iris) != month:
            yield month, start, end
            start = end


def write(
    path: Path,
    vectors: Vectors,
    links: LinksOf,
    titles: Mapping[str, str],
    iris: Iris,
    previous: Previous | None = None,
) -> Written:
    """Write a release's enrichment: the head at path (FILE: meta and the months' parts)
    and each month's two files in FOLDER beside it (graph/enrich/read.py). A month whose rows
    are the previous release's (the same entries, texts and links, and no target's text,
    which opens with its title, changed) is hard-linked from it: a release never changes a
    file, and the bytes of a month written again from the same rows would be the same. The
    server's workers memory-map the vector files (one copy in the page cache for all, 384
    bytes an entry). tests/test_enrich_files.py checks that a rebuild holds what a full
    build writes."""
    folder = path.with_name(FOLDER)
    path.unlink(missing_ok=True)  # never written through a hard link
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    old = previous if previous is not None and previous.digests else None
    dirty: set[str] = set()  # months written again
    changed: tuple[str, ...] | None = None
    if old is not None:
        now = dict(zip(vectors.iris, vectors.digests, strict=True))
        retexted = {iri for iri, digest in now.items() if old.digests.get(iri) != digest}
        gone = [iri for iri in old.digests if iri not in now]
        # relink's result holds the previous lists but for those it changed (updated).
        computed = links.updated if isinstance(links, Relinked) else vectors.iris
        relinked = [iri for iri in computed if links.get(iri, []) != old.links.get(iri, [])]
        changed = tuple(sorted([*relinked, *(iri for iri in gone if old.links.get(iri))]))
        dirty = {month_of(iri, iris) for iri in (*retexted, *gone, *relinked)}
        if retexted:  # the related rows naming them carry their title
            if isinstance(links, Relinked) and isinstance(old.links, Stored):
                naming = {i for i in old.links.naming(retexted) if i not in links.updated}
                naming |= {
                    iri
                    for iri, targets in links.updated.items()
                    if any(t in retexted for t, _ in targets)
                }
            else:
                naming = {
                    iri for iri, targets in links.items() if any(t in retexted for t, _ in targets)
                }
            dirty |= {month_of(iri, iris) for iri in naming if iri in now}
    listed: list[Part] = []
    linked = 0
    source = old.path.with_name(FOLDER) if old is not None and old.path is not None else None
    for month, start, end in _month_spans(vectors.iris, iris):
        was = old.parts.get(month) if old is not None else None
        same = was is not None and was.rows == end - start and was.first == vectors.iris[start]
        if source is not None and was is not None and same and month not in dirty:
            os.link(source / was.db, folder / was.db)
            os.link(source / was.vectors, folder / was.vectors)
            listed.append(was)
            linked += 1
            continue
        names = vectors.iris[start:end]
        rows = ((row - start, iri, vectors.digests[row]) for row, iri in enumerate(names, start))
        lists = _month_lists(links, old, was, names)
        related = (
            (iri, rank, target, dot, score_of(dot), titles.get(target, ""))
            for iri in names
            for rank, (target, dot) in enumerate(lists.get(iri, []), start=1)
        )
        db = _write_part_db(folder, month, rows, related)
        matrix = np.ascontiguousarray(vectors.matrix[start:end], dtype=np.int8)
        # The month's links changed, its vectors maybe not: the same bytes, linked.
        kept = _write_part_vectors(folder, month, matrix, source, was)
        listed.append(Part(month, names[0], end - start, db, kept))
    _write_head(path, listed)
    return Written(changed, len(listed) - linked, linked)


def _month_lists(
    links: LinksOf, old: Previous | None, was: Part | None, names: Sequence[str]
) -> LinksOf:
    """The lists of a month's entries: relink's, the previous ones read in one pass over
    the month's previous file (Stored.lists) rather than an entry at a time."""
    if not (isinstance(links, Relinked) and old is not None and isinstance(old.links, Stored)):
        return links
    if was is None:
        return links
    lists = old.links.lists(was.first)
    return {
        iri: links.updated[iri] if iri in links.updated else lists.get(iri, []) for iri in names
    }


def _named(folder: Path, month: str, data: bytes, suffix: str) -> str:
    """A part's name: its month and the SHA-256 of its bytes (linkset.py's parts too)."""
    return f"{month_tag(month)}-{hashlib.sha256(data).hexdigest()}{suffix}"


def _write_part_db(
    folder: Path,
    month: str,
    rows: Iterable[tuple[int, str, str]],
    related: Iterable[tuple[str, int, str, int, float, str]],
) -> str:
    """Write a month's SQLite file (vector and related tables), named by its bytes."""
    scratch = folder / f".{month_tag(month)}.sqlite"
    scratch.unlink(missing_ok=True)
    db = sqlite3.connect(scratch)
    try:
        db.executescript(
            """
            PRAGMA journal_mode = OFF;
            PRAGMA synchronous = OFF;
            CREATE TABLE vector (row INTEGER PRIMARY KEY, iri TEXT NOT NULL UNIQUE,
                                 digest TEXT NOT NULL);
            CREATE TABLE related (iri TEXT NOT NULL, rank INTEGER NOT NULL,
                                  target TEXT NOT NULL, dot INTEGER NOT NULL,
                                  score REAL NOT NULL, title TEXT NOT NULL,
                                  PRIMARY KEY (iri, rank)) WITHOUT ROWID;
            """
        )
        db.executemany("INSERT INTO vector VALUES (?, ?, ?)", rows)
        db.executemany("INSERT INTO related VALUES (?, ?, ?, ?, ?, ?)", related)
        db.commit()
    finally:
        db.close()
    name = _named(folder, month, scratch.read_bytes(), ".sqlite")
    os.replace(scratch, folder / name)
    return name


def _write_part_vectors(
    folder: Path, month: str, matrix: Int8, source: Path | None, was: Part | None
) -> str:
    """Write a month's vectors (.npy, int8), named by its bytes: linked from source when
    they are the bytes of the month's previous file (was)."""
    buffer = io.BytesIO()
    np.save(buffer, matrix)
    data = buffer.getvalue()
    name = _named(folder, month, data, ".npy")
    if source is not None and was is not None and was.vectors == name:
        os.link(source / name, folder / name)
    else:
        (folder / name).write_bytes(data)
    return name


def _write_head(path: Path, listed: Sequence[Part]) -> None:
    """Write a release's FILE: the meta and the months' parts."""
    db = sqlite3.connect(path)
    try:
        db.executescript(
            """
            PRAGMA journal_mode = OFF;
            PRAGMA synchronous = OFF;
            CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
            CREATE TABLE part (month TEXT PRIMARY KEY, first TEXT NOT NULL,
                               rows INTEGER NOT NULL, db TEXT NOT NULL, vectors TEXT NOT NULL);
            """
        )
        db.executemany("INSERT INTO meta VALUES (?, ?)", sorted(_meta().items()))
        db.executemany(
            "INSERT INTO part VALUES (?, ?, ?, ?, ?)",
            ((p.month, p.first, p.rows, p.db, p.vectors) for p in listed),
        )
        db.commit()
    finally:
        db.close()


def read_links(release: Path) -> Links:
    """The related entries a release's files hold (tests, bench)."""
    return dict(Previous.read(release).links)
