"""What enrichment does without the [enrich] extra. Publishers named in titles
(graph/publishers.py, data/publishers.csv): recognised on the seed's titles with none
invented, candidates the table lacks listed in the build summary, a bad table row refused
with file:line, a publisher's own page in every representation listing its entries, entries
naming their publishers. A meaning search of a release built without it: a 400 that says
why."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest
import rdflib
from dumpfiles import read_dump
from fetch import get
from live import FIXTURES, SEED, kgpub

from graph.convert import month_of
from graph.errors import ListingError
from graph.listing import read_listings
from graph.namespaces import DCTERMS, FOAF
from graph.publication import BuildOptions, build
from graph.publishers import FILE as PUBLISHERS
from graph.publishers import Table, default_table, may_name, read_release, read_table


def seed_titles() -> list[str]:
    _, entries, _ = read_listings([SEED])
    return [e.title for e in entries]


def test_the_seeds_publishers_are_recognised_and_none_invented() -> None:
    recognised = read_table().recognise(seed_titles())
    assert recognised.by_title == {
        "When to call the police: Guidance for schools & colleges (NPCC)": ("npcc",),
        "Characteristics of children in need: 2018 to 2019 (DoE)": ("dfe",),
        "Staying safe online (National Autistic Society)": ("nas",),
        "Building a country that works for all children post covid-19 (ADCS Discussion Paper)": (
            "adcs",
        ),
    }


def test_unmatched_parentheses_are_candidates_not_publishers() -> None:
    recognised = read_table().recognise(seed_titles())
    # A strategy's acronym and a subtitle: listed for a maintainer, never made publishers.
    assert sorted(recognised.candidates) == ["A Manifesto for Children", "CONTEST"]


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("Ofsted's review of sexual abuse in schools and colleges", ("ofsted",)),
        ("Guidance on sharing information – ICO", ("ico",)),
        ("A report (Home Office Research Report 2)", ("home-office",)),
        ("Keeping children safe in education (2018)", ()),
        ("Something said (the department)", ()),
        ("A title (DfE) – and (NSPCC)", ("dfe", "nspcc")),
        ("ICON of a generation", ()),
    ],
    ids=["possessive", "dash", "parenthesis-start", "year", "lower-case", "two", "no-word-part"],
)
def test_how_titles_name_publishers(title: str, expected: tuple[str, ...]) -> None:
    assert read_table().find(title)[0] == expected


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("bad-id.csv", "bad-id.csv:3: id 'NPCC 2' is not a slug (a-z, 0-9, -)"),
        ("shared-variant.csv", "shared-variant.csv:3: variant 'npcc' already names publisher"),
        ("bad-sameas.csv", "bad-sameas.csv:2: sameas 'not an iri' is not an http(s) IRI"),
    ],
    ids=["bad-id", "shared-variant", "bad-sameas"],
)
def test_a_bad_table_row_is_refused_at_its_line(name: str, message: str) -> None:
    with pytest.raises(ListingError) as caught:
        read_table(FIXTURES / "publishers" / name)
    assert message in str(caught.value)


def test_the_build_summary_lists_the_candidates(tmp_path: Path) -> None:
    out = tmp_path / "pub"
    result = kgpub("build", str(SEED), "--out", str(out), "--base-uri", "http://example.org/")
    assert result.returncode == 0, result.stderr
    assert "0 warnings" in result.stdout
    assert "not in the publishers table (data/publishers.csv)" in result.stdout
    assert "'CONTEST'" in result.stdout and "'A Manifesto for Children'" in result.stdout


@pytest.mark.embedded_only(reason="the search reads the release's files, not the store")
def test_a_meaning_search_of_a_release_without_it_is_400(live: Any) -> None:
    reply = get(live.base + "search?q=grooming&mode=meaning", {"Accept": "application/json"})
    assert reply.status == 400
    assert "--enrich" in json.loads(reply.body)["message"]


@pytest.mark.embedded_only(reason="publishers are read from the release's files")
def test_a_publisher_has_its_page_in_every_representation_listing_its_entries(
    live: Any,
) -> None:
    police = "When to call the police: Guidance for schools & colleges (NPCC)"
    iri = live.base + "publisher/npcc"
    page = get(iri, {"Accept": "text/html"})
    assert page.status == 200
    html = page.body.decode("utf-8")
    assert "National Police Chiefs&#39; Council" in html
    assert police.replace("&", "&amp;") in html
    for suffix, fmt in ((".ttl", "turtle"), (".nt", "nt"), (".rdf", "xml")):
        reply = get(iri + suffix, {})
        assert reply.status == 200, suffix
        graph = rdflib.Graph().parse(data=reply.body, format=fmt)
        org = rdflib.URIRef(iri)
        assert (org, rdflib.RDF.type, rdflib.URIRef(str(FOAF.Organization))) in graph
        entries = set(graph.subjects(rdflib.URIRef(str(DCTERMS.publisher)), org))
        assert [str(graph.value(e, rdflib.URIRef(str(DCTERMS.title)))) for e in entries] == [police]
    doc = json.loads(get(iri + ".jsonld", {}).body)
    assert "National Police Chiefs' Council" in json.dumps(doc)
    assert get(live.base + "publisher/nobody", {}).status == 404
    # Its entries are paged as a category's are: one page here, the second is 404.
    assert get(iri + ".ttl?page=1", {}).body == get(iri + ".ttl", {}).body
    assert get(iri + ".ttl?page=2", {}).status == 404


@pytest.mark.embedded_only(reason="publishers are read from the release's files")
def test_an_entry_names_its_publisher_and_none_is_invented(live: Any) -> None:
    doc = json.loads(get(live.base + "search.json?q=police+schools", {}).body)
    police = next(h["iri"] for h in doc["hits"] if h["title"].endswith("(NPCC)"))
    graph = rdflib.Graph().parse(data=get(police + ".ttl", {}).body, format="turtle")
    publisher = rdflib.URIRef(str(DCTERMS.publisher))
    assert list(graph.objects(rdflib.URIRef(police), publisher)) == [
        rdflib.URIRef(live.base + "publisher/npcc")
    ]
    counter = next(h["iri"] for h in found_all(live.base) if "(CONTEST)" in h["title"])
    graph = rdflib.Graph().parse(data=get(counter + ".ttl", {}).body, format="turtle")
    assert list(graph.objects(rdflib.URIRef(counter), publisher)) == []
    # Each triple once in what is served (the publisher's name was there twice).
    lines = get(police + ".nt", {}).body.decode("utf-8").splitlines()
    assert len(lines) == len(set(lines)) and any("skos/core#prefLabel" in x for x in lines)
    # The page for people names it too, with a link to its page, escaped.
    html = get(police + ".html", {}).body.decode("utf-8")
    assert '<h2 id="publishers-h">Publisher</h2>' in html
    assert (
        f'<a href="{urlsplit(live.base).path}publisher/npcc">National Police Chiefs&#39; ' in html
    )
    assert '"publishers-h"' not in get(counter + ".html", {}).body.decode("utf-8")


def found_all(base: str) -> list[dict[str, Any]]:
    doc = json.loads(get(base + "search.json?q=counter+terrorism", {}).body)
    hits: list[dict[str, Any]] = doc["hits"]
    return hits


# --- publishers in the graph (dcterms:publisher, foaf:Organization) ------------------------

BASE = "https://example.org/kg/"
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
POLICE = "When to call the police: Guidance for schools & colleges (NPCC)"
PUBLISHED = """
SELECT ?entry ?title ?org ?name WHERE {
  ?entry dcterms:publisher ?org ; dcterms:title ?title .
  ?org a foaf:Organization ; skos:prefLabel ?name .
}"""


def test_sparql_sees_each_entrys_publisher_and_none_invented(live: Any) -> None:
    query = (
        "PREFIX dcterms: <http://purl.org/dc/terms/> PREFIX foaf: <http://xmlns.com/foaf/0.1/> "
        "PREFIX skos: <http://www.w3.org/2004/02/skos/core#> " + PUBLISHED
    )
    reply = get(
        live.base + "sparql?" + urlencode({"query": query}),
        {"Accept": "application/sparql-results+json"},
    )
    assert reply.status == 200, reply.body
    rows = json.loads(reply.body)["results"]["bindings"]
    found = {(r["title"]["value"], r["org"]["value"]) for r in rows}
    table = read_table()
    expected = {
        (title, live.base + "publisher/" + pid)
        for title, ids in table.recognise(seed_titles()).by_title.items()
        for pid in ids
    }
    assert found == expected
    assert (POLICE, live.base + "publisher/npcc") in found
    names = {r["org"]["value"]: r["name"]["value"] for r in rows}
    assert names[live.base + "publisher/npcc"] == "National Police Chiefs' Council"


def _build(source: Path, out: Path) -> Path:
    build([source], out, BuildOptions(base=BASE), now=NOW)
    return (out / "current").resolve()


class CountingTable(Table):
    """The library's table, counting the titles it is asked about."""

    def __init__(self, table: Table) -> None:
        super().__init__(list(table.publishers.values()), table.key)
        self.asked: list[str] = []

    def find(self, title: str) -> tuple[tuple[str, ...], list[str]]:
        self.asked.append(title)
        return super().find(title)


def test_the_dumps_hold_the_publishers_and_a_rebuild_recognises_only_changed_months(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "pub"
    first = _build(SEED, out)
    dump = rdflib.Graph().parse(data=read_dump(first, "library.nt"), format="nt")
    npcc = rdflib.URIRef(BASE + "publisher/npcc")
    assert (npcc, rdflib.RDF.type, rdflib.URIRef(str(FOAF.Organization))) in dump
    assert {
        str(dump.value(e, rdflib.URIRef(str(DCTERMS.title))))
        for e in dump.subjects(rdflib.URIRef(str(DCTERMS.publisher)), npcc)
    } == {POLICE}
    # Every organisation in the graph publishes some entry: none without entries.
    orgs = set(dump.subjects(rdflib.RDF.type, rdflib.URIRef(str(FOAF.Organization))))
    assert orgs == set(dump.objects(None, rdflib.URIRef(str(DCTERMS.publisher))))
    ld = json.loads(gzip.decompress(read_dump(first, "library.jsonld.gz")))
    assert {
        "id": str(npcc),
        "type": "Organization",
        "prefLabel": "National Police Chiefs' Council",
    } in ld["@graph"]

    counting = CountingTable(default_table())
    monkeypatch.setattr("graph.convert.default_table", lambda: counting)
    again = _build(SEED, out)
    assert counting.asked == []  # nothing changed: every month's publishers reused
    assert read_dump(again, "library.nt") == read_dump(first, "library.nt")
    # publishers.json is the same file, hard-linked (written in pieces, compared as it goes).
    assert (again / PUBLISHERS).stat().st_ino == (first / PUBLISHERS).stat().st_ino
    assert not list(again.glob(f".{PUBLISHERS}*"))
    # One title changed: only the titles of its month are looked at again.
    text = SEED.read_text(encoding="utf-8")
    changed = tmp_path / "library.txt"
    changed.write_text(text.replace(POLICE, POLICE.replace("(NPCC)", "(ICO)")), "utf-8")
    third = _build(changed, out)
    _, entries, _ = read_listings([changed])
    month = next(month_of(e) for e in entries if e.title.endswith("(ICO)"))
    # Those of its titles that may name one (the others are not asked: Table.find's own
    # first test, made by convert before it asks).
    asked = sorted(e.title for e in entries if month_of(e) == month and may_name(e.title))
    assert POLICE.replace("(NPCC)", "(ICO)") in asked
    assert sorted(counting.asked) == asked
    dump = rdflib.Graph().parse(data=read_dump(third, "library.nt"), format="nt")
    assert not list(dump.subjects(rdflib.URIRef(str(DCTERMS.publisher)), npcc))
    assert (npcc, None, None) not in dump
    ico = rdflib.URIRef(BASE + "publisher/ico")
    assert len(list(dump.subjects(rdflib.URIRef(str(DCTERMS.publisher)), ico))) >= 1
    # A publisher changed: publishers.json written anew, and it says so.
    assert (third / PUBLISHERS).stat().st_ino != (first / PUBLISHERS).stat().st_ino
    published = read_release(third)
    assert published is not None
    assert "npcc" not in published.publishers and "ico" in published.publishers
    ico_entries = {str(e) for e in dump.subjects(rdflib.URIRef(str(DCTERMS.publisher)), ico)}
    assert set(published.publishers["ico"].entries) == ico_entries
    assert {iri for iri, ids in published.of_entry.items() if "ico" in ids} == ico_entries


# --- kgpub's vocabulary -----------------------------------------------------------------------


def test_every_term_of_the_closed_namespace_is_described() -> None:
    from graph.namespaces import KGPUB
    from graph.vocabulary import TERMS

    declared = {name for name in KGPUB.__annotations__ if not name.startswith("_")}
    assert {t.name for t in TERMS} == declared
    with pytest.raises(AttributeError):
        KGPUB.relatd  # noqa: B018 (a typo is an error: the namespace is closed)


# rdflib's own JSON-LD parser uses its deprecated ConjunctiveGraph inside.
@pytest.mark.filterwarnings("ignore:ConjunctiveGraph is deprecated:DeprecationWarning")
@pytest.mark.embedded_only(reason="the vocabulary is served by the server, not the store")
def test_the_vocabulary_is_served_in_every_representation(live: Any) -> None:
    url = live.base + "vocabulary"
    related = rdflib.URIRef("https://w3id.org/kgpub/ns#related")
    rdfs = rdflib.RDFS
    context = json.loads(get(live.base + "context.jsonld", {}).body)["@context"]
    for suffix, fmt in ((".ttl", "turtle"), (".nt", "nt"), (".rdf", "xml"), (".jsonld", "json-ld")):
        reply = get(url + suffix, {})
        assert reply.status == 200, suffix
        body = reply.body
        if fmt == "json-ld":  # its context by URL: given inline (rdflib would fetch it)
            body = json.dumps({**json.loads(body), "@context": context}).encode()
        graph = rdflib.Graph().parse(data=body, format=fmt)
        assert str(graph.value(related, rdfs.label)) == "related entry", suffix
        assert graph.value(related, rdfs.subPropertyOf) == rdflib.URIRef(str(DCTERMS.relation))
        assert graph.value(related, rdfs.range) == rdflib.URIRef("http://purl.org/dc/dcmitype/Text")
        assert graph.value(related, rdfs.isDefinedBy) == rdflib.URIRef("https://w3id.org/kgpub/ns")
    page = get(url, {"Accept": "text/html"})
    assert page.status == 200
    html = page.body.decode("utf-8")
    assert "kgpub:related" in html and "kgpub:searchRank" in html
    void = rdflib.Graph().parse(data=get(live.base + ".well-known/void.ttl", {}).body)
    assert (None, rdfs.isDefinedBy, rdflib.URIRef(url)) in void
    assert context["kgpub"] == "https://w3id.org/kgpub/ns#"
    assert context["publisher"]["@id"] == str(DCTERMS.publisher)
    assert context["Organization"] == str(FOAF.Organization)


def test_a_rebuild_that_changes_no_publisher_links_publishers_json_without_writing_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A description changed: its month is made again, its publishers recognised again and
    the same as before, so publishers.json is the current release's file, linked without
    being written (graph/publishers.py same_as_before); the same bytes a full build writes."""
    import graph.publishers as publishers

    out = tmp_path / "pub"
    first = _build(SEED, out)
    text = SEED.read_text(encoding="utf-8")
    old = "For professionals working with families"
    assert text.count(old) == 1
    changed = tmp_path / "library.txt"
    changed.write_text(text.replace(old, "For practitioners working with families"), "utf-8")

    def not_written(*_: object) -> None:
        raise AssertionError("publishers.json written again")

    with monkeypatch.context() as patched:
        patched.setattr(publishers, "_pieces", not_written)
        again = _build(changed, out)
    assert read_dump(again, "library.nt") != read_dump(first, "library.nt")
    assert (again / PUBLISHERS).stat().st_ino == (first / PUBLISHERS).stat().st_ino
    full = _build(changed, tmp_path / "full")
    assert (again / PUBLISHERS).read_bytes() == (full / PUBLISHERS).read_bytes()


def test_publishers_are_the_same_as_before_only_when_every_month_says_so() -> None:
    """same_as_before: the same months, those of another digest with the same publishers,
    and one month at least of the same digest (the same publishers table)."""
    from graph.publishers import same_as_before

    before = {
        "2020-01": {"digest": "a", "publishers": {"e1": ("npcc",)}},
        "2020-02": {"digest": "b", "publishers": {}},
    }
    months = [("2020-01", "a", {"e1": ("npcc",)}), ("2020-02", "b2", {})]
    assert same_as_before(months, before)
    assert same_as_before([("2020-01", "a", {}), ("2020-02", "b", {})], before)  # digest: same
    assert not same_as_before([months[0], ("2020-02", "b2", {"e2": ("ico",)})], before)
    assert not same_as_before([("2020-01", "a2", {"e1": ("npcc",)}), months[1]], before)
    assert not same_as_before(months[:1], before)  # a month gone
    assert not same_as_before([*months, ("2020-03", "c", {})], before)  # a month new
    assert not same_as_before(months, {})
