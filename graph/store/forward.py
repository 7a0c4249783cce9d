"""Untrusted SPARQL queries forwarded to a SPARQL server, confined to one release's graphs.

graph/query.py has inspected the text (no SERVICE, no update, a query form first: so no
Virtuoso `define` pragma). Forwarding adds what a shared server needs, measured on Virtuoso 7.2
and Oxigraph's server 0.5:
- It adds the query's FROM / FROM NAMED to the protocol's default-graph-uri / named-graph-uri
  instead of letting the protocol's replace them (SPARQL 1.1 Protocol §2.1.4 says replace), and
  without any, `GRAPH ?g` ranges over every graph it holds (its system graphs, old releases).
  So the dataset clauses are cut out of the text, mapped to this release's graphs (the public
  name <base>.well-known/void to the release's VoID graph, any other name to a graph of its own
  that is never loaded: empty, as on the embedded store) and always sent as protocol parameters.
- A server lists every graph the protocol names as a named graph, loaded or not (Oxigraph's
  server answers `GRAPH ?g {}` with each), so each name is mapped to a private graph of its own
  and back in the answer. A dataset without named graphs cannot be sent (no named-graph-uri
  means the server's own default), so there every GRAPH pattern is joined with a group that has
  no solution, as the embedded store answers GRAPH over a name not in the dataset. Names are
  mapped back in answers only: an expression on a graph's name (ORDER BY ?g, STR(?g)) sees the
  server's name.
- It runs functions named by IRI that SPARQL 1.1 does not define (`bif:`, `sql:` procedures):
  any function other than the XSD casts (§17.5) is refused before anything is sent.
- Relative IRIs resolve against kgpub's endpoint, not the server's: a BASE is put first.
- A SELECT asks for at most one row more than kgpub's result cap (its LIMIT lowered, or one
  added): the answer tells "over the cap" without the server reading or sending the rest, or
  reaching a row cap of its own first (Virtuoso's ResultSetMaxRows: a 503 where the embedded
  store answers 400).
- DESCRIBE answers what the server likes (SPARQL 1.1 §16.4 leaves it open): Virtuoso adds the
  triples that point at the resource, from the named graphs too. So a DESCRIBE is sent as the
  CONSTRUCT of what the embedded store answers: each resource's own triples in the default
  graph (its concise bounded description, kgpub's graphs holding no blank nodes). One with a
  WHERE clause takes two queries, the SELECT of its solutions and then the CONSTRUCT of the
  resources they name by VALUES: sent as one CONSTRUCT with that SELECT nested, Virtuoso 7.2
  drops some of a resource's triples when the SELECT has ORDER BY and LIMIT.
The answer is read whole within the time budget over a persistent connection that carries no
credentials, its graph names mapped back to the public ones (only when it holds one: else its
bytes go to pyoxigraph's parser as they are), and serialized by graph/query.py's writers: the
same bytes and caps as the embedded store. A SELECT of variables only is asked first in
Virtuoso's result set in Turtle, which it writes in a third of the CPU of its JSON, and read
as TSV (graph/store/resultset.py); a server that answers JSON to that (Oxigraph's) is asked
JSON from then on, and an answer the Turtle cannot give exactly (a number) is asked again in
JSON.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

import pyoxigraph
from pyoxigraph import Triple
from pyparsing import ParseException
from rdflib import URIRef, Variable
from rdflib.plugins.sparql.algebra import translatePName, translatePrologue, traverse
from rdflib.plugins.sparql.parser import parseQuery
from rdflib.plugins.sparql.parserutils import CompValue
from rdflib.plugins.sparql.sparql import Prologue

from graph.errors import (
    QueryOverloaded,
    QueryRefused,
    QuerySyntaxError,
    QueryTimeout,
    StoreFailed,
    StoreUnavailable,
)
from graph.formats import SPARQL_RESULTS_JSON
from graph.iris import Iris
from graph.namespaces import XSD
from graph.query import OPAQUE, QueryJob, QueryResult, serialize_graph, serialize_results
from graph.store.protocol import (
    CONSTRUCT_ACCEPT,
    RDF_PARSERS,
    VIRTUOSO_BNODE,
    RawAnswer,
    SparqlClient,
    iri_ref,
    out_of_time,
)
from graph.store.resultset import TURTLE_ACCEPT, TURTLE_TYPES, as_tsv, is_result_set

# A SELECT whose LIMIT is this or less is asked in JSON, not in Turtle (graph/store/
# resultset.py): Virtuoso's JSON writer costs little over so few rows, and an answer holding a
# number, which its Turtle does not write exactly, would be sent twice.
TURTLE_ROWS = 1_000
# SPARQL 1.1 §17.5: the XSD constructor functions, the only functions named by IRI.
_CASTS = frozenset(
    str(XSD[name])
    for name in ("string", "boolean", "integer", "decimal", "float", "double", "dateTime")
)
_KEYWORD = re.compile(r"(?<![\w?$:.\-])(FROM|GRAPH)(?![\w:\-])", re.IGNORECASE)
_NAMED = re.compile(r"\s*NAMED(?![\w:\-])", re.IGNORECASE)
_IRIREF = re.compile(r"\s*(<[^<>\"{}|^`\\\x00-\x20]*>)")
_PNAME = re.compile(r"\s*([A-Za-z][\w.\-]*)?:([\w.\-:%\\]*)")
# A group without solutions: joined with a GRAPH pattern, it makes it match nothing (§18.6).
_NO_SOLUTION = "{ FILTER(false) } "
# rdflib's parser (pyparsing) keeps state in its grammar: two threads parsing at once fail
# ("postParse2() missing 1 required positional argument"), so one parses at a time.
_PARSER = threading.Lock()
# What confinements a runner remembers, by the characters of their texts: a query sent again
# (a dashboard's, a client's retry, a page of a paged listing) skips rdflib's parse, 5-15 ms.
CONFINED_CACHE_CHARS = 4 << 20
# A '/' or a printable ASCII character escaped in a JSON string (\/, \u0075), which
# could hide a name. re finds it in 1.2 ms of CPU over a 4.3 MB answer of IRIs; `in` took 3.8
# for \/ alone (it tries a match at each byte equal to the needle's last, '/', which every
# IRI holds several times).
_ESCAPED = re.compile(rb"\\(?:/|u00[2-7])")
_LIMIT = re.compile(r"(?<![\w?$:.\-])LIMIT\s+(\d+)", re.IGNORECASE)
_VALUES = re.compile(r"(?<![\w?$:.\-])VALUES(?![\w:\-])", re.IGNORECASE)
# How many solutions of a DESCRIBE's WHERE clause are listed by VALUES at most (a query text of
# up to ~1 MB); past that the description is sent as one nested query (_describe_as_construct).
# The SELECT of the solutions asks for one more: 9,999 rows, under Virtuoso's packaged
# ResultSetMaxRows (10,000), which flags an answer of that many rows as cut (X-SPARQL-MaxRows,
# measured on 7.2: LIMIT 10000 flagged, LIMIT 9999 not) and so failed every such DESCRIBE.
DESCRIBE_SOLUTIONS = 9_998
_DESCRIBE = re.compile(r"(?<![\w?$:.\-])DESCRIBE(?![\w:\-])", re.IGNORECASE)
# Where a DESCRIBE's resources end (its dataset clauses are cut out by then): the WHERE clause,
# a solution modifier or VALUES (§19.8, DescribeQuery).
_AFTER_RESOURCES = re.compile(
    r"\{|(?<![\w?$:.\-])(WHERE|GROUP|HAVING|ORDER|LIMIT|OFFSET|VALUES)(?![\w:\-])", re.IGNORECASE
)


@dataclass(frozen=True)
class Confined:
    """A query as it is sent: its text, its dataset in the server's graph names, and the public
    name of each of those names that an answer may show."""

    text: str
    default: list[str]
    named: list[str]
    public: Mapping[str, str]
    # A DESCRIBE with a WHERE clause or solution modifiers is sent in two steps: `text` is the
    # SELECT of its solutions, `resources` the terms they name (?variables, <IRI>s), and
    # `nested` the one-query CONSTRUCT sent when there are more solutions than the cap.
    resources: tuple[str, ...] = ()
    nested: str = ""
    # A SELECT that projects variables only, asked in a result set in Turtle where the server
    # writes one (graph/store/resultset.py): an expression's value is most often a number,
    # which Virtuoso's Turtle does not write exactly, and the query would be sent twice.
    turtle: bool = False


class SparqlRunner:
    """Runs inspected queries on a SPARQL server for one release: at most `concurrency` at
    once (more get QueryOverloaded at once), each within `timeout` seconds."""

    def __init__(
        self,
        client: SparqlClient,
        iris: Iris,
        graph: str,
        void: str,
        timeout: float,
        concurrency: int,
    ) -> None:
        self.client, self.iris = client, iris
        self.graph, self.void = graph, void
        self.nowhere = iris.store_graph("none")  # never loaded: an empty graph
        self.timeout = timeout
        self._slots = threading.BoundedSemaphore(max(1, concurrency))
        self._confined: OrderedDict[tuple[object, ...], Confined] = OrderedDict()
        self._confined_chars = 0
        self._confined_lock = threading.Lock()
        # Whether SELECTs are asked in Turtle: until the server answers one in a shape that
        # graph/store/resultset.py does not read (not Virtuoso's), or in JSON (Oxigraph's).
        self._turtle = True

    def run(self, job: QueryJob, watch: int | None = None) -> QueryResult:
        """The serialized result of one query, as graph/query.py's QueryPool.run gives it.
        (watch, the client's socket, is not polled: the server's answer is awaited whole.)"""
        # The slot first: the parse below is rdflib's, one at a time in the process, and a
        # long query can hold it for seconds (a 57 KB UNION: 10 s), so only as many queries as
        # may run wait for it; the rest are refused at once.
        if not self._slots.acquire(blocking=False):
            raise QueryOverloaded("too many queries are running; try again in a moment")
        try:
            sent = self.confine(job)
            graph = job.form not in ("SELECT", "ASK")
            deadline = time.monotonic() + self.timeout
            text: str | None = sent.text
            if sent.nested:
                cap = min(job.max_results, DESCRIBE_SOLUTIONS)
                text = self._described(sent, cap, deadline)
            if text is None:  # no resource: nothing to describe
                return serialize_graph(iter(()), job)
            turtle = sent.turtle and self._turtle
            accept = SPARQL_RESULTS_JSON
            if graph:
                accept = CONSTRUCT_ACCEPT
            elif turtle:
                accept = TURTLE_ACCEPT
            answer, body = self._ask(sent, text, accept, deadline)
            if graph:
                return serialize_graph(_triples(body, answer.content_type, sent.public), job)
            if turtle:
                media = answer.content_type.split(";", 1)[0].strip().lower()
                tsv = as_tsv(body, sent.public) if media in TURTLE_TYPES else None
                if tsv is not None:
                    return serialize_results(_tsv_results(tsv), job)
                if media not in TURTLE_TYPES or not is_result_set(body):
                    self._turtle = False  # not Virtuoso's: JSON from now on
                if media in TURTLE_TYPES:  # what the Turtle cannot tell exactly: in JSON
                    answer, body = self._ask(sent, text, SPARQL_RESULTS_JSON, deadline)
            return serialize_results(_results(body, sent.public), job)
        except StoreUnavailable as exc:
            raise QueryTimeout(f"the store did not answer within the budget: {exc}") from exc
        finally:
            self._slots.release()

    def _ask(
        self, sent: Confined, text: str, accept: str, deadline: float
    ) -> tuple[RawAnswer, bytes]:
        """The store's answer to text, in the dataset sent names, and its body read whole."""
        answer = self.client.raw(
            text,
            accept,
            default_graphs=sent.default,
            named_graphs=sent.named,
            timeout=max(0.001, deadline - time.monotonic()),
        )
        return answer, _read(answer, self.client.query_url)

    def _described(self, sent: Confined, cap: int, deadline: float) -> str | None:
        """The CONSTRUCT of a DESCRIBE's descriptions once the SELECT of its solutions has run:
        the resources they name by VALUES (None without any), or the nested one-query form
        when there are more than `cap` solutions. (Virtuoso 7.2 answers the nested form with
        triples missing when the inner SELECT has ORDER BY and LIMIT: see _describe_as_construct.)
        """
        answer = self.client.raw(
            sent.text,
            SPARQL_RESULTS_JSON,
            default_graphs=sent.default,
            named_graphs=sent.named,
            timeout=max(0.001, deadline - time.monotonic()),
        )
        body = _read(answer, self.client.query_url)
        try:
            solutions = pyoxigraph.parse_query_results(
                body, format=pyoxigraph.QueryResultsFormat.JSON
            )
            if not isinstance(solutions, pyoxigraph.QuerySolutions):
                raise ValueError("not solutions")
            resources: dict[str, None] = {}
            for count, solution in enumerate(solutions, 1):
                if count > cap:
                    return sent.nested
                for term in sent.resources:
                    value = solution[term[1:]] if term.startswith("?") else term
                    if isinstance(value, pyoxigraph.NamedNode):
                        resources[str(value)] = None
                    elif isinstance(value, str):
                        resources[value] = None
        except (SyntaxError, ValueError) as exc:
            raise QuerySyntaxError(f"the store answered unreadable results: {exc}") from exc
        if not resources:
            return None
        return _described_by_values(list(resources))

    def confine(self, job: QueryJob) -> Confined:
        """The text to send and its dataset: the release's graphs, or those the query or the
        request names (mapped), never another graph of the server. Remembered for the texts
        sent last (up to CONFINED_CACHE_CHARS characters), by all that the answer depends on."""
        key = (
            job.text,
            job.form,
            job.base_iri,
            job.default_graphs,
            job.named_graphs,
            job.max_results,
        )
        with self._confined_lock:
            known = self._confined.get(key)
            if known is not None:
                self._confined.move_to_end(key)
                return known
        sent = self._confine(job)
        size = len(job.text) + len(sent.text)
        if size <= CONFINED_CACHE_CHARS // 8:
            with self._confined_lock:
                if key not in self._confined:
                    self._confined[key] = sent
                    self._confined_chars += size
                while self._confined_chars > CONFINED_CACHE_CHARS:
                    (text, *_), old = self._confined.popitem(last=False)
                    self._confined_chars -= len(str(text)) + len(old.text)
        return sent

    def _confine(self, job: QueryJob) -> Confined:
        base = job.base_iri or self.iris.sparql
        tree, prologue = _parse(job.text, base)
        for iri in _iris(tree):
            if iri.startswith(("bif:", "sql:")):
                raise QueryRefused(f"<{iri}> is not a SPARQL 1.1 name: not run on this endpoint")
        for iri in _functions(tree):
            if iri not in _CASTS:
                raise QueryRefused(
                    f"the function <{iri}> is not part of SPARQL 1.1: this endpoint runs only "
                    "SPARQL 1.1 functions and the XSD casts"
                )
        # (CompValue.get answers a missing key with the key's name: test membership.)
        clauses = list(tree["datasetClause"]) if "datasetClause" in tree else []
        dataset: tuple[list[str], list[str]] | None = None  # (default, named): as asked
        if job.default_graphs is not None or job.named_graphs is not None:
            dataset = list(job.default_graphs or ()), list(job.named_graphs or ())
        elif clauses:
            dataset = (
                [str(c["default"]) for c in clauses if "default" in c],
                [str(c["named"]) for c in clauses if "named" in c],
            )
        graphs: dict[str, str] | None = {self.iris.void: self.void}  # the release's
        if dataset is not None:
            graphs = {g: self._map(g) for g in dataset[1]} or None
        text, cut = _rewrite(job.text, base, graphs, prologue_names(prologue))
        if cut != len(clauses):
            raise QueryRefused("the query's FROM clauses could not be read: write them as <IRI>")
        resources: tuple[str, ...] = ()
        nested = ""
        turtle = False
        if job.form == "DESCRIBE":
            described = _describe_as_construct(text, tree)
            if isinstance(described, str):
                text = described
            else:
                select, resources, nested = described
                text = _limited(select, tree, min(job.max_results, DESCRIBE_SOLUTIONS) + 1)
                nested = f"BASE {iri_ref(base)}\n{nested}"
        elif job.form == "SELECT":
            text = _limited(text, tree, job.max_results + 1)
            projection = tree["projection"] if "projection" in tree else []  # noqa: SIM401
            limit = tree["limitoffset"] if "limitoffset" in tree else {}  # noqa: SIM401
            small = "limit" in limit and int(limit["limit"]) <= TURTLE_ROWS
            turtle = not small and not any("expr" in p for p in projection)
        text = f"BASE {iri_ref(base)}\n{text}"
        public = {self.void: self.iris.void}
        if dataset is None:  # the release's: its library the default graph, its VoID named
            return Confined(text, [self.graph], [self.void], public, resources, nested, turtle)
        defaults, nameds = dataset
        public.update((self._map(g), g) for g in [*defaults, *nameds])
        default = [self._map(g) for g in defaults] or [self.nowhere]
        named = [self._map(g) for g in nameds] or [self.nowhere]
        return Confined(text, default, named, public, resources, nested, turtle)

    def _map(self, name: str) -> str:
        """The server's graph for a name of the query's dataset: the release's VoID graph for
        its public name, else a graph of the name's own that nothing loads."""
        if name == self.iris.void:
            return self.void
        return self.iris.store_graph("none/" + hashlib.sha256(name.encode()).hexdigest()[:32])


def _parse(text: str, base: str) -> tuple[CompValue, Prologue]:
    """The query's parse tree with prefixed names resolved (rdflib's parser: no evaluation),
    and its prologue.

    Parsed on a thread of its own. pyparsing raises an exception for each alternative that
    fails and keeps some in its frames' locals (the furthest failure so far), whose tracebacks
    hold those frames: reference cycles, which only the collector's oldest generation frees,
    seldom. Each frame holds its caller's, and a finished frame keeps the locals it ended
    with: parsed on the request's thread, they kept every frame of the request alive up to
    gunicorn's, with the store's answer and its serialization (9 MiB more in use in a worker
    after "entries of one year" at 100k entries, 6 after "a word in titles", each query's
    first run, measured with malloc_stats). On a thread of its own, they hold only its frames.
    """
    with ThreadPoolExecutor(1, thread_name_prefix="kgpub-parse") as parser:
        return parser.submit(_parse_here, text, base).result()


def _parse_here(text: str, base: str) -> tuple[CompValue, Prologue]:
    try:
        with _PARSER:
            parsed = parseQuery(text)
        prologue = translatePrologue(parsed[0], base)
        tree: CompValue = traverse(
            parsed[1], visitPost=functools.partial(translatePName, prologue=prologue)
        )
    except (ParseException, ValueError, TypeError, KeyError) as exc:
        raise QuerySyntaxError(f"the query does not parse: {exc}") from exc
    except RecursionError as exc:  # rdflib's parser recurses once per level: ~30 brackets deep
        raise QueryRefused(
            "the query nests groups or expressions too deeply to be forwarded to the store"
        ) from exc
    return tree, prologue


def prologue_names(prologue: Prologue) -> Callable[[str, str], str]:
    """resolve(prefix, local): the IRI of a prefixed name of the query ("" for a prefix it
    does not declare, which names no graph)."""

    def resolve(prefix: str, local: str) -> str:
        namespace = prologue.namespace_manager.store.namespace(prefix)
        return "" if namespace is None else str(namespace) + local

    return resolve


def _walk(node: Any) -> Iterator[Any]:
    yield node
    if isinstance(node, dict):
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list | tuple):
        for value in node:
            yield from _walk(value)


def _functions(tree: CompValue) -> Iterator[str]:
    for node in _walk(tree):
        if isinstance(node, CompValue) and node.name == "Function" and "iri" in node:
            yield str(node["iri"])


def _iris(tree: CompValue) -> Iterator[str]:
    for node in _walk(tree):
        if isinstance(node, URIRef):
            yield str(node)


def _rewrite(
    text: str, base: str, named: Mapping[str, str] | None, resolve: Callable[[str, str], str]
) -> tuple[str, int]:
    """The text with every dataset clause (FROM [NAMED] iri) blanked out and every GRAPH
    pattern confined to the dataset's named graphs (named: each public name -> the server's
    graph; None when the dataset has none): `GRAPH <iri>` or `GRAPH prefix:name` renamed to the
    server's graph when it names one of them, else its keyword and name replaced by a group
    that has no solution, joined with its pattern (SPARQL 1.1 §18.6: a graph outside the
    dataset matches nothing; Virtuoso 7.2 answers a query naming such a graph as if the
    pattern were empty, whatever else it says: ASK true, COUNT(*) 1); and with no named graphs
    `GRAPH ?g` joined with that group. resolve(prefix, local) is the IRI of a prefixed name.
    Also how many clauses were cut."""
    # The query's code with every opaque span blanked to the same length (graph/query.py).
    code = OPAQUE.sub(lambda m: " " * len(m.group()), text)
    out: list[str] = []
    last = cut = 0
    for match in _KEYWORD.finditer(code):
        if match.start() < last:
            continue
        end = match.end()
        if match.group(1).upper() == "FROM":
            is_named = _NAMED.match(code, end)
            if is_named:
                end = is_named.end()
            token = _IRIREF.match(text, end) or _PNAME.match(code, end)
            if token is None:
                continue
            out.append(text[last : match.start()] + " " * (token.end() - match.start()))
            last, cut = token.end(), cut + 1
            continue
        name, token = _graph_name(text, code, end, base, resolve)
        if token is None:  # GRAPH ?g: over the named graphs, if there are any
            if named is None:
                out.append(text[last : match.start()] + _NO_SOLUTION)
                last = match.start()
        elif named is not None and name is not None and name in named:
            start = token.end() - len(token.group().lstrip())
            out.append(text[last:start] + iri_ref(named[name]))
            last = token.end()
        else:  # the name is not sent at all: Virtuoso would answer the whole query as if empty
            out.append(text[last : match.start()] + _NO_SOLUTION)
            last = token.end()
    out.append(text[last:])
    return "".join(out), cut


def _graph_name(
    text: str, code: str, at: int, base: str, resolve: Callable[[str, str], str]
) -> tuple[str | None, re.Match[str] | None]:
    """The IRI a GRAPH keyword names at `at` (an IRI or a prefixed name), with its token; None
    for a variable."""
    token = _IRIREF.match(text, at)
    if token is not None:
        return urljoin(base, token.group(1)[1:-1]), token
    token = _PNAME.match(code, at)
    if token is None:
        return None, None
    return resolve(token.group(1) or "", re.sub(r"\\(.)", r"\1", token.group(2))), token


def _limited(text: str, tree: CompValue, rows: int) -> str:
    """A SELECT query's text asking for at most `rows` solutions: its own LIMIT (the one
    outside every group, §19.8 SolutionModifier) lowered to it, or, unless it is ordered, one
    added before the query's own VALUES clause, if it has one, else at the end. (Virtuoso
    refuses an ORDER BY whose LIMIT is past its MaxSortedTopRows, 10,000 as packaged, and
    sorts any number of rows without one.)"""
    # (CompValue.get answers a missing key with the key's name: test membership.)
    if "limitoffset" in tree and "limit" in tree["limitoffset"]:
        if int(tree["limitoffset"]["limit"]) <= rows:
            return text
    elif "orderby" in tree:
        return text
    code = OPAQUE.sub(lambda m: " " * len(m.group()), text)
    depth, outside = 0, []  # the spans of code outside every group
    start = 0
    for i, char in enumerate(code):
        if char == "{":
            if depth == 0:
                outside.append((start, i))
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                start = i + 1
    outside.append((start, len(code)))
    for keyword, at in ((_LIMIT, "limit"), (_VALUES, "values")):
        for first, last in reversed(outside):
            found = keyword.search(code, first, last)
            if found is None:
                continue
            if at == "limit":
                return f"{text[: found.start(1)]}{rows}{text[found.end(1) :]}"
            return f"{text[: found.start()]}LIMIT {rows}\n{text[found.start() :]}"
    return f"{text}\nLIMIT {rows}"


def _describe_as_construct(text: str, tree: CompValue) -> str | tuple[str, tuple[str, ...], str]:
    """A DESCRIBE query (its dataset clauses cut out) as the CONSTRUCT of the embedded store's
    answer: for each solution of its WHERE clause and solution modifiers (one empty solution
    without them), the triples of the default graph whose subject is a resource it names, by
    IRI or by a variable bound to an IRI.

    `DESCRIBE <a> <b>` gives that CONSTRUCT. Any other DESCRIBE gives the SELECT of its
    solutions, the terms naming its resources in them, and the CONSTRUCT as one query (the
    SELECT nested in it), sent only when the solutions are too many to be listed: Virtuoso
    7.2 answers that nested form with triples missing when the SELECT has ORDER BY and
    LIMIT (DESCRIBE ?e WHERE { ?e dcterms:subject ?c } ORDER BY DESC(STR(?e)) LIMIT 3: only
    some of one entry's triples, which ones depending on what the server ran before), so the
    resources are selected first and described by VALUES (_described_by_values)."""
    code = OPAQUE.sub(lambda m: " " * len(m.group()), text)
    head = _DESCRIBE.search(code)
    if head is None:
        raise QuerySyntaxError("the query does not parse: no DESCRIBE")
    after = _AFTER_RESOURCES.search(code, head.end())
    rest = text[after.start() if after else len(text) :]
    named = tree["var"] if "var" in tree else []  # noqa: SIM401 (CompValue.get: see above)
    if (
        "where" not in tree
        and not rest.strip()
        and named
        and all(isinstance(r, URIRef) for r in named)
    ):
        # `DESCRIBE <a> <b>`, the common case: the same answer from a plain pattern, which
        # Virtuoso plans as simply as its own DESCRIBE (no nested SELECT, no BIND).
        iris = " ".join(dict.fromkeys(iri_ref(str(r)) for r in named))
        where = f"WHERE {{ VALUES ?d {{ {iris} }} ?d ?p ?o }}"
        return f"{text[: head.start()]}CONSTRUCT {{ ?d ?p ?o }} {where}"
    if "where" not in tree:
        rest = f" WHERE {{ }} {rest}"
    variables = sorted({str(v) for v in _walk(tree) if isinstance(v, Variable)})
    if "var" in tree:
        resources = [v for v in tree["var"] if isinstance(v, Variable | URIRef)]
    else:  # DESCRIBE *: every variable of the query
        resources = [Variable(v) for v in variables]
    fresh = _fresh(variables)
    named = [f"?{v}" for v in dict.fromkeys(str(r) for r in resources if isinstance(r, Variable))]
    projection = " ".join(named) or f"(1 AS ?{fresh}_one)"
    terms = [r.n3() if isinstance(r, Variable) else iri_ref(str(r)) for r in resources]
    # One resource per solution and index ?k: the index picks which (IF on an unbound
    # variable is an error, which leaves ?d unbound and the row filtered out).
    choice = terms[-1] if terms else "1"
    for i in range(len(terms) - 2, -1, -1):
        choice = f"IF(?{fresh}_k = {i}, {terms[i]}, {choice})"
    index = f"VALUES ?{fresh}_k {{ {' '.join(map(str, range(len(terms))))} }} "
    index = index if len(terms) > 1 else ""
    d, p, o = (f"?{fresh}_{n}" for n in ("d", "p", "o"))
    nested = (
        f"{text[: head.start()]}CONSTRUCT {{ {d} {p} {o} }} WHERE {{ "
        f"{{ SELECT DISTINCT {d} WHERE {{ {{ SELECT {projection} {rest}\n}} "
        f"{index}BIND({choice} AS {d}) FILTER(isIRI({d})) }} }} {d} {p} {o} }}"
    )
    select = f"{text[: head.start()]}SELECT {projection} {rest}"
    return select, tuple(terms), nested


def _described_by_values(resources: list[str]) -> str:
    """The CONSTRUCT of the default graph's triples about each of the resources (`<IRI>`s)."""
    return f"CONSTRUCT {{ ?d ?p ?o }} WHERE {{ VALUES ?d {{ {' '.join(resources)} }} ?d ?p ?o }}"


def _fresh(used: list[str]) -> str:
    """A variable name prefix that no variable of the query starts with."""
    name = "kgpub"
    while any(v.startswith(name) for v in used):
        name += "_"
    return name


def _read(answer: Any, endpoint: str) -> bytes:
    """The body of a 2xx answer. Otherwise the store's reason (Virtuoso repeats the query it
    ran after "SPARQL query:", with the release's graph names: the user sees only the reason)
    in an error by whose fault it is (RFC 9110 §15.5, §15.6): a 4xx refuses the query (400);
    a 5xx, or a 401/403 to kgpub's anonymous queries, is the store failing: 502, or 503 when
    it ran out of time or is overloaded (protocol.out_of_time) and when Virtuoso's time budget
    stops a query midway and answers 500 with the results it had (at 1M entries every such
    answer came for the two queries that outrun the 10 s budget on the embedded store too,
    bench/README.md; "@prefix" begins its result set in Turtle)."""
    try:
        status = answer.status
        if not 200 <= status < 300:
            said = answer.body.read(600).decode("utf-8", "replace")
            reason = " ".join(said.split("SPARQL query:")[0].split())
            cut = status == 500 and said.lstrip().startswith(("{", "<?xml", "<sparql", "@prefix"))
            if out_of_time(status, said) or cut:
                if cut:
                    reason = "the store broke its answer off (its time budget)"
                raise StoreUnavailable(endpoint, f"HTTP {status}: {reason}")
            if status >= 500 or status in (401, 403):
                raise StoreFailed(endpoint, f"HTTP {status}: {reason}")
            raise QuerySyntaxError(f"the store refused the query: {reason}")
        return bytes(answer.body.read())
    finally:
        answer.body.close()


def _results(body: bytes, public: Mapping[str, str]) -> Any:
    """SPARQL JSON results from the server, with the dataset's graphs named publicly and
    Virtuoso's "typed-literal" read as SPARQL 1.1's "literal", as pyoxigraph results. When the
    answer names none of the dataset's graphs nor a Virtuoso blank node, its bytes go to
    pyoxigraph's parser as they are (which reads "typed-literal" too, 0.5.13): reading a large
    answer into Python objects and writing it back cost 0.1 ms per KB."""
    if not _names_any(body, public):
        try:
            return pyoxigraph.parse_query_results(body, format=pyoxigraph.QueryResultsFormat.JSON)
        except (SyntaxError, ValueError) as exc:
            raise QuerySyntaxError(f"the store answered unreadable results: {exc}") from exc
    try:
        document = json.loads(body)
    except ValueError as exc:
        raise QuerySyntaxError(f"the store answered unreadable results: {exc}") from exc
    if "boolean" not in document:
        for row in document.get("results", {}).get("bindings", []):
            for value in row.values():
                if value.get("type") == "typed-literal":
                    value["type"] = "literal"
                elif value.get("type") == "bnode":
                    value["value"] = str(value.get("value", "")).removeprefix(VIRTUOSO_BNODE)
                if value.get("type") == "uri" and value.get("value") in public:
                    value["value"] = public[value["value"]]
    data = json.dumps(document).encode("utf-8")
    return pyoxigraph.parse_query_results(data, format=pyoxigraph.QueryResultsFormat.JSON)


def _tsv_results(tsv: bytes) -> Any:
    """SPARQL TSV results (graph/store/resultset.py's, from Virtuoso's Turtle) as pyoxigraph
    results."""
    try:
        return pyoxigraph.parse_query_results(tsv, format=pyoxigraph.QueryResultsFormat.TSV)
    except (SyntaxError, ValueError) as exc:
        raise QuerySyntaxError(f"the store answered unreadable results: {exc}") from exc


def _names_any(body: bytes, public: Mapping[str, str]) -> bool:
    """Whether an answer may name one of the dataset's server graphs or a Virtuoso blank node
    (or escapes a '/' or a printable ASCII character, which could hide either): then it is
    read term by term."""
    return (
        _ESCAPED.search(body) is not None
        or VIRTUOSO_BNODE.encode() in body
        or any(name.encode("utf-8") in body for name in public)
    )


def _triples(body: bytes, content_type: str, public: Mapping[str, str]) -> Iterator[Triple]:
    """The triples of a CONSTRUCT answer (parsed as they are serialized again), with the
    dataset's graphs named publicly when the answer names one."""
    endpoint = content_type.split(";", 1)[0].strip().lower()
    fmt = RDF_PARSERS.get(endpoint)
    if fmt is None:
        raise QuerySyntaxError(f"the store answered {content_type!r}, not RDF")
    triples: Iterator[Triple] = (quad.triple for quad in pyoxigraph.parse(body, format=fmt))
    if any(name.encode("utf-8") in body for name in public):
        triples = _public(triples, public)
    try:
        yield from triples
    except (SyntaxError, ValueError) as exc:
        raise QuerySyntaxError(f"the store answered unreadable {endpoint}: {exc}") from exc


def _public(triples: Iterable[Triple], public: Mapping[str, str]) -> Iterator[Triple]:
    """The triples with the dataset's graphs named publicly (a graph's name can be bound in
    any position of a CONSTRUCT template)."""
    names: dict[object, pyoxigraph.NamedNode] = {
        pyoxigraph.NamedNode(k): pyoxigraph.NamedNode(v) for k, v in public.items()
    }
    for t in triples:
        yield pyoxigraph.Triple(
            names.get(t.subject, t.subject),
            names.get(t.predicate, t.predicate),
            names.get(t.object, t.object),
        )
