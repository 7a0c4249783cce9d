"""A rebuild that reuses the current release's dump chunks publishes exactly what a full
build of the same sources publishes (graph/dumps.py)."""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyoxigraph
import pytest
import rdflib
from rdflib.compare import isomorphic

from graph import dumps, shacl
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
    names += [f"dumps/{p.name}" for p in (release / "dumps").iterdir()]
    return {name: (release / name).read_bytes() for name in sorted(names)}


def reused(release: Path) -> dict[str, int]:
    counts: dict[str, int] = json.loads((release / dumps.INDEX).read_text())["reused"]
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
        shutil.copytree(out, full_out, symlinks=True)
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
        # Only entries of changed chunks are validated again, unless the concepts changed
        # (the library's hasPart and its description, which counts the entries, do not
        # count: no entry shape reads them).
        entries = again.entries
        if step != "new category":
            assert max(validated) < entries / 4, (step, validated)
        else:
            assert max(validated) == entries, (step, validated)
        shutil.rmtree(full_out)


def test_other_shapes_or_engine_mean_validating_everything(tmp_path: Path) -> None:
    shapes = tmp_path / "shapes"
    shutil.copytree(shacl.SHAPES_DIR, shapes)
    key = dumps.validation_key("turbo", shapes)
    assert dumps.validation_key("pyshacl", shapes) != key
    entry = shapes / "entry.ttl"
    entry.write_text(entry.read_text() + "\n# edited\n")
    assert dumps.validation_key("turbo", shapes) != key


def test_a_cache_from_another_base_is_not_used(tmp_path: Path, generated: str) -> None:
    source = tmp_path / "library.txt"
    source.write_text(listing(generated, OWN), encoding="utf-8")
    out = tmp_path / "out"
    build([source], out, BuildOptions(base=BASE), now=NOW)
    other = build([source], out, BuildOptions(base="https://example.net/other/"), now=NOW)
    assert other.release is not None
    assert sum(reused(other.release).values()) == 0
    nt = (other.release / "dumps" / "library.nt").read_bytes()
    assert b"example.org" not in nt


def test_the_full_option_reuses_nothing(tmp_path: Path, generated: str) -> None:
    source = tmp_path / "library.txt"
    source.write_text(listing(generated, OWN), encoding="utf-8")
    out = tmp_path / "out"

    def kgpub_build(*extra: str) -> Path:
        command = [sys.executable, "-m", "server.cli", "build", str(source), "--out", str(out)]
        subprocess.run([*command, "-q", *extra], cwd=ROOT, check=True)
        return (out / "current").resolve()

    kgpub_build()
    assert sum(reused(kgpub_build("--full")).values()) == 0
    assert all(reused(kgpub_build()).values())
