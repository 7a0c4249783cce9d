"""Every page type in headless Chromium at a desktop's and a phone's width: axe-core finds no
serious or critical violation (WCAG 2.1 A/AA and best practice), nothing breaks the site's
Content-Security-Policy, and a screenshot of each is kept (tests/artifacts/screenshots/)."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from browser import Tab, axe_violations, screenshot, select
from live import Server

pytestmark = pytest.mark.embedded_only(
    "the pages are the same HTML over every store; one browser run is enough"
)

ENTRY = "SELECT ?e WHERE { ?e a <http://purl.org/dc/dcmitype/Text> } ORDER BY ?e LIMIT 1"
# (name, path): one page of each type a person meets.
PAGES = [
    ("landing", "/"),
    ("library", "/library"),
    ("scheme", "/categories"),
    ("category", "/category/safeguarding"),
    ("entry", None),  # the first entry of the library
    ("years", "/years"),
    ("year", "/years/2019"),
    ("category-year", "/category/safeguarding/2019"),
    ("dataset", "/dataset"),
    ("void", "/.well-known/void"),
    ("search", "/search?q=exploitation&category=safeguarding"),
    ("search-empty", "/search?q=zzzzqqq"),
    ("sparql", "/sparql"),
    ("sparql-results", "/sparql?query=" + quote("SELECT * WHERE { ?s ?p ?o } LIMIT 150")),
    ("changes", "/changes"),
    ("error-404", "/entry/no-such-entry"),
]


def _path(live: Server, path: str | None) -> str:
    if path is None:
        return select(live.base, ENTRY)[0]["e"]
    return live.base.rstrip("/") + path


def _check(live: Server, tab: Tab, name: str, path: str | None) -> None:
    page = tab.page
    response = page.goto(_path(live, path))
    assert response is not None
    assert response.status == (404 if name.startswith("error") else 200)
    assert "text/html" in response.headers["content-type"]
    if name.startswith("sparql"):
        page.locator(".sparql-editor .cm-content").wait_for()
    screenshot(tab, name)
    assert axe_violations(page) == []


@pytest.mark.parametrize(("name", "path"), PAGES, ids=[p[0] for p in PAGES])
def test_desktop(live: Server, desktop: Tab, name: str, path: str | None) -> None:
    _check(live, desktop, name, path)


@pytest.mark.parametrize(("name", "path"), PAGES, ids=[p[0] for p in PAGES])
def test_phone(live: Server, phone: Tab, name: str, path: str | None) -> None:
    _check(live, phone, name, path)
