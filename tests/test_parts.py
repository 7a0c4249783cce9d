"""graph/parts.py: a whole file written as parts, the next release linking the unchanged
ones, read back as one seekable stream and by `cat` of its list, as the README says."""

from __future__ import annotations

import hashlib
import os
import subprocess
import zlib
from pathlib import Path

import pytest

from graph import parts

PIECES = [b"header\n", b"a" * 70_000, b"", b"b" * 5, b"c" * 131_072, b"footer\n"]


def _write(folder: Path, pieces: list[bytes]) -> parts.Whole:
    writer = parts.Writer(folder / "library.nt")
    for n, data in enumerate(pieces):
        writer.write(data, f"k{n}.nt" if n else None)
    return writer.finish()


def test_a_whole_is_its_parts_in_order(tmp_path: Path) -> None:
    whole = _write(tmp_path, PIECES)
    data = b"".join(PIECES)
    assert (whole.size, whole.sha256, whole.crc) == (
        len(data),
        hashlib.sha256(data).hexdigest(),
        zlib.crc32(data),
    )
    assert len(whole.parts) == 5  # the empty piece adds no part
    assert parts.read_bytes(tmp_path / "library.nt") == data
    assert parts.size_of(tmp_path / "library.nt") == len(data)
    # The README's recipe: cat of the parts in the order of the list.
    cat = subprocess.run(
        "cut -f1 library.nt.parts | xargs cat",
        shell=True,
        cwd=tmp_path,
        capture_output=True,
        check=True,
    )
    assert cat.stdout == data


@pytest.mark.parametrize(
    ("start", "length"),
    [(0, 10), (5, 10), (70_000, 20), (70_005, 8), (70_007, 200_000), (201_000, 10_000)],
    ids=["first", "across-1-2", "across-2-3", "across-3-4-5", "to-the-end", "past-the-end"],
)
def test_the_stream_reads_and_seeks_across_parts(tmp_path: Path, start: int, length: int) -> None:
    _write(tmp_path, PIECES)
    data = b"".join(PIECES)
    with parts.open_whole(tmp_path / "library.nt") as stream:
        assert stream.seekable()
        assert stream.seek(start) == start
        got = stream.read(length)
        assert got == data[start : start + length]
        assert stream.tell() == start + len(got)
        assert stream.seek(-3, os.SEEK_END) == len(data) - 3
        assert stream.read() == data[-3:]


def test_a_plain_file_reads_as_a_whole(tmp_path: Path) -> None:
    (tmp_path / "related.nt").write_bytes(b"plain\n")
    assert not parts.is_parts(tmp_path / "related.nt")
    assert parts.size_of(tmp_path / "related.nt") == 6
    assert parts.read_bytes(tmp_path / "related.nt") == b"plain\n"
    assert parts.size_of(tmp_path / "missing.nt") == -1


def test_the_next_release_links_unchanged_parts(tmp_path: Path) -> None:
    old, new = tmp_path / "old", tmp_path / "new"
    first = _write(old, PIECES)
    writer = parts.Writer(new / "library.nt")
    for part in first.parts[:-1]:
        assert writer.link(old, part) == part
    writer.write(b"new footer\n")
    whole = writer.finish()
    data = b"".join(PIECES[:-1]) + b"new footer\n"
    assert parts.read_bytes(new / "library.nt") == data
    assert whole.sha256 == hashlib.sha256(data).hexdigest()
    shared = first.parts[1].name
    assert (new / "parts" / shared).stat().st_ino == (old / "parts" / shared).stat().st_ino
    # The previous release is untouched.
    assert parts.read_bytes(old / "library.nt") == b"".join(PIECES)


def test_a_damaged_part_is_not_linked(tmp_path: Path) -> None:
    old, new = tmp_path / "old", tmp_path / "new"
    first = _write(old, PIECES)
    same_size, shorter = first.parts[1], first.parts[3]
    (old / "parts" / same_size.name).write_bytes(b"x" * same_size.size)
    (old / "parts" / shorter.name).write_bytes(b"c")
    writer = parts.Writer(new / "library.nt")
    assert writer.link(old, same_size) is None
    assert writer.link(old, shorter) is None
    assert writer.link(old, parts.Part("gone.nt", 1, 0)) is None
    assert not (new / "parts" / same_size.name).exists()
    assert writer.finish().size == 0
    assert parts.size_of(old / "library.nt") == -1  # the cut part: damaged


def test_a_part_cut_short_after_listing_is_an_error_not_other_bytes(tmp_path: Path) -> None:
    whole = _write(tmp_path, PIECES)
    (tmp_path / "parts" / whole.parts[2].name).write_bytes(b"b")
    with parts.open_whole(tmp_path / "library.nt") as stream, pytest.raises(OSError):
        stream.read()


def test_a_list_naming_a_file_outside_its_parts_is_refused(tmp_path: Path) -> None:
    (tmp_path / "library.nt.parts").write_text("../secret\t3\t0\n")
    with pytest.raises(OSError):
        parts.open_whole(tmp_path / "library.nt")
    assert parts.size_of(tmp_path / "library.nt") == -1
