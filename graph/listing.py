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

import calendar
import contextlib
import hashlib
import os
import re
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from functools import lru_cache
from itertools import accumulate, compress, groupby, repeat
from operator import add, attrgetter, itemgetter, not_, sub
from pathlib import Path
from typing import Any, NamedTuple, TypeVar
from zoneinfo import ZoneInfo

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


@dataclass(frozen=True, slots=True)
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


@dataclass(frozen=True, slots=True)
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
    source text, for a page read without its descriptions (read_page(lazy=True))."""

    file: str
    heading: str
    entries: tuple[Entry, ...]
    warnings: tuple[str, ...]
    months: Mapping[str, str] = field(default_factory=dict, repr=False)


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
    offsets: Sequence[int] | None = None,
    source: Source | None = None,
) -> Page | None:
    """The Page _walk_lines gives for a well-formed page, read column by column.

    Each title is the line two above an 'Added:' line, with a blank line between; a
    description runs from the 'Added:' line to the next title. None when anything is off (a
    misplaced line, an 'Added:' line that does not read, an empty category ...): the line
    walk then gives the exact error. The work per entry runs in C (map, regular expressions,
    str.join) but for making Entry and Place, and each distinct date, time and category list
    is decoded once. The columns are tuples of strings, numbers and datetimes, which the GC
    stops following after one look. first_line: how many lines of the file come before lines
    (a slab of a long page, _read_slabs), added to every line number. With offsets (the byte
    offset in source's file of each line, then of the end) the entries get bodies, not
    descriptions.
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
    if offsets is None or source is None:
        descriptions: Iterable[str] = _read_descriptions(lines, added)
        bodies: Iterable[Body | None] = repeat(None)
    else:
        # From below the 'Added:' line to the next title line, or to the end.
        descriptions = repeat("")
        starts = map(offsets.__getitem__, map(add, added, repeat(1)))
        ends = (*map(offsets.__getitem__, map(sub, added[1:], repeat(2))), offsets[-1])
        bodies = zip(repeat(source), starts, ends)
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
                bodies,
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
    """
    entries = page.entries
    try:
        keys = [(e.created.timestamp(), e.title) for e in entries]
    except (ValueError, OverflowError, OSError):
        return None  # let the merge loop meet the same value (and raise the same way)
    if len(set(keys)) != len(keys):
        return None
    return [entries[i] for i in sorted(range(len(entries)), key=keys.__getitem__)]


def _place_order(place: Place) -> tuple[str, int]:
    return (place.file, place.line)


# A page of more bytes than this is read a slab at a time (_read_slabs).
SLAB_BYTES = 32 << 20


class _IrregularError(Exception):
    """A page the slabs cannot read as parse_listing would: read it whole."""


def read_page(path: Path, lazy: bool = False) -> Page:
    """parse_listing(read_text(path)), reading a long page a slab of SLAB_BYTES at a time:
    its text and lines are never all in memory (at 1M entries, 665 MB of UTF-8 were 1.3 GB
    of text and as much in lines), only its entries. A page the slabs cannot read exactly as
    a whole (a mistake, a line end other than LF or CRLF, ...) is read whole, which gives
    parse_listing's answer or its error.

    lazy: a page read in slabs keeps no descriptions (its entries' bodies say where they are:
    descriptions() reads them) and gives the digests of its months (Page.months)."""
    try:
        if path.stat().st_size > SLAB_BYTES:
            return _read_slabs(path, SLAB_BYTES, lazy)
    except (OSError, ListingError, _IrregularError):
        pass  # the whole page's reading says what is wrong, at the right line
    return parse_listing(read_text(path), str(path))


_ADDED_BYTES = ADDED_PREFIX.encode()


def _read_slabs(path: Path, size: int, lazy: bool = False) -> Page:
    """A long well-formed page, a slab at a time: each slab ends where a title line begins
    (the line two above an 'Added:' line), so each is a run of whole entries that the column
    reader reads (_parse_entries_fast), its line numbers shifted by the lines before it.
    lazy: bodies instead of descriptions, and the months' digests (_MonthBlocks)."""
    file = str(path)
    entries: list[Entry] = []
    warnings: list[str] = []
    heading = ""
    lines_before = 0
    offset = 0  # bytes of the file before the slab
    with path.open("rb") as f:
        stamp = _stamp(os.fstat(f.fileno()))
        source = Source(path, stamp) if lazy else None
        blocks = _MonthBlocks()
        carry = b""
        while True:
            block = f.read(size)
            data = carry + block
            if not data:
                break
            cut = len(data) if not block else _title_start(data)
            slab, carry = data[:cut], data[cut:]
            text = _decode_slab(slab, first=lines_before == 0)
            lines = text.split("\n")
            if text.endswith("\n"):
                lines.pop()
            if _may_break_lines(slab) and len(text.splitlines()) != len(lines):
                raise _IrregularError  # another line end (CR, VT, FF, U+2028 ...): read whole
            if _may_hold_non_xml(slab):
                _refuse_non_xml(text, file)
            stripped = list(map(str.strip, lines))
            offsets = _line_offsets(lines, offset, len(slab)) if source is not None else None
            page = _parse_entries_fast(stripped, file, lines_before, offsets, source)
            if page is None or (lines_before and page.heading):
                raise _IrregularError
            if lines_before == 0:
                heading = page.heading
            if offsets is not None:
                blocks.add(slab, offset, page.entries, offsets, lines_before)
            entries.extend(page.entries)
            warnings.extend(page.warnings)
            lines_before += len(lines)
            offset += len(slab)
            if not block:
                break
        if _stamp(os.fstat(f.fileno())) != stamp:
            raise _IrregularError  # written to while it was read: read it whole
    if not entries:
        raise _IrregularError
    return Page(
        file=file,
        heading=heading,
        entries=tuple(entries),
        warnings=tuple(warnings),
        months=blocks.digests() if source is not None else {},
    )


def _line_offsets(lines: Sequence[str], offset: int, size: int) -> array[int]:
    """The offset in the file of each line of a slab (its text split at "\n"), then of the
    slab's end; offset: where the slab begins, size: its length in bytes."""
    lengths = array("q", map(len, lines))
    # A line of ASCII has as many bytes as characters: encode the others only.
    for i in compress(range(len(lines)), map(not_, map(str.isascii, lines))):
        lengths[i] = len(lines[i].encode("utf-8", "surrogatepass"))
    offsets = array("q", map(add, accumulate(lengths, initial=offset), range(len(lines))))
    offsets.append(offset + size)  # the end, with or without a last "\n"
    return offsets


# What a month's digest depends on besides its blocks of text: this module (how a block is
# read) and, per month, the UK offsets of its days and hours (the tz database's rules).
_CODE_KEY = hashlib.sha256(Path(__file__).read_bytes()).digest()


class _MonthBlocks:
    """The blocks of source text of a page's entries (from the title line to the next title
    line), hashed by month in page order: equal digests, equal records of the month."""

    def __init__(self) -> None:
        self.hashes: dict[tuple[int, int], Any] = {}
        self.lengths: dict[tuple[int, int], array[int]] = {}

    def add(
        self,
        slab: bytes,
        offset: int,
        entries: Sequence[Entry],
        offsets: Sequence[int],
        lines_before: int,
    ) -> None:
        """The blocks of a slab's entries (offsets: of each line in the file, then the end)."""
        # The title lines' offsets in the slab, then its end (all in C: map, not a loop).
        titles = map(sub, map(_LINE, map(_FIRST, map(_PLACES, entries))), repeat(1 + lines_before))
        cuts = array("q", map(sub, map(offsets.__getitem__, titles), repeat(offset)))
        cuts.append(len(slab))
        keys = list(map(_MONTH, map(_CREATED, entries)))
        # The entries by month, in page order within each (a stable sort).
        order = sorted(range(len(keys)), key=keys.__getitem__)
        for key, rows in groupby(order, key=keys.__getitem__):
            found = list(rows)
            starts = array("q", map(cuts.__getitem__, found))
            ends = array("q", map(cuts.__getitem__, map(add, found, repeat(1))))
            h = self.hashes.get(key)
            if h is None:
                h = self.hashes[key] = hashlib.sha256(_CODE_KEY)
                self.lengths[key] = array("q")
            h.update(b"".join(map(slab.__getitem__, map(slice, starts, ends))))
            self.lengths[key].extend(map(sub, ends, starts))

    def digests(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for key in sorted(self.hashes):
            h = self.hashes[key]
            h.update(self.lengths[key].tobytes())
            h.update(_month_rules(*key).encode())
            out[f"{key[0]:04d}-{key[1]:02d}"] = h.hexdigest()
        return out


_CREATED = attrgetter("created")
_MONTH = attrgetter("year", "month")
_PLACES = attrgetter("places")
_FIRST = itemgetter(0)
_LINE = attrgetter("line")


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
    return Page(page.file, page.heading, entries, page.warnings, page.months)


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
    paths: Sequence[Path], lazy: bool = False
) -> tuple[list[Page], list[Entry], list[str]]:
    """Read and parse listing files, then merge their entries. lazy (a build): one long page
    is read without its descriptions (read_page(lazy=True)); several pages keep theirs."""
    pages = [read_page(p, lazy=lazy and len(paths) == 1) for p in paths]
    entries, warnings = merge_pages(pages)
    return pages, entries, warnings


def month_digests(pages: Sequence[Page]) -> dict[str, str] | None:
    """The digests of the months' blocks of source text, when one page gives them (a page
    read without its descriptions); None otherwise (convert then hashes the records)."""
    if len(pages) == 1 and pages[0].months:
        return dict(pages[0].months)
    return None
