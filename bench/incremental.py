#!/usr/bin/env python3
"""Rebuild time after a small change: a full build (reuse=False) against a rebuild that reuses
the current release (months of entries, dump chunks, validation, history, store), in the same
run, one child process per build, medians.

    bench/incremental.py [--entries N] [--runs R] [--generator PATH]

Each run edits one entry's description and builds in full (the baseline), edits it again and
rebuilds reusing ("reuse": the target is under 5 s at 100k entries), rebuilds with no change,
then adds five entries (a week of a real library) and rebuilds reusing; every build replaces
the release the step before made.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = """
import json, sys, time
from pathlib import Path
from graph.publication import BuildOptions, build
start = time.perf_counter()
outcome = build([Path(sys.argv[1])], Path(sys.argv[2]), BuildOptions(base="https://example.org/kg/"),
                reuse=sys.argv[3] == "reuse")
total = time.perf_counter() - start
print(json.dumps({"total": total, **{p.name: p.seconds for p in outcome.phases}}))
"""


def run_build(source: Path, out: Path, mode: str) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(source), str(out), mode],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    figures: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def edit_description(source: Path, text: str, mark: str) -> None:
    """The first entry's description, prefixed by mark."""
    at = text.index("\n\n", text.index("Added: ")) + 2
    source.write_text(text[:at] + mark + " " + text[at:], encoding="utf-8")


def add_entries(source: Path, text: str, mark: str, count: int = 5) -> None:
    """text with count new entries (new titles, added this week) at the end."""
    blocks = [
        f"New guidance {mark} number {n}\n\nAdded: 2{n}/11/2026 at 9:1{n} am Category: "
        f"Safeguarding, Early Help\n\nWhat this week's document {n} is about.\n"
        for n in range(count)
    ]
    source.write_text(text.rstrip("\n") + "\n\n" + "\n".join(blocks), encoding="utf-8")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--entries", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument(
        "--generator", type=Path, default=ROOT / "tests" / "fixtures" / "gen_listing.py"
    )
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="kgpub-incremental-") as tmp:
        folder = Path(tmp)
        source, out = folder / "library.txt", folder / "out"
        subprocess.run(
            [sys.executable, str(args.generator), str(args.entries), "--out", str(source)],
            check=True,
        )
        text = source.read_text(encoding="utf-8")
        run_build(source, out, "full")  # the publication the runs replace
        results: dict[str, list[dict[str, float]]] = {
            "full": [],
            "reuse": [],
            "no change": [],
            "5 added": [],
        }
        for i in range(args.runs):
            edit_description(source, text, f"Full {i}.")
            results["full"].append(run_build(source, out, "full"))
            edit_description(source, text, f"Reuse {i}.")
            results["reuse"].append(run_build(source, out, "reuse"))
            results["no change"].append(run_build(source, out, "reuse"))
            add_entries(source, source.read_text(encoding="utf-8"), f"run {i}")
            results["5 added"].append(run_build(source, out, "reuse"))
    phases = ["parse", "convert", "history", "validate", "write", "total"]
    print(f"{args.entries} entries, one description changed; medians of {args.runs} runs (s)")
    print(f"{'build':<12}" + "".join(f"{p:>10}" for p in phases))
    medians = {}
    for name, runs in results.items():
        medians[name] = {p: statistics.median(r.get(p, 0.0) for r in runs) for p in phases}
        print(f"{name:<12}" + "".join(f"{medians[name][p]:>10.2f}" for p in phases))
    full = medians["full"]["total"]
    for name in ("reuse", "no change", "5 added"):
        print(f"{name}: {medians[name]['total'] / full:.2f} of the full build")
    verdict = "met" if medians["reuse"]["total"] < 5 else "missed"
    print(f"target (one changed entry under 5 s): {verdict}")


if __name__ == "__main__":
    main()
