"""The dumps of a release, written in stable chunks whose bytes the next build reuses.

A dump is the concatenation of chunks: a header, the library (its own lines and hasPart),
the scheme and its concepts, the entries grouped by the month of their IRI
('entry/YYYY-MM-'), a footer. Each chunk is serialized on its own (Turtle and JSON-LD
subjects never straddle two chunks, so the text equals a whole-graph serialization) and
keyed by the SHA-256 of its N-Triples, from which every format is a pure function.

Each dump is a file made of parts (graph/parts.py): dumps/library.nt.parts lists them, and
each chunk of each dump is a part of its own in dumps/parts/, named by the chunk's key and the
format's suffix (<key>.nt, and <key>.nt.deflate for its compressed form), so that a rebuild
hard-links every unchanged chunk's parts from the previous release (a release never changes a
part) and writes only the changed chunks'. The header and footer of each format, the gzip
header and trailer, are small parts named by their SHA-256.

Each .gz is one gzip member (RFC 1952) whose deflate stream is the concatenation of each
chunk compressed alone and ended by a sync flush (RFC 1951 §3.2.3: non-final blocks
byte-aligned by the empty stored block of Z_SYNC_FLUSH), then an empty final block, the
CRC-32 and size of the whole. A full build writes the same parts, so a rebuild that links
the unchanged ones gives byte-identical files. A cache (INDEX) from another kgpub version or
code, base IRI or gzip level is ignored.

A chunk longer than WHOLE pieces (the library's, 173 MB of N-Triples at 1M entries) is never
whole in memory: its N-Triples are read and parsed in pieces of whole lines, fed to one
serialization (so its bytes are those of the chunk serialized at once), whose output goes to
its parts as it comes, in blocks of BLOCK bytes, the .gz's through one deflate stream
(_Pieces). Made whole, it held several copies of its 100+ MB of RDF/XML at once: a rebuild
that adds entries at 1M entries peaked above 2 GiB.

Damage to the current release's dumps is found without hashing them whole first: a dump whose
size (the sum of its parts' on disk) is not the manifest's is not used at all, and every part
read from one (linked after a changed chunk, read as a month, or for the store's changes) is
checked against the CRC-32 its list gives as it passes through memory (ISA-L's, about 10x
SHA-256's speed); a chunk that fails is made again. A part that is not read (linked before
the first changed chunk, a month or the library taken as they are) is trusted when its size
is its list's and it was not written to since the list was (its mtime): a release never
writes to a part once listed. Each new dump is hashed whole (SHA-256, the manifest's) as
its parts are written or linked, by the thread (or process) that writes it, beside the
validation: its linked parts are read from the page cache, nothing written is read back.

The same chunks let a build reuse more of the current release (graph/publication.py):
  convert     a month whose entries' records are those of the current release's month is
              taken from its N-Triples dump, not rendered (Months; "months" in INDEX)
  validation  only the entries of new chunks, when the context and shapes are the same
              (changed_partition)
  history     only the entries rendered are fingerprinted (Converted.fingerprints)
  store       the current store copied and updated by the lines of the chunks that changed
              (graph/store/changes.py, applied by each store backend)
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import marshal
import os
import struct
import zlib
from collections.abc import (
    Callable,
    Collection,
    Generator,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from dataclasses import dataclass
from importlib import metadata
from itertools import chain, islice
from pathlib import Path
from typing import IO, Any, cast

import pyoxigraph
from isal import isal_zlib

from graph import jsonld, parts, shacl
from graph.convert import (
    Converted,
    Extent,
    GraphText,
    Month,
    PreviousChunk,
    Recognition,
    jsonld_entry_texts,
    jsonld_nodes,
)
from graph.describe import DumpFile
from graph.errors import PublicationError
from graph.formats import DUMP_FORMATS, GZIP_SUFFIX, JSONLD, NTRIPLES, RDFXML, TURTLE, RdfFormat
from graph.iris import Iris
from graph.namespaces import DCTERMS, PREFIXES

DESCRIPTION = str(DCTERMS.description)

# marshal, not JSON: at 1M entries its 130 MB took 2.3 s to write and read as JSON, 0.6 here.
# Only kgpub reads it, from its own publication (as the parse cache, graph/listing.py), and one
# it cannot read (another Python's marshal) is not reused.
INDEX = "chunks.marshal"
# Each month's record (what it was made from: Months) in MONTHS/<month>.marshal beside INDEX,
# hard-linked from the current release when it is the same: written whole into INDEX, the
# records of a million entries (108 MB) were 0.4-0.6 s of every rebuild's last step at 1M.
MONTHS = "chunks"
FOLDER = "dumps"  # a release's dumps/
DUMP_STEM = "library"  # dumps/library.ttl, .nt ...
# 2: chunks deflated by ISA-L; 3: CRC-32s in spans; 4: parts (graph/parts.py); 5: marshal,
# each month's count of described entries; 6: a chunk longer than WHOLE pieces deflated in
# blocks; 7: each month's record in a file of its own (MONTHS)
CACHE_VERSION = 7
# A chunk of more than WHOLE pieces of N-Triples is made and written in pieces of about PIECE
# bytes (read and parsed at a time), its output in blocks of BLOCK bytes: the library's chunk
# at 1M entries (173 MB), not a month's (21 MB), which is made as fast whole (in pieces, its
# RDF/XML and N-Triples took 10-20% more CPU: more copies).
PIECE = 8 << 20
WHOLE = 4
BLOCK = 1 << 20
# The nice(2) increment of what a full build does beside its longest chain: the dump writer's
# process, the store's load and the other dumps (graph/publication.py).
YIELDING = 10
# gzip member header: no name, mtime 0, no extra flags, OS unknown (RFC 1952 §2.3)
_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"


def _version() -> str:
    try:
        return metadata.version("kgpub")
    except metadata.PackageNotFoundError:
        return ""


@dataclass(frozen=True)
class Chunk:
    """A part of every dump: its key and the N-Triples (or entries) it is made from."""

    key: str
    start: int  # byte range in Converted.text
    end: int
    kind: str  # "library", "scheme" or "entries"
    first: int = 0  # entry index range for "entries"
    last: int = 0


def chunks_of(converted: Converted) -> list[Chunk]:
    """The chunks of a library, in dump order: the library and its links, the scheme, then
    each month of entries (its key is the month's, computed when it was rendered)."""
    text, layout = converted.text, converted.layout
    starts = layout.entries

    def key(a: int, b: int) -> str:
        return hashlib.sha256(text[a:b]).hexdigest()

    out = [
        Chunk(layout.library or key(0, layout.scheme), 0, layout.scheme, "library"),
        Chunk(key(layout.scheme, starts[0]), layout.scheme, starts[0], "scheme"),
    ]
    first = 0
    for month in converted.months:
        last = first + len(month.iris)
        out.append(Chunk(month.key, starts[first], starts[last], "entries", first, last))
        first = last
    return out


def dump_prefixes(iris: Iris) -> dict[str, str]:
    """Prefixes for Turtle output: the vocabularies and the publication's own IRI spaces."""
    return {
        **PREFIXES,
        "entry": iris.base + "entry/",
        "category": iris.base + "category/",
        "publisher": iris.base + "publisher/",
        "kg": iris.base,
    }


def turtle_header(prefixes: dict[str, str]) -> bytes:
    """@prefix lines in a fixed order (Oxigraph writes them in hash order)."""
    return "".join(f"@prefix {p}: <{ns}> .\n" for p, ns in sorted(prefixes.items())).encode()


def strip_prefixes(data: bytes | memoryview) -> bytes:
    """Turtle without its leading @prefix lines (to put turtle_header's in their place)."""
    data = memoryview(data)
    pos = 0
    while bytes(data[pos : pos + 8]) == b"@prefix ":
        pos = bytes(data[pos : pos + 4096]).index(b"\n") + pos + 1
    return bytes(data[pos:])


class _Renderer:
    """Header, footer and chunk bytes of one dump format, chosen from _FORMS: a format
    without its row there is an error, never another format's bytes under its name."""

    def __init__(
        self,
        converted: Converted | None,
        fmt: RdfFormat,
        text: GraphText,
        iris: Iris,
        parsed: _Parsed | None = None,
    ) -> None:
        if fmt.key not in _FORMS:
            raise PublicationError(f"no dump writer for {fmt.label} ({fmt.media_type})")
        if converted is None and fmt.key not in _TEXT_ONLY:
            raise PublicationError(f"{fmt.label} dumps need the entries, not only the text")
        self.converted, self.fmt, self.text = converted, fmt, text
        self.prefixes: dict[str, str] = dump_prefixes(iris)
        # The IRIs of each month's entries, by the index of its first entry (a chunk's first).
        self._months: dict[int, tuple[str, ...]] = {}
        first = 0
        for month in converted.months if converted is not None else ():
            self._months[first] = month.iris
            first += len(month.iris)
        self._form = _FORMS[fmt.key]
        self._xml_head: bytes = _rdfxml_head(self.prefixes) if fmt is RDFXML else b""
        self._parsed = parsed

    def header(self) -> bytes:
        return self._form.header(self)

    def footer(self) -> bytes:
        return self._form.footer

    def chunk(self, chunk: Chunk) -> bytes:
        # JSON-LD is made from the records: the library chunk's text is 173 MB at 1M entries.
        text = self.text[chunk.start : chunk.end] if self._form.reads_text else b""
        return self._form.chunk(self, text, chunk)

    def write_chunk(self, chunk: Chunk, out: _Pieces, piece: int) -> None:
        """Write the chunk's bytes (those of chunk()) to out as they are made, reading its
        N-Triples piece bytes at a time."""
        self._form.write(self, chunk, out, piece)

    def _write_ntriples(self, chunk: Chunk, out: _Pieces, piece: int) -> None:
        for data in self.text.span(chunk.start, chunk.end).pieces(piece):
            out.write(data)

    def _write_serialized(self, chunk: Chunk, out: _Pieces, piece: int) -> None:
        # One serialization of the pieces' triples, in order: the bytes of _turtle or _rdfxml.
        body = _Body(out, self._xml_head if self.fmt is RDFXML else None)
        triples = chain.from_iterable(
            _own_triples(data) for data in self.text.span(chunk.start, chunk.end).pieces(piece)
        )
        # Oxigraph calls only its write (and flush), 8 KiB at a time.
        output = cast(IO[bytes], body)
        pyoxigraph.serialize(triples, output, self.fmt.oxigraph, prefixes=self.prefixes)
        body.close()

    def _write_jsonld(self, chunk: Chunk, out: _Pieces, piece: int) -> None:
        for node in self._nodes(chunk):
            out.write(node.encode("utf-8"))

    def _turtle(self, text: bytes, chunk: Chunk) -> bytes:
        body = io.BytesIO()
        triples = self._triples(chunk, text)
        pyoxigraph.serialize(triples, body, TURTLE.oxigraph, prefixes=self.prefixes)
        return strip_prefixes(body.getbuffer())

    def _rdfxml(self, text: bytes, chunk: Chunk) -> bytes:
        # Oxigraph writes the same <rdf:RDF ...> start tag (every given prefix declared) for
        # any triples; a name outside the prefixes is declared on its own element, so each
        # chunk's elements stand alone between the one header and the one footer.
        body = io.BytesIO()
        triples = self._triples(chunk, text)
        pyoxigraph.serialize(triples, body, RDFXML.oxigraph, prefixes=self.prefixes)
        out = body.getvalue()
        if not out.startswith(self._xml_head):
            raise PublicationError("RDF/XML chunk does not start with the dump's header")
        return out[len(self._xml_head) : out.rindex(_RDFXML_END)]

    def _triples(self, chunk: Chunk, text: bytes) -> Iterable[pyoxigraph.Triple]:
        # Streamed from the parser into the serializer, or parsed once for two formats.
        if self._parsed is None:
            return _own_triples(text)
        return self._parsed.triples(chunk, text)

    def _jsonld_header(self) -> bytes:
        return (
            '{"@context": ' + json.dumps(jsonld.context(), ensure_ascii=False) + ',\n "@graph": [\n'
        ).encode()

    def _jsonld(self, text: bytes, chunk: Chunk) -> bytes:
        return "".join(self._nodes(chunk)).encode("utf-8")

    def _nodes(self, chunk: Chunk) -> Iterator[str]:
        # The library node comes first in every dump, so each later node follows ",\n".
        converted = self.converted
        if converted is None:  # refused by __init__
            raise PublicationError("JSON-LD dumps need the entries")
        if chunk.kind == "library":
            yield from _library_node(next(jsonld_nodes(converted, ())))
            return
        if chunk.kind == "entries":
            entries = converted.entries
            iris = self._months.get(chunk.first)
            if iris is None or len(iris) != chunk.last - chunk.first:
                iris = tuple(islice(entries, chunk.first, chunk.last))
            descriptions = converted.descriptions(chunk.first, chunk.last)
            part = ((iri, entries[iri]) for iri in iris)
            for text in jsonld_entry_texts(converted, part, descriptions):
                yield ",\n  " + text
            return
        # The scheme chunk: the scheme, its concepts and the publishers (graph/convert.py).
        scheme_nodes = 1 + len(converted.categories) + len(converted.organisations)
        for node in islice(jsonld_nodes(converted, ()), 1, 1 + scheme_nodes):
            yield ",\n  " + json.dumps(node, ensure_ascii=False)


LIBRARY_PARTS = 10_000  # dcterms:hasPart values per piece of the library node's JSON


def _library_node(node: dict[str, Any]) -> Iterator[str]:
    """The library node as json.dumps writes it, in pieces: its hasPart (the last key) lists
    every entry, and json.dumps of it at once held several times its 50 MB at 1M entries."""
    parts = node.pop("hasPart")
    head = json.dumps(node, ensure_ascii=False)
    yield "  " + head[:-1] + ', "hasPart": ['
    for at in range(0, len(parts), LIBRARY_PARTS):
        piece = json.dumps(parts[at : at + LIBRARY_PARTS], ensure_ascii=False)[1:-1]
        yield piece if at == 0 else ", " + piece
    yield "]}"


_RDFXML_END = b"</rdf:RDF>"
_PREFIX = b"@prefix "


class _Body:
    """The output of one chunk's serialization by Oxigraph (given to its write), passed on
    to out but for the document's start and end, as _Renderer._turtle and _rdfxml cut them:
    RDF/XML's XML declaration and start tag (head, checked) and, from the last end tag on,
    its end; or Turtle's @prefix lines (head None)."""

    def __init__(self, out: _Pieces, head: bytes | None) -> None:
        self._out, self._head = out, head
        self._held = bytearray()
        self._started = False  # the document's start is cut off
        # What is held back until the end, where the end tag may be (RDF/XML only).
        self._keep = 4 * len(_RDFXML_END) if head is not None else 0

    def write(self, data: bytes) -> int:
        self._held += data
        if not self._started and not self._cut_start(final=False):
            return len(data)
        if len(self._held) > self._keep + BLOCK:
            upto = len(self._held) - self._keep
            self._out.write(bytes(self._held[:upto]))
            del self._held[:upto]
        return len(data)

    def flush(self) -> None:
        """Nothing: what is held is passed on by write and close."""

    def close(self) -> None:
        """Pass on the rest, less the document's end."""
        if not self._started:
            self._cut_start(final=True)
        if self._head is not None:
            at = self._held.rfind(_RDFXML_END)
            if at < 0:
                raise PublicationError("RDF/XML chunk does not end with the dump's footer")
            del self._held[at:]
        self._out.write(bytes(self._held))
        self._held.clear()

    def _cut_start(self, final: bool) -> bool:
        """Whether the document's start is cut off the bytes held (False: more are needed)."""
        held = self._held
        if self._head is not None:
            if len(held) < len(self._head) and not final:
                return False
            if not held.startswith(self._head):
                raise PublicationError("RDF/XML chunk does not start with the dump's header")
            del held[: len(self._head)]
        else:  # as strip_prefixes
            while held.startswith(_PREFIX):
                end = held.find(b"\n")
                if end < 0:
                    if final:
                        raise PublicationError("Turtle chunk ends within its @prefix lines")
                    return False
                del held[: end + 1]
            if len(held) < len(_PREFIX) and _PREFIX.startswith(held) and not final:
                return False
        self._started = True
        return True


class _Pieces:
    """A chunk's parts as its bytes are made (write): the plain part, the deflated part of
    the .gz, or both, given in blocks of BLOCK bytes (so that the deflate stream, whose output
    may depend on how its input is given, is the same for the same bytes), the .gz's through
    one deflate stream ended by a sync flush, as _deflate ends a chunk's."""

    def __init__(self, plain: parts.PartFile | None, gz: parts.PartFile | None, level: int):
        self._plain, self._gz = plain, gz
        self._packer = (
            isal_zlib.compressobj(level, isal_zlib.DEFLATED, -zlib.MAX_WBITS)
            if gz is not None
            else None
        )
        self._held = bytearray()

    def write(self, data: bytes) -> None:
        """Add data to the chunk's bytes."""
        if not self._held and len(data) == BLOCK:
            self._give(data)
            return
        self._held += data
        if len(self._held) < BLOCK:
            return
        whole = len(self._held) - len(self._held) % BLOCK
        view = memoryview(self._held)
        for at in range(0, whole, BLOCK):
            self._give(bytes(view[at : at + BLOCK]))
        view.release()
        del self._held[:whole]

    def close(self) -> None:
        """Give the last bytes, end the deflate stream and put the parts in place."""
        if self._held:
            self._give(bytes(self._held))
            self._held.clear()
        if self._gz is not None and self._packer is not None:
            self._gz.write(bytes(self._packer.flush(isal_zlib.Z_SYNC_FLUSH)))
            self._gz.close()
        if self._plain is not None:
            self._plain.close()

    def __enter__(self) -> _Pieces:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        if kind is None:
            self.close()
            return
        for part in (self._plain, self._gz):
            if part is not None:
                part.discard()

    def _give(self, block: bytes) -> None:
        if self._plain is not None:
            self._plain.write(block)
        if self._gz is not None and self._packer is not None:
            self._gz.write(bytes(self._packer.compress(block)))


def _own_triples(text: bytes) -> Iterator[pyoxigraph.Triple]:
    """The triples of the build's own N-Triples (graph/convert.py), parsed leniently: every
    IRI in them was checked as it was written (a kgpub slug, or made a NamedNode), and
    Oxigraph's lenient parser does not check them again (a chunk of 2.2 MB: 5.5 ms against
    10.2, the same triples)."""
    return pyoxigraph.parse(text, pyoxigraph.RdfFormat.N_TRIPLES, lenient=True)


class _Parsed:
    """The triples of the last chunk parsed, for the next writer of the same chunk: Turtle's
    and RDF/XML's writers, stepped in turn chunk by chunk (in_turn), parse each chunk
    once for both (parsing was 10 of a 2.2 MB chunk's 13.5 ms to Turtle, 12 to RDF/XML)."""

    def __init__(self) -> None:
        self._key: str | None = None
        self._triples: list[pyoxigraph.Triple] = []

    def triples(self, chunk: Chunk, text: bytes) -> list[pyoxigraph.Triple]:
        """The triples of a chunk whose N-Triples are text."""
        key = chunk.key  # the SHA-256 of the chunk's N-Triples
        if key != self._key:
            self._key, self._triples = None, []  # the last chunk's are let go first
            self._triples = list(_own_triples(text))
            self._key = key
        return self._triples


def _rdfxml_head(prefixes: dict[str, str]) -> bytes:
    """The XML declaration and <rdf:RDF> start tag Oxigraph writes for these prefixes."""
    empty = io.BytesIO()
    pyoxigraph.serialize([], empty, RDFXML.oxigraph, prefixes=prefixes)
    text = empty.getvalue()
    return text[: text.rindex(_RDFXML_END)]


@dataclass(frozen=True)
class _Form:
    """How one dump format is written: its header, its footer, a chunk from N-Triples, and
    a chunk written in pieces (write: the same bytes)."""

    header: Callable[[_Renderer], bytes]
    footer: bytes
    chunk: Callable[[_Renderer, bytes, Chunk], bytes]
    write: Callable[[_Renderer, Chunk, _Pieces, int], None]
    reads_text: bool = True  # whether chunk is given the chunk's N-Triples (else b"")


# The formats whose chunks are made from their N-Triples alone (Oxigraph's serializers): a
# build writes them in a process of its own, from the spool (spooled_dump_steps).
_TEXT_ONLY = (TURTLE.key, RDFXML.key)

# Every format of formats.DUMP_FORMATS has its row (tests/test_publication.py checks it).
_FORMS: dict[str, _Form] = {
    NTRIPLES.key: _Form(lambda r: b"", b"", lambda r, text, c: text, _Renderer._write_ntriples),
    TURTLE.key: _Form(
        lambda r: turtle_header(r.prefixes), b"", _Renderer._turtle, _Renderer._write_serialized
    ),
    JSONLD.key: _Form(
        _Renderer._jsonld_header,
        b"\n]}\n",
        _Renderer._jsonld,
        _Renderer._write_jsonld,
        reads_text=False,
    ),
    RDFXML.key: _Form(
        lambda r: r._xml_head, _RDFXML_END + b"\n", _Renderer._rdfxml, _Renderer._write_serialized
    ),
}


def has_writer(fmt: RdfFormat) -> bool:
    """Whether dumps can be written in fmt."""
    return fmt.key in _FORMS


@dataclass(frozen=True)
class Reuse:
    """What a build may take from the current release: its folder (None: nothing), its chunk
    index (read_index), this build's chunks and the validation key (validation_key)."""

    previous: Path | None
    chunks: list[Chunk]
    index: dict[str, Any]
    validation: str

    @property
    def linkable(self) -> list[str]:
        """The current release's dumps whose parts this build may link (the index's)."""
        return list(self.index.get("dumps", ()))


def part_name(key: str, fmt: RdfFormat, deflated: bool = False) -> str:
    """The name of a chunk's part in a dump of fmt (in dumps/parts/): its key and the format's
    suffix, and '.deflate' for the part of the .gz (raw deflate, RFC 1951)."""
    return f"{key}{fmt.suffix}{'.deflate' if deflated else ''}"


@dataclass
class _Previous:
    """A previous release's dump of one format: its dumps folder and the parts of its plain
    and .gz files, by name."""

    folder: Path
    plain: dict[str, parts.Part]
    gz: dict[str, parts.Part]

    def link(self, out: parts.Writer, name: str, deflated: bool) -> bool:
        """Whether the part of that name was linked as out's next part (False when the
        previous dumps do not have it or it fails its check: damaged, made again)."""
        found = (self.gz if deflated else self.plain).get(name)
        return found is not None and out.link(self.folder, found) is not None


# The modules whose code decides a chunk's bytes: a change to any of them (even without a
# new kgpub version, as while developing) makes the previous chunks unusable.
_CODE = ("convert.py", "dumps.py", "formats.py", "iris.py", "jsonld.py", "namespaces.py")


def _code() -> str:
    digest = hashlib.sha256(str(pyoxigraph.__version__).encode())
    for name in _CODE:
        digest.update((Path(__file__).parent / name).read_bytes())
    return digest.hexdigest()


def _fingerprint(base: str, level: int) -> dict[str, Any]:
    return {
        "version": CACHE_VERSION,
        "kgpub": _version(),
        "code": _code(),
        "base": base,
        "gzip_level": level,
    }


def read_index(release: Path | None, base: str, level: int) -> dict[str, Any]:
    """The chunk offsets of a release's dumps, or {} when they cannot be reused."""
    if release is None:
        return {}
    index = read_index_file(release)
    if index.get("fingerprint") != _fingerprint(base, level):
        return {}
    return index


def read_index_file(release: Path) -> dict[str, Any]:
    """A release's chunk index as it was written ({} when it cannot be read), with its months'
    records ("months"; a month whose file cannot be read is left out: made again)."""
    try:
        index = marshal.loads((release / INDEX).read_bytes())
    except (OSError, ValueError, EOFError, TypeError):
        return {}
    if not isinstance(index, dict):
        return {}
    names = index.get("months")
    if isinstance(names, list | tuple):
        index["months"] = {
            name: found
            for name in names
            if isinstance(found := _read_month(release / MONTHS / f"{name}.marshal"), dict)
        }
    return index


def _read_month(path: Path) -> Any:
    try:
        return marshal.loads(path.read_bytes())
    except (OSError, ValueError, EOFError, TypeError):
        return None


def verify_index(release: Path | None, index: dict[str, Any]) -> dict[str, Any]:
    """The index without the dumps whose size is not what the release's manifest says
    (truncated, a part missing or cut): nothing is linked from those, and without the
    N-Triples dump no month is read from it nor the store updated from it. Damage that keeps
    the size is found part by part, by each part's CRC-32, as it is linked or read: a stat
    per part here, where hashing the files whole cost 0.9 s at 100k entries and about 15 s
    of CPU at 1M."""
    if release is None or not index.get("dumps"):
        return index
    expected = dump_sizes(release)
    if expected is None:
        return {}
    folder = release / FOLDER
    good = [
        name
        for name in index["dumps"]
        if parts.size_of(folder / name) == expected.get(name)
        and parts.size_of(folder / (name + GZIP_SUFFIX)) == expected.get(name + GZIP_SUFFIX)
    ]
    if good == index["dumps"]:
        return index
    return {**index, "dumps": good}


def dump_sizes(release: Path) -> dict[str, int] | None:
    """The size of each dump file of a release (a .gz its own), by file name, as its manifest
    says; None when it cannot tell."""
    try:
        listed = json.loads((release / "manifest.json").read_bytes())["dumps"]
        return {str(d["filename"]): int(d["size"]) for d in listed}
    except (OSError, ValueError, KeyError, TypeError):
        return None


def previous_parts(release: Path, name: str) -> dict[str, parts.Part]:
    """The parts of a release's dump by name ({} when its list cannot be read)."""
    try:
        return {p.name: p for p in parts.read_parts(release / FOLDER / name)}
    except (OSError, ValueError):
        return {}


def write_index(
    work: Path,
    converted: Converted,
    base: str,
    level: int,
    reused: dict[str, int],
    reuse: Reuse,
) -> None:
    """Record which dumps the next build may link parts from, how many chunks of each dump
    this build linked, the shapes and context the chunks conformed with, the chunks'
    keys and what each month was made from (Months), each month in a file of its own,
    hard-linked from the current release's when its record is the same."""
    folder = work / MONTHS
    folder.mkdir(exist_ok=True)
    previous = reuse.previous
    before = reuse.index.get("months", {}) if previous is not None else {}
    for m in converted.months:
        record = {
            "digest": m.digest,
            "key": m.key,
            "listed": m.listed,
            "starts": m.starts,
            "described": m.described,
            "modified": m.modified,
            "publishers": m.recognition.publishers,
            "candidates": m.recognition.candidates,
        }
        path = folder / f"{m.name}.marshal"
        if previous is not None and before.get(m.name) == record:
            with contextlib.suppress(OSError):
                os.link(previous / MONTHS / path.name, path)
                continue
        path.write_bytes(marshal.dumps(record))
    index = {
        "fingerprint": _fingerprint(base, level),
        "validation": reuse.validation,
        "context": context_key(converted),
        "chunks": [c.key for c in reuse.chunks],
        "nt": next(name for name in reused if name.endswith(NTRIPLES.suffix)),
        "dumps": sorted(reused),
        "reused": reused,
        "months": [m.name for m in converted.months],
    }
    (work / INDEX).write_bytes(marshal.dumps(index))


def write_dump_files(
    converted: Converted,
    chunks: list[Chunk],
    fmt: RdfFormat,
    path: Path,
    level: int,
    previous: Path | None,
    linkable: Collection[str],
    piece: int | None = None,
) -> tuple[DumpFile, DumpFile, int]:
    """Write one dump and its gzip as parts, linking the previous release's unchanged
    chunks' parts (from its dumps named in linkable: the chunk index's "dumps"); return both
    files' descriptions and how many chunks were linked.

    A linked part is checked against its size and CRC-32 as it is hashed; one that fails
    the check is made again. Both files are hashed (SHA-256) and the plain one CRC-32'd (the
    gzip trailer) as their parts are written or linked: nothing written is read back. A chunk
    of more than WHOLE pieces of N-Triples is made and written in pieces of about piece bytes
    (None: PIECE)."""
    render = _Renderer(converted, fmt, converted.text, converted.iris)
    steps = _file_steps(render, chunks, fmt, path, level, previous, linkable, piece or PIECE)
    return _finished(steps)


def is_text_only(fmt: RdfFormat) -> bool:
    """Whether fmt's dump is made from the N-Triples alone (spooled_dump_steps)."""
    return fmt.key in _TEXT_ONLY


def spooled_dump_steps(
    spool: Path,
    base: str,
    chunks: list[Chunk],
    key: str,
    path: Path,
    level: int,
    previous: Path | None,
    linkable: Collection[str],
    end: int = -1,
    extents: Sequence[Extent] = (),
    piece: int | None = None,
    *,
    parsed: _Parsed | None = None,
) -> Generator[None, None, _Written]:
    """write_dump_files for a format made from the N-Triples alone (is_text_only), reading
    them from the build's spool, a chunk at a step (in_turn runs them): what a process of its
    own runs (graph/publication.py), so that Oxigraph's serializers, which hold the GIL while
    the triples pass through Python, run beside the validation instead of taking turns with
    it. end and extents: the text's (len(converted.text), converted.text.extents), when the
    spool has holes; piece: as write_dump_files's, the builder's PIECE; parsed: shared with
    the writers of the other formats stepped in turn with this one."""
    fmt = next(f for f in DUMP_FORMATS if f.key == key)
    with spool.open("rb") as file:
        text = GraphText(file=file, end=end, extents=extents)
        render = _Renderer(None, fmt, text, Iris(base), parsed)
        return (
            yield from _file_steps(
                render, chunks, fmt, path, level, previous, linkable, piece or PIECE
            )
        )


def _finished(steps: Generator[None, None, _Written]) -> _Written:
    """What a writer's steps return, every step taken."""
    while True:
        try:
            next(steps)
        except StopIteration as stop:
            done: _Written = stop.value
            return done


def run_spooled() -> None:
    """The dump writer's process (graph/publication.py): read a pickled list of
    spooled_dump_steps' arguments from stdin, run them in turn, write the pickled list
    of their results (or of the exception each raised) to stdout."""
    import pickle
    import sys

    # Nothing waits for these dumps before the index's rows and the history's tables: on a
    # machine with fewer cores than the build has work, they take what is left of a core.
    with contextlib.suppress(OSError):
        os.nice(YIELDING)
    jobs = pickle.load(sys.stdin.buffer)
    sys.stdout.buffer.write(pickle.dumps(in_turn(jobs)))


def in_turn(jobs: Sequence[Sequence[Any]]) -> list[object]:
    """Run these spooled_dump_steps jobs, their writers taking a chunk each in turn, so
    that the formats made from the same triples (Turtle, RDF/XML) parse each chunk once
    (_Parsed); their results, or the exception each raised."""
    parsed = _Parsed()
    results: list[object] = [None] * len(jobs)
    steps = {n: spooled_dump_steps(*args, parsed=parsed) for n, args in enumerate(jobs)}
    while steps:
        for n, step in list(steps.items()):
            try:
                next(step)
            except StopIteration as stop:
                results[n] = stop.value
                del steps[n]
            except (OSError, PublicationError) as exc:
                results[n] = exc
                del steps[n]
    return results


_Written = tuple[DumpFile, DumpFile, int]  # a dump, its gzip, how many chunks were linked


def _file_steps(
    render: _Renderer,
    chunks: list[Chunk],
    fmt: RdfFormat,
    path: Path,
    level: int,
    previous: Path | None,
    linkable: Collection[str],
    piece: int,
) -> Generator[None, None, _Written]:
    """Write a dump's files (write_dump_files), yielding after each chunk."""
    gz_path = path.with_name(path.name + GZIP_SUFFIX)
    old = _open_previous(previous, path.name, gz_path.name, linkable)
    linked = 0
    before = old.folder if old is not None else None  # its parts not hashed again (parts.py)
    plain_out, gz_out = parts.Writer(path, before), parts.Writer(gz_path, before)
    gz_out.write(_GZIP_HEADER)
    header = render.header()
    plain_out.write(header)
    gz_out.write(_deflate(header, level))
    for chunk in chunks:
        name, packed_name = part_name(chunk.key, fmt), part_name(chunk.key, fmt, deflated=True)
        if chunk.end - chunk.start > WHOLE * piece:
            make = old is None or not old.link(plain_out, name, deflated=False)
            pack = old is None or not old.link(gz_out, packed_name, deflated=True)
            if make or pack:
                with _Pieces(
                    plain_out.open(name) if make else None,
                    gz_out.open(packed_name) if pack else None,
                    level,
                ) as out:
                    render.write_chunk(chunk, out, piece)
            linked += not (make or pack)
            yield
            continue
        text = None
        if old is None or not old.link(plain_out, name, deflated=False):
            text = render.chunk(chunk)
            plain_out.write(text, name)
        if old is None or not old.link(gz_out, packed_name, deflated=True):
            if text is None:
                text = render.chunk(chunk)
            gz_out.write(_deflate(text, level), packed_name)
        linked += text is None
        yield
    plain_out.write(render.footer())
    gz_out.write(_deflate(render.footer(), level))
    final = zlib.compressobj(1, zlib.DEFLATED, -zlib.MAX_WBITS).flush()  # an empty final block
    gz_out.write(final + struct.pack("<II", plain_out.crc, plain_out.size & 0xFFFFFFFF))
    plain, gz = plain_out.finish(), gz_out.finish()
    files = (
        DumpFile(path.name, fmt.media_type, fmt.label, plain.size, plain.sha256, False),
        DumpFile(gz_path.name, fmt.media_type, fmt.label, gz.size, gz.sha256, True),
    )
    return files[0], files[1], linked


def _deflate(text: bytes, level: int) -> bytes:
    """text deflated alone and ended by a sync flush (a part of a .gz's deflate stream)."""
    # ISA-L's deflate (isal): 3x faster than zlib's level 4 for 6% more bytes at its level 3,
    # 6x for 9% at its level 2 (bench/build.py --parts).
    packer = isal_zlib.compressobj(level, isal_zlib.DEFLATED, -zlib.MAX_WBITS)
    return bytes(packer.compress(text) + packer.flush(isal_zlib.Z_SYNC_FLUSH))


def _open_previous(
    previous: Path | None, name: str, gz_name: str, linkable: Collection[str]
) -> _Previous | None:
    if previous is None or name not in linkable:
        return None
    plain, gz = previous_parts(previous, name), previous_parts(previous, gz_name)
    if not plain or not gz:
        return None
    return _Previous(previous / FOLDER, plain, gz)


def validation_key(engine: str, shapes_dir: Path = shacl.SHAPES_DIR) -> str:
    """What a validation result depends on besides the data: the engine and the shapes."""
    digest = hashlib.sha256(engine.encode())
    for path in sorted(shapes_dir.glob("*.ttl")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def context_key(converted: Converted) -> str:
    """A digest of what an entry's validation report may read besides the entry itself: the
    context (library, scheme, concepts; graph/shacl.py) but for the library's description,
    which counts the entries and which no entry shape reads (shapes/entry.ttl looks at the
    library only for its class)."""
    library = f"<{converted.iris.library}> <{DESCRIPTION}> ".encode()
    lines = [line for line in converted.context.split(b"\n") if not line.startswith(library)]
    return hashlib.sha256(b"\n".join(lines)).hexdigest()


def changed_partition(
    converted: Converted,
    chunks: list[Chunk],
    index: dict[str, Any],
    validation: str,
    conformed: Callable[[str], bool] | None = None,
) -> shacl.Partition | None:
    """What a validation must see when the current release conformed to the same shapes with
    the same context (context_key): the context, the links and the entries of the chunks it
    did not have, but for those conformed(iri) says it published as they are (the same
    triples: a month made again for one changed entry validates that one, not its 9,300 at
    1M entries). None when everything must be validated.

    Sound because the shapes are node-local but for the context: an entry's report depends
    only on its own triples and the context (concepts for dcterms:subject, the library for
    isPartOf, notations unique among concepts), and an entry, or chunk, that the current
    release published conformed with it. The context and the links are validated again
    unless their chunks are unchanged too.
    """
    if index.get("validation") != validation or index.get("context") != context_key(converted):
        return None
    known = set(index.get("chunks", ()))
    text, starts = converted.text, converted.layout.entries
    offsets, pieces = [0], []
    month_of = dict(zip(chunks[2:], converted.months, strict=True))
    for chunk in remade_months(chunks, index):
        kept: Sequence[int] = range(chunk.first, chunk.last)
        if conformed is not None:
            iris = month_of[chunk].iris
            kept = [i for i, iri in zip(kept, iris, strict=True) if not conformed(iri)]
        for run in _runs(kept):
            pieces.append(text[starts[run.start] : starts[run.stop]])
            base = offsets[-1] - starts[run.start]
            offsets += [base + starts[i + 1] for i in run]
    # The library with its links, and the scheme with its concepts, as they conformed: then
    # the links are not validated, nor read (a hasPart line per entry: 171 MB read from the
    # current release at 1M entries, 0.5 s of a one-change rebuild before its dumps start).
    same = chunks[0].key in known and chunks[1].key in known
    links = b"" if same else converted.links
    return shacl.Partition(converted.context, links, b"".join(pieces), offsets, same)


def _runs(numbers: Sequence[int]) -> Iterator[range]:
    """Increasing numbers as runs of consecutive ones."""
    start = end = -1
    for n in numbers:
        if n != end:
            if end > start:
                yield range(start, end)
            start = n
        end = n + 1
    if end > start:
        yield range(start, end)


def remade_months(chunks: Sequence[Chunk], index: dict[str, Any]) -> list[Chunk]:
    """The chunks of entries (months) the current release does not have."""
    known = set(index.get("chunks", ()))
    return [c for c in chunks[2:] if c.key not in known]


class Months:
    """The months of the current release's entries (convert.ReuseMonth): a month whose
    entries have the same records (convert.records_digest) has the same N-Triples, read from
    the release's N-Triples dump, which holds their dcterms:modified too."""

    def __init__(self, previous: Path | None, index: dict[str, Any]) -> None:
        self.cache: dict[str, Any] = index.get("months", {}) if previous is not None else {}
        self.folder = previous / FOLDER if previous is not None else None
        self.parts: dict[str, parts.Part] = {}
        self._listed_ns = -1  # when the N-Triples dump's list was written
        self._library = str(index["chunks"][0]) if index.get("chunks") else ""
        if self.cache and previous is not None and index.get("nt") in index.get("dumps", ()):
            self.parts = previous_parts(previous, index["nt"])
            with contextlib.suppress(OSError):
                path = parts.list_path(previous / FOLDER / index["nt"])
                self._listed_ns = path.stat().st_mtime_ns

    def listed(self, name: str, digest: str) -> tuple[str, ...] | None:
        """The IRIs of a month's entries in listing order, if its records had that digest
        (then they are the IRIs convert would mint again)."""
        found = self.cache.get(name)
        if found is None or found.get("digest") != digest:
            return None
        return tuple(found["listed"])

    def __call__(self, name: str, digest: str) -> Month | None:
        found = self.cache.get(name)
        if self.folder is None or found is None or found.get("digest") != digest:
            return None
        part = self.parts.get(part_name(found["key"], NTRIPLES))
        starts = tuple(found["starts"])
        if part is None or part.size != starts[-1]:
            return None
        source = self.folder / parts.FOLDER / part.name
        described = found.get("described", -1)
        text = b""
        if described < 0 or not self._as_listed(source, part):
            read = parts.read_part(self.folder, part)
            if read is None:  # damaged: rendered again
                return None
            text, described = read, -1
        listed = tuple(found["listed"])
        modified = dict(found.get("modified", {}))
        iris = tuple(sorted(listed))
        recognition = self.recognised(name, digest) or Recognition()
        return Month(
            name,
            iris,
            text,
            starts,
            found["key"],
            digest,
            listed,
            modified,
            recognition,
            str(source),
            described,
        )

    def library(self, listed: Mapping[str, Sequence[str]]) -> PreviousChunk | None:
        """The current release's library chunk (its library, hasPart lines and their key)
        when its months had exactly these IRIs, in this listing order (month -> IRIs): then
        its links are these months' (its first lines are checked by convert)."""
        if self.folder is None or not self._library or listed.keys() != self.cache.keys():
            return None
        if any(tuple(iris) != tuple(self.cache[n]["listed"]) for n, iris in listed.items()):
            return None
        part = self.parts.get(part_name(self._library, NTRIPLES))
        if part is None:
            return None
        path = self.folder / parts.FOLDER / part.name
        if not self._as_listed(path, part):
            return None
        return PreviousChunk(self._library, str(path), part.size)

    def _as_listed(self, path: Path, part: parts.Part) -> bool:
        """Whether a part's file is as its list says without reading it: its size, and not
        written to since the list was (a release never writes to a part once listed). Its
        bytes are read, and their CRC-32 checked, when a dump links or rewrites its chunk
        after a changed one, or the store reads it (reading and checking every month's was
        1.3 s of a rebuild at 1M entries, and counting its descriptions 1.6 s more)."""
        try:
            found = path.stat()
        except OSError:
            return False
        return found.st_size == part.size and 0 <= found.st_mtime_ns <= self._listed_ns

    def recognised(self, name: str, digest: str) -> Recognition | None:
        """What the publishers table found in a month of the same records (and table)."""
        found = self.cache.get(name)
        if found is None or found.get("digest") != digest or "publishers" not in found:
            return None
        publishers = {iri: tuple(ids) for iri, ids in found["publishers"].items()}
        return Recognition(publishers, dict(found.get("candidates", {})))

    def close(self) -> None:
        """Nothing stays open (kept for the callers' with-blocks)."""
