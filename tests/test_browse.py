"""The library for people, against the real server (issue 12, Browse): the landing page puts the
categories with their counts and the latest entries before any linked-data material; the years
list exactly the entries of each year (of each category) newest first, as SPARQL finds them on
the same release; an entry's previous and next follow the library's order and its related
entries share a category; pagers number their pages; a 404 for a cut-off entry URL suggests
what it may have meant; every page carries no inline style or script, a skip link, uniquely
named landmarks, labelled fields and less than 100 KB of HTML."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urljoin

import lxml.html
import pytest
from fetch import BROWSER, Reply, get
from live import Server, free_port, serve_generated
from sparql_http import query, solutions

SPARQL_JSON = "application/sparql-results+json"
PREFIXES = "PREFIX dcterms: <http://purl.org/dc/terms/>\nPREFIX skos: <http://www.w3.org/2004/02/skos/core#>\n"
PAGE_SIZE = 3  # the seed's 35 entries on 12 pages: pagers with gaps on both sides
MAX_HTML = 100_000
# What a page for people must not put before the library's entries.
DATA_LINKS = re.compile(r"/(sparql|dataset|dumps/|\.well-known/void|oai|changes|context\.jsonld)")
HUMAN_DATE = re.compile(r"^[1-9][0-9]? [A-Z][a-z]+ [0-9]{4}, [0-2][0-9]:[0-5][0-9]( UTC)?$")


@pytest.fixture(scope="module")
def site(seed_out: Path) -> Iterator[Server]:
    """The seed publication served with short pages (the index's lists, the embedded store)."""
    with Server(seed_out, free_port(), workers=1, page_size=PAGE_SIZE) as server:
        yield server


@pytest.fixture(scope="module")
def base(seed_out: Path, seed_base: str) -> str:
    """The publication's base IRI (its IRIs name the seed's port, not the module server's)."""
    return seed_base


# --- helpers ------------------------------------------------------------------------------------


def html(site: Server, path: str, status: int = 200) -> lxml.html.HtmlElement:
    reply = fetch(site, path)
    assert reply.status == status, (path, reply.status, reply.body[:300])
    assert reply.media_type == "text/html", path
    return lxml.html.fromstring(reply.body)


def fetch(site: Server, path: str) -> Reply:
    return get(site.base + path.lstrip("/"), {"Accept": BROWSER})


def select(site: Server, text: str) -> list[dict[str, str]]:
    reply = query(site.base, PREFIXES + text, accept=SPARQL_JSON)
    assert reply.status == 200, reply.body
    return solutions(reply)


def main_of(doc: lxml.html.HtmlElement) -> lxml.html.HtmlElement:
    (main,) = doc.xpath("//main")
    return main


def entry_links(
    node: lxml.html.HtmlElement,
    xpath: str = ".//ol[contains(concat(' ', @class, ' '), ' entries ')]//a",
) -> list[str]:
    return [a.get("href") for a in node.xpath(xpath)]


def as_iri(base: str, href: str) -> str:
    return base + href.lstrip("/")


def every_page(site: Server, path: str) -> list[str]:
    """The entry links of a paged list, page after page by its rel=next links."""
    found: list[str] = []
    seen = set()
    while path:
        assert path not in seen, path
        seen.add(path)
        doc = html(site, path)
        found += entry_links(main_of(doc))
        nexts = {a.get("href") for a in doc.xpath("//main//nav[@class='pager']//a[@rel='next']")}
        assert len(nexts) <= 1
        path = nexts.pop() if nexts else ""
    return found


# --- the landing page ---------------------------------------------------------------------------


def test_landing_page_shows_categories_and_latest_entries_before_the_data(
    site: Server, base: str
) -> None:
    doc = html(site, "/")
    main = main_of(doc)
    counts = {
        row["c"]: int(row["n"])
        for row in select(
            site,
            "SELECT ?c (COUNT(?e) AS ?n) WHERE { ?c skos:inScheme ?s . "
            "OPTIONAL { ?e dcterms:subject ?c } } GROUP BY ?c",
        )
    }
    section = main.xpath(".//section[@aria-labelledby='categories-h']")[0]
    shown = {
        as_iri(base, li.xpath("./a")[0].get("href")): int(li.xpath("./span")[0].text_content())
        for li in section.xpath(".//li")
    }
    assert shown == counts
    latest = [
        row["e"]
        for row in select(
            site,
            f"SELECT ?e WHERE {{ <{base}library> dcterms:hasPart ?e }} "
            f"ORDER BY DESC(?e) LIMIT {PAGE_SIZE}",
        )
    ]
    assert [as_iri(base, h) for h in entry_links(main)] == latest
    # In reading order: the search box, the categories, the years and the entries, then the
    # linked-data material (one link to the page about the data).
    links = [a.get("href") for a in main.iter("a") if a.get("href")]
    first_entry = links.index(entry_links(main)[0])
    assert not [h for h in links[:first_entry] if DATA_LINKS.search(h)], links[:first_entry]
    assert "/dataset" in links[first_entry:]
    text = main.text_content()
    assert text.index("Latest entries") < text.index("Open data")
    # Two presses of Tab and Enter: the skip link to the latest entries, then the first one.
    skips = doc.xpath("//body/a[@class='skip']")
    assert [a.get("href") for a in skips] == ["#main", "#latest"]
    (latest,) = doc.xpath("//*[@id='latest']")
    focusable = latest.xpath(".//a | .//input | .//button")
    assert focusable[0].get("href") == entry_links(main)[0]
    assert "Triples" not in text and "OAI-PMH" not in text
    assert main.xpath(".//form[@role='search']//input[@name='q']")


def test_dates_and_numbers_for_people(site: Server, base: str) -> None:
    for path in ("/", "/years/2020", "/category/safeguarding", "/changes", "/dataset"):
        doc = html(site, path)
        times = doc.xpath("//main//time")
        assert times, path
        for t in times:
            assert re.match(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T", t.get("datetime")), path
            assert HUMAN_DATE.match(t.text_content().strip()), (path, t.text_content())
    # The dataset's triple count: one number format, 1,234.
    (triples,) = select(site, "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }")
    assert f"{int(triples['n']):,}" in html(site, "/dataset").text_content()


@pytest.mark.parametrize(
    "path", ["/", "/categories", "/category/safeguarding", "/years", "/years/2020"]
)
def test_language_for_people(site: Server, path: str) -> None:
    """No vocabulary terms in the main text of people's pages ('All statements' keeps them)."""
    main = main_of(html(site, path))
    for details in main.xpath(".//details"):
        details.drop_tree()
    text = main.text_content()
    for word in ("Concept scheme", "notation", "IRI space", "skos:", "dcterms:"):
        assert word not in text, (path, word)


# --- years --------------------------------------------------------------------------------------


def test_years_list_exactly_the_entries_of_each_year_newest_first(site: Server, base: str) -> None:
    rows = select(
        site,
        f"SELECT ?e ?created WHERE {{ <{base}library> dcterms:hasPart ?e . "
        "?e dcterms:created ?created }",
    )
    by_year: dict[int, list[str]] = {}
    for row in rows:
        # The year of the Added time as published (its IRI begins with it).
        by_year.setdefault(int(row["created"][:4]), []).append(row["e"])
    doc = html(site, "/years")
    listed = {
        int(li.xpath("./a")[0].text_content()): int(li.xpath("./span")[0].text_content().split()[0])
        for li in doc.xpath("//main//ul[@class='years']/li")
    }
    assert listed == {y: len(es) for y, es in by_year.items()}
    assert list(listed) == sorted(listed, reverse=True)
    for year, entries in by_year.items():
        shown = [as_iri(base, h) for h in every_page(site, f"/years/{year}")]
        assert shown == sorted(entries, reverse=True), year


def test_library_to_a_year_to_its_entries(site: Server, base: str) -> None:
    """A person goes Library -> 2020 -> the entries, by links."""
    home = html(site, "/")
    (link,) = [a for a in home.xpath("//main//a") if a.text_content().strip() == "2020"]
    page = html(site, link.get("href"))
    assert page.xpath("//h1")[0].text_content() == "Entries added in 2020"
    crumbs = [a.text_content() for a in page.xpath("//nav[@aria-label='Breadcrumb']//a")]
    assert crumbs == ["Library", "Years", "2020"]
    assert entry_links(main_of(page))
    assert all("/entry/2020-" in h for h in entry_links(main_of(page)))


def test_a_years_categories_count_its_entries(site: Server, base: str) -> None:
    """A year's page lists the categories of its entries with how many each has that year
    (the index's tallies), as the graph counts them."""
    rows = select(
        site,
        "SELECT ?c ?label (COUNT(?e) AS ?n) WHERE { ?e dcterms:subject ?c ; dcterms:created "
        '?created . ?c skos:prefLabel ?label FILTER(STRSTARTS(STR(?created), "2020")) } '
        "GROUP BY ?c ?label",
    )
    expected = sorted((r["label"], int(r["n"])) for r in rows)
    section = html(site, "/years/2020").xpath("//section[@aria-labelledby='year-categories-h']")
    shown = [
        (li.xpath("./a")[0].text_content(), int(li.xpath("./span")[0].text_content()))
        for li in section[0].xpath(".//li")
    ]
    assert shown == sorted(shown, key=lambda row: row[0].casefold())
    assert sorted(shown) == expected and expected


def test_category_to_a_year(site: Server, base: str) -> None:
    """A category page links to its years; each lists exactly the category's entries of that
    year, newest first."""
    concept = base + "category/safeguarding"
    doc = html(site, "/category/safeguarding")
    section = doc.xpath("//main//section[@aria-labelledby='years-h']")[0]
    links = {a.text_content(): a.get("href") for a in section.xpath(".//a")}
    rows = select(
        site,
        f"SELECT ?e ?created WHERE {{ ?e dcterms:subject <{concept}> ; dcterms:created ?created }}",
    )
    years = {int(r["created"][:4]) for r in rows}
    assert {int(y) for y in links} == years
    for year in years:
        assert links[str(year)] == f"/category/safeguarding/{year}"
        expected = sorted(
            (r["e"] for r in rows if r["created"].startswith(str(year))), reverse=True
        )
        assert [as_iri(base, h) for h in every_page(site, links[str(year)])] == expected
        crumbs = html(site, links[str(year)]).xpath("//nav[@aria-label='Breadcrumb']//a")
        assert [a.text_content() for a in crumbs] == [
            "Library",
            "Categories",
            "Safeguarding",
            str(year),
        ]
    assert fetch(site, "/category/safeguarding/1999").status == 404
    assert fetch(site, "/category/no-such/2020").status == 404
    assert fetch(site, "/years/20x0").status == 404


def test_year_pages_are_for_people_only(site: Server) -> None:
    reply = get(site.base + "years/2020", {"Accept": "text/turtle"})
    assert reply.status == 406
    reply = get(site.base + "years/2020")  # no Accept: the page
    assert reply.status == 200 and reply.media_type == "text/html"


# --- an entry's neighbours ----------------------------------------------------------------------


def test_entry_neighbours_follow_the_library_order(site: Server, base: str) -> None:
    order = [
        r["e"]
        for r in select(
            site, f"SELECT ?e WHERE {{ <{base}library> dcterms:hasPart ?e }} ORDER BY DESC(?e)"
        )
    ]
    subjects: dict[str, set[str]] = {}
    for r in select(site, "SELECT ?e ?c WHERE { ?e dcterms:subject ?c }"):
        subjects.setdefault(r["e"], set()).add(r["c"])
    for n in (0, 1, len(order) // 2, len(order) - 1):
        iri = order[n]
        doc = html(site, "/" + iri.removeprefix(base))
        nav = doc.xpath("//nav[@class='neighbours']")[0]
        prev = [as_iri(base, a.get("href")) for a in nav.xpath(".//a[@rel='prev']")]
        nxt = [as_iri(base, a.get("href")) for a in nav.xpath(".//a[@rel='next']")]
        assert prev == order[n - 1 : n] if n > 0 else prev == []
        assert nxt == order[n + 1 : n + 2]
        related = doc.xpath("//main//section[@class='related']")[0]
        groups = related.xpath(".//h3")
        assert len(groups) == len(subjects[iri])
        shown = [as_iri(base, h) for h in entry_links(related, ".//ul[@class='entries']//a")]
        assert shown and iri not in shown
        for other in shown:
            assert subjects[other] & subjects[iri], other  # shares a category
        # Each category's 'all entries' link goes to the category.
        for a in related.xpath(".//p/a"):
            assert as_iri(base, a.get("href")) in subjects[iri]
        crumbs = [a.text_content() for a in doc.xpath("//nav[@aria-label='Breadcrumb']//a")]
        assert crumbs[:3] == ["Library", "Years", iri.removeprefix(base + "entry/")[:4]]


# --- pagers -------------------------------------------------------------------------------------


def test_pager_numbers_pages_around_the_current_one(site: Server, base: str) -> None:
    last = -(-35 // PAGE_SIZE)
    doc = html(site, "/library?page=6")
    pagers = doc.xpath("//main//nav[@class='pager']")
    assert len(pagers) == 2
    labels = [p.get("aria-label") for p in pagers]
    assert len(set(labels)) == 2, labels  # landmark-unique
    items = [li.text_content().strip() for li in pagers[0].xpath(".//li")]
    assert items == ["‹ Previous", "1", "…", "4", "5", "6", "7", "8", "…", str(last), "Next ›"]
    (current,) = pagers[0].xpath(".//a[@aria-current='page']")
    assert current.text_content() == "6"
    # Every number is a link to that page, which marks itself current.
    for a in pagers[0].xpath(".//a[not(@rel='prev') and not(@rel='next')]"):
        number = a.text_content()
        target = html(site, a.get("href"))
        (mark,) = target.xpath("//main//nav[@class='pager'][1]//a[@aria-current='page']")
        assert mark.text_content() == number
    # A field to go to any page: a GET form of the list's first page with ?page=.
    (form,) = doc.xpath("//main//nav[@class='pager']//form")
    assert form.get("action") == "/library" and form.get("method") == "get"
    (field,) = form.xpath(".//input[@name='page']")
    assert form.xpath(f".//label[@for='{field.get('id')}']")
    assert field.get("max") == str(last)
    target = html(site, f"{form.get('action')}?page={last}")
    (mark,) = target.xpath("//main//nav[@class='pager'][1]//a[@aria-current='page']")
    assert mark.text_content() == str(last)
    first = html(site, "/library")
    items = [li.text_content().strip() for li in first.xpath("//main//nav[@class='pager'][1]//li")]
    assert items == ["1", "2", "3", "…", str(last), "Next ›"]
    # A list on one page has no pager.
    assert not html(site, "/years/2021").xpath("//nav[@class='pager']")


# --- 404 suggestions ----------------------------------------------------------------------------


def test_a_cut_off_entry_url_suggests_entries(site: Server, base: str) -> None:
    entries = [
        r["e"] for r in select(site, f"SELECT ?e WHERE {{ <{base}library> dcterms:hasPart ?e }}")
    ]
    target = next(e for e in entries if "when-to-call-the-police" in e)
    local = target.removeprefix(base)
    for cut in (local[:-10], local[: len("entry/2020-08-10-1506-when-to")], local[:-3] + "xyz"):
        doc = html(site, "/" + cut, status=404)
        suggested = [
            as_iri(base, a.get("href"))
            for a in doc.xpath("//main//ul[@aria-labelledby='suggestions-h']//a")
        ]
        assert target in suggested, (cut, suggested)
        for iri in suggested:
            if "/entry/" in iri:
                assert fetch(site, "/" + iri.removeprefix(base)).status == 200
    # A month: its entries (at most five) and a link to the whole year.
    doc = html(site, "/entry/2018-11", status=404)
    hrefs = [a.get("href") for a in doc.xpath("//main//ul[@aria-labelledby='suggestions-h']//a")]
    assert hrefs[-1] == "/years/2018" and all(h.startswith("/entry/2018-11-") for h in hrefs[:-1])
    doc = html(site, "/category/safegaurding", status=404)
    hrefs = [a.get("href") for a in doc.xpath("//main//ul[@aria-labelledby='suggestions-h']//a")]
    assert hrefs == ["/category/safeguarding"]
    # Nothing like it: no list.
    doc = html(site, "/entry/1999-01-01-0000-nothing", status=404)
    assert not doc.xpath("//ul[@aria-labelledby='suggestions-h']")


# --- every page ---------------------------------------------------------------------------------

PAGES = [
    "/",
    "/library?page=2",
    "/categories",
    "/category/safeguarding",
    "/category/safeguarding?page=2",
    "/category/safeguarding/2020",
    "/years",
    "/years/2018",
    "/years/2018?page=2",
    "/dataset",
    "/.well-known/void",
    "/search",
    "/search?q=child&category=safeguarding",
    "/changes",
    "/collections/entries",
    "/sparql",
    "/entry/2018-11",  # a 404
]


@pytest.fixture(scope="module")
def pages(site: Server, base: str) -> dict[str, Reply]:
    (entry,) = select(site, f"SELECT ?e WHERE {{ <{base}library> dcterms:hasPart ?e }} LIMIT 1")
    paths = [*PAGES, "/" + entry["e"].removeprefix(base)]
    return {path: fetch(site, path) for path in paths}


def test_no_inline_style_or_script(pages: dict[str, Reply]) -> None:
    """Under Content-Security-Policy style-src 'self' and script-src 'self' an inline style
    or script does nothing: every page keeps to the style sheet (JSON-LD is data, not run)."""
    for path, reply in pages.items():
        doc = lxml.html.fromstring(reply.body)
        assert not doc.xpath("//*[@style]"), path
        assert not doc.xpath("//style"), path
        scripts = doc.xpath("//script")
        # JSON-LD data, or a script of the site's own by src (the SPARQL page's editor).
        assert all(
            s.get("type") == "application/ld+json"
            or (s.get("src", "").startswith("/static/") and not (s.text or "").strip())
            for s in scripts
        ), path
        assert not [a for a in doc.xpath("//@*") if a.attrname.startswith("on")], path


def test_every_page_is_light_and_navigable(pages: dict[str, Reply]) -> None:
    for path, reply in pages.items():
        assert len(reply.body) < MAX_HTML, (path, len(reply.body))
        doc = lxml.html.fromstring(reply.body)
        body = doc.xpath("//body")[0]
        first = next(body.iterchildren())
        assert first.tag == "a" and first.get("href") == "#main", path  # the skip link
        assert doc.xpath("//main[@id='main']"), path
        assert len(doc.xpath("//h1")) == 1, path
        # Landmarks of one kind have distinct names (axe landmark-unique).
        for kind in ("nav", "aside", "section[@aria-label]", "*[@role='search']"):
            names = [
                n.get("aria-label") or n.get("aria-labelledby") for n in doc.xpath(f"//{kind}")
            ]
            assert len(names) == len(set(names)), (path, kind, names)
        # Every field has a label.
        for field in doc.xpath("//input[not(@type='hidden')]"):
            assert field.get("id") and doc.xpath(f"//label[@for='{field.get('id')}']"), path
        # A region that scrolls sideways takes keyboard focus and has a name.
        for box in doc.xpath("//*[contains(concat(' ', @class, ' '), ' scroll ')]"):
            assert box.get("tabindex") == "0" and box.get("aria-label"), path


def test_one_menu_item_per_page(pages: dict[str, Reply], site: Server) -> None:
    doc = lxml.html.fromstring(pages["/"].body)
    menu = [a.text_content() for a in doc.xpath("//nav[@aria-label='Site']/a")]
    assert menu == ["Categories", "Years", "SPARQL", "About this data"]
    targets = [urljoin(site.base, a.get("href")) for a in doc.xpath("//nav[@aria-label='Site']/a")]
    assert len(set(targets)) == len(targets)


def test_the_change_feed_does_not_break_words(site: Server) -> None:
    """No rule lets a table squeeze a word into pieces ('Wha t' in the change feed): the body
    breaks only a word too long for a line of its own (overflow-wrap: break-word); 'anywhere'
    is kept to the cells of the statements table, which hold long IRIs."""
    css = re.sub(r"/\*.*?\*/", "", get(site.base + "static/kgpub.css").body.decode(), flags=re.S)
    rules = re.findall(r"([^{}]+)\{([^}]*)\}", css)
    anywhere = [sel.strip() for sel, body in rules if re.search(r"overflow-wrap:\s*anywhere", body)]
    assert anywhere == ["details.statements td"]
    (body,) = [b for sel, b in rules if sel.strip() == "body"]
    assert re.search(r"overflow-wrap:\s*break-word", body)


# --- weight at the default page size ------------------------------------------------------------


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A generated library of 1,500 entries served with the default page size (100)."""
    with serve_generated(tmp_path_factory.mktemp("browse-generated"), 1500, 1) as server:
        yield server


def test_no_page_over_100_kb_at_the_default_page_size(generated: Server) -> None:
    """The longest pages: 100 entries of the library, a category, a year, and their pagers."""
    home = lxml.html.fromstring(fetch(generated, "/").body)
    category = home.xpath("//section[@aria-labelledby='categories-h']//li/a")[0].get("href")
    year = home.xpath("//section[@aria-labelledby='years-h']//li/a")[0].get("href")
    entry = entry_links(main_of(home))[0]
    for path in (
        "/",
        "/library?page=2",
        category,
        category + "?page=2",
        year,
        "/categories",
        "/years",
        entry,
        "/dataset",
        "/changes",
        "/collections/entries",
        "/search",
    ):
        reply = fetch(generated, path)
        assert reply.status == 200, path
        assert len(reply.body) < MAX_HTML, (path, len(reply.body))
