#!/usr/bin/env python3
"""Parsing listing pages: the reference line walk against parse_listing, in the same run.

    bench/parse.py [--entries N] [--pages K] [--runs R] [--generator PATH]
    bench/parse.py --against REV [--entries N] [--runs R] [--listing FILE] [--rebuild]

Generates N entries with tests/fixtures/gen_listing.py (on K category pages if K > 1) into a
temporary folder, then times in this one process, after a warm-up, alternately:

- reference: graph.listing._parse_lines on each page, then graph.listing._merge_loop (the
  parser and merge as they were before their fast paths, kept as the fallback);
- parse_listing cold: parse_listing then merge_pages, with the memos of dates, times and
  category lists emptied before each page (the first pages a process reads);
- parse_listing warm: the same with the memos kept from the runs before.

Each timing repeats the parse and merge enough times to last (20,000 entries' worth) and
reports the time of one, with the cyclic GC on as usual and a gc.collect() before each run.
Prints the medians of R runs and their ratio to the reference; the warm-up checks that all
give equal pages and entries (places, offsets and warnings included), or the bench stops.

--against REV: what a build does before it renders, with this tree's code and a git
revision's (git archive), alternately, each in a child process of its own (so its peak RSS
is its own): read_listings of one page (the slabs of a long one; this code keeps no
descriptions), then the months' digests convert compares with the current release's
(graph/convert.py: of the blocks of source text when the page gives them, else of every
record). Prints medians of R runs: CPU seconds (user + sys) of each step, peak RSS, and the
ratios this / REV. --listing FILE reads that file instead of generating N entries.
--rebuild: the read of a one-change rebuild (one description edited; this tree's cache of
the segments' readings, graph/listing.py ParseCache, made from the listing before it).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from graph import listing  # noqa: E402 (the checkout's package, whatever the cwd)
from graph.listing import Entry, Page  # noqa: E402

Parse = Callable[[str, str], Page]
Merge = Callable[[list[Page]], tuple[list[Entry], list[str]]]


def cold_parse(text: str, file: str) -> Page:
    """parse_listing as the first page a process reads: nothing remembered."""
    listing._DAYS.clear()
    listing._CLOCKS.clear()
    listing._CATEGORY_LISTS.clear()
    return listing.parse_listing(text, file)


CONTENDERS: dict[str, tuple[Parse, Merge]] = {
    "reference": (listing._parse_lines, listing._merge_loop),
    "parse_listing cold": (cold_parse, listing.merge_pages),
    "parse_listing warm": (listing.parse_listing, listing.merge_pages),
}


def run(
    texts: list[tuple[str, str]], parse: Parse, merge: Merge, repeat: int
) -> tuple[float, float, list[Page], list[Entry]]:
    """Seconds to parse every page and to merge them (one of repeat), and what they gave."""
    gc.collect()  # every run starts from the same heap
    parse_s = merge_s = 0.0
    pages: list[Page] = []
    entries: list[Entry] = []
    for _ in range(repeat):
        del pages, entries  # not kept while the next one is made
        start = time.perf_counter()
        pages = [parse(text, name) for name, text in texts]
        parsed = time.perf_counter()
        entries, _ = merge(pages)
        parse_s += parsed - start
        merge_s += time.perf_counter() - parsed
    return parse_s / repeat, merge_s / repeat, pages, entries


def generate(generator: Path, entries: int, pages: int, folder: Path) -> list[tuple[str, str]]:
    out = folder / ("pages" if pages > 1 else "library.txt")
    command = [sys.executable, str(generator), str(entries), "--out", str(out)]
    subprocess.run([*command, "--pages", str(pages)], check=True)
    files = sorted(out.glob("*.txt")) if pages > 1 else [out]
    return [(f.name, f.read_text(encoding="utf-8")) for f in files]


# What a build does before it renders, in a child: read_listings, then the months' digests.
CHILD = """
import gc, json, resource, sys
from pathlib import Path
from graph import convert, listing
gc.disable()  # as a build does (graph/publication.py _no_gc)
def cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
start = cpu()
import inspect
lazy = {"lazy": True} if "lazy" in inspect.signature(listing.read_listings).parameters else {}
if len(sys.argv) > 2 and hasattr(listing, "ParseCache"):  # a build's cache of segments
    lazy["cache"] = listing.ParseCache(Path(sys.argv[2]))
pages, entries, warnings = listing.read_listings([Path(sys.argv[1])], **lazy)
parsed = cpu()
groups = convert.group_months(entries)
months = getattr(listing, "month_digests", lambda pages: None)(pages)
if months is not None:
    digests = {name: convert.source_digest(months[name]) for name in groups}
else:
    digests = {name: convert.records_digest(group) for name, group in groups.items()}
done = cpu()
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"parse": parsed - start, "digests": done - parsed, "peak": peak,
                  "entries": len(entries), "months": len(digests)}))
"""


def run_child(code: Path, listing_file: Path, cache: Path | None = None) -> dict[str, float]:
    """One read of the listing in a child process with the code in the folder code (and the
    cache folder of its segments' readings, for code that keeps one)."""
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(listing_file), *([str(cache)] if cache else [])],
        cwd=code,
        env={**os.environ, "PYTHONPATH": str(code)},
        check=True,
        capture_output=True,
        text=True,
    )
    figures: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def write_edited(source: Path, out: Path, run: int, runs: int) -> None:
    """out: the listing with one description edited, at a place that differs from run to
    run; streamed, so that this process's peak RSS (which its children start from: Linux
    keeps ru_maxrss across exec) stays small."""
    with source.open("rb") as src:
        src.seek(source.stat().st_size * (run + 1) // (runs + 1))
        near = src.read(1 << 20)
        base = src.tell() - len(near)
        added = -1
        while True:  # an 'Added:' line, then its line's end, the blank line, the text
            added = near.index(b"\nAdded:", added + 1)
            text = near.index(b"\n", added + 1) + 2
            end = near.index(b"\n", text)  # the end of the description's first line
            if end > text and near[end + 1 : end + 8] != b"\nAdded:":
                break  # a description, not the next entry's title
        at = base + end
        src.seek(0)
        with out.open("wb") as dst:
            shutil.copyfileobj(_Limited(src, at), dst)
            dst.write(b" Edited once.")
            shutil.copyfileobj(src, dst)


class _Limited:
    """The first n bytes of a binary file, read in pieces."""

    def __init__(self, file: BinaryIO, n: int) -> None:
        self.file, self.left = file, n

    def read(self, size: int = -1) -> bytes:
        size = self.left if size < 0 else min(size, self.left)
        data = self.file.read(size)
        self.left -= len(data)
        return data


def against(
    rev: str, entries: int, runs: int, generator: Path, given: Path | None, rebuild: bool
) -> None:
    """This tree's read and digests against REV's, alternately, in child processes; rebuild:
    of the listing with one description edited, this tree's cache of segments made from the
    listing before (not measured)."""
    with tempfile.TemporaryDirectory(prefix="kgpub-parse-") as tmp:
        folder = Path(tmp)
        old = folder / "code-against"
        old.mkdir()
        archive = subprocess.run(["git", "archive", rev], cwd=ROOT, capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", str(old)], input=archive.stdout, check=True)
        source = given
        if source is None:
            source = folder / "library.txt"
            command = [sys.executable, str(generator), str(entries), "--out", str(source)]
            subprocess.run(command, check=True)
        codes = {"this": ROOT, rev: old}
        results: dict[str, list[dict[str, float]]] = {name: [] for name in codes}
        size = source.stat().st_size
        work, cache = folder / "edited.txt", folder / "parsed"
        for run in range(runs):
            if rebuild:
                shutil.rmtree(cache, ignore_errors=True)
                shutil.copyfile(source, work)
                run_child(ROOT, work, cache)
                write_edited(source, work, run, runs)
            for name, code in codes.items():
                read = work if rebuild else source
                results[name].append(run_child(code, read, cache if rebuild else None))
    if rebuild:
        print("one-change rebuild: one description edited, this tree's cache made before")
    count = int(results["this"][0]["entries"])
    print(f"{source.name}: {count} entries, {size / 1e6:.0f} MB")
    load = os.getloadavg()[0]
    print(f"medians of {runs} runs: CPU s (user + sys), peak RSS MiB; load after {load:.1f}")
    print(f"{'code':<12}{'parse':>10}{'digests':>10}{'total':>10}{'peak':>10}")
    medians: dict[str, dict[str, float]] = {}
    for name, rows in results.items():
        row = {k: statistics.median(r[k] for r in rows) for k in ("parse", "digests", "peak")}
        row["total"] = statistics.median(r["parse"] + r["digests"] for r in rows)
        medians[name] = row
        print(
            f"{name:<12}{row['parse']:>10.2f}{row['digests']:>10.2f}{row['total']:>10.2f}"
            f"{row['peak']:>10.0f}"
        )
    a, b = medians["this"], medians[rev]
    print(
        f"this / {rev}: parse {a['parse'] / b['parse']:.2f}x, parse + digests "
        f"{a['total'] / b['total']:.2f}x CPU, peak {a['peak'] / b['peak']:.2f}x"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--entries", type=int, default=100_000)
    ap.add_argument("--pages", type=int, default=1)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument(
        "--generator", type=Path, default=ROOT / "tests" / "fixtures" / "gen_listing.py"
    )
    ap.add_argument("--against", help="read and digest with this tree and a git revision")
    ap.add_argument("--listing", type=Path, help="with --against: this listing, not generated")
    ap.add_argument(
        "--rebuild",
        action="store_true",
        help="with --against: a one-change rebuild's read (this tree with its cache)",
    )
    args = ap.parse_args()
    if args.against:
        against(args.against, args.entries, args.runs, args.generator, args.listing, args.rebuild)
        return
    with tempfile.TemporaryDirectory(prefix="kgpub-parse-") as tmp:
        texts = generate(args.generator, args.entries, args.pages, Path(tmp))
    repeat = max(1, 20_000 // args.entries)
    lines = sum(len(text.splitlines()) for _, text in texts)
    print(
        f"{args.entries} entries on {len(texts)} page(s), {lines} lines "
        f"({sum(len(t) for _, t in texts) / 1e6:.1f} M characters); "
        f"parse_listing reads pages of {listing.COLUMNS_FROM_LINES} lines or more by columns"
    )
    outputs = []
    for parse, merge in CONTENDERS.values():  # the warm-up: do they agree?
        _, _, pages, entries = run(texts, parse, merge, 1)
        outputs.append(([repr(p) for p in pages], [repr(e) for e in entries]))
        del pages, entries
    if any(output != outputs[0] for output in outputs):
        sys.exit("parse_listing and merge_pages differ from the reference")
    del outputs
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in CONTENDERS}
    for _ in range(args.runs):
        for name, (parse, merge) in CONTENDERS.items():
            parse_s, merge_s, pages, entries = run(texts, parse, merge, repeat)
            results[name].append((parse_s, merge_s))
            del pages, entries
    unit = "ms" if repeat == 1 else f"ms, one of {repeat}"
    print(f"medians of {args.runs} runs ({unit})")
    print(f"{'':<20}{'parse':>10}{'merge':>10}{'total':>10}{'ratio':>8}")
    reference = statistics.median(p + m for p, m in results["reference"])
    for name, runs in results.items():
        parse_m = statistics.median(p for p, _ in runs)
        merge_m = statistics.median(m for _, m in runs)
        total = statistics.median(p + m for p, m in runs)
        print(
            f"{name:<20}{parse_m * 1e3:>10.2f}{merge_m * 1e3:>10.2f}{total * 1e3:>10.2f}"
            f"{total / reference:>8.2f}"
        )


if __name__ == "__main__":
    main()
