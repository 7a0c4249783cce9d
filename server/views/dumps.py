"""Blueprint 'dumps' (filled in by its feature's issue)."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("dumps", __name__)
