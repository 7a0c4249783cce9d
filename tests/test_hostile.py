"""Hostile input against the real server (issue 13): odd page numbers, huge bodies, markup in
the data, characters XML cannot carry, damaged publications, cache-filling format variants."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest
from fetch import BROWSER, get
from live import Server

JSON = "application/json"

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
