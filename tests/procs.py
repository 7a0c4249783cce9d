"""The processes of a running server, from /proc: its gunicorn workers and their query children."""

from __future__ import annotations

import os
from pathlib import Path

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
