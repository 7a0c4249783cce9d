"""What a build adds to a release beyond the graph: the publishers named in titles
(publishers.json, from what graph/convert.py recognised) and the candidates the table lacks,
for the summary; with the [enrich] extra, when asked, related entries and the vectors of
the meaning search.

Imports nothing of the extra until enrichment is asked for: the default build stays as it is.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from graph.convert import Converted
from graph.enrich.linkset import Written, write_linkset
from graph.enrich.read import FILE
from graph.errors import EnrichmentUnavailable
from graph.publishers import write_release

MAX_CANDIDATES = 20  # candidates named in the warning; the count says how many in all


class Phases(Protocol):
    def start(self, name: str, total: int = 0) -> None: ...

    def reporter(self, name: str) -> Callable[[int, int], None]: ...


def publisher_candidates(converted: Converted) -> str:
    """The build summary's sentence on parentheses and title parts that may name a publisher
    the table (data/publishers.csv) does not know, or "" (graph/convert.py recognised them,
    month by month)."""
    candidates = Counter(converted.candidates)
    if not candidates:
        return ""
    common = candidates.most_common(MAX_CANDIDATES)
    named = ", ".join(f"{text!r} ({n})" if n > 1 else repr(text) for text, n in common)
    more = len(candidates) - len(common)
    return (
        f"{len(candidates)} possible publisher(s) in titles are not in the publishers "
        f"table (data/publishers.csv) and stay part of the title only: {named}"
        + (f" and {more} more" if more > 0 else "")
        + "."
    )


@dataclass(frozen=True)
class Enriched:
    """What enrichment did: sentences for the build summary, and the related entries'
    linkset (None when not asked for)."""

    summary: str
    linkset: Written | None = None


def enrich(
    work: Path,
    converted: Converted,
    previous: Path | None,
    wanted: bool,
    phases: Phases,
    publishers_unchanged: bool = False,
) -> Enriched:
    """With wanted, embed and link the entries into work/enrich.sqlite and its months' parts
    (phase "enrich"), reusing the previous release's vectors and the files of its months
    that did not change, and write their linkset (dumps/related.nt).
    Returns sentences for the build summary (what enrichment did, and the publisher
    candidates the table lacks) and the linkset; raise EnrichmentUnavailable when wanted
    without the extra."""
    candidates = publisher_candidates(converted)
    rows = {p.id: p for p in converted.organisations.values()}
    write_release(work, converted.publishers, rows, previous, publishers_unchanged)
    if not wanted:
        return Enriched(candidates)
    try:
        from graph.enrich.related import enrich_release, text_of
    except ImportError as exc:  # numpy
        raise EnrichmentUnavailable(
            f"enrichment needs the [enrich] extra (pip install 'kgpub[enrich]'): {exc}"
        ) from exc
    titles = {iri: e.title for iri, e in converted.entries.items()}
    # A build's entries have no descriptions (graph/convert.py): read them from the graph.
    described = zip(
        converted.entries.items(),
        converted.descriptions(0, len(converted.entries)),
        strict=True,
    )
    texts = {iri: text_of(e.title, text) for (iri, e), text in described}
    phases.start("enrich", len(texts))
    done = enrich_release(
        work, texts, previous, converted.iris, progress=phases.reporter("enrich"), titles=titles
    )
    related = (
        f"Related entries: {done.links:,} links among {done.entries:,} entries; "
        f"{done.embedded:,} text(s) embedded, the others reused; {done.seconds:.1f} s."
    )
    linkset = write_linkset(work, converted.iris, work / FILE, previous, done.changed)
    return Enriched(" ".join(s for s in (related, candidates) if s), linkset)
