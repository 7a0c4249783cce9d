"""Keyset pages of the change feed and the entry collections (graph/harvest.py), in-process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from graph import harvest, history
from graph.iris import Iris

BASE = "http://example.org/lib/"
IRIS = Iris(BASE)


def make_index(tmp_path: Path, slugs: list[str], changes: int) -> history.Index:
    """An index with the given published entries and a history of `changes` creations."""
    release = tmp_path / "release"
    release.mkdir(parents=True, exist_ok=True)
    rows = {
        BASE + "entry/" + s: [
            "f",
            s.upper(),
            [BASE + "category/c"],
            "2020-01-01T00:00:00+00:00",
            "2026-01-01T00:00:00Z",
            "2026-01-01T00:00:00Z",
            None,
            None,
        ]
        for s in slugs
    }
    doc = {
        "version": history.VERSION,
        "built": "2026-01-01T00:00:00Z",
        "state": "s",
        "changed": "2026-01-01T00:00:00Z",
        "changes": changes,
        "visible": {},
        "frame": "",
        "categories": {BASE + "category/c": {"label": "C", "notation": "c"}},
        "fields": list(history.EntryState._fields),
        "entries": dict(sorted(rows.items())),
    }
    (release / history.ENTRIES).write_text(json.dumps(doc))
    lines = [
        json.dumps(
            {
                "seq": n,
                "time": "2026-01-01T00:00:00Z",
                "kind": "create",
                "iri": f"{BASE}entry/{n}",
                "title": str(n),
            }
        )
        for n in range(1, changes + 1)
    ]
    (release / history.HISTORY).write_text("".join(line + "\n" for line in lines))
    return history.Index(release)


def walk(index: history.Index, page_size: int, category: str | None = None) -> list[str]:
    page = harvest.collection_page(index, IRIS, page_size, category)
    seen = list(page.members)
    while page.next:
        after = page.next.split("after=", 1)[1]
        page = harvest.collection_page(index, IRIS, page_size, category, after=after)
        seen += page.members
    return seen


def test_walking_next_gets_every_member_once(tmp_path: Path) -> None:
    slugs = [f"2020-01-{d:02d}-0900-e{d}" for d in range(1, 24)]
    index = make_index(tmp_path, slugs, 0)
    assert walk(index, 5) == index.live
    assert walk(index, 5, BASE + "category/c") == index.live
    last = harvest.collection_page(index, IRIS, 5, page="last")
    assert last.members == index.live[-5:] and last.next is None and last.previous
    back = harvest.collection_page(index, IRIS, 5, before=last.members[0].rsplit("/", 1)[1])
    assert back.members == index.live[-10:-5]


def test_a_walk_survives_entries_added_and_removed_behind_and_ahead(tmp_path: Path) -> None:
    slugs = [f"2020-01-{d:02d}-0900-e{d}" for d in range(1, 21)]
    index = make_index(tmp_path / "a", slugs, 0)
    first = harvest.collection_page(index, IRIS, 6)
    cursor = first.members[-1].rsplit("/", 1)[1]
    # Rebuilt: one entry removed behind the cursor, one ahead; one added behind, one ahead.
    changed = [s for s in slugs if s not in (slugs[2], slugs[12])]
    changed += ["2019-12-31-0900-new-early", "2020-01-30-0900-new-late"]
    index2 = make_index(tmp_path / "b", sorted(changed), 0)
    page = harvest.collection_page(index2, IRIS, 6, after=cursor)
    seen = list(first.members) + list(page.members)
    while page.next:
        page = harvest.collection_page(index2, IRIS, 6, after=page.next.split("after=", 1)[1])
        seen += page.members
    assert len(seen) == len(set(seen))
    throughout = {BASE + "entry/" + s for s in slugs} & set(index2.live)
    assert throughout <= set(seen)
    assert BASE + "entry/2020-01-30-0900-new-late" in seen  # added ahead: seen


@pytest.mark.parametrize("total", [0, 1, 7, 10, 23])
def test_feed_pages_cover_the_history_once_newest_first(tmp_path: Path, total: int) -> None:
    index = make_index(tmp_path, [], total)
    collection = harvest.feed_collection(index, IRIS, "L")
    assert collection["totalItems"] == total
    seqs: list[int] = []
    url = collection.get("first")
    while url:
        before = int(url.split("before=", 1)[1])
        page = harvest.feed_page(index, IRIS, 5, before, None)
        seqs += [int(a["id"].rsplit("#", 1)[1]) for a in page["orderedItems"]]
        url = page.get("next")
    assert seqs == list(range(total, 0, -1))
    if total:
        last = harvest.feed_page(index, IRIS, 5, None, 0)
        assert [a["id"] for a in last["orderedItems"]][-1].endswith("#1")
        assert "next" not in last and ("prev" in last) == (total > 5)


@pytest.mark.parametrize(
    ("before", "after"), [(None, None), (0, None), (99, None), (None, -1), (None, 99), (3, 3)]
)
def test_feed_page_parameters_out_of_range(
    tmp_path: Path, before: int | None, after: int | None
) -> None:
    index = make_index(tmp_path, [], 10)
    with pytest.raises(harvest.PageError):
        harvest.feed_page(index, IRIS, 5, before, after)


def test_collection_page_parameters(tmp_path: Path) -> None:
    index = make_index(tmp_path, ["2020-01-01-0900-a"], 0)
    with pytest.raises(harvest.PageError):
        harvest.collection_page(index, IRIS, 5, after="x", before="y")
    with pytest.raises(harvest.PageError):
        harvest.collection_page(index, IRIS, 5, page="middle")
