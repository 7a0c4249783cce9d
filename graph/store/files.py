"""An embedded release's entries read from its files, not from its store: what keeps a web
worker's memory the same whatever the size of the library.

RocksDB (under pyoxigraph, which offers no setting for it) keeps the blocks and block indexes
of what a process has read in caches of its own: reading the titles of 10k entries spread over
a 1M-entry store took a process from 36 to 152 MiB of anonymous memory, and an hour of mixed
traffic left each web worker at 527 MiB (bench/million.py --soak). A web worker does not
open the store at all for the pages (the query children do, for SPARQL): an entry, the most
read resource, and the members a list page shows are read here instead, from files whose bytes
stay in the page cache the OS shares between processes, and the few other resources from a
small file each process holds:

  an entry's triples      its lines of the N-Triples dump (dumps/library.nt.parts). Each month
                          of entries is one part in subject order (graph/convert.py sorts a
                          month's entries by IRI, graph/dumps.py writes a part per month, in
                          order), so a binary search by pread finds them: ~15 reads of 1 KiB.
  a member's title and    the index's records (graph/ledger.py: title and created as in the
  Added time              data), one query for a page of members; from the entries' lines for
                          a release whose index has no records.

  the library, scheme,    CONTEXT_FILE, held by each process in an in-memory Oxigraph store
  categories, publishers  (read_context): so a web worker never opens the release's RocksDB
                          store (the query children do), whose caches start at 12 MiB at 1M
                          entries (4 at 10k) when it is opened.

All are what the store was loaded from, and the triples go through an in-memory Oxigraph
store on their way out, which gives their literals back as the store does: a description is
the same triples (tests/test_store_files.py compares every resource both ways).
"""

from __future__ import annotations

import os
import threading
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from pathlib import Path

import pyoxigraph
from pyoxigraph import Literal, NamedNode, Quad, RdfFormat, Triple

from graph import parts
from graph.index import Index, listed
from graph.iris import Iris
from graph.namespaces import DCTERMS, RDF, XSD

_TITLE = NamedNode(str(DCTERMS.title))
_CREATED = NamedNode(str(DCTERMS.created))
_DATETIME = NamedNode(str(XSD.dateTime))
_TEXT = (NamedNode(str(XSD.string)), NamedNode(str(RDF.langString)))  # kept as they are
_PROBE = 1024  # bytes read to find the line at a position of a part
_SCAN = 32 << 10  # bytes read at a time from the first line of an entry on
_WINDOW = 16 << 10  # the binary search stops when this few bytes are left: scanned instead


# The release's triples that are neither an entry's own nor a link to an entry (the library
# but its dcterms:hasPart, the scheme, its concepts, the publishers): written by the build
# (graph/publication.py), a few KiB whatever the size of the library.
CONTEXT_FILE = "context.nt"


def read_context(release: Path) -> pyoxigraph.Store | None:
    """The release's context (CONTEXT_FILE) in an in-memory Oxigraph store; None for a
    release built without the file or one that cannot be read (the store answers)."""
    try:
        data = (release / CONTEXT_FILE).read_bytes()
        store = pyoxigraph.Store()
        store.load(data, format=RdfFormat.N_TRIPLES)
    except (OSError, SyntaxError, ValueError):
        return None
    return store


class EntryFiles:
    """The entries of one release, read from its N-Triples dump and its index; thread-safe.
    A part is opened for each lookup (10 us): a descriptor kept open would outlive the
    release, or be closed under a reader of another thread."""

    def __init__(self, dump: Path, iris: Iris, index: Index | None = None) -> None:
        self.dump, self.index = dump, index
        self._prefix = iris.entry_prefix
        self._key_prefix = b"<" + self._prefix.encode("utf-8")
        self._parts: tuple[list[bytes], list[tuple[str, int]]] | None = None
        self._lock = threading.Lock()

    @classmethod
    def of(cls, dump: Path, iris: Iris, index: Index | None = None) -> EntryFiles | None:
        """The entries of the release whose N-Triples dump is dump; None when it has no list
        of parts (a release built before them: its entries are read from the store)."""
        return cls(dump, iris, index) if parts.is_parts(dump) else None

    def answers(self, iri: str) -> bool:
        """Whether the files are where iri's description is: an entry IRI (no fragment: the
        store's linkset names statements <entry>#related-...), when the dump's parts can be
        read (else the store answers)."""
        return iri.startswith(self._prefix) and "#" not in iri and bool(self._entry_parts()[0])

    def lines(self, iri: str) -> bytes:
        """The N-Triples lines whose subject is iri (b'' for an entry the release lacks)."""
        try:
            key = b"<" + iri.encode("utf-8") + b">"
        except UnicodeEncodeError:  # a lone surrogate from a request path: no such entry
            return b""
        firsts, parts_of = self._entry_parts()
        n = bisect_right(firsts, key) - 1
        if n < 0:
            return b""
        path, size = parts_of[n]
        fd = os.open(path, os.O_RDONLY)
        try:
            return _lines_of(fd, size, key)
        finally:
            os.close(fd)

    def triples(self, iri: str) -> list[Triple]:
        """The triples with iri as subject ([] for an entry the release lacks)."""
        found = self.lines(iri)
        if not found:
            return []
        return _as_stored(pyoxigraph.parse(found, RdfFormat.N_TRIPLES))

    def titles_and_times(self, entries: Sequence[str]) -> list[Triple]:
        """dcterms:title and dcterms:created of each entry (what a list shows of a member),
        in the order given."""
        if self.index is not None and self.index.has_records():
            out: list[Quad] = []
            for row in listed(self.index, entries, self._prefix):
                node = NamedNode(row.iri)
                out.append(Quad(node, _TITLE, Literal(row.title, language="en")))
                out.append(Quad(node, _CREATED, Literal(row.created, datatype=_DATETIME)))
            return _as_stored(out)
        return [
            t
            for iri in entries
            for t in self.triples(iri)
            if t.predicate == _TITLE or t.predicate == _CREATED
        ]

    def close(self) -> None:
        """Forget the parts (read again on the next lookup)."""
        self._parts = None

    def _entry_parts(self) -> tuple[list[bytes], list[tuple[str, int]]]:
        """The parts that hold entries, by their first subject: (first subjects, sorted;
        (path, size) of each)."""
        found = self._parts
        if found is None:
            with self._lock:
                if self._parts is None:
                    self._parts = self._open_parts()
                found = self._parts
        return found

    def _open_parts(self) -> tuple[list[bytes], list[tuple[str, int]]]:
        """Read from the dump's list of parts and each part's first line; none when they
        cannot be read (a damaged release: `kgpub check` says which file)."""
        folder = self.dump.parent / parts.FOLDER
        found: list[tuple[bytes, str, int]] = []
        try:
            for part in parts.read_parts(self.dump):
                path = str(folder / part.name)
                with open(path, "rb") as file:
                    head = file.read(_PROBE)
                if head.startswith(self._key_prefix) and b" " in head:
                    found.append((head[: head.index(b" ")], path, part.size))
        except (OSError, ValueError):
            return [], []
        found.sort()
        return [first for first, _, _ in found], [(path, size) for _, path, size in found]


def _as_stored(quads: Iterable[Quad]) -> list[Triple]:
    """The triples as the store gives them back: Oxigraph keeps the value of a typed literal,
    not its text (a dateTime's "+00:00" comes back "Z"), so those go through an in-memory
    store (3 us for one)."""
    out: list[Triple] = []
    typed = pyoxigraph.Store()
    for quad in quads:
        value = quad.object
        if isinstance(value, Literal) and value.datatype not in _TEXT:
            typed.add(quad)
        else:
            out.append(quad.triple)
    out.extend(q.triple for q in typed)
    return out


def _lines_of(fd: int, size: int, key: bytes) -> bytes:
    """The lines of a part (subject-ordered N-Triples) whose subject is key."""
    lo, hi = 0, size  # lo: a line start, every line before it is about a smaller subject
    while hi - lo > _WINDOW:
        mid = (lo + hi) // 2
        start, subject = _line_at(fd, mid, hi)
        if subject is None:  # no line starts in [mid, hi): a long line, scan from lo
            return _scanned(fd, size, lo, key)
        if subject >= key:
            hi = start
        else:
            lo = start
    # The first line about key or a greater subject starts in [lo, hi], so in this block.
    block = os.pread(fd, _SCAN, lo)
    head = key + b" "
    if block.startswith(head):
        first = 0
    else:
        first = block.find(b"\n" + head) + 1  # a line start: N-Triples has no raw newline
        if first == 0:
            return b""
    end = first
    while block.startswith(head, end):
        newline = block.find(b"\n", end)
        if newline < 0:  # its lines go on past the block
            return _scanned(fd, size, lo, key)
        end = newline + 1
    if end == len(block) and lo + end < size:  # and may go on in the next
        return _scanned(fd, size, lo, key)
    return block[first:end]


def _scanned(fd: int, size: int, at: int, key: bytes) -> bytes:
    """The lines about key, line by line from at (a line start before them)."""
    out: list[bytes] = []
    rest = b""
    while True:
        block = os.pread(fd, _SCAN, at) if at < size else b""
        at += len(block)
        rest += block
        # Whole lines only (a line ends with its "\n", N-Triples §7), but at the end.
        end = rest.rfind(b"\n") + 1 if block else len(rest)
        for line in rest[:end].split(b"\n"):
            subject = line[: line.find(b" ")]
            if subject == key:
                out.append(line + b"\n")
            elif subject > key:
                return b"".join(out)
        rest = rest[end:]
        if not block:
            return b"".join(out)


def _line_at(fd: int, pos: int, limit: int) -> tuple[int, bytes | None]:
    """The start and subject of the first line that starts at pos or after, before limit
    (None when none does)."""
    while pos < limit:
        block = os.pread(fd, _PROBE, pos - 1)
        newline = block.find(b"\n")
        if newline < 0:
            if not block:
                return limit, None
            pos += len(block)
            continue
        start = pos + newline
        if start >= limit:
            return limit, None
        space = block.find(b" ", newline + 1)
        if space > 0:  # the subject is in the block read
            return start, block[newline + 1 : space]
        head = os.pread(fd, _PROBE, start)
        space = head.find(b" ")
        return start, head[:space] if space > 0 else head
    return limit, None
