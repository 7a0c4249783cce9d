"""The store seam: the only package that imports pyoxigraph.Store or speaks to a SPARQL server.

Its interfaces ask the app's questions, not a triple store's: each Reader call is answered
with one or two queries however the graph is stored (over HTTP a page costs a fixed number of
round trips, never one per triple). Backends:

  oxigraph.py   the embedded default: the release's Oxigraph store on disk
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from pyoxigraph import Triple

from graph.resources import Description, ResourceKind

if TYPE_CHECKING:
    from graph.convert import Converted
    from graph.dumps import Chunk


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


class Loader(Protocol):
    """The build side: puts a release's graph into the store. The `current` swap stays the
    one commit for every backend: what a loader staged is served only once `current` points
    at the release whose manifest names it (finish's record)."""

    def stage(
        self,
        converted: Converted,
        previous: Path | None,
        chunks: list[Chunk],
        index: dict[str, Any],
    ) -> None:
        """Load the library's graph: a copy of the previous release's brought up to date by
        the chunks that changed (graph/dumps.py graph_changes) when it can, else in full."""
        ...

    def add_void(self, void_ttl: bytes) -> None:
        """Put the VoID description in its named graph (<base>.well-known/void)."""
        ...

    def finish(self) -> dict[str, str]:
        """Make what was staged durable and close it; what the manifest records of it."""
        ...

    def discard(self) -> None:
        """Remove what was staged (a failed build); safe to call more than once."""
        ...

    def prune(self, manifests: Sequence[Mapping[str, Any]]) -> None:
        """Remove what the store holds for releases that are deleted (their manifests)."""
        ...
