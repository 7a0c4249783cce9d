"""How a library's graph differs from the current release's, chunk by chunk, for a store
backend to apply to a copy of the current release's graph (graph/store oxigraph, sparql).

The changes are the N-Triples lines (the graph has no blank nodes, so a line is a triple) of
the chunks the library no longer has that the new chunks do not have, read from the current
release's N-Triples dump, and the new chunks' other lines (graph/dumps.py: a chunk is keyed
by the SHA-256 of its N-Triples, so an unchanged chunk is never read).

A changed month's chunk is small (a month of entries) and is taken in whole as a set of
lines. The library's chunk is not: its hasPart lines, one per entry, make 173 MB at a million
entries, and two sets of a million lines took a rebuild that adds or retitles an entry above
2 GiB. Its old and new texts are read side by side in pieces instead (_apart), each line
cancelling its twin from the other side: both list the entries in the same order (by month,
then IRI), so an added or retitled entry leaves only a few lines waiting at any time.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import zip_longest
from pathlib import Path
from typing import Any

from graph import parts
from graph.convert import Converted
from graph.dumps import FOLDER, Chunk, part_name, previous_parts
from graph.formats import NTRIPLES

PIECE = 1 << 20  # bytes of a library chunk read at a time


@dataclass(frozen=True)
class GraphChanges:
    """N-Triples lines to remove from the current release's graph and to add, each sorted."""

    removed: bytes
    added: bytes


def graph_changes(
    previous: Path, converted: Converted, chunks: list[Chunk], index: dict[str, Any]
) -> GraphChanges | None:
    """The lines of the chunks the library no longer has that the new chunks do not have,
    and the new chunks' other lines; None when the index cannot tell or a part read is
    damaged (then the store is loaded in full)."""
    old_chunks = index.get("chunks")
    if not old_chunks or index.get("nt") not in index.get("dumps", ()):
        return None
    listed = previous_parts(previous, index["nt"])
    new_keys = {c.key for c in chunks}
    gone = [key for key in old_chunks if key not in new_keys]
    if not listed or any(part_name(key, NTRIPLES) not in listed for key in gone):
        return None
    known = set(old_chunks)
    made = [c for c in chunks if c.key not in known]
    folder = previous / FOLDER
    # The library's chunk is the first of both (graph/dumps.py chunks_of).
    old_library = old_chunks[0] if old_chunks[0] in gone else None
    new_library = next((c for c in made if c.kind == "library"), None)
    text = converted.text
    added = set(b"".join(text[c.start : c.end] for c in made if c is not new_library).split(b"\n"))
    removed: set[bytes] = set()
    for key in gone:
        if key != old_library:
            lines = parts.read_part(folder, listed[part_name(key, NTRIPLES)])
            if lines is None:  # damaged
                return None
            removed.update(lines.split(b"\n"))
    added.discard(b"")
    removed.discard(b"")
    old_pieces: Iterable[bytes] = ()
    if old_library is not None:
        old_pieces = parts.read_part_pieces(folder, listed[part_name(old_library, NTRIPLES)], PIECE)
    new_pieces: Iterable[bytes] = ()
    if new_library is not None:
        new_pieces = text.span(new_library.start, new_library.end).pieces(PIECE)
    try:
        return _changes(*line_changes(removed, added, old_pieces, new_pieces))
    except parts.DamagedPartError:
        return None


def line_changes(
    removed: set[bytes], added: set[bytes], old: Iterable[bytes], new: Iterable[bytes]
) -> tuple[set[bytes], set[bytes]]:
    """The lines to remove and to add when the graph loses the lines removed and the text
    old (pieces of whole lines), and gains the lines added and the text new, neither text
    repeating a line: each set is taken whole, the texts side by side (_apart)."""
    only_old, only_new, old_in_added, new_in_removed = _apart(
        _lines(old), _lines(new), added, removed
    )
    # A line of a set may be one of the texts' too (none is, as convert writes them): it is
    # then in the graph on that side.
    return (
        (removed - added - new_in_removed) | (only_old - added),
        (added - removed - old_in_added) | (only_new - removed),
    )


def _changes(removed: set[bytes], added: set[bytes]) -> GraphChanges:
    return GraphChanges(b"\n".join(sorted(removed)), b"\n".join(sorted(added)))


def _lines(pieces: Iterable[bytes]) -> Iterator[bytes]:
    """The non-empty lines of text given in pieces of whole lines."""
    for piece in pieces:
        for line in piece.split(b"\n"):
            if line:
                yield line


def _apart(
    old: Iterator[bytes], new: Iterator[bytes], added: set[bytes], removed: set[bytes]
) -> tuple[set[bytes], set[bytes], set[bytes], set[bytes]]:
    """The lines only old has and only new has, for two texts neither of which repeats a
    line (the library's chunk: one line per entry), read side by side; and the lines of old
    in added, of new in removed. A line of one side waits in its set until its twin comes
    from the other: the sets hold the lines that differ plus those between a change and its
    twin, a handful when the entries are in the same order on both sides."""
    only_old: set[bytes] = set()
    only_new: set[bytes] = set()
    old_in_added: set[bytes] = set()
    new_in_removed: set[bytes] = set()
    for a, b in zip_longest(old, new):
        if a is not None and a in added:
            old_in_added.add(a)
        if b is not None and b in removed:
            new_in_removed.add(b)
        if a == b:
            continue
        if a is not None:
            if a in only_new:
                only_new.discard(a)
            else:
                only_old.add(a)
        if b is not None:
            if b in only_old:
                only_old.discard(b)
            else:
                only_new.add(b)
    return only_old, only_new, old_in_added, new_in_removed
