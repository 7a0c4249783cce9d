#!/usr/bin/env python3
"""Benchmark of `kgpub build`: time, CPU and peak memory per phase at 1k, 10k and 100k entries.

    .venv/bin/python bench/build.py [--sizes 1000,10000,100000] [--runs 5,3,1]
                                    [--against REV] [--parts] [--json FILE]

Each build runs in a child process of its own (a clean peak RSS: ru_maxrss of that process,
all threads included), on a listing from tests/fixtures/gen_listing.py; medians over --runs.
Baselines measured in the same run, on the same data:
  oxigraph   bare pyoxigraph bulk-loading the library's N-Triples into an in-memory store
  pyshacl    pyshacl alone on the 10k library (rdflib parse, then validate): the reference
Checks: the default engine's report (validation by parts) is identical to pyshacl's, result
by result and by isomorphism, on the 10k library and on a copy with broken entries.
--against REV   the same builds with the code of a git revision (before/after a change)
--parts         alternatives measured one by one at the largest size: validation engine and
                input, chunk size and threads; store loading; gzip level
The machine's load average is printed: on a shared machine, read ratios, not seconds.
"""

from __future__ import annotations

import argparse
import json
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
# The tree whose graph/ is measured: a child's is the folder it runs in (run_child's cwd: this
# checkout, or a snapshot of --against's revision), the parent's this checkout. The script's
# own folder would put this checkout's graph/ before any PYTHONPATH.
CODE = Path.cwd() if sys.argv[1:2] == ["--child"] else ROOT
sys.path.insert(0, str(CODE))

from graph.parts import read_bytes as whole_dump  # noqa: E402  (a dump is a list of parts)

GEN = ROOT / "tests" / "fixtures" / "gen_listing.py"


PHASES = ("parse", "convert", "history", "validate", "write")
ISOMORPHISM_LIMIT = 50_000  # report triples


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# Children: each prints one JSON object on its last line of stdout.


def child_build(listing: str, out: str) -> dict[str, Any]:
    from graph.publication import BuildOptions, build

    start, cpu = time.perf_counter(), time.process_time()
    outcome = build([Path(listing)], Path(out), BuildOptions(base="http://example.org/"))
    phases = {
        p.name: {
            "seconds": p.seconds,
            "cpu": getattr(p, "cpu_seconds", float("nan")),
            "peak_mib": p.peak_rss_mib,
        }
        for p in outcome.phases
    }
    # The build's own process and the dump writer's (graph/publication.py _Apart): CPU summed;
    # peak RSS of each (the writer's alone: the largest child's).
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "seconds": time.perf_counter() - start,
        "cpu": time.process_time() - cpu + children.ru_utime + children.ru_stime,
        "peak_mib": peak_mib(),
        "child_peak_mib": children.ru_maxrss / 1024,
        "triples": outcome.triples,
        "phases": phases,
    }


def child_oxigraph(nt: str) -> dict[str, Any]:
    import pyoxigraph

    base = peak_mib()
    start = time.perf_counter()
    store = pyoxigraph.Store()
    store.bulk_load(path=nt, format=pyoxigraph.RdfFormat.N_TRIPLES)
    seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "peak_mib": peak_mib(),
        "added_mib": peak_mib() - base,
        "triples": len(store),
    }


def child_pyshacl(nt: str) -> dict[str, Any]:
    import pyshacl
    import rdflib

    from graph import shacl

    shapes = shacl.load_shapes()
    start = time.perf_counter()
    graph = rdflib.Graph().parse(nt, format="nt")
    parsed = time.perf_counter()
    conforms, _, _ = pyshacl.validate(graph, shacl_graph=shapes)
    done = time.perf_counter()
    return {
        "parse": parsed - start,
        "validate": done - parsed,
        "seconds": done - start,
        "peak_mib": peak_mib(),
        "conforms": bool(conforms),
    }


def child_parity(listing: str) -> dict[str, Any]:
    from dataclasses import replace

    from rdflib.compare import to_isomorphic

    from graph import shacl
    from graph.convert import convert, library_title
    from graph.iris import Iris
    from graph.listing import read_listings

    pages, entries, _ = read_listings([Path(listing)])
    iris = Iris.from_base("http://example.org/")
    # Broken copy: every tenth entry has a blank title, every tenth (shifted) no category.
    broken = [
        replace(e, title="  ") if i % 10 == 0 else replace(e, categories=()) if i % 10 == 5 else e
        for i, e in enumerate(entries)
    ]
    shapes = shacl.load_shapes()
    out: dict[str, Any] = {}
    for name, items in (("valid", entries), ("broken", broken)):
        converted = convert(items, iris, library_title(pages))
        start = time.perf_counter()
        turbo = shacl.validate(shacl.Partition.of(converted), shapes=shapes)
        middle = time.perf_counter()
        reference = shacl.validate(converted.ntriples, shapes=shapes, engine="pyshacl")
        end = time.perf_counter()
        out[name] = {
            "results": len(shacl.result_keys(reference.graph)),
            "same_results": shacl.result_keys(turbo.graph) == shacl.result_keys(reference.graph),
            # rdflib's canonical form of a report with tens of thousands of results takes
            # longer than the validation: isomorphism is checked on smaller reports only.
            "isomorphic": to_isomorphic(turbo.graph) == to_isomorphic(reference.graph)
            if len(turbo.graph) <= ISOMORPHISM_LIMIT
            else None,
            "turbo_seconds": middle - start,
            "pyshacl_seconds": end - middle,
        }
    return out


def child_part(kind: str, listing: str, arg: str) -> dict[str, Any]:
    """One alternative, measured alone: see --parts."""
    import zlib as zlib_module

    import pyoxigraph
    from isal import isal_zlib

    from graph import shacl
    from graph.convert import convert, library_title
    from graph.iris import Iris
    from graph.listing import read_listings
    from graph.store.oxigraph import OxigraphLoader

    pages, entries, _ = read_listings([Path(listing)])
    converted = convert(entries, Iris.from_base("http://example.org/"), library_title(pages))
    del entries, pages
    base = peak_mib()
    start, cpu = time.perf_counter(), time.process_time()
    if kind == "validate-store":  # the first version: an in-memory store, dumped for the engine
        store = pyoxigraph.Store()
        store.bulk_load(converted.ntriples, format=pyoxigraph.RdfFormat.N_TRIPLES)
        quads = store.quads_for_pattern(None, None, None, pyoxigraph.DefaultGraph())
        triples = (pyoxigraph.Triple(q.subject, q.predicate, q.object) for q in quads)
        shacl.validate(pyoxigraph.serialize(triples, format=pyoxigraph.RdfFormat.N_TRIPLES) or b"")
    elif kind == "validate-text":  # the whole N-Triples text in one piece
        shacl.validate(converted.ntriples)
    elif kind == "validate-parts":  # chunk size, threads
        size, workers = (int(x) for x in arg.split("x"))
        shacl.WORKERS = workers
        shacl.validate(shacl.Partition.of(converted), chunk=size)
    elif kind == "store-whole":
        with tempfile.TemporaryDirectory() as folder:
            store = pyoxigraph.Store(folder)
            store.bulk_load(converted.ntriples, format=pyoxigraph.RdfFormat.N_TRIPLES)
            store.flush()
            del store
    elif kind == "store-slices":
        with tempfile.TemporaryDirectory() as folder:
            loader = OxigraphLoader(Path(folder) / "store", converted.iris)
            loader.stage(converted, None, [], {})
            loader.finish()
    elif kind == "gzip":  # deflate by chunks of 2 MB, each sync-flushed, as the dumps are
        library, level = arg.split(":")
        packer = zlib_module if library == "zlib" else isal_zlib
        text, size = converted.ntriples, 0
        start, cpu = time.perf_counter(), time.process_time()
        for at in range(0, len(text), 2 << 20):
            one = packer.compressobj(int(level), packer.DEFLATED, -15)
            size += len(one.compress(text[at : at + (2 << 20)]) + one.flush(packer.Z_SYNC_FLUSH))
        return {
            "seconds": time.perf_counter() - start,
            "cpu": time.process_time() - cpu,
            "added_mib": peak_mib() - base,
            "ratio": size / len(converted.ntriples),
        }
    return {
        "seconds": time.perf_counter() - start,
        "cpu": time.process_time() - cpu,
        "added_mib": peak_mib() - base,
    }


# The parent


def run_child(args: list[str], code: Path = ROOT) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KGPUB_")}
    env["PYTHONPATH"] = str(code)
    result = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--child", *args],
        cwd=code,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"child {args} failed:\n{result.stderr[-3000:]}")
    data: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    measured = Path(data.pop("graph"))
    if measured != code.resolve() / "graph":
        raise SystemExit(f"child {args} measured {measured}, not {code.resolve() / 'graph'}")
    return data


def generate(folder: Path, n: int) -> Path:
    path = folder / f"listing-{n}.txt"
    if not path.exists():
        subprocess.run([sys.executable, str(GEN), str(n), "--out", str(path)], check=True)
    return path


def median_build(builds: list[dict[str, Any]]) -> dict[str, Any]:
    def med(values: list[float]) -> float:
        return statistics.median(values)

    out: dict[str, Any] = {
        key: med([b[key] for b in builds]) for key in ("seconds", "cpu", "peak_mib")
    }
    out["triples"] = builds[0]["triples"]
    out["runs"] = len(builds)
    out["phases"] = {
        name: {
            k: med([b["phases"][name][k] for b in builds]) for k in ("seconds", "cpu", "peak_mib")
        }
        for name in builds[0]["phases"]
    }
    return out


def build_table(title: str, results: dict[int, dict[str, Any]]) -> str:
    names = [p for p in PHASES if any(p in r["phases"] for r in results.values())]
    rows = [
        f"### {title}",
        "",
        "| entries | triples | runs | "
        + " | ".join(f"{p} s (cpu) / peak MiB" for p in names)
        + " | total s (cpu) | peak RSS MiB |",
        "|" + "---|" * (len(names) + 5),
    ]
    for n, r in results.items():
        cells = []
        for p in names:
            ph = r["phases"].get(p)
            cells.append(
                "–"
                if ph is None
                else f"{ph['seconds']:.2f} ({ph['cpu']:.2f}) / {ph['peak_mib']:.0f}"
            )
        rows.append(
            f"| {n:,} | {r['triples']:,} | {r['runs']} | "
            + " | ".join(cells)
            + f" | {r['seconds']:.2f} ({r['cpu']:.2f}) | {r['peak_mib']:.0f} |"
        )
    return "\n".join(rows)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000,10000,100000")
    ap.add_argument("--runs", default="5,3,1", help="runs per size (medians)")
    ap.add_argument("--pyshacl-size", type=int, default=10000, help="size for pyshacl and parity")
    ap.add_argument("--against", help="also build with the code of this git revision")
    ap.add_argument("--parts", action="store_true", help="measure alternatives one by one")
    ap.add_argument("--json", help="write every figure to this file")
    ap.add_argument("--keep", help="folder for listings and outputs (kept)")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    runs = [int(r) for r in args.runs.split(",")]
    runs += [runs[-1]] * (len(sizes) - len(runs))
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="kgpub-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"load_before": os.getloadavg(), "cpus": os.cpu_count()}
    codes = {"now": ROOT}
    if args.against:
        old = work / f"code-{args.against}"
        if not old.exists():
            old.mkdir()
            archive = subprocess.run(
                ["git", "archive", args.against], cwd=ROOT, capture_output=True, check=True
            ).stdout
            subprocess.run(["tar", "-x", "-C", str(old)], input=archive, check=True)
        codes[args.against] = old
    listings = {n: generate(work, n) for n in sizes}
    builds: dict[str, dict[int, dict[str, Any]]] = {name: {} for name in codes}
    baselines: dict[int, dict[str, Any]] = {}
    for n, count in zip(sizes, runs, strict=True):
        done: dict[str, list[dict[str, Any]]] = {name: [] for name in codes}
        for i in range(count):
            for name, code in codes.items():  # interleaved: a change of load hits both alike
                out = work / f"out-{name}-{n}"
                shutil.rmtree(out, ignore_errors=True)
                done[name].append(run_child(["build", str(listings[n]), str(out)], code))
                print(
                    f"{name} {n:,} run {i + 1}: {done[name][-1]['seconds']:.2f} s, "
                    f"{done[name][-1]['peak_mib']:.0f} MiB",
                    file=sys.stderr,
                )
        for name in codes:
            builds[name][n] = median_build(done[name])
        nt = work / f"library-{n}.nt"  # a whole file, for Oxigraph's and pyshacl's loads
        nt.write_bytes(whole_dump(work / f"out-now-{n}" / "current" / "dumps" / "library.nt"))
        ox = [run_child(["oxigraph", str(nt)]) for _ in range(count)]
        baselines[n] = {
            "oxigraph_seconds": statistics.median(o["seconds"] for o in ox),
            "oxigraph_peak_mib": statistics.median(o["peak_mib"] for o in ox),
        }
        if n == args.pyshacl_size:
            baselines[n]["pyshacl"] = run_child(["pyshacl", str(nt)])
            baselines[n]["parity"] = run_child(["parity", str(listings[n])])
    report["builds"], report["baselines"] = builds, baselines

    print(
        f"\nMachine: {os.cpu_count()} CPUs, load average before "
        f"{', '.join(f'{x:.2f}' for x in report['load_before'])}, after "
        f"{', '.join(f'{x:.2f}' for x in os.getloadavg())}\n"
    )
    for name in codes:
        print(build_table(f"kgpub build ({name})", builds[name]) + "\n")
    print("### Baselines (same run, same data)\n")
    print(
        "| entries | build s | oxigraph bulk load s | build / oxigraph | build peak MiB "
        "| oxigraph peak MiB |\n|---|---|---|---|---|---|"
    )
    for n in sizes:
        b, o = builds["now"][n], baselines[n]
        print(
            f"| {n:,} | {b['seconds']:.2f} | {o['oxigraph_seconds']:.2f} | "
            f"{b['seconds'] / o['oxigraph_seconds']:.1f}x | {b['peak_mib']:.0f} | "
            f"{o['oxigraph_peak_mib']:.0f} |"
        )
    for n in sizes:
        if "pyshacl" in baselines[n]:
            p, b = baselines[n]["pyshacl"], builds["now"][n]
            validate = b["phases"]["validate"]["seconds"]
            print(
                f"\npyshacl alone at {n:,} entries: parse {p['parse']:.2f} s + validate "
                f"{p['validate']:.2f} s, peak {p['peak_mib']:.0f} MiB; kgpub's validate phase "
                f"{validate:.2f} s ({p['validate'] / validate:.1f}x faster); pyshacl alone takes "
                f"{p['seconds'] / b['seconds']:.1f}x kgpub's whole build ({b['seconds']:.2f} s)."
            )
            for kind, r in baselines[n]["parity"].items():
                print(
                    f"Report parity at {n:,} ({kind}, {r['results']} results): same results "
                    f"{r['same_results']}, isomorphic {r['isomorphic']} (turbo by parts "
                    f"{r['turbo_seconds']:.2f} s, pyshacl {r['pyshacl_seconds']:.2f} s)"
                )
    for name in codes:
        if name != "now":
            for n in sizes:
                a, b = builds[name][n], builds["now"][n]
                print(
                    f"\n{n:,} entries: {name} {a['seconds']:.2f} s / {a['peak_mib']:.0f} MiB "
                    f"-> now {b['seconds']:.2f} s / {b['peak_mib']:.0f} MiB "
                    f"({a['seconds'] / b['seconds']:.1f}x faster, "
                    f"{a['peak_mib'] / b['peak_mib']:.1f}x less memory)"
                )

    if args.parts:
        n = max(sizes)
        parts: dict[str, Any] = {}
        trials = [("validate-store", ""), ("validate-text", "")]
        trials += [
            ("validate-parts", f"{size}x{w}") for size in (2000, 5000, 10000, 25000) for w in (1, 2)
        ]
        trials += [("store-whole", ""), ("store-slices", "")]
        trials += [("gzip", f"zlib:{level}") for level in (1, 4, 6)]
        trials += [("gzip", f"isal:{level}") for level in (1, 2, 3)]
        print(f"\n### Alternatives at {n:,} entries (each alone, in its own process)\n")
        print("| what | seconds | CPU s | memory added MiB | |\n|---|---|---|---|---|")
        for kind, arg in trials:
            r = run_child(["part", kind, str(listings[n]), arg or "-"])
            parts[f"{kind} {arg}".strip()] = r
            extra = f"size {r['ratio']:.3f} of the input" if "ratio" in r else ""
            print(
                f"| {kind} {arg} | {r['seconds']:.2f} | {r['cpu']:.2f} | "
                f"{r['added_mib']:.0f} | {extra} |",
                flush=True,
            )
        report["parts"] = parts
    report["load_after"] = os.getloadavg()
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2, default=str))
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def child_main(argv: list[str]) -> int:
    kind, *rest = argv
    if kind == "build":
        result = child_build(*rest)
    elif kind == "oxigraph":
        result = child_oxigraph(*rest)
    elif kind == "pyshacl":
        result = child_pyshacl(*rest)
    elif kind == "parity":
        result = child_parity(*rest)
    else:
        result = child_part(rest[0], rest[1], rest[2])
    import graph

    result["graph"] = str(Path(graph.__file__).resolve().parent)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        sys.exit(child_main(sys.argv[2:]))
    sys.exit(main())
