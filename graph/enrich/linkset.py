"""The related entries as a linkset (VoID §5): a dump of their own, in the store beside the
library, and described in VoID and DCAT (graph/describe.py Linkset).

Each link of enrich.sqlite (graph/enrich/related.py) is one `kgpub:related` triple, and its
closeness a statement about that triple (RDF 1.1 Semantics §D.1, reification): a node named
in the entry's IRI space, `<entry>#related-<target's identifier>`, with rdf:subject,
rdf:predicate, rdf:object and `kgpub:score` (xsd:decimal, 3 places):

  <a> kgpub:related <b> .
  <a#related-b> rdf:subject <a> ; rdf:predicate kgpub:related ; rdf:object <b> ;
      kgpub:score "0.812"^^xsd:decimal .

Written as N-Triples (and its gzip) in the order of enrich.sqlite (IRI, then rank): the same
links give the same bytes. Reads only SQLite: no numpy, no model.
"""

from __future__ import annotations

import gzip
import hashlib
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from graph.describe import DumpFile
from graph.errors import PublicationError
from graph.formats import GZIP_SUFFIX, NTRIPLES
from graph.iris import Iris
from graph.namespaces import KGPUB, RDF, XSD

NAME = "related"  # dumps/related.nt and dumps/related.nt.gz
LABEL = "Related entries (linkset) N-Triples"

_RELATED = f"<{KGPUB.related}>"
_SCORE = f"<{KGPUB.score}>"
_SUBJECT = f"<{RDF.subject}>"
_PREDICATE = f"<{RDF.predicate}>"
_OBJECT = f"<{RDF.object}>"
_DECIMAL = f"<{XSD.decimal}>"


@dataclass(frozen=True)
class Written:
    """The linkset a build wrote: its dump files, its N-Triples and how many links."""

    files: tuple[DumpFile, ...]
    ntriples: bytes
    links: int


def linkset_ntriples(enrich_file: Path, iris: Iris) -> tuple[bytes, int]:
    """The links of a release's enrich.sqlite as N-Triples, and how many links."""
    try:
        db = sqlite3.connect(enrich_file.resolve().as_uri() + "?mode=ro", uri=True)
        try:
            rows = db.execute(
                "SELECT iri, target, score FROM related ORDER BY iri, rank"
            ).fetchall()
        finally:
            db.close()
    except sqlite3.Error as exc:
        raise PublicationError(f"{enrich_file}: cannot read related entries: {exc}") from exc
    lines: list[str] = []
    for iri, target, score in rows:
        a, b = f"<{iri}>", f"<{target}>"
        link = f"<{iris.related_link(iri, target)}>"
        lines += [
            f"{a} {_RELATED} {b} .\n",
            f"{link} {_SUBJECT} {a} .\n",
            f"{link} {_PREDICATE} {_RELATED} .\n",
            f"{link} {_OBJECT} {b} .\n",
            f'{link} {_SCORE} "{float(score):.3f}"^^{_DECIMAL} .\n',
        ]
    return "".join(lines).encode("utf-8"), len(rows)


def write_linkset(work: Path, iris: Iris, enrich_file: Path) -> Written:
    """Write work/dumps/related.nt and its gzip from enrich_file."""
    data, links = linkset_ntriples(enrich_file, iris)
    folder = work / "dumps"
    folder.mkdir(exist_ok=True)
    plain = folder / (NAME + NTRIPLES.suffix)
    packed = folder / (NAME + NTRIPLES.suffix + GZIP_SUFFIX)
    # mtime=0: the same links give the same gzip bytes (RFC 1952 §2.3.1, MTIME 0: none).
    gz = gzip.compress(data, compresslevel=6, mtime=0)
    try:
        plain.write_bytes(data)
        packed.write_bytes(gz)
    except OSError as exc:
        raise PublicationError(f"{folder}: cannot write the related entries: {exc}") from exc
    files = (
        DumpFile(plain.name, NTRIPLES.media_type, LABEL, len(data), _sha(data), False),
        DumpFile(packed.name, NTRIPLES.media_type, LABEL, len(gz), _sha(gz), True),
    )
    return Written(files, data, links)


def previous_ntriples(release: Path | None) -> bytes:
    """The linkset the previous release published (b"" for none): what its store holds
    beside the library, for a store copied from it to drop."""
    if release is None:
        return b""
    try:
        return (release / "dumps" / (NAME + NTRIPLES.suffix)).read_bytes()
    except OSError:
        return b""


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
