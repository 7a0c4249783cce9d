"""The related entries as a linkset (VoID §5): a dump of their own, in the store beside the
library, and described in VoID and DCAT (graph/describe.py Linkset).

Each link of enrich.sqlite (graph/enrich/related.py) is one `kgpub:related` triple, and its
closeness a statement about that triple (RDF 1.1 Semantics §D.1, reification): a node named
in the entry's IRI space, `<entry>#related-<target's identifier>`, with rdf:subject,
rdf:predicate, rdf:object and `kgpub:score` (xsd:decimal, 3 places):

  <a> kgpub:related <b> .
  <a#related-b> rdf:subject <a> ; rdf:predicate kgpub:related ; rdf:object <b> ;
      kgpub:score "0.812"^^xsd:decimal .

Written as N-Triples (and its gzip) in the order of enrich.sqlite (IRI, then rank): the same
links give the same bytes. Reads only SQLite: no numpy, no model.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from isal import igzip

from graph.describe import DumpFile
from graph.errors import PublicationError
from graph.formats import GZIP_SUFFIX, NTRIPLES
from graph.iris import Iris
from graph.namespaces import KGPUB, RDF, XSD

NAME = "related"  # dumps/related.nt and dumps/related.nt.gz
LABEL = "Related entries (linkset) N-Triples"
GZIP_LEVEL = 2  # ISA-L's (write_linkset)

_RELATED = f"<{KGPUB.related}>"
_SCORE = f"<{KGPUB.score}>"
_SUBJECT = f"<{RDF.subject}>"
_PREDICATE = f"<{RDF.predicate}>"
_OBJECT = f"<{RDF.object}>"
_DECIMAL = f"<{XSD.decimal}>"


@dataclass(frozen=True)
class Written:
    """The linkset a build wrote: its dump files, its N-Triples and how many links."""

    files: tuple[DumpFile, ...]
    ntriples: bytes
    links: int


def linkset_ntriples(enrich_file: Path, iris: Iris) -> tuple[bytes, int]:
    """The links of a release's enrich.sqlite as N-Triples, and how many links."""
    try:
        db = sqlite3.connect(enrich_file.resolve().as_uri() + "?mode=ro", uri=True)
        try:
            rows = db.execute(
                "SELECT iri, target, score FROM related ORDER BY iri, rank"
            ).fetchall()
        finally:
            db.close()
    except sqlite3.Error as exc:
        raise PublicationError(f"{enrich_file}: cannot read related entries: {exc}") from exc
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


def spliced_ntriples(
    old: bytes, enrich_file: Path, iris: Iris, changed: Sequence[str]
) -> tuple[bytes, int]:
    """The links of enrich_file as N-Triples, made from the previous release's (old, the
    N-Triples of its file) where only the links of the `changed` entries differ: each
    changed entry's block of lines (its links' five lines each, IRI order as
    linkset_ntriples) replaced by its new one. The same bytes as linkset_ntriples."""
    try:
        db = sqlite3.connect(enrich_file.resolve().as_uri() + "?mode=ro", uri=True)
        try:
            links = int(db.execute("SELECT count(*) FROM related").fetchone()[0])
            blocks = [
                db.execute(
                    "SELECT iri, target, score FROM related WHERE iri = ? ORDER BY rank", (iri,)
                ).fetchall()
                for iri in sorted(changed)
            ]
        finally:
            db.close()
    except sqlite3.Error as exc:
        raise PublicationError(f"{enrich_file}: cannot read related entries: {exc}") from exc
    pieces: list[bytes | memoryview] = []
    kept = memoryview(old)  # the unchanged spans joined without a copy of each first
    at = 0
    for iri, rows in zip(sorted(changed), blocks, strict=True):
        key = iri.encode("utf-8")
        start = _first_line(old, key, at)
        end = start
        while end < len(old) and _entry_of(old, end)[0] == key:
            end = old.index(b"\n", end) + 1
        pieces += [kept[at:start], _lines(rows, iris)]
        at = end
    pieces.append(kept[at:])
    return b"".join(pieces), links


def _entry_of(data: bytes, start: int) -> tuple[bytes, int]:
    """The entry IRI a line of the linkset is about (the subject, without its #related-
    fragment), and where the line ends."""
    close = data.index(b">", start)
    subject = data[start + 1 : close]
    cut = subject.rfind(b"#related-")
    return (subject if cut < 0 else subject[:cut]), close


def _first_line(data: bytes, key: bytes, low: int) -> int:
    """The start of the first line at or after low (a line start) whose entry is not
    before key (a binary search over the lines, which are in entry order)."""
    high = len(data)
    while low < high:
        mid = (low + high) // 2
        line = data.rfind(b"\n", low, mid) + 1 if mid > low else low
        line = max(line, low)
        if _entry_of(data, line)[0] < key:
            low = data.index(b"\n", line) + 1
        else:
            high = line
    return low


def write_linkset(
    work: Path,
    iris: Iris,
    enrich_file: Path,
    previous: Path | None = None,
    changed: Sequence[str] | None = None,
) -> Written:
    """Write work/dumps/related.nt and its gzip from enrich_file; with changed (the entries
    whose links differ from the previous release's), from the previous release's files:
    hard-linked when none changed, else its N-Triples spliced (spliced_ntriples)."""
    old = previous_ntriples(previous) if changed is not None else b""
    if changed is not None and old and not changed:
        return _link_previous(work, previous, old, enrich_file)
    if changed is not None and old:
        data, links = spliced_ntriples(old, enrich_file, iris, changed)
    else:
        data, links = linkset_ntriples(enrich_file, iris)
    folder = work / "dumps"
    folder.mkdir(exist_ok=True)
    plain = folder / (NAME + NTRIPLES.suffix)
    packed = folder / (NAME + NTRIPLES.suffix + GZIP_SUFFIX)
    # mtime=0: the same links give the same gzip bytes (RFC 1952 §2.3.1, MTIME 0: none).
    # ISA-L's deflate (isal, as graph/dumps.py) at its level 2: the 349 MiB of a 100k
    # linkset in 0.23 s of CPU and 19 MiB, where zlib's level 6 took 3.24 s for 14 MiB (and
    # ISA-L's 3, the dumps' level, 1.54 s for 21 MiB: this text repeats itself).
    gz = igzip.compress(data, GZIP_LEVEL, mtime=0)
    try:
        plain.write_bytes(data)
        packed.write_bytes(gz)
    except OSError as exc:
        raise PublicationError(f"{folder}: cannot write the related entries: {exc}") from exc
    files = (
        DumpFile(plain.name, NTRIPLES.media_type, LABEL, len(data), _sha(data), False),
        DumpFile(packed.name, NTRIPLES.media_type, LABEL, len(gz), _sha(gz), True),
    )
    return Written(files, data, links)


def _link_previous(work: Path, previous: Path | None, data: bytes, enrich_file: Path) -> Written:
    """The previous release's linkset, hard-linked (the same links: a release never changes
    its files)."""
    assert previous is not None
    folder = work / "dumps"
    folder.mkdir(exist_ok=True)
    plain = NAME + NTRIPLES.suffix
    packed = plain + GZIP_SUFFIX
    try:
        for name in (plain, packed):
            (folder / name).unlink(missing_ok=True)
            os.link(previous / "dumps" / name, folder / name)
        gz = (folder / packed).read_bytes()
        db = sqlite3.connect(enrich_file.resolve().as_uri() + "?mode=ro", uri=True)
        try:
            links = int(db.execute("SELECT count(*) FROM related").fetchone()[0])
        finally:
            db.close()
    except (OSError, sqlite3.Error) as exc:
        raise PublicationError(f"{folder}: cannot link the related entries: {exc}") from exc
    files = (
        DumpFile(plain, NTRIPLES.media_type, LABEL, len(data), _sha(data), False),
        DumpFile(packed, NTRIPLES.media_type, LABEL, len(gz), _sha(gz), True),
    )
    return Written(files, data, links)


def previous_ntriples(release: Path | None) -> bytes:
    """The linkset the previous release published (b"" for none): what its store holds
    beside the library, for a store copied from it to drop."""
    if release is None:
        return b""
    try:
        return (release / "dumps" / (NAME + NTRIPLES.suffix)).read_bytes()
    except OSError:
        return b""


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
