"""graph/ledger.py: the history read from the release's index a page at a time answers what
the history's own files answer (graph/history.py Index, read whole: the reference), after
builds that create, update, delete and bring back entries; a rebuild's tables equal a full
write's; the sitemap files a build writes are the documents the server made before."""

from __future__ import annotations

import itertools
import shutil
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from harvest_data import (
    NEW_DESCRIPTION,
    OLD_DESCRIPTION,
    remove_entry,
    write_changed,
    write_seed,
)
from live import SEED

from graph import history, ledger, sitemap
from graph.errors import PublicationError
from graph.history import EntryState, History, Selection, Window
from graph.index import FILE, Index
from graph.iris import Iris
from graph.publication import BuildOptions, build, current_release

BASE = "http://example.org/lib/"
IRIS = Iris(BASE)
TIMES = [datetime(2026, 3, d, 9, 0, 0, tzinfo=UTC) for d in (1, 8, 15, 22, 29)]


@pytest.fixture(scope="module")
def releases(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Copies of five releases: the seed; a new page, a changed description and a removed
    entry; the same again; the removed entry back; one more entry removed."""
    root = tmp_path_factory.mktemp("ledger")
    out, src = root / "out", root / "src"
    seed = SEED.read_text(encoding="utf-8")
    steps = [
        lambda: write_seed(src),
        lambda: write_changed(src),
        lambda: write_changed(src),
        lambda: _back(src),
        lambda: _write(src, remove_entry(seed, "Break4Change Programme Toolkit")),
    ]
    kept = []
    for n, (step, now) in enumerate(zip(steps, TIMES, strict=True)):
        build(step(), out, BuildOptions(base=BASE), now=now)
        keep = root / str(n)
        shutil.copytree(current_release(out), keep, ignore=shutil.ignore_patterns("store"))
        kept.append(keep)
    return kept


def _write(src: Path, text: str) -> list[Path]:
    for old in src.glob("*.txt"):
        old.unlink()
    (src / "library-safeguarding.txt").write_text(text, encoding="utf-8")
    return [src / "library-safeguarding.txt"]


def _back(src: Path) -> list[Path]:
    """The removed entry back: the changed seed page with it, and the new page."""
    paths = write_changed(src)
    seed = SEED.read_text(encoding="utf-8")
    paths[0].write_text(seed.replace(OLD_DESCRIPTION, NEW_DESCRIPTION), encoding="utf-8")
    return paths


def _views(release: Path) -> tuple[ledger.Ledger, history.Index]:
    found = ledger.open_ledger(release)
    assert found is not None
    return found, history.Index(release)


def _blank(state: EntryState | None) -> EntryState | None:
    return None if state is None else state._replace(fingerprint="")


def _selection(found: Selection) -> tuple[object, ...]:
    return ([(i, _blank(s)) for i, s in found.records], found.complete, found.before, found.more)


def test_the_scenario_has_every_kind_of_change(releases: list[Path]) -> None:
    kinds = {c.kind for c in history.read_changes(releases[-1])}
    assert kinds == {"create", "update", "delete"}
    assert any(s.deleted for s in history.Index(releases[-1]).entries.values())
    assert isinstance(history.load(releases[-1]), ledger.Ledger)


@pytest.mark.parametrize("n", range(5))
def test_states_titles_and_changes(releases: list[Path], n: int) -> None:
    fast, slow = _views(releases[n])
    everything = list(slow.entries)
    for iri in [*everything, BASE + "entry/never", "not an IRI"]:
        assert _blank(fast.entry(iri)) == _blank(slow.entry(iri)), iri
        assert _blank(fast.tombstone(iri)) == _blank(slow.tombstone(iri))
        assert fast.entry_changed(iri) == slow.entry_changed(iri)
    assert {k: _blank(v) for k, v in fast.entries_of(everything).items()} == {
        k: _blank(v) for k, v in slow.entries_of(everything).items()
    }
    assert fast.titled_of(everything) == slow.titled_of(everything)
    assert fast.earliest == slow.earliest
    total = slow.change_count()
    assert fast.change_count() == total > 0
    for start, stop in itertools.product(range(total + 2), repeat=2):
        assert fast.changes_between(start, stop) == slow.changes_between(start, stop)
    for concept in [None, *slow.categories]:
        shown = slow.members(concept)[-3:]
        assert fast.list_changed(concept, shown) == slow.list_changed(concept, shown)
        if concept is not None:
            for size in (0, 1, 5, 100):
                assert fast.newest_members(concept, size) == slow.newest_members(concept, size)
    assert list(fast.live_newest()) == list(slow.live_newest())
    for offset in (1, 5, 34, 36, 100):
        assert list(fast.live_newest(offset)) == list(slow.live_newest(offset))


@pytest.mark.parametrize("n", [0, 1, 4])
def test_collection_windows(releases: list[Path], n: int) -> None:
    fast, slow = _views(releases[n])
    for concept, size in itertools.product([None, *slow.categories], (1, 3, 10)):
        members = slow.members(concept)
        keys = [*members, BASE + "entry/0000", BASE + "entry/9999", BASE + "entry/2019-10"]
        assert fast.window(concept, size) == slow.window(concept, size)
        assert fast.window(concept, size, last=True) == slow.window(concept, size, last=True)
        for key in keys:
            for where in ("after", "before"):
                got: Window = fast.window(concept, size, **{where: key})  # type: ignore[arg-type]
                assert got == slow.window(concept, size, **{where: key}), (concept, size, key)


@pytest.mark.parametrize("n", [1, 3, 4])
def test_oai_selections(releases: list[Path], n: int) -> None:
    """Every from/until pair over the build times (and a second either side), with and
    without each set, walked page by page from each identifier."""
    fast, slow = _views(releases[n])
    # A release's own build went live later than it was built: both read it the same way.
    slow.visible = fast.visible = {**slow.visible, slow.built: "2026-03-29T09:00:05Z"}
    times = sorted({slow.datestamp(s) for s in slow.entries.values()})
    bounds = [""]
    for t in times:
        moment = history.parse_time(t)
        bounds += [t, history.format_time(moment - timedelta(seconds=1))]
    bounds.append("2027-01-01T00:00:00Z")
    afters = ["", *list(slow.entries)[::4], BASE + "entry/9999"]
    for start, end in itertools.product(bounds, repeat=2):
        for concept in [None, *slow.categories, BASE + "category/none"]:
            for after in afters:
                got = fast.select(start, end, concept, after, 3)
                want = slow.select(start, end, concept, after, 3)
                assert _selection(got) == _selection(want), (start, end, concept, after)


def _tables(path: Path) -> dict[str, list[tuple[object, ...]]]:
    """The history's tables, categories named by IRI (ids depend on the order they came)."""
    db = sqlite3.connect(path)
    try:
        sets = dict(db.execute("SELECT id, iri FROM setdef").fetchall())

        def named(text: str) -> str:
            return " ".join(sets[int(s)] for s in text.split())

        return {
            "setdef": sorted(db.execute("SELECT iri, label, notation FROM setdef").fetchall()),
            "record": [
                (*row[:3], named(row[3]), *row[4:])
                for row in db.execute("SELECT * FROM record ORDER BY id")
            ],
            "record_set": sorted(
                (sets[c], n, d) for c, n, d in db.execute("SELECT * FROM record_set")
            ),
            "stamp": sorted(
                (sets.get(c, ""), d, k) for c, d, k in db.execute("SELECT * FROM stamp")
            ),
            "change": db.execute("SELECT * FROM change ORDER BY seq").fetchall(),
            "hmonth": sorted(db.execute("SELECT * FROM hmonth").fetchall()),
        }
    finally:
        db.close()


def _full_write(release: Path, path: Path) -> Path:
    """The history's tables of release written in full at path, from its history's files."""
    state = history.read_state(release)
    assert state is not None
    whole = History(
        time=state.built,
        months={},
        categories=state.categories,
        changes=(),
        total=state.total,
        state=state.state,
        changed=state.changed,
        old=state,
        names=state.names,
    )
    db = sqlite3.connect(path)
    db.executescript(ledger.SCHEMA)
    ledger._write_all(db, whole, release, indexes=ledger.INDEXES)
    db.commit()
    db.close()
    return path


@pytest.mark.parametrize("batch", [3, ledger._BATCH], ids=["in-batches-of-3", "default"])
@pytest.mark.parametrize("n", range(5))
def test_a_rebuilds_tables_equal_a_full_write(
    releases: list[Path], n: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, batch: int
) -> None:
    """A full write, which reads history.jsonl back a batch of lines at a time, gives the
    tables a rebuild brought up to date, and those of the first build (written from its
    changes in memory, without the window over them: ledger._OneBuild)."""
    monkeypatch.setattr(ledger, "_BATCH", batch)
    release = releases[n]
    path = _full_write(release, tmp_path / FILE)
    assert _tables(release / FILE) == _tables(path)
    assert len(_tables(path)["change"]) > 2 * 3  # several batches of 3


@pytest.mark.parametrize("n", range(5))
def test_sitemap_files_are_the_documents(
    releases: list[Path], n: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The files a build wrote are the sitemap made from the history's files; so are the
    parts of a sitemap index (a limit of 10 URLs), a part of the previous release linked
    when its bytes are the same."""
    release = releases[n]
    _, slow = _views(release)
    concepts = sorted(c for c in slow.categories if slow.members(c))
    built = history.read_state(release).built  # type: ignore[union-attr]
    urls = sitemap.fixed(slow, IRIS, concepts, built, sitemap.PAGE_SIZE)
    urls += list(slow.live_newest())
    assert (release / "sitemap" / "sitemap.xml").read_bytes() == sitemap.urlset(urls)
    monkeypatch.setattr(sitemap, "MAX", 10)
    # Cut at 10: the release before's parts, this release's from them (parts of unchanged
    # months taken over), and this release's again from its own (every part linked).
    copies = [tmp_path / "before", tmp_path / "this", tmp_path / "again"]
    for k, (source, copy) in enumerate(
        zip([releases[max(0, n - 1)], release, release], copies, strict=True)
    ):
        shutil.copytree(source, copy, ignore=shutil.ignore_patterns("sitemap"))
        state = history.read_state(copy)
        assert state is not None
        own = sorted(c for c in history.Index(copy).categories if history.Index(copy).members(c))
        sitemap.write_release_sitemaps(copy, IRIS, state.built, own, copies[k - 1] if k else None)
    folder = copies[1] / "sitemap"
    parts = -(-len(urls) // 10)
    # Counted from the end: part 1 the oldest ten entries, the last part the rest of the list.
    cut = [urls[max(0, len(urls) - 10 * k) : len(urls) - 10 * (k - 1)] for k in range(1, parts)]
    cut.append(urls[: len(urls) - 10 * (parts - 1)])
    assert [u for part in reversed(cut) for u in part] == urls and all(
        len(c) == 10 for c in cut[:-1]
    )
    for k in range(parts):
        name = sitemap.part_name(k + 1)
        assert (folder / name).read_bytes() == sitemap.urlset(cut[k]), name
        again = copies[2] / "sitemap" / name
        assert again.stat().st_ino == (folder / name).stat().st_ino  # the same bytes: linked
        if n == 2:  # a rebuild that changed nothing: every part taken over as it was
            before = copies[0] / "sitemap" / name
            assert before.stat().st_ino == (folder / name).stat().st_ino
    assert not (folder / sitemap.part_name(parts + 1)).exists()
    changed = slow.changed or built
    assert (folder / "sitemap.xml").read_bytes() == sitemap.sitemap_index(IRIS, parts, changed)


@pytest.mark.parametrize("n", range(5))
def test_published_entries_by_place_are_their_ids_counted_off(releases: list[Path], n: int) -> None:
    """Where a build cuts its sitemaps (Ledger.live_at): the id at each place of the published
    entries, newest first, found by walking from the place before; deleted entries skipped."""
    view, _ = _views(releases[n])
    db = sqlite3.connect(releases[n] / FILE)
    ids = [
        int(r[0])
        for r in db.execute("SELECT id FROM record WHERE deleted IS NULL ORDER BY id DESC")
    ]
    deleted = db.execute("SELECT count(*) FROM record WHERE deleted IS NOT NULL").fetchone()
    db.close()
    assert view.live_count() == len(ids) > 0
    last = len(ids) - 1
    for places in ([], [0], list(range(len(ids))), [0, 0, 2, 2, last], [1, last], [last]):
        assert view.live_at(places) == [ids[p] for p in places], places
    with pytest.raises(IndexError):
        view.live_at([0, len(ids)])
    if n == 4:
        assert deleted[0] > 0  # the releases' history deletes entries by then


@pytest.mark.parametrize("n", [0, 4])
def test_library_pages_by_id_are_the_pages_counted_off(releases: list[Path], n: int) -> None:
    """graph/index.py finds a page of the library by the entries' ids: the same entries as
    counting the member rows off."""
    index = Index(releases[n] / FILE)
    db = sqlite3.connect(releases[n] / FILE)
    total = db.execute("SELECT count(*) FROM member WHERE list = ?", (IRIS.library,)).fetchone()
    for start, size in itertools.product(range(total[0] + 2), (1, 3, 10)):
        counted = db.execute(
            "SELECT iri FROM member WHERE list = ? ORDER BY iri DESC LIMIT ? OFFSET ?",
            (IRIS.library, size, start),
        ).fetchall()
        assert index.page(IRIS.library, start, size) == [r[0] for r in counted], (start, size)
    db.close()


@pytest.mark.parametrize(
    "line",
    [
        '{"seq": 1, "time": "t", "kind": "create", "iri": "i", "title": "a"}, '
        '{"seq": 2, "time": "t", "kind": "create", "iri": "j", "title": "b"}',
        '{"seq": 1, "time": "t", "kind": "create", "iri": "i"',
        '{"seq": 1, "time": "t", "kind": "create", "iri": "i"}',
    ],
    ids=["two-changes-on-a-line", "cut-short", "no-title"],
)
def test_a_damaged_history_line_is_refused(tmp_path: Path, line: str) -> None:
    """The history's changes are read a batch of lines at a time (one JSON array): a line
    that is not exactly one change is an error naming the file, not changes read wrongly."""
    path = tmp_path / "history.jsonl"
    good = '{"seq": 0, "time": "t", "kind": "create", "iri": "h", "title": "c"}'
    path.write_text(f"{good}\n{line}\n", encoding="utf-8")
    with pytest.raises(PublicationError, match="cannot read the history"):
        list(ledger._read_changes(path))


def test_a_rebuild_rewrites_only_the_records_that_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One description edited: the rebuild deletes and inserts that entry's record alone, not
    every record of its month (a month holds about 9,300 at 1M entries), and its tables are
    still those a full write of the same history gives."""
    src, out = tmp_path / "src", tmp_path / "out"
    build(write_seed(src), out, BuildOptions(base=BASE), now=TIMES[0])
    page = src / "library-safeguarding.txt"
    seed = page.read_text(encoding="utf-8")
    page.write_text(seed.replace(OLD_DESCRIPTION, NEW_DESCRIPTION), encoding="utf-8")
    deleted: list[str] = []
    inserted: list[str] = []
    delete, insert = ledger._delete_records, ledger._insert_records

    def spy_delete(
        db: sqlite3.Connection, records: list[tuple[object, ...]], *rest: object
    ) -> None:
        deleted.extend(str(r[1]) for r in records)
        delete(db, records, *rest)  # type: ignore[arg-type]

    def spy_insert(
        db: sqlite3.Connection, records: list[tuple[object, ...]], *rest: object
    ) -> None:
        inserted.extend(str(r[1]) for r in records)
        insert(db, records, *rest)  # type: ignore[arg-type]

    monkeypatch.setattr(ledger, "_delete_records", spy_delete)
    monkeypatch.setattr(ledger, "_insert_records", spy_insert)
    build([page], out, BuildOptions(base=BASE), now=TIMES[1])
    release = current_release(out)
    state = history.read_state(release)
    assert state is not None
    edited = [c.iri for c in history.read_changes(release) if c.kind == "update"]
    assert len(edited) == 1
    assert deleted == inserted == edited  # the month's other records kept as they were
    month = [i for i in state.month(history.month_of(edited[0])) if i != edited[0]]
    assert month  # the edited entry's month has others, which were not rewritten
    monkeypatch.undo()
    path = _full_write(release, tmp_path / FILE)
    assert _tables(release / FILE) == _tables(path)
