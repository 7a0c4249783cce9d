"""Blueprint 'sparql' (filled in by its feature's issue)."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("sparql", __name__)
