"""Blueprint 'harvest' (filled in by its feature's issue)."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("harvest", __name__)
