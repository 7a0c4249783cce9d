"""Build a publication folder aside, then swap it in atomically.

Layout of ``OUT`` (default ``publication/``, git-ignored):
  current -> releases/<id>      symlink, replaced atomically (rename(2)) by each build
  releases/<id>/
    manifest.json               id, time, base IRI, counts, files with size and sha256
    dumps/library.{ttl,nt,jsonld}[.gz]
    void.ttl                    VoID + DCAT description
    validation.ttl              the SHACL validation report
    store/                      the embedded Oxigraph store (default graph: the library;
                                named graph <base>.well-known/void: the VoID description)
  releases/.building-*          a build in progress; never read, removed when stale
A build that fails or is killed never touches ``current``; the last KEEP releases stay on
disk so a server still reading an older one is not pulled from under its feet.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import resource
import shutil
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyoxigraph
from pyoxigraph import NamedNode, Quad, Triple

from graph import history, jsonld, shacl
from graph.convert import Converted, convert, library_title
from graph.describe import DatasetInfo, DumpFile, describe_dataset
from graph.errors import PublicationError, ValidationFailed
from graph.formats import DUMP_FORMATS, GZIP_SUFFIX, JSONLD, NTRIPLES, TURTLE, RdfFormat
from graph.iris import Iris
from graph.listing import Entry, read_listings
from graph.namespaces import PREFIXES

KEEP = 3
DUMP_STEM = "library"
MANIFEST = "manifest.json"
CURRENT = "current"
RELEASES = "releases"

Progress = Callable[[str, int, int], None]


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


@dataclass
class PhaseStat:
    """Time and peak memory of one build phase."""

    name: str
    seconds: float
    peak_rss_mib: float


@dataclass
class Outcome:
    """What a build or a validation produced."""

    entries: int
    concepts: int
    triples: int
    warnings: list[str]
    phases: list[PhaseStat] = field(default_factory=list)
    release: Path | None = None


class _Phases:
    def __init__(self, progress: Progress) -> None:
        self.stats: list[PhaseStat] = []
        self.progress = progress
        self._start = time.perf_counter()
        self._name = ""

    def start(self, name: str, total: int = 0) -> None:
        self._close()
        self._name, self._start = name, time.perf_counter()
        self.progress(name, 0, total)

    def _close(self) -> None:
        if self._name:
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            self.stats.append(PhaseStat(self._name, time.perf_counter() - self._start, peak))
            self._name = ""

    def finish(self) -> list[PhaseStat]:
        self._close()
        return self.stats


def prepare(
    sources: Sequence[Path], options: BuildOptions, phases: _Phases
) -> tuple[Converted, pyoxigraph.Store, shacl.Report, list[str]]:
    """Parse, convert and validate; raise ListingError or ValidationFailed."""
    iris = Iris.from_base(options.base)
    phases.start("parse", len(sources))
    pages, entries, warnings = read_listings(sources)
    phases.progress("parse", len(sources), len(sources))
    phases.start("convert", len(entries))
    converted = convert(entries, iris, options.title or library_title(pages))
    store = pyoxigraph.Store()
    store.bulk_extend(Quad(t.subject, t.predicate, t.object) for t in converted.triples)
    phases.progress("convert", len(entries), len(entries))
    phases.start("validate", len(converted.triples))
    report = shacl.validate(store, converted, engine=options.engine)
    phases.progress("validate", len(converted.triples), len(converted.triples))
    if not report.conforms:
        phases.finish()
        raise ValidationFailed(report.violations, report.turtle())
    return converted, store, report, warnings


def validate_sources(
    sources: Sequence[Path], options: BuildOptions, progress: Progress = _no_progress
) -> Outcome:
    """Parse and validate only; write nothing."""
    phases = _Phases(progress)
    converted, _, _, warnings = prepare(sources, options, phases)
    return Outcome(
        len(converted.entries), len(converted.categories), len(converted.triples), warnings,
        phases.finish(),
    )


def build(
    sources: Sequence[Path],
    out: Path,
    options: BuildOptions,
    progress: Progress = _no_progress,
    now: datetime | None = None,
) -> Outcome:
    """Build a publication from listings and make it the current one, atomically."""
    phases = _Phases(progress)
    converted, store, report, warnings = prepare(sources, options, phases)
    del store  # the on-disk store is written from the triples below
    stamp = (now or datetime.now(UTC)).replace(microsecond=0)
    # History (graph/history.py): compare with the current release entry by entry; updated
    # entries get dcterms:modified in the data, so it comes before anything is serialized.
    phases.start("history", len(converted.entries))
    changes = history.compute(_previous_release(out), converted, stamp)
    converted = history.apply(converted, changes)
    phases.start("write", len(converted.triples))
    releases = out / RELEASES
    try:
        releases.mkdir(parents=True, exist_ok=True)
        _remove_stale_builds(releases)
        work = releases / f".building-{os.getpid()}-{time.time_ns()}"
        work.mkdir()
    except OSError as exc:
        raise PublicationError(f"{out}: cannot write the publication: {exc.strerror}") from exc
    try:
        history.write(changes, work)
        release_id = _write_release(work, converted, report, warnings, options, stamp, phases)
        final = releases / release_id
        if final.exists():  # the same data built again in the same second
            shutil.rmtree(final)
        os.replace(work, final)
        _fsync_dir(releases)
        _swap_current(out, final)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    _prune(releases, keep=KEEP, current=final)
    return Outcome(
        len(converted.entries), len(converted.categories), len(converted.triples), warnings,
        phases.finish(), final,
    )


def _previous_release(out: Path) -> Path | None:
    """The release a build replaces, or None for the first build."""
    try:
        return current_release(out)
    except PublicationError:
        return None


def _write_release(
    work: Path,
    converted: Converted,
    report: shacl.Report,
    warnings: list[str],
    options: BuildOptions,
    stamp: datetime,
    phases: _Phases,
) -> str:
    iris = Iris.from_base(options.base)
    dumps_dir = work / "dumps"
    dumps_dir.mkdir()
    triples = converted.triples
    written: list[DumpFile] = []
    for fmt in DUMP_FORMATS:
        path = dumps_dir / f"{DUMP_STEM}{fmt.suffix}"
        write_dump(triples, fmt, path, iris)
        phases.progress("write", len(written) + 1, len(DUMP_FORMATS) * 2 + 2)
        written.append(_dump_file(path, fmt, compressed=False))
    with ThreadPoolExecutor(max_workers=2) as pool:  # zlib releases the GIL
        gz = list(pool.map(_gzip, [dumps_dir / f"{DUMP_STEM}{f.suffix}" for f in DUMP_FORMATS]))
    written += [_dump_file(p, f, compressed=True) for p, f in zip(gz, DUMP_FORMATS, strict=True)]

    info = DatasetInfo(
        title=converted.title,
        description=next(
            (t.object.value for t in triples[:4] if t.predicate.value.endswith("/description")),
            converted.title,
        ),
        issued=stamp.isoformat().replace("+00:00", "Z"),
        license=options.license,
        publisher=options.publisher,
    )
    example = next(iter(converted.entries), None)
    void = describe_dataset(iris, info, triples, written, example)
    void_bytes: bytes = void.serialize(format="turtle", encoding="utf-8")
    (work / "void.ttl").write_bytes(void_bytes)
    (work / "validation.ttl").write_bytes(report.turtle())

    store = pyoxigraph.Store(str(work / "store"))
    store.bulk_extend(Quad(t.subject, t.predicate, t.object) for t in triples)
    void_graph = NamedNode(iris.void)
    store.bulk_load(void_bytes, format=pyoxigraph.RdfFormat.TURTLE, to_graph=void_graph)
    store.flush()
    del store

    digest = next(d.sha256 for d in written if d.filename.endswith(NTRIPLES.suffix))
    release_id = f"{stamp:%Y%m%dT%H%M%SZ}-{digest[:12]}"
    manifest: dict[str, Any] = {
        "id": release_id,
        "built": info.issued,
        "base": iris.base,
        "title": converted.title,
        "entries": len(converted.entries),
        "concepts": len(converted.categories),
        "triples": len(triples),
        "warnings": warnings,
        "example": example,
        "dumps": [asdict(d) for d in written],
    }
    (work / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    for path in work.rglob("*"):
        if path.is_file():
            _fsync_file(path)
    return release_id


def write_dump(triples: Sequence[Triple], fmt: RdfFormat, path: Path, iris: Iris) -> None:
    """Write one dump; the same triples always give the same bytes."""
    if fmt is JSONLD:
        with path.open("w", encoding="utf-8") as out:
            jsonld.write_dump(triples, out)
    elif fmt is TURTLE:
        prefixes = {**dump_prefixes(iris)}
        body = io.BytesIO()
        pyoxigraph.serialize(triples, body, fmt.oxigraph, prefixes=prefixes)
        with path.open("wb") as out:
            out.write(turtle_header(prefixes))
            out.write(_strip_prefixes(body.getvalue()))
    else:
        pyoxigraph.serialize(triples, str(path), fmt.oxigraph)


def dump_prefixes(iris: Iris) -> dict[str, str]:
    """Prefixes for Turtle output: the vocabularies and the publication's own IRI spaces."""
    return {**PREFIXES, "entry": iris.base + "entry/", "category": iris.base + "category/",
            "kg": iris.base}


def turtle_header(prefixes: dict[str, str]) -> bytes:
    """@prefix lines in a fixed order (Oxigraph writes them in hash order)."""
    return "".join(f"@prefix {p}: <{ns}> .\n" for p, ns in sorted(prefixes.items())).encode()


def _strip_prefixes(data: bytes) -> bytes:
    pos = 0
    while data.startswith(b"@prefix ", pos):
        pos = data.index(b"\n", pos) + 1
    return data[pos:]


def _gzip(path: Path) -> Path:
    target = path.with_name(path.name + GZIP_SUFFIX)
    with path.open("rb") as src, target.open("wb") as raw, gzip.GzipFile(
        filename="", mode="wb", fileobj=raw, compresslevel=6, mtime=0
    ) as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
    return target


def _dump_file(path: Path, fmt: RdfFormat, compressed: bool) -> DumpFile:
    sha = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            sha.update(chunk)
    return DumpFile(path.name, fmt.media_type, fmt.label, path.stat().st_size, sha.hexdigest(),
                    compressed)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    _fsync_file(path)


def _swap_current(out: Path, release: Path) -> None:
    """Point OUT/current at the release with one rename(2): readers see old or new, never neither."""
    link = out / CURRENT
    tmp = out / f".{CURRENT}-{os.getpid()}"
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    os.symlink(Path(RELEASES) / release.name, tmp)
    os.replace(tmp, link)
    _fsync_dir(out)


def _remove_stale_builds(releases: Path) -> None:
    for path in releases.glob(".building-*"):
        pid = int(path.name.split("-")[1]) if path.name.split("-")[1].isdigit() else 0
        if pid and _is_alive(pid):
            continue
        shutil.rmtree(path, ignore_errors=True)


def _is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _prune(releases: Path, keep: int, current: Path) -> None:
    done = sorted((p for p in releases.iterdir() if not p.name.startswith(".")), reverse=True)
    for old in done[keep:]:
        if old != current:
            shutil.rmtree(old, ignore_errors=True)


def current_release(out: Path) -> Path:
    """The release that OUT/current points at, or PublicationError."""
    link = out / CURRENT
    try:
        target = (out / os.readlink(link)).resolve()
    except OSError as exc:
        raise PublicationError(
            f"{out}: no publication yet (run 'kgpub build' first)"
        ) from exc
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


def entries_of(converted: Converted) -> list[Entry]:
    """The entries of a converted library, in IRI order."""
    return list(converted.entries.values())
