"""The meaning search: one ranked list of the entries that match a search's words (first, in
the word search's order) and then of those closest in meaning to its text, within the same
facets (categories, years), each hit marked with how it was found.

The text is embedded by the same model as the entries (graph/enrich/model.py); closeness is
the dot product with every entry's vector, an exact search (numpy: one product of the
N x 384 matrix with the text's vector; bench/enrich.py measured it at 100k entries against
the budget of a search). Only entries at or above MIN_SCORE count, at most MAX_MEANING.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

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
) -> MeaningResults:
    """One page of the meaning search for text within the facets (SearchError as the word
    search; EnrichmentUnavailable without the extra)."""
    words = words_of(text)
    exact_ids = index.ranked_ids(words, categories, years, MAX_WORDS_FIRST) if words else []
    allowed: set[int] | None = None
    if categories or years:
        allowed = set(index.ranked_ids((), categories, years, 10**9))
    iris, matrix = enrichment.vectors()
    ids_of = _ids(index)
    scores: dict[int, float] = {}
    meaning_ids: list[int] = []
    if words:
        vector = quantise(encoder().encode([text], batch=1))[0].astype(np.float32)
        dots = matrix @ vector
        threshold = MIN_SCORE * SCALE * SCALE
        candidates = np.flatnonzero(dots >= threshold)
        ranked = sorted(candidates.tolist(), key=lambda r: (-dots[r], r))
        exact = set(exact_ids)
        for row in ranked:
            n = ids_of.get(iris[row])
            if n is None:
                continue
            scores[n] = score_of(int(dots[row]))
            if n in exact or (allowed is not None and n not in allowed):
                continue
            if len(meaning_ids) < MAX_MEANING:
                meaning_ids.append(n)
    listed = exact_ids + meaning_ids
    start = (page - 1) * size
    chosen = listed[start : start + size]
    hits = {h_id: h for h_id, h in zip(chosen, index.hits_by_id(chosen), strict=True)}
    exact_set = set(exact_ids)
    found = tuple(
        Found(hits[n], MATCH_WORDS if n in exact_set else MATCH_MEANING, scores.get(n))
        for n in chosen
    )
    query = Search(words, tuple(categories), tuple(years), "relevance", page, size)
    category_facet, year_facet = _facets(index, listed, categories, years)
    results = Results(query, len(listed), tuple(f.hit for f in found), category_facet, year_facet)
    return MeaningResults(results, found, len(exact_ids))


_ID_CACHE: dict[str, dict[str, int]] = {}


def _ids(index: Index) -> dict[str, int]:
    key = str(index.path)
    if key not in _ID_CACHE:
        _ID_CACHE.clear()  # one release at a time
        _ID_CACHE[key] = index.entry_ids()
    return _ID_CACHE[key]


def _facets(
    index: Index, listed: Sequence[int], categories: Sequence[str], years: Sequence[int]
) -> tuple[tuple[FacetValue, ...], tuple[FacetValue, ...]]:
    """The facets of the whole list: entries per category and per year."""
    concepts = index.categories()
    per_concept, per_year = index.facet_counts(listed)
    category_facet = tuple(
        FacetValue(c.iri, c.label, per_concept.get(c.iri, 0), c.iri in categories)
        for c in concepts.values()
        if per_concept.get(c.iri, 0) or c.iri in categories
    )
    year_facet = tuple(
        FacetValue(str(y), str(y), n, y in years)
        for y, n in sorted({**dict.fromkeys(years, 0), **per_year}.items(), reverse=True)
    )
    return category_facet, year_facet
