"""Blueprint 'openapi': /openapi.json, an OpenAPI 3.1 description of the parts of kgpub that
are an API rather than linked data: SPARQL, OAI-PMH, the change feed, the paged collections
and the search.

The RDF resources are described by VoID and their Link headers; this document is for the
programs that speak OpenAPI (client generators, fuzzers: tests/test_http_fuzz.py runs
schemathesis against it). The landing page links it with `rel="service-desc"` (RFC 8631).
"""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Response, current_app, request

from graph.formats import (
    HTML_MEDIA_TYPE,
    RDF_FORMATS,
    SPARQL_QUERY,
    SPARQL_RESULTS_CSV,
    SPARQL_RESULTS_JSON,
    SPARQL_RESULTS_TSV,
    SPARQL_RESULTS_XML,
)
from server.current import Release
from server.representation import Representation, make_etag, respond

bp = Blueprint("openapi", __name__)

OPENAPI_MEDIA_TYPE = "application/vnd.oai.openapi+json"  # RFC 9512 (the JSON form)
PATH = "openapi.json"
JSON = "application/json"
AS_MEDIA_TYPE = "application/activity+json"
FORM = "application/x-www-form-urlencoded"

_STRING: dict[str, Any] = {"type": "string"}
_ANY_TEXT: dict[str, Any] = {"schema": _STRING}
# One body shape per format for every error (server/errors.py).
_ERROR_BODY: dict[str, Any] = {
    "type": "object",
    "required": ["status", "error", "message"],
    "properties": {
        "status": {"type": "integer"},
        "error": {"type": "string"},
        "message": {"type": "string"},
    },
}
_ERROR = {
    "content": {
        JSON: {"schema": _ERROR_BODY},
        HTML_MEDIA_TYPE: _ANY_TEXT,
        "text/plain": _ANY_TEXT,
    }
}
_RDF_CONTENT = {f.media_type: _ANY_TEXT for f in RDF_FORMATS}


def _errors(*statuses: int) -> dict[str, Any]:
    """Error responses, each in the negotiated error format."""
    descriptions = {
        400: "a bad parameter",
        404: "no such resource or page",
        405: "a method the path does not allow",
        406: "no acceptable representation",
        413: "the request is too large",
        414: "the URL is too long",
        503: "busy or over a budget; try again after Retry-After",
    }
    found: dict[str, Any] = {}
    for status in statuses:
        response: dict[str, Any] = {"description": descriptions[status], **_ERROR}
        if status == 503:
            response["headers"] = {
                "Retry-After": {"schema": {"type": "integer", "minimum": 0}, "required": False}
            }
        found[str(status)] = response
    return found


def _param(name: str, schema: dict[str, Any], where: str = "query", **extra: Any) -> Any:
    return {"name": name, "in": where, "schema": schema, **extra}


_FORMAT = _param(
    "format",
    _STRING,
    description="a representation by its key, suffix or media type; overrides Accept",
)
_SPARQL_RESULTS = {
    "description": "the results: SELECT and ASK as SPARQL results, CONSTRUCT and DESCRIBE as "
    "RDF; without a query, the service description (RDF) or the query page (HTML)",
    "content": {
        SPARQL_RESULTS_JSON: {"schema": {"type": "object", "required": ["head"]}},
        SPARQL_RESULTS_XML: _ANY_TEXT,
        SPARQL_RESULTS_CSV: _ANY_TEXT,
        SPARQL_RESULTS_TSV: _ANY_TEXT,
        **_RDF_CONTENT,
        HTML_MEDIA_TYPE: _ANY_TEXT,
    },
}
_GRAPHS = [
    _param("default-graph-uri", {"type": "array", "items": _STRING}, style="form", explode=True),
    _param("named-graph-uri", {"type": "array", "items": _STRING}, style="form", explode=True),
]
_SPARQL_ERRORS = _errors(400, 406, 413, 503)
_OAI_PARAMS = {
    name: _STRING
    for name in ("verb", "identifier", "metadataPrefix", "from", "until", "set", "resumptionToken")
}
_OAI_OK = {
    "description": "an OAI-PMH response (protocol errors such as badVerb are 200 with <error>)",
    "content": {"text/xml": _ANY_TEXT},
}
_POSITION = {"type": "integer", "minimum": 0, "maximum": 2**63 - 1}
_PAGE = {"type": "integer", "minimum": 1, "maximum": 2**63 - 1}
_COLLECTION_PAGE = {
    "description": "one page of the collection: a hydra:Collection with its "
    "PartialCollectionView (first, previous, next, last also in Link)",
    "content": {**_RDF_CONTENT, HTML_MEDIA_TYPE: _ANY_TEXT},
}
_KEYSET = [
    _param("after", _STRING, description="the page after this entry (its IRI's last segment)"),
    _param("before", _STRING, description="the page before this entry"),
    _FORMAT,
]


def document(base: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document of a publication served under base."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "kgpub: SPARQL, OAI-PMH, change feed, collections and search",
            "version": "1",
            "description": "The API parts of a kgpub publication. Every resource IRI of the "
            "data also dereferences with content negotiation: see the VoID description at "
            f"{base}.well-known/void.",
        },
        "servers": [{"url": base.rstrip("/")}],
        "paths": {
            "/sparql": {
                "get": {
                    "summary": "SPARQL 1.1 Protocol query by GET (read-only endpoint)",
                    "parameters": [
                        _param("query", _STRING, description="the query (SPARQL 1.1)"),
                        *_GRAPHS,
                        _FORMAT,
                    ],
                    "responses": {"200": _SPARQL_RESULTS, **_SPARQL_ERRORS},
                },
                "post": {
                    "summary": "SPARQL 1.1 Protocol query by POST (form or query body)",
                    "parameters": _GRAPHS,
                    "requestBody": {
                        "required": True,
                        "content": {
                            FORM: {
                                "schema": {
                                    "type": "object",
                                    "required": ["query"],
                                    "properties": {
                                        "query": _STRING,
                                        "default-graph-uri": _STRING,
                                        "named-graph-uri": _STRING,
                                    },
                                }
                            },
                            SPARQL_QUERY: {"schema": _STRING},
                        },
                    },
                    "responses": {"200": _SPARQL_RESULTS, **_SPARQL_ERRORS},
                },
            },
            "/oai": {
                "get": {
                    "summary": "OAI-PMH 2.0",
                    "parameters": [_param(name, s) for name, s in _OAI_PARAMS.items()],
                    "responses": {"200": _OAI_OK, **_errors(400)},
                },
                "post": {
                    "summary": "OAI-PMH 2.0 by POST (form)",
                    "requestBody": {
                        "required": True,
                        "content": {
                            FORM: {"schema": {"type": "object", "properties": _OAI_PARAMS}}
                        },
                    },
                    "responses": {"200": _OAI_OK, **_errors(400, 413)},
                },
            },
            "/changes": {
                "get": {
                    "summary": "the change feed (ActivityStreams 2.0), newest first",
                    "parameters": [
                        _param("before", _POSITION, description="the changes before change n"),
                        _param("after", _POSITION, description="the changes after change n"),
                    ],
                    "responses": {
                        "200": {
                            "description": "an OrderedCollection or one of its pages",
                            "content": {
                                AS_MEDIA_TYPE: {"schema": {"type": "object", "required": ["type"]}},
                                "application/ld+json": {
                                    "schema": {"type": "object", "required": ["type"]}
                                },
                                JSON: {"schema": {"type": "object", "required": ["type"]}},
                                HTML_MEDIA_TYPE: _ANY_TEXT,
                            },
                        },
                        **_errors(400, 404, 406),
                    },
                }
            },
            "/collections/entries": {
                "get": {
                    "summary": "every published entry, paged (keyset: after/before)",
                    "parameters": _KEYSET,
                    "responses": {"200": _COLLECTION_PAGE, **_errors(400, 404, 406)},
                }
            },
            "/collections/category/{notation}": {
                "get": {
                    "summary": "the entries of one category, paged",
                    "parameters": [
                        _param("notation", _STRING, "path", required=True),
                        *_KEYSET,
                    ],
                    "responses": {"200": _COLLECTION_PAGE, **_errors(400, 404, 406)},
                }
            },
            "/search": {
                "get": {
                    "summary": "search the titles and descriptions",
                    "parameters": [
                        _param("q", _STRING, description="words, all of which must match"),
                        _param(
                            "category",
                            {"type": "array", "items": _STRING},
                            style="form",
                            explode=True,
                        ),
                        _param(
                            "year",
                            {"type": "array", "items": {"type": "integer"}},
                            style="form",
                            explode=True,
                        ),
                        _param(
                            "publisher",
                            {"type": "array", "items": _STRING},
                            style="form",
                            explode=True,
                            description="a publisher's id or IRI; entries of every one "
                            "(an unknown one: 400)",
                        ),
                        _param(
                            "sort", {"type": "string", "enum": ["relevance", "newest", "oldest"]}
                        ),
                        _param(
                            "mode",
                            {"type": "string", "enum": ["words", "meaning"]},
                            description="meaning: also the entries closest in meaning (a "
                            "release built with --enrich; else 400, or 503 without the extra)",
                        ),
                        _param("page", _PAGE),
                        _FORMAT,
                    ],
                    "responses": {
                        "200": {
                            "description": "one page of hits with facets",
                            "content": {
                                JSON: {
                                    "schema": {
                                        "type": "object",
                                        "required": ["total", "hits"],
                                        "properties": {
                                            "total": {"type": "integer", "minimum": 0},
                                            "hits": {"type": "array"},
                                        },
                                    }
                                },
                                **_RDF_CONTENT,
                                HTML_MEDIA_TYPE: _ANY_TEXT,
                            },
                        },
                        **_errors(400, 404, 406, 503),
                    },
                }
            },
        },
    }


@bp.get("/" + PATH)
def openapi() -> Response:
    """The document, for the current release's base IRI."""
    release: Release = current_app.extensions["kgpub"].get()

    def compute() -> tuple[Representation, int]:
        body = json.dumps(document(release.iris.base), indent=1).encode("utf-8")
        rep = Representation(body, OPENAPI_MEDIA_TYPE, make_etag("openapi", body))
        return rep, rep.size

    return respond(release.cache.memo(("openapi",), compute), vary_accept=False)


@bp.after_app_request
def link_service_description(response: Response) -> Response:
    """The landing page names this document (RFC 8631 service-desc)."""
    if request.path == "/" and request.method in ("GET", "HEAD") and response.status_code == 200:
        release: Release = current_app.extensions["kgpub"].get()
        target = release.iris.base + PATH
        response.headers.add("Link", f'<{target}>; rel="service-desc"; type="{OPENAPI_MEDIA_TYPE}"')
    return response
