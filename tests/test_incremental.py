"""A rebuild that reuses the current release's dump chunks publishes exactly what a full
build of the same sources publishes (graph/dumps.py)."""

from __future__ import annotations

import gzip
import random
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyoxigraph
import pytest
import rdflib
from dumpfiles import cut_short, dump_names, overwrite, read_dump
from live import PRUNING, kgpub
from rdflib.compare import isomorphic

from graph import dumps, history, parts, shacl, sitemap
from graph.errors import ValidationFailed
from graph.publication import BuildOptions, build

ROOT = Path(__file__).resolve().parent.parent
BASE = "https://example.org/kg/"
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
# Entries of our own, after the generated ones: (title, added, categories, description).
OWN = [
    ("Alpha review of practice", "03/02/2023 at 9:15 am", "Safeguarding", "About alpha."),
    ("Beta guidance for schools", "17/02/2023 at 1:05 pm", "Education, Drugs", "About beta."),
    ("Gamma annual report", "21/06/2021 at 4:40 pm", "Prevent", "About gamma."),
]


def listing(generated: str, own: list[tuple[str, str, str, str]]) -> str:
    blocks = [f"{t}\n\nAdded: {added} Category: {cats}\n\n{text}\n" for t, added, cats, text in own]
    return generated.rstrip("\n") + "\n\n" + "\n".join(blocks)


def store_contents(release: Path) -> tuple[set[pyoxigraph.Quad], rdflib.Graph]:
    """The store's default graph as quads; its VoID graph (with blank nodes) for isomorphism."""
    store = pyoxigraph.Store.read_only(str(release / "store"))
    default = set(store.quads_for_pattern(None, None, None, pyoxigraph.DefaultGraph()))
    void = pyoxigraph.NamedNode(BASE + ".well-known/void")
    text = pyoxigraph.serialize(
        [q.triple for q in store.quads_for_pattern(None, None, None, void)],
        format=pyoxigraph.RdfFormat.N_TRIPLES,
    )
    assert len(store) == len(default) + len(rdflib.Graph().parse(data=text, format="nt"))
    return default, rdflib.Graph().parse(data=text, format="nt")


def files_of(release: Path) -> dict[str, bytes]:
    names = ["manifest.json", "void.ttl", "validation.ttl", "history.jsonl", "entries.json"]
    # Not index.facets: its masks name concepts by id, which a rebuild gives as they come
    # (tests/test_index.py compares what the ids stand for).
    names.append("context.nt")
    files = {name: parts.read_bytes(release / name) for name in names}
    # Each dump whole (the bytes a client downloads) and the list of its parts: the same
    # parts (content addresses), whether linked from the previous release or made again.
    for name in dump_names(release):
        files[f"dumps/{name}"] = read_dump(release, name)
        listed = release / "dumps" / (name + parts.SUFFIX)
        if listed.exists():
            files[f"dumps/{name}{parts.SUFFIX}"] = listed.read_bytes()
    return dict(sorted(files.items()))


def reused(release: Path) -> dict[str, int]:
    counts: dict[str, int] = dumps.read_index_file(release)["reused"]
    return counts


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> str:
    out = tmp_path_factory.mktemp("gen") / "gen.txt"
    generator = ROOT / "tests" / "fixtures" / "gen_listing.py"
    subprocess.run([sys.executable, str(generator), "400", "--out", str(out)], check=True)
    return out.read_text(encoding="utf-8")


def _edit(step: str, own: list[tuple[str, str, str, str]]) -> list[tuple[str, str, str, str]]:
    own = list(own)
    if step == "description":
        title, added, cats, _ = own[0]
        own[0] = (title, added, cats, "About alpha, revised.")
    elif step == "added":
        own.append(("Delta toolkit", "02/02/2023 at 8:00 am", "Safeguarding", "About delta."))
    elif step == "removed":
        del own[2]
    elif step == "new category":
        own.append(("Epsilon briefing", "09/09/2024 at 7:30 am", "Water Safety", "About eps."))
    elif step == "categories":
        title, added, _, text = own[1]
        own[1] = (title, added, "Education, Mental Health, Safeguarding", text)
    return own


STEPS = ["unchanged", "description", "added", "removed", "new category", "categories"]
# The entries a rebuild validates at each step: those it changed or added ("new category"
# changes the concepts: every entry).
VALIDATED = {"unchanged": 0, "description": 1, "added": 1, "removed": 0, "categories": 1}


def test_a_rebuild_reusing_chunks_equals_a_full_build(tmp_path: Path, generated: str) -> None:
    source = tmp_path / "library.txt"
    out = tmp_path / "out"
    options = BuildOptions(base=BASE)
    own = OWN
    source.write_text(listing(generated, own), encoding="utf-8")
    first = build([source], out, options, now=NOW)
    assert first.release is not None
    assert sum(reused(first.release).values()) == 0
    for n, step in enumerate(STEPS, start=1):
        own = _edit(step, own)
        source.write_text(listing(generated, own), encoding="utf-8")
        now = NOW + timedelta(hours=n)
        # The full build starts from a copy of the same publication (history depends on it).
        full_out = tmp_path / f"full-{n}"
        shutil.copytree(out, full_out, symlinks=True, ignore=PRUNING)
        full = build([source], full_out, options, now=now, reuse=False)
        validated: list[int] = []

        def record(phase: str, done: int, total: int, seen: list[int] = validated) -> None:
            if phase == "validate":
                seen.append(total)

        again = build([source], out, options, now=now, progress=record)
        assert full.release is not None and again.release is not None
        assert full.release.name == again.release.name, step
        expected, got = files_of(full.release), files_of(again.release)
        assert expected.keys() == got.keys()
        for name in expected:
            assert got[name] == expected[name], f"{step}: {name} differs"
        (data, void), (full_data, full_void) = (
            store_contents(again.release),
            store_contents(full.release),
        )
        assert data == full_data, step
        assert isomorphic(void, full_void), step
        assert sum(reused(full.release).values()) == 0
        counts = reused(again.release)
        assert all(counts.values()), f"{step}: nothing reused: {counts}"
        for name in expected:
            if name.endswith(".gz"):  # one gzip member that decompresses to the plain dump
                assert gzip.decompress(got[name]) == got[name.removesuffix(".gz")]
        # Only the entries whose triples changed are validated again (not the rest of their
        # month), unless the concepts changed (the library's hasPart and its description,
        # which counts the entries, do not count: no entry shape reads them).
        expected_validated = VALIDATED.get(step, again.entries)
        assert max(validated) == expected_validated, (step, validated)
        shutil.rmtree(full_out)


# A shape the test adds: descriptions of at most 40 characters.
_SHORT = """
@prefix sh: <http://www.w3.org/ns/shacl#> .
@prefix dcterms: <http://purl.org/dc/terms/> .
@prefix dcmitype: <http://purl.org/dc/dcmitype/> .
<urn:test:short> a sh:NodeShape ; sh:targetClass dcmitype:Text ;
    sh:property [ sh:path dcterms:description ; sh:maxLength 40 ] .
"""


def test_an_entry_changed_to_break_a_shape_fails_the_rebuild_that_validates_it_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rebuild validates, of a month made again, only the entries whose triples changed
    (the others conformed in the current release, to the same shapes): the one changed
    entry is validated, and its violation refuses the rebuild, the current release kept."""
    shapes = shacl.load_shapes()
    shapes.parse(data=_SHORT, format="turtle")
    monkeypatch.setattr(shacl, "load_shapes", lambda *_: shapes)
    own = [
        (f"Report number {n}", f"0{n}/03/2024 at 10:00 am", "Safeguarding", f"About {n}.")
        for n in range(1, 7)
    ]
    source, out = tmp_path / "library.txt", tmp_path / "out"
    source.write_text(listing("Library", own), encoding="utf-8")
    first = build([source], out, BuildOptions(base=BASE), now=NOW)
    assert first.release is not None
    title, added, cats, _ = own[2]
    own[2] = (title, added, cats, "About the third report, at rather more length than before.")
    source.write_text(listing("Library", own), encoding="utf-8")
    validated: list[int] = []

    def record(phase: str, done: int, total: int) -> None:
        if phase == "validate":
            validated.append(total)

    with pytest.raises(ValidationFailed) as failed:
        build([source], out, BuildOptions(base=BASE), now=NOW + timedelta(hours=1), progress=record)
    assert max(validated) == 1  # the month's other five entries are not validated again
    [violation] = failed.value.violations
    assert violation.focus == BASE + "entry/2024-03-03-1000-report-number-3"
    assert violation.path.endswith("description")
    assert (out / "current").resolve() == first.release


def test_other_shapes_or_engine_mean_validating_everything(tmp_path: Path) -> None:
    shapes = tmp_path / "shapes"
    shutil.copytree(shacl.SHAPES_DIR, shapes)
    key = dumps.validation_key("turbo", shapes)
    assert dumps.validation_key("pyshacl", shapes) != key
    entry = shapes / "entry.ttl"
    entry.write_text(entry.read_text() + "\n# edited\n")
    assert dumps.validation_key("turbo", shapes) != key


def test_a_rebuild_validating_everything_reads_ahead_through_months_taken_as_they_are(
    tmp_path: Path, generated: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the current release was validated otherwise (another engine, other shapes), a
    rebuild validates every entry, ahead of convert (graph/shacl.py Ahead), while it still
    takes unchanged months as they are: their text is where the spool refers to the current
    release's parts. The release is a full build's, byte for byte."""
    aheads: list[shacl.Ahead] = []

    class Settled(shacl.Ahead):
        """Every chunk it was given validated before validate() asks for them."""

        def __init__(self) -> None:
            super().__init__()
            aheads.append(self)

        def take(
            self, partition: shacl.Partition, chunks: Sequence[range], shapes: rdflib.Graph
        ) -> dict[int, Future[rdflib.Graph]]:
            self.settle()
            return super().take(partition, chunks, shapes)

    monkeypatch.setattr(shacl, "CHUNK", 16)
    monkeypatch.setattr(shacl, "Ahead", Settled)
    source = tmp_path / "library.txt"
    source.write_text(listing(generated, OWN), encoding="utf-8")
    out = tmp_path / "out"
    build([source], out, BuildOptions(base=BASE, engine="pyshacl"), now=NOW)
    assert aheads == []  # pyshacl validates the whole graph
    source.write_text(listing(generated, _edit("description", OWN)), encoding="utf-8")
    now = NOW + timedelta(hours=1)
    full_out = tmp_path / "full"
    shutil.copytree(out, full_out, symlinks=True, ignore=PRUNING)
    full = build([source], full_out, BuildOptions(base=BASE), now=now, reuse=False)
    again = build([source], out, BuildOptions(base=BASE), now=now)
    assert full.release is not None and again.release is not None
    assert files_of(again.release) == files_of(full.release)
    assert all(reused(again.release).values())  # months taken as they are
    assert [a.taken for a in aheads] == [again.entries // 16] * 2


def test_a_cache_from_another_base_is_not_used(tmp_path: Path, generated: str) -> None:
    source = tmp_path / "library.txt"
    source.write_text(listing(generated, OWN), encoding="utf-8")
    out = tmp_path / "out"
    build([source], out, BuildOptions(base=BASE), now=NOW)
    other = build([source], out, BuildOptions(base="https://example.net/other/"), now=NOW)
    assert other.release is not None
    assert sum(reused(other.release).values()) == 0
    nt = read_dump(other.release, "library.nt")
    assert b"example.org" not in nt


def test_the_full_option_reuses_nothing(tmp_path: Path, generated: str) -> None:
    source = tmp_path / "library.txt"
    source.write_text(listing(generated, OWN), encoding="utf-8")
    out = tmp_path / "out"

    def kgpub_build(*extra: str) -> Path:
        done = kgpub("build", str(source), "--out", str(out), "-q", *extra)
        assert done.returncode == 0, done.stderr
        return (out / "current").resolve()

    kgpub_build()
    assert sum(reused(kgpub_build("--full")).values()) == 0
    assert all(reused(kgpub_build()).values())


# Random edits, each rebuilt both ways: every kind of change the months logic must see.
POOL = [
    ("Annual review of practice", "03/02/2023 at 9:15 am"),
    ("Briefing for schools", "17/02/2023 at 1:05 pm"),
    ("Guidance on neglect", "28/02/2023 at 11:59 pm"),
    ("Toolkit for families", "01/03/2023 at 12:00 am"),
    ("Report on exploitation", "26/03/2023 at 1:30 am"),  # the hour the clocks skip
    ("Learning from a review", "29/10/2023 at 1:30 am"),  # the hour that happens twice
    ("Strategy 2024", "15/01/2024 at 10:00 am"),
    ("Annual Review of Practice", "15/01/2024 at 10:01 am"),
]
CATEGORIES = ["Safeguarding", "Education", "Early Help", "Online Safety", "Water Safety"]


def _random_listing(rng: random.Random, present: dict[int, tuple[str, str]]) -> str:
    blocks = []
    for n, (cats, text) in sorted(present.items()):
        title, added = POOL[n]
        blocks.append(f"{title}\n\nAdded: {added} Category: {cats}\n\n{text}\n")
    rng.shuffle(blocks)
    return "Library – Random\n\n" + "\n".join(blocks)


@pytest.mark.parametrize("seed", range(3))
def test_random_edits_rebuilt_reusing_equal_full_builds(tmp_path: Path, seed: int) -> None:
    """Entries added, removed, brought back, their text or categories changed, whole months
    emptied and refilled, in random order: after every step the rebuild that reuses the
    current release publishes the same bytes and store as a full build of the same step."""
    rng = random.Random(seed)
    source, out = tmp_path / "library.txt", tmp_path / "out"
    options = BuildOptions(base=BASE)
    present = {n: ("Safeguarding", f"About {n}.") for n in range(0, len(POOL), 2)}
    # First the month 2023-03 emptied (4 is its only entry) and refilled, and the month of 5
    # made, changed and emptied; then random edits.
    script = [(4, "toggle"), (4, "toggle"), (5, "toggle"), (5, "text"), (5, "toggle")]
    for step in range(12):
        if step:
            n, action = script.pop(0) if script else (rng.randrange(len(POOL)), "")
            action = action or rng.choice(["toggle", "text", "categories"])
            if action == "toggle" or n not in present:
                if n in present and len(present) > 1:
                    del present[n]
                else:
                    present[n] = (rng.choice(CATEGORIES), f"About {n}.")
            elif action == "text":
                cats, text = present[n]
                present[n] = (cats, text + f" Revised {step}.")
            else:
                cats = ", ".join(sorted(rng.sample(CATEGORIES, rng.randint(1, 3))))
                present[n] = (cats, present[n][1])
        source.write_text(_random_listing(rng, present), encoding="utf-8")
        now = NOW + timedelta(hours=step)
        full_out = tmp_path / "full"
        if out.exists():
            shutil.copytree(out, full_out, symlinks=True, ignore=PRUNING)
        full = build([source], full_out, options, now=now, reuse=False)
        again = build([source], out, options, now=now)
        assert full.release is not None and again.release is not None
        expected, got = files_of(full.release), files_of(again.release)
        assert expected == got, (
            f"step {step}: {sorted(k for k in got if got[k] != expected.get(k))}"
        )
        assert store_contents(again.release)[0] == store_contents(full.release)[0], step
        # The history agrees with the data: the entries published are the live ones, every
        # other entry ever published is a tombstone, and the feed says so.
        nt = read_dump(again.release, "library.nt").decode("utf-8")
        published = {
            line.split(" ", 1)[0][1:-1]
            for line in nt.splitlines()
            if line.endswith("<http://purl.org/dc/dcmitype/Text> .")
        }
        index = history.Index(again.release)
        assert set(index.live) == published, step
        gone = {c.iri for c in index.changes if c.kind == "delete"} - published
        assert {i for i, s in index.entries.items() if s.deleted} == gone, step
        months = sorted(p.name for p in (again.release / "entries").iterdir())
        assert months == sorted(p.name for p in (full.release / "entries").iterdir())
        for name in months:
            a = (again.release / "entries" / name).read_bytes()
            assert a == (full.release / "entries" / name).read_bytes(), (step, name)
        shutil.rmtree(full_out)


def _rebuilt_after_damage(
    tmp_path: Path, generated: str, damage: Callable[[Path], None]
) -> tuple[Path, Path, Path]:
    """A release built, damaged (after a copy of its publication was taken), then rebuilt
    after alpha's description changed, and the copy built in full from the same listing: the
    first release, the full build's and the rebuild's, whose files are checked to be the same."""
    source, out = tmp_path / "library.txt", tmp_path / "out"
    options = BuildOptions(base=BASE)
    source.write_text(listing(generated, OWN), encoding="utf-8")
    first = build([source], out, options, now=NOW)
    assert first.release is not None
    shutil.copytree(out, tmp_path / "full", symlinks=True, ignore=PRUNING)
    damage(first.release)
    source.write_text(listing(generated, _edit("description", OWN)), encoding="utf-8")
    later = NOW + timedelta(hours=1)
    full = build([source], tmp_path / "full", options, now=later, reuse=False)
    again = build([source], out, options, now=later)
    assert full.release is not None and again.release is not None
    assert files_of(again.release) == files_of(full.release)
    return first.release, full.release, again.release


def test_a_damaged_dump_of_the_current_release_is_made_again(
    tmp_path: Path, generated: str
) -> None:
    """Bytes changed in the current N-Triples dump (same size), in the month the rebuild
    changes and in one it keeps, and a truncated Turtle gzip: the rebuild links nothing
    from the truncated dump, neither links nor reads as a month the damaged chunk it keeps
    (its CRC-32 fails: it is made again), takes the store's update from no damaged chunk,
    and publishes what a full build publishes."""

    def damage(release: Path) -> None:
        nt = release / "dumps" / "library.nt"
        data = read_dump(release, "library.nt")
        for text in (b"About alpha.", b"About gamma."):
            overwrite(nt, data.index(text), b"About"[::-1])
        cut_short(release / "dumps" / "library.ttl.gz", 100)

    _, full, again = _rebuilt_after_damage(tmp_path, generated, damage)
    assert store_contents(again)[0] == store_contents(full)[0]
    counts = reused(again)
    assert counts["library.ttl"] == 0
    # gamma's month is kept: linked in JSON-LD, made again in N-Triples.
    assert counts["library.nt"] == counts["library.jsonld"] - 1 > 0
    assert b"tuobA" not in read_dump(again, "library.nt")


def test_the_months_records_of_unchanged_months_are_linked_not_written(
    tmp_path: Path, generated: str
) -> None:
    """Each month's record (what the next build may take it from) is a file of its own: a
    rebuild links the current release's for the months it takes as they are and writes only
    the changed month's; a record damaged in the current release is not linked nor trusted
    (its month is made again), and the rebuild still publishes what a full build does."""
    names: list[str] = []

    def damage(release: Path) -> None:
        names.extend(sorted(p.name for p in (release / dumps.MONTHS).iterdir()))
        assert "2023-02.marshal" in names and "2021-06.marshal" in names and len(names) > 3
        # gamma's month (2021-06) is damaged; alpha's (2023-02) is the one the edit changes.
        (release / dumps.MONTHS / "2021-06.marshal").write_bytes(b"\x00not marshal")

    first, full, again = _rebuilt_after_damage(tmp_path, generated, damage)
    records = first / dumps.MONTHS
    rewritten = {"2023-02.marshal", "2021-06.marshal"}
    assert sorted(p.name for p in (again / dumps.MONTHS).iterdir()) == names
    for name in names:
        old, new = (records / name).stat(), (again / dumps.MONTHS / name).stat()
        assert (old.st_ino == new.st_ino) == (name not in rewritten), name
    # What the rebuild wrote is what a full build writes, and the next build can read it.
    index, full_index = dumps.read_index_file(again), dumps.read_index_file(full)
    assert index["months"] == full_index["months"]
    assert sorted(index["months"]) == [n.removesuffix(".marshal") for n in names]


def test_an_entry_added_as_the_newest_moves_no_sitemap_part_but_the_last(
    tmp_path: Path, generated: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sitemap parts are counted from the oldest entries (graph/sitemap.py part_range): a
    rebuild that adds the newest entry writes again only the parts at the end of the list
    (the pages before the entries, whose lastmod it changes, and the newest entries: the last
    part, and the one before when they spill into it) and links every other part of the
    current release (counted from the start, each one moved); the parts hold every page once."""
    monkeypatch.setattr(sitemap, "MAX", 10)
    source, out = tmp_path / "library.txt", tmp_path / "out"
    options = BuildOptions(base=BASE)
    source.write_text(listing(generated, OWN), encoding="utf-8")
    first = build([source], out, options, now=NOW)
    newest = ("Zeta newest report", "30/12/2025 at 11:00 pm", "Safeguarding", "About zeta.")
    source.write_text(listing(generated, [*OWN, newest]), encoding="utf-8")
    again = build([source], out, options, now=NOW + timedelta(hours=1))
    assert first.release is not None and again.release is not None

    def parts(release: Path) -> list[Path]:
        found = (release / "sitemap").glob("sitemap-*.xml")
        return sorted(found, key=lambda p: int(p.stem.removeprefix("sitemap-")))

    old, new = parts(first.release), parts(again.release)
    assert len(old) > 10 and len(new) == len(old)
    added = BASE + "entry/2025-12-30-2300-zeta-newest-report"
    locs = [re.findall(r"<loc>([^<]+)</loc>", p.read_text(encoding="utf-8")) for p in new]
    for before, after, urls in zip(old, new, locs, strict=True):
        moved = added in urls or any("/entry/" not in u for u in urls)
        assert (before.stat().st_ino == after.stat().st_ino) == (not moved), before.name
    assert sum(any("/entry/" not in u for u in urls) for urls in locs) <= 2
    pages = [u for part in locs for u in part]
    assert len(pages) == len(set(pages)) == again.entries + 4 + again.concepts
    assert any(added in urls for urls in locs[-2:])  # the newest, at the list's start
