"""Opening a release's embedded Oxigraph store: light enough for the query children, which
must not load rdflib or the web layer (tests/test_query.py)."""

from __future__ import annotations

import sys
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


def probe(argv: list[str]) -> int:
    """`python -m graph.store.embedded STORE LIBRARY_IRI`: exit 0 when the store opens
    read-only and holds the library's own triples, else a reason on stderr and exit 1. Run in
    a process of its own by `kgpub serve` (server/current.py check_publication), so that the
    server's master, which forks the workers, never holds a store open."""
    path, library = argv
    try:
        store = read_only(path)
        found = store.quads_for_pattern(pyoxigraph.NamedNode(library), None, None)
        if next(iter(found), None) is None:
            print("the store does not hold this release's library", file=sys.stderr)
            return 1
    except Exception as exc:  # a probe: whatever stops it is the answer (RocksDB: RuntimeError)
        print(f"the store cannot be read ({type(exc).__name__}: {exc})", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(probe(sys.argv[1:]))
