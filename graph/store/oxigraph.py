"""The embedded backend: a release's Oxigraph store on disk, read by triple patterns.

Serving asks its questions of an OxigraphReader (graph/store Reader): an entry, the scheme and
the dataset are described by triple patterns only (no SPARQL is parsed on the per-request
path: rdflib's and Oxigraph's parsers cost milliseconds a query). What is read once per
release and cached by the server (member lists, counts per category, the library's own
triples beside its 100k hasPart) uses small SELECT/CONSTRUCT queries, which are faster than
iterating quads in Python for long lists. The build side (load, copy by chunks) and the read-only
opening used by the query children live here too: no other module touches pyoxigraph.Store.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import pyoxigraph
from pyoxigraph import DefaultGraph, Literal, NamedNode, Triple

from graph.errors import PublicationError
from graph.iris import Iris
from graph.namespaces import DCMITYPE, DCTERMS, RDF, SKOS
from graph.resources import Description, Page, ResourceKind, kind_of, ordered, term_key

_TYPE = NamedNode(str(RDF.type))
_TITLE = NamedNode(str(DCTERMS.title))
_CREATED = NamedNode(str(DCTERMS.created))
_SUBJECT = NamedNode(str(DCTERMS.subject))
_HAS_PART = NamedNode(str(DCTERMS.hasPart))
_PREF_LABEL = NamedNode(str(SKOS.prefLabel))
_LABELS = (_TITLE, _PREF_LABEL)
_DEFAULT = DefaultGraph()
_COUNTS_QUERY = f"SELECT ?c (COUNT(?e) AS ?n) WHERE {{ ?e <{DCTERMS.subject}> ?c }} GROUP BY ?c"


def open_read_only(path: Path | str) -> pyoxigraph.Store:
    """A release's store opened read-only (any number of processes may hold it open)."""
    try:
        return pyoxigraph.Store.read_only(str(path))
    except OSError as exc:
        raise PublicationError(f"{path}: cannot open the store: {exc}") from exc


class OxigraphReader:
    """The Reader of one release's Oxigraph store; thread-safe (Oxigraph's reads are)."""

    def __init__(self, store: pyoxigraph.Store, iris: Iris) -> None:
        self.store, self.iris = store, iris

    @classmethod
    def open(cls, path: Path | str, iris: Iris) -> OxigraphReader:
        """The reader of the store at path, opened read-only."""
        return cls(open_read_only(path), iris)

    def exists(self, iri: str) -> bool:
        """Whether the default graph has a triple about the IRI (False for a non-IRI)."""
        node = _node(iri)
        if node is None:
            return False
        return (
            next(iter(self.store.quads_for_pattern(node, None, None, _DEFAULT)), None) is not None
        )

    def triples(self, iri: str) -> list[Triple]:
        """The triples with the IRI as subject, in the default graph ([] for a non-IRI)."""
        node = _node(iri)
        if node is None:
            return []
        return [q.triple for q in self.store.quads_for_pattern(node, None, None, _DEFAULT)]

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
        store, iris = self.store, self.iris
        if iri in (iris.dataset, iris.void):
            void_graph = NamedNode(iris.void)
            void = [q.triple for q in store.quads_for_pattern(None, None, None, void_graph)]
            if not void:
                return None
            return Description(iri, "dataset", ordered(void, iris.dataset))
        node = _node(iri)
        if node is None:
            return None
        types = [term_key(q.object) for q in store.quads_for_pattern(node, _TYPE, None, _DEFAULT)]
        kind = kind_of(types)
        if kind == "library":  # its parts are paged like a concept's entries: skip them here
            query = (
                f"CONSTRUCT {{ {node} ?p ?o }} WHERE {{ {node} ?p ?o FILTER(?p != {_HAS_PART}) }}"
            )
            own: list[Triple] = list(store.query(query))  # type: ignore[arg-type]
        else:
            own = self.triples(iri)
        if not own:
            return None
        extra: list[Triple] = []
        page_info: Page | None = None
        shown: list[str] = []
        if kind in ("concept", "library"):
            everyone = list(members) if members is not None else self.members(iri, kind)
            page_info = Page(page, size, len(everyone))
            shown = everyone[page_info.start : page_info.start + size] if page >= 1 else []
            if kind == "library":
                extra += [Triple(node, _HAS_PART, NamedNode(m)) for m in shown]
            else:
                extra += [Triple(NamedNode(m), _SUBJECT, node) for m in shown]
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
        """Nothing to release: the store closes when the last reference goes."""

    def _labels(self, iris: Iterable[str]) -> list[Triple]:
        """The titles and prefLabels of resources (what a person needs to show a link)."""
        out: list[Triple] = []
        for iri in iris:
            node = NamedNode(iri)
            for predicate in _LABELS:
                quads = self.store.quads_for_pattern(node, predicate, None, _DEFAULT)
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
