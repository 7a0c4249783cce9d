"""kgpub's own vocabulary (https://w3id.org/kgpub/ns#, graph/namespaces.py KGPUB) described in
RDF: what each term means (rdfs:label, rdfs:comment, rdfs:domain, rdfs:range), so that a
reader who meets `kgpub:related` in a dump can look it up.

The server serves it at <base>vocabulary in every representation (server/views/pages.py); VoID
names it (void:vocabulary, graph/describe.py); README ("kgpub's vocabulary") lists the same
terms. tests/test_enrich_default.py checks that every term of the closed namespace has its row
here and no row names a term it lacks.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyoxigraph import Literal, NamedNode, Triple
from rdflib import URIRef

from graph.iris import Iris
from graph.namespaces import DCMITYPE, DCTERMS, FOAF, KGPUB, OWL, RDF, RDFS, XSD

ONTOLOGY = str(KGPUB)[:-1]  # https://w3id.org/kgpub/ns: the vocabulary itself (owl:Ontology)
TITLE = "kgpub vocabulary"
DESCRIPTION = (
    "The few terms kgpub publishes that no common vocabulary has: links between entries close "
    "in meaning, their closeness, and how a search found its hits."
)


@dataclass(frozen=True)
class Term:
    """One term of the vocabulary and what it means."""

    name: str  # local name in https://w3id.org/kgpub/ns#
    kind: URIRef  # owl:ObjectProperty or owl:DatatypeProperty
    label: str
    comment: str
    domain: URIRef | None
    range: URIRef | None
    parent: URIRef | None = None  # rdfs:subPropertyOf


TERMS: tuple[Term, ...] = (
    Term(
        "related",
        OWL.ObjectProperty,
        "related entry",
        "An entry close in meaning to this one: one of its five nearest neighbours by the cosine "
        "of the sentence embeddings (all-MiniLM-L6-v2) of the two entries' titles and "
        "descriptions, at least 0.5, computed at build time (kgpub build --enrich). Each link's "
        "closeness is given by an rdf:Statement about it with kgpub:score, in the related "
        "entries' linkset.",
        URIRef(str(DCMITYPE.Text)),
        URIRef(str(DCMITYPE.Text)),
        URIRef(str(DCTERMS.relation)),
    ),
    Term(
        "score",
        OWL.DatatypeProperty,
        "score",
        "Closeness in meaning: the cosine of two texts' vectors, from 0 to 1, three decimal "
        "places. Of a kgpub:related link (its rdf:Statement) or of a hit of a meaning search.",
        None,
        URIRef(str(XSD.decimal)),
    ),
    Term(
        "searchRank",
        OWL.DatatypeProperty,
        "search rank",
        "The place of a hit in a search's list of results, from 1 over the whole list (not "
        "the page).",
        URIRef(str(DCMITYPE.Text)),
        URIRef(str(XSD.integer)),
    ),
    Term(
        "matchedBy",
        OWL.DatatypeProperty,
        "matched by",
        'How a search found a hit: "words" (the entry holds the words searched for) or '
        '"meaning" (close in meaning to them only).',
        URIRef(str(DCMITYPE.Text)),
        URIRef(str(XSD.string)),
    ),
)


def vocabulary_triples(iris: Iris) -> list[Triple]:
    """The vocabulary as RDF: the ontology, the document that serves it, each term."""
    ontology = NamedNode(ONTOLOGY)
    document = NamedNode(iris.vocabulary)
    label, comment = NamedNode(str(RDFS.label)), NamedNode(str(RDFS.comment))
    kind, defined = NamedNode(str(RDF.type)), NamedNode(str(RDFS.isDefinedBy))
    out = [
        Triple(ontology, kind, NamedNode(str(OWL.Ontology))),
        Triple(ontology, NamedNode(str(DCTERMS.title)), Literal(TITLE, language="en")),
        Triple(ontology, NamedNode(str(DCTERMS.description)), Literal(DESCRIPTION, language="en")),
        Triple(ontology, NamedNode(str(RDFS.seeAlso)), document),
        Triple(document, NamedNode(str(FOAF.primaryTopic)), ontology),
    ]
    for term in TERMS:
        node = NamedNode(str(KGPUB) + term.name)
        out += [
            Triple(node, kind, NamedNode(str(RDF.Property))),
            Triple(node, kind, NamedNode(str(term.kind))),
            Triple(node, label, Literal(term.label, language="en")),
            Triple(node, comment, Literal(term.comment, language="en")),
            Triple(node, defined, ontology),
        ]
        if term.domain is not None:
            out.append(Triple(node, NamedNode(str(RDFS.domain)), NamedNode(str(term.domain))))
        if term.range is not None:
            out.append(Triple(node, NamedNode(str(RDFS.range)), NamedNode(str(term.range))))
        if term.parent is not None:
            out.append(
                Triple(node, NamedNode(str(RDFS.subPropertyOf)), NamedNode(str(term.parent)))
            )
    return out
