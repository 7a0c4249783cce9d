"""The HTTP client of `kgpub check`: exact requests (no header added but Host and
Content-Length), whole answers, dumps streamed through SHA-256, and Link headers read as
RFC 8288 §3 writes them.

Standard library only (http.client), so that what is checked is what the deployment sends:
no redirect is followed, no Accept or Accept-Encoding is added, nothing is decompressed.
"""

from __future__ import annotations

import hashlib
import http.client
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from email.message import Message
from email.utils import parsedate_to_datetime
from urllib.parse import urljoin, urlsplit

from graph.errors import KgpubError

TIMEOUT = 60.0  # seconds for one request (a dump of a large library takes a while)
CHUNK = 1 << 16


class CheckError(KgpubError):
    """A check found the deployment wrong; the message says what and where (one line)."""


@dataclass(frozen=True)
class Reply:
    """One HTTP response: status, headers (case-insensitive), body and the URL asked."""

    url: str
    status: int
    headers: Message
    body: bytes = b""

    @property
    def media_type(self) -> str:
        return self.header("Content-Type").split(";")[0].strip().lower()

    def header(self, name: str) -> str:
        """The header's value (several fields joined by ', ' as RFC 9110 §5.3 allows), or ''."""
        return ", ".join(self.headers.get_all(name) or [])

    def tokens(self, name: str) -> set[str]:
        """A comma-separated header's elements, lower case (Vary, Allow, ...)."""
        return {t.strip().lower() for t in self.header(name).split(",") if t.strip()}

    def links(self) -> list[Link]:
        """Every Link header field value, resolved against the request URL."""
        found: list[Link] = []
        for value in self.headers.get_all("Link") or []:
            found += parse_links(value, self.url)
        return found

    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def date(self, name: str) -> datetime | None:
        """An HTTP-date header (RFC 9110 §5.6.7) as an aware datetime, or None."""
        value = self.header(name)
        try:
            moment = parsedate_to_datetime(value) if value else None
        except (TypeError, ValueError):
            return None
        return moment if moment is not None and moment.tzinfo is not None else None


@dataclass(frozen=True)
class Link:
    """One link of a Link header: its target and parameters (names lower case)."""

    target: str
    params: Mapping[str, str] = field(default_factory=dict)

    @property
    def rels(self) -> set[str]:
        """Its relation types (RFC 8288 §3.3: a space-separated list, case-insensitive)."""
        return {r.lower() for r in self.params.get("rel", "").split()}


def parse_links(value: str, base: str) -> list[Link]:
    """Parse one Link field value (RFC 8288 §3): `<uri-ref> *( ";" link-param )`, comma
    separated, where a parameter's value is a token or a quoted-string (which may hold commas
    and semicolons). Raises CheckError on a value that does not follow the grammar."""
    links: list[Link] = []
    i, n = 0, len(value)

    def skip_space(j: int) -> int:
        while j < n and value[j] in " \t":
            j += 1
        return j

    while True:
        i = skip_space(i)
        if i >= n:
            break
        if value[i] != "<":
            raise CheckError(f"Link header: expected '<' at {value[i : i + 30]!r}")
        end = value.find(">", i)
        if end < 0:
            raise CheckError(f"Link header: no '>' after {value[i : i + 30]!r}")
        target = urljoin(base, value[i + 1 : end])
        params: dict[str, str] = {}
        i = skip_space(end + 1)
        while i < n and value[i] == ";":
            i = skip_space(i + 1)
            start = i
            while i < n and value[i] not in "=;, \t":
                i += 1
            name = value[start:i].lower()
            if not name:
                raise CheckError(f"Link header: empty parameter name near {value[start:][:30]!r}")
            i = skip_space(i)
            param = ""
            if i < n and value[i] == "=":
                i = skip_space(i + 1)
                if i < n and value[i] == '"':
                    i += 1
                    chars: list[str] = []
                    while i < n and value[i] != '"':
                        if value[i] == "\\" and i + 1 < n:
                            i += 1
                        chars.append(value[i])
                        i += 1
                    if i >= n:
                        raise CheckError("Link header: unterminated quoted string")
                    i += 1
                    param = "".join(chars)
                else:
                    start = i
                    while i < n and value[i] not in ";, \t":
                        i += 1
                    param = value[start:i]
            params.setdefault(name, param)  # RFC 8288 §3: later occurrences are ignored
            i = skip_space(i)
        links.append(Link(target, params))
        i = skip_space(i)
        if i < n:
            if value[i] != ",":
                raise CheckError(f"Link header: expected ',' at {value[i : i + 30]!r}")
            i += 1
    return links


def _connection(url: str, timeout: float) -> tuple[http.client.HTTPConnection, str]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CheckError(f"not an http(s) URL: {url}")
    kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    target = (parts.path or "/") + ("?" + parts.query if parts.query else "")
    return kind(parts.hostname, parts.port, timeout=timeout), target


def fetch(
    url: str,
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
    body: bytes | None = None,
    timeout: float = TIMEOUT,
) -> Reply:
    """Send one request and read the whole answer; CheckError if there is none."""
    conn, target = _connection(url, timeout)
    try:
        conn.putrequest(method, target, skip_accept_encoding=True)
        for name, value in (headers or {}).items():
            conn.putheader(name, value)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        response = conn.getresponse()
        data = response.read() if method != "HEAD" else b""
        return Reply(url, response.status, response.msg, data)
    except (OSError, http.client.HTTPException) as exc:
        raise CheckError(f"{method} {url}: no answer ({exc or type(exc).__name__})") from exc
    finally:
        conn.close()


@dataclass(frozen=True)
class Download:
    """A body read through SHA-256 without keeping it: the reply (no body), size and digest."""

    reply: Reply
    size: int
    sha256: str


def download(url: str, timeout: float = TIMEOUT) -> Download:
    """GET url (no Accept-Encoding: the bytes as published) and hash the body as it arrives."""
    conn, target = _connection(url, timeout)
    try:
        conn.putrequest("GET", target, skip_accept_encoding=True)
        conn.endheaders()
        response = conn.getresponse()
        digest, size = hashlib.sha256(), 0
        while chunk := response.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
        return Download(Reply(url, response.status, response.msg), size, digest.hexdigest())
    except (OSError, http.client.HTTPException) as exc:
        raise CheckError(f"GET {url}: no answer ({exc or type(exc).__name__})") from exc
    finally:
        conn.close()
