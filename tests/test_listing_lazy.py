"""One long listing page read without its descriptions (graph/listing.py read_page(lazy=True)):
the entries, places, warnings and errors of the page read whole, each description read back
from the file when asked for, the months' digests of source text that stand for their
records, and builds and rebuilds that publish the same bytes as builds that hold every
description."""

from __future__ import annotations

import os
import random
import shutil
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from live import PRUNING
from test_incremental import (
    BASE,
    NOW,
    OWN,
    STEPS,
    _edit,
    files_of,
    listing,
    reused,
    store_contents,
)
from test_listing_parity import SEED_TEXT, mutants, synthetic

from graph import listing as listing_module
from graph.convert import convert
from graph.errors import ListingError
from graph.iris import Iris
from graph.listing import (
    Page,
    ParseCache,
    descriptions,
    merge_pages,
    parse_listing,
    read_listings,
    read_page,
    read_text,
    with_descriptions,
)
from graph.publication import BuildOptions, build

SLAB = 4096  # small slabs: the page below is read in about fifty


@pytest.fixture
def small_slabs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("graph.listing.SLAB_BYTES", SLAB)


def outcome(read: object, path: Path) -> object:
    try:
        page = read(path)  # type: ignore[operator]
    except ListingError as exc:
        return ("error", str(exc))
    assert isinstance(page, Page)
    return ("page", repr(with_descriptions(page)))


def test_a_page_read_lazily_is_the_page_read_whole(tmp_path: Path, small_slabs: None) -> None:
    """Its entries hold no description but read back the same ones; places and warnings by
    repr; the mutants of the page give the same page or the same error."""
    path = tmp_path / "page.txt"
    base = synthetic(400, seed=5)
    path.write_text(base, encoding="utf-8")
    lazy = read_page(path, lazy=True)
    assert all(e.body is not None and e.description == "" for e in lazy.entries)
    whole = parse_listing(read_text(path), str(path))
    assert any(e.description for e in whole.entries)
    assert descriptions(lazy.entries) == [e.description for e in whole.entries]
    assert repr(with_descriptions(lazy)) == repr(whole)
    assert lazy.months and not whole.months
    texts = [base.replace("\n", "\r\n"), *mutants([base], 30, SEED_TEXT + 7)]
    for text in texts:
        path.write_bytes(text.encode("utf-8", "surrogatepass"))
        expected = outcome(lambda p: parse_listing(read_text(p), str(p)), path)
        assert outcome(lambda p: read_page(p, lazy=True), path) == expected, text[:2000]


def test_month_digests_change_with_their_blocks_only(tmp_path: Path, small_slabs: None) -> None:
    """One description changed changes the digest of its month only; other months' entries
    moved about (their order within a month kept) and lines added above change none."""
    path = tmp_path / "page.txt"
    lines = synthetic(400, seed=5).split("\n")
    path.write_text("\n".join(lines), encoding="utf-8")
    before = read_page(path, lazy=True)
    months = dict(before.months)
    assert sorted(months) == sorted({f"{e.created:%Y-%m}" for e in before.entries})
    # Blank lines and chrome above the first entry: every line number moves, no digest does.
    path.write_text("\n".join([lines[0], "", "No Comments", "", *lines[1:]]), encoding="utf-8")
    moved = read_page(path, lazy=True)
    assert moved.months == months
    assert [p.line for e in moved.entries for p in e.places] == [
        p.line + 3 for e in before.entries for p in e.places
    ]
    # One description edited.
    path.write_text("\n".join(lines), encoding="utf-8")
    entry = read_page(path, lazy=True).entries[123]
    (text,) = descriptions([entry])
    at = entry.places[0].line - 1 + 4  # its first description line
    edited = [*lines[:at], lines[at] + " Edited.", *lines[at + 1 :]]
    path.write_text("\n".join(edited), encoding="utf-8")
    after = read_page(path, lazy=True)
    changed = {m for m in months if after.months[m] != months[m]}
    assert changed == {f"{entry.created:%Y-%m}"}
    assert descriptions([after.entries[123]]) == [text + " Edited."]


def test_a_listing_changed_after_it_was_read_is_refused(tmp_path: Path, small_slabs: None) -> None:
    path = tmp_path / "page.txt"
    text = synthetic(400, seed=5)
    path.write_text(text, encoding="utf-8")
    page = read_page(path, lazy=True)
    path.write_text(text.replace("a", "b"), encoding="utf-8")
    os.utime(path, ns=(0, 0))  # a size or time that differs is the sign: here both
    with pytest.raises(ListingError) as caught:
        descriptions(page.entries[:3])
    assert str(caught.value) == (
        f"{path}:0: changed while the build was reading it; expected it to stay as it is "
        "until the build ends: build again"
    )


def test_convert_of_a_lazy_page_gives_the_same_graph(tmp_path: Path, small_slabs: None) -> None:
    path = tmp_path / "page.txt"
    path.write_text(synthetic(400, seed=5), encoding="utf-8")
    iris = Iris.from_base(BASE)
    pages, entries, _ = read_listings([path], lazy=True)
    assert all(e.body is not None for e in entries)
    lazy = convert(entries, iris, "Library", sources=pages[0].months)
    whole = parse_listing(read_text(path), str(path))
    eager = convert(listing_module.merge_pages([whole])[0], iris, "Library")
    assert lazy.ntriples == eager.ntriples
    assert lazy.statistics == eager.statistics
    assert [e.description for e in lazy.entries.values()] == [
        e.description for e in eager.entries.values()
    ]
    # The digests stand for the records: another kind of digest, the same months.
    assert [m.name for m in lazy.months] == [m.name for m in eager.months]
    assert all(a.digest != b.digest for a, b in zip(lazy.months, eager.months, strict=True))


def test_lazy_rebuilds_publish_what_full_builds_holding_descriptions_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """tests/test_incremental.py's steps, the rebuilds reading the listing in slabs without
    descriptions, the full builds reading it whole: the same bytes and store, and each
    rebuild reuses months."""
    generated = synthetic(400, seed=9)
    source, out = tmp_path / "library.txt", tmp_path / "out"
    options = BuildOptions(base=BASE)
    own = OWN
    source.write_text(listing(generated, own), encoding="utf-8")
    monkeypatch.setattr("graph.listing.SLAB_BYTES", SLAB)
    build([source], out, options, now=NOW)
    rng = random.Random(3)
    for n, step in enumerate(STEPS, start=1):
        own = _edit(step, own)
        source.write_text(listing(generated, own), encoding="utf-8")
        now = NOW + timedelta(hours=n)
        full_out = tmp_path / f"full-{n}"
        shutil.copytree(out, full_out, symlinks=True, ignore=PRUNING)
        monkeypatch.setattr("graph.listing.SLAB_BYTES", 1 << 40)
        full = build([source], full_out, options, now=now, reuse=False)
        monkeypatch.setattr("graph.listing.SLAB_BYTES", rng.choice([SLAB, 3 * SLAB]))
        again = build([source], out, options, now=now)
        assert full.release is not None and again.release is not None
        assert files_of(full.release) == files_of(again.release), step
        assert store_contents(again.release)[0] == store_contents(full.release)[0], step
        assert all(reused(again.release).values()), step
        shutil.rmtree(full_out)


def test_an_entry_listed_twice_on_a_lazy_page_merges_as_on_a_whole_one(
    tmp_path: Path, small_slabs: None
) -> None:
    """Two listings of one entry (same title and time) on one long page: merged with their
    descriptions compared, as when the page is read whole; a different description is the
    same error."""
    path = tmp_path / "page.txt"
    base = synthetic(400, seed=5)
    twice = "Twice listed\n\nAdded: 01/02/2020 at 9:00 am Category: {cats}\n\n{text}\n"
    for second in (
        twice.format(cats="Safeguarding", text="Same text."),
        twice.format(cats="Education", text="Other text."),
    ):
        first = twice.format(cats="Drugs", text="Same text.")
        lines = base.split("\n")
        titles = [e.places[0].line - 1 for e in parse_listing(base, "x.txt").entries]
        # One listing above the first entry, the other above the 200th, slabs apart.
        a, b = titles[0], titles[200]
        text = "\n".join([*lines[:a], first, *lines[a:b], second, *lines[b:]])
        path.write_text(text, encoding="utf-8")
        assert all(e.body is not None for e in read_page(path, lazy=True).entries)

        def merged(lazy: bool) -> object:
            try:
                if lazy:
                    _, entries, warnings = read_listings([path], lazy=True)
                else:
                    whole = parse_listing(read_text(path), str(path))
                    entries, warnings = listing_module.merge_pages([whole])
            except ListingError as exc:
                return ("error", str(exc))
            return ("entries", repr(entries), warnings)

        expected = merged(lazy=False)
        assert merged(lazy=True) == expected
    assert expected[0] == "error"  # the second text differs


SEGMENT = 1024  # small segments: the page below is about two hundred


@pytest.fixture
def small_segments(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("graph.listing.SLAB_BYTES", SLAB)
    monkeypatch.setattr("graph.listing.SEGMENT_BYTES", SEGMENT)


def _edits(base: str, rng: random.Random) -> Iterator[str]:
    """Pages a maintainer makes of base: a description edited, an entry added or removed,
    lines added above the entries, a title changed, several of these at once."""
    lines = base.split("\n")
    cuts = [e.places[0].line - 1 for e in parse_listing(base, "x.txt").entries]
    entries = ["\n".join(lines[a:b]) for a, b in zip([0, *cuts], [*cuts, len(lines)], strict=True)]
    new = "Added title {}\n\nAdded: 01/02/2020 at 9:00 am Category: Drugs\n\nNew.\n"
    yield base
    for _ in range(12):
        parts = list(entries)
        for _ in range(rng.choice([1, 1, 2, 5])):
            at = rng.randrange(1, len(parts))
            kind = rng.randrange(4)
            if kind == 0:
                parts[at] += " Edited."
            elif kind == 1:
                parts.insert(at, new.format(rng.random()))
            elif kind == 2:
                del parts[at]
            else:
                parts[at] = "Renamed " + parts[at]
        yield "\n".join(parts)
    yield "\n".join([entries[0], "No Comments", "", *entries[1:]])


def test_a_rebuild_reads_from_the_cache_the_page_a_full_reading_gives(
    tmp_path: Path, small_segments: None
) -> None:
    """Each reading with the cache of the one before (the segments whose bytes are the same
    taken from it) gives the page, places, bodies, warnings and months' digests a reading
    without a cache gives, after edits anywhere, and the whole page's reading's errors."""
    path, cache = tmp_path / "page.txt", ParseCache(tmp_path / "parsed")
    # A UK clock change (a warning) in an entry no edit touches.
    base = synthetic(400, seed=5) + (
        "\n\n\nOn the night the clocks went back\n\n"
        "Added: 29/10/2023 at 1:30 am Category: Drugs\n\nAn hour twice.\n"
    )
    rng = random.Random(11)
    texts = [*_edits(base, rng), *mutants([base], 10, SEED_TEXT + 9), base]
    for text in texts:
        path.write_bytes(text.encode("utf-8", "surrogatepass"))
        try:
            expected: object = read_page(path, lazy=True)
        except ListingError as exc:
            expected = str(exc)
        try:
            got: object = read_page(path, lazy=True, cache=cache)
        except ListingError as exc:
            got = str(exc)
        if isinstance(expected, Page):
            assert isinstance(got, Page)
            assert repr(got) == repr(expected), text[:200]
            assert got.months == expected.months
            assert [e.body[1:] for e in got.entries if e.body] == [
                e.body[1:] for e in expected.entries if e.body
            ]
            assert descriptions(got.entries) == descriptions(expected.entries)
            # The times the merge sorts by, as the reading had them (graph/listing.py
            # _sort_distinct): each entry's, from the cache or from the scan.
            for page in (got, expected):
                assert page.stamps is not None
                assert list(page.stamps) == [e.created.timestamp() for e in page.entries]
            assert merge_pages([got]) == merge_pages([replace(got, stamps=None)])
        else:
            assert got == expected
    final = read_page(path, lazy=True, cache=cache)
    assert any("happens twice" in w for w in final.warnings)


def test_a_one_change_rebuild_scans_one_segment(tmp_path: Path, small_segments: None) -> None:
    """One description edited: the segments before and after it come from the cache; the
    month of the entry is the only one whose digest changes."""
    path, cache = tmp_path / "page.txt", ParseCache(tmp_path / "parsed")
    base = synthetic(400, seed=5)
    path.write_text(base, encoding="utf-8")
    before = read_page(path, lazy=True, cache=cache)
    names = set((tmp_path / "parsed").iterdir())
    entry = before.entries[200]
    lines = base.split("\n")
    at = entry.places[0].line - 1 + 4
    path.write_text("\n".join([*lines[:at], lines[at] + " Edited.", *lines[at + 1 :]]))
    after = read_page(path, lazy=True, cache=cache)
    kept = set((tmp_path / "parsed").iterdir())
    assert len(names - kept) == 1 and len(kept - names) == 1  # one segment read again
    changed = {m for m in before.months if after.months[m] != before.months[m]}
    assert changed == {f"{entry.created:%Y-%m}"}


def test_a_page_read_by_segments_shares_one_tuple_per_list_of_categories(
    tmp_path: Path, small_segments: None
) -> None:
    """Read by many segments (scanned, then from the cache), the page's entries with the same
    categories share one tuple of them, and a label is one string wherever it appears: a
    million entries held 588,000 tuples and 1.8 million strings for 793 lists of 12 labels."""
    path, cache = tmp_path / "page.txt", ParseCache(tmp_path / "parsed")
    path.write_text(synthetic(400, seed=5), encoding="utf-8")
    for _ in range(2):  # scanned, then taken from the cache
        page = read_page(path, lazy=True, cache=cache)
        assert len(list((tmp_path / "parsed").iterdir())) > 10  # segments, and their table
        lists = {e.categories for e in page.entries}
        assert len({id(e.categories) for e in page.entries}) == len(lists) < len(page.entries)
        labels = {c for e in page.entries for c in e.categories}
        assert len({id(c) for e in page.entries for c in e.categories}) == len(labels)
        assert page == read_page(path, lazy=True)  # what a reading without a cache gives
