"""The history of a publication: what each build created, updated and deleted, entry by entry.

Each build compares its entries with those of the current release by fingerprint (sha256 of
the entry's own triples as sorted N-Triples lines, dcterms:modified left out) and writes
into the release it builds (so a failed build leaves the history untouched):

  history.jsonl   every change ever published, oldest first, one JSON object a line:
                  {"seq", "time", "kind": "create"|"update"|"delete", "iri", "title"};
                  the previous release's file carried forward, this build's changes appended
  entries.json    the categories ever seen; a digest of the state (chained from the
                  previous one and the changes) and the time it last changed; the months
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

A build's time comes before its release goes live (the swap of `current`, and up to a second
more until every server worker has looked at it: server/current.py). OAI-PMH datestamps must
not be earlier than the moment a harvester could see the change, or one that harvested in
between would skip it for ever; so entries.json also maps each build time to the time its
release went live (`visible`), read from the mtime of the `current` symlink by the next build,
and by the server for the build it is serving.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import shutil
from collections.abc import Callable, Collection, Hashable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, NamedTuple, TypeVar

import pyoxigraph
from pyoxigraph import Triple

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


def month_of(iri: str) -> str:
    """The month ('YYYY-MM') of an entry IRI (graph/iris.py entry/<YYYY-MM-DD-HHMM>-<slug>)."""
    return iri.rsplit("/", 1)[1][:7]


@dataclass(frozen=True)
class History:
    """The history after one build: the changes it made and every entry's state, by month of
    the entries' IRIs; the months this build did not touch are the previous release's."""

    time: str
    months: dict[str, dict[str, EntryState]]  # the months this build wrote, IRI order each
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
        before = self.old.month(month_of(iri)).get(iri) if self.old is not None else None
        if before is None:
            return None
        if before.deleted is None and before.fingerprint != fingerprint:
            return self.time
        return before.modified


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
) -> History:
    """Compare the new entries with the previous release's, entry by entry, at build time stamp.

    previous is the release the build replaces (None for a first build, or one built before
    histories existed: then every entry is created now). An incremental build passes the
    fingerprints of what it rebuilt (prints) and says which entries those are (changed): any
    other entry the previous release published keeps its fingerprint, and only the months of
    changed entries (and months that have no entry left) are compared and written again.
    Without them every entry is fingerprinted from converted.ntriples. old is the previous
    release's state when the caller has read it (Decisions.old).
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
        rows = old.month(name) if old else {}
        for iri in new_months.get(name, ()):
            before = rows.get(iri)
            if iri in known:
                continue
            if changed is not None and iri not in changed and before and before.deleted is None:
                known[iri] = before.fingerprint
            else:
                missing.append(iri)
    if missing:
        known.update(fingerprints_of_ntriples(converted.ntriples, missing))

    found: list[tuple[str, Kind, str]] = []
    months: dict[str, dict[str, EntryState]] = {}
    for name in sorted(touched):
        rows = old.month(name) if old else {}
        states = dict(rows)
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
            elif before.deleted is not None:  # it comes back
                kind, published, modified = "create", before.published, before.modified
            else:
                kind, published, modified = "update", before.published, time
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
        months[name] = dict(sorted(states.items())) if added else states  # IRI order kept

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
        months,
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
    target = release / HISTORY
    source = history.previous / HISTORY if history.previous is not None else None
    if source is not None and source.is_file() and history.total > len(history.changes):
        shutil.copyfile(source, target)
    else:
        target.write_bytes(b"")
    with target.open("a", encoding="utf-8") as out:
        out.write(
            "".join(json.dumps(c._asdict(), ensure_ascii=False) + "\n" for c in history.changes)
        )
    folder = release / MONTHS
    folder.mkdir(exist_ok=True)
    for name in history.names:
        target = folder / f"{name}.json"
        rows = history.months.get(name)
        if rows is None and history.old is not None and history.old.release is not None:
            kept = history.old.release / MONTHS / target.name
            try:  # releases never change once written: the previous one's file is shared
                os.link(kept, target)
                continue
            except OSError:
                rows = history.old.month(name)
        # json.dumps in one go uses the C encoder; json.dump to a file does not.
        text = json.dumps({"entries": rows or {}}, ensure_ascii=False, separators=(",", ":"))
        target.write_text(text + "\n", encoding="utf-8")
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
    text = json.dumps(doc, ensure_ascii=False, separators=(",", ":"))
    (release / ENTRIES).write_text(text + "\n", encoding="utf-8")


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
    _months: dict[str, dict[str, EntryState]] = field(default_factory=dict, repr=False)

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
        with path.open(encoding="utf-8") as f:
            return [Change(**json.loads(line)) for line in f if line.strip()]
    except FileNotFoundError:
        return []
    except (OSError, ValueError, TypeError) as exc:
        raise PublicationError(f"{path}: cannot read the history: {exc}") from exc


class Index:
    """What the server needs of one release's history, read once per process and release."""

    def __init__(self, release: Path) -> None:
        self.release = release
        state = read_state(release)
        self.present = state is not None
        if state is None:
            state = State("", {}, 0, "", "")
        self.built = state.built
        self.entries = state.entries
        self.categories = state.categories
        self.total = state.total
        self.state = state.state
        self.changed = state.changed
        self.visible = dict(state.visible)
        live = went_live(release)
        if live is not None and live > self.built:
            self.visible[self.built] = live
        self.live: list[str] = [iri for iri, s in self.entries.items() if s.deleted is None]
        self._members: dict[str, list[str]] = {}
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
        if category not in self._members:
            self._members[category] = [
                iri for iri in self.live if category in self.entries[iri].categories
            ]
        return self._members[category]

    def tombstone(self, iri: str) -> EntryState | None:
        """The state of an entry that was published and is deleted now, else None."""
        s = self.entries.get(iri)
        return s if s is not None and s.deleted is not None else None

    def datestamp(self, state: EntryState) -> str:
        """An entry's OAI-PMH datestamp: when its last change went live (see the docstring)."""
        return self.visible.get(state.datestamp, state.datestamp)

    @functools.cached_property
    def earliest(self) -> str:
        """The earliest datestamp (OAI-PMH Identify), or the build time of an empty history."""
        return min((self.datestamp(s) for s in self.entries.values()), default=self.built)


@functools.lru_cache(maxsize=2)  # the current release and the one before
def _load(release: str) -> Index:
    return Index(Path(release))


def load(release: Path) -> Index:
    """The history index of a release (releases are immutable: cached per process)."""
    return _load(str(release))


def raise_if_deleted(release: Path, iri: str) -> None:
    """Raise EntryGone when iri names an entry this publication has removed (HTTP 410)."""
    s = load(release).tombstone(iri)
    if s is not None and s.deleted is not None:
        raise EntryGone(iri, s.title, s.deleted)


def lastmod(release: Path) -> dict[str, str]:
    """IRI -> time of its last change, for sitemaps: each published entry and category.

    A category's time is that of the last change to any of its entries (deletions included);
    the library itself is under the key '' (the last change of the whole publication).
    """
    index = load(release)
    out: dict[str, str] = {}
    for iri, s in index.entries.items():
        if s.deleted is None:
            out[iri] = s.datestamp
        for concept in s.categories:
            if concept not in out or out[concept] < s.datestamp:
                out[concept] = s.datestamp
    out[""] = index.changed
    return out
