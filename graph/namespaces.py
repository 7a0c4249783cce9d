"""Vocabularies used by kgpub, as rdflib namespaces that reject typos."""

from __future__ import annotations

from rdflib import URIRef
from rdflib.namespace import (
    DCAT,
    DCMITYPE,
    DCTERMS,
    RDF,
    RDFS,
    SH,
    SKOS,
    VOID,
    XSD,
    DefinedNamespace,
    Namespace,
)

HYDRA = Namespace("http://www.w3.org/ns/hydra/core#")
SD = Namespace("http://www.w3.org/ns/sparql-service-description#")
AS = Namespace("https://www.w3.org/ns/activitystreams#")
SPDX = Namespace("http://spdx.org/rdf/terms#")
FOAF = Namespace("http://xmlns.com/foaf/0.1/")
FORMATS = Namespace("http://www.w3.org/ns/formats/")  # W3C format IRIs
ENTAILMENT = Namespace("http://www.w3.org/ns/entailment/")
OWL = Namespace("http://www.w3.org/2002/07/owl#")


class KGPUB(DefinedNamespace):
    """kgpub's own terms (README, "kgpub's vocabulary"): what no common vocabulary says."""

    related: URIRef  # an entry close in meaning to this one (rdfs:subPropertyOf dcterms:relation)
    score: URIRef  # closeness in meaning, cosine of the two texts' vectors (xsd:decimal, 0..1)
    searchRank: URIRef  # noqa: N815 (the term's name) — place of a hit in a search's list, from 1 (xsd:integer)
    matchedBy: URIRef  # noqa: N815 — how a search found a hit: "words" or "meaning"

    _NS = Namespace("https://w3id.org/kgpub/ns#")
    _fail = True


PREFIXES: dict[str, str] = {
    "dcterms": str(DCTERMS),
    "dcmitype": str(DCMITYPE),
    "skos": str(SKOS),
    "xsd": str(XSD),
    "rdf": str(RDF),
    "rdfs": str(RDFS),
    "void": str(VOID),
    "dcat": str(DCAT),
    "sh": str(SH),
    "foaf": str(FOAF),
    "owl": str(OWL),
    "kgpub": str(KGPUB),
}

__all__ = [
    "AS",
    "DCAT",
    "DCMITYPE",
    "DCTERMS",
    "ENTAILMENT",
    "FOAF",
    "FORMATS",
    "HYDRA",
    "KGPUB",
    "OWL",
    "PREFIXES",
    "RDF",
    "RDFS",
    "SD",
    "SH",
    "SKOS",
    "SPDX",
    "VOID",
    "XSD",
]
