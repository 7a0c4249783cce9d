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


def _rebuild(old: Path, new: Path, pieces: list[bytes]) -> parts.Whole:
    """The whole of pieces written in new, the previous release's whole in old: each piece
    linked when old has it under the name _write gives it, else written."""
    before = {p.name: p for p in parts.read_parts(old / "library.nt")}
    writer = parts.Writer(new / "library.nt", old)
    for n, data in enumerate(pieces):
        same = n < len(PIECES) and data == PIECES[n]
        name = f"k{n}.nt" if n and same else hashlib.sha256(data).hexdigest() + ".nt"
        found = before.get(name)
        if found is None or found.size != len(data) or writer.link(old, found) is None:
            writer.write(data, name)
    return writer.finish()


@pytest.mark.parametrize(
    "changed",
    [
        {3: b"B" * 5},  # a part in the middle
        {5: b"the new footer\n"},  # the last part
        {0: b"new header\n"},  # the first: nothing to take up
        {},  # none: every part taken up, the whole's SHA-256 from the last state
    ],
    ids=["middle", "last", "first", "none"],
)
def test_a_rebuild_takes_up_the_sha256_after_the_shared_parts(
    tmp_path: Path, changed: dict[int, bytes]
) -> None:
    old, new = tmp_path / "old", tmp_path / "new"
    _write(old, PIECES)
    pieces = [changed.get(n, data) for n, data in enumerate(PIECES)]
    whole = _rebuild(old, new, pieces)
    data = b"".join(pieces)
    # What a download's checksum (DCAT, the ETag) says: the SHA-256 of the whole's bytes.
    assert (whole.sha256, whole.crc, whole.size) == (
        hashlib.sha256(data).hexdigest(),
        zlib.crc32(data),
        len(data),
    )
    assert parts.read_bytes(new / "library.nt") == data
    # The states listed are those of a whole written afresh, for the release after.
    fresh = _write(tmp_path / "fresh", pieces)
    listed = parts.read_parts(new / "library.nt")
    assert [p.state for p in listed] == [
        p.state for p in parts.read_parts(tmp_path / "fresh" / "library.nt")
    ]
    assert [p.size for p in listed] == [p.size for p in fresh.parts]
    # And the release after that one takes up from them.
    again = _rebuild(new, tmp_path / "again", [*pieces[:-1], b"footer 3\n"])
    assert again.sha256 == hashlib.sha256(b"".join(pieces[:-1]) + b"footer 3\n").hexdigest()


def test_a_list_without_states_or_with_a_garbled_one_is_hashed_in_full(tmp_path: Path) -> None:
    old, new = tmp_path / "old", tmp_path / "new"
    _write(old, PIECES)
    listed = (old / "library.nt.parts").read_text().splitlines()
    # A list from before the states (three columns), then one whose second state is garbled.
    (old / "library.nt.parts").write_text(
        "".join(line.rsplit("\t", 1)[0] + "\n" for line in listed)
    )
    pieces = [*PIECES[:-1], b"the new footer\n"]
    data = b"".join(pieces)
    assert _rebuild(old, new, pieces).sha256 == hashlib.sha256(data).hexdigest()
    garbled = [*listed[:1], listed[1].rsplit("\t", 1)[0] + "\tnot-a-state", *listed[2:]]
    (old / "library.nt.parts").write_text("".join(line + "\n" for line in garbled))
    assert _rebuild(old, tmp_path / "again", pieces).sha256 == hashlib.sha256(data).hexdigest()


def test_a_shared_part_written_to_since_it_was_listed_is_checked_and_made_again(
    tmp_path: Path,
) -> None:
    old, new = tmp_path / "old", tmp_path / "new"
    first = _write(old, PIECES)
    damaged = old / "parts" / first.parts[1].name  # a part the next release takes up after
    damaged.write_bytes(b"x" * first.parts[1].size)
    listed = (old / "library.nt.parts").stat().st_mtime_ns
    os.utime(damaged, ns=(listed + 10**9, listed + 10**9))
    whole = _rebuild(old, new, PIECES)
    data = b"".join(PIECES)
    assert whole.sha256 == hashlib.sha256(data).hexdigest()
    assert parts.read_bytes(new / "library.nt") == data
    assert (new / "parts" / first.parts[1].name).stat().st_ino != damaged.stat().st_ino


@pytest.mark.parametrize("taken", [0, 2], ids=["afresh", "after-shared-parts"])
def test_a_part_written_piece_by_piece_is_the_part_written_whole(
    tmp_path: Path, taken: int
) -> None:
    """Writer.open (a big chunk of a dump, graph/dumps.py): the same part, list and whole
    as write gives, also after parts whose SHA-256 is taken up from the previous release;
    an empty one adds nothing, and one abandoned by an error leaves no file behind."""
    old, new = tmp_path / "old", tmp_path / "new"
    first = _write(old, PIECES)
    writer = parts.Writer(new / "library.nt", old)
    for part in first.parts[:taken]:
        assert writer.link(old, part) == part
    big = PIECES[3]  # b"c" * 131_072, as three pieces and an empty one
    with writer.open("k4.nt") as piecewise:
        for piece in (big[:1000], big[1000:70_000], b"", big[70_000:]):
            piecewise.write(piece)
    with writer.open("empty.nt") as nothing:
        nothing.write(b"")
    writer.write(PIECES[-1], "k5.nt")
    whole = writer.finish()
    data = b"".join(PIECES[:taken]) + big + PIECES[-1]
    assert parts.read_bytes(new / "library.nt") == data
    assert (whole.sha256, whole.crc, whole.size) == (
        hashlib.sha256(data).hexdigest(),
        zlib.crc32(data),
        len(data),
    )
    written = parts.read_parts(new / "library.nt")[-2]
    assert (written.name, written.size, written.crc) == ("k4.nt", len(big), zlib.crc32(big))
    assert sorted(p.name for p in (new / "parts").iterdir()) == sorted(
        {p.name for p in whole.parts}
    )
    failed = parts.Writer(tmp_path / "failed" / "library.nt")
    with pytest.raises(OSError), failed.open("broken.nt") as broken:
        broken.write(b"half")
        raise OSError("the serializer failed")
    assert list((tmp_path / "failed" / "parts").iterdir()) == []


@pytest.mark.parametrize("resumable", [True, False], ids=["resumable", "hashlib"])
def test_a_part_found_damaged_while_it_is_hashed_leaves_the_whole_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, resumable: bool
) -> None:
    """A linked part longer than a block is read, checked and hashed a block at a time: one
    whose last block is not what its CRC-32 says (the same size: only reading finds it) is
    refused after its first blocks went into the whole's SHA-256, and the whole, its bytes
    written instead, has the SHA-256 and CRC-32 of its bytes: after a part taken up from the
    previous release's state (the damaged one was the first hashed) or after a part of its
    own (hashing had begun); a part of one block the same."""
    if not resumable:
        monkeypatch.setattr(parts.digest, "available", lambda: False)
    monkeypatch.setattr(parts, "BLOCK_BYTES", 4096)
    pieces = [b"head\n", os.urandom(2 * 4096 + 100), os.urandom(4096), b"tail\n"]
    old, new = tmp_path / "old", tmp_path / "new"
    first = _write(old, pieces)
    for changed_first in (False, True):
        for n in (1, 2):  # blocks, then one block
            damaged = old / "parts" / first.parts[n].name
            data = bytearray(pieces[n])
            data[-1] ^= 0xFF
            damaged.write_bytes(bytes(data))
            target = new / f"{changed_first}-{n}"
            writer = parts.Writer(target / "library.nt", None if changed_first else old)
            head = b"HEAD\n" if changed_first else pieces[0]
            if changed_first:
                writer.write(head, "h.nt")
            else:
                assert writer.link(old, first.parts[0]) == first.parts[0]
            for k in range(1, len(first.parts)):
                if k != n:
                    assert writer.link(old, first.parts[k]) == first.parts[k]
                    continue
                assert writer.link(old, first.parts[k]) is None
                assert not (target / "parts" / first.parts[k].name).exists()
                writer.write(pieces[k], f"k{k}.nt")
            whole = writer.finish()
            expected = head + b"".join(pieces[1:])
            assert parts.read_bytes(target / "library.nt") == expected
            assert (whole.sha256, whole.crc, whole.size) == (
                hashlib.sha256(expected).hexdigest(),
                zlib.crc32(expected),
                len(expected),
            )
            damaged.write_bytes(pieces[n])
