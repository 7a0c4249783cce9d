"""The listing parser: its quirks, UK time zones, merging across pages, and bad input."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from live import FIXTURES, SEED

from graph.errors import ListingError
from graph.listing import merge_pages, parse_listing, read_listings, read_text

LISTINGS = FIXTURES / "listings"


def _by_title(path: Path) -> dict[str, list]:
    page = parse_listing(read_text(path), str(path))
    out: dict[str, list] = {}
    for entry in page.entries:
        out.setdefault(entry.title, []).append(entry)
    return out


def test_seed_has_35_entries_in_9_categories() -> None:
    _, entries, warnings = read_listings([SEED])
    assert len(entries) == 35
    assert len({c for e in entries for c in e.categories}) == 9
    assert warnings == []


def test_heading_and_chrome_are_not_entries() -> None:
    page = parse_listing(read_text(LISTINGS / "good" / "quirks.txt"), "quirks.txt")
    assert page.heading == "Library – Safeguarding"
    assert all(e.title not in ("No Comments", "Library – Safeguarding") for e in page.entries)
    assert all("comment form" not in e.description for e in page.entries)
    assert len(page.entries) == 8


def test_wrapped_lines_are_joined_and_sentences_kept_as_lines() -> None:
    entry = _by_title(LISTINGS / "good" / "quirks.txt")["A report with a wrapped description"][0]
    assert entry.description == (
        "Children are recognised as victims in their own right.\n"
        "When the Bill receives Royal Assent, professionals who come into contact "
        "with children will need to demonstrate the change."
    )


def test_bullets_with_and_without_space_stay_lines_as_written() -> None:
    entry = _by_title(LISTINGS / "good" / "quirks.txt")["Bullets with and without a space"][0]
    assert entry.description.split("\n") == [
        "Four ‘P’ work strands:",
        "•prevent: to stop people becoming terrorists",
        "• pursue: to stop terrorist attacks",
    ]


def test_blank_line_inside_a_description_keeps_both_paragraphs_and_typography() -> None:
    entry = _by_title(LISTINGS / "good" / "quirks.txt")["A description in two paragraphs"][0]
    assert entry.description == (
        "The first paragraph ends here.\nThe second paragraph – with “quotes” and accents: café."
    )


def test_entry_without_description() -> None:
    entry = _by_title(LISTINGS / "good" / "quirks.txt")["An entry without a description"][0]
    assert entry.description == ""
    assert entry.categories == ("Crime/ASB", "Youth Justice")


@pytest.mark.parametrize(
    ("title", "index", "iso"),
    [
        ("A description in two paragraphs", 0, "2019-01-12T00:07:00+00:00"),  # 12:07 am
        ("An entry without a description", 0, "2018-05-30T12:43:00+01:00"),  # 12:43 pm, BST
        ("Same title, another time", 0, "2021-03-28T00:59:00+00:00"),  # before spring change
        ("Same title, another time", 1, "2021-03-28T02:01:00+01:00"),  # after spring change
        ("Autumn, before the change", 0, "2021-10-31T00:30:00+01:00"),
        ("Autumn, after the change", 0, "2021-10-31T02:30:00+00:00"),
    ],
    ids=[
        "12:07am-midnight",
        "12:43pm-noon-bst",
        "spring-before",
        "spring-after",
        "autumn-before",
        "autumn-after",
    ],
)
def test_uk_local_time_on_both_sides_of_the_clock_change(title: str, index: int, iso: str) -> None:
    entry = _by_title(LISTINGS / "good" / "quirks.txt")[title][index]
    assert entry.created.isoformat() == iso


@pytest.mark.parametrize(
    ("added", "offset", "warning"),
    [
        ("28/03/2021 at 1:30 am", 0, "does not exist"),
        ("31/10/2021 at 1:30 am", 1, "happens twice"),
    ],
    ids=["spring-gap", "autumn-overlap"],
)
def test_times_the_clock_change_makes_odd_are_read_with_a_warning(
    added: str, offset: int, warning: str
) -> None:
    text = f"Library – X\n\nT\n\nAdded: {added} Category: A\n"
    page = parse_listing(text, "x.txt")
    assert page.entries[0].created.utcoffset() == timedelta(hours=offset)
    assert len(page.warnings) == 1
    assert page.warnings[0].startswith("x.txt:5: ")
    assert warning in page.warnings[0]


def test_same_entry_on_several_pages_is_one_entry_with_its_places() -> None:
    pages = sorted((LISTINGS / "pages").glob("*.txt"))
    _, entries, _ = read_listings(pages)
    assert sorted(e.title for e in entries) == [
        "At last there is someone I can talk to",
        "Becoming Trauma Informed",
        "Covid-19 and early intervention",
    ]
    trauma = next(e for e in entries if e.title == "Becoming Trauma Informed")
    assert [p.file.rsplit("/", 1)[1] for p in trauma.places] == [
        "library-crime-asb.txt",
        "library-safeguarding.txt",
    ]


def test_page_order_does_not_matter() -> None:
    pages = sorted((LISTINGS / "pages").glob("*.txt"))
    _, forward, _ = read_listings(pages)
    _, backward, _ = read_listings(list(reversed(pages)))
    assert forward == backward
    assert [e.places for e in forward] == [e.places for e in backward]


def test_two_entries_may_share_a_title() -> None:
    same = _by_title(LISTINGS / "good" / "quirks.txt")["Same title, another time"]
    assert len(same) == 2
    assert same[0].key != same[1].key


def test_conflicting_descriptions_across_pages_name_both_places(tmp_path: Path) -> None:
    a = tmp_path / "a.txt"
    b = tmp_path / "b.txt"
    a.write_text("Library – A\n\nT\n\nAdded: 01/02/2020 at 9:00 am Category: A, B\n\nOne.\n")
    b.write_text("Library – B\n\nT\n\nAdded: 01/02/2020 at 9:00 am Category: A, B\n\nTwo.\n")
    for order in ([a, b], [b, a]):
        pages = [parse_listing(read_text(p), str(p)) for p in order]
        with pytest.raises(ListingError) as info:
            merge_pages(pages)
        assert str(info.value) == (
            f"{b}:3: entry 'T' (Added 01/02/2020 09:00) has a different description at {a}:3; "
            "expected the same text on every page"
        )


BAD = {
    "empty.txt": "1: empty file; expected a listing page ('Library – …' and entries)",
    "blank.txt": "1: empty file; expected a listing page ('Library – …' and entries)",
    "impossible-date.txt": "5: impossible date 31/02/2020 (day is out of range for month); "
    "expected a real DD/MM/YYYY date",
    "impossible-time.txt": "5: impossible time 13:75 pm; expected H:MM am|pm, 1:00 to 12:59",
    "no-category.txt": "5: 'Added:' line has no 'Category:'; "
    "expected 'Added: DD/MM/YYYY at H:MM am|pm Category: A, B'",
    "no-at.txt": "5: cannot read the date and time in 'Added: 01/02/2020 9:00 am'; "
    "expected 'Added: DD/MM/YYYY at H:MM am|pm Category: A, B'",
    "iso-date.txt": "5: cannot read the date '2020-02-01'; expected DD/MM/YYYY",
    "not-utf8.txt": "7: not UTF-8 text (byte 0xe9 at offset 80); "
    "expected a listing page saved as UTF-8",
    "no-blank-after-title.txt": "4: 'Added:' line directly below text; expected a title, "
    "a blank line, then the 'Added:' line",
    "empty-category.txt": "5: empty category in 'Safeguarding, , Prevent'; "
    "expected 'Category: A, B, C'",
    "text-before-entry.txt": "3: unexpected text before the first entry: 'Some stray text'; "
    "expected a title, a blank line, then 'Added: DD/MM/YYYY at H:MM am|pm Category: A, B'",
    "no-entries.txt": "3: unexpected text before the first entry: "
    "'Just a heading and no entries.'; expected a title, a blank line, then "
    "'Added: DD/MM/YYYY at H:MM am|pm Category: A, B'",
}


def test_every_bad_fixture_is_covered() -> None:
    assert sorted(p.name for p in (LISTINGS / "bad").glob("*.txt")) == sorted(BAD)


@pytest.mark.parametrize(("name", "message"), sorted(BAD.items()), ids=sorted(BAD))
def test_bad_listing_gives_file_line_and_what_was_expected(name: str, message: str) -> None:
    path = LISTINGS / "bad" / name
    with pytest.raises(ListingError) as info:
        read_listings([path])
    assert str(info.value) == f"{path}:{message}"
