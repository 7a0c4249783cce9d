"""`server` may import `graph`; `graph` never imports Flask, click, werkzeug or `server`; and
only graph/store (the store seam) opens a pyoxigraph.Store or speaks to a SPARQL server."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GRAPH = ROOT / "graph"
FORBIDDEN = {"flask", "werkzeug", "click", "server", "gunicorn", "jinja2"}
PRODUCT = sorted([*GRAPH.rglob("*.py"), *(ROOT / "server").rglob("*.py")])
# pyoxigraph.Store (or Store imported from pyoxigraph), and the HTTP client modules a store
# backend would use.
STORE = re.compile(r"pyoxigraph\.Store\b|from pyoxigraph import[^\n]*\bStore\b")
CHECK_CLIENT = ROOT / "server" / "check" / "client.py"
HTTP = {"urllib.request", "http.client", "requests", "httpx", "SPARQLWrapper"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            imported.add(node.module)
    return imported


@pytest.mark.parametrize("path", sorted(GRAPH.rglob("*.py")), ids=lambda p: p.name)
def test_graph_module_does_not_import_the_web_layer(path: Path) -> None:
    assert not {name.split(".")[0] for name in _imports(path)} & FORBIDDEN


@pytest.mark.parametrize("path", PRODUCT, ids=lambda p: str(p.relative_to(ROOT)))
def test_only_the_store_seam_touches_a_store(path: Path) -> None:
    if path.parent == GRAPH / "store":
        return
    assert not STORE.search(path.read_text()), "open stores through graph/store"
    if path == CHECK_CLIENT:
        return  # `kgpub check` speaks HTTP to a deployment, exactly as its users do
    assert not _imports(path) & HTTP, "speak to SPARQL servers through graph/store"
