"""The library's dumps as parts (graph/dumps.py, graph/parts.py): on disk a list and part
files; over HTTP (the real server) one file, a Range anywhere in it, across part boundaries
too; a rebuild links its unchanged parts."""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from dumpfiles import read_dump
from fetch import get
from live import SEED, Server

from graph import parts
from graph.publication import BuildOptions, build


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
