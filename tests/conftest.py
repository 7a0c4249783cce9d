"""Shared fixtures: the seed publication (session-scoped, read-only), the store backends, and a
live server on the seed for each backend.

Every test that uses `backend` (through `live`, or a module's own server) runs once per store
backend of BACKENDS: the embedded store, a private Virtuoso, a private Oxigraph server. A test
about the embedded store's own machinery is marked `embedded_only(reason)` and runs there
only. The backend is a session-scoped parameter, so pytest runs every test of one backend
before the next: one build and one `live` server per backend, one at a time on the seed's port.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from browser import chromium, desktop, phone  # noqa: F401  (the browser tests' fixtures)
from flask import Flask
from flask.testing import FlaskClient
from live import BACKENDS, SEED, Backend, Server, build_publication, free_port
from oxigraph_server import oxigraph_server, remote_server  # noqa: F401  (remote SPARQL servers)
from virtuoso import virtuoso  # noqa: F401  (the private Virtuoso, a session fixture)

from graph.publication import read_manifest
from graph.store import StoreSettings
from server.app import create_app

VIRTUOSO_RESULT_CAP = 5_000  # kgpub's --query-max-results over the packaged Virtuoso


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "embedded_only(reason): a test of the embedded store's own machinery, run on the "
        "embedded backend only (the reason says why)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The long fuzz runs (marked fuzz) only when asked for: `pytest -m fuzz`."""
    if "fuzz" in (config.getoption("markexpr") or ""):
        return
    skip = pytest.mark.skip(reason="a long fuzz run: pytest -m fuzz")
    for item in items:
        if item.get_closest_marker("fuzz") is not None:
            item.add_marker(skip)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize every test that uses `backend` over BACKENDS (only "embedded" for a test
    marked embedded_only, whose reason is required)."""
    if "backend" not in metafunc.fixturenames:
        return
    marker = metafunc.definition.get_closest_marker("embedded_only")
    if marker is not None and not (marker.args or marker.kwargs.get("reason")):
        raise pytest.UsageError(f"{metafunc.definition.nodeid}: embedded_only needs a reason")
    names = ["embedded"] if marker is not None else BACKENDS
    metafunc.parametrize("backend", names, indirect=True, scope="session")


@pytest.fixture(scope="session")
def backend(request: pytest.FixtureRequest) -> Backend:
    """The store backend named by the parameter: what `kgpub build` and `kgpub serve` are
    given for it (a remote server is started on first use, skipped where not installed)."""
    name = request.param
    if name == "embedded":
        return Backend(name)
    options: dict[str, object] = {}
    if name == "virtuoso":
        server = request.getfixturevalue("virtuoso")
        # As packaged it cuts answers at 10,000 rows (ResultSetMaxRows): kgpub's cap below it,
        # as the README asks, so that a query over the cap gets kgpub's own answer.
        options["query_max_results"] = VIRTUOSO_RESULT_CAP
    elif name == "oxigraph-server":
        server = request.getfixturevalue("oxigraph_server")
    else:
        raise ValueError(f"no backend {name!r}: one of {BACKENDS}")
    store = StoreSettings(
        query=server.query_url,
        update=server.update_url,
        data=server.data_url,
        user=server.user,
        password=server.password,
    )
    return Backend(name, store, options)


@pytest.fixture(scope="session")
def seed_port() -> int:
    return free_port()


@pytest.fixture(scope="session")
def seed_base(seed_port: int) -> str:
    return f"http://127.0.0.1:{seed_port}/"


@pytest.fixture(scope="session")
def seed_out(tmp_path_factory: pytest.TempPathFactory, seed_base: str) -> Path:
    """The seed library built once per session under the live server's own base IRI, in the
    embedded store: the oracle of every backend (tests read its store directly)."""
    out = tmp_path_factory.mktemp("seed") / "publication"
    build_publication([SEED], out, seed_base)
    return out


@pytest.fixture(scope="session")
def live_out(
    backend: Backend, seed_out: Path, seed_base: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    """The publication `live` serves: the seed itself on the embedded store; else the seed
    built into the backend's server under the same base IRI and build time, so that its
    files are the seed's and its answers those of the seed's store."""
    if not backend.is_remote:
        yield seed_out
        return
    built = datetime.fromisoformat(str(read_manifest(seed_out / "current")["built"]))
    out = tmp_path_factory.mktemp(f"seed-{backend.name}") / "publication"
    build_publication([SEED], out, seed_base, backend, now=built)
    yield out
    backend.drop_graphs(out)


@pytest.fixture(scope="session")
def live(backend: Backend, live_out: Path, seed_port: int) -> Iterator[Server]:
    """The real server (gunicorn) serving the seed publication on 127.0.0.1 at the seed's
    base IRI, its graph in the backend's store."""
    with Server(live_out, seed_port, **backend.serve()) as server:
        yield server


@pytest.fixture
def app(seed_out: Path) -> Flask:
    return create_app({"KGPUB": {"out": str(seed_out)}, "TESTING": True})


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()
