"""The processes of a running server, from /proc: its gunicorn workers and their query children."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import threading
import time
from pathlib import Path
from typing import IO

from live import Server


def children_of(pid: int) -> list[int]:
    """The processes whose parent is pid."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry))
    return sorted(found)


def workers(server: Server) -> list[int]:
    """The gunicorn worker processes of a server."""
    assert server.proc is not None
    return children_of(server.proc.pid)


def query_children(server: Server) -> list[int]:
    """The query processes of every worker of a server (graph/query.py)."""
    return [child for worker in workers(server) for child in children_of(worker)]


def state(pid: int) -> str:
    """A process's state letter (proc(5)): R running, S sleeping, T stopped, Z zombie; '' gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return ""


# Written to the terminal by the reader once the process has ended: what the process wrote
# comes before it, so the reader knows it has read everything.
_END = b"\x00kgpub-test-end\x00"


def on_terminal(
    argv: list[str], cwd: Path, env: dict[str, str], deadline: float = 300.0
) -> tuple[int, str, str]:
    """Run argv with its stderr on a pseudo-terminal and its stdout on a pipe; (status, stdout,
    everything the terminal got). The reader holds the terminal's other end open until it has
    read a mark it writes there after the process ended, so it neither stops at the process's
    end with output still in the terminal's buffers nor meets EIO (a closed terminal)."""
    leader, follower = pty.openpty()
    with subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=follower) as proc:
        assert proc.stdout is not None
        # stdout on a thread: a process blocked on a full pipe would never end.
        out: list[bytes] = []
        reader = threading.Thread(target=_drain, args=(proc.stdout, out), daemon=True)
        reader.start()
        shown, marked = b"", False
        until = time.monotonic() + deadline
        try:
            while _END not in shown:
                if time.monotonic() > until:
                    proc.kill()
                    raise AssertionError(f"{argv[:4]} still running after {deadline} s")
                if select.select([leader], [], [], 0.1)[0]:
                    shown += os.read(leader, 65536)
                elif proc.poll() is not None and not marked:
                    os.write(follower, _END)
                    marked = True
            status = proc.wait(timeout=deadline)
            reader.join(timeout=deadline)
        finally:
            os.close(leader)
            os.close(follower)
    return status, b"".join(out).decode(), shown.split(_END)[0].decode()


def _drain(stream: IO[bytes], into: list[bytes]) -> None:
    while block := stream.read(65536):
        into.append(block)
