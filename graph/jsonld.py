"""Compact JSON-LD 1.0 for kgpub's model: one published @context turns IRIs into plain keys.

The @context uses only JSON-LD 1.0 (JSON-LD 1.0 §8.7, context definitions: prefixes, keyword
aliases, terms with @id, @type, @language and @container @set) and so declares no @version: a
1.0 processor (jsonld-java, `riot --syntax=jsonld10`) refuses a context that says 1.1 (JSON-LD
1.1 API §4.1.2, step 5.5.2), and a 1.1 processor reads the same graph from it.

The writer compacts triples against the context term by term (JSON-LD 1.0 API §6.4, term
selection): a value that matches a term's coercion (@id, @language "en", a datatype) is written
plain; anything else keeps its full IRI key and a value object, so the output always expands back
to exactly the input triples.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, cast

from pyoxigraph import BlankNode, Literal, NamedNode, Triple

from graph.namespaces import (
    AS,
    DCAT,
    DCMITYPE,
    DCTERMS,
    FOAF,
    HYDRA,
    KGPUB,
    OWL,
    RDF,
    RDFS,
    SKOS,
    VOID,
    XSD,
)

_XSD_STRING = str(XSD.string)
_LANG_STRING = str(RDF.langString)

PREFIXES: dict[str, str] = {
    "dcterms": str(DCTERMS),
    "dcmitype": str(DCMITYPE),
    "skos": str(SKOS),
    "dcat": str(DCAT),
    "void": str(VOID),
    "xsd": str(XSD),
    "rdfs": str(RDFS),
    "hydra": str(HYDRA),
    "as": str(AS),
    "kgpub": str(KGPUB),
    "foaf": str(FOAF),
    "owl": str(OWL),
}

# term -> (IRI, coercion): coercion is "@id", "@en" (language-tagged English), a datatype IRI,
# or "" for a plain string; "set" marks terms that are always arrays.
_TERMS: dict[str, tuple[str, str, bool]] = {
    "title": (str(DCTERMS.title), "@en", False),
    "description": (str(DCTERMS.description), "@en", False),
    "created": (str(DCTERMS.created), str(XSD.dateTime), False),
    "modified": (str(DCTERMS.modified), str(XSD.dateTime), False),
    "identifier": (str(DCTERMS.identifier), "", False),
    "subject": (str(DCTERMS.subject), "@id", True),
    "isPartOf": (str(DCTERMS.isPartOf), "@id", False),
    "hasPart": (str(DCTERMS.hasPart), "@id", True),
    "themeTaxonomy": (str(DCAT.themeTaxonomy), "@id", False),
    "prefLabel": (str(SKOS.prefLabel), "@en", False),
    "notation": (str(SKOS.notation), "", False),
    "inScheme": (str(SKOS.inScheme), "@id", False),
    "topConceptOf": (str(SKOS.topConceptOf), "@id", False),
    "hasTopConcept": (str(SKOS.hasTopConcept), "@id", True),
    # publishers named in titles (graph/publishers.py)
    "publisher": (str(DCTERMS.publisher), "@id", True),
    "sameAs": (str(OWL.sameAs), "@id", False),
    # kgpub's own (graph/namespaces.py KGPUB): related entries, and a meaning search's marks
    "related": (str(KGPUB.related), "@id", True),
    "score": (str(KGPUB.score), str(XSD.decimal), False),
    "searchRank": (str(KGPUB.searchRank), str(XSD.integer), False),
    "matchedBy": (str(KGPUB.matchedBy), "", False),
}
_CLASSES: dict[str, str] = {
    "Text": str(DCMITYPE.Text),
    "Collection": str(DCMITYPE.Collection),
    "Concept": str(SKOS.Concept),
    "ConceptScheme": str(SKOS.ConceptScheme),
    "Organization": str(FOAF.Organization),
}
_BY_IRI = {iri: (term, coercion, is_set) for term, (iri, coercion, is_set) in _TERMS.items()}
_CLASS_TERMS = {iri: term for term, iri in _CLASSES.items()}
_TYPE = str(RDF.type)


def context() -> dict[str, Any]:
    """The @context kgpub publishes (and embeds in dumps): JSON-LD 1.0, so no @version."""
    ctx: dict[str, Any] = {**PREFIXES, "id": "@id", "type": "@type"}
    ctx.update(_CLASSES)
    for term, (iri, coercion, is_set) in _TERMS.items():
        definition: dict[str, Any] = {"@id": iri}
        if coercion == "@en":
            definition["@language"] = "en"
        elif coercion:
            definition["@type"] = coercion
        if is_set:
            definition["@container"] = "@set"
        ctx[term] = definition
    return ctx


def _compact_iri(iri: str) -> str:
    for prefix, ns in PREFIXES.items():
        if iri.startswith(ns) and len(iri) > len(ns):
            return f"{prefix}:{iri[len(ns) :]}"
    return iri


def _node_id(node: Any) -> str:
    return node.value if isinstance(node, NamedNode) else f"_:{node.value}"


def _full_value(obj: Any) -> dict[str, Any]:
    if isinstance(obj, (NamedNode, BlankNode)):
        return {"@id": _node_id(obj)}
    value: dict[str, Any] = {"@value": obj.value}
    if obj.language:
        value["@language"] = obj.language
    elif obj.datatype.value != _XSD_STRING:
        value["@type"] = _compact_iri(obj.datatype.value)
    return value


def _matches(obj: Any, coercion: str) -> bool:
    if coercion == "@id":
        return isinstance(obj, (NamedNode, BlankNode))
    if not isinstance(obj, Literal):
        return False
    if coercion == "@en":
        return obj.language == "en"
    if obj.language:
        return False
    return obj.datatype.value == (coercion or _XSD_STRING)


def nodes(triples: Iterable[Triple]) -> list[dict[str, Any]]:
    """Node objects, one per subject in first-seen order, compacted against context()."""
    out: dict[str, dict[str, Any]] = {}
    sets: set[tuple[str, str]] = set()
    for t in triples:
        sid = _node_id(t.subject)
        node = out.setdefault(sid, {"id": sid})
        pred, obj = t.predicate.value, t.object
        value: Any
        if pred == _TYPE and isinstance(obj, NamedNode):
            key, value, is_set = "type", _CLASS_TERMS.get(obj.value, _compact_iri(obj.value)), False
        elif pred in _BY_IRI and _matches(obj, _BY_IRI[pred][1]):
            key, coercion, is_set = _BY_IRI[pred]
            value = _node_id(obj) if coercion == "@id" else cast(Literal, obj).value
        else:
            key, value, is_set = _compact_iri(pred), _full_value(obj), False
        if key not in node:
            node[key] = [value] if is_set else value
            if is_set:
                sets.add((sid, key))
        elif (sid, key) in sets or isinstance(node[key], list):
            node[key].append(value)
        else:
            node[key] = [node[key], value]
    return list(out.values())


def document(triples: Iterable[Triple], context_ref: str | dict[str, Any] | None = None) -> str:
    """A JSON-LD document: the @context (inline, or a URL) and a @graph of node objects."""
    ctx = context() if context_ref is None else context_ref
    graph = nodes(triples)
    if len(graph) == 1:
        return json.dumps({"@context": ctx, **graph[0]}, ensure_ascii=False, indent=2)
    return json.dumps({"@context": ctx, "@graph": graph}, ensure_ascii=False, indent=2)


def write_dump(triples: Iterable[Triple], out: Any) -> None:
    """Write a whole-library JSON-LD dump with an inline context, one node per line."""
    write_nodes(nodes(triples), out)


def write_nodes(node_objects: Iterable[dict[str, Any]], out: Any) -> None:
    """Write node objects (as nodes() makes them) as a dump: inline context, one per line."""
    out.write('{"@context": ')
    out.write(json.dumps(context(), ensure_ascii=False))
    out.write(',\n "@graph": [\n')
    first = True
    for node in node_objects:
        if not first:
            out.write(",\n")
        out.write("  " + json.dumps(node, ensure_ascii=False))
        first = False
    out.write("\n]}\n")
