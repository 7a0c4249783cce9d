"""Raw HTTP for the serving tests: exact method and headers (no Accept or Accept-Encoding
unless given), the status, headers and bytes of the answer, and RDF parsed from it."""

from __future__ import annotations

import http.client
import subprocess
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import urlsplit

import rdflib

BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


@dataclass(frozen=True)
class Reply:
    """One HTTP response."""

    status: int
    headers: http.client.HTTPMessage
    body: bytes

    @property
    def media_type(self) -> str:
        return self.headers.get("Content-Type", "").split(";")[0].strip()

    def header(self, name: str) -> str:
        return self.headers.get(name, "")

    def vary(self) -> set[str]:
        """The Vary header's field names, lower case."""
        return {v.strip().lower() for v in self.header("Vary").split(",") if v.strip()}

    def links(self) -> list[tuple[str, dict[str, str]]]:
        """The Link header as (target, params) pairs (RFC 8288; enough for our headers)."""
        found: list[tuple[str, dict[str, str]]] = []
        for value in self.headers.get_all("Link") or []:
            for part in value.split(", <"):
                target, _, rest = part.strip().lstrip("<").partition(">")
                params: dict[str, str] = {}
                for param in rest.split(";"):
                    key, _, val = param.strip().partition("=")
                    if key:
                        params[key.strip()] = val.strip().strip('"')
                found.append((target, params))
        return found

    def link(self, rel: str) -> str:
        """The target of the one Link with this rel, or ''."""
        return next((t for t, p in self.links() if p.get("rel") == rel), "")


def get(url: str, headers: dict[str, str] | None = None, method: str = "GET") -> Reply:
    """Send one request and read the whole response (no redirects followed, nothing added)."""
    parts = urlsplit(url)
    target = parts.path + ("?" + parts.query if parts.query else "")
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=60)
    try:
        conn.putrequest(method, target, skip_accept_encoding=True)
        for name, value in (headers or {}).items():
            conn.putheader(name, value)
        conn.endheaders()
        response = conn.getresponse()
        return Reply(response.status, response.headers, response.read())
    finally:
        conn.close()


RDFLIB_FORMAT = {
    "text/turtle": "turtle",
    "application/ld+json": "json-ld",
    "application/n-triples": "nt",
    "application/rdf+xml": "xml",
}


def parse(reply: Reply, base: str) -> rdflib.Graph:
    """The RDF body parsed by rdflib, by its Content-Type."""
    graph = rdflib.Graph()
    graph.parse(data=reply.body, format=RDFLIB_FORMAT[reply.media_type], publicID=base)
    return graph


RAPPER_SYNTAX = {
    "text/turtle": "turtle",
    "application/n-triples": "ntriples",
    "application/rdf+xml": "rdfxml",
}


def rapper_count(reply: Reply, base: str) -> int:
    """Parse the body with Raptor's rapper (Debian raptor2-utils); the number of triples."""
    done = subprocess.run(
        ["rapper", "-q", "-i", RAPPER_SYNTAX[reply.media_type], "-o", "ntriples", "-", base],
        input=reply.body,
        capture_output=True,
        check=False,
    )
    message = done.stderr.decode("utf-8", "replace")
    assert done.returncode == 0 and not message.strip(), (
        f"rapper rejected the {reply.media_type} body:\n{message}"
    )
    return len([ln for ln in done.stdout.decode("utf-8").splitlines() if ln.strip()])


class Page(HTMLParser):
    """What the tests read in an HTML page: <link>s, <a href>s, JSON-LD scripts, text."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.head_links: list[dict[str, str]] = []
        self.anchors: list[str] = []
        self.scripts: list[tuple[str, str]] = []
        self._script: str | None = None
        self.text: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "link":
            self.head_links.append(a)
        elif tag == "a" and "href" in a:
            self.anchors.append(a["href"])
        elif tag == "script":
            self._script = a.get("type", "")
            self.scripts.append((self._script, ""))

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._script = None

    def handle_data(self, data: str) -> None:
        if self._script is not None:
            kind, text = self.scripts[-1]
            self.scripts[-1] = (kind, text + data)
        else:
            self.text.append(data)

    def alternates(self) -> dict[str, str]:
        return {
            link["type"]: link["href"] for link in self.head_links if link.get("rel") == "alternate"
        }
