"""The history a build keeps: changes entry by entry, dcterms:modified in the data, tombstones."""

from __future__ import annotations

import json
import shutil
import tracemalloc
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import rdflib
from dumpfiles import read_dump
from harvest_data import (
    CHANGED_TITLE,
    NEW_DESCRIPTION,
    NEW_TITLES,
    OLD_DESCRIPTION,
    REMOVED_TITLE,
    write_changed,
    write_seed,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from live import SEED
from pyoxigraph import Literal, NamedNode, Triple
from rdflib.namespace import DCTERMS

from graph import history, parts, shacl
from graph.errors import EntryGone, ListingError
from graph.history import HISTORY
from graph.iris import Iris
from graph.publication import BuildOptions, build, current_release

BASE = "http://example.org/lib/"
T1 = datetime(2026, 3, 1, 9, 0, 0, tzinfo=UTC)
T2 = datetime(2026, 3, 8, 9, 0, 0, tzinfo=UTC)
T3 = datetime(2026, 3, 15, 9, 0, 0, tzinfo=UTC)
T4 = datetime(2026, 3, 22, 9, 0, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Snapshot:
    """What one build left in its release (copied: later builds prune old releases)."""

    path: Path
    changes: list[history.Change]
    state: history.State

    def titled(self, title: str) -> tuple[str, history.EntryState]:
        return next((i, s) for i, s in self.state.entries.items() if s.title == title)

    def graph(self) -> rdflib.Graph:
        g = rdflib.Graph()
        g.parse(data=read_dump(self.path, "library.nt"), format="nt")
        return g


def _build(sources: list[Path], out: Path, now: datetime, keep: Path) -> Snapshot:
    build(sources, out, BuildOptions(base=BASE), now=now)
    release = current_release(out)
    shutil.copytree(release, keep, ignore=shutil.ignore_patterns("store"))
    state = history.read_state(keep)
    assert state is not None
    return Snapshot(keep, history.read_changes(keep), state)


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Snapshot]:
    """Seed (T1); new page + changed description + removed entry (T2); same again (T3);
    the removed entry back (T4)."""
    root = tmp_path_factory.mktemp("history")
    out, src = root / "out", root / "src"
    snaps = {"first": _build(write_seed(src), out, T1, root / "1")}
    changed = write_changed(src)
    snaps["changed"] = _build(changed, out, T2, root / "2")
    snaps["same"] = _build(changed, out, T3, root / "3")
    # The removed entry comes back: the changed seed page with it, and the new page.
    (src / "library-safeguarding.txt").write_text(
        SEED.read_text(encoding="utf-8").replace(OLD_DESCRIPTION, NEW_DESCRIPTION),
        encoding="utf-8",
    )
    snaps["back"] = _build(sorted(src.glob("*.txt")), out, T4, root / "4")
    return snaps


def test_first_build_creates_every_entry(builds: dict[str, Snapshot]) -> None:
    first = builds["first"]
    assert len(first.changes) == 35
    assert {c.kind for c in first.changes} == {"create"}
    assert [c.seq for c in first.changes] == list(range(1, 36))
    assert {c.time for c in first.changes} == {"2026-03-01T09:00:00Z"}
    assert len(first.state.entries) == 35
    assert all(
        s.published == s.datestamp == "2026-03-01T09:00:00Z" for s in first.state.entries.values()
    )
    assert not any(first.graph().triples((None, DCTERMS.modified, None)))


def test_rebuild_records_exactly_the_changes(builds: dict[str, Snapshot]) -> None:
    first, changed = builds["first"], builds["changed"]
    assert changed.changes[:35] == first.changes  # carried forward unchanged
    new = changed.changes[35:]
    got = sorted((c.kind, c.title, c.time) for c in new)
    when = "2026-03-08T09:00:00Z"
    assert got == sorted(
        [
            ("create", NEW_TITLES[0], when),
            ("create", NEW_TITLES[1], when),
            ("update", CHANGED_TITLE, when),
            ("delete", REMOVED_TITLE, when),
        ]
    )
    assert [c.seq for c in new] == [36, 37, 38, 39]
    removed_iri, removed = changed.titled(REMOVED_TITLE)
    assert removed.deleted == when and removed.datestamp == when
    assert removed.published == "2026-03-01T09:00:00Z"
    assert removed_iri not in history.Index(changed.path).live


def test_updated_entry_keeps_created_and_gets_modified_in_the_data(
    builds: dict[str, Snapshot],
) -> None:
    iri, state = builds["changed"].titled(CHANGED_TITLE)
    _, before = builds["first"].titled(CHANGED_TITLE)
    assert state.created == before.created
    assert state.modified == "2026-03-08T09:00:00Z"
    g = builds["changed"].graph()
    entry = rdflib.URIRef(iri)
    assert [o.toPython() for o in g.objects(entry, DCTERMS.modified)] == [T2]
    assert [str(o) for o in g.objects(entry, DCTERMS.created)] == [before.created]
    modified = {str(s) for s in g.subjects(DCTERMS.modified, None)}
    assert modified == {iri}, "only the updated entry has dcterms:modified"
    turtle = read_dump(builds["changed"].path, "library.ttl").decode("utf-8")
    assert 'dcterms:modified "2026-03-08T09:00:00Z"^^xsd:dateTime' in turtle


def test_unchanged_rebuild_adds_nothing(builds: dict[str, Snapshot]) -> None:
    changed, same = builds["changed"], builds["same"]
    assert same.changes == changed.changes
    assert same.state.state == changed.state.state
    assert same.state.changed == "2026-03-08T09:00:00Z"
    assert same.state.entries == changed.state.entries
    iri, _ = same.titled(CHANGED_TITLE)
    g = same.graph()
    modified = [o.toPython() for o in g.objects(rdflib.URIRef(iri), DCTERMS.modified)]
    assert modified == [T2], "dcterms:modified is carried by later releases"


def test_entry_that_comes_back_is_created_again(builds: dict[str, Snapshot]) -> None:
    back = builds["back"]
    new = back.changes[39:]
    assert [(c.kind, c.title) for c in new] == [("create", REMOVED_TITLE)]
    iri, state = back.titled(REMOVED_TITLE)
    assert state.deleted is None
    assert state.published == "2026-03-01T09:00:00Z"
    assert state.datestamp == "2026-03-22T09:00:00Z"
    assert history.Index(back.path).tombstone(iri) is None
    assert history.Index(builds["same"].path).tombstone(iri) is not None


def test_tombstone_raises_entry_gone(builds: dict[str, Snapshot]) -> None:
    snap = builds["same"]
    iri, _ = snap.titled(REMOVED_TITLE)
    with pytest.raises(EntryGone) as caught:
        history.raise_if_deleted(snap.path, iri)
    assert caught.value.deleted == "2026-03-08T09:00:00Z"
    assert caught.value.title == REMOVED_TITLE
    history.raise_if_deleted(snap.path, BASE + "entry/never-published")  # unknown: no error


def test_failed_build_leaves_history_untouched(builds: dict[str, Snapshot], tmp_path: Path) -> None:
    out, src = tmp_path / "out", tmp_path / "src"
    build(write_seed(src), out, BuildOptions(base=BASE), now=T1)
    release = current_release(out)
    before = {p.name: parts.read_bytes(p) for p in (release / HISTORY, release / "entries.json")}
    bad = write_changed(src)
    bad[0].write_text(
        bad[0].read_text(encoding="utf-8").replace("Added: 17/08/2020", "Added: 31/02/2020")
    )
    with pytest.raises(ListingError):
        build(bad, out, BuildOptions(base=BASE), now=T2)
    assert current_release(out) == release
    after = {p.name: parts.read_bytes(p) for p in (release / HISTORY, release / "entries.json")}
    assert after == before
    assert not list((out / "releases").glob(".building-*"))


def test_published_data_conforms_and_the_shape_allows_one_modified(
    builds: dict[str, Snapshot],
) -> None:
    g = builds["changed"].graph()
    report = shacl.validate(g, engine="pyshacl")
    assert report.conforms, shacl.render(report.violations)
    iri, _ = builds["changed"].titled(CHANGED_TITLE)
    g.add(
        (
            rdflib.URIRef(iri),
            DCTERMS.modified,
            rdflib.Literal("2026-03-09T09:00:00Z", datatype=rdflib.XSD.dateTime),
        )
    )
    report = shacl.validate(g, engine="pyshacl")
    assert not report.conforms
    assert [(v.focus, v.message) for v in report.violations] == [
        (iri, "an entry has at most one modified xsd:dateTime with a time zone")
    ]


def test_fingerprint_ignores_modified_and_sees_any_other_change() -> None:
    iri = BASE + "entry/x"
    node = NamedNode(iri)
    title = Triple(node, NamedNode(str(DCTERMS.title)), Literal("A", language="en"))
    modified = Triple(node, NamedNode(str(DCTERMS.modified)), Literal("2026-01-01T00:00:00Z"))
    other = Triple(node, NamedNode(str(DCTERMS.title)), Literal("B", language="en"))
    base = history.fingerprints([title], [iri])
    assert history.fingerprints([modified, title], [iri]) == base
    assert history.fingerprints([other], [iri]) != base


def test_lastmod_for_sitemaps(builds: dict[str, Snapshot]) -> None:
    snap = builds["same"]
    lastmod = history.lastmod(snap.path)
    iri, _ = snap.titled(CHANGED_TITLE)
    removed, _ = snap.titled(REMOVED_TITLE)
    assert lastmod[iri] == "2026-03-08T09:00:00Z"
    assert removed not in lastmod
    unchanged = next(
        i
        for i, s in snap.state.entries.items()
        if s.title not in (CHANGED_TITLE, REMOVED_TITLE, *NEW_TITLES)
    )
    assert lastmod[unchanged] == "2026-03-01T09:00:00Z"
    youth = Iris(BASE).concept("Youth Justice")
    assert lastmod[youth] == "2026-03-08T09:00:00Z"  # new entries in it
    assert lastmod[""] == "2026-03-08T09:00:00Z"


def test_history_files_are_json_lines_and_json(builds: dict[str, Snapshot]) -> None:
    whole = parts.read_bytes(builds["changed"].path / HISTORY)
    lines = whole.decode("utf-8").splitlines()
    assert len(lines) == 39
    # As parts (graph/parts.py): the first build's, linked into every later release, then
    # each build's own changes.
    listed = parts.read_parts(builds["changed"].path / HISTORY)
    first = parts.read_parts(builds["first"].path / HISTORY)
    assert listed[: len(first)] == first and len(listed) == len(first) + 1
    record = json.loads(lines[-1])
    assert set(record) == {"seq", "time", "kind", "iri", "title"}
    release = builds["changed"].path
    doc = json.loads((release / "entries.json").read_text(encoding="utf-8"))
    assert doc["version"] == 3 and doc["changes"] == 39
    assert doc["fields"][:3] == ["fingerprint", "title", "categories"]
    assert doc["months"] == sorted(doc["months"]) and doc["months"]
    rows = {}
    for month in doc["months"]:
        part = json.loads((release / "entries" / f"{month}.json").read_text(encoding="utf-8"))
        assert list(part["entries"]) == sorted(part["entries"])
        assert all(iri.rsplit("/", 1)[1].startswith(month) for iri in part["entries"])
        rows.update(part["entries"])
    assert rows.keys() == builds["changed"].state.entries.keys()
    assert all(len(row) == len(doc["fields"]) for row in rows.values())


def test_a_month_no_entry_of_which_changed_is_the_previous_releases_file(tmp_path: Path) -> None:
    """A rebuild writes only the months it changed; the others are hard links to the files
    of the release before (releases never change), so the history costs what changed."""
    out, src = tmp_path / "out", tmp_path / "src"
    build(write_seed(src), out, BuildOptions(base=BASE), now=T1)
    first = current_release(out)
    build(write_changed(src), out, BuildOptions(base=BASE), now=T2)
    changed = current_release(out)
    months = json.loads((changed / "entries.json").read_text(encoding="utf-8"))["months"]
    touched = {
        history.month_of(c.iri)
        for c in history.read_changes(changed)
        if c.time == "2026-03-08T09:00:00Z"
    }
    assert touched and set(months) - touched
    for month in months:
        old, new = first / "entries" / f"{month}.json", changed / "entries" / f"{month}.json"
        shared = old.exists() and old.stat().st_ino == new.stat().st_ino
        assert shared == (month not in touched), month
    assert history.read_state(changed).entries == history.Index(changed).entries  # type: ignore[union-attr]


def test_a_version_2_history_is_read_and_carried_forward(
    builds: dict[str, Snapshot], tmp_path: Path
) -> None:
    """A publication made before the history was kept by month is read as it was."""
    release = tmp_path / "v2"
    shutil.copytree(builds["changed"].path, release, symlinks=True)
    doc = json.loads((release / "entries.json").read_text(encoding="utf-8"))
    state = history.read_state(builds["changed"].path)
    assert state is not None
    doc["version"] = 2
    doc["entries"] = {iri: list(row) for iri, row in state.entries.items()}
    del doc["months"]
    (release / "entries.json").write_text(json.dumps(doc), encoding="utf-8")
    shutil.rmtree(release / "entries")
    old = history.read_state(release)
    assert old is not None and old.entries == state.entries
    assert history.Index(release).live == history.Index(builds["changed"].path).live


def test_datestamps_are_when_a_build_went_live(builds: dict[str, Snapshot]) -> None:
    """The next build records when the previous release went live (the swap of `current`);
    OAI-PMH datestamps use it, so no harvest between a build's start and its swap misses it."""
    first, changed = builds["first"], builds["changed"]
    assert first.state.visible == {}
    live = changed.state.visible["2026-03-01T09:00:00Z"]
    assert live > "2026-03-01T09:00:00Z"  # the swap happened now, not at the build's stamp
    index = history.Index(changed.path)  # a copy: `current` does not point at it
    unchanged = next(
        s
        for s in changed.state.entries.values()
        if s.title not in (CHANGED_TITLE, REMOVED_TITLE, *NEW_TITLES)
    )
    assert index.datestamp(unchanged) == live
    _, updated = changed.titled(CHANGED_TITLE)
    assert index.datestamp(updated) == "2026-03-08T09:00:00Z"


def test_went_live_reads_the_current_symlink(tmp_path: Path) -> None:
    out = tmp_path / "out"
    started = datetime.now(UTC).replace(microsecond=0)
    build(write_seed(tmp_path / "src"), out, BuildOptions(base=BASE), now=T1)
    release = current_release(out)
    live = history.went_live(release)
    assert live is not None
    assert history.parse_time(live) >= started + timedelta(seconds=history.VISIBILITY_MARGIN)
    assert (
        history.Index(release).datestamp(next(iter(history.Index(release).entries.values())))
        == live
    )
    assert history.went_live(tmp_path) is None


def test_an_incremental_build_fingerprints_only_what_it_rebuilt(
    builds: dict[str, Snapshot], tmp_path: Path
) -> None:
    """compute(changed=...) keeps the previous fingerprints of every other entry and compares
    only the months of the entries it is given."""
    from graph.convert import convert
    from graph.listing import read_listings

    src = tmp_path / "src"
    _, entries, _ = read_listings(write_changed(src))
    converted = convert(entries, Iris(BASE), "Library")
    first = builds["first"].path
    iri, _ = builds["changed"].titled(CHANGED_TITLE)
    new_iris = [i for i, s in builds["changed"].state.entries.items() if s.title in NEW_TITLES]
    removed, _ = builds["changed"].titled(REMOVED_TITLE)
    # What convert renders again: every entry of a month with a changed, new or removed one.
    months = {history.month_of(i) for i in (iri, removed, *new_iris)}
    rebuilt = [i for i in converted.entries if history.month_of(i) in months]
    prints = history.fingerprints(converted.triples, rebuilt)
    fast = history.compute(first, converted, T2, prints=prints, changed=rebuilt)
    full = history.compute(first, converted, T2)
    assert fast.changes == full.changes
    assert fast.entries == full.entries
    # Wrongly told nothing changed, it keeps the old fingerprint: the caller's contract.
    blind = history.compute(first, converted, T2, prints={}, changed=new_iris)
    assert [c.kind for c in blind.changes if c.iri == iri] == []


def test_the_dataset_is_issued_at_the_first_build_and_modified_at_the_last_change(
    builds: dict[str, Snapshot],
) -> None:
    """VoID/DCAT dcterms:issued is the first publication, dcterms:modified the last build
    that changed the data: a rebuild of the same data describes the dataset as it was."""
    from rdflib.namespace import XSD

    def dates(snap: Snapshot) -> tuple[datetime, datetime]:
        g = rdflib.Graph().parse(snap.path / "void.ttl", format="turtle")
        dataset = rdflib.URIRef(BASE + "dataset")
        issued, modified = g.value(dataset, DCTERMS.issued), g.value(dataset, DCTERMS.modified)
        assert isinstance(issued, rdflib.Literal) and issued.datatype == XSD.dateTime
        assert isinstance(modified, rdflib.Literal)
        return issued.toPython(), modified.toPython()

    assert dates(builds["first"]) == (T1, T1)
    assert dates(builds["changed"]) == (T1, T2)
    assert dates(builds["same"]) == (T1, T2)
    assert (builds["same"].path / "void.ttl").read_bytes() == (
        builds["changed"].path / "void.ttl"
    ).read_bytes()


def _changes_of(release: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in parts.read_bytes(release / HISTORY).splitlines()]


def test_a_plain_history_of_an_older_release_is_carried_forward(tmp_path: Path) -> None:
    # Releases before the history was made of parts have a plain history.jsonl.
    out, src = tmp_path / "out", tmp_path / "src"
    build(write_seed(src), out, BuildOptions(base=BASE), now=T1)
    old = current_release(out)
    whole = parts.read_bytes(old / HISTORY)
    parts.list_path(old / HISTORY).unlink()
    (old / HISTORY).write_bytes(whole)
    build(write_changed(src), out, BuildOptions(base=BASE), now=T2)
    new = current_release(out)
    assert new != old and parts.is_parts(new / HISTORY)
    changes = _changes_of(new)
    assert parts.read_bytes(new / HISTORY).startswith(whole)
    assert [c["seq"] for c in changes] == list(range(1, len(changes) + 1))
    assert len(changes) > whole.count(b"\n")


def test_a_history_of_many_parts_is_written_again_as_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(history, "HISTORY_PARTS", 2)
    out, src = tmp_path / "out", tmp_path / "src"
    build(write_seed(src), out, BuildOptions(base=BASE), now=T1)
    build(write_changed(src), out, BuildOptions(base=BASE), now=T2)
    second = current_release(out)
    assert len(parts.read_parts(second / HISTORY)) == 2  # the first build's part, linked
    before = parts.read_bytes(second / HISTORY)
    for page in src.glob("*.txt"):
        page.unlink()
    build(write_seed(src), out, BuildOptions(base=BASE), now=T3)  # back to the seed: changes
    third = current_release(out)
    listed = parts.read_parts(third / HISTORY)
    assert len(listed) == 2 and listed[0].size == len(before)  # the two as one, then its own
    changes = _changes_of(third)
    assert parts.read_bytes(third / HISTORY).startswith(before)
    assert [c["seq"] for c in changes] == list(range(1, len(changes) + 1))
    assert len(changes) > before.count(b"\n")


def test_a_long_history_is_written_in_parts_that_read_as_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A full build at 1M entries has 241 MB of changes: written a few MB at a time, never
    # held whole. The feed and the change list read the parts as one file.
    out, src = tmp_path / "out", tmp_path / "src"
    build(write_seed(src), out, BuildOptions(base=BASE), now=T1)
    whole = parts.read_bytes(current_release(out) / HISTORY)
    monkeypatch.setattr(history, "CHANGES_BYTES", 1000)
    build(write_seed(src), tmp_path / "split", BuildOptions(base=BASE), now=T1)
    release = current_release(tmp_path / "split")
    listed = parts.read_parts(release / HISTORY)
    assert len(listed) > 1
    assert all(p.size >= 1000 for p in listed[:-1]) and all(p.size < 2000 for p in listed)
    assert parts.read_bytes(release / HISTORY) == whole
    changes = _changes_of(release)
    assert [c["seq"] for c in changes] == list(range(1, len(changes) + 1))


def test_decisions_hold_one_month_of_the_previous_states_at_a_time(tmp_path: Path) -> None:
    """convert asks for each entry's dcterms:modified month by month: the decisions keep the
    previous states of the month asked for, not of every month asked for before (a rebuild
    that renders every month held the whole library's states: 800 MB at 1M entries)."""
    months = [f"20{y:02d}-{m:02d}" for y in range(10, 13) for m in range(1, 13)]
    source = tmp_path / "library.txt"
    blocks = [
        f"Entry {n} of {name}\n\nAdded: 01/{name[5:]}/{name[:4]} at 9:{n:02d} am "
        f"Category: Safeguarding\n\n{'A long description. ' * 40}{n}\n"
        for name in months
        for n in range(25)
    ]
    source.write_text("Library – Months\n\n" + "\n".join(blocks), encoding="utf-8")
    out = tmp_path / "out"
    build([source], out, BuildOptions(base=BASE), now=T1)
    decisions = history.decide(current_release(out), datetime(2025, 6, 1, tzinfo=UTC))
    assert decisions.old is not None and len(decisions.old.names) == len(months)
    expected = {
        iri: (state.fingerprint, state.modified)
        for name in decisions.old.names
        for iri, state in decisions.old.peek(name).items()
    }
    tracemalloc.start()
    try:
        held = decisions.old.peek(decisions.old.names[0])
        one, _ = tracemalloc.get_traced_memory()  # what a month of states takes
        del held
    finally:
        tracemalloc.stop()
    tracemalloc.start()
    try:
        for iri, (fingerprint, modified) in expected.items():  # unchanged: kept as it was
            assert decisions.modified_of(iri, fingerprint) == modified
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert decisions.modified_of(next(iter(expected)), "changed") == decisions.time
    assert peak < 4 * one, (peak, one)  # a month or two of states, not 36


@settings(max_examples=300, deadline=None)
@given(
    st.integers(min_value=1, max_value=10**12),
    st.text(max_size=30),
    st.sampled_from(["create", "update", "delete"]),
    st.text(max_size=60),
    st.text(st.characters(codec="utf-8"), max_size=60),
)
def test_a_change_line_is_the_json_object_readers_parse(
    seq: int, time: str, kind: history.Kind, iri: str, title: str
) -> None:
    """history.jsonl's lines, written field by field: the bytes json.dumps writes (the
    format of every release so far), read back as the change."""
    change = history.Change(seq, time, kind, iri, title)
    line = history.change_line(change)
    assert line == json.dumps(change._asdict(), ensure_ascii=False)
    assert json.loads(line) == change._asdict()
