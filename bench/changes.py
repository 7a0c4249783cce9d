"""What a rebuild's store update costs to work out (graph/store/changes.py graph_changes): its
memory and CPU for a library whose chunk of hasPart lines changed, against another revision.

    .venv/bin/python bench/changes.py --entries 100000 --against REV [--runs 3] [--keep DIR]

A listing of --entries is generated (tests/fixtures/gen_listing.py) and built once with this
tree's code. A new library chunk is then made from the current release's: five hasPart lines
inserted at random places and the library's description changed (as five added entries make
it). Each code (this tree, and a `git archive` of REV) works out the changes between the two
in a child process of its own, --runs times, interleaved; each child reports the rise of its
peak RSS (VmHWM) over the call, its CPU seconds and a digest of the changes, which must be
the same for both codes. Medians, and this tree's over REV's.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from million import snapshot  # bench/million.py: a git revision's code in a folder

ROOT = Path(__file__).resolve().parents[1]
GEN = ROOT / "tests" / "fixtures" / "gen_listing.py"
BASE = "https://example.org/kg/"


def _hwm_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def child(release: Path, new_chunk: Path) -> None:
    """In a child whose PYTHONPATH is the code measured: the changes of the library chunk."""
    from graph import dumps
    from graph.convert import GraphText
    from graph.dumps import Chunk

    try:
        from graph.store.changes import graph_changes
    except ImportError:  # before graph/store/changes.py
        from graph.dumps import graph_changes  # type: ignore[attr-defined,no-redef]

    index = dumps.read_index_file(release)
    with new_chunk.open("rb") as file:
        text = GraphText(file=file)
        chunks = [Chunk("new library chunk", 0, len(text), "library")]
        chunks += [Chunk(key, 0, 0, "entries") for key in index["chunks"][1:]]
        converted: Any = SimpleNamespace(text=text)
        # The peak from here: writing 5 to clear_refs resets VmHWM to the current RSS (proc(5)).
        Path("/proc/self/clear_refs").write_text("5")
        before = _hwm_mib()
        cpu = time.process_time()
        changes = graph_changes(release, converted, chunks, index)
        cpu = time.process_time() - cpu
    assert changes is not None, "the index could not tell"
    digest = hashlib.sha256(changes.removed + b"\0" + changes.added).hexdigest()
    print(json.dumps({"rise": _hwm_mib() - before, "cpu": cpu, "digest": digest}))


def _new_chunk(release: Path, path: Path) -> None:
    """The current release's library chunk with five hasPart lines added, its description
    changed."""
    sys.path.insert(0, str(ROOT))
    from graph import dumps, parts

    index = dumps.read_index_file(release)
    listed = {p.name: p for p in parts.read_parts(release / "dumps" / index["nt"])}
    part = listed[dumps.part_name(index["chunks"][0], dumps.NTRIPLES)]
    lines = (release / "dumps" / parts.FOLDER / part.name).read_bytes().split(b"\n")
    subject = lines[0].split(b" ")[0]
    rng = random.Random(5)
    for n in range(5):
        at = rng.randrange(8, len(lines) - 1)
        lines.insert(at, lines[at].replace(b"> .", b"-added-%d> ." % n))
    lines = [
        line.replace(b"@en .", b" (five more)@en .")
        if line.startswith(subject) and b"/description>" in line
        else line
        for line in lines
    ]
    path.write_bytes(b"\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--against", required=True, help="a git revision to compare with")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="a folder kept between runs (listing, build)")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="kgpub-changes-"))
    work.mkdir(parents=True, exist_ok=True)
    listing, out = work / f"listing-{args.entries}.txt", work / f"pub-{args.entries}"
    if not listing.exists():
        subprocess.run([sys.executable, str(GEN), str(args.entries), "--out", str(listing)])
    if not (out / "current").exists():
        subprocess.run(
            [sys.executable, "-m", "server.cli", "build", str(listing), "--out", str(out),
             "--base-uri", BASE, "-q"],
            cwd=ROOT, check=True,
        )  # fmt: skip
    release = (out / "current").resolve()
    new_chunk = work / f"library-chunk-{args.entries}.nt"
    _new_chunk(release, new_chunk)
    codes = {"this": ROOT, args.against: snapshot(args.against, Path(tempfile.mkdtemp()) / "c")}
    found: dict[str, list[dict[str, Any]]] = {name: [] for name in codes}
    for _ in range(args.runs):
        for name, code in codes.items():
            env = {**os.environ, "PYTHONPATH": str(code)}
            result = subprocess.run(
                [sys.executable, __file__, "--child", str(release), str(new_chunk)],
                env=env, capture_output=True, text=True, check=True, cwd=code,
            )  # fmt: skip
            found[name].append(json.loads(result.stdout.strip().splitlines()[-1]))
    digests = {r["digest"] for rows in found.values() for r in rows}
    assert len(digests) == 1, "the two codes give different changes"
    print(f"{args.entries} entries, library chunk {new_chunk.stat().st_size / 1e6:.0f} MB")
    median = {
        name: {k: statistics.median(r[k] for r in rows) for k in ("rise", "cpu")}
        for name, rows in found.items()
    }
    for name, m in median.items():
        print(f"  {name:10s} peak rise {m['rise']:7.1f} MiB   CPU {m['cpu']:6.2f} s")
    this, other = median["this"], median[args.against]
    print(f"  this / {args.against}: CPU {this['cpu'] / other['cpu']:.2f}x", end="")
    print(f", peak rise {this['rise']:.1f} against {other['rise']:.1f} MiB")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        child(Path(sys.argv[2]), Path(sys.argv[3]))
    else:
        main()
