"""Text of listing pages -> Entry records, each with the file and line it was read from.

The format is a website's export of a library page (see README, "The listing format"):
a page heading, then per entry a title line, a blank line, an ``Added: DD/MM/YYYY at
H:MM am|pm Category: A, B`` line and a description of zero or more paragraphs. A line is
a title exactly when the line two below it is an ``Added:`` line.

Two routes give the same pages: the line walk (_walk_lines), the reference, which reads
short pages and any page with a mistake (and words the error), and a column-by-column
reading of long well-formed pages (_parse_entries_fast), faster there (bench/parse.py).

A build of one long page holds no descriptions (read_listings(lazy=True)): each
entry keeps where its description's lines are in the file (Entry.body), and descriptions()
reads them back when they are wanted, a month of entries at a time (graph/convert.py): at 1M
entries they were 640 MB of the parse's 1.44 GiB. Such a page also says, for each month, a
digest of its entries' blocks of source text (Page.months): the same blocks are the same
records, so a rebuild finds its unchanged months without reading a description.
"""

from __future__ import annotations

import bisect
import calendar
import contextlib
import hashlib
import json
import marshal
import os
import re
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from functools import lru_cache
from itertools import accumulate, compress, islice, repeat
from operator import add, attrgetter, lt, methodcaller, sub
from pathlib import Path
from typing import Any, NamedTuple, TypeVar, cast, dataclass_transform
from zoneinfo import ZoneInfo

import xxhash

from graph.errors import ListingError
from graph.xmlchars import code_point, find_non_xml

LONDON = ZoneInfo("Europe/London")
# The tz database gives London local mean time, -00:01:15, until 1 December 1847, when the
# railways (the Railway Clearing House) took up Greenwich time; the towns followed. An
# xsd:dateTime offset is whole minutes (XSD 1.1 §3.3.7: -00:01:15 is not one), so a time
# before that day is read as GMT, +00:00, the time the country soon kept by law (1880).
GMT_FROM = (1847, 12, 1)
GMT = timezone(timedelta(0))
CHROME = frozenset({"No Comments", "Sorry, the comment form is closed at this time."})
ADDED_PREFIX = "Added:"
ADDED_FORMAT = "'Added: DD/MM/YYYY at H:MM am|pm Category: A, B'"
_DATE = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$")
_BULLET = "•"
# A description line that ends a sentence (or introduces a list) is not wrapped.
_TERMINAL = re.compile(r"[.!?:;][\"'”’)\]]*$")


_R = TypeVar("_R")


@dataclass_transform(frozen_default=True, field_specifiers=(field,))
def _record(cls: type[_R]) -> type[_R]:
    """A record made once per entry: frozen for the type checker (strict mypy refuses an
    assignment to a field), at run time a plain slotted dataclass. A frozen one's __init__
    sets each field through object.__setattr__: 5.4 us an Entry against 1.3 here, and a
    rebuild of a million entries made two million Entries and a million Places (11 s)."""
    return dataclass(slots=True, unsafe_hash=True)(cls)


@_record
class Place:
    """Where something was read: a file and a 1-based line number."""

    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True, eq=False)
class Source:
    """A listing file whose descriptions are read back (descriptions()), and what it was when
    it was parsed: its inode, size and modification time."""

    path: Path
    stamp: tuple[int, int, int]

    @contextlib.contextmanager
    def opened(self) -> Iterator[int]:
        """A descriptor of the file; ListingError if it is not the file that was parsed."""
        file = str(self.path)
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except OSError as exc:
            raise ListingError(file, 0, f"cannot read: {exc.strerror or exc}") from exc
        try:
            if _stamp(os.fstat(fd)) != self.stamp:
                raise self.changed()
            yield fd
        finally:
            os.close(fd)

    def changed(self) -> ListingError:
        return ListingError(
            str(self.path),
            0,
            "changed while the build was reading it; expected it to stay as it is until the "
            "build ends: build again",
        )


def _stamp(st: os.stat_result) -> tuple[int, int, int]:
    return (st.st_ino, st.st_size, st.st_mtime_ns)


# Where an entry's description is in its listing: the file, and the byte range of the lines
# from below its 'Added:' line to the next title (a tuple: made in C, 3 words and 2 ints).
Body = tuple[Source, int, int]


@_record
class Entry:
    """One library entry as listed: identity is (title, created).

    With a body, the description is not held ("" here): descriptions() reads it back (so a
    copy with another description must have body=None)."""

    title: str
    created: datetime  # aware, Europe/London
    categories: tuple[str, ...]
    description: str
    places: tuple[Place, ...] = field(compare=False)
    body: Body | None = field(default=None, compare=False, repr=False)

    @property
    def key(self) -> tuple[str, datetime]:
        """The identity of an entry across pages: same title and same Added time."""
        return (self.title, self.created)


@dataclass(frozen=True)
class Page:
    """One parsed listing page; months: month ('YYYY-MM') -> digest of its entries' blocks of
    source text, for a page read without its descriptions (read_page(lazy=True)); stamps:
    its entries' created.timestamp(), in order, when the reading had them (a lazy one)."""

    file: str
    heading: str
    entries: tuple[Entry, ...]
    warnings: tuple[str, ...]
    months: Mapping[str, str] = field(default_factory=dict, repr=False)
    stamps: array[float] | None = field(default=None, repr=False, compare=False)


def read_text(path: Path) -> str:
    """Read a listing file as UTF-8 text, or raise ListingError with the offending line."""
    name = str(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ListingError(name, 0, f"cannot read: {exc.strerror or exc}") from exc
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ListingError(
            name,
            line,
            f"not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
            "expected a listing page saved as UTF-8",
        ) from exc
    if "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise ListingError(name, line, "binary data (NUL byte); expected a listing page as text")
    return text.removeprefix("\ufeff")


# From this many lines on, a page is read column by column (_parse_columns); a shorter one
# is walked line by line, which is as fast there (bench/parse.py measures both).
COLUMNS_FROM_LINES = 2000


def parse_listing(text: str, file: str) -> Page:
    """Parse the text of one listing page into its entries, in page order."""
    lines = _stripped_lines(text, file)
    if len(lines) < COLUMNS_FROM_LINES:
        return _walk_lines(lines, file)
    return _parse_columns(tuple(lines), file)  # a tuple of strings: the GC soon skips it


def _parse_lines(text: str, file: str) -> Page:
    """The reference parser: the line-by-line walk, which also words every error.

    parse_listing must give exactly its result (or its exception) on any text, whatever
    its length; tests/test_listing_parity.py holds it and _parse_columns to it.
    """
    return _walk_lines(_stripped_lines(text, file), file)


def _parse_columns(lines: Sequence[str], file: str) -> Page:
    """The fast path for well-formed pages, and the line walk for anything else."""
    page = _parse_entries_fast(lines, file)
    return page if page is not None else _walk_lines(lines, file)


def _stripped_lines(text: str, file: str) -> list[str]:
    _refuse_non_xml(text, file)
    lines = [line.strip() for line in text.splitlines()]
    if not any(lines):
        raise ListingError(
            file, 1, "empty file; expected a listing page ('Library – …' and entries)"
        )
    return lines


def _refuse_non_xml(text: str, file: str) -> None:
    """A control character (but tab and line ends), U+FFFE, U+FFFF or a lone surrogate is an
    error at its line: RDF/XML, the SPARQL XML results and OAI-PMH cannot carry it (XML 1.0
    §2.2), and dropping or replacing it would publish other text than the page's, silently."""
    at = find_non_xml(text)
    if at < 0:
        return
    line = text.count("\n", 0, at) + 1
    column = at - (text.rfind("\n", 0, at) + 1) + 1
    raise ListingError(
        file,
        line,
        f"character {code_point(text[at])} at column {column} cannot be published (XML 1.0 "
        "has no way to write it); expected text without control characters: remove it or "
        "replace it with a space",
    )


def _walk_lines(lines: Sequence[str], file: str) -> Page:
    """Walk the stripped lines one by one: a title is a line two above an 'Added:' line."""
    n = len(lines)

    def is_title(i: int) -> bool:
        return (
            i + 2 < n
            and lines[i] != ""
            and lines[i + 2].startswith(ADDED_PREFIX)
            and not lines[i].startswith(ADDED_PREFIX)
        )

    warnings: list[str] = []
    entries: list[Entry] = []
    heading = ""
    i = 0
    # Page heading: the first non-blank line unless it is already a title.
    while i < n and lines[i] == "":
        i += 1
    if not is_title(i):
        heading = lines[i]
        i += 1
    # Anything but blank lines and chrome before the first title is a mistake.
    while i < n and not is_title(i):
        if lines[i].startswith(ADDED_PREFIX):
            raise _orphan_added(file, i, lines)
        if i + 1 < n and lines[i + 1].startswith(ADDED_PREFIX):
            raise _orphan_added(file, i + 1, lines)
        if lines[i] and lines[i] not in CHROME:
            raise ListingError(
                file,
                i + 1,
                f"unexpected text before the first entry: {_clip(lines[i])!r}; expected a title, "
                f"a blank line, then {ADDED_FORMAT}",
            )
        i += 1
    if i >= n:
        raise ListingError(
            file, 1, f"no entries found; expected a title, a blank line, then {ADDED_FORMAT}"
        )
    while i < n:
        title_line = i
        if lines[i + 1] != "":
            raise ListingError(
                file, i + 2, "expected a blank line between the title and the 'Added:' line"
            )
        created, categories, warning = _parse_added(lines[i + 2], file, i + 3)
        if warning:
            warnings.append(f"{file}:{i + 3}: {warning}")
        i += 3
        body: list[str] = []
        while i < n and not is_title(i):
            if lines[i].startswith(ADDED_PREFIX):
                raise _orphan_added(file, i, lines)
            if lines[i] not in CHROME:
                body.append(lines[i])
            i += 1
        entries.append(
            Entry(
                title=lines[title_line],
                created=created,
                categories=categories,
                description=_join_description(body),
                places=(Place(file, title_line + 1),),
            )
        )
    return Page(file=file, heading=heading, entries=tuple(entries), warnings=tuple(warnings))


# The fast path splits the page's 'Added:' lines, joined by "\n", with this pattern: it is
# _ADDED_LINE with whitespace other than "\n" for \s (so no match spans two lines), in three
# parts (date, time, categories) that repeat from entry to entry and so are decoded once a
# page. Splitting gives strings only: no match objects or tuples for the GC to follow.
_ADDED_PARTS = re.compile(
    r"Added:[^\S\n]*(\d{1,2}/\d{1,2}/\d{4})[^\S\n]+at[^\S\n]+"
    r"(\d{1,2}:\d{2}[^\S\n]*[AaPp][Mm])[^\S\n]*Category:(.*)"
)
_CHROME_LINES = tuple(sorted(CHROME))
# A description whose non-blank lines, joined by "\n", have none of these needs no more than
# the join: no line after the first starts in lower case (a lower-case letter is a-z or not
# ASCII, and never the bullet) and none is chrome (unless the first, which startswith sees).
_MAY_JOIN = re.compile(
    r"\n(?:[a-z\x80-\u2021\u2023-\U0010ffff]|"
    + "|".join(re.escape(line) for line in _CHROME_LINES)
    + ")"
)


def _parse_entries_fast(
    lines: Sequence[str],
    file: str,
    first_line: int = 0,
) -> Page | None:
    """The Page _walk_lines gives for a well-formed page, read column by column.

    Each title is the line two above an 'Added:' line, with a blank line between; a
    description runs from the 'Added:' line to the next title. None when anything is off (a
    misplaced line, an 'Added:' line that does not read, an empty category ...): the line
    walk then gives the exact error. The work per entry runs in C (map, regular expressions,
    str.join) but for making Entry and Place, and each distinct date, time and category list
    is decoded once. The columns are tuples of strings, numbers and datetimes, which the GC
    stops following after one look. first_line: how many lines of the file come before lines
    (a slab of a long page, _read_slabs), added to every line number.
    """
    get = lines.__getitem__
    size = len(ADDED_PREFIX)
    added = tuple([i for i, line in enumerate(lines) if line[:size] == ADDED_PREFIX])
    if not added or added[0] < 2 or min(map(sub, added[1:], added), default=3) < 3:
        return None  # an 'Added:' line without room for a title and a blank line above it
    titles = tuple(map(get, map(sub, added, repeat(2))))
    if "" in titles or any(map(get, map(sub, added, repeat(1)))):
        return None
    heading = _read_heading(lines, added[0] - 2)
    if heading is None:
        return None
    columns = _read_added_lines(tuple(map(get, added)))
    if columns is None:
        return None
    # The places first, then the entries: each is an object the GC follows, and the full
    # collections that come while the places are made then walk cheap Place objects, not
    # entries and their strings all over the heap (0.1 s less at 100k entries).
    places = tuple(zip(map(Place, repeat(file), map(sub, added, repeat(1 - first_line)))))
    descriptions = _read_descriptions(lines, added)
    return Page(
        file=file,
        heading=heading,
        entries=tuple(
            map(
                Entry,
                titles,
                columns.created,
                columns.categories,
                descriptions,
                places,
            )
        ),
        warnings=tuple(
            f"{file}:{added[i] + 1 + first_line}: {w}" for i, w in sorted(columns.warnings.items())
        ),
    )


def _read_heading(lines: Sequence[str], first: int) -> str | None:
    """The page heading above the first title, at first; None if there is more than chrome."""
    start = 0
    while not lines[start]:
        start += 1
    if start == first:
        return ""  # the first line is a title
    if any(line and line not in CHROME for line in lines[start + 1 : first]):
        return None
    return lines[start]


def _read_descriptions(lines: Sequence[str], added: Sequence[int]) -> tuple[str, ...]:
    """The description of each entry: from below its 'Added:' line to the next title."""
    starts = tuple(map(add, added, repeat(1)))
    ends = (*map(sub, added[1:], repeat(2)), len(lines))
    bodies = map(lines.__getitem__, map(slice, starts, ends))
    descriptions = list(map("\n".join, map(filter, repeat(None), bodies)))
    # Their non-blank lines joined by "\n" are what _join_description gives, unless a line
    # may need unwrapping or is chrome: read those again as _walk_lines does.
    rows = range(len(added))
    again = {
        *compress(rows, map(_MAY_JOIN.search, descriptions)),
        *compress(rows, map(str.startswith, descriptions, repeat(_CHROME_LINES))),
    }
    for i in again:
        body = [line for line in lines[starts[i] : ends[i]] if line not in CHROME]
        descriptions[i] = _join_description(body)
    return tuple(descriptions)


class _AddedColumns(NamedTuple):
    """What the 'Added:' lines of a page say, one item per entry (warnings by entry number)."""

    created: tuple[datetime, ...]
    categories: tuple[tuple[str, ...], ...]
    warnings: dict[int, str]


def _read_added_lines(lines: Sequence[str]) -> _AddedColumns | None:
    """What _parse_added reads in each 'Added:' line, all lines at once; None when one of
    them does not read (_parse_added then says why)."""
    # [before, date, time, categories, between, ..., after]: every line is one whole match
    # exactly when before and after are empty and each between is the "\n" that joined them.
    parts = _ADDED_PARTS.split("\n".join(lines))
    count = len(lines)
    if len(parts) != 4 * count + 1 or parts[0] or parts[-1]:
        return None
    if parts[4:-1:4].count("\n") != count - 1:
        return None
    dates, times, cat_texts = parts[1::4], parts[2::4], parts[3::4]
    del parts
    try:
        midnights = list(map(_DAYS.__getitem__, dates))
        offsets = list(map(_CLOCKS.__getitem__, times))
        categories = tuple(map(_CATEGORY_LISTS.__getitem__, cat_texts))
    except (ValueError, OverflowError):
        return None
    created = list(map(add, midnights, offsets))
    warnings: dict[int, str] = {}
    rows = range(count)
    # A list that names a category twice lost one in _read_categories.
    twice = {text for text in set(cat_texts) if len(_CATEGORY_LISTS[text]) <= text.count(",")}
    if twice:
        for i in compress(rows, map(twice.__contains__, cat_texts)):
            warnings[i] = f"category listed twice in {cat_texts[i].strip()!r}"
    # On a day the clocks change, the offset depends on the hour, and some hours are odd.
    odd_days = {text for text in set(dates) if _is_odd_day(_DAYS[text])}
    if odd_days:
        for i in compress(rows, map(odd_days.__contains__, dates)):
            day = midnights[i]
            hour, minute = divmod(offsets[i].seconds // 60, 60)
            tz, oddity = _uk_offset(day.year, day.month, day.day, hour)
            created[i] = datetime(day.year, day.month, day.day, hour, minute, tzinfo=tz)
            if oddity:  # it wins over a category listed twice, as in _parse_added
                warnings[i] = f"UK local time {created[i]:%d/%m/%Y %H:%M} {oddity}"
    return _AddedColumns(tuple(created), categories, warnings)


def _read_day(text: str) -> datetime:
    """Midnight of a DD/MM/YYYY date at the UK offset the day starts with; ValueError if none."""
    day, month, year = map(int, text.split("/"))
    tz, _ = _uk_day(year, month, day)
    return datetime(year, month, day, tzinfo=tz)


def _is_odd_day(midnight: datetime) -> bool:
    """Whether the UK clocks change on this day."""
    return _uk_day(midnight.year, midnight.month, midnight.day)[1]


def _read_time(text: str) -> timedelta:
    """An H:MM am|pm time (as _ADDED_PARTS found it) as the time since midnight: 12:07 am
    is 0:07; ValueError if there is no such time."""
    hour_text, rest = text.split(":")
    hour12, minute = int(hour_text), int(rest[:2])
    if not 1 <= hour12 <= 12 or minute > 59:
        raise ValueError(text)
    hour = hour12 % 12 + (12 if rest[-2:] in ("pm", "PM", "pM", "Pm") else 0)
    return timedelta(hours=hour, minutes=minute)


def _read_categories(text: str) -> tuple[str, ...]:
    """The categories of an Added line, each once; ValueError if one is empty."""
    categories = tuple(map(str.strip, text.split(",")))
    if "" in categories:
        raise ValueError(text)
    if len(set(categories)) != len(categories):
        return tuple(dict.fromkeys(categories))
    return categories


_T = TypeVar("_T")


class _Memo(dict[str, _T]):
    """A dict that fills itself: memo[text] reads text once, then gives what it gave.

    One per kind of field, shared by every page a process reads (category pages repeat
    their dates, times and category lists), emptied when it reaches limit keys.
    """

    def __init__(self, read: Callable[[str], _T], limit: int) -> None:
        super().__init__()
        self.read = read
        self.limit = limit

    def __missing__(self, key: str) -> _T:
        if len(self) >= self.limit:
            self.clear()
        value = self[key] = self.read(key)
        return value


# What the readers made of each text they read (a function of the text alone).
_DAYS = _Memo(_read_day, limit=1 << 15)
_CLOCKS = _Memo(_read_time, limit=1 << 13)
_CATEGORY_LISTS = _Memo(_read_categories, limit=1 << 13)


def _orphan_added(file: str, i: int, lines: Sequence[str]) -> ListingError:
    if i >= 1 and lines[i - 1] != "":
        return ListingError(
            file,
            i + 1,
            "'Added:' line directly below text; expected a title, a blank line, "
            "then the 'Added:' line",
        )
    return ListingError(
        file,
        i + 1,
        "'Added:' line without a title two lines above it; expected a title, "
        "a blank line, then the 'Added:' line",
    )


def _clip(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


_ADDED_LINE = re.compile(
    r"Added:\s*(\d{1,2})/(\d{1,2})/(\d{4})\s+at\s+(\d{1,2}):(\d{2})\s*([AaPp][Mm])\s*Category:(.*)"
)
_ADDED_HEAD = re.compile(
    r"^Added:\s*(?P<date>\S+)\s+at\s+(?P<time>\d{1,2}:\d{2})\s*(?P<ampm>[AaPp][Mm])\s*$"
)


def _parse_added(line: str, file: str, lineno: int) -> tuple[datetime, tuple[str, ...], str]:
    """Parse an Added line into an aware datetime (UK local time) and its categories."""
    fast = _ADDED_LINE.fullmatch(line)
    if fast is None:
        _diagnose_added(line, file, lineno)  # raises with what exactly is wrong
        raise AssertionError("unreachable")
    day, month, year, hour12, minute = map(int, fast.groups()[:5])
    if not 1 <= hour12 <= 12 or minute > 59:
        raise ListingError(
            file,
            lineno,
            f"impossible time {fast[4]}:{fast[5]} {fast[6]}; expected H:MM am|pm, 1:00 to 12:59",
        )
    # 12:07 am is seven minutes past midnight; 12:07 pm seven past noon.
    hour = hour12 % 12 + (12 if fast[6] in ("pm", "PM", "pM", "Pm") else 0)
    try:
        tz, odd_day = _uk_day(year, month, day)
        warning = ""
        if odd_day:
            tz, warning = _uk_offset(year, month, day, hour)
        created = datetime(year, month, day, hour, minute, tzinfo=tz)
    except ValueError as exc:
        raise ListingError(
            file,
            lineno,
            f"impossible date {fast[1]}/{fast[2]}/{fast[3]} ({exc}); "
            "expected a real DD/MM/YYYY date",
        ) from exc
    if warning:
        warning = f"UK local time {created:%d/%m/%Y %H:%M} {warning}"
    cats = fast[7]
    categories = tuple(c.strip() for c in cats.split(","))
    if "" in categories:
        raise ListingError(
            file, lineno, f"empty category in {cats.strip()!r}; expected 'Category: A, B, C'"
        )
    if len(set(categories)) != len(categories):
        warning = warning or f"category listed twice in {cats.strip()!r}"
        categories = tuple(dict.fromkeys(categories))
    return created, categories, warning


def _diagnose_added(line: str, file: str, lineno: int) -> None:
    """Raise a ListingError saying what is wrong with an Added line the fast pattern refused."""
    head, sep, _ = line.partition("Category:")
    if not sep:
        raise ListingError(
            file, lineno, f"'Added:' line has no 'Category:'; expected {ADDED_FORMAT}"
        )
    m = _ADDED_HEAD.match(head.strip())
    if not m:
        raise ListingError(
            file,
            lineno,
            f"cannot read the date and time in {head.strip()!r}; expected {ADDED_FORMAT}",
        )
    if not _DATE.match(m["date"]):
        raise ListingError(file, lineno, f"cannot read the date {m['date']!r}; expected DD/MM/YYYY")
    raise ListingError(file, lineno, f"cannot read {line!r}; expected {ADDED_FORMAT}")


@lru_cache(maxsize=16384)
def _uk_day(year: int, month: int, day: int) -> tuple[timezone, bool]:
    """The UK offset of a day, and whether the clocks change on it (then ask per hour)."""
    if (year, month, day) < GMT_FROM:
        return GMT, False
    first = datetime(year, month, day, 0, 30, tzinfo=LONDON).utcoffset() or timedelta(0)
    last = datetime(year, month, day, 23, 30, tzinfo=LONDON).utcoffset() or timedelta(0)
    return timezone(first), first != last


@lru_cache(maxsize=1024)
def _uk_offset(year: int, month: int, day: int, hour: int) -> tuple[timezone, str]:
    """UK offset (GMT/BST) of a local hour, and what is odd about it near a clock change.

    UK clocks change on the hour, so the hour decides the offset. PEP 495: in the autumn
    overlap fold=0 is the first (BST) occurrence; in the spring gap fold=0 applies the offset
    from before the change (GMT), i.e. the time the clock showed.
    """
    naive = datetime(year, month, day, hour, 30)
    early = naive.replace(tzinfo=LONDON, fold=0)
    late = naive.replace(tzinfo=LONDON, fold=1)
    offset = early.utcoffset() or timedelta(0)
    tz = timezone(offset)
    if offset == late.utcoffset():
        return tz, ""
    roundtrip = early.astimezone(UTC).astimezone(LONDON).replace(tzinfo=None)
    kind = "does not exist (clocks go forward)" if roundtrip != naive else "happens twice"
    sign = "+" if offset >= timedelta(0) else "-"
    hours = f"{sign}{abs(int(offset.total_seconds())) // 3600:02d}:00"
    return tz, f"{kind}; read as {hours}"


def _join_description(body: Iterable[str]) -> str:
    """Join description lines: unwrap mid-sentence wraps, keep paragraphs and bullets as lines."""
    out: list[str] = []
    for line in body:
        if not line:
            continue  # a blank line between paragraphs of one description
        if (
            out
            and not line.startswith(_BULLET)
            and line[:1].islower()
            and not _TERMINAL.search(out[-1])
        ):
            out[-1] = f"{out[-1]} {line}"
        else:
            out.append(line)
    return "\n".join(out)


def merge_pages(pages: Iterable[Page]) -> tuple[list[Entry], list[str]]:
    """Merge entries listed on several pages into one per (title, created), page order aside.

    Categories are united; a description that differs between two listings of one entry
    is an error, since no page order may decide which text is published.
    """
    if isinstance(pages, list | tuple) and len(pages) == 1:
        # The common case: one page, whose entries are all different. (Category pages
        # share entries, and the merge loop is the way to merge them.)
        distinct = _sort_distinct(pages[0])
        if distinct is not None:
            return distinct, sorted(set(pages[0].warnings))
    # The loop compares descriptions: the pages' own, not the bodies'.
    return _merge_loop(map(with_descriptions, pages))


def _merge_loop(pages: Iterable[Page]) -> tuple[list[Entry], list[str]]:
    """The reference merge: entry by entry, in page order (it words the conflict errors)."""
    merged: dict[tuple[str, datetime], Entry] = {}
    warnings: list[str] = []
    for page in pages:
        warnings.extend(page.warnings)
        for entry in page.entries:
            seen = merged.get(entry.key)
            if seen is None:
                merged[entry.key] = entry
                continue
            if seen.description != entry.description:
                first, second = sorted((seen.places[0], entry.places[0]), key=_place_order)
                raise ListingError(
                    second.file,
                    second.line,
                    f"entry {_clip(entry.title)!r} (Added {entry.created:%d/%m/%Y %H:%M}) has a "
                    f"different description at {first}; expected the same text on every page",
                )
            cats = tuple(sorted(set(seen.categories) | set(entry.categories), key=str.casefold))
            merged[entry.key] = Entry(
                title=seen.title,
                created=seen.created,
                categories=cats,
                description=seen.description,
                places=tuple(sorted({*seen.places, *entry.places}, key=_place_order)),
            )
    entries = sorted(merged.values(), key=lambda e: (e.created.timestamp(), e.title))
    return entries, sorted(set(warnings))


def _sort_distinct(page: Page) -> list[Entry] | None:
    """merge_pages' entries for one page whose entries all differ; None if two share a key.

    Two entries with one key (title, created) have one sort key (created instant, title),
    so distinct sort keys mean nothing to merge: the entries are the result once sorted.
    Sorted by instant with numpy (a stable argsort), then only the runs of entries added at
    the same instant by title: sorting a million (instant, title) pairs in Python, and a set
    of them to find two alike, took 4.2 s of a rebuild at 1M entries.
    """
    import numpy  # here, as graph/index.py does: 0.13 s to import, not for every command

    entries = page.entries
    if page.stamps is not None and len(page.stamps) == len(entries):
        # The reading's (the parse cache holds them): a timestamp() of each entry's time
        # was 0.9 s of a rebuild at 1M entries.
        stamps = numpy.frombuffer(page.stamps, numpy.float64)
    else:
        try:
            # In C (map, numpy): a list comprehension was a third of a rebuild's parse.
            stamps = numpy.fromiter(
                map(datetime.timestamp, map(_CREATED, entries)), numpy.float64, len(entries)
            )
        except (ValueError, OverflowError, OSError):
            return None  # let the merge loop meet the same value (and raise the same way)
    order = numpy.argsort(stamps, kind="stable")
    ordered = stamps[order]
    same = ordered[1:] == ordered[:-1]
    tied = numpy.zeros(len(entries), dtype=bool)
    tied[1:] |= same
    tied[:-1] |= same
    at = numpy.flatnonzero(tied)
    taken: list[int] = order.tolist()
    if len(at):
        # The runs are in instant order already: sorting them together by (instant, title)
        # keeps each in its place.
        moved = order[at].tolist()
        titles = map(_TITLE, map(entries.__getitem__, moved))
        keyed = sorted(zip(ordered[at].tolist(), titles, moved, strict=True))
        if any(a[:2] == b[:2] for a, b in zip(keyed, islice(keyed, 1, None), strict=False)):
            return None
        for position, (_, _, index) in zip(at.tolist(), keyed, strict=True):
            taken[position] = index
    return list(map(entries.__getitem__, taken))


_CREATED = attrgetter("created")
_TITLE = attrgetter("title")


def _place_order(place: Place) -> tuple[str, int]:
    return (place.file, place.line)


# A page of more bytes than this is read a slab at a time (_read_slabs).
SLAB_BYTES = 32 << 20


class _IrregularError(Exception):
    """A page the slabs cannot read as parse_listing would: read it whole."""


def read_page(path: Path, lazy: bool = False, cache: ParseCache | None = None) -> Page:
    """parse_listing(read_text(path)), reading a long page a slab of SLAB_BYTES at a time:
    its text and lines are never all in memory (at 1M entries, 665 MB of UTF-8 were 1.3 GB
    of text and as much in lines), only its entries. A page the slabs cannot read exactly as
    a whole (a mistake, a line end other than LF or CRLF, ...) is read whole, which gives
    parse_listing's answer or its error.

    lazy: a long page keeps no descriptions (its entries' bodies say where they are:
    descriptions() reads them) and gives the digests of its months (Page.months); it is
    scanned, not split into lines (_scan_slab), and with a cache only the segments of it
    that the cache does not know are (_read_segments)."""
    try:
        if path.stat().st_size > SLAB_BYTES:
            if lazy:
                return _read_segments(path, cache)
            return _read_slabs(path, SLAB_BYTES)
    except (OSError, ListingError, _IrregularError):
        pass  # the whole page's reading says what is wrong, at the right line
    return parse_listing(read_text(path), str(path))


_ADDED_BYTES = ADDED_PREFIX.encode()


def _read_slabs(path: Path, size: int) -> Page:
    """A long well-formed page, a slab at a time: each slab ends where a title line begins
    (the line two above an 'Added:' line), so each is a run of whole entries that the column
    reader reads (_parse_entries_fast), its line numbers shifted by the lines before it."""
    file = str(path)
    entries: list[Entry] = []
    warnings: list[str] = []
    heading = ""
    lines_before = 0
    with path.open("rb") as f:
        stamp = _stamp(os.fstat(f.fileno()))
        carry = b""
        while True:
            block = f.read(size)
            data = carry + block
            if not data:
                break
            cut = len(data) if not block else _title_start(data)
            slab, carry = data[:cut], data[cut:]
            page, count = _parse_slab(slab, file, lines_before)
            if lines_before == 0:
                heading = page.heading
            entries.extend(page.entries)
            warnings.extend(page.warnings)
            lines_before += count
            if not block:
                break
        if _stamp(os.fstat(f.fileno())) != stamp:
            raise _IrregularError  # written to while it was read: read it whole
    if not entries:
        raise _IrregularError
    return Page(file=file, heading=heading, entries=tuple(entries), warnings=tuple(warnings))


def _slab_text(slab: bytes, file: str, first: bool) -> str:
    """A slab's text, checked as parse_listing checks a page's: _IrregularError if its
    reading would differ from the whole page's (which then says what is wrong, at its line)."""
    text = _decode_slab(slab, first)
    if _may_break_lines(slab) and len(text.splitlines()) != _line_count(slab):
        raise _IrregularError  # another line end (CR, VT, FF, U+2028 ...): read whole
    if _may_hold_non_xml(slab):
        _refuse_non_xml(text, file)
    return text


def _line_count(slab: bytes) -> int:
    """How many lines text.split("\\n") gives of a slab's text, a last empty one left out."""
    return slab.count(b"\n") + (not slab.endswith(b"\n"))


def _parse_slab(slab: bytes, file: str, lines_before: int) -> tuple[Page, int]:
    """A slab read line by line by the column reader, and its number of lines."""
    text = _slab_text(slab, file, first=lines_before == 0)
    lines = text.split("\n")
    if text.endswith("\n"):
        lines.pop()
    page = _parse_entries_fast(list(map(str.strip, lines)), file, lines_before)
    if page is None or (lines_before and page.heading):
        raise _IrregularError
    return page, len(lines)


class _Scanned(NamedTuple):
    """What _scan_slab found in a slab, one item per entry: titles, times and categories,
    the line of each title (the line ends before it), where each body begins and ends, the
    warnings by entry; the heading; where each entry's block begins, then the slab's end."""

    titles: tuple[str, ...]
    created: tuple[datetime, ...]
    categories: tuple[tuple[str, ...], ...]
    lines: array[int]
    starts: array[int]
    ends: array[int]
    warnings: dict[int, str]
    heading: str
    cuts: array[int]

    def kept(self, slab: bytes, first: int, last: int) -> tuple[Any, ...]:
        """The reading of the segment of entries first to last (a tuple marshal writes), its
        numbers relative to where it begins: the slab's start for the first, else its title.
        _Reading.take makes its entries."""
        cuts = self.cuts
        lo = 0 if first == 0 else cuts[first]
        base = 0 if first == 0 else self.lines[first]
        upto = self.lines[last] if last < len(self.titles) else slab.count(_NL)
        created = self.created[first:last]
        stamps = tuple(map(datetime.timestamp, created))
        # Each distinct offset and month named once, then looked up (in C: map).
        offsets = list(map(datetime.utcoffset, created))
        seconds: dict[timedelta | None, int] = {
            o: int(o.total_seconds()) for o in set(offsets) if o is not None
        }
        shifts = tuple(map(seconds.__getitem__, offsets))
        months_of = list(map(_YEAR_MONTH, created))
        named = {ym: f"{ym[0]:04d}-{ym[1]:02d}" for ym in set(months_of)}
        names = list(map(named.__getitem__, months_of))
        blocks = map(slab.__getitem__, map(slice, cuts[first:last], cuts[first + 1 : last + 1]))
        sums = list(map(_DIGEST, map(hashlib.sha256, blocks)))
        months: dict[str, list[bytes]] = {}
        for name, digest in zip(names, sums, strict=True):
            found = months.get(name)
            if found is None:
                months[name] = [digest]
            else:
                found.append(digest)
        return (
            self.titles[first:last],
            stamps,
            shifts,
            self.categories[first:last],
            array("q", map(sub, self.lines[first:last], repeat(base))).tobytes(),
            array("q", map(sub, self.starts[first:last], repeat(lo))).tobytes(),
            array("q", map(sub, self.ends[first:last], repeat(lo))).tobytes(),
            tuple((i - first, w) for i, w in sorted(self.warnings.items()) if first <= i < last),
            self.heading if first == 0 else "",
            upto - base,
            {name: b"".join(parts) for name, parts in months.items()},
        )


_DIGEST = methodcaller("digest")


_YEAR_MONTH = attrgetter("year", "month")


# An 'Added:' anywhere in a slab: the start of an 'Added:' line when only white space is
# before it on its line (str.strip's, as the line walk strips each line).
_ADDED_AT = re.compile(re.escape(_ADDED_BYTES))
_NL = b"\n"
_BOM = "\ufeff".encode()


def _scan_slab(slab: bytes, file: str, first: bool) -> _Scanned:
    """The entries of a slab as the column reader (_parse_entries_fast) reads them, found
    in its bytes: the 'Added:' lines, each one's blank line and title line above it, and the
    line numbers by counting line ends. Only the title and 'Added:' lines are decoded and
    stripped; the descriptions are checked as bytes (UTF-8, line ends, characters XML
    refuses) but never split into lines. first: the slab opens the page (its heading).
    _IrregularError where the column reader would not read it (the whole page's reading then
    gives the page or the error)."""
    if first and slab.startswith(_BOM):
        raise _IrregularError  # line 1 would begin after it: read whole
    _slab_text(slab, file, first)
    size = len(slab)
    found = array("q", map(re.Match.start, _ADDED_AT.finditer(slab)))
    # Where each line that holds one begins; it is an 'Added:' line when what is before it
    # on the line is white space (nothing, nearly always).
    begins = array("q", map(add, map(slab.rfind, repeat(_NL), repeat(0), found), repeat(1)))
    if begins != found:
        keep = [
            b == a or slab[b:a].decode().strip() == "" for b, a in zip(begins, found, strict=True)
        ]
        begins = array("q", compress(begins, keep))
    if not begins or begins[0] == 0:
        raise _IrregularError
    # The blank line above each, then the title line above it.
    blanks = array("q", map(add, map(slab.rfind, repeat(_NL), repeat(0), _less(begins)), repeat(1)))
    if blanks[0] == 0:
        raise _IrregularError
    titles = array("q", map(add, map(slab.rfind, repeat(_NL), repeat(0), _less(blanks)), repeat(1)))
    ends = array("q", map(slab.find, repeat(_NL), begins))
    if -1 in ends:
        ends[ends.index(-1)] = size  # the last line, without a line end
    # Each title line below the 'Added:' line before it (3 lines apart at least).
    if any(map(lt, titles[1:], map(add, ends, repeat(1)))):
        raise _IrregularError
    if not first and titles[0] != 0:
        raise _IrregularError
    get = slab.__getitem__
    if not all(map(_is_blank, map(get, map(slice, blanks, _less(begins))))):
        raise _IrregularError
    names = tuple(map(str.strip, map(bytes.decode, map(get, map(slice, titles, _less(blanks))))))
    if "" in names:
        raise _IrregularError
    heading = ""
    if first:
        above = slab[: titles[0]].decode().split("\n")[:-1]
        read = _read_heading([*map(str.strip, above), names[0]], len(above))
        if read is None:
            raise _IrregularError
        heading = read
    added = tuple(map(str.strip, map(bytes.decode, map(get, map(slice, begins, ends)))))
    columns = _read_added_lines(added)
    if columns is None:
        raise _IrregularError
    cuts = array("q", titles)
    cuts.append(size)
    # The line of each title: the line ends before it, counted block by block.
    counts = map(slab.count, repeat(_NL), cuts[:-1], cuts[1:])
    lines = array("q", accumulate(counts, initial=slab.count(_NL, 0, titles[0])))
    lines.pop()
    # A body: from below the 'Added:' line to the next title line, or to the end.
    starts = array("q", map(min, map(add, ends, repeat(1)), repeat(size)))
    return _Scanned(
        names,
        columns.created,
        columns.categories,
        lines,
        starts,
        cuts[1:],
        columns.warnings,
        heading,
        cuts,
    )


def _less(positions: array[int]) -> Iterator[int]:
    """Each position less one."""
    return map(sub, positions, repeat(1))


def _is_blank(line: bytes) -> bool:
    """Whether a line is blank once stripped as the line walk strips it (str.strip)."""
    return not line.strip() or not line.decode().strip()


# What a month's digest depends on besides its blocks of text: this module (how a block is
# read) and, per month, the UK offsets of its days and hours (the tz database's rules).
_CODE_KEY = hashlib.sha256(Path(__file__).read_bytes()).digest()


# A rebuild's reading of a long page (read_page(lazy=True, cache=...)): the page is cut into
# segments of about SEGMENT_BYTES (each a run of whole entries, cut where a title begins),
# and what each segment's entries are is kept in the cache folder (ParseCache), by the
# digest of its bytes. The next reading finds the previous segments again in the file (at
# the same place, or moved by the bytes added or removed before them, by the start of their
# text) and takes their entries from the cache when their bytes are the same; only the rest
# is scanned. A segment's entries, places and warnings are a function of its bytes, of
# the lines before it and of whether it opens the page: it begins with a title line (a line
# two above an 'Added:' line: an 'Added:' line's two lines above are in it) and what follows
# it, a title or the end, holds no line that would make its last lines anything else.
SEGMENT_BYTES = 256 << 10
# How far from where a segment was expected (its old place, moved as the segments before
# it moved) its text is looked for.
SEGMENT_WINDOW = 4 << 20
_HEAD_BYTES = 200  # how much of a segment's text it is looked for by
_TABLE = "segments.json"
_CACHE_VERSION = 1


@dataclass(frozen=True)
class _Segment:
    """A segment of a page as the cache knows it: where it began, its length, its digest,
    whether it opened the page (then it holds the heading) and its first bytes."""

    start: int
    length: int
    digest: str
    first: bool
    head: bytes  # its first bytes, by which it is looked for when it moved


@dataclass(frozen=True)
class ParseCache:
    """The folder where the readings of a page's segments are kept between builds (a
    publication's .parsed/); read: whether the previous ones are used (a build that reuses)."""

    folder: Path
    read: bool = True

    def table(self) -> tuple[int, list[_Segment]]:
        """The previous page's size and segments, or nothing when there is no usable table."""
        if not self.read:
            return 0, []
        try:
            doc = json.loads((self.folder / _TABLE).read_text(encoding="utf-8"))
            if doc["version"] != _CACHE_VERSION or doc["code"] != _CODE_KEY.hex():
                return 0, []
            rows = [
                _Segment(int(a), int(b), str(c), bool(d), bytes.fromhex(e))
                for a, b, c, d, e in doc["segments"]
            ]
            return int(doc["size"]), rows
        except (OSError, ValueError, KeyError, TypeError):
            return 0, []

    def load(self, digest: str) -> Any:
        """What a segment's reading kept (marshal), or None."""
        try:
            return marshal.loads((self.folder / digest).read_bytes())
        except (OSError, ValueError, EOFError, TypeError):
            return None

    def keep(self, size: int, segments: Sequence[_Segment], new: Mapping[str, bytes]) -> None:
        """Write the segments new to this reading and the table; remove the others. A cache
        that cannot be written is left (the next reading scans more)."""
        with contextlib.suppress(OSError):
            self.folder.mkdir(parents=True, exist_ok=True)
            for digest, data in new.items():
                _write_atomically(self.folder / digest, data)
            table = {
                "version": _CACHE_VERSION,
                "code": _CODE_KEY.hex(),
                "size": size,
                "segments": [
                    [s.start, s.length, s.digest, s.first, s.head.hex()] for s in segments
                ],
            }
            _write_atomically(self.folder / _TABLE, json.dumps(table).encode())
            kept = {s.digest for s in segments} | {_TABLE}
            for path in self.folder.iterdir():
                if path.name not in kept and not path.name.startswith("."):
                    path.unlink(missing_ok=True)


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}-{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _segment_digest(data: bytes, first: bool) -> str:
    """What a segment's reading is kept by (its cache file's name), and found again by: every
    segment of the page is hashed again by a rebuild (665 MB at 1M entries), by XXH3-128, at
    about 25 times SHA-256's speed here (0.02 against 0.4 s of a rebuild's main thread). It
    tells unchanged bytes from changed ones, no more: not a checksum anyone is given, nor a
    defence against a page made to collide, which would only have a rebuild take the reading
    of the text that page held before (the months' digests, which decide what is published
    again, are SHA-256: _Scanned.kept)."""
    h = xxhash.xxh3_128(_CODE_KEY)
    h.update(b"1" if first else b"0")
    h.update(data)
    return h.hexdigest()


class _Bytes:
    """A file's bytes by range, read with pread(2) when asked for: not mapped (a file cut
    short while mapped kills the reader with SIGBUS), nor all held (665 MB at 1M entries)."""

    def __init__(self, fd: int, size: int) -> None:
        self.fd, self.size = fd, size

    def __getitem__(self, key: slice) -> bytes:
        start, stop = key.start, min(key.stop, self.size)
        if stop <= start:
            return b""
        data = os.pread(self.fd, stop - start, start)
        if len(data) != stop - start:
            raise _IrregularError  # cut short while it was read: read it whole
        return data

    def find(self, sub: bytes, start: int, end: int) -> int:
        at = self[start:end].find(sub)
        return at + start if at >= 0 else -1


def _read_segments(path: Path, cache: ParseCache | None) -> Page:
    """A long page read lazily, its segments the cache knows (same bytes) taken from it, the
    rest scanned a slab at a time (_scan_slab) and kept in it for the next reading."""
    file = str(path)
    reading: _Reading
    with path.open("rb") as f:
        stamp = _stamp(os.fstat(f.fileno()))
        source = Source(path, stamp)
        size = stamp[1]
        raw = _Bytes(f.fileno(), size)
        if raw[0 : len(_BOM)] == _BOM:
            raise _IrregularError
        old_size, old = cache.table() if cache is not None else (0, [])
        try:
            reading = _read_steps(raw, _plan(raw, size, old_size, old), source, cache)
        except _IrregularError:
            if not old:
                raise
            # A segment taken whose last block goes on past it (text added below it, before
            # the next title): scan the whole page.
            reading = _read_steps(raw, [(0, size, None)], source, cache)
        if _stamp(os.fstat(f.fileno())) != stamp:
            raise _IrregularError  # written to while it was read: read it whole
    if not reading.entries:
        raise _IrregularError
    if cache is not None:
        cache.keep(size, reading.segments, reading.new)
    return Page(
        file=file,
        heading=reading.heading,
        entries=tuple(reading.entries),
        warnings=tuple(reading.warnings),
        months=reading.digests(),
        stamps=reading.stamps,
    )


# A step of reading: (start, end, the segment the cache has there, or None: scan it).
_Step = tuple[int, int, "_Segment | None"]


def _read_steps(
    raw: _Bytes, steps: Sequence[_Step], source: Source, cache: ParseCache | None
) -> _Reading:
    """Take each step's segment from the cache, or scan its bytes."""
    reading = _Reading(str(source.path), source)
    for start, end, seg in steps:
        kept = cache.load(seg.digest) if cache is not None and seg else None
        if seg is not None and kept is not None:
            reading.take(kept, start, seg)
        else:
            _scan_range(raw, start, end, reading)
    return reading


def _plan(raw: _Bytes, size: int, old_size: int, old: Sequence[_Segment]) -> list[_Step]:
    """Where the previous segments are in the file (same bytes), and what is to be scanned."""
    steps: list[_Step] = []
    done = 0  # the bytes before this are planned
    delta = 0  # how far the segments moved
    for seg in old:
        at = _find_segment(raw, size, old_size, seg, seg.start + delta, done)
        if at is None:
            continue
        if at > done:
            steps.append((done, at, None))
        steps.append((at, at + seg.length, seg))
        done, delta = at + seg.length, at - seg.start
    if done < size:
        steps.append((done, size, None))
    return steps


def _find_segment(
    raw: _Bytes,
    size: int,
    old_size: int,
    seg: _Segment,
    expected: int,
    done: int,
) -> int | None:
    """Where a previous segment's bytes are in the file, at or after done, near expected."""
    last = seg.start + seg.length == old_size  # it ran to the end of the page

    def fits(at: int) -> bool:
        end = at + seg.length
        if seg.first != (at == 0) or end > size or (last and end != size):
            return False
        if at > 0 and raw[at - 1 : at] != _NL:
            return False
        return _segment_digest(raw[at:end], seg.first) == seg.digest

    if expected >= done and fits(expected):
        return expected
    if seg.first or not seg.head:
        return None
    lo, hi = max(done, expected - SEGMENT_WINDOW), min(size, expected + SEGMENT_WINDOW)
    window = raw[lo:hi]
    at = window.find(seg.head)
    while at >= 0:
        if fits(lo + at):
            return lo + at
        at = window.find(seg.head, at + 1)
    return None


def _scan_range(raw: _Bytes, start: int, end: int, reading: _Reading) -> None:
    """Scan the bytes from start to end (a title begins at each, or they are the page's
    ends) a slab at a time, each slab cut into segments that the reading takes."""
    at = start
    while at < end:
        stop = min(end, at + SLAB_BYTES)
        slab = raw[at:stop]
        if stop < end:
            slab = slab[: _title_start(slab)]
            stop = at + len(slab)
        scanned = _scan_slab(slab, reading.file, at == 0)
        for first, last in _segment_rows(scanned.cuts):
            kept = scanned.kept(slab, first, last)
            lo, hi = scanned.cuts[first], scanned.cuts[last]
            if first == 0:
                lo = 0
            digest = _segment_digest(slab[lo:hi], at + lo == 0)
            seg = _Segment(at + lo, hi - lo, digest, at + lo == 0, slab[lo : lo + _HEAD_BYTES])
            reading.new[digest] = marshal.dumps(kept)
            reading.take(kept, at + lo, seg, scanned.created[first:last])
        at = stop


def _segment_rows(cuts: Sequence[int]) -> list[tuple[int, int]]:
    """The entries of a slab by segment: (first, end) rows of about SEGMENT_BYTES each."""
    rows: list[tuple[int, int]] = []
    first = 0
    n = len(cuts) - 1
    while first < n:
        last = bisect.bisect_left(cuts, cuts[first] + SEGMENT_BYTES, first + 1, n)
        rows.append((first, last))
        first = last
    return rows


class _Reading:
    """What a page's reading has gathered: entries, warnings, the heading, the lines before
    the next segment, the digests of each month's entries' blocks in page order, and the
    segments (the new ones' readings to keep)."""

    def __init__(self, file: str, source: Source) -> None:
        self.file, self.source = file, source
        self.entries: list[Entry] = []
        self.warnings: list[str] = []
        self.heading = ""
        self.lines_before = 0
        self.pieces: dict[str, list[bytes]] = {}
        self.segments: list[_Segment] = []
        self.new: dict[str, bytes] = {}
        self._zones: dict[int, timezone] = {}
        self.stamps: array[float] = array("d")  # the entries' created.timestamp()
        # One tuple for each list of categories, of one string for each label (_shared).
        self._lists: dict[tuple[str, ...], tuple[str, ...]] = {}
        self._labels: dict[str, str] = {}

    def take(
        self, kept: Any, offset: int, seg: _Segment, times: Sequence[datetime] | None = None
    ) -> None:
        """The entries of a segment's reading (kept, as _Scanned.kept makes it), at offset;
        times: their times, when the reading has them (else made from kept's)."""
        try:
            titles, stamps, shifts, categories, lines, starts, ends, warned, heading, nl, months = (
                kept
            )
            zones = self._zones
            for shift in set(shifts):
                if shift not in zones:
                    zones[shift] = timezone(timedelta(seconds=shift))
            created: Iterable[datetime] = (
                times
                if times is not None
                else map(datetime.fromtimestamp, stamps, map(zones.__getitem__, shifts))
            )
            numbers = array("q", map(add, array("q", lines), repeat(self.lines_before + 1)))
            places = tuple(zip(map(Place, repeat(self.file), numbers)))
            bodies = zip(
                repeat(self.source),
                map(add, array("q", starts), repeat(offset)),
                map(add, array("q", ends), repeat(offset)),
            )
            shared = self._shared(categories)
            entries = tuple(map(Entry, titles, created, shared, repeat(""), places, bodies))
        except (ValueError, TypeError, OverflowError, OSError):
            raise _IrregularError from None
        if len(entries) != len(titles):
            raise _IrregularError
        if seg.first:
            self.heading = heading
        self.entries.extend(entries)
        self.stamps.extend(stamps)
        self.warnings.extend(f"{self.file}:{numbers[i] + 2}: {w}" for i, w in warned)
        for month, piece in months.items():
            self.pieces.setdefault(month, []).append(piece)
        self.lines_before += nl
        self.segments.append(seg)

    def _shared(self, categories: Sequence[tuple[str, ...]]) -> list[tuple[str, ...]]:
        """The entries' lists of categories, each the one tuple of the page that holds them.

        A segment's reading shares its lists (marshal keeps one object for each), but a page
        of a million entries read from 2,600 segments had 588,000 tuples and 1.8 million
        strings for 793 lists of 12 labels: every set or dict of labels made from them
        hashed each string (0.7 s of convert's collect_categories at 1M entries), and they
        held about 140 MB."""
        lists = self._lists
        out = list(map(lists.get, categories))
        if None in out:
            labels = self._labels
            for i, found in enumerate(out):
                if found is None:
                    listed = categories[i]
                    found = lists.get(listed)
                    if found is None:
                        found = lists[listed] = tuple(map(labels.setdefault, listed, listed))
                    out[i] = found
        return cast("list[tuple[str, ...]]", out)

    def digests(self) -> dict[str, str]:
        """Each month's digest: of its entries' blocks, in page order, and its UK offsets."""
        out: dict[str, str] = {}
        for name in sorted(self.pieces):
            h = hashlib.sha256(_CODE_KEY)
            h.update(b"".join(self.pieces[name]))
            h.update(_month_rules(int(name[:4]), int(name[5:])).encode())
            out[name] = h.hexdigest()
        return out


def _month_rules(year: int, month: int) -> str:
    """The UK offsets of a month's days (and hours, on a day the clocks change)."""
    rules: list[str] = []
    for day in range(1, calendar.monthrange(year, month)[1] + 1):
        tz, odd = _uk_day(year, month, day)
        rules.append(str(tz))
        if odd:
            rules.extend(str(_uk_offset(year, month, day, hour)) for hour in range(24))
    return ",".join(rules)


def descriptions(entries: Iterable[Entry]) -> list[str]:
    """The description of each entry: its own, or read back from its listing by its body;
    ListingError if that file is not as it was when it was parsed."""
    listed = list(entries)
    out = [e.description for e in listed]
    by_source: dict[Source, list[int]] = {}
    for i, entry in enumerate(listed):
        if entry.body is not None:
            by_source.setdefault(entry.body[0], []).append(i)
    for source, rows in by_source.items():
        with source.opened() as fd:
            for i in rows:
                body = listed[i].body
                assert body is not None
                _, start, end = body
                data = os.pread(fd, end - start, start)
                if len(data) != end - start:
                    raise source.changed()
                try:
                    out[i] = _description_of(data.decode("utf-8"))
                except UnicodeDecodeError:
                    raise source.changed() from None
    return out


def _description_of(text: str) -> str:
    """The description of a body's text: what _read_descriptions makes of its lines."""
    lines = list(map(str.strip, text.split("\n")))
    joined = "\n".join(filter(None, lines))
    if _MAY_JOIN.search(joined) or joined.startswith(_CHROME_LINES):
        return _join_description([line for line in lines if line not in CHROME])
    return joined


def with_descriptions(page: Page) -> Page:
    """The page with its entries' descriptions held (read back, for those with a body)."""
    if all(e.body is None for e in page.entries):
        return page
    texts = descriptions(page.entries)
    entries = tuple(
        Entry(e.title, e.created, e.categories, text, e.places)
        for e, text in zip(page.entries, texts, strict=True)
    )
    return Page(page.file, page.heading, entries, page.warnings, page.months, page.stamps)


def _title_start(data: bytes) -> int:
    """Where the title line of the last entry that starts in data begins; _IrregularError if
    none can be told apart (then the page is read whole)."""
    at = len(data)
    while True:
        at = data.rfind(_ADDED_BYTES, 0, at)
        if at <= 0:
            raise _IrregularError
        line = data.rfind(b"\n", 0, at) + 1
        if data[line:at].strip() == b"" and line > 0:
            blank = data.rfind(b"\n", 0, line - 1) + 1
            title = data.rfind(b"\n", 0, max(blank - 1, 0)) + 1 if blank > 0 else 0
            if title > 0 and data[blank : line - 1].strip() == b"":
                return title
        at -= 1


# The bytes of the characters _refuse_non_xml refuses that UTF-8 writes in one byte (no byte
# of a longer sequence is below 0x80), and how the others begin: U+FFFE and U+FFFF are
# EF BF BE and EF BF BF; a surrogate is no UTF-8 (_decode_slab refuses it).
_NON_XML_BYTES = bytes([*range(0x09), 0x0B, 0x0C, *range(0x0E, 0x20)])
_XML_BYTES = bytes(b for b in range(256) if b not in _NON_XML_BYTES)
_NON_XML_LEAD = b"\xef\xbf"


def _may_hold_non_xml(slab: bytes) -> bool:
    """Whether a slab's text may hold a character _refuse_non_xml refuses: a tenth of the
    cost of its search over the text (bytes.translate deletes the allowed bytes in one pass of
    C; 0.5 s at 100k entries, 5 s at 1M), which then runs only when this says maybe."""
    return bool(slab.translate(None, _XML_BYTES)) or _NON_XML_LEAD in slab


# The bytes of what str.splitlines() takes for a line end but "\n": CR, VT, FF, FS, GS, RS,
# and the last bytes of U+0085, U+2028 and U+2029 (C2 85, E2 80 A8, E2 80 A9) in UTF-8.
_BREAK_BYTES = b"\r\x0b\x0c\x1c\x1d\x1e\x85\xa8\xa9"
_NOT_BREAK_BYTES = bytes(b for b in range(256) if b not in _BREAK_BYTES)


def _may_break_lines(slab: bytes) -> bool:
    """Whether a slab's text may hold a line end other than LF or CRLF (then splitlines() and
    split("\n") count its lines differently): a pass of bytes.translate, where splitlines()
    over the text was a sixth of the reading of a long page."""
    found = slab.translate(None, _NOT_BREAK_BYTES)
    return bool(found) and (found.strip(b"\r") != b"" or slab.count(b"\r") != slab.count(b"\r\n"))


def _decode_slab(slab: bytes, first: bool) -> str:
    """A slab as text; _IrregularError if read_text would refuse it (its error names the line)."""
    if b"\x00" in slab:
        raise _IrregularError
    try:
        text = slab.decode("utf-8")
    except UnicodeDecodeError:
        raise _IrregularError from None
    return text.removeprefix("\ufeff") if first else text


def read_listings(
    paths: Sequence[Path], lazy: bool = False, cache: ParseCache | None = None
) -> tuple[list[Page], list[Entry], list[str]]:
    """Read and parse listing files, then merge their entries. lazy (a build): one long page
    is read without its descriptions (read_page(lazy=True)), with the cache of its segments'
    readings if given; several pages keep theirs."""
    one = lazy and len(paths) == 1
    pages = [read_page(p, lazy=one, cache=cache if one else None) for p in paths]
    entries, warnings = merge_pages(pages)
    return pages, entries, warnings


def month_digests(pages: Sequence[Page]) -> dict[str, str] | None:
    """The digests of the months' blocks of source text, when one page gives them (a page
    read without its descriptions); None otherwise (convert then hashes the records)."""
    if len(pages) == 1 and pages[0].months:
        return dict(pages[0].months)
    return None
