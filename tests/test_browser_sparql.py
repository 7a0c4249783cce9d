"""The SPARQL page in headless Chromium: the editor (highlighting, examples, Ctrl+Enter), the
result table (links, sorting, pages), downloads and the shareable URL, under the site's
Content-Security-Policy, and the same page without JavaScript."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest
from browser import Tab, open_tab, select
from live import Server
from playwright.sync_api import Browser, Page

pytestmark = pytest.mark.embedded_only(
    "the page is the same HTML over every store (tests/test_sparql_page.py checks each); "
    "one browser run is enough"
)


def editor_text(page: Page) -> str:
    """The editor's text, line by line as it shows it (a short query: every line is drawn)."""
    lines = page.locator(".sparql-editor .cm-content .cm-line").all_inner_texts()
    return "\n".join(line.rstrip("\n") for line in lines)


def open_editor(page: Page, base: str) -> None:
    page.goto(base + "sparql")
    page.locator(".sparql-editor .cm-content").wait_for()


def test_the_editor_replaces_the_textarea_and_highlights(live: Server, desktop: Tab) -> None:
    page = desktop.page
    open_editor(page, live.base)
    assert page.locator("textarea#query").is_hidden()
    query = page.locator("textarea#query").input_value()
    assert editor_text(page) == query
    # Keywords, variables and IRIs are coloured differently from the plain text.
    colours = page.evaluate(
        """() => {
          const root = document.querySelector('.sparql-editor').shadowRoot;
          const colour = (text) => [...root.querySelectorAll('.cm-line span')]
            .filter((s) => s.textContent === text).map((s) => getComputedStyle(s).color)[0];
          return {keyword: colour('SELECT'), variable: colour('?category'),
                  iri: colour('<http://purl.org/dc/terms/>'),
                  plain: getComputedStyle(root.querySelector('.cm-line')).color};
        }"""
    )
    assert len({colours["keyword"], colours["variable"], colours["iri"], colours["plain"]}) == 4
    # Typing edits the form's query.
    page.locator(".cm-content").click()
    page.keyboard.press("Control+End")
    page.keyboard.type("\nLIMIT 2")
    assert page.locator("textarea#query").input_value() == query + "\nLIMIT 2"
    assert page.get_by_text("Ctrl+Enter").is_visible()
    # CodeMirror's own styles apply under the site's CSP (a constructed style sheet in the
    # editor's shadow root, not a <style> element): its base theme makes the editor a flexbox.
    display = page.evaluate(
        "() => getComputedStyle(document.querySelector('.sparql-editor').shadowRoot"
        ".querySelector('.cm-editor')).display"
    )
    assert display == "flex"
    # Tab leaves the editor for the next control (no keyboard trap, WCAG 2.1.2).
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.id") == "format"


def test_an_example_runs_with_ctrl_enter(live: Server, desktop: Tab) -> None:
    page = desktop.page
    open_editor(page, live.base)
    item = page.locator("ul.examples > li").filter(has_text=re.compile(r"The entries of \d{4} in"))
    title = item.locator("a").first.inner_text()
    text = item.locator("pre").inner_text()
    assert "dcterms:subject <" in text and "YEAR(?created)" in text  # a category and a year
    item.get_by_role("button", name=re.compile("Edit")).click()
    assert editor_text(page) == text
    assert page.evaluate("() => document.activeElement.className") == "sparql-editor"
    with page.expect_navigation():
        page.keyboard.press("Control+Enter")
    # The page's URL is the query's: shared or bookmarked, it runs it again.
    assert parse_qs(urlsplit(page.url).query)["query"] == [text.replace("\n", "\r\n")]
    expected = select(live.base, text)
    assert expected, title
    rows = page.locator("table.results tbody tr")
    assert rows.count() == len(expected)
    assert page.locator("#results-count").inner_text().startswith(f"{len(expected)} row")
    links = rows.locator("td:first-child a")
    assert [links.nth(i).get_attribute("href") for i in range(links.count())] == [
        r["entry"] for r in expected
    ]
    headers = page.locator("table.results thead th").all_inner_texts()
    assert [h.split()[0] for h in headers] == ["?entry", "?title", "?created"]
    share = page.get_by_role("link", name="Link to this query")
    assert live.base.rstrip("/") + str(share.get_attribute("href")) == page.url.split("&")[0]


def test_the_table_sorts_by_any_column(live: Server, desktop: Tab) -> None:
    page = desktop.page
    open_editor(page, live.base)
    page.locator("ul.examples > li").filter(has_text="Entries per category").locator("a").click()
    table = page.locator("table.results")
    counts = [int(c.split()[0]) for c in table.locator("tbody td:nth-child(3)").all_inner_texts()]
    assert counts == sorted(counts, reverse=True)  # ORDER BY DESC(?entries)
    entries = table.get_by_role("button", name="?entries")
    entries.click()
    assert table.locator("th").nth(2).get_attribute("aria-sort") == "ascending"
    after = [int(c.split()[0]) for c in table.locator("tbody td:nth-child(3)").all_inner_texts()]
    assert after == sorted(counts)
    entries.press("Enter")  # a button: the keyboard sorts too
    assert table.locator("th").nth(2).get_attribute("aria-sort") == "descending"
    labels = table.get_by_role("button", name="?label")
    labels.click()
    names = [c.rsplit(" ", 1)[0] for c in table.locator("tbody td:nth-child(2)").all_inner_texts()]
    assert names == sorted(names, key=str.casefold)
    assert table.locator("th").nth(2).get_attribute("aria-sort") is None


def test_a_large_result_is_paged_in_the_query_order(live: Server, desktop: Tab) -> None:
    page = desktop.page
    total = len(select(live.base, "SELECT * WHERE { ?s ?p ?o }"))
    assert total > 200
    page.goto(live.base + "sparql?query=" + "SELECT+*+WHERE+%7B+%3Fs+%3Fp+%3Fo+%7D")
    headers = page.locator("table.results thead th").all_inner_texts()
    assert [h.split()[0] for h in headers] == ["?s", "?p", "?o"]  # not sorted by name
    assert page.locator("table.results tbody tr").count() == 100
    assert f"of {total:,}" in page.locator("table.results caption").inner_text()
    pager = page.get_by_role("navigation", name="Result pages")
    pager.get_by_role("link", name="Next").click()
    assert page.locator("table.results caption").inner_text().startswith("Rows 101–200 of")
    pages = -(-total // 100)
    pager.get_by_role("link", name=f"Page {pages}").click()
    assert page.locator("table.results tbody tr").count() == total - (pages - 1) * 100


def test_downloads_in_each_format(live: Server, desktop: Tab) -> None:
    page = desktop.page
    page.goto(live.base + "sparql?query=" + "SELECT+%3Fs+WHERE+%7B+%3Fs+%3Fp+%3Fo+%7D+LIMIT+3")
    types = {}
    for label in ("JSON", "XML", "CSV", "TSV"):
        link = page.get_by_role("link", name=label, exact=True)
        assert link.get_attribute("download")
        with page.expect_download() as info:
            link.click()
        download = info.value
        types[label] = download.suggested_filename
        assert download.failure() is None
    assert types == {
        "JSON": "results.srj",
        "XML": "results.srx",
        "CSV": "results.csv",
        "TSV": "results.tsv",
    }


def test_the_page_works_without_javascript(live: Server, chromium: Browser) -> None:
    tab = open_tab(chromium, {"width": 1280, "height": 900}, java_script_enabled=False)
    page = tab.page
    try:
        page.goto(live.base + "sparql")
        assert page.locator(".sparql-editor").count() == 0
        textarea = page.get_by_label("Query")
        textarea.fill("SELECT ?s WHERE { ?s a <http://www.w3.org/2004/02/skos/core#Concept> }")
        page.get_by_role("button", name="Run query").click()
        concepts = select(
            live.base, "SELECT ?s { ?s a <http://www.w3.org/2004/02/skos/core#Concept> }"
        )
        assert page.locator("table.results tbody tr").count() == len(concepts)
        assert page.get_by_role("button", name="?s").count() == 0  # sorting needs the script
    finally:
        page.context.close()
    tab.check()


def test_the_editor_works_on_a_phone(live: Server, phone: Tab) -> None:
    page = phone.page
    open_editor(page, live.base)
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 360
    page.locator("ul.examples > li").first.locator("a").click()
    wide = page.evaluate(
        """() => [...document.querySelectorAll('body *')]
             .filter((e) => e.getBoundingClientRect().right > innerWidth + 1)
             .map((e) => `${e.tagName}.${e.className} ${e.getBoundingClientRect().right}`)"""
    )
    assert wide == []  # the table scrolls in its own region
    region = page.get_by_role("region", name=re.compile("^Rows 1"))
    assert region.get_attribute("tabindex") == "0"
