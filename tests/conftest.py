"""Shared fixtures: the seed publication (session-scoped, read-only) and a live server on it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from live import SEED, Server, build_publication, free_port
from oxigraph_server import oxigraph_server, remote_server  # noqa: F401  (remote SPARQL servers)
from virtuoso import virtuoso  # noqa: F401  (the private Virtuoso, a session fixture)

from server.app import create_app


@pytest.fixture(scope="session")
def seed_port() -> int:
    return free_port()


@pytest.fixture(scope="session")
def seed_base(seed_port: int) -> str:
    return f"http://127.0.0.1:{seed_port}/"


@pytest.fixture(scope="session")
def seed_out(tmp_path_factory: pytest.TempPathFactory, seed_base: str) -> Path:
    """The seed library built once per session under the live server's own base IRI."""
    out = tmp_path_factory.mktemp("seed") / "publication"
    build_publication([SEED], out, seed_base)
    return out


@pytest.fixture(scope="session")
def live(seed_out: Path, seed_port: int) -> Iterator[Server]:
    """The real server (gunicorn) serving the seed publication on 127.0.0.1."""
    with Server(seed_out, seed_port) as server:
        yield server


@pytest.fixture
def app(seed_out: Path) -> Flask:
    return create_app({"KGPUB": {"out": str(seed_out)}, "TESTING": True})


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()
