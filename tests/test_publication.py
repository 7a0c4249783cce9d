"""The publication folder: atomic swaps (a failed or killed build changes nothing), byte-identical
dumps, VoID/DCAT counts that match the data, dumps that parse, progress on a terminal only."""

from __future__ import annotations

import fcntl
import gzip
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
import warnings
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyoxigraph
import pytest
import rdflib
from dump_oracle import write_dump
from dumpfiles import dump_names, read_dump
from live import FIXTURES, ROOT, SEED, kgpub
from procs import on_terminal
from rdfdiff import assert_isomorphic
from rdflib.namespace import DCAT, RDF, VOID, XSD

from graph import describe, jsonld, parts
from graph import dumps as chunked_dumps
from graph.convert import Converted, convert, jsonld_nodes
from graph.errors import ListingError, PublicationError
from graph.formats import DUMP_FORMATS, JSONLD, NTRIPLES, RDFXML, TURTLE, RdfFormat
from graph.iris import Iris
from graph.listing import Entry, Place, read_listings
from graph.publication import BuildOptions, build

BASE = "http://example.org/"
PAGES = FIXTURES / "listings" / "pages"
NOW = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
SPDX = rdflib.Namespace("http://spdx.org/rdf/terms#")
ENV = {k: v for k, v in os.environ.items() if not k.startswith("KGPUB_")}


def generate(folder: Path, n: int, pages: int = 1) -> list[Path]:
    """A synthetic listing of n entries (tests/fixtures/gen_listing.py), on one page or several."""
    target = folder / f"gen-{n}-{pages}"
    out = target if pages > 1 else target.with_suffix(".txt")
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "tests" / "fixtures" / "gen_listing.py"),
            str(n),
            "--pages",
            str(pages),
            "--out",
            str(out),
        ],
        check=True,
    )
    return sorted(target.glob("*.txt")) if pages > 1 else [out]


def snapshot(out: Path) -> dict[str, bytes]:
    """Every file under a publication folder, byte for byte, and where `current` points."""
    files = {"current ->": os.readlink(out / "current").encode()}
    for path in sorted(out.rglob("*")):
        if path.is_file():
            files[str(path.relative_to(out))] = path.read_bytes()
    return files


def dumps(release: Path) -> dict[str, bytes]:
    """Each dump whole, and the list of its parts."""
    files = {name: read_dump(release, name) for name in dump_names(release)}
    lists = (release / "dumps").glob("*" + parts.SUFFIX)
    return files | {p.name: p.read_bytes() for p in lists}


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """300 entries over 4 category pages: entries listed on several pages."""
    return generate(tmp_path_factory.mktemp("pages"), 300, pages=4)


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory, pages: list[Path]) -> Path:
    out = tmp_path_factory.mktemp("pub") / "out"
    outcome = build([SEED, *pages], out, BuildOptions(base=BASE), now=NOW)
    assert outcome.release is not None
    return outcome.release


# Byte-identical output


def test_same_base_and_data_give_byte_identical_dumps(
    tmp_path: Path, pages: list[Path], release: Path
) -> None:
    later = datetime(2026, 6, 7, 8, 9, 10, tzinfo=UTC)
    again = build([SEED, *pages], tmp_path / "again", BuildOptions(base=BASE), now=later).release
    assert again is not None and again.name != release.name
    assert dumps(again) == dumps(release)
    assert (again / "validation.ttl").read_bytes() == (release / "validation.ttl").read_bytes()


@pytest.mark.parametrize("order", ["reversed", "shuffled"])
def test_pages_in_any_order_give_identical_dumps(
    tmp_path: Path, pages: list[Path], release: Path, order: str
) -> None:
    sources = [SEED, *pages]
    sources = sources[::-1] if order == "reversed" else random.Random(7).sample(sources, 5)
    other = build(sources, tmp_path / "out", BuildOptions(base=BASE), now=NOW).release
    assert other is not None
    assert dumps(other) == dumps(release)
    assert other.name == release.name  # the id is the time and the N-Triples digest


def variants(pages: list[Path]) -> dict[str, Converted]:
    """Converted libraries to check the fast writers on: synthetic pages and the seed, some
    entries modified, an entry without category, categories whose IRIs prefix each other."""
    _, entries, _ = read_listings([SEED, *pages])
    iris = Iris.from_base(BASE)
    converted = convert(entries, iris, "Library")
    some = list(converted.entries)[::7]
    when = datetime(2021, 3, 28, 0, 59, tzinfo=UTC)
    odd = [
        Entry("No category", when, (), "", (Place("x.txt", 1),)),
        Entry("Prefixes", when, ("Drugs Misuse", "Drugs", "Drugs/Misuse 2"), "d", (Place("x", 5),)),
        # What JSON escapes, in a title and a description (graph/convert.py jsonld_entry_texts
        # writes the dump's JSON itself), and a publisher named.
        Entry(
            'Quoted "words" \\ café – Guidance (NSPCC)',
            when,
            ("Drugs",),
            'Said "so"\\here,\ttabbed\nand é',
            (Place("x", 9),),
        ),
    ]
    return {
        "pages": converted,
        "modified": converted.with_modified(dict.fromkeys(some, "2025-01-01T00:00:00Z")),
        "odd": convert([*entries[:5], *odd], iris, "Odd"),
    }


@pytest.mark.parametrize(
    "piece", [chunked_dumps.PIECE, 300, 1], ids=["whole-chunks", "in-pieces", "line-by-line"]
)
def test_the_chunked_dumps_equal_whole_graph_serializations(
    tmp_path: Path, pages: list[Path], piece: int
) -> None:
    """convert writes N-Triples itself and JSON-LD nodes from its records, and the dumps are
    written chunk by chunk; each dump equals its triples serialized whole, in every format,
    also when its chunks are made and written in pieces (as the library's is at 1M entries:
    graph/dumps.py PIECE), and its .gz is a gzip of it."""
    iris = Iris.from_base(BASE)
    for name, converted in variants(pages).items():
        canonical = pyoxigraph.serialize(
            pyoxigraph.parse(converted.ntriples, pyoxigraph.RdfFormat.N_TRIPLES),
            format=pyoxigraph.RdfFormat.N_TRIPLES,
        )
        assert converted.ntriples == canonical, name
        assert list(jsonld_nodes(converted)) == jsonld.nodes(converted.triples), name
        chunks = chunked_dumps.chunks_of(converted)
        for fmt in DUMP_FORMATS:
            fast, whole = tmp_path / f"fast{fmt.suffix}", tmp_path / f"whole{fmt.suffix}"
            chunked_dumps.write_dump_files(converted, chunks, fmt, fast, 3, None, {}, piece)
            write_dump(list(converted.triples), fmt, whole, iris)
            assert parts.read_bytes(fast) == whole.read_bytes(), (name, fmt.key)
            assert gzip.decompress(parts.read_bytes(fast.with_name(fast.name + ".gz"))) == (
                whole.read_bytes()
            ), (name, fmt.key)


def test_every_dump_format_has_a_writer_and_no_other_does(pages: list[Path]) -> None:
    """The format table drives the dump writer: a format without a writer is an error, never
    another format's bytes under its name."""
    assert all(chunked_dumps.has_writer(fmt) for fmt in DUMP_FORMATS)
    unknown = RdfFormat(
        "trig", "application/trig", ".trig", "trig", pyoxigraph.RdfFormat.TRIG, "TriG"
    )
    converted = variants(pages)["pages"]
    with pytest.raises(PublicationError, match="no dump writer for TriG"):
        chunked_dumps.write_dump_files(
            converted,
            chunked_dumps.chunks_of(converted),
            unknown,
            Path("/nonexistent/x"),
            3,
            None,
            {},
        )


def test_subjects_and_parts_are_in_iri_order(pages: list[Path]) -> None:
    converted = variants(pages)["odd"]
    entry = next(iri for iri, e in converted.entries.items() if e.title == "Prefixes")
    subjects = [
        t.object.value
        for t in converted.triples
        if t.subject.value == entry and t.predicate.value.endswith("/subject")
    ]
    assert (
        subjects
        == sorted(subjects)
        == [
            BASE + "category/drugs",
            BASE + "category/drugs-misuse",
            BASE + "category/drugs-misuse-2",
        ]
    )
    parts = [t.object.value for t in converted.triples if t.predicate.value.endswith("/hasPart")]
    assert parts == sorted(parts) == list(converted.entries)


def test_every_character_is_escaped_as_oxigraph_escapes_it() -> None:
    text = "".join(chr(c) for c in range(0x250)) + "\u2028\u2029\ufeff“quoted” – é \U0001f600"
    when = datetime(2021, 3, 28, 0, 59, tzinfo=UTC)
    entry = Entry(text, when, ('Cat \\ "x"',), text + "\nsecond line", (Place("x.txt", 1),))
    converted = convert([entry], Iris.from_base(BASE), 'Lib "\\" \t')
    canonical = pyoxigraph.serialize(
        pyoxigraph.parse(converted.ntriples, pyoxigraph.RdfFormat.N_TRIPLES),
        format=pyoxigraph.RdfFormat.N_TRIPLES,
    )
    assert converted.ntriples == canonical
    values = {t.object.value for t in converted.triples if isinstance(t.object, pyoxigraph.Literal)}
    assert {text, text + "\nsecond line", 'Cat \\ "x"', 'Lib "\\" \t'} <= values


# VoID and DCAT


def _count(nt: bytes) -> describe.Statistics:
    """Count the N-Triples dump independently of the build: rdflib's parser, Python sets."""
    graph = rdflib.Graph().parse(data=nt, format="nt")
    return describe.Statistics(
        triples=len(graph),
        subjects=len(set(graph.subjects())),
        objects=len({o for o in graph.objects() if isinstance(o, rdflib.URIRef)}),
        properties=Counter(str(p) for p in graph.predicates()),
        classes=Counter(str(o) for o in graph.objects(None, RDF.type)),
    )


def test_void_counts_match_the_data(release: Path) -> None:
    void = rdflib.Graph().parse(release / "void.ttl", format="turtle")
    ds = rdflib.URIRef(BASE + "dataset")
    count = _count(read_dump(release, "library.nt"))

    def number(node: rdflib.term.Node, prop: rdflib.URIRef) -> int:
        value = void.value(node, prop)
        assert isinstance(value, rdflib.Literal), (node, prop)
        return int(value)

    assert number(ds, VOID.triples) == count.triples
    assert number(ds, VOID.entities) == number(ds, VOID.distinctSubjects) == count.subjects
    assert number(ds, VOID.distinctObjects) == count.objects
    assert number(ds, VOID.classes) == len(count.classes)
    assert number(ds, VOID.properties) == len(count.properties)
    classes = {
        str(void.value(p, VOID["class"])): number(p, VOID.entities)
        for p in void.objects(ds, VOID.classPartition)
    }
    assert classes == dict(count.classes)
    properties = {
        str(void.value(p, VOID.property)): number(p, VOID.triples)
        for p in void.objects(ds, VOID.propertyPartition)
    }
    assert properties == dict(count.properties)
    manifest = json.loads((release / "manifest.json").read_text())
    assert (manifest["triples"], manifest["entries"]) == (
        count.triples,
        count.classes["http://purl.org/dc/dcmitype/Text"],
    )


def test_dcat_distributions_give_each_dumps_size_and_checksum(release: Path) -> None:
    void = rdflib.Graph().parse(release / "void.ttl", format="turtle")
    ds = rdflib.URIRef(BASE + "dataset")
    described = {}
    for dist in void.objects(ds, DCAT.distribution):
        url = str(void.value(dist, DCAT.downloadURL))
        checksum = void.value(dist, SPDX.checksum)
        described[url.rsplit("/", 1)[1]] = (
            int(void.value(dist, DCAT.byteSize)),  # type: ignore[arg-type]
            str(void.value(checksum, SPDX.checksumValue)),
        )
    files = {
        name: (parts.size_of(release / "dumps" / name), hashlib.sha256(data).hexdigest())
        for name, data in ((n, read_dump(release, n)) for n in dump_names(release))
    }
    assert described == files
    assert len(files) == 2 * len(DUMP_FORMATS)


def test_statistics_kept_by_convert_equal_a_count_of_the_triples(pages: list[Path]) -> None:
    for name, converted in variants(pages).items():
        assert converted.statistics == describe.statistics(converted.triples), name
        assert converted.statistics == _count(converted.ntriples), name


def test_with_modified_puts_modified_after_created(pages: list[Path]) -> None:
    _, entries, _ = read_listings(pages)
    converted = convert(entries, Iris.from_base(BASE), "Library")
    iri = list(converted.entries)[3]
    changed = converted.with_modified({iri: "2025-01-01T00:00:00Z"})
    lines = changed.ntriples.decode().splitlines()
    at = lines.index(
        f"<{iri}> <http://purl.org/dc/terms/modified> "
        '"2025-01-01T00:00:00Z"^^<http://www.w3.org/2001/XMLSchema#dateTime> .'
    )
    assert "/terms/created>" in lines[at - 1] and lines[at - 1].startswith(f"<{iri}>")
    assert len(lines) == len(converted.ntriples.splitlines()) + 1
    assert changed.with_modified({}).ntriples == converted.ntriples


# Dumps parse, with rdflib and with rapper, into the same graph


def test_dumps_parse_into_isomorphic_graphs(release: Path) -> None:
    reference = rdflib.Graph().parse(data=read_dump(release, "library.nt"), format="nt")
    for fmt in DUMP_FORMATS:
        data = read_dump(release, f"library{fmt.suffix}")
        assert gzip.decompress(read_dump(release, f"library{fmt.suffix}.gz")) == data
        with warnings.catch_warnings():  # rdflib's JSON-LD parser uses its ConjunctiveGraph
            warnings.simplefilter("ignore", DeprecationWarning)
            parsed = rdflib.Graph().parse(data=data, format=fmt.rdflib)
        assert_isomorphic(parsed, reference)
    # Raptor, a reader independent of rdflib and Oxigraph, for the formats it reads.
    for fmt, syntax in ((TURTLE, "turtle"), (NTRIPLES, "ntriples"), (RDFXML, "rdfxml")):
        rapper = subprocess.run(
            ["rapper", "-q", "-i", syntax, "-o", "ntriples", "-", BASE],
            input=read_dump(release, f"library{fmt.suffix}"),
            capture_output=True,
            check=True,
            timeout=120,
        )
        assert_isomorphic(rdflib.Graph().parse(data=rapper.stdout, format="nt"), reference)
    assert {JSONLD, RDFXML} <= set(DUMP_FORMATS)


def test_the_store_holds_the_data_and_the_void_description(release: Path) -> None:
    store = pyoxigraph.Store.read_only(str(release / "store"))
    default = pyoxigraph.serialize(
        (
            pyoxigraph.Triple(q.subject, q.predicate, q.object)
            for q in store.quads_for_pattern(None, None, None, pyoxigraph.DefaultGraph())
        ),
        format=pyoxigraph.RdfFormat.N_TRIPLES,
    )
    # Compared as values: the store writes a dateTime in its canonical form ('Z' for +00:00).
    assert_isomorphic(
        rdflib.Graph().parse(data=default, format="nt"),
        rdflib.Graph().parse(data=read_dump(release, "library.nt"), format="nt"),
    )
    void = pyoxigraph.NamedNode(BASE + ".well-known/void")
    in_store = rdflib.Graph().parse(
        data=pyoxigraph.serialize(
            (
                pyoxigraph.Triple(q.subject, q.predicate, q.object)
                for q in store.quads_for_pattern(None, None, None, void)
            ),
            format=pyoxigraph.RdfFormat.N_TRIPLES,
        ),
        format="nt",
    )
    # Oxigraph's store keeps an integer of a derived type as xsd:integer (dcat:byteSize is an
    # xsd:nonNegativeInteger in void.ttl): compared with that type mapped.
    in_file = rdflib.Graph()
    for s, p, o in rdflib.Graph().parse(release / "void.ttl", format="turtle"):
        if isinstance(o, rdflib.Literal) and o.datatype == XSD.nonNegativeInteger:
            o = rdflib.Literal(int(o), datatype=XSD.integer)
        in_file.add((s, p, o))
    assert_isomorphic(in_store, in_file)


def store_graph(release: Path) -> rdflib.Graph:
    store = pyoxigraph.Store.read_only(str(release / "store"))
    quads = store.quads_for_pattern(None, None, None, pyoxigraph.DefaultGraph())
    data = pyoxigraph.serialize(
        (pyoxigraph.Triple(q.subject, q.predicate, q.object) for q in quads),
        format=pyoxigraph.RdfFormat.N_TRIPLES,
    )
    return rdflib.Graph().parse(data=data, format="nt")


def test_the_store_has_what_history_adds(tmp_path: Path) -> None:
    """The store loads while history runs; the dcterms:modified of an updated entry is added."""
    page = PAGES / "library-crime-asb.txt"
    edited = tmp_path / page.name
    text = page.read_text()
    first_description = text.split("\n")[6]
    edited.write_text(text.replace(first_description, first_description + " Now revised."))
    out = tmp_path / "out"
    build([page], out, BuildOptions(base=BASE), now=NOW)
    later = datetime(2025, 2, 3, 4, 5, 6, tzinfo=UTC)
    release = build([edited], out, BuildOptions(base=BASE), now=later).release
    assert release is not None
    nt = read_dump(release, "library.nt")
    assert b'<http://purl.org/dc/terms/modified> "2025-02-03T04:05:06Z"' in nt
    assert_isomorphic(store_graph(release), rdflib.Graph().parse(data=nt, format="nt"))


# Atomic swap


def test_a_build_failing_while_writing_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    build([SEED], out, BuildOptions(base=BASE), now=NOW)
    before = snapshot(out)
    real = chunked_dumps.write_dump_files
    written: list[Path] = []

    def write_then_fail(*args):  # type: ignore[no-untyped-def]
        real(*args)
        written.append(args[3])
        raise OSError(28, "No space left on device")  # the disk fills up after one dump

    monkeypatch.setattr(chunked_dumps, "write_dump_files", write_then_fail)
    with pytest.raises(PublicationError, match="cannot write the publication: No space left"):
        build(list(PAGES.glob("*.txt")), out, BuildOptions(base=BASE), now=NOW)
    assert written and not written[0].exists()  # it was written, aside, and removed
    assert snapshot(out) == before
    assert not list((out / "releases").glob(".building-*"))


@pytest.mark.parametrize("how", ["a listing with a mistake", "another build running"])
def test_a_rebuild_refused_before_its_lock_leaves_nothing(tmp_path: Path, how: str) -> None:
    """A rebuild starts copying the current index with its parse, in a folder of its own
    (publication._EarlyCopy): a listing with a mistake, or the lock of a build under way,
    removes it, and the publication is as it was."""
    out = tmp_path / "out"
    build([SEED], out, BuildOptions(base=BASE), now=NOW)
    before = snapshot(out)
    source, expected = [SEED], "another build is running"
    if how == "a listing with a mistake":
        source, expected = [FIXTURES / "listings" / "bad" / "impossible-date.txt"], "impossible"
    fd = os.open(out / ".lock", os.O_RDWR)
    try:
        if how == "another build running":
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises((PublicationError, ListingError), match=expected):
            build(source, out, BuildOptions(base=BASE), now=NOW + timedelta(hours=1))
    finally:
        os.close(fd)
    assert snapshot(out) == before
    assert not list((out / "releases").glob(".building-*"))


def test_a_build_killed_while_writing_leaves_the_previous_and_the_next_cleans_up(
    tmp_path: Path,
) -> None:
    out = tmp_path / "out"
    build([SEED], out, BuildOptions(base=BASE), now=NOW)
    before = snapshot(out)
    big = generate(tmp_path, 12_000)
    proc = subprocess.Popen(
        [sys.executable, "-m", "server.cli", "build", *map(str, big), "--out", str(out), "-q"],
        cwd=ROOT,
        env=ENV,
    )
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            building = list((out / "releases").glob(".building-*/dumps/*"))
            if building:  # the write phase has begun: some dump is on disk
                break
            time.sleep(0.002)
        assert proc.poll() is None, "the build ended before it could be killed"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    stale = list((out / "releases").glob(".building-*"))
    assert len(stale) == 1
    assert {k: v for k, v in snapshot(out).items() if ".building-" not in k} == before
    again = kgpub("build", *map(str, PAGES.glob("*.txt")), "--out", str(out), "-q")
    assert again.returncode == 0, again.stderr
    assert not stale[0].exists()
    assert os.readlink(out / "current") != before["current ->"].decode()


# Progress: on a terminal only


def run_on_terminal(*args: str) -> tuple[int, str, str]:
    """Run kgpub with stderr on a pseudo-terminal; (status, stdout, what the terminal got)."""
    return on_terminal([sys.executable, "-m", "server.cli", *args], ROOT, ENV)


def test_a_build_on_a_terminal_shows_each_phase_with_entries_done(tmp_path: Path) -> None:
    listing = generate(tmp_path, 2_000)
    status, stdout, terminal = run_on_terminal(
        "build", *map(str, listing), "--out", str(tmp_path / "out")
    )
    assert status == 0, terminal
    assert "\r\x1b[K" in terminal
    for line in (
        "parse: 1/1",
        "convert: 2,000/2,000",
        "history: 0/2,000",
        "validate: 2,000/2,000",
        "write: 2,000/2,000",
    ):
        assert line in terminal, (line, terminal)
    # The progress line is cleared at the end; the warnings follow on lines of their own.
    after = terminal.rsplit("\r\x1b[K", 1)[1]
    assert all(line.startswith("warning: ") for line in after.splitlines()), after
    assert stdout.startswith("2,000 entries, ")


@pytest.mark.parametrize("how", ["quiet", "piped"])
def test_no_progress_when_quiet_or_piped(tmp_path: Path, how: str) -> None:
    args = ["build", str(SEED), "--out", str(tmp_path / "out")]
    if how == "quiet":
        status, stdout, terminal = run_on_terminal(*args, "--quiet")
        assert (status, stdout, terminal) == (0, "", "")
    else:
        result = kgpub(*args)
        assert result.returncode == 0
        assert "\r" not in result.stderr and "\x1b" not in result.stderr
        assert result.stderr == ""
        assert result.stdout.startswith("35 entries")


def test_phases_report_time_cpu_and_peak_memory(tmp_path: Path) -> None:
    outcome = build([SEED], tmp_path / "out", BuildOptions(base=BASE))
    assert [p.name for p in outcome.phases] == ["parse", "convert", "history", "validate", "write"]
    assert all(p.seconds >= 0 and p.cpu_seconds >= 0 and p.peak_rss_mib > 0 for p in outcome.phases)
