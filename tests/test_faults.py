"""Faults, each on real processes: a build killed (SIGKILL) in each of its phases (its dump
writer's and its index writer's processes dying with it), a rebuild swapped in under a stream
of requests, a full disk while building, a server worker that dies or hangs. The publication
served before stays served and intact, the next build succeeds, and no request fails or sees
half of one release and half of another.

Covered elsewhere, not repeated here: a build killed while writing its dumps, and the next one
cleaning up (tests/test_publication.py); a failed rebuild leaving the publication served, and
three clients through a rebuild (tests/test_serve_reload.py); a build killed during its load into
a SPARQL server (tests/test_store_atomic.py).
"""

from __future__ import annotations

import contextlib
import os
import pty
import re
import resource
import select
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fetch import Reply, get
from live import FIXTURES, ROOT, SEED, Server, build_publication, free_port, kgpub
from procs import children_of, state, workers

from graph.index import FULL_APART, FULL_NAME
from graph.store import VOID_FILE
from server.current import CHECK_INTERVAL

ENV = {k: v for k, v in os.environ.items() if not k.startswith("KGPUB_")}
A, B = (FIXTURES / "serve" / f"reload-{n}.txt" for n in ("a", "b"))


def snapshot(out: Path) -> dict[str, bytes]:
    """Where `current` is, and every file of the releases kept; not a build's work in progress
    (releases/.building-*) nor releases pruned by an earlier build (.pruned-*, being deleted)."""
    files = {"current ->": os.readlink(out / "current").encode()}
    for path in sorted((out / "releases").glob("[!.]*/**/*")):
        if path.is_file():
            files[str(path.relative_to(out))] = path.read_bytes()
    return files


def served(server: Server) -> dict[str, Reply]:
    """What a client is served now: the library, the scheme and a count by SPARQL."""
    paths = ["library", "library.nt", "categories.jsonld", "sparql?query=ASK%20%7B%3Fs%3Fp%3Fo%7D"]
    return {path: get(server.base + path) for path in paths}


def same(before: dict[str, Reply], after: dict[str, Reply]) -> bool:
    return all(
        before[k].status == after[k].status == 200 and before[k].body == after[k].body
        for k in before
    )


@pytest.fixture(scope="module")
def listing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4,000 generated entries: each phase of its build lasts long enough to be killed in."""
    path = tmp_path_factory.mktemp("faults") / "library-generated.txt"
    subprocess.run(
        [sys.executable, str(FIXTURES / "gen_listing.py"), "4000", "--out", str(path)], check=True
    )
    return path


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    port = free_port()
    out = tmp_path_factory.mktemp("faults-served") / "publication"
    build_publication([SEED], out, f"http://127.0.0.1:{port}/")
    with Server(out, port, workers=2) as running:
        yield running


def _build_on_terminal(
    out: Path, base: str, sources: list[Path], *options: str
) -> tuple[subprocess.Popen[bytes], int]:
    """`kgpub build` with its progress on a pseudo-terminal (the phases show there). The build
    runs at the lowest priority (nice 19), so that on a busy machine the test reading its
    progress is not left behind it: a build that finished before its reader woke up made the
    kill in a phase miss its moment."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        ["nice", "-n", "19", sys.executable, "-m", "server.cli", "build", *map(str, sources),
         "--out", str(out), "--base-uri", base, *options],
        cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL, stderr=slave,
    )  # fmt: skip
    os.close(slave)
    return proc, master


def _in_phase(update: str, phase: str, late: bool) -> bool:
    """Whether a progress update ("write: 1,200/3,000, 40/s") shows `phase` (with late: half
    done or more)."""
    if not update.startswith(phase + ":"):
        return False
    if not late:
        return True
    count = re.match(r" ([\d,]+)/([\d,]+)(, |$)", update[len(phase) + 1 :])
    return bool(count) and 2 * int(count[1].replace(",", "")) >= int(count[2].replace(",", ""))


def _kill_in(proc: subprocess.Popen[bytes], master: int, phase: str, late: bool, out: Path) -> str:
    """SIGKILL the build once it shows `phase` (with late: once it is half done, or once the
    release it builds holds its VoID, written when every dump is: the progress line shows a
    step at most every 0.2 s, and on a fast run the next one after the dumps is the last,
    shown a moment before the swap); return what the terminal showed."""
    seen = ""
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if select.select([master], [], [], 0.05)[0]:
                try:
                    seen += os.read(master, 65536).decode()
                except OSError:
                    break
            # Every update read so far, not only the last: one read may bring several, the
            # last of them already past the phase (an update is one short write to the
            # terminal, read whole).
            if any(_in_phase(u, phase, late) for u in seen.split("\r\x1b[K")) or (
                late and any((out / "releases").glob(f".building-*/{VOID_FILE}"))
            ):
                proc.send_signal(signal.SIGKILL)
                break
    finally:
        proc.wait()
        os.close(master)
    assert proc.returncode == -signal.SIGKILL, f"the build ended before its {phase}: {seen!r}"
    return seen


@pytest.mark.parametrize(
    ("phase", "late"),
    [("parse", False), ("convert", False), ("history", False), ("validate", False),
     ("write", False), ("write", True)],
    ids=["parse", "convert", "history", "validate", "write-start", "write-half-done"],
)  # fmt: skip
def test_a_build_killed_in_any_phase_leaves_the_publication_served_and_the_next_succeeds(
    server: Server, listing: Path, phase: str, late: bool
) -> None:
    before_files = snapshot(server.out)
    before = served(server)
    proc, master = _build_on_terminal(server.out, server.base, [listing])
    _kill_in(proc, master, phase, late, server.out)
    assert snapshot(server.out) == before_files  # the publication, byte for byte
    assert same(before, served(server))
    again = kgpub("build", str(A), "--out", str(server.out), "--base-uri", server.base, "-q")
    assert again.returncode == 0, again.stderr
    assert not list((server.out / "releases").glob(".building-*"))  # the killed one's, gone
    deadline = time.monotonic() + 30
    while "First report" not in get(server.base + "library.nt").body.decode():
        assert time.monotonic() < deadline
        time.sleep(0.2)
    build_publication([SEED], server.out, server.base)  # as it was, for the next test
    # A worker looks for a new release at most once a CHECK_INTERVAL: until then one may still
    # serve A, and the next test would take that for "before" (it failed so under load).
    time.sleep(CHECK_INTERVAL + 0.5)


def _writer(build: subprocess.Popen[bytes], function: bytes, opened: str) -> int | None:
    """The build's writer process running function (graph/publication.py _Apart), once it
    writes (a file of the build's folder whose path holds `opened` open)."""
    for child in children_of(build.pid):
        with contextlib.suppress(OSError):
            if function not in Path(f"/proc/{child}/cmdline").read_bytes():
                continue
            for fd in Path(f"/proc/{child}/fd").iterdir():
                with contextlib.suppress(OSError):
                    if "/.building-" in os.readlink(fd) and opened in os.readlink(fd):
                        return child
    return None


def test_a_build_killed_while_its_dump_writer_writes_takes_the_writer_with_it(
    tmp_path: Path, listing: Path
) -> None:
    """The writer of the Turtle and RDF/XML dumps, a process of its own, dies with a build
    killed by SIGKILL instead of writing on into the abandoned folder. It is stopped (SIGSTOP)
    before the build is killed, so that it cannot finish on its own however fast it is: only
    its parent's death can end it. (A publication of its own: the build must make most dump
    chunks anew, whatever the other tests left the module's server serving.)"""
    port = free_port()
    build_publication([SEED], tmp_path / "publication", f"http://127.0.0.1:{port}/")
    with Server(tmp_path / "publication", port, workers=1) as server:
        _kill_with_its_writer(server, listing, b"run_spooled", "/dumps/")


def test_a_build_killed_while_its_index_writer_writes_takes_the_writer_with_it(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The writer of an index written whole (graph/index.py run_full_write: a process of its
    own from FULL_APART entries; `--full`, so that the served release's index is not taken)
    dies with a build killed by SIGKILL, as the dump writer does."""
    many = tmp_path_factory.mktemp("faults-index") / "library-generated.txt"
    count = str(FULL_APART)
    generate = [sys.executable, str(FIXTURES / "gen_listing.py"), count, "--out", str(many)]
    subprocess.run(generate, check=True)
    port = free_port()
    build_publication([SEED], tmp_path / "publication", f"http://127.0.0.1:{port}/")
    with Server(tmp_path / "publication", port, workers=1) as server:
        _kill_with_its_writer(server, many, b"run_full_write", FULL_NAME, "--full")


def _kill_with_its_writer(
    server: Server, listing: Path, function: bytes, opened: str, *options: str
) -> None:
    before_files = snapshot(server.out)
    before = served(server)
    proc, master = _build_on_terminal(server.out, server.base, [listing], *options)
    writer = None
    try:
        deadline = time.monotonic() + 300
        while writer is None and proc.poll() is None and time.monotonic() < deadline:
            writer = _writer(proc, function, opened)
            time.sleep(0.01)
        assert writer is not None, f"the build ended before its writer ({function!r}) wrote"
        os.kill(writer, signal.SIGSTOP)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        deadline = time.monotonic() + 60  # the kernel's SIGKILL comes at once: generous
        while state(writer) not in ("", "Z"):  # gone, or dead and not yet reaped
            assert time.monotonic() < deadline, f"the writer lives on: {state(writer)}"
            time.sleep(0.05)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
        if writer is not None and state(writer) not in ("", "Z"):
            os.kill(writer, signal.SIGKILL)
    assert proc.returncode == -signal.SIGKILL
    assert snapshot(server.out) == before_files  # the publication, byte for byte
    assert same(before, served(server))


def test_a_rebuild_swapped_in_under_a_stream_of_requests_never_fails_or_mixes(
    tmp_path: Path,
) -> None:
    """Four clients ask for the library, an entry's category and a SPARQL count all through a
    rebuild and its swap: every answer is 200 and is, status, validators and bytes, exactly
    what the old release or the new one serves, never a mix."""
    port = free_port()
    out = tmp_path / "publication"
    build_publication([A], out, f"http://127.0.0.1:{port}/")
    paths = [
        "library", "library.nt", "categories.jsonld", "category/safeguarding.ttl",
        "sparql?query=SELECT%20(COUNT(*)%20AS%20%3Fn)%20%7B%3Fs%3Fp%3Fo%7D",
    ]  # fmt: skip

    def key(reply: Reply) -> tuple[int, str, str, bytes]:
        return reply.status, reply.header("ETag"), reply.header("Last-Modified"), reply.body

    with Server(out, port, workers=2) as server:
        old = {p: {key(get(server.base + p)) for _ in range(4)} for p in paths}
        seen: list[tuple[str, tuple[int, str, str, bytes]]] = []
        stop = threading.Event()

        def client() -> None:
            while not stop.is_set():
                for path in paths:
                    seen.append((path, key(get(server.base + path))))

        clients = [threading.Thread(target=client) for _ in range(4)]
        for thread in clients:
            thread.start()
        try:
            build_publication([B], out, server.base)
            time.sleep(2.5)  # past every worker's once-a-second look at `current`
        finally:
            stop.set()
            for thread in clients:
                thread.join()
        new = {p: {key(get(server.base + p)) for _ in range(4)} for p in paths}
    for path in paths:
        assert len(old[path]) == 1 and len(new[path]) == 1, path  # each release: one answer
        assert old[path] != new[path], path  # the rebuild changed each
    assert {status for _, (status, *_) in seen} == {200}
    for path, answer in seen:
        assert answer in old[path] | new[path], (path, answer[:3])
    assert any(a in new[p] for p, a in seen) and any(a in old[p] for p, a in seen)


# -- a full disk ----------------------------------------------------------------------------------
@contextlib.contextmanager
def small_filesystem(where: Path, size: str) -> Iterator[Path]:
    """A tmpfs of the given size mounted at `where` (root only, as CI runs), unmounted after."""
    where.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        pytest.skip(f"cannot mount a small filesystem here: {result.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def _limit_file_size(limit: int) -> None:
    """In the build's process: files may not grow past `limit` bytes (EFBIG, not SIGXFSZ)."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


@pytest.mark.parametrize("how", ["small-filesystem", "file-size-limit"])
def test_a_full_disk_fails_the_build_clearly_and_publishes_nothing(
    tmp_path: Path, listing: Path, how: str
) -> None:
    args = ["build", str(listing), "--base-uri", "http://127.0.0.1:5000/", "-q"]
    with contextlib.ExitStack() as stack:
        if how == "small-filesystem":
            root = stack.enter_context(small_filesystem(tmp_path / "disk", "3m"))
            preexec = None
        else:
            root, preexec = tmp_path, lambda: _limit_file_size(256 * 1024)
        out = root / "publication"
        first = kgpub("build", str(SEED), "--out", str(out), "-q")
        assert first.returncode == 0, first.stderr
        before = snapshot(out)
        full = subprocess.run(
            [sys.executable, "-m", "server.cli", *args, "--out", str(out)],
            cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300, check=False,
            preexec_fn=preexec,
        )  # fmt: skip
        assert full.returncode == 3, full.stderr
        assert full.stderr.startswith(f"kgpub: {out}: cannot write the publication: "), full.stderr
        assert "No space left on device" in full.stderr or "File too large" in full.stderr
        assert "Traceback" not in full.stderr and len(full.stderr.splitlines()) <= 2
        assert snapshot(out) == before
        assert not list((out / "releases").glob(".building-*"))
        if how == "small-filesystem":  # room again: the next build succeeds
            subprocess.run(["mount", "-o", "remount,size=512m", str(root)], check=True)
        again = kgpub(*args, "--out", str(out))
        assert again.returncode == 0, again.stderr
        assert os.readlink(out / "current") != before["current ->"].decode()
        shutil.rmtree(out)


# -- workers ---------------------------------------------------------------------------------
def _wait_for_workers(server: Server, count: int, gone: int) -> list[int]:
    deadline = time.monotonic() + 120
    while True:
        now = [w for w in workers(server) if state(w) not in ("", "Z")]
        if len(now) == count and gone not in now:
            return now
        assert time.monotonic() < deadline, now
        time.sleep(0.1)


def _all_answered(server: Server, seconds: float) -> list[int]:
    """Statuses of a client asking for pages for `seconds` (each within 10 s, or it fails)."""
    statuses = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for path in ("library", "categories.jsonld", "sparql?query=ASK%7B%7D"):
            statuses.append(get(server.base + path).status)
    return statuses


def test_a_worker_that_dies_is_replaced_while_the_others_serve(server: Server) -> None:
    before = workers(server)
    assert len(before) == 2
    os.kill(before[0], signal.SIGKILL)
    assert set(_all_answered(server, 2.0)) == {200}
    after = _wait_for_workers(server, 2, gone=before[0])
    assert before[1] in after
    assert set(_all_answered(server, 1.0)) == {200}


@pytest.mark.slow
def test_a_worker_that_hangs_is_killed_and_replaced_while_the_others_serve(
    server: Server,
) -> None:
    """A worker stopped dead (SIGSTOP: its event loop never beats again) stops taking
    connections; the other serves every request meanwhile, and gunicorn kills the silent one
    after its timeout (30 s) and starts another. Its query processes die with it (graph/
    parentage.py), not left running without a worker."""
    before = workers(server)
    children = children_of(before[0])
    assert children, "a worker starts its query processes"
    os.kill(before[0], signal.SIGSTOP)
    try:
        assert set(_all_answered(server, 5.0)) == {200}
        after = _wait_for_workers(server, 2, gone=before[0])
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(before[0], signal.SIGCONT)
    assert before[1] in after
    assert set(_all_answered(server, 1.0)) == {200}
    deadline = time.monotonic() + 60
    while any(state(child) not in ("", "Z") for child in children):
        assert time.monotonic() < deadline, "the killed worker's query processes live on"
        time.sleep(0.1)
