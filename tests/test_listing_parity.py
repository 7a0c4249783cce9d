"""parse_listing and merge_pages against the reference algorithms they replaced, on any input.

parse_listing reads a long well-formed page column by column (_parse_columns) and walks any
other page line by line (graph.listing._parse_lines, the reference); merge_pages sorts pages
without shared entries and falls back to the entry-by-entry merge (_merge_loop). The column
route is also called directly on short pages. Each must give the same values as the reference
(every field, places, UTC offsets and warnings: compared by repr) or the same exception (type
and message), on the fixtures, the seed, synthetic listings and thousands of mutated pages.
The tests also check that the fast paths ran, so that parity is not won by falling back.
"""

from __future__ import annotations

import importlib.util
import random
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from types import ModuleType

import pytest
from live import FIXTURES, SEED

from graph.errors import ListingError
from graph.listing import (
    COLUMNS_FROM_LINES,
    Entry,
    Page,
    _Memo,
    _merge_loop,
    _parse_columns,
    _parse_entries_fast,
    _parse_lines,
    _read_categories,
    _read_slabs,
    _sort_distinct,
    _stripped_lines,
    merge_pages,
    parse_listing,
    read_page,
    read_text,
)

LISTINGS = FIXTURES / "listings"
SEED_TEXT = 0  # a fixed random seed: the same mutations on every run


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_listing", FIXTURES / "gen_listing.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


GEN = _generator()


def synthetic(n: int, seed: int = 1) -> str:
    """One page of n generated entries, as gen_listing.py writes it."""
    text: str = GEN.render("All", list(GEN.entries(n, seed)))
    return text


def synthetic_pages(n: int, pages: int, seed: int = 1) -> list[str]:
    """n generated entries on category pages, as gen_listing.py --pages writes them."""
    items = list(GEN.entries(n, seed))
    return [GEN.render(cat, [e for e in items if cat in e[2]]) for cat in GEN.CATEGORIES[:pages]]


def outcome(parse: Callable[[str, str], Page], text: str, file: str = "page.txt") -> object:
    """What parse gives: the page, every field spelled out, or the exception it raises."""
    try:
        page = parse(text, file)
    except ListingError as exc:
        return ("error", type(exc), str(exc), exc.file, exc.line, exc.message)
    return ("page", repr(page), page)


def parse_by_columns(text: str, file: str) -> Page:
    """parse_listing's route for long pages, taken whatever the length of the page."""
    return _parse_columns(tuple(_stripped_lines(text, file)), file)


def took_fast_path(text: str, file: str = "page.txt") -> bool:
    try:
        lines = tuple(_stripped_lines(text, file))
    except ListingError:
        return False
    return _parse_entries_fast(lines, file) is not None


def assert_same_parse(text: str, file: str = "page.txt") -> None:
    expected = outcome(_parse_lines, text, file)
    for parse in (parse_by_columns, parse_listing):
        got = outcome(parse, text, file)
        assert got == expected, f"{parse.__name__} differs from the reference on:\n{text[:2000]!r}"


Merge = Callable[[list[Page]], tuple[list[Entry], list[str]]]


def merge_outcome(merge: Merge, pages: list[Page]) -> object:
    try:
        entries, warnings = merge(pages)
    except ListingError as exc:
        return ("error", str(exc), exc.file, exc.line)
    return ("merged", [repr(e) for e in entries], warnings)


def assert_same_merge(pages: list[Page]) -> None:
    expected = merge_outcome(_merge_loop, pages)
    assert merge_outcome(merge_pages, pages) == expected
    assert merge_outcome(lambda p: merge_pages(tuple(p)), pages) == expected
    assert merge_outcome(lambda p: merge_pages(iter(p)), pages) == expected


def fixture_files() -> list[Path]:
    return sorted(LISTINGS.glob("*/*.txt"))


@pytest.mark.parametrize("path", fixture_files(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_fixture_parses_as_the_reference_does(path: Path) -> None:
    # The not-UTF-8 fixture never reaches the parser; its text still makes a page to read.
    assert_same_parse(path.read_bytes().decode("utf-8", errors="replace"), str(path))


def test_good_fixtures_and_the_seed_take_the_fast_path() -> None:
    paths = [
        *sorted((LISTINGS / "good").glob("*.txt")),
        *sorted((LISTINGS / "pages").glob("*.txt")),
    ]
    for path in [*paths, SEED]:
        text = path.read_text(encoding="utf-8")
        assert took_fast_path(text, str(path)), path
        assert_same_parse(text, str(path))


def test_the_seed_and_the_fixture_pages_merge_as_the_reference_does() -> None:
    paths = [SEED, *sorted((LISTINGS / "pages").glob("*.txt"))]
    pages = [parse_listing(p.read_text(encoding="utf-8"), str(p)) for p in paths]
    for chosen in ([pages[0]], pages[1:], pages, list(reversed(pages)), [pages[1], pages[1]]):
        assert_same_merge(chosen)
    assert _sort_distinct(pages[0]) is not None  # the seed alone: nothing to merge


def test_a_synthetic_listing_of_2000_entries_parses_and_merges_as_the_reference_does() -> None:
    text = synthetic(2000)
    assert took_fast_path(text)
    assert_same_parse(text)
    page = parse_listing(text, "page.txt")
    assert len(page.entries) == 2000
    assert page.warnings  # clock-change days and nothing else: both paths must word them
    assert _sort_distinct(page) is not None
    assert_same_merge([page])


def test_synthetic_category_pages_parse_and_merge_as_the_reference_does() -> None:
    texts = synthetic_pages(600, pages=5)
    pages = []
    for i, text in enumerate(texts):
        assert took_fast_path(text, f"p{i}.txt")
        assert_same_parse(text, f"p{i}.txt")
        pages.append(parse_listing(text, f"p{i}.txt"))
    assert_same_merge(pages)
    assert_same_merge(list(reversed(pages)))


# Mutations: each takes the lines of a page (split on "\n") and returns new ones.
BREAKS = ["\r", "\r\n", "\v", "\f", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"]
SPACES = [" ", "  ", "\t", "\xa0", "\u2003", "\x1f", "\u3000"]
ADDED_LINES = [
    "Added: 28/03/2021 at 1:30 am Category: A",
    "Added: 31/10/2021 at 1:30 am Category: A",
    "Added: 31/10/2021 at 12:59 am Category: B",
    "Added: 31/10/2021 at 2:00 am Category: B",
    "Added: 31/02/2020 at 9:00 am Category: A",
    "Added: 01/13/2020 at 9:00 am Category: A",
    "Added: 01/02/2020 at 13:75 pm Category: A",
    "Added: 01/02/2020 at 0:30 am Category: A",
    "Added: 01/02/2020 at 9:60 am Category: A",
    "Added: 01/02/2020 at 12:00 AM Category: A, A",
    "Added: 01/02/2020 at 12:00 pm Category: Safeguarding, Prevent, Safeguarding",
    "Added: 01/02/2020 at 9:00 pM Category: A, , B",
    "Added: 01/02/2020 at 9:00 pM Category: A",
    "Added: 01/02/2020 at 9:00 Pm Category: A",
    "Added: 01/02/2020 at 12:30 aM Category: A",
    "Added: 31/10/2021 at 1:30 am Category: A, A",
    "Added: 28/03/2021 at 1:05 AM Category: B, A, B",
    "Added: 01/02/2020 at 9:00 Pm Category: A,",
    "Added: 01/02/2020 9:00 am Category: A",
    "Added: 2020-02-01 at 9:00 am Category: A",
    "Added: 01/02/2020 at 9:00 am",
    "Added: 01/02/2020 at 9:00 am Category:",
    "Added:01/02/2020\tat\xa09:00am\u2003Category:A,B",
    "Added: \u0661/\u0662/\u0662\u0660\u0662\u0660 at \u0669:\u0660\u0660 am Category: A",
    "Added: 01/02/0000 at 9:00 am Category: A",
    "Added: 01/01/0001 at 12:01 am Category: A",
    "Added: 31/12/9999 at 11:59 pm Category: Z",
    "Added: 01/02/2020 at 9:00 am Category: A Category: B",
    "Added: 01/02/2020 at 9:00 am Added: 01/02/2020 at 9:00 am Category: A",
    "Added: 01/02/2020 at 9:00 amCategory: A\x1fB",
    "Added: 1/2/2020 at 9:05 am Category: a, b ,c",
    "Added:",
    "Added: x",
]
TEXT_LINES = [
    "No Comments",
    "Sorry, the comment form is closed at this time.",
    "•a bullet",
    "• a bullet with a space",
    "continued in lower case",
    "ça continue",
    "ªordinal",
    "ⓐ circled",
    "Ends a sentence.",
    "Introduces a list:",
    "“Quoted.”",
    "Library – Another heading",
    "No Comments yet",
    "a NUL \x00 inside",
    "\ud800 a lone surrogate",
    "",
    "   ",
]


def _index(lines: list[str], rng: random.Random) -> int:
    return rng.randrange(len(lines)) if lines else 0


def _added_indexes(lines: list[str]) -> list[int]:
    return [i for i, line in enumerate(lines) if line.strip().startswith("Added:")]


def delete_line(lines: list[str], rng: random.Random) -> list[str]:
    i = _index(lines, rng)
    return lines[:i] + lines[i + 1 :]


def duplicate_line(lines: list[str], rng: random.Random) -> list[str]:
    i = _index(lines, rng)
    return lines[: i + 1] + lines[i:]


def swap_lines(lines: list[str], rng: random.Random) -> list[str]:
    if len(lines) < 2:
        return lines
    i = rng.randrange(len(lines) - 1)
    return [*lines[:i], lines[i + 1], lines[i], *lines[i + 2 :]]


def insert_text_line(lines: list[str], rng: random.Random) -> list[str]:
    i = _index(lines, rng)
    return [*lines[:i], rng.choice(TEXT_LINES), *lines[i:]]


def insert_added_line(lines: list[str], rng: random.Random) -> list[str]:
    """An Added line at a random place: usually without a title above it."""
    i = _index(lines, rng)
    added = _added_indexes(lines)
    line = lines[rng.choice(added)] if added and rng.random() < 0.5 else rng.choice(ADDED_LINES)
    return [*lines[:i], line, *lines[i:]]


def replace_added_line(lines: list[str], rng: random.Random) -> list[str]:
    added = _added_indexes(lines)
    if not added:
        return lines
    i = rng.choice(added)
    return [*lines[:i], rng.choice(ADDED_LINES), *lines[i + 1 :]]


def drop_blank_above_added(lines: list[str], rng: random.Random) -> list[str]:
    added = [i for i in _added_indexes(lines) if i > 0 and not lines[i - 1].strip()]
    if not added:
        return lines
    i = rng.choice(added)
    return lines[: i - 1] + lines[i:]


def drop_description(lines: list[str], rng: random.Random) -> list[str]:
    """Remove the text between an Added line and the next title: an empty description."""
    added = _added_indexes(lines)
    if not added:
        return lines
    k = rng.randrange(len(added))
    end = added[k + 1] - 2 if k + 1 < len(added) else len(lines)
    return lines[: added[k] + 1] + lines[max(end, added[k] + 1) :]


def pad_line(lines: list[str], rng: random.Random) -> list[str]:
    i = _index(lines, rng)
    if not lines:
        return lines
    space = rng.choice(SPACES)
    line = space + lines[i] if rng.random() < 0.5 else lines[i] + space
    return [*lines[:i], line, *lines[i + 1 :]]


def lower_first_letter(lines: list[str], rng: random.Random) -> list[str]:
    i = _index(lines, rng)
    if not lines or not lines[i]:
        return lines
    return [*lines[:i], lines[i][:1].lower() + lines[i][1:], *lines[i + 1 :]]


def blank_titles(lines: list[str], rng: random.Random) -> list[str]:
    added = [i for i in _added_indexes(lines) if i >= 2]
    if not added:
        return lines
    i = rng.choice(added) - 2
    return [*lines[:i], rng.choice(["", "  ", "Added: a title", "No Comments"]), *lines[i + 1 :]]


def drop_heading(lines: list[str], rng: random.Random) -> list[str]:
    i = next((k for k, line in enumerate(lines) if line.strip()), 0)
    return lines[:i] + lines[i + 1 :]


LINE_MUTATIONS = [
    delete_line,
    duplicate_line,
    swap_lines,
    insert_text_line,
    insert_added_line,
    replace_added_line,
    drop_blank_above_added,
    drop_description,
    pad_line,
    lower_first_letter,
    blank_titles,
    drop_heading,
]


def mutate_text(text: str, rng: random.Random) -> str:
    """Change the text around its line breaks: other breaks, ends, marks."""
    choice = rng.randrange(6)
    if choice == 0:
        return text.replace("\n", "\r\n")
    if choice == 1:  # one line break of another kind
        at = [i for i, c in enumerate(text) if c == "\n"]
        if at:
            i = rng.choice(at)
            return text[:i] + rng.choice(BREAKS) + text[i + 1 :]
        return text
    if choice == 2:  # a break character inside a line
        i = rng.randrange(len(text) + 1)
        return text[:i] + rng.choice(BREAKS) + text[i:]
    if choice == 3:
        return text.rstrip("\n")
    if choice == 4:
        return text + rng.choice(["\n", "\n\n", "\n  \n", "\r\n"])
    return "\ufeff" + text if rng.random() < 0.5 else "\n\n" + text


def mutants(bases: list[str], count: int, seed: int) -> Iterator[str]:
    rng = random.Random(seed)
    for _ in range(count):
        lines = rng.choice(bases).split("\n")
        for _ in range(rng.choice([1, 1, 1, 2, 3])):
            lines = rng.choice(LINE_MUTATIONS)(lines, rng)
        text = "\n".join(lines)
        if rng.random() < 0.3:
            text = mutate_text(text, rng)
        yield text


def bases() -> list[str]:
    quirks = (LISTINGS / "good" / "quirks.txt").read_text(encoding="utf-8")
    pages = [p.read_text(encoding="utf-8") for p in sorted((LISTINGS / "pages").glob("*.txt"))]
    return [quirks, *pages, synthetic(12, seed=7), synthetic(30, seed=8)]


def test_mutated_pages_parse_as_the_reference_does() -> None:
    fast = slow = 0
    for text in mutants(bases(), 2500, SEED_TEXT):
        assert_same_parse(text)
        if took_fast_path(text):
            fast += 1
        else:
            slow += 1
    # Both paths must have been compared many times for the parity to mean anything.
    assert fast > 500, (fast, slow)
    assert slow > 500, (fast, slow)


def test_every_line_of_a_page_mutated_in_turn_parses_as_the_reference_does() -> None:
    text = (LISTINGS / "good" / "quirks.txt").read_text(encoding="utf-8")
    lines = text.split("\n")
    for i in range(len(lines)):
        for replacement in [[], [lines[i], lines[i]], ["Added: x"], ["  "], ["zz"]]:
            assert_same_parse("\n".join([*lines[:i], *replacement, *lines[i + 1 :]]))
        for space in SPACES[:3]:
            assert_same_parse("\n".join([*lines[:i], lines[i] + space, *lines[i + 1 :]]))
        for br in BREAKS:
            assert_same_parse("\n".join(lines[:i]) + br + "\n".join(lines[i:]))
        for line in TEXT_LINES:
            assert_same_parse("\n".join([*lines[:i], line, *lines[i:]]))


def test_every_added_line_of_a_page_replaced_in_turn_parses_as_the_reference_does() -> None:
    text = (LISTINGS / "good" / "quirks.txt").read_text(encoding="utf-8")
    lines = text.split("\n")
    for i in _added_indexes(lines):
        for line in ADDED_LINES:
            assert_same_parse("\n".join([*lines[:i], line, *lines[i + 1 :]]))


A = "Added: 01/02/2020 at 9:00 am Category: A"
B = "Added: 02/02/2020 at 9:00 am Category: B"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "\n",
        " \n\t\n",
        "Library – X",
        "Library – X\n",
        f"T\n\n{A}",
        f"\n\nT\n\n{A}\n",
        f"{A}\n\nT\n\n{A}",
        f"H\n{A}",
        f"H\n\n{A}",
        f"H\n\nT\n\n{A}\n\n{A}",
        f"H\n\nT\n\n{A}\nU\n\n{B}",
        f"H\n\nT\n\n{A}\n\nU\n{B}",
        f"H\n\nT\n\n{A}\n\nAdded: x\n",
        f"H\nNo Comments\n\nT\n\n{A}\nNo Comments\n",
        f"H\n\nT\n\n{A}\n\nNo Comments\nnot chrome\n",
        f"H\n\nT\n\n{A}\n\none\ntwo\n\nthree.\nfour",
        f"H\n\nT\n\n{A}\n\n• one\ntwo\n•three\nfour:\nfive",
    ],
    ids=lambda t: repr(t)[:40],
)
def test_small_and_odd_pages_parse_as_the_reference_does(text: str) -> None:
    assert_same_parse(text)


def _pages_of(texts: Iterable[str]) -> list[Page]:
    pages = []
    for i, text in enumerate(texts):
        try:
            pages.append(parse_listing(text, f"p{i}.txt"))
        except ListingError:
            continue
    return pages


def test_mutated_pages_merge_as_the_reference_does() -> None:
    rng = random.Random(SEED_TEXT + 1)
    texts = synthetic_pages(60, pages=4, seed=3)
    distinct = 0
    for _ in range(150):
        chosen = [rng.choice(texts) for _ in range(rng.randint(1, 4))]
        mutated = [next(mutants([t], 1, rng.randrange(10**6))) for t in chosen]
        pages = _pages_of(mutated)
        assert_same_merge(pages)
        if len(pages) == 1 and _sort_distinct(pages[0]) is not None:
            distinct += 1
    assert distinct > 20


def test_warnings_of_a_page_merge_as_the_reference_does() -> None:
    """Sorted as text, as the merge loop sorts them: line 13 before line 5."""
    spring = "Added: 28/03/2021 at 1:30 am Category: A, A"
    autumn = "Added: 31/10/2021 at 1:30 am Category: A"
    text = f"H\n\nT\n\n{spring}\n\nU\n\n{autumn}\n\nV\n\n{spring}\n\nText.\n"
    page = parse_listing(text, "x.txt")
    assert [w.split(":")[1] for w in page.warnings] == ["5", "9", "13"]
    assert _sort_distinct(page) is not None
    assert_same_merge([page])
    assert_same_merge([page, parse_listing(text, "y.txt")])


def test_one_page_listing_an_entry_twice_merges_as_the_reference_does() -> None:
    twice = "T\n\nAdded: 01/02/2020 at 9:00 am Category: B, a\n\nText.\n"
    other = "T\n\nAdded: 01/02/2020 at 9:00 am Category: A\n\nText.\n"
    conflict = "T\n\nAdded: 01/02/2020 at 9:00 am Category: A\n\nOther text.\n"
    for body in (twice + other, twice + twice, twice + conflict):
        page = parse_listing(f"H\n\n{body}", "x.txt")
        assert _sort_distinct(page) is None
        assert_same_merge([page])


def test_mutated_long_pages_parse_as_the_reference_does() -> None:
    """Long enough for parse_listing itself to take the column route, when it can."""
    base = synthetic(400, seed=5)
    assert len(base.splitlines()) >= COLUMNS_FROM_LINES
    fast = 0
    for text in mutants([base], 24, SEED_TEXT + 2):
        assert_same_parse(text)
        fast += took_fast_path(text)
    assert 0 < fast < 24


def test_long_pages_read_in_slabs_as_they_read_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """read_page reads a long page a slab at a time (graph.listing._read_slabs): the same
    page, places and warnings (by repr) or the same error as the whole page's reading, on the
    synthetic page and its mutants (other line ends, mistakes in any slab ...)."""
    monkeypatch.setattr("graph.listing.SLAB_BYTES", 4096)
    base = synthetic(400, seed=5)
    path = tmp_path / "page.txt"

    def outcome_of(read: Callable[[Path], Page]) -> object:
        try:
            page = read(path)
        except ListingError as exc:
            return ("error", type(exc), str(exc), exc.file, exc.line, exc.message)
        return ("page", repr(page))

    path.write_text(base, encoding="utf-8")
    slabs = _read_slabs(path, 4096)  # the slabs themselves, not the fallback
    assert repr(slabs) == repr(parse_listing(read_text(path), str(path)))
    assert len(slabs.entries) == 400
    texts = [base, base.replace("\n", "\r\n"), *mutants([base], 40, SEED_TEXT + 3)]
    # A character XML cannot carry, in a later slab (each slab is searched only when its
    # bytes may hold one: _may_hold_non_xml), and one it can that starts as U+FFFE does.
    middle = base.index("\n\n", len(base) // 2)
    texts += [base[:middle] + c + base[middle:] for c in ("\x01", "\x1f", "\ufffe", "\uffc0")]
    for text in texts:
        path.write_bytes(text.encode("utf-8", "surrogatepass"))
        expected = outcome_of(lambda p: parse_listing(read_text(p), str(p)))
        assert outcome_of(read_page) == expected, text[:2000]


def test_a_full_memo_starts_again_and_gives_the_same_values() -> None:
    memo = _Memo(_read_categories, limit=2)
    texts = [" A, B", "C", " A, B", "D, D", "C"]
    assert [memo[t] for t in texts] == [("A", "B"), ("C",), ("A", "B"), ("D",), ("C",)]
    assert len(memo) <= 2
    with pytest.raises(ValueError):
        memo["A, , B"]
    assert "A, , B" not in memo
