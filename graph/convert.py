"""Entries -> DCMI Terms + SKOS, written straight to N-Triples in a deterministic order.

Model (README, "The model"):
  entry     a dcmitype:Text: dcterms:identifier, title@en, created xsd:dateTime,
            [modified xsd:dateTime], description@en, subject (concepts), publisher
            (organisations its title names, graph/publishers.py), isPartOf the library
  category  a skos:Concept: prefLabel@en, notation, inScheme, topConceptOf the scheme
  scheme    a skos:ConceptScheme: dcterms:title@en, skos:hasTopConcept
  library   a dcmitype:Collection: title@en, description@en, hasPart entries,
            dcat:themeTaxonomy the scheme
  publisher a foaf:Organization: skos:prefLabel@en, [owl:sameAs its IRI elsewhere]; only
            the organisations some entry names

The graph is written as N-Triples text, exactly as Oxigraph writes it (canonical escapes),
because formatting a line costs a tenth of building the pyoxigraph terms (about 0.3 µs
against 3.5 µs a triple): at 100k entries that is 1 s instead of 6 s. Everything downstream
(dumps, store, validation) reads this text by byte ranges (``Converted.text``, a GraphText):
a build writes it to a file as it renders each month (a spool) and reads ranges back, so the
2.3 GB of a million entries never sit in memory; a small library may stay in memory.
``Converted.triples`` parses it when terms are wanted. Layout (byte offsets in
``Converted.layout``):

  library    its type, title, description and themeTaxonomy
  parts      library dcterms:hasPart <entry>, one line per entry
  scheme     the scheme, then each concept, then each publisher
  entries    each entry's lines, entries in IRI order; ``Converted.entry_span(i)``
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from bisect import bisect_right
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from itertools import chain, repeat
from operator import attrgetter
from typing import Any, BinaryIO, Protocol, overload

import pyoxigraph
from pyoxigraph import NamedNode, Triple

from graph.describe import Statistics
from graph.errors import ListingError
from graph.iris import Iris, concept_slug
from graph.listing import Entry, Page, descriptions
from graph.namespaces import DCAT, DCMITYPE, DCTERMS, FOAF, OWL, RDF, SKOS, XSD
from graph.publishers import Publisher, Table, default_table, may_name
from graph.xmlchars import refuse_non_xml

LANG = "en"
PROGRESS_STEP = 10_000  # entries between two progress reports

_TYPE = f"<{RDF.type}>"
_A_TEXT = f"{_TYPE} <{DCMITYPE.Text}> .\n"  # an entry's type (rdflib's namespace: a lookup)
_TITLE = f"<{DCTERMS.title}>"
_CREATED = f"<{DCTERMS.created}>"
_MODIFIED = f"<{DCTERMS.modified}>"
_DESCRIPTION = f"<{DCTERMS.description}>"
_SUBJECT = f"<{DCTERMS.subject}>"
_IDENTIFIER = f"<{DCTERMS.identifier}>"
_IS_PART_OF = f"<{DCTERMS.isPartOf}>"
_HAS_PART = f"<{DCTERMS.hasPart}>"
_THEME_TAXONOMY = f"<{DCAT.themeTaxonomy}>"
_PREF_LABEL = f"<{SKOS.prefLabel}>"
_NOTATION = f"<{SKOS.notation}>"
_IN_SCHEME = f"<{SKOS.inScheme}>"
_TOP_CONCEPT_OF = f"<{SKOS.topConceptOf}>"
_HAS_TOP_CONCEPT = f"<{SKOS.hasTopConcept}>"
_DATETIME = f"<{XSD.dateTime}>"
_PUBLISHER = f"<{DCTERMS.publisher}>"
_ORGANIZATION = f"<{FOAF.Organization}>"
_SAME_AS = f"<{OWL.sameAs}>"
_DESCRIPTION_BYTES = f'> {_DESCRIPTION} "'.encode()

# N-Triples string escapes as Oxigraph writes them (oxrdf's print_quoted_str): ECHAR for
# \b \t \n \f \r " \\, UCHAR (upper-case hex) for the other controls, every other character as is.
_ESCAPES = {chr(c): f"\\u{c:04X}" for c in [*range(0x20), 0x7F]}
_ESCAPES.update({"\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"})
_ESCAPES.update({'"': '\\"', "\\": "\\\\"})
_TO_ESCAPE = re.compile(r'[\x00-\x1f\x7f"\\]')


def _escape(match: re.Match[str]) -> str:
    return _ESCAPES[match.group()]


def _quoted(text: str) -> str:
    # Most texts need no escape: look first (str.translate with a table is 20x slower). A
    # printable text has no control character (they are not printable): then only '"' and
    # '\\' are to be looked for, each by a C scan (a third faster than the regex's search).
    if text.isprintable():
        if '"' not in text and "\\" not in text:
            return '"' + text + '"'
    elif _TO_ESCAPE.search(text) is None:
        return '"' + text + '"'
    return '"' + _TO_ESCAPE.sub(_escape, text) + '"'


def _en(text: str) -> str:
    return _quoted(text) + "@" + LANG


def _datetime(text: str) -> str:
    return _quoted(text) + "^^" + _DATETIME


@dataclass(frozen=True)
class Category:
    """A category as published: its label, IRI and notation."""

    label: str
    iri: str
    notation: str


@dataclass(frozen=True)
class Layout:
    """Byte offsets of the sections of Converted.ntriples (see the module docstring)."""

    parts: int  # where the library's hasPart lines begin
    scheme: int  # where the scheme begins
    entries: tuple[int, ...]  # where each entry begins, then the end of the text
    library: str = ""  # the key of text[:scheme] when it was taken from the current release


@dataclass(frozen=True)
class Extent:
    """Bytes of a GraphText that are in another file: [start, end) of the whole text are the
    bytes of the file path from its beginning. A rebuild takes the text of an unchanged month
    from the current release's N-Triples dump part (immutable) instead of writing it into the
    spool again: the spool keeps a hole there (no bytes written: 234 MB at 100k entries)."""

    start: int
    end: int
    path: str


class GraphText:
    """The N-Triples of a library, sliced by byte ranges: bytes in memory, or a file (the
    build's spool) read back by ranges with pread(2), which any thread may do at once; where
    the spool has a hole, from the extent's file."""

    def __init__(
        self,
        data: bytes = b"",
        file: BinaryIO | None = None,
        start: int = 0,
        end: int = -1,
        extents: Sequence[Extent] = (),
    ) -> None:
        self._data, self._file = data, file
        self._start = start
        if end < 0:
            end = len(data) if file is None else os.fstat(file.fileno()).st_size
        self._end = end
        self.extents = tuple(extents)  # in order, not overlapping, in the whole's offsets
        self._extent_starts = [e.start for e in self.extents]

    def __len__(self) -> int:
        return self._end - self._start

    @overload
    def __getitem__(self, key: slice) -> bytes: ...

    @overload
    def __getitem__(self, key: int) -> int: ...

    def __getitem__(self, key: slice | int) -> bytes | int:
        if isinstance(key, int):
            return self[key : key + 1][0]
        a, b, step = key.indices(len(self))
        if step != 1:
            raise ValueError("GraphText slices have no step")
        if b <= a:
            return b""
        if self._file is None:
            return self._data[self._start + a : self._start + b]
        a, b = self._start + a, self._start + b
        if not self.extents:
            return _pread(self._file.fileno(), a, b, 0, self._file.name)
        pieces: list[bytes] = []
        at = a
        n = max(bisect_right(self._extent_starts, at) - 1, 0)
        while at < b:
            extent = self.extents[n] if n < len(self.extents) else None
            if extent is None or at < extent.start:  # in the spool, up to the next extent
                upto = b if extent is None else min(b, extent.start)
                pieces.append(_pread(self._file.fileno(), at, upto, 0, self._file.name))
                at = upto
                continue
            if at >= extent.end:
                n += 1
                continue
            upto = min(b, extent.end)
            fd = os.open(extent.path, os.O_RDONLY)
            try:
                pieces.append(_pread(fd, at, upto, extent.start, extent.path))
            finally:
                os.close(fd)
            at = upto
            n += 1
        return b"".join(pieces)

    def __bytes__(self) -> bytes:
        return self[:]

    def tail(self, start: int) -> GraphText:
        """The text from start on (no copy)."""
        return GraphText(self._data, self._file, self._start + start, self._end, self.extents)

    def span(self, start: int, end: int) -> GraphText:
        """The text [start, end) (no copy)."""
        end = min(max(end, start), len(self))
        return GraphText(
            self._data, self._file, self._start + start, self._start + end, self.extents
        )

    def pieces(self, size: int) -> Iterator[bytes]:
        """The text in pieces of about size bytes, each of whole lines."""
        at, end = 0, len(self)
        while at < end:
            piece = self[at : at + size]
            cut = piece.rfind(b"\n") + 1 if at + size < end else len(piece)
            if cut <= 0:  # a line longer than size: up to its end
                more = self[at + size :]
                cut = len(piece) + more.find(b"\n") + 1 if b"\n" in more else len(piece) + len(more)
                piece = piece + more
            yield piece[:cut]
            at += cut


def _pread(fd: int, a: int, b: int, origin: int, name: object) -> bytes:
    """Bytes [a, b) of a text whose byte `origin` is the file fd's first."""
    data = os.pread(fd, b - a, a - origin)
    while len(data) < b - a:  # pread may return less than asked (a signal)
        more = os.pread(fd, b - a - len(data), a - origin + len(data))
        if not more:
            raise OSError(f"{name}: shorter than the graph written to it")
        data += more
    return data


@dataclass(frozen=True)
class Converted:
    """The graph of a library as N-Triples, with what is needed to explain it to a person."""

    text: GraphText
    layout: Layout
    # entry IRI -> entry, in IRI order; in a spooled build without its description, which
    # only the text keeps (read them with descriptions(): the same in either case)
    entries: dict[str, Entry]
    categories: dict[str, Category]  # concept IRI -> category, in IRI order
    title: str
    iris: Iris
    statistics: Statistics  # the counts VoID publishes
    modified: Mapping[str, str] = field(default_factory=dict)  # entry IRI -> dcterms:modified
    months: tuple[Month, ...] = ()  # the entries by month, as they are in ntriples
    fingerprints: Mapping[str, str] = field(default_factory=dict)  # of the entries rendered
    # entry IRI -> the ids of the publishers its title names (graph/publishers.py), only
    # entries with some; the organisations in the graph (IRI -> row, IRI order); the
    # parentheses that name no publisher of the table, with how many titles hold each
    publishers: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    organisations: Mapping[str, Publisher] = field(default_factory=dict)
    candidates: Mapping[str, int] = field(default_factory=dict)

    @property
    def ntriples(self) -> bytes:
        """The whole graph as N-Triples (read at once: for small libraries and tests; a
        build reads ranges of ``text``)."""
        return bytes(self.text)

    @cached_property
    def triples(self) -> list[Triple]:
        """The triples as pyoxigraph terms, in order (parsed on first use)."""
        return list(pyoxigraph.parse(self.ntriples, pyoxigraph.RdfFormat.N_TRIPLES))

    def descriptions(self, first: int, last: int) -> list[str]:
        """The descriptions of the entries first to last (IRI order; "" for none), read from
        the text: a spooled build does not keep them with its entries (a million entries'
        descriptions were 640 MB)."""
        starts = self.layout.entries
        base = starts[first]
        text = self.text[base : starts[last]]
        literals: list[bytes] = []  # '"' + each description's escaped text + '"', or '""'
        for i in range(first, last):
            a, b = starts[i] - base, starts[i + 1] - base
            at = text.find(_DESCRIPTION_BYTES, a, b)
            if at < 0:
                literals.append(b'""')
                continue
            at += len(_DESCRIPTION_BYTES)
            end = text.index(b'"@en .\n', at)
            literals.append(text[at - 1 : end + 1])
        # N-Triples' escapes in a literal (ECHAR, \uXXXX; graph/convert.py _quoted) are
        # JSON's, so a JSON reader reads them back: all at once as one array (a json.loads a
        # literal was 0.7 s of CPU for 100k entries, most of it the call's own).
        out: list[str] = json.loads(b"[" + b",".join(literals) + b"]")
        return out

    def entry_span(self, index: int) -> bytes:
        """The N-Triples lines of the index-th entry (IRI order)."""
        return self.text[self.layout.entries[index] : self.layout.entries[index + 1]]

    @property
    def context(self) -> bytes:
        """Every triple that is not an entry's own and not a link to an entry."""
        text, layout = self.text, self.layout
        return text[: layout.parts] + text[layout.scheme : layout.entries[0]]

    @property
    def links(self) -> bytes:
        """The library's dcterms:hasPart lines, one per entry."""
        return self.text[self.layout.parts : self.layout.scheme]

    def with_modified(self, modified: Mapping[str, str]) -> Converted:
        """The same library where the given entries carry dcterms:modified (after created)."""
        if dict(modified) == dict(self.modified):
            return self
        return convert(
            list(self.entries.values()),
            self.iris,
            self.title,
            modified_of=lambda iri, _: modified.get(iri),
        )


def library_title(pages: Sequence[Page], default: str = "Library") -> str:
    """The library's title: what the page headings share before ' – <Category>'."""
    names = {p.heading.split(" – ")[0].strip() for p in pages if p.heading}
    return names.pop() if len(names) == 1 else default


def format_created(entry: Entry) -> str:
    """xsd:dateTime lexical form with the UK offset of that moment (+00:00 or +01:00)."""
    created = entry.created
    # Without microseconds (a listing's times are to the minute) isoformat() is the same text,
    # without the keyword's parsing: 3.1 against 5.0 us, three times an entry in a full build.
    return created.isoformat() if not created.microsecond else created.isoformat("T", "seconds")


def _forget_descriptions(entries: Iterable[Entry]) -> None:
    """Set the entries' descriptions to "" and their bodies to None (Entry: frozen for the
    type checker, a plain slotted dataclass at run time: graph/listing.py), by setattr mapped
    in C: a call of a Python function per entry was 1.9 s of a one-change rebuild at 1M."""
    held = list(entries)
    deque(map(setattr, held, repeat("description"), repeat("")), maxlen=0)
    deque(map(setattr, held, repeat("body"), repeat(None)), maxlen=0)


_CATEGORIES = attrgetter("categories")


def collect_categories(entries: Sequence[Entry], iris: Iris) -> dict[str, Category]:
    """Each distinct category label becomes one concept; two labels may not share a slug."""
    # The labels first, in C (a loop over every entry was 2 s of a rebuild at 1M entries);
    # the loop below, which words the error, runs only when two of them share an IRI.
    labels = set(chain.from_iterable(map(_CATEGORIES, entries)))
    minted = {label: iris.concept(label) for label in labels}
    if len(set(minted.values())) == len(minted):
        return {
            iri: Category(label, iri, concept_slug(label))
            for iri, label in sorted((iri, label) for label, iri in minted.items())
        }
    by_label: dict[str, str] = {}
    found: dict[str, Category] = {}
    for entry in entries:
        for label in entry.categories:
            if label in by_label:
                continue
            iri = iris.concept(label)
            seen = found.get(iri)
            if seen is not None:
                place = entry.places[0]
                raise ListingError(
                    place.file,
                    place.line,
                    f"category {label!r} and category {seen.label!r} would share the IRI <{iri}>; "
                    "expected category names that differ in more than case or punctuation",
                )
            by_label[label] = iri
            found[iri] = Category(label, iri, concept_slug(label))
    return dict(sorted(found.items()))


def convert(
    entries: Sequence[Entry],
    iris: Iris,
    title: str,
    progress: Callable[[int, int], None] | None = None,
    modified_of: ModifiedOf | None = None,
    reuse: ReuseMonth | None = None,
    spool: BinaryIO | None = None,
    publishers: Table | None = None,
    sources: Mapping[str, str] | None = None,
    written: Written | None = None,
) -> Converted:
    """Turn merged entries into the library's graph, month by month.

    modified_of(iri, fingerprint) gives the dcterms:modified of each entry rendered (None:
    none); a month reuse() gives (same name, same records) is taken as it is, with its
    dcterms:modified. progress(done, total) after each PROGRESS_STEP entries or so. With a
    spool (an empty file open for writing and reading), the N-Triples are written to it as
    each month is rendered, and read back from it by range: one month is in memory at a time,
    and the entries kept have no description (Converted.descriptions reads them).

    Entries listed without their descriptions (graph/listing.py Entry.body) have them read
    back a month at a time, for the months rendered only. sources: month -> digest of its
    entries' blocks of source text (listing.Page.months), which stands for their records in
    the months' digests: a rebuild then reads no description of a month it takes as it is.

    publishers: the table that recognises publishers in titles (default data/publishers.csv).
    Recognition is per month, before rendering (the organisations are written with the
    scheme, ahead of the entries): a month reuse.recognised() knows (same records, same
    table) is not recognised again, so a rebuild without changes recognises nothing.

    written(text, layout), with a spool, after each month: the text so far (flushed: it can
    be read from another thread) and its layout, whose entries are the starts of that month's
    entries, then its end (a full build validates them meanwhile: graph/shacl.py Ahead).
    """
    # The listings are checked as they are read (graph/listing.py); --title here.
    refuse_non_xml("library title", title)
    categories = collect_categories(entries, iris)
    concept_of = {c.label: iri for iri, c in categories.items()}
    groups = group_months(entries)
    table = publishers if publishers is not None else default_table()
    if sources is not None and all(name in sources for name in groups):
        digests = {name: source_digest(sources[name], table.key) for name in groups}
    else:
        digests = {
            name: records_digest(_described(group), table.key) for name, group in groups.items()
        }
    # Every IRI first (two entries that would share one are refused here, month by month):
    # the library's hasPart lines, one per entry, come before the entries' own lines. A month
    # the current release has with the same records has the same IRIs, in its index: minting
    # them again was a fifth of a rebuild (graph/iris.py slugify, 1.1 s at 100k entries).
    named = {
        name: _named_month(group, iris, reuse.listed(name, digests[name]) if reuse else None)
        for name, group in groups.items()
    }
    by_iri: dict[str, Entry] = {}
    for month_entries in named.values():
        by_iri.update(sorted(month_entries.items()))  # IRIs differ: entries never compared
    recognitions: dict[str, Recognition] = {}
    for name in groups:
        known = reuse.recognised(name, digests[name]) if reuse is not None else None
        recognitions[name] = known if known is not None else recognise(named[name], table)
    publisher_of = {
        iri: ids for found in recognitions.values() for iri, ids in found.publishers.items()
    }
    used = sorted({pid for ids in publisher_of.values() for pid in ids})
    organisations = {iris.publisher(pid): table.publishers[pid] for pid in used}
    candidates: Counter[str] = Counter()
    for found in recognitions.values():
        candidates.update(found.candidates)
    sink = _Sink(spool)
    # The library's links are the same as the current release's when every month has the
    # same IRIs in the same order: then its chunk is taken as it is, neither formatted nor
    # hashed (2 s and 1.6 s of a one-change rebuild at 1M entries).
    same = reuse.library({n: tuple(m) for n, m in named.items()}) if reuse is not None else None
    parts, scheme_at, library = _write_prefix(
        sink, by_iri, categories, organisations, iris, title, same
    )
    months: list[Month] = []
    starts: list[int] = []
    prints: dict[str, str] = {}
    modified: dict[str, str] = {}
    done = reported = described = 0
    for name, group in groups.items():
        digest = digests[name]
        month = reuse(name, digest) if reuse is not None else None
        lazy = any(e.body is not None for e in group)
        made = False  # the month rendered anew, not taken as the current release has it
        if month is None or month.listed != tuple(named[name]):
            made = True
            month_named = named[name]
            if lazy:
                month_named = dict(zip(month_named, _described(month_named.values()), strict=True))
                if spool is None:
                    by_iri.update(month_named)
            month, rendered = render_month(
                name, group, iris, concept_of, modified_of, digest, month_named, recognitions[name]
            )
            prints.update(rendered)
        elif lazy and spool is None:
            by_iri.update(zip(named[name], _described(named[name].values()), strict=True))
        modified.update(month.modified)
        at = sink.size
        starts.extend(at + s for s in month.starts[:-1])
        sink.write(month.text, month.source, month.starts[-1])
        if written is not None and spool is not None:
            spool.flush()
            month_starts = tuple(at + s for s in month.starts)
            written(sink.text(), Layout(parts, scheme_at, month_starts, library))
        if month.described >= 0:
            described += month.described
        else:  # one description line an entry that has one (a literal writes '"' as '\"')
            described += month.text.count(_DESCRIPTION_BYTES)
        # Each month's text is in the spool now: kept too, it would double the memory.
        months.append(replace(month, text=b""))
        if spool is not None and (made or not lazy):
            # Converted.descriptions reads them from the spool: the entries let go of theirs
            # and of where they were in the listing, in place (the entries are this build's,
            # read for it, and nothing reads their descriptions after this month's render;
            # remade, they were 2.2 s of a rebuild at 1M entries). Entries read lazily of a
            # month taken as it is hold no description, and keep their bodies: freeing a
            # million of them was 1-1.5 s of a one-change rebuild at 1M entries, for 40-70
            # MiB of its peak; a full build frees them (its peak: +102 MiB otherwise).
            _forget_descriptions(map(by_iri.__getitem__, month.iris))
        done += len(group)
        if progress and done - reported >= PROGRESS_STEP:
            progress(done, len(entries))
            reported = done
    starts.append(sink.size)
    if progress:
        progress(len(entries), len(entries))
    layout = Layout(parts, scheme_at, tuple(starts), library)
    return Converted(
        sink.finish(),
        layout,
        by_iri,
        categories,
        title,
        iris,
        _statistics(by_iri, categories, modified, described, publisher_of, organisations),
        {iri: when for iri, when in modified.items() if iri in by_iri},
        tuple(months),
        prints,
        publisher_of,
        organisations,
        dict(candidates),
    )


class _Sink:
    """Where convert writes the N-Triples: a spool file, or memory."""

    def __init__(self, spool: BinaryIO | None) -> None:
        self.spool = spool
        self.pieces: list[bytes] = []
        self.size = 0
        self.extents: list[Extent] = []

    def write(self, data: bytes, source: str = "", size: int = -1) -> None:
        """Add data; source: a file that holds exactly data and stays as it is while the
        build runs (a part of the current release), which a spool then refers to instead of
        writing data again (a hole: Extent). With a source and a spool, data may be b"" (not
        read) and size the file's; otherwise size, if given, is len(data)."""
        size = len(data) if size < 0 else size
        if self.spool is not None and source and size:
            self.extents.append(Extent(self.size, self.size + size, source))
            self.spool.seek(size, os.SEEK_CUR)
            self.size += size
            return
        if not data and size:  # not read, and no spool to refer to the file from
            with open(source, "rb") as file:
                data = file.read()
        if len(data) != size:
            raise ValueError(f"{source or 'data'}: {len(data)} bytes where {size} were expected")
        if self.spool is None:
            self.pieces.append(data)
        else:
            self.spool.write(data)
        self.size += size

    def finish(self) -> GraphText:
        if self.spool is None:
            return GraphText(b"".join(self.pieces))
        self.spool.flush()
        return self.text()

    def text(self) -> GraphText:
        """The spool's text so far (flushed by the caller)."""
        return GraphText(file=self.spool, end=self.size, extents=self.extents)


LINKS_BATCH = 20_000  # hasPart lines formatted at a time


def _write_prefix(
    sink: _Sink,
    entries: Mapping[str, Entry],
    categories: Mapping[str, Category],
    organisations: Mapping[str, Publisher],
    iris: Iris,
    title: str,
    previous: PreviousChunk | None = None,
) -> tuple[int, int, str]:
    """The library, its links, the scheme and the publishers (the layout's first sections);
    return where the links and the scheme begin, and the library chunk's key when it is
    previous (the current release's, given when its links are these: taken as it is if its
    first lines are these too, as its size then shows)."""
    # Terms built once by pyoxigraph check the base IRI as before (ValueError if malformed);
    # every other IRI is the base plus an ASCII slug.
    library = f"<{NamedNode(iris.library).value}>"
    scheme = f"<{NamedNode(iris.scheme).value}>"
    head = [
        f"{library} {_TYPE} <{DCMITYPE.Collection}> .\n",
        f"{library} {_TITLE} {_en(title)} .\n",
        f"{library} {_DESCRIPTION} {_en(describe_holdings(len(entries), len(categories)))} .\n",
        f"{library} {_THEME_TAXONOMY} {scheme} .\n",
    ]
    opening = "".join(head).encode("utf-8")
    line = len(f"{library} {_HAS_PART} <> .\n".encode())
    key = ""
    if (
        previous is not None
        and sink.spool is not None
        and previous.size == len(opening) + sum(line + len(i.encode()) for i in entries)
        and _starts_with(previous.path, opening)
    ):
        sink.write(b"", previous.path, previous.size)
        parts, key = len(opening), previous.key
    else:
        sink.write(opening)
        parts = sink.size
        every = list(entries)
        for i in range(0, len(every), LINKS_BATCH):
            batch = every[i : i + LINKS_BATCH]
            sink.write(
                "".join(f"{library} {_HAS_PART} <{iri}> .\n" for iri in batch).encode("utf-8")
            )
    scheme_at = sink.size
    lines = [
        f"{scheme} {_TYPE} <{SKOS.ConceptScheme}> .\n",
        f"{scheme} {_TITLE} {_en(f'Categories of {title}')} .\n",
    ]
    lines += [f"{scheme} {_HAS_TOP_CONCEPT} <{iri}> .\n" for iri in categories]
    for iri, category in categories.items():
        concept = f"<{iri}>"
        lines += [
            f"{concept} {_TYPE} <{SKOS.Concept}> .\n",
            f"{concept} {_PREF_LABEL} {_en(category.label)} .\n",
            f"{concept} {_NOTATION} {_quoted(category.notation)} .\n",
            f"{concept} {_IN_SCHEME} {scheme} .\n",
            f"{concept} {_TOP_CONCEPT_OF} {scheme} .\n",
        ]
    for iri, publisher in organisations.items():
        org = f"<{iri}>"
        lines += [
            f"{org} {_TYPE} {_ORGANIZATION} .\n",
            f"{org} {_PREF_LABEL} {_en(publisher.name)} .\n",
        ]
        if publisher.sameas:
            lines.append(f"{org} {_SAME_AS} <{NamedNode(publisher.sameas).value}> .\n")
    sink.write("".join(lines).encode("utf-8"))
    return parts, scheme_at, key


def _starts_with(path: str, data: bytes) -> bool:
    """Whether the file path begins with data."""
    try:
        with open(path, "rb") as file:
            return file.read(len(data)) == data
    except OSError:
        return False


def describe_holdings(n_entries: int, n_categories: int) -> str:
    """The library's description: what it holds."""
    return (
        f"A library of {n_entries} document{'s' * (n_entries != 1)} (reports, guidance, acts) "
        f"in {n_categories} categor{'ies' if n_categories != 1 else 'y'}, "
        "each with its title, the date and time it was added, its categories and a description."
    )


@dataclass(frozen=True)
class Month:
    """The entries of one month (the 'YYYY-MM' of their IRI) as N-Triples: one dump chunk.

    A build takes a month from the current release when its entries' records are the same
    (``digest``): then its text is the same too (graph/publication.py, graph/dumps.py).
    """

    name: str  # 'YYYY-MM'
    iris: tuple[str, ...]  # its entries' IRIs, in IRI order
    text: bytes  # b"" once written into Converted.text
    starts: tuple[int, ...]  # where each entry begins in text, then len(text)
    key: str  # sha256 of text: the dump chunk's key
    digest: str  # records_digest of its entries
    listed: tuple[str, ...]  # the same IRIs in listing order (merge_pages), for the cache
    modified: Mapping[str, str] = field(default_factory=dict)  # IRI -> its dcterms:modified
    recognition: Recognition = field(default_factory=lambda: Recognition())
    # a month taken from the current release: the file that holds exactly its text (its
    # N-Triples dump part), which the build's spool refers to instead of a copy (Extent);
    # then text may be b"" (not read: its size is starts[-1])
    source: str = ""
    described: int = -1  # how many of its entries have a description (-1: count them in text)


@dataclass(frozen=True)
class Recognition:
    """What the publishers table found in one month's titles: entry IRI -> the ids of the
    publishers its title names (only entries with some, IRI order), and the candidates that
    match no row, with how many titles hold each (graph/publishers.py)."""

    publishers: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    candidates: Mapping[str, int] = field(default_factory=dict)


def recognise(named: Mapping[str, Entry], table: Table) -> Recognition:
    """The publishers of a month's entries (IRI -> entry), by the table."""
    publishers: dict[str, tuple[str, ...]] = {}
    candidates: Counter[str] = Counter()
    for iri, entry in named.items():
        title = entry.title
        if not may_name(title):  # most titles (Table.find's own first test, without its call)
            continue
        ids, unmatched = table.find(title)
        if ids:
            publishers[iri] = ids
        if unmatched:
            candidates.update(unmatched)
    return Recognition(dict(sorted(publishers.items())), dict(candidates))


# What dcterms:modified an entry gets, from its IRI and its fingerprint (graph/history.py)
ModifiedOf = Callable[[str, str], "str | None"]
Written = Callable[[GraphText, Layout], None]  # convert's written: a month is in the spool


@dataclass(frozen=True)
class PreviousChunk:
    """A chunk of the current release's N-Triples taken as it is: its key and the file that
    holds exactly its bytes (its dump part), and their number."""

    key: str
    path: str
    size: int


class ReuseMonth(Protocol):
    """The months of the current release (graph/dumps.py Months), by name and digest of
    their entries (records_digest): the month, what the table recognised in it, or its
    entries' IRIs in listing order; None when the release has no such month. And its
    library chunk, when its months had these IRIs (month -> IRIs in listing order)."""

    def __call__(self, name: str, digest: str) -> Month | None: ...

    def recognised(self, name: str, digest: str) -> Recognition | None: ...

    def listed(self, name: str, digest: str) -> tuple[str, ...] | None: ...

    def library(self, listed: Mapping[str, Sequence[str]]) -> PreviousChunk | None: ...


def month_of(entry: Entry) -> str:
    """The month of an entry's IRI: the local date it was added (Iris.entry)."""
    created = entry.created
    return f"{created.year:04d}-{created.month:02d}"


def group_months(entries: Sequence[Entry]) -> dict[str, list[Entry]]:
    """Entries by the month of their IRI, months in order, entries in listing order."""
    # By (year, month), named once each: a name per entry was a tenth of a rebuild's convert.
    months: dict[tuple[int, int], list[Entry]] = {}
    for entry in entries:
        created = entry.created
        key = (created.year, created.month)
        group = months.get(key)
        if group is None:
            months[key] = [entry]
        else:
            group.append(entry)
    return {f"{year:04d}-{month:02d}": group for (year, month), group in sorted(months.items())}


def records_digest(entries: Sequence[Entry], table: str = "") -> str:
    """A digest of what the N-Triples of these entries are made from (places aside): their
    records and the publishers table (its Table.key)."""
    records = "\x1d".join(
        f"{e.title}\x1f{e.created.isoformat()}\x1f{chr(0x1E).join(e.categories)}\x1f{e.description}"
        for e in entries
    )
    text = table + "\x1d" + records
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def source_digest(blocks: str, table: str = "") -> str:
    """A month's digest from the digest of its entries' blocks of source text
    (graph/listing.py Page.months) and the publishers table (its Table.key)."""
    return hashlib.sha256(f"source\x1d{table}\x1d{blocks}".encode()).hexdigest()


def _described(entries: Iterable[Entry]) -> list[Entry]:
    """The entries with their descriptions held (read back for those listed without)."""
    listed = list(entries)
    if all(e.body is None for e in listed):
        return listed
    return [
        Entry(e.title, e.created, e.categories, text, e.places)
        for e, text in zip(listed, descriptions(listed), strict=True)
    ]


def _fingerprint(lines: list[str]) -> str:
    """An entry's fingerprint (history.fingerprints_of_ntriples): sha256 of its N-Triples
    lines in sorted order, dcterms:modified left out; given in that order, each ending in a
    newline (the last one is not hashed: history joins the lines with newlines)."""
    return hashlib.sha256("".join(lines)[:-1].encode("utf-8")).hexdigest()


def _named_month(
    entries: Sequence[Entry], iris: Iris, listed: Sequence[str] | None
) -> dict[str, Entry]:
    """month_iris(entries), or the entries by the IRIs the current release gave them (listed,
    in listing order) when their records are the same: IRIs are a function of the records and
    of graph/iris.py, whose code the release's index is keyed by (graph/dumps.py); neither
    has two entries sharing one, or that release would not have been built."""
    if listed is None or len(listed) != len(entries):
        return month_iris(entries, iris)
    return dict(zip(listed, entries, strict=True))


def month_iris(entries: Sequence[Entry], iris: Iris) -> dict[str, Entry]:
    """One month's entries by IRI, in listing order; raise ListingError when two of them
    would share an IRI."""
    by_iri: dict[str, Entry] = {}
    for entry in entries:
        iri = iris.entry(entry.title, entry.created)
        seen = by_iri.setdefault(iri, entry)
        if seen is not entry:
            places = (seen.places[0], entry.places[0])
            first, second = sorted(places, key=lambda p: (p.file, p.line))
            raise ListingError(
                second.file,
                second.line,
                f"entry {entry.title!r} and entry {seen.title!r} at {first} (both added "
                f"{entry.created:%d/%m/%Y %H:%M}) would share the IRI <{iri}>; expected titles "
                "that differ in more than case or punctuation",
            )
    return by_iri


def render_month(
    name: str,
    entries: Sequence[Entry],
    iris: Iris,
    concept_of: Mapping[str, str],
    modified_of: ModifiedOf | None = None,
    digest: str = "",
    named: Mapping[str, Entry] | None = None,
    recognition: Recognition | None = None,
) -> tuple[Month, dict[str, str]]:
    """One month's entries as N-Triples, with the fingerprint of each entry; raise
    ListingError when two of them would share an IRI. named: month_iris(entries), when the
    caller has it; recognition: the publishers of its entries (recognise(); default none)."""
    library = f"<{iris.library}>"
    by_iri = named if named is not None else month_iris(entries, iris)
    listed = tuple(by_iri)
    ordered = sorted(listed)
    out: list[bytes] = []
    starts: list[int] = []
    at = 0
    prints: dict[str, str] = {}
    modified: dict[str, str] = {}
    found = recognition if recognition is not None else Recognition()
    publisher_of = found.publishers
    for iri in ordered:
        entry = by_iri[iri]
        node = f"<{iri}>"
        kind = f"{node} {_A_TEXT}"
        identifier = f"{node} {_IDENTIFIER} {_quoted(iri.rsplit('/', 1)[1])} .\n"
        title = f"{node} {_TITLE} {_en(entry.title)} .\n"
        created = f"{node} {_CREATED} {_datetime(format_created(entry))} .\n"
        subjects = [
            f"{node} {_SUBJECT} <{concept}> .\n"
            for concept in sorted(concept_of[label] for label in entry.categories)
        ]
        # In concept IRI order in the data; the fingerprint wants line order ('-' < '>').
        lines = sorted(subjects) if len(subjects) > 1 else subjects
        # Publisher IRIs share their start, so ids in order are IRIs in order.
        published = [
            f"{node} {_PUBLISHER} <{iris.publisher(pid)}> .\n"
            for pid in sorted(publisher_of.get(iri, ()))
        ]
        part = f"{node} {_IS_PART_OF} {library} .\n"
        # The fingerprint's lines in sorted order without sorting them: the subject is the
        # same, so the predicates decide (dcterms created < description < identifier <
        # isPartOf < publisher < subject < title, then rdf:type); tests/test_convert.py
        # checks it.
        if entry.description:
            description = f"{node} {_DESCRIPTION} {_en(entry.description)} .\n"
            prints[iri] = fp = _fingerprint(
                [created, description, identifier, part, *published, *lines, title, kind]
            )
        else:
            description = ""
            prints[iri] = fp = _fingerprint(
                [created, identifier, part, *published, *lines, title, kind]
            )
        when = modified_of(iri, fp) if modified_of is not None else None
        modified_line = ""
        if when is not None:
            modified_line = f"{node} {_MODIFIED} {_datetime(when)} .\n"
            modified[iri] = when
        block = [
            kind,
            identifier,
            title,
            created,
            modified_line,
            description,
            *subjects,
            *published,
            part,
        ]
        starts.append(at)
        piece = "".join(block).encode("utf-8")
        at += len(piece)
        out.append(piece)
    starts.append(at)
    text = b"".join(out)
    month = Month(
        name,
        tuple(ordered),
        text,
        tuple(starts),
        hashlib.sha256(text).hexdigest(),
        digest or records_digest(entries),
        listed,
        modified,
        found,
        described=sum(1 for iri in ordered if by_iri[iri].description),
    )
    return month, prints


def _statistics(
    entries: Mapping[str, Entry],
    categories: Mapping[str, Category],
    modified: Mapping[str, str],
    described: int,
    publisher_of: Mapping[str, tuple[str, ...]],
    organisations: Mapping[str, Publisher],
) -> Statistics:
    """The counts VoID publishes (described: the entries with a description)."""
    n_entries, n_concepts = len(entries), len(categories)
    n_orgs = len(organisations)
    sameas = {p.sameas for p in organisations.values() if p.sameas}
    n_sameas = sum(1 for p in organisations.values() if p.sameas)
    subjects = sum(len(e.categories) for e in entries.values())
    n_modified = sum(1 for iri in modified if iri in entries)
    properties = Counter(
        {
            str(RDF.type): 2 + n_concepts + n_entries + n_orgs,
            str(DCTERMS.title): 2 + n_entries,
            str(DCTERMS.description): 1 + described,
            str(DCAT.themeTaxonomy): 1,
            str(DCTERMS.hasPart): n_entries,
            str(SKOS.hasTopConcept): n_concepts,
            str(SKOS.prefLabel): n_concepts + n_orgs,
            str(SKOS.notation): n_concepts,
            str(SKOS.inScheme): n_concepts,
            str(SKOS.topConceptOf): n_concepts,
            str(DCTERMS.identifier): n_entries,
            str(DCTERMS.created): n_entries,
            str(DCTERMS.modified): n_modified,
            str(DCTERMS.subject): subjects,
            str(DCTERMS.isPartOf): n_entries,
            str(DCTERMS.publisher): sum(len(ids) for ids in publisher_of.values()),
            str(OWL.sameAs): n_sameas,
        }
    )
    classes = Counter(
        {
            str(DCMITYPE.Collection): 1,
            str(SKOS.ConceptScheme): 1,
            str(SKOS.Concept): n_concepts,
            str(DCMITYPE.Text): n_entries,
            str(FOAF.Organization): n_orgs,
        }
    )
    # IRIs in object position: the classes, the scheme, every concept (hasTopConcept), every
    # entry (hasPart), the library itself once an entry is part of it, every organisation
    # (dcterms:publisher: only those named are in the graph) and their IRIs elsewhere.
    objects = sum(1 for n in classes.values() if n) + 1 + n_concepts + n_entries + (n_entries > 0)
    objects += n_orgs + len(sameas)
    return Statistics(
        triples=sum(properties.values()),
        subjects=2 + n_concepts + n_entries + n_orgs,
        objects=objects,
        properties=+properties,
        classes=+classes,
    )


def jsonld_nodes(
    converted: Converted, descriptions: Sequence[str] | None = None
) -> Iterator[dict[str, Any]]:
    """The JSON-LD node objects of the library, as graph.jsonld.nodes() compacts its triples,
    made from the records without parsing the triples back (tests/test_publication.py checks
    they are equal): node per subject, keys in triple order, values as the context coerces
    them (language-tagged English and xsd:dateTime as plain strings, IRIs, @set lists).
    descriptions: those of converted.entries, in order (default: read from the text)."""
    iris = converted.iris
    yield {
        "id": iris.library,
        "type": "Collection",
        "title": converted.title,
        "description": describe_holdings(len(converted.entries), len(converted.categories)),
        "themeTaxonomy": iris.scheme,
        "hasPart": list(converted.entries),
    }
    yield {
        "id": iris.scheme,
        "type": "ConceptScheme",
        "title": f"Categories of {converted.title}",
        "hasTopConcept": list(converted.categories),
    }
    for iri, category in converted.categories.items():
        yield {
            "id": iri,
            "type": "Concept",
            "prefLabel": category.label,
            "notation": category.notation,
            "inScheme": iris.scheme,
            "topConceptOf": iris.scheme,
        }
    for iri, publisher in converted.organisations.items():
        org: dict[str, Any] = {"id": iri, "type": "Organization", "prefLabel": publisher.name}
        if publisher.sameas:
            org["sameAs"] = publisher.sameas
        yield org
    if descriptions is None:
        descriptions = converted.descriptions(0, len(converted.entries))
    # The entries' nodes as the dump writes them (jsonld_entry_texts), read back.
    texts = jsonld_entry_texts(converted, converted.entries.items(), descriptions)
    yield from map(json.loads, texts)


# How json.dumps(..., ensure_ascii=False) writes a string (json.encoder, in C).
_json_text = json.encoder.encode_basestring


def jsonld_entry_texts(
    converted: Converted, entries: Iterable[tuple[str, Entry]], descriptions: Iterable[str]
) -> Iterator[str]:
    """The JSON-LD node of each entry (IRI, entry) with its description, as the text
    json.dumps(node, ensure_ascii=False) would give, written directly: a dict made and walked
    by the encoder for each of a million entries was most of the JSON-LD dump's time
    (tests/test_publication.py checks the nodes and the dumps)."""
    enc = _json_text
    iris = converted.iris
    modified, publishers = converted.modified, converted.publishers
    tail = f'"isPartOf": {enc(iris.library)}}}'
    concept_of = {c.label: iri for iri, c in converted.categories.items()}
    # The subject lists of the entries' tuples of categories, few and shared (listing.py).
    subjects: dict[tuple[str, ...], str] = {}
    for (iri, entry), text in zip(entries, descriptions, strict=True):
        out = (
            f'{{"id": {enc(iri)}, "type": "Text", "identifier": {enc(iri.rsplit("/", 1)[1])}, '
            f'"title": {enc(entry.title)}, "created": {enc(format_created(entry))}, '
        )
        when = modified.get(iri)
        if when is not None:
            out += f'"modified": {enc(when)}, '
        if text:
            out += f'"description": {enc(text)}, '
        if entry.categories:
            listed = subjects.get(entry.categories)
            if listed is None:
                concepts = sorted(concept_of[label] for label in entry.categories)
                listed = subjects[entry.categories] = (
                    '"subject": [' + ", ".join(map(enc, concepts)) + "], "
                )
            out += listed
        ids = publishers.get(iri)
        if ids:
            named = ", ".join(enc(iris.publisher(pid)) for pid in sorted(ids))
            out += f'"publisher": [{named}], '
        yield out + tail
