"""Entries -> DCMI Terms + SKOS triples (pyoxigraph terms, in a deterministic order).

Model (README, "The model"):
  entry     a dcmitype:Text: dcterms:identifier, title@en, created xsd:dateTime,
            description@en, subject (concepts), isPartOf the library
  category  a skos:Concept: prefLabel@en, notation, inScheme, topConceptOf the scheme
  scheme    a skos:ConceptScheme: dcterms:title@en, skos:hasTopConcept
  library   a dcmitype:Collection: title@en, description@en, hasPart entries,
            dcat:themeTaxonomy the scheme
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from pyoxigraph import Literal, NamedNode, Triple

from graph.errors import ListingError
from graph.iris import Iris, concept_slug, entry_slug
from graph.listing import Entry, Page
from graph.namespaces import DCAT, DCMITYPE, DCTERMS, RDF, SKOS, XSD

_TYPE = NamedNode(str(RDF.type))
_TEXT = NamedNode(str(DCMITYPE.Text))
_COLLECTION = NamedNode(str(DCMITYPE.Collection))
_CONCEPT = NamedNode(str(SKOS.Concept))
_SCHEME = NamedNode(str(SKOS.ConceptScheme))
_TITLE = NamedNode(str(DCTERMS.title))
_CREATED = NamedNode(str(DCTERMS.created))
_DESCRIPTION = NamedNode(str(DCTERMS.description))
_SUBJECT = NamedNode(str(DCTERMS.subject))
_IDENTIFIER = NamedNode(str(DCTERMS.identifier))
_IS_PART_OF = NamedNode(str(DCTERMS.isPartOf))
_HAS_PART = NamedNode(str(DCTERMS.hasPart))
_THEME_TAXONOMY = NamedNode(str(DCAT.themeTaxonomy))
_PREF_LABEL = NamedNode(str(SKOS.prefLabel))
_NOTATION = NamedNode(str(SKOS.notation))
_IN_SCHEME = NamedNode(str(SKOS.inScheme))
_TOP_CONCEPT_OF = NamedNode(str(SKOS.topConceptOf))
_HAS_TOP_CONCEPT = NamedNode(str(SKOS.hasTopConcept))
_DATETIME = NamedNode(str(XSD.dateTime))
LANG = "en"


@dataclass(frozen=True)
class Category:
    """A category as published: its label, IRI and the place it was first read."""

    label: str
    iri: str
    notation: str


@dataclass(frozen=True)
class Converted:
    """The graph of a library, with what is needed to explain it to a person."""

    triples: list[Triple]
    entries: dict[str, Entry]  # entry IRI -> entry, in IRI order
    categories: dict[str, Category]  # concept IRI -> category, in IRI order
    title: str


def library_title(pages: Sequence[Page], default: str = "Library") -> str:
    """The library's title: what the page headings share before ' – <Category>'."""
    names = {p.heading.split(" – ")[0].strip() for p in pages if p.heading}
    return names.pop() if len(names) == 1 else default


def format_created(entry: Entry) -> str:
    """xsd:dateTime lexical form with the UK offset of that moment (+00:00 or +01:00)."""
    return entry.created.isoformat(timespec="seconds")


def collect_categories(entries: Sequence[Entry], iris: Iris) -> dict[str, Category]:
    """Each distinct category label becomes one concept; two labels may not share a slug."""
    found: dict[str, Category] = {}
    for entry in entries:
        for label in entry.categories:
            iri = iris.concept(label)
            seen = found.get(iri)
            if seen is None:
                found[iri] = Category(label, iri, concept_slug(label))
            elif seen.label != label:
                place = entry.places[0]
                raise ListingError(
                    place.file,
                    place.line,
                    f"category {label!r} and category {seen.label!r} would share the IRI <{iri}>; "
                    "expected category names that differ in more than case or punctuation",
                )
    return dict(sorted(found.items()))


def convert(entries: Sequence[Entry], iris: Iris, title: str) -> Converted:
    """Turn merged entries into the library's triples."""
    categories = collect_categories(entries, iris)
    by_iri: dict[str, Entry] = {}
    for entry in entries:
        by_iri[iris.base + "entry/" + entry_slug(entry.title, entry.created)] = entry
    by_iri = dict(sorted(by_iri.items()))
    return Converted(list(_triples(by_iri, categories, iris, title)), by_iri, categories, title)


def describe_holdings(n_entries: int, n_categories: int) -> str:
    """The library's description: what it holds."""
    return (
        f"A library of {n_entries} document{'s' * (n_entries != 1)} (reports, guidance, acts) "
        f"in {n_categories} categor{'ies' if n_categories != 1 else 'y'}, "
        "each with its title, the date and time it was added, its categories and a description."
    )


def _triples(
    entries: dict[str, Entry], categories: dict[str, Category], iris: Iris, title: str
) -> Iterator[Triple]:
    library = NamedNode(iris.library)
    scheme = NamedNode(iris.scheme)
    yield Triple(library, _TYPE, _COLLECTION)
    yield Triple(library, _TITLE, Literal(title, language=LANG))
    yield Triple(
        library, _DESCRIPTION, Literal(describe_holdings(len(entries), len(categories)), language=LANG)
    )
    yield Triple(library, _THEME_TAXONOMY, scheme)
    for iri in entries:
        yield Triple(library, _HAS_PART, NamedNode(iri))

    yield Triple(scheme, _TYPE, _SCHEME)
    yield Triple(scheme, _TITLE, Literal(f"Categories of {title}", language=LANG))
    for iri in categories:
        yield Triple(scheme, _HAS_TOP_CONCEPT, NamedNode(iri))

    for iri, category in categories.items():
        concept = NamedNode(iri)
        yield Triple(concept, _TYPE, _CONCEPT)
        yield Triple(concept, _PREF_LABEL, Literal(category.label, language=LANG))
        yield Triple(concept, _NOTATION, Literal(category.notation))
        yield Triple(concept, _IN_SCHEME, scheme)
        yield Triple(concept, _TOP_CONCEPT_OF, scheme)

    concept_nodes = {c.label: NamedNode(iri) for iri, c in categories.items()}
    for iri, entry in entries.items():
        node = NamedNode(iri)
        yield Triple(node, _TYPE, _TEXT)
        yield Triple(node, _IDENTIFIER, Literal(iri.rsplit("/", 1)[1]))
        yield Triple(node, _TITLE, Literal(entry.title, language=LANG))
        yield Triple(node, _CREATED, Literal(format_created(entry), datatype=_DATETIME))
        if entry.description:
            yield Triple(node, _DESCRIPTION, Literal(entry.description, language=LANG))
        for label in sorted(entry.categories, key=lambda c: concept_nodes[c].value):
            yield Triple(node, _SUBJECT, concept_nodes[label])
        yield Triple(node, _IS_PART_OF, library)
