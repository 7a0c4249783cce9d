"""Content negotiation (RFC 9110 §12.5.1): suffix > query parameter > Accept -> media type.

Accept is parsed with q-values, wildcards and specificity: the most specific media range
that matches an offered type gives that type its quality ("text/turtle;q=0" beats "text/*"),
q=0 means never, and ties go to the server's order of preference. No match raises
NotAcceptable, which the error handler answers with 406 and the list of available types.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

from graph.errors import KgpubError
from graph.formats import HTML_MEDIA_TYPE, HTML_SUFFIX, RDF_FORMATS, by_key, by_suffix

# What every resource offers, in the server's order of preference: Turtle first, so no Accept
# and */* get Turtle; browsers name text/html explicitly and get HTML.
REPRESENTATIONS: tuple[str, ...] = (*(f.media_type for f in RDF_FORMATS), HTML_MEDIA_TYPE)
SUFFIX_OF: dict[str, str] = {
    **{f.media_type: f.suffix for f in RDF_FORMATS},
    HTML_MEDIA_TYPE: HTML_SUFFIX,
}


class UnknownSuffixError(KgpubError):
    """A URL suffix that names no representation (HTTP 404)."""

    def __init__(self, suffix: str) -> None:
        super().__init__(
            f"no representation with the suffix {suffix!r}; available: "
            + ", ".join(SUFFIX_OF.values())
        )


class UnknownFormatError(KgpubError):
    """A ?format= value that names no representation (HTTP 400)."""

    def __init__(self, value: str) -> None:
        super().__init__(
            f"unknown format {value!r}; use one of "
            + ", ".join(s.lstrip(".") for s in SUFFIX_OF.values())
            + " or a media type: "
            + ", ".join(REPRESENTATIONS)
        )


class NotAcceptable(KgpubError):  # noqa: N818  (a name the other views import)
    """None of the offered media types is acceptable to the client."""

    def __init__(self, offered: Sequence[str]) -> None:
        super().__init__("no acceptable representation; available: " + ", ".join(offered))
        self.offered = list(offered)


@dataclass(frozen=True)
class MediaRange:
    """One element of an Accept header."""

    type: str
    subtype: str
    params: tuple[tuple[str, str], ...]
    q: float

    @property
    def specificity(self) -> int:
        if self.type == "*":
            return 0
        if self.subtype == "*":
            return 1
        return 2 + len(self.params)

    def matches(self, media_type: str) -> bool:
        main, _, sub = media_type.partition("/")
        if self.type != "*" and self.type != main:
            return False
        return self.subtype in ("*", sub)


def parse_accept(header: str) -> list[MediaRange]:
    """Parse an Accept header; malformed elements are skipped (RFC 9110 lets us ignore them)."""
    ranges: list[MediaRange] = []
    for element in header.split(","):
        parts = [p.strip() for p in element.split(";")]
        media = parts[0].lower()
        if "/" not in media:
            continue
        main, _, sub = media.partition("/")
        if not main or not sub or (main == "*" and sub != "*"):
            continue
        q = 1.0
        params: list[tuple[str, str]] = []
        for param in parts[1:]:
            name, _, value = param.partition("=")
            name, value = name.strip().lower(), value.strip().strip('"')
            if name == "q":
                try:
                    q = min(max(float(value), 0.0), 1.0)
                except ValueError:
                    q = 0.0
                break  # parameters after q are accept-ext, not media type parameters
            if name:
                params.append((name, value))
        ranges.append(MediaRange(main, sub, tuple(params), q))
    return ranges


def quality(ranges: Sequence[MediaRange], media_type: str) -> float:
    """The quality the client gives a media type: that of the most specific matching range."""
    best: MediaRange | None = None
    for r in ranges:
        if r.matches(media_type) and (best is None or r.specificity > best.specificity):
            best = r
    return best.q if best else 0.0


def negotiate(accept: str | None, offered: Sequence[str]) -> str:
    """The offered media type the client prefers; offered[0] when Accept is absent or empty."""
    if not offered:
        raise ValueError("nothing offered")
    if accept is None or not accept.strip():
        return offered[0]
    return _negotiate(accept, tuple(offered))


@functools.lru_cache(maxsize=512)
def _negotiate(accept: str, offered: tuple[str, ...]) -> str:
    """negotiate() for a non-empty Accept, cached: clients send few distinct headers, and the
    dereferencing hot path should not re-parse them (a NotAcceptable is not cached)."""
    ranges = parse_accept(accept)
    if not ranges:
        return offered[0]
    best_type, best_q = "", 0.0
    for media_type in offered:  # server preference breaks ties
        q = quality(ranges, media_type)
        if q > best_q:
            best_type, best_q = media_type, q
    if best_q <= 0.0:
        raise NotAcceptable(offered)
    return best_type


def media_type_of_suffix(suffix: str) -> str:
    """The media type served under a URL suffix such as '.ttl'; UnknownSuffixError otherwise."""
    if suffix == HTML_SUFFIX:
        return HTML_MEDIA_TYPE
    fmt = by_suffix(suffix)
    if fmt is None:
        raise UnknownSuffixError(suffix)
    return fmt.media_type


def media_type_of_param(value: str) -> str:
    """The media type named by ?format= (ttl, jsonld, nt, rdf, html, a key or a media type)."""
    value = value.strip().lower()
    if value in ("html", HTML_SUFFIX, HTML_MEDIA_TYPE):
        return HTML_MEDIA_TYPE
    fmt = by_key(value) or by_key(value.split(";")[0].strip())
    if fmt is None:
        raise UnknownFormatError(value)
    return fmt.media_type


def format_name(media_type: str) -> str:
    """The short ?format= name of a representation ('ttl', 'html'): links and cache keys
    name a representation by it, however the request spelled it (?format=text/turtle;x=1,
    TTL), so that spellings neither fill the cache nor leak into links."""
    return SUFFIX_OF[media_type].lstrip(".")


def select(
    suffix: str | None, param: str | None, accept: str | None, offered: Sequence[str]
) -> tuple[str, bool]:
    """The representation to serve: suffix > ?format= > Accept. Returns the media type and
    whether Accept chose it (then the response varies by Accept)."""
    if suffix is not None:
        return media_type_of_suffix(suffix), False
    if param:
        return media_type_of_param(param), False
    return negotiate(accept, offered), True
