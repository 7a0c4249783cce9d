"""VoID + DCAT description of a publication: the dataset, its dumps, its SPARQL service and
its search (with the search's Hydra IRI template, which the search's own pages repeat)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import rdflib
from pyoxigraph import NamedNode, Triple
from rdflib import BNode, Literal, URIRef
from rdflib.namespace import DCAT, DCTERMS, FOAF, RDF, RDFS, VOID, XSD

from graph import formats
from graph.iris import Iris
from graph.namespaces import AS, ENTAILMENT, FORMATS, HYDRA, KGPUB, PREFIXES, SD, SPDX


@dataclass(frozen=True)
class DumpFile:
    """One published dump file."""

    filename: str
    media_type: str
    label: str
    size: int
    sha256: str
    compressed: bool


@dataclass(frozen=True)
class Linkset:
    """A set of links the dataset publishes (VoID §5.1, void:Linkset), a subset of it: the
    related entries (graph/enrich/linkset.py, a dump of its own) or the publishers' owl:sameAs
    (in the library's dumps)."""

    name: str  # <void>#linkset-<name>
    title: str
    predicate: str  # void:linkPredicate
    triples: int  # links
    # void:objectsTarget: another dataset ("": this one; None: not one dataset)
    objects_target: str | None = ""
    dumps: tuple[DumpFile, ...] = ()  # its own dumps (else it is in the dataset's)


@dataclass(frozen=True)
class DatasetInfo:
    """What the description says beyond counts: from settings and the build."""

    title: str
    description: str
    issued: str  # xsd:dateTime of the first build of the publication
    license: str = ""
    publisher: str = ""
    modified: str = ""  # xsd:dateTime of the last build that changed the data ("": issued)


def describe_dataset(
    iris: Iris,
    info: DatasetInfo,
    triples: Sequence[Triple] | Statistics,
    dumps: Sequence[DumpFile],
    example: str | None,
    linksets: Sequence[Linkset] = (),
) -> rdflib.Graph:
    """The VoID and DCAT description of the dataset, its dumps and its SPARQL endpoint.

    The counts come from triples, or from Statistics already known (graph/convert.py keeps
    them while it writes the graph: no second pass over the triples).
    """
    g = rdflib.Graph()
    for prefix, ns in PREFIXES.items():
        g.bind(prefix, ns)
    g.bind("sd", str(SD))
    g.bind("spdx", str(SPDX))
    g.bind("foaf", str(FOAF))
    ds = URIRef(iris.dataset)
    void_doc = URIRef(iris.void)
    g.add((void_doc, RDF.type, VOID.DatasetDescription))
    g.add((void_doc, DCTERMS.title, Literal(f"VoID description of {info.title}", lang="en")))
    g.add((void_doc, FOAF.primaryTopic, ds))

    g.add((ds, RDF.type, VOID.Dataset))
    g.add((ds, RDF.type, DCAT.Dataset))
    g.add((ds, DCTERMS.title, Literal(info.title, lang="en")))
    g.add((ds, DCTERMS.description, Literal(info.description, lang="en")))
    g.add((ds, DCTERMS.issued, Literal(info.issued, datatype=XSD.dateTime)))
    g.add((ds, DCTERMS.modified, Literal(info.modified or info.issued, datatype=XSD.dateTime)))
    g.add((ds, FOAF.homepage, URIRef(iris.base)))
    g.add((ds, DCAT.landingPage, URIRef(iris.base)))
    g.add((ds, FOAF.primaryTopic, URIRef(iris.library)))
    if info.license:
        g.add((ds, DCTERMS.license, URIRef(info.license)))
    if info.publisher:
        publisher = URIRef(info.publisher) if "://" in info.publisher else None
        if publisher is None:
            node = URIRef(iris.void + "#publisher")
            g.add((node, RDF.type, FOAF.Organization))
            g.add((node, FOAF.name, Literal(info.publisher)))
            g.add((ds, DCTERMS.publisher, node))
        else:
            g.add((ds, DCTERMS.publisher, publisher))
    g.add((ds, VOID.uriSpace, Literal(iris.base)))
    g.add((ds, VOID.sparqlEndpoint, URIRef(iris.sparql)))
    g.add((ds, VOID.rootResource, URIRef(iris.library)))
    if example:
        g.add((ds, VOID.exampleResource, URIRef(example)))
    g.add((ds, VOID.exampleResource, URIRef(iris.scheme)))
    g.add((ds, DCAT.themeTaxonomy, URIRef(iris.scheme)))

    stats = triples if isinstance(triples, Statistics) else statistics(triples)
    _add_statistics(g, ds, stats, iris.void)
    # kgpub's own terms (graph/vocabulary.py), described at <base>vocabulary.
    g.add((ds, VOID.vocabulary, URIRef(str(KGPUB))))
    g.add((URIRef(str(KGPUB)), RDFS.isDefinedBy, URIRef(iris.vocabulary)))
    for linkset in linksets:
        _add_linkset(g, ds, iris, linkset)

    for dump in [*dumps, *(d for linkset in linksets for d in linkset.dumps)]:
        url = URIRef(iris.dump(dump.filename))
        g.add((ds, VOID.dataDump, url))
        dist = URIRef(iris.dump(dump.filename) + "#distribution")
        g.add((ds, DCAT.distribution, dist))
        g.add((dist, RDF.type, DCAT.Distribution))
        g.add((dist, DCTERMS.title, Literal(f"{dump.label} dump", lang="en")))
        g.add((dist, DCAT.downloadURL, url))
        g.add((dist, DCAT.accessURL, url))
        g.add((dist, DCAT.byteSize, Literal(dump.size, datatype=XSD.nonNegativeInteger)))
        if dump.compressed:
            g.add((dist, DCAT.mediaType, _iana(dump.media_type)))
            g.add((dist, DCAT.compressFormat, _iana("application/gzip")))
        else:
            g.add((dist, DCAT.mediaType, _iana(dump.media_type)))
        checksum = URIRef(iris.dump(dump.filename) + "#checksum")
        g.add((dist, SPDX.checksum, checksum))
        g.add((checksum, RDF.type, SPDX.Checksum))
        g.add((checksum, SPDX.algorithm, SPDX.checksumAlgorithm_sha256))
        g.add((checksum, SPDX.checksumValue, Literal(dump.sha256, datatype=XSD.hexBinary)))
        if info.license:
            g.add((dist, DCTERMS.license, URIRef(info.license)))

    service = URIRef(iris.sparql)
    g.add((service, RDF.type, DCAT.DataService))
    g.add((service, DCTERMS.title, Literal(f"SPARQL endpoint of {info.title}", lang="en")))
    g.add((service, DCAT.endpointURL, service))
    g.add((service, DCAT.servesDataset, ds))
    g.add((service, DCTERMS.conformsTo, URIRef("https://www.w3.org/TR/sparql11-protocol/")))
    g.add((ds, DCAT.accessService, service))
    _add_harvesting(g, ds, iris, info.title)
    _add_search(g, ds, iris, info.title)
    return g


def _add_linkset(g: rdflib.Graph, ds: URIRef, iris: Iris, linkset: Linkset) -> None:
    """A void:Linkset, subset of the dataset (VoID §5.1, §5.2): its predicate, targets,
    count and dumps (their DCAT distributions are the dataset's, with the others)."""
    node = URIRef(f"{iris.void}#linkset-{linkset.name}")
    g.add((ds, VOID.subset, node))
    g.add((node, RDF.type, VOID.Linkset))
    g.add((node, DCTERMS.title, Literal(linkset.title, lang="en")))
    g.add((node, VOID.linkPredicate, URIRef(linkset.predicate)))
    g.add((node, VOID.subjectsTarget, ds))
    if linkset.objects_target is not None:
        target = URIRef(linkset.objects_target) if linkset.objects_target else ds
        g.add((node, VOID.objectsTarget, target))
    g.add((node, VOID.triples, Literal(linkset.triples, datatype=XSD.integer)))
    for dump in linkset.dumps:
        g.add((node, VOID.dataDump, URIRef(iris.dump(dump.filename))))
        g.add((node, DCAT.distribution, URIRef(iris.dump(dump.filename) + "#distribution")))


# The search (graph/index.py, server/views/search.py) as an IRI template (Hydra Core §5.1,
# RFC 6570 form-style query expansion): each variable, the property its value stands for,
# and what a client puts there. A category is its notation or its IRI; several categories
# or years are comma-separated (or the parameter repeated); sort is left to the pages' links.
SEARCH_TEMPLATE = "{?q,category,year,publisher,page}"
SEARCH_MAPPINGS: tuple[tuple[str, str, str], ...] = (
    ("q", str(HYDRA.freetextQuery), "words to find in titles and descriptions, all of them"),
    ("category", str(DCTERMS.subject), "a category's notation or IRI; entries in every one"),
    ("year", str(DCTERMS.created), "a year (YYYY) an entry was added in; any of them"),
    (
        "publisher",
        str(DCTERMS.publisher),
        "a publisher's id or IRI (<base>publisher/<id>); entries of every one",
    ),
    ("page", str(HYDRA.pageIndex), "the page of results, from 1"),
)


def search_iri(iris: Iris) -> str:
    """The IRI of the search (its results in the negotiated format)."""
    return iris.base + "search"


def _add_search(g: rdflib.Graph, ds: URIRef, iris: Iris, title: str) -> None:
    """The search as a data service of the dataset, and its IRI template (hydra:search)."""
    service = URIRef(search_iri(iris))
    g.add((service, RDF.type, DCAT.DataService))
    g.add((service, DCTERMS.title, Literal(f"Search of {title}", lang="en")))
    g.add((service, DCAT.endpointURL, service))
    g.add((service, DCAT.servesDataset, ds))
    g.add((service, DCTERMS.conformsTo, URIRef("https://www.hydra-cg.com/spec/latest/core/")))
    g.add((ds, DCAT.accessService, service))
    template = URIRef(search_iri(iris) + "#template")
    g.add((ds, HYDRA.search, template))
    g.add((service, HYDRA.search, template))
    g.add((template, RDF.type, HYDRA.IriTemplate))
    g.add((template, HYDRA.template, Literal(search_iri(iris) + SEARCH_TEMPLATE)))
    g.add((template, HYDRA.variableRepresentation, HYDRA.BasicRepresentation))
    for variable, prop, comment in SEARCH_MAPPINGS:
        mapping = URIRef(f"{search_iri(iris)}#{variable}")
        g.add((template, HYDRA.mapping, mapping))
        g.add((mapping, RDF.type, HYDRA.IriTemplateMapping))
        g.add((mapping, HYDRA.variable, Literal(variable)))
        g.add((mapping, HYDRA.property, URIRef(prop)))
        g.add((mapping, HYDRA.required, Literal(False)))
        g.add((mapping, RDFS.comment, Literal(comment, lang="en")))


# What harvesters read (README, "Harvesting"): the change feed and OAI-PMH as data services,
# the paged collection of all entries as a hydra:Collection.
def _add_harvesting(g: rdflib.Graph, ds: URIRef, iris: Iris, title: str) -> None:
    g.bind("hydra", str(HYDRA))
    g.bind("as", str(AS))
    for url, label, spec in (
        (iris.changes, "Change feed", "https://www.w3.org/TR/activitystreams-core/"),
        (
            iris.oai,
            "OAI-PMH repository",
            "http://www.openarchives.org/OAI/2.0/openarchivesprotocol.htm",
        ),
    ):
        service = URIRef(url)
        g.add((service, RDF.type, DCAT.DataService))
        g.add((service, DCTERMS.title, Literal(f"{label} of {title}", lang="en")))
        g.add((service, DCAT.endpointURL, service))
        g.add((service, DCAT.servesDataset, ds))
        g.add((service, DCTERMS.conformsTo, URIRef(spec)))
        g.add((ds, DCAT.accessService, service))
    g.add((URIRef(iris.changes), RDF.type, AS.OrderedCollection))
    collection = URIRef(iris.entries_collection)
    g.add((collection, RDF.type, HYDRA.Collection))
    g.add((ds, HYDRA.collection, collection))


def _iana(media_type: str) -> URIRef:
    return URIRef("https://www.iana.org/assignments/media-types/" + media_type)


@dataclass(frozen=True)
class Statistics:
    """What VoID counts of a graph (§4.5, §4.6): triples, distinct subjects and IRI objects,
    triples per property, entities per class."""

    triples: int
    subjects: int
    objects: int
    properties: Counter[str]
    classes: Counter[str]


def statistics(triples: Iterable[Triple]) -> Statistics:
    """Count a graph's triples for VoID, one pass over them."""
    type_iri = str(RDF.type)
    classes: Counter[str] = Counter()
    properties: Counter[str] = Counter()
    subjects: set[str] = set()
    objects: set[str] = set()
    count = 0
    for t in triples:
        count += 1
        subjects.add(_node_id(t.subject))
        properties[t.predicate.value] += 1
        if isinstance(t.object, NamedNode):
            objects.add(t.object.value)
            if t.predicate.value == type_iri:
                classes[t.object.value] += 1
    return Statistics(count, len(subjects), len(objects), properties, classes)


def _add_statistics(g: rdflib.Graph, ds: URIRef, stats: Statistics, document: str) -> None:
    """void:triples, entities, classes and class/property partitions (VoID §4.5, §4.6).

    The partitions (and the checksums, the publisher) are named in the VoID document
    (<document#class-Text>), not blank nodes: they keep their names in the store and across
    builds, so the VoID resource is the same bytes after a rebuild of the same data, and a
    SPARQL query can name them."""
    classes, properties = stats.classes, stats.properties
    vocabularies: set[str] = set()
    for iri in [*properties, *classes]:
        for ns in PREFIXES.values():
            if iri.startswith(ns):
                vocabularies.add(ns)
    g.add((ds, VOID.triples, Literal(stats.triples, datatype=XSD.integer)))
    g.add((ds, VOID.entities, Literal(stats.subjects, datatype=XSD.integer)))
    g.add((ds, VOID.distinctSubjects, Literal(stats.subjects, datatype=XSD.integer)))
    g.add((ds, VOID.distinctObjects, Literal(stats.objects, datatype=XSD.integer)))
    g.add((ds, VOID.classes, Literal(len(classes), datatype=XSD.integer)))
    g.add((ds, VOID.properties, Literal(len(properties), datatype=XSD.integer)))
    for ns in sorted(vocabularies):
        g.add((ds, VOID.vocabulary, URIRef(ns)))
    for cls, count in sorted(classes.items()):
        part = URIRef(f"{document}#class-{cls.rsplit('/', 1)[-1].rsplit('#', 1)[-1]}")
        g.add((ds, VOID.classPartition, part))
        g.add((part, VOID["class"], URIRef(cls)))
        g.add((part, VOID.entities, Literal(count, datatype=XSD.integer)))
    for prop, count in sorted(properties.items()):
        part = URIRef(f"{document}#property-{_local(prop)}")
        g.add((ds, VOID.propertyPartition, part))
        g.add((part, VOID.property, URIRef(prop)))
        g.add((part, VOID.triples, Literal(count, datatype=XSD.integer)))


def _node_id(node: Any) -> str:
    return str(node.value)


def _local(iri: str) -> str:
    for prefix, ns in PREFIXES.items():
        if iri.startswith(ns):
            return f"{prefix}-{iri[len(ns) :]}"
    return iri.rsplit("/", 1)[-1]


# W3C format IRIs (https://www.w3.org/ns/formats/) of the media types the endpoint serves.
_W3C_FORMATS = {
    formats.SPARQL_RESULTS_JSON: "SPARQL_Results_JSON",
    formats.SPARQL_RESULTS_XML: "SPARQL_Results_XML",
    formats.SPARQL_RESULTS_CSV: "SPARQL_Results_CSV",
    formats.SPARQL_RESULTS_TSV: "SPARQL_Results_TSV",
    formats.TURTLE.media_type: "Turtle",
    formats.NTRIPLES.media_type: "N-Triples",
    formats.JSONLD.media_type: "JSON-LD",
    formats.RDFXML.media_type: "RDF_XML",
}


def describe_service(iris: Iris, media_types: Sequence[str]) -> rdflib.Graph:
    """SPARQL 1.1 Service Description of the endpoint, claiming only what it does.

    The default dataset: the default graph is the library data, the VoID dataset <dataset>;
    one named graph, <.well-known/void>, holds the VoID description. No sd:feature is claimed:
    no SERVICE (refused), no union default graph, no dereferencing of FROM IRIs.
    """
    g = rdflib.Graph()
    g.bind("sd", str(SD))
    g.bind("void", str(VOID))
    g.bind("formats", str(FORMATS))
    service = URIRef(iris.sparql)
    g.add((service, RDF.type, SD.Service))
    g.add((service, SD.endpoint, service))
    g.add((service, SD.supportedLanguage, SD.SPARQL11Query))
    g.add((service, SD.defaultEntailmentRegime, ENTAILMENT.Simple))
    for media_type in media_types:
        g.add((service, SD.resultFormat, FORMATS[_W3C_FORMATS[media_type]]))
    dataset = BNode("default-dataset")
    g.add((service, SD.defaultDataset, dataset))
    g.add((dataset, RDF.type, SD.Dataset))
    default_graph = URIRef(iris.dataset)
    g.add((dataset, SD.defaultGraph, default_graph))
    g.add((default_graph, RDF.type, SD.Graph))
    g.add((default_graph, RDF.type, VOID.Dataset))
    named = BNode("void-graph")
    g.add((dataset, SD.namedGraph, named))
    g.add((named, RDF.type, SD.NamedGraph))
    g.add((named, SD.name, URIRef(iris.void)))
    void_graph = BNode("void-graph-contents")
    g.add((named, SD.graph, void_graph))
    g.add((void_graph, RDF.type, SD.Graph))
    return g
