"""The history of a publication: what each build created, updated and deleted, entry by entry.

Each build compares its entries with those of the current release by fingerprint (sha256 of
the entry's own triples as sorted N-Triples lines, dcterms:modified left out) and writes
into the release it builds (so a failed build leaves the history untouched):

  history.jsonl   every change ever published, oldest first, one JSON object a line:
                  {"seq", "time", "kind": "create"|"update"|"delete", "iri", "title"};
                  the previous release's file carried forward, this build's changes appended
                  (a file of parts: graph/parts.py; its parts in the release's parts/)
  entries.json    the categories ever seen; a digest of the state (chained from the
                  previous one and the changes) and the time it last changed; the months;
                  since when the base IRI, the library's title, members and categories,
                  and each category's label and members have been what they are (`Since`)
  entries/<YYYY-MM>.json
                  every entry ever published whose IRI has that month, tombstones included:
                  IRI -> a row of "fields": fingerprint, title, categories (concept IRIs),
                  created (its dcterms:created), published (first build that had it),
                  datestamp (last change of any kind), modified (build that last updated
                  it), deleted (build that removed it). A month no entry of which changed is
                  the previous release's file, hard-linked: a build costs what changed.

An entry keeps its dcterms:created; an updated one gets dcterms:modified (the time of that
build) in the data itself: convert asks `Decisions.modified_of` as it renders each entry.
Times are UTC xsd:dateTime to the second, 'Z' form. A later build only needs the
fingerprints of what it rebuilt: `compute` accepts them.

Pages show more than an entry's own triples: an entry's page names its categories and the
library; a category's page counts and lists its entries. So that the server can say when each
page last changed (HTTP Last-Modified) without comparing releases, a build also records when
the title, the library's members and categories, each label and each category's members last
changed (`Since`), and the server reads when each entry got its title from history.jsonl
(`Index.titled`).

A build's time comes before its release goes live (the swap of `current`, and up to a second
more until every server worker has looked at it: server/current.py). OAI-PMH datestamps must
not be earlier than the moment a harvester could see the change, or one that harvested in
between would skip it for ever; so entries.json also maps each build time to the time its
release went live (`visible`), read from the mtime of the `current` symlink by the next build,
and by the server for the build it is serving.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import itertools
import json
import math
import os
import shutil
from collections.abc import (
    Callable,
    Collection,
    Hashable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from json.encoder import encode_basestring
from pathlib import Path
from typing import Any, Literal, NamedTuple, TypeVar

import pyoxigraph
from pyoxigraph import Triple

from graph import parts
from graph.convert import Converted, format_created
from graph.errors import EntryGone, PublicationError
from graph.namespaces import DCTERMS

# server/current.py looks at `current` at most once a second: a change is visible to every
# worker at most this long after the swap.
VISIBILITY_MARGIN = 1
CURRENT = "current"  # graph/publication.py's symlink (imported from there would be circular)
HISTORY = "history.jsonl"
ENTRIES = "entries.json"
MONTHS = "entries"  # entries/<YYYY-MM>.json: the states of the entries of one month
VERSION = 3
MEMO_SIZE = 64  # selections remembered per release (OAI-PMH from/until/set ranges)
T = TypeVar("T")

Kind = Literal["create", "update", "delete"]
_MODIFIED_NT = f"<{DCTERMS.modified}> ".encode()


def format_time(moment: datetime) -> str:
    """A build time as published: UTC, to the second, with 'Z' (OAI-PMH §3.3 granularity)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> datetime:
    """The aware datetime of a time written by format_time."""
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


class Change(NamedTuple):
    """One line of history.jsonl: what happened to an entry in one build."""

    seq: int  # 1-based position in the whole history; never reused
    time: str
    kind: Kind
    iri: str
    title: str


class EntryState(NamedTuple):
    """What the history knows of one entry, live or deleted (a row of entries.json).

    A NamedTuple, not a dataclass: 100k of them are built on every load.
    """

    fingerprint: str
    title: str
    categories: tuple[str, ...]  # concept IRIs
    created: str  # the entry's dcterms:created, as in the data
    published: str  # time of the first build that published it
    datestamp: str  # time of its last change: creation, update, deletion or return
    modified: str | None = None  # time of the build that last updated it
    deleted: str | None = None  # time of the build that removed it; None while published


@dataclass(frozen=True)
class CategoryInfo:
    """A category as the history remembers it (OAI-PMH sets outlive their entries)."""

    label: str
    notation: str


@dataclass(frozen=True)
class Since:
    """Since when what pages show besides the entries' own triples has been as it is (build
    times): the base IRI and the library's title, each as (value, time); the library's
    members (the last entry created, deleted or back) and its categories (the last one that
    came or went); each category's label (with its notation) and its members (the last entry
    that joined or left it). Read back from a history written before these were kept, a
    time is at most the state's last change: never earlier than the change it stands for."""

    base: tuple[str, str]
    title: tuple[str, str]
    library: str  # time an entry last joined or left the library
    categories: str  # time a category last came or went
    labels: dict[str, str]  # concept IRI -> time its label or notation last changed
    members: dict[str, str]  # concept IRI -> time an entry last joined or left it


def _since(
    old: State | None,
    converted: Converted,
    time: str,
    moved: Collection[str],
    changes: Sequence[tuple[str, Kind, str]],
    frame: str,
) -> Since:
    """What a build at time records in Since, from the previous state and what it changed:
    moved, the concepts an entry joined or left (created, deleted, back, recategorized);
    changes, its (IRI, kind, title) changes; frame, its _frame digest."""
    current = converted.categories
    if old is None:
        every = dict.fromkeys(current, time)
        title, base = (converted.title, time), (converted.iris.base, time)
        return Since(base, title, time, time, every, dict(every))
    prior = old.since
    # Not kept yet: what did not change now last changed when the state last did. The title
    # and the categories are in the frame; a new base changes every entry's IRI.
    framed = old.frame != frame
    title = _kept(prior.title if prior else None, converted.title, time, framed, old)
    base = _kept(prior.base if prior else None, converted.iris.base, time, bool(changes), old)
    # Entries created, deleted or back change the library's members; updates do not.
    if any(kind != "update" for _, kind, _ in changes):
        library = time
    else:
        library = prior.library if prior else old.changed
    if prior is None:
        categories = time if framed else old.changed
    else:
        categories = time if set(prior.labels) != current.keys() else prior.categories
    labels: dict[str, str] = {}
    members: dict[str, str] = {}
    for iri, category in current.items():  # categories that are gone are left out
        seen = old.categories.get(iri)
        same = seen is not None and (seen.label, seen.notation) == (
            category.label,
            category.notation,
        )
        if prior is None:
            labels[iri] = old.changed if same else time
            members[iri] = time if iri in moved else old.changed
        else:  # a category not in prior is new or back: its time is now
            label, joined = prior.labels.get(iri, ""), prior.members.get(iri, "")
            labels[iri] = label if same and label else time
            members[iri] = joined if joined and iri not in moved else time
    return Since(base, title, library, categories, labels, members)


def _kept(
    prior: tuple[str, str] | None, value: str, time: str, maybe: bool, old: State
) -> tuple[str, str]:
    """(value, since when): the prior time while the value stays, else now; with no prior
    record, now when it may have changed now (maybe), else the state's last change."""
    if prior is not None:
        return prior if prior[0] == value else (value, time)
    return (value, time if maybe else old.changed)


def month_of(iri: str) -> str:
    """The month ('YYYY-MM') of an entry IRI (graph/iris.py entry/<YYYY-MM-DD-HHMM>-<slug>)."""
    return iri.rsplit("/", 1)[1][:7]


@dataclass(frozen=True)
class History:
    """The history after one build: the changes it made and every entry's state, by month of
    the entries' IRIs; the months this build did not touch are the previous release's."""

    time: str
    # the months this build wrote, IRI order each (on disk already when compute spilled them)
    months: Mapping[str, dict[str, EntryState]]
    categories: dict[str, CategoryInfo]  # concept IRI -> label and notation, IRI order
    changes: tuple[Change, ...]  # this build's changes, in seq order
    total: int  # changes in the whole history, this build's included
    state: str  # digest of everything harvesters see; equal digests mean nothing changed
    changed: str  # time of the last build that changed the state
    previous: Path | None = field(default=None, compare=False)
    visible: dict[str, str] = field(default_factory=dict)  # build time -> time it went live
    frame: str = ""  # digest of the title and the categories (see _frame)
    old: State | None = field(default=None, compare=False, repr=False)
    names: tuple[str, ...] = ()  # every month, in order
    issued: str = ""  # time of the first build of the publication
    since: Since | None = None

    @property
    def entries(self) -> dict[str, EntryState]:
        """Every entry's state, IRI order (reads the months this build did not write)."""
        out: dict[str, EntryState] = {}
        for name in self.names:
            rows = self.months.get(name)
            out.update(rows if rows is not None else self.old.month(name) if self.old else {})
        return out

    @property
    def modified(self) -> dict[str, str]:
        """IRI -> dcterms:modified of every published entry that was ever updated."""
        return {
            iri: s.modified
            for iri, s in self.entries.items()
            if s.modified is not None and s.deleted is None
        }


def fingerprints(triples: Sequence[Triple], entry_iris: Iterable[str]) -> dict[str, str]:
    """sha256 of each entry's own triples (sorted N-Triples lines), dcterms:modified left out.

    One N-Triples serialization of everything (Oxigraph, in Rust) then a split by subject:
    several times faster than formatting each triple from Python.
    """
    data = pyoxigraph.serialize(triples, format=pyoxigraph.RdfFormat.N_TRIPLES) or b""
    return fingerprints_of_ntriples(data, entry_iris)


def fingerprints_of_ntriples(data: bytes, entry_iris: Iterable[str]) -> dict[str, str]:
    """The fingerprints of the entries of a graph given as N-Triples (Converted.ntriples)."""
    lines: dict[bytes, list[bytes]] = {iri.encode("utf-8"): [] for iri in entry_iris}
    get = lines.get
    for line in data.split(b"\n"):
        if not line.startswith(b"<"):
            continue  # blank-node subjects and the last empty line
        end = line.find(b"> ")
        bucket = get(line[1:end])
        if bucket is not None and not line.startswith(_MODIFIED_NT, end + 2):
            bucket.append(line)
    return {
        iri.decode("utf-8"): hashlib.sha256(b"\n".join(sorted(found))).hexdigest()
        for iri, found in lines.items()
    }


@dataclass(frozen=True)
class Decisions:
    """The dcterms:modified of each entry of a build, decided against the previous state as
    compute will record it: an entry updated now gets the build's time, any other keeps what
    it had (convert puts it in the data before compute runs)."""

    time: str
    old: State | None

    def modified_of(self, iri: str, fingerprint: str) -> str | None:
        """The dcterms:modified of an entry with this fingerprint (convert.ModifiedOf)."""
        before = self._before(iri)
        if before is None:
            return None
        if before.deleted is None and before.fingerprint != fingerprint:
            return self.time
        return before.modified

    def is_published_as(self, iri: str, fingerprint: str) -> bool:
        """Whether the previous release published this entry with this fingerprint: then
        its triples are the same, dcterms:modified too (modified_of keeps it)."""
        before = self._before(iri)
        return before is not None and before.deleted is None and before.fingerprint == fingerprint

    def _before(self, iri: str) -> EntryState | None:
        """The entry's state in the previous release, if it had one."""
        if self.old is None:
            return None
        # Convert asks month by month: State.peek keeps the last month it read (keeping
        # every month read, as State.month does, held the states of the whole library once
        # a build rendered every month: 800 MB at 1M entries, a rebuild after an upgrade).
        return self.old.peek(month_of(iri)).get(iri)


def decide(previous: Path | None, stamp: datetime) -> Decisions:
    """The Decisions of a build at time stamp replacing the release previous."""
    return Decisions(format_time(stamp), read_state(previous) if previous is not None else None)


def compute(
    previous: Path | None,
    converted: Converted,
    stamp: datetime,
    prints: Mapping[str, str] | None = None,
    changed: Collection[str] | None = None,
    old: State | None = None,
    spill: Path | None = None,
) -> History:
    """Compare the new entries with the previous release's, entry by entry, at build time stamp.

    previous is the release the build replaces (None for a first build, or one built before
    histories existed: then every entry is created now). An incremental build passes the
    fingerprints of what it rebuilt (prints) and says which entries those are (changed): any
    other entry the previous release published keeps its fingerprint, and only the months of
    changed entries (and months that have no entry left) are compared and written again.
    Without them every entry is fingerprinted from converted.ntriples. old is the previous
    release's state when the caller has read it (Decisions.old). spill: the folder of the
    release being built, into which each month's states are written as soon as they are
    known (entries/<month>.json, as write would) and read back when asked for: a build holds
    one month of states at a time, not a million (1.3 GB at 1M entries).
    """
    time = format_time(stamp)
    if old is None and previous is not None:
        old = read_state(previous)
    categories: dict[str, CategoryInfo] = dict(old.categories) if old else {}
    for iri, category in converted.categories.items():
        categories[iri] = CategoryInfo(category.label, category.notation)
    by_label = {c.label: iri for iri, c in converted.categories.items()}
    new_months = {m.name: m.iris for m in converted.months}
    old_months = set(old.names) if old else set()
    if changed is None or old is None:
        touched = new_months.keys() | old_months
    else:
        touched = {month_of(iri) for iri in changed} | (old_months - new_months.keys())
    known = dict(prints or {})
    missing = []
    for name in touched:
        rows: Mapping[str, EntryState] | None = None  # read only for an entry not known
        for iri in new_months.get(name, ()):
            if iri in known:
                continue
            if rows is None:
                rows = _month_rows(old, name, spill is not None)
            before = rows.get(iri)
            if changed is not None and iri not in changed and before and before.deleted is None:
                known[iri] = before.fingerprint
            else:
                missing.append(iri)
    if missing:
        known.update(fingerprints_of_ntriples(converted.ntriples, missing))

    found: list[tuple[str, Kind, str]] = []
    moved: set[str] = set()  # concepts an entry joined or left
    months: dict[str, dict[str, EntryState]] = {}
    spilled = _Spilled(spill / MONTHS) if spill is not None else None
    for name in sorted(touched):
        states = dict(_month_rows(old, name, spilled is not None))
        current = new_months.get(name, ())
        added = False
        for iri in current:
            fingerprint = known[iri]
            before = states.get(iri)
            if before is not None and before.deleted is None and before.fingerprint == fingerprint:
                continue  # unchanged: same triples, so same title and categories
            entry = converted.entries[iri]
            cats = tuple(sorted(by_label[label] for label in entry.categories))
            kind: Kind
            if before is None:
                kind, published, modified = "create", time, None
                added = True
                moved.update(cats)
            elif before.deleted is not None:  # it comes back
                kind, published, modified = "create", before.published, before.modified
                moved.update(cats)
            else:
                kind, published, modified = "update", before.published, time
                moved.update(set(cats) ^ set(before.categories))
            states[iri] = EntryState(
                fingerprint, entry.title, cats, format_created(entry), published, time, modified
            )
            found.append((iri, kind, entry.title))
        live = set(current)
        for iri in sorted(states.keys() - live):
            before = states[iri]
            if before.deleted is None:
                states[iri] = before._replace(deleted=time, datestamp=time)
                found.append((iri, "delete", before.title))
                moved.update(before.categories)
        states = dict(sorted(states.items())) if added else states  # IRI order kept
        if spilled is not None:
            spilled.put(name, states)
        else:
            months[name] = states

    start = old.total if old else 0
    changes = tuple(
        Change(start + n, time, kind, iri, title)
        for n, (iri, kind, title) in enumerate(sorted(found), start=1)
    )
    categories = dict(sorted(categories.items()))
    frame = _frame(converted, categories)
    if old is not None and not changes and old.frame == frame:
        state = old.state
    else:  # a digest of the previous state and what changed: O(changes), not O(entries)
        h = hashlib.sha256(f"{old.state if old else ''}\n{frame}\n".encode())
        for c in changes:
            h.update(f"{c.seq} {c.kind} {c.iri} {known.get(c.iri, '')}\n".encode())
        state = h.hexdigest()
    changed_at = time if old is None or old.state != state else old.changed
    visible = dict(old.visible) if old else {}
    if old is not None and previous is not None:
        live_at = went_live(previous)
        if live_at is not None and live_at > old.built:
            visible[old.built] = live_at
    return History(
        time,
        spilled if spilled is not None else months,
        categories,
        changes,
        start + len(changes),
        state,
        changed_at,
        previous,
        visible,
        frame,
        old,
        tuple(sorted(old_months | new_months.keys())),
        old.issued if old is not None and old.issued else time,
        _since(old, converted, time, moved, found, frame),
    )


def went_live(release: Path) -> str | None:
    """When a release became visible to every server worker: the swap of `current` to it
    (the symlink's mtime), plus VISIBILITY_MARGIN, rounded up to the second; None when
    `current` does not point at it."""
    link = release.parent.parent / CURRENT
    try:
        if (link.parent / os.readlink(link)).resolve() != release.resolve():
            return None
        swapped = os.lstat(link).st_mtime
    except OSError:
        return None
    return format_time(datetime.fromtimestamp(math.ceil(swapped) + VISIBILITY_MARGIN, UTC))


def _frame(converted: Converted, categories: Mapping[str, CategoryInfo]) -> str:
    """A digest of what harvesters see besides the entries: the title and the categories."""
    known = sorted((iri, c.label, c.notation) for iri, c in categories.items())
    text = json.dumps([converted.title, known, sorted(converted.categories)], ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def write(history: History, release: Path) -> None:
    """Write history.jsonl (carried forward, then appended) and entries.json into a release."""
    _write_changes(history, release)
    folder = release / MONTHS
    folder.mkdir(exist_ok=True)
    spilled = history.months if isinstance(history.months, _Spilled) else None
    for name in history.names:
        target = folder / f"{name}.json"
        if spilled is not None and name in spilled:
            if spilled.folder.resolve() != folder.resolve():
                shutil.copyfile(spilled.folder / target.name, target)
            continue  # written by compute already
        rows = history.months.get(name)
        if rows is None and history.old is not None and history.old.release is not None:
            kept = history.old.release / MONTHS / target.name
            try:  # releases never change once written: the previous one's file is shared
                os.link(kept, target)
                continue
            except OSError:
                rows = history.old.month(name)
        _write_month(target, rows or {})
    doc: dict[str, Any] = {
        "version": VERSION,
        "built": history.time,
        "state": history.state,
        "changed": history.changed,
        "issued": history.issued,
        "changes": history.total,
        "visible": history.visible,
        "frame": history.frame,
        "categories": {iri: asdict(c) for iri, c in history.categories.items()},
        "fields": list(EntryState._fields),
        "months": list(history.names),  # each in entries/<month>.json: IRI -> row ("fields")
    }
    if history.since is not None:
        doc["since"] = asdict(history.since)
    text = json.dumps(doc, ensure_ascii=False, separators=(",", ":"))
    (release / ENTRIES).write_text(text + "\n", encoding="utf-8")


# history.jsonl is a file of parts (graph/parts.py, in the release's parts/): the previous
# release's parts hard-linked, then this build's changes as one more. Copying the whole file
# was 1.6 s of every rebuild at 1M entries (241 MB), and it grows with every build. Past
# HISTORY_PARTS parts, the whole is written again as one.
HISTORY_PARTS = 64
CHANGES_BYTES = 32 << 20  # at most about this many bytes of a build's changes in one part


def change_line(change: Change) -> str:
    """A change as its line of history.jsonl (without the newline): what
    json.dumps(change._asdict(), ensure_ascii=False) gives, a sixth of its time (a full
    build writes a line per entry)."""
    text = encode_basestring
    return (
        f'{{"seq": {int(change.seq)}, "time": {text(change.time)}, "kind": {text(change.kind)}, '
        f'"iri": {text(change.iri)}, "title": {text(change.title)}}}'
    )


def _write_changes(history: History, release: Path) -> None:
    target = release / HISTORY
    previous = history.previous if history.total > len(history.changes) else None
    writer = parts.Writer(target, previous)
    if previous is not None:
        _carry(writer, previous / HISTORY)
    # In parts of about CHANGES_BYTES: a full build's million changes (241 MB of lines) made
    # at once held their strings, the joined text and its bytes: +530 MB, the build's peak.
    lines = bytearray()
    for change in history.changes:
        lines += change_line(change).encode("utf-8")
        lines += b"\n"
        if len(lines) >= CHANGES_BYTES:
            writer.write(bytes(lines))
            lines.clear()
    writer.write(bytes(lines))
    writer.finish()


def _carry(writer: parts.Writer, source: Path) -> None:
    """The previous release's history as the first parts: its parts linked (a plain file, or
    more than HISTORY_PARTS parts: written as one); nothing when it has none."""
    try:
        listed = parts.read_parts(source) if parts.is_parts(source) else None
        if listed is not None and len(listed) < HISTORY_PARTS:
            for part in listed:
                if writer.link(source.parent, part) is None:
                    raise OSError(f"{source}: a part is missing or damaged: {part.name}")
            return
        if listed is None and not source.is_file():
            return  # a release without a history: it starts here
        writer.write(parts.read_bytes(source))
    except (OSError, ValueError) as exc:
        raise PublicationError(f"{source}: cannot carry the history forward: {exc}") from exc


def _write_month(path: Path, rows: Mapping[str, EntryState]) -> None:
    """Write one month's states (entries/<month>.json)."""
    # json.dumps in one go uses the C encoder; json.dump to a file does not.
    text = json.dumps({"entries": rows}, ensure_ascii=False, separators=(",", ":"))
    path.write_text(text + "\n", encoding="utf-8")


def _month_rows(old: State | None, name: str, passing: bool) -> Mapping[str, EntryState]:
    """The previous states of one month: kept in old, or only read (passing) when every
    month is visited once."""
    if old is None:
        return {}
    return old.peek(name) if passing else old.month(name)


class _Spilled(Mapping[str, dict[str, EntryState]]):
    """The months compute wrote into a release being built, each read back from its file
    when asked for (History.months of a build: one month in memory at a time)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._names: list[str] = []  # in the order written (sorted)
        self._known: set[str] = set()
        folder.mkdir(parents=True, exist_ok=True)

    def put(self, name: str, rows: Mapping[str, EntryState]) -> None:
        _write_month(self.folder / f"{name}.json", rows)
        self._names.append(name)
        self._known.add(name)

    def __getitem__(self, name: str) -> dict[str, EntryState]:
        if name not in self._known:
            raise KeyError(name)
        path = self.folder / f"{name}.json"
        return _rows(_read_json(path)["entries"], path)

    def __contains__(self, name: object) -> bool:
        return name in self._known

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


@dataclass
class State:
    """entries.json as read back: the digest, the categories, and every entry's state by
    month of its IRI, each month read from its file when first asked for."""

    built: str
    categories: dict[str, CategoryInfo]
    total: int
    state: str
    changed: str
    visible: dict[str, str] = field(default_factory=dict)
    frame: str = ""
    names: tuple[str, ...] = ()  # the months, in order
    issued: str = ""  # time of the first build ("" in version 2: unknown)
    release: Path | None = None  # where the months' files are (None: all in _months)
    since: Since | None = None  # None when written before it was kept
    _months: dict[str, dict[str, EntryState]] = field(default_factory=dict, repr=False)
    _peeked: tuple[str, Mapping[str, EntryState]] | None = field(
        default=None, repr=False, compare=False
    )

    def month(self, name: str) -> dict[str, EntryState]:
        """The states of the entries of one month ({} for a month it has none of)."""
        rows = self._months.get(name)
        if rows is None:
            rows = {}
            if self.release is not None and name in self.names:
                path = self.release / MONTHS / f"{name}.json"
                rows = _rows(_read_json(path)["entries"], path)
            self._months[name] = rows
        return rows

    @property
    def entries(self) -> dict[str, EntryState]:
        """Every entry's state, IRI order."""
        out: dict[str, EntryState] = {}
        for name in self.names:
            out.update(self.month(name))
        return out

    def peek(self, name: str) -> Mapping[str, EntryState]:
        """The states of one month, not kept among the months (a pass over every month);
        only the last one peeked is, for the next question about it: a rebuild asks about
        its changed month while rendering it (Decisions), validating it and comparing it
        (compute), and read it each time (0.1 s a time for 9,300 entries at 1M)."""
        rows = self._months.get(name)
        if rows is not None:
            return rows
        # Asked once an entry (Decisions): the last month first, before a scan of the names.
        if self._peeked is not None and self._peeked[0] == name:
            return self._peeked[1]
        if self.release is None or name not in self.names:
            return {}
        path = self.release / MONTHS / f"{name}.json"
        found = _rows(_read_json(path)["entries"], path)
        self._peeked = (name, found)
        return found


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_bytes())
    except OSError as exc:
        raise PublicationError(f"{path}: cannot read: {exc.strerror}") from exc
    except ValueError as exc:
        raise PublicationError(f"{path}: not a kgpub entries file: {exc}") from exc


def _rows(entries: dict[str, list[Any]], path: Path) -> dict[str, EntryState]:
    try:
        return {
            iri: EntryState(fp, title, tuple(cats), *rest)
            for iri, (fp, title, cats, *rest) in entries.items()
        }
    except (ValueError, TypeError) as exc:
        raise PublicationError(f"{path}: not a kgpub entries file: {exc}") from exc


def read_state(release: Path) -> State | None:
    """The entries.json of a release, or None when it has none (built before histories).
    Version 2 kept every entry in it; version 3 keeps them by month in entries/."""
    path = release / ENTRIES
    if not path.exists():
        return None
    doc = _read_json(path)
    try:
        if doc.get("version") not in (2, VERSION):
            raise PublicationError(f"{path}: unknown version {doc.get('version')!r}")
        if doc["fields"] != list(EntryState._fields):
            raise PublicationError(f"{path}: unknown entry fields {doc['fields']!r}")
        categories = {
            iri: CategoryInfo(c["label"], c["notation"]) for iri, c in doc["categories"].items()
        }
        state = State(
            doc["built"],
            categories,
            int(doc["changes"]),
            doc["state"],
            doc["changed"],
            dict(doc.get("visible", {})),
            doc.get("frame", ""),
        )
        state.issued = doc.get("issued", "")
        if "since" in doc:
            since = doc["since"]
            state.since = Since(
                (since["base"][0], since["base"][1]),
                (since["title"][0], since["title"][1]),
                since["library"],
                since["categories"],
                dict(since["labels"]),
                dict(since["members"]),
            )
        if "months" in doc:
            state.names = tuple(doc["months"])
            state.release = release
        else:  # version 2
            months: dict[str, dict[str, EntryState]] = {}
            for iri, row in _rows(doc["entries"], path).items():
                months.setdefault(month_of(iri), {})[iri] = row
            state.names = tuple(sorted(months))
            state._months = months
            published = (s.published for rows in months.values() for s in rows.values())
            state.issued = min(published, default="")
        return state
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise PublicationError(f"{path}: not a kgpub entries file: {exc}") from exc


def read_changes(release: Path) -> list[Change]:
    """Every change in a release's history.jsonl, oldest first."""
    path = release / HISTORY
    try:
        with parts.open_text(path) as f:
            return [Change(**json.loads(line)) for line in f if line.strip()]
    except FileNotFoundError:
        return []
    except (OSError, ValueError, TypeError) as exc:
        raise PublicationError(f"{path}: cannot read the history: {exc}") from exc


class Window(NamedTuple):
    """One page of a list of entries in IRI order: its members, the list's length, and
    whether the list goes on before and after the page."""

    members: list[str]
    total: int
    has_previous: bool
    has_next: bool


class Selection(NamedTuple):
    """One page of an OAI-PMH selection in identifier order: its records, how many records
    the whole selection has, how many come before the page, whether any come after it."""

    records: list[tuple[str, EntryState]]
    complete: int
    before: int
    more: bool


class View:
    """What the server asks of one release's history, whichever way it is read: from the
    release's index a page at a time (graph/ledger.py Ledger, what serving uses), or from
    the history's own files all at once (Index, for releases built before the index carried
    the history). Subclasses give the header (a State) and the lookups; the times of pages
    are worked out here, once, for both.

    A page's time is the newest of the times of what it shows. Without Since (a history
    written before it was kept) the state's last change stands for each of them."""

    release: Path
    present: bool
    built: str
    categories: dict[str, CategoryInfo]
    total: int
    state: str
    changed: str
    visible: dict[str, str]
    since: Since | None

    def _header(self, release: Path, state: State | None) -> None:
        self.release = release
        self.present = state is not None
        if state is None:
            state = State("", {}, 0, "", "")
        self.built = state.built
        self.categories = state.categories
        self.total = state.total
        self.state = state.state
        self.changed = state.changed
        self.visible = dict(state.visible)
        live = went_live(release)
        if live is not None and live > self.built:
            self.visible[self.built] = live
        self.since = state.since

    # --- lookups (each subclass) ---------------------------------------------------------------

    def entry(self, iri: str) -> EntryState | None:
        """The state of an entry the history knows (published or deleted), else None."""
        raise NotImplementedError

    def entries_of(self, iris: Iterable[str]) -> dict[str, EntryState]:
        """The states of these entries (those the history knows), by IRI."""
        found = ((iri, self.entry(iri)) for iri in iris)
        return {iri: s for iri, s in found if s is not None}

    def titled_of(self, iris: Iterable[str]) -> dict[str, str]:
        """Entry IRI -> time it got its current title, for these entries."""
        raise NotImplementedError

    def change_count(self) -> int:
        """How many changes the history holds."""
        raise NotImplementedError

    def changes_between(self, start: int, stop: int) -> list[Change]:
        """The changes at positions start to stop (0-based, stop excluded), oldest first."""
        raise NotImplementedError

    def window(
        self,
        category: str | None,
        size: int,
        after: str | None = None,
        before: str | None = None,
        last: bool = False,
    ) -> Window:
        """A page of the published entries (all, or one concept's) in IRI order: the first
        size after an IRI, the last size before one, the last page, or the first."""
        raise NotImplementedError

    def newest_members(self, category: str, size: int) -> list[str]:
        """The newest size published entries of a concept, in IRI order."""
        raise NotImplementedError

    def select(self, start: str, end: str, concept: str | None, after: str, size: int) -> Selection:
        """One page of OAI-PMH records: those whose datestamp is within start and end (the
        seconds form, '' for open) and in concept (None: any), the first size after the
        identifier after ('' for the start)."""
        raise NotImplementedError

    def live_newest(self, offset: int = 0) -> Iterator[tuple[str, str]]:
        """(IRI, entry_changed) of every published entry, newest first, from the offset-th
        on (sitemaps)."""
        raise NotImplementedError

    @property
    def earliest(self) -> str:
        """The earliest datestamp (OAI-PMH Identify), or the build time of an empty history."""
        raise NotImplementedError

    # --- shared ---------------------------------------------------------------------------------

    def tombstone(self, iri: str) -> EntryState | None:
        """The state of an entry that was published and is deleted now, else None."""
        s = self.entry(iri)
        return s if s is not None and s.deleted is not None else None

    def datestamp(self, state: EntryState) -> str:
        """An entry's OAI-PMH datestamp: when its last change went live (see the docstring)."""
        return self.visible.get(state.datestamp, state.datestamp)

    def concept_of_set(self, set_spec: str) -> str | None:
        """The concept IRI whose notation is set_spec (OAI-PMH setSpec), or None."""
        return next((iri for iri, c in self.categories.items() if c.notation == set_spec), None)

    @property
    def title_changed(self) -> str:
        """When the library's title (shown on every page) last changed."""
        return self.since.title[1] if self.since else self.changed

    @property
    def base_changed(self) -> str:
        """When the base IRI last changed."""
        return self.since.base[1] if self.since else self.changed

    def label_changed(self, concept: str) -> str:
        """When a category's label last changed."""
        return self.since.labels.get(concept, self.changed) if self.since else self.changed

    def members_changed(self, concept: str | None) -> str:
        """When an entry last joined or left a category, or (None) the library."""
        if self.since is None:
            return self.changed
        if concept is None:
            return self.since.library
        return self.since.members.get(concept, self.changed)

    @property
    def categories_changed(self) -> str:
        """When a category last came or went."""
        return self.since.categories if self.since else self.changed

    def state_changed(self, s: EntryState) -> str:
        """When the page of an entry in state s last changed: its own triples, its
        categories' labels, the library's title."""
        return max(s.datestamp, self.title_changed, *(self.label_changed(c) for c in s.categories))

    def entry_changed(self, iri: str) -> str:
        """When an entry's page last changed ('' for an IRI the history does not know)."""
        s = self.entry(iri)
        return "" if s is None else self.state_changed(s)

    def list_changed(self, concept: str | None, shown: Iterable[str]) -> str:
        """When a page of a category's entries (or of the library's, concept None) last
        changed: the label (the library's description counts categories instead), the title,
        who the members are (their count, which page each is on), and the titles of the
        members it shows (their Added times are in their IRIs)."""
        shown = list(shown)
        titled = self.titled_of(shown)
        times = [self.title_changed, self.members_changed(concept)]
        if concept is not None:
            times.append(self.label_changed(concept))
        else:
            times.append(self.categories_changed)
        times += (titled.get(iri, self.changed) for iri in shown)
        return max(times)

    def scheme_changed(self, counts: bool) -> str:
        """When the scheme's page last changed: the title, which categories there are and
        their labels; with counts (its HTML), how many entries each has."""
        since = self.since
        if since is None:
            return self.changed
        labels = since.labels.values()
        members = since.members.values() if counts else ()
        return max(self.title_changed, since.categories, *labels, *members)


class Index(View):
    """A release's history read from its files, all of it at once, once per process and
    release: the reference the index-backed Ledger is tested against, and what serves a
    release whose index does not carry the history."""

    def __init__(self, release: Path) -> None:
        state = read_state(release)
        self._header(release, state)
        self.entries = state.entries if state is not None else {}
        self.live: list[str] = [iri for iri, s in self.entries.items() if s.deleted is None]
        self._members: dict[str, list[str]] | None = None
        self._changes: list[Change] | None = None
        self._memo: dict[Hashable, Any] = {}

    def memo(self, key: Hashable, compute: Callable[[], T]) -> T:
        """compute() once per key for this (immutable) release; the last MEMO_SIZE kept."""
        if key in self._memo:
            found: T = self._memo[key]
            return found
        value = compute()
        if len(self._memo) >= MEMO_SIZE:
            self._memo.pop(next(iter(self._memo)))
        self._memo[key] = value
        return value

    @property
    def changes(self) -> list[Change]:
        """The whole history, oldest first (read on first use)."""
        if self._changes is None:
            self._changes = read_changes(self.release)
        return self._changes

    def members(self, category: str | None = None) -> list[str]:
        """Published entries in IRI order: all, or those of one concept IRI."""
        if category is None:
            return self.live
        if self._members is None:  # every concept's in one pass
            by_concept: dict[str, list[str]] = {}
            for iri in self.live:
                for concept in self.entries[iri].categories:
                    by_concept.setdefault(concept, []).append(iri)
            self._members = by_concept
        return self._members.get(category, [])

    def entry(self, iri: str) -> EntryState | None:
        return self.entries.get(iri)

    @functools.cached_property
    def titled(self) -> dict[str, str]:
        """Entry IRI -> time it got its current title (created, or an update that changed it),
        from history.jsonl: read once per release, and only for lists of entries."""
        last: dict[str, tuple[str, str]] = {}
        for c in self.changes:
            seen = last.get(c.iri)
            if seen is None or seen[0] != c.title:
                last[c.iri] = (c.title, c.time)
        return {iri: time for iri, (_, time) in last.items()}

    def titled_of(self, iris: Iterable[str]) -> dict[str, str]:
        titled = self.titled
        return {iri: titled[iri] for iri in iris if iri in titled}

    def change_count(self) -> int:
        return len(self.changes)

    def changes_between(self, start: int, stop: int) -> list[Change]:
        return self.changes[start:stop]

    def window(
        self,
        category: str | None,
        size: int,
        after: str | None = None,
        before: str | None = None,
        last: bool = False,
    ) -> Window:
        members = self.members(category)
        if after is not None:
            start = bisect.bisect_right(members, after)
            chosen = members[start : start + size]
        elif before is not None:
            end = bisect.bisect_left(members, before)
            start = max(0, end - size)
            chosen = members[start:end]
        elif last:
            start = max(0, len(members) - size)
            chosen = members[start:]
        else:
            start = 0
            chosen = members[:size]
        end = start + len(chosen)
        if not chosen:  # a page with no members links nowhere
            return Window([], len(members), False, False)
        return Window(chosen, len(members), start > 0, end < len(members))

    def newest_members(self, category: str, size: int) -> list[str]:
        return self.members(category)[-size:] if size else list(self.members(category))

    def select(self, start: str, end: str, concept: str | None, after: str, size: int) -> Selection:
        def matching() -> list[str]:
            out = []
            for iri, state in self.entries.items():
                datestamp = self.datestamp(state)
                if start and datestamp < start:
                    continue
                if end and datestamp > end:
                    continue
                if concept is not None and concept not in state.categories:
                    continue
                out.append(iri)
            return out

        found = self.memo(("oai", start, end, concept), matching)
        sent = bisect.bisect_right(found, after) if after else 0
        page = found[sent : sent + size]
        more = bool(page) and page[-1] != found[-1]
        return Selection([(iri, self.entries[iri]) for iri in page], len(found), sent, more)

    def live_newest(self, offset: int = 0) -> Iterator[tuple[str, str]]:
        for iri in itertools.islice(reversed(self.live), offset, None):
            yield iri, self.state_changed(self.entries[iri])

    @functools.cached_property
    def earliest(self) -> str:
        return min((self.datestamp(s) for s in self.entries.values()), default=self.built)


@functools.lru_cache(maxsize=2)  # the current release and the one before
def _load(release: str) -> View:
    # Imported here: graph/ledger.py reads the index with this module's records.
    from graph.ledger import open_ledger

    path = Path(release)
    ledger = open_ledger(path)
    return ledger if ledger is not None else Index(path)


def load(release: Path) -> View:
    """The history of a release as serving reads it: from the release's index when it
    carries the history (a page at a time, nothing held per process but its header), else
    from its files (releases are immutable: cached per process)."""
    return _load(str(release))


def raise_if_deleted(release: Path, iri: str) -> None:
    """Raise EntryGone when iri names an entry this publication has removed (HTTP 410)."""
    s = load(release).tombstone(iri)
    if s is not None and s.deleted is not None:
        raise EntryGone(iri, s.title, s.deleted)


def lastmod(release: Path, page_size: int | None = None) -> dict[str, str]:
    """IRI -> time of the last change of its page, for sitemaps: each published entry
    (entry_changed) and category with entries (list_changed of its first page: its newest
    page_size entries, or all of them); the library itself is under the key '' (the last
    change of the whole publication). Holds every entry: for tests and small libraries
    (serving streams graph/sitemap.py instead)."""
    index = load(release)
    out = dict(index.live_newest())
    for concept in index.categories:
        shown = index.newest_members(concept, page_size or 0)
        if shown:
            out[concept] = index.list_changed(concept, shown)
    out[""] = index.changed
    return out
