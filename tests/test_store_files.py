"""Entries read from a release's files, not its store (graph/store/files.py): a web worker
describes an entry and a list page's members from the N-Triples dump and the index, with the
same triples the store gives, and the same bytes served; the binary search over a dump's
parts finds every subject whatever the lengths of its lines."""

from __future__ import annotations

import random
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pyoxigraph
import pytest
from extra import needs_enrich
from live import FIXTURES, SEED

from graph import parts
from graph.index import open_index
from graph.iris import Iris
from graph.publication import BuildOptions, build, read_manifest
from graph.resources import Description
from graph.store import EMBEDDED, VOID_FILE, open_reader
from graph.store.embedded import open_read_only
from graph.store.files import CONTEXT_FILE, EntryFiles, _lines_of
from graph.store.oxigraph import OxigraphReader
from server.app import create_app

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def readers(release: Path) -> tuple[OxigraphReader, OxigraphReader]:
    """The reader kgpub serves a release with (its files and context) and one that asks the
    store only."""
    iris = Iris(str(read_manifest(release)["base"]))
    served = open_reader(EMBEDDED, release, {}, iris, open_index(release / "index.sqlite"))
    assert isinstance(served, OxigraphReader) and served.files is not None
    return served, OxigraphReader.open(release / "store", iris, release / VOID_FILE)


def same(a: Description | None, b: Description | None) -> None:
    assert (a is None) == (b is None)
    if a is not None and b is not None:
        assert (a.kind, a.members, a.page) == (b.kind, b.members, b.page)
        assert sorted(map(str, a.triples)) == sorted(map(str, b.triples))


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated library of 3,000 entries: months of 30 entries, parts of 50 KB."""
    folder = tmp_path_factory.mktemp("files-generated")
    listing = folder / "library.txt"
    generator = str(FIXTURES / "gen_listing.py")
    subprocess.run([sys.executable, generator, "3000", "--out", str(listing)], check=True)
    build([listing], folder / "pub", BuildOptions(base="http://127.0.0.1:9/"), now=NOW)
    return folder / "pub"


@pytest.mark.parametrize("library", ["seed_out", "generated"])
def test_every_resource_is_described_as_the_store_describes_it(
    request: pytest.FixtureRequest, library: str
) -> None:
    release = request.getfixturevalue(library) / "current"
    served, store_only = readers(release)
    iris = served.iris
    entries = store_only.entries()
    assert len(entries) in (35, 3000)
    for entry in entries:
        same(served.describe(entry), store_only.describe(entry))
        assert served.exists(entry)
    index = open_index(release / "index.sqlite")
    lists = [iris.library, *store_only.concepts()]
    for iri in lists:
        members = index.members(iri)
        last = max(1, -(-len(members) // 10))
        for page in sorted({1, 2, last}):
            expected = store_only.describe(iri, page, 10, members)
            same(served.describe(iri, page, 10, members), expected)
    for iri in (iris.scheme, iris.dataset):
        same(served.describe(iri), store_only.describe(iri))
    for iri in (iris.scheme, *store_only.concepts()):
        assert served.exists(iri)
        assert sorted(map(str, served.triples(iri))) == sorted(map(str, store_only.triples(iri)))
    assert served.context is not None
    # Nothing of the pages was asked of the store: a web worker never opens it.
    assert not served.is_open
    # The library's own triples with its parts, which only the store holds.
    assert sorted(map(str, served.triples(iris.library))) == sorted(
        map(str, store_only.triples(iris.library))
    )
    assert len(served.triples(iris.library)) > len(entries)


@pytest.mark.parametrize(
    "local",
    [
        "entry/nope",
        "entry/2016-01-01-0000-a",
        "entry/zzzz",
        "entry/",
        "entry/é-not-ascii",
        "entry/\udc80-a-lone-surrogate",
        "entry/x#related-y",
    ],
    ids=["unknown", "before-all", "after-all", "prefix", "non-ascii", "surrogate", "fragment"],
)
def test_an_entry_the_release_lacks_is_not_found(seed_out: Path, local: str) -> None:
    served, store_only = readers(seed_out / "current")
    iri = served.iris.base + local
    assert served.describe(iri) is None
    assert not served.exists(iri)
    assert store_only.describe(iri) is None


@pytest.mark.parametrize("local", ["category/nope", "nothing", "scheme#x", "", "library/"])
def test_another_resource_the_release_lacks_is_not_found(seed_out: Path, local: str) -> None:
    served, store_only = readers(seed_out / "current")
    iri = served.iris.base + local
    assert served.describe(iri) is None and store_only.describe(iri) is None
    assert not served.exists(iri) and not store_only.exists(iri)
    assert served.triples(iri) == [] == store_only.triples(iri)
    assert not served.is_open


def test_a_release_without_its_context_is_read_from_its_store(
    seed_out: Path, tmp_path: Path
) -> None:
    """A release built before the context file: the library, scheme and concepts come from
    the store, as they did."""
    release = tmp_path / "release"
    shutil.copytree((seed_out / "current").resolve(), release)
    (release / CONTEXT_FILE).unlink()
    served, store_only = readers(release)
    assert served.context is None
    index = open_index(release / "index.sqlite")
    for iri in (served.iris.library, served.iris.scheme, *store_only.concepts()):
        members = index.members(iri) if iri != served.iris.scheme else None
        same(served.describe(iri, 1, 10, members), store_only.describe(iri, 1, 10, members))
    assert served.is_open


def test_entries_come_from_the_files_not_the_store(seed_out: Path) -> None:
    """Over an empty store, the files alone describe an entry and a page of members' titles
    and Added times: no entry is looked up in the store (its caches grow with what a worker
    reads, graph/store/files.py)."""
    release = seed_out / "current"
    served, store_only = readers(release)
    example = str(read_manifest(release)["example"])
    empty = OxigraphReader(pyoxigraph.Store(), served.iris, release / VOID_FILE, served.files)
    described, expected = empty.describe(example), store_only.describe(example)
    assert described is not None and expected is not None
    own = {t for t in expected.triples if t.subject.value == example}
    assert own <= set(described.triples)
    assert served.files is not None
    members = open_index(release / "index.sqlite").members(served.iris.library)[:5]
    titled = served.files.titles_and_times(members)
    assert {t.subject.value for t in titled} == set(members)
    assert len(titled) == 2 * len(members)


def test_a_release_whose_parts_cannot_be_read_is_read_from_its_store(
    seed_out: Path, tmp_path: Path
) -> None:
    """A damaged list of parts: the reader asks the store (`kgpub check` names the file)."""
    release = tmp_path / "release"
    shutil.copytree((seed_out / "current").resolve(), release)
    dump = release / "dumps" / "library.nt"
    parts.list_path(dump).write_text("not a list of parts\n", encoding="utf-8")
    served, store_only = readers(release)
    example = str(read_manifest(release)["example"])
    assert served.files is not None and not served.files.answers(example)
    same(served.describe(example), store_only.describe(example))
    # Without its list of parts at all, the release is read from its store, context too.
    parts.list_path(dump).unlink()
    iris = served.iris
    alone = open_reader(EMBEDDED, release, {}, iris, open_index(release / "index.sqlite"))
    assert isinstance(alone, OxigraphReader) and alone.files is None and alone.context is None
    same(alone.describe(iris.scheme), store_only.describe(iris.scheme))


def part_of(rng: random.Random, subjects: int) -> tuple[bytes, dict[bytes, bytes]]:
    """A subject-ordered N-Triples part with lines from a few bytes to 100 KiB (some longer
    than the reader's window and block), and each subject's lines."""
    numbers = {rng.randrange(10**9) for _ in range(subjects)}
    keys = sorted(f"<http://x/entry/{n:09d}>".encode() for n in numbers)
    out, by = [], {}
    for key in keys:
        lines = []
        for n in range(rng.randint(1, 6)):
            size = rng.choice([1, 10, 200, 5000, 40_000, 100_000])
            lines.append(key + b' <http://p/%d> "%s" .\n' % (n, b"a" * rng.randint(0, size)))
        by[key] = b"".join(lines)
        out.append(by[key])
    return b"".join(out), by


@pytest.mark.parametrize("seed", range(6))
def test_the_binary_search_finds_each_subject_of_a_part(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    data, by = part_of(rng, rng.choice([1, 3, 40, 400]))
    path = tmp_path / "part.nt"
    path.write_bytes(data)
    keys = sorted(by)
    absent = [b"<http://x/entry/>", b"<http://x/entry/999999999z>", b"<http://x/>"]
    absent += [k[:-1] + b"0>" for k in keys[:20]]  # just after a subject, before the next
    with open(path, "rb") as file:
        fd = file.fileno()
        for key in keys:
            assert _lines_of(fd, len(data), key) == by[key]
        for key in absent:
            assert _lines_of(fd, len(data), key) == by.get(key, b"")


def test_files_of_a_release_without_parts_are_none(tmp_path: Path) -> None:
    """A release whose dump is one plain file (built before parts) is read from its store."""
    dump = tmp_path / "library.nt"
    dump.write_bytes(b"")
    assert EntryFiles.of(dump, Iris("http://x/")) is None


@pytest.fixture(scope="module")
def enriched(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The seed built with related entries (a linkset in the store beside the dumps)."""
    out = tmp_path_factory.mktemp("files-enriched") / "pub"
    build([SEED], out, BuildOptions(base="http://127.0.0.1:9/", enrich=True), now=NOW)
    return out


@needs_enrich
def test_pages_are_the_same_bytes_as_from_the_store(enriched: Path) -> None:
    """Every entry in Turtle, JSON-LD and HTML, and the first pages of every list, served
    with the files and served from the store only: the same bytes, related entries and
    publishers included (the store holds the linkset, the files do not: the page adds it)."""
    release = enriched / "current"
    _, store_only = readers(release)
    iris = store_only.iris
    paths = [e[len(iris.base) - 1 :] for e in store_only.entries()]
    paths += ["/", "/library", "/library?page=2", "/categories"]
    paths += [c[len(iris.base) - 1 :] for c in store_only.concepts()]
    served_by = []
    for from_files in (True, False):
        app = create_app({"KGPUB": {"out": str(enriched), "page_size": 10}, "TESTING": True})
        client = app.test_client()
        if not from_files:
            release_now = app.extensions["kgpub"].get()
            store = open_read_only(release / "store")
            release_now._reader = OxigraphReader(store, iris, release / VOID_FILE)
        bodies = {}
        for path in paths:
            for accept in ("text/turtle", "application/ld+json", "text/html"):
                answer = client.get(path, headers={"Accept": accept})
                assert answer.status_code == 200, (path, accept)
                bodies[path, accept] = answer.data
        served_by.append(bodies)
    with_files, from_store = served_by
    assert with_files.keys() == from_store.keys()
    for key, body in with_files.items():
        assert body == from_store[key], key
    assert any(b"related" in body for body in with_files.values())
