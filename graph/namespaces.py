"""Vocabularies used by kgpub, as rdflib namespaces that reject typos."""

from __future__ import annotations

from rdflib.namespace import DCAT, DCMITYPE, DCTERMS, RDF, RDFS, SH, SKOS, VOID, XSD, Namespace

HYDRA = Namespace("http://www.w3.org/ns/hydra/core#")
SD = Namespace("http://www.w3.org/ns/sparql-service-description#")
AS = Namespace("https://www.w3.org/ns/activitystreams#")
SPDX = Namespace("http://spdx.org/rdf/terms#")
FOAF = Namespace("http://xmlns.com/foaf/0.1/")
FORMATS = Namespace("http://www.w3.org/ns/formats/")  # W3C format IRIs
ENTAILMENT = Namespace("http://www.w3.org/ns/entailment/")


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
