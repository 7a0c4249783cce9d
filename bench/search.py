#!/usr/bin/env python3
"""The search index against the same search as SPARQL on the store, and its write times, in
the same run.

    .venv/bin/python bench/search.py [--sizes 10000 100000] [--runs R] [--writes W]
                                     [--gen tests/fixtures/gen_listing.py]

For each size: generate a listing (tests/fixtures/gen_listing.py N), build a publication
(graph.publication.build), then
  search   two words and one category, five such searches in turn, R runs each, in-process:
           Index.search (graph/index.py: the page of 20 by relevance with its snippets, the
           total and the facets) against one SPARQL query for the same words and category on
           the release's embedded store (pyoxigraph, read-only): CONTAINS on the lower-cased
           title and description, the 20 newest; it counts nothing and ranks nothing, so it
           does less than the index does. p50 and p90 of each; the target is an index p50
           under 50 ms at 100k entries;
  write    the index written in full (no previous release), and from the previous release's
           index after one changed description (a copy and one month written again), and
           with nothing changed (a hard link): medians of W;
  rebuild  the whole incremental build (graph.publication.build, reusing the current
           release) after one changed description: the target is under 5 s at 100k.
The synthetic listing draws its words from a vocabulary of about a hundred, so each word is in
about half the entries: a two-word search with a category still selects about a tenth of them.
A JSON copy of the figures goes to bench/results/ (git-ignored).
"""

from __future__ import annotations

import argparse
import dataclasses
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
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pyoxigraph  # noqa: E402

from graph.convert import convert, library_title  # noqa: E402
from graph.index import FILE, Index, write_release_index  # noqa: E402
from graph.iris import Iris  # noqa: E402
from graph.listing import read_listings  # noqa: E402
from graph.publication import BuildOptions, build, current_release  # noqa: E402

BASE = "https://example.org/kg/"
# Two words and a category each, from the generator's vocabulary and categories.
SEARCHES = [
    ("county lines", "Safeguarding"),
    ("domestic violence", "Domestic Abuse"),
    ("online harm", "Online Safety"),
    ("trauma informed", "Mental Health"),
    ("youth justice", "Youth Justice"),
]
SPARQL = """PREFIX dcterms: <http://purl.org/dc/terms/>
SELECT ?e ?t ?c WHERE {{
  ?e dcterms:subject <{concept}> ; dcterms:title ?t ; dcterms:created ?c .
  OPTIONAL {{ ?e dcterms:description ?d }}
  BIND(LCASE(CONCAT(?t, " ", COALESCE(?d, ""))) AS ?text)
  FILTER({filters})
}} ORDER BY DESC(?c) LIMIT 20"""


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def sparql_text(words: str, concept: str) -> str:
    filters = " && ".join(f'CONTAINS(?text, "{w.lower()}")' for w in words.split())
    return SPARQL.format(concept=concept, filters=filters)


def edit_one_description(listing: Path, mark: str) -> None:
    """Append a word to the first entry's description (the line two below its Added line)."""
    lines = listing.read_text(encoding="utf-8").split("\n")
    at = next(i for i, line in enumerate(lines) if line.startswith("Added: ")) + 2
    lines[at] = lines[at] + " " + mark
    listing.write_text("\n".join(lines), encoding="utf-8")


def bench_search(index: Index, store: pyoxigraph.Store, runs: int) -> dict[str, Any]:
    concepts = {c.label: c.iri for c in index.categories().values()}
    per: list[dict[str, Any]] = []
    index_times: list[float] = []
    sparql_times: list[float] = []
    for words, label in SEARCHES:
        concept = concepts[label]
        text = sparql_text(words, concept)
        results = index.search(words, [concept])
        rows = list(store.query(text))
        mine, theirs = [], []
        for _ in range(runs):  # alternate, so both see the same load
            mine.append(timed(lambda w=words, c=concept: index.search(w, [c])))
            theirs.append(timed(lambda t=text: list(store.query(t))))
        index_times += mine
        sparql_times += theirs
        per.append(
            {
                "words": words,
                "category": label,
                "total": results.total,
                "sparql_rows": len(rows),
                "index_p50_ms": statistics.median(mine) * 1000,
                "sparql_p50_ms": statistics.median(theirs) * 1000,
            }
        )
        print(
            f"    {words!r:22} + {label:15} {results.total:7,} hits   "
            f"index p50 {statistics.median(mine) * 1000:7.1f} ms   "
            f"SPARQL p50 {statistics.median(theirs) * 1000:8.1f} ms",
            flush=True,
        )
    return {
        "searches": per,
        "index_p50_ms": statistics.median(index_times) * 1000,
        "index_p90_ms": percentile(index_times, 0.9) * 1000,
        "sparql_p50_ms": statistics.median(sparql_times) * 1000,
        "sparql_p90_ms": percentile(sparql_times, 0.9) * 1000,
    }


def bench_writes(listing: Path, work: Path, writes: int) -> dict[str, float]:
    """Full, incremental (one changed description) and unchanged writes of the index alone."""
    pages, entries, _ = read_listings([listing])
    iris = Iris.from_base(BASE)
    converted = convert(entries, iris, library_title(pages))
    first = entries[0]
    edited = [dataclasses.replace(first, description=first.description + " Edited."), *entries[1:]]
    changed = convert(edited, iris, library_title(pages))
    previous = work / "index-previous"
    full, incremental, unchanged = [], [], []
    for n in range(writes):
        shutil.rmtree(previous, ignore_errors=True)
        previous.mkdir()
        full.append(timed(lambda: write_release_index(previous, converted)))
        for kind, data, times in (
            ("changed", changed, incremental),
            ("same", converted, unchanged),
        ):
            folder = work / f"index-{kind}-{n}"
            folder.mkdir()
            times.append(timed(lambda f=folder, d=data: write_release_index(f, d, previous)))
            shutil.rmtree(folder)
    size = (previous / FILE).stat().st_size
    return {
        "full_s": statistics.median(full),
        "one_changed_s": statistics.median(incremental),
        "unchanged_s": statistics.median(unchanged),
        "size_mib": size / 2**20,
    }


def bench_size(n: int, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    print(f"\n{n:,} entries", flush=True)
    listing = work / f"library-{n}.txt"
    subprocess.run([sys.executable, args.gen, str(n), "--out", str(listing)], check=True)
    out = work / f"publication-{n}"
    full_build = timed(lambda: build([listing], out, BuildOptions(base=BASE)))
    release = current_release(out)
    index = Index(release / FILE)
    store = pyoxigraph.Store.read_only(str(release / "store"))
    load = os.getloadavg()[0]
    print(
        f"  full build {full_build:.1f} s; searches ({args.runs} runs each, load average"
        f" {load:.1f} on {os.cpu_count()} cores):",
        flush=True,
    )
    searching = bench_search(index, store, args.runs)
    del store
    edit_one_description(listing, "Rebuilt.")
    started = time.perf_counter()
    outcome = build([listing], out, BuildOptions(base=BASE))
    rebuild = time.perf_counter() - started
    phases = {p.name: round(p.seconds, 3) for p in outcome.phases}
    print(f"  incremental build after one changed description: {rebuild:.2f} s {phases}")
    writes = bench_writes(listing, work, args.writes)
    print(
        f"  index write: full {writes['full_s']:.2f} s,"
        f" one changed {writes['one_changed_s']:.3f} s,"
        f" unchanged {writes['unchanged_s']:.3f} s ({writes['size_mib']:.0f} MiB)"
    )
    print(
        f"  search p50 {searching['index_p50_ms']:.1f} ms (p90 {searching['index_p90_ms']:.1f})"
        f" against SPARQL p50 {searching['sparql_p50_ms']:.1f} ms"
        f" (p90 {searching['sparql_p90_ms']:.1f}): "
        f"{searching['sparql_p50_ms'] / searching['index_p50_ms']:.0f}x",
        flush=True,
    )
    return {
        "entries": n,
        "load_average": load,
        "full_build_s": full_build,
        "incremental_build_s": rebuild,
        "incremental_phases": phases,
        "search": searching,
        "write": writes,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--writes", type=int, default=3)
    parser.add_argument("--gen", default=str(ROOT / "tests" / "fixtures" / "gen_listing.py"))
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            results.append(bench_size(n, args, Path(tmp)))
    folder = ROOT / "bench" / "results"
    folder.mkdir(exist_ok=True)
    target = folder / f"search-{time.strftime('%Y%m%dT%H%M%S')}.json"
    target.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nfigures: {target.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
