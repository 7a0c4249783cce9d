"""The search in headless Chromium as a person uses it: words typed in the box on any page,
a category and a year picked among the facets and one removed again, a publisher too; and
with the keyboard only, from the first Tab to the first result."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest
from browser import Tab
from live import Server
from playwright.sync_api import Locator, Page

pytestmark = pytest.mark.embedded_only(
    "the search reads the release's index, the same over every store; one browser run"
)


def params(page: Page) -> dict[str, list[str]]:
    return parse_qs(urlsplit(page.url).query)


def hits(page: Page) -> Locator:
    return page.locator("ol.hits > li")


def total(page: Page) -> int:
    heading = page.get_by_role("heading", level=2).filter(has_text=re.compile("found")).first
    match = re.match(r"([\d,]+|One|No) entr", heading.inner_text())
    assert match, heading.inner_text()
    return {"One": 1, "No": 0}.get(match.group(1)) or int(match.group(1).replace(",", ""))


def test_search_with_facets(live: Server, desktop: Tab) -> None:
    page = desktop.page
    page.goto(live.base)
    page.get_by_role("search").first.get_by_role("searchbox").fill("exploitation")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/search\?"))
    assert params(page)["q"] == ["exploitation"]
    found = total(page)
    assert found == hits(page).count() > 1
    assert all("xploitation" in t.lower() for t in hits(page).locator("mark").all_inner_texts())

    # A category: its count is the number of hits it leaves, each in that category.
    categories = page.get_by_role("list", name="Categories")
    online = categories.get_by_role("listitem").filter(has_text="Online Safety")
    expected = int(online.locator(".count").inner_text())
    online.get_by_role("link").click()
    assert params(page)["category"] == ["online-safety"]
    assert total(page) == expected == hits(page).count() < found
    for hit in hits(page).all():
        assert "Online Safety" in hit.locator(".hit-meta").inner_text()

    # And a year.
    years = page.get_by_role("list", name="Years added")
    year = years.get_by_role("listitem").first
    name = year.get_by_role("link").inner_text()
    expected = int(year.locator(".count").inner_text())
    year.get_by_role("link").click()
    assert params(page)["year"] == [name]
    assert total(page) == expected == hits(page).count()
    for when in hits(page).locator("time").all():
        assert str(when.get_attribute("datetime")).startswith(name)

    # Remove the category: the words and the year stay, and more entries are found.
    page.get_by_role("link", name="Online Safety, selected: remove").first.click()
    assert "category" not in params(page)
    assert params(page)["year"] == [name] and params(page)["q"] == ["exploitation"]
    assert total(page) >= expected


def test_search_by_publisher(live: Server, desktop: Tab) -> None:
    page = desktop.page
    page.goto(live.base + "search")
    publishers = page.get_by_role("list", name="Publishers")
    npcc = publishers.get_by_role("listitem").filter(has_text="National Police Chiefs")
    expected = int(npcc.locator(".count").inner_text())
    npcc.get_by_role("link").click()
    assert params(page)["publisher"] == ["npcc"]
    assert total(page) == expected == hits(page).count() >= 1
    # Words typed in the box keep the publisher chosen.
    page.get_by_role("search").first.get_by_role("searchbox").fill("police")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"q=police"))
    assert params(page)["publisher"] == ["npcc"]
    narrow = total(page)
    assert narrow >= 1
    page.get_by_role("link", name="Remove the filter National Police Chiefs' Council").click()
    assert "publisher" not in params(page) and params(page)["q"] == ["police"]
    assert total(page) >= narrow


def test_keyboard_only_search(live: Server, desktop: Tab) -> None:
    page = desktop.page
    page.goto(live.base)
    for _ in range(40):
        page.keyboard.press("Tab")
        if page.evaluate("() => document.activeElement.type") == "search":
            break
    else:
        pytest.fail("Tab never reached a search box")
    page.keyboard.type("county lines")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert params(page)["q"] == ["county lines"]
    first = hits(page).first.get_by_role("link").first
    href = first.get_attribute("href")
    for _ in range(40):
        page.keyboard.press("Tab")
        focused = page.evaluate(
            "() => [document.activeElement.getAttribute('href'),"
            " !!document.activeElement.closest('ol.hits')]"
        )
        if focused[0] == href:
            break
        assert not focused[1], "Tab reached a result before the first"
    else:
        pytest.fail("Tab never reached the first result")
    # The focus is visible (WCAG 2.4.7), and Enter follows the link.
    outline = page.evaluate("() => getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.url == href or page.url.endswith(str(href))
