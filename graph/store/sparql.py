"""The remote backend: each release's graph in a named graph of a SPARQL 1.1 server.

A release's library and its VoID description live in two named graphs of their own
(Iris.store_graph, store_void_graph), recorded in the release's manifest: the `current`
swap is the commit, so readers see the old release's graphs or the new one's, never a mix.
Every Reader call is one query (two for a page of a long list: its members' titles), each
confined by GRAPH to the release's graphs. Measured quirks of Virtuoso are handled in
graph/store/protocol.py.
"""

from __future__ import annotations

import contextlib
import json
import secrets
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pyoxigraph
from pyoxigraph import Literal, NamedNode, Triple

from graph.convert import Converted
from graph.dumps import Chunk, graph_changes
from graph.errors import PublicationError, StoreError
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
from graph.store.protocol import SparqlClient, iri_ref, show_url

RECORD = "store.json"  # in a release being built: the graphs its load writes
# Rows per SELECT of a long list: under Virtuoso's default ResultSetMaxRows (10,000), read
# page by page in key order (no OFFSET: each page starts after the last IRI seen).
LIST_PAGE = 10_000
# Triples per DELETE DATA / INSERT DATA of an incremental load.
CHANGE_BATCH = 500
# Entries per Graph Store POST of a full load (as graph/store/oxigraph.py's STORE_CHUNK).
LOAD_ENTRIES = 10_000

_TYPE = iri_ref(str(RDF.type))
_TITLE = iri_ref(str(DCTERMS.title))
_CREATED = iri_ref(str(DCTERMS.created))
_SUBJECT = iri_ref(str(DCTERMS.subject))
_HAS_PART = iri_ref(str(DCTERMS.hasPart))
_PREF_LABEL = iri_ref(str(SKOS.prefLabel))
_TOP = iri_ref(str(SKOS.hasTopConcept))
_TEXT = iri_ref(str(DCMITYPE.Text))


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
        self, client: SparqlClient, iris: Iris, graph: str, void: str, void_file: Path | None = None
    ) -> None:
        self.client, self.iris = client, iris
        self.graph, self.void = iri_ref(graph), iri_ref(void)
        self._void_file = void_file

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
        # Its own triples and the titles and labels of what it links to, in one query; the
        # library's parts are paged like a concept's entries, so they are left out here.
        skip = f"FILTER(?p != {_HAS_PART})" if iri == iris.library else ""
        found = self.client.construct(
            f"CONSTRUCT {{ {node} ?p ?o . ?o ?lp ?l }} WHERE {{ GRAPH {self.graph} {{ "
            f"{node} ?p ?o {skip} OPTIONAL {{ ?o ?lp ?l "
            f"FILTER(?p != {_TYPE} && (?lp = {_TITLE} || ?lp = {_PREF_LABEL})) }} }} }}"
        )
        own = [t for t in found if term_key(t.subject) == iri]
        if not own:
            return None
        types = [term_key(t.object) for t in own if str(t.predicate) == _TYPE]
        kind = kind_of(types)
        extra = [t for t in found if term_key(t.subject) != iri]
        page_info: Page | None = None
        shown: list[str] = []
        if kind in ("concept", "library"):
            everyone = members if members is not None else self.members(iri, kind)
            page_info, shown, links = page_of(iri, kind, everyone, page, size)
            extra += links
            if shown:
                values = " ".join(iri_ref(m) for m in shown)
                extra += self.client.construct(
                    f"CONSTRUCT {{ ?m ?p ?o }} WHERE {{ GRAPH {self.graph} {{ "
                    f"VALUES ?m {{ {values} }} ?m ?p ?o "
                    f"FILTER(?p = {_TITLE} || ?p = {_CREATED}) }} }}"
                )
        return Description(iri, kind, ordered(own + extra, iri), shown, page_info)

    def close(self) -> None:
        """Nothing held: each call is its own HTTP exchange."""

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


class SparqlLoader:
    """Loads a release into named graphs of a SPARQL store. Before anything is written,
    work/store.json names the graphs this build creates, so that those of a build that failed
    or was killed are dropped by the next build; a graph that an unchanged rebuild takes over
    from the current release is never named there."""

    def __init__(self, client: SparqlClient, iris: Iris, work: Path, stamp: datetime) -> None:
        self.client, self.iris = client, iris
        token = f"{stamp:%Y%m%dT%H%M%SZ}-{secrets.token_hex(4)}"
        self.graph, self.void = iris.store_graph(token), iris.store_void_graph(token)
        self.created = self._record(self.graph, self.void)
        try:
            (work / RECORD).write_text(json.dumps(self.created) + "\n", encoding="utf-8")
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
        store; else a full load."""
        old = _previous_graph(previous, self.client)
        changes = None
        if old is not None and previous is not None:
            changes = graph_changes(previous, converted, chunks, index)
        if changes is None or old is None:
            self._load(converted)
            return
        if not changes.removed and not changes.added:
            self.graph = old
            return
        self.client.update(f"COPY GRAPH {iri_ref(old)} TO GRAPH {iri_ref(self.graph)}")
        graph = iri_ref(self.graph)
        for verb, text in (("DELETE", changes.removed), ("INSERT", changes.added)):
            for batch in _batches(text, CHANGE_BATCH):
                body = b"\n".join(batch).decode("utf-8")
                self.client.update(f"{verb} DATA {{ GRAPH {graph} {{\n{body}\n}} }}")

    def add_void(self, void_ttl: bytes) -> None:
        triples = pyoxigraph.parse(void_ttl, pyoxigraph.RdfFormat.TURTLE)
        data = pyoxigraph.serialize(
            (q.triple for q in triples), format=pyoxigraph.RdfFormat.N_TRIPLES
        )
        self.client.put_graph(self.void, data or b"")

    def finish(self) -> dict[str, str]:
        return self._record(self.graph, self.void)

    def discard(self) -> None:
        self.prune([self.created], [])

    def prune(self, doomed: Sequence[Mapping[str, Any]], kept: Sequence[Mapping[str, Any]]) -> None:
        """Drop the graphs the doomed records name (releases deleted, builds abandoned) that
        no kept record names; a store that cannot be reached now keeps them (a later build's
        prune drops the graphs of the releases it deletes)."""
        in_use = {r.get(key) for r in kept for key in ("graph", "void")}
        for record in doomed:
            if record.get("backend") != BACKEND:
                continue
            for key in ("graph", "void"):
                name = record.get(key)
                if isinstance(name, str) and name.startswith(self.iris.base) and name not in in_use:
                    with contextlib.suppress(StoreError):
                        self.client.delete_graph(name)

    def _record(self, graph: str, void: str) -> dict[str, str]:
        endpoint = show_url(self.client.query_url)
        return {"backend": BACKEND, "endpoint": endpoint, "graph": graph, "void": void}

    def _load(self, converted: Converted) -> None:
        """The whole library, LOAD_ENTRIES entries per request, into the new graph."""
        data, starts = converted.ntriples, converted.layout.entries
        self.client.delete_graph(self.graph)
        self.client.post_graph(self.graph, data[: starts[0]])
        total = len(starts) - 1
        for i in range(0, total, LOAD_ENTRIES):
            end = starts[min(i + LOAD_ENTRIES, total)]
            self.client.post_graph(self.graph, data[starts[i] : end])


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


def _batches(text: bytes, size: int) -> Iterator[list[bytes]]:
    lines = [line for line in text.split(b"\n") if line.strip()]
    for i in range(0, len(lines), size):
        yield lines[i : i + size]
