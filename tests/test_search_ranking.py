"""The order a person relies on in /search by relevance, against the real server: the entries
whose title holds every word first (an exact title first), then the other matches newest
first, with a facet too and across pages; and prefix words matched as the terms they find
(graph/index.py words_expression) finding what FTS5's own prefix query finds."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from fetch import get
from live import Server, free_port

from graph.index import FILE, Index, match_expression
from graph.publication import BuildOptions, build, current_release

JSON = "application/json"
BASE = "https://data.example.org/rank/"

# (title, added, categories, description): "county lines" is in the title of the first two,
# in the description only (or half in the title) of the others, which are newer.
ENTRIES = [
    ("County lines", "03/02/2016 at 9:00 am", "Safeguarding", "A short note."),
    (
        "County lines and the exploitation of children in care: a longer report of the year",
        "03/02/2017 at 9:00 am",
        "Youth Justice",
        "What practitioners found.",
    ),
    ("Lines of enquiry in a county", "03/02/2018 at 9:00 am", "Safeguarding", "Nothing more."),
    ("A briefing", "03/02/2024 at 9:00 am", "Safeguarding", "Gangs and county lines today."),
    ("County briefing", "03/02/2023 at 9:00 am", "Youth Justice", "Drugs carried on lines."),
    ("Annual review", "03/02/2022 at 9:00 am", "Safeguarding", "County lines, again."),
    ("Childhood and children", "03/02/2021 at 9:00 am", "Education", "A practitioner's view."),
    ("Nothing to find", "03/02/2020 at 9:00 am", "Education", "Plain text."),
]


def _listing() -> str:
    out = ["Library – Ranking", ""]
    for title, added, categories, description in sorted(ENTRIES, key=lambda e: e[0].casefold()):
        out += [title, "", f"Added: {added} Category: {categories}", "", description, ""]
    out += ["No Comments", "", "Sorry, the comment form is closed at this time."]
    return "\n".join(out) + "\n"


@pytest.fixture(scope="module")
def ranking(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("ranking")
    listing = folder / "library-ranking.txt"
    listing.write_text(_listing(), encoding="utf-8")
    out = folder / "publication"
    build([listing], out, BuildOptions(base=BASE))
    with Server(out, free_port(), workers=1) as running:
        yield running


def _search(server: Server, **params: str) -> dict[str, Any]:
    reply = get(server.base + "rank/search?" + urlencode(params), {"Accept": JSON})
    assert reply.status == 200, reply.body
    doc: dict[str, Any] = json.loads(reply.body)
    return doc


def _titles(server: Server, **params: str) -> list[str]:
    return [h["title"] for h in _search(server, **params)["hits"]]


RANKED = [
    # every word in the title: best first by BM25 over titles (the exact title, then the
    # shorter title), whatever the words' order ...
    "County lines",
    "Lines of enquiry in a county",
    "County lines and the exploitation of children in care: a longer report of the year",
    # ... then the other matches, newest first
    "A briefing",  # 2024: the words in the description only
    "County briefing",  # 2023: one word in the title is not every word
    "Annual review",  # 2022
]


def test_title_matches_first_exact_title_first_then_newest(ranking: Server) -> None:
    doc = _search(ranking, q="county lines")
    assert [h["title"] for h in doc["hits"]] == RANKED and doc["total"] == len(RANKED)
    assert _titles(ranking, q="LINES County") == RANKED
    assert doc["search"]["sort"] == "relevance"


def test_relevance_with_a_facet_and_marks_in_both_tiers(ranking: Server) -> None:
    picked = _search(ranking, q="county lines", category="safeguarding")
    assert [h["title"] for h in picked["hits"]] == [
        "County lines",
        "Lines of enquiry in a county",
        "A briefing",
        "Annual review",
    ]
    assert picked["total"] == 4
    hits = _search(ranking, q="county lines")["hits"]
    assert all(any(s["match"] for s in h["title_spans"]) for h in hits[:3])
    assert [s["text"] for s in hits[3]["snippet"] if s["match"]] == ["county", "lines"]


def test_relevance_pages_follow_one_order(ranking: Server) -> None:
    index = Index(current_release(ranking.out) / FILE)
    for size in (1, 2, 4):
        pages = [
            [h.title for h in index.search("county lines", page=n, size=size).hits]
            for n in range(1, -(-len(RANKED) // size) + 1)
        ]
        assert [title for page in pages for title in page] == RANKED, size
    picked = index.search("county lines", years=[2018, 2024], size=1, page=2)
    assert [h.title for h in picked.hits] == ["A briefing"] and picked.total == 2


def test_newest_and_oldest_are_the_same_entries(ranking: Server) -> None:
    ranked = _titles(ranking, q="county lines")
    newest = _titles(ranking, q="county lines", sort="newest")
    assert newest[0] == "A briefing" and newest[-1] == "County lines"
    assert sorted(newest) == sorted(ranked)
    assert _titles(ranking, q="county lines", sort="oldest") == newest[::-1]


def test_prefix_words_find_what_fts5_prefix_queries_find(ranking: Server) -> None:
    release = current_release(ranking.out)
    index = Index(release / FILE)
    db = sqlite3.connect(release / FILE)
    try:
        for word in ("child", "children", "practitioners", "practitioner", "count", "lines"):
            expanded = index.words_expression([word])
            assert "*" not in expanded, expanded
            ours = db.execute(
                "SELECT rowid FROM search WHERE search MATCH ? ORDER BY rowid", (expanded,)
            ).fetchall()
            theirs = db.execute(
                "SELECT rowid FROM search WHERE search MATCH ? ORDER BY rowid",
                (match_expression([word]),),
            ).fetchall()
            assert ours == theirs and ours, word
    finally:
        db.close()
    assert _titles(ranking, q="child") == [RANKED[2], "Childhood and children"][::-1]


def test_an_index_without_titles_ranks_by_bm25(tmp_path: Path, ranking: Server) -> None:
    release = current_release(ranking.out)
    older = tmp_path / FILE
    older.write_bytes((release / FILE).read_bytes())
    db = sqlite3.connect(older)
    try:
        db.execute("DROP TABLE titles")
        db.commit()
    finally:
        db.close()
    found = Index(older).search("county lines")
    assert found.total == 6 and found.hits[0].title == "County lines"


def test_facet_counts_of_ids_by_masks_equal_sql(ranking: Server) -> None:
    """The meaning search's facets of a list of entries (Index.facet_counts): counted from
    the facet table's masks, as SQL counts them from subject and issued."""
    index = Index(current_release(ranking.out) / FILE)
    ids = sorted(index.entry_ids().values())
    sql = Index(current_release(ranking.out) / FILE)
    sql._facets = (None,)  # no facet rows: counted in SQL
    for chosen in (ids, ids[::2], ids[1:3], []):
        assert index.facet_counts(chosen) == sql.facet_counts(chosen), chosen
    concepts, years, _ = index.facet_counts(ids)
    assert sum(years.values()) == len(ENTRIES) and concepts
