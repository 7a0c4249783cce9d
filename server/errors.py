"""One table from errors to HTTP status, one body shape per format (HTML page, JSON, text)."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

from flask import Flask, Response, render_template, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from graph.errors import (
    EnrichmentUnavailable,
    KgpubError,
    PublicationError,
    QueryError,
    QueryOverloaded,
    QueryRefused,
    QuerySyntaxError,
    QueryTimeout,
    QueryTooLarge,
    StoreError,
    StoreFailed,
)
from server.conneg import NotAcceptable, UnknownFormatError, UnknownSuffixError, negotiate

log = logging.getLogger(__name__)

# Domain error -> (status, short title). The first matching class wins (most specific first).
STATUS: tuple[tuple[type[KgpubError], int, str], ...] = (
    (NotAcceptable, 406, "Not Acceptable"),
    (UnknownSuffixError, 404, "Not Found"),
    (UnknownFormatError, 400, "Bad Request"),
    (QuerySyntaxError, 400, "Bad Request"),
    (QueryRefused, 400, "Bad Request"),
    (QueryTooLarge, 413, "Content Too Large"),
    (QueryTimeout, 503, "Service Unavailable"),
    (QueryOverloaded, 503, "Service Unavailable"),
    (QueryError, 400, "Bad Request"),
    (PublicationError, 503, "Service Unavailable"),
    (EnrichmentUnavailable, 503, "Service Unavailable"),
    (StoreFailed, 502, "Bad Gateway"),  # RFC 9110 §15.6.3: the store answered with an error
    (StoreError, 503, "Service Unavailable"),
)
# Seconds to wait before trying again (RFC 9110 §10.2.3), with each 503; the first matching
# class wins (None: no Retry-After).
RETRY_AFTER: tuple[tuple[type[KgpubError], str | None], ...] = (
    (QueryTimeout, "30"),
    (QueryOverloaded, "5"),
    (PublicationError, "30"),
    (StoreFailed, None),
    (StoreError, "30"),
)
ERROR_TYPES = ("application/json", "text/html", "text/plain")


class HttpError(KgpubError):
    """An HTTP error raised by a view: status, message, extra headers, and what the client may
    have meant ((href, label) pairs: a 404's guesses, shown on the HTML page)."""

    def __init__(
        self,
        status: int,
        message: str,
        headers: dict[str, str] | None = None,
        suggestions: Sequence[tuple[str, str]] = (),
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}
        self.suggestions = tuple(suggestions)


def retry_after(exc: KgpubError) -> str | None:
    """The Retry-After value that goes with a domain error's status, if any."""
    for cls, seconds in RETRY_AFTER:
        if isinstance(exc, cls):
            return seconds
    return None


def status_of(exc: KgpubError) -> tuple[int, str]:
    """The HTTP status and title for a domain error."""
    for cls, status, title in STATUS:
        if isinstance(exc, cls):
            return status, title
    return 500, "Internal Server Error"


# An absolute file path (not the path of an IRI: that follows a host, a port or a '/').
_FILE_PATH = re.compile(r"(?<![\w:/.~-])/[^\s:'\"<>()]+")


def public(message: str) -> str:
    """A message without the server's file paths ('/srv/pub/releases/x/store: cannot open
    the store: …'): where the publication lives is for the operator, whose log has it."""
    if "/" not in message:
        return message
    return _FILE_PATH.sub("…", message).removeprefix("…: ")


def error_response(
    status: int,
    title: str,
    message: str,
    headers: dict[str, str] | None = None,
    suggestions: Sequence[tuple[str, str]] = (),
) -> Response:
    """An error body in the format the client prefers: HTML for browsers, else JSON or text."""
    message = public(message)
    accept = request.headers.get("Accept")
    try:
        # RDF and SPARQL clients get JSON unless they ask for HTML or text.
        media_type = negotiate(accept, ERROR_TYPES)
    except NotAcceptable:
        media_type = "application/json"
    if media_type == "text/html":
        body = render_template(
            "error.html", status=status, title=title, message=message, suggestions=suggestions
        )
    elif media_type == "text/plain":
        body = f"{status} {title}: {message}\n"
    else:
        body = json.dumps({"status": status, "error": title, "message": message}) + "\n"
    response = Response(body, status=status, content_type=f"{media_type}; charset=utf-8")
    response.headers["Vary"] = "Accept"
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def register(app: Flask) -> None:
    """Install the error handlers: domain errors, HTTP errors, last-resort 500."""

    @app.errorhandler(HttpError)
    def _http_error(exc: HttpError) -> Response:
        return error_response(
            exc.status, HTTPStatus(exc.status).phrase, exc.message, exc.headers, exc.suggestions
        )

    @app.errorhandler(KgpubError)
    def _domain_error(exc: KgpubError) -> Response:
        status, title = status_of(exc)
        seconds = retry_after(exc)
        headers = {"Retry-After": seconds} if seconds else {}
        message = str(exc)
        if isinstance(exc, PublicationError):
            log.warning("publication error on %s %s: %s", request.method, request.path, exc)
        if isinstance(exc, StoreError):
            # The store's address and its own words are for the operator, not the public.
            log.warning("store error on %s %s: %s", request.method, request.path, exc)
            message = "the graph store is unavailable; try again later"
            if isinstance(exc, StoreFailed):  # its reason, without the store's address
                message = f"the graph store failed to answer: {exc.message}"
        return error_response(status, title, message, headers)

    @app.errorhandler(HTTPException)
    def _werkzeug_error(exc: HTTPException) -> Response:
        headers: dict[str, str] = {}
        if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
            headers["Allow"] = ", ".join(sorted(exc.valid_methods))
        return error_response(exc.code or 500, exc.name, exc.description or exc.name, headers)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "Internal Server Error", "the server failed; see its log")


def json_body(data: Any) -> str:
    """Compact JSON for API bodies."""
    return json.dumps(data, ensure_ascii=False)
