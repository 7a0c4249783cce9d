"""THE table of RDF representations: media type, file suffix, rdflib and Oxigraph names."""

from __future__ import annotations

from dataclasses import dataclass

import pyoxigraph


@dataclass(frozen=True)
class RdfFormat:
    """One RDF serialization kgpub publishes and serves."""

    key: str  # short name, used in ?format= and settings
    media_type: str
    suffix: str  # file and URL suffix, with the dot
    rdflib: str  # rdflib serializer/parser name
    oxigraph: pyoxigraph.RdfFormat
    label: str


TURTLE = RdfFormat("turtle", "text/turtle", ".ttl", "turtle", pyoxigraph.RdfFormat.TURTLE, "Turtle")
NTRIPLES = RdfFormat(
    "ntriples", "application/n-triples", ".nt", "nt", pyoxigraph.RdfFormat.N_TRIPLES, "N-Triples"
)
JSONLD = RdfFormat(
    "jsonld", "application/ld+json", ".jsonld", "json-ld", pyoxigraph.RdfFormat.JSON_LD, "JSON-LD"
)
RDFXML = RdfFormat(
    "rdfxml", "application/rdf+xml", ".rdf", "xml", pyoxigraph.RdfFormat.RDF_XML, "RDF/XML"
)

RDF_FORMATS: tuple[RdfFormat, ...] = (TURTLE, JSONLD, NTRIPLES, RDFXML)
# The dumps a publication carries (each also gzipped).
DUMP_FORMATS: tuple[RdfFormat, ...] = (TURTLE, NTRIPLES, JSONLD, RDFXML)

HTML_MEDIA_TYPE = "text/html"
HTML_SUFFIX = ".html"
GZIP_MEDIA_TYPE = "application/gzip"
GZIP_SUFFIX = ".gz"

# SPARQL 1.1 Query Results formats (JSON, XML, CSV, TSV).
SPARQL_RESULTS_JSON = "application/sparql-results+json"
SPARQL_RESULTS_XML = "application/sparql-results+xml"
SPARQL_RESULTS_CSV = "text/csv"
SPARQL_RESULTS_TSV = "text/tab-separated-values"
SPARQL_QUERY = "application/sparql-query"
SPARQL_UPDATE = "application/sparql-update"


def by_suffix(suffix: str) -> RdfFormat | None:
    """The RDF format published under a URL or file suffix such as '.ttl'."""
    return next((f for f in RDF_FORMATS if f.suffix == suffix), None)


def by_media_type(media_type: str) -> RdfFormat | None:
    """The RDF format of a media type such as 'text/turtle'."""
    return next((f for f in RDF_FORMATS if f.media_type == media_type), None)


def by_key(key: str) -> RdfFormat | None:
    """The RDF format named by its short key, suffix or media type."""
    return next(
        (f for f in RDF_FORMATS if key in (f.key, f.suffix.lstrip("."), f.media_type)), None
    )
