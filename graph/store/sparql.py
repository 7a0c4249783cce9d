"""The remote backend: each release's graph in a named graph of a SPARQL 1.1 server.

A release's library and its VoID description live in two named graphs of their own
(Iris.store_graph, store_void_graph), recorded in the release's manifest: the `current`
swap is the commit, so readers see the old release's graphs or the new one's, never a mix.
Every Reader call is one query (two for a page of a long list: its members' titles), each
confined by GRAPH to the release's graphs, on a persistent connection; descriptions asked by
several threads at once share one (graph/store/batch.py). A description's own
triples come from the store; the labels of what it links to from the release's folder, which
every web process reads (the context, graph/store/files.py read_context, and the index for
linked entries' titles), or, for a release without them, from the same query. Measured quirks
of Virtuoso are handled in graph/store/protocol.py.

A build's graphs are named in its folder's store.json before a triple is sent. A build that
fails drops them; one that is killed leaves them to the next build, which drops them and
starts clean: a load is never resumed (SparqlLoader says why).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pyoxigraph
from pyoxigraph import DefaultGraph, Literal, NamedNode, Triple

from graph.convert import Converted
from graph.dumps import Chunk
from graph.errors import PublicationError, StoreError
from graph.index import Index, listed
from graph.iris import Iris
from graph.namespaces import DCMITYPE, DCTERMS, RDF, SKOS
from graph.resources import (
    Description,
    Page,
    ResourceKind,
    kind_of,
    ordered,
    page_of,
    read_void,
    term_key,
)
from graph.store import SPARQL_BACKEND as BACKEND
from graph.store import Links, StoreSettings
from graph.store.batch import Coalescer
from graph.store.changes import graph_changes
from graph.store.protocol import SparqlClient, Term, iri_ref, show_url

RECORD = "store.json"  # in a release being built: the graphs its load writes
# Rows per SELECT of a long list, read page by page in key order (no OFFSET: each page starts
# after the last IRI seen): under Virtuoso's packaged ResultSetMaxRows (10,000), which flags
# an answer of that many rows as cut (forward.py DESCRIBE_SOLUTIONS: 9,999 rows are not).
LIST_PAGE = 9_999
# Triples per DELETE DATA of an incremental load (Virtuoso removes 2,000-4,000 a second
# whatever the batch, from 250 to 1,000).
CHANGE_BATCH = 500
# Bytes of N-Triples per Graph Store POST (about 17,000 triples): a load goes at the same pace
# with 4 MiB or 10,000 entries (23 MiB) a request, and smaller requests report progress more
# often and keep the server's buffers small.
LOAD_BYTES = 4 << 20
# A copy of the current graph is brought up to date while it removes fewer than one of its
# triples in COPY_LIMIT; past that a full load is faster. Measured on Virtuoso at 10k entries:
# COPY 215k triples/s, a Graph Store load 115k/s, DELETE DATA 4.4k/s (INSERT DATA 3.8k/s, so
# what a copy gains is added by the Graph Store Protocol too).
COPY_LIMIT = 50
# Virtuoso's answer (HTTP 500) to a request whose transaction it rolled back as a deadlock's
# victim: "40001 Error SR172: Transaction deadlocked". Requests loading one graph at once may
# meet on its indexes; the victim wrote nothing, and a piece sent again adds each triple once
# (a graph is a set). Sent again up to LOAD_RETRIES times, after 0.1, 0.2, 0.4 s.
DEADLOCK = re.compile(r"\b(40001|SR172)\b")
LOAD_RETRIES = 3

# Resources whose labels from the context a reader keeps (the library, the scheme, the
# concepts, the publishers most linked to).
CONTEXT_LABELS = 4096

_TYPE = iri_ref(str(RDF.type))
_TITLE = iri_ref(str(DCTERMS.title))
_CREATED = iri_ref(str(DCTERMS.created))
_SUBJECT = iri_ref(str(DCTERMS.subject))
_HAS_PART = iri_ref(str(DCTERMS.hasPart))
_PREF_LABEL = iri_ref(str(SKOS.prefLabel))
_TOP = iri_ref(str(SKOS.hasTopConcept))
_TEXT = iri_ref(str(DCMITYPE.Text))
# The context's terms (an in-memory store: pattern lookups, no SPARQL parsed).
_LABEL_NODES = (NamedNode(str(DCTERMS.title)), NamedNode(str(SKOS.prefLabel)))
_TITLE_NODE = _LABEL_NODES[0]
_DEFAULT = DefaultGraph()


def _ref(iri: str) -> str | None:
    """`<iri>` for a query, or None when the string is not an IRI (a request path can be
    anything)."""
    try:
        return iri_ref(iri)
    except ValueError:
        return None


class SparqlReader:
    """The Reader of one release's graphs in a SPARQL store; thread-safe."""

    def __init__(
        self,
        client: SparqlClient,
        iris: Iris,
        graph: str,
        void: str,
        void_file: Path | None = None,
        context: pyoxigraph.Store | None = None,
        index: Index | None = None,
    ) -> None:
        """context: the release's context (read_context), where the labels of the resources
        a description links to are read, with index (graph/index.py) for linked entries'
        titles; without a context the store gives them too."""
        self.client, self.iris = client, iris
        self.graph, self.void = iri_ref(graph), iri_ref(void)
        self._void_file = void_file
        self.context, self.index = context, index
        # The labels read from the context by IRI (the library, the scheme, concepts,
        # publishers), at most CONTEXT_LABELS of them: an entry may link outside the context.
        self._context_labels: dict[str, list[Triple]] = {}
        self.batches: Coalescer[str, list[tuple[NamedNode, Term]]] = Coalescer(
            self._owns, self._own, []
        )

    def exists(self, iri: str) -> bool:
        node = _ref(iri)
        if node is None:
            return False
        return self.client.ask(f"ASK {{ GRAPH {self.graph} {{ {node} ?p ?o }} }}")

    def triples(self, iri: str) -> list[Triple]:
        node = _ref(iri)
        if node is None:
            return []
        return self.client.construct(
            f"CONSTRUCT {{ {node} ?p ?o }} WHERE {{ GRAPH {self.graph} {{ {node} ?p ?o }} }}"
        )

    def members(self, iri: str, kind: ResourceKind) -> list[str]:
        node = _ref(iri)
        if node is None:
            return []
        if kind == "concept":
            return self._column(f"?m {_SUBJECT} {node}")
        if kind == "library":
            return self._column(f"{node} {_HAS_PART} ?m")
        return []

    def entries(self) -> list[str]:
        return self._column(f"?m {_TYPE} {_TEXT}")

    def concepts(self) -> list[str]:
        scheme = iri_ref(self.iris.scheme)
        rows = self.client.select(
            f"SELECT ?c WHERE {{ GRAPH {self.graph} {{ {scheme} {_TOP} ?c }} }}"
        )
        return sorted(term_key(row["c"]) for row in rows if "c" in row)

    def category_counts(self) -> dict[str, int]:
        rows = self.client.select(
            f"SELECT ?c (COUNT(?e) AS ?n) WHERE {{ GRAPH {self.graph} {{ ?e {_SUBJECT} ?c }} }}"
            " GROUP BY ?c"
        )
        counts: dict[str, int] = {}
        for row in rows:
            concept, count = row.get("c"), row.get("n")
            if isinstance(concept, NamedNode) and isinstance(count, Literal):
                counts[concept.value] = int(count.value)
        return counts

    def describe(
        self, iri: str, page: int = 1, size: int = 100, members: Sequence[str] | None = None
    ) -> Description | None:
        iris = self.iris
        if iri in (iris.dataset, iris.void):
            void = self._void_triples()
            if not void:
                return None
            return Description(iri, "dataset", ordered(void, iris.dataset))
        node = _ref(iri)
        if node is None:
            return None
        # The library's parts are paged like a concept's entries, so they are left out here.
        skip = f"FILTER(?p != {_HAS_PART})" if iri == iris.library else ""
        if self.context is not None:
            subject = NamedNode(iri)
            pairs = self._own(node, skip) if skip else self.batches.get(node)
            own = [Triple(subject, p, o) for p, o in pairs]
            extra = self._labels(own)
        else:
            # Its own triples and the titles and labels of what it links to, in one query.
            # Each label is an OPTIONAL of its own predicate: with the predicate a variable
            # filtered afterwards (`?o ?lp ?l FILTER(?lp = ...)`), Virtuoso 7.2 reads every
            # triple of every linked resource, the library's hasPart of each entry too: 14.4
            # against 6.1 ms of its CPU per entry at 100k entries (bench/README.md).
            found = self.client.construct(
                f"CONSTRUCT {{ {node} ?p ?o . ?o {_TITLE} ?t . ?o {_PREF_LABEL} ?n }} "
                f"WHERE {{ GRAPH {self.graph} {{ {node} ?p ?o {skip} "
                f"OPTIONAL {{ ?o {_TITLE} ?t FILTER(?p != {_TYPE}) }} "
                f"OPTIONAL {{ ?o {_PREF_LABEL} ?n FILTER(?p != {_TYPE}) }} }} }}"
            )
            own = [t for t in found if term_key(t.subject) == iri]
            extra = [t for t in found if term_key(t.subject) != iri]
        if not own:
            return None
        types = [term_key(t.object) for t in own if str(t.predicate) == _TYPE]
        kind = kind_of(types)
        page_info: Page | None = None
        shown: list[str] = []
        if kind in ("concept", "library"):
            everyone = members if members is not None else self.members(iri, kind)
            page_info, shown, links = page_of(iri, kind, everyone, page, size)
            extra += links
            if shown:
                extra += self._values(shown, _TITLE, _CREATED)
        return Description(iri, kind, ordered(own + extra, iri), shown, page_info)

    def close(self) -> None:
        """Close the client's idle connections to the store (a release served no more)."""
        self.client.close()

    def _own(self, node: str, skip: str = "") -> list[tuple[NamedNode, Term]]:
        """The predicates and objects of one resource (`<iri>`), by a SELECT: Virtuoso 7.2
        spends 0.75 ms of CPU on it, 0.85 on the same triples as a CONSTRUCT (100k entries, one
        client; its TSV is not SPARQL's: IRIs quoted as strings, no language tags)."""
        rows = self.client.select(
            f"SELECT ?p ?o WHERE {{ GRAPH {self.graph} {{ {node} ?p ?o {skip} }} }}"
        )
        return [
            (p, o)
            for row in rows
            if isinstance(p := row.get("p"), NamedNode) and (o := row.get("o")) is not None
        ]

    def _owns(self, nodes: Sequence[str]) -> dict[str, list[tuple[NamedNode, Term]]]:
        """The predicates and objects of several resources (`<iri>` each) in one query, by
        resource: what threads describing at once share (graph/store/batch.py)."""
        rows = self.client.select(
            f"SELECT ?s ?p ?o WHERE {{ GRAPH {self.graph} {{ "
            f"VALUES ?s {{ {' '.join(nodes)} }} ?s ?p ?o }} }}"
        )
        found: dict[str, list[tuple[NamedNode, Term]]] = {}
        for row in rows:
            s, p, o = row.get("s"), row.get("p"), row.get("o")
            if isinstance(s, NamedNode) and isinstance(p, NamedNode) and o is not None:
                found.setdefault(str(s), []).append((p, o))
        return found

    def _labels(self, own: Sequence[Triple]) -> list[Triple]:
        """The titles and prefLabels of the resources the triples link to (but by rdf:type):
        from the context, which holds every resource of the graph that is not an entry (the
        library, the scheme, its concepts, the publishers); an entry's title from the index,
        or, for entries it does not hold (a release without records), from the store."""
        assert self.context is not None
        linked = dict.fromkeys(
            t.object.value
            for t in own
            if isinstance(t.object, NamedNode) and str(t.predicate) != _TYPE
        )
        out: list[Triple] = []
        entries: list[str] = []
        prefix = self.iris.entry_prefix
        for iri in linked:
            if iri.startswith(prefix):
                entries.append(iri)
                continue
            labels = self._context_labels.get(iri)
            if labels is None:  # the context never changes: each resource's labels read once
                node = NamedNode(iri)
                labels = [
                    q.triple
                    for predicate in _LABEL_NODES
                    for q in self.context.quads_for_pattern(node, predicate, None, _DEFAULT)
                ]
                if len(self._context_labels) < CONTEXT_LABELS:  # links outside it: unbounded
                    self._context_labels[iri] = labels
            out += labels
        if not entries:
            return out
        if self.index is not None and self.index.has_records():
            for row in listed(self.index, entries, prefix):
                title = Literal(row.title, language="en")
                out.append(Triple(NamedNode(row.iri), _TITLE_NODE, title))
                entries.remove(row.iri)
        if entries:
            out += self._values(entries, _TITLE, _PREF_LABEL)
        return out

    def _values(self, resources: Sequence[str], first: str, second: str) -> list[Triple]:
        """The triples of two predicates (as `<iri>`) of these resources, in one query."""
        values = " ".join(iri_ref(r) for r in resources)
        return self.client.construct(
            f"CONSTRUCT {{ ?m ?p ?o }} WHERE {{ GRAPH {self.graph} {{ "
            f"VALUES ?m {{ {values} }} ?m ?p ?o FILTER(?p = {first} || ?p = {second}) }} }}"
        )

    def _void_triples(self) -> list[Triple]:
        """The VoID description: the release's file when given, else the VoID graph."""
        if self._void_file is not None:
            return read_void(self._void_file, self.iris)
        return self.client.construct(
            f"CONSTRUCT {{ ?s ?p ?o }} WHERE {{ GRAPH {self.void} {{ ?s ?p ?o }} }}"
        )

    def _column(self, pattern: str) -> list[str]:
        """The IRIs ?m of a pattern, newest (greatest) first, read LIST_PAGE rows at a time."""
        found: list[str] = []
        after = ""
        while True:
            start = f'FILTER(STR(?m) < "{after}")' if after else ""
            rows = self.client.select(
                f"SELECT DISTINCT ?m WHERE {{ GRAPH {self.graph} {{ {pattern} }} "
                f"FILTER(isIRI(?m)) {start} }} ORDER BY DESC(STR(?m)) LIMIT {LIST_PAGE}"
            )
            page = [row["m"].value for row in rows if isinstance(row.get("m"), NamedNode)]
            found += page
            if len(rows) < LIST_PAGE:
                break
            after = _quoted(page[-1])
        found.sort(reverse=True)
        return found


def _quoted(text: str) -> str:
    """Text inside a SPARQL double-quoted string (an IRI holds no '"', '\\' or newline, but
    say so rather than trust it)."""
    return text.replace("\\", "\\\\").replace('"', '\\"')


@dataclass(frozen=True)
class LoadReport:
    """What a build did in the store, for its summary: "loaded" the whole graph, "copied" the
    current release's graph (in the server) and applied the chunks that changed, or "reused"
    the current release's graph as it is."""

    endpoint: str  # the store's query endpoint, without credentials
    how: str
    triples: int  # triples sent: the whole graph, or those removed and added
    chunks: int = 0  # chunks that changed (copied)


class SparqlLoader:
    """Loads a release into named graphs of a SPARQL store. Before anything is written,
    work/store.json names the graphs this build creates, so that those of a build that failed
    or was killed are dropped by the next build; a graph that an unchanged rebuild takes over
    from the current release is never named there.

    A load is not resumed: a build that dies midway leaves a graph nothing names but its
    store.json, and the next build drops it and loads its own from the start (starting clean
    costs one more load and keeps every graph either complete and named by a manifest, or
    doomed; a resumed load would have to know which requests the server had applied before
    the kill, which the Graph Store Protocol does not say). Progress (loaded) counts triples
    sent; the build reads it from its own thread.

    The pieces of a load go `streams` requests at once, each on a connection of its own: a
    server loads each request on one thread (Virtuoso 7.2 on two idle cores: 4.3M triples in
    73 s one at a time, 44 s two at a time). A graph is a set, so the order in which they land
    does not matter; the first that fails stops the load (the graph is dropped with the
    build's, as for any failure)."""

    def __init__(
        self,
        client: SparqlClient,
        iris: Iris,
        work: Path,
        stamp: datetime,
        streams: int = StoreSettings.streams,
    ) -> None:
        if streams < 1:
            raise StoreError(show_url(client.query_url), f"{streams} streams; expected 1 or more")
        self.client, self.iris, self.streams = client, iris, streams
        token = f"{stamp:%Y%m%dT%H%M%SZ}-{secrets.token_hex(4)}"
        self.graph, self.void = iris.store_graph(token), iris.store_void_graph(token)
        self.created = self._record(self.graph, self.void)
        self._progress = (0, 0)  # (triples sent, in all): one tuple, read by another thread
        self._how, self._chunks = "loaded", 0
        record = work / RECORD
        partial = work / f".{RECORD}.partial"
        try:
            # Whole or absent, even for a build killed as it writes it.
            partial.write_text(json.dumps(self.created) + "\n", encoding="utf-8")
            os.replace(partial, record)
        except OSError as exc:
            raise PublicationError(f"{work}: cannot write {RECORD}: {exc}") from exc

    def stage(
        self,
        converted: Converted,
        previous: Path | None,
        chunks: list[Chunk],
        index: dict[str, Any],
    ) -> None:
        """The previous release's graph when nothing changed (a release's graph is never
        written once committed, so two releases may share one); a copy of it (SPARQL Update
        COPY, in the server) brought up to date by the changed chunks when it is in the same
        store and the changes are few; else a full load."""
        old = _previous_graph(previous, self.client)
        changes = None
        if old is not None and previous is not None:
            changes = graph_changes(previous, converted, chunks, index)
        if changes is None or old is None:
            self._load(converted)
            return
        if not changes.removed and not changes.added:
            self.graph, self._how = old, "reused"
            return
        removed, added = _lines(changes.removed), _lines(changes.added)
        if len(removed) * COPY_LIMIT > converted.statistics.triples:
            self._load(converted)
            return
        known, new = set(index.get("chunks") or ()), {c.key for c in chunks}
        self._how, self._chunks = "copied", max(len(new - known), len(known - new))
        total, done = len(removed) + len(added), 0
        self._progress = (0, total)
        graph = iri_ref(self.graph)
        self.client.update(f"COPY GRAPH {iri_ref(old)} TO GRAPH {graph}")
        for i in range(0, len(removed), CHANGE_BATCH):
            batch = removed[i : i + CHANGE_BATCH]
            body = b"\n".join(batch).decode("utf-8")
            self.client.update(f"DELETE DATA {{ GRAPH {graph} {{\n{body}\n}} }}")
            done += len(batch)
            self._progress = (done, total)
        # Added by the Graph Store Protocol, as a full load is (30 times faster than INSERT
        # DATA on Virtuoso), or by INSERT DATA when the store has no Graph Store endpoint.
        self._send(_pieces(b"\n".join(added) + b"\n" if added else b""), done, total)

    def loaded(self) -> tuple[int, int]:
        """Triples sent so far and in all; (0, 0) until the load knows what it sends."""
        return self._progress

    def report(self) -> LoadReport:
        """What the load did, once it is done."""
        return LoadReport(
            show_url(self.client.query_url), self._how, self._progress[1], self._chunks
        )

    def add_links(self, links: Links) -> None:
        """The linkset into the release's graph: whole into a graph loaded anew. A graph
        taken over from the previous release ("reused": never written once committed) is
        copied first when its links change; a copied graph takes the lines that differ from
        the previous release's links only."""
        data = links.added
        if self._how not in ("reused", "copied"):
            data = links.whole()
        elif not links.removed and not links.added:
            return
        else:
            graph = iri_ref(self.graph)
            if self._how == "reused":
                old = self.graph
                self.graph = self.created["graph"]
                graph = iri_ref(self.graph)
                self.client.update(f"COPY GRAPH {iri_ref(old)} TO GRAPH {graph}")
                self._how = "copied"
            gone = _lines(links.removed)
            for i in range(0, len(gone), CHANGE_BATCH):
                body = b"\n".join(gone[i : i + CHANGE_BATCH]).decode("utf-8")
                self.client.update(f"DELETE DATA {{ GRAPH {graph} {{\n{body}\n}} }}")
        for piece in _pieces(data):
            self.client.post_graph(self.graph, piece)

    def add_void(self, void_ttl: bytes) -> None:
        triples = pyoxigraph.parse(void_ttl, pyoxigraph.RdfFormat.TURTLE)
        data = pyoxigraph.serialize(
            (q.triple for q in triples), format=pyoxigraph.RdfFormat.N_TRIPLES
        )
        self.client.put_graph(self.void, data or b"")

    def finish(self) -> dict[str, str]:
        return self._record(self.graph, self.void)

    def discard(self) -> None:
        """Drop the graphs this build created; raises StoreError when the store cannot (then
        work/store.json, kept, names them for the next build)."""
        self.prune([self.created], [])

    def prune(self, doomed: Sequence[Mapping[str, Any]], kept: Sequence[Mapping[str, Any]]) -> None:
        """Drop the graphs the doomed records name (releases deleted, builds abandoned) that
        no kept record names. Every one is tried; then StoreError if one could not be dropped,
        so that the caller keeps the record that names it for a later build to try again."""
        in_use = {r.get(key) for r in kept for key in ("graph", "void")}
        failed: StoreError | None = None
        for record in doomed:
            if record.get("backend") != BACKEND:
                continue
            for key in ("graph", "void"):
                name = record.get(key)
                if isinstance(name, str) and name.startswith(self.iris.base) and name not in in_use:
                    try:
                        self._drop(name)
                    except StoreError as exc:
                        failed = failed or exc
        if failed is not None:
            raise failed

    def _drop(self, graph: str) -> None:
        """Drop a graph by the Graph Store Protocol (or DROP when there is no such endpoint);
        when that endpoint fails (it may be what broke the load), by SPARQL Update DROP."""
        try:
            self.client.delete_graph(graph)
        except StoreError:
            if self.client.data_url is None:
                raise
            self.client.update(f"DROP SILENT GRAPH {iri_ref(graph)}")

    def _record(self, graph: str, void: str) -> dict[str, str]:
        endpoint = show_url(self.client.query_url)
        return {"backend": BACKEND, "endpoint": endpoint, "graph": graph, "void": void}

    def _load(self, converted: Converted) -> None:
        """The whole library into the new graph, LOAD_BYTES of it per request."""
        total = converted.statistics.triples
        self._how, self._chunks, self._progress = "loaded", 0, (0, total)
        self._send(converted.text.pieces(LOAD_BYTES), 0, total)

    def _send(self, pieces: Iterable[bytes], done: int, total: int) -> None:
        """POST each piece into the new graph, self.streams at a time, counting the triples
        sent into the progress from done on. At most streams pieces are held at once: the
        next one is read only when a request has ended. The first failure is raised once the
        requests under way have ended; no piece is sent after it."""
        waiting = iter(pieces)
        sending: dict[Future[None], int] = {}
        failed: BaseException | None = None
        with ThreadPoolExecutor(self.streams, thread_name_prefix="kgpub-load") as senders:
            while True:
                while failed is None and len(sending) < self.streams:
                    piece = next(waiting, None)
                    if piece is None:
                        break
                    sending[senders.submit(self._post, piece)] = piece.count(b"\n")
                if not sending:
                    break
                ended, _ = wait(sending, return_when=FIRST_COMPLETED)
                for future in ended:
                    failed = failed or future.exception()
                    done += sending.pop(future)
                self._progress = (done, total)
        if failed is not None:
            raise failed

    def _post(self, piece: bytes) -> None:
        """One piece into the new graph; sent again when the store took it for a deadlock's
        victim (DEADLOCK)."""
        for attempt in range(LOAD_RETRIES + 1):
            try:
                self.client.post_graph(self.graph, piece)
                return
            except StoreError as exc:
                if attempt == LOAD_RETRIES or not DEADLOCK.search(exc.message):
                    raise
            time.sleep(0.1 * 2**attempt)


def _previous_graph(previous: Path | None, client: SparqlClient) -> str | None:
    """The previous release's graph when it lives in this same store."""
    if previous is None:
        return None
    try:
        manifest = json.loads((previous / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    record = manifest.get("store") or {}
    if record.get("backend") != BACKEND or record.get("endpoint") != show_url(client.query_url):
        return None
    graph = record.get("graph")
    return graph if isinstance(graph, str) else None


def _lines(text: bytes) -> list[bytes]:
    return [line for line in text.split(b"\n") if line.strip()]


def _pieces(data: bytes) -> Iterator[bytes]:
    """N-Triples text in pieces of about LOAD_BYTES, each of whole lines (the library's graph
    has no blank nodes, whose labels a request would scope: graph/convert.py)."""
    start = 0
    while start < len(data):
        end = data.find(b"\n", start + LOAD_BYTES)
        end = len(data) if end < 0 else end + 1
        yield data[start:end]
        start = end
