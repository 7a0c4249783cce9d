"""Content negotiation (RFC 9110 §12.5.1): suffix > query parameter > Accept -> media type.

Accept is parsed with q-values, wildcards and specificity: the most specific media range
that matches an offered type gives that type its quality ("text/turtle;q=0" beats "text/*"),
q=0 means never, and ties go to the server's order of preference. No match raises
NotAcceptable, which the error handler answers with 406 and the list of available types.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from graph.errors import KgpubError


class NotAcceptable(KgpubError):
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
