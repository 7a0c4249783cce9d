"""Content negotiation over HTTP: a table of Accept headers -> the representation served.

RFC 9110 §12.5.1: q-values, wildcards, the most specific range deciding (so "q=0" on an exact
type beats a wildcard), q=0 meaning never, and the server's order (Turtle, JSON-LD,
N-Triples, RDF/XML, HTML) breaking ties. No Accept and */* get Turtle (documented default).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fetch import get
from live import Server

from server.conneg import (
    REPRESENTATIONS,
    NotAcceptable,
    UnknownFormatError,
    UnknownSuffixError,
    negotiate,
    select,
)

TTL, JSONLD, NT, RDFXML, HTML = (
    "text/turtle",
    "application/ld+json",
    "application/n-triples",
    "application/rdf+xml",
    "text/html",
)
FIREFOX = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
CHROME = (
    "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,"
    "image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7"
)
CURL = "*/*"
RDFLIB = (
    "application/rdf+xml, text/rdf+n3, text/turtle, application/n-triples, "
    "application/ld+json;q=0.9"
)

# (Accept header or None, expected media type or 406)
TABLE: list[tuple[str | None, str | int]] = [
    (None, TTL),
    ("", TTL),
    ("*/*", TTL),
    (CURL, TTL),
    ("text/turtle", TTL),
    ("application/ld+json", JSONLD),
    ("application/n-triples", NT),
    ("application/rdf+xml", RDFXML),
    ("text/html", HTML),
    ("TEXT/HTML", HTML),
    ("text/turtle; charset=utf-8", TTL),
    (FIREFOX, HTML),
    (CHROME, HTML),
    (RDFLIB, TTL),  # equal q: the server prefers Turtle
    ("text/*", TTL),
    ("text/*;q=0.5, text/html", HTML),
    ("application/*", JSONLD),
    ("application/*;q=0.9, text/turtle;q=0.8", JSONLD),
    ("text/turtle;q=0.5, application/ld+json;q=0.9", JSONLD),
    ("text/turtle;q=0.5, application/ld+json;q=0.5", TTL),
    ("application/n-triples;q=1.0, text/turtle;q=0.999", NT),
    ("text/turtle;q=0, */*", JSONLD),
    ("*/*;q=0.1, text/html;q=0", TTL),
    ("text/*;q=0.1, text/turtle;q=0", HTML),
    ("application/ld+json;q=0.1, */*;q=0.2", TTL),
    ("image/png, */*;q=0.1", TTL),
    ("text/html;q=0.9, application/rdf+xml", RDFXML),
    ("text/turtle;level=1, text/html;q=0.5", TTL),
    ("not a media type", TTL),
    ("image/png", 406),
    ("application/json", 406),
    ("text/plain", 406),
    ("text/turtle;q=0", 406),
    ("*/*;q=0", 406),
    ("text/*;q=0, application/*;q=0", 406),
]


def _id(case: tuple[str | None, str | int]) -> str:
    accept, _ = case
    return "no-accept" if accept is None else accept or "empty"


@pytest.fixture(scope="module")
def entry_url(live: Server, seed_out: Path) -> str:
    manifest = json.loads((seed_out / "current" / "manifest.json").read_text())
    return str(manifest["example"])


@pytest.mark.parametrize("case", TABLE, ids=[_id(c) for c in TABLE])
def test_accept_header_selects_the_representation(
    entry_url: str, case: tuple[str | None, str | int]
) -> None:
    accept, expected = case
    reply = get(entry_url, {"Accept": accept} if accept is not None else {})
    assert "accept" in reply.vary()
    if expected == 406:
        assert reply.status == 406, reply.body[:300]
        for media_type in REPRESENTATIONS:
            assert media_type.encode() in reply.body  # the 406 lists what is available
        return
    assert reply.status == 200, reply.body[:300]
    assert reply.media_type == expected
    suffix = {TTL: ".ttl", JSONLD: ".jsonld", NT: ".nt", RDFXML: ".rdf", HTML: ".html"}[expected]
    assert reply.header("Content-Location") == entry_url + suffix


@pytest.mark.parametrize("case", TABLE, ids=[_id(c) for c in TABLE])
def test_negotiate_agrees_with_the_table(case: tuple[str | None, str | int]) -> None:
    accept, expected = case
    if expected == 406:
        with pytest.raises(NotAcceptable):
            negotiate(accept, REPRESENTATIONS)
    else:
        assert negotiate(accept, REPRESENTATIONS) == expected


@pytest.mark.parametrize(
    ("suffix", "param", "accept", "expected"),
    [
        (".ttl", None, "text/html", (TTL, False)),
        (".html", "ttl", None, (HTML, False)),
        (None, "jsonld", "text/html", (JSONLD, False)),
        (None, "nt", None, (NT, False)),
        (None, "rdf", None, (RDFXML, False)),
        (None, "html", None, (HTML, False)),
        (None, "application/ld+json", None, (JSONLD, False)),
        (None, "turtle", None, (TTL, False)),
        (None, None, "text/html", (HTML, True)),
    ],
    ids=[
        "suffix-beats-accept",
        "suffix-beats-param",
        "param-beats-accept",
        "param-nt",
        "param-rdf",
        "param-html",
        "param-media-type",
        "param-key",
        "accept",
    ],
)
def test_suffix_then_parameter_then_accept(
    suffix: str | None, param: str | None, accept: str | None, expected: tuple[str, bool]
) -> None:
    assert select(suffix, param, accept, REPRESENTATIONS) == expected


def test_unknown_suffix_and_format_are_errors() -> None:
    with pytest.raises(UnknownSuffixError):
        select(".exe", None, None, REPRESENTATIONS)
    with pytest.raises(UnknownFormatError):
        select(None, "pdf", None, REPRESENTATIONS)


@pytest.mark.parametrize(
    ("param", "expected"),
    [
        ("ttl", TTL),
        ("jsonld", JSONLD),
        ("nt", NT),
        ("rdf", RDFXML),
        ("html", HTML),
        ("text/turtle", TTL),
    ],
)
def test_format_parameter_over_http(entry_url: str, param: str, expected: str) -> None:
    reply = get(f"{entry_url}?format={param}", {"Accept": "image/png"})
    assert reply.status == 200
    assert reply.media_type == expected
    assert "accept" not in reply.vary()  # the URL alone decides


def test_unknown_format_parameter_is_400(entry_url: str) -> None:
    reply = get(entry_url + "?format=pdf", {"Accept": "application/json"})
    assert reply.status == 400
    assert json.loads(reply.body)["status"] == 400
