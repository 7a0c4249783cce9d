"""A rebuild's enrichment starts from the previous release's files (graph/enrich/related.py
write, graph/enrich/linkset.py write_linkset): what it writes is exactly what a full build
writes for the same data (the months' parts of enrich/ byte for byte, so every row and
vector, the linkset dumps byte for byte, and the links in its store), only the changed
months' parts are new files (the others hard-linked), and the previous release's files stay
as they were. Needs the [enrich] extra, as tests/test_enrich.py.
"""

from __future__ import annotations

import gzip
import hashlib
import shutil
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyoxigraph
import pytest
from dumpfiles import read_dump
from extra import needs_enrich
from live import PRUNING, SEED

from graph import parts
from graph.publication import BuildOptions, build, current_release

pytestmark = needs_enrich

NOW = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
DUMPS = ("related.nt", "related.nt.gz")  # files of parts (graph/parts.py)
BASE = "http://127.0.0.1:9/"
# A description changed (the entry embedded again, its neighbours and theirs relinked); a
# title changed where its entry's IRI stays (every related row naming it as a target carries
# its new title); a title changed with its IRI (an entry gone, one new: written anew).
TEXT = (
    "This summary outlines the key changes the Act makes",
    "This summary outlines online grooming and the key changes the Act makes",
)
TITLE = ("Children and Families Act 2014", "Children and Families Act, 2014")
RENAMED = ("Children and Families Act 2014", "The Children and Families Act 2014")


def tables(release: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table of a release's enrich.sqlite (the head) and of its months'
    parts (the vector rows numbered across the months), in order."""
    from graph.enrich.read import rows_of

    with sqlite3.connect(release / "enrich.sqlite") as db:
        names = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        head = {n: db.execute(f"SELECT * FROM {n} ORDER BY 1, 2").fetchall() for n in names}
    return head | {n: rows_of(release / "enrich.sqlite", n) for n in ("vector", "related")}


def enrich_files(release: Path) -> dict[str, Path]:
    """The months' parts of a release's enrichment (enrich/), by name."""
    return {p.name: p for p in sorted((release / "enrich").iterdir())}


def contents(release: Path) -> dict[str, bytes]:
    files = {f"enrich/{n}": p.read_bytes() for n, p in enrich_files(release).items()}
    return files | {f"dumps/{name}": read_dump(release, name) for name in DUMPS}


def digests(release: Path) -> dict[str, str]:
    files = {"enrich.sqlite": (release / "enrich.sqlite").read_bytes()}
    files |= {n: p.read_bytes() for n, p in enrich_files(release).items()}
    for name in DUMPS:
        files[name] = read_dump(release, name)
        for part in parts.read_parts(release / "dumps" / name):
            files[part.name] = (release / "dumps" / parts.FOLDER / part.name).read_bytes()
    return {n: hashlib.sha256(data).hexdigest() for n, data in files.items()}


def part_files(release: Path) -> dict[str, int]:
    """The linkset's parts of months (not the .gz's header and trailer), by name, and their
    inodes (the same: hard-linked)."""
    folder = release / "dumps" / parts.FOLDER
    return {
        p.name: (folder / p.name).stat().st_ino
        for name in DUMPS
        for p in parts.read_parts(release / "dumps" / name)
        if p.name.startswith("related-")
    }


def store_links(release: Path) -> set[str]:
    """Every triple of the release's store about a link (kgpub:related, the reification)."""
    store = pyoxigraph.Store.read_only(str(release / "store"))
    related = "https://w3id.org/kgpub/ns#related"
    found = {
        str(q.triple) for q in store.quads_for_pattern(None, pyoxigraph.NamedNode(related), None)
    }
    for quad in store.quads_for_pattern(None, None, None, pyoxigraph.DefaultGraph()):
        subject = quad.subject
        if isinstance(subject, pyoxigraph.NamedNode) and "#related-" in subject.value:
            found.add(str(quad.triple))
    return found


@pytest.fixture(scope="module")
def first(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("first") / "pub"
    build([SEED], out, BuildOptions(base=BASE, enrich=True), now=NOW)
    return out


@pytest.mark.parametrize(
    "changes",
    [(TEXT,), (TITLE,), (TEXT, TITLE), (RENAMED,)],
    ids=["text", "title", "both", "renamed"],
)
def test_an_incremental_enrichment_writes_what_a_full_one_writes(
    tmp_path: Path,
    first: Path,
    changes: tuple[tuple[str, str], ...],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from graph.enrich import related

    taken: list[related.Written] = []
    write = related.write

    def recorded(*args: Any) -> related.Written:
        taken.append(write(*args))
        return taken[-1]

    monkeypatch.setattr(related, "write", recorded)
    out = tmp_path / "pub"
    shutil.copytree(first, out, symlinks=True, ignore=PRUNING)
    previous = current_release(out)
    before = digests(previous)
    text = SEED.read_text(encoding="utf-8")
    for old, new in changes:
        assert old in text
        text = text.replace(old, new)
    changed = tmp_path / SEED.name
    changed.write_text(text, encoding="utf-8")
    outcome = build([changed], out, BuildOptions(base=BASE, enrich=True), now=NOW)
    assert "1 text(s) embedded" in outcome.enriched
    incremental = current_release(out)
    # Some months written again, the others linked; the links that changed named.
    assert len(taken) == 1 and taken[0].written and taken[0].linked and taken[0].changed
    assert incremental != previous
    full = tmp_path / "full"
    build([changed], full, BuildOptions(base=BASE, enrich=True), now=NOW, reuse=False)
    assert tables(incremental) == tables(current_release(full))
    assert contents(incremental) == contents(current_release(full))  # the same part files
    files = contents(incremental)
    assert gzip.decompress(files["dumps/related.nt.gz"]) == files["dumps/related.nt"]
    assert tables(incremental) != tables(previous)
    assert digests(previous) == before  # the previous release untouched
    # The store copied from the previous release's holds the links of a full build's, and
    # the linkset's parts of the months whose links did not change are the previous ones.
    assert store_links(incremental) == store_links(current_release(full))
    now, then = part_files(incremental), part_files(previous)
    linked = {name for name in now if then.get(name) == now[name]}
    assert linked and linked == set(now) & set(then)  # new parts only for new bytes
    assert linked != set(now)
    # So are the enrichment's months' files: linked when the same (a month's vectors too
    # when only its links changed), new ones written.
    now, then = inodes(incremental), inodes(previous)
    linked = {name for name in now if then.get(name) == now[name]}
    assert len(linked) >= 2 * taken[0].linked and linked == set(now) & set(then)


def inodes(release: Path) -> dict[str, int]:
    return {n: p.stat().st_ino for n, p in enrich_files(release).items()}


def test_a_rebuild_without_changes_links_the_previous_files(tmp_path: Path, first: Path) -> None:
    out = tmp_path / "pub"
    shutil.copytree(first, out, symlinks=True, ignore=PRUNING)
    previous = current_release(out)
    before = digests(previous)
    outcome = build([SEED], out, BuildOptions(base=BASE, enrich=True), now=NOW)
    assert "0 text(s) embedded" in outcome.enriched
    again = current_release(out)
    assert inodes(again) == inodes(previous)  # every month's files hard-linked
    assert part_files(again) == part_files(previous)  # every part hard-linked
    assert contents(again) == contents(previous)
    assert tables(again) == tables(previous)
    assert digests(previous) == before


def test_a_release_of_one_enrichment_file_is_read_and_written_in_parts(
    tmp_path: Path, first: Path
) -> None:
    """A release built before the months' parts (enrich.sqlite with its vector and related
    tables, enrich-vectors.npy beside it) is served, and the next build reuses its vectors
    (nothing embedded) and writes what a full build writes."""
    from graph.enrich.read import Enrichment, rows_of

    out = tmp_path / "pub"
    shutil.copytree(first, out, symlinks=True, ignore=PRUNING)
    release = current_release(out)
    vectors = [iri for _, iri, _ in rows_of(release / "enrich.sqlite", "vector")]
    related = rows_of(release / "enrich.sqlite", "related")
    matrix = Enrichment(release / "enrich.sqlite").vectors()[1]
    old = tmp_path / "old.sqlite"
    with sqlite3.connect(old) as db:
        db.executescript(
            """
            CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
            CREATE TABLE vector (row INTEGER PRIMARY KEY, iri TEXT NOT NULL UNIQUE,
                                 digest TEXT NOT NULL, v BLOB NOT NULL);
            CREATE TABLE related (iri TEXT NOT NULL, rank INTEGER NOT NULL,
                                  target TEXT NOT NULL, dot INTEGER NOT NULL,
                                  score REAL NOT NULL, title TEXT NOT NULL,
                                  PRIMARY KEY (iri, rank)) WITHOUT ROWID;
            """
        )
        with sqlite3.connect(release / "enrich.sqlite") as head:
            db.executemany("INSERT INTO meta VALUES (?, ?)", head.execute("SELECT * FROM meta"))
        rows = rows_of(release / "enrich.sqlite", "vector")
        db.executemany(
            "INSERT INTO vector VALUES (?, ?, ?, ?)",
            [(n, iri, digest, matrix[[n]].tobytes()) for n, iri, digest in rows],
        )
        db.executemany("INSERT INTO related VALUES (?, ?, ?, ?, ?, ?)", related)
    (release / "enrich.sqlite").unlink()
    shutil.rmtree(release / "enrich")
    shutil.copyfile(old, release / "enrich.sqlite")
    served = Enrichment(release / "enrich.sqlite")
    assert served.vectors()[0] == vectors
    assert served.related(related[0][0])[0].iri == related[0][2]
    outcome = build([SEED], out, BuildOptions(base=BASE, enrich=True), now=NOW)
    assert "0 text(s) embedded" in outcome.enriched
    full = tmp_path / "full"
    build([SEED], full, BuildOptions(base=BASE, enrich=True), now=NOW, reuse=False)
    assert contents(current_release(out)) == contents(current_release(full))
    assert tables(current_release(out)) == tables(current_release(full))
