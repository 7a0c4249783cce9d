"""create_app: the Flask application serving one publication folder.

App-wide behaviour lives here: the mapping of request paths under the public base IRI's path
(behind a proxy), CORS on every response (with the preflight answer), and what every
template may use (the base path `root`, the library's title).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from flask import Flask, Response, request

from graph.errors import PublicationError
from graph.xmlchars import code_point, find_non_xml
from server import config, errors
from server.current import Current
from server.errors import HttpError
from server.representation import CORS, SECURITY
from server.views import dumps, harvest, pages, resources, search, sparql
from server.views.sparql import WARM_UP_KEY

log = logging.getLogger(__name__)

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
PREFLIGHT_HEADERS = "Accept, Accept-Language, If-None-Match, If-Modified-Since, Range"


class BasePath:
    """WSGI middleware: a request under the base IRI's path is routed by the rest of the path.

    With the base https://example.org/lib/ behind a proxy that forwards the path unchanged,
    /lib/entry/x is served as /entry/x with SCRIPT_NAME /lib; a proxy that strips the prefix
    (and the server's own address) reach the same views directly. The base comes from the
    current release, so a rebuild under another base needs no restart.
    """

    def __init__(self, wsgi: WsgiApp, current: Current) -> None:
        self.wsgi = wsgi
        self.current = current

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        try:
            prefix = self.current.get().wsgi_prefix
        except PublicationError:
            prefix = ""
        if prefix:
            path = environ.get("PATH_INFO", "")
            if path == prefix or path.startswith(prefix + "/"):
                environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + prefix
                environ["PATH_INFO"] = path[len(prefix) :] or "/"
        return self.wsgi(environ, start_response)


# Asked for by a worker itself as soon as it takes up a release, so that the first visitors
# do not wait while the lists behind them are read (1-2 s each at 100k entries): the landing
# page (the library's members, the counts per category), the sitemap, the change feed.
WARM_UP = (
    ("/", "text/html"),
    ("/", "text/turtle"),
    ("/sitemap.xml", ""),
    ("/changes", ""),
    ("/changes", "text/html"),
)


def _warm_up(app: Flask) -> None:
    """Ask for WARM_UP in a thread of its own (its requests start no query children)."""

    def run() -> None:
        client = app.test_client()
        for path, accept in WARM_UP:
            try:
                headers = {"Accept": accept} if accept else {}
                client.get(path, headers=headers, environ_overrides={WARM_UP_KEY: True})
            except Exception:  # a warm-up is worth nothing to crash for
                log.exception("warming up %s failed", path)

    threading.Thread(target=run, name="kgpub-warm-up", daemon=True).start()


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the app; test_config may hold "KGPUB" settings overrides and Flask keys."""
    app = Flask(__name__)
    test_config = dict(test_config or {})
    settings = config.load(overrides=test_config.pop("KGPUB", None))
    app.config["KGPUB"] = settings
    app.config.update(test_config)
    current = Current(
        Path(settings["out"]),
        int(settings["cache_mb"]) << 20,
        store=config.store_settings(settings),
    )
    if not app.testing and settings["warm_up"]:
        current.on_new = lambda release: _warm_up(app)
    app.extensions["kgpub"] = current
    app.wsgi_app = BasePath(app.wsgi_app, current)  # type: ignore[method-assign]
    errors.register(app)
    for view in (pages, resources, dumps, sparql, harvest, search):
        app.register_blueprint(view.bp)
    app.before_request(refuse_non_xml_parameters)
    app.after_request(cors)

    @app.context_processor
    def site() -> dict[str, Any]:
        try:
            release = current.get()
        except PublicationError:
            return {"root": request.script_root + "/", "site_title": "kgpub"}
        return {"root": release.base_path, "site_title": release.manifest.get("title", "kgpub")}

    return app


def refuse_non_xml_parameters() -> None:
    """A request parameter (query string or form) holding a character XML 1.0 cannot carry
    (a control character, U+FFFE, U+FFFF) is a 400: OAI-PMH repeats its arguments, the
    search its words, and no XML body may break (graph/xmlchars.py)."""
    if request.environ.get("QUERY_STRING"):
        _check_parameters(request.args.items(multi=True))
    if request.method == "POST" and request.mimetype == "application/x-www-form-urlencoded":
        _check_parameters(request.form.items(multi=True))


def _check_parameters(items: Iterable[tuple[str, str]]) -> None:
    for name, value in items:
        for text in (name, value):
            at = find_non_xml(text)
            if at >= 0:
                raise HttpError(
                    400,
                    f"the parameter {name[:40]!r} holds the character {code_point(text[at])}, "
                    "which cannot be written in XML; remove it",
                )


def cors(response: Response) -> Response:
    """CORS (Fetch standard) and the security headers (server/representation.py SECURITY) on
    every response a view did not set up itself; a preflight (OPTIONS with
    Access-Control-Request-Method) is told the methods of the route's Allow."""
    headers = response.headers
    if "Content-Security-Policy" not in headers:
        for key, value in SECURITY:
            headers[key] = value
    if "Access-Control-Allow-Origin" not in headers:
        for key, value in CORS:
            headers[key] = value
    if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
        if "Access-Control-Allow-Methods" not in headers:
            headers["Access-Control-Allow-Methods"] = headers.get("Allow", "GET, HEAD, OPTIONS")
        if "Access-Control-Allow-Headers" not in headers:
            requested = request.headers.get("Access-Control-Request-Headers", "")
            headers["Access-Control-Allow-Headers"] = requested or PREFLIGHT_HEADERS
        headers.setdefault("Access-Control-Max-Age", "86400")
    return response
