"""SPARQL over HTTP against bare pyoxigraph in-process on the same store, in the same run.

    .venv/bin/python bench/sparql.py [--sizes 10000 100000] [--runs R] [--seconds S]
                                     [--rdflib-sizes 10000] [--gen tests/fixtures/gen_listing.py]

For each size: generate a listing, build a publication, start `kgpub serve` (gunicorn, the
default settings: 2 workers, 4 query children each) on a loopback port, then for five typical
queries:
  latency     R runs each, alternating one HTTP request (keep-alive connection, the default
              result format) with one in-process evaluation (Store.query + the same
              serializer and format), median and 99th percentile of each; the overhead is
              p50(HTTP) - p50(in-process), checked against 2 ms + 20% of p50(in-process);
  throughput  requests/s with 8 concurrent keep-alive clients for S seconds (wrk when it is
              installed, else Python threads), for the cheap queries (under 50 ms
              in-process), against 8 threads sharing the store in-process;
  rdflib      the same queries on rdflib's own engine (Graph loaded from the N-Triples dump),
              median of 3, for the sizes in --rdflib-sizes only (at 100k entries each query
              takes seconds to minutes: FINDINGS.md), as a factor over in-process Oxigraph.
A JSON copy of the figures goes to bench/results/ (git-ignored).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pyoxigraph  # noqa: E402

from graph import parts  # noqa: E402
from graph.dumps import dump_prefixes  # noqa: E402
from graph.formats import SPARQL_RESULTS_JSON, TURTLE  # noqa: E402
from graph.iris import Iris  # noqa: E402
from graph.publication import BuildOptions, build  # noqa: E402

CHEAP = 0.05  # seconds in-process: the queries whose throughput is measured
PREFIXES = (
    "PREFIX dcterms: <http://purl.org/dc/terms/>\n"
    "PREFIX skos: <http://www.w3.org/2004/02/skos/core#>\n"
)


@dataclass(frozen=True)
class Query:
    """One benchmark query: a name, its text, and whether it answers a graph."""

    name: str
    text: str
    graph: bool = False


def queries(iris: Iris, entry: str) -> list[Query]:
    category = iris.concept("Safeguarding")
    return [
        Query(
            "count per category",
            PREFIXES + "SELECT ?c (COUNT(?e) AS ?n) WHERE { ?e dcterms:subject ?c } GROUP BY ?c",
        ),
        Query(
            "20 latest in a category",
            PREFIXES + f"SELECT ?e ?t ?d WHERE {{ ?e dcterms:subject <{category}> ;"
            " dcterms:title ?t ; dcterms:created ?d } ORDER BY DESC(?d) LIMIT 20",
        ),
        Query(
            "a word in titles",
            PREFIXES + "SELECT ?e ?t WHERE { ?e dcterms:title ?t"
            ' FILTER(CONTAINS(LCASE(STR(?t)), "trauma")) }',
        ),
        Query("DESCRIBE one entry", f"DESCRIBE <{entry}>", graph=True),
        Query(
            "entries of one year",
            PREFIXES + "SELECT ?e ?t ?d WHERE { ?e dcterms:created ?d ; dcterms:title ?t"
            " FILTER(YEAR(?d) = 2020) }",
        ),
    ]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Served:
    """`kgpub serve` with default settings in a child process group."""

    def __init__(self, out: Path, port: int) -> None:
        self.port = port
        env = {k: v for k, v in os.environ.items() if not k.startswith("KGPUB_")}
        self.log = (out.parent / "server.log").open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "server.cli", "serve", "--out", str(out), "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=self.log,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError("the server did not start")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=30)
        self.log.close()


class Client:
    """One keep-alive HTTP connection asking queries by GET."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        self.reconnects = 0

    def ask(self, query: Query) -> bytes:
        accept = TURTLE.media_type if query.graph else SPARQL_RESULTS_JSON
        path = "/sparql?" + urlencode({"query": query.text})
        try:
            self.conn.request("GET", path, headers={"Accept": accept})
            response = self.conn.getresponse()
        except (http.client.RemoteDisconnected, ConnectionResetError):
            # The server closed the idle keep-alive connection as we reused it: reconnect.
            self.reconnects += 1
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
            self.conn.request("GET", path, headers={"Accept": accept})
            response = self.conn.getresponse()
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f"{query.name}: HTTP {response.status}: {body[:200]!r}")
        return body


def in_process(store: pyoxigraph.Store, query: Query, prefixes: dict[str, str]) -> bytes:
    """The bare engine: evaluate and serialize to the same format as the HTTP answer."""
    result = store.query(query.text)
    if query.graph:
        return pyoxigraph.serialize(result, format=TURTLE.oxigraph, prefixes=prefixes) or b""  # type: ignore[arg-type]
    return result.serialize(format=pyoxigraph.QueryResultsFormat.JSON) or b""  # type: ignore[union-attr]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def throughput(port: int, query: Query, seconds: float, clients: int = 8) -> float:
    """Requests/s with `clients` keep-alive connections: wrk when installed, else threads."""
    wrk = shutil.which("wrk")
    if wrk:
        accept = TURTLE.media_type if query.graph else SPARQL_RESULTS_JSON
        url = f"http://127.0.0.1:{port}/sparql?" + urlencode({"query": query.text})
        out = subprocess.run(
            [
                wrk,
                "-t2",
                f"-c{clients}",
                f"-d{seconds:g}s",
                "--timeout",
                "60s",
                "-H",
                f"Accept: {accept}",
                url,
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        if "Non-2xx" in out:
            raise RuntimeError(f"{query.name}: errors under load:\n{out}")
        return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]

    def client() -> Callable[[], object]:
        connection = Client(port)
        return lambda: connection.ask(query)

    return _threads_rate(clients, seconds, client)


def local_throughput(
    store: pyoxigraph.Store, query: Query, prefixes: dict[str, str], seconds: float
) -> float:
    """Queries/s of 8 threads on one in-process store (pyoxigraph releases the GIL)."""
    return _threads_rate(8, seconds, lambda: lambda: in_process(store, query, prefixes))


def _threads_rate(n: int, seconds: float, worker: Callable[[], Callable[[], object]]) -> float:
    """Calls/s of n threads, each calling what worker() gives it (made in its thread) until
    the time is up."""
    done = [0] * n
    stop = time.monotonic() + seconds

    def run(i: int) -> None:
        call = worker()
        while time.monotonic() < stop:
            call()
            done[i] += 1

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(done) / (time.monotonic() - started)


def rdflib_times(nt: Path, qs: list[Query]) -> dict[str, float]:
    import rdflib

    graph = rdflib.Graph()
    started = time.perf_counter()
    graph.parse(nt, format="nt")
    print(f"  rdflib: loaded {len(graph):,} triples in {time.perf_counter() - started:.1f} s")
    out = {}
    for query in qs:
        out[query.name] = statistics.median(
            timed(
                lambda q=query: len(
                    graph.query(q.text).serialize(format="json" if not q.graph else "turtle")
                )
            )  # type: ignore[misc]
            for _ in range(3)
        )
    return out


def bench_size(n: int, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    listing = work / f"library-{n}.txt"
    subprocess.run([sys.executable, args.gen, str(n), "--out", str(listing)], check=True)
    port = free_port()
    iris = Iris.from_base(f"http://127.0.0.1:{port}/")
    out = work / f"publication-{n}"
    started = time.perf_counter()
    outcome = build([listing], out, BuildOptions(base=iris.base))
    print(
        f"\n## {n:,} entries ({outcome.triples:,} triples; built in "
        f"{time.perf_counter() - started:.1f} s)\n"
    )
    store = pyoxigraph.Store.read_only(str(out / "current" / "store"))
    entry = next(
        iter(store.query("SELECT ?e WHERE { ?e <http://purl.org/dc/terms/created> ?c } LIMIT 1"))
    )["e"].value  # type: ignore[index,union-attr]
    qs = queries(iris, entry)
    prefixes = dump_prefixes(iris)
    served = Served(out, port)
    figures: dict[str, Any] = {"entries": n, "triples": outcome.triples, "queries": {}}
    try:
        client = Client(port)
        for query in qs:  # warm up: every query child of both workers, and the page cache
            for _ in range(10):
                client.ask(query)
                in_process(store, query, prefixes)
        runs = args.runs if n <= 10_000 else max(10, args.runs // 3)
        print("| query | size | in-process p50 | p99 | HTTP p50 | p99 | overhead | target | ok |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        for query in qs:
            local, remote = [], []
            for _ in range(runs):
                local.append(timed(lambda q=query: in_process(store, q, prefixes)))  # type: ignore[misc]
                remote.append(timed(lambda q=query: client.ask(q)))  # type: ignore[misc]
            size = len(client.ask(query))
            p50l, p99l = statistics.median(local), percentile(local, 0.99)
            p50r, p99r = statistics.median(remote), percentile(remote, 0.99)
            overhead, target = p50r - p50l, 0.002 + 0.2 * p50l
            figures["queries"][query.name] = {
                "in_process_p50": p50l,
                "in_process_p99": p99l,
                "http_p50": p50r,
                "http_p99": p99r,
                "overhead": overhead,
                "target": target,
                "bytes": size,
            }
            print(
                f"| {query.name} | {size:,} B | {p50l * 1e3:.2f} ms | {p99l * 1e3:.2f} ms | "
                f"{p50r * 1e3:.2f} ms | {p99r * 1e3:.2f} ms | {overhead * 1e3:+.2f} ms | "
                f"< {target * 1e3:.2f} ms | {'yes' if overhead < target else 'NO'} |"
            )
        # "Cheap": under CHEAP seconds in-process, in this run. A heavier query at concurrency 8
        # only measures the two cores being shared (in-process threads slow down the same way).
        cheap = [q for q in qs if figures["queries"][q.name]["in_process_p50"] < CHEAP]
        print(
            f"\nThroughput of the cheap queries (in-process p50 < {CHEAP * 1e3:.0f} ms), "
            "8 concurrent clients, requests/s:\n"
        )
        print("| query | HTTP, 8 keep-alive clients | in-process, 8 threads, one store |")
        print("| --- | --- | --- |")
        for query in sorted(cheap, key=lambda q: figures["queries"][q.name]["in_process_p50"]):
            rate = throughput(port, query, args.seconds)
            local_rate = local_throughput(store, query, prefixes, args.seconds)
            figures["queries"][query.name]["throughput_c8"] = rate
            figures["queries"][query.name]["in_process_throughput_c8"] = local_rate
            print(f"| {query.name} | {rate:,.0f} | {local_rate:,.0f} |")
        if client.reconnects:
            print(f"\n(the client reconnected {client.reconnects} times)")
    except Exception:
        print((out.parent / "server.log").read_text()[-3000:])
        raise
    finally:
        served.stop()
    if n in args.rdflib_sizes:
        nt = out.parent / "library.nt"  # a whole file for rdflib (the dump is made of parts)
        with parts.open_whole(out / "current" / "dumps" / "library.nt") as dump:
            nt.write_bytes(dump.read())
        times = rdflib_times(nt, qs)
        print("\nrdflib's own SPARQL engine (median of 3) against Oxigraph in-process:\n")
        print("| query | rdflib | Oxigraph | factor |")
        print("| --- | --- | --- | --- |")
        for query in qs:
            ox = figures["queries"][query.name]["in_process_p50"]
            figures["queries"][query.name]["rdflib"] = times[query.name]
            print(
                f"| {query.name} | {times[query.name] * 1e3:,.0f} ms | {ox * 1e3:.2f} ms | "
                f"{times[query.name] / ox:,.0f}x |"
            )
    else:
        print(f"\n(rdflib's engine not run at {n:,} entries: see --rdflib-sizes)")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--runs", type=int, default=60)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rdflib-sizes", type=int, nargs="*", default=[10_000])
    parser.add_argument("--gen", default=str(ROOT / "tests" / "fixtures" / "gen_listing.py"))
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            results.append(bench_size(n, args, Path(tmp)))
    folder = ROOT / "bench" / "results"
    folder.mkdir(exist_ok=True)
    target = folder / f"sparql-{time.strftime('%Y%m%dT%H%M%S')}.json"
    target.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nfigures: {target.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
