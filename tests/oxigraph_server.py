"""A private Oxigraph server on loopback (`oxigraph serve`, the `oxigraph` package of the test
extra), started once per session; and `remote_server`, the SPARQL server a store test module is
parametrized over (ids REMOTE_SERVERS), as the settings kgpub is given for it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from live import free_port, stop_group, wait_for_answer

from graph.store import StoreSettings

PACKAGE = "oxigraph"  # on PyPI, in pyproject.toml's test extra: the `oxigraph` command
# It opens an empty store in a fraction of a second; the deadline is for a busy CI machine, and
# the loop polls and returns as soon as the server answers.
START_DEADLINE = 60.0
REMOTE_SERVERS = ["virtuoso", "oxigraph-server"]  # the ids of remote_server's parameters


@dataclass(frozen=True)
class OxigraphServer:
    """Where a running private Oxigraph server answers. It has no accounts: every endpoint,
    updates included, is open to whoever reaches the loopback port."""

    folder: Path
    port: int
    user: str | None = None
    password: str | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def query_url(self) -> str:
        """The SPARQL 1.1 query endpoint."""
        return f"{self.base}/query"

    @property
    def update_url(self) -> str:
        """The SPARQL 1.1 Update endpoint."""
        return f"{self.base}/update"

    @property
    def data_url(self) -> str:
        """The Graph Store HTTP Protocol endpoint (indirect identification, ?graph=)."""
        return f"{self.base}/store"


class OxigraphProcess:
    """`oxigraph serve` on a store in `folder`; a context manager."""

    def __init__(self, binary: str, folder: Path) -> None:
        self.binary, self.folder = binary, folder
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = folder / "oxigraph.log"
        self.started_in = 0.0

    def __enter__(self) -> OxigraphServer:
        self.folder.mkdir(parents=True, exist_ok=True)
        server = OxigraphServer(self.folder, free_port())
        # --union-default-graph: a query's default graph is every graph of the server, as on
        # Virtuoso, unless the request names its dataset. The harder setting for kgpub, which
        # must confine every query by GRAPH or by default-graph-uri / named-graph-uri.
        command = [
            self.binary,
            "serve",
            "--location",
            str(self.folder / "store"),
            "--bind",
            f"127.0.0.1:{server.port}",
            "--union-default-graph",
        ]
        start = time.monotonic()
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                command, cwd=self.folder, stdout=log, stderr=log, start_new_session=True
            )
        try:
            self._wait(server, start + START_DEADLINE)
        except BaseException:
            self.__exit__()
            raise
        self.started_in = time.monotonic() - start
        return server

    def _wait(self, server: OxigraphServer, deadline: float) -> None:
        """Poll the query endpoint until it answers."""
        assert self.proc is not None
        probe = server.query_url + "?query=ASK%7B%7D"
        wait_for_answer(self.proc, probe, deadline, "oxigraph", self.tail)

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""

    def __exit__(self, *exc: object) -> None:
        if self.proc:
            stop_group(self.proc, timeout=30)


def find_binary() -> str | None:
    """The `oxigraph` command beside this interpreter (the venv's, not on PATH when the venv is
    not activated), else on PATH."""
    beside = Path(sys.executable).parent / "oxigraph"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("oxigraph")


@pytest.fixture(scope="session")
def oxigraph_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OxigraphServer]:
    """A private Oxigraph server for the session; skipped where it is not installed, failing
    in CI."""
    binary = find_binary()
    if binary is None:
        reason = f"oxigraph not installed (PyPI package {PACKAGE}, in the test extra)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    with OxigraphProcess(binary, tmp_path_factory.mktemp("oxigraph")) as server:
        yield server


@pytest.fixture(scope="module")
def remote_server(request: pytest.FixtureRequest) -> StoreSettings:
    """The settings kgpub is given for the remote server named by the parameter (indirect
    parametrization over REMOTE_SERVERS): its endpoints and credentials, if it has any."""
    name = request.param
    if name == "virtuoso":
        server = request.getfixturevalue("virtuoso")
    elif name == "oxigraph-server":
        server = request.getfixturevalue("oxigraph_server")
    else:
        raise ValueError(f"no remote server {name!r}: one of {REMOTE_SERVERS}")
    return StoreSettings(
        query=server.query_url,
        update=server.update_url,
        data=server.data_url,
        user=server.user,
        password=server.password,
    )
