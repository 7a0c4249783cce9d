"""What is served for one resource (a Description), in what order, and its serializations.

A description holds the resource's own triples (it as subject, default graph) plus the titles
and labels of the resources it links to, so one request is enough to show it. Long lists are
paged, newest first: a concept's entries (inverse dcterms:subject) and the library's parts
(dcterms:hasPart); a page carries the member's subject/hasPart triple and its title and
created time. The dataset (and its VoID document) is described by the whole VoID named graph.
Each store backend (graph/store) gathers these triples its own way; the contract tests
(tests/test_resources.py) hold every backend to the same descriptions.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from typing import Literal as Kind

import pyoxigraph
from pyoxigraph import BlankNode, Literal, NamedNode, Triple

from graph import jsonld
from graph.dumps import dump_prefixes, strip_prefixes
from graph.errors import PublicationError
from graph.formats import JSONLD, TURTLE, RdfFormat
from graph.iris import Iris
from graph.namespaces import DCAT, DCMITYPE, DCTERMS, RDF, SKOS, VOID

Term = NamedNode | BlankNode | Literal | Triple
ResourceKind = Kind["entry", "concept", "scheme", "library", "dataset", "other"]

_TITLE = str(DCTERMS.title)
_PREF_LABEL = str(SKOS.prefLabel)
_HAS_PART = NamedNode(str(DCTERMS.hasPart))
_SUBJECT = NamedNode(str(DCTERMS.subject))
_KINDS: dict[str, ResourceKind] = {
    str(DCMITYPE.Text): "entry",
    str(SKOS.Concept): "concept",
    str(SKOS.ConceptScheme): "scheme",
    str(DCMITYPE.Collection): "library",
    str(VOID.Dataset): "dataset",
}
# Reading order of predicates in Turtle and HTML; others follow by IRI.
_ORDER = {
    p: i
    for i, p in enumerate(
        str(x)
        for x in (
            RDF.type,
            DCTERMS.identifier,
            SKOS.prefLabel,
            SKOS.notation,
            DCTERMS.title,
            DCTERMS.created,
            DCTERMS.modified,
            DCTERMS.description,
            DCTERMS.subject,
            SKOS.inScheme,
            SKOS.topConceptOf,
            SKOS.hasTopConcept,
            DCAT.themeTaxonomy,
            DCTERMS.isPartOf,
            DCTERMS.hasPart,
        )
    )
}


@dataclass(frozen=True)
class Page:
    """One page of a long list of members: 1-based number, size and the whole list's length."""

    number: int
    size: int
    total: int

    @property
    def last(self) -> int:
        return max(1, -(-self.total // self.size))

    @property
    def is_paged(self) -> bool:
        return self.total > self.size

    @property
    def start(self) -> int:
        return (self.number - 1) * self.size


@dataclass
class Description:
    """What is served for one IRI: triples, with lookups for rendering them to people."""

    iri: str
    kind: ResourceKind
    triples: list[Triple]
    members: list[str] = field(default_factory=list)  # this page's entries, newest first
    page: Page | None = None
    _index: dict[tuple[str, str], list[Term]] | None = None

    def _lookup(self) -> dict[tuple[str, str], list[Term]]:
        if self._index is None:
            index: dict[tuple[str, str], list[Term]] = {}
            for t in self.triples:
                index.setdefault((term_key(t.subject), t.predicate.value), []).append(t.object)
            self._index = index
        return self._index

    def objects(self, predicate: str, subject: str | None = None) -> list[str]:
        """Lexical values (IRIs or literal text) of a predicate; subject defaults to self."""
        return [term_key(o) for o in self._lookup().get((subject or self.iri, predicate), [])]

    def value(self, predicate: str, subject: str | None = None) -> str:
        """The first value of a predicate, or ''."""
        found = self.objects(predicate, subject)
        return found[0] if found else ""

    def label(self, iri: str) -> str:
        """A person's name for a resource: its title or prefLabel, else its IRI."""
        for predicate in (_TITLE, _PREF_LABEL):
            found = self.objects(predicate, iri)
            if found:
                return found[0]
        return iri

    def subjects(self) -> list[str]:
        """Every subject in the description, self first."""
        seen = dict.fromkeys([self.iri])
        for t in self.triples:
            seen.setdefault(term_key(t.subject))
        return list(seen)

    def properties(self, subject: str | None = None) -> list[tuple[str, list[Any]]]:
        """(predicate, terms) of a subject in reading order."""
        subject = subject or self.iri
        found = [(p, objs) for (s, p), objs in self._lookup().items() if s == subject]
        return sorted(found, key=lambda item: (_ORDER.get(item[0], len(_ORDER)), item[0]))


def term_key(term: Term) -> str:
    """A term's lexical value: an IRI or literal text, '_:' + a blank node's label."""
    if isinstance(term, BlankNode):
        return "_:" + term.value
    if isinstance(term, Triple):
        return str(term)
    return str(term.value)


def kind_of(types: Iterable[str]) -> ResourceKind:
    """The kind of resource, from its rdf:type IRIs."""
    for t in types:
        if t in _KINDS:
            return _KINDS[t]
    return "other"


def page_of(
    iri: str, kind: ResourceKind, members: Sequence[str], number: int, size: int
) -> tuple[Page, list[str], list[Triple]]:
    """One page of a concept's entries or the library's parts: where it is, the members it
    shows (newest first) and the links to them (the library's hasPart, a member's subject)."""
    page = Page(number, size, len(members))
    shown = list(members[page.start : page.start + size]) if number >= 1 else []
    node = NamedNode(iri)
    if kind == "library":
        links = [Triple(node, _HAS_PART, NamedNode(m)) for m in shown]
    else:
        links = [Triple(NamedNode(m), _SUBJECT, node) for m in shown]
    return page, shown, links


@functools.lru_cache(maxsize=8)
def read_void(path: Path, iris: Iris) -> list[Triple]:
    """The triples of a release's VoID file (void.ttl), which describe the dataset: read from
    the file, not a store, as every store rewrites some of its literals (Oxigraph stores an
    xsd:nonNegativeInteger as xsd:integer; Virtuoso a +00:00 offset as Z), and the description
    must be the same whichever store serves it. A release's file never changes: the last few
    read are kept."""
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise PublicationError(f"{path}: cannot read: {exc}") from exc
    quads = pyoxigraph.parse(text, pyoxigraph.RdfFormat.TURTLE, base_iri=iris.base)
    return [q.triple for q in quads]


def ordered(triples: list[Triple], first: str) -> list[Triple]:
    """Deterministic order: the described resource first, then others by IRI; predicates in
    reading order. Duplicates are dropped."""
    unique = list(dict.fromkeys(triples))
    where, last = _ORDER.get, len(_ORDER)

    def rank(t: Triple) -> tuple[bool, str, int, str, str]:
        # term_key inlined for the usual terms: a page sorts every triple it shows.
        subject, obj, predicate = t.subject, t.object, t.predicate.value
        if type(subject) is NamedNode:
            s = named = subject.value
        else:
            s = term_key(subject)
            named = "~" + s
        o = obj.value if type(obj) is NamedNode or type(obj) is Literal else term_key(obj)
        return (s != first, named, where(predicate, last), predicate, o)

    return sorted(unique, key=rank)


def serialize(description: Description, fmt: RdfFormat, iris: Iris) -> bytes:
    """The description in one RDF format; JSON-LD is compact against the published @context."""
    if fmt is JSONLD:
        return jsonld.document(description.triples, iris.context).encode("utf-8")
    prefixes = _used_prefixes(description.triples, dump_prefixes(iris))
    if fmt is TURTLE:
        body = pyoxigraph.serialize(description.triples, format=fmt.oxigraph, prefixes=prefixes)
        assert body is not None
        header = "".join(f"@prefix {p}: <{ns}> .\n" for p, ns in sorted(prefixes.items()))
        return header.encode("utf-8") + strip_prefixes(body)
    if fmt.oxigraph == pyoxigraph.RdfFormat.RDF_XML:
        body = pyoxigraph.serialize(description.triples, format=fmt.oxigraph, prefixes=prefixes)
    else:
        body = pyoxigraph.serialize(description.triples, format=fmt.oxigraph)
    assert body is not None
    return body


def _used_prefixes(triples: Iterable[Triple], prefixes: dict[str, str]) -> dict[str, str]:
    names: set[str] = set()
    for t in triples:
        names.add(t.predicate.value)
        for term in (t.subject, t.object):
            if isinstance(term, NamedNode):
                names.add(term.value)
            elif isinstance(term, Literal) and not term.language:
                names.add(term.datatype.value)
    used: dict[str, str] = {}
    for prefix, ns in prefixes.items():
        if any(n.startswith(ns) and len(n) > len(ns) for n in names):
            used[prefix] = ns
    return used
