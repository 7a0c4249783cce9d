"""Helpers for end-to-end tests: free loopback ports, built publications, a real server."""

from __future__ import annotations

import fcntl
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
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from graph.publication import (
    RELEASES,
    BuildOptions,
    Outcome,
    build,
    published_releases,
    read_manifest,
)
from graph.store import EMBEDDED, StoreSettings
from graph.store.protocol import iri_ref
from server.config import BY_NAME

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "data" / "library-safeguarding.txt"
FIXTURES = Path(__file__).resolve().parent / "fixtures"

# Releases a build pruned are deleted in the background (graph/publication.py _prune): a copy
# of a publication folder must not race that deletion (a file vanishes under copytree), and
# what is being deleted is no part of the publication.
PRUNING = shutil.ignore_patterns(".pruned-*")


def kgpub(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """Run the `kgpub` command as a user does (no KGPUB_ settings from the environment)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KGPUB_")}
    return subprocess.run(
        [sys.executable, "-m", "server.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


# Ports handed out below the kernel's ephemeral range (ip_local_port_range, 32768-60999 by
# default), so that no outgoing connection and no bind to port 0 takes one; each claimed by a
# lock file held until this process ends, so that concurrent pytest sessions on the machine
# (several worktrees, several engineers) never get the same one. A port found by binding to 0
# and closing was free only for that instant: another session could be given it too, and one
# of the two servers then failed to start (EADDRINUSE).
PORTS = range(20_000, 32_000)
PORT_LOCKS = Path(tempfile.gettempdir()) / "kgpub-test-ports"
_claimed: list[int] = []  # the lock files' descriptors, open (so locked) while we run


def mentions(text: str, secret: str | None) -> bool:
    """Whether text holds a credential as a word of its own. Not as part of a longer word:
    release and graph names end with a hex digest of their data, which holds any three
    letters now and then (the private Virtuoso's user and password are 'dba')."""
    if not secret:
        return False
    return re.search(rf"(?<![0-9A-Za-z]){re.escape(secret)}(?![0-9A-Za-z])", text) is not None


def free_port() -> int:
    """A TCP port free on 127.0.0.1 and claimed for this process: no other test process
    using this function gets it while this one runs."""
    PORT_LOCKS.mkdir(exist_ok=True)
    start = random.randrange(len(PORTS))
    for i in range(len(PORTS)):
        port = PORTS[(start + i) % len(PORTS)]
        fd = os.open(PORT_LOCKS / str(port), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)  # another process has it
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                os.close(fd)  # something else listens there (or it is in use)
                continue
        _claimed.append(fd)
        return port
    raise RuntimeError(f"no free port in {PORTS}")


@dataclass(frozen=True)
class Backend:
    """Where a test publication's graph lives: the embedded store (the default), or a SPARQL
    server, as `kgpub build --store` and `kgpub serve --store` are given it."""

    name: str  # an id of BACKENDS
    store: StoreSettings = EMBEDDED
    options: Mapping[str, object] = field(default_factory=dict)  # what its deployment asks

    @property
    def is_remote(self) -> bool:
        return self.store.is_remote

    def serve(self) -> dict[str, Any]:
        """Server options: the store's query endpoint (no credentials: serving needs none) and
        the settings its deployment notes ask for."""
        return {"store": self.store.query, **self.options} if self.store.is_remote else {}

    def drop_graphs(self, out: Path) -> None:
        """Drop the graphs of the publication's releases from the store: the tests share one
        server of each kind, and a module's data goes with it, so that the tests after it
        (tests/test_store_protocol.py's queries range over every graph) find it as it was."""
        if not self.store.is_remote:
            return
        client = self.store.client()
        for release in published_releases(out / RELEASES):
            record = read_manifest(release).get("store") or {}
            for key in ("graph", "void"):
                if isinstance(record.get(key), str):
                    client.update(f"DROP SILENT GRAPH {iri_ref(record[key])}")


BACKENDS = ["embedded", "virtuoso", "oxigraph-server"]  # the ids of the `backend` fixture


def wait_for_answer(
    proc: subprocess.Popen[bytes], url: str, deadline: float, name: str, tail: Callable[[], str]
) -> None:
    """Poll url until it answers with any HTTP status (a server's listener is open), failing
    when the process exits or the deadline (time.monotonic) passes."""
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited: {tail()}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{name} did not answer in time: {tail()}")


def stop_group(proc: subprocess.Popen[Any], timeout: float) -> None:
    """Stop a server started in a process group of its own: SIGTERM to the group (a server
    may checkpoint or finish its requests), SIGKILL when it is not gone within timeout."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def build_publication(
    sources: Sequence[Path],
    out: Path,
    base: str,
    backend: Backend | None = None,
    now: datetime | None = None,
) -> Outcome:
    """Build a publication with the default engine, into the backend's store."""
    store = backend.store if backend is not None else EMBEDDED
    return build(list(sources), out, BuildOptions(base=base, store=store), now=now)


@contextmanager
def serve_generated(
    folder: Path, entries: int, workers: int, **settings: object
) -> Iterator[Server]:
    """A generated library of `entries` entries (tests/fixtures/gen_listing.py) built in
    folder and served by `kgpub serve` with these workers and settings."""
    listing = folder / "library-generated.txt"
    subprocess.run(
        [sys.executable, str(FIXTURES / "gen_listing.py"), str(entries), "--out", str(listing)],
        check=True,
    )
    port = free_port()
    out = folder / "publication"
    build_publication([listing], out, f"http://127.0.0.1:{port}/")
    with Server(out, port, workers=workers, **settings) as running:
        yield running


class Server:
    """`kgpub serve` (gunicorn) in a child process on 127.0.0.1; a context manager. code: a
    folder holding another revision's graph/ and server/ to run instead of this checkout's (a
    benchmark's snapshot, by PYTHONPATH)."""

    def __init__(
        self, out: Path, port: int, workers: int = 2, code: Path | None = None, **settings: object
    ) -> None:
        self.out, self.port, self.workers, self.code = out, port, workers, code
        self.settings = settings
        self.base = f"http://127.0.0.1:{port}/"
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = out.parent / f"server-{port}.log"

    def __enter__(self) -> Server:
        cmd = [
            sys.executable,
            "-m",
            "server.cli",
            "serve",
            "--out",
            str(self.out),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            str(self.workers),
        ]
        for name, value in self.settings.items():
            option = "--" + name.replace("_", "-")
            if isinstance(BY_NAME[name].default, bool):  # a flag: --warm-up, --no-warm-up
                cmd.append(option if value else "--no-" + option[2:])
            else:
                cmd += [option, str(value)]
        env = {k: v for k, v in os.environ.items() if not k.startswith("KGPUB_")}
        if self.code is not None:
            env["PYTHONPATH"] = str(self.code)
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                cmd,
                cwd=self.code or ROOT,
                env=env,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        deadline = time.monotonic() + 120  # a busy machine starts gunicorn slowly
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(self.base + ".well-known/void", timeout=2):
                    return self
            except urllib.error.HTTPError:
                return self  # it answers
            except OSError:
                time.sleep(0.1)
        self.__exit__()
        raise RuntimeError(f"server did not start: {self.log.read_text()[-2000:]}")

    def __exit__(self, *exc: object) -> None:
        if self.proc:
            stop_group(self.proc, timeout=15)
