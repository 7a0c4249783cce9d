"""`server` may import `graph`; `graph` never imports Flask, click, werkzeug or `server`."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

GRAPH = Path(__file__).resolve().parent.parent / "graph"
FORBIDDEN = {"flask", "werkzeug", "click", "server", "gunicorn", "jinja2"}


@pytest.mark.parametrize("path", sorted(GRAPH.glob("*.py")), ids=lambda p: p.name)
def test_graph_module_does_not_import_the_web_layer(path: Path) -> None:
    tree = ast.parse(path.read_text(), str(path))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            imported.add(node.module.split(".")[0])
    assert not imported & FORBIDDEN
