"""Lookups asked at the same time by several threads, answered by one query.

A web worker's threads each describe a resource per page view. Against a SPARQL server a
description is one round trip, and the server's fixed cost per request (Virtuoso 7.2: its
/sparql handler and compiling a text it has not seen, about half of its CPU for an entry's
triples) is paid per description. Under load several threads of a worker wait on such a query
at once. A Coalescer lets one query at a time per worker run (QUERIES_AT_ONCE); the threads that
come while it runs queue their keys, and the next of them to find a place sends one query for
every key queued, up to `most`. With nothing running, a lookup is sent at once, alone: one
client alone waits for nothing more than before.

A query that fails for several keys is not charged to all of them: each of its threads asks its
own key again, alone, so one key the store refuses fails only its own request.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

# Queries of one Coalescer running at once (per web worker: each worker has its own). One
# keeps a two-core machine's store busiest per query; the second worker's query runs beside it.
QUERIES_AT_ONCE = 1


@dataclass(eq=False)
class _Wait(Generic[K, V]):
    key: K
    value: V | None = None
    error: BaseException | None = None
    alone: bool = False  # its batch failed: the key is asked again by itself
    done: bool = False


@dataclass(eq=False)
class Coalescer(Generic[K, V]):
    """fetch(keys) -> {key: value} for many keys; one(key) -> value for one. A key fetch leaves
    out of its answer gets `missing`."""

    fetch: Callable[[Sequence[K]], Mapping[K, V]]
    one: Callable[[K], V]
    missing: V
    most: int = 16
    at_once: int = QUERIES_AT_ONCE
    _cond: threading.Condition = field(default_factory=threading.Condition, repr=False)
    _queue: list[_Wait[K, V]] = field(default_factory=list, repr=False)
    _running: int = 0
    queries: int = 0  # sent so far (batches and keys asked alone): what the tests count

    @property
    def queued(self) -> int:
        """Keys waiting for a query's place."""
        with self._cond:
            return len(self._queue)

    def get(self, key: K) -> V:
        """key's value: by a query of its own when none is running, else with the keys queued
        beside it once a query's place is free."""
        wait: _Wait[K, V] = _Wait(key)
        with self._cond:
            self._queue.append(wait)
            while not wait.done:
                if self._running < self.at_once and self._queue:
                    self._lead()
                else:
                    self._cond.wait()
        if wait.alone:
            return self._alone(key)
        if wait.error is not None:
            raise wait.error
        return wait.value if wait.value is not None else self.missing

    def _lead(self) -> None:
        """Send one query for the queue's first keys (the lock held on entry and on return)."""
        batch = self._queue[: self.most]
        del self._queue[: self.most]
        self._running += 1
        self.queries += 1
        found: Mapping[K, V] = {}
        error: BaseException | None = None
        self._cond.release()
        keys = list(dict.fromkeys(w.key for w in batch))  # a key asked twice is sent once
        try:
            found = {keys[0]: self.one(keys[0])} if len(keys) == 1 else self.fetch(keys)
        except BaseException as exc:  # handed to every thread of the batch, raised there
            error = exc
            if not isinstance(exc, Exception):
                raise
        finally:
            self._cond.acquire()
            self._running -= 1
            for w in batch:
                w.value, w.done = found.get(w.key), True
                if error is not None:
                    w.error, w.alone = error, len(keys) > 1
            self._cond.notify_all()

    def _alone(self, key: K) -> V:
        with self._cond:
            self.queries += 1
        return self.one(key)
