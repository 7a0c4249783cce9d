"""The related entries as a linkset (VoID §5): a dump of their own, in the store beside the
library, and described in VoID and DCAT (graph/describe.py Linkset).

Each link of enrich.sqlite (graph/enrich/related.py) is one `kgpub:related` triple, and its
closeness a statement about that triple (RDF 1.1 Semantics §D.1, reification): a node named
in the entry's IRI space, `<entry>#related-<target's identifier>`, with rdf:subject,
rdf:predicate, rdf:object and `kgpub:score` (xsd:decimal, 3 places):

  <a> kgpub:related <b> .
  <a#related-b> rdf:subject <a> ; rdf:predicate kgpub:related ; rdf:object <b> ;
      kgpub:score "0.812"^^xsd:decimal .

Written as N-Triples (and its gzip) in the order of the related rows (IRI, then rank): the same
links give the same bytes. Each file is made of parts (graph/parts.py), as the library's
dumps are: the links of the entries of one month (the 'YYYY-MM' their IRIs open with) are
one part of dumps/related.nt, `parts/related-<month>-<SHA-256 of its bytes>.nt`, and that
part deflated alone (ended by a sync flush, RFC 1951 §3.2.3) one of the .gz's one gzip member
(`<that name>.deflate`, between a header part and a trailer part: RFC 1952 §2.3), as
graph/dumps.py writes its .gz. A rebuild that knows which entries' links changed hard-links
the other months' parts (at 100k generated entries, 744 MiB of N-Triples in 108 parts) and
writes the changed months' as the previous parts with those entries' lines replaced; a store
copied from the previous release's takes only the lines that went and came (store_links).
Reads only SQLite: no numpy, no model.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
import struct
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from isal import isal_zlib

from graph import parts
from graph.describe import DumpFile
from graph.enrich.read import FOLDER, connect, read_parts
from graph.errors import PublicationError
from graph.formats import GZIP_SUFFIX, NTRIPLES
from graph.iris import Iris
from graph.namespaces import KGPUB, RDF, XSD
from graph.store import Links

NAME = "related"  # dumps/related.nt and dumps/related.nt.gz
LABEL = "Related entries (linkset) N-Triples"
# ISA-L's deflate (isal, as graph/dumps.py) at its level 2: the 349 MiB of a 100k linkset in
# 0.23 s of CPU and 19 MiB, where zlib's level 6 took 3.24 s for 14 MiB (and ISA-L's 3, the
# dumps' level, 1.54 s for 21 MiB: this text repeats itself).
GZIP_LEVEL = 2
DEFLATED = ".deflate"  # a part of the .gz: raw deflate (RFC 1951)
MONTH_CHARS = len("YYYY-MM")
_MONTH = re.compile(r"[0-9]{4}-[0-9]{2}")
_PART = re.compile(rf"{NAME}-([0-9]{{4}}-[0-9]{{2}}|x[0-9a-f]*)-[0-9a-f]{{64}}\.nt")
# gzip member header: no name, mtime 0 (none: the same links give the same bytes), no extra
# flags, OS unknown (RFC 1952 §2.3, §2.3.1)
_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"

_RELATED = f"<{KGPUB.related}>"
_SCORE = f"<{KGPUB.score}>"
_SUBJECT = f"<{RDF.subject}>"
_PREDICATE = f"<{RDF.predicate}>"
_OBJECT = f"<{RDF.object}>"
_DECIMAL = f"<{XSD.decimal}>"


@dataclass(frozen=True)
class Written:
    """The linkset a build wrote: its dump files, how many links, and the part of each month's
    links in dumps/parts/ (the N-Triples')."""

    files: tuple[DumpFile, ...]
    links: int
    months: Mapping[str, parts.Part]
    # The lines removed from and added to the linkset of `against` (the previous release),
    # when the changed entries' lines were spliced into its parts; else None.
    changes: tuple[bytes, bytes] | None = None
    against: Path | None = None


def linkset_ntriples(enrich_file: Path, iris: Iris) -> tuple[bytes, int]:
    """The links of a release's enrichment (enrich_file and its months' parts) as N-Triples,
    and how many links."""
    with _Source(enrich_file, iris) as source:
        rows = [row for month in source.months() for row in source.month_rows(month)]
    return _lines(rows, iris), len(rows)


def _lines(rows: Iterable[tuple[str, str, float]], iris: Iris) -> bytes:
    """The N-Triples of links (entry, target, score), in their order."""
    lines: list[str] = []
    for iri, target, score in rows:
        a, b = f"<{iri}>", f"<{target}>"
        link = f"<{iris.related_link(iri, target)}>"
        lines += [
            f"{a} {_RELATED} {b} .\n",
            f"{link} {_SUBJECT} {a} .\n",
            f"{link} {_PREDICATE} {_RELATED} .\n",
            f"{link} {_OBJECT} {b} .\n",
            f'{link} {_SCORE} "{float(score):.3f}"^^{_DECIMAL} .\n',
        ]
    return "".join(lines).encode("utf-8")


_Row = tuple[str, str, float]


class _Source:
    """The related rows of a release's enrichment (graph/enrich/read.py): its months' parts,
    or its one file (built before them), open read-only while in a with block; errors as
    PublicationError."""

    def __init__(self, enrich_file: Path, iris: Iris) -> None:
        self.path = enrich_file
        self.iris = iris
        self.open: dict[Path, sqlite3.Connection] = {}
        try:
            listed = read_parts(enrich_file)
        except sqlite3.Error as exc:
            raise PublicationError(f"{enrich_file}: cannot read related entries: {exc}") from exc
        folder = enrich_file.with_name(FOLDER)
        self.parts = None if listed is None else {p.month: folder / p.db for p in listed}

    def __enter__(self) -> _Source:
        return self

    def __exit__(self, *_: object) -> None:
        for db in self.open.values():
            db.close()

    def _rows(self, path: Path, sql: str, *args: object) -> list[tuple[Any, ...]]:
        try:
            db = self.open.get(path)
            if db is None:
                db = self.open[path] = connect(path)
            return db.execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise PublicationError(f"{path}: cannot read related entries: {exc}") from exc

    def count(self) -> int:
        """How many links."""
        files = [self.path] if self.parts is None else list(self.parts.values())
        return sum(int(self._rows(f, "SELECT count(*) FROM related")[0][0]) for f in files)

    def months(self) -> list[str]:
        """The months that have links, in order."""
        if self.parts is None:
            found = self._rows(self.path, "SELECT DISTINCT iri FROM related")
            return sorted({month_of(str(iri), self.iris) for (iri,) in found})
        return [m for m, f in sorted(self.parts.items()) if self._rows(f, _ANY)]

    def month_rows(self, month: str) -> list[_Row]:
        """One month's links (entry, target, score), in the order of linkset_ntriples."""
        if self.parts is not None:
            path = self.parts.get(month)
            return [] if path is None else self._rows(path, f"{_ROWS} ORDER BY iri, rank")
        low = self.iris.entry_prefix + month
        # Every IRI of the month starts with low: the range up to low's last character plus one.
        high = low[:-1] + chr(ord(low[-1]) + 1)
        rows = self._rows(
            self.path, f"{_ROWS} WHERE iri >= ? AND iri < ? ORDER BY iri, rank", low, high
        )
        return [r for r in rows if month_of(r[0], self.iris) == month]

    def rows_of(self, iri: str) -> list[_Row]:
        """One entry's links, closest first."""
        path = self.path
        if self.parts is not None:
            found = self.parts.get(month_of(iri, self.iris))
            if found is None:
                return []
            path = found
        return self._rows(path, f"{_ROWS} WHERE iri = ? ORDER BY rank", iri)


_ROWS = "SELECT iri, target, score FROM related"
_ANY = "SELECT 1 FROM related LIMIT 1"


def month_of(iri: str, iris: Iris) -> str:
    """The month an entry's links are filed under: the 'YYYY-MM' its IRI opens with
    (iris.entry), else (never minted so) the 7 characters after 'entry/'. Sorted, the
    months' links are in IRI order: each month is a prefix of one length of its IRIs."""
    return iri[len(iris.entry_prefix) :][:MONTH_CHARS]


def month_tag(month: str) -> str:
    """A month as it is named in its parts' names: itself when it is 'YYYY-MM', else 'x'
    and its UTF-8 in hex (a part's name holds no '/' nor a leading '.')."""
    return month if _MONTH.fullmatch(month) else "x" + month.encode("utf-8").hex()


def _part_name(month: str, data: bytes) -> str:
    """The name of a month's part of related.nt: the month and the SHA-256 of its bytes."""
    return f"{NAME}-{month_tag(month)}-{hashlib.sha256(data).hexdigest()}{NTRIPLES.suffix}"


def _deflated_name(plain: str) -> str:
    """The name of the .gz's part made from a part of related.nt (graph/dumps.py part_name)."""
    return plain + DEFLATED


def _deflate(data: bytes) -> bytes:
    """data deflated alone and ended by a sync flush: a part of the .gz's one deflate stream
    (as graph/dumps.py _deflate, at GZIP_LEVEL)."""
    packer = isal_zlib.compressobj(GZIP_LEVEL, isal_zlib.DEFLATED, -zlib.MAX_WBITS)
    return bytes(packer.compress(data) + packer.flush(isal_zlib.Z_SYNC_FLUSH))


def _entry_of(data: bytes, start: int) -> bytes:
    """The entry IRI the line at start is about: its subject, without a #related- fragment."""
    subject = data[start + 1 : data.index(b">", start)]
    cut = subject.rfind(b"#related-")
    return subject if cut < 0 else subject[:cut]


def _first_line(data: bytes, key: bytes, low: int) -> int:
    """The start of the first line at or after low (a line start) whose entry is not before
    key: a binary search over the lines, which are in entry order."""
    high = len(data)
    while low < high:
        mid = (low + high) // 2
        line = max(data.rfind(b"\n", low, mid) + 1 if mid > low else low, low)
        if _entry_of(data, line) < key:
            low = data.index(b"\n", line) + 1
        else:
            high = line
    return low


def _splice(
    old: bytes, blocks: Sequence[tuple[str, bytes]], removed: set[bytes], added: set[bytes]
) -> bytes:
    """A month's N-Triples (old) with the lines of some of its entries replaced by their new
    ones (blocks: entry IRI and its lines, in IRI order); the lines that go and come are
    added to removed and added."""
    pieces: list[bytes | memoryview] = []
    kept = memoryview(old)  # the unchanged spans joined without a copy of each first
    at = 0
    for iri, lines in blocks:
        key = iri.encode("utf-8")
        start = end = _first_line(old, key, at)
        while end < len(old) and _entry_of(old, end) == key:
            end = old.index(b"\n", end) + 1
        before, after = set(old[start:end].splitlines()), set(lines.splitlines())
        removed |= before - after
        added |= after - before
        pieces += [kept[at:start], lines]
        at = end
    pieces.append(kept[at:])
    return b"".join(pieces)


@dataclass(frozen=True)
class _Listed:
    """A release's linkset as its lists name it: the parts of related.nt by month, those of
    related.nt.gz by name, and its dumps folder. Empty for a release without a linkset, or
    with one plain file (before 2026-12-03), or whose lists cannot be read."""

    folder: Path
    months: dict[str, parts.Part]
    deflated: dict[str, parts.Part]
    plain: bool = False  # the linkset is one plain file (written before its parts)

    @classmethod
    def read(cls, release: Path | None) -> _Listed:
        if release is None:
            return cls(Path(), {}, {})
        folder = release / "dumps"
        path = folder / (NAME + NTRIPLES.suffix)
        try:
            listed = parts.read_parts(path)
        except (OSError, ValueError):
            return cls(folder, {}, {}, path.is_file())
        try:
            deflated = parts.read_parts(path.with_name(path.name + GZIP_SUFFIX))
        except (OSError, ValueError):
            deflated = []  # each month's made again from its N-Triples
        months = {}
        for part in listed:
            match = _PART.fullmatch(part.name)
            if match is None:
                return cls(folder, {}, {})
            tag = match[1]
            months[tag if not tag.startswith("x") else bytes.fromhex(tag[1:]).decode()] = part
        return cls(folder, months, {p.name: p for p in deflated})


def write_linkset(
    work: Path,
    iris: Iris,
    enrich_file: Path,
    previous: Path | None = None,
    changed: Sequence[str] | None = None,
) -> Written:
    """Write work/dumps/related.nt and its gzip, files of parts (graph/parts.py), a part per
    month of links, from enrich_file, hard-linking the previous release's parts that have the
    same bytes (a release never changes a part). With changed (the entries whose links
    differ from the previous release's), only the changed entries' links are read from
    enrich_file: their months' parts are the previous ones with their lines replaced, the
    other months' are the previous parts. The same links give the same bytes, whichever
    way."""
    old = _Listed.read(previous)
    folder = work / "dumps"
    plain = folder / (NAME + NTRIPLES.suffix)
    packed = plain.with_name(plain.name + GZIP_SUFFIX)
    removed: set[bytes] = set()
    added: set[bytes] = set()
    splicing = changed is not None and bool(old.months)
    known = splicing  # the store's changes: the lines spliced out and in
    try:
        folder.mkdir(exist_ok=True)
        shared = old.folder if old.months else None  # not hashed again (graph/parts.py)
        plain_out, gz_out = parts.Writer(plain, shared), parts.Writer(packed, shared)
        gz_out.write(_GZIP_HEADER)
        months: dict[str, parts.Part] = {}
        with _Source(enrich_file, iris) as source:
            links = source.count()
            blocks: dict[str, list[tuple[str, bytes]]] = {}
            if changed is not None and splicing:
                for iri in sorted(changed):
                    rows = source.rows_of(iri)
                    blocks.setdefault(month_of(iri, iris), []).append((iri, _lines(rows, iris)))
                wanted = sorted(set(old.months) | set(blocks))
            else:
                wanted = source.months()
            for month in wanted:
                was = old.months.get(month)
                data = None
                if month in blocks:
                    before = parts.read_part(old.folder, was) if was is not None else b""
                    if before is None:  # damaged: made again, and the store's changes unknown
                        known = False
                        data = _lines(source.month_rows(month), iris)
                    else:
                        data = _splice(before, blocks[month], removed, added)
                elif not splicing or was is None:
                    data = _lines(source.month_rows(month), iris)
                if data is not None and (was is None or was.name != _part_name(month, data)):
                    part = plain_out.write(data, _part_name(month, data))
                    if part is not None:  # else no links this month
                        gz_out.write(_deflate(data), _deflated_name(part.name))
                        months[month] = part
                    continue
                assert was is not None
                part = plain_out.link(old.folder, was)
                if part is None:  # damaged: made again
                    data = _lines(source.month_rows(month), iris)
                    part = plain_out.write(data, _part_name(month, data))
                    if part is None:
                        continue
                months[month] = part
                gz_part = old.deflated.get(_deflated_name(part.name))
                if gz_part is None or gz_out.link(old.folder, gz_part) is None:
                    data = data if data is not None else parts.read_part(folder, part)
                    assert data is not None  # written or linked: checked as it was read
                    gz_out.write(_deflate(data), _deflated_name(part.name))
        # RFC 1952 §2.2: the deflate stream ended by an empty final block, then the CRC-32
        # and size (mod 2^32) of the whole N-Triples.
        final = zlib.compressobj(1, zlib.DEFLATED, -zlib.MAX_WBITS).flush()
        gz_out.write(final + struct.pack("<II", plain_out.crc, plain_out.size & 0xFFFFFFFF))
        whole, gz = plain_out.finish(), gz_out.finish()
    except OSError as exc:
        raise PublicationError(f"{folder}: cannot write the related entries: {exc}") from exc
    files = (
        DumpFile(plain.name, NTRIPLES.media_type, LABEL, whole.size, whole.sha256, False),
        DumpFile(packed.name, NTRIPLES.media_type, LABEL, gz.size, gz.sha256, True),
    )
    changes = (_joined(removed), _joined(added)) if known else None
    return Written(files, links, months, changes, previous if known else None)


def store_links(work: Path, written: Written | None, previous: Path | None) -> Links:
    """The release's linkset as its store takes it (graph/store Links): whole, read from
    work's parts when asked; and the lines that differ from the previous release's linkset
    (which a store copied from that release's holds): those write_linkset replaced when it
    spliced the changed entries' lines, else those of the months whose parts differ. A
    previous linkset that cannot be read counts as none."""
    plain = work / "dumps" / (NAME + NTRIPLES.suffix)

    def whole() -> bytes:
        if written is None:
            return b""
        try:
            return parts.read_bytes(plain)
        except OSError as exc:
            raise PublicationError(f"{plain}: cannot read the related entries: {exc}") from exc

    if written is not None and written.changes is not None and written.against == previous:
        return Links(whole, *written.changes)  # spliced: the changed entries' lines
    new = dict(written.months) if written is not None else {}
    old = _Listed.read(previous)
    if old.plain:  # one plain file: every line compared
        try:
            before = {b"": (old.folder / plain.name).read_bytes()}
        except OSError:
            before = {}
        after = {b"": whole()} if written is not None else {}
        return Links(whole, *_differences(before, after))
    gone: dict[bytes, bytes] = {}
    came: dict[bytes, bytes] = {}
    for month in set(old.months) | set(new):
        was, now = old.months.get(month), new.get(month)
        if was is not None and now is not None and was.name == now.name:
            continue  # the same bytes (named by their SHA-256)
        key = month.encode("utf-8")
        if was is not None:
            gone[key] = parts.read_part(old.folder, was) or b""
        if now is not None:
            data = parts.read_part(work / "dumps", now)
            if data is None:
                raise PublicationError(f"{plain}: its part {now.name} cannot be read back")
            came[key] = data
    return Links(whole, *_differences(gone, came))


def _differences(
    before: Mapping[bytes, bytes], after: Mapping[bytes, bytes]
) -> tuple[bytes, bytes]:
    """The lines of before's months that after's do not have, and after's that before's do
    not have, each sorted (N-Triples: a line a triple)."""
    removed: set[bytes] = set()
    added: set[bytes] = set()
    for key in set(before) | set(after):
        old = set(before.get(key, b"").split(b"\n"))
        new = set(after.get(key, b"").split(b"\n"))
        removed |= old - new
        added |= new - old
    removed.discard(b"")
    added.discard(b"")
    return _joined(removed), _joined(added)


def _joined(lines: set[bytes]) -> bytes:
    return b"".join(line + b"\n" for line in sorted(lines))
