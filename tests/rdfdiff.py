"""Compare RDF graphs by isomorphism and explain the difference when they are not."""

from __future__ import annotations

import rdflib
from rdflib.compare import graph_diff, to_isomorphic


def assert_isomorphic(actual: rdflib.Graph, expected: rdflib.Graph) -> None:
    """Fail with the triples only in one graph or the other (sorted N-Triples)."""
    iso_a, iso_e = to_isomorphic(actual), to_isomorphic(expected)
    if iso_a == iso_e:
        return
    _, only_actual, only_expected = graph_diff(iso_a, iso_e)

    def lines(g: rdflib.Graph) -> str:
        return "\n".join(sorted(g.serialize(format="nt").strip().splitlines()))

    raise AssertionError(
        f"graphs differ\n--- only in actual ({len(only_actual)}):\n{lines(only_actual)}"
        f"\n--- only in expected ({len(only_expected)}):\n{lines(only_expected)}"
    )
