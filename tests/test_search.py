"""/search against the real server: words in any order, case- and accent-insensitive, stems and
prefixes; facets combined and counted as the store counts them (SPARQL on the same release);
sorts, pages, the 'nothing found' page, escaping, the JSON and RDF shapes, 400s, the search
box on every page and the search in VoID."""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
import rdflib
from fetch import BROWSER, Page, Reply, get, parse
from live import FIXTURES, Server, free_port
from markupsafe import escape
from sparql_http import query, solutions

from graph.index import TOKENIZE
from graph.namespaces import DCAT, DCTERMS, HYDRA, RDF
from graph.publication import BuildOptions, build

JSON = "application/json"
SPARQL_JSON = "application/sparql-results+json"
PREFIXES = (
    "PREFIX dcterms: <http://purl.org/dc/terms/>\nPREFIX dcmitype: <http://purl.org/dc/dcmitype/>\n"
)
PAGE_SIZE = 20

# A small library with accents, typographic quotes and markup in its data, published under a
# base with a path (as behind a proxy): tests/fixtures/listings/search/.
FIXTURE = FIXTURES / "listings" / "search" / "library-search.txt"
FIXTURE_BASE = "https://data.example.org/lib/"


# --- helpers ------------------------------------------------------------------------------------


def search(base: str, params: list[tuple[str, str]] | None = None, **headers: str) -> Reply:
    query_string = urlencode(params or [])
    return get(base + "search" + ("?" + query_string if query_string else ""), headers)


def found(base: str, *params: tuple[str, str]) -> dict[str, Any]:
    """The JSON of a search (its first page)."""
    reply = search(base, list(params), Accept=JSON)
    assert reply.status == 200, reply.body
    assert reply.media_type == JSON
    doc: dict[str, Any] = json.loads(reply.body)
    return doc


def every_hit(base: str, *params: tuple[str, str]) -> list[str]:
    """The IRIs of every hit of a search, page after page by the JSON's next links."""
    doc = found(base, *params)
    iris = [h["iri"] for h in doc["hits"]]
    while "next" in doc["links"]:
        reply = get(doc["links"]["next"], {"Accept": JSON})
        assert reply.status == 200
        doc = json.loads(reply.body)
        iris += [h["iri"] for h in doc["hits"]]
    return iris


def _pairs(url: str) -> list[tuple[str, str]]:
    return parse_qsl(urlsplit(url).query)


def select(base: str, text: str) -> list[dict[str, str]]:
    reply = query(base, PREFIXES + text, accept=SPARQL_JSON)
    assert reply.status == 200, reply.body
    return solutions(reply)


def stem(word: str) -> str:
    """A word as the index's tokenizer stems it (SQLite's own Porter stemmer)."""
    db = sqlite3.connect(":memory:")
    try:
        db.execute(f"CREATE VIRTUAL TABLE t USING fts5(x, tokenize='{TOKENIZE}')")
        db.execute("CREATE VIRTUAL TABLE v USING fts5vocab(t, 'row')")
        db.execute("INSERT INTO t VALUES (?)", (word,))
        return str(db.execute("SELECT term FROM v").fetchone()[0])
    finally:
        db.close()


def matching(
    words: Sequence[str], categories: Sequence[str] = (), years: Sequence[int] = ()
) -> str:
    """A SPARQL query for the entries whose title or description has a word beginning with
    each word's stem (REGEX \\b, case-insensitive: what the index finds for these words, the
    last one a prefix), in every category, added in any of the years."""
    filters = [
        f'FILTER(REGEX(CONCAT(?t, " ", COALESCE(?d, "")), "\\\\b{stem(w)}", "i"))' for w in words
    ]
    filters += [f"?e dcterms:subject <{c}> ." for c in categories]
    if years:
        filters.append(f"FILTER(YEAR(?c) IN ({', '.join(map(str, years))}))")
    return (
        "SELECT DISTINCT ?e WHERE { ?e a dcmitype:Text ; dcterms:title ?t ; dcterms:created ?c ."
        " OPTIONAL { ?e dcterms:description ?d } " + " ".join(filters) + " }"
    )


@pytest.fixture(scope="module")
def concepts(live: Server) -> dict[str, str]:
    """Category notation -> concept IRI, from the store."""
    rows = select(live.base, "SELECT ?c WHERE { ?e dcterms:subject ?c }")
    return {r["c"].rsplit("/", 1)[1]: r["c"] for r in rows}


# --- words --------------------------------------------------------------------------------------


def test_an_empty_search_shows_everything_newest_first(live: Server) -> None:
    everyone = sorted(
        (r["e"] for r in select(live.base, "SELECT ?e WHERE { ?e a dcmitype:Text }")),
        reverse=True,
    )
    doc = found(live.base)
    assert doc["total"] == len(everyone) == 35
    assert doc["search"]["sort"] == "newest"
    assert every_hit(live.base) == everyone  # IRIs begin with the Added time


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("county lines", "lines county"),
        ("county lines", "COUNTY Lines"),
        ("child abuse", "Abuse, child!"),
    ],
    ids=["order", "case", "punctuation"],
)
def test_words_in_any_order_and_any_case(live: Server, one: str, other: str) -> None:
    first, second = found(live.base, ("q", one)), found(live.base, ("q", other))
    assert first["total"] == second["total"] > 0
    assert {h["iri"] for h in first["hits"]} == {h["iri"] for h in second["hits"]}


@pytest.mark.parametrize(
    "words",
    [
        ["child"],
        ["school"],
        ["exploit"],
        ["police"],
        ["abuse"],
        ["child", "exploit"],
        ["domestic", "abuse"],
    ],
    ids=lambda w: "+".join(w),
)
def test_hits_are_what_the_store_finds(live: Server, words: list[str]) -> None:
    expected = {r["e"] for r in select(live.base, matching(words))}
    hits = every_hit(live.base, ("q", " ".join(words)))
    assert len(hits) == len(set(hits)) == found(live.base, ("q", " ".join(words)))["total"]
    assert set(hits) == expected and expected


def test_stems_and_prefixes(live: Server) -> None:
    stem = set(every_hit(live.base, ("q", "exploit")))
    assert stem == set(every_hit(live.base, ("q", "exploitation")))  # the same stem
    assert stem == set(every_hit(live.base, ("q", "exploi")))  # a prefix of it
    titles = {h["title"] for h in found(live.base, ("q", "exploit"))["hits"]}
    assert any("Exploitation" in t for t in titles) and any("exploitation" in t for t in titles)


def test_matches_are_marked_in_title_and_snippet(live: Server) -> None:
    doc = found(live.base, ("q", "trafficking"))
    assert doc["total"] > 0
    for hit in doc["hits"]:
        marked = [s["text"] for s in hit["title_spans"] + hit["snippet"] if s["match"]]
        assert marked and all(m.lower().startswith("traffick") for m in marked), hit
        assert "".join(s["text"] for s in hit["title_spans"]) == hit["title"]


# --- facets -------------------------------------------------------------------------------------


def _counts(rows: list[dict[str, str]], key: str) -> dict[str, int]:
    return {r[key]: int(r["n"]) for r in rows}


def test_facets_of_the_whole_library_are_the_stores_counts(live: Server) -> None:
    doc = found(live.base)
    per_category = _counts(
        select(
            live.base, "SELECT ?c (COUNT(?e) AS ?n) WHERE { ?e dcterms:subject ?c } GROUP BY ?c"
        ),
        "c",
    )
    assert {f["iri"]: f["count"] for f in doc["facets"]["category"]} == per_category
    per_year = _counts(
        select(
            live.base,
            "SELECT ?y (COUNT(?e) AS ?n) WHERE { ?e a dcmitype:Text ; dcterms:created ?c "
            "BIND(YEAR(?c) AS ?y) } GROUP BY ?y",
        ),
        "y",
    )
    assert {str(f["year"]): f["count"] for f in doc["facets"]["year"]} == per_year
    assert [f["year"] for f in doc["facets"]["year"]] == sorted(map(int, per_year), reverse=True)


@pytest.mark.parametrize(
    ("words", "notations", "years"),
    [
        ([], ["safeguarding"], []),
        ([], [], [2019]),
        (["child"], ["safeguarding"], []),
        (["child"], ["safeguarding"], [2018, 2020]),
        ([], ["safeguarding", "crime-asb"], []),
        (["exploit"], [], [2018]),
    ],
    ids=["category", "year", "word+category", "word+category+years", "two categories", "word+year"],
)
def test_facets_combine_and_count_what_the_store_counts(
    live: Server, concepts: dict[str, str], words: list[str], notations: list[str], years: list[int]
) -> None:
    params = [("q", " ".join(words))] if words else []
    params += [("category", n) for n in notations] + [("year", str(y)) for y in years]
    doc = found(live.base, *params)
    chosen = [concepts[n] for n in notations]
    expected = {r["e"] for r in select(live.base, matching(words, chosen, years))}
    assert doc["total"] == len(expected) > 0
    assert set(every_hit(live.base, *params)) == expected
    # Categories: counted in the selection (what choosing one more would leave).
    for facet in doc["facets"]["category"]:
        narrower = {
            r["e"] for r in select(live.base, matching(words, [*chosen, facet["iri"]], years))
        }
        assert facet["count"] == len(narrower), facet
        assert facet["selected"] == (facet["iri"] in chosen)
    # Years: counted as if no year were chosen (what choosing one adds).
    for facet in doc["facets"]["year"]:
        alone = {r["e"] for r in select(live.base, matching(words, chosen, [facet["year"]]))}
        assert facet["count"] == len(alone), facet
        assert facet["selected"] == (facet["year"] in years)


def test_several_values_repeated_or_comma_separated(live: Server) -> None:
    repeated = found(live.base, ("year", "2018"), ("year", "2020"), ("category", "safeguarding"))
    commas = found(live.base, ("year", "2018,2020"), ("category", "safeguarding"))
    by_iri = found(
        live.base, ("year", "2020,2018"), ("category", live.base + "category/safeguarding")
    )
    assert repeated["total"] == commas["total"] == by_iri["total"] > 0
    assert repeated["search"] == commas["search"] == by_iri["search"]


# --- publishers ---------------------------------------------------------------------------------


def publishing(
    words: Sequence[str], publishers: Sequence[str], categories: Sequence[str] = ()
) -> str:
    """matching() narrowed to the entries of every publisher IRI given."""
    query = matching(words, categories)
    narrowed = " ".join(f"?e dcterms:publisher <{p}> ." for p in publishers)
    return query.removesuffix(" }") + " " + narrowed + " }"


def test_publisher_facet_counts_what_the_store_counts(live: Server) -> None:
    doc = found(live.base)
    rows = select(
        live.base, "SELECT ?p (COUNT(?e) AS ?n) WHERE { ?e dcterms:publisher ?p } GROUP BY ?p"
    )
    per_publisher = _counts(rows, "p")
    facet = doc["facets"]["publisher"]
    assert {f["iri"]: f["count"] for f in facet} == per_publisher
    # The seed's "… (NPCC)" and "… (ADCS Discussion Paper)" are recognised.
    ids = {f["id"]: f for f in facet}
    assert ids["npcc"]["label"] == "National Police Chiefs' Council"
    assert ids["npcc"]["iri"] == live.base + "publisher/npcc"
    assert ids["adcs"]["count"] >= 1
    assert [f["label"].casefold() for f in facet] == sorted(f["label"].casefold() for f in facet)
    for value in facet:
        chosen = found(live.base, *_pairs(value["url"]))
        expected = {r["e"] for r in select(live.base, publishing([], [value["iri"]]))}
        assert chosen["total"] == value["count"] == len(expected)
        assert {h["iri"] for h in chosen["hits"]} == expected
        assert chosen["search"]["publisher"] == [value["id"]]
        assert all(value["id"] in [p["id"] for p in h["publishers"]] for h in chosen["hits"])
        again = next(f for f in chosen["facets"]["publisher"] if f["id"] == value["id"])
        assert (
            again["selected"] and found(live.base, *_pairs(again["url"]))["total"] == doc["total"]
        )


def test_publisher_combines_with_words_categories_and_sort(live: Server) -> None:
    npcc = live.base + "publisher/npcc"
    words = ["police"]  # "When to call the police: Guidance for schools & colleges (NPCC)"
    doc = found(live.base, ("q", " ".join(words)), ("publisher", "npcc"))
    expected = {r["e"] for r in select(live.base, publishing(words, [npcc]))}
    assert doc["total"] == len(expected) > 0 and {h["iri"] for h in doc["hits"]} == expected
    # Every facet counts within the publisher's entries.
    for f in doc["facets"]["category"]:
        narrower = select(live.base, publishing(words, [npcc], [f["iri"]]))
        assert f["count"] == len({r["e"] for r in narrower}), f
    by_iri = found(live.base, ("q", " ".join(words)), ("publisher", npcc), ("sort", "oldest"))
    assert by_iri["search"]["publisher"] == ["npcc"] and by_iri["total"] == doc["total"]
    # Two publishers combine: entries of both (none in the seed names NPCC and ADCS).
    assert found(live.base, ("publisher", "npcc,adcs"))["total"] == 0


def test_publisher_facet_in_html_and_rdf(live: Server) -> None:
    reply = search(live.base, [("publisher", "npcc")], Accept=BROWSER)
    assert reply.status == 200
    html = reply.body.decode("utf-8").replace("&#39;", "'")
    assert '<h3 id="facet-publisher-h">Publishers</h3>' in html
    assert 'aria-label="Remove the filter National Police Chiefs\' Council"' in html
    assert "by National Police Chiefs' Council" in html  # the page's title
    assert '<input type="hidden" name="publisher" value="npcc">' in html  # kept by the form
    everything = search(live.base, [], Accept=BROWSER).body.decode("utf-8")
    assert "/search?publisher=npcc" in everything and "/search?publisher=adcs" in everything
    turtle = search(live.base, [("publisher", "npcc")], Accept="text/turtle")
    graph = parse(turtle, live.base)
    doc = found(live.base, ("publisher", "npcc"))
    collection = rdflib.URIRef(live.base + "search?publisher=npcc")
    assert {str(m) for m in graph.objects(collection, HYDRA.member)} == {
        h["iri"] for h in doc["hits"]
    }
    for hit in doc["hits"]:
        publisher = graph.value(rdflib.URIRef(hit["iri"]), DCTERMS.publisher)
        assert str(publisher) == live.base + "publisher/npcc"


def _hit_items(html: str) -> list[str]:
    """The <li> of each hit of a results page, in order."""
    hits = html.split('<ol class="hits"', 1)[1].split("</ol>", 1)[0]
    return hits.split("<li>")[1:]


def test_html_hits_name_their_publishers_as_json_does(live: Server) -> None:
    # Every publisher's entries, and a word search whose hits have a publisher or none.
    searches = [[("publisher", f["id"])] for f in found(live.base)["facets"]["publisher"]]
    searches.append([("q", "police")])
    without = 0
    for params in searches:
        doc = found(live.base, *params)
        reply = search(live.base, params, Accept=BROWSER)
        assert reply.status == 200
        items = _hit_items(reply.body.decode("utf-8"))
        assert len(items) == len(doc["hits"]) > 0
        for item, hit in zip(items, doc["hits"], strict=True):
            path = urlsplit(hit["iri"]).path
            assert f'<a href="{path}">' in item
            named = [
                f'<a href="{urlsplit(p["iri"]).path}">{escape(p["label"])}</a>'
                for p in hit["publishers"]
            ]
            if named:  # "… · Published by <a>National Police Chiefs&#39; Council</a>"
                assert "Published by " + ", ".join(named) + "</p>" in item, item
            else:
                without += 1
                assert "Published by" not in item
    assert without > 0  # the word search also shows hits without a publisher


# --- sort and pages -----------------------------------------------------------------------------


def test_sort_orders(live: Server) -> None:
    newest = every_hit(live.base, ("q", "child"), ("sort", "newest"))
    oldest = every_hit(live.base, ("q", "child"), ("sort", "oldest"))
    ranked = every_hit(live.base, ("q", "child"))
    assert newest == sorted(newest, reverse=True) and oldest == sorted(oldest)
    assert set(ranked) == set(newest) == set(oldest) and len(ranked) > PAGE_SIZE
    assert ranked != newest
    assert found(live.base, ("q", "child"))["search"]["sort"] == "relevance"
    # Relevance ranks a word in the title above the same word in the description only.
    first = found(live.base, ("q", "exploit"))["hits"]
    in_title = [any(s["match"] for s in h["title_spans"]) for h in first]
    assert in_title == sorted(in_title, reverse=True) and any(in_title) and not all(in_title)


def test_pages_and_their_links(live: Server) -> None:
    reply = search(live.base, [("q", "child")], Accept=JSON)
    doc = json.loads(reply.body)
    pages = -(-doc["total"] // PAGE_SIZE)
    assert doc["pages"] == pages >= 2 and len(doc["hits"]) == PAGE_SIZE
    assert reply.link("next") == doc["links"]["next"] and not reply.link("prev")
    assert reply.link("last").endswith(f"page={pages}") and "page=" not in reply.link("first")
    last = get(reply.link("last"), {"Accept": JSON})
    assert last.status == 200 and last.link("prev") and not last.link("next")
    assert len(json.loads(last.body)["hits"]) == doc["total"] - (pages - 1) * PAGE_SIZE
    beyond = search(live.base, [("q", "child"), ("page", str(pages + 1))], Accept=JSON)
    assert beyond.status == 404 and f"{pages} page(s)" in json.loads(beyond.body)["message"]


def test_html_page_shows_the_search(live: Server) -> None:
    reply = search(live.base, [("q", "child"), ("category", "safeguarding")], Accept=BROWSER)
    assert reply.status == 200 and reply.media_type == "text/html"
    html = reply.body.decode("utf-8")
    doc = found(live.base, ("q", "child"), ("category", "safeguarding"))
    assert f"{doc['total']} entries found" in html
    assert 'value="child"' in html and 'name="category" value="safeguarding"' in html
    assert 'aria-label="Remove the filter Safeguarding"' in html  # the selection, removable
    assert "/search?q=child&amp;category=safeguarding&amp;sort=oldest" in html  # sort choice
    assert 'rel="next"' in html and "Page 1 of" in html
    for hit in doc["hits"]:
        assert hit["iri"].removeprefix(live.base) in html
    assert "<mark>" in html and "<time datetime=" in html
    page = Page(html)
    assert set(page.alternates()) == {
        "text/turtle",
        "application/ld+json",
        "application/n-triples",
        "application/rdf+xml",
        JSON,
    }
    assert html.count('role="search"') == 1  # the page's own form replaces the header's


def test_nothing_found_says_so_and_suggests(live: Server) -> None:
    lone = search(live.base, [("q", "zzyzx")], Accept=BROWSER)
    assert lone.status == 200
    text = lone.body.decode("utf-8")
    assert "No entries found" in text and "No entry holds the word “zzyzx”" in text
    assert "Check the spelling" in text
    wide = search(
        live.base, [("q", "county zzyzx"), ("category", "safeguarding")], Accept=BROWSER
    ).body.decode("utf-8")
    assert "Drop the filter Safeguarding" in wide
    assert "Drop the word “zzyzx”" in wide and "Drop the word “county”" in wide
    assert found(live.base, ("q", "zzyzx"))["total"] == 0


# --- representations ----------------------------------------------------------------------------


def test_json_shape(live: Server) -> None:
    doc = found(live.base, ("q", "county lines"), ("category", "safeguarding"))
    assert set(doc) == {
        "search",
        "total",
        "pages",
        "hits",
        "facets",
        "links",
        "alternates",
        "template",
    }
    assert doc["search"] == {
        "q": "county lines",
        "words": ["county", "lines"],
        "category": ["safeguarding"],
        "year": [],
        "publisher": [],
        "sort": "relevance",
        "mode": "words",
        "page": 1,
        "size": PAGE_SIZE,
    }
    hit = doc["hits"][0]
    assert {"iri", "title", "created", "categories", "title_spans", "snippet"} <= set(hit)
    assert {c["notation"] for c in hit["categories"]} >= {"safeguarding"}
    assert doc["template"] == live.base + "search{?q,category,year,publisher,page}"
    assert doc["links"]["self"] == live.base + "search?q=county+lines&category=safeguarding"
    assert doc["alternates"]["text/turtle"].startswith(live.base + "search.ttl?")
    assert set(doc["alternates"]) == {
        "text/turtle",
        "application/ld+json",
        "application/n-triples",
        "application/rdf+xml",
        "text/html",
    }
    # Each facet value names the search with it toggled.
    chosen = next(f for f in doc["facets"]["category"] if f["notation"] == "safeguarding")
    assert chosen["selected"] and chosen["url"] == live.base + "search?q=county+lines"
    other = next(f for f in doc["facets"]["category"] if not f["selected"])
    assert found(live.base, *_pairs(other["url"]))["total"] == other["count"]


# rdflib's own JSON-LD parser uses its deprecated ConjunctiveGraph inside.
@pytest.mark.filterwarnings("ignore:ConjunctiveGraph is deprecated:DeprecationWarning")
@pytest.mark.parametrize("media_type", ["text/turtle", "application/ld+json"])
def test_rdf_is_a_hydra_collection_page(live: Server, media_type: str) -> None:
    params = [("q", "child"), ("page", "2")]
    reply = search(live.base, params, Accept=media_type)
    assert reply.status == 200 and reply.media_type == media_type
    graph = parse(reply, live.base)
    doc = found(live.base, *params)
    collection = rdflib.URIRef(live.base + "search?q=child")
    view = rdflib.URIRef(live.base + "search?q=child&page=2")
    assert (collection, RDF.type, HYDRA.Collection) in graph
    assert int(graph.value(collection, HYDRA.totalItems)) == doc["total"]  # type: ignore[arg-type]
    members = {str(m) for m in graph.objects(collection, HYDRA.member)}
    assert members == {h["iri"] for h in doc["hits"]}
    assert graph.value(collection, HYDRA.view) == view
    assert (view, RDF.type, HYDRA.PartialCollectionView) in graph
    assert str(graph.value(view, HYDRA.first)) == live.base + "search?q=child&page=1"
    assert str(graph.value(view, HYDRA.previous)) == live.base + "search?q=child&page=1"
    assert str(graph.value(view, HYDRA.last)).endswith(f"page={doc['pages']}")
    template = graph.value(collection, HYDRA.search)
    assert (template, RDF.type, HYDRA.IriTemplate) in graph
    assert (
        str(graph.value(template, HYDRA.template))
        == live.base + "search{?q,category,year,publisher,page}"
    )
    variables = {
        str(graph.value(m, HYDRA.variable)) for m in graph.objects(template, HYDRA.mapping)
    }
    assert variables == {"q", "category", "year", "publisher", "page"}
    for hit in doc["hits"]:
        assert graph.value(rdflib.URIRef(hit["iri"]), DCTERMS.title) == rdflib.Literal(
            hit["title"], lang="en"
        )


@pytest.mark.parametrize(
    ("accept", "media_type"),
    [
        (None, "text/turtle"),
        ("*/*", "text/turtle"),
        (BROWSER, "text/html"),
        (JSON, JSON),
        ("application/ld+json", "application/ld+json"),
        ("application/n-triples", "application/n-triples"),
        ("application/rdf+xml;q=0.9, text/turtle;q=0.1", "application/rdf+xml"),
    ],
    ids=["none", "any", "browser", "json", "jsonld", "nt", "q-values"],
)
def test_content_negotiation(live: Server, accept: str | None, media_type: str) -> None:
    reply = search(live.base, [("q", "child")], **({"Accept": accept} if accept else {}))
    assert reply.status == 200 and reply.media_type == media_type
    assert "accept" in reply.vary()
    alternates = {p["type"]: t for t, p in reply.links() if p.get("rel") == "alternate"}
    assert alternates[JSON] == live.base + "search.json?q=child"
    assert len(alternates) == 6
    assert reply.link("canonical") == live.base + "search?q=child"


@pytest.mark.parametrize(
    ("url", "media_type"),
    [
        ("search.json?q=child", JSON),
        ("search.ttl?q=child", "text/turtle"),
        ("search?q=child&format=json", JSON),
        ("search?q=child&format=jsonld", "application/ld+json"),
        ("search.html?q=child", "text/html"),
    ],
    ids=["json-suffix", "ttl-suffix", "json-param", "jsonld-param", "html-suffix"],
)
def test_suffixes_and_format_name_a_representation(live: Server, url: str, media_type: str) -> None:
    reply = get(live.base + url, {"Accept": "image/png"})
    assert reply.status == 200 and reply.media_type == media_type
    assert "accept" not in reply.vary()


def test_not_acceptable_and_unknown_suffix(live: Server) -> None:
    assert search(live.base, [("q", "x")], Accept="image/png").status == 406
    assert get(live.base + "search.png?q=x").status == 404


BAD = [
    ([("sort", "best")], "unknown sort 'best'"),
    ([("page", "0")], "page must be a positive integer"),
    ([("page", "-2")], "page must be a positive integer"),
    ([("page", "two")], "page must be a positive integer"),
    ([("q", "a b c d e f g h i")], "at most 8 words"),
    ([("q", "x" * 501)], "longer than 500 characters"),
    ([("year", "20x")], "year must be four digits"),
    ([("category", "nothing-of-the-kind")], "no category 'nothing-of-the-kind'"),
    ([("publisher", "nobody-at-all")], "no publisher 'nobody-at-all'"),
    ([("publisher", "NPCC")], "no publisher 'NPCC'"),  # an id, not a variant of the table
]


@pytest.mark.parametrize(("params", "message"), BAD, ids=[m for _, m in BAD])
@pytest.mark.parametrize("accept", [JSON, BROWSER, "text/turtle"])
def test_bad_parameters_are_400_in_the_negotiated_format(
    live: Server, params: list[tuple[str, str]], message: str, accept: str
) -> None:
    reply = search(live.base, params, Accept=accept)
    assert reply.status == 400
    text = reply.body.decode("utf-8")
    assert message in text.replace("&#39;", "'")
    if accept == BROWSER:
        assert reply.media_type == "text/html"
    else:  # RDF clients get JSON errors, as everywhere (server/errors.py)
        assert reply.media_type == JSON and json.loads(text)["status"] == 400


def test_user_text_is_never_fts_syntax(live: Server) -> None:
    for text in [
        '"',
        'child" OR "',
        "NEAR(child abuse)",
        "child*",
        "-child",
        "title:child",
        "^child",
        "((",
    ]:
        reply = search(live.base, [("q", text)], Accept=JSON)
        assert reply.status == 200, (text, reply.body)
    assert (
        found(live.base, ("q", "child OR abuse"))["total"]
        == found(live.base, ("q", "OR abuse child"))["total"]
    )


# --- around the search --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "categories",
        "category/safeguarding",
        "dataset",
        "sparql",
        "changes",
        "collections/entries",
        "category/nope",
    ],
)
def test_a_search_box_on_every_page(live: Server, path: str) -> None:
    reply = get(live.base + path, {"Accept": BROWSER})
    assert reply.media_type == "text/html"
    html = reply.body.decode("utf-8")
    form = re.search(
        r'<form class="site-search" role="search" action="([^"]+)" method="get">(.*?)</form>',
        html,
        re.S,
    )
    assert form is not None, path
    assert form.group(1) == "/search"
    assert '<label for="site-search-q">' in form.group(2) and 'id="site-search-q"' in form.group(2)


def test_the_landing_page_has_a_search_form(live: Server) -> None:
    html = get(live.base, {"Accept": BROWSER}).body.decode("utf-8")
    assert '<form class="search-page" role="search" action="/search"' in html
    assert html.count('role="search"') == 1
    assert 'href="/search"' in html
    # The search for programs is on the page about the data, one click away (issue 12).
    about = get(live.base + "dataset", {"Accept": BROWSER}).body.decode("utf-8")
    assert 'href="/search.json"' in about


def test_void_describes_the_search(live: Server) -> None:
    void = parse(get(live.base + ".well-known/void", {"Accept": "text/turtle"}), live.base)
    ds = rdflib.URIRef(live.base + "dataset")
    service = rdflib.URIRef(live.base + "search")
    assert (ds, DCAT.accessService, service) in void
    assert (service, RDF.type, DCAT.DataService) in void
    template = void.value(ds, HYDRA.search)
    assert (
        str(void.value(template, HYDRA.template))
        == live.base + "search{?q,category,year,publisher,page}"
    )


def test_repeated_search_is_cached_and_revalidated(live: Server) -> None:
    first = search(live.base, [("q", "child")], Accept=JSON)
    again = search(
        live.base, [("q", "child")], Accept=JSON, **{"If-None-Match": first.header("ETag")}
    )
    assert again.status == 304 and first.header("Last-Modified")


# --- a library with accents and markup, under a base with a path --------------------------------


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    out: Path = tmp_path_factory.mktemp("search") / "publication"
    build([FIXTURE], out, BuildOptions(base=FIXTURE_BASE))
    with Server(out, free_port(), workers=1) as running:
        yield running


def _titles(server: Server, text: str) -> list[str]:
    doc = found(server.base + "lib/", ("q", text))
    return sorted(h["title"] for h in doc["hits"])


@pytest.mark.parametrize("text", ["resume", "RESUME", "résumé", "Résumé", "resumé", "résu"])
def test_accents_and_case_are_ignored(hostile: Server, text: str) -> None:
    assert _titles(hostile, text) == ["Résumé writing for care leavers"]


def test_accents_in_the_data_and_the_words(hostile: Server) -> None:
    assert _titles(hostile, "naive") == ["Naïve approaches to online safety"]
    assert _titles(hostile, "uber cafe") == ["Naïve approaches to online safety"]
    assert _titles(hostile, "NAÏVE Über") == ["Naïve approaches to online safety"]


def test_exploit_finds_exploitation_and_exploited(hostile: Server) -> None:
    assert _titles(hostile, "exploit") == [
        '<script>alert("title")</script> Exploitation & <b>harm</b>',
        "County lines: a briefing",
        "Exploited: a report",
    ]


def test_data_is_escaped_in_html_and_matches_marked(hostile: Server) -> None:
    reply = search(hostile.base + "lib/", [("q", "alert exploitation")], Accept=BROWSER)
    html = reply.body.decode("utf-8")
    assert "<script>" not in html and "<b>harm" not in html and "<!-- a comment" not in html
    assert (
        "&lt;script&gt;<mark>alert</mark>(&#34;title&#34;)&lt;/script&gt; "
        "<mark>Exploitation</mark> &amp; &lt;b&gt;harm&lt;/b&gt;" in html
    )
    assert "&lt;/p&gt;&lt;script&gt;<mark>alert</mark>(2)&lt;/script&gt;" in html
    doc = found(hostile.base + "lib/", ("q", "alert"))
    assert doc["hits"][0]["title"] == '<script>alert("title")</script> Exploitation & <b>harm</b>'


def test_links_live_under_the_base_path(hostile: Server) -> None:
    html = search(hostile.base + "lib/", [("q", "exploit")], Accept=BROWSER).body.decode("utf-8")
    hrefs = re.findall(r'href="([^"]+)"', html)
    own = [h for h in hrefs if h.startswith("/")]
    assert own and all(h.startswith("/lib/") for h in own), own
    assert 'action="/lib/search"' in html
    doc = found(hostile.base + "lib/", ("q", "exploit"))
    assert doc["links"]["self"] == FIXTURE_BASE + "search?q=exploit"
    assert doc["total"] == 3 and all(
        h["iri"].startswith(FIXTURE_BASE + "entry/") for h in doc["hits"]
    )
