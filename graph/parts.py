"""Files made of parts: a whole file is a list of immutable part files, so that a release
hard-links the parts it shares with the previous one instead of copying their bytes.

In a folder (a release's dumps/, say), the whole file NAME is:
  NAME.parts       its parts in order, one line each: ``parts/<part>\\t<size>\\t<crc32 hex>``,
                   then (when graph/digest.py can) ``\\t<SHA-256 state>``: the whole's SHA-256
                   state after this part (graph/digest.State.text), so that the next release
                   need not hash again the parts it shares with this one at the start
  parts/<part>     a part's bytes, named by what decides them (a content address), never
                   changed once written: the next release links it (os.link) when unchanged
Its bytes are the parts' concatenation: ``cd dumps && cut -f1 NAME.parts | xargs cat``.

Writer writes a whole file part by part (write; or open, for a part made piece by piece, as
the library's 173 MB of N-Triples at 1M entries, which is never whole in memory then) or links
a part of the previous release's (link: its size by a stat, its CRC-32 as its bytes pass
through memory), and hashes the whole
(SHA-256, CRC-32) as it goes; it never reads a written part back. While its parts are the
previous whole's first ones, it does not hash them: it takes up the SHA-256 from the state the
previous list holds after the last of them (a one-change rebuild hashed 670 MB of dumps again
at 100k entries, the biggest part of its CPU), and combines the CRC-32s (crc32_combine).

open_whole opens the whole as one seekable read-only stream (read, seek, tell, size), and
size_of measures it: both take a plain file of that name as well, so that a reader need not
know which one a folder holds.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import os
import shutil
import threading
from bisect import bisect_right
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Protocol, TextIO, cast

from isal import isal_zlib

from graph import digest

SUFFIX = ".parts"  # NAME.parts: the list of NAME's parts
FOLDER = "parts"  # where the parts are, beside the lists


@dataclass(frozen=True)
class Part:
    """One part of a whole file: its file name in the folder's parts/, size and CRC-32; in a
    list read back, the whole's SHA-256 state after it when the list has one (else '')."""

    name: str
    size: int
    crc: int
    state: str = field(default="", compare=False)

    def same(self, other: Part) -> bool:
        """Whether other is this part (the same name, size and CRC-32)."""
        return (self.name, self.size, self.crc) == (other.name, other.size, other.crc)


@dataclass(frozen=True)
class Whole:
    """What Writer.finish returns: the whole file's parts, size, SHA-256 (hex) and CRC-32."""

    parts: tuple[Part, ...]
    size: int
    sha256: str
    crc: int


def list_path(path: Path) -> Path:
    """The list file of the whole file path (path + '.parts')."""
    return path.with_name(path.name + SUFFIX)


def read_parts(path: Path) -> list[Part]:
    """The parts of the whole file path, in order: OSError when its list cannot be read,
    ValueError when a line is not a part's."""
    out = []
    for line in list_path(path).read_text(encoding="utf-8").splitlines():
        where, size, crc, *state = line.split("\t")
        folder, _, name = where.partition("/")
        if folder != FOLDER or not name or "/" in name or name.startswith(".") or len(state) > 1:
            raise ValueError(f"{list_path(path)}: not a part: {where!r}")
        out.append(Part(name, int(size), int(crc, 16), state[0] if state else ""))
    return out


def is_parts(path: Path) -> bool:
    """Whether the whole file path is made of parts (else it is a plain file, or absent)."""
    return list_path(path).is_file()


def size_of(path: Path) -> int:
    """The size of the whole file path as its files on disk are (a plain file's, or the sum
    of its parts' by a stat each), -1 when a file is missing or a part's size is not the
    list's (damaged)."""
    try:
        if not is_parts(path):
            return path.stat().st_size
        total = 0
        folder = path.parent / FOLDER
        for part in read_parts(path):
            if (folder / part.name).stat().st_size != part.size:
                return -1
            total += part.size
        return total
    except (OSError, ValueError):
        return -1


def open_whole(path: Path) -> BinaryIO:
    """The whole file path as one seekable read-only binary stream (a plain file, or its
    parts'; OSError when it cannot be read). A part found shorter than its list says, while
    read, is an OSError: a reader never gets other bytes than the whole's."""
    if not is_parts(path):
        return path.open("rb")
    try:
        listed = read_parts(path)
    except ValueError as exc:
        raise OSError(errno.EINVAL, str(exc)) from exc
    return cast(BinaryIO, Stream(path.parent / FOLDER, listed))


def open_text(path: Path) -> TextIO:
    """The whole file path as UTF-8 text (open_whole, buffered), to read by lines."""
    raw = open_whole(path)
    if isinstance(raw, io.RawIOBase):  # a Stream of parts (a plain file comes buffered)
        return io.TextIOWrapper(io.BufferedReader(raw), encoding="utf-8")
    return io.TextIOWrapper(raw, encoding="utf-8")


def read_bytes(path: Path) -> bytes:
    """All the bytes of the whole file path."""
    with open_whole(path) as file:
        return file.read()


def read_part(folder: Path, part: Part) -> bytes | None:
    """A part's bytes from folder (a folder of lists: its parts/ is read), or None when they
    are not all there or their CRC-32 is not the list's (damaged)."""
    try:
        data = (folder / FOLDER / part.name).read_bytes()
    except OSError:
        return None
    if len(data) != part.size or isal_zlib.crc32(data) != part.crc:
        return None
    return data


class DamagedPartError(Exception):
    """A part's bytes are not all there, or their CRC-32 is not the list's."""


def read_part_pieces(folder: Path, part: Part, size: int) -> Iterator[bytes]:
    """A part's bytes (as read_part) in pieces of whole lines, about size bytes each (a
    line longer than size in one piece). DamagedPartError, once they have all been read,
    when they are not all there or their CRC-32 is not the list's: a reader keeps nothing it
    made of them until the end."""
    crc, total, rest = 0, 0, b""
    try:
        with (folder / FOLDER / part.name).open("rb") as file:
            while data := file.read(size):
                crc, total = isal_zlib.crc32(data, crc), total + len(data)
                cut = data.rfind(b"\n") + 1
                if cut:
                    yield rest + data[:cut]
                    rest = data[cut:]
                else:
                    rest += data
    except OSError as exc:
        raise DamagedPartError(f"{part.name}: {exc}") from exc
    if rest:
        yield rest
    if total != part.size or crc != part.crc:
        raise DamagedPartError(f"{part.name}: not the bytes its list gives")


class Stream(io.RawIOBase):
    """The concatenation of parts (open_whole), read by pread from one part file open at a
    time; its size is the sum of the list's."""

    def __init__(self, folder: Path, listed: list[Part]) -> None:
        super().__init__()
        self._folder, self._parts = folder, listed
        self._starts = [0]
        for part in listed:
            self._starts.append(self._starts[-1] + part.size)
        self.size = self._starts[-1]
        self._pos = 0
        self._open: tuple[int, int] | None = None  # (part index, fd)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._pos, os.SEEK_END: self.size}[whence]
        if base + offset < 0:
            raise OSError(errno.EINVAL, "negative seek position")
        self._pos = base + offset
        return self._pos

    def read(self, size: int | None = -1) -> bytes:
        """Up to size bytes (all that is left when size is negative or None), by pread(2)
        straight into the bytes returned (readinto's way copies them once more)."""
        left = self.size - self._pos
        want = left if size is None or size < 0 else min(size, left)
        pieces = []
        while want > 0:
            n = bisect_right(self._starts, self._pos) - 1
            offset = self._pos - self._starts[n]
            data = os.pread(self._fd(n), min(want, self._parts[n].size - offset), offset)
            if not data:
                raise OSError(errno.EIO, f"{self._folder / self._parts[n].name}: cut short")
            pieces.append(data)
            self._pos += len(data)
            want -= len(data)
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        done = 0
        while done < len(view) and self._pos < self.size:
            n = bisect_right(self._starts, self._pos) - 1
            offset = self._pos - self._starts[n]
            want = min(len(view) - done, self._parts[n].size - offset)
            got = os.preadv(self._fd(n), [view[done : done + want]], offset)
            if got <= 0:
                raise OSError(errno.EIO, f"{self._folder / self._parts[n].name}: cut short")
            done += got
            self._pos += got
        return done

    def _fd(self, n: int) -> int:
        if self._open is not None and self._open[0] == n:
            return self._open[1]
        self._close_fd()
        fd = os.open(self._folder / self._parts[n].name, os.O_RDONLY | os.O_CLOEXEC)
        self._open = (n, fd)
        return fd

    def _close_fd(self) -> None:
        if self._open is not None:
            os.close(self._open[1])
            self._open = None

    def close(self) -> None:
        self._close_fd()
        super().close()


BLOCK_BYTES = 32 << 20  # a linked part is read, checked and hashed up to this much at a time
_BUFFERS = threading.local()


def read_buffer(size: int) -> memoryview:
    """size bytes of this thread's buffer (grown as needed, up to BLOCK_BYTES: the dump
    writers' threads keep theirs until they end: 64 MiB for a build's two)."""
    buffer: bytearray | None = getattr(_BUFFERS, "buffer", None)
    if buffer is None or len(buffer) < size:
        buffer = bytearray(size)
        _BUFFERS.buffer = buffer
    return memoryview(buffer)[:size]


class _Hash(Protocol):
    """A SHA-256 as the Writer uses it: hashlib's, or graph/digest.py's (with states)."""

    def update(self, data: bytes | bytearray | memoryview, /) -> None: ...

    def copy(self) -> _Hash: ...

    def hexdigest(self) -> str: ...


class Writer:
    """Writes the whole file path as parts into path's folder: each part written (write) or
    linked from a previous release's folder (link), in order; finish writes the list.

    A part is written to a temporary name and renamed into place, so that writers of other
    whole files in the same folder may write a part of the same name (the same bytes) at the
    same time. The parts this writer wrote, then the list, are synced by finish.

    previous (a folder of lists, as path's) is where the last release's whole of path's name
    is: while this whole's parts are its first ones, they are not hashed (see the module)."""

    def __init__(self, path: Path, previous: Path | None = None) -> None:
        self.path = path
        self.folder = path.parent / FOLDER
        self.folder.mkdir(parents=True, exist_ok=True)
        self.suffix = "".join(path.suffixes)
        self.size = 0
        self.crc = 0
        self._parts: list[Part] = []
        self._written: set[str] = set()
        self._linked: set[str] = set()
        self._resumable = digest.available()
        self._sha: _Hash | None = None  # None: not hashing yet
        self._after: digest.State | None = None  # the state after the parts not hashed
        self._before: list[Part] = []  # the previous whole's parts, while this one's are its
        self._previous = previous
        self._listed_ns = -1  # when the previous list was written (its parts were before)
        if self._resumable and previous is not None:
            with contextlib.suppress(OSError, ValueError):
                self._listed_ns = list_path(previous / path.name).stat().st_mtime_ns
                self._before = read_parts(previous / path.name)

    def write(self, data: bytes, name: str | None = None) -> Part | None:
        """Add data as the next part, written as parts/name (default: its SHA-256 and the
        whole's suffixes); None for empty data, which adds nothing."""
        if not data:
            return None
        if name is None:
            name = hashlib.sha256(data).hexdigest() + self.suffix
        part = Part(name, len(data), isal_zlib.crc32(data))
        if name not in self._written:
            temporary = self._temporary(name)
            with temporary.open("wb") as file:
                file.write(data)
            os.replace(temporary, self.folder / name)
            self._written.add(name)
        self._add(part, data)
        return part

    def open(self, name: str) -> PartFile:
        """The next part, parts/name, to write piece by piece (PartFile.write), added when
        it is closed, as write adds a whole part. Nothing else may be added to this whole while
        it is open: its pieces are hashed as they come."""
        return PartFile(self, name)

    def _temporary(self, name: str) -> Path:
        return self.folder / f".{name}.{os.getpid()}.{id(self)}"

    def link(self, previous: Path, part: Part) -> Part | None:
        """Add the part of that name in previous (a folder of lists, as path's) as the next
        part, hard-linked (copied when it cannot be: another file system, too many links),
        and its bytes checked against its size and CRC-32 as they are hashed; None when it is
        missing or damaged (then nothing is added: make it and write it).

        A part the previous release's state is taken up after (see the module) is not read:
        its size is checked, and that it was not written to since its list was (its mtime),
        as a release's parts are never written to once listed."""
        source, target = previous / FOLDER / part.name, self.folder / part.name
        try:
            found = source.stat()
            if found.st_size != part.size:
                return None
            taken = None
            if previous == self._previous and found.st_mtime_ns <= self._listed_ns:
                taken = self._taken(part)  # not written to since it was listed: not read
            if part.name not in self._written | self._linked:
                _link(source, target)
                self._linked.add(part.name)
            if taken is not None:
                self._take(part, taken)
                return part
            if self._add_read(part, target):
                return part
        except OSError:
            return None
        if part.name in self._linked:
            self._linked.discard(part.name)
            with contextlib.suppress(OSError):
                target.unlink()
        return None

    def _add_read(self, part: Part, path: Path) -> bool:
        """Add part, its bytes read from path into this thread's buffer (read_buffer) a block
        at a time, each checked (CRC-32) and hashed as it comes; False, adding nothing and the
        SHA-256 put back as it was, when they are not part's size and CRC-32. Read into new
        memory each (read_bytes), the 5 GB a rebuild at 1M entries hashes after its first
        changed part took 0.7-1.7 s more of CPU in page faults and their system time than
        read into memory used again."""
        taken = self._taken(part)
        had, before = self._sha, self._before
        sha = self._hash() if taken is None else None
        kept = sha.copy() if sha is not None and had is not None else None
        size = crc = 0
        view = read_buffer(min(part.size + 1, BLOCK_BYTES))  # a byte more: a longer file
        try:
            with path.open("rb", buffering=0) as file:
                while size <= part.size and (n := file.readinto(view)):
                    block = view[:n]
                    crc = isal_zlib.crc32(block, crc)
                    size += n
                    if sha is not None:
                        sha.update(block)
        except OSError:
            size = -1  # unreadable: refused as a damaged part is
        if size != part.size or crc != part.crc:
            self._sha, self._before = kept, before  # as it was before this part
            return False
        if taken is not None:
            self._take(part, taken)
        else:
            self._append(part)
        return True

    def _taken(self, part: Part) -> digest.State | None:
        """The previous whole's SHA-256 state after part when part is its next one and all
        before it were taken too (then part need not be hashed); else None."""
        n = len(self._parts)
        if self._sha is not None or n >= len(self._before) or not self._before[n].same(part):
            return None
        return digest.State.parse(self._before[n].state, self.size + part.size)

    def _take(self, part: Part, state: digest.State) -> None:
        """Add part, hashed by the previous release (state: after it)."""
        self._after = state
        self._parts.append(self._before[len(self._parts)])
        self.crc = isal_zlib.crc32_combine(self.crc, part.crc, part.size)
        self.size += part.size

    def _add(self, part: Part, data: bytes) -> None:
        taken = self._taken(part)
        if taken is not None:
            self._take(part, taken)
            return
        self._hash().update(data)
        self._append(part)

    def _hash(self) -> _Hash:
        """The whole's SHA-256, hashing every part from now on."""
        if self._sha is None:
            self._sha = self._resume()
        return self._sha

    def _append(self, part: Part) -> None:
        """Add part, whose bytes the whole's SHA-256 has just been given."""
        self.crc = isal_zlib.crc32_combine(self.crc, part.crc, part.size)
        self.size += part.size
        if isinstance(self._sha, digest.Sha256):
            part = Part(part.name, part.size, part.crc, self._sha.state().text())
        self._parts.append(part)

    def _resume(self) -> _Hash:
        """The SHA-256 after this whole's parts so far (none, or the previous whole's first
        ones: from its state after them)."""
        self._before = []
        if not self._resumable:
            return hashlib.sha256()
        if self._after is None:
            return digest.Sha256()
        return digest.Sha256.resume(self._after)

    def finish(self) -> Whole:
        """Sync the parts written, write and sync the list; the whole's description."""
        for name in sorted(self._written):
            fsync_path(self.folder / name)
        _write_list(list_path(self.path), self._parts)
        fsync_path(self.folder)
        sha = self._sha if self._sha is not None else self._resume()
        return Whole(tuple(self._parts), self.size, sha.hexdigest(), self.crc)


class PartFile:
    """A part written piece by piece (Writer.open): its bytes go to a temporary file and into
    the whole's SHA-256 as they come, its CRC-32 and size are counted; close renames it into
    place and adds it to the whole (nothing when it is empty). Leaving a with-block by an
    exception removes the temporary file and adds nothing: the whole is then unusable, its
    SHA-256 having been given the pieces, as a whole is after any failed write."""

    def __init__(self, writer: Writer, name: str) -> None:
        self._writer, self.name = writer, name
        self.size = 0
        self.crc = 0
        self._sha = writer._hash()  # the pieces are hashed as they come, never taken up
        self._temporary: Path | None = None
        self._file: BinaryIO | None = None
        if name not in writer._written:  # else the same bytes are already there
            self._temporary = writer._temporary(name)
            self._file = self._temporary.open("wb")

    def write(self, data: bytes) -> None:
        """Add data to the part."""
        if not data:
            return
        self.crc = isal_zlib.crc32(data, self.crc)
        self.size += len(data)
        self._sha.update(data)
        if self._file is not None:
            self._file.write(data)

    def close(self) -> Part | None:
        """Put the part in place and add it to the whole (None when it is empty)."""
        if self._file is not None:
            self._file.close()
        writer = self._writer
        if self.size == 0:
            self.discard()
            return None
        if self._temporary is not None:
            os.replace(self._temporary, writer.folder / self.name)
            self._temporary = None
            writer._written.add(self.name)
        part = Part(self.name, self.size, self.crc)
        writer._append(part)
        return part

    def discard(self) -> None:
        """Remove what was written of the part; it is not added."""
        if self._file is not None:
            self._file.close()
        if self._temporary is not None:
            with contextlib.suppress(OSError):
                self._temporary.unlink()
            self._temporary = None

    def __enter__(self) -> PartFile:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        if kind is None:
            self.close()
        else:
            self.discard()


def _link(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except FileExistsError:
        return  # linked by a writer of another whole file: the same part, the same bytes
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EMLINK, errno.EPERM):
            raise
        temporary = target.with_name(f".{target.name}.{os.getpid()}")
        shutil.copyfile(source, temporary)
        os.replace(temporary, target)


def _write_list(path: Path, listed: Iterable[Part]) -> None:
    text = "".join(
        f"{FOLDER}/{p.name}\t{p.size}\t{p.crc:08x}{chr(9) + p.state if p.state else ''}\n"
        for p in listed
    )
    with path.open("w", encoding="utf-8") as file:
        file.write(text)
        file.flush()
        os.fsync(file.fileno())


def fsync_path(path: Path) -> None:
    """fsync(2) a file or a folder by its path (a folder: so that its new names last)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
