#!/usr/bin/env python3
"""Memory of `kgpub serve --store` processes, stage by stage, over repeated cycles of load.

    .venv/bin/python bench/storemem.py --store URL PUB [PUB ...] [--cycles 4] [--walk 2000]
                                       [--query-runs 5] [--workers 2] [--json FILE]

Each PUB is a publication folder built with `kgpub build --store` into the SPARQL server whose
query endpoint is URL (a Virtuoso: `--store-timeout-param timeout` is passed, as README.md's
deployment section asks). For each, one `kgpub serve --store` (gunicorn, --workers) is
started, and its processes' RSS, PSS and RssAnon (/proc: figures the machine's load does not
change) are read per process:
  warm      after warm-up: the landing page, one entry (Turtle, HTML) and a list page, 10 times
  walk      after a walk of --walk pages (entries spread over the library in Turtle and HTML,
            every tenth a list page; 8 clients; each cycle starts further on in the library)
  queries   after the five queries of bench/sparql.py, --query-runs times each, two clients
            at once (two of them answer 3-4 MB at 100k entries)
  large     after LARGE, each --query-runs times from one client while a walk of a quarter of
            --walk pages goes on (pages made and cached meanwhile, as on a site): SELECTs over
            the whole library, whose answers grow with it up to kgpub's row cap
            (--query-max-results, 100,000: 35 MB of JSON) or past it (refused after reading
            the cap's rows), as the five queries above do at 1M entries
and the walk, the queries and the large ones are repeated --cycles times (does memory level
off?).
The report is a Markdown table per publication (MiB, master and each worker); --json saves
the figures.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import sys
import threading
import time
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from live import Server, free_port  # noqa: E402  (tests/live.py)

from graph.iris import Iris  # noqa: E402

PREFIXES = "PREFIX dcterms: <http://purl.org/dc/terms/>\n"
LARGE = (
    (
        "titles and dates",
        PREFIXES + "SELECT ?e ?t ?d WHERE { ?e dcterms:title ?t ; dcterms:created ?d }",
    ),
    ("every triple", "SELECT ?s ?p ?o WHERE { ?s ?p ?o }"),
)
FIELDS = ("VmRSS", "RssAnon")


def load_bench(name: str) -> ModuleType:
    """bench/<name>.py as a module (its walk, its queries, its clients: the same load)."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}", ROOT / "bench" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # (its dataclasses look their module up)
    spec.loader.exec_module(module)
    return module


def processes(master: int) -> dict[str, dict[str, float]]:
    """RSS, PSS and RssAnon (MiB) of the server's master and each of its workers."""
    out: dict[str, dict[str, float]] = {}
    pids = [master]
    children = Path(f"/proc/{master}/task/{master}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    for i, pid in enumerate(pids):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
            rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:
            continue  # gone meanwhile
        figures = {
            key: int(re.search(rf"^{key}:\s+(\d+)", status, re.M).group(1)) / 1024  # type: ignore[union-attr]
            for key in FIELDS
        }
        figures["Pss"] = int(re.search(r"^Pss:\s+(\d+)", rollup, re.M).group(1)) / 1024  # type: ignore[union-attr]
        out["master" if i == 0 else f"worker {i}"] = figures
    return out


def entry_paths(out: Path, base: str) -> list[str]:
    """The paths of the publication's entries, from its sitemaps."""
    found: list[str] = []
    for sitemap in sorted((out / "current" / "sitemap").glob("sitemap-*.xml")):
        for loc in re.findall(r"<loc>([^<]+)</loc>", sitemap.read_text()):
            if loc.startswith(base + "entry/"):
                found.append("/" + loc[len(base) :])
    return found


def ask_queries(sparql: ModuleType, port: int, queries: list[Any], runs: int) -> int:
    """Each query `runs` times from two clients at once; how many failed."""
    failed = [0, 0]

    def client(i: int) -> None:
        c = sparql.Client(port)
        for _ in range(runs):
            for query in queries if i == 0 else queries[::-1]:
                try:
                    c.ask(query)
                except RuntimeError:
                    failed[i] += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(failed)


def ask_large(sparql: ModuleType, port: int, runs: int) -> tuple[int, dict[str, int]]:
    """LARGE, each `runs` times from one client: how many failed (a refusal past the cap is
    an answer), and each one's size in bytes (or its status)."""
    client, failed, sizes = sparql.Client(port), 0, {}
    for name, text in LARGE:
        for _ in range(runs):
            try:
                sizes[name] = len(client.ask(sparql.Query(name, text)))
            except RuntimeError as exc:
                refused = "HTTP 400" in str(exc)
                sizes[name] = 400 if refused else 0
                failed += not refused
    return failed, sizes


def measure(out: Path, args: argparse.Namespace) -> dict[str, Any]:
    store_bench, sparql = load_bench("store"), load_bench("sparql")
    manifest = json.loads((out / "current" / "manifest.json").read_text())
    base = manifest["base"]
    entries = entry_paths(out, base)
    entry = "/" + manifest["example"][len(base) :]
    queries = sparql.queries(Iris.from_base(base), manifest["example"])
    figures: dict[str, Any] = {"entries": manifest["entries"], "stages": [], "failures": 0}
    settings = {"store": args.store, "store_timeout_param": "timeout"}
    with Server(out, free_port(), workers=args.workers, **settings) as server:
        assert server.proc is not None

        def note(stage: str, cycle: int) -> None:
            time.sleep(1)
            row = {"stage": stage, "cycle": cycle, "processes": processes(server.proc.pid)}
            figures["stages"].append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)

        for _ in range(10):
            connection = store_bench.Connection(server.port)
            for path in ("/", entry, "/library"):
                for _, accept in store_bench.REPRESENTATIONS:
                    connection.request("GET", path, {"Accept": accept})
        note("warm", 0)
        for cycle in range(1, args.cycles + 1):
            shift = (cycle - 1) * 7919 % len(entries)
            pages = store_bench.walk_paths(entries[shift:] + entries[:shift], args.walk)
            figures["failures"] += store_bench.walk(server.port, pages)["errors"]
            note("walk", cycle)
            figures["failures"] += ask_queries(sparql, server.port, queries, args.query_runs)
            note("queries", cycle)
            shift = (cycle * 7919 + len(entries) // 2) % len(entries)
            pages = store_bench.walk_paths(entries[shift:] + entries[:shift], args.walk // 4)
            walker = threading.Thread(target=store_bench.walk, args=(server.port, pages))
            walker.start()
            failed, figures["large"] = ask_large(sparql, server.port, args.query_runs)
            walker.join()
            figures["failures"] += failed
            note("large", cycle)
    return figures


def report(results: list[dict[str, Any]]) -> str:
    lines = [
        "| entries | stage | cycle | "
        + " | ".join(f"{p}: RSS / PSS / RssAnon" for p in results[0]["stages"][0]["processes"])
        + " |",
    ]
    lines.append("| ---: | --- | ---: |" + " ---: |" * len(results[0]["stages"][0]["processes"]))
    for result in results:
        for row in result["stages"]:
            cells = [
                f"{p['VmRSS']:.0f} / {p['Pss']:.0f} / {p['RssAnon']:.0f}"
                for p in row["processes"].values()
            ]
            lines.append(
                f"| {result['entries']:,} | {row['stage']} | {row['cycle']} | "
                + " | ".join(cells)
                + " |"
            )
        lines.append(
            f"\n{result['entries']:,}: {result['failures']} failed requests; large answers "
            f"(bytes, or 400 when refused past the cap): {result.get('large')}\n"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("publications", nargs="+", type=Path)
    parser.add_argument("--store", required=True, help="the SPARQL query endpoint")
    parser.add_argument("--cycles", type=int, default=4)
    parser.add_argument("--walk", type=int, default=2000)
    parser.add_argument("--query-runs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results = [measure(out, args) for out in args.publications]
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    print(report(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
