"""Browsing in headless Chromium as a person does: from the landing page to a category, its
years and a year's categories; the years of the library; an entry's previous and next entries
and the others of its categories. Counts and order are checked against SPARQL on the same
release."""

from __future__ import annotations

import re

import pytest
from browser import Tab, select
from live import Server
from playwright.sync_api import Page

pytestmark = pytest.mark.embedded_only(
    "browsing reads the release's index, the same over every store; one browser run"
)

PREFIXES = (
    "PREFIX dcterms: <http://purl.org/dc/terms/>\n"
    "PREFIX dcmitype: <http://purl.org/dc/dcmitype/>\n"
    "PREFIX skos: <http://www.w3.org/2004/02/skos/core#>\n"
)


def listed(page: Page) -> list[str]:
    """The entries a list page shows, by IRI, in order."""
    links = page.locator("main ol.entries > li > a")
    return [str(links.nth(i).get_attribute("href")) for i in range(links.count())]


def entries(base: str, where: str) -> list[str]:
    """The entries matching a pattern, newest first (as the pages list them)."""
    rows = select(
        base,
        PREFIXES
        + "SELECT ?e WHERE { ?e a dcmitype:Text ; dcterms:created ?c . "
        + where
        + " } ORDER BY DESC(?c) DESC(?e)",
    )
    return [r["e"] for r in rows]


def absolute(base: str, hrefs: list[str]) -> list[str]:
    return [h if h.startswith("http") else base.rstrip("/") + h for h in hrefs]


def test_a_category_by_year(live: Server, desktop: Tab) -> None:
    page = desktop.page
    page.goto(live.base)
    page.get_by_role("navigation", name="Site").get_by_role("link", name="Categories").click()
    page.get_by_role("main").get_by_role("link", name="Safeguarding", exact=True).first.click()
    assert page.get_by_role("heading", level=1).inner_text() == "Safeguarding"
    category = page.url
    years = page.get_by_role("region", name="By year")
    year_item = years.get_by_role("listitem").nth(1)
    year = year_item.get_by_role("link").inner_text()
    count = int(year_item.locator(".count").inner_text().replace(",", ""))
    year_item.get_by_role("link").click()
    assert page.get_by_role("heading", level=1).inner_text() == (
        f"Safeguarding: entries added in {year}"
    )
    expected = entries(live.base, f"?e dcterms:subject <{category}> FILTER(YEAR(?c) = {year})")
    assert len(expected) == count
    assert absolute(live.base, listed(page)) == expected
    for when in page.locator("main ol.entries time").all():
        assert str(when.get_attribute("datetime")).startswith(year)
    # The breadcrumbs lead back: Categories, then the category.
    crumbs = page.get_by_role("navigation", name="Breadcrumb")
    crumbs.get_by_role("link", name="Safeguarding").click()
    assert page.url == category


def test_the_years_of_the_library(live: Server, desktop: Tab) -> None:
    page = desktop.page
    page.goto(live.base + "years")
    links = page.get_by_role("main").locator("ul.years > li > a")
    years = links.all_inner_texts()
    assert years == sorted(years, reverse=True) and years
    links.last.click()
    year = years[-1]
    assert page.get_by_role("heading", level=1).inner_text() == f"Entries added in {year}"
    assert absolute(live.base, listed(page)) == entries(live.base, f"FILTER(YEAR(?c) = {year})")
    # A category of that year narrows the list.
    section = page.get_by_role("region", name=f"Categories in {year}")
    item = section.get_by_role("listitem").first
    label = item.get_by_role("link").inner_text()
    item.get_by_role("link").click()
    assert page.get_by_role("heading", level=1).inner_text() == (
        f"{label}: entries added in {year}"
    )
    assert all(label in e for e in [page.get_by_role("heading", level=1).inner_text()])


def test_an_entrys_neighbours(live: Server, desktop: Tab) -> None:
    page = desktop.page
    library = entries(live.base, "")  # newest first
    middle = library[len(library) // 2]
    page.goto(middle)
    neighbours = page.get_by_role("navigation", name="Previous and next entry in the library")
    newer = neighbours.get_by_role("link", name=re.compile("Previous"))
    older = neighbours.get_by_role("link", name=re.compile("Next"))
    index = library.index(middle)
    assert absolute(live.base, [str(newer.get_attribute("href"))]) == [library[index - 1]]
    assert absolute(live.base, [str(older.get_attribute("href"))]) == [library[index + 1]]
    older.click()
    assert page.url == library[index + 1]
    page.get_by_role("navigation", name="Previous and next entry in the library").get_by_role(
        "link", name=re.compile("Previous")
    ).click()
    assert page.url == middle
    # The other entries of its categories: each is in that category, never the entry itself.
    related = page.get_by_role("region", name="More in these categories")
    for heading in related.get_by_role("heading", level=3).all():
        label = heading.inner_text()
        shown = absolute(
            live.base,
            [
                str(a.get_attribute("href"))
                for a in related.get_by_role("list", name=label).get_by_role("link").all()
            ],
        )
        members = entries(
            live.base,
            f'?e dcterms:subject ?k . ?k skos:prefLabel "{label}"@en',
        )
        assert shown and middle not in shown
        assert set(shown) <= set(members)
