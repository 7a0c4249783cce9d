"""Issue 9: Last-Modified is when a representation's content last changed, not the build time.

A crawler walks the sitemap (every page in HTML and the four RDF formats, each page of a paged
list) and what a harvester keeps besides (VoID, the dumps, the collections page by page,
robots.txt, the sitemap, the JSON-LD context), then comes back after a rebuild:

- on the live server (gunicorn): after a rebuild of the same data, If-Modified-Since alone and
  If-None-Match alone both give 304 for every URL; after one changed description, exactly the
  URLs whose bytes show that entry give 200, by either validator;
- in the app, for each kind of edit (description, categories, a label, the library's title, an
  entry's title under the same IRI, an entry removed or added): whenever the bytes change,
  the ETag changes and Last-Modified moves forward (RFC 9110 §8.8.2, §13.1.3: never a 304 for
  a stale copy); where Last-Modified moves and the bytes do not, it is one of the few
  documented over-estimates (the history keeps times, not the position of each change).

Every Last-Modified is at most the response's Date (§8.8.2.1). Build times are to the second:
each build waits until the clock's second is later than the last build's and than the time
the code that renders bodies was read (Last-Modified is never earlier than that code's time).
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from urllib.parse import urlsplit
from xml.etree import ElementTree

import pytest
from fetch import get
from harvest_data import remove_entry
from live import PRUNING, SEED, Server, free_port

from graph.publication import BuildOptions, build, current_release
from server.app import create_app
from server.current import CHECK_INTERVAL
from server.representation import CODE_TIME

PAGE = 10  # small pages: the library and Safeguarding have four each
HTML = "text/html"
RDF_TYPES = ("text/turtle", "application/ld+json", "application/n-triples", "application/rdf+xml")
SLUG = "2019-10-29-0956-global-threat-assessment"  # the entry whose description changes
OLD = "The Global Threat Assessment is the first of its type"
NEW = "The Global Threat Assessment (2018) is the first of its type"
SITEMAP_NS = "{http://www.sitemaps.org/schemas/sitemap/0.9}"
SEED_TEXT = SEED.read_text(encoding="utf-8")

Key = tuple[str, str]  # (URL, Accept) of one representation


@dataclass(frozen=True)
class Got:
    """One response: status, headers (lower-case names) and bytes."""

    status: int
    headers: dict[str, str]
    body: bytes

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")

    def next_page(self) -> str:
        """The target of Link rel="next", or ''."""
        for part in self.header("Link").split(", <"):
            target, _, params = part.lstrip("<").partition(">")
            if 'rel="next"' in params:
                return target
        return ""


Getter = Callable[[str, dict[str, str]], Got]


def _live(url: str, headers: dict[str, str]) -> Got:
    """Over HTTP to the real server (tests/fetch.py: no header the test did not give)."""
    reply = get(url, headers)
    joined = {k.lower(): ", ".join(reply.headers.get_all(k) or []) for k in set(reply.headers)}
    return Got(reply.status, joined, reply.body)


def _in_app(out: Path) -> Getter:
    """The app on a publication (a new one per crawl: it takes up `current` at once)."""
    app = create_app({"KGPUB": {"out": str(out), "page_size": PAGE}, "TESTING": True})
    test_client = app.test_client()

    def fetch(url: str, headers: dict[str, str]) -> Got:
        parts = urlsplit(url)
        response = test_client.get(parts.path, query_string=parts.query, headers=headers)
        try:
            names = {name for name, _ in response.headers}
            found = {k.lower(): ", ".join(response.headers.getlist(k)) for k in names}
            return Got(response.status_code, found, response.get_data())
        finally:
            response.close()

    return fetch


def _second_after(moment: datetime) -> datetime:
    """The current time, once its second is later than moment's (waits at most a second)."""
    while True:
        now = datetime.now(UTC).replace(microsecond=0)
        if now > moment:
            return now
        time.sleep(0.02)


# --- what a crawler fetches -------------------------------------------------------------------


def _sitemap(fetch: Getter, url: str) -> list[str]:
    """Every <loc> of a sitemap, following a sitemap index."""
    got = fetch(url, {})
    assert got.status == 200, url
    doc = ElementTree.fromstring(got.body)
    locs = [e.text or "" for e in doc.iter(f"{SITEMAP_NS}loc")]
    if doc.tag == f"{SITEMAP_NS}sitemapindex":
        return [loc for part in locs for loc in _sitemap(fetch, part)]
    return locs


def _pages(fetch: Getter, url: str, accept: str) -> list[str]:
    """url and every page after it, by the Link rel="next" of each (paged lists)."""
    found = [url]
    while True:
        got = fetch(found[-1], {"Accept": accept})
        assert got.status == 200, (found[-1], accept, got.body[:300])
        following = got.next_page()
        if not following:
            return found
        found.append(following)


def _keys(fetch: Getter, base: str, out: Path) -> list[Key]:
    """Every representation a crawler keeps: each sitemap URL in HTML and the four RDF
    formats with each page of a paged list; VoID; the dumps; robots.txt, the sitemap and the
    JSON-LD context; the Hydra collections (Turtle and HTML), page by page."""
    locs = _sitemap(fetch, base + "sitemap.xml")
    keys: list[Key] = []
    for loc in [*locs, base + ".well-known/void"]:
        for accept in (HTML, *RDF_TYPES):
            keys += [(page, accept) for page in _pages(fetch, loc, accept)]
    manifest = json.loads((current_release(out) / "manifest.json").read_text())
    keys += [(base + "dumps/" + d["filename"], "*/*") for d in manifest["dumps"]]
    keys += [(base + name, "*/*") for name in ("robots.txt", "sitemap.xml", "context.jsonld")]
    collections = [base + "collections/entries"]
    collections += [
        base + "collections/category/" + loc.rsplit("/", 1)[1]
        for loc in locs
        if "/category/" in loc
    ]
    for url in collections:
        for accept in ("text/turtle", HTML):
            keys += [(page, accept) for page in _pages(fetch, url, accept)]
    return list(dict.fromkeys(keys))  # "/" pages on as the library's: the same URLs


def _fetch(fetch: Getter, key: Key, headers: dict[str, str] | None = None) -> Got:
    url, accept = key
    got = fetch(url, {"Accept": accept, **(headers or {})})
    if got.status in (200, 304):
        # RFC 9110 §15.4.5: a 304 need not repeat Last-Modified when it has an ETag.
        assert got.header("ETag") and (got.header("Last-Modified") or got.status == 304), key
    if got.header("Last-Modified") and got.header("Date"):  # §8.8.2.1: never after the Date
        assert _time(got) <= parsedate_to_datetime(got.header("Date")), key
    return got


def _time(got: Got) -> datetime:
    return parsedate_to_datetime(got.header("Last-Modified"))


def _crawl(fetch: Getter, keys: list[Key]) -> dict[Key, Got]:
    found = {key: _fetch(fetch, key) for key in keys}
    assert {key: got.status for key, got in found.items() if got.status != 200} == {}
    return found


def _revalidate(fetch: Getter, kept: dict[Key, Got]) -> tuple[set[Key], set[Key]]:
    """The keys that gave 200 to If-None-Match alone, and to If-Modified-Since alone (every
    other answer must be 304)."""
    by_tag, by_time = set(), set()
    for key, got in kept.items():
        for header, fresh in (("ETag", by_tag), ("Last-Modified", by_time)):
            condition = "If-None-Match" if header == "ETag" else "If-Modified-Since"
            status = _fetch(fetch, key, {condition: got.header(header)}).status
            assert status in (200, 304), (key, condition, status)
            if status == 200:
                fresh.add(key)
    return by_tag, by_time


# --- on the live server: the same data, then one description ----------------------------------


@dataclass
class Site:
    server: Server
    src: Path
    built: list[datetime]  # when the server answered (it had read its code), then each build

    def rebuild(self, text: str) -> None:
        """Build text at a time later than any before, to the second, and let every worker
        take it up (each looks at `current` at most CHECK_INTERVAL after it last did)."""
        (self.src / SEED.name).write_text(text, encoding="utf-8")
        stamp = _second_after(max(self.built))
        options = BuildOptions(base=self.server.base)
        build([self.src / SEED.name], self.server.out, options, now=stamp)
        self.built.append(stamp)
        time.sleep(CHECK_INTERVAL + 0.3)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """The server started first (on no publication yet), so that every build is later than
    the code it serves with: a dump's Last-Modified counts that code up to its build."""
    root = tmp_path_factory.mktemp("last-modified")
    src = root / "src"
    src.mkdir()
    out = root / "publication"
    out.mkdir()
    with Server(out, free_port(), page_size=PAGE) as server:
        site = Site(server, src, [datetime.now(UTC).replace(microsecond=0)])
        site.rebuild(SEED_TEXT)
        yield site


def test_revalidating_after_rebuilds(site: Site) -> None:
    base, out = site.server.base, site.server.out
    keys = _keys(_live, base, out)
    kept = _crawl(_live, keys)
    # The sitemap's 48 pages (landing page, library, scheme, dataset, 9 categories, 35
    # entries) and VoID, with 3 more pages each for the library and Safeguarding, in 5
    # representations; 8 dumps; robots.txt, the sitemap, the context; 16 collection pages.
    assert len(keys) == 5 * (49 + 3 + 3) + 8 + 3 + 2 * 16

    # --- (1) the same data rebuilt: nothing to download again ---------------------------------
    site.rebuild(SEED_TEXT)
    by_tag, by_time = _revalidate(_live, kept)
    assert (len(by_tag), len(by_time)) == (0, 0), sorted(by_tag | by_time)

    # --- (2) one description changed ------------------------------------------------------------
    assert SEED_TEXT.count(OLD) == 1
    site.rebuild(SEED_TEXT.replace(OLD, NEW))
    by_tag, by_time = _revalidate(_live, kept)
    now = _crawl(_live, keys)
    changed = {key for key in keys if now[key].body != kept[key].body}

    entry = next(loc for loc in _sitemap(_live, base + "sitemap.xml") if SLUG in loc)
    expected = {key for key in keys if key[0] == entry}  # its 5 representations
    # The landing page (the library's first page in HTML) shows the time of the last change;
    # the library's other pages and its RDF show the members' titles, which did not change.
    expected |= {key for key in keys if key[1] == HTML and key[0] in (base, base + "library")}
    # VoID and the dataset (modified, sizes, checksums), the dumps, the sitemap (lastmod).
    expected |= {
        key
        for key in keys
        if key[0] in (base + "dataset", base + ".well-known/void", base + "sitemap.xml")
        or "/dumps/" in key[0]
    }
    # The collection pages that list the entry show its modified time.
    expected |= {
        key for key in keys if "/collections/" in key[0] and SLUG.encode() in kept[key].body
    }
    assert len(expected) == 5 + 2 + 2 * 5 + 8 + 1 + 2 * 3
    assert changed == expected, sorted(changed ^ expected)
    assert by_tag == expected, sorted(by_tag ^ expected)  # the ETag changes with the bytes
    assert by_time == expected, sorted(by_time ^ expected)  # and Last-Modified with them
    for key in keys:
        before, after = _time(kept[key]), _time(now[key])
        assert (after > before) if key in expected else (after == before), key
    assert _time(now[(entry, "text/turtle")]) == site.built[-1]


# --- in the app: each kind of edit --------------------------------------------------------------

BASE = "http://example.org/lib/"
GLOBAL = "Global Threat Assessment 2018 – Working together to end the sexual exploitation of "
GLOBAL += "children online"
ADDED = """
Drug testing in schools

Added: 30/10/2019 at 10:00 am Category: Drugs, Safeguarding

A new entry between two old ones.
"""


def _on(predicate: Callable[[Key], bool]) -> Callable[[str, Key], bool]:
    return lambda base, key: predicate((key[0].removeprefix(base), key[1]))


def _rdf_of(*paths: str) -> Callable[[str, Key], bool]:
    """The RDF representations of these paths (under the base)."""
    return _on(lambda k: k[0] in paths and k[1] in RDF_TYPES)


def _nothing(base: str, key: Key) -> bool:
    return False


# (edit of the seed's text, keys whose Last-Modified may move while their bytes do not)
EDITS: dict[str, tuple[Callable[[str], str], Callable[[str, Key], bool]]] = {
    "unchanged": (lambda text: text, _nothing),
    "description": (lambda text: text.replace(OLD, NEW), _nothing),
    "categories": (
        lambda text: text.replace(
            "29/10/2019 at 9:56 am Category: Online Safety", "29/10/2019 at 9:56 am Category: Drugs"
        ),
        _nothing,
    ),
    "new category": (
        lambda text: text.replace(
            "29/10/2019 at 9:56 am Category: Online Safety",
            "29/10/2019 at 9:56 am Category: Exploitation, Online Safety",
        ),
        _nothing,
    ),
    "category gone": (
        lambda text: text.replace(
            "Category: Education, Prevent, Safeguarding", "Category: Education, Safeguarding"
        ),
        _nothing,
    ),
    "label": (lambda text: text.replace("Online Safety", "Online safety"), _nothing),
    "library title": (lambda text: text.replace("Library – ", "Archive – ", 1), _nothing),
    "entry title": (
        lambda text: text.replace("\nSafe and Equal\n", "\nSafe And Equal\n"),
        _nothing,
    ),
    # Safeguarding's first page does not list it, and its RDF does not count its entries.
    "removed": (lambda text: remove_entry(text, GLOBAL), _rdf_of("category/safeguarding")),
    "added": (lambda text: text + ADDED, _rdf_of("category/safeguarding")),
}


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[Key, Got], datetime]:
    """The seed built once (after the code's time) and crawled in the app; each edit below
    is built on a copy, a second later."""
    out = tmp_path_factory.mktemp("seeded") / "publication"
    stamp = _second_after(datetime.fromtimestamp(CODE_TIME, UTC))
    build([SEED], out, BuildOptions(base=BASE), now=stamp)
    fetch = _in_app(out)
    return out, _crawl(fetch, _keys(fetch, BASE, out)), stamp


@pytest.mark.parametrize("edit", list(EDITS), ids=list(EDITS))
def test_last_modified_moves_whenever_the_bytes_do(
    seeded: tuple[Path, dict[Key, Got], datetime], edit: str, tmp_path: Path
) -> None:
    change, over_estimate = EDITS[edit]
    text = change(SEED_TEXT)
    assert (text == SEED_TEXT) == (edit == "unchanged"), "the edit must apply"
    bytes_moved, time_moved = _rebuilt(seeded, text, tmp_path)
    assert bytes_moved <= time_moved, sorted(bytes_moved - time_moved)  # never stale
    extra = time_moved - bytes_moved
    assert {key for key in extra if not over_estimate(BASE, key)} == set()
    assert (edit == "unchanged") == (not time_moved)


def test_a_history_from_before_these_times_were_kept(
    seeded: tuple[Path, dict[Key, Got], datetime], tmp_path: Path
) -> None:
    """A release whose entries.json has no "since" (built by an older kgpub): the next build
    takes the state's last change for what it cannot know, never anything earlier."""

    def forget(release: Path) -> None:
        doc = json.loads((release / "entries.json").read_text(encoding="utf-8"))
        del doc["since"]
        (release / "entries.json").write_text(json.dumps(doc), encoding="utf-8")

    bytes_moved, time_moved = _rebuilt(seeded, SEED_TEXT.replace(OLD, NEW), tmp_path, forget)
    assert bytes_moved <= time_moved, sorted(bytes_moved - time_moved)
    # Entries changed: a new base IRI would have changed them all, for all it knows.
    assert time_moved - bytes_moved == {(BASE + "robots.txt", "*/*")}


def _rebuilt(
    seeded: tuple[Path, dict[Key, Got], datetime],
    text: str,
    tmp_path: Path,
    before: Callable[[Path], None] | None = None,
) -> tuple[set[Key], set[Key]]:
    """Build text on a copy of the seed a second later; the keys whose bytes and whose
    Last-Modified moved. The ETag moves exactly with the bytes, Last-Modified only forward
    and to that build's time."""
    seed_out, kept, seed_time = seeded
    out = tmp_path / "publication"
    shutil.copytree(seed_out, out, symlinks=True, ignore=PRUNING)
    if before is not None:
        before(current_release(out))
    (tmp_path / SEED.name).write_text(text, encoding="utf-8")
    stamp = _second_after(seed_time)
    build([tmp_path / SEED.name], out, BuildOptions(base=BASE), now=stamp)

    fetch = _in_app(out)
    now = {key: _fetch(fetch, key) for key in kept}
    gone = {key for key, got in now.items() if got.status != 200}
    assert all(now[key].status in (404, 410) for key in gone)  # removed entry, last page
    bytes_moved, time_moved = set(), set()
    for key in kept.keys() - gone:
        was, got = kept[key], now[key]
        if got.body != was.body:
            bytes_moved.add(key)
            assert got.header("ETag") != was.header("ETag"), key
        else:
            assert got.header("ETag") == was.header("ETag"), key
        if _time(got) != _time(was):
            assert _time(got) == stamp > _time(was), key
            time_moved.add(key)
    return bytes_moved, time_moved


def test_last_modified_is_never_in_the_future(tmp_path: Path) -> None:
    """A build stamped ahead of the server's clock: Last-Modified is now (RFC 9110 §8.8.2.1)."""
    out = tmp_path / "publication"
    ahead = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
    build([SEED], out, BuildOptions(base=BASE), now=ahead)
    fetch = _in_app(out)
    for url in (BASE + "library", BASE + "dataset", BASE + "dumps/library.nt", BASE + "robots.txt"):
        got = _fetch(fetch, (url, "*/*"))
        assert got.status == 200
        assert _time(got) <= datetime.now(UTC), url
