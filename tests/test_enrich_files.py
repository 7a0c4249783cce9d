"""A rebuild's enrichment starts from the previous release's files (graph/enrich/related.py
write_changes, graph/enrich/linkset.py write_linkset): what it writes holds exactly what a
full build writes for the same data (every table's rows, the vectors file, the linkset dumps
byte for byte, and the links in its store), only the changed months' parts of the linkset
are new, and the previous release's files stay as they were. Needs the [enrich] extra, as
tests/test_enrich.py.
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
from live import SEED

from graph import parts
from graph.publication import BuildOptions, build, current_release

pytestmark = needs_enrich

NOW = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
# Compared byte for byte; enrich.sqlite by its tables' rows (a file changed in place keeps
# its pages where they were, as graph/index.py's does).
DUMPS = ("related.nt", "related.nt.gz")  # files of parts (graph/parts.py)
FILES = ("enrich-vectors.npy", *(f"dumps/{name}" for name in DUMPS))
RELEASE_FILES = ("enrich.sqlite", "enrich-vectors.npy")
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
    """Every row of every table of a release's enrich.sqlite, in order."""
    with sqlite3.connect(release / "enrich.sqlite") as db:
        names = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return {n: db.execute(f"SELECT * FROM {n} ORDER BY 1, 2").fetchall() for n in names}


def contents(release: Path) -> dict[str, bytes]:
    files = {name: (release / name).read_bytes() for name in RELEASE_FILES[1:]}
    return files | {f"dumps/{name}": read_dump(release, name) for name in DUMPS}


def digests(release: Path) -> dict[str, str]:
    files = {n: (release / n).read_bytes() for n in RELEASE_FILES}
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
    ("changes", "in_place"),
    [((TEXT,), True), ((TITLE,), True), ((TEXT, TITLE), True), ((RENAMED,), False)],
    ids=["text", "title", "both", "renamed"],
)
def test_an_incremental_enrichment_writes_what_a_full_one_writes(
    tmp_path: Path,
    first: Path,
    changes: tuple[tuple[str, str], ...],
    in_place: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from graph.enrich import related

    # The seed's 35 entries are too few for the share of changed rows written in place:
    # allowed all, and the way the rebuild took recorded.
    monkeypatch.setattr(related, "CHANGES", 1.0)
    taken: list[tuple[str, ...] | None] = []
    write_changes = related.write_changes

    def recorded(*args: Any) -> tuple[str, ...] | None:
        taken.append(write_changes(*args))
        return taken[-1]

    monkeypatch.setattr(related, "write_changes", recorded)
    out = tmp_path / "pub"
    shutil.copytree(first, out, symlinks=True)
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
    assert len(taken) == 1 and bool(taken[0]) == in_place, taken  # in place: links changed
    assert incremental != previous
    full = tmp_path / "full"
    build([changed], full, BuildOptions(base=BASE, enrich=True), now=NOW, reuse=False)
    assert tables(incremental) == tables(current_release(full))
    assert contents(incremental) == contents(current_release(full))
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


def test_a_rebuild_without_changes_links_the_previous_files(tmp_path: Path, first: Path) -> None:
    out = tmp_path / "pub"
    shutil.copytree(first, out, symlinks=True)
    previous = current_release(out)
    before = digests(previous)
    outcome = build([SEED], out, BuildOptions(base=BASE, enrich=True), now=NOW)
    assert "0 text(s) embedded" in outcome.enriched
    again = current_release(out)
    for name in RELEASE_FILES:
        assert (again / name).stat().st_ino == (previous / name).stat().st_ino, name
    assert part_files(again) == part_files(previous)  # every part hard-linked
    assert contents(again) == contents(previous)
    assert digests(previous) == before
