"""A release's dumps as the tests read and damage them: each whole (graph/parts.py), and its
bytes changed or cut where they lie, in the part files on disk."""

from __future__ import annotations

from pathlib import Path

from graph import parts


def read_dump(release: Path, name: str) -> bytes:
    """The whole bytes of a release's dump (dumps/NAME, a plain file or its parts)."""
    return parts.read_bytes(release / "dumps" / name)


def dump_names(release: Path) -> list[str]:
    """The names of a release's dumps (whole files), sorted."""
    folder = release / "dumps"
    names = {p.name.removesuffix(parts.SUFFIX) for p in folder.iterdir() if p.is_file()}
    return sorted(names)


def part_at(dump: Path, offset: int) -> tuple[Path, int]:
    """The part file of dump holding the whole's byte at offset, and where it is in that part."""
    start = 0
    for part in parts.read_parts(dump):
        if offset < start + part.size:
            return dump.parent / parts.FOLDER / part.name, offset - start
        start += part.size
    raise IndexError(f"{dump}: no byte at {offset}")


def overwrite(dump: Path, offset: int, data: bytes) -> None:
    """Change the whole's bytes from offset to data's (same size), in the part files
    themselves (shared with every release that links them, as damage on disk is)."""
    for n, byte in enumerate(data):
        path, at = part_at(dump, offset + n)
        with path.open("r+b") as file:
            file.seek(at)
            file.write(bytes([byte]))


def cut_short(dump: Path, count: int) -> None:
    """Truncate the part holding the whole's byte count bytes before its end, at that byte."""
    path, at = part_at(dump, parts.size_of(dump) - count)
    with path.open("r+b") as file:
        file.truncate(at)
