#!/usr/bin/env python3
"""Benchmark dereferencing one entry (Turtle, JSON-LD, HTML) against this stack's ceiling.

    .venv/bin/python bench/serve.py                      # the seed library (data/)
    .venv/bin/python bench/serve.py --entries 100000     # a synthetic library (gen_listing.py)
    .venv/bin/python bench/serve.py --publication DIR    # an existing `kgpub build --out DIR`

The ceiling is a minimal Flask app that returns the same precomputed body with the same
Content-Type, under the same gunicorn settings (server/wsgi.py: gthread, workers, threads,
access log), measured in the same run. Each round runs wrk (Debian package `wrk`; not needed by
the tests) at concurrency 8 for each representation against kgpub (the entry's IRI with an
Accept header: full content negotiation) and against the ceiling, interleaved; the report
gives medians over rounds of requests/s, p50 and p99 latency, and kgpub / ceiling.
Target (issue 3): at least 50% of the ceiling for every representation.
"""

from __future__ import annotations

import argparse
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
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

REPRESENTATIONS = (
    ("Turtle", "text/turtle"),
    ("JSON-LD", "application/ld+json"),
    ("HTML", "text/html"),
)
# Beyond the target: many distinct entries in turn, so most requests miss the cache
# and pay for the description and its serialization (informational, not the target).
DISTINCT = 20_000
ROTATE_LUA = """
local paths = {}
for line in io.lines(os.getenv("KGPUB_BENCH_PATHS")) do paths[#paths + 1] = line end
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("offset", threads * 7919)
end
function init(args) i = offset or 0 end
function request()
  i = i % #paths + 1
  return wrk.format("GET", paths[i], {["Accept"] = os.getenv("KGPUB_BENCH_ACCEPT")})
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=5):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer")


def fetch(url: str, accept: str) -> tuple[bytes, str]:
    request = urllib.request.Request(url, headers={"Accept": accept})
    with urllib.request.urlopen(request, timeout=60) as response:
        return response.read(), response.headers["Content-Type"]


def build(listing: Path, out: Path, base: str) -> None:
    started = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "server.cli",
            "build",
            str(listing),
            "--base-uri",
            base,
            "--out",
            str(out),
            "--quiet",
        ],
        cwd=ROOT,
        check=True,
    )
    print(f"built {listing.name} in {time.perf_counter() - started:.1f} s", file=sys.stderr)


def start(cmd: list[str], log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KGPUB_")}
    with log.open("wb") as out:
        return subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=out, stderr=out, start_new_session=True
        )


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def wrk(
    url: str, accept: str, seconds: int, connections: int, script: Path | None = None
) -> dict[str, float]:
    """One wrk run: requests/s, p50 and p99 in ms, and non-2xx responses."""
    cmd = [
        "wrk",
        "-t2",
        f"-c{connections}",
        f"-d{seconds}s",
        "--latency",
        "-H",
        f"Accept: {accept}",
        url,
    ]
    env = dict(os.environ, KGPUB_BENCH_ACCEPT=accept)
    if script is not None:
        cmd[1:1] = ["-s", str(script)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    lat = {}
    for pct in ("50", "99"):
        m = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        lat[pct] = float(m.group(1)) * _UNITS[m.group(2)] if m else float("nan")
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": rps,
        "p50": lat["50"],
        "p99": lat["99"],
        "errors": float(bad.group(1)) if bad else 0,
    }


def ceiling_app(body_dir: str) -> Any:
    """The minimal Flask app: one precomputed body per representation, picked by a path."""
    from flask import Flask, Response

    app = Flask("ceiling")
    bodies = json.loads((Path(body_dir) / "bodies.json").read_text())
    loaded = {
        name: (Path(body_dir, name).read_bytes(), content_type)
        for name, content_type in bodies.items()
    }

    @app.get("/<name>")
    def body(name: str) -> Response:
        data, content_type = loaded[name]
        return Response(data, content_type=content_type)

    return app


def serve_ceiling(port: int, workers: int, body_dir: str) -> None:
    """Run the ceiling app under kgpub's own gunicorn settings."""
    from server import config
    from server.wsgi import _Gunicorn, gunicorn_options

    settings = config.load(overrides={"port": port, "workers": workers, "host": "127.0.0.1"})
    options = gunicorn_options(settings)
    options["proc_name"] = "kgpub-ceiling"
    _Gunicorn(ceiling_app(body_dir), options).run()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, help="generate a listing of N entries")
    parser.add_argument(
        "--generator",
        default=str(ROOT / "tests" / "fixtures" / "gen_listing.py"),
        help="gen_listing.py to use with --entries",
    )
    parser.add_argument("--listing", help="a listing file to build (default: data/)")
    parser.add_argument("--publication", help="an existing publication folder (skip the build)")
    parser.add_argument("--seconds", type=int, default=5, help="length of each wrk run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--serve-ceiling", nargs=2, metavar=("PORT", "DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_ceiling:
        serve_ceiling(int(args.serve_ceiling[0]), args.workers, args.serve_ceiling[1])
        return 0
    if shutil.which("wrk") is None:
        print("bench/serve.py needs wrk: apt-get install -y wrk", file=sys.stderr)
        return 2

    work = Path(tempfile.mkdtemp(prefix="kgpub-bench-serve-"))
    port, ceiling_port = free_port(), free_port()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        if args.publication:
            out = Path(args.publication)
            label = out.name
        else:
            out = work / "publication"
            if args.entries:
                listing = work / f"listing-{args.entries}.txt"
                subprocess.run(
                    [sys.executable, args.generator, str(args.entries), "--out", str(listing)],
                    check=True,
                )
                label = f"{args.entries:,} entries"
            else:
                listing = Path(args.listing) if args.listing else ROOT / "data"
                label = listing.name
            build(listing, out, f"http://127.0.0.1:{port}/")
        manifest = json.loads((out / "current" / "manifest.json").read_text())
        base = f"http://127.0.0.1:{port}/"
        entry_url = base + manifest["example"][len(manifest["base"]) :]

        procs.append(
            start(
                [
                    sys.executable,
                    "-m",
                    "server.cli",
                    "serve",
                    "--out",
                    str(out),
                    "--port",
                    str(port),
                    "--workers",
                    str(args.workers),
                ],
                work / "kgpub.log",
            )
        )
        wait_for(base + ".well-known/void", procs[-1])
        bodies: dict[str, str] = {}
        for name, accept in REPRESENTATIONS:
            data, content_type = fetch(entry_url, accept)
            (work / name).write_bytes(data)
            bodies[name] = content_type
        (work / "bodies.json").write_text(json.dumps(bodies))
        procs.append(
            start(
                [
                    sys.executable,
                    __file__,
                    "--workers",
                    str(args.workers),
                    "--serve-ceiling",
                    str(ceiling_port),
                    str(work),
                ],
                work / "ceiling.log",
            )
        )
        ceiling = f"http://127.0.0.1:{ceiling_port}/"
        wait_for(ceiling + "Turtle", procs[-1])

        paths = work / "paths.txt"
        paths.write_text("\n".join(_entry_paths(out, manifest)) + "\n")
        os.environ["KGPUB_BENCH_PATHS"] = str(paths)
        script = work / "rotate.lua"
        script.write_text(ROTATE_LUA)
        results: dict[tuple[str, str], list[dict[str, float]]] = {}
        for name, accept in REPRESENTATIONS:  # warm both: caches, imports, connections
            wrk(entry_url, accept, 1, args.connections)
            wrk(ceiling + name, accept, 1, args.connections)
        load = os.getloadavg()[0]
        for round_ in range(args.rounds):
            for name, accept in REPRESENTATIONS:
                # each kgpub run is paired with a ceiling run next to it, in alternating
                # order, so that the other load on a shared machine cancels out in the ratio
                pair = [("ceiling", ceiling + name), ("kgpub", entry_url)]
                for side, url in pair if round_ % 2 == 0 else pair[::-1]:
                    results.setdefault((side, name), []).append(
                        wrk(url, accept, args.seconds, args.connections)
                    )
            for name, accept in REPRESENTATIONS[::2] if manifest["entries"] >= 1000 else ():
                results.setdefault(("distinct", name), []).append(
                    wrk(base, accept, args.seconds, args.connections, script)
                )
        report(label, manifest, results, args, (load, os.getloadavg()[0]))
    finally:
        for proc in procs:
            stop(proc)
        shutil.rmtree(work, ignore_errors=True)
    return 0


def _entry_paths(out: Path, manifest: dict[str, Any]) -> list[str]:
    """Paths of up to DISTINCT entries, spread over the library."""
    from graph.iris import Iris
    from graph.store.oxigraph import OxigraphReader

    everyone = OxigraphReader.open(out / "current" / "store", Iris(manifest["base"])).entries()
    step = max(1, len(everyone) // DISTINCT)
    base = manifest["base"]
    return ["/" + iri[len(base) :] for iri in everyone[::step][:DISTINCT]]


def report(
    label: str,
    manifest: dict[str, Any],
    results: dict[tuple[str, str], list[dict[str, float]]],
    args: Any,
    load: tuple[float, float],
) -> None:
    def med(runs: list[dict[str, float]], key: str) -> float:
        return statistics.median(r[key] for r in runs)

    print(
        f"\n## Dereferencing one entry: {label} ({manifest['entries']:,} entries, "
        f"{manifest['triples']:,} triples)"
    )
    print(
        f"wrk -t2 -c{args.connections}, {args.rounds} rounds x {args.seconds} s, medians; "
        f"gunicorn {args.workers} workers (kgpub's settings for both); load average "
        f"{load[0]:.1f} before, {load[1]:.1f} after; kgpub / ceiling is the median of the "
        "ratios of paired runs\n"
    )
    print(
        "| representation | kgpub req/s | p50 ms | p99 ms | ceiling req/s | p50 ms | p99 ms "
        "| kgpub / ceiling |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    worst = 1.0
    for name, _ in REPRESENTATIONS:
        k, c = results[("kgpub", name)], results[("ceiling", name)]
        ratio = statistics.median(a["rps"] / b["rps"] for a, b in zip(k, c, strict=True))
        worst = min(worst, ratio)
        errors = sum(r["errors"] for r in k + c)
        print(
            f"| {name} | {med(k, 'rps'):,.0f} | {med(k, 'p50'):.2f} | {med(k, 'p99'):.2f} "
            f"| {med(c, 'rps'):,.0f} | {med(c, 'p50'):.2f} | {med(c, 'p99'):.2f} "
            f"| {ratio:.0%}{f' (errors: {errors:.0f})' if errors else ''} |"
        )
    print(f"\nworst ratio {worst:.0%} (target >= 50%): {'met' if worst >= 0.5 else 'NOT met'}")
    distinct = [name for name, _ in REPRESENTATIONS if ("distinct", name) in results]
    if distinct:
        print(
            f"\nInformational: up to {DISTINCT:,} distinct entries in turn (mostly cache misses: "
            "describe + serialize per request), against the same ceiling:\n"
        )
        print("| representation | kgpub req/s | p50 ms | p99 ms | kgpub / ceiling |")
        print("| --- | ---: | ---: | ---: | ---: |")
        for name in distinct:
            k, c = results[("distinct", name)], results[("ceiling", name)]
            ratio = statistics.median(a["rps"] / b["rps"] for a, b in zip(k, c, strict=True))
            print(
                f"| {name}, distinct entries | {med(k, 'rps'):,.0f} | {med(k, 'p50'):.2f} "
                f"| {med(k, 'p99'):.2f} | {ratio:.0%} |"
            )


if __name__ == "__main__":
    sys.exit(main())
