#!/usr/bin/env python3
"""Forwarded SPARQL answers by size: kgpub serve --store against the same query sent to
Virtuoso directly (the baseline, measured in the same run).

    .venv/bin/python bench/answers.py [--size 10000] [--limits 50 100 150 200 300 500 1000]
                                      [--runs 25] [--against REV]

A private Virtuoso (bench/store.py's, configured as README.md's deployment section says) holds
the library of `tests/fixtures/gen_listing.py SIZE`, loaded by `kgpub build --store`; one
`kgpub serve --store` serves it (with --against REV, a second one runs the code of git revision
REV beside it, from a snapshot). For each LIMIT, `SELECT ?e ?t WHERE { ?e dcterms:title ?t }
LIMIT n` is POSTed --runs times to each kgpub and to Virtuoso's /sparql (the release's graph as
default-graph-uri, kgpub's time budget), interleaved, on keep-alive connections, asking SPARQL
JSON; the report gives each side's median wall time, the answer's bytes and kgpub / direct.
Target (issue 10): kgpub <= 1.2 x direct + 2 ms at every size, direct being Virtuoso asked by a
client that acknowledges each answer at once (QuickAck); Python's http.client as it is asked too.

What it found (2026-12-06, bench/README.md): answers of about 34-64 KB took 44 ms through
kgpub, a delayed TCP acknowledgement against Virtuoso's Nagle (graph/store/protocol.py
_Connection.ack_at_once).
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent))
import million  # bench/million.py: a revision's snapshot
import store as bench  # bench/store.py: the private Virtuoso, its settings
from live import Server, free_port  # tests/live.py (store puts tests/ on the path)

ROOT = bench.ROOT
QUERY = (
    "PREFIX dcterms: <http://purl.org/dc/terms/>\n"
    "SELECT ?e ?t WHERE {{ ?e dcterms:title ?t }} LIMIT {n}"
)
JSON = "application/sparql-results+json"
FORM = {"Content-Type": "application/x-www-form-urlencoded", "Accept": JSON}


class QuickAck(bench.Connection):  # type: ignore[misc]
    """bench/store.py's keep-alive client, acknowledging each answer at once as kgpub's store
    client does (TCP_QUICKACK): Virtuoso's own time for an answer, without the 40 ms a client
    that delays its acknowledgements waits for a body of 34-64 KB (the other direct column)."""

    def request(
        self, method: str, path: str, headers: dict[str, str], body: bytes | None = None
    ) -> tuple[int, bytes]:
        self.conn.request(method, path, body=body, headers=headers)
        if self.conn.sock is not None:
            self.conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        response = self.conn.getresponse()
        return response.status, response.read()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=10_000)
    parser.add_argument(
        "--limits", type=int, nargs="+", default=[50, 100, 150, 200, 300, 500, 1000]
    )
    parser.add_argument("--runs", type=int, default=25)
    parser.add_argument("--against", help="a git revision served beside the working tree")
    args = parser.parse_args()
    binary = bench.virtuoso.find_binary()
    if binary is None:
        print("bench/answers.py needs virtuoso-t: apt-get install -y virtuoso-opensource")
        return 2
    work = Path(tempfile.mkdtemp(prefix="kgpub-bench-answers-"))
    try:
        listing = work / "listing.txt"
        generated = subprocess.run(
            [sys.executable, str(bench.GEN), str(args.size)], capture_output=True, check=True
        )
        listing.write_bytes(generated.stdout)
        base = f"http://127.0.0.1:{free_port()}/"
        with ExitStack() as stack:
            store = stack.enter_context(bench.DeployedVirtuoso(binary, work / "virtuoso"))
            out = work / "out"
            env = bench.clean_env(KGPUB_STORE_USER=store.user, KGPUB_STORE_PASSWORD=store.password)
            cmd = [sys.executable, "-m", "server.cli", "build", str(listing), "--out", str(out)]
            cmd += ["--base-uri", base, "--quiet", "--store", store.query_url]
            cmd += ["--store-update", store.update_url]
            cmd += ["--store-data", store.data_url]
            subprocess.run(cmd, cwd=ROOT, env=env, check=True, capture_output=True)
            codes: dict[str, Path | None] = {"kgpub": None}  # None: this checkout
            if args.against:
                codes[f"kgpub {args.against}"] = million.snapshot(args.against, work / "against")
            clients: dict[str, bench.Connection] = {}
            for name, code in codes.items():
                server = Server(
                    out,
                    free_port(),
                    code=code,
                    store=store.query_url,
                    store_timeout_param=bench.TIMEOUT_PARAM,
                )
                clients[name] = bench.Connection(stack.enter_context(server).port)
            graph, void = bench.graphs_of(out)
            quick = QuickAck(store.http_port)
            direct = bench.Direct(store, graph, void, f"{base}sparql", quick)
            plain = bench.Direct(store, graph, void, f"{base}sparql")

            def asker(client: bench.Connection):  # type: ignore[no-untyped-def]
                def ask(text: str) -> bytes:
                    status, body = client.request(
                        "POST", "/sparql", FORM, urlencode({"query": text}).encode()
                    )
                    if status != 200:
                        raise SystemExit(f"kgpub answered {status}: {body[:300]!r}")
                    return body

                return ask

            sides = {"direct": direct.ask_text, "direct, http.client": plain.ask_text}
            sides |= {name: asker(c) for name, c in clients.items()}
            print(
                f"# {args.size:,} entries, {args.runs} runs per size, load {os.getloadavg()[0]:.1f}"
            )
            header = "| LIMIT | bytes (kgpub) | " + " | ".join(f"{s} p50 ms" for s in sides)
            header += " | " + " | ".join(f"{n} / direct" for n in clients) + " | target met |"
            print(header)
            print("|" + " ---: |" * (2 + len(sides) + len(clients)) + " --- |")
            for n in args.limits:
                text = QUERY.format(n=n)
                for ask in sides.values():  # warm: the text compiled, the pages read
                    ask(text)
                times: dict[str, list[float]] = {s: [] for s in sides}
                size = 0
                for run in range(args.runs):
                    order = list(sides) if run % 2 == 0 else list(sides)[::-1]
                    for side in order:
                        started = time.perf_counter()
                        body = sides[side](text)
                        times[side].append(1000 * (time.perf_counter() - started))
                        if side == "kgpub":
                            size = len(body)
                p50 = {s: statistics.median(t) for s, t in times.items()}
                ratios = [p50[name] / p50["direct"] for name in clients]
                met = p50["kgpub"] <= 1.2 * p50["direct"] + 2
                cells = [f"{p50[s]:.2f}" for s in sides] + [f"{r:.2f}" for r in ratios]
                print(f"| {n} | {size:,} | " + " | ".join(cells) + f" | {'yes' if met else 'NO'} |")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
