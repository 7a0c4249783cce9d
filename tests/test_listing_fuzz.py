"""The listing parser fuzzed with hypothesis (issue 13, hostile input).

Any text in gives a Page (and merge_pages its entries) or a ListingError that names the file
and a line of it, never another exception; any bytes in read_text give text or a
ListingError. Generated listings (entries with Unicode titles, times all over the calendar,
category lists, descriptions with paragraphs, bullets and wrapped lines) are rendered in the
listing format, parsed, and compared with what was generated. Both parser routes (the line
walk and the column reading of long pages) are held to the same answers.

A short run (FUZZ_EXAMPLES examples per property) runs with the suite; `pytest -m fuzz`
runs the same properties with many more examples (README, "Development").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from graph.errors import ListingError
from graph.listing import (
    ADDED_PREFIX,
    CHROME,
    GMT_FROM,
    Page,
    _parse_columns,
    _stripped_lines,
    merge_pages,
    parse_listing,
    read_text,
)

FILE = "fuzz.txt"
LONDON = ZoneInfo("Europe/London")
FUZZ_EXAMPLES = 150  # the suite's short run, per property
LONG_EXAMPLES = 20_000  # `pytest -m fuzz`
SHORT = settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
LONG = settings(SHORT, max_examples=LONG_EXAMPLES)
LOCATED = re.compile(rf"^{re.escape(FILE)}:(\d+): \S")


# --- any text ------------------------------------------------------------------------------------

# Lines that look like the format, or nearly: the parser's real input is a page someone edited.
_NUMBER = st.one_of(
    st.integers(0, 99).map(str),
    st.integers(0, 99).map(lambda n: f"{n:02d}"),
    st.sampled_from(["0000", "9999", "1847", "2024", "10000", "٣", "１２", "²", "-1", ""]),
    st.integers(0, 99999).map(str),
)
_WORD = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=0, max_size=12)
_CATEGORIES = st.lists(
    st.one_of(_WORD, st.sampled_from(["Safeguarding", "Crime/ASB", " ", ""])), max_size=4
).map(", ".join)


@st.composite
def _added_line(draw: st.DrawFn) -> str:
    day, month, year = draw(_NUMBER), draw(_NUMBER), draw(_NUMBER)
    hour, minute = draw(_NUMBER), draw(_NUMBER)
    ampm = draw(st.sampled_from(["am", "pm", "PM", "aM", "xm", ""]))
    space = draw(st.sampled_from([" ", "", "  ", "\t", "\u00a0", "\x1f", "\u2003"]))
    category = draw(st.sampled_from(["Category:", "Category: ", "category:", ""]))
    return (
        f"{ADDED_PREFIX}{space}{day}/{month}/{year}{space}at{space}{hour}:{minute}{space}{ampm}"
        f"{space}{category}{draw(_CATEGORIES)}"
    )


_LINE = st.one_of(
    st.just(""),
    st.sampled_from([*sorted(CHROME), "Library – Fuzz", "•", "• a bullet", ADDED_PREFIX]),
    _added_line(),
    _WORD,
    st.text(max_size=40),
)
_PAGE = st.one_of(
    st.text(),
    st.lists(_LINE, max_size=30).map("\n".join),
    st.lists(_LINE, max_size=30).map("\r\n".join),
    st.lists(_LINE, max_size=12).map(lambda lines: "\u2028".join(lines) + "\x85"),
)


def _parse_or_located_error(text: str) -> Page | None:
    """parse_listing's Page, or None after checking that its ListingError is located."""
    try:
        page = parse_listing(text, FILE)
    except ListingError as exc:
        assert exc.file == FILE
        assert 1 <= exc.line <= max(1, len(text.splitlines())), (exc.line, str(exc))
        assert LOCATED.match(str(exc)), str(exc)
        assert "\n" not in exc.message, exc.message
        return None
    assert all(e.title and e.categories for e in page.entries)
    assert all(e.created.utcoffset() is not None for e in page.entries)
    return page


def _check_any_text(text: str) -> None:
    page = _parse_or_located_error(text)
    # The column route (taken by pages of 2,000 lines and more) agrees on any text.
    try:
        columns: Page | ListingError = _parse_columns(tuple(_stripped_lines(text, FILE)), FILE)
    except ListingError as exc:
        columns = exc
    if page is None:
        assert isinstance(columns, ListingError)
    else:
        assert repr(columns) == repr(page)
        try:
            entries, _ = merge_pages([page])
        except ListingError as exc:
            assert LOCATED.match(str(exc)), str(exc)
        else:
            assert len(entries) <= len(page.entries)


@SHORT
@given(_PAGE)
@example("Added: 29/02/2023 at 1:00 am Category: A")
@example("T\n\nAdded: 1/1/0000 at 12:00 am Category: A")
@example("T\n\nAdded: 31/12/9999 at 11:59 pm Category: A")
@example("T\n\nAdded: 01/01/1847 at 12:00 pm Category: A")
@example("T\n\nAdded: ٣/٣/٢٠٢٠ at ١:٠٠ pm Category: A")
@example("T\n\nAdded: 1/1/2020 at 1:00 pm Category:")
@example("T\n\nAdded: 1/1/2020 at 1:00 pm Category: A,,B")
@example("\ufeff\n\n\n")
def test_any_text_gives_entries_or_a_located_error(text: str) -> None:
    _check_any_text(text)


@pytest.mark.fuzz
@LONG
@given(_PAGE)
def test_any_text_gives_entries_or_a_located_error_long(text: str) -> None:
    _check_any_text(text)


def _check_any_bytes(tmp: Path, data: bytes) -> None:
    path = tmp / FILE
    path.write_bytes(data)
    try:
        text = read_text(path)
    except ListingError as exc:
        assert str(exc).startswith(f"{path}:"), str(exc)
        return
    assert "\x00" not in text
    assert not text.startswith("\ufeff")


@SHORT
@given(st.one_of(st.binary(max_size=200), st.text().map(lambda t: t.encode("utf-8", "replace"))))
@example(b"\xff\xfeA\x00")
@example(b"T\n\nAdded: 1/1/2020\x00")
def test_any_bytes_read_as_text_or_a_located_error(
    tmp_path_factory: pytest.TempPathFactory, data: bytes
) -> None:
    _check_any_bytes(tmp_path_factory.mktemp("bytes"), data)


# --- round trip --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Generated:
    """One entry as generated: what the page must give back."""

    title: str
    local: datetime  # naive UK wall-clock time, to the minute
    categories: tuple[str, ...]
    paragraphs: tuple[tuple[str, ...], ...]  # of lines, each kept as a line of the description
    wrap: tuple[int, ...]  # where a line is wrapped, as a person or a website wraps it

    def description(self) -> str:
        return "\n".join(line for paragraph in self.paragraphs for line in paragraph)


# Characters that stay on one line and survive str.strip(): no line breaks, no spaces at ends.
_BREAKS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
# Control characters are refused (XML 1.0 cannot carry them): the any-text test meets them.
_CHAR = st.characters(
    codec="utf-8",
    exclude_categories=("Cc", "Cs", "Zl", "Zp"),
    exclude_characters=_BREAKS + "\ufffe\uffff",
)
_TOKEN = st.text(_CHAR, min_size=1, max_size=10).map(lambda t: "".join(t.split())).filter(bool)


def _phrase(min_words: int = 1) -> st.SearchStrategy[str]:
    return st.lists(_TOKEN, min_size=min_words, max_size=8).map(" ".join)


_TITLE = _phrase().filter(lambda t: not t.startswith(ADDED_PREFIX) and t not in CHROME)
# A category list is split at commas; category names are kept as they are (trimmed).
_CATEGORY = _phrase().map(lambda t: " ".join(t.replace(",", " ").split())).filter(bool)
# A line that ends a sentence is never joined to the next one; a bullet line neither.
_LINE_OF_TEXT = st.one_of(
    _phrase().map(lambda t: t + "."),
    _phrase().map(lambda t: "• " + t + ";"),
    _phrase().map(lambda t: "•" + t + "?"),
).filter(lambda t: not t.startswith(ADDED_PREFIX) and t not in CHROME)
# Four-digit years, minutes apart (before 1 December 1847, London's local mean time is read
# as GMT: graph/listing.py GMT_FROM).
_MOMENT = st.datetimes(datetime(1000, 1, 1), datetime(9998, 12, 31, 23, 59)).map(
    lambda d: d.replace(second=0, microsecond=0)
)


@st.composite
def _entry(draw: st.DrawFn) -> Generated:
    paragraphs = draw(
        st.lists(st.lists(_LINE_OF_TEXT, min_size=1, max_size=3).map(tuple), max_size=3)
    )
    return Generated(
        title=draw(_TITLE),
        local=draw(_MOMENT),
        categories=tuple(draw(st.lists(_CATEGORY, min_size=1, max_size=4, unique=True))),
        paragraphs=tuple(paragraphs),
        wrap=tuple(draw(st.lists(st.integers(0, 40), max_size=3))),
    )


def _wrapped(line: str, at: tuple[int, ...]) -> list[str]:
    """The line cut at a space whose next word starts in lower case and whose previous word
    ends no sentence (the parser joins exactly those back with one space)."""
    words = line.split(" ")
    cuts = {
        i
        for i in range(1, len(words))
        if words[i][:1].islower()
        and not re.search(r"[.!?:;][\"'”’)\]]*$", words[i - 1])
        and not words[i].startswith(ADDED_PREFIX)
        and " ".join(words[i:]) not in CHROME
    }
    chosen = sorted(c for c in cuts if any(c % len(words) == a % len(words) for a in at))
    parts, start = [], 0
    for cut in chosen:
        parts.append(" ".join(words[start:cut]))
        start = cut
    parts.append(" ".join(words[start:]))
    return parts


def _render(heading: str, entries: list[Generated]) -> str:
    """A page in the listing format, as the website exports it."""
    lines = [heading, ""]
    for e in entries:
        hour = e.local.hour % 12 or 12
        ampm = "am" if e.local.hour < 12 else "pm"
        lines += [
            e.title,
            "",
            f"Added: {e.local:%d/%m/}{e.local.year:04d} at {hour}:{e.local:%M} {ampm} "
            f"Category: {', '.join(e.categories)}",
            "",
        ]
        for paragraph in e.paragraphs:
            for line in paragraph:
                lines += _wrapped(line, e.wrap)
            lines.append("")
        lines += ["No Comments", ""]  # page chrome between entries
    return "\n".join(lines)


def _check_round_trip(heading: str, entries: list[Generated]) -> None:
    assume(len({(e.title, e.local) for e in entries}) == len(entries))
    text = _render(heading, entries)
    page = parse_listing(text, FILE)
    assert page.heading == heading
    assert len(page.entries) == len(entries)
    for got, want in zip(page.entries, entries, strict=True):
        assert got.title == want.title
        assert got.created.replace(tzinfo=None) == want.local
        offset = got.created.utcoffset()
        assert offset is not None and offset % timedelta(hours=1) == timedelta(0)
        if want.local < datetime(*GMT_FROM):
            assert offset == timedelta(0)
        elif not any(f"{FILE}:" in w for w in page.warnings):
            assert offset == want.local.replace(tzinfo=LONDON).utcoffset()
        assert got.categories == want.categories
        assert got.description == want.description()
    columns = _parse_columns(tuple(_stripped_lines(text, FILE)), FILE)
    assert repr(columns) == repr(page)
    merged, _ = merge_pages([page])
    assert sorted(e.key for e in merged) == sorted(e.key for e in page.entries)


_HEADING = _phrase().map(lambda t: "Library – " + t)


@SHORT
@given(_HEADING, st.lists(_entry(), min_size=1, max_size=6))
def test_generated_listings_round_trip(heading: str, entries: list[Generated]) -> None:
    _check_round_trip(heading, entries)


@pytest.mark.fuzz
@LONG
@given(_HEADING, st.lists(_entry(), min_size=1, max_size=12))
def test_generated_listings_round_trip_long(heading: str, entries: list[Generated]) -> None:
    _check_round_trip(heading, entries)
