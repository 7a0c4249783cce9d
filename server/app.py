"""create_app: the Flask application serving one publication folder.

App-wide behaviour lives here: the mapping of request paths under the public base IRI's path
(behind a proxy), CORS on every response (with the preflight answer), and what every
template may use (the base path `root`, the library's title).
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from flask import Flask, Response, current_app, request
from werkzeug.exceptions import RequestEntityTooLarge

from graph.errors import PublicationError
from graph.xmlchars import code_point, find_non_xml
from server import config, errors
from server.current import Current
from server.errors import HttpError
from server.representation import CORS, SECURITY
from server.views import browse, dumps, harvest, openapi, pages, resources, search, sparql

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


class CappedInput:
    """wsgi.input of a body sent without Content-Length (chunked): reading past the limit
    raises 413. Werkzeug trusts a server that marks its input terminated (gunicorn does, for
    chunked bodies): its MAX_CONTENT_LENGTH wrapper stops at the limit and the view gets the
    body cut there, without an error."""

    def __init__(self, stream: Any, limit: int) -> None:
        self.stream = stream
        self.limit = limit
        self.count = 0

    def _take(self, data: bytes) -> bytes:
        self.count += len(data)
        # Werkzeug's own wrapper reads up to the limit and no further, taking a longer body
        # as cut there: at the limit, one more byte tells.
        at_limit = self.count == self.limit and data and self.stream.read(1)
        if self.count > self.limit or at_limit:
            raise RequestEntityTooLarge(f"the request body is larger than {self.limit:,} bytes")
        return data

    def _room(self, size: int | None) -> int:
        room = self.limit + 1 - self.count  # one byte more tells a body over the limit
        return room if size is None or size < 0 else min(size, room)

    def read(self, size: int | None = -1) -> bytes:
        return self._take(self.stream.read(self._room(size)))

    def readline(self, size: int | None = -1) -> bytes:
        return self._take(self.stream.readline(self._room(size)))

    def __iter__(self) -> Iterator[bytes]:
        while line := self.readline():
            yield line


class BodyLimit:
    """WSGI middleware: a body without Content-Length is read through CappedInput."""

    def __init__(self, wsgi: WsgiApp, limit: int) -> None:
        self.wsgi = wsgi
        self.limit = limit

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if not environ.get("CONTENT_LENGTH") and "wsgi.input" in environ:
            environ["wsgi.input"] = CappedInput(environ["wsgi.input"], self.limit)
        return self.wsgi(environ, start_response)


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the app; test_config may hold "KGPUB" settings overrides and Flask keys."""
    app = Flask(__name__)
    test_config = dict(test_config or {})
    settings = config.load(overrides=test_config.pop("KGPUB", None))
    app.config["KGPUB"] = settings
    # Werkzeug refuses a body past this as it reads it (413), chunked ones too; a declared
    # Content-Length past it is refused before anything is read (refuse_large_body).
    app.config["MAX_CONTENT_LENGTH"] = app.config["MAX_FORM_MEMORY_SIZE"] = settings["max_body"]
    app.config.update(test_config)
    current = Current(
        Path(settings["out"]),
        int(settings["cache_mb"]) << 20,
        store=config.store_settings(settings),
    )
    app.extensions["kgpub"] = current
    app.wsgi_app = BasePath(  # type: ignore[method-assign]
        BodyLimit(app.wsgi_app, int(settings["max_body"])), current
    )
    errors.register(app)
    for view in (pages, resources, dumps, sparql, harvest, search, browse, openapi):
        app.register_blueprint(view.bp)
    app.before_request(refuse_large_body)
    app.before_request(refuse_non_xml_parameters)
    app.after_request(cors)
    _prepare(app)

    @app.context_processor
    def site() -> dict[str, Any]:
        try:
            release = current.get()
        except PublicationError:
            return {"root": request.script_root + "/", "site_title": "kgpub"}
        return {"root": release.base_path, "site_title": release.manifest.get("title", "kgpub")}

    return app


def refuse_large_body() -> None:
    """A body announced larger than --max-body is refused before a byte of it is read: a
    view reads forms and queries into memory. (One without Content-Length, chunked, is cut
    off by Werkzeug at the same size, MAX_CONTENT_LENGTH.)"""
    length = request.content_length
    limit = int(current_app.config["KGPUB"]["max_body"])
    if length is not None and length > limit:
        raise HttpError(413, f"the request body is larger than {limit:,} bytes")


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


def _prepare(app: Flask) -> None:
    """What a request may need whatever the library: every template compiled and the modules
    that read a release imported, once, in the process that makes the app (gunicorn's master,
    whose workers are forked from it), so that no worker's first request pays for them.
    Nothing of a publication is read here: a release's files are opened by the first request
    that needs them, and read a page at a time."""
    for name in app.jinja_env.list_templates():
        app.jinja_env.get_template(name)
    # Imported by the functions that open a release (graph/store/__init__.py says why).
    importlib.import_module("graph.ledger")
    importlib.import_module("graph.store.oxigraph")
    importlib.import_module("graph.store.sparql")


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
