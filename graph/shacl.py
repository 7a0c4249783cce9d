"""Load the SHACL shapes, validate a library graph, and explain violations to a person.

Two engines give the same report (tests/test_shacl.py checks it on every fixture):
``pyshacl`` (the reference, on an rdflib graph) and ``turbo`` (pyshacl-turbo, a Rust engine
with pyshacl's API that validates a pyoxigraph store directly, about 5x faster).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pyoxigraph
import rdflib
from rdflib.namespace import SH
from rdflib.term import Node

from graph.convert import Converted
from graph.errors import Violation

SHAPES_DIR = Path(__file__).resolve().parent.parent / "shapes"
Engine = Literal["turbo", "pyshacl"]
ENGINES: tuple[Engine, ...] = ("turbo", "pyshacl")


@dataclass(frozen=True)
class Report:
    """The outcome of validating one graph."""

    conforms: bool
    violations: list[Violation]
    graph: rdflib.Graph

    def turtle(self) -> bytes:
        """The SHACL validation report as Turtle (sorted, so identical runs give identical bytes)."""
        data: bytes = self.graph.serialize(format="turtle", encoding="utf-8")
        return data


def load_shapes(shapes_dir: Path = SHAPES_DIR) -> rdflib.Graph:
    """All shapes files (*.ttl) as one rdflib graph."""
    shapes = rdflib.Graph()
    for path in sorted(shapes_dir.glob("*.ttl")):
        shapes.parse(path, format="turtle")
    return shapes


def to_rdflib(triples: Iterable[pyoxigraph.Triple]) -> rdflib.Graph:
    """Copy pyoxigraph triples into an rdflib graph (through N-Triples, the fastest path)."""
    graph = rdflib.Graph()
    graph.parse(data=pyoxigraph.serialize(triples, format=pyoxigraph.RdfFormat.N_TRIPLES),
                format="nt")
    return graph


def validate(
    data: pyoxigraph.Store | rdflib.Graph,
    converted: Converted | None = None,
    shapes: rdflib.Graph | None = None,
    engine: Engine = "turbo",
) -> Report:
    """Validate data against the shapes; violations name the entry and its source line."""
    shapes = shapes if shapes is not None else load_shapes()
    if engine == "turbo":
        import pyshacl_turbo

        conforms, results, _ = pyshacl_turbo.validate(data, shacl_graph=shapes)
    else:
        import pyshacl

        graph = data if isinstance(data, rdflib.Graph) else _store_graph(data)
        conforms, results, _ = pyshacl.validate(graph, shacl_graph=shapes)
    report_graph = _as_graph(results)
    return Report(bool(conforms), explain(report_graph, converted), report_graph)


def _store_graph(store: pyoxigraph.Store) -> rdflib.Graph:
    return to_rdflib(
        pyoxigraph.Triple(q.subject, q.predicate, q.object)
        for q in store.quads_for_pattern(None, None, None, pyoxigraph.DefaultGraph())
    )


def _as_graph(results: Any) -> rdflib.Graph:
    if isinstance(results, rdflib.Graph):
        return results
    graph = rdflib.Graph()
    graph.parse(data=results, format="turtle")
    return graph


def explain(report: rdflib.Graph, converted: Converted | None) -> list[Violation]:
    """Turn the report graph into violations a person can act on, in a stable order."""
    entries = converted.entries if converted else {}
    categories = converted.categories if converted else {}
    out: list[Violation] = []
    for result in report.subjects(rdflib.RDF.type, SH.ValidationResult):
        focus = _text(report.value(result, SH.focusNode))
        label, source = focus, ""
        if focus in entries:
            entry = entries[focus]
            label, source = entry.title, ", ".join(str(p) for p in entry.places)
        elif focus in categories:
            label = categories[focus].label
        out.append(
            Violation(
                focus=focus,
                label=label,
                source=source,
                path=_short(report.value(result, SH.resultPath)),
                component=_short(report.value(result, SH.sourceConstraintComponent)),
                message=_text(report.value(result, SH.resultMessage)),
                severity=_short(report.value(result, SH.resultSeverity)),
            )
        )
    return sorted(out, key=lambda v: (v.source, v.focus, v.path, v.component, v.message))


def result_keys(report: rdflib.Graph) -> set[tuple[str, str, str, str]]:
    """(focus, path, component, value) of each result: what two engines must agree on."""
    keys = set()
    for result in report.subjects(rdflib.RDF.type, SH.ValidationResult):
        keys.add(
            (
                _text(report.value(result, SH.focusNode)),
                _text(report.value(result, SH.resultPath)),
                _text(report.value(result, SH.sourceConstraintComponent)),
                _text(report.value(result, SH.value)),
            )
        )
    return keys


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
