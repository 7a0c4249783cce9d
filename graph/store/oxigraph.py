"""The embedded backend: a release's Oxigraph store on disk, read by triple patterns.

Serving asks its questions of an OxigraphReader (graph/store Reader): the scheme, the library
and the dataset are described by triple patterns only (no SPARQL is parsed on the per-request
path: rdflib's and Oxigraph's parsers cost milliseconds a query); an entry, and the titles and
times of a list's members, are read from the release's files (graph/store/files.py) when it has
them, and the other resources from its context (read_context: an in-memory store of a few
hundred triples), so that a web worker opens the store only for a release built without them.
What such a release reads once and the server caches (member lists, counts per category, the
library's own triples beside its 100k hasPart) uses small SELECT/CONSTRUCT queries, which are
faster than iterating quads in Python for long lists. The build side (load, copy by chunks)
and the read-only opening used by the query children live here too: no other module touches
pyoxigraph.Store.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pyoxigraph
from pyoxigraph import DefaultGraph, Literal, NamedNode, Triple

from graph.convert import Converted
from graph.dumps import Chunk
from graph.errors import PublicationError
from graph.iris import Iris
from graph.namespaces import DCMITYPE, DCTERMS, RDF, SKOS, VOID
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
from graph.store import Links
from graph.store.changes import GraphChanges, graph_changes
from graph.store.embedded import open_read_only
from graph.store.files import EntryFiles

_TYPE = NamedNode(str(RDF.type))
_TITLE = NamedNode(str(DCTERMS.title))
_CREATED = NamedNode(str(DCTERMS.created))
_SUBJECT = NamedNode(str(DCTERMS.subject))
_HAS_PART = NamedNode(str(DCTERMS.hasPart))
_PREF_LABEL = NamedNode(str(SKOS.prefLabel))
_LABELS = (_TITLE, _PREF_LABEL)
_DEFAULT = DefaultGraph()
_COUNTS_QUERY = f"SELECT ?c (COUNT(?e) AS ?n) WHERE {{ ?e <{DCTERMS.subject}> ?c }} GROUP BY ?c"


class OxigraphReader:
    """The Reader of one release's Oxigraph store; thread-safe (Oxigraph's reads are)."""

    def __init__(
        self,
        store: pyoxigraph.Store | Path | str,
        iris: Iris,
        void: Path | None = None,
        files: EntryFiles | None = None,
        context: pyoxigraph.Store | None = None,
    ) -> None:
        """store: the store, or its folder, opened read-only when a question needs it (never,
        for the pages of a release with its files and its context)."""
        self._store = store if isinstance(store, pyoxigraph.Store) else None
        self._path = None if isinstance(store, pyoxigraph.Store) else Path(store)
        self._opening = threading.Lock()
        self.iris = iris
        self._void_file = void
        # Where entries are read, when the release has its files (graph/store/files.py): the
        # store's caches grow with the keys a process reads, the page cache is shared.
        self.files = files
        # And the other resources' triples, but the library's parts (read_context).
        self.context = context
        self._predicates: list[str] | None = None  # of the data, from the VoID file

    @classmethod
    def open(
        cls,
        path: Path | str,
        iris: Iris,
        void: Path | None = None,
        files: EntryFiles | None = None,
        context: pyoxigraph.Store | None = None,
    ) -> OxigraphReader:
        """The reader of the store at path, opened read-only when first asked; void: the
        release's VoID file; files: its entries' files; context: its other resources'."""
        return cls(path, iris, void, files, context)

    @property
    def store(self) -> pyoxigraph.Store:
        """The release's store, opened read-only on first use."""
        if self._store is None:
            with self._opening:
                if self._store is None:
                    assert self._path is not None
                    self._store = open_read_only(self._path)
        return self._store

    @property
    def is_open(self) -> bool:
        """Whether the store has been opened."""
        return self._store is not None

    def exists(self, iri: str) -> bool:
        """Whether the default graph has a triple about the IRI (False for a non-IRI)."""
        node = _node(iri)
        if node is None:
            return False
        files = self._files_for(iri)
        if files is not None:
            return bool(files.lines(iri))
        found = self._graph_of(iri).quads_for_pattern(node, None, None, _DEFAULT)
        return next(iter(found), None) is not None

    def triples(self, iri: str) -> list[Triple]:
        """The triples with the IRI as subject, in the default graph ([] for a non-IRI)."""
        node = _node(iri)
        if node is None:
            return []
        files = self._files_for(iri)
        if files is not None:
            return files.triples(iri)
        # The library's parts are not in the context.
        graph = self.store if iri == self.iris.library else self._graph_of(iri)
        return [q.triple for q in graph.quads_for_pattern(node, None, None, _DEFAULT)]

    def members(self, iri: str, kind: ResourceKind) -> list[str]:
        """A concept's entries or the library's parts, newest first ([] for other kinds and
        for strings that are not IRIs).

        Entry IRIs start with their Added time (YYYY-MM-DD-HHMM), so descending IRI order is
        newest first, stable, and needs no lookup of each entry's created time.
        """
        node = _node(iri)
        if node is None:
            return []
        if kind == "concept":
            found = self._column(f"SELECT ?m WHERE {{ ?m {_SUBJECT} {node} }}")
        elif kind == "library":
            found = self._column(f"SELECT ?m WHERE {{ {node} {_HAS_PART} ?m }}")
        else:
            return []
        found.sort(reverse=True)
        return found

    def entries(self) -> list[str]:
        """Every entry IRI, newest first."""
        text = NamedNode(str(DCMITYPE.Text))
        found = self._column(f"SELECT ?m WHERE {{ ?m {_TYPE} {text} }}")
        found.sort(reverse=True)
        return found

    def concepts(self) -> list[str]:
        """The IRIs of the scheme's concepts, sorted."""
        scheme = NamedNode(self.iris.scheme)
        top = NamedNode(str(SKOS.hasTopConcept))
        quads = self.store.quads_for_pattern(scheme, top, None, _DEFAULT)
        return sorted(term_key(q.object) for q in quads)

    def category_counts(self) -> dict[str, int]:
        """Entries per concept. One aggregate query: 20x faster than iterating the quads in
        Python at 100k entries (0.1 s vs 2 s); called once per release and cached."""
        counts: dict[str, int] = {}
        for solution in self.store.query(_COUNTS_QUERY):  # type: ignore[union-attr]
            concept, count = solution[0], solution[1]
            if isinstance(concept, NamedNode) and isinstance(count, Literal):
                counts[concept.value] = int(count.value)
        return counts

    def describe(
        self, iri: str, page: int = 1, size: int = 100, members: Sequence[str] | None = None
    ) -> Description | None:
        """The description of a resource, or None when the store knows nothing about it.

        members: the precomputed members() list, when the caller caches it. A page past the
        last gives a description with no members (the caller answers 404).
        """
        iris = self.iris
        if iri in (iris.dataset, iris.void):
            void = self._void_triples()
            if not void:
                return None
            return Description(iri, "dataset", ordered(void, iris.dataset))
        node = _node(iri)
        if node is None:
            return None
        files = self._files_for(iri)
        if files is not None:
            own = files.triples(iri)
            kind = kind_of([term_key(t.object) for t in own if t.predicate == _TYPE])
        else:
            graph = self._graph_of(iri)
            quads = graph.quads_for_pattern(node, _TYPE, None, _DEFAULT)
            kind = kind_of([term_key(q.object) for q in quads])
            # The library's parts are paged like a concept's entries: left out here (the
            # context has none).
            if kind == "library" and graph is not self.context:
                own = self._own_but_parts(node)
            else:
                own = [q.triple for q in graph.quads_for_pattern(node, None, None, _DEFAULT)]
        if not own:
            return None
        extra: list[Triple] = []
        page_info: Page | None = None
        shown: list[str] = []
        if kind in ("concept", "library"):
            everyone = members if members is not None else self.members(iri, kind)
            page_info, shown, extra = page_of(iri, kind, everyone, page, size)
            if self.files is not None:
                extra.extend(self.files.titles_and_times(shown))
            else:
                store = self.store
                for m in shown:
                    member = NamedNode(m)
                    for predicate in (_TITLE, _CREATED):
                        quads = store.quads_for_pattern(member, predicate, None, _DEFAULT)
                        extra.extend(q.triple for q in quads)
        linked = [
            t.object.value for t in own if isinstance(t.object, NamedNode) and t.predicate != _TYPE
        ]
        extra += self._labels(dict.fromkeys(linked))
        return Description(iri, kind, ordered(own + extra, iri), shown, page_info)

    def close(self) -> None:
        """The entries' files closed; the store closes when the last reference goes."""
        if self.files is not None:
            self.files.close()

    def _files_for(self, iri: str) -> EntryFiles | None:
        """The release's files when they hold iri's description (an entry's), else None: the
        store answers."""
        files = self.files
        return files if files is not None and files.answers(iri) else None

    def _graph_of(self, iri: str) -> pyoxigraph.Store:
        """Where the triples of iri (not an entry the files answer for) are: the context when
        there is one, for any IRI outside the entries' space (the store holds nothing else
        about them but the library's parts); else, and for the linkset's statements about
        entries (<entry>#related-...), the store."""
        if self.context is not None and not iri.startswith(self.iris.entry_prefix):
            return self.context
        return self.store

    def _own_but_parts(self, node: NamedNode) -> list[Triple]:
        """The library's own triples but its dcterms:hasPart: a lookup per other predicate
        the VoID file's property partitions name (VoID §4.5: every predicate of the data), so
        a million parts are not read to be left out (a CONSTRUCT filtering them took 6 ms of
        CPU at 10k entries, 0.6 s at 1M); the CONSTRUCT without the file."""
        if self._predicates is None and self._void_file is not None:
            partition = str(VOID.property)
            self._predicates = sorted(
                {
                    t.object.value
                    for t in read_void(self._void_file, self.iris)
                    if t.predicate.value == partition and isinstance(t.object, NamedNode)
                }
                - {_HAS_PART.value}
            )
        if self._predicates is None:
            query = (
                f"CONSTRUCT {{ {node} ?p ?o }} WHERE {{ {node} ?p ?o FILTER(?p != {_HAS_PART}) }}"
            )
            return list(self.store.query(query))  # type: ignore[arg-type]
        return [
            q.triple
            for p in self._predicates
            for q in self.store.quads_for_pattern(node, NamedNode(p), None, _DEFAULT)
        ]

    def _void_triples(self) -> list[Triple]:
        """The VoID description: the release's file when given, else the store's VoID graph."""
        if self._void_file is not None:
            return read_void(self._void_file, self.iris)
        graph = NamedNode(self.iris.void)
        return [q.triple for q in self.store.quads_for_pattern(None, None, None, graph)]

    def _labels(self, iris: Iterable[str]) -> list[Triple]:
        """The titles and prefLabels of resources (what a person needs to show a link)."""
        out: list[Triple] = []
        for iri in iris:
            files = self._files_for(iri)
            if files is not None:
                out.extend(t for t in files.triples(iri) if t.predicate in _LABELS)
                continue
            node, graph = NamedNode(iri), self._graph_of(iri)
            for predicate in _LABELS:
                quads = graph.quads_for_pattern(node, predicate, None, _DEFAULT)
                out.extend(q.triple for q in quads)
        return out

    def _column(self, query: str) -> list[str]:
        """The IRIs of the one variable of a SELECT over the default graph.

        Long member lists are read once per release (the server caches them); one query
        yields one term per row and is 1.5-3x faster than iterating quads in Python at 100k
        entries (0.1 s vs 0.18-0.39 s for a category's 21k entries).
        """
        rows = self.store.query(query, use_default_graph_as_union=False)
        assert isinstance(rows, pyoxigraph.QuerySolutions)
        return [row[0].value for row in rows if isinstance(row[0], NamedNode)]


def _node(iri: str) -> NamedNode | None:
    """The IRI as a term, or None when it is not a valid IRI (a request path can be anything).
    A valid IRI holds no '<', '>', '"', space ..., so str(node) is safe inside a query."""
    try:
        return NamedNode(iri)
    except ValueError:
        return None


# Bytes of N-Triples per bulk load (whole lines): Oxigraph's loader holds a whole input in
# memory, several times its size. At 1M entries the triples before the first entry's (the
# library's million dcterms:hasPart: 173 MB) loaded at once took a build from 1.2 to 2.2 GiB.
STORE_BYTES = 16 << 20


class OxigraphLoader:
    """Writes a release's store into its folder (work/store); the folder's rename is the
    commit, its deletion the discard and the prune."""

    def __init__(self, path: Path, iris: Iris) -> None:
        self.path, self.iris = path, iris
        self._store: pyoxigraph.Store | None = None
        self._copied = False  # from the previous release's store: it holds its linkset

    def stage(
        self,
        converted: Converted,
        previous: Path | None,
        chunks: list[Chunk],
        index: dict[str, Any],
    ) -> None:
        """The current release's store updated by chunks when it can be, else a full load."""
        changes = None
        if previous is not None:
            changes = graph_changes(previous, converted, chunks, index)
        if changes is not None and previous is not None:
            try:
                self._store = _copy(previous / "store", self.path, changes, self.iris)
                self._copied = True
                return
            except (OSError, RuntimeError):  # RocksDB's own: Corruption, a lost file
                # The current store is missing or damaged: this build makes it anew, which is
                # what `kgpub serve` asks for when it refuses to serve such a release.
                pass
            shutil.rmtree(self.path, ignore_errors=True)
        self._store = _load(self.path, converted)

    def add_links(self, links: Links) -> None:
        """The linkset's triples into the default graph: all of them into a store loaded
        anew; into a store copied from the previous release's, which holds that release's
        links, only the lines that differ (the months of links that changed)."""
        store = self._staged()
        fmt = pyoxigraph.RdfFormat.N_TRIPLES
        if self._copied:
            for triple in pyoxigraph.parse(links.removed, fmt):
                store.remove(pyoxigraph.Quad(triple.subject, triple.predicate, triple.object))
            if links.added:
                store.load(links.added, format=fmt)
            return
        data = links.whole()
        if data:
            store.bulk_load(data, format=fmt)

    def add_void(self, void_ttl: bytes) -> None:
        store = self._staged()
        void_graph = NamedNode(self.iris.void)
        store.bulk_load(void_ttl, format=pyoxigraph.RdfFormat.TURTLE, to_graph=void_graph)

    def finish(self) -> dict[str, str]:
        self._staged().flush()
        self._store = None  # the store closes before its folder moves
        return {"backend": "oxigraph"}

    def discard(self) -> None:
        self._store = None  # the build removes the folder

    def prune(self, doomed: Sequence[Mapping[str, Any]], kept: Sequence[Mapping[str, Any]]) -> None:
        """Nothing beyond the folders the build deletes."""

    def _staged(self) -> pyoxigraph.Store:
        if self._store is None:
            raise PublicationError(f"{self.path}: no store staged")
        return self._store


def _load(path: Path, converted: Converted) -> pyoxigraph.Store:
    """A new on-disk store with the graph in its default graph, loaded STORE_BYTES of it at a
    time (the graph has no blank nodes: any cut between lines gives the same triples)."""
    store = pyoxigraph.Store(str(path))
    for piece in converted.text.pieces(STORE_BYTES):
        # Lenient: the build's own N-Triples, whose IRIs were checked as they were written
        # (graph/dumps.py _own_triples); 10-18% less of the loader's CPU.
        store.bulk_load(piece, format=pyoxigraph.RdfFormat.N_TRIPLES, lenient=True)
    return store


def _copy(previous: Path, target: Path, changes: GraphChanges, iris: Iris) -> pyoxigraph.Store:
    """The previous store, copied (a RocksDB checkpoint: hard links) to target, its VoID graph
    emptied and the changes applied."""
    pyoxigraph.Store.read_only(str(previous)).backup(str(target))
    store = pyoxigraph.Store(str(target))
    store.clear_graph(NamedNode(iris.void))
    fmt = pyoxigraph.RdfFormat.N_TRIPLES
    for triple in pyoxigraph.parse(changes.removed, fmt):
        store.remove(pyoxigraph.Quad(triple.subject, triple.predicate, triple.object, _DEFAULT))
    if changes.added:
        store.load(changes.added, format=fmt)
    return store
