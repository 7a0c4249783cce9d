"""graph/index.py: the release's on-disk index answers the lists as the graph does, a page at
a time, and serving reads them from it; its search takes user text only as quoted words; a
rebuild starts from the previous index and ends with what a full write gives."""

from __future__ import annotations

import json
import random
import shutil
import sqlite3
import threading
import unicodedata
from datetime import UTC, datetime
from pathlib import Path

import pytest
from live import PRUNING, SEED

from graph import index as graph_index
from graph import publication
from graph.errors import PublicationError
from graph.index import (
    FILE,
    Index,
    SearchError,
    Span,
    match_expression,
    spans,
    words_of,
)
from graph.iris import Iris
from graph.publication import BuildOptions, build, current_release, read_manifest
from graph.publishers import read_release as read_publishers
from graph.store.oxigraph import OxigraphReader
from server.current import Publishers


@pytest.fixture(scope="module")
def release(seed_out: Path) -> Path:
    return current_release(seed_out)


@pytest.fixture(scope="module")
def reader(release: Path) -> OxigraphReader:
    return OxigraphReader.open(release / "store", Iris(read_manifest(release)["base"]))


def _without(release: Path, folder: Path, table: str) -> Path:
    """A copy of the release's index in folder without one of its tables: an index written
    before that table was."""
    copy = folder / FILE
    shutil.copyfile(release / FILE, copy)
    db = sqlite3.connect(copy)
    db.execute(f"DROP TABLE {table}")
    db.commit()
    db.close()
    return copy


def test_lists_and_counts_equal_the_graphs(release: Path, reader: OxigraphReader) -> None:
    index = Index(release / FILE)
    iris = reader.iris
    assert index.concepts() == reader.concepts()
    assert index.category_counts() == reader.category_counts()
    assert list(index.members(iris.library)) == reader.members(iris.library, "library")
    for concept in reader.concepts():
        assert list(index.members(concept)) == reader.members(concept, "concept")


def test_each_thread_reads_with_a_small_cache(release: Path) -> None:
    """A worker's threads each have a connection, and each caches a few pages of its own (the
    OS's page cache, shared by the workers, holds the rest), so that a worker's memory does
    not grow with the index (graph/index.py Index._db); the file is not mapped, which would
    count it in each worker's RSS."""
    index = Index(release / FILE)
    seen = []

    def look() -> None:
        db = index._db()
        seen.append(
            (
                id(db),
                db.execute("PRAGMA mmap_size").fetchone()[0],
                db.execute("PRAGMA cache_size").fetchone()[0],
            )
        )

    look()
    thread = threading.Thread(target=look)
    thread.start()
    thread.join()
    assert len({s[0] for s in seen}) == 2
    for _, mapped, cached in seen:
        assert mapped == 0
        assert cached == -graph_index.READ_CACHE_KIB
    assert list(index.members(Iris(read_manifest(release)["base"]).library))


def test_a_page_reads_only_its_slice(release: Path, reader: OxigraphReader) -> None:
    index = Index(release / FILE)
    everyone = reader.members(reader.iris.library, "library")
    members = index.members(reader.iris.library)
    assert len(members) == len(everyone) == 35
    for start, stop in ((0, 10), (10, 20), (30, 40), (34, 35), (40, 50)):
        assert members[start:stop] == everyone[start:stop]
    assert members[0] == everyone[0] and members[-1] == everyone[-1]
    with pytest.raises(IndexError):
        members[35]
    assert index.page(reader.iris.library, 0, 0) == [] == index.page("http://nothing/", 0, 5)


def test_pages_and_years_from_the_tally_equal_the_rows_counted_off(
    release: Path, tmp_path: Path
) -> None:
    """A page of a list, its years and a year's pages are found from the tally (a row per
    list and month); an index without it (written before it) counts the rows off: the same
    answers, for every list and position."""
    counted = _without(release, tmp_path, "tally")
    tallied, old = Index(release / FILE), Index(counted)
    iris = Iris(read_manifest(release)["base"])
    prefix = iris.entry_prefix
    assert tallied.tallies(iris.library) and old.tallies(iris.library) is None
    for list_iri in [iris.library, *tallied.concepts()]:
        total = len(tallied.members(list_iri))
        assert total == len(old.members(list_iri))
        for start in range(total + 2):
            for size in (1, 3, 10):
                assert tallied.page(list_iri, start, size) == old.page(list_iri, start, size)
        years = graph_index.list_years(tallied, list_iri, prefix)
        assert years == graph_index.list_years(old, list_iri, prefix)
        assert sum(n for _, n in years) == total
        for year, n in [*years, (1990, 0)]:
            a = graph_index.YearMembers(tallied, list_iri, prefix, year)
            b = graph_index.YearMembers(old, list_iri, prefix, year)
            assert len(a) == len(b) == n
            assert list(a) == list(b)
            for start in range(n + 1):
                assert a[start : start + 2] == b[start : start + 2]


def test_titles_by_iri_from_the_records_equal_the_months_rows(release: Path) -> None:
    """An entry's title and Added time are found by IRI in the history's records (indexed);
    an index without them reads the entry's month: the same rows, in the order asked."""
    index = Index(release / FILE)
    prefix = Iris(read_manifest(release)["base"]).entry_prefix
    everyone = list(index.members(Iris(read_manifest(release)["base"]).library))
    asked = [*everyone[::-1], prefix + "2018-01-01-0000-nothing", "http://elsewhere/x"]
    assert index.has_records()
    by_iri = graph_index.listed(index, asked, prefix)
    index._records = False
    by_month = graph_index.listed(index, asked, prefix)
    assert by_iri == by_month
    assert [e.iri for e in by_iri] == everyone[::-1]


def test_publishers_from_the_index_equal_the_releases_file(release: Path) -> None:
    """An entry's publishers and a publisher's entries are rows of the index, read by the
    entry or publisher asked; they equal what publishers.json says (a worker read it whole)."""
    index = Index(release / FILE)
    published = read_publishers(release)
    assert published is not None and published.publishers and index.has_publishers()
    from_index, from_file = Publishers(index, None), Publishers(None, published)
    for iri in index.members(Iris(read_manifest(release)["base"]).library):
        assert from_index.of_entry(iri) == from_file.of_entry(iri)
    assert from_index.found("no-such-publisher") is from_file.found("no-such-publisher") is None
    for pid in published.publishers:
        indexed, filed = from_index.found(pid), from_file.found(pid)
        assert indexed is not None and filed is not None
        assert indexed.publisher == filed.publisher
        # Read a page at a time from the index: its length, and any window of it.
        assert len(indexed.entries) == len(filed.entries) > 0
        assert list(indexed.entries) == list(filed.entries)
        for start, stop in ((0, 1), (1, 3), (0, 100), (len(filed.entries) - 1, 200)):
            assert indexed.entries[start:stop] == list(filed.entries[start:stop])


def test_the_index_is_opened_read_only(release: Path) -> None:
    index = Index(release / FILE)
    index.concepts()
    db = index._db()
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        db.execute("DELETE FROM concept")


# --- search -------------------------------------------------------------------------------------


def test_words_are_quoted_strings_never_fts_syntax() -> None:
    assert match_expression(["child", 'a"b', "art"]) == '"child" * AND "a""b" AND "art"'
    assert words_of('NEAR("child" OR abuse*) -x ^title: {a b}') == (
        "NEAR",
        "child",
        "OR",
        "abuse",
        "x",
        "title",
        "a",
        "b",
    )
    assert words_of("ﬁre résumé_2020") == ("fire", "résumé", "2020")
    with pytest.raises(SearchError, match="at most 8 words"):
        words_of("a b c d e f g h i")
    with pytest.raises(SearchError, match="longer than 500"):
        words_of("x" * 501)


def test_spans_of_marked_text() -> None:
    assert spans("a\x02b\x03c") == (Span("a"), Span("b", True), Span("c"))
    assert spans("\x02b\x03") == (Span("b", True),)
    assert spans("a\x02b") == (Span("a"), Span("b", True))
    assert spans("") == ()


def test_search_of_the_seed(release: Path, reader: OxigraphReader) -> None:
    index = Index(release / FILE)
    everyone = index.search(size=100)
    assert everyone.total == 35 and everyone.pages == 1
    assert [h.iri for h in everyone.hits] == reader.members(reader.iris.library, "library")
    assert {f.key: f.count for f in everyone.categories} == reader.category_counts()
    assert sum(f.count for f in everyone.years) == 35
    for text in ('NEAR("child" OR abuse*)', '"', "*", "AND OR NOT"):
        index.search(text)  # no FTS5 syntax error, whatever the text
    with pytest.raises(SearchError, match="unknown sort"):
        index.search("child", sort="best")
    with pytest.raises(SearchError, match="no category"):
        index.search("child", categories=["http://nowhere/"])
    with pytest.raises(SearchError, match="positive integer"):
        index.search("child", page=0)


def test_prefix_words_find_in_the_term_table_what_fts5vocab_lists(release: Path) -> None:
    """The terms a prefix word finds are read from the term table written with the index,
    not counted by fts5vocab: the same terms, for every prefix of every term and word."""
    index = Index(release / FILE)
    db = index._db()
    db.execute("CREATE VIRTUAL TABLE temp.listed USING fts5vocab(main, search, 'row')")
    terms = db.execute("SELECT term, docs FROM term").fetchall()
    assert terms == db.execute("SELECT term, doc FROM temp.listed").fetchall()
    words = {str(t) for t, _ in terms}
    for title, description in db.execute("SELECT title, description FROM document"):
        text = unicodedata.normalize("NFKC", f"{title} {description}")
        words.update(graph_index._WORD.findall(text))
    prefixes = sorted({w[:n] for w in words for n in range(1, len(w) + 1)})
    found = 0
    for prefix in prefixes:
        expected = graph_index._prefix_terms(db, prefix, graph_index._VOCABULARY)
        assert graph_index._prefix_terms(db, prefix, graph_index._TERMS) == expected, prefix
        found += expected is not None and len(expected) > 1
    assert len(prefixes) > 1000 and found > 100
    assert {"child", "children"} <= set(graph_index._prefix_terms(db, "child") or ())


def test_an_index_without_the_term_table_finds_the_same(release: Path, tmp_path: Path) -> None:
    """An index written before the term table finds a prefix word's terms through fts5vocab:
    the same expressions and answers."""
    older = _without(release, tmp_path, "term")
    new, old = Index(release / FILE), Index(older)
    for words in (("child",), ("exploit", "young"), ("safeguarding", "résumé"), ("nothingness",)):
        assert new.words_expression(words) == old.words_expression(words)
    assert (new._terms_of, old._terms_of) == (graph_index._TERMS, graph_index._VOCABULARY)
    assert _answers(release / FILE) == _answers(older)


# --- incremental writing ------------------------------------------------------------------------

BASE = "https://example.org/kg/"
OTHER = "https://other.example/"
T = [datetime(2026, 1, day, 12, tzinfo=UTC) for day in (1, 2, 3, 4)]


def _tables(path: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every row of the index but the FTS5 internals, in a stable order."""
    db = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True)
    try:
        queries = {
            "meta": "SELECT * FROM meta ORDER BY key",
            "concept": "SELECT iri, label, notation, entries FROM concept ORDER BY iri",
            "member": "SELECT * FROM member ORDER BY list, iri",
            "entry": "SELECT * FROM entry ORDER BY id",
            "document": "SELECT id, title, description FROM document ORDER BY id",
            "subject": "SELECT e.iri, c.iri FROM subject s JOIN entry e ON e.id = s.entry "
            "JOIN concept c ON c.id = s.concept ORDER BY 1, 2",
            "year": "SELECT * FROM year ORDER BY year",
            "month": "SELECT * FROM month ORDER BY name",
            "tally": "SELECT * FROM tally ORDER BY list, month",
            "publisher": "SELECT * FROM publisher ORDER BY id",
            "published": "SELECT * FROM published ORDER BY iri, rank",
            "publishers": "SELECT * FROM publishers",
            "issued": "SELECT e.iri, i.publisher FROM issued i JOIN entry e ON e.id = i.entry "
            "ORDER BY 1, 2",
        }
        tables = {name: db.execute(sql).fetchall() for name, sql in queries.items()}
        # The facet tokens name concepts by id, which a rebuild gives as they come: by IRI.
        iri_of = {f"\ue000c{n}": iri for n, iri in db.execute("SELECT id, iri FROM concept")}
        tables["facets"] = [
            (n, sorted(iri_of.get(token, token) for token in facets.split()))
            for n, facets in db.execute("SELECT id, facets FROM document ORDER BY id")
        ]
        # The facet masks too: each entry's concepts by IRI and publishers by id.
        tables["facet"] = [
            (int(rows.years[n]), sorted(iri_of[f"\ue000c{c}"] for c in range(64) if m >> c & 1))
            for rows in [graph_index._facet_rows(db)]
            if rows is not None
            for n, m in enumerate(int(x) for x in rows.concepts)
        ] + [
            (n, [pid for b, pid in enumerate(rows.publishers) if int(x) >> b & 1])
            for rows in [graph_index._facet_rows(db)]
            if rows is not None
            for n, x in enumerate(rows.issued)
        ]
        assert tables["facet"]
        # The term table holds what FTS5's vocabulary of search lists, in its order (a rebuild
        # keeps it from its deletions and insertions: graph/index.py _changed_terms).
        db.execute("CREATE VIRTUAL TABLE temp.listed USING fts5vocab(main, search, 'row')")
        terms = db.execute("SELECT term, docs FROM term").fetchall()
        assert terms == db.execute("SELECT term, doc FROM temp.listed").fetchall()
        assert terms
        tables["term"] = sorted((iri_of.get(term, term), n) for term, n in terms)
        # The common words' rows, their concepts by IRI (graph/index.py _write_common).
        tables["common"] = [
            (key, asked, total, _by_iri(json.loads(facets), iri_of), titled, bytes(ranked))
            for key, asked, total, facets, titled, ranked in db.execute(
                "SELECT * FROM common ORDER BY words"
            )
        ]
        tables["matched"] = db.execute("SELECT * FROM matched ORDER BY words, month").fetchall()
        return tables
    finally:
        db.close()


def _by_iri(facets: dict[str, dict[str, int]], iri_of: dict[str, str]) -> object:
    concepts = {iri_of[f"\ue000c{n}"]: count for n, count in facets["concepts"].items()}
    return {**facets, "concepts": sorted(concepts.items())}


SEARCHES = [
    {"words": ("child",)},
    {"words": ("exploit", "child")},
    {"words": ("nothing", "matches", "this")},
    {"words": ("child",), "years": (2018, 2020)},
    {"years": (2019,)},
    {"words": ("young",), "publishers": ("npcc",)},
    {"publishers": ("npcc",), "years": (2018,)},
]


def test_facets_counted_from_the_arrays_equal_sql_counts(release: Path) -> None:
    """The facet table's arrays (numpy) count what the joins of subject and issued count, for
    words, categories, publishers and years alone and together."""
    index = Index(release / FILE)
    db, concepts = index._db(), index.categories()
    rows = index._facet_arrays()
    assert rows is not None and rows.publishers
    asked = [*SEARCHES, *({"categories": (iri,)} for iri in list(concepts)[:3])]
    asked.append({"words": ("child",), "categories": (next(iter(concepts)),)})
    asked.append({"words": ("child",), "publishers": (rows.publishers[0],)})
    totals = []
    for fields in asked:
        query = graph_index.Search(**fields)  # type: ignore[arg-type]
        counted = graph_index._facets(db, query, concepts, rows)
        assert counted == graph_index._facets(db, query, concepts, None), fields
        totals.append(counted[0])
    assert 0 in totals and max(totals) > 5


def _mapped_as_the_table(path: Path) -> graph_index._FacetRows:
    """The arrays mapped from the index's facet file equal those read from its facet table."""
    index = Index(path)
    mapped = graph_index._mapped_facets(path, index._db())
    table = graph_index._facet_rows(index._db())
    assert mapped is not None and table is not None
    for name in ("months", "counts", "starts", "concepts", "issued", "month_rows"):
        assert getattr(mapped, name).tolist() == getattr(table, name).tolist(), name
    assert mapped.publishers == table.publishers
    return mapped


def test_workers_map_the_facet_rows_from_a_file_of_the_release(
    release: Path, tmp_path: Path
) -> None:
    mapped = _mapped_as_the_table(release / FILE)
    # Views of the file's pages (shared by every worker), not arrays of a worker's own.
    for array in (mapped.concepts, mapped.issued, mapped.month_rows):
        assert not array.flags.owndata and not array.flags.writeable
    assert Index(release / FILE)._facet_arrays().concepts.flags.writeable is False  # type: ignore[union-attr]
    # A file that is not this index's (another index's, or cut short) is not read: the search
    # counts from the table, as without a file.
    facets = (release / graph_index.FACETS_FILE).read_bytes()
    for name, damaged, changed in (("other", facets, True), ("short", facets[:-8], False)):
        copy = tmp_path / name
        copy.mkdir()
        shutil.copyfile(release / FILE, copy / FILE)
        expected = [Index(copy / FILE).search(w) for w in ("child", "", "county lines")]
        if changed:
            db = sqlite3.connect(copy / FILE)
            db.execute("UPDATE month SET digest = 'x' WHERE name = (SELECT min(name) FROM month)")
            db.commit()
            db.close()
        (copy / graph_index.FACETS_FILE).write_bytes(damaged)
        index = Index(copy / FILE)
        assert graph_index._mapped_facets(copy / FILE, index._db()) is None, name
        assert index._facet_arrays() is not None
        assert [index.search(w) for w in ("child", "", "county lines")] == expected


def _rows(path: Path, table: str) -> list[tuple[object, ...]]:
    """Every row of one table of an index, sorted."""
    db = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True)
    try:
        return sorted(db.execute(f"SELECT * FROM {table}").fetchall())
    finally:
        db.close()


def _answers(path: Path) -> list[object]:
    index = Index(path)
    out: list[object] = []
    for words in ("", "child", "exploit", "résumé exploitation", "county lines", "brand"):
        for sort in ("relevance", "newest", "oldest"):
            out.append(index.search(words, sort=sort, size=100))
    concept = next(iter(index.categories()))
    out.append(index.search("child", categories=[concept], years=[2018, 2020]))
    for pid in index.publishers():
        out.append(index.search("", publishers=[pid]))
    return out


def _integrity(path: Path, tmp: Path) -> None:
    """FTS5's own check that its indexes hold exactly what the document table holds."""
    copy = tmp / "check.sqlite"
    shutil.copyfile(path, copy)
    db = sqlite3.connect(copy)
    try:
        db.execute("INSERT INTO search (search, rank) VALUES ('integrity-check', 1)")
        db.execute("INSERT INTO titles (titles, rank) VALUES ('integrity-check', 1)")
    finally:
        db.close()


def _seed_with_and_without_common(tmp_path: Path) -> tuple[Index, Index]:
    """The seed's index, and a copy of it without the common table."""
    out = tmp_path / "publication"
    build([SEED], out, BuildOptions(base=BASE), now=T[0])
    path = current_release(out) / FILE
    (tmp_path / "plain").mkdir()
    return Index(path), Index(_without(path.parent, tmp_path / "plain", "common"))


def test_common_words_are_answered_as_without_the_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A one-word search of a word held by more than COMMON entries takes its total, facets
    and first ranks from the common table, and answers what the same search answers without
    it, by every sort, page and size; a stem that is not its own ("abus": "abuse") too."""
    monkeypatch.setattr(graph_index, "COMMON", 5)
    index, plain = _seed_with_and_without_common(tmp_path)
    words = ("child", "children", "abuse", "abused", "young", "this", "are", "and", "s", "Ha")
    for word in words:
        assert index._common_answer(graph_index.Search(words=(word,))) is not None, word
    assert index._common_answer(graph_index.Search(words=("county",))) is None
    for word in (*words, "county", "exploitation"):
        for size, page in ((20, 1), (100, 1), (3, 1), (3, 2), (3, 7), (1, 30)):
            for sort in graph_index.SORTS:
                asked = {"size": size, "page": page, "sort": sort}
                assert index.search(word, **asked) == plain.search(word, **asked), (word, asked)
    # Several common words, or one with a facet selected: matched from the matched table.
    concept = next(iter(index.categories()))
    rows = index._facet_arrays()
    assert rows is not None and rows.publishers
    for text, facets in (
        ("child abuse", {}),
        ("young people children", {}),
        ("abused this and", {}),
        ("child", {"categories": [concept]}),
        ("child young", {"years": [2018, 2019]}),
        ("abuse", {"publishers": [rows.publishers[0]]}),
        ("child county", {}),
    ):
        query = graph_index.Search(words=words_of(text))
        known = index._common_ids(query, rows)
        assert (known is None) == ("county" in text), text
        for sort in graph_index.SORTS:
            asked = {"sort": sort, **facets}
            assert index.search(text, **asked) == plain.search(text, **asked), (text, asked)


def test_a_common_word_with_a_facet_ranks_from_its_first_ids(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A common word with a facet selected takes the first tier of its page from the word's
    first ranked ids when the facets keep enough of them, and ranks every title match only
    when they do not: the same answers as without the common table either way."""
    monkeypatch.setattr(graph_index, "COMMON", 5)
    monkeypatch.setattr(graph_index, "COMMON_RANKED", 2)  # a prefix, not every title match
    index, plain = _seed_with_and_without_common(tmp_path)
    rows = index._facet_arrays()
    assert rows is not None and rows.publishers
    statements: list[str] = []
    index._db().set_trace_callback(statements.append)
    whole = graph_index._RANKING  # every title match ranked: no LIMIT
    fast = slow = 0
    prefixes = []
    for word in ("child", "children", "abuse", "young", "this", "and", "s"):
        common = index._common_answer(graph_index.Search(words=(word,)))
        assert common is not None, word
        if not common.is_whole:
            prefixes.append(word)
    assert len(prefixes) >= 2, prefixes
    for word in prefixes:
        for concept in index.categories():
            for facets in (
                {"categories": [concept]},
                {"categories": [concept], "years": [2019, 2020]},
                {"publishers": [rows.publishers[0]]},
            ):
                for size, page in ((1, 1), (2, 1), (3, 1), (1, 3), (20, 1)):
                    asked = {"size": size, "page": page, **facets}
                    statements.clear()
                    answer = index.search(word, **asked)
                    assert answer == plain.search(word, **asked), (word, asked)
                    ranked_all = any(s.strip().endswith(whole[-20:]) for s in statements)
                    fast, slow = fast + (not ranked_all), slow + ranked_all
    assert fast and slow  # both ways were taken, and each answered as without the table


def test_no_common_words_without_facet_arrays(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An index without facet arrays (more than 64 publishers) keeps no common words, and the
    rebuild after one that has them again writes them all, as a full write does."""
    monkeypatch.setattr(graph_index, "COMMON", 5)
    source, out, twin = tmp_path / "library.txt", tmp_path / "out", tmp_path / "twin"
    text = SEED.read_text(encoding="utf-8")
    source.write_text(text, encoding="utf-8")
    build([source], out, BuildOptions(base=BASE), now=T[0])
    assert _tables(current_release(out) / FILE)["common"]
    added = "\n\nA brand new entry\n\nAdded: 01/01/2026 at 9:00 am Category: Prevent\n\nNew.\n"
    with monkeypatch.context() as patched:
        patched.setattr(graph_index, "_facet_rows", lambda db: None)
        source.write_text(text + added, encoding="utf-8")
        build([source], out, BuildOptions(base=BASE), now=T[1])
        db = sqlite3.connect(current_release(out) / FILE)
        for table in ("common", "matched"):
            assert db.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,), table
        db.close()
    shutil.copytree(out, twin, symlinks=True, ignore=PRUNING)
    source.write_text(text + added.replace("New.", "New child abuse."), encoding="utf-8")
    build([source], out, BuildOptions(base=BASE), now=T[2])
    build([source], twin, BuildOptions(base=BASE), now=T[2], reuse=False)
    changed, full = current_release(out) / FILE, current_release(twin) / FILE
    assert _tables(changed)["common"]
    assert _tables(changed) == _tables(full)


def test_a_release_published_during_a_rebuilds_parse_is_the_one_its_index_starts_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rebuild starts copying the current index with its parse (publication._EarlyCopy);
    when another build publishes meanwhile, the copy of the release it replaced is dropped
    and the new current one's is taken: the index answers as the same builds run in turn."""
    text = SEED.read_text(encoding="utf-8")
    first, second = "Becoming Trauma Informed", "Break4Change Programme Toolkit"
    assert first in text and second in text
    other = text.replace(first, "Becoming Trauma Informed (Revised)")
    mine = other.replace(second, "Break4Change Programme Toolkit, second edition")
    source, elsewhere = tmp_path / "mine.txt", tmp_path / "other.txt"
    source.write_text(mine, encoding="utf-8")
    elsewhere.write_text(other, encoding="utf-8")
    out, turns = tmp_path / "publication", tmp_path / "in-turn"
    for folder in (out, turns):
        build([SEED], folder, BuildOptions(base=BASE), now=T[0])
    real = publication.read_listings
    copies: list[Path] = []

    def another_build_publishes(*args, **kwargs):  # type: ignore[no-untyped-def]
        if not copies:
            copies.extend((out / "releases").glob(".building-*/.*.previous"))
            build([elsewhere], out, BuildOptions(base=BASE), now=T[1])
        return real(*args, **kwargs)

    monkeypatch.setattr(publication, "read_listings", another_build_publishes)
    build([source], out, BuildOptions(base=BASE), now=T[2])
    monkeypatch.undo()
    assert copies, "the copy of the first release had begun when the parse began"
    assert not list((out / "releases").glob(".building-*"))
    build([elsewhere], turns, BuildOptions(base=BASE), now=T[1])
    build([source], turns, BuildOptions(base=BASE), now=T[2], reuse=False)
    mixed, in_turn = current_release(out) / FILE, current_release(turns) / FILE
    assert _tables(mixed) == _tables(in_turn)
    assert _answers(mixed) == _answers(in_turn)
    titles = {h.title for h in Index(mixed).search("trauma informed").hits}
    assert titles == {"Becoming Trauma Informed (Revised)"}  # the other build's, kept


def test_a_rebuild_rewrites_only_changed_months_and_answers_as_a_full_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(graph_index, "COMMON", 5)  # common words kept exact (_update_common)
    source = tmp_path / "library.txt"
    text = SEED.read_text(encoding="utf-8")
    source.write_text(text, encoding="utf-8")
    out = tmp_path / "publication"
    build([source], out, BuildOptions(base=BASE), now=T[0])
    first = current_release(out) / FILE
    build([source], out, BuildOptions(base=BASE), now=T[1])
    same = current_release(out) / FILE
    assert same != first and same.stat().st_ino == first.stat().st_ino  # nothing changed
    facets = graph_index.FACETS_FILE
    assert same.with_name(facets).stat().st_ino == first.with_name(facets).stat().st_ino
    # The copy made while the build ran (index.PreviousCopy) is not left in the release.
    assert sorted(p.name for p in same.parent.glob(".*")) == []
    # A new description, a new category on an entry, an entry removed, one added.
    old = "For professionals working with families where young people are violent/abusive"
    assert old in text
    text = text.replace(old, "A brand new résumé about exploitation, for professionals")
    text = text.replace(
        "Added: 06/07/2018 at 12:43 pm Category: Crime/ASB, Safeguarding",
        "Added: 06/07/2018 at 12:43 pm Category: Crime/ASB, Safeguarding, Brand New Things",
    )
    removed = "Becoming Trauma Informed"
    text = text.replace(removed + "\n", "Becoming Trauma Informed Again (NPCC)\n")
    text += "\n\nA brand new entry\n\nAdded: 01/01/2026 at 9:00 am Category: Prevent\n\nNew.\n"
    source.write_text(text, encoding="utf-8")
    twin = tmp_path / "twin"
    shutil.copytree(out, twin, symlinks=True, ignore=PRUNING)
    build([source], out, BuildOptions(base=BASE), now=T[2])
    build([source], twin, BuildOptions(base=BASE), now=T[2], reuse=False)
    changed, full = current_release(out) / FILE, current_release(twin) / FILE
    assert changed.stat().st_ino != same.stat().st_ino
    assert sorted(p.name for p in changed.parent.glob(".*")) == []
    assert _tables(changed) == _tables(full)
    assert _answers(changed) == _answers(full)
    assert changed.with_name(facets).stat().st_ino != same.with_name(facets).stat().st_ino
    _mapped_as_the_table(changed)
    _integrity(changed, tmp_path)
    index = Index(changed)
    assert [h.title for h in index.search("brand new résumé").hits] == [
        "Break4Change Programme Toolkit"
    ]
    assert index.search("violent abusive parents").total == 0
    assert [h.title for h in index.search(removed).hits] == [
        "Becoming Trauma Informed Again (NPCC)"
    ]
    # The publisher's facet follows the month rewritten: the retitled entry now names NPCC.
    npcc = index.search(publishers=["npcc"])
    assert "Becoming Trauma Informed Again (NPCC)" in [h.title for h in npcc.hits]
    assert next(f for f in npcc.publishers if f.key == "npcc").count == npcc.total == 2
    with pytest.raises(SearchError, match="no publisher 'nobody'"):
        index.search(publishers=["nobody"])
    brand_new = next(c for c in index.categories().values() if c.label == "Brand New Things")
    assert brand_new.entries == 1
    # Another base IRI: nothing of the previous index is taken.
    build([source], out, BuildOptions(base=OTHER), now=T[3])
    moved = _tables(current_release(out) / FILE)
    assert moved["entry"] and all(str(row[1]).startswith(OTHER) for row in moved["entry"])
    assert ("base", OTHER) in moved["meta"]


def test_a_full_write_merges_once_and_leaves_fts5s_merge_options(
    release: Path, tmp_path: Path
) -> None:
    """A full write adds its rows with FTS5's merging off and merges them once ('optimize'):
    each FTS5 index is one sound segment, and its merge options are FTS5's defaults again,
    so that a rebuild's inserts into a copy of the file merge as they always did."""
    db = sqlite3.connect(release.resolve().as_uri() + f"/{FILE}?mode=ro", uri=True)
    try:
        for table in ("search", "titles"):
            options = dict(db.execute(f"SELECT k, v FROM {table}_config"))
            assert (options["automerge"], options["crisismerge"]) == (4, 16)
            assert db.execute(f"SELECT count(DISTINCT segid) FROM {table}_idx").fetchone() == (1,)
    finally:
        db.close()
    _integrity(release / FILE, tmp_path)


def test_a_full_write_by_its_own_process_answers_as_one_on_the_builds_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """From FULL_APART entries, a full write's rows are written by a process of its own
    (graph/index.py run_full_write) while the build goes on: the build's thread writes none
    of them, and the file holds, row for row, and answers what one written on the build's
    thread does; the process's own file is not left in the release."""

    def on_the_builds_thread(*_: object) -> None:
        raise AssertionError("the rows were written on the build's thread")

    with monkeypatch.context() as patched:
        patched.setattr(graph_index, "FULL_APART", 1)
        patched.setattr(graph_index, "_write_all", on_the_builds_thread)
        build([SEED], tmp_path / "apart", BuildOptions(base=BASE), now=T[0])
    build([SEED], tmp_path / "here", BuildOptions(base=BASE), now=T[0])
    apart = current_release(tmp_path / "apart") / FILE
    here = current_release(tmp_path / "here") / FILE
    assert _tables(apart) == _tables(here)
    assert _answers(apart) == _answers(here)
    # The history's tables, written on the build's thread into the process's file.
    ledger_tables = ("setdef", "record", "record_set", "stamp", "change", "hmonth")
    assert [_rows(apart, t) for t in ledger_tables] == [_rows(here, t) for t in ledger_tables]
    assert _rows(apart, "record") and _rows(apart, "change")
    _integrity(apart, tmp_path)
    assert sorted(p.name for p in apart.parent.glob(".*")) == []


def test_a_full_writers_failure_fails_the_build_and_keeps_the_current_release(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the full writer's process cannot write its file, the build stops with what it
    could not write (a PublicationError from the process), and the current release stays."""
    out = tmp_path / "publication"
    build([SEED], out, BuildOptions(base=BASE), now=T[0])
    before = current_release(out)
    monkeypatch.setattr(graph_index, "FULL_APART", 1)
    monkeypatch.setattr(graph_index, "FULL_NAME", "no-such-folder/index.sqlite")
    with pytest.raises(PublicationError, match=r"no-such-folder/index\.sqlite: cannot write"):
        build([SEED], out, BuildOptions(base=OTHER), now=T[1])
    assert current_release(out) == before
    assert not list((out / "releases").glob(".building-*"))


def test_a_changed_description_rewrites_that_entrys_rows_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rebuild after one changed description takes that entry's rows out of the index and
    puts them in again, not its whole month's (the other entries of the month keep theirs),
    and ends with what a full write gives."""
    source = tmp_path / "library.txt"
    text = SEED.read_text(encoding="utf-8")
    source.write_text(text, encoding="utf-8")
    out = tmp_path / "publication"
    build([source], out, BuildOptions(base=BASE), now=T[0])
    taken_out: list[str] = []
    delete_rows = graph_index._delete_rows

    def recorded(db: sqlite3.Connection, rows: list[graph_index._Row]) -> None:
        taken_out.extend(row.entry[1] for row in rows)
        delete_rows(db, rows)

    monkeypatch.setattr(graph_index, "_delete_rows", recorded)
    old = "For professionals working with families where young people are violent/abusive"
    source.write_text(text.replace(old, "A rewritten description, for professionals"), "utf-8")
    twin = tmp_path / "twin"
    shutil.copytree(out, twin, symlinks=True, ignore=PRUNING)
    build([source], out, BuildOptions(base=BASE), now=T[1])
    build([source], twin, BuildOptions(base=BASE), now=T[1], reuse=False)
    changed, full = current_release(out) / FILE, current_release(twin) / FILE
    assert _tables(changed) == _tables(full)
    assert _answers(changed) == _answers(full)
    _integrity(changed, tmp_path)
    index = Index(changed)
    (hit,) = index.search("rewritten description").hits
    assert hit.title == "Break4Change Programme Toolkit"
    assert taken_out == [hit.iri]
    month = hit.iri[: len(Iris(BASE).entry_prefix) + 7]
    neighbours = [row[1] for row in _tables(changed)["entry"] if str(row[1]).startswith(month)]
    assert len(neighbours) > 1  # the month holds others, which kept their rows


# Words that share their beginnings: the terms a prefix word finds come and go with the
# entries that hold them, as random rebuilds add, remove and rewrite entries.
_WORDS = ("zebra", "zebras", "zebrafish", "zebrine", "exploit", "exploitation", "exploited")
_WORDS += ("child", "children", "childhood", "quokka", "quokkas", "quoll", "résumé", "resumes")
_PREFIXES = ("zebr", "zebra", "expl", "exploit", "chil", "child", "quok", "quol", "resum")


def _terms_library(present: dict[int, tuple[str, str]]) -> str:
    """A listing of the entries present (number -> category, text): numbers 0-29, in the
    months 2023-01 to 2023-03 (ten each)."""
    blocks = []
    for n, (category, text) in sorted(present.items()):
        added = f"{1 + n % 10:02}/{1 + n // 10:02}/2023 at 9:{n:02} am"
        blocks.append(f"Entry {n} on {text.split()[0]}\n\nAdded: {added} Category: {category}")
        blocks[-1] += f"\n\n{text}\n"
    return "Library – Terms\n\n" + "\n".join(blocks)


@pytest.mark.parametrize("seed", range(4))
def test_random_rebuilds_keep_the_term_table_of_a_full_write(
    tmp_path: Path, seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Entries added, removed and rewritten, a month emptied: after each rebuild the term
    table (and what the prefix words find) is the one a full write of the same listing has,
    terms held by no entry any more gone from both; so is the common table, its words
    coming and going (held by more than 3 entries here), and a one-word search answers from
    it what it answers without it."""
    monkeypatch.setattr(graph_index, "COMMON", 3)
    rng = random.Random(seed)
    source, out, twin = tmp_path / "library.txt", tmp_path / "out", tmp_path / "twin"

    def text() -> str:
        return " ".join(rng.sample(_WORDS, rng.randint(1, 4)))

    present = {n: ("Safeguarding", text()) for n in range(0, 30, 2)}
    for step in range(7):
        if step == 3:  # the month 2023-02 emptied
            present = {n: kept for n, kept in present.items() if not 10 <= n < 20}
        elif step:
            for n in rng.sample(range(30), 5):
                action = rng.choice(["toggle", "text", "category"])
                if action == "toggle" or n not in present:
                    if present.pop(n, None) is None:
                        present[n] = (rng.choice(["Safeguarding", "Prevent"]), text())
                elif action == "text":
                    present[n] = (present[n][0], text())
                else:
                    present[n] = (rng.choice(["Education", "Prevent", "Early Help"]), text())
        source.write_text(_terms_library(present), encoding="utf-8")
        now = datetime(2026, 1, 1, step, tzinfo=UTC)
        # Two publications in step, one rebuilt from its previous index, one written in full
        # each time (the same history: a copy of one would race its background pruning).
        build([source], out, BuildOptions(base=BASE), now=now)
        build([source], twin, BuildOptions(base=BASE), now=now, reuse=False)
        changed, full = current_release(out) / FILE, current_release(twin) / FILE
        assert _tables(changed) == _tables(full), step
        a, b = Index(changed), Index(full)
        (tmp_path / f"plain{step}").mkdir()
        plain = Index(_without(changed.parent, tmp_path / f"plain{step}", "common"))
        for word in _PREFIXES:
            assert a.search(word, size=100) == b.search(word, size=100), (step, word)
            assert a.words_expression([word]) == b.words_expression([word]), (step, word)
        assert _tables(changed)["common"], step
        for word in (*_PREFIXES, *_WORDS, "on", "entry", "entry on child", "zebra quoll on"):
            for size, page in ((100, 1), (2, 1), (2, 3), (1, 4)):
                for sort in graph_index.SORTS:
                    asked = {"size": size, "page": page, "sort": sort}
                    assert a.search(word, **asked) == plain.search(word, **asked), (step, word)
