"""Load the SHACL shapes, validate a library graph, and explain violations to a person.

Two engines give the same report (tests/test_shacl.py checks it, result by result and by graph
isomorphism, on a graph breaking each rule and on the seed library):
``pyshacl`` (the reference, on an rdflib graph of the whole library) and ``turbo``
(pyshacl-turbo, a Rust engine with pyshacl's API, about 5x faster and 10x leaner).

The turbo engine validates a large library by parts (``Partition``): the context (library,
scheme and concepts) once, then the entries in chunks, each chunk with the context beside it,
two chunks at a time (the engine releases the GIL). This gives the whole graph's report
because the shapes are local (shapes/*.ttl): what a shape checks at an entry is read from the
entry's own triples and from the context, and what it checks at a context node is read from
the context; the library's dcterms:hasPart links to entries are checked with the context
only, and only when a shape may read them (_links_matter). A shape that breaks this rule
(one entry looking at another, a concept counting its entries) needs a whole-graph
validation: tests/test_shacl.py compares the two on every fixture, so such a shape makes it
fail. The chunks need not wait for the whole graph: a full build hands each one to a thread
as soon as convert has written it (``Ahead``), and validate() takes their reports.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Sequence
from concurrent import futures
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pyoxigraph
import rdflib
from rdflib import BNode
from rdflib.namespace import RDF, SH
from rdflib.term import Node

from graph.convert import Converted, GraphText, Layout
from graph.errors import Violation

SHAPES_DIR = Path(__file__).resolve().parent.parent / "shapes"
Engine = Literal["turbo", "pyshacl"]
ENGINES: tuple[Engine, ...] = ("turbo", "pyshacl")
CHUNK = 2_000  # entries per part: fastest of 1k-25k, 2 threads, at 100k (bench/build.py --parts)
WORKERS = min(2, os.cpu_count() or 1)

ChunkProgress = Callable[[int, int], None]


@dataclass(frozen=True)
class Report:
    """The outcome of validating one graph."""

    conforms: bool
    violations: list[Violation]
    graph: rdflib.Graph

    def turtle(self) -> bytes:
        """The SHACL validation report as Turtle."""
        data: bytes = self.graph.serialize(format="turtle", encoding="utf-8")
        return data


@dataclass(frozen=True)
class Partition:
    """A graph in N-Triples, cut for validation by parts (see the module docstring).

    context  the triples of every node that is not an entry, except links to entries
    links    triples from a context node to an entry (the library's dcterms:hasPart)
    entries  the entries' own triples, one after the other; entry i is
             entries[starts[i]:starts[i + 1]]
    """

    context: bytes
    links: bytes
    entries: bytes | memoryview | GraphText
    starts: Sequence[int]
    # The context and links conformed as they are (in the current release, to the same
    # shapes): their part is not validated again, only the entries' parts (and the links
    # may be left out: dumps.changed_partition does not read them).
    context_conforms: bool = False
    # Where the entries begin in the text convert wrote, when they are all of its entries
    # (Partition.of; an Ahead's chunks are of that text); -1 for a choice of them.
    offset: int = -1

    @classmethod
    def of(cls, converted: Converted) -> Partition:
        """The partition of a converted library (no copy of the entries)."""
        start = converted.layout.entries[0]
        return cls(
            converted.context,
            converted.links,
            converted.text.tail(start),
            [s - start for s in converted.layout.entries],
            offset=start,
        )

    @property
    def ntriples(self) -> bytes:
        """The whole graph."""
        return self.context + self.links + bytes(self.entries)

    def chunks(self, size: int) -> list[range]:
        """The entries in runs of size, as ranges of entry numbers."""
        n = len(self.starts) - 1
        return [range(i, min(i + size, n)) for i in range(0, n, size)]

    def text(self, entries: range) -> bytes:
        """The triples of a run of entries."""
        return bytes(self.entries[self.starts[entries.start] : self.starts[entries.stop]])


class Ahead:
    """The entries of a graph validated while convert writes them (its written hook, month
    by month), by one thread beside it. A full build's convert runs on one core and leaves the
    other idle (a minute at 1M entries), and a chunk of entries needs only the context beside
    it (the module docstring), which convert writes first. validate() then takes the reports
    of the chunks done or under way, and validates the others itself: the same chunks as
    without it, so the same report."""

    def __init__(self, shapes: rdflib.Graph | None = None, chunk: int = 0) -> None:
        self.shapes = shapes if shapes is not None else load_shapes()
        self.chunk = chunk or CHUNK
        self.taken = 0  # chunks whose reports validate() took
        self._program: Any = None
        self._pool: ThreadPoolExecutor | None = None
        self._context = b""
        self._starts: list[int] = []  # where each entry written so far begins
        self._handed = 0  # the entries before this one are in chunks handed to the thread
        self._jobs: dict[int, tuple[int, int, Future[rdflib.Graph]]] = {}  # by first entry

    def written(self, text: GraphText, layout: Layout) -> None:
        """convert's written: a month's entries are in text (layout.entries: where each
        begins, then its end); every whole chunk of entries so far goes to the thread."""
        if not self._starts and len(layout.entries) > 1:
            self._context = text[: layout.parts] + text[layout.scheme : layout.entries[0]]
        starts = self._starts
        starts += layout.entries[:-1]
        while (first := self._handed) + self.chunk <= len(starts):
            last = first + self.chunk
            end = starts[last] if last < len(starts) else layout.entries[-1]
            self._jobs[first] = (starts[first], end, self._submit(text, starts[first], end))
            self._handed = last

    def _submit(self, text: GraphText, start: int, end: int) -> Future[rdflib.Graph]:
        if self._pool is None:
            self._program = _compile(self.shapes)
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kgpub-ahead")
        context = self._context
        # The chunk is read when its turn comes: queued ones hold no text.
        return self._pool.submit(lambda: _turbo(self._program, context + text[start:end]))

    def take(
        self, partition: Partition, chunks: Sequence[range], shapes: rdflib.Graph
    ) -> dict[int, Future[rdflib.Graph]]:
        """The reports of partition's chunks validated here, done or under way, by their first
        entry: the same entries of the same text with the same context and shapes. The
        others (not begun, or not of this partition) are given up, for the caller to validate."""
        jobs, self._jobs = self._jobs, {}
        offset, starts = partition.offset, partition.starts
        same = offset >= 0 and shapes is self.shapes and partition.context == self._context
        found: dict[int, Future[rdflib.Graph]] = {}
        for entries in chunks:
            job = jobs.pop(entries.start, None)
            if job is None:
                continue
            start, end, future = job
            if (
                same
                and len(entries) == self.chunk
                and (start, end) == (offset + starts[entries.start], offset + starts[entries.stop])
                and not future.cancel()
            ):
                found[entries.start] = future
            else:
                future.cancel()
        for _, _, future in jobs.values():
            future.cancel()
        self.taken += len(found)
        return found

    def settle(self) -> None:
        """Wait until every chunk handed to the thread is validated."""
        futures.wait([future for _, _, future in self._jobs.values()])

    def close(self) -> None:
        """Give up the chunks not begun and wait for the one under way (it reads the spool)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        self._jobs.clear()


def load_shapes(shapes_dir: Path = SHAPES_DIR) -> rdflib.Graph:
    """All shapes files (*.ttl) as one rdflib graph."""
    shapes = rdflib.Graph()
    for path in sorted(shapes_dir.glob("*.ttl")):
        shapes.parse(path, format="turtle")
    return shapes


def to_rdflib(data: Iterable[pyoxigraph.Triple] | bytes) -> rdflib.Graph:
    """An rdflib graph of pyoxigraph triples or of N-Triples text."""
    if not isinstance(data, bytes):
        data = pyoxigraph.serialize(data, format=pyoxigraph.RdfFormat.N_TRIPLES) or b""
    graph = rdflib.Graph()
    graph.parse(data=data, format="nt")
    return graph


def validate(
    data: Partition | bytes | rdflib.Graph,
    converted: Converted | None = None,
    shapes: rdflib.Graph | None = None,
    engine: Engine = "turbo",
    chunk: int = 0,
    progress: ChunkProgress | None = None,
    ahead: Ahead | None = None,
) -> Report:
    """Validate a graph against the shapes: N-Triples, a Partition of it or an rdflib graph.

    Violations name the entry and its source line when converted is given. The turbo engine
    validates a Partition by parts, taking the chunks ahead validated while it was written;
    pyshacl always validates the whole graph.
    """
    if shapes is None:
        shapes = ahead.shapes if ahead is not None else load_shapes()
    if engine == "pyshacl":
        import pyshacl

        graph = data if isinstance(data, rdflib.Graph) else to_rdflib(_ntriples(data))
        _, results, _ = pyshacl.validate(graph, shacl_graph=shapes)
        report_graph = results if isinstance(results, rdflib.Graph) else _parse(results)
    elif isinstance(data, Partition):
        report_graph = _validate_parts(data, shapes, chunk or CHUNK, progress, ahead)
    else:
        report_graph = _turbo(_compile(shapes), _ntriples(data))
    return Report(_conforms(report_graph), explain(report_graph, converted), report_graph)


def _ntriples(data: Partition | bytes | rdflib.Graph) -> bytes:
    if isinstance(data, Partition):
        return data.ntriples
    if isinstance(data, rdflib.Graph):
        text: bytes = data.serialize(format="nt", encoding="utf-8")
        return text
    return data


def _conforms(report: rdflib.Graph) -> bool:
    values = [
        isinstance(o, rdflib.Literal) and o.toPython() is True
        for o in report.objects(None, SH.conforms)
    ]
    return bool(values) and all(values)


def _compile(shapes: rdflib.Graph) -> Any:
    import pyshacl_turbo

    return pyshacl_turbo.compile_shapes(shapes)  # type: ignore[no-untyped-call]


def _turbo(program: Any, ntriples: bytes) -> rdflib.Graph:
    # pyshacl-turbo's own input record (pinned to 0.6 in pyproject.toml): its parser reads the
    # N-Triples text directly, where a pyoxigraph Store would be dumped to text twice first.
    from pyshacl_turbo.rdf import Input

    _, report, _ = program.validate(
        Input(ntriples.decode("utf-8"), "nt", None, {}), _normalize_report_literals=True
    )
    return report if isinstance(report, rdflib.Graph) else _parse(report)


def _validate_parts(
    partition: Partition,
    shapes: rdflib.Graph,
    chunk: int,
    progress: ChunkProgress | None,
    ahead: Ahead | None = None,
) -> rdflib.Graph:
    """Validate the context once and the entries chunk by chunk, but for those validated
    ahead; merge the reports."""
    program = _compile(shapes)
    context_nodes = _subjects(partition.context)
    total = len(partition.starts) - 1
    done = 0
    if progress:
        progress(0, total)

    def run(entries: range) -> rdflib.Graph:
        return _turbo(program, partition.context + partition.text(entries))

    parts: list[tuple[rdflib.Graph, Callable[[Node | None], bool]]] = []
    if not partition.context_conforms:
        links = partition.links if _links_matter(shapes, partition.links) else b""
        context = _turbo(program, partition.context + links)
        parts.append((context, lambda f: f in context_nodes))
    chunks = partition.chunks(chunk)
    taken = ahead.take(partition, chunks, shapes) if ahead is not None else {}
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        # Each chunk is cut and decoded in its worker when its turn comes: two in memory at a
        # time, not all.
        reports = [taken.get(r.start) or pool.submit(run, r) for r in chunks]
        for entries, future in zip(chunks, reports, strict=True):
            parts.append((future.result(), lambda f: f not in context_nodes))
            done += len(entries)
            if progress:
                progress(done, total)
    return _merge(parts, shapes)


def _links_matter(shapes: rdflib.Graph, links: bytes) -> bool:
    """Whether a shape may read the links (a library's dcterms:hasPart to 100k entries take
    most of the context part's time): only if one names their predicate (as a path, a
    target, in a list), or is closed, or has a SPARQL query that may (_sparql_may_read)."""
    if not links:
        return False
    end = links.find(b"> <")
    predicate = rdflib.URIRef(links[end + 3 : links.find(b">", end + 3)].decode())
    if (
        any(shapes.triples((None, None, predicate)))
        or any(shapes.triples((predicate, None, None)))
        or any(shapes.triples((None, SH.closed, None)))
        or any(shapes.triples((None, RDF.type, SH.SPARQLTarget)))
    ):
        return True
    queries = [*shapes.objects(None, SH.select), *shapes.objects(None, SH.ask)]
    return any(_sparql_may_read(str(q), predicate) for q in queries)


_VARIABLE_PREDICATE = re.compile(r"[?$]\w+\s+[?$]\w+")  # ?s ?p ...: any predicate
_NEGATED_SET = re.compile(r"!(?!=)")  # !(...) matches every predicate but those listed


def _sparql_may_read(query: str, predicate: str) -> bool:
    """Whether a SPARQL constraint may match triples with this predicate: it names it (by
    its local name, whatever the prefix), or its pattern has a variable or a negated set in
    a predicate's place. Conservative: a false yes costs time, never a missed result."""
    local = re.split(r"[/#]", predicate)[-1]
    body = query[query.find("{") :] if "{" in query else query
    return (
        local in query
        or _VARIABLE_PREDICATE.search(body) is not None
        or _NEGATED_SET.search(body) is not None
    )


def _subjects(ntriples: bytes) -> set[Node]:
    """The subjects of N-Triples lines (pyshacl-turbo keeps blank-node labels in its report)."""
    found: set[Node] = set()
    for line in ntriples.splitlines():
        if line.startswith(b"<"):
            found.add(rdflib.URIRef(line[1 : line.find(b"> ")].decode()))
        elif line.startswith(b"_:"):
            found.add(BNode(line[2 : line.find(b" ")].decode()))
    return found


def _merge(
    parts: Sequence[tuple[rdflib.Graph, Callable[[Node | None], bool]]], shapes: rdflib.Graph
) -> rdflib.Graph:
    """One report from the reports of the parts, keeping each part's results at the focus
    nodes it owns; blank nodes are renamed apart, except the shapes' own."""
    merged = rdflib.Graph()
    for prefix, namespace in shapes.namespaces():
        merged.bind(prefix, namespace)
    report = BNode()
    shape_nodes = {n for n in shapes.all_nodes() if isinstance(n, BNode)}
    conforms = True
    for graph, owns in parts:
        conforms = conforms and _conforms(graph)
        renamed: dict[Node, Node] = {}

        def node(n: Node, renamed: dict[Node, Node] = renamed) -> Node:
            if isinstance(n, BNode) and n not in shape_nodes:
                return renamed.setdefault(n, BNode())
            return n

        # The results this part owns, with everything the report says about them: their
        # sh:detail results (SHACL §5.3.1.5), source shapes, described blank-node values.
        kept = [r for r in _results(graph) if owns(graph.value(r, SH.focusNode))]
        seen: set[Node] = set(kept)
        stack = list(kept)
        while stack:
            subject = stack.pop()
            for p, o in graph.predicate_objects(subject):
                merged.add((node(subject), p, node(o)))
                if o not in seen and not isinstance(o, rdflib.Literal):
                    seen.add(o)
                    stack.append(o)
        for r in kept:
            merged.add((report, SH.result, node(r)))
    merged.add((report, RDF.type, SH.ValidationReport))
    merged.add((report, SH.conforms, rdflib.Literal(conforms)))
    return merged


def _results(report: rdflib.Graph) -> list[Node]:
    """The results of a report, not those nested in another's sh:detail."""
    return [r for r in report.objects(None, SH.result) if isinstance(r, BNode | rdflib.URIRef)]


def _parse(results: Any) -> rdflib.Graph:
    graph = rdflib.Graph()
    graph.parse(data=results, format="turtle")
    return graph


def explain(report: rdflib.Graph, converted: Converted | None) -> list[Violation]:
    """Turn the report graph into violations a person can act on, in source order."""
    entries = converted.entries if converted else {}
    categories = converted.categories if converted else {}
    found: list[tuple[tuple[str, int], Violation]] = []
    for result in _results(report):
        focus = _text(report.value(result, SH.focusNode))
        label, source, place = focus, "", ("", 0)
        if focus in entries:
            entry = entries[focus]
            label, source = entry.title, ", ".join(str(p) for p in entry.places)
            place = (entry.places[0].file, entry.places[0].line)
        elif focus in categories:
            label = categories[focus].label
        violation = Violation(
            focus=focus,
            label=label,
            source=source,
            path=_short(report.value(result, SH.resultPath)),
            component=_short(report.value(result, SH.sourceConstraintComponent)),
            message=_text(report.value(result, SH.resultMessage)),
            severity=_short(report.value(result, SH.resultSeverity)),
        )
        found.append((place, violation))
    found.sort(key=lambda f: (f[0], f[1].focus, f[1].path, f[1].component, f[1].message))
    return [v for _, v in found]


ResultKey = tuple[str, str, str, str, str, str, str, str]


def result_keys(report: rdflib.Graph) -> list[ResultKey]:
    """Each result as (focus, path, component, value, severity, message, source shape,
    details), sorted, repeats kept: what two engines must agree on. Blank nodes are '_:',
    except a source shape, named by its own triples in the report (so two reports compare
    without their labels); details are the keys of the sh:detail results, as text."""
    return sorted(_result_key(report, r) for r in _results(report))


def _result_key(report: rdflib.Graph, result: Node) -> ResultKey:
    details = sorted(_result_key(report, d) for d in report.objects(result, SH.detail))
    return (
        _key(report.value(result, SH.focusNode)),
        _key(report.value(result, SH.resultPath)),
        _key(report.value(result, SH.sourceConstraintComponent)),
        _key(report.value(result, SH.value)),
        _key(report.value(result, SH.resultSeverity)),
        _key(report.value(result, SH.resultMessage)),
        _shape_name(report, report.value(result, SH.sourceShape)),
        repr(details) if details else "",
    )


def _shape_name(report: rdflib.Graph, shape: Node | None) -> str:
    if not isinstance(shape, BNode):
        return _text(shape)
    pairs = sorted(
        f"{p.n3()} {o.n3()}" for p, o in report.predicate_objects(shape) if not isinstance(o, BNode)
    )
    return "[" + " ; ".join(pairs) + "]"


def _key(node: Node | None) -> str:
    """A term as a key: blank nodes (labels differ between engines) as '_:'."""
    return "_:" if isinstance(node, BNode) else _text(node)


def _text(node: Node | None) -> str:
    return "" if node is None else str(node)


def _short(node: Node | None) -> str:
    text = _text(node)
    for sep in ("#", "/"):
        if sep in text:
            return text.rsplit(sep, 1)[1]
    return text


def render(violations: Sequence[Violation]) -> str:
    """The violations for a terminal: one line each, then the count."""
    lines = [v.render() for v in violations]
    lines.append(f"{len(violations)} violation{'s' * (len(violations) != 1)} of the SHACL shapes")
    return "\n".join(lines)
