"""The SPARQL page's HTML over HTTP, on every store: gzip, a paged result table in the query's
variable order, keyboard-scrollable examples, the example of a category and a year, the
shareable URL, and the editor's script (on this page only, served by kgpub, gzip-coded)."""

from __future__ import annotations

import gzip
import re
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from fetch import BROWSER, Reply, get
from live import Server

from server.views.sparql import EDITOR, HTML_ROWS, query_variables

ALL = "SELECT * WHERE { ?s ?p ?o }"


class Html(HTMLParser):
    """Start tags (with attributes) and the text of the table's header cells."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.headers: list[str] = []
        self._in_th = False
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_th = tag == "th"
        if self._in_th:
            self.headers.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "th":
            self._in_th = False

    def handle_data(self, data: str) -> None:
        if self._in_th:
            self.headers[-1] += data

    def all(self, tag: str) -> list[dict[str, str | None]]:
        return [attrs for name, attrs in self.tags if name == tag]


def page(live: Server, query: str = "", **params: str) -> tuple[Reply, str]:
    """The page (asked for gzip, as browsers do) and its text."""
    args = ([("query", query)] if query else []) + list(params.items())
    url = live.base + "sparql" + ("?" + urlencode(args) if args else "")
    reply = get(url, {"Accept": BROWSER, "Accept-Encoding": "gzip, deflate"})
    text = gzip.decompress(reply.body) if reply.header("Content-Encoding") == "gzip" else reply.body
    return reply, text.decode("utf-8")


def test_the_page_is_gzipped(live: Server) -> None:
    for query in ("", ALL):
        reply, text = page(live, query)
        assert reply.status == 200
        assert reply.header("Content-Encoding") == "gzip"
        assert "accept-encoding" in reply.vary()
        assert len(reply.body) < len(text.encode()) / 3
    plain = get(live.base + "sparql", {"Accept": BROWSER})
    assert plain.header("Content-Encoding") == "" and plain.body.startswith(b"<!doctype html>")


def test_a_large_result_is_paged(live: Server) -> None:
    _, text = page(live, ALL)
    html = Html(text)
    rows = len(html.all("tr")) - 1
    assert rows == HTML_ROWS
    count = re.search(r'id="results-count">([\d,]+) rows', text)
    assert count is not None
    total = int(count.group(1).replace(",", ""))
    assert total > 2 * HTML_ROWS
    assert len(text.encode()) < 100_000  # was 473 KB for 1,000 rows
    pages = -(-total // HTML_ROWS)
    assert f"Page 1 of {pages}" in text
    links = [a["href"] for a in html.all("a") if a.get("href") and "page=" in str(a["href"])]
    numbers = {int(parse_qs(urlsplit(str(h)).query)["page"][0]) for h in links}
    assert numbers == {1, 2, 3, pages}  # this one, the next two and the last
    _, last = page(live, ALL, page=str(pages))
    assert len(Html(last).all("tr")) - 1 == total - (pages - 1) * HTML_ROWS
    assert f"{(pages - 1) * HTML_ROWS + 1:,}–{total:,} of {total:,}" in last
    _, past = page(live, ALL, page="999")  # past the last: the last
    assert past == last


@pytest.mark.parametrize(
    ("query", "columns"),
    [
        (ALL, ["?s", "?p", "?o"]),
        ("SELECT * WHERE { ?zebra ?apple ?mango } LIMIT 1", ["?zebra", "?apple", "?mango"]),
        (
            "PREFIX ex: <http://example.org/?a> # ?comment\n"
            'SELECT DISTINCT * { ?z ?b ?a FILTER(?a != "?x") } LIMIT 1',
            ["?z", "?b", "?a"],
        ),
        ("SELECT ?o ?s WHERE { ?s ?p ?o } LIMIT 1", ["?o", "?s"]),
        ("SELECT (?o AS ?n) ?o WHERE { { SELECT * { ?s ?p ?o } } } LIMIT 1", ["?n", "?o"]),
    ],
    ids=["all", "names", "strings-iris-comments", "projection", "subquery"],
)
def test_select_star_keeps_the_query_order(live: Server, query: str, columns: list[str]) -> None:
    _, text = page(live, query)
    assert [h.strip() for h in Html(text).headers] == columns


def test_query_variables() -> None:
    text = 'SELECT * { ?b <http://x/?no> \'it\'\'s ?no\' ; $a """?no\n""" # ?no\n . ?b ?c }'
    assert query_variables(text) == ["b", "a", "c"]


def test_scrollable_blocks_take_the_keyboard(live: Server) -> None:
    _, text = page(live, ALL)
    html = Html(text)
    assert html.all("pre") and all(p.get("tabindex") == "0" for p in html.all("pre"))
    regions = [d for d in html.all("div") if d.get("class") == "table-scroll"]
    assert regions == [
        {
            "class": "table-scroll",
            "role": "region",
            "aria-labelledby": "results-caption",
            "tabindex": "0",
        }
    ]


def test_an_example_of_a_category_and_a_year(live: Server) -> None:
    _, text = page(live)
    links = [str(a["href"]) for a in Html(text).all("a") if "query=" in str(a.get("href"))]
    examples = [parse_qs(urlsplit(h).query)["query"][0] for h in links]
    both = [e for e in examples if "dcterms:subject <" in e and "YEAR(?created) =" in e]
    assert len(both) == 1
    _, result = page(live, both[0])
    assert re.search(r"[1-9][\d,]* rows?\b", result)
    assert re.search(r"The entries of \d{4} in “[^”]+”", text)


def test_the_result_has_a_shareable_url_and_downloads(live: Server) -> None:
    query = "SELECT ?s WHERE { ?s ?p ?o } LIMIT 2"
    _, text = page(live, query)
    anchors = Html(text).all("a")
    share = next(a for a in anchors if a.get("id") == "share")
    assert parse_qs(urlsplit(str(share["href"])).query) == {"query": [query]}
    downloads = {str(a["download"]): str(a["href"]) for a in anchors if a.get("download")}
    assert sorted(downloads) == ["results.csv", "results.srj", "results.srx", "results.tsv"]
    types = {}
    for name, href in downloads.items():
        reply = get(live.base.rstrip("/") + href)
        assert reply.status == 200
        types[name] = reply.media_type
    assert types == {
        "results.srj": "application/sparql-results+json",
        "results.srx": "application/sparql-results+xml",
        "results.csv": "text/csv",
        "results.tsv": "text/tab-separated-values",
    }
    _, described = page(live, "DESCRIBE <" + live.base + "library>")
    names = sorted(str(a["download"]) for a in Html(described).all("a") if a.get("download"))
    assert names == ["results.jsonld", "results.nt", "results.rdf", "results.ttl"]


@pytest.mark.skipif(
    not EDITOR.exists(), reason="the editor is not bundled: npm ci && npm run build"
)
def test_the_editor_is_served_by_kgpub_on_the_sparql_page_only(live: Server) -> None:
    _, text = page(live)
    scripts = [s["src"] for s in Html(text).all("script")]
    assert scripts == ["/static/editor/sparql.js"]
    for path in ("", "search?q=child", "categories"):
        other = get(live.base + path, {"Accept": BROWSER}).body.decode()
        assert "editor/sparql.js" not in other, path
    url = live.base + "static/editor/sparql.js"
    reply = get(url, {"Accept-Encoding": "gzip"})
    assert reply.status == 200 and reply.media_type == "text/javascript"
    assert reply.header("Content-Encoding") == "gzip"
    assert gzip.decompress(reply.body) == EDITOR.read_bytes()
    assert len(reply.body) < 120_000  # CodeMirror 6 and the SPARQL mode: ~100 KB gzipped
    again = get(url, {"Accept-Encoding": "gzip", "If-None-Match": reply.header("ETag")})
    assert again.status == 304
