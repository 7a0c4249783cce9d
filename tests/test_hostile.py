"""Hostile input against the real server (issue 13): odd page numbers, huge bodies, markup in
the data, characters XML cannot carry, damaged publications, cache-filling format variants."""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import quote, urlencode, urlsplit

import fetch
import procs
import pytest
import rdflib
from dumpfiles import cut_short, part_at
from fetch import BROWSER, Reply, get
from live import FIXTURES, ROOT, SEED, Server, build_publication, free_port, kgpub
from lxml import etree

from graph import parts
from server.current import check_publication

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"


def post(url: str, form: dict[str, str], **headers: str) -> Reply:
    """POST a form (fetch.get sends no body)."""
    parts = urlsplit(url)
    body = urlencode(form).encode("ascii")
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=60)
    try:
        conn.request("POST", parts.path, body, {"Content-Type": FORM, **headers})
        response = conn.getresponse()
        return Reply(response.status, response.headers, response.read())
    finally:
        conn.close()


# --- page numbers --------------------------------------------------------------------------------

# Each paged list (and the change feed's positions): the path and its numeric parameter.
PAGED = [
    ("library", "page"),
    ("category/safeguarding", "page"),
    ("search", "page"),
    ("changes", "before"),
    ("changes", "after"),
]
BAD_NUMBERS = {
    "superscript-two": "²",
    "arabic-indic-three": "٣",
    "fullwidth-one": "１",
    "5000-digits": "1" * 5000,
    "ten-digits": "1234567890",
    "negative": "-1",
    "exponent": "1e3",
    "empty": "",
}


@pytest.mark.parametrize("value", BAD_NUMBERS.values(), ids=BAD_NUMBERS.keys())
@pytest.mark.parametrize(("path", "name"), PAGED, ids=[f"{p}-{n}" for p, n in PAGED])
def test_a_page_number_that_is_not_plain_digits_is_400(
    live: Server, path: str, name: str, value: str
) -> None:
    url = f"{live.base}{path}?{name}={quote(value)}"
    reply = get(url)  # RDF clients and programs: JSON
    assert reply.status == 400, reply.body[:300]
    doc = json.loads(reply.body)
    assert doc["status"] == 400 and name in doc["message"]
    assert len(doc["message"]) < 200  # a 5,000-digit number is not echoed whole
    page = get(url, {"Accept": BROWSER})
    assert page.status == 400 and page.media_type == "text/html"


@pytest.mark.parametrize("path", ["library", "category/safeguarding", "search"])
def test_a_page_past_the_end_is_404(live: Server, path: str) -> None:
    assert get(f"{live.base}{path}?page=999999999").status == 404
    assert get(f"{live.base}{path}?page=0001").status == 200


# --- a library whose data is hostile: markup, script, old dates -----------------------------------

HOSTILE = FIXTURES / "listings" / "hostile" / "library-hostile.txt"
SCRIPT_TITLE = '<script>alert("title")</script> Markup & <b>bold</b> <img src=x onerror=alert(1)>'


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    port = free_port()
    out: Path = tmp_path_factory.mktemp("hostile") / "publication"
    build_publication([HOSTILE], out, f"http://127.0.0.1:{port}/")
    with Server(out, port, workers=1) as running:
        yield running


def _entries(server: Server) -> dict[str, str]:
    """Title -> entry IRI, from the N-Triples dump."""
    graph = rdflib.Graph().parse(data=get(server.base + "dumps/library.nt").body, format="nt")
    return {
        str(title): str(entry)
        for entry, title in graph.subject_objects(rdflib.DCTERMS.title)
        if "/entry/" in str(entry)
    }


def _well_formed(reply: Reply, what: str) -> etree._Element:
    try:
        return etree.fromstring(reply.body)
    except etree.XMLSyntaxError as exc:
        raise AssertionError(f"{what}: not well-formed XML ({exc}): {reply.body[:300]!r}") from exc


def test_times_before_railway_time_are_gmt(hostile: Server) -> None:
    """London kept local mean time (-00:01:15) until 1 December 1847: not an xsd:dateTime
    offset. Earlier times are GMT; later ones keep the offset of the day (BST, double BST)."""
    dump = get(hostile.base + "dumps/library.nt").body.decode("utf-8")
    created = dict(re.findall(r'(<[^>]+>) <http://purl.org/dc/terms/created> "([^"]+)"', dump))
    by_title = _entries(hostile)
    expected = {
        "Before railway time": "1840-05-06T10:00:00+00:00",
        "The first day of railway time": "1847-12-01T00:01:00+00:00",
        "Summer of 1941": "1941-07-04T12:00:00+02:00",
    }
    for title, moment in expected.items():
        assert created[f"<{by_title[title]}>"] == moment
    for served in ("ttl", "nt", "jsonld", "rdf"):
        body = get(by_title["Before railway time"] + "." + served).body.decode("utf-8")
        assert "1840-05-06T10:00:00" in body and "00:01:15" not in body
    for moment in created.values():
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)", moment), moment


def test_every_xml_body_of_hostile_data_is_well_formed(hostile: Server) -> None:
    base = hostile.base
    urls = [base + "dumps/library.rdf", base + "sitemap.xml", base + ".well-known/void.rdf"]
    urls += [iri + ".rdf" for iri in _entries(hostile).values()]
    urls += [
        base + p + ".rdf" for p in ("library", "categories", "dataset", "category/safeguarding")
    ]
    urls += [base + "collections/entries?format=rdf", base + "search.rdf?q=alert"]
    urls += [
        base + "oai?verb=" + v
        for v in ("Identify", "ListRecords&metadataPrefix=oai_dc", "ListSets")
    ]
    query = quote("SELECT ?s ?p ?o WHERE { ?s ?p ?o }")
    urls += [base + f"sparql?format=xml&query={query}"]
    urls += [base + "sparql?format=rdfxml&query=" + quote("CONSTRUCT WHERE { ?s ?p ?o }")]
    for url in urls:
        reply = get(url)
        assert reply.status == 200, url
        _well_formed(reply, url)
    titles = etree.fromstring(get(base + "dumps/library.rdf").body).iterfind(
        ".//{http://purl.org/dc/terms/}title"
    )
    assert SCRIPT_TITLE in [t.text for t in titles]


NON_XML = ["\x01", "\x0b", "\x0c", "\x1b", "\x1f", "\ufffe", "\uffff"]


@pytest.mark.parametrize("char", NON_XML, ids=[f"U+{ord(c):04X}" for c in NON_XML])
def test_a_listing_with_a_control_character_is_a_file_line_error(tmp_path: Path, char: str) -> None:
    listing = tmp_path / "library-x.txt"
    text = HOSTILE.read_text("utf-8")
    listing.write_text(text.replace("Before railway", "Before" + char + "railway"), "utf-8")
    done = kgpub("build", str(listing), "--out", str(tmp_path / "out"), "--quiet")
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(f"{listing}:9: character U+{ord(char):04X} at column 7 ")
    assert "Traceback" not in done.stderr and not (tmp_path / "out" / "current").exists()


def test_a_title_setting_with_a_control_character_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "out"
    done = kgpub("build", str(HOSTILE), "--out", str(out), "--title", "A\x07B", "--quiet")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.startswith("kgpub: the library title 'A\\x07B' holds the character U+0007")
    assert not (out / "current").exists()


@pytest.mark.parametrize(
    ("option", "what", "value"),
    [
        ("--publisher", "publisher", "ACME\x07Press"),
        ("--license", "licence IRI", "http://example.org/\x1blicence"),
    ],
    ids=["publisher", "license"],
)
def test_a_published_setting_with_a_control_character_is_refused(
    tmp_path: Path, option: str, what: str, value: str
) -> None:
    """--publisher and --license go into VoID and DCAT (RDF/XML among them) as --title does:
    the same message, exit 2, and the publication already there is left as it was."""
    out = tmp_path / "out"
    assert kgpub("build", str(HOSTILE), "--out", str(out), "--quiet").returncode == 0
    published = (out / "current").resolve()
    char = next(c for c in value if ord(c) < 0x20)
    for command in (("build", "--out", str(out)), ("validate",)):
        done = kgpub(*command, str(HOSTILE), option, value, "--quiet")
        assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
        assert done.stderr == (
            f"kgpub: the {what} {value!r} holds the character U+{ord(char):04X}, which cannot "
            "be published (XML 1.0 has no way to write it); expected a "
            f"{what} without control characters ({option})\n"
        )
    assert (out / "current").resolve() == published
    assert len(list((out / "releases").iterdir())) == 1


# Parameters a user can put in that an XML body would repeat: OAI-PMH's arguments, the
# search's words. Each is refused (400) or answered with well-formed XML.
PARAMETERS = [
    "oai?verb={}",
    "oai?verb=GetRecord&metadataPrefix=oai_dc&identifier={}",
    "oai?verb=ListRecords&resumptionToken={}",
    "oai?verb=ListRecords&metadataPrefix={}",
    "oai?verb=ListRecords&metadataPrefix=oai_dc&from={}",
    "oai?verb=ListRecords&metadataPrefix=oai_dc&set={}",
    "oai?verb=Identify&{}=1",
    "search.rdf?q=a{}b",
    "search.rdf?category={}",
    "changes?before={}",
    "collections/entries?format=rdf&after={}",
    "library.rdf?page={}",
]


@pytest.mark.parametrize("char", ["\x01", "\ufffe"], ids=["U+0001", "U+FFFE"])
@pytest.mark.parametrize("template", PARAMETERS)
def test_parameters_xml_cannot_carry_never_break_xml(
    live: Server, template: str, char: str
) -> None:
    reply = get(live.base + template.format(quote(char)))
    assert reply.status < 500
    if "xml" in reply.media_type:
        _well_formed(reply, template)
    else:
        assert reply.status in (400, 404), reply.body[:200]
    posted = post(live.base + "oai", {"verb": "GetRecord", "identifier": char})
    assert posted.status == 400 and "U+" in json.loads(posted.body)["message"]


@pytest.mark.parametrize(
    ("query", "fmt", "char"),
    [
        ('SELECT ("\\u0001" AS ?x) {}', "xml", "\x01"),
        ('SELECT ("a\\uFFFEb" AS ?x) {}', "xml", "\ufffe"),
        ('CONSTRUCT { <urn:a> <urn:b> "\\u001B" } WHERE {}', "rdfxml", "\x1b"),
    ],
    ids=["select-U+0001", "select-U+FFFE", "construct-U+001B"],
)
def test_sparql_results_xml_cannot_carry_are_refused_in_xml(
    live: Server, query: str, fmt: str, char: str
) -> None:
    url = f"{live.base}sparql?query={quote(query)}"
    reply = get(url + f"&format={fmt}")
    assert reply.status == 406, reply.body[:300]
    assert "cannot carry" in json.loads(reply.body)["message"]
    other = get(url)  # SPARQL JSON or Turtle carries any character
    assert other.status == 200
    if fmt == "xml":
        assert char in json.loads(other.body)["results"]["bindings"][0]["x"]["value"]
    else:
        graph = rdflib.Graph().parse(data=other.body, format="turtle")
        assert [str(o) for o in graph.objects()] == [char]


# --- security headers, and markup in the data shown as text -------------------------------------

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "X-Frame-Options": "DENY",
}
# (path, Accept, method): pages, data, errors, static files, dumps, conditional answers.
EVERY_KIND = [
    ("", BROWSER, "GET"),
    ("library", BROWSER, "GET"),
    ("categories", BROWSER, "GET"),
    ("category/safeguarding", BROWSER, "GET"),
    ("dataset", BROWSER, "GET"),
    ("sparql", BROWSER, "GET"),
    ("sparql?query=" + quote("SELECT * { ?s ?p ?o } LIMIT 3"), BROWSER, "GET"),
    ("search?q=child", BROWSER, "GET"),
    ("changes", BROWSER, "GET"),
    ("library", "text/turtle", "GET"),
    ("library", "text/turtle", "HEAD"),
    ("library?page=2", "text/turtle", "GET"),
    ("sparql?query=" + quote("ASK {}"), "", "GET"),
    ("oai?verb=Identify", "", "GET"),
    ("sitemap.xml", "", "GET"),
    ("robots.txt", "", "GET"),
    ("context.jsonld", "", "GET"),
    ("dumps/library.ttl", "", "GET"),
    ("static/kgpub.css", "", "GET"),
    ("entry/no-such-entry", BROWSER, "GET"),
    ("entry/no-such-entry", "", "GET"),
    ("library?page=x", BROWSER, "GET"),
    ("library", "image/png", "GET"),
    ("library", BROWSER, "DELETE"),
    ("library", "", "OPTIONS"),
]


@pytest.mark.parametrize(("path", "accept", "method"), EVERY_KIND)
def test_security_headers_on_every_response(
    live: Server, path: str, accept: str, method: str
) -> None:
    headers = {"Accept": accept} if accept else {}
    reply = get(live.base + path, headers, method=method)
    for name, value in SECURITY_HEADERS.items():
        assert reply.header(name) == value, (name, reply.status)
    assert "Strict-Transport-Security" not in reply.headers  # plain HTTP
    etag = reply.header("ETag")
    if etag and method == "GET":
        again = get(live.base + path, {**headers, "If-None-Match": etag})
        assert again.status == 304
        assert (
            again.header("Content-Security-Policy") == SECURITY_HEADERS["Content-Security-Policy"]
        )


class Inline(HTMLParser):
    """What a CSP without 'unsafe-inline' would block: inline scripts, styles, handlers."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []
        self._in: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "script" and "src" not in a and a.get("type") != "application/ld+json":
            self.found.append(f"<script {attrs}>")
        if tag == "style":
            self.found.append("<style>")
        for name, value in attrs:
            if name == "style" or name.startswith("on"):
                self.found.append(f"{tag} {name}=")
            if name in ("href", "src", "action") and (value or "").lower().startswith(
                "javascript:"
            ):
                self.found.append(f"{tag} {name}={value}")


HTML_PAGES = ["", "library", "categories", "category/safeguarding", "dataset", "sparql"]
HTML_PAGES += ["search?q=child", "changes", "entry/no-such-entry", "library?page=x"]


@pytest.mark.parametrize("path", HTML_PAGES)
def test_pages_have_nothing_inline_that_the_policy_would_block(live: Server, path: str) -> None:
    reply = get(live.base + path, {"Accept": BROWSER})
    assert reply.media_type == "text/html"
    inline = Inline()
    inline.feed(reply.body.decode("utf-8"))
    assert inline.found == []
    for sheet in re.findall(r'<link rel="stylesheet" href="([^"]+)"', reply.body.decode()):
        css = get(live.base + sheet.lstrip("/"))
        assert css.status == 200 and css.media_type == "text/css"


def test_markup_and_script_in_the_data_are_shown_as_text(hostile: Server) -> None:
    entries = _entries(hostile)
    pages = [entries[SCRIPT_TITLE], hostile.base, hostile.base + "library"]
    pages += [hostile.base + "category/safeguarding", hostile.base + "search?category=safeguarding"]
    pages += [hostile.base + "changes"]
    for url in pages:
        reply = get(url, {"Accept": BROWSER})
        assert reply.status == 200, url
        html = reply.body.decode("utf-8")
        inline = Inline()
        inline.feed(html)
        assert inline.found == [], url
        assert "<script>alert" not in html and "<b>bold" not in html and "<img src=x" not in html
        assert "&lt;script&gt;alert(&#34;title&#34;)&lt;/script&gt;" in html, url
        page = fetch.Page(html)
        for kind, data in page.scripts:
            assert kind == "application/ld+json" and "</" not in data
            json.loads(data)
    entry = fetch.Page(get(entries[SCRIPT_TITLE], {"Accept": BROWSER}).body.decode("utf-8"))
    text = " ".join(" ".join(entry.text).split())
    assert SCRIPT_TITLE in text
    assert "</p><script>alert(2)</script><style>body{display:none}</style>" in text


# --- request bodies ------------------------------------------------------------------------------

MAX_BODY = 1 << 20  # the default --max-body


def _send(server: Server, head: str, body: bytes = b"") -> Reply:
    """Send a request head and the start of its body, read the answer, hang up."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(head.encode("latin-1") + b"\r\n" + body)
        response = http.client.HTTPResponse(sock)
        response.begin()
        return Reply(response.status, response.headers, response.read())


@pytest.mark.parametrize(
    ("path", "content_type"),
    [("oai", FORM), ("sparql", FORM), ("sparql", "application/sparql-query"), ("library", FORM)],
)
def test_a_body_announced_over_the_limit_is_413_unread(
    live: Server, path: str, content_type: str
) -> None:
    """200 MiB announced, 1 KiB sent: the answer comes before the rest (none is read)."""
    head = (
        f"POST /{path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {200 << 20}\r\nAccept: application/json\r\n"
    )
    reply = _send(live, head, b"verb=Identify&query=" + b"a" * 1024)
    assert reply.status == 413, reply.body[:200]
    assert json.loads(reply.body)["status"] == 413
    assert reply.header("Content-Security-Policy")
    assert get(live.base + "library").status == 200


def _chunked(data: bytes, size: int = 64 << 10) -> bytes:
    chunks = [data[i : i + size] for i in range(0, len(data), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"


@pytest.mark.parametrize("path", ["oai", "sparql"])
def test_a_chunked_body_over_the_limit_is_413(live: Server, path: str) -> None:
    head = (
        f"POST /{path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {FORM}\r\n"
        "Transfer-Encoding: chunked\r\nConnection: close\r\n"
    )
    form = b"verb=Identify&query=ASK%7B%7D&pad=" + b"a" * (2 * MAX_BODY)
    reply = _send(live, head, _chunked(form))
    assert reply.status == 413, reply.body[:200]
    small = b"verb=Identify&query=ASK%7B%7D&pad=" + b"a" * (MAX_BODY // 2)
    assert _send(live, head, _chunked(small)).status == 200


def test_a_body_under_the_limit_is_read(live: Server) -> None:
    form = {"verb": "Identify", "pad": "a" * (MAX_BODY - 100)}
    assert post(live.base + "oai", form).status == 200
    form["pad"] += "a" * 200
    assert post(live.base + "oai", form).status == 413


# --- the page cache ------------------------------------------------------------------------------


def _rss_mib(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) / 1024  # type: ignore[union-attr]


@pytest.fixture(scope="module")
def one_worker(seed_out: Path) -> Iterator[Server]:
    """The seed served by one worker, so that every request meets the same cache."""
    with Server(seed_out, free_port(), workers=1, warm_up=0) as running:
        yield running


def test_spellings_of_a_format_share_one_cache_entry(one_worker: Server) -> None:
    """?format=text/turtle;x=N named a new cache entry for each N (110 -> 450 MiB per worker
    was seen): the worker's memory stays flat however many spellings come."""
    base = one_worker.base
    (worker,) = procs.workers(one_worker)
    gzip = {"Accept-Encoding": "gzip"}
    first = get(base + "library?format=" + quote("text/turtle;x=0"), gzip)
    assert first.status == 200 and first.header("Content-Location")
    for n in range(1, 50):  # warm the code paths and the allocator
        get(base + "library?format=" + quote(f"text/turtle;x={n}"), gzip)
    before = _rss_mib(worker)
    tags = set()
    with closing(http.client.HTTPConnection("127.0.0.1", one_worker.port, timeout=30)) as conn:
        for n in range(50, 3050):
            spelling = f"text/turtle;x={n}" if n % 2 else f"TTL{' ' * (n % 7)}"
            conn.request("GET", "/library?format=" + quote(spelling), headers=gzip)
            response = conn.getresponse()
            body = response.read()
            assert response.status == 200, body[:200]
            tags.add(response.getheader("ETag"))
    grown = _rss_mib(worker) - before
    assert grown < 12, f"the worker grew by {grown:.0f} MiB"
    assert tags == {first.header("ETag")}
    links = get(base + "library?format=" + quote("text/turtle;x=1")).header("Link")
    assert "x=1" not in links and "text/turtle;" not in links


# --- a damaged publication -----------------------------------------------------------------------


def _copy(seed_out: Path, to: Path) -> Path:
    """A copy of the seed publication (its current release only) to damage."""
    release = (seed_out / "current").resolve()
    out = to / "publication"
    shutil.copytree(release, out / "releases" / release.name)
    (out / "current").symlink_to(Path("releases") / release.name)
    return out / "releases" / release.name


def _garble(path: Path) -> None:
    path.write_bytes(b"\x00garbage" * 8)


DAMAGES = {
    "store-missing": lambda r: shutil.rmtree(r / "store"),
    "store-current-garbled": lambda r: _garble(r / "store" / "CURRENT"),
    "store-tables-garbled": lambda r: [_garble(p) for p in (r / "store").glob("*.sst")],
    "store-empty": lambda r: [p.unlink() for p in (r / "store").iterdir()],
    "dump-missing": lambda r: (r / "dumps" / ("library.nt" + parts.SUFFIX)).unlink(),
    "dump-part-missing": lambda r: part_at(r / "dumps" / "library.ttl", 0)[0].unlink(),
    "dump-cut-short": lambda r: cut_short(r / "dumps" / "library.rdf.gz", 2),
    "manifest-garbled": lambda r: _garble(r / "manifest.json"),
}


@pytest.mark.parametrize("damage", DAMAGES.values(), ids=DAMAGES.keys())
def test_a_damaged_publication_is_refused_at_start_and_rebuilt(
    seed_out: Path, seed_base: str, tmp_path: Path, damage: Callable[[Path], object]
) -> None:
    release = _copy(seed_out, tmp_path)
    damage(release)
    out = release.parent.parent
    env = {k: v for k, v in os.environ.items() if not k.startswith("KGPUB_")}
    command = [sys.executable, "-m", "server.cli", "serve", "--out", str(out)]
    command += ["--port", str(free_port()), "--workers", "1"]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 3, done.stderr[-2000:]
    assert done.stderr.startswith(f"kgpub: cannot serve {out}: ")
    assert "'kgpub build'" in done.stderr and "Traceback" not in done.stderr
    assert re.search(r"store|dump|manifest", done.stderr.splitlines()[0])
    rebuilt = kgpub("build", str(SEED), "--out", str(out), "--base-uri", seed_base, "--quiet")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert check_publication(out) == ""


@pytest.fixture
def damaged(seed_out: Path, tmp_path: Path) -> Iterator[tuple[Server, Path]]:
    """A server whose publication changes under it to a release with a garbled store and a
    lost dump (a copy of the seed's release, swapped in as a build swaps its own)."""
    release = _copy(seed_out, tmp_path)
    out = release.parent.parent
    with Server(out, free_port(), workers=1, warm_up=0) as running:
        broken = release.with_name(release.name + "-broken")
        shutil.copytree(release, broken)
        _garble(broken / "store" / "CURRENT")
        (broken / "dumps" / ("library.nt" + parts.SUFFIX)).unlink()
        (out / "next").symlink_to(Path("releases") / broken.name)
        (out / "next").rename(out / "current")
        time.sleep(1.5)  # each worker looks at `current` once a second
        yield running, broken


@pytest.mark.parametrize("accept", ["", BROWSER, "text/plain"])
def test_a_damaged_store_or_dump_is_503_without_paths(
    damaged: tuple[Server, Path], accept: str
) -> None:
    server, release = damaged
    headers = {"Accept": accept} if accept else {}
    urls = ["library", "entry/x", "categories", "dumps/library.nt"]
    if accept != "text/plain":  # SPARQL has no text/plain answer: 406
        urls += ["sparql?query=" + quote(q) for q in ("ASK {}", "SELECT * { ?s ?p ?o } LIMIT 1")]
    for url in urls:
        reply = get(server.base + url, headers)
        body = reply.body.decode("utf-8")
        assert reply.status == 503, (url, body[:300])
        assert reply.header("Retry-After")
        assert "/releases/" not in body and str(release.parent.parent) not in body, body
    message = json.loads(get(server.base + "dumps/library.nt").body)["message"]
    assert message.startswith("the dump library.nt of this release is missing or damaged")
    assert get(server.base + "dumps/library.ttl").status == 200
