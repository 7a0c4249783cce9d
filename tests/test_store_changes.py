"""A rebuild's store is the current one updated by the lines that changed (graph/store/
changes.py): the library's chunk, a line per entry, is compared side by side with the current
one's, not as two sets of its lines, and gives the same changes as the sets would."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from dumpfiles import overwrite, read_dump
from hypothesis import given, settings
from hypothesis import strategies as st
from live import PRUNING
from test_incremental import BASE, NOW, OWN, _edit, listing, store_contents

from graph import parts
from graph.publication import BuildOptions, build
from graph.store.changes import line_changes

_LINE = st.binary(min_size=1, max_size=3).map(lambda b: b.replace(b"\n", b"."))


@st.composite
def _texts(draw: st.DrawFn) -> tuple[list[bytes], list[bytes]]:
    """A text of unique lines, and the same after some lines were added, removed, replaced
    or moved (as entries added, removed or retitled are)."""
    old = draw(st.lists(_LINE, unique=True, max_size=30))
    new = list(old)
    for _ in range(draw(st.integers(0, 6))):
        what = draw(st.sampled_from(["add", "remove", "replace", "move"]))
        at = draw(st.integers(0, len(new)))
        if what == "add":
            new.insert(at, draw(_LINE))
        elif new and at < len(new):
            line = new.pop(at)
            if what == "replace":
                new.insert(at, draw(_LINE))
            elif what == "move":
                new.insert(draw(st.integers(0, len(new))), line)
    return old, list(dict.fromkeys(new))  # a text never repeats a line


def _pieces(lines: list[bytes], cuts: list[int]) -> list[bytes]:
    """The lines as text in pieces of whole lines, cut after the lines numbered in cuts."""
    text, at = [], 0
    for cut in sorted({min(c, len(lines)) for c in cuts} | {len(lines)}):
        text.append(b"".join(line + b"\n" for line in lines[at:cut]))
        at = cut
    return text


@settings(max_examples=400, deadline=None)
@given(
    _texts(),
    st.sets(_LINE, max_size=6),
    st.sets(_LINE, max_size=6),
    st.lists(st.integers(0, 30), max_size=4),
)
def test_side_by_side_changes_are_the_sets_changes(
    texts: tuple[list[bytes], list[bytes]], removed: set[bytes], added: set[bytes], cuts: list[int]
) -> None:
    old, new = texts
    gone, made = line_changes(removed, added, _pieces(old, cuts), _pieces(new, cuts[::-1]))
    before, after = removed | set(old), added | set(new)
    assert (gone, made) == (before - after, after - before)


def test_a_library_part_is_read_in_pieces_of_lines_and_damage_is_told(tmp_path: Path) -> None:
    folder = tmp_path / "dumps"
    (folder / parts.FOLDER).mkdir(parents=True)
    data = b"".join(b"<a> <b> <%d> .\n" % n for n in range(1000))
    writer = parts.Writer(folder / "x.nt")
    writer.write(data, "p.nt")
    writer.finish()
    part = parts.read_parts(folder / "x.nt")[0]
    pieces = list(parts.read_part_pieces(folder, part, 100))
    assert b"".join(pieces) == data and len(pieces) > 100
    assert all(p.endswith(b"\n") and len(p) <= 100 + 15 for p in pieces)
    path = folder / parts.FOLDER / part.name
    path.write_bytes(data.replace(b"<7>", b"<8>", 1))  # the same size
    with pytest.raises(parts.DamagedPartError):
        list(parts.read_part_pieces(folder, part, 100))
    path.write_bytes(data[:-5])
    with pytest.raises(parts.DamagedPartError):
        list(parts.read_part_pieces(folder, part, 100))
    path.unlink()
    with pytest.raises(parts.DamagedPartError):
        list(parts.read_part_pieces(folder, part, 100))


@pytest.mark.parametrize("step", ["added", "removed"])
def test_a_damaged_library_chunk_loads_the_store_in_full(tmp_path: Path, step: str) -> None:
    """An entry added or removed changes the library's chunk; the current one's bytes are
    damaged (a hasPart line's IRI, the same size): the rebuild's store is what a full build
    loads, not the damaged line's removal missed."""
    source, out = tmp_path / "library.txt", tmp_path / "out"
    options = BuildOptions(base=BASE)
    source.write_text(listing("Library – Changes\n", OWN), encoding="utf-8")
    first = build([source], out, options, now=NOW)
    assert first.release is not None
    shutil.copytree(out, tmp_path / "full", symlinks=True, ignore=PRUNING)
    nt = first.release / "dumps" / "library.nt"
    data = read_dump(first.release, "library.nt")
    at = data.index(b"/hasPart> <") + len(b"/hasPart> <")
    overwrite(nt, at, b"X")
    source.write_text(listing("Library – Changes\n", _edit(step, OWN)), encoding="utf-8")
    later = NOW + timedelta(hours=1)
    full = build([source], tmp_path / "full", options, now=later, reuse=False)
    again = build([source], out, options, now=later)
    assert full.release is not None and again.release is not None
    assert store_contents(again.release)[0] == store_contents(full.release)[0]
