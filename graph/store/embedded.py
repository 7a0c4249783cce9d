"""Opening a release's embedded Oxigraph store: light enough for the query children, which
must not load rdflib or the web layer (tests/test_query.py)."""

from __future__ import annotations

from pathlib import Path

import pyoxigraph

from graph.errors import PublicationError

Store = pyoxigraph.Store  # for annotations elsewhere: only graph/store opens one


def read_only(path: Path | str) -> pyoxigraph.Store:
    """A release's store opened read-only (any number of processes may hold it open);
    OSError or RuntimeError (RocksDB: Corruption) when it cannot be (the query children
    report it with the query)."""
    return pyoxigraph.Store.read_only(str(path))


def open_read_only(path: Path | str) -> pyoxigraph.Store:
    """read_only, with PublicationError for a store that cannot be opened."""
    try:
        return read_only(path)
    except (OSError, RuntimeError) as exc:  # RocksDB's Corruption is a RuntimeError
        raise PublicationError(f"{path}: cannot open the store: {exc}") from exc
