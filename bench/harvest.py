"""Cost of the history in a build, and of the harvesting views, on a synthetic library.

    .venv/bin/python bench/harvest.py [N] [--gen PATH/TO/gen_listing.py] [--repeat R]

Builds N entries (default 10,000), then rebuilds with one description changed, and reports
the history phase of each build against the whole build (same run). Then times the harvesting
views in-process (Flask test client, no network), median of R runs, as a ratio to
OAI-PMH Identify (constant work: the baseline of the same run).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from datetime import UTC, datetime  # noqa: E402

from graph import history  # noqa: E402
from graph.convert import convert  # noqa: E402
from graph.iris import Iris  # noqa: E402
from graph.listing import read_listings  # noqa: E402
from graph.publication import BuildOptions, build  # noqa: E402
from server.app import create_app  # noqa: E402

BASE = "http://bench.example/"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", nargs="?", type=int, default=10_000)
    parser.add_argument("--gen", default=str(ROOT / "tests" / "fixtures" / "gen_listing.py"))
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        listing = work / "library.txt"
        subprocess.run([sys.executable, args.gen, str(args.n), "--out", str(listing)], check=True)
        out = work / "publication"
        print(f"{args.n:,} entries")
        first = build([listing], out, BuildOptions(base=BASE))
        report("first build", first.phases)
        text = listing.read_text(encoding="utf-8").splitlines(keepends=True)
        at = next(i for i in range(len(text) // 2, len(text)) if text[i].startswith("Added:"))
        text[at + 2] = "A changed description for the benchmark.\n"
        listing.write_text("".join(text), encoding="utf-8")
        time.sleep(1)  # a new build second
        second = build([listing], out, BuildOptions(base=BASE))
        report("rebuild, one entry changed", second.phases)
        assert second.release is not None
        index = history.load(second.release)
        news = index.changes[-5:]
        print(
            f"  history: {index.total:,} changes; this build: "
            f"{[c.kind for c in news if c.time == index.built]}"
        )
        incremental(listing, second.release, args.repeat)
        views(out, index, args.repeat)


def incremental(listing: Path, release: Path, repeat: int) -> None:
    """history.compute against the current release: every entry fingerprinted (what a full
    build does) vs only the one entry an incremental build rebuilt (prints + changed)."""
    _, entries, _ = read_listings([listing])
    converted = convert(entries, Iris(BASE), "Library")
    one = next(iter(converted.entries))
    stamp = datetime.now(UTC)
    full, fast = [], []
    for _ in range(repeat):
        start = time.perf_counter()
        history.compute(release, converted, stamp)
        full.append(time.perf_counter() - start)
        start = time.perf_counter()
        prints = history.fingerprints(converted.triples[:50], [one])
        history.compute(release, converted, stamp, prints=prints, changed=[one])
        fast.append(time.perf_counter() - start)
    f, i = statistics.median(full), statistics.median(fast)
    print(
        f"  history.compute: every entry fingerprinted {f:.2f} s; "
        f"one rebuilt entry (prints + changed) {i:.2f} s (x{i / f:.2f})"
    )


def report(name: str, phases: list) -> None:  # type: ignore[type-arg]
    total = sum(p.seconds for p in phases)
    hist = next(p.seconds for p in phases if p.name == "history")
    print(
        f"{name}: {total:.2f} s in all; history phase {hist:.3f} s "
        f"({100 * hist / total:.1f}% of the build)"
    )


def views(out: Path, index: history.Index, repeat: int) -> None:
    app = create_app({"KGPUB": {"out": str(out), "page_size": 100}, "TESTING": True})
    client = app.test_client()
    middle = index.live[len(index.live) // 2].rsplit("/", 1)[1]
    token_page = client.get("/oai?verb=ListIdentifiers&metadataPrefix=oai_dc").get_data(True)
    token = token_page.split('cursor="0">')[1].split("<")[0]
    urls = {
        "OAI Identify (baseline)": "/oai?verb=Identify",
        "OAI ListRecords, first page": "/oai?verb=ListRecords&metadataPrefix=oai_dc",
        "OAI ListIdentifiers, 2nd page": f"/oai?verb=ListIdentifiers&resumptionToken={token}",
        "OAI ListIdentifiers from the last build": (
            f"/oai?verb=ListIdentifiers&metadataPrefix=oai_dc&from={index.built}"
        ),
        "feed, first page": f"/changes?before={index.total + 1}",
        "collection, middle page (Turtle)": f"/collections/entries?after={middle}",
        "collection, middle page (HTML)": f"/collections/entries?after={middle}&format=html",
    }
    client.get("/changes?after=0")  # load the history once, as a worker does
    timings: dict[str, float] = {}
    for name, url in urls.items():
        runs = []
        for _ in range(repeat):
            start = time.perf_counter()
            response = client.get(url)
            runs.append(time.perf_counter() - start)
            assert response.status_code == 200, (url, response.status_code)
        timings[name] = statistics.median(runs)
    base = timings["OAI Identify (baseline)"]
    for name, seconds in timings.items():
        print(f"  {name:42} {1000 * seconds:8.1f} ms  x{seconds / base:6.1f}")


if __name__ == "__main__":
    main()
