"""create_app: the Flask application serving one publication folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Flask

from server import config, errors
from server.current import Current
from server.views import dumps, harvest, pages, resources, sparql


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the app; test_config may hold "KGPUB" settings overrides and Flask keys."""
    app = Flask(__name__)
    test_config = dict(test_config or {})
    settings = config.load(overrides=test_config.pop("KGPUB", None))
    app.config["KGPUB"] = settings
    app.config.update(test_config)
    app.extensions["kgpub"] = Current(Path(settings["out"]))
    errors.register(app)
    for view in (pages, resources, dumps, sparql, harvest):
        app.register_blueprint(view.bp)
    return app
