"""The one exception tree of kgpub; callers catch these, never library exceptions.

KgpubError
├── ListingError(file, line, message)   a listing cannot be read or parsed (CLI exit 2)
├── ValidationFailed(violations)        the graph breaks a SHACL shape (CLI exit 1)
├── PublicationError                    no publication, or one that cannot be read/written
├── EntryGone(iri, title, deleted)      an entry the publication has removed (HTTP 410)
├── QueryError                          a SPARQL request that cannot be answered
│   ├── QuerySyntaxError                unparsable query (HTTP 400)
│   ├── QueryRefused                    forbidden feature: SERVICE, LOAD, remote FROM (HTTP 400)
│   ├── QueryTooLarge                   query text over the size cap (HTTP 413)
│   ├── QueryTimeout                    over the time budget (HTTP 503 + Retry-After)
│   └── QueryOverloaded                 too many concurrent queries (HTTP 503 + Retry-After)
│       └── QueryCancelled              the client went away while its query ran (HTTP 503)
├── StoreError(endpoint, message)       the store answered an error (HTTP 503 + Retry-After)
│   └── StoreUnavailable                unreachable or out of time (HTTP 503 + Retry-After)
└── EnrichmentUnavailable               the [enrich] extra is not installed (graph/enrich)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class KgpubError(Exception):
    """Base of every error kgpub raises on purpose."""


class ListingError(KgpubError):
    """A listing page that cannot be read or parsed, located at file:line."""

    def __init__(self, file: str, line: int, message: str) -> None:
        super().__init__(f"{file}:{line}: {message}")
        self.file = file
        self.line = line
        self.message = message


@dataclass(frozen=True)
class Violation:
    """One SHACL result, tied back to the entry and the source line it came from."""

    focus: str
    label: str
    source: str
    path: str
    component: str
    message: str
    severity: str

    def render(self) -> str:
        """One line for a person: where, what, which property and which rule."""
        where = f"{self.source}: " if self.source else ""
        return (
            f"{where}{self.label!r} <{self.focus}>: {self.path}: {self.message} [{self.component}]"
        )


class ValidationFailed(KgpubError):
    """The graph does not conform to the shapes."""

    def __init__(self, violations: Sequence[Violation], report_ttl: bytes = b"") -> None:
        super().__init__(f"{len(violations)} SHACL violation(s)")
        self.violations = list(violations)
        self.report_ttl = report_ttl


class PublicationError(KgpubError):
    """A publication folder that is missing, incomplete or cannot be written."""


class EntryGone(KgpubError):
    """An entry that was published and has been removed since (a tombstone: HTTP 410)."""

    def __init__(self, iri: str, title: str, deleted: str) -> None:
        super().__init__(f"<{iri}> ({title}) was removed from the library on {deleted}")
        self.iri = iri
        self.title = title
        self.deleted = deleted


class QueryError(KgpubError):
    """A SPARQL request that cannot be answered."""


class QuerySyntaxError(QueryError):
    """The query text does not parse."""


class QueryRefused(QueryError):
    """The query uses a feature that a public, read-only endpoint refuses."""


class QueryTooLarge(QueryError):
    """The query text is longer than the configured maximum."""


class QueryTimeout(QueryError):
    """The query ran past its time budget and was stopped."""


class QueryOverloaded(QueryError):
    """Too many queries are running at once."""


class QueryCancelled(QueryOverloaded):
    """The client went away while its query ran: the query was stopped (nobody reads the
    answer, a 503 like any other stop)."""


class StoreError(KgpubError):
    """The SPARQL store cannot be reached or answered an error. `endpoint` is the URL without
    credentials or query string; neither the message nor the cause ever carries a password."""

    def __init__(self, endpoint: str, message: str) -> None:
        super().__init__(f"{endpoint}: {message}")
        self.endpoint = endpoint
        self.message = message

    def __reduce__(self) -> tuple[type[StoreError], tuple[str, str]]:
        # Picklable with both fields, so that it crosses a process pool intact.
        return (type(self), (self.endpoint, self.message))


class StoreUnavailable(StoreError):
    """The store is unreachable, refused the connection, or did not answer within the time
    budget (locally, or its own budget cut the answer short): worth retrying later."""


class StoreFailed(StoreError):
    """The store answered with a server error of its own (HTTP 5xx other than a timeout or an
    overload, or it refused kgpub's own account): the request was valid as far as kgpub can
    tell, and the gateway's upstream failed (RFC 9110 §15.6.3: 502 Bad Gateway). `message`
    is the store's reason without its copy of the query."""


class EnrichmentUnavailable(KgpubError):
    """What enrichment needs (the model package, tokenizers, numpy: the [enrich] extra) is not
    installed; a build goes on without related entries, a meaning search is refused (503)."""
