"""Load: a mix of what the public asks of a kgpub server, at concurrency 32, against a baseline.

    .venv/bin/python bench/load.py [--entries 100000] [--seconds 60] [--runs 3]
                                   [--baseline 5121ebd] [--candidate HEAD]

Both revisions are measured from snapshots (`git archive`: other engineers edit the working
tree meanwhile), each building the same generated library (tests/fixtures/gen_listing.py) and
serving it with `kgpub serve`'s defaults (2 workers, 4 query processes each, a 10 s budget) on
loopback. wrk (`apt-get install -y wrk`; -t2, --clients connections, --seconds each run, 30 s
timeout) sends requests drawn at random from one fixed list of 20,000, in these shares:

  55%  an entry, in Turtle, JSON-LD, N-Triples, RDF/XML or HTML (Accept), 20,000 distinct
  18%  a page of the library or of a category, in a random representation
  10%  a dump with Range (64 KiB at a random offset of library.nt or library.ttl.gz)
  16%  a cheap SPARQL query (DESCRIBE an entry, ASK, the 20 latest in a category)
   1%  an expensive one (a five-way cross product: it runs until the 10 s budget)

Both servers run side by side and the runs alternate (baseline, candidate, baseline, ...), so
that the load of a shared machine falls on both alike. It reports, per revision and run:
requests/s, wrk's p50/p99/max latency, the answers by status (503 counted apart when they are
the query budget's deliberate refusals), socket errors, the server's workers lost (pids before
and after) and its memory (RSS and PSS of the process group, query processes included) after
each run, so growth across runs shows. Loopback only; bounded
in count (--runs) and time (--seconds). Figures of a run: bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from graph.parts import read_bytes as whole_dump  # noqa: E402  (a dump is a list of parts)

RUNAWAY = "SELECT (COUNT(*) AS ?n) WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i . ?j ?k ?l . ?m ?n2 ?o }"
TYPES = ["text/turtle", "application/ld+json", "application/n-triples", "application/rdf+xml",
         "text/html"]  # fmt: skip
LUA = r"""
counts = {}
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) counts = {} end
request = function()
  local r = reqs[math.random(#reqs)]
  return wrk.format(r[1], r[2], r[3], r[4])
end
function response(status, headers, body)
  local k = tostring(status)
  if status == 503 and body and (string.find(body, "budget", 1, true)
      or string.find(body, "queries are running", 1, true)) then k = "503q" end
  counts[k] = (counts[k] or 0) + 1
end
function done(summary, latency, requests)
  local total = {}
  for _, t in ipairs(threads) do
    for k, v in pairs(t:get("counts")) do total[k] = (total[k] or 0) + v end
  end
  io.write("COUNTS")
  for k, v in pairs(total) do io.write(" " .. k .. "=" .. v) end
  io.write("\n")
  io.write(string.format("LATENCY %d %d %d\n", latency:percentile(50), latency:percentile(99),
    latency.max))
  local e = summary.errors
  io.write(string.format("SUMMARY %d %d %d %d %d %d\n", summary.requests, summary.duration,
    e.connect, e.read, e.write, e.timeout))
end
"""


def lua_string(text: str) -> str:
    return json.dumps(text)  # a JSON string is a valid Lua string literal for this text


def request_list(
    out: Path, count: int, seed: int = 13
) -> list[tuple[str, str, dict[str, str], str]]:
    """The fixed list of requests wrk draws from: (method, path, headers, body)."""
    rnd = random.Random(seed)
    text = whole_dump(out / "current" / "dumps" / "library.nt")
    nt = len(text)
    gz = len(whole_dump(out / "current" / "dumps" / "library.ttl.gz"))
    entries, categories = [], set()
    for line in text.decode("utf-8").splitlines(keepends=True):
        if "/terms/subject> <" in line:
            subject, _, concept = line.split(" ", 2)
            entries.append(subject.strip("<>"))
            categories.add(concept.strip(" .\n<>"))
    base = entries[0].split("entry/")[0]
    rnd.shuffle(entries)
    concepts = sorted(categories)
    pages = max(1, len(set(entries)) // 100)
    requests: list[tuple[str, str, dict[str, str], str]] = []
    for i in range(count):
        roll = rnd.random()
        accept = {"Accept": rnd.choice(TYPES)}
        if roll < 0.55:
            requests.append(("GET", "/" + entries[i % len(entries)].removeprefix(base), accept, ""))
        elif roll < 0.73:
            where = rnd.choice(["library", *("category/" + c.rsplit("/", 1)[1] for c in concepts)])
            page = rnd.randint(1, pages if where == "library" else max(1, pages // len(concepts)))
            requests.append(("GET", f"/{where}?page={page}", accept, ""))
        elif roll < 0.83:
            name, size = rnd.choice([("library.nt", nt), ("library.ttl.gz", gz)])
            start = rnd.randrange(0, max(1, size - 65536))
            headers = {"Range": f"bytes={start}-{start + 65535}"}
            requests.append(("GET", f"/dumps/{name}", headers, ""))
        elif roll < 0.99:
            entry = entries[rnd.randrange(len(entries))]
            concept = rnd.choice(concepts)
            text = rnd.choice([
                f"DESCRIBE <{entry}>",
                f"ASK {{ <{entry}> ?p ?o }}",
                "PREFIX dcterms: <http://purl.org/dc/terms/> SELECT ?e ?c WHERE { ?e "
                f"dcterms:subject <{concept}> ; dcterms:created ?c }} ORDER BY DESC(?c) LIMIT 20",
            ])  # fmt: skip
            requests.append(("GET", "/sparql?query=" + quote(text), {}, ""))
        else:
            requests.append(("GET", "/sparql?query=" + quote(RUNAWAY), {}, ""))
    return requests


def write_lua(requests: list[tuple[str, str, dict[str, str], str]], target: Path) -> None:
    lines = ["reqs = {"]
    for method, path, headers, body in requests:
        fields = ", ".join(f"[{lua_string(k)}] = {lua_string(v)}" for k, v in headers.items())
        lines.append(
            f"  {{{lua_string(method)}, {lua_string(path)}, {{{fields}}}, "
            f"{lua_string(body) if body else 'nil'}}},"
        )
    lines.append("}")
    target.write_text("\n".join(lines) + LUA, encoding="utf-8")


def snapshot(revision: str, work: Path) -> tuple[Path, str]:
    """The tree of a git revision, extracted under work; (folder, 'hash subject')."""
    shown = subprocess.run(
        ["git", "log", "-1", "--format=%h %s", revision],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    code = work / f"code-{shown.split()[0]}"
    if not code.exists():
        code.mkdir(parents=True)
        archive = subprocess.run(
            ["git", "archive", shown.split()[0]], cwd=ROOT, capture_output=True, check=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(code)], input=archive, check=True)
    return code, shown


def clean_env(code: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KGPUB_")}
    # PYTHONPATH first: the editable install would resolve graph/ and server/ to the worktree.
    env["PYTHONPATH"] = str(code)
    return env


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return sorted(found)


def memory(pgid: int) -> dict[str, float]:
    """RSS and PSS (MiB) summed over the server's process group, and its process count."""
    rss = pss = 0
    count = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[2]) != pgid:
                continue
            status = (entry / "status").read_text()
            rollup = (entry / "smaps_rollup").read_text()
        except (OSError, IndexError, ValueError):
            continue
        found_rss = re.search(r"^VmRSS:\s+(\d+)", status, re.M)
        found_pss = re.search(r"^Pss:\s+(\d+)", rollup, re.M)
        if found_rss and found_pss:
            count += 1
            rss += int(found_rss.group(1))
            pss += int(found_pss.group(1))
    return {"rss_mib": round(rss / 1024), "pss_mib": round(pss / 1024), "processes": count}


def wrk(port: int, script: Path, clients: int, seconds: int) -> dict[str, Any]:
    cmd = ["wrk", "-t2", f"-c{clients}", f"-d{seconds}s", "--timeout", "30s", "-s", str(script),
           f"http://127.0.0.1:{port}"]  # fmt: skip
    ran = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if ran.returncode != 0:
        raise SystemExit(f"wrk failed: {ran.stderr[-2000:]}")
    out = ran.stdout
    counts = dict(
        (k, int(v)) for k, v in (p.split("=") for p in re.search(r"^COUNTS(.*)$", out, re.M)
                                 .group(1).split())  # type: ignore[union-attr]
    )  # fmt: skip
    p50, p99, worst = map(int, re.search(r"^LATENCY (\d+) (\d+) (\d+)", out, re.M).groups())  # type: ignore[union-attr]
    requests, micros, *errors = map(int, re.search(r"^SUMMARY (.*)$", out, re.M).group(1).split())  # type: ignore[union-attr]
    return {
        "requests_per_s": round(requests / (micros / 1e6), 1),
        "p50_ms": round(p50 / 1000, 1),
        "p99_ms": round(p99 / 1000, 1),
        "max_ms": round(worst / 1000, 1),
        "statuses": counts,
        "server_errors": sum(v for k, v in counts.items() if k.startswith("5") and k != "503q"),
        "socket_errors": dict(zip(("connect", "read", "write", "timeout"), errors, strict=True)),
    }


def serve(code: Path, out: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "server.cli", "serve", "--out", str(out), "--port", str(port)],
            cwd=code, env=clean_env(code), stdout=sink, stderr=sink, start_new_session=True,
        )  # fmt: skip
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/.well-known/void", timeout=5):
                time.sleep(5)  # the workers' warm-up (landing page, sitemap, feed)
                return proc
        except (urllib.error.URLError, OSError):
            time.sleep(0.5)
    raise SystemExit(f"the server did not start: {log.read_text()[-2000:]}")


class Side:
    """One revision: its snapshot, publication, request list and running server."""

    def __init__(self, code: Path, shown: str, listing: Path, work: Path) -> None:
        self.code, self.shown = code, shown
        self.out = work / f"publication-{code.name}"
        if not (self.out / "current").exists():
            started = time.monotonic()
            subprocess.run(
                [sys.executable, "-m", "server.cli", "build", str(listing), "--out",
                 str(self.out), "--base-uri", "http://127.0.0.1:5000/", "-q"],
                cwd=code, env=clean_env(code), check=True,
            )  # fmt: skip
            print(f"{shown[:7]}: built in {time.monotonic() - started:.0f} s", file=sys.stderr)
        self.script = work / f"mix-{code.name}.lua"
        write_lua(request_list(self.out, 20_000), self.script)
        self.log = work / f"server-{code.name}.log"
        with socket.socket() as probe:  # a free loopback port; the base IRI need not name it
            probe.bind(("127.0.0.1", 0))
            self.port = int(probe.getsockname()[1])
        self.proc = serve(code, self.out, self.port, self.log)
        self.runs: list[dict[str, Any]] = []

    def run(self, args: argparse.Namespace) -> None:
        before = children(self.proc.pid)
        load = os.getloadavg()[0]
        result = wrk(self.port, self.script, args.clients, args.seconds)
        time.sleep(11)  # the expensive queries still running end at their budget
        result.update(
            run=len(self.runs) + 1,
            load_before=round(load, 1),
            workers_lost=len(set(before) - set(children(self.proc.pid))),
            memory=memory(self.proc.pid),
        )
        print(f"{self.shown[:7]} run {result['run']}: {json.dumps(result)}", file=sys.stderr)
        self.runs.append(result)

    def stop(self) -> dict[str, Any]:
        os.killpg(self.proc.pid, signal.SIGTERM)
        self.proc.wait(timeout=60)
        text = self.log.read_text(errors="replace")
        return {
            "revision": self.shown,
            "runs": self.runs,
            "worker_timeouts": text.count("WORKER TIMEOUT"),
            "tracebacks": text.count("Traceback"),
        }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--baseline", default="5121ebd", help="the revision compared with (default: main before "
        "issue 13's serving changes)"
    )  # fmt: skip
    parser.add_argument("--candidate", default="HEAD")
    parser.add_argument("--keep", default="", help="work folder to keep (and reuse builds)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("bench/load.py needs wrk: apt-get install -y wrk", file=sys.stderr)
        return 2
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="kgpub-bench-load-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        listing = work / f"library-{args.entries}.txt"
        if not listing.exists():
            subprocess.run(
                [sys.executable, str(ROOT / "tests" / "fixtures" / "gen_listing.py"),
                 str(args.entries), "--out", str(listing)],
                check=True,
            )  # fmt: skip
        results = {"entries": args.entries, "clients": args.clients, "seconds": args.seconds,
                   "machine_load_start": os.getloadavg()[0]}  # fmt: skip
        sides: dict[str, Side] = {}
        try:
            for name in ("baseline", "candidate"):
                sides[name] = Side(*snapshot(getattr(args, name), work), listing, work)
            for _ in range(args.runs):  # paired runs, in turn: the machine's load hits both
                for side in sides.values():
                    side.run(args)
        finally:
            for name, side in sides.items():
                results[name] = side.stop()
        results["machine_load_end"] = os.getloadavg()[0]
        print(json.dumps(results, indent=1))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
