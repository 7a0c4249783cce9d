"""One cached representation and the HTTP response that serves it: validators, 304, gzip, CORS.

A Representation is computed once per (release, path, media type, page, URL style) and kept in
the release's cache (server/current.py), so answering again costs a dictionary lookup and the
headers below. Validators (RFC 9110 §8.8): a strong ETag derived from the bytes, the path, the
media type and the page, with a distinct tag for the gzip-coded variant; Last-Modified is when
the content last changed (the view says when the data it shows last did, from the history), or
when the code that renders it did, if later, and never later than now (§8.8.2.1). So a rebuild
that changes nothing, or changes what a body does not show, keeps both validators.
Conditional requests (RFC 9110 §13.1.2, §13.2.2): If-None-Match wins over If-Modified-Since; a
match gives 304 with the validators and no body.
"""

from __future__ import annotations

import calendar
import functools
import gzip
import hashlib
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import formatdate
from pathlib import Path
from typing import Any

from flask import Response, request
from werkzeug.datastructures import Headers
from werkzeug.http import parse_date

# Bodies smaller than this are sent as they are: gzip would save little and cost a round of
# compression per cache entry.
COMPRESS_MIN = 1024
EXPOSED = (
    "Link, ETag, Last-Modified, Content-Location, Content-Encoding, Content-Range, "
    "Accept-Ranges, Vary, Retry-After"
)
CORS: tuple[tuple[str, str], ...] = (
    ("Access-Control-Allow-Origin", "*"),
    ("Access-Control-Expose-Headers", EXPOSED),
)
CACHE_CONTROL = ("Cache-Control", "public, no-cache")  # always revalidate: cheap with 304s
# On every response, pages above all (server/app.py adds them where a view did not). The pages
# load their stylesheets, images and scripts from the site itself and nothing inline (the
# JSON-LD <script type="application/ld+json"> is a data block: CSP does not apply to it), so
# data that gets past the escaping still cannot run. No Strict-Transport-Security: the server
# speaks plain HTTP; the TLS proxy in front of it is the one to send it.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY: tuple[tuple[str, str], ...] = (
    ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "strict-origin-when-cross-origin"),
    ("X-Frame-Options", "DENY"),  # frame-ancestors for browsers without CSP level 2
    ("Cross-Origin-Opener-Policy", "same-origin"),
    # The data is for every site (CORS: *): say so, also to pages isolated with COEP.
    ("Cross-Origin-Resource-Policy", "cross-origin"),
    ("Permissions-Policy", "camera=(), geolocation=(), microphone=(), payment=(), usb=()"),
)


@dataclass
class Representation:
    """A body ready to send, with its media type, validator and fixed headers.

    Header values must be ASCII (IRIs already converted with iri_to_uri): they are checked
    once here and then sent as they are on every response (PreparedResponse).
    """

    body: bytes
    content_type: str
    etag: str  # opaque tag, without quotes
    headers: tuple[tuple[str, str], ...] = ()  # Link, Content-Location, ...
    changed: str = ""  # when what the body shows last changed (xsd:dateTime), '' unknown
    last_modified: int = field(init=False)  # seconds since the epoch (see last_modified())
    _gzipped: bytes | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        for name, value in self.headers:
            if not value.isascii() or "\n" in value or "\r" in value:
                raise ValueError(f"header {name} must be one line of ASCII: {value!r}")
        self.last_modified = last_modified(self.changed)

    @property
    def size(self) -> int:
        """Bytes kept in memory (for the cache's bound): the body; its gzip-coded copy, made
        on first use after the cache took the size, so counted from the start (text gzips to
        well under half); the headers; the objects around them."""
        body = len(self.body)
        if self._gzipped is not None:
            coded = len(self._gzipped)
        else:
            coded = body // 2 if body >= COMPRESS_MIN else 0
        return body + coded + sum(len(n) + len(v) + 120 for n, v in self.headers) + 1024

    def gzipped(self) -> bytes:
        """The gzip-coded body, compressed on first use (mtime 0: same bytes every time)."""
        if self._gzipped is None:
            with self._lock:
                if self._gzipped is None:
                    self._gzipped = gzip.compress(self.body, compresslevel=6, mtime=0)
        return self._gzipped


class PreparedResponse(Response):
    """A response whose headers were checked when its representation was cached: sent as they
    are. (Werkzeug's get_wsgi_headers copies, re-validates and IRI-encodes every header of every
    response; on the dereferencing path that was a third of the time per request.)"""

    def get_wsgi_headers(self, environ: Any) -> Headers:
        return self.headers


def _prepared(status: int, body: bytes | None, headers: list[tuple[str, str]]) -> Response:
    response = PreparedResponse(status=status)
    response.response = [] if body is None else [body]
    response.headers._list = headers  # already checked
    return response


def _code_files() -> list[Path]:
    """The code and templates that render bodies (graph/ writes the dumps too)."""
    root = Path(__file__).resolve().parent.parent
    return [
        path
        for folder, pattern in (("graph", "*.py"), ("server", "*.py"), ("server", "*.html"))
        for path in sorted((root / folder).rglob(pattern))
    ]


def _code_fingerprint(files: list[Path]) -> str:
    """A digest of the code and templates that render bodies: a new version of kgpub serving
    the same release must not answer 304 to a copy rendered by the old one."""
    digest = hashlib.sha1()
    root = Path(__file__).resolve().parent.parent
    for path in files:
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


_FILES = _code_files()
CODE = _code_fingerprint(_FILES)
# When that code last changed (installed, checked out, edited): what it renders may differ
# from what an older version rendered from the same data, so Last-Modified is never earlier.
CODE_TIME = int(max((p.stat().st_mtime for p in _FILES), default=0))


def epoch(timestamp: str) -> int:
    """Seconds since the epoch of an xsd:dateTime such as '2026-11-24T03:37:10Z'."""
    return calendar.timegm(_parse_time(timestamp).utctimetuple())


def last_modified(changed: str, built: str = "") -> int:
    """Last-Modified (seconds since the epoch) of a body showing data that last changed at
    changed: that time, or the code's if later. built: the body was made by that build, not
    by this process (a dump), so the code counts only until then."""
    code = CODE_TIME if not built else min(CODE_TIME, epoch(built))
    return max(epoch(changed) if changed else 0, code)


def not_after_now(moment: int) -> int:
    """RFC 9110 §8.8.2.1: a Last-Modified later than the response's Date (a build stamped
    ahead of this clock, code from the future) is replaced by the Date."""
    return min(moment, int(time.time()))


def make_etag(*parts: object) -> str:
    """A strong entity tag from what determines the bytes: the code, then the caller's parts
    (release id, path, representation, page, or the bytes themselves)."""
    text = "\x1f".join(
        hashlib.sha1(p).hexdigest() if isinstance(p, bytes) else str(p) for p in (CODE, *parts)
    )
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:24]


@functools.lru_cache(maxsize=256)
def http_date(moment: int) -> str:
    """An IMF-fixdate (RFC 9110 §5.6.7) from seconds since the epoch."""
    return formatdate(moment, usegmt=True)


@functools.lru_cache(maxsize=256)
def _parse_time(timestamp: str) -> datetime:
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).astimezone(UTC)


@functools.lru_cache(maxsize=256)
def accepts_gzip(header: str) -> bool:
    """Whether Accept-Encoding allows gzip (RFC 9110 §12.5.3: 'gzip', 'x-gzip' or '*', q>0)."""
    star = False
    for element in header.split(","):
        name, _, params = element.strip().partition(";")
        name = name.strip().lower()
        q = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if name in ("gzip", "x-gzip"):
            return q > 0
        if name == "*":
            star = q > 0
    return star


def _etag_matches(header: str, tags: Iterable[str]) -> bool:
    """If-None-Match uses the weak comparison (RFC 9110 §13.1.2): W/ is ignored."""
    wanted = set(tags)
    for candidate in header.split(","):
        candidate = candidate.strip()
        if candidate == "*":
            return True
        if candidate.startswith("W/"):
            candidate = candidate[2:]
        if candidate.strip('"') in wanted:
            return True
    return False


def is_not_modified(etags: Iterable[str], modified: int) -> bool:
    """Whether the request's conditions say the client's copy is current (If-Modified-Since:
    modified, seconds since the epoch, is not later than the client's time, §13.1.3)."""
    environ = request.environ
    if_none_match = environ.get("HTTP_IF_NONE_MATCH")
    if if_none_match is not None:
        return _etag_matches(if_none_match, etags)
    if_modified_since = environ.get("HTTP_IF_MODIFIED_SINCE")
    if if_modified_since and environ.get("REQUEST_METHOD") in ("GET", "HEAD"):
        since = parse_date(if_modified_since)
        return since is not None and modified <= since.timestamp()
    return False


def respond(rep: Representation, vary_accept: bool) -> Response:
    """The response for a representation: 200 (gzip-coded when asked and worth it) or 304."""
    environ = request.environ
    compressible = len(rep.body) >= COMPRESS_MIN
    use_gzip = compressible and accepts_gzip(environ.get("HTTP_ACCEPT_ENCODING", ""))
    etag = rep.etag + "-gzip" if use_gzip else rep.etag
    modified = not_after_now(rep.last_modified)
    headers = [
        ("ETag", f'"{etag}"'),
        ("Last-Modified", http_date(modified)),
        CACHE_CONTROL,
        *CORS,
        *SECURITY,
        *rep.headers,
    ]
    if vary_accept:
        headers.append(("Vary", "Accept, Accept-Encoding" if compressible else "Accept"))
    elif compressible:
        headers.append(("Vary", "Accept-Encoding"))
    if is_not_modified((rep.etag, rep.etag + "-gzip"), modified):
        return _prepared(304, None, headers)
    body = rep.gzipped() if use_gzip else rep.body
    headers.append(("Content-Type", rep.content_type))
    if use_gzip:
        headers.append(("Content-Encoding", "gzip"))
    headers.append(("Content-Length", str(len(body))))
    return _prepared(200, body, headers)
