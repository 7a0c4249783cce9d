"""Blueprint 'pages' (filled in by its feature's issue)."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("pages", __name__)
