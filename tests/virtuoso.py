"""A private Virtuoso on loopback for the tests: Debian's packaged ini rewritten into a temporary
folder, its own SQL and HTTP ports, started once per session and stopped afterwards."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from live import free_port, stop_group, wait_for_answer

PACKAGED_INI = Path("/etc/virtuoso-opensource-7/virtuoso.ini")
PACKAGE = "virtuoso-opensource"
# The first start creates the database and loads the packaged VADs: a few seconds here, more on
# a busy CI machine. The deadline is generous; the loop polls and returns as soon as it answers.
START_DEADLINE = 120.0
# Small enough for a test machine: each buffer is 8 KiB (the packaged ini asks 10,000 / 6,000).
BUFFERS = 2000
DIRTY_BUFFERS = 1200


@dataclass(frozen=True)
class Virtuoso:
    """Where a running private Virtuoso answers, with its administrator account (dba/dba).

    The packaged accounts are what kgpub needs, unchanged: dba updates through /sparql-auth and
    /sparql-graph-crud-auth (digest) without any grant, and the anonymous SPARQL account behind
    /sparql holds SPARQL_SELECT only (tests/test_store_protocol.py checks both)."""

    folder: Path
    http_port: int
    sql_port: int
    user: str = "dba"
    password: str = "dba"

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def query_url(self) -> str:
        """The anonymous, read-only SPARQL endpoint (the SQL account SPARQL)."""
        return f"{self.base}/sparql"

    @property
    def update_url(self) -> str:
        """The SPARQL endpoint behind digest authentication (queries and updates)."""
        return f"{self.base}/sparql-auth"

    @property
    def data_url(self) -> str:
        """The Graph Store HTTP Protocol endpoint behind digest authentication."""
        return f"{self.base}/sparql-graph-crud-auth"

    def isql(self, sql: str, timeout: float = 120) -> str:
        """Run SQL statements (each ending with ';') through isql-vt on the SQL port; its output."""
        isql = shutil.which("isql-vt") or shutil.which("isql")
        if isql is None:
            raise RuntimeError(f"isql-vt not found (Debian package {PACKAGE})")
        done = subprocess.run(
            [isql, f"127.0.0.1:{self.sql_port}", self.user, self.password],
            input=sql if sql.rstrip().endswith(";") else sql + ";",
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        # isql exits 0 even when a statement fails; its errors start with "*** Error".
        if done.returncode != 0 or "*** Error" in done.stdout + done.stderr:
            raise RuntimeError(f"isql failed: {done.stdout[-2000:]}{done.stderr[-2000:]}")
        return done.stdout


def write_ini(packaged: str, folder: Path, http_port: int, sql_port: int) -> str:
    """The packaged virtuoso.ini with every path in `folder` and both ports on 127.0.0.1."""
    settings: dict[str, dict[str, str]] = {
        "Database": {
            "DatabaseFile": str(folder / "virtuoso.db"),
            "ErrorLogFile": str(folder / "virtuoso.log"),
            "LockFile": str(folder / "virtuoso.lck"),
            "TransactionFile": str(folder / "virtuoso.trx"),
            "xa_persistent_file": str(folder / "virtuoso.pxa"),
        },
        "TempDatabase": {
            "DatabaseFile": str(folder / "virtuoso-temp.db"),
            "TransactionFile": str(folder / "virtuoso-temp.trx"),
        },
        "Parameters": {
            "ServerPort": f"127.0.0.1:{sql_port}",
            "DirsAllowed": f"., {folder}, /usr/share/virtuoso-opensource-7/vad",
            "NumberOfBuffers": str(BUFFERS),
            "MaxDirtyBuffers": str(DIRTY_BUFFERS),
        },
        "HTTPServer": {"ServerPort": f"127.0.0.1:{http_port}"},
        "URIQA": {"DefaultHost": f"127.0.0.1:{http_port}"},
    }
    missing = {(s, k) for s, keys in settings.items() for k in keys}
    out: list[str] = []
    section = ""
    for line in packaged.splitlines():
        header = re.match(r"\s*\[([^\]]+)\]", line)
        if header:
            section = header.group(1).strip()
        else:
            key = re.match(r"\s*([A-Za-z_][\w]*)\s*=", line)
            if key and key.group(1) in settings.get(section, {}):
                name = key.group(1)
                line = f"{name} = {settings[section][name]}"
                missing.discard((section, name))
        out.append(line)
    if missing:
        # A packaged ini without one of these keys would leave a path or a port on the system's.
        raise RuntimeError(f"packaged virtuoso.ini lacks {sorted(missing)}")
    return "\n".join(out) + "\n"


class VirtuosoProcess:
    """`virtuoso-t +foreground` on a private ini in `folder`; a context manager."""

    def __init__(self, binary: str, folder: Path) -> None:
        self.binary, self.folder = binary, folder
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = folder / "virtuoso-stdout.log"
        self.started_in = 0.0

    def __enter__(self) -> Virtuoso:
        self.folder.mkdir(parents=True, exist_ok=True)
        server = Virtuoso(self.folder, free_port(), free_port())
        ini = self.folder / "virtuoso.ini"
        ini.write_text(
            write_ini(PACKAGED_INI.read_text(), self.folder, server.http_port, server.sql_port)
        )
        start = time.monotonic()
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [self.binary, "+configfile", str(ini), "+foreground"],
                cwd=self.folder,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        try:
            self._wait(server, start + START_DEADLINE)
        except BaseException:
            self.__exit__()
            raise
        self.started_in = time.monotonic() - start
        return server

    def _wait(self, server: Virtuoso, deadline: float) -> None:
        """Poll the query endpoint until it answers."""
        assert self.proc is not None
        probe = server.query_url + "?query=ASK%7B%7D"
        wait_for_answer(self.proc, probe, deadline, "virtuoso-t", self.tail)

    def tail(self) -> str:
        logs = [self.log, self.folder / "virtuoso.log"]
        return "\n".join(p.read_text(errors="replace")[-2000:] for p in logs if p.exists())

    def __exit__(self, *exc: object) -> None:
        if self.proc:
            # SIGTERM makes Virtuoso checkpoint and exit; a stuck one is killed.
            stop_group(self.proc, timeout=30)


def find_binary() -> str | None:
    return shutil.which("virtuoso-t")


@pytest.fixture(scope="session")
def virtuoso(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Virtuoso]:
    """A private Virtuoso for the session; skipped where it is not installed, failing in CI."""
    binary = find_binary()
    if binary is None or not PACKAGED_INI.exists():
        reason = f"virtuoso-t not installed (Debian package {PACKAGE}; .ci/run installs it)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    with VirtuosoProcess(binary, tmp_path_factory.mktemp("virtuoso")) as server:
        yield server
