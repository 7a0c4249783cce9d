#!/usr/bin/env python3
"""Rebuild time after a small change: a full build (reuse=False) against a rebuild that reuses
the current release (months of entries, dump chunks, validation, history, store), in the same
run, one child process per build, medians.

    bench/incremental.py [--entries N] [--runs R] [--generator PATH] [--against REV] [--first-full]

Each run edits one entry's description and builds in full (the baseline), edits it again and
rebuilds reusing ("reuse": the target is under 5 s at 100k entries), rebuilds with no change,
then adds five entries (a week of a real library) and rebuilds reusing; every build replaces
the release the step before made. Each build's peak RSS (its process's) is reported too.
--against REV   the same steps, interleaved run by run, with the code of a git revision
                (git archive), on a listing and a publication of its own
--repo PATH     the git repository REV is taken from (default: this script's), for a run
                from a snapshot of the code (git archive), which a rebase cannot change
--keep DIR      work in DIR and leave it: a later run with the same DIR (and the same
                --against) takes its listings and publications as they are, without the
                first full builds (at 1M entries, about 10 minutes each); a publication must
                have been built by the same code, or its first rebuild renders everything
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = """
import json, resource, sys, time
from pathlib import Path
from graph.publication import BuildOptions, build
start = time.perf_counter()
outcome = build([Path(sys.argv[1])], Path(sys.argv[2]), BuildOptions(base="https://example.org/kg/"),
                reuse=sys.argv[3] == "reuse")
total = time.perf_counter() - start
usage = resource.getrusage(resource.RUSAGE_SELF)
cpu = usage.ru_utime + usage.ru_stime
# VmHWM: this process's own peak. ru_maxrss keeps the high-water mark of the process that
# forked it (the bench, which holds the listing: 5 GiB at 1M entries) across the exec.
status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
peak = int(status["VmHWM"].split()[0]) / 1024
io = dict(line.split(": ") for line in Path("/proc/self/io").read_text().splitlines())
written = (int(io["write_bytes"]) - int(io["cancelled_write_bytes"])) / 2**20
print(json.dumps({"total": total, "cpu": cpu, "peak_mib": peak, "written_mib": written,
                  **{p.name: p.seconds for p in outcome.phases},
                  **{p.name + "_cpu": p.cpu_seconds for p in outcome.phases}}))
"""


def run_build(source: Path, out: Path, mode: str, code: Path = ROOT) -> dict[str, float]:
    """One build in a child process, with the code in the folder code."""
    env = {**os.environ, "PYTHONPATH": str(code)}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(source), str(out), mode],
        cwd=code,
        env=env,
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
    ap.add_argument("--against", help="also build with the code of this git revision")
    ap.add_argument(
        "--first-full",
        action="store_true",
        help="measure the full build once (the first), not in every run: on a busy machine "
        "a full build at 100k entries takes minutes",
    )
    ap.add_argument("--repo", type=Path, default=ROOT, help="the git repository of --against")
    ap.add_argument("--keep", type=Path, help="work in this folder and leave it (see above)")
    args = ap.parse_args()
    with contextlib.ExitStack() as stack:
        if args.keep is not None:
            folder = args.keep
            folder.mkdir(parents=True, exist_ok=True)
        else:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="kgpub-inc-")))
        codes = {"this": ROOT}
        if args.against:
            old = folder / "code-against"
            shutil.rmtree(old, ignore_errors=True)
            old.mkdir()
            archive = subprocess.run(
                ["git", "archive", args.against], cwd=args.repo, capture_output=True, check=True
            )
            subprocess.run(["tar", "-x", "-C", str(old)], input=archive.stdout, check=True)
            codes[args.against] = old
        original = folder / "library.txt"
        if not original.exists():
            subprocess.run(
                [sys.executable, str(args.generator), str(args.entries), "--out", str(original)],
                check=True,
            )
        text = original.read_text(encoding="utf-8")
        steps = ("full", "reuse", "no change", "5 added")
        results: dict[str, dict[str, list[dict[str, float]]]] = {
            name: {step: [] for step in steps} for name in codes
        }
        places = {name: (folder / f"{n}.txt", folder / f"out-{n}") for n, name in enumerate(codes)}
        for name, code in codes.items():
            source, out = places[name]
            if (out / "current").exists() and source.exists():
                continue  # kept from an earlier run (--keep)
            source.write_text(text, encoding="utf-8")
            first = run_build(source, out, "full", code)  # the publication the runs replace
            if args.first_full:
                results[name]["full"].append(first)
        token = f"{time.time_ns():x}"
        for i in range(args.runs):
            for name, code in codes.items():
                source, out = places[name]
                if not args.first_full and args.keep is None:
                    edit_description(source, text, f"Full {i}.")
                    results[name]["full"].append(run_build(source, out, "full", code))
                # One description changed in the listing as the step before left it (after the
                # first run, with its five added entries: else "reuse" would remove them too).
                edit_description(source, source.read_text(encoding="utf-8"), f"Reuse {i}.")
                results[name]["reuse"].append(run_build(source, out, "reuse", code))
                results[name]["no change"].append(run_build(source, out, "reuse", code))
                # Titles of this invocation's own: a --keep run after another adds new entries.
                add_entries(source, source.read_text(encoding="utf-8"), f"run {token}-{i}")
                results[name]["5 added"].append(run_build(source, out, "reuse", code))
    phases = ["parse", "convert", "history", "validate", "write", "total", "cpu", "peak_mib"]
    phases += ["written_mib", "convert_cpu", "write_cpu"]
    print(f"{args.entries} entries, one description changed; medians of {args.runs} runs (s)")
    print("cpu: user + sys seconds of the build's process (all its threads), which the load of")
    print("the machine does not change as it does the wall-clock seconds; written_mib: bytes")
    print("the build's process had written to disk (/proc/self/io write_bytes less those of")
    print("files deleted before being written: the syncs wait for them); convert_cpu,")
    print("write_cpu: the CPU seconds of those phases")
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    medians: dict[str, dict[str, dict[str, float]]] = {}
    for name in codes:
        print(f"\ncode: {name}")
        print(f"{'build':<12}" + "".join(f"{p:>12}" for p in phases))
        medians[name] = {}
        for step, runs in results[name].items():
            if not runs:  # no full build measured (--keep)
                continue
            row = {p: statistics.median(r.get(p, 0.0) for r in runs) for p in phases}
            medians[name][step] = row
            print(f"{step:<12}" + "".join(f"{row[p]:>12.2f}" for p in phases))
            each = "".join(f"{r.get('total', 0.0):>8.2f} ({r.get('cpu', 0.0):.2f})" for r in runs)
            print(f"{'':<12}{each}  (each run: total (CPU))")
        if "full" in medians[name]:
            full = medians[name]["full"]["total"]
            for step in ("reuse", "no change", "5 added"):
                print(f"{step}: {medians[name][step]['total'] / full:.2f} of the full build")
    if args.against:
        print(f"\nthis / {args.against} (total seconds, peak MiB):")
        for step in steps:
            if step not in medians["this"]:
                continue
            a, b = medians["this"][step], medians[args.against][step]
            print(
                f"  {step:<10} {a['total'] / b['total']:.2f}x time, "
                f"{a['cpu'] / b['cpu']:.2f}x cpu, {a['peak_mib'] / b['peak_mib']:.2f}x memory, "
                f"{a['written_mib'] / max(b['written_mib'], 1e-9):.2f}x written"
            )


if __name__ == "__main__":
    main()
