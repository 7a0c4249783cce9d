"""What harvesters walk besides OAI-PMH: the change feed and the paged collections of entries.

Change feed (ActivityStreams 2.0, https://www.w3.org/TR/activitystreams-core/ §5.1-5.3): an
OrderedCollection of Create/Update/Delete activities, newest first. A page is named by the
history positions it follows: `?before=n` holds the newest page_size changes older than
change n, `?after=n` the oldest page_size changes newer than n. The history is append-only,
so a page with a full set of items never changes, and `next` (older) from any page leads to
the very first change without a gap, whatever is published meanwhile.

Collections (Hydra Core, https://www.hydra-cg.com/spec/latest/core/ §5.1 "Collections",
PartialCollectionView): all published entries, or those of one category, in IRI order (the
IRI starts with the Added time, so this is also oldest first). A page is named by the entry
it follows (`?after=<slug>`) or precedes (`?before=<slug>`), or is `?page=first|last`: keyset
pagination, so a harvester that follows `next` while a rebuild adds or removes entries never
sees an entry twice and never misses one that was published throughout its walk (entries
added behind its position show up in the change feed instead).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from pyoxigraph import BlankNode, Literal, NamedNode, Triple

from graph.history import Change, View
from graph.iris import Iris
from graph.namespaces import AS, DCMITYPE, DCTERMS, HYDRA, RDF, RDFS, XSD

AS_CONTEXT = "https://www.w3.org/ns/activitystreams"
AS_MEDIA_TYPE = "application/activity+json"
AS_JSONLD_MEDIA_TYPE = f'application/ld+json; profile="{AS_CONTEXT}"'
_ACTIVITY = {"create": "Create", "update": "Update", "delete": "Delete"}

_TYPE = NamedNode(str(RDF.type))
_TITLE = NamedNode(str(DCTERMS.title))
_CREATED = NamedNode(str(DCTERMS.created))
_MODIFIED = NamedNode(str(DCTERMS.modified))
_DATETIME = NamedNode(str(XSD.dateTime))


class PageError(ValueError):
    """A page parameter that names no page (the view answers 400)."""


def page_url(collection: str, **params: str | int) -> str:
    """The URL of one page of a collection: the collection IRI and its page parameters."""
    return f"{collection}?{urlencode(params)}" if params else collection


# --- the change feed -------------------------------------------------------------------------


def feed_collection(index: View, iris: Iris, title: str) -> dict[str, Any]:
    """The feed itself: an OrderedCollection with its size and first and last pages."""
    doc: dict[str, Any] = {
        "@context": AS_CONTEXT,
        "id": iris.changes,
        "type": "OrderedCollection",
        "name": f"Changes to {title}",
        "summary": "Entries created, updated and deleted by each build, newest first.",
        "totalItems": index.total,
    }
    if index.changed:
        doc["updated"] = index.changed
    if index.total:
        doc["first"] = page_url(iris.changes, before=index.total + 1)
        doc["last"] = page_url(iris.changes, after=0)
    return doc


def feed_page(
    index: View, iris: Iris, page_size: int, before: int | None, after: int | None
) -> dict[str, Any]:
    """One OrderedCollectionPage of the feed, newest first (reads only its changes)."""
    total = index.change_count()
    if before is not None and after is not None:
        raise PageError("give either before or after, not both")
    if before is not None:
        if before < 1 or before > total + 1:
            raise PageError(f"before must be between 1 and {total + 1}")
        chosen = index.changes_between(max(0, before - 1 - page_size), before - 1)
        url = page_url(iris.changes, before=before)
    elif after is not None:
        if after < 0 or after > total:
            raise PageError(f"after must be between 0 and {total}")
        chosen = index.changes_between(after, after + page_size)
        url = page_url(iris.changes, after=after)
    else:
        raise PageError("a page needs before or after")
    items = [activity(c, iris) for c in reversed(chosen)]
    doc: dict[str, Any] = {
        "@context": AS_CONTEXT,
        "id": url,
        "type": "OrderedCollectionPage",
        "partOf": iris.changes,
        "totalItems": total,
        "orderedItems": items,
    }
    if chosen:
        newest, oldest = chosen[-1].seq, chosen[0].seq
        doc["startIndex"] = total - newest
        if oldest > 1:
            doc["next"] = page_url(iris.changes, before=oldest)
        if newest < total:
            doc["prev"] = page_url(iris.changes, after=newest)
    return doc


def activity(change: Change, iris: Iris) -> dict[str, Any]:
    """One change as an ActivityStreams activity (a Delete's object is a Tombstone, §5.8)."""
    obj: dict[str, Any] = {"id": change.iri, "type": "Document", "name": change.title}
    if change.kind == "update":
        obj["updated"] = change.time
    elif change.kind == "delete":
        obj = {
            "id": change.iri,
            "type": "Tombstone",
            "formerType": "Document",
            "name": change.title,
            "deleted": change.time,
        }
    return {
        "id": iris.change(change.seq),
        "type": _ACTIVITY[change.kind],
        "published": change.time,
        "object": obj,
    }


# --- paged collections of entries ------------------------------------------------------------


@dataclass(frozen=True)
class CollectionPage:
    """One page of a collection of entries, with its neighbours."""

    collection: str  # the collection's IRI
    view: str  # this page's URL
    title: str
    total: int
    members: list[str]
    first: str
    last: str
    next: str | None
    previous: str | None
    category: str | None = None  # concept IRI when the collection is one category's


def collection_page(
    index: View,
    iris: Iris,
    page_size: int,
    category: str | None = None,
    after: str | None = None,
    before: str | None = None,
    page: str | None = None,
    title: str = "",
) -> CollectionPage:
    """A page of all entries, or of one concept's: first/last, or after/before an entry slug."""
    if sum(x is not None for x in (after, before, page)) > 1:
        raise PageError("give one of after, before or page")
    if page not in (None, "first", "last"):
        raise PageError("page must be 'first' or 'last'")
    if category is None:
        collection = iris.entries_collection
    else:
        collection = iris.category_collection(index.categories[category].notation)
    prefix = iris.base + "entry/"
    if after is not None:
        window = index.window(category, page_size, after=prefix + after)
        view = page_url(collection, after=after)
    elif before is not None:
        window = index.window(category, page_size, before=prefix + before)
        view = page_url(collection, before=before)
    elif page == "last":
        window = index.window(category, page_size, last=True)
        view = page_url(collection, page="last")
    else:
        window = index.window(category, page_size)
        view = page_url(collection, page="first")
    chosen = window.members
    next_url = (
        page_url(collection, after=chosen[-1][len(prefix) :])
        if chosen and window.has_next
        else None
    )
    previous = (
        page_url(collection, before=chosen[0][len(prefix) :])
        if chosen and window.has_previous
        else None
    )
    return CollectionPage(
        collection,
        view,
        title,
        window.total,
        chosen,
        page_url(collection, page="first"),
        page_url(collection, page="last"),
        next_url,
        previous,
        category,
    )


def collection_triples(page: CollectionPage, index: View) -> list[Triple]:
    """The page as Hydra: the Collection, its members with titles, the PartialCollectionView."""
    coll = NamedNode(page.collection)
    view = NamedNode(page.view)
    h = str(HYDRA)
    out = [
        Triple(coll, _TYPE, NamedNode(h + "Collection")),
        Triple(coll, _TITLE, Literal(page.title, language="en")),
        Triple(
            coll,
            NamedNode(h + "totalItems"),
            Literal(str(page.total), datatype=NamedNode(str(XSD.nonNegativeInteger))),
        ),
        Triple(coll, NamedNode(h + "view"), view),
    ]
    if page.category is not None:
        manages = BlankNode("manages")
        out += [
            Triple(coll, NamedNode(h + "manages"), manages),
            Triple(manages, NamedNode(h + "property"), NamedNode(str(DCTERMS.subject))),
            Triple(manages, NamedNode(h + "object"), NamedNode(page.category)),
        ]
    out += [Triple(coll, NamedNode(h + "member"), NamedNode(iri)) for iri in page.members]
    out.append(Triple(view, _TYPE, NamedNode(h + "PartialCollectionView")))
    out.append(Triple(view, NamedNode(h + "first"), NamedNode(page.first)))
    out.append(Triple(view, NamedNode(h + "last"), NamedNode(page.last)))
    if page.next:
        out.append(Triple(view, NamedNode(h + "next"), NamedNode(page.next)))
    if page.previous:
        out.append(Triple(view, NamedNode(h + "previous"), NamedNode(page.previous)))
    states = index.entries_of(page.members)
    for iri in page.members:
        state = states[iri]
        node = NamedNode(iri)
        out.append(Triple(node, _TYPE, NamedNode(str(DCMITYPE.Text))))
        out.append(Triple(node, _TITLE, Literal(state.title, language="en")))
        out.append(Triple(node, _CREATED, Literal(state.created, datatype=_DATETIME)))
        if state.modified:
            out.append(Triple(node, _MODIFIED, Literal(state.modified, datatype=_DATETIME)))
    return out


def tombstone_triples(iri: str, title: str, deleted: str) -> list[Triple]:
    """What a removed entry's IRI says (HTTP 410): an as:Tombstone with the time of removal."""
    node = NamedNode(iri)
    a = str(AS)
    return [
        Triple(node, _TYPE, NamedNode(a + "Tombstone")),
        Triple(node, NamedNode(a + "formerType"), NamedNode(str(DCMITYPE.Text))),
        Triple(node, NamedNode(a + "deleted"), Literal(deleted, datatype=_DATETIME)),
        Triple(node, _TITLE, Literal(title, language="en")),
        Triple(
            node,
            NamedNode(str(RDFS.comment)),
            Literal(f"This entry was removed from the library on {deleted}.", language="en"),
        ),
    ]
