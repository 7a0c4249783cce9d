"""Issue 5's scenario on the live server: a harvester follows the change feed, the paged
collections and OAI-PMH across rebuilds (seed; the same data again; a new page, one changed
description, one removed entry) and finds exactly those changes, with 304s in between."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import rdflib
from harvest_data import (
    CHANGED_TITLE,
    NEW_DESCRIPTION,
    NEW_TITLES,
    OLD_DESCRIPTION,
    REMOVED_TITLE,
    write_changed,
    write_seed,
)
from live import FIXTURES, SEED, Backend, Server, build_publication, free_port
from lxml import etree
from rdfdiff import assert_isomorphic
from rdflib.namespace import DCTERMS
from sickle import Sickle

from graph.namespaces import HYDRA

T1 = datetime(2026, 3, 1, 9, 0, 0, tzinfo=UTC)
T1B = datetime(2026, 3, 4, 9, 0, 0, tzinfo=UTC)  # the same data rebuilt
T2 = datetime(2026, 3, 8, 9, 0, 0, tzinfo=UTC)  # the changes
T3 = datetime(2026, 3, 15, 9, 0, 0, tzinfo=UTC)  # the removed entry back
FEED_REL = "https://www.w3.org/ns/activitystreams#outbox"
AS = rdflib.Namespace("https://www.w3.org/ns/activitystreams#")
PAGE = 10
FEED = "application/activity+json"
OAI = "{http://www.openarchives.org/OAI/2.0/}"
SCHEMA = etree.XMLSchema(etree.parse(str(FIXTURES / "oai" / "harvest.xsd")))


@dataclass
class Site:
    """The live server, its publication folder and how to rebuild it."""

    server: Server
    out: Path
    src: Path
    base: str
    backend: Backend
    harvested: str = ""  # responseDate of the last full OAI-PMH harvest

    def rebuild(self, sources: list[Path], now: datetime) -> None:
        build_publication(sources, self.out, self.base, self.backend, now=now)
        time.sleep(1.2)  # each worker looks at `current` at most once a second


def get(
    url: str, accept: str | None = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(
        url, headers={**({"Accept": accept} if accept else {}), **(headers or {})}
    )
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, _headers(r.headers), r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, _headers(exc.headers), exc.read()


def _headers(message: Any) -> dict[str, str]:
    """Headers by name; repeated ones (Link) joined with ', ' as RFC 9110 §5.3 allows."""
    return {k: ", ".join(message.get_all(k)) for k in set(message.keys())}


def links(headers: dict[str, str], raw: str | None = None) -> dict[str, str]:
    """rel -> URL from a Link header (urllib joins repeated headers with ', ')."""
    text = raw if raw is not None else headers.get("Link", "")
    out: dict[str, str] = {}
    for part in text.split(", <"):
        url, _, params = part.lstrip("<").partition(">")
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "rel":
                out[value.strip('"')] = url
    return out


def feed(url: str) -> dict[str, Any]:
    status, headers, body = get(url, FEED)
    assert status == 200, body
    assert headers["Content-Type"].startswith(FEED)
    doc: dict[str, Any] = json.loads(body)
    return doc


def walk_feed(base: str, stop_at: int = 0) -> list[dict[str, Any]]:
    """Follow first -> next until an activity already seen (its number <= stop_at)."""
    collection = feed(base + "changes")
    url = collection.get("first")
    seen: list[dict[str, Any]] = []
    while url:
        page = feed(url)
        for item in page["orderedItems"]:
            if int(item["id"].rsplit("#", 1)[1]) <= stop_at:
                return seen
            seen.append(item)
        url = page.get("next")
    return seen


def collection_page(url: str) -> tuple[list[str], dict[str, str]]:
    status, headers, body = get(url, "text/turtle")
    assert status == 200, body
    g = rdflib.Graph()
    g.parse(data=body, format="turtle")
    members = sorted(str(m) for m in g.objects(None, HYDRA.member))
    view = next(g.subjects(rdflib.RDF.type, HYDRA.PartialCollectionView))
    assert str(view) in url or url.endswith("/collections/entries")
    nxt = g.value(view, HYDRA.next)
    assert (nxt is None) == ("next" not in links(headers))
    return members, links(headers)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, backend: Backend) -> Iterator[Site]:
    """The seed served in pages of ten, its graph in the backend's store (rebuilt there)."""
    root = tmp_path_factory.mktemp(f"harvest-{backend.name}")
    port = free_port()
    base = f"http://127.0.0.1:{port}/"
    out, src = root / "publication", root / "src"
    build_publication(write_seed(src), out, base, backend, now=T1)
    with Server(out, port, page_size=PAGE, **backend.serve()) as server:
        yield Site(server, out, src, base, backend)
    backend.drop_graphs(out)


def test_harvesting_across_rebuilds(site: Site) -> None:
    base = site.base
    # --- first visit: everything is new ------------------------------------------------------
    first_walk = walk_feed(base)
    assert len(first_walk) == 35
    assert {a["type"] for a in first_walk} == {"Create"}
    assert len({a["object"]["id"] for a in first_walk}) == 35
    old_page_url = feed(base + "changes")["first"]
    old_page = feed(old_page_url)
    all_before = sorted(a["object"]["id"] for a in first_walk)

    validators = {}
    for url, accept in (
        (base + "changes", FEED),
        (old_page_url, FEED),
        (base + "collections/entries", "text/turtle"),
        (base + "collections/category/safeguarding", "text/html"),
        (base + "oai?verb=ListRecords&metadataPrefix=oai_dc", None),
    ):
        status, headers, _ = get(url, accept)
        assert status == 200
        validators[url] = (accept, headers["ETag"], headers["Last-Modified"])

    # The collection walk starts: two pages of ten.
    members, rels = collection_page(base + "collections/entries")
    walked = list(members)
    members, rels = collection_page(rels["next"])
    walked += members
    cursor = rels["next"]

    # Crawlers: the sitemap and robots.txt by both validators, resources by their tag.
    for url in (base + "sitemap.xml", base + "robots.txt"):
        status, headers, _ = get(url)
        assert status == 200
        validators[url] = (None, headers["ETag"], headers["Last-Modified"])
    tags = {}
    for url, accept in (
        (all_before[0], "text/turtle"),
        (all_before[1], "text/html"),
        (base + "category/safeguarding", "application/ld+json"),
        # VoID/DCAT: issued is the first build, modified the last change of the data, and
        # the partitions and checksums are named, not blank nodes relabelled by each load.
        (base + ".well-known/void", "text/turtle"),
    ):
        status, headers, _ = get(url, accept)
        assert status == 200
        tags[url] = (accept, headers["ETag"])

    # --- the same data rebuilt: nothing changed, every validator still holds ---------------
    site.rebuild(write_seed(site.src), T1B)
    for url, (accept, etag, modified) in validators.items():
        assert get(url, accept, {"If-None-Match": etag})[0] == 304, url
        assert get(url, accept, {"If-Modified-Since": modified})[0] == 304, url
    for url, (accept, etag) in tags.items():
        assert get(url, accept, {"If-None-Match": etag})[0] == 304, url
    assert feed(base + "changes")["totalItems"] == 35

    # --- a new page, a changed description, a removed entry --------------------------------
    harvest_everything(site)
    site.rebuild(write_changed(site.src), T2)
    for url, (accept, etag, _) in validators.items():
        if url != old_page_url:  # an old page of the feed stays as it was
            expected = 304 if url.endswith("robots.txt") else 200  # robots.txt too
            assert get(url, accept, {"If-None-Match": etag})[0] == expected, url

    # The collection walk goes on from where it was: every entry there throughout, once.
    url: str | None = cursor
    while url:
        members, rels = collection_page(url)
        walked += members
        url = rels.get("next")
    assert len(walked) == len(set(walked)), "an entry was seen twice"
    now_members = _all_members(base + "collections/entries")
    throughout = set(all_before) & set(now_members)
    assert throughout <= set(walked), f"skipped: {sorted(throughout - set(walked))}"
    assert len(now_members) == 36

    # The feed: exactly the four changes, newest first, then what was seen before.
    news = walk_feed(base, stop_at=35)
    got = sorted((a["type"], a["object"]["name"], a["published"]) for a in news)
    t2 = "2026-03-08T09:00:00Z"
    assert got == sorted(
        [
            ("Create", NEW_TITLES[0], t2),
            ("Create", NEW_TITLES[1], t2),
            ("Update", CHANGED_TITLE, t2),
            ("Delete", REMOVED_TITLE, t2),
        ]
    )
    deleted = next(a for a in news if a["type"] == "Delete")
    assert deleted["object"]["type"] == "Tombstone" and deleted["object"]["deleted"] == t2
    assert len(walk_feed(base)) == 39
    again = feed(old_page_url)
    assert again["orderedItems"] == old_page["orderedItems"], "a page's items never change"
    assert "prev" in again and "prev" not in old_page  # newer changes exist now
    assert get(old_page_url, FEED, {"If-None-Match": validators[old_page_url][1]})[0] == 200

    # OAI-PMH: from the responseDate of the last harvest, exactly those four records.
    sickle = Sickle(base + "oai")
    records = list(
        sickle.ListRecords(
            metadataPrefix="oai_dc", ignore_deleted=False, **{"from": site.harvested}
        )
    )
    by_title: dict[str, Any] = {}
    for r in records:
        title = r.metadata["title"][0] if not r.header.deleted else None
        by_title[title or _title_of(r.header.identifier, first_walk)] = r
    assert sorted(by_title) == sorted([*NEW_TITLES, CHANGED_TITLE, REMOVED_TITLE])
    assert by_title[REMOVED_TITLE].header.deleted
    assert by_title[CHANGED_TITLE].metadata["description"][0].startswith("A toolkit")
    stamps = {r.header.datestamp for r in records}
    assert len(stamps) == 1 and stamps.pop() >= site.harvested
    unchanged = list(sickle.ListIdentifiers(metadataPrefix="oai_dc", until=site.harvested))
    assert len(unchanged) == 35 - 2  # neither the changed nor the removed entry
    # The deleted record stays (deletedRecord persistent).
    removed = next(a["object"]["id"] for a in first_walk if a["object"]["name"] == REMOVED_TITLE)
    header = sickle.GetRecord(identifier=removed, metadataPrefix="oai_dc").header
    assert header.deleted and header.datestamp >= site.harvested
    # Deleted records validate against the OAI-PMH schema too (a header, no metadata).
    for query in (
        f"verb=ListRecords&metadataPrefix=oai_dc&from={site.harvested}",
        f"verb=GetRecord&metadataPrefix=oai_dc&identifier={removed}",
    ):
        doc = etree.fromstring(get(base + "oai?" + query)[2])
        assert SCHEMA.validate(doc), SCHEMA.error_log
        assert doc.find(f".//{OAI}header[@status='deleted']") is not None

    # The sitemap: lastmod from the history; the removed entry is gone from it.
    lastmod = sitemap(base)
    changed_iri = next(i for i, t in _titles(base).items() if t == CHANGED_TITLE)
    assert lastmod[changed_iri] == t2
    assert removed not in lastmod
    new_iris = [i for i, t in _titles(base).items() if t in NEW_TITLES]
    assert [lastmod[i] for i in new_iris] == [t2, t2]
    unchanged = [i for i in all_before if i not in (changed_iri, removed)]
    assert {lastmod[i] for i in unchanged} == {"2026-03-01T09:00:00Z"}

    # The removed entry's IRI: 410 Gone, saying when, in the negotiated format.
    status, headers, body = get(removed, "text/turtle")
    assert status == 410, body
    g = rdflib.Graph().parse(data=body, format="turtle")
    tomb = rdflib.URIRef(removed)
    assert (tomb, rdflib.RDF.type, AS.Tombstone) in g
    assert g.value(tomb, AS.deleted).toPython() == T2
    assert g.value(tomb, DCTERMS.title) == rdflib.Literal(REMOVED_TITLE, lang="en")
    assert links(headers)[FEED_REL] == base + "changes"
    status, headers, body = get(removed, "text/html")
    assert status == 410 and headers["Content-Type"].startswith("text/html")
    assert t2 in body.decode() and "removed" in body.decode()
    status, _, body = get(removed, "application/json")
    assert status == 410 and json.loads(body)["deleted"] == t2
    status, headers, _ = get(removed + ".nt")
    assert status == 410 and headers["Content-Type"].startswith("application/n-triples")
    assert get(base + "entry/never-published", "text/turtle")[0] == 404

    # It comes back: served again, and the feed says so.
    back = write_changed(site.src)
    seed = SEED.read_text(encoding="utf-8").replace(OLD_DESCRIPTION, NEW_DESCRIPTION)
    back[0].write_text(seed, encoding="utf-8")
    site.rebuild(back, T3)
    assert get(removed, "text/turtle")[0] == 200
    newest = walk_feed(base, stop_at=39)
    assert [(a["type"], a["object"]["id"]) for a in newest] == [("Create", removed)]


def sitemap(base: str) -> dict[str, str]:
    """loc -> lastmod of the sitemap (following a sitemap index)."""
    status, _, body = get(base + "sitemap.xml")
    assert status == 200
    doc = etree.fromstring(body)
    ns = "{http://www.sitemaps.org/schemas/sitemap/0.9}"
    out: dict[str, str] = {}
    parts = [loc.text or "" for loc in doc.iter(f"{ns}sitemap") for loc in loc.iter(f"{ns}loc")]
    docs = [etree.fromstring(get(part)[2]) for part in parts] or [doc]
    for d in docs:
        for url in d.iter(f"{ns}url"):
            out[url.findtext(f"{ns}loc") or ""] = url.findtext(f"{ns}lastmod") or ""
    return out


def _titles(base: str) -> dict[str, str]:
    out: dict[str, str] = {}
    url: str | None = base + "collections/entries?page=first"
    while url:
        status, headers, body = get(url, "text/turtle")
        assert status == 200
        g = rdflib.Graph().parse(data=body, format="turtle")
        for s, _, o in g.triples((None, DCTERMS.title, None)):
            out[str(s)] = str(o)
        url = links(headers).get("next")
    return out


def test_the_feed_is_linked_from_the_landing_page_the_dataset_and_void(site: Site) -> None:
    for path, accept in (
        ("", "text/html"),
        ("", "text/turtle"),
        ("dataset", "text/turtle"),
        (".well-known/void", "text/turtle"),
        ("dataset.ttl", None),
    ):
        status, headers, _ = get(site.base + path, accept)
        assert status == 200, path
        assert links(headers).get(FEED_REL) == site.base + "changes", (path, headers.get("Link"))
    status, headers, _ = get(site.base + "entry/nothing", "text/turtle")
    assert status == 404 and FEED_REL not in links(headers)
    # In HTML, on the page about the data, one click from the landing page (issue 12).
    assert 'href="/dataset"' in get(site.base, "text/html")[2].decode()
    html = get(site.base + "dataset", "text/html")[2].decode()
    for path in ("changes", "collections/entries", "oai?verb=Identify"):
        assert f'href="/{path}"' in html or f'href="{site.base}{path}"' in html, path


def harvest_everything(site: Site) -> None:
    """A full OAI-PMH harvest, as a harvester's first visit; remembers its responseDate."""
    deadline = time.monotonic() + 60
    while True:
        status, _, body = get(site.base + "oai?verb=ListIdentifiers&metadataPrefix=oai_dc")
        assert status == 200
        doc = etree.fromstring(body)
        response_date = doc.findtext(f"{OAI}responseDate") or ""
        datestamps = [d.text or "" for d in doc.iter(f"{OAI}datestamp")]
        # A change is dated when it went live for every worker (up to 2 s after the swap).
        if max(datestamps) < response_date or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert max(datestamps) < response_date
    assert len(list(Sickle(site.base + "oai").ListIdentifiers(metadataPrefix="oai_dc"))) == 35
    site.harvested = response_date


def _all_members(url: str) -> list[str]:
    out: list[str] = []
    next_url: str | None = url
    while next_url:
        members, rels = collection_page(next_url)
        out += members
        next_url = rels.get("next")
    return out


def _title_of(iri: str, activities: list[dict[str, Any]]) -> str:
    return str(next(a["object"]["name"] for a in activities if a["object"]["id"] == iri))


# rdflib's own JSON-LD parser uses its deprecated ConjunctiveGraph inside.
@pytest.mark.filterwarnings("ignore:ConjunctiveGraph is deprecated:DeprecationWarning")
def test_collections_in_every_format(site: Site) -> None:
    base = site.base
    status, headers, body = get(base + "collections/entries?page=last", "text/html")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    html = body.decode()
    assert 'rel="first"' in html and 'rel="prev"' in html and 'rel="next"' not in html
    turtle = rdflib.Graph().parse(
        data=get(base + "collections/entries?page=last", "text/turtle")[2], format="turtle"
    )
    for fmt, key in (("json-ld", "jsonld"), ("nt", "ntriples"), ("xml", "rdfxml")):
        status, _, data = get(base + f"collections/entries?page=last&format={key}")
        assert status == 200
        other = rdflib.Graph().parse(data=data, format=fmt)
        assert_isomorphic(other, turtle)
    coll = rdflib.URIRef(base + "collections/entries")
    assert int(turtle.value(coll, HYDRA.totalItems)) == len(_all_members(str(coll)))
    some = next(turtle.objects(coll, HYDRA.member))
    assert turtle.value(some, DCTERMS.title) is not None
    status, headers, body = get(base + "collections/category/youth-justice", "text/turtle")
    g = rdflib.Graph().parse(data=body, format="turtle")
    manages = g.value(rdflib.URIRef(base + "collections/category/youth-justice"), HYDRA.manages)
    assert g.value(manages, HYDRA.object) == rdflib.URIRef(base + "category/youth-justice")
    assert get(base + "collections/category/no-such-thing", "text/turtle")[0] == 404
    assert get(base + "collections/entries?page=middle", "text/turtle")[0] == 400
    assert get(base + "changes?before=x", FEED)[0] == 400


def test_feed_as_json_ld_and_its_paging_links(site: Site) -> None:
    status, headers, body = get(site.base + "changes", "application/ld+json")
    assert status == 200
    assert headers["Content-Type"].startswith("application/ld+json")
    assert "activitystreams" in headers["Content-Type"]
    doc = json.loads(body)
    assert doc["type"] == "OrderedCollection"
    status, headers, _ = get(doc["last"], FEED)
    page_links = links(headers)
    assert "prev" in page_links and "next" not in page_links
    last = feed(doc["last"])
    assert last["orderedItems"][-1]["id"].endswith("#1")


def test_void_links_the_feed_oai_and_the_collection(site: Site) -> None:
    void = rdflib.Graph().parse(site.out / "current" / "void.ttl", format="turtle")
    ds = rdflib.URIRef(site.base + "dataset")
    services = set(void.objects(ds, rdflib.DCAT.accessService))
    for path in ("changes", "oai"):
        service = rdflib.URIRef(site.base + path)
        assert service in services
        assert (service, rdflib.DCAT.servesDataset, ds) in void
    assert (
        rdflib.URIRef(site.base + "changes"),
        rdflib.RDF.type,
        rdflib.URIRef("https://www.w3.org/ns/activitystreams#OrderedCollection"),
    ) in void
    assert (ds, HYDRA.collection, rdflib.URIRef(site.base + "collections/entries")) in void


@pytest.mark.parametrize(
    ("path", "accept"),
    [
        ("changes", FEED),
        ("changes?after=0", FEED),
        ("collections/entries", "text/turtle"),
        ("collections/entries?page=last", "text/html"),
        ("collections/category/safeguarding", "application/ld+json"),
        ("oai?verb=Identify", None),
    ],
)
def test_head_and_conditional_requests(site: Site, path: str, accept: str | None) -> None:
    url = site.base + path
    status, headers, body = get(url, accept)
    assert status == 200 and body
    req = urllib.request.Request(url, method="HEAD", headers={"Accept": accept} if accept else {})
    with urllib.request.urlopen(req, timeout=60) as r:
        assert r.status == 200 and r.read() == b""
        assert r.headers["ETag"] == headers["ETag"]
        assert r.headers["Content-Type"] == headers["Content-Type"]
    assert headers["ETag"].startswith('W/"')
    assert headers["Access-Control-Allow-Origin"] == "*"
    status, again, body = get(url, accept, {"If-None-Match": headers["ETag"]})
    assert status == 304 and body == b"" and again["ETag"] == headers["ETag"]
    assert get(url, accept, {"If-Modified-Since": headers["Last-Modified"]})[0] == 304
    assert get(url, accept, {"If-None-Match": 'W/"stale"'})[0] == 200


def test_the_feed_for_people(site: Site) -> None:
    status, headers, body = get(site.base + "changes", "text/html,*/*;q=0.8")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    html = body.decode()
    newest = feed(feed(site.base + "changes")["first"])["orderedItems"][0]
    assert newest["object"]["name"] in html and newest["published"] in html
    assert 'rel="next"' in html and "Older" in html
    assert get(site.base + "changes", "*/*")[1]["Content-Type"].startswith(FEED)
    assert get(site.base + "changes")[1]["Content-Type"].startswith(FEED)
