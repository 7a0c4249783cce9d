#!/usr/bin/env python3
"""Enrichment (graph/enrich, issue 14): embedding, related entries, the one-entry relink and
the meaning search at 10k and 100k entries, and what the default build pays for it.

    .venv/bin/python bench/enrich.py [--sizes 10000 100000] [--sample 1000] [--searches 20]
                                     [--against REV] [--work DIR]
    .venv/bin/python bench/enrich.py --sizes 100000 --sample 0 --parts none   # the real 100k

With --against REV the same measures run twice, alternately: on a snapshot of REV (`git
archive`) and on this tree, on the same publications (--work keeps them between runs).

Needs the [enrich] extra. For each size: generate a listing (tests/fixtures/gen_listing.py N)
and build a publication without enrichment (the default build), then
  embed      `sample` of its texts embedded as the build does (model.py, one thread each, in
             WORKERS processes, their start included): texts per second, CPU seconds a
             text (the processes' user + system: the load hardly changes it), and the time
             for all N extrapolated from it; with --sample 0, all N texts, really;
  vectors    N vectors made from the sample's real ones (each a sample vector plus noise,
             normalised and quantised), so that neighbours have the sample's structure;
  link       neighbours() of all N (the full computation of a first build); past --whole
             entries, of one row in `step` against all N, the time multiplied by `step`
             (a full link of 100k rows takes most of an hour of this busy machine);
  relink     relink() after one entry's text changed (a one-entry rebuild), and, up to
             --whole entries, its check against the full computation;
  step       the whole enrichment step of a one-change rebuild (what `kgpub build --enrich`
             does in its phase "enrich" but assembling the texts, and the store's part):
             enrich_release (read the previous release's enrich.sqlite, make the model, embed
             the one changed text, relink, write the release's files), write_linkset
             (dumps/related.nt and its gzip): "files"; then the embedded store's add_links
             into a copy of the previous release's store (which holds its links only, and is
             compacted: the library's graph is copied and changed by a rebuild as without
             enrichment), and its flush: "store"; CPU, wall and MiB written (/proc/self/io)
             of each, from a previous release of the N vectors whose
             links are each entry's 5 nearest among the entries made from the same sample
             vector (a full link of 100k takes most of an hour: these are its structure, 5
             links an entry, not its exact lists); the changed text is embedded (the model
             made and run) but its vector is its previous one moved a little (_Moved; its
             real vector with --real-change);
  search     the meaning search (graph/enrich/meaning.py search: embedding the text, the
             product with N vectors, the word search and the page's hits) for `searches`
             texts on the release's index, with an enrich.sqlite of the N vectors, without
             a facet and within the largest category; then the word search (graph/index.py)
             of the same texts and facet, the baseline of the same run: p50, p90, and the
             CPU time of one (p50, the process's, its threads included);
  default    what the default build adds: the publisher candidates of N titles
             (graph/enrich/build.py publisher_candidates), beside the build's own time.
Load averages are printed beside the figures: the machine is shared.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# The tree whose graph/ is measured (--against sets it for the snapshot's runs; in the
# environment, so that the embedding's spawned processes import the same).
CODE = Path(os.environ.get("KGPUB_BENCH_CODE", ROOT))
sys.path.insert(0, str(CODE))
GEN = ROOT / "tests" / "fixtures" / "gen_listing.py"
SEARCHES = [
    "grooming of children on the internet",
    "county lines gangs recruiting young people",
    "domestic abuse and its effect on children",
    "mental health support in schools",
    "radicalisation and the prevent duty",
]


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def cpu() -> float:
    """CPU seconds of this process and of its children that ended (user + system)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def against(rev: str, argv: list[str], work: Path) -> None:
    """This script on a snapshot of rev, then on this tree, then both again: each figure
    with its baseline of the same run."""
    snapshot = work / f"code-{rev}"
    if not snapshot.is_dir():
        snapshot.mkdir(parents=True)
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", rev], check=True, capture_output=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(snapshot)], input=archive, check=True)
    for code in (snapshot, ROOT, snapshot, ROOT):
        print(f"### code {rev if code == snapshot else 'this tree'} ({code})", flush=True)
        subprocess.run(
            [sys.executable, __file__, *argv, "--work", str(work)],
            check=True,
            env={**os.environ, "KGPUB_BENCH_CODE": str(code)},
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument(
        "--sample", type=int, default=1000, help="texts embedded (0: all of them, not sampled)"
    )
    parser.add_argument("--searches", type=int, default=20)
    parser.add_argument(
        "--parts",
        default="link,relink",
        help="what to measure beside embed and search: link, relink, step (comma-separated)",
    )
    parser.add_argument(
        "--whole", type=int, default=20_000, help="largest size linked whole (larger: sampled)"
    )
    parser.add_argument(
        "--real-change",
        action="store_true",
        help="step: the changed text's real vector, not its previous one moved a little",
    )
    parser.add_argument("--against", help="a git revision to measure in the same run")
    parser.add_argument("--work", type=Path, help="keeps listings and publications")
    args = parser.parse_args()
    if args.against:
        argv = sys.argv[1:]
        at = argv.index("--against")
        del argv[at : at + 2]
        with tempfile.TemporaryDirectory(prefix="enrich-bench-") as tmp:
            against(args.against, argv, args.work or Path(tmp))
        return

    import numpy as np

    from graph.convert import convert, library_title
    from graph.enrich import meaning
    from graph.enrich.build import publisher_candidates
    from graph.enrich.model import Encoder
    from graph.enrich.read import Enrichment
    from graph.enrich.related import (
        FILE,
        WORKERS,
        Vectors,
        digest_of,
        embed,
        neighbours,
        quantise,
        text_of,
        write,
    )
    from graph.index import Index
    from graph.iris import Iris
    from graph.listing import read_listings
    from graph.publication import BuildOptions, build, current_release

    encoder = Encoder()
    with tempfile.TemporaryDirectory() as scratch:
        tmp = args.work or Path(scratch)
        for n in args.sizes:
            print(f"== {n:,} entries (load {load()})", flush=True)
            listing = Path(tmp) / f"listing-{n}.txt"
            if not listing.is_file():
                subprocess.run(
                    [sys.executable, str(GEN), str(n), "--out", str(listing)], check=True
                )
            out = Path(tmp) / f"pub-{n}"
            base = "http://bench.example.org/"
            start = time.perf_counter()
            if out.is_dir():
                built, entries_built = 0.0, n  # built by an earlier run: not measured again
            else:
                entries_built = build([listing], out, BuildOptions(base=base)).entries
                built = time.perf_counter() - start
            release = current_release(out)
            for stale in ("enrich.sqlite", "enrich-vectors.npy"):
                if (release / stale).exists():
                    (release / stale).unlink()
            shutil.rmtree(release / "enrich", ignore_errors=True)  # the months' parts
            _, entries, _ = read_listings([listing])
            iris = Iris.from_base(base)
            converted = convert(entries, iris, library_title([]))
            start = time.perf_counter()
            sentence = publisher_candidates(converted)
            candidates = time.perf_counter() - start
            print(
                f"default  build {built:.1f} s ({entries_built:,} entries); publisher "
                f"candidates {candidates * 1000:.0f} ms ({len(sentence)} characters of summary)"
            )

            texts = {iri: text_of(e.title, e.description) for iri, e in converted.entries.items()}
            order = sorted(texts)
            sample = {iri: texts[iri] for iri in order[: args.sample or n]}
            start, used = time.perf_counter(), cpu()
            real, _ = embed(sample, {}, lambda: encoder, workers=WORKERS)
            seconds, used = time.perf_counter() - start, cpu() - used
            rate = len(sample) / seconds
            tokens = statistics.mean(len(t) for t in encoder.tokens(list(sample.values())))
            if len(sample) == n:
                whole = f"all {n:,} embedded in {seconds / 60:.1f} min, {used / 60:.1f} min of CPU"
            else:
                whole = (
                    f"all {n:,}: {n / rate / 60:.1f} min extrapolated, "
                    f"{n * used / len(sample) / WORKERS / 60:.1f} min of CPU on {WORKERS} cores"
                )
            print(
                f"embed    {rate:.1f} texts/s, {used / len(sample) * 1000:.1f} ms CPU a text "
                f"({tokens:.0f} tokens a text on average); {whole} (load {load()})",
                flush=True,
            )

            rng = np.random.default_rng(14)
            base_vectors = real.matrix.astype(np.float32) / 127
            picks = rng.integers(0, len(base_vectors), n)
            mixed = base_vectors[picks] + rng.normal(0, 0.03, (n, base_vectors.shape[1]))
            mixed /= np.linalg.norm(mixed, axis=1, keepdims=True)
            matrix = quantise(mixed.astype(np.float32))
            vectors = Vectors(order, [digest_of(texts[i]) for i in order], matrix)
            parts = set(args.parts.split(","))
            start = time.perf_counter()
            if "link" not in parts and "relink" not in parts:
                links = {}
            elif n <= args.whole:
                links = neighbours(vectors)
                linked = time.perf_counter() - start
                how = f"{sum(map(len, links.values())):,} links"
            else:  # every `step`-th row, against all N; the time scales with the rows
                step = n // args.whole * 10
                neighbours(vectors, range(0, n, step))
                linked = (time.perf_counter() - start) * step
                how = f"1 row in {step} computed, the time multiplied by {step}"
            if links:
                print(f"link     {linked:.1f} s for all {n:,} ({how}; load {load()})", flush=True)
            if links and n > args.whole:
                # The relink needs the previous links: those of the rows it reads are enough
                # for the time, not for the check against a full link.
                links = neighbours(vectors, range(0, n, step))
                links = {iri: links.get(iri, []) for iri in vectors.iris}

            if "relink" in parts:
                relinked_in = _relink(vectors, links, n, args.whole)
                print(f"relink   {relinked_in}")
            if "step" in parts:
                titles = {iri: e.title for iri, e in converted.entries.items()}
                stepped = _step(vectors, picks, texts, titles, iris, Path(tmp), args.real_change)
                print(f"step     {stepped}", flush=True)
            _write(write, release / FILE, vectors, links, {}, iris)
            index = Index(release / "index.sqlite")
            enrichment = Enrichment(release / FILE)
            start = time.perf_counter()
            meaning.search(index, enrichment, SEARCHES[0], [], [], 1, 20)  # loads the vectors
            first = (time.perf_counter() - start) * 1000
            category = max(index.categories().values(), key=lambda c: c.entries)
            print(f"search   (load {load()}; facet: the largest category, {category.label})")
            for facet in ((), (category.iri,)):
                _search(index, enrichment, meaning, args.searches, facet, first)


def _search(index: Any, enrichment: Any, meaning: Any, n: int, facet: Any, first: float) -> None:
    """The meaning search, then the word search, for n texts, within the facet: p50 and p90
    of wall time, p50 of CPU (the process's: threads included)."""
    figures = {}
    for mode in ("meaning", "words"):
        times, cpus = [], []
        for i in range(n):
            text = SEARCHES[i % len(SEARCHES)]
            meaning._vector.cache_clear()  # each search embeds its text, as a new one does
            start, used = time.perf_counter(), time.process_time()
            if mode == "meaning":
                meaning.search(index, enrichment, text, facet, [], 1, 20)
            else:
                index.search(text, facet, (), "relevance", 1, 20)
            times.append((time.perf_counter() - start) * 1000)
            cpus.append((time.process_time() - used) * 1000)
        times.sort()
        figures[mode] = (statistics.median(times), times[int(len(times) * 0.9) - 1], cpus)
    (p50, p90, cpus), (w50, w90, wcpus) = figures["meaning"], figures["words"]
    print(
        f"  {'one category' if facet else 'no facet':12s} meaning p50 {p50:.0f} ms, p90 "
        f"{p90:.0f} ms, CPU p50 {statistics.median(cpus):.0f} ms; word search p50 {w50:.0f} "
        f"ms, p90 {w90:.0f} ms, CPU p50 {statistics.median(wcpus):.0f} ms; meaning / words "
        f"{p50 / w50:.2f}x over {n} searches" + ("" if facet else f", the first {first:.0f} ms"),
        flush=True,
    )


def written() -> float:
    """MiB this process has written to disk (/proc/self/io write_bytes, less those of files
    deleted before they were written back), as bench/incremental.py counts them."""
    io = dict(line.split(": ") for line in Path("/proc/self/io").read_text().splitlines())
    return (int(io["write_bytes"]) - int(io["cancelled_write_bytes"])) / 2**20


class _Moved:
    """The model, made and run on the changed text as a build does (its cost is measured),
    whose vector is then the entry's previous one moved a little (noise as every synthetic
    vector's): an edited description stays near its meaning, as in a library. The changed
    text's real vector (--real-change) is a clean vector among noisy copies, nearer to some
    1,100 entries of every month than their own neighbours: a hub that relinks them all."""

    def __init__(self, vector: Any) -> None:
        from graph.enrich.model import Encoder

        self.model = Encoder()
        self.vector = vector

    def encode(self, texts: list[str]) -> Any:
        import numpy as np

        self.model.encode(texts)
        return np.repeat(self.vector[None], len(texts), axis=0)


def _step(
    vectors: Any,
    picks: Any,
    texts: dict[str, str],
    titles: dict[str, str],
    iris: Any,
    tmp: Path,
    real_change: bool = False,
) -> str:
    """The whole enrichment step of a one-change rebuild (module docstring: step)."""
    import inspect

    import numpy as np
    import pyoxigraph

    from graph import parts
    from graph.enrich import linkset as linksets
    from graph.enrich.related import FILE, Vectors, enrich_release, neighbours, write
    from graph.store.oxigraph import OxigraphLoader

    write_linkset = linksets.write_linkset
    links: dict[str, list[tuple[str, int]]] = {}
    for group in np.split(
        np.argsort(picks, kind="stable"), np.flatnonzero(np.diff(np.sort(picks))) + 1
    ):
        rows = np.sort(group)
        part = Vectors(
            [vectors.iris[r] for r in rows],
            [vectors.digests[r] for r in rows],
            vectors.matrix[rows],
        )
        links.update(neighbours(part))
    previous, work = tmp / "step-previous", tmp / "step-work"
    for folder in (previous, work):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
    _write(write, previous / FILE, vectors, links, titles, iris)
    write_linkset(previous, iris, previous / FILE)
    # The previous release's store: its links (the library's graph aside, which a rebuild
    # copies and changes by its own chunks), loaded once per linkset and kept in tmp.
    data = parts.read_bytes(previous / "dumps" / "related.nt")
    store_of = tmp / f"step-store-{len(vectors.iris)}-{hashlib.sha256(data).hexdigest()[:16]}"
    if not (store_of / "loaded").is_file():
        shutil.rmtree(store_of, ignore_errors=True)
        store_of.mkdir(parents=True)
        made = pyoxigraph.Store(str(store_of / "store"))
        made.bulk_load(data, format=pyoxigraph.RdfFormat.N_TRIPLES)
        made.optimize()  # compacted: a copy opened later has no compaction of its own to do
        del made
        (store_of / "loaded").touch()
    del data
    row = len(vectors.iris) // 2
    one = vectors.iris[row]
    changed = {**texts, one: texts[one] + " Revised in 2026 with a section on online grooming."}
    moved = vectors.matrix[row].astype(np.float32) / 127
    moved += np.random.default_rng(26).normal(0, 0.03, moved.shape).astype(np.float32)
    moved /= np.linalg.norm(moved)
    model: dict[str, Any] = {} if real_change else {"encoder": lambda: _Moved(moved)}
    start, used, wrote = time.perf_counter(), cpu(), written()
    if "iris" in inspect.signature(enrich_release).parameters:  # the months' parts
        model["iris"] = iris
    done = enrich_release(work, changed, previous, titles=titles, **model)
    if len(inspect.signature(write_linkset).parameters) > 3:
        linkset = write_linkset(work, iris, work / FILE, previous, done.changed)
    else:  # before the linkset was spliced from the previous release's
        linkset = write_linkset(work, iris, work / FILE)
    wall, used, wrote = time.perf_counter() - start, cpu() - used, written() - wrote
    # The store: a copy of the previous release's (a checkpoint, as a rebuild's stage() makes)
    # that takes the linkset, then flushed (as finish() does), timed alone.
    pyoxigraph.Store.read_only(str(store_of / "store")).backup(str(work / "store"))
    loader = OxigraphLoader(work / "store", iris)
    loader._store = pyoxigraph.Store(str(work / "store"))  # staged as a copy, as stage() does
    loader._copied = True
    start_store, used_store, wrote_store = time.perf_counter(), cpu(), written()
    if hasattr(linksets, "store_links"):  # the linkset of parts by month
        loader.add_links(linksets.store_links(work, linkset, previous))
    else:  # the whole linkset against the previous one's
        loader.add_links(linkset.ntriples, linksets.previous_ntriples(previous))  # type: ignore[call-arg]
    loader.finish()
    store_wall = time.perf_counter() - start_store
    store_cpu, store_wrote = cpu() - used_store, written() - wrote_store
    size = sum(f.size for f in linkset.files) / 2**20
    return (
        f"files {wall:.2f} s wall, {used:.2f} s CPU, {wrote:.0f} MiB written; the store's "
        f"add_links {store_wall:.2f} s wall, {store_cpu:.2f} s CPU, {store_wrote:.0f} MiB "
        f"written; in all {wall + store_wall:.2f} s wall, {used + store_cpu:.2f} s CPU, "
        f"{wrote + store_wrote:.0f} MiB ({done.embedded} embedded, {done.links:,} links, "
        + (
            f"months' parts {done.months[0]} written, {done.months[1]} linked, "
            if hasattr(done, "months")
            else ""
        )
        + f"{len(done.changed) if done.changed is not None else 'all'} entries relinked, "
        f"linkset {size:.0f} MiB; load {load()})"
    )


def _write(write: Any, path: Path, vectors: Any, links: Any, titles: Any, iris: Any) -> None:
    """related.py write, with the IRIs (its months) when it takes them."""
    import inspect

    if "iris" in inspect.signature(write).parameters:
        write(path, vectors, links, titles, iris)
    else:  # one enrich.sqlite, before the months' parts
        write(path, vectors, links, titles)


def _relink(vectors: Any, links: Any, n: int, whole: int) -> str:
    """relink() after one entry's text changed, and (up to `whole` entries) its check."""
    from graph.enrich.related import Vectors, neighbours, relink

    old = dict(zip(vectors.iris, vectors.digests, strict=True))
    changed = Vectors(list(vectors.iris), list(vectors.digests), vectors.matrix.copy())
    row = n // 2
    changed.digests[row] = "changed"
    changed.matrix[row] = vectors.matrix[(row + 1) % n]
    start, used = time.perf_counter(), time.process_time()
    relinked = relink(changed, links, old)
    one, used = time.perf_counter() - start, time.process_time() - used
    same = relinked == neighbours(changed) if n <= whole else "not checked"
    return f"{one:.2f} s ({used:.2f} s CPU) after one changed entry; equal to a full link: {same}"


if __name__ == "__main__":
    main()
