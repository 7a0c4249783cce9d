"""The library's dumps as parts (graph/dumps.py, graph/parts.py): on disk a list and part
files; over HTTP (the real server) one file, a Range anywhere in it, across part boundaries
too; a rebuild links its unchanged parts."""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyoxigraph
import pytest
import rdflib
from dumpfiles import read_dump
from fetch import get
from live import SEED, Server

from graph import dumps, parts
from graph.convert import convert
from graph.iris import Iris
from graph.listing import read_listings
from graph.publication import BuildOptions, build

NOW = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)


def _boundaries(release: Path, name: str) -> list[int]:
    """The offsets in the whole dump where one part ends and the next begins."""
    out, at = [], 0
    for part in parts.read_parts(release / "dumps" / name)[:-1]:
        at += part.size
        out.append(at)
    return out


def test_every_dump_is_made_of_parts_and_listed_whole_in_the_manifest(seed_out: Path) -> None:
    release = seed_out / "current"
    manifest: list[dict[str, Any]] = parts_manifest(release)
    for dump in manifest:
        path = release / "dumps" / dump["filename"]
        assert parts.is_parts(path) and not path.exists(), dump["filename"]
        data = read_dump(release, dump["filename"])
        assert (len(data), hashlib.sha256(data).hexdigest()) == (dump["size"], dump["sha256"])
        assert parts.size_of(path) == dump["size"]
    nt = parts.read_parts(release / "dumps" / "library.nt")
    assert len(nt) >= 4, "the library, the scheme and the months: each a part"


def parts_manifest(release: Path) -> list[dict[str, Any]]:
    """The manifest's dumps of the library (not the linkset's, when there is one)."""
    dumps: list[dict[str, Any]] = json.loads((release / "manifest.json").read_text())["dumps"]
    return [d for d in dumps if d["filename"].startswith("library.")]


@pytest.mark.parametrize("name", ["library.nt", "library.ttl.gz", "library.jsonld"])
def test_a_range_across_part_boundaries_is_the_files_bytes(
    live: Server, seed_out: Path, name: str
) -> None:
    release = seed_out / "current"
    whole = read_dump(release, name)
    url = live.base + "dumps/" + name
    for at in _boundaries(release, name):
        start, end = max(0, at - 7), min(len(whole) - 1, at + 6)
        reply = get(url, {"Range": f"bytes={start}-{end}"})
        assert reply.status == 206, (name, at)
        assert reply.body == whole[start : end + 1], (name, at)
        assert reply.header("Content-Range") == f"bytes {start}-{end}/{len(whole)}"
    tail = get(url, {"Range": "bytes=-5"})
    assert tail.status == 206 and tail.body == whole[-5:]
    assert get(url, {"Range": f"bytes={len(whole)}-"}).status == 416
    head = get(url, method="HEAD")
    assert head.status == 200 and head.body == b""
    assert int(head.header("Content-Length")) == len(whole)


def test_the_gzip_coding_of_a_plain_dump_is_its_gz_parts(live: Server, seed_out: Path) -> None:
    release = seed_out / "current"
    coded = get(live.base + "dumps/library.nt", {"Accept-Encoding": "gzip"})
    assert coded.header("Content-Encoding") == "gzip"
    assert coded.body == read_dump(release, "library.nt.gz")
    assert gzip.decompress(coded.body) == read_dump(release, "library.nt")


def test_a_rebuild_links_the_unchanged_parts(tmp_path: Path) -> None:
    source = tmp_path / "library.txt"
    text = SEED.read_text(encoding="utf-8")
    source.write_text(text, encoding="utf-8")
    out = tmp_path / "out"
    first = build([source], out, BuildOptions(base="http://example.org/lib/")).release
    described = "ECPAT UK and the Office"  # one entry's description changes: one month
    assert described in text
    source.write_text(text.replace(described, "ECPAT UK, revised, and the Office"), "utf-8")
    again = build([source], out, BuildOptions(base="http://example.org/lib/")).release
    assert first is not None and again is not None
    for name in ("library.nt", "library.ttl.gz"):
        old = {p.name for p in parts.read_parts(first / "dumps" / name)}
        new = parts.read_parts(again / "dumps" / name)
        # The chunks' parts (the .gz's header and trailer are small parts written each time).
        kept = [p for p in new if p.name in old and not p.name.endswith(".gz")]
        assert 0 < len(kept) < len(new), name
        for part in kept:  # the same file, not a copy
            a, b = (r / "dumps" / parts.FOLDER / part.name for r in (first, again))
            assert a.stat().st_ino == b.stat().st_ino, (name, part.name)
        assert all(
            (again / "dumps" / parts.FOLDER / p.name).stat().st_nlink == 1
            for p in new
            if p.name not in old and p.name.endswith(".deflate")
        )
    # Each dump's SHA-256, taken up after the parts the two releases share at their start
    # (graph/digest.py), is still the SHA-256 of the rebuilt file's bytes: the manifest's,
    # which DCAT's checksum and the download's ETag are.
    for dump in parts_manifest(again):
        data = read_dump(again, dump["filename"])
        assert (len(data), hashlib.sha256(data).hexdigest()) == (dump["size"], dump["sha256"])


def test_a_library_chunk_written_in_pieces_gives_the_same_dumps_and_links_no_older_part(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The library's chunk made and written in pieces (graph/dumps.py PIECE, lowered here so
    that 35 entries take that path, as 1M do) gives the dumps of the same graph; a rebuild by
    a new dumps code (_code) links no part of the release made by the old one, and a rebuild
    that adds an entry (a new library chunk, in the build's own thread) gives the files a full
    build (the dump writer's process) gives."""
    source = tmp_path / "library.txt"
    text = SEED.read_text(encoding="utf-8")
    source.write_text(text, encoding="utf-8")
    options = BuildOptions(base="http://example.org/lib/")
    # Builds an hour apart: two in the same second would be one release.
    old = build([source], tmp_path / "out", options, now=NOW).release
    assert old is not None
    library = parts.read_parts(old / "dumps" / "library.nt")[0]
    assert library.size > dumps.WHOLE * 300, "the library's chunk is made in pieces below"

    monkeypatch.setattr(dumps, "PIECE", 300)
    monkeypatch.setattr(dumps, "_code", lambda: "pieces")  # as a new graph/dumps.py does
    new = build([source], tmp_path / "out", options, now=NOW + timedelta(hours=1)).release
    assert new is not None and new != old
    names = [d["filename"] for d in parts_manifest(new)]
    for name in names:
        data = read_dump(new, name)
        if name.endswith(".gz"):
            assert gzip.decompress(data) == read_dump(new, name.removesuffix(".gz")), name
        else:
            assert data == read_dump(old, name), name
        for part in parts.read_parts(new / "dumps" / name):  # all written anew
            assert (new / "dumps" / parts.FOLDER / part.name).stat().st_nlink == 1, name

    added = (
        "\n\nA new entry written in pieces\n\n"
        "Added: 18/08/2020 at 9:21 am Category: Safeguarding\n\n"
        "An entry added to the library, whose chunk is made in pieces.\n"
    )
    source.write_text(text.rstrip("\n") + added, encoding="utf-8")
    later = NOW + timedelta(hours=2)
    again = build([source], tmp_path / "out", options, now=later).release
    fresh = build([source], tmp_path / "fresh", options, now=later).release
    assert again is not None and fresh is not None
    assert [d["filename"] for d in parts_manifest(again)] == names
    for name in names:
        assert read_dump(again, name) == read_dump(fresh, name), name
    entry = b"A new entry written in pieces"
    assert entry in read_dump(again, "library.ttl")
    assert entry in gzip.decompress(read_dump(again, "library.rdf.gz"))
    graph = rdflib.Graph().parse(data=read_dump(again, "library.rdf"), format="xml")
    assert len(graph) == len(read_dump(again, "library.nt").splitlines())


def test_turtle_and_rdfxml_written_in_turn_parse_each_chunk_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The dump writer's process runs its Turtle and RDF/XML writers a chunk each in turn
    (graph/dumps.py in_turn), so that both serialize one parse of each chunk: as many parses
    as chunks made whole, and the bytes of each dump written alone."""
    _, entries, _ = read_listings([SEED])
    converted = convert(entries, Iris.from_base("http://example.org/lib/"), "Library")
    spool = tmp_path / "spool.nt"
    spool.write_bytes(converted.ntriples)
    chunks = dumps.chunks_of(converted)
    whole = [c for c in chunks if c.end - c.start <= dumps.WHOLE * dumps.PIECE]
    assert len(whole) == len(chunks) > 3

    def job(key: str, folder: str) -> tuple[object, ...]:
        (tmp_path / folder).mkdir(exist_ok=True)
        path = tmp_path / folder / f"library.{key}"
        base, end = converted.iris.base, len(converted.text)
        return (spool, base, chunks, key, path, 1, None, (), end, (), dumps.PIECE)

    parses: list[int] = []
    own = dumps._own_triples

    def counted(text: bytes) -> Iterator[pyoxigraph.Triple]:
        parses.append(len(text))
        return own(text)

    with monkeypatch.context() as patched:
        patched.setattr(dumps, "_own_triples", counted)
        results = dumps.in_turn([job("turtle", "turn"), job("rdfxml", "turn")])
    assert not [r for r in results if isinstance(r, BaseException)]
    assert len(parses) == len(chunks)
    for key in ("turtle", "rdfxml"):
        assert not isinstance(dumps.in_turn([job(key, "alone")])[0], BaseException)
        turn = parts.read_bytes(tmp_path / "turn" / f"library.{key}")
        assert turn == parts.read_bytes(tmp_path / "alone" / f"library.{key}"), key
        assert len(turn) > 10_000
