"""The meaning search: one ranked list of the entries that match a search's words (first, in
the word search's order) and then of those closest in meaning to its text, within the same
facets (categories, years, publishers), each hit marked with how it was found.

The text is embedded by the same model as the entries (graph/enrich/model.py); closeness is
the dot product with every entry's vector, an exact search (numpy: one product of the
N x 384 matrix, memory-mapped from the release's enrich-vectors.npy, with the text's vector,
on one BLAS thread; bench/enrich.py measured it at 100k entries against the budget of a
search). Only entries at or above MIN_SCORE count, at most MAX_MEANING.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from graph.enrich.model import blas_threads
from graph.enrich.read import Enrichment, encoder
from graph.enrich.related import SCALE, quantise, score_of
from graph.index import FacetValue, Hit, Index, Results, Search, words_of

MIN_SCORE = 0.3  # cosine of the search's text and an entry's below which it is not shown
MAX_MEANING = 100  # entries found by meaning, at most
MAX_WORDS_FIRST = 1000  # entries matching the words, at most, ranked first

MATCH_WORDS = "words"
MATCH_MEANING = "meaning"


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
    exact_ids = (
        index.ranked_ids(words, categories, years, MAX_WORDS_FIRST, publishers) if words else []
    )
    allowed: list[int] | None = None
    if categories or years or publishers:
        allowed = index.ranked_ids((), categories, years, 10**9, publishers)
    iris, matrix = enrichment.vectors()
    rows = _rows(index, iris)
    scores: dict[int, float] = {}
    meaning_ids: list[int] = []
    if words:
        with blas_threads(1):  # a matrix-vector product: a second thread only waits
            dots = matrix @ _vector(text)
        wanted = dots >= MIN_SCORE * SCALE * SCALE
        wanted &= rows.ids >= 0
        if exact_ids:
            wanted[rows.rows_of(exact_ids)] = False
        if allowed is not None:
            inside = np.zeros(len(wanted), dtype=bool)
            inside[rows.rows_of(allowed)] = True
            wanted &= inside
        candidates = np.flatnonzero(wanted)
        if len(candidates) > MAX_MEANING:
            cut = np.argpartition(-dots[candidates], MAX_MEANING - 1)[:MAX_MEANING]
            candidates = candidates[cut]
        # Closest first; ties to the lower row (IRI order).
        ranked = candidates[np.lexsort((candidates, -dots[candidates]))]
        meaning_ids = [int(n) for n in rows.ids[ranked]]
        scores = {int(rows.ids[r]): score_of(int(dots[r])) for r in ranked}
        for n in exact_ids:
            row = rows.row_of.get(n)
            if row is not None:
                scores[n] = score_of(int(dots[row]))
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


@functools.lru_cache(maxsize=256)
def _vector(text: str) -> npt.NDArray[np.float32]:
    """A search text's vector, as the entries' (int8 values); the last texts' kept, so that
    the next page or another facet of the same search does not embed it again."""
    vector: npt.NDArray[np.float32] = quantise(encoder().encode([text]))[0].astype(np.float32)
    return vector


@dataclass(frozen=True)
class _Rows:
    """The index's id of each row of the vectors (-1: none), and the row of each id."""

    ids: npt.NDArray[np.int64]
    row_of: dict[int, int]
    sorted_ids: npt.NDArray[np.int64]  # the ids >= 0, ascending
    sorted_rows: npt.NDArray[np.int64]  # the row of each

    def rows_of(self, ids: Sequence[int]) -> npt.NDArray[np.int64]:
        """The rows of the ids that have one (a binary search each, in numpy)."""
        wanted = np.asarray(ids, dtype=np.int64)
        at = np.searchsorted(self.sorted_ids, wanted)
        at[at >= len(self.sorted_ids)] = 0
        found: npt.NDArray[np.int64] = self.sorted_rows[at[self.sorted_ids[at] == wanted]]
        return found


_ROWS: dict[str, _Rows] = {}


def _rows(index: Index, iris: Sequence[str]) -> _Rows:
    """The ids of the vectors' rows, read once per release and process."""
    key = str(index.path)
    if key not in _ROWS:
        _ROWS.clear()  # one release at a time
        id_of = index.entry_ids()
        ids = np.array([id_of.get(iri, -1) for iri in iris], dtype=np.int64)
        known = np.flatnonzero(ids >= 0)
        order = known[np.argsort(ids[known], kind="stable")]
        _ROWS[key] = _Rows(
            ids,
            {int(n): row for row, n in enumerate(ids.tolist()) if n >= 0},
            ids[order],
            order.astype(np.int64),
        )
    return _ROWS[key]


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
