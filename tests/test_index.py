"""graph/index.py: the release's on-disk index answers the lists as the graph does, a page at
a time, and serving reads them from it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from graph.index import FILE, Index
from graph.iris import Iris
from graph.publication import current_release, read_manifest
from graph.store.oxigraph import OxigraphReader


@pytest.fixture(scope="module")
def release(seed_out: Path) -> Path:
    return current_release(seed_out)


@pytest.fixture(scope="module")
def reader(release: Path) -> OxigraphReader:
    return OxigraphReader.open(release / "store", Iris(read_manifest(release)["base"]))


def test_lists_and_counts_equal_the_graphs(release: Path, reader: OxigraphReader) -> None:
    index = Index(release / FILE)
    iris = reader.iris
    assert index.concepts() == reader.concepts()
    assert index.category_counts() == reader.category_counts()
    assert list(index.members(iris.library)) == reader.members(iris.library, "library")
    for concept in reader.concepts():
        assert list(index.members(concept)) == reader.members(concept, "concept")


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


def test_the_index_is_opened_read_only(release: Path) -> None:
    index = Index(release / FILE)
    index.concepts()
    db = index._db()
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        db.execute("DELETE FROM concept")
