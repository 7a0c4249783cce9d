"""The publication a worker serves: follows OUT/current, reopening when a build swaps it.

Each worker checks the `current` symlink at most once a second (one readlink). When it points
at a new release, requests that start afterwards see the new one; requests already running
keep the Release object they hold (its files stay on disk: builds keep the last releases).
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyoxigraph

from graph.errors import PublicationError
from graph.iris import Iris
from graph.publication import CURRENT, current_release, read_manifest

CHECK_INTERVAL = 1.0


@dataclass
class Release:
    """One immutable publication: its folder, manifest and (lazily) its read-only store."""

    path: Path
    manifest: dict[str, Any]
    _store: pyoxigraph.Store | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def id(self) -> str:
        return str(self.manifest["id"])

    @property
    def iris(self) -> Iris:
        return Iris(self.manifest["base"])

    @property
    def store_path(self) -> Path:
        return self.path / "store"

    @property
    def store(self) -> pyoxigraph.Store:
        """The release's Oxigraph store, opened read-only on first use in this process."""
        if self._store is None:
            with self._lock:
                if self._store is None:
                    try:
                        self._store = pyoxigraph.Store.read_only(str(self.store_path))
                    except OSError as exc:
                        raise PublicationError(f"{self.store_path}: cannot open: {exc}") from exc
        return self._store

    @property
    def built(self) -> str:
        return str(self.manifest["built"])


class Current:
    """Tracks OUT/current for one worker process."""

    def __init__(self, out: Path) -> None:
        self.out = out
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
                    release = Release(path, read_manifest(path))
                except PublicationError:
                    if self._release is not None and self._pid == os.getpid():
                        return self._release  # keep serving what we had
                    raise
                self._release, self._target, self._pid = release, target, os.getpid()
            return self._release
