#!/usr/bin/env python3
"""What new memory costs on this machine right now: run it before and after a bench.

    bench/machine.py [--mib M] [--strings N] [--runs R]

The project's machine is a virtual machine with free page reporting (the kernel's command line
has page_reporting.page_reporting_order; dmesg says "Free page reporting enabled"): memory
the guest frees is given back to the host, and the guest's next touch of it faults on the
host first. Whether that happens, and what it costs, changes from hour to hour, and with it
every figure a bench prints of a build at 1M entries (its peak of 1.1-1.8 GiB and the 2.7 GB
copy of the index are new memory each time). Measured on 2026-12-06: 1 GiB of new memory
touched a page at a time in 2.65 s (about 10 us a page; a few hundred ms on a quiet host),
a dict of 3 million new strings in 3 to 55 s (0.8 s when the page cache had just been
filled by reading the publication's files, so that new pages came from it).

Prints, as medians of R runs in a fresh child process each (so that each takes new memory):
the time to touch M MiB of new memory a page at a time (and per page), and to build a dict of
N new strings as keys. A bench's figures are comparable when these are about the same before
and after it.
"""

from __future__ import annotations

import argparse
import mmap
import statistics
import subprocess
import sys

_CHILD = """
import mmap, sys, time
mib, strings = int(sys.argv[1]), int(sys.argv[2])
size = mib << 20
t = time.perf_counter()
memory = mmap.mmap(-1, size)
for at in range(0, size, mmap.PAGESIZE):
    memory[at] = 1
touched = time.perf_counter() - t
memory.close()
t = time.perf_counter()
keys = dict.fromkeys(str(n) for n in range(strings))
made = time.perf_counter() - t
print(touched, made, len(keys))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mib", type=int, default=1024)
    parser.add_argument("--strings", type=int, default=3_000_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    touched, made = [], []
    for _ in range(args.runs):
        out = subprocess.run(
            [sys.executable, "-c", _CHILD, str(args.mib), str(args.strings)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.split()
        touched.append(float(out[0]))
        made.append(float(out[1]))
    pages = (args.mib << 20) // mmap.PAGESIZE  # the child touches one byte of each
    t, m = statistics.median(touched), statistics.median(made)
    print(f"new memory touched: {args.mib} MiB in {t:.2f} s ({t / pages * 1e6:.1f} us a page)")
    print(f"a dict of {args.strings:,} new strings: {m:.2f} s")
    each = ", ".join(f"{x:.2f}" for x in touched)
    print(f"runs: touched {each}; dict {', '.join(f'{x:.2f}' for x in made)}")


if __name__ == "__main__":
    main()
