"""The dumps as whole-graph serializations of their triples: the oracle the chunked writer
(graph/dumps.py) must equal byte for byte, in every format of formats.DUMP_FORMATS."""

from __future__ import annotations

import io
from collections.abc import Iterable
from pathlib import Path

import pyoxigraph
from pyoxigraph import Triple

from graph import jsonld
from graph.dumps import dump_prefixes, strip_prefixes, turtle_header
from graph.formats import JSONLD, NTRIPLES, RDFXML, TURTLE, RdfFormat
from graph.iris import Iris


def write_dump(triples: Iterable[Triple], fmt: RdfFormat, path: Path, iris: Iris) -> None:
    """Write triples as one dump, serialized whole by Oxigraph (JSON-LD: by graph.jsonld)."""
    prefixes = dump_prefixes(iris)
    if fmt is JSONLD:
        with path.open("w", encoding="utf-8") as out:
            jsonld.write_dump(triples, out)
        return
    body = io.BytesIO()
    if fmt is NTRIPLES:
        pyoxigraph.serialize(triples, body, fmt.oxigraph)
        path.write_bytes(body.getvalue())
    elif fmt is TURTLE:
        pyoxigraph.serialize(triples, body, fmt.oxigraph, prefixes=prefixes)
        path.write_bytes(turtle_header(prefixes) + strip_prefixes(body.getbuffer()))
    elif fmt is RDFXML:
        pyoxigraph.serialize(triples, body, fmt.oxigraph, prefixes=prefixes)
        path.write_bytes(body.getvalue() + b"\n")
    else:
        raise AssertionError(f"the oracle has no writer for {fmt.label}")
