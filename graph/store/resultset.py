"""Virtuoso's SELECT answers in its result-set Turtle, read as SPARQL TSV for pyoxigraph.

Virtuoso writes a large answer as SPARQL JSON in about three times the CPU it takes to write
it as Turtle in the result-set vocabulary of the DAWG tests (measured on 7.2, 100k entries,
"entries of one year": 170-180 ms against 50-70, the same answer): Turtle like

    @prefix res: <http://www.w3.org/2005/sparql-results#> .
    _:_ a res:ResultSet .
    _:_ res:resultVariable "e" , "t" .
    @prefix xsd:	<http://www.w3.org/2001/XMLSchema#> .
    _:_ res:solution [
          res:binding [ res:variable "e" ; res:value <http://…> ] ;
          res:binding [ res:variable "t" ; res:value "2020-01-01T00:30:00Z"^^xsd:dateTime ] ] .

one solution a statement, in the answer's order (no res:index, ORDER BY or not), an unbound
variable's binding left out, prefixes declared where first used. `as_tsv` turns that text into
SPARQL TSV with a few regular expressions over the whole text (its terms are Turtle's, which
TSV's are, once prefixed names are written out): parsing it with pyoxigraph's Turtle parser
and rebuilding the rows in Python took longer than the JSON path it replaces (97 ms for the
110,000 triples of that answer).

Only what reads back exactly as the JSON answer does is turned into TSV (tests/
test_store_resultset.py writes both in every results format and compares the bytes;
tests/test_store_serve.py compares kgpub's answers with the embedded store's); anything else
gives None, and the query is asked again in JSON:
- a number: Virtuoso writes each as a bare Turtle number, an xsd:double 1.5 as an xsd:decimal
  would be and an xsd:decimal 2.0 as the integer 2;
- an xsd:boolean: "true" in Turtle, "1" in JSON;
- a string in any but Virtuoso's one-line form (no raw control character), a prefixed name
  or escape beyond what is matched here, a prefix declared twice with two IRIs, a variable
  name outside ASCII letters, digits and "_", a row whose bindings are out of the variables'
  order: whatever the expressions below do not match whole.
Blank nodes come as `_:b10001`, the label the JSON path reads from "nodeID://b10001".
"""

from __future__ import annotations

import re
from collections.abc import Mapping

# Asked for a SELECT: Virtuoso answers an empty result with 406 to text/turtle (a result
# set without solutions has no Turtle variant there), and with its result set to this name
# of the same writer; a server without the result-set Turtle (Oxigraph's) answers JSON.
TURTLE_ACCEPT = "application/x-nice-turtle, application/sparql-results+json;q=0.9"
TURTLE_TYPES = frozenset({"application/x-nice-turtle", "text/turtle"})

# Possessive quantifiers throughout: without them the rows' expression took twice as long.
_IRI = rb'<[^<>"{}|^`\\\x00-\x20]*+>'
_PNAME = rb"(?:[A-Za-z][A-Za-z0-9_\-]*+)?:[A-Za-z0-9_][A-Za-z0-9_\-]*+"
_STRING = (
    rb'"[^"\\\x00-\x1f]*+(?:\\(?:[tnr"\\]|u[0-9A-Fa-f]{4}|U[0-9A-Fa-f]{8})[^"\\\x00-\x1f]*+)*+"'
)
_LANG = rb"@[A-Za-z]++(?:-[A-Za-z0-9]++)*+"
_TERM = (
    rb"(" + _IRI + rb"|_:[A-Za-z0-9]++|" + _PNAME
    + rb"|" + _STRING + rb"(?:" + _LANG + rb"|\^\^(?:" + _IRI + rb"|" + _PNAME + rb"))?)"
)  # fmt: skip
_HEAD = re.compile(
    rb"@prefix res: <http://www\.w3\.org/2005/sparql-results#> \.\n"
    rb"(?:@prefix rdf: <http://www\.w3\.org/1999/02/22-rdf-syntax-ns#> \.\n)?"
    rb"_:_ a res:ResultSet \.\n"
    rb'_:_ res:resultVariable ("\w+"(?: , "\w+")*) \.\n',
    re.ASCII,
)
_PREFIX = re.compile(rb"@prefix ([A-Za-z][A-Za-z0-9_\-]*|):[ \t](" + _IRI + rb") \.\n")
_SOLUTION = b"_:_ res:solution ["
# Prefixed names in TSV text, whose strings hold no raw tab or line feed: a datatype's after
# "^^", a term's after a tab or a line feed, each before a tab or a line feed.
_DATATYPE = re.compile(rb"\^\^(" + _PNAME + rb")(?=[\t\n])")
_NAMED = re.compile(rb"([\t\n])(" + _PNAME + rb")(?=[\t\n])")
_ANY_NAMED = re.compile(rb"res:value [A-Za-z:]")
_BOOLEAN = re.compile(rb"\^\^<http://www\.w3\.org/2001/XMLSchema#boolean>(?=[\t\n])")
# Most variables a row's expression is built for (a group each).
MAX_VARIABLES = 64


def is_result_set(body: bytes) -> bool:
    """Whether an answer is Virtuoso's result-set Turtle as as_tsv reads it (a server that
    writes another shape is not asked for it again)."""
    return _HEAD.match(body) is not None


def as_tsv(body: bytes, public: Mapping[str, str]) -> bytes | None:
    """The SPARQL TSV of Virtuoso's result-set Turtle, with the dataset's graphs (public: the
    server's name -> the public one) named publicly as in the JSON path; None when the text is
    not one that reads back exactly as the same answer in JSON would (module docstring)."""
    head = _HEAD.match(body)
    if head is None:
        return None
    variables = [v[1:-1] for v in head.group(1).split(b" , ")]
    if len(variables) > MAX_VARIABLES or b"_star_fake" in variables:
        return None  # (Virtuoso's name for the one variable of a SELECT * without any)
    prefixes = {b"rdf": b"<http://www.w3.org/1999/02/22-rdf-syntax-ns#>"}
    rest = _without_prefixes(body, head.end(), prefixes)
    if rest is None or (rest and not rest.endswith(b"\n")):
        return None
    bindings = b"".join(
        rb'(?:\n {6}res:binding \[ res:variable "'
        + re.escape(v)
        + rb'" ; res:value '
        + _TERM
        + rb" \](?: ;)?)?"
        for v in variables
    )
    row = re.compile(re.escape(_SOLUTION) + bindings + rb" \] \.\n")
    template = b"\t".join(b"\\g<%d>" % (i + 1) for i in range(len(variables))) + b"\n"
    rows, count = row.subn(template, rest)
    if count != rest.count(_SOLUTION) or rows.count(b"\n") != count:
        return None
    tsv = b"\t".join(b"?" + v for v in variables) + b"\n" + rows
    try:
        if b"^^" in tsv:
            tsv = _DATATYPE.sub(lambda m: b"^^" + _expand(m.group(1), prefixes), tsv)
        if _ANY_NAMED.search(rest) is not None:
            tsv = _NAMED.sub(lambda m: m.group(1) + _expand(m.group(2), prefixes), tsv)
    except KeyError:  # a prefix never declared
        return None
    if _BOOLEAN.search(tsv) is not None:
        return None
    for server, name in public.items():
        iri = b"<" + server.encode("utf-8") + b">"
        if iri in tsv:
            tsv = re.sub(
                rb"(?<![^\t\n])" + re.escape(iri) + rb"(?=[\t\n])",
                b"<" + name.encode("utf-8").replace(b"\\", b"\\\\") + b">",
                tsv,
            )
    return tsv


def _without_prefixes(body: bytes, start: int, prefixes: dict[bytes, bytes]) -> bytes | None:
    """The text from `start` without its prefix declarations (each a line of its own), which
    are added to `prefixes`; None when one declares a prefix again with another IRI."""
    kept: list[bytes] = []
    at = start
    while (found := body.find(b"\n@prefix ", at - 1)) != -1:
        line = _PREFIX.match(body, found + 1)
        if line is None:
            return None
        name, iri = line.groups()
        if prefixes.setdefault(name, iri) != iri:
            return None
        kept.append(body[at : found + 1])
        at = line.end()
    kept.append(body[at:])
    return b"".join(kept)


def _expand(pname: bytes, prefixes: Mapping[bytes, bytes]) -> bytes:
    prefix, local = pname.split(b":", 1)
    return prefixes[prefix][:-1] + local + b">"
