"""Blueprint 'resources' (filled in by its feature's issue)."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("resources", __name__)
