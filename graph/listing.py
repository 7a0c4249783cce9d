"""Text of listing pages -> Entry records, each with the file and line it was read from.

The format is a website's export of a library page (see README, "The listing format"):
a page heading, then per entry a title line, a blank line, an ``Added: DD/MM/YYYY at
H:MM am|pm Category: A, B`` line and a description of zero or more paragraphs. A line is
a title exactly when the line two below it is an ``Added:`` line.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

from graph.errors import ListingError

LONDON = ZoneInfo("Europe/London")
CHROME = frozenset({"No Comments", "Sorry, the comment form is closed at this time."})
ADDED_PREFIX = "Added:"
ADDED_FORMAT = "'Added: DD/MM/YYYY at H:MM am|pm Category: A, B'"
_DATE = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$")
_BULLET = "•"
# A description line that ends a sentence (or introduces a list) is not wrapped.
_TERMINAL = re.compile(r"[.!?:;][\"'”’)\]]*$")


@dataclass(frozen=True)
class Place:
    """Where something was read: a file and a 1-based line number."""

    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True)
class Entry:
    """One library entry as listed: identity is (title, created)."""

    title: str
    created: datetime  # aware, Europe/London
    categories: tuple[str, ...]
    description: str
    places: tuple[Place, ...] = field(compare=False)

    @property
    def key(self) -> tuple[str, datetime]:
        """The identity of an entry across pages: same title and same Added time."""
        return (self.title, self.created)


@dataclass(frozen=True)
class Page:
    """One parsed listing page."""

    file: str
    heading: str
    entries: tuple[Entry, ...]
    warnings: tuple[str, ...]


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


def parse_listing(text: str, file: str) -> Page:
    """Parse the text of one listing page into its entries, in page order."""
    lines = [line.strip() for line in text.splitlines()]
    if not any(lines):
        raise ListingError(
            file, 1, "empty file; expected a listing page ('Library – …' and entries)"
        )
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


def _place_order(place: Place) -> tuple[str, int]:
    return (place.file, place.line)


def read_listings(paths: Sequence[Path]) -> tuple[list[Page], list[Entry], list[str]]:
    """Read and parse listing files, then merge their entries."""
    pages = [parse_listing(read_text(p), str(p)) for p in paths]
    entries, warnings = merge_pages(pages)
    return pages, entries, warnings
