"""The store seam: the only package that imports pyoxigraph.Store or speaks to a SPARQL server.

Its interfaces ask the app's questions, not a triple store's: each Reader call is answered
with one or two queries however the graph is stored (over HTTP a page costs a fixed number of
round trips, never one per triple). Backends:

  oxigraph.py   the embedded default: the release's Oxigraph store on disk (embedded.py
                opens it, also for the query children); its reader takes entries from the
                release's files (files.py), whose bytes the workers share in the page cache
  sparql.py     a SPARQL 1.1 server (Virtuoso, Oxigraph server, Fuseki...): each release in
                named graphs of its own, through protocol.py (Protocol, Update, Graph Store)
Both bring a copy of the current release's graph up to date by the lines that changed
(changes.py) when a rebuild can tell them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from pyoxigraph import Triple

from graph.errors import PublicationError
from graph.iris import Iris
from graph.store.protocol import SparqlClient

# The backends are imported by the functions that open them: the query children import
# graph/store/embedded.py and must not load rdflib through the others.
if TYPE_CHECKING:
    from graph.convert import Converted
    from graph.dumps import Chunk
    from graph.index import Index
    from graph.query import QueryJob, QueryResult
    from graph.resources import Description, ResourceKind

SPARQL_BACKEND = "sparql"  # a manifest's store record naming a SPARQL server


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
        """What is served for the IRI (graph/resources.py), or None when nothing is known.
        members: the list's members when the caller has them (graph/index.py reads a page
        at a time: only the slice shown is read)."""
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


class Runner(Protocol):
    """Runs inspected, untrusted queries (graph/query.py) within their budgets; raises
    QueryTimeout, QueryOverloaded or QueryCancelled as graph/query.py's QueryPool does."""

    def run(self, job: QueryJob, watch: int | None = None) -> QueryResult:
        """The serialized result of one query; watch: the client's socket, if any."""
        ...


@dataclass(frozen=True)
class Links:
    """A release's linkset (graph/enrich/linkset.py store_links) as a store takes it: whole,
    for a store loaded anew; or the lines (N-Triples) that differ from the previous release's
    linkset, for a store that holds that release's graph and links."""

    whole: Callable[[], bytes]  # every link's N-Triples (b"" for none), read when called
    removed: bytes = b""  # the previous release's lines this release's linkset does not have
    added: bytes = b""  # this release's lines the previous release's linkset does not have


NO_LINKS = Links(lambda: b"")


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
        the chunks that changed (graph/store/changes.py) when it can, else in full."""
        ...

    def add_links(self, links: Links) -> None:
        """Put a linkset in the library's graph, beside it: whole, or, in a store copied from
        the previous release's (which holds its links), its lines removed and added."""
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

    def prune(self, doomed: Sequence[Mapping[str, Any]], kept: Sequence[Mapping[str, Any]]) -> None:
        """Remove what the store holds for deleted releases and abandoned builds (their store
        records), except what a kept release's record also names."""
        ...


@dataclass(frozen=True)
class StoreSettings:
    """Where the graph lives: the embedded store (no query URL) or a SPARQL 1.1 server."""

    query: str = ""  # SPARQL 1.1 query endpoint; empty: the embedded Oxigraph store
    update: str = ""  # SPARQL 1.1 Update endpoint; empty: the query endpoint
    data: str = ""  # Graph Store HTTP Protocol endpoint for bulk loading; empty: Update
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout: float = 60.0
    # The query parameter through which the store takes its own time budget, in ms, so that
    # it stops a query kgpub gave up on (Virtuoso: "timeout"; empty: none is sent).
    timeout_param: str = ""
    # Graph Store (or INSERT DATA) requests a load sends at once: a server loads each on a
    # thread of its own (Virtuoso 7.2 here: 4.3M triples in 73 s with one, 44 s with two).
    streams: int = 2

    @property
    def is_remote(self) -> bool:
        return bool(self.query)

    def client(self) -> SparqlClient:
        """A client of the SPARQL server (credentials given, never logged)."""
        return SparqlClient(
            self.query,
            self.update or None,
            self.data or None,
            user=self.user,
            password=self.password,
            timeout=self.timeout,
            server_timeout_param=self.timeout_param or None,
        )


EMBEDDED = StoreSettings()
VOID_FILE = "void.ttl"  # in a release: the VoID description the dataset is described by


def open_loader(settings: StoreSettings, work: Path, iris: Iris, stamp: datetime) -> Loader:
    """The loader of a release being built in work."""
    from graph.store.oxigraph import OxigraphLoader
    from graph.store.sparql import SparqlLoader

    if settings.is_remote:
        return SparqlLoader(settings.client(), iris, work, stamp, streams=settings.streams)
    return OxigraphLoader(work / "store", iris)


def open_reader(
    settings: StoreSettings,
    release: Path,
    record: Mapping[str, Any],
    iris: Iris,
    index: Index | None = None,
) -> Reader:
    """The reader of a release's graph, wherever its manifest's store record says it is;
    index: the release's (graph/index.py), which the embedded reader reads list members'
    titles from, and the remote reader linked entries' titles."""
    from graph.dumps import DUMP_STEM, FOLDER
    from graph.formats import NTRIPLES
    from graph.store.files import EntryFiles, read_context
    from graph.store.oxigraph import OxigraphReader
    from graph.store.sparql import SparqlReader

    if is_remote(record):
        if not settings.is_remote:
            raise PublicationError(
                f"{release}: its graph is in the SPARQL store {record.get('endpoint')}; "
                "serve it with --store"
            )
        graph, void = str(record["graph"]), str(record["void"])
        # The release's folder is shared by every web process, its graph's labels too: the
        # store is asked for a resource's own triples only (graph/store/sparql.py).
        context = read_context(release)
        return SparqlReader(
            settings.client(), iris, graph, void, release / VOID_FILE, context, index
        )
    dump = release / FOLDER / (DUMP_STEM + NTRIPLES.suffix)
    files = EntryFiles.of(dump, iris, index)
    # The context with the entries' files only: a release whose list of parts cannot be read
    # is read from its store, all of it (a damaged store then answers 503 for every page).
    context = read_context(release) if files is not None else None
    return OxigraphReader.open(release / "store", iris, release / VOID_FILE, files, context)


def is_remote(record: Mapping[str, Any]) -> bool:
    """Whether a release's store record (its manifest's "store") names a SPARQL server."""
    return record.get("backend") == SPARQL_BACKEND


def open_runner(
    settings: StoreSettings,
    record: Mapping[str, Any],
    iris: Iris,
    timeout: float,
    concurrency: int,
) -> Runner:
    """The runner of untrusted queries on a remote release's graphs (the embedded store's
    runner is graph/query.py's QueryPool, one per worker process)."""
    if not is_remote(record) or not settings.is_remote:
        raise PublicationError("this release's graph is not in a SPARQL store")
    # Imported here: forward.py builds on graph/query.py, which opens embedded stores
    # through this package.
    from graph.store.forward import SparqlRunner

    return SparqlRunner(
        settings.client(), iris, str(record["graph"]), str(record["void"]), timeout, concurrency
    )
