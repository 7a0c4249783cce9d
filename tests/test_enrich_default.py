"""What enrichment does without the [enrich] extra. Publishers named in titles
(graph/publishers.py, data/publishers.csv): recognised on the seed's titles with none
invented, candidates the table lacks listed in the build summary, a bad table row refused
with file:line, a publisher's own page in every representation listing its entries, entries
naming their publishers. A meaning search of a release built without it: a 400 that says
why."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import rdflib
from fetch import get
from live import FIXTURES, SEED, kgpub

from graph.errors import ListingError
from graph.listing import read_listings
from graph.namespaces import DCTERMS, FOAF
from graph.publishers import read_table


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


def found_all(base: str) -> list[dict[str, Any]]:
    doc = json.loads(get(base + "search.json?q=counter+terrorism", {}).body)
    hits: list[dict[str, Any]] = doc["hits"]
    return hits
