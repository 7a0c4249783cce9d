"""The meaning search: one ranked list of the entries that match a search's words (first, in
the word search's order) and then of those closest in meaning to its text, within the same
facets (categories, years, publishers), each hit marked with how it was found.

The text is embedded by the same model as the entries (graph/enrich/model.py); closeness is
the dot product with the entries' int8 vectors, an exact search with numpy over their N x 384
matrix, memory-mapped from the release's months' vector files (graph/enrich/stacked.py; one
copy in the page cache for every worker), converted to float32 a block at a time for BLAS.
The products of int8 values are exact in float32 in any order and blocking, so every way of
computing them below gives the same scores:
  - the word search's list (SQLite FTS5) and the rows the facets allow are read on a pool
    thread while this one embeds the text and, without facets, multiplies every row
    (SQLite, the model's and numpy's products release the GIL);
  - the facets are boolean masks over the rows, one per category, publisher and year, made
    on first use from the index and kept (bit-packed) per release: a search with facets
    combines a few masks instead of reading every selected entry again;
  - with a narrow selection (at most a quarter of the rows) only its rows are multiplied,
    else the whole matrix (BLAS on one thread: two halves on two threads were no faster on
    the shared machine).
Only entries at or above MIN_SCORE count, at most MAX_MEANING. bench/enrich.py measures it at
10k and 100k entries (bench/README.md).
"""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from graph.enrich.model import blas_threads
from graph.enrich.read import Enrichment, encoder
from graph.enrich.related import SCALE, quantise, score_of
from graph.enrich.stacked import Stacked
from graph.index import FacetValue, Hit, Index, Results, Search, words_of
from graph.pools import ProcessPool

MIN_SCORE = 0.3  # cosine of the search's text and an entry's below which it is not shown
MAX_MEANING = 100  # entries found by meaning, at most
MAX_WORDS_FIRST = 1000  # entries matching the words, at most, ranked first
NARROW = 4  # a selection of at most 1/NARROW of the rows is multiplied alone
MASKS = 128  # facet masks kept per release (N/8 bytes each)
ALL = 10**9  # ranked_ids's limit for every entry of a facet
BLOCK = 256  # rows of the int8 matrix converted to float32 at a time (96 KB of them)

MATCH_WORDS = "words"
MATCH_MEANING = "meaning"

Mask = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class Found:
    """One hit of a meaning search: how it was found, and its closeness to the text."""

    hit: Hit
    match: str  # MATCH_WORDS or MATCH_MEANING
    score: float | None  # closeness in meaning (None for a word match the vectors lack)


@dataclass(frozen=True)
class MeaningResults:
    """One page of a meaning search: the Results the word search would give for the same
    page (total, hits, facets over the whole list), and each hit's mark."""

    results: Results
    found: tuple[Found, ...]
    exact: int  # how many of the list matched the words


def search(
    index: Index,
    enrichment: Enrichment,
    text: str,
    categories: Sequence[str],
    years: Sequence[int],
    page: int,
    size: int,
    publishers: Sequence[str] = (),
) -> MeaningResults:
    """One page of the meaning search for text within the facets (SearchError as the word
    search; EnrichmentUnavailable without the extra)."""
    words = words_of(text)
    iris, matrix = enrichment.vectors()
    rows = _rows(index, iris)
    faceted = bool(categories or years or publishers)
    selecting = _POOL.get().submit(_selection, index, rows, words, categories, years, publishers)
    try:
        vector = _vector(text) if words else None
        # Without facets every row is multiplied: meanwhile too.
        every = None if vector is None or faceted else _products(matrix, vector)
    finally:
        exact_ids, inside = selecting.result()
    scores: dict[int, float] = {}
    meaning_ids: list[int] = []
    if vector is not None:
        candidates, dots = _closest(matrix, vector, rows, exact_ids, inside, every)
        meaning_ids = [int(n) for n in rows.ids[candidates]]
        scores = {n: score_of(int(d)) for n, d in zip(meaning_ids, dots, strict=True)}
        exact_rows = np.sort(rows.rows_of(exact_ids))
        exact_dots = _products(matrix, vector, exact_rows)
        for row, dot in zip(exact_rows, exact_dots, strict=True):
            scores[int(rows.ids[row])] = score_of(int(dot))
    listed = exact_ids + meaning_ids
    start = (page - 1) * size
    chosen = listed[start : start + size]
    hits = {h_id: h for h_id, h in zip(chosen, index.hits_by_id(chosen), strict=True)}
    exact_set = set(exact_ids)
    found = tuple(
        Found(hits[n], MATCH_WORDS if n in exact_set else MATCH_MEANING, scores.get(n))
        for n in chosen
    )
    query = Search(
        words, tuple(categories), tuple(years), "relevance", page, size, tuple(publishers)
    )
    category_facet, year_facet, publisher_facet = _facets(index, listed, query)
    results = Results(
        query,
        len(listed),
        tuple(f.hit for f in found),
        category_facet,
        year_facet,
        publisher_facet,
    )
    return MeaningResults(results, found, len(exact_ids))


def _selection(
    index: Index,
    rows: _Rows,
    words: Sequence[str],
    categories: Sequence[str],
    years: Sequence[int],
    publishers: Sequence[str],
) -> tuple[list[int], Mask | None]:
    """The ids matching the words, best first (at most MAX_WORDS_FIRST), and the rows the
    facets allow (None: every row): every category and publisher, any year (as
    graph/index.py's search combines them)."""
    exact_ids = (
        index.ranked_ids(words, categories, years, MAX_WORDS_FIRST, publishers) if words else []
    )
    if not (categories or years or publishers):
        return exact_ids, None
    inside = np.ones(len(rows.ids), dtype=bool)
    for iri in categories:
        inside &= rows.mask(index, "category", iri)
    for pid in publishers:
        inside &= rows.mask(index, "publisher", pid)
    if years:
        inside &= functools.reduce(np.logical_or, (rows.mask(index, "year", y) for y in years))
    return exact_ids, inside


def _closest(
    matrix: npt.NDArray[np.float32],
    vector: npt.NDArray[np.float32],
    rows: _Rows,
    exact_ids: Sequence[int],
    inside: Mask | None,
    every: npt.NDArray[np.float32] | None = None,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
    """The rows closest in meaning (at most MAX_MEANING, at or above MIN_SCORE, within the
    facets, not among the word matches), closest first, ties to the lower row (IRI order),
    and their dot products (every: those of all rows, when already computed)."""
    allowed = rows.known if inside is None else rows.known & inside
    if len(exact_ids):
        allowed = allowed.copy()
        allowed[rows.rows_of(exact_ids)] = False
    n = len(allowed)
    picked = np.flatnonzero(allowed)
    if every is not None:
        dots = every[picked]
    elif inside is not None and len(picked) * NARROW <= n:
        dots = _products(matrix, vector, picked)
    else:
        dots = _products(matrix, vector)[picked]
    keep = dots >= MIN_SCORE * SCALE * SCALE
    picked, dots = picked[keep], dots[keep]
    if len(picked) > MAX_MEANING:
        # The MAX_MEANING closest; of those tied with the last, the lower rows (picked is
        # ascending), so that the cut does not depend on argpartition's order.
        last = np.partition(dots, len(dots) - MAX_MEANING)[len(dots) - MAX_MEANING]
        above = dots > last
        tied = np.flatnonzero(dots == last)[: MAX_MEANING - np.count_nonzero(above)]
        above[tied] = True
        picked, dots = picked[above], dots[above]
    order = np.lexsort((picked, -dots))
    return picked[order], dots[order]


def _products(
    matrix: npt.NDArray[np.int8] | npt.NDArray[np.float32] | Stacked,
    vector: npt.NDArray[np.float32],
    rows: npt.NDArray[np.int64] | None = None,
) -> npt.NDArray[np.float32]:
    """The dot products of the vector with the matrix's rows (every row, or those given, in
    that order). An int8 matrix is converted to float32 BLOCK rows at a time, into a buffer
    that stays in the CPU's cache, each block's product taken at once: 20% less CPU than one
    product with the whole float32 matrix, which is four times the memory to read."""
    with blas_threads(1):  # matrix-vector products: a second BLAS thread only waits
        if rows is not None:
            return np.asarray(matrix[rows], dtype=np.float32) @ vector
        if matrix.dtype == np.float32:  # VECTORS of a release built before it was int8
            return np.asarray(np.asarray(matrix) @ vector, dtype=np.float32)
        # A release's months (Stacked): each block's products, into one array.
        blocks = matrix.blocks if isinstance(matrix, Stacked) else [matrix]
        out = np.empty(len(matrix), dtype=np.float32)
        buffer = np.empty((BLOCK, matrix.shape[1]), dtype=np.float32)
        at = 0
        for rows_of_block in blocks:
            n = len(rows_of_block)
            for start in range(0, n, BLOCK):
                end = min(start + BLOCK, n)
                part = buffer[: end - start]
                np.copyto(part, rows_of_block[start:end], casting="unsafe")
                np.dot(part, vector, out=out[at + start : at + end])
            at += n
        return out


@functools.lru_cache(maxsize=256)
def _vector(text: str) -> npt.NDArray[np.float32]:
    """A search text's vector, as the entries' (int8 values); the last texts' kept, so that
    the next page or another facet of the same search does not embed it again."""
    vector: npt.NDArray[np.float32] = quantise(encoder().encode([text]))[0].astype(np.float32)
    return vector


@dataclass
class _Rows:
    """The index's id of each row of the vectors (-1: none), the row of each id, and the
    facets' masks over the rows (made on first use, MASKS of them kept)."""

    ids: npt.NDArray[np.int64]
    known: Mask  # rows with an id
    sorted_ids: npt.NDArray[np.int64]  # the ids >= 0, ascending
    sorted_rows: npt.NDArray[np.int64]  # the row of each
    masks: OrderedDict[tuple[str, object], npt.NDArray[np.uint8]] = field(
        default_factory=OrderedDict
    )
    lock: threading.Lock = field(default_factory=threading.Lock)

    def rows_of(self, ids: Sequence[int]) -> npt.NDArray[np.int64]:
        """The rows of the ids that have one (a binary search each, in numpy)."""
        wanted = np.asarray(ids, dtype=np.int64)
        at = np.searchsorted(self.sorted_ids, wanted)
        at[at >= len(self.sorted_ids)] = 0
        found: npt.NDArray[np.int64] = self.sorted_rows[at[self.sorted_ids[at] == wanted]]
        return found

    def mask(self, index: Index, kind: str, value: str | int) -> Mask:
        """The rows of the entries of one category (IRI), publisher (id) or year: the ids
        the word search selects for it alone (graph/index.py ranked_ids)."""
        key = (kind, value)
        with self.lock:
            packed = self.masks.get(key)
            if packed is not None:
                self.masks.move_to_end(key)
        if packed is None:
            if kind == "category":
                ids = index.ranked_ids((), [str(value)], (), ALL)
            elif kind == "publisher":
                ids = index.ranked_ids((), (), (), ALL, [str(value)])
            else:
                ids = index.ranked_ids((), (), [int(value)], ALL)
            selected = np.zeros(len(self.ids), dtype=bool)
            selected[self.rows_of(ids)] = True
            packed = np.packbits(selected)
            with self.lock:
                self.masks[key] = packed
                while len(self.masks) > MASKS:
                    self.masks.popitem(last=False)
        mask: Mask = np.unpackbits(packed, count=len(self.ids)).view(bool)
        return mask


_ROWS: dict[str, _Rows] = {}
_ROWS_LOCK = threading.Lock()


def _rows(index: Index, iris: Sequence[str]) -> _Rows:
    """The ids of the vectors' rows, read once per release and process."""
    key = str(index.path)
    with _ROWS_LOCK:
        if key not in _ROWS:
            _ROWS.clear()  # one release at a time
            id_of = index.entry_ids()
            ids = np.array([id_of.get(iri, -1) for iri in iris], dtype=np.int64)
            known = np.flatnonzero(ids >= 0)
            order = known[np.argsort(ids[known], kind="stable")]
            _ROWS[key] = _Rows(ids, ids >= 0, ids[order], order.astype(np.int64))
        return _ROWS[key]


# The word search, read while the text is embedded.
_POOL = ProcessPool(2, "kgpub-meaning")


def _facets(
    index: Index, listed: Sequence[int], query: Search
) -> tuple[tuple[FacetValue, ...], tuple[FacetValue, ...], tuple[FacetValue, ...]]:
    """The facets of the whole list: entries per category, per year and per publisher."""
    categories, years = query.categories, query.years
    concepts = index.categories()
    per_concept, per_year, per_publisher = index.facet_counts(listed)
    category_facet = tuple(
        FacetValue(c.iri, c.label, per_concept.get(c.iri, 0), c.iri in categories)
        for c in concepts.values()
        if per_concept.get(c.iri, 0) or c.iri in categories
    )
    year_facet = tuple(
        FacetValue(str(y), str(y), n, y in years)
        for y, n in sorted({**dict.fromkeys(years, 0), **per_year}.items(), reverse=True)
    )
    return category_facet, year_facet, index.publisher_facet(per_publisher, query)
