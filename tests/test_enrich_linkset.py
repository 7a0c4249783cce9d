"""graph/enrich/linkset.py: the related entries' linkset as files of parts by month. A rebuild
that knows which entries' links changed writes their months' parts only and hard-links the
others; whichever way it is written, the same links give the same bytes (N-Triples and gzip)
as a full write, and a store copied from the previous release gets exactly the lines that
differ. Reads only SQLite: runs without the [enrich] extra."""

from __future__ import annotations

import gzip
import hashlib
import sqlite3
from pathlib import Path

import pytest
from dumpfiles import read_dump

from graph import parts
from graph.enrich.linkset import NAME, Written, linkset_ntriples, store_links, write_linkset
from graph.iris import Iris

IRIS = Iris.from_base("http://example.org/")
Links = dict[str, list[tuple[str, float]]]


def entry(month: str, n: int) -> str:
    return f"{IRIS.entry_prefix}2019-{month}-01-{1000 + n}-entry-{n}"


def library() -> Links:
    """Twelve entries in four months, each linked to two others."""
    iris = [entry(f"{m:02d}", n) for m in range(1, 5) for n in range(m * 10, m * 10 + 3)]
    return {
        iri: [(iris[(i + 1) % len(iris)], 0.9), (iris[(i + 5) % len(iris)], 0.7)]
        for i, iri in enumerate(iris)
    }


def release(folder: Path, links: Links) -> Path:
    """A folder with an enrich.sqlite holding links (its related table, as related.py
    writes it)."""
    folder.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(folder / "enrich.sqlite") as db:
        db.execute(
            "CREATE TABLE related (iri TEXT NOT NULL, rank INTEGER NOT NULL, target TEXT NOT NULL,"
            " dot INTEGER NOT NULL, score REAL NOT NULL, title TEXT NOT NULL,"
            " PRIMARY KEY (iri, rank)) WITHOUT ROWID"
        )
        db.executemany(
            "INSERT INTO related VALUES (?, ?, ?, ?, ?, '')",
            [
                (iri, rank, target, int(score * 127 * 127), score)
                for iri, targets in links.items()
                for rank, (target, score) in enumerate(targets, start=1)
            ],
        )
    return folder


def whole(folder: Path) -> tuple[bytes, bytes]:
    """The linkset's N-Triples and .gz, whole."""
    return read_dump(folder, NAME + ".nt"), read_dump(folder, NAME + ".nt.gz")


def inodes(folder: Path) -> dict[str, int]:
    """The month parts of both files by name, and their inodes."""
    return {
        p.name: (folder / "dumps" / parts.FOLDER / p.name).stat().st_ino
        for name in (NAME + ".nt", NAME + ".nt.gz")
        for p in parts.read_parts(folder / "dumps" / name)
        if p.name.startswith(NAME + "-")
    }


def lines(data: bytes) -> set[bytes]:
    return set(data.splitlines())


def changes(tmp_path: Path, before: Links, after: Links, changed: list[str] | None) -> Written:
    """Write before's linkset, then after's from it (changed: the entries whose links
    differ, or None), and check it against a full write of after's, the previous release
    untouched and the store's lines."""
    old = release(tmp_path / "old", before)
    write_linkset(old, IRIS, old / "enrich.sqlite")
    old_bytes, old_inodes = whole(old), inodes(old)
    new = release(tmp_path / "new", after)
    written = write_linkset(new, IRIS, new / "enrich.sqlite", old, changed)
    full = release(tmp_path / "full", after)
    write_linkset(full, IRIS, full / "enrich.sqlite")
    plain, packed = whole(new)
    assert (plain, packed) == whole(full)
    assert plain == linkset_ntriples(new / "enrich.sqlite", IRIS)[0]
    assert gzip.decompress(packed) == plain
    assert [(f.size, f.sha256) for f in written.files] == [
        (len(plain), hashlib.sha256(plain).hexdigest()),
        (len(packed), hashlib.sha256(packed).hexdigest()),
    ]
    assert whole(old) == old_bytes and inodes(old) == old_inodes
    # The parts of unchanged months are the previous release's files; new bytes, new parts.
    now = inodes(new)
    assert {n for n in now if old_inodes.get(n) == now[n]} == set(now) & set(old_inodes)
    links = store_links(new, written, old)
    assert lines(links.removed) == lines(old_bytes[0]) - lines(plain)
    assert lines(links.added) == lines(plain) - lines(old_bytes[0])
    assert links.whole() == plain
    return written


def test_one_entry_changed_writes_its_month_and_links_the_others(tmp_path: Path) -> None:
    before = library()
    after = dict(before)
    one = entry("02", 21)
    after[one] = [(entry("04", 40), 0.95), *before[one][:1]]
    written = changes(tmp_path, before, after, [one])
    assert written.changes is not None  # spliced: the store takes the lines that changed
    old, new = inodes(tmp_path / "old"), inodes(tmp_path / "new")
    assert len(set(new) & set(old)) == 6  # three months of four, plain and deflated
    assert [n for n in new if n not in old] == [n for n in new if "-2019-02-" in n]


@pytest.mark.parametrize(
    "change",
    ["loses-all", "new-month", "scores", "none", "unknown"],
)
def test_a_rebuild_writes_what_a_full_write_writes(tmp_path: Path, change: str) -> None:
    before = library()
    after = dict(before)
    changed: list[str] | None
    if change == "loses-all":  # a month left without links: its part gone
        changed = [i for i in before if "-2019-03-" in i]
        for iri in changed:
            after[iri] = []
    elif change == "new-month":  # an entry of a month that had no links gains some
        one = entry("07", 70)
        before[one] = []
        after[one] = [(entry("01", 10), 0.6)]
        changed = [one]
    elif change == "scores":  # the same targets, other scores: other lines
        changed = [entry("01", 11), entry("04", 42)]
        for iri in changed:
            after[iri] = [(t, s - 0.1) for t, s in before[iri]]
    elif change == "none":
        changed = []
    else:  # enrich.sqlite written anew: the months are compared by their bytes
        changed = None
        after[entry("01", 10)] = [(entry("02", 20), 0.5)]
    changes(tmp_path, before, after, changed)


def test_a_previous_linkset_of_one_plain_file_is_read_whole(tmp_path: Path) -> None:
    """A release written before the parts: its related.nt a plain file."""
    before, after = library(), library()
    one = entry("03", 30)
    after[one] = after[one][:1]
    old = release(tmp_path / "old", before)
    data, _ = linkset_ntriples(old / "enrich.sqlite", IRIS)
    (old / "dumps").mkdir()
    (old / "dumps" / "related.nt").write_bytes(data)
    (old / "dumps" / "related.nt.gz").write_bytes(gzip.compress(data))
    new = release(tmp_path / "new", after)
    written = write_linkset(new, IRIS, new / "enrich.sqlite", old, [one])
    assert whole(new)[0] == linkset_ntriples(new / "enrich.sqlite", IRIS)[0]
    links = store_links(new, written, old)
    assert lines(links.removed) == lines(data) - lines(whole(new)[0]) != set()
    assert links.added == b""


def test_a_damaged_previous_part_is_made_again(tmp_path: Path) -> None:
    before = library()
    old = release(tmp_path / "old", before)
    write_linkset(old, IRIS, old / "enrich.sqlite")
    listed = parts.read_parts(old / "dumps" / "related.nt")
    damaged = old / "dumps" / parts.FOLDER / listed[0].name
    damaged.write_bytes(damaged.read_bytes().replace(b"0.900", b"0.901", 1))
    new = release(tmp_path / "new", before)
    write_linkset(new, IRIS, new / "enrich.sqlite", old, [])
    assert whole(new)[0] == linkset_ntriples(new / "enrich.sqlite", IRIS)[0]
    assert gzip.decompress(whole(new)[1]) == whole(new)[0]
    # An entry of the damaged month changed: its month is made from enrich.sqlite, and the
    # store's changes are those of the months' bytes.
    after = dict(before)
    one = entry("01", 11)
    after[one] = after[one][1:]
    again = release(tmp_path / "again", after)
    written = write_linkset(again, IRIS, again / "enrich.sqlite", old, [one])
    assert whole(again)[0] == linkset_ntriples(again / "enrich.sqlite", IRIS)[0]
    assert written.changes is None
