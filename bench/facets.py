#!/usr/bin/env python3
"""The word search's CPU per search (its page, total and facets) of the measured code against
a baseline revision, on the same index file, in the same run (issue 11's serve target).

    .venv/bin/python bench/facets.py --index PUB/current/index.sqlite [--against e687201]
                                     [--runs 5] [--rounds 3]

For each search (SEARCHES: two common words by each sort, one word, words with a category
or a year, a deep page, a category alone), a fresh process per side and round opens the
index with that side's graph/index.py (a `git archive` snapshot for the baseline, HEAD's
working tree for the code) and reports the CPU seconds (getrusage: user + sys, every thread)
of its first search (the facet table read, for the code; numpy imported before, as a
server's worker does at its start) and the median of `runs` more; each side's first and warm
medians over the rounds, and the ratio code / baseline. CPU seconds do not depend on the
machine's load; wall time does: it is reported beside them (a search that reads on several
threads takes less wall than CPU on an idle machine), to be judged on a quiet one.

An index written before the facet table (graph/index.py) has none: `--add-facets` writes a
copy with it, made from its subject and issued tables (the rows a build would write), into
the folder of --work, so that an index built by an older kgpub (the 1M one takes 15 min of
CPU to build) can be measured.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SEARCHES: list[dict[str, object]] = [
    {"words": "child safeguarding"},
    {"words": "child safeguarding", "sort": "newest"},
    {"words": "child safeguarding", "sort": "oldest"},
    {"words": "county lines"},
    {"words": "child"},
    {"words": "child safeguarding", "category": 0},
    {"words": "child safeguarding", "category": 0, "sort": "newest"},
    {"words": "child safeguarding", "years": [2020]},
    {"words": "child safeguarding", "page": 50},
    {"words": "", "category": 0},
]

PROBE = """
import json, resource, statistics, sys, time
from pathlib import Path
import numpy  # a server's worker imports it at its start
from graph.index import Index
index = Index(Path(sys.argv[1]))
asked = json.loads(sys.argv[2])
runs = int(sys.argv[3])
concepts = sorted(index.categories().values(), key=lambda c: -c.entries)
kwargs = {"words": asked.get("words", ""), "years": asked.get("years", []),
          "sort": asked.get("sort", "relevance"), "page": asked.get("page", 1)}
if "category" in asked:
    kwargs["categories"] = [concepts[asked["category"]].iri]
def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime
times, walls = [], []
for _ in range(runs + 1):
    before, start = cpu(), time.perf_counter()
    found = index.search(**kwargs)
    times.append(cpu() - before)
    walls.append(time.perf_counter() - start)
print(json.dumps({"first": times[0], "warm": statistics.median(times[1:]), "total": found.total,
                  "first_wall": walls[0], "warm_wall": statistics.median(walls[1:])}))
"""


def snapshot(revision: str, folder: Path) -> Path:
    """The code of a git revision, extracted into folder."""
    folder.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "archive", revision], cwd=ROOT, capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


def probe(code: Path, index: Path, asked: dict[str, object], runs: int) -> dict[str, float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KGPUB_")}
    env["PYTHONPATH"] = str(code)
    found = subprocess.run(
        [sys.executable, "-c", PROBE, str(index), json.dumps(asked), str(runs)],
        cwd=code,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, float] = json.loads(found.stdout)
    return result


def add_facets(source: Path, target: Path) -> None:
    """A copy of source with the facet table written from its subject and issued tables."""
    from graph.index import _facet_row

    shutil.copyfile(source, target)
    db = sqlite3.connect(target)
    try:
        db.execute("DROP TABLE IF EXISTS facet")
        db.execute(
            "CREATE TABLE facet (month INTEGER PRIMARY KEY, concepts BLOB, publishers TEXT, "
            "issued BLOB)"
        )
        concepts: dict[int, int] = {}
        for entry, concept in db.execute("SELECT entry, concept FROM subject"):
            concepts[entry] = concepts.get(entry, 0) | 1 << concept
        issued: dict[int, list[str]] = {}
        for entry, pid in db.execute("SELECT entry, publisher FROM issued"):
            issued.setdefault(entry, []).append(pid)
        months: dict[int, list[int]] = {}
        for (n,) in db.execute("SELECT id FROM entry ORDER BY id"):
            months.setdefault(n >> 20, []).append(n)
        for month, ids in months.items():
            row = _facet_row(
                [concepts.get(n, 0) for n in ids], [sorted(issued.get(n, [])) for n in ids]
            )
            db.execute("INSERT INTO facet VALUES (?, ?, ?, ?)", (month, *row))
        db.commit()
    finally:
        db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--against", default="e687201")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--add-facets", action="store_true")
    parser.add_argument("--work", type=Path, default=None)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="kgpub-facets-", dir=args.work))
    try:
        index = args.index
        if args.add_facets:
            index = work / "index.sqlite"
            add_facets(args.index, index)
        sides = {"baseline": snapshot(args.against, work / "baseline"), "code": ROOT}
        print(
            f"index {args.index} ({index.stat().st_size / 2**20:.0f} MiB), against {args.against}"
        )
        print(
            f"{'search':<44} {'side':<9} {'first ms':>9} {'warm ms':>9} {'total':>8} "
            f"{'wall 1st':>9} {'wall warm':>9}"
        )
        out = []
        for asked in SEARCHES:
            figures: dict[str, dict[str, float]] = {}
            for side, code in sides.items():
                rounds = [probe(code, index, asked, args.runs) for _ in range(args.rounds)]
                figures[side] = {
                    key: statistics.median(r[key] for r in rounds) * 1000
                    for key in ("first", "warm", "first_wall", "warm_wall")
                }
                figures[side]["total"] = rounds[0]["total"]
                f = figures[side]
                label = json.dumps(asked)
                print(
                    f"{label:<44} {side:<9} {f['first']:9.1f} {f['warm']:9.1f} {f['total']:8.0f} "
                    f"{f['first_wall']:9.1f} {f['warm_wall']:9.1f}",
                    flush=True,
                )
            b, c = figures["baseline"], figures["code"]
            print(
                f"{'':<44} {'ratio':<9} {c['first'] / b['first']:9.2f} {c['warm'] / b['warm']:9.2f}"
            )
            out.append({"search": asked, **figures})
        results = ROOT / "bench" / "results"
        results.mkdir(exist_ok=True)
        (results / "facets.json").write_text(json.dumps(out, indent=1), encoding="utf-8")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
