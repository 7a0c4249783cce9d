"""Browser tests' helpers: Debian's headless Chromium driven by Playwright for Python, and
axe-core (from the npm registry, package-lock.json) run in the page.

Fixtures (import them in a test module): `chromium`, a browser for the session; `desktop` and
`phone`, a fresh page at 1280 and 360 CSS pixels wide whose Content-Security-Policy violations,
script errors and failed requests fail the test. Without chromium, Playwright or axe-core the
tests are skipped, saying why; with CI set, they fail (.ci/run installs all three).
Screenshots go to tests/artifacts/screenshots/ (git-ignored), named by page and width.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import pytest
from live import ROOT

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Route

CHROMIUM = "/usr/bin/chromium"  # Debian's package (apt-get install chromium)
# As this machine's notes ask: no GPU, no sandbox as root, and no background connections
# (the network is closed: Chromium's own calls home would be refused, many at a time).
# Playwright gives each browser a new empty profile (its own --user-data-dir).
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = ROOT / "tests" / "artifacts" / "screenshots"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 360, "height": 740}
# What the server is to send on every page; added to the SPARQL page's responses when they do
# not carry a policy yet, so that the editor is checked under it either way. (Other pages are
# checked under the policy the server sends.)
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
# Reports each violation to the console, where the page fixture collects it.
REPORT_CSP = """document.addEventListener("securitypolicyviolation", (e) =>
  console.error(`CSP violation: ${e.violatedDirective} ${e.blockedURI} ${e.sample}`));"""


def missing(reason: str) -> None:
    """Skip, or fail under CI (where .ci/run installs what the browser tests need)."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI installs it: .ci/run)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def chromium() -> Iterator[Browser]:
    """Debian's Chromium, headless, driven by Playwright (no browser download)."""
    if shutil.which(CHROMIUM) is None:
        missing(f"no {CHROMIUM}: apt-get install chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("Playwright for Python is not installed: pip install -e '.[test]'")
    if not AXE.exists():
        missing(f"no {AXE.relative_to(ROOT)}: npm ci")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


@dataclass
class Tab:
    """A page and what went wrong in it: CSP violations, script errors, failed requests."""

    page: Page
    width: int
    problems: list[str] = field(default_factory=list)

    def check(self) -> None:
        assert not self.problems, "\n".join(self.problems)


def _with_csp(route: Route) -> None:
    from playwright.sync_api import Error

    try:
        response = route.fetch()
        headers = dict(response.headers)
        headers.setdefault("content-security-policy", CSP)
        route.fulfill(response=response, headers=headers)
    except Error:  # the page was closed meanwhile: nobody waits for the answer
        pass


def open_tab(browser: Browser, viewport: dict[str, int], **options: Any) -> Tab:
    context = browser.new_context(viewport=viewport, **options)
    # 60 s: on a 2-core machine at load 10, the 150-row SPARQL results page (13,756 px tall,
    # the editor, axe) once took longer than the 20 s this was; the tests assert no time
    context.set_default_timeout(60_000)
    context.route(re.compile(r"/sparql(\?|$)"), _with_csp)
    page = context.new_page()
    tab = Tab(page, viewport["width"])
    page.add_init_script(REPORT_CSP)
    page.on(
        "console",
        lambda m: tab.problems.append(m.text) if m.text.startswith("CSP violation") else None,
    )
    page.on("pageerror", lambda e: tab.problems.append(f"script error: {e}"))
    page.on(
        "requestfailed",  # a navigation stops the loads of the page it leaves: ERR_ABORTED
        lambda r: (
            None
            if "ERR_ABORTED" in (r.failure or "")
            else tab.problems.append(f"request failed: {r.url} {r.failure}")
        ),
    )
    return tab


@pytest.fixture
def desktop(chromium: Browser) -> Iterator[Tab]:
    tab = open_tab(chromium, DESKTOP)
    yield tab
    tab.page.context.close()
    tab.check()


@pytest.fixture
def phone(chromium: Browser) -> Iterator[Tab]:
    tab = open_tab(chromium, PHONE, is_mobile=True, has_touch=True)
    yield tab
    tab.page.context.close()
    tab.check()


def screenshot(tab: Tab, name: str) -> Path:
    """Keep a full-page screenshot as a test artefact: tests/artifacts/screenshots/."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}-{tab.width}.png"
    tab.page.screenshot(path=str(path), full_page=True)
    return path


def axe_violations(page: Page, impacts: tuple[str, ...] = ("serious", "critical")) -> list[str]:
    """axe-core's WCAG 2.1 A/AA and best-practice violations of these impacts, one line each."""
    page.evaluate(AXE.read_text(encoding="utf-8") + "\n;0")  # CDP: not subject to the CSP
    result = page.evaluate(
        """() => axe.run(document, {
             runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa",
                                             "best-practice"]},
             resultTypes: ["violations"]})"""
    )
    return [
        f"{v['impact']}: {v['id']}: {v['help']}: "
        + "; ".join(" ".join(map(str, n["target"])) for n in v["nodes"][:5])
        for v in result["violations"]
        if v["impact"] in impacts
    ]


def select(base: str, query: str) -> list[dict[str, str]]:
    """The solutions of a SELECT on the live server, as {variable: value}."""
    request = urllib.request.Request(
        base + "sparql?" + urlencode({"query": query}),
        headers={"Accept": "application/sparql-results+json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        data = json.load(response)
    return [{k: v["value"] for k, v in b.items()} for b in data["results"]["bindings"]]
