"""Build a publication folder aside, then swap it in atomically.

Layout of ``OUT`` (default ``publication/``, git-ignored):
  current -> releases/<id>      symlink, replaced atomically (rename(2)) by each build
  releases/<id>/
    manifest.json               id, time, base IRI, counts, files with size and sha256
    dumps/library.{ttl,nt,jsonld,rdf}[.gz].parts
                                each dump as the list of its parts (graph/parts.py)
    dumps/parts/                the dumps' parts, shared with the previous release by hard
                                links when unchanged (graph/dumps.py)
    void.ttl                    VoID + DCAT description
    index.sqlite                the lists pages show (graph/index.py)
    index.facets                the search's facet rows as arrays, mapped by workers
    context.nt                  the triples of the library (but its parts), the scheme, its
                                concepts and the publishers: what workers read of them
    validation.ttl              the SHACL validation report
    history.jsonl, entries.json, entries/<YYYY-MM>.json
                                the change history (graph/history.py)
    chunks.marshal, chunks/     what the next build may reuse (graph/dumps.py)
    store/                      the embedded Oxigraph store (default graph: the library;
                                named graph <base>.well-known/void: the VoID description)
  releases/.building-*          a build in progress; never read, removed when stale (its
                                .graph.nt: the graph's N-Triples as convert writes them,
                                read back by range by every later phase; deleted before
                                the release is synced)
  .lock                         locked by the build that is writing (one at a time)
  .parsed/                      what the last build read of a long listing, by segment
                                (graph/listing.py ParseCache): a rebuild scans only the
                                segments whose bytes changed
A build that fails or is killed never touches ``current``; the last KEEP releases stay on
disk so a server still reading an older one is not pulled from under its feet.

Phases (each reported to a progress callback, and timed in Outcome.phases):
  parse      listing pages -> entries (graph/listing.py)
  convert    entries -> the graph as N-Triples text, month by month, each entry with the
             dcterms:modified history decides; unchanged months read from the current
             release (graph/convert.py, graph/dumps.py Months)
  history    changes since the current release (graph/history.py)
  validate   SHACL, by parts, two threads (graph/shacl.py); only changed months on a rebuild
  load       a remote store only: waiting for the store's load, in triples sent
  write      dumps and their gzip, history, VoID, manifest, fsync, swap
The store is loaded (or the current one copied and updated) by a background thread from the
end of convert; the dumps are written by a second one, during validation when it has little
to do (a rebuild), after it otherwise, except Turtle and RDF/XML, which a full build writes
from the spool in a process of its own during validation (bench/build.py and
bench/incremental.py measure it). The index of a library of index.FULL_APART entries or more
written whole (a full build) has its rows written by another process from the end of convert
(graph/index.py), then the history's tables into its file; what nothing waits for until the
end (that dump writer, the store's load, the other dumps) runs at a lower priority (nice)
meanwhile. History writes each month's states into the release as
soon as it has compared them (graph/history.py compute's spill): one month held at a time.
The load reports nothing itself (one line on a terminal): a remote load, which takes a
while, is waited for in a phase of its own once validation is done.
The cyclic garbage collector is off during a build.

A build that dies leaves its graphs in a remote store named by its folder's store.json
(graph/store/sparql.py); the next build drops them and starts clean (a load is never
resumed), and removes the folder only once they are dropped. A failed build drops its
graphs at once (or, when the store cannot, keeps its store.json for the next build); a
pruned release's graphs go before its folder does.
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import json
import os
import pickle
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed, wait
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, BinaryIO, Protocol, cast, runtime_checkable
from urllib.parse import urlsplit

from graph import dumps, history, parts, publishers, shacl
from graph import index as release_index
from graph.convert import Converted, convert, describe_holdings, library_title
from graph.describe import DatasetInfo, DumpFile, Linkset, describe_dataset
from graph.dumps import YIELDING
from graph.enrich.build import enrich
from graph.enrich.linkset import Written, store_links
from graph.errors import PublicationError, StoreError, ValidationFailed
from graph.formats import DUMP_FORMATS, GZIP_SUFFIX, JSONLD, NTRIPLES, RDFXML, TURTLE, RdfFormat
from graph.index import FULL_WRITER, PreviousCopy, full_write_feed, write_release_index
from graph.iris import Iris
from graph.listing import Entry, ParseCache, month_digests, read_listings
from graph.namespaces import KGPUB, OWL
from graph.sitemap import write_release_sitemaps
from graph.store import EMBEDDED, VOID_FILE, Loader, StoreSettings, open_loader
from graph.store.files import CONTEXT_FILE
from graph.store.sparql import RECORD as STORE_RECORD
from graph.store.sparql import LoadReport

KEEP = 3
# gzip level of the dumps, ISA-L's (0-3; graph/dumps.py): 3 deflates text at about 250 MB/s,
# 3x zlib's level 4, for 6% more bytes (zlib's 4 was 9% more than its 6, at 2.5x its speed):
# 6 GB of dumps at 1M entries. bench/build.py --parts measures them.
GZIP_LEVEL = 3
MANIFEST = "manifest.json"
# A file's times come from the kernel's coarse clock, which may lag time.time_ns() by a tick.
_CLOCK_SLACK_NS = 1_000_000_000
SPOOL = ".graph.nt"  # the graph's N-Triples while a release is built (graph/convert.py)
CURRENT = "current"
RELEASES = "releases"
PARSED = ".parsed"  # the readings of a long listing's segments (graph/listing.py ParseCache)

Progress = Callable[[str, int, int], None]
ChunkProgress = Callable[[int, int], None]


def _no_progress(phase: str, done: int, total: int) -> None:
    return None


@dataclass(frozen=True)
class BuildOptions:
    """What a build needs beyond the sources."""

    base: str
    title: str | None = None
    engine: shacl.Engine = "turbo"
    license: str = ""
    publisher: str = ""
    store: StoreSettings = EMBEDDED  # where the graph is loaded (graph/store)
    enrich: bool = False  # related entries and the meaning search (graph/enrich; the extra)


@dataclass
class PhaseStat:
    """Time, CPU time (all threads) and peak memory of one build phase."""

    name: str
    seconds: float
    peak_rss_mib: float
    cpu_seconds: float = 0.0


@dataclass
class Outcome:
    """What a build or a validation produced."""

    entries: int
    concepts: int
    triples: int
    warnings: list[str]
    phases: list[PhaseStat] = field(default_factory=list)
    release: Path | None = None
    store: LoadReport | None = None  # what a remote store's load did (None: the embedded one)
    enriched: str = ""  # what enrichment did, publisher candidates (graph/enrich/build.py)


@runtime_checkable
class MeasuredLoader(Protocol):
    """A loader that tells how far its load is and what it did: a remote store's, whose load
    takes a while (graph/store/sparql.py)."""

    def loaded(self) -> tuple[int, int]:
        """Triples sent so far and in all."""
        ...

    def report(self) -> LoadReport:
        """What the load did, once it is done."""
        ...


LOAD_POLL = 0.2  # seconds between two progress reports of a remote load


def _cpu_seconds() -> float:
    """CPU time of this process (all threads) and of its children that have ended (the dump
    writer's process, _Apart: counted in the phase in which it ends)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


class _Phases:
    def __init__(self, progress: Progress) -> None:
        self.stats: list[PhaseStat] = []
        self.progress = progress
        self._start = time.perf_counter()
        self._cpu = _cpu_seconds()
        self._name = ""

    def start(self, name: str, total: int = 0) -> None:
        self._close()
        self._name, self._start, self._cpu = name, time.perf_counter(), _cpu_seconds()
        self.progress(name, 0, total)

    def _close(self) -> None:
        if self._name:
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            seconds, cpu = time.perf_counter() - self._start, _cpu_seconds() - self._cpu
            self.stats.append(PhaseStat(self._name, seconds, peak, cpu))
            self._name = ""

    def reporter(self, name: str) -> ChunkProgress:
        """A (done, total) callback reporting progress within the named phase."""
        return lambda done, total: self.progress(name, done, total)

    def finish(self) -> list[PhaseStat]:
        self._close()
        return self.stats


def prepare(
    sources: Sequence[Path],
    options: BuildOptions,
    phases: _Phases,
    spool: BinaryIO | None = None,
    ahead: shacl.Ahead | None = None,
) -> tuple[Converted, list[str]]:
    """Parse and convert (the N-Triples into spool, if given, validated meanwhile by ahead);
    raise ListingError."""
    iris = Iris.from_base(options.base)
    phases.start("parse", len(sources))
    pages, entries, warnings = read_listings(sources, lazy=True)
    phases.progress("parse", len(sources), len(sources))
    phases.start("convert", len(entries))
    converted = convert(
        entries,
        iris,
        options.title or library_title(pages),
        progress=phases.reporter("convert"),
        spool=spool,
        sources=month_digests(pages),
        written=ahead.written if ahead is not None else None,
    )
    return converted, warnings


def check(
    converted: Converted,
    options: BuildOptions,
    phases: _Phases,
    partition: shacl.Partition | None = None,
    ahead: shacl.Ahead | None = None,
) -> shacl.Report:
    """Validate the graph as it will be published, or the partition of it that may have
    changed (graph/dumps.py changed_partition); raise ValidationFailed. ahead: what validated
    the entries while convert wrote them."""
    partition = partition or shacl.Partition.of(converted)
    phases.start("validate", len(partition.starts) - 1)
    report = shacl.validate(
        partition,
        converted,
        engine=options.engine,
        progress=phases.reporter("validate"),
        ahead=ahead,
    )
    if not report.conforms:
        phases.finish()
        raise ValidationFailed(report.violations, report.turtle())
    return report


def validate_sources(
    sources: Sequence[Path], options: BuildOptions, progress: Progress = _no_progress
) -> Outcome:
    """Parse and validate only; write nothing."""
    phases = _Phases(progress)
    ahead = shacl.Ahead() if options.engine == "turbo" else None
    with _no_gc(), tempfile.TemporaryFile() as spool:
        try:
            converted, warnings = prepare(sources, options, phases, spool, ahead)
            check(converted, options, phases, ahead=ahead)
        finally:
            if ahead is not None:
                ahead.close()
    return Outcome(
        len(converted.entries),
        len(converted.categories),
        converted.statistics.triples,
        warnings,
        phases.finish(),
    )


def build(
    sources: Sequence[Path],
    out: Path,
    options: BuildOptions,
    progress: Progress = _no_progress,
    now: datetime | None = None,
    reuse: bool = True,
    left: list[object] | None = None,
) -> Outcome:
    """Build a publication from listings and make it the current one, atomically; with
    reuse, what the current release has of it (months of entries, dump chunks, their
    validation, the store) is taken, not made again, for the same result (graph/dumps.py).

    left: when given, the build's library in memory (its entries, their IRIs, texts and
    history) is appended to it instead of being freed as the build returns: for a caller
    that ends its process without freeing them (`kgpub build`: freeing them object by
    object took 2 s of a one-change rebuild at 1M entries)."""
    with _no_gc(freeze=left is not None):
        return _build(sources, out, options, progress, now, reuse, left)


LOCK = ".lock"


@contextlib.contextmanager
def _one_build_at_a_time(out: Path) -> Iterator[None]:
    """An exclusive lock on OUT/.lock (an empty file) while a build writes: two builds at once
    would both start from the same current release, and the one that swapped last would drop
    the other's history. The second is refused at once (the lock goes with its process,
    however it ends)."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd = os.open(out / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise PublicationError(f"{out}: cannot write the publication: {_reason(exc)}") from exc
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise PublicationError(
                f"{out}: another build is running (it holds {out / LOCK}); "
                "try again when it has finished"
            ) from None
        yield
    finally:
        os.close(fd)


@contextlib.contextmanager
def _no_gc(freeze: bool = False) -> Iterator[None]:
    """The cyclic garbage collector off: a build makes millions of objects that live until it
    ends (entries, their IRIs and texts), and each full collection walks them all; at 100k
    entries that was a third of an incremental build. A build leaves few cycles behind.

    freeze: the objects alive at the end are moved out of the collector's sight (gc.freeze)
    before it is turned on again: they are kept until the process ends (build's left), and
    all of them were still in the youngest generation, which the next collection walks (3 s
    at 1M entries)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if freeze:
            gc.freeze()
        if was:
            gc.enable()


def _build(
    sources: Sequence[Path],
    out: Path,
    options: BuildOptions,
    progress: Progress,
    now: datetime | None,
    reuse: bool,
    left: list[object] | None = None,
) -> Outcome:
    phases = _Phases(progress)
    iris = Iris.from_base(options.base)  # a bad base IRI is refused before anything is read
    phases.start("parse", len(sources))
    # A rebuild's copy of the current index starts now, beside the parse (_EarlyCopy).
    early = _EarlyCopy.start(out, iris.base) if reuse else None
    try:
        # The readings of the listing's segments are kept for the next build (graph/listing.py
        # ParseCache); a build that reuses nothing reads them not, but keeps its own.
        cache = ParseCache(out / PARSED, read=reuse)
        pages, entries, warnings = read_listings(sources, lazy=True, cache=cache)
        phases.progress("parse", len(sources), len(sources))
        stamp = (now or datetime.now(UTC)).replace(microsecond=0)
        title = options.title or library_title(pages)
        digests = month_digests(pages)
        del pages  # _publish lets go of the entries once converted: nothing else may hold them
        # Taken once the sources have been read: a listing with a mistake touches nothing.
        with _one_build_at_a_time(out):
            taken, early = early, None
            return _publish(
                out, options, phases, title, entries, warnings, stamp, reuse, digests, left, taken
            )
    finally:
        if early is not None:  # the parse or the lock failed: the copy and its folder go
            early.discard()


class _EarlyCopy:
    """A rebuild's copy of the current release's index (graph/index.py PreviousCopy), started
    with the parse in the folder the release will be built in, so that the copy (2.7 GB at 1M
    entries, and synced: disk-bound) is done by the time the index is written: it started
    after the parse, and a one-change rebuild at 1M waited for it up to 3 s. The folder is a
    build's (.building-PID-NS): a failed parse or a refused lock removes it, a killed build
    leaves it for the next build to remove, as a killed build's. _publish takes it when the
    current release is still the one copied; otherwise the copy is discarded."""

    def __init__(self, work: Path, previous: Path, copy: PreviousCopy) -> None:
        self.work, self.previous, self.copy = work, previous, copy

    @classmethod
    def start(cls, out: Path, base: str) -> _EarlyCopy | None:
        """The copy started, or None: no current release, or nowhere to write."""
        previous = _previous_release(out)
        if previous is None:
            return None
        try:
            work = _new_work(out / RELEASES)
        except OSError:
            return None
        return cls(work, previous, PreviousCopy(previous, work, base))

    def discard(self) -> None:
        self.copy.discard()
        shutil.rmtree(self.work, ignore_errors=True)


def _publish(
    out: Path,
    options: BuildOptions,
    phases: _Phases,
    title: str,
    entries: list[Entry],
    warnings: list[str],
    stamp: datetime,
    reuse: bool,
    sources: Mapping[str, str] | None = None,
    left: list[object] | None = None,
    early: _EarlyCopy | None = None,
) -> Outcome:
    """Build the release from the merged entries; entries is emptied once they are converted
    (converted.entries keeps them, lighter: graph/convert.py). sources: the digests of the
    months' blocks of source text (graph/listing.py month_digests), if the listing gave them.
    early: the folder and index copy _build started with the parse (_publish's from then on)."""
    started_ns = time.time_ns()
    iris = Iris.from_base(options.base)
    try:
        releases, work, stale = _start_release(out, early.work if early is not None else None)
        loader = open_loader(options.store, work, iris, stamp)
        _remove_stale_builds(releases, stale, loader)
    except BaseException:
        if early is not None:  # its copy's thread would wait for a decision, for ever
            early.discard()
        raise
    spool: BinaryIO | None = None
    index_copy: PreviousCopy | None = None
    ahead: shacl.Ahead | None = None
    try:
        # The graph's N-Triples, written as convert renders each month and read back by
        # range: removed before the release is synced.
        spool = (work / SPOOL).open("w+b")
        phases.start("convert", len(entries))
        previous = _previous_release(out)
        reusable = previous if reuse else None
        # The current index copied and synced while the build runs (graph/index.py): the one
        # started with the parse, when it copies this release.
        if early is not None and early.previous == reusable:
            index_copy = early.copy
        else:
            if early is not None:
                early.copy.discard()
            index_copy = PreviousCopy(reusable, work, iris.base)
        # History (graph/history.py) decides each entry's dcterms:modified as it is rendered:
        # an entry whose triples changed since the current release gets this build's time.
        decisions = history.decide(previous, stamp)
        index = dumps.read_index(reusable, iris.base, GZIP_LEVEL)
        # A damaged dump of the current release is not copied: what it holds is made again.
        index = dumps.verify_index(reusable, index)
        months = dumps.Months(reusable, index)
        validation = dumps.validation_key(options.engine)
        # Every entry is validated when the current release's were not, with these shapes:
        # then as convert writes them, on the core it leaves idle (graph/shacl.py Ahead).
        if options.engine == "turbo" and index.get("validation") != validation:
            ahead = shacl.Ahead()
        try:
            converted = convert(
                entries,
                iris,
                title,
                progress=phases.reporter("convert"),
                modified_of=decisions.modified_of,
                reuse=months,
                spool=spool,
                sources=sources,
                written=ahead.written if ahead is not None else None,
            )
        finally:
            months.close()
        entries.clear()
        index_copy.decide(converted)
        chunks = dumps.chunks_of(converted)
        reusing = dumps.Reuse(reusable, chunks, index, validation)
        # The store is loaded by a thread of its own (Oxigraph's loader releases the GIL)
        # while history and validation run. So are the dumps when validation has little to
        # do (a rebuild: they are mostly copies). A full validation's two threads and the
        # dump writers' threads slow each other down (the Turtle writer holds the GIL: 15 s
        # for validation instead of 4.5 at 100k): then Turtle and RDF/XML are written by a
        # process of their own (_Apart) during validation, and the others after it.
        # An index written whole: its rows by a process of its own from now on (the main
        # thread's last minute at 1M entries, alone, before): graph/index.py. Then the
        # index's rows and the history's tables after them are the build's longest chain,
        # and the threads of the store's load and of the dumps, which nothing waits for
        # until the end, yield the cores to it (nice, as the dump writer's process does).
        apart_index = index_copy.whole and len(converted.entries) >= release_index.FULL_APART
        with (
            ThreadPoolExecutor(
                max_workers=2, initializer=_yielding if apart_index else None
            ) as background,
            _Apart() as apart,
            _Apart(FULL_WRITER, "index writer") as indexer,
            ThreadPoolExecutor(max_workers=1) as eager,
        ):
            full_index: Future[str] | None = None
            if apart_index:
                full_index = indexer.submit()
                indexer.start(full_write_feed(converted, work / SPOOL, work))
            loading = background.submit(loader.stage, converted, reusable, chunks, index)
            # The fingerprints of the entries convert rendered: only they can have changed.
            prints = converted.fingerprints
            changed = None
            if options.engine == "turbo":

                def conformed(iri: str) -> bool:
                    """Whether the current release published the entry with these triples."""
                    found = prints.get(iri)
                    return found is not None and decisions.is_published_as(iri, found)

                # Of the months made again, only the entries whose triples changed.
                changed = dumps.changed_partition(converted, chunks, index, validation, conformed)
            jobs: DumpJobs = {}
            # A tenth of the entries or fewer made again: the dumps link most of their parts.
            few = len(converted.entries) // 10
            remade = dumps.remade_months(chunks, index)
            if changed is not None and sum(c.last - c.first for c in remade) <= few:
                jobs = _start_dumps(
                    background, work, converted, reusing, DUMP_FORMATS, linking=True
                )
            else:
                # Most chunks are made anew: Turtle and RDF/XML (Oxigraph's serializers, which
                # hold the GIL) are written by a process of their own during validation.
                jobs = _start_spooled_dumps(apart, work, converted, reusing)
            phases.start("history", len(converted.entries))
            # The entries convert did not render keep their fingerprints.
            changes = history.compute(
                previous,
                converted,
                stamp,
                prints=prints,
                changed=prints.keys(),
                old=decisions.old,
                spill=work,
            )
            # Unchanged dump chunks conformed in the current release: with the same shapes
            # and context, only the changed ones are validated again (graph/dumps.py).
            try:
                report = check(converted, options, phases, changed, ahead)
            except BaseException:
                background.shutdown(wait=True, cancel_futures=True)
                raise
            finally:
                if ahead is not None:
                    ahead.close()
            rest = [fmt for fmt in DUMP_FORMATS if fmt not in jobs]
            if len(converted.entries) >= EAGER_JSONLD and JSONLD in rest:
                # The JSON-LD dump is made in Python, on this process's GIL: niced, it ran
                # beside the history's tables (the main thread's SQLite inserts, which take
                # the GIL back after every row) and held them to half a core for 25 s at 1M
                # entries. At the build's priority it is done while the main thread waits
                # for the index's process (bench/README.md, runs of 2026-12-06 13:16-14:34).
                # Not in a smaller build, whose dumps are done before the tables: there
                # the two dump threads at once cost 0.3 s and 30 MiB at 10k entries.
                rest.remove(JSONLD)
                jobs.update(_start_dumps(eager, work, converted, reusing, [JSONLD]))
            jobs.update(_start_dumps(background, work, converted, reusing, rest))
            # publishers.json is the current release's when no month's publishers changed.
            unchanged = reusable is not None and publishers.same_as_before(
                ((m.name, m.digest, m.recognition.publishers) for m in converted.months),
                index.get("months", {}),
            )
            enriched = enrich(work, converted, reusable, options.enrich, phases, unchanged)
            linkset = enriched.linkset
            if isinstance(loader, MeasuredLoader):
                _wait_for_load(loading, loader, phases)
            phases.start("write", len(converted.entries))
            history.write(changes, work)
            release_id = _write_release(
                work,
                changes,
                loader,
                converted,
                report,
                warnings,
                options,
                stamp,
                phases,
                reusing,
                jobs,
                linkset,
                index_copy,
                started_ns,
                loading,
                full_index,
            )
            del jobs
        final = releases / release_id
        if final.exists():  # the same data built again in the same second
            shutil.rmtree(final)
        os.replace(work, final)
        parts.fsync_path(releases)
        _swap_current(out, final)
    except BaseException as exc:
        if ahead is not None:
            ahead.close()  # before the spool it reads is closed
        if index_copy is not None:
            index_copy.discard()
        _abandon(work, loader)
        if isinstance(exc, OSError):
            raise PublicationError(f"{out}: cannot write the publication: {_reason(exc)}") from exc
        raise
    finally:
        if spool is not None:
            spool.close()
    _prune(releases, keep=KEEP, current=final, loader=loader)
    if left is not None:
        left.append((converted, changes, index, decisions, reusing))
    return Outcome(
        len(converted.entries),
        len(converted.categories),
        converted.statistics.triples,
        warnings,
        phases.finish(),
        final,
        loader.report() if isinstance(loader, MeasuredLoader) else None,
        enriched.summary,
    )


def _yielding() -> None:
    """Lower the calling thread's priority (Linux's nice is a thread's own; the threads it
    starts inherit it)."""
    me = threading.get_native_id()
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, me, min(19, os.getpriority(os.PRIO_PROCESS, me) + YIELDING))


def _wait_for_load(loading: Future[None], loader: MeasuredLoader, phases: _Phases) -> None:
    """The "load" phase: wait for the store's load, reporting the triples it has sent (the
    load's own thread reports nothing, so that it never writes over another phase's line);
    raise its failure."""
    phases.start("load", loader.loaded()[1])
    while not wait([loading], timeout=LOAD_POLL).done:
        phases.progress("load", *loader.loaded())
    loading.result()
    phases.progress("load", *loader.loaded())


def _abandon(work: Path, loader: Loader) -> None:
    """Remove what a failed build made: its graphs in the store, then its folder; when the
    store cannot drop them, the folder keeps its store.json, which names them for the next
    build (as a killed build's does)."""
    try:
        loader.discard()
    except StoreError:
        _keep_only(work, STORE_RECORD)
        return
    shutil.rmtree(work, ignore_errors=True)


def _keep_only(folder: Path, name: str) -> None:
    """Remove everything in a folder but the named file."""
    for path in folder.iterdir():
        if path.name == name:
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                path.unlink()


def _start_release(out: Path, work: Path | None = None) -> tuple[Path, Path, list[Path]]:
    """OUT/releases, a new, empty folder in it to build a release aside (or work, one made
    already: _EarlyCopy's), and the folders of the builds that failed or were killed (removed
    once what they loaded is dropped)."""
    releases = out / RELEASES
    try:
        releases.mkdir(parents=True, exist_ok=True)
        stale = _stale_builds(releases)
        if work is None:
            work = _new_work(releases)
    except OSError as exc:
        raise PublicationError(f"{out}: cannot write the publication: {_reason(exc)}") from exc
    return releases, work, stale


def _new_work(releases: Path) -> Path:
    """A new, empty folder in releases to build a release aside, named after this process."""
    work = releases / f".building-{os.getpid()}-{time.time_ns()}"
    work.mkdir()
    return work


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


def _previous_release(out: Path) -> Path | None:
    """The release a build replaces, or None for the first build."""
    try:
        return current_release(out)
    except PublicationError:
        return None


_WRITE_ORDER = (RDFXML.key, TURTLE.key, JSONLD.key, NTRIPLES.key)
# From how many entries the JSON-LD dump is written at the build's priority (_publish).
EAGER_JSONLD = 100_000

DumpJobs = dict[RdfFormat, "Future[tuple[DumpFile, DumpFile, int]]"]


class _Apart:
    """A process of its own for the dumps made from the spool alone (graph/dumps.py
    spooled_dump_steps), or for the index written whole (graph/index.py
    run_full_write): a fresh interpreter (`python -c`, so that no script of the caller runs
    again in it, as multiprocessing's spawn would; fork would copy the build's threads
    mid-way), given its jobs at once, waited for by a thread that settles their futures;
    ended with the build, killed when the build fails, and killed by Linux when the build
    dies (graph/parentage.py). target: "module:function", which reads the pickled jobs from
    stdin and writes the pickled list of their results (or of the exception each raised)."""

    def __init__(self, target: str = "graph.dumps:run_spooled", name: str = "dump writer") -> None:
        self._target, self._name = target, name
        self._jobs: list[tuple[Future[Any], tuple[object, ...]]] = []
        self._proc: subprocess.Popen[bytes] | None = None
        self._waiter: threading.Thread | None = None

    def __enter__(self) -> _Apart:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        if self._proc is not None and kind is not None:
            self._proc.kill()
        if self._waiter is not None:
            self._waiter.join()

    def submit(self, *args: object) -> Future[Any]:
        """A job (the target's arguments), run once start is called."""
        future: Future[Any] = Future()
        self._jobs.append((future, args))
        return future

    def start(self, feed: Callable[[IO[bytes]], None] | None = None) -> None:
        """Start the process on the jobs submitted, given to it pickled as a list; feed: what
        writes its input instead (one job's, as the process reads it). Either is written by
        the thread that waits for the process, before it reads the results: each target
        reads all of its input first."""
        root = str(Path(dumps.__file__).resolve().parent.parent)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
        # It dies with the build (a build killed by SIGKILL must not go on writing into its
        # abandoned folder): asked first, before its module is even imported. Started by the
        # thread that waits for it to end (__exit__), as PR_SET_PDEATHSIG requires.
        module, function = self._target.split(":")
        code = (
            f"from graph.parentage import die_with_parent; die_with_parent({os.getpid()})\n"
            f"from {module} import {function}; {function}()"
        )
        self._proc = subprocess.Popen(
            [sys.executable, "-c", code],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
        )
        self._waiter = threading.Thread(
            target=self._wait, args=(self._proc, feed or self._pickled_jobs), daemon=True
        )
        self._waiter.start()

    def _pickled_jobs(self, out: IO[bytes]) -> None:
        pickle.dump([args for _, args in self._jobs], out)

    def _wait(self, proc: subprocess.Popen[bytes], feed: Callable[[IO[bytes]], None]) -> None:
        results: list[object] | None = None
        stdin, stdout = cast(IO[bytes], proc.stdin), cast(IO[bytes], proc.stdout)
        with stdout:
            try:
                try:
                    feed(stdin)
                finally:
                    with contextlib.suppress(OSError):
                        stdin.close()
                out = stdout.read()
                if proc.wait() == 0:
                    results = pickle.loads(out)
            except (OSError, pickle.UnpicklingError, EOFError):
                pass
            except Exception:  # the feed's own failure: its futures must still be settled
                proc.kill()
        proc.wait()
        for n, (future, _) in enumerate(self._jobs):
            outcome = results[n] if results is not None else None
            if isinstance(outcome, BaseException):
                future.set_exception(outcome)
            elif outcome is None:
                future.set_exception(
                    PublicationError(f"the {self._name}'s process ended with {proc.returncode}")
                )
            else:
                future.set_result(outcome)


def _start_spooled_dumps(
    apart: _Apart, work: Path, converted: Converted, reuse: dumps.Reuse
) -> DumpJobs:
    """Start writing the dumps made from the N-Triples alone (RDF/XML, then Turtle) in the
    process apart, reading the spool."""
    dumps_dir = work / "dumps"
    dumps_dir.mkdir(exist_ok=True)
    order = sorted(
        (f for f in DUMP_FORMATS if dumps.is_text_only(f)), key=lambda f: _WRITE_ORDER.index(f.key)
    )
    jobs: DumpJobs = {
        fmt: apart.submit(
            work / SPOOL,
            converted.iris.base,
            reuse.chunks,
            fmt.key,
            dumps_dir / f"{dumps.DUMP_STEM}{fmt.suffix}",
            GZIP_LEVEL,
            reuse.previous,
            reuse.linkable,
            len(converted.text),
            converted.text.extents,
            dumps.PIECE,  # the builder's (a test may lower it), not the process's own
        )
        for fmt in order
    }
    apart.start()
    return jobs


def _start_dumps(
    pool: ThreadPoolExecutor,
    work: Path,
    converted: Converted,
    reuse: dumps.Reuse,
    formats: Sequence[RdfFormat],
    linking: bool = False,
) -> DumpJobs:
    """Start writing these dumps and their gzip into work/dumps; linking: most of their chunks
    are the current release's (a rebuild that changed a few)."""
    dumps_dir = work / "dumps"
    dumps_dir.mkdir(exist_ok=True)
    # Longest first, so the two threads finish together: RDF/XML and Turtle (Oxigraph parses
    # the text and serializes it, holding the GIL while the triples pass through Python), then
    # JSON-LD and N-Triples (mostly gzip, which releases the GIL). Measured at 100k on a busy
    # machine: 10.3, 8.9, 6.9, 6.1 s.
    order = sorted(formats, key=lambda f: _WRITE_ORDER.index(f.key))
    if linking and reuse.previous is not None:
        # Linking, a dump's cost is hashing its parts after the first changed one: the
        # largest first (N-Triples, twice Turtle's bytes, came last: the one-change rebuild
        # at 1M entries waited for it alone).
        sizes = dumps.dump_sizes(reuse.previous) or {}

        def size(fmt: RdfFormat) -> int:
            name = f"{dumps.DUMP_STEM}{fmt.suffix}"
            return sizes.get(name, 0) + sizes.get(name + GZIP_SUFFIX, 0)

        order.sort(key=size, reverse=True)
    return {
        fmt: pool.submit(
            dumps.write_dump_files,
            converted,
            reuse.chunks,
            fmt,
            dumps_dir / f"{dumps.DUMP_STEM}{fmt.suffix}",
            GZIP_LEVEL,
            reuse.previous,
            reuse.linkable,
        )
        for fmt in order
    }


def _write_release(
    work: Path,
    changes: history.History,
    loader: Loader,
    converted: Converted,
    report: shacl.Report,
    warnings: list[str],
    options: BuildOptions,
    stamp: datetime,
    phases: _Phases,
    reuse: dumps.Reuse,
    jobs: DumpJobs,
    linkset: Written | None = None,
    index_copy: PreviousCopy | None = None,
    started_ns: int = 0,
    loading: Future[None] | None = None,
    full_index: Future[str] | None = None,
) -> str:
    """Finish a release in work once its store and dumps are written; return its id.
    linkset: the related entries' (graph/enrich/linkset.py), when the build made them;
    started_ns: when the build began (time.time_ns()): files older than that and linked come
    from a release already synced; loading: the store's load, if it may still run;
    full_index: the index's rows written whole by a process (graph/index.py)."""
    iris = Iris.from_base(options.base)
    total = len(converted.entries)
    # What does not need the dumps is written while their threads finish (a rebuild's are
    # mostly hashing the parts after the first changed one: 5 s at 1M entries, when the
    # index and the sitemaps take 1.7 s on this thread, which waited before).
    (work / CONTEXT_FILE).write_bytes(converted.context)
    write_release_index(work, converted, reuse.previous, changes, index_copy, full_index)
    write_release_sitemaps(
        work, iris, history.format_time(stamp), sorted(converted.categories), reuse.previous
    )
    (work / "validation.ttl").write_bytes(report.turtle())
    for done, _ in enumerate(as_completed(jobs.values()), start=1):
        phases.progress("write", total * done // (len(jobs) + 1), total)
    files = [jobs[fmt].result() for fmt in DUMP_FORMATS]
    written = [f[0] for f in files] + [f[1] for f in files]
    reused = {f[0].filename: f[2] for f in files}
    dumps.write_index(work, converted, iris.base, GZIP_LEVEL, reused, reuse)

    info = DatasetInfo(
        title=converted.title,
        description=describe_holdings(len(converted.entries), len(converted.categories)),
        # When it was first published and when its data last changed (graph/history.py): a
        # rebuild of the same data describes the dataset as it was.
        issued=changes.issued,
        license=options.license,
        publisher=options.publisher,
        modified=changes.changed,
    )
    example = next(iter(converted.entries), None)
    void = describe_dataset(
        iris, info, converted.statistics, written, example, _linksets(converted, linkset)
    )
    void_bytes: bytes = void.serialize(format="turtle", encoding="utf-8")
    (work / VOID_FILE).write_bytes(void_bytes)

    # The index and the sitemaps above were written while the store loaded, if it still
    # did (a full build whose validation went ahead: 4 s at 100k entries).
    if loading is not None:
        loading.result()
    loader.add_links(store_links(work, linkset, reuse.previous))
    loader.add_void(void_bytes)
    stored = loader.finish()

    digest = next(d.sha256 for d in written if d.filename.endswith(NTRIPLES.suffix))
    release_id = f"{stamp:%Y%m%dT%H%M%SZ}-{digest[:12]}"
    manifest: dict[str, Any] = {
        "id": release_id,
        "built": history.format_time(stamp),
        "base": iris.base,
        "title": converted.title,
        "entries": len(converted.entries),
        "concepts": len(converted.categories),
        "triples": converted.statistics.triples,
        "warnings": warnings,
        "example": example,
        "dumps": [asdict(d) for d in [*written, *(linkset.files if linkset else ())]],
        "store": stored,
    }
    (work / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    (work / SPOOL).unlink()  # still open: read until the build ends, but not published
    # The dumps' parts are synced by their writers (graph/parts.py): the linked ones were
    # synced by the release they come from, and there are thousands of them at 1M entries.
    # So were the other files hard-linked from it (the store's, the months' of history):
    # older than this build and linked, they are not synced again (on ext4 each fsync of a
    # file whose link count changed is a journal commit: a third of a second at 100k).
    shared = work / "dumps" / parts.FOLDER
    for path in work.rglob("*"):
        if path.parent == shared or not path.is_file():
            continue
        found = path.stat()
        if found.st_nlink > 1 and found.st_mtime_ns < started_ns - _CLOCK_SLACK_NS:
            continue
        parts.fsync_path(path)
    phases.progress("write", total, total)
    return release_id


def _linksets(converted: Converted, related: Written | None) -> list[Linkset]:
    """The linksets VoID describes: the related entries' (their own dump) and the publishers'
    owl:sameAs (in the library's dumps), each when it has links."""
    out = []
    if related is not None:
        title = "Related entries: entries close in meaning (kgpub:related, with kgpub:score)"
        out.append(Linkset("related", title, str(KGPUB.related), related.links, "", related.files))
    same = sorted(p.sameas for p in converted.organisations.values() if p.sameas)
    if same:
        hosts = {urlsplit(iri)._replace(path="/", query="", fragment="").geturl() for iri in same}
        title = "Publishers: the same organisations elsewhere (owl:sameAs)"
        target = hosts.pop() if len(hosts) == 1 else None
        out.append(Linkset("sameas", title, str(OWL.sameAs), len(same), target))
    return out


def _swap_current(out: Path, release: Path) -> None:
    """Point OUT/current at the release with one rename(2): readers see old or new, not neither."""
    link = out / CURRENT
    tmp = out / f".{CURRENT}-{os.getpid()}"
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    os.symlink(Path(RELEASES) / release.name, tmp)
    os.replace(tmp, link)
    parts.fsync_path(out)


def _stale_builds(releases: Path) -> list[Path]:
    """The folders of builds that failed or were killed; removes what deletions that did not
    finish left."""
    stale = []
    for path in releases.glob(".building-*"):
        pid = int(path.name.split("-")[1]) if path.name.split("-")[1].isdigit() else 0
        if not (pid and _is_alive(pid)):
            stale.append(path)
    for path in releases.glob(f"{PRUNED}*"):  # left by a deletion that did not finish
        shutil.rmtree(path, ignore_errors=True)
    return stale


def _remove_stale_builds(releases: Path, stale: Sequence[Path], loader: Loader) -> None:
    """Drop the graphs that failed or killed builds loaded (named by their store.json), then
    remove their folders; a folder whose graphs the store cannot drop now keeps its store.json
    for the next build."""
    if not stale:
        return
    kept = _kept_records(releases)
    for path in stale:
        try:
            loader.prune(_store_records(path / STORE_RECORD), kept)
        except StoreError:
            _keep_only(path, STORE_RECORD)
            continue
        shutil.rmtree(path, ignore_errors=True)


def published_releases(releases: Path) -> list[Path]:
    """The releases in a publication's releases folder, oldest first: not the folders of
    builds under way (.building-*) nor of pruned releases being deleted (.pruned-*)."""
    return sorted(p for p in releases.iterdir() if not p.name.startswith("."))


def _kept_records(releases: Path) -> list[dict[str, Any]]:
    """The store records of every release in the folder."""
    return [r for p in published_releases(releases) for r in _store_records(p / MANIFEST)]


def _store_records(path: Path) -> list[dict[str, Any]]:
    """The store record in a file (a manifest's "store", or a build's store.json), if any."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    record = doc.get("store", doc) if isinstance(doc, dict) else None
    return [record] if isinstance(record, dict) else []


def _is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


PRUNED = ".pruned-"
# sh starts rm in the background and exits at once: rm is the child of no one we wait for.
_DELETE = 'rm -rf -- "$@" </dev/null >/dev/null 2>&1 &'


def _prune(releases: Path, keep: int, current: Path, loader: Loader) -> None:
    """Remove all but the newest keep releases (and current), and what the store holds of
    them (graphs of a remote store; before the folder goes, its manifest names them: a
    release whose graphs the store cannot drop now stays until a later build can). Each is
    renamed out of the way at once, then deleted by a process of its own, so a build does not
    wait while the file system frees hundreds of megabytes (a third of a second at 100k
    entries)."""
    done = published_releases(releases)[::-1]
    kept = [
        r for p in done if p == current or p in done[:keep] for r in _store_records(p / MANIFEST)
    ]
    doomed: list[str] = []
    for old in done[keep:]:
        if old != current:
            try:
                loader.prune(_store_records(old / MANIFEST), kept)
            except StoreError:
                continue  # kept until a later build can drop its graphs (its manifest names them)
            target = releases / f"{PRUNED}{old.name}"
            try:
                os.replace(old, target)
            except OSError:
                continue
            doomed.append(str(target))
    if doomed:
        try:
            subprocess.run(["/bin/sh", "-c", _DELETE, "sh", *doomed], check=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            for path in doomed:
                shutil.rmtree(path, ignore_errors=True)


def current_release(out: Path) -> Path:
    """The release that OUT/current points at, or PublicationError."""
    link = out / CURRENT
    try:
        target = (out / os.readlink(link)).resolve()
    except OSError as exc:
        raise PublicationError(f"{out}: no publication yet (run 'kgpub build' first)") from exc
    if not (target / MANIFEST).is_file():
        raise PublicationError(f"{target}: incomplete publication (no {MANIFEST})")
    return target


def read_manifest(release: Path) -> dict[str, Any]:
    """The manifest of a release."""
    try:
        data: dict[str, Any] = json.loads((release / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PublicationError(f"{release}: cannot read {MANIFEST}: {exc}") from exc
    return data
