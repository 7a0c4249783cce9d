"""The store seam: the only package that imports pyoxigraph.Store or speaks to a SPARQL server.

Its interfaces ask the app's questions, not a triple store's: each Reader call is answered
with one or two queries however the graph is stored (over HTTP a page costs a fixed number of
round trips, never one per triple). Backends:

  oxigraph.py   the embedded default: the release's Oxigraph store on disk
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from pyoxigraph import Triple

from graph.resources import Description, ResourceKind


class Reader(Protocol):
    """What serving asks of one release's graph; one per release and worker, thread-safe."""

    def exists(self, iri: str) -> bool:
        """Whether the library's graph says anything about the IRI (False for a non-IRI)."""
        ...

    def triples(self, iri: str) -> list[Triple]:
        """The IRI's own triples (it as subject) in the library's graph."""
        ...

    def describe(
        self, iri: str, page: int = 1, size: int = 100, members: Sequence[str] | None = None
    ) -> Description | None:
        """What is served for the IRI (graph/resources.py), or None when nothing is known."""
        ...

    def members(self, iri: str, kind: ResourceKind) -> list[str]:
        """A concept's entries or the library's parts, newest first."""
        ...

    def entries(self) -> list[str]:
        """Every entry IRI, newest first."""
        ...

    def concepts(self) -> list[str]:
        """The IRIs of the scheme's concepts, sorted."""
        ...

    def category_counts(self) -> dict[str, int]:
        """Entries per concept IRI."""
        ...

    def close(self) -> None:
        """Release what the reader holds (connections); it is not used afterwards."""
        ...
