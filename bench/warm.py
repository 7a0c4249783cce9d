#!/usr/bin/env python3
"""The first requests a worker answers after it starts: with its warm-up (the default) against
without it (`--warm-up 0`), in the same run, medians over restarts.

    .venv/bin/python bench/warm.py [--entries N] [--runs R] [--settle S]
    .venv/bin/python bench/warm.py --publication DIR    # an existing `kgpub build --out DIR`

Each run starts `kgpub serve` with one worker, waits until it answers, then S seconds more
(a visitor seldom comes the very moment a server starts), and times the first request for
each page the warm-up asks for: the landing page as HTML and Turtle, the sitemap, the change
feed as AS2 and HTML.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGES = [
    ("/", "text/html"),
    ("/", "text/turtle"),
    ("/sitemap.xml", "application/xml"),
    ("/changes", "application/activity+json"),
    ("/changes", "text/html"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def fetch(url: str, accept: str) -> float:
    """Seconds to read the whole response."""
    started = time.perf_counter()
    request = urllib.request.Request(url, headers={"Accept": accept})
    with urllib.request.urlopen(request, timeout=120) as response:
        response.read()
    return time.perf_counter() - started


def first_requests(publication: Path, warm: bool, settle: float) -> list[float]:
    """Start a one-worker server, wait, and time the first request for each page."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "server.cli",
        "serve",
        "--out",
        str(publication),
        "--port",
        str(port),
        "--workers",
        "1",
        "--warm-up",
        "1" if warm else "0",
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("KGPUB_")}
    server = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                fetch(base + "/robots.txt", "text/plain")
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        time.sleep(settle)
        return [fetch(base + path, accept) for path, accept in PAGES]
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--entries", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--settle", type=float, default=10.0)
    ap.add_argument("--publication", type=Path, help="an existing publication folder")
    ap.add_argument(
        "--generator", type=Path, default=ROOT / "tests" / "fixtures" / "gen_listing.py"
    )
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="kgpub-warm-") as tmp:
        publication = args.publication
        if publication is None:
            source, publication = Path(tmp) / "library.txt", Path(tmp) / "out"
            generate = [sys.executable, str(args.generator), str(args.entries)]
            subprocess.run([*generate, "--out", str(source)], check=True)
            build = [sys.executable, "-m", "server.cli", "build", str(source), "-q"]
            subprocess.run([*build, "--out", str(publication)], cwd=ROOT, check=True)
        timings: dict[bool, list[list[float]]] = {True: [], False: []}
        for _ in range(args.runs):
            for warm in (False, True):
                timings[warm].append(first_requests(publication, warm, args.settle))
    print(f"first request after start, one worker, medians of {args.runs} runs (ms)")
    print(f"{'page':<34}{'no warm-up':>12}{'warm-up':>10}{'ratio':>8}")
    for i, (path, accept) in enumerate(PAGES):
        cold = statistics.median(run[i] for run in timings[False]) * 1000
        warm = statistics.median(run[i] for run in timings[True]) * 1000
        print(f"{path + ' ' + accept:<34}{cold:>12.1f}{warm:>10.1f}{warm / cold:>8.3f}")


if __name__ == "__main__":
    main()
