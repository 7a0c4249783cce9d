"""Descriptions asked at the same time by several threads of a web worker share one query to a
remote store (graph/store/batch.py), and give what each would alone: on a real Virtuoso and a
real Oxigraph server, and for the Coalescer's own rules (one client alone waits for nothing;
a failed batch fails only the keys the store refuses)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from live import SEED
from oxigraph_server import REMOTE_SERVERS

from graph.errors import StoreError
from graph.iris import Iris
from graph.publication import BuildOptions, build, current_release, read_manifest
from graph.resources import Description
from graph.store import StoreSettings, open_reader
from graph.store.batch import Coalescer
from graph.store.sparql import SparqlReader

BASE = "http://127.0.0.1:8124/lib/"
NOW = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
WAIT = 30.0  # seconds a test waits for threads to reach a point (never reached when it works)


def _until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, "the threads never got there"
        time.sleep(0.005)


class _Gate:
    """Wraps a lookup: its first call waits until opened (a query still running), the others
    pass; every call's keys are recorded."""

    def __init__(self, inner: Callable[[str], Any]) -> None:
        self.inner, self.opened, self.entered = inner, threading.Event(), threading.Event()
        self.calls: list[str] = []

    def __call__(self, key: str) -> Any:
        self.calls.append(key)
        if len(self.calls) == 1:
            self.entered.set()
            assert self.opened.wait(WAIT)
        return self.inner(key)


def _open_when(gate: _Gate, queued: Callable[[], bool]) -> threading.Thread:
    """A thread that opens the gate once its first call is held and queued() holds."""

    def open_() -> None:
        assert gate.entered.wait(WAIT)
        _until(queued)
        gate.opened.set()

    opener = threading.Thread(target=open_, daemon=True)
    opener.start()
    return opener


def _run(jobs: Mapping[str, Callable[[], object]]) -> tuple[dict[str, object], list[Exception]]:
    """Each job in a thread of its own, started now; their results once all are done."""
    results: dict[str, object] = {}
    errors: list[Exception] = []

    def work(name: str, job: Callable[[], object]) -> None:
        try:
            results[name] = job()
        except Exception as exc:  # reported to the test
            errors.append(exc)

    threads = [threading.Thread(target=work, args=item, daemon=True) for item in jobs.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT)
        assert not thread.is_alive()
    return results, errors


@pytest.mark.parametrize("remote_server", REMOTE_SERVERS, indirect=True)
def test_entries_described_at_once_share_a_query_and_match_alone(
    tmp_path: Path, remote_server: StoreSettings
) -> None:
    build([SEED], tmp_path, BuildOptions(base=BASE, store=remote_server), now=NOW)
    release = current_release(tmp_path)
    reader = open_reader(remote_server, release, read_manifest(release)["store"], Iris(BASE))
    assert isinstance(reader, SparqlReader)
    entries = reader.entries()[:12]
    alone = {iri: reader.describe(iri) for iri in entries}
    assert all(d is not None and d.kind == "entry" for d in alone.values())
    batches = reader.batches
    sent = batches.queries
    assert sent == len(entries)  # one client in turn: a query each, sent at once

    # The first description's query is held; the other twelve threads come meanwhile and queue.
    gate = _Gate(batches.one)
    batches.one = gate
    unknown = BASE + "entry/never-minted"
    asked = [*entries, unknown]
    jobs = {iri: partial(reader.describe, iri) for iri in asked}
    jobs["again"] = partial(reader.describe, entries[1])  # asked twice at once
    opener = _open_when(gate, lambda: batches.queued == len(jobs) - 1)
    results, errors = _run(jobs)
    opener.join(WAIT)
    assert not errors
    # Two queries for fourteen descriptions: the held one, then one for all that queued.
    assert batches.queries - sent == 2 and len(gate.calls) == 1
    assert results.pop(unknown) is None
    again, mine = results.pop("again"), alone[entries[1]]
    assert isinstance(again, Description) and mine is not None
    assert [str(t) for t in again.triples] == [str(t) for t in mine.triples]
    assert results.keys() == alone.keys()
    for iri, described in results.items():
        mine = alone[iri]
        assert isinstance(described, Description) and mine is not None
        assert (described.kind, described.members) == (mine.kind, mine.members)
        assert [str(t) for t in described.triples] == [str(t) for t in mine.triples]


def _counting() -> tuple[Coalescer[str, str], list[Sequence[str]]]:
    fetched: list[Sequence[str]] = []

    def fetch(keys: Sequence[str]) -> dict[str, str]:
        assert len(set(keys)) == len(keys)  # a key asked twice at once is sent once
        fetched.append(list(keys))
        if "refused" in keys:
            raise StoreError("http://store/sparql", "the store refused the query")
        return {k: k.upper() for k in keys if k != "absent"}

    def one(key: str) -> str:
        fetched.append([key])
        if key == "absent":
            return ""
        if key == "refused":
            raise StoreError("http://store/sparql", "the store refused the query")
        return key.upper()

    return Coalescer(fetch, one, "", most=3), fetched


def test_a_lookup_alone_is_sent_at_once_by_itself() -> None:
    batches, fetched = _counting()
    assert [batches.get(k) for k in ("a", "b", "c")] == ["A", "B", "C"]
    assert fetched == [["a"], ["b"], ["c"]]
    with pytest.raises(StoreError):
        batches.get("refused")
    assert batches.get("d") == "D"  # a failure leaves no query counted as running


def test_keys_queued_while_a_query_runs_go_together_up_to_most() -> None:
    batches, fetched = _counting()
    gate = _Gate(batches.one)
    batches.one = gate
    keys = ["b", "c", "absent", "d", "e"]
    jobs = {k: partial(batches.get, k) for k in ["a", *keys]}
    opener = _open_when(gate, lambda: batches.queued == 5)
    # "a" may not be the first to take the place: whichever is, the other five queue behind it.
    results, errors = _run(jobs)
    opener.join(WAIT)
    assert not errors
    assert results == {"a": "A", "b": "B", "c": "C", "absent": "", "d": "D", "e": "E"}
    assert len(fetched) == 3 and len(fetched[0]) == 1  # one held, then 3 and 2 (most=3)
    assert sorted(map(len, fetched[1:])) == [2, 3]
    assert sorted(k for keys in fetched for k in keys) == sorted(["a", *keys])


def test_a_key_asked_twice_at_once_is_sent_once() -> None:
    batches, fetched = _counting()
    gate = _Gate(batches.one)
    batches.one = gate
    held = threading.Thread(target=batches.get, args=("h",), daemon=True)
    held.start()
    assert gate.entered.wait(WAIT)  # "h" holds the place; the next three queue
    opener = _open_when(gate, lambda: batches.queued == 3)
    asked = [("first", "k"), ("second", "k"), ("third", "m")]
    results, errors = _run({name: partial(batches.get, key) for name, key in asked})
    opener.join(WAIT)
    held.join(WAIT)
    assert not errors
    assert results == {"first": "K", "second": "K", "third": "M"}
    assert fetched[0] == ["h"] and sorted(fetched[1]) == ["k", "m"] and len(fetched) == 2


def test_a_batch_the_store_refuses_fails_only_the_key_it_refuses() -> None:
    batches, fetched = _counting()
    gate = _Gate(batches.one)
    batches.one = gate
    jobs = {k: partial(batches.get, k) for k in ("first", "x", "refused", "y")}
    opener = _open_when(gate, lambda: batches.queued == 3)
    results, errors = _run(jobs)
    opener.join(WAIT)
    assert results == {"first": "FIRST", "x": "X", "y": "Y"}
    assert len(errors) == 1 and isinstance(errors[0], StoreError)
    # The batch of three failed; each of its keys was then asked alone.
    batch = next(keys for keys in fetched if len(keys) == 3)
    assert sorted(batch) == ["refused", "x", "y"]
    assert sorted(k for keys in fetched if len(keys) == 1 for k in keys) == [
        "first",
        "refused",
        "x",
        "y",
    ]
