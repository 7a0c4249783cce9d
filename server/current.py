"""The publication a worker serves: follows OUT/current, reopening when a build swaps it.

Each worker checks the `current` symlink at most once a second (one readlink). When it points
at a new release, requests that start afterwards see the new one; requests already running
keep the Release object they hold (its files stay on disk: builds keep the last releases).
A release also carries this process's bounded cache of what was computed from it (serialized
bodies, member lists, counts): releases are immutable, so nothing in it ever goes stale, and
a new release starts with an empty cache.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

from graph import parts
from graph.enrich.read import Enrichment
from graph.errors import PublicationError
from graph.index import FILE as INDEX_FILE
from graph.index import Index, open_index
from graph.iris import Iris
from graph.publication import CURRENT, current_release, read_manifest
from graph.publishers import Found, Published, Publisher
from graph.publishers import read_release as read_publishers
from graph.resources import ResourceKind
from graph.store import (
    EMBEDDED,
    Reader,
    Runner,
    StoreSettings,
    is_remote,
    open_reader,
    open_runner,
)

CHECK_INTERVAL = 1.0
DEFAULT_CACHE_BYTES = 64 << 20
T = TypeVar("T")


class LruCache:
    """A map bounded by the total size of its values, least recently used out first.

    Thread-safe (gthread workers serve several requests at once). Sizes are what the caller
    says: the length of a body, or an estimate for a list.
    """

    def __init__(self, max_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        self.max_bytes = max_bytes
        self.size = 0
        self._items: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: Hashable) -> Any:
        """The value under key, or None."""
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            self._items.move_to_end(key)
            return item[0]

    def put(self, key: Hashable, value: Any, size: int) -> None:
        """Keep value under key unless it alone exceeds the bound; evict the oldest to fit."""
        if size > self.max_bytes:
            return
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self.size -= old[1]
            self._items[key] = (value, size)
            self.size += size
            while self.size > self.max_bytes and self._items:
                _, (_, evicted) = self._items.popitem(last=False)
                self.size -= evicted

    def memo(self, key: Hashable, compute: Callable[[], tuple[T, int]]) -> T:
        """The cached value, or compute() -> (value, size), kept. Two threads may both compute
        a missing value once; both get a correct one."""
        found = self.get(key)
        if found is not None:
            return found  # type: ignore[no-any-return]
        value, size = compute()
        self.put(key, value, size)
        return value


@dataclass
class Release:
    """One immutable publication: its folder, manifest and (lazily) the reader of its graph."""

    path: Path
    manifest: dict[str, Any]
    cache: LruCache = field(default_factory=LruCache, repr=False)
    store: StoreSettings = field(default=EMBEDDED, repr=False)
    _reader: Reader | None = field(default=None, repr=False)
    _runner: Runner | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def id(self) -> str:
        return str(self.manifest["id"])

    @functools.cached_property
    def iris(self) -> Iris:
        return Iris(self.manifest["base"])

    @functools.cached_property
    def wsgi_prefix(self) -> str:
        """The base path without its final '/', as WSGI spells PATH_INFO (percent-decoded
        UTF-8 bytes read as Latin-1, PEP 3333): '' for a base at the root."""
        return unquote(self.base_path.rstrip("/")).encode("utf-8").decode("latin-1")

    @functools.cached_property
    def base_path(self) -> str:
        """The path of the base IRI ('/' or '/lib/'): where the publication's IRIs live."""
        return urlsplit(str(self.manifest["base"])).path or "/"

    @property
    def store_path(self) -> Path:
        return self.path / "store"

    @property
    def reader(self) -> Reader:
        """What serving asks of the release's graph (graph/store), opened on first use in
        this process."""
        if self._reader is None:
            with self._lock:
                if self._reader is None:
                    record = self.manifest.get("store") or {}
                    self._reader = open_reader(self.store, self.path, record, self.iris, self.index)
        return self._reader

    @functools.cached_property
    def index(self) -> Index | None:
        """The release's on-disk index of lists (graph/index.py); None for a release built
        before it existed (its lists then come from the graph, cached per worker)."""
        path = self.path / INDEX_FILE
        return open_index(path) if path.is_file() else None

    @functools.cached_property
    def enrichment(self) -> Enrichment | None:
        """The release's related entries and vectors (graph/enrich); None for a release
        built without enrichment."""
        return Enrichment.of(self.path)

    @functools.cached_property
    def publishers(self) -> Publishers | None:
        """The publishers named in the release's titles (graph/publishers.py); None for a
        release built before them."""
        if self.index is not None and self.index.has_publishers():
            return Publishers(self.index, None)
        published = read_publishers(self.path)
        return Publishers(None, published) if published is not None else None

    def members(self, iri: str, kind: ResourceKind) -> Sequence[str]:
        """A concept's entries or the library's, newest first: read from the index a page at
        a time, so a worker holds only what it shows."""
        if self.index is not None:
            return self.index.members(iri)
        found = self.reader.members
        return self.cache.memo(("members", iri), lambda: _sized(found(iri, kind)))

    def category_counts(self) -> Mapping[str, int]:
        """Entries per concept IRI."""
        if self.index is not None:
            return self.index.category_counts()
        return self.reader.category_counts()

    def concepts(self) -> list[str]:
        """The concept IRIs, sorted."""
        if self.index is not None:
            return self.index.concepts()
        return self.reader.concepts()

    @property
    def is_remote(self) -> bool:
        """Whether the release's graph is in a SPARQL server (not the folder's store)."""
        return is_remote(self.manifest.get("store") or {})

    def runner(self, timeout: float, concurrency: int) -> Runner:
        """The runner of untrusted queries on a remote release's graphs, made once."""
        if self._runner is None:
            with self._lock:
                if self._runner is None:
                    record = self.manifest.get("store") or {}
                    self._runner = open_runner(self.store, record, self.iris, timeout, concurrency)
        return self._runner

    @property
    def built(self) -> str:
        return str(self.manifest["built"])


class Publishers:
    """The publishers of a release as pages ask for them: from the index, the rows of the
    entry or publisher asked (graph/index.py); from publishers.json read whole for a release
    whose index lacks them (at 1M entries that file is 46 MB, 116 MiB and 0.6 s of CPU in
    each worker's first entry page)."""

    def __init__(self, index: Index | None, published: Published | None) -> None:
        self._index, self._published = index, published

    def found(self, pid: str) -> Found | None:
        """A publisher and its entries, newest first; None when the release names none."""
        if self._index is not None:
            row = self._index.publisher(pid)
            if row is None:
                return None
            name, sameas, entries = row
            return Found(Publisher(pid, name, (), sameas), entries)
        assert self._published is not None
        return self._published.publishers.get(pid)

    def of_entry(self, iri: str) -> list[tuple[str, str]]:
        """(id, name) of the publishers an entry's title names."""
        if self._index is not None:
            return self._index.publishers_of(iri)
        assert self._published is not None
        known = self._published.publishers
        return [(pid, known[pid].publisher.name) for pid in self._published.of_entry.get(iri, ())]


def _sized(items: list[str]) -> tuple[list[str], int]:
    return items, sum(len(i) + 56 for i in items) + 64


class Current:
    """Tracks OUT/current for one worker process."""

    def __init__(
        self,
        out: Path,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
        on_new: Callable[[Release], None] | None = None,
        store: StoreSettings = EMBEDDED,
    ) -> None:
        self.out = out
        self.store = store
        self.cache_bytes = cache_bytes
        self.on_new = on_new  # called (in the worker that sees it) for each release taken up
        self._release: Release | None = None
        self._target = ""
        self._checked = 0.0
        self._lock = threading.Lock()
        self._pid = os.getpid()

    def get(self) -> Release:
        """The current release; raises PublicationError when there is none."""
        now = time.monotonic()
        if (
            self._release is not None
            and now - self._checked < CHECK_INTERVAL
            and self._pid == os.getpid()
        ):
            return self._release
        with self._lock:
            self._checked = now
            try:
                target = os.readlink(self.out / CURRENT)
            except OSError:
                target = ""
            if self._release is None or target != self._target or self._pid != os.getpid():
                try:
                    path = current_release(self.out)
                    release = Release(
                        path, read_manifest(path), LruCache(self.cache_bytes), self.store
                    )
                except PublicationError:
                    if self._release is not None and self._pid == os.getpid():
                        return self._release  # keep serving what we had
                    raise
                self._release, self._target, self._pid = release, target, os.getpid()
                if self.on_new is not None:
                    self.on_new(release)
            return self._release


def check_publication(out: Path, store: StoreSettings = EMBEDDED) -> str:
    """What keeps the current publication from being served ('' when nothing does, or when
    there is none yet: then the server answers 503 until the first build). `kgpub serve`
    refuses to start on a damaged one rather than answer each visitor with an error."""
    if not (out / CURRENT).is_symlink():
        return ""
    try:
        path = current_release(out)
        manifest = read_manifest(path)
        dumps, record = manifest["dumps"], manifest.get("store") or {}
        base = str(manifest["base"])
    except (PublicationError, KeyError, TypeError) as exc:
        return f"the current release cannot be read: {exc}"
    for dump in dumps:
        file = path / "dumps" / str(dump["filename"])
        size = parts.size_of(file)  # a plain file's, or its parts' (graph/parts.py)
        if size < 0:
            return f"the dump {file} is missing (or a part of it, or cut short)"
        if size != dump["size"]:
            return f"the dump {file} is damaged ({size:,} bytes, not {dump['size']:,})"
    if is_remote(record):
        if not store.is_remote:
            return (
                f"its graph is in the SPARQL store {record.get('endpoint')}: serve it with --store"
            )
        return ""
    store_path = path / "store"
    if not store_path.is_dir():
        return f"the store {store_path} is missing"
    probe = subprocess.run(
        [sys.executable, "-m", "graph.store.embedded", str(store_path), Iris(base).library],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=Path(__file__).resolve().parent.parent,
    )
    if probe.returncode != 0:
        reason = (probe.stderr.strip().splitlines() or ["it cannot be read"])[-1]
        return f"{store_path}: {reason}"
    return ""
